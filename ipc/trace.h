/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Trace files: what kl-sensor --record writes and `klctl trace dump` and
 * `kl-decider --replay` read.
 *
 *   header  16 bytes: "KLTRACE1", u32 version (2), u32 flags (0), little-endian.
 *           Version 2 holds wire protocol 2 messages (a tick may span
 *           several frames, ipc/frames.h); a version 1 file is refused
 *           with a reason, not misread.
 *   record  u32 length, u32 crc32 (zlib) of the message bytes, then the wire
 *           message exactly as sent (KL_MSG header + payload)
 *
 * A record is appended with one write(2), so a reader of a file that is
 * being written sees whole records plus at most one partial tail. The
 * reader stops at the first record that is short, longer than any message,
 * or fails its CRC, and reports whether that was a torn tail (nothing
 * valid after it) or damage in the middle.
 */
#ifndef KL_IPC_TRACE_H
#define KL_IPC_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KL_TRACE_MAGIC "KLTRACE1"
#define KL_TRACE_VERSION 2
#define KL_TRACE_HDR_LEN 16
#define KL_TRACE_REC_HDR_LEN 8

struct kl_trace_writer;
struct kl_trace_reader;

/* Open (create 0640, or append to) a trace. An existing file must carry
 * our header; a torn tail left by a crash is cut off (and said so through
 * `note`, which may be NULL) so new records stay reachable. */
int kl_trace_open(struct kl_trace_writer **out, const char *path, char *note, size_t notelen,
		  char *err, size_t errlen);
/* Append one message (header + payload) as one record with one write. */
int kl_trace_append(struct kl_trace_writer *w, const uint8_t *msg, size_t len, char *err,
		    size_t errlen);
int kl_trace_sync(struct kl_trace_writer *w, char *err, size_t errlen);
uint64_t kl_trace_records(const struct kl_trace_writer *w);
void kl_trace_close(struct kl_trace_writer *w);

enum kl_trace_rc {
	KL_TRACE_ERR = -1,   /* I/O error or not a trace: err says why */
	KL_TRACE_EOF = 0,    /* clean end */
	KL_TRACE_REC = 1,    /* msg and len hold the next record's message */
	KL_TRACE_TORN = 2,   /* stopped at a torn last record: err says where */
	KL_TRACE_CORRUPT = 3 /* stopped at a bad record with data after it */
};

/* Opens and checks the header. `path` "-" reads stdin. */
int kl_trace_open_read(struct kl_trace_reader **out, const char *path, char *err,
		       size_t errlen);
/* The same over an open stream (a pipe, fmemopen for tests and fuzzing);
 * name is used in messages; with own the reader closes f, also on error. */
int kl_trace_open_stream(struct kl_trace_reader **out, FILE *f, bool own, const char *name,
			 char *err, size_t errlen);
/* The message stays valid until the next call. */
int kl_trace_next(struct kl_trace_reader *r, const uint8_t **msg, size_t *len, char *err,
		  size_t errlen);
/* Offset of the record kl_trace_next last returned (for messages). */
uint64_t kl_trace_offset(const struct kl_trace_reader *r);
void kl_trace_close_read(struct kl_trace_reader *r);

#endif
