/* SPDX-License-Identifier: MPL-2.0 */
/*
 * enforcer.yaml: what kl-enforcer runs on its file's text (the shared
 * loader, common/kyaml.c, over kl-enforcer's knob table, then the checks
 * across settings). Beyond "does not crash or leak": a refused file names
 * at least one error and leaves nothing allocated; an accepted one,
 * written back as enforcer.yaml with every value as -n prints it (lists
 * as flow sequences, map_sizes nested), is accepted again with the same
 * values (the -n report reads back as the same configuration).
 *
 * Input: the file's text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enforcer/config.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static char *as_file(const struct enf_opts *o, size_t *len)
{
	const struct kl_knobset *ks = &enf_knobs;
	char *out = NULL;
	char group[64] = "";
	FILE *m = open_memstream(&out, len);
	CHECK(m != NULL);
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		static char val[1 << 16];
		if (k->key == NULL)
			continue;
		kl_value_format(ks, &o->c, (int)i, val, sizeof(val));
		const char *dot = strchr(k->key, '.');
		const char *key = k->key;
		if (dot != NULL) {
			/* nested keys (map_sizes.src): one mapping per prefix */
			size_t n = (size_t)(dot - k->key);
			CHECK(n < sizeof(group));
			if (strncmp(group, k->key, n) != 0 || group[n] != '\0') {
				memcpy(group, k->key, n);
				group[n] = '\0';
				fprintf(m, "%s:\n", group);
			}
			key = dot + 1;
		}
		if (k->type == KT_CIDRS || k->type == KT_STRS)
			fprintf(m, "%s%s: [%s]\n", dot ? "  " : "", key,
				strcmp(val, "\"\"") == 0 ? "" : val);
		else
			fprintf(m, "%s%s: %s\n", dot ? "  " : "", key, val);
	}
	CHECK(fclose(m) == 0);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enf_opts a, b;
	struct kl_errs e = { 0 };

	int rc = enf_config_from_text(&a, (const char *)data, size, "fuzz.yaml", &e);
	CHECK((rc < 0) == (e.n > 0));
	for (size_t i = 0; i < e.n; i++)
		CHECK(e.v[i][0] != '\0');
	kl_errs_free(&e);
	if (rc < 0) {
		CHECK(a.c.pin_dir == NULL && a.c.ifaces.v == NULL && a.c.protect.v == NULL);
		return 0;
	}
	size_t len = 0, len2 = 0;
	char *text = as_file(&a, &len);
	if (enf_config_from_text(&b, text, len, "n.yaml", &e) < 0) {
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "%s\n", e.v[i]);
		fprintf(stderr, "--- written back:\n%s", text);
		CHECK(0);
	}
	char *again = as_file(&b, &len2);
	CHECK(len == len2 && memcmp(text, again, len) == 0);
	free(text);
	free(again);
	enf_opts_free(&b);
	enf_opts_free(&a);
	return 0;
}
