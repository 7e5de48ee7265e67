/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/state.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/safefile.h"

static const char *const feat_key[AT_NF] = { "pps", "syn", "scan", "bps" };

/* Flags of the hashed form; state.h documents them for other readers. */
#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17))
#define FILE_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17))

void dec_state_free(struct dec_state *st)
{
	if (st->owned) {
		free(st->hist);
		for (int f = 0; f < AT_NF; f++)
			free(st->res[f]);
	}
	memset(st, 0, sizeof(*st));
}

/* ---- to JSON ---- */

static double ms_to_s(int64_t ms)
{
	return (double)ms / 1000.0;
}

/* Adds to o; a failed allocation makes the whole document NULL later. */
static bool put(json_t *o, const char *k, json_t *v)
{
	return v != NULL && json_object_set_new(o, k, v) == 0;
}

static json_t *feat_obj(const double v[AT_NF])
{
	json_t *o = json_object();
	bool ok = o != NULL;

	for (int f = 0; f < AT_NF && ok; f++)
		ok = put(o, feat_key[f], json_real(v[f]));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *result_json(const struct at_result *r, bool with_outcome)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	ok = ok && put(o, "t", json_real(ms_to_s(r->t_ms)));
	ok = ok && put(o, "observed_s", json_real(ms_to_s(r->observed_ms)));
	ok = ok && put(o, "phase", json_string(at_phase_name(r->phase)));
	ok = ok && put(o, "k", json_real(r->k));
	ok = ok && put(o, "samples", json_integer(r->samples));
	if (with_outcome) {
		ok = ok && put(o, "applied", json_boolean(r->applied));
		if (!r->applied)
			ok = ok && put(o, "reason", json_string(r->reason));
	}
	for (int f = 0; f < AT_NF && ok; f++) {
		if (!r->tuned[f])
			continue;
		const struct at_feat_result *x = &r->f[f];
		json_t *fo = json_object();
		ok = put(o, feat_key[f], fo);
		ok = ok && put(fo, "median", json_real(x->median));
		ok = ok && put(fo, "mad", json_real(x->mad));
		ok = ok && put(fo, "target", json_real(x->target));
		ok = ok && put(fo, "from", json_real(x->from));
		ok = ok && put(fo, "to", json_real(x->to));
	}
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *floats_b64(const float *v, uint32_t n)
{
	size_t bl = (size_t)n * 4;
	uint8_t *bin = malloc(bl > 0 ? bl : 1);
	size_t el = sodium_base64_ENCODED_LEN(bl, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(el);
	json_t *s = NULL;

	if (bin != NULL && b64 != NULL) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t u;
			memcpy(&u, &v[i], 4);
			u = htole32(u);
			memcpy(bin + 4 * (size_t)i, &u, 4);
		}
		sodium_bin2base64(b64, el, bin, bl, sodium_base64_VARIANT_ORIGINAL);
		s = json_string(b64);
	}
	free(bin);
	free(b64);
	return s;
}

json_t *state_to_json(const struct dec_state *st)
{
	json_t *d = json_object(), *o;
	char hex[17];
	bool ok = d != NULL;

	ok = ok && put(d, "version", json_integer(st->version));
	ok = ok && put(d, "saved_at", json_real(ms_to_s(st->saved_ms)));
	ok = ok && put(d, "profile", json_string(st->profile));
	ok = ok && put(d, "floors", feat_obj(st->floor));
	ok = ok && put(d, "active", (o = json_object())) && put(o, "trig", feat_obj(st->trig));

	ok = ok && put(d, "bootstrap", (o = json_object()));
	ok = ok && put(o, "enabled", json_boolean(st->bootstrap));
	ok = ok && put(o, "start", json_real(ms_to_s(st->start_ms)));
	ok = ok && put(o, "phase", json_string(at_phase_name(st->phase)));
	ok = ok && put(o, "observed_s", json_real(ms_to_s(st->observed_ms)));
	ok = ok && put(o, "next_tune_s", json_real(ms_to_s(st->next_point_ms)));
	ok = ok && put(o, "seed_trig", feat_obj(st->seed));

	ok = ok && put(d, "learn", (o = json_object()));
	ok = ok && put(o, "clean_ticks", json_integer((json_int_t)st->ticks[AT_CLEAN]));
	ok = ok && put(o, "dirty_block", json_integer((json_int_t)st->ticks[AT_DIRTY_BLOCK]));
	ok = ok && put(o, "dirty_sev_frac", json_integer((json_int_t)st->ticks[AT_DIRTY_SEV_FRAC]));
	ok = ok && put(o, "dirty_drops", json_integer((json_int_t)st->ticks[AT_DIRTY_DROPS]));
	ok = ok && put(o, "samples_seen", json_integer((json_int_t)st->seen));

	ok = ok && put(d, "history", (o = json_array()));
	for (size_t i = 0; i < st->nhist && ok; i++)
		ok = json_array_append_new(o, result_json(&st->hist[i], false)) == 0;

	ok = ok && put(d, "reservoir", (o = json_object()));
	ok = ok && put(o, "n", json_integer(st->res_n));
	ok = ok && put(o, "cap", json_integer(st->res_cap));
	ok = ok && put(o, "weight", json_real(st->res_w));
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)st->rng);
	ok = ok && put(o, "rng", json_string(hex));
	for (int f = 0; f < AT_NF && ok; f++)
		ok = put(o, feat_key[f], floats_b64(st->res[f], st->res_n));
	if (!ok) {
		json_decref(d);
		return NULL;
	}
	return d;
}

int state_digest(const json_t *json, char hex[65])
{
	json_t *copy = json_copy((json_t *)json);
	unsigned char h[crypto_hash_sha256_BYTES];
	char *text;

	if (copy == NULL)
		return -1;
	json_object_del(copy, "integrity");
	text = json_dumps(copy, CANON_FLAGS);
	json_decref(copy);
	if (text == NULL)
		return -1;
	if (sodium_init() < 0) {
		free(text);
		return -1;
	}
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	free(text);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	return 0;
}

/* ---- from JSON ---- */

struct rd {
	char *err;
	size_t len;
	bool bad;
};

static void fail(struct rd *r, const char *field, const char *what)
{
	if (!r->bad)
		snprintf(r->err, r->len, "%s: %s", field, what);
	r->bad = true;
}

static json_t *get(struct rd *r, const json_t *o, const char *k, const char *field, int type)
{
	json_t *v = json_object_get(o, k);

	if (v == NULL) {
		fail(r, field, "missing");
		return NULL;
	}
	bool right;
	switch (type) {
	case JSON_REAL:
		right = json_is_number(v);
		break;
	case JSON_TRUE:
		right = json_is_boolean(v);
		break;
	default:
		right = json_typeof(v) == (json_type)type;
		break;
	}
	if (!right) {
		fail(r, field, "wrong type");
		return NULL;
	}
	return v;
}

static double get_num(struct rd *r, const json_t *o, const char *k, const char *field,
		      double min, double max)
{
	json_t *v = get(r, o, k, field, JSON_REAL);
	if (v == NULL)
		return 0;
	double x = json_number_value(v);
	if (!isfinite(x) || x < min || x > max) {
		fail(r, field, "out of range");
		return 0;
	}
	return x;
}

static int64_t get_ms(struct rd *r, const json_t *o, const char *k, const char *field)
{
	return llround(get_num(r, o, k, field, 0, 1e13) * 1000.0);
}

static uint64_t get_count(struct rd *r, const json_t *o, const char *k, const char *field)
{
	json_t *v = get(r, o, k, field, JSON_INTEGER);
	if (v == NULL)
		return 0;
	if (json_integer_value(v) < 0) {
		fail(r, field, "negative");
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static void get_feats(struct rd *r, const json_t *o, const char *k, const char *field,
		      double out[AT_NF])
{
	char sub[96];
	json_t *x = get(r, o, k, field, JSON_OBJECT);

	for (int f = 0; f < AT_NF && x != NULL; f++) {
		snprintf(sub, sizeof(sub), "%s.%s", field, feat_key[f]);
		out[f] = get_num(r, x, feat_key[f], sub, 0, 1e300);
	}
}

static int get_phase(struct rd *r, const json_t *o, const char *field)
{
	json_t *v = get(r, o, "phase", field, JSON_STRING);
	if (v == NULL)
		return 0;
	int p = at_phase_parse(json_string_value(v));
	if (p < 0) {
		fail(r, field, "not 1, 2, 3 or steady");
		return 0;
	}
	return p;
}

static void get_result(struct rd *r, const json_t *o, size_t i, struct at_result *res)
{
	char field[96];

	memset(res, 0, sizeof(*res));
	res->applied = true;
#define F(k) (snprintf(field, sizeof(field), "history[%zu].%s", i, k), field)
	res->t_ms = get_ms(r, o, "t", F("t"));
	res->observed_ms = get_ms(r, o, "observed_s", F("observed_s"));
	res->phase = get_phase(r, o, F("phase"));
	res->k = get_num(r, o, "k", F("k"), 0, 1e6);
	uint64_t s = get_count(r, o, "samples", F("samples"));
	if (s > AT_RES_MAX)
		fail(r, F("samples"), "out of range");
	res->samples = (uint32_t)s;
	for (int f = 0; f < AT_NF; f++) {
		json_t *x = json_object_get(o, feat_key[f]);
		if (x == NULL)
			continue;
		if (!json_is_object(x)) {
			fail(r, F(feat_key[f]), "wrong type");
			return;
		}
		char base[64];
		snprintf(base, sizeof(base), "history[%zu].%s", i, feat_key[f]);
		struct at_feat_result *fr = &res->f[f];
		res->tuned[f] = true;
#define G(k) (snprintf(field, sizeof(field), "%s.%s", base, k), field)
		fr->median = get_num(r, x, "median", G("median"), 0, 1e300);
		fr->mad = get_num(r, x, "mad", G("mad"), 0, 1e300);
		fr->target = get_num(r, x, "target", G("target"), 0, 1e300);
		fr->from = get_num(r, x, "from", G("from"), 0, 1e300);
		fr->to = get_num(r, x, "to", G("to"), 0, 1e300);
#undef G
	}
#undef F
}

static float *get_floats(struct rd *r, const json_t *o, const char *k, uint32_t n)
{
	char field[64];
	snprintf(field, sizeof(field), "reservoir.%s", k);
	json_t *v = get(r, o, k, field, JSON_STRING);
	if (v == NULL)
		return NULL;
	const char *s = json_string_value(v);
	size_t sl = json_string_length(v), bl = (size_t)n * 4, got = 0;
	uint8_t *bin = malloc(bl > 0 ? bl : 1);
	float *out = calloc(n > 0 ? n : 1, sizeof(float));
	const char *end = NULL;

	if (bin == NULL || out == NULL) {
		fail(r, field, "out of memory");
		goto bad;
	}
	if (sodium_init() < 0 ||
	    sodium_base642bin(bin, bl, s, sl, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != s + sl || got != bl) {
		fail(r, field, "not base64 of reservoir.n float32 values");
		goto bad;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, bin + 4 * (size_t)i, 4);
		u = le32toh(u);
		memcpy(&out[i], &u, 4);
		if (!isfinite(out[i]) || out[i] < 0) {
			fail(r, field, "holds a value that is not a finite number >= 0");
			goto bad;
		}
	}
	free(bin);
	return out;
bad:
	free(bin);
	free(out);
	return NULL;
}

int state_from_json(const json_t *d, struct dec_state *st, char *err, size_t len)
{
	struct rd r = { err, len, false };
	json_t *o, *v;

	memset(st, 0, sizeof(*st));
	st->owned = true;
	if (!json_is_object(d)) {
		fail(&r, "document", "not an object");
		return -1;
	}
	v = get(&r, d, "version", "version", JSON_INTEGER);
	if (v != NULL && json_integer_value(v) != DEC_STATE_VERSION)
		fail(&r, "version", "unsupported (this build reads version 1)");
	st->version = DEC_STATE_VERSION;
	st->saved_ms = get_ms(&r, d, "saved_at", "saved_at");
	if ((v = get(&r, d, "profile", "profile", JSON_STRING)) != NULL) {
		if (json_string_length(v) >= sizeof(st->profile))
			fail(&r, "profile", "too long");
		else
			snprintf(st->profile, sizeof(st->profile), "%s", json_string_value(v));
	}
	get_feats(&r, d, "floors", "floors", st->floor);
	if ((o = get(&r, d, "active", "active", JSON_OBJECT)) != NULL)
		get_feats(&r, o, "trig", "active.trig", st->trig);

	if ((o = get(&r, d, "bootstrap", "bootstrap", JSON_OBJECT)) != NULL) {
		if ((v = get(&r, o, "enabled", "bootstrap.enabled", JSON_TRUE)) != NULL)
			st->bootstrap = json_is_true(v);
		st->start_ms = get_ms(&r, o, "start", "bootstrap.start");
		st->phase = get_phase(&r, o, "bootstrap.phase");
		st->observed_ms = get_ms(&r, o, "observed_s", "bootstrap.observed_s");
		st->next_point_ms = get_ms(&r, o, "next_tune_s", "bootstrap.next_tune_s");
		get_feats(&r, o, "seed_trig", "bootstrap.seed_trig", st->seed);
	}
	if ((o = get(&r, d, "learn", "learn", JSON_OBJECT)) != NULL) {
		st->ticks[AT_CLEAN] = get_count(&r, o, "clean_ticks", "learn.clean_ticks");
		st->ticks[AT_DIRTY_BLOCK] = get_count(&r, o, "dirty_block", "learn.dirty_block");
		st->ticks[AT_DIRTY_SEV_FRAC] =
			get_count(&r, o, "dirty_sev_frac", "learn.dirty_sev_frac");
		st->ticks[AT_DIRTY_DROPS] = get_count(&r, o, "dirty_drops", "learn.dirty_drops");
		st->seen = get_count(&r, o, "samples_seen", "learn.samples_seen");
	}
	if ((o = get(&r, d, "history", "history", JSON_ARRAY)) != NULL && !r.bad) {
		size_t n = json_array_size(o);
		if (n > 100000) {
			fail(&r, "history", "more than 100000 entries");
		} else if (n > 0) {
			st->hist = calloc(n, sizeof(*st->hist));
			if (st->hist == NULL)
				fail(&r, "history", "out of memory");
			for (size_t i = 0; i < n && !r.bad; i++) {
				json_t *e = json_array_get(o, i);
				if (!json_is_object(e)) {
					char field[48];
					snprintf(field, sizeof(field), "history[%zu]", i);
					fail(&r, field, "not an object");
					break;
				}
				get_result(&r, e, i, &st->hist[i]);
				st->nhist = i + 1;
			}
		}
	}
	if ((o = get(&r, d, "reservoir", "reservoir", JSON_OBJECT)) != NULL && !r.bad) {
		uint64_t n = get_count(&r, o, "n", "reservoir.n");
		uint64_t cap = get_count(&r, o, "cap", "reservoir.cap");
		if (!r.bad && (cap > AT_RES_MAX || n > cap))
			fail(&r, "reservoir.n", "above reservoir.cap or the reservoir limit");
		st->res_n = (uint32_t)n;
		st->res_cap = (uint32_t)cap;
		st->res_w = get_num(&r, o, "weight", "reservoir.weight", 0, 1e300);
		if ((v = get(&r, o, "rng", "reservoir.rng", JSON_STRING)) != NULL) {
			const char *s = json_string_value(v);
			char *end;
			errno = 0;
			unsigned long long x = strtoull(s, &end, 16);
			if (strlen(s) != 16 || *end != '\0' || errno != 0)
				fail(&r, "reservoir.rng", "not 16 hex digits");
			st->rng = x;
		}
		for (int f = 0; f < AT_NF && !r.bad; f++)
			st->res[f] = get_floats(&r, o, feat_key[f], st->res_n);
	}
	if (r.bad) {
		dec_state_free(st);
		return -1;
	}
	return 0;
}

/* ---- files ---- */

static char *path_plus(const char *path, const char *suffix)
{
	size_t a = strlen(path), b = strlen(suffix);
	char *p = malloc(a + b + 1);
	if (p != NULL) {
		memcpy(p, path, a);
		memcpy(p + a, suffix, b + 1);
	}
	return p;
}

int state_save(const char *path, const struct dec_state *st, char *err, size_t len)
{
	char hex[65], *text = NULL;
	json_t *d = state_to_json(st), *integ;
	int rc = -1;

	if (d == NULL || state_digest(d, hex) < 0 || (integ = json_object()) == NULL ||
	    json_object_set_new(d, "integrity", integ) < 0 ||
	    json_object_set_new(integ, "sha256", json_string(hex)) < 0 ||
	    (text = json_dumps(d, FILE_FLAGS)) == NULL) {
		snprintf(err, len, "%s: cannot serialise the state (out of memory)", path);
		goto out;
	}
	size_t n = strlen(text);
	char *nl = realloc(text, n + 2);
	if (nl == NULL) {
		snprintf(err, len, "%s: out of memory", path);
		goto out;
	}
	text = nl;
	memcpy(text + n, "\n", 2);
	/* Through FILE.tmp created afresh (never a planted link), renamed over
	 * FILE; the previous FILE is copied to .bak first, so FILE is never
	 * absent and every file of ours keeps one link (safefile.h). */
	rc = kl_safe_replace(path, text, n + 1, 0600, ".bak", KL_SAFE_OWNED, err, len);
out:
	free(text);
	json_decref(d);
	return rc;
}

int state_save_autotune(const char *path, const struct autotune *at, const char *profile,
			int64_t now_ms, char *err, size_t len)
{
	struct dec_state st;

	autotune_export(at, profile, now_ms, &st);
	return state_save(path, &st, err, len);
}

static int read_file(const char *path, char **buf, size_t *n, bool *absent, char *err, size_t len)
{
	char why[512];

	/* The decider's own directory: no link, FIFO or foreign file followed. */
	if (kl_safe_read_file(path, DEC_STATE_MAX_FILE, KL_SAFE_OWNED, buf, n, why, sizeof(why)) <
	    0) {
		*absent = errno == ENOENT;
		size_t pl = strlen(path); /* the caller names the file already */
		const char *w = strncmp(why, path, pl) == 0 && why[pl] == ':' ? why + pl + 2 : why;
		snprintf(err, len, "%s", *absent ? "absent" : w);
		return -1;
	}
	return 0;
}

int state_load_file(const char *path, int64_t now_ms, int64_t max_age_ms, struct dec_state *st,
		    bool *absent, char *err, size_t len)
{
	char *buf;
	size_t n;

	memset(st, 0, sizeof(*st));
	*absent = false;
	if (read_file(path, &buf, &n, absent, err, len) < 0)
		return -1;
	int rc = state_load_text(buf, n, now_ms, max_age_ms, st, err, len);
	free(buf);
	return rc;
}

int state_load_text(const char *buf, size_t n, int64_t now_ms, int64_t max_age_ms,
		    struct dec_state *st, char *err, size_t len)
{
	json_error_t je;
	char hex[65], why[192];

	memset(st, 0, sizeof(*st));
	json_t *d = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
	if (d == NULL) {
		snprintf(err, len, "parse error at line %d: %s", je.line, je.text);
		return -1;
	}
	json_t *integ = json_object_get(d, "integrity");
	json_t *sha = json_is_object(integ) ? json_object_get(integ, "sha256") : NULL;
	if (!json_is_string(sha)) {
		snprintf(err, len, "integrity.sha256: missing");
		goto bad;
	}
	if (state_digest(d, hex) < 0) {
		snprintf(err, len, "out of memory while hashing");
		goto bad;
	}
	if (strcmp(hex, json_string_value(sha)) != 0) {
		snprintf(err, len, "integrity hash mismatch (content was changed or damaged)");
		goto bad;
	}
	if (state_from_json(d, st, why, sizeof(why)) < 0) {
		snprintf(err, len, "%s", why);
		goto bad;
	}
	json_decref(d);
	/* A file from the future (clock stepped back) counts as new. */
	if (max_age_ms > 0 && now_ms - st->saved_ms > max_age_ms) {
		snprintf(err, len, "saved %.1f h ago, older than --max-state-age %.1f h",
			 (double)(now_ms - st->saved_ms) / 3.6e6, (double)max_age_ms / 3.6e6);
		dec_state_free(st);
		return -1;
	}
	return 0;
bad:
	json_decref(d);
	return -1;
}

int state_load(const char *path, int64_t now_ms, int64_t max_age_ms, struct dec_state *st,
	       struct state_load_report *rep)
{
	char *bak = path_plus(path, ".bak");
	bool absent, bak_absent;
	int rc = -1;

	memset(rep, 0, sizeof(*rep));
	if (bak == NULL) {
		snprintf(rep->why_main, sizeof(rep->why_main), "out of memory");
		return -1;
	}
	if (state_load_file(path, now_ms, max_age_ms, st, &absent, rep->why_main,
			    sizeof(rep->why_main)) == 0) {
		rep->why_main[0] = '\0';
		free(bak);
		return 0;
	}
	if (!absent)
		kl_warn("%s: rejected: %s; trying %s", path, rep->why_main, bak);
	if (state_load_file(bak, now_ms, max_age_ms, st, &bak_absent, rep->why_bak,
			    sizeof(rep->why_bak)) == 0) {
		rep->why_bak[0] = '\0';
		kl_warn("%s: using the previous state from %s", path, bak);
		rc = 1;
	} else if (absent && bak_absent) {
		kl_info("%s: no saved state; starting a fresh bootstrap", path);
	} else {
		if (!bak_absent)
			kl_warn("%s: rejected: %s", bak, rep->why_bak);
		kl_warn("%s: no usable state; starting a fresh bootstrap", path);
	}
	free(bak);
	return rc;
}

bool state_restart_reason(const struct dec_state *st, const char *profile,
			  const double floor[AT_NF], const double seed[AT_NF], char *why,
			  size_t len)
{
	if (strcmp(st->profile, profile) != 0) {
		snprintf(why, len, "profile %s -> %s", st->profile, profile);
		return true;
	}
	for (int f = 0; f < AT_NF; f++)
		if (st->floor[f] != floor[f]) {
			snprintf(why, len, "floor %s %.1f -> %.1f", feat_key[f], st->floor[f],
				 floor[f]);
			return true;
		}
	for (int f = 0; f < AT_NF && seed != NULL; f++)
		if (st->seed[f] != seed[f]) {
			snprintf(why, len, "configured trig_%s %.1f -> %.1f", feat_key[f],
				 st->seed[f], seed[f]);
			return true;
		}
	if (len > 0)
		why[0] = '\0';
	return false;
}

/* ---- klctl tune ---- */

json_t *autotune_status_json(const struct autotune *at, int64_t now_ms)
{
	const struct at_config *c = autotune_config(at);
	struct at_status s;
	json_t *d = json_object(), *o;
	bool ok = d != NULL;
	size_t nh;

	autotune_status(at, &s);
	autotune_history(at, &nh);
	ok = ok && put(d, "phase", json_string(at_phase_name(s.phase)));
	ok = ok && put(d, "k", json_real(s.k_now));
	ok = ok && put(d, "bootstrap", (o = json_object()));
	ok = ok && put(o, "enabled", json_boolean(s.bootstrap));
	ok = ok && put(o, "start", json_real(ms_to_s(s.start_ms)));
	ok = ok && put(o, "age_s", json_real(ms_to_s(now_ms - s.start_ms)));
	ok = ok && put(o, "observed_s", json_real(ms_to_s(s.observed_ms)));
	ok = ok && put(o, "phase1_end_s", json_real(ms_to_s(c->phase1_end_ms)));
	ok = ok && put(o, "phase2_end_s", json_real(ms_to_s(c->phase2_end_ms)));
	ok = ok && put(o, "window_s", json_real(ms_to_s(c->window_ms)));
	ok = ok && put(d, "next_tune", (o = json_object()));
	ok = ok && put(o, "observed_s", json_real(ms_to_s(s.next_point_ms)));
	ok = ok && put(o, "in_s", json_real(ms_to_s(s.next_point_ms - s.observed_ms)));
	ok = ok && put(o, "phase", json_string(at_phase_name(at_phase_at(c, s.next_point_ms))));
	ok = ok && put(d, "samples", (o = json_object()));
	ok = ok && put(o, "n", json_integer(s.samples));
	ok = ok && put(o, "cap", json_integer(s.cap));
	ok = ok && put(o, "min", json_integer(c->min_samples));
	ok = ok && put(o, "seen", json_integer((json_int_t)s.seen));
	ok = ok && put(d, "ticks", (o = json_object()));
	for (int i = 0; i < AT_NCLEAN && ok; i++)
		ok = put(o, at_clean_name(i), json_integer((json_int_t)s.ticks[i]));
	ok = ok && put(d, "trig", feat_obj(s.trig.v));
	ok = ok && put(d, "floors", feat_obj(c->floor));
	ok = ok && put(d, "history", json_integer((json_int_t)nh));
	ok = ok && put(d, "last", s.last != NULL ? result_json(s.last, true) : json_null());
	if (!ok) {
		json_decref(d);
		return NULL;
	}
	return d;
}
