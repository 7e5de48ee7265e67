/* SPDX-License-Identifier: MPL-2.0 */
/* Trace readers and the replay loop (see replay.h). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "graphd/commands.h"
#include "common/err.h"
#include "common/grow.h"
#include "graphd/replay.h"
#include "ipc/frames.h"
#include "common/jsonl.h"
#include "ipc/msg.h"
#include "ipc/tickasm.h"
#include "ipc/trace.h"
#include "common/grow.h"

struct gr_reader {
	char *name;
	struct kl_jsonl l; /* JSON lines */
	/* binary */
	struct kl_trace_reader *tr;
	struct kl_tickasm ta_telem, ta_flows;
	uint64_t susp_tick;
	bool have_susp;
	/* the current tick */
	struct gr_obs *obs;
	size_t nobs, obs_cap;
	struct kl_addr *susp;
	size_t nsusp, susp_cap;
	int64_t prev_t;
	bool have_prev;
};

static int grow_obs(struct gr_reader *r, size_t n)
{
	struct gr_obs *o = kl_grow_to(r->obs, n, &r->obs_cap, sizeof(*o), 64);

	if (o == NULL)
		return -1;
	r->obs = o;
	return 0;
}

static int addrs_add(struct kl_addr **v, size_t *n, size_t *cap, const struct kl_addr *a)
{
	struct kl_addr *s = kl_grow(*v, *n, cap, sizeof(*s), 64);

	if (s == NULL)
		return -1;
	*v = s;
	(*v)[(*n)++] = *a;
	return 0;
}

static int add_susp(struct gr_reader *r, const struct kl_addr *a)
{
	return addrs_add(&r->susp, &r->nsusp, &r->susp_cap, a);
}

int gr_flows_to_obs(const struct kl_flows_view *v, struct gr_obs *obs, struct kl_addr **susp,
		    size_t *nsusp, size_t *susp_cap)
{
	for (size_t i = 0; i < v->h.n_records; i++) {
		struct kl_flow_rec f;
		struct gr_obs *o = &obs[i];
		kl_flows_record(v, i, &f);
		memset(o, 0, sizeof(*o));
		o->src.family = f.family;
		o->src.prefixlen = f.family == 4 ? 32 : 128;
		memcpy(o->src.addr, f.addr, 16);
		o->port = f.port;
		o->proto = f.proto;
		o->pkts = f.pkts;
		o->bytes = f.bytes;
		/* A source's flows are usually adjacent: list it once per run. */
		if ((f.flags & KL_FLOW_F_RESTRICTED) &&
		    (*nsusp == 0 || memcmp(&(*susp)[*nsusp - 1], &o->src, sizeof(o->src)) != 0) &&
		    addrs_add(susp, nsusp, susp_cap, &o->src) < 0)
			return -1;
	}
	return 0;
}

static struct gr_reader *reader_new(const char *name)
{
	struct gr_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->name = strdup(name);
	if (r->name == NULL) {
		free(r);
		return NULL;
	}
	kl_tickasm_init(&r->ta_telem, KL_MSG_TELEMETRY, kl_telem_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
	kl_tickasm_init(&r->ta_flows, KL_MSG_FLOWS, kl_flows_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
	return r;
}

int gr_reader_open(struct gr_reader **out, const char *path, char *err, size_t errlen)
{
	struct gr_reader *r = reader_new(strcmp(path, "-") == 0 ? "<stdin>" : path);
	char magic[8];

	*out = NULL;
	if (r == NULL)
		return kl_fail(err, errlen, "%s: out of memory", path);
	if (kl_jsonl_open(&r->l, path) < 0) {
		kl_fail(err, errlen, "%s: %s", path, strerror(errno));
		gr_reader_close(r);
		return -1;
	}
	if (r->l.f == stdin)
		goto done;
	size_t n = fread(magic, 1, sizeof(magic), r->l.f);
	if (n == sizeof(magic) && memcmp(magic, KL_TRACE_MAGIC, 8) == 0) {
		kl_jsonl_close(&r->l);
		if (kl_trace_open_read(&r->tr, path, err, errlen) < 0) {
			gr_reader_close(r);
			return -1;
		}
	} else {
		rewind(r->l.f);
	}
done:
	*out = r;
	return 0;
}

int gr_reader_mem(struct gr_reader **out, const char *buf, size_t len, const char *name,
		  char *err, size_t errlen)
{
	struct gr_reader *r = reader_new(name);

	*out = NULL;
	if (r == NULL)
		return kl_fail(err, errlen, "%s: out of memory", name);
	kl_jsonl_mem(&r->l, buf, len);
	*out = r;
	return 0;
}

int gr_reader_trace_stream(struct gr_reader **out, FILE *f, bool own, const char *name,
			   char *err, size_t errlen)
{
	struct gr_reader *r = reader_new(name);

	*out = NULL;
	if (r == NULL) {
		if (own)
			fclose(f);
		return kl_fail(err, errlen, "%s: out of memory", name);
	}
	if (kl_trace_open_stream(&r->tr, f, own, name, err, errlen) < 0) {
		gr_reader_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

void gr_reader_close(struct gr_reader *r)
{
	if (r == NULL)
		return;
	kl_jsonl_close(&r->l);
	if (r->tr != NULL)
		kl_trace_close_read(r->tr);
	kl_tickasm_free(&r->ta_telem);
	kl_tickasm_free(&r->ta_flows);
	free(r->obs);
	free(r->susp);
	free(r->name);
	free(r);
}

/* ---- binary traces ---- */

static int bin_next(struct gr_reader *r, struct gr_tick_in *t, char *err, size_t errlen)
{
	for (;;) {
		const uint8_t *msg;
		size_t len;
		struct kl_msg m;
		char why[256];
		int rc = kl_trace_next(r->tr, &msg, &len, why, sizeof(why));

		if (rc == KL_TRACE_EOF)
			return 0;
		if (rc == KL_TRACE_TORN)
			return 0; /* a recording cut short: everything before it counts */
		if (rc != KL_TRACE_REC)
			return kl_fail(err, errlen, "%s: %s", r->name, why);
		uint64_t off = kl_trace_offset(r->tr);
		if (kl_msg_decode(msg, len, &m, why, sizeof(why)) < 0)
			return kl_fail(err, errlen, "%s: record at offset %llu: %s", r->name,
				    (unsigned long long)off, why);
		if (m.hdr.type != KL_MSG_TELEMETRY && m.hdr.type != KL_MSG_FLOWS)
			continue;
		/* A partial tick is dropped (ipc/tickasm.h); a frame that does
		 * not decode ends the replay. */
		struct kl_tickasm *ta = m.hdr.type == KL_MSG_FLOWS ? &r->ta_flows : &r->ta_telem;
		rc = kl_tickasm_feed(ta, &m, why, sizeof(why));
		if (rc == KL_TICKASM_MORE)
			continue;
		if (rc != KL_TICKASM_TICK)
			return kl_fail(err, errlen, "%s: %s at offset %llu: %s", r->name,
				    kl_msg_type_name(m.hdr.type), (unsigned long long)off, why);
		if (m.hdr.type == KL_MSG_TELEMETRY) {
			const struct kl_telem_view *tv = &ta->telem;
			r->nsusp = 0;
			for (size_t i = 0; i < tv->h.n_records; i++) {
				struct kl_src_rate s;
				kl_telem_record(tv, i, &s);
				if (s.r[KL_R_DROP_RL] <= 0 && s.r[KL_R_DROP_DENY] <= 0)
					continue;
				struct kl_addr a = { .family = s.family,
						     .prefixlen = s.family == 4 ? 32 : 128 };
				memcpy(a.addr, s.addr, 16);
				if (add_susp(r, &a) < 0)
					return kl_fail(err, errlen, "%s: out of memory", r->name);
			}
			r->susp_tick = tv->h.tick;
			r->have_susp = true;
			continue;
		}
		const struct kl_flows_view *v = &ta->flows;
		if (grow_obs(r, v->h.n_records) < 0)
			return kl_fail(err, errlen, "%s: out of memory for %u flows", r->name,
				    v->h.n_records);
		/* Suspects of this tick: its TELEMETRY's, then the flagged flows'. */
		if (!(r->have_susp && r->susp_tick == v->h.tick))
			r->nsusp = 0;
		r->have_susp = false;
		if (gr_flows_to_obs(v, r->obs, &r->susp, &r->nsusp, &r->susp_cap) < 0)
			return kl_fail(err, errlen, "%s: out of memory", r->name);
		r->nobs = v->h.n_records;
		int64_t tms = (int64_t)(v->h.t_ns / 1000000u);
		/* The sensor's clock may step back; the graph's time may not. */
		if (r->have_prev && tms <= r->prev_t)
			tms = r->prev_t + 1;
		t->t_ms = tms;
		t->obs = r->obs;
		t->nobs = r->nobs;
		t->susp = r->susp;
		t->nsusp = r->nsusp;
		r->prev_t = tms;
		r->have_prev = true;
		return 1;
	}
}

/* ---- JSON lines ---- */

static int line_fail(struct gr_reader *r, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int line_fail(struct gr_reader *r, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kl_fail(err, errlen, "%s:%lu: %s", r->name, r->l.lineno, msg);
}

static int parse_flows(struct gr_reader *r, const json_t *arr, char *err, size_t errlen)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return line_fail(r, err, errlen, "\"flows\" must be an array");
	if (grow_obs(r, json_array_size(arr)) < 0)
		return line_fail(r, err, errlen, "out of memory for %zu flows", json_array_size(arr));
	r->nobs = 0;
	json_array_foreach(arr, i, el) {
		struct gr_obs *o = &r->obs[r->nobs];
		const char *key;
		json_t *v;
		bool have_src = false, have_proto = false, restricted = false;
		char why[160];

		memset(o, 0, sizeof(*o));
		if (!json_is_object(el))
			return line_fail(r, err, errlen, "flows[%zu] must be an object", i);
		json_object_foreach(el, key, v) {
			double d;
			if (strcmp(key, "src") == 0) {
				const char *ip = json_string_value(v);
				if (ip == NULL || kl_addr_parse(ip, &o->src, why, sizeof(why)) < 0)
					return line_fail(r, err, errlen, "flows[%zu].src: %s", i,
							 ip ? why : "must be a string");
				have_src = true;
			} else if (strcmp(key, "port") == 0) {
				json_int_t p = json_integer_value(v);
				if (!json_is_integer(v) || p < 0 || p > 65535)
					return line_fail(r, err, errlen, "flows[%zu].port must be 0..65535",
							 i);
				o->port = (uint16_t)p;
			} else if (strcmp(key, "proto") == 0) {
				if (kl_json_proto(v, &o->proto) < 0)
					return line_fail(r, err, errlen, "flows[%zu].proto must be "
							 "tcp|udp|icmp|icmpv6|0..255", i);
				have_proto = true;
			} else if (strcmp(key, "pkts") == 0 || strcmp(key, "bytes") == 0) {
				if (!kl_json_nonneg(v, &d) || d > 1.8e19)
					return line_fail(r, err, errlen, "flows[%zu].%s must be a number "
							 ">= 0", i, key);
				if (key[0] == 'p')
					o->pkts = (uint64_t)d;
				else
					o->bytes = (uint64_t)d;
			} else if (strcmp(key, "restricted") == 0) {
				if (!json_is_boolean(v))
					return line_fail(r, err, errlen, "flows[%zu].restricted must be "
							 "true or false", i);
				restricted = json_is_true(v);
			} else {
				return line_fail(r, err, errlen, "flows[%zu]: unknown key \"%.40s\" "
						 "(valid: src port proto pkts bytes restricted)", i, key);
			}
		}
		if (!have_src || !have_proto)
			return line_fail(r, err, errlen, "flows[%zu] needs \"src\" and \"proto\"", i);
		if (o->port != 0 && o->proto != 6 && o->proto != 17)
			return line_fail(r, err, errlen, "flows[%zu]: port %u with protocol %u (only "
					 "TCP and UDP have ports)", i, o->port, o->proto);
		if (restricted && add_susp(r, &o->src) < 0)
			return line_fail(r, err, errlen, "out of memory");
		r->nobs++;
	}
	return 0;
}

/* Only what the graph needs: which sources had rate-limit drops. */
static int parse_sources(struct gr_reader *r, const json_t *arr, char *err, size_t errlen)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return line_fail(r, err, errlen, "\"sources\" must be an array");
	json_array_foreach(arr, i, el) {
		struct kl_addr a;
		char why[160];
		double d = 0;

		if (!json_is_object(el))
			return line_fail(r, err, errlen, "sources[%zu] must be an object", i);
		const char *ip = json_string_value(json_object_get(el, "ip"));
		if (ip == NULL || kl_addr_parse(ip, &a, why, sizeof(why)) < 0)
			return line_fail(r, err, errlen, "sources[%zu].ip: %s", i,
					 ip ? why : "missing or not a string");
		json_t *dr = json_object_get(el, "droprl");
		if (dr != NULL && !kl_json_nonneg(dr, &d))
			return line_fail(r, err, errlen, "sources[%zu].droprl must be a number >= 0", i);
		if (d > 0 && add_susp(r, &a) < 0)
			return line_fail(r, err, errlen, "out of memory");
	}
	return 0;
}

static int jsonl_next(struct gr_reader *r, struct gr_tick_in *t, char *err, size_t errlen)
{
	const char *line;
	size_t len;

	const char *why;
	int got = kl_jsonl_next(&r->l, &line, &len, &why);
	if (got <= 0)
		return got == 0 ? 0 : line_fail(r, err, errlen, "%s", why);
	json_error_t jerr;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return line_fail(r, err, errlen, "column %d: %s", jerr.column, jerr.text);
	int rc = -1;
	const char *key;
	json_t *v;
	double tsec = -1;

	r->nobs = 0;
	r->nsusp = 0;
	if (!json_is_object(root)) {
		line_fail(r, err, errlen, "expected a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "t") == 0) {
			if (!kl_json_nonneg(v, &tsec) || tsec > 1e10) {
				line_fail(r, err, errlen, "\"t\" must be a number of seconds >= 0");
				goto out;
			}
		} else if (strcmp(key, "flows") == 0) {
			if (parse_flows(r, v, err, errlen) < 0)
				goto out;
		} else if (strcmp(key, "sources") == 0) {
			if (parse_sources(r, v, err, errlen) < 0)
				goto out;
		} else if (strcmp(key, "violations") != 0 && strcmp(key, "whitelist") != 0 &&
			   strcmp(key, "feedback") != 0) {
			line_fail(r, err, errlen, "unknown key \"%.40s\" (valid: t flows sources "
				  "violations whitelist feedback)", key);
			goto out;
		}
	}
	if (tsec < 0) {
		line_fail(r, err, errlen, "\"t\" is missing");
		goto out;
	}
	int64_t tms = llround(tsec * 1000.0);
	if (r->have_prev && tms <= r->prev_t) {
		line_fail(r, err, errlen, "t=%.3f does not come after the previous tick (t=%.3f)",
			  tsec, (double)r->prev_t / 1000.0);
		goto out;
	}
	r->prev_t = tms;
	r->have_prev = true;
	t->t_ms = tms;
	t->obs = r->obs;
	t->nobs = r->nobs;
	t->susp = r->susp;
	t->nsusp = r->nsusp;
	rc = 1;
out:
	json_decref(root);
	return rc;
}

int gr_reader_next(struct gr_reader *r, struct gr_tick_in *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	return r->tr != NULL ? bin_next(r, t, err, errlen) : jsonl_next(r, t, err, errlen);
}

/* ---- the loop ---- */

int gr_replay(struct gr_graph *g, struct gr_store *s, struct gr_reader *r, FILE *out,
	      struct gr_replay_stats *st, char *err, size_t errlen)
{
	struct gr_tick_in t;
	int rc;

	memset(st, 0, sizeof(*st));
	st->first_t = st->last_t = GR_NEVER;
	while ((rc = gr_reader_next(r, &t, err, errlen)) == 1) {
		if (gr_tick(g, t.t_ms, t.obs, t.nobs, t.susp, t.nsusp) < 0)
			return kl_fail(err, errlen, "out of memory at t=%lld ms", (long long)t.t_ms);
		for (size_t i = 0; out != NULL && i < g->nviol; i++) {
			char line[256];
			fprintf(out, "%s\n", gr_viol_json(&g->viol[i], line, sizeof(line)));
		}
		if (s != NULL) {
			int64_t purge = g->last.maintained && g->p.expire_ttl_ms > 0
						? t.t_ms - g->p.expire_ttl_ms
						: GR_NEVER;
			if (gr_store_flush(s, g, g->viol, g->nviol, purge, err, errlen) < 0)
				return -1;
		} else {
			gr_flushed(g);
		}
		st->ticks++;
		st->obs += t.nobs;
		st->violations += g->nviol;
		if (st->first_t == GR_NEVER)
			st->first_t = t.t_ms;
		st->last_t = t.t_ms;
	}
	if (rc >= 0 && s != NULL) {
		gr_eb_flush_all(g);
		if (gr_store_flush(s, g, NULL, 0, GR_NEVER, err, errlen) < 0)
			return -1;
	}
	return rc < 0 ? -1 : 0;
}
