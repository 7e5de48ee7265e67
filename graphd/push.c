/* SPDX-License-Identifier: MPL-2.0 */
/* Planning EDGE_RULES for the enforcer (see push.h). */
#include <stdlib.h>
#include <string.h>

#include "graphd/push.h"

void gr_push_params_default(struct gr_push_params *pp)
{
	pp->rule_ttl_ms = 15 * 60 * 1000;
	pp->max = 2000;
	pp->retry_ms = 10 * 60 * 1000;
}

static bool pushable(const struct gr_key *k)
{
	return k->proto == 6 || k->proto == 17 || (k->proto == 1 && k->family == 4) ||
	       (k->proto == 58 && k->family == 6);
}

enum gr_push_kind gr_push_want(const struct gr_edge *e, int64_t now)
{
	if (e->state == GR_DENIED)
		return GR_PUSH_DENY;
	if (gr_in_baseline(e))
		return GR_PUSH_ALLOW;
	if (e->deny_until != GR_NEVER && e->deny_until > now)
		return GR_PUSH_DENY;
	return GR_PUSH_NONE;
}

static int grow(struct gr_push_batch *b)
{
	size_t ncap = b->cap ? b->cap * 2 : 256;
	struct kl_edge_rule *r = realloc(b->r, ncap * sizeof(*r));
	if (r == NULL)
		return -1;
	b->r = r;
	uint32_t *e = realloc(b->edge, ncap * sizeof(*e));
	if (e == NULL)
		return -1;
	b->edge = e;
	uint8_t *k = realloc(b->kind, ncap * sizeof(*k));
	if (k == NULL)
		return -1;
	b->kind = k;
	int64_t *u = realloc(b->until, ncap * sizeof(*u));
	if (u == NULL)
		return -1;
	b->until = u;
	b->cap = ncap;
	return 0;
}

static int add(struct gr_push_batch *b, const struct gr_edge *e, uint32_t id, uint8_t action,
	       uint8_t kind, int64_t now, int64_t ttl)
{
	if (b->n == b->cap && grow(b) < 0)
		return -1;
	struct kl_edge_rule *r = &b->r[b->n];
	memset(r, 0, sizeof(*r));
	gr_key_addr(&e->k, &r->src);
	r->action = action;
	r->proto = e->k.proto;
	r->port = e->k.port;
	bool del = action == KL_EDGE_ACT_DEL_ALLOW || action == KL_EDGE_ACT_DEL_DENY;
	if (!del) {
		if (ttl < (int64_t)KL_EDGE_TTL_MIN_MS)
			ttl = KL_EDGE_TTL_MIN_MS;
		if (ttl > (int64_t)KL_EDGE_TTL_MAX_MS)
			ttl = KL_EDGE_TTL_MAX_MS;
		r->ttl_ms = (uint64_t)ttl;
	}
	b->edge[b->n] = id;
	b->kind[b->n] = kind;
	b->until[b->n] = del ? GR_NEVER : now + ttl;
	b->n++;
	return 0;
}

long gr_push_plan(struct gr_graph *g, const struct gr_push_params *pp, int64_t now,
		  struct gr_push_batch *b)
{
	size_t scanned = 0;

	b->n = 0;
	b->unpushable = 0;
	if (g->n == 0)
		return 0;
	if (b->cursor >= g->n)
		b->cursor = 0;
	while (scanned < g->n && b->n < pp->max) {
		size_t id = b->cursor;
		struct gr_edge *e = &g->e[id];
		if (e->state == GR_GONE || !pushable(&e->k)) {
			if (e->state != GR_GONE && gr_push_want(e, now) != GR_PUSH_NONE)
				b->unpushable++;
			goto next;
		}
		if (e->push_retry_at != GR_NEVER && now < e->push_retry_at)
			goto next;
		/* A rule past its TTL is gone from the data plane already. */
		uint8_t held = e->push_until != GR_NEVER && e->push_until > now ? e->push_kind
										: GR_PUSH_NONE;
		enum gr_push_kind want = gr_push_want(e, now);
		int64_t ttl = pp->rule_ttl_ms;
		if (want == GR_PUSH_DENY && e->state != GR_DENIED) {
			ttl = e->deny_until - now;
			if (ttl > pp->rule_ttl_ms)
				ttl = pp->rule_ttl_ms;
		}
		bool del = held != GR_PUSH_NONE && held != want;
		bool due = want != GR_PUSH_NONE &&
			   (held != want || e->push_until - now < pp->rule_ttl_ms / 2);
		/* A violation's deny is not stretched past deny_until. */
		if (due && held == want && want == GR_PUSH_DENY && e->state != GR_DENIED)
			due = now + ttl > e->push_until;
		/* A change (delete the old kind, add the new) goes in one round. */
		if (b->n + (size_t)del + (size_t)due > pp->max)
			break;
		if (del && add(b, e, (uint32_t)id,
			       held == GR_PUSH_ALLOW ? KL_EDGE_ACT_DEL_ALLOW : KL_EDGE_ACT_DEL_DENY,
			       GR_PUSH_NONE, now, 0) < 0)
			return -1;
		if (due && add(b, e, (uint32_t)id,
			       want == GR_PUSH_ALLOW ? KL_EDGE_ACT_ADD_ALLOW : KL_EDGE_ACT_ADD_DENY,
			       (uint8_t)want, now, ttl) < 0)
			return -1;
next:
		b->cursor = (b->cursor + 1) % g->n;
		scanned++;
	}
	return (long)b->n;
}

static bool retry_soon(uint8_t reason)
{
	return reason == KL_ACK_RATE_CAP || reason == KL_ACK_MAP_FULL || reason == KL_ACK_FAILED;
}

void gr_push_acked(struct gr_graph *g, const struct gr_push_params *pp,
		   const struct gr_push_batch *b, const struct kl_ack *acks, size_t n, int64_t now)
{
	for (size_t i = 0; i < n && i < b->n; i++) {
		if (b->edge[i] >= g->n)
			continue;
		struct gr_edge *e = &g->e[b->edge[i]];
		if (acks[i].reason == KL_ACK_OK) {
			e->push_kind = b->kind[i];
			e->push_until = b->until[i];
			e->push_retry_at = GR_NEVER;
		} else if (!retry_soon(acks[i].reason)) {
			/* Protected source, an operator's entry in the way, ...:
			 * asking again every second would only fill the log. */
			e->push_retry_at = now + pp->retry_ms;
		}
	}
}

void gr_push_reset(struct gr_graph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		g->e[i].push_kind = GR_PUSH_NONE;
		g->e[i].push_until = GR_NEVER;
		g->e[i].push_retry_at = GR_NEVER;
	}
}

size_t gr_push_adopt(struct gr_graph *g, const struct kl_state_rec *r, size_t n, int64_t now)
{
	size_t adopted = 0;

	for (size_t i = 0; i < n; i++) {
		struct gr_key k;
		uint8_t kind = r[i].kind == KL_STATE_EDGE_ALLOW  ? GR_PUSH_ALLOW
			       : r[i].kind == KL_STATE_EDGE_DENY ? GR_PUSH_DENY
								 : GR_PUSH_NONE;
		if (kind == GR_PUSH_NONE || r[i].expires_in_ms == 0)
			continue;
		/* The map's port is folded already; fold again is a no-op. */
		if (!gr_key_of(&g->p, &r[i].addr, r[i].port, r[i].proto, &k))
			continue;
		struct gr_edge *e = gr_find(g, &k);
		if (e == NULL || e->state == GR_GONE)
			continue;
		e->push_kind = kind;
		e->push_until = now + (int64_t)r[i].expires_in_ms;
		e->push_retry_at = GR_NEVER;
		adopted++;
	}
	return adopted;
}

void gr_push_free(struct gr_push_batch *b)
{
	free(b->r);
	free(b->edge);
	free(b->kind);
	free(b->until);
	memset(b, 0, sizeof(*b));
}
