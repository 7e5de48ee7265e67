/* SPDX-License-Identifier: MPL-2.0 */
/* Role table and anti-lockout checks for control requests. */
#include "enforcer/policy.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Which role may send which CONTROL command: only klctl (the operator).
 * The decider and graphd talk to the enforcer with their own message types
 * (DECISIONS, EDGE_RULES), never CONTROL. */
static bool role_may(enum kl_role role, unsigned cmd)
{
	if (cmd == 0 || cmd >= KL_CTL_CMD_MAX)
		return false;
	switch (role) {
	case KL_ROLE_CTL:
		return true;
	default:
		return false;
	}
}

static bool same_prefix(const struct kl_addr *a, const struct kl_addr *b)
{
	return a->family == b->family && a->prefixlen == b->prefixlen &&
	       memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

int enf_self_hit(const struct enf_policy *p, const struct kl_addr *a)
{
	for (size_t i = 0; i < p->n_self; i++)
		if (p->self[i].family == a->family && kl_cidr_overlaps(a, &p->self[i]))
			return (int)i;
	return -1;
}

size_t enf_self_from_ifaddrs(const struct ifaddrs *list, struct kl_addr *out, size_t max)
{
	size_t n = 0, seen = 0;
	for (const struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
		struct kl_addr a;
		memset(&a, 0, sizeof(a));
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)i->ifa_addr;
			a.family = 4;
			a.prefixlen = 32;
			memcpy(a.addr, &s->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s =
				(const struct sockaddr_in6 *)(const void *)i->ifa_addr;
			a.family = 6;
			a.prefixlen = 128;
			memcpy(a.addr, &s->sin6_addr, 16);
		} else {
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = out[j].family == a.family && memcmp(out[j].addr, a.addr, 16) == 0;
		if (dup)
			continue;
		if (n < max)
			out[n++] = a;
		seen++;
	}
	return seen;
}

int enf_protected_hit(const struct enf_policy *p, const struct kl_addr *a)
{
	for (size_t i = 0; i < p->n_protect; i++)
		if (p->protect[i].family == a->family && kl_cidr_overlaps(&p->protect[i], a))
			return (int)i;
	return -1;
}

int enforcer_check(const struct enf_policy *p, enum kl_role role, const struct kl_ctl_req *r,
		   char *why, size_t whylen)
{
	char a[KL_ADDR_STRLEN], b[KL_ADDR_STRLEN];

	if (!role_may(role, r->cmd)) {
		snprintf(why, whylen, "refused: role %s may not send %s", kl_role_name(role),
			 kl_ctl_cmd_name(r->cmd));
		return KL_ERR_REFUSED;
	}
	/* Only an operator may make an enforcement entry that never lapses, so
	 * a dead decider or graphd cannot leave permanent blocks behind. */
	if (role != KL_ROLE_CTL && kl_ctl_cmd_kind(r->cmd) == KL_CTL_K_RESTRICT && r->ttl_ms == 0) {
		snprintf(why, whylen, "refused: only the operator may add a permanent %s",
			 kl_ctl_cmd_name(r->cmd));
		return KL_ERR_REFUSED;
	}
	if (kl_ctl_cmd_kind(r->cmd) == KL_CTL_K_RESTRICT) {
		int i = enf_protected_hit(p, &r->addr);
		if (i >= 0) {
			const struct kl_addr *pr = &p->protect[i];
			kl_addr_format(&r->addr, a, sizeof(a));
			kl_addr_format(pr, b, sizeof(b));
			if (kl_cidr_contains(pr, &r->addr))
				snprintf(why, whylen, "refused: %s is inside protected %s", a, b);
			else
				snprintf(why, whylen, "refused: %s overlaps protected %s", a, b);
			return KL_ERR_REFUSED;
		}
	}
	if (r->cmd == KL_CTL_ALLOW_DEL) {
		for (size_t i = 0; i < p->n_protect; i++)
			if (same_prefix(&p->protect[i], &r->addr)) {
				snprintf(why, whylen,
					 "refused: %s is a protected allow entry (remove it from the "
					 "protect list and restart kl-enforcer)",
					 kl_addr_format(&r->addr, a, sizeof(a)));
				return KL_ERR_REFUSED;
			}
	}
	if (why && whylen)
		why[0] = '\0';
	return KL_OK;
}

bool enf_msg_role_may(enum kl_role role, unsigned type)
{
	switch (role) {
	case KL_ROLE_DECIDER:
		return type == KL_MSG_DECISIONS || type == KL_MSG_RELEASE ||
		       type == KL_MSG_ENFORCED_Q || type == KL_MSG_NEWSRC_LIMIT;
	case KL_ROLE_GRAPHD:
		return type == KL_MSG_EDGE_RULES || type == KL_MSG_ENFORCED_Q;
	case KL_ROLE_CTL:
		return type == KL_MSG_CONTROL;
	default:
		return false;
	}
}

const char *enf_target_invalid(const struct kl_addr *a)
{
	static const uint8_t zero[16];
	const uint8_t *b = a->addr;

	if (a->family == 4) {
		if (memcmp(b, zero, 4) == 0)
			return "the unspecified address";
		if (b[0] == 127)
			return "a loopback address";
		if (b[0] >= 224 && b[0] <= 239)
			return "a multicast address";
		if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
			return "the broadcast address";
		return NULL;
	}
	if (a->family != 6)
		return "not an IPv4 or IPv6 address";
	if (memcmp(b, zero, 16) == 0)
		return "the unspecified address";
	if (memcmp(b, zero, 15) == 0 && b[15] == 1)
		return "the loopback address";
	if (b[0] == 0xff)
		return "a multicast address";
	return NULL;
}

void enf_quota_init(struct enf_quota *q, uint32_t rate, uint32_t max)
{
	memset(q, 0, sizeof(*q));
	q->rate = rate;
	q->max = max;
}

bool enf_quota_take(struct enf_quota *q, uint64_t now_ns)
{
	if (q->last_ns == 0) {
		q->tokens = q->rate;
		q->last_ns = now_ns;
	} else if (now_ns > q->last_ns) {
		double add = (double)(now_ns - q->last_ns) * 1e-9 * q->rate;
		q->tokens = q->tokens + add > q->rate ? q->rate : q->tokens + add;
		q->last_ns = now_ns;
	}
	if (q->tokens < 1.0)
		return false;
	q->tokens -= 1.0;
	return true;
}
