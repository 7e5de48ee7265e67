/* SPDX-License-Identifier: MPL-2.0 */
/*
 * TELEMETRY and FLOWS payloads (DESIGN §4): batched frames, never one
 * message per source. A tick travels as frames 0..k of one tick number,
 * the last one flagged KL_FRAME_LAST; a tick that fits in one message is
 * frame 0 with the flag. ipc/tickasm.h puts a tick back together.
 *
 * TELEMETRY payload, little-endian, exact length
 *   0  u64 tick
 *   8  u64 t_ns        CLOCK_REALTIME of the harvest (for traces)
 *  16  u64 elapsed_ns  real time the deltas were taken over
 *  24  u32 n_totals    counters that follow; a newer sender may send more.
 *                      Only frame 0 carries them: 0 in every later frame.
 *  28  u32 n_records   records in this frame
 *  32  u32 frame       index of this frame within the tick, from 0
 *  36  u32 frame_flags KL_FRAME_LAST on the tick's last frame; others zero
 *  40  u64 totals[n_totals]   deltas of the kernloom_totals counters
 *      then n_records records of KL_TELEM_REC_LEN bytes:
 *   0  u8  family (4 or 6), 3 bytes zero
 *   4  16 bytes address (IPv4 in the first 4, the rest zero)
 *  20  f64 pps bps syn synack rst scan pass drop_allow drop_deny drop_rl drop_edge
 *      per second over elapsed_ns; bps is bytes per second. Finite, >= 0.
 *
 * FLOWS payload
 *   0  u64 tick, 8 u64 t_ns, 16 u64 elapsed_ns, 24 u32 n_records, 28 u32 0,
 *  32  u32 frame, 36 u32 frame_flags (as in TELEMETRY)
 *      then n_records records of KL_FLOWS_REC_LEN bytes:
 *   0  u8 family, 3 bytes zero, 4 16 bytes source, 20 u16 dst port,
 *  22  u8 proto, 23 u8 flags (KL_FLOW_F_*; others zero), 24 u64 pkts,
 *  32 u64 bytes (deltas of the tick)
 *  The port is 0 unless proto is TCP or UDP (and 0 there means "ephemeral,
 *  folded"). Any IP protocol may appear: the data plane counts flows for
 *  every final L4 protocol, and graphd must be able to learn e.g. GRE.
 *
 * The decoders check everything before a caller reads a field; the views
 * point into the decoded buffer (no copy), so 100k-record frames cost one
 * validation pass.
 */
#ifndef KL_IPC_FRAMES_H
#define KL_IPC_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shield.h"
#include "ipc/msg.h"

#define KL_TELEM_FIXED_LEN 40
#define KL_TELEM_REC_LEN 108
#define KL_TELEM_MAX_TOTALS 256
#define KL_FLOWS_FIXED_LEN 40
#define KL_FLOWS_REC_LEN 40

/* The source was rate-limited or denied (by the decider or the operator)
 * when the data plane last judged it: graphd learns nothing from it
 * (DESIGN §7). Taken from the source entry's cached verdict. */
#define KL_FLOW_F_RESTRICTED 0x01u
#define KL_FLOW_F_ALL KL_FLOW_F_RESTRICTED

/* frame_flags: this frame ends its tick. */
#define KL_FRAME_LAST 0x1u
#define KL_FRAME_F_ALL KL_FRAME_LAST

/* Records that fit in one message (KL_MSG_MAX_PAYLOAD). */
#define KL_TELEM_MAX_RECORDS \
	((KL_MSG_MAX_PAYLOAD - KL_TELEM_FIXED_LEN - 8u * KL_T_MAX) / KL_TELEM_REC_LEN)
#define KL_FLOWS_MAX_RECORDS ((KL_MSG_MAX_PAYLOAD - KL_FLOWS_FIXED_LEN) / KL_FLOWS_REC_LEN)

/* The most records one tick can hold when the data plane's maps hold `n`
 * sources / flows per family (map_sizes src / flow): a receiver accepts
 * that much per tick and no more, so a lying sensor cannot make it
 * allocate beyond what the configuration needs. Both are read from slot
 * arrays (bpf/shield.h), kl_slots_for(n) slots per family. */
uint64_t kl_telem_tick_max(uint32_t src_per_family);
uint64_t kl_flows_tick_max(uint32_t flows_per_family);
/* The largest message (wire header included) of such a tick: its
 * records, capped at one frame (KL_MSG_MAX_PAYLOAD). */
size_t kl_telem_msg_max(uint32_t src_per_family);
size_t kl_flows_msg_max(uint32_t flows_per_family);

/* Per-source rates of one tick. */
enum kl_rate {
	KL_R_PPS = 0,
	KL_R_BPS,
	KL_R_SYN,
	KL_R_SYNACK,
	KL_R_RST,
	KL_R_SCAN,
	KL_R_PASS,
	KL_R_DROP_ALLOW,
	KL_R_DROP_DENY,
	KL_R_DROP_RL,
	KL_R_DROP_EDGE,
	KL_R_MAX
};

/* "pps", "bps", "syn", ... as the trace dump prints them. */
const char *kl_rate_name(unsigned r);

struct kl_src_rate {
	uint8_t family;    /* 4 or 6 */
	uint8_t addr[16];  /* network order; IPv4 in addr[0..3], rest zero */
	double r[KL_R_MAX];
};

struct kl_telem_hdr {
	uint64_t tick;
	uint64_t t_ns;
	uint64_t elapsed_ns;
	uint32_t n_totals;  /* as on the wire (<= KL_TELEM_MAX_TOTALS) */
	uint32_t n_records;
	uint32_t frame;     /* index within the tick */
	bool last;          /* KL_FRAME_LAST */
	/* totals[i] for i < n_totals; the rest is 0. Index with enum kl_total. */
	uint64_t totals[KL_TELEM_MAX_TOTALS];
};

struct kl_telem_view {
	struct kl_telem_hdr h;
	const uint8_t *records; /* n_records validated records */
};

struct kl_flow_rec {
	uint8_t family;
	uint8_t addr[16];
	uint16_t port;  /* host order */
	uint8_t proto;
	uint8_t flags;  /* KL_FLOW_F_* */
	uint64_t pkts;
	uint64_t bytes;
};

struct kl_flows_hdr {
	uint64_t tick;
	uint64_t t_ns;
	uint64_t elapsed_ns;
	uint32_t n_records;
	uint32_t frame;
	bool last;
};

struct kl_flows_view {
	struct kl_flows_hdr h;
	const uint8_t *records;
};

/* ---- encode (into caller memory; sizes from the *_len functions) ---- */
size_t kl_telem_payload_len(uint32_t n_totals, size_t n_records);
size_t kl_flows_payload_len(size_t n_records);
/* Writes the fixed part and the totals: KL_TELEM_FIXED_LEN + 8 * n_totals bytes. */
void kl_telem_encode_fixed(const struct kl_telem_hdr *h, uint8_t *out);
void kl_telem_encode_record(const struct kl_src_rate *r, uint8_t *out);
void kl_flows_encode_fixed(const struct kl_flows_hdr *h, uint8_t *out);
void kl_flows_encode_record(const struct kl_flow_rec *r, uint8_t *out);

/* ---- decode: 0, or -1 with a reason naming the record and field ---- */
int kl_telem_decode(const uint8_t *p, size_t len, struct kl_telem_view *v, char *err,
		    size_t errlen);
/* Record i (< n_records) of a decoded view. */
void kl_telem_record(const struct kl_telem_view *v, size_t i, struct kl_src_rate *out);
int kl_flows_decode(const uint8_t *p, size_t len, struct kl_flows_view *v, char *err,
		    size_t errlen);
void kl_flows_record(const struct kl_flows_view *v, size_t i, struct kl_flow_rec *out);

/* ---- a whole tick as wire messages (header + payload), record by record ----
 * A message that reaches max_records is closed and the next frame of the
 * tick begins behind it, so no record is ever left out. buf[0..len) holds
 * the tick's nmsg messages back to back (send them one by one, see
 * kl_frame_msg); message i has sequence number seq + i. The buffer is
 * reused from tick to tick. */
struct kl_frame {
	uint8_t *buf;
	size_t len, cap;
	unsigned type;        /* KL_MSG_TELEMETRY or KL_MSG_FLOWS */
	uint32_t n;           /* records added to the tick */
	/* Records per message: the most that fit, set by begin; lower it
	 * before adding (tests) to split sooner. */
	uint32_t max_records;
	uint32_t nmsg;        /* messages in buf */
	uint32_t cur_n;       /* records in the last message */
	uint64_t seq;         /* of message 0 */
	size_t *off;          /* start of each message in buf */
	uint32_t off_cap;
	struct kl_telem_hdr th; /* frame 0's fixed part (TELEMETRY) */
	struct kl_flows_hdr fh; /* (FLOWS) */
};

int kl_frame_begin_telem(struct kl_frame *f, uint64_t seq, const struct kl_telem_hdr *h);
int kl_frame_begin_flows(struct kl_frame *f, uint64_t seq, const struct kl_flows_hdr *h);
/* 0 added, -1 out of memory. */
int kl_frame_add_src(struct kl_frame *f, const struct kl_src_rate *r);
int kl_frame_add_flow(struct kl_frame *f, const struct kl_flow_rec *r);
/* Close the last message and flag it KL_FRAME_LAST. */
void kl_frame_end(struct kl_frame *f);
/* Message i (< nmsg) of an ended tick: its bytes and length. */
const uint8_t *kl_frame_msg(const struct kl_frame *f, uint32_t i, size_t *len);
/* Call fn on each message of an ended tick, in order; stops at and
 * returns the first non-zero result. */
int kl_frame_each(const struct kl_frame *f, int (*fn)(void *ctx, const uint8_t *msg, size_t len),
		  void *ctx);
/* Make room for n more records up front (avoids regrowing mid-harvest). */
int kl_frame_reserve(struct kl_frame *f, size_t n);
void kl_frame_free(struct kl_frame *f);

#endif
