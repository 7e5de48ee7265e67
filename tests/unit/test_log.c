/* SPDX-License-Identifier: MPL-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

/* Run fn with stderr sent into a pipe; return what it wrote (malloc'd). */
static char *capture(void (*fn)(void))
{
	int p[2];
	static char buf[1 << 20];
	size_t n = 0;
	ssize_t r;

	assert_int_equal(pipe(p), 0);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		fn();
		_exit(0);
	}
	close(p[1]);
	while ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	buf[n] = '\0';
	int st;
	waitpid(pid, &st, 0);
	char *out = strdup(buf);
	assert_non_null(out);
	return out;
}

static void lines(void)
{
	kl_log_init("kltest", KL_LOG_INFO);
	kl_debug("hidden %d", 1);
	errno = EACCES;
	kl_info("hello %d", 5);
	if (errno != EACCES)
		kl_error("errno clobbered");
	kl_warn("forged\n2026-01-01T00:00:00.000Z kl-enforcer[1] INFO deny del\x1b[2J tab\there");
	kl_error("e");
}

static void test_format_and_filter(void **state)
{
	(void)state;
	char *out = capture(lines);
	regex_t re;
	char pat[256];

	snprintf(pat, sizeof(pat),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
		 "kltest\\[[0-9]+\\] INFO hello 5\n");
	assert_int_equal(regcomp(&re, pat, REG_EXTENDED), 0);
	if (regexec(&re, out, 0, NULL, 0) != 0)
		fail_msg("first line does not match: %s", out);
	regfree(&re);
	assert_null(strstr(out, "hidden"));
	assert_null(strstr(out, "clobbered"));
	/* A message cannot start a second line or carry escapes. */
	assert_non_null(strstr(out, " WARN forged?2026-01-01T00:00:00.000Z kl-enforcer[1] INFO deny del?[2J tab\there\n"));
	assert_non_null(strstr(out, " ERROR e\n"));
	int nl = 0;
	for (char *p = out; *p; p++)
		nl += *p == '\n';
	assert_int_equal(nl, 3);
	free(out);
}

static void long_line(void)
{
	static char big[10000];
	memset(big, 'x', sizeof(big) - 1);
	kl_log_init("kltest", KL_LOG_DEBUG);
	kl_info("%s", big);
	kl_debug("after");
}

static void test_truncation(void **state)
{
	(void)state;
	char *out = capture(long_line);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	size_t first = (size_t)(nl - out) + 1;
	assert_int_equal(first, 4096); /* one PIPE_BUF-sized, atomic write */
	assert_memory_equal(nl - 3, "...", 3);
	assert_non_null(strstr(nl + 1, " DEBUG after\n"));
	free(out);
}

/* Several processes logging at once: every line arrives whole. */
static void many(void)
{
	kl_log_init("kltest", KL_LOG_INFO);
	for (int k = 0; k < 3; k++) {
		if (fork() == 0) {
			for (int i = 0; i < 2000; i++)
				kl_info("writer %d line %d %s", k, i,
					"padding-padding-padding-padding-padding-padding-padding");
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
}

static void test_concurrent_writers(void **state)
{
	(void)state;
	char *out = capture(many);
	int count = 0;
	char *save = NULL;
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		int k, i;
		const char *m = strstr(l, " INFO writer ");
		if (m == NULL || sscanf(m, " INFO writer %d line %d ", &k, &i) != 2 ||
		    strstr(m, "padding-padding") == NULL || strstr(m + 1, " INFO ") != NULL)
			fail_msg("mangled line: %.200s", l);
		count++;
	}
	assert_int_equal(count, 6000);
	free(out);
}

static void test_level_parse(void **state)
{
	(void)state;
	assert_int_equal(kl_log_level_parse("debug"), KL_LOG_DEBUG);
	assert_int_equal(kl_log_level_parse("info"), KL_LOG_INFO);
	assert_int_equal(kl_log_level_parse("warn"), KL_LOG_WARN);
	assert_int_equal(kl_log_level_parse("WARNING"), KL_LOG_WARN);
	assert_int_equal(kl_log_level_parse("error"), KL_LOG_ERROR);
	assert_int_equal(kl_log_level_parse("trace"), -1);
	assert_int_equal(kl_log_level_parse(""), -1);
	assert_int_equal(kl_log_level_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_filter),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
