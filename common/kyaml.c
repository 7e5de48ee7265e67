/* SPDX-License-Identifier: MPL-2.0 */
/*
 * libyaml events -> a small node tree with line numbers -> walk it against
 * a knob table. The tree is bounded (depth, nodes, file size) because a
 * config file is exactly the kind of input a mistake or an attacker makes
 * large.
 */
#include "common/kyaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/safefile.h"

#define Y_MAX_DEPTH 32
#define Y_MAX_NODES 100000


void kl_ynode_free(struct kl_ynode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		kl_ynode_free(n->kid[i]);
	free(n->kid);
	free(n->s);
	free(n);
}

static int ynode_add(struct kl_ynode *parent, struct kl_ynode *kid)
{
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 8;
		struct kl_ynode **nk = realloc(parent->kid, ncap * sizeof(*nk));
		if (nk == NULL)
			return -1;
		parent->kid = nk;
		parent->cap = ncap;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

/* Build the tree. Returns the root (NULL on error, message added). */
static struct kl_ynode *ytree(const char *text, size_t len, const char *name, bool empty_ok,
			      struct kl_errs *errs)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct kl_ynode *stack[Y_MAX_DEPTH + 1];
	int depth = 0;
	struct kl_ynode *root = NULL;
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
		struct kl_ynode *n = NULL;
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
				n->kind = KL_Y_SCALAR;
				n->s = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
				if (n->s == NULL || strlen(n->s) != ev.data.scalar.length) {
					kl_errs_add(errs, "%s:%d: NUL byte in a scalar", name, line);
					kl_ynode_free(n);
					failed = true;
					break;
				}
			} else {
				n->kind = ev.type == YAML_MAPPING_START_EVENT ? KL_Y_MAP : KL_Y_SEQ;
			}
			if (depth == 0) {
				root = n;
			} else if (ynode_add(stack[depth - 1], n) < 0) {
				kl_ynode_free(n);
				failed = true;
				break;
			}
			if (n->kind != KL_Y_SCALAR) {
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
		kl_ynode_free(root);
		return NULL;
	}
	if (root == NULL && !empty_ok)
		kl_errs_add(errs, "%s: empty document", name);
	return root;
}

struct kl_ynode *kl_ytree(const char *text, size_t len, const char *name, struct kl_errs *errs)
{
	return ytree(text, len, name, false, errs);
}

static const char *kl_ykind_word(const struct kl_ynode *n)
{
	return n->kind == KL_Y_MAP ? "a mapping" : n->kind == KL_Y_SEQ ? "a list" : "a scalar";
}

/* Duplicate keys: YAML says they are an error; libyaml does not check. */
bool kl_ydup_key(const struct kl_ynode *map, size_t upto, const char *key)
{
	for (size_t i = 0; i + 1 < upto; i += 2) {
		const struct kl_ynode *k = map->kid[i];
		if (k->kind == KL_Y_SCALAR && strcmp(k->s, key) == 0)
			return true;
	}
	return false;
}

/* Is path a or under a ("graph.x" is under "graph")? */
static bool under(const char *path, const char *a)
{
	size_t n = strlen(a);

	return strncmp(path, a, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

const struct kl_ynode *kl_yget(const struct kl_ynode *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (map->kid[i]->kind == KL_Y_SCALAR && strcmp(map->kid[i]->s, key) == 0)
			return map->kid[i + 1];
	}
	return NULL;
}

/* pre: how paths are shown ("spec." in a PDPConfig, "" in an own file). */
static bool owned_path(const char *const *owned, const char *full)
{
	if (owned == NULL)
		return true;
	for (size_t i = 0; owned[i] != NULL; i++)
		if (under(full, owned[i]) || under(owned[i], full))
			return true;
	return false;
}

/* The next path component of knob ki under path ("" for the top), or
 * NULL when ki is not under path; *n: its length. */
static const char *component(const struct kl_knobset *ks, size_t ki, const char *path,
			     enum kl_kpath kp, size_t *n)
{
	const char *kpath = kl_knob_path(&ks->k[ki], kp);
	size_t pl = strlen(path);

	if (kpath == NULL || (pl > 0 && (strncmp(kpath, path, pl) != 0 || kpath[pl] != '.')))
		return NULL;
	kpath += pl > 0 ? pl + 1 : 0;
	*n = strcspn(kpath, ".");
	return kpath;
}

/* The keys a mapping at path may hold, "a, b, c", each once, in table
 * order (a mistyped key is most often a near miss of one of them). */
static void keys_here(const struct kl_knobset *ks, const char *path, enum kl_kpath kp,
		      const char *const *owned, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ks->n; i++) {
		size_t n, m;
		const char *c = component(ks, i, path, kp, &n);
		bool seen = false;
		if (c == NULL || (owned != NULL && !owned_path(owned, kl_knob_path(&ks->k[i], kp))))
			continue;
		for (size_t j = 0; j < i && !seen; j++) {
			const char *d = component(ks, j, path, kp, &m);
			seen = d != NULL && m == n && strncmp(c, d, n) == 0;
		}
		if (seen)
			continue;
		int w = snprintf(buf + o, len - o, "%s%.*s", o ? ", " : "", (int)n, c);
		if (w < 0 || (size_t)w >= len - o) {
			snprintf(buf + (o < len - 4 ? o : len - 4), 4, "...");
			return;
		}
		o += (size_t)w;
	}
}

static void walk(const struct kl_ynode *map, const char *path, const char *name, const char *pre,
		 enum kl_kpath kp, const char *const *owned, struct kl_layer *L,
		 struct kl_errs *errs)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct kl_ynode *k = map->kid[i], *v = map->kid[i + 1];
		char full[256], where[512];
		if (k->kind != KL_Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: %s%s: keys must be plain words", name, k->line, pre,
				    path);
			continue;
		}
		snprintf(full, sizeof(full), "%s%s%s", path[0] ? path : "", path[0] ? "." : "", k->s);
		snprintf(where, sizeof(where), "%s:%d: %s%s", name, v->line, pre, full);
		if (!owned_path(owned, full))
			continue;
		if (kl_ydup_key(map, i, k->s)) {
			kl_errs_add(errs, "%s:%d: duplicate key '%s%s'", name, k->line, pre, full);
			continue;
		}
		int ki = kl_knob_by_path(L->ks, full, kp);
		if (ki >= 0) {
			const struct kl_knob *kn = &L->ks->k[ki];
			if (kn->type == KT_CIDRS || kn->type == KT_STRS) {
				const char *what = kn->type == KT_CIDRS ? "CIDR" : "name";
				if (v->kind != KL_Y_SEQ) {
					kl_errs_add(errs, "%s: expected a list of %ss, got %s", where, what,
						    kl_ykind_word(v));
					continue;
				}
				const char **items = calloc(v->n + 1, sizeof(*items));
				bool ok = items != NULL;
				for (size_t j = 0; ok && j < v->n; j++) {
					if (v->kid[j]->kind != KL_Y_SCALAR) {
						kl_errs_add(errs, "%s: item %zu: expected a %s, got %s",
							    where, j + 1, what, kl_ykind_word(v->kid[j]));
						ok = false;
					} else {
						items[j] = v->kid[j]->s;
					}
				}
				if (ok)
					kl_layer_set_list(L, ki, items, v->n, v->line, where, errs);
				free(items);
				continue;
			}
			if (v->kind != KL_Y_SCALAR) {
				kl_errs_add(errs, "%s: expected a value, got %s", where, kl_ykind_word(v));
				continue;
			}
			kl_layer_set(L, ki, v->s, v->line, where, false, errs);
			continue;
		}
		if (kl_knob_path_prefix(L->ks, full, kp)) {
			if (v->kind != KL_Y_MAP) {
				kl_errs_add(errs, "%s: expected a mapping, got %s", where, kl_ykind_word(v));
				continue;
			}
			walk(v, full, name, pre, kp, owned, L, errs);
			continue;
		}
		char valid[768];
		keys_here(L->ks, path, kp, owned, valid, sizeof(valid));
		kl_errs_add(errs, "%s:%d: %s%s: unknown key (valid here: %s)", name, k->line, pre, full,
			    valid);
	}
}

/* A label key is a word, not a path: [A-Za-z0-9._/-], starting and ending
 * with a letter or digit, at most 253 bytes (as Kubernetes label keys). A
 * value is text without control bytes, at most 256 bytes. The canonical
 * text escapes whatever gets through; this keeps labels what they claim to
 * be. */
static void check_label(const struct kl_ynode *labels, size_t m, const char *name,
			struct kl_errs *errs)
{
	const struct kl_ynode *k = labels->kid[m], *v = labels->kid[m + 1];

	if (k->kind != KL_Y_SCALAR || v->kind != KL_Y_SCALAR) {
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
	if (kl_ydup_key(labels, m, k->s)) {
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

int kl_yaml_doc(const struct kl_ynode *root, const char *name, enum kl_doc_kind kind,
		const char *const *owned, struct kl_layer *L, kl_yextra_fn extra, void *ctx,
		char **meta_name, struct kl_errs *errs)
{
	const char *want = kind == KL_DOC_PDP ? "PDPConfig" : "PolicyPack";
	size_t before = errs->n;
	bool seen_spec = false;

	if (root->kind != KL_Y_MAP) {
		kl_errs_add(errs, "%s:%d: expected a %s mapping (apiVersion, kind, metadata, spec)",
			    name, root->line, want);
		return -1;
	}
	if (kl_yget(root, "apiVersion") == NULL)
		kl_errs_add(errs, "%s:%d: apiVersion is missing (want %s)", name, root->line,
			    KL_API_VERSION);
	if (kl_yget(root, "kind") == NULL)
		kl_errs_add(errs, "%s:%d: kind is missing (want %s)", name, root->line, want);
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const struct kl_ynode *k = root->kid[i], *v = root->kid[i + 1];
		if (k->kind != KL_Y_SCALAR) {
			kl_errs_add(errs, "%s:%d: keys must be plain words", name, k->line);
			continue;
		}
		if (kl_ydup_key(root, i, k->s)) {
			kl_errs_add(errs, "%s:%d: duplicate key '%s'", name, k->line, k->s);
			continue;
		}
		if (strcmp(k->s, "apiVersion") == 0) {
			if (v->kind != KL_Y_SCALAR || strcmp(v->s, KL_API_VERSION) != 0)
				kl_errs_add(errs, "%s:%d: apiVersion: want %s", name, v->line,
					    KL_API_VERSION);
		} else if (strcmp(k->s, "kind") == 0) {
			if (v->kind != KL_Y_SCALAR || strcmp(v->s, want) != 0)
				kl_errs_add(errs, "%s:%d: kind: want %s here, got %s%s%s", name, v->line,
					    want, v->kind == KL_Y_SCALAR ? "'" : "",
					    v->kind == KL_Y_SCALAR ? v->s : kl_ykind_word(v),
					    v->kind == KL_Y_SCALAR ? "'" : "");
		} else if (strcmp(k->s, "metadata") == 0) {
			if (v->kind != KL_Y_MAP) {
				kl_errs_add(errs, "%s:%d: metadata: expected a mapping", name, v->line);
				continue;
			}
			for (size_t j = 0; j + 1 < v->n; j += 2) {
				const struct kl_ynode *mk = v->kid[j], *mv = v->kid[j + 1];
				const char *ks = mk->kind == KL_Y_SCALAR ? mk->s : "?";
				if (kl_ydup_key(v, j, ks)) {
					kl_errs_add(errs, "%s:%d: duplicate key 'metadata.%s'", name,
						    mk->line, ks);
				} else if (strcmp(ks, "name") == 0 || strcmp(ks, "description") == 0 ||
					   strcmp(ks, "version") == 0) {
					if (mv->kind != KL_Y_SCALAR)
						kl_errs_add(errs, "%s:%d: metadata.%s: expected a value, got %s",
							    name, mv->line, ks, kl_ykind_word(mv));
					else if (strcmp(ks, "name") == 0) {
						if (meta_name != NULL) {
							free(*meta_name);
							*meta_name = strdup(mv->s);
						}
					}
				} else if (strcmp(ks, "labels") == 0) {
					if (mv->kind != KL_Y_MAP)
						kl_errs_add(errs, "%s:%d: metadata.labels: expected a mapping",
							    name, mv->line);
					for (size_t m = 0; mv->kind == KL_Y_MAP && m + 1 < mv->n; m += 2)
						check_label(mv, m, name, errs);
				} else {
					kl_errs_add(errs, "%s:%d: metadata.%s: unknown key (valid: name, description, version, labels)",
						    name, mk->line, ks);
				}
			}
		} else if (strcmp(k->s, "spec") == 0) {
			seen_spec = true;
			if (v->kind != KL_Y_MAP) {
				kl_errs_add(errs, "%s:%d: spec: expected a mapping, got %s", name, v->line,
					    kl_ykind_word(v));
				continue;
			}
			walk(v, "", name, "spec.", kind == KL_DOC_PDP ? KL_KP_PDP : KL_KP_POL, owned,
			     L, errs);
		} else if (extra != NULL && extra(ctx, k->s, v, name, errs)) {
			continue;
		} else {
			kl_errs_add(errs, "%s:%d: %s: unknown key (valid: apiVersion, kind, metadata, spec%s)",
				    name, k->line, k->s, kind == KL_DOC_POLICY ? ", signature" : "");
		}
	}
	if (!seen_spec)
		kl_errs_add(errs, "%s:%d: spec is missing", name, root->line);
	if (!seen_spec)
		kl_errs_add(errs, "%s:%d: spec is missing", name, root->line);
	return errs->n > before ? -1 : 0;
}

/* Read a configuration file (regular file, bounded). missing: set when it
 * does not exist (then 0 is returned and nothing read). */
static int kl_yaml_read(const char *path, unsigned safe, char **buf, size_t *len, bool *missing,
			struct kl_errs *errs)
{
	char err[512];

	*buf = NULL;
	*len = 0;
	if (missing != NULL)
		*missing = false;
	/* Config files are root's (or the operator's) in /etc: a link or a
	 * FIFO there is refused like any other file a daemon reads. */
	if (kl_safe_read_file(path, KL_YAML_MAX_FILE, safe, buf, len, err, sizeof(err)) == 0)
		return 0;
	if (missing != NULL && errno == ENOENT) {
		*missing = true;
		return 0;
	}
	kl_errs_add(errs, "%s", err);
	return -1;
}

static int pdp_file(const char *path, unsigned safe, const char *const *owned, struct kl_layer *L,
		    bool *missing, struct kl_errs *errs)
{
	char *buf;
	size_t len;
	int rc = -1;

	if (kl_yaml_read(path, safe, &buf, &len, missing, errs) < 0)
		return -1;
	if (missing != NULL && *missing)
		return 0;
	struct kl_ynode *root = kl_ytree(buf, len, path, errs);
	if (root != NULL)
		rc = kl_yaml_doc(root, path, KL_DOC_PDP, owned, L, NULL, NULL, NULL, errs);
	kl_ynode_free(root);
	free(buf);
	return rc;
}

int kl_yaml_pdp_file(const char *path, const char *const *owned, struct kl_layer *L,
		     bool *missing, struct kl_errs *errs)
{
	return pdp_file(path, 0, owned, L, missing, errs);
}

int kl_yaml_own_text(const char *text, size_t len, const char *name, struct kl_layer *L,
		     struct kl_errs *errs)
{
	size_t before = errs->n;
	struct kl_ynode *root = ytree(text, len, name, true, errs);

	if (root == NULL) /* an empty (or comments-only) file sets nothing */
		return errs->n > before ? -1 : 0;
	if (root->kind == KL_Y_SCALAR && root->s[0] == '\0') {
		/* "---" alone: nothing either. */
	} else if (root->kind != KL_Y_MAP) {
		kl_errs_add(errs, "%s:%d: expected a mapping of settings, got %s", name, root->line,
			    kl_ykind_word(root));
	} else {
		walk(root, "", name, "", KL_KP_OWN, NULL, L, errs);
	}
	kl_ynode_free(root);
	return errs->n > before ? -1 : 0;
}

static int own_file(const char *path, unsigned safe, struct kl_layer *L, bool *missing,
		    struct kl_errs *errs)
{
	char *buf;
	size_t len;
	int rc;

	if (kl_yaml_read(path, safe, &buf, &len, missing, errs) < 0)
		return -1;
	if (missing != NULL && *missing)
		return 0;
	rc = kl_yaml_own_text(buf, len, path, L, errs);
	free(buf);
	return rc;
}

int kl_yaml_own_file(const char *path, struct kl_layer *L, bool *missing, struct kl_errs *errs)
{
	return own_file(path, 0, L, missing, errs);
}

int kl_yaml_layer(const struct kl_layer *flags, const char *knob, const char *def,
		  enum kl_layer_kind kind, const char *const *owned, unsigned safe,
		  struct kl_layer *L, struct kl_errs *errs)
{
	const struct kl_knobset *ks = flags->ks;
	int ki = kl_knob_index(ks, knob);
	bool named = ki >= 0 && flags->set[ki], missing = false;
	const char *path = named ? *(char *const *)((const char *)flags->v + ks->k[ki].off) : def;
	int rc;

	memset(L, 0, sizeof(*L));
	if (path == NULL || path[0] == '\0')
		return 0;
	if (kl_layer_init(L, ks, kind, path) < 0) {
		kl_layer_free(L);
		kl_errs_add(errs, "out of memory");
		return -1;
	}
	rc = kind == KL_L_FILE ? own_file(path, safe, L, &missing, errs)
			       : pdp_file(path, safe, owned, L, &missing, errs);
	if (missing && named) {
		kl_errs_add(errs, "--%s %s: no such file", knob, path);
		rc = -1;
	}
	return rc;
}
