/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Autotune: the time of one tune step with full reservoirs, and the replay
 * speed of the 15-day trace through autotune.
 *
 * A tune step is, for each tuned feature (pps, syn, scan), a copy of the
 * reservoir into scratch, a selection for the median, the absolute
 * deviations and a second selection for the MAD, then the capped step.
 * Baselines measured in the same run:
 *   copy   the same three float -> double copies and nothing else (the
 *          floor any median needs);
 *   sort   median and MAD by qsort instead of selection.
 * Each figure is the median of 15 runs (5 above 2^18 samples, where the
 * qsort column is left out: it alone would take a minute).
 *
 * Usage: bench_autotune [SCALE]   (default 1; 0.2 for a quick run)
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decider/autotune.h"

#define RUNS 15

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_f(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double med_sorted(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_f);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double median_of(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_f);
	return t[n / 2];
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1.0p-53;
}

/* A learner with a full reservoir of cap samples: heavy-tailed rates. */
static struct autotune *filled(uint32_t cap)
{
	struct at_config c;
	char err[256];
	struct at_triggers t = { { 5000, 500, 50, 0 } };
	at_config_defaults(&c);
	c.reservoir_cap = cap;
	c.min_samples = 1;
	struct autotune *at = autotune_new(&c, &t, 0, err, sizeof(err));
	if (at == NULL) {
		fprintf(stderr, "bench_autotune: %s\n", err);
		exit(1);
	}
	enum { N = 1000 };
	static struct dec_metrics m[N];
	static double sev[N];
	struct at_status s;
	do {
		for (int i = 0; i < N; i++) {
			double x = -log(1 - urand());
			m[i].pps = 50 + 200 * x * x;
			m[i].syn = m[i].pps * 0.05 * urand();
			m[i].scan = urand() < 0.05 ? 2 : 0;
			m[i].bps = m[i].pps * 700;
		}
		struct at_tick_view v = { .elapsed_ms = 1000, .m = m, .n = N, .sev = sev };
		autotune_observe_tick(at, &v);
		autotune_status(at, &s);
	} while (s.samples < s.cap);
	return at;
}

static void bench_step(uint32_t cap)
{
	struct autotune *at = filled(cap);
	struct at_triggers io;
	char line[AT_LOGLINE_MAX];
	double t_copy[RUNS], t_step[RUNS], t_sort[RUNS];
	int runs = cap > (1u << 18) ? 5 : RUNS;
	bool sort = cap <= (1u << 18);
	double *scratch = malloc((size_t)cap * sizeof(double));
	volatile double sink = 0;
	uint32_t n;

	if (scratch == NULL)
		exit(1);
	for (int r = 0; r < runs; r++) {
		double t0 = now_s();
		for (int f = 0; f < 3; f++) {
			const float *v = autotune_reservoir(at, f, &n);
			for (uint32_t i = 0; i < n; i++)
				scratch[i] = v[i];
			sink += scratch[n / 2];
		}
		t_copy[r] = now_s() - t0;

		autotune_force(at);
		t0 = now_s();
		if (autotune_maybe_tune(at, 0, &io, line, sizeof(line)) != AT_TUNE_APPLIED) {
			fprintf(stderr, "bench_autotune: the step did not apply\n");
			exit(1);
		}
		t_step[r] = now_s() - t0;

		t0 = now_s();
		for (int f = 0; f < 3 && sort; f++) {
			const float *v = autotune_reservoir(at, f, &n);
			for (uint32_t i = 0; i < n; i++)
				scratch[i] = v[i];
			double med = med_sorted(scratch, n);
			for (uint32_t i = 0; i < n; i++)
				scratch[i] = fabs((double)v[i] - med);
			sink += med + med_sorted(scratch, n);
		}
		t_sort[r] = now_s() - t0;
	}
	double c = median_of(t_copy, runs), s = median_of(t_step, runs), q = median_of(t_sort, runs);
	if (sort)
		printf("| %u | %.1f | %.1f | %.1f | %.1fx | %.1fx |\n", cap, c * 1e6, s * 1e6,
		       q * 1e6, s / c, q / s);
	else
		printf("| %u | %.1f | %.1f | - | %.1fx | - |\n", cap, c * 1e6, s * 1e6, s / c);
	(void)sink;
	free(scratch);
	autotune_free(at);
}

/* The 15-day trace of test_autotune_sim (40 sources, 1 tick a minute),
 * and the same with 1000 sources a tick. */
static void bench_replay(int sources, double scale)
{
	struct at_config c;
	char err[256], line[AT_LOGLINE_MAX];
	struct at_triggers t = { { 5000, 500, 50, 0 } }, io;
	at_config_defaults(&c);
	struct autotune *at = autotune_new(&c, &t, 0, err, sizeof(err));
	struct dec_metrics *m = calloc((size_t)sources, sizeof(*m));
	double *sev = calloc((size_t)sources, sizeof(*sev));
	int ticks = (int)(15 * 24 * 60 * scale), tunes = 0;

	if (at == NULL || m == NULL || sev == NULL)
		exit(1);
	double t0 = now_s();
	for (int k = 1; k <= ticks; k++) {
		for (int i = 0; i < sources; i++) {
			m[i].pps = (100 + 300.0 * i / sources) * (0.8 + 0.4 * urand());
			m[i].syn = m[i].pps * 0.08 * urand();
			m[i].scan = urand() < 0.1;
			m[i].bps = m[i].pps * 700;
			sev[i] = 0.5 * m[i].pps / t.v[0] + 0.3 * m[i].syn / t.v[1] +
				 0.2 * m[i].scan / t.v[2];
		}
		struct at_tick_view v = { .elapsed_ms = 60000, .m = m, .n = (size_t)sources,
					  .sev = sev };
		autotune_observe_tick(at, &v);
		if (autotune_maybe_tune(at, k * 60000LL, &io, line, sizeof(line)) != AT_TUNE_NONE) {
			t = io;
			tunes++;
		}
	}
	double s = now_s() - t0;
	printf("| %d | %d | %d | %.3f | %.0f | %.1f |\n", sources, ticks, tunes, s, ticks / s,
	       (double)ticks * sources / s / 1e6);
	autotune_free(at);
	free(m);
	free(sev);
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	if (!(scale > 0) || scale > 100) {
		fprintf(stderr, "usage: bench_autotune [SCALE]\n");
		return 2;
	}
	printf("One tune step (pps, syn, scan) with a full reservoir, microseconds "
	       "(median of %d):\n\n", RUNS);
	printf("| reservoir | copy (baseline) | tune step (selection) | median/MAD by qsort "
	       "| step / copy | qsort / step |\n");
	printf("|---|---|---|---|---|---|\n");
	bench_step(AT_RES_DEFAULT);
	bench_step(65536);
	bench_step(262144);
	if (scale >= 1)
		bench_step(AT_RES_MAX);
	printf("\n15-day trace through autotune (observe + tune every tick, virtual clock; "
	       "scale %.2g):\n\n", scale);
	printf("| sources/tick | ticks | tune attempts | seconds | ticks/s | M source-ticks/s |\n");
	printf("|---|---|---|---|---|---|\n");
	bench_replay(40, scale);
	bench_replay(1000, scale);
	return 0;
}
