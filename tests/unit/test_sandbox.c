/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl_sandbox_enter: the pure helpers, and (as root) a forked child per role
 * that enters the sandbox and reads back /proc/self/status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "sandbox/sandbox.h"

#define BIT(c) (1ull << (c))
#define WANT_ENFORCER (BIT(CAP_BPF) | BIT(CAP_NET_ADMIN) | BIT(CAP_PERFMON))

static void test_keep_masks(void **state)
{
	(void)state;
	assert_true(kl_sandbox_keep_mask(KL_ROLE_ENFORCER) == WANT_ENFORCER);
	assert_true(kl_sandbox_keep_mask(KL_ROLE_SENSOR) == 0);
	assert_true(kl_sandbox_keep_mask(KL_ROLE_DECIDER) == 0);
	assert_true(kl_sandbox_keep_mask(KL_ROLE_GRAPHD) == 0);
	assert_true(kl_sandbox_keep_mask(KL_ROLE_CTL) == 0);
	assert_false(kl_sandbox_switches_user(KL_ROLE_ENFORCER));
	assert_true(kl_sandbox_switches_user(KL_ROLE_DECIDER));
	char buf[128];
	assert_string_equal(kl_sandbox_caps_text(WANT_ENFORCER, buf, sizeof(buf)),
			    "cap_net_admin,cap_perfmon,cap_bpf");
	assert_string_equal(kl_sandbox_caps_text(0, buf, sizeof(buf)), "none");
}

static void test_unknown_role(void **state)
{
	(void)state;
	/* refused before touching anything (no prctl), so safe in-process */
	assert_int_equal(kl_sandbox_enter(KL_ROLE_NONE, NULL), -1);
	assert_int_equal(kl_sandbox_enter(KL_ROLE_MAX, NULL), -1);
}

/* In the child: a /proc/self/status field as a number (hex for Cap*). */
static int status_field(const char *name, unsigned long long *out, int base)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(name);
	int rc = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			*out = strtoull(line + n + 1, NULL, base);
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}

/* Exit codes tell the parent which check failed. */
static int child_checks(enum kl_role role, const char *user, uint64_t want, uid_t want_uid)
{
	struct kl_sandbox_opts o = { .user = user };
	unsigned long long v;
	if (kl_sandbox_enter(role, &o) < 0)
		return 10;
	if (status_field("CapEff", &v, 16) < 0 || v != want)
		return 11;
	if (status_field("CapPrm", &v, 16) < 0 || v != want)
		return 12;
	if (status_field("CapInh", &v, 16) < 0 || v != 0)
		return 13;
	if (status_field("CapBnd", &v, 16) < 0 || v != want)
		return 14;
	if (status_field("CapAmb", &v, 16) < 0 || v != 0)
		return 15;
	if (status_field("NoNewPrivs", &v, 10) < 0 || v != 1)
		return 16;
	if (getuid() != want_uid || geteuid() != want_uid)
		return 17;
	/* the drop is final: no way back to root */
	if (want_uid != 0 && setuid(0) == 0)
		return 18;
	return 0;
}

static int run_child(enum kl_role role, const char *user, uint64_t want, uid_t want_uid)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(role, user, want, want_uid)); /* _exit: no LSan in the child */
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_enforcer_keeps_three_caps(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_child(KL_ROLE_ENFORCER, NULL, WANT_ENFORCER, 0), 0);
}

static void test_daemon_becomes_user_without_caps(void **state)
{
	(void)state;
	struct passwd *pw = getpwnam("nobody");
	if (geteuid() != 0 || !pw)
		skip();
	assert_int_equal(run_child(KL_ROLE_SENSOR, "nobody", 0, pw->pw_uid), 0);
	assert_int_equal(run_child(KL_ROLE_DECIDER, "nobody", 0, pw->pw_uid), 0);
}

static void test_unknown_user_fails(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_child(KL_ROLE_GRAPHD, "no-such-user-kl", 0, 0), 10);
}

static void test_who_resolve(void **state)
{
	(void)state;
	struct passwd *pw = getpwnam("nobody");
	struct kl_who w;
	if (geteuid() != 0 || !pw)
		skip();
	uid_t nobody = pw->pw_uid; /* getpwnam's buffer is reused below */
	assert_int_equal(kl_who_resolve(&w, "kl-test", "nobody", "nobody", true, "x.sock"), 0);
	assert_true(w.root);
	assert_string_equal(w.user, "nobody");
	assert_int_equal(w.uid, nobody);
	assert_true(w.have_sensor);
	assert_int_equal(w.sensor_uid, nobody);
	/* A default sensor user that does not exist only narrows the socket. */
	assert_int_equal(kl_who_resolve(&w, "kl-test", "nobody", "no-such-user-kl", false, "x.sock"),
			 0);
	assert_false(w.have_sensor);
	/* Asked for by name, it must exist; so must --user, and not be root. */
	assert_int_equal(kl_who_resolve(&w, "kl-test", "nobody", "no-such-user-kl", true, "x.sock"),
			 -1);
	assert_int_equal(kl_who_resolve(&w, "kl-test", "no-such-user-kl", "nobody", true, "x.sock"),
			 -1);
	assert_int_equal(kl_who_resolve(&w, "kl-test", "root", "nobody", true, "x.sock"), -1);
}

int main(void)
{
	kl_log_init("test_sandbox", KL_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_masks),
		cmocka_unit_test(test_unknown_role),
		cmocka_unit_test(test_enforcer_keeps_three_caps),
		cmocka_unit_test(test_daemon_becomes_user_without_caps),
		cmocka_unit_test(test_unknown_user_fails),
		cmocka_unit_test(test_who_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
