/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The per-process audit trail (docs/audit.md).
 *
 * Each daemon appends JSON lines to audit-NNNNNN.jsonl in its own audit
 * directory. A record is, in this order and byte for byte as written:
 *
 *   {"time":"<RFC 3339, ns, UTC>","wall_ns":N,"mono_ns":N,"proc":"decider",
 *    "pid":N,"uid":N,"event":"decision","subject":"198.18.0.7",
 *    "details":{...},"result":"ok","seq":N,"prev":"<64 hex>"
 *    [,"sig":"<128 hex>"],"hash":"<64 hex>"}
 *
 * hash = BLAKE2b-256 of every byte before `,"hash":`; prev is the hash of
 * the record before it (across files: the first record of file N+1 carries
 * the last hash of file N; the very first record has 64 zeros); sig is an
 * Ed25519 signature by the process's own key over every byte before
 * `,"sig":`. Signed records are the checkpoints (audit_start, checkpoint
 * every `checkpoint_every` records, rotate as the last record of a file,
 * torn_line, audit_stop), whatever the owner asks kl_audit_checkpoint()
 * for, and the records made with kl_audit_record_signed_at (the decider's
 * receipts). A signature
 * covers its record's prev, so it covers the whole chain before it:
 * rewriting a record and recomputing every later hash breaks the next
 * signature. audit_start names checkpoint_every, and the verifier refuses a
 * longer run of unsigned records: stripping the later signatures does not
 * hide a rewrite either.
 *
 * Writing never stops the daemon: records wait in memory (bounded) while
 * the directory is unwritable or the disk is full, the failure is logged at
 * error level and counted, and the write is retried every few seconds. A
 * write that fails half way is cut back (ftruncate), so the file never ends
 * in half a record we made; a torn last line found at start (a crash) is
 * terminated, kept, and followed by a signed torn_line record naming it.
 */
#ifndef KL_COMMON_AUDIT_H
#define KL_COMMON_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define KL_AUDIT_HASH_LEN 32           /* BLAKE2b-256 */
#define KL_AUDIT_HASH_HEX (2 * KL_AUDIT_HASH_LEN)
#define KL_AUDIT_PK_LEN 32             /* Ed25519 public key */
#define KL_AUDIT_SK_LEN 64             /* libsodium secret key (seed + pk) */
#define KL_AUDIT_SIG_LEN 64
#define KL_AUDIT_SIG_HEX (2 * KL_AUDIT_SIG_LEN)
#define KL_AUDIT_ROTATE_DEFAULT (16u << 20)
#define KL_AUDIT_CHECKPOINT_DEFAULT 256u
#define KL_AUDIT_QUEUE_MAX (8u << 20)  /* bytes of records waiting for the disk */
#define KL_AUDIT_RETRY_NS 5000000000ull
#define KL_AUDIT_LINE_MAX 65536        /* longer details are cut (and say so) */
#define KL_AUDIT_FILE_FMT "audit-%06u.jsonl"
#define KL_AUDIT_PUB_NAME "audit.pub"  /* the public key, copied next to the logs */
#define KL_AUDIT_JOURNAL_SOCKET "/run/systemd/journal/socket"
#define KL_AUDIT_JOURNAL_WAIT_MS 50  /* longest wait for journald to take a record */

struct kl_audit_opts {
	const char *dir;      /* the audit directory (created if missing) */
	const char *key;      /* secret key file, or a directory holding audit.key */
	const char *proc;     /* "enforcer", "sensor", "decider", "graphd" */
	uint64_t rotate_bytes;     /* 0: KL_AUDIT_ROTATE_DEFAULT */
	unsigned checkpoint_every; /* 0: KL_AUDIT_CHECKPOINT_DEFAULT */
	bool batch;           /* hold records until kl_audit_flush/_checkpoint (or 64 KiB) */
	uid_t uid;            /* owner of what we create, (uid_t)-1: ours */
	gid_t gid;
	const char *journal;  /* journald socket; NULL: the default, "": off */
	uint64_t retry_ns;    /* after a failed write (or journald send); 0: KL_AUDIT_RETRY_NS */
};

/* Counters for status and tests. */
struct kl_audit_stats {
	uint64_t records;      /* written */
	uint64_t signatures;
	uint64_t write_errors; /* failed attempts (each logged at error level) */
	uint64_t lost;         /* dropped because the queue was full */
	uint64_t rotations;
	uint64_t torn;         /* torn lines found at start */
	uint64_t journal_sent;
	uint64_t journal_dropped; /* records journald did not take in time */
	size_t queued_bytes;
	uint64_t seq;          /* of the last record written */
	unsigned file_index;
};

struct kl_audit;

/* Load the key (creating it at first start: mode 0600, owner opts->uid; the
 * public key next to it as <key>.pub) and open the directory. An unusable
 * key is an error (NULL, err says which file and why); an unusable audit
 * directory is not: it is logged, and retried on every later write. */
struct kl_audit *kl_audit_open(const struct kl_audit_opts *o, char *err, size_t errlen);
/* Signed audit_stop, flush, fsync, free. NULL is fine. */
void kl_audit_close(struct kl_audit *a);

/*
 * One record. subject: an address, CIDR or edge ("" for none); details: a
 * JSON object text (NULL: {}); result: "ok", "refused", ... Never fails the
 * caller: problems are logged and counted. a == NULL does nothing, so a
 * daemon without an audit trail (tests, replay) calls it unconditionally.
 */
void kl_audit_record(struct kl_audit *a, const char *event, const char *subject,
		     const char *details, const char *result);
/* The same, for something that happened at wall_ns/mono_ns (CLOCK_REALTIME
 * and CLOCK_MONOTONIC; 0: now) and is written later by another thread. */
void kl_audit_record_at(struct kl_audit *a, uint64_t wall_ns, uint64_t mono_ns, const char *event,
			const char *subject, const char *details, const char *result);
/* The same, with a signature of its own (the decider's receipts: each one
 * can be shown and checked alone). */
void kl_audit_record_signed_at(struct kl_audit *a, uint64_t wall_ns, uint64_t mono_ns,
			       const char *event, const char *subject, const char *details,
			       const char *result);
/* A signed checkpoint record now ("why" goes in its details), then flush. */
void kl_audit_checkpoint(struct kl_audit *a, const char *why);
/* Write what is queued (batch mode); retries a failed directory. */
void kl_audit_flush(struct kl_audit *a);
void kl_audit_get_stats(const struct kl_audit *a, struct kl_audit_stats *st);

/* `s` as a JSON string in buf (quotes included, escaped); one that does not
 * fit is cut between characters and still closed. Returns the length the
 * whole string needs (buf may be NULL). For callers building details. */
size_t kl_audit_json_str(char *buf, size_t len, const char *s);

/* ---- verification (pure over lines; klctl audit verify and the tests) ---- */

struct kl_audit_verifier {
	/* in */
	const uint8_t (*keys)[KL_AUDIT_PK_LEN]; /* accepted public keys */
	size_t nkeys;
	/* chain state */
	bool started;
	uint64_t seq;
	uint8_t head[KL_AUDIT_HASH_LEN];
	char proc[32];
	const uint8_t *key;      /* the key of this chain (from audit_start) */
	uint64_t records, signatures, since_sig, torn;
	uint64_t every;          /* the longest unsigned run allowed (audit_start's checkpoint_every) */
	uint64_t last_wall_ns;
	long pending_torn_line;  /* a fragment line waiting for its torn_line record */
	char pending_torn_file[256];
};

void kl_audit_verifier_init(struct kl_audit_verifier *v, const uint8_t (*keys)[KL_AUDIT_PK_LEN],
			    size_t nkeys);
/* Check one line (without its '\n') of `file` at `lineno`. `last_in_file`
 * tells whether the line had no '\n' after it. 0, or -1 with err. */
int kl_audit_verify_line(struct kl_audit_verifier *v, const char *file, long lineno,
			 const char *line, size_t len, bool unterminated, char *err, size_t errlen);

/* Every file of one audit directory, in order. 0: verified (a summary
 * line on `out` when not NULL); -1: err names the first bad file and line. */
int kl_audit_verify_dir(const char *dir, const uint8_t (*keys)[KL_AUDIT_PK_LEN], size_t nkeys,
			FILE *out, char *err, size_t errlen);

/* The audit files of `dir` in order (audit-NNNNNN.jsonl): *names is an
 * array of *n strings (free each and the array). Gaps in the numbering are
 * reported by err when `gaps_fatal`. 0 or -1. */
int kl_audit_list(const char *dir, char ***names, size_t *n, unsigned *first_index, char *err,
		  size_t errlen);

/* A public key file: 64 hex characters (a newline may follow). 0 or -1. */
int kl_audit_read_pub(const char *path, uint8_t pk[KL_AUDIT_PK_LEN], char *err, size_t errlen);

/* Hex helpers. */
void kl_audit_hex(const uint8_t *in, size_t n, char *out);
int kl_audit_unhex(const char *in, size_t hexlen, uint8_t *out);

/* Journald native protocol datagram for one record line (pure): fields
 * KERNLOOM_EVENT=, KERNLOOM_SUBJECT=, KERNLOOM_SEQ=, ... Returns the length
 * written, or 0 when the line is not a record or buf is too small. */
size_t kl_audit_journal_fmt(const char *line, size_t len, char *buf, size_t cap);

#endif
