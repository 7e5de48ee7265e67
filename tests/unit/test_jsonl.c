/* SPDX-License-Identifier: MPL-2.0 */
/* JSON-lines input shared by the trace readers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/addr.h"
#include "common/jsonl.h"

static void test_lines_skip_blank_and_comments(void **state)
{
	(void)state;
	static const char buf[] = "# head\n\n   \n{\"t\": 1}\r\n\t{\"t\": 2}\n# tail";
	struct kl_jsonl l;
	const char *line, *why = NULL;
	size_t len;

	kl_jsonl_mem(&l, buf, sizeof(buf) - 1);
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), 1);
	assert_int_equal(l.lineno, 4);
	assert_int_equal(len, 9); /* the \r stays: JSON treats it as space */
	assert_memory_equal(line, "{\"t\": 1}", 8);
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), 1);
	assert_int_equal(l.lineno, 5);
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), 0);
	kl_jsonl_close(&l);
}

static void test_lines_refused(void **state)
{
	(void)state;
	static const struct {
		const char *buf;
		const char *why;
	} bad[] = {
		{ "[1, 2]\n", "expected a JSON object per line" },
		{ "KLTRACE1\x01\x00\x00\x00", "binary data" },
		{ "\n\nnot json\n", "expected a JSON object per line" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kl_jsonl l;
		const char *line, *why = "";
		size_t len;
		kl_jsonl_mem(&l, bad[i].buf, strlen(bad[i].buf) + (i == 1 ? 4 : 0));
		assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), -1);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, bad[i].why);
		kl_jsonl_close(&l);
	}
}

static void test_fields(void **state)
{
	(void)state;
	json_t *v;
	double d = -1;
	uint8_t p = 0;

	v = json_real(2.5);
	assert_true(kl_json_nonneg(v, &d));
	assert_true(d == 2.5);
	json_decref(v);
	v = json_integer(-1);
	assert_false(kl_json_nonneg(v, &d));
	assert_int_equal(kl_json_proto(v, &p), -1);
	json_decref(v);
	v = json_string("3");
	assert_false(kl_json_nonneg(v, &d)); /* numbers only */
	json_decref(v);
	static const struct {
		const char *s;
		int want;
	} protos[] = { { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 }, { "47", 47 },
		       { "0", 0 },   { "255", 255 }, { "256", -1 }, { "047", -1 }, { "gre", -1 },
		       { "", -1 } };
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		assert_int_equal(kl_proto_parse(protos[i].s), protos[i].want);
		v = json_string(protos[i].s);
		p = 99;
		assert_int_equal(kl_json_proto(v, &p), protos[i].want < 0 ? -1 : 0);
		if (protos[i].want >= 0)
			assert_int_equal(p, protos[i].want);
		json_decref(v);
	}
	v = json_integer(132);
	assert_int_equal(kl_json_proto(v, &p), 0);
	assert_int_equal(p, 132);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_lines_skip_blank_and_comments),
		cmocka_unit_test(test_lines_refused),
		cmocka_unit_test(test_fields),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
