/* SPDX-License-Identifier: MPL-2.0 */
/* Strict IPv4/IPv6 address and CIDR parsing and formatting. */
#ifndef KL_ADDR_H
#define KL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address or a prefix. For IPv4 only addr[0..3] is used (network order);
 * prefixlen is 32/128 for a single host. Host bits are always zero. */
struct kl_addr {
	uint8_t family;    /* 4 or 6 */
	uint8_t prefixlen; /* 0..32 or 0..128 */
	uint8_t addr[16];
};

/* Longest text kl_addr_format() produces, with the NUL. */
#define KL_ADDR_STRLEN 64

/* Parse one host address ("198.18.0.1", "fd00:6b6c::1"). Rejects prefixes,
 * shorthand IPv4 ("1.2.3"), leading zeros, whitespace and trailing junk.
 * Returns 0, or -1 with a reason in err (if err is not NULL). */
int kl_addr_parse(const char *s, struct kl_addr *out, char *err, size_t errlen);

/* Parse an address or a CIDR ("198.18.0.0/15", "fd00:6b6c::/48", or a bare
 * address meaning /32 or /128). Rejects bad prefix lengths ("/33", "/129",
 * "/", "/08") and junk; zeroes host bits. Returns 0 or -1 with err set. */
int kl_cidr_parse(const char *s, struct kl_addr *out, char *err, size_t errlen);

/* "1.2.3.4", "1.2.3.0/24", "fd00::1", "fd00::/48": the prefix is printed
 * only when it is shorter than the host length. Returns buf. */
const char *kl_addr_format(const struct kl_addr *a, char *buf, size_t len);

/* Full host length of the family (32 or 128). */
static inline unsigned kl_addr_hostlen(const struct kl_addr *a)
{
	return a->family == 4 ? 32u : 128u;
}

static inline bool kl_addr_is_host(const struct kl_addr *a)
{
	return a->prefixlen == kl_addr_hostlen(a);
}

/* True when `inner` (address or prefix) lies inside prefix `outer`. */
bool kl_cidr_contains(const struct kl_addr *outer, const struct kl_addr *inner);

/* True when the two prefixes share any address. */
bool kl_cidr_overlaps(const struct kl_addr *a, const struct kl_addr *b);

/* Zero the bits after prefixlen. */
void kl_addr_mask(struct kl_addr *a);

/* An IP protocol by name ("tcp", "udp", "icmp", "icmpv6") or number
 * ("0".."255", no leading zeros): 0..255, or -1. */
int kl_proto_parse(const char *s);

#endif
