/* SPDX-License-Identifier: MPL-2.0 */
/*
 * `klctl status`: is every daemon up, as whom, in which sandbox.
 * Found from the outside, with no request to the daemons: the peer of each
 * control socket (SO_PEERCRED; the sensor has none and is found by name
 * and --run-dir in /proc), then its /proc status.
 */
#ifndef KL_CTL_DAEMONS_H
#define KL_CTL_DAEMONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ctl_proc {
	pid_t pid;
	uid_t uid;
	int seccomp;     /* 0 off, 1 strict, 2 filter; -1 unknown */
	int no_new_privs;
	uint64_t cap_eff;
};

/* Parse the text of /proc/PID/status. 0, or -1 when a field is missing. */
int ctl_proc_parse_status(const char *text, struct ctl_proc *p);

/* Does this NUL-separated /proc/PID/cmdline (LEN bytes) name RUN_DIR as its
 * --run-dir (or leave it out while RUN_DIR is DEFAULT_DIR)? */
bool ctl_cmdline_run_dir_is(const char *cmdline, size_t len, const char *run_dir,
			    const char *default_dir);

/* The value of FLAG (--flag VALUE or --flag=VALUE; the last one given) in a
 * NUL-separated /proc/PID/cmdline of LEN bytes, or NULL. */
const char *ctl_cmdline_flag(const char *cmdline, size_t len, const char *flag);

/* The value of the sample `name{labels}` in a Prometheus text page, or
 * NAN when it has none. */
double ctl_prom_value(const char *page, const char *name_labels);

/* The sensor has no control socket: what it says of itself comes from its
 * --metrics-file (found in its cmdline; absolute paths only), as the
 * "daemon" object of the other daemons' STATUS (common/status.h). NULL
 * when it has no metrics file or it cannot be read. */
struct json_t *ctl_sensor_self(pid_t pid, int64_t now_ms);

/* The pid serving the nng socket at PATH, waiting up to WAIT_MS for its
 * answer; 0 when nobody listens; -1 when whether anyone does cannot be
 * told (the socket's mode keeps us out, or it does not answer), with why. */
pid_t ctl_socket_peer_pid(const char *path, int wait_ms, char *why, size_t whylen);
/* A running kl-sensor that uses RUN_DIR, or 0. */
pid_t ctl_find_sensor(const char *run_dir, const char *default_dir);
/* Read /proc/PID/status. 0, or -1. */
int ctl_proc_read(pid_t pid, struct ctl_proc *p);

#endif
