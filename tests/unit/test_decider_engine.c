/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The engine's rules (DESIGN §6.2-6.3), one test per rule: each fails when
 * the rule it names is taken out of dec_engine_step()/dec_engine_tick().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "decider/engine.h"
#include "decider/table.h"

#define S(x) ((int64_t)(x) * 1000)

/* Severity = pps / 100 (one feature, weight 1) so tests read directly. */
static struct dec_engine_params base(void)
{
	struct dec_engine_params p;

	memset(&p, 0, sizeof(p));
	p.trig[DEC_F_PPS] = 100;
	p.trig[DEC_F_SYN] = 100;
	p.trig[DEC_F_SCAN] = 100;
	p.w[DEC_F_PPS] = 1.0;
	p.sev_cap = 3.0;
	p.step[0] = 1.0;
	p.step[1] = 2.0;
	p.step[2] = 3.0;
	p.delta[0] = 1;
	p.delta[1] = 2;
	p.delta[2] = 3;
	p.decay_below = 0.25;
	p.at[DEC_LVL_SOFT] = 2;
	p.at[DEC_LVL_HARD] = 4;
	p.at[DEC_LVL_BLOCK] = 100;
	p.up_need = 1;
	p.down_need = 1;
	p.ttl_ms[DEC_LVL_SOFT] = S(60);
	p.ttl_ms[DEC_LVL_HARD] = S(120);
	p.ttl_ms[DEC_LVL_BLOCK] = S(300);
	p.rate[DEC_LVL_SOFT] = 20;
	p.burst[DEC_LVL_SOFT] = 40;
	p.rate[DEC_LVL_HARD] = 5;
	p.burst[DEC_LVL_HARD] = 10;
	p.noncomp_at = 999;
	p.noncomp_drop = 999;
	p.noncomp_sev = 999;
	p.noncomp_reset_below = 0.3;
	p.min_pps = 10;
	p.top = 100;
	p.state_ttl_ms = S(3600);
	for (int l = 0; l < DEC_LVL_COUNT; l++)
		p.action[l] = (uint8_t)l;
	p.viol_level = DEC_LVL_BLOCK;
	return p;
}

static struct kl_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct kl_addr x;

	memset(&x, 0, sizeof(x));
	x.family = 4;
	x.prefixlen = 32;
	x.addr[0] = a;
	x.addr[1] = b;
	x.addr[2] = c;
	x.addr[3] = d;
	return x;
}

static struct dec_src fresh(void)
{
	struct dec_src s;
	struct kl_addr a = ip4(203, 0, 113, 7);

	dec_src_init(&s, &a);
	return s;
}

/* One tick for one source: severity from pps, given drops and violation. */
static bool step(const struct dec_engine_params *p, struct dec_src *s, double pps, double droprl,
		 int viol, int64_t t, struct dec_change *c)
{
	struct dec_metrics m;
	struct dec_change dummy;

	memset(&m, 0, sizeof(m));
	m.addr = s->key;
	m.pps = pps;
	m.droprl = droprl;
	return dec_engine_step(p, s, &m, dec_severity(p, &m), viol, t, c ? c : &dummy);
}

/* Rule 2: severity steps add delta1/2/3 for the highest step reached. */
static void test_step_strikes(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_SOFT] = 50;
	p.at[DEC_LVL_HARD] = 60;
	const double pps[] = { 99, 100, 199, 200, 299, 300, 900 };
	const int want[] = { 0, 1, 1, 2, 2, 3, 3 };
	for (size_t i = 0; i < sizeof(pps) / sizeof(pps[0]); i++) {
		struct dec_src s = fresh();
		step(&p, &s, pps[i], 0, 0, 0, NULL);
		assert_int_equal(s.strikes, want[i]);
	}
}

/* Rule 2: on low ticks strikes fall by one, only once down >= down-need. */
static void test_decay_after_down_need(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.down_need = 3;
	p.at[DEC_LVL_SOFT] = 50;
	p.at[DEC_LVL_HARD] = 60;
	struct dec_src s = fresh();
	s.strikes = 5;
	const int want[] = { 5, 5, 4, 3, 2 };
	for (int i = 0; i < 5; i++) {
		step(&p, &s, 0, 0, 0, S(i), NULL);
		assert_int_equal(s.down, i + 1);
		assert_int_equal(s.strikes, want[i]);
	}
	/* A neutral tick (0.25 <= sev < 1) does not decay. */
	s.down = 5;
	step(&p, &s, 50, 0, 0, S(10), NULL);
	assert_int_equal(s.strikes, 2);
}

/* Rule 2: strikes stop at block-at + hard-at. */
static void test_strike_cap(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_BLOCK] = 6;
	struct dec_src s = fresh();
	for (int i = 0; i < 20; i++)
		step(&p, &s, 300, 0, 0, S(i), NULL);
	assert_int_equal(s.strikes, 10);
}

/* Rule 1: high ticks count up and zero down; low ticks the reverse; a
 * neutral tick lets both fall toward 0. */
static void test_up_down_streaks(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_SOFT] = 50;
	p.at[DEC_LVL_HARD] = 60;
	struct dec_src s = fresh();
	s.down = 4;
	step(&p, &s, 150, 0, 0, 0, NULL);
	assert_int_equal(s.up, 1);
	assert_int_equal(s.down, 0);
	step(&p, &s, 150, 0, 0, S(1), NULL);
	assert_int_equal(s.up, 2);
	step(&p, &s, 50, 0, 0, S(2), NULL); /* neutral */
	assert_int_equal(s.up, 1);
	assert_int_equal(s.down, 0);
	step(&p, &s, 0, 0, 0, S(3), NULL); /* low */
	assert_int_equal(s.up, 0);
	assert_int_equal(s.down, 1);
	step(&p, &s, 0, 0, 0, S(4), NULL);
	assert_int_equal(s.down, 2);
	step(&p, &s, 50, 0, 0, S(5), NULL); /* neutral */
	assert_int_equal(s.down, 1);
	/* Any rate-limit drop makes a tick not low. */
	step(&p, &s, 0, 1, 0, S(6), NULL);
	assert_int_equal(s.down, 0);
}

/* Rule 1: drops >= noncomp-drop make a high tick even at low severity. */
static void test_high_tick_by_drops(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.noncomp_drop = 50;
	struct dec_src s = fresh();
	step(&p, &s, 10, 60, 0, 0, NULL);
	assert_int_equal(s.up, 1);
	assert_int_equal(s.t_high, 0);
	assert_int_equal(s.strikes, 0);
	step(&p, &s, 10, 49, 0, S(1), NULL);
	assert_int_equal(s.up, 0); /* neutral: drops but below noncomp-drop */
}

/* Rule 4: escalating needs up >= up-need. */
static void test_up_need(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.up_need = 3;
	p.at[DEC_LVL_SOFT] = 1;
	struct dec_src s = fresh();
	struct dec_change c;
	assert_false(step(&p, &s, 100, 0, 0, S(0), &c));
	assert_false(step(&p, &s, 100, 0, 0, S(1), &c));
	assert_int_equal(s.level, DEC_LVL_OBSERVE);
	assert_true(step(&p, &s, 100, 0, 0, S(2), &c));
	assert_int_equal(c.from, DEC_LVL_OBSERVE);
	assert_int_equal(c.to, DEC_LVL_SOFT);
	assert_int_equal(c.reason, DEC_R_SOFT_AT);
	assert_int_equal(c.rate, 20);
	assert_int_equal(c.burst, 40);
	assert_int_equal(c.ttl_ms, S(60));
}

/* Rule 6: a change needs the cooldown since the last change. */
static void test_cooldown(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.cooldown_ms = S(10);
	struct dec_src s = fresh();
	struct dec_change c;
	assert_true(step(&p, &s, 300, 0, 0, S(0), &c)); /* 3 strikes: SOFT */
	assert_int_equal(c.to, DEC_LVL_SOFT);
	for (int t = 1; t < 10; t++) {
		step(&p, &s, 300, 0, 0, S(t), &c);
		assert_int_equal(s.level, DEC_LVL_SOFT);
	}
	assert_true(step(&p, &s, 300, 0, 0, S(10), &c));
	assert_int_equal(c.to, DEC_LVL_HARD);
}

/* Rule 5: stepping down waits for the level's min-hold since the last
 * high tick. */
static void test_min_hold(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.min_hold_ms[DEC_LVL_SOFT] = S(30);
	struct dec_src s = fresh();
	step(&p, &s, 300, 0, 0, S(0), NULL);
	assert_int_equal(s.level, DEC_LVL_SOFT);
	for (int t = 1; t < 30; t++) {
		step(&p, &s, 0, 0, 0, S(t), NULL);
		assert_int_equal(s.level, DEC_LVL_SOFT);
	}
	assert_int_equal(s.strikes, 0);
	struct dec_change c;
	assert_true(step(&p, &s, 0, 0, 0, S(30), &c));
	assert_int_equal(c.to, DEC_LVL_OBSERVE);
	assert_int_equal(c.reason, DEC_R_STEP_DOWN);
}

/* Rule 5: stepping down needs down >= down-need. */
static void test_down_need_for_step_down(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_src s = fresh();
	s.level = DEC_LVL_SOFT;
	s.t_change = 0;
	s.t_high = 0;
	s.enforce_until = S(60);
	p.down_need = 4;
	for (int t = 1; t <= 3; t++) {
		step(&p, &s, 0, 0, 0, S(t), NULL);
		assert_int_equal(s.level, DEC_LVL_SOFT);
	}
	step(&p, &s, 0, 0, 0, S(4), NULL);
	assert_int_equal(s.level, DEC_LVL_OBSERVE);
}

/* Rule 5: one level at a time. */
static void test_one_level_step_down(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_src s = fresh();
	struct dec_change c;
	s.level = DEC_LVL_HARD;
	s.t_change = 0;
	s.t_high = 0;
	s.enforce_until = S(120);
	assert_true(step(&p, &s, 0, 0, 0, S(10), &c));
	assert_int_equal(c.from, DEC_LVL_HARD);
	assert_int_equal(c.to, DEC_LVL_SOFT);
	assert_true(step(&p, &s, 0, 0, 0, S(11), &c));
	assert_int_equal(c.to, DEC_LVL_OBSERVE);
}

/* Rule 4: a BLOCK whose TTL has not run out is not lowered. */
static void test_block_held_while_ttl(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_src s = fresh();
	s.level = DEC_LVL_BLOCK;
	s.t_change = 0;
	s.t_high = 0;
	s.enforce_until = S(300);
	for (int t = 1; t < 300; t += 7) {
		step(&p, &s, 0, 0, 0, S(t), NULL);
		assert_int_equal(s.level, DEC_LVL_BLOCK);
	}
	struct dec_change c;
	assert_true(step(&p, &s, 0, 0, 0, S(300), &c));
	assert_int_equal(c.to, DEC_LVL_HARD);
}

/* Rule 4: the block gate clamps BLOCK to RATE_HARD until severity has
 * been >= block-min-sev for block-min-dur. */
static void test_block_gate(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_BLOCK] = 6;
	p.block_min_sev = 2.5;
	p.block_min_dur_ms = S(10);
	struct dec_src s = fresh();
	struct dec_change c;
	/* Severity 2.0: strikes reach block-at, the gate never opens. */
	assert_true(step(&p, &s, 200, 0, 0, S(0), &c));
	assert_int_equal(c.to, DEC_LVL_SOFT);
	for (int t = 1; t < 20; t++)
		step(&p, &s, 200, 0, 0, S(t), &c);
	assert_true(s.strikes >= 6);
	assert_int_equal(s.level, DEC_LVL_HARD);
	/* Severity 3.0 from t=20: BLOCK at t=30, not before. */
	for (int t = 20; t < 30; t++) {
		step(&p, &s, 300, 0, 0, S(t), &c);
		assert_int_equal(s.level, DEC_LVL_HARD);
	}
	assert_true(step(&p, &s, 300, 0, 0, S(30), &c));
	assert_int_equal(c.to, DEC_LVL_BLOCK);
	assert_int_equal(c.reason, DEC_R_BLOCK_AT);
	assert_int_equal(c.ttl_ms, S(300));
}

/* The gate clamp is reported as such when it is what decided the level. */
static void test_block_gate_reason(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_SOFT] = 1;
	p.at[DEC_LVL_HARD] = 2;
	p.at[DEC_LVL_BLOCK] = 3;
	p.block_min_sev = 9;
	struct dec_src s = fresh();
	struct dec_change c;
	assert_true(step(&p, &s, 300, 0, 0, S(0), &c));
	assert_int_equal(c.to, DEC_LVL_HARD);
	assert_int_equal(c.reason, DEC_R_GATE);
}

/* Rule 3: in RATE_HARD, noncomp >= noncomp-at targets BLOCK. */
static void test_noncomp_escalation(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.noncomp_at = 3;
	p.noncomp_sev = 2.0;
	p.noncomp_drop = 50;
	struct dec_src s = fresh();
	struct dec_change c;
	s.level = DEC_LVL_HARD;
	s.strikes = 4;
	s.t_change = 0;
	s.enforce_until = S(120);
	assert_false(step(&p, &s, 50, 80, 0, S(1), &c)); /* drops count */
	assert_int_equal(s.noncomp, 1);
	assert_false(step(&p, &s, 200, 0, 0, S(2), &c)); /* severity counts */
	assert_int_equal(s.noncomp, 2);
	assert_true(step(&p, &s, 200, 0, 0, S(3), &c));
	assert_int_equal(c.to, DEC_LVL_BLOCK);
	assert_int_equal(c.reason, DEC_R_NONCOMP);
	/* Clean ticks reset the counter. */
	struct dec_src r = fresh();
	r.level = DEC_LVL_SOFT;
	r.noncomp = 2;
	r.t_change = 0;
	r.enforce_until = S(60);
	step(&p, &r, 10, 0, 0, S(1), NULL);
	assert_int_equal(r.noncomp, 0);
}

/* Graph violations (docs/security.md, "Graph violations and spoofing"): a high tick
 * worth delta1; alone (low severity) never past soft-at - 1, so never a
 * level; a frozen-enforce violation forces its level past up-need and
 * cooldown only with the block gate configured and open and severity at
 * sev-step1 and graph-freeze-min-sev. */
static void test_violations(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.at[DEC_LVL_SOFT] = 50;
	p.at[DEC_LVL_HARD] = 60;
	struct dec_src s = fresh();
	step(&p, &s, 0, 0, DEC_VIOL_OBSERVE, S(0), NULL);
	assert_int_equal(s.strikes, 1);
	assert_int_equal(s.up, 1);

	/* Alone, in either mode and however long, no level. */
	for (int mode = DEC_VIOL_OBSERVE; mode <= DEC_VIOL_ENFORCE; mode++) {
		p = base(); /* soft-at 2 */
		p.block_min_sev = 0.5;
		p.block_min_dur_ms = 0;
		struct dec_src v = fresh();
		for (int t = 0; t < 100; t++) {
			assert_false(step(&p, &v, 40, 0, mode, S(t), NULL)); /* sev 0.4 */
			assert_int_equal(v.level, DEC_LVL_OBSERVE);
			assert_true(v.strikes <= p.at[DEC_LVL_SOFT] - 1);
		}
		assert_int_equal(v.strikes, 1);
		/* Strikes earned by severity are not taken away by the cap. */
		v.strikes = 5;
		v.level = DEC_LVL_HARD;
		v.t_change = S(99);
		v.enforce_until = S(200);
		step(&p, &v, 0, 0, mode, S(100), NULL);
		assert_int_equal(v.strikes, 5);
		/* Violations and real severity together: severity's strikes. */
		struct dec_src w = fresh();
		step(&p, &w, 250, 0, mode, S(0), NULL); /* sev 2.5: delta2 */
		assert_int_equal(w.strikes, 2);
	}

	/* The evidence: gate configured and open, severity >= sev-step1. */
	p = base();
	p.up_need = 5;
	p.cooldown_ms = S(100);
	p.block_min_sev = 1.5;
	p.block_min_dur_ms = S(2);
	struct dec_src e = fresh();
	struct dec_change c;
	e.t_change = 0; /* a change just happened: cooldown would hold */
	assert_false(step(&p, &e, 150, 0, DEC_VIOL_ENFORCE, S(1), &c)); /* gate since 1 s */
	assert_false(step(&p, &e, 150, 0, DEC_VIOL_ENFORCE, S(2), &c));
	assert_true(step(&p, &e, 150, 0, DEC_VIOL_ENFORCE, S(3), &c)); /* held 2 s */
	assert_int_equal(c.to, DEC_LVL_BLOCK);
	assert_int_equal(c.reason, DEC_R_VIOLATION);
	/* The same with a gate whose severity is met but never held... */
	struct dec_src g = fresh();
	g.t_change = 0;
	assert_false(step(&p, &g, 150, 0, DEC_VIOL_ENFORCE, S(1), &c));
	assert_false(step(&p, &g, 50, 0, DEC_VIOL_ENFORCE, S(2), &c));
	assert_false(step(&p, &g, 150, 0, DEC_VIOL_ENFORCE, S(3), &c));
	assert_int_equal(g.level, DEC_LVL_OBSERVE);
	/* ...or with the gate off (block-min-sev 0): never forced. */
	p.block_min_sev = 0;
	struct dec_src o = fresh();
	for (int t = 1; t < 10; t++)
		step(&p, &o, 300, 0, DEC_VIOL_ENFORCE, S(t), &c);
	assert_true(o.level < DEC_LVL_BLOCK);
	/* graph-freeze-min-sev above the tick's severity: not forced. */
	p.block_min_sev = 0.5;
	p.block_min_dur_ms = 0;
	p.viol_min_sev = 2.0;
	struct dec_src m = fresh();
	m.t_change = 0;
	assert_false(step(&p, &m, 150, 0, DEC_VIOL_ENFORCE, S(1), &c));
	assert_true(step(&p, &m, 200, 0, DEC_VIOL_ENFORCE, S(2), &c));
	assert_int_equal(c.to, DEC_LVL_BLOCK);

	/* allow_block=false (viol_level RATE_HARD) forces RATE_HARD only. */
	p.viol_level = DEC_LVL_HARD;
	struct dec_src h = fresh();
	assert_true(step(&p, &h, 200, 0, DEC_VIOL_ENFORCE, S(1), &c));
	assert_int_equal(c.to, DEC_LVL_HARD);
	assert_int_equal(c.reason, DEC_R_VIOLATION);
}

/* §6.2: normalised per feature, capped, weighted; a trigger of 0 is off. */
static void test_severity(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.trig[DEC_F_PPS] = 100;
	p.trig[DEC_F_SYN] = 50;
	p.trig[DEC_F_SCAN] = 10;
	p.trig[DEC_F_BPS] = 0;
	p.w[DEC_F_PPS] = 0.5;
	p.w[DEC_F_SYN] = 0.3;
	p.w[DEC_F_SCAN] = 0.2;
	p.w[DEC_F_BPS] = 1.0;
	struct dec_metrics m = { .pps = 50, .syn = 1000, .scan = 5, .bps = 1e12 };
	assert_true(dec_severity(&p, &m) > 0.25 + 0.9 + 0.1 - 1e-9);
	assert_true(dec_severity(&p, &m) < 0.25 + 0.9 + 0.1 + 1e-9);
	p.trig[DEC_F_BPS] = 1000;
	m.pps = m.syn = m.scan = 0;
	m.bps = 500;
	assert_true(dec_severity(&p, &m) > 0.5 - 1e-9 && dec_severity(&p, &m) < 0.5 + 1e-9);
	p.sev_cap = 2.0;
	m.bps = 1e9;
	assert_true(dec_severity(&p, &m) > 2.0 - 1e-9 && dec_severity(&p, &m) < 2.0 + 1e-9);
}

/* Rule 6: a change sets the level's TTL; it is renewed while the level
 * holds, when half of it is gone. */
static void test_ttl_refresh(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_src s = fresh();
	struct dec_change c;
	step(&p, &s, 300, 0, 0, S(0), &c);
	assert_int_equal(s.level, DEC_LVL_SOFT);
	assert_int_equal(s.enforce_until, S(60));
	p.at[DEC_LVL_HARD] = 1000; /* stay in SOFT */
	p.at[DEC_LVL_BLOCK] = 1000;
	for (int t = 1; t < 30; t++)
		assert_false(step(&p, &s, 100, 0, 0, S(t), &c));
	assert_true(step(&p, &s, 100, 0, 0, S(30), &c));
	assert_int_equal(c.reason, DEC_R_REFRESH);
	assert_int_equal(c.from, DEC_LVL_SOFT);
	assert_int_equal(c.to, DEC_LVL_SOFT);
	assert_int_equal(s.enforce_until, S(90));
}

/* Policy actions: BLOCK enforced as a hard limit when max_action says so. */
static void test_action_mapping(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.action[DEC_LVL_BLOCK] = DEC_LVL_HARD;
	struct dec_change c = { .to = DEC_LVL_BLOCK };
	dec_change_fill(&p, &c);
	assert_int_equal(c.action, DEC_LVL_HARD);
	assert_int_equal(c.rate, 5);
	assert_int_equal(c.ttl_ms, S(300));
	c.to = DEC_LVL_OBSERVE;
	dec_change_fill(&p, &c);
	assert_int_equal(c.ttl_ms, 0);
	assert_int_equal(c.rate, 0);
}

/* ---- dec_engine_tick ---- */

static struct dec_metrics met(struct kl_addr a, double pps, double droprl)
{
	struct dec_metrics m;

	memset(&m, 0, sizeof(m));
	m.addr = a;
	m.pps = pps;
	m.droprl = droprl;
	return m;
}

/* §6.2 candidates: pps >= min-pps, or severity >= min-sev (when > 0), or
 * any drops; then top-N by severity, ties by pps then address. */
static void test_candidates(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.top = 1;
	p.min_pps = 10;
	struct dec_engine *e = dec_engine_new(&p, 1);
	struct dec_changes out = { 0 };
	struct dec_metrics m[] = {
		met(ip4(198, 18, 0, 1), 5, 0),  /* below min-pps: out */
		met(ip4(198, 18, 0, 2), 5, 1),  /* drops: candidate */
		met(ip4(198, 18, 0, 3), 50, 0), /* candidate, sev .5 */
		met(ip4(198, 18, 0, 4), 50, 0), /* same sev and pps: lower address wins */
	};
	assert_int_equal(dec_engine_tick(e, S(0), m, 4, NULL, 0, NULL, NULL, &out), 0);
	assert_int_equal(dec_engine_stats(e)->candidates, 3);
	assert_int_equal(dec_engine_stats(e)->evaluated, 1);
	struct kl_addr a;
	a = ip4(198, 18, 0, 1);
	assert_null(dec_engine_lookup(e, &a));
	a = ip4(198, 18, 0, 3);
	assert_non_null(dec_engine_lookup(e, &a));
	a = ip4(198, 18, 0, 4);
	assert_null(dec_engine_lookup(e, &a)); /* lost the tie on address */
	a = ip4(198, 18, 0, 2);
	assert_null(dec_engine_lookup(e, &a)); /* a candidate (drops), but not in the top 1 */
	dec_engine_free(e);

	/* min-sev brings in a low-pps source with high severity. */
	p = base();
	p.min_pps = 1000;
	p.min_sev = 0.5;
	p.trig[DEC_F_SYN] = 10;
	p.w[DEC_F_SYN] = 1.0;
	e = dec_engine_new(&p, 1);
	struct dec_metrics x = met(ip4(198, 18, 0, 9), 1, 0);
	x.syn = 10;
	dec_engine_tick(e, S(0), &x, 1, NULL, 0, NULL, NULL, &out);
	assert_int_equal(dec_engine_stats(e)->candidates, 1);
	p.min_sev = 0; /* off: the same source is not a candidate */
	dec_engine_set_params(e, &p);
	dec_engine_tick(e, S(1), &x, 1, NULL, 0, NULL, NULL, &out);
	assert_int_equal(dec_engine_stats(e)->candidates, 0);
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* Top-N keeps the highest severities whatever the input order. */
static void test_top_n(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.top = 3;
	struct dec_engine *e = dec_engine_new(&p, 7);
	struct dec_changes out = { 0 };
	struct dec_metrics m[50];
	for (int i = 0; i < 50; i++)
		m[i] = met(ip4(198, 18, 1, (uint8_t)i), 20 + ((i * 37) % 50) * 10, 0);
	dec_engine_tick(e, S(0), m, 50, NULL, 0, NULL, NULL, &out);
	assert_int_equal(dec_engine_stats(e)->evaluated, 3);
	for (int i = 0; i < 50; i++) {
		bool top = m[i].pps >= 20 + 47 * 10;
		assert_true((dec_engine_lookup(e, &m[i].addr) != NULL) == top);
	}
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* §6.2: sources above OBSERVE that send nothing are still advanced. */
static void test_elevated_advance(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes out = { 0 };
	struct dec_metrics m = met(ip4(203, 0, 113, 9), 300, 0);
	dec_engine_tick(e, S(0), &m, 1, NULL, 0, NULL, NULL, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.v[0].to, DEC_LVL_SOFT);
	out.n = 0;
	int down_at = -1;
	for (int t = 1; t < 10 && down_at < 0; t++) {
		dec_engine_tick(e, S(t), NULL, 0, NULL, 0, NULL, NULL, &out);
		if (out.n > 0 && out.v[0].to == DEC_LVL_OBSERVE)
			down_at = t;
		out.n = 0;
	}
	/* 3 strikes decay one per low tick: target OBSERVE at t=2. */
	assert_int_equal(down_at, 2);
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* --state-ttl: OBSERVE state not evaluated for that long is forgotten. */
static void test_forget(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.state_ttl_ms = S(10);
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes out = { 0 };
	struct dec_metrics a = met(ip4(198, 18, 2, 1), 50, 0);
	struct dec_metrics b = met(ip4(198, 18, 2, 2), 300, 0); /* goes to SOFT */
	struct dec_metrics both[2] = { a, b };
	dec_engine_tick(e, S(0), both, 2, NULL, 0, NULL, NULL, &out);
	assert_int_equal(dec_engine_stats(e)->tracked, 2);
	dec_engine_tick(e, S(5), NULL, 0, NULL, 0, NULL, NULL, &out);
	assert_non_null(dec_engine_lookup(e, &a.addr));
	dec_engine_tick(e, S(10), NULL, 0, NULL, 0, NULL, NULL, &out);
	assert_null(dec_engine_lookup(e, &a.addr));
	/* b is elevated (advanced every tick), so it stays. */
	assert_non_null(dec_engine_lookup(e, &b.addr));
	assert_int_equal(dec_engine_stats(e)->forgotten, 1);
	dec_engine_free(e);
	dec_changes_free(&out);
}

static int ex_whitelist_all(void *ctx, const struct kl_addr *a)
{
	(void)a;
	return *(int *)ctx;
}

/* Exemptions: an elevated source that becomes exempt is released to
 * OBSERVE at once (no cooldown) and its state dropped. */
static void test_exempt_release(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.cooldown_ms = S(100);
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes out = { 0 };
	struct dec_metrics m = met(ip4(203, 0, 113, 7), 300, 0);
	int kind = DEC_EX_NONE;
	dec_engine_tick(e, S(0), &m, 1, NULL, 0, ex_whitelist_all, &kind, &out);
	assert_int_equal(dec_engine_stats(e)->per_level[DEC_LVL_SOFT], 1);
	out.n = 0;
	kind = DEC_EX_FORGIVE;
	dec_engine_tick(e, S(1), &m, 1, NULL, 0, ex_whitelist_all, &kind, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.v[0].to, DEC_LVL_OBSERVE);
	assert_int_equal(out.v[0].reason, DEC_R_FORGIVE);
	assert_null(dec_engine_lookup(e, &m.addr));
	/* While exempt it is not scored at all. */
	out.n = 0;
	dec_engine_tick(e, S(2), &m, 1, NULL, 0, ex_whitelist_all, &kind, &out);
	assert_int_equal(out.n, 0);
	assert_null(dec_engine_lookup(e, &m.addr));
	assert_int_equal(dec_engine_stats(e)->exempted, 1);
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* Violations of sources absent from the tick are stepped (strikes), and
 * the report's case through the whole engine: 20 spoofed frozen-enforce
 * violations over 10 ticks (many records per tick too) with a client's
 * address and no traffic of its own never move it off OBSERVE. */
static void test_violation_without_metrics(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	p.block_min_sev = 0.5; /* a gate, held from the first tick */
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes out = { 0 };
	struct dec_violation v[50];
	for (int i = 0; i < 50; i++)
		v[i] = (struct dec_violation){ .addr = ip4(10, 0, 0, 1), .port = (uint16_t)(1000 + i),
					      .proto = 6, .mode = DEC_VIOL_ENFORCE };
	dec_engine_tick(e, S(0), NULL, 0, v, 50, NULL, NULL, &out);
	assert_int_equal(out.n, 0);
	const struct dec_src *s = dec_engine_lookup(e, &v[0].addr);
	assert_non_null(s);
	assert_int_equal(s->strikes, 1); /* once per tick, not per record */
	for (int t = 1; t <= 10; t++) {
		dec_engine_tick(e, S(t), NULL, 0, v, 2, NULL, NULL, &out);
		assert_int_equal(out.n, 0);
	}
	assert_int_equal(dec_engine_lookup(e, &v[0].addr)->level, DEC_LVL_OBSERVE);
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* Output is sorted by address and independent of the hash seed. */
static void test_deterministic(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e1 = dec_engine_new(&p, 1), *e2 = dec_engine_new(&p, 0xdeadbeefcafef00dull);
	struct dec_changes o1 = { 0 }, o2 = { 0 };
	struct dec_metrics m[300];
	for (int t = 0; t < 120; t++) {
		size_t n = 0;
		for (int i = 0; i < 300; i++) {
			unsigned r = (unsigned)(i * 2654435761u + (unsigned)t * 40503u);
			if ((r >> 7) % 3 == 0)
				continue;
			m[n++] = met(ip4(198, 19, (uint8_t)(i >> 8), (uint8_t)i), (double)((r >> 3) % 400), 0);
		}
		dec_engine_tick(e1, S(t), m, n, NULL, 0, NULL, NULL, &o1);
		dec_engine_tick(e2, S(t), m, n, NULL, 0, NULL, NULL, &o2);
	}
	assert_true(o1.n > 10);
	assert_int_equal(o1.n, o2.n);
	for (size_t i = 0; i < o1.n; i++) {
		assert_int_equal(dec_addr_cmp(&o1.v[i].addr, &o2.v[i].addr), 0);
		assert_int_equal(o1.v[i].to, o2.v[i].to);
		assert_int_equal(o1.v[i].t_ms, o2.v[i].t_ms);
		if (i > 0 && o1.v[i].t_ms == o1.v[i - 1].t_ms)
			assert_true(dec_addr_cmp(&o1.v[i - 1].addr, &o1.v[i].addr) < 0);
	}
	dec_engine_free(e1);
	dec_engine_free(e2);
	dec_changes_free(&o1);
	dec_changes_free(&o2);
}

/* A record that is not a host address is skipped, never stored (family 0
 * marks an empty slot). */
static void test_bad_address_ignored(void **state)
{
	(void)state;
	struct dec_engine_params p = base();
	struct dec_engine *e = dec_engine_new(&p, 3);
	struct dec_changes out = { 0 };
	struct dec_metrics m[2] = { met(ip4(198, 18, 9, 9), 300, 0), met(ip4(0, 0, 0, 0), 300, 0) };
	m[1].addr.family = 0;
	m[1].addr.prefixlen = 0;
	m[0].addr.prefixlen = 24; /* a prefix, not a host */
	for (int t = 0; t < 3; t++)
		assert_int_equal(dec_engine_tick(e, S(t), m, 2, NULL, 0, NULL, NULL, &out), 0);
	assert_int_equal(dec_engine_stats(e)->tracked, 0);
	assert_int_equal(out.n, 0);
	dec_engine_free(e);
	dec_changes_free(&out);
}

/* Backward-shift deletion keeps every other key findable. */
static void test_table_delete(void **state)
{
	(void)state;
	struct dec_srctab t;
	assert_int_equal(dec_srctab_init(&t, 16, 42), 0);
	const int N = 20000;
	for (int i = 0; i < N; i++) {
		struct kl_addr a = ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		bool created;
		struct dec_src *s = dec_srctab_insert(&t, &a, &created);
		assert_non_null(s);
		assert_true(created);
		s->strikes = (uint16_t)i;
	}
	assert_int_equal(t.n, (size_t)N);
	for (int i = 0; i < N; i += 3) {
		struct kl_addr a = ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		assert_true(dec_srctab_del(&t, &a));
	}
	for (int i = 0; i < N; i++) {
		struct kl_addr a = ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
		struct dec_src *s = dec_srctab_find(&t, &a);
		if (i % 3 == 0) {
			assert_null(s);
		} else {
			assert_non_null(s);
			assert_int_equal(s->strikes, (uint16_t)i);
		}
	}
	/* v6 and v4 keys with the same leading bytes are different keys. */
	struct kl_addr v6;
	memset(&v6, 0, sizeof(v6));
	v6.family = 6;
	v6.prefixlen = 128;
	v6.addr[0] = 10;
	v6.addr[3] = 1;
	assert_null(dec_srctab_find(&t, &v6));
	dec_srctab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_strikes),
		cmocka_unit_test(test_decay_after_down_need),
		cmocka_unit_test(test_strike_cap),
		cmocka_unit_test(test_up_down_streaks),
		cmocka_unit_test(test_high_tick_by_drops),
		cmocka_unit_test(test_up_need),
		cmocka_unit_test(test_cooldown),
		cmocka_unit_test(test_min_hold),
		cmocka_unit_test(test_down_need_for_step_down),
		cmocka_unit_test(test_one_level_step_down),
		cmocka_unit_test(test_block_held_while_ttl),
		cmocka_unit_test(test_block_gate),
		cmocka_unit_test(test_block_gate_reason),
		cmocka_unit_test(test_noncomp_escalation),
		cmocka_unit_test(test_violations),
		cmocka_unit_test(test_severity),
		cmocka_unit_test(test_ttl_refresh),
		cmocka_unit_test(test_action_mapping),
		cmocka_unit_test(test_candidates),
		cmocka_unit_test(test_top_n),
		cmocka_unit_test(test_elevated_advance),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_exempt_release),
		cmocka_unit_test(test_violation_without_metrics),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bad_address_ignored),
		cmocka_unit_test(test_table_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
