/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Reading the telemetry maps: read-only pins, map-id checks for re-acquiring
 * them after an enforcer restart, and one tick's batch reads fed through the
 * harvest into a TELEMETRY and a FLOWS frame. Shared by kl-sensor, `klctl
 * trace from-pcap` and bench_harvest, so all three compute the same numbers.
 */
#ifndef KL_HARVEST_COLLECT_H
#define KL_HARVEST_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/frames.h"
#include "harvest/harvest.h"

enum kl_smap { KL_SM_SRC4 = 0, KL_SM_SRC6, KL_SM_FLOW4, KL_SM_FLOW6, KL_SM_TOTALS, KL_SM_MAX };

/* Pin (map) name of each. */
const char *kl_smap_name(enum kl_smap m);

struct kl_smaps {
	char dir[512];
	int fd[KL_SM_MAX];      /* -1 when not open */
	uint32_t id[KL_SM_MAX]; /* kernel map id of fd */
	unsigned missing_logged; /* bit per map: "cannot open" already said */
	unsigned swapped;        /* bit per map replaced by the last refresh */
};

/* Open every pin and check type and key/value sizes against shield.h:
 * read-only (BPF_F_RDONLY), except the slot arrays (sources and flows),
 * which mmap needs read-write (the enforcer froze them: no write goes
 * through). The flow maps are optional (a warning); the others are
 * required. */
int kl_smaps_open(struct kl_smaps *m, const char *dir, char *err, size_t errlen);
/* Compare each held map's id with its pin's; swap in the pin's map when
 * they differ. Returns how many maps were re-acquired (logged), or -1
 * when a pin could not be opened (logged once per map until it recovers). */
int kl_smaps_refresh(struct kl_smaps *m);
void kl_smaps_close(struct kl_smaps *m);
/* Key size, value size and type checks of one fd (for pins and tests). */
int kl_smap_check(int fd, enum kl_smap which, uint32_t *id, char *err, size_t errlen);

enum kl_read_mode {
	KL_READ_BATCH = 0, /* bpf_map_lookup_batch, 4096 entries per call */
	KL_READ_ITER,      /* get_next_key + lookup per entry (old kernels, bench) */
};

struct kl_collector {
	enum kl_read_mode mode;
	uint32_t batch;       /* entries per batch call */
	uint8_t *keys, *vals; /* batch buffers */
	int ncpu;
	uint8_t *percpu;      /* totals, one kl_totals per possible CPU */
	struct kl_frame telem, flows;
	/* Records per frame; 0: as many as fit in a message. Lower only to
	 * split ticks sooner (tests, bench). */
	uint32_t frame_records;
	unsigned new_maps;    /* bit per map never read before (see harvest all_new);
			       * cleared by the next tick */
	unsigned failed;      /* bit per map that failed in the last tick */
	char why[256];        /* the first of those failures */
	char err[256];        /* scratch: the last read error */
	/* read time of the last tick, ns, for the TICK line and the bench */
	uint64_t read_ns;
	/* Read-only mappings of the slot arrays (sources and flows), by
	 * enum kl_smap, following the map id (base NULL: read with batch
	 * lookups; never mapped: the totals). */
	struct {
		uint32_t id, n;
		void *base;
		size_t len;
	} mm[KL_SM_MAX];
};

int kl_collector_init(struct kl_collector *c, enum kl_read_mode mode);
void kl_collector_free(struct kl_collector *c);

/* One tick: begin the harvest, read totals, sources and flows from fds
 * (indexed by enum kl_smap; -1 skips a map), fill c->telem and c->flows
 * (for ticks > 0), end the harvest. t_ns is the frames' wall-clock time.
 * Returns the tick number, or -1 when out of memory; failed reads set
 * bits in c->failed and the tick goes on without that map. */
int64_t kl_collect_tick(struct kl_collector *c, const int fds[KL_SM_MAX], struct kl_harvest *h,
			uint64_t now_ns, uint64_t elapsed_ns, uint64_t t_ns, uint64_t seq_telem,
			uint64_t seq_flows);

/* One map's entries through the harvest into a frame (building blocks of
 * kl_collect_tick, public for the bench). 0, or -1 with c->err set. */
int kl_collect_src(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		   struct kl_frame *f);
int kl_collect_flows(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		     struct kl_frame *f);
int kl_collect_totals(struct kl_collector *c, int fd, uint64_t out[KL_T_MAX]);
/* Copy `size` bytes of a slot of a shared mapping seqlock-style (source
 * and flow slots alike: a leading __u32 seq, 0 never claimed, odd being
 * claimed): true when seq read the same, even and non-zero, before and
 * after the copy. Whose slot it is (family, owner) is the caller's test. */
bool kl_seq_copy(const void *slot, void *out, size_t size);
/* The same for a typed slot: kl_slot_copy(&base[k], &copy). */
#define kl_slot_copy(sl, out) kl_seq_copy((sl), (out), sizeof(*(out)))

#endif
