/* SPDX-License-Identifier: MPL-2.0 */
/* Opening files in directories a less-privileged user can write (safefile.h). */
#include "common/safefile.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

static bool have_user;
static uid_t drop_user;

void kl_safe_set_user(uid_t uid)
{
	have_user = uid != (uid_t)-1;
	drop_user = uid;
}

int kl_safe_owner_ok(uid_t uid)
{
	return !have_user || uid == 0 || uid == geteuid() || uid == drop_user;
}

static const char *type_name(mode_t m)
{
	return S_ISLNK(m) ? "a symlink" : S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory"
	       : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not regular";
}

/* The checks on an open descriptor; closes it on failure. */
static int check_fd(int fd, const char *path, bool dir, unsigned flags, char *err, size_t errlen)
{
	struct stat st;
	int e;

	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return kl_fail_errno(e, err, errlen, "%s: fstat: %s", path, strerror(e));
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		close(fd);
		return kl_fail_errno(dir ? ENOTDIR : EINVAL, err, errlen,
			    "%s: refusing to open it: %s, not a %s", path, type_name(st.st_mode),
			    dir ? "directory" : "regular file");
	}
	if (!dir && !(flags & KL_SAFE_ANY_LINKS) && st.st_nlink != 1) {
		close(fd);
		return kl_fail_errno(EMLINK, err, errlen,
			    "%s: refusing to open it: %lu hard links (a file of ours has one; "
			    "another name may be someone else's file)",
			    path, (unsigned long)st.st_nlink);
	}
	if ((flags & KL_SAFE_OWNED) && !kl_safe_owner_ok(st.st_uid)) {
		close(fd);
		return kl_fail_errno(EPERM, err, errlen,
			    "%s: refusing to open it: owned by uid %u, expected root, uid %u or "
			    "uid %u",
			    path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)drop_user);
	}
	return fd;
}

int kl_safe_openat(int dirfd, const char *path, int oflags, mode_t mode, unsigned flags,
		   char *err, size_t errlen)
{
	/* O_TRUNC would empty a hard link's target before the checks saw it. */
	int fd = openat(dirfd, path,
			(oflags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);
	int e;

	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			return kl_fail_errno(e, err, errlen, "%s: refusing to open it: a symlink", path);
		if (e == ENXIO) /* O_WRONLY on a FIFO without a reader */
			return kl_fail_errno(EINVAL, err, errlen, "%s: refusing to open it: a FIFO", path);
		return kl_fail_errno(e, err, errlen, "%s: cannot open: %s", path, strerror(e));
	}
	if (check_fd(fd, path, false, flags, err, errlen) < 0)
		return -1;
	if (oflags & O_PATH)
		return fd; /* no file status flags to restore */
	if ((oflags & O_TRUNC) && ftruncate(fd, 0) < 0) {
		e = errno;
		close(fd);
		return kl_fail_errno(e, err, errlen, "%s: truncate: %s", path, strerror(e));
	}
	/* Regular files never block; the flag only kept a FIFO from hanging
	 * the open. Cleared so writes behave as the caller expects. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		e = errno;
		close(fd);
		return kl_fail_errno(e, err, errlen, "%s: fcntl: %s", path, strerror(e));
	}
	return fd;
}

int kl_safe_open(const char *path, int oflags, mode_t mode, unsigned flags, char *err,
		 size_t errlen)
{
	return kl_safe_openat(AT_FDCWD, path, oflags, mode, flags, err, errlen);
}

FILE *kl_safe_fopen_read(const char *path, unsigned flags, char *err, size_t errlen)
{
	int fd = kl_safe_open(path, O_RDONLY, 0, flags, err, errlen);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "rb");
	if (f == NULL) {
		int e = errno;
		close(fd);
		kl_fail_errno(e, err, errlen, "%s: %s", path, strerror(e));
	}
	return f;
}

int kl_safe_opendir(const char *path, unsigned flags, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e;

	if (fd < 0) {
		e = errno;
		if (e == ELOOP || e == ENOTDIR) {
			struct stat st;
			if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
				return kl_fail_errno(ELOOP, err, errlen,
					    "%s: refusing to use it as a directory: a symlink", path);
		}
		return kl_fail_errno(e, err, errlen, "%s: %s", path, strerror(e));
	}
	return check_fd(fd, path, true, flags, err, errlen);
}

static int read_fd(int fd, const char *path, size_t max, char **buf, size_t *len, char *err,
		   size_t errlen)
{
	char *b = NULL;
	size_t n = 0, cap = 0;
	int e;

	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(b, cap);
			if (nb == NULL) {
				free(b);
				return kl_fail_errno(ENOMEM, err, errlen, "%s: out of memory", path);
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			free(b);
			return kl_fail_errno(e, err, errlen, "%s: read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			free(b);
			return kl_fail_errno(EFBIG, err, errlen, "%s: larger than %zu bytes", path, max);
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int kl_safe_read_file(const char *path, size_t max, unsigned flags, char **buf, size_t *len,
		      char *err, size_t errlen)
{
	*buf = NULL;
	*len = 0;
	int fd = kl_safe_open(path, O_RDONLY, 0, flags, err, errlen);
	if (fd < 0)
		return -1;
	int rc = read_fd(fd, path, max, buf, len, err, errlen);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int kl_safe_fchown(int fd, const char *what, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (fchown(fd, uid, gid) < 0)
		return kl_fail_errno(errno, err, errlen, "%s: fchown to %d:%d: %s", what, (int)uid, (int)gid,
			    strerror(errno));
	return 0;
}

int kl_safe_fchown_mode(int fd, const char *what, uid_t uid, gid_t gid, mode_t mode, char *err,
			size_t errlen)
{
	char self[64];

	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0)
		return kl_fail_errno(errno, err, errlen, "%s: chown to %d:%d: %s", what, (int)uid,
				     (int)gid, strerror(errno));
	/* fchmod refuses an O_PATH descriptor; its /proc/self/fd name is a
	 * link to this very inode, whatever the directory holds by now. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (chmod(self, mode) < 0)
		return kl_fail_errno(errno, err, errlen, "%s: chmod %04o: %s", what, (unsigned)mode,
				     strerror(errno));
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

const char *kl_path_dir(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash == NULL)
		snprintf(buf, len, ".");
	else if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return buf;
}

/* dir/base: the directory's fd (the path up to the last '/') and the last
 * component. Components before the last may be links the operator chose
 * (e.g. /var/lib -> /data); only the names we create or replace matter. */
static int split_dir(const char *path, char **base, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, e;

	if (slash == NULL) {
		dir = strdup(".");
		*base = strdup(path);
	} else {
		dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		*base = strdup(slash + 1);
	}
	if (dir == NULL || *base == NULL || **base == '\0') {
		free(dir);
		free(*base);
		*base = NULL;
		return kl_fail_errno(EINVAL, err, errlen, "%s: not a file path", path);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e = errno;
	if (fd < 0) {
		kl_fail_errno(e, err, errlen, "%s.tmp: open: its directory %s: %s", path, dir, strerror(e));
		free(*base);
		*base = NULL;
	}
	free(dir);
	return fd;
}

/* Write data to dirfd/name via dirfd/name.tmp and rename it into place. */
static int replace_at(int dirfd, const char *path, const char *name, const char *data,
		      size_t len, mode_t mode, char *err, size_t errlen)
{
	char tmp[512];
	int fd, e;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return kl_fail_errno(ENAMETOOLONG, err, errlen, "%s: name too long", path);
	/* Whatever has that name (a crash's leftover, or a planted link or
	 * FIFO) goes: unlinkat removes the entry itself, never a target. */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return kl_fail_errno(errno, err, errlen, "%s.tmp: unlink: %s", path, strerror(errno));
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return kl_fail_errno(errno, err, errlen, "%s.tmp: create: %s", path, strerror(errno));
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return kl_fail_errno(e, err, errlen, "%s.tmp: write: %s", path, strerror(e));
	}
	if (close(fd) < 0) {
		e = errno;
		unlinkat(dirfd, tmp, 0);
		return kl_fail_errno(e, err, errlen, "%s.tmp: close: %s", path, strerror(e));
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		e = errno;
		unlinkat(dirfd, tmp, 0);
		return kl_fail_errno(e, err, errlen, "%s.tmp -> %s: rename: %s", path, path, strerror(e));
	}
	return 0;
}

int kl_safe_replace(const char *path, const char *data, size_t len, mode_t mode, const char *bak,
		    unsigned flags, char *err, size_t errlen)
{
	char *base = NULL, *old = NULL, bakname[512], bakpath[4096];
	size_t oldlen = 0;
	int rc = -1;
	int dirfd = split_dir(path, &base, err, errlen);

	if (dirfd < 0)
		return -1;
	if (bak != NULL) {
		/* A copy, not a hard link: a file of ours always has one link,
		 * which is what lets the loader refuse a planted hard link. */
		/* Absent, or refused (a planted link, FIFO, foreign file): there
		 * is nothing of ours to keep, and the rename below replaces it. */
		int fd = kl_safe_openat(dirfd, base, O_RDONLY, 0, flags, NULL, 0);
		if (fd >= 0) {
			int r = read_fd(fd, path, 64u << 20, &old, &oldlen, err, errlen);
			close(fd);
			if (r < 0)
				goto out;
			if (snprintf(bakname, sizeof(bakname), "%s%s", base, bak) >=
				    (int)sizeof(bakname) ||
			    snprintf(bakpath, sizeof(bakpath), "%s%s", path, bak) >=
				    (int)sizeof(bakpath)) {
				kl_fail_errno(ENAMETOOLONG, err, errlen, "%s%s: name too long", path, bak);
				goto out;
			}
			if (replace_at(dirfd, bakpath, bakname, old, oldlen, mode, err, errlen) < 0)
				goto out;
		}
	}
	if (replace_at(dirfd, path, base, data, len, mode, err, errlen) < 0)
		goto out;
	if (fsync(dirfd) < 0) {
		kl_fail_errno(errno, err, errlen, "%s: fsync of its directory: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(old);
	free(base);
	close(dirfd);
	return rc;
}

int kl_safe_fs_become(struct kl_fs_as *s, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (geteuid() != 0)
		return 0;
	s->ngroups = getgroups((int)(sizeof(s->groups) / sizeof(s->groups[0])), s->groups);
	if (s->ngroups < 0)
		return kl_fail_errno(errno, err, errlen, "getgroups: %s", strerror(errno));
	if (setgroups(1, &gid) < 0)
		return kl_fail_errno(errno, err, errlen, "setgroups(%u): %s", (unsigned)gid, strerror(errno));
	s->active = 1;
	/* setfs[ug]id report no error; reading back (-1 changes nothing) does. */
	s->fsgid = (gid_t)setfsgid(gid);
	s->fsuid = (uid_t)setfsuid(uid);
	if ((gid_t)setfsgid((gid_t)-1) != gid || (uid_t)setfsuid((uid_t)-1) != uid) {
		kl_safe_fs_restore(s);
		return kl_fail_errno(EPERM, err, errlen, "cannot act on files as uid %u gid %u",
			    (unsigned)uid, (unsigned)gid);
	}
	return 0;
}

void kl_safe_fs_restore(struct kl_fs_as *s)
{
	if (!s->active)
		return;
	setfsuid(s->fsuid);
	setfsgid(s->fsgid);
	/* Cannot fail for root; the sandbox sets the groups again anyway. */
	(void)!setgroups((size_t)s->ngroups, s->groups);
	s->active = 0;
}
