/* SPDX-License-Identifier: MPL-2.0 */
/*
 * `klctl trace from-pcap`: a packet capture turned into the sensor's
 * frames. Every packet runs through the real shield (its own unpinned
 * maps, graph-learning features so flows are counted) with
 * BPF_PROG_TEST_RUN, and the maps are harvested by the sensor's own code
 * (collect.c, harvest.c) at every tick boundary of the capture's clock.
 */
#ifndef KL_HARVEST_PCAP_H
#define KL_HARVEST_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct kl_pcap_opts {
	const char *capture;    /* pcap file (Ethernet link type) */
	const char *obj;        /* shield.bpf.o */
	uint64_t interval_ns;   /* tick length on the capture's clock */
	uint32_t ephemeral_min; /* as the enforcer's ephemeral_min (0 = no folding) */
};

struct kl_pcap_stats {
	uint64_t packets;   /* run through the program */
	uint64_t short_skipped; /* shorter than an Ethernet header */
	uint64_t cut;       /* longer than a test run takes: run truncated */
	uint64_t snapped;   /* captured with a snaplen below their length */
	uint64_t ticks;     /* frames pairs emitted */
	uint64_t backwards; /* timestamps older than their predecessor */
};

/* Called with each wire message (TELEMETRY, then FLOWS, per tick). A
 * non-zero return stops the replay with that value. */
/* The capture side of the replay, apart from the kernel (tests, fuzzing):
 * check an open capture's link type, then walk its packets on the
 * capture's clock. Each tick boundary (t_ns, elapsed) the packets pass,
 * each move of the port window, and each packet (cut to what a test run
 * takes; shorter than an Ethernet header: counted, not passed) goes to
 * its callback; one returning < 0 stops the walk with err set. The last
 * packet's tick is closed at the end. Returns 0 or -1 with err set. */
struct pcap;
struct kl_pcap_walk_cb {
	int (*tick)(void *ctx, uint64_t t_ns, uint64_t elapsed, char *err, size_t errlen);
	int (*window)(void *ctx, char *err, size_t errlen);
	int (*packet)(void *ctx, const uint8_t *data, uint32_t len, char *err, size_t errlen);
};
int kl_pcap_check_link(struct pcap *pc, const char *name, char *err, size_t errlen);
int kl_pcap_walk(struct pcap *pc, const char *name, uint64_t interval_ns,
		 const struct kl_pcap_walk_cb *cb, void *ctx, struct kl_pcap_stats *st, char *err,
		 size_t errlen);

typedef int (*kl_pcap_emit_fn)(void *ctx, const uint8_t *msg, size_t len);

/* Checks the capture (readable, Ethernet) before anything else, then
 * needs root to load the program. 0, or -1 with err set. */
int kl_pcap_replay(const struct kl_pcap_opts *o, kl_pcap_emit_fn emit, void *ctx,
		   struct kl_pcap_stats *st, char *err, size_t errlen);

#endif
