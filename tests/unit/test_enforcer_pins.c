/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer started as root hands its pins over (enf_share_telemetry:
 * the telemetry pins to the sensor's group; enf_give_pins: everything to
 * the user it drops to). The pin directory belongs to that user after any
 * earlier run, so the user can swap a pin for a symlink while root starts:
 * root must never follow one (docs/security.md, "Files a daemon opens").
 * Each case plants a symlink to a root-only canary under a pin's name and
 * checks the canary keeps its group and mode. Real pins on a bpffs private
 * to this process (tests/bpffs.h); needs root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpf/shield.h"
#include "common/log.h"
#include "common/safefile.h"
#include "enforcer/enforcer.h"
#include "tests/bpffs.h"

static const char *const telemetry[] = {
	KL_MAP_SRC4, KL_MAP_SRC6, KL_MAP_FLOW4, KL_MAP_FLOW6, KL_MAP_TOTALS,
};
#define N_TELEMETRY (sizeof(telemetry) / sizeof(telemetry[0]))

static struct enf_opts opts;
static struct enf_config cfg;
static struct enf_ctx ctx;
static char dir[128], canary[64];
static uid_t user_uid;
static gid_t user_gid;

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* A pin as an earlier run left it: a real map, owned by the user. */
static void pin(const char *name)
{
	char p[256];
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 8, 1, NULL);
	assert_true(fd >= 0);
	path_of(p, sizeof(p), name);
	assert_int_equal(bpf_obj_pin(fd, p), 0);
	close(fd);
	assert_int_equal(chown(p, user_uid, (gid_t)-1), 0);
}

static void plant_link(const char *name)
{
	char p[256];
	path_of(p, sizeof(p), name);
	unlink(p);
	assert_int_equal(symlink(canary, p), 0);
}

static struct stat canary_stat(void)
{
	struct stat st;
	assert_int_equal(stat(canary, &st), 0);
	return st;
}

static void assert_canary_untouched(void)
{
	struct stat st = canary_stat();
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static int setup(void **state)
{
	(void)state;
	static unsigned n;
	snprintf(dir, sizeof(dir), KL_TEST_BPFFS "/klpins-%d-%u", (int)getpid(), n++);
	snprintf(canary, sizeof(canary), "/tmp/klpins-canary-%d", (int)getpid());
	if (mkdir(dir, 0750) < 0 || chown(dir, user_uid, (gid_t)-1) < 0)
		return -1;
	int fd = open(canary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fchown(fd, 0, 0) < 0 || fchmod(fd, 0600) < 0)
		return -1;
	close(fd);
	for (size_t i = 0; i < N_TELEMETRY; i++)
		pin(telemetry[i]);
	enf_opts_free(&opts);
	if (enf_config_defaults(&opts) < 0)
		return -1;
	cfg = opts.c;
	cfg.pin_dir = dir;
	cfg.sensor_user = (char *)"nobody";
	enf_ctx_init(&ctx, &cfg, NULL);
	kl_safe_set_user(user_uid);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char p[256];
	for (size_t i = 0; i < N_TELEMETRY; i++) {
		path_of(p, sizeof(p), telemetry[i]);
		unlink(p);
	}
	rmdir(dir);
	unlink(canary);
	kl_safe_set_user((uid_t)-1);
	return 0;
}

/* The ordinary case: the directory and the telemetry pins get the sensor
 * user's group, the slot arrays (sources and flows) 0660, the totals 0640. */
static void test_share_opens_pins_to_group(void **state)
{
	(void)state;
	struct stat st;
	char p[256];
	assert_int_equal(enf_share_telemetry(&ctx), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_gid, user_gid);
	assert_int_equal(st.st_mode & 07777, 0750);
	for (size_t i = 0; i < N_TELEMETRY; i++) {
		path_of(p, sizeof(p), telemetry[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_gid, user_gid);
		bool slots = strcmp(telemetry[i], KL_MAP_TOTALS) != 0;
		assert_int_equal(st.st_mode & 07777, slots ? 0660 : 0640);
	}
}

/* A pin swapped for a symlink to a root-only file: refused, and the file
 * keeps its group and mode (else the sensor's group, of which the
 * enforcer's user is a member, could write it). Every telemetry name. */
static void test_share_never_follows_a_link(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TELEMETRY; i++) {
		plant_link(telemetry[i]);
		assert_int_equal(enf_share_telemetry(&ctx), -1);
		assert_canary_untouched();
		char p[256];
		path_of(p, sizeof(p), telemetry[i]);
		unlink(p);
		pin(telemetry[i]);
	}
}

/* The pin directory named through a link: refused by both, the
 * directory behind it untouched. */
static void test_pin_dir_link_refused(void **state)
{
	(void)state;
	static char link[160];
	snprintf(link, sizeof(link), "%s/pinslink", dir); /* bpffs refuses names with a dot */
	if (symlink(dir, link) < 0)
		fail_msg("symlink %s: %s", link, strerror(errno));
	cfg.pin_dir = link;
	assert_int_equal(enf_share_telemetry(&ctx), -1);
	assert_int_equal(enf_give_pins(link, user_uid), -1);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	unlink(link);
}

/* enf_give_pins hands every pin over and chowns a planted link itself,
 * never its target. */
static void test_give_never_follows_a_link(void **state)
{
	(void)state;
	plant_link(KL_MAP_TOTALS);
	assert_int_equal(enf_give_pins(dir, user_uid), 0);
	assert_canary_untouched();
	struct stat st;
	char p[256];
	path_of(p, sizeof(p), KL_MAP_SRC4);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, user_uid);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_share_opens_pins_to_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share_never_follows_a_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_dir_link_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_give_never_follows_a_link, setup, teardown),
	};
	char why[256];
	struct passwd *pw;

	if (geteuid() != 0) {
		printf("needs root (pins and chown)\n");
		return 77;
	}
	pw = getpwnam("nobody");
	if (pw == NULL) {
		printf("needs the user nobody\n");
		return 77;
	}
	user_uid = pw->pw_uid;
	user_gid = pw->pw_gid;
	if (kl_test_private_bpffs(0711, why, sizeof(why)) < 0) {
		printf("a private bpffs for the pins: %s\n", why);
		return 1;
	}
	kl_log_init("test_enforcer_pins", KL_LOG_ERROR);
	return cmocka_run_group_tests(t, NULL, NULL);
}
