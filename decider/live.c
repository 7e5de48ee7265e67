/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-decider live operation: telemetry frames in (RUN_DIR/decider/telemetry.sock),
 * decisions out (RUN_DIR/enforcer/enforcer-decider.sock, or the log in dry-run),
 * klctl served on RUN_DIR/decider/decider.sock. As root it opens its sockets and
 * reads its files, then becomes --user with no capabilities.
 *
 * Ticks follow the sensor: one per TELEMETRY frame, on the frame's clock,
 * so the live decider and a replay of the same recording decide alike.
 * When no frame comes for three intervals the decider keeps ticking on
 * its own clock with no sources, so elevated levels can step down while
 * the sensor is away (an absent sensor must not freeze a BLOCK in place).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/duration.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/prom.h"
#include "common/safefile.h"
#include "common/signals.h"
#include "common/status.h"
#include "decider/control.h"
#include "decider/decider.h"
#include "decider/enfsink.h"
#include "decider/newsrc.h"
#include "ipc/chan.h"
#include "ipc/frames.h"
#include "ipc/tickasm.h"
#include "common/grow.h"
#include "ipc/stream.h"
#include "ipc/violation.h"
#include "sandbox/sandbox.h"

#define ENFORCER_TIMEOUT_MS 2000
#define IDLE_AFTER_INTERVALS 3
#define FRAMES_PER_WAKEUP 64
#define REQUESTS_PER_WAKEUP 16
#define VIOL_MAX 4096 /* violations kept for one tick */

static volatile sig_atomic_t stop_signal;

static void on_usr1(int sig)
{
	(void)sig;
	dec_request_reload();
}

static volatile sig_atomic_t hup_signal;

struct live {
	const struct dec_config *cfg;
	struct dec_config *run_cfg; /* the same, for SIGHUP's live settings */
	int argc;                  /* the command line, parsed again on SIGHUP */
	char **argv;
	struct dec_decider d;
	bool have_d;
	struct dec_sink *sink;
	struct kl_enf_link *link;     /* the sink's (it closes it); NULL in a dry run */
	struct dec_newsrc newsrc;
	int64_t newsrc_last_warn;
	struct kl_stream_rx *rx;
	struct kl_stream_rx *vrx;     /* graph violations from kl-graphd */
	struct dec_violation *viol;    /* received since the last tick */
	size_t nviol;
	uint64_t viol_dropped, viol_refused;
	struct kl_violation_rec *vrec; /* one decoded batch */
	struct kl_server *srv;
	int64_t interval_ms;
	int64_t last_t;          /* tick clock of the last tick */
	int64_t last_frame_mono; /* CLOCK_MONOTONIC of the last frame (or start) */
	int64_t last_idle_mono;
	bool idle;
	struct kl_tickasm tasm;  /* telemetry frames -> whole ticks */
	uint64_t idle_ticks;
	struct dec_metrics *src;
	size_t src_cap;
	uint64_t totals[KL_TELEM_MAX_TOTALS];
	struct kl_prom prom;
	int64_t prom_warned; /* CLOCK_MONOTONIC ms of the last write failure logged */
};

/* Users and groups. The users must exist when named explicitly; the
 * defaults may be missing (tests, hosts without the sysusers entries). */

static bool knob_default(const struct dec_config *cfg, const char *name)
{
	return cfg->r.o[kl_knob_index(&dec_knobset, name)].kind == KL_L_DEFAULT;
}

static int resolve_users(const struct dec_config *cfg, struct kl_who *w)
{
	if (kl_who_resolve(w, "kl-decider", cfg->v.user, cfg->v.sensor_user,
			   !knob_default(cfg, "sensor-user"), "telemetry.sock") < 0)
		return -1;
	/* From here on, state, feedback and whitelist must belong to root,
	 * us or the user we become (safefile.h). */
	kl_safe_set_user(w->uid);
	return 0;
}

/* The receipts' trail, before the drop: the key and the directory are
 * created for the user we become. An empty --audit-dir turns it off. */
static int open_audit(const struct dec_config *cfg, const struct kl_who *w, struct dec_decider *d)
{
	char err[512];
	if (cfg->v.audit_dir[0] == '\0') {
		kl_warn("audit trail off (--audit-dir=)");
		return 0;
	}
	struct kl_audit_opts o = { .dir = cfg->v.audit_dir, .key = cfg->v.audit_key,
				   .proc = "decider", .batch = true,
				   .uid = w->root ? w->uid : (uid_t)-1,
				   .gid = w->root ? w->gid : (gid_t)-1 };
	struct kl_audit *a = kl_audit_open(&o, err, sizeof(err));
	if (a == NULL) {
		kl_error("%s", err);
		return -1;
	}
	d->audit = dec_audit_new(a, cfg->profile->name);
	if (d->audit == NULL) {
		kl_audit_close(a);
		kl_error("out of memory");
		return -1;
	}
	return 0;
}

static int sock_path(const struct dec_config *cfg, enum kl_role role, const char *name, char *buf,
		     size_t len)
{
	return kl_who_sock_path(cfg->v.run_dir, role, name, buf, len);
}

static int open_sockets(struct live *L, const struct kl_who *w)
{
	const struct dec_config *cfg = L->cfg;
	char path[PATH_MAX], err[512];

	/* No frame larger than the configured source maps can produce (the
	 * whole tick is bounded by the assembler). */
	if (kl_who_run_dir(w, KL_ROLE_DECIDER, cfg->v.run_dir) < 0 ||
	    kl_who_listen_sensor(w, KL_ROLE_DECIDER, cfg->v.run_dir, "telemetry.sock",
				 kl_telem_msg_max((uint32_t)cfg->v.sensor_max_sources), &L->rx) < 0)
		return -1;

	/* Graph violations: kl-graphd's user (if it exists), root, ourselves. */
	uid_t gallowed[2];
	size_t gn = 0;
	struct passwd *gpw = getpwnam(cfg->v.graph_user);
	if (gpw == NULL && !knob_default(cfg, "graph-user")) {
		kl_error("--graph-user %s: no such user", L->cfg->v.graph_user);
		return -1;
	}
	if (gpw)
		gallowed[gn++] = gpw->pw_uid;
	gallowed[gn++] = w->uid;
	if (sock_path(cfg, KL_ROLE_DECIDER, "violations.sock", path, sizeof(path)) < 0)
		return -1;
	struct kl_stream_opts vo = {
		.path = path,
		.self = KL_ROLE_DECIDER,
		.peer_role = KL_ROLE_GRAPHD,
		.mode = 0660,
		.gid = gpw ? gpw->pw_gid : w->root ? w->gid : (gid_t)-1,
		.allowed_uids = gallowed,
		.n_allowed_uids = gn,
		.allowed_gid = (gid_t)-1,
		/* The batch limit graphd splits by, nothing more. */
		.max_msg = KL_MSG_HDR_LEN + kl_violations_len(KL_VIOLATIONS_MAX),
		.owner = w->root ? w->uid : 0,
	};
	if (kl_stream_listen(&L->vrx, &vo, err, sizeof(err)) < 0) {
		kl_error("violations socket: %s", err);
		return -1;
	}
	kl_info("listening on %s for kl-graphd", path);

	if (kl_who_listen_ctl(w, KL_ROLE_DECIDER, cfg->v.run_dir, "decider.sock", &L->srv) < 0)
		return -1;
	return kl_who_run_dir_done(w, KL_ROLE_DECIDER, cfg->v.run_dir);
}

/* After the drop: the files the decider re-reads (and writes) must still be
 * reachable, or reloads and `klctl forgive` would fail much later. */
/* state.json is replaced by rename: the directory must be writable by
 * the user the decider runs as. Not fatal: deciding matters more, and the
 * learning goes on in memory. */
static int L_state_dir_check(const struct dec_dcfg *v)
{
	char dir[PATH_MAX];

	if (!v->autotune || v->state_file[0] == '\0')
		return 0;
	kl_path_dir(v->state_file, dir, sizeof(dir));
	if (access(dir, W_OK | X_OK) < 0)
		kl_warn("state directory %s is not writable as uid %u (%s): what autotune learns "
			"will not survive a restart until it is",
			dir, (unsigned)getuid(), strerror(errno));
	return 0;
}

static int check_files_after_drop(const struct dec_config *cfg)
{
	const struct dec_dcfg *v = &cfg->v;
	int bad = 0;

	if (v->whitelist[0] != '\0' && access(v->whitelist, R_OK) < 0 && errno != ENOENT) {
		kl_error("whitelist %s is not readable as uid %u: %s (it is reloaded when it "
			 "changes)",
			 v->whitelist, (unsigned)getuid(), strerror(errno));
		bad++;
	}
	if (v->feedback_file[0] != '\0') {
		char dir[PATH_MAX];
		kl_path_dir(v->feedback_file, dir, sizeof(dir));
		if (access(v->feedback_file, R_OK) < 0 && errno != ENOENT) {
			kl_error("feedback file %s is not readable as uid %u: %s",
				 v->feedback_file, (unsigned)getuid(), strerror(errno));
			bad++;
		} else if (access(dir, W_OK | X_OK) < 0) {
			kl_warn("feedback directory %s is not writable as uid %u (%s): `klctl forgive` "
				"will fail until it is",
				dir, (unsigned)getuid(), strerror(errno));
		}
	}
	if (L_state_dir_check(v) < 0)
		bad++;
	return bad ? -1 : 0;
}

/* DESIGN §9: the configuration read-only (re-read when it changes), the
 * directories of state.json and the feedback file (replaced by rename)
 * and the sockets' directory read-write; nothing else. */
static void sandbox_paths(const struct dec_config *cfg, const char *user,
			  struct kl_sandbox_opts *so)
{
	static char run[PATH_MAX];
	const struct dec_dcfg *v = &cfg->v;

	so->user = user;
	for (size_t i = 0; i < sizeof(cfg->r.files) / sizeof(cfg->r.files[0]); i++)
		kl_sandbox_ro_file(so, cfg->r.files[i]);
	kl_sandbox_ro_file(so, v->pdp_config);
	kl_sandbox_ro_file(so, v->policy);
	kl_sandbox_ro_file(so, v->policy_pubkey);
	kl_sandbox_ro_file(so, v->whitelist);
	if (v->autotune)
		kl_sandbox_rw_parent(so, v->state_file);
	kl_sandbox_rw_parent(so, v->feedback_file);
	kl_sandbox_rw_parent(so, v->baseline_file);
	kl_sandbox_rw(so, v->audit_dir);
	kl_sandbox_rw_parent(so, v->metrics_file);
	kl_sandbox_rw(so, kl_sandbox_run_dir(v->run_dir, KL_ROLE_DECIDER, run, sizeof(run)));
}

/* A spoofed flood (decider/newsrc.h): ask kl-enforcer for the aggregate
 * new-source limit while new sources/s stay above the trigger. */
static void newsrc_tick(struct live *L, const struct dec_tick *t)
{
	const struct dec_dcfg *v = &L->cfg->v;
	struct dec_newsrc_cfg c = { .trigger = v->new_source_trigger,
				   .rate = (uint32_t)v->new_source_rate,
				   .burst = (uint32_t)v->new_source_burst,
				   .ttl_ms = v->new_source_ttl / 1000000 };
	bool started, ended;
	double per_s;

	if (t->totals == NULL || t->ntotals <= KL_T_SRC_UNADMITTED || t->elapsed_ms <= 0)
		return;
	per_s = (double)t->totals[KL_T_SRC_UNADMITTED] * 1000.0 / (double)t->elapsed_ms;
	int64_t now = kl_clock_ms(CLOCK_MONOTONIC);
	bool ask = dec_newsrc_step(&L->newsrc, &c, per_s, now, &started, &ended);
	if (started)
		kl_warn("spoofed flood: %.0f new sources/s (trigger %.0f)%s", per_s, c.trigger,
			L->link ? "" : "; dry run: no limit asked");
	if (ended)
		kl_info("spoofed flood over: %.0f new sources/s; the new-source limit lapses on its own",
			per_s);
	if (!ask || L->link == NULL)
		return;
	struct kl_newsrc_limit req = { .rate_pps = c.rate, .burst = c.burst,
				       .ttl_ms = (uint64_t)c.ttl_ms };
	uint8_t p[KL_NEWSRC_LIMIT_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	char err[256];
	kl_newsrc_limit_encode(&req, p);
	if (L->link->call(L->link, KL_MSG_NEWSRC_LIMIT, p, sizeof(p), &reply, &rbuf, err,
			  sizeof(err)) < 0) {
		/* err says why */
	} else if (reply.hdr.type != KL_MSG_RESULT) {
		snprintf(err, sizeof(err), "unexpected %s", kl_msg_type_name(reply.hdr.type));
	} else {
		struct kl_result r;
		if (kl_result_decode(reply.payload, reply.payload_len, &r, err, sizeof(err)) == 0) {
			if (r.status == KL_OK) {
				dec_newsrc_granted(&L->newsrc, &c, now);
				kl_info("new-source limit: %u pps, burst %u for %lld ms (%.0f new "
					"sources/s)",
					c.rate, c.burst, (long long)c.ttl_ms, per_s);
				free(rbuf);
				return;
			}
			snprintf(err, sizeof(err), "%s: %.*s", kl_status_name(r.status),
				 (int)r.text_len, r.text);
		}
	}
	free(rbuf);
	if (now - L->newsrc_last_warn >= 10000) {
		kl_warn("new-source limit not set: %s", err);
		L->newsrc_last_warn = now;
	}
}

/* --metrics-file, every tick: the engine's numbers and the telemetry
 * link's. A failed write is logged once a minute; the daemon goes on. */
static void write_metrics(struct live *L)
{
	const char *path = L->cfg->v.metrics_file;
	char err[512];
	struct timespec now;
	if (!path || !path[0])
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	dec_prom(&L->d, &L->prom);
	kl_prom_add(&L->prom, "kernloom_decider_frames_total", "counter",
		    "Telemetry frames received from kl-sensor.", NULL, (double)L->tasm.st.frames);
	kl_prom_add(&L->prom, "kernloom_decider_bad_frames_total", "counter",
		    "Telemetry frames refused (and ticks above the configured maps).", NULL,
		    (double)(L->tasm.st.bad + L->tasm.st.oversized));
	kl_prom_add(&L->prom, "kernloom_decider_dropped_ticks_total", "counter",
		    "Sensor ticks dropped because some of their frames never arrived.", NULL,
		    (double)L->tasm.st.dropped);
	kl_prom_add(&L->prom, "kernloom_decider_missed_ticks_total", "counter",
		    "Sensor ticks that never arrived whole (sequence gaps).", NULL,
		    (double)L->tasm.st.missed);
	kl_prom_add(&L->prom, "kernloom_decider_last_tick_timestamp_seconds", "gauge",
		    "Wall-clock time of the last tick.", NULL,
		    (double)now.tv_sec + (double)now.tv_nsec / 1e9);
	if (kl_prom_write(&L->prom, path, err, sizeof(err)) < 0) {
		struct timespec m;
		clock_gettime(CLOCK_MONOTONIC, &m);
		int64_t ms = (int64_t)m.tv_sec * 1000 + m.tv_nsec / 1000000;
		if (L->prom_warned == 0 || ms - L->prom_warned >= 60000) {
			kl_warn("metrics: %s", err);
			L->prom_warned = ms;
		}
	}
}

static int tick_now(struct live *L, struct dec_tick *t)
{
	struct kl_errs errs = { 0 };
	newsrc_tick(L, t);
	/* Violations arrive between frames; each counts in the next tick. */
	t->viol = L->viol;
	t->nviol = L->nviol;
	int rc = dec_run_tick(&L->d, t, &errs);
	L->nviol = 0;
	write_metrics(L);

	for (size_t i = 0; i < errs.n; i++)
		kl_error("%s", errs.v[i]);
	kl_errs_free(&errs);
	L->last_t = t->t_ms;
	return rc;
}

static int on_frame(struct live *L, const struct kl_stream_msg *m)
{
	const struct kl_telem_view *v = &L->tasm.telem;
	struct dec_tick t;
	int rc = kl_tickasm_intake(&L->tasm, &m->msg, (int)m->peer_pid, kl_clock_ms(CLOCK_MONOTONIC));

	if (rc <= 0)
		return rc;
	struct dec_metrics *src = kl_grow_to(L->src, v->h.n_records, &L->src_cap, sizeof(*src), 64);
	if (src == NULL) {
		kl_error("out of memory for a tick of %u sources", v->h.n_records);
		return -1;
	}
	L->src = src;
	if (L->idle) {
		kl_info("telemetry is back after %llu ticks without it",
			(unsigned long long)L->idle_ticks);
		L->idle = false;
	}
	L->last_frame_mono = kl_clock_ms(CLOCK_MONOTONIC);
	memcpy(L->totals, v->h.totals, sizeof(L->totals));
	memset(&t, 0, sizeof(t));
	t.t_ms = dec_frame_tick_ms(v->h.t_ns, L->last_t);
	t.elapsed_ms = (int64_t)(v->h.elapsed_ns / 1000000u);
	t.src = L->src;
	t.nsrc = dec_metrics_from_telem(v, L->src);
	t.totals = L->totals;
	t.ntotals = v->h.n_totals;
	t.where = "telemetry";
	return tick_now(L, &t);
}

/* No frame for IDLE_AFTER_INTERVALS: tick with no sources, once per interval. */
static int maybe_idle_tick(struct live *L)
{
	int64_t mono = kl_clock_ms(CLOCK_MONOTONIC);
	struct dec_tick t;

	if (mono - L->last_frame_mono < IDLE_AFTER_INTERVALS * L->interval_ms ||
	    (L->idle && mono - L->last_idle_mono < L->interval_ms))
		return 0;
	if (!L->idle) {
		char d[48];
		kl_warn("no telemetry for %s (is kl-sensor running?); ticking without sources so "
			"levels can step down",
			kl_duration_format((uint64_t)(mono - L->last_frame_mono) * 1000000ull, d,
					   sizeof(d)));
		L->idle = true;
		L->idle_ticks = 0;
	}
	L->last_idle_mono = mono;
	L->idle_ticks++;
	memset(&t, 0, sizeof(t));
	int64_t rt = kl_clock_ms(CLOCK_REALTIME);
	t.t_ms = L->last_t != DEC_T_NEVER && rt <= L->last_t ? L->last_t + 1 : rt;
	t.elapsed_ms = L->interval_ms;
	t.where = "idle";
	return tick_now(L, &t);
}

/* STATUS: what every daemon says about itself (common/status.h): frames
 * in are telemetry frames, frames out DECISIONS batches the enforcer
 * answered; then the sources by level and the enforcer link. */
static void status_answer(struct live *L, int64_t now, struct dec_ctl_answer *a)
{
	const struct dec_dcfg *v = &L->cfg->v;
	const struct dec_enf_stats *es = L->link != NULL ? dec_sink_enforcer_stats(L->sink) : NULL;
	const struct dec_engine_stats *st = dec_engine_stats(L->d.eng);
	struct kl_daemon_status ds = {
		.name = "kl-decider", .enforcing = !v->dry_run,
		.mode = v->dry_run ? "dry-run" : "enforcing", .ticks = L->d.ticks,
		.last_tick_ms = L->last_t == DEC_T_NEVER ? KL_T_NONE : L->last_t,
		.interval_ms = L->interval_ms, .frames_in = L->tasm.st.frames,
		.frames_out = es != NULL ? es->batches : 0,
	};
	json_t *doc = json_pack("{s:o, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:b}", "daemon",
				kl_daemon_status_json(&ds, now), "profile", L->cfg->profile->name,
				"sources", "tracked", (json_int_t)st->tracked, "observe",
				(json_int_t)st->per_level[DEC_LVL_OBSERVE], "soft",
				(json_int_t)st->per_level[DEC_LVL_SOFT], "hard",
				(json_int_t)st->per_level[DEC_LVL_HARD], "block",
				(json_int_t)st->per_level[DEC_LVL_BLOCK], "enforcer_up",
				es != NULL && es->up);
	memset(a, 0, sizeof(*a));
	a->json = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	a->status = a->json != NULL ? KL_OK : KL_ERR_FAILED;
	snprintf(a->text, sizeof(a->text),
		 "kl-decider %s: %s, profile %s, %llu ticks, %llu frames in, %llu batches out, "
		 "%zu sources tracked",
		 KL_VERSION, ds.mode, L->cfg->profile->name, (unsigned long long)ds.ticks,
		 (unsigned long long)ds.frames_in, (unsigned long long)ds.frames_out, st->tracked);
	json_decref(doc);
}

static void on_request(void *ctx, struct kl_request *req)
{
	struct live *L = ctx;
	struct kl_ctl_req r;
	struct dec_ctl_answer a;
	char err[256];

	if (req->msg.hdr.type != KL_MSG_CONTROL) {
		kl_server_reply_result(L->srv, req, KL_ERR_INVALID, "kl-decider expects CONTROL",
				       NULL);
		return;
	}
	if (kl_ctl_req_decode(req->msg.payload, req->msg.payload_len, &r, err, sizeof(err)) < 0) {
		kl_warn("control request from uid %u: %s", (unsigned)req->peer_uid, err);
		kl_server_reply_result(L->srv, req, KL_ERR_INVALID, err, NULL);
		return;
	}
	int64_t now = kl_clock_ms(CLOCK_REALTIME);
	if (L->last_t != DEC_T_NEVER && now < L->last_t)
		now = L->last_t;
	if (r.cmd == KL_CTL_STATUS)
		status_answer(L, kl_unix_ms(), &a);
	else
		dec_control(&L->d, &r, req->peer_uid, now, &a);
	kl_server_reply_result(L->srv, req, a.status, a.text, a.json);
	dec_ctl_answer_free(&a);
}

/* A VIOLATION batch from kl-graphd (the stream already checked the peer's
 * uid, its HELLO and that graphd may send this type to us). A batch holds
 * at most KL_VIOLATIONS_MAX records, the limit graphd splits by. */
static void on_violations(struct live *L, const struct kl_stream_msg *m)
{
	uint32_t n = 0;
	char err[256];

	if (kl_violations_decode(m->msg.payload, m->msg.payload_len, L->vrec, KL_VIOLATIONS_MAX, &n,
				 err, sizeof(err)) < 0) {
		L->viol_refused++;
		kl_warn("violations from pid %d refused (%llu batches so far): %s", (int)m->peer_pid,
			(unsigned long long)L->viol_refused, err);
		return;
	}
	size_t lost = dec_violations_take(L->viol, &L->nviol, VIOL_MAX, L->vrec, n);
	if (lost > 0) {
		L->viol_dropped += lost;
		kl_warn("violations: %zu dropped (more than %d per tick; %llu so far)", lost, VIOL_MAX,
			(unsigned long long)L->viol_dropped);
	}
}

static int frame_cb(void *L, const struct kl_stream_msg *m)
{
	return on_frame(L, m);
}

/* APPROVED from kl-graphd: the operator approved a source, so its
 * violations still waiting for the tick are stale and whatever it is held
 * at is released at the next tick. */
static void on_approved(struct live *L, const struct kl_stream_msg *m)
{
	struct kl_addr a;
	char err[256], ip[KL_ADDR_STRLEN];

	if (kl_approved_decode(m->msg.payload, m->msg.payload_len, &a, err, sizeof(err)) < 0) {
		L->viol_refused++;
		kl_warn("APPROVED from pid %d refused: %s", (int)m->peer_pid, err);
		return;
	}
	dec_violations_drop(L->viol, &L->nviol, &a);
	if (dec_approved(&L->d, &a) < 0)
		kl_warn("APPROVED %s: more than %d approvals in one tick; it lapses at its TTL",
			kl_addr_format(&a, ip, sizeof(ip)), DEC_APPROVED_MAX);
}

static int violations_cb(void *L, const struct kl_stream_msg *m)
{
	if (m->msg.hdr.type == KL_MSG_APPROVED)
		on_approved(L, m);
	else
		on_violations(L, m);
	return 0;
}

/* SIGHUP: the command line and the files again, validated as at start. A
 * bad file keeps the running configuration; else the live settings take
 * effect from the next tick (the engine keeps its tuned triggers) and the
 * others are logged as needing a restart. */
static void reload_config(struct live *L)
{
	struct dec_config fresh;
	struct kl_errs errs = { 0 };
	enum kl_cli_action act;

	dec_load_config(L->argc, L->argv, &fresh, &act, NULL, &errs);
	if (errs.n > 0) {
		kl_reload_refused(&errs);
	} else {
		size_t n = kl_reload_apply(&L->run_cfg->r, &fresh.r);
		dec_config_changed(&L->d);
		kl_log_init("kl-decider", (enum kl_log_level)L->cfg->v.log_level);
		kl_reload_done(n);
	}
	kl_errs_free(&errs);
	dec_config_free(&fresh);
}

static int run_loop(struct live *L)
{
	int rx_fd = kl_stream_fd(L->rx);
	int srv_fd = kl_server_fd(L->srv);
	int vrx_fd = L->vrx ? kl_stream_fd(L->vrx) : -1;

	if (rx_fd < 0)
		return -1;
	kl_notify_ready("serving: sockets listening");
	while (!stop_signal) {
		struct pollfd pf[3];
		if (hup_signal) {
			hup_signal = 0;
			reload_config(L);
		}
		kl_notify_watchdog();
		nfds_t n = 0;
		int64_t mono = kl_clock_ms(CLOCK_MONOTONIC);
		int64_t due = L->idle ? L->last_idle_mono + L->interval_ms
				      : L->last_frame_mono + IDLE_AFTER_INTERVALS * L->interval_ms;
		int64_t wait = due - mono;

		/* Wake at least once a second: the control server checks its
		 * listener from kl_server_recv. */
		if (wait > 1000)
			wait = 1000;
		if (wait < 0)
			wait = 0;
		pf[n++] = (struct pollfd){ .fd = rx_fd, .events = POLLIN };
		if (srv_fd >= 0)
			pf[n++] = (struct pollfd){ .fd = srv_fd, .events = POLLIN };
		if (vrx_fd >= 0)
			pf[n++] = (struct pollfd){ .fd = vrx_fd, .events = POLLIN };
		if (poll(pf, n, (int)wait) < 0 && errno != EINTR) {
			kl_error("poll: %s", strerror(errno));
			return -1;
		}
		int rc = kl_stream_drain(L->rx, FRAMES_PER_WAKEUP, &stop_signal, frame_cb, L);
		if (rc == KL_STREAM_CLOSED)
			kl_error("telemetry socket closed");
		if (rc < 0)
			return -1;
		if (L->vrx != NULL && kl_stream_drain(L->vrx, FRAMES_PER_WAKEUP, NULL, violations_cb,
						      L) == KL_STREAM_CLOSED) {
			kl_error("violations socket closed; graph violations are ignored "
				 "until kl-decider restarts");
			kl_stream_close(L->vrx);
			L->vrx = NULL;
			vrx_fd = -1;
		}
		/* Deciding matters more than klctl: keep going without it. */
		if (L->srv != NULL &&
		    kl_server_serve_or_close(&L->srv, REQUESTS_PER_WAKEUP, on_request, L,
					     "control socket failed; klctl sources/forgive are "
					     "unavailable until kl-decider restarts (SIGUSR1 and the "
					     "feedback file still work)") < 0)
			srv_fd = -1;
		if (maybe_idle_tick(L) < 0)
			return -1;
	}
	return 0;
}

/* Where decisions go: the enforcer's decider link, or the log in a dry
 * run. In an enforcing run it reconciles with the enforcer before the first
 * tick, so the engine starts from what is enforced; if the enforcer is not
 * up yet, the first tick that reaches it does this. */
static int open_sink(struct live *L, const struct dec_config *cfg)
{
	if (cfg->v.dry_run) {
		L->sink = dec_sink_print_new(NULL, false, true);
	} else {
		char path[PATH_MAX];
		struct kl_enf_link *link;
		if (sock_path(cfg, KL_ROLE_ENFORCER, "enforcer-decider.sock", path, sizeof(path)) < 0)
			return -1;
		link = kl_enf_link_client(path, KL_ROLE_DECIDER, ENFORCER_TIMEOUT_MS);
		L->link = link;
		L->sink = link != NULL ? dec_sink_enforcer_new(link, L->d.eng, dec_exempt_cb, &L->d.ex)
				       : NULL;
		if (link != NULL && L->sink == NULL)
			link->close(link);
	}
	if (L->sink == NULL) {
		kl_error("out of memory");
		return -1;
	}
	L->d.sink = L->sink;
	if (!cfg->v.dry_run) {
		int64_t now = kl_clock_ms(CLOCK_REALTIME);

		L->d.ex.now = now;
		dec_sink_enforcer_sync(L->sink, now);
	}
	return 0;
}

int dec_run_live(struct dec_config *cfg, int argc, char **argv)
{
	struct live L;
	struct kl_who w;
	struct kl_errs errs = { 0 };
	struct sigaction sa;
	uint64_t seed = 0;
	int rc = 1;

	memset(&L, 0, sizeof(L));
	L.cfg = cfg;
	L.run_cfg = cfg;
	L.argc = argc;
	L.argv = argv;
	L.interval_ms = cfg->v.interval / 1000000;
	if (L.interval_ms < 1)
		L.interval_ms = 1;
	L.last_t = DEC_T_NEVER;
	kl_tickasm_init(&L.tasm, KL_MSG_TELEMETRY,
			kl_telem_tick_max((uint32_t)cfg->v.sensor_max_sources));
	L.viol = calloc(VIOL_MAX, sizeof(*L.viol));
	L.vrec = calloc(KL_VIOLATIONS_MAX, sizeof(*L.vrec));
	if (!L.viol || !L.vrec) {
		free(L.viol);
		free(L.vrec);
		kl_error("out of memory");
		return 1;
	}

	kl_signals_init(&stop_signal, &hup_signal);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;

	if (resolve_users(cfg, &w) < 0 || kl_sandbox_prepare(KL_ROLE_DECIDER, NULL) < 0)
		return 1;
	if (dec_init(&L.d, cfg, NULL, seed, true) < 0) {
		kl_error("out of memory");
		return 1;
	}
	L.have_d = true;
	if (open_audit(cfg, &w, &L.d) < 0)
		goto out;
	int64_t now = kl_clock_ms(CLOCK_REALTIME);
	if (dec_start(&L.d, now, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			kl_error("%s", errs.v[i]);
		kl_errs_free(&errs);
		goto out;
	}
	if (open_sockets(&L, &w) < 0)
		goto out;

	static struct kl_sandbox_opts so;
	sandbox_paths(cfg, w.user, &so);
	if (kl_sandbox_enter(KL_ROLE_DECIDER, &so) < 0)
		goto out;
	if (w.root && (geteuid() == 0 || getuid() == 0)) {
		kl_error("still uid 0 after the sandbox; refusing to run");
		goto out;
	}
	if (check_files_after_drop(cfg) < 0)
		goto out;
	/* Dialed only now, so that the enforcer's peer check and its audit
	 * trail see the user we became, never root. */
	if (open_sink(&L, cfg) < 0)
		goto out;

	char ivl[32];
	kl_info("deciding every %s: profile %s, dry_run=%s, top %lld, telemetry %s/decider/telemetry.sock, "
		"decisions %s",
		kl_duration_format((uint64_t)cfg->v.interval, ivl, sizeof(ivl)), cfg->profile->name,
		cfg->v.dry_run ? "true" : "false", (long long)cfg->v.top, cfg->v.run_dir,
		cfg->v.dry_run ? "logged only (--dry-run)" : "to the enforcer");
	L.last_frame_mono = kl_clock_ms(CLOCK_MONOTONIC);
	rc = run_loop(&L) < 0 ? 1 : 0;
	kl_notify_stopping();
	int64_t end = kl_clock_ms(CLOCK_REALTIME);
	dec_checkpoint(&L.d, L.last_t != DEC_T_NEVER && end < L.last_t ? L.last_t : end,
			      "exit");
	kl_info("stopping: %llu frames, %llu ticks, %llu level changes, %llu ticks missed, %llu "
		"dropped incomplete, %llu bad",
		(unsigned long long)L.tasm.st.frames, (unsigned long long)L.d.ticks,
		(unsigned long long)L.d.changes_total, (unsigned long long)L.tasm.st.missed,
		(unsigned long long)L.tasm.st.dropped,
		(unsigned long long)(L.tasm.st.bad + L.tasm.st.oversized));
	if (!cfg->v.dry_run) {
		const struct dec_enf_stats *st = dec_sink_enforcer_stats(L.sink);
		kl_info("enforcer: %llu batches, %llu records, %llu applied, %llu refused, %llu "
			"retried, %llu adopted, %zu pending",
			(unsigned long long)st->batches, (unsigned long long)st->sent,
			(unsigned long long)st->applied, (unsigned long long)st->refused,
			(unsigned long long)st->retry, (unsigned long long)st->adopted, st->pending);
	}
out:
	kl_errs_free(&errs);
	kl_server_close(L.srv);
	kl_stream_close(L.rx);
	if (L.vrx)
		kl_stream_close(L.vrx);
	free(L.viol);
	free(L.vrec);
	if (L.sink != NULL)
		L.sink->close(L.sink);
	if (L.have_d)
		dec_free(&L.d);
	free(L.src);
	kl_tickasm_free(&L.tasm);
	kl_prom_free(&L.prom);
	return rc;
}
