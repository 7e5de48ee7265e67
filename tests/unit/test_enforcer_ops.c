/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The enforcer's request handlers against maps of the shield's layout in
 * the in-memory backend (fakemaps.h): no privileges needed.
 * test_enforcer_maps checks that backend against the kernel's maps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/log.h"
#include "common/prom.h"
#include "enforcer/enforcer.h"
#include "fakemaps.h"

static struct enf_config cfg;
static struct enf_ctx ctx;
static struct enf_evring ring;
static uint64_t fake_now = 1000ull * 1000000000ull;
static const struct enf_actor ctl = { .role = KL_ROLE_CTL, .uid = 0, .pid = 1 };

static uint64_t now_fn(void)
{
	return fake_now;
}

static int setup(void **state)
{
	(void)state;
	return kl_test_enf_setup(&ctx, &cfg, &ring, now_fn, "198.18.0.0/24", 1024);
}

static int teardown(void **state)
{
	(void)state;
	kl_test_maps_free(&ctx, false);
	return 0;
}

static struct kl_ctl_req mk(uint16_t cmd, const char *addr)
{
	struct kl_ctl_req r;
	char err[128];
	memset(&r, 0, sizeof(r));
	r.cmd = cmd;
	if (addr)
		assert_int_equal(kl_cidr_parse(addr, &r.addr, err, sizeof(err)), 0);
	return r;
}

/* Run one request; returns its status and leaves the result in *res. */
static int run(const struct kl_ctl_req *r, struct enf_result *res)
{
	enf_handle(&ctx, &ctl, r, res);
	return res->status;
}

static int run0(const struct kl_ctl_req *r)
{
	struct enf_result res;
	int st = run(r, &res);
	if (st != KL_OK)
		print_message("status %d: %s\n", st, res.text);
	enf_result_free(&res);
	return st;
}

static uint32_t gen(void)
{
	struct kl_cfg c;
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	return c.policy_gen;
}

static json_t *entry_for(json_t *doc, const char *ip)
{
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(doc, "entries"), i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "ip")), ip) == 0)
			return e;
	}
	return NULL;
}

static void test_cfg_init_fresh(void **state)
{
	(void)state;
	struct kl_cfg c;
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(c.sample_mask, 1023);
	assert_int_equal(c.ephemeral_min, 32768);
	assert_true(c.policy_gen >= 1);
	/* a second start keeps the runtime state and bumps the generation */
	c.allow_enforce = 1;
	assert_int_equal(enf_cfg_write(&ctx, &c), 0);
	assert_int_equal(enf_cfg_init(&ctx), 0);
	struct kl_cfg c2;
	enf_cfg_read(&ctx, &c2);
	assert_int_equal(c2.allow_enforce, 1);
	assert_int_equal(c2.policy_gen, c.policy_gen + 1);
	/* The source bucket seed: drawn once, kept by every later start (the
	 * reused slots stay where the data plane looks for them). */
	assert_true(c.src_seed[0] != 0 || c.src_seed[1] != 0);
	assert_memory_equal(c2.src_seed, c.src_seed, sizeof(c.src_seed));
	c2.allow_enforce = 0;
	enf_cfg_write(&ctx, &c2);
}

static void test_deny_host_ttl_list_del(void **state)
{
	(void)state;
	struct enf_result res;
	uint32_t g0 = gen();
	struct kl_ctl_req r = mk(KL_CTL_DENY_ADD, "203.0.113.7");
	r.ttl_ms = 2000;
	assert_int_equal(run0(&r), KL_OK);
	assert_true(gen() > g0);

	/* it is in the exact hash with the right expiry and origin */
	uint32_t key;
	struct kl_rule v;
	enf_host_key(&r.addr, &key);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4, &key, &v), 0);
	assert_int_equal(v.expires_ns, fake_now + 2000ull * 1000000ull);
	assert_int_equal(v.origin, KL_ORIGIN_OPERATOR);

	struct kl_ctl_req l = mk(KL_CTL_DENY_LIST, NULL);
	assert_int_equal(run(&l, &res), KL_OK);
	json_t *e = entry_for(res.json, "203.0.113.7");
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "host");
	assert_int_equal(json_integer_value(json_object_get(e, "expires_in_ms")), 2000);
	assert_false(json_is_true(json_object_get(res.json, "truncated")));
	enf_result_free(&res);

	/* after the TTL the list hides it even before the sweep runs */
	fake_now += 3ull * 1000000000ull;
	assert_int_equal(run(&l, &res), KL_OK);
	assert_null(entry_for(res.json, "203.0.113.7"));
	enf_result_free(&res);

	struct kl_ctl_req d = mk(KL_CTL_DENY_DEL, "203.0.113.7");
	assert_int_equal(run0(&d), KL_OK);
	assert_int_equal(run(&d, &res), KL_ERR_NOTFOUND);
	assert_non_null(strstr(res.text, "not there"));
	enf_result_free(&res);
}

static void test_deny_cidr_and_v6(void **state)
{
	(void)state;
	struct enf_result res;
	struct kl_ctl_req r = mk(KL_CTL_DENY_ADD, "203.0.113.0/24");
	assert_int_equal(run0(&r), KL_OK);
	struct kl_lpm4_key k = { .prefixlen = 24 };
	memcpy(&k.addr, r.addr.addr, 4);
	struct kl_rule v;
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4_LPM, &k, &v), 0);
	assert_int_equal(v.expires_ns, 0);

	r = mk(KL_CTL_DENY_ADD, "2001:db8::5");
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_DENY_ADD, "2001:db8:1::/48");
	assert_int_equal(run0(&r), KL_OK);

	struct kl_ctl_req l = mk(KL_CTL_DENY_LIST, NULL);
	assert_int_equal(run(&l, &res), KL_OK);
	assert_int_equal(json_integer_value(json_object_get(res.json, "total")), 3);
	json_t *e = entry_for(res.json, "203.0.113.0/24");
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "cidr");
	assert_true(json_is_null(json_object_get(e, "expires_in_ms")));
	assert_non_null(entry_for(res.json, "2001:db8::5"));
	assert_non_null(entry_for(res.json, "2001:db8:1::/48"));
	enf_result_free(&res);

	/* the cap truncates the list but the total stays right */
	l.count = 1;
	assert_int_equal(run(&l, &res), KL_OK);
	assert_int_equal(json_array_size(json_object_get(res.json, "entries")), 1);
	assert_int_equal(json_integer_value(json_object_get(res.json, "total")), 3);
	assert_true(json_is_true(json_object_get(res.json, "truncated")));
	enf_result_free(&res);

	/* reset removes them all and reports counts */
	struct kl_ctl_req rs = mk(KL_CTL_RESET, NULL);
	assert_int_equal(run(&rs, &res), KL_OK);
	assert_int_equal(json_integer_value(json_object_get(res.json, "deny")), 1);
	assert_int_equal(json_integer_value(json_object_get(res.json, "deny_cidr")), 2);
	enf_result_free(&res);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4_LPM), 0);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY6), 0);
}

static void test_protected_refused_and_synced(void **state)
{
	(void)state;
	struct enf_result res;
	uint32_t g0 = gen();
	struct kl_ctl_req r = mk(KL_CTL_DENY_ADD, "198.18.0.9");
	assert_int_equal(run(&r, &res), KL_ERR_REFUSED);
	assert_string_equal(res.text, "refused: 198.18.0.9 is inside protected 198.18.0.0/24");
	enf_result_free(&res);
	assert_int_equal(gen(), g0); /* nothing written, nothing bumped */
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), 0);

	/* a stale PROTECTED entry (no longer configured) plus an operator one */
	struct kl_lpm4_key stale = { .prefixlen = 32 };
	stale.addr = htonl(0xc0000201); /* 192.0.2.1 */
	struct kl_rule pv = { .origin = KL_ORIGIN_PROTECTED };
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &stale, &pv), 0);
	struct kl_ctl_req a = mk(KL_CTL_ALLOW_ADD, "192.0.2.0/28");
	assert_int_equal(run0(&a), KL_OK);

	assert_int_equal(enf_sync_protected(&ctx), 0);
	struct kl_ctl_req l = mk(KL_CTL_ALLOW_LIST, NULL);
	assert_int_equal(run(&l, &res), KL_OK);
	assert_null(entry_for(res.json, "192.0.2.1"));
	json_t *e = entry_for(res.json, "198.18.0.0/24");
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "origin")), "protected");
	assert_non_null(entry_for(res.json, "fd00:6b6c::200"));
	e = entry_for(res.json, "192.0.2.0/28");
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "origin")), "operator");
	enf_result_free(&res);

	/* allow del refuses protected entries, works on others */
	struct kl_ctl_req d = mk(KL_CTL_ALLOW_DEL, "198.18.0.0/24");
	assert_int_equal(run(&d, &res), KL_ERR_REFUSED);
	enf_result_free(&res);
	d = mk(KL_CTL_ALLOW_DEL, "192.0.2.0/28");
	assert_int_equal(run0(&d), KL_OK);
	assert_int_equal(run(&d, &res), KL_ERR_NOTFOUND);
	enf_result_free(&res);
	/* allow add of a protected prefix keeps it protected */
	a = mk(KL_CTL_ALLOW_ADD, "198.18.0.0/24");
	assert_int_equal(run(&a, &res), KL_OK);
	assert_non_null(strstr(res.text, "protected"));
	enf_result_free(&res);
	struct kl_lpm4_key pk = { .prefixlen = 24 };
	memcpy(&pk.addr, a.addr.addr, 4);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &pk, &pv), 0);
	assert_int_equal(pv.origin, KL_ORIGIN_PROTECTED);
}

/* The aggregate new-source limit: written to kernloom_cfg with its expiry,
 * shown by status, removed by off. */
static void test_new_source_limit(void **state)
{
	(void)state;
	struct enf_result res;
	struct kl_cfg c;
	struct kl_ctl_req r = mk(KL_CTL_NEWSRC_LIMIT, NULL);
	r.rate = 0;
	r.burst = 50;
	r.ttl_ms = 600000;
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.new_rate_pps, 0);
	assert_int_equal(c.new_burst, 50);
	assert_int_equal(c.new_expires_ns, fake_now + 600000ull * 1000000ull);
	struct kl_ctl_req st = mk(KL_CTL_STATUS, NULL);
	assert_int_equal(run(&st, &res), KL_OK);
	json_t *lim = json_object_get(json_object_get(res.json, "new_sources"), "limit");
	assert_int_equal(json_integer_value(json_object_get(lim, "burst")), 50);
	enf_result_free(&res);
	r = mk(KL_CTL_NEWSRC_OFF, NULL);
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.new_burst, 0);
	assert_int_equal(c.new_expires_ns, 0);
}

/* Every enforcer command of the control table is served, no other. A change to what the data
 * plane caches per source bumps the policy generation; one it reads per
 * packet (the new-source limit) and a read do not. */
static void test_dispatch_table(void **state)
{
	(void)state;
	for (unsigned c = 1; c < KL_CTL_CMD_MAX; c++)
		assert_int_equal(enf_ctl_served(c), kl_ctl_cmd_role(c) == KL_ROLE_ENFORCER);
	assert_false(enf_ctl_served(0));
	assert_false(enf_ctl_served(KL_CTL_CMD_MAX));

	uint32_t g = gen();
	struct kl_ctl_req r = mk(KL_CTL_NEWSRC_LIMIT, NULL);
	r.burst = 10;
	assert_int_equal(run0(&r), KL_OK);
	assert_int_equal(gen(), g);
	r = mk(KL_CTL_STATS, NULL);
	assert_int_equal(run0(&r), KL_OK);
	assert_int_equal(gen(), g);
	r = mk(KL_CTL_DENY_ADD, "203.0.113.9");
	assert_int_equal(run0(&r), KL_OK);
	assert_true(gen() > g);

	struct enf_result res;
	r = mk(KL_CTL_CMD_MAX, NULL);
	assert_int_not_equal(run(&r, &res), KL_OK);
	enf_result_free(&res);

	/* Leave the shared maps as found. */
	r = mk(KL_CTL_DENY_DEL, "203.0.113.9");
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_NEWSRC_OFF, NULL);
	assert_int_equal(run0(&r), KL_OK);
}

static void test_rate_limits(void **state)
{
	(void)state;
	struct enf_result res;
	struct kl_cfg c;
	struct kl_ctl_req r = mk(KL_CTL_RL_SET, NULL);
	r.rate = 100;
	r.burst = 20;
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.rl_rate_pps, 100);
	assert_int_equal(c.rl_burst, 20);

	r = mk(KL_CTL_RL_SET_IP, "fd00:6b6c::1");
	r.rate = 0;
	r.burst = 1;
	r.ttl_ms = 60000;
	assert_int_equal(run0(&r), KL_OK);
	struct kl_rl_rule v;
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_RL6, r.addr.addr, &v), 0);
	assert_int_equal(v.rate_pps, 0);
	assert_int_equal(v.burst, 1);
	assert_int_equal(v.expires_ns, fake_now + 60000ull * 1000000ull);

	struct kl_ctl_req l = mk(KL_CTL_RL_LIST, NULL);
	assert_int_equal(run(&l, &res), KL_OK);
	json_t *g = json_object_get(res.json, "global");
	assert_int_equal(json_integer_value(json_object_get(g, "rate")), 100);
	json_t *e = entry_for(res.json, "fd00:6b6c::1");
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e, "burst")), 1);
	enf_result_free(&res);

	r = mk(KL_CTL_RL_OFF, NULL);
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.rl_burst, 0);
	r = mk(KL_CTL_RL_UNSET_IP, "fd00:6b6c::1");
	assert_int_equal(run0(&r), KL_OK);
	assert_int_equal(run(&r, &res), KL_ERR_NOTFOUND);
	enf_result_free(&res);
}

static void test_sweep_removes_only_expired(void **state)
{
	(void)state;
	struct kl_ctl_req r = mk(KL_CTL_DENY_ADD, "203.0.113.1");
	r.ttl_ms = 1000;
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_DENY_ADD, "203.0.113.2");
	r.ttl_ms = 60000;
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_DENY_ADD, "203.0.113.3"); /* permanent */
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_RL_SET_IP, "203.0.113.4");
	r.rate = 5;
	r.burst = 5;
	r.ttl_ms = 500;
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_EDGE_ADD_DENY, "203.0.113.5");
	r.port = 22;
	r.proto = IPPROTO_TCP;
	r.ttl_ms = 500;
	assert_int_equal(run0(&r), KL_OK);

	assert_int_equal(enf_sweep(&ctx, 1000), 0); /* nothing expired yet */
	fake_now += 2ull * 1000000000ull;
	uint32_t g0 = gen();
	assert_int_equal(enf_sweep(&ctx, 1000), 3);
	assert_true(gen() > g0);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), 2);
	assert_int_equal(enf_map_count(&ctx, ENF_M_RL4), 0);
	assert_int_equal(enf_map_count(&ctx, ENF_M_EDGE4_DENY), 0);

	/* bounded work: a budget of 1 visits one entry per map per sweep */
	for (int i = 10; i < 20; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.114.%d", i);
		r = mk(KL_CTL_DENY_ADD, ip);
		r.ttl_ms = 1;
		assert_int_equal(run0(&r), KL_OK);
	}
	fake_now += 1000000000ull;
	long total = 0;
	for (int i = 0; i < 40 && total < 10; i++) {
		long n = enf_sweep(&ctx, 1);
		assert_true(n <= 1);
		total += n;
	}
	assert_int_equal(total, 10);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), 2);
	r = mk(KL_CTL_RESET, NULL);
	assert_int_equal(run0(&r), KL_OK);
}

static void test_stats_sum_over_cpus(void **state)
{
	(void)state;
	struct enf_result res;
	int ncpu = libbpf_num_possible_cpus();
	assert_true(ncpu > 0);
	struct kl_totals *per = calloc((size_t)ncpu, sizeof(*per));
	for (int c = 0; c < ncpu; c++) {
		per[c].v[KL_T_PKTS] = 10 + (uint64_t)c;
		per[c].v[KL_T_DROP_DENY] = 2;
		per[c].v[KL_T_NON_IP] = 1;
	}
	uint32_t zero = 0;
	assert_int_equal(enf_map_update(&ctx, ENF_M_TOTALS, &zero, per), 0);
	free(per);
	struct kl_ctl_req r = mk(KL_CTL_STATS, NULL);
	assert_int_equal(run(&r, &res), KL_OK);
	long long pk = 0;
	for (int c = 0; c < ncpu; c++)
		pk += 10 + c;
	assert_int_equal(json_integer_value(json_object_get(res.json, "pkts")), pk);
	assert_int_equal(json_integer_value(json_object_get(res.json, "drop_deny")), 2 * ncpu);
	assert_int_equal(json_integer_value(json_object_get(res.json, "non_ip")), ncpu);
	assert_non_null(json_object_get(res.json, "events_lost"));
	char want[128];
	snprintf(want, sizeof(want), "pkts=%lld bytes=0 pass=0 drop_allow=0 drop_deny=%d", pk,
		 2 * ncpu);
	assert_non_null(strstr(res.text, want));
	enf_result_free(&res);
}

static void test_top_src(void **state)
{
	(void)state;
	struct enf_result res;
	uint32_t k4 = htonl(0xcb007101);
	struct kl_src_slot s = { .seq = 2, .family = 4, .owner4 = k4,
				 .s = { .pkts = 5, .bytes = 500, .drop_rl = 7,
					.first_seen_ns = fake_now - 10ull * 1000000000ull,
					.last_seen_ns = fake_now - 1000000000ull,
					.ports_distinct = 3 } };
	uint32_t slot = 17;
	assert_int_equal(enf_map_update(&ctx, ENF_M_SRC4, &slot, &s), 0);
	/* Being claimed (odd seq) and free-but-used-before (family 0): not
	 * sources. */
	struct kl_src_slot busy = s, freed = s;
	busy.seq = 5;
	freed.family = 0;
	slot = 18;
	assert_int_equal(enf_map_update(&ctx, ENF_M_SRC4, &slot, &busy), 0);
	slot = 19;
	assert_int_equal(enf_map_update(&ctx, ENF_M_SRC4, &slot, &freed), 0);
	uint8_t k6[16] = { 0xfd, 0, 0x6b, 0x6c, [15] = 1 };
	struct kl_src_slot s6 = { .seq = 4, .family = 6,
				  .s = { .pkts = 50, .bytes = 100, .drop_deny = 1 } };
	memcpy(s6.owner, k6, 16);
	slot = 3;
	assert_int_equal(enf_map_update(&ctx, ENF_M_SRC6, &slot, &s6), 0);

	struct kl_ctl_req r = mk(KL_CTL_TOP_SRC, NULL);
	r.count = 1;
	r.mode = KL_TOP_PKTS;
	assert_int_equal(run(&r, &res), KL_OK);
	json_t *arr = json_object_get(res.json, "entries");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "ip")),
			    "fd00:6b6c::1");
	assert_int_equal(json_integer_value(json_object_get(res.json, "total")), 2);
	assert_true(json_is_true(json_object_get(res.json, "truncated")));
	enf_result_free(&res);

	r.mode = KL_TOP_DROPRL;
	r.count = 10;
	assert_int_equal(run(&r, &res), KL_OK);
	json_t *e = json_array_get(json_object_get(res.json, "entries"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "ip")), "203.0.113.1");
	assert_int_equal(json_integer_value(json_object_get(e, "ports")), 3);
	assert_int_equal(json_integer_value(json_object_get(e, "first_seen")), 10);
	assert_int_equal(json_integer_value(json_object_get(e, "last_seen")), 1);
	assert_string_equal(json_string_value(json_object_get(res.json, "by")), "droprl");
	enf_result_free(&res);
}

static void test_edges_and_modes(void **state)
{
	(void)state;
	struct enf_result res;
	struct kl_ctl_req r = mk(KL_CTL_EDGE_ADD_ALLOW, "203.0.113.9");
	r.port = 40000; /* ephemeral: folded like the data plane does */
	r.proto = IPPROTO_UDP;
	assert_int_equal(run(&r, &res), KL_OK);
	assert_non_null(strstr(res.text, "folded"));
	enf_result_free(&res);
	struct kl_edge4_key k = { .port = 0, .proto = IPPROTO_UDP };
	memcpy(&k.src, r.addr.addr, 4);
	struct kl_rule v;
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_EDGE4_ALLOW, &k, &v), 0);

	r = mk(KL_CTL_EDGE_ADD_DENY, "fd00:6b6c::200"); /* protected */
	r.port = 22;
	r.proto = IPPROTO_TCP;
	assert_int_equal(run(&r, &res), KL_ERR_REFUSED);
	enf_result_free(&res);

	struct kl_ctl_req l = mk(KL_CTL_EDGE_LIST, NULL);
	assert_int_equal(run(&l, &res), KL_OK);
	json_t *e = entry_for(res.json, "203.0.113.9");
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "allow");
	assert_string_equal(json_string_value(json_object_get(e, "proto")), "udp");
	assert_int_equal(json_integer_value(json_object_get(e, "port")), 0);
	enf_result_free(&res);

	r = mk(KL_CTL_EDGE_DEL_ALLOW, "203.0.113.9");
	r.port = 40000;
	r.proto = IPPROTO_UDP;
	assert_int_equal(run0(&r), KL_OK);

	struct kl_cfg c;
	r = mk(KL_CTL_TUPLE_ENFORCE, NULL);
	r.mode = KL_EDGE_DENY;
	assert_int_equal(run(&r, &res), KL_OK);
	assert_non_null(strstr(res.text, "no effect")); /* features iq-learning */
	enf_result_free(&res);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.edge_mode, KL_EDGE_DENY);

	r = mk(KL_CTL_SAMPLING, NULL);
	r.count = 3;
	uint32_t g0 = gen();
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.sample_mask, 3);
	assert_int_equal(c.policy_gen, g0); /* sampling is not policy */

	r = mk(KL_CTL_ENFORCE_ALLOW, NULL);
	r.mode = 1;
	assert_int_equal(run0(&r), KL_OK);
	enf_cfg_read(&ctx, &c);
	assert_int_equal(c.allow_enforce, 1);
	assert_true(c.policy_gen > g0);
}

static void test_status(void **state)
{
	(void)state;
	struct enf_result res;
	struct kl_ctl_req r = mk(KL_CTL_STATUS, NULL);
	assert_int_equal(run(&r, &res), KL_OK);
	assert_string_equal(json_string_value(json_object_get(res.json, "features")), "iq-learning");
	json_t *maps = json_object_get(res.json, "maps");
	json_t *a4 = json_object_get(maps, KL_MAP_ALLOW4);
	assert_non_null(a4);
	assert_true(json_integer_value(json_object_get(a4, "entries")) >= 1);
	assert_int_equal(json_integer_value(json_object_get(a4, "max_entries")), 1024);
	assert_int_equal(json_array_size(json_object_get(res.json, "protected")), 2);
	json_t *ns = json_object_get(res.json, "new_sources");
	assert_true(json_is_true(json_object_get(ns, "admission")));
	assert_null(json_object_get(ns, "limit"));
	json_t *self = json_object_get(res.json, "daemon");
	assert_string_equal(json_string_value(json_object_get(self, "name")), "kl-enforcer");
	json_int_t in = json_integer_value(json_object_get(self, "frames_in"));
	enf_result_free(&res);

	/* Brief (`klctl status`): the same "daemon" object and nothing that
	 * walks the maps. */
	r.mode = 1;
	assert_int_equal(run(&r, &res), KL_OK);
	assert_int_equal(json_object_size(res.json), 1);
	self = json_object_get(res.json, "daemon");
	assert_string_equal(json_string_value(json_object_get(self, "name")), "kl-enforcer");
	assert_true(json_is_true(json_object_get(self, "enforcing")));
	assert_true(json_integer_value(json_object_get(self, "frames_in")) >= in);
	enf_result_free(&res);
}

/* The policy summary: a source's bit is set before its exact entry is
 * written, stays while the entry lives, and a rebuild drops it once the
 * entry is gone. */
static bool bloom_has4(const char *ip)
{
	struct kl_cfg c;
	struct in_addr a;
	uint64_t w;

	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	uint32_t bit = kl_pol_bit(kl_src_hash4(a.s_addr, c.src_seed)), wi = bit >> 6;
	assert_int_equal(ctx.maps->lookup(ctx.bloom_fd, &wi, &w), 0);
	return (w >> (bit & 63)) & 1;
}

static void test_policy_bloom(void **state)
{
	(void)state;
	struct kl_ctl_req d = mk(KL_CTL_DENY_ADD, "203.0.113.77");
	struct kl_ctl_req rl = mk(KL_CTL_RL_SET_IP, "203.0.113.78");
	assert_false(bloom_has4("203.0.113.77"));
	assert_int_equal(run0(&d), KL_OK);
	assert_true(bloom_has4("203.0.113.77"));
	rl.rate = 10;
	rl.burst = 20;
	assert_int_equal(run0(&rl), KL_OK);
	assert_true(bloom_has4("203.0.113.78"));
	assert_int_equal(enf_bloom_rebuild(&ctx), 0);
	assert_true(bloom_has4("203.0.113.77"));
	assert_true(bloom_has4("203.0.113.78"));
	struct kl_ctl_req del = mk(KL_CTL_DENY_DEL, "203.0.113.77");
	assert_int_equal(run0(&del), KL_OK);
	assert_int_equal(enf_bloom_rebuild(&ctx), 0);
	assert_false(bloom_has4("203.0.113.77"));
	assert_true(bloom_has4("203.0.113.78"));
}

/* The value of one sample of a page, or -1. */
static double sample(const char *page, const char *name_labels)
{
	size_t n = strlen(name_labels);
	for (const char *l = page; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name_labels, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	}
	return -1;
}

/* --metrics-file: requests by status, entries per map (the kept counts
 * agree with a walk of the map), verdicts from kernloom_totals. */
static void test_metrics_page(void **state)
{
	(void)state;
	struct kl_prom p = { 0 };
	enf_metrics_page(&ctx, &p, 1.5);
	double ok0 = sample(p.buf, "kernloom_enforcer_ctl_requests_total{status=\"OK\"}");
	double ref0 = sample(p.buf, "kernloom_enforcer_ctl_requests_total{status=\"REFUSED\"}");
	assert_true(ok0 >= 0 && ref0 >= 0);
	kl_prom_free(&p);

	struct kl_ctl_req r = mk(KL_CTL_DENY_ADD, "203.0.113.99");
	assert_int_equal(run0(&r), KL_OK);
	r = mk(KL_CTL_DENY_ADD, "198.18.0.5"); /* protected: refused */
	assert_int_equal(run0(&r), KL_ERR_REFUSED);
	int ncpu = libbpf_num_possible_cpus();
	struct kl_totals *per = calloc((size_t)ncpu, sizeof(*per));
	for (int c = 0; c < ncpu; c++) {
		per[c].v[KL_T_PASS] = 7;
		per[c].v[KL_T_DROP_DENY] = 3;
		per[c].v[KL_T_PKTS] = 10;
	}
	uint32_t zero = 0;
	assert_int_equal(enf_map_update(&ctx, ENF_M_TOTALS, &zero, per), 0);
	free(per);

	enf_metrics_page(&ctx, &p, 1.5);
	const char *page = p.buf;
	assert_true(sample(page, "kernloom_enforcer_ctl_requests_total{status=\"OK\"}") == ok0 + 1);
	assert_true(sample(page, "kernloom_enforcer_ctl_requests_total{status=\"REFUSED\"}") ==
		    ref0 + 1);
	assert_true(sample(page, "kernloom_enforcer_map_entries{map=\"" KL_MAP_DENY4 "\"}") ==
		    (double)enf_map_count(&ctx, ENF_M_DENY4));
	assert_true(sample(page, "kernloom_enforcer_map_entries{map=\"" KL_MAP_DENY4 "\"}") >= 1);
	assert_true(sample(page, "kernloom_enforcer_map_entries{map=\"" KL_MAP_ALLOW4 "\"}") ==
		    (double)enf_map_count(&ctx, ENF_M_ALLOW4));
	assert_true(sample(page, "kernloom_enforcer_map_max_entries{map=\"" KL_MAP_SRC4 "\"}") ==
		    1024);
	assert_true(sample(page, "kernloom_enforcer_xdp_verdicts_total{verdict=\"pass\"}") ==
		    7.0 * ncpu);
	assert_true(sample(page, "kernloom_enforcer_xdp_verdicts_total{verdict=\"drop_deny\"}") ==
		    3.0 * ncpu);
	assert_true(sample(page, "kernloom_enforcer_xdp_total{counter=\"pkts\"}") == 10.0 * ncpu);
	/* A verdict is not repeated among the other counters. */
	assert_true(sample(page, "kernloom_enforcer_xdp_total{counter=\"pass\"}") < 0);
	assert_true(sample(page, "kernloom_enforcer_link_records_refused_total{link=\"decider\","
				 "reason=\"protected\"}") >= 0);
	assert_true(sample(page, "kernloom_enforcer_last_write_timestamp_seconds") == 1.5);
	/* HELP and TYPE once per name. */
	assert_non_null(strstr(page, "# TYPE kernloom_enforcer_map_entries gauge\n"));
	assert_null(strstr(strstr(page, "# TYPE kernloom_enforcer_map_entries gauge\n") + 1,
			   "# TYPE kernloom_enforcer_map_entries gauge\n"));
	kl_prom_free(&p);
}

int main(void)
{
	kl_log_init("test_enforcer_ops", KL_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg_init_fresh),
		cmocka_unit_test(test_deny_host_ttl_list_del),
		cmocka_unit_test(test_deny_cidr_and_v6),
		cmocka_unit_test(test_protected_refused_and_synced),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_dispatch_table),
		cmocka_unit_test(test_sweep_removes_only_expired),
		cmocka_unit_test(test_stats_sum_over_cpus),
		cmocka_unit_test(test_top_src),
		cmocka_unit_test(test_policy_bloom),
		cmocka_unit_test(test_new_source_limit),
		cmocka_unit_test(test_edges_and_modes),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_metrics_page),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
