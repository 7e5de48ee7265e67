/* SPDX-License-Identifier: MPL-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/addr.h"

struct ok_case {
	const char *in;
	uint8_t family;
	uint8_t prefixlen;
	const char *canon; /* kl_addr_format output */
};

struct bad_case {
	const char *in;
	const char *err_sub; /* substring the error must contain */
};

static const struct ok_case addr_ok[] = {
	{ "198.18.0.1", 4, 32, "198.18.0.1" },
	{ "0.0.0.0", 4, 32, "0.0.0.0" },
	{ "255.255.255.255", 4, 32, "255.255.255.255" },
	{ "10.0.0.100", 4, 32, "10.0.0.100" },
	{ "fd00:6b6c::1", 6, 128, "fd00:6b6c::1" },
	{ "FD00:6B6C:0:0:0:0:0:1", 6, 128, "fd00:6b6c::1" },
	{ "::", 6, 128, "::" },
	{ "::1", 6, 128, "::1" },
	{ "::ffff:1.2.3.4", 6, 128, "::ffff:1.2.3.4" },
	{ "2001:db8:0:0:1:0:0:1", 6, 128, "2001:db8::1:0:0:1" },
};

static const struct bad_case addr_bad[] = {
	{ "1.2.3", "4 dot-separated numbers" },
	{ "1.2.3.4.5", "more than 4" },
	{ "01.2.3.4", "leading zero" },
	{ "1.2.3.04", "leading zero" },
	{ "1.2.3.256", "above 255" },
	{ "1.2.3.1000", "more than 3 digits" },
	{ "1.2.3.4 ", "whitespace" },
	{ " 1.2.3.4", "whitespace" },
	{ "1.2.3.4\n", "whitespace" },
	{ "1.2.3.4x", "trailing character 'x'" },
	{ "1.2.3.4%eth0", "zone" },
	{ "fe80::1%eth0", "zone" },
	{ "1.2.3.4/32", "prefix length is not allowed" },
	{ "1..2.3", "part 2 is missing" },
	{ "a.b.c.d", "unexpected character 'a'" },
	{ "-1.2.3.4", "unexpected character '-'" },
	{ ":::1", "not a valid IPv6" },
	{ "1:2:3:4:5:6:7:8:9", "not a valid IPv6" },
	{ "12345::1", "not a valid IPv6" },
	{ "::ffff:01.2.3.4", "not a valid IPv6" },
	{ "", "empty" },
	{ "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26", "too long" },
};

static void test_addr_parse_ok(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(addr_ok) / sizeof(addr_ok[0]); i++) {
		struct kl_addr a;
		char err[256] = "", buf[KL_ADDR_STRLEN];
		int rc = kl_addr_parse(addr_ok[i].in, &a, err, sizeof(err));
		if (rc != 0)
			fail_msg("'%s' rejected: %s", addr_ok[i].in, err);
		assert_int_equal(a.family, addr_ok[i].family);
		assert_int_equal(a.prefixlen, addr_ok[i].prefixlen);
		assert_string_equal(kl_addr_format(&a, buf, sizeof(buf)), addr_ok[i].canon);
	}
}

static void test_addr_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(addr_bad) / sizeof(addr_bad[0]); i++) {
		struct kl_addr a;
		char err[256] = "";
		int rc = kl_addr_parse(addr_bad[i].in, &a, err, sizeof(err));
		if (rc != -1)
			fail_msg("'%s' accepted", addr_bad[i].in);
		if (strstr(err, addr_bad[i].err_sub) == NULL)
			fail_msg("'%s': error '%s' lacks '%s'", addr_bad[i].in, err,
				 addr_bad[i].err_sub);
	}
	struct kl_addr a;
	char err[64] = "";
	assert_int_equal(kl_addr_parse(NULL, &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no address"));
	/* err may be NULL */
	assert_int_equal(kl_addr_parse("1.2.3", &a, NULL, 0), -1);
}

static void test_addr_v4_bytes(void **state)
{
	struct kl_addr a;
	(void)state;
	memset(&a, 0xaa, sizeof(a));
	assert_int_equal(kl_addr_parse("198.18.1.7", &a, NULL, 0), 0);
	const uint8_t want[16] = { 198, 18, 1, 7 };
	assert_memory_equal(a.addr, want, 16); /* bytes 4..15 zeroed */
}

static const struct ok_case cidr_ok[] = {
	{ "198.18.0.0/15", 4, 15, "198.18.0.0/15" },
	{ "198.18.1.7/15", 4, 15, "198.18.0.0/15" },
	{ "198.18.1.7/32", 4, 32, "198.18.1.7" },
	{ "198.18.1.7", 4, 32, "198.18.1.7" },
	{ "1.2.3.4/0", 4, 0, "0.0.0.0/0" },
	{ "10.255.255.255/8", 4, 8, "10.0.0.0/8" },
	{ "10.1.2.3/31", 4, 31, "10.1.2.2/31" },
	{ "fd00:6b6c::/48", 6, 48, "fd00:6b6c::/48" },
	{ "fd00:6b6c:0:2::5/48", 6, 48, "fd00:6b6c::/48" },
	{ "fd00:6b6c:1:2::5/48", 6, 48, "fd00:6b6c:1::/48" },
	{ "fd00:6b6c::1/128", 6, 128, "fd00:6b6c::1" },
	{ "fd00:6b6c::ffff/127", 6, 127, "fd00:6b6c::fffe/127" },
	{ "::/0", 6, 0, "::/0" },
	{ "fd00:6b6c:ffff::/33", 6, 33, "fd00:6b6c:8000::/33" },
};

static const struct bad_case cidr_bad[] = {
	{ "1.2.3.4/33", "prefix length 33 out of range 0..32 in '1.2.3.4/33'" },
	{ "::1/129", "prefix length 129 out of range 0..128" },
	{ "1.2.3.4/", "missing prefix length" },
	{ "1.2.3.4/08", "leading zero" },
	{ "1.2.3.4/-1", "decimal digits" },
	{ "1.2.3.4/+1", "decimal digits" },
	{ "1.2.3.4/ 8", "decimal digits" },
	{ "1.2.3.4/8 ", "decimal digits" },
	{ "1.2.3.4/8/8", "decimal digits" },
	{ "1.2.3.4/1000", "out of range" },
	{ "1.2.3/24", "4 dot-separated numbers" },
	{ "/24", "empty address" },
	{ "1.2.3.4%eth0/24", "zone" },
	{ "1.2.3.4x/24", "trailing character" },
	{ "", "empty" },
};

static void test_cidr_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cidr_ok) / sizeof(cidr_ok[0]); i++) {
		struct kl_addr a;
		char err[256] = "", buf[KL_ADDR_STRLEN];
		if (kl_cidr_parse(cidr_ok[i].in, &a, err, sizeof(err)) != 0)
			fail_msg("'%s' rejected: %s", cidr_ok[i].in, err);
		assert_int_equal(a.family, cidr_ok[i].family);
		assert_int_equal(a.prefixlen, cidr_ok[i].prefixlen);
		assert_string_equal(kl_addr_format(&a, buf, sizeof(buf)), cidr_ok[i].canon);
		/* The canonical text parses back to the same struct. */
		struct kl_addr b;
		assert_int_equal(kl_cidr_parse(buf, &b, NULL, 0), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	for (size_t i = 0; i < sizeof(cidr_bad) / sizeof(cidr_bad[0]); i++) {
		struct kl_addr a;
		char err[256] = "";
		if (kl_cidr_parse(cidr_bad[i].in, &a, err, sizeof(err)) != -1)
			fail_msg("'%s' accepted", cidr_bad[i].in);
		if (strstr(err, cidr_bad[i].err_sub) == NULL)
			fail_msg("'%s': error '%s' lacks '%s'", cidr_bad[i].in, err,
				 cidr_bad[i].err_sub);
	}
}

static void test_err_quotes_safely(void **state)
{
	struct kl_addr a;
	char err[256];
	(void)state;
	assert_int_equal(kl_cidr_parse("1.2.3.4/\x1b[2J", &a, err, sizeof(err)), -1);
	assert_null(strchr(err, '\x1b'));
	assert_non_null(strstr(err, "\\x1b"));
	/* A short err buffer is truncated, never overrun. */
	char small[8];
	memset(small, 'Z', sizeof(small));
	assert_int_equal(kl_addr_parse("1.2.3", &a, small, 6), -1);
	assert_int_equal(small[5], '\0');
	assert_int_equal(small[6], 'Z');
}

static struct kl_addr P(const char *s)
{
	struct kl_addr a;
	char err[128];
	if (kl_cidr_parse(s, &a, err, sizeof(err)) != 0)
		fail_msg("fixture '%s': %s", s, err);
	return a;
}

static void test_contains_overlaps(void **state)
{
	(void)state;
	struct kl_addr net15 = P("198.18.0.0/15"), net16 = P("198.19.0.0/16"),
		       host = P("198.19.4.5"), other = P("198.20.0.1"),
		       all4 = P("0.0.0.0/0"), v6 = P("fd00:6b6c::/48"),
		       v6h = P("fd00:6b6c::7"), v6o = P("fd00:6b6d::7"),
		       v6mapped = P("::ffff:198.19.4.5");

	assert_true(kl_cidr_contains(&net15, &host));
	assert_true(kl_cidr_contains(&net15, &net16));
	assert_false(kl_cidr_contains(&net16, &net15)); /* wider is not inside */
	assert_true(kl_cidr_contains(&net15, &net15));
	assert_false(kl_cidr_contains(&net15, &other));
	assert_true(kl_cidr_contains(&all4, &other));
	assert_true(kl_cidr_contains(&host, &host));
	assert_false(kl_cidr_contains(&v6, &host));     /* family mismatch */
	assert_false(kl_cidr_contains(&net15, &v6mapped)); /* stays family 6 */
	assert_true(kl_cidr_contains(&v6, &v6h));
	assert_false(kl_cidr_contains(&v6, &v6o));

	assert_true(kl_cidr_overlaps(&net15, &net16));
	assert_true(kl_cidr_overlaps(&net16, &net15));
	assert_true(kl_cidr_overlaps(&host, &net15));
	assert_false(kl_cidr_overlaps(&net16, &other));
	assert_false(kl_cidr_overlaps(&v6, &net15));
	assert_true(kl_cidr_overlaps(&all4, &host));
	struct kl_addr a = P("10.0.0.0/9"), b = P("10.128.0.0/9");
	assert_false(kl_cidr_overlaps(&a, &b));
	assert_true(kl_cidr_overlaps(&a, &a));
}

static void test_mask_and_format(void **state)
{
	(void)state;
	struct kl_addr a = { .family = 4, .prefixlen = 20 };
	memset(a.addr, 0xff, sizeof(a.addr));
	kl_addr_mask(&a);
	const uint8_t want4[16] = { 0xff, 0xff, 0xf0, 0 };
	assert_memory_equal(a.addr, want4, 16);

	struct kl_addr b = { .family = 6, .prefixlen = 65 };
	memset(b.addr, 0xff, sizeof(b.addr));
	kl_addr_mask(&b);
	const uint8_t want6[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80 };
	assert_memory_equal(b.addr, want6, 16);

	char buf[KL_ADDR_STRLEN];
	struct kl_addr bad = { .family = 5 };
	assert_string_equal(kl_addr_format(&bad, buf, sizeof(buf)), "invalid");
	struct kl_addr badlen = { .family = 4, .prefixlen = 40 };
	assert_string_equal(kl_addr_format(&badlen, buf, sizeof(buf)), "invalid");
	/* Longest form fits KL_ADDR_STRLEN. */
	struct kl_addr l = P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	assert_string_equal(kl_addr_format(&l, buf, sizeof(buf)),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	char tiny[8];
	struct kl_addr h = P("198.18.200.200");
	kl_addr_format(&h, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 7);
	assert_true(kl_addr_is_host(&h));
	assert_int_equal(kl_addr_hostlen(&h), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse_ok),
		cmocka_unit_test(test_addr_parse_bad),
		cmocka_unit_test(test_addr_v4_bytes),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_err_quotes_safely),
		cmocka_unit_test(test_contains_overlaps),
		cmocka_unit_test(test_mask_and_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
