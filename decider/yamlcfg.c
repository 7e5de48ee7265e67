/* SPDX-License-Identifier: MPL-2.0 */
/*
 * PDPConfig and PolicyPack documents: the tree and the envelope are
 * common/kyaml.c's; here the PolicyPack's signature and canonical text.
 */
#include "decider/yamlcfg.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/exempt.h"

/* ---- canonical text ----
 *
 * One line per leaf: the path, '=', the value. The text must be injective
 * (two different documents never give the same text), or a signature made
 * for one pack verifies another. The argument, piece by piece:
 *  - lines end in '\n' and no component holds a raw '\n', so the text gives
 *    back the (sorted) multiset of lines;
 *  - a path is key ('.' key | '[' N ']')*, and a key escapes '\\', '\n',
 *    '.', '[' and '=', so the line splits back into its components and its
 *    value at the first unescaped '=';
 *  - a value escapes '\\' and '\n', and a leading '{' or '[' of a scalar,
 *    so the markers "{}" and "[]" of empty containers are not scalars;
 *  - every leaf, empty containers included, has a line, and keys are
 *    unique within a mapping (checked here, whatever the caller checks),
 *    so the set of leaf paths gives back the tree.
 * Plain keys and values without those bytes are written as they are, so
 * the text stays readable for the people who sign it.
 */

struct lines {
	char **v;
	size_t n, cap;
};

/* Append s to f, escaping '\\' and '\n', every byte of `special`, and a
 * first byte in `lead`. */
static void put_escaped(FILE *f, const char *s, const char *special, const char *lead)
{
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		if (c == '\n') {
			fputs("\\n", f);
			continue;
		}
		if (c == '\\' || strchr(special, c) != NULL || (i == 0 && strchr(lead, c) != NULL))
			fputc('\\', f);
		fputc(c, f);
	}
}

/* `val` NULL with marker set: an empty container. */
static int lines_add(struct lines *l, const char *path, const char *val, const char *marker)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		char **nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (f == NULL)
		return -1;
	fputs(path, f);
	fputc('=', f);
	if (val != NULL)
		put_escaped(f, val, "", "{[");
	else
		fputs(marker, f);
	fputc('\n', f);
	if (fclose(f) != 0) {
		free(line);
		return -1;
	}
	l->v[l->n++] = line;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp((*(const struct kl_ynode *const *)a)->s, (*(const struct kl_ynode *const *)b)->s);
}

/* Keys of a mapping are scalars and unique: otherwise two trees could
 * share their leaf paths ({a: {x: 1}, a: {y: 2}} and {a: {x: 1, y: 2}}). */
static int keys_ok(const struct kl_ynode *map)
{
	size_t nk = map->n / 2;
	const struct kl_ynode **k = malloc((nk ? nk : 1) * sizeof(*k));
	int rc = 0;

	if (k == NULL)
		return -1;
	for (size_t i = 0; i < nk; i++) {
		k[i] = map->kid[2 * i];
		if (k[i]->kind != KL_Y_SCALAR)
			rc = -1;
	}
	if (rc == 0) {
		qsort(k, nk, sizeof(*k), cmp_key);
		for (size_t i = 1; i < nk && rc == 0; i++)
			if (strcmp(k[i - 1]->s, k[i]->s) == 0)
				rc = -1;
	}
	free(k);
	return rc;
}

/* root: n is the document; its keys start paths without a '.', and its
 * signature block is not covered. */
static int canon_walk(const struct kl_ynode *n, const char *path, bool root, struct lines *l)
{
	if (n->kind == KL_Y_SCALAR)
		return lines_add(l, path, n->s, NULL);
	if (n->n == 0) /* an empty document is the empty text, no "={}" line */
		return root ? 0 : lines_add(l, path, NULL, n->kind == KL_Y_MAP ? "{}" : "[]");
	if (n->kind == KL_Y_MAP && keys_ok(n) < 0)
		return -1;
	for (size_t i = 0; i < n->n; i += n->kind == KL_Y_MAP ? 2 : 1) {
		const struct kl_ynode *kid = n->kid[i];
		char *sub = NULL;
		size_t sl = 0;
		FILE *f;
		if (n->kind == KL_Y_MAP) {
			if (root && strcmp(kid->s, "signature") == 0)
				continue;
			kid = n->kid[i + 1];
		}
		f = open_memstream(&sub, &sl);
		if (f == NULL)
			return -1;
		fputs(path, f);
		if (n->kind == KL_Y_SEQ) {
			fprintf(f, "[%zu]", i);
		} else {
			if (!root)
				fputc('.', f);
			put_escaped(f, n->kid[i]->s, ".[=", "");
		}
		int rc = fclose(f) != 0 ? -1 : canon_walk(kid, sub, false, l);
		free(sub);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The canonical text of a document whose root is a mapping; -1 when it has
 * none (a non-scalar or duplicate key, or out of memory). */
static int canonical(const struct kl_ynode *root, char **out, size_t *outlen)
{
	struct lines l = { 0 };
	size_t total = 0;
	int rc = -1;

	if (root->kind != KL_Y_MAP || canon_walk(root, "", true, &l) < 0)
		goto done;
	if (l.n > 1) /* an empty document has no lines (and l.v is NULL) */
		qsort(l.v, l.n, sizeof(*l.v), cmp_str);
	for (size_t i = 0; i < l.n; i++)
		total += strlen(l.v[i]);
	*out = malloc(total + 1);
	if (*out == NULL)
		goto done;
	size_t o = 0;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.v[i]);
		memcpy(*out + o, l.v[i], n);
		o += n;
	}
	(*out)[o] = '\0';
	*outlen = o;
	rc = 0;
done:
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

/* ---- envelope ---- */

static void load_signature(const struct kl_ynode *sig, const char *name, struct dec_doc_info *info,
			   struct kl_errs *errs)
{
	if (sig->kind != KL_Y_MAP) {
		kl_errs_add(errs, "%s:%d: signature: expected a mapping {alg, key_id, value}", name,
			    sig->line);
		return;
	}
	for (size_t i = 0; i + 1 < sig->n; i += 2) {
		const struct kl_ynode *k = sig->kid[i], *v = sig->kid[i + 1];
		if (k->kind != KL_Y_SCALAR || v->kind != KL_Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: signature: keys and values must be scalars", name,
				    k->line);
			continue;
		}
		if (kl_ydup_key(sig, i, k->s)) {
			kl_errs_add(errs, "%s:%d: duplicate key 'signature.%s'", name, k->line, k->s);
		} else if (strcmp(k->s, "alg") == 0) {
			if (strcmp(v->s, "ed25519") != 0)
				kl_errs_add(errs, "%s:%d: signature.alg: only ed25519 is supported",
					    name, v->line);
		} else if (strcmp(k->s, "key_id") == 0) {
			free(info->key_id);
			info->key_id = strdup(v->s);
		} else if (strcmp(k->s, "value") == 0) {
			size_t bl = 0;
			if (sodium_base642bin(info->sig, sizeof(info->sig), v->s, strlen(v->s),
					      " \n\t", &bl, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    bl != sizeof(info->sig))
				kl_errs_add(errs, "%s:%d: signature.value: expected 64 bytes of base64",
					    name, v->line);
			else
				info->has_signature = true;
		} else {
			kl_errs_add(errs, "%s:%d: signature.%s: unknown key (valid: alg, key_id, value)",
				    name, k->line, k->s);
		}
	}
	if (kl_yget(sig, "value") == NULL)
		kl_errs_add(errs, "%s:%d: signature.value is missing", name, sig->line);
}

static bool policy_extra(void *ctx, const char *key, const struct kl_ynode *v, const char *name,
			 struct kl_errs *errs)
{
	if (strcmp(key, "signature") != 0)
		return false;
	load_signature(v, name, ctx, errs);
	return true;
}

int dec_yaml_load_text(const char *text, size_t len, const char *name, enum kl_doc_kind kind,
		      struct kl_layer *L, struct dec_doc_info *info, struct kl_errs *errs)
{
	size_t before = errs->n;
	struct kl_ynode *root = kl_ytree(text, len, name, errs);

	memset(info, 0, sizeof(*info));
	if (root == NULL)
		return -1;
	kl_yaml_doc(root, name, kind, NULL, L, kind == KL_DOC_POLICY ? policy_extra : NULL, info,
		    &info->name, errs);
	if (kind == KL_DOC_POLICY && root->kind == KL_Y_MAP &&
	    canonical(root, &info->canonical, &info->canonical_len) < 0 && errs->n == before)
		kl_errs_add(errs, "%s: cannot build the canonical text (a duplicate or non-scalar key, or out of memory)",
			    name);
	kl_ynode_free(root);
	return errs->n > before ? -1 : 0;
}

int dec_yaml_load_file(const char *path, enum kl_doc_kind kind, struct kl_layer *L,
		      struct dec_doc_info *info, struct kl_errs *errs)
{
	char *buf;
	size_t len;
	char err[512];
	int rc;

	memset(info, 0, sizeof(*info));
	if (dec_read_file(path, KL_YAML_MAX_FILE, &buf, &len, err, sizeof(err)) < 0) {
		kl_errs_add(errs, "cannot read the %s: %s",
			    kind == KL_DOC_PDP ? "PDPConfig" : "PolicyPack", err);
		return -1;
	}
	rc = dec_yaml_load_text(buf, len, path, kind, L, info, errs);
	free(buf);
	return rc;
}

void dec_doc_info_free(struct dec_doc_info *info)
{
	free(info->name);
	free(info->key_id);
	free(info->canonical);
	memset(info, 0, sizeof(*info));
}

int dec_pubkey_load(const char *path, unsigned char pk[32], char *err, size_t errlen)
{
	char *buf;
	size_t len, bl = 0;

	if (dec_read_file(path, 4096, &buf, &len, err, errlen) < 0)
		return -1;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		buf[--len] = '\0';
	char *s = buf;
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	int rc = -1;
	if (strlen(s) == 64 &&
	    sodium_hex2bin(pk, 32, s, 64, NULL, &bl, NULL) == 0 && bl == 32)
		rc = 0;
	else if (sodium_base642bin(pk, 32, s, strlen(s), NULL, &bl, NULL,
				   sodium_base64_VARIANT_ORIGINAL) == 0 && bl == 32)
		rc = 0;
	if (rc < 0)
		snprintf(err, errlen, "%s: expected a 32-byte Ed25519 public key in base64 or hex",
			 path);
	free(buf);
	return rc;
}

int dec_policy_verify(const struct dec_doc_info *info, const unsigned char pk[32], char *err,
		     size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if (!info->has_signature) {
		snprintf(err, errlen, "the pack is not signed (no signature.value)");
		return -1;
	}
	if (info->canonical == NULL ||
	    crypto_sign_verify_detached(info->sig, (const unsigned char *)info->canonical,
					info->canonical_len, pk) != 0) {
		snprintf(err, errlen, "the signature does not verify with the configured public key");
		return -1;
	}
	return 0;
}
