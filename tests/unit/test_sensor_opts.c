/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor's command line: defaults, values, and errors that name the flag. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bpf/shield.h"
#include "harvest/harvest.h"
#include "sensor/sensor.h"

/* Hermetic: --config= keeps the machine's /etc/kernloom/sensor.yaml out. */
#define ARGV(...) ((char *[]){ "kl-sensor", "--config=", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "kl-sensor", "--config=", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, err, ...) parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), o, err, sizeof(err))

/* sen_parse with its errors joined into err. */
static int parse(int argc, char **argv, struct sen_opts *o, char *err, size_t errlen)
{
	struct kl_errs e = { 0 };
	sen_opts_free(o); /* the previous case's */
	int rc = sen_parse(argc, argv, o, &e);
	size_t off = 0;

	err[0] = '\0';
	for (size_t i = 0; i < e.n && off + 1 < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s%s", i ? "; " : "", e.v[i]);
	kl_errs_free(&e);
	return rc;
}

static void test_defaults(void **state)
{
	struct sen_opts o = { 0 };
	char err[256];
	char *argv[] = { "kl-sensor", "--config=", NULL };
	(void)state;

	assert_int_equal(parse(2, argv, &o, err, sizeof(err)), 0);
	assert_string_equal(o.run_dir, "/run/kernloom");
	assert_string_equal(o.pin_dir, KL_PIN_DIR_DEFAULT);
	assert_string_equal(o.user, "kernloom-sensor");
	assert_null(o.record);
	assert_null(o.metrics_file);
	assert_int_equal(o.interval_ns, 1000000000ull);
	assert_int_equal(o.prev_ttl_ns, KL_PREV_TTL_DEFAULT);
	assert_int_equal(o.reacquire_every, 10);
	assert_int_equal(o.sync_every, 1);
	assert_int_equal(o.summary_every, 10);
	assert_int_equal(o.max_ticks, 0);
	assert_int_equal(o.action, KL_CLI_RUN);
	sen_opts_free(&o);
}

static void test_values(void **state)
{
	struct sen_opts o = { 0 };
	char err[256];
	(void)state;

	assert_int_equal(PARSE(&o, err, "--run-dir", "/tmp/r", "--pin-dir=/sys/fs/bpf/x",
			       "--interval", "250ms", "--user", "nobody", "--record", "/tmp/t.trace",
			       "--prev-ttl", "1h", "--reacquire-every", "3", "--sync-every", "0",
			       "--summary-every", "5", "--ticks", "7", "--log-level", "debug"),
			 0);
	assert_string_equal(o.run_dir, "/tmp/r");
	assert_string_equal(o.pin_dir, "/sys/fs/bpf/x");
	assert_int_equal(o.interval_ns, 250000000ull);
	assert_string_equal(o.user, "nobody");
	assert_string_equal(o.record, "/tmp/t.trace");
	assert_int_equal(o.prev_ttl_ns, 3600ull * 1000000000ull);
	assert_int_equal(o.reacquire_every, 3);
	assert_int_equal(o.sync_every, 0);
	assert_int_equal(o.summary_every, 5);
	assert_int_equal(o.max_ticks, 7);
	assert_int_equal(o.log_level, 0);
	assert_int_equal(PARSE(&o, err, "--help"), 0);
	assert_int_equal(o.action, KL_CLI_HELP);
	assert_int_equal(PARSE(&o, err, "--metrics-file", "/var/lib/node_exporter/sensor.prom"), 0);
	assert_string_equal(o.metrics_file, "/var/lib/node_exporter/sensor.prom");
	sen_opts_free(&o);
}

static void expect_err(int rc, const char *err, const char *want)
{
	assert_int_equal(rc, -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void test_errors(void **state)
{
	struct sen_opts o = { 0 };
	char err[256];
	(void)state;

	expect_err(PARSE(&o, err, "--interval", "5ms"), err, "--interval: 5ms is out of range");
	expect_err(PARSE(&o, err, "--interval", "2h"), err, "--interval: 2h is out of range");
	expect_err(PARSE(&o, err, "--interval", "1"), err, "--interval:");
	expect_err(PARSE(&o, err, "--prev-ttl", "-1s"), err, "--prev-ttl");
	expect_err(PARSE(&o, err, "--interval", "10s", "--prev-ttl", "5s"), err,
		   "prev-ttl=5s (flag --prev-ttl) must be at least one interval");
	expect_err(PARSE(&o, err, "--reacquire-every", "0"), err, "--reacquire-every: 0 is out");
	expect_err(PARSE(&o, err, "--sync-every", "x"), err, "--sync-every: expected an integer");
	expect_err(PARSE(&o, err, "--ticks", "-3"), err, "--ticks: expected a non-negative");
	expect_err(PARSE(&o, err, "--log-level", "loud"), err, "--log-level: 'loud' is not one");
	expect_err(PARSE(&o, err, "--user", ""), err, "--user: must not be empty");
	expect_err(PARSE(&o, err, "--bogus"), err, "--bogus");
	expect_err(PARSE(&o, err, "extra"), err, "unexpected argument 'extra'");
	expect_err(PARSE(&o, err, "--user"), err, "--user");
	expect_err(PARSE(&o, err, "--config", "/nonexistent/sensor.yaml"), err,
		   "--config /nonexistent/sensor.yaml: no such file");
	/* Empty means none for the optional files. */
	assert_int_equal(PARSE(&o, err, "--record", "", "--metrics-file="), 0);
	assert_null(o.record);
	assert_null(o.metrics_file);
	sen_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
