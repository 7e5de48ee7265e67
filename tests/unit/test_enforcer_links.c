/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's and graphd's links against maps of the shield's layout in
 * the in-memory backend (fakemaps.h, no privileges): levels, origins,
 * protected and invalid targets, quotas, map full, release, reconciliation
 * state, edge rules, entry counts, and the role table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/audit.h"
#include "common/log.h"
#include "enforcer/enforcer.h"
#include "fakemaps.h"
#include "ipc/chan.h"

#define S_NS 1000000000ull
#define MS_NS 1000000ull

static struct enf_config cfg;
static struct enf_ctx ctx;
static struct enf_evring ring;
static uint64_t fake_now = 5000ull * S_NS;
static const struct enf_actor ctl = { .role = KL_ROLE_CTL, .uid = 0, .pid = 1 };
static const struct enf_actor dec = { .role = KL_ROLE_DECIDER, .uid = 998, .pid = 2 };
static const struct enf_actor gra = { .role = KL_ROLE_GRAPHD, .uid = 997, .pid = 3 };

static uint64_t now_fn(void)
{
	return fake_now;
}

static int setup(void **state)
{
	(void)state;
	return kl_test_enf_setup(&ctx, &cfg, &ring, now_fn, "198.19.0.0/24", 4096);
}

static int teardown(void **state)
{
	(void)state;
	kl_test_maps_free(&ctx, false);
	return 0;
}

/* Before each test: empty policy maps, fresh counts and roomy quotas. */
static int clean(void **state)
{
	(void)state;
	for (int m = 0; m < ENF_M_MAX; m++)
		if (enf_map_counted((enum enf_map_id)m))
			enf_map_delete_if(&ctx, (enum enf_map_id)m, NULL, NULL);
	if (enf_count_origins(&ctx) < 0)
		return -1;
	enf_quota_init(&ctx.links[ENF_LINK_DECIDER].quota, 100000, 100000);
	enf_quota_init(&ctx.links[ENF_LINK_GRAPHD].quota, 100000, 100000);
	ctx.cap_sweep_ns = 0;
	return 0;
}

static struct kl_addr host(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_addr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static struct kl_decision dcs(const char *ip, uint8_t level, uint32_t rate, uint32_t burst,
			      uint64_t ttl_ms)
{
	return (struct kl_decision){ .addr = host(ip), .level = level, .rate_pps = rate,
				     .burst = burst, .ttl_ms = ttl_ms };
}

static uint8_t decide1(const struct kl_decision *d)
{
	struct kl_ack a;
	enf_decisions_apply(&ctx, &dec, d, 1, &a);
	assert_int_equal(a.status, kl_ack_reason_status(a.reason));
	return a.reason;
}

static uint8_t decide(const char *ip, uint8_t level, uint32_t rate, uint32_t burst,
		      uint64_t ttl_ms)
{
	struct kl_decision d = dcs(ip, level, rate, burst, ttl_ms);
	return decide1(&d);
}

static uint32_t gen(void)
{
	struct kl_cfg c;
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	return c.policy_gen;
}

/* The entry for a host in RL4/RL6 or DENY4/DENY6; false if absent. */
static bool get_rl(const char *ip, struct kl_rl_rule *v)
{
	struct kl_addr a = host(ip);
	uint8_t key[16];
	enf_host_key(&a, key);
	return enf_map_lookup(&ctx, a.family == 4 ? ENF_M_RL4 : ENF_M_RL6, key, v) == 0;
}

static bool get_deny(const char *ip, struct kl_rule *v)
{
	struct kl_addr a = host(ip);
	uint8_t key[16];
	enf_host_key(&a, key);
	return enf_map_lookup(&ctx, a.family == 4 ? ENF_M_DENY4 : ENF_M_DENY6, key, v) == 0;
}

static int ctl_run(uint16_t cmd, const char *addr, uint64_t ttl_ms)
{
	struct kl_ctl_req r;
	struct enf_result res;
	memset(&r, 0, sizeof(r));
	r.cmd = cmd;
	r.addr = host(addr);
	r.ttl_ms = ttl_ms;
	if (cmd == KL_CTL_RL_SET_IP) {
		r.rate = 7;
		r.burst = 7;
	}
	enf_handle(&ctx, &ctl, &r, &res);
	int st = res.status;
	enf_result_free(&res);
	return st;
}

static uint64_t count(uint32_t origin)
{
	return ctx.origin_count[origin];
}

/* The incremental counts agree with a recount from the maps. */
static void counts_consistent(void)
{
	uint64_t before[ENF_ORIGIN_SLOTS];
	memcpy(before, ctx.origin_count, sizeof(before));
	assert_int_equal(enf_count_origins(&ctx), 0);
	assert_memory_equal(before, ctx.origin_count, sizeof(before));
}

/* ---- role table ---- */

static void test_role_table(void **state)
{
	(void)state;
	/* The enforcer only serves requests: the monitor table also lets
	 * answers (RESULT, *_ACK, STATE) flow towards it, which the enforcer,
	 * never a client of the decider or graphd, refuses. */
	for (unsigned role = 0; role <= KL_ROLE_MAX; role++)
		for (unsigned t = 0; t <= KL_MSG_TYPE_MAX; t++) {
			bool answer = t == KL_MSG_RESULT || t == KL_MSG_DECISIONS_ACK ||
				      t == KL_MSG_RELEASE_ACK || t == KL_MSG_STATE ||
				      t == KL_MSG_EDGE_ACK;
			bool want = t != KL_MSG_HELLO && !answer &&
				    kl_msg_allowed((enum kl_role)role, KL_ROLE_ENFORCER, t);
			if (enf_msg_role_may((enum kl_role)role, t) != want)
				fail_msg("role %s type %s: enforcer says %d, monitor table %d",
					 kl_role_name(role), kl_msg_type_name(t), !want, want);
		}
	assert_true(enf_msg_role_may(KL_ROLE_DECIDER, KL_MSG_DECISIONS));
	assert_true(enf_msg_role_may(KL_ROLE_DECIDER, KL_MSG_RELEASE));
	assert_true(enf_msg_role_may(KL_ROLE_DECIDER, KL_MSG_ENFORCED_Q));
	assert_false(enf_msg_role_may(KL_ROLE_DECIDER, KL_MSG_EDGE_RULES));
	assert_false(enf_msg_role_may(KL_ROLE_DECIDER, KL_MSG_CONTROL));
	assert_true(enf_msg_role_may(KL_ROLE_GRAPHD, KL_MSG_EDGE_RULES));
	assert_true(enf_msg_role_may(KL_ROLE_GRAPHD, KL_MSG_ENFORCED_Q));
	assert_false(enf_msg_role_may(KL_ROLE_GRAPHD, KL_MSG_DECISIONS));
	assert_false(enf_msg_role_may(KL_ROLE_GRAPHD, KL_MSG_RELEASE));
	assert_true(enf_msg_role_may(KL_ROLE_CTL, KL_MSG_CONTROL));
	assert_false(enf_msg_role_may(KL_ROLE_CTL, KL_MSG_DECISIONS));
	assert_false(enf_msg_role_may(KL_ROLE_SENSOR, KL_MSG_ENFORCED_Q));

	/* the link handler refuses what a role may not send, before decoding */
	struct kl_decision d = dcs("198.18.0.1", KL_DEC_BLOCK, 0, 0, 60000);
	uint8_t p[8 + 40];
	struct enf_reply rep;
	kl_decisions_encode(&d, 1, p);
	enf_link_handle(&ctx, &gra, KL_MSG_DECISIONS, p, sizeof(p), &rep);
	assert_int_equal(rep.type, KL_MSG_RESULT);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	assert_non_null(strstr(rep.text, "graphd may not send DECISIONS"));
	enf_reply_free(&rep);
	enf_link_handle(&ctx, &ctl, KL_MSG_CONTROL, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	enf_reply_free(&rep);
	/* the channel lets a decider's RESULT through (it is an answer type);
	 * the enforcer does not take it as a request */
	enf_link_handle(&ctx, &dec, KL_MSG_RESULT, p, sizeof(p), &rep);
	assert_int_equal(rep.type, KL_MSG_RESULT);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	enf_reply_free(&rep);
	assert_false(get_deny("198.18.0.1", &(struct kl_rule){ 0 }));
}

/* ---- levels ---- */

static void test_levels(void **state)
{
	(void)state;
	struct kl_rl_rule rl;
	struct kl_rule dn;
	for (int f = 0; f < 2; f++) {
		const char *ip = f == 0 ? "198.18.0.1" : "fd00:6b6c::1";
		uint32_t g0 = gen();
		assert_int_equal(decide(ip, KL_DEC_RATE_SOFT, 20, 40, 60000), KL_ACK_OK);
		assert_int_equal(gen(), g0 + 1);
		assert_true(get_rl(ip, &rl));
		assert_int_equal(rl.rate_pps, 20);
		assert_int_equal(rl.burst, 40);
		assert_int_equal(rl.origin, KL_ORIGIN_DECIDER);
		assert_int_equal(rl.expires_ns, fake_now + 60000 * MS_NS);
		assert_int_equal(count(KL_ORIGIN_DECIDER), 1);

		assert_int_equal(decide(ip, KL_DEC_RATE_HARD, 5, 5, 120000), KL_ACK_OK);
		assert_true(get_rl(ip, &rl));
		assert_int_equal(rl.rate_pps, 5);
		assert_int_equal(rl.expires_ns, fake_now + 120000 * MS_NS);
		assert_int_equal(count(KL_ORIGIN_DECIDER), 1);

		assert_int_equal(decide(ip, KL_DEC_BLOCK, 0, 0, 30000), KL_ACK_OK);
		assert_false(get_rl(ip, &rl)); /* the rate limit gave way to the deny */
		assert_true(get_deny(ip, &dn));
		assert_int_equal(dn.origin, KL_ORIGIN_DECIDER);
		assert_int_equal(dn.expires_ns, fake_now + 30000 * MS_NS);
		assert_int_equal(dn.created_ns, fake_now);
		assert_int_equal(count(KL_ORIGIN_DECIDER), 1);

		assert_int_equal(decide(ip, KL_DEC_RATE_SOFT, 20, 40, 60000), KL_ACK_OK);
		assert_false(get_deny(ip, &dn)); /* and back */
		assert_true(get_rl(ip, &rl));

		g0 = gen();
		assert_int_equal(decide(ip, KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OK);
		assert_false(get_rl(ip, &rl));
		assert_false(get_deny(ip, &dn));
		assert_int_equal(count(KL_ORIGIN_DECIDER), 0);
		assert_int_equal(gen(), g0 + 1);
		/* OBSERVE of nothing is fine and changes nothing */
		g0 = gen();
		assert_int_equal(decide(ip, KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OK);
		assert_int_equal(gen(), g0);
	}
	/* one policy_gen bump per batch, whatever its size */
	struct kl_decision b[3] = {
		dcs("198.18.0.10", KL_DEC_BLOCK, 0, 0, 5000),
		dcs("198.18.0.11", KL_DEC_RATE_SOFT, 1, 1, 5000),
		dcs("fd00:6b6c::11", KL_DEC_RATE_HARD, 1, 1, 5000),
	};
	struct kl_ack a[3];
	uint32_t g0 = gen();
	enf_decisions_apply(&ctx, &dec, b, 3, a);
	for (int i = 0; i < 3; i++)
		assert_int_equal(a[i].reason, KL_ACK_OK);
	assert_int_equal(gen(), g0 + 1);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 3);
	assert_int_equal(ctx.links[ENF_LINK_DECIDER].applied >= 3, true);
	counts_consistent();
}

/* ---- origins ---- */

static void test_operator_entries_kept(void **state)
{
	(void)state;
	struct kl_rule dn;
	struct kl_rl_rule rl;
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.0.5", 0), KL_OK);
	assert_int_equal(count(KL_ORIGIN_OPERATOR), 1);

	assert_int_equal(decide("198.18.0.5", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OPERATOR);
	assert_true(get_deny("198.18.0.5", &dn));
	assert_int_equal(dn.origin, KL_ORIGIN_OPERATOR);
	assert_int_equal(dn.expires_ns, 0); /* still the operator's permanent entry */
	assert_int_equal(decide("198.18.0.5", KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OPERATOR);
	assert_true(get_deny("198.18.0.5", &dn));
	/* a rate limit of its own is the decider's to set (the deny still wins) */
	assert_int_equal(decide("198.18.0.5", KL_DEC_RATE_SOFT, 9, 9, 60000), KL_ACK_OK);
	assert_true(get_deny("198.18.0.5", &dn));
	assert_int_equal(dn.origin, KL_ORIGIN_OPERATOR);
	/* OBSERVE removes the decider's part and reports the operator's */
	assert_int_equal(decide("198.18.0.5", KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OPERATOR);
	assert_false(get_rl("198.18.0.5", &rl));
	assert_true(get_deny("198.18.0.5", &dn));

	assert_int_equal(ctl_run(KL_CTL_RL_SET_IP, "fd00:6b6c::5", 0), KL_OK);
	assert_int_equal(decide("fd00:6b6c::5", KL_DEC_RATE_HARD, 1, 1, 60000), KL_ACK_OPERATOR);
	assert_true(get_rl("fd00:6b6c::5", &rl));
	assert_int_equal(rl.rate_pps, 7);
	assert_int_equal(rl.origin, KL_ORIGIN_OPERATOR);

	/* an operator entry that has lapsed is as good as gone */
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.0.6", 1000), KL_OK);
	fake_now += 2 * S_NS;
	assert_int_equal(decide("198.18.0.6", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_true(get_deny("198.18.0.6", &dn));
	assert_int_equal(dn.origin, KL_ORIGIN_DECIDER);

	/* the operator may overwrite and delete the decider's entries */
	assert_int_equal(count(KL_ORIGIN_DECIDER), 1);
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.0.6", 0), KL_OK);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 0);
	assert_int_equal(count(KL_ORIGIN_OPERATOR), 3);
	assert_int_equal(ctl_run(KL_CTL_DENY_DEL, "198.18.0.6", 0), KL_OK);
	assert_int_equal(count(KL_ORIGIN_OPERATOR), 2);
	counts_consistent();
}

static void test_protected_and_invalid(void **state)
{
	(void)state;
	struct kl_rule dn;
	struct kl_rl_rule rl;
	uint32_t g0 = gen();
	assert_int_equal(decide("198.19.0.77", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_PROTECTED);
	assert_int_equal(decide("198.19.0.77", KL_DEC_RATE_HARD, 0, 1, 60000), KL_ACK_PROTECTED);
	assert_int_equal(decide("fd00:6b6c::200", KL_DEC_RATE_SOFT, 1, 1, 60000), KL_ACK_PROTECTED);
	assert_false(get_deny("198.19.0.77", &dn));
	assert_false(get_rl("198.19.0.77", &rl));
	assert_false(get_rl("fd00:6b6c::200", &rl));
	assert_int_equal(gen(), g0); /* nothing changed, no bump */
	/* stepping a protected source down is harmless */
	assert_int_equal(decide("198.19.0.77", KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OK);

	const char *bad[] = { "0.0.0.0", "127.0.0.1", "224.0.0.5", "239.255.255.250",
			      "255.255.255.255", "::", "::1", "ff02::1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kl_decision d = dcs(bad[i], KL_DEC_BLOCK, 0, 0, 60000);
		struct kl_ack a;
		enf_decisions_apply(&ctx, &dec, &d, 1, &a);
		if (a.reason != KL_ACK_INVALID || a.status != KL_ERR_INVALID)
			fail_msg("%s: reason %s", bad[i], kl_ack_reason_name(a.reason));
	}
	assert_int_equal(count(KL_ORIGIN_DECIDER), 0);
	assert_true(ctx.links[ENF_LINK_DECIDER].refused[KL_ACK_INVALID] >= 8);
	assert_true(ctx.links[ENF_LINK_DECIDER].refused[KL_ACK_PROTECTED] >= 3);
}

/* ---- quotas ---- */

static void test_rate_quota(void **state)
{
	(void)state;
	enf_quota_init(&ctx.links[ENF_LINK_DECIDER].quota, 3, 1000);
	struct kl_decision b[5];
	struct kl_ack a[5];
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.1.%d", i + 1);
		b[i] = dcs(ip, KL_DEC_RATE_SOFT, 10, 10, 60000);
	}
	enf_decisions_apply(&ctx, &dec, b, 5, a);
	for (int i = 0; i < 5; i++)
		assert_int_equal(a[i].reason, i < 3 ? KL_ACK_OK : KL_ACK_RATE_CAP);
	assert_int_equal(a[4].status, KL_ERR_REFUSED);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 3);
	assert_false(get_rl("198.18.1.4", &(struct kl_rl_rule){ 0 }));
	/* a refresh of an existing entry is a change too */
	assert_int_equal(decide("198.18.1.1", KL_DEC_RATE_SOFT, 10, 10, 90000), KL_ACK_RATE_CAP);
	/* stepping down costs no quota */
	assert_int_equal(decide("198.18.1.3", KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OK);
	/* one third of a second later one token is back, a second later all three */
	fake_now += S_NS / 3 + 1000;
	assert_int_equal(decide("198.18.1.4", KL_DEC_RATE_SOFT, 10, 10, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.18.1.5", KL_DEC_RATE_SOFT, 10, 10, 60000), KL_ACK_RATE_CAP);
	fake_now += 10 * S_NS; /* the bucket holds one second's worth, no more */
	enf_decisions_apply(&ctx, &dec, b, 5, a);
	int ok = 0;
	for (int i = 0; i < 5; i++)
		ok += a[i].reason == KL_ACK_OK;
	assert_int_equal(ok, 3);
}

static void test_total_quota(void **state)
{
	(void)state;
	enf_quota_init(&ctx.links[ENF_LINK_DECIDER].quota, 1000, 2);
	assert_int_equal(decide("198.18.2.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.18.2.2", KL_DEC_RATE_HARD, 1, 1, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.18.2.3", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_TOTAL_CAP);
	assert_false(get_deny("198.18.2.3", &(struct kl_rule){ 0 }));
	/* at the cap, existing sources may still change level and be refreshed */
	assert_int_equal(decide("198.18.2.1", KL_DEC_RATE_SOFT, 1, 1, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.18.2.2", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.18.2.2", KL_DEC_BLOCK, 0, 0, 90000), KL_ACK_OK);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);
	/* the operator's entries do not count against the decider */
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.2.9", 0), KL_OK);
	assert_int_equal(decide("198.18.2.1", KL_DEC_OBSERVE, 0, 0, 0), KL_ACK_OK);
	assert_int_equal(decide("198.18.2.3", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	counts_consistent();

	/* lapsed entries still count until swept; at the cap they are swept
	 * at once to make room */
	fake_now += 61 * S_NS;
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);
	assert_int_equal(decide("198.18.2.5", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_false(get_deny("198.18.2.3", &(struct kl_rule){ 0 })); /* swept */
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);
	/* no second sweep within the second: the cap holds */
	assert_int_equal(decide("198.18.2.6", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_TOTAL_CAP);
	counts_consistent();

	/* a restart counts from the maps */
	ctx.origin_count[KL_ORIGIN_DECIDER] = 0;
	assert_int_equal(enf_count_origins(&ctx), 0);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);
	assert_int_equal(decide("198.18.2.4", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_TOTAL_CAP);
}

static void test_map_full(void **state)
{
	(void)state;
	int big = ctx.fd[ENF_M_RL4];
	int small = kl_test_map_new(false, ENF_M_RL4, 2);
	assert_true(small >= 0);
	ctx.fd[ENF_M_RL4] = small;
	struct kl_decision b[3] = {
		dcs("198.18.3.1", KL_DEC_RATE_SOFT, 1, 1, 60000),
		dcs("198.18.3.2", KL_DEC_RATE_SOFT, 1, 1, 60000),
		dcs("198.18.3.3", KL_DEC_RATE_SOFT, 1, 1, 60000),
	};
	struct kl_ack a[3];
	enf_decisions_apply(&ctx, &dec, b, 3, a);
	assert_int_equal(a[0].reason, KL_ACK_OK);
	assert_int_equal(a[1].reason, KL_ACK_OK);
	assert_int_equal(a[2].reason, KL_ACK_MAP_FULL);
	assert_int_equal(a[2].status, KL_ERR_FAILED);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);
	ctx.fd[ENF_M_RL4] = big;
	kl_test_map_free(false, small);
	assert_int_equal(enf_count_origins(&ctx), 0);
}

/* ---- release ---- */

static void test_release(void **state)
{
	(void)state;
	struct kl_release r = { .budget = 3 };
	struct kl_release_ack ra;
	char err[64];
	for (int i = 1; i <= 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.4.%d", i);
		assert_int_equal(decide(ip, i <= 3 ? KL_DEC_RATE_SOFT : KL_DEC_BLOCK, 1, i <= 3 ? 1 : 0,
					60000),
				 KL_ACK_OK);
	}
	assert_int_equal(decide("198.18.5.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(decide("fd00:6b6c::4:1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.4.6", 0), KL_OK);
	assert_int_equal(ctl_run(KL_CTL_RL_SET_IP, "198.18.4.7", 0), KL_OK);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 7);

	kl_cidr_parse("198.18.4.0/24", &r.prefix, err, sizeof(err));
	uint32_t g0 = gen();
	assert_int_equal(enf_release(&ctx, &dec, &r, &ra), 0);
	assert_int_equal(ra.removed, 3);
	assert_int_equal(ra.more, 1);
	assert_int_equal(gen(), g0 + 1);
	assert_int_equal(enf_release(&ctx, &dec, &r, &ra), 0);
	assert_int_equal(ra.removed, 2);
	assert_int_equal(ra.more, 0);
	assert_int_equal(enf_release(&ctx, &dec, &r, &ra), 0);
	assert_int_equal(ra.removed, 0);
	assert_int_equal(ra.more, 0);
	for (int i = 1; i <= 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.4.%d", i);
		assert_false(get_rl(ip, &(struct kl_rl_rule){ 0 }));
		assert_false(get_deny(ip, &(struct kl_rule){ 0 }));
	}
	/* the operator's entries and those outside the prefix stay */
	assert_true(get_deny("198.18.4.6", &(struct kl_rule){ 0 }));
	assert_true(get_rl("198.18.4.7", &(struct kl_rl_rule){ 0 }));
	assert_true(get_deny("198.18.5.1", &(struct kl_rule){ 0 }));
	assert_int_equal(count(KL_ORIGIN_DECIDER), 2);

	/* a budget that exactly fits leaves no "more" */
	assert_int_equal(decide("198.18.5.2", KL_DEC_RATE_SOFT, 1, 1, 60000), KL_ACK_OK);
	kl_cidr_parse("198.18.5.0/24", &r.prefix, err, sizeof(err));
	r.budget = 2;
	assert_int_equal(enf_release(&ctx, &dec, &r, &ra), 0);
	assert_int_equal(ra.removed, 2);
	assert_int_equal(ra.more, 0);

	/* a host is a lookup; graphd cannot release the decider's entries */
	kl_cidr_parse("fd00:6b6c::4:1", &r.prefix, err, sizeof(err));
	assert_int_equal(enf_release(&ctx, &gra, &r, &ra), 0);
	assert_int_equal(ra.removed, 0);
	assert_int_equal(enf_release(&ctx, &dec, &r, &ra), 0);
	assert_int_equal(ra.removed, 1);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 0);
	assert_int_equal(ctx.links[ENF_LINK_DECIDER].released >= 8, true);
	counts_consistent();
}

/* ---- STATE ---- */

static void test_state(void **state)
{
	(void)state;
	struct kl_state_rec *s = NULL;
	uint32_t n = 0;
	bool tr = true;
	assert_int_equal(decide("198.18.6.1", KL_DEC_RATE_HARD, 5, 6, 60000), KL_ACK_OK);
	assert_int_equal(decide("fd00:6b6c::6:1", KL_DEC_BLOCK, 0, 0, 30000), KL_ACK_OK);
	assert_int_equal(decide("198.18.6.2", KL_DEC_BLOCK, 0, 0, 1000), KL_ACK_OK);
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.6.3", 0), KL_OK);
	struct kl_edge_rule e = { .src = host("198.18.6.4"), .action = KL_EDGE_ACT_ADD_ALLOW,
				  .proto = 6, .port = 443, .ttl_ms = 600000 };
	struct kl_ack a;
	enf_edge_rules_apply(&ctx, &gra, &e, 1, &a);
	assert_int_equal(a.reason, KL_ACK_OK);
	fake_now += 1500 * MS_NS; /* 198.18.6.2's block has lapsed */

	assert_int_equal(enf_state(&ctx, &dec, 100, &s, &n, &tr), 0);
	assert_int_equal(n, 2);
	assert_false(tr);
	char ip[KL_ADDR_STRLEN];
	bool saw_rl = false, saw_deny = false;
	for (uint32_t i = 0; i < n; i++) {
		kl_addr_format(&s[i].addr, ip, sizeof(ip));
		if (s[i].kind == KL_STATE_RL) {
			assert_string_equal(ip, "198.18.6.1");
			assert_int_equal(s[i].rate_pps, 5);
			assert_int_equal(s[i].burst, 6);
			assert_int_equal(s[i].expires_in_ms, 60000 - 1500);
			saw_rl = true;
		} else {
			assert_int_equal(s[i].kind, KL_STATE_DENY);
			assert_string_equal(ip, "fd00:6b6c::6:1");
			assert_int_equal(s[i].expires_in_ms, 30000 - 1500);
			saw_deny = true;
		}
	}
	assert_true(saw_rl && saw_deny);
	free(s);

	assert_int_equal(enf_state(&ctx, &gra, 100, &s, &n, &tr), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].kind, KL_STATE_EDGE_ALLOW);
	assert_int_equal(s[0].port, 443);
	assert_int_equal(s[0].proto, 6);
	assert_string_equal(kl_addr_format(&s[0].addr, ip, sizeof(ip)), "198.18.6.4");
	free(s);

	assert_int_equal(enf_state(&ctx, &dec, 1, &s, &n, &tr), 0);
	assert_int_equal(n, 1);
	assert_true(tr);
	free(s);
	s = NULL;
	assert_int_equal(enf_state(&ctx, &dec, 0, &s, &n, &tr), 0);
	assert_int_equal(n, 0);
	assert_true(tr);
	free(s);

	/* the same through the wire: ENFORCED_Q in, STATE out */
	uint8_t q[KL_ENFORCED_Q_LEN];
	struct enf_reply rep;
	struct kl_state_rec out[4];
	kl_enforced_q_encode(10, q);
	enf_link_handle(&ctx, &dec, KL_MSG_ENFORCED_Q, q, sizeof(q), &rep);
	assert_int_equal(rep.type, KL_MSG_STATE);
	assert_int_equal(kl_state_decode(rep.buf, rep.len, out, 4, &n, &tr, NULL, 0), 0);
	assert_int_equal(n, 2);
	assert_false(tr);
	enf_reply_free(&rep);
}

/* ---- edge rules ---- */

static uint8_t edge1(const char *ip, uint8_t action, uint8_t proto, uint16_t port, uint64_t ttl)
{
	struct kl_edge_rule e = { .src = host(ip), .action = action, .proto = proto, .port = port,
				  .ttl_ms = ttl };
	struct kl_ack a;
	enf_edge_rules_apply(&ctx, &gra, &e, 1, &a);
	assert_int_equal(a.status, kl_ack_reason_status(a.reason));
	return a.reason;
}

static bool get_edge(const char *ip, bool deny, uint16_t port, uint8_t proto, struct kl_rule *v)
{
	struct kl_addr a = host(ip);
	uint8_t key[sizeof(struct kl_edge6_key)];
	enf_edge_key(&a, port, proto, 0, key);
	enum enf_map_id m = deny ? ENF_M_EDGE4_DENY : ENF_M_EDGE4_ALLOW;
	if (a.family == 6)
		m = (enum enf_map_id)(m + 1);
	return enf_map_lookup(&ctx, m, key, v) == 0;
}

static void test_edge_rules(void **state)
{
	(void)state;
	struct kl_rule v;
	uint32_t g0 = gen();
	assert_int_equal(edge1("198.18.7.1", KL_EDGE_ACT_ADD_ALLOW, 6, 443, 600000), KL_ACK_OK);
	assert_int_equal(gen(), g0 + 1);
	assert_true(get_edge("198.18.7.1", false, 443, 6, &v));
	assert_int_equal(v.origin, KL_ORIGIN_GRAPHD);
	assert_int_equal(v.expires_ns, fake_now + 600000 * MS_NS);
	assert_int_equal(edge1("fd00:6b6c::7:1", KL_EDGE_ACT_ADD_DENY, 58, 0, 60000), KL_ACK_OK);
	assert_true(get_edge("fd00:6b6c::7:1", true, 0, 58, &v));
	/* an ephemeral port is folded as the data plane folds it */
	assert_int_equal(edge1("198.18.7.2", KL_EDGE_ACT_ADD_ALLOW, 17, 40000, 60000), KL_ACK_OK);
	assert_true(get_edge("198.18.7.2", false, KL_PORT_EPHEMERAL, 17, &v));
	assert_int_equal(count(KL_ORIGIN_GRAPHD), 3);

	/* protected sources: no deny, but an allow is harmless */
	assert_int_equal(edge1("198.19.0.5", KL_EDGE_ACT_ADD_DENY, 6, 22, 60000), KL_ACK_PROTECTED);
	assert_false(get_edge("198.19.0.5", true, 22, 6, &v));
	assert_int_equal(edge1("198.19.0.5", KL_EDGE_ACT_ADD_ALLOW, 6, 22, 60000), KL_ACK_OK);
	assert_int_equal(edge1("0.0.0.0", KL_EDGE_ACT_ADD_ALLOW, 17, 67, 60000), KL_ACK_INVALID);

	/* the operator's rule is never graphd's to change or remove */
	struct kl_ctl_req r;
	struct enf_result res;
	memset(&r, 0, sizeof(r));
	r.cmd = KL_CTL_EDGE_ADD_ALLOW;
	r.addr = host("198.18.7.3");
	r.port = 22;
	r.proto = 6;
	enf_handle(&ctx, &ctl, &r, &res);
	assert_int_equal(res.status, KL_OK);
	enf_result_free(&res);
	assert_int_equal(edge1("198.18.7.3", KL_EDGE_ACT_DEL_ALLOW, 6, 22, 0), KL_ACK_OPERATOR);
	assert_int_equal(edge1("198.18.7.3", KL_EDGE_ACT_ADD_ALLOW, 6, 22, 60000), KL_ACK_OPERATOR);
	assert_true(get_edge("198.18.7.3", false, 22, 6, &v));
	assert_int_equal(v.origin, KL_ORIGIN_OPERATOR);
	assert_int_equal(v.expires_ns, 0);

	/* graphd deletes its own; deleting nothing is fine */
	assert_int_equal(edge1("198.18.7.1", KL_EDGE_ACT_DEL_ALLOW, 6, 443, 0), KL_ACK_OK);
	assert_false(get_edge("198.18.7.1", false, 443, 6, &v));
	assert_int_equal(edge1("198.18.7.1", KL_EDGE_ACT_DEL_DENY, 6, 443, 0), KL_ACK_OK);
	assert_int_equal(count(KL_ORIGIN_GRAPHD), 3);

	/* graphd's quota is its own */
	enf_quota_init(&ctx.links[ENF_LINK_GRAPHD].quota, 1, 1000);
	assert_int_equal(edge1("198.18.7.8", KL_EDGE_ACT_ADD_DENY, 6, 80, 60000), KL_ACK_OK);
	assert_int_equal(edge1("198.18.7.9", KL_EDGE_ACT_ADD_DENY, 6, 80, 60000), KL_ACK_RATE_CAP);
	assert_int_equal(decide("198.18.7.9", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	enf_quota_init(&ctx.links[ENF_LINK_GRAPHD].quota, 1000, 4);
	assert_int_equal(edge1("198.18.7.10", KL_EDGE_ACT_ADD_DENY, 6, 80, 60000), KL_ACK_TOTAL_CAP);
	counts_consistent();
}

/* The operator's reserve: a graphd within its quota
 * fills an edge map only up to max_entries minus the reserve, after which
 * its new rules are refused as map full and the operator's still go in;
 * the decider's deny map is its own. Lapsed entries at the line are
 * swept to make room, and the per-map counts agree with the maps. */
static void test_operator_reserve(void **state)
{
	(void)state;
	const uint32_t max = ctx.map_max[ENF_M_EDGE4_DENY];
	const uint32_t room = max - enf_operator_reserve(max);
	assert_true(room < max);
	struct kl_edge_rule *e = calloc(max, sizeof(*e));
	struct kl_ack *a = calloc(max, sizeof(*a));
	assert_non_null(e);
	assert_non_null(a);
	for (uint32_t i = 0; i < max; i++)
		e[i] = (struct kl_edge_rule){ .src = host("198.18.9.1"), .action = KL_EDGE_ACT_ADD_DENY,
					      .proto = 6, .port = (uint16_t)(1 + i), .ttl_ms = 60000 };
	/* The first ones lapse sooner, for the sweep below. */
	for (uint32_t i = 0; i < 10; i++)
		e[i].ttl_ms = 1000;
	enf_edge_rules_apply(&ctx, &gra, e, max, a);
	for (uint32_t i = 0; i < max; i++)
		assert_int_equal(a[i].reason, i < room ? KL_ACK_OK : KL_ACK_MAP_FULL);
	assert_int_equal(ctx.map_count[ENF_M_EDGE4_DENY], room);
	assert_int_equal(count(KL_ORIGIN_GRAPHD), room);
	/* graphd's own rules still change; the other family is untouched */
	assert_int_equal(edge1("198.18.9.1", KL_EDGE_ACT_ADD_DENY, 6, 1, 90000), KL_ACK_OK);
	assert_int_equal(edge1("fd00:6b6c::9:1", KL_EDGE_ACT_ADD_DENY, 6, 1, 90000), KL_ACK_OK);

	/* The operator's edge add-deny succeeds, up to the real capacity. */
	struct kl_ctl_req r;
	struct enf_result res;
	for (uint32_t i = 0; i < max - room; i++) {
		memset(&r, 0, sizeof(r));
		r.cmd = KL_CTL_EDGE_ADD_DENY;
		r.addr = host("198.18.9.2");
		r.port = (uint16_t)(1 + i);
		r.proto = 17;
		enf_handle(&ctx, &ctl, &r, &res);
		if (res.status != KL_OK)
			fail_msg("operator edge add-deny %u: %s", i, res.text);
		enf_result_free(&res);
	}
	assert_int_equal(ctx.map_count[ENF_M_EDGE4_DENY], max);
	assert_int_equal(decide("198.18.9.3", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	counts_consistent();

	/* Over the line (the operator's entries do not count against
	 * graphd's quota, but they fill the map): refused, and the lapsed
	 * graphd rules (ports 2..10; port 1 was renewed) are swept at once,
	 * not only by the periodic sweep. */
	memset(&r, 0, sizeof(r));
	r.cmd = KL_CTL_EDGE_DEL_DENY;
	r.addr = host("198.18.9.2");
	r.port = 1;
	r.proto = 17;
	enf_handle(&ctx, &ctl, &r, &res);
	assert_int_equal(res.status, KL_OK);
	enf_result_free(&res);
	assert_int_equal(edge1("198.18.9.4", KL_EDGE_ACT_ADD_DENY, 6, 1, 60000), KL_ACK_MAP_FULL);
	fake_now += 2 * S_NS;
	assert_int_equal(edge1("198.18.9.4", KL_EDGE_ACT_ADD_DENY, 6, 1, 60000), KL_ACK_MAP_FULL);
	assert_int_equal(ctx.map_count[ENF_M_EDGE4_DENY], max - 10);
	counts_consistent();
	assert_int_equal(ctx.map_count[ENF_M_EDGE4_DENY], max - 10);
	free(e);
	free(a);
}

/* With no protect list (the default), the host's own addresses are still
 * no daemon's target: a fake address list stands in
 * for the enforcer's interfaces. */
static void test_self_protected(void **state)
{
	(void)state;
	struct kl_addr self[2] = { host("198.18.10.2"), host("fd00:6b6c::10:2") };
	size_t n_protect = ctx.policy.n_protect;
	ctx.policy.n_protect = 0;
	ctx.policy.self = self;
	ctx.policy.n_self = 2;
	struct kl_decision d = dcs("198.18.10.2", KL_DEC_BLOCK, 0, 0, 60000);
	struct kl_ack a;
	enf_decisions_apply(&ctx, &dec, &d, 1, &a);
	assert_int_equal(a.reason, KL_ACK_PROTECTED);
	assert_false(get_deny("198.18.10.2", &(struct kl_rule){ 0 }));
	assert_int_equal(decide("fd00:6b6c::10:2", KL_DEC_RATE_SOFT, 1, 1, 60000), KL_ACK_PROTECTED);
	assert_int_equal(edge1("198.18.10.2", KL_EDGE_ACT_ADD_DENY, 6, 22, 60000), KL_ACK_PROTECTED);
	/* loopback was never a target */
	assert_int_equal(decide("127.0.0.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_INVALID);
	assert_int_equal(decide("::1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_INVALID);
	/* a neighbour is */
	assert_int_equal(decide("198.18.10.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	/* the operator decides for itself */
	assert_int_equal(ctl_run(KL_CTL_DENY_ADD, "198.18.10.2", 60000), KL_OK);
	ctx.policy.n_protect = n_protect;
	ctx.policy.self = ctx.self;
	ctx.policy.n_self = 0;
	counts_consistent();
}

/* ---- sweep, reset, the wire path, status ---- */

static void test_sweep_and_reset_keep_counts(void **state)
{
	(void)state;
	assert_int_equal(decide("198.18.8.1", KL_DEC_BLOCK, 0, 0, 1000), KL_ACK_OK);
	assert_int_equal(decide("198.18.8.2", KL_DEC_RATE_SOFT, 1, 1, 1000), KL_ACK_OK);
	assert_int_equal(decide("198.18.8.3", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(edge1("198.18.8.4", KL_EDGE_ACT_ADD_DENY, 17, 53, 1000), KL_ACK_OK);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 3);
	fake_now += 2 * S_NS;
	assert_int_equal(enf_sweep(&ctx, 1024), 3);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 1);
	assert_int_equal(count(KL_ORIGIN_GRAPHD), 0);
	counts_consistent();

	struct kl_ctl_req r;
	struct enf_result res;
	memset(&r, 0, sizeof(r));
	r.cmd = KL_CTL_RESET;
	enf_handle(&ctx, &ctl, &r, &res);
	assert_int_equal(res.status, KL_OK);
	enf_result_free(&res);
	assert_int_equal(count(KL_ORIGIN_DECIDER), 0);
}

/* The decider's new-source limit: applied within enforcer.yaml's bounds,
 * refused outside them, from no other role. */
static void test_newsrc_limit(void **state)
{
	(void)state;
	struct kl_newsrc_limit l = { .rate_pps = 100, .burst = 200, .ttl_ms = 30000 };
	uint8_t p[KL_NEWSRC_LIMIT_LEN];
	struct enf_reply rep;
	struct kl_cfg c;
	kl_newsrc_limit_encode(&l, p);
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_OK);
	enf_reply_free(&rep);
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(c.new_rate_pps, 100);
	assert_int_equal(c.new_burst, 200);
	assert_int_equal(c.new_expires_ns, fake_now + 30000ull * 1000000ull);

	l.rate_pps = cfg.newsrc_min_rate - 1;
	kl_newsrc_limit_encode(&l, p);
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	assert_non_null(strstr(rep.text, "below new_source_min_rate"));
	enf_reply_free(&rep);
	l.rate_pps = 100;
	l.ttl_ms = (uint64_t)cfg.newsrc_max_ttl * 1000 + 1000;
	kl_newsrc_limit_encode(&l, p);
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	assert_non_null(strstr(rep.text, "above new_source_max_ttl"));
	enf_reply_free(&rep);
	l.ttl_ms = 30000;
	kl_newsrc_limit_encode(&l, p);
	enf_link_handle(&ctx, &gra, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &rep);
	assert_int_not_equal(rep.status, KL_OK);
	enf_reply_free(&rep);
	uint64_t keep = cfg.newsrc_max_ttl;
	cfg.newsrc_max_ttl = 0;
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	assert_non_null(strstr(rep.text, "not the decider's"));
	enf_reply_free(&rep);
	cfg.newsrc_max_ttl = keep;
	/* nothing refused changed the limit */
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(c.new_burst, 200);
}

static void test_wire_path(void **state)
{
	(void)state;
	struct kl_decision d[2] = {
		dcs("198.18.9.1", KL_DEC_RATE_HARD, 5, 5, 60000),
		dcs("198.19.0.9", KL_DEC_BLOCK, 0, 0, 60000),
	};
	uint8_t p[8 + 80];
	struct enf_reply rep;
	struct kl_ack a[2];
	uint32_t n, applied;
	kl_decisions_encode(d, 2, p);
	enf_link_handle(&ctx, &dec, KL_MSG_DECISIONS, p, sizeof(p), &rep);
	assert_int_equal(rep.type, KL_MSG_DECISIONS_ACK);
	assert_int_equal(kl_acks_decode(rep.buf, rep.len, a, 2, &n, &applied, NULL, 0), 0);
	assert_int_equal(n, 2);
	assert_int_equal(applied, 1);
	assert_int_equal(a[1].reason, KL_ACK_PROTECTED);
	enf_reply_free(&rep);

	/* a malformed batch is refused as a whole and changes nothing */
	d[0] = dcs("198.18.9.2", KL_DEC_BLOCK, 0, 0, 60000);
	d[1].ttl_ms = 10;
	kl_decisions_encode(d, 2, p);
	uint32_t g0 = gen();
	enf_link_handle(&ctx, &dec, KL_MSG_DECISIONS, p, sizeof(p), &rep);
	assert_int_equal(rep.type, KL_MSG_RESULT);
	assert_int_equal(rep.status, KL_ERR_INVALID);
	assert_non_null(strstr(rep.text, "DECISIONS record 1: field 'ttl_ms' is 10"));
	assert_null(rep.buf);
	enf_reply_free(&rep);
	assert_false(get_deny("198.18.9.2", &(struct kl_rule){ 0 }));
	assert_int_equal(gen(), g0);

	uint8_t rp[KL_RELEASE_LEN];
	struct kl_release r = { .budget = 10 };
	struct kl_release_ack ra;
	char err[64];
	kl_cidr_parse("198.18.9.0/24", &r.prefix, err, sizeof(err));
	kl_release_encode(&r, rp);
	enf_link_handle(&ctx, &dec, KL_MSG_RELEASE, rp, sizeof(rp), &rep);
	assert_int_equal(rep.type, KL_MSG_RELEASE_ACK);
	assert_int_equal(kl_release_ack_decode(rep.buf, rep.len, &ra, NULL, 0), 0);
	assert_int_equal(ra.removed, 1);
	enf_reply_free(&rep);
	enf_link_handle(&ctx, &dec, KL_MSG_RELEASE, rp, sizeof(rp) - 1, &rep);
	assert_int_equal(rep.status, KL_ERR_INVALID);
	enf_reply_free(&rep);

	struct kl_edge_rule e = { .src = host("198.18.9.5"), .action = KL_EDGE_ACT_ADD_DENY,
				  .proto = 17, .port = 53, .ttl_ms = 5000 };
	uint8_t ep[8 + 32];
	kl_edge_rules_encode(&e, 1, ep);
	enf_link_handle(&ctx, &gra, KL_MSG_EDGE_RULES, ep, sizeof(ep), &rep);
	assert_int_equal(rep.type, KL_MSG_EDGE_ACK);
	assert_int_equal(kl_acks_decode(rep.buf, rep.len, a, 2, &n, &applied, NULL, 0), 0);
	assert_int_equal(applied, 1);
	enf_reply_free(&rep);
}

/* A link that keeps the enforcer busy is told to wait, the other is not. */
static void test_time_share(void **state)
{
	(void)state;
	struct enf_link_stats *ls = &ctx.links[ENF_LINK_DECIDER];
	uint8_t q[KL_ENFORCED_Q_LEN];
	struct enf_reply rep;
	kl_enforced_q_encode(10, q);
	enf_link_handle(&ctx, &dec, KL_MSG_ENFORCED_Q, q, sizeof(q), &rep);
	assert_int_equal(rep.type, KL_MSG_STATE);
	enf_reply_free(&rep);
	/* as if the decider had just used 3 s of the enforcer's time */
	ls->busy_credit_ns = -1000000000ll;
	enf_link_handle(&ctx, &dec, KL_MSG_ENFORCED_Q, q, sizeof(q), &rep);
	assert_int_equal(rep.type, KL_MSG_RESULT);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	assert_non_null(strstr(rep.text, "busy: decider used its share"));
	enf_reply_free(&rep);
	assert_int_equal(ls->busy_refused, 1);
	enf_link_handle(&ctx, &gra, KL_MSG_ENFORCED_Q, q, sizeof(q), &rep);
	assert_int_equal(rep.type, KL_MSG_STATE);
	enf_reply_free(&rep);
	ls->busy_credit_ns = 1;
	enf_link_handle(&ctx, &dec, KL_MSG_ENFORCED_Q, q, sizeof(q), &rep);
	assert_int_equal(rep.type, KL_MSG_STATE);
	enf_reply_free(&rep);
}

/* The audit trail holds every refusal with the peer's role, uid and pid,
 * also those turned down before they are handled, and the new-source
 * limit's changes; a peer looping on bad messages is recorded a few times
 * a second, the next record counting the rest. */
static int count_recs(json_t **recs, size_t n, const char *event, const char *action,
		      const char *role, const char *detail_has)
{
	int c = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_object_get(recs[i], "details");
		const char *ev = json_string_value(json_object_get(recs[i], "event"));
		const char *ac = json_string_value(json_object_get(d, "action"));
		const char *de = json_string_value(json_object_get(d, "detail"));
		const char *ro = json_string_value(json_object_get(json_object_get(d, "peer"), "role"));
		c += ev && ac && de && ro && strcmp(ev, event) == 0 && strcmp(ac, action) == 0 &&
		     strcmp(ro, role) == 0 && (!detail_has || strstr(de, detail_has));
	}
	return c;
}

static void test_refusals_audited(void **state)
{
	(void)state;
	char dir[64], log[96], key[96], err[512];
	snprintf(dir, sizeof(dir), "/tmp/kl-enf-audit.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(key, sizeof(key), "%s/key", dir);
	struct kl_audit_opts o = { .dir = log, .key = key, .proc = "enforcer", .batch = true,
				   .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = "" };
	ctx.audit = kl_audit_open(&o, err, sizeof(err));
	assert_non_null(ctx.audit);

	struct enf_reply rep;
	struct kl_decision d = dcs("198.18.0.1", KL_DEC_BLOCK, 0, 0, 60000);
	uint8_t p[8 + 40];
	kl_decisions_encode(&d, 1, p);
	enf_link_handle(&ctx, &gra, KL_MSG_DECISIONS, p, sizeof(p), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	enf_reply_free(&rep);
	struct kl_newsrc_limit l = { .rate_pps = 100, .burst = 200, .ttl_ms = 30000 };
	uint8_t np[KL_NEWSRC_LIMIT_LEN];
	kl_newsrc_limit_encode(&l, np);
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, np, sizeof(np), &rep);
	assert_int_equal(rep.status, KL_OK);
	enf_reply_free(&rep);
	l.rate_pps = cfg.newsrc_min_rate - 1;
	kl_newsrc_limit_encode(&l, np);
	enf_link_handle(&ctx, &dec, KL_MSG_NEWSRC_LIMIT, np, sizeof(np), &rep);
	assert_int_equal(rep.status, KL_ERR_REFUSED);
	enf_reply_free(&rep);
	/* a looping peer: 40 malformed RELEASEs fall in at most two seconds'
	 * windows, so at least 20 are left out; the first refusal of a later
	 * second says how many */
	uint8_t rp[KL_RELEASE_LEN] = { 0 };
	for (int i = 0; i < 40; i++) {
		enf_link_handle(&ctx, &dec, KL_MSG_RELEASE, rp, sizeof(rp) - 1, &rep);
		assert_int_equal(rep.status, KL_ERR_INVALID);
		enf_reply_free(&rep);
	}
	time_t t0 = time(NULL);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - start.tv_sec < 3);
	} while (time(NULL) == t0);
	enf_link_handle(&ctx, &dec, KL_MSG_RELEASE, rp, sizeof(rp) - 1, &rep);
	enf_reply_free(&rep);
	kl_audit_close(ctx.audit);
	ctx.audit = NULL;

	char path[128];
	snprintf(path, sizeof(path), "%s/audit-000001.jsonl", log);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	json_t *recs[256];
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0 && n < 256)
		assert_non_null(recs[n++] = json_loads(line, 0, NULL));
	free(line);
	fclose(f);
	int dec_uid_ok = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *peer = json_object_get(json_object_get(recs[i], "details"), "peer");
		dec_uid_ok += json_integer_value(json_object_get(peer, "uid")) == 998 &&
			      json_integer_value(json_object_get(peer, "pid")) == 2;
	}
	assert_true(dec_uid_ok > 0);
	assert_int_equal(count_recs(recs, n, "refused", "DECISIONS", "graphd", "may not send"), 1);
	assert_int_equal(count_recs(recs, n, "change", "new-sources-limit", "decider", "rate=100"), 1);
	assert_int_equal(count_recs(recs, n, "refused", "new-sources-limit", "decider", NULL), 1);
	int rel = count_recs(recs, n, "refused", "RELEASE", "decider", NULL);
	assert_true(rel >= 2 && rel <= 21);
	assert_int_equal(count_recs(recs, n, "refused", "RELEASE", "decider", "not recorded"), 1);
	for (size_t i = 0; i < n; i++)
		json_decref(recs[i]);
	uint8_t pk[1][KL_AUDIT_PK_LEN];
	char pub[128];
	snprintf(pub, sizeof(pub), "%s.pub", key);
	assert_int_equal(kl_audit_read_pub(pub, pk[0], err, sizeof(err)), 0);
	assert_int_equal(kl_audit_verify_dir(log, (const uint8_t(*)[KL_AUDIT_PK_LEN])pk, 1, NULL, err,
					     sizeof(err)), 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_status_links(void **state)
{
	(void)state;
	assert_int_equal(decide("198.18.10.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	assert_int_equal(decide("198.19.0.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_PROTECTED);
	struct kl_ctl_req r;
	struct enf_result res;
	memset(&r, 0, sizeof(r));
	r.cmd = KL_CTL_STATUS;
	enf_handle(&ctx, &ctl, &r, &res);
	assert_int_equal(res.status, KL_OK);
	json_t *l = json_object_get(res.json, "links");
	json_t *d = json_object_get(l, "decider");
	assert_non_null(d);
	assert_int_equal(json_integer_value(json_object_get(d, "entries")), 1);
	assert_int_equal(json_integer_value(json_object_get(d, "max")), 100000);
	assert_string_equal(json_string_value(json_object_get(d, "user")), "kernloom-decider");
	assert_non_null(strstr(json_string_value(json_object_get(d, "socket")),
			       "/enforcer-decider.sock"));
	assert_true(json_integer_value(json_object_get(
			    json_object_get(d, "refused_by"), "protected")) >= 1);
	assert_non_null(json_object_get(l, "graphd"));
	enf_result_free(&res);
}

/* ---- the server loop's pattern: poll the fd, then receive without waiting ---- */

struct cli_arg {
	char path[128];
	int rc;
	uint32_t n;
	volatile bool done;
};

static void *cli_thread(void *p)
{
	struct cli_arg *a = p;
	struct kl_client *c;
	char err[256];
	uint8_t q[KL_ENFORCED_Q_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	struct kl_state_rec recs[8];
	bool tr;
	a->rc = -1;
	if (kl_client_open(&c, a->path, KL_ROLE_DECIDER, 3000, err, sizeof(err)) == 0) {
		kl_enforced_q_encode(8, q);
		if (kl_client_call(c, KL_MSG_ENFORCED_Q, q, sizeof(q), &reply, &rbuf, err,
				   sizeof(err)) == 0 &&
		    reply.hdr.type == KL_MSG_STATE &&
		    kl_state_decode(reply.payload, reply.payload_len, recs, 8, &a->n, &tr, err,
				    sizeof(err)) == 0)
			a->rc = 0;
		free(rbuf);
		kl_client_close(c);
	}
	if (a->rc)
		fprintf(stderr, "client: %s\n", err);
	a->done = true;
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_pollable_server(void **state)
{
	(void)state;
	char dir[] = "/tmp/kl-test-links-XXXXXX", err[256];
	assert_non_null(mkdtemp(dir));
	struct cli_arg a = { .rc = -1 };
	snprintf(a.path, sizeof(a.path), "%s/enforcer-decider.sock", dir);
	struct kl_server_opts so = { .path = a.path, .self = KL_ROLE_ENFORCER,
				     .peer_role = KL_ROLE_DECIDER, .mode = 0660,
				     .gid = (gid_t)-1, .admin_gid = (gid_t)-1 };
	struct kl_server *srv;
	assert_int_equal(kl_server_open(&srv, &so, err, sizeof(err)), 0);
	int fd = kl_server_fd(srv);
	assert_true(fd >= 0);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 20), 0);
	/* a receive with timeout 0 never waits, not even across the
	 * listener check (the first one runs 2 s after open) */
	for (int i = 0; i < 30; i++) {
		struct kl_request req;
		uint64_t t0 = mono_ms();
		assert_int_equal(kl_server_recv(srv, &req, 0), 0);
		if (mono_ms() - t0 > 600)
			fail_msg("kl_server_recv(..., 0) took %llu ms",
				 (unsigned long long)(mono_ms() - t0));
		usleep(100 * 1000);
	}
	assert_int_equal(decide("198.18.11.1", KL_DEC_BLOCK, 0, 0, 60000), KL_ACK_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, cli_thread, &a), 0);
	unsigned served = 0;
	uint64_t deadline = mono_ms() + 5000;
	while (!a.done && mono_ms() < deadline) {
		if (poll(&pfd, 1, 100) < 0)
			break;
		struct kl_request req;
		while (kl_server_recv(srv, &req, 0) == 1) {
			struct enf_actor who = { .role = req.peer_role, .uid = req.peer_uid,
						 .pid = req.peer_pid };
			struct enf_reply rep;
			assert_int_equal(req.peer_role, KL_ROLE_DECIDER);
			enf_link_handle(&ctx, &who, req.msg.hdr.type, req.msg.payload,
					req.msg.payload_len, &rep);
			assert_int_equal(rep.type, KL_MSG_STATE);
			assert_int_equal(kl_server_reply(srv, &req, rep.type, rep.buf, rep.len), 0);
			enf_reply_free(&rep);
			kl_request_done(&req);
			served++;
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(served, 1);
	kl_server_close(srv);
	rmdir(dir);
}

int main(void)
{
	kl_log_init("test_enforcer_links", KL_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_role_table, clean),
		cmocka_unit_test_setup(test_levels, clean),
		cmocka_unit_test_setup(test_operator_entries_kept, clean),
		cmocka_unit_test_setup(test_protected_and_invalid, clean),
		cmocka_unit_test_setup(test_rate_quota, clean),
		cmocka_unit_test_setup(test_total_quota, clean),
		cmocka_unit_test_setup(test_map_full, clean),
		cmocka_unit_test_setup(test_release, clean),
		cmocka_unit_test_setup(test_state, clean),
		cmocka_unit_test_setup(test_edge_rules, clean),
		cmocka_unit_test_setup(test_operator_reserve, clean),
		cmocka_unit_test_setup(test_self_protected, clean),
		cmocka_unit_test_setup(test_sweep_and_reset_keep_counts, clean),
		cmocka_unit_test_setup(test_wire_path, clean),
		cmocka_unit_test_setup(test_newsrc_limit, clean),
		cmocka_unit_test_setup(test_time_share, clean),
		cmocka_unit_test_setup(test_refusals_audited, clean),
		cmocka_unit_test_setup(test_status_links, clean),
		cmocka_unit_test_setup(test_pollable_server, clean),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
