/* SPDX-License-Identifier: MPL-2.0 */
/*
 * One tick from its TELEMETRY or FLOWS frames (DESIGN §4): the one intake
 * of kl-decider, kl-graphd and the trace readers.
 *
 * A tick is handed over once, when it is complete: frames 0..k of one
 * tick number, in order, the last flag on frame k and on no other. A
 * partial tick is never handed over; it is dropped and counted:
 *   - a frame 0 arrives while a tick is open (the sensor restarted, or
 *     began a new tick before the last flag): the open tick is dropped and
 *     the new one begins;
 *   - a frame's index or tick number is not the one expected (a frame was
 *     lost or the ticks are interleaved): the open tick is dropped, and
 *     so is every further frame until the next frame 0;
 *   - the tick holds more records than max_records (the configured maps
 *     cannot produce it): the tick is refused, as a hostile one.
 * Why drop rather than apply what arrived: the records are per-source
 * deltas of one tick, and a source missing from a tick reads as a source
 * that went quiet (levels step down, baselines learn zeros), while frame
 * 0's totals would not match the records. A dropped tick is a tick lost
 * on the link, which the receivers already handle: the next complete tick
 * carries its own deltas, and the gap is counted as missed ticks.
 *
 * Memory: a tick that fits in one frame is handed over as a view into the
 * message (no copy). Frames of a longer tick are copied into one buffer,
 * which never grows beyond max_records records.
 */
#ifndef KL_IPC_TICKASM_H
#define KL_IPC_TICKASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/frames.h"
#include "ipc/msg.h"

enum kl_tickasm_rc {
	KL_TICKASM_NOMEM = -1,   /* out of memory (err says for what) */
	KL_TICKASM_MORE = 0,     /* taken (or dropped, see note); no tick yet */
	KL_TICKASM_TICK = 1,     /* a whole tick: telem / flows hold it */
	KL_TICKASM_REFUSED = 2,  /* a frame that does not decode, or a tick
				  * above the bound: err says why */
};

struct kl_tickasm_stats {
	uint64_t frames;     /* frames fed */
	uint64_t ticks;      /* whole ticks handed over */
	uint64_t bad;        /* frames refused by the decoder or the header check */
	uint64_t dropped;    /* partial ticks dropped (see above) */
	uint64_t oversized;  /* ticks refused for exceeding max_records */
	uint64_t missed;     /* tick numbers skipped between two whole ticks */
	uint64_t restarts;   /* a whole tick numbered at or below the previous one */
};

struct kl_tickasm {
	unsigned type;          /* KL_MSG_TELEMETRY or KL_MSG_FLOWS */
	uint64_t max_records;   /* per tick */
	bool open;              /* frames of `tick` are being collected */
	bool skipping;          /* dropping frames until the next frame 0 */
	uint64_t tick;
	uint32_t next;          /* frame index expected next */
	uint8_t *recs;          /* records of a multi-frame tick, wire bytes */
	size_t nrec, cap;       /* records held, records of room */
	bool have_last;
	uint64_t last_tick;     /* the last whole tick handed over */
	/* The tick handed over with KL_TICKASM_TICK, valid until the next
	 * feed (and, for a one-frame tick, while the message is). Its header
	 * counts all records; frame 0 and last. */
	struct kl_telem_view telem;
	struct kl_flows_view flows;
	struct kl_tickasm_stats st;
	/* Set by a feed that dropped a partial tick, or saw ticks missed or
	 * the sensor restart: one line for the log. Empty otherwise. */
	char note[256];
	int64_t last_warn_ms;   /* kl_tickasm_intake's rate limit */
};

/* The bound for trace replays, which have no configuration to size by:
 * the largest map_sizes the daemons accept (2^24 per family). */
#define KL_TICKASM_REPLAY_MAX_SRC (1u << 24)

void kl_tickasm_init(struct kl_tickasm *a, unsigned type, uint64_t max_records);
void kl_tickasm_free(struct kl_tickasm *a);
/* Feed one decoded wire message of a->type. */
int kl_tickasm_feed(struct kl_tickasm *a, const struct kl_msg *m, char *err, size_t errlen);
/* The daemons' intake: feed m (from the sensor with pid `pid`; now_ms is
 * CLOCK_MONOTONIC) and log what happened: a refused frame or tick as a
 * warning, at most once per 10 s, with the count so far; a dropped
 * partial tick, missed ticks and a sensor restart as info. 1 with a tick
 * to apply, 0 when there is none (yet), -1 when out of memory (logged). */
int kl_tickasm_intake(struct kl_tickasm *a, const struct kl_msg *m, int pid, int64_t now_ms);
/* Records of the tick handed over. */
uint32_t kl_tickasm_records(const struct kl_tickasm *a);

#endif
