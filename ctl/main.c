/* SPDX-License-Identifier: MPL-2.0 */
/*
 * klctl: the operator CLI. Parses a command strictly, sends it as one
 * CONTROL message to the daemon that owns it, prints the RESULT.
 * Exit: 0 done, 1 refused/failed/unreachable, 2 usage.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "ctl/audit.h"
#include "ctl/cmds.h"
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
		if (!c && n == 2 && ctl_print_group_help(av[1], stdout) > 0)
			return 0;
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

	const char *daemon = ctl_daemon_name(cl.cmd->daemon);
	if (kl_run_path(g.run_dir, ctl_daemon_role(cl.cmd->daemon), ctl_daemon_socket(cl.cmd->daemon),
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
