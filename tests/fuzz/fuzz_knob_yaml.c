/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A daemon's own YAML file (sensor.yaml, graphd.yaml): the loader every
 * knob table shares (common/kyaml.c). Beyond "does not crash or leak": a
 * rejected file names at least one error; an accepted one resolves, and
 * its effective values written back as that file (every value as -n
 * prints it) load again to the same values (the -n report reads back as
 * the same configuration, null words and all).
 *
 * Input: one byte choosing the table (even: kl-sensor, odd: kl-graphd),
 * then the file's text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kyaml.h"
#include "graphd/opts.h"
#include "sensor/sensor.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* The resolved values as the file's YAML; CIDR lists as flow sequences. */
static char *as_file(const struct kl_knobset *ks, const void *v, size_t *len)
{
	char *out = NULL;
	FILE *m = open_memstream(&out, len);
	CHECK(m != NULL);
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		static char val[1 << 16];
		if (k->key == NULL)
			continue;
		kl_value_format(ks, v, (int)i, val, sizeof(val));
		if (k->type == KT_CIDRS)
			fprintf(m, "%s: [%s]\n", k->key, strcmp(val, "\"\"") == 0 ? "" : val);
		else
			fprintf(m, "%s: %s\n", k->key, val);
	}
	CHECK(fclose(m) == 0);
	return out;
}

static int load(const struct kl_knobset *ks, const char *text, size_t len, void *out,
		struct kl_resolved *r)
{
	struct kl_layer L;
	struct kl_errs e = { 0 };

	CHECK(kl_layer_init(&L, ks, KL_L_FILE, "fuzz.yaml") == 0);
	int rc = kl_yaml_own_text(text, len, "fuzz.yaml", &L, &e);
	CHECK((rc < 0) == (e.n > 0));
	if (rc == 0) {
		const struct kl_layer *order[] = { &L };
		memset(r, 0, sizeof(*r));
		r->ks = ks;
		r->v = out;
		rc = kl_resolve(r, order, 1, &e);
		CHECK(rc == 0);
	}
	kl_errs_free(&e);
	kl_layer_free(&L);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct kl_knobset *ks = data[0] & 1 ? &gr_knobs : &sen_knobs;
	void *a = calloc(1, ks->size), *b = calloc(1, ks->size);
	struct kl_resolved ra, rb;
	CHECK(a != NULL && b != NULL);

	if (load(ks, (const char *)data + 1, size - 1, a, &ra) == 0) {
		size_t len = 0, len2 = 0;
		char *text = as_file(ks, a, &len);
		CHECK(load(ks, text, len, b, &rb) == 0);
		char *again = as_file(ks, b, &len2);
		CHECK(len == len2 && memcmp(text, again, len) == 0);
		free(text);
		free(again);
		kl_resolved_free(&rb);
		kl_resolved_free(&ra);
	}
	free(a);
	free(b);
	return 0;
}
