/* SPDX-License-Identifier: MPL-2.0 */
/*
 * libyaml events -> a small node tree with line numbers -> walk it against
 * the knob table. The tree is bounded (depth, nodes, file size) because a
 * config file is exactly the kind of input a mistake or an attacker makes
 * large.
 */
#include "decider/yamlcfg.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "decider/exempt.h"

#define Y_MAX_DEPTH 32
#define Y_MAX_NODES 100000
#define Y_MAX_FILE (4u << 20)

enum ykind { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
	enum ykind kind;
	int line;
	char *s;               /* scalar text */
	struct ynode **kid;    /* map: key, value, key, value...; seq: items */
	size_t n, cap;
};

static void ynode_free(struct ynode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->kid[i]);
	free(n->kid);
	free(n->s);
	free(n);
}

static int ynode_add(struct ynode *parent, struct ynode *kid)
{
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 8;
		struct ynode **nk = realloc(parent->kid, ncap * sizeof(*nk));
		if (nk == NULL)
			return -1;
		parent->kid = nk;
		parent->cap = ncap;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

/* Build the tree. Returns the root (NULL on error, message added). */
static struct ynode *ytree(const char *text, size_t len, const char *name, struct kl_errs *errs)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct ynode *stack[Y_MAX_DEPTH + 1];
	int depth = 0;
	struct ynode *root = NULL;
	size_t nodes = 0;
	int docs = 0;
	bool done = false, failed = false;

	if (!yaml_parser_initialize(&p)) {
		kl_errs_add(errs, "%s: cannot initialise the YAML parser", name);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !failed) {
		if (!yaml_parser_parse(&p, &ev)) {
			kl_errs_add(errs, "%s:%zu:%zu: YAML error: %s%s%s", name,
				    p.problem_mark.line + 1, p.problem_mark.column + 1,
				    p.problem ? p.problem : "syntax error",
				    p.context ? " " : "", p.context ? p.context : "");
			failed = true;
			break;
		}
		int line = (int)ev.start_mark.line + 1;
		struct ynode *n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				kl_errs_add(errs, "%s:%d: only one YAML document per file", name, line);
				failed = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			kl_errs_add(errs, "%s:%d: YAML aliases are not supported", name, line);
			failed = true;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT: {
			const yaml_char_t *anchor =
				ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.anchor
				: ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.anchor
								     : ev.data.sequence_start.anchor;
			if (anchor != NULL) {
				kl_errs_add(errs, "%s:%d: YAML anchors are not supported", name, line);
				failed = true;
				break;
			}
			if (++nodes > Y_MAX_NODES) {
				kl_errs_add(errs, "%s:%d: more than %d YAML nodes", name, line,
					    Y_MAX_NODES);
				failed = true;
				break;
			}
			n = calloc(1, sizeof(*n));
			if (n == NULL) {
				failed = true;
				break;
			}
			n->line = line;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->kind = Y_SCALAR;
				n->s = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
				if (n->s == NULL || strlen(n->s) != ev.data.scalar.length) {
					kl_errs_add(errs, "%s:%d: NUL byte in a scalar", name, line);
					ynode_free(n);
					failed = true;
					break;
				}
			} else {
				n->kind = ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ;
			}
			if (depth == 0) {
				root = n;
			} else if (ynode_add(stack[depth - 1], n) < 0) {
				ynode_free(n);
				failed = true;
				break;
			}
			if (n->kind != Y_SCALAR) {
				if (depth >= Y_MAX_DEPTH) {
					kl_errs_add(errs, "%s:%d: nested deeper than %d", name, line,
						    Y_MAX_DEPTH);
					failed = true;
					break;
				}
				stack[depth++] = n;
			} else if (depth == 0) {
				/* A scalar document: keep it as the root. */
			}
			break;
		}
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (failed) {
		ynode_free(root);
		return NULL;
	}
	if (root == NULL)
		kl_errs_add(errs, "%s: empty document", name);
	return root;
}

static const char *kind_word(const struct ynode *n)
{
	return n->kind == Y_MAP ? "a mapping" : n->kind == Y_SEQ ? "a list" : "a scalar";
}

/* Duplicate keys: YAML says they are an error; libyaml does not check. */
static bool dup_key(const struct ynode *map, size_t upto, const char *key)
{
	for (size_t i = 0; i + 1 < upto; i += 2) {
		const struct ynode *k = map->kid[i];
		if (k->kind == Y_SCALAR && strcmp(k->s, key) == 0)
			return true;
	}
	return false;
}

static void walk_spec(const struct ynode *map, const char *path, const char *name, bool pdp,
		      struct kl_layer *L, struct kl_errs *errs)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->kid[i], *v = map->kid[i + 1];
		char full[256], where[512];
		if (k->kind != Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: %s: keys must be plain words", name, k->line, path);
			continue;
		}
		snprintf(full, sizeof(full), "%s%s%s", path[0] ? path : "", path[0] ? "." : "", k->s);
		snprintf(where, sizeof(where), "%s:%d: spec.%s", name, v->line, full);
		if (dup_key(map, i, k->s)) {
			kl_errs_add(errs, "%s:%d: duplicate key 'spec.%s'", name, k->line, full);
			continue;
		}
		int ki = kl_knob_by_path(full, pdp);
		if (ki >= 0) {
			size_t nk;
			const struct kl_knob *kn = &kl_knobs(&nk)[ki];
			if (kn->type == KT_CIDRS) {
				if (v->kind != Y_SEQ) {
					kl_errs_add(errs, "%s: expected a list of CIDRs, got %s", where,
						    kind_word(v));
					continue;
				}
				const char **items = calloc(v->n + 1, sizeof(*items));
				bool ok = items != NULL;
				for (size_t j = 0; ok && j < v->n; j++) {
					if (v->kid[j]->kind != Y_SCALAR) {
						kl_errs_add(errs, "%s: item %zu: expected a CIDR, got %s",
							    where, j + 1, kind_word(v->kid[j]));
						ok = false;
					} else {
						items[j] = v->kid[j]->s;
					}
				}
				if (ok)
					kl_layer_set_cidrs(L, ki, items, v->n, v->line, where, errs);
				free(items);
				continue;
			}
			if (v->kind != Y_SCALAR) {
				kl_errs_add(errs, "%s: expected a value, got %s", where, kind_word(v));
				continue;
			}
			kl_layer_set(L, ki, v->s, v->line, where, false, errs);
			continue;
		}
		if (kl_knob_path_prefix(full, pdp)) {
			if (v->kind != Y_MAP) {
				kl_errs_add(errs, "%s: expected a mapping, got %s", where, kind_word(v));
				continue;
			}
			walk_spec(v, full, name, pdp, L, errs);
			continue;
		}
		kl_errs_add(errs, "%s:%d: unknown key 'spec.%s'", name, k->line, full);
	}
}

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
	return strcmp((*(const struct ynode *const *)a)->s, (*(const struct ynode *const *)b)->s);
}

/* Keys of a mapping are scalars and unique: otherwise two trees could
 * share their leaf paths ({a: {x: 1}, a: {y: 2}} and {a: {x: 1, y: 2}}). */
static int keys_ok(const struct ynode *map)
{
	size_t nk = map->n / 2;
	const struct ynode **k = malloc((nk ? nk : 1) * sizeof(*k));
	int rc = 0;

	if (k == NULL)
		return -1;
	for (size_t i = 0; i < nk; i++) {
		k[i] = map->kid[2 * i];
		if (k[i]->kind != Y_SCALAR)
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
static int canon_walk(const struct ynode *n, const char *path, bool root, struct lines *l)
{
	if (n->kind == Y_SCALAR)
		return lines_add(l, path, n->s, NULL);
	if (n->n == 0) /* an empty document is the empty text, no "={}" line */
		return root ? 0 : lines_add(l, path, NULL, n->kind == Y_MAP ? "{}" : "[]");
	if (n->kind == Y_MAP && keys_ok(n) < 0)
		return -1;
	for (size_t i = 0; i < n->n; i += n->kind == Y_MAP ? 2 : 1) {
		const struct ynode *kid = n->kid[i];
		char *sub = NULL;
		size_t sl = 0;
		FILE *f;
		if (n->kind == Y_MAP) {
			if (root && strcmp(kid->s, "signature") == 0)
				continue;
			kid = n->kid[i + 1];
		}
		f = open_memstream(&sub, &sl);
		if (f == NULL)
			return -1;
		fputs(path, f);
		if (n->kind == Y_SEQ) {
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
static int canonical(const struct ynode *root, char **out, size_t *outlen)
{
	struct lines l = { 0 };
	size_t total = 0;
	int rc = -1;

	if (root->kind != Y_MAP || canon_walk(root, "", true, &l) < 0)
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

static const struct ynode *get(const struct ynode *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (map->kid[i]->kind == Y_SCALAR && strcmp(map->kid[i]->s, key) == 0)
			return map->kid[i + 1];
	}
	return NULL;
}

static void load_signature(const struct ynode *sig, const char *name, struct kl_doc_info *info,
			   struct kl_errs *errs)
{
	if (sig->kind != Y_MAP) {
		kl_errs_add(errs, "%s:%d: signature: expected a mapping {alg, key_id, value}", name,
			    sig->line);
		return;
	}
	for (size_t i = 0; i + 1 < sig->n; i += 2) {
		const struct ynode *k = sig->kid[i], *v = sig->kid[i + 1];
		if (k->kind != Y_SCALAR || v->kind != Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: signature: keys and values must be scalars", name,
				    k->line);
			continue;
		}
		if (dup_key(sig, i, k->s)) {
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
			kl_errs_add(errs, "%s:%d: unknown key 'signature.%s' (valid: alg, key_id, value)",
				    name, k->line, k->s);
		}
	}
	if (get(sig, "value") == NULL)
		kl_errs_add(errs, "%s:%d: signature.value is missing", name, sig->line);
}

/* A label key is a word, not a path: [A-Za-z0-9._/-], starting and ending
 * with a letter or digit, at most 253 bytes (as Kubernetes label keys). A
 * value is text without control bytes, at most 256 bytes. The canonical
 * text escapes whatever gets through; this keeps labels what they claim to
 * be. */
static void check_label(const struct ynode *labels, size_t m, const char *name,
			struct kl_errs *errs)
{
	const struct ynode *k = labels->kid[m], *v = labels->kid[m + 1];

	if (k->kind != Y_SCALAR || v->kind != Y_SCALAR) {
		kl_errs_add(errs, "%s:%d: metadata.labels: keys and values must be scalars", name,
			    k->line);
		return;
	}
	size_t kl = strlen(k->s), vl = strlen(v->s);
	bool ok = kl > 0 && kl <= 253 && isalnum((unsigned char)k->s[0]) &&
		  isalnum((unsigned char)k->s[kl - 1]);
	for (size_t i = 0; ok && i < kl; i++)
		ok = isalnum((unsigned char)k->s[i]) || strchr("._/-", k->s[i]) != NULL;
	if (!ok) {
		kl_errs_add(errs, "%s:%d: metadata.labels: invalid key (want 1-253 of A-Z a-z 0-9 . _ / -, starting and ending with a letter or digit)",
			    name, k->line);
		return;
	}
	if (dup_key(labels, m, k->s)) {
		kl_errs_add(errs, "%s:%d: duplicate key 'metadata.labels.%s'", name, k->line, k->s);
		return;
	}
	bool vok = vl <= 256;
	for (size_t i = 0; vok && i < vl; i++)
		vok = (unsigned char)v->s[i] >= 0x20 && v->s[i] != 0x7f;
	if (!vok)
		kl_errs_add(errs, "%s:%d: metadata.labels.%s: the value must be at most 256 bytes without control characters",
			    name, v->line, k->s);
}

int kl_yaml_load_text(const char *text, size_t len, const char *name, enum kl_doc_kind kind,
		      struct kl_layer *L, struct kl_doc_info *info, struct kl_errs *errs)
{
	const char *want = kind == KL_DOC_PDP ? "PDPConfig" : "PolicyPack";
	size_t before = errs->n;
	struct ynode *root = ytree(text, len, name, errs);
	bool seen_spec = false;

	memset(info, 0, sizeof(*info));
	if (root == NULL)
		return -1;
	if (root->kind != Y_MAP) {
		kl_errs_add(errs, "%s:%d: expected a %s mapping (apiVersion, kind, metadata, spec)",
			    name, root->line, want);
		goto out;
	}
	const struct ynode *av = get(root, "apiVersion"), *kd = get(root, "kind");
	if (av == NULL)
		kl_errs_add(errs, "%s:%d: apiVersion is missing (want %s)", name, root->line,
			    KL_API_VERSION);
	if (kd == NULL)
		kl_errs_add(errs, "%s:%d: kind is missing (want %s)", name, root->line, want);
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const struct ynode *k = root->kid[i], *v = root->kid[i + 1];
		if (k->kind != Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: keys must be plain words", name, k->line);
			continue;
		}
		if (dup_key(root, i, k->s)) {
			kl_errs_add(errs, "%s:%d: duplicate key '%s'", name, k->line, k->s);
			continue;
		}
		if (strcmp(k->s, "apiVersion") == 0) {
			if (v->kind != Y_SCALAR || strcmp(v->s, KL_API_VERSION) != 0)
				kl_errs_add(errs, "%s:%d: apiVersion: want %s", name, v->line,
					    KL_API_VERSION);
		} else if (strcmp(k->s, "kind") == 0) {
			if (v->kind != Y_SCALAR || strcmp(v->s, want) != 0)
				kl_errs_add(errs, "%s:%d: kind: want %s here, got %s%s%s", name, v->line,
					    want, v->kind == Y_SCALAR ? "'" : "",
					    v->kind == Y_SCALAR ? v->s : kind_word(v),
					    v->kind == Y_SCALAR ? "'" : "");
		} else if (strcmp(k->s, "metadata") == 0) {
			if (v->kind != Y_MAP) {
				kl_errs_add(errs, "%s:%d: metadata: expected a mapping", name, v->line);
				continue;
			}
			for (size_t j = 0; j + 1 < v->n; j += 2) {
				const struct ynode *mk = v->kid[j], *mv = v->kid[j + 1];
				const char *ks = mk->kind == Y_SCALAR ? mk->s : "?";
				if (dup_key(v, j, ks)) {
					kl_errs_add(errs, "%s:%d: duplicate key 'metadata.%s'", name,
						    mk->line, ks);
				} else if (strcmp(ks, "name") == 0 || strcmp(ks, "description") == 0 ||
					   strcmp(ks, "version") == 0) {
					if (mv->kind != Y_SCALAR)
						kl_errs_add(errs, "%s:%d: metadata.%s: expected a value, got %s",
							    name, mv->line, ks, kind_word(mv));
					else if (strcmp(ks, "name") == 0) {
						free(info->name);
						info->name = strdup(mv->s);
					}
				} else if (strcmp(ks, "labels") == 0) {
					if (mv->kind != Y_MAP)
						kl_errs_add(errs, "%s:%d: metadata.labels: expected a mapping",
							    name, mv->line);
					for (size_t m = 0; mv->kind == Y_MAP && m + 1 < mv->n; m += 2)
						check_label(mv, m, name, errs);
				} else {
					kl_errs_add(errs, "%s:%d: unknown key 'metadata.%s' (valid: name, description, version, labels)",
						    name, mk->line, ks);
				}
			}
		} else if (strcmp(k->s, "spec") == 0) {
			seen_spec = true;
			if (v->kind != Y_MAP) {
				kl_errs_add(errs, "%s:%d: spec: expected a mapping, got %s", name, v->line,
					    kind_word(v));
				continue;
			}
			walk_spec(v, "", name, kind == KL_DOC_PDP, L, errs);
		} else if (kind == KL_DOC_POLICY && strcmp(k->s, "signature") == 0) {
			load_signature(v, name, info, errs);
		} else {
			kl_errs_add(errs, "%s:%d: unknown key '%s' (valid: apiVersion, kind, metadata, spec%s)",
				    name, k->line, k->s, kind == KL_DOC_POLICY ? ", signature" : "");
		}
	}
	if (!seen_spec)
		kl_errs_add(errs, "%s:%d: spec is missing", name, root->line);
	if (kind == KL_DOC_POLICY && canonical(root, &info->canonical, &info->canonical_len) < 0 &&
	    errs->n == before)
		kl_errs_add(errs, "%s: cannot build the canonical text (a duplicate or non-scalar key, or out of memory)",
			    name);
out:
	ynode_free(root);
	return errs->n > before ? -1 : 0;
}

int kl_yaml_load_file(const char *path, enum kl_doc_kind kind, struct kl_layer *L,
		      struct kl_doc_info *info, struct kl_errs *errs)
{
	char *buf;
	size_t len;
	char err[512];
	int rc;

	memset(info, 0, sizeof(*info));
	if (kl_read_file(path, Y_MAX_FILE, &buf, &len, err, sizeof(err)) < 0) {
		kl_errs_add(errs, "cannot read the %s: %s",
			    kind == KL_DOC_PDP ? "PDPConfig" : "PolicyPack", err);
		return -1;
	}
	rc = kl_yaml_load_text(buf, len, path, kind, L, info, errs);
	free(buf);
	return rc;
}

void kl_doc_info_free(struct kl_doc_info *info)
{
	free(info->name);
	free(info->key_id);
	free(info->canonical);
	memset(info, 0, sizeof(*info));
}

int kl_pubkey_load(const char *path, unsigned char pk[32], char *err, size_t errlen)
{
	char *buf;
	size_t len, bl = 0;

	if (kl_read_file(path, 4096, &buf, &len, err, errlen) < 0)
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

int kl_policy_verify(const struct kl_doc_info *info, const unsigned char pk[32], char *err,
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
