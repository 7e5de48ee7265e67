/* SPDX-License-Identifier: MPL-2.0 */
/* One run-dir layout for every daemon, klctl and the test tools. */
#include "sandbox/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "sandbox/sandbox.h"

const char *kl_run_role_dir(enum kl_role role)
{
	switch (role) {
	case KL_ROLE_ENFORCER: return "enforcer";
	case KL_ROLE_SENSOR: return "sensor";
	case KL_ROLE_DECIDER: return "decider";
	case KL_ROLE_GRAPHD: return "graphd";
	default: return NULL;
	}
}

int kl_run_path(const char *root, enum kl_role role, const char *name, char *buf, size_t len,
		char *err, size_t errlen)
{
	const char *dir = kl_run_role_dir(role);

	if (dir == NULL) {
		snprintf(err, errlen, "role %s has no run directory", kl_role_name(role));
		return -1;
	}
	if (snprintf(buf, len, "%s/%s/%s", root, dir, name) >= (int)len) {
		snprintf(err, errlen, "--run-dir %s: path too long for %s/%s", root, dir, name);
		return -1;
	}
	return 0;
}

int kl_run_dir_check(const struct stat *st, uid_t owner, char *err, size_t errlen)
{
	if (!S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "not a directory");
		return -1;
	}
	if (st->st_uid != 0 && st->st_uid != owner) {
		snprintf(err, errlen, "owned by uid %u, expected root or uid %u",
			 (unsigned)st->st_uid, (unsigned)owner);
		return -1;
	}
	return 0;
}

static int open_dir_nofollow(int at, const char *name)
{
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Owner first, mode second: fchown may clear the setgid bit. */
static int own_dir(int fd, const char *root, const char *name, uid_t uid, gid_t gid)
{
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, KL_RUN_DIR_MODE) < 0) {
		kl_error("run dir %s/%s: cannot make it %d:%d mode %04o: %s", root, name, (int)uid,
			 (int)gid, KL_RUN_DIR_MODE, strerror(errno));
		return -1;
	}
	return 0;
}

int kl_run_dir_ensure(const char *root, enum kl_role role, uid_t owner, gid_t owner_gid)
{
	const char *name = kl_run_role_dir(role);
	bool root_user = geteuid() == 0;
	char why[128];
	struct stat st;
	int rfd = -1, fd = -1, rc = -1;

	if (name == NULL) {
		kl_error("run dir: role %s has no directory", kl_role_name(role));
		return -1;
	}
	/* The root is the operator's choice (--run-dir) and may sit behind a
	 * link such as /var/run; only the role directory is ours to police. */
	if (mkdir(root, KL_RUN_ROOT_MODE) < 0 && errno != EEXIST) {
		kl_error("run dir %s: cannot create: %s", root, strerror(errno));
		return -1;
	}
	/* O_PATH: the deployed root is 0711, traversable but not readable. */
	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		kl_error("run dir %s: %s", root, strerror(errno));
		return -1;
	}
	if (mkdirat(rfd, name, 0700) < 0 && errno != EEXIST) {
		kl_error("run dir %s/%s: cannot create: %s", root, name, strerror(errno));
		goto out;
	}
	fd = open_dir_nofollow(rfd, name);
	if (fd < 0) {
		kl_error("run dir %s/%s: %s%s", root, name, strerror(errno),
			 errno == ELOOP || errno == ENOTDIR ? " (a link or a file is in its place; "
							      "refusing it)"
							    : "");
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		kl_error("run dir %s/%s: fstat: %s", root, name, strerror(errno));
		goto out;
	}
	if (kl_run_dir_check(&st, owner, why, sizeof(why)) < 0) {
		kl_error("run dir %s/%s: %s; refusing it", root, name, why);
		goto out;
	}
	if (!root_user) {
		/* Deployed: tmpfiles.d made it for us. A scratch root we own
		 * gets the contract's mode so the tests see the same layout. */
		if (st.st_uid == geteuid() && (st.st_mode & 07777) != KL_RUN_DIR_MODE &&
		    fchmod(fd, KL_RUN_DIR_MODE) < 0)
			kl_warn("run dir %s/%s: chmod: %s", root, name, strerror(errno));
		rc = 0;
		goto out;
	}
	struct group *gr = getgrnam(KL_ADMIN_GROUP);
	gid_t gid = gr ? gr->gr_gid : owner_gid;
	/* Root's for the setup (see rundir.h). */
	rc = own_dir(fd, root, name, 0, gid);
out:
	if (fd >= 0)
		close(fd);
	close(rfd);
	return rc;
}

int kl_run_dir_hand_over(const char *root, enum kl_role role, uid_t owner)
{
	const char *name = kl_run_role_dir(role);
	char why[128];
	struct stat st;
	int rfd, fd = -1, rc = -1;

	if (geteuid() != 0 || owner == 0)
		return 0;
	if (name == NULL) {
		kl_error("run dir: role %s has no directory", kl_role_name(role));
		return -1;
	}
	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		kl_error("run dir %s: %s", root, strerror(errno));
		return -1;
	}
	fd = open_dir_nofollow(rfd, name);
	if (fd < 0 || fstat(fd, &st) < 0) {
		kl_error("run dir %s/%s: %s", root, name, strerror(errno));
		goto out;
	}
	if (kl_run_dir_check(&st, owner, why, sizeof(why)) < 0) {
		kl_error("run dir %s/%s: %s; refusing it", root, name, why);
		goto out;
	}
	rc = own_dir(fd, root, name, owner, (gid_t)-1);
out:
	if (fd >= 0)
		close(fd);
	close(rfd);
	return rc;
}
