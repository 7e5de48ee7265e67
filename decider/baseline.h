/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-source baselines: what is normal for each client, so that
 * a source that is heavy by nature is judged against its own history, not
 * only the host-wide triggers.
 *
 * Per source: an EWMA and a peak of pps, SYN/s and scan/s. Observations
 * are held in two batches for --baseline-hold before they are committed;
 * a suspicious tick (rate-limited or blocked, a high tick, a graph
 * violation, rate-limit drops) throws away everything still held. A tick
 * above a global trigger is never an observation, so no learned peak
 * exceeds the global trigger and no effective trigger exceeds
 * trigger x tolerance, however slowly an attacker ramps.
 *
 * A source is promoted after --baseline-promote-after committed
 * observations; its confidence is min(1, n / (2 x promote-after)) halved
 * every --baseline-halflife since its last commit. For a
 * promoted source with confidence >= --baseline-min-confidence the
 * effective trigger of feature f is
 *     max(trig_f, min(peak_f x tolerance, trig_f x tolerance)).
 *
 * Pure functions over plain structs, no I/O, no clock: time is the tick
 * clock the caller passes.
 */
#ifndef KL_DECIDER_BASELINE_H
#define KL_DECIDER_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "decider/engine.h"

/* Features with a baseline: pps, syn, scan (enum dec_feature order). */
#define DEC_BL_NF 3

struct dec_bl_params {
	bool enabled;
	double min_pps;          /* an observation needs pps >= this */
	double relevant;         /* ... and some feature >= relevant x its trigger */
	uint32_t promote_after;  /* committed observations to be promoted */
	uint32_t stable_after;   /* observations after which alpha_stable applies */
	double alpha_young, alpha_stable;
	double tolerance;        /* effective trigger = peak x tolerance (capped) */
	double min_confidence;
	int64_t halflife_ms;     /* confidence halves per this much idle time */
	int64_t hold_ms;         /* observations held this long before commit */
	int64_t ttl_ms;          /* forget a baseline idle this long */
	uint32_t max_sources;    /* no new baselines beyond this many */
	bool whitelist_learn, feedback_learn; /* exempt sources may teach */
};

#define DEC_BL_F_PROMOTED 0x1
#define DEC_BL_F_TAINTED  0x2 /* tainted at t_seen: that tick is no observation */

/* One source's baseline: 152 bytes. */
struct dec_bl {
	struct kl_addr key;      /* family 0 = empty slot */
	uint8_t flags;           /* DEC_BL_F_* */
	uint8_t pad;
	uint32_t n;              /* committed observations */
	float ewma[DEC_BL_NF];
	float peak[DEC_BL_NF];
	int64_t t_last;          /* time of the last committed observation */
	int64_t t_seen;          /* last observation or taint */
	/* Held observations: [1] fills, [0] waits for hold to pass. */
	int64_t b_start[2], b_last[2];
	uint16_t b_n[2];
	float b_sum[2][DEC_BL_NF];
	float b_max[2][DEC_BL_NF];
};

struct dec_baselines;

struct dec_baselines *dec_bl_new(const struct dec_bl_params *bp, uint64_t seed);
void dec_bl_free(struct dec_baselines *b);
const struct dec_bl_params *dec_bl_params(const struct dec_baselines *b);
size_t dec_bl_count(const struct dec_baselines *b);

/* Could this tick be an observation (before looking anything up)? pps >=
 * min-pps, no feature above its global trigger, and some feature at or
 * above relevant x its trigger: below that the effective trigger could
 * never differ from the global one, so the source is not worth a record. */
static inline bool dec_bl_gate(const struct dec_bl_params *bp, const double trig[DEC_F_COUNT],
			      const struct dec_metrics *m)
{
	const double x[DEC_BL_NF] = { m->pps, m->syn, m->scan };
	bool rel = false;

	if (m->pps < bp->min_pps || m->droprl > 0.0)
		return false;
	for (int f = 0; f < DEC_BL_NF; f++) {
		if (!(trig[f] > 0.0))
			continue;
		if (x[f] > trig[f])
			return false;
		if (x[f] >= bp->relevant * trig[f])
			rel = true;
	}
	return rel;
}

/* A clean observation of key (host address in key form). Commits what has
 * been held long enough first. Returns 0, or -1 when the table is full
 * (max-sources) or out of memory: nothing learned. */
int dec_bl_observe(struct dec_baselines *b, const struct kl_addr *key, const struct dec_metrics *m,
		  int64_t now);
/* The source turned suspicious: everything held is dropped, and an
 * observation at the same tick is refused. create: make the record if
 * there is none (for a source whose tick passed dec_bl_gate, so that the
 * refusal holds; others have nothing to drop). */
void dec_bl_taint(struct dec_baselines *b, const struct kl_addr *key, int64_t now, bool create);

/* Confidence of a baseline at now, 0..1. */
double dec_bl_confidence(const struct dec_bl_params *bp, const struct dec_bl *r, int64_t now);
/* Effective triggers for r (NULL: none learned) into eff[]. Returns true
 * when any differs from the global one. */
bool dec_bl_effective(const struct dec_bl_params *bp, const struct dec_bl *r,
		     const double trig[DEC_F_COUNT], int64_t now, double eff[DEC_F_COUNT]);
/* Severity of m against key's effective triggers; sev (computed against
 * the global triggers) when they are the global ones. */
double dec_bl_severity(const struct dec_baselines *b, const struct dec_engine_params *p,
		      const struct kl_addr *key, const struct dec_metrics *m, double sev,
		      int64_t now);

const struct dec_bl *dec_bl_lookup(const struct dec_baselines *b, const struct kl_addr *key);
/* Insert or replace a committed baseline (loading a store): nothing held. */
int dec_bl_put(struct dec_baselines *b, const struct dec_bl *r);
void dec_bl_foreach(const struct dec_baselines *b, void (*fn)(void *ctx, const struct dec_bl *r),
		   void *ctx);
/* Forget baselines idle for ttl; returns how many. */
size_t dec_bl_sweep(struct dec_baselines *b, int64_t now);

/* ---- persistence: baselines.json beside state.json ----
 *   {version: 1, saved_at: Unix s, sources: [[ip, n, t_last_s, ewma_pps, ewma_syn,
 *    ewma_scan, peak_pps, peak_syn, peak_scan], ...], integrity: {sha256}}
 * with the integrity and .bak rules of state.json (state.h). */
#define DEC_BL_VERSION 1
int dec_bl_save(const struct dec_baselines *b, const char *path, int64_t now_ms, char *err,
	       size_t len);
/* Load path (or path.bak when path is refused). 0 from path, 1 from .bak,
 * -1 neither: why says why each was refused ("absent" when missing). The
 * table is only changed on success. */
int dec_bl_load(struct dec_baselines *b, const char *path, int64_t now_ms, int64_t max_age_ms,
	       char *why, size_t len);

/* {ip, known, promoted, confident, observations, confidence, ewma{}, peak{},
 *  effective_trigger{}, held, last_learned_s} for klctl baseline show. */
struct json_t;
struct json_t *dec_bl_show_json(const struct dec_baselines *b, const struct dec_engine_params *p,
			       const struct kl_addr *a, int64_t now);

#endif
