/* SPDX-License-Identifier: MPL-2.0 */
/*
 * One-way frame streams (PUSH0 -> PULL0). The same monitor rules as the
 * request channels (chan.c), minus the answers: a refused message is
 * logged and dropped, a peer that sends what its role may not is cut off.
 *
 * Cutting off: a connection refused by uid is closed in the ADD_PRE
 * callback, before it carries anything. An established connection is not
 * closed but banned (everything it sends from then on is dropped): with
 * nng 1.5.2, closing established pipes that still have data in flight can
 * make a later nng_close() of the socket hang forever (reproduced here
 * with a few such closes; not with ADD_PRE refusals).
 *
 * Sender: nng keeps at most SEND_QUEUE frames for a connected receiver. We
 * never hand nng a frame while nothing is connected, so no stale frame
 * can wait for the next receiver. PUSH cannot address one connection, and
 * nng may still count a dying connection as ready when the new one comes
 * up, so a HELLO sent once could go to the dying one: for HELLO_WINDOW_MS
 * from the first send after any new connection every frame is preceded by
 * a HELLO, and the receiver takes a repeated identical HELLO as a no-op.
 */
#include "ipc/stream.h"
#include "common/err.h"
#include "ipc/listen.h"
#include "ipc/peer.h"
#include "ipc/wire.h"

#include <errno.h>
#include <malloc.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "common/log.h"

#define SEND_QUEUE 4
/* kl_stream_send_wait: how long a tick's later frame may wait for room. */
#define SEND_WAIT_MS 1000
/* What one link may hold in memory is bounded: nng allocates a message as
 * soon as its length arrives (up to max_msg), once per connection, plus
 * RECV_QUEUE messages waiting for us. One sensor needs one connection
 * (two across a reconnect) and our listener check a third. */
#define RECV_QUEUE 2
#define MAX_PIPES 4
#define REFUSAL_LOGS_PER_S 10
/* Redial quickly: a decider restart should cost a tick or two, not more. */
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 1000
#define HELLO_WINDOW_MS 3000

typedef char sun_path_t[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* A frame of a few hundred thousand sources is tens of MB, every tick, on
 * both ends. glibc serves allocations above 32 MB (and any that a thread
 * arena cannot hold, 64 MB) with a fresh mmap and unmaps them on free, so
 * each tick would fault in and zero every page again: about half of the
 * time of a 64 MB frame here. One arena and a high mmap threshold keep
 * that memory in the heap from tick to tick. */
static void keep_frame_memory(void)
{
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

static pthread_once_t frame_memory_once = PTHREAD_ONCE_INIT;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sender ---- */

struct kl_stream_tx {
	nng_socket sock;
	sun_path_t path;
	enum kl_role self;
	atomic_uint connected;
	atomic_llong hello_until; /* monotonic ms: send HELLOs until then */
	atomic_int hello_pending; /* a connection came up: the window starts
				   * at the next send, however late it is */
	atomic_ullong connects;
	uint64_t sent, dropped, hellos;
};

static void tx_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct kl_stream_tx *t = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		/* Before the pipe can carry anything, so no frame can overtake
		 * the HELLO the next send will queue. */
		atomic_fetch_add(&t->connected, 1);
		atomic_fetch_add(&t->connects, 1);
		atomic_store(&t->hello_pending, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&t->connected, 1);
	}
}

int kl_stream_dial(struct kl_stream_tx **out, const char *path, enum kl_role self, char *err,
		   size_t errlen)
{
	struct kl_stream_tx *t;
	char url[sizeof(sun_path_t) + 8];
	int rv;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return kl_fail(err, errlen, "stream: no socket path given");
	if (strlen(path) >= sizeof(sun_path_t))
		return kl_fail(err, errlen, "socket path %s is longer than %zu bytes", path,
			       sizeof(sun_path_t) - 1);
	if (self <= KL_ROLE_NONE || self >= KL_ROLE_MAX)
		return kl_fail(err, errlen, "stream %s: invalid role %d", path, self);
	pthread_once(&frame_memory_once, keep_frame_memory);
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return kl_fail(err, errlen, "out of memory");
	snprintf(t->path, sizeof(t->path), "%s", path);
	t->self = self;
	if ((rv = nng_push0_open(&t->sock)) != 0) {
		kl_fail(err, errlen, "nng_push0_open: %s", nng_strerror(rv));
		free(t);
		return -1;
	}
	if ((rv = nng_socket_set_int(t->sock, NNG_OPT_SENDBUF, SEND_QUEUE)) != 0 ||
	    (rv = nng_socket_set_ms(t->sock, NNG_OPT_SENDTIMEO, SEND_WAIT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(t->sock, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(t->sock, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS)) != 0 ||
	    (rv = nng_pipe_notify(t->sock, NNG_PIPE_EV_ADD_PRE, tx_pipe_event, t)) != 0 ||
	    (rv = nng_pipe_notify(t->sock, NNG_PIPE_EV_REM_POST, tx_pipe_event, t)) != 0) {
		kl_fail(err, errlen, "%s: socket options: %s", path, nng_strerror(rv));
		goto fail;
	}
	snprintf(url, sizeof(url), "ipc://%s", path);
	/* Non-blocking: nng keeps redialing until a receiver listens. */
	if ((rv = nng_dial(t->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		kl_fail(err, errlen, "cannot dial %s: %s", path, nng_strerror(rv));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	nng_close(t->sock);
	free(t);
	return -1;
}

static int tx_put(struct kl_stream_tx *t, const uint8_t *buf, size_t len, int flags)
{
	nng_msg *m;
	int rv;

	if ((rv = nng_msg_alloc(&m, len)) != 0)
		return rv;
	memcpy(nng_msg_body(m), buf, len);
	rv = nng_sendmsg(t->sock, m, flags);
	if (rv != 0)
		nng_msg_free(m);
	return rv;
}

static int stream_send(struct kl_stream_tx *t, const uint8_t *msg, size_t len, int flags)
{
	int rv;

	if (atomic_load(&t->connected) == 0) {
		t->dropped++;
		return 1;
	}
	/* From the first send after a connection, not from the connection:
	 * a sender whose first frame comes later than the window (a long
	 * first harvest, a long interval) must still say HELLO. */
	if (atomic_exchange(&t->hello_pending, 0))
		atomic_store(&t->hello_until, now_ms() + HELLO_WINDOW_MS);
	if (now_ms() < atomic_load(&t->hello_until)) {
		struct kl_hello h = {
			.role = (uint16_t)t->self,
			.proto_version = KL_MSG_VERSION,
			.pid = (uint32_t)getpid(),
		};
		uint8_t b[KL_MSG_HDR_LEN + KL_HELLO_LEN];
		struct kl_msg_hdr mh = {
			.magic = KL_MSG_MAGIC,
			.version = KL_MSG_VERSION,
			.type = KL_MSG_HELLO,
			.payload_len = KL_HELLO_LEN,
		};

		kl_msg_hdr_encode(&mh, b);
		kl_hello_encode(&h, b + KL_MSG_HDR_LEN);
		rv = tx_put(t, b, sizeof(b), flags);
		if (rv != 0) {
			t->dropped++;
			if (rv == NNG_ECLOSED)
				return -1;
			kl_debug("%s: HELLO not sent (%s); frame dropped", t->path, nng_strerror(rv));
			return 1;
		}
		t->hellos++;
	}
	rv = tx_put(t, msg, len, flags);
	if (rv == 0) {
		t->sent++;
		return 0;
	}
	t->dropped++;
	if (rv == NNG_ECLOSED)
		return -1;
	kl_debug("%s: frame of %zu bytes dropped: %s", t->path, len, nng_strerror(rv));
	return 1;
}

int kl_stream_send(struct kl_stream_tx *t, const uint8_t *msg, size_t len)
{
	return stream_send(t, msg, len, NNG_FLAG_NONBLOCK);
}

int kl_stream_send_wait(struct kl_stream_tx *t, const uint8_t *msg, size_t len)
{
	return stream_send(t, msg, len, 0);
}

int kl_stream_send_tick(struct kl_stream_tx *t, const struct kl_frame *f)
{
	for (uint32_t i = 0; i < f->nmsg; i++) {
		size_t len;
		const uint8_t *m = kl_frame_msg(f, i, &len);
		int rc = i == 0 ? kl_stream_send(t, m, len) : kl_stream_send_wait(t, m, len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void kl_stream_tx_stats(struct kl_stream_tx *t, struct kl_stream_tx_stats *out)
{
	out->sent = t->sent;
	out->dropped = t->dropped;
	out->hellos = t->hellos;
	out->connects = atomic_load(&t->connects);
	out->connected = atomic_load(&t->connected);
}

void kl_stream_tx_close(struct kl_stream_tx *t)
{
	if (t == NULL)
		return;
	nng_close(t->sock);
	free(t);
}

/* ---- receiver ---- */

struct rx_pipe {
	uint32_t id;
	nng_pipe pipe;
	uid_t uid;
	pid_t pid;
	enum kl_role role; /* KL_ROLE_NONE until HELLO */
	bool banned;       /* broke the rules: everything it sends is dropped */
};

struct kl_stream_rx {
	nng_socket sock;
	sun_path_t path;
	enum kl_role self, peer_role;
	uid_t *allowed_uids;
	size_t n_allowed_uids;
	gid_t allowed_gid;
	size_t max_msg;

	pthread_mutex_t mu; /* guards pipes, npipes, the log limiter, refused_conns */
	struct rx_pipe pipes[MAX_PIPES];
	size_t npipes;
	int64_t log_window;
	unsigned log_count, log_dropped;
	uint64_t refused_conns;

	uint64_t delivered, refused_msgs;
	struct kl_listen ls;
};

static bool peer_allowed(const struct kl_stream_rx *r, uid_t uid, gid_t gid)
{
	return kl_peer_allowed(uid, gid, r->allowed_uids, r->n_allowed_uids, r->allowed_gid);
}

/* A local user can reconnect or send garbage in a loop; the log must not
 * become the denial of service. Called with r->mu held. */
static bool log_ok_locked(struct kl_stream_rx *r)
{
	int64_t t = now_ms();

	if (t - r->log_window >= 1000) {
		if (r->log_dropped > 0)
			kl_warn("%s: %u more refusals not logged", r->path, r->log_dropped);
		r->log_window = t;
		r->log_count = 0;
		r->log_dropped = 0;
	}
	if (r->log_count < REFUSAL_LOGS_PER_S) {
		r->log_count++;
		return true;
	}
	r->log_dropped++;
	return false;
}

static bool log_ok(struct kl_stream_rx *r)
{
	pthread_mutex_lock(&r->mu);
	bool ok = log_ok_locked(r);
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static void rx_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct kl_stream_rx *r = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		uint64_t uid = UINT64_MAX, gid = UINT64_MAX, pid = 0;
		const char *why = NULL;

		if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0 ||
		    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) != 0)
			why = "no peer credentials";
		else if (!peer_allowed(r, (uid_t)uid, (gid_t)gid))
			why = "uid not allowed";
		(void)nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid);
		kl_listen_saw_pipe(&r->ls, (pid_t)pid);
		pthread_mutex_lock(&r->mu);
		if (why == NULL && r->npipes >= MAX_PIPES)
			why = "too many connections";
		if (why == NULL) {
			struct rx_pipe *e = &r->pipes[r->npipes++];
			e->id = id;
			e->pipe = p;
			e->uid = (uid_t)uid;
			e->pid = (pid_t)pid;
			e->role = KL_ROLE_NONE;
		} else {
			r->refused_conns++;
			if (log_ok_locked(r))
				kl_warn("%s: refused connection from uid %llu gid %llu pid %llu: %s",
					r->path, (unsigned long long)uid, (unsigned long long)gid,
					(unsigned long long)pid, why);
		}
		pthread_mutex_unlock(&r->mu);
		if (why != NULL)
			nng_pipe_close(p);
		return;
	}
	if (ev == NNG_PIPE_EV_REM_POST) {
		struct rx_pipe gone = { 0 };
		pthread_mutex_lock(&r->mu);
		for (size_t i = 0; i < r->npipes; i++) {
			if (r->pipes[i].id == id) {
				gone = r->pipes[i];
				r->pipes[i] = r->pipes[--r->npipes];
				break;
			}
		}
		/* nng drops a connection whose message is over max_msg without
		 * telling us; this line is the only trace of it. */
		if (gone.role != KL_ROLE_NONE && log_ok_locked(r))
			kl_info("%s: %s (uid %u pid %d) disconnected: it closed the connection, or "
				"sent a message over the %zu-byte limit", r->path,
				kl_role_name(gone.role), (unsigned)gone.uid, (int)gone.pid,
				r->max_msg);
		pthread_mutex_unlock(&r->mu);
	}
}

static bool rx_pipe_get(struct kl_stream_rx *r, uint32_t id, struct rx_pipe *out)
{
	bool found = false;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->npipes; i++) {
		if (r->pipes[i].id == id) {
			*out = r->pipes[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

static void rx_pipe_set(struct kl_stream_rx *r, uint32_t id, enum kl_role role, bool banned)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->npipes; i++) {
		if (r->pipes[i].id == id) {
			r->pipes[i].role = role;
			r->pipes[i].banned = banned;
		}
	}
	pthread_mutex_unlock(&r->mu);
}

int kl_stream_listen(struct kl_stream_rx **out, const struct kl_stream_opts *o, char *err,
		     size_t errlen)
{
	struct kl_stream_rx *r;
	int rv;

	*out = NULL;
	if (o == NULL || o->path == NULL || o->path[0] == '\0')
		return kl_fail(err, errlen, "stream: no socket path given");
	if (strlen(o->path) >= sizeof(sun_path_t))
		return kl_fail(err, errlen, "socket path %s is longer than %zu bytes", o->path,
			       sizeof(sun_path_t) - 1);
	if (o->self <= KL_ROLE_NONE || o->self >= KL_ROLE_MAX || o->peer_role <= KL_ROLE_NONE ||
	    o->peer_role >= KL_ROLE_MAX)
		return kl_fail(err, errlen, "stream %s: invalid self/peer role %d/%d", o->path,
			       o->self, o->peer_role);
	if (o->n_allowed_uids > 0 && o->allowed_uids == NULL)
		return kl_fail(err, errlen, "stream %s: n_allowed_uids without allowed_uids",
			       o->path);
	pthread_once(&frame_memory_once, keep_frame_memory);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return kl_fail(err, errlen, "out of memory");
	if (o->n_allowed_uids > 0) {
		r->allowed_uids = calloc(o->n_allowed_uids, sizeof(uid_t));
		if (r->allowed_uids == NULL) {
			free(r);
			return kl_fail(err, errlen, "out of memory");
		}
		memcpy(r->allowed_uids, o->allowed_uids, o->n_allowed_uids * sizeof(uid_t));
	}
	r->n_allowed_uids = o->n_allowed_uids;
	snprintf(r->path, sizeof(r->path), "%s", o->path);
	r->self = o->self;
	r->peer_role = o->peer_role;
	r->allowed_gid = o->allowed_gid;
	r->max_msg = o->max_msg != 0 ? o->max_msg : KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD;
	if (r->max_msg > KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD)
		r->max_msg = KL_MSG_HDR_LEN + (size_t)KL_MSG_MAX_PAYLOAD;
	pthread_mutex_init(&r->mu, NULL);

	if (kl_clear_stale_socket(r->path, err, errlen) < 0)
		goto fail_nosock;
	if ((rv = nng_pull0_open(&r->sock)) != 0) {
		kl_fail(err, errlen, "nng_pull0_open: %s", nng_strerror(rv));
		goto fail_nosock;
	}
	if ((rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, r->max_msg)) != 0 ||
	    (rv = nng_socket_set_int(r->sock, NNG_OPT_RECVBUF, RECV_QUEUE)) != 0 ||
	    (rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_PRE, rx_pipe_event, r)) != 0 ||
	    (rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, rx_pipe_event, r)) != 0) {
		kl_fail(err, errlen, "%s: socket options: %s", r->path, nng_strerror(rv));
		goto fail;
	}
	if (kl_listen_start(&r->ls, r->sock, r->path, o->mode, o->gid, o->owner, err, errlen) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	nng_close(r->sock);
fail_nosock:
	pthread_mutex_destroy(&r->mu);
	free(r->allowed_uids);
	free(r);
	return -1;
}

int kl_stream_recv(struct kl_stream_rx *r, struct kl_stream_msg *out, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		nng_duration wait = NNG_DURATION_INFINITE;
		struct rx_pipe pe;
		struct kl_msg msg;
		char why[256];
		nng_msg *m;
		int rv;

		kl_listen_check(&r->ls);
		int64_t t = now_ms();
		if (timeout_ms >= 0) {
			int64_t left = deadline - t;
			wait = left > 0 ? (nng_duration)left : 0;
		}
		/* Wake up for the next listener check. */
		if (wait != 0 && (wait == NNG_DURATION_INFINITE || r->ls.next_check - t < wait))
			wait = r->ls.next_check > t ? (nng_duration)(r->ls.next_check - t) : 1;
		/* A receive timeout of 0 is not "whatever is queued": nng 1.5.2
		 * then times out even with a message ready (the poll fd says
		 * readable). Non-blocking receives take it. */
		if (wait == 0) {
			rv = nng_recvmsg(r->sock, &m, NNG_FLAG_NONBLOCK);
		} else {
			nng_socket_set_ms(r->sock, NNG_OPT_RECVTIMEO, wait);
			rv = nng_recvmsg(r->sock, &m, 0);
		}
		if (rv == NNG_ETIMEDOUT || rv == NNG_EAGAIN) {
			if (timeout_ms < 0 || now_ms() < deadline)
				continue; /* woke up for the listener check */
			return 0;
		}
		if (rv == NNG_ECLOSED)
			return -1; /* only kl_stream_close does that */
		if (rv != 0) {
			/* Nothing a peer does stops the receiver; a persistent
			 * error must not spin either. */
			if (log_ok(r))
				kl_warn("%s: receive: %s", r->path, nng_strerror(rv));
			usleep(10 * 1000);
			if (timeout_ms >= 0 && now_ms() >= deadline)
				return 0;
			continue;
		}

		nng_pipe p = nng_msg_get_pipe(m);
		uint32_t id = (uint32_t)nng_pipe_id(p);
		const uint8_t *body = nng_msg_body(m);
		size_t len = nng_msg_len(m);

		if (!rx_pipe_get(r, id, &pe)) {
			/* Refused in the callback, or gone already. */
			nng_msg_free(m);
			continue;
		}
		if (pe.banned) {
			r->refused_msgs++;
			nng_msg_free(m);
			continue;
		}
		if (kl_msg_decode(body, len, &msg, why, sizeof(why)) < 0) {
			r->refused_msgs++;
			if (log_ok(r))
				kl_warn("%s: malformed message from uid %u pid %d: %s", r->path,
					(unsigned)pe.uid, (int)pe.pid, why);
			nng_msg_free(m);
			continue;
		}
		if (msg.hdr.type == KL_MSG_HELLO) {
			struct kl_hello h;
			enum kl_hello_verdict v =
				kl_hello_admit(&msg, pe.role, r->peer_role, &h, why, sizeof(why));

			if (v == KL_HELLO_ADMIT) {
				rx_pipe_set(r, id, (enum kl_role)h.role, false);
				kl_debug("%s: %s connected (uid %u pid %d)", r->path,
					 kl_role_name(h.role), (unsigned)pe.uid, (int)pe.pid);
			} else if (v != KL_HELLO_AGAIN) {
				/* A repeated identical HELLO is the sender's
				 * reconnect window (above); anything else bans. */
				r->refused_msgs++;
				if (log_ok(r))
					kl_warn("%s: refused HELLO from uid %u pid %d: %s; ignoring this connection",
						r->path, (unsigned)pe.uid, (int)pe.pid, why);
				rx_pipe_set(r, id, pe.role, true);
			}
			nng_msg_free(m);
			continue;
		}
		if (pe.role == KL_ROLE_NONE) {
			/* Not fatal: a frame queued before a reconnect can arrive
			 * ahead of the new connection's HELLO. */
			r->refused_msgs++;
			if (log_ok(r))
				kl_warn("%s: %s before HELLO from uid %u pid %d; dropped", r->path,
					kl_msg_type_name(msg.hdr.type), (unsigned)pe.uid, (int)pe.pid);
			nng_msg_free(m);
			continue;
		}
		if (!kl_msg_allowed(pe.role, r->self, msg.hdr.type)) {
			r->refused_msgs++;
			if (log_ok(r))
				kl_warn("%s: %s may not send %s to %s; ignoring the connection from uid %u pid %d from now on",
					r->path, kl_role_name(pe.role), kl_msg_type_name(msg.hdr.type),
					kl_role_name(r->self), (unsigned)pe.uid, (int)pe.pid);
			rx_pipe_set(r, id, pe.role, true);
			nng_msg_free(m);
			continue;
		}
		out->msg = msg;
		out->pipe_id = id;
		out->peer_uid = pe.uid;
		out->peer_pid = pe.pid;
		out->peer_role = pe.role;
		out->buf = m;
		r->delivered++;
		return 1;
	}
}

int kl_stream_fd(struct kl_stream_rx *r)
{
	int fd = -1, rv;

	if ((rv = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &fd)) != 0) {
		kl_error("%s: no pollable receive descriptor: %s", r->path, nng_strerror(rv));
		return -1;
	}
	return fd;
}

void kl_stream_msg_done(struct kl_stream_msg *m)
{
	if (m != NULL && m->buf != NULL) {
		nng_msg_free(m->buf);
		m->buf = NULL;
		m->msg.payload = NULL;
	}
}

void kl_stream_rx_stats(struct kl_stream_rx *r, struct kl_stream_rx_stats *out)
{
	out->delivered = r->delivered;
	out->refused_msgs = r->refused_msgs;
	out->listener_replaced = r->ls.replaced;
	pthread_mutex_lock(&r->mu);
	out->refused_conns = r->refused_conns;
	pthread_mutex_unlock(&r->mu);
}

void kl_stream_close(struct kl_stream_rx *r)
{
	if (r == NULL)
		return;
	/* nng_close runs the REM_POST callbacks, which need the mutex. */
	nng_close(r->sock);
	kl_listen_cleanup(&r->ls);
	pthread_mutex_destroy(&r->mu);
	free(r->allowed_uids);
	free(r);
}

int kl_stream_drain(struct kl_stream_rx *r, int max, const volatile int *stop,
		    int (*fn)(void *ctx, const struct kl_stream_msg *m), void *ctx)
{
	for (int i = 0; i < max && (stop == NULL || !*stop); i++) {
		struct kl_stream_msg m;
		int got = kl_stream_recv(r, &m, 0);
		if (got == 0)
			return 0;
		if (got < 0)
			return KL_STREAM_CLOSED;
		int rc = fn(ctx, &m);
		kl_stream_msg_done(&m);
		if (rc < 0)
			return rc;
	}
	return 0;
}
