/* SPDX-License-Identifier: MPL-2.0 */
/* Replay and the offline commands: `kl-graphd --graph-store FILE <command>`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "graphd/commands.h"
#include "graphd/replay.h"
#include "graphd/run.h"
#include "graphd/store.h"
#include "ipc/msg.h"

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_graph(const struct gr_opts *o, bool readonly, bool create, struct gr_store **st,
		      struct gr_graph *g, char *err, size_t errlen)
{
	struct gr_store_opts so = { .path = o->db, .readonly = readonly, .busy_ms = o->busy_ms,
				    .no_create = !create };
	int rc = gr_store_open(st, &so, err, errlen);

	if (rc < 0)
		return rc;
	if (gr_store_note(*st)[0] != '\0')
		kl_info("%s", gr_store_note(*st));
	if (gr_init(g, &o->p) < 0) {
		snprintf(err, errlen, "out of memory");
		gr_store_close(*st);
		*st = NULL;
		return -1;
	}
	if (gr_store_load(*st, g, err, errlen) < 0) {
		gr_free(g);
		gr_store_close(*st);
		*st = NULL;
		return -1;
	}
	if (gr_store_refused(*st)[0] != '\0')
		kl_error("edge baselines refused, starting without them: %s", gr_store_refused(*st));
	return 0;
}

int gr_run_replay(const struct gr_opts *o)
{
	struct gr_store *st = NULL;
	struct gr_reader *r = NULL;
	struct gr_graph g;
	struct gr_replay_stats rs;
	char err[1024];
	int rc = GR_EXIT_FAIL;

	if (open_graph(o, false, true, &st, &g, err, sizeof(err)) < 0) {
		kl_error("%s", err);
		return GR_EXIT_FAIL;
	}
	if (gr_reader_open(&r, o->replay, err, sizeof(err)) < 0) {
		kl_error("--replay %s", err);
		goto out;
	}
	if (gr_replay(&g, st, r, stdout, &rs, err, sizeof(err)) < 0) {
		kl_error("replay: %s", err);
		goto out;
	}
	fflush(stdout);
	fprintf(stderr, "replay: %llu ticks, %llu flow records, %llu violations (mode %s); graph:",
		(unsigned long long)rs.ticks, (unsigned long long)rs.obs,
		(unsigned long long)rs.violations, gr_mode_name(o->p.mode));
	for (unsigned s = 0; s < GR_STATE_MAX; s++)
		fprintf(stderr, " %s %zu", gr_state_name(s), g.count[s]);
	fprintf(stderr, "\n");
	rc = 0;
out:
	gr_reader_close(r);
	gr_free(&g);
	gr_store_close(st);
	return rc;
}

/* Answers go to stdout (JSON pretty-printed); failures to stderr. */
static int print_answer(const struct gr_answer *a, bool json)
{
	FILE *out = a->status == KL_OK ? stdout : stderr;

	if (json && a->status == KL_OK && a->json != NULL) {
		json_error_t je;
		json_t *doc = json_loads(a->json, 0, &je);
		if (doc != NULL) {
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(doc);
		} else {
			fprintf(stdout, "%s\n", a->json);
		}
	} else if (a->text != NULL) {
		fputs(a->status == KL_OK ? "" : "kl-graphd: ", out);
		fputs(a->text, out);
	}
	switch (a->status) {
	case KL_OK: return 0;
	case KL_ERR_NOTFOUND: return GR_EXIT_NOTFOUND;
	case KL_ERR_INVALID: return GR_EXIT_USAGE;
	default: return GR_EXIT_FAIL;
	}
}

static int cmd_backup(const struct gr_opts *o)
{
	struct gr_store *st = NULL;
	struct gr_store_opts so = { .path = o->db, .readonly = true, .busy_ms = o->busy_ms };
	char err[1024];

	if (gr_store_open(&st, &so, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-graphd: %s\n", err);
		return GR_EXIT_FAIL;
	}
	if (gr_store_backup(st, o->backup_to, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-graphd: %s\n", err);
		gr_store_close(st);
		return GR_EXIT_FAIL;
	}
	gr_store_close(st);
	printf("backed up %s to %s\n", o->db, o->backup_to);
	return 0;
}

int gr_run_command(const struct gr_opts *o)
{
	struct gr_store *st = NULL;
	struct gr_graph g;
	struct gr_answer a = { 0 };
	char err[1024];
	bool writes = o->cmd == GR_CMD_FREEZE || o->cmd == GR_CMD_APPROVE || o->cmd == GR_CMD_DENY;
	int64_t now = wall_ms();
	int rc;

	if (o->cmd == GR_CMD_BACKUP)
		return cmd_backup(o);
	/* Readers take the writer lock when they can, so that an old schema is
	 * migrated; next to a running daemon they read a WAL snapshot. */
	rc = open_graph(o, false, false, &st, &g, err, sizeof(err));
	if (rc == GR_STORE_IN_USE && !writes)
		rc = open_graph(o, true, false, &st, &g, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "kl-graphd: %s\n", err);
		return GR_EXIT_FAIL;
	}
	switch (o->cmd) {
	case GR_CMD_EXPORT:
		gr_cmd_export(&g, o->state, &a);
		break;
	case GR_CMD_FREEZE:
		gr_cmd_freeze(&g, now, o->dry_run, (int32_t)getuid(), &a);
		break;
	case GR_CMD_APPROVE:
	case GR_CMD_DENY:
		gr_cmd_set(&g, &o->ip, !o->one_edge, o->port, o->proto,
			   o->cmd == GR_CMD_APPROVE ? GR_APPROVED : GR_DENIED, (int32_t)getuid(), now,
			   &a);
		break;
	case GR_CMD_VIOLATIONS: {
		struct gr_viol_row *v = NULL;
		size_t n = 0;
		int64_t since = o->since_ms < 0 ? INT64_MIN : now - o->since_ms;
		if (gr_store_violations(st, since, o->limit, &v, &n, err, sizeof(err)) < 0) {
			fprintf(stderr, "kl-graphd: %s\n", err);
			rc = GR_EXIT_FAIL;
			goto out;
		}
		gr_cmd_violations(v, n, &a);
		free(v);
		break;
	}
	default:
		fprintf(stderr, "kl-graphd: internal error: command %d\n", (int)o->cmd);
		rc = GR_EXIT_FAIL;
		goto out;
	}
	if (writes && a.status == KL_OK &&
	    gr_store_flush(st, &g, NULL, 0, GR_NEVER, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-graphd: %s (nothing was changed)\n", err);
		rc = GR_EXIT_FAIL;
		goto out;
	}
	rc = print_answer(&a, o->json);
out:
	gr_answer_free(&a);
	gr_free(&g);
	gr_store_close(st);
	return rc;
}
