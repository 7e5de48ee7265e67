/* SPDX-License-Identifier: MPL-2.0 */
/*
 * common/safefile: what a daemon opens in a directory its user can write.
 * A symlink, a FIFO, a hard link, a directory or a foreign owner is refused
 * with a message naming the file, and the link's target is untouched; a
 * FIFO never blocks the open; O_TRUNC truncates only what passed the
 * checks; replacing a file never follows a planted
 * name; fchown on the checked descriptor reaches the checked file even when
 * the name was swapped for a link afterwards (the race argument); and with
 * the user's file system identity, root reaches only what the user can.
 * The owner cases need root (chown); they skip otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/safefile.h"

#define NOBODY 65534

static char dir[64];
static char canary[128];

static const char *P(const char *name)
{
	static char buf[4][192];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static char *get(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* The canary is what an attacker's link points to: it must keep its
 * content, owner and mode through every test. */
static void canary_intact(void)
{
	struct stat st;
	assert_int_equal(lstat(canary, &st), 0);
	assert_string_equal(get(canary), "canary\n");
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kl-safefile-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(canary, sizeof(canary), "%s.canary", dir);
	put(canary, "canary\n");
	chmod(canary, 0600);
	kl_safe_set_user((uid_t)-1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kl_safe_set_user((uid_t)-1);
	canary_intact();
	unlink(canary);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_regular_file_opens_blocking(void **state)
{
	char err[512];
	(void)state;
	put(P("state.json"), "{}\n");
	int fd = kl_safe_open(P("state.json"), O_RDONLY, 0, KL_SAFE_OWNED, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_not_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	close(fd);
	/* Absent: ENOENT passes through for the caller to decide. */
	assert_int_equal(kl_safe_open(P("none"), O_RDONLY, 0, 0, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "none: cannot open"));
}

static void test_symlink_refused(void **state)
{
	char err[512], *buf;
	size_t n;
	(void)state;
	assert_int_equal(symlink(canary, P("state.json")), 0);
	assert_int_equal(kl_safe_open(P("state.json"), O_RDONLY, 0, 0, err, sizeof(err)), -1);
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, P("state.json")));
	assert_non_null(strstr(err, "a symlink"));
	/* Creating through it (O_CREAT) is refused too. */
	assert_int_equal(kl_safe_open(P("state.json"), O_RDWR | O_CREAT, 0600, 0, err, sizeof(err)),
			 -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(kl_safe_read_file(P("state.json"), 1024, 0, &buf, &n, err, sizeof(err)),
			 -1);
	assert_null(buf);
	canary_intact();
}

static void test_fifo_refused_without_blocking(void **state)
{
	char err[512];
	(void)state;
	assert_int_equal(mkfifo(P("feedback.json"), 0600), 0);
	/* Without O_NONBLOCK each of these would hang: no writer, no reader. */
	alarm(10);
	assert_int_equal(kl_safe_open(P("feedback.json"), O_RDONLY, 0, 0, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "a FIFO"));
	assert_int_equal(kl_safe_open(P("feedback.json"), O_WRONLY, 0, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a FIFO"));
	assert_int_equal(kl_safe_open(P("feedback.json"), O_RDWR | O_APPEND, 0, 0, err,
				      sizeof(err)), -1);
	assert_non_null(strstr(err, "feedback.json"));
	alarm(0);
}

static void test_hard_link_and_dir_refused(void **state)
{
	char err[512];
	(void)state;
	assert_int_equal(link(canary, P("kliq.db")), 0);
	assert_int_equal(kl_safe_open(P("kliq.db"), O_RDWR, 0, 0, err, sizeof(err)), -1);
	assert_int_equal(errno, EMLINK);
	assert_non_null(strstr(err, "2 hard links"));
	assert_int_equal(unlink(P("kliq.db")), 0);
	assert_int_equal(mkdir(P("sub"), 0700), 0);
	assert_int_equal(kl_safe_open(P("sub"), O_RDONLY, 0, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a directory, not a regular file"));
	int d = kl_safe_opendir(P("sub"), KL_SAFE_OWNED, err, sizeof(err));
	assert_true(d >= 0);
	close(d);
	assert_int_equal(symlink(P("sub"), P("sublink")), 0);
	assert_int_equal(kl_safe_opendir(P("sublink"), 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a symlink"));
}

/* O_TRUNC waits for the checks: a planted hard link is refused before
 * its target loses a byte; a file of ours is still truncated. */
static void test_truncate_after_checks(void **state)
{
	char err[512];
	struct stat st;
	(void)state;
	assert_int_equal(link(canary, P("audit.pub")), 0);
	assert_int_equal(kl_safe_open(P("audit.pub"), O_WRONLY | O_CREAT | O_TRUNC, 0644, 0, err,
				      sizeof(err)),
			 -1);
	assert_int_equal(errno, EMLINK);
	assert_int_equal(unlink(P("audit.pub")), 0);
	canary_intact();
	put(P("audit.pub"), "old key\n");
	int fd = kl_safe_open(P("audit.pub"), O_WRONLY | O_CREAT | O_TRUNC, 0644, 0, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(fd);
}

static void test_owner(void **state)
{
	char err[512];
	(void)state;
	if (geteuid() != 0)
		skip();
	put(P("wl.txt"), "198.18.0.1\n");
	assert_int_equal(chown(P("wl.txt"), 12345, 12345), 0);
	/* No drop announced: the owner is not checked. */
	int fd = kl_safe_open(P("wl.txt"), O_RDONLY, 0, KL_SAFE_OWNED, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	kl_safe_set_user(NOBODY);
	assert_int_equal(kl_safe_open(P("wl.txt"), O_RDONLY, 0, KL_SAFE_OWNED, err, sizeof(err)),
			 -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "owned by uid 12345"));
	/* Without KL_SAFE_OWNED only the type and links count. */
	fd = kl_safe_open(P("wl.txt"), O_RDONLY, 0, 0, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	/* The user we drop to, and root, pass. */
	assert_int_equal(chown(P("wl.txt"), NOBODY, NOBODY), 0);
	fd = kl_safe_open(P("wl.txt"), O_RDONLY, 0, KL_SAFE_OWNED, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

/* The race argument: once the descriptor is checked, swapping the name for
 * a link changes nothing; fchown reaches the file that was checked. */
static void test_fchown_through_descriptor(void **state)
{
	char err[512];
	struct stat st;
	(void)state;
	if (geteuid() != 0)
		skip();
	put(P("kliq.db"), "db");
	int fd = kl_safe_open(P("kliq.db"), O_RDONLY, 0, KL_SAFE_OWNED, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(rename(P("kliq.db"), P("moved.db")), 0);
	assert_int_equal(symlink(canary, P("kliq.db")), 0);
	assert_int_equal(kl_safe_fchown(fd, P("kliq.db"), NOBODY, NOBODY, err, sizeof(err)), 0);
	close(fd);
	assert_int_equal(stat(P("moved.db"), &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	canary_intact();
}

static void test_replace_never_follows(void **state)
{
	char err[512];
	struct stat st;
	(void)state;
	/* A link planted as the tmp name, and the file itself a link. */
	assert_int_equal(symlink(canary, P("state.json.tmp")), 0);
	assert_int_equal(symlink(canary, P("state.json")), 0);
	assert_int_equal(kl_safe_replace(P("state.json"), "new\n", 4, 0600, ".bak", 0, err,
					 sizeof(err)),
			 0);
	assert_int_equal(lstat(P("state.json"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(get(P("state.json")), "new\n");
	/* The link was not copied to .bak (nothing of ours to keep). */
	assert_int_equal(lstat(P("state.json.bak"), &st), -1);
	assert_int_equal(lstat(P("state.json.tmp"), &st), -1);
	canary_intact();
	/* The next save keeps the current file as .bak: a copy, one link each. */
	assert_int_equal(mkfifo(P("state.json.tmp"), 0600), 0);
	assert_int_equal(kl_safe_replace(P("state.json"), "newer\n", 6, 0600, ".bak", 0, err,
					 sizeof(err)),
			 0);
	assert_string_equal(get(P("state.json")), "newer\n");
	assert_string_equal(get(P("state.json.bak")), "new\n");
	assert_int_equal(lstat(P("state.json"), &st), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(lstat(P("state.json.bak"), &st), 0);
	assert_int_equal(st.st_nlink, 1);
	/* A .bak planted as a link is replaced, not written through. */
	assert_int_equal(unlink(P("state.json.bak")), 0);
	assert_int_equal(symlink(canary, P("state.json.bak")), 0);
	assert_int_equal(kl_safe_replace(P("state.json"), "3\n", 2, 0600, ".bak", 0, err,
					 sizeof(err)),
			 0);
	assert_string_equal(get(P("state.json.bak")), "newer\n");
	canary_intact();
}

static void test_read_file_limit(void **state)
{
	char err[512], *buf;
	size_t n;
	(void)state;
	put(P("big"), "0123456789");
	assert_int_equal(kl_safe_read_file(P("big"), 5, 0, &buf, &n, err, sizeof(err)), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(kl_safe_read_file(P("big"), 10, 0, &buf, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 10);
	assert_string_equal(buf, "0123456789");
	free(buf);
}

/* Root acting on files as nobody reaches only what nobody can, and what it
 * creates is nobody's; afterwards root is root again. */
static void test_fs_identity(void **state)
{
	char err[512];
	struct kl_fs_as fs;
	struct stat st;
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(kl_safe_fs_become(&fs, NOBODY, NOBODY, err, sizeof(err)), 0);
	assert_int_equal(open(canary, O_RDONLY), -1);
	assert_int_equal(errno, EACCES);
	/* The attack kl-graphd's SQLite open must survive: a link to a
	 * root-only file under the name it opens. */
	assert_int_equal(symlink(canary, P("kliq.db-wal")), 0);
	assert_int_equal(open(P("kliq.db-wal"), O_RDWR | O_CREAT, 0640), -1);
	assert_int_equal(errno, EACCES);
	int fd = open(P("kliq.db"), O_RDWR | O_CREAT, 0640);
	assert_true(fd >= 0);
	close(fd);
	kl_safe_fs_restore(&fs);
	assert_int_equal(stat(P("kliq.db"), &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_gid, NOBODY);
	fd = open(canary, O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	canary_intact();
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_regular_file_opens_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_refused_without_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_link_and_dir_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_after_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fchown_through_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_identity, setup, teardown),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
