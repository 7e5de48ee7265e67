/* SPDX-License-Identifier: MPL-2.0 */
/* Pure enforcer helpers: keys, expiry, folding, event ring, top-src order,
 * pinned-map mismatch messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "enforcer/enforcer.h"
#include "enforcer/model.h"

static struct kl_addr cidr(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_cidr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static void test_keys(void **state)
{
	(void)state;
	uint8_t key[40];
	struct kl_addr a = cidr("198.18.0.7"), back;
	assert_int_equal(enf_host_key(&a, key), 4);
	uint32_t be;
	memcpy(&be, key, 4);
	assert_int_equal(be, inet_addr("198.18.0.7"));
	enf_addr_from_host4(be, &back);
	assert_memory_equal(&back, &a, sizeof(a));

	a = cidr("198.18.0.0/15");
	assert_int_equal(enf_lpm_key(&a, key), sizeof(struct kl_lpm4_key));
	struct kl_lpm4_key k4;
	memcpy(&k4, key, sizeof(k4));
	assert_int_equal(k4.prefixlen, 15);
	assert_int_equal(k4.addr, inet_addr("198.18.0.0"));
	enf_addr_from_lpm4(&k4, &back);
	assert_memory_equal(&back, &a, sizeof(a));

	a = cidr("fd00:6b6c::/48");
	assert_int_equal(enf_lpm_key(&a, key), sizeof(struct kl_lpm6_key));
	struct kl_lpm6_key k6;
	memcpy(&k6, key, sizeof(k6));
	assert_int_equal(k6.prefixlen, 48);
	assert_int_equal(k6.addr[0], 0xfd);
	assert_int_equal(k6.addr[3], 0x6c);
	enf_addr_from_lpm6(&k6, &back);
	assert_memory_equal(&back, &a, sizeof(a));

	a = cidr("fd00:6b6c::9");
	assert_int_equal(enf_host_key(&a, key), 16);
	assert_int_equal(key[15], 9);
}

static void test_edge_key_folding(void **state)
{
	(void)state;
	uint8_t key[40];
	struct kl_addr a = cidr("198.18.0.9");
	assert_int_equal(enf_edge_key(&a, 443, IPPROTO_TCP, 32768, key), sizeof(struct kl_edge4_key));
	struct kl_edge4_key k;
	memcpy(&k, key, sizeof(k));
	assert_int_equal(k.port, 443);
	assert_int_equal(k.proto, IPPROTO_TCP);
	assert_int_equal(k.pad, 0);
	enf_edge_key(&a, 40000, IPPROTO_UDP, 32768, key);
	memcpy(&k, key, sizeof(k));
	assert_int_equal(k.port, KL_PORT_EPHEMERAL);
	/* ephemeral_min 0 disables folding */
	enf_edge_key(&a, 40000, IPPROTO_UDP, 0, key);
	memcpy(&k, key, sizeof(k));
	assert_int_equal(k.port, 40000);
	assert_int_equal(enf_fold_port(32767, 32768), 32767);
	assert_int_equal(enf_fold_port(32768, 32768), 0);

	a = cidr("fd00:6b6c::9");
	assert_int_equal(enf_edge_key(&a, 22, IPPROTO_TCP, 32768, key), sizeof(struct kl_edge6_key));
	struct kl_edge6_key k6;
	memcpy(&k6, key, sizeof(k6));
	assert_int_equal(k6.src[15], 9);
	assert_int_equal(k6.port, 22);
}

static void test_expiry(void **state)
{
	(void)state;
	assert_int_equal(enf_expiry(1000, 0), 0);
	assert_int_equal(enf_expiry(1000, 2000), 1000 + 2000ull * 1000000ull);
	assert_true(enf_expiry(UINT64_MAX - 5, 1) == UINT64_MAX);
	assert_false(enf_expired(0, UINT64_MAX));
	assert_false(enf_expired(100, 99));
	assert_true(enf_expired(100, 100));
	assert_true(enf_expired(100, 101));
}

static void test_names(void **state)
{
	(void)state;
	char b[16];
	assert_string_equal(enf_proto_name(6, b, sizeof(b)), "tcp");
	assert_string_equal(enf_proto_name(58, b, sizeof(b)), "icmpv6");
	assert_string_equal(enf_proto_name(132, b, sizeof(b)), "132");
	assert_string_equal(enf_origin_name(KL_ORIGIN_PROTECTED), "protected");
	assert_string_equal(enf_edge_mode_name(KL_EDGE_ALLOW), "allow");
	assert_string_equal(enf_event_kind_name(KL_EV_SCAN_HINT), "scan_hint");
	/* every total has a name (a new counter must get one) */
	for (unsigned i = 0; i < KL_T_MAX; i++)
		assert_non_null(enf_total_name(i));
	assert_string_equal(enf_total_name(KL_T_DROP_RL), "drop_rl");
	assert_null(enf_total_name(KL_T_MAX));
}

static void test_evring(void **state)
{
	(void)state;
	struct enf_evring *r = calloc(1, sizeof(*r));
	struct kl_event out[8];
	assert_int_equal(enf_evring_last(r, 8, out), 0);
	for (uint64_t i = 0; i < 3; i++) {
		struct kl_event e = { .ts_ns = i };
		enf_evring_push(r, &e);
	}
	assert_int_equal(enf_evring_last(r, 8, out), 3);
	assert_int_equal(out[0].ts_ns, 0);
	assert_int_equal(out[2].ts_ns, 2);
	assert_int_equal(enf_evring_last(r, 2, out), 2);
	assert_int_equal(out[0].ts_ns, 1); /* the newest two, oldest first */
	/* wrap around: only the last CAP survive */
	for (uint64_t i = 3; i < ENF_EVRING_CAP + 10; i++) {
		struct kl_event e = { .ts_ns = i };
		enf_evring_push(r, &e);
	}
	assert_int_equal(enf_evring_last(r, 4, out), 4);
	assert_int_equal(out[3].ts_ns, ENF_EVRING_CAP + 9);
	assert_int_equal(out[0].ts_ns, ENF_EVRING_CAP + 6);
	struct kl_event *all = calloc(ENF_EVRING_CAP + 5, sizeof(*all));
	assert_int_equal(enf_evring_last(r, ENF_EVRING_CAP + 5, all), ENF_EVRING_CAP);
	assert_int_equal(all[0].ts_ns, 10);
	free(all);
	free(r);
}

static void test_top_sort(void **state)
{
	(void)state;
	struct enf_src_row rows[4];
	memset(rows, 0, sizeof(rows));
	rows[0].addr = cidr("198.18.0.1");
	rows[0].st.pkts = 10, rows[0].st.bytes = 9000, rows[0].st.drop_rl = 1;
	rows[1].addr = cidr("198.18.0.2");
	rows[1].st.pkts = 50, rows[1].st.bytes = 100, rows[1].st.drop_deny = 3;
	rows[2].addr = cidr("fd00:6b6c::1");
	rows[2].st.pkts = 30, rows[2].st.bytes = 500, rows[2].st.drop_rl = 5, rows[2].st.drop_edge = 1;
	rows[3].addr = cidr("198.18.0.3");
	rows[3].st.pkts = 50, rows[3].st.bytes = 100; /* ties with .2 on pkts */

	enf_top_sort(rows, 4, KL_TOP_PKTS);
	assert_int_equal(rows[0].addr.addr[3], 2); /* tie broken by address */
	assert_int_equal(rows[1].addr.addr[3], 3);
	assert_int_equal(rows[2].addr.family, 6);
	enf_top_sort(rows, 4, KL_TOP_BYTES);
	assert_int_equal(rows[0].st.bytes, 9000);
	enf_top_sort(rows, 4, KL_TOP_DROPS);
	assert_int_equal(rows[0].addr.family, 6); /* 5 + 1 */
	assert_int_equal(enf_top_metric(&rows[0].st, KL_TOP_DROPS), 6);
	assert_int_equal(rows[1].addr.addr[3], 2); /* 3 */
	enf_top_sort(rows, 4, KL_TOP_DROPRL);
	assert_int_equal(rows[0].st.drop_rl, 5);
	assert_int_equal(rows[1].st.drop_rl, 1);
}

static void test_pin_mismatch(void **state)
{
	(void)state;
	char buf[160];
	assert_null(enf_pin_mismatch(1, 4, 8, 100, 0, 1, 4, 8, 100, 0, buf, sizeof(buf)));
	assert_non_null(enf_pin_mismatch(1, 4, 8, 100, 0, 1, 4, 8, 50, 0, buf, sizeof(buf)));
	assert_string_equal(buf, "max_entries is 50 in the pin, the configuration wants 100");
	enf_pin_mismatch(1, 4, 8, 100, 0, 1, 4, 16, 100, 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "value size is 16"));
	enf_pin_mismatch(1, 4, 8, 100, 1, 9, 4, 8, 100, 1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "map type is 9"));
	enf_pin_mismatch(1, 4, 8, 100, 1, 1, 4, 8, 100, 0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "map flags"));
}

static void test_map_specs_match_abi(void **state)
{
	(void)state;
	/* every map has a name, pairs are laid out v4 then v6 */
	for (int i = 0; i < ENF_M_MAX; i++)
		assert_non_null(enf_map_specs[i].name);
	assert_string_equal(enf_map_specs[ENF_M_DENY6_LPM].name, KL_MAP_DENY6_LPM);
	assert_string_equal(enf_map_specs[ENF_M_EDGE6_RL].name, KL_MAP_EDGE6_RL);
	/* Source slots: an array index, a 256-byte slot. */
	assert_int_equal(enf_map_specs[ENF_M_SRC6].key_size, 4);
	assert_int_equal(enf_map_specs[ENF_M_SRC6].value_size, sizeof(struct kl_src_slot));
	/* Slot counts: a power of two, >= 2x the sources, >= 64. */
	assert_int_equal(enf_slots(KL_SRC_MAX_DEFAULT), KL_SRC_SLOTS_DEFAULT);
	assert_int_equal(enf_slots(KL_FLOW_MAX_DEFAULT), KL_FLOW_SLOTS_DEFAULT);
	assert_true(enf_is_slot_map(ENF_M_FLOW6) && enf_is_slot_map(ENF_M_SRC4));
	assert_false(enf_is_slot_map(ENF_M_DENY4) || enf_is_slot_map(ENF_M_TOTALS));
	assert_int_equal(enf_slots(1000), 2048);
	assert_int_equal(enf_slots(1024), 2048);
	assert_int_equal(enf_slots(1025), 4096);
	assert_int_equal(enf_slots(1), 64);
	assert_int_equal(enf_slots(0xffffffffu), ENF_SLOTS_MAX);
	assert_int_equal(enf_map_specs[ENF_M_RL4].value_size, sizeof(struct kl_rl_rule));
	assert_true(enf_map_specs[ENF_M_ALLOW4].lpm);
	assert_false(enf_map_specs[ENF_M_DENY4].lpm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),	    cmocka_unit_test(test_edge_key_folding),
		cmocka_unit_test(test_expiry),	    cmocka_unit_test(test_names),
		cmocka_unit_test(test_evring),	    cmocka_unit_test(test_top_sort),
		cmocka_unit_test(test_pin_mismatch), cmocka_unit_test(test_map_specs_match_abi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
