/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Packet builders for BPF_PROG_TEST_RUN fixtures, benchmarks and packet
 * generators: Ethernet, up to two VLAN tags, IPv4 (options, fragments),
 * IPv6 (extension headers, fragment header), TCP/UDP/ICMP/ICMPv6.
 *
 * Header-only (static functions) so a test, a bench and a generator can each
 * include it without a library. Checksums are filled in (IPv4 header and
 * L4) so the frames are also valid when they reach a real stack.
 *
 *	struct pkt_spec s = pkt_tcp4("198.18.0.7", 443, PKT_SYN);
 *	uint8_t buf[PKT_MAX];
 *	size_t len = pkt_build(buf, sizeof(buf), &s);
 */
#ifndef KL_TESTS_PKT_H
#define KL_TESTS_PKT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#define PKT_MAX 1600

#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10

#define PKT_TPID_8021Q  0x8100
#define PKT_TPID_8021AD 0x88A8

/* IPv6 extension header kinds for pkt_spec.ext[] (their next-header value). */
#define PKT_EXT_HOP   0
#define PKT_EXT_ROUTE 43
#define PKT_EXT_FRAG  44
#define PKT_EXT_AH    51
#define PKT_EXT_DEST  60

struct pkt_spec {
	int family;          /* 4 or 6 */
	uint8_t src[16];     /* network order; IPv4 uses the first 4 bytes */
	uint8_t dst[16];
	uint8_t proto;       /* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6, or any */
	uint16_t sport, dport;
	uint8_t tcp_flags;
	int nvlan;           /* 0..2 */
	uint16_t vlan_tpid[2];
	uint16_t vlan_id[2];
	int ip4_opt_len;     /* bytes of IPv4 options (multiple of 4, <= 40) */
	uint16_t frag_off;   /* fragment offset in 8-byte units (v4, or v6 frag ext) */
	int more_frags;      /* MF flag (v4, or v6 frag ext) */
	int next_ext;        /* number of v6 extension headers in ext[] */
	uint8_t ext[8];      /* PKT_EXT_* in order */
	int ext_len8;        /* extra 8-byte units in each hop/route/dest option */
	int payload;         /* payload bytes after the L4 header */
};

static inline void pkt_addr(struct pkt_spec *s, int family, const char *src, const char *dst)
{
	s->family = family;
	memset(s->src, 0, sizeof(s->src));
	memset(s->dst, 0, sizeof(s->dst));
	inet_pton(family == 4 ? AF_INET : AF_INET6, src, s->src);
	inet_pton(family == 4 ? AF_INET : AF_INET6, dst, s->dst);
}

static inline struct pkt_spec pkt_l4(int family, const char *src, uint8_t proto, uint16_t dport,
				     uint8_t flags)
{
	struct pkt_spec s;

	memset(&s, 0, sizeof(s));
	pkt_addr(&s, family, src, family == 4 ? "198.18.0.1" : "fd00:6b6c::1");
	s.proto = proto;
	s.sport = 40000;
	s.dport = dport;
	s.tcp_flags = flags;
	s.payload = 6;
	return s;
}

static inline struct pkt_spec pkt_tcp4(const char *src, uint16_t dport, uint8_t flags)
{
	return pkt_l4(4, src, IPPROTO_TCP, dport, flags);
}
static inline struct pkt_spec pkt_udp4(const char *src, uint16_t dport)
{
	return pkt_l4(4, src, IPPROTO_UDP, dport, 0);
}
static inline struct pkt_spec pkt_tcp6(const char *src, uint16_t dport, uint8_t flags)
{
	return pkt_l4(6, src, IPPROTO_TCP, dport, flags);
}
static inline struct pkt_spec pkt_udp6(const char *src, uint16_t dport)
{
	return pkt_l4(6, src, IPPROTO_UDP, dport, 0);
}

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t pkt_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static inline uint16_t pkt_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline size_t pkt_l4_hdr_len(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP: return 20;
	case IPPROTO_UDP: return 8;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: return 8;
	default: return 0;
	}
}

/* Build the frame; returns its length, or 0 if it does not fit in cap. */
static inline size_t pkt_build(uint8_t *buf, size_t cap, const struct pkt_spec *s)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t smac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	int first_frag = s->frag_off == 0;
	size_t l4len = (first_frag ? pkt_l4_hdr_len(s->proto) : 0) + (size_t)s->payload;
	size_t ext_total = 0, off = 0, ip_off, l4_off, iphl = 0;
	uint8_t last_nh;

	if (s->family == 6)
		for (int i = 0; i < s->next_ext; i++)
			ext_total += s->ext[i] == PKT_EXT_FRAG || s->ext[i] == PKT_EXT_AH ?
					     (s->ext[i] == PKT_EXT_AH ? 16 : 8) :
					     8 + 8 * (size_t)s->ext_len8;
	else
		iphl = 20 + (size_t)s->ip4_opt_len;
	if (14 + 4 * (size_t)s->nvlan + (s->family == 6 ? 40 + ext_total : iphl) + l4len > cap)
		return 0;
	memset(buf, 0, cap);
	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	off = 12;
	for (int i = 0; i < s->nvlan; i++) {
		pkt_put16(buf + off, s->vlan_tpid[i]);
		pkt_put16(buf + off + 2, s->vlan_id[i] & 0x0fff);
		off += 4;
	}
	pkt_put16(buf + off, s->family == 6 ? 0x86DD : 0x0800);
	off += 2;
	ip_off = off;

	if (s->family == 4) {
		uint8_t *ip = buf + ip_off;
		uint16_t fo = (uint16_t)((s->frag_off & 0x1fff) | (s->more_frags ? 0x2000 : 0));

		ip[0] = (uint8_t)(0x40 | (iphl / 4));
		pkt_put16(ip + 2, (uint16_t)(iphl + l4len));
		pkt_put16(ip + 4, 0x1234);
		pkt_put16(ip + 6, fo);
		ip[8] = 64;
		ip[9] = s->proto;
		memcpy(ip + 12, s->src, 4);
		memcpy(ip + 16, s->dst, 4);
		for (int i = 0; i < s->ip4_opt_len; i++)
			ip[20 + i] = 1; /* NOP options */
		pkt_put16(ip + 10, pkt_csum_fold(pkt_csum_add(0, ip, iphl)));
		l4_off = ip_off + iphl;
		last_nh = s->proto;
	} else {
		uint8_t *ip6 = buf + ip_off;
		size_t cur = ip_off + 40;
		uint8_t *prev_nh = ip6 + 6;

		ip6[0] = 0x60;
		pkt_put16(ip6 + 4, (uint16_t)(ext_total + l4len));
		ip6[7] = 64;
		memcpy(ip6 + 8, s->src, 16);
		memcpy(ip6 + 24, s->dst, 16);
		for (int i = 0; i < s->next_ext; i++) {
			uint8_t *x = buf + cur;

			*prev_nh = s->ext[i];
			prev_nh = x;
			if (s->ext[i] == PKT_EXT_FRAG) {
				pkt_put16(x + 2, (uint16_t)((s->frag_off << 3) | (s->more_frags ? 1 : 0)));
				x[7] = 0x42;
				cur += 8;
			} else if (s->ext[i] == PKT_EXT_AH) {
				x[1] = 2; /* (2 + 2) * 4 = 16 bytes */
				cur += 16;
			} else {
				x[1] = (uint8_t)s->ext_len8;
				/* PadN option filling the header after its 2 bytes. */
				x[2] = 1;
				x[3] = (uint8_t)(8 * s->ext_len8 + 4);
				cur += 8 + 8 * (size_t)s->ext_len8;
			}
		}
		*prev_nh = s->proto;
		l4_off = cur;
		last_nh = s->proto;
	}

	if (first_frag) {
		uint8_t *l4 = buf + l4_off;
		uint32_t sum = 0;

		switch (s->proto) {
		case IPPROTO_TCP:
			pkt_put16(l4, s->sport);
			pkt_put16(l4 + 2, s->dport);
			l4[4] = 0x11; /* seq */
			l4[12] = 5 << 4;
			l4[13] = s->tcp_flags;
			pkt_put16(l4 + 14, 65535);
			break;
		case IPPROTO_UDP:
			pkt_put16(l4, s->sport);
			pkt_put16(l4 + 2, s->dport);
			pkt_put16(l4 + 4, (uint16_t)l4len);
			break;
		case IPPROTO_ICMP:
			l4[0] = 8; /* echo request */
			break;
		case IPPROTO_ICMPV6:
			l4[0] = 128; /* echo request */
			break;
		default:
			break;
		}
		/* Checksums only for unfragmented packets: a fragment's L4
		 * checksum covers bytes we do not build. */
		if (!s->more_frags) {
			size_t csum_at = s->proto == IPPROTO_TCP ? 16 :
					 s->proto == IPPROTO_UDP ? 6 : 2;

			if (s->proto != IPPROTO_ICMP && pkt_l4_hdr_len(s->proto)) {
				/* pseudo-header */
				size_t alen = s->family == 4 ? 4 : 16;

				sum = pkt_csum_add(sum, s->src, alen);
				sum = pkt_csum_add(sum, s->dst, alen);
				sum += last_nh;
				sum += (uint32_t)l4len;
			}
			if (pkt_l4_hdr_len(s->proto)) {
				uint16_t c = pkt_csum_fold(pkt_csum_add(sum, l4, l4len));

				if (s->proto == IPPROTO_UDP && c == 0)
					c = 0xffff;
				pkt_put16(l4 + csum_at, c);
			}
		}
	}
	return l4_off + l4len;
}

/* Offset of the source address in a frame built by pkt_build. */
static inline size_t pkt_src_off(const struct pkt_spec *s)
{
	return 14 + 4 * (size_t)s->nvlan + (s->family == 4 ? 12 : 8);
}

#endif /* KL_TESTS_PKT_H */
