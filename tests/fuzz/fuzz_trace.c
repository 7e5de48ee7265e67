/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Binary trace files (ipc/trace.c: what kl-sensor --record writes) and
 * the three readers on top of them, each through the production entry
 * point over a stream (the path-taking openers call the same code):
 *   0  `klctl trace dump`: the record loop into the tick printer
 *   1  `kl-decider --replay`: the trace as decider ticks, replayed through
 *      a decider with the default configuration
 *   2  `kl-graphd --replay`: the trace's FLOWS frames into a graph
 * Beyond "does not crash or leak": every stop says why, offsets only grow,
 * and every record the reader returns is a whole message.
 *
 * Input: byte 0 selects the reader (bits 0-1) and whether the records'
 * CRCs are fixed up first (bit 2: without it nearly every mutation stops
 * at the first CRC), the rest is the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/log.h"
#include "ctl/trace.h"
#include "decider/decider.h"
#include "decider/io.h"
#include "graphd/graph.h"
#include "graphd/replay.h"
#include "ipc/msg.h"
#include "ipc/trace.h"
#include "ipc/wire.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static FILE *null_out(void)
{
	static FILE *null;
	if (null == NULL)
		CHECK((null = fopen("/dev/null", "w")) != NULL);
	return null;
}

/* Give every record that fits in the buffer its correct CRC. */
static void fix_crcs(uint8_t *p, size_t len)
{
	size_t off = KL_TRACE_HDR_LEN;

	while (off + KL_TRACE_REC_HDR_LEN <= len) {
		uint32_t l = kl_get32(p + off);
		if (l > len - off - KL_TRACE_REC_HDR_LEN)
			break;
		uint32_t c = (uint32_t)crc32(0L, p + off + KL_TRACE_REC_HDR_LEN, l);
		kl_put32(p + off + 4, c);
		off += KL_TRACE_REC_HDR_LEN + l;
	}
}

static void dump(FILE *f, bool json)
{
	struct kl_trace_reader *r;
	char err[512] = "";

	if (kl_trace_open_stream(&r, f, true, "fuzz", err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	struct ctl_tick_printer *p = ctl_tick_printer_new(null_out(), json);
	CHECK(p != NULL);
	const uint8_t *msg;
	size_t len;
	uint64_t last = 0;
	bool first = true;
	int rc;
	while ((rc = kl_trace_next(r, &msg, &len, err, sizeof(err))) == KL_TRACE_REC) {
		CHECK(len >= KL_MSG_HDR_LEN);
		uint64_t off = kl_trace_offset(r);
		CHECK(off >= KL_TRACE_HDR_LEN && (first || off > last));
		first = false;
		last = off;
		char why[300] = "";
		if (ctl_tick_printer_add(p, msg, len, why, sizeof(why)) < 0) {
			CHECK(why[0] != '\0');
			break;
		}
	}
	CHECK(rc == KL_TRACE_REC || rc == KL_TRACE_EOF || err[0] != '\0');
	ctl_tick_printer_finish(p);
	ctl_tick_printer_free(p);
	kl_trace_close_read(r);
}

static void decider(FILE *f)
{
	static struct dec_config cfg;
	static bool init;
	struct kl_errs e = { 0 };

	if (!init) {
		char *argv[] = { "kl-decider", "--whitelist=", "--feedback-file=",
				 "--replay=fuzz", NULL };
		enum kl_cli_action act;
		CHECK(dec_load_config(4, argv, &cfg, &act, NULL, &e) == 0);
		init = true;
	}
	struct dec_input *in = dec_input_ktrace_stream(f, true, "fuzz", &e);
	if (in == NULL) {
		CHECK(e.n > 0);
		kl_errs_free(&e);
		return;
	}
	struct dec_sink *sink = dec_sink_print_new(null_out(), true, cfg.v.dry_run);
	struct dec_decider d;
	CHECK(sink != NULL);
	CHECK(dec_init(&d, &cfg, sink, 1, false) == 0);
	if (dec_replay(&d, in, &e) != 0)
		CHECK(e.n > 0);
	dec_free(&d);
	in->close(in);
	sink->close(sink);
	kl_errs_free(&e);
}

static void graphd(FILE *f)
{
	struct gr_reader *r;
	struct gr_graph g;
	struct gr_params pp;
	struct gr_replay_stats st;
	char err[512] = "";

	if (gr_reader_trace_stream(&r, f, true, "fuzz", err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	gr_params_default(&pp);
	pp.min_age_ms = 1000;
	pp.promote_every_ms = 1000;
	pp.window_ms = 1000;
	CHECK(gr_init(&g, &pp) == 0);
	if (gr_replay(&g, NULL, r, NULL, &st, err, sizeof(err)) < 0)
		CHECK(err[0] != '\0');
	size_t sum = 0;
	for (unsigned s = 0; s < GR_STATE_MAX; s++)
		sum += g.count[s];
	CHECK(sum == g.n);
	gr_reader_close(r);
	gr_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		kl_log_init("fuzz", KL_LOG_ERROR);
		quiet = true;
	}
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	if (data[0] & 4)
		fix_crcs(p, len);
	/* fmemopen of 0 bytes fails: an empty file is one byte, read. */
	FILE *f = fmemopen(p, len ? len : 1, "rb");
	CHECK(f != NULL);
	if (len == 0)
		getc(f);
	switch (data[0] & 3) {
	case 0: dump(f, true); break;
	case 1: dump(f, false); break;
	case 2: decider(f); break;
	default: graphd(f); break;
	}
	free(p);
	return 0;
}
