/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's control commands (klctl sources, forgive, whitelist), as plain
 * functions over the decider's state so the tests call them directly.
 */
#ifndef KL_DECIDER_CONTROL_H
#define KL_DECIDER_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "decider/decider.h"
#include "ipc/msg.h"

struct json_t;

#define DEC_SOURCES_DEFAULT 50
#define DEC_FORGIVE_DEFAULT_TTL_MS (3600 * 1000)
#define DEC_WHITELIST_LIST_DEFAULT 1000

/* The decider's view of its sources: a JSON array of
 * {ip, level, strikes, severity, pps, syn, scan, droprl, in_level_s,
 *  ttl_left_s}, most severe level first, then by severity, then address;
 * at most `limit` entries. in_level_s is null for a source that has been
 * in OBSERVE since it was first seen; ttl_left_s is null in OBSERVE. */
struct json_t *dec_sources_json(const struct dec_engine *e, int64_t now, size_t limit);

/* A new feedback entry: kind DEC_EX_FORGIVE (needs ttl_ms > 0) or
 * DEC_EX_WHITELIST (ttl_ms, until_ms as Unix ms, or neither: permanent). */
struct dec_fb_new {
	const struct kl_addr *target;
	uint8_t kind;
	int64_t ttl_ms;
	int64_t until_ms;
	const char *notes;
};

/* Append the entry to the feedback file atomically (PATH.tmp, fsync,
 * rename, fsync of the directory), keeping its other entries; the entries
 * it supersedes are dropped (a forgive: one for the same target with the
 * same ttl; a whitelist: every whitelist entry for the same target). A
 * missing or empty file starts a new array. The file must be a JSON array
 * that dec_feedback_parse accepts, or nothing is written. *entries gets the
 * number of entries written. Returns 0 or -1 (err). */
int dec_feedback_add(const char *path, const struct dec_fb_new *n, size_t *entries, char *err,
		    size_t errlen);

/* Remove every entry of that kind whose target is exactly `target` (same
 * address and prefix length). *removed gets how many; with none the file
 * is not rewritten. Returns 0 or -1 (err). */
int dec_feedback_del(const char *path, const struct kl_addr *target, uint8_t kind,
		    size_t *removed, size_t *entries, char *err, size_t errlen);

/* The effective whitelist at `now`: the whitelist file's entries and the
 * feedback file's unexpired whitelist entries, as a JSON object
 * {entries: [{target, origin: "file"|"feedback", file, expires_in_ms,
 * until, notes}], total, truncated}, at most `limit` entries. */
struct json_t *dec_whitelist_json(const struct dec_decider *d, int64_t now, size_t limit);

/* The answer to one control request. */
struct dec_ctl_answer {
	int status;          /* enum kl_status */
	char text[512];
	char *json;          /* malloc'd JSON document or NULL */
};
void dec_ctl_answer_free(struct dec_ctl_answer *a);

/* Run one decoded control request from uid at time now (tick clock). */
void dec_control(struct dec_decider *d, const struct kl_ctl_req *r, uid_t uid,
			int64_t now, struct dec_ctl_answer *out);

#endif
