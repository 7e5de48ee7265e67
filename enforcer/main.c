/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer: the one privileged process. It loads the XDP shield over its
 * pinned maps, attaches it, then serves control requests with only CAP_BPF,
 * CAP_NET_ADMIN and CAP_PERFMON left. Each step of the start is a function.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/log.h"
#include "enforcer/enforcer.h"
#include "ipc/chan.h"
#include "sandbox/sandbox.h"

#define POLL_MS 100
#define SWEEP_EVERY_NS (5ull * 1000000000ull)
#define SWEEP_BUDGET 2048
#define ADMIN_GROUP "kernloom-admin"

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	stop_sig = sig;
}

static void print_diag(const struct enf_diag *d)
{
	for (unsigned i = 0; i < d->n; i++)
		fprintf(stderr, "kl-enforcer: %s\n", d->msg[i]);
	if (d->dropped)
		fprintf(stderr, "kl-enforcer: ... and %u more errors\n", d->dropped);
}

/* Options and config; exits on -n, --help and errors. */
static void setup_config(int argc, char **argv, struct enf_config *cfg)
{
	struct enf_cli cli;
	struct enf_diag diag;
	memset(&diag, 0, sizeof(diag));
	int usage = enf_cli_parse(argc, argv, &cli, &diag);
	if (cli.help) {
		enf_usage(stdout, "kl-enforcer");
		exit(0);
	}
	if (usage < 0 && !cli.check_only) {
		print_diag(&diag);
		fprintf(stderr, "kl-enforcer: see kl-enforcer --help\n");
		exit(2);
	}
	unsigned n = enf_config_build(cfg, &cli, &diag);
	if (n || diag.n) {
		print_diag(&diag);
		exit(1);
	}
	if (cfg->check_only) {
		enf_config_render(cfg, stdout);
		exit(0);
	}
}

static void setup_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int attach_configured(struct enf_ctx *ctx)
{
	int bad = 0;
	for (size_t i = 0; i < ctx->cfg->n_ifaces; i++) {
		char msg[ENF_TEXT_LEN];
		const char *ifname = ctx->cfg->ifaces[i];
		if (enf_attach(ctx, ifname, ctx->cfg->xdp_mode, ctx->cfg->force, msg, sizeof(msg)) < 0) {
			kl_error("%s", msg);
			bad++;
		} else {
			kl_info("%s", msg);
		}
	}
	return bad ? -1 : 0;
}

static struct kl_server *open_control(const struct enf_config *cfg)
{
	char path[PATH_MAX], err[256];
	gid_t admin = (gid_t)-1;
	struct group *gr = getgrnam(ADMIN_GROUP);
	if (gr)
		admin = gr->gr_gid;
	else
		kl_info("no group %s: the control socket is for root only", ADMIN_GROUP);
	if (mkdir(cfg->run_dir, 0750) == 0) {
		/* the admins must be able to reach the socket inside it; an
		 * existing directory is left as its owner (tmpfiles.d) made it */
		if (admin != (gid_t)-1 && chown(cfg->run_dir, (uid_t)-1, admin) < 0)
			kl_warn("run dir %s: cannot give it to group %s: %s", cfg->run_dir,
				ADMIN_GROUP, strerror(errno));
	} else if (errno != EEXIST) {
		kl_error("run dir %s: cannot create: %s", cfg->run_dir, strerror(errno));
		return NULL;
	}
	if (snprintf(path, sizeof(path), "%s/enforcer.sock", cfg->run_dir) >= (int)sizeof(path)) {
		kl_error("run dir %s: path too long", cfg->run_dir);
		return NULL;
	}
	struct kl_server_opts so = {
		.path = path,
		.self = KL_ROLE_ENFORCER,
		.peer_role = KL_ROLE_CTL,
		.mode = 0660,
		.gid = admin,
		.admin_gid = admin,
	};
	struct kl_server *srv = NULL;
	if (kl_server_open(&srv, &so, err, sizeof(err)) < 0) {
		kl_error("control socket %s: %s", path, err);
		return NULL;
	}
	kl_info("listening on %s", path);
	return srv;
}

static void serve_one(struct enf_ctx *ctx, struct kl_server *srv, struct kl_request *req)
{
	char err[256];
	struct kl_ctl_req r;
	if (req->msg.hdr.type != KL_MSG_CONTROL) {
		kl_server_reply_result(srv, req, KL_ERR_INVALID,
				       "kl-enforcer's control socket takes CONTROL messages only", NULL);
		return;
	}
	if (kl_ctl_req_decode(req->msg.payload, req->msg.payload_len, &r, err, sizeof(err)) < 0) {
		kl_warn("refused a malformed request from uid %u pid %d: %s", (unsigned)req->peer_uid,
			(int)req->peer_pid, err);
		kl_server_reply_result(srv, req, KL_ERR_INVALID, err, NULL);
		return;
	}
	struct enf_actor who = { .role = req->peer_role, .uid = req->peer_uid, .pid = req->peer_pid };
	struct enf_result res;
	enf_handle(ctx, &who, &r, &res);
	char *json = res.json ? json_dumps(res.json, JSON_COMPACT) : NULL;
	if (kl_server_reply_result(srv, req, res.status, res.text, json) < 0)
		kl_warn("could not answer %s from pid %d", kl_ctl_cmd_name(r.cmd), (int)req->peer_pid);
	free(json);
	enf_result_free(&res);
}

static int run_loop(struct enf_ctx *ctx, struct kl_server *srv)
{
	uint64_t last_sweep = enf_boottime_ns();
	while (!stop_sig) {
		struct kl_request req;
		int rc = kl_server_recv(srv, &req, POLL_MS);
		if (rc < 0) {
			kl_error("control socket failed; exiting");
			return -1;
		}
		if (rc == 1) {
			serve_one(ctx, srv, &req);
			kl_request_done(&req);
		}
		if (ctx->rb)
			ring_buffer__consume(ctx->rb);
		uint64_t now = enf_boottime_ns();
		if (now - last_sweep >= SWEEP_EVERY_NS) {
			enf_sweep(ctx, SWEEP_BUDGET);
			last_sweep = now;
		}
	}
	kl_info("signal %d: shutting down", (int)stop_sig);
	return 0;
}

int main(int argc, char **argv)
{
	static struct enf_config cfg;
	static struct enf_evring ring;
	static struct enf_ctx ctx;
	int rc = 1;

	kl_log_init("kl-enforcer", KL_LOG_INFO);
	setup_config(argc, argv, &cfg);
	kl_log_init("kl-enforcer", (enum kl_log_level)cfg.log_level);
	setup_signals();
	enf_ctx_init(&ctx, &cfg, &ring);

	if (enf_load(&ctx) < 0 || enf_cfg_init(&ctx) < 0 || enf_sync_protected(&ctx) < 0)
		goto out;
	if (attach_configured(&ctx) < 0)
		goto out;
	enf_adopt_links(&ctx);
	struct kl_server *srv = open_control(&cfg);
	if (!srv)
		goto out;
	struct kl_sandbox_opts so = { .user = NULL };
	if (kl_sandbox_enter(KL_ROLE_ENFORCER, &so) < 0) {
		kl_server_close(srv);
		goto out;
	}
	rc = run_loop(&ctx, srv) < 0 ? 1 : 0;
	kl_server_close(srv);
out:
	enf_close(&ctx, cfg.detach_on_exit && rc == 0);
	return rc;
}
