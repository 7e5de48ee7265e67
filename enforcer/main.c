/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer: the one privileged process. It loads the XDP shield over its
 * pinned maps, attaches it, then serves klctl, the decider and graphd, each
 * on its own socket, with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON left.
 * Each step of the start is a function.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/signals.h"
#include "common/audit.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/prom.h"
#include "common/status.h"
#include "enforcer/enforcer.h"
#include "ipc/chan.h"
#include "sandbox/rundir.h"
#include "sandbox/sandbox.h"

#include <linux/capability.h>

#define POLL_MS 100
/* Requests served from one socket before the others get their turn. */
#define DRAIN_MAX 32
#define SWEEP_EVERY_NS (5ull * 1000000000ull)
#define SWEEP_BUDGET 2048
#define METRICS_EVERY_NS 1000000000ull

static volatile sig_atomic_t stop_sig, hup_sig;

/* What SIGHUP needs: the command line again, and the running settings. */
struct reload {
	int argc;
	char **argv;
	struct enf_opts *opts;
};

/* SIGHUP: the command line and the file again, validated as at start; a
 * bad file keeps the running configuration (enf_config_reload says what
 * changes live). */
static void reload_config(const struct reload *r)
{
	enf_config_reload(r->opts, r->argc, r->argv);
}

/* Options and config; exits on -n, --help and errors. */
static void setup_config(int argc, char **argv, struct enf_opts *o)
{
	struct kl_errs errs = { 0 };

	if (enf_config_build(o, argc, argv, &errs) < 0) {
		kl_errs_print_prog(&errs, "kl-enforcer", stderr);
		exit(KL_EXIT_CONFIG);
	}
	switch (o->action) {
	case KL_CLI_HELP: enf_usage(stdout); exit(0);
	case KL_CLI_HELP_MD: kl_knob_help_markdown(&enf_knobs, stdout); exit(0);
	case KL_CLI_HELP_MAN: enf_help_man(stdout); exit(0);
	case KL_CLI_HELP_MAN_FILE: enf_help_man_file(stdout); exit(0);
	case KL_CLI_VERSION: printf("kl-enforcer %s\n", KL_VERSION); exit(0);
	case KL_CLI_RUN: break;
	}
	if (o->c.config_check) {
		enf_config_print(o, stdout);
		exit(0);
	}
}

/* The audit trail, before anything changes; its directory may be missing
 * or unwritable (logged and retried), its key may not. */
/* Before the drop: the key and the directory are made for the user we
 * become (`to`, NULL when we already run as it). */
static int open_audit(struct enf_ctx *ctx, const struct passwd *to)
{
	char err[512];
	struct kl_audit_opts o = { .dir = ctx->cfg->audit_dir, .key = ctx->cfg->audit_key,
				   .proc = "enforcer", .batch = true,
				   .uid = to ? to->pw_uid : (uid_t)-1,
				   .gid = to ? to->pw_gid : (gid_t)-1 };
	ctx->audit = kl_audit_open(&o, err, sizeof(err));
	if (ctx->audit == NULL) {
		kl_error("%s", err);
		return -1;
	}
	return 0;
}

static int attach_configured(struct enf_ctx *ctx)
{
	int bad = 0;
	for (size_t i = 0; i < ctx->cfg->ifaces.n; i++) {
		char msg[ENF_TEXT_LEN];
		const char *ifname = ctx->cfg->ifaces.v[i];
		if (enf_attach(ctx, ifname, ctx->cfg->xdp_mode, ctx->cfg->force, msg, sizeof(msg)) < 0) {
			kl_error("%s", msg);
			bad++;
		} else {
			kl_info("%s", msg);
		}
	}
	return bad ? -1 : 0;
}

/* The sockets, in the order the loop serves them. */
enum { SRV_CTL = 0, SRV_DECIDER, SRV_GRAPHD, SRV_MAX };

static const struct {
	const char *file;
	enum kl_role peer;
	int link; /* enum enf_link, -1 for klctl */
} srv_specs[SRV_MAX] = {
	[SRV_CTL] = { "enforcer.sock", KL_ROLE_CTL, -1 },
	[SRV_DECIDER] = { "enforcer-decider.sock", KL_ROLE_DECIDER, ENF_LINK_DECIDER },
	[SRV_GRAPHD] = { "enforcer-graphd.sock", KL_ROLE_GRAPHD, ENF_LINK_GRAPHD },
};

/*
 * The user allowed on a link besides root and ourselves. A configured
 * user that does not exist is an error (a typo would otherwise lock the
 * daemon out silently); the default one may be missing (tests, a host
 * without the sysusers entries).
 */
static int link_user(struct enf_ctx *ctx, int link, uid_t *uid, gid_t *gid)
{
	const struct enf_config *cfg = ctx->cfg;
	const char *name = link == ENF_LINK_DECIDER ? cfg->decider_user : cfg->graph_user;
	const char *knob = link == ENF_LINK_DECIDER ? "decider-user" : "graph-user";
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		if (enf_config_given(cfg, knob)) {
			char from[PATH_MAX + 64];
			enf_config_origin(cfg, knob, from, sizeof(from));
			kl_error("%s user %s does not exist (%s)",
				 link == ENF_LINK_DECIDER ? "decider" : "graph", name, from);
			return -1;
		}
		kl_info("no user %s: %s admits root and uid %u only", name,
			srv_specs[link == ENF_LINK_DECIDER ? SRV_DECIDER : SRV_GRAPHD].file,
			(unsigned)geteuid());
		return 0;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	ctx->links[link].uid = pw->pw_uid;
	return 1;
}

/* What the socket layer turns away (uid not admitted, a bad or refused
 * HELLO, a request before HELLO, a type the role may not send, a malformed
 * frame) goes into the audit trail like the enforcer's own refusals. */
static void socket_refused(void *arg, const struct kl_refusal *r)
{
	struct enf_actor who = { .role = r->role, .uid = r->uid, .pid = r->pid };
	enf_audit_refusal(arg, &who, "connection", r->status, r->why);
}

static struct kl_server *open_server(struct enf_ctx *ctx, int which)
{
	const struct enf_config *cfg = ctx->cfg;
	char path[PATH_MAX], err[PATH_MAX + 64];
	uid_t uid;
	gid_t gid = (gid_t)-1, admin = (gid_t)-1;
	int link = srv_specs[which].link;
	int have_user = 0;
	if (link < 0) {
		struct group *gr = getgrnam(KL_ADMIN_GROUP);
		if (gr)
			admin = gr->gr_gid;
		else
			kl_info("no group %s: the control socket is for root only", KL_ADMIN_GROUP);
		gid = admin;
	} else if ((have_user = link_user(ctx, link, &uid, &gid)) < 0) {
		return NULL;
	}
	if (kl_run_path(cfg->run_dir, KL_ROLE_ENFORCER, srv_specs[which].file, path, sizeof(path),
			err, sizeof(err)) < 0) {
		kl_error("%s", err);
		return NULL;
	}
	/* A full batch of records plus header: above nng's 1 MiB default. */
	size_t max_msg = link == ENF_LINK_DECIDER ? kl_decisions_len(KL_DECISIONS_MAX)
			 : link == ENF_LINK_GRAPHD ? kl_edge_rules_len(KL_EDGE_RULES_MAX)
						   : 0;
	struct kl_server_opts so = {
		.on_refused = socket_refused,
		.on_refused_arg = ctx,
		.path = path,
		.self = KL_ROLE_ENFORCER,
		.peer_role = srv_specs[which].peer,
		.mode = 0660,
		.gid = gid,
		.allowed_uids = have_user > 0 ? &uid : NULL,
		.n_allowed_uids = have_user > 0 ? 1 : 0,
		.admin_gid = admin,
		.max_msg = max_msg ? KL_MSG_HDR_LEN + max_msg : 0,
	};
	struct kl_server *srv = NULL;
	if (kl_server_open(&srv, &so, err, sizeof(err)) < 0) {
		kl_error("socket %s: %s", path, err);
		return NULL;
	}
	kl_info("listening on %s for %s", path, kl_role_name(srv_specs[which].peer));
	return srv;
}

static int open_servers(struct enf_ctx *ctx, struct kl_server *srv[SRV_MAX])
{
	for (int i = 0; i < SRV_MAX; i++) {
		srv[i] = open_server(ctx, i);
		if (!srv[i]) {
			for (int j = 0; j < i; j++)
				kl_server_close(srv[j]);
			return -1;
		}
	}
	return 0;
}

static void close_servers(struct kl_server *srv[SRV_MAX])
{
	for (int i = 0; i < SRV_MAX; i++)
		kl_server_close(srv[i]);
}

static void serve_one(struct enf_ctx *ctx, struct kl_server *srv, struct kl_request *req)
{
	char err[256];
	struct kl_ctl_req r;
	struct enf_actor who = { .role = req->peer_role, .uid = req->peer_uid, .pid = req->peer_pid };
	if (req->msg.hdr.type != KL_MSG_CONTROL) {
		static const char why[] = "kl-enforcer's control socket takes CONTROL messages only";
		kl_server_reply_result(srv, req, KL_ERR_INVALID, why, NULL);
		enf_audit_refusal(ctx, &who, kl_msg_type_name(req->msg.hdr.type), KL_ERR_INVALID, why);
		return;
	}
	if (kl_ctl_req_decode(req->msg.payload, req->msg.payload_len, &r, err, sizeof(err)) < 0) {
		kl_warn("refused a malformed request from uid %u pid %d: %s", (unsigned)req->peer_uid,
			(int)req->peer_pid, err);
		ctx->ctl_requests[KL_ERR_INVALID]++;
		kl_server_reply_result(srv, req, KL_ERR_INVALID, err, NULL);
		enf_audit_refusal(ctx, &who, "CONTROL", KL_ERR_INVALID, err);
		return;
	}
	struct enf_result res;
	enf_handle(ctx, &who, &r, &res);
	char *json = res.json ? json_dumps(res.json, JSON_COMPACT) : NULL;
	if (kl_server_reply_result(srv, req, res.status, res.text, json) < 0)
		kl_warn("could not answer %s from pid %d", kl_ctl_cmd_name(r.cmd), (int)req->peer_pid);
	free(json);
	enf_result_free(&res);
}

static void serve_link(struct enf_ctx *ctx, struct kl_server *srv, struct kl_request *req)
{
	struct enf_actor who = { .role = req->peer_role, .uid = req->peer_uid, .pid = req->peer_pid };
	struct enf_reply rep;
	enf_link_handle(ctx, &who, req->msg.hdr.type, req->msg.payload, req->msg.payload_len, &rep);
	int rc = rep.type == KL_MSG_RESULT
			 ? kl_server_reply_result(srv, req, rep.status, rep.text, NULL)
			 : kl_server_reply(srv, req, rep.type, rep.buf, rep.len);
	if (rc < 0)
		kl_warn("could not answer %s from %s pid %d", kl_msg_type_name(req->msg.hdr.type),
			kl_role_name(req->peer_role), (int)req->peer_pid);
	enf_reply_free(&rep);
}

/* Serve what waits on one socket, at most DRAIN_MAX requests. A failing
 * socket is never fatal: the data plane and the other sockets carry on,
 * and kl_server_recv is asked again on the next round (it recovers its
 * listener by itself; see ipc/listen.h). */
static void drain(struct enf_ctx *ctx, struct kl_server *srv, int which)
{
	static int64_t logged[SRV_MAX];
	for (int i = 0; i < DRAIN_MAX; i++) {
		struct kl_request req;
		int rc = kl_server_recv(srv, &req, 0);
		if (rc < 0) {
			int64_t now = (int64_t)(enf_boottime_ns() / 1000000000ull);
			if (logged[which] == 0 || now - logged[which] >= 60) {
				kl_error("%s: receive failed; still serving the others and retrying",
					 srv_specs[which].file);
				logged[which] = now;
			}
			return;
		}
		if (rc == 0)
			break;
		if (which == SRV_CTL)
			serve_one(ctx, srv, &req);
		else
			serve_link(ctx, srv, &req);
		kl_request_done(&req);
	}
}

/* The --metrics-file page; a failure is logged once a minute, never fatal. */
static void write_metrics(const struct enf_ctx *ctx, struct kl_prom *p)
{
	static int64_t warned;
	char err[512];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	enf_metrics_page(ctx, p, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	if (kl_prom_write(p, ctx->cfg->metrics_file, err, sizeof(err)) < 0 &&
	    (warned == 0 || ts.tv_sec - warned >= 60)) {
		kl_warn("metrics: %s", err);
		warned = ts.tv_sec;
	}
}

static int run_loop(struct enf_ctx *ctx, struct kl_server *srv[SRV_MAX], const struct reload *r)
{
	uint64_t last_sweep = enf_boottime_ns(), last_all = 0, last_metrics = 0;
	struct kl_prom prom = { 0 };
	struct pollfd pfd[SRV_MAX];
	for (int i = 0; i < SRV_MAX; i++) {
		pfd[i].fd = kl_server_fd(srv[i]);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0)
			return -1;
	}
	kl_notify_ready("serving: maps open, sockets listening");
	while (!stop_sig) {
		kl_notify_watchdog();
		if (hup_sig) {
			hup_sig = 0;
			reload_config(r);
		}
		int n = poll(pfd, SRV_MAX, POLL_MS);
		if (n < 0 && errno != EINTR) {
			kl_error("poll: %s", strerror(errno));
			return -1;
		}
		/* Every socket once per tick too: kl_server_recv also checks
		 * its listener and closes refused connections. */
		uint64_t t = enf_boottime_ns();
		bool all = t - last_all >= POLL_MS * 1000000ull;
		if (all)
			last_all = t;
		for (int i = 0; i < SRV_MAX; i++) {
			if (all || (n > 0 && (pfd[i].revents & POLLIN)))
				drain(ctx, srv[i], i);
		}
		if (ctx->rb)
			ring_buffer__consume(ctx->rb);
		uint64_t now = enf_boottime_ns();
		enf_self_refresh(ctx, false);
		if (now - last_sweep >= SWEEP_EVERY_NS) {
			enf_sweep(ctx, SWEEP_BUDGET);
			last_sweep = now;
		}
		if (ctx->cfg->metrics_file[0] != '\0' && now - last_metrics >= METRICS_EVERY_NS) {
			write_metrics(ctx, &prom);
			last_metrics = now;
		}
	}
	kl_prom_free(&prom);
	kl_notify_stopping();
	kl_info("signal %d: shutting down", (int)stop_sig);
	return 0;
}

/*
 * What the sandbox needs to know: the user to become (started as root),
 * which gets the pins and a new run dir first, and the paths it may
 * touch afterwards (DESIGN §9): the pins (klctl attach pins a link) and
 * its sockets; the config only to read.
 */
static int sandbox_paths(struct enf_ctx *ctx, struct kl_sandbox_opts *so)
{
	const struct enf_config *cfg = ctx->cfg;
	static char run[PATH_MAX];
	const struct passwd *to = NULL;

	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);
		if (!pw) {
			char from[PATH_MAX + 64];
			enf_config_origin(cfg, "user", from, sizeof(from));
			kl_error("user %s does not exist (%s): create it (systemd-sysusers) or "
				 "pass --user",
				 cfg->user, from);
			return -1;
		}
		if (pw->pw_uid == 0) {
			kl_error("user %s is uid 0: the enforcer must not keep root", cfg->user);
			return -1;
		}
		so->user = cfg->user;
		to = pw;
	}
	if (to && enf_give_pins(cfg->pin_dir, to->pw_uid) < 0)
		return -1;
	/* The enforcer creates its sockets after the switch (prepare), so its
	 * role directory is the user's before then. */
	uid_t ru = to ? to->pw_uid : geteuid();
	if (kl_run_dir_ensure(cfg->run_dir, KL_ROLE_ENFORCER, ru, to ? to->pw_gid : getegid()) < 0 ||
	    kl_run_dir_hand_over(cfg->run_dir, KL_ROLE_ENFORCER, ru) < 0)
		return -1;
	if (open_audit(ctx, to) < 0)
		return -1;
	/* libbpf reads /sys/devices/system/cpu/possible for per-CPU maps and
	 * keeps the answer: ask now, while the file is reachable. */
	if (libbpf_num_possible_cpus() < 0)
		return -1;
	kl_sandbox_ro_file(so, cfg->config);
	kl_sandbox_rw(so, cfg->pin_dir);
	kl_sandbox_rw(so, kl_sandbox_run_dir(cfg->run_dir, KL_ROLE_ENFORCER, run, sizeof(run)));
	kl_sandbox_rw(so, cfg->audit_dir);
	kl_sandbox_rw_parent(so, cfg->metrics_file);
	return 0;
}

int main(int argc, char **argv)
{
	static struct enf_opts opts;
	static struct enf_evring ring;
	static struct enf_ctx ctx;
	int rc = 1;

	kl_log_init("kl-enforcer", KL_LOG_INFO);
	setup_config(argc, argv, &opts);
	kl_log_init("kl-enforcer", (enum kl_log_level)opts.c.log_level);
	kl_signals_init(&stop_sig, &hup_sig);
	enf_ctx_init(&ctx, &opts.c, &ring);
	if (kl_sandbox_check_start(KL_ROLE_ENFORCER) < 0)
		goto out;

	if (enf_load(&ctx) < 0 || enf_share_telemetry(&ctx) < 0 || enf_cfg_init(&ctx) < 0 ||
	    enf_sync_protected(&ctx) < 0)
		goto out;
	enf_self_refresh(&ctx, true);
	if (opts.c.protect.n == 0)
		kl_warn("protect is empty: only this host's own addresses and loopback are protected "
			"from the decider and graphd; nothing else is (not the operator's address): "
			"list management networks under protect");
	if (attach_configured(&ctx) < 0)
		goto out;
	enf_adopt_links(&ctx);
	/* Reconciliation starts from what the maps hold (DESIGN §5). */
	if (enf_count_origins(&ctx) < 0)
		goto out;
	kl_info("entries in the maps: operator %llu, decider %llu (max %llu), graphd %llu (max %llu)",
		(unsigned long long)ctx.origin_count[KL_ORIGIN_OPERATOR],
		(unsigned long long)ctx.origin_count[KL_ORIGIN_DECIDER], (unsigned long long)opts.c.decider_max,
		(unsigned long long)ctx.origin_count[KL_ORIGIN_GRAPHD], (unsigned long long)opts.c.graph_max);
	struct kl_server *srv[SRV_MAX];
	static struct kl_sandbox_opts so;
	if (sandbox_paths(&ctx, &so) < 0)
		goto out;
	/* Before nng's first socket starts its threads: they are born as our
	 * user with the three capabilities (sandbox.h). */
	if (kl_sandbox_prepare(KL_ROLE_ENFORCER, &so) < 0)
		goto out;
	if (open_servers(&ctx, srv) < 0)
		goto out;
	if (kl_sandbox_enter(KL_ROLE_ENFORCER, &so) < 0) {
		close_servers(srv);
		goto out;
	}
	const struct reload r = { .argc = argc, .argv = argv, .opts = &opts };
	rc = run_loop(&ctx, srv, &r) < 0 ? 1 : 0;
	close_servers(srv);
out:
	enf_close(&ctx, opts.c.detach_on_exit && rc == 0);
	kl_audit_close(ctx.audit);
	return rc;
}
