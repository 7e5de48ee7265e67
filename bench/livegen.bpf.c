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
