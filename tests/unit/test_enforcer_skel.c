/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The shield's generated skeleton against what kl-enforcer was compiled
 * with (the map table of bpf/shield.h), and the layout check that lets an
 * --obj file stand in for the built-in object. Opening an object parses
 * its ELF and makes no bpf() call, so this runs without privileges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "common/log.h"
#include "enforcer/enforcer.h"
#include "shield.skel.h"

static struct shield *open_builtin(void)
{
	int err = 0;
	struct shield *s = enf_skel_open(NULL, 0, NULL, &err);
	if (!s)
		fail_msg("opening the built-in shield: %s", strerror(-err));
	return s;
}

static void test_builtin_matches_headers(void **state)
{
	(void)state;
	char why[256];
	struct shield *s = open_builtin();
	const char *bad = enf_skel_spec_mismatch(s, why, sizeof(why));
	if (bad)
		fail_msg("%s", bad);
	shield__destroy(s);
}

static void test_same_object_matches(void **state)
{
	(void)state;
	char why[256];
	struct shield *a = open_builtin(), *b = open_builtin();
	assert_null(enf_obj_mismatch(a, b, why, sizeof(why)));
	shield__destroy(a);
	shield__destroy(b);
}

/* The object file the build wrote (BUILD/bpf, next to this binary's
 * BUILD/tests) is the one the skeleton embeds. */
static void test_object_file_matches(void **state)
{
	(void)state;
	char why[256], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	size_t len;
	char *buf;
	int err = 0;
	assert_true(n > 0);
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	assert_non_null(slash);
	*slash = '\0';
	slash = strrchr(path, '/');
	assert_non_null(slash);
	strcpy(slash, "/bpf/shield.bpf.o");
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: %s (the skeleton header is generated from it)", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
	struct shield *ref = open_builtin(), *have = enf_skel_open(buf, len, NULL, &err);
	assert_non_null(have);
	assert_null(enf_obj_mismatch(ref, have, why, sizeof(why)));
	shield__destroy(have);
	shield__destroy(ref);
	free(buf);
}

/* Each field the check compares, changed in the stand-in, is named. */
static void test_mismatch_named(void **state)
{
	(void)state;
	char why[256];
	struct shield *ref = open_builtin(), *have = open_builtin();
	const char *r;

	assert_int_equal(bpf_map__set_value_size(have->maps.kernloom_deny4_hash, 7), 0);
	r = enf_obj_mismatch(ref, have, why, sizeof(why));
	assert_non_null(r);
	assert_non_null(strstr(r, "map kernloom_deny4_hash has key/value size 4/7"));
	shield__destroy(have);

	have = open_builtin();
	assert_int_equal(bpf_map__set_map_flags(have->maps.kernloom_edge6_rl_policy, 0x400), 0);
	r = enf_obj_mismatch(ref, have, why, sizeof(why));
	assert_non_null(r);
	assert_non_null(strstr(r, "map kernloom_edge6_rl_policy has flags 0x"));
	shield__destroy(have);

	have = open_builtin();
	assert_int_equal(bpf_map__set_type(have->maps.kernloom_rl_policy6, BPF_MAP_TYPE_LRU_HASH),
			 0);
	r = enf_obj_mismatch(ref, have, why, sizeof(why));
	assert_non_null(r);
	assert_non_null(strstr(r, "map kernloom_rl_policy6 has type"));
	shield__destroy(have);

	/* The header table disagreeing with the object is caught too. */
	have = open_builtin();
	assert_int_equal(bpf_map__set_key_size(have->maps.kernloom_flow4_stats, 3), 0);
	r = enf_skel_spec_mismatch(have, why, sizeof(why));
	assert_non_null(r);
	assert_non_null(strstr(r, "map kernloom_flow4_stats has key/value size 3/"));
	shield__destroy(have);
	shield__destroy(ref);
}

/* A file that is not an ELF object is refused at open. */
static void test_garbage_refused(void **state)
{
	(void)state;
	static const char junk[] = "not an ELF object";
	int err = 0;
	assert_null(enf_skel_open(junk, sizeof(junk), NULL, &err));
	assert_true(err < 0);
}

int main(void)
{
	kl_log_init("test_enforcer_skel", KL_LOG_ERROR);
	libbpf_set_print(NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_matches_headers),
		cmocka_unit_test(test_same_object_matches),
		cmocka_unit_test(test_object_file_matches),
		cmocka_unit_test(test_mismatch_named),
		cmocka_unit_test(test_garbage_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
