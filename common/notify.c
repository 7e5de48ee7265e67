/* SPDX-License-Identifier: MPL-2.0 */
#include "common/notify.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/log.h"

static uint64_t wd_every_us; /* 0: no watchdog asked for */
static uint64_t wd_last_us;
static bool wd_checked;

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void kl_notify_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status ? status : "serving");
	if (sd_notify(0, msg) > 0)
		kl_info("told systemd: ready (%s)", status ? status : "serving");
	kl_notify_watchdog();
}

void kl_notify_watchdog(void)
{
	if (!wd_checked) {
		uint64_t usec = 0;
		/* unset_environment=0: the variables stay for later checks. */
		if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
			wd_every_us = usec / 4;
		wd_checked = true;
	}
	if (wd_every_us == 0)
		return;
	uint64_t now = mono_us();
	if (wd_last_us != 0 && now - wd_last_us < wd_every_us)
		return;
	wd_last_us = now;
	sd_notify(0, "WATCHDOG=1");
}

void kl_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}
