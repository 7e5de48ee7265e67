/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The map access of the enforcer (enf_map_*, walking, counting, deleting,
 * the per-CPU totals) with the answers the kernel gives, run on both
 * backends: the in-memory one the policy tests use (always) and the
 * kernel's maps through bpf(2) (needs CAP_BPF: as root only). The same
 * script and the same expected answers for both is what keeps the fake
 * honest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "enforcer/enforcer.h"
#include "fakemaps.h"

#define MAX 8

static struct enf_config cfg;

static void ctx_on(struct enf_ctx *ctx, bool real)
{
	enf_ctx_init(ctx, &cfg, NULL);
	assert_int_equal(kl_test_maps_create(ctx, real, MAX), 0);
}

static struct kl_rule rule(uint32_t origin, uint64_t exp)
{
	struct kl_rule r;
	memset(&r, 0, sizeof(r));
	r.origin = origin;
	r.expires_ns = exp;
	return r;
}

static void lpm_key(const char *cidr, void *key)
{
	struct kl_addr a;
	char err[96];
	assert_int_equal(kl_cidr_parse(cidr, &a, err, sizeof(err)), 0);
	enf_lpm_key(&a, key);
}

struct seen {
	uint32_t keys[2 * MAX];
	size_t n;
};

static int collect(const void *key, const void *val, void *arg)
{
	struct seen *s = arg;
	(void)val;
	memcpy(&s->keys[s->n++], key, sizeof(uint32_t));
	return 0;
}

static bool odd_key(const void *key, const void *val, void *arg)
{
	uint32_t k;
	(void)val;
	(void)arg;
	memcpy(&k, key, sizeof(k));
	return k & 1;
}

static void hash_script(bool real)
{
	struct enf_ctx ctx;
	struct kl_rule v, got;
	uint32_t k = 1;
	ctx_on(&ctx, real);

	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4, &k, &got), -ENOENT);
	assert_int_equal(enf_map_delete(&ctx, ENF_M_DENY4, &k), -ENOENT);
	for (k = 1; k <= MAX; k++) {
		v = rule(k, 100 * k);
		assert_int_equal(enf_map_update(&ctx, ENF_M_DENY4, &k, &v), 0);
	}
	/* Full: a new key is refused, an existing one is rewritten. */
	v = rule(99, 0);
	assert_int_equal(enf_map_update(&ctx, ENF_M_DENY4, &k, &v), -E2BIG);
	k = 3;
	assert_int_equal(enf_map_update(&ctx, ENF_M_DENY4, &k, &v), 0);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4, &k, &got), 0);
	assert_int_equal(got.origin, 99);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), MAX);

	/* Batch walk: every key once. */
	struct seen s = { .n = 0 };
	assert_int_equal(enf_map_foreach(&ctx, ENF_M_DENY4, collect, &s), 0);
	assert_int_equal(s.n, MAX);
	uint32_t sum = 0;
	for (size_t i = 0; i < s.n; i++)
		sum += s.keys[i];
	assert_int_equal(sum, MAX * (MAX + 1) / 2);

	/* get_next_key from a key that is gone starts over at the first. */
	uint32_t first, next, gone = 77;
	assert_int_equal(enf_map_next_key(&ctx, ENF_M_DENY4, NULL, &first), 0);
	assert_int_equal(enf_map_next_key(&ctx, ENF_M_DENY4, &gone, &next), 0);
	assert_int_equal(next, first);

	assert_int_equal(enf_map_delete_if(&ctx, ENF_M_DENY4, odd_key, NULL), MAX / 2);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), MAX / 2);
	k = 2;
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4, &k, &got), 0);
	k = 5;
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_DENY4, &k, &got), -ENOENT);
	assert_int_equal(enf_map_delete_if(&ctx, ENF_M_DENY4, NULL, NULL), MAX / 2);
	assert_int_equal(enf_map_count(&ctx, ENF_M_DENY4), 0);
	s.n = 0;
	assert_int_equal(enf_map_foreach(&ctx, ENF_M_DENY4, collect, &s), 0);
	assert_int_equal(s.n, 0);
	kl_test_maps_free(&ctx, real);
}

static void lpm_script(bool real)
{
	struct enf_ctx ctx;
	struct kl_lpm4_key k, q;
	struct kl_lpm6_key k6;
	struct kl_rule v, got;
	ctx_on(&ctx, real);

	lpm_key("198.18.0.0/16", &k);
	v = rule(16, 0);
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &k, &v), 0);
	lpm_key("198.18.5.0/24", &k);
	v = rule(24, 0);
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &k, &v), 0);

	/* Longest covering prefix, never a longer one than asked for. */
	lpm_key("198.18.5.7", &q);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), 0);
	assert_int_equal(got.origin, 24);
	lpm_key("198.18.9.1", &q);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), 0);
	assert_int_equal(got.origin, 16);
	lpm_key("198.18.5.0/20", &q);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), 0);
	assert_int_equal(got.origin, 16);
	lpm_key("198.0.0.0/8", &q);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), -ENOENT);
	lpm_key("203.0.113.1", &q);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), -ENOENT);

	/* Delete is exact: the covered address then falls back to the /16. */
	lpm_key("198.18.5.7", &q);
	assert_int_equal(enf_map_delete(&ctx, ENF_M_ALLOW4, &q), -ENOENT);
	assert_int_equal(enf_map_delete(&ctx, ENF_M_ALLOW4, &k), 0);
	assert_int_equal(enf_map_delete(&ctx, ENF_M_ALLOW4, &k), -ENOENT);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW4, &q, &got), 0);
	assert_int_equal(got.origin, 16);

	/* A prefix longer than the address is refused. */
	k.prefixlen = 33;
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &k, &v), -EINVAL);

	/* Full: a new prefix is refused. */
	for (int i = 1; i < MAX; i++) {
		char c[32];
		snprintf(c, sizeof(c), "10.%d.0.0/16", i);
		lpm_key(c, &k);
		assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &k, &v), 0);
	}
	lpm_key("10.99.0.0/16", &k);
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW4, &k, &v), -ENOSPC);
	/* The trie has no batch walk: enf_map_foreach walks it key by key. */
	struct seen s = { .n = 0 };
	assert_int_equal(enf_map_foreach(&ctx, ENF_M_ALLOW4, collect, &s), 0);
	assert_int_equal(s.n, MAX);
	assert_int_equal(enf_map_count(&ctx, ENF_M_ALLOW4), MAX);

	lpm_key("fd00:6b6c::/48", &k6);
	v = rule(48, 0);
	assert_int_equal(enf_map_update(&ctx, ENF_M_ALLOW6, &k6, &v), 0);
	struct kl_lpm6_key q6;
	lpm_key("fd00:6b6c::1", &q6);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW6, &q6, &got), 0);
	assert_int_equal(got.origin, 48);
	lpm_key("fd00:6b6d::1", &q6);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_ALLOW6, &q6, &got), -ENOENT);
	kl_test_maps_free(&ctx, real);
}

static void array_script(bool real)
{
	struct enf_ctx ctx;
	struct kl_cfg c;
	uint32_t one = 1, zero = 0;
	ctx_on(&ctx, real);

	/* Every index exists from the start, zeroed; none can be removed. */
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(c.policy_gen, 0);
	assert_int_equal(enf_map_update(&ctx, ENF_M_CFG, &one, &c), -E2BIG);
	assert_int_equal(enf_map_lookup(&ctx, ENF_M_CFG, &one, &c), -ENOENT);
	assert_int_equal(enf_map_delete(&ctx, ENF_M_CFG, &zero), -EINVAL);
	assert_int_equal(enf_gen_bump(&ctx), 0);
	assert_int_equal(enf_gen_bump(&ctx), 0);
	assert_int_equal(enf_cfg_read(&ctx, &c), 0);
	assert_int_equal(c.policy_gen, 2);

	/* Per-CPU totals come back one slot per possible CPU, summed. */
	int ncpu = libbpf_num_possible_cpus();
	assert_true(ncpu > 0);
	struct kl_totals *per = calloc((size_t)ncpu, sizeof(*per));
	assert_non_null(per);
	for (int i = 0; i < ncpu; i++)
		per[i].v[KL_T_PKTS] = 1 + (uint64_t)i;
	assert_int_equal(enf_map_update(&ctx, ENF_M_TOTALS, &zero, per), 0);
	free(per);
	uint64_t t[KL_T_MAX];
	assert_int_equal(enf_totals_read(&ctx, t), 0);
	assert_int_equal(t[KL_T_PKTS], (uint64_t)ncpu * (ncpu + 1) / 2);
	kl_test_maps_free(&ctx, real);
}

static void test_fake_hash(void **state)
{
	(void)state;
	hash_script(false);
}

static void test_fake_lpm(void **state)
{
	(void)state;
	lpm_script(false);
}

static void test_fake_array(void **state)
{
	(void)state;
	array_script(false);
}

static void test_bpf_hash(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	hash_script(true);
}

static void test_bpf_lpm(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	lpm_script(true);
}

static void test_bpf_array(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	array_script(true);
}

int main(void)
{
	static struct enf_opts opts;
	kl_log_init("test_enforcer_maps", KL_LOG_ERROR);
	if (enf_config_defaults(&opts) < 0)
		return 1;
	cfg = opts.c;
	if (geteuid() != 0)
		printf("note: not root: the kernel's maps (test_bpf_*) are skipped\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_hash),  cmocka_unit_test(test_fake_lpm),
		cmocka_unit_test(test_fake_array), cmocka_unit_test(test_bpf_hash),
		cmocka_unit_test(test_bpf_lpm),	   cmocka_unit_test(test_bpf_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
