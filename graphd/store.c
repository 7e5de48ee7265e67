/* SPDX-License-Identifier: MPL-2.0 */
/* SQLite persistence of the graph (see store.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graphd/store.h"

#include "common/err.h"
#include "common/safefile.h"

struct gr_store {
	sqlite3 *db;
	char *path;
	int lock_fd;   /* flock holder (writers); closed only after sqlite3_close */
	bool readonly;
	int schema;
	char note[2 * PATH_MAX + 128];
	/* Why the edge baselines were refused at load ("" when they were
	 * not); while eb_clear, the next flush empties their table first. */
	char eb_refused[PATH_MAX + 256];
	bool eb_clear;
	sqlite3_stmt *upsert, *evidence, *del, *viol_ins, *viol_purge, *eb_upsert, *eb_del;
};

/* Schema 3: per-edge baselines in their own table (edgebase.h). */
#define EDGE_BASELINES_TABLE                                                         \
	"CREATE TABLE edge_baselines("                                               \
	" src TEXT NOT NULL, port INTEGER NOT NULL, proto INTEGER NOT NULL,"         \
	" n INTEGER NOT NULL, ewma_pps REAL NOT NULL, ewma_bps REAL NOT NULL,"       \
	" peak_pps REAL NOT NULL, peak_bps REAL NOT NULL,"                           \
	" PRIMARY KEY (src, port, proto)) WITHOUT ROWID"

static const char *const schema_v2[] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
	"CREATE TABLE edges("
	" src TEXT NOT NULL,"
	" port INTEGER NOT NULL,"
	" proto INTEGER NOT NULL,"
	" family INTEGER NOT NULL,"
	" state TEXT NOT NULL,"
	" set_by TEXT NOT NULL,"
	" set_uid INTEGER,"
	" state_at INTEGER NOT NULL,"
	" seen INTEGER NOT NULL,"
	" windows INTEGER NOT NULL,"
	" last_window INTEGER,"
	" first_seen INTEGER,"
	" last_seen INTEGER,"
	" pkts INTEGER NOT NULL DEFAULT 0,"
	" bytes INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (src, port, proto)) WITHOUT ROWID",
	"CREATE TABLE violations("
	" t INTEGER NOT NULL, src TEXT NOT NULL, port INTEGER NOT NULL, proto INTEGER NOT NULL,"
	" mode TEXT NOT NULL,"
	" action TEXT NOT NULL)",
	"CREATE INDEX violations_t ON violations(t)",
	EDGE_BASELINES_TABLE, /* schema 3 */
	NULL
};

/* What an SQLite failure means for the operator. */
static const char *advice(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		return "it is not an SQLite database (damaged or another file); it was left untouched: "
		       "restore a backup (kl-graphd --graph-store FILE backup NEW makes one) or move it away to "
		       "start an empty graph";
	case SQLITE_CORRUPT:
		return "the database is damaged; it was left untouched: restore a backup, or try "
		       "`sqlite3 FILE .recover`";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "another process holds the database locked (a running kl-graphd, or an "
		       "sqlite3 shell in a transaction); nothing was changed: stop it, or use "
		       "`klctl graph ...` against the running daemon";
	case SQLITE_READONLY:
		return "the database (or its directory, for the -wal/-shm files) is not writable by "
		       "this user";
	case SQLITE_CANTOPEN:
		return "cannot open the file (missing directory or permissions)";
	case SQLITE_FULL:
		return "the disk is full";
	default:
		return NULL;
	}
}

static int sqlfail(struct gr_store *s, int rc, char *err, size_t errlen, const char *what)
{
	const char *a = advice(rc);
	const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);

	if (a != NULL)
		return kl_fail(err, errlen, "graph db %s: %s: %s; %s", s->path, what, msg, a);
	return kl_fail(err, errlen, "graph db %s: %s: %s", s->path, what, msg);
}

int gr_store_exec(struct gr_store *s, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		char what[200];
		snprintf(what, sizeof(what), "%.160s", sql);
		return sqlfail(s, rc, err, errlen, what);
	}
	return 0;
}

/* One integer from a one-row query. */
static int query_int(struct gr_store *s, const char *sql, int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, sql);
	return 0;
}

static int query_text(struct gr_store *s, const char *sql, char *out, size_t outlen, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	out[0] = '\0';
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			snprintf(out, outlen, "%s", t ? (const char *)t : "");
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, sql);
	return 0;
}

static int backup_to(sqlite3 *src, const char *dest, char *err, size_t errlen)
{
	sqlite3 *d = NULL;
	int rc = sqlite3_open_v2(dest, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	if (rc != SQLITE_OK) {
		kl_fail(err, errlen, "backup %s: %s", dest, d ? sqlite3_errmsg(d) : sqlite3_errstr(rc));
		sqlite3_close(d);
		return -1;
	}
	sqlite3_backup *b = sqlite3_backup_init(d, "main", src, "main");
	if (b == NULL) {
		kl_fail(err, errlen, "backup %s: %s", dest, sqlite3_errmsg(d));
		sqlite3_close(d);
		return -1;
	}
	/* Small steps: a writer waiting on us is blocked for one step at most. */
	do {
		rc = sqlite3_backup_step(b, 256);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		kl_fail(err, errlen, "backup %s: %s", dest, sqlite3_errstr(rc));
		sqlite3_close(d);
		unlink(dest);
		return -1;
	}
	rc = sqlite3_close(d);
	if (rc != SQLITE_OK)
		return kl_fail(err, errlen, "backup %s: close: %s", dest, sqlite3_errstr(rc));
	return 0;
}

/* The current schema's tables, inside the caller's transaction. */
static int exec_schema_v2(struct gr_store *s, char *err, size_t errlen)
{
	for (size_t i = 0; schema_v2[i] != NULL; i++)
		if (gr_store_exec(s, schema_v2[i], err, errlen) < 0)
			return -1;
	return 0;
}

/* Stamp the file as ours at the current version, and commit. */
static int stamp_and_commit(struct gr_store *s, char *err, size_t errlen)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", GR_APPLICATION_ID);
	if (gr_store_exec(s, sql, err, errlen) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", GR_SCHEMA_VERSION);
	if (gr_store_exec(s, sql, err, errlen) < 0 || gr_store_exec(s, "COMMIT", err, errlen) < 0)
		return -1;
	return 0;
}

static int create_v2(struct gr_store *s, char *err, size_t errlen)
{
	if (gr_store_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (exec_schema_v2(s, err, errlen) < 0)
		goto bad;
	if (stamp_and_commit(s, err, errlen) < 0)
		goto bad;
	return 0;
bad:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* 1 -> 2: times from seconds to ms, family, provenance and windows added,
 * a violations table. Windows are unknown in schema 1: a candidate starts
 * with one (the conservative guess), so it needs fresh windows to be
 * promoted; every other state is kept as it was. */
static int migrate_1_2(struct gr_store *s, char *err, size_t errlen)
{
	static const char *const steps[] = {
		"ALTER TABLE edges RENAME TO edges_v1",
		NULL, /* schema_v2 tables */
		"INSERT INTO edges(src, port, proto, family, state, set_by, set_uid, state_at, seen,"
		" windows, last_window, first_seen, last_seen, pkts, bytes)"
		" SELECT src, port, proto, CASE WHEN instr(src, ':') > 0 THEN 6 ELSE 4 END,"
		" state,"
		" CASE WHEN state IN ('approved', 'denied') THEN 'operator' ELSE 'migration' END,"
		" NULL, last_seen * 1000, seen, CASE WHEN seen > 0 THEN 1 ELSE 0 END, NULL,"
		" first_seen * 1000, last_seen * 1000, 0, 0 FROM edges_v1",
		"DROP TABLE edges_v1",
		NULL
	};
	char bak[PATH_MAX + 32];

	if (snprintf(bak, sizeof(bak), "%s.schema1.bak", s->path) >= (int)sizeof(bak))
		return kl_fail(err, errlen, "graph db %s: path too long for the migration backup",
			    s->path);
	unlink(bak);
	if (backup_to(s->db, bak, err, errlen) < 0)
		return kl_fail(err, errlen, "graph db %s: not migrating from schema 1: the backup to %s "
			    "failed first", s->path, bak);
	if (gr_store_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	/* Schema 2 has no CHECK constraints (write speed); a row schema 1
	 * let through that schema 2 would not load stops the migration. */
	sqlite3_stmt *chk = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT src, port, proto, state FROM edges WHERE state NOT IN"
				    " ('candidate','learned','frozen','approved','denied','expired')"
				    " OR port NOT BETWEEN 0 AND 65535 OR proto NOT BETWEEN 0 AND 255"
				    " OR seen < 0 OR typeof(first_seen) != 'integer'"
				    " OR typeof(last_seen) != 'integer' LIMIT 1", -1, &chk, NULL);
	if (rc != SQLITE_OK) {
		sqlfail(s, rc, err, errlen, "checking schema 1 rows");
		goto bad;
	}
	if (sqlite3_step(chk) == SQLITE_ROW) {
		const unsigned char *src = sqlite3_column_text(chk, 0);
		const unsigned char *st = sqlite3_column_text(chk, 3);
		kl_fail(err, errlen, "graph db %s: schema 1 edge (%s, %lld, %lld) has state '%s' or a "
		     "field out of range", s->path, src ? (const char *)src : "NULL",
		     (long long)sqlite3_column_int64(chk, 1), (long long)sqlite3_column_int64(chk, 2),
		     st ? (const char *)st : "NULL");
		sqlite3_finalize(chk);
		goto bad;
	}
	sqlite3_finalize(chk);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) - 1; i++) {
		if (steps[i] == NULL) {
			if (exec_schema_v2(s, err, errlen) < 0)
				goto bad;
		} else if (gr_store_exec(s, steps[i], err, errlen) < 0) {
			goto bad;
		}
	}
	if (stamp_and_commit(s, err, errlen) < 0)
		goto bad;
	snprintf(s->note, sizeof(s->note), "migrated %.4000s from schema 1 to %d (the schema 1 copy is %.4100s)",
		 s->path, GR_SCHEMA_VERSION, bak);
	return 0;
bad:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	size_t l = strlen(err);
	if (l + 1 < errlen)
		snprintf(err + l, errlen - l, " (migration from schema 1 rolled back; the database is "
			 "unchanged, a copy is in %s)", bak);
	return -1;
}

/* 2 -> 3: the edge_baselines table; every edge starts without a baseline. */
static int migrate_2_3(struct gr_store *s, char *err, size_t errlen)
{
	char sql[64];

	if (gr_store_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", GR_SCHEMA_VERSION);
	if (gr_store_exec(s, EDGE_BASELINES_TABLE, err, errlen) < 0 ||
	    gr_store_exec(s, sql, err, errlen) < 0 || gr_store_exec(s, "COMMIT", err, errlen) < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	snprintf(s->note, sizeof(s->note), "migrated %.4000s from schema 2 to %d (edge baselines)",
		 s->path, GR_SCHEMA_VERSION);
	return 0;
}

static int check_schema(struct gr_store *s, char *err, size_t errlen)
{
	int64_t v = 0, ntab = 0, app = 0;

	if (query_int(s, "PRAGMA user_version", &v, err, errlen) < 0 ||
	    query_int(s, "PRAGMA application_id", &app, err, errlen) < 0 ||
	    query_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", &ntab, err,
		      errlen) < 0)
		return -1;
	if (v > GR_SCHEMA_VERSION)
		return kl_fail(err, errlen, "graph db %s: schema version %lld is newer than this "
			    "kl-graphd knows (%d); use the kl-graphd that wrote it",
			    s->path, (long long)v, GR_SCHEMA_VERSION);
	if (v >= 2 && app != GR_APPLICATION_ID)
		return kl_fail(err, errlen, "graph db %s: not a kl-graphd database (application_id "
			    "%lld, expected %d)", s->path, (long long)app, GR_APPLICATION_ID);
	if (v == 0 && ntab > 0)
		return kl_fail(err, errlen, "graph db %s: an SQLite database with %lld tables but no "
			    "kl-graphd schema version; refusing to touch it", s->path, (long long)ntab);
	if (v == 1) {
		int64_t has = 0;
		if (query_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
			      "name = 'edges'", &has, err, errlen) < 0)
			return -1;
		if (!has)
			return kl_fail(err, errlen, "graph db %s: schema version 1 without an edges table; "
				    "refusing to touch it", s->path);
	}
	if (s->readonly) {
		if (v == 0)
			return kl_fail(err, errlen, "graph db %s: empty (no graph has been stored yet)",
				    s->path);
		if (v < GR_SCHEMA_VERSION)
			return kl_fail(err, errlen, "graph db %s: schema version %lld needs migrating to "
				    "%d: start kl-graphd (or run an offline command that writes, "
				    "e.g. `freeze --dry-run`) once while no daemon runs",
				    s->path, (long long)v, GR_SCHEMA_VERSION);
		s->schema = (int)v;
		return 0;
	}
	if (v == 0) {
		if (create_v2(s, err, errlen) < 0)
			return -1;
		snprintf(s->note, sizeof(s->note), "created %s (schema %d)", s->path,
			 GR_SCHEMA_VERSION);
	} else if (v == 1) {
		if (migrate_1_2(s, err, errlen) < 0) /* to the current schema at once */
			return -1;
	} else if (v == 2) {
		if (migrate_2_3(s, err, errlen) < 0)
			return -1;
	}
	s->schema = GR_SCHEMA_VERSION;
	return 0;
}

static int prepare(struct gr_store *s, char *err, size_t errlen)
{
	static const struct { size_t off; const char *sql; } st[] = {
		{ offsetof(struct gr_store, upsert),
		  "INSERT INTO edges(src, port, proto, family, state, set_by, set_uid, state_at, seen,"
		  " windows, last_window, first_seen, last_seen, pkts, bytes)"
		  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
		  " ON CONFLICT (src, port, proto) DO UPDATE SET family = ?4, state = ?5,"
		  " set_by = ?6, set_uid = ?7, state_at = ?8, seen = ?9, windows = ?10,"
		  " last_window = ?11, first_seen = ?12, last_seen = ?13, pkts = ?14, bytes = ?15" },
		{ offsetof(struct gr_store, evidence),
		  "UPDATE edges SET seen = ?4, windows = ?5, last_window = ?6, first_seen = ?7,"
		  " last_seen = ?8, pkts = ?9, bytes = ?10 WHERE src = ?1 AND port = ?2 AND proto = ?3" },
		{ offsetof(struct gr_store, del),
		  "DELETE FROM edges WHERE src = ?1 AND port = ?2 AND proto = ?3" },
		{ offsetof(struct gr_store, viol_ins),
		  "INSERT INTO violations(t, src, port, proto, mode, action) VALUES (?, ?, ?, ?, ?, ?)" },
		{ offsetof(struct gr_store, viol_purge), "DELETE FROM violations WHERE t < ?" },
		{ offsetof(struct gr_store, eb_upsert),
		  "INSERT INTO edge_baselines(src, port, proto, n, ewma_pps, ewma_bps, peak_pps,"
		  " peak_bps) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		  " ON CONFLICT (src, port, proto) DO UPDATE SET n = ?4, ewma_pps = ?5,"
		  " ewma_bps = ?6, peak_pps = ?7, peak_bps = ?8" },
		{ offsetof(struct gr_store, eb_del),
		  "DELETE FROM edge_baselines WHERE src = ?1 AND port = ?2 AND proto = ?3" },
	};

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		sqlite3_stmt **p = (sqlite3_stmt **)((char *)s + st[i].off);
		int rc = sqlite3_prepare_v3(s->db, st[i].sql, -1, SQLITE_PREPARE_PERSISTENT, p, NULL);
		if (rc != SQLITE_OK)
			return sqlfail(s, rc, err, errlen, "preparing statements");
	}
	return 0;
}

static int take_lock(struct gr_store *s, bool wait, bool create, char *err, size_t errlen)
{
	s->lock_fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0640);
	if (s->lock_fd < 0 && errno == ENOENT && !create)
		return kl_fail(err, errlen, "graph db %s: no such file (kl-graphd creates it when it first "
			    "runs; check --graph-store)", s->path);
	if (s->lock_fd < 0)
		return kl_fail(err, errlen, "graph db %s: cannot open: %s", s->path, strerror(errno));
	if (flock(s->lock_fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		int e = errno;
		close(s->lock_fd);
		s->lock_fd = -1;
		if (e == EWOULDBLOCK) {
			kl_fail(err, errlen, "graph db %s: in use by a running kl-graphd (it holds the "
			     "writer lock); change the live graph with `klctl graph ...`, or stop "
			     "kl-graphd first", s->path);
			return GR_STORE_IN_USE;
		}
		return kl_fail(err, errlen, "graph db %s: lock: %s", s->path, strerror(e));
	}
	return 0;
}

int gr_store_open(struct gr_store **out, const struct gr_store_opts *o, char *err,
		  size_t errlen)
{
	struct gr_store *s = calloc(1, sizeof(*s));
	bool mem = strcmp(o->path, ":memory:") == 0;
	int flags = o->readonly	   ? SQLITE_OPEN_READONLY
		    : o->no_create ? SQLITE_OPEN_READWRITE
				   : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc;

	*out = NULL;
	if (s == NULL || (s->path = strdup(o->path)) == NULL) {
		free(s);
		return kl_fail(err, errlen, "graph db %s: out of memory", o->path);
	}
	s->lock_fd = -1;
	s->readonly = o->readonly;
	if (!mem && o->readonly && access(o->path, F_OK) < 0) {
		kl_fail(err, errlen, "graph db %s: %s", o->path, strerror(errno));
		goto bad;
	}
	if (!mem && !o->readonly && (rc = take_lock(s, o->wait_lock, !o->no_create, err, errlen)) < 0) {
		gr_store_close(s);
		return rc;
	}
	rc = sqlite3_open_v2(o->path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sqlfail(s, rc, err, errlen, "open");
		goto bad;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, o->busy_ms > 0 ? o->busy_ms : 2000);
	if (!o->readonly && !mem) {
		char mode[32];
		if (query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err, errlen) < 0)
			goto bad;
		if (strcmp(mode, "wal") != 0) {
			kl_fail(err, errlen, "graph db %s: cannot switch to WAL (journal_mode is %s)",
			     o->path, mode);
			goto bad;
		}
	}
	if (gr_store_exec(s, "PRAGMA synchronous = NORMAL", err, errlen) < 0 ||
	    gr_store_exec(s, "PRAGMA cache_size = -32768", err, errlen) < 0 ||
	    gr_store_exec(s, "PRAGMA temp_store = MEMORY", err, errlen) < 0)
		goto bad;
	if (!o->readonly) {
		char ok[256];
		if (query_text(s, "PRAGMA quick_check(1)", ok, sizeof(ok), err, errlen) < 0)
			goto bad;
		if (strcmp(ok, "ok") != 0) {
			kl_fail(err, errlen, "graph db %s: damaged (quick_check: %s); it was left untouched: "
			     "restore a backup, or try `sqlite3 FILE .recover`", o->path, ok);
			goto bad;
		}
	}
	if (check_schema(s, err, errlen) < 0)
		goto bad;
	if (!o->readonly && prepare(s, err, errlen) < 0)
		goto bad;
	*out = s;
	return 0;
bad:
	gr_store_close(s);
	return -1;
}

void gr_store_close(struct gr_store *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->evidence);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->viol_ins);
	sqlite3_finalize(s->viol_purge);
	sqlite3_finalize(s->eb_upsert);
	sqlite3_finalize(s->eb_del);
	sqlite3_close(s->db);
	/* Only now: closing any descriptor of the file drops the process's
	 * POSIX locks on it, SQLite's included. */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->path);
	free(s);
}

const char *gr_store_note(const struct gr_store *s)
{
	return s->note;
}

const char *gr_store_refused(const struct gr_store *s)
{
	return s->eb_refused;
}

int gr_store_schema(const struct gr_store *s)
{
	return s->schema;
}

/* ---- load ---- */

static int row_fail(char *err, size_t errlen, const char *path, const char *src, int64_t port,
		    int64_t proto, const char *what)
{
	return kl_fail(err, errlen, "graph db %s: edge (%s, %lld, %lld): %s; fix or delete the row "
		    "(sqlite3), or restore a backup", path, src, (long long)port, (long long)proto,
		    what);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return t != NULL ? t : "NULL";
}

/* One edge_baselines row, or false when it is damaged: a host address,
 * key and count in range, numbers stored as numbers, finite and >= 0. */
static bool baseline_row(sqlite3_stmt *st, struct gr_key *k, struct gr_eb *b)
{
	const char *src = (const char *)sqlite3_column_text(st, 0);
	int64_t port = sqlite3_column_int64(st, 1), proto = sqlite3_column_int64(st, 2);
	int64_t n = sqlite3_column_int64(st, 3);
	struct kl_addr a;
	double v[4];

	for (int i = 1; i < 8; i++) {
		int t = sqlite3_column_type(st, i);
		if (t != SQLITE_INTEGER && t != SQLITE_FLOAT)
			return false;
	}
	if (src == NULL || kl_addr_parse(src, &a, NULL, 0) < 0 || port < 0 || port > 65535 ||
	    proto < 0 || proto > 255 || n < 0 || n > UINT32_MAX)
		return false;
	for (int i = 0; i < 4; i++) {
		v[i] = sqlite3_column_double(st, 4 + i);
		if (!(v[i] >= 0.0 && v[i] < 1e300))
			return false;
	}
	memset(k, 0, sizeof(*k));
	k->family = a.family;
	k->port = (uint16_t)port;
	k->proto = (uint8_t)proto;
	memcpy(k->addr, a.addr, a.family == 4 ? 4 : 16);
	memset(b, 0, sizeof(*b));
	b->n = (uint32_t)n;
	b->ewma[GR_EB_PPS] = (float)v[0];
	b->ewma[GR_EB_BPS] = (float)v[1];
	b->peak[GR_EB_PPS] = (float)v[2];
	b->peak[GR_EB_BPS] = (float)v[3];
	return true;
}

/* Per-edge baselines onto the loaded edges. A row whose edge is gone is
 * left alone (harmless; the next flush of that edge replaces it). A
 * damaged row refuses every baseline but not the graph: baselines only
 * refine the deviation signal, so the edges load without them, the reason
 * is kept for gr_store_refused, and a writer empties the table at its next
 * flush so that the damage is not met again at every start. */
static int load_baselines(struct gr_store *s, struct gr_graph *g, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT src, port, proto, n, ewma_pps, ewma_bps, peak_pps, peak_bps"
				    " FROM edge_baselines", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, "reading edge baselines");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gr_key k;
		struct gr_eb b;
		if (!baseline_row(st, &k, &b)) {
			snprintf(s->eb_refused, sizeof(s->eb_refused),
				 "graph db %s: edge_baselines (%.64s, %.24s, %.24s): bad address, key "
				 "or value", s->path, col_text(st, 0), col_text(st, 1), col_text(st, 2));
			sqlite3_finalize(st);
			for (size_t i = 0; i < g->n; i++)
				memset(&g->e[i].eb, 0, sizeof(g->e[i].eb));
			s->eb_clear = !s->readonly;
			return 0;
		}
		struct gr_edge *e = gr_find(g, &k);
		if (e != NULL)
			e->eb = b;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sqlfail(s, rc, err, errlen, "reading edge baselines");
	return 0;
}

int gr_store_load(struct gr_store *s, struct gr_graph *g, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT src, port, proto, family, state, set_by, set_uid, state_at,"
				    " seen, windows, last_window, first_seen, last_seen, pkts, bytes"
				    " FROM edges", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, "reading edges");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gr_edge e;
		struct kl_addr a;
		char why[160];
		const char *src = (const char *)sqlite3_column_text(st, 0);
		int64_t port = sqlite3_column_int64(st, 1), proto = sqlite3_column_int64(st, 2);
		int64_t fam = sqlite3_column_int64(st, 3);
		const char *state = (const char *)sqlite3_column_text(st, 4);
		const char *by = (const char *)sqlite3_column_text(st, 5);

		memset(&e, 0, sizeof(e));
		if (src == NULL || kl_addr_parse(src, &a, why, sizeof(why)) < 0) {
			rc = row_fail(err, errlen, s->path, src ? src : "NULL", port, proto,
				      src ? why : "src is NULL");
			goto out;
		}
		if (port < 0 || port > 65535 || proto < 0 || proto > 255 || fam != a.family) {
			rc = row_fail(err, errlen, s->path, src, port, proto,
				      "port, proto or family out of range");
			goto out;
		}
		int sv = gr_state_parse(state), bv = gr_by_parse(by);
		if (sv < 0 || bv < 0) {
			rc = row_fail(err, errlen, s->path, src, port, proto,
				      sv < 0 ? "unknown state" : "unknown set_by");
			goto out;
		}
		int64_t seen = sqlite3_column_int64(st, 8), win = sqlite3_column_int64(st, 9);
		int64_t pk = sqlite3_column_int64(st, 13), by_ = sqlite3_column_int64(st, 14);
		if (seen < 0 || seen > UINT32_MAX || win < 0 || win > UINT32_MAX || pk < 0 || by_ < 0) {
			rc = row_fail(err, errlen, s->path, src, port, proto,
				      "seen, windows, pkts or bytes out of range");
			goto out;
		}
		e.k.family = a.family;
		e.k.port = (uint16_t)port;
		e.k.proto = (uint8_t)proto;
		memcpy(e.k.addr, a.addr, a.family == 4 ? 4 : 16);
		e.state = (uint8_t)sv;
		e.by = (uint8_t)bv;
		e.by_uid = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1
				: (int32_t)sqlite3_column_int64(st, 6);
		e.state_at = sqlite3_column_int64(st, 7);
		e.seen = (uint32_t)seen;
		e.windows = (uint32_t)win;
		e.last_window = sqlite3_column_type(st, 10) == SQLITE_NULL ? GR_NEVER
				  : sqlite3_column_int64(st, 10);
		e.first_seen = sqlite3_column_type(st, 11) == SQLITE_NULL ? GR_NEVER
				 : sqlite3_column_int64(st, 11);
		e.last_seen = sqlite3_column_type(st, 12) == SQLITE_NULL ? GR_NEVER
				: sqlite3_column_int64(st, 12);
		e.pkts = (uint64_t)pk;
		e.bytes = (uint64_t)by_;
		if (gr_load_edge(g, &e) < 0) {
			rc = row_fail(err, errlen, s->path, src, port, proto,
				      "duplicate key after normalising, or out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		sqlfail(s, rc, err, errlen, "reading edges");
		rc = -1;
		goto out;
	}
	rc = load_baselines(s, g, err, errlen);
out:
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

/* ---- flush ---- */

static int bind_key(sqlite3_stmt *st, const struct gr_key *k, char *ip, size_t iplen)
{
	struct kl_addr a;

	gr_key_addr(k, &a);
	kl_addr_format(&a, ip, iplen);
	if (sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, k->port) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, k->proto) != SQLITE_OK)
		return -1;
	return 0;
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t == GR_NEVER)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, t);
}

/* An edge's evidence, the same seven columns in every statement, from
 * parameter `at` on. */
static void bind_evidence(sqlite3_stmt *st, int at, const struct gr_edge *e)
{
	sqlite3_bind_int64(st, at, e->seen);
	sqlite3_bind_int64(st, at + 1, e->windows);
	bind_time(st, at + 2, e->last_window);
	bind_time(st, at + 3, e->first_seen);
	bind_time(st, at + 4, e->last_seen);
	sqlite3_bind_int64(st, at + 5, (int64_t)(e->pkts & INT64_MAX));
	sqlite3_bind_int64(st, at + 6, (int64_t)(e->bytes & INT64_MAX));
}

/* Most ticks only add evidence to rows that exist: a narrow UPDATE for
 * those, the whole row for new edges and state changes. */
static int write_evidence(struct gr_store *s, const struct gr_edge *e, bool *done)
{
	char ip[KL_ADDR_STRLEN];
	sqlite3_stmt *st = s->evidence;
	int rc;

	*done = false;
	sqlite3_reset(st);
	if (bind_key(st, &e->k, ip, sizeof(ip)) < 0)
		return SQLITE_ERROR;
	bind_evidence(st, 4, e);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	/* No row (someone deleted it by hand): the caller writes it whole. */
	*done = sqlite3_changes(s->db) == 1;
	return SQLITE_OK;
}

/* The edge's baseline row: written with the edge, deleted with it. */
static int write_baseline(struct gr_store *s, const struct gr_edge *e)
{
	char ip[KL_ADDR_STRLEN];
	sqlite3_stmt *st = e->state == GR_GONE ? s->eb_del : s->eb_upsert;
	int rc;

	if (e->state != GR_GONE && e->eb.n == 0)
		return SQLITE_OK;
	sqlite3_reset(st);
	if (bind_key(st, &e->k, ip, sizeof(ip)) < 0)
		return SQLITE_ERROR;
	if (e->state != GR_GONE) {
		sqlite3_bind_int64(st, 4, e->eb.n);
		sqlite3_bind_double(st, 5, e->eb.ewma[GR_EB_PPS]);
		sqlite3_bind_double(st, 6, e->eb.ewma[GR_EB_BPS]);
		sqlite3_bind_double(st, 7, e->eb.peak[GR_EB_PPS]);
		sqlite3_bind_double(st, 8, e->eb.peak[GR_EB_BPS]);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_edge(struct gr_store *s, const struct gr_edge *e)
{
	char ip[KL_ADDR_STRLEN];
	sqlite3_stmt *st = e->state == GR_GONE ? s->del : s->upsert;
	int rc;

	if (e->state == GR_GONE && !e->stored)
		return SQLITE_OK;
	if (e->state != GR_GONE && e->stored && !e->changed) {
		bool done;
		rc = write_evidence(s, e, &done);
		if (rc != SQLITE_OK || done)
			return rc;
	}
	sqlite3_reset(st);
	if (bind_key(st, &e->k, ip, sizeof(ip)) < 0)
		return SQLITE_ERROR;
	if (e->state != GR_GONE) {
		sqlite3_bind_int(st, 4, e->k.family);
		sqlite3_bind_text(st, 5, gr_state_name(e->state), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, gr_by_name(e->by), -1, SQLITE_STATIC);
		if (e->by_uid < 0)
			sqlite3_bind_null(st, 7);
		else
			sqlite3_bind_int64(st, 7, e->by_uid);
		sqlite3_bind_int64(st, 8, e->state_at);
		bind_evidence(st, 9, e);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_viol(struct gr_store *s, const struct gr_viol *v)
{
	char ip[KL_ADDR_STRLEN];
	struct kl_addr a;
	sqlite3_stmt *st = s->viol_ins;
	int rc;

	gr_key_addr(&v->k, &a);
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, v->t_ms);
	sqlite3_bind_text(st, 2, kl_addr_format(&a, ip, sizeof(ip)), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, v->k.port);
	sqlite3_bind_int(st, 4, v->k.proto);
	sqlite3_bind_text(st, 5, v->mode == GR_MODE_ENFORCE ? "enforce" : "observe", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 6, gr_action_name(v->action), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int gr_store_flush(struct gr_store *s, struct gr_graph *g, const struct gr_viol *v, size_t nv,
		   int64_t purge_before, char *err, size_t errlen)
{
	int rc;

	if (s->readonly)
		return kl_fail(err, errlen, "graph db %s: opened read-only", s->path);
	if (g->ndirty == 0 && nv == 0 && purge_before == GR_NEVER && !g->eb_flush && !s->eb_clear)
		return 0;
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, "begin");
	if (s->eb_clear) {
		rc = sqlite3_exec(s->db, "DELETE FROM edge_baselines", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sqlfail(s, rc, err, errlen, "emptying the refused edge baselines");
			goto bad;
		}
	}
	for (size_t i = 0; i < g->ndirty; i++) {
		if (g->dirty[i] >= g->n)
			continue;
		rc = write_edge(s, &g->e[g->dirty[i]]);
		if (rc == SQLITE_OK && g->e[g->dirty[i]].state == GR_GONE)
			rc = write_baseline(s, &g->e[g->dirty[i]]);
		if (rc != SQLITE_OK) {
			char k[96], what[160];
			snprintf(what, sizeof(what), "writing edge %s",
				 gr_key_format(&g->e[g->dirty[i]].k, k, sizeof(k)));
			sqlfail(s, rc, err, errlen, what);
			goto bad;
		}
	}
	for (size_t i = 0; g->eb_flush && i < g->n; i++) {
		const struct gr_edge *e = &g->e[i];
		if (!e->eb_dirty || e->state == GR_GONE)
			continue;
		rc = write_baseline(s, e);
		if (rc != SQLITE_OK) {
			char k[96], what[160];
			snprintf(what, sizeof(what), "writing the baseline of edge %s",
				 gr_key_format(&e->k, k, sizeof(k)));
			sqlfail(s, rc, err, errlen, what);
			goto bad;
		}
	}
	for (size_t i = 0; i < nv; i++) {
		rc = write_viol(s, &v[i]);
		if (rc != SQLITE_OK) {
			sqlfail(s, rc, err, errlen, "writing a violation");
			goto bad;
		}
	}
	if (purge_before != GR_NEVER) {
		sqlite3_reset(s->viol_purge);
		sqlite3_bind_int64(s->viol_purge, 1, purge_before);
		rc = sqlite3_step(s->viol_purge);
		sqlite3_reset(s->viol_purge);
		if (rc != SQLITE_DONE) {
			sqlfail(s, rc, err, errlen, "purging old violations");
			goto bad;
		}
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlfail(s, rc, err, errlen, "commit");
		goto bad;
	}
	for (size_t i = 0; i < g->ndirty; i++) {
		if (g->dirty[i] < g->n) {
			g->e[g->dirty[i]].stored = 1;
			g->e[g->dirty[i]].changed = 0;
		}
	}
	for (size_t i = 0; g->eb_flush && i < g->n; i++)
		g->e[i].eb_dirty = 0;
	g->eb_flush = false;
	s->eb_clear = false;
	gr_flushed(g);
	return 0;
bad:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- violations, backup, ownership ---- */

int gr_store_violations(struct gr_store *s, int64_t since_ms, size_t limit,
			struct gr_viol_row **out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct gr_viol_row *v = NULL;
	size_t cap = 0, cnt = 0;
	int rc;

	*out = NULL;
	*n = 0;
	/* The newest `limit`, printed oldest first. */
	rc = sqlite3_prepare_v2(s->db,
				"SELECT t, src, port, proto, mode, action FROM (SELECT rowid AS r, * "
				"FROM violations WHERE t >= ?1 ORDER BY t DESC, rowid DESC LIMIT ?2) "
				"ORDER BY t, r", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, err, errlen, "reading violations");
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kl_addr a;
		const char *src = (const char *)sqlite3_column_text(st, 1);
		const char *mode = (const char *)sqlite3_column_text(st, 4);
		const char *act = (const char *)sqlite3_column_text(st, 5);
		int64_t port = sqlite3_column_int64(st, 2), proto = sqlite3_column_int64(st, 3);

		if (src == NULL || kl_addr_parse(src, &a, NULL, 0) < 0 || port < 0 || port > 65535 ||
		    proto < 0 || proto > 255 || mode == NULL || act == NULL)
			continue; /* a row someone edited by hand: not worth failing the listing */
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct gr_viol_row *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				free(v);
				sqlite3_finalize(st);
				return kl_fail(err, errlen, "out of memory");
			}
			v = nv;
			cap = ncap;
		}
		struct gr_viol_row *r = &v[cnt++];
		memset(r, 0, sizeof(*r));
		r->t_ms = sqlite3_column_int64(st, 0);
		r->k.family = a.family;
		r->k.port = (uint16_t)port;
		r->k.proto = (uint8_t)proto;
		memcpy(r->k.addr, a.addr, a.family == 4 ? 4 : 16);
		r->mode = strcmp(mode, "enforce") == 0 ? GR_MODE_ENFORCE : GR_MODE_OBSERVE;
		r->action = strcmp(act, "block") == 0	   ? GR_ACT_BLOCK
			    : strcmp(act, "deviation") == 0 ? GR_ACT_DEVIATION
							    : GR_ACT_SIGNAL;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sqlfail(s, rc, err, errlen, "reading violations");
	}
	*out = v;
	*n = cnt;
	return 0;
}

int gr_store_backup(struct gr_store *s, const char *dest, char *err, size_t errlen)
{
	struct stat sb;

	if (lstat(dest, &sb) == 0)
		return kl_fail(err, errlen, "backup %s: already exists; pick a new name (a backup never "
			    "overwrites)", dest);
	if (errno != ENOENT)
		return kl_fail(err, errlen, "backup %s: %s", dest, strerror(errno));
	return backup_to(s->db, dest, err, errlen);
}

int gr_store_adopt(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char p[PATH_MAX], why[PATH_MAX + 256];

	if (strcmp(path, ":memory:") == 0)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		if (snprintf(p, sizeof(p), "%s%s", path, suffix[i]) >= (int)sizeof(p))
			return kl_fail(err, errlen, "graph db %s: path too long", path);
		/* Checked and changed through the descriptor: a name swapped
		 * after the open changes nothing (common/safefile.h). */
		int fd = kl_safe_open(p, O_RDONLY, 0, KL_SAFE_OWNED, why, sizeof(why));
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0)
			return kl_fail(err, errlen, "graph db: %s; remove it (kl-graphd never follows "
				    "or adopts such a file)", why);
		struct stat st;
		int rc = fstat(fd, &st);
		if (rc == 0 && (st.st_uid != uid || st.st_gid != gid))
			rc = kl_safe_fchown(fd, p, uid, gid, why, sizeof(why));
		else if (rc < 0)
			snprintf(why, sizeof(why), "%s: fstat: %s", p, strerror(errno));
		close(fd);
		if (rc < 0)
			return kl_fail(err, errlen, "graph db: %s", why);
	}
	return 0;
}
