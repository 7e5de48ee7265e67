/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-role sandboxes (DESIGN §1, §9). Every daemon goes through the same
 * steps in the same order, each once:
 *
 *   1 rlimits        no core dumps; file size and data size capped
 *   2 user           started as root: supplementary groups, gid, uid of
 *                    opts->user (the enforcer keeps its capabilities
 *                    across the switch through SECBIT_NO_SETUID_FIXUP)
 *   3 capabilities   every set (effective, permitted, inheritable,
 *                    ambient, bounding) cut to what the role keeps:
 *                    the enforcer CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON,
 *                    the others nothing
 *   4 no_new_privs
 *   5 Landlock       read-only and read-write paths from opts (the
 *                    daemon's configured paths) plus the NSS files the
 *                    peer checks read; every thread
 *   6 seccomp        the role's allow-list (sandbox/seccomp.c), every
 *                    thread (TSYNC), default action kill-process
 *
 * kl_sandbox_prepare runs before nng starts its threads (they copy the
 * calling thread's credentials when they start): it sets no_new_privs and
 * cuts the bounding set, and for the enforcer, which needs nothing of root
 * after loading and attaching, runs steps 1-4 so that its threads are born
 * as its user with its three capabilities. kl_sandbox_enter, after the
 * setup, runs every step not run yet.
 */
#ifndef KL_SANDBOX_H
#define KL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/msg.h"

#define KL_SB_MAX_PATHS 16

struct kl_sandbox_opts {
	const char *user; /* started as root: become this user; NULL = stay */
	/* Landlock: what the daemon may still open afterwards. A directory
	 * rule covers what is beneath it; a missing path is skipped. */
	const char *ro[KL_SB_MAX_PATHS];
	size_t n_ro;
	const char *rw[KL_SB_MAX_PATHS];
	size_t n_rw;
	char buf[KL_SB_MAX_PATHS][4096]; /* parents made by kl_sandbox_rw_parent */
	size_t n_buf;
};

/* Add a read-only / read-write path (NULL, "" and ":memory:" ignored). */
void kl_sandbox_ro(struct kl_sandbox_opts *o, const char *path);
void kl_sandbox_rw(struct kl_sandbox_opts *o, const char *path);
/* The directory holding `file`, read-write: files replaced by rename
 * (state.json, feedback) and SQLite's -wal/-shm/-journal need it. */
void kl_sandbox_rw_parent(struct kl_sandbox_opts *o, const char *file);
/* The configured file if it exists, else the directory it would appear
 * in (read-only): files re-read when they change may be created later. */
void kl_sandbox_ro_file(struct kl_sandbox_opts *o, const char *file);
/* The role's run directory, <run_dir>/<role>/ (sandbox/rundir.h). */
const char *kl_sandbox_run_dir(const char *run_dir, enum kl_role role, char *buf, size_t len);

/* Steps 1-4 for the enforcer; no_new_privs and the bounding set for the
 * others. Before the first thread exists. 0, or -1 after logging. */
int kl_sandbox_prepare(enum kl_role role, const struct kl_sandbox_opts *o);

/* Every step not run yet, after setup and before the loop. Returns 0, or
 * -1 after logging what failed (the caller must exit: a half-dropped
 * sandbox is worse than none). */
int kl_sandbox_enter(enum kl_role role, const struct kl_sandbox_opts *o);

/* At start, before any privileged work: a role that keeps capabilities
 * and is not root must have them (systemd's AmbientCapabilities=), else a
 * clear error. 0 or -1. */
int kl_sandbox_check_start(enum kl_role role);

/* The capabilities a role keeps, as a bit mask (1ull << CAP_x). */
uint64_t kl_sandbox_keep_mask(enum kl_role role);
/* Whether the role changes user when started as root. */
bool kl_sandbox_switches_user(enum kl_role role);
/* "cap_bpf,cap_net_admin,cap_perfmon" (or "none") for a mask. */
const char *kl_sandbox_caps_text(uint64_t mask, char *buf, size_t len);

/* One allow-list entry: the roles it is for (bit 1 << role) and why it
 * is allowed though the traces (sandbox/traced/) never showed it; NULL
 * for a traced one. */
struct kl_sc_entry {
	const char *name;
	unsigned roles;
	const char *why;
};
extern const struct kl_sc_entry kl_sc_plain[];   /* any arguments */
extern const size_t kl_sc_n_plain;
extern const struct kl_sc_entry kl_sc_special[]; /* argument filters */
extern const size_t kl_sc_n_special;

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
