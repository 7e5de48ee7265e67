/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The listener of an nng ipc:// socket that a peer cannot take down
 * (shared by ipc/chan.c and ipc/stream.c).
 *
 * nng 1.5.2 reports a peer that hangs up during the 8-byte SP header
 * exchange as NNG_ECLOSED, the code its socket core reserves for "this
 * listener was closed": the core stops asking the transport for
 * connections, and every later one is accepted and negotiated but parked
 * forever (nanomsg/nng#1518, fixed in 1.6.0). Anyone who may connect() can
 * do that with a bare connect+close; nothing in the API re-arms the core,
 * so the listener must be replaced.
 *
 * Replacing it must work after the privilege drop, without CAP_CHOWN: a
 * new listener binds in a private staging directory beside the socket
 * (".NAME.new", mode 2700, setgid, group = the socket's group), so the
 * socket file is born with its group, and is then renamed over the
 * public path (atomic: the path always answers). The staging directory is
 * made once at start, while we may still chown; started as root, we bind
 * there first while it is still ours (nng sets the mode by path) and then
 * hand it to the user.
 *
 * kl_listen_check, called regularly by the owner, connects to the socket
 * and waits for that connection to reach it (kl_listen_saw_pipe from the
 * ADD_PRE callback, recognised by our pid); when it does not, the listener
 * is replaced. A failed replacement is logged and retried, never fatal.
 */
#ifndef KL_IPC_LISTEN_H
#define KL_IPC_LISTEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <nng/nng.h>

#define KL_LISTEN_CHECK_MS 2000
/* After a replacement, check sooner: a peer that wedged it once may do it
 * again at once. */
#define KL_LISTEN_RECHECK_MS 300
/* A replacement that keeps failing (e.g. the directory is no longer
 * writable) is retried less and less often, up to this. */
#define KL_LISTEN_RETRY_MAX_MS 30000

typedef char kl_sun_path_t[sizeof(((struct sockaddr_un *)0)->sun_path)];

struct kl_listen {
	nng_socket sock;
	nng_listener l;
	bool have_l;
	kl_sun_path_t path;     /* the public socket file */
	kl_sun_path_t stage_dir;
	kl_sun_path_t stage;    /* where a new listener binds before the rename */
	mode_t mode;
	gid_t gid;              /* (gid_t)-1: the socket keeps our group */
	gid_t stage_gid;        /* the group sockets are born with; -1 = ours */
	uid_t owner;            /* the uid we run as after the privilege drop */
	pid_t pid;
	uint16_t peer_proto;    /* SP protocol of this socket's peers */
	int64_t next_check;     /* monotonic ms */
	atomic_uint own_pipes;  /* connections from our own pid (the checks) */
	uint64_t replaced;      /* listeners replaced so far */
	unsigned failed;        /* replacements failed in a row */
};

/* Start listening on `path` for `sock`. `owner` is the uid this process
 * runs as after its privilege drop (0 or -1: ours now); it must be able to
 * rename into the socket's directory (DESIGN: the role dir is its own). */
int kl_listen_start(struct kl_listen *ls, nng_socket sock, const char *path, mode_t mode,
		    gid_t gid, uid_t owner, char *err, size_t errlen);
/* From the ADD_PRE pipe callback, with the peer's pid. */
static inline void kl_listen_saw_pipe(struct kl_listen *ls, pid_t peer_pid)
{
	if (peer_pid == ls->pid)
		atomic_fetch_add(&ls->own_pipes, 1);
}
/* When due (next_check), check that connections still reach the socket
 * and replace the listener if not. Returns 1 when it replaced it. */
int kl_listen_check(struct kl_listen *ls);
/* Force a replacement now (tests; a caller that knows better). */
int kl_listen_replace(struct kl_listen *ls, const char *why);
/* After nng_close() of the socket: remove the socket file and staging dir. */
void kl_listen_cleanup(struct kl_listen *ls);

#endif
