/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-role privilege drop (DESIGN §1): the single call every daemon makes
 * after its setup (maps open, sockets listening) and before its loop.
 *
 *   enforcer  stays root-owned but keeps only CAP_BPF, CAP_NET_ADMIN and
 *             CAP_PERFMON (the verifier needs PERFMON for our programs'
 *             pointer arithmetic); everything else leaves the effective,
 *             permitted, inheritable, ambient and bounding sets.
 *   others    switch to opts->user (setgroups/setgid/setuid) and keep no
 *             capability at all.
 * Every role gets PR_SET_NO_NEW_PRIVS, so no exec can regain anything.
 */
#ifndef KL_SANDBOX_H
#define KL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/msg.h"

struct kl_sandbox_opts {
	const char *user; /* user to become (roles other than the enforcer); NULL = stay */
};

/*
 * Step 1, before the first thread exists. nng starts its threads with the
 * first socket, and a thread inherits no_new_privs, the bounding set and
 * the capability sets from its creator at that moment; later changes of
 * the main thread do not reach it. So: no_new_privs, the bounding set cut
 * to what the role keeps plus `setup`, and for the enforcer (which stays
 * uid 0) the capability sets cut the same way. `setup` holds what the
 * caller needs only until step 2 (the enforcer: CAP_CHOWN for its socket
 * files); threads created in between keep it until the seccomp step of the
 * sandbox removes the syscalls. Roles that switch user need nothing more:
 * the setuid of step 2 clears every thread's capabilities.
 */
int kl_sandbox_prepare(enum kl_role role, uint64_t setup);

/* Step 2, after setup and before the loop. Returns 0, or -1 after logging
 * what failed (the caller should exit: a half-dropped sandbox is worse
 * than none). */
int kl_sandbox_enter(enum kl_role role, const struct kl_sandbox_opts *o);

/* The capabilities a role keeps, as a bit mask (1ull << CAP_x). */
uint64_t kl_sandbox_keep_mask(enum kl_role role);
/* Whether the role changes user (needs opts->user). */
bool kl_sandbox_switches_user(enum kl_role role);
/* "cap_bpf,cap_net_admin,cap_perfmon" (or "none") for a mask. */
const char *kl_sandbox_caps_text(uint64_t mask, char *buf, size_t len);

/* Group whose members may send klctl requests to every daemon. */
#define KL_ADMIN_GROUP "kernloom-admin"

/* Who an unprivileged daemon (decider, graphd) runs as, and whom its
 * sockets admit besides root and itself. */
struct kl_who {
	bool root;            /* started as root: switches to `user` in step 2 */
	const char *user;     /* to become; NULL = stay as started */
	uid_t uid;            /* after the switch */
	gid_t gid;
	bool have_sensor;     /* kl-sensor's user exists */
	uid_t sensor_uid;
	gid_t sensor_gid;
	gid_t admin_gid;      /* KL_ADMIN_GROUP, or -1 when it does not exist */
};

/* Resolve --user (must exist and not be uid 0 when started as root; not
 * used otherwise), --sensor-user (a missing user is an error only when
 * sensor_user_given) and the admin group. `name` and `sock` (the socket
 * the sensor connects to) are for the messages. 0, or -1 after logging. */
int kl_who_resolve(struct kl_who *w, const char *name, const char *user, const char *sensor_user,
		   bool sensor_user_given, const char *sock);

struct kl_stream_rx;
struct kl_server;

/* Our role directory under the run-dir root (sandbox/rundir.h), made or
 * checked before the sockets in it are opened; w->uid owns it. */
int kl_who_run_dir(const struct kl_who *w, enum kl_role self, const char *root);
/* ... and handed over to w->uid once every socket in it is in place. */
int kl_who_run_dir_done(const struct kl_who *w, enum kl_role self, const char *root);
/* The socket kl-sensor sends to (ROOT/<self>/name): mode 0660, group of
 * the sensor user (else, started as root, our own group, so a sensor
 * running as our user can connect), admitting root, the sensor user and
 * ourselves. Messages above max_msg are refused (0 = the wire limit): pass
 * what the configuration can need (ipc/frames.h kl_telem_msg_max,
 * kl_flows_msg_max). 0, or -1 after logging. */
int kl_who_listen_sensor(const struct kl_who *w, enum kl_role self, const char *root,
			 const char *name, size_t max_msg, struct kl_stream_rx **out);
/* The klctl control socket (ROOT/<self>/name): 0660, group KL_ADMIN_GROUP, and
 * owned by the user we switch to: the server probes its own socket now and
 * then (ipc/chan.h), which after the switch works only on a socket that
 * user owns. 0, or -1 after logging. */
int kl_who_listen_ctl(const struct kl_who *w, enum kl_role self, const char *root,
		      const char *name, struct kl_server **out);
/* ROOT/<role>/name into buf; -1 after logging when it does not fit. */
int kl_who_sock_path(const char *root, enum kl_role role, const char *name, char *buf, size_t len);

#endif
