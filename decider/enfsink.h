/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's output to kl-enforcer (DESIGN §4, §5, §6.3): one DECISIONS
 * batch per tick with every level change and TTL renewal, the answer
 * checked per record, CIDR releases, and reconciliation through
 * ENFORCED_Q / STATE whenever the link (re)connects.
 *
 * Nothing here may stop the decider from deciding: an unreachable enforcer
 * is logged once a minute, every decision that did not get through is
 * remembered by address, and when the link is back the enforcer is told
 * each such source's level as it is by then (not the stale change).
 *
 * The link (ipc/enflink.h) is abstract so that the unit tests can play the
 * enforcer.
 */
#ifndef KL_DECIDER_ENFSINK_H
#define KL_DECIDER_ENFSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decider/engine.h"
#include "decider/io.h"
#include "ipc/enflink.h"
#include "ipc/enforce.h"
#include "ipc/msg.h"

/* ---- pure helpers ---- */

/* The DECISIONS record for a level change or renewal. False when there is
 * nothing to tell the enforcer: the old and new levels are both enforced
 * as OBSERVE (policy caps), so no entry exists or is wanted. */
bool dec_decision_from_change(const struct dec_change *c, struct kl_decision *d);
/* The record for a source as it is now (resends, reconciliation): its
 * level's action with the TTL it has left (at least 1 s), or OBSERVE. */
void dec_decision_from_src(const struct dec_engine_params *p, const struct dec_src *s, int64_t now,
			  struct kl_decision *d);
/* The engine level an enforcer entry of ours stands for: a deny is the
 * lowest level enforced as BLOCK (BLOCK if none is), a rate-limit override
 * the lowest level whose action has that rate (if the profile changed
 * since: RATE_SOFT at or above the soft rate, else RATE_HARD). -1 for
 * entries that are not per-source levels (edges). */
int dec_level_of_state(const struct dec_engine_params *p, const struct kl_state_rec *r);
/* Refusals a later resend may overcome (quota, full map, failed write). */
bool dec_ack_retryable(unsigned reason);

struct dec_enf_stats {
	uint64_t batches;      /* DECISIONS messages answered */
	uint64_t sent;         /* records in them */
	uint64_t applied;
	uint64_t refused;      /* records refused for good (protected, invalid, operator) */
	uint64_t retry;        /* records refused for now, resent later */
	uint64_t failed_calls; /* the enforcer could not be asked */
	uint64_t syncs;        /* reconciliations done */
	uint64_t adopted;      /* sources taken over from the enforcer's state */
	uint64_t released;     /* entries removed by RELEASE */
	size_t pending;        /* sources whose level the enforcer may not have */
	bool up;               /* the last call got through */
};

/* The enforcer sink; it takes over link. eng and the exemption lookup
 * (exempt may be NULL) are what reconciliation and resends read. Every
 * level change is also logged as STATE and ACTION lines (dry_run=false). */
struct dec_sink *dec_sink_enforcer_new(struct kl_enf_link *link, struct dec_engine *eng,
				     dec_exempt_fn exempt, void *exempt_ctx);
/* Reconcile now (if the link is up or comes up): ask what is enforced,
 * adopt our entries for sources the engine does not hold (first sync
 * only; later ones leave such entries to lapse), release entries of
 * sources that are exempt or back to OBSERVE, and queue a resend for
 * sources the enforcer lacks. Returns 0, or -1 if the enforcer could not
 * be asked (logged at most once a minute). apply() calls it by itself
 * after every reconnect. */
int dec_sink_enforcer_sync(struct dec_sink *s, int64_t now);
const struct dec_enf_stats *dec_sink_enforcer_stats(const struct dec_sink *s);

#endif
