/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's two edges, kept abstract so the engine never learns where
 * its ticks come from or where its decisions go:
 *
 *  input  yields ticks: time, per-source metrics, violations (and, in
 *         replay, simulated exemption-file contents): JSON-lines traces,
 *         binary kl-sensor traces, and (live.c) telemetry frames.
 *  sink   takes one batch of level changes (and TTL renewals) per tick,
 *         each with the level's action, rate, burst and TTL, plus CIDR
 *         releases: printing (replay, dry-run) or the enforcer (enfsink.c).
 */
#ifndef KL_DECIDER_IO_H
#define KL_DECIDER_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "decider/engine.h"
#include "decider/exempt.h"
#include "decider/knobs.h"
#include "ipc/frames.h"

struct dec_tick {
	int64_t t_ms;          /* Unix ms on the input's clock (virtual in replay) */
	int64_t elapsed_ms;    /* since the previous tick */
	const struct dec_metrics *src;
	size_t nsrc;
	const struct dec_violation *viol;
	size_t nviol;
	/* Deltas of the data plane's totals over the tick (enum kl_total;
	 * binary traces and live frames only; for the autotune gates). */
	const uint64_t *totals;
	uint32_t ntotals;
	/* JSON-lines only ("new_sources"): packets of sources not admitted
	 * to a slot; binary traces and live frames carry it in totals
	 * (KL_T_SRC_UNADMITTED). */
	bool has_new_sources;
	uint64_t new_sources;
	/* Replay only: the exemption files as they are from this tick on. */
	bool has_whitelist, has_feedback;
	struct dec_exempt_list *whitelist, *feedback; /* may be taken (zeroed) by the consumer */
	const char *where;     /* "FILE:LINE" for messages */
};

struct dec_input {
	/* 1 with *t filled (valid until the next call), 0 at the end, -1 on
	 * an error (added to errs). */
	int (*next)(struct dec_input *in, struct dec_tick *t, struct kl_errs *errs);
	void (*close)(struct dec_input *in);
};

/* JSON-lines trace (DESIGN §6.6); path "-" is stdin. interval_ms is the
 * elapsed time reported for the first tick. */
struct dec_input *dec_input_jsonl_open(const char *path, int64_t interval_ms,
				     struct kl_errs *errs);
/* Same over a memory buffer (tests, fuzzing). The buffer must outlive it. */
struct dec_input *dec_input_jsonl_mem(const char *buf, size_t len, const char *name,
				    int64_t interval_ms);

/* Binary kl-sensor trace (ipc/trace.h): TELEMETRY frames become ticks on
 * the virtual clock of their t_ns; other frames (FLOWS) are skipped. A
 * torn last record ends the replay with a warning; damage in the middle
 * is an error. */
struct dec_input *dec_input_ktrace_open(const char *path, struct kl_errs *errs);
/* Same over an open stream (fmemopen for fuzzing); with own it is closed
 * with the input (also on error). */
struct dec_input *dec_input_ktrace_stream(FILE *f, bool own, const char *name,
					struct kl_errs *errs);
/* Either kind, told apart by the first bytes ("KLTRACE1"); "-" is stdin. */
struct dec_input *dec_input_open(const char *path, int64_t interval_ms, struct kl_errs *errs);

/* One decoded TELEMETRY payload -> engine metrics. out must hold
 * v->h.n_records entries; returns how many were written (every record is
 * a host address after kl_telem_decode). */
size_t dec_metrics_from_telem(const struct kl_telem_view *v, struct dec_metrics *out);
/* The tick clock of a frame: Unix ms of t_ns, forced past prev_t_ms (a
 * clock stepped back must not stop the engine's time). */
int64_t dec_frame_tick_ms(uint64_t t_ns, int64_t prev_t_ms);

struct dec_sink {
	/* One tick's level changes and TTL renewals (reason DEC_R_REFRESH),
	 * sorted by address. Returns 0 or -1. */
	int (*apply)(struct dec_sink *s, int64_t t_ms, const struct dec_change *c, size_t n);
	/* Ask for enforcement inside cidr to be removed, at most budget
	 * entries; *removed says how many went. */
	int (*release)(struct dec_sink *s, int64_t t_ms, const struct kl_addr *cidr,
		       uint32_t budget, uint32_t *removed);
	void (*close)(struct dec_sink *s);
};

/* Printing sink. out != NULL: replay output on out, each line prefixed with
 * "t=<seconds> " (or one JSON object per level change when json). out ==
 * NULL: the daemon log (kl_log) in the seeds' grammar. dry_run is what the
 * ACTION lines report. Renewals and releases are logged at debug level. */
struct dec_sink *dec_sink_print_new(FILE *out, bool json, bool dry_run);

/* Seconds with at least one decimal and at most three: "14.0", "14.25". */
const char *dec_fmt_t(int64_t t_ms, char *buf, size_t len);

#endif
