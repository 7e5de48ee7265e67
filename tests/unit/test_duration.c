/* SPDX-License-Identifier: MPL-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"

#define US 1000ull
#define MS KL_NS_PER_MS
#define S KL_NS_PER_S
#define MIN (60 * S)
#define H (3600 * S)

static const struct {
	const char *in;
	uint64_t ns;
	const char *canon; /* kl_duration_format(ns) */
} ok[] = {
	{ "0", 0, "0s" },
	{ "0s", 0, "0s" },
	{ "0h0m", 0, "0s" },
	{ "500ms", 500 * MS, "500ms" },
	{ "30s", 30 * S, "30s" },
	{ "2m", 2 * MIN, "2m" },
	{ "336h", 336 * H, "336h" },
	{ "14d", 336 * H, "336h" },
	{ "1h30m", 90 * MIN, "1h30m" },
	{ "90m", 90 * MIN, "1h30m" },
	{ "1.5h", 90 * MIN, "1h30m" },
	{ "1.5s", 1500 * MS, "1.5s" },
	{ "1500ms", 1500 * MS, "1.5s" },
	{ ".5s", 500 * MS, "500ms" },
	{ "1.s", S, "1s" },
	{ "01s", S, "1s" },
	{ "1ns", 1, "1ns" },
	{ "1us", US, "1us" },
	{ "1\xc2\xb5s", US, "1us" },
	{ "1\xce\xbcs", US, "1us" },
	{ "1.5ms", 1500 * US, "1.5ms" },
	{ "2.000001s", 2 * S + US, "2s1us" },
	{ "1h1us", H + US, "1h1us" },
	{ "1m0.5s", MIN + 500 * MS, "1m500ms" },
	{ "1s1ms1us1ns", S + MS + US + 1, "1s1ms1us1ns" },
	{ "1m1m", 2 * MIN, "2m" },
	{ "0.3333333333333333333333333s", 333333333, "333.333333ms" },
	{ "1d", 24 * H, "24h" },
	{ "18446744073709551615ns", UINT64_MAX, "5124095h34m33.709551615s" },
	{ "5124095h34m33.709551615s", UINT64_MAX, "5124095h34m33.709551615s" },
};

static const struct {
	const char *in;
	const char *err_sub;
} bad[] = {
	{ "", "empty" },
	{ "1", "missing unit" },
	{ "10", "missing unit" },
	{ "00", "missing unit" },
	{ "s", "expected a number" },
	{ ".s", "expected a number" },
	{ "-1s", "sign" },
	{ "+1s", "sign" },
	{ "1x", "unknown unit 'x'" },
	{ "1 s", "unknown unit ' s'" },
	{ " 1s", "expected a number" },
	{ "1s ", "unknown unit 's '" },
	{ "1sec", "unknown unit 'sec'" },
	{ "1S", "unknown unit 'S'" },
	{ "1h30", "missing unit" },
	{ "1..5s", "missing unit" },
	{ "18446744073709551616ns", "too large" },
	{ "5124095h34m33.709551616s", "too large" },
	{ "99999999999999999999999h", "too large" },
	{ "213504d", "too large" }, { "213503d24h", "too large" },
	{ "1e3s", "unknown unit 'e'" },
};

static void test_parse_ok(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t ns = 12345;
		char err[256] = "", buf[64];
		if (kl_duration_parse(ok[i].in, &ns, err, sizeof(err)) != 0)
			fail_msg("'%s' rejected: %s", ok[i].in, err);
		if (ns != ok[i].ns)
			fail_msg("'%s' -> %llu, want %llu", ok[i].in, (unsigned long long)ns,
				 (unsigned long long)ok[i].ns);
		assert_string_equal(kl_duration_format(ns, buf, sizeof(buf)), ok[i].canon);
	}
}

static void test_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ns = 777;
		char err[256] = "";
		if (kl_duration_parse(bad[i].in, &ns, err, sizeof(err)) != -1)
			fail_msg("'%s' accepted as %llu", bad[i].in, (unsigned long long)ns);
		assert_int_equal(ns, 777); /* untouched on failure */
		if (strstr(err, bad[i].err_sub) == NULL)
			fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, err, bad[i].err_sub);
	}
	uint64_t ns;
	char err[64];
	assert_int_equal(kl_duration_parse(NULL, &ns, err, sizeof(err)), -1);
	assert_int_equal(kl_duration_parse("1x", &ns, NULL, 0), -1);
}

static void test_format_forms(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(kl_duration_format(0, buf, sizeof(buf)), "0s");
	assert_string_equal(kl_duration_format(999, buf, sizeof(buf)), "999ns");
	assert_string_equal(kl_duration_format(1001, buf, sizeof(buf)), "1us1ns");
	assert_string_equal(kl_duration_format(H + S, buf, sizeof(buf)), "1h1s");
	assert_string_equal(kl_duration_format(25 * H, buf, sizeof(buf)), "25h");
	assert_string_equal(kl_duration_format(61 * S + 100 * MS, buf, sizeof(buf)), "1m1.1s");
	/* Truncated into a short buffer, still NUL-terminated. */
	char small[4];
	kl_duration_format(1500 * MS, small, sizeof(small));
	assert_int_equal(strlen(small), 3);
}

/* Whatever format produces, parse reads back exactly. */
static void test_round_trip(void **state)
{
	(void)state;
	srand(42);
	for (int i = 0; i < 20000; i++) {
		uint64_t v = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand();
		/* Spread over magnitudes, including exact unit multiples. */
		switch (i % 5) {
		case 0: v %= 1000000; break;
		case 1: v %= 1000ull * S; break;
		case 2: v = (v % 100000) * MS; break;
		case 3: v = (v % 10000) * MIN + (v % 7) * S; break;
		default: break;
		}
		char buf[64], err[128];
		uint64_t back = 0;
		kl_duration_format(v, buf, sizeof(buf));
		if (kl_duration_parse(buf, &back, err, sizeof(err)) != 0)
			fail_msg("%llu -> '%s' does not parse: %s", (unsigned long long)v, buf, err);
		if (back != v)
			fail_msg("%llu -> '%s' -> %llu", (unsigned long long)v, buf,
				 (unsigned long long)back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_format_forms),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
