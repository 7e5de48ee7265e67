/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The enforcer's policy: which role may ask for which command, and the
 * anti-lockout rule (nothing inside a protected CIDR may be denied or
 * rate-limited). Pure functions over plain structs.
 */
#ifndef KL_ENFORCER_POLICY_H
#define KL_ENFORCER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "ipc/msg.h"

struct enf_policy {
	const struct kl_addr *protect; /* the configured protected CIDRs */
	size_t n_protect;
	/* This host's own interface addresses (host prefixes), kept current
	 * by the enforcer: never a decider's or graphd's target, whatever
	 * the protect list says. */
	const struct kl_addr *self;
	size_t n_self;
};

/* Index of the host's own address that `a` is or contains, or -1. */
int enf_self_hit(const struct enf_policy *p, const struct kl_addr *a);

/* The host addresses of an interface address list (getifaddrs(3)): every
 * AF_INET and AF_INET6 address, loopback included, as /32 or /128, without
 * duplicates, at most max. Returns how many (more than max: truncated). */
struct ifaddrs;
size_t enf_self_from_ifaddrs(const struct ifaddrs *list, struct kl_addr *out, size_t max);

/* Index of the first protected CIDR that `a` lies in or overlaps, or -1. */
int enf_protected_hit(const struct enf_policy *p, const struct kl_addr *a);

/* Decide whether a decoded request may be applied. Returns KL_OK, or
 * KL_ERR_REFUSED with a one-line reason for the operator in why
 * ("refused: 198.18.0.1 is inside protected 198.18.0.0/24"). */
int enforcer_check(const struct enf_policy *p, enum kl_role role, const struct kl_ctl_req *r,
		   char *why, size_t whylen);

/* ---- the links: decider and graphd ---- */

/* Which message types a peer role may send to the enforcer: the decider
 * DECISIONS, RELEASE, ENFORCED_Q; graphd EDGE_RULES, ENFORCED_Q; klctl
 * CONTROL. HELLO is the channel's business and not listed. This must agree
 * with kl_msg_allowed(role, KL_ROLE_ENFORCER, type) (a unit test checks). */
bool enf_msg_role_may(enum kl_role role, unsigned type);

/* Why a host can never be a decider's or graphd's target (unspecified,
 * loopback, multicast, limited broadcast), or NULL when it can. Denying
 * 0.0.0.0 would, for one, drop every DHCP discover. */
const char *enf_target_invalid(const struct kl_addr *a);

/* Per-role write quota: a token bucket of `rate` new or changed entries
 * per second holding at most one second's worth, plus a cap on how many
 * entries of the role's origin may exist at all. */
struct enf_quota {
	uint32_t rate;
	uint32_t max;
	double tokens;
	uint64_t last_ns; /* 0: not started (full bucket on first use) */
};
void enf_quota_init(struct enf_quota *q, uint32_t rate, uint32_t max);
/* Refill for the time since the last call, then take one token if there
 * is one. */
bool enf_quota_take(struct enf_quota *q, uint64_t now_ns);

#endif
