/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The knob table: one row per setting of kl-decider (name, type, default,
 * profile column, PDPConfig / PolicyPack YAML paths, range, help). It drives
 * the command-line parser, the YAML loaders, --help / --help-markdown and
 * --config-check (through common/knob.h), so they can never disagree.
 *
 * Values arrive in layers and are merged per knob with the precedence
 *   explicit flag > PDPConfig > PolicyPack > persisted state (tuned
 *   triggers) > profile > built-in default.
 * A flag given with its "use profile" sentinel (0, NaN, -1: see the seeds)
 * counts as not given.
 */
#ifndef KL_DECIDER_KNOBS_H
#define KL_DECIDER_KNOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/knob.h"
#include "common/log.h"
#include "decider/engine.h"

/* The PDPConfig both kl-decider and kl-graphd read by default (DESIGN §9);
 * when this default is missing the built-in values apply. */
#define DEC_PDP_DEFAULT "/etc/kernloom/pdp.yaml"

/* Profile columns (profiles.md). 0 = the knob has none. */
enum dec_pcol {
	PC_NONE = 0,
	PC_TRIG_PPS, PC_TRIG_SYN, PC_TRIG_SCAN, PC_TRIG_BPS,
	PC_W_PPS, PC_W_SYN, PC_W_SCAN, PC_W_BPS, PC_SEV_CAP,
	PC_SOFT_AT, PC_HARD_AT, PC_BLOCK_AT,
	PC_SOFT_TTL, PC_HARD_TTL, PC_BLOCK_TTL,
	PC_GATE_SEV, PC_GATE_DUR,
	PC_UP_NEED, PC_DOWN_NEED, PC_HOLD_SOFT, PC_HOLD_HARD,
	PC_NC_AT, PC_NC_DROP, PC_NC_SEV, PC_NC_RESET,
	PC_COOLDOWN, PC_SOFT_RATE, PC_SOFT_BURST, PC_HARD_RATE, PC_HARD_BURST,
	PC_COUNT
};

struct dec_profile {
	const char *name;
	const char *summary;
	const char *v[PC_COUNT]; /* text in the knob's own syntax */
};

/* Built-in profiles; *n set to their count. */
const struct dec_profile *dec_profiles(size_t *n);
/* By name or alias (router, controller, internal); NULL if unknown. */
const struct dec_profile *dec_profile_find(const char *name);
/* "generic, ziti-router, ..." for error messages. */
const char *dec_profile_names(void);

/* Enumerations. Action values are engine levels. */
extern const char *const dec_action_names[];    /* observe rate_limit rate_limit_hard block */
extern const char *const dec_graph_mode_names[]; /* learn frozen-observe frozen-enforce */

/* Every setting, resolved. */
struct dec_dcfg {
	/* core runtime */
	int64_t interval;
	int64_t top;
	double min_pps, min_sev;
	bool dry_run;
	int log_level;
	int64_t tick_log_every;
	/* profile, persistence, files, privileges */
	char *profile;
	char *state_file;
	int64_t max_state_age;
	int64_t state_history;
	char *pdp_config, *policy, *policy_pubkey;
	char *run_dir, *user, *sensor_user, *graph_user;
	int64_t sensor_max_sources;
	char *audit_dir, *audit_key;
	char *metrics_file; /* --metrics-file: Prometheus textfile, "" = none */
	/* replay and one-shot modes */
	char *replay;
	bool decisions_json, config_check, policy_canonical;
	/* whitelist and feedback */
	char *whitelist;
	int64_t whitelist_reload;
	bool whitelist_learn;
	char *feedback_file;
	int64_t feedback_reload;
	bool feedback_learn, feedback_deenforce_cidr;
	int64_t feedback_cidr_every;
	int64_t feedback_cidr_max;
	/* bootstrap */
	bool bootstrap;
	int64_t bootstrap_window, bootstrap_phase1_end, bootstrap_phase2_end;
	int64_t bootstrap_every[3], steady_every;
	double bootstrap_k_start, bootstrap_k_final;
	double bootstrap_max_up[3], bootstrap_max_down[3], bootstrap_alpha[3];
	/* autotune */
	bool autotune;
	int64_t autotune_every;
	int64_t autotune_min_samples;
	double autotune_k, autotune_max_change, autotune_max_change_up, autotune_max_change_down;
	double autotune_alpha;
	double autotune_floor[DEC_F_COUNT];
	/* clean-tick gates */
	double learn_sev_gt, learn_frac_gt, learn_max_sev;
	bool learn_skip_if_blocks;
	double learn_max_drop_ratio;
	/* severity */
	double trig[DEC_F_COUNT], w[DEC_F_COUNT], sev_cap;
	double sev_step[3];
	int64_t sev_delta[3];
	double sev_decay_below;
	/* levels and actions */
	int64_t soft_at, hard_at, block_at;
	uint64_t soft_rate, soft_burst, hard_rate, hard_burst;
	int64_t soft_ttl, hard_ttl, block_ttl, cooldown;
	double soft_rate_factor, hard_rate_factor;
	double block_min_sev;
	int64_t block_min_dur;
	int64_t up_need, down_need, min_hold_soft, min_hold_hard;
	int64_t noncomp_at;
	double noncomp_drop, noncomp_sev, noncomp_reset_below;
	int64_t prev_ttl, state_ttl;
	/* spoofed floods (decider/newsrc.h) */
	double new_source_trigger;
	int64_t new_source_rate, new_source_burst, new_source_ttl;
	/* policy */
	int max_action;
	bool allow_local_block;
	int soft_action, hard_action, block_action;
	/* graph (PDPConfig spec.graph; graphd uses most of it) */
	bool graph_enabled;
	int graph_mode;
	char *graph_store;
	int64_t graph_min_seen, graph_min_windows;
	int64_t graph_min_age, graph_expire_ttl;
	int graph_freeze_max_action;
	bool graph_freeze_allow_block;
	double graph_freeze_min_sev;
	bool graph_exclude_broadcast, graph_exclude_loopback;
	struct kl_cidrs graph_exclude_cidrs;
	/* per-source baselines (baseline.h) */
	bool baseline;
	char *baseline_file;
	double baseline_min_pps, baseline_relevant;
	int64_t baseline_promote_after, baseline_stable_after;
	double baseline_alpha_young, baseline_alpha_stable;
	double baseline_tolerance, baseline_min_confidence;
	int64_t baseline_halflife, baseline_hold, baseline_ttl;
	int64_t baseline_max_sources;
};

/* The decider's table (PDPConfig and PolicyPack paths, profile columns). */
extern const struct kl_knobset dec_knobset;
const struct kl_knob *dec_knobs(size_t *n);

/* Persisted state: tuned triggers (0 = none) -> state layer. */
void dec_layer_from_tuned(struct kl_layer *L, const double trig[DEC_F_COUNT], const char *file);

/* The resolved settings; r holds each value's origin (r.v == &v, so a
 * dec_config is never copied by value). */
struct dec_config {
	struct dec_dcfg v;
	struct kl_resolved r;
	const struct dec_profile *profile;
};

/* Merge the layers (any may be NULL) by precedence, apply the profile named
 * by the result, check cross-field rules. Returns 0, or -1 with every
 * problem added to errs (each naming where its values came from). */
int dec_config_resolve(struct dec_config *c, const struct kl_layer *flag,
		      const struct kl_layer *pdp, const struct kl_layer *policy,
		      const struct kl_layer *state, struct kl_errs *errs);
void dec_config_free(struct dec_config *c);

/* --config-check output: every knob, value, origin. */
void dec_config_print(const struct dec_config *c, FILE *f);
void dec_help(FILE *f, const char *prog);
void dec_help_markdown(FILE *f);
/* kl-decider(8) and kernloom-pdp(5). */
void dec_help_man(FILE *f);
void dec_help_man_file(FILE *f);

/* The engine's view of the configuration. */
void dec_engine_params_from_config(const struct dec_dcfg *v, struct dec_engine_params *p);
/* The baselines' view (decider/baseline.h). */
struct dec_bl_params;
void dec_bl_params_from_config(const struct dec_dcfg *v, struct dec_bl_params *bp);

#endif
