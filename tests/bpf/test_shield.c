/* SPDX-License-Identifier: MPL-2.0 */
/*
 * BPF_PROG_TEST_RUN fixtures for the XDP shield: packet in -> verdict and
 * counters out, one fixture per data-plane path (DESIGN §3), plus a
 * two-CPU run that proves no counter increment and no token is lost.
 *
 * Needs root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN for test_run); exits 77
 * (skip) otherwise. Every fixture loads a fresh skeleton with small maps and
 * pinning disabled, except the pin fixture, which pins into its own
 * directory on a bpffs private to this process (tests/bpffs.h), so it
 * needs nothing mounted on the host. Each fixture prints its
 * ns/packet (opts.duration over a repeat) to stdout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "bpf/shield.h"
#include "shield.skel.h"
#include "tests/bpf/pkt.h"
#include "tests/bpffs.h"
#include "tests/wait.h"

#define SMALL_MAP 4096
#define SMALL_SLOTS 4096 /* source slots per family: 1024 buckets */

/* How far the data plane's per-CPU cached clock may trail CLOCK_BOOTTIME:
 * a jiffy (KL_JIFFY_MAX_NS in shield.bpf.c), with room to spare. */
#define CLOCK_LAG_NS 20000000ull
/* The longest a test waits for the clock to reach a point it needs. */
#define CLOCK_WAIT_MS 5000

/* Wait until the data plane's clock, cached or exact, is past t_ns. */
static void clock_past(__u64 t_ns)
{
	if (!KL_WAIT_BOOT_PAST(t_ns + CLOCK_LAG_NS, CLOCK_WAIT_MS))
		fail_msg("CLOCK_BOOTTIME did not pass %llu ns within %d ms",
			 (unsigned long long)t_ns, CLOCK_WAIT_MS);
}

/* ---- loading ---- */

struct load_opts {
	int flow, edge;
	__u32 ringbuf_bytes; /* 0 = default */
	const char *pin_root; /* NULL = no pinning */
	__u32 src_slots;      /* 0 = SMALL_SLOTS */
	__u32 flow_slots;     /* 0 = SMALL_SLOTS */
	int admit;            /* 1: admission filter on (the default in use); else
			       * every source claims a slot on its first packet */
};

static int quiet_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static struct shield *load_shield(const struct load_opts *lo)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = lo->pin_root);
	struct shield *s = shield__open_opts(&oo);
	struct bpf_map *m;

	assert_non_null(s);
	bpf_object__for_each_map(m, s->obj) {
		enum bpf_map_type t = bpf_map__type(m);

		if (!lo->pin_root && bpf_map__pin_path(m))
			assert_int_equal(bpf_map__set_pin_path(m, NULL), 0);
		/* The program must not depend on map sizes: shrink them. */
		if (m == s->maps.kernloom_src4_stats || m == s->maps.kernloom_src6_stats) {
			assert_int_equal(bpf_map__set_max_entries(m, lo->src_slots ?: SMALL_SLOTS), 0);
		} else if (m == s->maps.kernloom_flow4_stats || m == s->maps.kernloom_flow6_stats) {
			assert_int_equal(bpf_map__set_max_entries(m, lo->flow_slots ?: SMALL_SLOTS), 0);
		} else if (m == s->maps.kl_src_tags4 || m == s->maps.kl_src_tags6) {
			assert_int_equal(bpf_map__set_max_entries(m, (lo->src_slots ?: SMALL_SLOTS) /
									 KL_SRC_WAYS), 0);
		} else if (t == BPF_MAP_TYPE_RINGBUF) {
			if (lo->ringbuf_bytes)
				assert_int_equal(bpf_map__set_max_entries(m, lo->ringbuf_bytes), 0);
		} else if (t != BPF_MAP_TYPE_ARRAY && t != BPF_MAP_TYPE_PERCPU_ARRAY) {
			assert_int_equal(bpf_map__set_max_entries(m, SMALL_MAP), 0);
		}
	}
	s->rodata->kl_feat_flow = (__u32)lo->flow;
	s->rodata->kl_feat_edge = (__u32)lo->edge;
	s->rodata->kl_src4_mask = (lo->src_slots ?: SMALL_SLOTS) / KL_SRC_WAYS - 1;
	s->rodata->kl_src6_mask = (lo->src_slots ?: SMALL_SLOTS) / KL_SRC_WAYS - 1;
	s->rodata->kl_flow_mask = (lo->flow_slots ?: SMALL_SLOTS) / KL_FLOW_WAYS - 1;
	if (shield__load(s)) {
		fprintf(stderr, "shield__load failed: %s\n", strerror(errno));
		shield__destroy(s);
		fail();
	}
	/* Most fixtures count from a source's first packet; the admission
	 * filter has fixtures of its own. */
	if (!lo->admit) {
		struct kl_cfg c;
		__u32 zero = 0;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, &c), 0);
		c.admit_off = 1;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, &c,
						     BPF_ANY),
				 0);
	}
	return s;
}

static int setup_default(void **state)
{
	struct load_opts lo = { 0 };

	*state = load_shield(&lo);
	return 0;
}

static int teardown(void **state)
{
	shield__destroy(*state);
	return 0;
}

/* ---- helpers ---- */

static __u64 now_boot(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static __u32 ip4(const char *s)
{
	__u32 a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static struct kl_in6 ip6(const char *s)
{
	struct kl_in6 a;

	assert_int_equal(inet_pton(AF_INET6, s, a.addr), 1);
	return a;
}

struct frame {
	uint8_t b[PKT_MAX];
	size_t len;
};

static struct frame build(const struct pkt_spec *s)
{
	struct frame f;

	f.len = pkt_build(f.b, sizeof(f.b), s);
	assert_true(f.len > 0);
	return f;
}

#define TIMING_REPEAT 20000

/* Run the program `repeat` times on a frame; returns the XDP action of the
 * last run and stores the mean ns/packet in *ns if given. */
static __u32 run_ns(struct shield *s, const void *pkt, size_t len, __u32 repeat, __u32 *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len,
		    .repeat = repeat);
	int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.kl_shield), &o);

	if (err)
		fprintf(stderr, "BPF_PROG_TEST_RUN: %s\n", strerror(errno));
	assert_int_equal(err, 0);
	if (ns)
		*ns = o.duration;
	return o.retval;
}

static __u32 run_n(struct shield *s, const void *pkt, size_t len, __u32 repeat)
{
	return run_ns(s, pkt, len, repeat, NULL);
}

/* A fixture's cost: once its counters are checked, the same packet again
 * TIMING_REPEAT times (still on the same path: the verdict must hold). */
static void timed(struct shield *s, const char *label, const void *pkt, size_t len,
		  __u32 expect)
{
	__u32 ns;

	assert_int_equal(run_ns(s, pkt, len, TIMING_REPEAT, &ns), expect);
	printf("[ FIXTURE  ] %-40s %6u ns/pkt (repeat %u)\n", label, ns, TIMING_REPEAT);
}

static __u32 run1(struct shield *s, const struct frame *f)
{
	return run_n(s, f->b, f->len, 1);
}

static void totals(struct shield *s, __u64 out[KL_T_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct kl_totals *pc = calloc((size_t)ncpu, sizeof(*pc));
	__u32 zero = 0;

	assert_non_null(pc);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_totals), &zero, pc), 0);
	memset(out, 0, sizeof(__u64) * KL_T_MAX);
	for (int c = 0; c < ncpu; c++)
		for (int i = 0; i < KL_T_MAX; i++)
			out[i] += pc[c].v[i];
	free(pc);
}

static __u64 total(struct shield *s, int idx)
{
	__u64 t[KL_T_MAX];

	totals(s, t);
	return t[idx];
}

static struct kl_cfg cfg_get(struct shield *s);

/* Find a source's slot the way the data plane does: its two buckets from
 * the seed in kernloom_cfg, then the owner compare in each way. Returns the
 * slot index, or -1 (and *out untouched) when the source has none. */
static int slot_find(struct shield *s, int fam, const void *addr, struct kl_src_slot *out)
{
	struct kl_cfg c = cfg_get(s);
	struct bpf_map *m = fam == 4 ? s->maps.kernloom_src4_stats : s->maps.kernloom_src6_stats;
	__u32 mask = (fam == 4 ? s->rodata->kl_src4_mask : s->rodata->kl_src6_mask);
	__u32 base[2], a4 = 0;
	__u8 o[16] = { 0 };

	if (fam == 4) {
		memcpy(&a4, addr, 4);
		memcpy(o, addr, 4);
		kl_src_buckets4(a4, c.src_seed, mask, base);
	} else {
		memcpy(o, addr, 16);
		kl_src_buckets6(o, c.src_seed, mask, base);
	}
	for (__u32 i = 0; i < 2 * KL_SRC_WAYS; i++) {
		__u32 k = base[i / KL_SRC_WAYS] + i % KL_SRC_WAYS;
		struct kl_src_slot sl;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(m), &k, &sl), 0);
		if (sl.family == (__u32)fam && memcmp(sl.owner, o, 16) == 0 && sl.seq &&
		    !(sl.seq & 1)) {
			if (out)
				*out = sl;
			return (int)k;
		}
	}
	return -1;
}

static int src4(struct shield *s, const char *a, struct kl_src_stats *st)
{
	__u32 k = ip4(a);
	struct kl_src_slot sl;

	if (slot_find(s, 4, &k, &sl) < 0)
		return -ENOENT;
	*st = sl.s;
	return 0;
}

static int src6(struct shield *s, const char *a, struct kl_src_stats *st)
{
	struct kl_in6 k = ip6(a);
	struct kl_src_slot sl;

	if (slot_find(s, 6, k.addr, &sl) < 0)
		return -ENOENT;
	*st = sl.s;
	return 0;
}

/* Rewrite a known source's stats in place (fixtures only: the enforcer
 * freezes the real maps). */
static void src4_put(struct shield *s, __u32 a, const struct kl_src_stats *st)
{
	struct kl_src_slot sl;
	int k = slot_find(s, 4, &a, &sl);

	assert_true(k >= 0);
	sl.s = *st;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.kernloom_src4_stats), &k, &sl,
					     BPF_ANY),
			 0);
}

static struct kl_src_stats src4_must(struct shield *s, const char *a)
{
	struct kl_src_stats st;

	assert_int_equal(src4(s, a, &st), 0);
	return st;
}

static struct kl_src_stats src6_must(struct shield *s, const char *a)
{
	struct kl_src_stats st;

	assert_int_equal(src6(s, a, &st), 0);
	return st;
}

static struct kl_cfg cfg_get(struct shield *s)
{
	struct kl_cfg c;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, &c), 0);
	return c;
}

static void cfg_put(struct shield *s, const struct kl_cfg *c)
{
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.kernloom_cfg), &zero, c, BPF_ANY), 0);
}

/* What the enforcer does after every policy write. */
static void bump_gen(struct shield *s)
{
	struct kl_cfg c = cfg_get(s);

	c.policy_gen++;
	cfg_put(s, &c);
}

static void put(struct bpf_map *m, const void *k, const void *v)
{
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(m), k, v, BPF_ANY), 0);
}

/* The enforcer's contract: the source's bit in kernloom_policy_bloom is set
 * before an exact-source entry is written (shield.h, KL_POL_BLOOM_WORDS). */
static void bloom_set(struct shield *s, __u64 h)
{
	__u32 bit = kl_pol_bit(h), wi = bit >> 6;
	int fd = bpf_map__fd(s->maps.kernloom_policy_bloom);
	__u64 w;

	assert_int_equal(bpf_map_lookup_elem(fd, &wi, &w), 0);
	w |= 1ull << (bit & 63);
	assert_int_equal(bpf_map_update_elem(fd, &wi, &w, BPF_ANY), 0);
}

static void bloom4(struct shield *s, __u32 a)
{
	struct kl_cfg c = cfg_get(s);

	bloom_set(s, kl_src_hash4(a, c.src_seed));
}

static void bloom6(struct shield *s, const struct kl_in6 *a)
{
	struct kl_cfg c = cfg_get(s);
	__u64 w0, w1;

	memcpy(&w0, a->addr, 8);
	memcpy(&w1, a->addr + 8, 8);
	bloom_set(s, kl_src_hash6w(w0, w1, c.src_seed));
}

static struct kl_rule rule(__u64 expires, __u32 origin)
{
	struct kl_rule r = { .expires_ns = expires, .created_ns = now_boot(), .origin = origin };

	return r;
}

static void deny4(struct shield *s, const char *a, __u64 expires)
{
	__u32 k = ip4(a);
	struct kl_rule r = rule(expires, KL_ORIGIN_OPERATOR);

	bloom4(s, k);
	put(s->maps.kernloom_deny4_hash, &k, &r);
	bump_gen(s);
}

static void deny6(struct shield *s, const char *a, __u64 expires)
{
	struct kl_in6 k = ip6(a);
	struct kl_rule r = rule(expires, KL_ORIGIN_OPERATOR);

	bloom6(s, &k);
	put(s->maps.kernloom_deny6_hash, &k, &r);
	bump_gen(s);
}

static void lpm4(struct bpf_map *m, const char *a, __u32 plen, struct kl_rule r)
{
	struct kl_lpm4_key k = { .prefixlen = plen, .addr = ip4(a) };

	put(m, &k, &r);
}

static void lpm6(struct bpf_map *m, const char *a, __u32 plen, struct kl_rule r)
{
	struct kl_lpm6_key k = { .prefixlen = plen };
	struct kl_in6 x = ip6(a);

	memcpy(k.addr, x.addr, 16);
	put(m, &k, &r);
}

static void rl4(struct shield *s, const char *a, __u64 rate, __u64 burst, __u64 expires)
{
	__u32 k = ip4(a);
	struct kl_rl_rule r = { .rate_pps = rate, .burst = burst, .expires_ns = expires,
				.origin = KL_ORIGIN_OPERATOR };

	bloom4(s, k);
	put(s->maps.kernloom_rl_policy4, &k, &r);
	bump_gen(s);
}

static void set_allow_enforce(struct shield *s, __u32 on)
{
	struct kl_cfg c = cfg_get(s);

	c.allow_enforce = on;
	cfg_put(s, &c);
}

/* ---- fixtures: basic accounting ---- */

static void test_known_source_pass(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.1.10", 443, PKT_ACK);
	struct frame f = build(&sp);
	__u64 before = now_boot(), t[KL_T_MAX];
	struct kl_src_stats st;

	assert_int_equal(run_n(s, f.b, f.len, 1000), XDP_PASS);
	st = src4_must(s, "198.18.1.10");
	assert_int_equal(st.pkts, 1000);
	assert_int_equal(st.bytes, 1000 * f.len);
	assert_int_equal(st.pass, 1000);
	assert_int_equal(st.drop_deny + st.drop_allow + st.drop_rl + st.drop_edge, 0);
	assert_int_equal(st.syn + st.synack + st.rst, 0);
	assert_true(st.first_seen_ns >= before && st.first_seen_ns <= st.last_seen_ns);
	assert_true(st.last_seen_ns <= now_boot());
	assert_true(st.verdict & KL_V_CACHED);
	totals(s, t);
	assert_int_equal(t[KL_T_PKTS], 1000);
	assert_int_equal(t[KL_T_BYTES], 1000 * f.len);
	assert_int_equal(t[KL_T_PASS], 1000);
	assert_int_equal(t[KL_T_IPV4], 1000);
	assert_int_equal(t[KL_T_IPV6], 0);
	assert_int_equal(t[KL_T_SRC_NEW], 1);
	assert_int_equal(t[KL_T_MALFORMED] + t[KL_T_NON_IP] + t[KL_T_FRAGMENTS], 0);
	timed(s, "known source v4, pass", f.b, f.len, XDP_PASS);
}

static void test_known_source_pass_v6(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp6("fd00:6b6c:1::10", 53);
	struct frame f = build(&sp);
	struct kl_src_stats st;

	assert_int_equal(run_n(s, f.b, f.len, 1000), XDP_PASS);
	st = src6_must(s, "fd00:6b6c:1::10");
	assert_int_equal(st.pkts, 1000);
	assert_int_equal(st.bytes, 1000 * f.len);
	assert_int_equal(st.pass, 1000);
	assert_int_equal(total(s, KL_T_IPV6), 1000);
	assert_int_equal(total(s, KL_T_SRC_NEW), 1);
	timed(s, "known source v6, pass", f.b, f.len, XDP_PASS);
}

/* ---- allow / protected ---- */

static void test_allow_enforce_allowed(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.1.20", 22, PKT_SYN);
	struct frame f = build(&sp);
	struct kl_src_stats st;

	lpm4(s->maps.kernloom_allow4_lpm, "198.18.1.0", 24, rule(0, KL_ORIGIN_OPERATOR));
	set_allow_enforce(s, 1);
	bump_gen(s);
	assert_int_equal(run_n(s, f.b, f.len, 100), XDP_PASS);
	st = src4_must(s, "198.18.1.20");
	assert_int_equal(st.pass, 100);
	assert_int_equal(st.drop_allow, 0);
	assert_true(st.verdict & KL_V_ALLOWED);
	assert_false(st.verdict & KL_V_PROTECTED);
	timed(s, "allow-enforce, in list", f.b, f.len, XDP_PASS);
}

static void test_allow_enforce_miss(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.2.20", 22, PKT_SYN);
	struct frame f = build(&sp);
	struct kl_src_stats st;

	lpm4(s->maps.kernloom_allow4_lpm, "198.18.1.0", 24, rule(0, KL_ORIGIN_OPERATOR));
	set_allow_enforce(s, 1);
	bump_gen(s);
	assert_int_equal(run_n(s, f.b, f.len, 100), XDP_DROP);
	st = src4_must(s, "198.18.2.20");
	assert_int_equal(st.pkts, 100);
	assert_int_equal(st.drop_allow, 100);
	assert_int_equal(st.pass, 0);
	assert_int_equal(st.syn, 100); /* dropped packets are counted too */
	assert_int_equal(total(s, KL_T_DROP_ALLOW), 100);
	timed(s, "allow-enforce, miss", f.b, f.len, XDP_DROP);

	/* Allow-enforce off (a cfg field, read per packet): passes again. */
	set_allow_enforce(s, 0);
	assert_int_equal(run1(s, &f), XDP_PASS);
}

static void test_allow_enforce_v6(void **state)
{
	struct shield *s = *state;
	struct pkt_spec in = pkt_tcp6("fd00:6b6c:1::5", 443, PKT_SYN);
	struct pkt_spec out = pkt_tcp6("fd00:6b6c:2::5", 443, PKT_SYN);
	struct frame fi = build(&in), fo = build(&out);

	lpm6(s->maps.kernloom_allow6_lpm, "fd00:6b6c:1::", 48, rule(0, KL_ORIGIN_OPERATOR));
	set_allow_enforce(s, 1);
	bump_gen(s);
	assert_int_equal(run1(s, &fi), XDP_PASS);
	assert_int_equal(run1(s, &fo), XDP_DROP);
	assert_int_equal(src6_must(s, "fd00:6b6c:2::5").drop_allow, 1);
}

/* A protected source passes allow-enforce, deny, a drop-all RL and edges. */
static void test_protected_bypasses_deny(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.3.3", 22, PKT_SYN);
	struct frame f = build(&sp);
	struct kl_cfg c = cfg_get(s);
	struct kl_src_stats st;

	lpm4(s->maps.kernloom_allow4_lpm, "198.18.3.0", 24, rule(0, KL_ORIGIN_PROTECTED));
	c.allow_enforce = 1;
	c.rl_rate_pps = 0;
	c.rl_burst = 1; /* global default: rate 0 drops all */
	cfg_put(s, &c);
	rl4(s, "198.18.3.3", 0, 0, 0);
	deny4(s, "198.18.3.3", 0);
	assert_int_equal(run_n(s, f.b, f.len, 100), XDP_PASS);
	st = src4_must(s, "198.18.3.3");
	assert_int_equal(st.pass, 100);
	assert_int_equal(st.drop_deny + st.drop_rl + st.drop_allow, 0);
	assert_true(st.verdict & KL_V_PROTECTED);
	assert_true(st.verdict & KL_V_DENIED); /* cached, but not acted on */
	timed(s, "protected, deny bypassed", f.b, f.len, XDP_PASS);
}

/* An allowed (not protected) source skips deny and rate limits. */
static void test_allowed_skips_deny_and_rl(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp4("198.18.4.4", 53);
	struct frame f = build(&sp);

	lpm4(s->maps.kernloom_allow4_lpm, "198.18.4.4", 32, rule(0, KL_ORIGIN_OPERATOR));
	rl4(s, "198.18.4.4", 0, 0, 0);
	deny4(s, "198.18.4.4", 0);
	assert_int_equal(run_n(s, f.b, f.len, 50), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.4.4").pass, 50);
	timed(s, "allowed, deny + RL skipped", f.b, f.len, XDP_PASS);
}

/* ---- deny ---- */

static void test_deny_exact_v4(void **state)
{
	struct shield *s = *state;
	struct pkt_spec bad = pkt_tcp4("198.18.5.5", 80, PKT_SYN);
	struct pkt_spec good = pkt_tcp4("198.18.5.6", 80, PKT_SYN);
	struct frame fb = build(&bad), fg = build(&good);
	struct kl_src_stats st;

	deny4(s, "198.18.5.5", 0);
	assert_int_equal(run_n(s, fb.b, fb.len, 1000), XDP_DROP);
	assert_int_equal(run1(s, &fg), XDP_PASS);
	st = src4_must(s, "198.18.5.5");
	assert_int_equal(st.pkts, 1000);
	assert_int_equal(st.bytes, 1000 * fb.len);
	assert_int_equal(st.drop_deny, 1000);
	assert_int_equal(st.pass, 0);
	assert_int_equal(st.deny_expires_ns, 0);
	assert_int_equal(total(s, KL_T_DROP_DENY), 1000);
	assert_int_equal(total(s, KL_T_PASS), 1);
	timed(s, "exact deny v4", fb.b, fb.len, XDP_DROP);
}

static void test_deny_exact_v6(void **state)
{
	struct shield *s = *state;
	struct pkt_spec bad = pkt_tcp6("fd00:6b6c:5::5", 80, PKT_SYN);
	struct pkt_spec good = pkt_tcp6("fd00:6b6c:5::6", 80, PKT_SYN);
	struct frame fb = build(&bad), fg = build(&good);

	deny6(s, "fd00:6b6c:5::5", 0);
	assert_int_equal(run_n(s, fb.b, fb.len, 1000), XDP_DROP);
	assert_int_equal(run1(s, &fg), XDP_PASS);
	assert_int_equal(src6_must(s, "fd00:6b6c:5::5").drop_deny, 1000);
	assert_int_equal(src6_must(s, "fd00:6b6c:5::6").pass, 1);
	assert_int_equal(total(s, KL_T_DROP_DENY), 1000);
	timed(s, "exact deny v6", fb.b, fb.len, XDP_DROP);
}

static void test_deny_expired_passes(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp4("198.18.6.6", 9);
	struct frame f = build(&sp);
	__u64 now = now_boot();

	deny4(s, "198.18.6.6", now - 1000000000ull);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.6.6").drop_deny, 0);

	/* A live deny lapses by itself, with no generation bump. */
	__u64 exp = now_boot() + 150000000ull;
	deny4(s, "198.18.6.6", exp);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_int_equal(src4_must(s, "198.18.6.6").deny_expires_ns > now, 1);
	clock_past(exp);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.6.6").drop_deny, 1);
}

static void test_deny_cidr(void **state)
{
	struct shield *s = *state;
	struct pkt_spec a4 = pkt_tcp4("198.18.7.77", 80, PKT_SYN);
	struct pkt_spec b4 = pkt_tcp4("198.18.8.77", 80, PKT_SYN);
	struct pkt_spec a6 = pkt_tcp6("fd00:6b6c:7::77", 80, PKT_SYN);
	struct pkt_spec b6 = pkt_tcp6("fd00:6b6c:8::77", 80, PKT_SYN);
	struct frame fa4 = build(&a4), fb4 = build(&b4), fa6 = build(&a6), fb6 = build(&b6);

	lpm4(s->maps.kernloom_deny4_lpm, "198.18.7.0", 24, rule(0, KL_ORIGIN_OPERATOR));
	lpm6(s->maps.kernloom_deny6_lpm, "fd00:6b6c:7::", 48, rule(0, KL_ORIGIN_OPERATOR));
	bump_gen(s);
	assert_int_equal(run_n(s, fa4.b, fa4.len, 1000), XDP_DROP);
	assert_int_equal(run_n(s, fa6.b, fa6.len, 1000), XDP_DROP);
	assert_int_equal(run1(s, &fb4), XDP_PASS);
	assert_int_equal(run1(s, &fb6), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.7.77").drop_deny, 1000);
	assert_int_equal(src6_must(s, "fd00:6b6c:7::77").drop_deny, 1000);
	assert_int_equal(total(s, KL_T_DROP_DENY), 2000);
	timed(s, "CIDR deny v4", fa4.b, fa4.len, XDP_DROP);
	timed(s, "CIDR deny v6", fa6.b, fa6.len, XDP_DROP);
}

/* Exact deny expiring soon + permanent CIDR deny: the source stays denied
 * past the exact entry's expiry (the cached expiry is the longer one). */
static void test_deny_exact_and_cidr_longest(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp4("198.18.9.9", 9);
	struct frame f = build(&sp);

	__u64 exp = now_boot() + 50000000ull;
	lpm4(s->maps.kernloom_deny4_lpm, "198.18.9.0", 24, rule(0, KL_ORIGIN_OPERATOR));
	deny4(s, "198.18.9.9", exp);
	assert_int_equal(run1(s, &f), XDP_DROP);
	clock_past(exp);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_int_equal(src4_must(s, "198.18.9.9").deny_expires_ns, 0);
}

/* ---- policy generation cache ---- */

static void test_policy_gen_cache(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.10.10", 443, PKT_ACK);
	struct frame f = build(&sp);
	__u32 k = ip4("198.18.10.10");
	struct kl_rule r = rule(0, KL_ORIGIN_OPERATOR);
	struct kl_src_stats st;

	assert_int_equal(run1(s, &f), XDP_PASS);
	st = src4_must(s, "198.18.10.10");
	assert_int_equal(st.cache_gen, cfg_get(s).policy_gen);

	/* Deny written but generation not bumped: the cached verdict stands.
	 * This is the documented contract: the enforcer bumps after writes. */
	put(s->maps.kernloom_deny4_hash, &k, &r);
	assert_int_equal(run1(s, &f), XDP_PASS);
	bump_gen(s);
	assert_int_equal(run1(s, &f), XDP_DROP);
	st = src4_must(s, "198.18.10.10");
	assert_int_equal(st.cache_gen, cfg_get(s).policy_gen);
	assert_true(st.verdict & KL_V_DENIED);

	/* Removing it works the same way. */
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(s->maps.kernloom_deny4_hash), &k), 0);
	assert_int_equal(run1(s, &f), XDP_DROP);
	bump_gen(s);
	assert_int_equal(run1(s, &f), XDP_PASS);

	/* A zeroed entry (verdict without KL_V_CACHED) is recomputed even if
	 * its cache_gen matches. */
	put(s->maps.kernloom_deny4_hash, &k, &r);
	st = src4_must(s, "198.18.10.10");
	st.verdict = 0;
	st.cache_gen = cfg_get(s).policy_gen;
	src4_put(s, k, &st);
	assert_int_equal(run1(s, &f), XDP_DROP);
}

/* ---- rate limits ---- */

/* Tokens GCRA (shield.bpf.c, gcra_pass) holds at time t for a bucket whose
 * theoretical arrival time is tat: packets sent back to back from t on
 * pass while tat - now <= (burst - 1) * period, each moving tat by one
 * period. At most burst. */
static int gcra_tokens(__u64 tat, __u64 t, __u64 period, __u64 burst)
{
	__u64 limit = (burst - 1) * period;
	if (tat <= t)
		return (int)burst;
	if (tat - t > limit)
		return 0;
	return (int)((limit - (tat - t)) / period) + 1;
}

static void test_rl_burst_then_drop_refill(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp4("198.18.11.11", 53);
	struct frame f = build(&sp);
	__u32 k = ip4("198.18.11.11");
	struct kl_src_stats st;

	rl4(s, "198.18.11.11", 10, 5, 0); /* T = 100 ms */
	for (int i = 0; i < 5; i++)
		assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_int_equal(run1(s, &f), XDP_DROP);
	st = src4_must(s, "198.18.11.11");
	assert_int_equal(st.pass, 5);
	assert_int_equal(st.drop_rl, 2);
	assert_int_equal(total(s, KL_T_DROP_RL), 2);

	/* Refill: move the bucket back by two emission intervals (as if 200 ms
	 * had passed) -> exactly two more packets pass. */
	st.tat_ns -= 2 * 100000000ull;
	src4_put(s, k, &st);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(run1(s, &f), XDP_DROP);

	/* And by real time: wait for the clock to reach two tokens' worth,
	 * then send five. How many pass depends on when they ran; the
	 * clock read before and after brackets that, to the nanosecond. */
	st = src4_must(s, "198.18.11.11");
	__u64 tat = st.tat_ns, period = 100000000ull, burst = 5;
	clock_past(tat - (burst - 1) * period + period - CLOCK_LAG_NS);
	__u64 t0 = now_boot();
	int passed = 0;
	for (int i = 0; i < 5; i++)
		passed += run1(s, &f) == XDP_PASS;
	__u64 t1 = now_boot();
	assert_true(gcra_tokens(tat, t0, period, burst) >= 2);
	assert_in_range(passed, gcra_tokens(tat, t0, period, burst),
			gcra_tokens(tat, t1, period, burst));
	st = src4_must(s, "198.18.11.11");
	assert_int_equal(st.pass + st.drop_rl, st.pkts);

	timed(s, "RL override, drop", f.b, f.len, XDP_DROP);
}

static void test_rl_global_default(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.12.12", 80, PKT_SYN);
	struct frame f = build(&sp);
	struct kl_cfg c = cfg_get(s);
	struct kl_src_stats st;

	c.rl_rate_pps = 1;
	c.rl_burst = 3;
	cfg_put(s, &c);
	assert_int_equal(run_n(s, f.b, f.len, 10), XDP_DROP);
	st = src4_must(s, "198.18.12.12");
	assert_int_equal(st.pass, 3);
	assert_int_equal(st.drop_rl, 7);
	timed(s, "global default RL, drop", f.b, f.len, XDP_DROP);

	/* burst 0 = no default. */
	c.rl_burst = 0;
	cfg_put(s, &c);
	assert_int_equal(run1(s, &f), XDP_PASS);
}

static void test_rl_override_expiry(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_udp4("198.18.13.13", 53);
	struct frame f = build(&sp);
	struct kl_cfg c;
	struct kl_src_stats st;

	/* Lapsed override (rate 0 = drop all) is ignored: no default -> pass. */
	rl4(s, "198.18.13.13", 0, 0, now_boot() - 1000000000ull);
	assert_int_equal(run1(s, &f), XDP_PASS);

	/* Live drop-all override. */
	__u64 exp = now_boot() + 100000000ull;
	rl4(s, "198.18.13.13", 0, 100, exp);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_true(src4_must(s, "198.18.13.13").verdict & KL_V_RL);

	/* After it lapses (no bump), the global default applies. */
	c = cfg_get(s);
	c.rl_rate_pps = 1;
	c.rl_burst = 2;
	cfg_put(s, &c);
	clock_past(exp);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(run1(s, &f), XDP_DROP);
	st = src4_must(s, "198.18.13.13");
	assert_int_equal(st.drop_rl, 2);
	assert_int_equal(st.pass, 3);
	timed(s, "lapsed override -> default RL, drop", f.b, f.len, XDP_DROP);
}

/* ---- parsing ---- */

static void test_vlan_single_double(void **state)
{
	struct shield *s = *state;
	struct pkt_spec one = pkt_tcp4("198.18.14.14", 22, PKT_SYN);
	struct pkt_spec two = one, two6 = pkt_tcp6("fd00:6b6c:14::14", 22, PKT_SYN);
	struct frame f1, f2, f6;
	struct kl_src_stats st;

	one.nvlan = 1;
	one.vlan_tpid[0] = PKT_TPID_8021Q;
	one.vlan_id[0] = 100;
	two.nvlan = 2;
	two.vlan_tpid[0] = PKT_TPID_8021AD;
	two.vlan_id[0] = 200;
	two.vlan_tpid[1] = PKT_TPID_8021Q;
	two.vlan_id[1] = 100;
	two6.nvlan = 2;
	memcpy(two6.vlan_tpid, two.vlan_tpid, sizeof(two.vlan_tpid));
	f1 = build(&one);
	f2 = build(&two);
	f6 = build(&two6);
	deny4(s, "198.18.14.14", 0);
	deny6(s, "fd00:6b6c:14::14", 0);
	assert_int_equal(run_n(s, f1.b, f1.len, 100), XDP_DROP);
	assert_int_equal(run_n(s, f2.b, f2.len, 100), XDP_DROP);
	assert_int_equal(run1(s, &f6), XDP_DROP);
	st = src4_must(s, "198.18.14.14");
	assert_int_equal(st.drop_deny, 200);
	assert_int_equal(st.syn, 200);
	assert_int_equal(st.bytes, 100 * f1.len + 100 * f2.len);
	assert_int_equal(src6_must(s, "fd00:6b6c:14::14").syn, 1);
	assert_int_equal(total(s, KL_T_MALFORMED), 0);
	timed(s, "VLAN 802.1Q, deny", f1.b, f1.len, XDP_DROP);
	timed(s, "VLAN 802.1ad+802.1Q, deny", f2.b, f2.len, XDP_DROP);
}

static void test_ipv6_ext_headers(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp6("fd00:6b6c:15::15", 22, PKT_SYN);
	struct pkt_spec ah = pkt_tcp6("fd00:6b6c:15::16", 22, PKT_SYN | PKT_ACK);
	struct pkt_spec deep = pkt_udp6("fd00:6b6c:15::17", 53);
	struct frame f, fa, fd;
	struct kl_src_stats st;

	sp.next_ext = 2;
	sp.ext[0] = PKT_EXT_HOP;
	sp.ext[1] = PKT_EXT_DEST;
	sp.ext_len8 = 1; /* 16-byte option headers */
	f = build(&sp);
	ah.next_ext = 3;
	ah.ext[0] = PKT_EXT_HOP;
	ah.ext[1] = PKT_EXT_ROUTE;
	ah.ext[2] = PKT_EXT_AH;
	fa = build(&ah);
	/* Six extension headers: the most we walk. */
	deep.next_ext = 6;
	deep.ext[0] = PKT_EXT_HOP;
	deep.ext[1] = PKT_EXT_DEST;
	deep.ext[2] = PKT_EXT_ROUTE;
	deep.ext[3] = PKT_EXT_AH;
	deep.ext[4] = PKT_EXT_DEST;
	deep.ext[5] = PKT_EXT_DEST;
	fd = build(&deep);

	assert_int_equal(run_n(s, f.b, f.len, 100), XDP_PASS);
	st = src6_must(s, "fd00:6b6c:15::15");
	assert_int_equal(st.pkts, 100);
	assert_int_equal(st.syn, 100);       /* TCP flags found past the ext headers */
	assert_int_equal(st.ports_distinct, 1);
	assert_int_equal(run1(s, &fa), XDP_PASS);
	assert_int_equal(src6_must(s, "fd00:6b6c:15::16").synack, 1);
	assert_int_equal(run1(s, &fd), XDP_PASS);
	assert_int_equal(src6_must(s, "fd00:6b6c:15::17").ports_distinct, 1);
	assert_int_equal(total(s, KL_T_MALFORMED), 0);
	timed(s, "IPv6 hop+dest ext, TCP, pass", f.b, f.len, XDP_PASS);

	/* Denied source behind extension headers is dropped. */
	deny6(s, "fd00:6b6c:15::15", 0);
	assert_int_equal(run1(s, &f), XDP_DROP);

	/* Seven: an IP packet with an unknown L4 (policy applies, no port). */
	deep.next_ext = 7;
	deep.ext[6] = PKT_EXT_DEST;
	fd = build(&deep);
	deny6(s, "fd00:6b6c:15::17", 0);
	assert_int_equal(run1(s, &fd), XDP_DROP);
	st = src6_must(s, "fd00:6b6c:15::17");
	assert_int_equal(st.ports_distinct, 1);
	assert_int_equal(st.drop_deny, 1);
}

static void test_ipv6_fragments(void **state)
{
	struct shield *s = *state;
	struct pkt_spec first = pkt_udp6("fd00:6b6c:16::16", 5353);
	struct pkt_spec later;
	struct frame ff, fl;
	struct kl_src_stats st;

	first.next_ext = 1;
	first.ext[0] = PKT_EXT_FRAG;
	first.more_frags = 1;
	first.payload = 64;
	later = first;
	later.frag_off = 9;
	later.more_frags = 0;
	ff = build(&first);
	fl = build(&later);
	assert_int_equal(run1(s, &ff), XDP_PASS);
	st = src6_must(s, "fd00:6b6c:16::16");
	assert_int_equal(st.ports_distinct, 1); /* first fragment: L4 parsed */
	assert_int_equal(run_n(s, fl.b, fl.len, 10), XDP_PASS);
	st = src6_must(s, "fd00:6b6c:16::16");
	assert_int_equal(st.pkts, 11);
	assert_int_equal(st.ports_distinct, 1); /* non-first: no L4 */
	assert_int_equal(total(s, KL_T_FRAGMENTS), 11);
	assert_int_equal(total(s, KL_T_MALFORMED), 0);
	timed(s, "IPv6 non-first fragment, pass", fl.b, fl.len, XDP_PASS);
	/* Source policy still applies to non-first fragments. */
	deny6(s, "fd00:6b6c:16::16", 0);
	assert_int_equal(run1(s, &fl), XDP_DROP);
}

static void test_ipv4_fragments(void **state)
{
	struct shield *s = *state;
	struct pkt_spec first = pkt_udp4("198.18.17.17", 5353);
	struct pkt_spec later;
	struct frame ff, fl;
	struct kl_src_stats st;

	first.more_frags = 1;
	first.payload = 64;
	later = first;
	later.frag_off = 9;
	later.more_frags = 0;
	/* A non-first fragment whose payload starts like a TCP SYN header:
	 * it must not be read as one. */
	later.proto = IPPROTO_TCP;
	ff = build(&first);
	fl = build(&later);
	fl.b[14 + 20 + 13] = PKT_SYN;
	assert_int_equal(run1(s, &ff), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.17.17").ports_distinct, 1);
	assert_int_equal(run_n(s, fl.b, fl.len, 10), XDP_PASS);
	st = src4_must(s, "198.18.17.17");
	assert_int_equal(st.pkts, 11);
	assert_int_equal(st.ports_distinct, 1);
	assert_int_equal(st.syn, 0);
	assert_int_equal(total(s, KL_T_FRAGMENTS), 11);
	timed(s, "IPv4 non-first fragment, pass", fl.b, fl.len, XDP_PASS);
	deny4(s, "198.18.17.17", 0);
	assert_int_equal(run1(s, &fl), XDP_DROP);
	assert_int_equal(run1(s, &ff), XDP_DROP);
}

static void test_ipv4_options(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.18.18", 25, PKT_SYN);
	struct frame f;
	struct kl_src_stats st;

	sp.ip4_opt_len = 12; /* IHL 8 */
	f = build(&sp);
	assert_int_equal(f.b[14] & 0x0f, 8);
	assert_int_equal(run_n(s, f.b, f.len, 100), XDP_PASS);
	st = src4_must(s, "198.18.18.18");
	assert_int_equal(st.syn, 100);
	assert_int_equal(st.ports_distinct, 1);
	/* Maximum IHL (15): 40 bytes of options. */
	sp.ip4_opt_len = 40;
	f = build(&sp);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.18.18").syn, 101);
	assert_int_equal(total(s, KL_T_MALFORMED), 0);
	timed(s, "IPv4 with 40 bytes of options, pass", f.b, f.len, XDP_PASS);
}

static void expect_malformed(struct shield *s, const uint8_t *b, size_t len, __u64 *n)
{
	assert_int_equal(run_n(s, b, len, 1), XDP_PASS);
	(*n)++;
	assert_int_equal(total(s, KL_T_MALFORMED), *n);
	assert_int_equal(total(s, KL_T_PKTS), 0);
}

static void test_truncated_and_malformed(void **state)
{
	struct shield *s = *state;
	struct pkt_spec tcp = pkt_tcp4("198.18.19.19", 80, PKT_SYN);
	struct pkt_spec vl = tcp;
	struct pkt_spec v6 = pkt_tcp6("fd00:6b6c:19::19", 80, PKT_SYN);
	struct frame f, b;
	__u64 n = 0;
	__u32 k = ip4("198.18.19.19");
	struct kl_src_stats st;
	uint8_t tiny[10] = { 0 };

	tcp.payload = 0;
	f = build(&tcp); /* 14 + 20 + 20 */
	/* Frames shorter than Ethernet never reach XDP: test_run refuses. */
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = tiny, .data_size_in = sizeof(tiny));

		assert_int_not_equal(bpf_prog_test_run_opts(bpf_program__fd(s->progs.kl_shield), &o), 0);
	}
	/* Ethernet only, IPv4 ethertype: truncated IP header. */
	expect_malformed(s, f.b, 14, &n);
	/* IP header cut short. */
	expect_malformed(s, f.b, 14 + 19, &n);
	/* TCP header cut short (IP total length consistent: 30). */
	b = f;
	pkt_put16(b.b + 16, 30);
	expect_malformed(s, b.b, 14 + 30, &n);
	/* Frame cut inside TCP while the IP total length says 40. */
	expect_malformed(s, f.b, 14 + 30, &n);
	/* IP total length beyond the frame. */
	b = f;
	pkt_put16(b.b + 16, 200);
	expect_malformed(s, b.b, b.len, &n);
	/* Total length shorter than the header. */
	b = f;
	pkt_put16(b.b + 16, 16);
	expect_malformed(s, b.b, b.len, &n);
	/* Bad IHL (4 = 16-byte header). */
	b = f;
	b.b[14] = 0x44;
	expect_malformed(s, b.b, b.len, &n);
	/* IHL pointing past the frame (15 = 60 bytes, only 40 present). */
	b = f;
	b.b[14] = 0x4f;
	pkt_put16(b.b + 16, 40);
	expect_malformed(s, b.b, b.len, &n);
	/* Bad version in an IPv4 frame. */
	b = f;
	b.b[14] = 0x65;
	expect_malformed(s, b.b, b.len, &n);
	/* TCP data offset < 5. */
	b = f;
	b.b[14 + 20 + 12] = 0x40;
	expect_malformed(s, b.b, b.len, &n);
	/* VLAN tag cut short. */
	vl.nvlan = 1;
	vl.vlan_tpid[0] = PKT_TPID_8021Q;
	b = build(&vl);
	expect_malformed(s, b.b, 16, &n);
	/* IPv6: header cut short, payload length beyond the frame, bad ext. */
	b = build(&v6);
	expect_malformed(s, b.b, 14 + 39, &n);
	pkt_put16(b.b + 18, 1000);
	expect_malformed(s, b.b, b.len, &n);
	v6.next_ext = 1;
	v6.ext[0] = PKT_EXT_DEST;
	v6.ext_len8 = 4; /* 40-byte option header */
	v6.payload = 0;
	b = build(&v6);
	pkt_put16(b.b + 18, 8);
	expect_malformed(s, b.b, 14 + 40 + 8, &n);
	/* IPv6 version nibble wrong. */
	b = build(&v6);
	b.b[14] = 0x40;
	expect_malformed(s, b.b, b.len, &n);

	/* No per-source accounting for any of them. */
	assert_int_equal(slot_find(s, 4, &k, NULL), -1);
	assert_int_not_equal(src6(s, "fd00:6b6c:19::19", &st), 0);
	assert_int_equal(total(s, KL_T_SRC_NEW), 0);
	/* Malformed frames pass even from a denied source. */
	deny4(s, "198.18.19.19", 0);
	expect_malformed(s, f.b, 14 + 30, &n);
	assert_int_equal(run1(s, &f), XDP_DROP);
	timed(s, "malformed (TCP cut short)", f.b, 14 + 30, XDP_PASS);
}

static void test_non_ip(void **state)
{
	struct shield *s = *state;
	uint8_t arp[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
			    0, 1, 0x08, 0, 6, 4, 0, 1 };
	uint8_t vlan_arp[64] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1,
				 0x81, 0x00, 0, 5, 0x08, 0x06 };
	__u64 t[KL_T_MAX];

	assert_int_equal(run_n(s, arp, sizeof(arp), 100), XDP_PASS);
	assert_int_equal(run_n(s, vlan_arp, sizeof(vlan_arp), 1), XDP_PASS);
	totals(s, t);
	assert_int_equal(t[KL_T_NON_IP], 101);
	assert_int_equal(t[KL_T_PKTS], 0);
	assert_int_equal(t[KL_T_MALFORMED], 0);
	assert_int_equal(t[KL_T_PASS], 0);
	timed(s, "non-IP (ARP)", arp, sizeof(arp), XDP_PASS);
}

static void test_tcp_flag_counters(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.20.20";
	struct pkt_spec syn = pkt_tcp4(a, 443, PKT_SYN), synack = pkt_tcp4(a, 443, PKT_SYN | PKT_ACK);
	struct pkt_spec rst = pkt_tcp4(a, 443, PKT_RST), rstack = pkt_tcp4(a, 443, PKT_RST | PKT_ACK);
	struct pkt_spec ack = pkt_tcp4(a, 443, PKT_ACK), udp = pkt_udp4(a, 443);
	struct frame f;
	struct kl_src_stats st;

	f = build(&syn);
	run_n(s, f.b, f.len, 3);
	f = build(&synack);
	run_n(s, f.b, f.len, 2);
	f = build(&rst);
	run1(s, &f);
	f = build(&rstack);
	run1(s, &f);
	f = build(&ack);
	run_n(s, f.b, f.len, 5);
	f = build(&udp);
	f.b[14 + 20 + 13] = PKT_SYN; /* UDP bytes where TCP flags would be */
	run1(s, &f);
	st = src4_must(s, a);
	assert_int_equal(st.pkts, 13);
	assert_int_equal(st.syn, 3);
	assert_int_equal(st.synack, 2);
	assert_int_equal(st.rst, 2);
}

/* ---- scan signal ---- */

static unsigned port_slot(uint16_t p)
{
	return ((uint32_t)p * 2654435761u) >> (32 - 9);
}

static void test_scan_signal(void **state)
{
	struct shield *s = *state;
	struct kl_src_stats st;
	struct pkt_spec sp;
	struct frame f;
	unsigned char used[512] = { 0 };
	unsigned expect = 0, n = 100;
	__u64 w0 = 0;

	/* 100 sequential ports (TCP) -> ~100 distinct. The hash spreads them;
	 * the exact value is what the 512-slot map can hold. */
	for (unsigned i = 0; i < n; i++) {
		uint16_t port = (uint16_t)(1000 + i);

		sp = pkt_tcp4("198.18.21.21", port, PKT_SYN);
		f = build(&sp);
		assert_int_equal(run1(s, &f), XDP_PASS);
		if (!used[port_slot(port)]++)
			expect++;
	}
	st = src4_must(s, "198.18.21.21");
	assert_in_range(expect, n - 3, n); /* the hash itself does not alias much */
	if (st.port_window == st.first_seen_ns >> KL_PORT_WINDOW_SHIFT)
		assert_int_equal(st.ports_distinct, expect);
	else
		assert_in_range(st.ports_distinct, expect, n);

	/* Two alternating ports, 500 times: 2, not 1000 changes. */
	for (int i = 0; i < 1000; i++) {
		sp = pkt_udp4("198.18.21.22", i & 1 ? 80 : 443);
		f = build(&sp);
		if (i == 0)
			w0 = now_boot() >> KL_PORT_WINDOW_SHIFT;
		assert_int_equal(run1(s, &f), XDP_PASS);
	}
	assert_int_not_equal(port_slot(80), port_slot(443));
	st = src4_must(s, "198.18.21.22");
	if (st.port_window == w0)
		assert_int_equal(st.ports_distinct, 2);
	else
		assert_in_range(st.ports_distinct, 2, 4);

	/* A port seen again in a later window counts again (the signal is
	 * per window): force a window change by rewinding port_window. */
	__u32 k = ip4("198.18.21.22");

	st.port_window -= 1;
	src4_put(s, k, &st);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.21.22").ports_distinct, st.ports_distinct + 1);

	/* ICMP contributes no port. */
	sp = pkt_l4(4, "198.18.21.23", IPPROTO_ICMP, 0, 0);
	f = build(&sp);
	run_n(s, f.b, f.len, 10);
	assert_int_equal(src4_must(s, "198.18.21.23").ports_distinct, 0);
	timed(s, "ICMP echo, pass", f.b, f.len, XDP_PASS);
}

/* ---- events ---- */

struct ev_log {
	int n;
	struct kl_event ev[64];
};

static int on_event(void *ctx, void *data, size_t len)
{
	struct ev_log *l = ctx;

	assert_int_equal(len, sizeof(struct kl_event));
	if (l->n < 64)
		memcpy(&l->ev[l->n], data, sizeof(struct kl_event));
	l->n++;
	return 0;
}

static void test_events_sampling(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.22.22", 8080, PKT_SYN);
	struct frame f = build(&sp);
	struct ev_log log = { 0 };
	struct ring_buffer *rb;
	struct kl_cfg c;
	__u64 t[KL_T_MAX];
	__u32 a = ip4("198.18.22.22");

	rb = ring_buffer__new(bpf_map__fd(s->maps.kernloom_events), on_event, &log, NULL);
	assert_non_null(rb);
	deny4(s, "198.18.22.22", 0);

	/* Mask 0: nothing, not even counted as a candidate. */
	run_n(s, f.b, f.len, 10);
	assert_int_equal(ring_buffer__consume(rb), 0);
	totals(s, t);
	assert_int_equal(t[KL_T_EVENTS] + t[KL_T_EV_CANDIDATES] + t[KL_T_EVENTS_LOST], 0);

	/* Mask 1: every other candidate. A new source: 1 scan hint + 10 drops
	 * = 11 candidates (seq 0..10) -> 6 events; seq 0 is the scan hint. */
	c = cfg_get(s);
	c.sample_mask = 1;
	cfg_put(s, &c);
	sp = pkt_tcp4("198.18.22.23", 8080, PKT_SYN);
	f = build(&sp);
	deny4(s, "198.18.22.23", 0);
	a = ip4("198.18.22.23");
	/* Run on one CPU so one per-CPU sequence decides. */
	run_n(s, f.b, f.len, 10);
	ring_buffer__consume(rb);
	totals(s, t);
	assert_int_equal(t[KL_T_EV_CANDIDATES], 11);
	assert_int_equal(t[KL_T_EVENTS], 6);
	assert_int_equal(log.n, 6);
	assert_int_equal(log.ev[0].kind, KL_EV_SCAN_HINT);
	for (int i = 1; i < 6; i++)
		assert_int_equal(log.ev[i].kind, KL_EV_DROP_DENY);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(log.ev[i].family, 4);
		assert_memory_equal(log.ev[i].addr, &a, 4);
		assert_int_equal(log.ev[i].dport, 8080);
		assert_int_equal(log.ev[i].proto, IPPROTO_TCP);
		assert_int_equal(log.ev[i].pkt_len, f.len);
		assert_true(log.ev[i].ts_ns > 0);
	}
	ring_buffer__free(rb);
	timed(s, "deny + events (mask 1)", f.b, f.len, XDP_DROP);
}

static void test_events_ring_full(void **state)
{
	struct load_opts lo = { .ringbuf_bytes = 4096 };
	struct shield *s = load_shield(&lo);
	struct pkt_spec sp = pkt_udp4("198.18.23.23", 9);
	struct frame f = build(&sp);
	struct kl_cfg c = cfg_get(s);
	__u64 t[KL_T_MAX];

	(void)state;
	c.sample_mask = 1;
	cfg_put(s, &c);
	deny4(s, "198.18.23.23", 0);
	run_n(s, f.b, f.len, 1000); /* 1001 candidates -> 501 sampled */
	totals(s, t);
	assert_int_equal(t[KL_T_EV_CANDIDATES], 1001);
	assert_int_equal(t[KL_T_EVENTS] + t[KL_T_EVENTS_LOST], 501);
	assert_true(t[KL_T_EVENTS_LOST] > 0);
	assert_true(t[KL_T_EVENTS] > 0 && t[KL_T_EVENTS] * 48 <= 4096);
	shield__destroy(s);
}

/* ---- edge (tuple) enforcement, graph-enforce profile ---- */

/* As the enforcer writes an edge rule: summary bit, entry, generation. */
static void edge4(struct shield *s, struct bpf_map *m, const char *a, uint16_t port, uint8_t proto,
		  struct kl_rule r)
{
	struct kl_edge4_key k = { .src = ip4(a), .port = port, .proto = proto };

	bloom4(s, k.src);
	put(m, &k, &r);
	bump_gen(s);
}

static void set_edge_mode(struct shield *s, __u32 mode, __u32 eph)
{
	struct kl_cfg c = cfg_get(s);

	c.edge_mode = mode;
	c.ephemeral_min = eph;
	cfg_put(s, &c);
}

static int setup_edge(void **state)
{
	struct load_opts lo = { .flow = 1, .edge = 1 };

	*state = load_shield(&lo);
	return 0;
}

static void test_edge_deny_mode(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.24.24";
	struct pkt_spec ssh = pkt_tcp4(a, 22, PKT_SYN), web = pkt_tcp4(a, 443, PKT_SYN);
	struct frame fs = build(&ssh), fw = build(&web);
	struct kl_src_stats st;

	edge4(s, s->maps.kernloom_edge4_deny, a, 22, IPPROTO_TCP, rule(0, KL_ORIGIN_GRAPHD));
	edge4(s, s->maps.kernloom_edge4_deny, a, 443, IPPROTO_TCP,
	      rule(now_boot() - 1000000000ull, KL_ORIGIN_GRAPHD));
	/* Mode off: the edge deny map is not consulted. */
	assert_int_equal(run1(s, &fs), XDP_PASS);
	set_edge_mode(s, KL_EDGE_DENY, 0);
	assert_int_equal(run_n(s, fs.b, fs.len, 100), XDP_DROP);
	assert_int_equal(run_n(s, fw.b, fw.len, 100), XDP_PASS);
	st = src4_must(s, a);
	assert_int_equal(st.drop_edge, 100);
	assert_int_equal(st.pass, 101);
	assert_int_equal(total(s, KL_T_DROP_EDGE), 100);
	/* v6 */
	{
		struct kl_edge6_key k = { .port = 22, .proto = IPPROTO_TCP };
		struct kl_in6 x = ip6("fd00:6b6c:24::24");
		struct kl_rule r = rule(0, KL_ORIGIN_GRAPHD);
		struct pkt_spec p6 = pkt_tcp6("fd00:6b6c:24::24", 22, PKT_SYN);
		struct frame f6 = build(&p6);

		memcpy(k.src, x.addr, 16);
		put(s->maps.kernloom_edge6_deny, &k, &r);
		assert_int_equal(run1(s, &f6), XDP_DROP);
		assert_int_equal(src6_must(s, "fd00:6b6c:24::24").drop_edge, 1);
	}
	timed(s, "edge deny mode, hit", fs.b, fs.len, XDP_DROP);
	timed(s, "edge deny mode, expired entry", fw.b, fw.len, XDP_PASS);
}

static void test_edge_allow_mode(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.25.25";
	struct pkt_spec web = pkt_tcp4(a, 443, PKT_SYN), ssh = pkt_tcp4(a, 22, PKT_SYN);
	struct pkt_spec eph = pkt_udp4(a, 40000), icmp = pkt_l4(4, a, IPPROTO_ICMP, 0, 0);
	struct frame fw = build(&web), fs = build(&ssh), fe = build(&eph), fi = build(&icmp);
	struct kl_src_stats st;

	edge4(s, s->maps.kernloom_edge4_allow, a, 443, IPPROTO_TCP, rule(0, KL_ORIGIN_GRAPHD));
	edge4(s, s->maps.kernloom_edge4_allow, a, KL_PORT_EPHEMERAL, IPPROTO_UDP,
	      rule(0, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_ALLOW, KL_EPHEMERAL_MIN_DEFAULT);
	assert_int_equal(run_n(s, fw.b, fw.len, 100), XDP_PASS);
	assert_int_equal(run_n(s, fs.b, fs.len, 100), XDP_DROP);
	assert_int_equal(run1(s, &fe), XDP_PASS); /* 40000 folds to the ephemeral edge */
	assert_int_equal(run1(s, &fi), XDP_DROP); /* ICMP = port 0, not allowed */
	edge4(s, s->maps.kernloom_edge4_allow, a, 0, IPPROTO_ICMP, rule(0, KL_ORIGIN_GRAPHD));
	assert_int_equal(run1(s, &fi), XDP_PASS);
	st = src4_must(s, a);
	assert_int_equal(st.drop_edge, 101);
	assert_int_equal(st.pass, 102);
	timed(s, "edge allow mode, allowed", fw.b, fw.len, XDP_PASS);
	timed(s, "edge allow mode, miss", fs.b, fs.len, XDP_DROP);

	/* Without folding, 40000 is its own port and not allowed. */
	set_edge_mode(s, KL_EDGE_ALLOW, 0);
	assert_int_equal(run1(s, &fe), XDP_DROP);

	/* An expired allow no longer allows. Expiries are checked against a
	 * per-CPU clock that may lag one tick, hence "a second ago". */
	edge4(s, s->maps.kernloom_edge4_allow, a, 443, IPPROTO_TCP,
	      rule(now_boot() - 1000000000ull, KL_ORIGIN_GRAPHD));
	assert_int_equal(run1(s, &fw), XDP_DROP);

	/* Protected sources bypass edge rules. */
	lpm4(s->maps.kernloom_allow4_lpm, a, 32, rule(0, KL_ORIGIN_PROTECTED));
	bump_gen(s);
	assert_int_equal(run1(s, &fs), XDP_PASS);
}

static void test_edge_rate_limit(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.26.26";
	struct pkt_spec dns = pkt_udp4(a, 53), web = pkt_tcp4(a, 443, PKT_ACK);
	struct frame fd = build(&dns), fw = build(&web);
	struct kl_edge4_key k = { .src = ip4(a), .port = 53, .proto = IPPROTO_UDP };
	struct kl_rl_rule r = { .rate_pps = 1, .burst = 2, .origin = KL_ORIGIN_GRAPHD };
	struct kl_src_stats st;

	put(s->maps.kernloom_edge4_rl_policy, &k, &r);
	set_edge_mode(s, KL_EDGE_DENY, 0);
	assert_int_equal(run_n(s, fd.b, fd.len, 10), XDP_DROP);
	assert_int_equal(run_n(s, fw.b, fw.len, 10), XDP_PASS); /* other tuple unaffected */
	st = src4_must(s, a);
	assert_int_equal(st.drop_edge, 8);
	assert_int_equal(st.pass, 12);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_edge4_rl_policy), &k, &r), 0);
	assert_true(r.tat_ns > now_boot()); /* bucket state kept in the rule */

	/* Also in allow mode, for an allowed tuple. */
	edge4(s, s->maps.kernloom_edge4_allow, a, 53, IPPROTO_UDP, rule(0, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_ALLOW, 0);
	assert_int_equal(run1(s, &fd), XDP_DROP);
	assert_int_equal(src4_must(s, a).drop_edge, 9);
	timed(s, "edge RL, drop", fd.b, fd.len, XDP_DROP);
}

/* With kl_feat_edge = 0 the edge code does not exist: mode and rules are
 * ignored. */
static void test_edge_feature_off(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.27.27";
	struct pkt_spec ssh = pkt_tcp4(a, 22, PKT_SYN);
	struct frame fs = build(&ssh);

	edge4(s, s->maps.kernloom_edge4_deny, a, 22, IPPROTO_TCP, rule(0, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_ALLOW, 0);
	assert_int_equal(run1(s, &fs), XDP_PASS);
	set_edge_mode(s, KL_EDGE_DENY, 0);
	assert_int_equal(run1(s, &fs), XDP_PASS);
	assert_int_equal(src4_must(s, a).drop_edge, 0);
}

/* ---- flow telemetry ---- */

/* A flow's bucket as the data plane computes it: the source's keyed hash
 * (the seed in kernloom_cfg), the tuple, kl_flow_mask. */
static __u32 flow_base(struct shield *s, int fam, const void *addr, __u16 port, __u8 proto)
{
	struct kl_cfg c = cfg_get(s);
	__u32 tuple = kl_flow_tuple((__u8)fam, proto, port);
	__u64 h, w0, w1;
	__u32 a4;

	if (fam == 4) {
		memcpy(&a4, addr, 4);
		h = kl_src_hash4(a4, c.src_seed);
	} else {
		memcpy(&w0, addr, 8);
		memcpy(&w1, (const __u8 *)addr + 8, 8);
		h = kl_src_hash6w(w0, w1, c.src_seed);
	}
	return kl_flow_bucket(h, tuple, s->rodata->kl_flow_mask);
}

static struct bpf_map *flow_map(struct shield *s, int fam)
{
	return fam == 4 ? s->maps.kernloom_flow4_stats : s->maps.kernloom_flow6_stats;
}

/* A flow's slot, searched in the whole array: it must be in its own
 * bucket and hold the flow at most once. Slot index, or -1. */
static int flow_find(struct shield *s, int fam, const void *addr, __u16 port, __u8 proto,
		     struct kl_flow_slot *out)
{
	struct bpf_map *m = flow_map(s, fam);
	__u32 n = bpf_map__max_entries(m), tuple = kl_flow_tuple((__u8)fam, proto, port);
	__u8 o[16] = { 0 };
	int found = -1;

	memcpy(o, addr, fam == 4 ? 4 : 16);
	for (__u32 k = 0; k < n; k++) {
		struct kl_flow_slot sl;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(m), &k, &sl), 0);
		if (!sl.seq || (sl.seq & 1) || sl.tuple != tuple || memcmp(sl.src, o, 16))
			continue;
		assert_int_equal(found, -1);
		assert_int_equal(k / KL_FLOW_WAYS * KL_FLOW_WAYS,
				 flow_base(s, fam, addr, port, proto));
		found = (int)k;
		if (out)
			*out = sl;
	}
	return found;
}

/* Claimed flow slots of a family. */
static int flow_count(struct shield *s, int fam)
{
	struct bpf_map *m = flow_map(s, fam);
	__u32 n = bpf_map__max_entries(m);
	int c = 0;

	for (__u32 k = 0; k < n; k++) {
		struct kl_flow_slot sl;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(m), &k, &sl), 0);
		c += sl.seq && !(sl.seq & 1) && sl.family == fam;
	}
	return c;
}

static struct kl_flow_stats flow4_must(struct shield *s, const char *a, __u16 port, __u8 proto)
{
	__u32 k = ip4(a);
	struct kl_flow_slot sl;

	assert_true(flow_find(s, 4, &k, port, proto, &sl) >= 0);
	return sl.s;
}

static void test_flow_telemetry(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.28.28";
	struct pkt_spec web = pkt_tcp4(a, 443, PKT_ACK), dns = pkt_udp4(a, 53);
	struct pkt_spec eph = pkt_udp4(a, 50000), w6 = pkt_tcp6("fd00:6b6c:28::28", 443, PKT_ACK);
	struct frame fw = build(&web), fd = build(&dns), fe = build(&eph), f6 = build(&w6);
	struct kl_in6 x = ip6("fd00:6b6c:28::28");
	struct kl_flow_slot sl;
	struct kl_flow_stats fs;
	__u64 t0 = now_boot();

	set_edge_mode(s, KL_EDGE_OFF, KL_EPHEMERAL_MIN_DEFAULT);
	run_n(s, fw.b, fw.len, 3);
	run_n(s, fd.b, fd.len, 2);
	run1(s, &fe);
	run1(s, &f6);
	fs = flow4_must(s, a, 443, IPPROTO_TCP);
	assert_int_equal(fs.pkts, 3);
	assert_int_equal(fs.bytes, 3 * fw.len);
	assert_true(fs.first_seen_ns >= t0 && fs.last_seen_ns >= fs.first_seen_ns);
	assert_int_equal(flow4_must(s, a, 53, IPPROTO_UDP).pkts, 2);
	assert_int_equal(flow4_must(s, a, KL_PORT_EPHEMERAL, IPPROTO_UDP).pkts, 1);
	assert_int_equal(flow_count(s, 4), 3);
	assert_true(flow_find(s, 6, x.addr, 443, IPPROTO_TCP, &sl) >= 0);
	assert_int_equal(sl.s.pkts, 1);
	assert_int_equal(sl.s.bytes, f6.len);
	assert_int_equal(flow_count(s, 6), 1);

	/* Dropped packets are recorded too: graphd must see unknown edges. */
	deny4(s, a, 0);
	run1(s, &fw);
	assert_int_equal(flow4_must(s, a, 443, IPPROTO_TCP).pkts, 4);
	timed(s, "graph-enforce flows, deny", fw.b, fw.len, XDP_DROP);
}

static __u64 flow4_pkts(struct shield *s, const char *a, __u16 port, __u8 proto)
{
	__u32 k = ip4(a);
	struct kl_flow_slot sl;

	if (flow_find(s, 4, &k, port, proto, &sl) < 0)
		return 0;
	return sl.s.pkts;
}

/* Ports of source a whose UDP flows share one bucket (brute force over the
 * ports, fine for a small table). */
static int same_bucket_ports(struct shield *s, const char *a, __u16 *ports, int want)
{
	__u32 k = ip4(a), b = flow_base(s, 4, &k, 1000, IPPROTO_UDP);
	int n = 0;

	ports[n++] = 1000;
	for (__u32 p = 1001; p < 30000 && n < want; p++)
		if (flow_base(s, 4, &k, (__u16)p, IPPROTO_UDP) == b)
			ports[n++] = (__u16)p;
	return n;
}

/* Four ways per bucket: four flows of one bucket all keep their slots; a
 * fifth takes the slot of the one seen least recently, whose counts restart
 * (fresh first_seen) when it returns. A way being claimed by another CPU
 * (odd sequence word) is never taken. */
static void test_flow_slots_rob(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.30.30";
	__u16 port[6];
	struct frame f[6];
	struct kl_flow_stats fs;
	__u64 t1;

	assert_int_equal(same_bucket_ports(s, a, port, 6), 6);
	for (int i = 0; i < 6; i++) {
		struct pkt_spec sp = pkt_udp4(a, port[i]);

		f[i] = build(&sp);
	}
	set_edge_mode(s, KL_EDGE_OFF, KL_EPHEMERAL_MIN_DEFAULT);
	for (int i = 0; i < 4; i++)
		assert_int_equal(run_n(s, f[i].b, f[i].len, (__u32)(i + 1)), XDP_PASS);
	for (int i = 0; i < 4; i++)
		assert_int_equal(flow4_pkts(s, a, port[i], IPPROTO_UDP), (__u64)(i + 1));
	/* The data plane's clock moves by jiffies: let it move, then see
	 * flows 0, 2 and 3 again, so flow 1 is the least recent. */
	usleep(30000);
	for (int i = 0; i < 4; i++)
		if (i != 1)
			run1(s, &f[i]);
	t1 = now_boot();
	usleep(30000);
	run1(s, &f[4]);
	assert_int_equal(flow4_pkts(s, a, port[1], IPPROTO_UDP), 0);
	fs = flow4_must(s, a, port[4], IPPROTO_UDP);
	assert_int_equal(fs.pkts, 1);
	assert_true(fs.first_seen_ns >= t1);
	assert_int_equal(flow4_pkts(s, a, port[0], IPPROTO_UDP), 2);
	assert_int_equal(flow4_pkts(s, a, port[2], IPPROTO_UDP), 4);
	assert_int_equal(flow4_pkts(s, a, port[3], IPPROTO_UDP), 5);
	assert_int_equal(flow_count(s, 4), 4);

	/* Flow 1 returns: it robs the least recent (flow 0, seen before t1)
	 * and starts from 1. */
	usleep(30000);
	run1(s, &f[1]);
	assert_int_equal(flow4_pkts(s, a, port[1], IPPROTO_UDP), 1);
	assert_int_equal(flow4_pkts(s, a, port[0], IPPROTO_UDP), 0);

	/* A way mid-claim (odd seq, no tuple yet) is skipped: mark every way
	 * but one as being claimed; the new flow takes the one left. */
	__u32 k4 = ip4(a), base = flow_base(s, 4, &k4, port[5], IPPROTO_UDP);
	int fd = bpf_map__fd(s->maps.kernloom_flow4_stats), kept = flow_find(s, 4, &k4, port[3],
									       IPPROTO_UDP, NULL);
	assert_true(kept >= 0);
	for (__u32 w = 0; w < KL_FLOW_WAYS; w++) {
		__u32 k = base + w;
		struct kl_flow_slot busy = { .seq = 7 };

		if (k != (__u32)kept)
			assert_int_equal(bpf_map_update_elem(fd, &k, &busy, BPF_ANY), 0);
	}
	usleep(30000);
	run1(s, &f[5]);
	assert_int_equal(flow4_pkts(s, a, port[5], IPPROTO_UDP), 1);
	assert_int_equal(flow_find(s, 4, &k4, port[5], IPPROTO_UDP, NULL), kept);
	/* Every way busy: the packet passes, its flow goes unrecorded. */
	{
		struct kl_flow_slot busy = { .seq = 9 };
		__u32 k = (__u32)kept;

		assert_int_equal(bpf_map_update_elem(fd, &k, &busy, BPF_ANY), 0);
	}
	assert_int_equal(run1(s, &f[2]), XDP_PASS);
	assert_int_equal(flow_count(s, 4), 0);
}

/* A throttled source's drops on the tuple whose flow it last recorded skip
 * the flow table; every tuple it tries is still recorded. */
static void test_flow_throttled(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.29.29", *b = "198.18.29.30";
	struct pkt_spec dns = pkt_udp4(a, 53), web = pkt_tcp4(a, 443, PKT_ACK);
	struct pkt_spec bweb = pkt_tcp4(b, 443, PKT_ACK), bssh = pkt_tcp4(b, 22, PKT_ACK);
	struct frame fd = build(&dns), fw = build(&web), fbw = build(&bweb), fbs = build(&bssh);
	struct kl_src_stats st;

	set_edge_mode(s, KL_EDGE_OFF, KL_EPHEMERAL_MIN_DEFAULT);
	rl4(s, a, 0, 0, 0); /* every packet dropped */
	assert_int_equal(run_n(s, fd.b, fd.len, 5), XDP_DROP);
	assert_int_equal(flow4_pkts(s, a, 53, IPPROTO_UDP), 1);
	assert_int_equal(run1(s, &fw), XDP_DROP); /* a new tuple is recorded */
	assert_int_equal(flow4_pkts(s, a, 443, IPPROTO_TCP), 1);
	assert_int_equal(run_n(s, fd.b, fd.len, 3), XDP_DROP); /* and a return to the old one */
	assert_int_equal(flow4_pkts(s, a, 53, IPPROTO_UDP), 2);
	st = src4_must(s, a);
	assert_int_equal(st.pkts, 9);
	assert_int_equal(st.drop_rl, 9);
	assert_int_equal(total(s, KL_T_DROP_RL), 9);

	/* Other drops are all recorded (test_flow_telemetry: deny). Under edge
	 * enforcement the tuple a throttled source passed on counts as
	 * recorded: burst 1, so the first packet passes (edge allowed), the
	 * rest are throttled. */
	edge4(s, s->maps.kernloom_edge4_allow, b, 443, IPPROTO_TCP, rule(0, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_ALLOW, KL_EPHEMERAL_MIN_DEFAULT);
	rl4(s, b, 1, 1, 0);
	assert_int_equal(run1(s, &fbw), XDP_PASS);
	assert_int_equal(run_n(s, fbw.b, fbw.len, 4), XDP_DROP);
	assert_int_equal(flow4_pkts(s, b, 443, IPPROTO_TCP), 1);
	assert_int_equal(run1(s, &fbs), XDP_DROP); /* throttled before the edge check */
	assert_int_equal(flow4_pkts(s, b, 22, IPPROTO_TCP), 1);
	st = src4_must(s, b);
	assert_int_equal(st.pass, 1);
	assert_int_equal(st.drop_rl, 5);
	timed(s, "graph-enforce flows, throttled", fbs.b, fbs.len, XDP_DROP);
}

static void test_flow_profiles(void **state)
{
	struct pkt_spec web = pkt_tcp4("198.18.29.29", 443, PKT_ACK);
	struct frame fw = build(&web);
	struct load_opts off = { 0 }, on = { .flow = 1 };
	struct shield *s;

	(void)state;
	/* iq-learning / light: no flow telemetry. */
	s = load_shield(&off);
	run_n(s, fw.b, fw.len, 5);
	assert_int_equal(flow_count(s, 4), 0);
	shield__destroy(s);
	/* graph-learning: flows, but no edge enforcement. */
	s = load_shield(&on);
	edge4(s, s->maps.kernloom_edge4_deny, "198.18.29.29", 443, IPPROTO_TCP,
	      rule(0, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_DENY, 0);
	assert_int_equal(run_n(s, fw.b, fw.len, 5), XDP_PASS);
	assert_int_equal(flow_count(s, 4), 1);
	timed(s, "graph-learning flows, pass", fw.b, fw.len, XDP_PASS);
	shield__destroy(s);
}

/* A disabled feature costs nothing: the verifier removes its code, so the
 * translated program grows with each profile. */
static __u32 xlated_len(const struct load_opts *lo)
{
	struct shield *s = load_shield(lo);
	struct bpf_prog_info info;
	__u32 n = sizeof(info);

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(bpf_program__fd(s->progs.kl_shield), &info, &n), 0);
	shield__destroy(s);
	return info.xlated_prog_len;
}

static void test_feature_off_removes_code(void **state)
{
	struct load_opts iq = { 0 }, gl = { .flow = 1 }, ge = { .flow = 1, .edge = 1 };
	struct load_opts edge_only = { .edge = 1 };
	__u32 a = xlated_len(&iq), b = xlated_len(&gl), c = xlated_len(&ge);
	__u32 d = xlated_len(&edge_only);

	(void)state;
	printf("[ FIXTURE  ] xlated insns: iq-learning %u, graph-learning %u, graph-enforce %u\n",
	       a / 8, b / 8, c / 8);
	assert_true(a < b && b < c);
	assert_true(a < d && d < c);
}


/* ---- source slots ---- */

/* A table of two buckets (8 slots): every source has both as its choices,
 * so any nine sources overflow it. */
#define TINY_SLOTS (2 * KL_SRC_WAYS)

static int setup_tiny(void **state)
{
	struct load_opts lo = { .src_slots = TINY_SLOTS };

	*state = load_shield(&lo);
	return 0;
}

/* n IPv4 addresses 198.18.40.1.. */
static void addrs4(__u32 *out, int n, char txt[][INET_ADDRSTRLEN])
{
	for (int i = 0; i < n; i++) {
		snprintf(txt[i], INET_ADDRSTRLEN, "198.18.40.%u", (unsigned)(i + 1) % 256);
		out[i] = ip4(txt[i]);
	}
}

static struct frame frame4(const char *a)
{
	struct pkt_spec sp = pkt_udp4(a, 53);

	return build(&sp);
}

/* Nine sources into the eight slots of their two buckets: the ninth takes
 * the slot of the least recently seen, whose next packet claims again from
 * zero. */
static void test_bucket_overflow_evicts_oldest(void **state)
{
	struct shield *s = *state;
	const int ns = TINY_SLOTS + 1;
	char t[TINY_SLOTS + 1][INET_ADDRSTRLEN];
	__u32 a[TINY_SLOTS + 1];
	struct kl_src_stats st;
	struct frame f;
	__u64 sent = 0;
	int slot0;

	addrs4(a, ns, t);
	for (int i = 0; i < ns - 1; i++) {
		f = frame4(t[i]);
		run_n(s, f.b, f.len, (__u32)(i + 1));
		sent += (__u64)(i + 1);
	}
	/* Age them explicitly (the cached clock moves only per jiffy): t[1]
	 * is the least recently seen, then t[0]. */
	for (int i = 0; i < ns - 1; i++) {
		st = src4_must(s, t[i]);
		st.last_seen_ns = 1000 + (i == 1 ? 0 : 10 * (__u64)(i + 1));
		src4_put(s, a[i], &st);
	}
	slot0 = slot_find(s, 4, &a[1], NULL);
	assert_true(slot0 >= 0);
	f = frame4(t[ns - 1]);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(slot_find(s, 4, &a[ns - 1], NULL), slot0);
	assert_int_equal(slot_find(s, 4, &a[1], NULL), -1);
	for (int i = 0; i < ns - 1; i++)
		if (i != 1)
			assert_int_equal(src4_must(s, t[i]).pkts, (__u64)(i + 1));
	st = src4_must(s, t[ns - 1]);
	assert_int_equal(st.pkts, 1);
	assert_int_equal(total(s, KL_T_SRC_NEW), ns);

	/* The robbed source restarts: fresh first_seen, counters from zero,
	 * in the slot now least recently seen (t[0]'s). */
	__u64 before = now_boot();

	slot0 = slot_find(s, 4, &a[0], NULL);
	f = frame4(t[1]);
	assert_int_equal(run1(s, &f), XDP_PASS);
	st = src4_must(s, t[1]);
	assert_int_equal(st.pkts, 1);
	assert_true(st.first_seen_ns + 20000000ull >= before); /* cached clock: a jiffy late */
	assert_int_equal(slot_find(s, 4, &a[1], NULL), slot0);
	assert_int_equal(slot_find(s, 4, &a[0], NULL), -1);
	assert_int_equal(total(s, KL_T_SRC_NEW), ns + 1);
	assert_int_equal(total(s, KL_T_PKTS), sent + 2);

	timed(s, "2-choice, known source after a claim", f.b, f.len, XDP_PASS);
}

/* A deny verdict is cached in the slot; the slot's next owner starts from
 * zeroed stats and is judged on its own. */
static void test_verdict_not_inherited(void **state)
{
	struct shield *s = *state;
	const int ns = TINY_SLOTS + 1;
	char t[TINY_SLOTS + 1][INET_ADDRSTRLEN];
	__u32 a[TINY_SLOTS + 1];
	struct kl_src_stats st;
	struct frame f;
	int slot;

	addrs4(a, ns, t);
	deny4(s, t[0], 0);
	f = frame4(t[0]);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_true(src4_must(s, t[0]).verdict & KL_V_DENIED);
	for (int i = 1; i < ns - 1; i++) {
		f = frame4(t[i]);
		assert_int_equal(run1(s, &f), XDP_PASS);
	}
	for (int i = 0; i < ns - 1; i++) {
		st = src4_must(s, t[i]);
		st.last_seen_ns = 1000 + (__u64)i; /* t[0] oldest */
		src4_put(s, a[i], &st);
	}
	slot = slot_find(s, 4, &a[0], NULL);
	f = frame4(t[ns - 1]);
	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(slot_find(s, 4, &a[ns - 1], NULL), slot);
	st = src4_must(s, t[ns - 1]);
	assert_false(st.verdict & KL_V_DENIED);
	assert_int_equal(st.drop_deny, 0);
	assert_int_equal(st.pass, 1);
	/* And the denied source, back, is denied again in its new slot. */
	f = frame4(t[0]);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_true(src4_must(s, t[0]).verdict & KL_V_DENIED);
	timed(s, "two-choice buckets, denied source", f.b, f.len, XDP_DROP);
}

/* IPv6 owners are compared on all 16 bytes: addresses that share the
 * table's only two buckets and one half of their bits are told apart. */
static void test_v6_owner_compare(void **state)
{
	struct shield *s = *state;
	const char *txt[3] = { "fd00:6b6c:1::1", "fd00:6b6c:1::2", "fd00:6b6c:2::1" };

	for (int i = 0; i < 3; i++) {
		struct pkt_spec sp = pkt_udp6(txt[i], 53);
		struct frame f = build(&sp);

		run_n(s, f.b, f.len, (__u32)(10 * (i + 1)));
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(src6_must(s, txt[i]).pkts, 10ull * (__u64)(i + 1));
	assert_int_equal(total(s, KL_T_SRC_NEW), 3);
	struct pkt_spec sp = pkt_udp6(txt[2], 53);
	struct frame f = build(&sp);

	timed(s, "two-choice buckets, known source v6", f.b, f.len, XDP_PASS);
}

/* ---- pinning ---- */

static const char *const pin_names[] = {
	KL_MAP_CFG, KL_MAP_TOTALS, KL_MAP_EVENTS, KL_MAP_SRC4, KL_MAP_SRC6,
	KL_MAP_ALLOW4, KL_MAP_ALLOW6, KL_MAP_DENY4, KL_MAP_DENY6, KL_MAP_DENY4_LPM,
	KL_MAP_DENY6_LPM, KL_MAP_RL4, KL_MAP_RL6, KL_MAP_FLOW4, KL_MAP_FLOW6,
	KL_MAP_EDGE4_DENY, KL_MAP_EDGE6_DENY, KL_MAP_EDGE4_ALLOW, KL_MAP_EDGE6_ALLOW,
	KL_MAP_EDGE4_RL, KL_MAP_EDGE6_RL, KL_MAP_POLICY_BLOOM,
};
#define N_PINS (sizeof(pin_names) / sizeof(pin_names[0]))

struct pin_dir {
	char dir[64];
};

/* A private directory on the test's own bpffs (tests/bpffs.h, mounted in
 * main). The teardown removes it even when the test failed half-way. */
static int setup_pin_dir(void **state)
{
	static struct pin_dir pd;

	memset(&pd, 0, sizeof(pd));
	snprintf(pd.dir, sizeof(pd.dir), KL_TEST_BPFFS "/kl-h1-test-%d", (int)getpid());
	if (mkdir(pd.dir, 0700) != 0) {
		fprintf(stderr, "mkdir %s: %s\n", pd.dir, strerror(errno));
		return -1;
	}
	*state = &pd;
	return 0;
}

static int teardown_pin_dir(void **state)
{
	struct pin_dir *pd = *state;
	char path[160];

	for (size_t i = 0; i < N_PINS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pd->dir, pin_names[i]);
		unlink(path);
	}
	if (rmdir(pd->dir) != 0) {
		fprintf(stderr, "rmdir %s: %s\n", pd->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void test_pins_by_name_and_reuse(void **state)
{
	struct pin_dir *pd = *state;
	struct load_opts lo = { .pin_root = pd->dir };
	struct pkt_spec sp = pkt_udp4("198.18.30.30", 53);
	struct frame f = build(&sp);
	char path[160];
	struct shield *s;

	s = load_shield(&lo);
	run_n(s, f.b, f.len, 7);
	deny4(s, "198.18.30.31", 0);
	shield__destroy(s);
	for (size_t i = 0; i < N_PINS; i++) {
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", pd->dir, pin_names[i]);
		if (stat(path, &sb) != 0)
			fail_msg("missing pin %s", path);
	}
	/* A second load reuses the pins: counters and rules survive. */
	s = load_shield(&lo);
	assert_int_equal(src4_must(s, "198.18.30.30").pkts, 7);
	sp = pkt_udp4("198.18.30.31", 53);
	f = build(&sp);
	assert_int_equal(run1(s, &f), XDP_DROP);
	assert_int_equal(total(s, KL_T_PKTS), 8);
	shield__destroy(s);
}

/* ---- concurrency ---- */

struct worker {
	int prog, cpu;
	const uint8_t *pkt;
	size_t len;
	__u32 repeat;
	pthread_barrier_t *bar;
	int err;
	/* Optional: instead, `rounds` times each of frames[0..nframes). */
	const struct frame *frames;
	int nframes, rounds;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	w->err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(w->bar);
	if (!w->err && w->frames) {
		for (int r = 0; r < w->rounds && !w->err; r++) {
			for (int i = 0; i < w->nframes && !w->err; i++) {
				LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = w->frames[i].b,
					    .data_size_in = (__u32)w->frames[i].len, .repeat = 1);

				w->err = bpf_prog_test_run_opts(w->prog, &o) ? errno : 0;
			}
		}
	} else if (!w->err) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = w->pkt, .data_size_in = (__u32)w->len,
			    .repeat = w->repeat);

		w->err = bpf_prog_test_run_opts(w->prog, &o) ? errno : 0;
	}
	return NULL;
}

/* Runs on CPU 0 and CPU 1 at once; returns seconds. */
static double run_workers(struct worker w[2])
{
	pthread_barrier_t bar;
	pthread_t th[2];
	__u64 t0, t1;

	pthread_barrier_init(&bar, NULL, 3);
	for (int i = 0; i < 2; i++) {
		w[i].cpu = i;
		w[i].bar = &bar;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	t0 = now_boot();
	pthread_barrier_wait(&bar);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	t1 = now_boot();
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < 2; i++)
		assert_int_equal(w[i].err, 0);
	return (double)(t1 - t0) / 1e9;
}

/* Runs repeat packets of fa on CPU 0 and of fb on CPU 1 at once. */
static double run_two_cpus2(struct shield *s, const struct frame *fa, const struct frame *fb,
			    __u32 repeat)
{
	struct worker w[2] = {
		{ .prog = bpf_program__fd(s->progs.kl_shield), .pkt = fa->b, .len = fa->len,
		  .repeat = repeat },
		{ .prog = bpf_program__fd(s->progs.kl_shield), .pkt = fb->b, .len = fb->len,
		  .repeat = repeat },
	};

	return run_workers(w);
}

static double run_two_cpus(struct shield *s, const struct frame *f, __u32 repeat)
{
	return run_two_cpus2(s, f, f, repeat);
}

/* Flow slots on two CPUs: a new flow hit by both from its first packet
 * gets one slot and every packet (the losing claim waits for the winner's);
 * flows that rob each other's ways on both CPUs never end up twice in a
 * bucket, and no flow counts more packets than it was sent. */
static void test_two_cpus_flows(void **state)
{
	struct load_opts lo = { .flow = 1, .flow_slots = 64 };
	struct shield *s = load_shield(&lo);
	const __u32 n = 200000;
	const char *a = "198.18.32.32";
	struct pkt_spec sp = pkt_udp4(a, 53);
	struct frame f = build(&sp), many[6];
	struct kl_flow_stats fs;
	__u32 k = ip4(a);
	__u64 sum = 0;

	(void)state;
	if (libbpf_num_possible_cpus() < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		shield__destroy(s);
		skip();
	}
	run_two_cpus(s, &f, n);
	fs = flow4_must(s, a, 53, IPPROTO_UDP);
	assert_int_equal(fs.pkts, 2ull * n);
	assert_int_equal(fs.bytes, 2ull * n * f.len);

	/* Six flows of one bucket on both CPUs: they keep robbing each
	 * other's four ways. */
	__u16 port[6];
	assert_int_equal(same_bucket_ports(s, a, port, 6), 6);
	for (int i = 0; i < 6; i++) {
		struct pkt_spec m = pkt_udp4(a, port[i]);

		many[i] = build(&m);
	}
	struct worker w[2] = {
		{ .prog = bpf_program__fd(s->progs.kl_shield), .frames = many, .nframes = 6,
		  .rounds = 5000 },
		{ .prog = bpf_program__fd(s->progs.kl_shield), .frames = many, .nframes = 6,
		  .rounds = 5000 },
	};
	int held = 0;
	run_workers(w);
	for (int i = 0; i < 6; i++) {
		struct kl_flow_slot sl;

		if (flow_find(s, 4, &k, port[i], IPPROTO_UDP, &sl) < 0)
			continue;
		held++;
		assert_true(sl.s.pkts >= 1 && sl.s.pkts <= 2 * 5000);
		sum += sl.s.pkts;
	}
	assert_in_range(held, 1, KL_FLOW_WAYS);
	printf("[ FIXTURE  ] two CPUs, 6 flows robbing one bucket: %d held at the end, %llu of "
	       "%u packets since their last claims\n",
	       held, (unsigned long long)sum, 2 * 5000 * 6);
	shield__destroy(s);
}

static void test_two_cpus_no_lost_update(void **state)
{
	struct shield *s = *state;
	const __u32 n = 1000000;
	struct pkt_spec a = pkt_tcp4("198.18.31.31", 443, PKT_SYN);
	struct pkt_spec b = pkt_udp4("198.18.31.32", 53);
	struct frame fa = build(&a), fb = build(&b);
	struct kl_src_stats st;
	double secs;
	__u64 t[KL_T_MAX];

	if (libbpf_num_possible_cpus() < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip();
	/* Counters: a new source hit by both CPUs from its first packet. */
	secs = run_two_cpus(s, &fa, n);
	st = src4_must(s, "198.18.31.31");
	printf("[ FIXTURE  ] two CPUs x %u pkts: %.3f s\n", n, secs);
	assert_int_equal(st.pkts, 2ull * n);
	assert_int_equal(st.bytes, 2ull * n * fa.len);
	assert_int_equal(st.syn, 2ull * n);
	assert_int_equal(st.pass, 2ull * n);
	/* One port: exactly one distinct, unless the run crossed a window. */
	if (st.port_window == st.first_seen_ns >> KL_PORT_WINDOW_SHIFT)
		assert_int_equal(st.ports_distinct, 1);
	else
		assert_in_range(st.ports_distinct, 2, 3);
	totals(s, t);
	assert_int_equal(t[KL_T_PKTS], 2ull * n);
	assert_int_equal(t[KL_T_SRC_NEW], 1);

	/* Tokens: 1 pps, burst 1000, shared by both CPUs. */
	rl4(s, "198.18.31.32", 1, 1000, 0);
	secs = run_two_cpus(s, &fb, n);
	st = src4_must(s, "198.18.31.32");
	printf("[ FIXTURE  ] two CPUs RL: pass=%llu drop_rl=%llu in %.3f s\n",
	       (unsigned long long)st.pass, (unsigned long long)st.drop_rl, secs);
	assert_int_equal(st.pkts, 2ull * n);
	assert_int_equal(st.pass + st.drop_rl, 2ull * n);
	assert_true(st.pass >= 1000);
	assert_true(st.pass <= 1000 + (__u64)secs + 1);
}

/* Two CPUs claim into one bucket pair at once: each source gets its own
 * slot and every packet is counted in it; then ten sources, five per CPU,
 * rob each other in the table's eight slots for a while: a slot always
 * holds one owner's counters, and no owner holds two slots. */
static void test_two_cpus_one_bucket(void **state)
{
	struct shield *s = *state;
	const __u32 n = 300000;
	const int rounds = 2000, ns = 10;
	char t[10][INET_ADDRSTRLEN];
	struct frame fr[10];
	__u32 a[10];
	int ka, kb;

	if (libbpf_num_possible_cpus() < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip();
	addrs4(a, ns, t);
	for (int i = 0; i < ns; i++)
		fr[i] = frame4(t[i]);
	run_two_cpus2(s, &fr[0], &fr[1], n);
	ka = slot_find(s, 4, &a[0], NULL);
	kb = slot_find(s, 4, &a[1], NULL);
	assert_true(ka >= 0 && kb >= 0 && ka != kb);
	assert_int_equal(src4_must(s, t[0]).pkts, n);
	assert_int_equal(src4_must(s, t[1]).pkts, n);
	assert_int_equal(total(s, KL_T_SRC_NEW), 2);

	struct worker w[2] = {
		{ .prog = bpf_program__fd(s->progs.kl_shield), .frames = &fr[0], .nframes = 5,
		  .rounds = rounds },
		{ .prog = bpf_program__fd(s->progs.kl_shield), .frames = &fr[5], .nframes = 5,
		  .rounds = rounds },
	};
	double secs = run_workers(w);
	__u64 sum = 0;
	int owner_of[TINY_SLOTS];

	for (int i = 0; i < TINY_SLOTS; i++) {
		__u32 k = (__u32)i;
		struct kl_src_slot sl;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_src4_stats), &k,
						     &sl),
				 0);
		assert_true(sl.seq != 0 && !(sl.seq & 1));
		owner_of[i] = -1;
		for (int j = 0; j < ns; j++)
			if (sl.family == 4 && sl.owner4 == a[j])
				owner_of[i] = j;
		assert_true(owner_of[i] >= 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(owner_of[i], owner_of[j]);
		/* One owner's packets only: never more than it sent, give or
		 * take the other CPU's packet in flight when the slot was
		 * reset (see the contract in bpf/shield.bpf.c). */
		__u64 cap = (__u64)rounds + (owner_of[i] < 2 ? n : 0) + 1;
		assert_true(sl.s.pkts <= cap);
		assert_true(sl.s.pass <= sl.s.pkts + 1 && sl.s.pkts <= sl.s.pass + 1);
		sum += sl.s.pkts;
	}
	assert_true(total(s, KL_T_SRC_NEW) >= (__u64)ns);
	assert_true(sum <= total(s, KL_T_PKTS));
	printf("[ FIXTURE  ] two CPUs, %d sources robbing 8 slots: %d pkts in %.3f s, %llu claims\n",
	       ns, ns * rounds, secs, (unsigned long long)total(s, KL_T_SRC_NEW));
	timed(s, "two-choice buckets, known source", fr[ns - 1].b, fr[ns - 1].len, XDP_PASS);
}

/* graph-enforce: a known source's last tuple verdict is cached in its slot;
 * a write the enforcer announces (generation bump) undoes it at once, and
 * an allow rule's own expiry ends it without any write. */
static void test_edge_cache(void **state)
{
	struct shield *s = *state;
	const char *a = "198.18.26.26";
	struct pkt_spec web = pkt_tcp4(a, 443, PKT_ACK);
	struct frame fw = build(&web);
	struct kl_edge4_key k = { .src = ip4(a), .port = 443, .proto = IPPROTO_TCP };
	struct kl_rule r = rule(0, KL_ORIGIN_GRAPHD);
	__u32 slot4 = ip4(a);
	struct kl_src_slot sl;
	__u64 exp, t0;
	int n;

	set_edge_mode(s, KL_EDGE_DENY, KL_EPHEMERAL_MIN_DEFAULT);
	assert_int_equal(run_n(s, fw.b, fw.len, 3), XDP_PASS);
	assert_true(slot_find(s, 4, &slot4, &sl) >= 0);
	assert_true(sl.ec.flags & KL_EC_PASS);
	assert_int_equal(sl.ec.port, 443);
	assert_int_equal(sl.ec.gen, (__u16)cfg_get(s).policy_gen);
	/* An unannounced write is not seen by the cached verdict... */
	put(s->maps.kernloom_edge4_deny, &k, &r);
	assert_int_equal(run1(s, &fw), XDP_PASS);
	/* ...an announced one is. */
	bump_gen(s);
	assert_int_equal(run1(s, &fw), XDP_DROP);
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(s->maps.kernloom_edge4_deny), &k), 0);
	bump_gen(s);
	assert_int_equal(run1(s, &fw), XDP_PASS);

	/* Allow mode, a rule lapsing in ~1.5 s: passes (cached) until then,
	 * dropped after, with no write in between. */
	exp = now_boot() + 1500000000ull;
	edge4(s, s->maps.kernloom_edge4_allow, a, 443, IPPROTO_TCP, rule(exp, KL_ORIGIN_GRAPHD));
	set_edge_mode(s, KL_EDGE_ALLOW, KL_EPHEMERAL_MIN_DEFAULT);
	assert_int_equal(run1(s, &fw), XDP_PASS);
	assert_true(slot_find(s, 4, &slot4, &sl) >= 0);
	assert_true(sl.ec.flags & KL_EC_PASS);
	t0 = now_boot();
	for (n = 0; run1(s, &fw) == XDP_PASS; n++) {
		assert_true(now_boot() < exp + 3000000000ull); /* deadline */
		usleep(1000);
	}
	assert_true(now_boot() >= exp);
	assert_true(n > 0 || t0 >= exp);
	timed(s, "edge cache, lapsed allow", fw.b, fw.len, XDP_DROP);
}

/* ---- admission filter, aggregate new-source limit, tag lines ---- */

static int setup_admit(void **state)
{
	struct load_opts lo = { .admit = 1 };

	*state = load_shield(&lo);
	return 0;
}

static int setup_admit_edge(void **state)
{
	struct load_opts lo = { .admit = 1, .flow = 1, .edge = 1 };

	*state = load_shield(&lo);
	return 0;
}

/* A source's first packet is judged and counted in aggregate only; its
 * second claims a slot, which counts from there. */
static void test_admission_second_packet_claims(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.50.1", 443, PKT_SYN);
	struct pkt_spec sp6 = pkt_tcp6("fd00:6b6c:50::1", 443, PKT_SYN);
	struct frame f = build(&sp), f6 = build(&sp6);
	struct kl_src_stats st;
	__u64 t[KL_T_MAX];

	assert_int_equal(run1(s, &f), XDP_PASS);
	assert_int_equal(src4(s, "198.18.50.1", &st), -ENOENT);
	totals(s, t);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 1);
	assert_int_equal(t[KL_T_SRC_NEW], 0);
	assert_int_equal(t[KL_T_PKTS], 1);
	assert_int_equal(t[KL_T_PASS], 1);
	assert_int_equal(run_n(s, f.b, f.len, 10), XDP_PASS);
	st = src4_must(s, "198.18.50.1");
	assert_int_equal(st.pkts, 10);
	assert_int_equal(st.syn, 10);
	assert_true(st.verdict & KL_V_CACHED);
	totals(s, t);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 1);
	assert_int_equal(t[KL_T_SRC_NEW], 1);
	assert_int_equal(t[KL_T_PKTS], 11);
	assert_int_equal(t[KL_T_PASS], 11);

	assert_int_equal(run1(s, &f6), XDP_PASS);
	assert_int_equal(src6(s, "fd00:6b6c:50::1", &st), -ENOENT);
	assert_int_equal(run1(s, &f6), XDP_PASS);
	assert_int_equal(src6_must(s, "fd00:6b6c:50::1").pkts, 1);
	totals(s, t);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 2);
	assert_int_equal(t[KL_T_SRC_NEW], 2);
	timed(s, "admitted source, pass", f.b, f.len, XDP_PASS);
}

/* n addresses 198.18.128.0 + i (i from `from`), one frame each. */
static void flood4_from(struct shield *s, int from, int n, __u32 expect, __u32 *got_drops)
{
	__u32 drops = 0;

	for (int i = from; i < from + n; i++) {
		char a[32];
		struct pkt_spec sp;
		struct frame f;

		snprintf(a, sizeof(a), "198.18.%u.%u", 128u + (unsigned)i / 256, (unsigned)i % 256);
		sp = pkt_tcp4(a, 80, PKT_SYN);
		f = build(&sp);
		__u32 r = run1(s, &f);
		if (expect != (__u32)-1)
			assert_int_equal(r, expect);
		drops += r == XDP_DROP;
	}
	if (got_drops)
		*got_drops = drops;
}

static void flood4(struct shield *s, int n, __u32 expect, __u32 *got_drops)
{
	flood4_from(s, 0, n, expect, got_drops);
}

static int slots_held(struct shield *s)
{
	__u32 n = bpf_map__max_entries(s->maps.kernloom_src4_stats);
	struct kl_src_slot sl;
	int held = 0;

	for (__u32 k = 0; k < n; k++) {
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.kernloom_src4_stats), &k, &sl),
				 0);
		held += sl.family == 4;
	}
	return held;
}

/* A spoofed flood (one packet per source) claims no slot: a source that
 * already holds one keeps it and keeps counting. */
static void test_admission_flood_claims_nothing(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.51.1", 443, PKT_ACK);
	struct frame known = build(&sp);
	__u64 t[KL_T_MAX];

	assert_int_equal(run_n(s, known.b, known.len, 2), XDP_PASS);
	assert_int_equal(slots_held(s), 1);
	flood4(s, 3000, XDP_PASS, NULL);
	assert_int_equal(slots_held(s), 1);
	assert_int_equal(run1(s, &known), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.51.1").pkts, 2);
	totals(s, t);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 3001);
	assert_int_equal(t[KL_T_SRC_NEW], 1);
	assert_int_equal(t[KL_T_PKTS], 3003);
	assert_int_equal(t[KL_T_PASS], 3003);
}

/* Policy holds for sources without a slot: deny (found through the policy
 * summary), CIDR deny, allow-enforce; a deny whose summary bit the writer
 * failed to set is not seen there (the enforcer's contract). */
static void test_unadmitted_policy(void **state)
{
	struct shield *s = *state;
	struct pkt_spec d = pkt_tcp4("198.18.52.1", 443, PKT_SYN);
	struct pkt_spec d6 = pkt_tcp6("fd00:6b6c:52::1", 443, PKT_SYN);
	struct pkt_spec c = pkt_tcp4("198.18.53.9", 443, PKT_SYN);
	struct pkt_spec nb = pkt_tcp4("198.18.52.2", 443, PKT_SYN);
	struct pkt_spec o = pkt_tcp4("198.18.54.1", 443, PKT_SYN);
	struct frame fd = build(&d), fd6 = build(&d6), fc = build(&c), fnb = build(&nb),
		     fo = build(&o);
	struct kl_rule r = rule(0, KL_ORIGIN_OPERATOR);
	__u32 k = ip4("198.18.52.2");
	__u64 t[KL_T_MAX];

	deny4(s, "198.18.52.1", 0);
	deny6(s, "fd00:6b6c:52::1", 0);
	lpm4(s->maps.kernloom_deny4_lpm, "198.18.53.0", 24, r);
	put(s->maps.kernloom_deny4_hash, &k, &r); /* no summary bit */
	bump_gen(s);
	assert_int_equal(run1(s, &fd), XDP_DROP);
	assert_int_equal(run1(s, &fd6), XDP_DROP);
	assert_int_equal(run1(s, &fc), XDP_DROP);
	assert_int_equal(run1(s, &fnb), XDP_PASS);
	/* Its second packet claims a slot, whose verdict reads every map. */
	assert_int_equal(run1(s, &fnb), XDP_DROP);
	totals(s, t);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 4);
	assert_int_equal(t[KL_T_DROP_DENY], 4);
	assert_int_equal(t[KL_T_PASS], 1);

	set_allow_enforce(s, 1);
	assert_int_equal(run1(s, &fo), XDP_DROP);
	assert_int_equal(total(s, KL_T_DROP_ALLOW), 1);
}

static void set_new_limit(struct shield *s, __u64 rate, __u64 burst, __u64 expires)
{
	struct kl_cfg c = cfg_get(s);

	c.new_rate_pps = rate;
	c.new_burst = burst;
	c.new_expires_ns = expires;
	cfg_put(s, &c);
}

/* The aggregate limit: burst new-source packets pass, the rest drop;
 * protected and allowlisted sources and sources holding a slot are
 * exempt; it lapses at its expiry. */
static void test_new_source_limit(void **state)
{
	struct shield *s = *state;
	struct pkt_spec kp = pkt_tcp4("198.18.55.1", 443, PKT_ACK);
	struct pkt_spec pp = pkt_tcp4("198.18.56.1", 22, PKT_SYN);
	struct pkt_spec ap = pkt_tcp4("198.18.57.1", 22, PKT_SYN);
	struct frame known = build(&kp), prot = build(&pp), allowed = build(&ap);
	__u32 drops;
	__u64 t[KL_T_MAX];

	assert_int_equal(run_n(s, known.b, known.len, 2), XDP_PASS);
	lpm4(s->maps.kernloom_allow4_lpm, "198.18.56.1", 32, rule(0, KL_ORIGIN_PROTECTED));
	lpm4(s->maps.kernloom_allow4_lpm, "198.18.57.1", 32, rule(0, KL_ORIGIN_OPERATOR));
	bump_gen(s);
	/* rate 1/s, burst 10: far fewer than 1000 tokens in the test's time */
	set_new_limit(s, 1, 10, 0);
	flood4(s, 1000, (__u32)-1, &drops);
	assert_true(drops >= 1000 - 10 - 5 && drops <= 1000 - 10);
	assert_int_equal(run1(s, &prot), XDP_PASS);
	assert_int_equal(run1(s, &allowed), XDP_PASS);
	assert_int_equal(run_n(s, known.b, known.len, 100), XDP_PASS);
	assert_int_equal(src4_must(s, "198.18.55.1").pass, 101);
	totals(s, t);
	assert_int_equal(t[KL_T_DROP_NEWSRC], drops);
	assert_int_equal(t[KL_T_DROP_RL], drops);
	assert_int_equal(t[KL_T_SRC_UNADMITTED], 1000 + 2 + 1);
	assert_int_equal(slots_held(s), 1);

	/* Lapsed (a second ago: the data plane's clock may lag a tick). The
	 * first 50 flood sources were seen before: admitted, they claim. */
	set_new_limit(s, 1, 10, now_boot() - 1000000000ull);
	flood4(s, 50, XDP_PASS, NULL);
	assert_int_equal(slots_held(s), 51);
	/* Rate 0 drops every packet of a source without a slot, its
	 * admission included (sources 50..99 were seen before). */
	set_new_limit(s, 0, 1, 0);
	flood4_from(s, 50, 50, XDP_DROP, NULL);
	assert_int_equal(slots_held(s), 51);
	flood4(s, 50, XDP_PASS, NULL); /* holding slots: not affected */
	assert_int_equal(run1(s, &prot), XDP_PASS);
}

/* graph-enforce: a source without a slot and without a summary bit has no
 * edge rule; allow mode drops it, deny mode passes it; with an allow rule
 * (and its bit) it passes. No flow telemetry for it. */
static void test_unadmitted_edges(void **state)
{
	struct shield *s = *state;
	struct pkt_spec a = pkt_tcp4("198.18.58.1", 443, PKT_SYN);
	struct pkt_spec b = pkt_tcp4("198.18.58.2", 443, PKT_SYN);
	struct frame fa = build(&a), fb = build(&b);

	set_edge_mode(s, KL_EDGE_ALLOW, KL_EPHEMERAL_MIN_DEFAULT);
	bloom4(s, ip4("198.18.58.2"));
	edge4(s, s->maps.kernloom_edge4_allow, "198.18.58.2", 443, IPPROTO_TCP,
	      rule(0, KL_ORIGIN_GRAPHD));
	assert_int_equal(run1(s, &fa), XDP_DROP);
	assert_int_equal(run1(s, &fb), XDP_PASS);
	assert_int_equal(total(s, KL_T_DROP_EDGE), 1);
	assert_int_equal(flow_count(s, 4), 0);
	set_edge_mode(s, KL_EDGE_DENY, KL_EPHEMERAL_MIN_DEFAULT);
	flood4(s, 20, XDP_PASS, NULL);
	assert_int_equal(total(s, KL_T_SRC_UNADMITTED), 22);
}

/* A reload empties the tag lines: a source holding a slot is still found
 * (the slow lookup), keeps its counters and gets its tag back. */
static void test_tags_healed(void **state)
{
	struct shield *s = *state;
	struct pkt_spec sp = pkt_tcp4("198.18.59.1", 443, PKT_ACK);
	struct frame f = build(&sp);
	struct kl_src_tags zero_tags = { 0 }, t;
	__u32 n = bpf_map__max_entries(s->maps.kl_src_tags4), k, base[2];
	int fd = bpf_map__fd(s->maps.kl_src_tags4), slot;
	struct kl_cfg c = cfg_get(s);
	__u32 a = ip4("198.18.59.1");

	assert_int_equal(run_n(s, f.b, f.len, 5), XDP_PASS);
	slot = slot_find(s, 4, &a, NULL);
	assert_true(slot >= 0);
	kl_src_buckets4(a, c.src_seed, s->rodata->kl_src4_mask, base);
	k = (__u32)slot / KL_SRC_WAYS;
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &t), 0);
	assert_int_equal(t.tag[slot % KL_SRC_WAYS], kl_src_tag(kl_src_hash4(a, c.src_seed)));
	for (k = 0; k < n; k++)
		assert_int_equal(bpf_map_update_elem(fd, &k, &zero_tags, BPF_ANY), 0);
	assert_int_equal(run_n(s, f.b, f.len, 5), XDP_PASS);
	assert_int_equal(slot_find(s, 4, &a, NULL), slot);
	/* 4 + 5: the first of all was not admitted */
	assert_int_equal(src4_must(s, "198.18.59.1").pkts, 9);
	assert_int_equal(total(s, KL_T_SRC_NEW), 1);
	k = (__u32)slot / KL_SRC_WAYS;
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &t), 0);
	assert_int_equal(t.tag[slot % KL_SRC_WAYS], kl_src_tag(kl_src_hash4(a, c.src_seed)));
	(void)base;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_known_source_pass, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_known_source_pass_v6, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_allow_enforce_allowed, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_allow_enforce_miss, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_allow_enforce_v6, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_protected_bypasses_deny, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_allowed_skips_deny_and_rl, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_deny_exact_v4, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_deny_exact_v6, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_deny_expired_passes, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_deny_cidr, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_deny_exact_and_cidr_longest, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_policy_gen_cache, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_rl_burst_then_drop_refill, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_rl_global_default, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_rl_override_expiry, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_vlan_single_double, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_ext_headers, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_fragments, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_fragments, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_options, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_malformed, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_non_ip, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_flag_counters, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_scan_signal, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_events_sampling, setup_default, teardown),
		cmocka_unit_test(test_events_ring_full),
		cmocka_unit_test_setup_teardown(test_edge_deny_mode, setup_edge, teardown),
		cmocka_unit_test_setup_teardown(test_edge_allow_mode, setup_edge, teardown),
		cmocka_unit_test_setup_teardown(test_edge_rate_limit, setup_edge, teardown),
		cmocka_unit_test_setup_teardown(test_edge_cache, setup_edge, teardown),
		cmocka_unit_test_setup_teardown(test_edge_feature_off, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_flow_telemetry, setup_edge, teardown),
		cmocka_unit_test_setup_teardown(test_flow_slots_rob, setup_edge, teardown),
		cmocka_unit_test(test_two_cpus_flows),
		cmocka_unit_test_setup_teardown(test_flow_throttled, setup_edge, teardown),
		cmocka_unit_test(test_flow_profiles),
		cmocka_unit_test(test_feature_off_removes_code),
		cmocka_unit_test_setup_teardown(test_pins_by_name_and_reuse, setup_pin_dir,
						teardown_pin_dir),
		cmocka_unit_test_setup_teardown(test_two_cpus_no_lost_update, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_overflow_evicts_oldest, setup_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_verdict_not_inherited, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_v6_owner_compare, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_two_cpus_one_bucket, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_admission_second_packet_claims, setup_admit,
						teardown),
		cmocka_unit_test_setup_teardown(test_admission_flood_claims_nothing, setup_admit,
						teardown),
		cmocka_unit_test_setup_teardown(test_unadmitted_policy, setup_admit, teardown),
		cmocka_unit_test_setup_teardown(test_new_source_limit, setup_admit, teardown),
		cmocka_unit_test_setup_teardown(test_unadmitted_edges, setup_admit_edge, teardown),
		cmocka_unit_test_setup_teardown(test_tags_healed, setup_admit, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_shield: needs root (BPF_PROG_TEST_RUN), skipping\n");
		return 77;
	}
	char why[256];
	if (kl_test_private_bpffs(0700, why, sizeof(why)) < 0) {
		fprintf(stderr, "test_shield: a private bpffs for the pin fixture: %s\n", why);
		return 1;
	}
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	libbpf_set_print(quiet_print);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
