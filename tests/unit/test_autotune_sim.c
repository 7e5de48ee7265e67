/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Autotune over 15 simulated days on a virtual clock: one tick per
 * simulated minute, 40 sources with a stable distribution, the built-in
 * defaults (bootstrap 48 h / 120 h / 336 h, every 1 h / 6 h / 24 h, then
 * 84 h; min-samples 5000).
 *
 *  - baseline: the phase boundaries and the tune intervals, counted per
 *    phase, and the triggers moving toward median + k*MAD within the caps.
 *  - attack: 7 hours of attack inserted at hour 30 (a flood, then the
 *    flood rate-limited, then blocked sources and their BLOCK TTL after
 *    the flood stops) is classified dirty tick by tick by the three gates,
 *    does not move the triggers while it lasts, and leaves exactly the
 *    same tune results as the run without it.
 *  - restart: state.json written at hour 100 (phase 2), a new learner
 *    built from the loaded file, the same trace continued: every tune
 *    (time, phase, values, log line) and the final state are identical to
 *    the uninterrupted run.
 *
 * The normal traffic of a tick is a pure function of a tick key, so
 * inserting attack ticks does not shift what the normal sources send.
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
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "decider/autotune.h"
#include "decider/state.h"

#define MIN_MS (60LL * 1000)
#define H (60 * MIN_MS)
#define T0 1767225600000LL
#define DAYS 15
#define TICKS (DAYS * 24 * 60)
#define NORMAL 40
#define ATTACKERS 200

struct attempt {
	int64_t t_ms, obs_ms;
	int phase;
	bool applied;
	struct at_result r;
	char line[AT_LOGLINE_MAX];
};

struct run {
	struct autotune *at;
	struct at_triggers trig;
	struct attempt a[160];
	size_t na;
	int64_t t_ms;
};

static struct at_config cfg(void)
{
	struct at_config c;
	at_config_defaults(&c);
	return c;
}

static const struct at_triggers start_trig = { { 5000, 500, 50, 0 } }; /* generic */

static void run_init(struct run *r)
{
	struct at_config c = cfg();
	char err[256];

	memset(r, 0, sizeof(*r));
	r->trig = start_trig;
	r->t_ms = T0;
	r->at = autotune_new(&c, &r->trig, T0, err, sizeof(err));
	if (r->at == NULL)
		fail_msg("autotune_new: %s", err);
}

static double u01(uint64_t key, unsigned i, unsigned salt)
{
	uint64_t x = key * 0x9e3779b97f4a7c15ull ^ ((uint64_t)i << 32) ^ salt;
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 32;
	return (double)(x >> 11) * 0x1.0p-53;
}

/* 40 ordinary clients: each its own level of 100..400 pps, +-20 % per
 * minute; SYN a few percent of that; a scan hint now and then. */
static void normal_sources(uint64_t key, struct dec_metrics *m)
{
	for (unsigned i = 0; i < NORMAL; i++) {
		double base = 100 + 300.0 * i / (NORMAL - 1);
		memset(&m[i], 0, sizeof(m[i]));
		m[i].pps = base * (0.8 + 0.4 * u01(key, i, 1));
		m[i].syn = m[i].pps * 0.08 * u01(key, i, 2);
		m[i].scan = u01(key, i, 3) < 0.1 ? 1 : 0;
		m[i].bps = m[i].pps * 700;
	}
}

/* Severity as the engine computes it, with the triggers in force. */
static double severity(const struct at_triggers *t, const struct dec_metrics *m)
{
	static const double w[AT_NF] = { 0.5, 0.3, 0.2, 0 };
	const double x[AT_NF] = { m->pps, m->syn, m->scan, m->bps };
	double s = 0;
	for (int f = 0; f < AT_NF; f++) {
		if (!(t->v[f] > 0) || w[f] == 0)
			continue;
		double n = x[f] / t->v[f];
		s += w[f] * (n > 3 ? 3 : n);
	}
	return s;
}

struct extra {
	size_t n_block;
	bool has_totals;
	uint64_t pkts, drops;
	const struct dec_metrics *m; /* attackers */
	const uint8_t *level;
	size_t n;
};

/* One tick of 60 s: the normal sources of `key`, plus extra. */
static enum at_clean tick(struct run *r, uint64_t key, const struct extra *x)
{
	struct dec_metrics m[NORMAL + ATTACKERS];
	double sev[NORMAL + ATTACKERS];
	uint8_t level[NORMAL + ATTACKERS];
	size_t n = NORMAL;

	normal_sources(key, m);
	memset(level, DEC_LVL_OBSERVE, sizeof(level));
	if (x != NULL && x->n > 0) {
		memcpy(m + NORMAL, x->m, x->n * sizeof(*m));
		memcpy(level + NORMAL, x->level, x->n);
		n += x->n;
	}
	for (size_t i = 0; i < n; i++)
		sev[i] = severity(&r->trig, &m[i]);
	struct at_tick_view v = { .elapsed_ms = MIN_MS, .m = m, .n = n, .sev = sev,
				  .level = level };
	if (x != NULL) {
		v.n_block = x->n_block;
		v.has_totals = x->has_totals;
		v.pkts = x->pkts;
		v.drops = x->drops;
	}
	r->t_ms += MIN_MS;
	enum at_clean cl = autotune_observe_tick(r->at, &v);
	struct attempt *a = &r->a[r->na];
	enum at_tune_rc rc = autotune_maybe_tune(r->at, r->t_ms, &r->trig, a->line, sizeof(a->line));
	if (rc != AT_TUNE_NONE) {
		struct at_status s;
		autotune_status(r->at, &s);
		assert_non_null(s.last);
		assert_true(r->na + 1 < sizeof(r->a) / sizeof(r->a[0]));
		a->t_ms = r->t_ms;
		a->obs_ms = s.last->observed_ms;
		a->phase = s.last->phase;
		a->applied = rc == AT_TUNE_APPLIED;
		a->r = *s.last;
		r->na++;
	}
	return cl;
}

static void normal_ticks(struct run *r, uint64_t from, uint64_t to)
{
	for (uint64_t k = from; k <= to; k++)
		assert_int_equal(tick(r, k, NULL), AT_CLEAN);
}

static void assert_same_tunes(const struct run *x, const struct run *y, bool same_wall)
{
	assert_int_equal(x->na, y->na);
	for (size_t i = 0; i < x->na; i++) {
		const struct attempt *a = &x->a[i], *b = &y->a[i];
		if (same_wall)
			assert_int_equal(a->t_ms, b->t_ms);
		assert_int_equal(a->obs_ms, b->obs_ms);
		assert_int_equal(a->phase, b->phase);
		assert_int_equal(a->applied, b->applied);
		assert_string_equal(a->line, b->line);
		for (int f = 0; f < AT_NF; f++)
			assert_memory_equal(&a->r.f[f], &b->r.f[f], sizeof(a->r.f[f]));
	}
	assert_memory_equal(x->trig.v, y->trig.v, sizeof(x->trig.v));
}

static struct run base; /* the uninterrupted 15 days, shared by the tests */
static char dir[] = "/tmp/kl-test-sim.XXXXXX";

static void rm_state_files(void)
{
	static const char *const names[] = { "state.json", "state.json.bak", "state.json.tmp",
					     "state.json.bak.tmp" };
	char p[64];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
}

static int setup(void **state)
{
	(void)state;
	struct timespec t0, t1;
	kl_log_init("test_autotune_sim", KL_LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_init(&base);
	for (uint64_t k = 1; k <= TICKS; k++)
		if (tick(&base, k, NULL) != AT_CLEAN)
			return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (size_t i = 0; i < base.na; i++)
		if (i % 8 == 0 || i + 1 == base.na)
			printf("%s\n", base.a[i].line);
	printf("15-day trace (%d ticks x %d sources): %.3f s, %.0f ticks/s\n", TICKS, NORMAL, s,
	       TICKS / s);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	autotune_free(base.at);
	rm_state_files();
	return rmdir(dir);
}

static void test_phases_and_intervals(void **state)
{
	(void)state;
	static const int64_t every[AT_NPHASES] = { 1 * H, 6 * H, 24 * H, 84 * H };
	static const int64_t first[AT_NPHASES] = { 1 * H, 48 * H, 120 * H, 336 * H };
	int attempts[AT_NPHASES] = { 0 }, applied[AT_NPHASES] = { 0 };
	int64_t prev_obs = 0;
	int prev_phase = -1;

	for (size_t i = 0; i < base.na; i++) {
		const struct attempt *a = &base.a[i];
		attempts[a->phase]++;
		applied[a->phase] += a->applied;
		/* Every tick was clean: the observed clock is wall time. */
		assert_int_equal(a->t_ms - T0, a->obs_ms);
		if (a->phase != prev_phase) {
			assert_true(a->phase == prev_phase + 1);
			assert_int_equal(a->obs_ms, first[a->phase]);
		} else {
			assert_int_equal(a->obs_ms - prev_obs, every[a->phase]);
		}
		char want[16];
		snprintf(want, sizeof(want), "phase=%s", at_phase_name(a->phase));
		assert_non_null(strstr(a->line, want));
		prev_obs = a->obs_ms;
		prev_phase = a->phase;
	}
	/* 1..47 h hourly, 48..114 h every 6 h, 120..312 h daily, 336 h
	 * steady (the next, 420 h, is past day 15). */
	assert_int_equal(attempts[AT_PH1], 47);
	assert_int_equal(attempts[AT_PH2], 12);
	assert_int_equal(attempts[AT_PH3], 9);
	assert_int_equal(attempts[AT_STEADY], 1);
	/* 40 sources a minute = 2400 samples an hour: the 1 h and 2 h
	 * attempts lack the 5000 samples, from 3 h on every one applies. */
	assert_int_equal(applied[AT_PH1], 45);
	assert_int_equal(applied[AT_PH2], 12);
	assert_int_equal(applied[AT_PH3], 9);
	assert_int_equal(applied[AT_STEADY], 1);
	assert_false(base.a[0].applied);
	assert_string_equal(base.a[0].line,
			    "AUTOTUNE skipped: too few samples (need 5000) samples=2400 phase=1");
	assert_non_null(strstr(base.a[2].line, "AUTOTUNE applied: trig_pps 5000.0->4900.0 "));
	assert_non_null(strstr(base.a[2].line, "(median+MAD k=4.0) samples=7200 phase=1"));
}

/* The profile's triggers are far above this host's normal: each step goes
 * down by the phase's max-down, never past the target, k shrinking. */
static void test_trajectory(void **state)
{
	(void)state;
	static const double down[AT_NPHASES] = { 0.02, 0.03, 0.05, 0.05 };
	double prev_k = 10;

	for (size_t i = 0; i < base.na; i++) {
		const struct at_result *r = &base.a[i].r;
		if (!base.a[i].applied)
			continue;
		assert_true(r->k <= prev_k);
		prev_k = r->k;
		for (int f = 0; f < AT_NF; f++) {
			if (f == DEC_F_BPS) {
				assert_false(r->tuned[f]);
				continue;
			}
			const struct at_feat_result *x = &r->f[f];
			assert_true(r->tuned[f]);
			assert_true(x->to <= x->from);
			assert_true(x->to >= x->target - 1e-9);
			assert_true(x->to >= x->from * (1 - down[r->phase]) - 1e-9);
		}
		/* Medians of the stable distribution stay put. */
		assert_true(r->f[DEC_F_PPS].median > 200 && r->f[DEC_F_PPS].median < 320);
	}
	/* scan's target is its floor (almost all samples are 0): smoothing
	 * approaches it from above without reaching it. The final pps
	 * trigger is still above every normal source's rate, so none of
	 * them was ever high. */
	assert_true(base.trig.v[DEC_F_SCAN] > 20 && base.trig.v[DEC_F_SCAN] < 20.1);
	assert_true(base.trig.v[DEC_F_PPS] < 5000 * 0.5 && base.trig.v[DEC_F_PPS] > 480 * 1.2);
}

static void test_attack_does_not_teach(void **state)
{
	(void)state;
	struct run r;
	static struct dec_metrics am[ATTACKERS];
	static uint8_t al[ATTACKERS];
	int counts[AT_NCLEAN] = { 0 };

	run_init(&r);
	normal_ticks(&r, 1, 30 * 60);
	struct at_triggers before = r.trig;
	size_t na_before = r.na;
	for (int j = 1; j <= 420; j++) {
		struct extra x = { .m = am, .level = al, .n = ATTACKERS };
		for (unsigned i = 0; i < ATTACKERS; i++) {
			memset(&am[i], 0, sizeof(am[i]));
			am[i].addr.family = 4;
			am[i].addr.prefixlen = 32;
			am[i].addr.addr[0] = 198;
			am[i].addr.addr[1] = 18;
			am[i].addr.addr[3] = (uint8_t)i;
		}
		if (j <= 60) {          /* the flood, not yet acted on */
			for (unsigned i = 0; i < ATTACKERS; i++) {
				am[i].pps = 20000;
				am[i].syn = 4000;
				am[i].scan = 30;
				al[i] = DEC_LVL_OBSERVE;
			}
		} else if (j <= 180) {  /* rate-limited: what passes is little */
			for (unsigned i = 0; i < ATTACKERS; i++) {
				am[i].pps = 5;
				am[i].droprl = 19995;
				al[i] = DEC_LVL_HARD;
			}
			x.has_totals = true;
			x.pkts = (uint64_t)ATTACKERS * 20000 * 60 + 250 * NORMAL * 60;
			x.drops = (uint64_t)ATTACKERS * 19995 * 60;
		} else if (j <= 360) {  /* blocked */
			for (unsigned i = 0; i < ATTACKERS; i++)
				al[i] = DEC_LVL_BLOCK;
			x.n_block = ATTACKERS;
		} else {                /* silent, BLOCK TTL still running */
			x.n = 0;
			x.n_block = ATTACKERS;
		}
		enum at_clean cl = tick(&r, 1000000 + (uint64_t)j, &x);
		assert_true(cl != AT_CLEAN);
		counts[cl]++;
	}
	assert_int_equal(counts[AT_DIRTY_SEV_FRAC], 60);
	assert_int_equal(counts[AT_DIRTY_DROPS], 120);
	assert_int_equal(counts[AT_DIRTY_BLOCK], 240);
	/* Nothing happened while it lasted. */
	assert_int_equal(r.na, na_before);
	assert_memory_equal(before.v, r.trig.v, sizeof(before.v));
	struct at_status s;
	autotune_status(r.at, &s);
	assert_int_equal(s.observed_ms, 30 * H);
	assert_int_equal(s.ticks[AT_CLEAN], 30 * 60);

	normal_ticks(&r, 30 * 60 + 1, TICKS);
	/* The same tunes as without the attack, 7 hours later on the wall
	 * clock, and no sample from it: identical values. */
	assert_same_tunes(&base, &r, false);
	for (size_t i = 0; i < r.na; i++)
		if (r.a[i].obs_ms > 30 * H)
			assert_int_equal(r.a[i].t_ms - T0, r.a[i].obs_ms + 7 * H);
	uint32_t n;
	const float *res = autotune_reservoir(r.at, DEC_F_PPS, &n);
	for (uint32_t i = 0; i < n; i++)
		assert_true(res[i] < 1000);
	autotune_free(r.at);
}

static void test_restart_resumes_timeline(void **state)
{
	(void)state;
	char path[64], err[256];
	struct run r;
	struct dec_state st;
	struct state_load_report rep;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	run_init(&r);
	normal_ticks(&r, 1, 100 * 60);
	struct at_status s;
	autotune_status(r.at, &s);
	assert_int_equal(s.phase, AT_PH2);
	assert_int_equal(state_save_autotune(path, r.at, "generic", r.t_ms, err, sizeof(err)), 0);
	autotune_free(r.at);

	/* A new process: load, resolve the triggers (here: the state's),
	 * new learner, restore. */
	r.at = NULL;
	assert_int_equal(state_load(path, r.t_ms, 336 * H, &st, &rep), 0);
	struct at_config c = cfg();
	assert_false(state_restart_reason(&st, "generic", c.floor, start_trig.v, err,
					  sizeof(err)));
	memcpy(r.trig.v, st.trig, sizeof(r.trig.v));
	r.at = autotune_new(&c, &r.trig, r.t_ms, err, sizeof(err));
	assert_non_null(r.at);
	autotune_restore(r.at, &st, false);
	dec_state_free(&st);

	normal_ticks(&r, 100 * 60 + 1, TICKS);
	assert_same_tunes(&base, &r, true);

	/* And the learner ends in the very same state. */
	struct dec_state a, b;
	char ha[65], hb[65];
	autotune_export(base.at, "generic", r.t_ms, &a);
	autotune_export(r.at, "generic", r.t_ms, &b);
	json_t *ja = state_to_json(&a), *jb = state_to_json(&b);
	assert_non_null(ja);
	assert_non_null(jb);
	assert_int_equal(state_digest(ja, ha), 0);
	assert_int_equal(state_digest(jb, hb), 0);
	assert_string_equal(ha, hb);
	json_decref(ja);
	json_decref(jb);

	/* A restart that changes the profile starts over at phase 1. */
	assert_int_equal(state_save_autotune(path, r.at, "generic", r.t_ms, err, sizeof(err)), 0);
	assert_true(state_load(path, r.t_ms, 336 * H, &st, &rep) >= 0);
	assert_true(state_restart_reason(&st, "public-web", c.floor, NULL, err, sizeof(err)));
	struct at_triggers pw = { { 1200, 250, 20, 0 } };
	struct autotune *fresh = autotune_new(&c, &pw, r.t_ms, err, sizeof(err));
	assert_non_null(fresh);
	autotune_restore(fresh, &st, true);
	autotune_status(fresh, &s);
	assert_int_equal(s.phase, AT_PH1);
	assert_int_equal(s.observed_ms, 0);
	assert_int_equal(s.next_point_ms, 1 * H);
	dec_state_free(&st);
	autotune_free(fresh);

	autotune_free(r.at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phases_and_intervals),
		cmocka_unit_test(test_trajectory),
		cmocka_unit_test(test_attack_does_not_teach),
		cmocka_unit_test(test_restart_resumes_timeline),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
