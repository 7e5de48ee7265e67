/* SPDX-License-Identifier: MPL-2.0 */
/* A listener that a peer cannot take down: see listen.h for why. */
#include "ipc/listen.h"
#include "common/err.h"
#include "ipc/peer.h"
#include "ipc/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "<dir>/.<name>.new" and "<dir>/.<name>.new/s" for path "<dir>/<name>". */
static int stage_paths(struct kl_listen *ls, char *err, size_t errlen)
{
	const char *slash = strrchr(ls->path, '/');
	int dl = slash ? (int)(slash - ls->path) : 1;
	const char *dir = slash ? ls->path : ".";
	const char *name = slash ? slash + 1 : ls->path;

	if (slash == ls->path)
		dl = 0; /* a socket in "/" */
	if (snprintf(ls->stage_dir, sizeof(ls->stage_dir), "%.*s/.%s.new", dl, dir, name) >=
		    (int)sizeof(ls->stage_dir) ||
	    snprintf(ls->stage, sizeof(ls->stage), "%s/s", ls->stage_dir) >= (int)sizeof(ls->stage))
		return kl_fail(err, errlen, "socket path %s is too long for its staging path "
			       "(%zu bytes at most, %zu more than the path)", ls->path,
			       sizeof(ls->stage) - 1, strlen("/..new/s"));
	return 0;
}

/*
 * The staging directory: not a link, owned by whoever binds in it now
 * (`owner`), mode 2700 (nobody else can reach a socket in it) and setgid
 * to the socket's group, so sockets bound in it are born with that group.
 * Without a group of our own it takes the one a bind beside it would give
 * (a setgid run dir's). Made at start, when a chown is still possible;
 * checked, not trusted. One left by `prev` (the user of an earlier run)
 * is taken over.
 */
static int stage_dir_make(struct kl_listen *ls, uid_t owner, uid_t prev, char *err,
			  size_t errlen)
{
	char parent[sizeof(ls->path)];
	const char *slash = strrchr(ls->path, '/');
	gid_t gid = ls->gid;
	struct stat st;
	int fd;

	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == ls->path)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - ls->path), ls->path);
	if (gid == (gid_t)-1 && stat(parent, &st) == 0 && (st.st_mode & S_ISGID))
		gid = st.st_gid;
	mode_t want = gid != (gid_t)-1 ? 02700 : 0700;

	if (mkdir(ls->stage_dir, 0700) < 0 && errno != EEXIST)
		return kl_fail(err, errlen, "cannot create %s: %s", ls->stage_dir, strerror(errno));
	fd = open(ls->stage_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kl_fail(err, errlen, "%s: %s (expected our own directory)", ls->stage_dir,
			       strerror(errno));
	if (fstat(fd, &st) < 0 || (st.st_uid != geteuid() && st.st_uid != owner && st.st_uid != prev)) {
		close(fd);
		return kl_fail(err, errlen, "%s is owned by uid %u, not by us; not using it",
			       ls->stage_dir, (unsigned)st.st_uid);
	}
	/* setgid first, while the group is still one we may set it for (a
	 * chmod that sets it on a directory of a group we are not in is
	 * ignored); a chown keeps a directory's setgid bit. Then once more in
	 * case only the new group made it possible. */
	if ((st.st_mode & 07777) != want)
		(void)fchmod(fd, want);
	if ((gid != (gid_t)-1 && st.st_gid != gid) || st.st_uid != owner) {
		if (fchown(fd, owner, gid) < 0) {
			int e = errno;
			close(fd);
			return kl_fail(err, errlen, "chown %s to %u:%d: %s", ls->stage_dir,
				       (unsigned)owner, gid == (gid_t)-1 ? -1 : (int)gid, strerror(e));
		}
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 07777) != want)
		(void)fchmod(fd, want);
	if (fstat(fd, &st) < 0 || (st.st_mode & 07777) != want || st.st_uid != owner ||
	    (gid != (gid_t)-1 && st.st_gid != gid)) {
		close(fd);
		return kl_fail(err, errlen, "%s: owner %u mode %o group %u, want %u %o %d",
			       ls->stage_dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			       (unsigned)st.st_gid, (unsigned)owner, (unsigned)want,
			       gid == (gid_t)-1 ? -1 : (int)gid);
	}
	close(fd);
	ls->stage_gid = gid;
	return 0;
}

/* A new listener bound in the staging directory, renamed over the public
 * path. The old one (if any) is closed only then, so the path always
 * answers; its nng close unlinks the staging name, which is gone by then. */
static int bind_and_publish(struct kl_listen *ls, char *err, size_t errlen)
{
	char url[sizeof(ls->stage) + 8];
	struct stat st;
	nng_listener l;
	int rv;

	if (lstat(ls->stage, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kl_fail(err, errlen, "%s exists and is not a socket", ls->stage);
		unlink(ls->stage); /* left by a crash between bind and rename */
	}
	snprintf(url, sizeof(url), "ipc://%s", ls->stage);
	if ((rv = nng_listener_create(&l, ls->sock, url)) != 0)
		return kl_fail(err, errlen, "%s: nng_listener_create: %s", ls->stage, nng_strerror(rv));
	/* nng applies the mode between bind() and listen(). */
	if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)ls->mode)) != 0) {
		nng_listener_close(l);
		return kl_fail(err, errlen, "%s: setting mode %o: %s", ls->stage, (unsigned)ls->mode,
			       nng_strerror(rv));
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		return kl_fail(err, errlen, "cannot listen on %s: %s", ls->stage, nng_strerror(rv));
	}
	if (ls->stage_gid != (gid_t)-1 && (lstat(ls->stage, &st) < 0 || st.st_gid != ls->stage_gid)) {
		nng_listener_close(l);
		return kl_fail(err, errlen, "%s: not born with group %u (staging directory changed?)",
			       ls->stage, (unsigned)ls->stage_gid);
	}
	/* A socket is born as whoever binds: root, before the privilege drop.
	 * Mode 0660 in a group our user is not in (kernloom-admin) would then
	 * refuse our own self-check after the drop, and the listener would be
	 * replaced for nothing. So it belongs to the user we drop to. */
	if (ls->owner != geteuid() && lchown(ls->stage, ls->owner, (gid_t)-1) < 0) {
		int e = errno;
		nng_listener_close(l);
		return kl_fail(err, errlen, "chown %s to uid %u: %s", ls->stage,
			       (unsigned)ls->owner, strerror(e));
	}
	if (rename(ls->stage, ls->path) < 0) {
		int e = errno;
		nng_listener_close(l);
		return kl_fail(err, errlen, "rename %s to %s: %s", ls->stage, ls->path, strerror(e));
	}
	if (ls->have_l)
		nng_listener_close(ls->l);
	ls->l = l;
	ls->have_l = true;
	return 0;
}

int kl_listen_start(struct kl_listen *ls, nng_socket sock, const char *path, mode_t mode,
		    gid_t gid, uid_t owner, char *err, size_t errlen)
{
	memset(ls, 0, sizeof(*ls));
	if (strlen(path) >= sizeof(ls->path))
		return kl_fail(err, errlen, "socket path %s is longer than %zu bytes", path,
			       sizeof(ls->path) - 1);
	snprintf(ls->path, sizeof(ls->path), "%s", path);
	ls->sock = sock;
	ls->mode = mode != 0 ? mode : 0600;
	ls->gid = gid;
	ls->owner = owner == (uid_t)-1 || owner == 0 ? geteuid() : owner;
	ls->pid = getpid();
	atomic_init(&ls->own_pipes, 0);
	/* The check connects as the protocol this socket takes as a peer. */
	int peer = 0x30;
	if (nng_socket_get_int(sock, NNG_OPT_PEER, &peer) != 0)
		peer = 0x30;
	ls->peer_proto = (uint16_t)peer;
	/* nng sets a new socket's mode by path: root binds in a directory
	 * only it can write, and hands it to the user afterwards, for the
	 * replacements it makes itself after the drop. */
	uid_t now = geteuid() == 0 ? 0 : ls->owner;
	if (stage_paths(ls, err, errlen) < 0 || stage_dir_make(ls, now, ls->owner, err, errlen) < 0)
		return -1;
	if (bind_and_publish(ls, err, errlen) < 0) {
		rmdir(ls->stage_dir);
		return -1;
	}
	if (now != ls->owner && stage_dir_make(ls, ls->owner, now, err, errlen) < 0) {
		kl_listen_cleanup(ls);
		return -1;
	}
	ls->next_check = now_ms() + KL_LISTEN_CHECK_MS;
	return 0;
}

int kl_listen_replace(struct kl_listen *ls, const char *why)
{
	char err[320];

	if (ls->failed == 0)
		kl_warn("%s: listener stopped accepting (%s); replacing it", ls->path, why);
	if (bind_and_publish(ls, err, sizeof(err)) < 0) {
		/* The old listener stays; the next check tries again, less
		 * often each time, and the log says so on the 1st, 2nd, 4th,
		 * 8th... failure only. */
		int64_t wait = KL_LISTEN_RECHECK_MS;
		for (unsigned i = 0; i < ls->failed && wait < KL_LISTEN_RETRY_MAX_MS; i++)
			wait *= 2;
		if (wait > KL_LISTEN_RETRY_MAX_MS)
			wait = KL_LISTEN_RETRY_MAX_MS;
		ls->failed++;
		if ((ls->failed & (ls->failed - 1)) == 0)
			kl_error("%s: listener not replaced (%u failures so far; next try in %lld ms): %s",
				 ls->path, ls->failed, (long long)wait, err);
		ls->next_check = now_ms() + wait;
		return 0;
	}
	if (ls->failed > 0)
		kl_info("%s: listener replaced after %u failed tries", ls->path, ls->failed);
	ls->failed = 0;
	ls->replaced++;
	ls->next_check = now_ms() + KL_LISTEN_RECHECK_MS;
	return 1;
}

/*
 * In the nng 1.5.2 failure the transport still accepts and answers the SP
 * handshake but never hands the connection to the socket, so only this
 * end-to-end check (our connection's ADD_PRE, recognised by our pid) sees
 * it. A socket file that is gone or refuses is replaced the same way.
 */
int kl_listen_check(struct kl_listen *ls)
{
	char why[128] = "";
	unsigned before;
	int fd = -1;

	if (now_ms() < ls->next_check)
		return 0;
	before = atomic_load(&ls->own_pipes);
	if (kl_sp_probe_as(ls->path, ls->peer_proto, KL_SP_PROBE_WAIT_MS, why, sizeof(why), &fd) ==
	    1) {
		int64_t deadline = now_ms() + KL_SP_PROBE_WAIT_MS;
		bool arrived;
		while (!(arrived = atomic_load(&ls->own_pipes) != before) && now_ms() < deadline)
			usleep(2000);
		close(fd);
		if (arrived) {
			ls->next_check = now_ms() + KL_LISTEN_CHECK_MS;
			return 0;
		}
		snprintf(why, sizeof(why), "connections are no longer handed to the socket");
	} else if (why[0] == '\0') {
		snprintf(why, sizeof(why), "socket file gone or refusing connections");
	}
	return kl_listen_replace(ls, why);
}

void kl_listen_cleanup(struct kl_listen *ls)
{
	struct stat st;

	if (ls->path[0] == '\0')
		return;
	/* nng unlinks the staging name it bound; the public name is ours. */
	if (lstat(ls->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
		unlink(ls->path);
	if (lstat(ls->stage, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(ls->stage);
	rmdir(ls->stage_dir);
}
