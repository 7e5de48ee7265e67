/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-source baselines (decider/baseline.h): learning, promotion, the held
 * updates, anti-poisoning through the engine (an edge deviation from
 * kl-graphd included: strikes, nothing else), the tolerance cap, and the
 * store (round trip, corrupt file refused, .bak fallback).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/addr.h"
#include "decider/baseline.h"
#include "decider/engine.h"
#include "decider/state.h"
#include "decider/table.h"
#include "ipc/violation.h"

#define S(x) ((int64_t)(x) * 1000)
#define T 1000.0 /* trig_pps of the tests */

static struct dec_bl_params bparams(void)
{
	struct dec_bl_params bp;

	memset(&bp, 0, sizeof(bp));
	bp.enabled = true;
	bp.min_pps = 3;
	bp.relevant = 0.5;
	bp.promote_after = 30;
	bp.stable_after = 300;
	bp.alpha_young = 0.10;
	bp.alpha_stable = 0.02;
	bp.tolerance = 1.2;
	bp.min_confidence = 0.5;
	bp.halflife_ms = S(86400);
	bp.hold_ms = S(10);
	bp.ttl_ms = S(7 * 86400);
	bp.max_sources = 1000;
	return bp;
}

/* pps alone decides: sev = pps / T. */
static struct dec_engine_params eparams(void)
{
	struct dec_engine_params p;

	memset(&p, 0, sizeof(p));
	p.trig[DEC_F_PPS] = T;
	p.trig[DEC_F_SYN] = 100;
	p.trig[DEC_F_SCAN] = 100;
	p.w[DEC_F_PPS] = 1.0;
	p.sev_cap = 3.0;
	p.step[0] = 1.0;
	p.step[1] = 2.0;
	p.step[2] = 3.0;
	p.delta[0] = 1;
	p.delta[1] = 2;
	p.delta[2] = 3;
	p.decay_below = 0.25;
	p.at[DEC_LVL_SOFT] = 2;
	p.at[DEC_LVL_HARD] = 4;
	p.at[DEC_LVL_BLOCK] = 100;
	p.up_need = 1;
	p.down_need = 1;
	p.ttl_ms[DEC_LVL_SOFT] = S(60);
	p.ttl_ms[DEC_LVL_HARD] = S(120);
	p.ttl_ms[DEC_LVL_BLOCK] = S(300);
	p.noncomp_at = 999;
	p.noncomp_drop = 999;
	p.noncomp_sev = 999;
	p.noncomp_reset_below = 0.3;
	p.min_pps = 10;
	p.top = 100;
	p.state_ttl_ms = S(3600);
	for (int l = 0; l < DEC_LVL_COUNT; l++)
		p.action[l] = (uint8_t)l;
	p.viol_level = DEC_LVL_BLOCK;
	return p;
}

static struct kl_addr A(const char *s)
{
	struct kl_addr a, k;

	assert_int_equal(kl_addr_parse(s, &a, NULL, 0), 0);
	assert_true(dec_addr_key(&a, &k));
	return k;
}

static struct dec_metrics M(const char *ip, double pps)
{
	struct dec_metrics m;

	memset(&m, 0, sizeof(m));
	m.addr = A(ip);
	m.pps = pps;
	return m;
}

/* The gate: min-pps, relevance, never above a global trigger. */
static void test_gate(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_engine_params p = eparams();
	struct dec_metrics m = M("198.18.0.1", 900);

	assert_true(dec_bl_gate(&bp, p.trig, &m));
	m.pps = 400; /* below relevant x trig: a baseline could not matter */
	assert_false(dec_bl_gate(&bp, p.trig, &m));
	m.pps = 1001; /* above the global trigger: never learned */
	assert_false(dec_bl_gate(&bp, p.trig, &m));
	m.pps = 900;
	m.droprl = 1; /* rate-limited */
	assert_false(dec_bl_gate(&bp, p.trig, &m));
	bp.relevant = 0;
	m.droprl = 0;
	m.pps = 2; /* below min-pps */
	assert_false(dec_bl_gate(&bp, p.trig, &m));
}

/* Held observations count only once hold has passed; promotion after
 * promote-after; alpha young, the peak is the largest observation. */
static void test_hold_promote_ewma(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_baselines *b = dec_bl_new(&bp, 1);
	struct kl_addr a = A("198.18.0.1");
	int t;

	for (t = 0; t < 10; t++) {
		struct dec_metrics m = M("198.18.0.1", t == 5 ? 950 : 800);
		assert_int_equal(dec_bl_observe(b, &a, &m, S(t)), 0);
	}
	const struct dec_bl *r = dec_bl_lookup(b, &a);
	assert_non_null(r);
	assert_int_equal(r->n, 0); /* all still held */
	for (; t < 20; t++) {
		struct dec_metrics m = M("198.18.0.1", 800);
		dec_bl_observe(b, &a, &m, S(t));
	}
	r = dec_bl_lookup(b, &a);
	assert_int_equal(r->n, 10); /* t=0..9 committed at t=19 */
	assert_float_equal(r->peak[0], 950.0, 1e-3);
	/* ewma of 10 x mean 815 starting from the first: 815 */
	assert_float_equal(r->ewma[0], 815.0, 1e-2);
	assert_false(r->flags & DEC_BL_F_PROMOTED);
	for (; t < 40; t++) {
		struct dec_metrics m = M("198.18.0.1", 800);
		dec_bl_observe(b, &a, &m, S(t));
	}
	r = dec_bl_lookup(b, &a);
	assert_int_equal(r->n, 30);
	assert_true(r->flags & DEC_BL_F_PROMOTED);
	/* young alpha 0.1 over 20 observations of 800 from 815 */
	double e = 815.0;
	for (int i = 0; i < 20; i++)
		e += 0.1 * (800.0 - e);
	assert_float_equal(r->ewma[0], e, 1e-2);
	assert_float_equal(dec_bl_confidence(&bp, r, S(39)), 0.5, 1e-2);
	dec_bl_free(b);
}

/* A suspicious tick drops everything still held, nothing committed. */
static void test_taint_drops_held(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_baselines *b = dec_bl_new(&bp, 1);
	struct kl_addr a = A("198.18.0.2");

	for (int t = 0; t < 15; t++) {
		struct dec_metrics m = M("198.18.0.2", 900);
		dec_bl_observe(b, &a, &m, S(t));
	}
	dec_bl_taint(b, &a, S(15), false);
	for (int t = 16; t < 25; t++) {
		struct dec_metrics m = M("198.18.0.2", 900);
		dec_bl_observe(b, &a, &m, S(t));
	}
	const struct dec_bl *r = dec_bl_lookup(b, &a);
	assert_int_equal(r->n, 0); /* t=0..9 would have committed at t=19 */
	dec_bl_free(b);
}

/* Effective trigger: global below promotion or confidence, peak x tol
 * above, and never more than trig x tol even when autotune lowered the
 * trigger under what was learned. */
static void test_effective_cap(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_engine_params p = eparams();
	struct dec_bl r;
	double eff[DEC_F_COUNT];

	memset(&r, 0, sizeof(r));
	r.key = A("198.18.0.3");
	r.n = 60;
	r.peak[0] = 950;
	r.t_last = S(100);
	assert_false(dec_bl_effective(&bp, &r, p.trig, S(100), eff)); /* not promoted */
	r.flags = DEC_BL_F_PROMOTED;
	assert_true(dec_bl_effective(&bp, &r, p.trig, S(100), eff));
	assert_float_equal(eff[DEC_F_PPS], 1140.0, 1e-6);
	assert_float_equal(eff[DEC_F_SYN], 100.0, 1e-9); /* nothing learned: global */
	p.trig[DEC_F_PPS] = 500; /* autotune moved the trigger down */
	assert_true(dec_bl_effective(&bp, &r, p.trig, S(100), eff));
	assert_float_equal(eff[DEC_F_PPS], 600.0, 1e-6);
	p.trig[DEC_F_PPS] = T;
	/* stale: two half-lives idle -> confidence 0.25 < 0.5 */
	assert_false(dec_bl_effective(&bp, &r, p.trig, S(100) + 2 * bp.halflife_ms, eff));
}

struct rig {
	struct dec_engine *e;
	struct dec_baselines *b;
	struct dec_changes out;
};

static void rig_init(struct rig *g)
{
	struct dec_engine_params p = eparams();
	struct dec_bl_params bp = bparams();

	memset(g, 0, sizeof(*g));
	g->e = dec_engine_new(&p, 7);
	g->b = dec_bl_new(&bp, 8);
	assert_non_null(g->e);
	assert_non_null(g->b);
	dec_engine_set_baselines(g->e, g->b);
}

static void rig_free(struct rig *g)
{
	dec_engine_free(g->e);
	dec_bl_free(g->b);
	dec_changes_free(&g->out);
}

static void tick(struct rig *g, int t, const struct dec_metrics *m, size_t n)
{
	g->out.n = 0;
	assert_int_equal(dec_engine_tick(g->e, S(t), m, n, NULL, 0, NULL, NULL, &g->out), 0);
}

/* However slowly an attacker ramps, no effective trigger exceeds trig x
 * tolerance, and once past it the source is escalated. */
static void test_slow_ramp_capped(void **state)
{
	(void)state;
	struct rig g;
	bool escalated = false;

	rig_init(&g);
	for (int t = 0; t < 4000; t++) {
		struct dec_metrics m = M("198.18.0.4", 500.0 + 0.5 * t); /* +0.5 pps/s */
		tick(&g, t, &m, 1);
		double eff[DEC_F_COUNT];
		dec_bl_effective(dec_bl_params(g.b), dec_bl_lookup(g.b, &m.addr),
				dec_engine_params(g.e)->trig, S(t), eff);
		assert_true(eff[DEC_F_PPS] <= T * 1.2 + 1e-9);
		const struct dec_src *s = dec_engine_lookup(g.e, &m.addr);
		if (s != NULL && s->level > DEC_LVL_OBSERVE) {
			escalated = true;
			assert_true(m.pps <= T * 1.2 + 2.0); /* within a tick or two of the cap */
			break;
		}
	}
	assert_true(escalated);
	const struct kl_addr ka = A("198.18.0.4");
	const struct dec_bl *r = dec_bl_lookup(g.b, &ka);
	assert_non_null(r);
	assert_true(r->flags & DEC_BL_F_PROMOTED);
	assert_true(r->peak[0] <= T);
	rig_free(&g);
}

/* A source held at RATE_SOFT learns nothing, however clean its traffic
 * looks; the same traffic from a source at OBSERVE is learned. */
static void test_rate_limited_learns_nothing(void **state)
{
	(void)state;
	struct rig g;
	struct kl_addr lim = A("198.18.0.5");

	rig_init(&g);
	assert_int_equal(dec_engine_adopt(g.e, &lim, DEC_LVL_SOFT, S(3600), 0), 1);
	for (int t = 0; t < 100; t++) {
		struct dec_metrics m[2] = { M("198.18.0.5", 900), M("198.18.0.6", 900) };
		tick(&g, t, m, 2);
	}
	assert_int_equal(dec_engine_lookup(g.e, &lim)->level, DEC_LVL_SOFT);
	const struct dec_bl *r = dec_bl_lookup(g.b, &lim);
	assert_true(r == NULL || (r->n == 0 && r->peak[0] == 0));
	const struct kl_addr kb = A("198.18.0.6");
	r = dec_bl_lookup(g.b, &kb);
	assert_non_null(r);
	assert_true(r->n >= 80);
	rig_free(&g);
}

/* A source that turns suspicious (a high tick) inside the hold loses what
 * was held: a burst right after clean traffic leaves it unpromoted. */
static void test_suspicious_within_hold(void **state)
{
	(void)state;
	struct rig g;

	rig_init(&g);
	/* 29 clean ticks, then a flood at t=29..31 before any of the last
	 * batches was committed: only t=0..9 and 10..19 (committed by t=29)
	 * remain. */
	for (int t = 0; t < 40; t++) {
		struct dec_metrics m = M("198.18.0.7", t >= 29 && t < 32 ? 2500 : 900);
		tick(&g, t, &m, 1);
	}
	const struct kl_addr kc = A("198.18.0.7");
	const struct dec_bl *r = dec_bl_lookup(g.b, &kc);
	assert_non_null(r);
	assert_true(r->n <= 20);
	assert_false(r->flags & DEC_BL_F_PROMOTED);
	rig_free(&g);
}

/* What kl-graphd sends for an edge far above its per-edge baseline: one
 * VIOLATION record with reason deviation (always mode observe), through
 * the wire codec and into the engine's list as kl-decider's receiver does. */
static struct dec_violation deviation(const char *ip)
{
	struct kl_violation_rec r, back;
	struct dec_violation v[1];
	uint8_t buf[KL_VIOLATION_HDR_LEN + KL_VIOLATION_REC_LEN];
	uint32_t n = 0;
	size_t nv = 0;
	char err[128];

	memset(&r, 0, sizeof(r));
	assert_int_equal(kl_addr_parse(ip, &r.src, NULL, 0), 0);
	r.port = 8080;
	r.proto = 6;
	r.mode = KL_VIOLATION_OBSERVE;
	r.reason = KL_VIOLATION_R_DEVIATION;
	assert_int_equal(kl_violations_len(1), sizeof(buf));
	kl_violations_encode(&r, 1, buf);
	assert_int_equal(kl_violations_decode(buf, sizeof(buf), &back, 1, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(back.reason, KL_VIOLATION_R_DEVIATION);
	assert_int_equal(dec_violations_take(v, &nv, 1, &back, 1), 0);
	assert_int_equal(nv, 1);
	assert_int_equal(v[0].mode, DEC_VIOL_OBSERVE);
	return v[0];
}

/* An edge deviation adds strikes and nothing else: however long it goes
 * on, the source stays at OBSERVE with strikes below soft-at and no level
 * change. And it is a graph violation for the baselines: what the source
 * had held is dropped and nothing is learned while it deviates, while
 * the same clean traffic from a source without deviations is learned. */
static void test_deviation_strikes_only(void **state)
{
	(void)state;
	struct rig g;
	const struct dec_engine_params *p;
	const struct kl_addr kv = A("198.18.0.8"), kw = A("198.18.0.9"), kc = A("198.18.0.10");
	const struct dec_violation dv = deviation("198.18.0.8"), dw = deviation("198.18.0.9");

	rig_init(&g);
	p = dec_engine_params(g.e);
	for (int t = 0; t < 40; t++) {
		/* V deviates once, at t=15, inside the hold of its first batch
		 * (t=0..9, due at t=19); W deviates on every tick; C never. */
		struct dec_metrics m[3] = { M("198.18.0.8", 900), M("198.18.0.9", 900),
					    M("198.18.0.10", 900) };
		struct dec_violation v[2] = { dw, dv };
		g.out.n = 0;
		assert_int_equal(dec_engine_tick(g.e, S(t), m, 3, v, t == 15 ? 2 : 1, NULL, NULL,
						 &g.out),
				 0);
		assert_int_equal(g.out.n, 0); /* never a level change */
		const struct dec_src *w = dec_engine_lookup(g.e, &kw);
		assert_non_null(w);
		assert_int_equal(w->level, DEC_LVL_OBSERVE);
		assert_int_equal(w->strikes, p->at[DEC_LVL_SOFT] - 1);
		if (t == 15) {
			const struct dec_src *sv = dec_engine_lookup(g.e, &kv);
			assert_non_null(sv);
			assert_int_equal(sv->strikes, p->delta[0]);
			assert_int_equal(sv->level, DEC_LVL_OBSERVE);
		}
		if (t == 25) {
			/* C's t=0..9 committed at t=19; V's were dropped at t=15 */
			const struct dec_bl *c = dec_bl_lookup(g.b, &kc), *bv = dec_bl_lookup(g.b, &kv);
			assert_non_null(c);
			assert_int_equal(c->n, 10);
			assert_true(bv == NULL || bv->n == 0);
		}
	}
	const struct dec_bl *bw = dec_bl_lookup(g.b, &kw);
	assert_true(bw == NULL || (bw->n == 0 && bw->peak[0] == 0));
	assert_true(dec_bl_lookup(g.b, &kv)->n > 0); /* clean again after t=15 */
	rig_free(&g);
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/kl-bl-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

/* Survives a restart: save, load into a fresh table, same numbers. */
static void test_store_roundtrip(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_baselines *b = dec_bl_new(&bp, 1), *c = dec_bl_new(&bp, 2);
	char *dir = tmpdir(), path[256], why[1024], err[256];
	struct dec_bl r;

	memset(&r, 0, sizeof(r));
	r.key = A("fd00:6b6c::9");
	r.n = 77;
	r.ewma[0] = 812.5f;
	r.peak[0] = 960.0f;
	r.peak[1] = 12.0f;
	r.t_last = S(1700000000);
	assert_int_equal(dec_bl_put(b, &r), 0);
	snprintf(path, sizeof(path), "%s/baselines.json", dir);
	assert_int_equal(dec_bl_save(b, path, S(1700000010), err, sizeof(err)), 0);
	int lrc = dec_bl_load(c, path, S(1700000020), S(3600), why, sizeof(why));
	if (lrc != 0)
		fprintf(stderr, "load: %s\n", why);
	assert_int_equal(lrc, 0);
	const struct dec_bl *l = dec_bl_lookup(c, &r.key);
	assert_non_null(l);
	assert_int_equal(l->n, 77);
	assert_true(l->flags & DEC_BL_F_PROMOTED);
	assert_float_equal(l->ewma[0], 812.5, 1e-3);
	assert_float_equal(l->peak[0], 960.0, 1e-3);
	assert_float_equal(l->peak[1], 12.0, 1e-3);
	assert_true(l->t_last == S(1700000000));
	/* too old for max-age: refused, named */
	struct dec_baselines *o = dec_bl_new(&bp, 3);
	assert_int_equal(dec_bl_load(o, path, S(1700000010) + S(7200), S(3600), why, sizeof(why)),
			 -1);
	assert_non_null(strstr(why, "older than --max-state-age"));
	assert_int_equal(dec_bl_count(o), 0);
	dec_bl_free(o);
	dec_bl_free(b);
	dec_bl_free(c);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* A damaged store is refused with the reason; the .bak (the previous
 * save) is used instead; with neither, nothing is loaded. */
static void test_store_corrupt(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	struct dec_baselines *b = dec_bl_new(&bp, 1);
	char *dir = tmpdir(), path[256], bak[264], why[1024], err[256];
	struct dec_bl r;

	memset(&r, 0, sizeof(r));
	r.key = A("198.18.0.8");
	r.n = 40;
	r.peak[0] = 900;
	r.t_last = S(1000);
	assert_int_equal(dec_bl_put(b, &r), 0);
	snprintf(path, sizeof(path), "%s/baselines.json", dir);
	snprintf(bak, sizeof(bak), "%s.bak", path);
	assert_int_equal(dec_bl_save(b, path, S(1000), err, sizeof(err)), 0);
	r.peak[0] = 950; /* second save: first one becomes .bak */
	assert_int_equal(dec_bl_put(b, &r), 0);
	assert_int_equal(dec_bl_save(b, path, S(1001), err, sizeof(err)), 0);
	/* flip a value without fixing the hash */
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	char *p = strstr(buf, "950");
	assert_non_null(p);
	p[0] = '8';
	rewind(f);
	fwrite(buf, 1, n, f);
	fclose(f);
	struct dec_baselines *c = dec_bl_new(&bp, 2);
	assert_int_equal(dec_bl_load(c, path, S(1002), 0, why, sizeof(why)), 1); /* from .bak */
	assert_float_equal(dec_bl_lookup(c, &r.key)->peak[0], 900.0, 1e-3);
	unlink(bak);
	struct dec_baselines *d = dec_bl_new(&bp, 3);
	assert_int_equal(dec_bl_load(d, path, S(1002), 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "integrity hash mismatch"));
	assert_int_equal(dec_bl_count(d), 0);
	dec_bl_free(b);
	dec_bl_free(c);
	dec_bl_free(d);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* A row the table could not save again is refused at load (it would come
 * back as a file the next start refuses): a t_last whose ms overflow, a
 * rate beyond a float. The hash is right, so only the bounds refuse it. */
static void test_store_refuses_unsaveable(void **state)
{
	(void)state;
	static const char *const rows[] = {
		"[\"198.18.0.1\", 40, 1.7e99, 1, 0, 0, 2, 0, 0]",
		"[\"198.18.0.1\", 40, 1000, 1e300, 0, 0, 2, 0, 0]",
		"[\"198.18.0.1\", 40, 1000, 1, 0, 0, 2, 0, 4e38]",
	};
	struct dec_bl_params bp = bparams();
	char *dir = tmpdir(), path[256], why[1024], hex[65];

	snprintf(path, sizeof(path), "%s/baselines.json", dir);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[512];
		json_error_t je;
		snprintf(text, sizeof(text), "{\"version\": 1, \"saved_at\": 1000, \"sources\": [%s]}",
			 rows[i]);
		json_t *d = json_loads(text, 0, &je);
		assert_non_null(d);
		assert_int_equal(state_digest(d, hex), 0);
		json_object_set_new(d, "integrity", json_pack("{s:s}", "sha256", hex));
		assert_int_equal(json_dump_file(d, path, 0), 0);
		json_decref(d);
		struct dec_baselines *b = dec_bl_new(&bp, 1);
		assert_int_equal(dec_bl_load(b, path, S(1002), 0, why, sizeof(why)), -1);
		assert_non_null(strstr(why, "sources[0]"));
		assert_int_equal(dec_bl_count(b), 0);
		dec_bl_free(b);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* max-sources bounds the table; the sweep forgets idle baselines. */
static void test_bounds_and_sweep(void **state)
{
	(void)state;
	struct dec_bl_params bp = bparams();
	bp.max_sources = 2;
	bp.ttl_ms = S(100);
	struct dec_baselines *b = dec_bl_new(&bp, 1);
	struct dec_metrics m1 = M("198.18.0.9", 900), m2 = M("198.18.0.10", 900),
			  m3 = M("198.18.0.11", 900);

	assert_int_equal(dec_bl_observe(b, &m1.addr, &m1, S(0)), 0);
	assert_int_equal(dec_bl_observe(b, &m2.addr, &m2, S(50)), 0);
	assert_int_equal(dec_bl_observe(b, &m3.addr, &m3, S(50)), -1);
	assert_int_equal(dec_bl_count(b), 2);
	assert_int_equal(dec_bl_sweep(b, S(120)), 1); /* m1 idle 120 s */
	assert_null(dec_bl_lookup(b, &m1.addr));
	assert_non_null(dec_bl_lookup(b, &m2.addr));
	dec_bl_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate),
		cmocka_unit_test(test_hold_promote_ewma),
		cmocka_unit_test(test_taint_drops_held),
		cmocka_unit_test(test_effective_cap),
		cmocka_unit_test(test_slow_ramp_capped),
		cmocka_unit_test(test_rate_limited_learns_nothing),
		cmocka_unit_test(test_suspicious_within_hold),
		cmocka_unit_test(test_deviation_strikes_only),
		cmocka_unit_test(test_store_roundtrip),
		cmocka_unit_test(test_store_corrupt),
		cmocka_unit_test(test_store_refuses_unsaveable),
		cmocka_unit_test(test_bounds_and_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
