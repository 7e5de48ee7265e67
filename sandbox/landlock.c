/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Landlock for every thread of the process (DESIGN §9's path table).
 *
 * landlock_restrict_self() restricts only the calling thread, and this
 * kernel (ABI 7) has no flag to synchronise it to the others. nng starts
 * its threads with the first socket, before the daemon can know its final
 * paths, and code running in one thread can make another run anything
 * (shared memory), so every thread must be restricted: the main thread
 * signals each of the others, whose handler restricts that thread with the
 * same ruleset (the way glibc broadcasts setuid), waits for all, then
 * restricts itself. The threads inherit no_new_privs from the main thread
 * (kl_sandbox_prepare sets it before they exist), which the call needs.
 */
#include "sandbox/sandbox_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* The installed header predates ABI 3; the values are the kernel's ABI. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif

/* struct landlock_ruleset_attr as of ABI 4 (handled_access_net); the
 * kernel accepts the larger size from ABI 4 on, we pass the smaller one
 * before that. */
struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
};

#define FS_ABI1 ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define R_FILE (LANDLOCK_ACCESS_FS_READ_FILE)
#define R_DIR (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* What a writable directory grants: files and sockets made, replaced
 * (rename: REFER) and removed inside; no devices, FIFOs, symlinks, exec. */
#define W_DIR                                                                                      \
	(R_DIR | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_FILE |                  \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |                             \
	 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_REFER |   \
	 LANDLOCK_ACCESS_FS_TRUNCATE)
#define W_FILE (R_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)

int kl_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

uint64_t kl_landlock_fs_mask(int abi)
{
	uint64_t m = FS_ABI1;
	if (abi >= 2)
		m |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		m |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		m |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return m;
}

/* One rule; a missing path is skipped (the caller lists optional files). */
static int add_rule(int rfd, const char *path, bool write, uint64_t handled)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);
	int rc = -1;

	if (fd < 0) {
		if (errno == ENOENT) {
			kl_debug("sandbox: landlock: %s does not exist; no rule", path);
			return 0;
		}
		kl_error("sandbox: landlock: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		kl_error("sandbox: landlock: %s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode))
		pb.allowed_access = (write ? W_DIR : R_DIR) & handled;
	else
		pb.allowed_access = (write ? W_FILE : R_FILE) & handled;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
		kl_error("sandbox: landlock: rule for %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

static int ll_ruleset = -1;
static atomic_int ll_done, ll_failed;

static void ll_on_signal(int sig)
{
	int e = errno;
	(void)sig;
	if (syscall(SYS_landlock_restrict_self, ll_ruleset, 0) < 0)
		atomic_fetch_add(&ll_failed, 1);
	atomic_fetch_add(&ll_done, 1);
	errno = e;
}

#define MAX_TASKS 256

/* The other threads' ids; -1 when /proc/self/task cannot be read. */
static int list_tasks(pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	pid_t self = (pid_t)syscall(SYS_gettid);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		pid_t t = (pid_t)atoi(de->d_name);
		if (t > 0 && t != self && n < max)
			tids[n++] = t;
	}
	closedir(d);
	return n;
}

static bool seen(const pid_t *v, int n, pid_t t)
{
	for (int i = 0; i < n; i++)
		if (v[i] == t)
			return true;
	return false;
}

/* Restrict every other thread, then return (the caller restricts itself
 * last, so it can still list /proc and signal). */
static int restrict_others(void)
{
	static pid_t done[MAX_TASKS];
	pid_t now[MAX_TASKS];
	int ndone = 0, sent = 0;
	int sig = SIGRTMIN + 2;
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ll_on_signal;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0) {
		kl_error("sandbox: landlock: sigaction: %s", strerror(errno));
		return -1;
	}
	atomic_store(&ll_done, 0);
	atomic_store(&ll_failed, 0);
	/* Until a pass finds no thread it has not restricted: one that
	 * started meanwhile inherited the main thread's (unrestricted)
	 * domain. */
	for (int pass = 0; pass < 8; pass++) {
		int n = list_tasks(now, MAX_TASKS), fresh = 0;
		if (n < 0) {
			kl_error("sandbox: landlock: cannot list /proc/self/task: %s", strerror(errno));
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			if (seen(done, ndone, now[i]))
				continue;
			if (ndone == MAX_TASKS) {
				kl_error("sandbox: landlock: more than %d threads", MAX_TASKS);
				goto fail;
			}
			if (syscall(SYS_tgkill, getpid(), now[i], sig) < 0) {
				if (errno == ESRCH) /* exited meanwhile */
					continue;
				kl_error("sandbox: landlock: tgkill %d: %s", (int)now[i], strerror(errno));
				goto fail;
			}
			done[ndone++] = now[i];
			sent++;
			fresh++;
		}
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (atomic_load(&ll_done) < sent) {
			const struct timespec nap = { 0, 1000000 };
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec >= 5) {
				kl_error("sandbox: landlock: %d of %d threads did not restrict themselves "
					 "(signal %d blocked?)",
					 sent - atomic_load(&ll_done), sent, sig);
				goto fail;
			}
			nanosleep(&nap, NULL);
		}
		if (atomic_load(&ll_failed) > 0) {
			kl_error("sandbox: landlock: %d threads could not restrict themselves",
				 atomic_load(&ll_failed));
			goto fail;
		}
		if (fresh == 0) {
			sigaction(sig, &old, NULL);
			return sent;
		}
	}
	kl_error("sandbox: landlock: threads keep appearing");
fail:
	sigaction(sig, &old, NULL);
	return -1;
}

int kl_landlock_apply(const struct kl_sandbox_opts *o, const char *const *sys_ro, size_t n_sys,
		      int *abi_out)
{
	int abi = kl_landlock_abi();
	struct ll_attr attr = { 0 };
	int rc = -1, others;

	*abi_out = abi;
	if (abi <= 0) {
		kl_warn("sandbox: this kernel has no Landlock (or it is disabled): the file "
			"system is not restricted beyond the user's permissions");
		return 0;
	}
	attr.handled_access_fs = kl_landlock_fs_mask(abi);
	/* No TCP at all; the daemons speak AF_UNIX only (seccomp refuses
	 * other families too). */
	if (abi >= 4)
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	size_t asz = abi >= 4 ? sizeof(attr) : sizeof(attr.handled_access_fs);
	ll_ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, asz, 0);
	if (ll_ruleset < 0) {
		kl_error("sandbox: landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n_sys; i++)
		if (add_rule(ll_ruleset, sys_ro[i], false, attr.handled_access_fs) < 0)
			goto out;
	for (size_t i = 0; i < o->n_ro; i++)
		if (add_rule(ll_ruleset, o->ro[i], false, attr.handled_access_fs) < 0)
			goto out;
	for (size_t i = 0; i < o->n_rw; i++)
		if (add_rule(ll_ruleset, o->rw[i], true, attr.handled_access_fs) < 0)
			goto out;
	if ((others = restrict_others()) < 0)
		goto out;
	if (syscall(SYS_landlock_restrict_self, ll_ruleset, 0) < 0) {
		kl_error("sandbox: landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	kl_debug("sandbox: landlock ABI %d on %d threads", abi, others + 1);
	rc = 0;
out:
	close(ll_ruleset);
	ll_ruleset = -1;
	return rc;
}
