/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Replay (DESIGN §6.6, §7): the flow records of a trace, one tick at a
 * time on the trace's own clock, through the same learner and store as
 * the daemon; each violation printed as one JSON line. Deterministic.
 *
 * Inputs, told apart by their first bytes:
 *  - binary kl-sensor traces ("KLTRACE1", ipc/trace.h): every FLOWS frame
 *    is a tick at its t_ns; its records flagged KL_FLOW_F_RESTRICTED and
 *    a TELEMETRY frame of the same sensor tick (sources with rate-limit or
 *    deny drops) mark sources as suspicious.
 *  - JSON-lines traces: {"t": 12.0, "flows": [{"src", "port", "proto",
 *    "pkts", "bytes", "restricted"}], "sources": [...]}; a flow with
 *    "restricted": true or a source with "droprl" > 0 makes its source
 *    suspicious in that tick. "violations", "whitelist" and "feedback"
 *    are the decider's and are skipped; any other key is an error. (The
 *    decider's reader, decider/trace.c, checks but does not hand out
 *    "flows", so this one reads them.)
 */
#ifndef KL_GRAPHD_REPLAY_H
#define KL_GRAPHD_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "graphd/graph.h"
#include "ipc/frames.h"
#include "graphd/store.h"

struct gr_tick_in {
	int64_t t_ms;
	const struct gr_obs *obs;
	size_t nobs;
	const struct kl_addr *susp;
	size_t nsusp;
};

struct gr_reader;

/* Observations from a decoded FLOWS frame: obs[i] for each record (obs
 * holds v->h.n_records); the source of each KL_FLOW_F_RESTRICTED record is
 * appended to the suspects (*susp grows with realloc). -1: out of memory.
 * The daemon and the binary-trace replay both read frames through this. */
int gr_flows_to_obs(const struct kl_flows_view *v, struct gr_obs *obs, struct kl_addr **susp,
		    size_t *nsusp, size_t *susp_cap);

/* path "-" is stdin (JSON lines only). */
int gr_reader_open(struct gr_reader **out, const char *path, char *err, size_t errlen);
/* A JSON-lines trace in memory (tests, fuzzing); buf must outlive it. */
int gr_reader_mem(struct gr_reader **out, const char *buf, size_t len, const char *name,
		  char *err, size_t errlen);
/* A binary trace over an open stream (fmemopen for fuzzing); with own it
 * is closed with the reader (also on error). */
int gr_reader_trace_stream(struct gr_reader **out, FILE *f, bool own, const char *name,
			   char *err, size_t errlen);
/* 1 with *t filled (valid until the next call), 0 at the end, -1 with err
 * naming the file, line (or offset) and field. */
int gr_reader_next(struct gr_reader *r, struct gr_tick_in *t, char *err, size_t errlen);
void gr_reader_close(struct gr_reader *r);

struct gr_replay_stats {
	uint64_t ticks, obs, violations;
	int64_t first_t, last_t;
};

/* Run the trace through g (and s, when not NULL: one transaction per
 * tick) and print every violation to out. Returns 0 or -1 with err. */
int gr_replay(struct gr_graph *g, struct gr_store *s, struct gr_reader *r, FILE *out,
	      struct gr_replay_stats *st, char *err, size_t errlen);

#endif
