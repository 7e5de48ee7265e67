/* SPDX-License-Identifier: MPL-2.0 */
/* kl-enforcer's settings: the knob table, enforcer.yaml, the command line. */
#include "enforcer/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shield.h"
#include "common/kyaml.h"
#include "common/log.h"
#include "common/man.h"
#include "common/safefile.h"

#define ENF_RUN_DIR_DEFAULT "/run/kernloom"
#define OFF(f) offsetof(struct enf_config, f)
#define STR_(x) #x
#define STR(x) STR_(x)
#define G_FILES "Files, sockets and privileges"
#define G_SHIELD "Shield"
#define G_LINKS "Links (kl-decider, kl-graphd)"
#define G_RUN "Runtime"

_Static_assert(sizeof(enum kl_xdp_mode) == sizeof(int) && sizeof(enum enf_features) == sizeof(int),
	       "KT_ENUM stores an int");

static const char *const feature_names[ENF_FEAT_MAX + 1] = {
	[ENF_FEAT_LIGHT] = "light",
	[ENF_FEAT_IQ_LEARNING] = "iq-learning",
	[ENF_FEAT_GRAPH_LEARNING] = "graph-learning",
	[ENF_FEAT_GRAPH_ENFORCE] = "graph-enforce",
};

static const char *const mode_names[KL_XDP_MODE_MAX + 1] = {
	[KL_XDP_AUTO] = "auto",
	[KL_XDP_NATIVE] = "native",
	[KL_XDP_GENERIC] = "generic",
};

static const char *const size_keys[ENF_SZ_MAX] = {
	[ENF_SZ_SRC] = "src",
	[ENF_SZ_DENY] = "deny",
	[ENF_SZ_DENY_CIDR] = "deny_cidr",
	[ENF_SZ_ALLOW] = "allow",
	[ENF_SZ_RL] = "rl",
	[ENF_SZ_FLOW] = "flow",
	[ENF_SZ_EDGE] = "edge",
};

#define MAP_SIZE(SZ, FLAG, KEY, DEF, WHAT)                                                  \
	{ "map-size-" FLAG, KT_U64, OFF(map_sizes[SZ]), STR(DEF), .min = 1,                 \
	  .max = ENF_MAP_SIZE_MAX, .group = G_SHIELD, .key = "map_sizes." KEY,              \
	  .help = "Entries of the " WHAT " map(s), per family." }
#define USER(FIELD, FLAG, KEY, DEF, WHAT)                                                   \
	{ FLAG, KT_STR, OFF(FIELD), DEF, .flags = KF_NONEMPTY, .group = G_FILES, .key = KEY, \
	  .help = WHAT }
#define QUOTA(FIELD, FLAG, MAX, DEF, WHAT)                                                  \
	{ FLAG, KT_U64, OFF(FIELD), STR(DEF), .min = 1, .max = MAX, .group = G_LINKS,        \
	  .key = #FIELD, .help = WHAT }

static const struct kl_knob knobs[] = {
	{ "config", KT_STR, OFF(config), ENF_CONFIG_DEFAULT, .group = G_FILES,
	  .help = "kl-enforcer's YAML file (keys: kernloom.yaml(5)); a missing default file means "
		  "built-in values, a missing named file is an error, \"\" reads none." },
	{ "iface", KT_STRS, OFF(ifaces), "", .flags = KF_REPEAT, .group = G_FILES,
	  .key = "interfaces",
	  .help = "Attach the shield to these interfaces (repeatable; replaces the file's list)." },
	{ "obj", KT_STR, OFF(obj), "", .group = G_FILES, .key = "obj",
	  .help = "Load this BPF object instead of the one built into kl-enforcer (its maps and "
		  "settings must be laid out the same). Empty: the built-in one." },
	{ "pin-dir", KT_STR, OFF(pin_dir), KL_PIN_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .key = "pin_dir", .help = "Map and link pins." },
	{ "run-dir", KT_STR, OFF(run_dir), ENF_RUN_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .key = "run_dir",
	  .help = "Root of the role socket directories (klctl: enforcer/enforcer.sock, the decider: "
		  "enforcer/enforcer-decider.sock, graphd: enforcer/enforcer-graphd.sock)." },
	{ "audit-dir", KT_STR, OFF(audit_dir), ENF_AUDIT_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "The audit trail." },
	{ "audit-key", KT_STR, OFF(audit_key), ENF_AUDIT_KEY_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES,
	  .help = "Its Ed25519 signing key, or a directory for audit.key (created at first start)." },
	{ "metrics-file", KT_STR, OFF(metrics_file), "", .group = G_FILES,
	  .help = "Prometheus metrics (node_exporter textfile format), replaced atomically every "
		  "second: requests applied and refused, entries per map, XDP verdict counters. "
		  "Empty: none." },
	USER(user, "user", "user", ENF_USER_DEFAULT,
	     "Started as root, become this user keeping only CAP_BPF, CAP_NET_ADMIN and "
	     "CAP_PERFMON."),
	USER(decider_user, "decider-user", "decider_user", ENF_DECIDER_USER_DEFAULT,
	     "User whose processes may connect as the decider (root and our own uid always may)."),
	USER(graph_user, "graph-user", "graph_user", ENF_GRAPH_USER_DEFAULT,
	     "The same for kl-graphd."),
	USER(sensor_user, "sensor-user", "sensor_user", ENF_SENSOR_USER_DEFAULT,
	     "Its group may read the telemetry pins."),

	{ "xdp-mode", KT_ENUM, OFF(xdp_mode), "auto", .enums = mode_names, .group = G_SHIELD,
	  .key = "xdp_mode", .help = "Attach mode: native, generic, or auto (native, then generic)." },
	{ "features", KT_ENUM, OFF(features), "iq-learning", .enums = feature_names,
	  .group = G_SHIELD, .key = "features",
	  .help = "Feature profile: which telemetry and enforcement the shield runs." },
	{ "protect", KT_CIDRS, OFF(protect), "", .flags = KF_ADD, .group = G_SHIELD,
	  .key = "protect",
	  .help = "Anti-lockout: addresses never denied or rate-limited (requests to do so are "
		  "refused) that bypass every rule in the data plane (repeatable; adds to the file's "
		  "list). The decider and graphd never touch this host's own addresses or loopback "
		  "either." },
	MAP_SIZE(ENF_SZ_SRC, "src", "src", KL_SRC_MAX_DEFAULT, "per-source statistics"),
	MAP_SIZE(ENF_SZ_DENY, "deny", "deny", KL_DENY_MAX_DEFAULT, "exact deny"),
	MAP_SIZE(ENF_SZ_DENY_CIDR, "deny-cidr", "deny_cidr", KL_DENY_LPM_MAX_DEFAULT, "CIDR deny"),
	MAP_SIZE(ENF_SZ_ALLOW, "allow", "allow", KL_ALLOW_MAX_DEFAULT, "allow"),
	MAP_SIZE(ENF_SZ_RL, "rl", "rl", KL_RL_MAX_DEFAULT, "rate-limit override"),
	MAP_SIZE(ENF_SZ_FLOW, "flow", "flow", KL_FLOW_MAX_DEFAULT, "flow telemetry"),
	MAP_SIZE(ENF_SZ_EDGE, "edge", "edge", KL_EDGE_MAX_DEFAULT, "edge rule"),
	{ "ephemeral-min", KT_U64, OFF(ephemeral_min), STR(KL_EPHEMERAL_MIN_DEFAULT), .min = 0,
	  .max = 65535, .group = G_SHIELD, .key = "ephemeral_min",
	  .help = "Destination ports at or above this are folded to port 0 (\"ephemeral\") in flow "
		  "telemetry and edge rules; 0 disables folding." },

	QUOTA(decider_rate, "decider-rate", ENF_QUOTA_RATE_MAX, ENF_DECIDER_RATE_DEFAULT,
	      "Map entries the decider may write per second."),
	QUOTA(decider_max, "decider-max", ENF_QUOTA_MAX_MAX, ENF_DECIDER_MAX_DEFAULT,
	      "Map entries the decider may hold in total (it must fit in the deny and rate-limit "
	      "maps after the operator's reserve)."),
	QUOTA(graph_rate, "graph-rate", ENF_QUOTA_RATE_MAX, ENF_GRAPH_RATE_DEFAULT,
	      "Map entries kl-graphd may write per second."),
	QUOTA(graph_max, "graph-max", ENF_QUOTA_MAX_MAX, ENF_GRAPH_MAX_DEFAULT,
	      "Map entries kl-graphd may hold in total (it must fit in the edge map after the "
	      "operator's reserve)."),
	{ "new-source-min-rate", KT_U64, OFF(newsrc_min_rate), STR(ENF_NEWSRC_MIN_RATE_DEFAULT),
	  .min = 0, .max = ENF_NEWSRC_RATE_MAX, .flags = KF_LIVE, .group = G_LINKS,
	  .key = "new_source_min_rate",
	  .help = "The lowest rate (pps) the decider may set for not-yet-admitted new sources." },
	{ "new-source-max-ttl", KT_U64, OFF(newsrc_max_ttl), STR(ENF_NEWSRC_MAX_TTL_DEFAULT),
	  .min = 0, .max = 86400, .flags = KF_LIVE, .group = G_LINKS, .key = "new_source_max_ttl",
	  .help = "The longest (seconds) one such limit may last; 0: the decider may not set it." },

	{ "force", KT_BOOL, OFF(force), "false", .group = G_RUN,
	  .help = "Replace another XDP program found on an interface." },
	{ "detach-on-exit", KT_BOOL, OFF(detach_on_exit), "false", .group = G_RUN,
	  .help = "Detach and unpin the links on SIGTERM (the maps stay)." },
	{ "log-level", KT_ENUM, OFF(log_level), "info", .enums = kl_log_level_names,
	  .group = G_RUN, .help = "Least severe level logged." },
	{ "config-check", KT_BOOL, OFF(config_check), "false", .group = G_RUN,
	  .help = "(-n) Print the effective configuration and where each value came from; exit 0, "
		  "or 2 naming every bad key." },
};
_Static_assert(sizeof(knobs) / sizeof(knobs[0]) <= KL_KNOB_MAX, "raise KL_KNOB_MAX");

const struct kl_knobset enf_knobs = {
	.prog = "kl-enforcer", .k = knobs, .n = sizeof(knobs) / sizeof(knobs[0]),
	.size = sizeof(struct enf_config),
};

const char *enf_features_name(enum enf_features f)
{
	return (unsigned)f < ENF_FEAT_MAX ? feature_names[f] : "?";
}

bool enf_features_flow(enum enf_features f)
{
	return f == ENF_FEAT_GRAPH_LEARNING || f == ENF_FEAT_GRAPH_ENFORCE;
}

bool enf_features_edge(enum enf_features f)
{
	return f == ENF_FEAT_GRAPH_ENFORCE;
}

const char *enf_xdp_mode_name(enum kl_xdp_mode m)
{
	return (unsigned)m < KL_XDP_MODE_MAX ? mode_names[m] : "?";
}

const char *enf_size_key(enum enf_size s)
{
	return (unsigned)s < ENF_SZ_MAX ? size_keys[s] : "?";
}

static int K(const char *name)
{
	return kl_knob_index(&enf_knobs, name);
}

/* ---- checks the table cannot say ---- */

int enf_check_ifname(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);
	if (n == 0) {
		snprintf(why, len, "empty interface name");
		return -1;
	}
	if (n >= KL_IFNAMSIZ) {
		snprintf(why, len, "interface name \"%s\" is longer than %d characters", s,
			 KL_IFNAMSIZ - 1);
		return -1;
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		snprintf(why, len, "\"%s\" is not an interface name", s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		/* The kernel refuses '/', ':' and whitespace; the name also becomes
		 * part of a pin file name, so keep it to printable ASCII, and
		 * without ',' (--iface a,b lists two). */
		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ':' || ch == ',') {
			snprintf(why, len, "interface name \"%s\" contains an invalid character", s);
			return -1;
		}
	}
	return 0;
}

/* What useradd(8) accepts by default: a letter or '_' first, then
 * letters, digits, '_', '-', '.'; at most 32 characters. */
int enf_check_user(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);
	if (n == 0 || n >= ENF_USER_LEN) {
		snprintf(why, len, "user name \"%s\" must have 1..%d characters", s,
			 ENF_USER_LEN - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool ok = isalpha(ch) || ch == '_' ||
			  (i > 0 && (isdigit(ch) || ch == '-' || ch == '.'));
		if (!ok || ch >= 0x80) {
			snprintf(why, len, "user name \"%s\" has an invalid character at %zu", s, i);
			return -1;
		}
	}
	return 0;
}

uint32_t enf_operator_reserve(uint32_t max_entries)
{
	uint32_t r = max_entries / 16;
	if (r < 1)
		r = 1;
	return r > 4096 ? 4096 : r;
}

static const char *str_at(const struct enf_config *c, int ki)
{
	return *(char *const *)((const char *)c + knobs[ki].off);
}

/* A role's total quota must fit in each map it writes, after the
 * operator's reserve: else the role may fill a map it shares with the
 * operator (graph_max 100000 against a 65536-entry edge map did). */
static void check_quota_fits(const struct enf_config *c, const struct kl_resolved *r,
			     const char *quota, uint64_t q, enum enf_size sz, struct kl_errs *errs)
{
	uint32_t size = (uint32_t)c->map_sizes[sz], reserve = enf_operator_reserve(size);
	char name[32], a[512], b[512];

	if (q <= size - reserve)
		return;
	snprintf(name, sizeof(name), "map-size-%s", size_keys[sz]);
	for (char *p = name; *p; p++)
		if (*p == '_')
			*p = '-';
	kl_where_of(r, K(quota), a, sizeof(a));
	kl_where_of(r, K(name), b, sizeof(b));
	kl_errs_add(errs, "%s does not fit in one map: %s minus the operator's reserve %u leaves %u; "
		    "lower --%s or raise --%s", a, b, reserve, size - reserve, quota, name);
}

size_t enf_config_validate(const struct enf_config *c, const struct kl_resolved *r,
			   struct kl_errs *errs)
{
	static const char *const paths[] = { "config", "obj", "pin-dir", "run-dir", "audit-dir",
					     "audit-key", "metrics-file" };
	static const char *const users[] = { "user", "decider-user", "graph-user", "sensor-user" };
	size_t before = errs->n;
	char at[PATH_MAX + 64], why[160], t[KL_ADDR_STRLEN];

	kl_place_of(r, K("iface"), at, sizeof(at));
	if (c->ifaces.n > ENF_MAX_IFACES)
		kl_errs_add(errs, "%s: more than %d interfaces", at, ENF_MAX_IFACES);
	for (size_t i = 0; i < c->ifaces.n; i++) {
		if (enf_check_ifname(c->ifaces.v[i], why, sizeof(why)) < 0)
			kl_errs_add(errs, "%s: %s", at, why);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->ifaces.v[i], c->ifaces.v[j]) == 0)
				kl_errs_add(errs, "%s: \"%s\" is listed twice", at, c->ifaces.v[i]);
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strlen(str_at(c, K(paths[i]))) >= PATH_MAX - 32) {
			kl_place_of(r, K(paths[i]), at, sizeof(at));
			kl_errs_add(errs, "%s: path is too long", at);
		}
	}
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (enf_check_user(str_at(c, K(users[i])), why, sizeof(why)) < 0) {
			kl_place_of(r, K(users[i]), at, sizeof(at));
			kl_errs_add(errs, "%s: %s", at, why);
		}
	}
	/* The same protected CIDR twice is harmless but almost always a
	 * copy-paste slip between file and flags; say so instead of merging. */
	kl_place_of(r, K("protect"), at, sizeof(at));
	if (c->protect.n > ENF_MAX_PROTECT)
		kl_errs_add(errs, "%s: more than %d entries", at, ENF_MAX_PROTECT);
	for (size_t i = 0; i < c->protect.n; i++)
		for (size_t j = 0; j < i; j++) {
			const struct kl_addr *a = &c->protect.v[i], *b = &c->protect.v[j];
			if (a->family == b->family && a->prefixlen == b->prefixlen &&
			    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0)
				kl_errs_add(errs, "%s: %s is listed twice", at,
					    kl_addr_format(a, t, sizeof(t)));
		}
	/* The decider writes the deny and rate-limit maps, graphd the edge
	 * maps (each per family; one family may take a role's whole quota). */
	check_quota_fits(c, r, "decider-max", c->decider_max, ENF_SZ_DENY, errs);
	check_quota_fits(c, r, "decider-max", c->decider_max, ENF_SZ_RL, errs);
	check_quota_fits(c, r, "graph-max", c->graph_max, ENF_SZ_EDGE, errs);
	return errs->n - before;
}

/* Resolve the layers (highest first) into o and check the result. */
static int finish(struct enf_opts *o, const struct kl_layer *const *order, size_t n,
		  size_t before, struct kl_errs *errs)
{
	kl_resolve(&o->r, order, n, errs);
	if (errs->n == before)
		enf_config_validate(&o->c, &o->r, errs);
	o->c.r = &o->r;
	if (errs->n == before)
		return 0;
	kl_resolved_free(&o->r); /* refused: not half a configuration */
	return -1;
}

static void opts_init(struct enf_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->r.ks = &enf_knobs;
	o->r.v = &o->c;
	o->c.r = &o->r;
}

int enf_config_defaults(struct enf_opts *o)
{
	struct kl_errs errs = { 0 };
	int rc;

	opts_init(o);
	rc = finish(o, NULL, 0, 0, &errs);
	kl_errs_free(&errs);
	return rc;
}

int enf_config_build(struct enf_opts *o, int argc, char *const argv[], struct kl_errs *errs)
{
	struct kl_layer flags, file;
	size_t before = errs->n;
	int rc;

	opts_init(o);
	if (kl_layer_init(&flags, &enf_knobs, KL_L_FLAG, NULL) < 0) {
		kl_layer_free(&flags);
		kl_errs_add(errs, "out of memory");
		return -1;
	}
	kl_cli_parse(&enf_knobs, argc, argv, &flags, &o->action, NULL, NULL, errs);
	if (o->action != KL_CLI_RUN || errs->n > before) {
		kl_layer_free(&flags);
		return errs->n > before ? -1 : 0;
	}
	/* The privileged process reads only a file root, it or its user
	 * owns; no link, FIFO or hard link (common/safefile.h). */
	kl_yaml_layer(&flags, "config", ENF_CONFIG_DEFAULT, KL_L_FILE, NULL, KL_SAFE_OWNED, &file,
		      errs);
	const struct kl_layer *order[] = { &flags, file.ks != NULL ? &file : NULL };
	rc = finish(o, order, 2, before, errs);
	kl_layer_free(&flags);
	kl_layer_free(&file);
	return rc;
}

int enf_config_from_text(struct enf_opts *o, const char *text, size_t len, const char *fname,
			 struct kl_errs *errs)
{
	struct kl_layer file;
	size_t before = errs->n;
	int rc;

	opts_init(o);
	if (kl_layer_init(&file, &enf_knobs, KL_L_FILE, fname) < 0) {
		kl_layer_free(&file);
		kl_errs_add(errs, "out of memory");
		return -1;
	}
	kl_yaml_own_text(text, len, fname, &file, errs);
	const struct kl_layer *order[] = { &file };
	rc = finish(o, order, 1, before, errs);
	kl_layer_free(&file);
	return rc;
}

void enf_opts_free(struct enf_opts *o)
{
	kl_resolved_free(&o->r);
	memset(o, 0, sizeof(*o));
}

bool enf_config_given(const struct enf_config *c, const char *knob)
{
	int ki = K(knob);
	return ki >= 0 && c->r != NULL && c->r->o[ki].kind != KL_L_DEFAULT;
}

void enf_config_origin(const struct enf_config *c, const char *knob, char *buf, size_t len)
{
	int ki = K(knob);
	if (ki < 0 || c->r == NULL)
		snprintf(buf, len, "?");
	else
		kl_origin_format(c->r, ki, buf, len);
}

int enf_config_reload(struct enf_opts *run, int argc, char *const argv[])
{
	static struct enf_opts fresh;
	struct kl_errs errs = { 0 };

	if (enf_config_build(&fresh, argc, argv, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			kl_error("SIGHUP: %s", errs.v[i]);
		kl_error("SIGHUP: configuration refused; keeping the running one");
		kl_errs_free(&errs);
		enf_opts_free(&fresh);
		return -1;
	}
	size_t n = kl_reload_apply(&run->r, &fresh.r);
	enf_opts_free(&fresh);
	kl_info("SIGHUP: configuration reloaded (%zu settings changed)", n);
	return (int)n;
}

void enf_config_print(const struct enf_opts *o, FILE *out)
{
	kl_config_print_table(&o->r, "# kl-enforcer effective configuration\n"
				     "# precedence: flag > file (enforcer.yaml) > default; --protect "
				     "adds to the file's list\n",
			      out);
	/* Always protected from the decider and graphd, list or not: this
	 * host's own interface addresses (re-read while running) and
	 * loopback. With no list, that is all, and the operator should know. */
	if (o->c.protect.n == 0)
		fputs("\n# protect is empty: only this host's own addresses and loopback are "
		      "protected\n# from the decider and graphd; nothing else (not the operator's "
		      "address)\n", out);
	else
		fputs("\n# protected besides the protect list: this host's own addresses and "
		      "loopback\n", out);
}

/* ---- help and reference pages ---- */

static const char usage_text[] =
	"usage: kl-enforcer [--config FILE] [--iface IF]... [--protect CIDR]... [options]\n"
	"       kl-enforcer -n [options]    print the effective configuration and exit\n"
	"       kl-enforcer --help-man | --help-man-file   kl-enforcer(8) | kernloom.yaml(5) "
	"(roff)\n"
	"Loads the Kernloom XDP shield, attaches it to each --iface, keeps its maps pinned\n"
	"under --pin-dir and serves klctl, the decider and graphd each on its own socket\n"
	"under RUN_DIR/enforcer/.\n"
	"Precedence: flag > --config (enforcer.yaml) > default; --protect adds to the file's\n"
	"list. --iface and --protect may be repeated. SIGHUP re-reads the file.\n"
	"Exit status: 0 ok, 1 failure, 2 usage or configuration error.\n";

void enf_usage(FILE *f)
{
	kl_knob_help(&enf_knobs, usage_text, f);
}

static const struct kl_manpage man8 = {
	.name = "kl-enforcer",
	.section = 8,
	.summary = "Kernloom XDP shield loader and the one privileged process",
	.synopsis = ".B kl-enforcer\n.RI [ options ]\n.br\n.B kl-enforcer \\-n\n.RI [ options ]\n",
	.description =
		"Loads the XDP shield over its pinned maps, attaches it to each interface, then "
		"serves klctl, kl\\-decider and kl\\-graphd, each on its own socket, with only "
		"CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON left.\n.PP\nSettings come, lowest "
		"precedence first, from the built\\-in defaults, \\fB\\-\\-config\\fR (keys in "
		"\\fBkernloom.yaml\\fR(5)) and the command line; \\fB\\-\\-protect\\fR adds to "
		"the file's list. SIGHUP re\\-reads the file: a file "
		"with an error keeps the old configuration; settings marked \"Reloaded on SIGHUP\" "
		"change at once, the others are logged as needing a restart (pinned maps keep the "
		"rules across one).",
	.files = ".TP\n.I /etc/kernloom/enforcer.yaml\nkl\\-enforcer's file (\\fB\\-\\-config\\fR; "
		 "the unit passes it).\n.TP\n.I /sys/fs/bpf/kernloom/\nThe pinned maps and links.\n",
	.exit_status = "0 ok, 1 failure, 2 usage or configuration error (every bad key named with "
		       "file, line and key).",
	.see_also = "\\fBkernloom.yaml\\fR(5), \\fBklctl\\fR(8), \\fBkl\\-sensor\\fR(8)",
};

void enf_help_man(FILE *f)
{
	kl_knob_help_man(&enf_knobs, &man8, f);
}

void enf_help_man_file(FILE *f)
{
	static const struct kl_manpage mp = {
		.name = "kernloom.yaml",
		.section = 5,
		.summary = "configuration files of kl-enforcer, kl-sensor and kl-graphd",
	};
	kl_man_page_header(&mp, f);
	fputs(".SH SYNOPSIS\n/etc/kernloom/enforcer.yaml, /etc/kernloom/sensor.yaml, "
	      "/etc/kernloom/graphd.yaml\n.SH DESCRIPTION\nEach file is one YAML mapping of "
	      "settings; every key is optional and a command\\-line flag overrides it. Unknown "
	      "keys, duplicate keys, wrong types and out\\-of\\-range values are refused, each "
	      "named with file, line and key. \\fBBIN \\-n\\fR prints the effective "
	      "configuration with each value's origin. kl\\-graphd also reads spec.graph of the "
	      "PDPConfig (\\fBkernloom\\-pdp\\fR(5)); its own file overrides that. SIGHUP makes "
	      "each daemon read its files again.\n"
	      ".SH ENFORCER.YAML\nLists (interfaces, protect) are YAML sequences; "
	      "\\fB\\-\\-iface\\fR replaces the file's interfaces, \\fB\\-\\-protect\\fR adds to "
	      "its protect list. map_sizes is a mapping.\n",
	      f);
	kl_knob_man_keys(&enf_knobs, KL_KP_OWN, "Keys", "", f);
	/* The other daemons' tables are theirs (each binary links only its own
	 * code): their pages list every key beside its flag. */
	fputs(".SH SENSOR.YAML, GRAPHD.YAML\nThe keys are the flag names with \\(aq_\\(aq for "
	      "\\(aq\\-\\(aq (\\fB\\-\\-graph\\-min\\-seen\\fR is \\fBgraph_min_seen:\\fR); "
	      "\\fBkl\\-sensor\\fR(8) and \\fBkl\\-graphd\\fR(8) name each option's file key, "
	      "its type, range and default, and whether SIGHUP reloads it.\n", f);
	fputs(".SH SEE ALSO\n\\fBkl\\-enforcer\\fR(8), \\fBkl\\-sensor\\fR(8), "
	      "\\fBkl\\-graphd\\fR(8), \\fBkernloom\\-pdp\\fR(5)\n", f);
}
