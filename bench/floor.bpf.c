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
 *
 * kl_floor_line / kl_floor_line16: the floor plus the one memory access no
 * per-source table can avoid: one 64-byte line per source, read from an
 * array by the source's hash, for the 2^17 sources in turn. kl_floor_line
 * reads line 0 of a 256-byte record of 2^18 (64 MiB: the shield's slot
 * table at that size, the same pages and lines), kl_floor_line16 one line of
 * 2^18 packed 64-byte records (16 MiB: the smallest table that holds a
 * source's address and counters in one line at two records per source).
 * bench_cold holds 1 line unless the bench sizes it (2^20 lines) before load.
 * kl_floor_sweep reads the first bench_sweep_mask + 1 lines only, to show
 * how that one access grows with the table's footprint.
 */
#include "bpf/shield_parse.bpf.h"

char LICENSE[] SEC("license") = "Dual MPL/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_jmp SEC(".maps");

struct bench_line {
	__u64 w[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_line);
} bench_cold SEC(".maps");

/* Parse and fold every parsed field into one word the result depends on. */
static __always_inline __u32 floor_parse(struct xdp_md *ctx, struct parsed *p, int *r)
{
	__u32 h;

	*r = parse(ctx, p);
	h = p->family ^ p->src4 ^ p->dport ^ ((__u32)p->proto << 16) ^ ((__u32)p->tcp_flags << 24) ^
	    p->frag ^ p->l4 ^ p->ports;
	for (int i = 0; i < 16; i += 4)
		h ^= *(__u32 *)&p->src6.addr[i];
	return h;
}

SEC("xdp")
int kl_floor(struct xdp_md *ctx)
{
	struct parsed p = {};
	int r;
	__u32 h = floor_parse(ctx, &p, &r);

	if (r == P_OK && h == ctx->ingress_ifindex + 0x6b6c6b6cu)
		return XDP_DROP;
	return XDP_PASS;
}

/* The floor plus one line of bench_cold per source: record (hash & mask)
 * of 2^shift lines, its first line. */
static __always_inline int floor_line(struct xdp_md *ctx, __u32 mask, __u32 shift)
{
	const __u64 seed[2] = { 0x6b6c, 0x6c6b };
	struct bench_line *l;
	struct parsed p = {};
	int r;
	__u32 h = floor_parse(ctx, &p, &r), k;

	k = ((__u32)(kl_src_hash4(p.src4, seed) >> 32) & mask) << shift;
	l = bpf_map_lookup_elem(&bench_cold, &k);
	if (l)
		h ^= (__u32)l->w[0];
	if (r == P_OK && h == ctx->ingress_ifindex + 0x6b6c6b6cu)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int kl_floor_line(struct xdp_md *ctx)
{
	return floor_line(ctx, (1u << 18) - 1, 2);
}

SEC("xdp")
int kl_floor_line16(struct xdp_md *ctx)
{
	return floor_line(ctx, (1u << 18) - 1, 0);
}

/* bench_xdp --cold-sweep: the same over the first bench_sweep_mask + 1 lines. */
volatile __u32 bench_sweep_mask = 0;

SEC("xdp")
int kl_floor_sweep(struct xdp_md *ctx)
{
	return floor_line(ctx, bench_sweep_mask, 0);
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
