/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A bpffs of the test's own at /sys/fs/bpf, for every unit and BPF test
 * that pins (one helper, not one copy per test).
 *
 * Why a private mount namespace: a test must not depend on the host having
 * mounted bpffs (a freshly booted machine has not: that is how
 * test_sensor_collect failed there), must not mount anything the
 * host sees, and must leave nothing behind if it dies half-way. The process
 * moves into a mount namespace of its own, makes every mount in it private
 * (so nothing propagates back to the host), and mounts a fresh bpffs
 * instance over /sys/fs/bpf. Pins made there vanish with the namespace,
 * i.e. when the process (and its children) exit. Paths stay the ones the
 * daemons use, so the tests read like production.
 */
#ifndef KL_TESTS_BPFFS_H
#define KL_TESTS_BPFFS_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#define KL_TEST_BPFFS "/sys/fs/bpf"

/* 0, or -1 with errno set and `why` naming the step that failed. Needs
 * CAP_SYS_ADMIN (callers skip without root before calling). `mode` is the
 * root directory's mode (0711: an unprivileged child can reach a pin whose
 * own mode admits it, but cannot list or create). */
static inline int kl_test_private_bpffs(unsigned mode, char *why, size_t len)
{
	char opts[32];
	int e;

	if (unshare(CLONE_NEWNS) < 0) {
		e = errno;
		snprintf(why, len, "unshare(CLONE_NEWNS): %s", strerror(e));
		goto fail;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		e = errno;
		snprintf(why, len, "making / private in the new mount namespace: %s",
			 strerror(e));
		goto fail;
	}
	snprintf(opts, sizeof(opts), "mode=%04o", mode & 07777);
	if (mount("bpf", KL_TEST_BPFFS, "bpf", 0, opts) < 0) {
		e = errno;
		snprintf(why, len, "mount -t bpf bpf %s: %s", KL_TEST_BPFFS, strerror(e));
		goto fail;
	}
	return 0;
fail:
	errno = e;
	return -1;
}

#endif
