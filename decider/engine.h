/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's engine (DESIGN §6.2-6.3): severity, strikes, hysteresis and
 * levels per source. Pure functions over plain structs: no I/O, no clock,
 * no allocation outside dec_engine_new/dec_engine_tick. Time is whatever the
 * caller says it is (milliseconds on the tick's clock), so live operation
 * and replay run the very same code.
 */
#ifndef KL_DECIDER_ENGINE_H
#define KL_DECIDER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

enum dec_level {
	DEC_LVL_OBSERVE = 0,
	DEC_LVL_SOFT = 1,
	DEC_LVL_HARD = 2,
	DEC_LVL_BLOCK = 3,
	DEC_LVL_COUNT = 4
};

/* "OBSERVE", "RATE_SOFT", "RATE_HARD", "BLOCK". */
const char *dec_level_name(unsigned lvl);

/* Features of the severity score, in the order of the knob table. */
enum dec_feature { DEC_F_PPS = 0, DEC_F_SYN, DEC_F_SCAN, DEC_F_BPS, DEC_F_COUNT };

/* Time that never happened; compares below every real tick time. */
#define DEC_T_NEVER INT64_MIN

/* What the sensor says about one source over one tick, as rates per second. */
struct dec_metrics {
	struct kl_addr addr; /* host address (prefixlen 32/128) */
	double pps, bps, syn, scan, droprl;
};

enum kl_viol_mode { DEC_VIOL_NONE = 0, DEC_VIOL_OBSERVE = 1, DEC_VIOL_ENFORCE = 2 };

/* A graph violation (graphd, or a trace line): the source used an edge
 * outside the frozen baseline. */
struct dec_violation {
	struct kl_addr addr;
	uint16_t port;
	uint8_t proto;
	uint8_t mode; /* enum kl_viol_mode */
};

struct kl_violation_rec;
/* Append n decoded VIOLATION records (ipc/violation.h) to a tick's list
 * dst[0..*ndst) of room `cap`; returns how many did not fit (the caller
 * counts and logs them). */
size_t dec_violations_take(struct dec_violation *dst, size_t *ndst, size_t cap,
			  const struct kl_violation_rec *rec, size_t n);
/* Remove from a tick's list the violations of source a (they came before
 * its approval on the same link); returns how many. */
size_t dec_violations_drop(struct dec_violation *v, size_t *n, const struct kl_addr *a);

/* Everything the engine needs, resolved from the knob table. */
struct dec_engine_params {
	double trig[DEC_F_COUNT];  /* 0 = feature off */
	double w[DEC_F_COUNT];
	double sev_cap;
	double step[3];           /* sev-step1..3 */
	int delta[3];             /* sev-delta1..3 */
	double decay_below;
	int at[DEC_LVL_COUNT];     /* [SOFT] soft-at, [HARD] hard-at, [BLOCK] block-at */
	int up_need, down_need;
	int64_t min_hold_ms[DEC_LVL_COUNT]; /* [SOFT], [HARD]; [BLOCK] is its TTL */
	int64_t ttl_ms[DEC_LVL_COUNT];      /* [SOFT], [HARD], [BLOCK] */
	uint64_t rate[DEC_LVL_COUNT], burst[DEC_LVL_COUNT]; /* [SOFT], [HARD] */
	int64_t cooldown_ms;
	double block_min_sev;     /* 0 = gate off */
	int64_t block_min_dur_ms; /* 0 = no duration needed */
	int noncomp_at;
	double noncomp_drop, noncomp_sev, noncomp_reset_below;
	double min_pps, min_sev;
	uint32_t top;
	int64_t state_ttl_ms;
	/* What each level is enforced as (PolicyPack levels.*.action capped by
	 * max_action and allow_local_block): action[lvl] <= lvl. */
	uint8_t action[DEC_LVL_COUNT];
	/* frozen-enforce violations: forced level and the severity it needs. */
	uint8_t viol_level;
	double viol_min_sev;
};

/* Per-source state. Kept small: this is what a tracked source costs
 * (88 bytes; the fields are ordered so that the floats fill the padding). */
struct dec_src {
	struct kl_addr key;       /* family 0 = empty slot */
	uint8_t level;
	uint8_t flags;            /* DEC_SRC_F_* */
	uint16_t strikes;
	uint16_t up, down, noncomp;
	float sev;                /* severity of the last evaluated tick */
	int64_t t_change;         /* last level change (= level entered) */
	int64_t t_high;           /* last high tick */
	int64_t enforce_until;    /* expiry of what we last sent for this level */
	int64_t gate_since;       /* severity >= block-min-sev since; NEVER if not */
	int64_t t_seen;           /* last tick this source was evaluated */
	/* Metrics of the last evaluated tick, for the operator's view (klctl
	 * sources); floats, since they are only ever displayed. */
	float pps, syn, scan, droprl;
};

#define DEC_SRC_F_ELEVATED 0x1 /* listed in the engine's elevated set */

enum dec_reason {
	DEC_R_NONE = 0,
	DEC_R_SOFT_AT,      /* strikes >= soft-at */
	DEC_R_HARD_AT,      /* strikes >= hard-at */
	DEC_R_BLOCK_AT,     /* strikes >= block-at, gate open */
	DEC_R_GATE,         /* strikes >= block-at, block gate closed: RATE_HARD */
	DEC_R_NONCOMP,      /* RATE_HARD and noncomp >= noncomp-at */
	DEC_R_VIOLATION,    /* frozen-enforce graph violation */
	DEC_R_STEP_DOWN,    /* down >= down-need and min-hold over */
	DEC_R_REFRESH,      /* same level, TTL renewed */
	DEC_R_WHITELIST,
	DEC_R_FORGIVE,
	DEC_R_APPROVED,     /* the operator approved the source in the graph */
	DEC_R_COUNT
};
const char *dec_reason_name(unsigned r);

/* One level change (or TTL refresh) for the output side. */
struct dec_change {
	struct kl_addr addr;
	int64_t t_ms;
	uint8_t from, to;         /* engine levels */
	uint8_t action;           /* what `to` is enforced as (params.action) */
	uint8_t from_action;      /* what `from` was enforced as */
	uint8_t reason;           /* enum dec_reason */
	int strikes;
	double sev;
	uint64_t rate, burst;     /* of the action level (0 for OBSERVE/BLOCK) */
	int64_t ttl_ms;           /* 0 for OBSERVE */
	/* The source's pps, syn, scan, droprl when it was decided: the
	 * inputs an audit receipt records (decider/audit.h). */
	float feat[4];
};

struct dec_changes {
	struct dec_change *v;
	size_t n, cap;
};

/* Severity (§6.2): sum over features of w * min(x / trig, cap). */
double dec_severity(const struct dec_engine_params *p, const struct dec_metrics *m);

/* A fresh source (OBSERVE, no history). */
void dec_src_init(struct dec_src *s, const struct kl_addr *a);

/* One tick of §6.3 for one source, rules 1-6 in order. viol is an enum
 * kl_viol_mode. Returns true and fills *c when the level changed or the TTL
 * was renewed (c->reason == DEC_R_REFRESH). */
bool dec_engine_step(const struct dec_engine_params *p, struct dec_src *s,
		    const struct dec_metrics *m, double sev, int viol, int64_t now,
		    struct dec_change *c);

/* Enforcement parameters of a level change: action, rate, burst, ttl. */
void dec_change_fill(const struct dec_engine_params *p, struct dec_change *c);

/* Exemption lookup supplied by the caller (whitelist, feedback). */
enum dec_exempt_kind { DEC_EX_NONE = 0, DEC_EX_FORGIVE = 1, DEC_EX_WHITELIST = 2 };
typedef int (*dec_exempt_fn)(void *ctx, const struct kl_addr *a);

struct dec_engine_stats {
	uint64_t tick;            /* ticks run */
	size_t sources;           /* records in the last tick */
	size_t candidates;        /* passed min-pps / min-sev / droprl */
	size_t evaluated;         /* stepped this tick (top-N + elevated + violations) */
	size_t exempted;          /* candidates skipped as whitelisted/forgiven */
	size_t changes, refreshes;
	size_t tracked;           /* sources with state */
	size_t per_level[DEC_LVL_COUNT];
	size_t forgotten;         /* removed by state-ttl, total */
};

struct dec_engine;

/* seed randomises the hash tables (hash flooding); results never depend on it. */
struct dec_engine *dec_engine_new(const struct dec_engine_params *p, uint64_t seed);
void dec_engine_free(struct dec_engine *e);
/* New parameters take effect at the next tick (reload, autotune). */
void dec_engine_set_params(struct dec_engine *e, const struct dec_engine_params *p);
const struct dec_engine_params *dec_engine_params(const struct dec_engine *e);

/* Run one tick: candidates from src[], every elevated source, every
 * violation. Level changes and refreshes of the tick are appended to out,
 * sorted by address. Returns 0, or -1 when memory ran out (state unchanged
 * for the sources not yet processed). */
int dec_engine_tick(struct dec_engine *e, int64_t now, const struct dec_metrics *src,
		   size_t nsrc, const struct dec_violation *viol, size_t nviol,
		   dec_exempt_fn exempt, void *exempt_ctx, struct dec_changes *out);

const struct dec_engine_stats *dec_engine_stats(const struct dec_engine *e);
/* The state of one source, or NULL if not tracked. */
const struct dec_src *dec_engine_lookup(const struct dec_engine *e, const struct kl_addr *a);
/* Release one source now: back to OBSERVE (a change with `reason`
 * appended to out when it was above) and its state forgotten. 1 when it
 * was above OBSERVE, 0 when not (or unknown), -1 when memory ran out. */
int dec_engine_release(struct dec_engine *e, const struct kl_addr *a, unsigned reason,
		      int64_t now, struct dec_changes *out);
/* Reconciliation after a restart: take over a level the enforcer still
 * holds for a source, with what is left of its TTL (ttl_left_ms > 0), as if
 * the engine had moved the source there ttl - ttl_left ago: strikes at the
 * level's threshold, a BLOCK held until the entry expires, renewals and
 * step-downs as usual from there. A source the engine already holds above
 * OBSERVE keeps the engine's level. Returns 1 adopted, 0 kept, -1 out of
 * memory or not a host address. */
int dec_engine_adopt(struct dec_engine *e, const struct kl_addr *a, unsigned level,
		    int64_t ttl_left_ms, int64_t now);
/* Call fn for every tracked source (order unspecified). */
void dec_engine_foreach(const struct dec_engine *e,
		       void (*fn)(void *ctx, const struct dec_src *s), void *ctx);
/* Bytes of memory held per tracked source (tables / tracked). */
double dec_engine_bytes_per_source(const struct dec_engine *e);

/* Per-source baselines (decider/baseline.h), owned by the caller; NULL
 * detaches. Attached: a stepped source is scored against its effective
 * triggers, suspicious ticks taint what its baseline holds, and clean
 * ticks are observed (top-N selection still ranks by the global triggers). */
struct dec_baselines;
void dec_engine_set_baselines(struct dec_engine *e, struct dec_baselines *bl);

/* Address order used for output: family, then bytes. */
int dec_addr_cmp(const struct kl_addr *a, const struct kl_addr *b);

void dec_changes_free(struct dec_changes *c);

#endif
