/* SPDX-License-Identifier: MPL-2.0 */
/* The audit trail's writer (audit.h); the verifier is in audit_verify.c. */
#include "common/audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <sodium.h>

#include "common/log.h"
#include "common/safefile.h"

#define BATCH_FLUSH_BYTES (64u << 10)
#define OUT_CHUNK (256u << 10)

/*
 * Records wait in `q` as their unsealed prefix (everything up to and with
 * "result"), one per line, a leading 'S' for the ones to sign and 'N' for
 * the rest. Sealing (seq, prev, sig, hash) happens only when the file is
 * there to take them, so the chain never has a hole that the disk caused.
 */
struct kl_audit {
	char dir[PATH_MAX];
	char proc[32];
	uint64_t rotate_bytes;
	unsigned every;
	bool batch;
	uid_t uid;
	gid_t gid;
	uint8_t sk[KL_AUDIT_SK_LEN];
	uint8_t pk[KL_AUDIT_PK_LEN];
	char pk_hex[2 * KL_AUDIT_PK_LEN + 1];

	int dirfd, fd;
	bool ready;          /* directory open, chain head known, file open */
	unsigned index;      /* of the current file */
	uint64_t file_bytes; /* size of the current file */
	uint64_t file_records;
	uint64_t seq;        /* of the last sealed record */
	uint8_t head[KL_AUDIT_HASH_LEN];
	uint64_t since_sig;
	uint64_t retry_at;   /* CLOCK_MONOTONIC ns */
	uint64_t retry_ns;
	int last_errno;

	char *q;
	size_t qlen, qcap;
	char *out;
	size_t olen, ocap;

	int jfd;
	struct sockaddr_un jaddr;
	socklen_t jaddr_len;
	uint64_t journal_pause_until; /* CLOCK_MONOTONIC ns; 0: send */
	bool journal_behind;          /* a record was not taken; logged once */

	struct kl_audit_stats st;
};

/* ---- small helpers ---- */

void kl_audit_hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int kl_audit_unhex(const char *in, size_t hexlen, uint8_t *out)
{
	if (hexlen % 2)
		return -1;
	for (size_t i = 0; i < hexlen / 2; i++) {
		int h = hexval(in[2 * i]), l = hexval(in[2 * i + 1]);
		if (h < 0 || l < 0)
			return -1;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

size_t kl_audit_json_str(char *buf, size_t len, const char *s)
{
	size_t need = 2, o = 0;
	bool cut = false;
	if (buf && len >= 3)
		buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		char e[8];
		size_t el;
		if (*p == '"' || *p == '\\') {
			e[0] = '\\';
			e[1] = (char)*p;
			el = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			el = (size_t)snprintf(e, sizeof(e), "\\u%04x", *p);
		} else {
			e[0] = (char)*p;
			el = 1;
		}
		need += el;
		/* A string that does not fit is cut between characters (never
		 * inside an escape) and still closed: the line stays JSON. */
		if (buf && len >= 3 && !cut) {
			if (o + el + 2 <= len) {
				memcpy(buf + o, e, el);
				o += el;
			} else {
				cut = true;
			}
		}
	}
	if (buf && len >= 3) {
		buf[o++] = '"';
		buf[o] = '\0';
	} else if (buf && len > 0) {
		buf[0] = '\0';
	}
	return need;
}

static int grow(char **b, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *p = realloc(*b, n);
	if (!p)
		return -1;
	*b = p;
	*cap = n;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- the key ---- */

int kl_audit_read_pub(const char *path, uint8_t pk[KL_AUDIT_PK_LEN], char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	if (kl_safe_read_file(path, 4096, 0, &buf, &len, err, errlen) < 0)
		return -1;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	int rc = len == 2 * KL_AUDIT_PK_LEN && kl_audit_unhex(buf, len, pk) == 0 ? 0 : -1;
	if (rc < 0)
		snprintf(err, errlen, "%s: not a public key (64 hex characters expected)", path);
	free(buf);
	return rc;
}

static int key_path(const char *key, char *out, size_t len)
{
	struct stat st;
	if (lstat(key, &st) == 0 && S_ISDIR(st.st_mode))
		return snprintf(out, len, "%s/audit.key", key) >= (int)len ? -1 : 0;
	return snprintf(out, len, "%s", key) >= (int)len ? -1 : 0;
}

static int write_pub(struct kl_audit *a, const char *path, char *err, size_t errlen)
{
	char line[2 * KL_AUDIT_PK_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", a->pk_hex);
	/* The .pub is for auditors: world-readable, replaced only when it
	 * does not match (a restart as the user must not need to rewrite it). */
	uint8_t have[KL_AUDIT_PK_LEN];
	char e2[256];
	if (kl_audit_read_pub(path, have, e2, sizeof(e2)) == 0 && memcmp(have, a->pk, sizeof(have)) == 0)
		return 0;
	return kl_safe_replace(path, line, strlen(line), 0644, NULL, KL_SAFE_OWNED, err, errlen);
}

/* Missing parents of the audit directory (mkdir -p; 0755, ours). */
static void make_parents(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			*s = '/';
			return;
		}
		*s = '/';
	}
}

/* The state directory the key goes in, if missing (its last component
 * only: the parents are the deployment's). */
static void make_key_dir(struct kl_audit *a, const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	make_parents(dir);
	if (mkdir(dir, 0700) < 0)
		return;
	if (a->uid != (uid_t)-1) {
		char e[256];
		int fd = kl_safe_opendir(dir, 0, e, sizeof(e));
		if (fd >= 0) {
			kl_safe_fchown(fd, dir, a->uid, a->gid, e, sizeof(e));
			close(fd);
		}
	}
}

static int load_key(struct kl_audit *a, const char *key, char *err, size_t errlen)
{
	char path[PATH_MAX], pub[PATH_MAX + 8];
	if (key == NULL || key_path(key, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "audit key: no usable path");
		return -1;
	}
	snprintf(pub, sizeof(pub), "%s.pub", path);

	char e[256];
	int fd = kl_safe_open(path, O_RDONLY, 0, KL_SAFE_OWNED, e, sizeof(e));
	if (fd >= 0) {
		struct stat st;
		char buf[160];
		ssize_t n = -1;
		if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
			close(fd);
			snprintf(err, errlen, "%s: audit key is readable by others (mode %04o); "
					      "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
			return -1;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		uint8_t seed[crypto_sign_SEEDBYTES];
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			n--;
		if (n != 2 * crypto_sign_SEEDBYTES || kl_audit_unhex(buf, (size_t)n, seed) < 0) {
			snprintf(err, errlen, "%s: not an audit key (64 hex characters expected)", path);
			return -1;
		}
		crypto_sign_seed_keypair(a->pk, a->sk, seed);
		sodium_memzero(seed, sizeof(seed));
	} else if (errno == ENOENT) {
		/* First start: a fresh key in the state directory. */
		uint8_t seed[crypto_sign_SEEDBYTES];
		char hex[2 * crypto_sign_SEEDBYTES + 2];
		randombytes_buf(seed, sizeof(seed));
		crypto_sign_seed_keypair(a->pk, a->sk, seed);
		kl_audit_hex(seed, sizeof(seed), hex);
		sodium_memzero(seed, sizeof(seed));
		strcat(hex, "\n");
		make_key_dir(a, path);
		fd = kl_safe_open(path, O_WRONLY | O_CREAT | O_EXCL, 0600, KL_SAFE_OWNED, e, sizeof(e));
		if (fd < 0) {
			snprintf(err, errlen, "audit key %s: cannot create: %s", path, e);
			return -1;
		}
		int rc = write_all(fd, hex, strlen(hex));
		sodium_memzero(hex, sizeof(hex));
		if (rc < 0 || fsync(fd) < 0) {
			snprintf(err, errlen, "audit key %s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		if (a->uid != (uid_t)-1 &&
		    kl_safe_fchown(fd, path, a->uid, a->gid, err, errlen) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		kl_info("audit: created signing key %s (public key %s.pub)", path, path);
	} else {
		snprintf(err, errlen, "audit key: %s", e);
		return -1;
	}
	kl_audit_hex(a->pk, sizeof(a->pk), a->pk_hex);
	if (write_pub(a, pub, e, sizeof(e)) < 0)
		kl_warn("audit: could not write the public key %s: %s", pub, e);
	return 0;
}

/* ---- the queue of unsealed records ---- */

static void fmt_time(uint64_t wall, char *buf, size_t len)
{
	time_t s = (time_t)(wall / 1000000000ull);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t o = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + o, len - o, ".%09u" "Z", (unsigned)(wall % 1000000000ull));
}

/* A details text we can splice into the line: an object, one line. */
static bool details_ok(const char *d)
{
	size_t n = strlen(d);
	if (n < 2 || d[0] != '{' || d[n - 1] != '}')
		return false;
	for (const unsigned char *p = (const unsigned char *)d; *p; p++)
		if (*p < 0x20)
			return false;
	return true;
}

static int enqueue_at(struct kl_audit *a, uint64_t wall, uint64_t mono, bool sign, bool front,
		      const char *event, const char *subject, const char *details,
		      const char *result)
{
	char head[1024], ev[96], sub[320], res[96], ts[48];
	if (wall == 0) {
		wall = clock_ns(CLOCK_REALTIME);
		mono = clock_ns(CLOCK_MONOTONIC);
	}

	if (details == NULL || !details_ok(details)) {
		if (details != NULL)
			kl_warn("audit: %s record with malformed details; recorded as a string", event);
	}
	fmt_time(wall, ts, sizeof(ts));
	kl_audit_json_str(ev, sizeof(ev), event);
	kl_audit_json_str(sub, sizeof(sub), subject ? subject : "");
	kl_audit_json_str(res, sizeof(res), result ? result : "ok");
	int hl = snprintf(head, sizeof(head),
			  "%c{\"time\":\"%s\",\"wall_ns\":%" PRIu64 ",\"mono_ns\":%" PRIu64
			  ",\"proc\":\"%s\",\"pid\":%d,\"uid\":%u,\"event\":%s,\"subject\":%s,"
			  "\"details\":",
			  sign ? 'S' : 'N', ts, wall, mono, a->proc, (int)getpid(), (unsigned)getuid(),
			  ev, sub);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		return -1; /* cannot happen: every part above is bounded */
	size_t dl = details == NULL ? 2 : strlen(details);
	char *dq = NULL;
	if (details != NULL && !details_ok(details)) {
		size_t need = kl_audit_json_str(NULL, 0, details) + 16;
		dq = malloc(need);
		if (dq) {
			memcpy(dq, "{\"raw\":", 7);
			size_t k = kl_audit_json_str(dq + 7, need - 8, details);
			memcpy(dq + 7 + k, "}", 2);
			details = dq;
			dl = strlen(dq);
		} else {
			details = NULL;
			dl = 2;
		}
	}
	if (dl > KL_AUDIT_LINE_MAX) {
		details = "{\"truncated\":true}";
		dl = strlen(details);
	}
	size_t rl = strlen(res);
	size_t need = (size_t)hl + dl + 10 + rl + 1; /* with the newline */
	if (a->qlen + need > KL_AUDIT_QUEUE_MAX) {
		a->st.lost++;
		free(dq);
		return -1;
	}
	if (grow(&a->q, &a->qcap, a->qlen + need + 1) < 0) {
		a->st.lost++;
		free(dq);
		return -1;
	}
	char *p = a->q + a->qlen;
	if (front) {
		memmove(a->q + need, a->q, a->qlen);
		p = a->q;
	}
	memcpy(p, head, (size_t)hl);
	memcpy(p + hl, details ? details : "{}", dl);
	memcpy(p + hl + dl, ",\"result\":", 10);
	memcpy(p + hl + dl + 10, res, rl);
	p[hl + dl + 10 + rl] = '\n';
	a->qlen += need;
	free(dq);
	return 0;
}

static int enqueue(struct kl_audit *a, bool sign, bool front, const char *event,
		   const char *subject, const char *details, const char *result)
{
	return enqueue_at(a, 0, 0, sign, front, event, subject, details, result);
}

/* ---- sealing and writing ---- */

/* Seal one prefix (without its tag and '\n') onto a->out; advances seq and
 * head. */
static int seal(struct kl_audit *a, const char *pre, size_t plen, bool sign)
{
	char tail[64 + KL_AUDIT_HASH_HEX];
	char hex[KL_AUDIT_HASH_HEX + 1];
	kl_audit_hex(a->head, sizeof(a->head), hex);
	int tl = snprintf(tail, sizeof(tail), ",\"seq\":%" PRIu64 ",\"prev\":\"%s\"", a->seq + 1, hex);
	size_t need = a->olen + plen + (size_t)tl + KL_AUDIT_SIG_HEX + KL_AUDIT_HASH_HEX + 32;
	if (grow(&a->out, &a->ocap, need) < 0)
		return -1;
	char *line = a->out + a->olen;
	size_t n = 0;
	memcpy(line, pre, plen);
	n += plen;
	memcpy(line + n, tail, (size_t)tl);
	n += (size_t)tl;
	if (sign) {
		uint8_t sig[KL_AUDIT_SIG_LEN];
		crypto_sign_detached(sig, NULL, (const uint8_t *)line, n, a->sk);
		memcpy(line + n, ",\"sig\":\"", 8);
		n += 8;
		kl_audit_hex(sig, sizeof(sig), line + n);
		n += KL_AUDIT_SIG_HEX;
		line[n++] = '"';
		a->st.signatures++;
		a->since_sig = 0;
	} else {
		a->since_sig++;
	}
	crypto_generichash(a->head, sizeof(a->head), (const uint8_t *)line, n, NULL, 0);
	kl_audit_hex(a->head, sizeof(a->head), hex);
	n += (size_t)snprintf(line + n, KL_AUDIT_HASH_HEX + 16, ",\"hash\":\"%s\"}\n", hex);
	a->olen += n;
	a->seq++;
	return 0;
}

/* A signed record made at sealing time (checkpoint, rotate). */
static int seal_now(struct kl_audit *a, const char *event, const char *details)
{
	size_t save = a->qlen;
	if (enqueue(a, true, false, event, "", details, "ok") < 0)
		return -1;
	/* take it straight back off the end of the queue */
	const char *pre = a->q + save + 1;
	size_t plen = a->qlen - save - 2;
	int rc = seal(a, pre, plen, true);
	a->qlen = save;
	return rc;
}

/* Each record also goes to journald. A journald that is slow to take them
 * (its queue holds only a few datagrams) is waited for, up to
 * KL_AUDIT_JOURNAL_WAIT_MS for one write's records together; one that does
 * not take a record in that time gets none for retry_ns, so that it never
 * holds a daemon up for long. What it misses is counted and logged: the
 * files are the trail. */
static void journal_send(struct kl_audit *a, const char *out, size_t len)
{
	if (a->jfd < 0)
		return;
	char *dg = malloc(KL_AUDIT_LINE_MAX + 4096);
	if (!dg)
		return;
	const uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	const uint64_t wait_ns = KL_AUDIT_JOURNAL_WAIT_MS * 1000000ull;
	const char *p = out, *end = out + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t n = kl_audit_journal_fmt(p, l, dg, KL_AUDIT_LINE_MAX + 4096);
		p += l + 1;
		if (n == 0)
			continue;
		if (a->journal_pause_until && clock_ns(CLOCK_MONOTONIC) < a->journal_pause_until) {
			a->st.journal_dropped++;
			continue;
		}
		a->journal_pause_until = 0;
		/* past the wait: only what journald takes at once */
		int dontwait = clock_ns(CLOCK_MONOTONIC) - t0 >= wait_ns ? MSG_DONTWAIT : 0;
		if (sendto(a->jfd, dg, n, MSG_NOSIGNAL | dontwait, (struct sockaddr *)&a->jaddr,
			   a->jaddr_len) < 0) {
			if (errno == ENOENT || errno == ECONNREFUSED) {
				kl_warn("audit: journald went away (%s); records stay in the files only",
					strerror(errno));
				close(a->jfd);
				a->jfd = -1;
				break;
			}
			if (!a->journal_behind)
				kl_warn("audit: journald did not take a record within %d ms (%s); records "
					"stay in the files, and those it misses are counted",
					KL_AUDIT_JOURNAL_WAIT_MS, strerror(errno));
			a->journal_behind = true;
			a->st.journal_dropped++;
			/* a journald that took nothing in the whole wait gets a
			 * pause; one that is only slower than this burst does not */
			if (!dontwait)
				a->journal_pause_until = clock_ns(CLOCK_MONOTONIC) + a->retry_ns;
			continue;
		}
		a->st.journal_sent++;
		if (a->journal_behind) {
			kl_warn("audit: journald takes records again; %" PRIu64 " were not sent to it "
				"(they are in the files)", a->st.journal_dropped);
			a->journal_behind = false;
		}
	}
	free(dg);
}

static void report_failure(struct kl_audit *a, const char *what, int e)
{
	a->st.write_errors++;
	a->retry_at = clock_ns(CLOCK_MONOTONIC) + a->retry_ns;
	/* Loud, but once per kind of failure until it clears. */
	if (e != a->last_errno)
		kl_error("audit: %s %s: %s; %zu bytes of records wait in memory, retrying every %llus "
			 "(enforcement goes on)",
			 what, a->dir, strerror(e), a->qlen,
			 (unsigned long long)(a->retry_ns / 1000000000ull));
	a->last_errno = e;
}

/* Write a->out to the current file; on failure cut the file back. */
static int write_out(struct kl_audit *a)
{
	if (a->olen == 0)
		return 0;
	if (write_all(a->fd, a->out, a->olen) < 0) {
		int e = errno;
		if (ftruncate(a->fd, (off_t)a->file_bytes) < 0)
			kl_error("audit: could not cut %s back after a failed write: %s", a->dir,
				 strerror(errno));
		errno = e;
		return -1;
	}
	a->file_bytes += a->olen;
	journal_send(a, a->out, a->olen);
	return 0;
}

static int open_file(struct kl_audit *a, unsigned index, char *err, size_t errlen)
{
	char name[64];
	snprintf(name, sizeof(name), KL_AUDIT_FILE_FMT, index);
	int fd = kl_safe_openat(a->dirfd, name, O_WRONLY | O_APPEND | O_CREAT, 0640, KL_SAFE_OWNED,
				err, errlen);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (a->uid != (uid_t)-1 && st.st_uid != a->uid &&
	    kl_safe_fchown(fd, name, a->uid, a->gid, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->index = index;
	a->file_bytes = (uint64_t)st.st_size;
	a->file_records = 0;
	return 0;
}

static int rotate(struct kl_audit *a)
{
	char d[128], e[256];
	snprintf(d, sizeof(d), "{\"file\":\"" KL_AUDIT_FILE_FMT "\",\"records\":%" PRIu64 "}",
		 a->index, a->file_records);
	uint64_t seq0 = a->seq, since0 = a->since_sig;
	uint8_t head0[KL_AUDIT_HASH_LEN];
	memcpy(head0, a->head, sizeof(head0));
	size_t o0 = a->olen;
	if (seal_now(a, "rotate", d) < 0 || write_out(a) < 0) {
		int en = errno;
		a->olen = o0;
		a->seq = seq0;
		a->since_sig = since0;
		memcpy(a->head, head0, sizeof(head0));
		report_failure(a, "cannot write to", en);
		return -1;
	}
	a->olen = 0;
	fsync(a->fd);
	if (open_file(a, a->index + 1, e, sizeof(e)) < 0) {
		kl_error("audit: cannot open the next file: %s", e);
		a->ready = false;
		a->retry_at = clock_ns(CLOCK_MONOTONIC) + a->retry_ns;
		a->st.write_errors++;
		return -1;
	}
	a->st.rotations++;
	return 0;
}

/* Parse the chain head out of the last complete line of a file. */
static int head_from_line(struct kl_audit *a, const char *line, size_t len)
{
	const char *h = NULL;
	for (size_t i = len; i-- > 0;) {
		if (i + 9 <= len && memcmp(line + i, ",\"hash\":\"", 9) == 0) {
			h = line + i;
			break;
		}
	}
	if (!h || (size_t)(line + len - h) != 9 + KL_AUDIT_HASH_HEX + 2)
		return -1;
	uint8_t want[KL_AUDIT_HASH_LEN], got[KL_AUDIT_HASH_LEN];
	if (kl_audit_unhex(h + 9, KL_AUDIT_HASH_HEX, want) < 0)
		return -1;
	crypto_generichash(got, sizeof(got), (const uint8_t *)line, (size_t)(h - line), NULL, 0);
	if (memcmp(want, got, sizeof(got)) != 0)
		return -1;
	const char *s = strstr(line, ",\"seq\":");
	if (!s || s > h)
		return -1;
	a->seq = strtoull(s + 7, NULL, 10);
	memcpy(a->head, got, sizeof(got));
	return 0;
}

/* The chain head from the last line of a whole file (one ending in '\n'). */
static int last_head_of(struct kl_audit *a, const char *path)
{
	char *buf = NULL, e[256];
	size_t len = 0;
	if (kl_safe_read_file(path, SIZE_MAX / 2, KL_SAFE_OWNED, &buf, &len, e, sizeof(e)) < 0)
		return -1;
	int rc = -1;
	if (len > 0 && buf[len - 1] == '\n') {
		size_t lend = len - 1, lstart = lend;
		while (lstart > 0 && buf[lstart - 1] != '\n')
			lstart--;
		rc = head_from_line(a, buf + lstart, lend - lstart);
	}
	free(buf);
	return rc;
}

/* Find the newest file, pick up the chain, deal with a torn tail. */
static int resume(struct kl_audit *a, char *err, size_t errlen)
{
	char **names = NULL;
	size_t n = 0;
	unsigned first = 0;
	if (kl_audit_list(a->dir, &names, &n, &first, err, errlen) < 0)
		return -1;
	memset(a->head, 0, sizeof(a->head));
	a->seq = 0;
	unsigned index = 1;
	long torn_line = 0;
	size_t torn_bytes = 0;
	bool broken = false;
	if (n > 0) {
		index = first + (unsigned)n - 1;
		char *buf = NULL;
		size_t len = 0;
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%s", a->dir, names[n - 1]);
		if (kl_safe_read_file(path, SIZE_MAX / 2, KL_SAFE_OWNED, &buf, &len, err, errlen) < 0) {
			for (size_t i = 0; i < n; i++)
				free(names[i]);
			free(names);
			return -1;
		}
		size_t end = len;
		if (len > 0 && buf[len - 1] != '\n') {
			/* A crash mid-write: keep the fragment, say so below. */
			const char *nl = memrchr(buf, '\n', len);
			size_t start = nl ? (size_t)(nl - buf) + 1 : 0;
			torn_bytes = len - start;
			torn_line = 1;
			for (size_t i = 0; i < start; i++)
				torn_line += buf[i] == '\n';
			end = start;
		}
		/* the last complete line: (lstart .. end-1) */
		if (end > 0) {
			size_t lend = end - 1, lstart = lend;
			while (lstart > 0 && buf[lstart - 1] != '\n')
				lstart--;
			if (head_from_line(a, buf + lstart, lend - lstart) < 0)
				broken = true;
		} else if (index > first) {
			/* Nothing whole in a newer file (a crash or a full disk
			 * right after a rotation): the head is the last record
			 * of the file before, and this file goes on from it. */
			snprintf(path, sizeof(path), "%s/%s", a->dir, names[n - 2]);
			if (last_head_of(a, path) < 0)
				broken = true;
		}
		free(buf);
		if (broken) {
			kl_error("audit: the last record of %s does not check; starting file "
				 KL_AUDIT_FILE_FMT " with a new chain (klctl audit verify will show the break)",
				 path, index + 1);
			index++;
			torn_line = 0;
			memset(a->head, 0, sizeof(a->head));
			a->seq = 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (open_file(a, index, err, errlen) < 0)
		return -1;
	if (torn_line > 0) {
		if (write_all(a->fd, "\n", 1) < 0) {
			snprintf(err, errlen, "terminating a torn line: %s", strerror(errno));
			return -1;
		}
		a->file_bytes++;
		char d[160];
		snprintf(d, sizeof(d), "{\"file\":\"" KL_AUDIT_FILE_FMT "\",\"line\":%ld,\"bytes\":%zu}",
			 index, torn_line, torn_bytes);
		kl_warn("audit: " KL_AUDIT_FILE_FMT " line %ld was torn (%zu bytes, a crash mid-write); "
			"kept, and recorded", index, torn_line, torn_bytes);
		a->st.torn++;
		if (enqueue(a, true, true, "torn_line", "", d, "recovered") < 0)
			return -1;
	}
	if (broken) {
		char d[96];
		snprintf(d, sizeof(d), "{\"after_file\":\"" KL_AUDIT_FILE_FMT "\"}", index - 1);
		enqueue(a, true, true, "chain_restart", "", d, "error");
	}
	return 0;
}

static void copy_pub(struct kl_audit *a)
{
	char e[256], line[2 * KL_AUDIT_PK_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", a->pk_hex);
	int fd = kl_safe_openat(a->dirfd, KL_AUDIT_PUB_NAME, O_WRONLY | O_CREAT | O_TRUNC, 0644,
				KL_SAFE_OWNED, e, sizeof(e));
	if (fd < 0) {
		kl_warn("audit: %s", e);
		return;
	}
	if (write_all(fd, line, strlen(line)) < 0)
		kl_warn("audit: %s/%s: %s", a->dir, KL_AUDIT_PUB_NAME, strerror(errno));
	if (a->uid != (uid_t)-1)
		kl_safe_fchown(fd, KL_AUDIT_PUB_NAME, a->uid, a->gid, e, sizeof(e));
	close(fd);
}

static int make_dir(struct kl_audit *a, char *err, size_t errlen)
{
	make_parents(a->dir);
	if (mkdir(a->dir, 0750) == 0 && a->uid != (uid_t)-1) {
		int fd = kl_safe_opendir(a->dir, 0, err, errlen);
		if (fd < 0)
			return -1;
		int rc = kl_safe_fchown(fd, a->dir, a->uid, a->gid, err, errlen);
		close(fd);
		if (rc < 0)
			return -1;
	}
	a->dirfd = kl_safe_opendir(a->dir, KL_SAFE_OWNED, err, errlen);
	return a->dirfd < 0 ? -1 : 0;
}

/* Open the directory and the chain; on failure log and schedule a retry. */
static bool get_ready(struct kl_audit *a)
{
	char e[512];
	if (a->ready)
		return true;
	if (clock_ns(CLOCK_MONOTONIC) < a->retry_at)
		return false;
	if ((a->dirfd < 0 && make_dir(a, e, sizeof(e)) < 0) || resume(a, e, sizeof(e)) < 0) {
		int en = errno ? errno : EIO;
		a->st.write_errors++;
		a->retry_at = clock_ns(CLOCK_MONOTONIC) + a->retry_ns;
		if (en != a->last_errno)
			kl_error("audit: directory %s unusable: %s; %zu bytes of records wait in "
				 "memory, retrying every %llus (enforcement goes on)",
				 a->dir, e, a->qlen, (unsigned long long)(a->retry_ns / 1000000000ull));
		a->last_errno = en;
		if (a->dirfd >= 0) {
			close(a->dirfd);
			a->dirfd = -1;
		}
		return false;
	}
	copy_pub(a);
	a->ready = true;
	return true;
}

/* Seal and write the queue, chunk by chunk; rotate between chunks. */
static void drain(struct kl_audit *a)
{
	if (a->qlen == 0 && a->st.lost == 0)
		return;
	if (!get_ready(a))
		return;
	if (a->retry_at && clock_ns(CLOCK_MONOTONIC) < a->retry_at)
		return;
	size_t pos = 0;
	while (pos < a->qlen) {
		uint64_t seq0 = a->seq, since0 = a->since_sig, rec0 = a->file_records;
		uint8_t head0[KL_AUDIT_HASH_LEN];
		memcpy(head0, a->head, sizeof(head0));
		size_t p = pos;
		bool need_rotate = false;
		a->olen = 0;
		while (p < a->qlen && a->olen < OUT_CHUNK) {
			/* offsets, not pointers: seal_now may move the queue */
			size_t e = (size_t)((char *)memchr(a->q + p, '\n', a->qlen - p) - a->q);
			size_t plen = e - p - 1;
			if (a->file_records > 0 &&
			    a->file_bytes + a->olen + plen + 600 > a->rotate_bytes) {
				need_rotate = true;
				break;
			}
			if (seal(a, a->q + p + 1, plen, a->q[p] == 'S') < 0)
				break;
			a->file_records++;
			p = e + 1;
			if (a->since_sig >= a->every) {
				char d[64];
				snprintf(d, sizeof(d), "{\"why\":\"every\",\"records\":%u}", a->every);
				if (seal_now(a, "checkpoint", d) == 0)
					a->file_records++;
			}
		}
		uint64_t nrec = a->file_records - rec0;
		if (write_out(a) < 0) {
			int e = errno;
			a->seq = seq0;
			a->since_sig = since0;
			a->file_records = rec0;
			memcpy(a->head, head0, sizeof(head0));
			a->olen = 0;
			report_failure(a, "cannot write to", e);
			break;
		}
		a->olen = 0;
		a->st.records += nrec;
		a->last_errno = 0;
		a->retry_at = 0;
		pos = p;
		if (need_rotate && rotate(a) < 0)
			break;
	}
	memmove(a->q, a->q + pos, a->qlen - pos);
	a->qlen -= pos;
	if (a->qlen == 0 && a->st.lost > 0 && a->ready) {
		char d[64];
		snprintf(d, sizeof(d), "{\"records\":%" PRIu64 "}", a->st.lost);
		kl_error("audit: %" PRIu64 " records were lost while %s was unwritable", a->st.lost,
			 a->dir);
		uint64_t lost = a->st.lost;
		a->st.lost = 0;
		if (enqueue(a, true, false, "records_lost", "", d, "error") == 0)
			drain(a);
		else
			a->st.lost = lost;
	}
}

/* ---- public ---- */

static void journal_open(struct kl_audit *a, const char *path)
{
	a->jfd = -1;
	if (path == NULL)
		path = KL_AUDIT_JOURNAL_SOCKET;
	struct stat st;
	if (path[0] == '\0' || strlen(path) >= sizeof(a->jaddr.sun_path) || stat(path, &st) < 0 ||
	    !S_ISSOCK(st.st_mode))
		return;
	a->jfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->jfd < 0)
		return;
	struct timeval tv = { .tv_sec = 0, .tv_usec = KL_AUDIT_JOURNAL_WAIT_MS * 1000 };
	if (setsockopt(a->jfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		close(a->jfd); /* never a send that could block for good */
		a->jfd = -1;
		return;
	}
	a->jaddr.sun_family = AF_UNIX;
	strcpy(a->jaddr.sun_path, path);
	a->jaddr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

struct kl_audit *kl_audit_open(const struct kl_audit_opts *o, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium did not initialise");
		return NULL;
	}
	if (o->dir == NULL || o->dir[0] == '\0' || strlen(o->dir) >= PATH_MAX || o->proc == NULL ||
	    strlen(o->proc) >= 32) {
		snprintf(err, errlen, "audit: a directory and a process name are needed");
		return NULL;
	}
	struct kl_audit *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(a->dir, sizeof(a->dir), "%s", o->dir);
	snprintf(a->proc, sizeof(a->proc), "%s", o->proc);
	a->rotate_bytes = o->rotate_bytes ? o->rotate_bytes : KL_AUDIT_ROTATE_DEFAULT;
	if (a->rotate_bytes < 4096)
		a->rotate_bytes = 4096;
	a->every = o->checkpoint_every ? o->checkpoint_every : KL_AUDIT_CHECKPOINT_DEFAULT;
	a->batch = o->batch;
	a->retry_ns = o->retry_ns ? o->retry_ns : KL_AUDIT_RETRY_NS;
	a->uid = o->uid;
	a->gid = o->gid;
	a->dirfd = a->fd = -1;
	if (load_key(a, o->key, err, errlen) < 0) {
		free(a);
		return NULL;
	}
	journal_open(a, o->journal);
	char d[256];
	/* checkpoint_every is signed here so that a verifier can hold the
	 * chain to it: nobody can strip signatures without making a longer
	 * unsigned run than this. */
	snprintf(d, sizeof(d), "{\"key\":\"%s\",\"format\":1,\"checkpoint_every\":%u}",
		 a->pk_hex, a->every);
	enqueue(a, true, false, "audit_start", "", d, "ok");
	drain(a);
	return a;
}

void kl_audit_record(struct kl_audit *a, const char *event, const char *subject,
		     const char *details, const char *result)
{
	kl_audit_record_at(a, 0, 0, event, subject, details, result);
}

static void record_at(struct kl_audit *a, uint64_t wall_ns, uint64_t mono_ns, bool sign,
		      const char *event, const char *subject, const char *details, const char *result)
{
	if (a == NULL)
		return;
	enqueue_at(a, wall_ns, mono_ns, sign, false, event, subject, details, result);
	if (!a->batch || a->qlen >= BATCH_FLUSH_BYTES)
		drain(a);
}

void kl_audit_record_at(struct kl_audit *a, uint64_t wall_ns, uint64_t mono_ns, const char *event,
			const char *subject, const char *details, const char *result)
{
	record_at(a, wall_ns, mono_ns, false, event, subject, details, result);
}

void kl_audit_record_signed_at(struct kl_audit *a, uint64_t wall_ns, uint64_t mono_ns,
			       const char *event, const char *subject, const char *details,
			       const char *result)
{
	record_at(a, wall_ns, mono_ns, true, event, subject, details, result);
}

void kl_audit_checkpoint(struct kl_audit *a, const char *why)
{
	if (a == NULL)
		return;
	char d[160], w[96];
	kl_audit_json_str(w, sizeof(w), why ? why : "");
	snprintf(d, sizeof(d), "{\"why\":%s}", w);
	enqueue(a, true, false, "checkpoint", "", d, "ok");
	drain(a);
}

void kl_audit_flush(struct kl_audit *a)
{
	if (a != NULL)
		drain(a);
}

void kl_audit_get_stats(const struct kl_audit *a, struct kl_audit_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (a == NULL)
		return;
	*st = a->st;
	st->queued_bytes = a->qlen;
	st->seq = a->seq;
	st->file_index = a->index;
}

void kl_audit_close(struct kl_audit *a)
{
	if (a == NULL)
		return;
	enqueue(a, true, false, "audit_stop", "", "{}", "ok");
	a->retry_at = 0; /* one last try */
	drain(a);
	if (a->qlen > 0)
		kl_error("audit: %zu bytes of records could not be written to %s before exit",
			 a->qlen, a->dir);
	if (a->fd >= 0) {
		fsync(a->fd);
		close(a->fd);
	}
	if (a->dirfd >= 0)
		close(a->dirfd);
	if (a->jfd >= 0)
		close(a->jfd);
	sodium_memzero(a->sk, sizeof(a->sk));
	free(a->q);
	free(a->out);
	free(a);
}
