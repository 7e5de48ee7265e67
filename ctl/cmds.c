/* SPDX-License-Identifier: MPL-2.0 */
/* klctl command table, strict argument parsing and result printers. */
#include "ctl/cmds.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bpf/shield.h"
#include "common/addr.h"
#include "common/duration.h"
#include "common/err.h"
#include "common/man.h"
#include "sandbox/rundir.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RUN_DIR "/run/kernloom"

const char *ctl_daemon_name(enum ctl_daemon d)
{
	switch (d) {
	case CTL_D_ENFORCER: return "kl-enforcer";
	case CTL_D_DECIDER: return "kl-decider";
	case CTL_D_GRAPHD: return "kl-graphd";
	default: return "?";
	}
}

enum kl_role ctl_daemon_role(enum ctl_daemon d)
{
	switch (d) {
	case CTL_D_ENFORCER: return KL_ROLE_ENFORCER;
	case CTL_D_DECIDER: return KL_ROLE_DECIDER;
	case CTL_D_GRAPHD: return KL_ROLE_GRAPHD;
	default: return KL_ROLE_NONE;
	}
}

enum ctl_daemon ctl_cmd_daemon(const struct ctl_cmd *c)
{
	switch (kl_ctl_cmd_role(c->cmd)) {
	case KL_ROLE_DECIDER: return CTL_D_DECIDER;
	case KL_ROLE_GRAPHD: return CTL_D_GRAPHD;
	default: return CTL_D_ENFORCER;
	}
}

const char *ctl_daemon_socket(enum ctl_daemon d)
{
	switch (d) {
	case CTL_D_ENFORCER: return "enforcer.sock";
	case CTL_D_DECIDER: return "decider.sock";
	case CTL_D_GRAPHD: return "graphd.sock";
	default: return "?";
	}
}

/* ---- printers ---- */

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static const char *expires_text(json_t *o, char *buf, size_t len)
{
	json_t *e = json_object_get(o, "expires_in_ms");
	if (!e || json_is_null(e))
		return "never";
	char d[48];
	uint64_t ms = (uint64_t)json_integer_value(e);
	/* whole seconds are what an operator reads; keep ms below 10 s */
	if (ms >= 10000)
		ms -= ms % 1000;
	snprintf(buf, len, "in %s", kl_duration_format(ms * KL_NS_PER_MS, d, sizeof(d)));
	return buf;
}

static void print_footer(json_t *doc, FILE *out, const char *what)
{
	json_t *arr = json_object_get(doc, "entries");
	size_t shown = json_array_size(arr);
	json_int_t total = jint(doc, "total");
	if (json_is_true(json_object_get(doc, "truncated")))
		fprintf(out, "(%zu of %lld %s shown; use --count to see more)\n", shown,
			(long long)total, what);
	else
		fprintf(out, "(%lld %s)\n", (long long)total, what);
}

void ctl_print_stats(json_t *doc, const char *text, FILE *out)
{
	static const char *const keys[] = { "pkts",	"bytes",     "pass",	  "drop_allow",
					    "drop_deny", "drop_rl",  "drop_edge", "malformed",
					    "non_ip", "new_sources", "drop_new_sources" };
	if (!json_is_object(doc)) {
		fprintf(out, "%s\n", text);
		return;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		fprintf(out, "%s%s=%lld", i ? " " : "", keys[i], (long long)jint(doc, keys[i]));
	fputc('\n', out);
}

static void print_top(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	(void)text;
	fprintf(out, "%-39s %10s %12s %8s %10s %8s %8s %8s %8s %6s %6s %6s\n", "SOURCE", "PKTS",
		"BYTES", "SYN", "PASS", "D_ALLOW", "D_DENY", "D_RL", "D_EDGE", "PORTS", "FIRST", "LAST");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%-39s %10lld %12lld %8lld %10lld %8lld %8lld %8lld %8lld %6lld %5llds %5llds\n",
			jstr(e, "ip"), (long long)jint(e, "pkts"), (long long)jint(e, "bytes"),
			(long long)jint(e, "syn"), (long long)jint(e, "pass"),
			(long long)jint(e, "drop_allow"), (long long)jint(e, "drop_deny"),
			(long long)jint(e, "drop_rl"), (long long)jint(e, "drop_edge"),
			(long long)jint(e, "ports"), (long long)jint(e, "first_seen"),
			(long long)jint(e, "last_seen"));
	}
	fprintf(out, "(top %zu of %lld sources by %s)\n", json_array_size(arr),
		(long long)jint(doc, "total"), jstr(doc, "by"));
}

static void print_events(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	(void)text;
	fprintf(out, "%9s %-39s %-10s %-6s %5s %5s\n", "AGE", "SOURCE", "KIND", "PROTO", "DPORT",
		"LEN");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%8.1fs %-39s %-10s %-6s %5lld %5lld\n",
			(double)jint(e, "age_ms") / 1000.0, jstr(e, "ip"), jstr(e, "kind"),
			jstr(e, "proto"), (long long)jint(e, "dport"), (long long)jint(e, "len"));
	}
	fprintf(out, "(%zu events shown, %lld received since kl-enforcer started)\n",
		json_array_size(arr), (long long)jint(doc, "total"));
}

static void print_allow(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	(void)text;
	fprintf(out, "%-43s %s\n", "CIDR", "ORIGIN");
	json_array_foreach(arr, i, e) fprintf(out, "%-43s %s\n", jstr(e, "ip"), jstr(e, "origin"));
	print_footer(doc, out, "allow entries");
}

static void print_whitelist(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	char b[64];
	(void)text;
	fprintf(out, "%-43s %-8s %-14s %-20s %s\n", "CIDR", "ORIGIN", "EXPIRES", "UNTIL", "NOTES");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%-43s %-8s %-14s %-20s %s\n", jstr(e, "target"), jstr(e, "origin"),
			expires_text(e, b, sizeof(b)), jstr(e, "until"), jstr(e, "notes"));
	}
	print_footer(doc, out, "whitelist entries");
}

static void print_deny(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	char b[64];
	(void)text;
	fprintf(out, "%-43s %-5s %-14s %s\n", "ADDRESS", "KIND", "EXPIRES", "ORIGIN");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%-43s %-5s %-14s %s\n", jstr(e, "ip"), jstr(e, "kind"),
			expires_text(e, b, sizeof(b)), jstr(e, "origin"));
	}
	print_footer(doc, out, "deny entries");
}

static void print_rl(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e, *g = json_object_get(doc, "global");
	size_t i;
	char b[64];
	(void)text;
	if (json_is_object(g))
		fprintf(out, "global default: %lld pps, burst %lld\n", (long long)jint(g, "rate"),
			(long long)jint(g, "burst"));
	else
		fprintf(out, "global default: off\n");
	fprintf(out, "%-39s %10s %10s %-14s %s\n", "ADDRESS", "RATE", "BURST", "EXPIRES", "ORIGIN");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%-39s %10lld %10lld %-14s %s\n", jstr(e, "ip"), (long long)jint(e, "rate"),
			(long long)jint(e, "burst"), expires_text(e, b, sizeof(b)), jstr(e, "origin"));
	}
	print_footer(doc, out, "rate-limit overrides");
}

static void print_edge(json_t *doc, const char *text, FILE *out)
{
	json_t *arr = json_object_get(doc, "entries"), *e;
	size_t i;
	char b[64];
	(void)text;
	fprintf(out, "tuple enforcement: %s\n", jstr(doc, "edge_mode"));
	fprintf(out, "%-5s %-39s %5s %-6s %-14s %s\n", "KIND", "SOURCE", "PORT", "PROTO", "EXPIRES",
		"ORIGIN");
	json_array_foreach(arr, i, e)
	{
		fprintf(out, "%-5s %-39s %5lld %-6s %-14s %s\n", jstr(e, "kind"), jstr(e, "ip"),
			(long long)jint(e, "port"), jstr(e, "proto"), expires_text(e, b, sizeof(b)),
			jstr(e, "origin"));
	}
	print_footer(doc, out, "edge rules");
}

static void print_status(json_t *doc, const char *text, FILE *out)
{
	json_t *e, *ifs = json_object_get(doc, "interfaces"), *rl = json_object_get(doc, "rl");
	size_t i;
	const char *k;
	(void)text;
	fprintf(out, "program:        id %lld, features %s\n", (long long)jint(doc, "prog_id"),
		jstr(doc, "features"));
	fprintf(out, "object:         %s\n", jstr(doc, "obj"));
	fprintf(out, "pins:           %s\n", jstr(doc, "pin_dir"));
	if (json_array_size(ifs) == 0)
		fprintf(out, "interfaces:     none attached\n");
	json_array_foreach(ifs, i, e)
	{
		fprintf(out, "interface:      %s (ifindex %lld) %s, prog %lld, link %lld%s\n",
			jstr(e, "name"), (long long)jint(e, "ifindex"), jstr(e, "mode"),
			(long long)jint(e, "prog_id"), (long long)jint(e, "link_id"),
			json_is_true(json_object_get(e, "ours")) ? "" : " (NOT the shield!)");
	}
	fprintf(out, "enforce-allow:  %s\n",
		json_is_true(json_object_get(doc, "allow_enforce")) ? "on" : "off");
	fprintf(out, "tuple-enforce:  %s\n", jstr(doc, "edge_mode"));
	if (json_is_object(rl))
		fprintf(out, "global rl:      %lld pps, burst %lld\n", (long long)jint(rl, "rate"),
			(long long)jint(rl, "burst"));
	else
		fprintf(out, "global rl:      off\n");
	json_t *ns = json_object_get(doc, "new_sources"), *lim = json_object_get(ns, "limit");
	if (json_is_object(ns)) {
		fprintf(out, "new sources:    %lld packets not admitted, %lld dropped by the limit; "
			     "admission %s; limit ",
			(long long)jint(ns, "total"), (long long)jint(ns, "dropped"),
			json_is_true(json_object_get(ns, "admission")) ? "on" : "off");
		if (json_is_object(lim))
			fprintf(out, "%lld pps, burst %lld\n", (long long)jint(lim, "rate"),
				(long long)jint(lim, "burst"));
		else
			fprintf(out, "off\n");
	}
	fprintf(out, "sampling mask:  %lld\n", (long long)jint(doc, "sample_mask"));
	fprintf(out, "ephemeral_min:  %lld\n", (long long)jint(doc, "ephemeral_min"));
	fprintf(out, "policy_gen:     %lld\n", (long long)jint(doc, "policy_gen"));
	json_t *prot = json_object_get(doc, "protected");
	fprintf(out, "protected:     ");
	if (json_array_size(prot) == 0)
		fprintf(out, " none");
	json_array_foreach(prot, i, e) fprintf(out, " %s", json_string_value(e));
	fputc('\n', out);
	json_t *links = json_object_get(doc, "links");
	if (json_is_object(links)) {
		fprintf(out, "links:\n");
		json_object_foreach(links, k, e)
		{
			if (!json_is_object(e))
				continue;
			json_t *uid = json_object_get(e, "uid");
			char who[96];
			if (json_is_integer(uid))
				snprintf(who, sizeof(who), "%s (uid %lld)", jstr(e, "user"),
					 (long long)json_integer_value(uid));
			else
				snprintf(who, sizeof(who), "%s (no such user: root only)",
					 jstr(e, "user"));
			fprintf(out,
				"  %-8s %s, user %s\n"
				"           entries %lld of max %lld, quota %lld/s; batches %lld, "
				"applied %lld, refused %lld, released %lld\n",
				k, jstr(e, "socket"), who, (long long)jint(e, "entries"),
				(long long)jint(e, "max"), (long long)jint(e, "rate"),
				(long long)jint(e, "batches"), (long long)jint(e, "applied"),
				(long long)jint(e, "refused"), (long long)jint(e, "released"));
		}
		if (json_is_integer(json_object_get(links, "operator_entries")))
			fprintf(out, "  operator entries %lld\n",
				(long long)jint(links, "operator_entries"));
	}
	json_t *maps = json_object_get(doc, "maps");
	fprintf(out, "maps:\n");
	json_object_foreach(maps, k, e)
	{
		json_t *n = json_object_get(e, "entries");
		if (json_is_null(n))
			fprintf(out, "  %-28s %10s / %lld\n", k, "-", (long long)jint(e, "max_entries"));
		else
			fprintf(out, "  %-28s %10lld / %lld\n", k, (long long)json_integer_value(n),
				(long long)jint(e, "max_entries"));
	}
}

/* "12.5" for a number, "-" for null (never in that level / no TTL). */
static const char *secs_text(json_t *v, char *buf, size_t len)
{
	if (!json_is_number(v))
		return "-";
	double s = json_number_value(v);
	if (s >= 100)
		snprintf(buf, len, "%.0fs", s);
	else
		snprintf(buf, len, "%.1fs", s);
	return buf;
}

void ctl_print_sources(json_t *doc, const char *text, FILE *out)
{
	json_t *e;
	size_t i;
	char a[32], b[32];

	if (!json_is_array(doc)) {
		fprintf(out, "%s\n", text);
		return;
	}
	fprintf(out, "%-39s %-9s %7s %8s %10s %9s %8s %9s %9s %9s\n", "SOURCE", "LEVEL", "STRIKES",
		"SEV", "PPS", "SYN", "SCAN", "DROPRL", "IN_LEVEL", "TTL_LEFT");
	json_array_foreach(doc, i, e)
	{
		fprintf(out, "%-39s %-9s %7lld %8.2f %10.1f %9.1f %8.1f %9.1f %9s %9s\n",
			jstr(e, "ip"), jstr(e, "level"), (long long)jint(e, "strikes"),
			json_number_value(json_object_get(e, "severity")),
			json_number_value(json_object_get(e, "pps")),
			json_number_value(json_object_get(e, "syn")),
			json_number_value(json_object_get(e, "scan")),
			json_number_value(json_object_get(e, "droprl")),
			secs_text(json_object_get(e, "in_level_s"), a, sizeof(a)),
			secs_text(json_object_get(e, "ttl_left_s"), b, sizeof(b)));
	}
	fprintf(out, "(%s)\n", text && text[0] ? text : "sources");
}

static double jnum(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* "3d4h", "47m": an operator reads hours and days, not seconds. */
static const char *dur_text(double s, char *buf, size_t len)
{
	char d[48];
	uint64_t ms = s > 0 ? (uint64_t)(s * 1000.0) : 0;

	if (ms >= 60000)
		ms -= ms % 1000;
	snprintf(buf, len, "%s", kl_duration_format(ms * KL_NS_PER_MS, d, sizeof(d)));
	return buf;
}

static void print_tune_feat(json_t *doc, const char *what, FILE *out)
{
	static const char *const feats[] = { "pps", "syn", "scan", "bps" };

	fprintf(out, "%-9s", what);
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_object_get(doc, feats[i]);
		if (v != NULL)
			fprintf(out, " %s=%.1f", feats[i], json_number_value(v));
	}
	fputc('\n', out);
}

void ctl_print_tune(json_t *doc, const char *text, FILE *out)
{
	json_t *b = json_object_get(doc, "bootstrap"), *nt = json_object_get(doc, "next_tune");
	json_t *sm = json_object_get(doc, "samples"), *tk = json_object_get(doc, "ticks");
	json_t *last = json_object_get(doc, "last");
	char a[48], c[48], e[48], f[48], g[48];

	if (!json_is_object(doc) || !json_is_object(b)) {
		fprintf(out, "%s\n", text);
		return;
	}
	fprintf(out, "phase     %s (k=%.2f)%s\n", jstr(doc, "phase"), jnum(doc, "k"),
		json_is_true(json_object_get(b, "enabled")) ? "" : ", bootstrap off");
	fprintf(out, "age       %s since start, %s clean observed (phases end at %s / %s / %s)\n",
		dur_text(jnum(b, "age_s"), a, sizeof(a)), dur_text(jnum(b, "observed_s"), c, sizeof(c)),
		dur_text(jnum(b, "phase1_end_s"), e, sizeof(e)),
		dur_text(jnum(b, "phase2_end_s"), f, sizeof(f)),
		dur_text(jnum(b, "window_s"), g, sizeof(g)));
	fprintf(out, "next tune in %s of clean traffic (at %s observed, phase %s)\n",
		dur_text(jnum(nt, "in_s"), a, sizeof(a)), dur_text(jnum(nt, "observed_s"), c, sizeof(c)),
		jstr(nt, "phase"));
	fprintf(out, "samples   %lld of %lld slots (need %lld), %lld offered\n",
		(long long)jint(sm, "n"), (long long)jint(sm, "cap"), (long long)jint(sm, "min"),
		(long long)jint(sm, "seen"));
	fprintf(out, "ticks     clean=%lld block=%lld sev_frac=%lld drop_ratio=%lld\n",
		(long long)jint(tk, "clean"), (long long)jint(tk, "block"),
		(long long)jint(tk, "sev_frac"), (long long)jint(tk, "drop_ratio"));
	print_tune_feat(json_object_get(doc, "trig"), "triggers", out);
	print_tune_feat(json_object_get(doc, "floors"), "floors", out);
	if (!json_is_object(last)) {
		fprintf(out, "last      none yet (%lld results kept)\n", (long long)jint(doc, "history"));
		return;
	}
	bool applied = json_is_true(json_object_get(last, "applied"));
	fprintf(out, "last      %s at %s observed, phase %s, k=%.2f, samples=%lld%s%s\n",
		applied ? "applied" : "skipped", dur_text(jnum(last, "observed_s"), a, sizeof(a)),
		jstr(last, "phase"), jnum(last, "k"), (long long)jint(last, "samples"),
		applied ? "" : ": ", applied ? "" : jstr(last, "reason"));
	static const char *const feats[] = { "pps", "syn", "scan", "bps" };
	for (size_t i = 0; i < 4 && applied; i++) {
		json_t *r = json_object_get(last, feats[i]);
		if (!json_is_object(r))
			continue;
		fprintf(out, "  %-5s median=%.1f mad=%.1f target=%.1f %.1f->%.1f\n", feats[i],
			jnum(r, "median"), jnum(r, "mad"), jnum(r, "target"), jnum(r, "from"),
			jnum(r, "to"));
	}
}

/* ---- the table ---- */

#define POS(n, f) { n, NULL, f, true }
#define OPTPOS(n, f) { n, NULL, f, false }
#define FLAG(n, f) { n, NULL, f, false }
#define REQFLAG(n, f) { n, NULL, f, true }

const struct ctl_cmd ctl_cmds[] = {
	{ { "status", "enforcer" }, NULL, KL_CTL_STATUS, { { 0 } }, "",
	  "the shield in detail: attached interfaces, features, runtime config, links and map "
	  "fill (`klctl status` shows every daemon)",
	  "klctl status enforcer", print_status, 0, false },
	{ { "stats", NULL }, NULL, KL_CTL_STATS, { { 0 } }, "",
	  "global packet and drop counters (summed over CPUs)", "klctl stats", ctl_print_stats, 0,
	  false },
	{ { "top-src", NULL }, NULL, KL_CTL_TOP_SRC,
	  { FLAG("-n", F_COUNT), { "--by", "-by", F_TOPBY, false } },
	  "[-n N] [--by pkts|bytes|drops|droprl]",
	  "the busiest sources (default 10, by pkts; -by also works)",
	  "klctl top-src -n 20 --by drops", print_top, 10, false },
	{ { "events", NULL }, NULL, KL_CTL_EVENTS, { FLAG("--count", F_COUNT) },
	  "[--count N] [--follow]",
	  "the last sampled events (drop reasons, scan hints; default 100); --follow streams "
	  "new ones until Ctrl+C",
	  "klctl events --count 50", print_events, 100, false },
	{ { "attach", NULL }, NULL, KL_CTL_ATTACH,
	  { POS("IF", F_IFNAME), FLAG("--force", F_FORCE), FLAG("--mode", F_XDPMODE) },
	  "IF [--force] [--mode native|generic|auto]",
	  "attach the shield to IF (idempotent; --force replaces another XDP program)",
	  "klctl attach eth0 --mode native", NULL, 0, false },
	{ { "detach", NULL }, NULL, KL_CTL_DETACH, { POS("IF", F_IFNAME) }, "IF",
	  "detach the shield from IF (maps and counters stay pinned)", "klctl detach eth0", NULL, 0,
	  false },
	{ { "allow", "add" }, NULL, KL_CTL_ALLOW_ADD, { POS("CIDR", F_ADDR_CIDR) }, "CIDR",
	  "add an address or prefix to the allowlist", "klctl allow add 198.18.0.0/24", NULL, 0,
	  false },
	{ { "allow", "del" }, NULL, KL_CTL_ALLOW_DEL, { POS("CIDR", F_ADDR_CIDR) }, "CIDR",
	  "remove an allowlist entry (protected entries cannot be removed)",
	  "klctl allow del 198.18.0.0/24", NULL, 0, false },
	{ { "allow", "list" }, NULL, KL_CTL_ALLOW_LIST, { FLAG("--count", F_COUNT) },
	  "[--count N]", "list the allowlist", "klctl allow list", print_allow, 0, false },
	{ { "enforce-allow", NULL }, NULL, KL_CTL_ENFORCE_ALLOW, { POS("on|off", F_ONOFF) },
	  "on|off", "drop every source outside the allowlist (on) or not (off)",
	  "klctl enforce-allow on", NULL, 0, false },
	{ { "deny", "add" }, NULL, KL_CTL_DENY_ADD,
	  { POS("IP|CIDR", F_ADDR_CIDR), FLAG("--ttl", F_TTL) }, "IP|CIDR [--ttl DUR]",
	  "drop everything from an address or prefix (permanent unless --ttl)",
	  "klctl deny add 203.0.113.7 --ttl 30m", NULL, 0, false },
	{ { "deny", "del" }, NULL, KL_CTL_DENY_DEL, { POS("IP|CIDR", F_ADDR_CIDR) }, "IP|CIDR",
	  "remove a deny entry", "klctl deny del 203.0.113.7", NULL, 0, false },
	{ { "deny", "list" }, NULL, KL_CTL_DENY_LIST, { FLAG("--count", F_COUNT) }, "[--count N]",
	  "list deny entries with their expiry and origin", "klctl deny list", print_deny, 0, false },
	{ { "rl", "set" }, NULL, KL_CTL_RL_SET,
	  { REQFLAG("--rate", F_RATE), REQFLAG("--burst", F_BURST) }, "--rate PPS --burst N",
	  "global default rate limit for every source without an override",
	  "klctl rl set --rate 1000 --burst 2000", NULL, 0, false },
	{ { "rl", "off" }, NULL, KL_CTL_RL_OFF, { { 0 } }, "", "remove the global default rate limit",
	  "klctl rl off", NULL, 0, false },
	{ { "new-sources", "limit" }, NULL, KL_CTL_NEWSRC_LIMIT,
	  { REQFLAG("--rate", F_RATE), REQFLAG("--burst", F_BURST), FLAG("--ttl", F_TTL) },
	  "--rate PPS --burst N [--ttl DUR]",
	  "aggregate limit on packets of sources not yet admitted to a slot (a spoofed flood); "
	  "protected, allowlisted and known sources are exempt; rate 0 drops them all",
	  "klctl new-sources limit --rate 500 --burst 1000 --ttl 10m", NULL, 0, false },
	{ { "new-sources", "off" }, NULL, KL_CTL_NEWSRC_OFF, { { 0 } }, "",
	  "remove the new-source limit", "klctl new-sources off", NULL, 0, false },
	{ { "rl", "set-ip" }, NULL, KL_CTL_RL_SET_IP,
	  { POS("IP", F_ADDR_HOST), REQFLAG("--rate", F_RATE), REQFLAG("--burst", F_BURST),
	    FLAG("--ttl", F_TTL) },
	  "IP --rate PPS --burst N [--ttl DUR]",
	  "rate-limit one source (rate = packets/s that pass; 0 drops all)",
	  "klctl rl set-ip 203.0.113.7 --rate 20 --burst 40 --ttl 10m", NULL, 0, false },
	{ { "rl", "unset-ip" }, NULL, KL_CTL_RL_UNSET_IP, { POS("IP", F_ADDR_HOST) }, "IP",
	  "remove a source's rate-limit override", "klctl rl unset-ip 203.0.113.7", NULL, 0, false },
	{ { "rl", "list" }, NULL, KL_CTL_RL_LIST, { FLAG("--count", F_COUNT) }, "[--count N]",
	  "show the global default and the per-source overrides", "klctl rl list", print_rl, 0,
	  false },
	{ { "tuple-enforce", NULL }, NULL, KL_CTL_TUPLE_ENFORCE, { POS("off|deny|allow", F_EDGEMODE) },
	  "off|deny|allow",
	  "tuple (edge) enforcement: off, drop denied tuples, or drop tuples not allowed",
	  "klctl tuple-enforce deny", NULL, 0, false },
	{ { "edge", "add-deny" }, NULL, KL_CTL_EDGE_ADD_DENY,
	  { POS("SRC", F_ADDR_HOST), POS("PORT", F_PORT), POS("PROTO", F_PROTO), FLAG("--ttl", F_TTL) },
	  "SRC PORT PROTO [--ttl DUR]", "deny one (source, destination port, protocol) tuple",
	  "klctl edge add-deny 198.18.0.9 22 tcp", NULL, 0, false },
	{ { "edge", "del-deny" }, NULL, KL_CTL_EDGE_DEL_DENY,
	  { POS("SRC", F_ADDR_HOST), POS("PORT", F_PORT), POS("PROTO", F_PROTO) }, "SRC PORT PROTO",
	  "remove an edge deny rule", "klctl edge del-deny 198.18.0.9 22 tcp", NULL, 0, false },
	{ { "edge", "add-allow" }, NULL, KL_CTL_EDGE_ADD_ALLOW,
	  { POS("SRC", F_ADDR_HOST), POS("PORT", F_PORT), POS("PROTO", F_PROTO), FLAG("--ttl", F_TTL) },
	  "SRC PORT PROTO [--ttl DUR]", "allow one tuple (used when tuple-enforce is allow)",
	  "klctl edge add-allow 198.18.0.9 443 tcp", NULL, 0, false },
	{ { "edge", "del-allow" }, NULL, KL_CTL_EDGE_DEL_ALLOW,
	  { POS("SRC", F_ADDR_HOST), POS("PORT", F_PORT), POS("PROTO", F_PROTO) }, "SRC PORT PROTO",
	  "remove an edge allow rule", "klctl edge del-allow 198.18.0.9 443 tcp", NULL, 0, false },
	{ { "edge", "list" }, NULL, KL_CTL_EDGE_LIST, { FLAG("--count", F_COUNT) }, "[--count N]",
	  "list edge deny, allow and rate-limit rules", "klctl edge list", print_edge, 0, false },
	{ { "sampling", NULL }, NULL, KL_CTL_SAMPLING, { POS("MASK", F_MASK) }, "MASK",
	  "event sampling: 0 off, else one event in MASK+1 (MASK = 2^k-1)", "klctl sampling 1023",
	  NULL, 0, false },
	{ { "reset", NULL }, NULL, KL_CTL_RESET, { { 0 } }, "",
	  "remove every rate-limit override, deny entry and edge deny (not the allowlist)",
	  "klctl reset", NULL, 0, false },

	/* kl-decider */
	{ { "sources", NULL }, NULL, KL_CTL_SOURCES, { FLAG("-n", F_COUNT) }, "[-n N]",
	  "the decider's view: level, strikes, severity, rates, time in level, TTL left "
	  "(default 50, most severe first)",
	  "klctl sources -n 20", ctl_print_sources, 50, false },
	{ { "forgive", NULL }, NULL, KL_CTL_FORGIVE,
	  { POS("IP|CIDR", F_ADDR_CIDR), FLAG("--ttl", F_TTL) }, "IP|CIDR [--ttl DUR]",
	  "back to OBSERVE and exempt for the TTL (default 1h): adds a forgive entry to the "
	  "decider's feedback file",
	  "klctl forgive 203.0.113.7 --ttl 2h", NULL, 0, false },
	{ { "whitelist", "add" }, NULL, KL_CTL_WHITELIST_ADD,
	  { POS("IP|CIDR", F_ADDR_CIDR), FLAG("--ttl", F_TTL), FLAG("--until", F_UNTIL) },
	  "IP|CIDR [--ttl DUR | --until TIME]",
	  "never score or enforce an address or prefix (permanent unless --ttl or --until, an "
	  "RFC 3339 time); an escalated source goes back to OBSERVE at the next tick. Written "
	  "to the decider's feedback file; replaces an earlier whitelist entry for the target",
	  "klctl whitelist add 203.0.113.0/24 --until 2026-06-01T00:00:00Z", NULL, 0, false },
	{ { "whitelist", "del" }, NULL, KL_CTL_WHITELIST_DEL, { POS("IP|CIDR", F_ADDR_CIDR) },
	  "IP|CIDR",
	  "remove a whitelist entry added with klctl (entries of the whitelist file are edited "
	  "there, then `klctl reload`)",
	  "klctl whitelist del 203.0.113.0/24", NULL, 0, false },
	{ { "whitelist", "list" }, NULL, KL_CTL_WHITELIST_LIST, { FLAG("--count", F_COUNT) },
	  "[--count N]",
	  "the effective whitelist: the whitelist file's entries and the unexpired ones of the "
	  "feedback file, with their expiry",
	  "klctl whitelist list --json", print_whitelist, 0, false },
	{ { "reload", NULL }, NULL, KL_CTL_RELOAD, { { 0 } }, "",
	  "kl-decider: re-read the whitelist and the feedback file now (what SIGUSR1 does); a "
	  "file that does not parse keeps its previous entries",
	  "klctl reload", NULL, 0, false },
	{ { "tune", NULL }, NULL, KL_CTL_TUNE, { FLAG("--json", F_JSON) }, "[--json]",
	  "autotune: bootstrap phase and age, next tune, samples, current triggers, last result",
	  "klctl tune", ctl_print_tune, 0, false },
	{ { "baseline", "show" }, NULL, KL_CTL_BASELINE, { POS("IP", F_ADDR_HOST) }, "IP",
	  "a source's learned baseline: observations, confidence, EWMA and peak of pps/SYN/scan, "
	  "effective triggers",
	  "klctl baseline show 198.18.0.7", NULL, 0, false },
	/* kl-graphd: the answers carry their own text (tables) and JSON */
	{ { "graph", "export" }, NULL, KL_CTL_GRAPH_EXPORT,
	  { FLAG("--state", F_GSTATE), FLAG("--json", F_JSON) },
	  "[--state candidate|learned|frozen|approved|denied|expired] [--json|--format json] "
	  "[--violations]",
	  "the communication graph: every edge (or one state) with its evidence and its per-edge "
	  "baseline; --violations is `graph violations`",
	  "klctl graph export --state learned", NULL, 0, false },
	{ { "graph", "freeze" }, NULL, KL_CTL_GRAPH_FREEZE, { FLAG("--dry-run", F_DRYRUN) },
	  "[--dry-run]",
	  "learned edges -> frozen baseline; --dry-run lists what would be frozen and what is not "
	  "ready",
	  "klctl graph freeze --dry-run", NULL, 0, false },
	{ { "graph", "approve-ip" }, NULL, KL_CTL_GRAPH_APPROVE,
	  { POS("IP", F_ADDR_HOST), FLAG("--port", F_PORT), FLAG("--proto", F_PROTO) },
	  "IP [--port N --proto tcp|udp|icmp|icmpv6]",
	  "put every edge of IP (or one) into the baseline; learning never changes it",
	  "klctl graph approve-ip 10.0.4.7", NULL, 0, false },
	{ { "graph", "deny-ip" }, NULL, KL_CTL_GRAPH_DENY,
	  { POS("IP", F_ADDR_HOST), FLAG("--port", F_PORT), FLAG("--proto", F_PROTO) },
	  "IP [--port N --proto tcp|udp|icmp|icmpv6]",
	  "deny every edge of IP (or one): always a violation, an edge deny in the data plane",
	  "klctl graph deny-ip 10.0.4.66 --port 22 --proto tcp", NULL, 0, false },
	{ { "graph", "violations" }, NULL, KL_CTL_GRAPH_VIOLATIONS,
	  { FLAG("--since", F_TTL), FLAG("-n", F_COUNT), FLAG("--json", F_JSON) },
	  "[--since DUR] [-n N] [--json]",
	  "paths outside the frozen baseline that were used (newest N, default 1000)",
	  "klctl graph violations --since 1h", NULL, 0, false },

	/* The seeds' klshield spellings. */
	{ { "attach-xdp", NULL }, "attach", KL_CTL_ATTACH,
	  { REQFLAG("-iface", F_IFNAME), FLAG("-obj", F_OBJ), FLAG("-force", F_FORCE),
	    FLAG("-mode", F_XDPMODE) },
	  "-iface IF [-obj O] [-force] [-mode native|generic|auto]", "klshield spelling of attach",
	  "klctl attach-xdp -iface eth0", NULL, 0, false },
	{ { "detach-xdp", NULL }, "detach", KL_CTL_DETACH, { FLAG("-iface", F_IFNAME) },
	  "[-iface IF]", "klshield spelling of detach (no -iface: every attached interface)",
	  "klctl detach-xdp", NULL, 0, true },
	{ { "add-allow-cidr", NULL }, "allow add", KL_CTL_ALLOW_ADD, { POS("CIDR", F_ADDR_CIDR) },
	  "CIDR", "klshield spelling of allow add", "klctl add-allow-cidr 198.18.0.0/24", NULL, 0,
	  false },
	{ { "list-allow", NULL }, "allow list", KL_CTL_ALLOW_LIST, { { 0 } }, "",
	  "klshield spelling of allow list", "klctl list-allow", print_allow, 0, false },
	{ { "add-deny-ip", NULL }, "deny add", KL_CTL_DENY_ADD, { POS("IP", F_ADDR_HOST) }, "IP",
	  "klshield spelling of deny add", "klctl add-deny-ip 203.0.113.7", NULL, 0, false },
	{ { "del-deny-ip", NULL }, "deny del", KL_CTL_DENY_DEL, { POS("IP", F_ADDR_HOST) }, "IP",
	  "klshield spelling of deny del", "klctl del-deny-ip 203.0.113.7", NULL, 0, false },
	{ { "list-deny", NULL }, "deny list", KL_CTL_DENY_LIST, { { 0 } }, "",
	  "klshield spelling of deny list", "klctl list-deny", print_deny, 0, false },
	{ { "rl-set", NULL }, "rl set", KL_CTL_RL_SET,
	  { REQFLAG("-rate", F_RATE), REQFLAG("-burst", F_BURST) }, "-rate R -burst B",
	  "klshield spelling of rl set", "klctl rl-set -rate 1000 -burst 2000", NULL, 0, false },
	{ { "rl-set-ip", NULL }, "rl set-ip", KL_CTL_RL_SET_IP,
	  { REQFLAG("-rate", F_RATE), REQFLAG("-burst", F_BURST), POS("IP", F_ADDR_HOST) },
	  "-rate R -burst B IP", "klshield spelling of rl set-ip",
	  "klctl rl-set-ip -rate 20 -burst 40 203.0.113.7", NULL, 0, false },
	{ { "set-sampling", NULL }, "sampling", KL_CTL_SAMPLING, { POS("MASK", F_MASK) }, "MASK",
	  "klshield spelling of sampling", "klctl set-sampling 1023", NULL, 0, false },
};
const size_t ctl_n_cmds = sizeof(ctl_cmds) / sizeof(ctl_cmds[0]);

#define KL_STR_(x) #x
#define KL_STR(x) KL_STR_(x)
const struct ctl_offline ctl_offline[] = {
	{ "status [--expect LIST] [--json]",
	  "every daemon: up or down, pid, user, sandbox (seccomp, no_new_privs, effective "
	  "capabilities), version, enforcing or dry-run, ticks, the last tick's age, frames in "
	  "and out; exit 1 when an expected daemon is down",
	  { { "--expect LIST",
	      "the daemons deployed here, comma-separated from enforcer, sensor, decider, graphd "
	      "(default all four); one left out shows as off when it does not run and does not "
	      "fail the exit status" },
	    { "--json", "one JSON array, an object per daemon" } } },
	{ "top [-n N] [--interval DUR] [--count K] [--json]",
	  "live view, redrawn every interval: the decider's sources and the shield's drops",
	  { { "-n N", "sources shown (default 15)" },
	    { "--interval DUR", "time between two frames (default 1s)" },
	    { "--count K", "stop after K frames (default: until Ctrl+C)" },
	    { "--json", "one JSON object per frame and line" } } },
	{ "trace dump FILE [--json]",
	  "print a trace recorded by kl-sensor --record: a table per tick, or with --json one "
	  "JSON line per tick (the format kl-decider --replay reads)",
	  { { "--json", "JSON lines instead of tables" } } },
	{ "trace from-pcap CAPTURE [--interval DUR] [--obj PATH] [--ephemeral-min N]",
	  "run every packet of an Ethernet capture through the shield's XDP program "
	  "(BPF_PROG_TEST_RUN; needs root) and print the ticks the sensor would have sent, as "
	  "JSON lines, ticking on the capture's own timestamps",
	  { { "--interval DUR", "tick length (default 1s)" },
	    { "--obj PATH", "the shield object (default: the installed shield.bpf.o)" },
	    { "--ephemeral-min N",
	      "fold destination ports >= N to 0 in flows, as the enforcer does (default " KL_STR(
		      KL_EPHEMERAL_MIN_DEFAULT) "; 0 = no folding)" } } },
	{ "audit verify [--key FILE.pub]... [DIR...]",
	  "check every audit file of each DIR: hash chain, sequence, links between files, "
	  "signatures; names the first bad file and line (exit 0 only if all verify)",
	  { { "--key FILE.pub",
	      "a public key the auditor took away (repeatable); without it the audit.pub found "
	      "next to the logs is used (and said so)" },
	    { "DIR", "default: every /var/log/kernloom/<role>/ that exists" } } },
	{ "audit show [--source IP|CIDR] [--since DUR] [--json] [DIR...]",
	  "the history of an address across every DIR, merged by time: what was seen, decided "
	  "and enforced, and why",
	  { { "--source IP|CIDR", "the address or prefix whose history is shown" },
	    { "--since DUR", "only records newer than this" },
	    { "--json", "one JSON object per record" },
	    { "DIR", "default: every /var/log/kernloom/<role>/ that exists" } } },
};
#undef KL_STR
#undef KL_STR_
const size_t ctl_n_offline = sizeof(ctl_offline) / sizeof(ctl_offline[0]);

const char *ctl_cmd_name(const struct ctl_cmd *c, char *buf, size_t len)
{
	if (c->words[1])
		snprintf(buf, len, "%s %s", c->words[0], c->words[1]);
	else
		snprintf(buf, len, "%s", c->words[0]);
	return buf;
}

const struct ctl_cmd *ctl_find(int argc, char **argv, int *used)
{
	if (argc < 1)
		return NULL;
	/* two-word commands first, so "deny add" is not taken for "deny" */
	for (size_t i = 0; argc >= 2 && i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (c->words[1] && strcmp(argv[0], c->words[0]) == 0 &&
		    strcmp(argv[1], c->words[1]) == 0) {
			*used = 2;
			return c;
		}
	}
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (!c->words[1] && strcmp(argv[0], c->words[0]) == 0) {
			*used = 1;
			return c;
		}
	}
	return NULL;
}

/* ---- argument parsing ---- */

/* Plain decimal, no sign, no leading zeros (except "0"), no junk. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!s[0] || (s[0] == '0' && s[1]))
		return -1;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static int pick(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static int set_field(struct ctl_call *call, const struct ctl_arg *a, const char *v, char *err,
		     size_t len)
{
	struct kl_ctl_req *r = &call->req;
	char why[160];
	uint64_t x;
	int i;

	switch (a->field) {
	case F_ADDR_HOST:
		if (kl_addr_parse(v, &r->addr, why, sizeof(why)) < 0)
			return kl_fail(err, len, "%s: bad address \"%s\": %s", a->name, v, why);
		return 0;
	case F_ADDR_CIDR:
		if (kl_cidr_parse(v, &r->addr, why, sizeof(why)) < 0)
			return kl_fail(err, len, "%s: bad address or CIDR \"%s\": %s", a->name, v, why);
		return 0;
	case F_TTL: {
		uint64_t ns;
		if (kl_duration_parse(v, &ns, why, sizeof(why)) < 0)
			return kl_fail(err, len, "%s: bad duration \"%s\": %s", a->name, v, why);
		/* round up: a 1500us TTL must not become 1 ms early */
		x = ns / KL_NS_PER_MS + (ns % KL_NS_PER_MS ? 1 : 0);
		if (x > KL_CTL_MAX_TTL_MS)
			return kl_fail(err, len, "%s: %s is longer than 10 years", a->name, v);
		r->ttl_ms = x;
		return 0;
	}
	case F_RATE:
		if (parse_u64(v, KL_CTL_MAX_RATE, &r->rate) < 0)
			return kl_fail(err, len, "%s: \"%s\" is not a rate in packets/s (0..%llu)", a->name,
				    v, KL_CTL_MAX_RATE);
		return 0;
	case F_BURST:
		if (parse_u64(v, KL_CTL_MAX_BURST, &r->burst) < 0 || r->burst == 0)
			return kl_fail(err, len, "%s: \"%s\" is not a burst size (1..%llu)", a->name, v,
				    KL_CTL_MAX_BURST);
		return 0;
	case F_COUNT:
		if (parse_u64(v, KL_CTL_MAX_COUNT, &r->count) < 0 || r->count == 0)
			return kl_fail(err, len, "%s: \"%s\" is not a count (1..%llu)", a->name, v,
				    KL_CTL_MAX_COUNT);
		return 0;
	case F_TOPBY: {
		static const char *const n[] = { "pkts", "bytes", "drops", "droprl" };
		if ((i = pick(v, n, 4)) < 0)
			return kl_fail(err, len, "%s: \"%s\" is not one of pkts, bytes, drops, droprl",
				    a->name, v);
		r->mode = (uint8_t)i;
		return 0;
	}
	case F_IFNAME: {
		size_t n = strlen(v);
		if (n == 0 || n >= KL_IFNAMSIZ)
			return kl_fail(err, len, "%s: \"%s\" is not an interface name (1..%d characters)",
				    a->name, v, KL_IFNAMSIZ - 1);
		for (const char *p = v; *p; p++)
			if (!(isalnum((unsigned char)*p) || strchr("_.:-", *p)))
				return kl_fail(err, len, "%s: \"%s\" is not an interface name", a->name, v);
		if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
			return kl_fail(err, len, "%s: \"%s\" is not an interface name", a->name, v);
		memset(r->ifname, 0, sizeof(r->ifname));
		memcpy(r->ifname, v, n);
		return 0;
	}
	case F_XDPMODE: {
		static const char *const n[] = { "auto", "native", "generic" };
		if ((i = pick(v, n, 3)) < 0)
			return kl_fail(err, len, "%s: \"%s\" is not one of native, generic, auto", a->name, v);
		r->mode = (uint8_t)i; /* same order as enum kl_xdp_mode */
		return 0;
	}
	case F_PORT:
		if (parse_u64(v, 65535, &x) < 0)
			return kl_fail(err, len, "%s: \"%s\" is not a port (0..65535)", a->name, v);
		r->port = (uint16_t)x;
		return 0;
	case F_PROTO: {
		static const char *const n[] = { "tcp", "udp", "icmp", "icmpv6" };
		static const uint8_t num[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 };
		if ((i = pick(v, n, 4)) >= 0) {
			r->proto = num[i];
			return 0;
		}
		if (parse_u64(v, 255, &x) == 0 &&
		    (x == IPPROTO_TCP || x == IPPROTO_UDP || x == IPPROTO_ICMP || x == IPPROTO_ICMPV6)) {
			r->proto = (uint8_t)x;
			return 0;
		}
		return kl_fail(err, len, "%s: \"%s\" is not tcp, udp, icmp, icmpv6 (or 6, 17, 1, 58)",
			    a->name, v);
	}
	case F_MASK:
		if (parse_u64(v, 0xffffffffull, &x) < 0 || (x & (x + 1)) != 0)
			return kl_fail(err, len,
				    "%s: \"%s\" is not a sampling mask (0 = off, or 2^k-1: 1, 3, 7, "
				    "..., 1023, ...)",
				    a->name, v);
		r->count = x;
		return 0;
	case F_ONOFF: {
		static const char *const n[] = { "off", "on" };
		if ((i = pick(v, n, 2)) < 0)
			return kl_fail(err, len, "\"%s\" is not on or off", v);
		r->mode = (uint8_t)i;
		return 0;
	}
	case F_EDGEMODE: {
		static const char *const n[] = { "off", "deny", "allow" };
		if ((i = pick(v, n, 3)) < 0)
			return kl_fail(err, len, "\"%s\" is not off, deny or allow", v);
		r->mode = (uint8_t)i; /* same order as enum kl_edge_mode */
		return 0;
	}
	case F_OBJ:
		snprintf(call->note, sizeof(call->note),
			 "note: -obj %s ignored; the object is chosen by kl-enforcer --obj", v);
		return 0;
	case F_GSTATE: {
		/* enum gr_state (graphd/graph.h), in order */
		static const char *const n[] = { "candidate", "learned", "frozen",
						 "approved",  "denied",  "expired" };
		if ((i = pick(v, n, 6)) < 0)
			return kl_fail(err, len, "%s: \"%s\" is not one of candidate, learned, frozen, "
				    "approved, denied, expired", a->name, v);
		r->mode = (uint8_t)(1 + i);
		return 0;
	}
	case F_UNTIL: {
		int64_t ms;
		if (kl_rfc3339_parse(v, &ms) < 0 || ms <= 0 || (uint64_t)ms > KL_CTL_MAX_UNTIL_MS)
			return kl_fail(err, len,
				    "%s: \"%s\" is not an RFC 3339 time (2026-06-01T00:00:00Z, "
				    "2026-06-01T02:00:00+02:00)",
				    a->name, v);
		r->mode = 1;
		r->ttl_ms = (uint64_t)ms;
		return 0;
	}
	case F_FORCE:
	case F_JSON:
	case F_DRYRUN:
	case F_NONE:
	case F_FIELD_COUNT:
		break;
	}
	return kl_fail(err, len, "%s: internal error (no parser)", a->name);
}

static bool is_flag(const struct ctl_arg *a)
{
	return a->name && a->name[0] == '-';
}

static bool flag_matches(const struct ctl_arg *a, const char *tok, size_t toklen)
{
	return (strlen(a->name) == toklen && strncmp(a->name, tok, toklen) == 0) ||
	       (a->alt && strlen(a->alt) == toklen && strncmp(a->alt, tok, toklen) == 0);
}

/* The seeds' `graph export --violations` is `graph violations`. */
static int parse_export_violations(int argc, char **argv, struct ctl_call *call, char *err,
				   size_t errlen)
{
	char **av = calloc((size_t)argc, sizeof(*av));
	int n = 0;
	if (!av)
		return kl_fail(err, errlen, "out of memory");
	av[n++] = "graph";
	av[n++] = "violations";
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--violations") != 0)
			av[n++] = argv[i];
	int rc = ctl_parse(n, av, call, err, errlen);
	free(av);
	return rc;
}

/* Options every command takes, wherever they stand after its name:
 * --json, and the seeds' --format json|table. Returns 1 when TOK was one
 * (and *i moved past a separate value), 0 when not, -1 on a bad value. */
static int output_option(int argc, char **argv, int *i, struct ctl_call *call, char *err,
			 size_t errlen)
{
	const char *tok = argv[*i], *v;
	if (strcmp(tok, "--json") == 0) {
		call->json = true;
		return 1;
	}
	if (strncmp(tok, "--format", 8) != 0 || (tok[8] != '\0' && tok[8] != '='))
		return 0;
	if (tok[8] == '=') {
		v = tok + 9;
	} else {
		if (*i + 1 >= argc)
			return kl_fail(err, errlen, "option --format needs a value (json or table)");
		v = argv[++*i];
	}
	if (strcmp(v, "json") == 0)
		call->json = true;
	else if (strcmp(v, "table") != 0)
		return kl_fail(err, errlen, "--format takes json or table, not \"%s\"", v);
	return 1;
}

const char *ctl_unit_name(enum ctl_unit u)
{
	static const char *const n[CTL_U_MAX] = { "kl-enforcer", "kl-sensor", "kl-decider",
						  "kl-graphd" };
	return u < CTL_U_MAX ? n[u] : "?";
}

enum ctl_unit_state ctl_unit_state(bool up, bool untold, bool expected)
{
	if (up)
		return CTL_ST_UP;
	if (untold)
		return CTL_ST_UNKNOWN;
	return expected ? CTL_ST_DOWN : CTL_ST_OFF;
}

const char *ctl_unit_state_name(enum ctl_unit_state s)
{
	static const char *const n[] = { "up", "down", "off", "unknown" };
	return s <= CTL_ST_UNKNOWN ? n[s] : "?";
}

/* "decider,graphd" (kl- prefixes allowed) -> a bit per daemon. */
static int parse_expect(const char *v, unsigned *out, char *err, size_t errlen)
{
	unsigned bits = 0;
	const char *p = v;
	for (;;) {
		size_t n = strcspn(p, ",");
		const char *w = p;
		if (n > 3 && strncmp(w, "kl-", 3) == 0) {
			w += 3;
			n -= 3;
		}
		int found = -1;
		for (int u = 0; u < CTL_U_MAX; u++)
			if (strlen(ctl_unit_name((enum ctl_unit)u) + 3) == n &&
			    strncmp(ctl_unit_name((enum ctl_unit)u) + 3, w, n) == 0)
				found = u;
		if (found < 0)
			return kl_fail(err, errlen,
				    "--expect: \"%.*s\" is not one of enforcer, sensor, decider, graphd "
				    "(in \"%s\")",
				    (int)strcspn(p, ","), p, v);
		bits |= 1u << found;
		if (p[strcspn(p, ",")] == '\0')
			break;
		p += strcspn(p, ",") + 1;
	}
	*out = bits;
	return 0;
}

int ctl_status_parse(int argc, char **argv, struct ctl_status_opts *o, char *err, size_t errlen)
{
	*o = (struct ctl_status_opts){ .expect = (1u << CTL_U_MAX) - 1 };
	bool expect_seen = false;
	for (int i = 1; i < argc; i++) {
		const char *t = argv[i];
		if (strcmp(t, "--help") == 0 || strcmp(t, "-h") == 0) {
			o->help = true;
			return 0;
		}
		struct ctl_call out = { 0 };
		int r = output_option(argc, argv, &i, &out, err, errlen);
		if (r < 0)
			return -1;
		if (r > 0) {
			o->json |= out.json;
			continue;
		}
		if (strcmp(t, "--expect") != 0 && strncmp(t, "--expect=", 9) != 0)
			return kl_fail(err, errlen,
				    "unknown option \"%s\" for \"status\" (options: --expect LIST, "
				    "--json; `klctl status enforcer` is the shield's detail)",
				    t);
		if (expect_seen)
			return kl_fail(err, errlen, "option --expect given twice");
		expect_seen = true;
		const char *v = t[8] == '=' ? t + 9 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v || !v[0])
			return kl_fail(err, errlen, "option --expect needs a list (e.g. enforcer,sensor,decider)");
		if (parse_expect(v, &o->expect, err, errlen) < 0)
			return -1;
	}
	return 0;
}

size_t ctl_events_new(uint64_t last_total, uint64_t total, size_t n, uint64_t *missed)
{
	/* A restarted enforcer counts from zero again: all it has is new. */
	uint64_t fresh = total >= last_total ? total - last_total : total;
	*missed = fresh > n ? fresh - n : 0;
	return fresh >= n ? 0 : n - (size_t)fresh;
}

int ctl_top_parse(int argc, char **argv, struct ctl_top_opts *o, char *err, size_t errlen)
{
	*o = (struct ctl_top_opts){ .n = 15, .interval_ns = 1000000000ull };
	for (int i = 1; i < argc; i++) {
		const char *t = argv[i];
		char *end;
		if (strcmp(t, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(t, "-n") != 0 && strcmp(t, "--interval") != 0 && strcmp(t, "--count") != 0)
			return kl_fail(err, errlen, "unknown option \"%s\" for \"top\"", t);
		if (i + 1 >= argc)
			return kl_fail(err, errlen, "option %s needs a value", t);
		const char *v = argv[++i];
		if (strcmp(t, "--interval") == 0) {
			char why[128];
			if (kl_duration_parse(v, &o->interval_ns, why, sizeof(why)) < 0)
				return kl_fail(err, errlen, "--interval: %s", why);
			if (o->interval_ns < 100000000ull || o->interval_ns > 3600000000000ull)
				return kl_fail(err, errlen, "--interval must be between 100ms and 1h");
			continue;
		}
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-' ||
		    x > (strcmp(t, "-n") == 0 ? 100000ull : 1000000000ull) || (x == 0 && t[1] == 'n'))
			return kl_fail(err, errlen, "%s: \"%s\" is not a number in range", t, v);
		if (strcmp(t, "-n") == 0)
			o->n = (uint32_t)x;
		else
			o->count = x;
	}
	return 0;
}

int ctl_parse(int argc, char **argv, struct ctl_call *call, char *err, size_t errlen)
{
	char name[64];
	int used = 0;
	memset(call, 0, sizeof(*call));
	if (argc >= 2 && strcmp(argv[0], "graph") == 0 && strcmp(argv[1], "export") == 0)
		for (int i = 2; i < argc; i++)
			if (strcmp(argv[i], "--violations") == 0)
				return parse_export_violations(argc, argv, call, err, errlen);
	const struct ctl_cmd *c = ctl_find(argc, argv, &used);
	if (!c) {
		if (argc >= 2 && ctl_find(1, argv, &used) == NULL) {
			for (size_t i = 0; i < ctl_n_cmds; i++)
				if (ctl_cmds[i].words[1] && strcmp(ctl_cmds[i].words[0], argv[0]) == 0)
					return kl_fail(err, errlen,
						    "unknown subcommand \"%s %s\" (see klctl help %s)",
						    argv[0], argv[1], argv[0]);
		}
		if (argc >= 1)
			for (size_t i = 0; i < ctl_n_cmds; i++)
				if (ctl_cmds[i].words[1] && strcmp(ctl_cmds[i].words[0], argv[0]) == 0)
					return kl_fail(err, errlen, "\"%s\" needs a subcommand (see klctl help %s)",
						    argv[0], argv[0]);
		return kl_fail(err, errlen, "unknown command \"%s\" (see klctl help)",
			    argc ? argv[0] : "");
	}
	ctl_cmd_name(c, name, sizeof(name));
	call->cmd = c;
	call->req.cmd = c->cmd;
	bool seen[CTL_MAX_ARGS] = { false };
	size_t next_pos = 0;

	for (int i = used; i < argc; i++) {
		const char *tok = argv[i];
		if (strcmp(tok, "--help") == 0 || strcmp(tok, "-h") == 0) {
			call->help = true;
			return 0;
		}
		if (tok[0] == '-' && tok[1] != '\0') {
			int o = output_option(argc, argv, &i, call, err, errlen);
			if (o < 0)
				return -1;
			if (o > 0)
				continue;
			const char *eq = strchr(tok, '=');
			size_t tl = eq ? (size_t)(eq - tok) : strlen(tok);
			const struct ctl_arg *a = NULL;
			size_t ai = 0;
			for (size_t k = 0; k < CTL_MAX_ARGS && c->args[k].name; k++)
				if (is_flag(&c->args[k]) && flag_matches(&c->args[k], tok, tl)) {
					a = &c->args[k];
					ai = k;
				}
			if (!a)
				return kl_fail(err, errlen, "unknown option \"%.*s\" for \"%s\"", (int)tl, tok,
					    name);
			if (seen[ai])
				return kl_fail(err, errlen, "option %s given twice", a->name);
			seen[ai] = true;
			if (a->field == F_FORCE) {
				if (eq)
					return kl_fail(err, errlen, "option %s takes no value", a->name);
				call->req.flags |= KL_CTL_F_FORCE;
				continue;
			}
			if (a->field == F_DRYRUN) {
				if (eq)
					return kl_fail(err, errlen, "option %s takes no value", a->name);
				call->req.mode = 1;
				continue;
			}
			if (a->field == F_JSON) {
				if (eq)
					return kl_fail(err, errlen, "option %s takes no value", a->name);
				call->json = true;
				continue;
			}
			const char *v;
			if (eq) {
				v = eq + 1;
			} else {
				if (i + 1 >= argc)
					return kl_fail(err, errlen, "option %s needs a value", a->name);
				v = argv[++i];
			}
			if (set_field(call, a, v, err, errlen) < 0)
				return -1;
			continue;
		}
		/* positional */
		const struct ctl_arg *a = NULL;
		size_t k = next_pos;
		for (; k < CTL_MAX_ARGS && c->args[k].name; k++)
			if (!is_flag(&c->args[k])) {
				a = &c->args[k];
				break;
			}
		if (!a)
			return kl_fail(err, errlen, "unexpected argument \"%s\" for \"%s\"", tok, name);
		seen[k] = true;
		next_pos = k + 1;
		if (set_field(call, a, tok, err, errlen) < 0)
			return -1;
	}
	for (size_t k = 0; k < CTL_MAX_ARGS && c->args[k].name; k++)
		if (c->args[k].required && !seen[k])
			return kl_fail(err, errlen, "\"%s\" needs %s%s", name, c->args[k].name,
				    is_flag(&c->args[k]) ? " VALUE" : "");

	/* cross-field checks the decoder would otherwise reject */
	struct kl_ctl_req *r = &call->req;
	int expiries = 0;
	for (size_t k = 0; k < CTL_MAX_ARGS && c->args[k].name; k++)
		expiries += seen[k] && (c->args[k].field == F_TTL || c->args[k].field == F_UNTIL);
	if (expiries > 1)
		return kl_fail(err, errlen, "give --ttl or --until, not both");
	if (r->proto == IPPROTO_ICMP && r->addr.family == 6)
		return kl_fail(err, errlen, "PROTO: icmp with an IPv6 source; use icmpv6");
	if (r->proto == IPPROTO_ICMPV6 && r->addr.family == 4)
		return kl_fail(err, errlen, "PROTO: icmpv6 with an IPv4 source; use icmp");
	if ((r->proto == IPPROTO_ICMP || r->proto == IPPROTO_ICMPV6) && r->port != 0)
		return kl_fail(err, errlen, "PORT: ICMP has no ports; use 0");
	if (r->cmd == KL_CTL_RL_SET && r->rate == 0)
		return kl_fail(err, errlen,
			    "rate: the global default needs at least 1 pps (`klctl rl off` removes it)");
	if (c->detach_all_if_no_iface && r->ifname[0] == '\0')
		call->detach_all = true;
	if (r->count == 0 && c->default_count && c->cmd != KL_CTL_SAMPLING)
		r->count = c->default_count;
	return 0;
}

int ctl_global_parse(int argc, char **argv, const char *env_run_dir, struct ctl_global *g,
		     char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->run_dir = env_run_dir && env_run_dir[0] ? env_run_dir : DEFAULT_RUN_DIR;
	g->timeout_ms = DEFAULT_TIMEOUT_MS;
	int i = 1;
	for (; i < argc; i++) {
		const char *t = argv[i];
		if (t[0] != '-')
			break;
		if (strcmp(t, "--json") == 0) {
			g->json = true;
		} else if (strcmp(t, "--help") == 0 || strcmp(t, "-h") == 0) {
			g->help = true;
		} else if (strcmp(t, "--help-man") == 0) {
			g->help_man = true;
		} else if (strcmp(t, "--run-dir") == 0 || strncmp(t, "--run-dir=", 10) == 0) {
			const char *v = t[9] == '=' ? t + 10 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !v[0])
				return kl_fail(err, errlen, "option --run-dir needs a directory");
			g->run_dir = v;
		} else if (strcmp(t, "--timeout") == 0 || strncmp(t, "--timeout=", 10) == 0) {
			const char *v = t[9] == '=' ? t + 10 : (i + 1 < argc ? argv[++i] : NULL);
			uint64_t ns;
			char why[128];
			if (!v)
				return kl_fail(err, errlen, "option --timeout needs a duration");
			if (kl_duration_parse(v, &ns, why, sizeof(why)) < 0)
				return kl_fail(err, errlen, "--timeout: bad duration \"%s\": %s", v, why);
			if (ns < KL_NS_PER_MS || ns > 3600ull * KL_NS_PER_S)
				return kl_fail(err, errlen, "--timeout: %s is outside 1ms..1h", v);
			g->timeout_ms = ns / KL_NS_PER_MS;
		} else {
			return kl_fail(err, errlen, "unknown option \"%s\" (options go before the command)",
				    t);
		}
	}
	g->cmd_index = i;
	return 0;
}

/* ---- help ---- */

void ctl_print_usage(FILE *out)
{
	char name[64];
	fprintf(out,
		"usage: klctl [--run-dir DIR] [--json] [--timeout DUR] COMMAND [ARGS]\n"
		"       klctl --help-man   (klctl(8) in man(7) format)\n"
		"\n"
		"Operator control of Kernloom. Talks to the daemons' control sockets in\n"
		"--run-dir (default %s, or $KERNLOOM_RUN_DIR).\n"
		"\n"
		"commands:\n",
		DEFAULT_RUN_DIR);
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (c->alias_of)
			continue;
		char line[160];
		snprintf(line, sizeof(line), "%s %s", ctl_cmd_name(c, name, sizeof(name)), c->usage);
		if (strlen(line) > 44)
			fprintf(out, "  %s\n  %-44s %s\n", line, "", c->help);
		else
			fprintf(out, "  %-44s %s\n", line, c->help);
	}
	/* The commands klctl runs itself, not one request to one daemon. */
	for (size_t i = 0; i < ctl_n_offline; i++) {
		const struct ctl_offline *o = &ctl_offline[i];
		if (strlen(o->usage) > 44)
			fprintf(out, "  %s\n  %-44s %s\n", o->usage, "", o->help);
		else
			fprintf(out, "  %-44s %s\n", o->usage, o->help);
	}
	fprintf(out, "\nklshield spellings (aliases):\n");
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (!c->alias_of)
			continue;
		char line[160];
		snprintf(line, sizeof(line), "%s %s", ctl_cmd_name(c, name, sizeof(name)), c->usage);
		if (strlen(line) > 44)
			fprintf(out, "  %s\n  %-44s = %s\n", line, "", c->alias_of);
		else
			fprintf(out, "  %-44s = %s\n", line, c->alias_of);
	}
	fprintf(out,
		"\n--json (before or after the command; also --format json|table) prints the\n"
		"daemon's JSON answer as is. `klctl help COMMAND` explains one\n"
		"command. Exit status: 0 done, 1 refused or failed (or daemon unreachable),\n"
		"2 usage error.\n");
}

/* TEXT folded at word boundaries to fit 79 columns, every line indented
 * by INDENT. */
static void print_folded(FILE *out, int indent, const char *text)
{
	const int width = 79 - indent;
	const char *p = text;
	while (*p) {
		int n = (int)strlen(p);
		if (n > width) {
			n = width;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0) /* one word longer than a line */
				n = (int)strcspn(p, " ");
		}
		fprintf(out, "%*s%.*s\n", indent, "", n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
}

int ctl_print_offline_help(const char *word, FILE *out)
{
	size_t wl = strlen(word);
	int n = 0;
	for (size_t i = 0; i < ctl_n_offline; i++) {
		const struct ctl_offline *o = &ctl_offline[i];
		if (strncmp(o->usage, word, wl) != 0 || (o->usage[wl] != ' ' && o->usage[wl] != '\0'))
			continue;
		fprintf(out, "%s klctl %s\n", n++ == 0 ? "usage:" : "      ", o->usage);
	}
	for (size_t i = 0; i < ctl_n_offline; i++) {
		const struct ctl_offline *o = &ctl_offline[i];
		if (strncmp(o->usage, word, wl) != 0 || (o->usage[wl] != ' ' && o->usage[wl] != '\0'))
			continue;
		fprintf(out, "\n%s:\n", o->usage);
		print_folded(out, 2, o->help);
		for (size_t k = 0; k < sizeof(o->opts) / sizeof(o->opts[0]) && o->opts[k].name; k++) {
			fprintf(out, "  %s\n", o->opts[k].name);
			print_folded(out, 6, o->opts[k].help);
		}
	}
	return n;
}

void ctl_print_cmd_help(const struct ctl_cmd *c, FILE *out)
{
	char name[64];
	fprintf(out, "usage: klctl %s%s%s\n\n%s", ctl_cmd_name(c, name, sizeof(name)),
		c->usage[0] ? " " : "", c->usage, c->help);
	if (c->alias_of)
		fprintf(out, " (alias of `klctl %s`)", c->alias_of);
	fprintf(out, "\nsent to: %s\nexample: %s\n", ctl_daemon_name(ctl_cmd_daemon(c)), c->example);
}

int ctl_print_group_help(const char *word, FILE *out)
{
	int n = 0;
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (c->alias_of || !c->words[1] || strcmp(c->words[0], word) != 0)
			continue;
		if (n++)
			fputc('\n', out);
		ctl_print_cmd_help(c, out);
	}
	return n;
}

void ctl_print_result(const struct ctl_cmd *c, json_t *doc, const char *text, FILE *out)
{
	if (c->print && doc)
		c->print(doc, text, out);
	else
		fprintf(out, "%s\n", text);
}

/* ---- klctl(8) ---- */

/* What a value of each field is; the man page's option list. */
static const struct {
	const char *meta; /* a flag's value name; NULL for a boolean flag */
	const char *what;
} field_doc[] = {
	[F_NONE] = { NULL, "" },
	[F_ADDR_HOST] = { "IP", "one IPv4 or IPv6 address" },
	[F_ADDR_CIDR] = { "CIDR", "an IPv4 or IPv6 address or prefix (CIDR)" },
	[F_TTL] = { "DUR", "a duration: 500ms, 30s, 2m, 1h30m, 336h" },
	[F_RATE] = { "PPS", "packets per second that pass" },
	[F_BURST] = { "N", "packets that may pass back to back" },
	[F_COUNT] = { "N", "how many" },
	[F_TOPBY] = { "KEY", "sort key: pkts, bytes, drops or droprl" },
	[F_IFNAME] = { "IF", "a network interface name" },
	[F_XDPMODE] = { "MODE", "XDP mode: native, generic or auto" },
	[F_FORCE] = { NULL, "replace another XDP program already attached" },
	[F_PORT] = { "N", "a destination port, 0 to 65535" },
	[F_PROTO] = { "PROTO", "tcp, udp, icmp, icmpv6 or a protocol number" },
	[F_MASK] = { "MASK", "0 (off) or 2^k-1: one event in MASK+1" },
	[F_ONOFF] = { "on|off", "on or off" },
	[F_EDGEMODE] = { "MODE", "off, deny or allow" },
	[F_OBJ] = { "O", "accepted for compatibility and ignored (kl-enforcer --obj chooses)" },
	[F_JSON] = { NULL, "print the daemon's JSON answer" },
	[F_DRYRUN] = { NULL, "show what would change, change nothing" },
	[F_GSTATE] = { "STATE", "candidate, learned, frozen, approved, denied or expired" },
	[F_UNTIL] = { "TIME", "an RFC 3339 time: 2026-06-01T00:00:00Z, 2026-06-01T02:00:00+02:00" },
};
_Static_assert(sizeof(field_doc) / sizeof(field_doc[0]) == F_FIELD_COUNT,
	       "every ctl_field has its man page text");

static void man_cmd(FILE *out, const struct ctl_cmd *c)
{
	char name[64];
	fputs(".TP\n", out);
	kl_man_bold(out, "klctl ");
	kl_man_bold(out, ctl_cmd_name(c, name, sizeof(name)));
	if (c->usage[0]) {
		fputc(' ', out);
		kl_man_puts(out, c->usage);
	}
	fputc('\n', out);
	kl_man_line(out, c->help);
	bool any = c->args[0].name != NULL;
	if (any)
		fputs(".RS\n", out);
	for (size_t k = 0; k < CTL_MAX_ARGS && c->args[k].name; k++) {
		const struct ctl_arg *a = &c->args[k];
		fputs(".TP\n", out);
		if (a->name[0] == '-') {
			kl_man_bold(out, a->name);
			if (a->alt) {
				fputs(", ", out);
				kl_man_bold(out, a->alt);
			}
			if (field_doc[a->field].meta) {
				fputc(' ', out);
				kl_man_italic(out, field_doc[a->field].meta);
			}
		} else {
			kl_man_italic(out, a->name);
		}
		fputc('\n', out);
		kl_man_puts(out, field_doc[a->field].what);
		fputs(a->required && a->name[0] == '-' ? " (required)" : "", out);
		fputc('\n', out);
	}
	if (any)
		fputs(".RE\n", out);
	fputs(".IP\nExample: ", out);
	kl_man_bold(out, c->example);
	fputc('\n', out);
}

void ctl_print_man(FILE *out)
{
	char name[64], path[128];
	kl_man_header(out, "klctl", 8, "System Manager's Manual");
	kl_man_section(out, "NAME");
	fputs("klctl \\- operator control of the Kernloom host network protection suite\n", out);
	kl_man_section(out, "SYNOPSIS");
	fputs(".B klctl\n[\\fB\\-\\-run\\-dir\\fR \\fIDIR\\fR] [\\fB\\-\\-json\\fR] "
	      "[\\fB\\-\\-timeout\\fR \\fIDUR\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n"
	      ".br\n.B klctl help\n[\\fICOMMAND\\fR]\n",
	      out);
	kl_man_section(out, "DESCRIPTION");
	kl_man_line(out, "klctl parses a command strictly, sends it as one CONTROL message to the "
			 "daemon that owns it (kl-enforcer for the shield, kl-decider, kl-graphd) on "
			 "that daemon's control socket, and prints the answer. A usage error names "
			 "the argument at fault and sends nothing. The daemons admit root and the "
			 "members of the group kernloom-admin. The commands under Commands klctl runs "
			 "itself are not one request to one daemon: status and top ask several, "
			 "trace and audit work on files.");
	kl_man_section(out, "OPTIONS");
	kl_man_line(out, "Global options go before the command; --json and --format also after it.");
	fputs(".TP\n", out);
	kl_man_bold(out, "--run-dir");
	fputc(' ', out);
	kl_man_italic(out, "DIR");
	fputc('\n', out);
	kl_man_line(out, "the daemons' run directory (default " DEFAULT_RUN_DIR
			 ", or $KERNLOOM_RUN_DIR); each daemon's sockets are in DIR/<role>/");
	fputs(".TP\n", out);
	kl_man_bold(out, "--json");
	fputs(", ", out);
	kl_man_bold(out, "--format json|table");
	fputc('\n', out);
	kl_man_line(out, "print the daemon's JSON answer as it was sent");
	fputs(".TP\n", out);
	kl_man_bold(out, "--timeout");
	fputc(' ', out);
	kl_man_italic(out, "DUR");
	fputc('\n', out);
	fprintf(out, "how long to wait for a daemon's answer, 1ms to 1h (default %ds)\n",
		DEFAULT_TIMEOUT_MS / 1000);
	fputs(".TP\n", out);
	kl_man_bold(out, "--help");
	fputs(", ", out);
	kl_man_bold(out, "-h");
	fputc('\n', out);
	kl_man_line(out, "list the commands; klctl help COMMAND (or COMMAND --help) explains one");
	fputs(".TP\n", out);
	kl_man_bold(out, "--help-man");
	fputc('\n', out);
	kl_man_line(out, "print this page in man(7) format");

	kl_man_section(out, "COMMANDS");
	kl_man_line(out, "Durations use the Go grammar: 500ms, 30s, 2m, 1h30m, 336h.");
	static const char *const parts[CTL_D_MAX] = {
		[CTL_D_ENFORCER] = "kl-enforcer: the shield",
		[CTL_D_DECIDER] = "kl-decider",
		[CTL_D_GRAPHD] = "kl-graphd",
	};
	for (int d = 0; d < CTL_D_MAX; d++) {
		kl_man_subsection(out, parts[d]);
		for (size_t i = 0; i < ctl_n_cmds; i++)
			if (!ctl_cmds[i].alias_of && ctl_cmd_daemon(&ctl_cmds[i]) == (enum ctl_daemon)d)
				man_cmd(out, &ctl_cmds[i]);
	}
	kl_man_subsection(out, "Commands klctl runs itself");
	for (size_t i = 0; i < ctl_n_offline; i++) {
		const struct ctl_offline *o = &ctl_offline[i];
		fputs(".TP\n", out);
		kl_man_bold(out, "klctl ");
		kl_man_puts(out, o->usage);
		fputc('\n', out);
		kl_man_line(out, o->help);
		if (o->opts[0].name)
			fputs(".RS\n", out);
		for (size_t k = 0; k < sizeof(o->opts) / sizeof(o->opts[0]) && o->opts[k].name; k++) {
			fputs(".TP\n", out);
			kl_man_bold(out, o->opts[k].name);
			fputc('\n', out);
			kl_man_line(out, o->opts[k].help);
		}
		if (o->opts[0].name)
			fputs(".RE\n", out);
	}
	kl_man_subsection(out, "klshield spellings");
	kl_man_line(out, "The seeds' klshield commands work as aliases of the commands above:");
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		if (!c->alias_of)
			continue;
		fputs(".TP\n", out);
		kl_man_bold(out, ctl_cmd_name(c, name, sizeof(name)));
		if (c->usage[0]) {
			fputc(' ', out);
			kl_man_puts(out, c->usage);
		}
		fputs("\nklctl ", out);
		kl_man_puts(out, c->alias_of);
		fputc('\n', out);
	}

	kl_man_section(out, "EXIT STATUS");
	fputs(".TP\n0\ndone\n.TP\n1\n", out);
	kl_man_line(out, "refused or failed (the message says why), or the daemon is unreachable; "
			 "status: a daemon it expects is down, or its state cannot be told");
	fputs(".TP\n2\nusage error\n", out);
	kl_man_section(out, "ENVIRONMENT");
	fputs(".TP\n.B KERNLOOM_RUN_DIR\n", out);
	kl_man_line(out, "the run directory when --run-dir is not given");
	kl_man_section(out, "FILES");
	for (int d = 0; d < CTL_D_MAX; d++) {
		snprintf(path, sizeof(path), "%s/%s/%s", DEFAULT_RUN_DIR,
			 kl_run_role_dir(ctl_daemon_role((enum ctl_daemon)d)),
			 ctl_daemon_socket((enum ctl_daemon)d));
		fputs(".TP\n", out);
		kl_man_italic(out, path);
		fprintf(out, "\ncontrol socket of %s\n", ctl_daemon_name((enum ctl_daemon)d));
	}
	kl_man_section(out, "EXAMPLES");
	fputs(".nf\n", out);
	kl_man_line(out, "klctl status");
	kl_man_line(out, "klctl status --expect enforcer,sensor,decider");
	kl_man_line(out, "klctl deny add 203.0.113.7 --ttl 1h");
	kl_man_line(out, "klctl --json sources -n 20");
	kl_man_line(out, "klctl forgive 203.0.113.7 --ttl 2h");
	fputs(".fi\n", out);
	kl_man_section(out, "SEE ALSO");
	fputs(".BR kl\\-enforcer (8),\n.BR kl\\-sensor (8),\n.BR kl\\-decider (8),\n"
	      ".BR kl\\-graphd (8),\n.BR kernloom.yaml (5),\n.BR kernloom\\-pdp (5)\n",
	      out);
}
