/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A daemon started as root binds its listeners before the privilege drop,
 * in the staging directory the user it drops to will own (ipc/listen.h).
 * nng sets the new socket's mode with chmod(path) right after bind(): if
 * that user could already write the staging directory, it could swap the
 * socket for a link there and root's chmod would change the link's target.
 *
 * This test makes the attack land at exactly that moment: it interposes
 * chmod() (the executable's definition wins over libc's for nng too) and,
 * when nng chmods a socket in a staging directory, a child that became the
 * user tries to replace the socket with a symlink to a root-only canary.
 * The canary must keep its mode, the public socket must be ours, and the
 * staging directory must end up the user's for its later replacements.
 * Needs root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>

#include "ipc/listen.h"

static uid_t user_uid;
static gid_t user_gid;
static char dir[64], canary[128];
static int attacks, swapped;

/* The user's move, from a child that is that user: our socket out, a
 * link to the canary in. 1 when it got through. */
static int swap_as_user(const char *path)
{
	pid_t p = fork();
	if (p == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(user_gid, user_gid, user_gid) < 0 ||
		    setresuid(user_uid, user_uid, user_uid) < 0)
			_exit(2);
		if (unlink(path) < 0 || symlink(canary, path) < 0)
			_exit(1);
		_exit(0);
	}
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int chmod(const char *path, mode_t mode)
{
	size_t n = strlen(path);
	if (n > 6 && strcmp(path + n - 6, ".new/s") == 0) {
		attacks++;
		swapped += swap_as_user(path);
	}
	return (int)syscall(SYS_fchmodat, AT_FDCWD, path, mode);
}

static void canary_intact(void)
{
	struct stat st;
	assert_int_equal(lstat(canary, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kl-stage-XXXXXX");
	if (!mkdtemp(dir) || chmod(dir, 0711) < 0)
		return -1;
	snprintf(canary, sizeof(canary), "%s.canary", dir);
	int fd = open(canary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	attacks = swapped = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	unlink(canary);
	return 0;
}

static void listen_as_root_for(uid_t owner, const char *name)
{
	char path[128], err[320];
	struct kl_listen ls;
	nng_socket s;
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(nng_pull0_open(&s), 0);
	int rc = kl_listen_start(&ls, s, path, 0660, user_gid, owner, err, sizeof(err));
	/* Refusing is fine (the swapped name is not a socket); following is not. */
	canary_intact();
	assert_int_equal(attacks, 1);
	if (rc == 0) {
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_gid, user_gid);
		assert_int_equal(st.st_mode & 0777, 0660);
		/* Later replacements run as the user, in its own directory. */
		assert_int_equal(lstat(ls.stage_dir, &st), 0);
		assert_int_equal(st.st_uid, owner);
		kl_listen_cleanup(&ls);
	}
	nng_close(s);
}

/* Root binds for the user it will drop to: the user's swap must fail. */
static void test_root_binds_in_a_directory_of_its_own(void **state)
{
	(void)state;
	listen_as_root_for(user_uid, "decider.sock");
	assert_int_equal(swapped, 0);
}

/* A staging directory the user left behind (a crash of an earlier run,
 * after the run dir was its own) is taken back before root binds in it. */
static void test_leftover_user_directory_taken_back(void **state)
{
	(void)state;
	char stage[128];
	snprintf(stage, sizeof(stage), "%s/.graphd.sock.new", dir);
	assert_int_equal(mkdir(stage, 02700), 0);
	assert_int_equal(chown(stage, user_uid, user_gid), 0);
	listen_as_root_for(user_uid, "graphd.sock");
	assert_int_equal(swapped, 0);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_root_binds_in_a_directory_of_its_own, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_leftover_user_directory_taken_back, setup,
						teardown),
	};
	if (geteuid() != 0) {
		printf("needs root (a child becomes the user)\n");
		return 77;
	}
	struct passwd *pw = getpwnam("nobody");
	if (pw == NULL) {
		printf("needs the user nobody\n");
		return 77;
	}
	user_uid = pw->pw_uid;
	user_gid = pw->pw_gid;
	return cmocka_run_group_tests(t, NULL, NULL);
}
