/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/autotune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/state.h"

#define MS_H (3600LL * 1000)

struct autotune {
	struct at_config c;
	uint32_t cap;
	struct at_triggers trig;
	struct at_triggers seed;  /* triggers this bootstrap started from */
	int64_t start_ms;
	int64_t obs_ms;           /* clean observed time */
	bool due;
	int64_t due_point;        /* tune point reached by the last tick */
	/* reservoir: slot i holds one source-tick in every feature */
	float *res[AT_NF];
	uint32_t n;
	double w;                 /* decayed count of samples offered */
	uint64_t seen;
	uint64_t rng;
	double *scratch;          /* cap doubles for the selection */
	uint64_t ticks[AT_NCLEAN];
	struct at_result *hist;   /* oldest first */
	size_t nhist;
	struct at_result last;
	bool has_last;
};

static const char *const phase_names[AT_NPHASES] = { "1", "2", "3", "steady" };
static const char *const clean_names[AT_NCLEAN] = { "clean", "block", "sev_frac", "drop_ratio" };
static const char *const feat_log[AT_NF] = { "trig_pps", "trig_syn", "trig_scan", "trig_bps" };

const char *at_phase_name(int phase)
{
	return phase >= 0 && phase < AT_NPHASES ? phase_names[phase] : "?";
}

int at_phase_parse(const char *s)
{
	for (int i = 0; i < AT_NPHASES; i++)
		if (strcmp(s, phase_names[i]) == 0)
			return i;
	return -1;
}

const char *at_clean_name(int c)
{
	return c >= 0 && c < AT_NCLEAN ? clean_names[c] : "?";
}

/* ---- configuration ---- */

void at_config_defaults(struct at_config *c)
{
	static const struct at_phase_cfg ph[AT_NPHASES] = {
		{ 1 * MS_H, 0.10, 0.02, 0.10 },
		{ 6 * MS_H, 0.08, 0.03, 0.15 },
		{ 24 * MS_H, 0.05, 0.05, 0.20 },
		{ 84 * MS_H, 0.05, 0.05, 0.20 },
	};

	memset(c, 0, sizeof(*c));
	c->tune[DEC_F_PPS] = c->tune[DEC_F_SYN] = c->tune[DEC_F_SCAN] = true;
	c->floor[DEC_F_PPS] = 100;
	c->floor[DEC_F_SYN] = 50;
	c->floor[DEC_F_SCAN] = 20;
	c->min_samples = 5000;
	c->horizon_ms = 24 * MS_H;
	c->bootstrap = true;
	c->phase1_end_ms = 48 * MS_H;
	c->phase2_end_ms = 120 * MS_H;
	c->window_ms = 336 * MS_H;
	memcpy(c->ph, ph, sizeof(ph));
	c->k_start = 4.0;
	c->k_final = 3.5;
	c->k_steady = 3.5;
	c->learn_sev_gt = 1.0;
	c->learn_frac_gt = 0.005;
	c->learn_max_sev = 0.8;
	c->learn_max_drop_ratio = 0.02;
	c->learn_skip_if_blocks = true;
	c->history_max = 30;
	c->seed = 0x6b6c6175746f7475ull; /* "klautotu" */
}

uint32_t at_config_cap(const struct at_config *c)
{
	if (c->reservoir_cap > 0)
		return c->reservoir_cap;
	if (c->min_samples > (int64_t)AT_RES_DEFAULT)
		return c->min_samples > (int64_t)AT_RES_MAX ? AT_RES_MAX + 1
							     : (uint32_t)c->min_samples;
	return AT_RES_DEFAULT;
}

static bool finite_ge0(double x)
{
	return isfinite(x) && x >= 0;
}

int at_config_check(const struct at_config *c, char *err, size_t len)
{
	static const char *const up[AT_NPHASES] = { "--bootstrap-max-up1", "--bootstrap-max-up2",
		"--bootstrap-max-up3", "--autotune-max-change-up" };
	static const char *const down[AT_NPHASES] = { "--bootstrap-max-down1",
		"--bootstrap-max-down2", "--bootstrap-max-down3", "--autotune-max-change-down" };
	static const char *const alpha[AT_NPHASES] = { "--bootstrap-alpha1", "--bootstrap-alpha2",
		"--bootstrap-alpha3", "--autotune-alpha" };
	static const char *const every[AT_NPHASES] = { "--bootstrap-every1", "--bootstrap-every2",
		"--bootstrap-every3", "--steady-every" };
	static const char *const floor_names[AT_NF] = { "--autotune-floor-pps",
		"--autotune-floor-syn", "--autotune-floor-scan", "--autotune-floor-bps" };
	uint32_t cap = at_config_cap(c);

	if (c->min_samples < 1) {
		snprintf(err, len, "--autotune-min-samples must be >= 1");
		return -1;
	}
	if (cap > AT_RES_MAX) {
		snprintf(err, len, "--autotune-min-samples %lld is above the reservoir limit %u",
			 (long long)c->min_samples, AT_RES_MAX);
		return -1;
	}
	if ((int64_t)cap < c->min_samples) {
		snprintf(err, len,
			 "reservoir of %u samples cannot reach --autotune-min-samples %lld", cap,
			 (long long)c->min_samples);
		return -1;
	}
	for (int f = 0; f < AT_NF; f++)
		if (!finite_ge0(c->floor[f])) {
			snprintf(err, len, "%s must be a number >= 0", floor_names[f]);
			return -1;
		}
	for (int p = 0; p < AT_NPHASES; p++) {
		const struct at_phase_cfg *ph = &c->ph[p];
		if (ph->every_ms <= 0) {
			snprintf(err, len, "%s must be > 0",
				 p == AT_STEADY && !c->bootstrap ? "--autotune-every" : every[p]);
			return -1;
		}
		if (!finite_ge0(ph->max_up)) {
			snprintf(err, len, "%s must be >= 0", up[p]);
			return -1;
		}
		if (!finite_ge0(ph->max_down) || ph->max_down > 1) {
			snprintf(err, len, "%s must be in [0, 1]", down[p]);
			return -1;
		}
		if (!finite_ge0(ph->alpha) || ph->alpha > 1) {
			snprintf(err, len, "%s must be in [0, 1]", alpha[p]);
			return -1;
		}
	}
	if (c->bootstrap) {
		if (c->phase1_end_ms <= 0 || c->phase2_end_ms < c->phase1_end_ms ||
		    c->window_ms < c->phase2_end_ms) {
			snprintf(err, len,
				 "need 0 < --bootstrap-phase1-end <= --bootstrap-phase2-end "
				 "<= --bootstrap-window");
			return -1;
		}
		if (!(c->k_start > 0) || !isfinite(c->k_start) || !(c->k_final > 0) ||
		    !isfinite(c->k_final)) {
			snprintf(err, len,
				 "--bootstrap-k-start and --bootstrap-k-final must be > 0");
			return -1;
		}
	}
	if (!(c->k_steady > 0) || !isfinite(c->k_steady)) {
		snprintf(err, len, "--autotune-k must be > 0");
		return -1;
	}
	if (c->horizon_ms < 0 || c->max_tick_ms < 0) {
		snprintf(err, len, "reservoir horizon and tick cap must be >= 0");
		return -1;
	}
	if (!finite_ge0(c->learn_frac_gt) || c->learn_frac_gt > 1) {
		snprintf(err, len, "--learn-frac-gt must be in [0, 1]");
		return -1;
	}
	if (!finite_ge0(c->learn_max_drop_ratio) || c->learn_max_drop_ratio > 1) {
		snprintf(err, len, "--learn-max-drop-ratio must be in [0, 1]");
		return -1;
	}
	if (!finite_ge0(c->learn_sev_gt) || !finite_ge0(c->learn_max_sev)) {
		snprintf(err, len, "--learn-sev-gt and --learn-max-sev must be >= 0");
		return -1;
	}
	return 0;
}

/* ---- gates ---- */

static bool exempt_unlearnable(const struct at_config *c, unsigned flags)
{
	return ((flags & AT_SRC_WHITELIST) && !c->whitelist_learn) ||
	       ((flags & AT_SRC_FEEDBACK) && !c->feedback_learn);
}

bool at_src_qualifies(const struct at_config *c, unsigned level, double sev, double droprl,
		      unsigned flags)
{
	if (level != DEC_LVL_OBSERVE)
		return false;
	if (!(sev <= c->learn_max_sev)) /* NaN does not qualify either */
		return false;
	if (droprl != 0.0)
		return false;
	return !exempt_unlearnable(c, flags);
}

enum at_clean at_tick_clean(const struct at_config *c, const struct at_tick_view *v)
{
	if (c->learn_skip_if_blocks) {
		if (v->n_block > 0)
			return AT_DIRTY_BLOCK;
		if (v->level != NULL)
			for (size_t i = 0; i < v->n; i++)
				if (v->level[i] == DEC_LVL_BLOCK)
					return AT_DIRTY_BLOCK;
	}
	size_t counted = 0, high = 0;
	for (size_t i = 0; i < v->n; i++) {
		if (v->flags != NULL && exempt_unlearnable(c, v->flags[i]))
			continue;
		counted++;
		if (v->sev[i] >= c->learn_sev_gt)
			high++;
	}
	if (counted > 0 && (double)high / (double)counted > c->learn_frac_gt)
		return AT_DIRTY_SEV_FRAC;
	if (c->learn_max_drop_ratio > 0 && v->has_totals && v->pkts > 0 &&
	    (double)v->drops / (double)v->pkts > c->learn_max_drop_ratio)
		return AT_DIRTY_DROPS;
	return AT_CLEAN;
}

/* ---- schedule ---- */

int at_phase_at(const struct at_config *c, int64_t t)
{
	if (!c->bootstrap)
		return AT_STEADY;
	if (t < c->phase1_end_ms)
		return AT_PH1;
	if (t < c->phase2_end_ms)
		return AT_PH2;
	if (t < c->window_ms)
		return AT_PH3;
	return AT_STEADY;
}

double at_k_at(const struct at_config *c, int64_t t)
{
	if (!c->bootstrap || t >= c->window_ms)
		return c->k_steady;
	if (t < 0)
		t = 0;
	return c->k_start + (c->k_final - c->k_start) * ((double)t / (double)c->window_ms);
}

int64_t at_next_point(const struct at_config *c, int64_t t)
{
	int64_t start = 0, end = INT64_MAX;
	int p = at_phase_at(c, t);

	if (t < 0)
		t = 0;
	if (c->bootstrap) {
		static const int64_t zero = 0;
		const int64_t *bounds[AT_NPHASES + 1] = { &zero, &c->phase1_end_ms,
							  &c->phase2_end_ms, &c->window_ms, NULL };
		start = *bounds[p];
		if (p < AT_STEADY)
			end = *bounds[p + 1];
	}
	int64_t e = c->ph[p].every_ms;
	int64_t next = start + ((t - start) / e + 1) * e;
	return next < end ? next : end;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Put the k-th smallest of a[0..n-1] at a[k], smaller ones before it and
 * larger ones after (Hoare partitioning, median-of-3 pivot). Sample
 * values come from the network, so a pathological order must not make
 * it quadratic: past a depth budget the rest is sorted. */
static void select_kth(double *a, size_t n, size_t k)
{
	long l = 0, m = (long)n - 1, kk = (long)k;
	int budget = 8;

	for (size_t x = n; x > 1; x >>= 1)
		budget += 2;
	while (l < m) {
		if (budget-- == 0) {
			qsort(a + l, (size_t)(m - l + 1), sizeof(*a), cmp_double);
			return;
		}
		long mid = l + (m - l) / 2;
		double a0 = a[l], a1 = a[mid], a2 = a[m];
		double x = a0 < a1 ? (a1 < a2 ? a1 : (a0 < a2 ? a2 : a0))
				   : (a0 < a2 ? a0 : (a1 < a2 ? a2 : a1));
		long i = l, j = m;
		do {
			while (a[i] < x)
				i++;
			while (x < a[j])
				j--;
			if (i <= j) {
				double t = a[i];
				a[i] = a[j];
				a[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < kk)
			l = i;
		if (kk < i)
			m = j;
	}
}

/* Median of a[0..n-1], n > 0; reorders a. */
static double median_of(double *a, size_t n)
{
	size_t k = n / 2;

	select_kth(a, n, k);
	if (n % 2 == 1)
		return a[k];
	double lower = a[0];
	for (size_t i = 1; i < k; i++)
		if (a[i] > lower)
			lower = a[i];
	return (lower + a[k]) / 2;
}

void at_median_mad(const float *v, size_t n, double *scratch, double *median, double *mad)
{
	if (n == 0) {
		*median = *mad = 0;
		return;
	}
	for (size_t i = 0; i < n; i++)
		scratch[i] = v[i];
	double med = median_of(scratch, n);
	for (size_t i = 0; i < n; i++)
		scratch[i] = fabs(scratch[i] - med);
	*median = med;
	*mad = median_of(scratch, n);
}

double at_step(double cur, double median, double mad, double k, double floor,
	       const struct at_phase_cfg *ph, double *target)
{
	double t = median + k * mad;

	if (!isfinite(t))
		t = cur;
	if (t < floor)
		t = floor;
	*target = t;
	if (!(cur > 0))
		return cur;
	double x = ph->alpha > 0 ? cur + ph->alpha * (t - cur) : t;
	double hi = cur * (1 + ph->max_up), lo = cur * (1 - ph->max_down);
	if (x > hi)
		x = hi;
	if (x < lo)
		x = lo;
	return x;
}

void at_format_result(const struct at_result *r, char *buf, size_t len)
{
	size_t o = 0;
	int w;

#define PUT(...)                                                                 \
	do {                                                                     \
		w = snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__);       \
		if (w > 0)                                                       \
			o += (size_t)w;                                          \
	} while (0)
	if (len == 0)
		return;
	buf[0] = '\0';
	if (!r->applied) {
		PUT("AUTOTUNE skipped: %s samples=%u phase=%s", r->reason, r->samples,
		    at_phase_name(r->phase));
		return;
	}
	PUT("AUTOTUNE applied:");
	for (int f = 0; f < AT_NF; f++) {
		if (f == DEC_F_BPS && !r->tuned[f])
			continue;
		PUT(" %s %.1f->%.1f", feat_log[f], r->f[f].from, r->f[f].to);
	}
	PUT(" (median+MAD k=%.1f) samples=%u phase=%s", r->k, r->samples,
	    at_phase_name(r->phase));
#undef PUT
}

/* ---- the learner ---- */

/* splitmix64: one 64-bit word of state, which state.json keeps. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct autotune *autotune_new(const struct at_config *c, const struct at_triggers *start,
			      int64_t now_ms, char *err, size_t len)
{
	if (at_config_check(c, err, len) < 0)
		return NULL;
	struct autotune *at = calloc(1, sizeof(*at));
	if (at == NULL)
		goto nomem;
	at->c = *c;
	at->cap = at_config_cap(c);
	at->trig = *start;
	at->seed = *start;
	at->start_ms = now_ms;
	at->rng = c->seed;
	for (int f = 0; f < AT_NF; f++)
		if ((at->res[f] = calloc(at->cap, sizeof(float))) == NULL)
			goto nomem;
	if ((at->scratch = calloc(at->cap, sizeof(double))) == NULL)
		goto nomem;
	if (c->history_max > 0 && (at->hist = calloc(c->history_max, sizeof(*at->hist))) == NULL)
		goto nomem;
	return at;
nomem:
	snprintf(err, len, "autotune: out of memory (reservoir of %u samples)", at_config_cap(c));
	autotune_free(at);
	return NULL;
}

void autotune_free(struct autotune *at)
{
	if (at == NULL)
		return;
	for (int f = 0; f < AT_NF; f++)
		free(at->res[f]);
	free(at->scratch);
	free(at->hist);
	free(at);
}

static void offer(struct autotune *at, const double val[AT_NF])
{
	uint32_t slot;

	at->seen++;
	at->w += 1.0;
	if (at->n < at->cap) {
		slot = at->n++;
	} else {
		/* Accept with probability cap / w: each slot is then replaced
		 * at the rate samples age out of the decayed weight. */
		double u = (double)(rnd(&at->rng) >> 11) * 0x1.0p-53;
		if (u * at->w >= (double)at->cap)
			return;
		slot = (uint32_t)(((unsigned __int128)rnd(&at->rng) * at->cap) >> 64);
	}
	for (int f = 0; f < AT_NF; f++)
		at->res[f][slot] = (float)val[f];
}

enum at_clean autotune_observe_tick(struct autotune *at, const struct at_tick_view *v)
{
	const struct at_config *c = &at->c;
	enum at_clean cl = at_tick_clean(c, v);

	at->ticks[cl]++;
	if (cl != AT_CLEAN)
		return cl;

	int64_t dt = v->elapsed_ms > 0 ? v->elapsed_ms : 0;
	if (c->max_tick_ms > 0 && dt > c->max_tick_ms)
		dt = c->max_tick_ms;
	int64_t prev = at->obs_ms;
	at->obs_ms += dt;
	if (c->horizon_ms > 0 && dt > 0)
		at->w *= exp(-(double)dt / (double)c->horizon_ms);

	for (size_t i = 0; i < v->n; i++) {
		const struct dec_metrics *m = &v->m[i];
		unsigned lvl = v->level != NULL ? v->level[i] : DEC_LVL_OBSERVE;
		unsigned fl = v->flags != NULL ? v->flags[i] : 0;
		if (!at_src_qualifies(c, lvl, v->sev[i], m->droprl, fl))
			continue;
		double val[AT_NF];
		val[DEC_F_PPS] = m->pps;
		val[DEC_F_SYN] = m->syn;
		val[DEC_F_SCAN] = m->scan;
		val[DEC_F_BPS] = m->bps;
		bool ok = true;
		for (int f = 0; f < AT_NF; f++)
			if (!finite_ge0(val[f]) || val[f] > 3e38)
				ok = false;
		if (ok)
			offer(at, val);
	}

	int64_t p = at_next_point(c, prev);
	if (p <= at->obs_ms) {
		int64_t q;
		while ((q = at_next_point(c, p)) <= at->obs_ms)
			p = q;
		at->due = true;
		at->due_point = p;
	}
	return cl;
}

void autotune_force(struct autotune *at)
{
	at->due = true;
	at->due_point = at->obs_ms;
}

static void push_history(struct autotune *at, const struct at_result *r)
{
	size_t max = at->c.history_max;

	if (max == 0)
		return;
	if (at->nhist == max) {
		memmove(at->hist, at->hist + 1, (max - 1) * sizeof(*at->hist));
		at->nhist--;
	}
	at->hist[at->nhist++] = *r;
}

enum at_tune_rc autotune_maybe_tune(struct autotune *at, int64_t now_ms, struct at_triggers *io,
				    char *logline, size_t len)
{
	const struct at_config *c = &at->c;
	struct at_result r;

	if (len > 0)
		logline[0] = '\0';
	if (!at->due)
		return AT_TUNE_NONE;
	at->due = false;

	memset(&r, 0, sizeof(r));
	r.t_ms = now_ms;
	r.observed_ms = at->due_point;
	r.phase = at_phase_at(c, at->due_point);
	r.k = at_k_at(c, at->due_point);
	r.samples = at->n;
	for (int f = 0; f < AT_NF; f++)
		r.f[f].from = r.f[f].to = r.f[f].target = at->trig.v[f];

	bool any = false;
	for (int f = 0; f < AT_NF; f++)
		if (c->tune[f] && at->trig.v[f] > 0)
			any = true;
	if (!any) {
		snprintf(r.reason, sizeof(r.reason), "no trigger to tune");
	} else if ((int64_t)at->n < c->min_samples) {
		snprintf(r.reason, sizeof(r.reason), "too few samples (need %lld)",
			 (long long)c->min_samples);
	} else {
		const struct at_phase_cfg *ph = &c->ph[r.phase];
		for (int f = 0; f < AT_NF; f++) {
			struct at_feat_result *fr = &r.f[f];
			if (!c->tune[f] || !(at->trig.v[f] > 0))
				continue;
			at_median_mad(at->res[f], at->n, at->scratch, &fr->median, &fr->mad);
			fr->to = at_step(fr->from, fr->median, fr->mad, r.k, c->floor[f], ph,
					 &fr->target);
			at->trig.v[f] = fr->to;
			r.tuned[f] = true;
		}
		r.applied = true;
		push_history(at, &r);
	}
	at->last = r;
	at->has_last = true;
	*io = at->trig;
	at_format_result(&r, logline, len);
	return r.applied ? AT_TUNE_APPLIED : AT_TUNE_SKIPPED;
}

/* ---- inspection ---- */

void autotune_status(const struct autotune *at, struct at_status *s)
{
	memset(s, 0, sizeof(*s));
	s->phase = at_phase_at(&at->c, at->obs_ms);
	s->bootstrap = at->c.bootstrap;
	s->start_ms = at->start_ms;
	s->observed_ms = at->obs_ms;
	s->next_point_ms = at_next_point(&at->c, at->obs_ms);
	s->k_now = at_k_at(&at->c, at->obs_ms);
	s->samples = at->n;
	s->cap = at->cap;
	s->seen = at->seen;
	memcpy(s->ticks, at->ticks, sizeof(s->ticks));
	s->trig = at->trig;
	s->last = at->has_last ? &at->last : NULL;
}

const struct at_config *autotune_config(const struct autotune *at)
{
	return &at->c;
}

const struct at_result *autotune_history(const struct autotune *at, size_t *n)
{
	*n = at->nhist;
	return at->hist;
}

const float *autotune_reservoir(const struct autotune *at, int f, uint32_t *n)
{
	*n = at->n;
	return f >= 0 && f < AT_NF ? at->res[f] : NULL;
}

/* ---- persistence ---- */

void autotune_export(const struct autotune *at, const char *profile, int64_t now_ms,
		     struct dec_state *st)
{
	memset(st, 0, sizeof(*st));
	st->version = DEC_STATE_VERSION;
	st->saved_ms = now_ms;
	snprintf(st->profile, sizeof(st->profile), "%s", profile != NULL ? profile : "");
	memcpy(st->floor, at->c.floor, sizeof(st->floor));
	memcpy(st->trig, at->trig.v, sizeof(st->trig));
	memcpy(st->seed, at->seed.v, sizeof(st->seed));
	st->bootstrap = at->c.bootstrap;
	st->start_ms = at->start_ms;
	st->observed_ms = at->obs_ms;
	st->next_point_ms = at_next_point(&at->c, at->obs_ms);
	st->phase = at_phase_at(&at->c, at->obs_ms);
	memcpy(st->ticks, at->ticks, sizeof(st->ticks));
	st->seen = at->seen;
	st->hist = at->hist;
	st->nhist = at->nhist;
	st->res_n = at->n;
	st->res_cap = at->cap;
	st->res_w = at->w;
	st->rng = at->rng;
	for (int f = 0; f < AT_NF; f++)
		st->res[f] = at->res[f];
	st->owned = false;
}

void autotune_restore(struct autotune *at, const struct dec_state *st, bool restart_bootstrap)
{
	size_t keep = st->nhist < at->c.history_max ? st->nhist : at->c.history_max;

	if (keep > 0)
		memcpy(at->hist, st->hist + (st->nhist - keep), keep * sizeof(*at->hist));
	at->nhist = keep;
	if (restart_bootstrap)
		return;
	at->start_ms = st->start_ms;
	memcpy(at->seed.v, st->seed, sizeof(at->seed.v));
	at->obs_ms = st->observed_ms > 0 ? st->observed_ms : 0;
	at->due = false;
	memcpy(at->ticks, st->ticks, sizeof(at->ticks));
	at->seen = st->seen;
	at->rng = st->rng;
	at->w = st->res_w;
	at->n = st->res_n < at->cap ? st->res_n : at->cap;
	for (int f = 0; f < AT_NF; f++)
		if (at->n > 0)
			memcpy(at->res[f], st->res[f], at->n * sizeof(float));
	if (keep > 0) {
		at->last = at->hist[keep - 1];
		at->has_last = true;
	}
}
