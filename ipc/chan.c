/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Request/answer channels over nng REQ0/REP0 on ipc:// sockets.
 *
 * The server is the monitor of OpenSSH's privsep design: it knows who is
 * on the other end (SO_PEERCRED through nng's pipe options), insists on a
 * HELLO naming the one role allowed on this socket, and refuses any message
 * type that role may not send here. Only requests that passed all of it
 * reach the caller.
 *
 * nng calls the pipe callbacks from its own threads, so the per-pipe table
 * is shared with kl_server_recv() under a mutex.
 */
#include "ipc/chan.h"
#include "common/err.h"
#include "ipc/listen.h"
#include "ipc/peer.h"
#include "ipc/wire.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <pthread.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/log.h"

#define DEFAULT_MAX_MSG (1u << 20)
/* nng counts the REQ/REP backtrace (4 bytes per hop) against RECVMAXSZ. */
#define SP_HDR_SLACK 64
/* A refused connection is closed this long after its RESULT was queued,
 * so the peer gets to read why (nng_pipe_close drops unsent messages). */
#define CLOSE_GRACE_MS 200
/* Open connections per server; a peer beyond this is turned away. Each
 * may hold one message of up to max_msg bytes in nng while it arrives. */
#define MAX_PIPES 64
#define REFUSED_WAITING 16 /* refused connections held for on_refused */
/* A connection that has not said HELLO by then is closed, so silent
 * connections cannot hold the slots (MAX_PIPES) for long. */
#define HELLO_WAIT_MS 5000
/* The answer to a request on a connection that has not said HELLO. The
 * client recognises it and says HELLO again (the request was not run). */
#define NEED_HELLO_TEXT "HELLO must be the first message"
/* Refusals logged per second from the pipe callback (a local user can
 * reconnect in a loop; the log must not become the denial of service). */
#define REFUSAL_LOGS_PER_S 10

struct pipe_ent {
	uint32_t id;
	nng_pipe pipe;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum kl_role role;  /* KL_ROLE_NONE until HELLO */
	int64_t close_at;   /* monotonic ms; 0 = stays open */
	int64_t hello_by;   /* monotonic ms; 0 once HELLO was accepted */
};

struct kl_server {
	nng_socket sock;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	enum kl_role self;
	enum kl_role peer_role;
	uid_t *allowed_uids;
	size_t n_allowed_uids;
	gid_t admin_gid;
	size_t max_msg;
	struct kl_listen ls;

	pthread_mutex_t mu; /* guards pipes, npipes, log_*, refused_* */
	struct pipe_ent *pipes;
	size_t npipes;
	int64_t log_window;
	unsigned log_count, log_dropped;

	/* Connections refused on nng's thread wait here for on_refused, which
	 * runs on the caller's (kl_server_recv). */
	void (*on_refused)(void *arg, const struct kl_refusal *r);
	void *on_refused_arg;
	struct kl_refusal refused[REFUSED_WAITING];
	unsigned n_refused, refused_lost;

	/* The request last handed out, which kl_server_reply answers. */
	bool pending;
	uint32_t pending_pipe;
};

struct kl_client {
	nng_socket sock;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	enum kl_role self;
	uint64_t seq;
	int timeout_ms;
	int last_rv; /* nng error of the last failed send/receive */
	uint64_t rehellos; /* connections nng re-established under us */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Header + payload in one nng message. */
static int build_msg(nng_msg **out, unsigned type, uint64_t seq, uint64_t tick,
		     const uint8_t *payload, size_t len)
{
	struct kl_msg_hdr h = {
		.magic = KL_MSG_MAGIC,
		.version = KL_MSG_VERSION,
		.type = (uint16_t)type,
		.flags = 0,
		.payload_len = (uint32_t)len,
		.seq = seq,
		.tick = tick,
	};
	nng_msg *m;
	int rv;

	if (len > KL_MSG_MAX_PAYLOAD)
		return NNG_EMSGSIZE;
	rv = nng_msg_alloc(&m, KL_MSG_HDR_LEN + len);
	if (rv != 0)
		return rv;
	uint8_t *body = nng_msg_body(m);
	kl_msg_hdr_encode(&h, body);
	if (len > 0)
		memcpy(body + KL_MSG_HDR_LEN, payload, len);
	*out = m;
	return 0;
}

/* ---- peer credentials ---- */

static bool peer_allowed(const struct kl_server *s, uid_t uid, gid_t gid)
{
	return kl_peer_allowed(uid, gid, s->allowed_uids, s->n_allowed_uids, s->admin_gid);
}

/* Called with s->mu held. */
static bool refusal_log_ok(struct kl_server *s)
{
	int64_t t = now_ms();

	if (t - s->log_window >= 1000) {
		if (s->log_dropped > 0)
			kl_warn("%s: %u more refused connections not logged",
				s->path, s->log_dropped);
		s->log_window = t;
		s->log_count = 0;
		s->log_dropped = 0;
	}
	if (s->log_count < REFUSAL_LOGS_PER_S) {
		s->log_count++;
		return true;
	}
	s->log_dropped++;
	return false;
}

/* A refused connection, held for on_refused. Called with s->mu held. */
static void refused_hold(struct kl_server *s, uint64_t uid, uint64_t pid, const char *why)
{
	if (s->on_refused == NULL)
		return;
	if (s->n_refused == REFUSED_WAITING) {
		s->refused_lost++;
		return;
	}
	struct kl_refusal *r = &s->refused[s->n_refused++];
	r->uid = (uid_t)uid;
	r->pid = (pid_t)pid;
	r->role = KL_ROLE_NONE;
	r->status = KL_ERR_REFUSED;
	snprintf(r->why, sizeof(r->why), "connection refused: %s", why);
}

/* Hand the refused connections over (on kl_server_recv's thread). */
static void refused_deliver(struct kl_server *s)
{
	struct kl_refusal held[REFUSED_WAITING];
	unsigned n, lost;
	if (s->on_refused == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	n = s->n_refused;
	lost = s->refused_lost;
	memcpy(held, s->refused, n * sizeof(held[0]));
	s->n_refused = 0;
	s->refused_lost = 0;
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < n; i++)
		s->on_refused(s->on_refused_arg, &held[i]);
	if (lost > 0) {
		struct kl_refusal r = { .uid = (uid_t)-1, .role = KL_ROLE_NONE,
					.status = KL_ERR_REFUSED };
		snprintf(r.why, sizeof(r.why), "%u more connections refused (not held one by one)",
			 lost);
		s->on_refused(s->on_refused_arg, &r);
	}
}

/* A message turned away in kl_server_recv. */
static void refused_msg(struct kl_server *s, const struct pipe_ent *pe, int status,
			const char *why)
{
	if (s->on_refused == NULL)
		return;
	struct kl_refusal r = { .uid = pe->uid, .pid = pe->pid, .role = pe->role,
				.status = status };
	snprintf(r.why, sizeof(r.why), "%s", why);
	s->on_refused(s->on_refused_arg, &r);
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct kl_server *s = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		uint64_t uid = UINT64_MAX, gid = UINT64_MAX, pid = 0;
		bool ok;

		if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0 ||
		    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) != 0) {
			/* Without credentials we cannot tell who it is. */
			ok = false;
		} else {
			ok = peer_allowed(s, (uid_t)uid, (gid_t)gid);
		}
		(void)nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid);

		kl_listen_saw_pipe(&s->ls, (pid_t)pid);
		pthread_mutex_lock(&s->mu);
		if (ok && s->npipes >= MAX_PIPES) {
			if (refusal_log_ok(s))
				kl_warn("%s: refused connection from uid %llu pid %llu: too many connections (%d)",
					s->path, (unsigned long long)uid,
					(unsigned long long)pid, MAX_PIPES);
			refused_hold(s, uid, pid, "too many connections");
			ok = false;
		} else if (!ok) {
			if (refusal_log_ok(s))
				kl_warn("%s: refused connection from uid %llu gid %llu pid %llu: uid not allowed",
					s->path, (unsigned long long)uid,
					(unsigned long long)gid, (unsigned long long)pid);
			refused_hold(s, uid, pid, "uid not allowed on this socket");
		}
		if (ok) {
			struct pipe_ent *e = &s->pipes[s->npipes++];
			memset(e, 0, sizeof(*e));
			e->id = id;
			e->pipe = p;
			e->uid = (uid_t)uid;
			e->gid = (gid_t)gid;
			e->pid = (pid_t)pid;
			e->role = KL_ROLE_NONE;
			e->hello_by = now_ms() + HELLO_WAIT_MS;
		}
		pthread_mutex_unlock(&s->mu);
		if (!ok)
			nng_pipe_close(p);
		return;
	}
	if (ev == NNG_PIPE_EV_REM_POST) {
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < s->npipes; i++) {
			if (s->pipes[i].id == id) {
				s->pipes[i] = s->pipes[--s->npipes];
				break;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
}

/* ---- server ---- */

int kl_server_open(struct kl_server **out, const struct kl_server_opts *o,
		   char *err, size_t errlen)
{
	struct kl_server *s;
	int rv;

	*out = NULL;
	if (o == NULL || o->path == NULL || o->path[0] == '\0')
		return kl_fail(err, errlen, "server: no socket path given");
	if (strlen(o->path) >= sizeof(s->path))
		return kl_fail(err, errlen, "socket path %s is longer than %zu bytes",
			       o->path, sizeof(s->path) - 1);
	if (o->self <= KL_ROLE_NONE || o->self >= KL_ROLE_MAX ||
	    o->peer_role <= KL_ROLE_NONE || o->peer_role >= KL_ROLE_MAX)
		return kl_fail(err, errlen, "server %s: invalid self/peer role %d/%d",
			       o->path, o->self, o->peer_role);
	if (o->n_allowed_uids > 0 && o->allowed_uids == NULL)
		return kl_fail(err, errlen, "server %s: n_allowed_uids without allowed_uids", o->path);

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return kl_fail(err, errlen, "out of memory");
	s->pipes = calloc(MAX_PIPES, sizeof(*s->pipes));
	if (o->n_allowed_uids > 0)
		s->allowed_uids = calloc(o->n_allowed_uids, sizeof(uid_t));
	if (s->pipes == NULL || (o->n_allowed_uids > 0 && s->allowed_uids == NULL)) {
		free(s->pipes);
		free(s->allowed_uids);
		free(s);
		return kl_fail(err, errlen, "out of memory");
	}
	if (o->n_allowed_uids > 0)
		memcpy(s->allowed_uids, o->allowed_uids, o->n_allowed_uids * sizeof(uid_t));
	s->n_allowed_uids = o->n_allowed_uids;
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	s->self = o->self;
	s->peer_role = o->peer_role;
	s->on_refused = o->on_refused;
	s->on_refused_arg = o->on_refused_arg;
	s->admin_gid = o->admin_gid;
	s->max_msg = o->max_msg != 0 ? o->max_msg : DEFAULT_MAX_MSG;
	if (s->max_msg > KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD)
		s->max_msg = KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD;
	pthread_mutex_init(&s->mu, NULL);

	if (kl_clear_stale_socket(s->path, err, errlen) < 0)
		goto fail_nosock;

	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		kl_fail(err, errlen, "nng_rep0_open: %s", nng_strerror(rv));
		goto fail_nosock;
	}
	if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->max_msg + SP_HDR_SLACK)) != 0 ||
	    (rv = nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 1000)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, s)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_event, s)) != 0) {
		kl_fail(err, errlen, "%s: socket options: %s", s->path, nng_strerror(rv));
		goto fail;
	}
	if (kl_listen_start(&s->ls, s->sock, s->path, o->mode, o->gid, o->owner, err, errlen) < 0)
		goto fail;
	kl_debug("listening on %s as %s for %s", s->path, kl_role_name(s->self),
		 kl_role_name(s->peer_role));
	*out = s;
	return 0;

fail:
	nng_close(s->sock);
fail_nosock:
	pthread_mutex_destroy(&s->mu);
	free(s->pipes);
	free(s->allowed_uids);
	free(s);
	return -1;
}

/* Snapshot of one pipe's entry; false when the pipe is gone or refused. */
static bool pipe_lookup(struct kl_server *s, uint32_t id, struct pipe_ent *out)
{
	bool found = false;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->npipes; i++) {
		if (s->pipes[i].id == id) {
			*out = s->pipes[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

static void pipe_set_role(struct kl_server *s, uint32_t id, enum kl_role role)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->npipes; i++) {
		if (s->pipes[i].id == id) {
			s->pipes[i].role = role;
			s->pipes[i].hello_by = 0;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void pipe_doom(struct kl_server *s, uint32_t id)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->npipes; i++) {
		if (s->pipes[i].id == id && s->pipes[i].close_at == 0)
			s->pipes[i].close_at = now_ms() + CLOSE_GRACE_MS;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Close pipes whose grace time ran out; returns the next due time or 0. */
static int64_t close_due(struct kl_server *s)
{
	nng_pipe due[16];
	size_t ndue = 0;
	int64_t next = 0, t = now_ms();

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->npipes; i++) {
		struct pipe_ent *e = &s->pipes[i];
		if (e->hello_by != 0 && e->close_at == 0) {
			if (e->hello_by <= t) {
				e->close_at = t;
				if (refusal_log_ok(s))
					kl_warn("%s: closing connection from uid %u pid %d: no HELLO within %d ms",
						s->path, (unsigned)e->uid, (int)e->pid, HELLO_WAIT_MS);
			} else if (next == 0 || e->hello_by < next) {
				next = e->hello_by;
			}
		}
		int64_t c = e->close_at;
		if (c == 0)
			continue;
		if (c <= t && ndue < sizeof(due) / sizeof(due[0])) {
			due[ndue++] = s->pipes[i].pipe;
			/* Keep it doomed but do not close it twice. */
			s->pipes[i].close_at = INT64_MAX;
		} else if (c != INT64_MAX && (next == 0 || c < next)) {
			next = c;
		}
	}
	pthread_mutex_unlock(&s->mu);
	/* Outside the lock: closing runs the REM_POST callback, which takes it. */
	for (size_t i = 0; i < ndue; i++)
		nng_pipe_close(due[i]);
	if (ndue == sizeof(due) / sizeof(due[0]))
		next = t; /* more may be due */
	return next;
}

static uint64_t raw_seq(const uint8_t *b, size_t len)
{
	uint64_t v = 0;

	if (len < 24)
		return 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[16 + i];
	return v;
}

static void send_result(struct kl_server *s, uint64_t seq, uint64_t tick,
			int status, const char *text)
{
	struct kl_result r = {
		.status = status,
		.text = text,
		.text_len = (uint32_t)strlen(text),
		.json = "",
		.json_len = 0,
	};
	size_t n = kl_result_len(&r);
	uint8_t *p = malloc(n);
	nng_msg *m;
	int rv;

	if (p == NULL)
		return;
	kl_result_encode(&r, p);
	rv = build_msg(&m, KL_MSG_RESULT, seq, tick, p, n);
	free(p);
	if (rv != 0)
		return;
	if ((rv = nng_sendmsg(s->sock, m, 0)) != 0) {
		nng_msg_free(m);
		kl_debug("%s: answer not sent: %s", s->path, nng_strerror(rv));
	}
}

int kl_server_serve(struct kl_server *s, int max, kl_serve_fn fn, void *ctx)
{
	int n = 0;

	while (n < max) {
		struct kl_request req;
		int r = kl_server_recv(s, &req, 0);
		if (r == 0)
			break;
		if (r < 0)
			return -1;
		fn(ctx, &req);
		kl_request_done(&req);
		n++;
	}
	return n;
}

int kl_server_serve_or_close(struct kl_server **s, int max, kl_serve_fn fn, void *ctx,
			     const char *lost)
{
	if (kl_server_serve(*s, max, fn, ctx) >= 0)
		return 0;
	kl_error("%s", lost);
	kl_server_close(*s);
	*s = NULL;
	return -1;
}

int kl_server_recv(struct kl_server *s, struct kl_request *req, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

	memset(req, 0, sizeof(*req));
	for (;;) {
		int64_t next = close_due(s);
		int64_t t = now_ms();
		nng_duration wait = NNG_DURATION_INFINITE;
		nng_msg *m;
		int rv;

		if (t >= s->ls.next_check) {
			kl_listen_check(&s->ls);
			t = now_ms();
		}
		if (next == 0 || s->ls.next_check < next)
			next = s->ls.next_check;
		if (timeout_ms >= 0) {
			if (t >= deadline && timeout_ms > 0)
				return 0;
			/* timeout 0 polls: never a negative duration, which nng
			 * would read as "infinite" (-1) or reject. */
			wait = (nng_duration)(deadline > t ? deadline - t : 0);
		}
		if (wait == NNG_DURATION_INFINITE || next - t < wait)
			wait = (nng_duration)(next > t ? next - t : 0);
		nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, wait);
		rv = nng_recvmsg(s->sock, &m, 0);
		refused_deliver(s);
		if (rv == NNG_ETIMEDOUT) {
			if (timeout_ms >= 0 && now_ms() >= deadline)
				return 0;
			continue;
		}
		if (rv == NNG_ECLOSED)
			return -1; /* only kl_server_close does that */
		if (rv != 0) {
			/* Whatever a peer did, the socket serves on: back off a
			 * little so a persistent error does not spin. */
			kl_warn("%s: receive: %s", s->path, nng_strerror(rv));
			usleep(10 * 1000);
			if (timeout_ms >= 0 && now_ms() >= deadline)
				return 0;
			continue;
		}
		s->pending = false;

		nng_pipe p = nng_msg_get_pipe(m);
		uint32_t id = (uint32_t)nng_pipe_id(p);
		const uint8_t *body = nng_msg_body(m);
		size_t len = nng_msg_len(m);
		uint64_t seq = raw_seq(body, len);
		struct pipe_ent pe;
		struct kl_msg msg;
		char why[256];

		if (!pipe_lookup(s, id, &pe)) {
			/* Refused in the callback, or already gone: no answer. */
			nng_msg_free(m);
			continue;
		}
		if (pe.close_at != 0) {
			send_result(s, seq, 0, KL_ERR_REFUSED, "connection is being closed");
			nng_msg_free(m);
			continue;
		}
		if (len > s->max_msg) {
			kl_warn("%s: uid %u pid %d sent %zu bytes, limit %zu", s->path,
				(unsigned)pe.uid, (int)pe.pid, len, s->max_msg);
			send_result(s, seq, 0, KL_ERR_INVALID, "message too large");
			refused_msg(s, &pe, KL_ERR_INVALID, "message too large");
			nng_msg_free(m);
			continue;
		}
		if (kl_msg_decode(body, len, &msg, why, sizeof(why)) < 0) {
			kl_warn("%s: malformed message from uid %u pid %d: %s", s->path,
				(unsigned)pe.uid, (int)pe.pid, why);
			send_result(s, seq, 0, KL_ERR_INVALID, why);
			refused_msg(s, &pe, KL_ERR_INVALID, why);
			nng_msg_free(m);
			continue;
		}
		seq = msg.hdr.seq;

		if (msg.hdr.type == KL_MSG_HELLO) {
			struct kl_hello h;
			char txt[192];

			switch (kl_hello_admit(&msg, pe.role, s->peer_role, &h, why, sizeof(why))) {
			case KL_HELLO_MALFORMED:
				kl_warn("%s: bad HELLO from uid %u pid %d: %s", s->path,
					(unsigned)pe.uid, (int)pe.pid, why);
				send_result(s, seq, msg.hdr.tick, KL_ERR_INVALID, why);
				refused_msg(s, &pe, KL_ERR_INVALID, why);
				break;
			case KL_HELLO_AGAIN:
			case KL_HELLO_ROLE_SWITCH:
				/* One HELLO per connection: a request pipe has no
				 * reconnect race to absorb. */
				send_result(s, seq, msg.hdr.tick, KL_ERR_REFUSED,
					    "HELLO already received on this connection");
				break;
			case KL_HELLO_WRONG_ROLE:
			case KL_HELLO_WRONG_VERSION:
				kl_warn("%s: refused HELLO from uid %u pid %d: %s", s->path,
					(unsigned)pe.uid, (int)pe.pid, why);
				send_result(s, seq, msg.hdr.tick, KL_ERR_REFUSED, why);
				refused_msg(s, &pe, KL_ERR_REFUSED, why);
				pipe_doom(s, id);
				break;
			case KL_HELLO_ADMIT:
				pipe_set_role(s, id, (enum kl_role)h.role);
				kl_debug("%s: %s connected (uid %u pid %d)", s->path,
					 kl_role_name(h.role), (unsigned)pe.uid, (int)pe.pid);
				snprintf(txt, sizeof(txt), "hello %s, this is %s",
					 kl_role_name(h.role), kl_role_name(s->self));
				send_result(s, seq, msg.hdr.tick, KL_OK, txt);
				break;
			}
			nng_msg_free(m);
			continue;
		}
		if (pe.role == KL_ROLE_NONE) {
			kl_warn("%s: %s before HELLO from uid %u pid %d", s->path,
				kl_msg_type_name(msg.hdr.type), (unsigned)pe.uid, (int)pe.pid);
			send_result(s, seq, msg.hdr.tick, KL_ERR_REFUSED, NEED_HELLO_TEXT);
			refused_msg(s, &pe, KL_ERR_REFUSED, NEED_HELLO_TEXT);
			nng_msg_free(m);
			continue;
		}
		if (!kl_msg_allowed(pe.role, s->self, msg.hdr.type)) {
			char txt[192];
			snprintf(txt, sizeof(txt), "%s may not send %s to %s",
				 kl_role_name(pe.role), kl_msg_type_name(msg.hdr.type),
				 kl_role_name(s->self));
			kl_warn("%s: closing connection from uid %u pid %d: %s", s->path,
				(unsigned)pe.uid, (int)pe.pid, txt);
			send_result(s, seq, msg.hdr.tick, KL_ERR_REFUSED, txt);
			refused_msg(s, &pe, KL_ERR_REFUSED, txt);
			pipe_doom(s, id);
			nng_msg_free(m);
			continue;
		}

		req->msg = msg;
		req->pipe_id = id;
		req->peer_uid = pe.uid;
		req->peer_gid = pe.gid;
		req->peer_pid = pe.pid;
		req->peer_role = pe.role;
		req->buf = m;
		req->len = len;
		s->pending = true;
		s->pending_pipe = id;
		return 1;
	}
}

uint64_t kl_server_listener_replaced(const struct kl_server *s)
{
	return s->ls.replaced;
}

int kl_server_fd(struct kl_server *s)
{
	int fd = -1, rv;

	if ((rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &fd)) != 0) {
		kl_error("%s: no pollable receive descriptor: %s", s->path, nng_strerror(rv));
		return -1;
	}
	return fd;
}

int kl_server_reply(struct kl_server *s, struct kl_request *req, unsigned type,
		    const uint8_t *payload, size_t len)
{
	nng_msg *m;
	int rv;

	if (!s->pending || req->pipe_id != s->pending_pipe) {
		kl_error("%s: reply without a pending request (answered twice?)", s->path);
		return -1;
	}
	if (!kl_msg_allowed(s->self, req->peer_role, type)) {
		kl_error("%s: %s may not answer %s with %s", s->path, kl_role_name(s->self),
			 kl_role_name(req->peer_role), kl_msg_type_name(type));
		return -1;
	}
	s->pending = false;
	rv = build_msg(&m, type, req->msg.hdr.seq, req->msg.hdr.tick, payload, len);
	if (rv != 0) {
		kl_error("%s: building %s answer: %s", s->path, kl_msg_type_name(type),
			 nng_strerror(rv));
		return -1;
	}
	if ((rv = nng_sendmsg(s->sock, m, 0)) != 0) {
		nng_msg_free(m);
		kl_warn("%s: answer to pid %d not sent: %s", s->path, (int)req->peer_pid,
			nng_strerror(rv));
		return -1;
	}
	return 0;
}

int kl_server_reply_result(struct kl_server *s, struct kl_request *req,
			   int status, const char *text, const char *json)
{
	struct kl_result r;
	size_t tl = text != NULL ? strlen(text) : 0;
	size_t jl = json != NULL ? strlen(json) : 0;
	uint8_t *p;
	int rc;

	if (tl > KL_MSG_MAX_PAYLOAD || jl > KL_MSG_MAX_PAYLOAD ||
	    KL_RESULT_FIXED_LEN + tl + jl > KL_MSG_MAX_PAYLOAD) {
		kl_error("%s: RESULT too large (%zu + %zu bytes)", s->path, tl, jl);
		return -1;
	}
	r.status = status;
	r.text = text != NULL ? text : "";
	r.text_len = (uint32_t)tl;
	r.json = json != NULL ? json : "";
	r.json_len = (uint32_t)jl;
	p = malloc(kl_result_len(&r));
	if (p == NULL)
		return -1;
	kl_result_encode(&r, p);
	/* The text may carry something from outside (an interface name, an
	 * error string); a byte the client's decoder refuses would lose the
	 * whole answer, so it becomes '?'. */
	uint8_t *t = p + KL_RESULT_FIXED_LEN;
	size_t off = 0, bad;
	while ((bad = kl_result_text_check(t + off, tl - off)) < tl - off) {
		t[off + bad] = '?';
		off += bad + 1;
	}
	rc = kl_server_reply(s, req, KL_MSG_RESULT, p, kl_result_len(&r));
	free(p);
	return rc;
}

void kl_request_done(struct kl_request *req)
{
	if (req != NULL && req->buf != NULL) {
		nng_msg_free(req->buf);
		req->buf = NULL;
		req->msg.payload = NULL;
	}
}

void kl_server_close(struct kl_server *s)
{
	if (s == NULL)
		return;
	/* nng_close removes the socket file and runs the REM_POST callbacks,
	 * which still need the table and the mutex. */
	nng_close(s->sock);
	kl_listen_cleanup(&s->ls);
	pthread_mutex_destroy(&s->mu);
	free(s->pipes);
	free(s->allowed_uids);
	free(s);
}

/* ---- client ---- */

static int say_hello(struct kl_client *c, char *err, size_t errlen);

int kl_client_open(struct kl_client **out, const char *path, enum kl_role self,
		   int timeout_ms, char *err, size_t errlen)
{
	struct kl_client *c;
	char url[sizeof(c->path) + 8];
	nng_duration to = timeout_ms > 0 ? timeout_ms : NNG_DURATION_INFINITE;
	int rv;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return kl_fail(err, errlen, "client: no socket path given");
	if (strlen(path) >= sizeof(c->path))
		return kl_fail(err, errlen, "socket path %s is longer than %zu bytes", path,
			       sizeof(c->path) - 1);
	if (self <= KL_ROLE_NONE || self >= KL_ROLE_MAX)
		return kl_fail(err, errlen, "client: invalid role %d", self);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return kl_fail(err, errlen, "out of memory");
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->self = self;
	c->timeout_ms = timeout_ms;
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		kl_fail(err, errlen, "nng_req0_open: %s", nng_strerror(rv));
		free(c);
		return -1;
	}
	/* No automatic resend: a request must not run twice because the
	 * server was slow (a resent "deny add" is harmless, a resent counter
	 * reset is not). */
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
				      KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD + SP_HDR_SLACK)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, to)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, to)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0) {
		kl_fail(err, errlen, "%s: socket options: %s", path, nng_strerror(rv));
		goto fail;
	}
	snprintf(url, sizeof(url), "ipc://%s", path);
	if ((rv = nng_dial(c->sock, url, NULL, 0)) != 0) {
		kl_fail(err, errlen, "cannot connect to %s: %s", path, nng_strerror(rv));
		goto fail;
	}

	/* A connection can be cut under a HELLO (the server restarted its
	 * listener, see ipc/listen.h); HELLO is safe to repeat. */
	for (int attempt = 0;; attempt++) {
		if (say_hello(c, err, errlen) == 0)
			break;
		if (c->last_rv != NNG_ECONNRESET || attempt >= 4)
			goto fail;
		usleep(50 * 1000);
	}
	*out = c;
	return 0;

fail:
	nng_close(c->sock);
	free(c);
	return -1;
}

/* One request, one answer, no retry. */
static int call_once(struct kl_client *c, unsigned type, const uint8_t *payload,
		     size_t len, struct kl_msg *reply, void **reply_buf,
		     char *err, size_t errlen)
{
	nng_msg *m;
	uint64_t seq;
	int rv;
	char why[256];

	*reply_buf = NULL;
	c->last_rv = 0;
	if (len > KL_MSG_MAX_PAYLOAD)
		return kl_fail(err, errlen, "%s: %zu bytes is above the message limit", c->path, len);
	seq = ++c->seq;
	if ((rv = build_msg(&m, type, seq, 0, payload, len)) != 0)
		return kl_fail(err, errlen, "%s: building %s: %s", c->path,
			       kl_msg_type_name(type), nng_strerror(rv));
	if ((rv = nng_sendmsg(c->sock, m, 0)) != 0) {
		nng_msg_free(m);
		c->last_rv = rv;
		return kl_fail(err, errlen, "sending %s to %s: %s", kl_msg_type_name(type),
			       c->path, nng_strerror(rv));
	}
	rv = nng_recvmsg(c->sock, &m, 0);
	c->last_rv = rv;
	if (rv == NNG_ETIMEDOUT)
		return kl_fail(err, errlen, "no answer from %s within %d ms", c->path, c->timeout_ms);
	if (rv == NNG_ECONNRESET)
		return kl_fail(err, errlen, "connection to %s was reset while waiting for the answer "
			       "(the request may or may not have run)", c->path);
	if (rv != 0)
		return kl_fail(err, errlen, "receiving from %s: %s", c->path, nng_strerror(rv));

	size_t n = nng_msg_len(m);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL) {
		nng_msg_free(m);
		return kl_fail(err, errlen, "out of memory");
	}
	memcpy(buf, nng_msg_body(m), n);
	nng_msg_free(m);
	if (kl_msg_decode(buf, n, reply, why, sizeof(why)) < 0) {
		free(buf);
		return kl_fail(err, errlen, "bad answer from %s: %s", c->path, why);
	}
	if (reply->hdr.seq != seq) {
		free(buf);
		return kl_fail(err, errlen, "answer from %s has seq %llu, want %llu", c->path,
			       (unsigned long long)reply->hdr.seq, (unsigned long long)seq);
	}
	*reply_buf = buf;
	return 0;
}

/* HELLO as c->self; 0 when the server answered RESULT OK. */
static int say_hello(struct kl_client *c, char *err, size_t errlen)
{
	struct kl_hello h = {
		.role = (uint16_t)c->self,
		.proto_version = KL_MSG_VERSION,
		.pid = (uint32_t)getpid(),
	};
	uint8_t hp[KL_HELLO_LEN];
	struct kl_msg reply;
	struct kl_result res;
	void *rbuf = NULL;
	char why[256];
	int rc = -1;

	kl_hello_encode(&h, hp);
	if (call_once(c, KL_MSG_HELLO, hp, sizeof(hp), &reply, &rbuf, err, errlen) < 0)
		return -1;
	if (reply.hdr.type != KL_MSG_RESULT)
		kl_fail(err, errlen, "%s answered HELLO with %s, not RESULT", c->path,
			kl_msg_type_name(reply.hdr.type));
	else if (kl_result_decode(reply.payload, reply.payload_len, &res, why, sizeof(why)) < 0)
		kl_fail(err, errlen, "%s: bad answer to HELLO: %s", c->path, why);
	else if (res.status != KL_OK)
		kl_fail(err, errlen, "%s refused us (%s): %.*s", c->path, kl_status_name(res.status),
			(int)(res.text_len > 200 ? 200 : res.text_len), res.text);
	else
		rc = 0;
	free(rbuf);
	return rc;
}

/* True when the answer says this connection has not said HELLO: nng
 * reconnected under us (server restart, or it closed the connection). */
static bool needs_hello(const struct kl_msg *reply)
{
	struct kl_result r;

	if (reply->hdr.type != KL_MSG_RESULT ||
	    kl_result_decode(reply->payload, reply->payload_len, &r, NULL, 0) < 0)
		return false;
	return r.status == KL_ERR_REFUSED && r.text_len == strlen(NEED_HELLO_TEXT) &&
	       memcmp(r.text, NEED_HELLO_TEXT, r.text_len) == 0;
}

int kl_client_call(struct kl_client *c, unsigned type, const uint8_t *payload,
		   size_t len, struct kl_msg *reply, void **reply_buf,
		   char *err, size_t errlen)
{
	if (call_once(c, type, payload, len, reply, reply_buf, err, errlen) < 0)
		return -1;
	if (type == KL_MSG_HELLO || !needs_hello(reply))
		return 0;
	/* The server refused before looking at the request, so sending it
	 * again after a fresh HELLO cannot run it twice. */
	free(*reply_buf);
	*reply_buf = NULL;
	kl_info("%s: connection was re-established; saying HELLO again", c->path);
	if (say_hello(c, err, errlen) < 0)
		return -1;
	c->rehellos++;
	return call_once(c, type, payload, len, reply, reply_buf, err, errlen);
}

uint64_t kl_client_rehellos(const struct kl_client *c)
{
	return c ? c->rehellos : 0;
}

void kl_client_close(struct kl_client *c)
{
	if (c == NULL)
		return;
	nng_close(c->sock);
	free(c);
}
