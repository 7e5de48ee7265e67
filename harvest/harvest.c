/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Harvest deltas. The previous-counter table holds entries densely (so the
 * end-of-tick sweep walks only live entries) behind an open-addressing
 * index of u32 slots, linear probing, backward-shift deletion: no
 * tombstones, so a table that churns through flows and sources coming and
 * going (slots robbed and claimed again) for months never degrades.
 */
#include "harvest/harvest.h"

#include "common/hash.h"

#include <stdlib.h>
#include <string.h>

#define KEY_LEN 20

struct ent_hdr {
	uint8_t key[KEY_LEN]; /* family, addr[16], then port (LE) and proto for flows */
	uint32_t hash;
	uint64_t seen_tick;   /* last tick the entry was fed */
	uint64_t seen_ns;     /* CLOCK_BOOTTIME then (for prev_ttl) */
	uint64_t seen_vt;     /* virtual time then (for the rate span) */
	uint64_t first_seen_ns;
};

struct src_ent {
	struct ent_hdr h;
	uint64_t c[KL_R_MAX]; /* indexed like the rates */
	bool restricted;      /* kl_src_restricted() when last fed */
};

struct flow_ent {
	struct ent_hdr h;
	uint64_t pkts, bytes;
};

struct kl_ptab {
	uint8_t *ents;   /* n entries of esz bytes */
	size_t esz, n, ecap;
	uint32_t *idx;   /* 0 = empty, else dense index + 1 */
	size_t mask;     /* idx has mask + 1 slots, a power of two */
};

/* ---- table ---- */

static uint32_t key_hash(const uint8_t *k)
{
	uint64_t a, b;
	uint32_t c;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	memcpy(&c, k + 16, 4);
	return (uint32_t)kl_mix64(a ^ kl_mix64(b ^ kl_mix64(c ^ 0x9e3779b97f4a7c15ull)));
}

static struct ent_hdr *ent_at(const struct kl_ptab *t, size_t i)
{
	return (struct ent_hdr *)(t->ents + i * t->esz);
}

static struct kl_ptab *ptab_new(size_t esz, size_t hint)
{
	struct kl_ptab *t = calloc(1, sizeof(*t));
	size_t slots = 1024;

	if (t == NULL)
		return NULL;
	while (slots < hint + hint / 3)
		slots *= 2;
	t->esz = esz;
	t->mask = slots - 1;
	t->idx = calloc(slots, sizeof(*t->idx));
	t->ecap = slots * 3 / 4;
	t->ents = malloc(t->ecap * esz);
	if (t->idx == NULL || t->ents == NULL) {
		free(t->idx);
		free(t->ents);
		free(t);
		return NULL;
	}
	return t;
}

static void ptab_free(struct kl_ptab *t)
{
	if (t == NULL)
		return;
	free(t->idx);
	free(t->ents);
	free(t);
}

/* A probe over the index: for key (with its hash), for dense entry id - 1
 * (id set), or for an empty slot (neither). */
struct ptab_probe {
	const struct kl_ptab *t;
	const uint8_t *key;
	uint32_t hash;
	uint32_t id;
};

static inline bool ptab_stop(const void *ctx, size_t s)
{
	const struct ptab_probe *p = ctx;
	uint32_t v = p->t->idx[s];

	if (p->id != 0)
		return v == p->id;
	if (v == 0)
		return true;
	if (p->key == NULL)
		return false;
	const struct ent_hdr *e = ent_at(p->t, v - 1);
	return e->hash == p->hash && memcmp(e->key, p->key, KEY_LEN) == 0;
}

static size_t free_slot(struct kl_ptab *t, uint32_t hash)
{
	struct ptab_probe p = { t, NULL, hash, 0 };

	return kl_probe(hash, t->mask, ptab_stop, &p);
}

static int ptab_grow(struct kl_ptab *t)
{
	size_t slots = (t->mask + 1) * 2;
	uint32_t *idx = calloc(slots, sizeof(*idx));
	uint8_t *ents;

	if (idx == NULL)
		return -1;
	ents = realloc(t->ents, slots * 3 / 4 * t->esz);
	if (ents == NULL) {
		free(idx);
		return -1;
	}
	t->ents = ents;
	t->ecap = slots * 3 / 4;
	free(t->idx);
	t->idx = idx;
	t->mask = slots - 1;
	for (size_t i = 0; i < t->n; i++)
		t->idx[free_slot(t, ent_at(t, i)->hash)] = (uint32_t)(i + 1);
	return 0;
}

/* The entry for key, or NULL with *slot = the empty index slot where it
 * would go. */
static struct ent_hdr *ptab_find(struct kl_ptab *t, const uint8_t *key, uint32_t hash,
				 size_t *slot)
{
	struct ptab_probe p = { t, key, hash, 0 };
	size_t s = kl_probe(hash, t->mask, ptab_stop, &p);

	if (t->idx[s] != 0)
		return ent_at(t, t->idx[s] - 1);
	*slot = s;
	return NULL;
}

/* The entry for key, inserting a zeroed one if absent (*fresh = true).
 * NULL only when out of memory. */
static struct ent_hdr *ptab_get(struct kl_ptab *t, const uint8_t *key, bool *fresh)
{
	uint32_t hash = key_hash(key);
	size_t s;
	struct ent_hdr *found = ptab_find(t, key, hash, &s);

	if (found != NULL) {
		*fresh = false;
		return found;
	}
	if (t->n + 1 > t->ecap) {
		if (ptab_grow(t) < 0)
			return NULL;
		s = free_slot(t, hash);
	}
	struct ent_hdr *e = ent_at(t, t->n);
	memset(e, 0, t->esz);
	memcpy(e->key, key, KEY_LEN);
	e->hash = hash;
	t->idx[s] = (uint32_t)(t->n + 1);
	t->n++;
	*fresh = true;
	return e;
}

static size_t slot_of(struct kl_ptab *t, size_t i)
{
	struct ptab_probe p = { t, NULL, 0, (uint32_t)(i + 1) };

	return kl_probe(ent_at(t, i)->hash, t->mask, ptab_stop, &p);
}

static bool idx_empty(const void *ctx, size_t s)
{
	const struct kl_ptab *t = ctx;

	return t->idx[s] == 0;
}

static size_t idx_home(const void *ctx, size_t s)
{
	const struct kl_ptab *t = ctx;

	return ent_at(t, t->idx[s] - 1)->hash & t->mask;
}

static void idx_move(void *ctx, size_t to, size_t from)
{
	struct kl_ptab *t = ctx;

	t->idx[to] = t->idx[from];
}

static void idx_clear(void *ctx, size_t s)
{
	struct kl_ptab *t = ctx;

	t->idx[s] = 0;
}

static const struct kl_probe_ops idx_ops = { idx_empty, idx_home, idx_move, idx_clear };

/* Remove dense entry i; the last entry moves into its place. */
static void ptab_del(struct kl_ptab *t, size_t i)
{
	kl_probe_delete(slot_of(t, i), t->mask, &idx_ops, t);
	size_t last = t->n - 1;
	if (i != last) {
		t->idx[slot_of(t, last)] = (uint32_t)(i + 1);
		memcpy(ent_at(t, i), ent_at(t, last), t->esz);
	}
	t->n--;
}

/* ---- harvest ---- */

int kl_harvest_init(struct kl_harvest *h, uint64_t prev_ttl_ns, size_t src_hint,
		    size_t flow_hint)
{
	memset(h, 0, sizeof(*h));
	h->prev_ttl_ns = prev_ttl_ns;
	h->src = ptab_new(sizeof(struct src_ent), src_hint);
	h->flow = ptab_new(sizeof(struct flow_ent), flow_hint);
	if (h->src == NULL || h->flow == NULL) {
		kl_harvest_free(h);
		return -1;
	}
	return 0;
}

void kl_harvest_free(struct kl_harvest *h)
{
	ptab_free(h->src);
	ptab_free(h->flow);
	h->src = h->flow = NULL;
	for (int i = 0; i < 2; i++) {
		free(h->slots[i]);
		h->slots[i] = NULL;
	}
}

uint64_t kl_harvest_begin(struct kl_harvest *h, uint64_t now_ns, uint64_t elapsed_ns)
{
	if (!h->started) {
		h->started = true;
		h->tick = 0;
		h->elapsed_ns = 0;
	} else {
		h->tick++;
		if (elapsed_ns == 0)
			elapsed_ns = now_ns > h->now_ns ? now_ns - h->now_ns : 0;
		/* A zero span cannot carry a rate; a clock that did not move
		 * (only in tests) still makes a tick of 1 ms. */
		h->elapsed_ns = elapsed_ns ? elapsed_ns : 1000000;
		h->vt_ns += h->elapsed_ns;
		h->prev_ns = h->now_ns;
	}
	h->now_ns = now_ns;
	memset(&h->st, 0, sizeof(h->st));
	memset(h->totals_delta, 0, sizeof(h->totals_delta));
	return h->tick;
}

static void src_counters(const struct kl_src_stats *s, uint64_t c[KL_R_MAX])
{
	c[KL_R_PPS] = s->pkts;
	c[KL_R_BPS] = s->bytes;
	c[KL_R_SYN] = s->syn;
	c[KL_R_SYNACK] = s->synack;
	c[KL_R_RST] = s->rst;
	c[KL_R_SCAN] = s->ports_distinct;
	c[KL_R_PASS] = s->pass;
	c[KL_R_DROP_ALLOW] = s->drop_allow;
	c[KL_R_DROP_DENY] = s->drop_deny;
	c[KL_R_DROP_RL] = s->drop_rl;
	c[KL_R_DROP_EDGE] = s->drop_edge;
}

/* Key bytes of a source or flow. */
static void make_key(uint8_t key[KEY_LEN], uint8_t family, const uint8_t *addr, uint16_t port,
		     uint8_t proto)
{
	memset(key, 0, KEY_LEN);
	key[0] = family;
	memcpy(key + 1, addr, family == 4 ? 4 : 16);
	key[17] = (uint8_t)port;
	key[18] = (uint8_t)(port >> 8);
	key[19] = proto;
}

enum fate { F_SKIP, F_BASE, F_DELTA, F_RESTART };

/* What a fed entry means, from its table state (see harvest.h). */
static enum fate classify(struct kl_harvest *h, struct ent_hdr *e, bool fresh,
			  uint64_t first_seen_ns)
{
	if (!fresh && e->seen_tick == h->tick)
		return F_SKIP;
	if (h->tick == 0)
		return F_BASE;
	if (fresh)
		return h->all_new || first_seen_ns + KL_HARVEST_NEW_SLACK_NS >= h->prev_ns ? F_RESTART
											: F_BASE;
	if (e->first_seen_ns != first_seen_ns)
		return F_RESTART;
	return F_DELTA;
}

bool kl_src_restricted(const struct kl_src_stats *s, uint64_t now_ns)
{
	uint32_t v = s->verdict;

	if (!(v & KL_V_CACHED) || (v & KL_V_PROTECTED))
		return false;
	if ((v & KL_V_DENIED) && (s->deny_expires_ns == 0 || s->deny_expires_ns > now_ns))
		return true;
	return (v & KL_V_RL) && (s->rl_expires_ns == 0 || s->rl_expires_ns > now_ns);
}

/* The rates of one fed source (see harvest.h): after the delta check
 * (a counter that went backwards means a restart), its counters c minus
 * prev over the span since it was last fed at virtual time seen_vt, or
 * all of c over this tick for a new or restarted source. is_new tells
 * which of the two a restart counts as. True with *out filled when any
 * counter moved. */
static bool src_rates(struct kl_harvest *h, enum fate f, bool is_new, const uint64_t c[KL_R_MAX],
		      const uint64_t prev[KL_R_MAX], uint64_t seen_vt, uint8_t family,
		      const uint8_t *addr, struct kl_src_rate *out)
{
	uint64_t d[KL_R_MAX], span = h->elapsed_ns;
	bool any = false;

	if (f == F_DELTA) {
		for (int k = 0; k < KL_R_MAX; k++) {
			if (c[k] < prev[k]) {
				f = F_RESTART;
				break;
			}
		}
	}
	if (f == F_BASE) {
		if (h->tick != 0)
			h->st.src_unknown++;
		return false;
	}
	if (f == F_RESTART) {
		memcpy(d, c, sizeof(d));
		if (is_new)
			h->st.src_new++;
		else
			h->st.src_restarted++;
	} else {
		for (int k = 0; k < KL_R_MAX; k++)
			d[k] = c[k] - prev[k];
		if (h->vt_ns > seen_vt)
			span = h->vt_ns - seen_vt;
	}
	for (int k = 0; k < KL_R_MAX; k++)
		any |= d[k] != 0;
	if (!any)
		return false;
	double inv = 1e9 / (double)span;
	out->family = family;
	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, addr, family == 4 ? 4 : 16);
	for (int k = 0; k < KL_R_MAX; k++)
		out->r[k] = (double)d[k] * inv;
	h->st.src_active++;
	return true;
}

bool kl_harvest_src(struct kl_harvest *h, uint8_t family, const uint8_t *addr,
		    const struct kl_src_stats *cur, struct kl_src_rate *out)
{
	uint8_t key[KEY_LEN];
	uint64_t c[KL_R_MAX];
	bool fresh, any;
	struct src_ent *e;

	make_key(key, family, addr, 0, 0);
	e = (struct src_ent *)ptab_get(h->src, key, &fresh);
	if (e == NULL)
		return false;
	enum fate f = classify(h, &e->h, fresh, cur->first_seen_ns);
	if (f == F_SKIP) {
		h->st.src_dup++;
		return false;
	}
	h->st.src_seen++;
	src_counters(cur, c);
	any = src_rates(h, f, fresh, c, e->c, e->h.seen_vt, family, addr, out);
	memcpy(e->c, c, sizeof(c));
	e->restricted = kl_src_restricted(cur, h->now_ns);
	e->h.first_seen_ns = cur->first_seen_ns;
	e->h.seen_tick = h->tick;
	e->h.seen_ns = h->now_ns;
	e->h.seen_vt = h->vt_ns;
	return any;
}

/* ---- by slot ---- */

struct slot_prev {
	uint32_t seq;     /* 0 = never fed */
	uint32_t pad;
	uint64_t owner[2];
	uint64_t first_seen_ns;
	uint64_t seen_vt;
	uint64_t c[KL_R_MAX];
};

struct kl_slotprev {
	uint32_t n;
	struct slot_prev e[];
};

int kl_harvest_slots(struct kl_harvest *h, uint8_t family, uint32_t nslots)
{
	int i = family == 4 ? 0 : 1;
	/* calloc: pages of slots never claimed are never touched. */
	struct kl_slotprev *p =
		calloc(1, sizeof(struct kl_slotprev) + (size_t)nslots * sizeof(struct slot_prev));

	if (p == NULL)
		return -1;
	p->n = nslots;
	free(h->slots[i]);
	h->slots[i] = p;
	return 0;
}

bool kl_harvest_slot(struct kl_harvest *h, uint32_t slot, const struct kl_src_slot *cur,
		     struct kl_src_rate *out)
{
	struct kl_slotprev *p = h->slots[cur->family == 4 ? 0 : 1];
	uint64_t c[KL_R_MAX];
	const struct kl_src_stats *s = &cur->s;
	struct slot_prev *e;
	bool same, any;
	enum fate f;

	if (p == NULL || slot >= p->n || (cur->family != 4 && cur->family != 6))
		return false;
	e = &p->e[slot];
	h->st.src_seen++;
	src_counters(s, c);
	same = e->seq == cur->seq && e->owner[0] == cur->owner64[0] &&
	       e->owner[1] == cur->owner64[1] && e->first_seen_ns == s->first_seen_ns;
	if (h->tick == 0)
		f = F_BASE;
	else if (!same)
		/* Another claim: new, unless it predates the previous harvest
		 * (then its history is unknown). */
		f = h->all_new || s->first_seen_ns + KL_HARVEST_NEW_SLACK_NS >= h->prev_ns ? F_RESTART
											     : F_BASE;
	else
		f = F_DELTA;
	any = src_rates(h, f, !same, c, e->c, e->seen_vt, (uint8_t)cur->family, cur->owner, out);
	memcpy(e->c, c, sizeof(c));
	e->seq = cur->seq;
	e->owner[0] = cur->owner64[0];
	e->owner[1] = cur->owner64[1];
	e->first_seen_ns = s->first_seen_ns;
	e->seen_vt = h->vt_ns;
	if (kl_src_restricted(s, h->now_ns)) {
		/* Only restricted sources enter the address table; a flow's
		 * source counts as restricted when fed so this tick. */
		uint8_t key[KEY_LEN];
		bool fresh;
		struct src_ent *r;

		make_key(key, (uint8_t)cur->family, cur->owner, 0, 0);
		r = (struct src_ent *)ptab_get(h->src, key, &fresh);
		if (r != NULL) {
			r->restricted = true;
			r->h.first_seen_ns = s->first_seen_ns;
			r->h.seen_tick = h->tick;
			r->h.seen_ns = h->now_ns;
			r->h.seen_vt = h->vt_ns;
		}
	}
	return any;
}

bool kl_harvest_flow(struct kl_harvest *h, uint8_t family, const uint8_t *addr, uint16_t port,
		     uint8_t proto, const struct kl_flow_stats *cur, struct kl_flow_rec *out)
{
	uint8_t key[KEY_LEN];
	uint64_t dp = 0, db = 0;
	struct flow_ent *e;
	bool fresh;

	make_key(key, family, addr, port, proto);
	e = (struct flow_ent *)ptab_get(h->flow, key, &fresh);
	if (e == NULL)
		return false;
	enum fate f = classify(h, &e->h, fresh, cur->first_seen_ns);
	if (f == F_SKIP) {
		/* Two CPUs can claim two slots for one new flow at once, until
		 * the data plane gives one back: the second record in a walk
		 * is no news about the first, and a delta against it would
		 * count twice or fake a restart. */
		h->st.flow_dup++;
		return false;
	}
	h->st.flow_seen++;
	if (f == F_DELTA && (cur->pkts < e->pkts || cur->bytes < e->bytes))
		f = F_RESTART;
	if (f == F_RESTART) {
		dp = cur->pkts;
		db = cur->bytes;
	} else if (f == F_DELTA) {
		dp = cur->pkts - e->pkts;
		db = cur->bytes - e->bytes;
	}
	e->pkts = cur->pkts;
	e->bytes = cur->bytes;
	e->h.first_seen_ns = cur->first_seen_ns;
	e->h.seen_tick = h->tick;
	e->h.seen_ns = h->now_ns;
	e->h.seen_vt = h->vt_ns;
	/* A flow record says "these packets went there this tick": without
	 * packets there is nothing to learn. */
	if (dp == 0)
		return false;
	out->family = family;
	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, addr, family == 4 ? 4 : 16);
	out->port = port;
	out->proto = proto;
	out->flags = 0;
	/* Sources are fed before flows, so this is the verdict of this tick. */
	make_key(key, family, addr, 0, 0);
	size_t unused;
	const struct src_ent *src =
		(const struct src_ent *)ptab_find(h->src, key, key_hash(key), &unused);
	if (src != NULL && src->restricted && src->h.seen_tick == h->tick) {
		out->flags |= KL_FLOW_F_RESTRICTED;
		h->st.flow_restricted++;
	}
	out->pkts = dp;
	out->bytes = db;
	h->st.flow_active++;
	return true;
}

void kl_harvest_totals(struct kl_harvest *h, const uint64_t cur[KL_T_MAX])
{
	for (int i = 0; i < KL_T_MAX; i++) {
		if (!h->have_totals || h->tick == 0)
			h->totals_delta[i] = 0;
		else
			h->totals_delta[i] = cur[i] >= h->totals_prev[i] ? cur[i] - h->totals_prev[i]
									  : cur[i];
		h->totals_prev[i] = cur[i];
	}
	h->have_totals = true;
}

static uint64_t sweep(struct kl_harvest *h, struct kl_ptab *t)
{
	uint64_t gone = 0;

	for (size_t i = 0; i < t->n;) {
		struct ent_hdr *e = ent_at(t, i);
		if (e->seen_tick != h->tick && h->now_ns > e->seen_ns &&
		    h->now_ns - e->seen_ns > h->prev_ttl_ns) {
			ptab_del(t, i); /* the last entry moved to i: look at it next */
			gone++;
			continue;
		}
		i++;
	}
	return gone;
}

void kl_harvest_end(struct kl_harvest *h)
{
	h->st.src_forgotten = sweep(h, h->src);
	h->st.flow_forgotten = sweep(h, h->flow);
}

size_t kl_harvest_known_src(const struct kl_harvest *h)
{
	return h->src->n;
}

size_t kl_harvest_known_flows(const struct kl_harvest *h)
{
	return h->flow->n;
}
