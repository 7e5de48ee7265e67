/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Autotune (DESIGN §6.5): the decider learns each host's own normal.
 *
 *  - Every tick is classified clean or not by the clean-tick gates. Only a
 *    clean tick advances the *observed clock* and contributes samples; a
 *    tick during an attack neither teaches nor ages the bootstrap.
 *  - From a clean tick, each source that qualifies (OBSERVE, severity <=
 *    learn-max-sev, no rate-limit drops, not exempt unless the learn flags
 *    say so) gives one sample of every feature (pps, syn/s, scan/s, bps)
 *    into a bounded reservoir. Which slot a sample takes is drawn from a
 *    seeded PRNG whose state is persisted, so a replay, or a run with a
 *    restart in it, makes the same choices.
 *  - The reservoir is time-decayed: its acceptance weight decays with the
 *    observed clock (horizon_ms), so its content is an exponentially
 *    weighted sample of roughly the last horizon of clean traffic however
 *    many sources a tick carries (horizon 0: uniform over all of it).
 *  - Tune attempts happen at fixed points of the observed clock: every
 *    phase's interval from the phase's start, plus every phase start. The
 *    phase (1, 2, 3 while bootstrapping, then steady) and k are those of
 *    that point, so tick length and restarts cannot shift the timeline.
 *  - A tune step per feature: target = max(floor, median + k*MAD) (MAD not
 *    scaled), smoothed by the phase's alpha toward the target
 *    (cur + alpha*(target - cur); alpha 0: no smoothing), then the change
 *    capped to [cur*(1-max_down), cur*(1+max_up)].
 *
 * No I/O, no clock, no allocation after autotune_new(): the caller passes
 * time (Unix ms on the tick clock) and the tick's view, and logs what the
 * functions return. state.c persists the whole thing.
 */
#ifndef KL_DECIDER_AUTOTUNE_H
#define KL_DECIDER_AUTOTUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decider/engine.h"

#define AT_NF DEC_F_COUNT

enum at_phase_id { AT_PH1 = 0, AT_PH2, AT_PH3, AT_STEADY, AT_NPHASES };
/* "1", "2", "3", "steady" (as in the log lines and state.json). */
const char *at_phase_name(int phase);
/* Inverse; -1 if unknown. */
int at_phase_parse(const char *s);

/* Interval, caps and smoothing of one phase. */
struct at_phase_cfg {
	int64_t every_ms;    /* > 0 */
	double max_up;       /* relative increase per update, >= 0 */
	double max_down;     /* relative decrease per update, 0..1 */
	double alpha;        /* 0: no smoothing; else 0 < alpha <= 1 */
};

/* Reservoir size when reservoir_cap is 0: max(this, min_samples). */
#define AT_RES_DEFAULT 16384u
#define AT_RES_MAX (1u << 21)

struct at_config {
	bool tune[AT_NF];          /* learn this feature (its trigger is in use) */
	double floor[AT_NF];
	int64_t min_samples;       /* >= 1 */
	uint32_t reservoir_cap;    /* 0: AT_RES_DEFAULT or min_samples, larger */
	int64_t horizon_ms;        /* reservoir memory on the observed clock; 0: all */
	int64_t max_tick_ms;       /* most one tick adds to the observed clock; 0: no cap */
	bool bootstrap;            /* false: always steady */
	int64_t phase1_end_ms, phase2_end_ms, window_ms; /* 0 < p1 <= p2 <= window */
	struct at_phase_cfg ph[AT_NPHASES];
	double k_start, k_final;   /* k over the bootstrap window */
	double k_steady;           /* k after it (or without bootstrap) */
	/* clean-tick gates */
	double learn_sev_gt;       /* a source is high-severity at sev >= this */
	double learn_frac_gt;      /* unclean if the high-severity fraction is above */
	double learn_max_sev;      /* a source qualifies only with sev <= this */
	double learn_max_drop_ratio; /* unclean if drops/pkts above; 0: off */
	bool learn_skip_if_blocks;
	bool whitelist_learn, feedback_learn;
	uint32_t history_max;      /* tune results kept (--state-history) */
	uint64_t seed;             /* of the sampling PRNG (fresh bootstrap only) */
};

/* The built-in defaults (profiles.md): k 4.0 -> 3.5, phases 48h/120h/336h,
 * every 1h/6h/24h then 84h, caps .10/.02 .08/.03 .05/.05 then .05/.05,
 * alpha .10/.15/.20 then .20, floors 100/50/20/0, min-samples 5000, gates
 * 1.0/0.005/0.8/skip-if-blocks/0.02, history 30, horizon 24h, tick cap 0.
 * Features pps, syn, scan are tuned; bps is not (its trigger is off). */
void at_config_defaults(struct at_config *c);
/* Cross-field checks; the message names the flag at fault. */
int at_config_check(const struct at_config *c, char *err, size_t len);
/* The reservoir size c resolves to. */
uint32_t at_config_cap(const struct at_config *c);

/* ---- one tick ---- */

#define AT_SRC_WHITELIST 0x1 /* covered by the whitelist file */
#define AT_SRC_FEEDBACK  0x2 /* covered by a feedback entry (forgive or whitelist) */

struct at_tick_view {
	int64_t elapsed_ms;            /* since the previous tick */
	const struct dec_metrics *m;    /* this tick's sources */
	size_t n;
	const double *sev;             /* n severities (required when n > 0) */
	const uint8_t *level;          /* n engine levels, or NULL: all OBSERVE */
	const uint8_t *flags;          /* n AT_SRC_* sets, or NULL: none */
	size_t n_block;                /* sources the engine holds in BLOCK now */
	bool has_totals;               /* the data plane's totals came with the tick */
	uint64_t pkts, drops;          /* their deltas over the tick */
};

enum at_clean {
	AT_CLEAN = 0,
	AT_DIRTY_BLOCK,    /* a source is in BLOCK (learn-skip-if-blocks) */
	AT_DIRTY_SEV_FRAC, /* too many sources at sev >= learn-sev-gt */
	AT_DIRTY_DROPS,    /* global drop ratio above learn-max-drop-ratio */
	AT_NCLEAN
};
/* "clean", "block", "sev_frac", "drop_ratio". */
const char *at_clean_name(int c);

/* The gates, in the order above (the first that fires is returned).
 * Exempt sources that may not be learned from count in neither side of
 * the high-severity fraction. */
enum at_clean at_tick_clean(const struct at_config *c, const struct at_tick_view *v);
/* May this source's sample be learned from? */
bool at_src_qualifies(const struct at_config *c, unsigned level, double sev, double droprl,
		      unsigned flags);

/* ---- schedule ---- */

/* Phase at a point of the observed clock. */
int at_phase_at(const struct at_config *c, int64_t observed_ms);
/* k at a point: k_start + (k_final - k_start) * t / window in bootstrap. */
double at_k_at(const struct at_config *c, int64_t observed_ms);
/* The first tune point strictly after t. */
int64_t at_next_point(const struct at_config *c, int64_t t);

/* ---- statistics and the step ---- */

/* Median and MAD (median of |x - median|, not scaled) of v[0..n-1], by
 * selection on scratch (n doubles). n == 0 gives 0, 0. The median of an
 * even count is the mean of the two middle values. */
void at_median_mad(const float *v, size_t n, double *scratch, double *median, double *mad);
/* One feature's step from cur. *target gets max(floor, median + k*mad). */
double at_step(double cur, double median, double mad, double k, double floor,
	       const struct at_phase_cfg *ph, double *target);

/* ---- results and log lines ---- */

struct at_feat_result {
	double median, mad, target, from, to;
};

struct at_result {
	int64_t t_ms;           /* tick clock when it ran */
	int64_t observed_ms;    /* the tune point */
	int phase;
	double k;
	uint32_t samples;
	bool applied;           /* false: skipped, see reason */
	bool tuned[AT_NF];      /* features this result covers */
	struct at_feat_result f[AT_NF];
	char reason[64];
};

#define AT_LOGLINE_MAX 320
/* "AUTOTUNE applied: trig_pps A->B trig_syn A->B trig_scan A->B
 * [trig_bps A->B ](median+MAD k=K) samples=N phase=P" (one decimal;
 * trig_bps only when bps is tuned) or
 * "AUTOTUNE skipped: <reason> samples=N phase=P". */
void at_format_result(const struct at_result *r, char *buf, size_t len);

/* ---- the learner ---- */

struct autotune;
struct dec_state;

struct at_triggers {
	double v[AT_NF]; /* pps, syn, scan, bps; 0 = feature off */
};

/* A fresh bootstrap starting now with the given triggers. The config is
 * copied. NULL with err set on a bad config or no memory. */
struct autotune *autotune_new(const struct at_config *c, const struct at_triggers *start,
			      int64_t now_ms, char *err, size_t len);
void autotune_free(struct autotune *at);

/* Feed one tick. Returns its classification. */
enum at_clean autotune_observe_tick(struct autotune *at, const struct at_tick_view *v);

enum at_tune_rc { AT_TUNE_NONE = 0, AT_TUNE_APPLIED = 1, AT_TUNE_SKIPPED = 2 };
/* After autotune_observe_tick: if that tick reached a tune point, run the
 * step. On APPLIED, *io receives the new triggers (all four; untuned ones
 * unchanged) for the engine from the next tick. logline (len bytes,
 * AT_LOGLINE_MAX is enough) receives the AUTOTUNE line, or "" on NONE. */
enum at_tune_rc autotune_maybe_tune(struct autotune *at, int64_t now_ms, struct at_triggers *io,
				    char *logline, size_t len);
/* Make the next autotune_maybe_tune run a step now, at the current
 * observed time (operator request, benchmarks). */
void autotune_force(struct autotune *at);

/* ---- inspection ---- */

struct at_status {
	int phase;
	bool bootstrap;
	int64_t start_ms;          /* bootstrap start, tick clock */
	int64_t observed_ms;       /* clean observed time since then */
	int64_t next_point_ms;     /* next tune point, observed clock */
	double k_now;
	uint32_t samples, cap;
	uint64_t seen;             /* qualifying samples offered, total */
	uint64_t ticks[AT_NCLEAN]; /* ticks by classification */
	struct at_triggers trig;
	const struct at_result *last; /* NULL before the first attempt */
};
void autotune_status(const struct autotune *at, struct at_status *s);
const struct at_config *autotune_config(const struct autotune *at);
/* History, oldest first: *n entries. */
const struct at_result *autotune_history(const struct autotune *at, size_t *n);
/* Reservoir of feature f: *n samples. */
const float *autotune_reservoir(const struct autotune *at, int f, uint32_t *n);

/* ---- persistence (state.c) ---- */

/* Fill st for saving: the profile name is copied (names longer than
 * DEC_STATE_PROFILE_MAX - 1 are cut), history and reservoir are views into
 * at (valid until at changes; do not dec_state_free st). */
void autotune_export(const struct autotune *at, const char *profile, int64_t now_ms,
		     struct dec_state *st);
/* Continue from a loaded state: bootstrap start and seed triggers,
 * observed clock, counters, reservoir and PRNG, history. The triggers stay those at was created
 * with: the caller resolves them (an explicit --trig-* beats the state's
 * active.trig) and passes them to autotune_new. The reservoir is cut to
 * this config's size if that shrank. With restart_bootstrap (see
 * state_restart_reason) only the history is carried over: the bootstrap
 * starts afresh where autotune_new put it. */
void autotune_restore(struct autotune *at, const struct dec_state *st, bool restart_bootstrap);

#endif
