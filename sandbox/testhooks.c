/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Proofs by attempt, compiled in only with -DKL_TEST_HOOKS (the sanitizer
 * build, `make SAN=1`): a production binary has neither switch.
 *
 *   KL_TEST_SECCOMP_LOG=1         default action "log" instead of "kill
 *                                 process" (a leak-checked run: LSan
 *                                 needs ptrace at exit)
 *   KL_TEST_SANDBOX_PROBE=a,b,... right after the sandbox, attempt each:
 *       inet        socket(AF_INET)
 *       open:PATH   open PATH for reading
 *       ptrace      ptrace(PTRACE_TRACEME)
 *       execve      execve("/bin/true")
 *       fork        fork()
 *       chown:PATH  chown PATH to root:root
 *       mapwrite    BPF_MAP_UPDATE_ELEM on the first map fd held
 *       asan        a heap overflow: ASan's report must get through the
 *                   filter (the test build's extra syscalls) and exit 1
 *
 * Each attempt logs "sandbox probe NAME: ..." before and its outcome after
 * ("refused: <errno text>" or "ALLOWED"); under the kill-process filter a
 * forbidden syscall ends the process with SIGSYS between the two lines.
 */
#include "sandbox/sandbox_int.h"

#ifdef KL_TEST_HOOKS
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

bool test_seccomp_log_only(void)
{
	const char *v = getenv("KL_TEST_SECCOMP_LOG");
	return v && strcmp(v, "1") == 0;
}

static long map_write(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct bpf_map_info info;
		union bpf_attr a;
		memset(&info, 0, sizeof(info));
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof(info);
		a.info.info = (uint64_t)(uintptr_t)&info;
		if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) < 0 ||
		    info.key_size == 0 || info.key_size > 256 || info.value_size > 65536)
			continue;
		static unsigned char key[256], val[65536];
		memset(&a, 0, sizeof(a));
		a.map_fd = (uint32_t)fd;
		a.key = (uint64_t)(uintptr_t)key;
		a.value = (uint64_t)(uintptr_t)val;
		kl_warn("sandbox probe mapwrite: map fd %d (%s)", fd, info.name);
		return syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &a, sizeof(a));
	}
	errno = EBADF;
	return -1;
}

static long attempt(const char *what)
{
	if (strcmp(what, "inet") == 0)
		return socket(AF_INET, SOCK_STREAM, 0);
	if (strncmp(what, "open:", 5) == 0)
		return open(what + 5, O_RDONLY | O_CLOEXEC);
	if (strcmp(what, "ptrace") == 0)
		return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	if (strcmp(what, "execve") == 0) {
		char *const argv[] = { (char *)"true", NULL };
		return execve("/bin/true", argv, NULL);
	}
	if (strcmp(what, "fork") == 0) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			waitpid(p, NULL, 0);
		return p;
	}
	if (strncmp(what, "chown:", 6) == 0)
		return chown(what + 6, 0, 0);
	if (strcmp(what, "mapwrite") == 0)
		return map_write();
	if (strcmp(what, "asan") == 0) {
		/* a size the compiler cannot see, or UBSan reports first */
		volatile size_t n = 8;
		char *p = malloc(n);
		p[n] = 1; /* ASan reports and exits here */
		free(p);
		return 0;
	}
	errno = EINVAL;
	return -1;
}

void test_probe(enum kl_role role)
{
	const char *env = getenv("KL_TEST_SANDBOX_PROBE");
	char list[1024];

	if (!env || !env[0])
		return;
	snprintf(list, sizeof(list), "%s", env);
	for (char *save = NULL, *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		kl_warn("sandbox probe %s: attempting as %s", w, kl_role_name(role));
		errno = 0;
		long rc = attempt(w);
		if (rc < 0)
			kl_warn("sandbox probe %s: refused: %s", w, strerror(errno));
		else
			kl_warn("sandbox probe %s: ALLOWED", w);
	}
}
#else
bool test_seccomp_log_only(void)
{
	return false;
}

void test_probe(enum kl_role role)
{
	(void)role;
}
#endif
