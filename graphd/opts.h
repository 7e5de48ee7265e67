/* SPDX-License-Identifier: MPL-2.0 */
/* kl-graphd's command line: the daemon, replay, and the offline commands. */
#ifndef KL_GRAPHD_OPTS_H
#define KL_GRAPHD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "graphd/graph.h"
#include "graphd/push.h"

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

struct gr_opts {
	const char *db, *run_dir, *user, *sensor_user, *replay;
	uint32_t sensor_max_flows; /* bounds FLOWS frames (kl_flows_msg_max) */
	const char *audit_dir, *audit_key; /* the audit trail (daemon mode; "" dir: off) */
	const char *metrics_file; /* Prometheus textfile rewritten every tick, or NULL */
	struct gr_params p;
	struct gr_push_params pp;
	struct kl_addr *exclude; /* owned; p.exclude points here */
	size_t nexclude;
	int log_level;           /* enum kl_log_level */
	int busy_ms;
	uint64_t summary_every;  /* ticks between TICK# lines; 0 = never */
	bool help;
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

/* Returns 0, or -1 with a usage error naming the flag in err. */
int gr_opts_parse(int argc, char **argv, struct gr_opts *o, char *err, size_t errlen);
void gr_opts_free(struct gr_opts *o);
void gr_usage(FILE *f);

#endif
