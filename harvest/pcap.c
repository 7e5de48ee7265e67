/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Capture replay through the real XDP program.
 *
 * Two clocks meet here. Rates and tick boundaries come from the capture's
 * timestamps (elapsed = the interval). The data plane stamps first_seen
 * and its port windows with the real CLOCK_BOOTTIME, so the harvest gets
 * the real clock for its "is this entry new" test, and the scan signal's
 * windows are moved by hand when the capture's own window moves (else a
 * minute of capture replayed in 50 ms would count each port once in total
 * instead of once per window, as the live shield does).
 */
#include "harvest/pcap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
/* pcap/bpf.h (classic BPF) redefines struct bpf_insn from linux/bpf.h;
 * we compile no filters, so its declarations are not needed. */
#define PCAP_DONT_INCLUDE_PCAP_BPF_H
#include <pcap/dlt.h>
#include <pcap/pcap.h>

#include "bpf/shield.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "harvest/collect.h"
#include "harvest/harvest.h"

#define ETH_HLEN 14
/* A non-frags XDP program takes one page minus head- and tailroom in a
 * test run; longer frames (GRO'd captures) run cut to this. */
#define TEST_RUN_MAX 3000
/* More empty ticks than this between two packets is a broken capture. */
#define MAX_GAP_TICKS 10000000ull


/* libbpf's own chatter stays quiet unless --log-level debug; warnings
 * (verifier output included) go to our log. */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char line[1024];

	if (lvl == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	kl_debug("libbpf: %s", line);
	return 0;
}

/* Set a __u32 in .rodata before load (the object is chosen at run time,
 * so there is no skeleton to do it). */
static int set_rodata(struct bpf_object *obj, const char *var, uint32_t value)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *m, *ro = NULL;

	bpf_object__for_each_map(m, obj)
	{
		const char *n = bpf_map__name(m);
		size_t l = strlen(n);
		if (bpf_map__is_internal(m) && l >= 7 && strcmp(n + l - 7, ".rodata") == 0)
			ro = m;
	}
	if (btf == NULL || ro == NULL)
		return -ENOENT;
	int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	const struct btf_type *sec = btf__type_by_id(btf, (uint32_t)id);
	const struct btf_var_secinfo *v = btf_var_secinfos(sec);
	for (unsigned i = 0; i < btf_vlen(sec); i++, v++) {
		const struct btf_type *vt = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, vt->name_off), var) != 0)
			continue;
		size_t sz;
		const void *init = bpf_map__initial_value(ro, &sz);
		if (init == NULL || v->size != sizeof(value) || v->offset + sizeof(value) > sz)
			return -EINVAL;
		uint8_t *copy = malloc(sz);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, init, sz);
		memcpy(copy + v->offset, &value, sizeof(value));
		int rc = bpf_map__set_initial_value(ro, copy, sz);
		free(copy);
		return rc;
	}
	return -ENOENT;
}

#define PCAP_SRC_SLOTS 65536 /* per family: 16 MiB, 32768 sources at 2x */

struct replay {
	const struct kl_pcap_opts *o;
	struct kl_pcap_stats *st;
	kl_pcap_emit_fn emit;
	void *ctx;
	struct bpf_object *obj;
	int prog_fd;
	int fds[KL_SM_MAX];
	struct kl_collector col;
	struct kl_harvest h;
	uint64_t seq;
};

/* Force every source's port window to move on its next packet: the data
 * plane moves a window only forward, so 0 moves on the next packet. The
 * replay's maps are private and not frozen, so slots can be rewritten. */
static int move_port_windows(struct replay *r, char *err, size_t errlen)
{
	static const enum kl_smap maps[] = { KL_SM_SRC4, KL_SM_SRC6 };

	for (size_t i = 0; i < 2; i++) {
		int fd = r->fds[maps[i]];
		struct bpf_map_info info;
		uint32_t ilen = sizeof(info);
		struct kl_src_slot v;

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &ilen) < 0)
			return kl_fail(err, errlen, "%s: map info: %s", kl_smap_name(maps[i]),
				    strerror(errno));
		/* Scan through the collector's read-only mapping when it has
		 * one (a lookup per slot costs a syscall), rewrite by update. */
		const struct kl_src_slot *mm = r->col.mm[maps[i]].id == info.id
						       ? (const struct kl_src_slot *)r->col.mm[maps[i]].base
						       : NULL;
		for (uint32_t k = 0; k < info.max_entries; k++) {
			if (mm != NULL && (mm[k].seq == 0 || mm[k].s.port_window == 0))
				continue;
			if (bpf_map_lookup_elem(fd, &k, &v) < 0)
				return kl_fail(err, errlen, "%s: lookup: %s", kl_smap_name(maps[i]),
					    strerror(errno));
			if (v.seq == 0 || v.family == 0 || v.s.port_window == 0)
				continue;
			v.s.port_window = 0;
			if (bpf_map_update_elem(fd, &k, &v, BPF_EXIST) < 0)
				return kl_fail(err, errlen, "%s: update: %s", kl_smap_name(maps[i]),
					    strerror(errno));
		}
	}
	return 0;
}

static int emit_tick(struct replay *r, uint64_t t_ns, uint64_t elapsed, char *err, size_t errlen)
{
	int64_t tick = kl_collect_tick(&r->col, r->fds, &r->h, kl_clock_ns(CLOCK_BOOTTIME), elapsed, t_ns,
				       r->seq + 1, r->seq + 1);
	int rc;

	if (tick < 0)
		return kl_fail(err, errlen, "out of memory building frames");
	if (r->col.failed)
		return kl_fail(err, errlen, "reading the maps: %s", r->col.why);
	if (tick == 0) /* the baseline */
		return 0;
	r->seq += r->col.telem.nmsg > r->col.flows.nmsg ? r->col.telem.nmsg : r->col.flows.nmsg;
	r->st->ticks++;
	if ((rc = kl_frame_each(&r->col.telem, r->emit, r->ctx)) != 0 ||
	    (rc = kl_frame_each(&r->col.flows, r->emit, r->ctx)) != 0)
		return kl_fail(err, errlen, "output stopped (%d)", rc);
	return 0;
}

static int run_packet(void *ctx, const uint8_t *data, uint32_t len, char *err, size_t errlen)
{
	struct replay *r = ctx;
	LIBBPF_OPTS(bpf_test_run_opts, to, .repeat = 1);

	to.data_in = data;
	to.data_size_in = len;
	if (bpf_prog_test_run_opts(r->prog_fd, &to) < 0)
		return kl_fail(err, errlen, "BPF_PROG_TEST_RUN on packet %llu (%u bytes): %s",
			    (unsigned long long)r->st->packets + 1, len, strerror(errno));
	return 0;
}

static int tick_cb(void *ctx, uint64_t t_ns, uint64_t elapsed, char *err, size_t errlen)
{
	return emit_tick(ctx, t_ns, elapsed, err, errlen);
}

static int window_cb(void *ctx, char *err, size_t errlen)
{
	return move_port_windows(ctx, err, errlen);
}

static int load(struct replay *r, char *err, size_t errlen)
{
	struct bpf_map *m;
	char why[256];
	int rc;

	libbpf_set_print(libbpf_print);
	r->obj = bpf_object__open_file(r->o->obj, NULL);
	if (r->obj == NULL) {
		libbpf_strerror(-errno, why, sizeof(why));
		return kl_fail(err, errlen, "--obj %s: %s", r->o->obj, why);
	}
	/* Private maps: never touch a live shield's pins. */
	bpf_object__for_each_map(m, r->obj)
	{
		if (bpf_map__set_pin_path(m, NULL) < 0)
			return kl_fail(err, errlen, "--obj %s: cannot unpin map %s", r->o->obj,
				    bpf_map__name(m));
	}
	if ((rc = set_rodata(r->obj, "kl_feat_flow", 1)) < 0)
		return kl_fail(err, errlen,
			    "--obj %s: no kl_feat_flow switch in .rodata (%s); is it the shield?",
			    r->o->obj, strerror(-rc));
	/* Source slots: room for PCAP_SRC_SLOTS / 2 sources per family. Every
	 * tick (and every port-window move) walks all slots, and the replay's
	 * port windows also move with the real clock, so a smaller table keeps
	 * the replay short and its output the same from run to run. The flow
	 * slot arrays keep the object's size (KL_FLOW_SLOTS_DEFAULT), which
	 * the program's default bucket mask matches. */
	struct bpf_map *s4 = bpf_object__find_map_by_name(r->obj, KL_MAP_SRC4);
	struct bpf_map *s6 = bpf_object__find_map_by_name(r->obj, KL_MAP_SRC6);
	if (s4 == NULL || s6 == NULL || bpf_map__set_max_entries(s4, PCAP_SRC_SLOTS) < 0 ||
	    bpf_map__set_max_entries(s6, PCAP_SRC_SLOTS) < 0 ||
	    (rc = set_rodata(r->obj, "kl_src4_mask", PCAP_SRC_SLOTS / KL_SRC_WAYS - 1)) < 0 ||
	    (rc = set_rodata(r->obj, "kl_src6_mask", PCAP_SRC_SLOTS / KL_SRC_WAYS - 1)) < 0)
		return kl_fail(err, errlen,
			    "--obj %s: cannot size the source slot arrays (%s, kl_src4_mask and "
			    "kl_src6_mask in .rodata); built from another bpf/shield.h?",
			    r->o->obj, KL_MAP_SRC4);
	if ((rc = bpf_object__load(r->obj)) < 0) {
		libbpf_strerror(rc, why, sizeof(why));
		return kl_fail(err, errlen, "loading %s: %s%s", r->o->obj, why,
			    rc == -EPERM ? " (needs root: CAP_BPF and CAP_PERFMON)" : "");
	}
	struct bpf_program *p = bpf_object__find_program_by_name(r->obj, "kl_shield");
	if (p == NULL)
		return kl_fail(err, errlen, "--obj %s: no program kl_shield", r->o->obj);
	r->prog_fd = bpf_program__fd(p);

	static const char *const names[KL_SM_MAX] = {
		[KL_SM_SRC4] = KL_MAP_SRC4,   [KL_SM_SRC6] = KL_MAP_SRC6,
		[KL_SM_FLOW4] = KL_MAP_FLOW4, [KL_SM_FLOW6] = KL_MAP_FLOW6,
		[KL_SM_TOTALS] = KL_MAP_TOTALS,
	};
	for (int i = 0; i < KL_SM_MAX; i++) {
		uint32_t id;
		r->fds[i] = bpf_object__find_map_fd_by_name(r->obj, names[i]);
		if (r->fds[i] < 0)
			return kl_fail(err, errlen, "--obj %s: no map %s", r->o->obj, names[i]);
		if (kl_smap_check(r->fds[i], (enum kl_smap)i, &id, why, sizeof(why)) < 0)
			return kl_fail(err, errlen, "--obj %s: %s", r->o->obj, why);
	}
	int cfd = bpf_object__find_map_fd_by_name(r->obj, KL_MAP_CFG);
	struct kl_cfg cfg = { .ephemeral_min = r->o->ephemeral_min, .policy_gen = 1 };
	uint32_t zero = 0;
	if (cfd < 0 || bpf_map_update_elem(cfd, &zero, &cfg, BPF_ANY) < 0)
		return kl_fail(err, errlen, "--obj %s: cannot write %s: %s", r->o->obj, KL_MAP_CFG,
			    cfd < 0 ? "no such map" : strerror(errno));
	return 0;
}

int kl_pcap_check_link(struct pcap *pc, const char *name, char *err, size_t errlen)
{
	int dlt = pcap_datalink(pc);

	if (dlt == DLT_EN10MB)
		return 0;
	const char *dname = pcap_datalink_val_to_name(dlt);
	return kl_fail(err, errlen,
		    "%s: link type %s (%d, %s) is not supported: the XDP program sees Ethernet "
		    "frames, so only Ethernet (EN10MB) captures can be replayed (capture with "
		    "tcpdump -i IFACE, not -i any)",
		    name, dname ? dname : "?", dlt, pcap_datalink_val_to_description_or_dlt(dlt));
}

int kl_pcap_walk(struct pcap *pc, const char *name, uint64_t interval_ns,
		 const struct kl_pcap_walk_cb *cb, void *ctx, struct kl_pcap_stats *st, char *err,
		 size_t errlen)
{
	struct pcap_pkthdr *ph;
	const u_char *data;
	uint64_t tick_end = 0, last = 0, window = 0;
	bool any = false;
	int n;

	if (interval_ns == 0)
		return kl_fail(err, errlen, "--interval must be above 0");
	while ((n = pcap_next_ex(pc, &ph, &data)) == 1) {
		/* With nanosecond precision tv_usec holds nanoseconds. */
		uint64_t ts = (uint64_t)ph->ts.tv_sec * 1000000000ull + (uint64_t)ph->ts.tv_usec;
		if (!any) {
			any = true;
			tick_end = ts + interval_ns;
			window = ts >> KL_PORT_WINDOW_SHIFT;
			last = ts;
		}
		if (ts < last) {
			st->backwards++; /* keep it in the current tick */
			ts = last;
		}
		last = ts;
		if (ts >= tick_end && (ts - tick_end) / interval_ns > MAX_GAP_TICKS)
			return kl_fail(err, errlen, "%s: packet %llu is %.0f s after the one before; "
				    "not filling that gap with empty ticks", name,
				    (unsigned long long)(st->packets + st->short_skipped + 1),
				    (double)(ts - tick_end) / 1e9);
		while (ts >= tick_end) {
			if (cb->tick(ctx, tick_end, interval_ns, err, errlen) < 0)
				return -1;
			tick_end += interval_ns;
		}
		if ((ts >> KL_PORT_WINDOW_SHIFT) != window) {
			window = ts >> KL_PORT_WINDOW_SHIFT;
			if (cb->window(ctx, err, errlen) < 0)
				return -1;
		}
		if (ph->caplen < ph->len)
			st->snapped++;
		uint32_t len = ph->caplen;
		if (len < ETH_HLEN) {
			st->short_skipped++;
			continue;
		}
		if (len > TEST_RUN_MAX) {
			len = TEST_RUN_MAX;
			st->cut++;
		}
		if (cb->packet(ctx, data, len, err, errlen) < 0)
			return -1;
		st->packets++;
	}
	if (n == PCAP_ERROR)
		return kl_fail(err, errlen, "%s: %s", name, pcap_geterr(pc));
	/* The tick holding the last packet ends on its boundary like any other. */
	if (any && cb->tick(ctx, tick_end, interval_ns, err, errlen) < 0)
		return -1;
	return 0;
}

int kl_pcap_replay(const struct kl_pcap_opts *o, kl_pcap_emit_fn emit, void *ctx,
		   struct kl_pcap_stats *st, char *err, size_t errlen)
{
	static const struct kl_pcap_walk_cb cb = {
		.tick = tick_cb, .window = window_cb, .packet = run_packet,
	};
	char perr[PCAP_ERRBUF_SIZE];
	struct replay r;
	pcap_t *pc;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	memset(&r, 0, sizeof(r));
	r.o = o;
	r.st = st;
	r.emit = emit;
	r.ctx = ctx;
	if (o->interval_ns == 0)
		return kl_fail(err, errlen, "--interval must be above 0");
	pc = pcap_open_offline_with_tstamp_precision(o->capture, PCAP_TSTAMP_PRECISION_NANO, perr);
	if (pc == NULL) /* libpcap's message names the file */
		return kl_fail(err, errlen, "%s", perr);
	if (kl_pcap_check_link(pc, o->capture, err, errlen) < 0) {
		pcap_close(pc);
		return -1;
	}
	if (geteuid() != 0) {
		kl_fail(err, errlen,
		     "needs root: each packet runs through the shield's XDP program with "
		     "BPF_PROG_TEST_RUN, which loads it into the kernel");
		pcap_close(pc);
		return -1;
	}
	for (int i = 0; i < KL_SM_MAX; i++)
		r.fds[i] = -1;
	if (load(&r, err, errlen) < 0)
		goto out;
	if (kl_collector_init(&r.col, KL_READ_BATCH) < 0) {
		kl_fail(err, errlen, "%s", r.col.err);
		goto out;
	}
	if (kl_harvest_init(&r.h, KL_PREV_TTL_DEFAULT, 1024, 1024) < 0) {
		kl_fail(err, errlen, "out of memory");
		goto out_col;
	}
	/* Baseline on the empty maps: every entry after it is new. */
	if (emit_tick(&r, 0, 0, err, errlen) < 0)
		goto out_h;
	if (kl_pcap_walk(pc, o->capture, o->interval_ns, &cb, &r, st, err, errlen) < 0)
		goto out_h;
	rc = 0;
out_h:
	kl_harvest_free(&r.h);
out_col:
	kl_collector_free(&r.col);
out:
	bpf_object__close(r.obj);
	pcap_close(pc);
	return rc;
}
