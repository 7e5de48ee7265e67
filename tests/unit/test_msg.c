/* SPDX-License-Identifier: MPL-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bpf/shield.h"
#include "ipc/msg.h"

/* Byte offsets of the CONTROL record (DESIGN §4 / the brief), restated
 * here so that the test pins the wire layout independently of msg.c. */
#define O_CMD 0
#define O_MODE 2
#define O_PROTO 3
#define O_FLAGS 4
#define O_FAMILY 8
#define O_PLEN 9
#define O_ADDR 10
#define O_PORT 26
#define O_RATE 28
#define O_BURST 36
#define O_TTL 44
#define O_COUNT 52
#define O_IFNAME 60
#define O_RES 76

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le(uint8_t *p, int n, uint64_t v)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static struct kl_addr A(const char *s)
{
	struct kl_addr a;
	char err[128];
	if (kl_cidr_parse(s, &a, err, sizeof(err)) != 0)
		fail_msg("fixture %s: %s", s, err);
	return a;
}

/* ---- header ---- */

static void test_hdr_layout_and_round_trip(void **state)
{
	(void)state;
	uint8_t buf[KL_MSG_HDR_LEN + 3];
	struct kl_msg_hdr h = {
		.magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION, .type = KL_MSG_CONTROL,
		.flags = 0, .payload_len = 3, .seq = 0x0102030405060708ull,
		.tick = 0x1112131415161718ull,
	};
	kl_msg_hdr_encode(&h, buf);
	assert_memory_equal(buf, "KLM1", 4);
	assert_int_equal(le(buf + 4, 2), 2);
	assert_int_equal(buf[6], KL_MSG_CONTROL);
	assert_int_equal(buf[7], 0);
	assert_int_equal(le(buf + 8, 4), 0);
	assert_int_equal(le(buf + 12, 4), 3);
	assert_int_equal(buf[16], 0x08); /* little-endian */
	assert_int_equal(buf[23], 0x01);
	assert_int_equal(le(buf + 24, 8), 0x1112131415161718ull);
	memcpy(buf + KL_MSG_HDR_LEN, "abc", 3);

	struct kl_msg m;
	char err[256];
	assert_int_equal(kl_msg_decode(buf, sizeof(buf), &m, err, sizeof(err)), 0);
	assert_int_equal(m.hdr.magic, KL_MSG_MAGIC);
	assert_int_equal(m.hdr.version, KL_MSG_VERSION);
	assert_int_equal(m.hdr.type, KL_MSG_CONTROL);
	assert_int_equal(m.hdr.seq, 0x0102030405060708ull);
	assert_int_equal(m.hdr.tick, 0x1112131415161718ull);
	assert_int_equal(m.payload_len, 3);
	assert_ptr_equal(m.payload, buf + KL_MSG_HDR_LEN);

	/* Empty payload is fine. */
	h.payload_len = 0;
	kl_msg_hdr_encode(&h, buf);
	assert_int_equal(kl_msg_decode(buf, KL_MSG_HDR_LEN, &m, err, sizeof(err)), 0);
	assert_int_equal(m.payload_len, 0);
}

static void expect_hdr_fail(const uint8_t *buf, size_t len, const char *sub)
{
	struct kl_msg m;
	char err[256] = "";
	if (kl_msg_decode(buf, len, &m, err, sizeof(err)) != -1)
		fail_msg("header accepted, wanted '%s'", sub);
	if (strstr(err, sub) == NULL)
		fail_msg("error '%s' lacks '%s'", err, sub);
}

static void test_hdr_rejections(void **state)
{
	(void)state;
	uint8_t good[KL_MSG_HDR_LEN + 8], b[sizeof(good) + 1];
	struct kl_msg_hdr h = {
		.magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION, .type = KL_MSG_HELLO,
		.payload_len = 8,
	};
	kl_msg_hdr_encode(&h, good);
	memset(good + KL_MSG_HDR_LEN, 0, 8);

	expect_hdr_fail(good, 31, "too short");
	expect_hdr_fail(good, 0, "too short");
	expect_hdr_fail(NULL, 40, "too short");
	expect_hdr_fail(good, sizeof(good) - 1, "'payload_len' is 8 but 7");
	memcpy(b, good, sizeof(good));
	b[sizeof(good)] = 0;
	expect_hdr_fail(b, sizeof(good) + 1, "'payload_len' is 8 but 9");

	memcpy(b, good, sizeof(good));
	b[0] ^= 1;
	expect_hdr_fail(b, sizeof(good), "'magic'");
	memcpy(b, good, sizeof(good));
	put_le(b + 4, 2, 1);
	expect_hdr_fail(b, sizeof(good), "'version' is 1");
	put_le(b + 4, 2, 3);
	expect_hdr_fail(b, sizeof(good), "'version' is 3");
	put_le(b + 4, 2, 0);
	expect_hdr_fail(b, sizeof(good), "'version' is 0");
	memcpy(b, good, sizeof(good));
	put_le(b + 6, 2, 0);
	expect_hdr_fail(b, sizeof(good), "'type' is 0");
	put_le(b + 6, 2, KL_MSG_TYPE_MAX);
	expect_hdr_fail(b, sizeof(good), "'type' is 17");
	put_le(b + 6, 2, 0x100 | KL_MSG_HELLO);
	expect_hdr_fail(b, sizeof(good), "'type' is 257");
	memcpy(b, good, sizeof(good));
	put_le(b + 8, 4, 0x80000000u);
	expect_hdr_fail(b, sizeof(good), "'flags'");
	memcpy(b, good, sizeof(good));
	put_le(b + 12, 4, KL_MSG_MAX_PAYLOAD + 1);
	expect_hdr_fail(b, sizeof(good), "above the limit");
	put_le(b + 12, 4, 0xffffffffu);
	expect_hdr_fail(b, sizeof(good), "above the limit");
}

/* ---- HELLO ---- */

static void test_hello(void **state)
{
	(void)state;
	struct kl_hello h = { .role = KL_ROLE_DECIDER, .proto_version = KL_MSG_VERSION,
			      .pid = 0x01020304 }, out;
	uint8_t p[KL_HELLO_LEN], q[KL_HELLO_LEN + 1];
	char err[256] = "";

	kl_hello_encode(&h, p);
	const uint8_t want[KL_HELLO_LEN] = { 3, 0, 2, 0, 4, 3, 2, 1 };
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(kl_hello_decode(p, sizeof(p), &out, err, sizeof(err)), 0);
	assert_int_equal(out.role, KL_ROLE_DECIDER);
	assert_int_equal(out.proto_version, KL_MSG_VERSION);
	assert_int_equal(out.pid, 0x01020304);

	assert_int_equal(kl_hello_decode(p, 7, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "want exactly 8"));
	memcpy(q, p, sizeof(p));
	assert_int_equal(kl_hello_decode(q, 9, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "9 bytes"));
	p[0] = 0;
	assert_int_equal(kl_hello_decode(p, sizeof(p), &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'role' is 0"));
	p[0] = KL_ROLE_MAX;
	assert_int_equal(kl_hello_decode(p, sizeof(p), &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'role' is 6"));
	/* A foreign protocol version decodes: the receiver answers it. */
	h.proto_version = 9;
	kl_hello_encode(&h, p);
	assert_int_equal(kl_hello_decode(p, sizeof(p), &out, err, sizeof(err)), 0);
	assert_int_equal(out.proto_version, 9);
}

/* Admission order: malformed, role switch, wrong role, wrong version,
 * then a first HELLO admits and a repeat is only a repeat. */
static enum kl_hello_verdict admit(uint16_t role, uint16_t version, enum kl_role current,
				   char *why, size_t whylen)
{
	struct kl_hello h = { .role = role, .proto_version = version, .pid = 7 }, out;
	uint8_t p[KL_HELLO_LEN];
	struct kl_msg m = { .hdr = { .type = KL_MSG_HELLO }, .payload = p,
			    .payload_len = sizeof(p) };

	kl_hello_encode(&h, p);
	return kl_hello_admit(&m, current, KL_ROLE_DECIDER, &out, why, whylen);
}

static void test_hello_admit(void **state)
{
	char why[192];
	(void)state;

	assert_int_equal(admit(KL_ROLE_DECIDER, KL_MSG_VERSION, KL_ROLE_NONE, why, sizeof(why)),
			 KL_HELLO_ADMIT);
	assert_int_equal(admit(KL_ROLE_DECIDER, KL_MSG_VERSION, KL_ROLE_DECIDER, why,
			       sizeof(why)),
			 KL_HELLO_AGAIN);
	assert_int_equal(admit(KL_ROLE_GRAPHD, KL_MSG_VERSION, KL_ROLE_NONE, why, sizeof(why)),
			 KL_HELLO_WRONG_ROLE);
	assert_string_equal(why, "role graphd may not connect to this socket (it serves decider)");
	assert_int_equal(admit(KL_ROLE_GRAPHD, KL_MSG_VERSION, KL_ROLE_DECIDER, why,
			       sizeof(why)),
			 KL_HELLO_ROLE_SWITCH);
	assert_non_null(strstr(why, "another role"));
	assert_int_equal(admit(KL_ROLE_DECIDER, KL_MSG_VERSION + 1, KL_ROLE_NONE, why, sizeof(why)),
			 KL_HELLO_WRONG_VERSION);
	assert_non_null(strstr(why, "protocol version 3 not supported"));
	/* Protocol 1 (one frame per tick) is refused too. */
	assert_int_equal(admit(KL_ROLE_DECIDER, 1, KL_ROLE_NONE, why, sizeof(why)),
			 KL_HELLO_WRONG_VERSION);
	assert_non_null(strstr(why, "protocol version 1 not supported"));
	/* Even a repeat must carry the version this side speaks. */
	assert_int_equal(admit(KL_ROLE_DECIDER, KL_MSG_VERSION + 1, KL_ROLE_DECIDER, why, sizeof(why)),
			 KL_HELLO_WRONG_VERSION);
	assert_int_equal(admit(0, KL_MSG_VERSION, KL_ROLE_NONE, why, sizeof(why)),
			 KL_HELLO_MALFORMED);
	assert_non_null(strstr(why, "'role' is 0"));
}

/* ---- CONTROL ---- */

/* One valid request per command. */
static struct kl_ctl_req base(unsigned cmd)
{
	struct kl_ctl_req r;
	memset(&r, 0, sizeof(r));
	r.cmd = (uint16_t)cmd;
	switch (cmd) {
	case KL_CTL_TOP_SRC: r.mode = KL_TOP_DROPS; r.count = 10; break;
	case KL_CTL_EVENTS: r.count = 100; break;
	case KL_CTL_ATTACH:
		strcpy(r.ifname, "veth-a.1:x_Y");
		r.flags = KL_CTL_F_FORCE;
		r.mode = KL_XDP_GENERIC;
		break;
	case KL_CTL_DETACH: strcpy(r.ifname, "eth1"); break;
	case KL_CTL_ALLOW_ADD: r.addr = A("198.18.0.0/15"); break;
	case KL_CTL_ALLOW_DEL: r.addr = A("fd00:6b6c::1"); break;
	case KL_CTL_ALLOW_LIST: r.count = 50; break;
	case KL_CTL_ENFORCE_ALLOW: r.mode = 1; break;
	case KL_CTL_DENY_ADD: r.addr = A("fd00:6b6c::/48"); r.ttl_ms = 2000; break;
	case KL_CTL_DENY_DEL: r.addr = A("198.18.0.7"); break;
	case KL_CTL_RL_SET: r.rate = 1000; r.burst = 100; break;
	case KL_CTL_RL_SET_IP:
		r.addr = A("198.18.0.9");
		r.rate = 0; /* drop all from it: allowed per source */
		r.burst = 1;
		r.ttl_ms = 30000;
		break;
	case KL_CTL_RL_UNSET_IP: r.addr = A("fd00:6b6c::9"); break;
	case KL_CTL_TUPLE_ENFORCE: r.mode = KL_EDGE_ALLOW; break;
	case KL_CTL_EDGE_ADD_DENY:
		r.addr = A("198.18.0.3"); r.port = 22; r.proto = 6; r.ttl_ms = 1000;
		break;
	case KL_CTL_EDGE_DEL_DENY: r.addr = A("fd00:6b6c::3"); r.proto = 58; break;
	case KL_CTL_EDGE_ADD_ALLOW: r.addr = A("198.18.0.3"); r.proto = 1; break;
	case KL_CTL_EDGE_DEL_ALLOW: r.addr = A("fd00:6b6c::1"); r.proto = 17; r.port = 53; break;
	case KL_CTL_SAMPLING: r.count = 1023; break;
	case KL_CTL_SOURCES: r.count = 20; break;
	case KL_CTL_FORGIVE: r.addr = A("198.18.0.0/24"); r.ttl_ms = 3600000; break;
	case KL_CTL_GRAPH_EXPORT: r.mode = 1 + 2; break; /* frozen */
	case KL_CTL_GRAPH_FREEZE: r.mode = 1; break;
	case KL_CTL_GRAPH_APPROVE: r.addr = A("198.18.0.5"); break; /* every edge */
	case KL_CTL_GRAPH_DENY: r.addr = A("fd00:6b6c::5"); r.port = 8080; r.proto = 6; break;
	case KL_CTL_GRAPH_VIOLATIONS: r.ttl_ms = 3600000; r.count = 100; break;
	case KL_CTL_BASELINE: r.addr = A("fd00:6b6c::7"); break;
	case KL_CTL_NEWSRC_LIMIT: r.rate = 0; r.burst = 100; r.ttl_ms = 600000; break;
	case KL_CTL_WHITELIST_ADD:
		r.addr = A("fd00:6b6c::/64");
		r.mode = 1;
		r.ttl_ms = 1893456000000ull; /* until 2030-01-01 */
		break;
	case KL_CTL_WHITELIST_DEL: r.addr = A("198.18.0.0/24"); break;
	case KL_CTL_WHITELIST_LIST: r.count = 10; break;
	default: break;
	}
	return r;
}

static void test_ctl_round_trip_every_cmd(void **state)
{
	(void)state;
	for (unsigned cmd = 1; cmd < KL_CTL_CMD_MAX; cmd++) {
		struct kl_ctl_req r = base(cmd), out;
		uint8_t p[KL_CTL_REQ_LEN], again[KL_CTL_REQ_LEN];
		char err[256] = "";
		memset(&out, 0x5a, sizeof(out));
		kl_ctl_req_encode(&r, p);
		if (kl_ctl_req_decode(p, sizeof(p), &out, err, sizeof(err)) != 0)
			fail_msg("%s rejected: %s", kl_ctl_cmd_name(cmd), err);
		assert_int_equal(out.cmd, r.cmd);
		assert_int_equal(out.mode, r.mode);
		assert_int_equal(out.proto, r.proto);
		assert_int_equal(out.flags, r.flags);
		assert_memory_equal(&out.addr, &r.addr, sizeof(r.addr));
		assert_int_equal(out.port, r.port);
		assert_int_equal(out.rate, r.rate);
		assert_int_equal(out.burst, r.burst);
		assert_int_equal(out.ttl_ms, r.ttl_ms);
		assert_int_equal(out.count, r.count);
		assert_memory_equal(out.ifname, r.ifname, KL_IFNAMSIZ);
		kl_ctl_req_encode(&out, again);
		assert_memory_equal(p, again, sizeof(p));
		assert_string_not_equal(kl_ctl_cmd_name(cmd), "unknown");
	}
	assert_string_equal(kl_ctl_cmd_name(0), "unknown");
	assert_string_equal(kl_ctl_cmd_name(KL_CTL_CMD_MAX), "unknown");
	assert_string_equal(kl_ctl_cmd_name(KL_CTL_RL_SET_IP), "rl-set-ip");
	assert_string_equal(kl_ctl_cmd_name(KL_CTL_TUNE), "tune");
	assert_string_equal(kl_ctl_cmd_name(KL_CTL_NEWSRC_LIMIT), "new-sources-limit");
}

static void test_ctl_layout(void **state)
{
	(void)state;
	struct kl_ctl_req r;
	uint8_t p[KL_CTL_REQ_LEN];
	memset(&r, 0, sizeof(r));
	r.cmd = 0x0a0b;
	r.mode = 0xc1;
	r.proto = 0xc2;
	r.flags = 0xd1d2d3d4;
	r.addr.family = 6;
	r.addr.prefixlen = 0x77;
	for (int i = 0; i < 16; i++)
		r.addr.addr[i] = (uint8_t)(0xa0 + i);
	r.port = 0xbeef;
	r.rate = 0x1111111111111112ull;
	r.burst = 0x2222222222222223ull;
	r.ttl_ms = 0x3333333333333334ull;
	r.count = 0x4444444444444445ull;
	memcpy(r.ifname, "abcdefghijklmno", 16);
	kl_ctl_req_encode(&r, p);
	assert_int_equal(le(p + O_CMD, 2), 0x0a0b);
	assert_int_equal(p[O_MODE], 0xc1);
	assert_int_equal(p[O_PROTO], 0xc2);
	assert_int_equal(le(p + O_FLAGS, 4), 0xd1d2d3d4);
	assert_int_equal(p[O_FAMILY], 6);
	assert_int_equal(p[O_PLEN], 0x77);
	assert_memory_equal(p + O_ADDR, r.addr.addr, 16); /* network order, as stored */
	assert_int_equal(le(p + O_PORT, 2), 0xbeef);
	assert_int_equal(le(p + O_RATE, 8), 0x1111111111111112ull);
	assert_int_equal(le(p + O_BURST, 8), 0x2222222222222223ull);
	assert_int_equal(le(p + O_TTL, 8), 0x3333333333333334ull);
	assert_int_equal(le(p + O_COUNT, 8), 0x4444444444444445ull);
	assert_memory_equal(p + O_IFNAME, "abcdefghijklmno", 16);
	assert_int_equal(le(p + O_RES, 4), 0);

	/* Garbage after the NUL of ifname is not sent. */
	memset(&r, 0, sizeof(r));
	r.cmd = KL_CTL_DETACH;
	memcpy(r.ifname, "lo\0GARBAGE", 10);
	kl_ctl_req_encode(&r, p);
	const uint8_t zero[14] = { 0 };
	assert_memory_equal(p + O_IFNAME + 2, zero, 14);
}

struct ctl_bad {
	unsigned cmd;   /* base request */
	int off, n;     /* bytes to overwrite (little-endian) */
	uint64_t val;
	const char *sub;
};

static const struct ctl_bad ctl_bad[] = {
	/* command and flags */
	{ KL_CTL_STATUS, O_CMD, 2, 0, "'cmd' is 0" },
	{ KL_CTL_STATUS, O_CMD, 2, KL_CTL_CMD_MAX, "not a known command" },
	{ KL_CTL_STATUS, O_CMD, 2, 0xffff, "'cmd' is 65535" },
	{ KL_CTL_ATTACH, O_FLAGS, 4, 0x2, "unknown bits 0x2" },
	{ KL_CTL_ATTACH, O_FLAGS, 4, 0x80000001u, "unknown bits" },
	{ KL_CTL_DETACH, O_FLAGS, 4, KL_CTL_F_FORCE, "only attach" },
	{ KL_CTL_DENY_ADD, O_FLAGS, 4, KL_CTL_F_FORCE, "only attach" },
	/* reserved */
	{ KL_CTL_STATUS, O_RES, 1, 1, "reserved" },
	{ KL_CTL_RL_SET, O_RES + 3, 1, 0x80, "reserved" },
	/* ifname */
	{ KL_CTL_ATTACH, O_IFNAME, 8, 0x4141414141414141ull, "" /* patched below */ },
	{ KL_CTL_ATTACH, O_IFNAME + 15, 1, 'x', "bytes after its NUL" },
	{ KL_CTL_DETACH, O_IFNAME + 6, 1, 'x', "bytes after its NUL" },
	{ KL_CTL_ATTACH, O_IFNAME, 1, 0, "bytes after its NUL" },
	{ KL_CTL_DETACH, O_IFNAME, 4, 0, "'ifname' is empty" },
	{ KL_CTL_DETACH, O_IFNAME + 3, 1, ' ', "byte 0x20 at 3" },
	{ KL_CTL_DETACH, O_IFNAME + 1, 1, '/', "byte 0x2f at 1" },
	{ KL_CTL_DETACH, O_IFNAME + 1, 1, 0xc3, "byte 0xc3" },
	{ KL_CTL_DETACH, O_IFNAME, 4, 0x2e2e, "may not be '.' or '..'" },
	{ KL_CTL_DETACH, O_IFNAME, 4, 0x2e, "may not be '.' or '..'" },
	{ KL_CTL_STATUS, O_IFNAME, 1, 'e', "'ifname' must be empty" },
	{ KL_CTL_DENY_ADD, O_IFNAME + 15, 1, 'e', "bytes after its NUL" },
	/* mode */
	{ KL_CTL_TOP_SRC, O_MODE, 1, KL_TOP_MAX, "'mode' is 4" },
	{ KL_CTL_ATTACH, O_MODE, 1, KL_XDP_MODE_MAX, "'mode' is 3" },
	{ KL_CTL_ENFORCE_ALLOW, O_MODE, 1, 2, "'mode' is 2, want 0 (off) or 1 (on)" },
	{ KL_CTL_TUPLE_ENFORCE, O_MODE, 1, 3, "'mode' is 3" },
	{ KL_CTL_STATS, O_MODE, 1, 1, "'mode' must be 0" },
	{ KL_CTL_STATUS, O_MODE, 1, 2, "'mode' is 2" },
	{ KL_CTL_DETACH, O_MODE, 1, 1, "'mode' must be 0" },
	{ KL_CTL_WHITELIST_ADD, O_MODE, 1, 2, "'mode' is 2, want 0 (ttl_ms is a duration)" },
	/* whitelist-add: an absolute time in mode 1, a duration in mode 0 */
	{ KL_CTL_WHITELIST_ADD, O_TTL, 8, 0, "want 1..253402300799000" },
	{ KL_CTL_WHITELIST_ADD, O_TTL, 8, 253402300799001ull, "an absolute time with mode 1" },
	{ KL_CTL_WHITELIST_DEL, O_TTL, 8, 1, "'ttl_ms' must be 0" },
	{ KL_CTL_WHITELIST_LIST, O_FAMILY, 1, 4, "'addr' must be empty" },
	/* addr: unused */
	{ KL_CTL_STATUS, O_FAMILY, 1, 4, "'addr' must be empty" },
	{ KL_CTL_STATUS, O_PLEN, 1, 32, "'addr' must be empty" },
	{ KL_CTL_RL_SET, O_ADDR + 15, 1, 1, "'addr' must be empty" },
	{ KL_CTL_EDGE_LIST, O_FAMILY, 1, 6, "'addr' must be empty" },
	/* addr: used */
	{ KL_CTL_ALLOW_ADD, O_FAMILY, 1, 0, "'addr.family' is 0" },
	{ KL_CTL_ALLOW_ADD, O_FAMILY, 1, 5, "'addr.family' is 5" },
	{ KL_CTL_DENY_DEL, O_FAMILY, 1, 2, "'addr.family' is 2" },
	{ KL_CTL_ALLOW_ADD, O_PLEN, 1, 33, "'addr.prefixlen' is 33, out of range 0..32" },
	{ KL_CTL_DENY_ADD, O_PLEN, 1, 129, "out of range 0..128" },
	{ KL_CTL_DENY_ADD, O_PLEN, 1, 255, "out of range 0..128" },
	{ KL_CTL_ALLOW_ADD, O_ADDR + 2, 1, 1, "host bits set after /15" },
	{ KL_CTL_ALLOW_ADD, O_ADDR + 4, 1, 1, "bytes 4..15 must be zero" },
	{ KL_CTL_DENY_DEL, O_ADDR + 15, 1, 1, "bytes 4..15 must be zero" },
	{ KL_CTL_DENY_ADD, O_ADDR + 6, 1, 0x80, "host bits set after /48" },
	{ KL_CTL_RL_SET_IP, O_PLEN, 1, 24, "needs a single address (/32)" },
	{ KL_CTL_RL_UNSET_IP, O_PLEN, 1, 64, "needs a single address (/128)" },
	{ KL_CTL_EDGE_ADD_DENY, O_PLEN, 1, 31, "needs a single address" },
	{ KL_CTL_EDGE_DEL_ALLOW, O_PLEN, 1, 0, "needs a single address" },
	{ KL_CTL_RL_SET_IP, O_FAMILY, 1, 0, "'addr.family' is 0" },
	/* proto and port */
	{ KL_CTL_EDGE_ADD_DENY, O_PROTO, 1, 0, "'proto' is 0" },
	{ KL_CTL_EDGE_ADD_DENY, O_PROTO, 1, 47, "'proto' is 47" },
	{ KL_CTL_EDGE_ADD_ALLOW, O_PROTO, 1, 58, "ICMPv6 (58) but the address is IPv4" },
	{ KL_CTL_EDGE_DEL_DENY, O_PROTO, 1, 1, "ICMP (1) but the address is IPv6" },
	{ KL_CTL_EDGE_ADD_ALLOW, O_PORT, 2, 5, "'port' is 5, must be 0 for ICMP" },
	{ KL_CTL_EDGE_DEL_DENY, O_PORT, 2, 0xffff, "must be 0 for ICMP" },
	{ KL_CTL_STATUS, O_PROTO, 1, 6, "'proto' must be 0" },
	{ KL_CTL_DENY_ADD, O_PROTO, 1, 17, "'proto' must be 0" },
	{ KL_CTL_DENY_ADD, O_PORT, 2, 80, "'port' must be 0" },
	{ KL_CTL_RL_SET_IP, O_PORT, 2, 1, "'port' must be 0" },
	/* rate and burst */
	{ KL_CTL_RL_SET, O_RATE, 8, 0, "'rate' must be at least 1" },
	{ KL_CTL_RL_SET, O_RATE, 8, KL_CTL_MAX_RATE + 1, "'rate' is 100000001, above the limit" },
	{ KL_CTL_RL_SET_IP, O_RATE, 8, KL_CTL_MAX_RATE + 1, "above the limit" },
	{ KL_CTL_RL_SET_IP, O_RATE, 8, UINT64_MAX, "above the limit" },
	{ KL_CTL_RL_SET, O_BURST, 8, 0, "'burst' must be at least 1" },
	{ KL_CTL_RL_SET_IP, O_BURST, 8, 0, "'burst' must be at least 1" },
	{ KL_CTL_RL_SET, O_BURST, 8, KL_CTL_MAX_BURST + 1, "'burst' is 100000001, above" },
	{ KL_CTL_DENY_ADD, O_RATE, 8, 1, "'rate' must be 0" },
	{ KL_CTL_RL_OFF, O_RATE, 8, 1, "'rate' must be 0" },
	{ KL_CTL_DENY_ADD, O_BURST, 8, 1, "'burst' must be 0" },
	{ KL_CTL_EDGE_ADD_DENY, O_BURST, 8, 1, "'burst' must be 0" },
	/* ttl */
	{ KL_CTL_DENY_ADD, O_TTL, 8, KL_CTL_MAX_TTL_MS + 1, "'ttl_ms' is 315360000001, above" },
	{ KL_CTL_RL_SET_IP, O_TTL, 8, UINT64_MAX, "above the limit" },
	{ KL_CTL_EDGE_ADD_ALLOW, O_TTL, 8, KL_CTL_MAX_TTL_MS + 1, "above the limit" },
	{ KL_CTL_DENY_DEL, O_TTL, 8, 1, "'ttl_ms' must be 0" },
	{ KL_CTL_ALLOW_ADD, O_TTL, 8, 1, "'ttl_ms' must be 0" },
	{ KL_CTL_EDGE_DEL_DENY, O_TTL, 8, 5, "'ttl_ms' must be 0" },
	{ KL_CTL_RL_SET, O_TTL, 8, 5, "'ttl_ms' must be 0" },
	/* count */
	{ KL_CTL_TOP_SRC, O_COUNT, 8, KL_CTL_MAX_COUNT + 1, "'count' is 10000001, above" },
	{ KL_CTL_EVENTS, O_COUNT, 8, UINT64_MAX, "above the limit" },
	{ KL_CTL_SAMPLING, O_COUNT, 8, 0x100000000ull, "above 0xffffffff" },
	{ KL_CTL_SAMPLING, O_COUNT, 8, 0x1ffffffffull, "above 0xffffffff" },
	{ KL_CTL_SAMPLING, O_COUNT, 8, 6, "want 0 or 2^k-1" },
	{ KL_CTL_SAMPLING, O_COUNT, 8, 0x80000000u, "want 0 or 2^k-1" },
	{ KL_CTL_STATUS, O_COUNT, 8, 1, "'count' must be 0" },
	{ KL_CTL_DENY_ADD, O_COUNT, 8, 1, "'count' must be 0" },
	{ KL_CTL_RESET, O_COUNT + 7, 1, 1, "'count' must be 0" },
	/* the decider's commands */
	{ KL_CTL_SOURCES, O_COUNT, 8, KL_CTL_MAX_COUNT + 1, "'count' is 10000001, above" },
	{ KL_CTL_SOURCES, O_FAMILY, 1, 4, "'addr' must be empty" },
	{ KL_CTL_SOURCES, O_TTL, 8, 1000, "'ttl_ms' must be 0" },
	{ KL_CTL_SOURCES, O_MODE, 1, 1, "'mode' must be 0" },
	{ KL_CTL_FORGIVE, O_FAMILY, 1, 0, "'addr.family' is 0" },
	{ KL_CTL_FORGIVE, O_ADDR + 3, 1, 1, "host bits set after /24" },
	{ KL_CTL_FORGIVE, O_PLEN, 1, 33, "out of range 0..32" },
	{ KL_CTL_FORGIVE, O_TTL, 8, KL_CTL_MAX_TTL_MS + 1, "'ttl_ms' is 315360000001, above" },
	{ KL_CTL_FORGIVE, O_COUNT, 8, 1, "'count' must be 0" },
	{ KL_CTL_FORGIVE, O_RATE, 8, 1, "'rate' must be 0" },
	{ KL_CTL_FORGIVE, O_IFNAME, 1, 'e', "'ifname' must be empty" },
	/* graphd's commands */
	{ KL_CTL_GRAPH_EXPORT, O_MODE, 1, 7, "'mode' is 7, want 0 (every edge)" },
	{ KL_CTL_GRAPH_EXPORT, O_FAMILY, 1, 4, "'addr' must be empty" },
	{ KL_CTL_GRAPH_FREEZE, O_MODE, 1, 2, "'mode' is 2, want 0 (freeze) or 1 (dry run)" },
	{ KL_CTL_GRAPH_APPROVE, O_PORT, 2, 80, "'port' is 80, must be 0 when 'proto' is 0" },
	{ KL_CTL_GRAPH_APPROVE, O_PLEN, 1, 24, "needs a single address (/32)" },
	{ KL_CTL_GRAPH_APPROVE, O_TTL, 8, 1, "'ttl_ms' must be 0" },
	{ KL_CTL_GRAPH_DENY, O_PROTO, 1, 47, "'proto' is 47" },
	{ KL_CTL_GRAPH_DENY, O_PROTO, 1, 1, "ICMP (1) but the address is IPv6" },
	{ KL_CTL_GRAPH_VIOLATIONS, O_TTL, 8, KL_CTL_MAX_TTL_MS + 1, "above the limit" },
	{ KL_CTL_GRAPH_VIOLATIONS, O_COUNT, 8, KL_CTL_MAX_COUNT + 1, "above the limit" },
	{ KL_CTL_GRAPH_VIOLATIONS, O_FAMILY, 1, 6, "'addr' must be empty" },
	/* klctl tune takes no arguments at all */
	{ KL_CTL_TUNE, O_COUNT, 8, 1, "'count' must be 0" },
	{ KL_CTL_NEWSRC_OFF, O_TTL, 8, 1000, "'ttl_ms' must be 0" },
	{ KL_CTL_TUNE, O_MODE, 1, 1, "'mode' must be 0" },
	{ KL_CTL_TUNE, O_FAMILY, 1, 4, "'addr' must be empty" },
	{ KL_CTL_TUNE, O_TTL, 8, 1000, "'ttl_ms' must be 0" },
	{ KL_CTL_TUNE, O_IFNAME, 1, 'e', "'ifname' must be empty" },
};

static void test_ctl_rejections(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ctl_bad) / sizeof(ctl_bad[0]); i++) {
		const struct ctl_bad *c = &ctl_bad[i];
		struct kl_ctl_req r = base(c->cmd), out;
		uint8_t p[KL_CTL_REQ_LEN];
		char err[256] = "";
		kl_ctl_req_encode(&r, p);
		put_le(p + c->off, c->n, c->val);
		const char *sub = c->sub;
		if (sub[0] == '\0') {
			/* 16 non-NUL bytes of ifname */
			memset(p + O_IFNAME, 'A', KL_IFNAMSIZ);
			sub = "not NUL-terminated within 16";
		}
		if (kl_ctl_req_decode(p, sizeof(p), &out, err, sizeof(err)) != -1)
			fail_msg("case %zu (%s) accepted, wanted '%s'", i, kl_ctl_cmd_name(c->cmd), sub);
		if (strstr(err, sub) == NULL)
			fail_msg("case %zu (%s): error '%s' lacks '%s'", i, kl_ctl_cmd_name(c->cmd),
				 err, sub);
		/* The message names the command (when it is known). */
		if (c->off != O_CMD && strstr(err, kl_ctl_cmd_name(c->cmd)) == NULL)
			fail_msg("case %zu: error '%s' does not name the command", i, err);
	}
}

static void test_ctl_length_and_edges(void **state)
{
	(void)state;
	struct kl_ctl_req r = base(KL_CTL_STATUS), out;
	uint8_t p[KL_CTL_REQ_LEN + 1];
	char err[256] = "";

	kl_ctl_req_encode(&r, p);
	p[KL_CTL_REQ_LEN] = 0;
	assert_int_equal(kl_ctl_req_decode(p, 79, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "79 bytes, want exactly 80"));
	assert_int_equal(kl_ctl_req_decode(p, 81, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "81 bytes"));
	assert_int_equal(kl_ctl_req_decode(p, 0, &out, err, sizeof(err)), -1);
	assert_int_equal(kl_ctl_req_decode(NULL, 80, &out, err, sizeof(err)), -1);

	/* Limits themselves are accepted. */
	struct { unsigned cmd; int off, n; uint64_t val; } edge_ok[] = {
		{ KL_CTL_RL_SET, O_RATE, 8, KL_CTL_MAX_RATE },
		{ KL_CTL_RL_SET, O_RATE, 8, 1 },
		{ KL_CTL_RL_SET, O_BURST, 8, KL_CTL_MAX_BURST },
		{ KL_CTL_RL_SET_IP, O_TTL, 8, KL_CTL_MAX_TTL_MS },
		{ KL_CTL_RL_SET_IP, O_TTL, 8, 0 },
		{ KL_CTL_TOP_SRC, O_COUNT, 8, KL_CTL_MAX_COUNT },
		{ KL_CTL_SOURCES, O_COUNT, 8, 0 },          /* the decider's default */
		{ KL_CTL_FORGIVE, O_TTL, 8, 0 },            /* the decider's default */
		{ KL_CTL_FORGIVE, O_TTL, 8, KL_CTL_MAX_TTL_MS },
		{ KL_CTL_FORGIVE, O_PLEN, 1, 0 },           /* 0.0.0.0/0: every IPv4 source */
		{ KL_CTL_SAMPLING, O_COUNT, 8, 0 },
		{ KL_CTL_SAMPLING, O_COUNT, 8, 1 },
		{ KL_CTL_SAMPLING, O_COUNT, 8, 0xffffffffu },
		{ KL_CTL_TOP_SRC, O_MODE, 1, KL_TOP_DROPRL },
		{ KL_CTL_ATTACH, O_MODE, 1, KL_XDP_AUTO },
		{ KL_CTL_ATTACH, O_FLAGS, 4, 0 },
		{ KL_CTL_TUPLE_ENFORCE, O_MODE, 1, KL_EDGE_OFF },
		{ KL_CTL_ENFORCE_ALLOW, O_MODE, 1, 0 },
		{ KL_CTL_EDGE_ADD_DENY, O_PORT, 2, 0 },     /* ephemeral bucket */
		{ KL_CTL_EDGE_ADD_DENY, O_PORT, 2, 65535 },
		{ KL_CTL_EDGE_ADD_DENY, O_PROTO, 1, 17 },
		{ KL_CTL_ALLOW_ADD, O_PLEN, 1, 0 },         /* 198.18/15 -> 0/0 keeps host bits? */
	};
	for (size_t i = 0; i < sizeof(edge_ok) / sizeof(edge_ok[0]); i++) {
		struct kl_ctl_req b = base(edge_ok[i].cmd);
		if (edge_ok[i].off == O_PLEN) {
			/* /0 needs an all-zero address */
			memset(b.addr.addr, 0, 16);
		}
		kl_ctl_req_encode(&b, p);
		put_le(p + edge_ok[i].off, edge_ok[i].n, edge_ok[i].val);
		if (kl_ctl_req_decode(p, KL_CTL_REQ_LEN, &out, err, sizeof(err)) != 0)
			fail_msg("edge case %zu rejected: %s", i, err);
	}
	/* DENY_ADD and DENY_DEL take a prefix or a host. */
	r = base(KL_CTL_DENY_DEL);
	r.addr = A("198.18.0.0/16");
	kl_ctl_req_encode(&r, p);
	assert_int_equal(kl_ctl_req_decode(p, KL_CTL_REQ_LEN, &out, err, sizeof(err)), 0);
	r = base(KL_CTL_DENY_ADD);
	r.addr = A("198.18.0.1");
	kl_ctl_req_encode(&r, p);
	assert_int_equal(kl_ctl_req_decode(p, KL_CTL_REQ_LEN, &out, err, sizeof(err)), 0);
	/* FORGIVE takes a host as well as a prefix, v4 or v6. */
	r = base(KL_CTL_FORGIVE);
	r.addr = A("fd00:6b6c::7");
	kl_ctl_req_encode(&r, p);
	assert_int_equal(kl_ctl_req_decode(p, KL_CTL_REQ_LEN, &out, err, sizeof(err)), 0);
	assert_int_equal(out.addr.prefixlen, 128);
	/* A 15-character interface name fits. */
	r = base(KL_CTL_ATTACH);
	memset(r.ifname, 0, sizeof(r.ifname));
	memcpy(r.ifname, "abcdefghijklmno", 15);
	kl_ctl_req_encode(&r, p);
	assert_int_equal(kl_ctl_req_decode(p, KL_CTL_REQ_LEN, &out, err, sizeof(err)), 0);
	assert_string_equal(out.ifname, "abcdefghijklmno");
}

/* ---- RESULT ---- */

static void test_result_round_trip(void **state)
{
	(void)state;
	const char *text = "denied 198.18.0.7\n\tuntil 12:00 \xc2\xb5s \xe2\x82\xac \xf0\x9f\x98\x80";
	const char *json = "{\"ok\":true,\"n\":1}";
	struct kl_result r = { .status = KL_ERR_REFUSED, .text = text,
			       .text_len = (uint32_t)strlen(text), .json = json,
			       .json_len = (uint32_t)strlen(json) }, out;
	uint8_t p[256];
	char err[256] = "";
	size_t n = kl_result_len(&r);

	assert_int_equal(n, 12 + strlen(text) + strlen(json));
	kl_result_encode(&r, p);
	assert_int_equal(le(p, 4), KL_ERR_REFUSED);
	assert_int_equal(le(p + 4, 4), strlen(text));
	assert_int_equal(le(p + 8, 4), strlen(json));
	assert_memory_equal(p + 12, text, strlen(text));
	assert_memory_equal(p + 12 + strlen(text), json, strlen(json));
	assert_int_equal(kl_result_decode(p, n, &out, err, sizeof(err)), 0);
	assert_int_equal(out.status, KL_ERR_REFUSED);
	assert_int_equal(out.text_len, strlen(text));
	assert_memory_equal(out.text, text, out.text_len);
	assert_int_equal(out.json_len, strlen(json));
	assert_memory_equal(out.json, json, out.json_len);
	assert_ptr_equal(out.text, (const char *)p + 12);

	/* Empty text and json, and a NULL pointer with length 0. */
	struct kl_result e = { .status = KL_OK, .text = NULL, .json = NULL };
	assert_int_equal(kl_result_len(&e), 12);
	kl_result_encode(&e, p);
	assert_int_equal(kl_result_decode(p, 12, &out, err, sizeof(err)), 0);
	assert_int_equal(out.status, KL_OK);
	assert_int_equal(out.text_len, 0);
	assert_int_equal(out.json_len, 0);

	for (int s = 0; s < KL_STATUS_MAX; s++)
		assert_string_not_equal(kl_status_name(s), "UNKNOWN");
	assert_string_equal(kl_status_name(KL_ERR_NOTFOUND), "NOTFOUND");
	assert_string_equal(kl_status_name(-1), "UNKNOWN");
	assert_string_equal(kl_status_name(KL_STATUS_MAX), "UNKNOWN");
}

static void expect_result_fail(const uint8_t *p, size_t n, const char *sub)
{
	struct kl_result out;
	char err[256] = "";
	if (kl_result_decode(p, n, &out, err, sizeof(err)) != -1)
		fail_msg("RESULT accepted, wanted '%s'", sub);
	if (strstr(err, sub) == NULL)
		fail_msg("error '%s' lacks '%s'", err, sub);
}

/* RESULT with the given raw text bytes and an empty json. */
static size_t mk_result(uint8_t *p, const char *text, size_t tl)
{
	put_le(p, 4, KL_OK);
	put_le(p + 4, 4, tl);
	put_le(p + 8, 4, 0);
	memcpy(p + 12, text, tl);
	return 12 + tl;
}

static void test_result_rejections(void **state)
{
	(void)state;
	uint8_t p[128];
	size_t n;

	n = mk_result(p, "hello", 5);
	expect_result_fail(p, 11, "shorter than its fixed 12");
	expect_result_fail(NULL, 12, "shorter");
	expect_result_fail(p, n - 1, "'text_len' 5");
	p[n] = 'x';
	expect_result_fail(p, n + 1, "make 17");
	put_le(p, 4, 0xffffffffu);
	expect_result_fail(p, n, "'status' is -1");
	put_le(p, 4, KL_STATUS_MAX);
	expect_result_fail(p, n, "'status' is 6");
	/* Lengths that would overflow 32 bits do not wrap around. */
	put_le(p, 4, KL_OK);
	put_le(p + 4, 4, 0xffffffffu);
	put_le(p + 8, 4, 0xfffffff9u + 5 + 1);
	expect_result_fail(p, n, "'json_len'");
	put_le(p + 4, 4, 0xfffffffbu);
	put_le(p + 8, 4, 10);
	expect_result_fail(p, n, "'text_len'");

	n = mk_result(p, "a\0b", 3);
	expect_result_fail(p, n, "byte 0x00 at offset 1");
	n = mk_result(p, "a\x1b[2J", 5);
	expect_result_fail(p, n, "byte 0x1b at offset 1");
	n = mk_result(p, "a\rb", 3);
	expect_result_fail(p, n, "byte 0x0d");
	n = mk_result(p, "a\x7f", 2);
	expect_result_fail(p, n, "byte 0x7f");
	n = mk_result(p, "\xff", 1);
	expect_result_fail(p, n, "invalid UTF-8 byte 0xff at offset 0");
	n = mk_result(p, "ab\xc0\x80", 4);                  /* overlong NUL */
	expect_result_fail(p, n, "offset 2");
	n = mk_result(p, "\xe0\x80\xaf", 3);                /* overlong '/' */
	expect_result_fail(p, n, "offset 0");
	n = mk_result(p, "\xed\xa0\x80", 3);                /* surrogate */
	expect_result_fail(p, n, "0xed");
	n = mk_result(p, "\xf4\x90\x80\x80", 4);            /* above U+10FFFF */
	expect_result_fail(p, n, "0xf4");
	n = mk_result(p, "x\xe2\x82", 3);                   /* truncated */
	expect_result_fail(p, n, "offset 1");
	n = mk_result(p, "\xc2\x9b", 2);                    /* C1 control (CSI) */
	expect_result_fail(p, n, "0xc2");
	n = mk_result(p, "\x80", 1);                        /* lone continuation */
	expect_result_fail(p, n, "0x80");

	/* json may hold anything but NUL. */
	put_le(p, 4, KL_OK);
	put_le(p + 4, 4, 0);
	put_le(p + 8, 4, 3);
	memcpy(p + 12, "{\0}", 3);
	expect_result_fail(p, 15, "'json' contains a NUL");
	memcpy(p + 12, "{\n}", 3);
	struct kl_result out;
	assert_int_equal(kl_result_decode(p, 15, &out, NULL, 0), 0);
}

/* ---- monitor table and names ---- */

static void test_allowed(void **state)
{
	(void)state;
	/* The table of DESIGN §4. */
	assert_true(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_DECIDER, KL_MSG_TELEMETRY));
	assert_true(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_GRAPHD, KL_MSG_FLOWS));
	assert_true(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_DECISIONS));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_DECISIONS_ACK));
	assert_true(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_RELEASE));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_RELEASE_ACK));
	assert_true(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_ENFORCED_Q));
	assert_true(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_ENFORCER, KL_MSG_ENFORCED_Q));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_STATE));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_GRAPHD, KL_MSG_STATE));
	assert_true(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_ENFORCER, KL_MSG_EDGE_RULES));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_GRAPHD, KL_MSG_EDGE_ACK));
	assert_true(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_DECIDER, KL_MSG_VIOLATION));
	for (unsigned to = KL_ROLE_ENFORCER; to <= KL_ROLE_GRAPHD; to++) {
		assert_true(kl_msg_allowed(KL_ROLE_CTL, to, KL_MSG_CONTROL));
		assert_true(kl_msg_allowed(to, KL_ROLE_CTL, KL_MSG_RESULT));
	}
	for (unsigned f = 1; f < KL_ROLE_MAX; f++)
		for (unsigned t = 1; t < KL_ROLE_MAX; t++)
			assert_true(kl_msg_allowed(f, t, KL_MSG_HELLO));
	assert_true(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_RESULT));
	assert_true(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_SENSOR, KL_MSG_RESULT));

	/* Refusals. */
	assert_false(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_ENFORCER, KL_MSG_DECISIONS));
	assert_false(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_DECIDER, KL_MSG_DECISIONS));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_DECIDER, KL_MSG_TELEMETRY));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_ENFORCER, KL_MSG_DECISIONS));
	assert_false(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_ENFORCER, KL_MSG_DECISIONS));
	assert_false(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_EDGE_RULES));
	assert_false(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_GRAPHD, KL_MSG_TELEMETRY));
	assert_false(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_GRAPHD, KL_MSG_TELEMETRY));
	assert_false(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_DECISIONS));
	assert_false(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_DECISIONS_ACK));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_CTL, KL_MSG_CONTROL));
	assert_false(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_DECIDER, KL_MSG_CONTROL));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_ENFORCER, KL_MSG_RESULT));
	assert_false(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_ENFORCER, KL_MSG_RESULT));
	assert_false(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_ENFORCER, KL_MSG_EDGE_RULES));
	assert_false(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_VIOLATION));
	assert_false(kl_msg_allowed(KL_ROLE_ENFORCER, KL_ROLE_SENSOR, KL_MSG_STATE));
	assert_false(kl_msg_allowed(KL_ROLE_NONE, KL_ROLE_ENFORCER, KL_MSG_HELLO));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_NONE, KL_MSG_HELLO));
	assert_false(kl_msg_allowed(KL_ROLE_MAX, KL_ROLE_ENFORCER, KL_MSG_HELLO));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_ENFORCER, 0));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_ENFORCER, KL_MSG_TYPE_MAX));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_ENFORCER, 0xffff));

	/* Exhaustive: the number of allowed (from, to, type) triples. Any
	 * unintended widening of the table changes it.
	 * HELLO 25, TELEMETRY 1, FLOWS 1, DECISIONS 1, ACK 1, RELEASE 1, ACK 1,
	 * ENFORCED_Q 2, STATE 2, EDGE_RULES 1, EDGE_ACK 1, VIOLATION 1,
	 * CONTROL 4, RESULT 4 daemons x 4 others = 16, NEWSRC_LIMIT 1, APPROVED 1. */
	unsigned count = 0;
	for (unsigned type = 0; type < KL_MSG_TYPE_MAX; type++)
		for (unsigned f = 0; f < KL_ROLE_MAX; f++)
			for (unsigned t = 0; t < KL_ROLE_MAX; t++)
				count += kl_msg_allowed(f, t, type);
	assert_int_equal(count, 25 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 1 + 4 + 16 + 1 + 1);
	assert_true(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_DECIDER, KL_MSG_APPROVED));
	assert_false(kl_msg_allowed(KL_ROLE_CTL, KL_ROLE_DECIDER, KL_MSG_APPROVED));
	assert_false(kl_msg_allowed(KL_ROLE_SENSOR, KL_ROLE_DECIDER, KL_MSG_APPROVED));
	assert_true(kl_msg_allowed(KL_ROLE_DECIDER, KL_ROLE_ENFORCER, KL_MSG_NEWSRC_LIMIT));
	assert_false(kl_msg_allowed(KL_ROLE_GRAPHD, KL_ROLE_ENFORCER, KL_MSG_NEWSRC_LIMIT));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(kl_msg_type_name(KL_MSG_HELLO), "HELLO");
	assert_string_equal(kl_msg_type_name(KL_MSG_RESULT), "RESULT");
	assert_string_equal(kl_msg_type_name(0), "UNKNOWN");
	assert_string_equal(kl_msg_type_name(99), "UNKNOWN");
	for (unsigned t = 1; t < KL_MSG_TYPE_MAX; t++)
		assert_string_not_equal(kl_msg_type_name(t), "UNKNOWN");
	for (unsigned r = 1; r < KL_ROLE_MAX; r++)
		assert_int_equal(kl_role_parse(kl_role_name(r)), r);
	assert_int_equal(kl_role_parse("none"), KL_ROLE_NONE);
	assert_int_equal(kl_role_parse("Enforcer"), KL_ROLE_NONE);
	assert_int_equal(kl_role_parse(""), KL_ROLE_NONE);
	assert_int_equal(kl_role_parse(NULL), KL_ROLE_NONE);
	assert_string_equal(kl_role_name(KL_ROLE_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_layout_and_round_trip),
		cmocka_unit_test(test_hdr_rejections),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_hello_admit),
		cmocka_unit_test(test_ctl_round_trip_every_cmd),
		cmocka_unit_test(test_ctl_layout),
		cmocka_unit_test(test_ctl_rejections),
		cmocka_unit_test(test_ctl_length_and_edges),
		cmocka_unit_test(test_result_round_trip),
		cmocka_unit_test(test_result_rejections),
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
