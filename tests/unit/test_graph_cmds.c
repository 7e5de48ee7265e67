/* SPDX-License-Identifier: MPL-2.0 */
/* kl-graphd's command line, the operator commands' answers (text and
 * JSON), and the replay readers (JSON lines and binary kl-sensor traces). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graphd/commands.h"
#include "graphd/opts.h"
#include "graphd/replay.h"
#include "ipc/frames.h"
#include "ipc/msg.h"
#include "ipc/trace.h"

#define MIN 60000ll

/* gr_opts_parse with its errors joined into err. */
static int parse_argv(int argc, char **argv, struct gr_opts *o, char *err, size_t errlen)
{
	struct kl_errs e = { 0 };
	int rc = gr_opts_parse(argc, argv, o, &e);
	size_t off = 0;

	err[0] = '\0';
	for (size_t i = 0; i < e.n && off + 1 < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s%s", i ? "; " : "", e.v[i]);
	kl_errs_free(&e);
	return rc;
}

static int parse(struct gr_opts *o, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "kl-graphd";
	/* Hermetic: not the machine's /etc/kernloom files. */
	argv[argc++] = "--config=";
	argv[argc++] = "--pdp-config=";
	va_start(ap, errlen);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return parse_argv(argc, argv, o, err, errlen);
}

static void test_opts_defaults(void **state)
{
	(void)state;
	struct gr_opts o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_DAEMON);
	assert_string_equal(o.db, GR_DB_DEFAULT);
	assert_string_equal(o.run_dir, "/run/kernloom");
	assert_string_equal(o.user, "kernloom-graph");
	assert_int_equal(o.p.mode, GR_MODE_LEARN);
	assert_int_equal(o.p.min_seen, 5);
	assert_int_equal(o.p.min_windows, 3);
	assert_int_equal(o.p.min_age_ms, 10 * MIN);
	assert_int_equal(o.p.promote_every_ms, 5 * MIN);
	assert_int_equal(o.p.window_ms, 5 * MIN); /* follows the promote interval */
	assert_int_equal(o.p.expire_ttl_ms, 720ll * 60 * MIN);
	assert_true(o.p.eb.enabled); /* per-edge baselines */
	assert_int_equal(o.p.eb.min_obs, 30);
	assert_float_equal(o.p.eb.factor, 3.0, 1e-9);
	assert_float_equal(o.p.eb.alpha, 0.05, 1e-9);
	assert_float_equal(o.p.eb.min_pps, 10.0, 1e-9);
	assert_null(o.metrics_file);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "--edge-baseline", "false",
			       "--edge-baseline-min-obs", "7", "--edge-baseline-factor=2.5",
			       "--edge-baseline-alpha", "0.2", "--edge-baseline-min-pps", "0", NULL),
			 0);
	assert_false(o.p.eb.enabled);
	assert_int_equal(o.p.eb.min_obs, 7);
	assert_float_equal(o.p.eb.factor, 2.5, 1e-9);
	assert_float_equal(o.p.eb.alpha, 0.2, 1e-9);
	assert_float_equal(o.p.eb.min_pps, 0.0, 1e-9);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-file", "/tmp/g.prom", NULL), 0);
	assert_string_equal(o.metrics_file, "/tmp/g.prom");
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "--metrics-file=", NULL), 0);
	assert_null(o.metrics_file); /* empty: none, as in every daemon */
	gr_opts_free(&o);
}

static void test_opts_flags(void **state)
{
	(void)state;
	struct gr_opts o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof(err), "--graph-store", "/tmp/x.db", "--run-dir=/tmp/run",
			       "--graph-mode", "frozen-enforce", "--graph-min-seen", "3",
			       "--graph-min-windows=2", "--graph-min-age", "10s",
			       "--graph-promote-interval", "2s", "--graph-expire-ttl", "0",
			       "--graph-exclude-cidrs", "198.18.9.0/24,fd00:6b6c:9::/64,10.0.0.0/8",
			       "--graph-ephemeral-min", "0",
			       "--user", "nobody", NULL), 0);
	assert_string_equal(o.db, "/tmp/x.db");
	assert_string_equal(o.run_dir, "/tmp/run");
	assert_int_equal(o.p.mode, GR_MODE_ENFORCE);
	assert_int_equal(o.p.min_seen, 3);
	assert_int_equal(o.p.min_windows, 2);
	assert_int_equal(o.p.min_age_ms, 10000);
	assert_int_equal(o.p.promote_every_ms, 2000);
	assert_int_equal(o.p.window_ms, 2000);
	assert_int_equal(o.p.expire_ttl_ms, 0);
	assert_int_equal(o.p.ephemeral_min, 0);
	assert_int_equal(o.p.nexclude, 3);
	assert_int_equal(o.p.exclude[1].family, 6);
	assert_int_equal(o.p.exclude[1].prefixlen, 64);
	gr_opts_free(&o);

	assert_int_equal(parse(&o, err, sizeof(err), "--graph-window", "30s",
			       "--graph-promote-interval", "10s", "--replay", "t.jsonl", NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_REPLAY);
	assert_int_equal(o.p.window_ms, 30000);
	gr_opts_free(&o);
}

static void test_opts_commands(void **state)
{
	(void)state;
	struct gr_opts o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof(err), "--graph-store", "g.db", "export", "--state", "frozen",
			       "--format", "json", NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_EXPORT);
	assert_int_equal(o.state, GR_FROZEN);
	assert_true(o.json);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "freeze", "--dry-run", NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_FREEZE);
	assert_true(o.dry_run);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "approve-ip", "fd00:6b6c::7", NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_APPROVE);
	assert_int_equal(o.ip.family, 6);
	assert_false(o.one_edge);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "deny-ip", "198.18.0.7", "--port", "22",
			       "--proto", "tcp", NULL), 0);
	assert_int_equal(o.cmd, GR_CMD_DENY);
	assert_true(o.one_edge);
	assert_int_equal(o.port, 22);
	assert_int_equal(o.proto, 6);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "deny-ip", "198.18.0.7", "--proto", "icmp",
			       NULL), 0);
	assert_true(o.one_edge);
	assert_int_equal(o.proto, 1);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "violations", "--since", "1h", "--limit", "5",
			       NULL), 0);
	assert_int_equal(o.since_ms, 60 * MIN);
	assert_int_equal(o.limit, 5);
	gr_opts_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "backup", "/tmp/b.db", NULL), 0);
	assert_string_equal(o.backup_to, "/tmp/b.db");
	gr_opts_free(&o);
}

static void test_opts_errors(void **state)
{
	(void)state;
	static const struct {
		const char *args[6];
		const char *sub;
	} bad[] = {
		{ { "--graph-mode", "enforce" }, "--graph-mode: 'enforce' is not one of learn" },
		{ { "--graph-min-seen", "0" }, "--graph-min-seen: 0 is out of range" },
		{ { "--graph-min-age", "10" }, "--graph-min-age:" },
		{ { "--graph-exclude-cidrs", "198.18.0.0/33" }, "--graph-exclude-cidrs: item 1" },
		{ { "--graph-rule-ttl", "31d" }, "--graph-rule-ttl: 31d is out of range" },
		{ { "--bogus" }, "--bogus: unknown flag" },
		{ { "--graph-store" }, "--graph-store needs a value" },
		{ { "--graph-store=" }, "--graph-store: must not be empty" },
		{ { "frobnicate" }, "frobnicate: unknown command" },
		{ { "--dry-run" }, "--dry-run: belongs after a command" },
		{ { "export", "--dry-run" }, "--dry-run: not an option of this command" },
		{ { "export", "--state", "gone" }, "--state gone: want candidate" },
		{ { "export", "--format", "xml" }, "--format xml: want table or json" },
		{ { "approve-ip" }, "approve-ip: needs an IP address" },
		{ { "approve-ip", "198.18.0.0/24" }, "approve-ip 198.18.0.0/24" },
		{ { "deny-ip", "198.18.0.1", "--port", "22" }, "--port and --proto go together" },
		{ { "deny-ip", "198.18.0.1", "--port", "2", "--proto", "icmp" }, "only TCP and UDP" },
		{ { "backup" }, "backup: needs a destination FILE" },
		{ { "export", "extra" }, "extra: unexpected argument" },
		{ { "--replay", "t", "export" }, "--replay: cannot be combined" },
		{ { "--edge-baseline=yes" }, "--edge-baseline: expected a boolean" },
		{ { "--edge-baseline-factor", "0.9" }, "--edge-baseline-factor: 0.9 is out of range" },
		{ { "--edge-baseline-alpha", "x" }, "--edge-baseline-alpha: expected a number" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gr_opts o;
		char err[256] = "";
		char *argv[10] = { "kl-graphd", "--config=", "--pdp-config=" };
		int argc = 3;
		for (int k = 0; k < 6 && bad[i].args[k] != NULL; k++)
			argv[argc++] = (char *)bad[i].args[k];
		assert_int_equal(parse_argv(argc, argv, &o, err, sizeof(err)), -1);
		if (strstr(err, bad[i].sub) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].sub);
		gr_opts_free(&o);
	}
}

/* ---- commands ---- */

static void build(struct gr_graph *g)
{
	struct gr_params p;
	char why[128];
	gr_params_default(&p);
	assert_int_equal(gr_init(g, &p), 0);
	for (int i = 0; i < 12; i++) {
		struct gr_obs o[2];
		memset(o, 0, sizeof(o));
		kl_addr_parse("198.18.0.2", &o[0].src, NULL, 0);
		o[0].port = 8080;
		o[0].proto = 6;
		o[0].pkts = 1;
		kl_addr_parse("fd00:6b6c::2", &o[1].src, NULL, 0);
		o[1].port = 53;
		o[1].proto = 17;
		o[1].pkts = 1;
		assert_int_equal(gr_tick(g, i * MIN, o, i < 3 ? 2 : 1, NULL, 0), 0);
		gr_flushed(g);
	}
	struct kl_addr a;
	kl_addr_parse("198.18.0.3", &a, NULL, 0);
	gr_set_source(g, &a, false, 22, 6, GR_APPROVED, 0, 0, why, sizeof(why));
}

static void test_export(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_answer a;
	build(&g);
	gr_cmd_export(&g, -1, &a);
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "SRC"));
	assert_non_null(strstr(a.text, "3 edges (graph: candidate 1 learned 1 frozen 0 approved 1"));
	/* Each edge's baseline, in the table and in JSON (klctl graph export). */
	const struct gr_edge *le = NULL;
	for (size_t i = 0; i < g.n; i++)
		if (g.e[i].state == GR_LEARNED)
			le = &g.e[i];
	assert_non_null(le);
	assert_true(le->eb.n > 0 && le->eb.peak[GR_EB_PPS] > 0.0f);
	char row[96];
	snprintf(row, sizeof(row), " %6u %.1f/%.1f ", le->eb.n, (double)le->eb.ewma[GR_EB_PPS],
		 (double)le->eb.peak[GR_EB_PPS]);
	assert_non_null(strstr(a.text, "BL_OBS BL_PPS_AVG/PEAK"));
	assert_non_null(strstr(a.text, row));
	json_error_t je;
	json_t *doc = json_loads(a.json, 0, &je);
	assert_non_null(doc);
	json_t *edges = json_object_get(doc, "edges");
	assert_int_equal(json_array_size(edges), 3);
	/* Sorted: IPv4 first, by address. */
	json_t *e0 = json_array_get(edges, 0);
	assert_string_equal(json_string_value(json_object_get(e0, "src")), "198.18.0.2");
	assert_int_equal(json_integer_value(json_object_get(e0, "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(e0, "proto")), "tcp");
	assert_string_equal(json_string_value(json_object_get(e0, "state")), "learned");
	assert_int_equal(json_integer_value(json_object_get(e0, "seen")), 12);
	json_t *bl = json_object_get(e0, "baseline");
	assert_int_equal(json_integer_value(json_object_get(bl, "observations")), le->eb.n);
	assert_float_equal(json_real_value(json_object_get(bl, "peak_pps")),
			   le->eb.peak[GR_EB_PPS], 1e-6);
	assert_string_equal(json_string_value(json_object_get(e0, "first_seen")),
			    "1970-01-01T00:00:00.000Z");
	assert_string_equal(json_string_value(json_object_get(e0, "last_seen")),
			    "1970-01-01T00:11:00.000Z");
	json_t *e1 = json_array_get(edges, 1);
	assert_true(json_is_null(json_object_get(e1, "first_seen"))); /* approved, never seen */
	assert_string_equal(json_string_value(json_object_get(e1, "set_by")), "operator");
	json_t *e2 = json_array_get(edges, 2);
	assert_string_equal(json_string_value(json_object_get(e2, "src")), "fd00:6b6c::2");
	assert_string_equal(json_string_value(json_object_get(e2, "proto")), "udp");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "states"),
							    "candidate")), 1);
	json_decref(doc);
	gr_answer_free(&a);

	gr_cmd_export(&g, GR_APPROVED, &a);
	assert_non_null(strstr(a.text, "1 edge in state approved"));
	doc = json_loads(a.json, 0, &je);
	assert_int_equal(json_integer_value(json_object_get(doc, "count")), 1);
	json_decref(doc);
	gr_answer_free(&a);
	gr_free(&g);
}

static void test_freeze_answer(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_answer a;
	build(&g);
	gr_cmd_freeze(&g, 11 * MIN, true, 0, &a);
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "would freeze 1 learned edge;"));
	assert_non_null(strstr(a.text, "freeze  198.18.0.2 8080/tcp"));
	assert_non_null(strstr(a.text, "wait    fd00:6b6c::2 53/udp"));
	assert_non_null(strstr(a.text, "seen 3/5 ticks"));
	json_t *doc = json_loads(a.json, 0, NULL);
	assert_true(json_is_true(json_object_get(doc, "dry_run")));
	assert_int_equal(json_array_size(json_object_get(doc, "would_freeze")), 1);
	json_t *nr = json_array_get(json_object_get(doc, "not_ready_edges"), 0);
	assert_non_null(strstr(json_string_value(json_object_get(nr, "missing")), "seen 3/5"));
	json_decref(doc);
	gr_answer_free(&a);
	assert_int_equal(g.count[GR_FROZEN], 0);

	gr_cmd_freeze(&g, 11 * MIN, false, 0, &a);
	assert_non_null(strstr(a.text, "froze 1 learned edge; baseline now: 1 frozen + 1 approved"));
	gr_answer_free(&a);
	assert_int_equal(g.count[GR_FROZEN], 1);
	gr_free(&g);
}

static void test_set_answer(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_answer a;
	struct gr_freeze_report r;
	struct kl_addr x;
	build(&g);
	kl_addr_parse("198.18.0.99", &x, NULL, 0);
	gr_cmd_set(&g, &x, true, 0, 0, GR_APPROVED, 0, 0, &a);
	assert_int_equal(a.status, KL_ERR_NOTFOUND);
	assert_non_null(strstr(a.text, "no edges from 198.18.0.99"));
	gr_answer_free(&a);
	/* Approving a source takes in its other edges; frozen ones stay frozen. */
	gr_freeze(&g, 11 * MIN, false, 0, &r);
	kl_addr_parse("198.18.0.2", &x, NULL, 0);
	struct gr_obs o = { .src = x, .port = 9, .proto = 17, .pkts = 1 };
	assert_int_equal(gr_tick(&g, 12 * MIN, &o, 1, NULL, 0), 0);
	gr_cmd_set(&g, &x, true, 0, 0, GR_APPROVED, 0, 0, &a);
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "approved 1 edge of 198.18.0.2 (2 of its 2 edges in the "
				       "baseline now)"));
	gr_answer_free(&a);
	struct gr_key k;
	gr_key_of(&g.p, &x, 8080, 6, &k);
	assert_int_equal(gr_find(&g, &k)->state, GR_FROZEN);
	gr_key_of(&g.p, &x, 9, 17, &k);
	assert_int_equal(gr_find(&g, &k)->state, GR_APPROVED);
	/* Denying takes them all. */
	gr_cmd_set(&g, &x, true, 0, 0, GR_DENIED, 0, 0, &a);
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "denied 2 edges of 198.18.0.2 (2 of its 2 edges denied now)"));
	gr_answer_free(&a);
	gr_cmd_set(&g, &x, false, 10, 17, GR_APPROVED, 0, 0, &a);
	assert_non_null(strstr(a.text, "approved 198.18.0.2 10/udp"));
	gr_answer_free(&a);
	gr_cmd_set(&g, &x, false, 10, 17, GR_APPROVED, 0, 0, &a);
	assert_non_null(strstr(a.text, "(it already was)"));
	gr_answer_free(&a);
	kl_addr_parse("224.0.0.1", &x, NULL, 0);
	gr_cmd_set(&g, &x, true, 0, 0, GR_APPROVED, 0, 0, &a);
	assert_int_equal(a.status, KL_ERR_INVALID);
	gr_answer_free(&a);
	gr_free(&g);
}

static void test_violation_lines(void **state)
{
	(void)state;
	struct gr_viol v;
	struct kl_addr a;
	char buf[256];
	memset(&v, 0, sizeof(v));
	kl_addr_parse("fd00:6b6c::1", &a, NULL, 0);
	v.k.family = 6;
	memcpy(v.k.addr, a.addr, 16);
	v.k.port = 9090;
	v.k.proto = 6;
	v.t_ms = 14250;
	v.mode = GR_MODE_ENFORCE;
	v.action = GR_ACT_BLOCK;
	assert_string_equal(gr_viol_json(&v, buf, sizeof(buf)),
			    "{\"t\": 14.25, \"src\": \"fd00:6b6c::1\", \"port\": 9090, \"proto\": "
			    "\"tcp\", \"mode\": \"enforce\", \"action\": \"block\"}");
	char t[32];
	assert_string_equal(gr_fmt_t(14000, t, sizeof(t)), "14.0");
	assert_string_equal(gr_fmt_t(14005, t, sizeof(t)), "14.005");
	assert_string_equal(gr_fmt_t(14500, t, sizeof(t)), "14.5");
	assert_string_equal(gr_fmt_time(GR_NEVER, t, sizeof(t)), "-");
	assert_string_equal(gr_fmt_time(1700000000123ll, t, sizeof(t)), "2023-11-14T22:13:20.123Z");

	struct gr_viol_row rows[1] = { { .t_ms = 1000, .k = v.k, .mode = GR_MODE_OBSERVE,
					 .action = GR_ACT_SIGNAL } };
	struct gr_answer ans;
	gr_cmd_violations(rows, 1, &ans);
	assert_non_null(strstr(ans.text, "fd00:6b6c::1"));
	assert_non_null(strstr(ans.text, " tcp "));
	assert_non_null(strstr(ans.text, "observe signal"));
	json_t *doc = json_loads(ans.json, 0, NULL);
	json_t *r0 = json_array_get(json_object_get(doc, "violations"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "action")), "signal");
	assert_int_equal(json_integer_value(json_object_get(r0, "port")), 9090);
	json_decref(doc);
	gr_answer_free(&ans);
}

/* ---- replay readers ---- */

static int next(struct gr_reader *r, struct gr_tick_in *t, char *err, size_t errlen)
{
	err[0] = '\0';
	return gr_reader_next(r, t, err, errlen);
}

static void test_jsonl_reader(void **state)
{
	(void)state;
	static const char trace[] =
		"# a comment\n"
		"\n"
		"{\"t\": 1.5, \"flows\": [{\"src\": \"198.18.0.1\", \"port\": 443, \"proto\": \"tcp\","
		" \"pkts\": 4, \"bytes\": 400}, {\"src\": \"fd00:6b6c::1\", \"proto\": 58}],"
		" \"sources\": [{\"ip\": \"198.18.0.9\", \"pps\": 10, \"droprl\": 2},"
		" {\"ip\": \"198.18.0.1\", \"droprl\": 0}], \"violations\": []}\n"
		"{\"t\": 2, \"flows\": [{\"src\": \"198.18.0.1\", \"port\": 443, \"proto\": 17}]}\n"
		"{\"t\": 3, \"flows\": [{\"src\": \"198.18.0.7\", \"port\": 22, \"proto\": \"tcp\","
		" \"restricted\": true}, {\"src\": \"198.18.0.8\", \"proto\": \"icmp\","
		" \"restricted\": false}]}\n";
	struct gr_reader *r;
	struct gr_tick_in t;
	char err[256];
	assert_int_equal(gr_reader_mem(&r, trace, strlen(trace), "mem", err, sizeof(err)), 0);
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.t_ms, 1500);
	assert_int_equal(t.nobs, 2);
	assert_int_equal(t.obs[0].port, 443);
	assert_int_equal(t.obs[0].proto, 6);
	assert_int_equal(t.obs[0].pkts, 4);
	assert_int_equal(t.obs[0].bytes, 400);
	assert_int_equal(t.obs[1].src.family, 6);
	assert_int_equal(t.obs[1].proto, 58);
	assert_int_equal(t.nsusp, 1);
	assert_int_equal(t.susp[0].addr[3], 9);
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.t_ms, 2000);
	assert_int_equal(t.obs[0].proto, 17);
	assert_int_equal(t.nsusp, 0);
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.nobs, 2);
	assert_int_equal(t.nsusp, 1); /* the flow flagged restricted by the sensor */
	assert_int_equal(t.susp[0].addr[3], 7);
	assert_int_equal(next(r, &t, err, sizeof(err)), 0);
	gr_reader_close(r);

	static const struct { const char *line; const char *sub; } bad[] = {
		{ "{\"flows\": []}", "mem:1: \"t\" is missing" },
		{ "{\"t\": -1}", "\"t\" must be a number" },
		{ "{\"t\": 1, \"bogus\": 1}", "unknown key \"bogus\"" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": 6, \"restricted\": 1}]}",
		  "flows[0].restricted must be true or false" },
		{ "{\"t\": 1, \"flows\": {}}", "\"flows\" must be an array" },
		{ "{\"t\": 1, \"flows\": [{\"port\": 1, \"proto\": \"tcp\"}]}", "needs \"src\"" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"1.2.3\", \"proto\": \"tcp\"}]}", "flows[0].src" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": \"sctpx\"}]}",
		  "flows[0].proto must be" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": 1, \"port\": 3}]}",
		  "only TCP and UDP have ports" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": 6, \"port\": 70000}]}",
		  "flows[0].port must be 0..65535" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": 6, \"pkts\": -1}]}",
		  "flows[0].pkts must be a number" },
		{ "{\"t\": 1, \"flows\": [{\"src\": \"198.18.0.1\", \"proto\": 6, \"x\": 1}]}",
		  "flows[0]: unknown key \"x\"" },
		{ "{\"t\": 1, \"sources\": [{\"ip\": \"198.18.0.1\", \"droprl\": \"a\"}]}",
		  "sources[0].droprl" },
		{ "{\"t\": 2}\n{\"t\": 2}", "mem:2: t=2.000 does not come after" },
		{ "[1, 2]", "expected a JSON object per line" },
		{ "{\"t\": 1,", "mem:1: column" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(gr_reader_mem(&r, bad[i].line, strlen(bad[i].line), "mem", err,
					       sizeof(err)), 0);
		int rc;
		while ((rc = next(r, &t, err, sizeof(err))) == 1)
			;
		assert_int_equal(rc, -1);
		if (strstr(err, bad[i].sub) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].sub);
		gr_reader_close(r);
	}
}

static void append_flows(struct kl_trace_writer *w, uint64_t tick, uint64_t t_ns,
			 const struct kl_flow_rec *f, size_t n)
{
	struct kl_frame fr = { 0 };
	struct kl_flows_hdr h = { .tick = tick, .t_ns = t_ns, .elapsed_ns = 1000000000 };
	char err[256];
	assert_int_equal(kl_frame_begin_flows(&fr, tick, &h), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kl_frame_add_flow(&fr, &f[i]), 0);
	kl_frame_end(&fr);
	assert_int_equal(kl_trace_append(w, fr.buf, fr.len, err, sizeof(err)), 0);
	kl_frame_free(&fr);
}

static void append_telem(struct kl_trace_writer *w, uint64_t tick, uint64_t t_ns,
			 const struct kl_src_rate *s, size_t n)
{
	struct kl_frame fr = { 0 };
	struct kl_telem_hdr h;
	char err[256];
	memset(&h, 0, sizeof(h));
	h.tick = tick;
	h.t_ns = t_ns;
	h.elapsed_ns = 1000000000;
	assert_int_equal(kl_frame_begin_telem(&fr, tick, &h), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kl_frame_add_src(&fr, &s[i]), 0);
	kl_frame_end(&fr);
	assert_int_equal(kl_trace_append(w, fr.buf, fr.len, err, sizeof(err)), 0);
	kl_frame_free(&fr);
}

/* A kl-sensor recording: FLOWS frames are ticks, TELEMETRY drops mark
 * suspicious sources for the FLOWS of the same sensor tick. */
static void test_binary_reader(void **state)
{
	(void)state;
	char path[] = "/tmp/kl-graphtrace.XXXXXX", err[256], note[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	struct kl_trace_writer *w;
	assert_int_equal(kl_trace_open(&w, path, note, sizeof(note), err, sizeof(err)), 0);
	struct kl_flow_rec f[2];
	memset(f, 0, sizeof(f));
	f[0].family = 4;
	f[0].addr[0] = 198; f[0].addr[1] = 18; f[0].addr[3] = 1;
	f[0].port = 8080; f[0].proto = 6; f[0].pkts = 5; f[0].bytes = 300;
	f[1].family = 6;
	f[1].addr[0] = 0xfd; f[1].addr[15] = 2;
	f[1].port = 0; f[1].proto = 47; f[1].pkts = 1; f[1].bytes = 60;
	struct kl_src_rate s;
	memset(&s, 0, sizeof(s));
	s.family = 4;
	s.addr[0] = 198; s.addr[1] = 18; s.addr[3] = 1;
	s.r[KL_R_DROP_RL] = 4;
	append_telem(w, 1, 5000000000ull, &s, 1);
	append_flows(w, 1, 5000000000ull, f, 2);
	append_flows(w, 2, 4000000000ull, f, 1); /* clock stepped back */
	/* Sensor tick 3: no telemetry, but the sensor flagged the v6 source's
	 * two flows (its source entry says rate-limited): one suspect. */
	struct kl_flow_rec f3[3] = { f[1], f[1], f[0] };
	f3[0].flags = f3[1].flags = KL_FLOW_F_RESTRICTED;
	f3[1].proto = 17;
	f3[1].port = 53;
	append_flows(w, 3, 6000000000ull, f3, 3);
	kl_trace_close(w);

	struct gr_reader *r;
	struct gr_tick_in t;
	assert_int_equal(gr_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.t_ms, 5000);
	assert_int_equal(t.nobs, 2);
	assert_int_equal(t.obs[0].src.family, 4);
	assert_int_equal(t.obs[0].src.prefixlen, 32);
	assert_int_equal(t.obs[0].port, 8080);
	assert_int_equal(t.obs[1].proto, 47);
	assert_int_equal(t.nsusp, 1);
	assert_int_equal(t.susp[0].addr[3], 1);
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.t_ms, 5001); /* forced forward */
	assert_int_equal(t.nsusp, 0);   /* no telemetry for sensor tick 2 */
	assert_int_equal(next(r, &t, err, sizeof(err)), 1);
	assert_int_equal(t.nobs, 3);
	assert_int_equal(t.nsusp, 1);
	assert_int_equal(t.susp[0].family, 6);
	assert_int_equal(t.susp[0].addr[15], 2);
	assert_int_equal(next(r, &t, err, sizeof(err)), 0);
	gr_reader_close(r);

	/* Replayed: the suspicious source's edge is not learned in tick 1. */
	struct gr_graph g;
	struct gr_params p;
	struct gr_replay_stats rs;
	gr_params_default(&p);
	assert_int_equal(gr_init(&g, &p), 0);
	assert_int_equal(gr_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(gr_replay(&g, NULL, r, NULL, &rs, err, sizeof(err)), 0);
	assert_int_equal(rs.ticks, 3);
	assert_int_equal(rs.obs, 6);
	/* Only the GRE edge: 198.18.0.1 is held back from tick 1 on, and the
	 * restricted v6 source's new UDP edge of tick 3 is not recorded. */
	assert_int_equal(g.n, 1);
	assert_int_equal(g.last.suspicious, 3); /* every observation of tick 3 */
	gr_reader_close(r);
	gr_free(&g);
	unlink(path);

	assert_int_equal(gr_reader_open(&r, "/nonexistent/t", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/t"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_defaults),
		cmocka_unit_test(test_opts_flags),
		cmocka_unit_test(test_opts_commands),
		cmocka_unit_test(test_opts_errors),
		cmocka_unit_test(test_export),
		cmocka_unit_test(test_freeze_answer),
		cmocka_unit_test(test_set_answer),
		cmocka_unit_test(test_violation_lines),
		cmocka_unit_test(test_jsonl_reader),
		cmocka_unit_test(test_binary_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
