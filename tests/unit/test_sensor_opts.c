/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor's command line: defaults, values, and errors that name the flag. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "bpf/shield.h"
#include "sensor/harvest.h"
#include "sensor/sensor.h"

#define ARGV(...) ((char *[]){ "kl-sensor", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "kl-sensor", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, err, ...) kl_sensor_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), o, err, sizeof(err))

static void test_defaults(void **state)
{
	struct kl_sensor_opts o;
	char err[256];
	char *argv[] = { "kl-sensor", NULL };
	(void)state;

	assert_int_equal(kl_sensor_parse(1, argv, &o, err, sizeof(err)), 0);
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
	assert_false(o.help);
}

static void test_values(void **state)
{
	struct kl_sensor_opts o;
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
	assert_true(o.help);
	assert_int_equal(PARSE(&o, err, "--metrics-file", "/var/lib/node_exporter/sensor.prom"), 0);
	assert_string_equal(o.metrics_file, "/var/lib/node_exporter/sensor.prom");
}

static void expect_err(int rc, const char *err, const char *want)
{
	assert_int_equal(rc, -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void test_errors(void **state)
{
	struct kl_sensor_opts o;
	char err[256];
	(void)state;

	expect_err(PARSE(&o, err, "--interval", "5ms"), err, "--interval 5ms");
	expect_err(PARSE(&o, err, "--interval", "2h"), err, "--interval 2h");
	expect_err(PARSE(&o, err, "--interval", "1"), err, "--interval 1");
	expect_err(PARSE(&o, err, "--prev-ttl", "-1s"), err, "--prev-ttl");
	expect_err(PARSE(&o, err, "--interval", "10s", "--prev-ttl", "5s"), err, "--prev-ttl");
	expect_err(PARSE(&o, err, "--reacquire-every", "0"), err, "--reacquire-every 0");
	expect_err(PARSE(&o, err, "--sync-every", "x"), err, "--sync-every x");
	expect_err(PARSE(&o, err, "--ticks", "-3"), err, "--ticks -3");
	expect_err(PARSE(&o, err, "--log-level", "loud"), err, "--log-level loud");
	expect_err(PARSE(&o, err, "--record", ""), err, "--record");
	expect_err(PARSE(&o, err, "--metrics-file", ""), err, "--metrics-file");
	expect_err(PARSE(&o, err, "--bogus"), err, "--bogus");
	expect_err(PARSE(&o, err, "extra"), err, "\"extra\"");
	expect_err(PARSE(&o, err, "--user"), err, "--user");
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
