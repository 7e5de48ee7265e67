// SPDX-License-Identifier: MPL-2.0
/* Live-frames traffic generator: BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES runs this on a veth and every XDP_TX leaves
 * through the veth towards the program under test on its peer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int kl_livegen(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";

/* The same, with a new source on every frame: a spoofed flood. The source
 * steps through 198.18.0.0/15 with a large odd stride (every address once per
 * 2^17 frames). Live frames may come back recycled with this program's
 * earlier write, so the address is set from a counter, never incremented,
 * and the IPv4 header checksum is fixed up (RFC 1624) for the stack. */
__u32 kl_spoof_seq;

SEC("xdp")
int kl_livegen_spoof(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u16 *w, *ck;
	__u32 n, a, sum;

	if (data + 34 > end)
		return XDP_ABORTED;
	n = kl_spoof_seq++;
	a = 0xc6120000u | ((n * 0x0d2e5u) & 0x1ffffu);
	w = (__u16 *)(data + 26); /* source address, two words */
	ck = (__u16 *)(data + 24);
	sum = (__u16)~*ck;
	sum += (__u16)~w[0] + (__u16)~w[1];
	w[0] = __builtin_bswap16((__u16)(a >> 16));
	w[1] = __builtin_bswap16((__u16)a);
	sum += w[0] + w[1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*ck = (__u16)~sum;
	return XDP_TX;
}
