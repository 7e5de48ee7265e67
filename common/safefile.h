/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Opening files that may sit in a directory a less-privileged user can
 * write (docs/security.md, "Files a daemon opens").
 *
 * A daemon started as root opens its state, feedback, whitelist and
 * database before it drops to its user, and those files live in that
 * user's directory. Whoever can write the directory can put a symlink
 * there (root would read, write or chown the link's target), a FIFO (the
 * open hangs start-up), or a hard link to someone else's file. So every
 * such file is opened here, and only here:
 *   - the last component is never followed (O_NOFOLLOW), a FIFO or device
 *     never blocks the open (O_NONBLOCK, cleared once the file is checked);
 *   - the checks are made on the open descriptor (fstat), so nothing can be
 *     swapped between check and use: regular file, exactly one link, and
 *     (KL_SAFE_OWNED) an owner in {root, us, the user we drop to};
 *   - changes go through the descriptor (fchown, fchmod), never the path.
 * A failure names the file and what was wrong with it.
 */
#ifndef KL_SAFEFILE_H
#define KL_SAFEFILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Flags of kl_safe_open*(). */
#define KL_SAFE_OWNED 0x1u   /* owner must be root, our euid or kl_safe_set_user()'s uid */
#define KL_SAFE_ANY_LINKS 0x2u /* do not require st_nlink == 1 (directories only) */

/* The user this process drops to (or runs as): files it owns pass the
 * KL_SAFE_OWNED check besides root's and our own. Until it is called the
 * owner is not checked at all: one-shot tools (a replay run by an operator
 * on their own files) have no drop ahead and nothing to protect.
 * (uid_t)-1 turns the check off again (tests). */
void kl_safe_set_user(uid_t uid);
/* Whether uid passes the KL_SAFE_OWNED check right now. */
int kl_safe_owner_ok(uid_t uid);

/* The directory path's file lives in, into buf: "." without a '/', "/"
 * for "/name". Returns buf. */
const char *kl_path_dir(const char *path, char *buf, size_t len);

/*
 * open(2) of `path` relative to `dirfd` (AT_FDCWD for a plain path) with the
 * checks above; `oflags` are the caller's (O_RDONLY, O_RDWR | O_CREAT, ...;
 * O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC are added). Returns the fd, or -1
 * with errno set (ENOENT passes through untouched, so a caller can tell an
 * absent file; ELOOP for a symlink, EINVAL for a non-regular file, EMLINK
 * for a hard-linked one, EPERM for a foreign owner) and `err` filled.
 * With O_PATH (a bpffs pin cannot be opened otherwise) a symlink is not
 * refused at the open but by the check, as with the other types.
 */
int kl_safe_openat(int dirfd, const char *path, int oflags, mode_t mode, unsigned flags,
		   char *err, size_t errlen);
int kl_safe_open(const char *path, int oflags, mode_t mode, unsigned flags, char *err,
		 size_t errlen);

/* kl_safe_open(O_RDONLY) as a stdio stream ("rbe"). NULL with errno and err. */
FILE *kl_safe_fopen_read(const char *path, unsigned flags, char *err, size_t errlen);

/* A directory, without following a link at its last component, owner
 * checked as above (KL_SAFE_OWNED). fd or -1 (errno, err). */
int kl_safe_opendir(const char *path, unsigned flags, char *err, size_t errlen);

/* Read all of a file opened through kl_safe_open (at most `max` bytes; NUL
 * terminated). 0, or -1 with errno and err. */
int kl_safe_read_file(const char *path, size_t max, unsigned flags, char **buf, size_t *len,
		      char *err, size_t errlen);

/* fchown/fchmod through the descriptor; `what` names the file in err. */
int kl_safe_fchown(int fd, const char *what, uid_t uid, gid_t gid, char *err, size_t errlen);

/* Owner (-1: unchanged) and mode through the descriptor, an O_PATH one
 * included (fchownat AT_EMPTY_PATH; chmod of /proc/self/fd/N, which names
 * this inode whatever the directory holds by now). 0, or -1 with err. */
int kl_safe_fchown_mode(int fd, const char *what, uid_t uid, gid_t gid, mode_t mode, char *err,
			size_t errlen);

/*
 * Replace `path` with `len` bytes atomically: written to `path.tmp`
 * created afresh (any leftover or planted entry of that name is removed
 * first, never followed: O_CREAT|O_EXCL|O_NOFOLLOW), fsynced, renamed over
 * `path` within the directory's descriptor, the directory fsynced. With
 * `bak` (a suffix such as ".bak"), the current `path` (checked as by
 * kl_safe_open) is first copied to `path<bak>` the same way, so `path` is
 * never absent. 0, or -1 with err.
 */
int kl_safe_replace(const char *path, const char *data, size_t len, mode_t mode, const char *bak,
		    unsigned flags, char *err, size_t errlen);

/*
 * For code that opens files by path itself (SQLite): until
 * kl_safe_fs_restore, this thread reaches the file system as uid:gid
 * (setfsuid/setfsgid, supplementary groups just gid). A file system uid
 * other than 0 also takes CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN and the
 * like out of the effective set (capabilities(7)), so whatever a link
 * planted in the user's directory points to, this thread reaches only what
 * the user could, and what it creates belongs to the user: nothing to chown
 * afterwards. Call it while the process has a single thread (the
 * supplementary groups are per process). No-op unless euid is 0.
 */
struct kl_fs_as {
	int active;
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[256];
};
int kl_safe_fs_become(struct kl_fs_as *s, uid_t uid, gid_t gid, char *err, size_t errlen);
void kl_safe_fs_restore(struct kl_fs_as *s);

#endif
