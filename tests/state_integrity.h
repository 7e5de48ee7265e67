/* SPDX-License-Identifier: MPL-2.0 */
/*
 * For the fuzz targets of files that carry an integrity hash (state.json,
 * baselines.json): the input with its right hash put in, so that the
 * parser behind the hash check is what gets fuzzed. Needs CHECK().
 */
#ifndef KL_TESTS_STATE_INTEGRITY_H
#define KL_TESTS_STATE_INTEGRITY_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decider/state.h"

/* NULL if the input is no JSON object. */
static char *with_integrity(const uint8_t *p, size_t len, size_t *out_len)
{
	json_error_t je;
	char hex[65];
	json_t *d = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &je);

	if (d == NULL)
		return NULL;
	if (!json_is_object(d) || state_digest(d, hex) < 0) {
		json_decref(d);
		return NULL;
	}
	CHECK(json_object_set_new(d, "integrity", json_pack("{s:s}", "sha256", hex)) == 0);
	char *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(d);
	CHECK(text != NULL);
	*out_len = strlen(text);
	return text;
}

/* The fuzz input as file text: its first byte chooses between the rest
 * as it is and the rest with the right hash (NULL then if it is no JSON
 * object). size >= 1. */
static char *fuzz_file_text(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t len = size - 1;
	char *text;
	if (data[0] & 1)
		return with_integrity(data + 1, len, out_len);
	CHECK((text = malloc(len ? len : 1)) != NULL);
	memcpy(text, data + 1, len);
	*out_len = len;
	return text;
}

#endif
