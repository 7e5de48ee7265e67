/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's and graphd's requests (DESIGN §1, §4, §5): per-source
 * levels, edge rules, releases and the reconciliation query.
 *
 * What a compromised decider or graphd can do is bounded here: every
 * record is checked against the protected list, the role's quotas and the
 * origin of what is already in the map (an operator's entry is never
 * overwritten or removed), and every entry it causes carries an expiry.
 * Records are applied one by one and answered one by one; a batch bumps
 * policy_gen once and leaves one CHANGE line in the log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "common/duration.h"
#include "common/log.h"
#include "enforcer/enforcer.h"

/* Malformed messages logged per second (a looping peer must not turn the
 * log into the denial of service). */
#define BAD_LOGS_PER_S 10
/* At the total cap, a sweep of lapsed entries runs at most this often,
 * visiting at most this many entries per map. */
#define CAP_SWEEP_EVERY_NS 1000000000ull
#define CAP_SWEEP_BUDGET 65536

static const char *const link_names[ENF_LINK_MAX] = {
	[ENF_LINK_DECIDER] = "decider",
	[ENF_LINK_GRAPHD] = "graphd",
};

uint32_t enf_origin_of(enum kl_role role)
{
	switch (role) {
	case KL_ROLE_DECIDER: return KL_ORIGIN_DECIDER;
	case KL_ROLE_GRAPHD: return KL_ORIGIN_GRAPHD;
	default: return KL_ORIGIN_OPERATOR;
	}
}

int enf_link_of(enum kl_role role)
{
	switch (role) {
	case KL_ROLE_DECIDER: return ENF_LINK_DECIDER;
	case KL_ROLE_GRAPHD: return ENF_LINK_GRAPHD;
	default: return -1;
	}
}

static bool is_rl(enum enf_map_id m)
{
	return m == ENF_M_RL4 || m == ENF_M_RL6 || m == ENF_M_EDGE4_RL || m == ENF_M_EDGE6_RL;
}

bool enf_map_counted(enum enf_map_id m)
{
	return (m >= ENF_M_DENY4 && m <= ENF_M_RL6) || (m >= ENF_M_EDGE4_DENY && m <= ENF_M_EDGE6_RL);
}

uint32_t enf_val_origin(enum enf_map_id m, const void *val)
{
	if (is_rl(m)) {
		struct kl_rl_rule r;
		memcpy(&r, val, sizeof(r));
		return r.origin;
	}
	struct kl_rule r;
	memcpy(&r, val, sizeof(r));
	return r.origin;
}

uint64_t enf_val_expires(enum enf_map_id m, const void *val)
{
	if (is_rl(m)) {
		struct kl_rl_rule r;
		memcpy(&r, val, sizeof(r));
		return r.expires_ns;
	}
	struct kl_rule r;
	memcpy(&r, val, sizeof(r));
	return r.expires_ns;
}

void enf_count_note(struct enf_ctx *ctx, enum enf_map_id m, uint32_t old_origin,
		    uint32_t new_origin)
{
	if (enf_map_counted(m)) {
		if (old_origin != 0 && ctx->map_count[m] > 0)
			ctx->map_count[m]--;
		if (new_origin != 0)
			ctx->map_count[m]++;
	}
	if (old_origin > 0 && old_origin < ENF_ORIGIN_SLOTS && ctx->origin_count[old_origin] > 0)
		ctx->origin_count[old_origin]--;
	if (new_origin > 0 && new_origin < ENF_ORIGIN_SLOTS)
		ctx->origin_count[new_origin]++;
}

struct count_acc {
	enum enf_map_id m;
	uint64_t count[ENF_ORIGIN_SLOTS];
	uint64_t map[ENF_M_MAX];
};

static int count_visit(const void *key, const void *val, void *arg)
{
	struct count_acc *acc = arg;
	uint32_t o = enf_val_origin(acc->m, val);
	(void)key;
	if (o < ENF_ORIGIN_SLOTS)
		acc->count[o]++;
	acc->map[acc->m]++;
	return 0;
}

int enf_count_origins(struct enf_ctx *ctx)
{
	struct count_acc acc;
	memset(&acc, 0, sizeof(acc));
	for (int m = 0; m < ENF_M_MAX; m++) {
		if (!enf_map_counted((enum enf_map_id)m) || ctx->fd[m] < 0)
			continue;
		acc.m = (enum enf_map_id)m;
		int rc = enf_map_foreach(ctx, acc.m, count_visit, &acc);
		if (rc < 0) {
			kl_error("counting entries in %s: %s", enf_map_specs[m].name, strerror(-rc));
			return rc;
		}
	}
	memcpy(ctx->origin_count, acc.count, sizeof(ctx->origin_count));
	memcpy(ctx->map_count, acc.map, sizeof(ctx->map_count));
	return 0;
}

/* ---- one map slot ---- */

struct slot {
	bool found;
	uint32_t origin;
	uint64_t expires_ns;
};

static int peek(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, struct slot *s)
{
	uint8_t val[sizeof(struct kl_rl_rule)];
	memset(s, 0, sizeof(*s));
	int rc = enf_map_lookup(ctx, m, key, val);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	s->found = true;
	s->origin = enf_val_origin(m, val);
	s->expires_ns = enf_val_expires(m, val);
	return 0;
}

/* Someone else's entry that still counts (an expired one is as good as
 * gone: the data plane ignores it and the sweep will delete it). */
static bool foreign_live(const struct slot *s, uint32_t own, uint64_t now)
{
	return s->found && s->origin != own && !enf_expired(s->expires_ns, now);
}

/* Delete the entry at key if it is ours; note whether a live entry of
 * someone else stays. Returns 0 or -errno. */
static int remove_own(struct enf_ctx *ctx, enum enf_map_id m, const void *key, uint32_t own,
		      uint64_t now, bool *changed, bool *foreign)
{
	struct slot s;
	int rc = peek(ctx, m, key, &s);
	if (rc < 0 || !s.found)
		return rc;
	if (s.origin != own) {
		if (!enf_expired(s.expires_ns, now))
			*foreign = true;
		return 0;
	}
	if ((rc = enf_map_delete(ctx, m, key)) < 0)
		return rc == -ENOENT ? 0 : rc;
	enf_count_note(ctx, m, own, 0);
	*changed = true;
	return 0;
}

static uint8_t write_errno_reason(int e)
{
	return (e == E2BIG || e == ENOSPC || e == ENOMEM) ? KL_ACK_MAP_FULL : KL_ACK_FAILED;
}

/* The common path of every add: origin, total cap, rate cap, write.
 * val is a struct kl_rule or kl_rl_rule already stamped with our origin.
 * `moves` is true when the write replaces our own entry in another map
 * (a level change), which the caller removes next: not a new entry. */
static uint8_t put_own(struct enf_ctx *ctx, struct enf_link_stats *ls, enum enf_map_id m,
		       const void *key, const void *val, uint32_t own, uint64_t now, bool moves,
		       bool *changed, char *why, size_t whylen)
{
	struct slot s;
	int rc = peek(ctx, m, key, &s);
	if (rc < 0) {
		snprintf(why, whylen, "%s: %s", enf_map_specs[m].name, strerror(-rc));
		return KL_ACK_FAILED;
	}
	if (foreign_live(&s, own, now)) {
		snprintf(why, whylen, "%s holds a live %s entry", enf_map_specs[m].name,
			 enf_origin_name(s.origin));
		return KL_ACK_OPERATOR;
	}
	bool is_new = !(s.found && s.origin == own) && !moves;
	/* A new key in this map must leave the operator's reserve free. */
	const uint64_t room = ctx->map_max[m] - enf_operator_reserve(ctx->map_max[m]);
	bool grows = !s.found;
	if (((is_new && ctx->origin_count[own] >= ls->quota.max) ||
	     (grows && ctx->map_count[m] >= room)) &&
	    now - ctx->cap_sweep_ns >= CAP_SWEEP_EVERY_NS) {
		/* The count includes entries that have lapsed but wait for the
		 * periodic sweep; make room now, at most once a second. */
		ctx->cap_sweep_ns = now;
		enf_sweep(ctx, CAP_SWEEP_BUDGET);
		/* The sweep may have taken the lapsed entry at this key. */
		if ((rc = peek(ctx, m, key, &s)) < 0) {
			snprintf(why, whylen, "%s: %s", enf_map_specs[m].name, strerror(-rc));
			return KL_ACK_FAILED;
		}
		grows = !s.found;
	}
	if (grows && ctx->map_count[m] >= room) {
		snprintf(why, whylen, "%s holds %llu entries; the last %u are the operator's",
			 enf_map_specs[m].name, (unsigned long long)ctx->map_count[m],
			 enf_operator_reserve(ctx->map_max[m]));
		return KL_ACK_MAP_FULL;
	}
	if (is_new && ctx->origin_count[own] >= ls->quota.max) {
		snprintf(why, whylen, "%llu %s entries, the most allowed",
			 (unsigned long long)ctx->origin_count[own], enf_origin_name(own));
		return KL_ACK_TOTAL_CAP;
	}
	if (!enf_quota_take(&ls->quota, now)) {
		snprintf(why, whylen, "more than %u new or changed entries per second",
			 ls->quota.rate);
		return KL_ACK_RATE_CAP;
	}
	int brc = enf_bloom_note(ctx, m, key);
	if (brc == 0)
		brc = enf_map_update(ctx, m, key, val);
	if (brc < 0) {
		int e = -brc;
		snprintf(why, whylen, "%s: %s", enf_map_specs[m].name, strerror(e));
		return write_errno_reason(e);
	}
	enf_count_note(ctx, m, s.found ? s.origin : 0, own);
	*changed = true;
	return KL_ACK_OK;
}

static enum enf_map_id fam(const struct kl_addr *a, enum enf_map_id v4)
{
	return a->family == 4 ? v4 : (enum enf_map_id)(v4 + 1);
}

static uint8_t protected_or_invalid(const struct enf_ctx *ctx, const struct kl_addr *a,
				    char *why, size_t whylen)
{
	char ip[KL_ADDR_STRLEN], p[KL_ADDR_STRLEN];
	const char *bad = enf_target_invalid(a);
	if (bad) {
		snprintf(why, whylen, "%s is %s", kl_addr_format(a, ip, sizeof(ip)), bad);
		return KL_ACK_INVALID;
	}
	int i = enf_protected_hit(&ctx->policy, a);
	if (i >= 0) {
		snprintf(why, whylen, "%s is inside protected %s", kl_addr_format(a, ip, sizeof(ip)),
			 kl_addr_format(&ctx->policy.protect[i], p, sizeof(p)));
		return KL_ACK_PROTECTED;
	}
	/* The anti-lockout default that holds even with no protect list. */
	if (enf_self_hit(&ctx->policy, a) >= 0) {
		snprintf(why, whylen, "%s is one of this host's own addresses",
			 kl_addr_format(a, ip, sizeof(ip)));
		return KL_ACK_PROTECTED;
	}
	return KL_ACK_OK;
}

/* ---- DECISIONS ---- */

static uint8_t decide_one(struct enf_ctx *ctx, struct enf_link_stats *ls, uint32_t own,
			  const struct kl_decision *d, uint64_t now, bool *changed, char *why,
			  size_t whylen)
{
	uint8_t key[16];
	enum enf_map_id rl = fam(&d->addr, ENF_M_RL4), deny = fam(&d->addr, ENF_M_DENY4);
	bool foreign = false;
	int rc = 0;

	enf_host_key(&d->addr, key);
	if (d->level == KL_DEC_OBSERVE) {
		/* Always take our own entries away; an entry of the operator
		 * (or of graphd) stays and is reported, so the decider knows
		 * the source is still enforced by someone else. */
		if ((rc = remove_own(ctx, rl, key, own, now, changed, &foreign)) < 0 ||
		    (rc = remove_own(ctx, deny, key, own, now, changed, &foreign)) < 0) {
			snprintf(why, whylen, "delete: %s", strerror(-rc));
			return KL_ACK_FAILED;
		}
		if (foreign) {
			snprintf(why, whylen, "an entry of another origin stays");
			return KL_ACK_OPERATOR;
		}
		return KL_ACK_OK;
	}
	uint8_t r = protected_or_invalid(ctx, &d->addr, why, whylen);
	if (r != KL_ACK_OK)
		return r;
	uint64_t exp = enf_expiry(now, d->ttl_ms);
	bool block = d->level == KL_DEC_BLOCK;
	struct slot other;
	if ((rc = peek(ctx, block ? rl : deny, key, &other)) < 0) {
		snprintf(why, whylen, "lookup: %s", strerror(-rc));
		return KL_ACK_FAILED;
	}
	bool moves = other.found && other.origin == own;
	if (block) {
		struct kl_rule v = { .expires_ns = exp, .created_ns = now, .origin = own };
		r = put_own(ctx, ls, deny, key, &v, own, now, moves, changed, why, whylen);
		if (r == KL_ACK_OK && moves)
			rc = remove_own(ctx, rl, key, own, now, changed, &foreign);
	} else {
		struct kl_rl_rule v = { .rate_pps = d->rate_pps, .burst = d->burst,
					.expires_ns = exp, .origin = own };
		r = put_own(ctx, ls, rl, key, &v, own, now, moves, changed, why, whylen);
		if (r == KL_ACK_OK && moves)
			rc = remove_own(ctx, deny, key, own, now, changed, &foreign);
	}
	if (r == KL_ACK_OK && rc < 0) {
		/* The new level is in place; the old entry lapses by its TTL. */
		kl_warn("could not remove the previous entry of a source: %s", strerror(-rc));
	}
	return r;
}

/* "n=3 applied=2 refused=1 protected=1 observe=1 soft=0 ..." */
static void batch_detail(char *buf, size_t len, uint32_t n, uint32_t applied,
			 const uint32_t refused[KL_ACK_REASON_MAX], const char *const *kinds,
			 const uint32_t *kind_n, size_t nkinds)
{
	size_t o = 0;
#define ADD(...) o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__)
	ADD("n=%u applied=%u refused=%u", n, applied, n - applied);
	for (unsigned r = 1; r < KL_ACK_REASON_MAX; r++)
		if (refused[r])
			ADD(" %s=%u", kl_ack_reason_name(r), refused[r]);
	for (size_t k = 0; k < nkinds; k++)
		if (kind_n[k])
			ADD(" %s=%u", kinds[k], kind_n[k]);
#undef ADD
}

static void refused_debug(const struct enf_actor *who, const char *what, const struct kl_addr *a,
			  uint8_t reason, const char *why)
{
	char ip[KL_ADDR_STRLEN];
	kl_debug("REFUSED who=%s(pid=%d) %s %s: %s (%s)", kl_role_name(who->role), (int)who->pid,
		 what, kl_addr_format(a, ip, sizeof(ip)), kl_ack_reason_name(reason), why);
}

static void finish_batch(struct enf_ctx *ctx, const struct enf_actor *who, const char *action,
			 struct enf_link_stats *ls, uint32_t n, uint32_t applied,
			 const uint32_t refused[KL_ACK_REASON_MAX], const char *const *kinds,
			 const uint32_t *kind_n, size_t nkinds, bool changed)
{
	char detail[512];
	if (ls) {
		ls->batches++;
		ls->applied += applied;
		for (unsigned r = 0; r < KL_ACK_REASON_MAX; r++)
			ls->refused[r] += refused[r];
	}
	if (n == 0) {
		kl_debug("%s from %s: empty batch", action, kl_role_name(who->role));
		return;
	}
	batch_detail(detail, sizeof(detail), n, applied, refused, kinds, kind_n, nkinds);
	int result = applied == n ? KL_OK : refused[KL_ACK_FAILED] || refused[KL_ACK_MAP_FULL]
						       ? KL_ERR_FAILED
						       : KL_ERR_REFUSED;
	enforcer_commit(ctx, who, action, detail, result, changed);
}

static void refuse_all(struct kl_ack *acks, uint32_t n, uint32_t refused[KL_ACK_REASON_MAX])
{
	for (uint32_t i = 0; i < n; i++)
		acks[i] = (struct kl_ack){ .status = KL_ERR_INVALID, .reason = KL_ACK_INVALID };
	refused[KL_ACK_INVALID] += n;
}

static void audit_decision(struct enf_ctx *ctx, const struct enf_actor *who,
			   const struct kl_decision *d, uint8_t r, const char *why)
{
	char x[128];
	snprintf(x, sizeof(x), "\"rate\":%u,\"burst\":%u,\"ttl_ms\":%llu", d->rate_pps, d->burst,
		 (unsigned long long)d->ttl_ms);
	enf_audit_entry(ctx, who, kl_dec_level_name(d->level), &d->addr, x, r, why);
}

static void audit_edge(struct enf_ctx *ctx, const struct enf_actor *who,
		       const struct kl_edge_rule *e, uint8_t r, const char *why)
{
	char x[128], p[16];
	snprintf(x, sizeof(x), "\"port\":%u,\"proto\":\"%s\",\"ttl_ms\":%llu", e->port,
		 enf_proto_name(e->proto, p, sizeof(p)), (unsigned long long)e->ttl_ms);
	enf_audit_entry(ctx, who, kl_edge_action_name(e->action), &e->src, x, r, why);
}

void enf_decisions_apply(struct enf_ctx *ctx, const struct enf_actor *who,
			 const struct kl_decision *d, uint32_t n, struct kl_ack *acks)
{
	static const char *const kinds[KL_DEC_LEVEL_MAX] = { "observe", "soft", "hard", "block" };
	uint32_t kind_n[KL_DEC_LEVEL_MAX] = { 0 }, refused[KL_ACK_REASON_MAX] = { 0 };
	uint32_t applied = 0;
	bool changed = false;
	uint64_t now = ctx->now();
	uint32_t own = enf_origin_of(who->role);
	int li = enf_link_of(who->role);

	if (li != ENF_LINK_DECIDER) {
		/* The role table keeps anyone else out; this is the backstop. */
		kl_error("DECISIONS from %s reached the decider's handler", kl_role_name(who->role));
		refuse_all(acks, n, refused);
		finish_batch(ctx, who, "decisions", NULL, n, 0, refused, kinds, kind_n,
			     KL_DEC_LEVEL_MAX, false);
		return;
	}
	struct enf_link_stats *ls = &ctx->links[li];
	for (uint32_t i = 0; i < n; i++) {
		char why[160] = "";
		uint8_t r = decide_one(ctx, ls, own, &d[i], now, &changed, why, sizeof(why));
		acks[i] = (struct kl_ack){ .status = (uint8_t)kl_ack_reason_status(r), .reason = r };
		if (d[i].level < KL_DEC_LEVEL_MAX)
			kind_n[d[i].level]++;
		audit_decision(ctx, who, &d[i], r, why);
		if (r == KL_ACK_OK) {
			applied++;
		} else {
			refused[r]++;
			refused_debug(who, kl_dec_level_name(d[i].level), &d[i].addr, r, why);
		}
	}
	finish_batch(ctx, who, "decisions", ls, n, applied, refused, kinds, kind_n,
		     KL_DEC_LEVEL_MAX, changed);
}

/* ---- EDGE_RULES ---- */

static uint8_t edge_one(struct enf_ctx *ctx, struct enf_link_stats *ls, uint32_t own,
			const struct kl_edge_rule *e, uint32_t ephemeral_min, uint64_t now,
			bool *changed, char *why, size_t whylen)
{
	uint8_t key[sizeof(struct kl_edge6_key)];
	bool deny = e->action == KL_EDGE_ACT_ADD_DENY || e->action == KL_EDGE_ACT_DEL_DENY;
	bool add = e->action == KL_EDGE_ACT_ADD_ALLOW || e->action == KL_EDGE_ACT_ADD_DENY;
	enum enf_map_id m = fam(&e->src, deny ? ENF_M_EDGE4_DENY : ENF_M_EDGE4_ALLOW);

	/* Fold the port as the data plane does, or the rule never matches. */
	enf_edge_key(&e->src, e->port, e->proto, ephemeral_min, key);
	if (!add) {
		bool foreign = false;
		int rc = remove_own(ctx, m, key, own, now, changed, &foreign);
		if (rc < 0) {
			snprintf(why, whylen, "delete: %s", strerror(-rc));
			return KL_ACK_FAILED;
		}
		if (foreign) {
			snprintf(why, whylen, "the rule belongs to another origin");
			return KL_ACK_OPERATOR;
		}
		return KL_ACK_OK;
	}
	if (deny) {
		uint8_t r = protected_or_invalid(ctx, &e->src, why, whylen);
		if (r != KL_ACK_OK)
			return r;
	} else if (enf_target_invalid(&e->src)) {
		char ip[KL_ADDR_STRLEN];
		snprintf(why, whylen, "%s is %s", kl_addr_format(&e->src, ip, sizeof(ip)),
			 enf_target_invalid(&e->src));
		return KL_ACK_INVALID;
	}
	struct kl_rule v = { .expires_ns = enf_expiry(now, e->ttl_ms), .created_ns = now,
			     .origin = own };
	return put_own(ctx, ls, m, key, &v, own, now, false, changed, why, whylen);
}

void enf_edge_rules_apply(struct enf_ctx *ctx, const struct enf_actor *who,
			  const struct kl_edge_rule *e, uint32_t n, struct kl_ack *acks)
{
	static const char *const kinds[KL_EDGE_ACT_MAX] = { "none", "add_allow", "del_allow",
							    "add_deny", "del_deny" };
	uint32_t kind_n[KL_EDGE_ACT_MAX] = { 0 }, refused[KL_ACK_REASON_MAX] = { 0 };
	uint32_t applied = 0;
	bool changed = false;
	uint64_t now = ctx->now();
	uint32_t own = enf_origin_of(who->role);
	int li = enf_link_of(who->role);
	struct kl_cfg c = { 0 };

	if (li != ENF_LINK_GRAPHD) {
		kl_error("EDGE_RULES from %s reached graphd's handler", kl_role_name(who->role));
		refuse_all(acks, n, refused);
		finish_batch(ctx, who, "edge-rules", NULL, n, 0, refused, kinds, kind_n,
			     KL_EDGE_ACT_MAX, false);
		return;
	}
	struct enf_link_stats *ls = &ctx->links[li];
	if (enf_cfg_read(ctx, &c) < 0)
		c.ephemeral_min = ctx->cfg->ephemeral_min;
	for (uint32_t i = 0; i < n; i++) {
		char why[160] = "";
		uint8_t r = edge_one(ctx, ls, own, &e[i], c.ephemeral_min, now, &changed, why,
				     sizeof(why));
		acks[i] = (struct kl_ack){ .status = (uint8_t)kl_ack_reason_status(r), .reason = r };
		if (e[i].action < KL_EDGE_ACT_MAX)
			kind_n[e[i].action]++;
		audit_edge(ctx, who, &e[i], r, why);
		if (r == KL_ACK_OK) {
			applied++;
		} else {
			char what[64], p[16];
			snprintf(what, sizeof(what), "edge %s %u/%s", kl_edge_action_name(e[i].action),
				 e[i].port, enf_proto_name(e[i].proto, p, sizeof(p)));
			refused[r]++;
			refused_debug(who, what, &e[i].src, r, why);
		}
	}
	finish_batch(ctx, who, "edge-rules", ls, n, applied, refused, kinds, kind_n,
		     KL_EDGE_ACT_MAX, changed);
}

/* ---- RELEASE ---- */

struct rel_acc {
	const struct kl_addr *prefix;
	enum enf_map_id m;
	uint32_t own;
	uint8_t *keys;
	size_t ksz, n, cap;
	bool more;
};

static void key_host(enum enf_map_id m, const void *key, struct kl_addr *a)
{
	if (m == ENF_M_RL4 || m == ENF_M_DENY4) {
		uint32_t v;
		memcpy(&v, key, 4);
		enf_addr_from_host4(v, a);
	} else {
		enf_addr_from_host6(key, a);
	}
}

static int rel_visit(const void *key, const void *val, void *arg)
{
	struct rel_acc *acc = arg;
	struct kl_addr a;
	if (enf_val_origin(acc->m, val) != acc->own)
		return 0;
	key_host(acc->m, key, &a);
	if (!kl_cidr_contains(acc->prefix, &a))
		return 0;
	if (acc->n == acc->cap) {
		/* One more than the budget: the scan is not done. */
		acc->more = true;
		return 1;
	}
	memcpy(acc->keys + acc->n * acc->ksz, key, acc->ksz);
	acc->n++;
	return 0;
}

int enf_release(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_release *r,
		struct kl_release_ack *out)
{
	const enum enf_map_id maps[2] = { fam(&r->prefix, ENF_M_RL4), fam(&r->prefix, ENF_M_DENY4) };
	uint32_t own = enf_origin_of(who->role);
	size_t ksz = r->prefix.family == 4 ? 4 : 16;
	uint32_t left = r->budget;
	struct rel_acc acc = { .prefix = &r->prefix, .own = own, .ksz = ksz };
	char detail[160], ip[KL_ADDR_STRLEN];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	acc.keys = malloc((size_t)r->budget * ksz);
	if (!acc.keys)
		return -ENOMEM;
	for (int i = 0; i < 2 && !acc.more; i++) {
		acc.m = maps[i];
		acc.n = 0;
		acc.cap = left;
		if (kl_addr_is_host(&r->prefix)) {
			/* One address: a lookup, not a scan. */
			uint8_t val[sizeof(struct kl_rl_rule)];
			if (enf_map_lookup(ctx, acc.m, r->prefix.addr, val) == 0)
				rel_visit(r->prefix.addr, val, &acc);
		} else if ((rc = enf_map_foreach(ctx, acc.m, rel_visit, &acc)) < 0) {
			kl_error("release: walking %s: %s", enf_map_specs[acc.m].name, strerror(-rc));
			break;
		}
		for (size_t k = 0; k < acc.n; k++) {
			if (enf_map_delete(ctx, acc.m, acc.keys + k * ksz) == 0) {
				enf_count_note(ctx, acc.m, own, 0);
				out->removed++;
			}
		}
		left -= (uint32_t)acc.n;
	}
	free(acc.keys);
	out->more = acc.more ? 1 : 0;
	int li = enf_link_of(who->role);
	if (li >= 0)
		ctx->links[li].released += out->removed;
	snprintf(detail, sizeof(detail), "prefix=%s budget=%u removed=%u more=%u",
		 kl_addr_format(&r->prefix, ip, sizeof(ip)), r->budget, out->removed, out->more);
	enforcer_commit(ctx, who, "release", detail, rc < 0 ? KL_ERR_FAILED : KL_OK,
			out->removed > 0);
	return rc < 0 && out->removed == 0 ? rc : 0;
}

/* ---- ENFORCED_Q -> STATE ---- */

struct state_acc {
	enum enf_map_id m;
	uint8_t kind;
	uint32_t own;
	uint64_t now;
	struct kl_state_rec *recs;
	size_t n, cap, max;
	bool truncated, oom;
};

static int state_visit(const void *key, const void *val, void *arg)
{
	struct state_acc *acc = arg;
	uint64_t exp = enf_val_expires(acc->m, val);
	if (enf_val_origin(acc->m, val) != acc->own || enf_expired(exp, acc->now))
		return 0;
	if (acc->n == acc->max) {
		acc->truncated = true;
		return 1;
	}
	if (acc->n == acc->cap) {
		size_t nc = acc->cap ? acc->cap * 2 : 1024;
		if (nc > acc->max)
			nc = acc->max;
		struct kl_state_rec *nr = realloc(acc->recs, nc * sizeof(*nr));
		if (!nr) {
			acc->oom = true;
			return 1;
		}
		acc->recs = nr;
		acc->cap = nc;
	}
	struct kl_state_rec *s = &acc->recs[acc->n++];
	memset(s, 0, sizeof(*s));
	s->kind = acc->kind;
	switch (acc->m) {
	case ENF_M_EDGE4_ALLOW:
	case ENF_M_EDGE4_DENY: {
		struct kl_edge4_key k;
		memcpy(&k, key, sizeof(k));
		enf_addr_from_host4(k.src, &s->addr);
		s->port = k.port;
		s->proto = k.proto;
		break;
	}
	case ENF_M_EDGE6_ALLOW:
	case ENF_M_EDGE6_DENY: {
		struct kl_edge6_key k;
		memcpy(&k, key, sizeof(k));
		enf_addr_from_host6(k.src, &s->addr);
		s->port = k.port;
		s->proto = k.proto;
		break;
	}
	default:
		key_host(acc->m, key, &s->addr);
		break;
	}
	if (acc->kind == KL_STATE_RL) {
		struct kl_rl_rule r;
		memcpy(&r, val, sizeof(r));
		s->rate_pps = r.rate_pps > UINT32_MAX ? UINT32_MAX : (uint32_t)r.rate_pps;
		s->burst = r.burst > UINT32_MAX ? UINT32_MAX : (uint32_t)r.burst;
	}
	if (exp != 0) {
		/* Round up: 0 would read as "permanent". */
		s->expires_in_ms = (exp - acc->now + KL_NS_PER_MS - 1) / KL_NS_PER_MS;
	}
	return 0;
}

int enf_state(struct enf_ctx *ctx, const struct enf_actor *who, uint32_t max,
	      struct kl_state_rec **out, uint32_t *n, bool *truncated)
{
	static const struct {
		enum enf_map_id m;
		uint8_t kind;
	} maps[] = {
		{ ENF_M_RL4, KL_STATE_RL },		{ ENF_M_RL6, KL_STATE_RL },
		{ ENF_M_DENY4, KL_STATE_DENY },		{ ENF_M_DENY6, KL_STATE_DENY },
		{ ENF_M_EDGE4_ALLOW, KL_STATE_EDGE_ALLOW }, { ENF_M_EDGE6_ALLOW, KL_STATE_EDGE_ALLOW },
		{ ENF_M_EDGE4_DENY, KL_STATE_EDGE_DENY },	{ ENF_M_EDGE6_DENY, KL_STATE_EDGE_DENY },
	};
	struct state_acc acc = { .own = enf_origin_of(who->role), .now = ctx->now(), .max = max };
	int rc = 0;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]) && !acc.truncated; i++) {
		if (ctx->fd[maps[i].m] < 0)
			continue;
		acc.m = maps[i].m;
		acc.kind = maps[i].kind;
		rc = enf_map_foreach(ctx, acc.m, state_visit, &acc);
		if (rc < 0 || acc.oom) {
			free(acc.recs);
			return acc.oom ? -ENOMEM : rc;
		}
	}
	*out = acc.recs;
	*n = (uint32_t)acc.n;
	*truncated = acc.truncated;
	return 0;
}

/* ---- dispatch ---- */

static bool bad_log_ok(void)
{
	static time_t window;
	static unsigned count;
	time_t t = time(NULL);
	if (t != window) {
		window = t;
		count = 0;
	}
	return count++ < BAD_LOGS_PER_S;
}

static void reply_result(struct enf_reply *out, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_result(struct enf_reply *out, int status, const char *fmt, ...)
{
	va_list ap;
	out->type = KL_MSG_RESULT;
	out->status = status;
	va_start(ap, fmt);
	vsnprintf(out->text, sizeof(out->text), fmt, ap);
	va_end(ap);
}

static void malformed(struct enf_ctx *ctx, struct enf_reply *out, const struct enf_actor *who,
		      unsigned type, const char *err)
{
	if (bad_log_ok())
		kl_warn("refused a malformed %s from %s (uid %u, pid %d): %s", kl_msg_type_name(type),
			kl_role_name(who->role), (unsigned)who->uid, (int)who->pid, err);
	reply_result(out, KL_ERR_INVALID, "%s", err);
	enf_audit_refusal(ctx, who, kl_msg_type_name(type), KL_ERR_INVALID, err);
}

static void h_decisions(struct enf_ctx *ctx, const struct enf_actor *who, const uint8_t *p,
			size_t len, struct enf_reply *out)
{
	char err[256];
	uint32_t n;
	if (kl_decisions_count(p, len, &n, err, sizeof(err)) < 0) {
		malformed(ctx, out, who, KL_MSG_DECISIONS, err);
		return;
	}
	struct kl_decision *d = calloc(n ? n : 1, sizeof(*d));
	struct kl_ack *acks = calloc(n ? n : 1, sizeof(*acks));
	out->len = kl_acks_len(n);
	out->buf = malloc(out->len);
	if (!d || !acks || !out->buf) {
		free(out->buf);
		out->buf = NULL;
		reply_result(out, KL_ERR_FAILED, "out of memory for %u decisions", n);
	} else if (kl_decisions_decode(p, len, d, n, &n, err, sizeof(err)) < 0) {
		free(out->buf);
		out->buf = NULL;
		malformed(ctx, out, who, KL_MSG_DECISIONS, err);
	} else {
		enf_decisions_apply(ctx, who, d, n, acks);
		kl_acks_encode(acks, n, out->buf);
		out->type = KL_MSG_DECISIONS_ACK;
	}
	free(d);
	free(acks);
}

/* The decider's aggregate new-source limit (DESIGN §1), inside the bounds
 * of enforcer.yaml: no rate below new_source_min_rate, no TTL above
 * new_source_max_ttl (0: refused). Protected, allowlisted and known sources
 * are exempt in the data plane. */
static void h_newsrc_limit(struct enf_ctx *ctx, const struct enf_actor *who, const uint8_t *p,
			   size_t len, struct enf_reply *out)
{
	char err[256], detail[128];
	struct kl_newsrc_limit l;
	struct kl_cfg c;
	const struct enf_config *cfg = ctx->cfg;

	if (kl_newsrc_limit_decode(p, len, &l, err, sizeof(err)) < 0) {
		malformed(ctx, out, who, KL_MSG_NEWSRC_LIMIT, err);
		return;
	}
	snprintf(detail, sizeof(detail), "rate=%u burst=%u ttl=%llums", l.rate_pps, l.burst,
		 (unsigned long long)l.ttl_ms);
	if (cfg->newsrc_max_ttl == 0)
		reply_result(out, KL_ERR_REFUSED,
			     "the new-source limit is not the decider's to set (new_source_max_ttl: 0)");
	else if (l.rate_pps < cfg->newsrc_min_rate)
		reply_result(out, KL_ERR_REFUSED, "rate %u pps is below new_source_min_rate %llu",
			     l.rate_pps, (unsigned long long)cfg->newsrc_min_rate);
	else if (l.ttl_ms > (uint64_t)cfg->newsrc_max_ttl * 1000)
		reply_result(out, KL_ERR_REFUSED, "ttl %llu ms is above new_source_max_ttl %llu s",
			     (unsigned long long)l.ttl_ms, (unsigned long long)cfg->newsrc_max_ttl);
	if (out->status != KL_OK) {
		enforcer_commit(ctx, who, "new-sources-limit", detail, out->status, false);
		return;
	}
	int rc = enf_cfg_read(ctx, &c);
	if (rc == 0) {
		c.new_rate_pps = l.rate_pps;
		c.new_burst = l.burst;
		c.new_expires_ns = enf_expiry(ctx->now(), l.ttl_ms);
		rc = enf_cfg_write(ctx, &c);
	}
	if (rc < 0) {
		reply_result(out, KL_ERR_FAILED, "cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		enforcer_commit(ctx, who, "new-sources-limit", detail, KL_ERR_FAILED, false);
		return;
	}
	enforcer_commit(ctx, who, "new-sources-limit", detail, KL_OK, false);
	reply_result(out, KL_OK, "new-source limit %u pps, burst %u, for %llu ms", l.rate_pps, l.burst,
		     (unsigned long long)l.ttl_ms);
}

static void h_edge_rules(struct enf_ctx *ctx, const struct enf_actor *who, const uint8_t *p,
			 size_t len, struct enf_reply *out)
{
	char err[256];
	uint32_t n;
	if (kl_edge_rules_count(p, len, &n, err, sizeof(err)) < 0) {
		malformed(ctx, out, who, KL_MSG_EDGE_RULES, err);
		return;
	}
	struct kl_edge_rule *e = calloc(n ? n : 1, sizeof(*e));
	struct kl_ack *acks = calloc(n ? n : 1, sizeof(*acks));
	out->len = kl_acks_len(n);
	out->buf = malloc(out->len);
	if (!e || !acks || !out->buf) {
		free(out->buf);
		out->buf = NULL;
		reply_result(out, KL_ERR_FAILED, "out of memory for %u edge rules", n);
	} else if (kl_edge_rules_decode(p, len, e, n, &n, err, sizeof(err)) < 0) {
		free(out->buf);
		out->buf = NULL;
		malformed(ctx, out, who, KL_MSG_EDGE_RULES, err);
	} else {
		enf_edge_rules_apply(ctx, who, e, n, acks);
		kl_acks_encode(acks, n, out->buf);
		out->type = KL_MSG_EDGE_ACK;
	}
	free(e);
	free(acks);
}

static void h_release(struct enf_ctx *ctx, const struct enf_actor *who, const uint8_t *p,
		      size_t len, struct enf_reply *out)
{
	char err[256];
	struct kl_release r;
	struct kl_release_ack a;
	if (kl_release_decode(p, len, &r, err, sizeof(err)) < 0) {
		malformed(ctx, out, who, KL_MSG_RELEASE, err);
		return;
	}
	int rc = enf_release(ctx, who, &r, &a);
	if (rc < 0) {
		reply_result(out, KL_ERR_FAILED, "release failed: %s", strerror(-rc));
		return;
	}
	out->len = KL_RELEASE_ACK_LEN;
	out->buf = malloc(out->len);
	if (!out->buf) {
		reply_result(out, KL_ERR_FAILED, "out of memory");
		return;
	}
	kl_release_ack_encode(&a, out->buf);
	out->type = KL_MSG_RELEASE_ACK;
}

static void h_enforced_q(struct enf_ctx *ctx, const struct enf_actor *who, const uint8_t *p,
			 size_t len, struct enf_reply *out)
{
	char err[256];
	uint32_t max, n = 0;
	bool truncated = false;
	struct kl_state_rec *recs = NULL;
	if (kl_enforced_q_decode(p, len, &max, err, sizeof(err)) < 0) {
		malformed(ctx, out, who, KL_MSG_ENFORCED_Q, err);
		return;
	}
	int rc = enf_state(ctx, who, max, &recs, &n, &truncated);
	if (rc < 0) {
		reply_result(out, KL_ERR_FAILED, "cannot read the maps: %s", strerror(-rc));
		return;
	}
	out->len = kl_state_len(n);
	out->buf = malloc(out->len);
	if (!out->buf) {
		free(recs);
		reply_result(out, KL_ERR_FAILED, "out of memory for %u state records", n);
		return;
	}
	kl_state_encode(recs, n, truncated, out->buf);
	free(recs);
	out->type = KL_MSG_STATE;
	kl_debug("STATE for %s(pid=%d): %u entries%s", kl_role_name(who->role), (int)who->pid, n,
		 truncated ? " (truncated)" : "");
}

/* Refill the link's time credit (half of the wall time that passed) and
 * say whether it may run a request now. Real time, not ctx->now: this is
 * about CPU the enforcer spends, which a test clock does not see. */
static bool busy_ok(struct enf_link_stats *ls, uint64_t t, int64_t *wait_ms)
{
	if (ls->busy_last_ns == 0) {
		ls->busy_credit_ns = ENF_BUSY_BURST_NS;
	} else if (t > ls->busy_last_ns) {
		int64_t add = (int64_t)((t - ls->busy_last_ns) / 2);
		ls->busy_credit_ns = ls->busy_credit_ns + add > ENF_BUSY_BURST_NS
					     ? ENF_BUSY_BURST_NS
					     : ls->busy_credit_ns + add;
	}
	ls->busy_last_ns = t;
	*wait_ms = ls->busy_credit_ns > 0 ? 0 : (-ls->busy_credit_ns * 2) / 1000000 + 1;
	return ls->busy_credit_ns > 0;
}

void enf_link_handle(struct enf_ctx *ctx, const struct enf_actor *who, unsigned type,
		     const uint8_t *payload, size_t len, struct enf_reply *out)
{
	memset(out, 0, sizeof(*out));
	int li = enf_link_of(who->role);
	if (!enf_msg_role_may(who->role, type) || li < 0) {
		if (bad_log_ok())
			kl_warn("refused %s from %s (uid %u, pid %d): not this role's to send",
				kl_msg_type_name(type), kl_role_name(who->role), (unsigned)who->uid,
				(int)who->pid);
		reply_result(out, KL_ERR_REFUSED, "%s may not send %s to the enforcer on this socket",
			     kl_role_name(who->role), kl_msg_type_name(type));
		enf_audit_refusal(ctx, who, kl_msg_type_name(type), KL_ERR_REFUSED, out->text);
		return;
	}
	struct enf_link_stats *ls = &ctx->links[li];
	int64_t wait_ms;
	uint64_t t0 = enf_boottime_ns();
	if (!busy_ok(ls, t0, &wait_ms)) {
		ls->busy_refused++;
		if (bad_log_ok())
			kl_warn("refused %s from %s (pid %d): over its share of the enforcer's time",
				kl_msg_type_name(type), kl_role_name(who->role), (int)who->pid);
		reply_result(out, KL_ERR_REFUSED,
			     "busy: %s used its share of the enforcer's time; retry in %lld ms",
			     kl_role_name(who->role), (long long)wait_ms);
		enf_audit_refusal(ctx, who, kl_msg_type_name(type), KL_ERR_REFUSED, out->text);
		return;
	}
	switch (type) {
	case KL_MSG_DECISIONS: h_decisions(ctx, who, payload, len, out); break;
	case KL_MSG_EDGE_RULES: h_edge_rules(ctx, who, payload, len, out); break;
	case KL_MSG_RELEASE: h_release(ctx, who, payload, len, out); break;
	case KL_MSG_ENFORCED_Q: h_enforced_q(ctx, who, payload, len, out); break;
	case KL_MSG_NEWSRC_LIMIT: h_newsrc_limit(ctx, who, payload, len, out); break;
	default:
		reply_result(out, KL_ERR_UNSUPPORTED, "%s is not served on this socket",
			     kl_msg_type_name(type));
		enf_audit_refusal(ctx, who, kl_msg_type_name(type), KL_ERR_UNSUPPORTED, out->text);
		break;
	}
	ls->busy_credit_ns -= (int64_t)(enf_boottime_ns() - t0);
}

void enf_reply_free(struct enf_reply *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* ---- status ---- */

json_t *enf_links_json(const struct enf_ctx *ctx)
{
	const struct enf_config *cfg = ctx->cfg;
	json_t *o = json_object();
	for (int i = 0; i < ENF_LINK_MAX; i++) {
		const struct enf_link_stats *ls = &ctx->links[i];
		uint32_t origin = i == ENF_LINK_DECIDER ? KL_ORIGIN_DECIDER : KL_ORIGIN_GRAPHD;
		char sock[PATH_MAX + 32];
		snprintf(sock, sizeof(sock), "%s/enforcer/enforcer-%s.sock", cfg->run_dir,
			 link_names[i]);
		json_t *ref = json_object();
		json_int_t refused = 0;
		for (unsigned r = 1; r < KL_ACK_REASON_MAX; r++) {
			json_object_set_new(ref, kl_ack_reason_name(r),
					    json_integer((json_int_t)ls->refused[r]));
			refused += (json_int_t)ls->refused[r];
		}
		json_object_set_new(
			o, link_names[i],
			json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "socket",
				  sock, "user",
				  i == ENF_LINK_DECIDER ? cfg->decider_user : cfg->graph_user, "uid",
				  ls->uid >= 0 ? json_integer(ls->uid) : json_null(), "entries",
				  (json_int_t)ctx->origin_count[origin], "max",
				  (json_int_t)ls->quota.max, "rate", (json_int_t)ls->quota.rate,
				  "batches", (json_int_t)ls->batches, "applied",
				  (json_int_t)ls->applied, "refused", refused, "released",
				  (json_int_t)ls->released, "busy_refused", (json_int_t)ls->busy_refused,
				  "refused_by", ref));
	}
	json_object_set_new(o, "operator_entries",
			    json_integer((json_int_t)ctx->origin_count[KL_ORIGIN_OPERATOR]));
	return o;
}
