/* SPDX-License-Identifier: MPL-2.0 */
/* JSON-lines input shared by the trace readers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/jsonl.h"
#include "memhwm.h"

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

/* A child writes '{' and `n` bytes of 'x' without a newline, then a good
 * line; the read end is returned as a FILE. */
static FILE *long_line_pipe(size_t n, pid_t *pid)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		static char chunk[1 << 16];
		close(p[0]);
		memset(chunk, 'x', sizeof(chunk));
		if (write(p[1], "{", 1) != 1)
			_exit(1);
		for (size_t done = 0; done < n;) {
			size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);
			ssize_t w = write(p[1], chunk, k);
			if (w <= 0)
				_exit(1);
			done += (size_t)w;
		}
		const char *tail = "\n{\"after\":1}\n";
		_exit(write(p[1], tail, strlen(tail)) == (ssize_t)strlen(tail) ? 0 : 1);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	assert_non_null(f);
	return f;
}

static void read_long(size_t n, size_t max_line, long *grew_kib, char *why_out, size_t why_len)
{
	struct kl_jsonl l;
	const char *line, *why = NULL;
	size_t len;
	pid_t pid;
	int st;

	FILE *f = long_line_pipe(n, &pid);
	kl_jsonl_file(&l, f, true);
	l.max_line = max_line;
	assert_int_equal(hwm_reset(), 0);
	long before = hwm_kib();
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), -1);
	*grew_kib = hwm_kib() - before;
	snprintf(why_out, why_len, "%s", why);
	/* The rest of the long line was dropped, not taken for the next one. */
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), 1);
	assert_int_equal(len, strlen("{\"after\":1}"));
	assert_int_equal(l.lineno, 2);
	assert_int_equal(kl_jsonl_next(&l, &line, &len, &why), 0);
	kl_jsonl_close(&l);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The line limit holds while reading. A 512 MiB line
 * costs a bounded multiple of the 64 MiB limit (the buffer doubles, and
 * under ASan the freed smaller ones stay resident in its quarantine), not
 * the line: getline() used to hold all 512 MiB before the check. */
static void test_long_line_bounded_while_reading(void **state)
{
	char why[160];
	long grew;
	(void)state;

	read_long((size_t)512 << 20, 0, &grew, why, sizeof(why));
	assert_non_null(strstr(why, "line longer than 67108864 bytes"));
	if (grew > 5 * 64 * 1024)
		fail_msg("reading one 512 MiB line raised the peak RSS by %ld MiB", grew / 1024);

	/* A reader's own, lower limit. */
	read_long((size_t)64 << 20, 4096, &grew, why, sizeof(why));
	assert_non_null(strstr(why, "line longer than 4096 bytes"));
	if (grew > 8 * 1024)
		fail_msg("with a 4 KiB limit the peak RSS grew by %ld KiB", grew);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_lines_skip_blank_and_comments),
		cmocka_unit_test(test_lines_refused),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_long_line_bounded_while_reading),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
