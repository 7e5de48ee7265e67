/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Engine of DESIGN §6.2-6.3. dec_engine_step() is the whole per-source rule
 * set; dec_engine_tick() chooses which sources to step (candidates, top-N,
 * elevated sources, violations), keeps their state in an open-addressing
 * table and forgets idle OBSERVE state after --state-ttl.
 *
 * Determinism: the result of a tick depends only on the inputs and the
 * state, never on the hash seed or table layout. Sources are independent,
 * so processing order does not matter; the changes are sorted by address
 * before they leave, and top-N ties are broken by pps, then address.
 */
#include "decider/engine.h"
#include "common/grow.h"
#include "ipc/violation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decider/baseline.h"
#include "decider/table.h"

static const char *const level_names[DEC_LVL_COUNT] = {
	"OBSERVE", "RATE_SOFT", "RATE_HARD", "BLOCK"
};

const char *dec_level_name(unsigned lvl)
{
	return lvl < DEC_LVL_COUNT ? level_names[lvl] : "?";
}

static const char *const reason_names[DEC_R_COUNT] = {
	[DEC_R_NONE] = "none",
	[DEC_R_SOFT_AT] = "strikes>=soft_at",
	[DEC_R_HARD_AT] = "strikes>=hard_at",
	[DEC_R_BLOCK_AT] = "strikes>=block_at",
	[DEC_R_GATE] = "strikes>=block_at,block_gate_closed",
	[DEC_R_NONCOMP] = "noncomp>=noncomp_at",
	[DEC_R_VIOLATION] = "graph_violation",
	[DEC_R_STEP_DOWN] = "quiet:down>=down_need",
	[DEC_R_REFRESH] = "ttl_refresh",
	[DEC_R_WHITELIST] = "whitelist",
	[DEC_R_FORGIVE] = "forgive",
	[DEC_R_APPROVED] = "graph_approved",
};

const char *dec_reason_name(unsigned r)
{
	return r < DEC_R_COUNT ? reason_names[r] : "?";
}

int dec_addr_cmp(const struct kl_addr *a, const struct kl_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->addr, b->addr, sizeof(a->addr));
	if (c != 0)
		return c;
	if (a->prefixlen != b->prefixlen)
		return a->prefixlen < b->prefixlen ? -1 : 1;
	return 0;
}

double dec_severity(const struct dec_engine_params *p, const struct dec_metrics *m)
{
	const double x[DEC_F_COUNT] = { m->pps, m->syn, m->scan, m->bps };
	double sev = 0.0;

	for (int f = 0; f < DEC_F_COUNT; f++) {
		if (!(p->trig[f] > 0.0) || p->w[f] == 0.0)
			continue;
		double n = x[f] / p->trig[f];
		if (n > p->sev_cap)
			n = p->sev_cap;
		sev += p->w[f] * n;
	}
	return sev;
}

void dec_src_init(struct dec_src *s, const struct kl_addr *a)
{
	*s = (struct dec_src){
		.key = *a, .level = DEC_LVL_OBSERVE, .t_change = DEC_T_NEVER, .t_high = DEC_T_NEVER,
		.enforce_until = DEC_T_NEVER, .gate_since = DEC_T_NEVER, .t_seen = DEC_T_NEVER,
	};
}

static inline uint16_t inc16(uint16_t v)
{
	return v == UINT16_MAX ? v : (uint16_t)(v + 1);
}

void dec_change_fill(const struct dec_engine_params *p, struct dec_change *c)
{
	unsigned act = c->to < DEC_LVL_COUNT ? p->action[c->to] : DEC_LVL_OBSERVE;
	unsigned fact = c->from < DEC_LVL_COUNT ? p->action[c->from] : DEC_LVL_OBSERVE;

	if (act > c->to)
		act = c->to;
	if (fact > c->from)
		fact = c->from;
	c->action = (uint8_t)act;
	c->from_action = (uint8_t)fact;
	c->rate = 0;
	c->burst = 0;
	if (act == DEC_LVL_SOFT || act == DEC_LVL_HARD) {
		c->rate = p->rate[act];
		c->burst = p->burst[act];
	}
	c->ttl_ms = c->to > DEC_LVL_OBSERVE ? p->ttl_ms[c->to] : 0;
}

static void make_change(const struct dec_engine_params *p, const struct dec_src *s,
			unsigned from, unsigned to, unsigned reason, double sev,
			int64_t now, struct dec_change *c)
{
	memset(c, 0, sizeof(*c));
	c->addr = s->key;
	c->t_ms = now;
	c->from = (uint8_t)from;
	c->to = (uint8_t)to;
	c->reason = (uint8_t)reason;
	c->strikes = s->strikes;
	c->sev = sev;
	c->feat[0] = s->pps;
	c->feat[1] = s->syn;
	c->feat[2] = s->scan;
	c->feat[3] = s->droprl;
	dec_change_fill(p, c);
}

bool dec_engine_step(const struct dec_engine_params *p, struct dec_src *s,
		    const struct dec_metrics *m, double sev, int viol, int64_t now,
		    struct dec_change *c)
{
	const bool any_drops = m->droprl > 0.0;
	const bool drop_nc = p->noncomp_drop > 0.0 && m->droprl >= p->noncomp_drop;
	const unsigned lvl = s->level;

	/* 1. High and low ticks. */
	const bool high = sev >= p->step[0] || drop_nc || viol != DEC_VIOL_NONE;
	const bool low = !high && sev < p->decay_below && !any_drops;
	if (high) {
		s->up = inc16(s->up);
		s->down = 0;
		s->t_high = now;
	} else if (low) {
		s->down = inc16(s->down);
		s->up = 0;
	} else {
		if (s->up > 0)
			s->up--;
		if (s->down > 0)
			s->down--;
	}

	/* 2. Strikes, capped so that the way back down has a bounded length. */
	int add = 0;
	if (sev >= p->step[2])
		add = p->delta[2];
	else if (sev >= p->step[1])
		add = p->delta[1];
	else if (sev >= p->step[0])
		add = p->delta[0];
	/* Graph violations (docs/security.md, "Graph violations
	 * and spoofing"): a blind spoofer makes one with a single packet carrying
	 * the victim's address, so a violation is a high tick worth delta1
	 * once per tick however many records came, and on a tick whose own
	 * severity is low its strikes stop below soft-at: violations alone
	 * never change a level. */
	const bool viol_only = viol != DEC_VIOL_NONE && sev < p->step[0];
	if (viol != DEC_VIOL_NONE && add < p->delta[0])
		add = p->delta[0];
	int strikes = s->strikes;
	const int cap = p->at[DEC_LVL_BLOCK] + p->at[DEC_LVL_HARD];
	if (add > 0) {
		strikes += add;
		if (strikes > cap)
			strikes = cap;
		if (viol_only && strikes > p->at[DEC_LVL_SOFT] - 1)
			strikes = s->strikes > p->at[DEC_LVL_SOFT] - 1 ? s->strikes
								 : p->at[DEC_LVL_SOFT] - 1;
	} else if (low && s->down >= p->down_need && strikes > 0) {
		strikes--;
	}
	if (strikes > UINT16_MAX)
		strikes = UINT16_MAX;
	s->strikes = (uint16_t)strikes;

	/* 3. Non-compliance: still pushing against the limiter. */
	if (lvl >= DEC_LVL_SOFT) {
		if (drop_nc || sev >= p->noncomp_sev)
			s->noncomp = inc16(s->noncomp);
		else if (sev < p->noncomp_reset_below && !any_drops)
			s->noncomp = 0;
	} else {
		s->noncomp = 0;
	}

	/* Block gate timer: how long severity has stayed at block-min-sev. */
	if (p->block_min_sev > 0.0 && sev >= p->block_min_sev) {
		if (s->gate_since == DEC_T_NEVER)
			s->gate_since = now;
	} else {
		s->gate_since = DEC_T_NEVER;
	}
	const bool gate_open = !(p->block_min_sev > 0.0) ||
			       (s->gate_since != DEC_T_NEVER &&
				now - s->gate_since >= p->block_min_dur_ms);

	/* 4. Target level. */
	unsigned target = DEC_LVL_OBSERVE;
	unsigned reason = DEC_R_NONE;
	if (strikes >= p->at[DEC_LVL_BLOCK]) {
		target = DEC_LVL_BLOCK;
		reason = DEC_R_BLOCK_AT;
	} else if (strikes >= p->at[DEC_LVL_HARD]) {
		target = DEC_LVL_HARD;
		reason = DEC_R_HARD_AT;
	} else if (strikes >= p->at[DEC_LVL_SOFT]) {
		target = DEC_LVL_SOFT;
		reason = DEC_R_SOFT_AT;
	}
	if (lvl == DEC_LVL_HARD && s->noncomp >= p->noncomp_at && target < DEC_LVL_BLOCK) {
		target = DEC_LVL_BLOCK;
		reason = DEC_R_NONCOMP;
	}
	/* A frozen-enforce violation forces its level (past up-need and
	 * cooldown) only with evidence a spoofed packet cannot give cheaply:
	 * the ordinary block gate configured and open (severity >=
	 * block-min-sev held for block-min-dur) and this tick's severity at
	 * graph-freeze-min-sev and sev-step1. */
	bool forced = false;
	const double vmin = p->viol_min_sev > p->step[0] ? p->viol_min_sev : p->step[0];
	if (viol == DEC_VIOL_ENFORCE && p->block_min_sev > 0.0 && gate_open && sev >= vmin) {
		unsigned f = p->viol_level;
		if (f > lvl && f >= target) {
			target = f;
			reason = DEC_R_VIOLATION;
			forced = true;
		}
	}
	if (!forced && target == DEC_LVL_BLOCK && !gate_open) {
		target = DEC_LVL_HARD;
		reason = DEC_R_GATE;
	}
	if (!forced && target > lvl && s->up < p->up_need)
		target = lvl;

	/* 4 (tail) and 5. Stepping down: BLOCK keeps its TTL; then down-need,
	 * the level's minimum hold since the last high tick, one level. */
	if (target < lvl) {
		if (lvl == DEC_LVL_BLOCK && now < s->t_change + p->ttl_ms[DEC_LVL_BLOCK])
			target = lvl;
		else if (s->down < p->down_need)
			target = lvl;
		else if (s->t_high != DEC_T_NEVER && now - s->t_high < p->min_hold_ms[lvl])
			target = lvl;
		else {
			target = lvl - 1;
			reason = DEC_R_STEP_DOWN;
		}
	}

	/* 6. Cooldown between changes (a forced BLOCK does not wait). */
	if (target != lvl && !forced && s->t_change != DEC_T_NEVER &&
	    now - s->t_change < p->cooldown_ms)
		target = lvl;

	if (target != lvl) {
		s->level = (uint8_t)target;
		s->t_change = now;
		s->enforce_until = target > DEC_LVL_OBSERVE ? now + p->ttl_ms[target]
							    : DEC_T_NEVER;
		make_change(p, s, lvl, target, reason, sev, now, c);
		return true;
	}
	/* Keep the enforcer's entry alive while the level holds: renew when
	 * half of the TTL we last sent is gone. */
	if (lvl > DEC_LVL_OBSERVE &&
	    (s->enforce_until == DEC_T_NEVER ||
	     now >= s->enforce_until - p->ttl_ms[lvl] / 2)) {
		s->enforce_until = now + p->ttl_ms[lvl];
		make_change(p, s, lvl, lvl, DEC_R_REFRESH, sev, now, c);
		return true;
	}
	return false;
}

/* ---- the engine ---- */

_Static_assert(sizeof(struct dec_src) == 88, "struct dec_src grew: check the bench's bytes/source");

struct cand {
	double sev;
	double pps;
	uint32_t idx;
};

struct evalent {
	uint64_t h;    /* dec_addr_hash(key, table seed), for prefetching */
	uint32_t idx;  /* into src[], or UINT32_MAX for "no metrics this tick" */
	uint8_t viol;
	uint8_t ex;
	double sev;
	struct kl_addr key;
};

struct dec_engine {
	struct dec_engine_params p;
	struct dec_srctab tab;
	struct dec_keyset elev, elev_next, viol;
	struct cand *heap;
	size_t heap_n, heap_cap;
	bool heap_built;
	struct evalent *ev;
	size_t ev_n, ev_cap;
	int64_t last_sweep;
	struct dec_engine_stats st;
	/* baselines: this tick's sources that may be observations */
	struct dec_baselines *bl;
	uint32_t *bl_idx;
	size_t bl_n, bl_cap;
};

struct dec_engine *dec_engine_new(const struct dec_engine_params *p, uint64_t seed)
{
	struct dec_engine *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->p = *p;
	if (dec_srctab_init(&e->tab, 1024, seed) < 0) {
		free(e);
		return NULL;
	}
	dec_keyset_init(&e->elev, seed + 1);
	dec_keyset_init(&e->elev_next, seed + 1);
	dec_keyset_init(&e->viol, seed + 2);
	e->last_sweep = DEC_T_NEVER;
	return e;
}

void dec_engine_free(struct dec_engine *e)
{
	if (e == NULL)
		return;
	dec_srctab_free(&e->tab);
	dec_keyset_free(&e->elev);
	dec_keyset_free(&e->elev_next);
	dec_keyset_free(&e->viol);
	free(e->heap);
	free(e->ev);
	free(e->bl_idx);
	free(e);
}

void dec_engine_set_params(struct dec_engine *e, const struct dec_engine_params *p)
{
	e->p = *p;
}

const struct dec_engine_params *dec_engine_params(const struct dec_engine *e)
{
	return &e->p;
}

const struct dec_engine_stats *dec_engine_stats(const struct dec_engine *e)
{
	return &e->st;
}

const struct dec_src *dec_engine_lookup(const struct dec_engine *e, const struct kl_addr *a)
{
	struct kl_addr key;

	if (!dec_addr_key(a, &key))
		return NULL;
	return dec_srctab_find(&e->tab, &key);
}

static void count_level(struct dec_engine *e, unsigned from, unsigned to);

int dec_engine_adopt(struct dec_engine *e, const struct kl_addr *a, unsigned level,
		    int64_t ttl_left_ms, int64_t now)
{
	const struct dec_engine_params *p = &e->p;
	struct kl_addr key;
	struct dec_src *s;
	bool created;

	if (level <= DEC_LVL_OBSERVE || level >= DEC_LVL_COUNT || !dec_addr_key(a, &key))
		return -1;
	s = dec_srctab_insert_h(&e->tab, &key, dec_addr_hash(&key, e->tab.seed), &created);
	if (s == NULL)
		return -1;
	if (created)
		e->st.per_level[DEC_LVL_OBSERVE]++;
	if (s->level > DEC_LVL_OBSERVE)
		return 0;
	if (!(s->flags & DEC_SRC_F_ELEVATED)) {
		if (dec_keyset_add(&e->elev, &key) == NULL)
			return -1;
		s->flags |= DEC_SRC_F_ELEVATED;
	}
	int strikes = p->at[level];
	if (strikes > UINT16_MAX)
		strikes = UINT16_MAX;
	if (ttl_left_ms <= 0)
		ttl_left_ms = p->ttl_ms[level];
	/* Entered the level when the entry was written: the BLOCK hold and the
	 * renewal then end where the enforcer's entry does. */
	int64_t entered = now + ttl_left_ms - p->ttl_ms[level];
	if (entered > now)
		entered = now;
	count_level(e, DEC_LVL_OBSERVE, level);
	s->level = (uint8_t)level;
	s->strikes = (uint16_t)strikes;
	s->up = 0;
	s->down = 0;
	s->noncomp = 0;
	s->t_change = entered;
	s->t_high = entered;
	s->enforce_until = now + ttl_left_ms;
	s->gate_since = DEC_T_NEVER;
	s->sev = 0.0f;
	s->pps = s->syn = s->scan = s->droprl = 0.0f;
	e->st.tracked = e->tab.n;
	return 1;
}

void dec_engine_foreach(const struct dec_engine *e,
		       void (*fn)(void *ctx, const struct dec_src *s), void *ctx)
{
	for (size_t i = 0; i < e->tab.cap; i++) {
		if (e->tab.slots[i].key.family != 0)
			fn(ctx, &e->tab.slots[i]);
	}
}

double dec_engine_bytes_per_source(const struct dec_engine *e)
{
	size_t bytes = e->tab.cap * sizeof(struct dec_src) +
		       (e->elev.cap + e->elev_next.cap) * sizeof(struct dec_keyslot);

	return e->tab.n ? (double)bytes / (double)e->tab.n : 0.0;
}

void dec_changes_free(struct dec_changes *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static struct dec_change *changes_push(struct dec_changes *c)
{
	struct dec_change *nv = kl_grow(c->v, c->n, &c->cap, sizeof(*nv), 64);

	if (nv == NULL)
		return NULL;
	c->v = nv;
	return &c->v[c->n++];
}

/* "Better" candidate: higher severity, then higher pps, then lower address. */
static bool cand_better(const struct dec_metrics *src, const struct cand *a,
			const struct cand *b)
{
	if (a->sev != b->sev)
		return a->sev > b->sev;
	if (a->pps != b->pps)
		return a->pps > b->pps;
	return dec_addr_cmp(&src[a->idx].addr, &src[b->idx].addr) < 0;
}

/* Min-heap on "better": the root is the worst of the kept top-N. */
static void heap_down(const struct dec_metrics *src, struct cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && cand_better(src, &h[w], &h[l]))
			w = l;
		if (r < n && cand_better(src, &h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* Candidates are appended unordered until there are more than top; only
 * then does the array become a heap. With top >= candidates (top=all) no
 * comparison is ever made. */
static int heap_offer(struct dec_engine *e, const struct dec_metrics *src,
		      const struct cand *c)
{
	size_t top = e->p.top;

	if (e->heap_n < top) {
		if (e->heap_n == e->heap_cap) {
			size_t ncap = e->heap_cap ? e->heap_cap * 2 : 256;
			if (ncap > top)
				ncap = top;
			struct cand *nh = realloc(e->heap, ncap * sizeof(*nh));
			if (nh == NULL)
				return -1;
			e->heap = nh;
			e->heap_cap = ncap;
		}
		e->heap[e->heap_n++] = *c;
		return 0;
	}
	if (!e->heap_built) {
		for (size_t i = e->heap_n / 2; i-- > 0;)
			heap_down(src, e->heap, e->heap_n, i);
		e->heap_built = true;
	}
	if (cand_better(src, c, &e->heap[0])) {
		e->heap[0] = *c;
		heap_down(src, e->heap, e->heap_n, 0);
	}
	return 0;
}

static struct evalent *ev_push(struct dec_engine *e)
{
	struct evalent *nv = kl_grow(e->ev, e->ev_n, &e->ev_cap, sizeof(*nv), 256);

	if (nv == NULL)
		return NULL;
	e->ev = nv;
	return &e->ev[e->ev_n++];
}

static void count_level(struct dec_engine *e, unsigned from, unsigned to)
{
	e->st.per_level[from]--;
	e->st.per_level[to]++;
}

static void forget_slot(struct dec_engine *e, size_t i)
{
	e->st.per_level[e->tab.slots[i].level]--;
	dec_srctab_del_at(&e->tab, i);
}

/* ---- baselines (baseline.h): kept in these functions ---- */

void dec_engine_set_baselines(struct dec_engine *e, struct dec_baselines *bl)
{
	e->bl = bl;
	e->bl_n = 0;
}

/* Severity of a stepped source against its effective triggers. An
 * effective trigger is never below the global one, so a tick that is low
 * (and below the non-compliance reset) against the global triggers stays
 * so: no lookup for those, which are most sources. */
static double baseline_severity(const struct dec_engine *e, const struct evalent *it,
				const struct dec_metrics *m, int64_t now)
{
	const double low = e->p.decay_below < e->p.noncomp_reset_below ? e->p.decay_below
								       : e->p.noncomp_reset_below;
	if (e->bl == NULL || it->idx == UINT32_MAX || it->sev < low)
		return it->sev;
	return dec_bl_severity(e->bl, &e->p, &it->key, m, it->sev, now);
}

/* A stepped source that is or was rate-limited or blocked, had a high tick
 * (a violation is one) or hit the rate limiter: what its baseline holds
 * is dropped and this tick is not learned (baseline_learn never looks at
 * the engine's state: the taint says it all, at one lookup). Every
 * elevated source is stepped every tick, so none is ever learned from. */
static void baseline_taint(struct dec_engine *e, const struct dec_src *s, unsigned before,
			   const struct dec_metrics *m, int64_t now)
{
	if (e->bl != NULL && (before > DEC_LVL_OBSERVE || s->level > DEC_LVL_OBSERVE ||
			      s->t_high == now || m->droprl > 0.0))
		dec_bl_taint(e->bl, &s->key, now,
			    dec_bl_gate(dec_bl_params(e->bl), e->p.trig, m));
}

static int baseline_offer(struct dec_engine *e, uint32_t i)
{
	uint32_t *nv = kl_grow(e->bl_idx, e->bl_n, &e->bl_cap, sizeof(*nv), 256);

	if (nv == NULL)
		return -1;
	e->bl_idx = nv;
	e->bl_idx[e->bl_n++] = i;
	return 0;
}

/* After every source was stepped: observe the gated sources that were not
 * suspicious this tick. Exempt sources teach only with --whitelist-learn /
 * --feedback-learn. A full table (max-sources) just learns nothing new. */
static void baseline_learn(struct dec_engine *e, int64_t now, const struct dec_metrics *src,
			   dec_exempt_fn exempt, void *exempt_ctx)
{
	const struct dec_bl_params *bp = dec_bl_params(e->bl);
	struct kl_addr key;

	for (size_t k = 0; k < e->bl_n; k++) {
		const struct dec_metrics *m = &src[e->bl_idx[k]];
		if (!dec_addr_key(&m->addr, &key))
			continue;
		if (e->viol.n > 0 && dec_keyset_find(&e->viol, &key) != NULL)
			continue; /* tainted when it was stepped */
		int ex = exempt != NULL ? exempt(exempt_ctx, &key) : DEC_EX_NONE;
		if ((ex == DEC_EX_WHITELIST && !bp->whitelist_learn) ||
		    (ex == DEC_EX_FORGIVE && !bp->feedback_learn))
			continue;
		(void)dec_bl_observe(e->bl, &key, m, now);
	}
	e->bl_n = 0;
}

/* The tracked source behind slot i of the elevated set; NULL for an empty
 * slot or a source no longer tracked. */
static struct dec_src *elevated_at(const struct dec_engine *e, size_t i)
{
	const struct dec_keyslot *k = &e->elev.slots[i];

	return k->key.family == 0 ? NULL : dec_srctab_find(&e->tab, &k->key);
}

/* Back to OBSERVE (a change when it was above) and forgotten: what it
 * does next is judged from scratch. -1 on allocation failure. */
static int release_src(struct dec_engine *e, struct dec_src *s, unsigned reason, double sev,
		       int64_t now, struct dec_changes *out)
{
	if (s->level > DEC_LVL_OBSERVE) {
		struct dec_change c;
		make_change(&e->p, s, s->level, DEC_LVL_OBSERVE, reason, sev, now, &c);
		c.strikes = 0;
		struct dec_change *slot = changes_push(out);
		if (slot == NULL)
			return -1;
		*slot = c;
		e->st.changes++;
	}
	forget_slot(e, (size_t)(s - e->tab.slots));
	return 0;
}

int dec_engine_release(struct dec_engine *e, const struct kl_addr *a, unsigned reason,
		      int64_t now, struct dec_changes *out)
{
	struct kl_addr key;
	if (!dec_addr_key(a, &key))
		return 0;
	struct dec_src *s = dec_srctab_find(&e->tab, &key);
	if (s == NULL)
		return 0;
	bool above = s->level > DEC_LVL_OBSERVE;
	if (release_src(e, s, reason, s->sev, now, out) < 0)
		return -1;
	return above ? 1 : 0;
}

/* Step one source. Returns -1 on allocation failure. */
static int process(struct dec_engine *e, const struct evalent *it,
		   const struct dec_metrics *src, int64_t now, struct dec_changes *out)
{
	static const struct dec_metrics zero;
	const struct dec_metrics *m = it->idx == UINT32_MAX ? &zero : &src[it->idx];
	struct dec_change c;
	struct dec_src *s;
	bool created;

	if (it->key.family == 0)
		return 0; /* not a host address: nothing to key state by */
	if (it->ex != DEC_EX_NONE) {
		/* Exempt: not scored, not enforced. Release what we hold and
		 * start clean when the exemption ends. */
		s = dec_srctab_find(&e->tab, &it->key);
		if (s == NULL)
			return 0;
		return release_src(e, s, it->ex == DEC_EX_WHITELIST ? DEC_R_WHITELIST : DEC_R_FORGIVE,
				   it->sev, now, out);
	}
	s = dec_srctab_insert_h(&e->tab, &it->key, it->h, &created);
	if (s == NULL)
		return -1;
	if (created)
		e->st.per_level[DEC_LVL_OBSERVE]++;
	if (s->t_seen == now)
		return 0; /* listed twice in one tick */
	e->st.evaluated++;
	unsigned before = s->level;
	const double sev = baseline_severity(e, it, m, now);
	s->sev = (float)sev;
	s->pps = (float)m->pps;
	s->syn = (float)m->syn;
	s->scan = (float)m->scan;
	s->droprl = (float)m->droprl;
	if (dec_engine_step(&e->p, s, m, sev, it->viol, now, &c)) {
		struct dec_change *slot = changes_push(out);
		if (slot == NULL)
			return -1;
		*slot = c;
		if (c.reason == DEC_R_REFRESH)
			e->st.refreshes++;
		else
			e->st.changes++;
		if (c.to != before)
			count_level(e, before, c.to);
	}
	s->t_seen = now;
	baseline_taint(e, s, before, m, now);
	if (s->level > DEC_LVL_OBSERVE && !(s->flags & DEC_SRC_F_ELEVATED)) {
		if (dec_keyset_add(&e->elev_next, &s->key) == NULL)
			return -1;
		s->flags |= DEC_SRC_F_ELEVATED;
	}
	return 0;
}

/* Item j of this tick's work: forced sources (e->ev) first, then the
 * selected candidates (e->heap). */
static void load_item(const struct dec_engine *e, const struct dec_metrics *src, size_t j,
		      struct evalent *it)
{
	if (j < e->ev_n) {
		*it = e->ev[j];
		return;
	}
	const struct cand *c = &e->heap[j - e->ev_n];
	memset(it, 0, sizeof(*it));
	dec_addr_key(&src[c->idx].addr, &it->key);
	it->idx = c->idx;
	it->sev = c->sev;
	it->h = dec_addr_hash(&it->key, e->tab.seed);
}

static int cmp_change(const void *a, const void *b)
{
	const struct dec_change *x = a, *y = b;
	return dec_addr_cmp(&x->addr, &y->addr);
}

/* Forget OBSERVE sources not evaluated for state-ttl. Deleting shifts later
 * slots back into i, so i is examined again before moving on. */
static void sweep(struct dec_engine *e, int64_t now)
{
	int64_t ttl = e->p.state_ttl_ms;

	for (size_t i = 0; i < e->tab.cap;) {
		struct dec_src *s = &e->tab.slots[i];
		if (s->key.family != 0 && s->level == DEC_LVL_OBSERVE &&
		    !(s->flags & DEC_SRC_F_ELEVATED) &&
		    (s->t_seen == DEC_T_NEVER || now - s->t_seen >= ttl)) {
			forget_slot(e, i);
			e->st.forgotten++;
			continue;
		}
		i++;
	}
}

int dec_engine_tick(struct dec_engine *e, int64_t now, const struct dec_metrics *src,
		   size_t nsrc, const struct dec_violation *viol, size_t nviol,
		   dec_exempt_fn exempt, void *exempt_ctx, struct dec_changes *out)
{
	const struct dec_engine_params *p = &e->p;
	size_t n0 = out->n;
	struct kl_addr key;

	e->st.tick++;
	e->st.sources = nsrc;
	e->st.candidates = 0;
	e->st.evaluated = 0;
	e->st.exempted = 0;
	e->st.changes = 0;
	e->st.refreshes = 0;
	e->heap_n = 0;
	e->heap_built = false;
	e->ev_n = 0;

	/* This tick's violations; several for one source keep the strongest. */
	dec_keyset_clear(&e->viol);
	for (size_t i = 0; i < nviol; i++) {
		if (!dec_addr_key(&viol[i].addr, &key) || viol[i].mode == DEC_VIOL_NONE)
			continue;
		struct dec_keyslot *k = dec_keyset_add(&e->viol, &key);
		if (k == NULL)
			return -1;
		if (viol[i].mode > k->val)
			k->val = viol[i].mode;
	}

	/* Candidates (§6.2); elevated and violating sources always go. The
	 * address is only normalised here when a set or exemption needs it. */
	const bool may_force = e->elev.n > 0 || e->viol.n > 0;
	const bool need_key = may_force || exempt != NULL;
	const struct dec_bl_params *bp = e->bl != NULL ? dec_bl_params(e->bl) : NULL;
	/* Most sources are far from every trigger: three compares reject them
	 * before the whole gate runs. */
	double bl_lo[DEC_BL_NF];
	for (int f = 0; f < DEC_BL_NF; f++)
		bl_lo[f] = bp != NULL && p->trig[f] > 0.0 ? bp->relevant * p->trig[f] : INFINITY;
	e->bl_n = 0;
	for (size_t i = 0; i < nsrc; i++) {
		const struct dec_metrics *m = &src[i];
		double sev = dec_severity(p, m);
		/* A high tick is never an observation, stepped or not. */
		if ((m->pps >= bl_lo[0] || m->syn >= bl_lo[1] || m->scan >= bl_lo[2]) &&
		    sev < p->step[0] && dec_bl_gate(bp, p->trig, m) &&
		    baseline_offer(e, (uint32_t)i) < 0)
			return -1;
		bool cand = m->pps >= p->min_pps || (p->min_sev > 0.0 && sev >= p->min_sev) ||
			    m->droprl > 0.0;
		bool forced = false;
		uint8_t v = 0;

		if (!cand && !may_force)
			continue;
		if (need_key && !dec_addr_key(&m->addr, &key))
			continue;
		if (e->viol.n > 0) {
			struct dec_keyslot *k = dec_keyset_find(&e->viol, &key);
			if (k != NULL) {
				v = k->val;
				k->mark = 1;
				forced = true;
			}
		}
		if (e->elev.n > 0 && dec_keyset_find(&e->elev, &key) != NULL)
			forced = true;
		if (!cand && !forced)
			continue;
		if (cand)
			e->st.candidates++;
		int ex = exempt != NULL ? exempt(exempt_ctx, &key) : DEC_EX_NONE;
		if (ex != DEC_EX_NONE && !forced) {
			/* Drop any OBSERVE state (strikes) it had. */
			struct dec_src *s = dec_srctab_find(&e->tab, &key);
			if (s != NULL)
				forget_slot(e, (size_t)(s - e->tab.slots));
			e->st.exempted++;
			continue;
		}
		if (forced) {
			struct evalent *it = ev_push(e);
			if (it == NULL)
				return -1;
			*it = (struct evalent){ .idx = (uint32_t)i, .viol = v,
						.ex = (uint8_t)ex, .sev = sev, .key = key,
						.h = dec_addr_hash(&key, e->tab.seed) };
		} else {
			struct cand c = { .sev = sev, .pps = m->pps, .idx = (uint32_t)i };
			if (heap_offer(e, src, &c) < 0)
				return -1;
		}
	}
	/* Violations of sources that sent nothing this tick. */
	for (size_t i = 0; i < e->viol.cap && e->viol.n > 0; i++) {
		struct dec_keyslot *k = &e->viol.slots[i];
		if (k->key.family == 0 || k->mark)
			continue;
		struct evalent *it = ev_push(e);
		if (it == NULL)
			return -1;
		int ex = exempt != NULL ? exempt(exempt_ctx, &k->key) : DEC_EX_NONE;
		*it = (struct evalent){ .idx = UINT32_MAX, .viol = k->val, .ex = (uint8_t)ex,
					.sev = 0.0, .key = k->key,
					.h = dec_addr_hash(&k->key, e->tab.seed) };
	}
	/* Step the forced sources, then the top-N. State lookups are cache
	 * misses at scale, so each source's slot is prefetched AHEAD sources
	 * before it is stepped (its key and hash wait in a small ring). */
	enum { RING = 16, AHEAD = 8 };
	struct evalent ring[RING];
	const size_t total = e->ev_n + e->heap_n;
	for (size_t j = 0; j < total && j < AHEAD; j++) {
		load_item(e, src, j, &ring[j % RING]);
		DEC_SRCTAB_PREFETCH(&e->tab, ring[j % RING].h);
	}
	for (size_t i = 0; i < total; i++) {
		size_t j = i + AHEAD;
		if (j < total) {
			load_item(e, src, j, &ring[j % RING]);
			DEC_SRCTAB_PREFETCH(&e->tab, ring[j % RING].h);
		}
		if (process(e, &ring[i % RING], src, now, out) < 0)
			return -1;
	}

	/* Elevated sources absent from this tick step down on zero metrics. */
	for (size_t i = 0; i < e->elev.cap && e->elev.n > 0; i++) {
		struct dec_src *s = elevated_at(e, i);
		if (s == NULL || s->t_seen == now)
			continue;
		struct evalent it = {
			.idx = UINT32_MAX, .key = s->key, .h = dec_addr_hash(&s->key, e->tab.seed),
			.ex = (uint8_t)(exempt != NULL ? exempt(exempt_ctx, &s->key) : DEC_EX_NONE),
		};
		if (process(e, &it, src, now, out) < 0)
			return -1;
	}

	/* Next tick's elevated set: still above OBSERVE, old or new. */
	for (size_t i = 0; i < e->elev.cap && e->elev.n > 0; i++) {
		struct dec_src *s = elevated_at(e, i);
		if (s == NULL)
			continue;
		if (s->level > DEC_LVL_OBSERVE) {
			if (dec_keyset_add(&e->elev_next, &s->key) == NULL)
				return -1;
		} else {
			s->flags &= (uint8_t)~DEC_SRC_F_ELEVATED;
		}
	}
	struct dec_keyset t = e->elev;
	e->elev = e->elev_next;
	e->elev_next = t;
	dec_keyset_clear(&e->elev_next);
	if (out->n - n0 > 1)
		qsort(out->v + n0, out->n - n0, sizeof(*out->v), cmp_change);
	if (e->bl != NULL)
		baseline_learn(e, now, src, exempt, exempt_ctx);

	int64_t every = p->state_ttl_ms / 4;
	if (every > 60000)
		every = 60000;
	if (e->last_sweep == DEC_T_NEVER || now - e->last_sweep >= every) {
		sweep(e, now);
		if (e->bl != NULL)
			dec_bl_sweep(e->bl, now);
		e->last_sweep = now;
	}
	e->st.tracked = e->tab.n;
	return 0;
}

size_t dec_violations_take(struct dec_violation *dst, size_t *ndst, size_t cap,
			  const struct kl_violation_rec *rec, size_t n)
{
	size_t lost = 0;

	for (size_t i = 0; i < n; i++) {
		if (*ndst >= cap) {
			lost++;
			continue;
		}
		struct dec_violation *v = &dst[(*ndst)++];
		v->addr = rec[i].src;
		v->port = rec[i].port;
		v->proto = rec[i].proto;
		v->mode = rec[i].mode == KL_VIOLATION_ENFORCE ? DEC_VIOL_ENFORCE : DEC_VIOL_OBSERVE;
	}
	return lost;
}

size_t dec_violations_drop(struct dec_violation *v, size_t *n, const struct kl_addr *a)
{
	struct kl_addr key, k;
	size_t keep = 0;

	if (!dec_addr_key(a, &key))
		return 0;
	for (size_t i = 0; i < *n; i++) {
		if (dec_addr_key(&v[i].addr, &k) && dec_addr_cmp(&k, &key) == 0)
			continue;
		v[keep++] = v[i];
	}
	size_t dropped = *n - keep;
	*n = keep;
	return dropped;
}
