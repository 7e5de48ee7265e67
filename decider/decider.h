/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-decider glue: configuration loading (flags, PDPConfig, PolicyPack with
 * its signature) and the per-tick loop that ties an input, the exemptions,
 * the engine and a sink together. The same dec_run_tick() serves replay
 * now and live telemetry later.
 */
#ifndef KL_DECIDER_DECIDER_H
#define KL_DECIDER_DECIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "decider/audit.h"
#include "decider/engine.h"
#include "decider/exempt.h"
#include "decider/io.h"
#include "decider/knobs.h"

/* Parse argv, load --pdp-config and --policy (verifying the pack's
 * signature when --policy-pubkey is set) and resolve. *policy_canonical
 * (if not NULL) receives the pack's canonical text (free it). Returns 0, or
 * -1 with every problem in errs. For help/version actions cfg is not
 * resolved and 0 is returned. */
int dec_load_config(int argc, char *const argv[], struct dec_config *cfg,
			   enum kl_cli_action *action, char **policy_canonical,
			   struct kl_errs *errs);
/* Parse the whitelist and feedback files as configured (for -n). A missing
 * file at its default path is not an error. */
int dec_check_files(const struct dec_config *cfg, struct kl_errs *errs);

struct dec_decider {
	const struct dec_config *cfg;
	struct dec_engine_params params;
	struct dec_engine *eng;
	struct dec_exempt ex;
	struct dec_sink *sink;
	struct dec_changes ch;
	bool loaded;               /* exemption files read once */
	uint64_t ticks;
	uint64_t changes_total;
	int64_t last_tick_log;
	int64_t next_wl_check, next_fb_check, next_release;
	struct dec_filewatch wl_watch, fb_watch;
	struct kl_cidrs pending;   /* CIDRs to release through the sink */
	struct kl_cidrs approved;  /* sources graphd reported approved, for the next tick */
	bool periodic_reload;      /* live: poll the files; replay: read once */
	/* autotune (NULL when --autotune=false) and its state.json */
	struct autotune *at;
	const char *state_path;    /* NULL: not persisted */
	int64_t next_checkpoint;
	int64_t last_t;            /* tick clock of the last tick (DEC_T_NEVER before) */
	double *at_sev;            /* per-tick scratch for autotune's view */
	uint8_t *at_level, *at_flags;
	size_t at_cap;
	/* per-source baselines (NULL with --baseline=false) and their file */
	struct dec_baselines *bl;
	char *bl_path;             /* NULL: not persisted (malloc'd) */
	int64_t next_bl_save;
	struct dec_audit *audit; /* receipts (live mode); NULL: none */
};

int dec_init(struct dec_decider *d, const struct dec_config *cfg, struct dec_sink *sink,
		    uint64_t seed, bool periodic_reload);
void dec_free(struct dec_decider *d);

/* graphd reported `a` approved by the operator: at the next tick it goes
 * back to OBSERVE (its enforcer entries removed) whatever its level and
 * TTL. Returns 0, or -1 when memory ran out. */
#define DEC_APPROVED_MAX 4096
int dec_approved(struct dec_decider *d, const struct kl_addr *a);

/* Read the exemption files now. force: even if unchanged. initial: errors
 * are fatal (startup); later they keep the previous content and warn. */
int dec_reload_exemptions(struct dec_decider *d, int64_t now, bool force, bool initial,
				 struct kl_errs *errs);

/* Read the exemption files for the first time (errors are fatal) with
 * `now` as their load time. dec_run_tick does it on the first tick when
 * nobody called this before (replay). */
int dec_start(struct dec_decider *d, int64_t now, struct kl_errs *errs);

/* Write state.json now (after an applied tune, every 10 minutes, on exit).
 * why goes into the log line. Does nothing without autotune or a state
 * file. Returns 0 or -1 (logged). */
int dec_checkpoint(struct dec_decider *d, int64_t now, const char *why);

/* Turn the decider's configuration into autotune's (exposed for tests).
 * Problems found by at_config_check are added to errs. */
struct at_config;
int dec_at_config(const struct dec_config *cfg, struct at_config *ac,
			 struct kl_errs *errs);

/* One tick: exemption updates, engine, sink, CIDR releases, TICK log. */
int dec_run_tick(struct dec_decider *d, struct dec_tick *t, struct kl_errs *errs);
/* The engine's metrics for --metrics-file (common/prom.h). */
struct kl_prom;
void dec_prom(const struct dec_decider *d, struct kl_prom *p);

/* Run every tick of in. Returns 0 or -1 (errors in errs). */
int dec_replay(struct dec_decider *d, struct dec_input *in, struct kl_errs *errs);

/* `kl-decider --replay`: returns the exit code. */
int dec_run_replay(const struct dec_config *cfg);

/* `kl-decider` without --replay: telemetry in, decisions to the enforcer
 * (live.c). Returns the exit code. */
/* argv is parsed again on SIGHUP (live settings: kl-decider --help-man). */
int dec_run_live(struct dec_config *cfg, int argc, char **argv);
/* The configuration's live settings changed: the engine takes them from
 * the next tick, keeping its current (tuned) triggers. */
void dec_config_changed(struct dec_decider *d);

/* Async-signal-safe: SIGUSR1 handler body. The next tick reloads both
 * exemption files and releases whatever they now cover. */
void dec_request_reload(void);

#endif
