/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Checking an audit trail (audit.h): pure over lines, then a driver over
 * one directory's files. Every failure names the file and the line.
 */
#include "common/audit.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/safefile.h"

static int vfail(char *err, size_t errlen, const char *file, long line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int vfail(char *err, size_t errlen, const char *file, long line, const char *fmt, ...)
{
	va_list ap;
	int o = snprintf(err, errlen, "%s line %ld: ", file, line);
	if (o < 0 || (size_t)o >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + o, errlen - (size_t)o, fmt, ap);
	va_end(ap);
	return -1;
}

void kl_audit_verifier_init(struct kl_audit_verifier *v, const uint8_t (*keys)[KL_AUDIT_PK_LEN],
			    size_t nkeys)
{
	memset(v, 0, sizeof(*v));
	v->keys = keys;
	v->nkeys = nkeys;
	v->every = KL_AUDIT_CHECKPOINT_DEFAULT;
}

/* The byte offsets of `,"hash":"` and (if any) `,"sig":"` in a line that
 * ends the way a record ends. -1 if it does not. */
static int split_line(const char *line, size_t len, size_t *hash_at, size_t *sig_at)
{
	const size_t tail = 9 + KL_AUDIT_HASH_HEX + 2; /* ,"hash":"<hex>"} */
	if (len < tail + 2 || memcmp(line + len - tail, ",\"hash\":\"", 9) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0)
		return -1;
	*hash_at = len - tail;
	const size_t st = 8 + KL_AUDIT_SIG_HEX + 1; /* ,"sig":"<hex>" */
	*sig_at = SIZE_MAX;
	if (*hash_at > st && memcmp(line + *hash_at - st, ",\"sig\":\"", 8) == 0)
		*sig_at = *hash_at - st;
	return 0;
}

static bool key_known(const struct kl_audit_verifier *v, const uint8_t *k)
{
	for (size_t i = 0; i < v->nkeys; i++)
		if (memcmp(v->keys[i], k, KL_AUDIT_PK_LEN) == 0)
			return true;
	return false;
}

int kl_audit_verify_line(struct kl_audit_verifier *v, const char *file, long lineno,
			 const char *line, size_t len, bool unterminated, char *err, size_t errlen)
{
	size_t hash_at, sig_at;
	uint8_t want[KL_AUDIT_HASH_LEN], got[KL_AUDIT_HASH_LEN];

	if (unterminated)
		return vfail(err, errlen, file, lineno,
			     "torn last line (%zu bytes without a newline: a crash mid-write, or "
			     "the file was cut); the daemon records it at its next start", len);
	if (split_line(line, len, &hash_at, &sig_at) < 0) {
		if (v->pending_torn_line == 0 && v->started) {
			/* Maybe a fragment the daemon terminated after a crash:
			 * the next record must say so. */
			v->pending_torn_line = lineno;
			snprintf(v->pending_torn_file, sizeof(v->pending_torn_file), "%s", file);
			return 0;
		}
		return vfail(err, errlen, file, lineno, "not an audit record (no trailing hash)");
	}
	if (kl_audit_unhex(line + hash_at + 9, KL_AUDIT_HASH_HEX, want) < 0)
		return vfail(err, errlen, file, lineno, "the hash is not hex");
	crypto_generichash(got, sizeof(got), (const uint8_t *)line, hash_at, NULL, 0);
	if (memcmp(want, got, sizeof(got)) != 0)
		return vfail(err, errlen, file, lineno,
			     "the record does not match its hash (the record was changed)");

	json_error_t je;
	json_t *r = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!r)
		return vfail(err, errlen, file, lineno, "not JSON: %s", je.text);
	int rc = -1;
	json_t *jseq = json_object_get(r, "seq"), *jd = json_object_get(r, "details");
	const char *prev = json_string_value(json_object_get(r, "prev"));
	const char *proc = json_string_value(json_object_get(r, "proc"));
	const char *event = json_string_value(json_object_get(r, "event"));
	json_t *jwall = json_object_get(r, "wall_ns");
	if (!json_is_integer(jseq) || !prev || !proc || !event || !json_is_object(jd) ||
	    !json_is_integer(jwall) || strlen(prev) != KL_AUDIT_HASH_HEX) {
		vfail(err, errlen, file, lineno, "a field is missing or of the wrong type "
						 "(seq, prev, proc, event, details, wall_ns)");
		goto out;
	}
	uint64_t seq = (uint64_t)json_integer_value(jseq);
	uint8_t p[KL_AUDIT_HASH_LEN];
	if (kl_audit_unhex(prev, KL_AUDIT_HASH_HEX, p) < 0) {
		vfail(err, errlen, file, lineno, "prev is not hex");
		goto out;
	}
	if (v->pending_torn_line) {
		json_t *jl = json_object_get(jd, "line");
		if (strcmp(event, "torn_line") != 0 || !json_is_integer(jl) ||
		    json_integer_value(jl) != v->pending_torn_line) {
			vfail(err, errlen, v->pending_torn_file, v->pending_torn_line,
			      "not an audit record (no trailing hash), and the record after it "
			      "does not report it as torn");
			goto out;
		}
		v->pending_torn_line = 0;
		v->torn++;
	}
	if (!v->started) {
		static const uint8_t zero[KL_AUDIT_HASH_LEN];
		if (seq != 1 || memcmp(p, zero, sizeof(zero)) != 0) {
			vfail(err, errlen, file, lineno,
			      "the chain does not start here (seq %" PRIu64 ", prev not zero): "
			      "an earlier file or line is missing", seq);
			goto out;
		}
		snprintf(v->proc, sizeof(v->proc), "%s", proc);
	} else {
		if (seq != v->seq + 1) {
			vfail(err, errlen, file, lineno,
			      "sequence gap: seq %" PRIu64 " follows %" PRIu64
			      " (a record was removed, inserted or reordered, or a file is missing)",
			      seq, v->seq);
			goto out;
		}
		if (memcmp(p, v->head, sizeof(p)) != 0) {
			vfail(err, errlen, file, lineno,
			      "prev does not match the hash of the record before it (a record was "
			      "removed, inserted, changed or reordered)");
			goto out;
		}
		if (strcmp(proc, v->proc) != 0) {
			vfail(err, errlen, file, lineno, "proc \"%s\" in a chain of \"%s\"", proc,
			      v->proc);
			goto out;
		}
	}
	if (strcmp(event, "audit_start") == 0) {
		const char *k = json_string_value(json_object_get(jd, "key"));
		uint8_t pk[KL_AUDIT_PK_LEN];
		if (!k || strlen(k) != 2 * KL_AUDIT_PK_LEN || kl_audit_unhex(k, strlen(k), pk) < 0) {
			vfail(err, errlen, file, lineno, "audit_start without a key");
			goto out;
		}
		if (!key_known(v, pk)) {
			vfail(err, errlen, file, lineno,
			      "signed by key %.16s..., which is not among the public keys given", k);
			goto out;
		}
		for (size_t i = 0; i < v->nkeys; i++)
			if (memcmp(v->keys[i], pk, KL_AUDIT_PK_LEN) == 0)
				v->key = v->keys[i];
		json_t *jce = json_object_get(jd, "checkpoint_every");
		if (jce != NULL && (!json_is_integer(jce) || json_integer_value(jce) < 1)) {
			vfail(err, errlen, file, lineno, "audit_start: checkpoint_every is not a count");
			goto out;
		}
		v->every = jce ? (uint64_t)json_integer_value(jce) : KL_AUDIT_CHECKPOINT_DEFAULT;
		if (sig_at == SIZE_MAX) {
			vfail(err, errlen, file, lineno, "audit_start is not signed");
			goto out;
		}
	}
	if (sig_at != SIZE_MAX) {
		uint8_t sig[KL_AUDIT_SIG_LEN];
		if (kl_audit_unhex(line + sig_at + 8, KL_AUDIT_SIG_HEX, sig) < 0) {
			vfail(err, errlen, file, lineno, "the signature is not hex");
			goto out;
		}
		if (v->key == NULL) {
			vfail(err, errlen, file, lineno, "a signature before any audit_start names a key");
			goto out;
		}
		if (crypto_sign_verify_detached(sig, (const uint8_t *)line, sig_at, v->key) != 0) {
			vfail(err, errlen, file, lineno,
			      "bad signature (the record, or a record before it, was rewritten)");
			goto out;
		}
		v->signatures++;
		v->since_sig = 0;
	} else {
		if (strcmp(event, "checkpoint") == 0 || strcmp(event, "rotate") == 0 ||
		    strcmp(event, "torn_line") == 0 || strcmp(event, "audit_stop") == 0) {
			vfail(err, errlen, file, lineno, "a %s record without a signature", event);
			goto out;
		}
		/* The writer signs at least every `every` records: a longer
		 * unsigned run means signed records were stripped or dropped
		 * (to hide a rewrite before them) or records were added. */
		if (v->since_sig + 1 > v->every) {
			vfail(err, errlen, file, lineno,
			      "%" PRIu64 " records in a row without a signature, but this chain signs at "
			      "least every %" PRIu64 " (signatures were removed, or records inserted)",
			      v->since_sig + 1, v->every);
			goto out;
		}
		v->since_sig++;
	}
	v->started = true;
	v->seq = seq;
	memcpy(v->head, got, sizeof(got));
	v->records++;
	v->last_wall_ns = (uint64_t)json_integer_value(jwall);
	rc = 0;
out:
	json_decref(r);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kl_audit_list(const char *dir, char ***names, size_t *n, unsigned *first_index, char *err,
		  size_t errlen)
{
	*names = NULL;
	*n = 0;
	*first_index = 1;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *de;
	size_t cap = 0;
	while ((de = readdir(d)) != NULL) {
		unsigned idx;
		char tail[8];
		if (strlen(de->d_name) != 18 || sscanf(de->d_name, "audit-%6u.jsonl%1s", &idx, tail) != 1)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			char **p = realloc(*names, cap * sizeof(*p));
			if (!p)
				goto oom;
			*names = p;
		}
		if (((*names)[(*n)++] = strdup(de->d_name)) == NULL)
			goto oom;
	}
	closedir(d);
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), cmp_str);
	if (*n > 0)
		sscanf((*names)[0], "audit-%6u", first_index);
	return 0;
oom:
	closedir(d);
	snprintf(err, errlen, "out of memory");
	return -1;
}

int kl_audit_verify_dir(const char *dir, const uint8_t (*keys)[KL_AUDIT_PK_LEN], size_t nkeys,
			FILE *out, char *err, size_t errlen)
{
	char **names;
	size_t n;
	unsigned first;
	struct kl_audit_verifier v;
	int rc = -1;

	if (kl_audit_list(dir, &names, &n, &first, err, errlen) < 0)
		return -1;
	kl_audit_verifier_init(&v, keys, nkeys);
	if (n == 0) {
		snprintf(err, errlen, "%s: no audit files (audit-NNNNNN.jsonl)", dir);
		goto done;
	}
	if (first != 1) {
		snprintf(err, errlen, "%s/audit-000001.jsonl is missing (the first file is %s)", dir,
			 names[0]);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned idx;
		char path[PATH_MAX + 64];
		sscanf(names[i], "audit-%6u", &idx);
		if (idx != first + i) {
			snprintf(err, errlen, "%s/" KL_AUDIT_FILE_FMT " is missing (between %s and %s)",
				 dir, first + (unsigned)i, names[i - 1], names[i]);
			goto done;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		char *buf;
		size_t len;
		if (kl_safe_read_file(path, SIZE_MAX / 2, 0, &buf, &len, err, errlen) < 0)
			goto done;
		if (len == 0) {
			free(buf);
			snprintf(err, errlen, "%s line 1: empty file", path);
			goto done;
		}
		long lineno = 0;
		size_t pos = 0;
		while (pos < len) {
			const char *nl = memchr(buf + pos, '\n', len - pos);
			size_t l = nl ? (size_t)(nl - (buf + pos)) : len - pos;
			lineno++;
			if (kl_audit_verify_line(&v, path, lineno, buf + pos, l, nl == NULL, err,
						 errlen) < 0) {
				free(buf);
				goto done;
			}
			pos += l + 1;
		}
		free(buf);
	}
	if (v.pending_torn_line) {
		vfail(err, errlen, v.pending_torn_file, v.pending_torn_line,
		      "not an audit record (no trailing hash)");
		goto done;
	}
	if (out) {
		fprintf(out, "%s: ok: %" PRIu64 " records (%s) in %zu files, %" PRIu64
			     " signatures, last seq %" PRIu64 "%s",
			dir, v.records, v.proc, n, v.signatures, v.seq,
			v.torn ? ", torn lines recovered: " : "");
		if (v.torn)
			fprintf(out, "%" PRIu64, v.torn);
		if (v.since_sig)
			fprintf(out, "; the last %" PRIu64 " records are not yet covered by a "
				     "signature (the daemon is running, or stopped without its "
				     "audit_stop)", v.since_sig);
		fputc('\n', out);
	}
	rc = 0;
done:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static size_t put_field(char *buf, size_t cap, size_t o, const char *k, const char *val)
{
	size_t kl = strlen(k), vl = strlen(val);
	if (o + kl + vl + 2 > cap)
		return SIZE_MAX;
	memcpy(buf + o, k, kl);
	o += kl;
	buf[o++] = '=';
	for (size_t i = 0; i < vl; i++)
		buf[o++] = (unsigned char)val[i] < 0x20 ? ' ' : val[i];
	buf[o++] = '\n';
	return o;
}

size_t kl_audit_journal_fmt(const char *line, size_t len, char *buf, size_t cap)
{
	json_t *r = json_loadb(line, len, 0, NULL);
	if (!r)
		return 0;
	const char *proc = json_string_value(json_object_get(r, "proc"));
	const char *ev = json_string_value(json_object_get(r, "event"));
	const char *sub = json_string_value(json_object_get(r, "subject"));
	const char *res = json_string_value(json_object_get(r, "result"));
	const char *hash = json_string_value(json_object_get(r, "hash"));
	json_t *seq = json_object_get(r, "seq");
	size_t o = 0;
	if (!proc || !ev || !sub || !res || !hash || !json_is_integer(seq) || len + 1024 > cap) {
		json_decref(r);
		return 0;
	}
	char msg[512], s[32], id[48];
	snprintf(s, sizeof(s), "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
	snprintf(msg, sizeof(msg), "audit #%s %s %s %s", s, ev, sub[0] ? sub : "-", res);
	snprintf(id, sizeof(id), "kl-%s", proc);
	bool bad = strcmp(res, "ok") != 0 && strcmp(res, "recovered") != 0;
	o = put_field(buf, cap, o, "MESSAGE", msg);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "PRIORITY", bad ? "5" : "6");
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "SYSLOG_IDENTIFIER", id);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_PROC", proc);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_SEQ", s);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_EVENT", ev);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_SUBJECT", sub);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_RESULT", res);
	o = o == SIZE_MAX ? o : put_field(buf, cap, o, "KERNLOOM_HASH", hash);
	if (o != SIZE_MAX) {
		char *rec = strndup(line, len);
		o = rec ? put_field(buf, cap, o, "KERNLOOM_RECORD", rec) : SIZE_MAX;
		free(rec);
	}
	json_decref(r);
	return o == SIZE_MAX ? 0 : o;
}
