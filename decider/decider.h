/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-decider glue: configuration loading (flags, PDPConfig, PolicyPack with
 * its signature) and the per-tick loop that ties an input, the exemptions,
 * the engine and a sink together. The same kl_decider_tick() serves replay
 * now and live telemetry later.
 */
#ifndef KL_DECIDER_DECIDER_H
#define KL_DECIDER_DECIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "decider/engine.h"
#include "decider/exempt.h"
#include "decider/io.h"
#include "decider/knobs.h"

/* Parse argv, load --pdp-config and --policy (verifying the pack's
 * signature when --policy-pubkey is set) and resolve. *policy_canonical
 * (if not NULL) receives the pack's canonical text (free it). Returns 0, or
 * -1 with every problem in errs. For help/version actions cfg is not
 * resolved and 0 is returned. */
int kl_decider_load_config(int argc, char *const argv[], struct kl_config *cfg,
			   enum kl_cli_action *action, char **policy_canonical,
			   struct kl_errs *errs);
/* Parse the whitelist and feedback files as configured (for -n). A missing
 * file at its default path is not an error. */
int kl_decider_check_files(const struct kl_config *cfg, struct kl_errs *errs);

struct kl_decider {
	const struct kl_config *cfg;
	struct kl_engine_params params;
	struct kl_engine *eng;
	struct kl_exempt ex;
	struct kl_sink *sink;
	struct kl_changes ch;
	bool loaded;               /* exemption files read once */
	uint64_t ticks;
	uint64_t changes_total;
	int64_t last_tick_log;
	int64_t next_wl_check, next_fb_check, next_release;
	struct kl_filewatch wl_watch, fb_watch;
	struct kl_cidrs pending;   /* CIDRs to release through the sink */
	bool periodic_reload;      /* live: poll the files; replay: read once */
};

int kl_decider_init(struct kl_decider *d, const struct kl_config *cfg, struct kl_sink *sink,
		    uint64_t seed, bool periodic_reload);
void kl_decider_free(struct kl_decider *d);

/* Read the exemption files now. force: even if unchanged. initial: errors
 * are fatal (startup); later they keep the previous content and warn. */
int kl_decider_reload_exemptions(struct kl_decider *d, int64_t now, bool force, bool initial,
				 struct kl_errs *errs);

/* One tick: exemption updates, engine, sink, CIDR releases, TICK log. */
int kl_decider_tick(struct kl_decider *d, struct kl_tick *t, struct kl_errs *errs);

/* Run every tick of in. Returns 0 or -1 (errors in errs). */
int kl_decider_replay(struct kl_decider *d, struct kl_input *in, struct kl_errs *errs);

/* `kl-decider --replay`: returns the exit code. */
int kl_decider_run_replay(const struct kl_config *cfg);

/* Async-signal-safe: SIGUSR1 handler body. The next tick reloads both
 * exemption files and releases whatever they now cover. */
void kl_decider_request_reload(void);

#endif
