/* SPDX-License-Identifier: MPL-2.0 */
/* Per-role privilege drop: capabilities, user switch, no_new_privs. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/chan.h"
#include "ipc/stream.h"
#include "sandbox/rundir.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define BIT(c) (1ull << (c))

uint64_t kl_sandbox_keep_mask(enum kl_role role)
{
	switch (role) {
	case KL_ROLE_ENFORCER:
		return BIT(CAP_BPF) | BIT(CAP_NET_ADMIN) | BIT(CAP_PERFMON);
	default:
		return 0;
	}
}

bool kl_sandbox_switches_user(enum kl_role role)
{
	return role != KL_ROLE_ENFORCER;
}

const char *kl_sandbox_caps_text(uint64_t mask, char *buf, size_t len)
{
	size_t o = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned c = 0; c < 64; c++) {
		if (!(mask & BIT(c)))
			continue;
		char *name = cap_to_name((cap_value_t)c);
		int n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", name ? name : "?");
		cap_free(name);
		if (n < 0 || (size_t)n >= len - o)
			break;
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(buf, len, "none");
	return buf;
}

/* Remove every capability outside `keep` from the bounding set. Needs
 * CAP_SETPCAP, so it runs before the effective set shrinks. */
static int drop_bounding(uint64_t keep)
{
	int last = (int)cap_max_bits() - 1;
	for (int c = 0; c <= last && c < 64; c++) {
		if (keep & BIT(c))
			continue;
		if (cap_drop_bound((cap_value_t)c) < 0 && errno != EINVAL) {
			kl_error("sandbox: cannot drop %s from the bounding set: %s",
				 cap_to_name((cap_value_t)c), strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Set effective = permitted = keep (intersected with what we have), clear
 * inheritable and ambient. */
static int set_caps(uint64_t keep, uint64_t *kept)
{
	cap_t have = cap_get_proc();
	cap_t want = cap_init();
	int rc = -1;
	*kept = 0;
	if (!have || !want) {
		kl_error("sandbox: libcap: %s", strerror(errno));
		goto out;
	}
	for (unsigned c = 0; c < 64; c++) {
		if (!(keep & BIT(c)))
			continue;
		cap_flag_value_t v = CAP_CLEAR;
		if (cap_get_flag(have, (cap_value_t)c, CAP_PERMITTED, &v) < 0 || v != CAP_SET) {
			kl_warn("sandbox: %s is not in the permitted set; continuing without it",
				cap_to_name((cap_value_t)c));
			continue;
		}
		cap_value_t cv = (cap_value_t)c;
		cap_set_flag(want, CAP_PERMITTED, 1, &cv, CAP_SET);
		cap_set_flag(want, CAP_EFFECTIVE, 1, &cv, CAP_SET);
		*kept |= BIT(c);
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		kl_error("sandbox: cannot clear the ambient set: %s", strerror(errno));
		goto out;
	}
	if (cap_set_proc(want) < 0) {
		kl_error("sandbox: cap_set_proc: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	cap_free(have);
	cap_free(want);
	return rc;
}

static int switch_user(const char *user)
{
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		kl_error("sandbox: no user %s%s%s", user, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	/* OpenBSD style: only the user's primary group, no inherited ones. */
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		kl_error("sandbox: cannot become %s (uid %u gid %u): %s", user, (unsigned)uid,
			 (unsigned)gid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Root may not use its uid to win capabilities back on exec, and a later
 * setuid must not adjust capabilities either. Needs CAP_SETPCAP, so it runs
 * before the capabilities go; a second call finds the bits already set. */
static int lock_securebits(void)
{
	const int want = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			 SECBIT_NO_SETUID_FIXUP_LOCKED;
	int have = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	if (have >= 0 && (have & want) == want)
		return 0;
	if (prctl(PR_SET_SECUREBITS, want, 0, 0, 0) < 0) {
		kl_error("sandbox: PR_SET_SECUREBITS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static bool has_setpcap(void)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t c = cap_get_proc();

	if (c) {
		cap_get_flag(c, CAP_SETPCAP, CAP_EFFECTIVE, &v);
		cap_free(c);
	}
	return v == CAP_SET;
}

int kl_sandbox_prepare(enum kl_role role, uint64_t setup)
{
	uint64_t keep = kl_sandbox_keep_mask(role) | setup, kept = 0;

	if (role <= KL_ROLE_NONE || role >= KL_ROLE_MAX) {
		kl_error("sandbox: unknown role %d", (int)role);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		kl_error("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	if (kl_sandbox_switches_user(role))
		return drop_bounding(0);
	/* Threads created from here on inherit these bits and sets. */
	if (lock_securebits() < 0 || drop_bounding(keep) < 0 || set_caps(keep, &kept) < 0)
		return -1;
	return 0;
}

int kl_sandbox_enter(enum kl_role role, const struct kl_sandbox_opts *o)
{
	uint64_t keep = kl_sandbox_keep_mask(role);
	uint64_t kept = 0;
	char text[256];
	bool root = geteuid() == 0;

	if (role <= KL_ROLE_NONE || role >= KL_ROLE_MAX) {
		kl_error("sandbox: unknown role %d", (int)role);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		kl_error("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	if (root && lock_securebits() < 0)
		return -1;
	/* After kl_sandbox_prepare the bounding set is already cut (only the
	 * setup capabilities remain in it, and with no_new_privs and the
	 * securebits no exec can use them) and CAP_SETPCAP is gone. */
	if (root && has_setpcap() && drop_bounding(keep) < 0)
		return -1;

	switch (role) {
	case KL_ROLE_ENFORCER:
		/* Stays uid 0 so it keeps owning its pins and run dir; capabilities
		 * are what limit it. (Later: seccomp allow-list incl. bpf().) */
		break;
	case KL_ROLE_SENSOR:
	case KL_ROLE_DECIDER:
	case KL_ROLE_GRAPHD:
	case KL_ROLE_CTL:
		if (o && o->user && switch_user(o->user) < 0)
			return -1;
		/* Later: seccomp allow-list with TSYNC (decider, graphd),
		 * Landlock rules for their state files, rlimits. */
		break;
	default:
		return -1;
	}

	if (set_caps(keep, &kept) < 0)
		return -1;
	/* Paranoia: with the capabilities gone the switch must be final.
	 * (SECBIT_NO_SETUID_FIXUP kept them across setuid until just now.) */
	if (getuid() != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		kl_error("sandbox: could regain uid 0 after switching to %s", o->user);
		return -1;
	}
	kl_info("sandbox: role %s uid=%u gid=%u keeps %s; no_new_privs on", kl_role_name(role),
		(unsigned)getuid(), (unsigned)getgid(), kl_sandbox_caps_text(kept, text, sizeof(text)));
	return 0;
}

int kl_who_resolve(struct kl_who *w, const char *name, const char *user, const char *sensor_user,
		   bool sensor_user_given, const char *sock)
{
	struct passwd *pw;
	struct group *gr;

	memset(w, 0, sizeof(*w));
	w->root = geteuid() == 0;
	w->uid = geteuid();
	w->gid = getegid();
	w->admin_gid = (gid_t)-1;
	if (w->root) {
		pw = getpwnam(user);
		if (pw == NULL) {
			kl_error("--user %s: no such user (create it, e.g. with systemd-sysusers, or "
				 "pass --user)", user);
			return -1;
		}
		if (pw->pw_uid == 0) {
			kl_error("--user %s: is uid 0; %s must not keep root", user, name);
			return -1;
		}
		w->user = user;
		w->uid = pw->pw_uid;
		w->gid = pw->pw_gid;
	} else {
		kl_info("not started as root: running as uid %u, --user %s not used",
			(unsigned)w->uid, user);
	}
	pw = getpwnam(sensor_user);
	if (pw != NULL) {
		w->have_sensor = true;
		w->sensor_uid = pw->pw_uid;
		w->sensor_gid = pw->pw_gid;
	} else if (sensor_user_given) {
		kl_error("--sensor-user %s: no such user", sensor_user);
		return -1;
	} else {
		kl_info("no user %s: %s admits root and uid %u (--user) only", sensor_user, sock,
			(unsigned)w->uid);
	}
	gr = getgrnam(KL_ADMIN_GROUP);
	if (gr != NULL)
		w->admin_gid = gr->gr_gid;
	return 0;
}

int kl_who_sock_path(const char *root, enum kl_role role, const char *name, char *buf, size_t len)
{
	char err[PATH_MAX + 64];

	if (kl_run_path(root, role, name, buf, len, err, sizeof(err)) < 0) {
		kl_error("%s", err);
		return -1;
	}
	return 0;
}

int kl_who_run_dir(const struct kl_who *w, enum kl_role self, const char *root)
{
	return kl_run_dir_ensure(root, self, w->uid, w->gid);
}

int kl_who_run_dir_done(const struct kl_who *w, enum kl_role self, const char *root)
{
	return kl_run_dir_hand_over(root, self, w->uid);
}

int kl_who_listen_sensor(const struct kl_who *w, enum kl_role self, const char *root,
			 const char *name, size_t max_msg, struct kl_stream_rx **out)
{
	char path[PATH_MAX], err[512];
	uid_t allowed[2];
	size_t na = 0;

	if (kl_who_sock_path(root, self, name, path, sizeof(path)) < 0)
		return -1;
	if (w->have_sensor)
		allowed[na++] = w->sensor_uid;
	allowed[na++] = w->uid;
	struct kl_stream_opts so = {
		.path = path,
		.self = self,
		.peer_role = KL_ROLE_SENSOR,
		.mode = 0660,
		.gid = w->have_sensor ? w->sensor_gid : w->root ? w->gid : (gid_t)-1,
		.allowed_uids = allowed,
		.n_allowed_uids = na,
		.allowed_gid = (gid_t)-1,
		.max_msg = max_msg,
		.owner = w->root ? w->uid : 0,
	};
	if (kl_stream_listen(out, &so, err, sizeof(err)) < 0) {
		kl_error("%s: %s", name, err);
		return -1;
	}
	kl_info("listening on %s for kl-sensor (messages up to %zu bytes)", path, max_msg);
	return 0;
}

int kl_who_listen_ctl(const struct kl_who *w, enum kl_role self, const char *root,
		      const char *name, struct kl_server **out)
{
	char path[PATH_MAX], err[512];

	if (kl_who_sock_path(root, self, name, path, sizeof(path)) < 0)
		return -1;
	struct kl_server_opts co = {
		.path = path,
		.self = self,
		.peer_role = KL_ROLE_CTL,
		.mode = 0660,
		.gid = w->admin_gid,
		.admin_gid = w->admin_gid,
		.owner = w->root ? w->uid : 0,
	};
	if (kl_server_open(out, &co, err, sizeof(err)) < 0) {
		kl_error("control socket: %s", err);
		return -1;
	}
	if (w->root && chown(path, w->uid, (gid_t)-1) < 0) {
		kl_error("chown %s to uid %u: %s", path, (unsigned)w->uid, strerror(errno));
		return -1;
	}
	kl_info("listening on %s for klctl", path);
	return 0;
}
