/* SPDX-License-Identifier: MPL-2.0 */
/* The graph in memory: merge, promotion, expiry, freeze, operator states.
 * See graph.h for the rules. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/grow.h"
#include "common/hash.h"
#include "graphd/graph.h"

#define MS_PER_MIN 60000ll
#define NEVER GR_NEVER

struct gr_suspect {
	uint8_t used;
	uint8_t family;
	uint8_t addr[16];
	int64_t until;
};

static const char *const state_names[GR_STATE_MAX] = {
	"candidate", "learned", "frozen", "approved", "denied", "expired"
};
const char *const gr_mode_names[GR_MODE_MAX + 1] = { "learn", "frozen-observe", "frozen-enforce",
						    NULL };
static const char *const by_names[GR_BY_MAX] = { "learner", "freeze", "operator", "migration" };

const char *gr_action_name(unsigned a)
{
	return a == GR_ACT_BLOCK ? "block" : a == GR_ACT_DEVIATION ? "deviation" : "signal";
}

static int lookup_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

const char *gr_state_name(unsigned s)
{
	return s < GR_STATE_MAX ? state_names[s] : "?";
}

int gr_state_parse(const char *s)
{
	return lookup_name(state_names, GR_STATE_MAX, s);
}

const char *gr_mode_name(unsigned m)
{
	return m < GR_MODE_MAX ? gr_mode_names[m] : "?";
}

int gr_mode_parse(const char *s)
{
	return lookup_name(gr_mode_names, GR_MODE_MAX, s);
}

const char *gr_by_name(unsigned b)
{
	return b < GR_BY_MAX ? by_names[b] : "?";
}

int gr_by_parse(const char *s)
{
	return lookup_name(by_names, GR_BY_MAX, s);
}

const char *gr_proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmpv6";
	default: snprintf(buf, len, "%u", proto); return buf;
	}
}

void gr_params_default(struct gr_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = GR_MODE_LEARN;
	p->min_seen = 5;
	p->min_windows = 3;
	p->min_age_ms = 10 * MS_PER_MIN;
	p->window_ms = 5 * MS_PER_MIN;
	p->promote_every_ms = 5 * MS_PER_MIN;
	p->expire_ttl_ms = 30ll * 24 * 60 * MS_PER_MIN;
	p->viol_repeat_ms = MS_PER_MIN;
	p->deny_ttl_ms = 60 * MS_PER_MIN;
	p->suspect_hold_ms = 10 * MS_PER_MIN;
	p->ephemeral_min = 32768;
	p->viol_max_tick = 1000;
	p->exclude_broadcast = true;
	p->exclude_loopback = true;
	gr_eb_params_default(&p->eb);
}

/* ---- keys ---- */

static bool never_learned(const struct gr_params *p, const struct kl_addr *a)
{
	static const uint8_t zero[16];

	if (a->family == 4) {
		uint8_t b0 = a->addr[0];
		bool bcast = (b0 >= 224 && b0 <= 239) ||
			     (b0 == 255 && a->addr[1] == 255 && a->addr[2] == 255 && a->addr[3] == 255);
		return b0 == 0 || (p->exclude_loopback && b0 == 127) ||
		       (p->exclude_broadcast && bcast);
	}
	if (a->addr[0] == 0xff)
		return p->exclude_broadcast; /* multicast */
	if (memcmp(a->addr, zero, 15) == 0 && a->addr[15] == 0)
		return true; /* :: */
	if (memcmp(a->addr, zero, 15) == 0 && a->addr[15] == 1)
		return p->exclude_loopback; /* ::1 */
	/* IPv4-mapped loopback ::ffff:127.x */
	return p->exclude_loopback && memcmp(a->addr, zero, 10) == 0 && a->addr[10] == 0xff &&
	       a->addr[11] == 0xff && a->addr[12] == 127;
}

bool gr_key_of(const struct gr_params *p, const struct kl_addr *src, uint16_t port, uint8_t proto,
	       struct gr_key *k)
{
	memset(k, 0, sizeof(*k));
	if (src->family != 4 && src->family != 6)
		return false;
	if (never_learned(p, src))
		return false;
	for (size_t i = 0; i < p->nexclude; i++)
		if (p->exclude[i].family == src->family && kl_cidr_contains(&p->exclude[i], src))
			return false;
	k->family = src->family;
	k->proto = proto;
	memcpy(k->addr, src->addr, src->family == 4 ? 4 : 16);
	/* Fold as the data plane does (bpf fold_port), so a learned edge is
	 * the key the edge allow map will be asked for. */
	if (proto == 6 || proto == 17)
		k->port = p->ephemeral_min != 0 && port >= p->ephemeral_min ? 0 : port;
	return true;
}

void gr_key_addr(const struct gr_key *k, struct kl_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = k->family;
	out->prefixlen = k->family == 4 ? 32 : 128;
	memcpy(out->addr, k->addr, k->family == 4 ? 4 : 16);
}

const char *gr_key_format(const struct gr_key *k, char *buf, size_t len)
{
	struct kl_addr a;
	char ip[KL_ADDR_STRLEN], pr[8];

	gr_key_addr(k, &a);
	snprintf(buf, len, "%s %u/%s", kl_addr_format(&a, ip, sizeof(ip)), k->port,
		 gr_proto_name(k->proto, pr, sizeof(pr)));
	return buf;
}

static uint64_t key_hash(const struct gr_key *k)
{
	uint64_t a, b, c = 0;

	memcpy(&a, k->addr, 8);
	memcpy(&b, k->addr + 8, 8);
	memcpy(&c, k, 4);
	return kl_mix64(a ^ kl_mix64(b ^ kl_mix64(c)));
}

static uint64_t addr_hash(uint8_t family, const uint8_t *addr)
{
	uint64_t a, b;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	return kl_mix64(a ^ kl_mix64(b ^ family));
}

/* ---- the edge table ---- */

int gr_init(struct gr_graph *g, const struct gr_params *p)
{
	memset(g, 0, sizeof(*g));
	g->p = *p;
	g->nslot = 1024;
	g->slot = calloc(g->nslot, sizeof(*g->slot));
	g->last_t = NEVER;
	g->next_promote = NEVER;
	return g->slot == NULL ? -1 : 0;
}

void gr_free(struct gr_graph *g)
{
	free(g->e);
	free(g->slot);
	free(g->dirty);
	free(g->viol);
	free(g->susp);
	memset(g, 0, sizeof(*g));
}

struct edge_probe {
	const struct gr_graph *g;
	const struct gr_key *k;
};

static inline bool edge_stop(const void *ctx, size_t i)
{
	const struct edge_probe *p = ctx;
	uint32_t id = p->g->slot[i];

	return id == 0 || memcmp(&p->g->e[id - 1].k, p->k, sizeof(*p->k)) == 0;
}

static size_t find_slot(const struct gr_graph *g, const struct gr_key *k, bool *found)
{
	struct edge_probe p = { g, k };
	size_t i = kl_probe(key_hash(k), g->nslot - 1, edge_stop, &p);

	*found = g->slot[i] != 0;
	return i;
}

static int rehash(struct gr_graph *g, size_t nslot)
{
	uint32_t *s = calloc(nslot, sizeof(*s));

	if (s == NULL)
		return -1;
	free(g->slot);
	g->slot = s;
	g->nslot = nslot;
	for (size_t id = 0; id < g->n; id++) {
		bool found;
		size_t i = find_slot(g, &g->e[id].k, &found);
		g->slot[i] = (uint32_t)id + 1;
	}
	return 0;
}

struct gr_edge *gr_find(const struct gr_graph *g, const struct gr_key *k)
{
	bool found;
	size_t i = find_slot(g, k, &found);

	return found ? &g->e[g->slot[i] - 1] : NULL;
}

/* A new edge with key k, zeroed evidence; NULL out of memory. */
static struct gr_edge *insert(struct gr_graph *g, const struct gr_key *k)
{
	bool found;

	if (g->n >= UINT32_MAX - 1)
		return NULL;
	if ((g->n + 1) * 2 > g->nslot && rehash(g, g->nslot * 2) < 0)
		return NULL;
	struct gr_edge *ne = kl_grow(g->e, g->n, &g->cap, sizeof(*ne), 1024);
	if (ne == NULL)
		return NULL;
	g->e = ne;
	size_t i = find_slot(g, k, &found);
	struct gr_edge *e = &g->e[g->n];
	*e = (struct gr_edge){
		.k = *k, .by_uid = -1, .first_seen = NEVER, .last_seen = NEVER, .last_window = NEVER,
		.last_violation = NEVER, .last_deviation = NEVER, .deny_until = NEVER,
		.push_until = NEVER, .push_retry_at = NEVER,
	};
	g->slot[i] = (uint32_t)g->n + 1;
	g->n++;
	return e;
}

int gr_load_edge(struct gr_graph *g, const struct gr_edge *src)
{
	if (src->state >= GR_STATE_MAX || gr_find(g, &src->k) != NULL)
		return -1;
	struct gr_edge *e = insert(g, &src->k);
	if (e == NULL)
		return -1;
	*e = *src;
	e->dirty = 0;
	e->stored = 1;
	e->changed = 0;
	e->push_kind = 0;
	e->last_violation = NEVER;
	e->last_deviation = NEVER;
	e->tick_pkts = e->tick_bytes = 0;
	e->deny_until = NEVER;
	e->push_until = NEVER;
	e->push_retry_at = NEVER;
	g->count[e->state]++;
	return 0;
}

void gr_touch(struct gr_graph *g, struct gr_edge *e)
{
	if (e->dirty)
		return;
	uint32_t *nd = kl_grow(g->dirty, g->ndirty, &g->dirty_cap, sizeof(*nd), 1024);
	if (nd == NULL)
		return; /* the edge is written by the next full flush */
	g->dirty = nd;
	g->dirty[g->ndirty++] = (uint32_t)(e - g->e);
	e->dirty = 1;
}

static void set_state(struct gr_graph *g, struct gr_edge *e, enum gr_state s, enum gr_by by,
		      int32_t uid, int64_t now)
{
	if (e->state != GR_GONE && e->state < GR_STATE_MAX)
		g->count[e->state]--;
	e->state = (uint8_t)s;
	e->by = (uint8_t)by;
	e->by_uid = uid;
	e->state_at = now;
	e->changed = 1;
	g->count[s]++;
	gr_touch(g, e);
}

/* ---- suspicious sources ---- */

struct susp_probe {
	const struct gr_suspect *susp;
	uint8_t family;
	const uint8_t *addr;
};

static inline bool susp_stop(const void *ctx, size_t i)
{
	const struct susp_probe *p = ctx;
	const struct gr_suspect *s = &p->susp[i];

	return !s->used || (s->family == p->family && memcmp(s->addr, p->addr, 16) == 0);
}

static struct gr_suspect *susp_slot(struct gr_graph *g, uint8_t family, const uint8_t *addr)
{
	struct susp_probe p = { g->susp, family, addr };

	return &g->susp[kl_probe(addr_hash(family, addr), g->susp_slots - 1, susp_stop, &p)];
}

/* Rebuild without the entries that ran out (and at twice the size if full). */
static int susp_rebuild(struct gr_graph *g, int64_t now, size_t want)
{
	size_t live = 0;

	for (size_t i = 0; i < g->susp_slots; i++)
		if (g->susp[i].used && g->susp[i].until > now)
			live++;
	size_t slots = 64;
	while (slots < (live + want) * 2)
		slots *= 2;
	struct gr_suspect *old = g->susp;
	size_t nold = g->susp_slots;
	g->susp = calloc(slots, sizeof(*g->susp));
	if (g->susp == NULL) {
		g->susp = old;
		return -1;
	}
	g->susp_slots = slots;
	g->nsusp = 0;
	for (size_t i = 0; i < nold; i++) {
		if (!old[i].used || old[i].until <= now)
			continue;
		*susp_slot(g, old[i].family, old[i].addr) = old[i];
		g->nsusp++;
	}
	free(old);
	return 0;
}

static int susp_mark(struct gr_graph *g, uint8_t family, const uint8_t *addr, int64_t until)
{
	uint8_t a[16] = { 0 };

	memcpy(a, addr, family == 4 ? 4 : 16);
	if ((g->nsusp + 1) * 2 > g->susp_slots && susp_rebuild(g, g->last_t, 1) < 0)
		return -1;
	struct gr_suspect *s = susp_slot(g, family, a);
	if (!s->used) {
		s->used = 1;
		s->family = family;
		memcpy(s->addr, a, 16);
		s->until = until;
		g->nsusp++;
	} else if (until > s->until) {
		s->until = until;
	}
	return 0;
}

static bool suspicious(struct gr_graph *g, const struct gr_key *k, int64_t now)
{
	if (g->nsusp == 0)
		return false;
	const struct gr_suspect *s = susp_slot(g, k->family, k->addr);
	return s->used && s->until >= now;
}

/* ---- promotion and expiry ---- */

static int64_t window_of(const struct gr_params *p, int64_t t)
{
	int64_t w = p->window_ms > 0 ? p->window_ms : 1;
	return t >= 0 ? t / w : -((-t + w - 1) / w);
}

bool gr_ready(const struct gr_params *p, const struct gr_edge *e, int64_t now, char *why,
	      size_t whylen)
{
	size_t o = 0;
	bool ok = true;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (e->seen < p->min_seen) {
		ok = false;
		if (why != NULL && o < whylen)
			o += (size_t)snprintf(why + o, whylen - o, "seen %u/%u ticks", e->seen,
					      p->min_seen);
	}
	if (e->windows < p->min_windows) {
		ok = false;
		if (why != NULL && o < whylen)
			o += (size_t)snprintf(why + o, whylen - o, "%swindows %u/%u", o ? ", " : "",
					      e->windows, p->min_windows);
	}
	int64_t age = e->seen > 0 && e->first_seen != NEVER ? now - e->first_seen : 0;
	if (age < p->min_age_ms) {
		char a[32], m[32];
		ok = false;
		if (why != NULL && o < whylen)
			o += (size_t)snprintf(why + o, whylen - o, "%sage %s/%s", o ? ", " : "",
					      kl_duration_format(age > 0 ? (uint64_t)age / 1000 * 1000000000ull : 0,
								 a, sizeof(a)),
					      kl_duration_format((uint64_t)p->min_age_ms * 1000000ull,
								 m, sizeof(m)));
	}
	(void)o;
	return ok;
}

size_t gr_promote(struct gr_graph *g, int64_t now)
{
	size_t n = 0;

	if (g->p.mode != GR_MODE_LEARN)
		return 0;
	for (size_t i = 0; i < g->n; i++) {
		struct gr_edge *e = &g->e[i];
		if (e->state == GR_CANDIDATE && gr_ready(&g->p, e, now, NULL, 0)) {
			set_state(g, e, GR_LEARNED, GR_BY_LEARNER, -1, now);
			n++;
		}
	}
	return n;
}

size_t gr_expire(struct gr_graph *g, int64_t now)
{
	size_t n = 0, purged = 0;
	int64_t ttl = g->p.expire_ttl_ms;

	if (ttl <= 0)
		return 0;
	for (size_t i = 0; i < g->n; i++) {
		struct gr_edge *e = &g->e[i];
		if (e->last_seen == NEVER)
			continue; /* made by the operator, never seen: nothing to age */
		int64_t idle = now - e->last_seen;
		if ((e->state == GR_CANDIDATE || e->state == GR_LEARNED) && idle >= ttl) {
			set_state(g, e, GR_EXPIRED, GR_BY_LEARNER, -1, now);
			n++;
		} else if (e->state == GR_EXPIRED && idle >= 2 * ttl) {
			g->count[GR_EXPIRED]--;
			e->state = GR_GONE;
			gr_touch(g, e);
			g->ngone++;
			purged++;
		}
	}
	g->last.purged += purged;
	return n;
}

/* ---- a tick ---- */

static int add_viol(struct gr_graph *g, const struct gr_edge *e, int64_t t)
{
	struct gr_viol *nv = kl_grow(g->viol, g->nviol, &g->viol_cap, sizeof(*nv), 64);
	if (nv == NULL)
		return -1;
	g->viol = nv;
	struct gr_viol *v = &g->viol[g->nviol++];
	memset(v, 0, sizeof(*v));
	v->k = e->k;
	v->t_ms = t;
	v->mode = (uint8_t)g->p.mode;
	v->action = g->p.mode == GR_MODE_ENFORCE ? GR_ACT_BLOCK : GR_ACT_SIGNAL;
	v->state = e->state;
	return 0;
}

/* ---- per-edge baselines (edgebase.h) ---- */

/* After the tick's flows are merged: every edge seen in it either learns
 * its rates or, a learned edge far above its baseline, raises a deviation
 * (observe mode whatever the graph mode: it adds strikes and never blocks
 * by itself; the source is then kept out of learning like a violator).
 * Suspicious sources and denied or expired edges teach nothing. */
static int edge_baselines(struct gr_graph *g, int64_t t, int64_t dt)
{
	const struct gr_eb_params *p = &g->p.eb;

	if (!p->enabled || dt <= 0)
		return 0;
	for (size_t i = 0; i < g->ndirty; i++) {
		if (g->dirty[i] >= g->n)
			continue;
		struct gr_edge *e = &g->e[g->dirty[i]];
		if (e->last_seen != t || e->state == GR_DENIED || e->state == GR_EXPIRED ||
		    e->state == GR_GONE)
			continue;
		const double x[GR_EB_NF] = { (double)e->tick_pkts * 1000.0 / (double)dt,
					     (double)e->tick_bytes * 1000.0 / (double)dt };
		bool mature = e->state == GR_LEARNED || gr_in_baseline(e);
		enum gr_eb_verdict v = gr_eb_judge(p, &e->eb, x);
		if (v == GR_EB_DEVIATION && mature) {
			if (susp_mark(g, e->k.family, e->k.addr, t + g->p.suspect_hold_ms) < 0)
				return -1;
			if (e->last_deviation != NEVER && t - e->last_deviation < g->p.viol_repeat_ms)
				continue;
			if (g->nviol >= g->p.viol_max_tick) {
				g->last.viol_suppressed++;
				continue;
			}
			if (add_viol(g, e, t) < 0)
				return -1;
			g->viol[g->nviol - 1].mode = GR_MODE_OBSERVE;
			g->viol[g->nviol - 1].action = GR_ACT_DEVIATION;
			e->last_deviation = t;
			g->last.deviations++;
			continue;
		}
		if (v != GR_EB_LEARN || suspicious(g, &e->k, t))
			continue;
		gr_eb_learn(p, &e->eb, x);
		e->eb_dirty = 1;
	}
	return 0;
}

void gr_eb_flush_all(struct gr_graph *g)
{
	g->eb_flush = true;
}

/* The edge appeared in this tick. With `count`, it is evidence: seen once
 * per tick however many records name it, and once per window. */
static void note_seen(struct gr_graph *g, struct gr_edge *e, const struct gr_obs *o, int64_t t,
		      bool count)
{
	if (e->last_seen != t)
		e->tick_pkts = e->tick_bytes = 0;
	e->tick_pkts += o->pkts;
	e->tick_bytes += o->bytes;
	if (count && e->last_seen != t) {
		int64_t w = window_of(&g->p, t);
		if (e->seen < UINT32_MAX)
			e->seen++;
		if (w != e->last_window && e->windows < UINT32_MAX)
			e->windows++;
		e->last_window = w;
	}
	if (e->first_seen == NEVER)
		e->first_seen = t;
	e->last_seen = t;
	e->pkts += o->pkts;
	e->bytes += o->bytes;
	gr_touch(g, e);
}

static int merge_one(struct gr_graph *g, const struct gr_obs *o, int64_t t)
{
	struct gr_key k;
	struct gr_tick_stats *st = &g->last;
	bool frozen_mode = g->p.mode != GR_MODE_LEARN;

	st->obs++;
	if (!gr_key_of(&g->p, &o->src, o->port, o->proto, &k)) {
		st->excluded++;
		return 0;
	}
	bool susp = suspicious(g, &k, t);
	struct gr_edge *e = gr_find(g, &k);

	if (e == NULL) {
		/* In the frozen modes the edge is recorded even so: the operator
		 * may want to approve what was refused. */
		if (susp && !frozen_mode) {
			st->suspicious++;
			return 0;
		}
		e = insert(g, &k);
		if (e == NULL)
			return -1;
		e->state = GR_CANDIDATE;
		e->by = GR_BY_LEARNER;
		e->state_at = t;
		e->changed = 1;
		g->count[GR_CANDIDATE]++;
		st->new_edges++;
	} else if (e->state == GR_EXPIRED || e->state == GR_GONE) {
		if (susp && !frozen_mode) {
			st->suspicious++;
			return 0;
		}
		/* Deleted, but the store has not been told yet (a failed
		 * flush): it comes back instead. */
		if (e->state == GR_GONE)
			g->ngone--;
		/* Back after expiry: evidence starts from scratch. */
		e->seen = 0;
		e->windows = 0;
		e->last_window = NEVER;
		e->first_seen = NEVER;
		e->pkts = e->bytes = 0;
		set_state(g, e, GR_CANDIDATE, GR_BY_LEARNER, -1, t);
	}
	/* Learning must not take in what a rate-limited, blocked or violating
	 * source does: its edges stay current but gain no evidence. */
	bool learnable = e->state == GR_CANDIDATE || e->state == GR_LEARNED;
	note_seen(g, e, o, t, !(susp && learnable));
	if (susp && learnable)
		st->suspicious++;
	else
		st->merged++;

	if (frozen_mode && !gr_in_baseline(e)) {
		if (e->last_violation != NEVER && t - e->last_violation < g->p.viol_repeat_ms)
			return 0;
		if (g->nviol >= g->p.viol_max_tick) {
			st->viol_suppressed++;
			return 0;
		}
		if (add_viol(g, e, t) < 0)
			return -1;
		e->last_violation = t;
		if (g->p.mode == GR_MODE_ENFORCE && e->state != GR_DENIED)
			e->deny_until = t + g->p.deny_ttl_ms;
		if (susp_mark(g, k.family, k.addr, t + g->p.suspect_hold_ms) < 0)
			return -1;
		st->violations++;
	}
	return 0;
}

int gr_tick(struct gr_graph *g, int64_t t, const struct gr_obs *obs, size_t nobs,
	    const struct kl_addr *suspects, size_t nsusp)
{
	if (g->last_t != NEVER && t < g->last_t)
		t = g->last_t;
	const int64_t prev_t = g->last_t;
	memset(&g->last, 0, sizeof(g->last));
	g->nviol = 0;
	g->last_t = t;
	for (size_t i = 0; i < nsusp; i++) {
		if (suspects[i].family != 4 && suspects[i].family != 6)
			continue;
		if (susp_mark(g, suspects[i].family, suspects[i].addr, t + g->p.suspect_hold_ms) < 0)
			return -1;
	}
	for (size_t i = 0; i < nobs; i++)
		if (merge_one(g, &obs[i], t) < 0)
			return -1;
	if (prev_t != NEVER && edge_baselines(g, t, t - prev_t) < 0)
		return -1;
	if (g->next_promote == NEVER) {
		int64_t every = g->p.promote_every_ms > 0 ? g->p.promote_every_ms : 1;
		g->next_promote = (t / every + 1) * every;
	} else if (t >= g->next_promote) {
		int64_t every = g->p.promote_every_ms > 0 ? g->p.promote_every_ms : 1;
		g->last.maintained = true;
		g->eb_flush = true;
		g->last.promoted = gr_promote(g, t);
		g->last.expired = gr_expire(g, t);
		if (g->nsusp > 0)
			susp_rebuild(g, t, 0);
		g->next_promote = (t / every + 1) * every;
	}
	return 0;
}

void gr_flushed(struct gr_graph *g)
{
	for (size_t i = 0; i < g->ndirty; i++)
		if (g->dirty[i] < g->n)
			g->e[g->dirty[i]].dirty = 0;
	g->ndirty = 0;
	if (g->ngone == 0)
		return;
	size_t w = 0;
	for (size_t r = 0; r < g->n; r++) {
		if (g->e[r].state == GR_GONE)
			continue;
		if (w != r)
			g->e[w] = g->e[r];
		w++;
	}
	g->n = w;
	g->ngone = 0;
	rehash(g, g->nslot); /* same size: ids moved */
}

/* ---- operator actions ---- */

void gr_freeze(struct gr_graph *g, int64_t now, bool dry_run, int32_t uid,
	       struct gr_freeze_report *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < g->n; i++) {
		struct gr_edge *e = &g->e[i];
		switch (e->state) {
		case GR_LEARNED:
			r->frozen_now++;
			if (!dry_run)
				set_state(g, e, GR_FROZEN, GR_BY_FREEZE, uid, now);
			break;
		case GR_FROZEN: r->already_frozen++; break;
		case GR_APPROVED: r->approved++; break;
		case GR_DENIED: r->denied++; break;
		case GR_CANDIDATE: r->not_ready++; break;
		case GR_EXPIRED: r->expired++; break;
		default: break;
		}
	}
}

long gr_set_source(struct gr_graph *g, const struct kl_addr *src, bool all_ports, uint16_t port,
		   uint8_t proto, enum gr_state to, int32_t uid, int64_t now, char *why,
		   size_t whylen)
{
	struct gr_key k;
	long n = 0;
	char ip[KL_ADDR_STRLEN];

	if (!kl_addr_is_host(src) || !gr_key_of(&g->p, src, port, proto, &k)) {
		snprintf(why, whylen, "%s is not a source the graph learns (a host address outside "
			 "loopback, multicast and the excluded CIDRs)",
			 kl_addr_format(src, ip, sizeof(ip)));
		return -1;
	}
	if (all_ports) {
		size_t alen = src->family == 4 ? 4 : 16;
		for (size_t i = 0; i < g->n; i++) {
			struct gr_edge *e = &g->e[i];
			if (e->state == GR_GONE || e->k.family != k.family ||
			    memcmp(e->k.addr, k.addr, alen) != 0)
				continue;
			/* Frozen edges are in the baseline already: approving the
			 * source leaves them (and who froze them) as they are. */
			if (to == GR_APPROVED && e->state == GR_FROZEN)
				continue;
			if (e->state != to) {
				set_state(g, e, to, GR_BY_OPERATOR, uid, now);
				n++;
			} else if (e->by_uid != uid) {
				e->by = GR_BY_OPERATOR;
				e->by_uid = uid;
				e->changed = 1;
				gr_touch(g, e);
			}
			if (to == GR_APPROVED)
				e->deny_until = NEVER;
		}
		return n;
	}
	struct gr_edge *e = gr_find(g, &k);
	if (e == NULL || e->state == GR_GONE) {
		if (e == NULL && (e = insert(g, &k)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		if (e->state == GR_GONE)
			g->ngone--;
		e->state = (uint8_t)to;
		e->by = GR_BY_OPERATOR;
		e->by_uid = uid;
		e->state_at = now;
		e->changed = 1;
		g->count[to]++;
		gr_touch(g, e);
		return 1;
	}
	if (to == GR_APPROVED)
		e->deny_until = NEVER;
	if (e->state == to)
		return 0;
	set_state(g, e, to, GR_BY_OPERATOR, uid, now);
	return 1;
}
