/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-graphd throughput: edge observations merged (learner) and stored
 * (SQLite, one transaction per tick) per second, at 10k and 100k distinct
 * edges, every edge observed in every tick (the worst case: every row is
 * rewritten each tick). The first tick, which inserts, is timed apart.
 *
 * Baseline, in the same run and on the same disk: a raw SQLite loop that
 * upserts the same number of rows per transaction into a table of the
 * same shape with a prepared statement and preformatted keys, i.e. what
 * SQLite alone costs for the write.
 *
 * Goal: >= 100k observations per second.
 * Per-edge baselines (on by default and so in the first table):
 * the same runs with them off and on, side by side.
 * Usage: bench_graph [TICKS_SCALE]   (default 1; 0.2 for a quick run)
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graphd/graph.h"
#include "graphd/store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Edge i: 8 ports per source, half the sources IPv4 (198.18/15, 10/8),
 * half IPv6 (fd00:6b6c::/48). */
static void fill_obs(struct gr_obs *o, size_t i)
{
	size_t s = i / 8;

	memset(o, 0, sizeof(*o));
	if (s % 2 == 0) {
		uint32_t v = (uint32_t)(s / 2);
		o->src.family = 4;
		o->src.prefixlen = 32;
		o->src.addr[0] = (uint8_t)(10 + (v >> 24));
		o->src.addr[1] = (uint8_t)(v >> 16);
		o->src.addr[2] = (uint8_t)(v >> 8);
		o->src.addr[3] = (uint8_t)(v | 1);
	} else {
		uint64_t v = s / 2;
		o->src.family = 6;
		o->src.prefixlen = 128;
		o->src.addr[0] = 0xfd;
		o->src.addr[2] = 0x6b;
		o->src.addr[3] = 0x6c;
		for (int k = 0; k < 8; k++)
			o->src.addr[8 + k] = (uint8_t)(v >> (8 * (7 - k)));
		o->src.addr[15] |= 1;
	}
	o->port = (uint16_t)(1000 + i % 8);
	o->proto = i % 3 == 0 ? 17 : 6;
	o->pkts = 1 + i % 7;
	o->bytes = 60 * o->pkts;
}

struct result {
	double merge, store, both, first, raw;
};

static int run_graph(const char *dir, size_t n, int ticks, bool eb, struct result *r)
{
	char path[256], err[1024];
	struct gr_store *st;
	struct gr_graph g;
	struct gr_params p;
	struct gr_obs *o = malloc(n * sizeof(*o));

	if (o == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		fill_obs(&o[i], i);
	snprintf(path, sizeof(path), "%s/graph-%zu-%d.db", dir, n, (int)eb);
	struct gr_store_opts so = { .path = path };
	if (gr_store_open(&st, &so, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_graph: %s\n", err);
		free(o);
		return -1;
	}
	gr_params_default(&p);
	p.eb.enabled = eb;
	if (gr_init(&g, &p) < 0)
		return -1;
	double merge = 0, store = 0;
	int64_t t = 1700000000000ll;
	for (int k = 0; k <= ticks; k++, t += 1000) {
		double a = now_s();
		if (gr_tick(&g, t, o, n, NULL, 0) < 0)
			return -1;
		double b = now_s();
		if (gr_store_flush(st, &g, g.viol, g.nviol, GR_NEVER, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_graph: %s\n", err);
			return -1;
		}
		double c = now_s();
		if (k == 0) {
			r->first = (double)n / (c - a);
			continue;
		}
		merge += b - a;
		store += c - b;
	}
	r->merge = (double)n * ticks / merge;
	r->store = (double)n * ticks / store;
	r->both = (double)n * ticks / (merge + store);
	gr_free(&g);
	gr_store_close(st);
	free(o);
	return 0;
}

static int run_raw(const char *dir, size_t n, int ticks, struct result *r)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	char (*key)[48] = malloc(n * sizeof(*key));

	if (key == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct gr_obs o;
		fill_obs(&o, i);
		kl_addr_format(&o.src, key[i], sizeof(key[i]));
	}
	snprintf(path, sizeof(path), "%s/raw-%zu.db", dir, n);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			 "CREATE TABLE t(src TEXT NOT NULL, port INTEGER NOT NULL, proto INTEGER NOT NULL,"
			 " seen INTEGER, last_seen INTEGER, pkts INTEGER,"
			 " PRIMARY KEY (src, port, proto)) WITHOUT ROWID", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (src, port, proto)"
			       " DO UPDATE SET seen = ?4, last_seen = ?5, pkts = ?6", -1, &st,
			       NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_graph: raw sqlite: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	double total = 0;
	for (int k = 0; k <= ticks; k++) {
		double a = now_s();
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (size_t i = 0; i < n; i++) {
			sqlite3_bind_text(st, 1, key[i], -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 2, (int)(1000 + i % 8));
			sqlite3_bind_int(st, 3, i % 3 == 0 ? 17 : 6);
			sqlite3_bind_int64(st, 4, k + 1);
			sqlite3_bind_int64(st, 5, 1700000000000ll + k * 1000);
			sqlite3_bind_int64(st, 6, (int64_t)(k + 1) * 3);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (k > 0)
			total += now_s() - a;
	}
	r->raw = (double)n * ticks / total;
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(key);
	return 0;
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	char dir[] = "/var/tmp/kl-bench-graph.XXXXXX";
	static const size_t sizes[] = { 10000, 100000 };
	int rc = 0;

	if (scale <= 0)
		scale = 1;
	if (mkdtemp(dir) == NULL) {
		perror("bench_graph: mkdtemp");
		return 1;
	}
	printf("Edge observations merged and stored per second; every edge is seen in every tick and\n"
	       "every tick is one SQLite transaction (WAL, synchronous=NORMAL) in %s.\n"
	       "Baseline: a raw SQLite upsert loop (prepared statement, preformatted keys) writing\n"
	       "the same rows per transaction into a table of the same shape.\n\n", dir);
	printf("| distinct edges | ticks | first tick (inserts) | merge only | store only | merged + stored "
	       "| raw SQLite upsert | vs raw |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	double worst = 1e18;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		int ticks = (int)(scale * (n <= 10000 ? 50 : 10));
		struct result r;
		if (ticks < 2)
			ticks = 2;
		memset(&r, 0, sizeof(r));
		if (run_graph(dir, n, ticks, true, &r) < 0 || run_raw(dir, n, ticks, &r) < 0) {
			rc = 1;
			break;
		}
		printf("| %zu | %d | %.0fk/s | %.0fk/s | %.0fk/s | **%.0fk/s** | %.0fk/s | %.2fx |\n", n,
		       ticks, r.first / 1e3, r.merge / 1e3, r.store / 1e3, r.both / 1e3, r.raw / 1e3,
		       r.both / r.raw);
		if (r.both < worst)
			worst = r.both;
	}
	if (rc == 0)
		printf("\nGoal >= 100k observations/s: %s (slowest %.0fk/s).\n",
		       worst >= 100000 ? "met" : "NOT met", worst / 1e3);
	if (rc == 0) {
		/* Interleaved pairs, the median ratio: the disk and the other
		 * tenants of the machine move single runs by more than the
		 * difference. Baseline rows are written on maintenance ticks
		 * (every promote interval, 5 min) and at exit, which these
		 * runs of 1 s ticks do not reach: what is measured is the
		 * per-tick cost, the learning in the merge. */
		printf("\nPer-edge baselines off vs on (merged + stored, same run, median of 3 "
		       "interleaved pairs):\n\n"
		       "| distinct edges | ticks | baselines off | baselines on | on vs off |\n"
		       "|---:|---:|---:|---:|---:|\n");
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]) && rc == 0; s++) {
			size_t n = sizes[s];
			int ticks = (int)(scale * (n <= 10000 ? 50 : 10));
			struct result off[3], on[3];
			double ratio[3];
			if (ticks < 2)
				ticks = 2;
			memset(off, 0, sizeof(off));
			memset(on, 0, sizeof(on));
			for (int k = 0; k < 3 && rc == 0; k++) {
				if (run_graph(dir, n, ticks, false, &off[k]) < 0 ||
				    run_graph(dir, n, ticks, true, &on[k]) < 0)
					rc = 1;
				ratio[k] = off[k].both / on[k].both;
			}
			if (rc != 0)
				break;
			int mid = 0; /* index of the median ratio */
			for (int k = 0; k < 3; k++) {
				int below = 0;
				for (int j = 0; j < 3; j++)
					below += ratio[j] < ratio[k] || (ratio[j] == ratio[k] && j < k);
				if (below == 1)
					mid = k;
			}
			printf("| %zu | %d | %.0fk/s | %.0fk/s | %.2fx the time |\n", n, ticks,
			       off[mid].both / 1e3, on[mid].both / 1e3, ratio[mid]);
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_graph: could not remove %s\n", dir);
	return rc;
}
