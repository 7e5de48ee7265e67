/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer configuration: defaults, the small YAML file, command-line
 * flags, and the `-n` report. Everything here is pure (no BPF, no sockets),
 * so unit tests drive it directly. Each value remembers where it came from
 * (default, file:line, flag) so `-n` can say why a value is what it is.
 */
#ifndef KL_ENFORCER_CONFIG_H
#define KL_ENFORCER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "ipc/msg.h"

#define ENF_MAX_IFACES  32
#define ENF_MAX_PROTECT 256
#define ENF_MAX_ERRORS  64
#define ENF_ERR_LEN     320
/* Upper bound for any map_sizes value: 16M entries per map is already far
 * beyond what the seeds size for, and keeps a typo from asking for GBs. */
#define ENF_MAP_SIZE_MAX (1u << 24)
/* User names (decider_user, graph_user): as useradd takes them. */
#define ENF_USER_LEN 33
#define ENF_CONFIG_DEFAULT "/etc/kernloom/enforcer.yaml"
#define ENF_DECIDER_USER_DEFAULT "kernloom-decider"
#define ENF_AUDIT_DIR_DEFAULT "/var/log/kernloom/enforcer"
#define ENF_AUDIT_KEY_DEFAULT "/var/lib/kernloom/enforcer/audit.key"
#define ENF_GRAPH_USER_DEFAULT   "kernloom-graph"
#define ENF_SENSOR_USER_DEFAULT  "kernloom-sensor"
#define ENF_USER_DEFAULT         "kernloom-enforcer"
#define ENF_DECIDER_RATE_DEFAULT 10000
#define ENF_DECIDER_MAX_DEFAULT  200000
#define ENF_GRAPH_RATE_DEFAULT   5000
/* graphd's total fits in one edge map (map_sizes.edge 65536) after the
 * operator's reserve (4096): enf_config_validate checks it. */
#define ENF_GRAPH_MAX_DEFAULT    60000
/* The decider may limit not-yet-admitted new sources to no less than this
 * (pps), for at most this long (s) per request; it renews while a spoofed
 * flood lasts. */
#define ENF_NEWSRC_MIN_RATE_DEFAULT 100
#define ENF_NEWSRC_MAX_TTL_DEFAULT  300
#define ENF_NEWSRC_RATE_MAX         100000000u
#define ENF_QUOTA_RATE_MAX       10000000u  /* entries per second */
#define ENF_QUOTA_MAX_MAX        (1u << 26) /* entries in total */

enum enf_src { ENF_SRC_DEFAULT = 0, ENF_SRC_FILE, ENF_SRC_FLAG };

struct enf_origin {
	uint8_t src;   /* enum enf_src */
	unsigned line; /* 1-based, for ENF_SRC_FILE */
};

enum enf_features {
	ENF_FEAT_LIGHT = 0,
	ENF_FEAT_IQ_LEARNING,
	ENF_FEAT_GRAPH_LEARNING,
	ENF_FEAT_GRAPH_ENFORCE,
	ENF_FEAT_MAX
};

/* map_sizes keys, in the order they are printed. */
enum enf_size {
	ENF_SZ_SRC = 0,
	ENF_SZ_DENY,
	ENF_SZ_DENY_CIDR,
	ENF_SZ_ALLOW,
	ENF_SZ_RL,
	ENF_SZ_FLOW,
	ENF_SZ_EDGE,
	ENF_SZ_MAX
};

struct enf_protect {
	struct kl_addr cidr;
	struct enf_origin o;
};

struct enf_config {
	char file[PATH_MAX]; /* --config path, "" if none */

	char ifaces[ENF_MAX_IFACES][KL_IFNAMSIZ];
	size_t n_ifaces;
	struct enf_origin o_ifaces;

	char obj[PATH_MAX];
	struct enf_origin o_obj;
	char pin_dir[PATH_MAX];
	struct enf_origin o_pin_dir;
	char run_dir[PATH_MAX];
	struct enf_origin o_run_dir;
	/* The audit trail (common/audit.h): its directory and signing key. */
	char audit_dir[PATH_MAX];
	struct enf_origin o_audit_dir;
	char audit_key[PATH_MAX];
	struct enf_origin o_audit_key;
	/* Prometheus textfile rewritten every second; empty: none. */
	char metrics_file[PATH_MAX];
	struct enf_origin o_metrics_file;

	enum kl_xdp_mode xdp_mode;
	struct enf_origin o_xdp_mode;
	enum enf_features features;
	struct enf_origin o_features;

	struct enf_protect protect[ENF_MAX_PROTECT];
	size_t n_protect;

	uint32_t map_sizes[ENF_SZ_MAX];
	struct enf_origin o_map_sizes[ENF_SZ_MAX];

	uint32_t ephemeral_min;
	struct enf_origin o_ephemeral_min;

	/* The links (DESIGN §1): which user may connect as decider / graphd
	 * besides root and ourselves, and each role's write quota. */
	char decider_user[ENF_USER_LEN];
	struct enf_origin o_decider_user;
	char graph_user[ENF_USER_LEN];
	struct enf_origin o_graph_user;
	/* The telemetry pins are readable by this user's group (kl-sensor
	 * re-opens them read-only after an enforcer restart). */
	char sensor_user[ENF_USER_LEN];
	struct enf_origin o_sensor_user;
	/* Started as root, the enforcer becomes this user keeping only its
	 * three capabilities (sandbox.h); never uid 0 once set up. */
	char user[ENF_USER_LEN];
	struct enf_origin o_user;
	uint32_t decider_rate, decider_max, graph_rate, graph_max;
	struct enf_origin o_decider_rate, o_decider_max, o_graph_rate, o_graph_max;
	/* Bounds of the aggregate new-source limit the decider may set
	 * (DESIGN §1): no lower rate, no longer TTL (seconds). max_ttl 0 =
	 * the decider may not set it at all. */
	uint32_t newsrc_min_rate, newsrc_max_ttl;
	struct enf_origin o_newsrc_min_rate, o_newsrc_max_ttl;

	/* flag-only */
	bool detach_on_exit;
	bool force;
	bool check_only;
	int log_level; /* enum kl_log_level */
};

/* Every error found, each naming its place ("FILE:LINE: key: why" or
 * "--flag: why"); collecting them all lets `-n` list every problem at once. */
struct enf_diag {
	char msg[ENF_MAX_ERRORS][ENF_ERR_LEN];
	unsigned n;       /* errors recorded (<= ENF_MAX_ERRORS) */
	unsigned dropped; /* errors beyond the cap */
};

void enf_diag_add(struct enf_diag *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Command-line flags, kept apart from the config so the file (named by a
 * flag) can be read first and the flags applied on top of it. */
struct enf_cli {
	const char *config;
	const char *ifaces[ENF_MAX_IFACES];
	size_t n_ifaces;
	const char *obj, *pin_dir, *run_dir, *xdp_mode, *features, *log_level;
	const char *decider_user, *graph_user, *sensor_user, *user;
	const char *audit_dir, *audit_key, *metrics_file;
	const char *protect[ENF_MAX_PROTECT];
	size_t n_protect;
	bool detach_on_exit, force, check_only, help;
	int help_man; /* 1: --help-man, kl-enforcer(8); 2: --help-man-file, kernloom.yaml(5) */
};

const char *enf_features_name(enum enf_features f);
int enf_features_parse(const char *s); /* -1 if unknown */
const char *enf_xdp_mode_name(enum kl_xdp_mode m);
int enf_xdp_mode_parse(const char *s); /* -1 if unknown */
const char *enf_size_key(enum enf_size s);
/* rodata switches of a profile */
bool enf_features_flow(enum enf_features f);
bool enf_features_edge(enum enf_features f);

void enf_config_defaults(struct enf_config *c);

/* Parse argv (getopt_long; resets getopt state so tests can call it again).
 * Returns 0, or -1 after recording usage errors in d. */
int enf_cli_parse(int argc, char **argv, struct enf_cli *cli, struct enf_diag *d);
void enf_usage(FILE *f, const char *prog);
/* kl-enforcer(8), and kernloom.yaml(5): the keys of enforcer.yaml (its
 * built-in values, as -n prints them), and where sensor.yaml's and
 * graphd.yaml's are described. */
void enf_help_man(FILE *f);
void enf_help_man_file(FILE *f);

/* Parse the YAML text of a config file named `fname` into c (over the
 * defaults). Unknown keys, wrong types, bad values and duplicates are
 * recorded in d with fname:line. Returns the number of new errors. */
unsigned enf_config_parse_yaml(struct enf_config *c, const char *text, size_t len,
			       const char *fname, struct enf_diag *d);
/* Read and parse a file. */
unsigned enf_config_load_file(struct enf_config *c, const char *path, struct enf_diag *d);
/* Apply flags on top (they override; --protect adds). Returns new errors. */
unsigned enf_config_apply_cli(struct enf_config *c, const struct enf_cli *cli,
			      struct enf_diag *d);
/* Whole-config checks (duplicates across sources, ...). Returns new errors. */
unsigned enf_config_validate(const struct enf_config *c, struct enf_diag *d);

/* All of the above in order: defaults, file named by cli->config, flags,
 * validate. Returns the error count. */
unsigned enf_config_build(struct enf_config *c, const struct enf_cli *cli, struct enf_diag *d);

/* Entries of a map of max_entries no daemon may take: the operator can
 * always add a rule (deny, rate limit, edge) even when a compromised
 * decider or graphd has written all it may. 1/16 of the map, at least 1
 * and at most 4096. */
uint32_t enf_operator_reserve(uint32_t max_entries);

/* SIGHUP: fresh was built from the same command line and the file again
 * (and validated). The new-source bounds (read per request) take fresh's
 * values; any other change is logged as needing a restart and run keeps
 * its value. Returns the number of live changes. */
unsigned enf_config_reload(struct enf_config *run, const struct enf_config *fresh);

/* The `-n` report: the effective config as YAML (so it can be fed back),
 * each value followed by "# default", "# FILE:LINE" or "# flag". */
void enf_config_render(const struct enf_config *c, FILE *out);

/* Checks shared by the YAML and flag paths. Return 0 or -1 with why set. */
int enf_check_ifname(const char *s, char *why, size_t len);
int enf_check_path(const char *s, char *why, size_t len);
int enf_check_user(const char *s, char *why, size_t len);

#endif
