/* SPDX-License-Identifier: MPL-2.0 */
/*
 * state.json (decider/state.c): round trip, integrity (tamper detection),
 * atomic write with .bak, fallback to .bak, --max-state-age, field-naming
 * parse errors, restarting the bootstrap on a profile or floor change, and
 * the `klctl tune --json` document.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "decider/autotune.h"
#include "decider/state.h"

#define H (3600LL * 1000)
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kl-test-state.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static char *pathf(const char *name)
{
	static char p[4][160];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	if (n != NULL)
		*n = (size_t)len;
	return buf;
}

static void spit(const char *path, const char *buf, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

/* An autotune that has learned something: 3 h of 1-minute ticks, a short
 * phase 1 so there are several history entries. */
static struct autotune *learned(struct at_config *c, int hours, int64_t t0)
{
	char err[256], line[AT_LOGLINE_MAX];
	struct at_triggers trig = { { 5000, 500, 50, 0 } }, io;
	struct dec_metrics m[20];
	double sev[20] = { 0 };

	at_config_defaults(c);
	c->reservoir_cap = 500;
	c->min_samples = 100;
	c->history_max = 5;
	struct autotune *at = autotune_new(c, &trig, t0, err, sizeof(err));
	assert_non_null(at);
	for (int k = 1; k <= hours * 60; k++) {
		memset(m, 0, sizeof(m));
		for (int i = 0; i < 20; i++) {
			m[i].pps = 100 + (k * 7 + i * 13) % 97;
			m[i].syn = (k + i) % 11;
			m[i].scan = (k * i) % 3;
			m[i].bps = m[i].pps * 800;
		}
		struct at_tick_view v = { .elapsed_ms = 60 * 1000, .m = m, .n = 20, .sev = sev };
		autotune_observe_tick(at, &v);
		autotune_maybe_tune(at, t0 + k * 60 * 1000, &io, line, sizeof(line));
	}
	return at;
}

static void assert_state_equal(const struct dec_state *a, const struct dec_state *b)
{
	assert_int_equal(a->saved_ms, b->saved_ms);
	assert_string_equal(a->profile, b->profile);
	assert_memory_equal(a->floor, b->floor, sizeof(a->floor));
	assert_memory_equal(a->trig, b->trig, sizeof(a->trig));
	assert_memory_equal(a->seed, b->seed, sizeof(a->seed));
	assert_int_equal(a->bootstrap, b->bootstrap);
	assert_int_equal(a->start_ms, b->start_ms);
	assert_int_equal(a->observed_ms, b->observed_ms);
	assert_int_equal(a->next_point_ms, b->next_point_ms);
	assert_int_equal(a->phase, b->phase);
	assert_memory_equal(a->ticks, b->ticks, sizeof(a->ticks));
	assert_int_equal(a->seen, b->seen);
	assert_int_equal(a->nhist, b->nhist);
	for (size_t i = 0; i < a->nhist; i++) {
		const struct at_result *x = &a->hist[i], *y = &b->hist[i];
		assert_int_equal(x->t_ms, y->t_ms);
		assert_int_equal(x->observed_ms, y->observed_ms);
		assert_int_equal(x->phase, y->phase);
		assert_true(x->k == y->k);
		assert_int_equal(x->samples, y->samples);
		assert_memory_equal(x->tuned, y->tuned, sizeof(x->tuned));
		for (int f = 0; f < AT_NF; f++)
			if (x->tuned[f])
				assert_memory_equal(&x->f[f], &y->f[f], sizeof(x->f[f]));
	}
	assert_int_equal(a->res_n, b->res_n);
	assert_int_equal(a->res_cap, b->res_cap);
	assert_true(a->res_w == b->res_w);
	assert_int_equal(a->rng, b->rng);
	for (int f = 0; f < AT_NF; f++)
		assert_memory_equal(a->res[f], b->res[f], a->res_n * sizeof(float));
}

static void test_round_trip(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 3, T0);
	struct dec_state out, in;
	char err[256];
	bool absent;
	char p[160];
	snprintf(p, sizeof(p), "%s/state.json", dir);

	autotune_export(at, "public-web", T0 + 3 * H, &out);
	assert_true(out.nhist >= 2);
	assert_int_equal(out.res_n, 500);
	assert_int_equal(state_save(p, &out, err, sizeof(err)), 0);
	assert_int_equal(state_load_file(p, T0 + 3 * H, 336 * H, &in, &absent, err, sizeof(err)), 0);
	assert_state_equal(&out, &in);

	/* The file is private and no .tmp is left behind. */
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(access(pathf("state.json.tmp"), F_OK), -1);

	/* A restored learner continues exactly where the first one is. */
	char err2[128];
	struct at_triggers t;
	memcpy(t.v, in.trig, sizeof(t.v));
	struct autotune *b = autotune_new(&c, &t, T0 + 3 * H, err2, sizeof(err2));
	assert_non_null(b);
	autotune_restore(b, &in, false);
	struct dec_state again;
	autotune_export(b, "public-web", T0 + 3 * H, &again);
	assert_state_equal(&out, &again);
	struct at_status s;
	autotune_status(b, &s);
	assert_non_null(s.last);
	assert_int_equal(s.last->observed_ms, 3 * H);

	dec_state_free(&in);
	autotune_free(b);
	autotune_free(at);
}

static void test_file_content(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 2, T0);
	char err[256];
	char p[160];
	snprintf(p, sizeof(p), "%s/content.json", dir);

	assert_int_equal(state_save_autotune(p, at, "generic", T0 + 2 * H, err, sizeof(err)), 0);
	char *text = slurp(p, NULL);
	json_error_t je;
	json_t *d = json_loads(text, 0, &je);
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "profile")), "generic");
	json_t *trig = json_object_get(json_object_get(d, "active"), "trig");
	assert_true(json_is_number(json_object_get(trig, "pps")));
	assert_true(json_is_number(json_object_get(trig, "bps")));
	json_t *bs = json_object_get(d, "bootstrap");
	assert_true(json_number_value(json_object_get(bs, "observed_s")) == 7200.0);
	assert_string_equal(json_string_value(json_object_get(bs, "phase")), "1");
	assert_true(json_number_value(json_object_get(bs, "start")) == T0 / 1000.0);
	assert_true(json_array_size(json_object_get(d, "history")) == 2);
	json_t *h0 = json_array_get(json_object_get(d, "history"), 0);
	assert_true(json_is_number(json_object_get(json_object_get(h0, "pps"), "median")));
	assert_true(json_is_number(json_object_get(json_object_get(h0, "pps"), "mad")));
	assert_null(json_object_get(h0, "bps")); /* not tuned */
	/* The hash is over the canonical form without the integrity block. */
	char hex[65];
	assert_int_equal(state_digest(d, hex), 0);
	assert_string_equal(hex, json_string_value(json_object_get(
					 json_object_get(d, "integrity"), "sha256")));
	json_object_del(d, "integrity");
	char *canon = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII |
					    JSON_REAL_PRECISION(17));
	assert_non_null(canon);
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex2[65];
	crypto_hash_sha256(h, (const unsigned char *)canon, strlen(canon));
	sodium_bin2hex(hex2, sizeof(hex2), h, sizeof(h));
	assert_string_equal(hex, hex2);
	free(canon);
	json_decref(d);
	free(text);
	autotune_free(at);
}

/* Any change of a value breaks the hash; re-indenting does not. */
static void test_tamper(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 2, T0);
	struct dec_state st;
	char err[256];
	bool absent;
	size_t n;
	char p[160];
	snprintf(p, sizeof(p), "%s/tamper.json", dir);

	assert_int_equal(state_save_autotune(p, at, "generic", T0, err, sizeof(err)), 0);
	char *orig = slurp(p, &n);

	/* One digit of the pps trigger. */
	char *copy = strdup(orig);
	char *q = strstr(copy, "\"pps\": ");
	assert_non_null(q);
	q += strlen("\"pps\": ");
	*q = *q == '9' ? '8' : (char)(*q + 1);
	spit(p, copy, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "integrity hash mismatch"));
	free(copy);

	/* One byte inside the reservoir's base64. */
	copy = strdup(orig);
	q = strstr(copy, "\"scan\": \"");
	assert_non_null(q);
	q += strlen("\"scan\": \"") + 10;
	*q = *q == 'A' ? 'B' : 'A';
	spit(p, copy, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "integrity hash mismatch"));
	free(copy);

	/* The profile name. */
	copy = strdup(orig);
	q = strstr(copy, "\"generic\"");
	assert_non_null(q);
	q[1] = 'G';
	spit(p, copy, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	free(copy);

	/* The hash itself. */
	copy = strdup(orig);
	q = strstr(copy, "\"sha256\": \"");
	assert_non_null(q);
	q += strlen("\"sha256\": \"");
	*q = *q == '0' ? '1' : '0';
	spit(p, copy, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	free(copy);

	/* No integrity block at all. */
	copy = strdup(orig);
	q = strstr(copy, "\"integrity\"");
	assert_non_null(q);
	memcpy(q, "\"integritx\"", 11);
	spit(p, copy, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "integrity.sha256: missing"));
	free(copy);

	/* Truncated (a torn write without the rename dance). */
	spit(p, orig, n / 2);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "parse error"));

	/* Whitespace only: the same content, still valid. */
	copy = malloc(2 * n + 1);
	assert_non_null(copy);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		copy[o++] = orig[i];
		if (orig[i] == ',')
			copy[o++] = ' ';
	}
	spit(p, copy, o);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), 0);
	dec_state_free(&st);
	free(copy);

	spit(p, orig, n);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), 0);
	dec_state_free(&st);
	free(orig);
	autotune_free(at);
}

static void test_bak_fallback(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *a1 = learned(&c, 2, T0), *a2 = learned(&c, 3, T0);
	struct dec_state st;
	struct state_load_report rep;
	char err[256];
	size_t n;
	char p[160];
	snprintf(p, sizeof(p), "%s/fb.json", dir);
	char bak[160];
	snprintf(bak, sizeof(bak), "%s/fb.json.bak", dir);
	struct at_status s1, s2;

	autotune_status(a1, &s1);
	autotune_status(a2, &s2);
	/* Nothing there: a fresh start, not an error. */
	assert_int_equal(state_load(p, T0, 0, &st, &rep), -1);
	assert_string_equal(rep.why_main, "absent");
	assert_string_equal(rep.why_bak, "absent");

	assert_int_equal(state_save_autotune(p, a1, "generic", T0 + 2 * H, err, sizeof(err)), 0);
	assert_int_equal(access(bak, F_OK), -1); /* no previous file yet */
	assert_int_equal(state_save_autotune(p, a2, "generic", T0 + 3 * H, err, sizeof(err)), 0);
	/* .bak is the previous save. */
	assert_int_equal(state_load(p, T0 + 3 * H, 0, &st, &rep), 0);
	assert_int_equal(st.observed_ms, s2.observed_ms);
	dec_state_free(&st);
	bool absent;
	assert_int_equal(state_load_file(bak, T0 + 3 * H, 0, &st, &absent, err, sizeof(err)), 0);
	assert_int_equal(st.observed_ms, s1.observed_ms);
	dec_state_free(&st);

	/* Damage the main file: .bak is used, and the report says why. */
	char *text = slurp(p, &n);
	char *q = strstr(text, "\"observed_s\": ");
	assert_non_null(q);
	q[strlen("\"observed_s\": ")] = '9';
	spit(p, text, n);
	assert_int_equal(state_load(p, T0 + 3 * H, 0, &st, &rep), 1);
	assert_non_null(strstr(rep.why_main, "integrity hash mismatch"));
	assert_string_equal(rep.why_bak, "");
	assert_int_equal(st.observed_ms, s1.observed_ms);
	assert_true(st.trig[DEC_F_PPS] == s1.trig.v[DEC_F_PPS]);
	dec_state_free(&st);

	/* Main file gone (crash between the renames): .bak again. */
	unlink(p);
	assert_int_equal(state_load(p, T0 + 3 * H, 0, &st, &rep), 1);
	assert_string_equal(rep.why_main, "absent");
	dec_state_free(&st);

	/* Both bad: fresh start with both reasons. */
	spit(p, text, n);
	spit(bak, "{", 1);
	assert_int_equal(state_load(p, T0 + 3 * H, 0, &st, &rep), -1);
	assert_non_null(strstr(rep.why_main, "integrity"));
	assert_non_null(strstr(rep.why_bak, "parse error"));

	/* A save after that keeps the current file as .bak again. */
	assert_int_equal(state_save_autotune(p, a2, "generic", T0 + 3 * H, err, sizeof(err)), 0);
	assert_int_equal(state_load(p, T0 + 3 * H, 0, &st, &rep), 0);
	dec_state_free(&st);
	free(text);
	autotune_free(a1);
	autotune_free(a2);
}

static void test_max_age(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 1, T0);
	struct dec_state st;
	struct state_load_report rep;
	char err[256];
	bool absent;
	char p[160];
	snprintf(p, sizeof(p), "%s/age.json", dir);

	assert_int_equal(state_save_autotune(p, at, "generic", T0, err, sizeof(err)), 0);
	assert_int_equal(state_load_file(p, T0 + 336 * H, 336 * H, &st, &absent, err, sizeof(err)), 0);
	dec_state_free(&st);
	assert_int_equal(state_load_file(p, T0 + 336 * H + 1, 336 * H, &st, &absent, err,
					 sizeof(err)), -1);
	assert_non_null(strstr(err, "older than --max-state-age"));
	assert_false(absent);
	/* 0 disables the check. */
	assert_int_equal(state_load_file(p, T0 + 9999 * H, 0, &st, &absent, err, sizeof(err)), 0);
	dec_state_free(&st);
	/* A file from the future (clock stepped back) is accepted. */
	assert_int_equal(state_load_file(p, T0 - 10 * H, 336 * H, &st, &absent, err, sizeof(err)), 0);
	dec_state_free(&st);
	/* Old main file, younger .bak: the .bak wins. */
	assert_int_equal(state_save_autotune(p, at, "generic", T0 + 300 * H, err, sizeof(err)), 0);
	assert_int_equal(rename(pathf("age.json"), pathf("age.json.tmp2")), 0);
	assert_int_equal(rename(pathf("age.json.bak"), pathf("age.json")), 0);
	assert_int_equal(rename(pathf("age.json.tmp2"), pathf("age.json.bak")), 0);
	/* now main = saved at T0, bak = saved at T0+300h */
	assert_int_equal(state_load(p, T0 + 400 * H, 336 * H, &st, &rep), 1);
	assert_non_null(strstr(rep.why_main, "older"));
	assert_int_equal(st.saved_ms, T0 + 300 * H);
	dec_state_free(&st);
	/* Both too old. */
	assert_int_equal(state_load(p, T0 + 700 * H, 336 * H, &st, &rep), -1);
	assert_non_null(strstr(rep.why_bak, "older"));
	autotune_free(at);
}

/* Write a document with a correct hash after editing it. */
static void save_doc(const char *p, json_t *d)
{
	char hex[65];
	json_object_del(d, "integrity");
	assert_int_equal(state_digest(d, hex), 0);
	json_t *i = json_object();
	json_object_set_new(i, "sha256", json_string(hex));
	json_object_set_new(d, "integrity", i);
	assert_int_equal(json_dump_file(d, p, JSON_INDENT(1) | JSON_REAL_PRECISION(17)), 0);
}

static void test_parse_errors_name_field(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 2, T0);
	struct dec_state st, good;
	char err[256];
	bool absent;
	char p[160];
	snprintf(p, sizeof(p), "%s/bad.json", dir);
	static const struct {
		const char *obj, *key;
		int kind; /* 0 delete, 1 string, 2 negative, 3 big n */
		const char *want;
	} cases[] = {
		{ "active", "trig", 0, "active.trig: missing" },
		{ NULL, "saved_at", 1, "saved_at: wrong type" },
		{ "floors", "syn", 2, "floors.syn: out of range" },
		{ "bootstrap", "phase", 1, "bootstrap.phase: not 1, 2, 3 or steady" },
		{ "reservoir", "n", 3, "reservoir.n: above reservoir.cap" },
		{ "reservoir", "pps", 1, "reservoir.pps: not base64" },
		{ "reservoir", "rng", 1, "reservoir.rng: not 16 hex digits" },
		{ NULL, "version", 2, "version: unsupported" },
		{ "learn", "clean_ticks", 2, "learn.clean_ticks: negative" },
	};

	autotune_export(at, "generic", T0, &good);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *d = state_to_json(&good);
		assert_non_null(d);
		json_t *o = cases[i].obj != NULL ? json_object_get(d, cases[i].obj) : d;
		assert_non_null(o);
		switch (cases[i].kind) {
		case 0: json_object_del(o, cases[i].key); break;
		case 1: json_object_set_new(o, cases[i].key, json_string("x!")); break;
		case 2: json_object_set_new(o, cases[i].key, json_integer(-3)); break;
		default: json_object_set_new(o, cases[i].key, json_integer(1000000)); break;
		}
		save_doc(p, d);
		json_decref(d);
		int rc = state_load_file(p, T0, 0, &st, &absent, err, sizeof(err));
		if (rc == 0 || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: rc %d err \"%s\", want \"%s\"", i, rc, err, cases[i].want);
	}
	/* History entries are named by index. */
	json_t *d = state_to_json(&good);
	json_t *h1 = json_array_get(json_object_get(d, "history"), 1);
	assert_non_null(h1);
	json_object_set_new(json_object_get(h1, "pps"), "mad", json_string("wide"));
	save_doc(p, d);
	json_decref(d);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "history[1].pps.mad: wrong type"));
	/* Duplicate keys are refused. */
	spit(p, "{\"version\": 1, \"version\": 1}", 28);
	assert_int_equal(state_load_file(p, T0, 0, &st, &absent, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "parse error"));
	autotune_free(at);
}

static void test_restart_bootstrap(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 3, T0);
	struct dec_state st;
	char why[128], err[128];

	autotune_export(at, "ziti-router", T0 + 3 * H, &st);
	const double seed[AT_NF] = { 5000, 500, 50, 0 };
	assert_false(state_restart_reason(&st, "ziti-router", c.floor, seed, why, sizeof(why)));
	assert_string_equal(why, "");
	/* The tuned triggers moved; the seed is what the bootstrap began with. */
	assert_true(st.trig[DEC_F_PPS] < 5000);
	assert_true(st.seed[DEC_F_PPS] == 5000);
	assert_true(state_restart_reason(&st, "generic", c.floor, NULL, why, sizeof(why)));
	assert_string_equal(why, "profile ziti-router -> generic");
	double fl[AT_NF];
	memcpy(fl, c.floor, sizeof(fl));
	fl[DEC_F_SYN] = 75;
	assert_true(state_restart_reason(&st, "ziti-router", fl, NULL, why, sizeof(why)));
	assert_string_equal(why, "floor syn 50.0 -> 75.0");
	memcpy(fl, c.floor, sizeof(fl));
	fl[DEC_F_BPS] = 1e6; /* bps too, even while its trigger is off */
	assert_true(state_restart_reason(&st, "ziti-router", fl, NULL, why, sizeof(why)));
	/* A configured trigger changed (PDPConfig edited, --trig-pps given). */
	const double seed2[AT_NF] = { 1500, 500, 50, 0 };
	assert_true(state_restart_reason(&st, "ziti-router", c.floor, seed2, why, sizeof(why)));
	assert_string_equal(why, "configured trig_pps 5000.0 -> 1500.0");
	assert_false(state_restart_reason(&st, "ziti-router", c.floor, NULL, why, sizeof(why)));

	/* Restarting keeps only the history. */
	struct at_triggers fresh = { { 8000, 200, 30, 0 } };
	struct autotune *b = autotune_new(&c, &fresh, T0 + 5 * H, err, sizeof(err));
	assert_non_null(b);
	autotune_restore(b, &st, true);
	struct at_status s;
	autotune_status(b, &s);
	assert_int_equal(s.observed_ms, 0);
	assert_int_equal(s.phase, AT_PH1);
	assert_int_equal(s.samples, 0);
	assert_int_equal(s.start_ms, T0 + 5 * H);
	assert_true(s.trig.v[DEC_F_PPS] == 8000);
	size_t na, nb;
	autotune_history(at, &na);
	autotune_history(b, &nb);
	assert_true(nb == na && nb > 0);
	/* Continuing instead keeps the clock and the samples. */
	struct autotune *cont = autotune_new(&c, &fresh, T0 + 5 * H, err, sizeof(err));
	assert_non_null(cont);
	autotune_restore(cont, &st, false);
	struct dec_state st2;
	autotune_export(cont, "ziti-router", T0 + 5 * H, &st2);
	assert_memory_equal(st2.seed, seed, sizeof(seed)); /* the old bootstrap's seed */
	autotune_status(cont, &s);
	assert_int_equal(s.observed_ms, 3 * H);
	assert_int_equal(s.start_ms, T0);
	assert_int_equal(s.samples, 500);
	autotune_free(cont);
	autotune_free(b);
	autotune_free(at);
}

/* A smaller reservoir after a config change keeps a prefix of the old. */
static void test_restore_smaller_reservoir(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 3, T0);
	struct dec_state st;
	char err[128];

	autotune_export(at, "generic", T0, &st);
	c.reservoir_cap = 200;
	struct at_triggers t = { { 5000, 500, 50, 0 } };
	struct autotune *b = autotune_new(&c, &t, T0, err, sizeof(err));
	assert_non_null(b);
	autotune_restore(b, &st, false);
	uint32_t n;
	const float *r = autotune_reservoir(b, DEC_F_PPS, &n);
	assert_int_equal(n, 200);
	assert_memory_equal(r, st.res[DEC_F_PPS], 200 * sizeof(float));
	autotune_free(b);
	autotune_free(at);
}

static void test_status_json(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 3, T0);
	json_t *d = autotune_status_json(at, T0 + 4 * H);

	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "phase")), "1");
	json_t *bs = json_object_get(d, "bootstrap");
	assert_true(json_number_value(json_object_get(bs, "observed_s")) == 3 * 3600.0);
	assert_true(json_number_value(json_object_get(bs, "age_s")) == 4 * 3600.0);
	json_t *nt = json_object_get(d, "next_tune");
	assert_true(json_number_value(json_object_get(nt, "observed_s")) == 4 * 3600.0);
	assert_true(json_number_value(json_object_get(nt, "in_s")) == 3600.0);
	json_t *smp = json_object_get(d, "samples");
	assert_int_equal(json_integer_value(json_object_get(smp, "n")), 500);
	assert_int_equal(json_integer_value(json_object_get(smp, "min")), 100);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "ticks"), "clean")),
			 180);
	json_t *last = json_object_get(d, "last");
	assert_true(json_is_true(json_object_get(last, "applied")));
	assert_true(json_is_object(json_object_get(last, "pps")));
	assert_true(json_is_number(json_object_get(json_object_get(d, "trig"), "scan")));
	json_decref(d);
	autotune_free(at);
}

static void test_save_errors(void **state)
{
	(void)state;
	struct at_config c;
	struct autotune *at = learned(&c, 1, T0);
	char err[256];

	assert_int_equal(state_save_autotune("/nonexistent-dir/x/state.json", at, "generic", T0,
					     err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x/state.json.tmp: open:"));
	autotune_free(at);
}

int main(void)
{
	kl_log_init("test_state", KL_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_file_content),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_bak_fallback),
		cmocka_unit_test(test_max_age),
		cmocka_unit_test(test_parse_errors_name_field),
		cmocka_unit_test(test_restart_bootstrap),
		cmocka_unit_test(test_restore_smaller_reservoir),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_save_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
