/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's control commands (klctl sources, klctl forgive), as plain
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

#define KL_SOURCES_DEFAULT 50
#define KL_FORGIVE_DEFAULT_TTL_MS (3600 * 1000)

/* The decider's view of its sources: a JSON array of
 * {ip, level, strikes, severity, pps, syn, scan, droprl, in_level_s,
 *  ttl_left_s}, most severe level first, then by severity, then address;
 * at most `limit` entries. in_level_s is null for a source that has been
 * in OBSERVE since it was first seen; ttl_left_s is null in OBSERVE. */
struct json_t *kl_sources_json(const struct kl_engine *e, int64_t now, size_t limit);

/* Append {target, action: forgive, ttl, notes} to the feedback file
 * atomically (PATH.tmp, fsync, rename, fsync of the directory), keeping
 * its other entries; an earlier entry for the same target, action and ttl
 * is replaced (its ttl would otherwise keep counting from its own first
 * load). A missing or empty file starts a new array. The file must be a
 * JSON array that kl_feedback_parse accepts, or nothing is written.
 * *entries gets the number of entries written. Returns 0 or -1 (err). */
int kl_feedback_add_forgive(const char *path, const struct kl_addr *target, int64_t ttl_ms,
			    const char *notes, size_t *entries, char *err, size_t errlen);

/* The answer to one control request. */
struct kl_ctl_answer {
	int status;          /* enum kl_status */
	char text[512];
	char *json;          /* malloc'd JSON document or NULL */
};
void kl_ctl_answer_free(struct kl_ctl_answer *a);

/* Run one decoded control request from uid at time now (tick clock). */
void kl_decider_control(struct kl_decider *d, const struct kl_ctl_req *r, uid_t uid,
			int64_t now, struct kl_ctl_answer *out);

#endif
