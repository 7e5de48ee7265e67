// SPDX-License-Identifier: MPL-2.0
/*
 * Benchmark baselines for the shield.
 *
 * kl_floor: the shield's parser (bpf/shield_parse.bpf.h) and nothing else,
 * no maps. Its result is compared with a value only known at run time
 * (the ingress ifindex), so the compiler cannot drop the parse (a constant
 * it could prove impossible once let clang fold this floor to "return").
 *
 * kl_bump_src: a new source on every packet under BPF_PROG_TEST_RUN's
 * repeat. Test runs reuse one buffer across repetitions, so this program
 * increments the IPv4 source address in place (untagged frames, staying
 * inside 198.18.0.0/15) and tail-calls slot 0 of bench_jmp (the shield, or
 * the floor for the matching baseline).
 *
 * kl_many_src: the same, but the source steps through the 2^17 addresses
 * of 198.18.0.0/15 with a large odd stride (a permutation: every address
 * once per 2^17 packets, far apart in turn), so once all are known each
 * packet is a known source whose entry is most likely not in any cache.
 */
#include "bpf/shield_parse.bpf.h"

char LICENSE[] SEC("license") = "Dual MPL/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_jmp SEC(".maps");

SEC("xdp")
int kl_floor(struct xdp_md *ctx)
{
	struct parsed p = {};
	__u32 h;
	int r;

	r = parse(ctx, &p);
	h = p.family ^ p.src4 ^ p.dport ^ ((__u32)p.proto << 16) ^ ((__u32)p.tcp_flags << 24) ^ p.frag ^
	    p.l4 ^ p.ports;
	for (int i = 0; i < 16; i += 4)
		h ^= *(__u32 *)&p.src6.addr[i];
	if (r == P_OK && h == ctx->ingress_ifindex + 0x6b6c6b6cu)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int kl_bump_src(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > end)
		return XDP_ABORTED;
	/* 198.18.0.0/15: the low 17 bits count. */
	ip->saddr = bpf_htonl(0xc6120000u | ((bpf_ntohl(ip->saddr) + 1) & 0x1ffffu));
	bpf_tail_call(ctx, &bench_jmp, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int kl_many_src(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > end)
		return XDP_ABORTED;
	ip->saddr = bpf_htonl(0xc6120000u | ((bpf_ntohl(ip->saddr) + 0x0d2e5u) & 0x1ffffu));
	bpf_tail_call(ctx, &bench_jmp, 0);
	return XDP_ABORTED;
}
