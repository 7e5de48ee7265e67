// SPDX-License-Identifier: MPL-2.0
/* Floor for the veth benchmark: the parsing every packet needs, one per-CPU
 * counter so the receiver can count, and a fixed verdict. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 verdict = XDP_PASS;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rx_count SEC(".maps");

SEC("xdp")
int kl_veth_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 k = 0;
	__u64 *c;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return XDP_PASS;
		struct udphdr *u = (void *)ip + ip->ihl * 4;
		if ((void *)(u + 1) > end)
			return XDP_PASS;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
	} else {
		return XDP_PASS;
	}
	c = bpf_map_lookup_elem(&rx_count, &k);
	if (c)
		*c += 1;
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
