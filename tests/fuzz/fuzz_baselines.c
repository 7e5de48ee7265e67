/* SPDX-License-Identifier: MPL-2.0 */
/*
 * baselines.json, the decider's per-source baselines beside state.json:
 * dec_bl_load on the file (and its .bak rule), then what the decider does
 * with a loaded table: save it again, and that file loads back to the
 * same table (same count, the same rows when saved once more). A refused
 * file names why and leaves the table empty.
 *
 * Input: byte 0 selects the mode, the rest is the file.
 *   even  the bytes as they are (mostly stopped by the integrity hash)
 *   odd   the bytes parsed as JSON and given a correct integrity.sha256
 *         first, so the content checks behind the hash are reached
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "decider/baseline.h"
#include "decider/state.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#include "tests/state_integrity.h"

#define NOW_MS 1780000000000LL /* 2026-05-28 */

static char dir[64];

/* The files live in a directory of this process's own; nothing is left. */
static void cleanup(void)
{
	static const char *const names[] = { "in.json", "in.json.bak", "out.json", "out.json.bak",
					     "out.json.tmp" };
	char path[96];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static struct dec_bl_params params(void)
{
	struct dec_bl_params bp;

	memset(&bp, 0, sizeof(bp));
	bp.enabled = true;
	bp.min_pps = 3;
	bp.relevant = 0.5;
	bp.promote_after = 30;
	bp.stable_after = 300;
	bp.alpha_young = 0.10;
	bp.alpha_stable = 0.02;
	bp.tolerance = 1.2;
	bp.min_confidence = 0.5;
	bp.halflife_ms = 86400000;
	bp.hold_ms = 10000;
	bp.ttl_ms = 7 * 86400000LL;
	bp.max_sources = 64; /* small, so "table full" is reached too */
	return bp;
}

static void put_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	CHECK(len == 0 || fwrite(text, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static int by_text(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The saved file's rows as one text, in sorted order: a table's row order
 * follows its hash layout, which differs between two loads. */
static char *rows_of(const char *path)
{
	json_error_t je;
	json_t *d = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	CHECK(d != NULL);
	json_t *rows = json_object_get(d, "sources");
	CHECK(json_is_array(rows));
	size_t n = json_array_size(rows), total = 1;
	char **t = calloc(n ? n : 1, sizeof(*t));
	CHECK(t != NULL);
	for (size_t i = 0; i < n; i++) {
		t[i] = json_dumps(json_array_get(rows, i), JSON_COMPACT | JSON_ENCODE_ANY |
							   JSON_REAL_PRECISION(17));
		CHECK(t[i] != NULL);
		total += strlen(t[i]) + 1;
	}
	qsort(t, n, sizeof(*t), by_text);
	char *out = malloc(total);
	CHECK(out != NULL);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(out, t[i]);
		strcat(out, "\n");
		free(t[i]);
	}
	free(t);
	json_decref(d);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-baselines-XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
		atexit(cleanup);
	}
	char in[96], out[96], bak[100], why[1400] = "";
	snprintf(in, sizeof(in), "%s/in.json", dir);
	snprintf(out, sizeof(out), "%s/out.json", dir);
	snprintf(bak, sizeof(bak), "%s.bak", out);
	size_t len;
	char *text = fuzz_file_text(data, size, &len);
	if (text == NULL)
		return 0;
	put_file(in, text, len);
	free(text);

	struct dec_bl_params bp = params();
	struct dec_baselines *a = dec_bl_new(&bp, 1), *b = dec_bl_new(&bp, 1);
	CHECK(a != NULL && b != NULL);
	if (dec_bl_load(a, in, NOW_MS, 0, why, sizeof(why)) < 0) {
		CHECK(why[0] != '\0');
		CHECK(dec_bl_count(a) == 0);
		/* The hash we computed is the one the loader computes. */
		CHECK(!(data[0] & 1) || strstr(why, "integrity hash mismatch") == NULL);
	} else {
		char err[256];
		unlink(out);
		unlink(bak);
		CHECK(dec_bl_save(a, out, NOW_MS, err, sizeof(err)) == 0);
		char *first = rows_of(out);
		if (dec_bl_load(b, out, NOW_MS, 0, why, sizeof(why)) != 0) {
			fprintf(stderr, "a saved table does not load: %s\n", why);
			__builtin_trap();
		}
		CHECK(dec_bl_count(b) == dec_bl_count(a));
		unlink(bak);
		CHECK(dec_bl_save(b, out, NOW_MS, err, sizeof(err)) == 0);
		char *second = rows_of(out);
		CHECK(strcmp(first, second) == 0);
		free(first);
		free(second);
	}
	dec_bl_free(a);
	dec_bl_free(b);
	return 0;
}
