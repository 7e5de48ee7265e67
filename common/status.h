/* SPDX-License-Identifier: MPL-2.0 */
/*
 * What every daemon says about itself in its STATUS answer, under the key
 * "daemon", so `klctl status` shows the four side by side: version,
 * pid, dry-run or enforcing, ticks and how long ago the last one was, and
 * frames in and out (what each daemon's frames are is in its own doc).
 */
#ifndef KL_COMMON_STATUS_H
#define KL_COMMON_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#define KL_VERSION "0.1"
#define KL_T_NONE INT64_MIN

struct json_t;

struct kl_daemon_status {
	const char *name;      /* "kl-decider" */
	bool enforcing;        /* false: dry run (decides and logs, enforces nothing) */
	const char *mode;      /* a word for the mode ("enforcing", "dry-run", "frozen-enforce") */
	uint64_t ticks;
	int64_t last_tick_ms;  /* Unix ms of the last tick; KL_T_NONE: none yet or no ticks */
	int64_t interval_ms;   /* the tick interval; 0: the daemon has none */
	uint64_t frames_in, frames_out;
};

/* {name, version, pid, enforcing, mode, ticks, last_tick (RFC 3339 or
 * null), last_tick_age_ms (or null), interval_ms, frames_in, frames_out}
 * with now_ms the caller's Unix ms. */
struct json_t *kl_daemon_status_json(const struct kl_daemon_status *s, int64_t now_ms);

/* Unix ms now. */
int64_t kl_unix_ms(void);

#endif
