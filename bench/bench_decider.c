/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Decider engine throughput: source-ticks per second at 1k, 100k and 1M
 * sources per tick, and bytes of memory per tracked source. The ticks are
 * synthesised in memory (no JSON parsing), so this measures the engine:
 * severity, candidate selection, top-N, state lookup, the rules.
 *
 *   top=200  the default: every source is scored, 200 are stepped.
 *   top=all  every source is stepped and tracked: the worst case, and the
 *            one that sizes memory per tracked source.
 *
 * Goal: >= 5M source-ticks/s on one core.
 * Per-source baselines: the same ticks with baselines on and
 * off, in the same run, at 1M sources: on may be at most 1.3x slower.
 * Usage: bench_decider [TICKS_SCALE]   (default 1; 0.2 for a quick run)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decider/baseline.h"
#include "decider/engine.h"
#include "decider/knobs.h"

/* Wall time for the throughput table; the on/off comparison uses this
 * thread's CPU time, so that other work on a shared machine (preemption)
 * does not land on one side of the ratio. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(bench_clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Half IPv4 (198.18.0.0/15 + 10/8), half IPv6 (fd00:6b6c::/48). */
static void fill_addr(struct kl_addr *a, size_t i)
{
	memset(a, 0, sizeof(*a));
	if (i % 2 == 0) {
		uint32_t v = (uint32_t)(i / 2);
		a->family = 4;
		a->prefixlen = 32;
		a->addr[0] = (uint8_t)(10 + (v >> 24));
		a->addr[1] = (uint8_t)(v >> 16);
		a->addr[2] = (uint8_t)(v >> 8);
		a->addr[3] = (uint8_t)v;
	} else {
		uint64_t v = i / 2;
		a->family = 6;
		a->prefixlen = 128;
		a->addr[0] = 0xfd;
		a->addr[1] = 0x00;
		a->addr[2] = 0x6b;
		a->addr[3] = 0x6c;
		for (int b = 0; b < 8; b++)
			a->addr[15 - b] = (uint8_t)(v >> (8 * b));
	}
}

/* Mostly ordinary clients; one in a hundred floods and one in a hundred is
 * heavy by nature (0.6..0.95 x the generic pps trigger: what baselines
 * learn). Values move per tick so nothing is a constant the compiler or
 * the cache can keep. */
static void fill_tick(struct dec_metrics *m, size_t n, int tick)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t r = (uint32_t)(i * 2654435761u) ^ (uint32_t)(tick * 40503u);
		if (i % 100 == 7) {
			m[i].pps = 20000 + (r % 5000);
			m[i].syn = 15000 + (r % 3000);
			m[i].scan = 1;
		} else if (i % 100 == 13) {
			m[i].pps = 3000 + (r % 1750);
			m[i].syn = r % 20;
			m[i].scan = 0;
		} else {
			m[i].pps = 10 + (r % 400);
			m[i].syn = r % 20;
			m[i].scan = r % 3;
		}
		m[i].bps = m[i].pps * 600;
		m[i].droprl = 0;
	}
}

/* Source-ticks per second; bl (may be NULL) attached as kl-decider does. */
static double run_one(size_t n, uint32_t top, int ticks, const struct dec_engine_params *base,
		      const struct dec_bl_params *bl, bool print)
{
	struct dec_engine_params p = *base;
	struct dec_metrics *m = calloc(n, sizeof(*m));
	struct dec_changes out = { 0 };
	double busy = 0;

	if (m == NULL) {
		fprintf(stderr, "bench_decider: out of memory for %zu sources\n", n);
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		fill_addr(&m[i].addr, i);
	p.top = top;
	struct dec_engine *e = dec_engine_new(&p, 0x5eed);
	struct dec_baselines *b = bl != NULL ? dec_bl_new(bl, 0xb1) : NULL;
	if (bl != NULL)
		dec_engine_set_baselines(e, b);
	/* Tick 0 (not timed) creates the state; then the steady state. */
	for (int t = 0; t <= ticks; t++) {
		fill_tick(m, n, t);
		out.n = 0;
		double t0 = now_s();
		if (dec_engine_tick(e, (int64_t)t * 1000, m, n, NULL, 0, NULL, NULL, &out) < 0) {
			fprintf(stderr, "bench_decider: tick failed\n");
			exit(1);
		}
		if (t > 0)
			busy += now_s() - t0;
	}
	const struct dec_engine_stats *st = dec_engine_stats(e);
	double rate = (double)n * ticks / busy;
	char topbuf[16];
	snprintf(topbuf, sizeof(topbuf), top >= n ? "all" : "%u", top);
	if (print)
		printf("| %zu | %s | %d | %.2fM | %.0f | %.1f | %zu | %.0f |\n", n, topbuf, ticks,
		       rate / 1e6, 1e9 / rate, busy / ticks * 1e3, st->tracked,
		       dec_engine_bytes_per_source(e));
	else
		printf("| %zu | %s | %d | %s | %.2fM | %.0f | %zu |\n", n, topbuf, ticks,
		       b != NULL ? "on" : "off", rate / 1e6, 1e9 / rate, b ? dec_bl_count(b) : 0);
	fflush(stdout);
	dec_engine_free(e);
	dec_bl_free(b);
	dec_changes_free(&out);
	free(m);
	return rate;
}

static void run(size_t n, uint32_t top, int ticks, const struct dec_engine_params *base)
{
	run_one(n, top, ticks, base, NULL, true);
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	struct dec_config cfg;
	struct kl_errs errs = { 0 };
	struct dec_engine_params p;

	if (!(scale > 0))
		scale = 1.0;
	/* The generic profile with every default, as kl-decider would run. */
	if (dec_config_resolve(&cfg, NULL, NULL, NULL, NULL, &errs) != 0) {
		kl_errs_print(&errs, stderr);
		return 1;
	}
	dec_engine_params_from_config(&cfg.v, &p);
	struct dec_bl_params bp;
	dec_bl_params_from_config(&cfg.v, &bp);
	bp.hold_ms = 2000; /* commits inside the short timed run too */
	dec_config_free(&cfg);

	printf("### kl-decider engine (profile generic, synthetic ticks, one core)\n\n");
	printf("| sources/tick | top | ticks | source-ticks/s | ns/source-tick | ms/tick | tracked | bytes/tracked source |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	static const struct {
		size_t n;
		int ticks;
	} sizes[] = { { 1000, 2000 }, { 100000, 40 }, { 1000000, 8 } };
	for (size_t i = 0; i < 3; i++) {
		int ticks = (int)(sizes[i].ticks * scale);
		if (ticks < 2)
			ticks = 2;
		run(sizes[i].n, 200, ticks, &p);
		run(sizes[i].n, (uint32_t)sizes[i].n, ticks, &p);
	}
	printf("\nTimed ticks exclude a first, untimed tick that creates the state.\n"
	       "bytes/tracked source = hash table slots (%zu B each, load <= 3/4) "
	       "/ tracked sources.\n", sizeof(struct dec_src));

	/* Baselines on vs off, same ticks, same run, in interleaved pairs
	 * (thread CPU time); the ratio is the median over the pairs. */
	printf("\n### Per-source baselines on vs off (1M sources, default knobs, hold 2 s; "
	       "thread CPU time)\n\n");
	printf("| sources/tick | top | ticks | baselines | source-ticks/s | ns/source-tick | "
	       "baselines held |\n|---|---|---|---|---|---|---|\n");
	bench_clock = CLOCK_THREAD_CPUTIME_ID;
	int bt = (int)(8 * scale);
	if (bt < 3)
		bt = 3;
	static const uint32_t tops[] = { 200, 1000000 };
	enum { PAIRS = 5 };
	for (size_t k = 0; k < 2; k++) {
		double ratio[PAIRS];
		for (int r = 0; r < PAIRS; r++) {
			double x = run_one(1000000, tops[k], bt, &p, NULL, false);
			double y = run_one(1000000, tops[k], bt, &p, &bp, false);
			ratio[r] = x / y;
		}
		for (int i = 1; i < PAIRS; i++)
			for (int j = i; j > 0 && ratio[j - 1] > ratio[j]; j--) {
				double t = ratio[j];
				ratio[j] = ratio[j - 1];
				ratio[j - 1] = t;
			}
		printf("| 1000000 | %s | %d x %d pairs | on vs off | **%.2fx the time** (median; "
		       "range %.2f..%.2f) | | |\n",
		       tops[k] >= 1000000 ? "all" : "200", bt, PAIRS, ratio[PAIRS / 2], ratio[0],
		       ratio[PAIRS - 1]);
	}
	return 0;
}
