/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The seccomp allow-lists, one per role, from what each daemon was traced
 * doing under load (sandbox/traced/<role>.txt; how: docs/security.md, "Sandboxes").
 * An entry with a `why` was not in the trace and is allowed for the
 * reason given; tests/unit/test_sandbox_allow.c keeps both honest.
 * Default action: kill the process. Never allowed to anyone: execve,
 * execveat, ptrace, fork, vfork, clone without CLONE_THREAD, mount,
 * setuid & co, socket families other than AF_UNIX (and AF_NETLINK for the
 * enforcer's interface lookups).
 */
#include "sandbox/sandbox_int.h"

#include <errno.h>
#include <linux/bpf.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "common/log.h"

#define E (1u << KL_ROLE_ENFORCER)
#define S (1u << KL_ROLE_SENSOR)
#define D (1u << KL_ROLE_DECIDER)
#define G (1u << KL_ROLE_GRAPHD)
#define ALL (E | S | D | G)

/* Plain entries: allowed with any arguments. Startup-only calls of the
 * traces (execve, setresuid, capset, prlimit64, ...) are left out: they
 * happen before the filter. */
const struct kl_sc_entry kl_sc_plain[] = {
	/* I/O on descriptors the daemon holds */
	{ "read", ALL, NULL },
	{ "write", ALL, NULL },
	{ "readv", ALL, NULL },
	{ "writev", S, NULL },
	{ "pread64", E | G, NULL },
	{ "pwrite64", G, NULL },
	{ "lseek", ALL, NULL },
	{ "close", ALL, NULL },
	{ "dup", E, NULL },
	{ "fcntl", ALL, NULL },
	{ "newfstatat", ALL, NULL },
	{ "statfs", E, NULL },
	{ "openat", ALL, NULL },
	{ "getdents64", E, NULL },
	{ "readlinkat", E | D | G, NULL },
	{ "access", ALL, NULL },
	{ "faccessat2", E, NULL },
	{ "ftruncate", G, NULL },
	{ "fsync", D, NULL },
	{ "fdatasync", S | G, NULL },
	{ "flock", G, NULL },
	{ "rename", D, NULL },
	{ "link", D, NULL },
	{ "unlink", E | D | G, NULL },
	{ "mkdir", E, NULL },
	{ "ioctl", E | G, NULL },
	/* A listener nobody can take down (ipc/listen.c): a replacement binds
	 * in the staging directory, nng sets its mode, it is renamed over the
	 * public path; closing removes the staging directory. */
	{ "chmod", E | D | G, "a replaced listener: nng chmods the new socket file after bind "
			      "(ipc/listen.c)" },
	{ "rename", E | G, "a replaced listener is renamed over the public socket path "
			   "(ipc/listen.c)" },
	{ "rmdir", E | D | G, "closing a listener removes its staging directory (ipc/listen.c)" },
	/* Files replaced in place (common/safefile.c kl_safe_replace: state.json,
	 * feedback, baselines, and every daemon's --metrics-file): within the
	 * directory's descriptor. */
	{ "unlinkat", S | D | G, "kl_safe_replace removes a leftover or planted NAME.tmp "
				 "without following it" },
	{ "renameat", S | D | G, "kl_safe_replace renames NAME.tmp over NAME within the "
				 "directory's descriptor" },
	/* The audit trail (common/audit.c), written by every daemon. */
	{ "fsync", E | S | G, "the audit trail syncs a file it rotates away from or closes" },
	{ "ftruncate", E | S | D, "the audit trail cuts a half-written record back after a failed "
				  "write (a full disk)" },
	{ "mkdir", S | D | G, "the audit trail re-creates its directory when it was removed" },
	/* memory */
	{ "mmap", ALL, NULL },
	{ "munmap", ALL, NULL },
	{ "mprotect", ALL, NULL },
	{ "mremap", ALL, "glibc's realloc moves a large (mmapped) block with mremap" },
	{ "madvise", ALL, "glibc's free returns the pages of a trimmed arena or a cached thread "
			  "stack with madvise(MADV_DONTNEED)" },
	{ "brk", ALL, NULL },
	/* threads, time, signals */
	{ "futex", ALL, NULL },
	{ "set_robust_list", ALL, NULL },
	{ "rseq", ALL, NULL },
	{ "getpid", ALL, NULL },
	{ "sched_getaffinity", S, "the sensor dials (and nng starts its threads) after its "
				  "sandbox: nng counts CPUs with get_nprocs, which falls back to "
				  "sched_getaffinity as Landlock hides /sys/devices/system/cpu/online "
				  "(seen as a kill in the release build)" },
	{ "tgkill", D | G, NULL },
	{ "tgkill", E | S, "abort() (a failed assertion, UBSan's trap) delivers SIGABRT to its "
			   "own thread" },
	{ "getuid", ALL, NULL },
	{ "geteuid", ALL, NULL },
	{ "getgid", ALL, NULL },
	{ "getegid", D | G, NULL },
	{ "getegid", E | S, "sd_notify under systemd (NOTIFY_SOCKET set) sends its credentials "
			   "and asks getegid for them; seen as a kill in the real-systemd test" },
	{ "clock_gettime", ALL, "answered by the vDSO; the syscall is its fallback" },
	{ "clock_nanosleep", ALL, NULL },
	{ "rt_sigaction", ALL, NULL },
	{ "rt_sigprocmask", ALL, NULL },
	{ "rt_sigreturn", ALL, NULL },
	{ "restart_syscall", E, NULL },
	{ "restart_syscall", S | D | G, "the kernel resumes a sleep interrupted by a signal "
				       "(SIGUSR1, a stopped terminal) through it" },
	{ "exit", ALL, "a thread that leaves its start routine ends with exit (nng's at close)" },
	{ "exit_group", ALL, NULL },
	{ "getrandom", ALL, NULL },
	/* event loops */
	{ "poll", E | D | G, NULL },
	{ "epoll_create1", ALL, NULL },
	{ "epoll_ctl", ALL, NULL },
	{ "epoll_wait", ALL, NULL },
	{ "eventfd2", ALL, NULL },
	{ "pipe2", E | D | G, NULL },
	/* AF_UNIX sockets (socket() itself: kl_sc_special) */
	{ "connect", ALL, NULL },
	{ "bind", E | D | G, NULL },
	{ "listen", E | D | G, NULL },
	{ "accept", E | D | G, NULL },
	{ "getsockname", E, NULL },
	{ "getsockopt", E | D | G, NULL },
	{ "getsockopt", S, "sd_notify (the deployment's READY=1 and watchdog pings) sizes its "
			   "datagram socket's buffer: traced/sd_notify.txt" },
	{ "setsockopt", E, NULL },
	{ "setsockopt", S | D | G, "sd_notify raises its datagram socket's send buffer: "
				  "traced/sd_notify.txt" },
	{ "sendmsg", ALL, NULL },
	{ "recvmsg", E, NULL },
	{ "sendto", E | D | G, NULL },
	{ "sendto", S, "the audit trail's copy of each record to journald (a datagram)" },
	{ "shutdown", ALL, NULL },
	{ "uname", E, NULL },
	{ "sysinfo", E, NULL },
};
const size_t kl_sc_n_plain = sizeof(kl_sc_plain) / sizeof(kl_sc_plain[0]);

/* Entries with an argument filter. */
const struct kl_sc_entry kl_sc_special[] = {
	{ "socket", ALL, NULL },  /* AF_UNIX; the enforcer AF_NETLINK too */
	{ "prctl", ALL, NULL },   /* PR_SET_NAME only (nng names its threads late) */
	{ "clone", ALL, "a thread only (CLONE_THREAD); glibc falls back to it when clone3 "
			"says ENOSYS" },
	{ "clone3", ALL, NULL },  /* ENOSYS: its flags live in memory seccomp cannot read */
	{ "bpf", E | S, NULL },   /* the enforcer: its commands; the sensor: read-only ones */
	{ "chown", E | D | G, NULL }, /* group only (owner -1): a listener restart gives its
				       * socket its group again, within the kernel's rules */
};
const size_t kl_sc_n_special = sizeof(kl_sc_special) / sizeof(kl_sc_special[0]);

/* The map commands the sensor uses (its fds are read-only anyway). */
static const int sensor_bpf_cmds[] = {
	BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_BATCH, BPF_OBJ_GET,
	BPF_OBJ_GET_INFO_BY_FD,
};
/* What the enforcer does after its setup: map reads and writes, link
 * attach/detach/pin for `klctl attach`, and reading pins back. No
 * BPF_PROG_LOAD or BPF_MAP_CREATE: the object is loaded before. */
static const int enforcer_bpf_cmds[] = {
	BPF_MAP_LOOKUP_ELEM,    BPF_MAP_UPDATE_ELEM,    BPF_MAP_DELETE_ELEM,
	BPF_MAP_GET_NEXT_KEY,   BPF_MAP_LOOKUP_BATCH,   BPF_MAP_UPDATE_BATCH,
	BPF_MAP_DELETE_BATCH,   BPF_MAP_LOOKUP_AND_DELETE_ELEM,
	BPF_OBJ_PIN,            BPF_OBJ_GET,            BPF_OBJ_GET_INFO_BY_FD,
	BPF_LINK_CREATE,        BPF_LINK_UPDATE,        BPF_LINK_DETACH,
	BPF_LINK_GET_FD_BY_ID,  BPF_PROG_GET_FD_BY_ID,  BPF_MAP_GET_FD_BY_ID,
};

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		const struct scmp_arg_cmp *a)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR) {
		kl_error("sandbox: seccomp: unknown syscall %s", name);
		return -1;
	}
	int rc = seccomp_rule_add_array(ctx, action, nr, n, a);
	if (rc < 0) {
		kl_error("sandbox: seccomp: rule for %s: %s", name, strerror(-rc));
		return -1;
	}
	return 0;
}

static int add_special(scmp_filter_ctx ctx, enum kl_role role)
{
	unsigned me = 1u << role;
	struct scmp_arg_cmp a;

	a = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	if (rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &a) < 0)
		return -1;
	if (role == KL_ROLE_ENFORCER) {
		/* libbpf's XDP queries and if_nametoindex's netlink */
		a = SCMP_A0(SCMP_CMP_EQ, AF_NETLINK);
		if (rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &a) < 0)
			return -1;
	}
	a = SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME);
	if (rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &a) < 0)
		return -1;
	a = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	if (rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &a) < 0)
		return -1;
	if (rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL) < 0)
		return -1;
	if (me & (E | D | G)) {
		a = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)(uint32_t)-1);
		if (rule(ctx, SCMP_ACT_ALLOW, "chown", 1, &a) < 0)
			return -1;
	}
	const int *cmds = NULL;
	size_t n = 0;
	if (role == KL_ROLE_SENSOR) {
		cmds = sensor_bpf_cmds;
		n = sizeof(sensor_bpf_cmds) / sizeof(sensor_bpf_cmds[0]);
	} else if (role == KL_ROLE_ENFORCER) {
		cmds = enforcer_bpf_cmds;
		n = sizeof(enforcer_bpf_cmds) / sizeof(enforcer_bpf_cmds[0]);
	}
	for (size_t i = 0; i < n; i++) {
		a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)cmds[i]);
		if (rule(ctx, SCMP_ACT_ALLOW, "bpf", 1, &a) < 0)
			return -1;
	}
	return 0;
}

int kl_seccomp_apply(enum kl_role role, bool log_only)
{
	unsigned me = 1u << role;
	scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	int rc = -1;

	if (!ctx) {
		kl_error("sandbox: seccomp_init failed");
		return -1;
	}
	/* Every thread, nng's included (toolchain notes §6). */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0) {
		kl_error("sandbox: seccomp: no TSYNC");
		goto out;
	}
	for (size_t i = 0; i < kl_sc_n_plain; i++)
		if ((kl_sc_plain[i].roles & me) &&
		    rule(ctx, SCMP_ACT_ALLOW, kl_sc_plain[i].name, 0, NULL) < 0)
			goto out;
#ifdef __SANITIZE_ADDRESS__
	/* The test build only: what ASan's runtime calls when it reports an
	 * error, found with the log-only filter and the `asan` probe of
	 * sandbox/testhooks.c (no LeakSanitizer: it needs ptrace, and
	 * sandboxed sanitizer daemons run with detect_leaks=0). */
	static const char *const asan_extra[] = {
		"gettid",   /* the allocator asks for the thread id (seen: kl-sensor) */
		"ioctl",    /* a report asks isatty(stderr) whether to colour */
		"open",     /* a report reads /proc/self/maps (the raw syscall) */
		"readlink", /* ... and /proc/self/exe */
		"sigaltstack", /* a new thread's alternate signal stack (kl-sensor's nng
				* threads start after its sandbox) */
	};
	for (size_t i = 0; i < sizeof(asan_extra) / sizeof(asan_extra[0]); i++)
		if (rule(ctx, SCMP_ACT_ALLOW, asan_extra[i], 0, NULL) < 0)
			goto out;
#endif
	if (add_special(ctx, role) < 0)
		goto out;
	int e = seccomp_load(ctx);
	if (e != 0) {
		kl_error("sandbox: seccomp_load: %s", strerror(e < 0 ? -e : e));
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}
