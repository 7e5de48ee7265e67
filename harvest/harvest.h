/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-tick deltas of the shield's cumulative counters (pure logic, no I/O):
 * the sensor, `klctl trace from-pcap` and the benchmarks feed it map
 * entries and get rate records back.
 *
 * Per source (family, address) and per flow (source, port, proto) the
 * previous counters live in an open-addressing table. A source's delta is
 * its counters minus the previous ones, over the virtual time since its
 * previous sample (normally one tick). A counter that went backwards, or a
 * changed first_seen_ns (the data plane dropped the entry, e.g. robbed its
 * slot, and made a new one), means the entry restarted: its current
 * counters are the delta, over this tick. A key that was not in the table
 * is new: its counters are the delta, unless the data plane created it
 * before the previous harvest (then it was missed and its history is
 * unknown: this tick only records it). The first harvest (tick 0) only
 * records. A key fed again in the same tick is ignored. Entries absent
 * from the maps for longer than prev_ttl are forgotten.
 */
#ifndef KL_HARVEST_HARVEST_H
#define KL_HARVEST_HARVEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shield.h"
#include "ipc/frames.h"

#define KL_PREV_TTL_DEFAULT (600ull * 1000000000ull)
/* An entry created this long before the previous harvest still counts as
 * new: the data plane's clock is cached per CPU and lags by up to a jiffy. */
#define KL_HARVEST_NEW_SLACK_NS (50ull * 1000000ull)

struct kl_ptab; /* previous counters, opaque */
struct kl_slotprev; /* previous counters by source slot, opaque */

struct kl_harvest_stats {
	uint64_t src_seen;      /* entries fed this tick */
	uint64_t src_active;    /* with a delta (records produced) */
	uint64_t src_new;
	uint64_t src_restarted; /* counter went backwards or first_seen changed */
	uint64_t src_unknown;   /* old entry we had not seen: recorded only */
	uint64_t src_dup;       /* fed twice in one tick (ignored) */
	uint64_t src_torn;      /* slot claimed while being read: skipped this tick */
	uint64_t src_forgotten; /* absent longer than prev_ttl */
	uint64_t flow_seen, flow_active, flow_forgotten;
	uint64_t flow_dup;        /* a flow fed twice in one tick (ignored) */
	uint64_t flow_torn;       /* flow slot claimed while being read: skipped */
	uint64_t flow_restricted; /* records flagged KL_FLOW_F_RESTRICTED */
};

struct kl_harvest {
	struct kl_ptab *src, *flow;
	/* Source slots (kl_harvest_slot), [0] IPv4, [1] IPv6; NULL until
	 * kl_harvest_slots() sized them. */
	struct kl_slotprev *slots[2];
	uint64_t prev_ttl_ns;
	uint64_t tick;          /* tick being built; 0 = baseline */
	bool started;
	uint64_t now_ns;        /* CLOCK_BOOTTIME of this harvest */
	uint64_t prev_ns;       /* ... of the previous one */
	uint64_t elapsed_ns;    /* what this tick's rates are over */
	uint64_t vt_ns;         /* sum of elapsed: the time the rates live in */
	/* Set while feeding a map read for the first time after it replaced
	 * another (enforcer restart): its entries hold nothing reported yet,
	 * so a key we do not know is new however old its first_seen is. */
	bool all_new;
	bool have_totals;
	uint64_t totals_prev[KL_T_MAX];
	uint64_t totals_delta[KL_T_MAX];
	struct kl_harvest_stats st;
};

int kl_harvest_init(struct kl_harvest *h, uint64_t prev_ttl_ns, size_t src_hint,
		    size_t flow_hint);
void kl_harvest_free(struct kl_harvest *h);

/* Start a tick. now_ns is CLOCK_BOOTTIME (the data plane's clock: compared
 * with first_seen_ns and used for prev_ttl); elapsed_ns is the span the
 * rates are over (0: now_ns minus the previous harvest's now_ns). Returns
 * the tick number; tick 0 only records. */
uint64_t kl_harvest_begin(struct kl_harvest *h, uint64_t now_ns, uint64_t elapsed_ns);
/* Whether a source is rate-limited or denied by its entry's cached verdict,
 * with the rule not expired at now_ns (CLOCK_BOOTTIME); a protected source
 * never is. Flows of such a source carry KL_FLOW_F_RESTRICTED. */
bool kl_src_restricted(const struct kl_src_stats *s, uint64_t now_ns);
/* Feed one source entry (addr: 4 or 16 bytes, network order). Returns
 * true with *out filled when the source has a delta this tick. */
bool kl_harvest_src(struct kl_harvest *h, uint8_t family, const uint8_t *addr,
		    const struct kl_src_stats *cur, struct kl_src_rate *out);
/* ---- source slots (bpf/shield.h "Source slots") ----
 * Previous counters kept by slot index, validated by the slot's seq, owner
 * and first_seen_ns: any of them changed means another claim, i.e. a new
 * source (or a robbed one back) in that slot, so no address lookup is
 * needed. Only restricted sources enter the address table (flows need the
 * bit). (Re)size a family's slot table, forgetting it: after the map was
 * replaced (enforcer restart) or resized. -1 when out of memory. */
int kl_harvest_slots(struct kl_harvest *h, uint8_t family, uint32_t nslots);
/* Feed slot `slot` of a family's map: a whole copy of a claimed slot (seq
 * even and non-zero, read between two equal reads of seq). Returns true
 * with *out filled when the source has a delta this tick. */
bool kl_harvest_slot(struct kl_harvest *h, uint32_t slot, const struct kl_src_slot *cur,
		     struct kl_src_rate *out);

/* Feed one flow entry (a flow slot's key and counters); feed the tick's
 * sources first (the record's KL_FLOW_F_RESTRICTED comes from its source).
 * A flow already fed this tick (two slots of one flow for a moment) is
 * ignored and counted in flow_dup. */
bool kl_harvest_flow(struct kl_harvest *h, uint8_t family, const uint8_t *addr, uint16_t port,
		     uint8_t proto, const struct kl_flow_stats *cur, struct kl_flow_rec *out);
/* Feed the totals summed over CPUs; fills h->totals_delta. */
void kl_harvest_totals(struct kl_harvest *h, const uint64_t cur[KL_T_MAX]);
/* Close the tick: forget entries absent for longer than prev_ttl. */
void kl_harvest_end(struct kl_harvest *h);

size_t kl_harvest_known_src(const struct kl_harvest *h);
size_t kl_harvest_known_flows(const struct kl_harvest *h);

#endif
