/* SPDX-License-Identifier: MPL-2.0 */
/* Trace files: versioned header, then length + CRC32 + wire message records. */
#include "ipc/trace.h"
#include "common/err.h"
#include "ipc/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <zlib.h>

#include "common/safefile.h"
#include "ipc/msg.h"

/* Longest record a valid trace can hold: one wire message. */
#define MAX_REC ((uint64_t)KL_MSG_HDR_LEN + KL_MSG_MAX_PAYLOAD)

struct kl_trace_writer {
	int fd;
	char path[4096];
	uint64_t size;     /* end of the last whole record */
	uint64_t records;  /* appended through this writer */
};

struct kl_trace_reader {
	FILE *f;
	bool own;
	char path[4096];
	uint64_t off;      /* offset of the next record */
	uint64_t last_off; /* offset of the record last returned */
	uint8_t *buf;
	size_t cap;
};

static uint32_t crc_of(const uint8_t *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths; a record is at most 64 MiB anyway. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

static void header_bytes(uint8_t out[KL_TRACE_HDR_LEN])
{
	memcpy(out, KL_TRACE_MAGIC, 8);
	kl_put32(out + 8, KL_TRACE_VERSION);
	kl_put32(out + 12, 0);
}

static int check_header(const uint8_t h[KL_TRACE_HDR_LEN], const char *path, char *err,
			size_t errlen)
{
	if (memcmp(h, KL_TRACE_MAGIC, 8) != 0)
		return kl_fail(err, errlen, "%s: not a Kernloom trace (no KLTRACE1 header)", path);
	if (kl_get32(h + 8) != KL_TRACE_VERSION)
		return kl_fail(err, errlen,
			    "%s: trace version %u, this build reads version %d (wire protocol %d: "
			    "ticks split into frames); record it again with this kl-sensor",
			    path, kl_get32(h + 8), KL_TRACE_VERSION, KL_MSG_VERSION);
	if (kl_get32(h + 12) != 0)
		return kl_fail(err, errlen, "%s: trace header flags 0x%x are unknown", path,
			    kl_get32(h + 12));
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Walk the length chain of an existing trace; verify the CRC of the last
 * whole record only (a crash can only have damaged the tail, and reading
 * gigabytes at every start would be a poor trade). Returns the end of the
 * valid prefix, -1 on an I/O error, -2 when the damage is not a torn tail
 * (an impossible length: cutting there could throw away good records). */
static int64_t valid_end(int fd, uint64_t fsize, char *err, size_t errlen)
{
	uint64_t off = KL_TRACE_HDR_LEN, last = 0;
	uint8_t rh[KL_TRACE_REC_HDR_LEN];
	bool have_last = false;

	while (off < fsize) {
		if (fsize - off < KL_TRACE_REC_HDR_LEN)
			return (int64_t)off;
		if (pread_full(fd, rh, sizeof(rh), (off_t)off) != (ssize_t)sizeof(rh))
			return kl_fail(err, errlen, "read: %s", strerror(errno));
		uint32_t len = kl_get32(rh);
		if (len < KL_MSG_HDR_LEN || len > MAX_REC) {
			kl_fail(err, errlen, "corrupt record at offset %llu (length %u); not appending "
			     "to it (move it away)", (unsigned long long)off, len);
			return -2;
		}
		if (off + KL_TRACE_REC_HDR_LEN + len > fsize)
			return (int64_t)off;
		last = off;
		have_last = true;
		off += KL_TRACE_REC_HDR_LEN + len;
	}
	if (!have_last)
		return (int64_t)off;
	if (pread_full(fd, rh, sizeof(rh), (off_t)last) != (ssize_t)sizeof(rh))
		return kl_fail(err, errlen, "read: %s", strerror(errno));
	uint32_t len = kl_get32(rh);
	uint8_t *b = malloc(len);
	if (b == NULL)
		return kl_fail(err, errlen, "out of memory");
	if (pread_full(fd, b, len, (off_t)(last + KL_TRACE_REC_HDR_LEN)) != (ssize_t)len) {
		free(b);
		return kl_fail(err, errlen, "read: %s", strerror(errno));
	}
	bool ok = crc_of(b, len) == kl_get32(rh + 4);
	free(b);
	return ok ? (int64_t)off : (int64_t)last;
}

int kl_trace_open(struct kl_trace_writer **out, const char *path, char *note, size_t notelen,
		  char *err, size_t errlen)
{
	struct kl_trace_writer *w;
	struct stat st;
	uint8_t h[KL_TRACE_HDR_LEN];

	*out = NULL;
	if (note != NULL && notelen > 0)
		note[0] = '\0';
	if (strlen(path) >= sizeof(w->path))
		return kl_fail(err, errlen, "trace path is too long");
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return kl_fail(err, errlen, "out of memory");
	snprintf(w->path, sizeof(w->path), "%s", path);
	/* Opened by the sensor before its drop, maybe in a directory its user
	 * can write: no link, FIFO or foreign file (safefile.h). */
	w->fd = kl_safe_open(path, O_RDWR | O_CREAT | O_APPEND, 0640, KL_SAFE_OWNED, err, errlen);
	if (w->fd < 0) {
		free(w);
		return -1;
	}
	/* Two writers would interleave records; readers are not locked out. */
	if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
		kl_fail(err, errlen, "%s: %s", path,
		     errno == EWOULDBLOCK ? "another process is recording into it" : strerror(errno));
		goto fail;
	}
	if (fstat(w->fd, &st) < 0) {
		kl_fail(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		kl_fail(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size == 0) {
		header_bytes(h);
		if (write(w->fd, h, sizeof(h)) != (ssize_t)sizeof(h)) {
			kl_fail(err, errlen, "%s: writing the header: %s", path, strerror(errno));
			goto fail;
		}
		w->size = KL_TRACE_HDR_LEN;
	} else {
		char why[256];
		if (st.st_size < KL_TRACE_HDR_LEN ||
		    pread_full(w->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
			kl_fail(err, errlen, "%s: exists and is not a Kernloom trace (%lld bytes)", path,
			     (long long)st.st_size);
			goto fail;
		}
		if (check_header(h, path, err, errlen) < 0)
			goto fail;
		int64_t end = valid_end(w->fd, (uint64_t)st.st_size, why, sizeof(why));
		if (end < 0) {
			kl_fail(err, errlen, "%s: %s", path, why);
			goto fail;
		}
		if ((uint64_t)end < (uint64_t)st.st_size) {
			if (ftruncate(w->fd, (off_t)end) < 0) {
				kl_fail(err, errlen, "%s: cutting off the torn tail at %lld: %s", path,
				     (long long)end, strerror(errno));
				goto fail;
			}
			if (note != NULL)
				snprintf(note, notelen,
					 "%s: cut off a torn tail of %lld bytes at offset %lld", path,
					 (long long)st.st_size - end, (long long)end);
		}
		w->size = (uint64_t)end;
	}
	*out = w;
	return 0;
fail:
	close(w->fd);
	free(w);
	return -1;
}

int kl_trace_append(struct kl_trace_writer *w, const uint8_t *msg, size_t len, char *err,
		    size_t errlen)
{
	uint8_t rh[KL_TRACE_REC_HDR_LEN];
	struct iovec iov[2];
	size_t total = sizeof(rh) + len;
	ssize_t n;

	if (len < KL_MSG_HDR_LEN || len > MAX_REC)
		return kl_fail(err, errlen, "%s: a %zu-byte message cannot be a trace record", w->path,
			    len);
	kl_put32(rh, (uint32_t)len);
	kl_put32(rh + 4, crc_of(msg, len));
	iov[0].iov_base = rh;
	iov[0].iov_len = sizeof(rh);
	iov[1].iov_base = (void *)msg;
	iov[1].iov_len = len;
	do {
		n = writev(w->fd, iov, 2);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)total) {
		w->size += total;
		w->records++;
		return 0;
	}
	int e = n < 0 ? errno : ENOSPC;
	/* A partial record would hide every later one from readers. */
	if (n > 0 && ftruncate(w->fd, (off_t)w->size) < 0)
		return kl_fail(err, errlen, "%s: short write (%zd of %zu bytes), and cutting it off failed: %s",
			    w->path, n, total, strerror(errno));
	return kl_fail(err, errlen, "%s: writing a record: %s", w->path, strerror(e));
}

int kl_trace_sync(struct kl_trace_writer *w, char *err, size_t errlen)
{
	if (fdatasync(w->fd) < 0)
		return kl_fail(err, errlen, "%s: fdatasync: %s", w->path, strerror(errno));
	return 0;
}

uint64_t kl_trace_records(const struct kl_trace_writer *w)
{
	return w->records;
}

void kl_trace_close(struct kl_trace_writer *w)
{
	if (w == NULL)
		return;
	fdatasync(w->fd);
	close(w->fd);
	free(w);
}

/* ---- reader ---- */

int kl_trace_open_read(struct kl_trace_reader **out, const char *path, char *err,
		       size_t errlen)
{
	FILE *f;

	*out = NULL;
	if (strcmp(path, "-") == 0)
		return kl_trace_open_stream(out, stdin, false, "(stdin)", err, errlen);
	f = kl_safe_fopen_read(path, KL_SAFE_OWNED, err, errlen);
	if (f == NULL)
		return -1;
	return kl_trace_open_stream(out, f, true, path, err, errlen);
}

int kl_trace_open_stream(struct kl_trace_reader **out, FILE *f, bool own, const char *name,
			 char *err, size_t errlen)
{
	struct kl_trace_reader *r;
	uint8_t h[KL_TRACE_HDR_LEN];
	size_t n;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		if (own)
			fclose(f);
		return kl_fail(err, errlen, "out of memory");
	}
	snprintf(r->path, sizeof(r->path), "%s", name);
	r->f = f;
	r->own = own;
	n = fread(h, 1, sizeof(h), r->f);
	if (n != sizeof(h)) {
		kl_fail(err, errlen, "%s: %s", r->path,
		     ferror(r->f) ? strerror(errno)
				  : "too short for a Kernloom trace header (16 bytes)");
		goto fail;
	}
	if (check_header(h, r->path, err, errlen) < 0)
		goto fail;
	r->off = KL_TRACE_HDR_LEN;
	*out = r;
	return 0;
fail:
	if (r->own)
		fclose(r->f);
	free(r);
	return -1;
}

/* After a bad record: torn tail when nothing follows, corruption otherwise. */
static int bad_record(struct kl_trace_reader *r, uint64_t after, char *err, size_t errlen,
		      const char *what)
{
	int c = getc(r->f);
	if (c == EOF) {
		kl_fail(err, errlen, "%s: torn last record at offset %llu (%s); ignored", r->path,
		     (unsigned long long)r->off, what);
		return KL_TRACE_TORN;
	}
	kl_fail(err, errlen, "%s: corrupt record at offset %llu (%s); data after offset %llu ignored",
	     r->path, (unsigned long long)r->off, what, (unsigned long long)after);
	return KL_TRACE_CORRUPT;
}

int kl_trace_next(struct kl_trace_reader *r, const uint8_t **msg, size_t *len, char *err,
		  size_t errlen)
{
	uint8_t rh[KL_TRACE_REC_HDR_LEN];
	size_t n;
	char what[128];

	n = fread(rh, 1, sizeof(rh), r->f);
	if (n == 0) {
		if (ferror(r->f))
			return kl_fail(err, errlen, "%s: %s", r->path, strerror(errno));
		return KL_TRACE_EOF;
	}
	if (n < sizeof(rh)) {
		kl_fail(err, errlen, "%s: torn last record at offset %llu (%zu of 8 header bytes); ignored",
		     r->path, (unsigned long long)r->off, n);
		return KL_TRACE_TORN;
	}
	uint32_t l = kl_get32(rh);
	if (l < KL_MSG_HDR_LEN || l > MAX_REC) {
		snprintf(what, sizeof(what), "length %u is not a message length", l);
		return bad_record(r, r->off + sizeof(rh), err, errlen, what);
	}
	if (l > r->cap) {
		uint8_t *b = realloc(r->buf, l);
		if (b == NULL)
			return kl_fail(err, errlen, "out of memory");
		r->buf = b;
		r->cap = l;
	}
	n = fread(r->buf, 1, l, r->f);
	if (n < l) {
		if (ferror(r->f))
			return kl_fail(err, errlen, "%s: %s", r->path, strerror(errno));
		kl_fail(err, errlen, "%s: torn last record at offset %llu (%zu of %u bytes); ignored",
		     r->path, (unsigned long long)r->off, n, l);
		return KL_TRACE_TORN;
	}
	if (crc_of(r->buf, l) != kl_get32(rh + 4)) {
		snprintf(what, sizeof(what), "CRC mismatch over %u bytes", l);
		return bad_record(r, r->off + sizeof(rh) + l, err, errlen, what);
	}
	r->last_off = r->off;
	r->off += sizeof(rh) + l;
	*msg = r->buf;
	*len = l;
	return KL_TRACE_REC;
}

uint64_t kl_trace_offset(const struct kl_trace_reader *r)
{
	return r->last_off;
}

void kl_trace_close_read(struct kl_trace_reader *r)
{
	if (r == NULL)
		return;
	if (r->own)
		fclose(r->f);
	free(r->buf);
	free(r);
}
