/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The PolicyPack canonical text (the bytes a signature covers) is
 * injective: the reported forgery (a label key that spells a removed
 * spec line) no longer verifies, label keys are checked, and a property
 * test over many generated pairs of documents built from adversarial keys
 * and values ('=', '.', '[', newlines, backslashes, braces, empty strings)
 * finds equal texts exactly for equal documents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/knobs.h"
#include "decider/yamlcfg.h"

static int load(const char *text, struct dec_doc_info *info, struct kl_errs *e)
{
	struct kl_layer L;
	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "p.yaml");
	int rc = dec_yaml_load_text(text, strlen(text), "p.yaml", KL_DOC_POLICY, &L, info, e);
	kl_layer_free(&L);
	return rc;
}

static bool errs_have(const struct kl_errs *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i], needle) != NULL)
			return true;
	return false;
}

/* The report: sign a pack with dry_run: false, then drop that line and
 * add a label whose key spells it. */
static const char *orig =
	"apiVersion: kernloom.io/v1alpha1\n"
	"kind: PolicyPack\n"
	"metadata:\n"
	"  labels: {owner: netsec}\n"
	"spec:\n"
	"  dry_run: false\n"
	"  max_action: block\n";
static const char *forged =
	"apiVersion: kernloom.io/v1alpha1\n"
	"kind: PolicyPack\n"
	"metadata:\n"
	"  labels: {\"owner=netsec\\nspec.dry_run\": \"false\"}\n"
	"spec:\n"
	"  max_action: block\n";

static void test_reported_forgery(void **state)
{
	(void)state;
	unsigned char pk[32], sk[64], sig[64];
	struct dec_doc_info a, b;
	struct kl_errs e = { 0 };
	char err[256];

	assert_true(sodium_init() >= 0);
	crypto_sign_keypair(pk, sk);
	assert_int_equal(load(orig, &a, &e), 0);
	crypto_sign_detached(sig, NULL, (const unsigned char *)a.canonical, a.canonical_len, sk);

	/* Whatever the loader thinks of the forged pack, its canonical text
	 * is not the original's, so the original signature does not carry
	 * over to it. */
	load(forged, &b, &e);
	assert_non_null(b.canonical);
	assert_true(a.canonical_len != b.canonical_len ||
		    memcmp(a.canonical, b.canonical, a.canonical_len) != 0);
	memcpy(b.sig, sig, sizeof(sig));
	b.has_signature = true;
	assert_int_equal(dec_policy_verify(&b, pk, err, sizeof(err)), -1);
	/* And the loader refuses that key outright. */
	assert_true(errs_have(&e, "p.yaml:4: metadata.labels: invalid key"));
	dec_doc_info_free(&a);
	dec_doc_info_free(&b);
	kl_errs_free(&e);
}

static void test_label_checks(void **state)
{
	(void)state;
	struct dec_doc_info info;
	struct kl_errs e = { 0 };
	const char *head = "apiVersion: kernloom.io/v1alpha1\nkind: PolicyPack\nspec: {dry_run: true}\n";
	char *t = NULL;

	assert_true(asprintf(&t, "%smetadata:\n  labels: {app.kubernetes.io/name: edge, tier: \"web 1\"}\n",
			     head) > 0);
	assert_int_equal(load(t, &info, &e), 0);
	dec_doc_info_free(&info);
	free(t);

	const char *bad[][2] = {
		{ "{\"a=b\": x}", "invalid key" },
		{ "{\"a b\": x}", "invalid key" },
		{ "{\"\": x}", "invalid key" },
		{ "{\".a\": x}", "invalid key" },
		{ "{\"a\\\\b\": x}", "invalid key" },
		{ "{a: x, a: y}", "duplicate key 'metadata.labels.a'" },
		{ "{a: \"x\\ny\"}", "metadata.labels.a: the value must be" },
		{ "{a: [x]}", "keys and values must be scalars" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(asprintf(&t, "%smetadata:\n  labels: %s\n", head, bad[i][0]) > 0);
		assert_int_equal(load(t, &info, &e), -1);
		if (!errs_have(&e, bad[i][1]))
			fail_msg("labels %s: no error containing \"%s\"", bad[i][0], bad[i][1]);
		dec_doc_info_free(&info);
		kl_errs_free(&e);
		free(t);
	}
}

/* Corner documents, each pair once by hand: the empty document, empty
 * keys, containers against look-alike scalars, dotted keys against
 * nesting, indices against bracketed keys. */
static char *canon_text(const char *y)
{
	struct dec_doc_info info;
	struct kl_errs e = { 0 };
	load(y, &info, &e);
	char *c = info.canonical;
	info.canonical = NULL;
	dec_doc_info_free(&info);
	kl_errs_free(&e);
	return c;
}

static void test_corner_documents(void **state)
{
	(void)state;
	const char *docs[] = {
		"{}\n", "{\"\": {}}\n", "{\"\": \"\"}\n", "{a: {}}\n", "{a: \"{}\"}\n", "{a: []}\n",
		"{a: \"[]\"}\n", "{a: [x]}\n", "{\"a[0]\": x}\n", "{a.b: 1}\n", "{a: {b: 1}}\n",
		"{\"a=b\": c}\n", "{a: \"b=c\"}\n", "{a: \"x\\ny\"}\n", "{a: x, y: \"\"}\n",
		"{\"\": {x: 1}}\n", "{x: 1}\n", "{signature: {value: x}, a: 1}\n",
	};
	const size_t n = sizeof(docs) / sizeof(docs[0]);
	char *c[sizeof(docs) / sizeof(docs[0])];
	for (size_t i = 0; i < n; i++) {
		c[i] = canon_text(docs[i]);
		if (c[i] == NULL)
			fail_msg("no canonical text for %s", docs[i]);
	}
	assert_string_equal(c[0], "");
	assert_string_equal(c[1], "={}\n");
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(c[i], c[j]) == 0)
				fail_msg("%s and %s share the canonical text %s", docs[i], docs[j], c[i]);
	/* the signature block is not covered: the last equals {a: 1} */
	char *a1 = canon_text("{a: 1}\n");
	assert_string_equal(c[n - 1], a1);
	free(a1);
	/* duplicate and non-scalar keys: no canonical text */
	char *d = canon_text("{a: {x: 1}, a: {y: 2}}\n");
	assert_null(d);
	d = canon_text("{[k]: 1}\n");
	assert_null(d);
	for (size_t i = 0; i < n; i++)
		free(c[i]);
}

/* ---- property: generated documents ---- */

/* Keys and values chosen to collide under a careless encoding. */
static const char *const atoms[] = {
	"a", "b", "a.b", "a=b", "=", ".", "[0]", "[", "]", "{}", "[]", "{", "\\", "\\n", "\n",
	"a\nb", "a\\", "", " ", "x=y\na.b", "a[0]", "\\.", "\\=", "0", "a.b=c", "=\n", "}\n{",
};
#define NATOMS (sizeof(atoms) / sizeof(atoms[0]))
/* Every fourth pair draws from the first two atoms only, so that equal
 * documents (in another key order) come up too. */
static uint32_t natoms = NATOMS;

enum gkind { G_SCALAR, G_MAP, G_SEQ };

struct gnode {
	enum gkind kind;
	const char *s;          /* scalar */
	const char *key[4];     /* map keys, unique */
	struct gnode *kid[4];
	int n;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static struct gnode *gen(int depth)
{
	struct gnode *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	uint32_t r = depth >= 3 ? 0 : rnd(4);
	g->kind = r <= 1 ? G_SCALAR : r == 2 ? G_MAP : G_SEQ;
	if (depth == 0)
		g->kind = G_MAP;
	if (g->kind == G_SCALAR) {
		g->s = atoms[rnd(natoms)];
		return g;
	}
	int want = (int)rnd(depth == 0 ? 4 : 3) + (depth == 0);
	for (int i = 0; i < want; i++) {
		if (g->kind == G_MAP) {
			const char *k = atoms[rnd(natoms)];
			bool dup = false;
			for (int j = 0; j < g->n; j++)
				dup |= strcmp(g->key[j], k) == 0;
			if (dup)
				continue;
			g->key[g->n] = k;
		}
		g->kid[g->n++] = gen(depth + 1);
	}
	return g;
}

static void gfree(struct gnode *g)
{
	for (int i = 0; i < g->n; i++)
		gfree(g->kid[i]);
	free(g);
}

/* YAML double-quoted string. */
static void yq(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void to_yaml(FILE *f, const struct gnode *g)
{
	if (g->kind == G_SCALAR) {
		yq(f, g->s);
		return;
	}
	fputc(g->kind == G_MAP ? '{' : '[', f);
	for (int i = 0; i < g->n; i++) {
		if (i)
			fputs(", ", f);
		if (g->kind == G_MAP) {
			yq(f, g->key[i]);
			fputs(": ", f);
		}
		to_yaml(f, g->kid[i]);
	}
	fputc(g->kind == G_MAP ? '}' : ']', f);
}

/* The test's own notion of document equality: a length-prefixed
 * serialisation with map entries in key order. */
static char *norm(const struct gnode *g);

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *norm(const struct gnode *g)
{
	char *out = NULL, *ent[4];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (g->kind == G_SCALAR) {
		fprintf(f, "S%zu:%s", strlen(g->s), g->s);
		fclose(f);
		return out;
	}
	for (int i = 0; i < g->n; i++) {
		char *v = norm(g->kid[i]);
		if (g->kind == G_MAP)
			assert_true(asprintf(&ent[i], "%zu:%s%s", strlen(g->key[i]), g->key[i], v) > 0);
		else
			ent[i] = strdup(v);
		free(v);
	}
	if (g->kind == G_MAP)
		qsort(ent, (size_t)g->n, sizeof(ent[0]), cmp_entry);
	fprintf(f, "%c%d(", g->kind == G_MAP ? 'M' : 'Q', g->n);
	for (int i = 0; i < g->n; i++) {
		fprintf(f, "%zu:%s", strlen(ent[i]), ent[i]);
		free(ent[i]);
	}
	fputc(')', f);
	fclose(f);
	return out;
}

static char *canon_of(const struct gnode *g)
{
	char *y = NULL;
	size_t yl = 0;
	FILE *f = open_memstream(&y, &yl);
	to_yaml(f, g);
	fputc('\n', f);
	fclose(f);

	struct dec_doc_info info;
	struct kl_errs e = { 0 };
	load(y, &info, &e); /* not a valid pack: only its canonical text matters */
	if (info.canonical == NULL)
		fail_msg("no canonical text for %s", y);
	char *c = info.canonical;
	info.canonical = NULL;
	dec_doc_info_free(&info);
	kl_errs_free(&e);
	free(y);
	return c;
}

static void test_canonical_injective(void **state)
{
	(void)state;
	int same = 0, differ = 0;

	for (int i = 0; i < 10000; i++) {
		natoms = i % 4 == 0 ? 2 : NATOMS;
		struct gnode *a = gen(0), *b = gen(0);
		char *na = norm(a), *nb = norm(b);
		char *ca = canon_of(a), *cb = canon_of(b);
		bool eq_doc = strcmp(na, nb) == 0, eq_canon = strcmp(ca, cb) == 0;
		if (eq_doc != eq_canon)
			fail_msg("documents %s and %s: canonical texts\n%s---\n%s", na, nb, ca, cb);
		eq_doc ? same++ : differ++;
		free(na);
		free(nb);
		free(ca);
		free(cb);
		gfree(a);
		gfree(b);
	}
	/* Both directions were exercised. */
	printf("  %d equal and %d different pairs\n", same, differ);
	assert_true(same > 20);
	assert_true(differ > 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reported_forgery),
		cmocka_unit_test(test_label_checks),
		cmocka_unit_test(test_corner_documents),
		cmocka_unit_test(test_canonical_injective),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
