/* SPDX-License-Identifier: MPL-2.0 */
/* Harvest deltas: rates, resets, LRU re-creation, appearing/vanishing sources. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harvest/harvest.h"

#define S 1000000000ull
#define T0 (1000 * S) /* boot time of the baseline harvest */

static const uint8_t A1[4] = { 198, 18, 0, 1 };
static const uint8_t A3[4] = { 198, 18, 0, 3 };
static const uint8_t A6[16] = { 0xfd, 0x00, 0x6b, 0x6c, [15] = 1 };

static struct kl_src_stats mk(uint64_t pkts, uint64_t first_seen)
{
	struct kl_src_stats s;

	memset(&s, 0, sizeof(s));
	s.pkts = pkts;
	s.bytes = pkts * 100;
	s.syn = pkts / 2;
	s.pass = pkts;
	s.first_seen_ns = first_seen;
	s.last_seen_ns = first_seen;
	return s;
}

static void assert_near(double got, double want)
{
	if (fabs(got - want) > 1e-9 * (fabs(want) + 1))
		fail_msg("got %.12g, want %.12g", got, want);
}

static int setup(void **state)
{
	struct kl_harvest *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	assert_int_equal(kl_harvest_init(h, 10 * S, 0, 0), 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	kl_harvest_free(*state);
	free(*state);
	return 0;
}

static void test_baseline_then_rates(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(1000, T0 - 5 * S);
	struct kl_src_rate r;

	assert_int_equal(kl_harvest_begin(h, T0, 0), 0);
	assert_false(kl_harvest_src(h, 4, A1, &s, &r)); /* baseline: history unknown */
	kl_harvest_end(h);
	assert_int_equal(h->st.src_seen, 1);
	assert_int_equal(h->st.src_active, 0);

	assert_int_equal(kl_harvest_begin(h, T0 + S, 0), 1);
	s.pkts += 200;
	s.bytes += 200 * 80;
	s.syn += 150;
	s.synack += 3;
	s.rst += 4;
	s.drop_rl += 50;
	s.pass += 150;
	s.ports_distinct += 30;
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_int_equal(r.family, 4);
	assert_memory_equal(r.addr, A1, 4);
	for (int i = 4; i < 16; i++)
		assert_int_equal(r.addr[i], 0);
	assert_near(r.r[KL_R_PPS], 200);
	assert_near(r.r[KL_R_BPS], 16000);
	assert_near(r.r[KL_R_SYN], 150);
	assert_near(r.r[KL_R_SYNACK], 3);
	assert_near(r.r[KL_R_RST], 4);
	assert_near(r.r[KL_R_SCAN], 30);
	assert_near(r.r[KL_R_DROP_RL], 50);
	assert_near(r.r[KL_R_PASS], 150);
	assert_near(r.r[KL_R_DROP_DENY], 0);
	assert_int_equal(h->elapsed_ns, S);

	/* The real elapsed time, not the nominal interval: 2.5 s. */
	kl_harvest_begin(h, T0 + S + 2500000000ull, 0);
	s.pkts += 500;
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 200);
	assert_near(r.r[KL_R_BPS], 0);

	/* An explicit elapsed (from-pcap's virtual clock) wins over now. */
	kl_harvest_begin(h, T0 + 4 * S, S / 2);
	s.pkts += 100;
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 200);
}

static void test_idle_source_sends_nothing(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(10, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s, &r);
	kl_harvest_end(h);
	kl_harvest_begin(h, T0 + S, 0);
	assert_false(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.src_active, 0);
	assert_int_equal(kl_harvest_known_src(h), 1);
}

static void test_counter_backwards_is_delta(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(5000, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s, &r);
	kl_harvest_end(h);
	/* The enforcer rewrote the entry: pkts restarted at 40 with the same
	 * first_seen. Not a huge negative or wrapped delta, not hidden: 40. */
	s = mk(40, T0 - S);
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 40);
	assert_near(r.r[KL_R_BPS], 4000);
	assert_int_equal(h->st.src_restarted, 1);
	/* And from there on, plain deltas again. */
	s.pkts += 10;
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 10);
	assert_int_equal(h->st.src_restarted, 0);
}

static void test_lru_recreation_is_delta(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(100, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 6, A6, &s, &r);
	kl_harvest_end(h);
	/* Evicted and recreated within the tick with MORE packets than the
	 * old entry had: a subtraction would report 30 instead of 130. */
	s = mk(130, T0 + S / 2);
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 6, A6, &s, &r));
	kl_harvest_end(h);
	assert_int_equal(r.family, 6);
	assert_memory_equal(r.addr, A6, 16);
	assert_near(r.r[KL_R_PPS], 130);
	assert_int_equal(h->st.src_restarted, 1);
}

static void test_sources_appear(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s1 = mk(10, T0 - S), s3;
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s1, &r);
	kl_harvest_end(h);

	/* Created after the previous harvest: everything it has is new. */
	s3 = mk(77, T0 + S / 3);
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 4, A3, &s3, &r));
	assert_false(kl_harvest_src(h, 4, A1, &s1, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.src_new, 1);
	assert_int_equal(kl_harvest_known_src(h), 2);

	/* An entry created a jiffy before the previous harvest but missed by
	 * it still counts as new (the data plane's clock lags). */
	struct kl_src_stats s6 = mk(9, T0 + S - 3000000);
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_src(h, 6, A6, &s6, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 9);
}

static void test_missed_old_entry_is_not_a_spike(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s1 = mk(10, T0 - S), old = mk(1000000, T0 - 100 * S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s1, &r);
	kl_harvest_end(h);
	/* A source the previous harvests did not see although it is old: its
	 * million packets are history, not this tick's traffic. */
	kl_harvest_begin(h, T0 + S, 0);
	assert_false(kl_harvest_src(h, 4, A3, &old, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.src_unknown, 1);
	old.pkts += 25;
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_src(h, 4, A3, &old, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 25);

	/* The same unknown old entry in a map that replaced the one we read
	 * (enforcer restart): nothing of it was reported, so it all counts. */
	struct kl_src_stats other = mk(700, T0 - 50 * S);
	kl_harvest_begin(h, T0 + 3 * S, 0);
	h->all_new = true;
	assert_true(kl_harvest_src(h, 6, A6, &other, &r));
	h->all_new = false;
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 700);
	assert_int_equal(h->st.src_new, 1);
}

static void test_vanish_and_prev_ttl(void **state)
{
	struct kl_harvest *h = *state; /* prev_ttl 10 s */
	struct kl_src_stats s1 = mk(10, T0 - S), s3 = mk(20, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s1, &r);
	kl_harvest_src(h, 4, A3, &s3, &r);
	kl_harvest_end(h);
	assert_int_equal(kl_harvest_known_src(h), 2);
	/* A3 vanishes from the map; it is kept for prev_ttl ... */
	for (uint64_t t = 1; t <= 10; t++) {
		kl_harvest_begin(h, T0 + t * S, 0);
		kl_harvest_src(h, 4, A1, &s1, &r);
		kl_harvest_end(h);
		assert_int_equal(kl_harvest_known_src(h), 2);
		assert_int_equal(h->st.src_forgotten, 0);
	}
	/* ... and forgotten once absent for longer. */
	kl_harvest_begin(h, T0 + 11 * S, 0);
	kl_harvest_src(h, 4, A1, &s1, &r);
	kl_harvest_end(h);
	assert_int_equal(h->st.src_forgotten, 1);
	assert_int_equal(kl_harvest_known_src(h), 1);
	/* An idle source still in the map is never forgotten: forgetting it
	 * would turn its whole history into one tick's delta later. */
	for (uint64_t t = 12; t < 40; t++) {
		kl_harvest_begin(h, T0 + t * S, 0);
		kl_harvest_src(h, 4, A1, &s1, &r);
		kl_harvest_end(h);
	}
	assert_int_equal(kl_harvest_known_src(h), 1);
	/* A3 comes back with a new LRU entry: new. */
	s3 = mk(5, T0 + 39 * S + S / 2);
	kl_harvest_begin(h, T0 + 40 * S, 0);
	assert_true(kl_harvest_src(h, 4, A3, &s3, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 5);
}

static void test_missed_tick_spans_two(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(10, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s, &r);
	kl_harvest_end(h);
	kl_harvest_begin(h, T0 + S, 0); /* the read of this map failed */
	kl_harvest_end(h);
	s.pkts += 400; /* 200 pps over two ticks, not 400 in one */
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 200);
}

static void test_duplicate_in_one_tick(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats s = mk(10, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s, &r);
	kl_harvest_end(h);
	s.pkts += 10;
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	s.pkts += 10;
	assert_false(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.src_dup, 1);
	assert_int_equal(h->st.src_active, 1);
	/* The duplicate did not move the baseline: 10 more is 10. */
	s.pkts = 30;
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s, &r));
	kl_harvest_end(h);
	assert_near(r.r[KL_R_PPS], 10);
}

static void test_families_are_distinct(void **state)
{
	struct kl_harvest *h = *state;
	uint8_t v6[16] = { 198, 18, 0, 1 }; /* same first bytes as A1 */
	struct kl_src_stats s4 = mk(10, T0 - S), s6 = mk(50, T0 - S);
	struct kl_src_rate r;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &s4, &r);
	kl_harvest_src(h, 6, v6, &s6, &r);
	kl_harvest_end(h);
	assert_int_equal(kl_harvest_known_src(h), 2);
	s4.pkts += 1;
	s6.pkts += 2;
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &s4, &r));
	assert_near(r.r[KL_R_PPS], 1);
	assert_true(kl_harvest_src(h, 6, v6, &s6, &r));
	assert_near(r.r[KL_R_PPS], 2);
	kl_harvest_end(h);
}

static void test_totals(void **state)
{
	struct kl_harvest *h = *state;
	uint64_t t[KL_T_MAX] = { 0 };

	t[KL_T_PKTS] = 1000;
	t[KL_T_DROP_RL] = 7;
	kl_harvest_begin(h, T0, 0);
	kl_harvest_totals(h, t);
	kl_harvest_end(h);
	assert_int_equal(h->totals_delta[KL_T_PKTS], 0);
	t[KL_T_PKTS] = 1300;
	t[KL_T_DROP_RL] = 2; /* a new map: restarted */
	kl_harvest_begin(h, T0 + S, 0);
	kl_harvest_totals(h, t);
	kl_harvest_end(h);
	assert_int_equal(h->totals_delta[KL_T_PKTS], 300);
	assert_int_equal(h->totals_delta[KL_T_DROP_RL], 2);
}

static void test_flows(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_flow_stats f = { .pkts = 10, .bytes = 1000, .first_seen_ns = T0 - S };
	struct kl_flow_rec r;

	kl_harvest_begin(h, T0, 0);
	assert_false(kl_harvest_flow(h, 4, A1, 443, 6, &f, &r));
	kl_harvest_end(h);
	f.pkts += 5;
	f.bytes += 600;
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_flow(h, 4, A1, 443, 6, &f, &r));
	/* Same source, other port and proto: other flows. */
	struct kl_flow_stats g = { .pkts = 3, .bytes = 300, .first_seen_ns = T0 + S / 2 };
	struct kl_flow_rec r2;
	assert_true(kl_harvest_flow(h, 4, A1, 443, 17, &g, &r2));
	kl_harvest_end(h);
	assert_int_equal(r.pkts, 5);
	assert_int_equal(r.bytes, 600);
	assert_int_equal(r.port, 443);
	assert_int_equal(r.proto, 6);
	assert_int_equal(r2.pkts, 3);
	assert_int_equal(r2.proto, 17);
	assert_int_equal(kl_harvest_known_flows(h), 2);
	/* No packets: no record. Recreated: its counters. */
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_false(kl_harvest_flow(h, 4, A1, 443, 6, &f, &r));
	g.first_seen_ns = T0 + S + S / 2;
	g.pkts = 4;
	g.bytes = 400;
	assert_true(kl_harvest_flow(h, 4, A1, 443, 17, &g, &r2));
	kl_harvest_end(h);
	assert_int_equal(r2.pkts, 4);
}

/* Two slots of one flow for a moment (two CPUs claimed one each): the
 * second record of a walk neither counts again nor fakes a restart, and
 * the next tick's delta is against the first. */
static void test_flow_twice_in_one_tick(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_flow_stats a = { .pkts = 10, .bytes = 1000, .first_seen_ns = T0 - S };
	struct kl_flow_stats b = { .pkts = 2, .bytes = 200, .first_seen_ns = T0 - S / 2 };
	struct kl_flow_rec r;

	kl_harvest_begin(h, T0, 0);
	assert_false(kl_harvest_flow(h, 4, A1, 443, 6, &a, &r)); /* the baseline */
	assert_false(kl_harvest_flow(h, 4, A1, 443, 6, &b, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.flow_seen, 1);
	assert_int_equal(h->st.flow_dup, 1);

	a.pkts = 15;
	a.bytes = 1500;
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_flow(h, 4, A1, 443, 6, &a, &r));
	assert_int_equal(r.pkts, 5); /* against the baseline's first record */
	assert_int_equal(r.bytes, 500);
	/* A way claimed this tick by another CPU: newer first_seen, fewer
	 * packets. */
	b = (struct kl_flow_stats){ .pkts = 3, .bytes = 300, .first_seen_ns = T0 + S / 2 };
	assert_false(kl_harvest_flow(h, 4, A1, 443, 6, &b, &r));
	kl_harvest_end(h);
	assert_int_equal(h->st.flow_seen, 1);
	assert_int_equal(h->st.flow_active, 1);
	assert_int_equal(h->st.flow_dup, 1);

	/* The other way was given back: 5 more is 5. */
	a.pkts = 20;
	a.bytes = 2000;
	kl_harvest_begin(h, T0 + 2 * S, 0);
	assert_true(kl_harvest_flow(h, 4, A1, 443, 6, &a, &r));
	kl_harvest_end(h);
	assert_int_equal(r.pkts, 5);
	assert_int_equal(r.bytes, 500);
	assert_int_equal(h->st.flow_dup, 0);
}

static void test_restricted_verdicts(void **state)
{
	(void)state;
	struct kl_src_stats s = mk(10, T0);
	uint64_t now = T0 + 5 * S;

	assert_false(kl_src_restricted(&s, now)); /* never judged */
	s.verdict = KL_V_CACHED;
	assert_false(kl_src_restricted(&s, now));
	s.verdict = KL_V_CACHED | KL_V_RL;
	s.rl_expires_ns = 0; /* permanent */
	assert_true(kl_src_restricted(&s, now));
	s.rl_expires_ns = now + 1;
	assert_true(kl_src_restricted(&s, now));
	s.rl_expires_ns = now; /* lapsed: the data plane no longer limits it */
	assert_false(kl_src_restricted(&s, now));
	s.verdict = KL_V_CACHED | KL_V_DENIED;
	s.deny_expires_ns = now + S;
	assert_true(kl_src_restricted(&s, now));
	s.deny_expires_ns = now - 1;
	assert_false(kl_src_restricted(&s, now));
	s.deny_expires_ns = 0;
	s.verdict = KL_V_DENIED; /* stale bits without KL_V_CACHED mean nothing */
	assert_false(kl_src_restricted(&s, now));
	s.verdict = KL_V_CACHED | KL_V_DENIED | KL_V_PROTECTED | KL_V_ALLOWED;
	assert_false(kl_src_restricted(&s, now)); /* rules never apply to it */
}

/* A flow record carries its source's verdict of the same tick. */
static void test_flows_flag_restricted_sources(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_stats a = mk(10, T0 - S), b = mk(10, T0 - S);
	struct kl_flow_stats fa = { .pkts = 10, .bytes = 1000, .first_seen_ns = T0 - S };
	struct kl_flow_stats fb = fa, f6 = fa;
	struct kl_src_rate r;
	struct kl_flow_rec ra, rb, r6;

	kl_harvest_begin(h, T0, 0);
	kl_harvest_src(h, 4, A1, &a, &r);
	kl_harvest_src(h, 4, A3, &b, &r);
	kl_harvest_flow(h, 4, A1, 443, 6, &fa, &ra);
	kl_harvest_flow(h, 4, A3, 443, 6, &fb, &rb);
	kl_harvest_flow(h, 6, A6, 53, 17, &f6, &r6);
	kl_harvest_end(h);

	/* Tick 1: A3 rate-limited; the v6 source has flows but no source entry. */
	a.pkts += 5;
	b.pkts += 5;
	b.verdict = KL_V_CACHED | KL_V_RL;
	fa.pkts += 5;
	fb.pkts += 5;
	f6.pkts += 5;
	kl_harvest_begin(h, T0 + S, 0);
	assert_true(kl_harvest_src(h, 4, A1, &a, &r));
	assert_true(kl_harvest_src(h, 4, A3, &b, &r));
	assert_true(kl_harvest_flow(h, 4, A1, 443, 6, &fa, &ra));
	assert_true(kl_harvest_flow(h, 4, A3, 443, 6, &fb, &rb));
	assert_true(kl_harvest_flow(h, 6, A6, 53, 17, &f6, &r6));
	assert_int_equal(h->st.flow_restricted, 1);
	kl_harvest_end(h);
	assert_int_equal(ra.flags, 0);
	assert_int_equal(rb.flags, KL_FLOW_F_RESTRICTED);
	assert_int_equal(r6.flags, 0);

	/* Tick 2: A3 released (verdict recomputed without RL), A1 denied. */
	a.pkts += 5;
	a.verdict = KL_V_CACHED | KL_V_DENIED;
	b.pkts += 5;
	b.verdict = KL_V_CACHED;
	fa.pkts += 5;
	fb.pkts += 5;
	kl_harvest_begin(h, T0 + 2 * S, 0);
	kl_harvest_src(h, 4, A1, &a, &r);
	kl_harvest_src(h, 4, A3, &b, &r);
	assert_true(kl_harvest_flow(h, 4, A1, 443, 6, &fa, &ra));
	assert_true(kl_harvest_flow(h, 4, A3, 443, 6, &fb, &rb));
	kl_harvest_end(h);
	assert_int_equal(ra.flags, KL_FLOW_F_RESTRICTED);
	assert_int_equal(rb.flags, 0);
}

/* Feed sources i with (i & 1) == parity (or all when parity < 0), with
 * counters 1000 + i + mult * (i % 7); when want_div > 0 check the rate. */
static void feed(struct kl_harvest *h, uint64_t now, int parity, uint64_t mult, uint64_t want_mult,
		 double want_div, uint32_t n)
{
	struct kl_src_rate r;

	kl_harvest_begin(h, now, 0);
	for (uint32_t i = 0; i < n; i++) {
		if (parity >= 0 && (int)(i & 1) != parity)
			continue;
		uint8_t a[4] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
		struct kl_src_stats s = mk(1000 + i + mult * (i % 7), T0 - S);
		bool got = kl_harvest_src(h, 4, a, &s, &r);
		if (want_div > 0) {
			uint64_t want = want_mult * (i % 7);
			if (got != (want != 0))
				fail_msg("source %u: record %d, want %d", i, got, want != 0);
			if (got)
				assert_near(r.r[KL_R_PPS], (double)want / want_div);
		}
	}
	kl_harvest_end(h);
}

/* Many sources, churn through prev_ttl: every survivor still finds its own
 * previous counters (the backward-shift delete must keep probe runs). */
static void test_table_churn(void **state)
{
	struct kl_harvest *h = *state; /* prev_ttl 10 s */
	const uint32_t n = 40000;

	feed(h, T0, -1, 0, 0, 0, n);                     /* baseline, all */
	feed(h, T0 + 5 * S, 1, 1, 1, 5, n);              /* odd: 1*(i%7) over 5 s */
	feed(h, T0 + 10 * S, 0, 2, 2, 10, n);            /* even: over 10 s (missed one) */
	assert_int_equal(kl_harvest_known_src(h), n);
	feed(h, T0 + 16 * S, 1, 3, 2, 11, n);            /* odd; even absent 6 s: kept */
	assert_int_equal(h->st.src_forgotten, 0);
	feed(h, T0 + 21 * S, 1, 4, 1, 5, n);             /* odd; even absent 11 s: forgotten */
	assert_int_equal(h->st.src_forgotten, n / 2);
	assert_int_equal(kl_harvest_known_src(h), n / 2);
	feed(h, T0 + 22 * S, 1, 6, 2, 1, n);             /* survivors still match after deletes */
	uint64_t odd_moving = 0;
	for (uint32_t i = 1; i < n; i += 2)
		odd_moving += i % 7 != 0;
	assert_int_equal(h->st.src_active, odd_moving);
	feed(h, T0 + 40 * S, 0, 0, 0, 0, 0);             /* nothing: all forgotten */
	assert_int_equal(h->st.src_forgotten, n / 2);
	assert_int_equal(kl_harvest_known_src(h), 0);
}

/* ---- by slot ---- */

static struct kl_src_slot slot(uint32_t seq, uint8_t family, const uint8_t *addr,
			       struct kl_src_stats s)
{
	struct kl_src_slot v;

	memset(&v, 0, sizeof(v));
	v.seq = seq;
	v.family = family;
	memcpy(v.owner, addr, family == 4 ? 4 : 16);
	v.s = s;
	return v;
}

/* Previous counters by slot: a delta while seq, owner and first_seen stay;
 * each of them changing is another claim (a new source), counters going
 * backwards a restart. */
static void test_slot_deltas_and_restarts(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_src_rate r;
	struct kl_src_slot v;

	assert_int_equal(kl_harvest_slots(h, 4, 64), 0);
	assert_int_equal(kl_harvest_slots(h, 6, 64), 0);
	kl_harvest_begin(h, T0, 0);
	v = slot(2, 4, A1, mk(100, T0 - 5 * S));
	assert_false(kl_harvest_slot(h, 7, &v, &r)); /* baseline */
	kl_harvest_end(h);

	kl_harvest_begin(h, T0 + S, 0);
	v = slot(2, 4, A1, mk(150, T0 - 5 * S));
	assert_true(kl_harvest_slot(h, 7, &v, &r));
	assert_near(r.r[KL_R_PPS], 50.0);
	assert_memory_equal(r.addr, A1, 4);
	assert_int_equal(r.family, 4);
	kl_harvest_end(h);

	/* Robbed: another owner claimed slot 7 (new seq, owner, first_seen):
	 * its counters are all new. */
	kl_harvest_begin(h, T0 + 2 * S, 0);
	v = slot(4, 4, A3, mk(30, T0 + 2 * S - S / 2));
	assert_true(kl_harvest_slot(h, 7, &v, &r));
	assert_near(r.r[KL_R_PPS], 30.0);
	assert_memory_equal(r.addr, A3, 4);
	assert_int_equal(h->st.src_new, 1);
	kl_harvest_end(h);

	/* The robbed source came back into the same slot: new again, even
	 * with counters above the previous owner's. */
	kl_harvest_begin(h, T0 + 3 * S, 0);
	v = slot(6, 4, A1, mk(40, T0 + 3 * S - S / 2));
	assert_true(kl_harvest_slot(h, 7, &v, &r));
	assert_near(r.r[KL_R_PPS], 40.0);
	assert_int_equal(h->st.src_new, 1);
	kl_harvest_end(h);

	/* Same seq and owner, first_seen changed (a claim we missed whole):
	 * new. */
	kl_harvest_begin(h, T0 + 4 * S, 0);
	v = slot(6, 4, A1, mk(45, T0 + 4 * S - S / 4));
	assert_true(kl_harvest_slot(h, 7, &v, &r));
	assert_near(r.r[KL_R_PPS], 45.0);
	assert_int_equal(h->st.src_new, 1);
	kl_harvest_end(h);

	/* Counters backwards with nothing else changed: a restart. */
	kl_harvest_begin(h, T0 + 5 * S, 0);
	v = slot(6, 4, A1, mk(5, T0 + 4 * S - S / 4));
	assert_true(kl_harvest_slot(h, 7, &v, &r));
	assert_near(r.r[KL_R_PPS], 5.0);
	assert_int_equal(h->st.src_restarted, 1);
	kl_harvest_end(h);

	/* An old claim never seen before: history unknown, recorded only. */
	kl_harvest_begin(h, T0 + 6 * S, 0);
	v = slot(2, 6, A6, mk(1000, T0 - 100 * S));
	assert_false(kl_harvest_slot(h, 9, &v, &r));
	assert_int_equal(h->st.src_unknown, 1);
	/* Out of range and unsized families feed nothing. */
	assert_false(kl_harvest_slot(h, 64, &v, &r));
	kl_harvest_end(h);

	kl_harvest_begin(h, T0 + 7 * S, 0);
	v = slot(2, 6, A6, mk(1010, T0 - 100 * S));
	assert_true(kl_harvest_slot(h, 9, &v, &r));
	assert_near(r.r[KL_R_PPS], 10.0);
	assert_memory_equal(r.addr, A6, 16);
	kl_harvest_end(h);
}

/* Flows of a source restricted this tick carry the flag; the address table
 * holds only restricted sources. */
static void test_slot_restricted_flows(void **state)
{
	struct kl_harvest *h = *state;
	struct kl_flow_stats fl = { .pkts = 10, .bytes = 1000, .first_seen_ns = T0 - S };
	struct kl_src_stats s = mk(100, T0 - 5 * S);
	struct kl_flow_rec fr;
	struct kl_src_rate r;
	struct kl_src_slot v;

	assert_int_equal(kl_harvest_slots(h, 4, 16), 0);
	kl_harvest_begin(h, T0, 0);
	v = slot(2, 4, A1, s);
	kl_harvest_slot(h, 1, &v, &r);
	kl_harvest_flow(h, 4, A1, 80, 6, &fl, &fr);
	kl_harvest_end(h);
	assert_int_equal(kl_harvest_known_src(h), 0);

	kl_harvest_begin(h, T0 + S, 0);
	s.pkts = 200;
	s.verdict = KL_V_CACHED | KL_V_DENIED;
	v = slot(2, 4, A1, s);
	kl_harvest_slot(h, 1, &v, &r);
	fl.pkts = 20;
	assert_true(kl_harvest_flow(h, 4, A1, 80, 6, &fl, &fr));
	assert_true(fr.flags & KL_FLOW_F_RESTRICTED);
	kl_harvest_end(h);
	assert_int_equal(kl_harvest_known_src(h), 1);

	/* No longer restricted: not flagged (the stale entry is ignored). */
	kl_harvest_begin(h, T0 + 2 * S, 0);
	s.pkts = 300;
	s.verdict = KL_V_CACHED;
	v = slot(2, 4, A1, s);
	kl_harvest_slot(h, 1, &v, &r);
	fl.pkts = 30;
	assert_true(kl_harvest_flow(h, 4, A1, 80, 6, &fl, &fr));
	assert_false(fr.flags & KL_FLOW_F_RESTRICTED);
	kl_harvest_end(h);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_baseline_then_rates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_source_sends_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter_backwards_is_delta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru_recreation_is_delta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sources_appear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_old_entry_is_not_a_spike, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanish_and_prev_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_tick_spans_two, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_in_one_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_families_are_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_totals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_twice_in_one_tick, setup, teardown),
		cmocka_unit_test(test_restricted_verdicts),
		cmocka_unit_test_setup_teardown(test_flows_flag_restricted_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_deltas_and_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_restricted_flows, setup, teardown),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
