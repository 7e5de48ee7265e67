/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-decider live pieces: telemetry frames -> ticks, binary traces,
 * decisions and their acknowledgements, reconciliation with the enforcer
 * (played here by a fake link that speaks the real wire codecs), and the
 * control commands (sources, forgive and its feedback file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "decider/control.h"
#include "decider/decider.h"
#include "decider/enfsink.h"
#include "decider/engine.h"
#include "ipc/enforce.h"
#include "ipc/frames.h"
#include "ipc/trace.h"

#define S(x) ((int64_t)(x) * 1000)

static struct kl_addr A(const char *s)
{
	struct kl_addr a;
	char err[128];
	if (kl_cidr_parse(s, &a, err, sizeof(err)) < 0)
		fail_msg("bad address %s: %s", s, err);
	return a;
}

static bool same(const struct kl_addr *a, const char *s)
{
	struct kl_addr b = A(s);
	return dec_addr_cmp(a, &b) == 0;
}

/* ---- stderr capture (kl_log writes there) ---- */

static int saved_fd = -1;
static char cap_path[64];

static void capture_start(void)
{
	kl_log_init("test", KL_LOG_INFO);
	snprintf(cap_path, sizeof(cap_path), "/tmp/kl_cap_XXXXXX");
	int fd = mkstemp(cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	fflush(stderr);
	kl_log_init("test", KL_LOG_WARN);
	dup2(saved_fd, 2);
	close(saved_fd);
	FILE *f = fopen(cap_path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(cap_path);
	return buf;
}

/* ---- frames and traces ---- */

static void src_rate(const char *ip, double base, struct kl_src_rate *r)
{
	struct kl_addr a = A(ip);
	memset(r, 0, sizeof(*r));
	r->family = a.family;
	memcpy(r->addr, a.addr, 16);
	/* Every field its own value, so a mixed-up field is caught. */
	for (int k = 0; k < KL_R_MAX; k++)
		r->r[k] = base + k;
}

static void telem_frame(struct kl_frame *f, uint64_t tick, uint64_t t_ns,
			const struct kl_src_rate *r, size_t n)
{
	struct kl_telem_hdr h;
	memset(&h, 0, sizeof(h));
	h.tick = tick;
	h.t_ns = t_ns;
	h.elapsed_ns = 1000000000ull;
	h.n_totals = 3;
	h.totals[0] = 100 * tick;
	h.totals[1] = 200 * tick;
	h.totals[2] = 300 * tick;
	assert_int_equal(kl_frame_begin_telem(f, tick, &h), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kl_frame_add_src(f, &r[i]), 0);
	kl_frame_end(f);
}

static void test_frame_to_metrics(void **state)
{
	(void)state;
	struct kl_frame f = { 0 };
	struct kl_src_rate r[2];
	struct kl_msg msg;
	struct kl_telem_view v;
	struct dec_metrics m[2];
	char err[256];

	src_rate("198.18.0.1", 1000, &r[0]);
	src_rate("fd00:6b6c::2", 50, &r[1]);
	telem_frame(&f, 7, 1767225600123456789ull, r, 2);
	assert_int_equal(kl_msg_decode(f.buf, f.len, &msg, err, sizeof(err)), 0);
	assert_int_equal(kl_telem_decode(msg.payload, msg.payload_len, &v, err, sizeof(err)), 0);
	assert_int_equal(dec_metrics_from_telem(&v, m), 2);
	assert_true(same(&m[0].addr, "198.18.0.1"));
	assert_int_equal(m[0].addr.prefixlen, 32);
	assert_true(same(&m[1].addr, "fd00:6b6c::2"));
	assert_int_equal(m[1].addr.prefixlen, 128);
	assert_true(m[0].pps == 1000 + KL_R_PPS);
	assert_true(m[0].bps == 1000 + KL_R_BPS);
	assert_true(m[0].syn == 1000 + KL_R_SYN);
	assert_true(m[0].scan == 1000 + KL_R_SCAN);
	assert_true(m[0].droprl == 1000 + KL_R_DROP_RL);
	assert_true(m[1].syn == 50 + KL_R_SYN);
	kl_frame_free(&f);

	/* The tick clock: Unix ms of t_ns, always moving forward. */
	assert_int_equal(dec_frame_tick_ms(1767225600123456789ull, DEC_T_NEVER), 1767225600123);
	assert_int_equal(dec_frame_tick_ms(5000000000ull, 4000), 5000);
	assert_int_equal(dec_frame_tick_ms(5000000000ull, 5000), 5001);
	assert_int_equal(dec_frame_tick_ms(3000000000ull, 5000), 5001);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/kl_live_XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A flood from 203.0.113.7 (t = 10..29 s) among two quiet sources, written
 * as a binary trace (with FLOWS frames in between, as kl-sensor records
 * them) and as the equivalent JSON-lines trace. */
static void write_traces(const char *bin, const char *jsonl)
{
	struct kl_trace_writer *w;
	char note[256], err[256];
	FILE *j = fopen(jsonl, "w");
	assert_non_null(j);
	assert_int_equal(kl_trace_open(&w, bin, note, sizeof(note), err, sizeof(err)), 0);
	for (int t = 1; t <= 60; t++) {
		struct kl_src_rate r[3];
		size_t n = 0;
		memset(r, 0, sizeof(r));
		for (int k = 0; k < 2; k++) {
			struct kl_addr a = A(k == 0 ? "198.18.0.10" : "fd00:6b6c::10");
			r[n].family = a.family;
			memcpy(r[n].addr, a.addr, 16);
			r[n].r[KL_R_PPS] = 40;
			r[n].r[KL_R_BPS] = 4000;
			n++;
		}
		bool flood = t >= 10 && t < 30;
		if (flood) {
			struct kl_addr a = A("203.0.113.7");
			r[n].family = 4;
			memcpy(r[n].addr, a.addr, 16);
			r[n].r[KL_R_PPS] = 9000;
			r[n].r[KL_R_BPS] = 540000;
			r[n].r[KL_R_SYN] = 8500;
			r[n].r[KL_R_SCAN] = 3;
			r[n].r[KL_R_DROP_RL] = t >= 20 ? 8000 : 0;
			n++;
		}
		struct kl_frame f = { 0 };
		telem_frame(&f, (uint64_t)t, (uint64_t)t * 1000000000ull, r, n);
		assert_int_equal(kl_trace_append(w, f.buf, f.len, err, sizeof(err)), 0);
		/* A FLOWS frame, which the decider skips. */
		struct kl_flows_hdr fh = { .tick = (uint64_t)t, .t_ns = (uint64_t)t * 1000000000ull };
		struct kl_flow_rec fr = { .family = 4, .port = 443, .proto = 6, .pkts = 5, .bytes = 500 };
		memcpy(fr.addr, r[0].addr, 16);
		assert_int_equal(kl_frame_begin_flows(&f, (uint64_t)t, &fh), 0);
		assert_int_equal(kl_frame_add_flow(&f, &fr), 0);
		kl_frame_end(&f);
		assert_int_equal(kl_trace_append(w, f.buf, f.len, err, sizeof(err)), 0);
		kl_frame_free(&f);

		fprintf(j, "{\"t\": %d, \"sources\": [{\"ip\": \"198.18.0.10\", \"pps\": 40, "
			   "\"bps\": 4000}, {\"ip\": \"fd00:6b6c::10\", \"pps\": 40, \"bps\": 4000}",
			t);
		if (flood)
			fprintf(j, ", {\"ip\": \"203.0.113.7\", \"pps\": 9000, \"bps\": 540000, "
				   "\"syn\": 8500, \"scan\": 3, \"droprl\": %d}",
				t >= 20 ? 8000 : 0);
		fprintf(j, "]}\n");
	}
	kl_trace_close(w);
	fclose(j);
}

static void test_binary_trace_input(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char bin[256], jsonl[256], err[256], note[256];
	struct kl_errs e = { 0 };
	struct dec_tick t;

	snprintf(bin, sizeof(bin), "%s/t.kltrace", dir);
	snprintf(jsonl, sizeof(jsonl), "%s/t.jsonl", dir);
	write_traces(bin, jsonl);

	struct dec_input *in = dec_input_open(bin, 1000, &e);
	assert_non_null(in);
	int ticks = 0;
	while (in->next(in, &t, &e) == 1) {
		ticks++;
		assert_int_equal(t.t_ms, S(ticks));
		assert_int_equal(t.elapsed_ms, 1000);
		assert_int_equal(t.nsrc, ticks >= 10 && ticks < 30 ? 3 : 2);
		assert_int_equal(t.ntotals, 3);
		assert_true(t.totals[2] == 300u * (unsigned)ticks);
		assert_true(same(&t.src[1].addr, "fd00:6b6c::10"));
	}
	assert_int_equal(e.n, 0);
	assert_int_equal(ticks, 60); /* FLOWS frames skipped, not ticks */
	in->close(in);

	/* A torn last record (a crash mid-write) ends the replay cleanly. */
	FILE *f = fopen(bin, "a");
	fwrite("\x40\0\0\0\1\2", 1, 6, f);
	fclose(f);
	in = dec_input_open(bin, 1000, &e);
	ticks = 0;
	capture_start();
	while (in->next(in, &t, &e) == 1)
		ticks++;
	char *log = capture_end();
	assert_int_equal(ticks, 60);
	assert_int_equal(e.n, 0);
	assert_non_null(strstr(log, "replaying the 60 whole ticks before it"));
	free(log);
	in->close(in);

	/* The same opener reads JSON lines. */
	in = dec_input_open(jsonl, 1000, &e);
	assert_non_null(in);
	assert_int_equal(in->next(in, &t, &e), 1);
	assert_int_equal(t.t_ms, 1000);
	assert_null(t.totals);
	in->close(in);

	/* A frame whose clock stepped back still moves the tick clock on. */
	struct kl_trace_writer *w;
	snprintf(bin, sizeof(bin), "%s/back.kltrace", dir);
	assert_int_equal(kl_trace_open(&w, bin, note, sizeof(note), err, sizeof(err)), 0);
	uint64_t ts[3] = { 10000000000ull, 12000000000ull, 11000000000ull };
	for (int i = 0; i < 3; i++) {
		struct kl_frame fr = { 0 };
		telem_frame(&fr, (uint64_t)i + 1, ts[i], NULL, 0);
		assert_int_equal(kl_trace_append(w, fr.buf, fr.len, err, sizeof(err)), 0);
		kl_frame_free(&fr);
	}
	kl_trace_close(w);
	in = dec_input_ktrace_open(bin, &e);
	assert_int_equal(in->next(in, &t, &e), 1);
	assert_int_equal(t.t_ms, 10000);
	assert_int_equal(in->next(in, &t, &e), 1);
	assert_int_equal(t.t_ms, 12000);
	capture_start();
	assert_int_equal(in->next(in, &t, &e), 1);
	log = capture_end();
	assert_int_equal(t.t_ms, 12001);
	assert_non_null(strstr(log, "is not later than the one before"));
	free(log);
	assert_int_equal(in->next(in, &t, &e), 0);
	in->close(in);

	/* Not a trace at all. */
	snprintf(bin, sizeof(bin), "%s/junk", dir);
	f = fopen(bin, "w");
	fwrite("KLTRACE1\x03\0\0\0\0\0\0\0", 1, 16, f);
	fclose(f);
	assert_null(dec_input_open(bin, 1000, &e));
	assert_int_equal(e.n, 1);
	kl_errs_free(&e);
	rm_rf(dir);
	free(dir);
}

static char *run_replay(const char *path, const char *profile)
{
	char *argv[] = { (char *)"kl-decider", (char *)"--whitelist=", (char *)"--feedback-file=",
			 (char *)"--replay=x", (char *)"--profile", (char *)profile, NULL };
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	enum kl_cli_action act;
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(dec_load_config(6, argv, &cfg, &act, NULL, &e), 0);
	FILE *m = open_memstream(&out, &len);
	struct dec_sink *sink = dec_sink_print_new(m, false, true);
	struct dec_input *in = dec_input_open(path, 1000, &e);
	assert_non_null(in);
	struct dec_decider d;
	assert_int_equal(dec_init(&d, &cfg, sink, 7, false), 0);
	assert_int_equal(dec_replay(&d, in, &e), 0);
	dec_free(&d);
	in->close(in);
	sink->close(sink);
	fclose(m);
	dec_config_free(&cfg);
	return out;
}

/* A binary recording and the same ticks as JSON lines decide alike. */
static void test_binary_replay_matches_jsonl(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char bin[256], jsonl[256];
	snprintf(bin, sizeof(bin), "%s/t.kltrace", dir);
	snprintf(jsonl, sizeof(jsonl), "%s/t.jsonl", dir);
	write_traces(bin, jsonl);
	const char *profiles[] = { "generic", "ssh-bastion", "public-web" };
	for (size_t i = 0; i < 3; i++) {
		char *a = run_replay(bin, profiles[i]);
		char *b = run_replay(jsonl, profiles[i]);
		assert_string_equal(a, b);
		assert_non_null(strstr(a, "STATE 203.0.113.7 OBSERVE->"));
		free(a);
		free(b);
	}
	rm_rf(dir);
	free(dir);
}

/* ---- decisions ---- */

static struct dec_engine_params base(void)
{
	struct dec_engine_params p;

	memset(&p, 0, sizeof(p));
	p.trig[DEC_F_PPS] = 100;
	p.w[DEC_F_PPS] = 1.0;
	p.sev_cap = 3.0;
	p.step[0] = 1.0;
	p.step[1] = 2.0;
	p.step[2] = 3.0;
	p.delta[0] = 1;
	p.delta[1] = 1;
	p.delta[2] = 1;
	p.decay_below = 0.25;
	p.at[DEC_LVL_SOFT] = 2;
	p.at[DEC_LVL_HARD] = 4;
	p.at[DEC_LVL_BLOCK] = 6;
	p.up_need = 1;
	p.down_need = 1;
	p.ttl_ms[DEC_LVL_SOFT] = S(60);
	p.ttl_ms[DEC_LVL_HARD] = S(120);
	p.ttl_ms[DEC_LVL_BLOCK] = S(300);
	p.rate[DEC_LVL_SOFT] = 20;
	p.burst[DEC_LVL_SOFT] = 40;
	p.rate[DEC_LVL_HARD] = 5;
	p.burst[DEC_LVL_HARD] = 10;
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

static struct dec_change change(const struct dec_engine_params *p, const char *ip, unsigned from,
			       unsigned to)
{
	struct dec_change c;
	memset(&c, 0, sizeof(c));
	c.addr = A(ip);
	c.from = (uint8_t)from;
	c.to = (uint8_t)to;
	dec_change_fill(p, &c);
	return c;
}

/* The records must pass the enforcer's own decoder. */
static void assert_wire_ok(const struct kl_decision *d, uint32_t n)
{
	uint8_t buf[4096];
	struct kl_decision back[16];
	uint32_t got = 0;
	char err[256] = "";
	assert_true(kl_decisions_len(n) <= sizeof(buf));
	kl_decisions_encode(d, n, buf);
	if (kl_decisions_decode(buf, kl_decisions_len(n), back, 16, &got, err, sizeof(err)) < 0)
		fail_msg("enforcer decoder refused: %s", err);
	assert_int_equal(got, n);
}

static void test_decision_from_change(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct kl_decision d[8];
	struct dec_change c;

	c = change(&p, "198.18.0.1", DEC_LVL_OBSERVE, DEC_LVL_SOFT);
	assert_true(dec_decision_from_change(&c, &d[0]));
	assert_int_equal(d[0].level, KL_DEC_RATE_SOFT);
	assert_int_equal(d[0].rate_pps, 20);
	assert_int_equal(d[0].burst, 40);
	assert_int_equal(d[0].ttl_ms, 60000);

	c = change(&p, "198.18.0.2", DEC_LVL_HARD, DEC_LVL_BLOCK);
	assert_true(dec_decision_from_change(&c, &d[1]));
	assert_int_equal(d[1].level, KL_DEC_BLOCK);
	assert_int_equal(d[1].rate_pps, 0);
	assert_int_equal(d[1].burst, 0);
	assert_int_equal(d[1].ttl_ms, 300000);

	c = change(&p, "fd00:6b6c::3", DEC_LVL_SOFT, DEC_LVL_OBSERVE);
	assert_true(dec_decision_from_change(&c, &d[2]));
	assert_int_equal(d[2].level, KL_DEC_OBSERVE);
	assert_int_equal(d[2].ttl_ms, 0);

	/* The profile's values are clamped into what the enforcer accepts. */
	p.ttl_ms[DEC_LVL_SOFT] = 500;
	p.burst[DEC_LVL_SOFT] = 0;
	p.rate[DEC_LVL_HARD] = 200000000;
	p.ttl_ms[DEC_LVL_HARD] = S(30 * 86400);
	c = change(&p, "198.18.0.4", DEC_LVL_OBSERVE, DEC_LVL_SOFT);
	assert_true(dec_decision_from_change(&c, &d[3]));
	assert_int_equal(d[3].ttl_ms, KL_DEC_TTL_MIN_MS);
	assert_int_equal(d[3].burst, 1);
	c = change(&p, "198.18.0.5", DEC_LVL_SOFT, DEC_LVL_HARD);
	assert_true(dec_decision_from_change(&c, &d[4]));
	assert_int_equal(d[4].rate_pps, KL_DEC_MAX_RATE);
	assert_int_equal(d[4].ttl_ms, KL_DEC_TTL_MAX_MS);
	assert_wire_ok(d, 5);

	/* Policy caps: BLOCK enforced as rate_limit_hard, RATE_SOFT as observe. */
	p = base();
	p.action[DEC_LVL_BLOCK] = DEC_LVL_HARD;
	p.action[DEC_LVL_SOFT] = DEC_LVL_OBSERVE;
	c = change(&p, "198.18.0.6", DEC_LVL_HARD, DEC_LVL_BLOCK);
	assert_true(dec_decision_from_change(&c, &d[0]));
	assert_int_equal(d[0].level, KL_DEC_RATE_HARD);
	assert_int_equal(d[0].rate_pps, 5);
	assert_int_equal(d[0].ttl_ms, 300000); /* the level's TTL, the action's rate */
	c = change(&p, "198.18.0.7", DEC_LVL_OBSERVE, DEC_LVL_SOFT);
	assert_false(dec_decision_from_change(&c, &d[1])); /* nothing to enforce or remove */
	c.reason = DEC_R_REFRESH;
	c.from = DEC_LVL_SOFT;
	dec_change_fill(&p, &c);
	assert_false(dec_decision_from_change(&c, &d[1]));
	c = change(&p, "198.18.0.8", DEC_LVL_HARD, DEC_LVL_SOFT);
	assert_true(dec_decision_from_change(&c, &d[1])); /* takes the hard limit away */
	assert_int_equal(d[1].level, KL_DEC_OBSERVE);
}

static void test_level_of_state(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct kl_state_rec r = { .kind = KL_STATE_RL, .rate_pps = 20, .burst = 40 };

	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_SOFT);
	r.rate_pps = 5;
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_HARD);
	r.rate_pps = 7; /* a rate the profile no longer has: below soft -> hard */
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_HARD);
	r.rate_pps = 50;
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_SOFT);
	r.kind = KL_STATE_DENY;
	r.rate_pps = 0;
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_BLOCK);
	r.kind = KL_STATE_EDGE_DENY;
	assert_int_equal(dec_level_of_state(&p, &r), -1);
	/* BLOCK enforced as a hard limit: a hard-rate entry is RATE_HARD (the
	 * lowest level with that action), a deny still BLOCK. */
	p.action[DEC_LVL_BLOCK] = DEC_LVL_HARD;
	r.kind = KL_STATE_RL;
	r.rate_pps = 5;
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_HARD);
	p.action[DEC_LVL_HARD] = DEC_LVL_SOFT;
	p.action[DEC_LVL_BLOCK] = DEC_LVL_SOFT;
	r.rate_pps = 20;
	assert_int_equal(dec_level_of_state(&p, &r), DEC_LVL_SOFT);
	assert_true(dec_ack_retryable(KL_ACK_RATE_CAP));
	assert_true(dec_ack_retryable(KL_ACK_MAP_FULL));
	assert_false(dec_ack_retryable(KL_ACK_PROTECTED));
	assert_false(dec_ack_retryable(KL_ACK_OPERATOR));
	assert_false(dec_ack_retryable(KL_ACK_INVALID));
}

/* ---- the fake enforcer ---- */

struct refusal {
	struct kl_addr a;
	uint8_t reason;
	int times; /* how many answers still refuse */
};

struct fake {
	struct kl_enf_link l;
	bool down;
	unsigned calls[KL_MSG_TYPE_MAX];
	struct kl_state_rec state[16];
	uint32_t nstate;
	struct refusal refuse[8];
	size_t nrefuse;
	struct kl_decision got[512]; /* every record of every DECISIONS */
	size_t ngot;
	size_t last_batch;           /* index in got where the last batch starts */
	struct kl_release rel;
	uint32_t rel_removed, rel_more;
	bool restarted; /* the next call finds nng reconnected (as clink_call sees it) */
};

static int reply(unsigned type, const uint8_t *p, size_t len, struct kl_msg *out, void **buf)
{
	struct kl_msg_hdr h = { .magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION,
				.type = (uint16_t)type, .payload_len = (uint32_t)len, .seq = 1 };
	uint8_t *b = malloc(KL_MSG_HDR_LEN + len + 1);
	char err[128];
	kl_msg_hdr_encode(&h, b);
	if (len)
		memcpy(b + KL_MSG_HDR_LEN, p, len);
	assert_int_equal(kl_msg_decode(b, KL_MSG_HDR_LEN + len, out, err, sizeof(err)), 0);
	*buf = b;
	return 0;
}

static int fake_call(struct kl_enf_link *l, unsigned type, const uint8_t *p, size_t len,
		     struct kl_msg *out, void **buf, char *err, size_t errlen)
{
	struct fake *f = (struct fake *)l;
	char why[256];

	*buf = NULL;
	if (f->down) {
		snprintf(err, errlen, "cannot connect: Connection refused");
		return -1;
	}
	f->calls[type]++;
	if (f->restarted) {
		f->restarted = false;
		l->reconnected = true;
	}
	switch (type) {
	case KL_MSG_ENFORCED_Q: {
		uint32_t max;
		assert_int_equal(kl_enforced_q_decode(p, len, &max, why, sizeof(why)), 0);
		uint8_t sbuf[KL_BATCH_HDR_LEN + 16 * KL_STATE_REC_LEN];
		kl_state_encode(f->state, f->nstate, false, sbuf);
		return reply(KL_MSG_STATE, sbuf, kl_state_len(f->nstate), out, buf);
	}
	case KL_MSG_DECISIONS: {
		struct kl_decision d[256];
		struct kl_ack a[256];
		uint32_t n = 0;
		if (kl_decisions_decode(p, len, d, 256, &n, why, sizeof(why)) < 0)
			fail_msg("the sink sent a batch the enforcer refuses: %s", why);
		f->last_batch = f->ngot;
		for (uint32_t i = 0; i < n; i++) {
			uint8_t reason = KL_ACK_OK;
			for (size_t k = 0; k < f->nrefuse; k++)
				if (dec_addr_cmp(&f->refuse[k].a, &d[i].addr) == 0 && f->refuse[k].times > 0) {
					f->refuse[k].times--;
					reason = f->refuse[k].reason;
				}
			a[i] = (struct kl_ack){ .status = (uint8_t)kl_ack_reason_status(reason),
						.reason = reason };
			assert_true(f->ngot < 512);
			f->got[f->ngot++] = d[i];
		}
		uint8_t abuf[KL_BATCH_HDR_LEN + 256 * KL_ACK_REC_LEN];
		kl_acks_encode(a, n, abuf);
		return reply(KL_MSG_DECISIONS_ACK, abuf, kl_acks_len(n), out, buf);
	}
	case KL_MSG_RELEASE: {
		assert_int_equal(kl_release_decode(p, len, &f->rel, why, sizeof(why)), 0);
		struct kl_release_ack a = { .removed = f->rel_removed, .more = f->rel_more };
		uint8_t abuf[KL_RELEASE_ACK_LEN];
		kl_release_ack_encode(&a, abuf);
		return reply(KL_MSG_RELEASE_ACK, abuf, sizeof(abuf), out, buf);
	}
	default:
		fail_msg("unexpected %s", kl_msg_type_name(type));
		return -1;
	}
}

static void fake_close(struct kl_enf_link *l)
{
	(void)l; /* on the test's stack */
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->l.call = fake_call;
	f->l.close = fake_close;
}

static const struct kl_decision *batch_find(const struct fake *f, const char *ip)
{
	for (size_t i = f->last_batch; i < f->ngot; i++)
		if (same(&f->got[i].addr, ip))
			return &f->got[i];
	return NULL;
}

static int exempt_4(void *ctx, const struct kl_addr *a)
{
	(void)ctx;
	return same(a, "198.18.0.4") ? DEC_EX_FORGIVE : DEC_EX_NONE;
}

static struct kl_state_rec st_rec(const char *ip, uint8_t kind, uint32_t rate, uint32_t burst,
				  uint64_t left_ms)
{
	struct kl_state_rec r = { .addr = A(ip), .kind = kind, .rate_pps = rate, .burst = burst,
				  .expires_in_ms = left_ms };
	return r;
}

/* Engine tick + sink, as dec_run_tick does it. */
static void tick(struct dec_engine *e, struct dec_sink *s, int64_t now, const struct dec_metrics *m,
		 size_t n, struct dec_changes *ch)
{
	ch->n = 0;
	assert_int_equal(dec_engine_tick(e, now, m, n, NULL, 0, NULL, NULL, ch), 0);
	assert_int_equal(s->apply(s, now, ch->v, ch->n), 0);
}

static void test_reconcile(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes ch = { 0 };
	struct fake f;
	const int64_t t0 = S(1000000);

	fake_init(&f);
	f.state[f.nstate++] = st_rec("198.18.0.1", KL_STATE_RL, 20, 40, 30000);
	f.state[f.nstate++] = st_rec("198.18.0.2", KL_STATE_RL, 5, 10, 100000);
	f.state[f.nstate++] = st_rec("198.18.0.3", KL_STATE_DENY, 0, 0, 200000);
	f.state[f.nstate++] = st_rec("198.18.0.4", KL_STATE_DENY, 0, 0, 200000);
	struct kl_state_rec edge = st_rec("198.18.0.5", KL_STATE_EDGE_DENY, 0, 0, 5000);
	edge.port = 22;
	edge.proto = 6;
	f.state[f.nstate++] = edge;
	struct dec_sink *s = dec_sink_enforcer_new(&f.l, e, exempt_4, NULL);

	capture_start();
	assert_int_equal(dec_sink_enforcer_sync(s, t0), 0);
	char *log = capture_end();
	assert_non_null(strstr(log, "adopted 3 (soft=1 hard=1 block=1)"));
	assert_non_null(strstr(log, "to release 1"));
	free(log);
	const struct dec_src *x;
	struct kl_addr a1 = A("198.18.0.1"), a2 = A("198.18.0.2"), a3 = A("198.18.0.3"),
		       a4 = A("198.18.0.4"), a5 = A("198.18.0.5");
	assert_non_null(x = dec_engine_lookup(e, &a1));
	assert_int_equal(x->level, DEC_LVL_SOFT);
	assert_int_equal(x->enforce_until, t0 + 30000);
	assert_int_equal(x->strikes, p.at[DEC_LVL_SOFT]);
	assert_non_null(x = dec_engine_lookup(e, &a2));
	assert_int_equal(x->level, DEC_LVL_HARD);
	assert_non_null(x = dec_engine_lookup(e, &a3));
	assert_int_equal(x->level, DEC_LVL_BLOCK);
	assert_int_equal(x->enforce_until, t0 + 200000);
	assert_null(dec_engine_lookup(e, &a4)); /* exempt: released, not adopted */
	assert_null(dec_engine_lookup(e, &a5)); /* edges are graphd's business */
	assert_int_equal(dec_sink_enforcer_stats(s)->adopted, 3);
	assert_int_equal(dec_sink_enforcer_stats(s)->pending, 0);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 1);

	/* First tick: the exempt source is released; the adopted ones are not
	 * re-sent (no double apply), only changed when the engine says so. */
	tick(e, s, t0 + 1000, NULL, 0, &ch);
	const struct kl_decision *d4 = batch_find(&f, "198.18.0.4");
	assert_non_null(d4);
	assert_int_equal(d4->level, KL_DEC_OBSERVE);
	assert_null(batch_find(&f, "198.18.0.3"));
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 1);

	/* The BLOCK holds while the enforcer's entry lives, then steps down
	 * one level. */
	int64_t now = t0 + 1000;
	for (now += 1000; now < t0 + 200000; now += 1000) {
		tick(e, s, now, NULL, 0, &ch);
		assert_int_equal(dec_engine_lookup(e, &a3)->level, DEC_LVL_BLOCK);
	}
	tick(e, s, now, NULL, 0, &ch);
	assert_int_equal(dec_engine_lookup(e, &a3)->level, DEC_LVL_HARD);
	const struct kl_decision *d3 = batch_find(&f, "198.18.0.3");
	assert_non_null(d3);
	assert_int_equal(d3->level, KL_DEC_RATE_HARD);

	/* 198.18.0.7 is driven to RATE_HARD while the link is up (pps 150:
	 * +1 strike a tick; then 50: neither high nor low, so it holds). */
	struct dec_metrics m7;
	memset(&m7, 0, sizeof(m7));
	m7.addr = A("198.18.0.7");
	m7.pps = 150;
	while (dec_engine_lookup(e, &m7.addr) == NULL ||
	       dec_engine_lookup(e, &m7.addr)->level < DEC_LVL_HARD)
		tick(e, s, now += 1000, &m7, 1, &ch);
	d3 = batch_find(&f, "198.18.0.7");
	assert_non_null(d3);
	assert_int_equal(d3->level, KL_DEC_RATE_HARD);
	m7.pps = 50;

	/* The enforcer restarts with other maps: after the outage the decider
	 * reconciles again, does not adopt what nobody vouches for, and
	 * re-sends what the enforcer lost. */
	/* The outage is noticed when there is something to send: 198.18.0.8
	 * reaches RATE_SOFT on the second tick. */
	struct dec_metrics mm[2] = { m7, m7 };
	mm[1].addr = A("198.18.0.8");
	mm[1].pps = 150;
	f.down = true;
	capture_start();
	tick(e, s, now += 1000, mm, 2, &ch);
	tick(e, s, now += 1000, mm, 2, &ch);
	assert_int_equal(ch.n, 1);
	f.down = false;
	f.nstate = 0;
	f.state[f.nstate++] = st_rec("198.18.0.9", KL_STATE_RL, 20, 40, 60000);
	mm[1].pps = 50;
	tick(e, s, now += 1000, mm, 2, &ch);
	log = capture_end();
	assert_non_null(strstr(log, "enforcer unreachable"));
	assert_non_null(strstr(log, "enforcer reachable again"));
	assert_non_null(strstr(log, "left to lapse 1"));
	assert_non_null(strstr(log, "to resend 2"));
	free(log);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 2);
	struct kl_addr a9 = A("198.18.0.9");
	assert_null(dec_engine_lookup(e, &a9));
	assert_int_equal(dec_sink_enforcer_stats(s)->adopted, 3);
	assert_int_equal(f.ngot - f.last_batch, 2);
	d3 = batch_find(&f, "198.18.0.7");
	assert_non_null(d3);
	assert_int_equal(d3->level, KL_DEC_RATE_HARD);
	assert_int_equal(d3->rate_pps, 5);
	d3 = batch_find(&f, "198.18.0.8");
	assert_non_null(d3);
	assert_int_equal(d3->level, KL_DEC_RATE_SOFT);

	s->close(s);
	dec_changes_free(&ch);
	dec_engine_free(e);
}

/* The enforcer restarts between two calls and nng reconnects by itself: the
 * next call goes through (kl_client_call says HELLO again), so no outage is
 * seen, but the sink must still reconcile: the new enforcer may hold other
 * maps than the old one (a `reset`, a lost bpffs). */
static void test_silent_reconnect_reconciles(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e = dec_engine_new(&p, 5);
	struct dec_changes ch = { 0 };
	struct dec_metrics m;
	struct fake f;
	int64_t now = S(7000);

	fake_init(&f);
	struct dec_sink *s = dec_sink_enforcer_new(&f.l, e, NULL, NULL);
	assert_int_equal(dec_sink_enforcer_sync(s, now), 0);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 1);
	memset(&m, 0, sizeof(m));
	m.addr = A("198.18.0.1");
	m.pps = 150; /* +1 strike a tick: RATE_SOFT on the second */
	tick(e, s, now += 1000, &m, 1, &ch);
	f.restarted = true;
	capture_start();
	tick(e, s, now += 1000, &m, 1, &ch);
	assert_int_equal(f.calls[KL_MSG_DECISIONS], 1);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 1);
	m.pps = 50; /* neither high nor low: nothing to send */
	tick(e, s, now += 1000, &m, 1, &ch);
	char *log = capture_end();
	assert_non_null(strstr(log, "connection was re-established (restarted?); reconciling"));
	assert_null(strstr(log, "enforcer unreachable"));
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 2);
	assert_false(f.l.reconnected);
	free(log);
	/* And only once. */
	tick(e, s, now += 1000, &m, 1, &ch);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 2);

	s->close(s);
	dec_changes_free(&ch);
	dec_engine_free(e);
}

static void test_acks_and_outages(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e = dec_engine_new(&p, 5);
	struct dec_changes ch = { 0 };
	struct dec_metrics m[3];
	struct fake f;
	int64_t now = S(5000);

	fake_init(&f);
	memset(m, 0, sizeof(m));
	m[0].addr = A("198.18.0.1");
	m[1].addr = A("198.18.0.2");
	m[2].addr = A("198.18.0.3");
	for (int i = 0; i < 3; i++)
		m[i].pps = 150; /* sev 1.5: +1 strike a tick */
	f.refuse[f.nrefuse++] = (struct refusal){ A("198.18.0.1"), KL_ACK_PROTECTED, 100 };
	f.refuse[f.nrefuse++] = (struct refusal){ A("198.18.0.2"), KL_ACK_RATE_CAP, 1 };
	struct dec_sink *s = dec_sink_enforcer_new(&f.l, e, NULL, NULL);

	/* Two ticks: strikes 2 = soft-at, three changes in one batch. */
	tick(e, s, now, m, 3, &ch);
	assert_int_equal(f.ngot, 0);
	capture_start();
	tick(e, s, now += 1000, m, 3, &ch);
	char *log = capture_end();
	assert_int_equal(ch.n, 3);
	assert_int_equal(f.calls[KL_MSG_DECISIONS], 1);
	assert_int_equal(f.ngot, 3);
	const struct dec_enf_stats *st = dec_sink_enforcer_stats(s);
	assert_int_equal(st->applied, 1);
	assert_int_equal(st->refused, 1);
	assert_int_equal(st->retry, 1);
	assert_int_equal(st->pending, 1);
	assert_non_null(strstr(log, "STATE 198.18.0.1 OBSERVE->RATE_SOFT"));
	assert_non_null(strstr(log, "ACTION ip=198.18.0.1 OBSERVE->RATE_SOFT dry_run=false"));
	assert_non_null(strstr(log, "ACTION ip=198.18.0.1 OBSERVE->RATE_SOFT refused reason=protected\n"));
	assert_non_null(strstr(log, "ACTION ip=198.18.0.2 OBSERVE->RATE_SOFT refused reason=rate-cap (will retry)"));
	assert_null(strstr(log, "ip=198.18.0.3 OBSERVE->RATE_SOFT refused"));
	free(log);

	/* The next tick re-sends the quota refusal (at the level it has now),
	 * not the protected one. */
	m[0].pps = m[1].pps = m[2].pps = 50; /* neither high nor low */
	tick(e, s, now += 1000, m, 3, &ch);
	assert_int_equal(ch.n, 0);
	assert_int_equal(f.calls[KL_MSG_DECISIONS], 2);
	assert_int_equal(f.ngot - f.last_batch, 1);
	const struct kl_decision *d = batch_find(&f, "198.18.0.2");
	assert_non_null(d);
	assert_int_equal(d->level, KL_DEC_RATE_SOFT);
	assert_true(d->ttl_ms <= 60000 && d->ttl_ms >= 58000); /* what is left of it */
	assert_int_equal(dec_sink_enforcer_stats(s)->pending, 0);

	/* The enforcer goes away: the tick's changes are kept, the decider
	 * keeps deciding, the outage is logged once. */
	f.down = true;
	for (int i = 0; i < 3; i++)
		m[i].pps = 150;
	capture_start();
	for (int k = 0; k < 2; k++)
		tick(e, s, now += 1000, m, 3, &ch);
	log = capture_end();
	char *first = strstr(log, "enforcer unreachable");
	assert_non_null(first);
	assert_null(strstr(first + 1, "enforcer unreachable"));
	assert_non_null(strstr(log, "RATE_SOFT->RATE_HARD")); /* still deciding */
	free(log);
	assert_false(dec_sink_enforcer_stats(s)->up);
	assert_int_equal(dec_sink_enforcer_stats(s)->pending, 3);
	assert_int_equal(dec_engine_lookup(e, &m[2].addr)->level, DEC_LVL_HARD);

	/* Back: reconcile first, then one record per source at its current
	 * level (not the stale changes). */
	f.down = false;
	size_t before = f.ngot;
	m[0].pps = m[1].pps = m[2].pps = 50;
	tick(e, s, now += 1000, m, 3, &ch);
	assert_int_equal(f.calls[KL_MSG_ENFORCED_Q], 2); /* first use, and after the outage */
	assert_int_equal(f.ngot - before, 3);
	for (int i = 0; i < 3; i++) {
		char ip[KL_ADDR_STRLEN];
		d = batch_find(&f, kl_addr_format(&m[i].addr, ip, sizeof(ip)));
		assert_non_null(d);
		assert_int_equal(d->level, KL_DEC_RATE_HARD);
		assert_int_equal(d->rate_pps, 5);
	}
	assert_true(dec_sink_enforcer_stats(s)->up);

	/* A RELEASE passes the budget and keeps a CIDR queued while more is left. */
	struct kl_addr net = A("198.18.0.0/24");
	uint32_t removed = 0;
	f.rel_removed = 7;
	assert_int_equal(s->release(s, now, &net, 7, &removed), 0);
	assert_int_equal(f.rel.budget, 7);
	assert_true(dec_addr_cmp(&f.rel.prefix, &net) == 0);
	f.rel_more = 1;
	f.rel_removed = 3;
	assert_int_equal(s->release(s, now, &net, 7, &removed), 0);
	assert_true(removed >= 7);
	f.down = true;
	capture_start();
	assert_int_equal(s->release(s, now, &net, 7, &removed), -1);
	free(capture_end());

	s->close(s);
	dec_changes_free(&ch);
	dec_engine_free(e);
}

/* ---- forgive and sources ---- */

static int add_forgive(const char *path, const struct kl_addr *a, int64_t ttl_ms,
		       const char *notes, size_t *n, char *err, size_t errlen)
{
	struct dec_fb_new fe = { .target = a, .kind = DEC_EX_FORGIVE, .ttl_ms = ttl_ms,
				.notes = notes };
	return dec_feedback_add(path, &fe, n, err, errlen);
}

static void test_forgive_file(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[256], tmp[300], err[600];
	struct kl_addr one = A("198.18.0.1"), net = A("198.18.0.0/24");
	size_t n = 0;
	struct stat sb;
	struct dec_exempt_list l;
	struct kl_errs e = { 0 };
	char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/feedback.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* A missing file starts a new array. */
	assert_int_equal(add_forgive(path, &one, 3600000, "klctl forgive by uid 0", &n,
						 err, sizeof(err)),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(stat(tmp, &sb), -1);
	assert_int_equal(dec_read_file(path, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(dec_feedback_parse(buf, len, path, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_true(same(&l.v[0].net, "198.18.0.1"));
	assert_int_equal(l.v[0].kind, DEC_EX_FORGIVE);
	assert_true(l.v[0].has_ttl);
	assert_int_equal(l.v[0].ttl_ms, 3600000);
	assert_string_equal(l.v[0].notes, "klctl forgive by uid 0");
	assert_non_null(strstr(buf, "\"ttl\": \"1h\""));
	dec_exempt_list_free(&l);
	free(buf);

	/* Existing entries stay as they are; the mode is kept. */
	FILE *f = fopen(path, "w");
	fprintf(f, "[\n {\"notes\": \"office\", \"until\": \"2030-01-01T00:00:00Z\", "
		   "\"action\": \"whitelist\", \"target\": \"203.0.113.0/24\"},\n"
		   " {\"target\": \"198.18.0.1\", \"action\": \"forgive\", \"ttl\": \"1h\"}\n]\n");
	fclose(f);
	chmod(path, 0600);
	assert_int_equal(add_forgive(path, &net, 90000, "n2", &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* The same target, action and ttl again: replaced, not duplicated,
	 * and moved to the end. */
	assert_int_equal(add_forgive(path, &one, 3600000, "n3", &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(dec_read_file(path, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(dec_feedback_parse(buf, len, path, &l, &e), 0);
	assert_int_equal(l.n, 3);
	assert_true(same(&l.v[0].net, "203.0.113.0/24"));
	assert_true(l.v[0].has_until);
	assert_string_equal(l.v[0].notes, "office");
	assert_true(same(&l.v[1].net, "198.18.0.0/24"));
	assert_int_equal(l.v[1].ttl_ms, 90000);
	assert_true(same(&l.v[2].net, "198.18.0.1"));
	assert_string_equal(l.v[2].notes, "n3");
	dec_exempt_list_free(&l);
	/* The first entry's key order is the operator's. */
	assert_true(strstr(buf, "\"notes\": \"office\"") < strstr(buf, "\"target\": \"203.0.113.0/24\""));
	free(buf);

	/* A file the decider refuses is not touched. */
	const char *bad[] = { "{\"target\": \"198.18.0.1\"}\n",
			      "[{\"target\": \"198.18.0.300\", \"action\": \"forgive\"}]\n",
			      "[{\"target\": \"198.18.0.3\", \"action\": \"pardon\"}]\n", "[1,\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		err[0] = '\0';
		assert_int_equal(add_forgive(path, &one, 1000, "x", &n, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "feedback.json"));
		assert_int_equal(dec_read_file(path, 1 << 20, &buf, &len, err, sizeof(err)), 0);
		assert_string_equal(buf, bad[i]);
		free(buf);
	}
	/* Blank is empty. */
	f = fopen(path, "w");
	fputs("  \n", f);
	fclose(f);
	assert_int_equal(add_forgive(path, &one, 1000, "x", &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	/* A directory we cannot write to: an error naming the file, no crash. */
	snprintf(path, sizeof(path), "%s/nodir/feedback.json", dir);
	assert_int_equal(add_forgive(path, &one, 1000, "x", &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nodir/feedback.json.tmp"));
	kl_errs_free(&e);
	rm_rf(dir);
	free(dir);
}

struct capture_sink {
	struct dec_sink s;
	struct dec_change v[64];
	size_t n;
};

static int cap_apply(struct dec_sink *s, int64_t t, const struct dec_change *c, size_t n)
{
	struct capture_sink *k = (struct capture_sink *)s;
	(void)t;
	for (size_t i = 0; i < n && k->n < 64; i++)
		if (c[i].reason != DEC_R_REFRESH)
			k->v[k->n++] = c[i];
	return 0;
}

static int cap_release(struct dec_sink *s, int64_t t, const struct kl_addr *c, uint32_t b,
		       uint32_t *removed)
{
	(void)s;
	(void)t;
	(void)c;
	(void)b;
	*removed = 0;
	return 0;
}

static void cap_close(struct dec_sink *s)
{
	(void)s;
}

/* A decider on argv whose changes land in cs (load: read the state file). */
static void start_captured(int argc, char **argv, struct dec_config *cfg, struct capture_sink *cs,
			   struct dec_decider *d, bool load)
{
	struct kl_errs e = { 0 };
	enum kl_cli_action act;
	assert_int_equal(dec_load_config(argc, argv, cfg, &act, NULL, &e), 0);
	*cs = (struct capture_sink){ .s = { cap_apply, cap_release, cap_close } };
	assert_int_equal(dec_init(d, cfg, &cs->s, 9, load), 0);
}

/* klctl baseline show: a heavy client learned through dec_run_tick, an
 * unknown source, and the refusal with --baseline=false. */
static void test_control_baseline(void **state)
{
	(void)state;
	for (int off = 0; off < 2; off++) {
		char *argv[] = { (char *)"kl-decider", (char *)"--whitelist=", (char *)"--feedback-file=",
				 (char *)"--state-file=", (char *)"--profile", (char *)"generic",
				 (char *)(off ? "--baseline=false" : "--baseline=true"), NULL };
		struct dec_config cfg;
		struct kl_errs e = { 0 };
		struct capture_sink cs;
		struct dec_decider d;
		start_captured(7, argv, &cfg, &cs, &d, false);
		struct dec_metrics m;
		memset(&m, 0, sizeof(m));
		m.addr = A("198.18.0.20");
		m.pps = 4500; /* 0.9 x the generic pps trigger */
		struct dec_tick t = { .src = &m, .nsrc = 1, .elapsed_ms = 1000 };
		int64_t now = S(100);
		capture_start();
		for (int i = 0; i < 60; i++) {
			t.t_ms = now += 1000;
			assert_int_equal(dec_run_tick(&d, &t, &e), 0);
		}
		free(capture_end());
		struct kl_ctl_req r = { .cmd = KL_CTL_BASELINE, .addr = A("198.18.0.20") };
		struct dec_ctl_answer a;
		dec_control(&d, &r, 0, now, &a);
		if (off) {
			assert_int_equal(a.status, KL_ERR_REFUSED);
			assert_non_null(strstr(a.text, "--baseline=false"));
		} else {
			assert_int_equal(a.status, KL_OK);
			assert_non_null(strstr(a.text, "promoted"));
			json_error_t je;
			json_t *o = json_loads(a.json, 0, &je);
			assert_non_null(o);
			assert_true(json_is_true(json_object_get(o, "promoted")));
			assert_true(json_is_true(json_object_get(o, "confident")));
			assert_true(json_integer_value(json_object_get(o, "observations")) >= 40);
			json_t *eff = json_object_get(o, "effective_trigger");
			assert_true(json_number_value(json_object_get(eff, "pps")) == 5400.0);
			assert_true(json_number_value(json_object_get(eff, "syn")) == 500.0);
			json_decref(o);
			dec_ctl_answer_free(&a);
			r.addr = A("198.18.0.21");
			dec_control(&d, &r, 0, now, &a);
			assert_int_equal(a.status, KL_OK);
			assert_non_null(strstr(a.text, "no baseline"));
		}
		dec_ctl_answer_free(&a);
		dec_free(&d);
		dec_config_free(&cfg);
		kl_errs_free(&e);
	}
}

static void test_control(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char fb[256], flag[300];
	snprintf(fb, sizeof(fb), "%s/fb.json", dir);
	snprintf(flag, sizeof(flag), "--feedback-file=%s", fb);
	char *argv[] = { (char *)"kl-decider", (char *)"--whitelist=", flag, (char *)"--profile",
			 (char *)"generic", NULL };
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	struct capture_sink cs;
	struct dec_decider d;
	start_captured(5, argv, &cfg, &cs, &d, true);

	struct dec_metrics m[3];
	memset(m, 0, sizeof(m));
	m[0].addr = A("203.0.113.7");
	m[0].pps = 20000;
	m[0].syn = 19000;
	m[0].droprl = 150;
	m[1].addr = A("198.18.0.10");
	m[1].pps = 40;
	m[2].addr = A("fd00:6b6c::10");
	m[2].pps = 30;
	struct dec_tick t = { .src = m, .nsrc = 3, .elapsed_ms = 1000 };
	int64_t now = S(100);
	capture_start();
	for (int i = 0; i < 20; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	assert_int_equal(dec_engine_lookup(d.eng, &m[0].addr)->level, DEC_LVL_HARD);

	/* sources: most severe level first, then severity; every field. */
	struct kl_ctl_req r = { .cmd = KL_CTL_SOURCES, .count = 10 };
	struct dec_ctl_answer a;
	dec_control(&d, &r, 0, now + 500, &a);
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "3 of 3 tracked sources"));
	json_error_t je;
	json_t *arr = json_loads(a.json, 0, &je);
	assert_non_null(arr);
	assert_int_equal(json_array_size(arr), 3);
	json_t *o = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "203.0.113.7");
	assert_string_equal(json_string_value(json_object_get(o, "level")), "RATE_HARD");
	assert_true(json_integer_value(json_object_get(o, "strikes")) >= 7);
	assert_true(json_real_value(json_object_get(o, "severity")) > 1.0);
	assert_true(json_real_value(json_object_get(o, "pps")) == 20000);
	assert_true(json_real_value(json_object_get(o, "syn")) == 19000);
	assert_true(json_real_value(json_object_get(o, "scan")) == 0);
	assert_true(json_real_value(json_object_get(o, "droprl")) == 150);
	double in_level = json_real_value(json_object_get(o, "in_level_s"));
	double ttl_left = json_real_value(json_object_get(o, "ttl_left_s"));
	assert_true(in_level >= 0.5 && in_level < 20);
	assert_true(ttl_left > 0 && ttl_left <= 300);
	assert_int_equal(json_object_size(o), 10);
	/* OBSERVE sources after, by severity: 40 pps before 30 pps. */
	o = json_array_get(arr, 1);
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "198.18.0.10");
	assert_string_equal(json_string_value(json_object_get(o, "level")), "OBSERVE");
	assert_true(json_is_null(json_object_get(o, "in_level_s")));
	assert_true(json_is_null(json_object_get(o, "ttl_left_s")));
	o = json_array_get(arr, 2);
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "fd00:6b6c::10");
	/* No float noise: 2 decimals. */
	assert_null(strstr(a.json, "0000000"));
	json_decref(arr);
	dec_ctl_answer_free(&a);
	r.count = 1;
	dec_control(&d, &r, 0, now + 500, &a);
	arr = json_loads(a.json, 0, &je);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	dec_ctl_answer_free(&a);

	/* forgive: written with the caller's uid, applied at the next tick. */
	struct kl_ctl_req fg = { .cmd = KL_CTL_FORGIVE, .addr = A("203.0.113.7"), .ttl_ms = 0 };
	capture_start();
	dec_control(&d, &fg, 1234, now + 500, &a);
	char *log = capture_end();
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "forgave 203.0.113.7 for 1h"));
	assert_non_null(strstr(a.json, "\"ttl_ms\":3600000"));
	assert_non_null(strstr(log, "FORGIVE target=203.0.113.7 ttl=1h by uid 1234"));
	free(log);
	dec_ctl_answer_free(&a);
	char *buf, err[300];
	size_t len;
	assert_int_equal(dec_read_file(fb, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_non_null(strstr(buf, "\"notes\": \"klctl forgive by uid 1234\""));
	free(buf);
	cs.n = 0;
	t.t_ms = now += 1000;
	capture_start();
	assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	free(capture_end());
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.v[0].from, DEC_LVL_HARD);
	assert_int_equal(cs.v[0].to, DEC_LVL_OBSERVE);
	assert_int_equal(cs.v[0].reason, DEC_R_FORGIVE);
	assert_null(dec_engine_lookup(d.eng, &m[0].addr));

	/* Forgiving again restarts the TTL (an identical entry would keep
	 * its first-load time). */
	fg.ttl_ms = 10000;
	capture_start();
	dec_control(&d, &fg, 0, now, &a);
	dec_ctl_answer_free(&a);
	dec_control(&d, &fg, 0, now + 7000, &a);
	free(capture_end());
	dec_ctl_answer_free(&a);
	bool found = false;
	for (size_t i = 0; i < d.ex.fb.n; i++)
		if (d.ex.fb.v[i].ttl_ms == 10000) {
			assert_int_equal(d.ex.fb.v[i].expires_ms, now + 17000);
			found = true;
		}
	assert_true(found);

	/* Not ours, and a disabled feedback file. */
	struct kl_ctl_req st = { .cmd = KL_CTL_STATS };
	dec_control(&d, &st, 0, now, &a);
	assert_int_equal(a.status, KL_ERR_UNSUPPORTED);
	assert_non_null(strstr(a.text, "stats is not served by kl-decider"));
	dec_ctl_answer_free(&a);
	free(cfg.v.feedback_file);
	cfg.v.feedback_file = strdup("");
	dec_control(&d, &fg, 0, now, &a);
	assert_int_equal(a.status, KL_ERR_REFUSED);
	assert_non_null(strstr(a.text, "feedback file is disabled"));
	dec_ctl_answer_free(&a);

	dec_free(&d);
	dec_config_free(&cfg);
	kl_errs_free(&e);
	rm_rf(dir);
	free(dir);
}

/* The whitelist through the control socket: added to the feedback file,
 * applied at the next tick (an escalated source back to OBSERVE and never
 * escalated while it lasts), listed with the whitelist file's entries,
 * expired on time, removed; each change is refused with a reason when it
 * cannot be done. */
static void test_control_whitelist(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char fb[256], wl[256], fbflag[300], wlflag[300], err[300], *buf;
	size_t len;
	snprintf(fb, sizeof(fb), "%s/fb.json", dir);
	snprintf(wl, sizeof(wl), "%s/whitelist.txt", dir);
	FILE *f = fopen(wl, "w");
	fputs("# office\n198.18.5.0/24\n", f);
	fclose(f);
	snprintf(fbflag, sizeof(fbflag), "--feedback-file=%s", fb);
	snprintf(wlflag, sizeof(wlflag), "--whitelist=%s", wl);
	char *argv[] = { (char *)"kl-decider", wlflag, fbflag, (char *)"--state-file=",
			 (char *)"--profile", (char *)"generic", NULL };
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	struct capture_sink cs;
	struct dec_decider d;
	start_captured(6, argv, &cfg, &cs, &d, true);

	struct dec_metrics m;
	memset(&m, 0, sizeof(m));
	m.addr = A("203.0.113.7");
	m.pps = 20000;
	m.syn = 19000;
	struct dec_tick t = { .src = &m, .nsrc = 1, .elapsed_ms = 1000 };
	int64_t now = S(100);
	capture_start();
	for (int i = 0; i < 20; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	assert_true(dec_engine_lookup(d.eng, &m.addr)->level >= DEC_LVL_HARD);

	/* add --ttl 30s: written, audited in the log, released at the next tick */
	struct kl_ctl_req r = { .cmd = KL_CTL_WHITELIST_ADD, .addr = A("203.0.113.7"),
				.ttl_ms = 30000 };
	struct dec_ctl_answer a;
	capture_start();
	dec_control(&d, &r, 1234, now + 500, &a);
	char *log = capture_end();
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "whitelisted 203.0.113.7 (30s)"));
	assert_non_null(strstr(a.json, "\"ttl_ms\":30000"));
	assert_non_null(strstr(log, "WHITELIST add target=203.0.113.7 expiry=30s by uid 1234"));
	free(log);
	dec_ctl_answer_free(&a);
	assert_int_equal(dec_read_file(fb, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_non_null(strstr(buf, "\"action\": \"whitelist\""));
	assert_non_null(strstr(buf, "\"ttl\": \"30s\""));
	assert_non_null(strstr(buf, "klctl whitelist add by uid 1234"));
	free(buf);
	cs.n = 0;
	t.t_ms = now += 1000;
	capture_start();
	assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	free(capture_end());
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.v[0].to, DEC_LVL_OBSERVE);
	assert_int_equal(cs.v[0].reason, DEC_R_WHITELIST);

	/* list: the feedback entry with its expiry, and the file's entry */
	struct kl_ctl_req l = { .cmd = KL_CTL_WHITELIST_LIST };
	dec_control(&d, &l, 0, now, &a);
	assert_int_equal(a.status, KL_OK);
	json_error_t je;
	json_t *doc = json_loads(a.json, 0, &je);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "total")), 2);
	json_t *arr = json_object_get(doc, "entries"), *o;
	o = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(o, "target")), "198.18.5.0/24");
	assert_string_equal(json_string_value(json_object_get(o, "origin")), "file");
	assert_true(json_is_null(json_object_get(o, "expires_in_ms")));
	o = json_array_get(arr, 1);
	assert_string_equal(json_string_value(json_object_get(o, "target")), "203.0.113.7");
	assert_string_equal(json_string_value(json_object_get(o, "origin")), "feedback");
	assert_int_equal(json_integer_value(json_object_get(o, "expires_in_ms")), 29500);
	json_decref(doc);
	dec_ctl_answer_free(&a);

	/* Never escalated while whitelisted, whatever it sends. */
	cs.n = 0;
	capture_start();
	for (int i = 0; i < 25; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	assert_int_equal(cs.n, 0);
	/* Expired (30 s from the add): scored again and escalates. */
	capture_start();
	for (int i = 0; i < 10; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	assert_true(cs.n >= 1);
	assert_int_equal(cs.v[0].from, DEC_LVL_OBSERVE);
	assert_true(dec_engine_lookup(d.eng, &m.addr)->level > DEC_LVL_OBSERVE);
	dec_control(&d, &l, 0, now, &a);
	assert_non_null(strstr(a.json, "\"total\":1"));
	assert_null(strstr(a.json, "203.0.113.7"));
	dec_ctl_answer_free(&a);

	/* --until replaces the earlier whitelist entry for the target. */
	r.mode = 1;
	r.ttl_ms = 1893456000000ull; /* 2030-01-01T00:00:00Z */
	capture_start();
	dec_control(&d, &r, 0, now, &a);
	free(capture_end());
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.json, "\"until\":\"2030-01-01T00:00:00Z\""));
	dec_ctl_answer_free(&a);
	assert_int_equal(dec_read_file(fb, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_null(strstr(buf, "\"ttl\""));
	assert_non_null(strstr(buf, "\"until\": \"2030-01-01T00:00:00Z\""));
	free(buf);
	/* An until already past is refused, the file untouched. */
	r.ttl_ms = (uint64_t)(now - 1000);
	dec_control(&d, &r, 0, now, &a);
	assert_int_equal(a.status, KL_ERR_INVALID);
	assert_non_null(strstr(a.text, "not in the future"));
	dec_ctl_answer_free(&a);

	/* del: removed and scored again; a second del finds nothing; the
	 * whitelist file's entry is named, not edited. */
	struct kl_ctl_req dl = { .cmd = KL_CTL_WHITELIST_DEL, .addr = A("203.0.113.7") };
	capture_start();
	dec_control(&d, &dl, 0, now, &a);
	free(capture_end());
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.json, "\"removed\":1"));
	dec_ctl_answer_free(&a);
	assert_int_equal(dec_exempt_lookup(&d.ex, &m.addr, now), DEC_EX_NONE);
	dec_control(&d, &dl, 0, now, &a);
	assert_int_equal(a.status, KL_ERR_NOTFOUND);
	dec_ctl_answer_free(&a);
	dl.addr = A("198.18.5.0/24");
	dec_control(&d, &dl, 0, now, &a);
	assert_int_equal(a.status, KL_ERR_REFUSED);
	assert_non_null(strstr(a.text, "whitelist.txt"));
	assert_non_null(strstr(a.text, "klctl reload"));
	dec_ctl_answer_free(&a);

	/* Neither --ttl nor --until: permanent. */
	struct kl_ctl_req pm = { .cmd = KL_CTL_WHITELIST_ADD, .addr = A("2001:db8::/64") };
	capture_start();
	dec_control(&d, &pm, 0, now, &a);
	free(capture_end());
	assert_int_equal(a.status, KL_OK);
	assert_non_null(strstr(a.text, "(permanent)"));
	dec_ctl_answer_free(&a);
	dec_control(&d, &l, 0, now, &a);
	doc = json_loads(a.json, 0, &je);
	json_t *e6 = NULL;
	size_t k;
	json_array_foreach(json_object_get(doc, "entries"), k, o)
		if (strcmp(json_string_value(json_object_get(o, "target")), "2001:db8::/64") == 0)
			e6 = o;
	assert_non_null(e6);
	assert_true(json_is_null(json_object_get(e6, "expires_in_ms")));
	assert_string_equal(json_string_value(json_object_get(e6, "origin")), "feedback");
	json_decref(doc);
	dec_ctl_answer_free(&a);
	assert_int_equal(dec_exempt_lookup(&d.ex, &pm.addr, now + S(86400 * 365)), DEC_EX_WHITELIST);

	/* A broken feedback file is not overwritten. */
	f = fopen(fb, "w");
	fputs("[1,\n", f);
	fclose(f);
	r.mode = 0;
	r.ttl_ms = 0;
	capture_start();
	dec_control(&d, &r, 0, now, &a);
	free(capture_end());
	assert_int_equal(a.status, KL_ERR_FAILED);
	assert_non_null(strstr(a.text, "fb.json"));
	dec_ctl_answer_free(&a);
	assert_int_equal(dec_read_file(fb, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	assert_string_equal(buf, "[1,\n");
	free(buf);

	dec_free(&d);
	dec_config_free(&cfg);
	kl_errs_free(&e);
	rm_rf(dir);
	free(dir);
}

/* graph approve-ip: graphd's APPROVED releases a frozen-enforce BLOCK at
 * the next tick (reason graph_approved), not at its TTL; violations queued
 * before the approval are dropped; an unknown source is a no-op. */
static void test_approved_releases_block(void **state)
{
	(void)state;
	char *argv[] = { (char *)"kl-decider", (char *)"--whitelist=", (char *)"--feedback-file=",
			 (char *)"--state-file=", (char *)"--profile", (char *)"generic", NULL };
	struct dec_config cfg;
	struct kl_errs e = { 0 };
	struct capture_sink cs;
	struct dec_decider d;
	start_captured(6, argv, &cfg, &cs, &d, false);

	struct dec_metrics m;
	memset(&m, 0, sizeof(m));
	m.addr = A("198.18.0.3");
	/* Busy enough for a frozen-enforce violation to force its level (the
	 * severity gate), as a client that was wrongly blocked would be. */
	m.pps = 20000;
	m.syn = 19000;
	struct dec_violation v = { .addr = A("198.18.0.3"), .port = 8080, .proto = 6,
				  .mode = DEC_VIOL_ENFORCE };
	struct dec_tick t = { .src = &m, .nsrc = 1, .viol = &v, .nviol = 1, .elapsed_ms = 1000 };
	int64_t now = S(100);
	capture_start();
	for (int i = 0; i < 15; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	const struct dec_src *s = dec_engine_lookup(d.eng, &m.addr);
	assert_non_null(s);
	assert_true(s->level >= DEC_LVL_HARD);
	unsigned held = s->level;

	/* Violations that came before the approval go with it. */
	struct dec_violation q[3] = { v, v, v };
	q[1].addr = A("198.18.0.9");
	size_t nq = 3;
	assert_int_equal(dec_violations_drop(q, &nq, &m.addr), 2);
	assert_int_equal(nq, 1);
	assert_true(same(&q[0].addr, "198.18.0.9"));

	assert_int_equal(dec_approved(&d, &m.addr), 0);
	assert_int_equal(dec_approved(&d, &m.addr), 0); /* twice: one entry */
	assert_int_equal(d.approved.n, 1);
	assert_int_equal(dec_approved(&d, &q[0].addr), 0); /* never seen: no-op */
	cs.n = 0;
	t.nviol = 0;
	m.pps = 20;
	m.syn = 0;
	t.t_ms = now += 1000;
	capture_start();
	assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	char *log = capture_end();
	char want[128];
	snprintf(want, sizeof(want), "APPROVED 198.18.0.3 in the graph: %s->OBSERVE",
		 dec_level_name(held));
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "APPROVED 198.18.0.9 in the graph: nothing held against it"));
	free(log);
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.v[0].from, held);
	assert_int_equal(cs.v[0].to, DEC_LVL_OBSERVE);
	assert_int_equal(cs.v[0].reason, DEC_R_APPROVED);
	assert_int_equal(d.approved.n, 0);
	s = dec_engine_lookup(d.eng, &m.addr);
	assert_true(s == NULL || s->level == DEC_LVL_OBSERVE);
	/* And it stays there. */
	capture_start();
	for (int i = 0; i < 5; i++) {
		t.t_ms = now += 1000;
		assert_int_equal(dec_run_tick(&d, &t, &e), 0);
	}
	free(capture_end());
	assert_int_equal(cs.n, 1);

	dec_free(&d);
	dec_config_free(&cfg);
	kl_errs_free(&e);
}

int main(void)
{
	kl_log_init("test", KL_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_to_metrics),
		cmocka_unit_test(test_binary_trace_input),
		cmocka_unit_test(test_binary_replay_matches_jsonl),
		cmocka_unit_test(test_decision_from_change),
		cmocka_unit_test(test_level_of_state),
		cmocka_unit_test(test_reconcile),
		cmocka_unit_test(test_acks_and_outages),
		cmocka_unit_test(test_silent_reconnect_reconciles),
		cmocka_unit_test(test_forgive_file),
		cmocka_unit_test(test_control),
		cmocka_unit_test(test_control_baseline),
		cmocka_unit_test(test_control_whitelist),
		cmocka_unit_test(test_approved_releases_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
