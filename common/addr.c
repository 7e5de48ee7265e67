/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Strict address and CIDR parsing. IPv4 is parsed by hand so that every
 * rejection can say what is wrong; IPv6 goes through inet_pton(), which is
 * already strict (no whitespace, no junk, at most 4 hex digits per group).
 */
#include "common/addr.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest input we look at: an IPv6 text with embedded IPv4 and a prefix is
 * at most 45 + 4 characters; anything longer is junk, and the cap keeps the
 * copies below on the stack bounded. */
#define ADDR_MAX_INPUT 64

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Dotted quad, exactly four decimal parts 0..255 without leading zeros. */
static int parse_v4(const char *s, const char *input, uint8_t out[4],
		    char *err, size_t errlen)
{
	const char *p = s;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		int ndig = 0;
		const char *start = p;

		while (is_digit(*p)) {
			v = v * 10 + (unsigned)(*p - '0');
			ndig++;
			p++;
			if (ndig > 3)
				return kl_fail_in(err, errlen, "", input,
					    "IPv4 part %d has more than 3 digits", part + 1);
		}
		if (ndig == 0) {
			if (*p == '\0' || *p == '.')
				return kl_fail_in(err, errlen, "", input,
					    "IPv4 address needs 4 dot-separated numbers, part %d is missing",
					    part + 1);
			return kl_fail_in(err, errlen, "", input,
				    "unexpected character '%c' (0x%02x) in IPv4 address",
				    (*p >= 0x20 && *p < 0x7f) ? *p : '?',
				    (unsigned char)*p);
		}
		if (ndig > 1 && *start == '0')
			return kl_fail_in(err, errlen, "", input,
				    "IPv4 part %d has a leading zero", part + 1);
		if (v > 255)
			return kl_fail_in(err, errlen, "", input,
				    "IPv4 part %d is %u, above 255", part + 1, v);
		out[part] = (uint8_t)v;
		if (part < 3) {
			if (*p != '.') {
				if (*p == '\0')
					return kl_fail_in(err, errlen, "", input,
						    "IPv4 address needs 4 dot-separated numbers, got %d",
						    part + 1);
				return kl_fail_in(err, errlen, "", input,
					    "unexpected character '%c' (0x%02x) in IPv4 address",
					    (*p >= 0x20 && *p < 0x7f) ? *p : '?',
					    (unsigned char)*p);
			}
			p++;
		}
	}
	if (*p == '%')
		return kl_fail_in(err, errlen, "", input, "a zone index is not allowed on IPv4");
	if (*p == '.')
		return kl_fail_in(err, errlen, "", input,
			    "IPv4 address has more than 4 dot-separated numbers");
	if (*p != '\0')
		return kl_fail_in(err, errlen, "", input,
			    "trailing character '%c' (0x%02x) after IPv4 address",
			    (*p >= 0x20 && *p < 0x7f) ? *p : '?', (unsigned char)*p);
	return 0;
}

/* Parse the address part of s (already cut at '/', copied to buf).
 * `input` is the caller's whole string, for the messages. */
static int parse_host(const char *buf, const char *input, struct kl_addr *out,
		      char *err, size_t errlen)
{
	struct kl_addr a;
	const char *p;

	memset(&a, 0, sizeof(a));
	if (buf[0] == '\0')
		return kl_fail_in(err, errlen, "", input, "empty address");
	for (p = buf; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
		    *p == '\v' || *p == '\f')
			return kl_fail_in(err, errlen, "", input, "whitespace is not allowed");
	}
	if (strchr(buf, ':') != NULL) {
		if (strchr(buf, '%') != NULL)
			return kl_fail_in(err, errlen, "", input,
				    "a zone index (%%) is not supported");
		if (inet_pton(AF_INET6, buf, a.addr) != 1)
			return kl_fail_in(err, errlen, "", input, "not a valid IPv6 address");
		a.family = 6;
		a.prefixlen = 128;
	} else {
		if (parse_v4(buf, input, a.addr, err, errlen) < 0)
			return -1;
		a.family = 4;
		a.prefixlen = 32;
	}
	*out = a;
	return 0;
}

/* Copies s into buf (size ADDR_MAX_INPUT+1) after the common checks. */
static int prepare(const char *s, char *buf, char *err, size_t errlen)
{
	size_t n;

	if (s == NULL)
		return kl_fail_in(err, errlen, "", NULL, "no address given");
	n = strlen(s);
	if (n == 0)
		return kl_fail_in(err, errlen, "", NULL, "empty address");
	if (n > ADDR_MAX_INPUT)
		return kl_fail_in(err, errlen, "", s, "too long for an address (%zu characters)", n);
	memcpy(buf, s, n + 1);
	return 0;
}

int kl_addr_parse(const char *s, struct kl_addr *out, char *err, size_t errlen)
{
	char buf[ADDR_MAX_INPUT + 1];

	if (prepare(s, buf, err, errlen) < 0)
		return -1;
	if (strchr(buf, '/') != NULL)
		return kl_fail_in(err, errlen, "", s, "a prefix length is not allowed here (want a single address)");
	return parse_host(buf, s, out, err, errlen);
}

int kl_cidr_parse(const char *s, struct kl_addr *out, char *err, size_t errlen)
{
	char buf[ADDR_MAX_INPUT + 1];
	struct kl_addr a;
	char *slash;
	const char *p;
	unsigned plen = 0;
	unsigned max;

	if (prepare(s, buf, err, errlen) < 0)
		return -1;
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (parse_host(buf, s, &a, err, errlen) < 0)
		return -1;
	if (slash == NULL) {
		*out = a;
		return 0;
	}
	max = kl_addr_hostlen(&a);
	p = slash + 1;
	if (*p == '\0')
		return kl_fail_in(err, errlen, "", s, "missing prefix length after '/'");
	for (const char *q = p; *q != '\0'; q++) {
		if (!is_digit(*q))
			return kl_fail_in(err, errlen, "", s,
				    "prefix length must be decimal digits");
	}
	if (p[0] == '0' && p[1] != '\0')
		return kl_fail_in(err, errlen, "", s, "prefix length has a leading zero");
	if (strlen(p) > 3)
		return kl_fail_in(err, errlen, "", s, "prefix length %s out of range 0..%u", p, max);
	for (; *p != '\0'; p++)
		plen = plen * 10 + (unsigned)(*p - '0');
	if (plen > max)
		return kl_fail_in(err, errlen, "", s, "prefix length %u out of range 0..%u", plen, max);
	a.prefixlen = (uint8_t)plen;
	kl_addr_mask(&a);
	*out = a;
	return 0;
}

const char *kl_addr_format(const struct kl_addr *a, char *buf, size_t len)
{
	char txt[INET6_ADDRSTRLEN];

	if (buf == NULL || len == 0)
		return buf;
	if (a == NULL || (a->family != 4 && a->family != 6) ||
	    a->prefixlen > kl_addr_hostlen(a)) {
		snprintf(buf, len, "invalid");
		return buf;
	}
	if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, txt,
		      sizeof(txt)) == NULL) {
		snprintf(buf, len, "invalid");
		return buf;
	}
	if (kl_addr_is_host(a))
		snprintf(buf, len, "%s", txt);
	else
		snprintf(buf, len, "%s/%u", txt, a->prefixlen);
	return buf;
}

/* True when the first `bits` bits of x and y are equal. */
static bool prefix_equal(const uint8_t *x, const uint8_t *y, unsigned bits)
{
	unsigned full = bits / 8;
	unsigned rest = bits % 8;

	if (memcmp(x, y, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t m = (uint8_t)(0xffu << (8 - rest));
	return (x[full] & m) == (y[full] & m);
}

static bool valid(const struct kl_addr *a)
{
	return (a->family == 4 || a->family == 6) &&
	       a->prefixlen <= kl_addr_hostlen(a);
}

bool kl_cidr_contains(const struct kl_addr *outer, const struct kl_addr *inner)
{
	if (!valid(outer) || !valid(inner) || outer->family != inner->family)
		return false;
	if (outer->prefixlen > inner->prefixlen)
		return false;
	return prefix_equal(outer->addr, inner->addr, outer->prefixlen);
}

bool kl_cidr_overlaps(const struct kl_addr *a, const struct kl_addr *b)
{
	if (!valid(a) || !valid(b) || a->family != b->family)
		return false;
	/* Two prefixes overlap exactly when the shorter contains the longer. */
	unsigned bits = a->prefixlen < b->prefixlen ? a->prefixlen : b->prefixlen;
	return prefix_equal(a->addr, b->addr, bits);
}

void kl_addr_mask(struct kl_addr *a)
{
	unsigned host = a->family == 4 ? 32u : 128u;
	unsigned plen = a->prefixlen > host ? host : a->prefixlen;
	unsigned i;

	for (i = 0; i < 16; i++) {
		unsigned lo = i * 8;
		if (lo >= host || lo >= plen) {
			a->addr[i] = 0;
		} else if (plen - lo < 8) {
			a->addr[i] &= (uint8_t)(0xffu << (8 - (plen - lo)));
		}
	}
}

int kl_proto_parse(const char *s)
{
	static const struct {
		const char *name;
		int proto;
	} names[] = { { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 } };
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].proto;
	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v > 255)
		return -1;
	return (int)v;
}
