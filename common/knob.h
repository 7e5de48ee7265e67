/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Knob tables: one row per setting of a daemon (name, type, default, YAML
 * paths, range, help). One table drives the command-line parser, the YAML
 * loaders (common/kyaml.h), -n (the effective configuration with each
 * value's origin), --help, --help-markdown and --help-man, so none of them
 * can disagree with another. Every daemon describes its settings with a
 * table; this file holds everything that works on any table.
 *
 * Values arrive in layers (built-in default, profile, files, flags) and are
 * merged per knob, the caller giving the order: built-in < profile < file
 * < flag. A flag or file value equal to the knob's "use profile" sentinel
 * counts as not given.
 */
#ifndef KL_COMMON_KNOB_H
#define KL_COMMON_KNOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"

#define KL_KNOB_MAX 192

/* Exit status of every daemon whose command line or configuration is
 * refused (a usage error and a bad file are the same mistake: the
 * operator's input); 1 stays "failed while running". */
#define KL_EXIT_CONFIG 2

enum kl_ktype {
	KT_BOOL,  /* bool */
	KT_INT,   /* int64_t */
	KT_U64,   /* uint64_t */
	KT_FLOAT, /* double */
	KT_DUR,   /* int64_t nanoseconds (-1 only as a sentinel) */
	KT_STR,   /* char * (owned, never NULL after resolution) */
	KT_ENUM,  /* int: index into knob->enums */
	KT_CIDRS, /* struct kl_cidrs */
	KT_STRS,  /* struct kl_strs: a list of strings (names) */
};

struct kl_cidrs {
	struct kl_addr *v;
	size_t n;
};

/* A list of strings; each item free of control characters. */
struct kl_strs {
	char **v;
	size_t n;
};

#define KF_EXCL_MIN 0x1  /* range minimum is exclusive */
#define KF_NOCLI    0x2  /* not a command-line flag */
#define KF_LIVE     0x4  /* a reload (SIGHUP) applies a new value at once */
#define KF_NONEMPTY 0x8  /* KT_STR: the empty string is refused */
/* A list (KT_CIDRS, KT_STRS) that adds up: the flag may be repeated, and
 * the value is the items of every layer that sets it, lowest first, so a
 * flag extends the file's list instead of replacing it. */
#define KF_ADD      0x10
/* A list whose flag may be repeated, each adding items; a higher layer
 * still replaces a lower one's list. */
#define KF_REPEAT   0x20

struct kl_knob {
	const char *name;        /* flag name without "--" */
	enum kl_ktype type;
	size_t off;              /* in the daemon's settings struct */
	const char *def;         /* built-in default, in the flag syntax */
	const char *sentinel;    /* "use profile/state" value, or NULL */
	int pcol;                /* profile column (the decider's), 0 = none */
	bool tuned;              /* autotune may persist a value in state.json */
	const char *pdp;         /* path under PDPConfig spec., or NULL */
	const char *pol;         /* path under PolicyPack spec., or NULL */
	double min, max;         /* range when max > min */
	unsigned flags;          /* KF_* */
	const char *const *enums;
	const char *group;
	const char *help;
	const char *key;         /* path in the daemon's own file (sensor.yaml...) */
};

/* Which YAML path of a knob a document uses. */
enum kl_kpath { KL_KP_PDP, KL_KP_POL, KL_KP_OWN };

/* A daemon's table and the struct its rows point into. */
struct kl_knobset {
	const char *prog;        /* "kl-sensor" */
	const struct kl_knob *k;
	size_t n;
	size_t size;             /* sizeof the settings struct */
};

/* Rows every daemon's table has, written once (their group and the
 * offset into the daemon's struct differ). */
#define KL_KNOB_LOG_LEVEL(offset, grp)                                                       \
	{ "log-level", KT_ENUM, (offset), "info", .enums = kl_log_level_names,                \
	  .flags = KF_LIVE, .group = (grp), .help = "Least severe level logged.",             \
	  .key = "log_level" }
#define KL_KNOB_CONFIG_CHECK(offset, grp)                                                    \
	{ "config-check", KT_BOOL, (offset), "false", .group = (grp),                         \
	  .help = "(-n) Print the effective configuration and where each value came from; "   \
		  "exit 0, or 2 naming every bad key." }

const char *kl_knob_path(const struct kl_knob *k, enum kl_kpath p);
/* Index of the knob with this flag name, or -1. */
int kl_knob_index(const struct kl_knobset *ks, const char *name);
/* Index of the knob at this YAML path, or -1. */
int kl_knob_by_path(const struct kl_knobset *ks, const char *path, enum kl_kpath p);
/* True if path is a mapping on the way to some knob's path. */
bool kl_knob_path_prefix(const struct kl_knobset *ks, const char *path, enum kl_kpath p);

/* Error list: every problem is collected so a run names them all; each
 * message names its place ("FILE:LINE: key: why" or "--flag: why"). */
struct kl_errs {
	char **v;
	size_t n;
};
void kl_errs_add(struct kl_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kl_errs_print(const struct kl_errs *e, FILE *f);
/* Each error on its own line, prefixed "PROG: " (the daemons' stderr form). */
void kl_errs_print_prog(const struct kl_errs *e, const char *prog, FILE *f);
void kl_errs_free(struct kl_errs *e);
/* Untrusted text for a message: printable ASCII, at most 64 bytes. */
const char *kl_printable(const char *s, char *buf, size_t len);
const char *kl_printable_n(const char *s, size_t n, char *buf, size_t len);
/* An empty string setting means "none". */
static inline const char *kl_knob_str_or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}
/* A string as a YAML scalar that reads back as the same string (quoted
 * and escaped when it must be); each input byte takes at most 4 bytes. */
void kl_yaml_scalar(const char *s, char *buf, size_t len);

/* Layer kinds, lowest precedence first. KL_L_FILE is the daemon's own
 * file (sensor.yaml, graphd.yaml). */
enum kl_layer_kind {
	KL_L_DEFAULT = 0, KL_L_PROFILE, KL_L_STATE, KL_L_POLICY, KL_L_PDP, KL_L_FILE, KL_L_FLAG,
	KL_L_COUNT
};

/* One source of values. set[i] says knob i has a value here; line[i] is
 * its line in `file` (file layers). v is a settings struct of ks->size. */
struct kl_layer {
	const struct kl_knobset *ks;
	enum kl_layer_kind kind;
	char *file;
	void *v;
	uint8_t set[KL_KNOB_MAX];
	int line[KL_KNOB_MAX];
};

/* 0, or -1 when out of memory. */
int kl_layer_init(struct kl_layer *L, const struct kl_knobset *ks, enum kl_layer_kind kind,
		  const char *file);
void kl_layer_free(struct kl_layer *L);

/* Parse text as knob ki's value, check its range and store it in L.
 * `where` prefixes error messages ("file:12: spec.x.y" or "--trig-pps").
 * A sentinel value leaves the knob unset (for flags and files alike)
 * unless allow_sentinel. Returns 0 or -1 (error added). */
int kl_layer_set(struct kl_layer *L, int ki, const char *text, int line,
		 const char *where, bool allow_sentinel, struct kl_errs *errs);
/* A list knob (KT_CIDRS, KT_STRS) from its items; with KF_ADD or
 * KF_REPEAT a layer that has the knob already appends them. */
int kl_layer_set_cidrs(struct kl_layer *L, int ki, const char *const *items, size_t n,
		       int line, const char *where, struct kl_errs *errs);
int kl_layer_set_list(struct kl_layer *L, int ki, const char *const *items, size_t n,
		      int line, const char *where, struct kl_errs *errs);
/* Store a KT_FLOAT value that needs no parsing (persisted state). */
void kl_layer_set_float(struct kl_layer *L, int ki, double v);

/* What the command line asks for besides settings. */
enum kl_cli_action {
	KL_CLI_RUN = 0, KL_CLI_HELP, KL_CLI_HELP_MD, KL_CLI_HELP_MAN, KL_CLI_HELP_MAN_FILE,
	KL_CLI_VERSION
};

/* Arguments that are not knob flags (commands, their flags, positional
 * arguments) go to `other` when set: it consumes argv[*i] (and may advance
 * *i past values) and returns 0, or returns -1 having added an error. */
typedef int (*kl_cli_other_fn)(void *ctx, int argc, char *const argv[], int *i,
			       struct kl_errs *errs);

/* argv -> flag layer. Booleans: --x, --x=true|false; others --x V or --x=V.
 * -n is --config-check when the table has it, -h --help. Returns 0 or -1
 * with errors added. */
int kl_cli_parse(const struct kl_knobset *ks, int argc, char *const argv[],
		 struct kl_layer *flags, enum kl_cli_action *action, kl_cli_other_fn other,
		 void *ctx, struct kl_errs *errs);
/* kl_cli_parse into a fresh flag layer, for a daemon that runs only on
 * a clean command line: 1 to go on (load the files under it), 0 for an
 * action other than running (--help...), -1 with errors added; flags is
 * freed unless 1 is returned. */
int kl_cli_layer(const struct kl_knobset *ks, int argc, char *const argv[],
		 struct kl_layer *flags, enum kl_cli_action *action, kl_cli_other_fn other,
		 void *ctx, struct kl_errs *errs);

struct kl_knob_origin {
	uint8_t kind;      /* enum kl_layer_kind */
	int line;
	const char *file;  /* points into the resolved config's files[] */
	/* KF_ADD: the next lower layer whose items are in the value too
	 * (KL_L_DEFAULT: none). */
	uint8_t also_kind;
	int also_line;
	const char *also_file;
};

/* A resolved configuration: v is the daemon's settings struct. */
struct kl_resolved {
	const struct kl_knobset *ks;
	void *v;
	struct kl_knob_origin o[KL_KNOB_MAX];
	const char *profile;       /* name for "profile NAME" origins, or NULL */
	char *files[KL_L_COUNT];
};

/* Merge the layers (order: highest precedence first, NULLs skipped; the
 * built-in defaults are added below them) into r->v, which the caller
 * points at a zeroed settings struct. Returns 0, or -1 with errors added. */
int kl_resolve(struct kl_resolved *r, const struct kl_layer *const *order, size_t n,
	       struct kl_errs *errs);
/* Frees the knob-owned members of r->v (not r->v itself) and the names. */
void kl_resolved_free(struct kl_resolved *r);

/* "flag --x", "pdp FILE:LINE", "file FILE:LINE", "profile NAME", "default". */
void kl_origin_format(const struct kl_resolved *r, int ki, char *buf, size_t len);
/* Where knob ki's value was set, as a message prefix: "FILE:LINE: key"
 * (the file's key path), "--flag", or "built-in --flag". */
void kl_place_of(const struct kl_resolved *r, int ki, char *buf, size_t len);
/* Value of knob ki in v, in the flag syntax; a string that YAML would read
 * as something else (empty, a null word, leading specials) is quoted. */
void kl_value_format(const struct kl_knobset *ks, const void *v, int ki, char *buf, size_t len);
/* "name=value (origin)" for cross-field messages. */
void kl_where_of(const struct kl_resolved *r, int ki, char *buf, size_t len);

/* A reload (SIGHUP): fresh was resolved again from the same flags and
 * files, and validated. Each KF_LIVE knob that changed takes fresh's value
 * in run (logged); any other change is logged as needing a restart and
 * run keeps its value. Returns the number of live changes. */
size_t kl_reload_apply(struct kl_resolved *run, const struct kl_resolved *fresh);
/* The SIGHUP outcome as every daemon logs it: each error of a refused
 * configuration (the running one stays), or how many live settings
 * changed. */
void kl_reload_refused(const struct kl_errs *errs);
void kl_reload_done(size_t changed);

/* -n: header lines, then every knob by group: name, value, origin. */
void kl_config_print_table(const struct kl_resolved *r, const char *header, FILE *f);

/* Help generated from the table. usage: the lines before the flag list. */
void kl_knob_help(const struct kl_knobset *ks, const char *usage, FILE *f);
void kl_knob_help_markdown(const struct kl_knobset *ks, FILE *f);

/* The pieces of a man page the table cannot say. */
struct kl_manpage {
	const char *name;         /* "kl-sensor" */
	int section;              /* 8 */
	const char *summary;      /* NAME line after the dash */
	const char *synopsis;     /* roff text */
	const char *description;  /* roff text */
	const char *files;        /* roff text, or NULL */
	const char *exit_status;  /* roff text */
	const char *see_also;     /* roff text, or NULL */
};
/* A section-8 page: OPTIONS from the table. */
void kl_knob_help_man(const struct kl_knobset *ks, const struct kl_manpage *mp, FILE *f);
/* Keys of one file format (path p of each knob) as a roff .SS section. */
void kl_knob_man_keys(const struct kl_knobset *ks, enum kl_kpath p, const char *title,
		      const char *prefix, FILE *f);
/* .TH and NAME (common/man.h) for a hand-assembled page. */
void kl_man_page_header(const struct kl_manpage *mp, FILE *f);

#endif
