/* SPDX-License-Identifier: MPL-2.0 */
/*
 * sandbox/rundir.c: the per-role run directories. The pure parts, and (as
 * root, in a scratch directory) creation with the contract's owner and
 * mode, and refusal of a link, a file or a foreign directory planted where
 * the role directory should be.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "sandbox/rundir.h"

static void test_paths(void **state)
{
	(void)state;
	char buf[64], err[128];

	assert_string_equal(kl_run_role_dir(KL_ROLE_ENFORCER), "enforcer");
	assert_string_equal(kl_run_role_dir(KL_ROLE_SENSOR), "sensor");
	assert_string_equal(kl_run_role_dir(KL_ROLE_DECIDER), "decider");
	assert_string_equal(kl_run_role_dir(KL_ROLE_GRAPHD), "graphd");
	assert_null(kl_run_role_dir(KL_ROLE_CTL));
	assert_int_equal(kl_run_path("/run/kernloom", KL_ROLE_DECIDER, "telemetry.sock", buf,
				     sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "/run/kernloom/decider/telemetry.sock");
	assert_int_equal(kl_run_path("/run/kernloom", KL_ROLE_CTL, "x.sock", buf, sizeof(buf), err,
				     sizeof(err)), -1);
	assert_non_null(strstr(err, "no run directory"));
	assert_int_equal(kl_run_path("/a/very/long/run/directory/indeed", KL_ROLE_ENFORCER,
				     "enforcer-decider.sock", buf, 40, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

static void test_check(void **state)
{
	(void)state;
	struct stat st;
	char err[128];

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR | 02751;
	st.st_uid = 0;
	assert_int_equal(kl_run_dir_check(&st, 65534, err, sizeof(err)), 0);
	st.st_uid = 65534;
	assert_int_equal(kl_run_dir_check(&st, 65534, err, sizeof(err)), 0);
	st.st_uid = 1234;
	assert_int_equal(kl_run_dir_check(&st, 65534, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "owned by uid 1234"));
	st.st_uid = 0;
	st.st_mode = S_IFLNK | 0777;
	assert_int_equal(kl_run_dir_check(&st, 65534, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a directory"));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

struct scratch {
	char root[64];
	char run[96];
	uid_t nobody;
	gid_t nogroup;
};

static int setup(void **state)
{
	static struct scratch s;
	struct passwd *pw = getpwnam("nobody");

	if (geteuid() != 0 || pw == NULL) {
		*state = NULL;
		return 0;
	}
	snprintf(s.root, sizeof(s.root), "/tmp/klrundir.XXXXXX");
	assert_non_null(mkdtemp(s.root));
	snprintf(s.run, sizeof(s.run), "%s/run", s.root);
	s.nobody = pw->pw_uid;
	s.nogroup = pw->pw_gid;
	*state = &s;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *s = *state;

	if (s != NULL)
		nftw(s->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void test_create_as_root(void **state)
{
	struct scratch *s = *state;
	char path[160];
	struct stat st;

	if (s == NULL) {
		skip();
		return;
	}
	/* A missing root is created (0711), and the role directory in it. */
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_DECIDER, s->nobody, s->nogroup), 0);
	assert_int_equal(stat(s->run, &st), 0);
	assert_int_equal(st.st_mode & 07777, KL_RUN_ROOT_MODE);
	snprintf(path, sizeof(path), "%s/decider", s->run);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 02751);
	/* Root's while root sets its sockets up: the user cannot plant links. */
	assert_int_equal(st.st_uid, 0);
	struct group *adm = getgrnam("kernloom-admin");
	assert_int_equal(st.st_gid, adm ? adm->gr_gid : s->nogroup);
	/* Then the user's. */
	assert_int_equal(kl_run_dir_hand_over(s->run, KL_ROLE_DECIDER, s->nobody), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, s->nobody);
	assert_int_equal(st.st_mode & 07777, 02751);
	/* The next start as root claims it back for its setup. */
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_DECIDER, s->nobody, s->nogroup), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(kl_run_dir_hand_over(s->run, KL_ROLE_DECIDER, s->nobody), 0);
	/* A directory left by root with another mode (an older run) is taken over. */
	snprintf(path, sizeof(path), "%s/graphd", s->run);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_GRAPHD, s->nobody, s->nogroup), 0);
	assert_int_equal(kl_run_dir_hand_over(s->run, KL_ROLE_GRAPHD, s->nobody), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, s->nobody);
	assert_int_equal(st.st_mode & 07777, 02751);
	/* Handing over to root or when not root changes nothing. */
	assert_int_equal(kl_run_dir_hand_over(s->run, KL_ROLE_GRAPHD, 0), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, s->nobody);
}

static void test_refuses_planted(void **state)
{
	struct scratch *s = *state;
	char path[160], target[160];
	struct stat st;

	if (s == NULL) {
		skip();
		return;
	}
	assert_int_equal(mkdir(s->run, 0755), 0);
	/* A link to a directory somewhere else: never followed, never chowned. */
	snprintf(target, sizeof(target), "%s/elsewhere", s->root);
	assert_int_equal(mkdir(target, 0700), 0);
	snprintf(path, sizeof(path), "%s/enforcer", s->run);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_ENFORCER, s->nobody, s->nogroup), -1);
	assert_int_equal(kl_run_dir_hand_over(s->run, KL_ROLE_ENFORCER, s->nobody), -1);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* A file in its place. */
	snprintf(path, sizeof(path), "%s/sensor", s->run);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_SENSOR, s->nobody, s->nogroup), -1);
	/* A directory of another user. */
	snprintf(path, sizeof(path), "%s/decider", s->run);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(chown(path, 4242, 4242), 0);
	assert_int_equal(kl_run_dir_ensure(s->run, KL_ROLE_DECIDER, s->nobody, s->nogroup), -1);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 4242);
}

int main(void)
{
	kl_log_init("test_rundir", KL_LOG_ERROR);
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_check),
		cmocka_unit_test_setup_teardown(test_create_as_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_planted, setup, teardown),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
