/* SPDX-License-Identifier: MPL-2.0 */
/* Payload codecs of the enforcer links: round trips and every rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/enforce.h"

#define DAY_MS (24ull * 3600 * 1000)

static struct kl_addr host(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_addr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static struct kl_addr cidr(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_cidr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#define EXPECT_ERR(call, substr)                                                                  \
	do {                                                                                      \
		char err[256] = "";                                                               \
		int rc_ = (call);                                                                 \
		if (rc_ == 0 || strstr(err, substr) == NULL)                                      \
			fail_msg("rc %d, error \"%s\", wanted \"%s\"", rc_, err, substr);         \
	} while (0)

/* ---- DECISIONS ---- */

static const struct kl_decision good_dec[] = {
	{ .level = KL_DEC_OBSERVE },
	{ .level = KL_DEC_RATE_SOFT, .rate_pps = 20, .burst = 40, .ttl_ms = 60000 },
	{ .level = KL_DEC_RATE_HARD, .rate_pps = 0, .burst = 1, .ttl_ms = 1000 },
	{ .level = KL_DEC_BLOCK, .ttl_ms = 7 * DAY_MS },
	{ .level = KL_DEC_RATE_HARD, .rate_pps = KL_DEC_MAX_RATE, .burst = KL_DEC_MAX_BURST,
	  .ttl_ms = 3600000 },
};
#define NDEC (sizeof(good_dec) / sizeof(good_dec[0]))

/* Encoded good_dec with addresses filled in. */
static uint8_t *dec_buf(size_t *len)
{
	struct kl_decision d[NDEC];
	const char *ips[NDEC] = { "198.18.0.1", "fd00:6b6c::1", "198.18.255.254", "fd00:6b6c::ff",
				  "203.0.113.9" };
	memcpy(d, good_dec, sizeof(d));
	for (size_t i = 0; i < NDEC; i++)
		d[i].addr = host(ips[i]);
	*len = kl_decisions_len(NDEC);
	uint8_t *p = malloc(*len);
	assert_non_null(p);
	kl_decisions_encode(d, NDEC, p);
	return p;
}

static uint8_t *rec(uint8_t *p, size_t i, size_t reclen)
{
	return p + KL_BATCH_HDR_LEN + i * reclen;
}

static void test_decisions_round_trip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *p = dec_buf(&len);
	struct kl_decision out[NDEC];
	uint32_t n = 0;
	char err[256];
	assert_int_equal(len, 8 + NDEC * 40);
	assert_int_equal(kl_decisions_count(p, len, &n, err, sizeof(err)), 0);
	assert_int_equal(n, NDEC);
	assert_int_equal(kl_decisions_decode(p, len, out, NDEC, &n, err, sizeof(err)), 0);
	assert_int_equal(n, NDEC);
	for (size_t i = 0; i < NDEC; i++) {
		assert_int_equal(out[i].level, good_dec[i].level);
		assert_int_equal(out[i].rate_pps, good_dec[i].rate_pps);
		assert_int_equal(out[i].burst, good_dec[i].burst);
		assert_int_equal(out[i].ttl_ms, good_dec[i].ttl_ms);
		assert_int_equal(out[i].addr.prefixlen, out[i].addr.family == 4 ? 32 : 128);
	}
	char ip[KL_ADDR_STRLEN];
	assert_string_equal(kl_addr_format(&out[1].addr, ip, sizeof(ip)), "fd00:6b6c::1");
	/* the wire layout itself: family, level, addr at 8, rate at 24, ttl at 32 */
	const uint8_t *r1 = rec(p, 1, KL_DECISION_LEN);
	assert_int_equal(r1[0], 6);
	assert_int_equal(r1[1], KL_DEC_RATE_SOFT);
	assert_int_equal(r1[8], 0xfd);
	assert_int_equal(r1[24], 20);
	assert_int_equal(r1[28], 40);
	assert_int_equal(r1[32] | r1[33] << 8, 60000 & 0xffff);
	const uint8_t *r0 = rec(p, 0, KL_DECISION_LEN);
	assert_int_equal(r0[8], 198);
	for (int i = 12; i < 24; i++)
		assert_int_equal(r0[i], 0); /* v4 padded with zeros */
	uint8_t *again = malloc(len);
	kl_decisions_encode(out, n, again);
	assert_memory_equal(again, p, len);
	free(again);

	/* an empty batch is fine */
	uint8_t e[8];
	kl_decisions_encode(NULL, 0, e);
	assert_int_equal(kl_decisions_decode(e, 8, out, 0, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(p);
}

/* Decode p after a mutation; expect a failure naming substr. */
static int dec_try(uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct kl_decision out[NDEC + 1];
	uint32_t n;
	return kl_decisions_decode(p, len, out, NDEC + 1, &n, err, errlen);
}

static void test_decisions_rejections(void **state)
{
	(void)state;
	size_t len;
	uint8_t *p = dec_buf(&len), *q = malloc(len);
	struct kl_decision out[2];
	uint32_t n;

#define MUT(stmt, substr)                                                                         \
	do {                                                                                      \
		memcpy(q, p, len);                                                                \
		stmt;                                                                             \
		EXPECT_ERR(dec_try(q, len, err, sizeof(err)), substr);                            \
	} while (0)

	EXPECT_ERR(kl_decisions_decode(NULL, 0, out, 2, &n, err, sizeof(err)), "shorter than");
	EXPECT_ERR(kl_decisions_decode(p, 7, out, 2, &n, err, sizeof(err)), "shorter than its 8-byte");
	EXPECT_ERR(kl_decisions_decode(p, len - 1, out, 2, &n, err, sizeof(err)),
		   "want exactly 208 for n=5");
	EXPECT_ERR(kl_decisions_decode(p, len, out, 2, &n, err, sizeof(err)), "5 records, room for 2");
	MUT(put32(q, 6), "want exactly 248 for n=6");
	MUT(put32(q, KL_DECISIONS_MAX + 1), "field 'n' is 65537, above the limit 65536");
	MUT(q[4] = 1, "header bytes 4..7 (reserved)");
	MUT(rec(q, 2, 40)[2] = 1, "DECISIONS record 2: reserved bytes 2..7");
	MUT(rec(q, 2, 40)[7] = 0x80, "DECISIONS record 2: reserved bytes 2..7");
	MUT(rec(q, 0, 40)[0] = 5, "DECISIONS record 0: field 'family' is 5");
	MUT(rec(q, 0, 40)[0] = 0, "field 'family' is 0");
	MUT(rec(q, 0, 40)[23] = 1, "record 0: field 'addr' bytes 4..15 must be zero");
	MUT(rec(q, 3, 40)[1] = 4, "record 3: field 'level' is 4");
	MUT(put64(rec(q, 0, 40) + 32, 1000), "OBSERVE takes no rate_pps, burst or ttl_ms");
	MUT(put32(rec(q, 0, 40) + 28, 1), "OBSERVE takes no");
	MUT(put32(rec(q, 1, 40) + 28, 0), "record 1: field 'burst' is 0, want 1..100000000");
	MUT(put32(rec(q, 1, 40) + 28, KL_DEC_MAX_BURST + 1), "field 'burst' is 100000001");
	MUT(put32(rec(q, 1, 40) + 24, KL_DEC_MAX_RATE + 1), "field 'rate_pps' is 100000001");
	MUT(put64(rec(q, 1, 40) + 32, 999), "record 1: field 'ttl_ms' is 999, want 1000..604800000");
	MUT(put64(rec(q, 1, 40) + 32, 0), "field 'ttl_ms' is 0");
	MUT(put64(rec(q, 3, 40) + 32, 7 * DAY_MS + 1), "record 3: field 'ttl_ms' is 604800001");
	MUT(put32(rec(q, 3, 40) + 24, 5), "BLOCK takes no rate_pps or burst");
	MUT(put32(rec(q, 3, 40) + 28, 5), "BLOCK takes no rate_pps or burst");
	/* the message is refused as a whole, even when record 0 is good */
	memcpy(q, p, len);
	rec(q, 4, 40)[1] = 9;
	assert_int_equal(dec_try(q, len, NULL, 0), -1);
#undef MUT
	free(q);
	free(p);
}

/* ---- ACKs ---- */

static void test_acks(void **state)
{
	(void)state;
	struct kl_ack a[4] = {
		{ KL_OK, KL_ACK_OK },
		{ KL_ERR_REFUSED, KL_ACK_PROTECTED },
		{ KL_ERR_FAILED, KL_ACK_MAP_FULL },
		{ KL_ERR_INVALID, KL_ACK_INVALID },
	}, out[4];
	uint8_t p[8 + 16], q[sizeof(p)];
	uint32_t n, applied;
	assert_int_equal(kl_acks_len(4), sizeof(p));
	kl_acks_encode(a, 4, p);
	assert_int_equal(p[4], 1); /* applied = records with OK */
	assert_int_equal(kl_acks_decode(p, sizeof(p), out, 4, &n, &applied, NULL, 0), 0);
	assert_int_equal(n, 4);
	assert_int_equal(applied, 1);
	assert_memory_equal(out, a, sizeof(a));
	kl_acks_encode(out, n, q);
	assert_memory_equal(q, p, sizeof(p));

#define MUT(stmt, substr)                                                                         \
	do {                                                                                      \
		memcpy(q, p, sizeof(p));                                                          \
		stmt;                                                                             \
		EXPECT_ERR(kl_acks_decode(q, sizeof(q), out, 4, &n, &applied, err, sizeof(err)), \
			   substr);                                                               \
	} while (0)
	MUT(q[4] = 2, "field 'applied' is 2, but 1 records say OK");
	MUT(q[8 + 4 + 1] = KL_ACK_REASON_MAX, "ACK record 1: field 'reason' is 8");
	MUT(q[8 + 4] = KL_OK, "ACK record 1: field 'status' is 0, but reason protected goes with REFUSED");
	MUT(q[8] = KL_ERR_REFUSED, "ACK record 0: field 'status' is 2, but reason ok goes with OK");
	MUT(q[8 + 8 + 2] = 1, "ACK record 2: reserved bytes 2..3");
	MUT(put32(q, 5), "want exactly 28 for n=5");
	MUT(put32(q, KL_DECISIONS_MAX + 1), "above the limit");
#undef MUT
	EXPECT_ERR(kl_acks_decode(p, sizeof(p), out, 3, &n, &applied, err, sizeof(err)),
		   "4 records, room for 3");
	EXPECT_ERR(kl_acks_decode(p, 4, out, 4, &n, &applied, err, sizeof(err)), "shorter");

	/* every reason has its status */
	assert_int_equal(kl_ack_reason_status(KL_ACK_OK), KL_OK);
	assert_int_equal(kl_ack_reason_status(KL_ACK_RATE_CAP), KL_ERR_REFUSED);
	assert_int_equal(kl_ack_reason_status(KL_ACK_TOTAL_CAP), KL_ERR_REFUSED);
	assert_int_equal(kl_ack_reason_status(KL_ACK_OPERATOR), KL_ERR_REFUSED);
	assert_int_equal(kl_ack_reason_status(KL_ACK_FAILED), KL_ERR_FAILED);
	assert_string_equal(kl_ack_reason_name(KL_ACK_OPERATOR), "operator-entry");
	assert_string_equal(kl_ack_reason_name(99), "unknown");
}

/* ---- RELEASE, RELEASE_ACK, ENFORCED_Q ---- */

static void test_newsrc_limit(void **state)
{
	(void)state;
	struct kl_newsrc_limit l = { .rate_pps = 0, .burst = 1, .ttl_ms = KL_DEC_TTL_MIN_MS }, out;
	uint8_t p[KL_NEWSRC_LIMIT_LEN], q[KL_NEWSRC_LIMIT_LEN];
	char err[160];
	kl_newsrc_limit_encode(&l, p);
	assert_int_equal(kl_newsrc_limit_decode(p, sizeof(p), &out, NULL, 0), 0);
	assert_int_equal(out.rate_pps, 0);
	assert_int_equal(out.burst, 1);
	kl_newsrc_limit_encode(&out, q);
	assert_memory_equal(p, q, sizeof(p));
	const struct {
		struct kl_newsrc_limit l;
		const char *want;
	} bad[] = {
		{ { KL_DEC_MAX_RATE + 1, 1, 60000 }, "field 'rate_pps' is 100000001" },
		{ { 100, 0, 60000 }, "field 'burst' is 0" },
		{ { 100, 1, 999 }, "field 'ttl_ms' is 999" },
		{ { 100, 1, KL_NEWSRC_TTL_MAX_MS + 1 }, "field 'ttl_ms' is 86400001" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kl_newsrc_limit_encode(&bad[i].l, p);
		assert_int_equal(kl_newsrc_limit_decode(p, sizeof(p), &out, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i].want));
	}
	assert_int_equal(kl_newsrc_limit_decode(p, sizeof(p) - 1, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "want exactly 16"));
}

static void test_release(void **state)
{
	(void)state;
	const char *good[] = { "198.18.0.0/24", "0.0.0.0/0", "198.18.0.7", "fd00:6b6c::/48",
			       "fd00:6b6c::9", "::/0" };
	uint8_t p[KL_RELEASE_LEN], q[KL_RELEASE_LEN];
	struct kl_release r, out;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r.prefix = cidr(good[i]);
		r.budget = (uint32_t)(i == 0 ? 1 : KL_RELEASE_MAX_BUDGET);
		kl_release_encode(&r, p);
		assert_int_equal(kl_release_decode(p, sizeof(p), &out, NULL, 0), 0);
		assert_memory_equal(&out.prefix, &r.prefix, sizeof(r.prefix));
		assert_int_equal(out.budget, r.budget);
		kl_release_encode(&out, q);
		assert_memory_equal(q, p, sizeof(p));
	}
	r.prefix = cidr("198.18.0.0/24");
	r.budget = 100;
	kl_release_encode(&r, p);
	assert_int_equal(p[0], 4);
	assert_int_equal(p[1], 24);
	assert_int_equal(p[4], 100);
	assert_int_equal(p[8], 198);
#define MUT(stmt, substr)                                                                         \
	do {                                                                                      \
		memcpy(q, p, sizeof(p));                                                          \
		stmt;                                                                             \
		EXPECT_ERR(kl_release_decode(q, sizeof(q), &out, err, sizeof(err)), substr);     \
	} while (0)
	MUT(q[2] = 1, "RELEASE: reserved bytes 2..3");
	MUT(q[0] = 7, "RELEASE: field 'family' is 7");
	MUT(q[1] = 33, "RELEASE: field 'prefixlen' is 33, out of range 0..32");
	MUT(q[11] = 1, "RELEASE: field 'addr' has host bits set after /24");
	MUT(q[20] = 1, "bytes 4..15 must be zero for IPv4");
	MUT(put32(q + 4, 0), "RELEASE: field 'budget' is 0, want 1..100000");
	MUT(put32(q + 4, KL_RELEASE_MAX_BUDGET + 1), "field 'budget' is 100001");
	MUT((q[0] = 6, q[1] = 129), "field 'prefixlen' is 129, out of range 0..128");
#undef MUT
	EXPECT_ERR(kl_release_decode(p, 23, &out, err, sizeof(err)), "23 bytes, want exactly 24");

	struct kl_release_ack a = { .removed = 100000, .more = 1 }, ao;
	uint8_t ap[KL_RELEASE_ACK_LEN];
	kl_release_ack_encode(&a, ap);
	assert_int_equal(kl_release_ack_decode(ap, sizeof(ap), &ao, NULL, 0), 0);
	assert_int_equal(ao.removed, 100000);
	assert_int_equal(ao.more, 1);
	put32(ap + 4, 2);
	EXPECT_ERR(kl_release_ack_decode(ap, sizeof(ap), &ao, err, sizeof(err)),
		   "field 'more' is 2, want 0 or 1");
	put32(ap + 4, 0);
	put32(ap, KL_RELEASE_MAX_BUDGET + 1);
	EXPECT_ERR(kl_release_ack_decode(ap, sizeof(ap), &ao, err, sizeof(err)),
		   "field 'removed' is 100001");
	EXPECT_ERR(kl_release_ack_decode(ap, 9, &ao, err, sizeof(err)), "want exactly 8");

	uint8_t eq[KL_ENFORCED_Q_LEN];
	uint32_t max = 1;
	kl_enforced_q_encode(0, eq);
	assert_int_equal(kl_enforced_q_decode(eq, sizeof(eq), &max, NULL, 0), 0);
	assert_int_equal(max, 0);
	kl_enforced_q_encode(KL_STATE_MAX, eq);
	assert_int_equal(kl_enforced_q_decode(eq, sizeof(eq), &max, NULL, 0), 0);
	assert_int_equal(max, KL_STATE_MAX);
	kl_enforced_q_encode(KL_STATE_MAX + 1, eq);
	EXPECT_ERR(kl_enforced_q_decode(eq, sizeof(eq), &max, err, sizeof(err)),
		   "field 'max' is 1048577, above the limit");
	kl_enforced_q_encode(5, eq);
	eq[7] = 1;
	EXPECT_ERR(kl_enforced_q_decode(eq, sizeof(eq), &max, err, sizeof(err)),
		   "ENFORCED_Q: reserved bytes 4..7");
	EXPECT_ERR(kl_enforced_q_decode(eq, 0, &max, err, sizeof(err)), "0 bytes, want exactly 8");
}

/* ---- STATE ---- */

static void test_state(void **state)
{
	(void)state;
	struct kl_state_rec s[4] = {
		{ .addr = host("198.18.0.1"), .kind = KL_STATE_RL, .rate_pps = 5, .burst = 5,
		  .expires_in_ms = 59000 },
		{ .addr = host("fd00:6b6c::1"), .kind = KL_STATE_DENY, .expires_in_ms = 1 },
		{ .addr = host("198.18.0.2"), .kind = KL_STATE_EDGE_ALLOW, .proto = 6, .port = 443,
		  .expires_in_ms = 0 },
		{ .addr = host("fd00:6b6c::2"), .kind = KL_STATE_EDGE_DENY, .proto = 58 },
	}, out[4];
	size_t len = kl_state_len(4);
	uint8_t *p = malloc(len), *q = malloc(len);
	uint32_t n;
	bool tr;
	kl_state_encode(s, 4, true, p);
	assert_int_equal(kl_state_decode(p, len, out, 4, &n, &tr, NULL, 0), 0);
	assert_int_equal(n, 4);
	assert_true(tr);
	for (int i = 0; i < 4; i++) {
		assert_memory_equal(&out[i].addr, &s[i].addr, sizeof(s[i].addr));
		assert_int_equal(out[i].kind, s[i].kind);
		assert_int_equal(out[i].proto, s[i].proto);
		assert_int_equal(out[i].port, s[i].port);
		assert_int_equal(out[i].rate_pps, s[i].rate_pps);
		assert_int_equal(out[i].burst, s[i].burst);
		assert_int_equal(out[i].expires_in_ms, s[i].expires_in_ms);
	}
	kl_state_encode(out, n, tr, q);
	assert_memory_equal(q, p, len);
	assert_int_equal(rec(p, 2, 40)[4] | rec(p, 2, 40)[5] << 8, 443);

#define MUT(stmt, substr)                                                                         \
	do {                                                                                      \
		memcpy(q, p, len);                                                                \
		stmt;                                                                             \
		EXPECT_ERR(kl_state_decode(q, len, out, 4, &n, &tr, err, sizeof(err)), substr);  \
	} while (0)
	MUT(q[4] = 2, "STATE: field 'truncated' is 2");
	MUT(rec(q, 0, 40)[1] = 0, "STATE record 0: field 'kind' is 0");
	MUT(rec(q, 0, 40)[1] = 5, "field 'kind' is 5");
	MUT(rec(q, 0, 40)[4] = 80, "STATE record 0: kind rl has no proto or port");
	MUT(put32(rec(q, 0, 40) + 28, 0), "STATE record 0: field 'burst' is 0");
	MUT(put32(rec(q, 1, 40) + 24, 1), "STATE record 1: kind deny has no rate_pps or burst");
	MUT(rec(q, 1, 40)[2] = 6, "kind deny has no proto or port");
	MUT(rec(q, 3, 40)[2] = 1, "STATE record 3: field 'proto' is ICMP (1) but the address is IPv6");
	MUT(rec(q, 3, 40)[4] = 1, "STATE record 3: field 'port' is 1, must be 0 for ICMP");
	MUT(rec(q, 2, 40)[2] = 99, "field 'proto' is 99");
	MUT(rec(q, 2, 40)[3] = 1, "STATE record 2: reserved bytes 3 and 6..7");
	MUT(rec(q, 2, 40)[7] = 1, "reserved bytes 3 and 6..7");
	MUT(put32(rec(q, 2, 40) + 28, 1), "kind edge-allow has no rate_pps or burst");
#undef MUT
	EXPECT_ERR(kl_state_decode(p, len, out, 3, &n, &tr, err, sizeof(err)), "room for 3");
	EXPECT_ERR(kl_state_decode(p, len + 40, out, 4, &n, &tr, err, sizeof(err)), "want exactly 168");
	free(p);
	free(q);
}

/* ---- EDGE_RULES ---- */

static void test_edge_rules(void **state)
{
	(void)state;
	struct kl_edge_rule e[5] = {
		{ .src = host("198.18.0.1"), .action = KL_EDGE_ACT_ADD_ALLOW, .proto = 6, .port = 443,
		  .ttl_ms = 600000 },
		{ .src = host("198.18.0.1"), .action = KL_EDGE_ACT_DEL_ALLOW, .proto = 17, .port = 53 },
		{ .src = host("fd00:6b6c::1"), .action = KL_EDGE_ACT_ADD_DENY, .proto = 58,
		  .ttl_ms = 30 * DAY_MS },
		{ .src = host("198.18.0.3"), .action = KL_EDGE_ACT_DEL_DENY, .proto = 1 },
		{ .src = host("198.18.0.4"), .action = KL_EDGE_ACT_ADD_DENY, .proto = 6, .port = 0,
		  .ttl_ms = 1000 },
	}, out[5];
	size_t len = kl_edge_rules_len(5);
	uint8_t *p = malloc(len), *q = malloc(len);
	uint32_t n;
	assert_int_equal(len, 8 + 5 * 32);
	kl_edge_rules_encode(e, 5, p);
	assert_int_equal(kl_edge_rules_decode(p, len, out, 5, &n, NULL, 0), 0);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++) {
		assert_memory_equal(&out[i].src, &e[i].src, sizeof(e[i].src));
		assert_int_equal(out[i].action, e[i].action);
		assert_int_equal(out[i].proto, e[i].proto);
		assert_int_equal(out[i].port, e[i].port);
		assert_int_equal(out[i].ttl_ms, e[i].ttl_ms);
	}
	kl_edge_rules_encode(out, n, q);
	assert_memory_equal(q, p, len);
	/* layout: ttl at 8 (u64), address at 16 */
	assert_int_equal(rec(p, 0, 32)[16], 198);
	assert_int_equal(rec(p, 0, 32)[8] | rec(p, 0, 32)[9] << 8, 600000 & 0xffff);

#define MUT(stmt, substr)                                                                         \
	do {                                                                                      \
		memcpy(q, p, len);                                                                \
		stmt;                                                                             \
		EXPECT_ERR(kl_edge_rules_decode(q, len, out, 5, &n, err, sizeof(err)), substr);  \
	} while (0)
	MUT(q[5] = 1, "EDGE_RULES: header bytes 4..7 (reserved)");
	MUT(put32(q, KL_EDGE_RULES_MAX + 1), "field 'n' is 65537");
	MUT(rec(q, 0, 32)[1] = 0, "EDGE_RULES record 0: field 'action' is 0");
	MUT(rec(q, 0, 32)[1] = 5, "field 'action' is 5");
	MUT(rec(q, 0, 32)[3] = 1, "EDGE_RULES record 0: reserved bytes 3 and 6..7");
	MUT(rec(q, 0, 32)[6] = 1, "reserved bytes 3 and 6..7");
	MUT(rec(q, 0, 32)[0] = 0, "field 'family' is 0");
	MUT(rec(q, 0, 32)[20] = 1, "EDGE_RULES record 0: field 'addr' bytes 4..15");
	MUT(rec(q, 0, 32)[2] = 58, "ICMPv6 (58) but the address is IPv4");
	MUT(rec(q, 2, 32)[2] = 1, "EDGE_RULES record 2: field 'proto' is ICMP (1) but the address is IPv6");
	MUT(rec(q, 3, 32)[4] = 7, "EDGE_RULES record 3: field 'port' is 7, must be 0 for ICMP");
	MUT(rec(q, 0, 32)[2] = 0, "field 'proto' is 0");
	MUT(put64(rec(q, 0, 32) + 8, 999), "EDGE_RULES record 0: field 'ttl_ms' is 999, want 1000..2592000000");
	MUT(put64(rec(q, 2, 32) + 8, 30 * DAY_MS + 1), "field 'ttl_ms' is 2592000001");
	MUT(put64(rec(q, 1, 32) + 8, 1000), "EDGE_RULES record 1: field 'ttl_ms' must be 0 for del-allow");
#undef MUT
	EXPECT_ERR(kl_edge_rules_decode(p, len, out, 4, &n, err, sizeof(err)), "5 records, room for 4");
	EXPECT_ERR(kl_edge_rules_decode(p, len - 32, out, 5, &n, err, sizeof(err)),
		   "want exactly 168 for n=5");
	free(p);
	free(q);
}

static void test_names(void **state)
{
	(void)state;
	for (unsigned l = 0; l < KL_DEC_LEVEL_MAX; l++)
		assert_int_equal(kl_dec_level_parse(kl_dec_level_name(l)), (int)l);
	assert_string_equal(kl_dec_level_name(KL_DEC_RATE_HARD), "RATE_HARD");
	assert_int_equal(kl_dec_level_parse("rate_hard"), -1);
	assert_int_equal(kl_dec_level_parse(NULL), -1);
	assert_string_equal(kl_dec_level_name(4), "UNKNOWN");
	assert_string_equal(kl_state_kind_name(KL_STATE_EDGE_DENY), "edge-deny");
	assert_string_equal(kl_state_kind_name(0), "unknown");
	assert_string_equal(kl_edge_action_name(KL_EDGE_ACT_DEL_DENY), "del-deny");
	assert_string_equal(kl_edge_action_name(KL_EDGE_ACT_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions_round_trip),
		cmocka_unit_test(test_decisions_rejections),
		cmocka_unit_test(test_acks),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_newsrc_limit),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_edge_rules),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
