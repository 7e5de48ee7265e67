/* SPDX-License-Identifier: MPL-2.0 */
/* Operator commands on the graph (see commands.h). */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "graphd/commands.h"
#include "ipc/msg.h"

/* Edges listed by name in a freeze answer (the counts are always whole). */
#define LIST_MAX_TEXT 50
#define LIST_MAX_JSON 10000

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s != NULL && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + (size_t)n + 1)
			ncap *= 2;
		char *ns = realloc(b->s, ncap);
		if (ns == NULL) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
}

static char *sb_take(struct sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (b->s == NULL)
		return strdup("");
	return b->s;
}

void gr_answer_free(struct gr_answer *a)
{
	free(a->text);
	free(a->json);
	a->text = a->json = NULL;
}

static void answer(struct gr_answer *a, int status, struct sbuf *text, json_t *doc)
{
	a->status = status;
	a->text = sb_take(text);
	a->json = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (a->text == NULL || (doc != NULL && a->json == NULL)) {
		gr_answer_free(a);
		a->status = KL_ERR_FAILED;
		a->text = strdup("out of memory\n");
	}
}

const char *gr_fmt_time(int64_t t_ms, char *buf, size_t len)
{
	struct tm tm;
	time_t secs;
	int64_t ms;

	if (t_ms == GR_NEVER) {
		snprintf(buf, len, "-");
		return buf;
	}
	secs = (time_t)(t_ms >= 0 ? t_ms / 1000 : (t_ms - 999) / 1000);
	ms = t_ms - (int64_t)secs * 1000;
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, len, "%lld", (long long)t_ms);
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
	return buf;
}

const char *gr_fmt_t(int64_t t_ms, char *buf, size_t len)
{
	int64_t s = t_ms / 1000, ms = t_ms % 1000;

	if (t_ms < 0) {
		snprintf(buf, len, "%.3f", (double)t_ms / 1000.0);
		return buf;
	}
	if (ms == 0)
		snprintf(buf, len, "%lld.0", (long long)s);
	else if (ms % 100 == 0)
		snprintf(buf, len, "%lld.%lld", (long long)s, (long long)(ms / 100));
	else if (ms % 10 == 0)
		snprintf(buf, len, "%lld.%02lld", (long long)s, (long long)(ms / 10));
	else
		snprintf(buf, len, "%lld.%03lld", (long long)s, (long long)ms);
	return buf;
}

static int key_cmp(const struct gr_key *a, const struct gr_key *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->addr, b->addr, 16);
	if (c != 0)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->proto < b->proto ? -1 : a->proto > b->proto;
}

static const struct gr_graph *sort_g;

static int id_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return key_cmp(&sort_g->e[a].k, &sort_g->e[b].k);
}

/* Ids of the edges in state (or all, -1), sorted by key; NULL out of memory. */
static uint32_t *sorted_ids(const struct gr_graph *g, int state, size_t *n)
{
	uint32_t *ids = malloc((g->n ? g->n : 1) * sizeof(*ids));

	*n = 0;
	if (ids == NULL)
		return NULL;
	for (size_t i = 0; i < g->n; i++)
		if (g->e[i].state < GR_STATE_MAX && (state < 0 || g->e[i].state == state))
			ids[(*n)++] = (uint32_t)i;
	/* qsort has no context argument; commands run one at a time. */
	sort_g = g;
	qsort(ids, *n, sizeof(*ids), id_cmp);
	sort_g = NULL;
	return ids;
}

static json_t *time_json(int64_t t)
{
	char b[40];
	return t == GR_NEVER ? json_null() : json_string(gr_fmt_time(t, b, sizeof(b)));
}

static json_t *edge_json(const struct gr_edge *e)
{
	struct kl_addr a;
	char ip[KL_ADDR_STRLEN], pr[8];

	gr_key_addr(&e->k, &a);
	return json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:o, s:o, s:s, s:o, s:I, s:I, "
			 "s:{s:I, s:f, s:f, s:f, s:f}}",
			 "src", kl_addr_format(&a, ip, sizeof(ip)), "port", (int)e->k.port,
			 "proto", gr_proto_name(e->k.proto, pr, sizeof(pr)),
			 "state", gr_state_name(e->state), "seen", (json_int_t)e->seen,
			 "windows", (json_int_t)e->windows, "first_seen", time_json(e->first_seen),
			 "last_seen", time_json(e->last_seen), "set_by", gr_by_name(e->by),
			 "set_uid", e->by_uid >= 0 ? json_integer(e->by_uid) : json_null(),
			 "pkts", (json_int_t)(e->pkts & INT64_MAX),
			 "bytes", (json_int_t)(e->bytes & INT64_MAX),
			 "baseline", "observations", (json_int_t)e->eb.n,
			 "ewma_pps", (double)e->eb.ewma[GR_EB_PPS], "peak_pps",
			 (double)e->eb.peak[GR_EB_PPS], "ewma_bps", (double)e->eb.ewma[GR_EB_BPS],
			 "peak_bps", (double)e->eb.peak[GR_EB_BPS]);
}

static void table_head(struct sbuf *t)
{
	sb_printf(t, "%-39s %5s %-6s %-9s %6s %4s %-24s %-24s %6s %-15s %s\n", "SRC", "PORT", "PROTO",
		  "STATE", "SEEN", "WIN", "FIRST_SEEN", "LAST_SEEN", "BL_OBS", "BL_PPS_AVG/PEAK",
		  "SET_BY");
}

static void table_row(struct sbuf *t, const struct gr_edge *e)
{
	struct kl_addr a;
	char ip[KL_ADDR_STRLEN], pr[8], f[40], l[40], by[32], bl[40];

	gr_key_addr(&e->k, &a);
	if (e->by_uid >= 0)
		snprintf(by, sizeof(by), "%s(uid %d)", gr_by_name(e->by), (int)e->by_uid);
	else
		snprintf(by, sizeof(by), "%s", gr_by_name(e->by));
	snprintf(bl, sizeof(bl), "%.1f/%.1f", (double)e->eb.ewma[GR_EB_PPS],
		 (double)e->eb.peak[GR_EB_PPS]);
	sb_printf(t, "%-39s %5u %-6s %-9s %6u %4u %-24s %-24s %6u %-15s %s\n",
		  kl_addr_format(&a, ip, sizeof(ip)), e->k.port,
		  gr_proto_name(e->k.proto, pr, sizeof(pr)), gr_state_name(e->state), e->seen,
		  e->windows, gr_fmt_time(e->first_seen, f, sizeof(f)),
		  gr_fmt_time(e->last_seen, l, sizeof(l)), e->eb.n, bl, by);
}

void gr_cmd_export(const struct gr_graph *g, int state, struct gr_answer *a)
{
	struct sbuf t = { 0 };
	size_t n;
	uint32_t *ids = sorted_ids(g, state, &n);
	json_t *doc = json_object(), *edges = json_array(), *states = json_object();

	memset(a, 0, sizeof(*a));
	if (ids == NULL || doc == NULL || edges == NULL || states == NULL) {
		free(ids);
		json_decref(doc);
		json_decref(edges);
		json_decref(states);
		a->status = KL_ERR_FAILED;
		a->text = strdup("out of memory\n");
		return;
	}
	if (n > 0)
		table_head(&t);
	for (size_t i = 0; i < n; i++) {
		table_row(&t, &g->e[ids[i]]);
		json_array_append_new(edges, edge_json(&g->e[ids[i]]));
	}
	sb_printf(&t, "%zu edge%s", n, n == 1 ? "" : "s");
	if (state >= 0)
		sb_printf(&t, " in state %s", gr_state_name((unsigned)state));
	sb_printf(&t, " (graph:");
	for (unsigned s = 0; s < GR_STATE_MAX; s++) {
		sb_printf(&t, " %s %zu", gr_state_name(s), g->count[s]);
		json_object_set_new(states, gr_state_name(s), json_integer((json_int_t)g->count[s]));
	}
	sb_printf(&t, ")\n");
	json_object_set_new(doc, "edges", edges);
	json_object_set_new(doc, "count", json_integer((json_int_t)n));
	json_object_set_new(doc, "states", states);
	free(ids);
	answer(a, KL_OK, &t, doc);
}

static json_t *short_edge_json(const struct gr_edge *e, const char *missing)
{
	json_t *j = edge_json(e);
	if (j != NULL && missing != NULL)
		json_object_set_new(j, "missing", json_string(missing));
	return j;
}

void gr_cmd_freeze(struct gr_graph *g, int64_t now, bool dry_run, int32_t uid,
		   struct gr_answer *a)
{
	struct gr_freeze_report r;
	struct sbuf t = { 0 };
	size_t nl = 0, nc = 0;
	uint32_t *learned = sorted_ids(g, GR_LEARNED, &nl);
	uint32_t *cand = sorted_ids(g, GR_CANDIDATE, &nc);
	json_t *doc = json_object(), *jl = json_array(), *jc = json_array();

	memset(a, 0, sizeof(*a));
	if (learned == NULL || cand == NULL || doc == NULL || jl == NULL || jc == NULL) {
		free(learned);
		free(cand);
		json_decref(doc);
		json_decref(jl);
		json_decref(jc);
		a->status = KL_ERR_FAILED;
		a->text = strdup("out of memory\n");
		return;
	}
	gr_freeze(g, now, dry_run, uid, &r);
	sb_printf(&t, "%s %zu learned edge%s", dry_run ? "would freeze" : "froze", r.frozen_now,
		  r.frozen_now == 1 ? "" : "s");
	sb_printf(&t, "; baseline %s: %zu frozen + %zu approved\n", dry_run ? "would be" : "now",
		  r.already_frozen + r.frozen_now, r.approved);
	for (size_t i = 0; i < nl; i++) {
		if (i < LIST_MAX_TEXT && dry_run) {
			char k[96];
			sb_printf(&t, "  freeze  %s\n", gr_key_format(&g->e[learned[i]].k, k, sizeof(k)));
		}
		if (i < LIST_MAX_JSON)
			json_array_append_new(jl, short_edge_json(&g->e[learned[i]], NULL));
	}
	if (dry_run && nl > LIST_MAX_TEXT)
		sb_printf(&t, "  ... and %zu more (see --format json)\n", nl - LIST_MAX_TEXT);
	if (r.not_ready > 0)
		sb_printf(&t, "not ready (candidates, %s frozen): %zu\n",
			  dry_run ? "would not be" : "not", r.not_ready);
	for (size_t i = 0; i < nc; i++) {
		char why[160], k[96];
		gr_ready(&g->p, &g->e[cand[i]], now, why, sizeof(why));
		if (i < LIST_MAX_TEXT)
			sb_printf(&t, "  wait    %-40s %s\n", gr_key_format(&g->e[cand[i]].k, k, sizeof(k)),
				  why);
		if (i < LIST_MAX_JSON)
			json_array_append_new(jc, short_edge_json(&g->e[cand[i]], why));
	}
	if (nc > LIST_MAX_TEXT)
		sb_printf(&t, "  ... and %zu more (see --format json)\n", nc - LIST_MAX_TEXT);
	if (r.denied || r.expired)
		sb_printf(&t, "unchanged: %zu denied, %zu expired\n", r.denied, r.expired);
	if (!dry_run && r.frozen_now == 0 && r.already_frozen + r.approved == 0)
		sb_printf(&t, "warning: the baseline is empty; in frozen-enforce every path would be "
			  "a violation\n");
	json_object_set_new(doc, "dry_run", json_boolean(dry_run));
	json_object_set_new(doc, "frozen", json_integer((json_int_t)r.frozen_now));
	json_object_set_new(doc, "already_frozen", json_integer((json_int_t)r.already_frozen));
	json_object_set_new(doc, "approved", json_integer((json_int_t)r.approved));
	json_object_set_new(doc, "denied", json_integer((json_int_t)r.denied));
	json_object_set_new(doc, "expired", json_integer((json_int_t)r.expired));
	json_object_set_new(doc, "not_ready", json_integer((json_int_t)r.not_ready));
	json_object_set_new(doc, dry_run ? "would_freeze" : "froze_edges", jl);
	json_object_set_new(doc, "not_ready_edges", jc);
	free(learned);
	free(cand);
	answer(a, KL_OK, &t, doc);
}

void gr_cmd_set(struct gr_graph *g, const struct kl_addr *src, bool all_ports, uint16_t port,
		uint8_t proto, enum gr_state to, int32_t uid, int64_t now, struct gr_answer *a)
{
	struct sbuf t = { 0 };
	char why[256], ip[KL_ADDR_STRLEN], pr[8];
	long n = gr_set_source(g, src, all_ports, port, proto, to, uid, now, why, sizeof(why));
	const char *verb = to == GR_APPROVED ? "approved" : "denied";

	memset(a, 0, sizeof(*a));
	kl_addr_format(src, ip, sizeof(ip));
	if (n < 0) {
		sb_printf(&t, "%s\n", why);
		answer(a, KL_ERR_INVALID, &t, NULL);
		return;
	}
	size_t total = 0;
	struct gr_key k;
	gr_key_of(&g->p, src, port, proto, &k);
	size_t any = 0;
	for (size_t i = 0; i < g->n; i++) {
		const struct gr_edge *e = &g->e[i];
		if (e->state >= GR_STATE_MAX || e->k.family != k.family ||
		    memcmp(e->k.addr, k.addr, 16) != 0)
			continue;
		any++;
		if (to == GR_APPROVED ? gr_in_baseline(e) : e->state == GR_DENIED)
			total++;
	}
	if (all_ports && any == 0) {
		sb_printf(&t, "no edges from %s in the graph; name one with --port N --proto P to %s "
			  "it before it is seen\n", ip, to == GR_APPROVED ? "approve" : "deny");
		answer(a, KL_ERR_NOTFOUND, &t, NULL);
		return;
	}
	if (all_ports)
		sb_printf(&t, "%s %ld edge%s of %s (%zu of its %zu edges %s now)\n", verb, n,
			  n == 1 ? "" : "s", ip, total, any,
			  to == GR_APPROVED ? "in the baseline" : "denied");
	else
		sb_printf(&t, "%s %s %u/%s%s\n", verb, ip, k.port,
			  gr_proto_name(k.proto, pr, sizeof(pr)), n == 0 ? " (it already was)" : "");
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I}", "src", ip, "state", gr_state_name(to),
				"changed", (json_int_t)n, "edges", (json_int_t)any,
				to == GR_APPROVED ? "in_baseline" : "denied", (json_int_t)total);
	answer(a, KL_OK, &t, doc);
}

void gr_cmd_violations(const struct gr_viol_row *v, size_t n, struct gr_answer *a)
{
	struct sbuf t = { 0 };
	json_t *doc = json_object(), *arr = json_array();

	memset(a, 0, sizeof(*a));
	if (doc == NULL || arr == NULL) {
		json_decref(doc);
		json_decref(arr);
		a->status = KL_ERR_FAILED;
		a->text = strdup("out of memory\n");
		return;
	}
	if (n > 0)
		sb_printf(&t, "%-24s %-39s %5s %-6s %-7s %s\n", "TIME", "SRC", "PORT", "PROTO", "MODE",
			  "ACTION");
	for (size_t i = 0; i < n; i++) {
		struct kl_addr ad;
		char ip[KL_ADDR_STRLEN], pr[8], tb[40];
		const char *mode = v[i].mode == GR_MODE_ENFORCE ? "enforce" : "observe";
		const char *act = gr_action_name(v[i].action);

		gr_key_addr(&v[i].k, &ad);
		kl_addr_format(&ad, ip, sizeof(ip));
		const char *proto = gr_proto_name(v[i].k.proto, pr, sizeof(pr));
		gr_fmt_time(v[i].t_ms, tb, sizeof(tb));
		sb_printf(&t, "%-24s %-39s %5u %-6s %-7s %s\n", tb, ip, v[i].k.port, proto, mode, act);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:i, s:s, s:s, s:s}", "time", tb,
						     "t_ms", (json_int_t)v[i].t_ms, "src", ip,
						     "port", (int)v[i].k.port, "proto", proto,
						     "mode", mode, "action", act));
	}
	sb_printf(&t, "%zu violation%s\n", n, n == 1 ? "" : "s");
	json_object_set_new(doc, "violations", arr);
	json_object_set_new(doc, "count", json_integer((json_int_t)n));
	answer(a, KL_OK, &t, doc);
}

const char *gr_viol_json(const struct gr_viol *v, char *buf, size_t len)
{
	struct kl_addr a;
	char ip[KL_ADDR_STRLEN], pr[8], tb[32];

	gr_key_addr(&v->k, &a);
	snprintf(buf, len,
		 "{\"t\": %s, \"src\": \"%s\", \"port\": %u, \"proto\": \"%s\", \"mode\": \"%s\", "
		 "\"action\": \"%s\"}",
		 gr_fmt_t(v->t_ms, tb, sizeof(tb)), kl_addr_format(&a, ip, sizeof(ip)), v->k.port,
		 gr_proto_name(v->k.proto, pr, sizeof(pr)),
		 v->mode == GR_MODE_ENFORCE ? "enforce" : "observe",
		 gr_action_name(v->action));
	return buf;
}
