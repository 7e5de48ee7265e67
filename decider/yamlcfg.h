/* SPDX-License-Identifier: MPL-2.0 */
/*
 * PDPConfig and PolicyPack YAML (profiles.md) into knob layers.
 *
 * Strict: every key must be one the knob table knows under spec. (or the
 * fixed envelope: apiVersion, kind, metadata, and for a PolicyPack its
 * signature); unknown keys, duplicate keys, wrong types, out-of-range
 * values, anchors/aliases and multi-document files are errors naming the
 * file and line. All errors of a file are reported, not just the first.
 *
 * PolicyPack signature: Ed25519 over the pack's canonical text, which is
 * every scalar of the document except the signature block, one
 * "path=value" line each, sorted bytewise (so re-indenting or reordering
 * keys does not break a signature, changing a value does); keys and values
 * are escaped so that the text is injective (see yamlcfg.c). Print it with
 * `kl-decider --policy FILE --policy-canonical` and sign with any Ed25519
 * tool; the signature goes in `signature: {alg: ed25519, value: BASE64}`.
 */
#ifndef KL_DECIDER_YAMLCFG_H
#define KL_DECIDER_YAMLCFG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/kyaml.h"
#include "decider/knobs.h"

struct dec_doc_info {
	char *name;            /* metadata.name */
	bool has_signature;
	unsigned char sig[64];
	char *key_id;
	char *canonical;       /* PolicyPack: text the signature covers */
	size_t canonical_len;
};

/* Parse a document (text of length len, named `name` in messages) into L
 * (a KL_L_PDP or KL_L_POLICY layer). Returns 0 or -1 with errors added. */
int dec_yaml_load_text(const char *text, size_t len, const char *name, enum kl_doc_kind kind,
		      struct kl_layer *L, struct dec_doc_info *info, struct kl_errs *errs);
int dec_yaml_load_file(const char *path, enum kl_doc_kind kind, struct kl_layer *L,
		      struct dec_doc_info *info, struct kl_errs *errs);
void dec_doc_info_free(struct dec_doc_info *info);

/* Public key file: 32 bytes as base64 or hex, surrounding whitespace ok. */
int dec_pubkey_load(const char *path, unsigned char pk[32], char *err, size_t errlen);
/* 0 if info carries a valid signature by pk over its canonical text. */
int dec_policy_verify(const struct dec_doc_info *info, const unsigned char pk[32], char *err,
		     size_t errlen);

#endif
