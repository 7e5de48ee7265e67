/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-graphd live: flow frames in (kl-sensor, flows.sock), one learner tick
 * and one database transaction per frame, edge rules out (kl-enforcer,
 * enforcer-graphd.sock), violations out (kl-decider, violations.sock),
 * operator commands in (klctl, graphd.sock).
 *
 * Suspicious sources: the FLOWS frames carry no drop counters and the
 * TELEMETRY stream goes to the decider alone, so live the graph excludes
 * only what it knows itself: sources that violated (in the frozen modes)
 * and the configured CIDRs. Replay also honours the telemetry's rate-limit
 * and deny drops (replay.h). See docs/graph.md.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "common/status.h"
#include "common/safefile.h"
#include "common/signals.h"
#include "graphd/commands.h"
#include "graphd/push.h"
#include "graphd/replay.h"
#include "graphd/run.h"
#include "graphd/store.h"
#include "ipc/chan.h"
#include "ipc/enflink.h"
#include "ipc/enforce.h"
#include "ipc/frames.h"
#include "ipc/tickasm.h"
#include "common/grow.h"
#include "ipc/msg.h"
#include "ipc/stream.h"
#include "ipc/violation.h"
#include "sandbox/sandbox.h"

#define ENFORCER_TIMEOUT_MS 2000
#define FRAMES_PER_WAKEUP 16
#define REQUESTS_PER_WAKEUP 8
#define LOG_EVERY_MS 60000
#define VIOL_LOG_PER_TICK 20
#define VIOL_ROWS_DEFAULT 1000
#define PENDING_VIOL_MAX 100000

static volatile sig_atomic_t stop_signal, reload_signal;


struct live {
	struct gr_opts *o;
	int argc;           /* the command line, parsed again on SIGHUP */
	char **argv;
	struct kl_prom prom;
	time_t prom_warned;
	struct gr_graph g;
	bool have_g;
	struct gr_store *st;
	struct kl_stream_rx *rx;
	struct kl_server *srv;
	struct kl_enf_link *enf;
	struct kl_stream_tx *vtx;
	struct gr_push_batch pb;
	char enf_path[PATH_MAX];
	uint64_t seq, ticks, violations, viol_sent, viol_dropped;
	uint64_t rules_sent, rules_ok, rules_refused;
	struct kl_tickasm tasm;   /* flow frames -> whole ticks */
	int64_t last_t;           /* graph time of the last tick */
	int64_t last_tick_mono;
	int64_t last_push_mono;
	int64_t enf_fail_log, store_fail_log, unpushable_log;
	bool enf_up;
	struct gr_obs *obs;
	size_t obs_cap;
	struct kl_addr *susp;     /* sources of this frame's restricted flows */
	size_t nsusp, susp_cap;
	struct kl_violation_rec *vrec;
	size_t vrec_cap;
	struct gr_viol *pend; /* violations not in the database yet */
	size_t npend, pend_cap;
	struct kl_audit *audit; /* NULL: no audit trail */
};


/* ---- users, threads, sockets ---- */

static int resolve_users(const struct gr_opts *o, struct kl_who *w)
{
	if (kl_who_resolve(w, "kl-graphd", o->user, o->sensor_user,
			   strcmp(o->sensor_user, GR_SENSOR_USER_DEFAULT) != 0, "flows.sock") < 0)
		return -1;
	kl_safe_set_user(w->uid); /* the database files may belong to it */
	return 0;
}

/*
 * The database lives in a directory the graph user writes, and SQLite opens
 * its files (the database, -wal, -shm, a migration backup) by path. Started
 * as root, kl-graphd first checks the files that exist and hands root-owned
 * ones over through their descriptors (gr_store_adopt), then lets SQLite
 * open and read them with the graph user's file system identity: a link
 * planted there reaches only what that user could reach anyway, and new
 * files are the user's from the start. Root never chowns by path.
 */
static int open_store(struct live *L, const struct kl_who *w, char *err, size_t errlen)
{
	struct gr_store_opts so = { .path = L->o->db, .busy_ms = L->o->busy_ms };
	struct kl_fs_as fs = { 0 };
	int rc = -1;

	if (w->root && (gr_store_adopt(L->o->db, w->uid, w->gid, err, errlen) < 0 ||
			kl_safe_fs_become(&fs, w->uid, w->gid, err, errlen) < 0))
		return -1;
	if (gr_store_open(&L->st, &so, err, errlen) < 0)
		goto out;
	if (gr_store_note(L->st)[0] != '\0')
		kl_info("%s", gr_store_note(L->st));
	if (gr_init(&L->g, &L->o->p) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	L->have_g = true;
	rc = gr_store_load(L->st, &L->g, err, errlen);
	if (rc == 0 && gr_store_refused(L->st)[0] != '\0')
		kl_error("edge baselines refused, starting without them: %s",
			 gr_store_refused(L->st));
out:
	kl_safe_fs_restore(&fs);
	return rc;
}


static int sock_path(const struct gr_opts *o, enum kl_role role, const char *name, char *buf,
		     size_t len)
{
	return kl_who_sock_path(o->run_dir, role, name, buf, len);
}

/* Our listeners, made before the drop (the run dir and the sockets' group
 * need root). */
static int open_sockets(struct live *L, const struct kl_who *w)
{
	const struct gr_opts *o = L->o;

	/* No frame larger than the configured flow maps can produce. */
	if (kl_who_run_dir(w, KL_ROLE_GRAPHD, o->run_dir) < 0 ||
	    kl_who_listen_sensor(w, KL_ROLE_GRAPHD, o->run_dir, "flows.sock",
				 kl_flows_msg_max(o->sensor_max_flows), &L->rx) < 0 ||
	    kl_who_listen_ctl(w, KL_ROLE_GRAPHD, o->run_dir, "graphd.sock", &L->srv) < 0 ||
	    kl_who_run_dir_done(w, KL_ROLE_GRAPHD, o->run_dir) < 0)
		return -1;
	return 0;
}

/* The enforcer and decider links, dialed after the drop, so that each
 * peer's check and audit trail see the user we became, never root. */
static int open_links(struct live *L)
{
	const struct gr_opts *o = L->o;
	char path[PATH_MAX], err[512];

	if (sock_path(o, KL_ROLE_DECIDER, "violations.sock", path, sizeof(path)) < 0 ||
	    sock_path(o, KL_ROLE_ENFORCER, "enforcer-graphd.sock", L->enf_path, sizeof(L->enf_path)) < 0)
		return -1;
	L->enf = kl_enf_link_client(L->enf_path, KL_ROLE_GRAPHD, ENFORCER_TIMEOUT_MS);
	if (L->enf == NULL) {
		kl_error("out of memory for the enforcer link");
		return -1;
	}
	if (kl_stream_dial(&L->vtx, path, KL_ROLE_GRAPHD, err, sizeof(err)) < 0) {
		kl_error("violations link: %s", err);
		return -1;
	}
	return 0;
}

/* ---- the enforcer ---- */

static void enf_down(struct live *L, const char *why)
{
	int64_t now = kl_clock_ms(CLOCK_MONOTONIC);

	if (L->enf_up || now - L->enf_fail_log >= LOG_EVERY_MS) {
		kl_warn("enforcer (%s): %s; edge rules wait until it answers (retrying every "
			"second)", L->enf_path, why);
		L->enf_fail_log = now;
	}
	L->enf_up = false;
}

/* One request to the enforcer; 0 with the reply, -1 (link dropped, logged). */
static int enf_request(struct live *L, unsigned type, const uint8_t *p, size_t len,
		       struct kl_msg *reply, void **rbuf)
{
	char err[512];

	if (L->enf->call(L->enf, type, p, len, reply, rbuf, err, sizeof(err)) < 0) {
		enf_down(L, err);
		return -1;
	}
	if (reply->hdr.type == KL_MSG_RESULT) {
		struct kl_result r;
		if (kl_result_decode(reply->payload, reply->payload_len, &r, err, sizeof(err)) == 0)
			kl_warn("enforcer refused %s: %s: %.*s", kl_msg_type_name(type),
				kl_status_name(r.status), (int)r.text_len, r.text);
		free(*rbuf);
		*rbuf = NULL;
		return -1;
	}
	return 0;
}

/* A new connection may be a new enforcer, or the same one after our own
 * restart: start from what it actually holds of ours. */
static void enf_reconcile(struct live *L, int64_t now)
{
	uint8_t q[KL_ENFORCED_Q_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	char err[512];
	uint32_t n = 0;
	bool truncated = false;

	gr_push_reset(&L->g);
	kl_enforced_q_encode(KL_STATE_MAX, q);
	if (enf_request(L, KL_MSG_ENFORCED_Q, q, sizeof(q), &reply, &rbuf) < 0)
		return;
	if (reply.hdr.type != KL_MSG_STATE ||
	    kl_state_count(reply.payload, reply.payload_len, &n, err, sizeof(err)) < 0) {
		kl_warn("enforcer: unexpected answer to ENFORCED_Q (%s); pushing every rule again",
			kl_msg_type_name(reply.hdr.type));
		free(rbuf);
		return;
	}
	struct kl_state_rec *recs = malloc((n ? n : 1) * sizeof(*recs));
	if (recs != NULL &&
	    kl_state_decode(reply.payload, reply.payload_len, recs, n, &n, &truncated, err,
			    sizeof(err)) == 0) {
		size_t a = gr_push_adopt(&L->g, recs, n, now);
		kl_info("enforcer holds %u graphd entries%s; %zu match the graph (the rest lapse at "
			"their TTL)", n, truncated ? " (list truncated)" : "", a);
	} else {
		kl_warn("enforcer: bad STATE: %s; pushing every rule again",
			recs ? err : "out of memory");
	}
	free(recs);
	free(rbuf);
}

static int enf_call(struct live *L, const uint8_t *p, size_t len, struct kl_ack *acks,
		    uint32_t cap, uint32_t *n, int64_t now)
{
	struct kl_msg reply;
	void *rbuf = NULL;
	char err[512];
	uint32_t applied;

	if (!L->enf_up || L->enf->reconnected) {
		if (kl_enf_link_connect(L->enf, err, sizeof(err)) < 0) {
			enf_down(L, err);
			return -1;
		}
		if (!L->enf_up)
			kl_info("connected to the enforcer at %s", L->enf_path);
		L->enf_up = true;
		L->enf->reconnected = false;
		enf_reconcile(L, now);
		return 1; /* plan again from what the enforcer holds */
	}
	if (enf_request(L, KL_MSG_EDGE_RULES, p, len, &reply, &rbuf) < 0)
		return -1;
	int rc = -1;
	if (reply.hdr.type == KL_MSG_EDGE_ACK) {
		if (kl_acks_decode(reply.payload, reply.payload_len, acks, cap, n, &applied, err,
				   sizeof(err)) == 0)
			rc = 0;
		else
			kl_warn("enforcer: bad EDGE_ACK: %s", err);
	} else {
		kl_warn("enforcer answered EDGE_RULES with %s", kl_msg_type_name(reply.hdr.type));
	}
	free(rbuf);
	return rc;
}

static void push_round(struct live *L, int64_t now)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		long n = gr_push_plan(&L->g, &L->o->pp, now, &L->pb);
		if (n < 0) {
			kl_error("out of memory planning edge rules");
			return;
		}
		if (L->pb.unpushable > 0 &&
		    kl_clock_ms(CLOCK_MONOTONIC) - L->unpushable_log >= LOG_EVERY_MS) {
			kl_info("%llu baseline edges use protocols EDGE_RULES cannot carry (only "
				"tcp, udp, icmp, icmpv6); tuple-enforce allow drops them",
				(unsigned long long)L->pb.unpushable);
			L->unpushable_log = kl_clock_ms(CLOCK_MONOTONIC);
		}
		if (n == 0 && L->enf_up)
			return;
		size_t len = kl_edge_rules_len((size_t)n);
		uint8_t *p = malloc(len);
		struct kl_ack *acks = malloc(((size_t)n + 1) * sizeof(*acks));
		uint32_t na = 0;
		if (p == NULL || acks == NULL) {
			free(p);
			free(acks);
			kl_error("out of memory for %ld edge rules", n);
			return;
		}
		kl_edge_rules_encode(L->pb.r, (uint32_t)n, p);
		int rc = n > 0 || !L->enf_up ? enf_call(L, p, len, acks, (uint32_t)n, &na, now)
						 : 0;
		if (rc == 0 && n > 0) {
			uint32_t ok = 0, refused[KL_ACK_REASON_MAX] = { 0 };
			gr_push_acked(&L->g, &L->o->pp, &L->pb, acks, na, now);
			for (uint32_t i = 0; i < na; i++) {
				if (acks[i].reason == KL_ACK_OK)
					ok++;
				else if (acks[i].reason < KL_ACK_REASON_MAX)
					refused[acks[i].reason]++;
			}
			L->rules_sent += (uint64_t)n;
			L->rules_ok += ok;
			L->rules_refused += na - ok;
			if (ok < na) {
				char why[256] = "";
				size_t w = 0;
				for (unsigned r = 1; r < KL_ACK_REASON_MAX && w < sizeof(why); r++)
					if (refused[r])
						w += (size_t)snprintf(why + w, sizeof(why) - w, " %s=%u",
								      kl_ack_reason_name(r), refused[r]);
				kl_info("edge rules: %u of %u applied; refused:%s", ok, na, why);
			} else {
				kl_debug("edge rules: %u applied", ok);
			}
		}
		free(p);
		free(acks);
		if (rc != 1)
			return;
	}
}

/* ---- the audit trail (common/audit.h) ---- */

static int open_audit(struct live *L, const struct kl_who *w)
{
	char err[512];
	if (L->o->audit_dir[0] == '\0') {
		kl_warn("audit trail off (--audit-dir=)");
		return 0;
	}
	struct kl_audit_opts ao = { .dir = L->o->audit_dir, .key = L->o->audit_key,
				    .proc = "graphd", .batch = true,
				    .uid = w->root ? w->uid : (uid_t)-1,
				    .gid = w->root ? w->gid : (gid_t)-1 };
	L->audit = kl_audit_open(&ao, err, sizeof(err));
	if (L->audit == NULL) {
		kl_error("%s", err);
		return -1;
	}
	return 0;
}

/* A tick's violations (every one, not only the logged ones) and edge
 * state changes. */
static void audit_tick(struct live *L)
{
	const struct gr_graph *g = &L->g;
	char d[256], ip[KL_ADDR_STRLEN], pr[8];
	if (L->audit == NULL)
		return;
	for (size_t i = 0; i < g->nviol; i++) {
		const struct gr_viol *v = &g->viol[i];
		struct kl_addr a;
		gr_key_addr(&v->k, &a);
		snprintf(d, sizeof(d),
			 "{\"port\":%u,\"proto\":\"%s\",\"mode\":\"%s\",\"action\":\"%s\","
			 "\"edge_state\":\"%s\"}",
			 v->k.port, gr_proto_name(v->k.proto, pr, sizeof(pr)), gr_mode_name(v->mode),
			 v->action == GR_ACT_BLOCK ? "block" : "signal", gr_state_name(v->state));
		kl_audit_record(L->audit, "violation", kl_addr_format(&a, ip, sizeof(ip)), d,
				v->action == GR_ACT_BLOCK ? "block" : "signal");
	}
	if (g->last.promoted > 0 || g->last.expired > 0 || g->last.purged > 0) {
		snprintf(d, sizeof(d), "{\"promoted\":%llu,\"expired\":%llu,\"purged\":%llu}",
			 (unsigned long long)g->last.promoted, (unsigned long long)g->last.expired,
			 (unsigned long long)g->last.purged);
		kl_audit_record(L->audit, "edge_states", "", d, "ok");
	}
	kl_audit_flush(L->audit);
}

/* freeze, approve-ip, deny-ip: who (the peer's uid) asked what, and the
 * outcome. */
static void audit_control(struct live *L, const struct kl_ctl_req *r, uid_t uid,
			  const struct gr_answer *a)
{
	char d[768], ip[KL_ADDR_STRLEN] = "", pr[8], txt[512];
	const char *ev = r->cmd == KL_CTL_GRAPH_FREEZE ? "freeze"
			 : r->cmd == KL_CTL_GRAPH_APPROVE ? "approve" : "deny";
	if (r->cmd != KL_CTL_GRAPH_FREEZE)
		kl_addr_format(&r->addr, ip, sizeof(ip));
	kl_audit_json_str(txt, sizeof(txt), a->text ? a->text : "");
	snprintf(d, sizeof(d), "{\"operator_uid\":%u,\"port\":%u,\"proto\":\"%s\",%s\"text\":%s}",
		 (unsigned)uid, r->port, r->proto ? gr_proto_name(r->proto, pr, sizeof(pr)) : "any",
		 r->cmd == KL_CTL_GRAPH_FREEZE ? (r->mode == 1 ? "\"dry_run\":true," : "\"dry_run\":false,")
					       : "",
		 txt);
	kl_audit_record(L->audit, ev, ip, d, kl_status_name(a->status));
	kl_audit_flush(L->audit);
}

/* ---- a tick ---- */

static int put_violations(void *tx, const uint8_t *msg, size_t len)
{
	return kl_stream_send(tx, msg, len) == 0 ? 0 : -1;
}

static void send_violations(struct live *L)
{
	const struct gr_graph *g = &L->g;

	if (g->nviol == 0)
		return;
	for (size_t i = 0; i < g->nviol && i < VIOL_LOG_PER_TICK; i++) {
		struct kl_addr a;
		char ip[KL_ADDR_STRLEN], pr[8];
		const struct gr_viol *v = &g->viol[i];
		gr_key_addr(&v->k, &a);
		kl_warn("VIOLATION src=%s port=%u proto=%s mode=%s action=%s edge_state=%s",
			kl_addr_format(&a, ip, sizeof(ip)), v->k.port,
			gr_proto_name(v->k.proto, pr, sizeof(pr)), gr_mode_name(v->mode),
			gr_action_name(v->action), gr_state_name(v->state));
	}
	if (g->nviol > VIOL_LOG_PER_TICK)
		kl_warn("VIOLATION ... and %zu more in this tick (kl-graphd violations lists all)",
			g->nviol - VIOL_LOG_PER_TICK);
	size_t n = g->nviol;
	if (n > L->vrec_cap) {
		struct kl_violation_rec *nv = realloc(L->vrec, n * sizeof(*nv));
		if (nv == NULL) {
			L->viol_dropped += n;
			kl_warn("VIOLATION: out of memory; %zu not sent to kl-decider", n);
			return;
		}
		L->vrec = nv;
		L->vrec_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct kl_violation_rec *r = &L->vrec[i];
		memset(r, 0, sizeof(*r));
		gr_key_addr(&g->viol[i].k, &r->src);
		r->port = g->viol[i].k.port;
		r->proto = g->viol[i].k.proto;
		r->mode = g->viol[i].mode == GR_MODE_ENFORCE ? KL_VIOLATION_ENFORCE
							     : KL_VIOLATION_OBSERVE;
		if (g->viol[i].action == GR_ACT_DEVIATION)
			r->reason = KL_VIOLATION_R_DEVIATION;
	}
	/* In messages of at most KL_VIOLATIONS_MAX records, the decider's
	 * limit too. Nobody listening (no decider yet) drops them: they are
	 * in the database and the log either way, and counted here. */
	size_t lost = kl_violations_send(L->vrec, n, &L->seq, L->ticks, put_violations, L->vtx);
	L->viol_sent += n - lost;
	L->viol_dropped += lost;
	static int64_t logged;
	int64_t mono = kl_clock_ms(CLOCK_MONOTONIC);
	if (lost > 0 && (logged == 0 || mono - logged >= 10000)) {
		kl_warn("VIOLATION: %zu of %zu not delivered to kl-decider (%llu so far; is it running?)",
			lost, n, (unsigned long long)L->viol_dropped);
		logged = mono;
	}
}

/* Violations wait here until a transaction takes them, so a tick the
 * database refused (locked, disk full) does not lose its violations. */
static void queue_violations(struct live *L)
{
	const struct gr_graph *g = &L->g;
	size_t n = g->nviol;

	if (n == 0)
		return;
	if (L->npend + n > PENDING_VIOL_MAX) {
		size_t drop = L->npend + n - PENDING_VIOL_MAX;
		if (drop > L->npend)
			drop = L->npend;
		memmove(L->pend, L->pend + drop, (L->npend - drop) * sizeof(*L->pend));
		L->npend -= drop;
		kl_warn("database unavailable: %zu old violations dropped from the queue (still in "
			"the log)", drop);
	}
	if (L->npend + n > L->pend_cap) {
		size_t ncap = L->npend + n < 256 ? 256 : (L->npend + n) * 2;
		struct gr_viol *np = realloc(L->pend, ncap * sizeof(*np));
		if (np == NULL)
			return;
		L->pend = np;
		L->pend_cap = ncap;
	}
	memcpy(L->pend + L->npend, g->viol, n * sizeof(*g->viol));
	L->npend += n;
}

static void flush(struct live *L, const char *what)
{
	char err[1024];
	const struct gr_graph *g = &L->g;
	int64_t purge = g->last.maintained && g->p.expire_ttl_ms > 0 ? L->last_t - g->p.expire_ttl_ms
								    : GR_NEVER;

	if (gr_store_flush(L->st, &L->g, L->pend, L->npend, purge, err, sizeof(err)) < 0) {
		int64_t now = kl_clock_ms(CLOCK_MONOTONIC);
		if (now - L->store_fail_log >= 10000) {
			kl_error("%s: %s; the changes stay in memory and are written with the next "
				 "tick", what, err);
			L->store_fail_log = now;
		}
		return;
	}
	L->npend = 0;
}

/* --metrics-file, every tick; a failed write is logged once a minute. */
static void write_metrics(struct live *L)
{
	static const char *const st[] = { "candidate", "learned", "frozen",
					  "approved",  "denied",  "expired" };
	static const int idx[] = { GR_CANDIDATE, GR_LEARNED, GR_FROZEN,
				   GR_APPROVED,  GR_DENIED,  GR_EXPIRED };
	const struct gr_graph *g = &L->g;
	char err[512], label[32];
	struct timespec now;
	if (L->o->metrics_file == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	kl_prom_add(&L->prom, "kernloom_graphd_ticks_total", "counter", "Ticks since start.", NULL,
		    (double)L->ticks);
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		snprintf(label, sizeof(label), "state=\"%s\"", st[i]);
		kl_prom_add(&L->prom, "kernloom_graphd_edges", "gauge", "Edges by state.", label,
			    (double)g->count[idx[i]]);
	}
	kl_prom_add(&L->prom, "kernloom_graphd_flows", "gauge", "Flow observations in the last tick.",
		    NULL, (double)g->last.obs);
	kl_prom_add(&L->prom, "kernloom_graphd_violations_total", "counter",
		    "Violations of the frozen baseline since start.", NULL, (double)L->violations);
	kl_prom_add(&L->prom, "kernloom_graphd_rules_total", "counter",
		    "Edge rules the enforcer applied or refused.", "result=\"ok\"", (double)L->rules_ok);
	kl_prom_add(&L->prom, "kernloom_graphd_rules_total", "counter",
		    "Edge rules the enforcer applied or refused.", "result=\"refused\"",
		    (double)L->rules_refused);
	kl_prom_add(&L->prom, "kernloom_graphd_last_tick_timestamp_seconds", "gauge",
		    "Wall-clock time of the last tick.", NULL,
		    (double)now.tv_sec + (double)now.tv_nsec / 1e9);
	if (kl_prom_write(&L->prom, L->o->metrics_file, err, sizeof(err)) < 0 &&
	    now.tv_sec - L->prom_warned >= 60) {
		kl_warn("metrics: %s", err);
		L->prom_warned = now.tv_sec;
	}
}

static void summary(struct live *L)
{
	const struct gr_graph *g = &L->g;
	const struct gr_tick_stats *s = &g->last;

	if (L->o->summary_every == 0 || L->ticks % L->o->summary_every != 0)
		return;
	kl_info("TICK#%llu flows=%llu merged=%llu new=%llu excluded=%llu suspicious=%llu edges=%zu "
		"(candidate %zu learned %zu frozen %zu approved %zu denied %zu expired %zu) "
		"violations=%llu mode=%s rules_ok=%llu rules_refused=%llu",
		(unsigned long long)L->ticks, (unsigned long long)s->obs,
		(unsigned long long)s->merged, (unsigned long long)s->new_edges,
		(unsigned long long)s->excluded, (unsigned long long)s->suspicious, g->n,
		g->count[GR_CANDIDATE], g->count[GR_LEARNED], g->count[GR_FROZEN],
		g->count[GR_APPROVED], g->count[GR_DENIED], g->count[GR_EXPIRED],
		(unsigned long long)L->violations, gr_mode_name(g->p.mode),
		(unsigned long long)L->rules_ok, (unsigned long long)L->rules_refused);
}

static int run_tick(struct live *L, int64_t t, const struct gr_obs *obs, size_t n,
		    const struct kl_addr *susp, size_t nsusp)
{
	if (gr_tick(&L->g, t, obs, n, susp, nsusp) < 0) {
		kl_error("out of memory merging a tick of %zu flows", n);
		return -1;
	}
	L->last_t = L->g.last_t;
	L->ticks++;
	L->last_tick_mono = kl_clock_ms(CLOCK_MONOTONIC);
	L->violations += L->g.nviol;
	if (L->g.last.promoted > 0)
		kl_info("PROMOTE %llu edges candidate->learned",
			(unsigned long long)L->g.last.promoted);
	if (L->g.last.expired > 0 || L->g.last.purged > 0)
		kl_info("EXPIRE %llu edges (idle %s), %llu expired edges deleted",
			(unsigned long long)L->g.last.expired, "past --graph-expire-ttl",
			(unsigned long long)L->g.last.purged);
	send_violations(L);
	audit_tick(L);
	queue_violations(L);
	flush(L, "storing the tick");
	summary(L);
	write_metrics(L);
	/* An enforce violation is denied at once, not at the next round. */
	if (L->g.nviol > 0 && L->g.p.mode == GR_MODE_ENFORCE) {
		push_round(L, L->last_t);
		L->last_push_mono = kl_clock_ms(CLOCK_MONOTONIC);
	}
	return 0;
}

static int on_frame(struct live *L, const struct kl_stream_msg *m)
{
	const struct kl_flows_view *v = &L->tasm.flows;
	int rc = kl_tickasm_intake(&L->tasm, &m->msg, (int)m->peer_pid, kl_clock_ms(CLOCK_MONOTONIC));

	if (rc <= 0)
		return rc;
	struct gr_obs *obs = kl_grow_to(L->obs, v->h.n_records, &L->obs_cap, sizeof(*obs), 64);
	if (obs == NULL) {
		kl_error("out of memory for a tick of %u flows", v->h.n_records);
		return -1;
	}
	L->obs = obs;
	L->nsusp = 0;
	if (gr_flows_to_obs(v, L->obs, &L->susp, &L->nsusp, &L->susp_cap) < 0) {
		kl_error("out of memory for the restricted sources of a tick");
		return -1;
	}
	int64_t t = (int64_t)(v->h.t_ns / 1000000u);
	if (L->last_t != GR_NEVER && t <= L->last_t)
		t = L->last_t + 1;
	return run_tick(L, t, L->obs, v->h.n_records, L->susp, L->nsusp);
}

static int frame_cb(void *L, const struct kl_stream_msg *m)
{
	return on_frame(L, m);
}

/* ---- control ---- */

/* STATUS: what every daemon says about itself (common/status.h): frames in
 * are flow frames, frames out violations sent to the decider. */
static void status_answer(struct live *L, struct gr_answer *a)
{
	const struct gr_graph *g = &L->g;
	int64_t now = kl_unix_ms();
	struct kl_daemon_status ds = {
		.name = "kl-graphd", .enforcing = g->p.mode == GR_MODE_ENFORCE,
		.mode = gr_mode_name(g->p.mode), .ticks = L->ticks,
		/* graph time follows the frames: the tick's wall time is
		 * now minus how long ago it ran. */
		.last_tick_ms = L->ticks == 0 ? KL_T_NONE
				 : now - (kl_clock_ms(CLOCK_MONOTONIC) - L->last_tick_mono),
		.interval_ms = 0, .frames_in = L->tasm.st.frames, .frames_out = L->viol_sent,
	};
	json_t *doc = json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I}", "daemon",
				kl_daemon_status_json(&ds, now), "edges", "candidate",
				(json_int_t)g->count[GR_CANDIDATE], "learned",
				(json_int_t)g->count[GR_LEARNED], "frozen",
				(json_int_t)g->count[GR_FROZEN], "approved",
				(json_int_t)g->count[GR_APPROVED], "denied",
				(json_int_t)g->count[GR_DENIED], "expired",
				(json_int_t)g->count[GR_EXPIRED], "rules_ok", (json_int_t)L->rules_ok,
				"rules_refused", (json_int_t)L->rules_refused);
	a->status = doc != NULL ? KL_OK : KL_ERR_FAILED;
	a->json = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char text[256];
	snprintf(text, sizeof(text),
		 "kl-graphd %s: %s, %llu ticks, %llu frames in, %llu violations out, %zu edges\n",
		 KL_VERSION, ds.mode, (unsigned long long)ds.ticks,
		 (unsigned long long)ds.frames_in, (unsigned long long)ds.frames_out, g->n - g->ngone);
	a->text = strdup(text);
	json_decref(doc);
}

/* The operator approved a source in a frozen graph: a block the decider
 * holds for its violations is wrong, so tell it now rather than let the
 * block run to its TTL. In learn mode there are no violations to undo. */
static void tell_approved(struct live *L, const struct kl_addr *a)
{
	char ip[KL_ADDR_STRLEN];

	if (L->g.p.mode == GR_MODE_LEARN)
		return;
	kl_addr_format(a, ip, sizeof(ip));
	if (kl_approved_send(a, &L->seq, L->ticks, put_violations, L->vtx) < 0)
		kl_warn("APPROVED %s not delivered to kl-decider (is it running?): its block, if "
			"any, lapses at its TTL", ip);
	else
		kl_info("APPROVED %s: kl-decider told to release it", ip);
}

static void on_request(void *ctx, struct kl_request *req)
{
	struct live *L = ctx;
	struct kl_ctl_req r;
	struct gr_answer a = { 0 };
	char err[512];
	int64_t now = kl_clock_ms(CLOCK_REALTIME);
	bool changed = false;

	if (now < L->last_t)
		now = L->last_t;
	if (req->msg.hdr.type != KL_MSG_CONTROL) {
		kl_server_reply_result(L->srv, req, KL_ERR_INVALID, "kl-graphd expects CONTROL", NULL);
		return;
	}
	if (kl_ctl_req_decode(req->msg.payload, req->msg.payload_len, &r, err, sizeof(err)) < 0) {
		kl_warn("control request from uid %u: %s", (unsigned)req->peer_uid, err);
		kl_server_reply_result(L->srv, req, KL_ERR_INVALID, err, NULL);
		return;
	}
	switch (r.cmd) {
	case KL_CTL_STATUS:
		status_answer(L, &a);
		break;
	case KL_CTL_GRAPH_EXPORT:
		gr_cmd_export(&L->g, r.mode == 0 ? -1 : r.mode - 1, &a);
		break;
	case KL_CTL_GRAPH_FREEZE:
		gr_cmd_freeze(&L->g, now, r.mode == 1, (int32_t)req->peer_uid, &a);
		changed = r.mode == 0;
		break;
	case KL_CTL_GRAPH_APPROVE:
	case KL_CTL_GRAPH_DENY:
		gr_cmd_set(&L->g, &r.addr, r.proto == 0, r.port, r.proto,
			   r.cmd == KL_CTL_GRAPH_APPROVE ? GR_APPROVED : GR_DENIED,
			   (int32_t)req->peer_uid, now, &a);
		changed = a.status == KL_OK;
		if (changed && r.cmd == KL_CTL_GRAPH_APPROVE)
			tell_approved(L, &r.addr);
		break;
	case KL_CTL_GRAPH_VIOLATIONS: {
		struct gr_viol_row *v = NULL;
		size_t n = 0;
		int64_t since = r.ttl_ms == 0 ? INT64_MIN : now - (int64_t)r.ttl_ms;
		if (gr_store_violations(L->st, since, r.count ? r.count : VIOL_ROWS_DEFAULT, &v, &n,
					err, sizeof(err)) < 0) {
			kl_server_reply_result(L->srv, req, KL_ERR_FAILED, err, NULL);
			return;
		}
		gr_cmd_violations(v, n, &a);
		free(v);
		break;
	}
	default:
		snprintf(err, sizeof(err), "kl-graphd does not serve %s (klctl sends it to another "
			 "daemon)", kl_ctl_cmd_name(r.cmd));
		kl_server_reply_result(L->srv, req, KL_ERR_UNSUPPORTED, err, NULL);
		return;
	}
	if (r.cmd == KL_CTL_GRAPH_FREEZE || r.cmd == KL_CTL_GRAPH_APPROVE ||
	    r.cmd == KL_CTL_GRAPH_DENY)
		audit_control(L, &r, req->peer_uid, &a);
	if (changed) {
		char what[96];
		snprintf(what, sizeof(what), "storing %s by uid %u", kl_ctl_cmd_name(r.cmd),
			 (unsigned)req->peer_uid);
		const char *t = a.text != NULL ? a.text : "";
		kl_info("%s: %.*s", what, (int)strcspn(t, "\n"), t);
		flush(L, what);
		push_round(L, now);
		L->last_push_mono = kl_clock_ms(CLOCK_MONOTONIC);
	}
	kl_server_reply_result(L->srv, req, a.status, a.text ? a.text : "", a.json);
	gr_answer_free(&a);
}

/* ---- the loop ---- */

/* SIGHUP: the files again over the same flags. A bad file keeps
 * everything; else the learner takes the live settings (the others are
 * logged as needing a restart). */
static void reload(struct live *L)
{
	struct gr_opts fresh;
	struct kl_errs errs = { 0 };

	if (gr_opts_parse(L->argc, L->argv, &fresh, &errs) < 0) {
		kl_reload_refused(&errs);
		kl_errs_free(&errs);
		return;
	}
	size_t n = gr_opts_apply(L->o, &fresh);
	gr_opts_free(&fresh);
	/* The learner's copy: every live field (mode and the promotion
	 * schedule stay as they started). */
	struct gr_params *p = &L->g.p;
	const struct gr_params *np = &L->o->p;
	p->min_seen = np->min_seen;
	p->min_windows = np->min_windows;
	p->min_age_ms = np->min_age_ms;
	p->expire_ttl_ms = np->expire_ttl_ms;
	p->exclude_broadcast = np->exclude_broadcast;
	p->exclude_loopback = np->exclude_loopback;
	p->exclude = np->exclude;
	p->nexclude = np->nexclude;
	p->suspect_hold_ms = np->suspect_hold_ms;
	p->deny_ttl_ms = np->deny_ttl_ms;
	p->viol_repeat_ms = np->viol_repeat_ms;
	p->eb = np->eb;
	kl_log_init("kl-graphd", (enum kl_log_level)L->o->log_level);
	kl_reload_done(n);
}

static int run_loop(struct live *L)
{
	int rx_fd = kl_stream_fd(L->rx);
	int srv_fd = kl_server_fd(L->srv);

	if (rx_fd < 0)
		return -1;
	kl_notify_ready("serving: graph loaded, sockets listening");
	while (!stop_signal) {
		struct pollfd pf[2];
		kl_notify_watchdog();
		nfds_t n = 0;

		pf[n++] = (struct pollfd){ .fd = rx_fd, .events = POLLIN };
		if (srv_fd >= 0)
			pf[n++] = (struct pollfd){ .fd = srv_fd, .events = POLLIN };
		/* At least once a second: pushes, idle ticks, the control
		 * server's listener check. */
		if (poll(pf, n, 1000) < 0 && errno != EINTR) {
			kl_error("poll: %s", strerror(errno));
			return -1;
		}
		if (reload_signal) {
			reload_signal = 0;
			reload(L);
		}
		int rc = kl_stream_drain(L->rx, FRAMES_PER_WAKEUP, &stop_signal, frame_cb, L);
		if (rc == KL_STREAM_CLOSED)
			kl_error("flows socket closed");
		if (rc < 0)
			return -1;
		if (L->srv != NULL &&
		    kl_server_serve_or_close(&L->srv, REQUESTS_PER_WAKEUP, on_request, L,
					     "control socket failed; klctl graph is unavailable until "
					     "kl-graphd restarts (the offline commands still read the "
					     "database)") < 0)
			srv_fd = -1;
		int64_t mono = kl_clock_ms(CLOCK_MONOTONIC);
		/* Without frames (no sensor, no traffic) promotion, expiry and
		 * the violation denies' lapse still follow the clock. */
		if (mono - L->last_tick_mono >= 1000) {
			int64_t t = kl_clock_ms(CLOCK_REALTIME);
			if (L->last_t != GR_NEVER && t <= L->last_t)
				t = L->last_t + 1;
			if (run_tick(L, t, NULL, 0, NULL, 0) < 0)
				return -1;
		}
		if (mono - L->last_push_mono >= 1000) {
			push_round(L, L->last_t);
			L->last_push_mono = mono;
		}
	}
	return 0;
}

int gr_run_daemon(struct gr_opts *o, int argc, char **argv)
{
	struct live L;
	struct kl_who w;
	char err[1024];
	int rc = GR_EXIT_FAIL;

	memset(&L, 0, sizeof(L));
	L.o = o;
	L.argc = argc;
	L.argv = argv;
	L.last_t = GR_NEVER;
	kl_tickasm_init(&L.tasm, KL_MSG_FLOWS, kl_flows_tick_max(o->sensor_max_flows));
	kl_signals_init(&stop_signal, &reload_signal);

	if (resolve_users(o, &w) < 0 || kl_sandbox_prepare(KL_ROLE_GRAPHD, NULL) < 0)
		return GR_EXIT_FAIL;
	if (open_audit(&L, &w) < 0)
		return GR_EXIT_FAIL;
	if (open_store(&L, &w, err, sizeof(err)) < 0) {
		kl_error("%s", err);
		goto out;
	}
	if (open_sockets(&L, &w) < 0)
		goto out;

	/* DESIGN §9: the graph's directory (the db, -wal, -shm, backups) and
	 * the sockets' directory; nothing else. */
	static struct kl_sandbox_opts sbo;
	static char run[PATH_MAX];
	sbo.user = w.user;
	kl_sandbox_rw_parent(&sbo, o->db);
	kl_sandbox_rw(&sbo, kl_sandbox_run_dir(o->run_dir, KL_ROLE_GRAPHD, run, sizeof(run)));
	kl_sandbox_rw(&sbo, o->audit_dir);
	kl_sandbox_rw_parent(&sbo, o->metrics_file);
	/* Re-read on SIGHUP (DESIGN §9: graphd reads /etc/kernloom/). */
	kl_sandbox_ro_file(&sbo, o->c.config);
	kl_sandbox_ro_file(&sbo, o->c.pdp_config);
	if (kl_sandbox_enter(KL_ROLE_GRAPHD, &sbo) < 0)
		goto out;
	if (w.root && (geteuid() == 0 || getuid() == 0)) {
		kl_error("still uid 0 after the sandbox; refusing to run");
		goto out;
	}
	if (open_links(&L) < 0)
		goto out;
	if (strcmp(o->db, ":memory:") != 0 && access(o->db, R_OK | W_OK) < 0) {
		kl_error("graph db %s is not writable as uid %u: %s", o->db, (unsigned)getuid(),
			 strerror(errno));
		goto out;
	}

	char a[32], b[32], c[32];
	kl_info("graph %s: %zu edges (candidate %zu learned %zu frozen %zu approved %zu denied %zu "
		"expired %zu); mode %s; promotion after %u ticks in %u windows of %s and %s of age",
		o->db, L.g.n, L.g.count[GR_CANDIDATE], L.g.count[GR_LEARNED], L.g.count[GR_FROZEN],
		L.g.count[GR_APPROVED], L.g.count[GR_DENIED], L.g.count[GR_EXPIRED],
		gr_mode_name(o->p.mode), o->p.min_seen, o->p.min_windows,
		kl_duration_format((uint64_t)o->p.window_ms * 1000000ull, a, sizeof(a)),
		kl_duration_format((uint64_t)o->p.min_age_ms * 1000000ull, b, sizeof(b)));
	kl_info("checked every %s; edge rules to %s (ttl %s)",
		kl_duration_format((uint64_t)o->p.promote_every_ms * 1000000ull, a, sizeof(a)),
		L.enf_path, kl_duration_format((uint64_t)o->pp.rule_ttl_ms * 1000000ull, c, sizeof(c)));
	L.last_tick_mono = kl_clock_ms(CLOCK_MONOTONIC);
	L.last_push_mono = 0;
	rc = run_loop(&L) < 0 ? GR_EXIT_FAIL : 0;
	gr_eb_flush_all(&L.g);
	kl_notify_stopping();
	flush(&L, "storing the graph at exit");
	kl_info("stopping: %llu frames (%llu bad, %llu ticks missed, %llu dropped incomplete), "
		"%llu ticks, %llu violations "
		"(%llu sent to the decider), edge rules %llu sent, %llu applied, %llu refused",
		(unsigned long long)L.tasm.st.frames,
		(unsigned long long)(L.tasm.st.bad + L.tasm.st.oversized),
		(unsigned long long)L.tasm.st.missed, (unsigned long long)L.tasm.st.dropped,
		(unsigned long long)L.ticks,
		(unsigned long long)L.violations, (unsigned long long)L.viol_sent,
		(unsigned long long)L.rules_sent, (unsigned long long)L.rules_ok,
		(unsigned long long)L.rules_refused);
out:
	kl_server_close(L.srv);
	kl_stream_close(L.rx);
	if (L.vtx != NULL)
		kl_stream_tx_close(L.vtx);
	if (L.enf != NULL)
		L.enf->close(L.enf);
	gr_push_free(&L.pb);
	if (L.have_g)
		gr_free(&L.g);
	gr_store_close(L.st);
	free(L.obs);
	kl_tickasm_free(&L.tasm);
	free(L.susp);
	free(L.vrec);
	free(L.pend);
	kl_audit_close(L.audit);
	kl_prom_free(&L.prom);
	return rc;
}
