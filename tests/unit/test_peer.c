/* SPDX-License-Identifier: MPL-2.0 */
/* Peer admission and stale-socket removal shared by every listener. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc/peer.h"

#define STRANGER ((uid_t)54321)

static void test_admission(void **state)
{
	(void)state;
	uid_t list[] = { 4242, 4343 };

	assert_true(kl_peer_allowed(0, 0, NULL, 0, (gid_t)-1));
	assert_true(kl_peer_allowed(geteuid(), 99, NULL, 0, (gid_t)-1));
	assert_true(kl_peer_allowed(4343, 99, list, 2, (gid_t)-1));
	assert_false(kl_peer_allowed(STRANGER, 99, list, 2, (gid_t)-1));
	/* The peer's primary gid (from SO_PEERCRED) is enough for the group. */
	assert_true(kl_peer_allowed(STRANGER, 777, list, 2, 777));
	assert_false(kl_peer_allowed(STRANGER, 778, list, 2, 777));
	/* A uid without a user entry is in no supplementary group. */
	assert_false(kl_user_in_group(STRANGER, 0));
	/* root's user entry puts it in group 0 (getgrouplist adds the primary). */
	assert_true(kl_user_in_group(0, 0));
}

static void make_dir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/kl-peer-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void test_stale_socket(void **state)
{
	(void)state;
	char dir[64], path[128], err[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	make_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* No file: nothing to do. */
	assert_int_equal(kl_clear_stale_socket(path, err, sizeof(err)), 0);
	/* A socket file nobody listens on (bound, never listening): removed. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, path, strlen(path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(kl_sp_probe(path, 200, err, sizeof(err), NULL), 0);
	assert_int_equal(kl_clear_stale_socket(path, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	close(fd);
	/* Something that accepts but does not speak SP is left alone. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(kl_clear_stale_socket(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(access(path, F_OK), 0);
	close(fd);
	unlink(path);
	/* A regular file is never removed. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(kl_clear_stale_socket(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_admission),
		cmocka_unit_test(test_stale_socket),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
