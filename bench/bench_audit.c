/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The audit trail's cost, in /var/tmp, same run:
 *
 *  1. records per second per process with signing: kl_audit_record as the
 *     enforcer, graphd and the sensor write them (every record written at
 *     once, a signed checkpoint every 256), and as the decider's receipts
 *     (batched by its writer thread, each one signed);
 *  2. the decider's tick at 10 000 decisions per tick, audit off against
 *     audit on: two engines step the same 10 000 sources (top=all) each
 *     tick and each source yields a receipt; "on" adds the tick thread's
 *     hand-over (dec_audit_tick).
 *     Goal: at most 1.1x, judged on the median of each pair's on/off ratio
 *     in thread CPU time. The writer thread's time per tick is shown too:
 *     it has to stay below the tick interval (1 s by default).
 *
 * Usage: bench_audit [SCALE]   (default 1; 0.2 for a quick run)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/audit.h"
#include "common/log.h"
#include "decider/audit.h"
#include "decider/engine.h"
#include "decider/knobs.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* The tick thread's own CPU time: a tick preempted by other work on a
 * shared host is not charged for it. */
static double cpu_s(void)
{
	return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static char dir[64];

static struct kl_audit *open_in(const char *sub, bool batch)
{
	char d[128], k[128], err[512];
	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	snprintf(k, sizeof(k), "%s/%s.key", dir, sub);
	struct kl_audit_opts o = { .dir = d, .key = k, .proc = "bench", .batch = batch,
				   .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = "" };
	struct kl_audit *a = kl_audit_open(&o, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "bench_audit: %s\n", err);
		exit(1);
	}
	return a;
}

static void fill_addr(struct kl_addr *a, size_t i)
{
	memset(a, 0, sizeof(*a));
	a->family = 4;
	a->prefixlen = 32;
	a->addr[0] = 10;
	a->addr[1] = (uint8_t)(i >> 16);
	a->addr[2] = (uint8_t)(i >> 8);
	a->addr[3] = (uint8_t)i;
}

static void bench_records(int n)
{
	char d[256], sub[32];
	struct kl_audit *a = open_in("direct", false);
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "198.18.%d.%d", (i >> 8) & 255, i & 255);
		snprintf(d, sizeof(d),
			 "{\"what\":\"RATE_SOFT\",\"rate\":50,\"burst\":100,\"ttl_ms\":600000,"
			 "\"reason\":\"ok\",\"peer\":{\"role\":\"decider\",\"uid\":999,\"pid\":%d}}",
			 1000 + i % 7);
		kl_audit_record(a, "map_change", sub, d, "ok");
	}
	double dt = now_s() - t0;
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	kl_audit_close(a);
	printf("| enforcer/graphd/sensor style: each record written, signed checkpoint every 256 "
	       "| %d | %.0f | %llu | %.2f |\n",
	       n, n / dt, (unsigned long long)st.signatures, dt * 1e6 / n);
}

static struct dec_change *changes(size_t n)
{
	struct dec_change *c = calloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		fill_addr(&c[i].addr, i);
		c[i].from = DEC_LVL_OBSERVE;
		c[i].to = c[i].action = DEC_LVL_SOFT;
		c[i].reason = DEC_R_SOFT_AT;
		c[i].strikes = 2;
		c[i].sev = 1.7;
		c[i].rate = 50;
		c[i].burst = 100;
		c[i].ttl_ms = 600000;
		c[i].feat[0] = c[i].feat[1] = 20000.5f;
	}
	return c;
}

static void bench_receipts(int ticks, size_t per_tick, const struct dec_engine_params *p)
{
	struct dec_change *c = changes(per_tick);
	struct kl_audit *a = open_in("receipts", true);
	struct dec_audit *da = dec_audit_new(a, "generic");
	struct kl_audit_stats st;
	double t0 = now_s();
	for (int t = 0; t < ticks; t++)
		dec_audit_tick(da, (uint64_t)t, p, c, per_tick);
	dec_audit_sync(da);
	double dt = now_s() - t0;
	kl_audit_get_stats(a, &st); /* the writer is idle after the sync */
	dec_audit_free(da);
	double n = (double)ticks * (double)per_tick;
	printf("| decider receipts: writer thread, each receipt signed, ticks of %zu "
	       "| %.0f | %.0f | %llu | %.2f |\n",
	       per_tick, n, n / dt, (unsigned long long)st.signatures, dt * 1e6 / n);
	free(c);
}

static void fill_tick(struct dec_metrics *m, size_t n, int tick)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t r = (uint32_t)(i * 2654435761u) ^ (uint32_t)(tick * 40503u);
		m[i].pps = 20000 + (r % 5000);
		m[i].syn = 15000 + (r % 3000);
		m[i].scan = 1 + r % 3;
		m[i].bps = m[i].pps * 600;
		m[i].droprl = 0;
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One engine tick, from caches swept the same way (a decider ticks once a
 * second: its data is never warm), with the receipts' hand-over when `da`
 * is set. Returns the tick's seconds; *hand the hand-over's. */
static double one_tick(struct dec_engine *e, struct dec_audit *da, int t,
		       const struct dec_engine_params *p, const struct dec_metrics *m, size_t n,
		       const struct dec_change *c, struct dec_changes *out, char *sweep,
		       size_t sweep_len, double *hand)
{
	memset(sweep, t, sweep_len);
	out->n = 0;
	double t0 = cpu_s();
	if (dec_engine_tick(e, (int64_t)t * 1000, m, n, NULL, 0, NULL, NULL, out) < 0)
		exit(1);
	double h0 = cpu_s();
	if (da)
		dec_audit_tick(da, (uint64_t)t, p, c, n);
	double t1 = cpu_s();
	*hand = t1 - h0;
	return t1 - t0;
}

/* Two engines with the same seed see the same input every tick, so that
 * "off" and "on" do the same work (a stateful engine's ticks differ from
 * one to the next); which one goes first alternates. The receipt writer
 * runs after both, timed apart: it has its own thread and the time
 * between ticks. */
static void bench_tick(int ticks, size_t n, const struct dec_engine_params *base)
{
	struct dec_engine_params p = *base;
	p.top = (uint32_t)n;
	struct dec_metrics *m = calloc(n, sizeof(*m));
	for (size_t i = 0; i < n; i++)
		fill_addr(&m[i].addr, i);
	struct dec_change *c = changes(n);
	struct dec_changes out_off = { 0 }, out_on = { 0 };
	struct dec_engine *e_off = dec_engine_new(&p, 0x5eed), *e_on = dec_engine_new(&p, 0x5eed);
	struct dec_audit *da = dec_audit_new(open_in("tick", true), "generic");
	double *off = calloc((size_t)ticks, sizeof(double)), *on = calloc((size_t)ticks, sizeof(double));
	double *pair = calloc((size_t)ticks, sizeof(double));
	double writer = 0, *hand = calloc((size_t)ticks, sizeof(double)), unused;
	size_t sweep_len = 32u << 20;
	char *sweep = malloc(sweep_len);
	for (int t = 0; t <= ticks; t++) {
		fill_tick(m, n, t);
		double d_off, d_on, h;
		if (t % 2 == 0) {
			d_off = one_tick(e_off, NULL, t, &p, m, n, c, &out_off, sweep, sweep_len, &unused);
			d_on = one_tick(e_on, da, t, &p, m, n, c, &out_on, sweep, sweep_len, &h);
		} else {
			d_on = one_tick(e_on, da, t, &p, m, n, c, &out_on, sweep, sweep_len, &h);
			d_off = one_tick(e_off, NULL, t, &p, m, n, c, &out_off, sweep, sweep_len, &unused);
		}
		double w0 = now_s();
		dec_audit_sync(da);
		if (t == 0)
			continue; /* the first tick allocates */
		if (out_on.n != out_off.n) {
			fprintf(stderr, "bench_audit: the two engines diverged at tick %d\n", t);
			exit(1);
		}
		writer += now_s() - w0;
		off[t - 1] = d_off;
		on[t - 1] = d_on;
		pair[t - 1] = d_on / d_off;
		hand[t - 1] = h;
	}
	qsort(off, (size_t)ticks, sizeof(double), cmp_d);
	qsort(on, (size_t)ticks, sizeof(double), cmp_d);
	qsort(hand, (size_t)ticks, sizeof(double), cmp_d);
	qsort(pair, (size_t)ticks, sizeof(double), cmp_d);
	/* Medians of thread CPU time, and the median of each tick's own
	 * on/off ratio: the two ticks of a pair run back to back on the same
	 * input, so a slow phase of the host slows both. */
	double mo = off[ticks / 2], mn = on[ticks / 2];
	printf("| %zu | %d | %.2f | %.2f | %.3fx | %.3fx | %.3f | %.1f |\n", n, ticks, mo * 1e3,
	       mn * 1e3, mn / mo, pair[ticks / 2], hand[ticks / 2] * 1e3, writer / ticks * 1e3);
	free(pair);
	dec_audit_free(da);
	dec_engine_free(e_off);
	dec_engine_free(e_on);
	dec_changes_free(&out_off);
	dec_changes_free(&out_on);
	free(c);
	free(m);
	free(sweep);
	free(off);
	free(on);
	free(hand);
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	struct dec_config cfg;
	struct kl_errs errs = { 0 };
	struct dec_engine_params p;

	if (!(scale > 0))
		scale = 1.0;
	kl_log_init("bench_audit", KL_LOG_WARN);
	snprintf(dir, sizeof(dir), "/var/tmp/kl-bench-audit.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("bench_audit: mkdtemp");
		return 1;
	}
	if (dec_config_resolve(&cfg, NULL, NULL, NULL, NULL, &errs) != 0) {
		kl_errs_print(&errs, stderr);
		return 1;
	}
	dec_engine_params_from_config(&cfg.v, &p);
	dec_config_free(&cfg);

	printf("### audit records per second, one process, with signing (%s)\n\n", dir);
	printf("| writer | records | records/s | signatures | us/record |\n|---|---|---|---|---|\n");
	bench_records((int)(200000 * scale));
	bench_receipts((int)(20 * scale) < 2 ? 2 : (int)(20 * scale), 10000, &p);

	printf("\n### kl-decider tick, 10 000 decisions per tick, audit off vs on\n\n");
	printf("| decisions/tick | ticks each | off ms CPU (median) | on ms CPU (median) | on/off | "
	       "on/off of each pair (median) | hand-over ms | "
	       "writer ms/tick (own thread) |\n|---|---|---|---|---|---|---|---|\n");
	int ticks = (int)(40 * scale);
	bench_tick(ticks < 3 ? 3 : ticks, 10000, &p);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_audit: could not remove %s\n", dir);
	return 0;
}
