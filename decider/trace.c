/* SPDX-License-Identifier: MPL-2.0 */
/*
 * JSON-lines traces (DESIGN §6.6), one tick per line:
 *   {"t": 12.0, "new_sources": 0, "sources": [{"ip": "203.0.113.7", "pps": 900, "bps": 72000,
 *    "syn": 850, "scan": 0, "droprl": 0}], "violations": [...], "flows": [...]}
 * Replay extras: "whitelist": ["198.18.0.0/24", ...] and "feedback": [{...}]
 * replace the exemption files' contents from that tick on (as an operator
 * editing them would). Blank lines and lines starting with '#' are skipped.
 * Strict: unknown keys, negative or non-numeric metrics, a source listed
 * twice in a tick, and time that does not move forward are errors naming
 * the line.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonl.h"
#include "decider/io.h"
#include "decider/table.h"

struct jsonl {
	struct dec_input in;
	struct kl_jsonl l;
	char *name;
	int64_t interval_ms;
	int64_t prev_t;
	bool have_prev;
	struct dec_metrics *src;
	size_t src_cap;
	struct dec_violation *viol;
	size_t viol_cap;
	struct dec_keyset seen;
	struct dec_exempt_list wl, fb;
	char where[320];
};

static int bad(struct jsonl *j, struct kl_errs *errs, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct jsonl *j, struct kl_errs *errs, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kl_errs_add(errs, "%s:%lu: %s", j->name, j->l.lineno, msg);
	return -1;
}

static int parse_sources(struct jsonl *j, const json_t *arr, size_t *n, struct kl_errs *errs)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return bad(j, errs, "\"sources\" must be an array");
	if (json_array_size(arr) > j->src_cap) {
		size_t ncap = json_array_size(arr);
		struct dec_metrics *nv = realloc(j->src, ncap * sizeof(*nv));
		if (nv == NULL)
			return bad(j, errs, "out of memory for %zu sources", ncap);
		j->src = nv;
		j->src_cap = ncap;
	}
	dec_keyset_clear(&j->seen);
	*n = 0;
	json_array_foreach(arr, i, el) {
		struct dec_metrics *m = &j->src[*n];
		const char *key;
		json_t *v;
		char err[160];
		const char *ip = NULL;

		memset(m, 0, sizeof(*m));
		if (!json_is_object(el))
			return bad(j, errs, "sources[%zu] must be an object", i);
		json_object_foreach(el, key, v) {
			double *dst = NULL;
			if (strcmp(key, "ip") == 0) {
				ip = json_string_value(v);
				if (ip == NULL)
					return bad(j, errs, "sources[%zu].ip must be a string", i);
				continue;
			}
			if (strcmp(key, "pps") == 0)
				dst = &m->pps;
			else if (strcmp(key, "bps") == 0)
				dst = &m->bps;
			else if (strcmp(key, "syn") == 0)
				dst = &m->syn;
			else if (strcmp(key, "scan") == 0)
				dst = &m->scan;
			else if (strcmp(key, "droprl") == 0)
				dst = &m->droprl;
			else
				return bad(j, errs, "sources[%zu]: unknown key \"%.40s\" (valid: ip pps bps syn scan droprl)",
					   i, key);
			if (!kl_json_nonneg(v, dst))
				return bad(j, errs, "sources[%zu].%s must be a number >= 0", i, key);
		}
		if (ip == NULL)
			return bad(j, errs, "sources[%zu]: \"ip\" is missing", i);
		if (kl_addr_parse(ip, &m->addr, err, sizeof(err)) < 0)
			return bad(j, errs, "sources[%zu].ip: %s", i, err);
		struct kl_addr key2;
		dec_addr_key(&m->addr, &key2);
		m->addr = key2;
		size_t before = j->seen.n;
		if (dec_keyset_add(&j->seen, &key2) == NULL)
			return bad(j, errs, "out of memory");
		if (j->seen.n == before)
			return bad(j, errs, "sources[%zu]: %.64s is listed twice in this tick", i, ip);
		(*n)++;
	}
	return 0;
}

static int parse_violations(struct jsonl *j, const json_t *arr, size_t *n, struct kl_errs *errs)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return bad(j, errs, "\"violations\" must be an array");
	if (json_array_size(arr) > j->viol_cap) {
		size_t ncap = json_array_size(arr);
		struct dec_violation *nv = realloc(j->viol, ncap * sizeof(*nv));
		if (nv == NULL)
			return bad(j, errs, "out of memory");
		j->viol = nv;
		j->viol_cap = ncap;
	}
	*n = 0;
	json_array_foreach(arr, i, el) {
		struct dec_violation *x = &j->viol[(*n)++];
		const char *key;
		json_t *v;
		char err[160];
		bool have_ip = false, have_mode = false;

		memset(x, 0, sizeof(*x));
		if (!json_is_object(el))
			return bad(j, errs, "violations[%zu] must be an object", i);
		json_object_foreach(el, key, v) {
			if (strcmp(key, "ip") == 0) {
				const char *ip = json_string_value(v);
				struct kl_addr a;
				if (ip == NULL || kl_addr_parse(ip, &a, err, sizeof(err)) < 0)
					return bad(j, errs, "violations[%zu].ip: %s", i,
						   ip ? err : "must be a string");
				dec_addr_key(&a, &x->addr);
				have_ip = true;
			} else if (strcmp(key, "port") == 0) {
				json_int_t p = json_integer_value(v);
				if (!json_is_integer(v) || p < 0 || p > 65535)
					return bad(j, errs, "violations[%zu].port must be 0..65535", i);
				x->port = (uint16_t)p;
			} else if (strcmp(key, "proto") == 0) {
				if (kl_json_proto(v, &x->proto) < 0)
					return bad(j, errs, "violations[%zu].proto must be tcp|udp|icmp|icmpv6|0..255", i);
			} else if (strcmp(key, "mode") == 0) {
				const char *s = json_string_value(v);
				if (s != NULL && strcmp(s, "observe") == 0)
					x->mode = DEC_VIOL_OBSERVE;
				else if (s != NULL && strcmp(s, "enforce") == 0)
					x->mode = DEC_VIOL_ENFORCE;
				else
					return bad(j, errs, "violations[%zu].mode must be \"observe\" or \"enforce\"", i);
				have_mode = true;
			} else {
				return bad(j, errs, "violations[%zu]: unknown key \"%.40s\" (valid: ip port proto mode)",
					   i, key);
			}
		}
		if (!have_ip || !have_mode)
			return bad(j, errs, "violations[%zu] needs \"ip\" and \"mode\"", i);
	}
	return 0;
}

static int check_flows(struct jsonl *j, const json_t *arr, struct kl_errs *errs)
{
	static const char *const keys[] = { "src", "port", "proto", "pkts", "bytes", "restricted",
					    NULL };
	size_t i;
	json_t *el;

	/* graphd's input; the decider only checks the shape. */
	if (!json_is_array(arr))
		return bad(j, errs, "\"flows\" must be an array");
	json_array_foreach(arr, i, el) {
		const char *key;
		json_t *v;
		if (!json_is_object(el))
			return bad(j, errs, "flows[%zu] must be an object", i);
		json_object_foreach(el, key, v) {
			bool ok = false;
			for (int k = 0; keys[k]; k++)
				ok |= strcmp(key, keys[k]) == 0;
			if (!ok)
				return bad(j, errs, "flows[%zu]: unknown key \"%.40s\"", i, key);
		}
	}
	return 0;
}

static int parse_whitelist(struct jsonl *j, const json_t *arr, struct kl_errs *errs)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return bad(j, errs, "\"whitelist\" must be an array of addresses/CIDRs");
	/* Reuse the file parser: one entry per line, so messages say which. */
	size_t total = 1;
	json_array_foreach(arr, i, el) {
		if (!json_is_string(el))
			return bad(j, errs, "whitelist[%zu] must be a string", i);
		total += json_string_length(el) + 1;
	}
	char *text = malloc(total);
	if (text == NULL)
		return bad(j, errs, "out of memory");
	size_t o = 0;
	json_array_foreach(arr, i, el) {
		size_t n = json_string_length(el);
		if (memchr(json_string_value(el), '\n', n) != NULL ||
		    memchr(json_string_value(el), '#', n) != NULL) {
			free(text);
			return bad(j, errs, "whitelist[%zu] must be one address or CIDR", i);
		}
		memcpy(text + o, json_string_value(el), n);
		o += n;
		text[o++] = '\n';
	}
	dec_exempt_list_free(&j->wl);
	int rc = dec_whitelist_parse(text, o, j->where, &j->wl, errs);
	free(text);
	return rc;
}

static int jsonl_next(struct dec_input *in, struct dec_tick *t, struct kl_errs *errs)
{
	struct jsonl *j = (struct jsonl *)in;
	const char *line;
	size_t len;

	memset(t, 0, sizeof(*t));
	const char *why;
	int got = kl_jsonl_next(&j->l, &line, &len, &why);
	if (got <= 0)
		return got == 0 ? 0 : bad(j, errs, "%s", why);
	snprintf(j->where, sizeof(j->where), "%s:%lu", j->name, j->l.lineno);

	json_error_t jerr;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return bad(j, errs, "column %d: %s", jerr.column, jerr.text);
	int rc = -1;
	const char *key;
	json_t *v;
	double tsec = -1;
	size_t nsrc = 0, nviol = 0;
	t->has_new_sources = false;
	t->new_sources = 0;
	dec_exempt_list_free(&j->wl);
	dec_exempt_list_free(&j->fb);
	if (!json_is_object(root)) {
		bad(j, errs, "expected a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "t") == 0) {
			if (!kl_json_nonneg(v, &tsec) || tsec > 1e10) {
				bad(j, errs, "\"t\" must be a number of seconds >= 0");
				goto out;
			}
		} else if (strcmp(key, "new_sources") == 0) {
			double ns;
			if (!kl_json_nonneg(v, &ns) || ns > 1e15) {
				bad(j, errs, "\"new_sources\" must be a count >= 0");
				goto out;
			}
			t->has_new_sources = true;
			t->new_sources = (uint64_t)ns;
		} else if (strcmp(key, "sources") == 0) {
			if (parse_sources(j, v, &nsrc, errs) < 0)
				goto out;
		} else if (strcmp(key, "violations") == 0) {
			if (parse_violations(j, v, &nviol, errs) < 0)
				goto out;
		} else if (strcmp(key, "flows") == 0) {
			if (check_flows(j, v, errs) < 0)
				goto out;
		} else if (strcmp(key, "whitelist") == 0) {
			if (parse_whitelist(j, v, errs) < 0)
				goto out;
			t->has_whitelist = true;
		} else if (strcmp(key, "feedback") == 0) {
			if (dec_feedback_from_json(v, j->where, &j->fb, errs) < 0)
				goto out;
			t->has_feedback = true;
		} else {
			bad(j, errs, "unknown key \"%.40s\" (valid: t new_sources sources violations flows whitelist feedback)",
			    key);
			goto out;
		}
	}
	if (tsec < 0) {
		bad(j, errs, "\"t\" is missing");
		goto out;
	}
	int64_t tms = llround(tsec * 1000.0);
	if (j->have_prev && tms <= j->prev_t) {
		bad(j, errs, "t=%.3f does not come after the previous tick (t=%.3f)", tsec,
		    (double)j->prev_t / 1000.0);
		goto out;
	}
	t->t_ms = tms;
	t->elapsed_ms = j->have_prev ? tms - j->prev_t : j->interval_ms;
	t->src = j->src;
	t->nsrc = nsrc;
	t->viol = j->viol;
	t->nviol = nviol;
	t->whitelist = &j->wl;
	t->feedback = &j->fb;
	t->where = j->where;
	j->prev_t = tms;
	j->have_prev = true;
	rc = 1;
out:
	json_decref(root);
	return rc;
}

static void jsonl_close(struct dec_input *in)
{
	struct jsonl *j = (struct jsonl *)in;

	if (j == NULL)
		return;
	kl_jsonl_close(&j->l);
	free(j->name);
	free(j->src);
	free(j->viol);
	dec_keyset_free(&j->seen);
	dec_exempt_list_free(&j->wl);
	dec_exempt_list_free(&j->fb);
	free(j);
}

static struct jsonl *jsonl_new(const char *name, int64_t interval_ms)
{
	struct jsonl *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->in.next = jsonl_next;
	j->in.close = jsonl_close;
	j->name = strdup(name);
	j->interval_ms = interval_ms;
	dec_keyset_init(&j->seen, 0x7261636574726163ull);
	if (j->name == NULL) {
		free(j);
		return NULL;
	}
	return j;
}

struct dec_input *dec_input_jsonl_open(const char *path, int64_t interval_ms,
				     struct kl_errs *errs)
{
	struct jsonl *j = jsonl_new(strcmp(path, "-") == 0 ? "<stdin>" : path, interval_ms);

	if (j == NULL) {
		kl_errs_add(errs, "%s: out of memory", path);
		return NULL;
	}
	if (kl_jsonl_open(&j->l, path) < 0) {
		kl_errs_add(errs, "%s: %s", path, strerror(errno));
		jsonl_close(&j->in);
		return NULL;
	}
	return &j->in;
}

struct dec_input *dec_input_jsonl_mem(const char *buf, size_t len, const char *name,
				    int64_t interval_ms)
{
	struct jsonl *j = jsonl_new(name, interval_ms);

	if (j == NULL)
		return NULL;
	kl_jsonl_mem(&j->l, buf, len);
	return &j->in;
}
