/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's YAML documents (--pdp-config, --policy): the loader
 * kl-decider runs on the file's text (dec_yaml_load_file reads the file and
 * calls dec_yaml_load_text). Beyond "does not crash or leak": a rejected
 * document says why; an accepted one resolves into a configuration the
 * same way the daemon would (flag layer empty, the document's layer on
 * the profile) and prints as -n prints it; a PolicyPack carries its
 * canonical text (what a signature covers), and a signature on it is
 * checked against a fixed key.
 *
 * Input: byte 0 selects the kind (even: PDPConfig, odd: PolicyPack), the
 * rest is the document.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/knobs.h"
#include "decider/yamlcfg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	static const unsigned char pk[32] = { 1 };

	if (size < 1)
		return 0;
	if (null == NULL)
		CHECK((null = fopen("/dev/null", "w")) != NULL);
	bool policy = data[0] & 1;
	/* A private copy: the loader must not read past len. */
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	CHECK(text != NULL);
	memcpy(text, data + 1, len);

	struct kl_layer L;
	struct dec_doc_info info;
	struct kl_errs e = { 0 };
	kl_layer_init(&L, &dec_knobset, policy ? KL_L_POLICY : KL_L_PDP, "fuzz.yaml");
	int rc = dec_yaml_load_text(text, len, "fuzz.yaml", policy ? KL_DOC_POLICY : KL_DOC_PDP, &L,
				   &info, &e);
	if (rc < 0) {
		CHECK(e.n > 0);
	} else {
		CHECK(e.n == 0);
		if (policy) {
			CHECK(info.canonical != NULL || info.canonical_len == 0);
			char why[256] = "";
			/* Random bytes are no signature by pk. */
			CHECK(dec_policy_verify(&info, pk, why, sizeof(why)) < 0 && why[0] != '\0');
		}
		struct dec_config c;
		struct kl_errs re = { 0 };
		if (dec_config_resolve(&c, NULL, policy ? NULL : &L, policy ? &L : NULL, NULL, &re) ==
		    0) {
			dec_config_print(&c, null);
			dec_config_free(&c);
		} else {
			CHECK(re.n > 0);
			dec_config_free(&c); /* a refused resolve still owns its strings */
		}
		kl_errs_free(&re);
	}
	kl_errs_free(&e);
	dec_doc_info_free(&info);
	kl_layer_free(&L);
	free(text);
	return 0;
}
