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
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/trace.h"
#include "ipc/frames.h"
#include "ipc/msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

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
	if (mode == 0) {
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
