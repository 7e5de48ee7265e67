/* SPDX-License-Identifier: MPL-2.0 */
/*
 * state.json: the loader kl-decider runs on the file's content
 * (state_load_file reads the file and calls state_load_text), and what the
 * decider does with a loaded state: the restart check, autotune_restore
 * into a fresh autotune, a tune step on the restored reservoir, and the
 * export that the next checkpoint writes, which must load again.
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

#include <jansson.h>

#include "decider/autotune.h"
#include "decider/state.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#include "tests/state_integrity.h"

#define NOW_MS 1780000000000LL /* 2026-05-28 */

static void use_state(const struct dec_state *st)
{
	struct at_config ac;
	struct at_triggers start = { { 5000, 1000, 50, 0 } };
	char why[256], log[512];

	at_config_defaults(&ac);
	ac.min_samples = 1; /* let the tune step work on what was restored */
	bool restart = state_restart_reason(st, "generic", ac.floor, start.v, why, sizeof(why));
	CHECK(!restart || why[0] != '\0');
	struct autotune *at = autotune_new(&ac, &start, NOW_MS, why, sizeof(why));
	CHECK(at != NULL);
	autotune_restore(at, st, restart);
	autotune_force(at);
	struct at_triggers io = start;
	autotune_maybe_tune(at, NOW_MS + 1000, &io, log, sizeof(log));

	/* What the next checkpoint writes loads again. */
	struct dec_state out, back;
	autotune_export(at, "generic", NOW_MS + 1000, &out);
	json_t *j = state_to_json(&out);
	CHECK(j != NULL);
	if (state_from_json(j, &back, why, sizeof(why)) != 0) {
		fprintf(stderr, "export does not load: %s\n", why);
		__builtin_trap();
	}
	dec_state_free(&back);
	json_decref(j);
	autotune_free(at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len;
	char *text = fuzz_file_text(data, size, &len);
	if (text == NULL)
		return 0;
	struct dec_state st;
	char err[256] = "";
	if (state_load_text(text, len, NOW_MS, 0, &st, err, sizeof(err)) == 0) {
		use_state(&st);
		dec_state_free(&st);
	} else {
		CHECK(err[0] != '\0');
		/* The hash we computed is the one the loader computes. */
		CHECK(!(data[0] & 1) || strstr(err, "integrity") == NULL);
	}
	free(text);
	return 0;
}
