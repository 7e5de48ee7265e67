/* SPDX-License-Identifier: MPL-2.0 */
/*
 * bench_xdp: ns/packet of the XDP shield under BPF_PROG_TEST_RUN, for each
 * feature profile and scenario, next to the parse-only floor timed in the
 * same run (alternating floor and shield runs, medians over --runs runs of
 * --repeat packets). Prints a markdown table on stdout.
 *
 *   bench_xdp [--repeat N] [--runs N] [--cpu N] [--cold-sweep]
 *
 * Scenarios:
 *   known v4 / known v6  one source, cached verdict, passing
 *   rate-limited         per-source override 1 pps, burst 1: dropping
 *   denied               exact deny entry: dropping
 *   new source           source address + 1 on every packet (kl_bump_src
 *                        tail-calls the shield, or the floor for the
 *                        baseline), cycling through 198.18.0.0/15 with
 *                        the source slots sized 64k: a spoofed flood. Most
 *                        packets are first sightings the admission filter
 *                        does not admit (the split is printed below the
 *                        table); the rest claim slots, robbing
 *   ..., aggregate limit the same with the decider's new-source limit at
 *                        rate 0: every packet of a source without a slot
 *                        dropped
 *   ..., admission off   the same with kl_cfg.admit_off: every packet claims
 *                        a slot, robbing (what the admission filter saves;
 *                        iq-learning only)
 *   2^17 sources         known sources, one per packet in a scrambled order
 *                        (kl_many_src), in a table sized for them (2^18
 *                        slots / LRU entries), after a warm-up round:
 *                        every lookup a likely cache miss (iq-learning only)
 * Below the table, the 2^17-sources row against floors that also read one
 * 64-byte line per source (the cost no per-source table avoids), and with
 * --cold-sweep (instead of the table) that one read's cost by footprint.
 * graph-enforce runs with tuple enforcement in allow mode, the known
 * sources' tuples allowed (so a new source is dropped by the edge check).
 * light and iq-learning load the same program (no optional feature).
 *
 * Needs root; exits 77 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/shield.h"
#include "floor.skel.h"
#include "shield.skel.h"
#include "tests/bpf/pkt.h"

struct profile {
	const char *name;
	int flow, edge;
	__u32 edge_mode;
};

static const struct profile profiles[] = {
	{ "light", 0, 0, KL_EDGE_OFF },
	{ "iq-learning", 0, 0, KL_EDGE_OFF },
	{ "graph-learning", 1, 0, KL_EDGE_OFF },
	{ "graph-enforce", 1, 1, KL_EDGE_ALLOW },
};

enum scen { S_KNOWN4, S_KNOWN6, S_RL, S_DENY, S_NEW, S_NEW_LIM, S_NEW_CLAIM, S_MANY, S_MAX };

static const char *scen_name[S_MAX] = {
	"known source v4, pass", "known source v6, pass", "rate-limited source, drop",
	"denied source, drop", "new source every packet",
	"new source every packet, aggregate new-source limit",
	"new source every packet, admission filter off (each claims a slot)",
	"2^17 known sources in turn",
};

#define SRC_KNOWN4 "198.18.100.1"
#define SRC_KNOWN6 "fd00:6b6c:100::1"
#define SRC_RL     "198.18.100.2"
#define SRC_DENY   "198.18.100.3"
#define SRC_NEW0   "198.18.0.1"

static int quiet_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static __u64 now_boot(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_xdp: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static __u32 median(__u32 *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u32);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct frame_buf {
	uint8_t b[PKT_MAX];
	size_t len;
};

static __u32 run(int prog, const struct frame_buf *f, __u32 repeat, __u32 *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->b, .data_size_in = (__u32)f->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &o))
		die("BPF_PROG_TEST_RUN");
	if (retval)
		*retval = o.retval;
	return o.duration;
}

static struct frame_buf frame(const struct pkt_spec *s)
{
	struct frame_buf f;

	f.len = pkt_build(f.b, sizeof(f.b), s);
	if (!f.len) {
		fprintf(stderr, "bench_xdp: packet does not fit\n");
		exit(1);
	}
	return f;
}

static void put(struct bpf_map *m, const void *k, const void *v)
{
	if (bpf_map_update_elem(bpf_map__fd(m), k, v, BPF_ANY))
		die(bpf_map__name(m));
}

static struct shield *load_shield_n(const struct profile *p, __u32 nsrc)
{
	struct shield *s = shield__open();
	struct bpf_map *m;

	if (!s)
		die("shield__open");
	/* Default map sizes, no pinning; the source tables hold 2^16 slots,
	 * half of the new-source scenario's 2^17 addresses, so every new source
	 * misses and robs a slot (a flood into a full table). */
	bpf_object__for_each_map(m, s->obj)
		if (bpf_map__pin_path(m) && bpf_map__set_pin_path(m, NULL))
			die("bpf_map__set_pin_path");
	if (bpf_map__set_max_entries(s->maps.kernloom_src4_stats, nsrc) ||
	    bpf_map__set_max_entries(s->maps.kernloom_src6_stats, nsrc) ||
	    bpf_map__set_max_entries(s->maps.kl_src_tags4, nsrc / KL_SRC_WAYS) ||
	    bpf_map__set_max_entries(s->maps.kl_src_tags6, nsrc / KL_SRC_WAYS))
		die("bpf_map__set_max_entries");
	s->rodata->kl_feat_flow = (__u32)p->flow;
	s->rodata->kl_feat_edge = (__u32)p->edge;
#ifdef KL_SRC_WAYS /* source slots (built against the old LRU layout too) */
	s->rodata->kl_src4_mask = nsrc / KL_SRC_WAYS - 1;
	s->rodata->kl_src6_mask = nsrc / KL_SRC_WAYS - 1;
#endif
	if (shield__load(s))
		die("shield__load");
	return s;
}

static struct shield *load_shield(const struct profile *p)
{
	return load_shield_n(p, 65536);
}

static void configure(struct shield *s, const struct profile *p)
{
	struct kl_cfg c = { .ephemeral_min = KL_EPHEMERAL_MIN_DEFAULT, .edge_mode = p->edge_mode,
			    .policy_gen = 1 };
	struct kl_rule deny = { .origin = KL_ORIGIN_OPERATOR, .created_ns = now_boot() };
	struct kl_rl_rule rl = { .rate_pps = 1, .burst = 1, .origin = KL_ORIGIN_OPERATOR };
	struct kl_edge4_key e4 = { .port = 443, .proto = IPPROTO_TCP };
	struct kl_edge6_key e6 = { .port = 443, .proto = IPPROTO_TCP };
	__u32 a, zero = 0;

	inet_pton(AF_INET, SRC_DENY, &a);
	put(s->maps.kernloom_deny4_hash, &a, &deny);
	inet_pton(AF_INET, SRC_RL, &a);
	put(s->maps.kernloom_rl_policy4, &a, &rl);
	inet_pton(AF_INET, SRC_KNOWN4, &e4.src);
	put(s->maps.kernloom_edge4_allow, &e4, &deny);
	inet_pton(AF_INET6, SRC_KNOWN6, e6.src);
	put(s->maps.kernloom_edge6_allow, &e6, &deny);
	put(s->maps.kernloom_cfg, &zero, &c);
}

static void set_admit_off(struct shield *s, __u32 off)
{
	struct kl_cfg c;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, &c))
		die("kernloom_cfg");
	c.admit_off = off;
	put(s->maps.kernloom_cfg, &zero, &c);
}

static void set_new_limit(struct shield *s, __u64 rate, __u64 burst)
{
	struct kl_cfg c;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, &c))
		die("kernloom_cfg");
	c.new_rate_pps = rate;
	c.new_burst = burst;
	c.new_expires_ns = 0;
	put(s->maps.kernloom_cfg, &zero, &c);
}

static __u64 total_sum(struct shield *s, int idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kl_totals pc[ncpu];
	__u32 zero = 0;
	__u64 n = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_totals), &zero, pc))
		die("kernloom_totals");
	for (int i = 0; i < ncpu; i++)
		n += pc[i].v[idx];
	return n;
}

static __u64 src_new(struct shield *s)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kl_totals pc[ncpu];
	__u32 zero = 0;
	__u64 n = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_totals), &zero, pc))
		die("kernloom_totals");
	for (int i = 0; i < ncpu; i++)
		n += pc[i].v[KL_T_SRC_NEW];
	return n;
}

/* The parse-only floor and the floor plus one line per source over a growing
 * footprint, 2^17 sources in turn (kl_many_src tail-calls each). */
static void cold_sweep(struct floor *fl, struct frame_buf *f, __u32 repeat, __u32 runs)
{
	int jmp_fd = bpf_map__fd(fl->maps.bench_jmp), many_fd = bpf_program__fd(fl->progs.kl_many_src);
	int fd[2] = { bpf_program__fd(fl->progs.kl_floor), bpf_program__fd(fl->progs.kl_floor_sweep) };
	__u32 zero = 0, rv;

	printf("### One 64-byte line per source by table footprint (2^17 sources in turn, "
	       "median of %u runs x %u packets)\n\n", runs, repeat);
	printf("| footprint | lines | parse-only floor ns/pkt | floor + one line ns/pkt | ratio |\n");
	printf("|---:|---:|---:|---:|---:|\n");
	for (__u32 lg = 12; lg <= 20; lg++) {
		__u32 d[2][101];

		fl->bss->bench_sweep_mask = (1u << lg) - 1;
		for (__u32 i = 0; i < runs + 1; i++)
			for (int k = 0; k < 2; k++) {
				if (bpf_map_update_elem(jmp_fd, &zero, &fd[k], BPF_ANY))
					die("bench_jmp");
				/* Run 0 warms up (and faults nothing in: arrays are
				 * allocated at creation). */
				__u32 t = run(many_fd, f, i ? repeat : 1u << 18, &rv);

				if (i)
					d[k][i - 1] = t;
			}
		__u32 m0 = median(d[0], (int)runs), m1 = median(d[1], (int)runs);

		printf("| %u KiB | %u | %u | %u | %.2f |\n", (1u << lg) / 16, 1u << lg, m0, m1,
		       m0 ? (double)m1 / m0 : 0.0);
		fflush(stdout);
	}
}

static const char *verdict(__u32 r)
{
	return r == XDP_PASS ? "pass" : r == XDP_DROP ? "drop" : "other";
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "cold-sweep", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	__u32 repeat = 200000, runs = 7;
	int cpu = 0, sweep = 0, opt, floor_fd, bump_fd, jmp_fd;
	struct frame_buf fr[S_MAX];
	struct pkt_spec sp;
	struct floor *fl;
	struct utsname un;
	cpu_set_t set;
	__u64 t0 = now_boot();

	while ((opt = getopt_long(argc, argv, "r:n:c:sh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'r': repeat = (__u32)strtoul(optarg, NULL, 10); break;
		case 'n': runs = (__u32)strtoul(optarg, NULL, 10); break;
		case 'c': cpu = atoi(optarg); break;
		case 's': sweep = 1; break;
		default:
			fprintf(stderr, "usage: bench_xdp [--repeat N] [--runs N] [--cpu N] [--cold-sweep]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (repeat < 1 || runs < 1 || runs > 101) {
		fprintf(stderr, "bench_xdp: --repeat >= 1, --runs 1..101\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_xdp: needs root (BPF_PROG_TEST_RUN), skipping\n");
		return 77;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	libbpf_set_print(quiet_print);

	sp = pkt_tcp4(SRC_KNOWN4, 443, PKT_ACK);
	fr[S_KNOWN4] = frame(&sp);
	sp = pkt_tcp6(SRC_KNOWN6, 443, PKT_ACK);
	fr[S_KNOWN6] = frame(&sp);
	sp = pkt_udp4(SRC_RL, 53);
	fr[S_RL] = frame(&sp);
	sp = pkt_tcp4(SRC_DENY, 443, PKT_SYN);
	fr[S_DENY] = frame(&sp);
	sp = pkt_tcp4(SRC_NEW0, 443, PKT_SYN);
	fr[S_NEW] = frame(&sp);
	fr[S_NEW_LIM] = fr[S_NEW_CLAIM] = fr[S_NEW];
	sp = pkt_tcp4(SRC_NEW0, 443, PKT_ACK);
	fr[S_MANY] = frame(&sp);

	fl = floor__open();
	if (!fl)
		die("floor__open");
	/* 64 MiB of 64-byte lines: the reference floors' per-source memory. */
	if (bpf_map__set_max_entries(fl->maps.bench_cold, 1u << 20))
		die("bpf_map__set_max_entries");
	if (floor__load(fl))
		die("floor__load");
	int line_fd[2] = { bpf_program__fd(fl->progs.kl_floor_line),
			   bpf_program__fd(fl->progs.kl_floor_line16) };
	/* floor, floor + a line at 256- and at 64-byte stride, shield */
	__u32 many_ns[4] = { 0 };
	floor_fd = bpf_program__fd(fl->progs.kl_floor);
	bump_fd = bpf_program__fd(fl->progs.kl_bump_src);
	int many_fd = bpf_program__fd(fl->progs.kl_many_src);
	__u32 many_held = 0, many_slots = 0;

	if (sweep) {
		cold_sweep(fl, &fr[S_MANY], repeat, runs);
		floor__destroy(fl);
		return 0;
	}
	__u64 split[sizeof(profiles) / sizeof(profiles[0])][2] = { { 0 } };
	jmp_fd = bpf_map__fd(fl->maps.bench_jmp);

	uname(&un);
	printf("### XDP shield, BPF_PROG_TEST_RUN (kernel %s, CPU %d, median of %u runs x %u packets)\n\n",
	       un.release, cpu, runs, repeat);
	printf("| profile | scenario | verdict | shield ns/pkt | floor ns/pkt | ratio |\n");
	printf("|---|---|---|---:|---:|---:|\n");

	for (size_t pi = 0; pi < sizeof(profiles) / sizeof(profiles[0]); pi++) {
		const struct profile *p = &profiles[pi];
		struct shield *s = load_shield(p);
		int shield_fd = bpf_program__fd(s->progs.kl_shield);

		configure(s, p);
		for (int sc = 0; sc < S_MAX; sc++) {
			__u32 ds[101], df[101], dl[2][101], rv = 0, rvf = 0, zero = 0, ms, mf;
			__u64 new0 = src_new(s) + total_sum(s, KL_T_SRC_UNADMITTED);
			int sp_fd = shield_fd, fp_fd = floor_fd;
			bool newsrc = sc == S_NEW || sc == S_NEW_LIM || sc == S_NEW_CLAIM;
			bool tail = newsrc || sc == S_MANY;
			__u64 claims0 = src_new(s), unadm0 = total_sum(s, KL_T_SRC_UNADMITTED);

			if (sc == S_NEW_CLAIM && pi != 1)
				continue;
			if (sc == S_NEW_LIM)
				set_new_limit(s, 0, 1);
			if (sc == S_NEW_CLAIM)
				set_admit_off(s, 1);
			if (sc == S_MANY) {
				if (pi != 1)
					continue;
				/* Its own shield, with room for all 2^17 sources. */
				shield__destroy(s);
				s = load_shield_n(p, 1u << 18);
				shield_fd = bpf_program__fd(s->progs.kl_shield);
				configure(s, p);
				new0 = src_new(s) + total_sum(s, KL_T_SRC_UNADMITTED);
			}
			if (newsrc)
				sp_fd = fp_fd = bump_fd;
			if (sc == S_MANY)
				sp_fd = fp_fd = many_fd;
			/* Warm up: cache the verdict, spend the RL burst; every
			 * one of the 2^17 sources claims its entry. */
			if (tail && bpf_map_update_elem(jmp_fd, &zero, &shield_fd, BPF_ANY))
				die("bench_jmp");
			/* The 2^17 sources become known in one round each (a
			 * real source is admitted by its second packet; here a
			 * source's packets are 2^17 packets apart). */
			if (sc == S_MANY)
				set_admit_off(s, 1);
			run(sp_fd, &fr[sc], sc == S_MANY ? 2u << 17 : 1000, &rv);
			if (sc == S_MANY)
				set_admit_off(s, 0);
			for (__u32 i = 0; i < runs; i++) {
				if (tail && bpf_map_update_elem(jmp_fd, &zero, &floor_fd, BPF_ANY))
					die("bench_jmp");
				df[i] = run(fp_fd, &fr[sc], repeat, &rvf);
				if (tail && bpf_map_update_elem(jmp_fd, &zero, &shield_fd, BPF_ANY))
					die("bench_jmp");
				ds[i] = run(sp_fd, &fr[sc], repeat, &rv);
				for (int l = 0; sc == S_MANY && l < 2; l++) {
					if (bpf_map_update_elem(jmp_fd, &zero, &line_fd[l], BPF_ANY))
						die("bench_jmp");
					dl[l][i] = run(fp_fd, &fr[sc], repeat, &rvf);
				}
			}
			if (rvf != XDP_PASS) {
				fprintf(stderr, "bench_xdp: floor returned %u\n", rvf);
				return 1;
			}
			/* The new-source scenario must really create sources. */
			if (newsrc && src_new(s) + total_sum(s, KL_T_SRC_UNADMITTED) - new0 <
						   (__u64)runs * repeat / 2) {
				fprintf(stderr, "bench_xdp: only %llu new sources\n",
					(unsigned long long)(src_new(s) + total_sum(s, KL_T_SRC_UNADMITTED) - new0));
				return 1;
			}
			if (sc == S_NEW_LIM)
				set_new_limit(s, 0, 0);
			if (sc == S_NEW_CLAIM)
				set_admit_off(s, 0);
			if (sc == S_NEW) {
				split[pi][0] = total_sum(s, KL_T_SRC_UNADMITTED) - unadm0;
				split[pi][1] = src_new(s) - claims0;
			}
			ms = median(ds, (int)runs);
			mf = median(df, (int)runs);
			if (sc == S_MANY) {
				many_ns[0] = mf;
				many_ns[1] = median(dl[0], (int)runs);
				many_ns[2] = median(dl[1], (int)runs);
				many_ns[3] = ms;
			}
			printf("| %s | %s%s | %s | %u | %u | %.2f |\n", p->name, scen_name[sc],
			       tail ? " (both via tail call)" : "", verdict(rv), ms, mf,
			       mf ? (double)ms / mf : 0.0);
#ifdef KL_SRC_WAYS
			if (sc == S_MANY) {
				/* How many of the 2^17 hold a slot (4-way buckets at 2x
				 * overflow a few percent; those go without telemetry). */
				__u32 held = 0, n = bpf_map__max_entries(s->maps.kernloom_src4_stats);
				struct kl_src_slot v;
				for (__u32 k = 0; k < n; k++)
					if (bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_src4_stats), &k,
								&v) == 0 &&
					    v.family == 4)
						held++;
				many_held = held;
				many_slots = n;
			}
#endif
			fflush(stdout);
		}
		shield__destroy(s);
	}
	floor__destroy(fl);
	printf("\nNew source every packet, admission: not admitted (first sightings, judged and "
	       "counted in aggregate) / admitted (claimed a slot):");
	for (size_t pi = 0; pi < sizeof(profiles) / sizeof(profiles[0]); pi++)
		printf(" %s %llu / %llu (%.1f%% admitted)%s", profiles[pi].name,
		       (unsigned long long)split[pi][0], (unsigned long long)split[pi][1],
		       split[pi][0] + split[pi][1] ?
			       100.0 * (double)split[pi][1] / (double)(split[pi][0] + split[pi][1]) : 0.0,
		       pi + 1 < sizeof(profiles) / sizeof(profiles[0]) ? ";" : ".\n");
	if (many_slots)
		printf("\n2^17 sources in turn: %u of %u hold a slot of %u (%.2f%% without one).\n",
		       many_held, 1u << 17, many_slots, 100.0 * (double)((1u << 17) - many_held) / (1u << 17));
	if (many_ns[0] && many_ns[1] && many_ns[2]) {
		static const char *const ref[3] = {
			"parse only (the table's floor)",
			"parse + one 64-byte line per source, 256-byte records, 64 MiB (the slot table's footprint)",
			"parse + one 64-byte line per source, packed 64-byte records, 16 MiB",
		};

		printf("\n2^17 known sources in turn against floors that read per-source memory "
		       "(same run, median):\n\n");
		printf("| reference | reference ns/pkt | shield ns/pkt | shield / reference | "
		       "reference / parse-only floor |\n|---|---:|---:|---:|---:|\n");
		for (int i = 0; i < 3; i++)
			printf("| %s | %u | %u | %.2f | %.2f |\n", ref[i], many_ns[i], many_ns[3],
			       (double)many_ns[3] / many_ns[i], (double)many_ns[i] / many_ns[0]);
	}
	printf("\nTotal bench time %.1f s.\n", (double)(now_boot() - t0) / 1e9);
	return 0;
}
