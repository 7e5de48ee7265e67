/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The run directory (deployment contract): --run-dir names a root (default
 * /run/kernloom) holding one directory per role, enforcer/ sensor/
 * decider/ graphd/. A daemon creates sockets only in its own and connects
 * to a peer in the peer's, so Landlock and ReadWritePaths= can give each
 * role just its own directory.
 *
 * A role directory is owned by the role's user, group kernloom-admin, mode
 * 2751: setgid, so the klctl sockets inside inherit kernloom-admin without
 * a chown (no daemon keeps CAP_CHOWN); "others" may only traverse it to
 * reach the one socket whose own 0660 mode and group admit them.
 */
#ifndef KL_RUNDIR_H
#define KL_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ipc/msg.h"

#define KL_RUN_ROOT_DEFAULT "/run/kernloom"
#define KL_RUN_DIR_MODE 02751
/* The root only needs to be traversed by the daemons and the operators. */
#define KL_RUN_ROOT_MODE 0711

/* "enforcer", "sensor", "decider", "graphd"; NULL for any other role. */
const char *kl_run_role_dir(enum kl_role role);

/* ROOT/<role dir>/NAME into buf. -1 (and a message in err) when the role
 * has no directory or the path does not fit. */
int kl_run_path(const char *root, enum kl_role role, const char *name, char *buf, size_t len,
		char *err, size_t errlen);

/* Whether an existing role directory may be taken over: a directory (not
 * a link, FIFO, ...) owned by root or by `owner`. 0, or -1 with the reason
 * in err. Pure, for the unit tests. */
int kl_run_dir_check(const struct stat *st, uid_t owner, char *err, size_t errlen);

/*
 * Make sure ROOT/<role>/ exists before the daemon listens in it.
 *
 * Started as root (by hand, before the privilege drop): creates ROOT (0711)
 * and the role directory if missing, and makes the role directory
 * root:(kernloom-admin, else owner_gid), mode 2751 for the setup -- through
 * a descriptor opened with O_NOFOLLOW, never by path, so a link planted in
 * its place is refused rather than followed. While root creates and chowns
 * its sockets in there (by path: nng binds a path), the role user cannot
 * swap a link in; kl_run_dir_hand_over gives it to the user afterwards.
 * An existing directory owned by anyone but root or `owner` is refused.
 * Not root (systemd started us as our user; tmpfiles.d made the
 * directories): the directory must exist or be creatable by us; nothing is
 * chowned.
 * 0, or -1 after logging what failed (file and reason).
 */
int kl_run_dir_ensure(const char *root, enum kl_role role, uid_t owner, gid_t owner_gid);

/* Root only, once the sockets are in place and before the drop: the role
 * directory goes to `owner` (who must be able to replace its own sockets
 * later), again through an O_NOFOLLOW descriptor. A no-op when not root or
 * when owner is root. 0, or -1 after logging. */
int kl_run_dir_hand_over(const char *root, enum kl_role role, uid_t owner);

#endif
