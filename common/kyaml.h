/* SPDX-License-Identifier: MPL-2.0 */
/*
 * YAML files into knob layers (common/knob.h), for every daemon.
 *
 * Strict: every key must be one the knob table knows (or the fixed
 * envelope of a PDPConfig/PolicyPack: apiVersion, kind, metadata, spec);
 * unknown keys, duplicate keys, wrong types, out-of-range values,
 * anchors/aliases and multi-document files are errors naming the file,
 * line and key. All errors of a file are reported, not just the first.
 *
 * Two shapes:
 *  - a daemon's own file (sensor.yaml, graphd.yaml): a mapping whose key
 *    paths are the knobs' `key` column;
 *  - a PDPConfig / PolicyPack document: the envelope, and under spec. the
 *    knobs' `pdp` / `pol` columns. A reader that owns only part of spec
 *    (kl-graphd: spec.graph) passes that prefix: keys elsewhere belong to
 *    another daemon and are left to it.
 */
#ifndef KL_COMMON_KYAML_H
#define KL_COMMON_KYAML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/knob.h"

#define KL_API_VERSION "kernloom.io/v1alpha1"
#define KL_YAML_MAX_FILE (4u << 20)

enum kl_ykind { KL_Y_SCALAR, KL_Y_MAP, KL_Y_SEQ };

/* A small node tree with line numbers. */
struct kl_ynode {
	enum kl_ykind kind;
	int line;
	char *s;                  /* scalar text */
	struct kl_ynode **kid;    /* map: key, value, key, value...; seq: items */
	size_t n, cap;
};

/* Build the tree (bounded in depth, nodes and size). NULL on error, with
 * the message added. */
struct kl_ynode *kl_ytree(const char *text, size_t len, const char *name, struct kl_errs *errs);
void kl_ynode_free(struct kl_ynode *n);
const struct kl_ynode *kl_yget(const struct kl_ynode *map, const char *key);
/* Is key among the keys before index upto of map? */
bool kl_ydup_key(const struct kl_ynode *map, size_t upto, const char *key);

enum kl_doc_kind { KL_DOC_PDP, KL_DOC_POLICY };

/* Top-level keys of a document besides the envelope (a PolicyPack's
 * signature): return true when handled. */
typedef bool (*kl_yextra_fn)(void *ctx, const char *key, const struct kl_ynode *v,
			     const char *name, struct kl_errs *errs);

/* Check the envelope of a PDPConfig/PolicyPack tree and walk its spec
 * into L (path column by kind). owned: NULL (all of spec), or the spec
 * prefixes this reader checks, NULL-terminated ("graph.promotion", ...).
 * meta_name: metadata.name (malloc'd) or NULL. Returns 0 or -1 with
 * errors added. */
int kl_yaml_doc(const struct kl_ynode *root, const char *name, enum kl_doc_kind kind,
		const char *const *owned, struct kl_layer *L, kl_yextra_fn extra, void *ctx,
		char **meta_name, struct kl_errs *errs);
/* Read a PDPConfig file and walk it as above (no PolicyPack extras).
 * missing: as kl_yaml_read. */
int kl_yaml_pdp_file(const char *path, const char *const *owned, struct kl_layer *L,
		     bool *missing, struct kl_errs *errs);

/* A daemon's own file. */
int kl_yaml_own_text(const char *text, size_t len, const char *name, struct kl_layer *L,
		     struct kl_errs *errs);
int kl_yaml_own_file(const char *path, struct kl_layer *L, bool *missing, struct kl_errs *errs);
/* The file a path knob names (--config, --pdp-config) as layer L of kind
 * KL_L_FILE (a daemon's own file) or KL_L_PDP (owned: as kl_yaml_doc):
 * the flag's value, or def when the flag is not given; "" reads none. A
 * missing default file is no error, a missing named one is. safe: extra
 * common/safefile.h checks (KL_SAFE_OWNED for a privileged reader). L is
 * zeroed when no file is named (L->ks == NULL); else free it. Returns 0 or
 * -1 with errors added. */
int kl_yaml_layer(const struct kl_layer *flags, const char *knob, const char *def,
		  enum kl_layer_kind kind, const char *const *owned, unsigned safe,
		  struct kl_layer *L, struct kl_errs *errs);

#endif
