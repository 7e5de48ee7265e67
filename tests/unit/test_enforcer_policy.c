/* SPDX-License-Identifier: MPL-2.0 */
/* enforcer_check: role table and the anti-lockout (protected) rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "enforcer/policy.h"

static struct kl_addr cidr(const char *s)
{
	struct kl_addr a;
	char err[128];
	assert_int_equal(kl_cidr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

static struct kl_addr prot[3];
static struct enf_policy pol;

static int setup(void **state)
{
	(void)state;
	prot[0] = cidr("198.18.0.0/24");
	prot[1] = cidr("fd00:6b6c::200");
	prot[2] = cidr("198.19.5.5");
	pol.protect = prot;
	pol.n_protect = 3;
	return 0;
}

static struct kl_ctl_req req(uint16_t cmd, const char *addr)
{
	struct kl_ctl_req r;
	memset(&r, 0, sizeof(r));
	r.cmd = cmd;
	if (addr)
		r.addr = cidr(addr);
	return r;
}

static void test_inside_refused(void **state)
{
	(void)state;
	char why[256];
	struct kl_ctl_req r = req(KL_CTL_DENY_ADD, "198.18.0.1");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_string_equal(why, "refused: 198.18.0.1 is inside protected 198.18.0.0/24");

	r = req(KL_CTL_RL_SET_IP, "fd00:6b6c::200");
	r.rate = 1;
	r.burst = 1;
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_string_equal(why, "refused: fd00:6b6c::200 is inside protected fd00:6b6c::200");

	r = req(KL_CTL_EDGE_ADD_DENY, "198.19.5.5");
	r.port = 22;
	r.proto = 6;
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_non_null(strstr(why, "inside protected 198.19.5.5"));
}

static void test_overlap_refused(void **state)
{
	(void)state;
	char why[256];
	/* a wider deny would cover protected addresses */
	struct kl_ctl_req r = req(KL_CTL_DENY_ADD, "198.18.0.0/15");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_string_equal(why, "refused: 198.18.0.0/15 overlaps protected 198.18.0.0/24");
	r = req(KL_CTL_DENY_ADD, "fd00::/8");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_non_null(strstr(why, "overlaps protected fd00:6b6c::200"));
	r = req(KL_CTL_DENY_ADD, "0.0.0.0/0");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
}

static void test_outside_allowed(void **state)
{
	(void)state;
	char why[256] = "x";
	struct kl_ctl_req r = req(KL_CTL_DENY_ADD, "198.18.1.1");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	assert_string_equal(why, "");
	r = req(KL_CTL_DENY_ADD, "198.18.1.0/24");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	r = req(KL_CTL_DENY_ADD, "fd00:6b6c::201");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	/* no cross-family confusion: ::ffff-style bytes are not IPv4 */
	r = req(KL_CTL_DENY_ADD, "c612::/16");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	/* allowing or listing a protected address is fine */
	r = req(KL_CTL_ALLOW_ADD, "198.18.0.5");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	r = req(KL_CTL_EDGE_ADD_ALLOW, "198.18.0.5");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	/* removing rules about protected addresses is fine too */
	r = req(KL_CTL_DENY_DEL, "198.18.0.5");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
	r = req(KL_CTL_RL_UNSET_IP, "198.18.0.5");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
}

static void test_allow_del_protected(void **state)
{
	(void)state;
	char why[256];
	struct kl_ctl_req r = req(KL_CTL_ALLOW_DEL, "198.18.0.0/24");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_ERR_REFUSED);
	assert_non_null(strstr(why, "protected allow entry"));
	/* another prefix inside it is an ordinary allow entry */
	r = req(KL_CTL_ALLOW_DEL, "198.18.0.0/25");
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
}

static void test_roles(void **state)
{
	(void)state;
	char why[256];
	struct kl_ctl_req bad = req(KL_CTL_STATS, NULL);
	bad.cmd = KL_CTL_CMD_MAX;
	assert_int_equal(enforcer_check(&pol, KL_ROLE_CTL, &bad, why, sizeof(why)), KL_ERR_REFUSED);
	/* daemons use their own message types, never CONTROL */
	enum kl_role others[] = { KL_ROLE_NONE, KL_ROLE_ENFORCER, KL_ROLE_SENSOR, KL_ROLE_DECIDER,
				  KL_ROLE_GRAPHD };
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct kl_ctl_req r = req(KL_CTL_STATS, NULL);
		assert_int_equal(enforcer_check(&pol, others[i], &r, why, sizeof(why)), KL_ERR_REFUSED);
		assert_non_null(strstr(why, "may not send stats"));
	}
}

static void test_cmd_classes(void **state)
{
	(void)state;
	assert_true(kl_ctl_cmd_kind(KL_CTL_DENY_ADD) == KL_CTL_K_RESTRICT);
	assert_true(kl_ctl_cmd_kind(KL_CTL_RL_SET_IP) == KL_CTL_K_RESTRICT);
	assert_true(kl_ctl_cmd_kind(KL_CTL_EDGE_ADD_DENY) == KL_CTL_K_RESTRICT);
	assert_false(kl_ctl_cmd_kind(KL_CTL_EDGE_ADD_ALLOW) == KL_CTL_K_RESTRICT);
	assert_false(kl_ctl_cmd_kind(KL_CTL_ALLOW_ADD) == KL_CTL_K_RESTRICT);
	assert_false(kl_ctl_cmd_kind(KL_CTL_STATUS) != KL_CTL_K_READ);
	assert_false(kl_ctl_cmd_kind(KL_CTL_DENY_LIST) != KL_CTL_K_READ);
	assert_true(kl_ctl_cmd_kind(KL_CTL_RESET) != KL_CTL_K_READ);
	assert_true(kl_ctl_cmd_kind(KL_CTL_SAMPLING) != KL_CTL_K_READ);
	assert_true(kl_ctl_cmd_kind(KL_CTL_ATTACH) != KL_CTL_K_READ);
	assert_int_equal(enf_protected_hit(&pol, &prot[2]), 2);
	struct kl_addr out = cidr("203.0.113.1");
	assert_int_equal(enf_protected_hit(&pol, &out), -1);
}

static void test_no_protect_list(void **state)
{
	(void)state;
	char why[256];
	struct enf_policy empty = { NULL, 0, NULL, 0 };
	struct kl_ctl_req r = req(KL_CTL_DENY_ADD, "0.0.0.0/0");
	assert_int_equal(enforcer_check(&empty, KL_ROLE_CTL, &r, why, sizeof(why)), KL_OK);
}

/* The anti-lockout default: the host's own
 * addresses from an interface list (a fake getifaddrs result: v4, v6,
 * loopback, an address without sockaddr, a packet-family entry, a
 * duplicate), and the lookup the links make with them. */
static void test_self_addresses(void **state)
{
	(void)state;
	struct sockaddr_in v4a = { .sin_family = AF_INET }, v4lo = { .sin_family = AF_INET };
	struct sockaddr_in6 v6a = { .sin6_family = AF_INET6 }, v6lo = { .sin6_family = AF_INET6 };
	struct sockaddr pkt = { .sa_family = AF_PACKET };
	inet_pton(AF_INET, "198.18.0.2", &v4a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &v4lo.sin_addr);
	inet_pton(AF_INET6, "fd00:6b6c::2", &v6a.sin6_addr);
	inet_pton(AF_INET6, "::1", &v6lo.sin6_addr);
	struct ifaddrs l[7];
	memset(l, 0, sizeof(l));
	l[0].ifa_addr = (struct sockaddr *)&pkt;
	l[1].ifa_addr = (struct sockaddr *)&v4lo;
	l[2].ifa_addr = (struct sockaddr *)&v4a;
	l[3].ifa_addr = NULL;
	l[4].ifa_addr = (struct sockaddr *)&v6a;
	l[5].ifa_addr = (struct sockaddr *)&v6lo;
	l[6].ifa_addr = (struct sockaddr *)&v4a; /* the same address on another interface */
	for (int i = 0; i < 6; i++)
		l[i].ifa_next = &l[i + 1];

	struct kl_addr self[8];
	assert_int_equal(enf_self_from_ifaddrs(l, self, 8), 4);
	assert_int_equal(self[0].family, 4);
	assert_int_equal(self[0].prefixlen, 32);
	assert_int_equal(self[1].family, 4);
	static const uint8_t want[4] = { 198, 18, 0, 2 };
	assert_memory_equal(self[1].addr, want, 4);
	assert_int_equal(self[2].family, 6);
	assert_int_equal(self[2].prefixlen, 128);
	/* truncated: counts what it saw, keeps what fits */
	struct kl_addr two[2];
	assert_int_equal(enf_self_from_ifaddrs(l, two, 2), 4);

	struct enf_policy p = { NULL, 0, self, 4 };
	struct kl_addr a = cidr("198.18.0.2");
	assert_int_equal(enf_self_hit(&p, &a), 1);
	a = cidr("fd00:6b6c::2");
	assert_int_equal(enf_self_hit(&p, &a), 2);
	a = cidr("198.18.0.0/24"); /* a prefix that holds an own address */
	assert_int_equal(enf_self_hit(&p, &a), 1);
	a = cidr("198.18.0.1");
	assert_int_equal(enf_self_hit(&p, &a), -1);
	a = cidr("fd00:6b6c::1");
	assert_int_equal(enf_self_hit(&p, &a), -1);
	struct enf_policy none = { NULL, 0, NULL, 0 };
	a = cidr("198.18.0.2");
	assert_int_equal(enf_self_hit(&none, &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_refused),  cmocka_unit_test(test_overlap_refused),
		cmocka_unit_test(test_outside_allowed), cmocka_unit_test(test_allow_del_protected),
		cmocka_unit_test(test_roles),           cmocka_unit_test(test_cmd_classes),
		cmocka_unit_test(test_no_protect_list), cmocka_unit_test(test_self_addresses),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
