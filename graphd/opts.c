/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-graphd's settings (the knob table) and its command line: the daemon,
 * replay, and the offline commands with their own flags.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/kyaml.h"
#include "common/log.h"
#include "graphd/opts.h"

#include "bpf/shield.h"
#include "ipc/enforce.h"

#define OFF(f) offsetof(struct gr_cfg, f)
#define STR_(x) #x
#define STR(x) STR_(x)
#define MIN_S 60.0
#define DAY_S 86400.0

#define G_FILES "Files, sockets and privileges"
#define G_LEARN "Learning (PDPConfig spec.graph)"
#define G_PUSH "Frozen paths and the enforcer"
#define G_EB "Per-edge baselines"
#define G_RUN "Runtime"

/* Flags whose value also lives in a PDPConfig use the decider's names and
 * its spec.graph paths, so one file configures both daemons. */
static const struct kl_knob knobs[] = {
	{ "config", KT_STR, OFF(config), GR_CONFIG_DEFAULT, .group = G_FILES,
	  .help = "kl-graphd's own YAML file (keys: the flag names with '_'); a missing default "
		  "file means built-in values, a missing named file is an error." },
	{ "pdp-config", KT_STR, OFF(pdp_config), GR_PDP_DEFAULT, .group = G_FILES,
	  .help = "The decider's PDPConfig: its spec.graph (mode, store, promotion, exclude) "
		  "applies here too; a missing default file means built-in values. Empty: none." },
	{ "graph-store", KT_STR, OFF(db), GR_DB_DEFAULT, .pdp = "graph.store", .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "SQLite graph database.", .key = "graph_store" },
	{ "run-dir", KT_STR, OFF(run_dir), GR_RUN_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "Root of the role socket directories.", .key = "run_dir" },
	{ "audit-dir", KT_STR, OFF(audit_dir), GR_AUDIT_DIR_DEFAULT, .group = G_FILES,
	  .help = "Audit trail (empty: off).", .key = "audit_dir" },
	{ "audit-key", KT_STR, OFF(audit_key), GR_AUDIT_KEY_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "Its Ed25519 key (a file, or a directory for audit.key).",
	  .key = "audit_key" },
	{ "user", KT_STR, OFF(user), GR_USER_DEFAULT, .group = G_FILES,
	  .help = "User to become when started as root.", .key = "user" },
	{ "sensor-user", KT_STR, OFF(sensor_user), GR_SENSOR_USER_DEFAULT, .group = G_FILES,
	  .help = "Who may send flow frames.", .key = "sensor_user" },
	{ "sensor-max-flows", KT_INT, OFF(sensor_max_flows), STR(KL_FLOW_MAX_DEFAULT), .min = 1,
	  .max = 16777216, .group = G_FILES,
	  .help = "The enforcer's map_sizes.flow: larger FLOWS frames are refused.",
	  .key = "sensor_max_flows" },
	{ "metrics-file", KT_STR, OFF(metrics_file), "", .group = G_FILES,
	  .help = "Rewrite this file every tick with Prometheus metrics (node_exporter textfile "
		  "format). Empty: none.", .key = "metrics_file" },
	{ "replay", KT_STR, OFF(replay), "", .group = G_FILES,
	  .help = "Replay a kl-sensor or JSON-lines trace ('-': stdin, JSON lines), print each "
		  "violation as a JSON line, and exit." },

	{ "graph-mode", KT_ENUM, OFF(mode), "learn", .pdp = "graph.mode", .enums = gr_mode_names,
	  .group = G_LEARN, .help = "learn | frozen-observe | frozen-enforce.",
	  .key = "graph_mode" },
	{ "graph-min-seen", KT_INT, OFF(min_seen), "5", .min = 1, .max = 1e9,
	  .pdp = "graph.promotion.min_seen_count", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Ticks an edge must be seen in before it is learned.", .key = "graph_min_seen" },
	{ "graph-min-windows", KT_INT, OFF(min_windows), "3", .min = 1, .max = 1e6,
	  .pdp = "graph.promotion.min_windows", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Distinct windows an edge must be seen in.", .key = "graph_min_windows" },
	{ "graph-min-age", KT_DUR, OFF(min_age), "10m", .min = 0, .max = 365 * DAY_S,
	  .pdp = "graph.promotion.min_age", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Time since an edge was first seen before it is learned.",
	  .key = "graph_min_age" },
	{ "graph-promote-interval", KT_DUR, OFF(promote_interval), "5m", .min = 0.001,
	  .max = 30 * DAY_S, .group = G_LEARN, .help = "How often promotion and expiry run.",
	  .key = "graph_promote_interval" },
	{ "graph-window", KT_DUR, OFF(window), "0", .min = 0, .max = 365 * DAY_S,
	  .group = G_LEARN, .help = "Length of a promotion window (0: the promote interval).",
	  .key = "graph_window" },
	{ "graph-expire-ttl", KT_DUR, OFF(expire_ttl), "720h", .min = 0, .max = 3650 * DAY_S,
	  .pdp = "graph.promotion.expire_ttl", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Idle candidates and learned edges expire after this (0 = never).",
	  .key = "graph_expire_ttl" },
	{ "graph-exclude-broadcast", KT_BOOL, OFF(exclude_broadcast), "true",
	  .pdp = "graph.exclude.broadcast", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Never learn from multicast and limited-broadcast sources.",
	  .key = "graph_exclude_broadcast" },
	{ "graph-exclude-loopback", KT_BOOL, OFF(exclude_loopback), "true",
	  .pdp = "graph.exclude.loopback", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Never learn from loopback sources.", .key = "graph_exclude_loopback" },
	{ "graph-exclude-cidrs", KT_CIDRS, OFF(exclude_cidrs), "",
	  .pdp = "graph.exclude.source_cidrs", .flags = KF_LIVE, .group = G_LEARN,
	  .help = "Sources never learned from (comma-separated CIDRs; the unspecified address "
		  "never is).", .key = "graph_exclude_cidrs" },
	{ "graph-ephemeral-min", KT_INT, OFF(ephemeral_min), "32768", .min = 0, .max = 65535,
	  .group = G_LEARN,
	  .help = "TCP/UDP ports >= this fold to port 0, as the data plane does (0 = no folding).",
	  .key = "graph_ephemeral_min" },
	{ "graph-suspect-hold", KT_DUR, OFF(suspect_hold), "10m", .min = 0, .max = 30 * DAY_S,
	  .flags = KF_LIVE, .group = G_LEARN,
	  .help = "A rate-limited or violating source stays excluded from learning this long.",
	  .key = "graph_suspect_hold" },

	{ "graph-rule-ttl", KT_DUR, OFF(rule_ttl), "15m", .min = 2 * KL_EDGE_TTL_MIN_MS / 1000.0,
	  .max = KL_EDGE_TTL_MAX_MS / 1000.0, .group = G_PUSH,
	  .help = "TTL of the edge rules pushed to the enforcer (refreshed at half-life).",
	  .key = "graph_rule_ttl" },
	{ "graph-deny-ttl", KT_DUR, OFF(deny_ttl), "1h", .min = KL_EDGE_TTL_MIN_MS / 1000.0,
	  .max = KL_EDGE_TTL_MAX_MS / 1000.0, .flags = KF_LIVE, .group = G_PUSH,
	  .help = "frozen-enforce: edge deny of a violating path.", .key = "graph_deny_ttl" },
	{ "graph-violation-every", KT_DUR, OFF(violation_every), "1m", .min = 0,
	  .max = 30 * DAY_S, .flags = KF_LIVE, .group = G_PUSH,
	  .help = "One violation per edge per this long.", .key = "graph_violation_every" },
	{ "graph-push-rate", KT_INT, OFF(push_rate), "2000", .min = 2, .max = KL_EDGE_RULES_MAX,
	  .group = G_PUSH, .help = "Edge rules sent per second at most.",
	  .key = "graph_push_rate" },

	{ "edge-baseline", KT_BOOL, OFF(edge_baseline), "true", .flags = KF_LIVE, .group = G_EB,
	  .help = "Per-edge baselines: EWMA and peak of pps and bytes/s per edge; a deviation "
		  "signals the decider.", .key = "edge_baseline" },
	{ "edge-baseline-min-obs", KT_INT, OFF(eb_min_obs), "30", .min = 1, .max = 1e9,
	  .flags = KF_LIVE, .group = G_EB,
	  .help = "Ticks an edge is observed before it can deviate.", .key = "edge_baseline_min_obs" },
	{ "edge-baseline-alpha", KT_FLOAT, OFF(eb_alpha), "0.05", .min = 1e-6, .max = 1,
	  .flags = KF_LIVE, .group = G_EB, .help = "EWMA weight of a new tick.",
	  .key = "edge_baseline_alpha" },
	{ "edge-baseline-factor", KT_FLOAT, OFF(eb_factor), "3.0", .min = 1, .max = 1e6,
	  .flags = KF_LIVE, .group = G_EB,
	  .help = "Deviation: pps or bytes/s above this x the learned peak; such ticks are never "
		  "learned.", .key = "edge_baseline_factor" },
	{ "edge-baseline-min-pps", KT_FLOAT, OFF(eb_min_pps), "10", .min = 0, .max = 1e12,
	  .flags = KF_LIVE, .group = G_EB, .help = "... and at least this many pps.",
	  .key = "edge_baseline_min_pps" },

	{ "busy-timeout", KT_DUR, OFF(busy_timeout), "2s", .min = 0, .max = 600, .group = G_RUN,
	  .help = "Wait this long for a locked database.", .key = "busy_timeout" },
	{ "summary-every", KT_INT, OFF(summary_every), "10", .min = 0, .max = 1e9,
	  .flags = KF_LIVE, .group = G_RUN,
	  .help = "Ticks between TICK# log lines (0 = never).", .key = "summary_every" },
	KL_KNOB_LOG_LEVEL(OFF(log_level), G_RUN),
	KL_KNOB_CONFIG_CHECK(OFF(config_check), G_RUN),
};

const struct kl_knobset gr_knobs = {
	.prog = "kl-graphd", .k = knobs, .n = sizeof(knobs) / sizeof(knobs[0]),
	.size = sizeof(struct gr_cfg),
};
_Static_assert(sizeof(knobs) / sizeof(knobs[0]) <= KL_KNOB_MAX, "raise KL_KNOB_MAX");

static const char usage_text[] =
	"usage: kl-graphd [--config FILE] [--pdp-config FILE] [--graph-store FILE] [options]\n"
	"       kl-graphd [--graph-store FILE] --replay TRACE [--graph-mode MODE] [options]\n"
	"       kl-graphd -n [options]         print the effective configuration and exit\n"
	"       kl-graphd --help-man           kl-graphd(8) (roff; --help-markdown: the options)\n"
	"       kl-graphd [--graph-store FILE] COMMAND [ARGS]\n"
	"The graph learner: records which source talks to which (port, protocol), promotes\n"
	"steady edges to learned, and once frozen turns the graph into zero-trust paths.\n"
	"Flow frames come from kl-sensor on RUN_DIR/graphd/flows.sock; frozen and approved edges go\n"
	"to kl-enforcer's edge allow map; violations go to kl-decider (RUN_DIR/decider/violations.sock).\n"
	"Started as root it opens the database and its sockets, then becomes --user with no\n"
	"capabilities.\n"
	"\n"
	"Precedence: flag > --config (graphd.yaml) > --pdp-config spec.graph > default.\n"
	"Booleans: --x or --x=true|false. Durations: 500ms, 30s, 2m, 336h. SIGHUP re-reads both files.\n"
	"\n"
	"Commands (offline, on a stopped daemon's database; `klctl graph ...` for a running one;\n"
	"export, violations and backup also work next to a running daemon):\n"
	"  export [--state S] [--format table|json]   list edges (S: candidate, learned, frozen,\n"
	"                                             approved, denied, expired)\n"
	"  freeze [--dry-run]                         learned -> frozen; the dry run lists what\n"
	"                                             would be frozen and what is not ready\n"
	"  approve-ip IP [--port N --proto P]         every edge of IP (or one) -> approved\n"
	"  deny-ip IP [--port N --proto P]            every edge of IP (or one) -> denied\n"
	"  violations [--since DUR] [--limit N] [--format table|json]\n"
	"  backup FILE                                SQLite online backup (safe while running)\n"
	"Exit status: 0 ok, 1 failure, 2 usage or configuration error, 3 not found (approve/deny\n"
	"without edges).\n";

void gr_usage(FILE *f)
{
	kl_knob_help(&gr_knobs, usage_text, f);
}

static const struct kl_manpage man8 = {
	.name = "kl-graphd",
	.section = 8,
	.summary = "Kernloom graph learner: communication paths, freeze, zero-trust edges",
	.synopsis = ".B kl-graphd\n.RI [ options ]\n.br\n.B kl-graphd \\-\\-replay\n.I TRACE\n"
		    ".RI [ options ]\n.br\n.B kl-graphd \\-n\n.RI [ options ]\n.br\n"
		    ".B kl-graphd\n.RB [ \\-\\-graph\\-store\n.IR FILE ]\n.I COMMAND\n.RI [ ARGS ]\n",
	.description =
		"Records which source talks to which (port, protocol) from kl\\-sensor's flow frames, "
		"promotes steady edges to learned, and once frozen turns the graph into zero\\-trust "
		"paths: frozen and approved edges go to kl\\-enforcer's edge allow map, violations to "
		"kl\\-decider.\n.PP\nSettings come, lowest precedence first, from the built\\-in "
		"defaults, \\fBspec.graph\\fR of the decider's PDPConfig (\\fB\\-\\-pdp\\-config\\fR), "
		"kl\\-graphd's own file (\\fB\\-\\-config\\fR, keys as in \\fBkernloom.yaml\\fR(5)) and "
		"the command line. SIGHUP re\\-reads both files: a file with an error keeps the old "
		"configuration; settings marked \"Reloaded on SIGHUP\" change at once, the others "
		"are logged as needing a restart.\n.PP\nCommands (offline, on a stopped daemon's "
		"database): \\fBexport\\fR [\\-\\-state S] [\\-\\-format table|json], \\fBfreeze\\fR "
		"[\\-\\-dry\\-run], \\fBapprove\\-ip\\fR IP [\\-\\-port N \\-\\-proto P], \\fBdeny\\-ip\\fR IP "
		"[\\-\\-port N \\-\\-proto P], \\fBviolations\\fR [\\-\\-since DUR] [\\-\\-limit N], "
		"\\fBbackup\\fR FILE.",
	.files = ".TP\n.I /etc/kernloom/graphd.yaml\nkl\\-graphd's file (\\fB\\-\\-config\\fR).\n"
		 ".TP\n.I /etc/kernloom/pdp.yaml\nThe PDPConfig whose spec.graph applies "
		 "(\\fB\\-\\-pdp\\-config\\fR).\n"
		 ".TP\n.I /var/lib/kernloom/graph/kliq.db\nThe graph (\\fB\\-\\-graph\\-store\\fR).\n",
	.exit_status = "0 ok, 1 failure, 2 usage or configuration error (every bad key named with "
		       "file, line and key), 3 not found (approve/deny without edges).",
	.see_also = "\\fBkernloom.yaml\\fR(5), \\fBkernloom\\-pdp\\fR(5), \\fBkl\\-decider\\fR(8), "
		    "\\fBklctl\\fR(8)",
};

void gr_help_man(FILE *f)
{
	kl_knob_help_man(&gr_knobs, &man8, f);
}

/* ---- the offline commands ---- */

static const struct {
	const char *name;
	enum gr_cmd cmd;
} cmds[] = {
	{ "export", GR_CMD_EXPORT },	   { "freeze", GR_CMD_FREEZE },
	{ "approve-ip", GR_CMD_APPROVE },  { "deny-ip", GR_CMD_DENY },
	{ "violations", GR_CMD_VIOLATIONS }, { "backup", GR_CMD_BACKUP },
};

static const char *const cmd_flags[] = { "--state", "--format", "--dry-run", "--port", "--proto",
					 "--since", "--limit", NULL };

/* What the command line says besides settings. */
struct cmdline {
	struct gr_opts *o;
	bool have_cmd, port_set, proto_set;
	size_t npos;
	const char *pos[2];
};

static bool cmd_flag_ok(enum gr_cmd c, const char *f)
{
	if (strcmp(f, "--format") == 0)
		return c == GR_CMD_EXPORT || c == GR_CMD_VIOLATIONS;
	if (strcmp(f, "--state") == 0)
		return c == GR_CMD_EXPORT;
	if (strcmp(f, "--dry-run") == 0)
		return c == GR_CMD_FREEZE;
	if (strcmp(f, "--port") == 0 || strcmp(f, "--proto") == 0)
		return c == GR_CMD_APPROVE || c == GR_CMD_DENY;
	return c == GR_CMD_VIOLATIONS; /* --since, --limit */
}

static int parse_u64(const char *flag, const char *s, uint64_t hi, uint64_t *out,
		     struct kl_errs *errs)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v > hi) {
		kl_errs_add(errs, "%s %s: want an integer in 0..%llu", flag, s,
			    (unsigned long long)hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int cmd_flag(struct cmdline *cl, const char *f, const char *v, struct kl_errs *errs)
{
	struct gr_opts *o = cl->o;
	uint64_t u;

	if (strcmp(f, "--state") == 0) {
		int s = gr_state_parse(v);
		if (s < 0) {
			kl_errs_add(errs, "%s %s: want candidate, learned, frozen, approved, denied "
				    "or expired", f, v);
			return -1;
		}
		o->state = s;
	} else if (strcmp(f, "--format") == 0) {
		if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0) {
			kl_errs_add(errs, "%s %s: want table or json", f, v);
			return -1;
		}
		o->json = strcmp(v, "json") == 0;
	} else if (strcmp(f, "--port") == 0) {
		if (parse_u64(f, v, 65535, &u, errs) < 0)
			return -1;
		o->port = (uint16_t)u;
		cl->port_set = true;
	} else if (strcmp(f, "--proto") == 0) {
		int p = kl_proto_parse(v);
		if (p < 0) {
			kl_errs_add(errs, "%s %s: want tcp, udp, icmp, icmpv6 or 0..255", f, v);
			return -1;
		}
		o->proto = (uint8_t)p;
		cl->proto_set = true;
	} else if (strcmp(f, "--since") == 0) {
		uint64_t ns;
		char why[160];
		if (kl_duration_parse(v, &ns, why, sizeof(why)) < 0 ||
		    ns > 3650ull * 86400 * 1000000000ull) {
			kl_errs_add(errs, "%s %s: %s", f, v, why[0] ? why : "out of range");
			return -1;
		}
		o->since_ms = (int64_t)(ns / 1000000);
	} else {
		return parse_u64(f, v, 100000000, &o->limit, errs);
	}
	return 0;
}

/* kl_cli_parse hands over whatever is not a setting: commands, their
 * flags, positional arguments, unknown flags. */
static int other_arg(void *ctx, int argc, char *const argv[], int *i, struct kl_errs *errs)
{
	struct cmdline *cl = ctx;
	const char *a = argv[*i];

	if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
		char flag[64];
		const char *eq = strchr(a, '='), *v;
		size_t fl = eq ? (size_t)(eq - a) : strlen(a);
		size_t k;
		if (fl >= sizeof(flag))
			fl = sizeof(flag) - 1;
		memcpy(flag, a, fl);
		flag[fl] = '\0';
		for (k = 0; cmd_flags[k] != NULL; k++)
			if (strcmp(cmd_flags[k], flag) == 0)
				break;
		if (cmd_flags[k] == NULL) {
			kl_errs_add(errs, "%s: unknown flag (see --help)", flag);
			return -1;
		}
		if (!cl->have_cmd) {
			kl_errs_add(errs, "%s: belongs after a command (see --help)", flag);
			return -1;
		}
		if (!cmd_flag_ok(cl->o->cmd, flag)) {
			kl_errs_add(errs, "%s: not an option of this command", flag);
			return -1;
		}
		if (strcmp(flag, "--dry-run") == 0) {
			if (eq != NULL) {
				kl_errs_add(errs, "%s: takes no value", flag);
				return -1;
			}
			cl->o->dry_run = true;
			return 0;
		}
		if (eq != NULL) {
			v = eq + 1;
		} else if (*i + 1 < argc) {
			v = argv[++*i];
		} else {
			kl_errs_add(errs, "%s: needs a value", flag);
			return -1;
		}
		return cmd_flag(cl, flag, v, errs);
	}
	if (!cl->have_cmd) {
		size_t k;
		for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
			if (strcmp(a, cmds[k].name) == 0)
				break;
		if (k == sizeof(cmds) / sizeof(cmds[0])) {
			kl_errs_add(errs, "%s: unknown command (export, freeze, approve-ip, deny-ip, "
				    "violations, backup)", a);
			return -1;
		}
		cl->o->cmd = cmds[k].cmd;
		cl->have_cmd = true;
		return 0;
	}
	if (cl->npos == 1) {
		kl_errs_add(errs, "%s: unexpected argument", a);
		return -1;
	}
	cl->pos[cl->npos++] = a;
	return 0;
}

static int finish_cmd(struct cmdline *cl, struct kl_errs *errs)
{
	struct gr_opts *o = cl->o;

	if (o->replay != NULL) {
		if (cl->have_cmd) {
			kl_errs_add(errs, "--replay: cannot be combined with a command");
			return -1;
		}
		o->cmd = GR_CMD_REPLAY;
	}
	switch (o->cmd) {
	case GR_CMD_APPROVE:
	case GR_CMD_DENY: {
		const char *name = o->cmd == GR_CMD_APPROVE ? "approve-ip" : "deny-ip";
		char why[160];
		if (cl->npos != 1) {
			kl_errs_add(errs, "%s: needs an IP address", name);
			return -1;
		}
		if (kl_addr_parse(cl->pos[0], &o->ip, why, sizeof(why)) < 0) {
			kl_errs_add(errs, "%s %s: %s", name, cl->pos[0], why);
			return -1;
		}
		if (cl->port_set != cl->proto_set &&
		    !(cl->proto_set && o->proto != 6 && o->proto != 17)) {
			kl_errs_add(errs, "%s: --port and --proto go together (ICMP and other "
				    "protocols without ports take --proto alone)", name);
			return -1;
		}
		if (cl->port_set && o->port != 0 && o->proto != 6 && o->proto != 17) {
			kl_errs_add(errs, "--port: only TCP and UDP have ports");
			return -1;
		}
		o->one_edge = cl->proto_set;
		break;
	}
	case GR_CMD_BACKUP:
		if (cl->npos != 1 || cl->pos[0][0] == '\0') {
			kl_errs_add(errs, "backup: needs a destination FILE");
			return -1;
		}
		o->backup_to = cl->pos[0];
		break;
	default:
		if (cl->npos != 0) {
			kl_errs_add(errs, "%s: unexpected argument", cl->pos[0]);
			return -1;
		}
		break;
	}
	return 0;
}

/* ---- settings ---- */

/* The spec.graph keys kl-graphd applies; the rest of spec.graph
 * (enabled, freeze) is the decider's. */
static const char *const pdp_owned[] = { "graph.mode", "graph.store", "graph.promotion",
					 "graph.exclude", NULL };

static int64_t ms_of(int64_t ns)
{
	return ns / 1000000;
}

/* The views the rest of graphd reads. */
static void fill(struct gr_opts *o)
{
	const struct gr_cfg *c = &o->c;

	o->db = c->db;
	o->run_dir = c->run_dir;
	o->audit_dir = c->audit_dir;
	o->audit_key = c->audit_key;
	o->user = c->user;
	o->sensor_user = c->sensor_user;
	o->metrics_file = kl_knob_str_or_null(c->metrics_file);
	o->replay = kl_knob_str_or_null(c->replay);
	o->sensor_max_flows = (uint32_t)c->sensor_max_flows;
	gr_params_default(&o->p);
	o->p.mode = (enum gr_mode)c->mode;
	o->p.min_seen = (uint32_t)c->min_seen;
	o->p.min_windows = (uint32_t)c->min_windows;
	o->p.min_age_ms = ms_of(c->min_age);
	o->p.promote_every_ms = ms_of(c->promote_interval);
	o->p.window_ms = c->window > 0 ? ms_of(c->window) : o->p.promote_every_ms;
	o->p.expire_ttl_ms = ms_of(c->expire_ttl);
	o->p.exclude_broadcast = c->exclude_broadcast;
	o->p.exclude_loopback = c->exclude_loopback;
	o->p.exclude = c->exclude_cidrs.v;
	o->p.nexclude = c->exclude_cidrs.n;
	o->p.ephemeral_min = (uint32_t)c->ephemeral_min;
	o->p.deny_ttl_ms = ms_of(c->deny_ttl);
	o->p.viol_repeat_ms = ms_of(c->violation_every);
	o->p.suspect_hold_ms = ms_of(c->suspect_hold);
	o->p.eb.enabled = c->edge_baseline;
	o->p.eb.min_obs = (uint32_t)c->eb_min_obs;
	o->p.eb.alpha = c->eb_alpha;
	o->p.eb.factor = c->eb_factor;
	o->p.eb.min_pps = c->eb_min_pps;
	gr_push_params_default(&o->pp);
	o->pp.rule_ttl_ms = ms_of(c->rule_ttl);
	o->pp.max = (uint32_t)c->push_rate;
	int64_t busy = ms_of(c->busy_timeout);
	o->busy_ms = busy > 0 ? (int)busy : 1;
	o->summary_every = (uint64_t)c->summary_every;
	o->log_level = c->log_level;
}

int gr_opts_parse(int argc, char **argv, struct gr_opts *o, struct kl_errs *errs)
{
	struct kl_layer flags, file, pdp;
	struct cmdline cl = { .o = o };
	size_t before = errs->n;

	memset(o, 0, sizeof(*o));
	o->r.ks = &gr_knobs;
	o->r.v = &o->c;
	o->state = -1;
	o->since_ms = -1;
	int go = kl_cli_layer(&gr_knobs, argc, argv, &flags, &o->action, other_arg, &cl, errs);
	if (go <= 0)
		return go;
	kl_yaml_layer(&flags, "pdp-config", GR_PDP_DEFAULT, KL_L_PDP, pdp_owned, 0, &pdp, errs);
	kl_yaml_layer(&flags, "config", GR_CONFIG_DEFAULT, KL_L_FILE, NULL, 0, &file, errs);
	const struct kl_layer *order[] = { &flags, file.ks ? &file : NULL, pdp.ks ? &pdp : NULL };
	kl_resolve(&o->r, order, 3, errs);
	kl_layer_free(&flags);
	kl_layer_free(&file);
	kl_layer_free(&pdp);
	if (errs->n == before) {
		fill(o);
		finish_cmd(&cl, errs);
	}
	if (errs->n > before) {
		gr_opts_free(o);
		return -1;
	}
	return 0;
}

size_t gr_opts_apply(struct gr_opts *run, const struct gr_opts *fresh)
{
	size_t n = kl_reload_apply(&run->r, &fresh->r);

	fill(run);
	return n;
}

void gr_opts_print(const struct gr_opts *o, FILE *f)
{
	kl_config_print_table(&o->r, "# kl-graphd effective configuration\n"
				     "# precedence: flag > file (graphd.yaml) > pdp (spec.graph) > default\n",
			      f);
}

void gr_opts_free(struct gr_opts *o)
{
	kl_resolved_free(&o->r);
	memset(o, 0, sizeof(*o));
}
