/* SPDX-License-Identifier: MPL-2.0 */
/* TELEMETRY and FLOWS frames: round trips and every malformed frame refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/frames.h"

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void putd(uint8_t *p, double d)
{
	uint64_t v;
	memcpy(&v, &d, 8);
	put64(p, v);
}

static struct kl_src_rate rate4(uint8_t last, double pps)
{
	struct kl_src_rate r;

	memset(&r, 0, sizeof(r));
	r.family = 4;
	r.addr[0] = 198;
	r.addr[1] = 18;
	r.addr[3] = last;
	for (int k = 0; k < KL_R_MAX; k++)
		r.r[k] = pps * (k + 1) + 0.25;
	return r;
}

/* A valid frame with two records (v4 and v6) and all KL_T_MAX totals. */
static size_t make_telem(uint8_t *buf)
{
	struct kl_telem_hdr h;
	struct kl_src_rate a = rate4(1, 200), b;

	memset(&h, 0, sizeof(h));
	h.tick = 42;
	h.t_ns = 1700000000123456789ull;
	h.elapsed_ns = 1000012345;
	h.n_totals = KL_T_MAX;
	h.n_records = 2;
	h.last = true;
	for (int i = 0; i < KL_T_MAX; i++)
		h.totals[i] = 1000u * (unsigned)i + 7;
	memset(&b, 0, sizeof(b));
	b.family = 6;
	b.addr[0] = 0xfd;
	b.addr[15] = 0x42;
	b.r[KL_R_SCAN] = 100;
	kl_telem_encode_fixed(&h, buf);
	size_t off = KL_TELEM_FIXED_LEN + 8 * KL_T_MAX;
	kl_telem_encode_record(&a, buf + off);
	kl_telem_encode_record(&b, buf + off + KL_TELEM_REC_LEN);
	return kl_telem_payload_len(KL_T_MAX, 2);
}

static size_t rec_off(int i)
{
	return KL_TELEM_FIXED_LEN + 8 * KL_T_MAX + (size_t)i * KL_TELEM_REC_LEN;
}

static void expect_telem_fail(const uint8_t *p, size_t len, const char *want)
{
	struct kl_telem_view v;
	char err[256] = "";

	assert_int_equal(kl_telem_decode(p, len, &v, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void test_telem_round_trip(void **state)
{
	uint8_t buf[1024], again[1024];
	struct kl_telem_view v;
	struct kl_src_rate r;
	char err[256];
	(void)state;

	size_t len = make_telem(buf);
	assert_int_equal(len, 40 + 8 * KL_T_MAX + 2 * 108);
	assert_int_equal(kl_telem_decode(buf, len, &v, err, sizeof(err)), 0);
	assert_int_equal(v.h.tick, 42);
	assert_int_equal(v.h.frame, 0);
	assert_true(v.h.last);
	assert_int_equal(v.h.t_ns, 1700000000123456789ull);
	assert_int_equal(v.h.elapsed_ns, 1000012345);
	assert_int_equal(v.h.n_totals, KL_T_MAX);
	assert_int_equal(v.h.n_records, 2);
	assert_int_equal(v.h.totals[KL_T_DROP_RL], 1000 * KL_T_DROP_RL + 7);
	kl_telem_record(&v, 0, &r);
	assert_int_equal(r.family, 4);
	assert_int_equal(r.addr[0], 198);
	assert_int_equal(r.addr[3], 1);
	assert_true(r.r[KL_R_PPS] == 200.25);
	assert_true(r.r[KL_R_DROP_EDGE] == 200 * 11 + 0.25);
	kl_telem_record(&v, 1, &r);
	assert_int_equal(r.family, 6);
	assert_int_equal(r.addr[15], 0x42);
	assert_true(r.r[KL_R_SCAN] == 100);

	/* Re-encoding the decoded view gives the same bytes. */
	kl_telem_encode_fixed(&v.h, again);
	for (uint32_t i = 0; i < v.h.n_records; i++) {
		kl_telem_record(&v, i, &r);
		kl_telem_encode_record(&r, again + rec_off((int)i));
	}
	assert_memory_equal(buf, again, len);
}

static void test_telem_layout(void **state)
{
	uint8_t buf[1024];
	(void)state;

	make_telem(buf);
	/* Little-endian fields at the documented offsets. */
	assert_int_equal(buf[0], 42);
	assert_int_equal(buf[24], KL_T_MAX);
	assert_int_equal(buf[28], 2);
	assert_int_equal(buf[rec_off(0)], 4);
	assert_int_equal(buf[rec_off(0) + 4], 198);
	double d;
	uint64_t u = 0;
	for (int i = 7; i >= 0; i--)
		u = (u << 8) | buf[rec_off(0) + 20 + i];
	memcpy(&d, &u, 8);
	assert_true(d == 200.25);
}

static void test_telem_other_total_counts(void **state)
{
	uint8_t buf[4096];
	struct kl_telem_view v;
	struct kl_telem_hdr h;
	char err[256];
	(void)state;

	/* A newer sender with more counters: accepted, extras kept. */
	memset(&h, 0, sizeof(h));
	h.n_totals = KL_T_MAX + 5;
	h.totals[KL_T_MAX + 4] = 99;
	kl_telem_encode_fixed(&h, buf);
	assert_int_equal(kl_telem_decode(buf, kl_telem_payload_len(KL_T_MAX + 5, 0), &v, err,
					 sizeof(err)),
			 0);
	assert_int_equal(v.h.totals[KL_T_MAX + 4], 99);
	/* An older one with fewer: the missing ones read as 0. */
	h.n_totals = 3;
	h.totals[KL_T_DROP_RL] = 5; /* index 5 is not sent */
	kl_telem_encode_fixed(&h, buf);
	assert_int_equal(kl_telem_decode(buf, kl_telem_payload_len(3, 0), &v, err, sizeof(err)), 0);
	assert_int_equal(v.h.totals[KL_T_DROP_RL], 0);
}

static void test_telem_rejects(void **state)
{
	uint8_t good[1024], b[1100];
	(void)state;
	size_t len = make_telem(good);

	expect_telem_fail(good, 39, "fixed part");
	expect_telem_fail(NULL, 0, "fixed part");
	expect_telem_fail(good, len - 1, "need");
	memcpy(b, good, len);
	b[len] = 0;
	expect_telem_fail(b, len + 1, "need");
	/* Whole extra record without a count for it. */
	memcpy(b, good, len);
	memcpy(b + len, good + rec_off(0), KL_TELEM_REC_LEN);
	expect_telem_fail(b, len + KL_TELEM_REC_LEN, "n_records 2");

	/* Bad counts. */
	memcpy(b, good, len);
	put32(b + 28, 3);
	expect_telem_fail(b, len, "n_records 3");
	put32(b + 28, 0xffffffffu);
	expect_telem_fail(b, len, "need");
	memcpy(b, good, len);
	put32(b + 24, KL_T_MAX - 1);
	expect_telem_fail(b, len, "n_totals");
	put32(b + 24, KL_TELEM_MAX_TOTALS + 1);
	expect_telem_fail(b, len, "n_totals");
	/* Frame flags: only KL_FRAME_LAST is known; totals only in frame 0. */
	memcpy(b, good, len);
	put32(b + 36, 2);
	expect_telem_fail(b, len, "unknown frame_flags 0x2");
	put32(b + 36, 0x80000001u);
	expect_telem_fail(b, len, "unknown frame_flags");
	memcpy(b, good, len);
	put32(b + 32, 1);
	expect_telem_fail(b, len, "frame 1 carries");

	/* Floats: NaN, infinities, negatives, -0. */
	const double bad[] = { NAN, -NAN, INFINITY, -INFINITY, -1.0, -1e-300, -0.0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int k = 0; k < KL_R_MAX; k += 5) {
			memcpy(b, good, len);
			putd(b + rec_off(1) + 20 + 8 * k, bad[i]);
			expect_telem_fail(b, len, kl_rate_name((unsigned)k));
		}
	}
	/* Family, its padding, the unused IPv4 bytes. */
	const uint8_t fams[] = { 0, 1, 5, 10, 255 };
	for (size_t i = 0; i < sizeof(fams); i++) {
		memcpy(b, good, len);
		b[rec_off(0)] = fams[i];
		expect_telem_fail(b, len, "family");
	}
	for (int i = 1; i < 4; i++) {
		memcpy(b, good, len);
		b[rec_off(1) + i] = 1;
		expect_telem_fail(b, len, "padding");
	}
	for (int i = 8; i < 20; i++) {
		memcpy(b, good, len);
		b[rec_off(0) + i] = 1;
		expect_telem_fail(b, len, "IPv4");
	}
	/* ... while IPv6 uses all 16 bytes. */
	memcpy(b, good, len);
	memset(b + rec_off(1) + 4, 0xff, 16);
	struct kl_telem_view v;
	char err[256];
	assert_int_equal(kl_telem_decode(b, len, &v, err, sizeof(err)), 0);
}

static size_t make_flows(uint8_t *buf)
{
	struct kl_flows_hdr h = { .tick = 7, .t_ns = 123, .elapsed_ns = 1000000000, .n_records = 3,
				  .frame = 5, .last = true };
	struct kl_flow_rec r[3];

	memset(r, 0, sizeof(r));
	r[0].family = 4;
	r[0].addr[0] = 198;
	r[0].addr[3] = 1;
	r[0].port = 443;
	r[0].proto = 6;
	r[0].pkts = 10;
	r[0].bytes = 1500;
	r[1] = r[0];
	r[1].proto = 1; /* ICMP: port 0 */
	r[1].port = 0;
	r[1].flags = KL_FLOW_F_RESTRICTED;
	r[2].family = 6;
	r[2].addr[0] = 0xfd;
	r[2].addr[15] = 9;
	r[2].port = 0; /* UDP to an ephemeral (folded) port */
	r[2].proto = 17;
	r[2].pkts = 1;
	r[2].bytes = 80;
	kl_flows_encode_fixed(&h, buf);
	for (int i = 0; i < 3; i++)
		kl_flows_encode_record(&r[i], buf + KL_FLOWS_FIXED_LEN + (size_t)i * KL_FLOWS_REC_LEN);
	return kl_flows_payload_len(3);
}

static void expect_flows_fail(const uint8_t *p, size_t len, const char *want)
{
	struct kl_flows_view v;
	char err[256] = "";

	assert_int_equal(kl_flows_decode(p, len, &v, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void test_flows_round_trip_and_rejects(void **state)
{
	uint8_t good[512], b[600], again[512];
	struct kl_flows_view v;
	struct kl_flow_rec r;
	char err[256];
	(void)state;

	size_t len = make_flows(good);
	assert_int_equal(len, 40 + 3 * 40);
	assert_int_equal(kl_flows_decode(good, len, &v, err, sizeof(err)), 0);
	assert_int_equal(v.h.tick, 7);
	assert_int_equal(v.h.frame, 5);
	assert_true(v.h.last);
	assert_int_equal(v.h.n_records, 3);
	kl_flows_record(&v, 0, &r);
	assert_int_equal(r.port, 443);
	assert_int_equal(r.proto, 6);
	assert_int_equal(r.pkts, 10);
	assert_int_equal(r.bytes, 1500);
	assert_int_equal(r.flags, 0);
	kl_flows_record(&v, 1, &r);
	assert_int_equal(r.flags, KL_FLOW_F_RESTRICTED);
	kl_flows_record(&v, 2, &r);
	assert_int_equal(r.family, 6);
	assert_int_equal(r.addr[15], 9);
	kl_flows_encode_fixed(&v.h, again);
	for (uint32_t i = 0; i < 3; i++) {
		kl_flows_record(&v, i, &r);
		kl_flows_encode_record(&r, again + KL_FLOWS_FIXED_LEN + i * KL_FLOWS_REC_LEN);
	}
	assert_memory_equal(good, again, len);

	expect_flows_fail(good, 31, "fixed part");
	expect_flows_fail(good, len - 1, "needs");
	memcpy(b, good, len);
	expect_flows_fail(b, len + KL_FLOWS_REC_LEN, "needs"); /* one record too many */
	put32(b + 24, 2);
	expect_flows_fail(b, len, "n_records 2");
	memcpy(b, good, len);
	b[28] = 1;
	expect_flows_fail(b, len, "reserved");
	memcpy(b, good, len);
	b[36] = 3;
	expect_flows_fail(b, len, "unknown frame_flags 0x3");
	size_t r1 = KL_FLOWS_FIXED_LEN + KL_FLOWS_REC_LEN;
	memcpy(b, good, len);
	b[r1] = 7;
	expect_flows_fail(b, len, "family");
	memcpy(b, good, len);
	b[r1 + 10] = 1;
	expect_flows_fail(b, len, "IPv4");
	memcpy(b, good, len);
	b[r1 + 20] = 80; /* a port on ICMP */
	expect_flows_fail(b, len, "port");
	memcpy(b, good, len);
	b[r1 + 23] = 0x02; /* a flag this version does not know */
	expect_flows_fail(b, len, "unknown flags 0x02");
	b[r1 + 23] = 0x81;
	expect_flows_fail(b, len, "unknown flags 0x81");
	memcpy(b, good, len);
	memset(b + r1 + 24, 0, 8);
	expect_flows_fail(b, len, "pkts");
}

static void test_frame_builder(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_telem_hdr h;
	struct kl_msg m;
	struct kl_telem_view v;
	struct kl_src_rate r;
	char err[256];
	(void)state;

	memset(&h, 0, sizeof(h));
	h.tick = 9;
	h.n_totals = KL_T_MAX;
	h.totals[KL_T_PKTS] = 1234;
	/* Two ticks through one builder: the buffer is reused. */
	for (int round = 0; round < 2; round++) {
		int n = round == 0 ? 1000 : 3;
		assert_int_equal(kl_frame_begin_telem(&f, 100 + (uint64_t)round, &h), 0);
		for (int i = 0; i < n; i++) {
			r = rate4((uint8_t)i, i);
			assert_int_equal(kl_frame_add_src(&f, &r), 0);
		}
		kl_frame_end(&f);
		assert_int_equal(kl_msg_decode(f.buf, f.len, &m, err, sizeof(err)), 0);
		assert_int_equal(m.hdr.type, KL_MSG_TELEMETRY);
		assert_int_equal(m.hdr.seq, 100 + round);
		assert_int_equal(m.hdr.tick, 9);
		assert_int_equal(kl_telem_decode(m.payload, m.payload_len, &v, err, sizeof(err)), 0);
		assert_int_equal(v.h.n_records, n);
		assert_int_equal(v.h.totals[KL_T_PKTS], 1234);
		kl_telem_record(&v, (size_t)n - 1, &r);
		assert_int_equal(r.addr[3], (uint8_t)(n - 1));
	}
	/* Beyond the message limit the tick goes on in the next frame:
	 * nothing is dropped, only frame 0 carries the totals, only the last
	 * frame the flag, and each frame has the next sequence number. */
	assert_int_equal(kl_frame_begin_telem(&f, 1, &h), 0);
	assert_true(f.max_records > 600000);
	assert_int_equal(f.max_records, KL_TELEM_MAX_RECORDS);
	f.max_records = 2;
	for (int i = 0; i < 5; i++) {
		r = rate4((uint8_t)i, 1);
		assert_int_equal(kl_frame_add_src(&f, &r), 0);
	}
	kl_frame_end(&f);
	assert_int_equal(f.n, 5);
	assert_int_equal(f.nmsg, 3);
	for (uint32_t i = 0; i < 3; i++) {
		size_t len;
		const uint8_t *msg = kl_frame_msg(&f, i, &len);
		assert_int_equal(kl_msg_decode(msg, len, &m, err, sizeof(err)), 0);
		assert_int_equal(m.hdr.seq, 1 + i);
		assert_int_equal(m.hdr.tick, 9);
		assert_int_equal(kl_telem_decode(m.payload, m.payload_len, &v, err, sizeof(err)), 0);
		assert_int_equal(v.h.frame, i);
		assert_int_equal(v.h.last, i == 2);
		assert_int_equal(v.h.n_records, i < 2 ? 2 : 1);
		assert_int_equal(v.h.n_totals, i == 0 ? KL_T_MAX : 0);
		assert_int_equal(v.h.totals[KL_T_PKTS], i == 0 ? 1234 : 0);
		kl_telem_record(&v, 0, &r);
		assert_int_equal(r.addr[3], (uint8_t)(2 * i));
	}

	/* FLOWS through the same builder. */
	struct kl_flows_hdr fh = { .tick = 3 };
	struct kl_flow_rec fr = { .family = 4, .addr = { 1, 2, 3, 4 }, .port = 22, .proto = 6,
				  .pkts = 1, .bytes = 60 };
	struct kl_flows_view fv;
	assert_int_equal(kl_frame_begin_flows(&f, 5, &fh), 0);
	assert_int_equal(kl_frame_add_flow(&f, &fr), 0);
	kl_frame_end(&f);
	assert_int_equal(kl_msg_decode(f.buf, f.len, &m, err, sizeof(err)), 0);
	assert_int_equal(m.hdr.type, KL_MSG_FLOWS);
	assert_int_equal(kl_flows_decode(m.payload, m.payload_len, &fv, err, sizeof(err)), 0);
	assert_int_equal(fv.h.n_records, 1);
	kl_frame_free(&f);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_telem_round_trip),
		cmocka_unit_test(test_telem_layout),
		cmocka_unit_test(test_telem_other_total_counts),
		cmocka_unit_test(test_telem_rejects),
		cmocka_unit_test(test_flows_round_trip_and_rejects),
		cmocka_unit_test(test_frame_builder),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
