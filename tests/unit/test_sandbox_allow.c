/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The seccomp allow-lists stay within what each daemon was traced doing
 * (sandbox/traced/<role>.txt, written by scripts/trace-syscalls.sh) plus
 * extras documented one by one (a `why` in sandbox/seccomp.c); and the
 * things no role may do stay out of every list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"

#define MAX_NAMES 512

struct traced {
	char name[MAX_NAMES][32];
	size_t n;
};

/* Names of sandbox/traced/<role>.txt ("name count" lines, # comments). */
static void load(const char *role, struct traced *t)
{
	char path[512], line[256];
	const char *src = getenv("KL_SRC_DIR");
	snprintf(path, sizeof(path), "%s/sandbox/traced/%s.txt", src ? src : ".", role);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s (run from the source tree or set KL_SRC_DIR)", path);
	t->n = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[32];
		unsigned long count;
		if (line[0] == '#' || sscanf(line, "%31s %lu", name, &count) != 2)
			continue;
		assert_true(t->n < MAX_NAMES);
		snprintf(t->name[t->n++], sizeof(t->name[0]), "%s", name);
	}
	fclose(f);
	assert_true(t->n > 20); /* a real trace, not an empty file */
}

static bool has(const struct traced *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->name[i], name) == 0)
			return true;
	return false;
}

/* Every offender, then the count. */
static int check(const struct kl_sc_entry *v, size_t n, enum kl_role role,
		 const struct traced *t)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(v[i].roles & (1u << role)))
			continue;
		if (has(t, v[i].name))
			continue;
		if (v[i].why == NULL || strlen(v[i].why) < 10) {
			print_error("%s: %s is allowed but was never traced and has no reason\n",
				    kl_role_name(role), v[i].name);
			bad++;
		}
	}
	return bad;
}

static void within_trace(enum kl_role role)
{
	static struct traced t;
	load(kl_role_name(role), &t);
	int bad = check(kl_sc_plain, kl_sc_n_plain, role, &t) +
		  check(kl_sc_special, kl_sc_n_special, role, &t);
	assert_int_equal(bad, 0);
}

static void test_enforcer(void **state)
{
	(void)state;
	within_trace(KL_ROLE_ENFORCER);
}

static void test_sensor(void **state)
{
	(void)state;
	within_trace(KL_ROLE_SENSOR);
}

static void test_decider(void **state)
{
	(void)state;
	within_trace(KL_ROLE_DECIDER);
}

static void test_graphd(void **state)
{
	(void)state;
	within_trace(KL_ROLE_GRAPHD);
}

/* Never allowed to anyone, with or without arguments. (fork and clone
 * without CLONE_THREAD: the clone entry is an argument filter, proven by
 * 15_sandbox.sh's fork probe; bpf for the sensor and the enforcer only.) */
static void test_never(void **state)
{
	static const char *const never[] = {
		"execve", "execveat", "ptrace", "fork", "vfork", "mount", "umount2", "pivot_root",
		"setuid", "setgid", "setresuid", "setresgid", "setgroups", "capset", "kill",
		"process_vm_writev", "process_vm_readv", "init_module", "finit_module", "kexec_load",
		"chroot", "unshare", "setns", "socketpair", "memfd_create", "userfaultfd",
		"perf_event_open", "io_uring_setup", "keyctl", "add_key", "personality",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		for (size_t j = 0; j < kl_sc_n_plain; j++)
			if (strcmp(kl_sc_plain[j].name, never[i]) == 0)
				fail_msg("%s is in the allow-list", never[i]);
		for (size_t j = 0; j < kl_sc_n_special; j++)
			if (strcmp(kl_sc_special[j].name, never[i]) == 0)
				fail_msg("%s is in the filtered list", never[i]);
	}
	for (size_t j = 0; j < kl_sc_n_special; j++)
		if (strcmp(kl_sc_special[j].name, "bpf") == 0)
			assert_int_equal(kl_sc_special[j].roles & ((1u << KL_ROLE_DECIDER) |
								   (1u << KL_ROLE_GRAPHD)),
					 0);
	for (size_t j = 0; j < kl_sc_n_plain; j++) {
		assert_string_not_equal(kl_sc_plain[j].name, "bpf");
		assert_string_not_equal(kl_sc_plain[j].name, "socket");
		assert_string_not_equal(kl_sc_plain[j].name, "prctl");
		assert_string_not_equal(kl_sc_plain[j].name, "clone");
		assert_string_not_equal(kl_sc_plain[j].name, "chown");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enforcer), cmocka_unit_test(test_sensor),
		cmocka_unit_test(test_decider),  cmocka_unit_test(test_graphd),
		cmocka_unit_test(test_never),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
