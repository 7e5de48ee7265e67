/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor: options and the tick loop (main.c only parses and calls). */
#ifndef KL_SENSOR_SENSOR_H
#define KL_SENSOR_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KL_SENSOR_USER_DEFAULT "kernloom-sensor"
#define KL_RUN_DIR_DEFAULT "/run/kernloom"

struct kl_sensor_opts {
	const char *run_dir;
	const char *pin_dir;
	const char *user;        /* switched to when started as root */
	const char *record;      /* trace file, or NULL */
	const char *audit_dir;   /* the audit trail; "" = off */
	const char *audit_key;   /* its signing key (file, or a directory for audit.key) */
	const char *metrics_file; /* Prometheus textfile, rewritten every tick, or NULL */
	uint64_t interval_ns;
	uint64_t prev_ttl_ns;
	unsigned reacquire_every; /* ticks between map-id checks */
	unsigned sync_every;      /* ticks between fdatasync of the trace */
	unsigned summary_every;   /* ticks between TICK# lines */
	uint64_t max_ticks;       /* stop after this many ticks; 0 = run until a signal */
	int log_level;            /* enum kl_log_level */
	bool help;
};

/* Parse argv; pure (no I/O). 0, or -1 with err naming the flag at fault. */
int kl_sensor_parse(int argc, char **argv, struct kl_sensor_opts *o, char *err, size_t errlen);
void kl_sensor_usage(FILE *f);
/* Open the maps and the trace, drop privileges, run the loop. Exit code. */
int kl_sensor_run(const struct kl_sensor_opts *o);

#endif
