/* SPDX-License-Identifier: MPL-2.0 */
/* A clock read as one integer (the daemons' loops compare and subtract
 * these; CLOCK_BOOTTIME is the data plane's clock). */
#ifndef KL_CLOCK_H
#define KL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t kl_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int64_t kl_clock_ms(clockid_t id)
{
	return (int64_t)(kl_clock_ns(id) / 1000000ull);
}

#endif
