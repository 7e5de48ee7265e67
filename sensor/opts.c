/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor's settings: the knob table, sensor.yaml and the command line. */
#include <string.h>

#include "bpf/shield.h"
#include "common/kyaml.h"
#include "common/log.h"
#include "harvest/harvest.h"
#include "sensor/sensor.h"

#define OFF(f) offsetof(struct sen_cfg, f)
#define G_FILES "Files, sockets and privileges"
#define G_RUN "Runtime"

static const struct kl_knob knobs[] = {
	{ "config", KT_STR, OFF(config), SEN_CONFIG_DEFAULT, .group = G_FILES,
	  .help = "kl-sensor's YAML file (keys: the flag names with '_'); a missing default file "
		  "means built-in values, a missing named file is an error." },
	{ "run-dir", KT_STR, OFF(run_dir), SEN_RUN_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "Root of the role socket directories.", .key = "run_dir" },
	{ "pin-dir", KT_STR, OFF(pin_dir), KL_PIN_DIR_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "The enforcer's pins.", .key = "pin_dir" },
	{ "user", KT_STR, OFF(user), SEN_USER_DEFAULT, .flags = KF_NONEMPTY,
	  .group = G_FILES, .help = "User to become when started as root.", .key = "user" },
	{ "record", KT_STR, OFF(record), "", .group = G_FILES,
	  .help = "Append every frame to this trace file (klctl trace dump FILE). Empty: none.",
	  .key = "record" },
	{ "metrics-file", KT_STR, OFF(metrics_file), "", .group = G_FILES,
	  .help = "Rewrite this file every tick with Prometheus metrics (textfile format). "
		  "Empty: none.", .key = "metrics_file" },
	{ "audit-dir", KT_STR, OFF(audit_dir), "/var/log/kernloom/sensor", .group = G_FILES,
	  .help = "Audit trail (empty: off).", .key = "audit_dir" },
	{ "audit-key", KT_STR, OFF(audit_key), "/var/lib/kernloom/sensor/audit.key",
	  .flags = KF_NONEMPTY, .group = G_FILES,
	  .help = "Its Ed25519 key (a file, or a directory for audit.key).", .key = "audit_key" },

	{ "interval", KT_DUR, OFF(interval), "1s", .min = 0.01, .max = 3600, .group = G_RUN,
	  .help = "Tick length.", .key = "interval" },
	{ "prev-ttl", KT_DUR, OFF(prev_ttl), "10m", .min = 0, .max = 30 * 86400.0, .group = G_RUN,
	  .help = "Forget sources gone from the maps this long (at least one interval).",
	  .key = "prev_ttl" },
	{ "reacquire-every", KT_INT, OFF(reacquire_every), "10", .min = 1, .max = 1000000,
	  .flags = KF_LIVE, .group = G_RUN, .help = "Ticks between checks for re-created maps.",
	  .key = "reacquire_every" },
	{ "sync-every", KT_INT, OFF(sync_every), "1", .min = 0, .max = 1000000, .flags = KF_LIVE,
	  .group = G_RUN, .help = "Ticks between fdatasync of the trace (0 = at exit).",
	  .key = "sync_every" },
	{ "summary-every", KT_INT, OFF(summary_every), "10", .min = 0, .max = 1000000,
	  .flags = KF_LIVE, .group = G_RUN, .help = "Ticks between TICK# log lines (0 = never).",
	  .key = "summary_every" },
	{ "ticks", KT_U64, OFF(ticks), "0", .group = G_RUN,
	  .help = "Stop after N ticks (0 = until SIGTERM/SIGINT)." },
	KL_KNOB_LOG_LEVEL(OFF(log_level), G_RUN),
	KL_KNOB_CONFIG_CHECK(OFF(config_check), G_RUN),
};

const struct kl_knobset sen_knobs = {
	.prog = "kl-sensor", .k = knobs, .n = sizeof(knobs) / sizeof(knobs[0]),
	.size = sizeof(struct sen_cfg),
};

void sen_usage(FILE *f)
{
	kl_knob_help(&sen_knobs,
		     "usage: kl-sensor [--config FILE] [options]\n"
		     "       kl-sensor -n [options]    print the effective configuration and exit\n"
		     "       kl-sensor --help-man      kl-sensor(8) (roff; --help-markdown: the options)\n"
		     "Reads the shield's telemetry maps read-only once per tick and sends per-source "
		     "rates\nto kl-decider (RUN_DIR/decider/telemetry.sock) and flow deltas to "
		     "kl-graphd\n(RUN_DIR/graphd/flows.sock).\n"
		     "Started as root it opens the pins, then becomes --user with no capabilities.\n"
		     "Precedence: flag > --config (sensor.yaml) > default. SIGHUP re-reads the file.\n"
		     "Exit status: 0 ok, 1 failure, 2 usage or configuration error.\n",
		     f);
}

static const struct kl_manpage man8 = {
	.name = "kl-sensor",
	.section = 8,
	.summary = "Kernloom telemetry harvest without privileges",
	.synopsis = ".B kl-sensor\n.RI [ options ]\n.br\n.B kl-sensor \\-n\n.RI [ options ]\n",
	.description =
		"Reads the shield's telemetry maps read\\-only once per tick and sends per\\-source "
		"rates to kl\\-decider and flow deltas to kl\\-graphd. Started as root it opens the "
		"pins, then becomes \\fB\\-\\-user\\fR with no capabilities.\n.PP\nSettings come, "
		"lowest precedence first, from the built\\-in defaults, \\fB\\-\\-config\\fR (keys as in "
		"\\fBkernloom.yaml\\fR(5)) and the command line. SIGHUP re\\-reads the file: a file "
		"with an error keeps the old configuration; settings marked \"Reloaded on SIGHUP\" "
		"change at once, the others are logged as needing a restart.",
	.files = ".TP\n.I /etc/kernloom/sensor.yaml\nkl\\-sensor's file (\\fB\\-\\-config\\fR).\n",
	.exit_status = "0 ok, 1 failure, 2 usage or configuration error (every bad key named with "
		       "file, line and key).",
	.see_also = "\\fBkernloom.yaml\\fR(5), \\fBkl\\-enforcer\\fR(8), \\fBkl\\-decider\\fR(8)",
};

void sen_help_man(FILE *f)
{
	kl_knob_help_man(&sen_knobs, &man8, f);
}

static void fill(struct sen_opts *o)
{
	const struct sen_cfg *c = &o->c;

	o->run_dir = c->run_dir;
	o->pin_dir = c->pin_dir;
	o->user = c->user;
	o->record = kl_knob_str_or_null(c->record);
	o->metrics_file = kl_knob_str_or_null(c->metrics_file);
	o->audit_dir = c->audit_dir;
	o->audit_key = c->audit_key;
	o->interval_ns = (uint64_t)c->interval;
	o->prev_ttl_ns = (uint64_t)c->prev_ttl;
	o->reacquire_every = (unsigned)c->reacquire_every;
	o->sync_every = (unsigned)c->sync_every;
	o->summary_every = (unsigned)c->summary_every;
	o->max_ticks = (uint64_t)c->ticks;
	o->log_level = c->log_level;
}

int sen_parse(int argc, char **argv, struct sen_opts *o, struct kl_errs *errs)
{
	struct kl_layer flags, file;
	size_t before = errs->n;

	memset(o, 0, sizeof(*o));
	o->r.ks = &sen_knobs;
	o->r.v = &o->c;
	int go = kl_cli_layer(&sen_knobs, argc, argv, &flags, &o->action, NULL, NULL, errs);
	if (go <= 0)
		return go;
	kl_yaml_layer(&flags, "config", SEN_CONFIG_DEFAULT, KL_L_FILE, NULL, 0, &file, errs);
	const struct kl_layer *order[] = { &flags, file.ks != NULL ? &file : NULL };
	kl_resolve(&o->r, order, 2, errs);
	kl_layer_free(&flags);
	kl_layer_free(&file);
	if (errs->n == before && o->c.prev_ttl < o->c.interval) {
		char a[320], b[320];
		kl_where_of(&o->r, kl_knob_index(&sen_knobs, "prev-ttl"), a, sizeof(a));
		kl_where_of(&o->r, kl_knob_index(&sen_knobs, "interval"), b, sizeof(b));
		kl_errs_add(errs, "%s must be at least one interval, %s", a, b);
	}
	if (errs->n > before) {
		sen_opts_free(o);
		return -1;
	}
	fill(o);
	return 0;
}

int sen_reload(struct sen_opts *o, int argc, char **argv)
{
	struct sen_opts fresh;
	struct kl_errs errs = { 0 };

	if (sen_parse(argc, argv, &fresh, &errs) < 0) {
		kl_reload_refused(&errs);
		kl_errs_free(&errs);
		return -1;
	}
	size_t n = kl_reload_apply(&o->r, &fresh.r);
	sen_opts_free(&fresh);
	fill(o);
	kl_reload_done(n);
	return 0;
}

void sen_print(const struct sen_opts *o, FILE *f)
{
	kl_config_print_table(&o->r, "# kl-sensor effective configuration\n"
				     "# precedence: flag > file (sensor.yaml) > default\n",
			      f);
}

void sen_opts_free(struct sen_opts *o)
{
	kl_resolved_free(&o->r);
	memset(o, 0, sizeof(*o));
}
