/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Reading the telemetry maps: read-only pins, map-id checks for re-acquiring
 * them after an enforcer restart, and one tick's batch reads fed through the
 * harvest into a TELEMETRY and a FLOWS frame. Shared by kl-sensor, `klctl
 * trace from-pcap` and bench_harvest, so all three compute the same numbers.
 */
#ifndef KL_SENSOR_COLLECT_H
#define KL_SENSOR_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/frames.h"
#include "sensor/harvest.h"

enum sen_smap { SEN_SM_SRC4 = 0, SEN_SM_SRC6, SEN_SM_FLOW4, SEN_SM_FLOW6, SEN_SM_TOTALS, SEN_SM_MAX };

/* Pin (map) name of each. */
const char *sen_smap_name(enum sen_smap m);

struct sen_smaps {
	char dir[512];
	int fd[SEN_SM_MAX];      /* -1 when not open */
	uint32_t id[SEN_SM_MAX]; /* kernel map id of fd */
	unsigned missing_logged; /* bit per map: "cannot open" already said */
	unsigned swapped;        /* bit per map replaced by the last refresh */
};

/* Open every pin read-only (BPF_F_RDONLY) and check key/value sizes
 * against shield.h. The flow maps are optional (a warning); the others
 * are required. */
int sen_smaps_open(struct sen_smaps *m, const char *dir, char *err, size_t errlen);
/* Compare each held map's id with its pin's; swap in the pin's map when
 * they differ. Returns how many maps were re-acquired (logged), or -1
 * when a pin could not be opened (logged once per map until it recovers). */
int sen_smaps_refresh(struct sen_smaps *m);
void sen_smaps_close(struct sen_smaps *m);
/* Key size, value size and type checks of one fd (for pins and tests). */
int sen_smap_check(int fd, enum sen_smap which, uint32_t *id, char *err, size_t errlen);

enum sen_read_mode {
	SEN_READ_BATCH = 0, /* bpf_map_lookup_batch, 4096 entries per call */
	SEN_READ_ITER,      /* get_next_key + lookup per entry (old kernels, bench) */
};

struct sen_collector {
	enum sen_read_mode mode;
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
	/* Read-only mappings of the source slot arrays, [0] IPv4, [1] IPv6,
	 * by map id (base NULL: read with batch lookups). */
	struct {
		uint32_t id, n;
		void *base;
		size_t len;
	} mm[2];
};

int sen_collector_init(struct sen_collector *c, enum sen_read_mode mode);
void sen_collector_free(struct sen_collector *c);

/* One tick: begin the harvest, read totals, sources and flows from fds
 * (indexed by enum sen_smap; -1 skips a map), fill c->telem and c->flows
 * (for ticks > 0), end the harvest. t_ns is the frames' wall-clock time.
 * Returns the tick number, or -1 when out of memory; failed reads set
 * bits in c->failed and the tick goes on without that map. */
int64_t sen_collect_tick(struct sen_collector *c, const int fds[SEN_SM_MAX], struct sen_harvest *h,
			uint64_t now_ns, uint64_t elapsed_ns, uint64_t t_ns, uint64_t seq_telem,
			uint64_t seq_flows);

/* One map's entries through the harvest into a frame (building blocks of
 * sen_collect_tick, public for the bench). 0, or -1 with c->err set. */
int sen_collect_src(struct sen_collector *c, int fd, uint8_t family, struct sen_harvest *h,
		   struct kl_frame *f);
int sen_collect_flows(struct sen_collector *c, int fd, uint8_t family, struct sen_harvest *h,
		     struct kl_frame *f);
int sen_collect_totals(struct sen_collector *c, int fd, uint64_t out[KL_T_MAX]);
/* Copy a slot of a shared mapping seqlock-style: true when it holds a
 * claimed source and seq read the same before and after the copy. */
bool sen_slot_copy(const struct kl_src_slot *sl, struct kl_src_slot *out);

#endif
