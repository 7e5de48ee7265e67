/* SPDX-License-Identifier: MPL-2.0 */
/* The graph learner: each promotion rule, expiry, freeze, operator states
 * that learning never overwrites, suspicious and excluded sources,
 * ephemeral ports, the three modes, and the edge-rule push planner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "graphd/graph.h"
#include "graphd/push.h"
#include "ipc/violation.h"

#define MIN 60000ll
#define SEC 1000ll

static struct kl_addr ip(const char *s)
{
	struct kl_addr a;
	if (kl_addr_parse(s, &a, NULL, 0) < 0)
		fail_msg("bad test address %s", s);
	return a;
}

static struct gr_obs obs(const char *src, uint16_t port, uint8_t proto)
{
	struct gr_obs o;
	memset(&o, 0, sizeof(o));
	o.src = ip(src);
	o.port = port;
	o.proto = proto;
	o.pkts = 3;
	o.bytes = 180;
	return o;
}

static struct gr_key key(const struct gr_params *p, const char *src, uint16_t port, uint8_t proto)
{
	struct gr_key k;
	struct kl_addr a = ip(src);
	assert_true(gr_key_of(p, &a, port, proto, &k));
	return k;
}

static struct gr_edge *edge(struct gr_graph *g, const char *src, uint16_t port, uint8_t proto)
{
	struct gr_key k = key(&g->p, src, port, proto);
	return gr_find(g, &k);
}

/* The profiles.md numbers: 5 ticks, 3 windows of 5 min, 10 min of age. */
static void init(struct gr_graph *g, enum gr_mode mode)
{
	struct gr_params p;
	gr_params_default(&p);
	p.mode = mode;
	assert_int_equal(gr_init(g, &p), 0);
}

static void tick1(struct gr_graph *g, int64_t t, const char *src, uint16_t port, uint8_t proto)
{
	struct gr_obs o = obs(src, port, proto);
	assert_int_equal(gr_tick(g, t, &o, 1, NULL, 0), 0);
	gr_flushed(g);
}

static void test_defaults_are_the_profile(void **state)
{
	(void)state;
	struct gr_params p;
	gr_params_default(&p);
	assert_int_equal(p.min_seen, 5);
	assert_int_equal(p.min_windows, 3);
	assert_int_equal(p.min_age_ms, 10 * MIN);
	assert_int_equal(p.promote_every_ms, 5 * MIN);
	assert_int_equal(p.expire_ttl_ms, 30ll * 24 * 60 * MIN);
	assert_int_equal(p.ephemeral_min, 32768);
	assert_int_equal(p.mode, GR_MODE_LEARN);
}

/* Each rule alone holds a candidate back; meeting all three promotes. */
static void test_promotion_needs_seen(void **state)
{
	(void)state;
	struct gr_graph g;
	char why[160];
	init(&g, GR_MODE_LEARN);
	/* 4 ticks over 3 windows and 11 minutes: only `seen` is short. */
	tick1(&g, 0, "198.18.0.1", 80, 6);
	tick1(&g, 5 * MIN + 1, "198.18.0.1", 80, 6);
	tick1(&g, 10 * MIN + 1, "198.18.0.1", 80, 6);
	tick1(&g, 11 * MIN, "198.18.0.1", 80, 6);
	struct gr_edge *e = edge(&g, "198.18.0.1", 80, 6);
	assert_non_null(e);
	assert_int_equal(e->seen, 4);
	assert_int_equal(e->windows, 3);
	assert_false(gr_ready(&g.p, e, 11 * MIN, why, sizeof(why)));
	assert_string_equal(why, "seen 4/5 ticks");
	assert_int_equal(gr_promote(&g, 11 * MIN), 0);
	assert_int_equal(e->state, GR_CANDIDATE);
	tick1(&g, 12 * MIN, "198.18.0.1", 80, 6);
	e = edge(&g, "198.18.0.1", 80, 6);
	assert_true(gr_ready(&g.p, e, 12 * MIN, why, sizeof(why)));
	assert_int_equal(gr_promote(&g, 12 * MIN), 1);
	assert_int_equal(e->state, GR_LEARNED);
	assert_int_equal(e->by, GR_BY_LEARNER);
	assert_int_equal(g.count[GR_LEARNED], 1);
	assert_int_equal(g.count[GR_CANDIDATE], 0);
	gr_free(&g);
}

static void test_promotion_needs_windows(void **state)
{
	(void)state;
	struct gr_graph g;
	char why[160];
	init(&g, GR_MODE_LEARN);
	/* 6 ticks, 11 minutes old, but only in windows 0 and 2. */
	for (int i = 0; i < 5; i++)
		tick1(&g, i * MIN, "198.18.0.2", 443, 6);
	tick1(&g, 11 * MIN, "198.18.0.2", 443, 6);
	struct gr_edge *e = edge(&g, "198.18.0.2", 443, 6);
	assert_int_equal(e->seen, 6);
	assert_int_equal(e->windows, 2);
	assert_false(gr_ready(&g.p, e, 11 * MIN, why, sizeof(why)));
	assert_string_equal(why, "windows 2/3");
	assert_int_equal(gr_promote(&g, 11 * MIN), 0);
	/* A tick in a third window does it (the 15 min check in gr_tick). */
	tick1(&g, 16 * MIN, "198.18.0.2", 443, 6);
	e = edge(&g, "198.18.0.2", 443, 6);
	assert_int_equal(e->windows, 3);
	assert_true(g.last.maintained);
	assert_int_equal(g.last.promoted, 1);
	assert_int_equal(e->state, GR_LEARNED);
	gr_free(&g);
}

static void test_promotion_needs_age(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;
	char why[160];
	gr_params_default(&p);
	p.window_ms = 1 * MIN;
	assert_int_equal(gr_init(&g, &p), 0);
	/* 6 ticks in 6 windows, but only 5 minutes old. */
	for (int i = 0; i <= 5; i++)
		tick1(&g, i * MIN, "198.18.0.3", 22, 6);
	struct gr_edge *e = edge(&g, "198.18.0.3", 22, 6);
	assert_false(gr_ready(&g.p, e, 5 * MIN, why, sizeof(why)));
	assert_string_equal(why, "age 5m/10m");
	assert_int_equal(gr_promote(&g, 5 * MIN), 0);
	assert_int_equal(gr_promote(&g, 10 * MIN - 1), 0);
	assert_int_equal(gr_promote(&g, 10 * MIN), 1);
	gr_free(&g);
}

/* Several records for one edge in one tick are one tick of evidence; the
 * learner promotes on its own schedule from gr_tick. */
static void test_promotion_schedule_and_once_per_tick(void **state)
{
	(void)state;
	struct gr_graph g;
	init(&g, GR_MODE_LEARN);
	struct gr_obs two[2] = { obs("198.18.0.4", 53, 17), obs("198.18.0.4", 53, 17) };
	for (int64_t t = 0; t <= 20 * MIN; t += MIN) {
		assert_int_equal(gr_tick(&g, t, two, 2, NULL, 0), 0);
		struct gr_edge *e = edge(&g, "198.18.0.4", 53, 17);
		/* promotion runs at multiples of 5 min; ready from t=10 min */
		if (t < 10 * MIN)
			assert_int_equal(e->state, GR_CANDIDATE);
		if (t == 10 * MIN) {
			assert_true(g.last.maintained);
			assert_int_equal(g.last.promoted, 1);
			assert_int_equal(e->state, GR_LEARNED);
		}
		gr_flushed(&g);
	}
	struct gr_edge *e = edge(&g, "198.18.0.4", 53, 17);
	assert_int_equal(e->seen, 21);
	assert_int_equal(e->pkts, 2 * 21 * 3);
	gr_free(&g);
}

/* Steady traffic on up to two edges for 12 minutes from t0: learned.
 * (The graph's clock never goes back, so edges learned together share
 * their ticks.) */
static void learn2(struct gr_graph *g, const char *src, const char *src2, uint16_t port,
		   uint8_t proto, int64_t t0)
{
	for (int i = 0; i < 12; i++) {
		struct gr_obs o[2] = { obs(src, port, proto), obs(src2 ? src2 : src, port, proto) };
		assert_int_equal(gr_tick(g, t0 + i * MIN, o, src2 ? 2 : 1, NULL, 0), 0);
		gr_flushed(g);
	}
	gr_promote(g, t0 + 11 * MIN);
	assert_int_equal(edge(g, src, port, proto)->state, GR_LEARNED);
	if (src2 != NULL)
		assert_int_equal(edge(g, src2, port, proto)->state, GR_LEARNED);
}

static void learn_edge(struct gr_graph *g, const char *src, uint16_t port, uint8_t proto,
		       int64_t t0)
{
	learn2(g, src, NULL, port, proto, t0);
}

static void test_expiry(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;
	gr_params_default(&p);
	p.expire_ttl_ms = 60 * MIN;
	assert_int_equal(gr_init(&g, &p), 0);
	learn_edge(&g, "198.18.0.5", 80, 6, 0);
	tick1(&g, 0, "198.18.0.6", 81, 6); /* a candidate, last seen at 11 min: clamped t */
	int64_t last = g.last_t;
	assert_int_equal(gr_expire(&g, last + 59 * MIN), 0);
	assert_int_equal(gr_expire(&g, last + 60 * MIN), 2);
	struct gr_edge *e = edge(&g, "198.18.0.5", 80, 6);
	assert_int_equal(e->state, GR_EXPIRED);
	assert_int_equal(edge(&g, "198.18.0.6", 81, 6)->state, GR_EXPIRED);
	gr_flushed(&g);
	/* Seen again: a candidate with fresh evidence. */
	tick1(&g, last + 61 * MIN, "198.18.0.5", 80, 6);
	e = edge(&g, "198.18.0.5", 80, 6);
	assert_int_equal(e->state, GR_CANDIDATE);
	assert_int_equal(e->seen, 1);
	assert_int_equal(e->windows, 1);
	assert_int_equal(e->first_seen, last + 61 * MIN);
	/* Idle for two TTLs: deleted (after the store has it). */
	assert_int_equal(gr_expire(&g, last + 120 * MIN), 0);
	assert_non_null(edge(&g, "198.18.0.6", 81, 6));
	assert_int_equal(g.ngone, 1);
	gr_flushed(&g);
	assert_null(edge(&g, "198.18.0.6", 81, 6));
	assert_non_null(edge(&g, "198.18.0.5", 80, 6));
	assert_int_equal(g.n, 1);
	assert_int_equal(g.count[GR_EXPIRED], 0);
	gr_free(&g);
}

/* A deleted edge the store has not written yet (its flush failed) comes
 * back whole when it is seen again. */
static void test_deleted_edge_seen_before_flush(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;
	gr_params_default(&p);
	p.expire_ttl_ms = 10 * MIN;
	assert_int_equal(gr_init(&g, &p), 0);
	tick1(&g, 0, "198.18.0.13", 80, 6);
	gr_expire(&g, 10 * MIN);
	gr_flushed(&g);
	gr_expire(&g, 20 * MIN);
	assert_int_equal(g.ngone, 1);
	/* no gr_flushed(): the store failed */
	struct gr_obs o = obs("198.18.0.13", 80, 6);
	assert_int_equal(gr_tick(&g, 21 * MIN, &o, 1, NULL, 0), 0);
	assert_int_equal(g.ngone, 0);
	struct gr_edge *e = edge(&g, "198.18.0.13", 80, 6);
	assert_int_equal(e->state, GR_CANDIDATE);
	assert_int_equal(e->seen, 1);
	assert_int_equal(g.count[GR_CANDIDATE], 1);
	assert_int_equal(g.count[GR_EXPIRED], 0);
	gr_flushed(&g);
	assert_int_equal(g.n, 1);
	gr_free(&g);
}

/* The baseline and the operator's word do not age out. */
static void test_baseline_and_operator_never_expire(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_freeze_report r;
	char why[128];
	init(&g, GR_MODE_LEARN);
	learn_edge(&g, "198.18.0.7", 80, 6, 0);
	gr_freeze(&g, 12 * MIN, false, 0, &r);
	struct kl_addr a = ip("198.18.0.8"), b = ip("198.18.0.9");
	assert_int_equal(gr_set_source(&g, &a, false, 22, 6, GR_APPROVED, 0, 0, why, sizeof(why)), 1);
	assert_int_equal(gr_set_source(&g, &b, false, 23, 6, GR_DENIED, 0, 0, why, sizeof(why)), 1);
	assert_int_equal(gr_expire(&g, 1000ll * 24 * 60 * MIN), 0);
	assert_int_equal(edge(&g, "198.18.0.7", 80, 6)->state, GR_FROZEN);
	assert_int_equal(edge(&g, "198.18.0.8", 22, 6)->state, GR_APPROVED);
	assert_int_equal(edge(&g, "198.18.0.9", 23, 6)->state, GR_DENIED);
	gr_free(&g);
}

static void test_freeze(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_freeze_report r;
	char why[128];
	init(&g, GR_MODE_LEARN);
	learn2(&g, "198.18.0.10", "fd00:6b6c::10", 80, 6, 0);
	tick1(&g, 12 * MIN, "198.18.0.11", 80, 6); /* candidate */
	struct kl_addr a = ip("198.18.0.12");
	gr_set_source(&g, &a, false, 25, 6, GR_APPROVED, 1000, 12 * MIN, why, sizeof(why));
	gr_flushed(&g);

	gr_freeze(&g, 13 * MIN, true, 0, &r);
	assert_int_equal(r.frozen_now, 2);
	assert_int_equal(r.not_ready, 1);
	assert_int_equal(r.approved, 1);
	assert_int_equal(g.count[GR_LEARNED], 2); /* dry run: nothing changed */
	assert_int_equal(g.ndirty, 0);

	gr_freeze(&g, 13 * MIN, false, 1000, &r);
	assert_int_equal(r.frozen_now, 2);
	struct gr_edge *e = edge(&g, "fd00:6b6c::10", 80, 6);
	assert_int_equal(e->state, GR_FROZEN);
	assert_int_equal(e->by, GR_BY_FREEZE);
	assert_int_equal(e->by_uid, 1000);
	assert_int_equal(e->state_at, 13 * MIN);
	assert_int_equal(edge(&g, "198.18.0.11", 80, 6)->state, GR_CANDIDATE);
	e = edge(&g, "198.18.0.12", 25, 6);
	assert_int_equal(e->state, GR_APPROVED); /* in the baseline, keeps its state */
	assert_int_equal(e->by, GR_BY_OPERATOR);
	assert_int_equal(g.ndirty, 2);

	gr_freeze(&g, 14 * MIN, false, 0, &r);
	assert_int_equal(r.frozen_now, 0);
	assert_int_equal(r.already_frozen, 2);
	gr_free(&g);
}

/* Approved and denied survive everything learning does. */
static void test_operator_states_never_overwritten(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;
	char why[128];
	gr_params_default(&p);
	p.expire_ttl_ms = 30 * MIN;
	assert_int_equal(gr_init(&g, &p), 0);
	tick1(&g, 0, "198.18.0.20", 80, 6);
	tick1(&g, 0, "198.18.0.20", 81, 6);
	struct kl_addr a = ip("198.18.0.20"), d = ip("198.18.0.21");
	assert_int_equal(gr_set_source(&g, &a, true, 0, 0, GR_APPROVED, 7, 1, why, sizeof(why)), 2);
	assert_int_equal(gr_set_source(&g, &d, false, 53, 17, GR_DENIED, 7, 1, why, sizeof(why)), 1);
	/* An hour of steady traffic, promotion and expiry checks: nothing moves. */
	for (int64_t t = MIN; t <= 60 * MIN; t += MIN) {
		struct gr_obs o[3] = { obs("198.18.0.20", 80, 6), obs("198.18.0.20", 81, 6),
				       obs("198.18.0.21", 53, 17) };
		assert_int_equal(gr_tick(&g, t, o, 3, NULL, 0), 0);
		gr_flushed(&g);
	}
	assert_int_equal(edge(&g, "198.18.0.20", 80, 6)->state, GR_APPROVED);
	assert_int_equal(edge(&g, "198.18.0.20", 81, 6)->state, GR_APPROVED);
	struct gr_edge *e = edge(&g, "198.18.0.21", 53, 17);
	assert_int_equal(e->state, GR_DENIED);
	assert_int_equal(e->by, GR_BY_OPERATOR);
	assert_int_equal(e->by_uid, 7);
	assert_true(e->seen > 50);
	/* And no traffic for long: still there. */
	assert_int_equal(gr_expire(&g, 1000 * MIN), 0);
	/* The operator may change their mind. */
	assert_int_equal(gr_set_source(&g, &d, true, 0, 0, GR_APPROVED, 8, 2, why, sizeof(why)), 1);
	assert_int_equal(e->state, GR_APPROVED);
	assert_int_equal(gr_set_source(&g, &d, true, 0, 0, GR_APPROVED, 8, 2, why, sizeof(why)), 0);
	/* Loopback is not a source the graph knows. */
	struct kl_addr lo = ip("127.0.0.1");
	assert_int_equal(gr_set_source(&g, &lo, true, 0, 0, GR_APPROVED, 8, 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "127.0.0.1"));
	gr_free(&g);
}

/* Rate-limited, blocked or violating sources add no evidence. */
static void test_suspicious_sources_not_learned(void **state)
{
	(void)state;
	struct gr_graph g;
	init(&g, GR_MODE_LEARN);
	struct kl_addr bad = ip("198.18.0.30");
	tick1(&g, 0, "198.18.0.31", 80, 6);
	/* A new edge of a suspicious source is not even recorded. */
	struct gr_obs o[2] = { obs("198.18.0.30", 80, 6), obs("198.18.0.31", 80, 6) };
	assert_int_equal(gr_tick(&g, MIN, o, 2, &bad, 1), 0);
	assert_null(edge(&g, "198.18.0.30", 80, 6));
	assert_int_equal(g.last.suspicious, 1);
	assert_int_equal(g.last.merged, 1);
	/* Held for suspect_hold (10 min) after the last suspicious tick. */
	for (int64_t t = 2 * MIN; t <= 11 * MIN; t += MIN) {
		assert_int_equal(gr_tick(&g, t, o, 2, NULL, 0), 0);
		assert_null(edge(&g, "198.18.0.30", 80, 6));
	}
	assert_int_equal(gr_tick(&g, 12 * MIN, o, 2, NULL, 0), 0);
	struct gr_edge *e = edge(&g, "198.18.0.30", 80, 6);
	assert_non_null(e);
	assert_int_equal(e->seen, 1);
	/* An existing candidate keeps its evidence while its source is suspicious. */
	assert_int_equal(gr_tick(&g, 13 * MIN, o, 2, &bad, 1), 0);
	assert_int_equal(e->seen, 1);
	assert_int_equal(e->last_seen, 13 * MIN);
	/* The other source learned all along. */
	assert_int_equal(edge(&g, "198.18.0.31", 80, 6)->state, GR_LEARNED);
	gr_free(&g);
}

static void test_excluded_sources(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;
	struct kl_addr ex[1];
	assert_int_equal(kl_cidr_parse("198.18.7.0/24", &ex[0], NULL, 0), 0);
	gr_params_default(&p);
	p.mode = GR_MODE_ENFORCE;
	p.exclude = ex;
	p.nexclude = 1;
	assert_int_equal(gr_init(&g, &p), 0);
	struct gr_obs o[6] = { obs("198.18.7.9", 80, 6), obs("127.0.0.1", 80, 6),
			       obs("::1", 80, 6), obs("224.0.0.251", 5353, 17),
			       obs("ff02::fb", 5353, 17), obs("255.255.255.255", 67, 17) };
	assert_int_equal(gr_tick(&g, 0, o, 6, NULL, 0), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(g.nviol, 0); /* no baseline could ever hold them */
	assert_int_equal(g.last.excluded, 6);
	gr_free(&g);
}

static void test_ephemeral_ports(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_key k;
	init(&g, GR_MODE_LEARN);
	struct gr_obs o[6] = { obs("198.18.0.40", 40000, 6), obs("198.18.0.40", 61000, 6),
			       obs("198.18.0.40", 32767, 6), obs("198.18.0.40", 32768, 17),
			       obs("198.18.0.40", 0, 1), obs("fd00:6b6c::40", 50000, 6) };
	o[4].port = 7; /* ICMP has no ports: whatever came, the key has 0 */
	assert_int_equal(gr_tick(&g, 0, o, 6, NULL, 0), 0);
	assert_int_equal(g.n, 5);
	struct gr_edge *e = edge(&g, "198.18.0.40", 0, 6);
	assert_non_null(e);
	assert_int_equal(e->seen, 1); /* two records, one tick */
	assert_int_equal(e->pkts, 6);
	assert_non_null(edge(&g, "198.18.0.40", 32767, 6));
	assert_non_null(edge(&g, "198.18.0.40", 0, 17));
	assert_non_null(edge(&g, "198.18.0.40", 0, 1));
	assert_non_null(edge(&g, "fd00:6b6c::40", 0, 6));
	struct kl_addr a = ip("198.18.0.40");
	assert_true(gr_key_of(&g.p, &a, 40000, 6, &k));
	assert_int_equal(k.port, 0);
	g.p.ephemeral_min = 0; /* folding off */
	assert_true(gr_key_of(&g.p, &a, 40000, 6, &k));
	assert_int_equal(k.port, 40000);
	gr_free(&g);
}

static void frozen_baseline(struct gr_graph *g, enum gr_mode mode)
{
	struct gr_freeze_report r;
	init(g, GR_MODE_LEARN);
	learn2(g, "198.18.0.50", "fd00:6b6c::50", 8080, 6, 0);
	gr_freeze(g, 12 * MIN, false, 0, &r);
	gr_flushed(g);
	g->p.mode = mode;
}

static void test_learn_mode_has_no_violations(void **state)
{
	(void)state;
	struct gr_graph g;
	frozen_baseline(&g, GR_MODE_LEARN);
	struct gr_obs o = obs("198.18.0.50", 9090, 6);
	assert_int_equal(gr_tick(&g, 20 * MIN, &o, 1, NULL, 0), 0);
	assert_int_equal(g.nviol, 0);
	assert_int_equal(edge(&g, "198.18.0.50", 9090, 6)->state, GR_CANDIDATE);
	gr_free(&g);
}

static void check_mode(enum gr_mode mode, const char *src, uint8_t action)
{
	struct gr_graph g;
	frozen_baseline(&g, mode);
	struct gr_obs o[2] = { obs(src, 8080, 6), obs(src, 9090, 6) };
	assert_int_equal(gr_tick(&g, 20 * MIN, o, 2, NULL, 0), 0);
	assert_int_equal(g.nviol, 1);
	struct gr_key k = key(&g.p, src, 9090, 6);
	assert_memory_equal(&g.viol[0].k, &k, sizeof(k));
	assert_int_equal(g.viol[0].action, action);
	assert_int_equal(g.viol[0].mode, mode);
	assert_int_equal(g.viol[0].t_ms, 20 * MIN);
	struct gr_edge *e = edge(&g, src, 9090, 6);
	assert_int_equal(e->state, GR_CANDIDATE); /* recorded, so it can be approved */
	if (mode == GR_MODE_ENFORCE)
		assert_int_equal(e->deny_until, 20 * MIN + g.p.deny_ttl_ms);
	else
		assert_int_equal(e->deny_until, GR_NEVER);
	gr_flushed(&g);
	/* Not again within the repeat interval; again after it. */
	assert_int_equal(gr_tick(&g, 20 * MIN + 30 * SEC, o, 2, NULL, 0), 0);
	assert_int_equal(g.nviol, 0);
	assert_int_equal(gr_tick(&g, 21 * MIN, o, 2, NULL, 0), 0);
	assert_int_equal(g.nviol, 1);
	/* No promotion in the frozen modes, however long the path is used. */
	for (int64_t t = 22 * MIN; t < 60 * MIN; t += MIN)
		assert_int_equal(gr_tick(&g, t, o, 2, NULL, 0), 0);
	assert_int_equal(e->state, GR_CANDIDATE);
	gr_free(&g);
}

static void test_frozen_observe_signals(void **state)
{
	(void)state;
	check_mode(GR_MODE_OBSERVE, "198.18.0.50", GR_ACT_SIGNAL);
	check_mode(GR_MODE_OBSERVE, "fd00:6b6c::50", GR_ACT_SIGNAL);
}

static void test_frozen_enforce_blocks(void **state)
{
	(void)state;
	check_mode(GR_MODE_ENFORCE, "198.18.0.50", GR_ACT_BLOCK);
	check_mode(GR_MODE_ENFORCE, "fd00:6b6c::50", GR_ACT_BLOCK);
}

static void test_denied_and_approved_in_frozen_modes(void **state)
{
	(void)state;
	struct gr_graph g;
	char why[128];
	frozen_baseline(&g, GR_MODE_ENFORCE);
	struct kl_addr a = ip("198.18.0.51"), b = ip("198.18.0.50");
	gr_set_source(&g, &a, false, 22, 6, GR_APPROVED, 0, 0, why, sizeof(why));
	gr_set_source(&g, &b, false, 8080, 6, GR_DENIED, 0, 0, why, sizeof(why));
	struct gr_obs o[2] = { obs("198.18.0.51", 22, 6), obs("198.18.0.50", 8080, 6) };
	assert_int_equal(gr_tick(&g, 20 * MIN, o, 2, NULL, 0), 0);
	assert_int_equal(g.nviol, 1);
	assert_int_equal(g.viol[0].state, GR_DENIED);
	assert_int_equal(g.viol[0].k.port, 8080);
	/* A denied edge is denied by state, not by a violation's TTL. */
	assert_int_equal(edge(&g, "198.18.0.50", 8080, 6)->deny_until, GR_NEVER);
	gr_free(&g);
}

/* The violation cap per tick, and the violating source is then suspicious. */
static void test_violation_cap(void **state)
{
	(void)state;
	struct gr_graph g;
	frozen_baseline(&g, GR_MODE_OBSERVE);
	g.p.viol_max_tick = 3;
	struct gr_obs o[10];
	for (int i = 0; i < 10; i++)
		o[i] = obs("198.18.0.60", (uint16_t)(1000 + i), 6);
	assert_int_equal(gr_tick(&g, 20 * MIN, o, 10, NULL, 0), 0);
	assert_int_equal(g.nviol, 3);
	assert_int_equal(g.last.viol_suppressed, 7);
	assert_int_equal(g.n, 12);
	gr_free(&g);
}

/* ---- push planning ---- */

static struct kl_ack ok_ack(void)
{
	return (struct kl_ack){ .status = 0, .reason = KL_ACK_OK };
}

static void ack_all(struct gr_graph *g, const struct gr_push_params *pp,
		    const struct gr_push_batch *b, int64_t now)
{
	struct kl_ack acks[64];
	for (size_t i = 0; i < b->n && i < 64; i++)
		acks[i] = ok_ack();
	gr_push_acked(g, pp, b, acks, b->n, now);
}

static void test_push_plan(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_push_params pp;
	struct gr_push_batch b = { 0 };
	char why[128];
	gr_push_params_default(&pp);
	frozen_baseline(&g, GR_MODE_ENFORCE);
	int64_t now = 20 * MIN;

	/* Two frozen edges: two allows with the rule TTL. */
	assert_int_equal(gr_push_plan(&g, &pp, now, &b), 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(b.r[i].action, KL_EDGE_ACT_ADD_ALLOW);
		assert_int_equal(b.r[i].port, 8080);
		assert_int_equal(b.r[i].proto, 6);
		assert_int_equal(b.r[i].ttl_ms, pp.rule_ttl_ms);
		assert_true(kl_addr_is_host(&b.r[i].src));
	}
	ack_all(&g, &pp, &b, now);
	assert_int_equal(gr_push_plan(&g, &pp, now + MIN, &b), 0);
	/* Refreshed past half its TTL. */
	assert_int_equal(gr_push_plan(&g, &pp, now + pp.rule_ttl_ms / 2 + 1, &b), 2);
	ack_all(&g, &pp, &b, now + pp.rule_ttl_ms / 2 + 1);
	now += pp.rule_ttl_ms / 2 + 1;

	/* The operator denies a frozen edge: delete the allow, add a deny. */
	struct kl_addr a = ip("198.18.0.50");
	gr_set_source(&g, &a, true, 0, 0, GR_DENIED, 0, now, why, sizeof(why));
	assert_int_equal(gr_push_plan(&g, &pp, now, &b), 2);
	assert_int_equal(b.r[0].action, KL_EDGE_ACT_DEL_ALLOW);
	assert_int_equal(b.r[0].ttl_ms, 0);
	assert_int_equal(b.r[1].action, KL_EDGE_ACT_ADD_DENY);
	ack_all(&g, &pp, &b, now);
	assert_int_equal(gr_push_plan(&g, &pp, now, &b), 0);

	/* A violation in frozen-enforce: an edge deny for deny_ttl, capped by the rule TTL. */
	struct gr_obs o = obs("fd00:6b6c::50", 9000, 6);
	assert_int_equal(gr_tick(&g, now, &o, 1, NULL, 0), 0);
	assert_int_equal(gr_push_plan(&g, &pp, now, &b), 1);
	assert_int_equal(b.r[0].action, KL_EDGE_ACT_ADD_DENY);
	assert_int_equal(b.r[0].port, 9000);
	assert_int_equal(b.r[0].ttl_ms, pp.rule_ttl_ms);
	ack_all(&g, &pp, &b, now);
	/* Approving it replaces the deny with an allow. */
	a = ip("fd00:6b6c::50");
	gr_set_source(&g, &a, false, 9000, 6, GR_APPROVED, 0, now, why, sizeof(why));
	assert_int_equal(gr_push_plan(&g, &pp, now, &b), 2);
	assert_int_equal(b.r[0].action, KL_EDGE_ACT_DEL_DENY);
	assert_int_equal(b.r[1].action, KL_EDGE_ACT_ADD_ALLOW);

	/* A refusal that will not pass soon waits retry_ms. */
	struct kl_ack ref[2] = { ok_ack(), { .status = 2, .reason = KL_ACK_PROTECTED } };
	gr_push_acked(&g, &pp, &b, ref, 2, now);
	assert_int_equal(gr_push_plan(&g, &pp, now + MIN, &b), 0);
	assert_true(gr_push_plan(&g, &pp, now + pp.retry_ms, &b) >= 1);
	bool again = false;
	for (size_t i = 0; i < b.n; i++)
		if (b.r[i].port == 9000 && b.r[i].action == KL_EDGE_ACT_ADD_ALLOW)
			again = true;
	assert_true(again);
	gr_push_free(&b);
	gr_free(&g);
}

/* After a restart, what the enforcer holds of ours is adopted, not pushed again. */
static void test_push_adopt(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_push_params pp;
	struct gr_push_batch b = { 0 };
	char why[128];
	gr_push_params_default(&pp);
	frozen_baseline(&g, GR_MODE_ENFORCE);
	struct kl_addr a = ip("fd00:6b6c::50");
	gr_set_source(&g, &a, false, 9000, 6, GR_APPROVED, 0, 0, why, sizeof(why));
	struct kl_state_rec st[4];
	memset(st, 0, sizeof(st));
	st[0] = (struct kl_state_rec){ .addr = ip("198.18.0.50"), .kind = KL_STATE_EDGE_ALLOW,
				       .proto = 6, .port = 8080, .expires_in_ms = 600000 };
	st[1] = (struct kl_state_rec){ .addr = ip("fd00:6b6c::50"), .kind = KL_STATE_EDGE_ALLOW,
				       .proto = 6, .port = 8080, .expires_in_ms = 600000 };
	/* an old violation deny for what is approved now */
	st[2] = (struct kl_state_rec){ .addr = ip("fd00:6b6c::50"), .kind = KL_STATE_EDGE_DENY,
				       .proto = 6, .port = 9000, .expires_in_ms = 600000 };
	/* an edge the graph does not know: left to lapse */
	st[3] = (struct kl_state_rec){ .addr = ip("198.18.0.77"), .kind = KL_STATE_EDGE_DENY,
				       .proto = 17, .port = 53, .expires_in_ms = 600000 };
	gr_push_reset(&g);
	assert_int_equal(gr_push_adopt(&g, st, 4, 20 * MIN), 3);
	assert_int_equal(gr_push_plan(&g, &pp, 20 * MIN, &b), 2);
	assert_int_equal(b.r[0].action, KL_EDGE_ACT_DEL_DENY);
	assert_int_equal(b.r[0].port, 9000);
	assert_int_equal(b.r[1].action, KL_EDGE_ACT_ADD_ALLOW);
	assert_int_equal(b.r[1].port, 9000);
	gr_push_free(&b);
	gr_free(&g);
}

static void test_push_limits(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_push_params pp;
	struct gr_push_batch b = { 0 };
	char why[128];
	gr_push_params_default(&pp);
	pp.max = 10;
	init(&g, GR_MODE_LEARN);
	struct kl_addr a = ip("198.18.0.70");
	for (int p = 1; p <= 25; p++)
		gr_set_source(&g, &a, false, (uint16_t)p, 6, GR_APPROVED, 0, 0, why, sizeof(why));
	/* GRE cannot travel in EDGE_RULES; ICMPv6 with IPv4 neither. */
	gr_set_source(&g, &a, false, 0, 47, GR_APPROVED, 0, 0, why, sizeof(why));
	gr_set_source(&g, &a, false, 0, 58, GR_APPROVED, 0, 0, why, sizeof(why));
	size_t total = 0;
	for (int round = 0; round < 4; round++) {
		long n = gr_push_plan(&g, &pp, 0, &b);
		assert_true(n <= 10);
		total += (size_t)n;
		ack_all(&g, &pp, &b, 0);
	}
	assert_int_equal(total, 25);
	assert_int_equal(b.unpushable, 2);
	/* After a reset (new enforcer) everything goes again. */
	gr_push_reset(&g);
	assert_int_equal(gr_push_plan(&g, &pp, 0, &b), 10);
	gr_push_free(&b);
	gr_free(&g);
}

/* ---- the VIOLATION codec ---- */

static void test_violation_codec(void **state)
{
	(void)state;
	struct kl_violation_rec in[3], out[3];
	uint8_t buf[KL_VIOLATION_HDR_LEN + 3 * KL_VIOLATION_REC_LEN], again[sizeof(buf)];
	uint32_t n;
	char err[200];
	memset(in, 0, sizeof(in));
	in[0] = (struct kl_violation_rec){ .src = ip("198.18.0.1"), .port = 9090, .proto = 6,
					   .mode = KL_VIOLATION_ENFORCE };
	in[1] = (struct kl_violation_rec){ .src = ip("fd00:6b6c::1"), .port = 0, .proto = 58,
					   .mode = KL_VIOLATION_OBSERVE,
					   .reason = KL_VIOLATION_R_DEVIATION };
	in[2] = (struct kl_violation_rec){ .src = ip("198.18.0.2"), .port = 0, .proto = 47,
					   .mode = KL_VIOLATION_OBSERVE };
	assert_int_equal(kl_violations_len(3), sizeof(buf));
	kl_violations_encode(in, 3, buf);
	assert_int_equal(kl_violations_decode(buf, sizeof(buf), out, 3, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(&out[i].src, &in[i].src, sizeof(in[i].src));
		assert_int_equal(out[i].port, in[i].port);
		assert_int_equal(out[i].proto, in[i].proto);
		assert_int_equal(out[i].mode, in[i].mode);
		assert_int_equal(out[i].reason, in[i].reason);
	}
	kl_violations_encode(out, 3, again);
	assert_memory_equal(buf, again, sizeof(buf));

	static const struct { size_t off; uint8_t val; const char *sub; } bad[] = {
		{ 4, 1, "reserved header" },
		{ 8 + 0, 5, "family 5" },
		{ 8 + 1, 3, "mode 3" },
		{ 8 + 3, 2, "reason 2" },
		{ 8 + 3, 1, "must be mode 1" }, /* a deviation never blocks */
		{ 8 + 7, 1, "reserved bytes" },
		{ 8 + 8 + 5, 1, "bytes 4..15" },
		{ 8 + 24 + 4, 1, "port 1 with protocol 58" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t b[sizeof(buf)];
		memcpy(b, buf, sizeof(b));
		b[bad[i].off] = bad[i].val;
		err[0] = '\0';
		assert_int_equal(kl_violations_decode(b, sizeof(b), out, 3, &n, err, sizeof(err)), -1);
		if (strstr(err, bad[i].sub) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].sub);
	}
	assert_int_equal(kl_violations_decode(buf, sizeof(buf) - 1, out, 3, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "want exactly"));
	assert_int_equal(kl_violations_decode(buf, sizeof(buf), out, 2, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "room for 2"));
}

/* Per-edge baselines: a learned edge that carries far more than its peak
 * raises one observe-mode deviation (per viol_repeat), the jump is not
 * learned, and the source stops teaching; an unlearned edge or a small
 * edge never deviates. */
static void test_edge_deviation(void **state)
{
	(void)state;
	struct gr_graph g;
	struct gr_params p;

	gr_params_default(&p);
	p.min_seen = 2;
	p.min_windows = 1;
	p.min_age_ms = 0;
	p.promote_every_ms = 10 * SEC;
	p.window_ms = 10 * SEC;
	assert_int_equal(gr_init(&g, &p), 0);
	int64_t t = 0;
	for (int i = 0; i < 40; i++, t += SEC) {
		struct gr_obs o[2] = { obs("198.18.0.1", 8080, 6), obs("198.18.0.2", 22, 6) };
		o[0].pkts = 20 + i % 3;
		o[0].bytes = o[0].pkts * 100;
		o[1].pkts = 1;
		o[1].bytes = 60;
		assert_int_equal(gr_tick(&g, t, o, 2, NULL, 0), 0);
		assert_int_equal(g.nviol, 0);
		gr_flushed(&g);
	}
	struct gr_edge *e = edge(&g, "198.18.0.1", 8080, 6);
	assert_int_equal(e->state, GR_LEARNED);
	assert_int_equal(e->eb.n, 39); /* every tick but the first (no elapsed time yet) */
	assert_float_equal(e->eb.peak[GR_EB_PPS], 22.0, 1e-6);
	/* 3 x 22 = 66 pps is the limit: 60 is normal and learned */
	struct gr_obs o = obs("198.18.0.1", 8080, 6);
	o.pkts = 60;
	o.bytes = 6000;
	assert_int_equal(gr_tick(&g, t, &o, 1, NULL, 0), 0);
	assert_int_equal(g.nviol, 0);
	assert_float_equal(e->eb.peak[GR_EB_PPS], 60.0, 1e-6);
	t += SEC;
	gr_flushed(&g);
	/* a jump far above: one deviation, observe mode, not learned */
	for (int i = 0; i < 3; i++, t += SEC) {
		o.pkts = 5000;
		o.bytes = 500000;
		assert_int_equal(gr_tick(&g, t, &o, 1, NULL, 0), 0);
		assert_int_equal(g.nviol, i == 0 ? 1 : 0);
		if (i == 0) {
			assert_int_equal(g.viol[0].action, GR_ACT_DEVIATION);
			assert_int_equal(g.viol[0].mode, GR_MODE_OBSERVE);
			assert_int_equal(g.viol[0].k.port, 8080);
		}
		gr_flushed(&g);
	}
	e = edge(&g, "198.18.0.1", 8080, 6);
	assert_float_equal(e->eb.peak[GR_EB_PPS], 60.0, 1e-6);
	assert_int_equal(e->state, GR_LEARNED); /* never denied by a deviation */
	uint32_t n = e->eb.n;
	/* back to normal: the source is suspicious for suspect_hold, so its
	 * normal traffic teaches nothing for now */
	o.pkts = 20;
	o.bytes = 2000;
	assert_int_equal(gr_tick(&g, t, &o, 1, NULL, 0), 0);
	assert_int_equal(edge(&g, "198.18.0.1", 8080, 6)->eb.n, n);
	/* the 1 pps edge: far above its peak at 9 pps, but below min-pps */
	struct gr_obs small = obs("198.18.0.2", 22, 6);
	small.pkts = 9;
	small.bytes = 540;
	t += SEC;
	gr_flushed(&g);
	assert_int_equal(gr_tick(&g, t, &small, 1, NULL, 0), 0);
	assert_int_equal(g.nviol, 0);
	gr_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_profile),
		cmocka_unit_test(test_edge_deviation),
		cmocka_unit_test(test_promotion_needs_seen),
		cmocka_unit_test(test_promotion_needs_windows),
		cmocka_unit_test(test_promotion_needs_age),
		cmocka_unit_test(test_promotion_schedule_and_once_per_tick),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_deleted_edge_seen_before_flush),
		cmocka_unit_test(test_baseline_and_operator_never_expire),
		cmocka_unit_test(test_freeze),
		cmocka_unit_test(test_operator_states_never_overwritten),
		cmocka_unit_test(test_suspicious_sources_not_learned),
		cmocka_unit_test(test_excluded_sources),
		cmocka_unit_test(test_ephemeral_ports),
		cmocka_unit_test(test_learn_mode_has_no_violations),
		cmocka_unit_test(test_frozen_observe_signals),
		cmocka_unit_test(test_frozen_enforce_blocks),
		cmocka_unit_test(test_denied_and_approved_in_frozen_modes),
		cmocka_unit_test(test_violation_cap),
		cmocka_unit_test(test_push_plan),
		cmocka_unit_test(test_push_adopt),
		cmocka_unit_test(test_push_limits),
		cmocka_unit_test(test_violation_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
