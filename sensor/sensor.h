/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor: options and the tick loop (main.c only parses and calls). */
#ifndef KL_SENSOR_SENSOR_H
#define KL_SENSOR_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/knob.h"

#define SEN_USER_DEFAULT "kernloom-sensor"
#define SEN_RUN_DIR_DEFAULT "/run/kernloom"

#define SEN_CONFIG_DEFAULT "/etc/kernloom/sensor.yaml"

/* Every setting, as the knob table (opts.c) resolves them:
 * built-in < sensor.yaml < flag. */
struct sen_cfg {
	char *config;
	char *run_dir, *pin_dir, *user, *record, *audit_dir, *audit_key, *metrics_file;
	int64_t interval, prev_ttl; /* ns */
	int64_t reacquire_every, sync_every, summary_every, ticks;
	int log_level;
	bool config_check;
};

extern const struct kl_knobset sen_knobs;

struct sen_opts {
	struct sen_cfg c;   /* owns every string below */
	struct kl_resolved r;     /* r.v == &c: origins for -n */
	enum kl_cli_action action;
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
};

/* Flags, then the file --config names (the default one may be missing),
 * merged; pure but for reading that file. 0, or -1 with every problem in
 * errs. Called again with the same argv it re-reads the file (SIGHUP). */
int sen_parse(int argc, char **argv, struct sen_opts *o, struct kl_errs *errs);
void sen_opts_free(struct sen_opts *o);
void sen_usage(FILE *f);
void sen_help_man(FILE *f);
/* -n: the effective configuration with each value's origin. */
void sen_print(const struct sen_opts *o, FILE *f);
/* SIGHUP: parse argv and re-read the file into a fresh set; a bad file
 * keeps o (every error logged); else the live settings change and the
 * others are logged as needing a restart. 0 when o was replaced. */
int sen_reload(struct sen_opts *o, int argc, char **argv);
/* Open the maps and the trace, drop privileges, run the loop (argv again
 * on SIGHUP). Exit code. */
int sen_run(struct sen_opts *o, int argc, char **argv);

#endif
