/* SPDX-License-Identifier: MPL-2.0 */
/* klctl audit verify / show (ctl/audit.h). */
#include "ctl/audit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "common/audit.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/safefile.h"
#include "ctl/cmds.h"

#define MAX_KEYS 32

static const char *const default_dirs[] = {
	"/var/log/kernloom/enforcer", "/var/log/kernloom/sensor", "/var/log/kernloom/decider",
	"/var/log/kernloom/graphd",
};

static void usage(FILE *out)
{
	ctl_print_offline_help("audit", out);
}

/* The directories named, or the default ones that exist. */
static int dirs_of(int argc, char **argv, const char ***dirs)
{
	if (optind < argc) {
		*dirs = (const char **)(argv + optind);
		return argc - optind;
	}
	static const char *found[4];
	int n = 0;
	struct stat st;
	for (size_t i = 0; i < sizeof(default_dirs) / sizeof(default_dirs[0]); i++)
		if (stat(default_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			found[n++] = default_dirs[i];
	*dirs = found;
	return n;
}

/* -h: the usage on stdout, 0; a bad option: on stderr, 2. */
static int usage_rc(int opt)
{
	usage(opt == 'h' ? stdout : stderr);
	return opt == 'h' ? 0 : 2;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option lo[] = { { "key", required_argument, NULL, 'k' },
					    { "json", no_argument, NULL, 'j' },
					    { "help", no_argument, NULL, 'h' },
					    { NULL, 0, NULL, 0 } };
	uint8_t keys[MAX_KEYS][KL_AUDIT_PK_LEN];
	size_t nkeys = 0;
	char err[1024];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (nkeys == MAX_KEYS) {
				fprintf(stderr, "klctl: audit verify: at most %d --key\n", MAX_KEYS);
				return 2;
			}
			if (kl_audit_read_pub(optarg, keys[nkeys], err, sizeof(err)) < 0) {
				fprintf(stderr, "klctl: audit verify: %s\n", err);
				return 2;
			}
			nkeys++;
			break;
		case 'j': /* the global --json: verify prints one line per directory */
			break;
		default:
			return usage_rc(c);
		}
	}
	const char **dirs;
	int nd = dirs_of(argc, argv, &dirs);
	if (nd == 0) {
		fprintf(stderr, "klctl: audit verify: no directory given and none of "
				"/var/log/kernloom/<role>/ exists\n");
		return 1;
	}
	int bad = 0;
	for (int i = 0; i < nd; i++) {
		uint8_t local[1][KL_AUDIT_PK_LEN];
		const uint8_t(*use)[KL_AUDIT_PK_LEN] = (const uint8_t(*)[KL_AUDIT_PK_LEN])keys;
		size_t nuse = nkeys;
		if (nkeys == 0) {
			char p[PATH_MAX + 32];
			snprintf(p, sizeof(p), "%s/%s", dirs[i], KL_AUDIT_PUB_NAME);
			if (kl_audit_read_pub(p, local[0], err, sizeof(err)) < 0) {
				fprintf(stderr, "klctl: audit verify: %s: no --key and %s\n", dirs[i],
					err);
				bad++;
				continue;
			}
			fprintf(stderr, "klctl: audit verify: %s: using the key found next to the logs "
					"(%s); pass --key with the copy you keep to rule out a replaced key\n",
				dirs[i], p);
			use = (const uint8_t(*)[KL_AUDIT_PK_LEN])local;
			nuse = 1;
		}
		if (kl_audit_verify_dir(dirs[i], use, nuse, stdout, err, sizeof(err)) < 0) {
			printf("%s: FAILED: %s\n", dirs[i], err);
			bad++;
		}
	}
	return bad ? 1 : 0;
}

/* ---- show ---- */

bool ctl_audit_subject_matches(const char *subject, const struct kl_addr *q)
{
	char buf[320];
	snprintf(buf, sizeof(buf), "%s", subject);
	/* edges are "A->B"; anything may carry " ..." after the address */
	for (char *tok = buf, *next; tok && *tok; tok = next) {
		next = strstr(tok, "->");
		if (next) {
			*next = '\0';
			next += 2;
		}
		char *sp = strchr(tok, ' ');
		if (sp)
			*sp = '\0';
		struct kl_addr a;
		if (kl_cidr_parse(tok, &a, NULL, 0) == 0 && a.family == q->family &&
		    kl_cidr_overlaps(&a, q))
			return true;
	}
	return false;
}

struct rec {
	uint64_t wall;
	uint64_t seq;
	char *proc;
	char *line;
	json_t *j;
};

static int rec_cmp(const void *pa, const void *pb)
{
	const struct rec *a = pa, *b = pb;
	if (a->wall != b->wall)
		return a->wall < b->wall ? -1 : 1;
	int c = strcmp(a->proc, b->proc);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int load_dir(const char *dir, const struct kl_addr *q, uint64_t since, struct recs *rs)
{
	char **names;
	size_t n;
	unsigned first;
	char err[512];
	if (kl_audit_list(dir, &names, &n, &first, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: audit show: %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *f = kl_safe_fopen_read(path, 0, err, sizeof(err));
		free(names[i]);
		if (!f) {
			fprintf(stderr, "klctl: audit show: %s\n", err);
			continue;
		}
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		while ((len = getline(&line, &cap, f)) > 0) {
			if (line[len - 1] == '\n')
				line[--len] = '\0';
			json_t *j = json_loadb(line, (size_t)len, 0, NULL);
			const char *sub = json_string_value(json_object_get(j, "subject"));
			const char *proc = json_string_value(json_object_get(j, "proc"));
			json_t *w = json_object_get(j, "wall_ns"), *s = json_object_get(j, "seq");
			if (!sub || !proc || !json_is_integer(w) || !json_is_integer(s) ||
			    (uint64_t)json_integer_value(w) < since || (q && !ctl_audit_subject_matches(sub, q))) {
				json_decref(j);
				continue;
			}
			if (rs->n == rs->cap) {
				rs->cap = rs->cap ? 2 * rs->cap : 256;
				rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
				if (!rs->v) {
					fprintf(stderr, "klctl: out of memory\n");
					exit(1);
				}
			}
			rs->v[rs->n++] = (struct rec){ .wall = (uint64_t)json_integer_value(w),
						       .seq = (uint64_t)json_integer_value(s),
						       .proc = (char *)proc, .line = strdup(line),
						       .j = j };
		}
		free(line);
		fclose(f);
	}
	free(names);
	return 0;
}

static void print_text(const struct rec *r)
{
	const char *time = json_string_value(json_object_get(r->j, "time"));
	const char *ev = json_string_value(json_object_get(r->j, "event"));
	const char *sub = json_string_value(json_object_get(r->j, "subject"));
	const char *res = json_string_value(json_object_get(r->j, "result"));
	char *d = json_dumps(json_object_get(r->j, "details"), JSON_COMPACT | JSON_PRESERVE_ORDER |
							       JSON_REAL_PRECISION(12));
	printf("%.23sZ %-8s #%-6" PRIu64 " %-16s %-22s %-9s %s\n", time ? time : "?", r->proc,
	       r->seq, ev ? ev : "?", sub && sub[0] ? sub : "-", res ? res : "?", d ? d : "{}");
	free(d);
}

static int cmd_show(int argc, char **argv, bool json)
{
	static const struct option lo[] = { { "source", required_argument, NULL, 's' },
					    { "since", required_argument, NULL, 'S' },
					    { "json", no_argument, NULL, 'j' },
					    { "help", no_argument, NULL, 'h' },
					    { NULL, 0, NULL, 0 } };
	struct kl_addr q, *qp = NULL;
	uint64_t since = 0;
	char err[256];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (kl_cidr_parse(optarg, &q, err, sizeof(err)) < 0) {
				fprintf(stderr, "klctl: audit show: --source %s: %s\n", optarg, err);
				return 2;
			}
			qp = &q;
			break;
		case 'S': {
			uint64_t ns;
			if (kl_duration_parse(optarg, &ns, err, sizeof(err)) < 0) {
				fprintf(stderr, "klctl: audit show: --since %s: %s\n", optarg, err);
				return 2;
			}
			uint64_t now = kl_clock_ns(CLOCK_REALTIME);
			since = ns < now ? now - ns : 0;
			break;
		}
		case 'j':
			json = true;
			break;
		default:
			return usage_rc(c);
		}
	}
	const char **dirs;
	int nd = dirs_of(argc, argv, &dirs);
	struct recs rs = { 0 };
	int ok = 0;
	for (int i = 0; i < nd; i++)
		ok += load_dir(dirs[i], qp, since, &rs) == 0;
	if (ok == 0) {
		fprintf(stderr, "klctl: audit show: no audit directory could be read\n");
		return 1;
	}
	if (rs.n > 1)
		qsort(rs.v, rs.n, sizeof(*rs.v), rec_cmp);
	for (size_t i = 0; i < rs.n; i++) {
		if (json)
			printf("%s\n", rs.v[i].line);
		else
			print_text(&rs.v[i]);
		free(rs.v[i].line);
		json_decref(rs.v[i].j);
	}
	free(rs.v);
	return 0;
}

int ctl_audit_main(int argc, char **argv)
{
	bool json = false;
	/* a global --json passed on at the end (like trace): not a DIR */
	if (argc > 2 && strcmp(argv[argc - 1], "--json") == 0) {
		json = true;
		argv[--argc] = NULL;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc - 1, argv + 1, json);
	fprintf(stderr, "klctl: audit: no subcommand \"%s\" (verify, show)\n", argv[1]);
	return 2;
}
