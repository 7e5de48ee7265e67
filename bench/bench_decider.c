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
 * Goal (issue 4): >= 5M source-ticks/s on one core.
 * Usage: bench_decider [TICKS_SCALE]   (default 1; 0.2 for a quick run)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decider/engine.h"
#include "decider/knobs.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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

/* Mostly ordinary clients; one in a hundred floods. Values move per tick
 * so nothing is a constant the compiler or the cache can keep. */
static void fill_tick(struct kl_metrics *m, size_t n, int tick)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t r = (uint32_t)(i * 2654435761u) ^ (uint32_t)(tick * 40503u);
		if (i % 100 == 7) {
			m[i].pps = 20000 + (r % 5000);
			m[i].syn = 15000 + (r % 3000);
			m[i].scan = 1;
		} else {
			m[i].pps = 10 + (r % 400);
			m[i].syn = r % 20;
			m[i].scan = r % 3;
		}
		m[i].bps = m[i].pps * 600;
		m[i].droprl = 0;
	}
}

static void run(size_t n, uint32_t top, int ticks, const struct kl_engine_params *base)
{
	struct kl_engine_params p = *base;
	struct kl_metrics *m = calloc(n, sizeof(*m));
	struct kl_changes out = { 0 };
	double busy = 0;

	if (m == NULL) {
		fprintf(stderr, "bench_decider: out of memory for %zu sources\n", n);
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		fill_addr(&m[i].addr, i);
	p.top = top;
	struct kl_engine *e = kl_engine_new(&p, 0x5eed);
	/* Tick 0 (not timed) creates the state; then the steady state. */
	for (int t = 0; t <= ticks; t++) {
		fill_tick(m, n, t);
		out.n = 0;
		double t0 = now_s();
		if (kl_engine_tick(e, (int64_t)t * 1000, m, n, NULL, 0, NULL, NULL, &out) < 0) {
			fprintf(stderr, "bench_decider: tick failed\n");
			exit(1);
		}
		if (t > 0)
			busy += now_s() - t0;
	}
	const struct kl_engine_stats *st = kl_engine_stats(e);
	double rate = (double)n * ticks / busy;
	char topbuf[16];
	snprintf(topbuf, sizeof(topbuf), top >= n ? "all" : "%u", top);
	printf("| %zu | %s | %d | %.2fM | %.0f | %.1f | %zu | %.0f |\n", n, topbuf, ticks, rate / 1e6,
	       1e9 / rate, busy / ticks * 1e3, st->tracked, kl_engine_bytes_per_source(e));
	fflush(stdout);
	kl_engine_free(e);
	kl_changes_free(&out);
	free(m);
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	struct kl_config cfg;
	struct kl_errs errs = { 0 };
	struct kl_engine_params p;

	if (!(scale > 0))
		scale = 1.0;
	/* The generic profile with every default, as kl-decider would run. */
	if (kl_config_resolve(&cfg, NULL, NULL, NULL, NULL, &errs) != 0) {
		kl_errs_print(&errs, stderr);
		return 1;
	}
	kl_engine_params_from_config(&cfg.v, &p);
	kl_config_free(&cfg);

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
	       "/ tracked sources.\n", sizeof(struct kl_src));
	return 0;
}
