/* SPDX-License-Identifier: MPL-2.0 */
/* The small shared pieces: error helpers, array growth, path directory,
 * hashing and linear probing with backward-shift deletion, the daemons'
 * signal flags and clocks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"
#include "common/hash.h"
#include "common/safefile.h"
#include "common/signals.h"

static void test_fail_helpers(void **state)
{
	char err[128];
	(void)state;

	assert_int_equal(kl_fail(err, sizeof(err), "field '%s' is %d", "x", 3), -1);
	assert_string_equal(err, "field 'x' is 3");
	assert_int_equal(kl_fail(NULL, 0, "ignored"), -1);
	errno = 0;
	assert_int_equal(kl_fail_errno(ELOOP, err, sizeof(err), "a link"), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(kl_fail_in(err, sizeof(err), "duration ", "1x\x1b", "bad unit"), -1);
	assert_string_equal(err, "bad unit in duration '1x\\x1b'");
	assert_int_equal(kl_fail_in(err, sizeof(err), "", NULL, "empty"), -1);
	assert_string_equal(err, "empty");
	/* A hostile input is cut, never floods the message. */
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char long_err[512];
	kl_fail_in(long_err, sizeof(long_err), "", big, "junk");
	assert_non_null(strstr(long_err, "...'"));
	assert_true(strlen(long_err) < 100);
}

static void test_grow(void **state)
{
	int *v = NULL;
	size_t n = 0, cap = 0;
	(void)state;

	for (int i = 0; i < 1000; i++) {
		int *nv = kl_grow(v, n, &cap, sizeof(*v), 4);
		assert_non_null(nv);
		v = nv;
		v[n++] = i;
	}
	assert_int_equal(cap, 1024);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	/* Room left: the same array back, no reallocation. */
	n = 10;
	assert_ptr_equal(kl_grow(v, n, &cap, sizeof(*v), 4), v);
	/* Overflow: refused, nothing changed. */
	size_t huge = SIZE_MAX / 2 + 1;
	assert_null(kl_grow(v, huge, &huge, sizeof(*v), 4));
	assert_int_equal(huge, SIZE_MAX / 2 + 1);
	/* Room for many at once: doubled until they fit, kept when they do. */
	int *w = kl_grow_to(v, 5000, &cap, sizeof(*v), 4);
	assert_non_null(w);
	assert_int_equal(cap, 8192);
	assert_int_equal(w[999], 999);
	assert_ptr_equal(kl_grow_to(w, 8192, &cap, sizeof(*w), 4), w);
	assert_null(kl_grow_to(w, SIZE_MAX, &cap, sizeof(*w), 4));
	assert_int_equal(cap, 8192);
	free(w);
}

static void test_path_dir(void **state)
{
	char b[64];
	(void)state;

	assert_string_equal(kl_path_dir("/var/lib/kernloom/state.json", b, sizeof(b)),
			    "/var/lib/kernloom");
	assert_string_equal(kl_path_dir("state.json", b, sizeof(b)), ".");
	assert_string_equal(kl_path_dir("/state.json", b, sizeof(b)), "/");
	assert_string_equal(kl_path_dir("a/b", b, sizeof(b)), "a");
}

/* A table of 16 slots whose keys choose their own home slot, so that
 * probe runs and wrap-around are set up by hand. 0 = empty. */
struct tab {
	uint32_t key[16];
	uint32_t home[16];
	uint32_t want;
};

static bool t_stop(const void *ctx, size_t i)
{
	const struct tab *t = ctx;
	return t->key[i] == 0 || t->key[i] == t->want;
}

static bool t_empty(const void *ctx, size_t i)
{
	return ((const struct tab *)ctx)->key[i] == 0;
}

static size_t t_home(const void *ctx, size_t i)
{
	return ((const struct tab *)ctx)->home[i];
}

static void t_move(void *ctx, size_t to, size_t from)
{
	struct tab *t = ctx;
	t->key[to] = t->key[from];
	t->home[to] = t->home[from];
}

static void t_clear(void *ctx, size_t i)
{
	struct tab *t = ctx;
	t->key[i] = 0;
	t->home[i] = 0;
}

static const struct kl_probe_ops t_ops = { t_empty, t_home, t_move, t_clear };

static void t_put(struct tab *t, uint32_t key, uint32_t home)
{
	t->want = 0;
	size_t i = kl_probe(home, 15, t_stop, t);
	t->key[i] = key;
	t->home[i] = home;
}

static int t_find(struct tab *t, uint32_t key, uint32_t home)
{
	t->want = key;
	size_t i = kl_probe(home, 15, t_stop, t);
	return t->key[i] == key ? (int)i : -1;
}

static void test_probe(void **state)
{
	struct tab t;
	(void)state;

	memset(&t, 0, sizeof(t));
	/* A run that wraps: 14, 15, 0, 1; key 5 lives at home 0 after them. */
	t_put(&t, 1, 14);
	t_put(&t, 2, 14);
	t_put(&t, 3, 15);
	t_put(&t, 4, 0);
	t_put(&t, 5, 0);
	assert_int_equal(t_find(&t, 1, 14), 14);
	assert_int_equal(t_find(&t, 2, 14), 15);
	assert_int_equal(t_find(&t, 3, 15), 0);
	assert_int_equal(t_find(&t, 4, 0), 1);
	assert_int_equal(t_find(&t, 5, 0), 2);
	assert_int_equal(t_find(&t, 9, 14), -1);

	/* Deleting the run's head pulls every later member back one slot:
	 * each home still lies at or before its new slot. */
	kl_probe_delete(14, 15, &t_ops, &t);
	assert_int_equal(t_find(&t, 1, 14), -1);
	assert_int_equal(t_find(&t, 2, 14), 14);
	assert_int_equal(t_find(&t, 3, 15), 15);
	assert_int_equal(t_find(&t, 4, 0), 0);
	assert_int_equal(t_find(&t, 5, 0), 1);
	assert_int_equal(t.key[2], 0);

	/* An entry at its own home stays put when a hole opens before it. */
	memset(&t, 0, sizeof(t));
	t_put(&t, 1, 3);
	t_put(&t, 2, 4);
	kl_probe_delete(3, 15, &t_ops, &t);
	assert_int_equal(t_find(&t, 2, 4), 4);
	assert_int_equal(t.key[3], 0);

	/* The mixer spreads neighbouring keys over the slots. */
	unsigned used[16] = { 0 };
	for (uint64_t k = 0; k < 1600; k++)
		used[kl_mix64(k) & 15]++;
	for (int i = 0; i < 16; i++)
		assert_true(used[i] > 60 && used[i] < 140);
	assert_int_equal(kl_pow2_at_least(17, 16), 32);
	assert_int_equal(kl_pow2_at_least(3, 16), 16);
}

/* SIGHUP sets the reload flag only; SIGTERM and SIGINT store their number;
 * SIGPIPE does not end the process. */
static void test_signals(void **state)
{
	(void)state;
	static volatile sig_atomic_t stop, hup;

	kl_signals_init(&stop, &hup);
	raise(SIGPIPE);
	assert_int_equal(stop, 0);
	assert_int_equal(hup, 0);
	raise(SIGHUP);
	assert_int_equal(hup, 1);
	assert_int_equal(stop, 0);
	raise(SIGINT);
	assert_int_equal(stop, SIGINT);
	raise(SIGTERM);
	assert_int_equal(stop, SIGTERM);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}

/* Milliseconds are the nanoseconds truncated, on the same clock. */
static void test_clock(void **state)
{
	(void)state;
	uint64_t a = kl_clock_ns(CLOCK_MONOTONIC);
	int64_t ms = kl_clock_ms(CLOCK_MONOTONIC);
	uint64_t b = kl_clock_ns(CLOCK_MONOTONIC);

	assert_true(a <= b);
	assert_true((uint64_t)ms >= a / 1000000 && (uint64_t)ms <= b / 1000000);
	assert_true(kl_clock_ms(CLOCK_REALTIME) > 1700000000000ll);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fail_helpers),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_path_dir),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
