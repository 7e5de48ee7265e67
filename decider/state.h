/* SPDX-License-Identifier: MPL-2.0 */
/*
 * state.json (--state-file): what autotune learned, kept across restarts.
 *
 * Content (keys sorted, 2-space indent):
 *   version        1
 *   saved_at       Unix seconds (ms precision) when written; --max-state-age
 *                  is measured from here, not from the file's mtime
 *   profile        profile name the triggers were learned under
 *   floors         {pps, syn, scan, bps} the floors in force
 *   active.trig    {pps, syn, scan, bps} the tuned triggers (0 = off)
 *   bootstrap      {enabled, start (Unix s), phase ("1".."3" | "steady"),
 *                   observed_s (clean observed time), next_tune_s (observed),
 *                   seed_trig {pps, syn, scan, bps}: the configured triggers
 *                   this bootstrap started from}
 *   learn          {clean_ticks, dirty_block, dirty_sev_frac, dirty_drops,
 *                   samples_seen}
 *   history        the last --state-history tune results, oldest first:
 *                  {t, observed_s, phase, k, samples, pps|syn|scan|bps:
 *                   {median, mad, target, from, to}}
 *   reservoir      {n, cap, weight, rng (16 hex digits), pps|syn|scan|bps:
 *                   base64 of n little-endian IEEE-754 float32}
 *   integrity      {sha256}
 *
 * integrity.sha256 is the lowercase hex SHA-256 of the canonical
 * serialisation of the document without its "integrity" member: jansson
 * json_dumps() with JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII |
 * JSON_REAL_PRECISION(17) (no whitespace, keys sorted by byte value,
 * strings ASCII with \uXXXX escapes, integers in decimal, reals as C's
 * "%.17g" with ".0" appended when that has neither '.' nor 'e'). So the
 * hash covers every value, not the layout: re-indenting the file keeps it
 * valid, changing any value (or adding or removing a key) does not.
 *
 * Writing: FILE.tmp (0600) is written and fsynced, the current FILE is
 * kept as FILE.bak (hard link, renamed into place), FILE.tmp is renamed to
 * FILE and the directory is fsynced. A crash at any point leaves FILE or
 * FILE.bak whole.
 */
#ifndef KL_DECIDER_STATE_H
#define KL_DECIDER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "decider/autotune.h"

#define DEC_STATE_VERSION 1
#define DEC_STATE_MAX_FILE (64u << 20)
#define DEC_STATE_PROFILE_MAX 64

struct dec_state {
	int version;
	int64_t saved_ms;
	char profile[DEC_STATE_PROFILE_MAX];
	double floor[AT_NF];
	double trig[AT_NF];
	double seed[AT_NF];
	bool bootstrap;
	int64_t start_ms;
	int64_t observed_ms;
	int64_t next_point_ms;   /* informational; recomputed from observed */
	int phase;               /* informational; recomputed from observed */
	uint64_t ticks[AT_NCLEAN];
	uint64_t seen;
	/* history, oldest first */
	struct at_result *hist;
	size_t nhist;
	/* reservoir */
	uint32_t res_n, res_cap;
	double res_w;
	uint64_t rng;
	float *res[AT_NF];
	bool owned;              /* hist/res allocated by state_load */
};

void dec_state_free(struct dec_state *st);

/* Serialise (without integrity) / parse. Exposed for tests and klctl. */
json_t *state_to_json(const struct dec_state *st); /* NULL on no memory */
/* Parse and check a document (integrity already verified or not wanted).
 * err names the field at fault. */
int state_from_json(const json_t *json, struct dec_state *st, char *err, size_t len);
/* Canonical text of json without "integrity" and its SHA-256 in hex
 * (65 bytes). Returns 0 or -1. */
int state_digest(const json_t *json, char hex[65]);

/* Write st to path atomically (see above). err names the step that
 * failed. */
int state_save(const char *path, const struct dec_state *st, char *err, size_t len);
/* Convenience: autotune_export + state_save. */
int state_save_autotune(const char *path, const struct autotune *at, const char *profile,
			int64_t now_ms, char *err, size_t len);

/* Load one file: parse, verify the integrity hash, check the age against
 * max_age_ms (0: any age). 0 with *st filled (free it), or -1 with the
 * reason in err ("absent" when it does not exist: *absent = true). */
int state_load_file(const char *path, int64_t now_ms, int64_t max_age_ms, struct dec_state *st,
		    bool *absent, char *err, size_t len);

/* The same over the file's content (buf, n bytes): the parser that
 * state_load_file runs, for tests and fuzzing. */
int state_load_text(const char *buf, size_t n, int64_t now_ms, int64_t max_age_ms,
		    struct dec_state *st, char *err, size_t len);

struct state_load_report {
	char why_main[256];   /* why FILE was not used ("" if it was) */
	char why_bak[256];    /* why FILE.bak was not used ("" if it was or not tried) */
};
/* FILE, then FILE.bak if FILE is rejected or absent. 0 loaded from FILE,
 * 1 from FILE.bak, -1 neither (fresh start; reasons in rep). Logs each
 * rejection at warn level ("state.json: rejected: <reason>; trying
 * state.json.bak"). */
int state_load(const char *path, int64_t now_ms, int64_t max_age_ms, struct dec_state *st,
	       struct state_load_report *rep);

/* Does a loaded state have to restart the bootstrap under this profile,
 * these floors and (unless seed is NULL) these configured triggers (the
 * values resolved without the state: flag, PDPConfig, profile)? true with
 * the reason ("profile ziti-router -> generic", "floor pps 100.0 -> 150.0",
 * "configured trig_pps 1200.0 -> 1500.0") in why. */
bool state_restart_reason(const struct dec_state *st, const char *profile,
			  const double floor[AT_NF], const double seed[AT_NF], char *why,
			  size_t len);

/* `klctl tune --json` document for at (caller decrefs). */
json_t *autotune_status_json(const struct autotune *at, int64_t now_ms);

#endif
