/* SPDX-License-Identifier: MPL-2.0 */
/* Per-role sandboxes: the steps of sandbox.h in their order. */
#include "sandbox/sandbox_int.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/securebits.h>
#include <nss.h>
#include <pwd.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/safefile.h"
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
	return role > KL_ROLE_NONE && role < KL_ROLE_CTL;
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

/* Step 1. The data limit bounds a runaway allocation; ASan reserves
 * terabytes of shadow, so the sanitizer build leaves it out. */
static const struct {
	rlim_t fsize, data;
} role_limits[KL_ROLE_MAX] = {
	[KL_ROLE_ENFORCER] = { 1ull << 30, 1ull << 30 },
	[KL_ROLE_SENSOR] = { 64ull << 30, 2ull << 30 },  /* --record traces */
	[KL_ROLE_DECIDER] = { 1ull << 30, 2ull << 30 },
	[KL_ROLE_GRAPHD] = { 64ull << 30, 2ull << 30 }, /* the graph and its backups */
	[KL_ROLE_CTL] = { 1ull << 30, 1ull << 30 },
};

static int lower(int res, const char *name, rlim_t v)
{
	struct rlimit rl;
	if (getrlimit(res, &rl) < 0)
		return -1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v)
		v = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(res, &rl) < 0) {
		kl_error("sandbox: %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int step_rlimits(enum kl_role role)
{
	if (lower(RLIMIT_CORE, "RLIMIT_CORE", 0) < 0 ||
	    lower(RLIMIT_FSIZE, "RLIMIT_FSIZE", role_limits[role].fsize) < 0)
		return -1;
#ifndef __SANITIZE_ADDRESS__
	if (lower(RLIMIT_DATA, "RLIMIT_DATA", role_limits[role].data) < 0)
		return -1;
#endif
	return 0;
}

/* Step 2. The user's groups from the group database: the contract makes
 * daemon users members of the groups whose sockets they create. Only
 * /etc/passwd and /etc/group from here on (Landlock allows those two):
 * the peer checks after the drop must not load NSS modules. */
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
	if (uid == 0) {
		kl_error("sandbox: user %s is uid 0", user);
		return -1;
	}
	if (initgroups(user, gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		kl_error("sandbox: cannot become %s (uid %u gid %u): %s", user, (unsigned)uid,
			 (unsigned)gid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Step 3 on the calling thread: bounding set (while CAP_SETPCAP is still
 * there), then effective = permitted = keep, inheritable and ambient
 * empty. A role with capabilities must end with all of them. */
static int step_caps(enum kl_role role, uint64_t *kept)
{
	uint64_t keep = kl_sandbox_keep_mask(role);
	if (has_setpcap() && drop_bounding(keep) < 0)
		return -1;
	if (set_caps(keep, kept) < 0)
		return -1;
	if (*kept != keep) {
		char a[128], b[128];
		kl_error("sandbox: %s must hold %s but has only %s", kl_role_name(role),
			 kl_sandbox_caps_text(keep, a, sizeof(a)),
			 kl_sandbox_caps_text(*kept, b, sizeof(b)));
		return -1;
	}
	return 0;
}

static int step_nnp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		kl_error("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* What every role reads after the drop besides its own paths: the peer
 * checks (ipc/peer.c) resolve a connecting uid's groups in /etc/passwd and
 * /etc/group. The rule is on the directory, read-only: useradd and usermod
 * replace those files by rename, and a Landlock rule on the old inode would
 * lock out every operator added while the daemon runs (file modes still
 * keep /etc/shadow and the like out of reach). */
static const char *const nss_files[] = {
	"/etc",
#ifdef __SANITIZE_ADDRESS__
	/* The test build only: ASan's reports read /proc/self/maps. */
	"/proc/self",
#endif
};

static int done_steps; /* how many of the six steps ran */

static void nss_files_only(void)
{
	/* Before the drop: later lookups read the two files, never load a
	 * module Landlock and seccomp would refuse halfway. Operators in
	 * kernloom-admin must be in /etc/group (sysusers.d puts them there). */
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");
	__nss_configure_lookup("initgroups", "files");
}

/* Steps [done_steps, upto). */
static int run_steps(enum kl_role role, const struct kl_sandbox_opts *o, int upto)
{
	bool root = geteuid() == 0;
	uint64_t kept = 0;
	int abi = -1;
	char text[128];

	for (int step = done_steps; step < upto; step++) {
		int rc = 0;
		switch (step) {
		case 0:
			nss_files_only();
			rc = step_rlimits(role);
			break;
		case 1:
			if (!root)
				break;
			if (!o || !o->user) {
				kl_error("sandbox: %s started as root needs a user to become (--user)",
					 kl_role_name(role));
				return -1;
			}
			/* Keeps the capabilities across setuid for step 3 to cut;
			 * locked, so no exec or later setuid can use uid 0. */
			rc = lock_securebits();
			if (rc == 0)
				rc = switch_user(o->user);
			break;
		case 2:
			rc = step_caps(role, &kept);
			/* With the capabilities gone the switch must be final. */
			if (rc == 0 && getuid() != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
				kl_error("sandbox: could regain uid 0");
				rc = -1;
			}
			if (rc == 0 && (getuid() == 0 || geteuid() == 0)) {
				kl_error("sandbox: still uid 0; refusing to run");
				rc = -1;
			}
			break;
		case 3:
			rc = step_nnp();
			break;
		case 4:
			/* A leak-checked test run: LSan's tracer thread must ptrace
			 * the others, and every thread has its own Landlock domain
			 * (landlock.c), which forbids that. Test builds only. */
			if (test_seccomp_log_only()) {
				kl_warn("sandbox: TEST BUILD: leak-check run, no Landlock and a "
					"log-only seccomp filter");
				break;
			}
			rc = kl_landlock_apply(o, nss_files, sizeof(nss_files) / sizeof(nss_files[0]),
					       &abi);
			break;
		case 5:
			rc = kl_seccomp_apply(role, test_seccomp_log_only());
			break;
		}
		if (rc < 0)
			return -1;
		done_steps = step + 1;
		if (step == 2)
			kl_info("sandbox: role %s uid=%u gid=%u keeps %s", kl_role_name(role),
				(unsigned)getuid(), (unsigned)getgid(),
				kl_sandbox_caps_text(kept, text, sizeof(text)));
		if (step == 4 && abi > 0)
			kl_info("sandbox: landlock ABI %d: %zu read-only and %zu read-write paths",
				abi, o ? o->n_ro : 0, o ? o->n_rw : 0);
		if (step == 5)
			kl_info("sandbox: seccomp allow-list for %s on every thread",
				kl_role_name(role));
	}
	return 0;
}

static bool valid_role(enum kl_role role)
{
	if (role <= KL_ROLE_NONE || role >= KL_ROLE_MAX || role == KL_ROLE_CTL) {
		kl_error("sandbox: unknown role %d", (int)role);
		return false;
	}
	return true;
}

int kl_sandbox_prepare(enum kl_role role, const struct kl_sandbox_opts *o)
{
	if (!valid_role(role))
		return -1;
	if (step_nnp() < 0)
		return -1;
	if (role == KL_ROLE_ENFORCER)
		return run_steps(role, o, 4);
	/* The others stay root for their setup; their threads start with an
	 * empty bounding set and lose their capabilities with the setuid. */
	if (geteuid() == 0 && has_setpcap())
		return drop_bounding(0);
	return 0;
}

int kl_sandbox_enter(enum kl_role role, const struct kl_sandbox_opts *o)
{
	if (!valid_role(role))
		return -1;
	if (run_steps(role, o, 6) < 0)
		return -1;
	test_probe(role);
	return 0;
}

int kl_sandbox_check_start(enum kl_role role)
{
	uint64_t keep = kl_sandbox_keep_mask(role), have = 0;
	char a[128], b[128];
	cap_t c;

	if (geteuid() == 0 || keep == 0)
		return 0;
	c = cap_get_proc();
	for (unsigned i = 0; c && i < 64; i++) {
		cap_flag_value_t v = CAP_CLEAR;
		if ((keep & BIT(i)) && cap_get_flag(c, (cap_value_t)i, CAP_PERMITTED, &v) == 0 &&
		    v == CAP_SET)
			have |= BIT(i);
	}
	cap_free(c);
	if (have != keep) {
		kl_error("%s runs as uid %u without %s (it has %s): start it as root with --user "
			 "USER, or give it these as ambient capabilities "
			 "(AmbientCapabilities= in its unit)",
			 kl_role_name(role), (unsigned)geteuid(), kl_sandbox_caps_text(keep, a, sizeof(a)),
			 kl_sandbox_caps_text(have, b, sizeof(b)));
		return -1;
	}
	return 0;
}

static void add_path(const char **v, size_t *n, const char *path)
{
	if (!path || !path[0] || strcmp(path, ":memory:") == 0)
		return;
	if (*n >= KL_SB_MAX_PATHS) {
		kl_warn("sandbox: more than %d paths; %s left out", KL_SB_MAX_PATHS, path);
		return;
	}
	v[(*n)++] = path;
}

void kl_sandbox_ro(struct kl_sandbox_opts *o, const char *path)
{
	add_path(o->ro, &o->n_ro, path);
}

void kl_sandbox_rw(struct kl_sandbox_opts *o, const char *path)
{
	add_path(o->rw, &o->n_rw, path);
}

static const char *parent_of(struct kl_sandbox_opts *o, const char *file)
{
	if (!file || !file[0] || strcmp(file, ":memory:") == 0 || o->n_buf >= KL_SB_MAX_PATHS)
		return NULL;
	return kl_path_dir(file, o->buf[o->n_buf++], sizeof(o->buf[0]));
}

void kl_sandbox_rw_parent(struct kl_sandbox_opts *o, const char *file)
{
	kl_sandbox_rw(o, parent_of(o, file));
}

void kl_sandbox_ro_file(struct kl_sandbox_opts *o, const char *file)
{
	if (!file || !file[0])
		return;
	if (access(file, F_OK) == 0)
		kl_sandbox_ro(o, file);
	else
		kl_sandbox_ro(o, parent_of(o, file));
}

const char *kl_sandbox_run_dir(const char *run_dir, enum kl_role role, char *buf, size_t len)
{
	const char *dir = kl_run_role_dir(role);
	if (dir != NULL && snprintf(buf, len, "%s/%s", run_dir, dir) < (int)len)
		return buf;
	return run_dir;
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
