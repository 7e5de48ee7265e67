/* SPDX-License-Identifier: MPL-2.0 */
/*
 * common/prom: the node_exporter textfile page. HELP/TYPE once per metric,
 * labels, integral and fractional values, NaN/Inf spelled as Prometheus
 * spells them, a page of any size, and the file replaced whole (mode 0644,
 * a planted link refused, not followed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/prom.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_page(void **state)
{
	(void)state;
	char dir[] = "/tmp/kltest-prom.XXXXXX", path[128], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/decider.prom", dir);
	struct kl_prom p = { 0 };
	kl_prom_add(&p, "kernloom_ticks_total", "counter", "Ticks.", NULL, 42);
	kl_prom_add(&p, "kernloom_sources", "gauge", "Sources by level.", "level=\"observe\"", 3);
	kl_prom_add(&p, "kernloom_sources", "gauge", "Sources by level.", "level=\"block\"", 1);
	kl_prom_add(&p, "kernloom_lag_seconds", "gauge", "Lag.", NULL, 0.25);
	kl_prom_add(&p, "kernloom_nan", "gauge", "x", NULL, NAN);
	kl_prom_add(&p, "kernloom_inf", "gauge", "x", NULL, -INFINITY);
	assert_int_equal(kl_prom_write(&p, path, err, sizeof(err)), 0);
	assert_string_equal(slurp(path),
			    "# HELP kernloom_ticks_total Ticks.\n"
			    "# TYPE kernloom_ticks_total counter\n"
			    "kernloom_ticks_total 42\n"
			    "# HELP kernloom_sources Sources by level.\n"
			    "# TYPE kernloom_sources gauge\n"
			    "kernloom_sources{level=\"observe\"} 3\n"
			    "kernloom_sources{level=\"block\"} 1\n"
			    "# HELP kernloom_lag_seconds Lag.\n"
			    "# TYPE kernloom_lag_seconds gauge\n"
			    "kernloom_lag_seconds 0.25\n"
			    "# HELP kernloom_nan x\n# TYPE kernloom_nan gauge\nkernloom_nan NaN\n"
			    "# HELP kernloom_inf x\n# TYPE kernloom_inf gauge\nkernloom_inf -Inf\n");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* The next page replaces the file whole; HELP comes again. */
	for (int i = 0; i < 2000; i++)
		kl_prom_add(&p, "kernloom_big", "gauge", "Many samples.", "i=\"x\"", i);
	assert_int_equal(kl_prom_write(&p, path, err, sizeof(err)), 0);
	char *s = slurp(path);
	assert_int_equal(strncmp(s, "# HELP kernloom_big Many samples.\n", 34), 0);
	assert_non_null(strstr(s, "kernloom_big{i=\"x\"} 1999\n"));
	assert_null(strstr(s, "kernloom_ticks_total"));

	/* A planted link is refused, its target untouched. */
	char target[160];
	snprintf(target, sizeof(target), "%s/target", dir);
	FILE *f = fopen(target, "w");
	assert_non_null(f);
	fputs("keep\n", f);
	fclose(f);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
	kl_prom_add(&p, "kernloom_x", "gauge", "x", NULL, 1);
	int rc = kl_prom_write(&p, path, err, sizeof(err));
	if (rc == 0) {
		/* Replacing renames over the link itself: the target stays. */
		struct stat lst;
		assert_int_equal(lstat(path, &lst), 0);
		assert_true(S_ISREG(lst.st_mode));
	}
	assert_string_equal(slurp(target), "keep\n");
	kl_prom_free(&p);
	unlink(path);
	unlink(target);
	char tmpl[160];
	snprintf(tmpl, sizeof(tmpl), "%s/decider.prom.bak", dir);
	unlink(tmpl);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
