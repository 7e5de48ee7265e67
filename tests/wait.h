/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Waiting in C tests: for a condition, with a deadline, never a fixed
 * sleep before an assertion (a loaded machine makes any fixed sleep too
 * short, and an idle one makes it too long). The shell scenarios have the
 * same in tests/integration/lib.sh (wait_until).
 */
#ifndef KL_TESTS_WAIT_H
#define KL_TESTS_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
static inline uint64_t kl_wait_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How long to pause between two looks at a condition. */
#define KL_WAIT_STEP_MS 2

static inline void kl_wait_pause(void)
{
	struct timespec ts = { 0, KL_WAIT_STEP_MS * 1000000L };
	nanosleep(&ts, NULL);
}

/* Evaluate `cond` until it is true or `timeout_ms` passed; the value is
 * the condition's last result, so `assert_true(KL_WAIT_UNTIL(x, 2000))`
 * fails only when x never became true in time. */
#define KL_WAIT_UNTIL(cond, timeout_ms)                                                     \
	({                                                                                  \
		uint64_t kl_wait_deadline_ = kl_wait_now_ms() + (uint64_t)(timeout_ms);     \
		bool kl_wait_ok_;                                                           \
		while (!(kl_wait_ok_ = (cond)) && kl_wait_now_ms() < kl_wait_deadline_)     \
			kl_wait_pause();                                                    \
		kl_wait_ok_;                                                                \
	})

/* Until CLOCK_BOOTTIME (the data plane's clock, bpf_ktime_get_boot_ns) has
 * passed `t_ns`: true, or false after timeout_ms. */
static inline uint64_t kl_wait_boot_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define KL_WAIT_BOOT_PAST(t_ns, timeout_ms) KL_WAIT_UNTIL(kl_wait_boot_ns() > (t_ns), timeout_ms)

#endif
