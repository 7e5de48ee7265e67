/* SPDX-License-Identifier: MPL-2.0 */
/*
 * What every listening socket of ours shares, whatever its nng protocol:
 * who may connect (peer credentials) and when a leftover socket file may
 * be removed. ipc/chan.c (request/answer) and ipc/stream.c (one-way) both
 * use it, so the two kinds of socket admit exactly the same peers.
 */
#include "ipc/peer.h"
#include "common/err.h"
#include "ipc/wire.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool kl_user_in_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	char *buf;
	bool found = false;

	if (sz <= 0)
		sz = 16384;
	buf = malloc((size_t)sz);
	if (buf == NULL)
		return false;
	if (getpwuid_r(uid, &pw, buf, (size_t)sz, &res) == 0 && res != NULL) {
		int n = 32;
		gid_t *groups = NULL;
		for (int tries = 0; tries < 4; tries++) {
			gid_t *g = realloc(groups, (size_t)n * sizeof(*g));
			if (g == NULL)
				break;
			groups = g;
			int want = n;
			if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
				for (int i = 0; i < want; i++) {
					if (groups[i] == gid)
						found = true;
				}
				break;
			}
			n = want > n ? want : n * 2;
		}
		free(groups);
	}
	free(buf);
	return found;
}

bool kl_peer_allowed(uid_t uid, gid_t gid, const uid_t *allowed, size_t n, gid_t group)
{
	/* geteuid() now, not at open: a daemon may drop privileges after
	 * opening its socket, and its own probe must still get in. */
	if (uid == 0 || uid == geteuid())
		return true;
	for (size_t i = 0; i < n; i++) {
		if (allowed[i] == uid)
			return true;
	}
	if (group != (gid_t)-1)
		return gid == group || kl_user_in_group(uid, group);
	return false;
}

/*
 * Knock on a socket path the way an nng REQ0 peer would: connect and
 * exchange the 8-byte SP header. Returns 1 when an SP server answered, 0
 * when nothing listens (no file, or connection refused), -1 when something
 * accepted the connection but did not answer in time. With fd_out, a
 * successful probe leaves the connection open for the caller.
 *
 * A bare connect()+close() is not an option: nng 1.5.2 takes a peer that
 * leaves before the handshake for its own listener being closed and stops
 * accepting for good (nanomsg/nng#1518, fixed in 1.6.0).
 */
int kl_sp_probe(const char *path, int wait_ms, char *why, size_t whylen, int *fd_out)
{
	return kl_sp_probe_as(path, 0x30 /* REQ0 */, wait_ms, why, whylen, fd_out);
}

int kl_sp_probe_as(const char *path, uint16_t proto, int wait_ms, char *why, size_t whylen,
		   int *fd_out)
{
	/* "\0SP\0", the protocol big-endian, reserved. */
	const uint8_t hello[8] = { 0, 'S', 'P', 0, (uint8_t)(proto >> 8), (uint8_t)proto, 0, 0 };
	struct sockaddr_un sa;
	uint8_t got[8];
	size_t have = 0;
	int fd, rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		if (e == ECONNREFUSED || e == ENOENT)
			return 0;
		snprintf(why, whylen, "connect: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		snprintf(why, whylen, "no SP handshake: %s", strerror(errno));
		goto out;
	}
	int64_t deadline = now_ms() + wait_ms;
	while (have < sizeof(got)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			snprintf(why, whylen, "no SP handshake within %d ms", wait_ms);
			goto out;
		}
		ssize_t n = read(fd, got + have, sizeof(got) - have);
		if (n <= 0) {
			snprintf(why, whylen, "connection closed during the SP handshake");
			goto out;
		}
		have += (size_t)n;
	}
	if (got[0] != 0 || got[1] != 'S' || got[2] != 'P' || got[3] != 0) {
		snprintf(why, whylen, "the peer does not speak SP");
		goto out;
	}
	rc = 1;
	if (fd_out != NULL) {
		*fd_out = fd;
		return rc;
	}
out:
	close(fd);
	if (rc < 0)
		errno = 0;
	return rc;
}

/* A socket file is stale when nothing accepts on it; it outlives a crashed
 * daemon. Anything that answers is left alone. */
int kl_clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char why[128] = "";

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return kl_fail(err, errlen, "%s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return kl_fail(err, errlen, "%s exists and is not a socket; not removing it", path);
	switch (kl_sp_probe(path, KL_SP_PROBE_WAIT_MS, why, sizeof(why), NULL)) {
	case 1:
		return kl_fail(err, errlen, "%s: already running (another server answers on this socket)", path);
	case 0:
		break;
	default:
		return kl_fail(err, errlen, "%s is in use (%s); not removing it", path, why);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return kl_fail(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
	kl_info("removed stale socket %s", path);
	return 0;
}
