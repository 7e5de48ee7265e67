/* SPDX-License-Identifier: MPL-2.0 */
/* The graph's SQLite store: round trips, one transaction per tick, the
 * schema 1 -> 2 migration (a schema 1 file made by hand here), corrupt,
 * foreign, newer and locked databases (a clear error and nothing lost),
 * the writer lock, violations and backup. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graphd/graph.h"
#include "graphd/store.h"

#define MIN 60000ll
/* A multiple of the 5 min promotion interval, so checks fall where expected. */
#define T0 1700000100000ll

struct fx {
	char dir[64];
	char db[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/kl-graphstore.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/g.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct gr_obs obs(const char *src, uint16_t port, uint8_t proto)
{
	struct gr_obs o;
	memset(&o, 0, sizeof(o));
	assert_int_equal(kl_addr_parse(src, &o.src, NULL, 0), 0);
	o.port = port;
	o.proto = proto;
	o.pkts = 2;
	o.bytes = 100;
	return o;
}

static struct gr_edge *edge(struct gr_graph *g, const char *src, uint16_t port, uint8_t proto)
{
	struct gr_key k;
	struct kl_addr a;
	assert_int_equal(kl_addr_parse(src, &a, NULL, 0), 0);
	assert_true(gr_key_of(&g->p, &a, port, proto, &k));
	return gr_find(g, &k);
}

static struct gr_store *open_w(const char *path, char *err, size_t errlen, int *rc)
{
	struct gr_store *s = NULL;
	struct gr_store_opts o = { .path = path, .busy_ms = 200 };
	*rc = gr_store_open(&s, &o, err, errlen);
	return s;
}

static void graph(struct gr_graph *g)
{
	struct gr_params p;
	gr_params_default(&p);
	assert_int_equal(gr_init(g, &p), 0);
}

/* Learn two edges over 12 ticks, one tick per transaction. */
static void fill(struct gr_store *s, struct gr_graph *g)
{
	char err[512];
	for (int i = 0; i < 12; i++) {
		struct gr_obs o[3] = { obs("198.18.0.1", 8080, 6), obs("fd00:6b6c::1", 53, 17),
				       obs("198.18.0.2", 0, 1) };
		assert_int_equal(gr_tick(g, T0 + i * MIN, o, i < 2 ? 3 : 2, NULL, 0), 0);
		if (gr_store_flush(s, g, g->viol, g->nviol, GR_NEVER, err, sizeof(err)) < 0)
			fail_msg("flush: %s", err);
		assert_int_equal(g->ndirty, 0);
	}
	assert_int_equal(edge(g, "198.18.0.1", 8080, 6)->state, GR_LEARNED);
}

static void assert_same(const struct gr_edge *a, const struct gr_edge *b)
{
	assert_memory_equal(&a->k, &b->k, sizeof(a->k));
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->by, b->by);
	assert_int_equal(a->by_uid, b->by_uid);
	assert_int_equal(a->seen, b->seen);
	assert_int_equal(a->windows, b->windows);
	assert_int_equal(a->last_window, b->last_window);
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->state_at, b->state_at);
	assert_int_equal(a->pkts, b->pkts);
	assert_int_equal(a->bytes, b->bytes);
	assert_memory_equal(&a->eb, &b->eb, sizeof(a->eb)); /* edge baselines survive */
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct gr_graph g, h;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	assert_non_null(s);
	assert_int_equal(gr_store_schema(s), GR_SCHEMA_VERSION);
	assert_non_null(strstr(gr_store_note(s), "created"));
	graph(&g);
	fill(s, &g);
	struct kl_addr a;
	kl_addr_parse("198.18.0.9", &a, NULL, 0);
	char why[128];
	assert_int_equal(gr_set_source(&g, &a, false, 22, 6, GR_DENIED, 1234, 5, why, sizeof(why)), 1);
	gr_eb_flush_all(&g); /* baselines are written per promote interval, and at exit */
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	gr_store_close(s);

	s = open_w(f->db, err, sizeof(err), &rc);
	assert_non_null(s);
	assert_string_equal(gr_store_note(s), "");
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, g.n);
	for (size_t i = 0; i < g.n; i++) {
		struct gr_edge *o = gr_find(&h, &g.e[i].k);
		assert_non_null(o);
		assert_same(&g.e[i], o);
	}
	assert_memory_equal(h.count, g.count, sizeof(g.count));
	/* 11 ticks with elapsed time: the baseline the round trip compared */
	assert_int_equal(edge(&h, "198.18.0.1", 8080, 6)->eb.n, 11);
	struct gr_edge *d = edge(&h, "198.18.0.9", 22, 6);
	assert_int_equal(d->first_seen, GR_NEVER); /* never seen: NULL in the table */
	assert_int_equal(d->by_uid, 1234);
	gr_free(&g);
	gr_free(&h);
	gr_store_close(s);
}

static void exec_raw(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* Schema 2 (no edge_baselines) -> 3: the table is added, the edges keep
 * everything, and baselines are stored from then on. */
static void test_migration_from_schema_2(void **state)
{
	struct fx *f = *state;
	struct gr_graph g, h;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	assert_non_null(s);
	graph(&g);
	fill(s, &g);
	gr_store_close(s);
	exec_raw(f->db, "DROP TABLE edge_baselines; PRAGMA user_version = 2;");
	s = open_w(f->db, err, sizeof(err), &rc);
	if (s == NULL)
		fail_msg("open: %s", err);
	assert_int_equal(gr_store_schema(s), 3);
	assert_non_null(strstr(gr_store_note(s), "from schema 2 to 3"));
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	struct gr_edge *e = edge(&h, "198.18.0.1", 8080, 6);
	assert_int_equal(e->seen, 12);
	assert_int_equal(e->eb.n, 0); /* schema 2 had none */
	struct gr_obs o[1] = { obs("198.18.0.1", 8080, 6) };
	assert_int_equal(gr_tick(&h, g.last_t + MIN, o, 1, NULL, 0), 0);
	assert_int_equal(gr_tick(&h, g.last_t + 2 * MIN, o, 1, NULL, 0), 0);
	gr_eb_flush_all(&h);
	assert_int_equal(gr_store_flush(s, &h, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	gr_store_close(s);
	gr_free(&h);
	s = open_w(f->db, err, sizeof(err), &rc);
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	assert_int_equal(edge(&h, "198.18.0.1", 8080, 6)->eb.n, 1);
	gr_free(&g);
	gr_free(&h);
	gr_store_close(s);
}

/* Deleted (long expired) edges leave the table. */
static void test_deletes(void **state)
{
	struct fx *f = *state;
	struct gr_graph g, h;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	g.p.expire_ttl_ms = 60 * MIN;
	fill(s, &g);
	int64_t t = g.last_t;
	assert_int_equal(gr_expire(&g, t + 60 * MIN), 3);
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	gr_expire(&g, t + 120 * MIN);
	assert_int_equal(g.ngone, 3);
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	assert_int_equal(g.n, 0);
	gr_store_close(s);
	s = open_w(f->db, err, sizeof(err), &rc);
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 0);
	gr_free(&g);
	gr_free(&h);
	gr_store_close(s);
}


/* A schema 1 database, as the earlier kl-graphd wrote it. */
static const char v1_sql[] =
	"PRAGMA user_version = 1;"
	"CREATE TABLE edges(src TEXT NOT NULL, port INTEGER NOT NULL, proto INTEGER NOT NULL,"
	" state TEXT NOT NULL, seen INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL, PRIMARY KEY (src, port, proto));"
	"INSERT INTO edges VALUES ('198.18.0.1', 8080, 6, 'frozen', 40, 1700000000, 1700003600);"
	"INSERT INTO edges VALUES ('198.18.0.2', 22, 6, 'approved', 0, 1700000100, 1700000100);"
	"INSERT INTO edges VALUES ('fd00:6b6c::3', 53, 17, 'candidate', 2, 1700000200, 1700000260);"
	"INSERT INTO edges VALUES ('198.18.0.4', 0, 1, 'denied', 9, 1700000300, 1700000400);";

static void test_migration_from_schema_1(void **state)
{
	struct fx *f = *state;
	struct gr_graph g;
	char err[512], bak[160];
	int rc;
	exec_raw(f->db, v1_sql);
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	if (s == NULL)
		fail_msg("open: %s", err);
	assert_int_equal(gr_store_schema(s), GR_SCHEMA_VERSION); /* 1 -> current at once */
	assert_non_null(strstr(gr_store_note(s), "migrated"));
	assert_non_null(strstr(gr_store_note(s), "schema1.bak"));
	graph(&g);
	assert_int_equal(gr_store_load(s, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 4);
	struct gr_edge *e = edge(&g, "198.18.0.1", 8080, 6);
	assert_int_equal(e->state, GR_FROZEN);
	assert_int_equal(e->seen, 40);
	assert_int_equal(e->first_seen, 1700000000000ll); /* seconds became ms */
	assert_int_equal(e->last_seen, 1700003600000ll);
	assert_int_equal(e->by, GR_BY_MIGRATION);
	e = edge(&g, "198.18.0.2", 22, 6);
	assert_int_equal(e->state, GR_APPROVED);
	assert_int_equal(e->by, GR_BY_OPERATOR);
	e = edge(&g, "fd00:6b6c::3", 53, 17);
	assert_int_equal(e->k.family, 6);
	assert_int_equal(e->state, GR_CANDIDATE);
	assert_int_equal(e->windows, 1); /* unknown in schema 1: the cautious guess */
	assert_int_equal(edge(&g, "198.18.0.4", 0, 1)->state, GR_DENIED);
	/* The new table works: a tick and a violation go in. */
	struct gr_obs o = obs("198.18.0.1", 8080, 6);
	assert_int_equal(gr_tick(&g, 1700004000000ll, &o, 1, NULL, 0), 0);
	struct gr_viol v = { .k = edge(&g, "198.18.0.4", 0, 1)->k, .t_ms = 1700004000000ll,
			     .mode = GR_MODE_OBSERVE, .action = GR_ACT_SIGNAL };
	assert_int_equal(gr_store_flush(s, &g, &v, 1, GR_NEVER, err, sizeof(err)), 0);
	struct gr_viol_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(gr_store_violations(s, INT64_MIN, 0, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	free(rows);
	gr_free(&g);
	gr_store_close(s);

	/* The copy taken before the migration still says schema 1, unchanged. */
	snprintf(bak, sizeof(bak), "%s.schema1.bak", f->db);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(bak, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM edges", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A migration that fails half way leaves schema 1 as it was. */
static void test_failed_migration_rolls_back(void **state)
{
	struct fx *f = *state;
	char err[512];
	int rc;
	exec_raw(f->db, v1_sql);
	/* A row schema 2 cannot hold: the state CHECK fails the INSERT. */
	exec_raw(f->db, "INSERT INTO edges VALUES ('198.18.0.5', 1, 6, 'bogus', 1, 1, 1)");
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	assert_null(s);
	assert_non_null(strstr(err, "rolled back"));
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version),"
					    " (SELECT count(*) FROM edges)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	assert_int_equal(sqlite3_column_int(st, 1), 5);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = malloc(1 << 20);
	*n = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	return buf;
}

static void test_not_a_database(void **state)
{
	struct fx *f = *state;
	char err[512];
	int rc;
	size_t n0, n1;
	FILE *fp = fopen(f->db, "wb");
	for (int i = 0; i < 8192; i++)
		fputc((i * 131 + 7) & 0xff, fp);
	fclose(fp);
	char *before = slurp(f->db, &n0);
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	assert_null(s);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, f->db));
	assert_non_null(strstr(err, "not an SQLite database"));
	assert_non_null(strstr(err, "left untouched"));
	char *after = slurp(f->db, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
}

/* Damage inside a real database: refused, and the bytes stay as they were. */
static void test_damaged_database(void **state)
{
	struct fx *f = *state;
	struct gr_graph g;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	for (int i = 0; i < 2000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 250, i % 250 + 1);
		struct gr_obs o = obs(ip, (uint16_t)(1000 + i), 6);
		assert_int_equal(gr_tick(&g, 1700000000000ll + i, &o, 1, NULL, 0), 0);
	}
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	gr_free(&g);
	gr_store_close(s); /* checkpoints the WAL into the file */

	int fd = open(f->db, O_WRONLY);
	struct stat sb;
	fstat(fd, &sb);
	assert_true(sb.st_size > 8 * 4096);
	char junk[4096];
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 3 * 4096), (ssize_t)sizeof(junk));
	close(fd);
	size_t n0, n1;
	char *before = slurp(f->db, &n0);

	s = open_w(f->db, err, sizeof(err), &rc);
	if (s != NULL) { /* quick_check found nothing: the load must */
		graph(&g);
		rc = gr_store_load(s, &g, err, sizeof(err));
		gr_free(&g);
		gr_store_close(s);
		assert_int_equal(rc, -1);
	}
	assert_true(strstr(err, "damaged") != NULL || strstr(err, "malformed") != NULL);
	assert_non_null(strstr(err, f->db));
	char *after = slurp(f->db, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
}

static void test_foreign_and_newer(void **state)
{
	struct fx *f = *state;
	char err[512];
	int rc;
	exec_raw(f->db, "CREATE TABLE photos(id INTEGER PRIMARY KEY, path TEXT)");
	assert_null(open_w(f->db, err, sizeof(err), &rc));
	assert_non_null(strstr(err, "no kl-graphd schema version"));
	unlink(f->db);
	exec_raw(f->db, "PRAGMA user_version = 9; CREATE TABLE edges(x)");
	assert_null(open_w(f->db, err, sizeof(err), &rc));
	assert_non_null(strstr(err, "schema version 9 is newer"));
	/* Offline commands do not create a graph at a mistyped path. */
	unlink(f->db);
	struct gr_store *w = NULL;
	struct gr_store_opts nc = { .path = f->db, .no_create = true };
	assert_int_equal(gr_store_open(&w, &nc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such file"));
	assert_int_equal(access(f->db, F_OK), -1);
	/* A reader does not create or migrate. */
	struct gr_store *s = NULL;
	struct gr_store_opts ro = { .path = "/nonexistent/kl/g.db", .readonly = true };
	assert_int_equal(gr_store_open(&s, &ro, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

/* Another process holding SQLite's lock: the tick is not lost, only late. */
static void test_locked_database(void **state)
{
	struct fx *f = *state;
	struct gr_graph g;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	struct gr_obs o = obs("198.18.0.1", 443, 6);
	assert_int_equal(gr_tick(&g, 1000, &o, 1, NULL, 0), 0);

	sqlite3 *other;
	assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "locked"));
	assert_non_null(strstr(err, "nothing was changed"));
	assert_int_equal(g.ndirty, 1); /* kept for the next try */
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	assert_int_equal(g.ndirty, 0);
	gr_free(&g);
	gr_store_close(s);

	/* And it is there. */
	s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	assert_int_equal(gr_store_load(s, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 1);
	gr_free(&g);
	gr_store_close(s);

	/* A rollback-journal database locked exclusively cannot even be opened. */
	unlink(f->db);
	exec_raw(f->db, v1_sql);
	assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_null(open_w(f->db, err, sizeof(err), &rc));
	assert_non_null(strstr(err, "locked"));
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
}

/* Only one writer; readers may look while it runs. */
static void test_writer_lock(void **state)
{
	struct fx *f = *state;
	struct gr_graph g;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	assert_non_null(s);
	graph(&g);
	fill(s, &g);
	assert_null(open_w(f->db, err, sizeof(err), &rc));
	assert_int_equal(rc, GR_STORE_IN_USE);
	assert_non_null(strstr(err, "in use by a running kl-graphd"));
	struct gr_store *r = NULL;
	struct gr_store_opts ro = { .path = f->db, .readonly = true };
	assert_int_equal(gr_store_open(&r, &ro, err, sizeof(err)), 0);
	struct gr_graph h;
	graph(&h);
	assert_int_equal(gr_store_load(r, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(gr_store_flush(r, &h, NULL, 0, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "read-only"));
	gr_free(&h);
	gr_store_close(r);
	gr_store_close(s);
	/* Released with the store. */
	s = open_w(f->db, err, sizeof(err), &rc);
	assert_non_null(s);
	gr_store_close(s);
	gr_free(&g);
}

static void test_violations_and_backup(void **state)
{
	struct fx *f = *state;
	struct gr_graph g, h;
	char err[512], bak[160];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	fill(s, &g);
	struct gr_viol v[4];
	for (int i = 0; i < 4; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		v[i].k = edge(&g, "198.18.0.1", 8080, 6)->k;
		v[i].k.port = (uint16_t)(9000 + i);
		v[i].t_ms = 1000 * (i + 1);
		v[i].mode = i % 2 ? GR_MODE_ENFORCE : GR_MODE_OBSERVE;
		v[i].action = i % 2 ? GR_ACT_BLOCK : GR_ACT_SIGNAL;
	}
	gr_eb_flush_all(&g); /* the backup below is compared with memory, baselines too */
	assert_int_equal(gr_store_flush(s, &g, v, 4, GR_NEVER, err, sizeof(err)), 0);
	struct gr_viol_row *rows;
	size_t n;
	assert_int_equal(gr_store_violations(s, 2000, 0, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].t_ms, 2000);
	assert_int_equal(rows[0].k.port, 9001);
	assert_int_equal(rows[0].action, GR_ACT_BLOCK);
	assert_int_equal(rows[0].mode, GR_MODE_ENFORCE);
	free(rows);
	/* The newest two, oldest first. */
	assert_int_equal(gr_store_violations(s, INT64_MIN, 2, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].t_ms, 3000);
	assert_int_equal(rows[1].t_ms, 4000);
	free(rows);
	/* Purging keeps the young ones. */
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, 3000, err, sizeof(err)), 0);
	assert_int_equal(gr_store_violations(s, INT64_MIN, 0, &rows, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(rows);

	/* A backup while the writer holds the database. */
	snprintf(bak, sizeof(bak), "%s/backup.db", f->dir);
	struct gr_store *r = NULL;
	struct gr_store_opts ro = { .path = f->db, .readonly = true };
	assert_int_equal(gr_store_open(&r, &ro, err, sizeof(err)), 0);
	assert_int_equal(gr_store_backup(r, bak, err, sizeof(err)), 0);
	assert_int_equal(gr_store_backup(r, bak, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already exists"));
	gr_store_close(r);
	gr_store_close(s);
	s = open_w(bak, err, sizeof(err), &rc);
	assert_non_null(s);
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, g.n);
	for (size_t i = 0; i < g.n; i++)
		assert_same(&g.e[i], gr_find(&h, &g.e[i].k));
	gr_store_close(s);
	gr_free(&g);
	gr_free(&h);
}

/* Evidence-only ticks update rows in place; a row removed behind the
 * daemon's back is written whole again, not lost. */
static void test_evidence_updates(void **state)
{
	struct fx *f = *state;
	struct gr_graph g, h;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	fill(s, &g);
	for (size_t i = 0; i < g.n; i++) {
		assert_int_equal(g.e[i].stored, 1);
		assert_int_equal(g.e[i].changed, 0);
	}
	exec_raw(f->db, "DELETE FROM edges WHERE port = 53");
	struct gr_obs o[2] = { obs("198.18.0.1", 8080, 6), obs("fd00:6b6c::1", 53, 17) };
	assert_int_equal(gr_tick(&g, T0 + 20 * MIN, o, 2, NULL, 0), 0);
	assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
	gr_store_close(s);
	s = open_w(f->db, err, sizeof(err), &rc);
	graph(&h);
	assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 3);
	for (size_t i = 0; i < g.n; i++)
		assert_same(&g.e[i], gr_find(&h, &g.e[i].k));
	assert_int_equal(edge(&h, "198.18.0.1", 8080, 6)->last_seen, T0 + 20 * MIN);
	gr_free(&g);
	gr_free(&h);
	gr_store_close(s);
}

/* A row edited by hand into nonsense is named, not silently skipped. */
static void test_bad_row(void **state)
{
	struct fx *f = *state;
	struct gr_graph g;
	char err[512];
	int rc;
	struct gr_store *s = open_w(f->db, err, sizeof(err), &rc);
	gr_store_close(s);
	exec_raw(f->db, "INSERT INTO edges(src, port, proto, family, state, set_by, state_at, seen,"
		 " windows) VALUES ('198.18.0.300', 1, 6, 4, 'learned', 'learner', 0, 1, 1)");
	s = open_w(f->db, err, sizeof(err), &rc);
	graph(&g);
	assert_int_equal(gr_store_load(s, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "198.18.0.300"));
	gr_free(&g);
	gr_store_close(s);
}

static int count_rows(const char *path, const char *table)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A damaged edge_baselines row refuses the baselines, not the graph: every
 * edge loads without a baseline, the reason names the file and the row, and
 * the next write replaces the table with what is learned from then on. */
static void test_bad_baseline_row(void **state)
{
	struct fx *f = *state;
	static const char *const damage[] = {
		"UPDATE edge_baselines SET peak_pps = -5 WHERE src = '198.18.0.1'",
		"UPDATE edge_baselines SET ewma_bps = 'lots' WHERE src = '198.18.0.1'",
		"UPDATE edge_baselines SET src = '198.18.0.300' WHERE src = '198.18.0.1'",
	};
	for (size_t k = 0; k < sizeof(damage) / sizeof(damage[0]); k++) {
		struct gr_graph g, h;
		char err[512], db[160];
		int rc;
		snprintf(db, sizeof(db), "%s/bad%zu.db", f->dir, k);
		struct gr_store *s = open_w(db, err, sizeof(err), &rc);
		assert_non_null(s);
		graph(&g);
		fill(s, &g);
		gr_eb_flush_all(&g);
		assert_int_equal(gr_store_flush(s, &g, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
		gr_store_close(s);
		assert_int_equal(count_rows(db, "edge_baselines"), 3);
		exec_raw(db, damage[k]);

		s = open_w(db, err, sizeof(err), &rc);
		if (s == NULL)
			fail_msg("%s: open: %s", damage[k], err);
		graph(&h);
		if (gr_store_load(s, &h, err, sizeof(err)) < 0)
			fail_msg("%s: the graph was refused with its baselines: %s", damage[k], err);
		const char *why = gr_store_refused(s);
		if (strstr(why, db) == NULL || strstr(why, "edge_baselines") == NULL)
			fail_msg("%s: refusal does not name the file and table: '%s'", damage[k], why);
		assert_int_equal(h.n, g.n);
		for (size_t i = 0; i < h.n; i++)
			assert_int_equal(h.e[i].eb.n, 0); /* none kept, not even the good rows */
		struct gr_edge *e = edge(&h, "198.18.0.1", 8080, 6);
		assert_non_null(e);
		assert_int_equal(e->seen, 12); /* the edges themselves are intact */
		assert_int_equal(e->state, edge(&g, "198.18.0.1", 8080, 6)->state);

		/* Learning again: the next write replaces the damaged table. */
		struct gr_obs o[1] = { obs("198.18.0.1", 8080, 6) };
		assert_int_equal(gr_tick(&h, g.last_t + MIN, o, 1, NULL, 0), 0);
		assert_int_equal(gr_tick(&h, g.last_t + 2 * MIN, o, 1, NULL, 0), 0);
		gr_eb_flush_all(&h);
		assert_int_equal(gr_store_flush(s, &h, NULL, 0, GR_NEVER, err, sizeof(err)), 0);
		gr_store_close(s);
		gr_free(&h);
		assert_int_equal(count_rows(db, "edge_baselines"), 1);
		s = open_w(db, err, sizeof(err), &rc);
		assert_non_null(s);
		graph(&h);
		assert_int_equal(gr_store_load(s, &h, err, sizeof(err)), 0);
		assert_string_equal(gr_store_refused(s), "");
		assert_int_equal(edge(&h, "198.18.0.1", 8080, 6)->eb.n, 1);
		gr_free(&g);
		gr_free(&h);
		gr_store_close(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_schema_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_schema_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_and_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_violations_and_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evidence_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_baseline_row, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
