/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-source baselines (baseline.h). The table is open addressing with
 * linear probing and backward-shift deletion like dec_srctab (table.h), over
 * its own record: a baseline outlives the engine's state (state-ttl) by
 * far, so the two cannot share slots.
 */
#include "decider/baseline.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/safefile.h"
#include "decider/state.h"
#include "decider/table.h"

_Static_assert(sizeof(struct dec_bl) == 152, "struct dec_bl grew: update baseline.h");

struct dec_baselines {
	struct dec_bl_params p;
	struct dec_bl *slots;
	size_t cap, n;
	uint64_t seed;
};

struct dec_baselines *dec_bl_new(const struct dec_bl_params *bp, uint64_t seed)
{
	struct dec_baselines *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->p = *bp;
	b->seed = seed;
	return b;
}

void dec_bl_free(struct dec_baselines *b)
{
	if (b == NULL)
		return;
	free(b->slots);
	free(b);
}

const struct dec_bl_params *dec_bl_params(const struct dec_baselines *b)
{
	return &b->p;
}

size_t dec_bl_count(const struct dec_baselines *b)
{
	return b->n;
}

static struct dec_bl *find(const struct dec_baselines *b, const struct kl_addr *key)
{
	if (b->cap == 0)
		return NULL;
	size_t mask = b->cap - 1, i = dec_addr_hash(key, b->seed) & mask;
	for (;;) {
		struct dec_bl *r = &b->slots[i];
		if (r->key.family == 0)
			return NULL;
		if (dec_addr_eq(&r->key, key))
			return r;
		i = (i + 1) & mask;
	}
}

static int grow(struct dec_baselines *b)
{
	size_t ncap = b->cap ? b->cap * 2 : 256;
	struct dec_bl *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < b->cap; i++) {
		struct dec_bl *r = &b->slots[i];
		if (r->key.family == 0)
			continue;
		size_t j = dec_addr_hash(&r->key, b->seed) & (ncap - 1);
		while (ns[j].key.family != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = *r;
	}
	free(b->slots);
	b->slots = ns;
	b->cap = ncap;
	return 0;
}

static void rec_init(struct dec_bl *r, const struct kl_addr *key)
{
	memset(r, 0, sizeof(*r));
	r->key = *key;
	r->t_last = DEC_T_NEVER;
	r->t_seen = DEC_T_NEVER;
}

/* Find or add; NULL when full (max-sources) or out of memory. */
static struct dec_bl *insert(struct dec_baselines *b, const struct kl_addr *key)
{
	struct dec_bl *r = find(b, key);

	if (r != NULL)
		return r;
	if (b->p.max_sources > 0 && b->n >= b->p.max_sources)
		return NULL;
	if ((b->n + 1) * 4 > b->cap * 3 && grow(b) < 0)
		return NULL;
	size_t mask = b->cap - 1, i = dec_addr_hash(key, b->seed) & mask;
	while (b->slots[i].key.family != 0)
		i = (i + 1) & mask;
	rec_init(&b->slots[i], key);
	b->n++;
	return &b->slots[i];
}

/* Backward-shift deletion: no tombstones. */
static void del_at(struct dec_baselines *b, size_t i)
{
	size_t mask = b->cap - 1, j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (b->slots[j].key.family == 0)
			break;
		size_t home = dec_addr_hash(&b->slots[j].key, b->seed) & mask;
		/* Slot j may move into i if its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			b->slots[i] = b->slots[j];
			i = j;
		}
	}
	memset(&b->slots[i], 0, sizeof(b->slots[i]));
	b->n--;
}

/* Fold one batch into the baseline: k observations of its mean, one by one
 * so that alpha changes from young to stable where it should. */
static void commit(const struct dec_bl_params *bp, struct dec_bl *r, int k)
{
	const uint16_t cnt = r->b_n[k];

	for (int f = 0; f < DEC_BL_NF; f++) {
		double mean = r->b_sum[k][f] / cnt, e = r->ewma[f];
		uint32_t n = r->n;
		for (uint16_t i = 0; i < cnt; i++, n++) {
			double a = n < bp->stable_after ? bp->alpha_young : bp->alpha_stable;
			e = n == 0 ? mean : e + a * (mean - e);
		}
		r->ewma[f] = (float)e;
		if (r->b_max[k][f] > r->peak[f])
			r->peak[f] = r->b_max[k][f];
	}
	r->n = r->n > UINT32_MAX - cnt ? UINT32_MAX : r->n + cnt;
	if (r->n >= bp->promote_after)
		r->flags |= DEC_BL_F_PROMOTED;
	r->t_last = r->b_last[k];
	r->b_n[k] = 0;
}

/* Commit the waiting batch once its newest observation is hold old; then
 * close the filling batch once it spans hold. Each observation is thus
 * held at least hold before it counts. */
static void roll(const struct dec_bl_params *bp, struct dec_bl *r, int64_t now)
{
	if (r->b_n[0] > 0 && now - r->b_last[0] >= bp->hold_ms)
		commit(bp, r, 0);
	if (r->b_n[1] > 0 && r->b_n[0] == 0 && now - r->b_start[1] >= bp->hold_ms) {
		r->b_start[0] = r->b_start[1];
		r->b_last[0] = r->b_last[1];
		r->b_n[0] = r->b_n[1];
		memcpy(r->b_sum[0], r->b_sum[1], sizeof(r->b_sum[0]));
		memcpy(r->b_max[0], r->b_max[1], sizeof(r->b_max[0]));
		r->b_n[1] = 0;
		/* hold 0: nothing to wait for */
		if (now - r->b_last[0] >= bp->hold_ms)
			commit(bp, r, 0);
	}
}

int dec_bl_observe(struct dec_baselines *b, const struct kl_addr *key, const struct dec_metrics *m,
		  int64_t now)
{
	const double x[DEC_BL_NF] = { m->pps, m->syn, m->scan };
	struct dec_bl *r = insert(b, key);

	if (r == NULL)
		return -1;
	if ((r->flags & DEC_BL_F_TAINTED) && r->t_seen == now)
		return 0;
	r->flags &= (uint8_t)~DEC_BL_F_TAINTED;
	roll(&b->p, r, now);
	if (r->b_n[1] == 0) {
		r->b_start[1] = now;
		memset(r->b_sum[1], 0, sizeof(r->b_sum[1]));
		memset(r->b_max[1], 0, sizeof(r->b_max[1]));
	}
	if (r->b_n[1] < UINT16_MAX) {
		r->b_n[1]++;
		r->b_last[1] = now;
		for (int f = 0; f < DEC_BL_NF; f++) {
			r->b_sum[1][f] += (float)x[f];
			if ((float)x[f] > r->b_max[1][f])
				r->b_max[1][f] = (float)x[f];
		}
	}
	roll(&b->p, r, now);
	r->t_seen = now;
	return 0;
}

void dec_bl_taint(struct dec_baselines *b, const struct kl_addr *key, int64_t now, bool create)
{
	struct dec_bl *r = create ? insert(b, key) : find(b, key);

	if (r == NULL)
		return;
	r->b_n[0] = r->b_n[1] = 0;
	r->flags |= DEC_BL_F_TAINTED;
	r->t_seen = now;
}

double dec_bl_confidence(const struct dec_bl_params *bp, const struct dec_bl *r, int64_t now)
{
	if (r == NULL || r->n == 0 || r->t_last == DEC_T_NEVER)
		return 0.0;
	double c = (double)r->n / (2.0 * (bp->promote_after > 0 ? bp->promote_after : 1));
	if (c > 1.0)
		c = 1.0;
	if (bp->halflife_ms > 0 && now > r->t_last)
		c *= exp2(-(double)(now - r->t_last) / (double)bp->halflife_ms);
	return c;
}

bool dec_bl_effective(const struct dec_bl_params *bp, const struct dec_bl *r,
		     const double trig[DEC_F_COUNT], int64_t now, double eff[DEC_F_COUNT])
{
	bool differs = false;

	memcpy(eff, trig, sizeof(double) * DEC_F_COUNT);
	if (r == NULL || !(r->flags & DEC_BL_F_PROMOTED) ||
	    dec_bl_confidence(bp, r, now) < bp->min_confidence)
		return false;
	for (int f = 0; f < DEC_BL_NF; f++) {
		if (!(trig[f] > 0.0))
			continue;
		/* The cap holds even when autotune lowered the trigger below
		 * what was learned under the old one. */
		double t = r->peak[f] * bp->tolerance, cap = trig[f] * bp->tolerance;
		if (t > cap)
			t = cap;
		if (t > trig[f]) {
			eff[f] = t;
			differs = true;
		}
	}
	return differs;
}

double dec_bl_severity(const struct dec_baselines *b, const struct dec_engine_params *p,
		      const struct kl_addr *key, const struct dec_metrics *m, double sev,
		      int64_t now)
{
	const struct dec_bl *r = find(b, key);
	double eff[DEC_F_COUNT];

	if (r == NULL || !dec_bl_effective(&b->p, r, p->trig, now, eff))
		return sev;
	struct dec_engine_params q = *p;
	memcpy(q.trig, eff, sizeof(q.trig));
	return dec_severity(&q, m);
}

const struct dec_bl *dec_bl_lookup(const struct dec_baselines *b, const struct kl_addr *key)
{
	return find(b, key);
}

int dec_bl_put(struct dec_baselines *b, const struct dec_bl *in)
{
	struct dec_bl *r = insert(b, &in->key);

	if (r == NULL)
		return -1;
	*r = *in;
	r->b_n[0] = r->b_n[1] = 0;
	if (r->n >= b->p.promote_after)
		r->flags |= DEC_BL_F_PROMOTED;
	return 0;
}

void dec_bl_foreach(const struct dec_baselines *b, void (*fn)(void *ctx, const struct dec_bl *r),
		   void *ctx)
{
	for (size_t i = 0; i < b->cap; i++) {
		if (b->slots[i].key.family != 0)
			fn(ctx, &b->slots[i]);
	}
}

size_t dec_bl_sweep(struct dec_baselines *b, int64_t now)
{
	size_t gone = 0;

	if (b->p.ttl_ms <= 0)
		return 0;
	for (size_t i = 0; i < b->cap;) {
		struct dec_bl *r = &b->slots[i];
		if (r->key.family != 0) {
			roll(&b->p, r, now);
			int64_t last = r->t_seen > r->t_last ? r->t_seen : r->t_last;
			if (last == DEC_T_NEVER || now - last >= b->p.ttl_ms) {
				del_at(b, i);
				gone++;
				continue; /* a later record may have moved into i */
			}
		}
		i++;
	}
	return gone;
}

/* ---- persistence ---- */

/* Reals at full precision: the hash covers the values as they are read back. */
#define FILE_FLAGS (JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

struct rows {
	json_t *arr;
	bool failed;
};

static void add_row(void *ctx, const struct dec_bl *r)
{
	struct rows *w = ctx;
	char ip[KL_ADDR_STRLEN];

	if (r->n == 0)
		return; /* only held observations: nothing learned yet */
	kl_addr_format(&r->key, ip, sizeof(ip));
	if (json_array_append_new(w->arr, json_pack("[s, I, f, f, f, f, f, f, f]", ip,
						    (json_int_t)r->n, (double)r->t_last / 1000.0,
						    (double)r->ewma[0], (double)r->ewma[1],
						    (double)r->ewma[2], (double)r->peak[0],
						    (double)r->peak[1], (double)r->peak[2])) < 0)
		w->failed = true;
}

int dec_bl_save(const struct dec_baselines *b, const char *path, int64_t now_ms, char *err,
	       size_t len)
{
	json_t *d = json_object(), *arr = json_array(), *integ = json_object();
	char hex[65], *text = NULL;
	int rc = -1;

	if (d == NULL || arr == NULL || integ == NULL) {
		json_decref(arr);
		json_decref(integ);
		goto oom;
	}
	struct rows w = { arr, false };
	dec_bl_foreach(b, add_row, &w);
	if (w.failed) {
		json_decref(arr);
		json_decref(integ);
		goto oom;
	}
	if (json_object_set_new(d, "version", json_integer(DEC_BL_VERSION)) < 0 ||
	    json_object_set_new(d, "saved_at", json_real((double)now_ms / 1000.0)) < 0 ||
	    json_object_set_new(d, "sources", arr) < 0 || state_digest(d, hex) < 0 ||
	    json_object_set_new(d, "integrity", integ) < 0 ||
	    json_object_set_new(integ, "sha256", json_string(hex)) < 0 ||
	    (text = json_dumps(d, FILE_FLAGS)) == NULL)
		goto oom;
	size_t n = strlen(text);
	text[n] = '\n';
	rc = kl_safe_replace(path, text, n + 1, 0600, ".bak", KL_SAFE_OWNED, err, len);
	free(text);
	json_decref(d);
	return rc;
oom:
	json_decref(d);
	snprintf(err, len, "out of memory serialising the baselines");
	return -1;
}

/* The latest t_last (Unix s) whose ms fit an int64_t, with room. */
#define BL_T_MAX_S 9.0e15

static int num(json_t *row, size_t i, double *v)
{
	json_t *x = json_array_get(row, i);

	if (!json_is_number(x))
		return -1;
	*v = json_number_value(x);
	return isfinite(*v) && *v >= 0.0 ? 0 : -1;
}

/* Parse and check one file into a fresh table (so a bad file changes
 * nothing). */
static int load_file(struct dec_baselines *into, const char *path, int64_t now_ms,
		     int64_t max_age_ms, char *err, size_t len)
{
	char *buf, why[512], hex[65];
	size_t n;
	json_error_t je;

	if (kl_safe_read_file(path, DEC_STATE_MAX_FILE * 4, KL_SAFE_OWNED, &buf, &n, why,
			      sizeof(why)) < 0) {
		/* the caller names the file already */
		size_t pl = strlen(path);
		const char *w = strncmp(why, path, pl) == 0 && why[pl] == ':' ? why + pl + 2 : why;
		if (errno == ENOENT)
			snprintf(err, len, "absent");
		else
			snprintf(err, len, "%.*s", (int)(len > 1 ? len - 1 : 0), w);
		return -1;
	}
	json_t *d = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (d == NULL) {
		snprintf(err, len, "parse error at line %d: %s", je.line, je.text);
		return -1;
	}
	json_t *integ = json_object_get(d, "integrity");
	json_t *sha = json_is_object(integ) ? json_object_get(integ, "sha256") : NULL;
	json_t *ver = json_object_get(d, "version"), *at = json_object_get(d, "saved_at");
	json_t *rows = json_object_get(d, "sources");
	if (!json_is_string(sha)) {
		snprintf(err, len, "integrity.sha256: missing");
		goto bad;
	}
	if (state_digest(d, hex) < 0 || strcmp(hex, json_string_value(sha)) != 0) {
		snprintf(err, len, "integrity hash mismatch (content was changed or damaged)");
		goto bad;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) != DEC_BL_VERSION) {
		snprintf(err, len, "version: not %d", DEC_BL_VERSION);
		goto bad;
	}
	if (!json_is_number(at)) {
		snprintf(err, len, "saved_at: not a number");
		goto bad;
	}
	int64_t saved = (int64_t)llround(json_number_value(at) * 1000.0);
	if (max_age_ms > 0 && now_ms - saved > max_age_ms) {
		snprintf(err, len, "saved %.1f h ago, older than --max-state-age %.1f h",
			 (double)(now_ms - saved) / 3.6e6, (double)max_age_ms / 3.6e6);
		goto bad;
	}
	if (!json_is_array(rows)) {
		snprintf(err, len, "sources: not an array");
		goto bad;
	}
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *row = json_array_get(rows, i);
		struct dec_bl r;
		struct kl_addr a, key;
		double v[8];
		bool ok = json_is_array(row) && json_array_size(row) == 9 &&
			  json_is_string(json_array_get(row, 0)) &&
			  kl_addr_parse(json_string_value(json_array_get(row, 0)), &a, NULL, 0) ==
				  0;
		for (size_t k = 0; ok && k < 8; k++)
			ok = num(row, k + 1, &v[k]) == 0;
		/* Only what the table can hold and save again: t_last in ms
		 * fits int64, the rates fit a float. */
		for (size_t k = 2; ok && k < 8; k++)
			ok = v[k] <= FLT_MAX;
		if (!ok || !dec_addr_key(&a, &key) || v[0] < 1 || v[0] > UINT32_MAX ||
		    v[1] > BL_T_MAX_S) {
			snprintf(err, len, "sources[%zu]: want [ip, n, t_last, 3 ewma, 3 peak] with a "
				 "host address and non-negative numbers (n 1..%u, t_last up to %.0f s, "
				 "rates up to %g)", i, (unsigned)UINT32_MAX, BL_T_MAX_S, (double)FLT_MAX);
			goto bad;
		}
		rec_init(&r, &key);
		r.n = (uint32_t)v[0];
		r.t_last = (int64_t)llround(v[1] * 1000.0);
		for (int f = 0; f < DEC_BL_NF; f++) {
			r.ewma[f] = (float)v[2 + f];
			r.peak[f] = (float)v[5 + f];
		}
		r.t_seen = r.t_last;
		if (dec_bl_put(into, &r) < 0) {
			snprintf(err, len, "sources[%zu]: table full (--baseline-max-sources) or "
				 "out of memory", i);
			goto bad;
		}
	}
	json_decref(d);
	return 0;
bad:
	json_decref(d);
	return -1;
}

static void swap_in(struct dec_baselines *b, struct dec_baselines *t)
{
	free(b->slots);
	b->slots = t->slots;
	b->cap = t->cap;
	b->n = t->n;
	b->seed = t->seed;
	t->slots = NULL;
}

int dec_bl_load(struct dec_baselines *b, const char *path, int64_t now_ms, int64_t max_age_ms,
	       char *why, size_t len)
{
	char e1[600], e2[600];
	size_t pl = strlen(path);
	char *bak = malloc(pl + 5);
	int rc = -1;

	if (bak == NULL) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	memcpy(bak, path, pl);
	memcpy(bak + pl, ".bak", 5);
	for (int k = 0; k < 2 && rc < 0; k++) {
		struct dec_baselines *t = dec_bl_new(&b->p, b->seed);
		if (t == NULL) {
			snprintf(why, len, "out of memory");
			break;
		}
		if (load_file(t, k == 0 ? path : bak, now_ms, max_age_ms, k == 0 ? e1 : e2,
			      sizeof(e1)) == 0) {
			swap_in(b, t);
			rc = k;
		} else if (k == 0 && strcmp(e1, "absent") != 0) {
			kl_warn("%s: rejected: %s; trying %s", path, e1, bak);
		}
		dec_bl_free(t);
	}
	if (rc < 0)
		snprintf(why, len, "%s: %s; %s: %s", path, e1, bak, e2);
	else if (rc == 1)
		kl_warn("%s: using the previous baselines from %s", path, bak);
	free(bak);
	return rc;
}

json_t *dec_bl_show_json(const struct dec_baselines *b, const struct dec_engine_params *p,
			const struct kl_addr *a, int64_t now)
{
	static const char *const fn[DEC_BL_NF] = { "pps", "syn", "scan" };
	char ip[KL_ADDR_STRLEN];
	struct kl_addr key;
	double eff[DEC_F_COUNT];
	const struct dec_bl *r = dec_addr_key(a, &key) ? find(b, &key) : NULL;
	bool differs = dec_bl_effective(&b->p, r, p->trig, now, eff);
	json_t *j = json_object(), *ew = json_object(), *pk = json_object(), *ef = json_object();

	if (j == NULL || ew == NULL || pk == NULL || ef == NULL) {
		json_decref(j);
		json_decref(ew);
		json_decref(pk);
		json_decref(ef);
		return NULL;
	}
	for (int f = 0; f < DEC_BL_NF; f++) {
		json_object_set_new(ew, fn[f], json_real(r ? r->ewma[f] : 0.0));
		json_object_set_new(pk, fn[f], json_real(r ? r->peak[f] : 0.0));
		json_object_set_new(ef, fn[f], json_real(eff[f]));
	}
	double conf = dec_bl_confidence(&b->p, r, now);
	kl_addr_format(a, ip, sizeof(ip));
	json_object_set_new(j, "ip", json_string(ip));
	json_object_set_new(j, "known", json_boolean(r != NULL));
	json_object_set_new(j, "promoted", json_boolean(r && (r->flags & DEC_BL_F_PROMOTED)));
	json_object_set_new(j, "confident", json_boolean(r && conf >= b->p.min_confidence));
	json_object_set_new(j, "observations", json_integer(r ? r->n : 0));
	json_object_set_new(j, "held", json_integer(r ? r->b_n[0] + r->b_n[1] : 0));
	json_object_set_new(j, "confidence", json_real(conf));
	json_object_set_new(j, "ewma", ew);
	json_object_set_new(j, "peak", pk);
	json_object_set_new(j, "effective_trigger", ef);
	json_object_set_new(j, "above_global", json_boolean(differs));
	json_object_set_new(j, "last_learned_s",
			    r && r->t_last != DEC_T_NEVER ? json_real((double)(now - r->t_last) / 1e3)
						       : json_null());
	return j;
}
