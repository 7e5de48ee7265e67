/* SPDX-License-Identifier: MPL-2.0 */
/* kl-graphd's command line (see opts.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "graphd/opts.h"

#include "bpf/shield.h"
#include "ipc/enforce.h"

#define MS 1000000ull /* ns per ms */
#define DAY_MS (24ll * 3600 * 1000)

void gr_usage(FILE *f)
{
	fprintf(f,
		"usage: kl-graphd [--db FILE] [--run-dir DIR] [--user NAME] [options]\n"
		"       kl-graphd [--db FILE] --replay TRACE [--graph-mode MODE] [options]\n"
		"       kl-graphd [--db FILE] COMMAND [ARGS]\n"
		"The graph learner: records which source talks to which (port, protocol), promotes\n"
		"steady edges to learned, and once frozen turns the graph into zero-trust paths.\n"
		"Flow frames come from kl-sensor on RUN_DIR/graphd/flows.sock; frozen and approved edges go\n"
		"to kl-enforcer's edge allow map; violations go to kl-decider (RUN_DIR/decider/violations.sock).\n"
		"Started as root it opens the database and its sockets, then becomes --user with no\n"
		"capabilities.\n"
		"\n"
		"Options:\n"
		"  --db FILE                     SQLite graph (default %s)\n"
		"  --run-dir DIR                 root of the role socket directories (default %s)\n"
		"  --audit-dir DIR               audit trail (default " GR_AUDIT_DIR_DEFAULT "; empty: off)\n"
		"  --audit-key FILE|DIR          its Ed25519 key (default " GR_AUDIT_KEY_DEFAULT ")\n"
		"  --user NAME                   user to become when started as root (default %s)\n"
		"  --sensor-user NAME            who may send flow frames (default %s)\n"
		"  --sensor-max-flows N          the enforcer's map_sizes.flow: larger FLOWS frames\n"
		"                                are refused (default %u)\n"
		"  --graph-mode MODE             learn | frozen-observe | frozen-enforce (default learn)\n"
		"  --graph-min-seen N            ticks an edge must appear in (default 5)\n"
		"  --graph-min-windows N         distinct windows it must appear in (default 3)\n"
		"  --graph-min-age DUR           time since it was first seen (default 10m)\n"
		"  --graph-promote-interval DUR  how often promotion and expiry run (default 5m)\n"
		"  --graph-window DUR            length of a promotion window (default: the promote\n"
		"                                interval)\n"
		"  --graph-expire-ttl DUR        idle candidates/learned edges expire (default 720h;\n"
		"                                0 = never)\n"
		"  --graph-exclude-cidr CIDR     never learn from these sources (repeat, or a comma\n"
		"                                list); loopback, multicast and unspecified never are\n"
		"  --graph-ephemeral-min N       TCP/UDP ports >= N fold to port 0, as the data plane\n"
		"                                does (default 32768; 0 = no folding)\n"
		"  --graph-rule-ttl DUR          TTL of the edge rules pushed to the enforcer (default\n"
		"                                15m, refreshed at half-life)\n"
		"  --graph-deny-ttl DUR          frozen-enforce: edge deny of a violating path (default 1h)\n"
		"  --graph-violation-every DUR   one violation per edge per this long (default 1m)\n"
		"  --graph-suspect-hold DUR      a rate-limited or violating source stays excluded from\n"
		"                                learning this long (default 10m)\n"
		"  --graph-push-rate N           edge rules sent per second at most (default 2000)\n"
		"  --edge-baseline true|false    per-edge baselines: EWMA and peak of pps and bytes/s\n"
		"                                per edge; a deviation signals the decider (default\n"
		"                                true)\n"
		"  --edge-baseline-min-obs N     ticks an edge is observed before it can deviate\n"
		"                                (default 30)\n"
		"  --edge-baseline-alpha F       EWMA weight of a new tick (default 0.05)\n"
		"  --edge-baseline-factor F      deviation: pps or bytes/s above F x the learned peak\n"
		"                                (default 3.0); such ticks are never learned\n"
		"  --edge-baseline-min-pps F     ... and at least F pps (default 10)\n"
		"  --busy-timeout DUR            wait this long for a locked database (default 2s)\n"
		"  --summary-every N             ticks between TICK# log lines (default 10; 0 = never)\n"
		"  --metrics-file FILE           rewrite FILE every tick with Prometheus metrics\n"
		"                                (node_exporter textfile format)\n"
		"  --replay TRACE                replay a kl-sensor or JSON-lines trace (\"-\": stdin,\n"
		"                                JSON lines) and print each violation as a JSON line\n"
		"  --log-level LEVEL             debug, info, warn, error (default info)\n"
		"  --help\n"
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
		"Exit status: 0 ok, 1 failure, 2 usage error, 3 not found (approve/deny without edges).\n",
		GR_DB_DEFAULT, GR_RUN_DIR_DEFAULT, GR_USER_DEFAULT, GR_SENSOR_USER_DEFAULT,
		(unsigned)KL_FLOW_MAX_DEFAULT);
}

static int perr(char *err, size_t errlen, const char *flag, const char *arg, const char *why)
{
	if (arg != NULL)
		snprintf(err, errlen, "%s %s: %s", flag, arg, why);
	else
		snprintf(err, errlen, "%s: %s", flag, why);
	return -1;
}

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
		     char *err, size_t errlen)
{
	char *end;
	unsigned long long v;
	char why[96];

	if (s[0] < '0' || s[0] > '9')
		return perr(err, errlen, flag, s, "not a non-negative integer");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return perr(err, errlen, flag, s, "not a non-negative integer");
	if (v < lo || v > hi) {
		snprintf(why, sizeof(why), "out of range %llu..%llu", (unsigned long long)lo,
			 (unsigned long long)hi);
		return perr(err, errlen, flag, s, why);
	}
	*out = v;
	return 0;
}

static int parse_float(const char *flag, const char *s, double lo, double hi, double *out,
		       char *err, size_t errlen)
{
	char *end, why[96];

	errno = 0;
	double v = strtod(s, &end);
	if (s[0] == '\0' || errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) {
		snprintf(why, sizeof(why), "want a number in %g..%g", lo, hi);
		return perr(err, errlen, flag, s, why);
	}
	*out = v;
	return 0;
}

static int parse_dur_ms(const char *flag, const char *s, int64_t lo_ms, int64_t hi_ms,
			int64_t *out, char *err, size_t errlen)
{
	uint64_t ns;
	char why[160], a[32], b[32];

	if (kl_duration_parse(s, &ns, why, sizeof(why)) < 0)
		return perr(err, errlen, flag, s, why);
	if (ns % MS != 0)
		return perr(err, errlen, flag, s, "finer than a millisecond");
	int64_t ms = (int64_t)(ns / MS);
	if (ms < lo_ms || ms > hi_ms) {
		snprintf(why, sizeof(why), "out of range %s..%s",
			 kl_duration_format((uint64_t)lo_ms * MS, a, sizeof(a)),
			 kl_duration_format((uint64_t)hi_ms * MS, b, sizeof(b)));
		return perr(err, errlen, flag, s, why);
	}
	*out = ms;
	return 0;
}

static int add_cidrs(struct gr_opts *o, const char *flag, const char *list, char *err,
		     size_t errlen)
{
	char *copy = strdup(list), *save = NULL;

	if (copy == NULL)
		return perr(err, errlen, flag, list, "out of memory");
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct kl_addr a;
		char why[160];
		if (kl_cidr_parse(tok, &a, why, sizeof(why)) < 0) {
			perr(err, errlen, flag, tok, why);
			free(copy);
			return -1;
		}
		struct kl_addr *n = realloc(o->exclude, (o->nexclude + 1) * sizeof(*n));
		if (n == NULL) {
			free(copy);
			return perr(err, errlen, flag, list, "out of memory");
		}
		o->exclude = n;
		o->exclude[o->nexclude++] = a;
	}
	free(copy);
	if (o->nexclude == 0)
		return perr(err, errlen, flag, list, "no CIDR given");
	return 0;
}

static const struct {
	const char *name;
	enum gr_cmd cmd;
} cmds[] = {
	{ "export", GR_CMD_EXPORT },	   { "freeze", GR_CMD_FREEZE },
	{ "approve-ip", GR_CMD_APPROVE },  { "deny-ip", GR_CMD_DENY },
	{ "violations", GR_CMD_VIOLATIONS }, { "backup", GR_CMD_BACKUP },
};

/* Flags that take a value. */
static const char *const valued[] = {
	"--db", "--run-dir", "--audit-dir", "--audit-key", "--user", "--sensor-user", "--sensor-max-flows", "--graph-mode", "--graph-min-seen",
	"--graph-min-windows", "--graph-min-age", "--graph-promote-interval", "--graph-window",
	"--graph-expire-ttl", "--graph-exclude-cidr", "--graph-ephemeral-min", "--graph-rule-ttl",
	"--graph-deny-ttl", "--graph-violation-every", "--graph-suspect-hold", "--graph-push-rate",
	"--busy-timeout", "--summary-every", "--metrics-file", "--replay", "--log-level", "--state", "--format",
	"--port", "--proto", "--since", "--limit", "--edge-baseline", "--edge-baseline-min-obs",
	"--edge-baseline-alpha", "--edge-baseline-factor", "--edge-baseline-min-pps", NULL
};

static bool takes_value(const char *flag)
{
	for (size_t i = 0; valued[i] != NULL; i++)
		if (strcmp(valued[i], flag) == 0)
			return true;
	return false;
}

/* Flags that belong to one command only. */
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
	if (strcmp(f, "--since") == 0 || strcmp(f, "--limit") == 0)
		return c == GR_CMD_VIOLATIONS;
	return true;
}

static int one_flag(struct gr_opts *o, const char *f, const char *v, bool *window_set,
		    bool *port_set, bool *proto_set, char *err, size_t errlen)
{
	uint64_t u;
	int64_t ms;

	if (strcmp(f, "--db") == 0) {
		if (v[0] == '\0')
			return perr(err, errlen, f, NULL, "empty path");
		o->db = v;
	} else if (strcmp(f, "--run-dir") == 0) {
		if (v[0] == '\0')
			return perr(err, errlen, f, NULL, "empty path");
		o->run_dir = v;
	} else if (strcmp(f, "--audit-dir") == 0) {
		o->audit_dir = v;
	} else if (strcmp(f, "--audit-key") == 0) {
		if (v[0] == '\0')
			return perr(err, errlen, f, NULL, "empty path");
		o->audit_key = v;
	} else if (strcmp(f, "--metrics-file") == 0) {
		if (v[0] == '\0')
			return perr(err, errlen, f, NULL, "empty path");
		o->metrics_file = v;
	} else if (strcmp(f, "--user") == 0) {
		o->user = v;
	} else if (strcmp(f, "--sensor-user") == 0) {
		o->sensor_user = v;
	} else if (strcmp(f, "--sensor-max-flows") == 0) {
		if (parse_u64(f, v, 1, 1u << 24, &u, err, errlen) < 0)
			return -1;
		o->sensor_max_flows = (uint32_t)u;
	} else if (strcmp(f, "--replay") == 0) {
		o->replay = v;
	} else if (strcmp(f, "--graph-mode") == 0) {
		int m = gr_mode_parse(v);
		if (m < 0)
			return perr(err, errlen, f, v, "want learn, frozen-observe or frozen-enforce");
		o->p.mode = (enum gr_mode)m;
	} else if (strcmp(f, "--graph-min-seen") == 0) {
		if (parse_u64(f, v, 1, 1000000000, &u, err, errlen) < 0)
			return -1;
		o->p.min_seen = (uint32_t)u;
	} else if (strcmp(f, "--edge-baseline") == 0) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return perr(err, errlen, f, v, "want true or false");
		o->p.eb.enabled = strcmp(v, "true") == 0;
	} else if (strcmp(f, "--edge-baseline-min-obs") == 0) {
		if (parse_u64(f, v, 1, 1000000000, &u, err, errlen) < 0)
			return -1;
		o->p.eb.min_obs = (uint32_t)u;
	} else if (strcmp(f, "--edge-baseline-alpha") == 0) {
		return parse_float(f, v, 1e-6, 1, &o->p.eb.alpha, err, errlen);
	} else if (strcmp(f, "--edge-baseline-factor") == 0) {
		return parse_float(f, v, 1, 1e6, &o->p.eb.factor, err, errlen);
	} else if (strcmp(f, "--edge-baseline-min-pps") == 0) {
		return parse_float(f, v, 0, 1e12, &o->p.eb.min_pps, err, errlen);
	} else if (strcmp(f, "--graph-min-windows") == 0) {
		if (parse_u64(f, v, 1, 1000000, &u, err, errlen) < 0)
			return -1;
		o->p.min_windows = (uint32_t)u;
	} else if (strcmp(f, "--graph-min-age") == 0) {
		return parse_dur_ms(f, v, 0, 365 * DAY_MS, &o->p.min_age_ms, err, errlen);
	} else if (strcmp(f, "--graph-promote-interval") == 0) {
		return parse_dur_ms(f, v, 1, 30 * DAY_MS, &o->p.promote_every_ms, err, errlen);
	} else if (strcmp(f, "--graph-window") == 0) {
		*window_set = true;
		return parse_dur_ms(f, v, 1, 365 * DAY_MS, &o->p.window_ms, err, errlen);
	} else if (strcmp(f, "--graph-expire-ttl") == 0) {
		return parse_dur_ms(f, v, 0, 3650 * DAY_MS, &o->p.expire_ttl_ms, err, errlen);
	} else if (strcmp(f, "--graph-exclude-cidr") == 0) {
		return add_cidrs(o, f, v, err, errlen);
	} else if (strcmp(f, "--graph-ephemeral-min") == 0) {
		if (parse_u64(f, v, 0, 65535, &u, err, errlen) < 0)
			return -1;
		o->p.ephemeral_min = (uint32_t)u;
	} else if (strcmp(f, "--graph-rule-ttl") == 0) {
		return parse_dur_ms(f, v, (int64_t)KL_EDGE_TTL_MIN_MS * 2, (int64_t)KL_EDGE_TTL_MAX_MS,
				    &o->pp.rule_ttl_ms, err, errlen);
	} else if (strcmp(f, "--graph-deny-ttl") == 0) {
		return parse_dur_ms(f, v, (int64_t)KL_EDGE_TTL_MIN_MS, (int64_t)KL_EDGE_TTL_MAX_MS,
				    &o->p.deny_ttl_ms, err, errlen);
	} else if (strcmp(f, "--graph-violation-every") == 0) {
		return parse_dur_ms(f, v, 0, 30 * DAY_MS, &o->p.viol_repeat_ms, err, errlen);
	} else if (strcmp(f, "--graph-suspect-hold") == 0) {
		return parse_dur_ms(f, v, 0, 30 * DAY_MS, &o->p.suspect_hold_ms, err, errlen);
	} else if (strcmp(f, "--graph-push-rate") == 0) {
		if (parse_u64(f, v, 2, KL_EDGE_RULES_MAX, &u, err, errlen) < 0)
			return -1;
		o->pp.max = (uint32_t)u;
	} else if (strcmp(f, "--busy-timeout") == 0) {
		if (parse_dur_ms(f, v, 0, 600000, &ms, err, errlen) < 0)
			return -1;
		o->busy_ms = ms > 0 ? (int)ms : 1;
	} else if (strcmp(f, "--summary-every") == 0) {
		return parse_u64(f, v, 0, 1000000000, &o->summary_every, err, errlen);
	} else if (strcmp(f, "--log-level") == 0) {
		int l = kl_log_level_parse(v);
		if (l < 0)
			return perr(err, errlen, f, v, "want debug, info, warn or error");
		o->log_level = l;
	} else if (strcmp(f, "--state") == 0) {
		int s = gr_state_parse(v);
		if (s < 0)
			return perr(err, errlen, f, v, "want candidate, learned, frozen, approved, "
				    "denied or expired");
		o->state = s;
	} else if (strcmp(f, "--format") == 0) {
		if (strcmp(v, "json") == 0)
			o->json = true;
		else if (strcmp(v, "table") == 0)
			o->json = false;
		else
			return perr(err, errlen, f, v, "want table or json");
	} else if (strcmp(f, "--port") == 0) {
		if (parse_u64(f, v, 0, 65535, &u, err, errlen) < 0)
			return -1;
		o->port = (uint16_t)u;
		*port_set = true;
	} else if (strcmp(f, "--proto") == 0) {
		int p = kl_proto_parse(v);
		if (p < 0)
			return perr(err, errlen, f, v, "want tcp, udp, icmp, icmpv6 or 0..255");
		o->proto = (uint8_t)p;
		*proto_set = true;
	} else if (strcmp(f, "--since") == 0) {
		return parse_dur_ms(f, v, 0, 3650 * DAY_MS, &o->since_ms, err, errlen);
	} else if (strcmp(f, "--limit") == 0) {
		return parse_u64(f, v, 0, 100000000, &o->limit, err, errlen);
	} else {
		return perr(err, errlen, f, NULL, "unknown option (see --help)");
	}
	return 0;
}

int gr_opts_parse(int argc, char **argv, struct gr_opts *o, char *err, size_t errlen)
{
	bool window_set = false, port_set = false, proto_set = false, have_cmd = false;
	size_t npos = 0;
	const char *pos[2] = { NULL, NULL };

	memset(o, 0, sizeof(*o));
	o->db = GR_DB_DEFAULT;
	o->run_dir = GR_RUN_DIR_DEFAULT;
	o->audit_dir = GR_AUDIT_DIR_DEFAULT;
	o->audit_key = GR_AUDIT_KEY_DEFAULT;
	o->user = GR_USER_DEFAULT;
	o->sensor_user = GR_SENSOR_USER_DEFAULT;
	o->sensor_max_flows = KL_FLOW_MAX_DEFAULT;
	o->log_level = KL_LOG_INFO;
	o->summary_every = 10;
	o->state = -1;
	o->since_ms = -1;
	gr_params_default(&o->p);
	gr_push_params_default(&o->pp);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			o->help = true;
			continue;
		}
		if (strcmp(a, "--") == 0)
			return perr(err, errlen, a, NULL, "unexpected");
		if (strncmp(a, "--", 2) == 0) {
			char flag[64];
			const char *eq = strchr(a, '='), *v = NULL;
			size_t fl = eq ? (size_t)(eq - a) : strlen(a);
			if (fl >= sizeof(flag))
				return perr(err, errlen, a, NULL, "unknown option (see --help)");
			memcpy(flag, a, fl);
			flag[fl] = '\0';
			if (have_cmd && !cmd_flag_ok(o->cmd, flag))
				return perr(err, errlen, flag, NULL, "not an option of this command");
			if (!have_cmd && (strcmp(flag, "--dry-run") == 0 || strcmp(flag, "--state") == 0 ||
					  strcmp(flag, "--format") == 0 || strcmp(flag, "--port") == 0 ||
					  strcmp(flag, "--proto") == 0 || strcmp(flag, "--since") == 0 ||
					  strcmp(flag, "--limit") == 0))
				return perr(err, errlen, flag, NULL, "belongs after a command (see --help)");
			if (strcmp(flag, "--dry-run") == 0) {
				if (eq != NULL)
					return perr(err, errlen, flag, NULL, "takes no value");
				o->dry_run = true;
				continue;
			}
			if (!takes_value(flag))
				return perr(err, errlen, flag, NULL, "unknown option (see --help)");
			if (eq != NULL)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return perr(err, errlen, flag, NULL, "needs a value");
			if (one_flag(o, flag, v, &window_set, &port_set, &proto_set, err, errlen) < 0)
				return -1;
			continue;
		}
		if (!have_cmd) {
			size_t k;
			for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
				if (strcmp(a, cmds[k].name) == 0)
					break;
			if (k == sizeof(cmds) / sizeof(cmds[0]))
				return perr(err, errlen, a, NULL, "unknown command (export, freeze, "
					    "approve-ip, deny-ip, violations, backup)");
			o->cmd = cmds[k].cmd;
			have_cmd = true;
			continue;
		}
		if (npos == 1)
			return perr(err, errlen, a, NULL, "unexpected argument");
		pos[npos++] = a;
	}
	if (o->help)
		return 0;
	if (!window_set)
		o->p.window_ms = o->p.promote_every_ms;
	o->p.exclude = o->exclude;
	o->p.nexclude = o->nexclude;
	if (o->replay != NULL) {
		if (have_cmd)
			return perr(err, errlen, "--replay", NULL, "cannot be combined with a command");
		o->cmd = GR_CMD_REPLAY;
	}
	switch (o->cmd) {
	case GR_CMD_APPROVE:
	case GR_CMD_DENY: {
		const char *name = o->cmd == GR_CMD_APPROVE ? "approve-ip" : "deny-ip";
		char why[160];
		if (npos != 1)
			return perr(err, errlen, name, NULL, "needs an IP address");
		if (kl_addr_parse(pos[0], &o->ip, why, sizeof(why)) < 0)
			return perr(err, errlen, name, pos[0], why);
		if (port_set != proto_set && !(proto_set && o->proto != 6 && o->proto != 17))
			return perr(err, errlen, name, NULL, "--port and --proto go together (ICMP and "
				    "other protocols without ports take --proto alone)");
		if (port_set && o->port != 0 && o->proto != 6 && o->proto != 17)
			return perr(err, errlen, "--port", NULL, "only TCP and UDP have ports");
		o->one_edge = proto_set;
		break;
	}
	case GR_CMD_BACKUP:
		if (npos != 1 || pos[0][0] == '\0')
			return perr(err, errlen, "backup", NULL, "needs a destination FILE");
		o->backup_to = pos[0];
		break;
	default:
		if (npos != 0)
			return perr(err, errlen, pos[0], NULL, "unexpected argument");
		break;
	}
	return 0;
}

void gr_opts_free(struct gr_opts *o)
{
	free(o->exclude);
	o->exclude = NULL;
	o->nexclude = 0;
}
