/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's engine (DESIGN §6.2-6.3): severity, strikes, hysteresis and
 * levels per source. Pure functions over plain structs: no I/O, no clock,
 * no allocation outside kl_engine_new/kl_engine_tick. Time is whatever the
 * caller says it is (milliseconds on the tick's clock), so live operation
 * and replay run the very same code.
 */
#ifndef KL_DECIDER_ENGINE_H
#define KL_DECIDER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

enum kl_level {
	KL_LVL_OBSERVE = 0,
	KL_LVL_SOFT = 1,
	KL_LVL_HARD = 2,
	KL_LVL_BLOCK = 3,
	KL_LVL_COUNT = 4
};

/* "OBSERVE", "RATE_SOFT", "RATE_HARD", "BLOCK". */
const char *kl_level_name(unsigned lvl);

/* Features of the severity score, in the order of the knob table. */
enum kl_feature { KL_F_PPS = 0, KL_F_SYN, KL_F_SCAN, KL_F_BPS, KL_F_COUNT };

/* Time that never happened; compares below every real tick time. */
#define KL_T_NEVER INT64_MIN

/* What the sensor says about one source over one tick, as rates per second. */
struct kl_metrics {
	struct kl_addr addr; /* host address (prefixlen 32/128) */
	double pps, bps, syn, scan, droprl;
};

enum kl_viol_mode { KL_VIOL_NONE = 0, KL_VIOL_OBSERVE = 1, KL_VIOL_ENFORCE = 2 };

/* A graph violation (graphd, or a trace line): the source used an edge
 * outside the frozen baseline. */
struct kl_violation {
	struct kl_addr addr;
	uint16_t port;
	uint8_t proto;
	uint8_t mode; /* enum kl_viol_mode */
};

struct kl_violation_rec;
/* Append n decoded VIOLATION records (ipc/violation.h) to a tick's list
 * dst[0..*ndst) of room `cap`; returns how many did not fit (the caller
 * counts and logs them). */
size_t kl_violations_take(struct kl_violation *dst, size_t *ndst, size_t cap,
			  const struct kl_violation_rec *rec, size_t n);

/* Everything the engine needs, resolved from the knob table. */
struct kl_engine_params {
	double trig[KL_F_COUNT];  /* 0 = feature off */
	double w[KL_F_COUNT];
	double sev_cap;
	double step[3];           /* sev-step1..3 */
	int delta[3];             /* sev-delta1..3 */
	double decay_below;
	int at[KL_LVL_COUNT];     /* [SOFT] soft-at, [HARD] hard-at, [BLOCK] block-at */
	int up_need, down_need;
	int64_t min_hold_ms[KL_LVL_COUNT]; /* [SOFT], [HARD]; [BLOCK] is its TTL */
	int64_t ttl_ms[KL_LVL_COUNT];      /* [SOFT], [HARD], [BLOCK] */
	uint64_t rate[KL_LVL_COUNT], burst[KL_LVL_COUNT]; /* [SOFT], [HARD] */
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
	uint8_t action[KL_LVL_COUNT];
	/* frozen-enforce violations: forced level and the severity it needs. */
	uint8_t viol_level;
	double viol_min_sev;
};

/* Per-source state. Kept small: this is what a tracked source costs
 * (88 bytes; the fields are ordered so that the floats fill the padding). */
struct kl_src {
	struct kl_addr key;       /* family 0 = empty slot */
	uint8_t level;
	uint8_t flags;            /* KL_SRC_F_* */
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

#define KL_SRC_F_ELEVATED 0x1 /* listed in the engine's elevated set */

enum kl_reason {
	KL_R_NONE = 0,
	KL_R_SOFT_AT,      /* strikes >= soft-at */
	KL_R_HARD_AT,      /* strikes >= hard-at */
	KL_R_BLOCK_AT,     /* strikes >= block-at, gate open */
	KL_R_GATE,         /* strikes >= block-at, block gate closed: RATE_HARD */
	KL_R_NONCOMP,      /* RATE_HARD and noncomp >= noncomp-at */
	KL_R_VIOLATION,    /* frozen-enforce graph violation */
	KL_R_STEP_DOWN,    /* down >= down-need and min-hold over */
	KL_R_REFRESH,      /* same level, TTL renewed */
	KL_R_WHITELIST,
	KL_R_FORGIVE,
	KL_R_COUNT
};
const char *kl_reason_name(unsigned r);

/* One level change (or TTL refresh) for the output side. */
struct kl_change {
	struct kl_addr addr;
	int64_t t_ms;
	uint8_t from, to;         /* engine levels */
	uint8_t action;           /* what `to` is enforced as (params.action) */
	uint8_t from_action;      /* what `from` was enforced as */
	uint8_t reason;           /* enum kl_reason */
	int strikes;
	double sev;
	uint64_t rate, burst;     /* of the action level (0 for OBSERVE/BLOCK) */
	int64_t ttl_ms;           /* 0 for OBSERVE */
	/* The source's pps, syn, scan, droprl when it was decided: the
	 * inputs an audit receipt records (decider/audit.h). */
	float feat[4];
};

struct kl_changes {
	struct kl_change *v;
	size_t n, cap;
};

/* Severity (§6.2): sum over features of w * min(x / trig, cap). */
double kl_severity(const struct kl_engine_params *p, const struct kl_metrics *m);

/* A fresh source (OBSERVE, no history). */
void kl_src_init(struct kl_src *s, const struct kl_addr *a);

/* One tick of §6.3 for one source, rules 1-6 in order. viol is an enum
 * kl_viol_mode. Returns true and fills *c when the level changed or the TTL
 * was renewed (c->reason == KL_R_REFRESH). */
bool kl_engine_step(const struct kl_engine_params *p, struct kl_src *s,
		    const struct kl_metrics *m, double sev, int viol, int64_t now,
		    struct kl_change *c);

/* Enforcement parameters of a level change: action, rate, burst, ttl. */
void kl_change_fill(const struct kl_engine_params *p, struct kl_change *c);

/* Exemption lookup supplied by the caller (whitelist, feedback). */
enum kl_exempt_kind { KL_EX_NONE = 0, KL_EX_FORGIVE = 1, KL_EX_WHITELIST = 2 };
typedef int (*kl_exempt_fn)(void *ctx, const struct kl_addr *a);

struct kl_engine_stats {
	uint64_t tick;            /* ticks run */
	size_t sources;           /* records in the last tick */
	size_t candidates;        /* passed min-pps / min-sev / droprl */
	size_t evaluated;         /* stepped this tick (top-N + elevated + violations) */
	size_t exempted;          /* candidates skipped as whitelisted/forgiven */
	size_t changes, refreshes;
	size_t tracked;           /* sources with state */
	size_t per_level[KL_LVL_COUNT];
	size_t forgotten;         /* removed by state-ttl, total */
};

struct kl_engine;

/* seed randomises the hash tables (hash flooding); results never depend on it. */
struct kl_engine *kl_engine_new(const struct kl_engine_params *p, uint64_t seed);
void kl_engine_free(struct kl_engine *e);
/* New parameters take effect at the next tick (reload, autotune). */
void kl_engine_set_params(struct kl_engine *e, const struct kl_engine_params *p);
const struct kl_engine_params *kl_engine_params(const struct kl_engine *e);

/* Run one tick: candidates from src[], every elevated source, every
 * violation. Level changes and refreshes of the tick are appended to out,
 * sorted by address. Returns 0, or -1 when memory ran out (state unchanged
 * for the sources not yet processed). */
int kl_engine_tick(struct kl_engine *e, int64_t now, const struct kl_metrics *src,
		   size_t nsrc, const struct kl_violation *viol, size_t nviol,
		   kl_exempt_fn exempt, void *exempt_ctx, struct kl_changes *out);

const struct kl_engine_stats *kl_engine_stats(const struct kl_engine *e);
/* The state of one source, or NULL if not tracked. */
const struct kl_src *kl_engine_lookup(const struct kl_engine *e, const struct kl_addr *a);
/* Reconciliation after a restart: take over a level the enforcer still
 * holds for a source, with what is left of its TTL (ttl_left_ms > 0), as if
 * the engine had moved the source there ttl - ttl_left ago: strikes at the
 * level's threshold, a BLOCK held until the entry expires, renewals and
 * step-downs as usual from there. A source the engine already holds above
 * OBSERVE keeps the engine's level. Returns 1 adopted, 0 kept, -1 out of
 * memory or not a host address. */
int kl_engine_adopt(struct kl_engine *e, const struct kl_addr *a, unsigned level,
		    int64_t ttl_left_ms, int64_t now);
/* Call fn for every tracked source (order unspecified). */
void kl_engine_foreach(const struct kl_engine *e,
		       void (*fn)(void *ctx, const struct kl_src *s), void *ctx);
/* Bytes of memory held per tracked source (tables / tracked). */
double kl_engine_bytes_per_source(const struct kl_engine *e);

/* Per-source baselines (decider/baseline.h), owned by the caller; NULL
 * detaches. Attached: a stepped source is scored against its effective
 * triggers, suspicious ticks taint what its baseline holds, and clean
 * ticks are observed (top-N selection still ranks by the global triggers). */
struct kl_baselines;
void kl_engine_set_baselines(struct kl_engine *e, struct kl_baselines *bl);

/* Address order used for output: family, then bytes. */
int kl_addr_cmp(const struct kl_addr *a, const struct kl_addr *b);

void kl_changes_free(struct kl_changes *c);

#endif
