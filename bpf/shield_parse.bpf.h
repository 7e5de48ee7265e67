/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Packet parsing shared by the shield (bpf/shield.bpf.c) and the benchmark's
 * floor program (bench/floor.bpf.c), so the floor parses exactly what the
 * shield parses. BPF side only.
 *
 * Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 (options; a
 * non-first fragment carries no L4), IPv6 (at most V6_EXT_MAX extension
 * headers: hop-by-hop, routing, destination options, fragment, AH; a
 * non-first fragment carries no L4), then TCP/UDP (destination port, TCP
 * flags) and ICMP/ICMPv6. Anything truncated or inconsistent is
 * P_MALFORMED.
 */
#ifndef KL_SHIELD_PARSE_BPF_H
#define KL_SHIELD_PARSE_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpf/shield.h"

#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define V6_EXT_MAX 6

enum { P_OK = 0, P_NON_IP, P_MALFORMED };

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct parsed {
	__u8 family;    /* 4 or 6 */
	__u8 proto;     /* L4 protocol (the last next-header seen) */
	__u8 l4;        /* proto is final: not a non-first fragment */
	__u8 ports;     /* TCP or UDP: dport is valid */
	__u8 tcp_flags;
	__u8 frag;      /* any fragment */
	__u16 dport;    /* host order */
	__u32 src4;
	struct kl_in6 src6;
	/* Not parsed: the source's keyed hash, set once by the shield when it
	 * looks the source up, so its flow's bucket costs no second hash. */
	__u64 src_hash;
};

static __always_inline int parse_l4(void *l4, void *end, __u8 proto, struct parsed *p)
{
	p->proto = proto;
	p->l4 = 1;
	if (proto == IPPROTO_TCP) {
		__u8 *t = l4;

		if (l4 + 20 > end)
			return P_MALFORMED;
		if ((t[12] >> 4) < 5) /* data offset */
			return P_MALFORMED;
		p->dport = ((__u16)t[2] << 8) | t[3];
		p->tcp_flags = t[13];
		p->ports = 1;
	} else if (proto == IPPROTO_UDP) {
		__u8 *u = l4;

		if (l4 + 8 > end)
			return P_MALFORMED;
		p->dport = ((__u16)u[2] << 8) | u[3];
		p->ports = 1;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		if (l4 + 8 > end)
			return P_MALFORMED;
	}
	return P_OK;
}

static __always_inline int parse_ip4(void *cur, void *end, struct parsed *p)
{
	struct iphdr *ip = cur;
	__u32 hlen, tot;
	__u16 fo;

	if ((void *)(ip + 1) > end)
		return P_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return P_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || cur + tot > end)
		return P_MALFORMED;
	if (cur + hlen > end)
		return P_MALFORMED;
	p->family = 4;
	p->src4 = ip->saddr;
	p->proto = ip->protocol;
	fo = bpf_ntohs(ip->frag_off);
	if (fo & (IP_MF | IP_OFFMASK)) {
		p->frag = 1;
		if (fo & IP_OFFMASK)
			return P_OK;
	}
	return parse_l4(cur + hlen, end, ip->protocol, p);
}

static __always_inline int parse_ip6(void *cur, void *end, struct parsed *p)
{
	struct ipv6hdr *ip6 = cur;
	__u8 nh;

	if ((void *)(ip6 + 1) > end)
		return P_MALFORMED;
	if (ip6->version != 6)
		return P_MALFORMED;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
		return P_MALFORMED;
	p->family = 6;
	__builtin_memcpy(p->src6.addr, &ip6->saddr, 16);
	nh = ip6->nexthdr;
	cur = ip6 + 1;

#pragma unroll
	for (int i = 0; i < V6_EXT_MAX; i++) {
		__u8 *x = cur;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
			return parse_l4(cur, end, nh, p);
		/* Every extension header is at least 8 bytes. */
		if (cur + 8 > end)
			return P_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			p->frag = 1;
			nh = x[0];
			/* Offset is the upper 13 bits of bytes 2-3. */
			if ((((__u16)x[2] << 8) | x[3]) & 0xfff8) {
				p->proto = nh;
				return P_OK;
			}
			cur += 8;
		} else if (nh == IPPROTO_AH) {
			nh = x[0];
			cur += ((__u32)x[1] + 2) * 4;
		} else {
			nh = x[0];
			cur += ((__u32)x[1] + 1) * 8;
		}
	}
	if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
	    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
		return parse_l4(cur, end, nh, p);
	/* Chain longer than we walk: an IP packet with an unknown L4. */
	p->proto = nh;
	return P_OK;
}

static __always_inline int parse(struct xdp_md *ctx, struct parsed *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__be16 type;

	if ((void *)(eth + 1) > end)
		return P_MALFORMED;
	type = eth->h_proto;
	cur = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *vt = cur;

		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vt + 1) > end)
			return P_MALFORMED;
		type = vt->proto;
		cur = vt + 1;
	}
	if (type == bpf_htons(ETH_P_IP))
		return parse_ip4(cur, end, p);
	if (type == bpf_htons(ETH_P_IPV6))
		return parse_ip6(cur, end, p);
	return P_NON_IP;
}

#endif /* KL_SHIELD_PARSE_BPF_H */
