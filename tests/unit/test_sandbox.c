/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The sandboxes: the pure helpers, and (as root) a forked child per role,
 * with a second thread started before the sandbox as nng's are, checked
 * from outside (each thread's /proc status) and by attempt from that thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
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
	assert_true(kl_sandbox_switches_user(KL_ROLE_ENFORCER));
	assert_false(kl_sandbox_switches_user(KL_ROLE_CTL));
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

/* A /proc/PID/task/TID/status field as a number (hex for Cap*). */
static int status_field(const char *path, const char *name, unsigned long long *out, int base)
{
	FILE *f = fopen(path, "r");
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

/* The child's second thread, started before the sandbox like nng's: it
 * runs the parent's command so the test sees what a thread may do. */
static int cmd_fd = -1;
static const char *rw_dir;

static void *worker(void *arg)
{
	char c;
	(void)arg;
	if (read(cmd_fd, &c, 1) != 1)
		_exit(30);
	if (c == 'o') { /* outside every allowed path: Landlock */
		int fd = open("/usr/bin/env", O_RDONLY); /* world-readable, outside */
		_exit(fd < 0 && errno == EACCES ? 0 : 31);
	}
	if (c == 'w') { /* inside the read-write directory */
		char p[512];
		snprintf(p, sizeof(p), "%s/ok", rw_dir);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		_exit(fd >= 0 ? 0 : 32);
	}
	if (c == 'i') /* seccomp: dies here */
		_exit(socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 33 : 34);
	if (c == 'x')
		_exit(execl("/bin/true", "true", (char *)NULL) == 0 ? 35 : 36);
	_exit(0);
}

/* Child: sandbox with a thread already running, report ready, wait. */
static int child(enum kl_role role, const char *user, int ready, int cmd)
{
	struct kl_sandbox_opts o;
	pthread_t t;
	memset(&o, 0, sizeof(o));
	o.user = user;
	kl_sandbox_rw(&o, rw_dir);
	cmd_fd = cmd;
	if (kl_sandbox_prepare(role, &o) < 0)
		return 10;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		return 11;
	if (kl_sandbox_enter(role, &o) < 0)
		return 12;
	if (write(ready, "r", 1) != 1)
		return 13;
	pthread_join(t, NULL);
	return 14;
}

struct kid {
	pid_t pid;
	int cmd;
};

static int start_child(enum kl_role role, const char *user, struct kid *k)
{
	int r[2], c[2];
	char b;
	fflush(NULL);
	assert_int_equal(pipe(r), 0);
	assert_int_equal(pipe(c), 0);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		close(r[0]);
		close(c[1]);
		_exit(child(role, user, r[1], c[0])); /* _exit: no LSan in the child */
	}
	close(r[1]);
	close(c[0]);
	k->cmd = c[1];
	int got = (int)read(r[0], &b, 1);
	close(r[0]);
	return got == 1 ? 0 : -1;
}

/* Send a command; returns the wait status. */
static int finish(struct kid *k, char cmd)
{
	int st;
	assert_int_equal(write(k->cmd, &cmd, 1), 1);
	close(k->cmd);
	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
	return st;
}

/* Every thread: uid, every capability set, no_new_privs, seccomp. */
static void check_threads(pid_t pid, uint64_t want, uid_t uid)
{
	char dir[64], path[400];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		unsigned long long v;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
		assert_int_equal(status_field(path, "CapEff", &v, 16), 0);
		assert_true(v == want);
		assert_int_equal(status_field(path, "CapPrm", &v, 16), 0);
		assert_true(v == want);
		assert_int_equal(status_field(path, "CapBnd", &v, 16), 0);
		assert_true(v == want);
		assert_int_equal(status_field(path, "CapInh", &v, 16), 0);
		assert_true(v == 0);
		assert_int_equal(status_field(path, "CapAmb", &v, 16), 0);
		assert_true(v == 0);
		assert_int_equal(status_field(path, "NoNewPrivs", &v, 10), 0);
		assert_true(v == 1);
		assert_int_equal(status_field(path, "Seccomp", &v, 10), 0);
		assert_true(v == 2);
		/* "Uid: real effective saved fs" */
		FILE *f = fopen(path, "r");
		char line[256];
		unsigned a = 0, b = 0, c = 0, e = 0;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &e) == 4)
				break;
		if (f)
			fclose(f);
		assert_true(a == uid && b == uid && c == uid && e == uid);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 2);
}

static char scratch[] = "/tmp/kl-sandbox-test.XXXXXX";

/* Also after a failed assertion (cmocka jumps out of the test). */
static int remove_scratch(void **state)
{
	char p[600];
	(void)state;
	if (strstr(scratch, "XXXXXX"))
		return 0;
	snprintf(p, sizeof(p), "%s/ok", scratch);
	unlink(p);
	rmdir(scratch);
	memcpy(scratch + strlen(scratch) - 6, "XXXXXX", 6);
	return 0;
}

static void run_role(enum kl_role role, uint64_t want)
{
	struct passwd *pw = getpwnam("nobody");
	struct kid k;
	if (geteuid() != 0 || !pw)
		skip();
	uid_t nobody = pw->pw_uid;
	assert_non_null(mkdtemp(scratch));
	assert_int_equal(chown(scratch, nobody, (gid_t)-1), 0);
	rw_dir = scratch;
	const char cmds[] = { 'o', 'w', 'i', 'x' };
	for (size_t i = 0; i < sizeof(cmds); i++) {
		assert_int_equal(start_child(role, "nobody", &k), 0);
		if (i == 0)
			check_threads(k.pid, want, nobody);
		int st = finish(&k, cmds[i]);
		if (cmds[i] == 'o' || cmds[i] == 'w') {
			assert_true(WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		} else { /* the kill-process action */
			assert_true(WIFSIGNALED(st));
			assert_int_equal(WTERMSIG(st), SIGSYS);
		}
	}
	remove_scratch(NULL);
}

static void test_enforcer_three_caps_as_user(void **state)
{
	(void)state;
	run_role(KL_ROLE_ENFORCER, WANT_ENFORCER);
}

static void test_decider_sandboxed(void **state)
{
	(void)state;
	run_role(KL_ROLE_DECIDER, 0);
}

static void test_graphd_sandboxed(void **state)
{
	(void)state;
	run_role(KL_ROLE_GRAPHD, 0);
}

static void test_sensor_sandboxed(void **state)
{
	(void)state;
	run_role(KL_ROLE_SENSOR, 0);
}

static void test_unknown_user_fails(void **state)
{
	(void)state;
	struct kid k;
	if (geteuid() != 0)
		skip();
	rw_dir = "/nonexistent";
	assert_int_equal(start_child(KL_ROLE_GRAPHD, "no-such-user-kl", &k), -1);
	int st;
	close(k.cmd);
	assert_int_equal(waitpid(k.pid, &st, 0), k.pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 12);
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
		cmocka_unit_test_teardown(test_enforcer_three_caps_as_user, remove_scratch),
		cmocka_unit_test_teardown(test_decider_sandboxed, remove_scratch),
		cmocka_unit_test_teardown(test_graphd_sandboxed, remove_scratch),
		cmocka_unit_test_teardown(test_sensor_sandboxed, remove_scratch),
		cmocka_unit_test(test_unknown_user_fails),
		cmocka_unit_test(test_who_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
