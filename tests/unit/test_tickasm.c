/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A tick split into frames by the builder and put back together by the
 * assembler: every record arrives once, in order, at any size; partial,
 * interleaved, repeated and oversized ticks are handled by the rule in
 * ipc/tickasm.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/frames.h"
#include "ipc/msg.h"
#include "ipc/tickasm.h"
#include "ipc/wire.h"

/* Source i: 198.18.x.y from i, pps = i + 1. */
static struct kl_src_rate src_i(uint32_t i)
{
	struct kl_src_rate r;

	memset(&r, 0, sizeof(r));
	r.family = 4;
	r.addr[0] = 198;
	r.addr[1] = (uint8_t)(18 + (i >> 16));
	r.addr[2] = (uint8_t)(i >> 8);
	r.addr[3] = (uint8_t)i;
	r.r[KL_R_PPS] = (double)i + 1;
	return r;
}

/* A TELEMETRY tick of n sources, per_frame records per frame (0: as many
 * as fit), message seq from 1. */
static void telem_tick(struct kl_frame *f, uint64_t tick, uint32_t n, uint32_t per_frame)
{
	struct kl_telem_hdr h;

	memset(&h, 0, sizeof(h));
	h.tick = tick;
	h.t_ns = 1000000000ull * tick;
	h.elapsed_ns = 1000000000ull;
	h.n_totals = KL_T_MAX;
	h.totals[KL_T_PKTS] = 100 + tick;
	assert_int_equal(kl_frame_begin_telem(f, 1, &h), 0);
	if (per_frame > 0)
		f->max_records = per_frame;
	for (uint32_t i = 0; i < n; i++) {
		struct kl_src_rate r = src_i(i);
		assert_int_equal(kl_frame_add_src(f, &r), 0);
	}
	kl_frame_end(f);
	assert_int_equal(f->n, n);
}

static int feed_raw(struct kl_tickasm *a, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct kl_msg m;

	assert_int_equal(kl_msg_decode(p, len, &m, err, errlen), 0);
	return kl_tickasm_feed(a, &m, err, errlen);
}

/* Feed message i of f. */
static int feed(struct kl_tickasm *a, const struct kl_frame *f, uint32_t i)
{
	char err[512];
	size_t len;
	const uint8_t *p = kl_frame_msg(f, i, &len);

	return feed_raw(a, p, len, err, sizeof(err));
}

/* The assembled tick holds sources 0..n-1 in order. */
static void expect_sources(const struct kl_tickasm *a, uint64_t tick, uint32_t n)
{
	const struct kl_telem_view *v = &a->telem;

	assert_int_equal(v->h.tick, tick);
	assert_int_equal(v->h.n_records, n);
	assert_int_equal(kl_tickasm_records(a), n);
	assert_true(v->h.last);
	assert_int_equal(v->h.n_totals, KL_T_MAX);
	assert_int_equal(v->h.totals[KL_T_PKTS], 100 + tick);
	for (uint32_t i = 0; i < n; i++) {
		struct kl_src_rate r, want = src_i(i);
		kl_telem_record(v, i, &r);
		assert_memory_equal(r.addr, want.addr, 16);
		assert_true(r.r[KL_R_PPS] == want.r[KL_R_PPS]);
	}
}

static void test_split_and_assemble(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_tickasm a;
	(void)state;

	kl_tickasm_init(&a, KL_MSG_TELEMETRY, 1000);
	/* 10 records, 3 per frame: 4 frames, the tick only at the last. */
	telem_tick(&f, 7, 10, 3);
	assert_int_equal(f.nmsg, 4);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(feed(&a, &f, i), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &f, 3), KL_TICKASM_TICK);
	expect_sources(&a, 7, 10);
	/* Exactly full frames: 9 records, 3 per frame, 3 frames. */
	telem_tick(&f, 8, 9, 3);
	assert_int_equal(f.nmsg, 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(feed(&a, &f, i), i < 2 ? KL_TICKASM_MORE : KL_TICKASM_TICK);
	expect_sources(&a, 8, 9);
	/* One frame: handed over as the message itself, no copy. */
	telem_tick(&f, 9, 5, 0);
	assert_int_equal(f.nmsg, 1);
	size_t len;
	const uint8_t *msg = kl_frame_msg(&f, 0, &len);
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_TICK);
	expect_sources(&a, 9, 5);
	assert_ptr_equal(a.telem.records, msg + KL_MSG_HDR_LEN + KL_TELEM_FIXED_LEN + 8 * KL_T_MAX);
	/* An empty tick is one frame with no records. */
	telem_tick(&f, 10, 0, 3);
	assert_int_equal(f.nmsg, 1);
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_TICK);
	expect_sources(&a, 10, 0);
	assert_int_equal(a.st.ticks, 4);
	assert_int_equal(a.st.dropped + a.st.bad + a.st.oversized + a.st.missed, 0);
	kl_tickasm_free(&a);
	kl_frame_free(&f);
}

static void test_flows_split(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_flows_hdr h = { .tick = 4, .t_ns = 5, .elapsed_ns = 6 };
	struct kl_tickasm a;
	(void)state;

	kl_tickasm_init(&a, KL_MSG_FLOWS, 100);
	assert_int_equal(kl_frame_begin_flows(&f, 1, &h), 0);
	f.max_records = 4;
	for (uint16_t i = 0; i < 11; i++) {
		struct kl_flow_rec r = { .family = 4, .addr = { 198, 18, 0, (uint8_t)i },
					 .port = (uint16_t)(1000 + i), .proto = 6, .pkts = 1u + i,
					 .bytes = 60 };
		assert_int_equal(kl_frame_add_flow(&f, &r), 0);
	}
	kl_frame_end(&f);
	assert_int_equal(f.nmsg, 3);
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &f, 1), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &f, 2), KL_TICKASM_TICK);
	assert_int_equal(a.flows.h.n_records, 11);
	assert_int_equal(a.flows.h.tick, 4);
	for (uint32_t i = 0; i < 11; i++) {
		struct kl_flow_rec r;
		kl_flows_record(&a.flows, i, &r);
		assert_int_equal(r.port, 1000 + i);
		assert_int_equal(r.pkts, 1 + i);
	}
	/* A TELEMETRY frame has no place on a FLOWS link. */
	struct kl_frame t = { 0 };
	char err[256];
	size_t len;
	telem_tick(&t, 5, 1, 0);
	const uint8_t *p = kl_frame_msg(&t, 0, &len);
	assert_int_equal(feed_raw(&a, p, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_non_null(strstr(err, "TELEMETRY on a link that carries FLOWS"));
	kl_frame_free(&t);
	kl_tickasm_free(&a);
	kl_frame_free(&f);
}

/* Partial ticks are dropped, never handed over, and the next whole tick
 * still is. */
static void test_hostile_sequences(void **state)
{
	struct kl_frame t1 = { 0 }, t2 = { 0 }, t3 = { 0 };
	struct kl_tickasm a;
	(void)state;

	kl_tickasm_init(&a, KL_MSG_TELEMETRY, 1000);
	telem_tick(&t1, 1, 6, 2); /* 3 frames */
	telem_tick(&t2, 2, 6, 2);
	telem_tick(&t3, 3, 4, 2); /* 2 frames */

	/* Interleaved: tick 2 begins before tick 1's last frame. Tick 1 is
	 * dropped, tick 2 is whole; tick 1's late frames go nowhere. */
	assert_int_equal(feed(&a, &t1, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t1, 1), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t2, 0), KL_TICKASM_MORE);
	assert_int_equal(a.st.dropped, 1);
	assert_non_null(strstr(a.note, "tick 1 dropped after 2 of its frames"));
	assert_int_equal(feed(&a, &t2, 1), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t2, 2), KL_TICKASM_TICK);
	expect_sources(&a, 2, 6);
	assert_int_equal(feed(&a, &t1, 2), KL_TICKASM_MORE); /* stray last frame */
	assert_int_equal(a.st.dropped, 2);
	assert_non_null(strstr(a.note, "without its frame 0"));
	assert_int_equal(a.st.ticks, 1);

	/* A repeated last frame does not hand the tick over twice. */
	assert_int_equal(feed(&a, &t3, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t3, 1), KL_TICKASM_TICK);
	expect_sources(&a, 3, 4);
	assert_int_equal(feed(&a, &t3, 1), KL_TICKASM_MORE);
	assert_int_equal(a.st.ticks, 2);

	/* A lost middle frame: frame 2 where frame 1 belonged drops the
	 * tick; the next tick's frame 0 starts afresh. */
	telem_tick(&t1, 4, 6, 2);
	assert_int_equal(feed(&a, &t1, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t1, 2), KL_TICKASM_MORE);
	assert_non_null(strstr(a.note, "frame 2 of tick 4 came where frame 1 belonged"));
	telem_tick(&t2, 5, 6, 2);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(feed(&a, &t2, i), i < 2 ? KL_TICKASM_MORE : KL_TICKASM_TICK);
	expect_sources(&a, 5, 6);
	/* Tick 4 never arrived whole: one tick missed between 3 and 5. */
	assert_int_equal(a.st.missed, 1);
	assert_non_null(strstr(a.note, "1 ticks missed before sensor tick 5"));

	/* A frame of another tick number in the middle (same index). */
	telem_tick(&t1, 6, 6, 2);
	telem_tick(&t2, 7, 6, 2);
	assert_int_equal(feed(&a, &t1, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t2, 1), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &t1, 1), KL_TICKASM_MORE); /* skipped: tick 6 is gone */
	assert_int_equal(feed(&a, &t1, 2), KL_TICKASM_MORE);
	assert_int_equal(a.st.ticks, 3);

	/* The sensor restarts: tick numbers begin again. */
	telem_tick(&t3, 1, 1, 0);
	assert_int_equal(feed(&a, &t3, 0), KL_TICKASM_TICK);
	assert_int_equal(a.st.restarts, 1);
	assert_non_null(strstr(a.note, "sensor restarted"));
	kl_tickasm_free(&a);
	kl_frame_free(&t1);
	kl_frame_free(&t2);
	kl_frame_free(&t3);
}

/* Frames that decode but lie: checked against each other. */
static void test_refused_frames(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_tickasm a;
	char err[512];
	size_t len;
	uint8_t *copy;
	(void)state;

	kl_tickasm_init(&a, KL_MSG_TELEMETRY, 1000);
	telem_tick(&f, 3, 4, 2);
	/* The wire header's tick must be the payload's. */
	const uint8_t *p = kl_frame_msg(&f, 0, &len);
	copy = malloc(len);
	memcpy(copy, p, len);
	kl_put64(copy + 24, 99);
	assert_int_equal(feed_raw(&a, copy, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_non_null(strstr(err, "header tick 99 but payload tick 3"));
	free(copy);
	/* A later frame on another clock than frame 0. */
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_MORE);
	p = kl_frame_msg(&f, 1, &len);
	copy = malloc(len);
	memcpy(copy, p, len);
	kl_put64(copy + KL_MSG_HDR_LEN + 8, 12345);
	assert_int_equal(feed_raw(&a, copy, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_non_null(strstr(err, "another t_ns or elapsed_ns"));
	assert_int_equal(a.st.dropped, 1);
	free(copy);
	/* A frame that does not decode drops the open tick too. */
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_MORE);
	p = kl_frame_msg(&f, 1, &len);
	copy = malloc(len);
	memcpy(copy, p, len);
	kl_put32(copy + KL_MSG_HDR_LEN + 36, 4);
	assert_int_equal(feed_raw(&a, copy, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_non_null(strstr(err, "unknown frame_flags"));
	assert_int_equal(feed(&a, &f, 1), KL_TICKASM_MORE);
	assert_int_equal(a.st.ticks, 0);
	assert_int_equal(a.st.bad, 3);
	free(copy);
	kl_tickasm_free(&a);
	kl_frame_free(&f);
}

/* The memory bound is the whole tick's: frames each within it but
 * together above it are refused, and the assembler never holds more. */
static void test_oversized_tick(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_tickasm a;
	char err[512];
	size_t len;
	(void)state;

	kl_tickasm_init(&a, KL_MSG_TELEMETRY, 5);
	telem_tick(&f, 1, 8, 3); /* 3 + 3 + 2 */
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_MORE);
	const uint8_t *p = kl_frame_msg(&f, 1, &len);
	assert_int_equal(feed_raw(&a, p, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_non_null(strstr(err, "tick 1 holds more than 5 records"));
	assert_true(a.cap <= 5);
	assert_int_equal(feed(&a, &f, 2), KL_TICKASM_MORE); /* the rest is skipped */
	assert_int_equal(a.st.oversized, 1);
	/* One frame above the bound alone. */
	telem_tick(&f, 2, 6, 0);
	p = kl_frame_msg(&f, 0, &len);
	assert_int_equal(feed_raw(&a, p, len, err, sizeof(err)), KL_TICKASM_REFUSED);
	assert_int_equal(a.st.oversized, 2);
	/* At the bound exactly, in frames: fine. */
	telem_tick(&f, 3, 5, 2);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(feed(&a, &f, i), i < 2 ? KL_TICKASM_MORE : KL_TICKASM_TICK);
	expect_sources(&a, 3, 5);
	assert_true(a.cap <= 5);
	kl_tickasm_free(&a);
	kl_frame_free(&f);
}

/* A tick larger than one message can hold, at the real frame size: the
 * map size that produces it (2^20 sources per family) is one a user may
 * configure, and no record is lost on the way. */
static void test_larger_than_one_frame(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_tickasm a;
	uint32_t n = KL_TELEM_MAX_RECORDS + 1000;
	(void)state;

	assert_true(kl_telem_tick_max(1u << 20) >= n);
	kl_tickasm_init(&a, KL_MSG_TELEMETRY, kl_telem_tick_max(1u << 20));
	telem_tick(&f, 1, n, 0);
	assert_int_equal(f.nmsg, 2);
	assert_int_equal(feed(&a, &f, 0), KL_TICKASM_MORE);
	assert_int_equal(feed(&a, &f, 1), KL_TICKASM_TICK);
	expect_sources(&a, 1, n);
	/* Every frame fits the per-message limit the receivers set. */
	for (uint32_t i = 0; i < f.nmsg; i++) {
		size_t len;
		kl_frame_msg(&f, i, &len);
		assert_true(len <= kl_telem_msg_max(1u << 20));
	}
	kl_tickasm_free(&a);
	kl_frame_free(&f);
}

/* Flows are read from slot arrays holding twice map_sizes.flow (rounded up
 * to a power of two): a tick with every slot of both families in use is a
 * legitimate tick, and is accepted; one record more is not. */
static void test_flows_tick_bound_is_the_slots(void **state)
{
	struct kl_frame f = { 0 };
	struct kl_flows_hdr h = { .tick = 1 };
	struct kl_tickasm a;
	uint32_t flows = 1000, n = (uint32_t)(2 * kl_slots_for(flows)); /* 2 x 2048 */
	(void)state;

	assert_int_equal(kl_flows_tick_max(flows), 4096);
	assert_int_equal(kl_telem_tick_max(flows), 4096);
	for (uint32_t extra = 0; extra < 2; extra++) {
		char err[256];
		size_t len;
		kl_tickasm_init(&a, KL_MSG_FLOWS, kl_flows_tick_max(flows));
		assert_int_equal(kl_frame_begin_flows(&f, 1, &h), 0);
		for (uint32_t i = 0; i < n + extra; i++) {
			struct kl_flow_rec r = { .family = 4, .addr = { 198, 18, (uint8_t)(i >> 8),
									 (uint8_t)i },
						 .port = 443, .proto = 6, .pkts = 1, .bytes = 60 };
			assert_int_equal(kl_frame_add_flow(&f, &r), 0);
		}
		kl_frame_end(&f);
		assert_int_equal(f.nmsg, 1);
		const uint8_t *m = kl_frame_msg(&f, 0, &len);
		int rc = feed_raw(&a, m, len, err, sizeof(err));
		if (extra == 0) {
			assert_int_equal(rc, KL_TICKASM_TICK);
			assert_int_equal(a.flows.h.n_records, n);
		} else {
			assert_int_equal(rc, KL_TICKASM_REFUSED);
		}
		kl_tickasm_free(&a);
		kl_frame_free(&f);
		memset(&f, 0, sizeof(f));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_and_assemble),
		cmocka_unit_test(test_flows_split),
		cmocka_unit_test(test_flows_tick_bound_is_the_slots),
		cmocka_unit_test(test_hostile_sequences),
		cmocka_unit_test(test_refused_frames),
		cmocka_unit_test(test_oversized_tick),
		cmocka_unit_test(test_larger_than_one_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
