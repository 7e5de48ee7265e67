/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Keeping the enforcer's edge maps in line with the graph (DESIGN §7):
 * frozen and approved edges in the edge allow map, denied edges (and, in
 * frozen-enforce, edges that just violated) in the edge deny map. Every
 * rule carries a TTL and is refreshed before it runs out, so a dead graphd
 * leaves nothing permanent behind and a restarted one simply pushes again.
 *
 * Pure planning: gr_push_plan picks at most max records per round (the
 * enforcer caps graphd's new-or-changed entries per second), resuming
 * where the last round stopped; gr_push_acked records what the enforcer
 * accepted. Protocols the EDGE_RULES codec cannot carry (anything but
 * TCP/UDP, ICMP on IPv4, ICMPv6 on IPv6) are skipped and counted.
 */
#ifndef KL_GRAPHD_PUSH_H
#define KL_GRAPHD_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "graphd/graph.h"
#include "ipc/enforce.h"

enum gr_push_kind { GR_PUSH_NONE = 0, GR_PUSH_ALLOW = 1, GR_PUSH_DENY = 2 };

struct gr_push_params {
	int64_t rule_ttl_ms;  /* allow and operator-deny rules; refreshed at half-life */
	uint32_t max;         /* records per round */
	int64_t retry_ms;     /* after a refusal that will not pass on retry at once */
};

struct gr_push_batch {
	struct kl_edge_rule *r;
	uint32_t *edge;       /* edge id of each record */
	uint8_t *kind;        /* what the edge holds in the enforcer if it is applied */
	int64_t *until;
	size_t n, cap;
	size_t cursor;        /* where the next round starts */
	uint64_t unpushable;  /* edges whose protocol EDGE_RULES cannot carry (last round) */
};

void gr_push_params_default(struct gr_push_params *pp);
/* What the enforcer should hold for an edge now. */
enum gr_push_kind gr_push_want(const struct gr_edge *e, int64_t now);
/* Fill b (emptied first) with at most pp->max records. Returns the count,
 * or -1 out of memory. */
long gr_push_plan(struct gr_graph *g, const struct gr_push_params *pp, int64_t now,
		  struct gr_push_batch *b);
/* The enforcer's answer to b (acks[i] for b->r[i]); n may be less than b->n
 * when the call failed part way (the rest is planned again next round). */
void gr_push_acked(struct gr_graph *g, const struct gr_push_params *pp,
		   const struct gr_push_batch *b, const struct kl_ack *acks, size_t n, int64_t now);
/* Forget what the enforcer holds (it restarted or lost its maps): every
 * wanted rule is pushed again. */
void gr_push_reset(struct gr_graph *g);
/* Reconciliation after gr_push_reset: take the enforcer's graphd entries
 * (its STATE answer) as what each edge holds, so that nothing is pushed
 * twice and a rule that no longer fits (an approved edge's old deny) is
 * removed. Entries for edges the graph does not have lapse at their TTL.
 * Returns how many were adopted. */
size_t gr_push_adopt(struct gr_graph *g, const struct kl_state_rec *r, size_t n, int64_t now);
void gr_push_free(struct gr_push_batch *b);

#endif
