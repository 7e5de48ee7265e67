/* SPDX-License-Identifier: MPL-2.0 */
/* kl-graphd's command line: the daemon, replay, and the offline commands. */
#ifndef KL_GRAPHD_OPTS_H
#define KL_GRAPHD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/knob.h"
#include "graphd/graph.h"
#include "graphd/push.h"

#define GR_CONFIG_DEFAULT "/etc/kernloom/graphd.yaml"
#define GR_PDP_DEFAULT "/etc/kernloom/pdp.yaml" /* kl-decider's DEC_PDP_DEFAULT */
#define GR_DB_DEFAULT "/var/lib/kernloom/graph/kliq.db"
#define GR_RUN_DIR_DEFAULT "/run/kernloom"
#define GR_AUDIT_DIR_DEFAULT "/var/log/kernloom/graphd"
#define GR_AUDIT_KEY_DEFAULT "/var/lib/kernloom/graph/audit.key"
#define GR_USER_DEFAULT "kernloom-graph"
#define GR_SENSOR_USER_DEFAULT "kernloom-sensor"

enum gr_cmd {
	GR_CMD_DAEMON = 0,
	GR_CMD_REPLAY,
	GR_CMD_EXPORT,
	GR_CMD_FREEZE,
	GR_CMD_APPROVE,
	GR_CMD_DENY,
	GR_CMD_VIOLATIONS,
	GR_CMD_BACKUP,
};

/* Every setting of the daemon and of replay, as the knob table (opts.c)
 * resolves them: built-in < PDPConfig spec.graph < graphd.yaml < flag. */
struct gr_cfg {
	char *config, *pdp_config;
	char *db, *run_dir, *audit_dir, *audit_key, *user, *sensor_user, *metrics_file, *replay;
	int64_t sensor_max_flows;
	int mode;
	int64_t min_seen, min_windows;
	int64_t min_age, promote_interval, window, expire_ttl; /* ns */
	bool exclude_broadcast, exclude_loopback;
	struct kl_cidrs exclude_cidrs;
	int64_t ephemeral_min;
	int64_t rule_ttl, deny_ttl, violation_every, suspect_hold; /* ns */
	int64_t push_rate;
	bool edge_baseline;
	int64_t eb_min_obs;
	double eb_alpha, eb_factor, eb_min_pps;
	int64_t busy_timeout; /* ns */
	int64_t summary_every;
	int log_level;
	bool config_check;
};

extern const struct kl_knobset gr_knobs;

struct gr_opts {
	struct gr_cfg c;          /* owns every string below */
	struct kl_resolved r;     /* r.v == &c: each value's origin, for -n */
	enum kl_cli_action action; /* --help, --help-markdown, --help-man */
	const char *db, *run_dir, *user, *sensor_user, *replay;
	uint32_t sensor_max_flows; /* bounds FLOWS frames (kl_flows_msg_max) */
	const char *audit_dir, *audit_key; /* the audit trail (daemon mode; "" dir: off) */
	const char *metrics_file; /* Prometheus textfile rewritten every tick, or NULL */
	struct gr_params p;
	struct gr_push_params pp;
	int log_level;           /* enum kl_log_level */
	int busy_ms;
	uint64_t summary_every;  /* ticks between TICK# lines; 0 = never */
	enum gr_cmd cmd;
	/* the offline commands */
	int state;               /* export --state; -1 = every edge */
	bool json;               /* --format json */
	bool dry_run;            /* freeze --dry-run */
	struct kl_addr ip;       /* approve-ip / deny-ip */
	bool one_edge;           /* --port/--proto given */
	uint16_t port;
	uint8_t proto;
	int64_t since_ms;        /* violations --since, as a duration; -1 = all */
	uint64_t limit;          /* violations --limit; 0 = all */
	const char *backup_to;
};

/* Flags, then the files they name (--pdp-config, --config; the default
 * paths may be missing), merged. Returns 0, or -1 with every problem in
 * errs (file:line: key: why, or --flag: why). Nothing is printed. Called
 * again with the same argv it re-reads the files (SIGHUP). */
int gr_opts_parse(int argc, char **argv, struct gr_opts *o, struct kl_errs *errs);
/* SIGHUP: run takes fresh's live settings (kl_reload_apply) and its
 * views are rebuilt. Returns the number of live changes. */
size_t gr_opts_apply(struct gr_opts *run, const struct gr_opts *fresh);
void gr_opts_free(struct gr_opts *o);
void gr_usage(FILE *f);
/* -n: the effective configuration with each value's origin. */
void gr_opts_print(const struct gr_opts *o, FILE *f);
void gr_help_man(FILE *f);

#endif
