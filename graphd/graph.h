/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The communication graph (DESIGN §7): edges (source, destination port,
 * protocol), their evidence and their lifecycle, held in memory and merged
 * one tick at a time. Pure: no I/O, no clock; every function takes the
 * tick's time. store.c persists what a tick changed (the dirty list).
 *
 * Lifecycle
 *   candidate -> learned   seen in >= min_seen ticks, in >= min_windows
 *                          distinct windows, first seen >= min_age ago;
 *                          checked every promote_every, in learn mode only
 *   learned -> frozen      `freeze` (an operator action)
 *   * -> approved|denied   the operator; learning never changes these
 *   candidate|learned -> expired
 *                          not seen for expire_ttl; seen again, an expired
 *                          edge starts over as a candidate. Frozen, approved
 *                          and denied edges never expire: only the
 *                          operator changes the baseline.
 *   expired -> (deleted)   after a second expire_ttl without traffic
 *
 * Modes: learn records and promotes; frozen-observe and frozen-enforce
 * still record (so an operator can approve what was refused) but promote
 * nothing, and every edge outside the baseline (frozen, approved) that a
 * tick shows is a violation: action "signal" (observe) or "block"
 * (enforce). Denied edges violate in the frozen modes too.
 *
 * Sources never learned from: excluded CIDRs, the unspecified address,
 * and unless switched off loopback, multicast and limited broadcast
 * (ignored entirely: no edges, no
 * violations, since they could never have a baseline), and sources the
 * tick marks suspicious (rate-limited or blocked: the caller says so from
 * the telemetry it has) for suspect_hold after the last such tick.
 */
#ifndef KL_GRAPHD_GRAPH_H
#define KL_GRAPHD_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "graphd/edgebase.h"

/* A time that never happened (never seen, no violation yet, ...). */
#define GR_NEVER INT64_MIN

enum gr_state {
	GR_CANDIDATE = 0,
	GR_LEARNED,
	GR_FROZEN,
	GR_APPROVED,
	GR_DENIED,
	GR_EXPIRED,
	GR_STATE_MAX,
	GR_GONE = 0xff /* internal: deleted, waiting for the store */
};

enum gr_mode { GR_MODE_LEARN = 0, GR_MODE_OBSERVE, GR_MODE_ENFORCE, GR_MODE_MAX };

/* Who set an edge's state. */
enum gr_by {
	GR_BY_LEARNER = 0, /* new edges, promotion, expiry */
	GR_BY_FREEZE,      /* `freeze` */
	GR_BY_OPERATOR,    /* approve-ip / deny-ip */
	GR_BY_MIGRATION,   /* carried over from an older schema */
	GR_BY_MAX
};

const char *gr_state_name(unsigned s); /* "candidate", ... ("?" if out of range) */
int gr_state_parse(const char *s);     /* -1 if unknown */
const char *gr_mode_name(unsigned m);  /* "learn", "frozen-observe", "frozen-enforce" */
int gr_mode_parse(const char *s);
/* The mode words in enum order, NULL-terminated (the knob table's enum). */
extern const char *const gr_mode_names[GR_MODE_MAX + 1];
const char *gr_by_name(unsigned b);    /* "learner", "freeze", "operator", "migration" */
const char *gr_action_name(unsigned a); /* "signal", "block", "deviation" */
int gr_by_parse(const char *s);
/* "tcp", "udp", "icmp", "icmpv6", or the number. */
const char *gr_proto_name(uint8_t proto, char *buf, size_t len);

/* 20 bytes, compared with memcmp: every unused byte is zero. */
struct gr_key {
	uint8_t family; /* 4 or 6 */
	uint8_t proto;
	uint16_t port;  /* host order, folded (0 = ephemeral or no ports) */
	uint8_t addr[16];
};

struct gr_edge {
	struct gr_key k;
	uint8_t state;    /* enum gr_state */
	uint8_t by;       /* enum gr_by */
	uint8_t dirty;    /* on the dirty list */
	uint8_t push_kind;/* push.c: what the enforcer holds for it (0, allow, deny) */
	uint8_t stored;   /* the store has a row for it */
	uint8_t changed;  /* state, by or by_uid changed since the store last wrote it */
	uint8_t eb_dirty; /* eb changed since the store last wrote it */
	int32_t by_uid;   /* the operator's uid, or -1 */
	uint32_t seen;    /* ticks the edge appeared in */
	uint32_t windows; /* distinct windows it appeared in */
	int64_t last_window;
	int64_t first_seen, last_seen; /* Unix ms; GR_NEVER: made by the operator, never seen */
	int64_t state_at;              /* when the state last changed */
	uint64_t pkts, bytes;
	struct gr_eb eb;         /* per-edge baseline (edgebase.h), stored in edge_baselines */
	/* memory only */
	uint64_t tick_pkts, tick_bytes; /* this tick's traffic (last_seen == tick) */
	int64_t last_deviation;  /* time of the last deviation signal, or GR_NEVER */
	int64_t last_violation;  /* time of the last violation, or GR_NEVER */
	int64_t deny_until;      /* frozen-enforce: edge deny wanted until then */
	int64_t push_until;      /* push.c: when the enforcer's entry lapses */
	int64_t push_retry_at;   /* push.c: refused for good until then */
};

struct gr_params {
	enum gr_mode mode;
	uint32_t min_seen, min_windows;
	int64_t min_age_ms;
	int64_t window_ms;        /* length of a promotion window */
	int64_t promote_every_ms; /* how often promotion and expiry run */
	int64_t expire_ttl_ms;
	int64_t viol_repeat_ms;   /* one violation per edge per this long */
	int64_t deny_ttl_ms;      /* frozen-enforce edge deny lifetime */
	int64_t suspect_hold_ms;  /* a suspicious source stays excluded this long */
	uint32_t ephemeral_min;   /* TCP/UDP ports >= this fold to 0; 0 = no folding */
	uint32_t viol_max_tick;   /* violations reported per tick at most */
	bool exclude_broadcast;   /* never learn from multicast / limited broadcast */
	bool exclude_loopback;    /* never learn from loopback */
	const struct kl_addr *exclude; /* CIDRs never learned from; not owned */
	size_t nexclude;
	struct gr_eb_params eb;   /* per-edge baselines */
};

/* The profiles.md defaults (5 ticks, 3 windows, 10 min, every 5 min, 30 days). */
void gr_params_default(struct gr_params *p);

/* One flow of a tick. src is a host address. */
struct gr_obs {
	struct kl_addr src;
	uint16_t port; /* as seen (folded here again, so raw ports are fine) */
	uint8_t proto;
	uint64_t pkts, bytes;
};

/* DEVIATION: a learned edge carried far more than its baseline (always
 * mode observe: strikes, never a block by itself). */
enum gr_action { GR_ACT_SIGNAL = 1, GR_ACT_BLOCK = 2, GR_ACT_DEVIATION = 3 };

struct gr_viol {
	struct gr_key k;
	int64_t t_ms;
	uint8_t mode;   /* GR_MODE_OBSERVE or GR_MODE_ENFORCE */
	uint8_t action; /* enum gr_action */
	uint8_t state;  /* the edge's state when it violated (candidate, denied, ...) */
};

struct gr_tick_stats {
	uint64_t obs, merged, new_edges, excluded, suspicious, promoted, expired, purged;
	uint64_t violations, viol_suppressed, deviations;
	bool maintained; /* promotion and expiry ran in this tick */
};

struct gr_graph {
	struct gr_params p;
	struct gr_edge *e;        /* dense; index = edge id */
	size_t n, cap;
	uint32_t *slot;           /* open addressing: edge id + 1, 0 = empty */
	size_t nslot;             /* power of two */
	uint32_t *dirty;          /* ids changed since the last gr_flushed() */
	size_t ndirty, dirty_cap;
	size_t ngone;             /* GR_GONE edges waiting for gr_flushed() */
	struct gr_viol *viol;     /* this tick's violations */
	size_t nviol, viol_cap;
	struct gr_suspect *susp;  /* suspicious sources (open addressing) */
	size_t nsusp, susp_slots;
	int64_t last_t;           /* time of the last tick (INT64_MIN before any) */
	int64_t next_promote;     /* INT64_MIN: at the first tick */
	size_t count[GR_STATE_MAX];
	struct gr_tick_stats last; /* the last tick's */
	/* The next flush writes every changed edge baseline: set on
	 * maintenance ticks and by gr_eb_flush_all, so that baselines cost one
	 * write per edge per promote interval, not per tick. */
	bool eb_flush;
};

int gr_init(struct gr_graph *g, const struct gr_params *p);
void gr_free(struct gr_graph *g);

/* The key of an observation: v4/v6 host, ephemeral ports folded, the port
 * zeroed for protocols without ports. false for sources never learned
 * from (excluded CIDRs, loopback, multicast, ...). */
bool gr_key_of(const struct gr_params *p, const struct kl_addr *src, uint16_t port, uint8_t proto,
	       struct gr_key *k);
void gr_key_addr(const struct gr_key *k, struct kl_addr *out);
/* "198.18.0.1 8080/tcp" */
const char *gr_key_format(const struct gr_key *k, char *buf, size_t len);

struct gr_edge *gr_find(const struct gr_graph *g, const struct gr_key *k);
/* Insert an edge as the store loaded it (not dirty). Duplicate keys: -1. */
int gr_load_edge(struct gr_graph *g, const struct gr_edge *e);

/* Merge one tick. suspects: sources rate-limited or blocked in this tick.
 * Runs promotion and expiry when they are due. Time must move forward
 * (an earlier t is treated as last_t). The tick's violations are in
 * g->viol[0..nviol) until the next tick. Returns 0, -1 out of memory. */
int gr_tick(struct gr_graph *g, int64_t t_ms, const struct gr_obs *obs, size_t nobs,
	    const struct kl_addr *suspects, size_t nsusp);

/* Whether a candidate meets the promotion rules at `now`; if not, why
 * ("seen 3/5 ticks, windows 1/3, age 4m/10m": only the rules it misses). */
bool gr_ready(const struct gr_params *p, const struct gr_edge *e, int64_t now, char *why,
	      size_t whylen);
/* Promotion and expiry now (gr_tick calls them when due). */
size_t gr_promote(struct gr_graph *g, int64_t now);
size_t gr_expire(struct gr_graph *g, int64_t now);

struct gr_freeze_report {
	size_t frozen_now;     /* learned -> frozen (or would be, dry run) */
	size_t already_frozen;
	size_t approved;       /* part of the baseline already */
	size_t denied;
	size_t not_ready;      /* candidates */
	size_t expired;
};
/* learned -> frozen (unless dry_run). The baseline afterwards is every
 * frozen and approved edge; approved ones keep their state (and who set
 * it). The report counts what was (or would be) done. */
void gr_freeze(struct gr_graph *g, int64_t now, bool dry_run, int32_t uid,
	       struct gr_freeze_report *r);

/* approve-ip / deny-ip. to is GR_APPROVED or GR_DENIED. With all_ports
 * every edge of src changes state (approving leaves frozen edges frozen:
 * they are in the baseline already); otherwise only (port, proto), which is
 * created (never seen) if the graph does not have it. Returns the number
 * of edges that changed, or -1 (out of memory, or src not learnable, see
 * gr_key_of: why says which). */
long gr_set_source(struct gr_graph *g, const struct kl_addr *src, bool all_ports, uint16_t port,
		   uint8_t proto, enum gr_state to, int32_t uid, int64_t now, char *why,
		   size_t whylen);

/* The store wrote the dirty edges: clear the list and drop GR_GONE edges. */
void gr_flushed(struct gr_graph *g);

/* Have the next gr_store_flush write every changed edge baseline (at exit,
 * at the end of a replay). */
void gr_eb_flush_all(struct gr_graph *g);

/* Mark an edge changed (for callers that edit one, e.g. push.c). */
void gr_touch(struct gr_graph *g, struct gr_edge *e);

/* Is this edge part of the baseline (allowed in the frozen modes)? */
static inline bool gr_in_baseline(const struct gr_edge *e)
{
	return e->state == GR_FROZEN || e->state == GR_APPROVED;
}

#endif
