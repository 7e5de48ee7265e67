/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Exemptions (whitelist, feedback, ttl/until, reloads), the JSON-lines
 * trace reader, and replay end to end through dec_run_tick().
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

#include "common/log.h"
#include "decider/decider.h"
#include "decider/exempt.h"
#include "decider/io.h"

static bool errs_have(const struct kl_errs *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i], needle) != NULL)
			return true;
	return false;
}

#define ASSERT_ERR(e, s)                                                   \
	do {                                                               \
		if (!errs_have((e), (s))) {                                \
			for (size_t i_ = 0; i_ < (e)->n; i_++)             \
				fprintf(stderr, "  err: %s\n", (e)->v[i_]); \
			fail_msg("no error containing \"%s\"", (s));       \
		}                                                          \
	} while (0)

static struct kl_addr A(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_cidr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static void test_whitelist_parse(void **state)
{
	(void)state;
	const char *text = "# office NAT\n203.0.113.7\n  198.18.0.0/24   # lab\n\n2001:db8::1\n"
			   "2001:db8::/64\r\n";
	struct dec_exempt_list l;
	struct kl_errs e = { 0 };
	assert_int_equal(dec_whitelist_parse(text, strlen(text), "wl.txt", &l, &e), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[1].net.prefixlen, 24);
	assert_int_equal(l.v[3].net.family, 6);
	dec_exempt_list_free(&l);

	const char *bad = "203.0.113.7\n1.2.3\n10.0.0.0/33\nhello world\n";
	assert_int_equal(dec_whitelist_parse(bad, strlen(bad), "wl.txt", &l, &e), -1);
	ASSERT_ERR(&e, "wl.txt:2:");
	ASSERT_ERR(&e, "wl.txt:3:");
	ASSERT_ERR(&e, "wl.txt:4:");
	assert_int_equal(e.n, 3);
	assert_int_equal(l.n, 0);
	kl_errs_free(&e);
}

static void test_feedback_parse(void **state)
{
	(void)state;
	const char *text =
		"[{\"target\":\"203.0.113.7\",\"action\":\"forgive\",\"ttl\":\"24h\",\"notes\":\"NAT\"},\n"
		" {\"target\":\"198.51.100.0/24\",\"action\":\"whitelist\",\"until\":\"2026-06-01T00:00:00Z\"}]";
	struct dec_exempt_list l;
	struct kl_errs e = { 0 };
	assert_int_equal(dec_feedback_parse(text, strlen(text), "fb.json", &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].kind, DEC_EX_FORGIVE);
	assert_int_equal(l.v[0].ttl_ms, 24LL * 3600 * 1000);
	assert_int_equal(l.v[1].kind, DEC_EX_WHITELIST);
	assert_int_equal(l.v[1].until_ms, 1780272000000LL);
	assert_string_equal(l.v[0].notes, "NAT");
	dec_exempt_list_free(&l);

	const char *bad =
		"[{\"target\":\"203.0.113.7\",\"action\":\"pardon\"},\n"
		" {\"target\":\"10.0.0.0/8\",\"action\":\"forgive\",\"ttl\":\"1h\",\"until\":\"2026-01-01T00:00:00Z\"},\n"
		" {\"target\":\"nope\",\"action\":\"forgive\"},\n"
		" {\"action\":\"forgive\",\"tll\":\"1h\"},\n"
		" {\"target\":\"10.0.0.1\",\"action\":\"forgive\",\"ttl\":\"-5m\"},\n"
		" {\"target\":\"10.0.0.1\",\"action\":\"forgive\",\"until\":\"tomorrow\"},\n"
		" {\"target\":\"10.0.0.1\",\"action\":\"forgive\",\"ttl\":5}, 7]";
	assert_int_equal(dec_feedback_parse(bad, strlen(bad), "fb.json", &l, &e), -1);
	ASSERT_ERR(&e, "fb.json: entry 1: action 'pardon' is not forgive | whitelist");
	ASSERT_ERR(&e, "fb.json: entry 2: give 'ttl' or 'until', not both");
	ASSERT_ERR(&e, "fb.json: entry 3: target:");
	ASSERT_ERR(&e, "fb.json: entry 4: unknown key 'tll'");
	ASSERT_ERR(&e, "fb.json: entry 5: ttl:");
	ASSERT_ERR(&e, "fb.json: entry 6: until 'tomorrow' is not an RFC 3339 time");
	ASSERT_ERR(&e, "fb.json: entry 7: 'ttl' must be a string");
	ASSERT_ERR(&e, "fb.json: entry 8: expected an object");
	kl_errs_free(&e);

	assert_int_equal(dec_feedback_parse("{\"a\":1}", 7, "fb.json", &l, &e), -1);
	ASSERT_ERR(&e, "fb.json: expected a JSON array");
	kl_errs_free(&e);
	assert_int_equal(dec_feedback_parse("[\n{,}]", 6, "fb.json", &l, &e), -1);
	ASSERT_ERR(&e, "fb.json:2:");
	kl_errs_free(&e);
	/* An empty file is an empty list. */
	assert_int_equal(dec_feedback_parse(" \n", 2, "fb.json", &l, &e), 0);
	assert_int_equal(l.n, 0);
}

static void test_rfc3339(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(kl_rfc3339_parse("1970-01-01T00:02:00Z", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(kl_rfc3339_parse("2026-06-01T02:00:00.5+02:00", &ms), 0);
	assert_int_equal(ms, 1780272000500LL);
	assert_int_equal(kl_rfc3339_parse("2024-02-29T00:00:00Z", &ms), 0);
	assert_int_equal(kl_rfc3339_parse("2023-02-29T00:00:00Z", &ms), -1);
	assert_int_equal(kl_rfc3339_parse("2026-06-01 00:00:00Z", &ms), -1);
	assert_int_equal(kl_rfc3339_parse("2026-06-01T00:00:00", &ms), -1);
	assert_int_equal(kl_rfc3339_parse("2026-13-01T00:00:00Z", &ms), -1);
	assert_int_equal(kl_rfc3339_parse("2026-06-01T00:00:00Zjunk", &ms), -1);
}

static struct dec_exempt_list fb(const char *json)
{
	struct dec_exempt_list l;
	struct kl_errs e = { 0 };
	assert_int_equal(dec_feedback_parse(json, strlen(json), "fb", &l, &e), 0);
	return l;
}

/* A ttl counts from when the entry was first loaded, not from reloads;
 * whitelist beats forgive; expired entries stop counting; CIDRs match. */
static void test_exempt_semantics(void **state)
{
	(void)state;
	struct dec_exempt x;
	struct kl_cidrs rel = { 0 };
	dec_exempt_init(&x);
	struct dec_exempt_list l =
		fb("[{\"target\":\"203.0.113.0/24\",\"action\":\"forgive\",\"ttl\":\"60s\"},"
		   "{\"target\":\"198.18.0.5\",\"action\":\"whitelist\",\"until\":\"1970-01-01T00:02:00Z\"}]");
	assert_int_equal(dec_exempt_set_feedback(&x, &l, 0, &rel), 0);
	assert_int_equal(rel.n, 1); /* the /24 is released, the host is not */
	struct kl_addr in = A("203.0.113.7"), out = A("203.0.114.7"), wl = A("198.18.0.5");
	assert_int_equal(dec_exempt_lookup(&x, &in, 1000), DEC_EX_FORGIVE);
	assert_int_equal(dec_exempt_lookup(&x, &out, 1000), DEC_EX_NONE);
	assert_int_equal(dec_exempt_lookup(&x, &wl, 1000), DEC_EX_WHITELIST);
	/* Reloaded unchanged at t=50 s: still ends at 60 s. */
	l = fb("[{\"target\":\"203.0.113.0/24\",\"action\":\"forgive\",\"ttl\":\"60s\",\"notes\":\"x\"},"
	       "{\"target\":\"198.18.0.5\",\"action\":\"whitelist\",\"until\":\"1970-01-01T00:02:00Z\"}]");
	assert_int_equal(dec_exempt_set_feedback(&x, &l, 50000, &rel), 0);
	assert_int_equal(rel.n, 1); /* nothing new */
	assert_int_equal(dec_exempt_lookup(&x, &in, 59999), DEC_EX_FORGIVE);
	assert_int_equal(dec_exempt_lookup(&x, &in, 60000), DEC_EX_NONE);
	assert_int_equal(dec_exempt_lookup(&x, &wl, 119999), DEC_EX_WHITELIST);
	assert_int_equal(dec_exempt_lookup(&x, &wl, 120000), DEC_EX_NONE);
	/* A changed entry is new: its ttl starts now. */
	l = fb("[{\"target\":\"203.0.113.0/24\",\"action\":\"forgive\",\"ttl\":\"90s\"}]");
	assert_int_equal(dec_exempt_set_feedback(&x, &l, 70000, &rel), 0);
	assert_int_equal(dec_exempt_lookup(&x, &in, 159999), DEC_EX_FORGIVE);
	assert_int_equal(dec_exempt_lookup(&x, &in, 160000), DEC_EX_NONE);
	/* Whitelist file entries beat feedback forgive. */
	struct dec_exempt_list w;
	struct kl_errs e = { 0 };
	assert_int_equal(dec_whitelist_parse("203.0.113.7\n", 12, "wl", &w, &e), 0);
	assert_int_equal(dec_exempt_set_whitelist(&x, &w, 70000, &rel), 0);
	assert_int_equal(dec_exempt_lookup(&x, &in, 80000), DEC_EX_WHITELIST);
	dec_exempt_free(&x);
	free(rel.v);
}

static void test_filewatch(void **state)
{
	(void)state;
	char path[] = "/tmp/kl_fw_XXXXXX";
	int fd = mkstemp(path);
	struct dec_filewatch w = { 0 };
	assert_true(fd >= 0);
	assert_int_equal(dec_filewatch_changed(&w, path), 1);
	assert_int_equal(dec_filewatch_changed(&w, path), 0);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
	assert_int_equal(dec_filewatch_changed(&w, path), 1);
	unlink(path);
	assert_int_equal(dec_filewatch_changed(&w, path), 1);
	assert_int_equal(dec_filewatch_changed(&w, path), 0);
}

static int read_all(struct dec_input *in, struct kl_errs *e, int *ticks)
{
	struct dec_tick t;
	int r;
	*ticks = 0;
	while ((r = in->next(in, &t, e)) == 1)
		(*ticks)++;
	in->close(in);
	return r;
}

static void test_trace_reader(void **state)
{
	(void)state;
	const char *good =
		"# comment\n"
		"{\"t\": 1.5, \"new_sources\": 5600, \"sources\": [{\"ip\": \"203.0.113.7\", \"pps\": 900, \"syn\": 850}, "
		"{\"ip\": \"2001:db8::1\", \"bps\": 1e6}]}\n"
		"\n"
		"{\"t\": 2.5, \"violations\": [{\"ip\": \"10.0.0.1\", \"port\": 22, \"proto\": \"tcp\", "
		"\"mode\": \"enforce\"}], \"flows\": [{\"src\": \"10.0.0.1\", \"port\": 22}]}\n";
	struct kl_errs e = { 0 };
	struct dec_input *in = dec_input_jsonl_mem(good, strlen(good), "tr", 1000);
	struct dec_tick t;
	assert_int_equal(in->next(in, &t, &e), 1);
	assert_int_equal(t.t_ms, 1500);
	assert_int_equal(t.elapsed_ms, 1000);
	assert_true(t.has_new_sources);
	assert_int_equal(t.new_sources, 5600);
	assert_int_equal(t.nsrc, 2);
	assert_true(t.src[0].pps == 900 && t.src[0].syn == 850 && t.src[0].scan == 0);
	assert_int_equal(t.src[1].addr.family, 6);
	assert_int_equal(in->next(in, &t, &e), 1);
	assert_int_equal(t.elapsed_ms, 1000);
	assert_false(t.has_new_sources);
	assert_int_equal(t.nviol, 1);
	assert_int_equal(t.viol[0].mode, DEC_VIOL_ENFORCE);
	assert_int_equal(t.viol[0].proto, 6);
	assert_int_equal(in->next(in, &t, &e), 0);
	in->close(in);

	const struct {
		const char *text, *want;
	} bad[] = {
		{ "{\"t\": 1}\n{\"t\": 1}\n", "tr:2: t=1.000 does not come after" },
		{ "{\"t\": 1, \"sources\": [{\"ip\": \"1.2.3.4\"}, {\"ip\": \"1.2.3.4\"}]}\n", "tr:1: sources[1]: 1.2.3.4 is listed twice" },
		{ "{\"t\": 1, \"sources\": [{\"ip\": \"1.2.3.4\", \"ppps\": 1}]}\n", "tr:1: sources[0]: unknown key \"ppps\"" },
		{ "{\"t\": 1, \"sources\": [{\"ip\": \"1.2.3.4\", \"pps\": -1}]}\n", "tr:1: sources[0].pps must be a number >= 0" },
		{ "{\"t\": 1, \"sources\": [{\"ip\": \"1.2.3.0/24\"}]}\n", "tr:1: sources[0].ip:" },
		{ "{\"sources\": []}\n", "tr:1: \"t\" is missing" },
		{ "{\"t\": 1, \"colour\": 2}\n", "tr:1: unknown key \"colour\"" },
		{ "{\"t\": 1, \"new_sources\": -3}\n", "tr:1: \"new_sources\" must be a count >= 0" },
		{ "\n\n{\"t\": 1,}\n", "tr:3: column" },
		{ "[1,2]\n", "tr:1: expected a JSON object per line" },
		{ "KLM1\x01\x02\x03\n", "binary data" },
		{ "{\"t\": 1, \"violations\": [{\"ip\": \"1.2.3.4\", \"mode\": \"panic\"}]}\n", "violations[0].mode" },
		{ "{\"t\": 1, \"whitelist\": [\"10.0.0.0/8\", \"bogus\"]}\n", "tr:1:2:" },
		{ "{\"t\": 1, \"feedback\": [{\"target\": \"1.2.3.4\"}]}\n", "'action' is missing" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n;
		in = dec_input_jsonl_mem(bad[i].text, strlen(bad[i].text), "tr", 1000);
		assert_int_equal(read_all(in, &e, &n), -1);
		ASSERT_ERR(&e, bad[i].want);
		kl_errs_free(&e);
	}
}

/* Replay end to end: config -> decider -> text output, twice, identical;
 * and the exemption extras of a trace. */
static char *replay(const char *trace, const char *const *flags, bool json)
{
	char *argv[32];
	int argc = 0;
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	enum kl_cli_action act;
	char *out = NULL;
	size_t len = 0;

	argv[argc++] = (char *)"kl-decider";
	argv[argc++] = (char *)"--whitelist=";
	argv[argc++] = (char *)"--feedback-file=";
	argv[argc++] = (char *)"--replay=mem";
	for (; *flags != NULL; flags++)
		argv[argc++] = (char *)*flags;
	if (json)
		argv[argc++] = (char *)"--decisions-json";
	assert_int_equal(dec_load_config(argc, argv, &cfg, &act, NULL, &e), 0);
	FILE *m = open_memstream(&out, &len);
	struct dec_sink *sink = dec_sink_print_new(m, cfg.v.decisions_json, cfg.v.dry_run);
	struct dec_input *in = dec_input_jsonl_mem(trace, strlen(trace), "mem", 1000);
	struct dec_decider d;
	assert_int_equal(dec_init(&d, &cfg, sink, (uint64_t)rand(), false), 0);
	if (dec_replay(&d, in, &e) != 0) {
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "%s\n", e.v[i]);
		fail();
	}
	dec_free(&d);
	in->close(in);
	sink->close(sink);
	fclose(m);
	dec_config_free(&cfg);
	return out;
}

static char *flood_trace(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	for (int t = 0; t < 60; t++) {
		fprintf(m, "{\"t\": %d, \"sources\": [{\"ip\": \"198.18.0.10\", \"pps\": 40}", t);
		if (t >= 5 && t < 25)
			fprintf(m, ", {\"ip\": \"203.0.113.7\", \"pps\": 9000, \"syn\": 8500}");
		fprintf(m, "]");
		if (t == 30)
			fprintf(m, ", \"feedback\": [{\"target\": \"203.0.113.0/24\", \"action\": \"forgive\", \"ttl\": \"10s\"}]");
		fprintf(m, "}\n");
	}
	fclose(m);
	return buf;
}

static void test_replay_end_to_end(void **state)
{
	(void)state;
	char *trace = flood_trace();
	const char *const none[] = { NULL };
	char *a = replay(trace, none, false);
	char *b = replay(trace, none, false);
	assert_string_equal(a, b); /* same input and flags: same bytes */
	assert_non_null(strstr(a, "t=7.0 STATE 203.0.113.7 OBSERVE->RATE_SOFT strikes=3 sev=1.80 reason=strikes>=soft_at\n"));
	assert_non_null(strstr(a, "t=7.0 ACTION ip=203.0.113.7 OBSERVE->RATE_SOFT dry_run=true action=rate_limit rate=20 burst=40 ttl=1m\n"));
	assert_non_null(strstr(a, "t=12.0 STATE 203.0.113.7 RATE_SOFT->RATE_HARD"));
	/* The forgive at t=30 releases it at once. */
	assert_non_null(strstr(a, "t=30.0 STATE 203.0.113.7 RATE_HARD->OBSERVE strikes=0 sev=0.00 reason=forgive\n"));
	assert_null(strstr(a, "198.18.0.10"));
	char *j = replay(trace, none, true);
	assert_non_null(strstr(j, "{\"t\": 7.0, \"ip\": \"203.0.113.7\", \"from\": \"OBSERVE\", \"to\": \"RATE_SOFT\", \"severity\": 1.80, \"strikes\": 3, \"reason\": \"strikes>=soft_at\"}\n"));
	/* Flags change the outcome. */
	const char *const ctl[] = { "--profile", "ziti-controller", "--dry-run=false", NULL };
	char *c = replay(trace, ctl, false);
	assert_non_null(strstr(c, "t=6.0 STATE 203.0.113.7 OBSERVE->RATE_HARD"));
	assert_non_null(strstr(c, "dry_run=false"));
	free(trace);
	free(a);
	free(b);
	free(j);
	free(c);
}

/* Live reloads: the whitelist file is re-read when it changes (checked
 * every --whitelist-reload), a broken edit keeps the previous content, and
 * SIGUSR1 (dec_request_reload) reloads at once. */
static void test_reload(void **state)
{
	(void)state;
	char wl[] = "/tmp/kl_wl_XXXXXX";
	int fd = mkstemp(wl);
	assert_true(fd >= 0);
	close(fd);
	char *flag_wl = NULL;
	assert_true(asprintf(&flag_wl, "--whitelist=%s", wl) > 0);
	char *argv[] = { (char *)"kl-decider", flag_wl, (char *)"--feedback-file=",
			 (char *)"--whitelist-reload=5s", (char *)"--replay=x", NULL };
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	enum kl_cli_action act;
	assert_int_equal(dec_load_config(5, argv, &cfg, &act, NULL, &e), 0);
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	struct dec_sink *sink = dec_sink_print_new(m, false, true);
	struct dec_decider d;
	assert_int_equal(dec_init(&d, &cfg, sink, 1, true), 0);

	struct dec_metrics src;
	memset(&src, 0, sizeof(src));
	src.addr = A("203.0.113.7");
	src.pps = 50000;
	src.syn = 50000;
	struct dec_tick t = { .src = &src, .nsrc = 1, .elapsed_ms = 1000 };
	int64_t now = 0;
	for (; now < 20000; now += 1000) {
		t.t_ms = now;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	assert_non_null(dec_engine_lookup(d.eng, &src.addr));
	assert_int_equal(dec_engine_lookup(d.eng, &src.addr)->level, DEC_LVL_HARD);

	/* A broken edit is refused and the old (empty) list kept. */
	FILE *f = fopen(wl, "w");
	fprintf(f, "203.0.113.0/24\nnot-an-address\n");
	fclose(f);
	for (; now < 27000; now += 1000) {
		t.t_ms = now;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	assert_int_equal(d.ex.wl.n, 0);
	assert_non_null(dec_engine_lookup(d.eng, &src.addr));

	/* A good edit is picked up within --whitelist-reload. The mtime may
	 * not move within one second, so make the size differ. */
	f = fopen(wl, "w");
	fprintf(f, "# fixed\n203.0.113.0/24\n");
	fclose(f);
	int64_t released = -1;
	for (; now < 40000 && released < 0; now += 1000) {
		t.t_ms = now;
		size_t before = len;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
		fflush(m);
		if (len > before && strstr(out + before, "reason=whitelist") != NULL)
			released = now;
	}
	assert_true(released >= 27000 && released <= 33000);
	assert_null(dec_engine_lookup(d.eng, &src.addr));

	/* SIGUSR1: the next tick reloads even though the period has not passed. */
	f = fopen(wl, "w");
	fclose(f);
	dec_request_reload();
	t.t_ms = now;
	assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	assert_int_equal(d.ex.wl.n, 0);
	assert_non_null(dec_engine_lookup(d.eng, &src.addr)); /* scored again */

	dec_free(&d);
	sink->close(sink);
	fclose(m);
	free(out);
	dec_config_free(&cfg);
	unlink(wl);
	free(flag_wl);
}

int main(void)
{
	kl_log_init("test_decider_exempt", KL_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whitelist_parse),
		cmocka_unit_test(test_feedback_parse),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_exempt_semantics),
		cmocka_unit_test(test_filewatch),
		cmocka_unit_test(test_trace_reader),
		cmocka_unit_test(test_replay_end_to_end),
		cmocka_unit_test(test_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
