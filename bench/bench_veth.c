/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Real XDP on a veth pair: packets per second the shield drops for a denied
 * source and passes for a known one, next to a floor program attached the
 * same way, all in one run, and the same for a spoofed flood (a new source
 * on every frame, kl_livegen_spoof) with and without the aggregate
 * new-source limit. Frames come from a live-frames generator
 * (BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES returning XDP_TX on the
 * generator's veth), the only sender that can saturate XDP here.
 *
 * usage: bench_veth GEN_NETNS GEN_IF RX_NETNS RX_IF SHIELD_OBJ [FRAMES]
 * (FRAMES per run: default 4000000 with live frames, 400000 with AF_PACKET)
 * (bench/run.sh creates the namespaces and removes them afterwards)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/shield.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#include "livegen.skel.h"
#include "veth_floor.skel.h"
#include "shield.skel.h"
#pragma GCC diagnostic pop

#define RUNS 5

static int ns_gen = -1, ns_rx = -1;
static int use_packet; /* live frames refused: AF_PACKET sender */
static int spoof_gen_fd = -1;
static int if_gen, if_rx;
static unsigned char rx_mac[6];

static void die(const char *what)
{
	fprintf(stderr, "bench_veth: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void enter(int ns)
{
	if (setns(ns, CLONE_NEWNET) < 0)
		die("setns");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_src(unsigned char *p, __u32 a)
{
	unsigned char *ip = p + 14;
	unsigned sum = 0;

	ip[12] = (unsigned char)(a >> 24), ip[13] = (unsigned char)(a >> 16);
	ip[14] = (unsigned char)(a >> 8), ip[15] = (unsigned char)a;
	ip[10] = ip[11] = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (unsigned)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	ip[10] = (unsigned char)(sum >> 8), ip[11] = (unsigned char)sum;
}

/* 60-byte IPv4/UDP frame from src (last octet varies) to 198.18.0.2:9. */
static size_t build_frame(unsigned char *p, unsigned src_last)
{
	memset(p, 0, 60);
	memcpy(p, rx_mac, 6);
	memcpy(p + 6, "\x02\x00\x00\x00\x00\x01", 6);
	p[12] = 0x08;
	unsigned char *ip = p + 14;
	ip[0] = 0x45;
	ip[3] = 46; /* total length 46 */
	ip[8] = 64;
	ip[9] = 17;
	ip[12] = 198, ip[13] = 18, ip[14] = 0, ip[15] = (unsigned char)src_last;
	ip[16] = 198, ip[17] = 18, ip[18] = 0, ip[19] = 2;
	set_src(p, 0xc6120000u | (src_last & 0xff));
	unsigned char *udp = ip + 20;
	udp[0] = 0x9c, udp[1] = 0x40; /* 40000 */
	udp[3] = 9;
	udp[5] = 26;
	return 60;
}

static int attach_rx(int prog_fd)
{
	enter(ns_rx);
	int err = bpf_xdp_attach(if_rx, prog_fd, XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		errno = -err;
		die("attach to rx veth (driver mode)");
	}
	return 0;
}

static void detach_rx(void)
{
	enter(ns_rx);
	bpf_xdp_detach(if_rx, XDP_FLAGS_DRV_MODE, NULL);
}

#define PKT_BATCH 256
#define PKT_FRAMES_DEFAULT 400000

/* The AF_PACKET sender: `frames` copies of the frame, or with `spoof` a
 * new source per frame stepping through 198.18.0.0/15 like
 * kl_livegen_spoof. Returns the wall time. */
static double packet_send(unsigned src_last, int spoof, unsigned frames)
{
	static unsigned char pk[PKT_BATCH][64];
	static __u32 seq;
	struct mmsghdr mm[PKT_BATCH];
	struct iovec iov[PKT_BATCH];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				   .sll_ifindex = if_gen, .sll_halen = 6 };
	int one = 1, s;
	size_t len = 0;

	enter(ns_gen);
	s = socket(AF_PACKET, SOCK_RAW, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("AF_PACKET socket on the generator veth");
	if (setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		die("PACKET_QDISC_BYPASS");
	memcpy(sll.sll_addr, rx_mac, 6);
	for (int i = 0; i < PKT_BATCH; i++) {
		len = build_frame(pk[i], src_last);
		iov[i] = (struct iovec){ .iov_base = pk[i], .iov_len = len };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll, .msg_namelen = sizeof(sll),
						       .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	double t0 = now_s();
	for (unsigned sent = 0; sent < frames;) {
		unsigned n = frames - sent < PKT_BATCH ? frames - sent : PKT_BATCH;
		int r;

		if (spoof)
			for (unsigned i = 0; i < n; i++, seq++)
				set_src(pk[i], 0xc6120000u | ((seq * 0x0d2e5u) & 0x1ffffu));
		r = sendmmsg(s, mm, n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			die("sendmmsg");
		}
		sent += (unsigned)r;
	}
	double t = now_s() - t0;
	close(s);
	usleep(100000);
	return t;
}

/* Does this kernel run live frames? One frame to the receiver's floor. */
static int live_frames_ok(int gen_fd)
{
	unsigned char pkt[64];
	size_t len = build_frame(pkt, 1);
	struct xdp_md ctx = { .data_end = (__u32)len, .ingress_ifindex = (__u32)if_gen };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	enter(ns_gen);
	if (bpf_prog_test_run_opts(gen_fd, &o) == 0)
		return 1;
	if (errno != EPERM)
		die("live-frames test run");
	return 0;
}

/* Sends `frames` frames and returns the wall time the generator took. */
static double generate(int gen_fd, unsigned src_last, unsigned frames)
{
	unsigned char pkt[64];
	size_t len = build_frame(pkt, src_last);
	struct xdp_md ctx = { .data_end = (__u32)len, .ingress_ifindex = (__u32)if_gen };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = frames,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	if (use_packet)
		return packet_send(src_last, gen_fd == spoof_gen_fd, frames);
	enter(ns_gen);
	double t0 = now_s();
	if (bpf_prog_test_run_opts(gen_fd, &o) < 0)
		die("live-frames test run");
	double t = now_s() - t0;
	usleep(100000); /* let the peer's NAPI drain its ring */
	return t;
}

static unsigned long long percpu_sum(int map_fd, size_t value_words, size_t word)
{
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long *v = calloc((size_t)ncpu * value_words, 8), s = 0;
	__u32 k = 0;
	if (!v || bpf_map_lookup_elem(map_fd, &k, v) < 0)
		die("read counter");
	for (int c = 0; c < ncpu; c++)
		s += v[(size_t)c * value_words + word];
	free(v);
	return s;
}

static void totals(int map_fd, uint64_t out[KL_T_MAX])
{
	for (size_t i = 0; i < KL_T_MAX; i++)
		out[i] = percpu_sum(map_fd, KL_T_MAX, i);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A receiver: its program and the per-CPU counter word that counts the
 * frames it handled. */
struct side {
	int prog_fd, count_fd;
	size_t words, word;
};

/* Frames per second one receiver handled in one generator run. */
static double rate(int gen_fd, unsigned src_last, unsigned frames, const struct side *x)
{
	attach_rx(x->prog_fd);
	unsigned long long c0 = percpu_sum(x->count_fd, x->words, x->word);
	double t = generate(gen_fd, src_last, frames);
	unsigned long long c1 = percpu_sum(x->count_fd, x->words, x->word);
	detach_rx();
	return (double)(c1 - c0) / t;
}

/* Medians over RUNS runs of the floor and the shield, alternating run by
 * run, so that load from elsewhere on the host and state the stack keeps
 * between runs (neighbour entries, ICMP rate limits) hit both alike. */
static void measure(int gen_fd, unsigned src_last, unsigned frames, const struct side *fl,
		    const struct side *sh, double *f_pps, double *s_pps)
{
	double rf[RUNS], rs[RUNS];

	for (int i = 0; i < RUNS; i++) {
		rf[i] = rate(gen_fd, src_last, frames, fl);
		rs[i] = rate(gen_fd, src_last, frames, sh);
	}
	qsort(rf, RUNS, sizeof(rf[0]), cmp_d);
	qsort(rs, RUNS, sizeof(rs[0]), cmp_d);
	*f_pps = rf[RUNS / 2];
	*s_pps = rs[RUNS / 2];
}

static struct veth_floor *floor_prog(__u32 verdict)
{
	struct veth_floor *f = veth_floor__open();
	if (!f)
		die("open floor");
	f->rodata->verdict = verdict;
	if (veth_floor__load(f))
		die("load floor");
	return f;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s GEN_NETNS GEN_IF RX_NETNS RX_IF SHIELD_OBJ [FRAMES]\n", argv[0]);
		return 2;
	}
	unsigned frames = argc > 6 ? (unsigned)strtoul(argv[6], NULL, 10) : 4000000;
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", argv[1]);
	if ((ns_gen = open(path, O_RDONLY)) < 0)
		die(path);
	snprintf(path, sizeof(path), "/run/netns/%s", argv[3]);
	if ((ns_rx = open(path, O_RDONLY)) < 0)
		die(path);
	enter(ns_gen);
	if (!(if_gen = (int)if_nametoindex(argv[2])))
		die(argv[2]);
	enter(ns_rx);
	if (!(if_rx = (int)if_nametoindex(argv[4])))
		die(argv[4]);
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[4]);
	if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memcpy(rx_mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);

	struct livegen *gen = livegen__open_and_load();
	if (!gen)
		die("load generator");
	int gen_fd = bpf_program__fd(gen->progs.kl_livegen);
	spoof_gen_fd = bpf_program__fd(gen->progs.kl_livegen_spoof);

	/* Floor, pass and drop. */
	struct veth_floor *fp = floor_prog(XDP_PASS), *fd = floor_prog(XDP_DROP);
	attach_rx(bpf_program__fd(fp->progs.kl_veth_floor));
	use_packet = !live_frames_ok(gen_fd);
	detach_rx();
	if (use_packet) {
		/* ~0.3-0.5 Mpps: keep a run near a second. */
		if (argc <= 6 && frames > PKT_FRAMES_DEFAULT)
			frames = PKT_FRAMES_DEFAULT;
		fprintf(stderr, "bench_veth: live frames refused (EPERM) on this kernel: "
				"AF_PACKET sender, %u frames per run\n", frames);
	}

	/* The shield (iq-learning), no pins: a private instance. */
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct shield *sh = shield__open_opts(&oo);
	if (!sh)
		die("open shield");
	struct bpf_map *m;
	bpf_object__for_each_map(m, sh->obj)
		bpf_map__set_pin_path(m, NULL);
	if (shield__load(sh))
		die("load shield");
	__u32 denied = 0, k0 = 0;
	memcpy(&denied, (unsigned char[]){ 198, 18, 0, 66 }, 4);
	struct kl_rule rule = { .origin = KL_ORIGIN_OPERATOR };
	if (bpf_map__update_elem(sh->maps.kernloom_deny4_hash, &denied, 4, &rule, sizeof(rule), BPF_ANY))
		die("deny entry");
	struct kl_cfg cfg = { .policy_gen = 1, .ephemeral_min = KL_EPHEMERAL_MIN_DEFAULT };
	if (bpf_map__update_elem(sh->maps.kernloom_cfg, &k0, 4, &cfg, sizeof(cfg), BPF_ANY))
		die("cfg");
	int tot = bpf_map__fd(sh->maps.kernloom_totals), sh_fd = bpf_program__fd(sh->progs.kl_shield);
	struct side floor_p = { bpf_program__fd(fp->progs.kl_veth_floor), bpf_map__fd(fp->maps.rx_count), 1, 0 };
	struct side floor_d = { bpf_program__fd(fd->progs.kl_veth_floor), bpf_map__fd(fd->maps.rx_count), 1, 0 };
	struct side sh_pass = { sh_fd, tot, KL_T_MAX, KL_T_PASS };
	struct side sh_deny = { sh_fd, tot, KL_T_MAX, KL_T_DROP_DENY };
	struct side sh_rl = { sh_fd, tot, KL_T_MAX, KL_T_DROP_RL };
	double floor_pass, shield_pass, floor_drop, shield_drop;
	measure(gen_fd, 1, frames, &floor_p, &sh_pass, &floor_pass, &shield_pass);
	measure(gen_fd, 66, frames, &floor_d, &sh_deny, &floor_drop, &shield_drop);

	/* Spoofed flood: a new source on every frame, first with no limit
	 * (passed to the stack, like the floor's pass), then with the
	 * decider's aggregate new-source limit at rate 0 (dropped). */
	int spoof_fd = spoof_gen_fd;
	uint64_t t0[KL_T_MAX], t1[KL_T_MAX];
	double floor_spoof_pass, shield_spoof_pass, floor_spoof_drop, shield_spoof_drop;
	totals(tot, t0);
	measure(spoof_fd, 0, frames, &floor_p, &sh_pass, &floor_spoof_pass, &shield_spoof_pass);
	cfg.new_rate_pps = 0;
	cfg.new_burst = 1;
	if (bpf_map__update_elem(sh->maps.kernloom_cfg, &k0, 4, &cfg, sizeof(cfg), BPF_ANY))
		die("cfg");
	measure(spoof_fd, 0, frames, &floor_d, &sh_rl, &floor_spoof_drop, &shield_spoof_drop);
	totals(tot, t1);

	printf("Generator: %s.\n\n", use_packet ? "AF_PACKET sendmmsg (256 per call, qdisc bypass, one thread; "
						  "live frames refused by this kernel)" :
						  "live frames (BPF_PROG_TEST_RUN, XDP_TX on the generator veth)");
	printf("| veth, native XDP, %u frames x %d runs (median) | floor Mpps | shield Mpps | shield / floor |\n", frames, RUNS);
	printf("|---|---|---|---|\n");
	printf("| known source, XDP_PASS | %.2f | %.2f | %.2f |\n", floor_pass / 1e6, shield_pass / 1e6, shield_pass / floor_pass);
	printf("| denied source, XDP_DROP | %.2f | %.2f | %.2f |\n", floor_drop / 1e6, shield_drop / 1e6, shield_drop / floor_drop);
	printf("| spoofed flood (new source per frame), no limit, XDP_PASS | %.2f | %.2f | %.2f |\n",
	       floor_spoof_pass / 1e6, shield_spoof_pass / 1e6, shield_spoof_pass / floor_spoof_pass);
	printf("| spoofed flood, aggregate new-source limit, XDP_DROP | %.2f | %.2f | %.2f |\n",
	       floor_spoof_drop / 1e6, shield_spoof_drop / 1e6, shield_spoof_drop / floor_spoof_drop);
	printf("\nSpoofed-flood frames at the shield: %llu from sources not admitted (first sightings), "
	       "%llu admitted (claimed a slot), %llu dropped by the aggregate limit.\n",
	       (unsigned long long)(t1[KL_T_SRC_UNADMITTED] - t0[KL_T_SRC_UNADMITTED]),
	       (unsigned long long)(t1[KL_T_SRC_NEW] - t0[KL_T_SRC_NEW]),
	       (unsigned long long)(t1[KL_T_DROP_NEWSRC] - t0[KL_T_DROP_NEWSRC]));
	shield__destroy(sh);
	veth_floor__destroy(fp);
	veth_floor__destroy(fd);
	livegen__destroy(gen);
	return 0;
}
