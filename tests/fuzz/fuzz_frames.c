/* SPDX-License-Identifier: MPL-2.0 */
/*
 * TELEMETRY and FLOWS decoders, the sensor -> decider/graphd trust
 * boundary. Beyond "does not crash": whatever is accepted re-encodes to the
 * very same bytes (nothing is read that is not checked, nothing checked is
 * dropped), every accepted record holds a valid family and finite,
 * non-negative rates, and whole messages go through the trace printer.
 *
 * Input: byte 0 selects the mode, the rest is the data.
 *   0  TELEMETRY payload    1  FLOWS payload    2, 3  whole wire message
 *   bit 2 set: a sequence of wire messages, each behind a u32 length, fed
 *   to a tick assembler (bit 3: a FLOWS link, else TELEMETRY) whose bound
 *   is SEQ_MAX records: interleaved, repeated, partial and oversized ticks.
 *   Every tick it hands over holds at most SEQ_MAX valid records, and it
 *   never holds room for more.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/trace.h"
#include "ipc/frames.h"
#include "ipc/msg.h"
#include "ipc/tickasm.h"
#include "ipc/wire.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define SEQ_MAX 64

static void telem(const uint8_t *p, size_t len)
{
	struct kl_telem_view v;
	char err[256];

	if (kl_telem_decode(p, len, &v, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(len == kl_telem_payload_len(v.h.n_totals, v.h.n_records));
	uint8_t *again = malloc(len);
	CHECK(again != NULL);
	kl_telem_encode_fixed(&v.h, again);
	uint8_t *rec = again + len - (size_t)v.h.n_records * KL_TELEM_REC_LEN;
	for (uint32_t i = 0; i < v.h.n_records; i++) {
		struct kl_src_rate r;
		kl_telem_record(&v, i, &r);
		CHECK(r.family == 4 || r.family == 6);
		for (int k = 0; k < KL_R_MAX; k++)
			CHECK(isfinite(r.r[k]) && r.r[k] >= 0 && !signbit(r.r[k]));
		kl_telem_encode_record(&r, rec + (size_t)i * KL_TELEM_REC_LEN);
	}
	CHECK(memcmp(again, p, len) == 0);
	free(again);
}

static void flows(const uint8_t *p, size_t len)
{
	struct kl_flows_view v;
	char err[256];

	if (kl_flows_decode(p, len, &v, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(len == kl_flows_payload_len(v.h.n_records));
	uint8_t *again = malloc(len);
	CHECK(again != NULL);
	kl_flows_encode_fixed(&v.h, again);
	for (uint32_t i = 0; i < v.h.n_records; i++) {
		struct kl_flow_rec r;
		kl_flows_record(&v, i, &r);
		CHECK(r.family == 4 || r.family == 6);
		CHECK(r.pkts > 0);
		CHECK(r.port == 0 || r.proto == 6 || r.proto == 17);
		kl_flows_encode_record(&r, again + KL_FLOWS_FIXED_LEN + (size_t)i * KL_FLOWS_REC_LEN);
	}
	CHECK(memcmp(again, p, len) == 0);
	free(again);
}

static void sequence(bool flows_link, const uint8_t *p, size_t len)
{
	struct kl_tickasm a;
	uint64_t fed = 0, handed = 0;

	kl_tickasm_init(&a, flows_link ? KL_MSG_FLOWS : KL_MSG_TELEMETRY, SEQ_MAX);
	while (len >= 4) {
		size_t n = kl_get32(p);
		p += 4;
		len -= 4;
		if (n > len)
			n = len;
		/* A private copy of each message, as the stream hands them over. */
		uint8_t *msg = malloc(n ? n : 1);
		CHECK(msg != NULL);
		memcpy(msg, p, n);
		p += n;
		len -= n;
		struct kl_msg m;
		char err[256] = "";
		if (kl_msg_decode(msg, n, &m, err, sizeof(err)) == 0) {
			fed++;
			int rc = kl_tickasm_feed(&a, &m, err, sizeof(err));
			CHECK(rc >= KL_TICKASM_MORE);
			if (rc == KL_TICKASM_REFUSED)
				CHECK(err[0] != '\0');
			if (rc == KL_TICKASM_TICK) {
				handed++;
				uint32_t nr = kl_tickasm_records(&a);
				CHECK(nr <= SEQ_MAX);
				for (uint32_t i = 0; i < nr; i++) {
					if (flows_link) {
						struct kl_flow_rec r;
						kl_flows_record(&a.flows, i, &r);
						CHECK((r.family == 4 || r.family == 6) && r.pkts > 0);
					} else {
						struct kl_src_rate r;
						kl_telem_record(&a.telem, i, &r);
						CHECK(r.family == 4 || r.family == 6);
						for (int k = 0; k < KL_R_MAX; k++)
							CHECK(isfinite(r.r[k]) && !signbit(r.r[k]));
					}
				}
			}
		}
		CHECK(a.cap <= SEQ_MAX);
		free(msg);
	}
	CHECK(a.st.frames == fed && a.st.ticks == handed);
	kl_tickasm_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	static struct ctl_tick_printer *pr;

	if (size < 1)
		return 0;
	uint8_t mode = data[0] & 3;
	/* A private copy: the decoders must not depend on anything past size. */
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	if (data[0] & 4) {
		sequence((data[0] & 8) != 0, p, len);
	} else if (mode == 0) {
		telem(p, len);
	} else if (mode == 1) {
		flows(p, len);
	} else {
		struct kl_msg m;
		char err[256];
		if (kl_msg_decode(p, len, &m, err, sizeof(err)) == 0) {
			if (m.hdr.type == KL_MSG_TELEMETRY)
				telem(m.payload, m.payload_len);
			else if (m.hdr.type == KL_MSG_FLOWS)
				flows(m.payload, m.payload_len);
			if (null == NULL)
				null = fopen("/dev/null", "w");
			if (pr == NULL)
				pr = ctl_tick_printer_new(null, mode == 2);
			if (pr != NULL && ctl_tick_printer_add(pr, p, len, err, sizeof(err)) == 0)
				ctl_tick_printer_finish(pr);
		}
	}
	free(p);
	return 0;
}
