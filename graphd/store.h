/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The graph's SQLite database (DESIGN §7, §9): WAL, a schema version in
 * PRAGMA user_version with migrations, prepared statements, and one
 * transaction per tick for everything the tick changed.
 *
 * kl-graphd is the only writer: a writer holds flock(LOCK_EX) on the
 * database file for as long as it is open (SQLite's own locks are POSIX
 * record locks, which this does not disturb), so a second daemon or an
 * offline `freeze` next to a running daemon is refused with a clear
 * message instead of silently losing one side's changes. Readers (export,
 * violations, backup) need no such lock: WAL gives them a consistent
 * snapshot while the daemon writes.
 *
 * Schema 3 (current):
 *   edges(src TEXT, port, proto, family, state TEXT, set_by TEXT, set_uid,
 *         state_at, seen, windows, last_window, first_seen, last_seen,
 *         pkts, bytes)  PRIMARY KEY (src, port, proto), WITHOUT ROWID
 *   edge_baselines(src, port, proto, n, ewma_pps, ewma_bps, peak_pps,
 *         peak_bps)  PRIMARY KEY (src, port, proto), WITHOUT ROWID: the
 *         per-edge baselines (edgebase.h), one row per edge that has one
 *   violations(t, src, port, proto, mode TEXT, action TEXT: signal, block,
 *         or deviation)
 *   meta(key, value)
 * Schema 2 is schema 3 without edge_baselines; migration 2 -> 3 adds the
 * (empty) table.
 * Times are Unix milliseconds; first_seen/last_seen are NULL for edges the
 * operator made that were never seen. No CHECK constraints and no index
 * on state: they cut write throughput five-fold and by 40% (bench_graph);
 * every row is validated when it is loaded instead, and a bad one is
 * named. A tick that only adds evidence updates those columns alone.
 * Schema 1 (kl-graphd before windows and provenance were kept):
 *   edges(src, port, proto, state, seen, first_seen, last_seen) with
 *   times in Unix seconds, PRIMARY KEY (src, port, proto); no violations.
 * Migration 1 -> 2 first copies the database to FILE.schema1.bak (online
 * backup), then rebuilds the table in one transaction.
 */
#ifndef KL_GRAPHD_STORE_H
#define KL_GRAPHD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "graphd/graph.h"

#define GR_SCHEMA_VERSION 3
#define GR_APPLICATION_ID 0x4b4c4744 /* "KLGD" */

struct gr_store;

struct gr_store_opts {
	const char *path;   /* ":memory:" for a throwaway database (tests, replay) */
	bool readonly;      /* no lock, no migration, no writes */
	int busy_ms;        /* how long to wait for SQLite's locks; 0 = 2000 */
	bool wait_lock;     /* writers: wait for the flock instead of failing */
	bool no_create;     /* writers: a missing file is an error, not a new graph */
};

/* Open (creating a writer's database if it does not exist), check the
 * schema (migrating an older one) and, for writers, run quick_check. Every
 * failure names the file and says what to do; the file is left as it was.
 * Returns 0, GR_STORE_IN_USE when another writer holds the lock, or -1. */
#define GR_STORE_IN_USE (-2)
int gr_store_open(struct gr_store **out, const struct gr_store_opts *o, char *err,
		  size_t errlen);
void gr_store_close(struct gr_store *s);
/* A line about what opening did (a migration, a created database), or "". */
const char *gr_store_note(const struct gr_store *s);
int gr_store_schema(const struct gr_store *s);

/* Why the edge baselines were refused by gr_store_load (a damaged
 * edge_baselines row: the graph loads without any baseline), or "". */
const char *gr_store_refused(const struct gr_store *s);

/* Load every edge into g (which must be empty). */
int gr_store_load(struct gr_store *s, struct gr_graph *g, char *err, size_t errlen);

/* One transaction: g's dirty edges (deleting GR_GONE ones), the tick's
 * violations, and violations older than purge_before (GR_NEVER: none).
 * On success calls gr_flushed(g); on failure rolls back and leaves the
 * dirty list for the next try. */
int gr_store_flush(struct gr_store *s, struct gr_graph *g, const struct gr_viol *v, size_t nv,
		   int64_t purge_before, char *err, size_t errlen);

struct gr_viol_row {
	int64_t t_ms;
	struct gr_key k;
	uint8_t mode;   /* GR_MODE_OBSERVE / GR_MODE_ENFORCE */
	uint8_t action; /* enum gr_action */
};
/* Violations at or after since_ms, oldest first, at most limit (0 = all).
 * *out is malloc'd. */
int gr_store_violations(struct gr_store *s, int64_t since_ms, size_t limit,
			struct gr_viol_row **out, size_t *n, char *err, size_t errlen);

/* SQLite online backup to a new file dest (refused if it exists). */
int gr_store_backup(struct gr_store *s, const char *dest, char *err, size_t errlen);

/* Before a daemon started as root opens PATH as its user: the database and
 * its -wal and -shm that exist must be regular files with one link owned by
 * root or uid (anything else is refused, naming the file); root-owned ones
 * (an operator's offline command) are handed to uid:gid by fchown on the
 * checked descriptor, never by path. Absent files are fine. */
int gr_store_adopt(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen);

/* Run one SQL statement (tests, migrations). */
int gr_store_exec(struct gr_store *s, const char *sql, char *err, size_t errlen);

#endif
