/* SPDX-License-Identifier: MPL-2.0 */
/*
 * One-way frame streams over nng PUSH0/PULL0 on ipc:// sockets: sensor ->
 * decider (telemetry.sock) and sensor -> graphd (flows.sock).
 *
 * The receiver listens; the sender dials in the background, so a receiver
 * that is not running (yet) is not an error: frames sent meanwhile are
 * dropped and counted, never queued for minutes. The sender sends HELLO
 * first on every new connection. The receiver checks each connection's
 * peer uid (SO_PEERCRED), requires HELLO naming its one allowed peer role
 * before anything else on that connection, and hands out only messages
 * that passed kl_msg_decode() and kl_msg_allowed(peer role, self, type).
 * A connection that breaks a rule (wrong role, a type its role may not
 * send) is ignored from then on; a refused uid is disconnected at once.
 * Payload decoding (frames.h) is the caller's job.
 *
 * nng is not fork-safe: fork/exec before the first call here.
 */
#ifndef KL_IPC_STREAM_H
#define KL_IPC_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/frames.h"
#include "ipc/msg.h"

/* ---- sender ---- */

struct kl_stream_tx;

struct kl_stream_tx_stats {
	uint64_t sent;      /* frames handed to a connected receiver */
	uint64_t dropped;   /* no receiver connected, or its queue was full */
	uint64_t hellos;    /* HELLOs sent (one per connection) */
	uint64_t connects;  /* connections made so far */
	unsigned connected; /* connections open now (0 or 1) */
};

/* Start dialing `path` (retried by nng in the background). */
int kl_stream_dial(struct kl_stream_tx **out, const char *path, enum kl_role self, char *err,
		   size_t errlen);
/* Send one wire message (header + payload) without blocking.
 * Returns 0 sent, 1 dropped (counted), -1 on a fatal socket error. */
int kl_stream_send(struct kl_stream_tx *t, const uint8_t *msg, size_t len);
/* The same, but waits up to a second for room in the send queue: for the
 * later frames of a tick, which the receiver needs to complete the tick
 * (a tick of more frames than the queue holds would otherwise always
 * lose its tail while the receiver drains the first ones). */
int kl_stream_send_wait(struct kl_stream_tx *t, const uint8_t *msg, size_t len);
/* A whole tick (ipc/frames.h): frame 0 as kl_stream_send, the later ones
 * as kl_stream_send_wait. A dropped frame ends the tick there (1): the
 * receiver drops a partial tick, so the rest would go for nothing. */
int kl_stream_send_tick(struct kl_stream_tx *t, const struct kl_frame *f);
void kl_stream_tx_stats(struct kl_stream_tx *t, struct kl_stream_tx_stats *out);
void kl_stream_tx_close(struct kl_stream_tx *t);

/* ---- receiver ---- */

struct kl_stream_rx;

struct kl_stream_opts {
	const char *path;          /* socket file, e.g. /run/kernloom/telemetry.sock */
	enum kl_role self;         /* this receiver's role (decider, graphd) */
	enum kl_role peer_role;    /* the only role that may HELLO here (sensor) */
	mode_t mode;               /* socket file mode; 0 = 0600 */
	gid_t gid;                 /* group of the socket file; (gid_t)-1 = keep */
	uid_t owner;               /* uid we run as after the privilege drop; 0 = ours */
	const uid_t *allowed_uids; /* peers allowed besides uid 0 and our own uid */
	size_t n_allowed_uids;
	gid_t allowed_gid;         /* peers in this group are allowed too; -1 = none */
	size_t max_msg;            /* largest message; 0 = header + KL_MSG_MAX_PAYLOAD.
				    * Set it from the configuration (kl_telem_msg_max
				    * ...): a link holds at most 6 * max_msg bytes. */
};

struct kl_stream_msg {
	struct kl_msg msg;         /* passed kl_msg_decode and kl_msg_allowed */
	uint32_t pipe_id;
	uid_t peer_uid;
	pid_t peer_pid;
	enum kl_role peer_role;
	void *buf;                 /* internal: free with kl_stream_msg_done() */
};

struct kl_stream_rx_stats {
	uint64_t delivered;
	uint64_t refused_conns;    /* peers whose uid was not allowed */
	uint64_t refused_msgs;     /* malformed, before HELLO, bad HELLO, forbidden type */
	uint64_t listener_replaced; /* the listener stopped accepting and was replaced */
};

int kl_stream_listen(struct kl_stream_rx **out, const struct kl_stream_opts *o, char *err,
		     size_t errlen);
/* Wait up to timeout_ms (-1 = forever) for the next message that passed
 * every check; refusals are logged (rate-limited) and never returned.
 * Returns 1 with *m filled, 0 on timeout, -1 when the socket is closed. */
int kl_stream_recv(struct kl_stream_rx *r, struct kl_stream_msg *m, int timeout_ms);
/* Without waiting, hand up to max messages to fn (each released after fn
 * returns) while *stop is 0 (stop may be NULL). Returns 0,
 * KL_STREAM_CLOSED when the socket is closed, or fn's result when it is
 * negative (-1: fn failed; the drain ends). */
#define KL_STREAM_CLOSED (-2)
int kl_stream_drain(struct kl_stream_rx *r, int max, const volatile int *stop,
		    int (*fn)(void *ctx, const struct kl_stream_msg *m), void *ctx);
/* A descriptor that polls readable (POLLIN) while a message waits; it is
 * nng's, so only poll it, then call kl_stream_recv(r, m, 0). -1 on error. */
int kl_stream_fd(struct kl_stream_rx *r);
void kl_stream_msg_done(struct kl_stream_msg *m);
void kl_stream_rx_stats(struct kl_stream_rx *r, struct kl_stream_rx_stats *out);
void kl_stream_close(struct kl_stream_rx *r);

#endif
