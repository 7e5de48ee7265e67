/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Autotune (decider/autotune.c): median/MAD, the reservoir, the tune step
 * (floors, caps and smoothing per phase), k over the bootstrap window, the
 * schedule, every clean-tick gate, per-source qualification and the
 * AUTOTUNE log lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/autotune.h"

#define H (3600LL * 1000)
#define EPS 1e-9

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median by full sort: the reference for the selection. */
static double ref_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void ref_median_mad(const float *v, size_t n, double *med, double *mad)
{
	double *a = malloc(n * sizeof(*a));
	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		a[i] = v[i];
	*med = ref_median(a, n);
	for (size_t i = 0; i < n; i++)
		a[i] = fabs((double)v[i] - *med);
	*mad = ref_median(a, n);
	free(a);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void test_median_mad_known(void **state)
{
	(void)state;
	double scratch[16], med, mad;

	const float odd[] = { 4, 1, 100, 3, 2 }; /* sorted 1 2 3 4 100; |d| 2 1 0 1 97 */
	at_median_mad(odd, 5, scratch, &med, &mad);
	assert_true(fabs(med - 3) < EPS);
	assert_true(fabs(mad - 1) < EPS);

	const float even[] = { 4, 2, 1, 3 }; /* median 2.5; |d| 1.5 .5 .5 1.5 -> 1.0 */
	at_median_mad(even, 4, scratch, &med, &mad);
	assert_true(fabs(med - 2.5) < EPS);
	assert_true(fabs(mad - 1.0) < EPS);

	const float one[] = { 7 };
	at_median_mad(one, 1, scratch, &med, &mad);
	assert_true(med == 7 && mad == 0);

	at_median_mad(one, 0, scratch, &med, &mad);
	assert_true(med == 0 && mad == 0);

	const float same[] = { 5, 5, 5, 5, 5, 5, 5 };
	at_median_mad(same, 7, scratch, &med, &mad);
	assert_true(med == 5 && mad == 0);

	/* Mostly one value, a few outliers: the median ignores them. */
	const float skew[] = { 10, 10, 10, 10, 10, 10, 9000, 8000, 10, 10, 11 };
	at_median_mad(skew, 11, scratch, &med, &mad);
	assert_true(med == 10 && mad == 0);

	/* The input is not modified. */
	assert_true(odd[0] == 4 && odd[2] == 100 && even[0] == 4);
}

/* Selection against a full sort on orders that break naive quickselect. */
static void test_median_mad_vs_sort(void **state)
{
	(void)state;
	const size_t sizes[] = { 2, 3, 10, 101, 1000, 4096, 65537 };

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		float *v = malloc(n * sizeof(*v));
		double *scratch = malloc(n * sizeof(*scratch));
		assert_non_null(v);
		assert_non_null(scratch);
		for (int pattern = 0; pattern < 6; pattern++) {
			for (size_t i = 0; i < n; i++) {
				/* random, sorted, reversed, organ pipe, few values, two */
				switch (pattern) {
				case 0: v[i] = (float)(mix(i) % 100000) / 7.0f; break;
				case 1: v[i] = (float)i; break;
				case 2: v[i] = (float)(n - i); break;
				case 3: v[i] = (float)(i < n / 2 ? i : n - i); break;
				case 4: v[i] = (float)(mix(i) % 3); break;
				default: v[i] = (float)(i % 2 ? 1e6 : 0); break;
				}
			}
			double med, mad, rmed, rmad;
			at_median_mad(v, n, scratch, &med, &mad);
			ref_median_mad(v, n, &rmed, &rmad);
			if (med != rmed || mad != rmad)
				fail_msg("n=%zu pattern=%d: got %g/%g want %g/%g", n, pattern, med,
					 mad, rmed, rmad);
		}
		free(v);
		free(scratch);
	}
}

static struct at_config small_cfg(void)
{
	struct at_config c;
	at_config_defaults(&c);
	c.reservoir_cap = 100;
	c.min_samples = 10;
	return c;
}

/* One tick of n sources with the given metrics and severity 0. */
struct tick {
	struct dec_metrics m[64];
	double sev[64];
	uint8_t level[64], flags[64];
	struct at_tick_view v;
};

static void tick_init(struct tick *t, size_t n, int64_t elapsed)
{
	memset(t, 0, sizeof(*t));
	t->v.elapsed_ms = elapsed;
	t->v.m = t->m;
	t->v.n = n;
	t->v.sev = t->sev;
	t->v.level = t->level;
	t->v.flags = t->flags;
}

static struct autotune *mk(const struct at_config *c, double pps, double syn, double scan)
{
	char err[256];
	struct at_triggers t = { { pps, syn, scan, 0 } };
	struct autotune *at = autotune_new(c, &t, 0, err, sizeof(err));
	if (at == NULL)
		fail_msg("autotune_new: %s", err);
	return at;
}

static void test_reservoir_bounds(void **state)
{
	(void)state;
	struct at_config c = small_cfg();
	c.horizon_ms = 0; /* uniform */
	struct autotune *a = mk(&c, 5000, 500, 50), *b = mk(&c, 5000, 500, 50);
	struct tick t;
	uint32_t n;

	for (int k = 0; k < 1000; k++) {
		tick_init(&t, 5, 1000);
		for (int i = 0; i < 5; i++)
			t.m[i].pps = k * 5 + i; /* every value is unique: sample index */
		assert_int_equal(autotune_observe_tick(a, &t.v), AT_CLEAN);
		assert_int_equal(autotune_observe_tick(b, &t.v), AT_CLEAN);
		autotune_reservoir(a, DEC_F_PPS, &n);
		assert_true(n <= 100);
		if (k == 9)
			assert_int_equal(n, 50); /* everything kept until full */
	}
	struct at_status s;
	autotune_status(a, &s);
	assert_int_equal(s.samples, 100);
	assert_int_equal(s.cap, 100);
	assert_int_equal(s.seen, 5000);

	/* Every slot holds a sample that was offered, none twice. */
	const float *ra = autotune_reservoir(a, DEC_F_PPS, &n);
	static bool hit[5000];
	memset(hit, 0, sizeof(hit));
	double sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		int x = (int)ra[i];
		assert_true(x >= 0 && x < 5000 && (float)x == ra[i]);
		assert_false(hit[x]);
		hit[x] = true;
		sum += x;
	}
	/* Uniform over the whole run: the mean is near the middle (2500),
	 * not near the end. 100 samples: sd of the mean ~ 144. */
	assert_true(sum / n > 1800 && sum / n < 3200);

	/* Same seed, same input: the same reservoir. */
	const float *rb = autotune_reservoir(b, DEC_F_PPS, &n);
	assert_memory_equal(ra, rb, n * sizeof(float));
	autotune_free(b);

	/* Another seed chooses other slots. */
	c.seed ^= 1;
	b = mk(&c, 5000, 500, 50);
	for (int k = 0; k < 1000; k++) {
		tick_init(&t, 5, 1000);
		for (int i = 0; i < 5; i++)
			t.m[i].pps = k * 5 + i;
		autotune_observe_tick(b, &t.v);
	}
	rb = autotune_reservoir(b, DEC_F_PPS, &n);
	assert_true(memcmp(ra, rb, n * sizeof(float)) != 0);
	autotune_free(a);
	autotune_free(b);
}

/* With a horizon, the reservoir forgets: after a change in traffic it
 * mostly holds the new values, whatever the sample rate. */
static void test_reservoir_horizon(void **state)
{
	(void)state;
	struct at_config c = small_cfg();
	c.horizon_ms = 10 * 60 * 1000; /* 10 min */
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	uint32_t n;

	for (int k = 0; k < 3 * 3600; k++) { /* 3 h at 1 s, 20 sources: value 10 then 1000 */
		tick_init(&t, 20, 1000);
		for (int i = 0; i < 20; i++)
			t.m[i].pps = k < 3600 * 2 ? 10 : 1000;
		autotune_observe_tick(at, &t.v);
	}
	const float *r = autotune_reservoir(at, DEC_F_PPS, &n);
	int new_ones = 0;
	for (uint32_t i = 0; i < n; i++)
		new_ones += r[i] == 1000;
	/* 1 h of new traffic is 6 horizons: e^-6 of the old remains. */
	assert_true(new_ones >= 95);
	autotune_free(at);

	/* Without a horizon the old hour dominates (2/3 of the samples). */
	c.horizon_ms = 0;
	at = mk(&c, 5000, 500, 50);
	for (int k = 0; k < 3 * 3600; k++) {
		tick_init(&t, 20, 1000);
		for (int i = 0; i < 20; i++)
			t.m[i].pps = k < 3600 * 2 ? 10 : 1000;
		autotune_observe_tick(at, &t.v);
	}
	r = autotune_reservoir(at, DEC_F_PPS, &n);
	new_ones = 0;
	for (uint32_t i = 0; i < n; i++)
		new_ones += r[i] == 1000;
	assert_true(new_ones > 15 && new_ones < 55);
	autotune_free(at);
}

static void test_step_caps_per_phase(void **state)
{
	(void)state;
	struct at_config c;
	double target;
	at_config_defaults(&c);
	/* No smoothing, to see the caps alone. */
	const double up[] = { 0.10, 0.08, 0.05, 0.05 }, down[] = { 0.02, 0.03, 0.05, 0.05 };
	for (int p = 0; p < AT_NPHASES; p++) {
		struct at_phase_cfg ph = c.ph[p];
		ph.alpha = 0;
		double x = at_step(1000, 1e6, 0, 4, 0, &ph, &target);
		assert_true(fabs(x - 1000 * (1 + up[p])) < 1e-6);
		assert_true(target == 1e6);
		x = at_step(1000, 1, 0, 4, 0, &ph, &target);
		assert_true(fabs(x - 1000 * (1 - down[p])) < 1e-6);
		/* Inside the caps the target is taken as is. */
		x = at_step(1000, 1000, 5, 4, 0, &ph, &target);
		assert_true(fabs(x - 1020) < 1e-9 && fabs(target - 1020) < 1e-9);
	}
	/* A cap of 0 holds the value in that direction. */
	struct at_phase_cfg hold = { H, 0, 0, 0 };
	assert_true(at_step(1000, 5000, 0, 3, 0, &hold, &target) == 1000);
	assert_true(at_step(1000, 1, 0, 3, 0, &hold, &target) == 1000);
	/* A feature that is off stays off. */
	assert_true(at_step(0, 5000, 0, 3, 0, &c.ph[0], &target) == 0);
}

static void test_step_floors(void **state)
{
	(void)state;
	struct at_phase_cfg ph = { H, 0.10, 0.50, 0 };
	double target;

	/* median + k*MAD = 40 < floor 100: the target is the floor. */
	double x = at_step(120, 20, 5, 4, 100, &ph, &target);
	assert_true(target == 100 && x == 100);
	/* Never below the floor, even with a large max-down. */
	x = at_step(150, 0, 0, 4, 100, &ph, &target);
	assert_true(x == 100);
	/* Starting below the floor (a profile trigger under it): only up,
	 * capped. */
	x = at_step(80, 0, 0, 4, 100, &ph, &target);
	assert_true(fabs(x - 88) < 1e-9);
	/* Through the learner: all-zero samples tune to the floors. */
	struct at_config c = small_cfg();
	c.bootstrap = false;
	c.ph[AT_STEADY] = (struct at_phase_cfg){ H, 10, 0.99, 0 };
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	struct at_triggers io;
	char line[AT_LOGLINE_MAX];
	for (int k = 0; k < 60; k++) {
		tick_init(&t, 10, 60 * 1000);
		autotune_observe_tick(at, &t.v);
	}
	assert_int_equal(autotune_maybe_tune(at, 0, &io, line, sizeof(line)), AT_TUNE_APPLIED);
	assert_true(io.v[DEC_F_PPS] == 100 && io.v[DEC_F_SYN] == 50 && io.v[DEC_F_SCAN] == 20);
	assert_true(io.v[DEC_F_BPS] == 0);
	autotune_free(at);
}

/* Each phase smooths with its own alpha; the steady alpha
 * (--autotune-alpha) only applies once the bootstrap window is over. */
static void test_smoothing_by_phase(void **state)
{
	(void)state;
	struct at_config c;
	at_config_defaults(&c);
	double target;
	/* Wide caps so only alpha acts: cur 1000 -> target 2000. */
	for (int p = 0; p < AT_NPHASES; p++) {
		struct at_phase_cfg ph = c.ph[p];
		ph.max_up = 10;
		double x = at_step(1000, 2000, 0, 4, 0, &ph, &target);
		assert_true(fabs(x - (1000 + c.ph[p].alpha * 1000)) < 1e-9);
	}
	/* alpha 0: no smoothing. */
	struct at_phase_cfg raw = { H, 10, 1, 0 };
	assert_true(at_step(1000, 2000, 0, 4, 0, &raw, &target) == 2000);

	/* Through the learner with a short schedule: phases without
	 * smoothing, steady with alpha 0.5. The step in bootstrap takes the
	 * whole way; after it, half of it. */
	c.reservoir_cap = 100;
	c.min_samples = 10;
	c.phase1_end_ms = 10 * 1000;
	c.phase2_end_ms = 20 * 1000;
	c.window_ms = 30 * 1000;
	for (int p = 0; p < AT_NPHASES; p++)
		c.ph[p] = (struct at_phase_cfg){ 10 * 1000, 10, 1, p == AT_STEADY ? 0.5 : 0 };
	c.k_start = c.k_final = c.k_steady = 1;
	c.floor[DEC_F_PPS] = c.floor[DEC_F_SYN] = c.floor[DEC_F_SCAN] = 0;
	struct autotune *at = mk(&c, 100, 100, 100);
	struct tick t;
	struct at_triggers io;
	char line[AT_LOGLINE_MAX];
	int applied = 0, steady = 0;
	for (int k = 1; k <= 40; k++) {
		tick_init(&t, 10, 1000);
		for (int i = 0; i < 10; i++)
			t.m[i].pps = 100.0 * k + i; /* rising: every tune has a new target */
		autotune_observe_tick(at, &t.v);
		if (autotune_maybe_tune(at, k * 1000, &io, line, sizeof(line)) != AT_TUNE_APPLIED)
			continue;
		applied++;
		size_t nh;
		const struct at_result *h = autotune_history(at, &nh);
		const struct at_feat_result *f = &h[nh - 1].f[DEC_F_PPS];
		assert_true(f->target != f->from);
		if (h[nh - 1].phase != AT_STEADY) {
			assert_true(f->to == f->target); /* no smoothing */
		} else {
			steady++;
			assert_true(fabs(f->to - (f->from + 0.5 * (f->target - f->from))) < 1e-9);
		}
		assert_true(io.v[DEC_F_PPS] == f->to);
	}
	/* t = 10 s (phase 2), 20 s (3), 30 s and 40 s (steady) */
	assert_int_equal(applied, 4);
	assert_int_equal(steady, 2);
	autotune_free(at);
}

static void test_k_interpolation(void **state)
{
	(void)state;
	struct at_config c;
	at_config_defaults(&c);
	assert_true(fabs(at_k_at(&c, 0) - 4.0) < EPS);
	assert_true(fabs(at_k_at(&c, 168 * H) - 3.75) < EPS);
	assert_true(fabs(at_k_at(&c, 48 * H) - (4.0 - 0.5 * 48.0 / 336.0)) < EPS);
	assert_true(fabs(at_k_at(&c, 336 * H) - 3.5) < EPS);
	double prev = 5;
	for (int64_t t = 0; t <= 400 * H; t += H) {
		double k = at_k_at(&c, t);
		assert_true(k <= prev + EPS);
		prev = k;
	}
	/* After the window: the steady k (--autotune-k), not k-final. */
	c.k_steady = 3.0;
	assert_true(fabs(at_k_at(&c, 336 * H) - 3.0) < EPS);
	assert_true(fabs(at_k_at(&c, 335 * H) - (4.0 - 0.5 * 335.0 / 336.0)) < EPS);
	/* Without bootstrap: always the steady k. */
	c.bootstrap = false;
	assert_true(fabs(at_k_at(&c, 0) - 3.0) < EPS);
	/* k rising is allowed too (k-start below k-final). */
	c.bootstrap = true;
	c.k_start = 2;
	c.k_final = 4;
	assert_true(fabs(at_k_at(&c, 168 * H) - 3.0) < EPS);
}

static void test_schedule(void **state)
{
	(void)state;
	struct at_config c;
	at_config_defaults(&c);
	/* Defaults: every 1 h to 48 h, every 6 h to 120 h, every 24 h to
	 * 336 h, then every 84 h. */
	assert_int_equal(at_next_point(&c, 0), 1 * H);
	assert_int_equal(at_next_point(&c, 1 * H), 2 * H);
	assert_int_equal(at_next_point(&c, 47 * H + 5), 48 * H);
	assert_int_equal(at_next_point(&c, 48 * H), 54 * H);
	assert_int_equal(at_next_point(&c, 114 * H), 120 * H);
	assert_int_equal(at_next_point(&c, 120 * H), 144 * H);
	assert_int_equal(at_next_point(&c, 312 * H), 336 * H);
	assert_int_equal(at_next_point(&c, 336 * H), 420 * H);
	assert_int_equal(at_phase_at(&c, 48 * H - 1), AT_PH1);
	assert_int_equal(at_phase_at(&c, 48 * H), AT_PH2);
	assert_int_equal(at_phase_at(&c, 120 * H), AT_PH3);
	assert_int_equal(at_phase_at(&c, 336 * H), AT_STEADY);
	/* An interval that does not divide the phase: the phase start is a
	 * tune point anyway. */
	c.phase1_end_ms = 50 * 60 * 1000;
	c.ph[AT_PH1].every_ms = 30 * 60 * 1000;
	assert_int_equal(at_next_point(&c, 0), 30 * 60 * 1000);
	assert_int_equal(at_next_point(&c, 30 * 60 * 1000), 50 * 60 * 1000);
	assert_int_equal(at_next_point(&c, 50 * 60 * 1000), 50 * 60 * 1000 + 6 * H);
	/* An empty phase 2 (phase1-end == phase2-end) is skipped. */
	c.phase2_end_ms = c.phase1_end_ms;
	assert_int_equal(at_phase_at(&c, c.phase1_end_ms), AT_PH3);
	assert_int_equal(at_next_point(&c, c.phase1_end_ms), c.phase1_end_ms + 24 * H);
	/* Without bootstrap: every --autotune-every (steady). */
	c.bootstrap = false;
	c.ph[AT_STEADY].every_ms = 24 * H;
	assert_int_equal(at_next_point(&c, 0), 24 * H);
	assert_int_equal(at_next_point(&c, 25 * H), 48 * H);
	assert_int_equal(at_phase_at(&c, 0), AT_STEADY);
	assert_string_equal(at_phase_name(AT_STEADY), "steady");
	assert_int_equal(at_phase_parse("2"), AT_PH2);
	assert_int_equal(at_phase_parse("4"), -1);
}

static void test_gate_blocks(void **state)
{
	(void)state;
	struct at_config c;
	struct tick t;
	at_config_defaults(&c);

	tick_init(&t, 3, 1000);
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	t.v.n_block = 1; /* BLOCK held by the engine, source silent this tick */
	assert_int_equal(at_tick_clean(&c, &t.v), AT_DIRTY_BLOCK);
	t.v.n_block = 0;
	t.level[2] = DEC_LVL_BLOCK;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_DIRTY_BLOCK);
	c.learn_skip_if_blocks = false;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	t.v.n_block = 4;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
}

static void test_gate_sev_frac(void **state)
{
	(void)state;
	struct at_config c;
	at_config_defaults(&c); /* sev-gt 1.0, frac-gt 0.005 */
	size_t n = 1000;
	struct dec_metrics *m = calloc(n, sizeof(*m));
	double *sev = calloc(n, sizeof(*sev));
	uint8_t *flags = calloc(n, 1);
	assert_non_null(m);
	assert_non_null(sev);
	assert_non_null(flags);
	struct at_tick_view v = { .elapsed_ms = 1000, .m = m, .n = n, .sev = sev };

	for (int i = 0; i < 5; i++)
		sev[i] = 1.0; /* >= sev-gt counts: 5/1000 = 0.005, not above */
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	sev[5] = 2.5; /* 6/1000 > 0.005 */
	assert_int_equal(at_tick_clean(&c, &v), AT_DIRTY_SEV_FRAC);
	sev[5] = 0.999;
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	/* Whitelisted sources do not count unless they may be learned from:
	 * 4 high of 998 counted is clean, 6 of 1000 is not. */
	sev[4] = 0;
	sev[5] = sev[6] = 2.5;
	v.flags = flags;
	flags[5] = flags[6] = AT_SRC_WHITELIST;
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	c.whitelist_learn = true;
	assert_int_equal(at_tick_clean(&c, &v), AT_DIRTY_SEV_FRAC);
	flags[5] = flags[6] = AT_SRC_FEEDBACK;
	c.whitelist_learn = false;
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	c.feedback_learn = true;
	assert_int_equal(at_tick_clean(&c, &v), AT_DIRTY_SEV_FRAC);
	/* Small hosts: one of 40 is already 2.5 %. */
	v.n = 40;
	v.flags = NULL;
	for (size_t i = 0; i < n; i++)
		sev[i] = 0;
	sev[7] = 1.2;
	assert_int_equal(at_tick_clean(&c, &v), AT_DIRTY_SEV_FRAC);
	c.learn_frac_gt = 0.05;
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	/* An empty tick is clean. */
	v.n = 0;
	assert_int_equal(at_tick_clean(&c, &v), AT_CLEAN);
	free(m);
	free(sev);
	free(flags);
}

static void test_gate_drop_ratio(void **state)
{
	(void)state;
	struct at_config c;
	struct tick t;
	at_config_defaults(&c); /* 0.02 */

	tick_init(&t, 2, 1000);
	t.v.has_totals = true;
	t.v.pkts = 1000;
	t.v.drops = 20;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	t.v.drops = 21;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_DIRTY_DROPS);
	t.v.has_totals = false; /* JSON traces carry no totals */
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	t.v.has_totals = true;
	c.learn_max_drop_ratio = 0; /* disabled */
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	c.learn_max_drop_ratio = 0.02;
	t.v.pkts = 0;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_CLEAN);
	/* The block gate is checked first. */
	t.v.pkts = 10;
	t.v.drops = 10;
	t.v.n_block = 1;
	assert_int_equal(at_tick_clean(&c, &t.v), AT_DIRTY_BLOCK);
	assert_string_equal(at_clean_name(AT_DIRTY_DROPS), "drop_ratio");
}

/* Dirty ticks neither add samples nor age the bootstrap. */
static void test_dirty_tick_is_ignored(void **state)
{
	(void)state;
	struct at_config c = small_cfg();
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	struct at_status s;

	tick_init(&t, 10, 30 * 1000);
	for (int i = 0; i < 10; i++)
		t.m[i].pps = 10;
	assert_int_equal(autotune_observe_tick(at, &t.v), AT_CLEAN);
	t.v.n_block = 1;
	assert_int_equal(autotune_observe_tick(at, &t.v), AT_DIRTY_BLOCK);
	autotune_status(at, &s);
	assert_int_equal(s.observed_ms, 30 * 1000);
	assert_int_equal(s.samples, 10);
	assert_int_equal(s.ticks[AT_CLEAN], 1);
	assert_int_equal(s.ticks[AT_DIRTY_BLOCK], 1);
	/* A long gap counts only up to the tick cap. */
	autotune_free(at);
	c.max_tick_ms = 5000;
	at = mk(&c, 5000, 500, 50);
	t.v.n_block = 0;
	t.v.elapsed_ms = 3600 * 1000;
	autotune_observe_tick(at, &t.v);
	autotune_status(at, &s);
	assert_int_equal(s.observed_ms, 5000);
	autotune_free(at);
}

static void test_src_qualification(void **state)
{
	(void)state;
	struct at_config c;
	at_config_defaults(&c); /* learn-max-sev 0.8 */

	assert_true(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.8, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.81, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, NAN, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_SOFT, 0.1, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_HARD, 0.1, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_BLOCK, 0.1, 0, 0));
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0.5, 0)); /* droprl */
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0, AT_SRC_WHITELIST));
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0, AT_SRC_FEEDBACK));
	c.whitelist_learn = true;
	assert_true(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0, AT_SRC_WHITELIST));
	assert_false(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0,
				      AT_SRC_WHITELIST | AT_SRC_FEEDBACK));
	c.feedback_learn = true;
	assert_true(at_src_qualifies(&c, DEC_LVL_OBSERVE, 0.1, 0,
				     AT_SRC_WHITELIST | AT_SRC_FEEDBACK));

	/* Through the learner: only the qualifying source's value is kept. */
	at_config_defaults(&c);
	c.reservoir_cap = 100;
	c.min_samples = 1;
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	tick_init(&t, 6, 1000);
	for (int i = 0; i < 6; i++)
		t.m[i].pps = 1000 + i;
	t.sev[1] = 0.9;                 /* too severe */
	t.level[2] = DEC_LVL_SOFT;       /* rate-limited */
	t.m[3].droprl = 1;              /* hitting the limiter */
	t.flags[4] = AT_SRC_WHITELIST;
	t.flags[5] = AT_SRC_FEEDBACK;
	assert_int_equal(autotune_observe_tick(at, &t.v), AT_CLEAN);
	uint32_t n;
	const float *r = autotune_reservoir(at, DEC_F_PPS, &n);
	assert_int_equal(n, 1);
	assert_true(r[0] == 1000);
	/* Values that are not finite are not learned either. */
	tick_init(&t, 2, 1000);
	t.m[0].pps = INFINITY;
	t.m[1].syn = -1;
	autotune_observe_tick(at, &t.v);
	autotune_reservoir(at, DEC_F_PPS, &n);
	assert_int_equal(n, 1);
	autotune_free(at);
}

static void test_min_samples_gate(void **state)
{
	(void)state;
	struct at_config c = small_cfg();
	c.min_samples = 50;
	c.ph[AT_PH1].every_ms = 10 * 1000;
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	struct at_triggers io = { { -1, -1, -1, -1 } };
	char line[AT_LOGLINE_MAX];
	int k;

	for (k = 1; k <= 10; k++) { /* 10 ticks of 1 s, 4 sources: 40 samples */
		tick_init(&t, 4, 1000);
		autotune_observe_tick(at, &t.v);
		enum at_tune_rc rc = autotune_maybe_tune(at, k * 1000, &io, line, sizeof(line));
		assert_int_equal(rc, k == 10 ? AT_TUNE_SKIPPED : AT_TUNE_NONE);
		if (k < 10)
			assert_string_equal(line, "");
	}
	assert_string_equal(line, "AUTOTUNE skipped: too few samples (need 50) samples=40 phase=1");
	assert_true(io.v[DEC_F_PPS] == 5000); /* untouched triggers come back as they were */
	size_t nh;
	autotune_history(at, &nh);
	assert_int_equal(nh, 0); /* skips are not history */
	for (; k <= 20; k++) {
		tick_init(&t, 4, 1000);
		autotune_observe_tick(at, &t.v);
		enum at_tune_rc rc = autotune_maybe_tune(at, k * 1000, &io, line, sizeof(line));
		assert_int_equal(rc, k == 20 ? AT_TUNE_APPLIED : AT_TUNE_NONE);
	}
	assert_true(io.v[DEC_F_PPS] == 5000 * 0.98);
	autotune_history(at, &nh);
	assert_int_equal(nh, 1);
	autotune_free(at);
}

static void test_log_lines(void **state)
{
	(void)state;
	struct at_result r;
	char buf[AT_LOGLINE_MAX];

	memset(&r, 0, sizeof(r));
	r.applied = true;
	r.k = 3.98;
	r.samples = 12345;
	r.phase = AT_PH2;
	r.tuned[DEC_F_PPS] = r.tuned[DEC_F_SYN] = r.tuned[DEC_F_SCAN] = true;
	r.f[DEC_F_PPS] = (struct at_feat_result){ 0, 0, 0, 5000, 4900 };
	r.f[DEC_F_SYN] = (struct at_feat_result){ 0, 0, 0, 500, 515.04 };
	r.f[DEC_F_SCAN] = (struct at_feat_result){ 0, 0, 0, 50, 49.96 };
	at_format_result(&r, buf, sizeof(buf));
	assert_string_equal(buf, "AUTOTUNE applied: trig_pps 5000.0->4900.0 trig_syn 500.0->515.0 "
				 "trig_scan 50.0->50.0 (median+MAD k=4.0) samples=12345 phase=2");
	r.tuned[DEC_F_BPS] = true;
	r.f[DEC_F_BPS] = (struct at_feat_result){ 0, 0, 0, 8e7, 8.8e7 };
	r.phase = AT_STEADY;
	r.k = 3.5;
	at_format_result(&r, buf, sizeof(buf));
	assert_string_equal(buf, "AUTOTUNE applied: trig_pps 5000.0->4900.0 trig_syn 500.0->515.0 "
				 "trig_scan 50.0->50.0 trig_bps 80000000.0->88000000.0 "
				 "(median+MAD k=3.5) samples=12345 phase=steady");
	r.applied = false;
	snprintf(r.reason, sizeof(r.reason), "too few samples (need 5000)");
	r.samples = 12;
	r.phase = AT_PH1;
	at_format_result(&r, buf, sizeof(buf));
	assert_string_equal(buf, "AUTOTUNE skipped: too few samples (need 5000) samples=12 phase=1");
	/* Truncation is safe. */
	char tiny[10];
	at_format_result(&r, tiny, sizeof(tiny));
	assert_string_equal(tiny, "AUTOTUNE ");
}

static void test_config_check(void **state)
{
	(void)state;
	struct at_config c;
	char err[256];

	at_config_defaults(&c);
	assert_int_equal(at_config_check(&c, err, sizeof(err)), 0);
	assert_int_equal(at_config_cap(&c), AT_RES_DEFAULT);
	c.min_samples = 50000;
	assert_int_equal(at_config_cap(&c), 50000);
	c.min_samples = 5000000;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--autotune-min-samples"));
	at_config_defaults(&c);
	c.reservoir_cap = 100;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	at_config_defaults(&c);
	c.phase2_end_ms = c.window_ms + 1;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--bootstrap-phase2-end"));
	at_config_defaults(&c);
	c.ph[AT_PH2].max_down = 1.5;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--bootstrap-max-down2"));
	at_config_defaults(&c);
	c.ph[AT_STEADY].every_ms = 0;
	c.bootstrap = false;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--autotune-every"));
	at_config_defaults(&c);
	c.floor[DEC_F_SCAN] = -1;
	assert_int_equal(at_config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--autotune-floor-scan"));
	struct at_triggers t = { { 1, 1, 1, 0 } };
	assert_null(autotune_new(&c, &t, 0, err, sizeof(err)));
}

/* autotune_force runs a step at once; bps is tuned when asked to. */
static void test_force_and_bps(void **state)
{
	(void)state;
	struct at_config c = small_cfg();
	c.tune[DEC_F_BPS] = true;
	c.floor[DEC_F_BPS] = 1000;
	struct autotune *at = mk(&c, 5000, 500, 50);
	struct tick t;
	struct at_triggers io;
	char line[AT_LOGLINE_MAX];

	for (int k = 0; k < 5; k++) {
		tick_init(&t, 4, 1000);
		for (int i = 0; i < 4; i++)
			t.m[i].bps = 1e6;
		autotune_observe_tick(at, &t.v);
	}
	assert_int_equal(autotune_maybe_tune(at, 5000, &io, line, sizeof(line)), AT_TUNE_NONE);
	autotune_force(at);
	assert_int_equal(autotune_maybe_tune(at, 5000, &io, line, sizeof(line)), AT_TUNE_APPLIED);
	/* bps trigger was 0 (off): it stays off even though tune[bps]. */
	assert_true(io.v[DEC_F_BPS] == 0);
	assert_null(strstr(line, "trig_bps"));
	autotune_free(at);

	struct at_triggers start = { { 5000, 500, 50, 8e7 } };
	char err[128];
	at = autotune_new(&c, &start, 0, err, sizeof(err));
	assert_non_null(at);
	for (int k = 0; k < 5; k++) {
		tick_init(&t, 4, 1000);
		for (int i = 0; i < 4; i++)
			t.m[i].bps = 1e6;
		autotune_observe_tick(at, &t.v);
	}
	autotune_force(at);
	assert_int_equal(autotune_maybe_tune(at, 5000, &io, line, sizeof(line)), AT_TUNE_APPLIED);
	assert_true(fabs(io.v[DEC_F_BPS] - 8e7 * 0.98) < 1e-3);
	assert_non_null(strstr(line, "trig_bps 80000000.0->78400000.0"));
	autotune_free(at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_median_mad_known),
		cmocka_unit_test(test_median_mad_vs_sort),
		cmocka_unit_test(test_reservoir_bounds),
		cmocka_unit_test(test_reservoir_horizon),
		cmocka_unit_test(test_step_caps_per_phase),
		cmocka_unit_test(test_step_floors),
		cmocka_unit_test(test_smoothing_by_phase),
		cmocka_unit_test(test_k_interpolation),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_gate_blocks),
		cmocka_unit_test(test_gate_sev_frac),
		cmocka_unit_test(test_gate_drop_ratio),
		cmocka_unit_test(test_dirty_tick_is_ignored),
		cmocka_unit_test(test_src_qualification),
		cmocka_unit_test(test_min_samples_gate),
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_force_and_bps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
