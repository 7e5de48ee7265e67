/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Reading real BPF maps (needs root: creates maps and pins under
 * /sys/fs/bpf/klh5-<pid> on a bpffs private to this process, tests/bpffs.h,
 * so nothing needs to be mounted on the host): batch and entry-by-entry reads agree, more
 * entries than one batch, per-CPU totals, flows, read-only pins, and the
 * re-acquire of a map that was replaced behind its pin. The slot arrays
 * (sources and flows): read through a read-only mapping or by batch, torn
 * and foreign slots skipped, and, frozen, refused every write to an
 * unprivileged user (nobody, no capability) that can read them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "ipc/tickasm.h"
#include "harvest/collect.h"
#include "tests/bpffs.h"

#define S 1000000000ull

struct fx {
	int fd[KL_SM_MAX];
	char pin_dir[128];
	int ncpu;
};

static uint64_t boot_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static int mkmap(enum bpf_map_type t, uint32_t k, uint32_t v, uint32_t max)
{
	return bpf_map_create(t, NULL, k, v, max, NULL);
}

static int mkslots(uint32_t max)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_MMAPABLE);
	return bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct kl_src_slot), max, &o);
}

/* A flow slot array; mmapable as the data plane's, or not (read by batch). */
static int mkflows(uint32_t max, bool mmapable)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = mmapable ? BPF_F_MMAPABLE : 0);
	return bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct kl_flow_slot), max, &o);
}

/* Write flow slot `slot` as the data plane would after a claim. */
static void put_flow(int fd, uint32_t slot, uint32_t seq, uint8_t family, const uint8_t *addr,
		     uint16_t port, uint8_t proto, uint64_t pkts, uint64_t first_seen)
{
	struct kl_flow_slot v;

	memset(&v, 0, sizeof(v));
	v.seq = seq;
	v.family = family;
	v.proto = proto;
	v.port = port;
	memcpy(v.src, addr, family == 6 ? 16 : 4);
	v.s.pkts = pkts;
	v.s.bytes = pkts * 60;
	v.s.first_seen_ns = first_seen;
	v.s.last_seen_ns = first_seen;
	assert_int_equal(bpf_map_update_elem(fd, &slot, &v, BPF_ANY), 0);
}

/* Write slot `slot` as the data plane would after a claim. */
static void put_slot(int fd, uint32_t slot, uint32_t seq, uint8_t family, const uint8_t *addr,
		     const struct kl_src_stats *s)
{
	struct kl_src_slot v;

	memset(&v, 0, sizeof(v));
	v.seq = seq;
	v.family = family;
	memcpy(v.owner, addr, family == 4 ? 4 : 16);
	v.s = *s;
	assert_int_equal(bpf_map_update_elem(fd, &slot, &v, BPF_ANY), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->fd[KL_SM_SRC4] = mkslots(16384);
	if (f->fd[KL_SM_SRC4] < 0) {
		free(f);
		return -1; /* reported as a setup failure; main() skips earlier */
	}
	f->fd[KL_SM_SRC6] = mkslots(1024);
	f->fd[KL_SM_FLOW4] = mkflows(1024, false);
	f->fd[KL_SM_FLOW6] = mkflows(1024, false);
	f->fd[KL_SM_TOTALS] = mkmap(BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct kl_totals), 1);
	for (int i = 0; i < KL_SM_MAX; i++)
		assert_true(f->fd[i] >= 0);
	f->ncpu = libbpf_num_possible_cpus();
	snprintf(f->pin_dir, sizeof(f->pin_dir), KL_TEST_BPFFS "/klh5-%d", (int)getpid());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[256];

	for (int i = 0; i < KL_SM_MAX; i++) {
		close(f->fd[i]);
		snprintf(p, sizeof(p), "%s/%s", f->pin_dir, kl_smap_name((enum kl_smap)i));
		unlink(p);
	}
	rmdir(f->pin_dir);
	free(f);
	return 0;
}

static void put_src4(int fd, uint32_t i, uint64_t pkts, uint64_t first)
{
	uint8_t key[4] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
	struct kl_src_stats v;

	memset(&v, 0, sizeof(v));
	v.pkts = pkts;
	v.bytes = pkts * 64;
	v.syn = pkts / 4;
	v.ports_distinct = pkts / 10;
	v.first_seen_ns = first;
	put_slot(fd, i, 2, 4, key, &v);
}

static void put_totals(struct fx *f, uint64_t base)
{
	struct kl_totals *t = calloc((size_t)f->ncpu, sizeof(*t));
	uint32_t zero = 0;

	for (int c = 0; c < f->ncpu; c++) {
		t[c].v[KL_T_PKTS] = base + (uint64_t)c;
		t[c].v[KL_T_DROP_RL] = 1;
	}
	assert_int_equal(bpf_map_update_elem(f->fd[KL_SM_TOTALS], &zero, t, BPF_ANY), 0);
	free(t);
}

/* The collector's TELEMETRY tick put together from its frames as a
 * receiver does; the view lives as long as a and the collector's frames. */
static struct kl_telem_view telem_of(struct kl_collector *c, struct kl_tickasm *a)
{
	struct kl_msg m;
	char err[256];

	for (uint32_t i = 0; i < c->telem.nmsg; i++) {
		size_t len;
		const uint8_t *p = kl_frame_msg(&c->telem, i, &len);
		assert_int_equal(kl_msg_decode(p, len, &m, err, sizeof(err)), 0);
		assert_int_equal(kl_tickasm_feed(a, &m, err, sizeof(err)),
				 i + 1 < c->telem.nmsg ? KL_TICKASM_MORE : KL_TICKASM_TICK);
	}
	return a->telem;
}

/* frame_records: 0 = as many as fit, else the collector splits by it. */
static void run_mode(struct fx *f, enum kl_read_mode mode, uint32_t n, uint64_t now,
		     uint32_t frame_records)
{
	struct kl_collector c;
	struct kl_harvest h;
	struct kl_tickasm a;

	kl_tickasm_init(&a, KL_MSG_TELEMETRY, kl_telem_tick_max(n));
	assert_int_equal(kl_collector_init(&c, mode), 0);
	c.frame_records = frame_records;
	assert_int_equal(kl_harvest_init(&h, 600 * S, 0, 0), 0);
	/* Values as they were at the baseline (the test rewrites them below). */
	for (uint32_t i = 0; i < n; i++)
		put_src4(f->fd[KL_SM_SRC4], i, 100 + i, now - 5 * S);
	put_totals(f, 1000);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now, 0, 42, 1, 1), 0);
	assert_int_equal(c.failed, 0);
	assert_int_equal(h.st.src_seen, n);
	assert_int_equal(telem_of(&c, &a).h.n_records, 0);

	/* Every third source sends 2 packets, the rest nothing. */
	uint32_t moving = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t extra = i % 3 == 0 ? 2 : 0;
		moving += extra != 0;
		put_src4(f->fd[KL_SM_SRC4], i, 100 + i + extra, now - 5 * S);
	}
	put_totals(f, 1500);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now + 2 * S, 0, 43, 2, 2), 1);
	assert_int_equal(c.failed, 0);
	struct kl_telem_view v = telem_of(&c, &a);
	assert_int_equal(v.h.n_records, moving);
	if (frame_records > 0)
		assert_int_equal(c.telem.nmsg, (moving + frame_records - 1) / frame_records);
	assert_int_equal(v.h.tick, 1);
	assert_int_equal(v.h.t_ns, 43);
	assert_int_equal(v.h.elapsed_ns, 2 * S);
	assert_int_equal(v.h.totals[KL_T_PKTS], 500 * (uint64_t)f->ncpu);
	assert_int_equal(v.h.totals[KL_T_DROP_RL], 0);
	for (uint32_t i = 0; i < v.h.n_records; i++) {
		struct kl_src_rate r;
		kl_telem_record(&v, i, &r);
		assert_int_equal(r.family, 4);
		assert_int_equal(r.addr[0], 10);
		uint32_t id = (uint32_t)r.addr[1] << 16 | (uint32_t)r.addr[2] << 8 | r.addr[3];
		assert_int_equal(id % 3, 0);
		assert_true(r.r[KL_R_PPS] == 1.0); /* 2 packets over 2 s */
		assert_true(r.r[KL_R_BPS] == 64.0);
		/* In slot order: each source once. */
		if (i > 0) {
			struct kl_src_rate p;
			kl_telem_record(&v, i - 1, &p);
			assert_true(memcmp(p.addr, r.addr, 4) < 0);
		}
	}
	kl_tickasm_free(&a);
	kl_harvest_free(&h);
	kl_collector_free(&c);
}

/* More sources than one 4096-entry batch; both read paths see them all. */
static void test_batch_and_iter(void **state)
{
	struct fx *f = *state;
	uint64_t now = boot_ns();

	run_mode(f, KL_READ_BATCH, 10000, now, 0);
	run_mode(f, KL_READ_ITER, 10000, now, 0);
}

/* A tick of more sources than a frame holds goes as several frames and
 * arrives whole: nothing is cut. */
static void test_tick_split_into_frames(void **state)
{
	run_mode(*state, KL_READ_BATCH, 10000, boot_ns(), 1000);
}

/* The flow records of the collector's last tick, over all its messages. */
static uint32_t flows_of(struct kl_collector *c, struct kl_flow_rec *out, uint32_t max)
{
	uint32_t n = 0;
	char err[256];

	for (uint32_t i = 0; i < c->flows.nmsg; i++) {
		struct kl_msg m;
		struct kl_flows_view fv;
		size_t len;
		const uint8_t *p = kl_frame_msg(&c->flows, i, &len);

		assert_int_equal(kl_msg_decode(p, len, &m, err, sizeof(err)), 0);
		assert_int_equal(m.hdr.type, KL_MSG_FLOWS);
		assert_int_equal(kl_flows_decode(m.payload, m.payload_len, &fv, err, sizeof(err)), 0);
		for (uint32_t k = 0; k < fv.h.n_records; k++) {
			assert_true(n < max);
			kl_flows_record(&fv, k, &out[n++]);
		}
	}
	return n;
}

/* The record of flow (addr, port, proto) among n, or NULL. */
static const struct kl_flow_rec *flow_rec(const struct kl_flow_rec *r, uint32_t n,
					  const uint8_t *addr, uint16_t port, uint8_t proto)
{
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(r[i].addr, addr, r[i].family == 4 ? 4 : 16) == 0 && r[i].port == port &&
		    r[i].proto == proto)
			return &r[i];
	return NULL;
}

/* Swap the fixture's flow arrays for mmapable ones (as the data plane's). */
static void flows_mmapable(struct fx *f)
{
	for (int i = KL_SM_FLOW4; i <= KL_SM_FLOW6; i++) {
		close(f->fd[i]);
		f->fd[i] = mkflows(1024, true);
		assert_true(f->fd[i] >= 0);
	}
}

/* A v4 flow that moves, a new v6 flow and a new v6 source, at arbitrary
 * slots; read through the mapping or by batch/entry lookups. */
static void run_flows_and_v6(struct fx *f, enum kl_read_mode mode, bool mapped)
{
	struct kl_collector c;
	struct kl_harvest h;
	struct kl_tickasm ta;
	uint64_t now = boot_ns();
	const uint8_t a4[4] = { 198, 18, 0, 1 };
	uint8_t a6[16] = { 0xfd, 0, 0x6b, 0x6c, [15] = 1 };
	struct kl_src_stats s6;
	struct kl_flow_rec recs[8];

	assert_int_equal(kl_collector_init(&c, mode), 0);
	assert_int_equal(kl_harvest_init(&h, 600 * S, 0, 0), 0);
	put_flow(f->fd[KL_SM_FLOW4], 613, 2, 4, a4, 443, 6, 10, now - S);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now, 0, 1, 1, 1), 0);
	assert_int_equal(c.failed, 0);
	assert_int_equal(c.mm[KL_SM_FLOW4].base != NULL, mapped);
	assert_int_equal(c.mm[KL_SM_FLOW6].base != NULL, mapped);
	assert_int_equal(h.st.flow_seen, 1);
	/* Then: one more v4 flow packet, a new v6 flow and a new v6 source. */
	put_flow(f->fd[KL_SM_FLOW4], 613, 2, 4, a4, 443, 6, 11, now - S);
	put_flow(f->fd[KL_SM_FLOW6], 1023, 6, 6, a6, 0, 58, 3, now + S / 2);
	memset(&s6, 0, sizeof(s6));
	s6.pkts = 7;
	s6.first_seen_ns = now + S / 2;
	put_slot(f->fd[KL_SM_SRC6], 77, 4, 6, a6, &s6);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now + S, 0, 2, 2, 2), 1);
	assert_int_equal(c.failed, 0);

	assert_int_equal(flows_of(&c, recs, 8), 2);
	const struct kl_flow_rec *r4 = flow_rec(recs, 2, a4, 443, 6);
	const struct kl_flow_rec *r6 = flow_rec(recs, 2, a6, 0, 58);
	assert_non_null(r4);
	assert_int_equal(r4->family, 4);
	for (int i = 4; i < 16; i++)
		assert_int_equal(r4->addr[i], 0);
	assert_int_equal(r4->pkts, 1);
	assert_int_equal(r4->bytes, 60);
	assert_non_null(r6);
	assert_int_equal(r6->family, 6);
	assert_int_equal(r6->pkts, 3);
	assert_int_equal(r6->bytes, 180);
	kl_tickasm_init(&ta, KL_MSG_TELEMETRY, 1024);
	struct kl_telem_view v = telem_of(&c, &ta);
	assert_int_equal(v.h.n_records, 1);
	struct kl_src_rate r;
	kl_telem_record(&v, 0, &r);
	assert_int_equal(r.family, 6);
	assert_true(r.r[KL_R_PPS] == 7.0);
	kl_harvest_free(&h);
	kl_tickasm_free(&ta);
	kl_collector_free(&c);
}

static void test_flows_and_v6(void **state)
{
	run_flows_and_v6(*state, KL_READ_BATCH, false);
}

static void test_flows_and_v6_iter(void **state)
{
	run_flows_and_v6(*state, KL_READ_ITER, false);
}

static void test_flows_and_v6_mapped(void **state)
{
	flows_mmapable(*state);
	run_flows_and_v6(*state, KL_READ_BATCH, true);
}

/* Flow slots as the data plane leaves them: one mid-claim (odd seq) is
 * skipped and counted, one of the other family is not this map's, and a
 * slot claimed again (new seq) by another flow or by the same flow anew
 * (new first_seen) reports its counters whole, never a negative or a
 * partial delta. */
static void run_flow_slots(struct fx *f, bool mapped)
{
	struct kl_collector c;
	struct kl_harvest h;
	uint64_t now = boot_ns();
	const uint8_t a[4] = { 198, 18, 0, 1 }, b[4] = { 198, 18, 0, 2 }, d[4] = { 198, 18, 0, 4 };
	const uint8_t v6[16] = { 0xfd, 0, 0x6b, 0x6c, [15] = 2 };
	struct kl_flow_rec recs[8];
	const struct kl_flow_rec *r;
	int fd = f->fd[KL_SM_FLOW4];

	assert_int_equal(kl_collector_init(&c, KL_READ_BATCH), 0);
	assert_int_equal(kl_harvest_init(&h, 600 * S, 0, 0), 0);
	put_flow(fd, 7, 2, 4, a, 443, 6, 10, now - S);
	put_flow(fd, 9, 2, 6, v6, 443, 6, 10, now - S); /* not an IPv4 flow */
	/* Being claimed: seq odd, the previous owner's key and counts not
	 * yet cleared. */
	put_flow(fd, 11, 3, 4, b, 80, 6, 100, now - 9 * S);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now, 0, 1, 1, 1), 0);
	assert_int_equal(c.failed, 0);
	assert_int_equal(c.mm[KL_SM_FLOW4].base != NULL, mapped);
	assert_int_equal(h.st.flow_seen, 1);
	assert_int_equal(h.st.flow_torn, 1);

	/* a moves; slot 11's claim completed for b; the foreign slot moves
	 * too and still sends nothing. */
	put_flow(fd, 7, 2, 4, a, 443, 6, 15, now - S);
	put_flow(fd, 9, 2, 6, v6, 443, 6, 20, now - S);
	put_flow(fd, 11, 4, 4, b, 80, 6, 4, now + S / 2);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now + S, 0, 2, 2, 2), 1);
	assert_int_equal(h.st.flow_seen, 2);
	assert_int_equal(h.st.flow_torn, 0);
	assert_int_equal(flows_of(&c, recs, 8), 2);
	assert_non_null(r = flow_rec(recs, 2, a, 443, 6));
	assert_int_equal(r->pkts, 5);
	assert_non_null(r = flow_rec(recs, 2, b, 80, 6));
	assert_int_equal(r->pkts, 4);

	/* Slot 7 robbed by flow d (fewer packets than a had); slot 11
	 * claimed again by b, its first_seen new, more packets than before:
	 * both whole, not 2 - 15 nor 6 - 4. */
	put_flow(fd, 7, 4, 4, d, 53, 17, 2, now + S + S / 2);
	put_flow(fd, 11, 6, 4, b, 80, 6, 6, now + S + S / 4);
	assert_int_equal(kl_collect_tick(&c, f->fd, &h, now + 2 * S, 0, 3, 3, 3), 2);
	assert_int_equal(flows_of(&c, recs, 8), 2);
	assert_non_null(r = flow_rec(recs, 2, d, 53, 17));
	assert_int_equal(r->pkts, 2);
	assert_int_equal(r->bytes, 120);
	assert_non_null(r = flow_rec(recs, 2, b, 80, 6));
	assert_int_equal(r->pkts, 6);
	assert_int_equal(r->bytes, 360);
	assert_null(flow_rec(recs, 2, a, 443, 6));
	kl_harvest_free(&h);
	kl_collector_free(&c);
}

static void test_flow_slots_batch(void **state)
{
	run_flow_slots(*state, false);
}

static void test_flow_slots_mapped(void **state)
{
	flows_mmapable(*state);
	run_flow_slots(*state, true);
}

static void test_checks_and_pins(void **state)
{
	struct fx *f = *state;
	struct kl_smaps sm;
	char err[512], p[256];
	uint32_t id;

	/* A map of another layout is refused with the sizes in the message. */
	int bad = mkmap(BPF_MAP_TYPE_LRU_HASH, 4, 64, 16);
	assert_true(bad >= 0);
	assert_int_equal(kl_smap_check(bad, KL_SM_SRC4, &id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "value 64 bytes"));
	close(bad);
	/* So is a flow map of the layout before flow slots (LRU hash). */
	bad = mkmap(BPF_MAP_TYPE_LRU_HASH, sizeof(struct kl_edge4_key), sizeof(struct kl_flow_stats),
		    16);
	assert_true(bad >= 0);
	assert_int_equal(kl_smap_check(bad, KL_SM_FLOW4, &id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "kernloom_flow4_stats: map type 9"));
	close(bad);

	/* No pins yet: a clear error naming the pin. */
	assert_int_equal(kl_smaps_open(&sm, f->pin_dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "kernloom_src4_stats"));

	assert_int_equal(mkdir(f->pin_dir, 0700), 0);
	/* Frozen, as the enforcer leaves the flow slot arrays. */
	assert_int_equal(bpf_map_freeze(f->fd[KL_SM_FLOW4]), 0);
	for (int i = 0; i < KL_SM_MAX; i++) {
		snprintf(p, sizeof(p), "%s/%s", f->pin_dir, kl_smap_name((enum kl_smap)i));
		assert_int_equal(bpf_obj_pin(f->fd[i], p), 0);
	}
	assert_int_equal(kl_smaps_open(&sm, f->pin_dir, err, sizeof(err)), 0);
	/* The fds are read-only, the slot arrays' read-write for mmap but
	 * frozen (see test_frozen_slots_as_nobody). */
	uint32_t k = 0;
	struct kl_flow_slot v;
	memset(&v, 0, sizeof(v));
	assert_int_equal(bpf_map_update_elem(sm.fd[KL_SM_FLOW4], &k, &v, BPF_ANY), -1);
	assert_int_equal(errno, EPERM);
	uint8_t *tot = calloc((size_t)f->ncpu, sizeof(struct kl_totals));
	assert_non_null(tot);
	assert_int_equal(bpf_map_update_elem(sm.fd[KL_SM_TOTALS], &k, tot, BPF_ANY), -1);
	assert_int_equal(errno, EPERM);
	free(tot);
	/* Same maps behind the pins: nothing to re-acquire. */
	assert_int_equal(kl_smaps_refresh(&sm), 0);
	/* The enforcer came back with a new src4 map. */
	int nfd = mkslots(64);
	snprintf(p, sizeof(p), "%s/%s", f->pin_dir, KL_MAP_SRC4);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(bpf_obj_pin(nfd, p), 0);
	uint32_t old = sm.id[KL_SM_SRC4];
	assert_int_equal(kl_smaps_refresh(&sm), 1);
	assert_int_equal(sm.swapped, 1u << KL_SM_SRC4);
	assert_int_not_equal(sm.id[KL_SM_SRC4], old);
	assert_int_equal(kl_smap_check(nfd, KL_SM_SRC4, &id, err, sizeof(err)), 0);
	assert_int_equal(sm.id[KL_SM_SRC4], id);
	/* A pin that vanished keeps the old map and reports the problem. */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(kl_smaps_refresh(&sm), -1);
	assert_true(sm.fd[KL_SM_SRC4] >= 0);
	kl_smaps_close(&sm);
	close(nfd);
}

/* The collector follows a replaced slot array (new map id): it maps the
 * new one and treats its slots as new sources, not as restarts. */
static void test_slots_reacquire_and_torn(void **state)
{
	struct fx *f = *state;
	struct kl_collector c;
	struct kl_harvest h;
	struct kl_tickasm ta;
	uint64_t now = boot_ns();
	uint8_t a[4] = { 198, 18, 0, 9 };
	struct kl_src_stats s = { .pkts = 10, .first_seen_ns = now - 5 * S };
	int fds[KL_SM_MAX];

	memcpy(fds, f->fd, sizeof(fds));
	kl_tickasm_init(&ta, KL_MSG_TELEMETRY, 1024);
	assert_int_equal(kl_collector_init(&c, KL_READ_BATCH), 0);
	assert_int_equal(kl_harvest_init(&h, 600 * S, 0, 0), 0);
	put_slot(fds[KL_SM_SRC4], 5, 2, 4, a, &s);
	assert_int_equal(kl_collect_tick(&c, fds, &h, now, 0, 1, 1, 1), 0);
	assert_non_null(c.mm[0].base); /* mapped, not batch-read */
	assert_int_equal(h.st.src_seen, 1);
	/* Mid-claim (odd seq): skipped and counted as torn. */
	put_slot(fds[KL_SM_SRC4], 5, 3, 4, a, &s);
	assert_int_equal(kl_collect_tick(&c, fds, &h, now + S, 0, 2, 2, 2), 1);
	assert_int_equal(h.st.src_seen, 0);
	assert_int_equal(h.st.src_torn, 1);
	assert_int_equal(telem_of(&c, &ta).h.n_records, 0);
	/* A whole copy needs the same even seq before and after. */
	struct kl_src_slot sl = { .seq = 4, .family = 4 }, out;
	assert_true(kl_slot_copy(&sl, &out));
	sl.seq = 5;
	assert_false(kl_slot_copy(&sl, &out));
	sl.seq = 0;
	assert_false(kl_slot_copy(&sl, &out));
	/* The same copy for a flow slot, whole. */
	struct kl_flow_slot fl = { .seq = 6, .family = 4, .port = 443, .s.pkts = 9 }, fo;
	assert_true(kl_slot_copy(&fl, &fo));
	assert_memory_equal(&fo, &fl, sizeof(fl));
	fl.seq = 7;
	assert_false(kl_slot_copy(&fl, &fo));

	/* Replaced map: new id, old-looking entry, still reported whole. */
	int nfd = mkslots(256);
	assert_true(nfd >= 0);
	s.pkts = 3;
	put_slot(nfd, 9, 2, 4, a, &s);
	fds[KL_SM_SRC4] = nfd;
	c.new_maps |= 1u << KL_SM_SRC4;
	assert_int_equal(kl_collect_tick(&c, fds, &h, now + 2 * S, 0, 3, 3, 3), 2);
	assert_int_equal(c.mm[0].n, 256);
	assert_int_equal(h.st.src_new, 1);
	struct kl_telem_view v = telem_of(&c, &ta);
	assert_int_equal(v.h.n_records, 1);
	struct kl_src_rate r;
	kl_telem_record(&v, 0, &r);
	assert_memory_equal(r.addr, a, 4);
	assert_true(r.r[KL_R_PPS] == 3.0);
	kl_harvest_free(&h);
	kl_tickasm_free(&ta);
	kl_collector_free(&c);
	close(nfd);
}

/* What the sensor relies on, on this kernel: a frozen mmapable array,
 * opened through its pin read-write by nobody with no capability, can be
 * mapped and read, but not written by syscall, writable mmap or mprotect.
 * fd holds 64 slots of vsz bytes, slot 3 written as `want`. */
static void frozen_as_nobody(struct fx *f, const char *name, int fd, const void *want, size_t vsz)
{
	char p[256];

	assert_int_equal(bpf_map_freeze(fd), 0);
	assert_int_equal(bpf_map_freeze(fd), -1);
	/* What a reused pin answers: a frozen map has lost its write
	 * permission, so the kernel says EPERM (EBUSY while mapped writable). */
	assert_int_equal(errno, EPERM);
	snprintf(p, sizeof(p), "%s/%s", f->pin_dir, name);
	assert_int_equal(bpf_obj_pin(fd, p), 0);
	assert_int_equal(chmod(p, 0666), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int step = 1;
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(step);
		step++; /* 2: no capability left */
		FILE *st = fopen("/proc/self/status", "r");
		char line[256];
		bool zero = false;
		while (st && fgets(line, sizeof(line), st))
			if (strncmp(line, "CapEff:\t0000000000000000", 24) == 0)
				zero = true;
		if (st)
			fclose(st);
		if (!zero)
			_exit(step);
		step++; /* 3: the pin opens read-write */
		int ufd = bpf_obj_get(p);
		if (ufd < 0)
			_exit(step);
		step++; /* 4: syscall writes refused */
		uint32_t k = 3;
		uint8_t v[sizeof(struct kl_src_slot)];
		memset(v, 0, sizeof(v));
		if (vsz > sizeof(v) || bpf_map_update_elem(ufd, &k, v, BPF_ANY) == 0 || errno != EPERM)
			_exit(step);
		step++; /* 5: writable mapping refused */
		size_t len = 64 * vsz;
		void *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ufd, 0);
		if (w != MAP_FAILED)
			_exit(step);
		step++; /* 6: read-only mapping works and reads the slot */
		const uint8_t *ro = mmap(NULL, len, PROT_READ, MAP_SHARED, ufd, 0);
		if (ro == MAP_FAILED || memcmp(ro + 3 * vsz, want, vsz) != 0)
			_exit(step);
		step++; /* 7: and cannot be made writable */
		if (mprotect((void *)ro, len, PROT_READ | PROT_WRITE) == 0)
			_exit(step);
		step++; /* 8: lookups work */
		if (bpf_map_lookup_elem(ufd, &k, v) < 0 || memcmp(v, want, vsz) != 0)
			_exit(step);
		_exit(0);
	}
	int wst = 0;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	if (WEXITSTATUS(wst) != 0)
		fail_msg("%s as nobody: step %d failed (see the test)", name, WEXITSTATUS(wst));
	unlink(p);
}

/* The source and the flow slot arrays alike. */
static void test_frozen_slots_as_nobody(void **state)
{
	struct fx *f = *state;
	uint8_t a[4] = { 198, 18, 0, 7 };
	struct kl_src_stats s = { .pkts = 1234 };
	struct kl_src_slot src;
	struct kl_flow_slot flow;
	uint32_t k = 3;
	int sfd = mkslots(64), ffd = mkflows(64, true);

	assert_true(sfd >= 0);
	assert_true(ffd >= 0);
	assert_int_equal(mkdir(f->pin_dir, 0711), 0);
	assert_int_equal(chmod(f->pin_dir, 0711), 0);
	put_slot(sfd, 3, 2, 4, a, &s);
	assert_int_equal(bpf_map_lookup_elem(sfd, &k, &src), 0);
	frozen_as_nobody(f, KL_MAP_SRC4, sfd, &src, sizeof(src));
	put_flow(ffd, 3, 2, 4, a, 443, 6, 1234, 1);
	assert_int_equal(bpf_map_lookup_elem(ffd, &k, &flow), 0);
	frozen_as_nobody(f, KL_MAP_FLOW4, ffd, &flow, sizeof(flow));
	close(sfd);
	close(ffd);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_batch_and_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_split_into_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_and_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_and_v6_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_and_v6_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_slots_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_slots_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checks_and_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_reacquire_and_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frozen_slots_as_nobody, setup, teardown),
	};

	kl_log_init("test_sensor_collect", KL_LOG_ERROR);
	int probe = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 4, 1, NULL);
	if (probe < 0) {
		printf("SKIP: cannot create BPF maps here (%s); needs root\n", strerror(errno));
		return 77;
	}
	close(probe);
	/* Nobody (test_frozen_slots_as_nobody) must reach its pin: 0711. */
	char why[256];
	if (kl_test_private_bpffs(0711, why, sizeof(why)) < 0) {
		printf("a private bpffs for the pins: %s\n", why);
		return 1;
	}
	return cmocka_run_group_tests(t, NULL, NULL);
}
