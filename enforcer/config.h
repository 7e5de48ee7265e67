/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer configuration: its knob table (common/knob.h) over enforcer.yaml
 * and the command line, the checks across settings, and reload. Everything
 * here is pure (no BPF, no sockets), so unit tests drive it directly.
 */
#ifndef KL_ENFORCER_CONFIG_H
#define KL_ENFORCER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/knob.h"
#include "ipc/msg.h"

#define ENF_MAX_IFACES  32
#define ENF_MAX_PROTECT 256
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

/* The settings: each member but the last is a row of the knob table. */
struct enf_config {
	char *config; /* --config path, "" for none */

	struct kl_strs ifaces;
	char *obj; /* "": the object built into kl-enforcer */
	char *pin_dir;
	char *run_dir;
	/* The audit trail (common/audit.h): its directory and signing key. */
	char *audit_dir;
	char *audit_key;
	/* Prometheus textfile rewritten every second; empty: none. */
	char *metrics_file;

	enum kl_xdp_mode xdp_mode; /* KT_ENUM: stored as an int */
	enum enf_features features;

	struct kl_cidrs protect;

	uint64_t map_sizes[ENF_SZ_MAX];
	uint64_t ephemeral_min;

	/* The links (DESIGN §1): which user may connect as decider / graphd
	 * besides root and ourselves, and each role's write quota. */
	char *decider_user;
	char *graph_user;
	/* The telemetry pins are readable by this user's group (kl-sensor
	 * re-opens them read-only after an enforcer restart). */
	char *sensor_user;
	/* Started as root, the enforcer becomes this user keeping only its
	 * three capabilities (sandbox.h); never uid 0 once set up. */
	char *user;
	uint64_t decider_rate, decider_max, graph_rate, graph_max;
	/* Bounds of the aggregate new-source limit the decider may set
	 * (DESIGN §1): no lower rate, no longer TTL (seconds). max_ttl 0 =
	 * the decider may not set it at all. */
	uint64_t newsrc_min_rate, newsrc_max_ttl;

	bool detach_on_exit;
	bool force;
	bool config_check;
	int log_level; /* enum kl_log_level */

	/* Not a knob: where each value came from (set by enf_config_build). */
	const struct kl_resolved *r;
};

extern const struct kl_knobset enf_knobs;

/* A resolved configuration: the values and their origins. */
struct enf_opts {
	struct enf_config c;
	struct kl_resolved r;
	enum kl_cli_action action;
};

const char *enf_features_name(enum enf_features f);
const char *enf_xdp_mode_name(enum kl_xdp_mode m);
const char *enf_size_key(enum enf_size s);
/* rodata switches of a profile */
bool enf_features_flow(enum enf_features f);
bool enf_features_edge(enum enf_features f);

/* The built-in values (tests; no file, no flags). Free with
 * enf_opts_free. */
int enf_config_defaults(struct enf_opts *o);

/* Flags, then the file they name (or the default one when it exists), then
 * enf_config_validate. Returns 0, or -1 with every problem in errs ("FILE:LINE:
 * key: why" or "--flag: why"). A --help kind of request sets o->action and
 * returns 0 without reading a file. */
int enf_config_build(struct enf_opts *o, int argc, char *const argv[], struct kl_errs *errs);
/* The same over the text of a file named fname, without flags (fuzzing,
 * tests). */
int enf_config_from_text(struct enf_opts *o, const char *text, size_t len, const char *fname,
			 struct kl_errs *errs);
void enf_opts_free(struct enf_opts *o);

/* Checks across settings and the ones the table cannot say (names, list
 * lengths, duplicates, quotas against map sizes). Returns the new errors. */
size_t enf_config_validate(const struct enf_config *c, const struct kl_resolved *r,
			   struct kl_errs *errs);

/* Was the setting (flag name) given, by file or flag? */
bool enf_config_given(const struct enf_config *c, const char *knob);
/* "file F:L", "flag --x", "default": for messages. */
void enf_config_origin(const struct enf_config *c, const char *knob, char *buf, size_t len);

/* Entries of a map of max_entries no daemon may take: the operator can
 * always add a rule (deny, rate limit, edge) even when a compromised
 * decider or graphd has written all it may. 1/16 of the map, at least 1
 * and at most 4096. */
uint32_t enf_operator_reserve(uint32_t max_entries);

/* SIGHUP: build again from the same command line and file; a refused
 * configuration keeps the running one (logged). The new-source bounds
 * (read per request) take the new values; any other change is logged as
 * needing a restart. Returns the number of live changes, or -1. */
int enf_config_reload(struct enf_opts *run, int argc, char *const argv[]);

/* -n: every setting with its value and origin. */
void enf_config_print(const struct enf_opts *o, FILE *out);

void enf_usage(FILE *f);
/* kl-enforcer(8), and kernloom.yaml(5): the keys of enforcer.yaml, and
 * where sensor.yaml's and graphd.yaml's are described. */
void enf_help_man(FILE *f);
void enf_help_man_file(FILE *f);

/* Checks of names the kernel and useradd take (attach at run time too).
 * Return 0 or -1 with why set. */
int enf_check_ifname(const char *s, char *why, size_t len);
int enf_check_user(const char *s, char *why, size_t len);

#endif
