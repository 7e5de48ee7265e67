/* SPDX-License-Identifier: MPL-2.0 */
/*
 * klctl: the operator CLI. Parses a command strictly, sends it as one
 * CONTROL message to the daemon that owns it, prints the RESULT.
 * Exit: 0 done, 1 refused/failed/unreachable, 2 usage.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/status.h"
#include "ctl/audit.h"
#include "ctl/cmds.h"
#include "ctl/daemons.h"
#include "ctl/trace.h"
#include "ipc/chan.h"
#include "sandbox/rundir.h"

struct answer {
	int status;
	char *text;
	json_t *doc;
	char *raw; /* the JSON text as the daemon sent it */
};

static void answer_free(struct answer *a)
{
	free(a->text);
	free(a->raw);
	json_decref(a->doc);
	memset(a, 0, sizeof(*a));
}

/* One request/answer. Returns 0 with *a filled, or -1 after printing why
 * the daemon could not be asked. */
static int call(struct kl_client *c, const struct kl_ctl_req *r, struct answer *a)
{
	uint8_t buf[KL_CTL_REQ_LEN];
	char err[320];
	struct kl_msg reply;
	struct kl_result res;
	void *rbuf = NULL;

	memset(a, 0, sizeof(*a));
	kl_ctl_req_encode(r, buf);
	if (kl_client_call(c, KL_MSG_CONTROL, buf, sizeof(buf), &reply, &rbuf, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		return -1;
	}
	if (reply.hdr.type != KL_MSG_RESULT ||
	    kl_result_decode(reply.payload, reply.payload_len, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: bad answer: %s\n",
			reply.hdr.type != KL_MSG_RESULT ? kl_msg_type_name(reply.hdr.type) : err);
		free(rbuf);
		return -1;
	}
	a->status = res.status;
	a->text = strndup(res.text ? res.text : "", res.text_len);
	if (res.json_len) {
		json_error_t je;
		a->doc = json_loadb(res.json, res.json_len, 0, &je);
		if (!a->doc)
			fprintf(stderr, "klctl: the answer's JSON does not parse: %s\n", je.text);
		else
			a->raw = strndup(res.json, res.json_len);
	}
	free(rbuf);
	return 0;
}

static int show(const struct ctl_cmd *cmd, bool json, const struct answer *a)
{
	if (a->status != KL_OK) {
		fprintf(stderr, "klctl: %s\n", a->text[0] ? a->text : kl_status_name(a->status));
		if (json && a->doc) {
			json_dumpf(a->doc, stdout, JSON_COMPACT);
			fputc('\n', stdout);
		}
		return 1;
	}
	if (json) {
		/* As sent: re-encoding would print 2.4 as 2.3999999999999999. */
		if (a->raw)
			fputs(a->raw, stdout);
		else
			fputs("{}", stdout);
		fputc('\n', stdout);
	} else {
		ctl_print_result(cmd, a->doc, a->text, stdout);
	}
	return 0;
}

/* detach-xdp with no -iface: ask for the attached interfaces, detach each. */
static int detach_all(struct kl_client *c, const struct ctl_cmd *cmd, bool json)
{
	struct kl_ctl_req r = { .cmd = KL_CTL_STATUS };
	struct answer st;
	if (call(c, &r, &st) < 0)
		return 1;
	if (st.status != KL_OK) {
		int rc = show(cmd, json, &st);
		answer_free(&st);
		return rc;
	}
	json_t *ifs = json_object_get(st.doc, "interfaces"), *e, *out = json_array();
	size_t i;
	int rc = 0;
	json_array_foreach(ifs, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		struct answer a;
		if (!name || strlen(name) >= KL_IFNAMSIZ)
			continue;
		memset(&r, 0, sizeof(r));
		r.cmd = KL_CTL_DETACH;
		memcpy(r.ifname, name, strlen(name));
		if (call(c, &r, &a) < 0) {
			rc = 1;
			break;
		}
		if (a.status != KL_OK) {
			fprintf(stderr, "klctl: %s\n", a.text);
			rc = 1;
		} else if (!json) {
			printf("%s\n", a.text);
		}
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "name", name, "status",
						     kl_status_name(a.status), "text", a.text));
		answer_free(&a);
	}
	if (json_array_size(out) == 0 && !json)
		printf("no interface attached; nothing to do\n");
	if (json) {
		json_t *doc = json_pack("{s:o}", "detached", out);
		json_dumpf(doc, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		json_decref(out);
	}
	answer_free(&st);
	return rc;
}

/* `klctl [--json] trace|audit ...` work offline; the global --json is passed on. */
static int run_offline(int (*fn)(int, char **), int argc, char **argv, bool json)
{
	char **av = calloc((size_t)argc + 2, sizeof(*av));
	if (!av) {
		fprintf(stderr, "klctl: out of memory\n");
		return 1;
	}
	memcpy(av, argv, (size_t)argc * sizeof(*av));
	if (json)
		av[argc++] = "--json";
	int rc = fn(argc, av);
	free(av);
	return rc;
}

static volatile sig_atomic_t top_stop;
static void top_on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

/* One answer of DAEMON to the request R, or NULL (said why). */
static json_t *ask_req(const struct ctl_global *g, enum ctl_daemon d, const struct kl_ctl_req *r,
		       char **text)
{
	struct kl_client *c = NULL;
	struct answer a;
	char err[320], path[PATH_MAX];
	json_t *doc = NULL;

	if (kl_run_path(g->run_dir, ctl_daemon_role(d), ctl_daemon_socket(d), path, sizeof(path), err,
			sizeof(err)) < 0 ||
	    kl_client_open(&c, path, KL_ROLE_CTL, (int)g->timeout_ms, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s: %s\n", ctl_daemon_name(d), err);
		return NULL;
	}
	if (call(c, r, &a) == 0) {
		if (a.status == KL_OK) {
			doc = json_incref(a.doc);
			if (text)
				*text = strdup(a.text);
		} else {
			fprintf(stderr, "klctl: %s: %s\n", ctl_daemon_name(d), a.text);
		}
		answer_free(&a);
	}
	kl_client_close(c);
	return doc;
}

/* One answer of DAEMON to the command line WORDS, or NULL (said why). */
static json_t *ask(const struct ctl_global *g, enum ctl_daemon d, int n, char **words,
		   char **text)
{
	struct ctl_call cl;
	char err[320];
	if (ctl_parse(n, words, &cl, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s: %s\n", ctl_daemon_name(d), err);
		return NULL;
	}
	return ask_req(g, d, &cl.req, text);
}

/* klctl top: sources from the decider and counters from the enforcer,
 * redrawn in place on a terminal, one frame after another otherwise. A
 * daemon that does not answer is shown as such; the view goes on. */
static int run_top(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_top_opts o;
	char err[320], nbuf[16];
	if (ctl_top_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		ctl_print_offline_help("top", stderr);
		return 2;
	}
	bool json = o.json || g->json, tty = isatty(STDOUT_FILENO) && !json;
	snprintf(nbuf, sizeof(nbuf), "%u", o.n);
	char *src_words[] = { "sources", "-n", nbuf, NULL }, *stat_words[] = { "stats", NULL };
	const struct ctl_cmd *src_cmd = ctl_find(1, src_words, &(int){ 0 });
	const struct ctl_cmd *stat_cmd = ctl_find(1, stat_words, &(int){ 0 });
	signal(SIGINT, top_on_signal);
	signal(SIGTERM, top_on_signal);
	int down = 0;
	for (uint64_t frame = 0; !top_stop && (o.count == 0 || frame < o.count); frame++) {
		char *stext = NULL, *ttext = NULL, when[32];
		json_t *src = ask(g, CTL_D_DECIDER, 3, src_words, &stext);
		json_t *st = ask(g, CTL_D_ENFORCER, 1, stat_words, &ttext);
		time_t now = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
		down = !src || !st;
		if (json) {
			json_t *f = json_pack("{s:s, s:o, s:o}", "time", when, "sources",
					      src ? json_incref(src) : json_null(), "stats",
					      st ? json_incref(st) : json_null());
			json_dumpf(f, stdout, JSON_COMPACT);
			fputc('\n', stdout);
			json_decref(f);
		} else {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			printf("klctl top — %s — every %.1f s (Ctrl+C ends)\n", when,
			       (double)o.interval_ns / 1e9);
			if (src)
				ctl_print_result(src_cmd, src, stext, stdout);
			else
				printf("kl-decider: not answering\n");
			if (st)
				ctl_print_result(stat_cmd, st, ttext, stdout);
			else
				printf("kl-enforcer: not answering\n");
			if (!tty)
				fputc('\n', stdout);
		}
		fflush(stdout);
		json_decref(src);
		json_decref(st);
		free(stext);
		free(ttext);
		if (o.count && frame + 1 >= o.count)
			break;
		struct timespec ts = { (time_t)(o.interval_ns / 1000000000ull),
				       (long)(o.interval_ns % 1000000000ull) };
		while (!top_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return down ? 1 : 0;
}

/* klctl events --follow: ask every second, print what is new, one line
 * (or one JSON object) per event, until Ctrl+C. */
static int run_follow(const struct ctl_global *g, int argc, char **argv)
{
	char **words = calloc((size_t)argc + 3, sizeof(*words));
	int n = 0;
	if (!words)
		return 1;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--follow") != 0 && strcmp(argv[i], "-f") != 0)
			words[n++] = argv[i];
	bool counted = false;
	for (int i = 1; i < n; i++)
		counted |= strcmp(argv[i], "--count") == 0 || strncmp(argv[i], "--count=", 8) == 0;
	if (!counted) {
		words[n++] = "--count";
		words[n++] = "1000";
	}
	struct ctl_call cl;
	char err[320];
	if (ctl_parse(n, words, &cl, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\nusage: klctl events [--count N] [--follow]\n", err);
		free(words);
		return 2;
	}
	bool json = g->json || cl.json;
	signal(SIGINT, top_on_signal);
	signal(SIGTERM, top_on_signal);
	uint64_t last = 0;
	int rc = 0;
	for (bool first = true; !top_stop; first = false) {
		json_t *doc = ask(g, CTL_D_ENFORCER, n, words, NULL);
		if (!doc) {
			rc = 1;
			break;
		}
		json_t *arr = json_object_get(doc, "entries");
		uint64_t total = (uint64_t)json_integer_value(json_object_get(doc, "total")), missed;
		size_t cnt = json_array_size(arr);
		/* The first answer is history: show it as `events` does. */
		size_t from = first ? 0 : ctl_events_new(last, total, cnt, &missed);
		if (!first && missed)
			fprintf(stderr, "klctl: %llu events went by unseen\n", (unsigned long long)missed);
		time_t now = time(NULL);
		for (size_t i = from; i < cnt; i++) {
			json_t *e = json_array_get(arr, i);
			if (json) {
				json_dumpf(e, stdout, JSON_COMPACT);
				fputc('\n', stdout);
				continue;
			}
			char when[32];
			time_t t = now - (time_t)(json_integer_value(json_object_get(e, "age_ms")) / 1000);
			strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
			printf("%s %-39s %-10s %-6s %5lld %5lld\n", when,
			       json_string_value(json_object_get(e, "ip")) ?: "?",
			       json_string_value(json_object_get(e, "kind")) ?: "?",
			       json_string_value(json_object_get(e, "proto")) ?: "?",
			       (long long)json_integer_value(json_object_get(e, "dport")),
			       (long long)json_integer_value(json_object_get(e, "len")));
		}
		fflush(stdout);
		last = total;
		json_decref(doc);
		struct timespec ts = { 1, 0 };
		while (!top_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	free(words);
	return rc;
}

/* The "daemon" object of a daemon's STATUS answer (common/status.h), or
 * NULL when it has no control socket or does not answer. */
static json_t *daemon_self(const struct ctl_global *g, enum kl_role role)
{
	static const enum ctl_daemon by_role[KL_ROLE_MAX] = {
		[KL_ROLE_ENFORCER] = CTL_D_ENFORCER, [KL_ROLE_DECIDER] = CTL_D_DECIDER,
		[KL_ROLE_GRAPHD] = CTL_D_GRAPHD, [KL_ROLE_SENSOR] = CTL_D_MAX,
	};
	const struct kl_ctl_req r = { .cmd = KL_CTL_STATUS, .mode = 1 };
	if (by_role[role] == CTL_D_MAX)
		return NULL; /* the sensor: ctl_sensor_self */
	json_t *doc = ask_req(g, by_role[role], &r, NULL);
	json_t *self = json_incref(json_object_get(doc, "daemon"));
	json_decref(doc);
	return self;
}

/* "1.2s" for an age in ms; "-" when there is none. */
static const char *age_text(json_t *ms, char *buf, size_t len)
{
	if (!json_is_integer(ms))
		return "-";
	snprintf(buf, len, "%.1fs", (double)json_integer_value(ms) / 1000.0);
	return buf;
}

/* klctl status: every daemon, up or down, as whom, in which sandbox (from
 * /proc), and what it says of itself (version, dry-run or enforcing, ticks,
 * the last tick's age, frames in and out); exit 1 when an expected one is
 * down or cannot be told. */
static int run_status_all(const struct ctl_global *g, int argc, char **argv)
{
	static const struct {
		enum kl_role role;
		const char *sock; /* NULL: the sensor, found in /proc */
	} ds[CTL_U_MAX] = {
		[CTL_U_ENFORCER] = { KL_ROLE_ENFORCER, "enforcer.sock" },
		[CTL_U_SENSOR] = { KL_ROLE_SENSOR, NULL },
		[CTL_U_DECIDER] = { KL_ROLE_DECIDER, "decider.sock" },
		[CTL_U_GRAPHD] = { KL_ROLE_GRAPHD, "graphd.sock" },
	};
	static const char *const seccomp[] = { "off", "strict", "filter" };
	struct ctl_status_opts o;
	char path[PATH_MAX], err[320];
	if (ctl_status_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		ctl_print_offline_help("status", stderr);
		return 2;
	}
	if (o.help) {
		ctl_print_offline_help("status", stdout);
		fputc('\n', stdout);
		ctl_print_group_help("status", stdout);
		return 0;
	}
	bool json = o.json || g->json;
	json_t *arr = json_array();
	int bad = 0;
	if (!json)
		printf("%-12s %-5s %-8s %-18s %-8s %-4s %-16s %-7s %-14s %7s %7s %9s %9s\n", "DAEMON",
		       "STATE", "PID", "USER", "SECCOMP", "NNP", "CAPEFF", "VERSION", "MODE", "TICKS",
		       "LAST", "IN", "OUT");
	for (int i = 0; i < CTL_U_MAX; i++) {
		pid_t pid = 0;
		struct ctl_proc p;
		const char *name = ctl_unit_name((enum ctl_unit)i);
		if (ds[i].sock == NULL)
			pid = ctl_find_sensor(g->run_dir, KL_RUN_ROOT_DEFAULT);
		else if (kl_run_path(g->run_dir, ds[i].role, ds[i].sock, path, sizeof(path), err,
				     sizeof(err)) == 0)
			pid = ctl_socket_peer_pid(path, (int)g->timeout_ms, err, sizeof(err));
		if (pid < 0)
			fprintf(stderr, "klctl: %s: %s\n", name, err);
		bool up = pid > 0 && ctl_proc_read(pid, &p) == 0;
		enum ctl_unit_state state = ctl_unit_state(up, pid < 0, o.expect & (1u << i));
		bad += state == CTL_ST_DOWN || state == CTL_ST_UNKNOWN;
		char user[64] = "-";
		if (up) {
			struct passwd *pw = getpwuid(p.uid);
			snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "?");
			if (!pw)
				snprintf(user, sizeof(user), "%u", (unsigned)p.uid);
		}
		const char *sc = up && p.seccomp >= 0 && p.seccomp <= 2 ? seccomp[p.seccomp] : "?";
		json_t *self = !up ? NULL
			       : ds[i].sock == NULL ? ctl_sensor_self(pid, kl_unix_ms())
						    : daemon_self(g, ds[i].role);
		if (json) {
			json_t *e = json_pack("{s:s, s:s, s:b, s:b}", "daemon", name, "state",
					      ctl_unit_state_name(state), "up", up, "expected",
					      (o.expect & (1u << i)) != 0);
			if (up) {
				json_object_set_new(e, "pid", json_integer(p.pid));
				json_object_set_new(e, "user", json_string(user));
				json_object_set_new(e, "seccomp", json_string(sc));
				json_object_set_new(e, "no_new_privs", json_boolean(p.no_new_privs));
				char caps[24];
				snprintf(caps, sizeof(caps), "%016llx", (unsigned long long)p.cap_eff);
				json_object_set_new(e, "cap_eff", json_string(caps));
				static const char *const keys[] = { "version", "enforcing", "mode", "ticks",
								    "last_tick", "last_tick_age_ms",
								    "interval_ms", "frames_in",
								    "frames_out" };
				for (size_t k = 0; self && k < sizeof(keys) / sizeof(keys[0]); k++)
					json_object_set(e, keys[k], json_object_get(self, keys[k]));
			}
			json_array_append_new(arr, e);
		} else if (up) {
			char age[32];
			printf("%-12s %-5s %-8d %-18s %-8s %-4d %016llx %-7s %-14s %7lld %7s %9lld %9lld\n",
			       name, "up", (int)p.pid, user, sc, p.no_new_privs,
			       (unsigned long long)p.cap_eff,
			       json_string_value(json_object_get(self, "version")) ?: "-",
			       json_string_value(json_object_get(self, "mode")) ?: "-",
			       (long long)json_integer_value(json_object_get(self, "ticks")),
			       age_text(json_object_get(self, "last_tick_age_ms"), age, sizeof(age)),
			       (long long)json_integer_value(json_object_get(self, "frames_in")),
			       (long long)json_integer_value(json_object_get(self, "frames_out")));
		} else {
			printf("%-12s %s%s\n", name, ctl_unit_state_name(state),
			       state == CTL_ST_OFF ? "   (not expected here: --expect)" : "");
		}
		json_decref(self);
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	}
	json_decref(arr);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct ctl_global g;
	struct ctl_call cl;
	char err[320], path[PATH_MAX];

	kl_log_init("klctl", KL_LOG_WARN);
	if (ctl_global_parse(argc, argv, getenv("KERNLOOM_RUN_DIR"), &g, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		return 2;
	}
	int n = argc - g.cmd_index;
	char **av = argv + g.cmd_index;
	if (g.help_man) {
		ctl_print_man(stdout);
		return 0;
	}
	if (g.help || (n >= 1 && strcmp(av[0], "help") == 0 && n == 1)) {
		ctl_print_usage(stdout);
		return 0;
	}
	if (n == 0) {
		ctl_print_usage(stderr);
		return 2;
	}
	if (strcmp(av[0], "trace") == 0)
		return run_offline(ctl_trace_main, n, av, g.json);
	if (strcmp(av[0], "audit") == 0)
		return run_offline(ctl_audit_main, n, av, g.json);
	if (strcmp(av[0], "top") == 0)
		return run_top(&g, n, av);
	/* `status` with options only is every daemon; `status enforcer` is the
	 * table's. */
	if (strcmp(av[0], "status") == 0 && (n == 1 || av[1][0] == '-'))
		return run_status_all(&g, n, av);
	if (strcmp(av[0], "events") == 0)
		for (int i = 1; i < n; i++)
			if (strcmp(av[i], "--follow") == 0 || strcmp(av[i], "-f") == 0)
				return run_follow(&g, n, av);
	if (n == 2 && strcmp(av[0], "help") == 0 && strcmp(av[1], "trace") == 0) {
		char *h[] = { "trace", "--help", NULL };
		return ctl_trace_main(2, h);
	}
	if (n == 2 && strcmp(av[0], "help") == 0 && strcmp(av[1], "audit") == 0) {
		char *h[] = { "audit", "--help", NULL };
		return ctl_audit_main(2, h);
	}
	if (strcmp(av[0], "help") == 0) {
		int used;
		const struct ctl_cmd *c = ctl_find(n - 1, av + 1, &used);
		if (!c && n == 2) {
			/* `help status`, `help top`: klctl's own command and the
			 * table's commands under that word */
			int own = ctl_print_offline_help(av[1], stdout);
			if (own > 0)
				fputc('\n', stdout);
			if (ctl_print_group_help(av[1], stdout) + own > 0)
				return 0;
		}
		if (!c) {
			fprintf(stderr, "klctl: no command \"%s\" (see klctl help)\n", av[1]);
			return 2;
		}
		ctl_print_cmd_help(c, stdout);
		return 0;
	}
	if (ctl_parse(n, av, &cl, err, sizeof(err)) < 0) {
		char name[64];
		fprintf(stderr, "klctl: %s\n", err);
		if (cl.cmd)
			fprintf(stderr, "usage: klctl %s %s\n", ctl_cmd_name(cl.cmd, name, sizeof(name)),
				cl.cmd->usage);
		return 2;
	}
	if (cl.help) {
		ctl_print_cmd_help(cl.cmd, stdout);
		return 0;
	}
	if (cl.note[0])
		fprintf(stderr, "klctl: %s\n", cl.note);

	const char *daemon = ctl_daemon_name(ctl_cmd_daemon(cl.cmd));
	if (kl_run_path(g.run_dir, ctl_daemon_role(ctl_cmd_daemon(cl.cmd)), ctl_daemon_socket(ctl_cmd_daemon(cl.cmd)),
			path, sizeof(path), err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		return 2;
	}
	struct kl_client *c = NULL;
	if (kl_client_open(&c, path, KL_ROLE_CTL, (int)g.timeout_ms, err, sizeof(err)) < 0) {
		/* err names the socket path already */
		fprintf(stderr, "klctl: cannot reach %s: %s (is it running?)\n", daemon, err);
		return 1;
	}
	int rc;
	if (cl.detach_all) {
		rc = detach_all(c, cl.cmd, g.json);
	} else {
		struct answer a;
		rc = call(c, &cl.req, &a) < 0 ? 1 : show(cl.cmd, g.json || cl.json, &a);
		answer_free(&a);
	}
	kl_client_close(c);
	return rc;
}
