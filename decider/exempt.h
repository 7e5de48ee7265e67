/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Exemptions (DESIGN §6.4): the whitelist file (addresses and CIDRs, one
 * per line, # comments) and the feedback file (JSON array of
 * {target, action: forgive|whitelist, ttl | until, notes}).
 *
 * A feedback `ttl` counts from when the entry was first loaded: reloading
 * an unchanged file does not extend it. Entries are identified by their
 * target, action, ttl and until; notes do not matter.
 *
 * Times are Unix milliseconds on the tick clock (virtual in replay), so
 * `until` timestamps work the same in replay and live.
 */
#ifndef KL_DECIDER_EXEMPT_H
#define KL_DECIDER_EXEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/addr.h"
#include "common/duration.h"
#include "decider/knobs.h"

#define DEC_EX_NEVER INT64_MAX

struct dec_exempt_entry {
	struct kl_addr net;
	uint8_t kind;          /* DEC_EX_FORGIVE or DEC_EX_WHITELIST */
	bool from_feedback;
	bool has_ttl, has_until;
	int64_t ttl_ms, until_ms;
	int64_t first_ms;      /* first loaded (feedback ttl counts from here) */
	int64_t expires_ms;    /* DEC_EX_NEVER if it does not expire */
	char *id;              /* identity across reloads */
	char *notes;
};

struct dec_exempt_list {
	struct dec_exempt_entry *v;
	size_t n;
};

void dec_exempt_list_free(struct dec_exempt_list *l);

/* Limits: a hostile or broken file cannot make us allocate without bound. */
#define DEC_EX_MAX_ENTRIES 100000
#define DEC_EX_MAX_FILE (16u << 20)

/* Parse whitelist text. `name` is used in messages ("FILE:LINE: ..."). */
int dec_whitelist_parse(const char *text, size_t len, const char *name,
		       struct dec_exempt_list *out, struct kl_errs *errs);
/* Parse feedback JSON text (the whole file). */
int dec_feedback_parse(const char *text, size_t len, const char *name,
		      struct dec_exempt_list *out, struct kl_errs *errs);
/* Parse one feedback array already decoded by jansson (json_t *). */
int dec_feedback_from_json(const void *json_array, const char *name,
			  struct dec_exempt_list *out, struct kl_errs *errs);
/* RFC 3339 times: kl_rfc3339_parse and kl_rfc3339_format (common/duration.h). */

struct dec_exempt {
	struct dec_exempt_list wl, fb;
	int64_t now;           /* for dec_exempt_cb */
};

void dec_exempt_init(struct dec_exempt *x);
void dec_exempt_free(struct dec_exempt *x);
/* Replace the whitelist / feedback set (the list is taken over). New CIDR
 * entries (prefixes, not hosts) are appended to released (may be NULL) so
 * the caller can ask the enforcer to drop what it holds inside them. */
int dec_exempt_set_whitelist(struct dec_exempt *x, struct dec_exempt_list *l, int64_t now,
			    struct kl_cidrs *released);
int dec_exempt_set_feedback(struct dec_exempt *x, struct dec_exempt_list *l, int64_t now,
			   struct kl_cidrs *released);
/* DEC_EX_WHITELIST beats DEC_EX_FORGIVE beats DEC_EX_NONE; expired entries
 * do not count. */
int dec_exempt_lookup(const struct dec_exempt *x, const struct kl_addr *a, int64_t now);
/* dec_exempt_fn for the engine: ctx is a struct dec_exempt, time is x->now. */
int dec_exempt_cb(void *ctx, const struct kl_addr *a);
bool dec_exempt_empty(const struct dec_exempt *x);

/* Change detection for reloads: (dev, inode, size, mtime). */
struct dec_filewatch {
	bool have;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};
/* 1 if the file differs from the last call (or appeared/disappeared), else 0. */
int dec_filewatch_changed(struct dec_filewatch *w, const char *path);

/* Read a whole file up to max bytes. Returns 0, or -1 with errno set and
 * a message in err. */
int dec_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		 size_t errlen);

#endif
