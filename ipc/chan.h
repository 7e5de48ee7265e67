/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Request/answer channels over nng ipc:// sockets (DESIGN §4).
 *
 * A server listens on a Unix socket path with given permissions, learns each
 * connection's peer uid/gid/pid from the kernel (SO_PEERCRED via nng),
 * refuses peers whose uid is not allowed, requires HELLO as the first
 * message of every connection (answered with RESULT), and refuses any
 * message type the peer's role may not send to this server's role
 * (kl_msg_allowed). Everything a server hands to its caller has passed
 * kl_msg_decode(); the per-type payload decoders are the caller's job.
 *
 * kl_server_recv also checks every 2 s that the listener still hands new
 * connections to the socket, and replaces it if not (ipc/listen.h: nng
 * 1.5.2 stops doing so after a peer hangs up before the SP handshake). A
 * client whose connection was re-established (server or listener restart)
 * is refused until it says HELLO again; kl_client_call does that by itself
 * and resends the refused request, which the server had not run. A
 * connection that has not said HELLO within 5 s is closed.
 *
 * nng is not fork-safe: fork/exec before the first call here.
 */
#ifndef KL_IPC_CHAN_H
#define KL_IPC_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/msg.h"

struct kl_server;
struct kl_client;

/* A connection or message the server turned away by itself, for the
 * owner's audit trail (on_refused below). */
struct kl_refusal {
	uid_t uid;
	pid_t pid;
	enum kl_role role;  /* from its HELLO; KL_ROLE_NONE before one */
	int status;         /* KL_ERR_REFUSED or KL_ERR_INVALID */
	char why[192];
};

struct kl_server_opts {
	const char *path;          /* socket file, e.g. /run/kernloom/enforcer.sock */
	enum kl_role self;         /* this server's role */
	enum kl_role peer_role;    /* the only role that may HELLO on this socket */
	mode_t mode;               /* socket file mode, e.g. 0660; 0 = 0600 */
	gid_t gid;                 /* group of the socket file; (gid_t)-1 = keep */
	uid_t owner;               /* uid we run as after the privilege drop; 0 = ours */
	const uid_t *allowed_uids; /* peers allowed besides uid 0 and our own uid */
	size_t n_allowed_uids;
	gid_t admin_gid;           /* peers in this group are allowed too; -1 = none */
	size_t max_msg;            /* largest message accepted; 0 = 1 MiB */
	/* Told of each connection or message the server turns away itself
	 * (uid not admitted, too many connections, a bad or refused HELLO, a
	 * request before HELLO, a type the role may not send, a malformed or
	 * too large frame), always on the thread calling kl_server_recv;
	 * NULL: they are only logged. */
	void (*on_refused)(void *arg, const struct kl_refusal *r);
	void *on_refused_arg;
};

/* A request handed to the caller. `buf` owns the bytes msg points into. */
struct kl_request {
	struct kl_msg msg;
	uint32_t pipe_id;
	uid_t peer_uid;
	gid_t peer_gid;
	pid_t peer_pid;
	enum kl_role peer_role;    /* from the connection's HELLO */
	void *buf;                 /* internal: free with kl_request_done() */
	size_t len;
};

int kl_server_open(struct kl_server **out, const struct kl_server_opts *o,
		   char *err, size_t errlen);
/* Wait up to timeout_ms for the next request that passed every check.
 * HELLO, bad frames and forbidden types are answered (RESULT with a reason)
 * and logged inside; they never reach the caller.
 * Returns 1 with *req filled, 0 on timeout, -1 only once the socket was
 * closed (kl_server_close): nothing a peer does makes it fail. */
int kl_server_recv(struct kl_server *s, struct kl_request *req, int timeout_ms);
/* One wakeup's share of a daemon's control socket: hand at most max
 * waiting requests to fn (which answers each), without waiting for more.
 * The bound keeps a busy klctl from starving the daemon's other sockets.
 * Returns how many were served, or -1 once kl_server_recv failed: the
 * caller then goes on without the socket. */
typedef void (*kl_serve_fn)(void *ctx, struct kl_request *req);
int kl_server_serve(struct kl_server *s, int max, kl_serve_fn fn, void *ctx);
/* The same for a daemon that carries on without its control socket when
 * it fails: logs `lost` as an error, closes *s and sets it to NULL.
 * Returns -1 then (the caller forgets the socket's descriptor), else 0. */
int kl_server_serve_or_close(struct kl_server **s, int max, kl_serve_fn fn, void *ctx,
			     const char *lost);
/* A descriptor that polls readable (POLLIN) while a message waits to be
 * received; it is nng's, so only poll it: never read, write or close it.
 * A server with several sockets polls them all, then calls
 * kl_server_recv(s, req, 0) on the ready ones (and now and then on every
 * one: the listener check above runs from kl_server_recv). -1 on error. */
int kl_server_fd(struct kl_server *s);
/* Listeners replaced so far because connections no longer reached the
 * socket (ipc/listen.h); read it from the thread that calls kl_server_recv. */
uint64_t kl_server_listener_replaced(const struct kl_server *s);
/* Answer the request last returned by kl_server_recv (exactly once). */
int kl_server_reply(struct kl_server *s, struct kl_request *req, unsigned type,
		    const uint8_t *payload, size_t len);
/* Shorthand: answer with a RESULT. json may be NULL. */
int kl_server_reply_result(struct kl_server *s, struct kl_request *req,
			   int status, const char *text, const char *json);
void kl_request_done(struct kl_request *req);
void kl_server_close(struct kl_server *s);

/* Dial `path`, send HELLO as `self`, and wait for its RESULT. */
int kl_client_open(struct kl_client **out, const char *path, enum kl_role self,
		   int timeout_ms, char *err, size_t errlen);
/* Send one message and wait for the answer. On success *reply points into
 * *reply_buf (free() it) and has passed kl_msg_decode(). */
int kl_client_call(struct kl_client *c, unsigned type, const uint8_t *payload,
		   size_t len, struct kl_msg *reply, void **reply_buf,
		   char *err, size_t errlen);
/* How often kl_client_call found the connection re-established under it
 * (the server restarted) and said HELLO again. The server may have lost
 * state the caller relies on: the decider reconciles when this grows. */
uint64_t kl_client_rehellos(const struct kl_client *c);
void kl_client_close(struct kl_client *c);

#endif
