/* SPDX-License-Identifier: MPL-2.0 */
#include "ctl/daemons.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *field(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == ':')
			return l + n + 1;
	return NULL;
}

int ctl_proc_parse_status(const char *text, struct ctl_proc *p)
{
	const char *v;
	unsigned long long x;
	memset(p, 0, sizeof(*p));
	p->seccomp = -1;
	if (!(v = field(text, "Pid")) || sscanf(v, "%llu", &x) != 1)
		return -1;
	p->pid = (pid_t)x;
	if (!(v = field(text, "Uid")) || sscanf(v, "%*u %llu", &x) != 1) /* effective */
		return -1;
	p->uid = (uid_t)x;
	if (!(v = field(text, "CapEff")) || sscanf(v, "%llx", &x) != 1)
		return -1;
	p->cap_eff = x;
	if ((v = field(text, "NoNewPrivs")) && sscanf(v, "%llu", &x) == 1)
		p->no_new_privs = (int)x;
	if ((v = field(text, "Seccomp")) && sscanf(v, "%llu", &x) == 1)
		p->seccomp = (int)x;
	return 0;
}

bool ctl_cmdline_run_dir_is(const char *cmdline, size_t len, const char *run_dir,
			    const char *default_dir)
{
	const char *given = NULL;
	for (size_t i = 0; i < len;) {
		const char *a = cmdline + i;
		size_t al = strnlen(a, len - i);
		if (strncmp(a, "--run-dir=", 10) == 0)
			given = a + 10;
		else if (strcmp(a, "--run-dir") == 0 && i + al + 1 < len)
			given = a + al + 1;
		i += al + 1;
	}
	return strcmp(given ? given : default_dir, run_dir) == 0;
}

pid_t ctl_socket_peer_pid(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	pid_t pid = 0;
	/* Connected and closed before nng's handshake: the daemon's listener
	 * sees no pipe, so nothing is logged. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
		pid = cr.pid;
	close(fd);
	return pid;
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

pid_t ctl_find_sensor(const char *run_dir, const char *default_dir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	char path[64], buf[8192];
	if (!d)
		return 0;
	while (!found && (e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if (read_small(path, buf, sizeof(buf)) <= 0 || strcmp(buf, "kl-sensor\n") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		ssize_t n = read_small(path, buf, sizeof(buf));
		if (n > 0 && ctl_cmdline_run_dir_is(buf, (size_t)n, run_dir, default_dir))
			found = (pid_t)pid;
	}
	closedir(d);
	return found;
}

int ctl_proc_read(pid_t pid, struct ctl_proc *p)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return ctl_proc_parse_status(buf, p);
}
