/* SPDX-License-Identifier: MPL-2.0 */
#include "ctl/daemons.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "common/status.h"
#include "ipc/peer.h"

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

const char *ctl_cmdline_flag(const char *cmdline, size_t len, const char *flag)
{
	const char *given = NULL;
	size_t fl = strlen(flag);
	for (size_t i = 0; i < len;) {
		const char *a = cmdline + i;
		size_t al = strnlen(a, len - i);
		if (strncmp(a, flag, fl) == 0 && a[fl] == '=')
			given = a + fl + 1;
		else if (strcmp(a, flag) == 0 && i + al + 1 < len)
			given = a + al + 1;
		i += al + 1;
	}
	return given;
}

bool ctl_cmdline_run_dir_is(const char *cmdline, size_t len, const char *run_dir,
			    const char *default_dir)
{
	const char *given = ctl_cmdline_flag(cmdline, len, "--run-dir");
	return strcmp(given ? given : default_dir, run_dir) == 0;
}

double ctl_prom_value(const char *page, const char *name_labels)
{
	size_t n = strlen(name_labels);
	for (const char *l = page; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name_labels, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return NAN;
}

pid_t ctl_socket_peer_pid(const char *path, int wait_ms, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	int fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	/* The whole SP header exchange, as nng's own peers do: a bare
	 * connect and close would wedge the daemon's listener. */
	int rc = kl_sp_probe(path, wait_ms, why, whylen, &fd);
	if (rc <= 0) {
		if (rc < 0 && errno != EACCES && errno != EPERM)
			return -1;
		if (rc < 0)
			snprintf(why, whylen, "%s: permission denied (root and kernloom-admin may ask)",
				 path);
		return rc;
	}
	pid_t pid = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
		pid = cr.pid;
	else
		snprintf(why, whylen, "%s: SO_PEERCRED: %s", path, strerror(errno));
	close(fd);
	return pid > 0 ? pid : -1;
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

json_t *ctl_sensor_self(pid_t pid, int64_t now_ms)
{
	char path[64], cmd[8192];
	static char page[65536];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	ssize_t n = read_small(path, cmd, sizeof(cmd));
	const char *file = n > 0 ? ctl_cmdline_flag(cmd, (size_t)n, "--metrics-file") : NULL;
	if (file == NULL || file[0] != '/' || read_small(file, page, sizeof(page)) <= 0)
		return NULL;
	double ticks = ctl_prom_value(page, "kernloom_sensor_ticks_total");
	double last = ctl_prom_value(page, "kernloom_sensor_last_tick_timestamp_seconds");
	double tel = ctl_prom_value(page, "kernloom_sensor_frames_sent_total{stream=\"telemetry\"}");
	double flo = ctl_prom_value(page, "kernloom_sensor_frames_sent_total{stream=\"flows\"}");
	if (isnan(ticks) || isnan(last))
		return NULL;
	/* Map reads in, frames to the decider and graphd out. */
	struct kl_daemon_status ds = {
		.name = "kl-sensor", .enforcing = false, .mode = "telemetry",
		.ticks = (uint64_t)ticks, .last_tick_ms = (int64_t)(last * 1000.0),
		.frames_in = (uint64_t)ticks,
		.frames_out = (uint64_t)(isnan(tel) ? 0 : tel) + (uint64_t)(isnan(flo) ? 0 : flo),
	};
	json_t *o = kl_daemon_status_json(&ds, now_ms);
	/* The version is the sensor's own, not klctl's. */
	const char *v = strstr(page, "kernloom_sensor_build_info{version=\"");
	if (o != NULL) {
		char ver[32] = "?";
		if (v != NULL)
			sscanf(v + strlen("kernloom_sensor_build_info{version=\""), "%31[^\"]", ver);
		json_object_set_new(o, "version", json_string(ver));
		json_object_set_new(o, "pid", json_integer(pid));
	}
	return o;
}
