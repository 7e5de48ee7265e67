/* SPDX-License-Identifier: MPL-2.0 */
/*
 * JSON-lines traces: the line reader (common/jsonl.c) and the decider's
 * trace reader on top of it (decider/trace.c, `kl-decider --replay` of a
 * .jsonl file; graphd's reader on top is fuzzed by fuzz_graph).
 *   0  the line reader over memory and over a stream give the same lines,
 *      line numbers and verdicts (the daemons read files, tests memory)
 *   1  the decider's reader: every tick it yields is sane (time moves
 *      forward, counts within what it holds, finite non-negative rates)
 *   2  the same trace replayed through a decider (default configuration)
 * Input: byte 0 selects the mode, the rest is the trace.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonl.h"
#include "common/log.h"
#include "decider/decider.h"
#include "decider/io.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void lines(const char *p, size_t len)
{
	struct kl_jsonl m, s;
	FILE *f = fmemopen((void *)p, len ? len : 1, "rb");
	CHECK(f != NULL);
	if (len == 0)
		getc(f);
	kl_jsonl_mem(&m, p, len);
	kl_jsonl_file(&s, f, true);
	for (;;) {
		const char *a = NULL, *b = NULL, *wa = NULL, *wb = NULL;
		size_t la = 0, lb = 0;
		int ra = kl_jsonl_next(&m, &a, &la, &wa);
		int rb = kl_jsonl_next(&s, &b, &lb, &wb);
		CHECK(ra == rb);
		CHECK(m.lineno == s.lineno);
		if (ra <= 0) {
			CHECK(ra == 0 || (wa != NULL && wb != NULL && strcmp(wa, wb) == 0));
			break;
		}
		CHECK(la == lb && memcmp(a, b, la) == 0);
		CHECK(a >= p && a + la <= p + len);
		CHECK(memchr(a, '\n', la) == NULL);
	}
	kl_jsonl_close(&m);
	kl_jsonl_close(&s);
}

static void ticks(const char *p, size_t len)
{
	struct kl_errs e = { 0 };
	struct dec_input *in = dec_input_jsonl_mem(p, len, "fuzz", 1000);
	struct dec_tick t;
	int64_t prev = INT64_MIN;
	int r;

	CHECK(in != NULL);
	while ((r = in->next(in, &t, &e)) == 1) {
		CHECK(t.t_ms > prev);
		prev = t.t_ms;
		CHECK(t.elapsed_ms >= 0);
		CHECK(t.nsrc == 0 || t.src != NULL);
		for (size_t i = 0; i < t.nsrc; i++) {
			const struct dec_metrics *m = &t.src[i];
			CHECK(m->addr.family == 4 || m->addr.family == 6);
			CHECK(isfinite(m->pps) && m->pps >= 0 && isfinite(m->bps) && m->bps >= 0);
			CHECK(isfinite(m->syn) && m->syn >= 0 && isfinite(m->scan) && m->scan >= 0);
		}
		CHECK(t.nviol == 0 || t.viol != NULL);
	}
	CHECK(r == 0 || (r == -1 && e.n > 0));
	in->close(in);
	kl_errs_free(&e);
}

static void replay(const char *p, size_t len)
{
	static FILE *null;
	static struct dec_config cfg;
	struct kl_errs e = { 0 };

	if (null == NULL) {
		char *argv[] = { "kl-decider", "--whitelist=", "--feedback-file=",
				 "--replay=fuzz", NULL };
		enum kl_cli_action act;
		CHECK((null = fopen("/dev/null", "w")) != NULL);
		CHECK(dec_load_config(4, argv, &cfg, &act, NULL, &e) == 0);
	}
	struct dec_input *in = dec_input_jsonl_mem(p, len, "fuzz", 1000);
	struct dec_sink *sink = dec_sink_print_new(null, false, cfg.v.dry_run);
	struct dec_decider d;
	CHECK(in != NULL && sink != NULL);
	CHECK(dec_init(&d, &cfg, sink, 1, false) == 0);
	if (dec_replay(&d, in, &e) != 0)
		CHECK(e.n > 0);
	dec_free(&d);
	in->close(in);
	sink->close(sink);
	kl_errs_free(&e);
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
	char *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	switch (data[0] % 3) {
	case 0: lines(p, len); break;
	case 1: ticks(p, len); break;
	default: replay(p, len); break;
	}
	free(p);
	return 0;
}
