/* SPDX-License-Identifier: MPL-2.0 */
/* The shared knob machinery on a small table of its own: precedence and
 * origins, the command line, quoting in -n, the own-file loader, reload. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/knob.h"
#include "common/kyaml.h"

struct tcfg {
	char *name, *path;
	int64_t count;
	int64_t every; /* ns */
	bool on;
	struct kl_cidrs nets;
};

#define OFF(f) offsetof(struct tcfg, f)
static const struct kl_knob rows[] = {
	{ "name", KT_STR, OFF(name), "x", .group = "G", .help = "h", .key = "name" },
	{ "path", KT_STR, OFF(path), "/p", .flags = KF_NONEMPTY, .group = "G", .help = "h",
	  .key = "path" },
	{ "count", KT_INT, OFF(count), "5", .min = 1, .max = 10, .flags = KF_LIVE, .group = "G",
	  .help = "h", .key = "count" },
	{ "every", KT_DUR, OFF(every), "1s", .min = 0, .max = 60, .group = "G", .help = "h",
	  .key = "sub.every" },
	{ "on", KT_BOOL, OFF(on), "false", .flags = KF_LIVE, .group = "G", .help = "h",
	  .key = "on" },
	{ "nets", KT_CIDRS, OFF(nets), "", .flags = KF_LIVE, .group = "G", .help = "h",
	  .key = "nets" },
};
static const struct kl_knobset ks = { "t", rows, sizeof(rows) / sizeof(rows[0]),
				      sizeof(struct tcfg) };

static int ki(const char *n)
{
	int i = kl_knob_index(&ks, n);
	assert_true(i >= 0);
	return i;
}

/* file text then flags of table t, resolved into c/r. Returns the error
 * count. */
static size_t load(const struct kl_knobset *t, const char *yaml, int argc, char **argv, void *c,
		   struct kl_resolved *r, struct kl_errs *e)
{
	struct kl_layer fl, file;
	enum kl_cli_action act;
	memset(c, 0, t->size);
	memset(r, 0, sizeof(*r));
	r->ks = t;
	r->v = c;
	assert_int_equal(kl_layer_init(&fl, t, KL_L_FLAG, NULL), 0);
	assert_int_equal(kl_layer_init(&file, t, KL_L_FILE, "t.yaml"), 0);
	kl_cli_parse(t, argc, argv, &fl, &act, NULL, NULL, e);
	if (yaml != NULL)
		kl_yaml_own_text(yaml, strlen(yaml), "t.yaml", &file, e);
	const struct kl_layer *order[] = { &fl, &file };
	kl_resolve(r, order, 2, e);
	kl_layer_free(&fl);
	kl_layer_free(&file);
	return e->n;
}

static size_t build(const char *yaml, int argc, char **argv, struct tcfg *c,
		    struct kl_resolved *r, struct kl_errs *e)
{
	return load(&ks, yaml, argc, argv, c, r, e);
}

static void test_precedence_and_origins(void **state)
{
	(void)state;
	struct tcfg c;
	struct kl_resolved r;
	struct kl_errs e = { 0 };
	char *argv[] = { "t", "--count", "7", "--on", "false", NULL };
	char o[128];
	assert_int_equal(build("count: 3\nsub: {every: 2s}\non: true\nnets: [10.0.0.0/8]\n", 5, argv,
			       &c, &r, &e), 0);
	assert_int_equal(c.count, 7); /* flag over file */
	assert_false(c.on);           /* "--on false" */
	assert_int_equal(c.every, 2000000000LL);
	assert_int_equal(c.nets.n, 1);
	assert_string_equal(c.name, "x");
	kl_origin_format(&r, ki("count"), o, sizeof(o));
	assert_string_equal(o, "flag --count");
	kl_origin_format(&r, ki("every"), o, sizeof(o));
	assert_string_equal(o, "file t.yaml:2");
	kl_origin_format(&r, ki("name"), o, sizeof(o));
	assert_string_equal(o, "default");
	kl_resolved_free(&r);
}

static void test_errors_name_place(void **state)
{
	(void)state;
	struct tcfg c;
	struct kl_resolved r;
	struct kl_errs e = { 0 };
	char *argv[] = { "t", "--path=", "--count", "11", "--bogus", NULL };
	assert_int_equal(build("count: x\nsub: {every: 2m}\nnope: 1\n", 5, argv, &c, &r, &e), 6);
	const char *want[] = { "--path: must not be empty", "--count: 11 is out of range",
			       "--bogus: unknown flag", "t.yaml:1: count: expected an integer, got 'x'",
			       "t.yaml:2: sub.every: 2m is out of range", "t.yaml:3: nope: unknown key (valid here: name, path, count, sub, on, nets)" };
	for (size_t i = 0; i < 6; i++)
		if (strstr(e.v[i], want[i]) == NULL)
			fail_msg("error %zu \"%s\" lacks \"%s\"", i, e.v[i], want[i]);
	kl_errs_free(&e);
	kl_resolved_free(&r);
}

/* -n quotes what YAML would read differently, so the report reads back. */
static void test_value_quoting(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain/path-1.x", "plain/path-1.x" }, { "NULL", "\"NULL\"" }, { "null", "\"null\"" },
		{ "~", "\"~\"" }, { "true", "\"true\"" }, { "", "\"\"" }, { "a b", "\"a b\"" },
		{ "-x", "\"-x\"" }, { "a\"b", "\"a\\\"b\"" }, { "a\nb", "\"a\\x0ab\"" },
		/* YAML folds the Unicode line breaks even between quotes */
		{ "a\\\xc2\x85NULL", "\"a\\\\\\NNULL\"" },
		{ "x\xe2\x80\xa8y\xe2\x80\xa9z", "\"x\\Ly\\Pz\"" }, { "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
		{ "a:b", "a:b" }, { "a:", "\"a:\"" }, { "a: b", "\"a: b\"" }, { "a,b", "\"a,b\"" },
		/* libyaml refuses C1 controls and U+FFFE/U+FFFF as text */
		{ "a\xc2\x80" "b", "\"a\\x80b\"" }, { "\xc2\x9f", "\"\\x9f\"" },
		{ "\xef\xbf\xbe" "x\xef\xbf\xbf", "\"\\ufffex\\uffff\"" },
	};
	struct tcfg c = { 0 };
	char buf[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.name = (char *)cases[i].in;
		kl_value_format(&ks, &c, ki("name"), buf, sizeof(buf));
		assert_string_equal(buf, cases[i].out);
		/* and the quoted text, as a file, gives the same string back
		 * (control characters are refused in a setting anyway) */
		if (strchr(cases[i].in, '\n') != NULL)
			continue;
		char yaml[96];
		snprintf(yaml, sizeof(yaml), "name: %s\n", buf);
		struct kl_layer L;
		struct kl_errs e = { 0 };
		assert_int_equal(kl_layer_init(&L, &ks, KL_L_FILE, "t.yaml"), 0);
		assert_int_equal(kl_yaml_own_text(yaml, strlen(yaml), "t.yaml", &L, &e), 0);
		assert_string_equal(((struct tcfg *)L.v)->name, cases[i].in);
		kl_layer_free(&L);
	}
}

static void test_reload_apply(void **state)
{
	(void)state;
	struct tcfg run, fresh;
	struct kl_resolved rr, rf;
	struct kl_errs e = { 0 };
	char *argv[] = { "t", NULL };
	char o[128];
	assert_int_equal(build("count: 3\nname: a\n", 1, argv, &run, &rr, &e), 0);
	assert_int_equal(build("count: 4\nname: b\nnets: [192.0.2.0/24]\n", 1, argv, &fresh, &rf, &e), 0);
	assert_int_equal(kl_reload_apply(&rr, &rf), 2); /* count and nets */
	kl_resolved_free(&rf);
	assert_int_equal(run.count, 4);
	assert_int_equal(run.nets.n, 1);
	assert_string_equal(run.name, "a"); /* restart-only: kept */
	kl_origin_format(&rr, ki("count"), o, sizeof(o));
	assert_string_equal(o, "file t.yaml:1");
	kl_resolved_free(&rr);
}

/* Quoting untrusted text: printable only, at most n bytes read (a buffer
 * need not be NUL-terminated), long text cut with "...". */
static void test_printable(void **state)
{
	(void)state;
	char buf[128], longs[100];
	const char raw[4] = { 'a', '\n', 'b', 'c' }; /* no NUL */
	assert_string_equal(kl_printable_n(raw, 3, buf, sizeof(buf)), "a?b");
	assert_string_equal(kl_printable("x\x01y", buf, sizeof(buf)), "x?y");
	memset(longs, 'z', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	kl_printable(longs, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 67);
	assert_string_equal(buf + 64, "...");
	assert_string_equal(kl_knob_str_or_null("") == NULL ? "none" : "set", "none");
	assert_string_equal(kl_knob_str_or_null("f"), "f");
}

/* A clean command line goes on to the files; --help and a bad flag stop
 * there. The file a flag names is read; a missing default file means
 * built-in values, a missing named one is an error; "" reads none. */
static void test_cli_layer_and_file_layer(void **state)
{
	(void)state;
	char dir[] = "/tmp/kl-knob-XXXXXX", f[64], arg[128], gone[96];
	struct kl_layer fl, file;
	enum kl_cli_action act;
	struct kl_errs e = { 0 };
	char *help[] = { "t", "--help", NULL }, *bad[] = { "t", "--bogus", NULL };
	char *named[] = { "t", arg, NULL };

	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/t.yaml", dir);
	FILE *fp = fopen(f, "w");
	assert_non_null(fp);
	fputs("count: 7\n", fp);
	fclose(fp);

	assert_int_equal(kl_cli_layer(&ks, 2, help, &fl, &act, NULL, NULL, &e), 0);
	assert_int_equal(act, KL_CLI_HELP);
	assert_int_equal(e.n, 0);
	assert_int_equal(kl_cli_layer(&ks, 2, bad, &fl, &act, NULL, NULL, &e), -1);
	assert_int_equal(e.n, 1);
	kl_errs_free(&e);
	memset(&e, 0, sizeof(e));

	snprintf(arg, sizeof(arg), "--path=%s", f);
	assert_int_equal(kl_cli_layer(&ks, 2, named, &fl, &act, NULL, NULL, &e), 1);
	memset(&file, 0, sizeof(file));
	assert_int_equal(kl_yaml_layer(&fl, "path", "/nonexistent/default.yaml", KL_L_FILE, NULL, 0, &file, &e), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(file.kind, KL_L_FILE);
	assert_true(file.set[ki("count")]);
	assert_int_equal(((struct tcfg *)file.v)->count, 7);
	kl_layer_free(&file);

	/* "name" is not on the command line: its default applies. */
	memset(&file, 0, sizeof(file));
	assert_int_equal(kl_yaml_layer(&fl, "name", "/nonexistent/default.yaml", KL_L_FILE, NULL, 0, &file, &e), 0);
	assert_int_equal(e.n, 0);
	assert_false(file.set[ki("count")]);
	kl_layer_free(&file);
	memset(&file, 0, sizeof(file));
	assert_int_equal(kl_yaml_layer(&fl, "name", "", KL_L_FILE, NULL, 0, &file, &e), 0);
	assert_null(file.ks);
	kl_layer_free(&fl);

	snprintf(gone, sizeof(gone), "%s/gone.yaml", dir);
	snprintf(arg, sizeof(arg), "--path=%s", gone);
	assert_int_equal(kl_cli_layer(&ks, 2, named, &fl, &act, NULL, NULL, &e), 1);
	memset(&file, 0, sizeof(file));
	assert_int_equal(kl_yaml_layer(&fl, "path", "", KL_L_FILE, NULL, 0, &file, &e), -1);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0], "--path "));
	assert_non_null(strstr(e.v[0], "gone.yaml: no such file"));
	kl_layer_free(&file);
	kl_layer_free(&fl);
	kl_errs_free(&e);
	unlink(f);
	rmdir(dir);
}

/* Lists: a repeatable flag (KF_REPEAT) replaces the file's list, one that
 * adds up (KF_ADD) extends it and names both places, a plain one keeps the
 * last flag; names as lists; where a value was set; no octal guessing. */
struct lcfg {
	struct kl_strs names;
	struct kl_cidrs add, rep;
	int64_t n;
};

#define LOFF(f) offsetof(struct lcfg, f)
static const struct kl_knob lrows[] = {
	{ "names", KT_STRS, LOFF(names), "", .flags = KF_REPEAT, .group = "G", .help = "h",
	  .key = "names" },
	{ "add", KT_CIDRS, LOFF(add), "", .flags = KF_ADD, .group = "G", .help = "h", .key = "add" },
	{ "rep", KT_CIDRS, LOFF(rep), "", .group = "G", .help = "h", .key = "rep" },
	{ "n", KT_INT, LOFF(n), "1", .min = -100, .max = 1000, .group = "G", .help = "h", .key = "n" },
};
static const struct kl_knobset lks = { "t", lrows, sizeof(lrows) / sizeof(lrows[0]),
				       sizeof(struct lcfg) };

static size_t lbuild(const char *yaml, int argc, char **argv, struct lcfg *c,
		     struct kl_resolved *r, struct kl_errs *e)
{
	return load(&lks, yaml, argc, argv, c, r, e);
}

static void test_lists(void **state)
{
	(void)state;
	struct lcfg c;
	struct kl_resolved r;
	struct kl_errs e = { 0 };
	char v[256], o[256];
	char *argv[] = { "t", "--names", "x", "--names", "y,z", "--add", "192.0.2.0/24",
			 "--add=198.18.0.0/15", "--rep", "1.0.0.0/8", "--rep", "2.0.0.0/8", NULL };
	assert_int_equal(lbuild("names: [a, b]\nadd: [10.0.0.0/8]\nrep: [10.0.0.0/8]\n", 12, argv,
				&c, &r, &e), 0);
	assert_int_equal(c.names.n, 3);
	assert_string_equal(c.names.v[0], "x");
	assert_string_equal(c.names.v[2], "z");
	kl_origin_format(&r, 0, o, sizeof(o));
	assert_string_equal(o, "flag --names");
	assert_int_equal(c.add.n, 3);
	kl_value_format(&lks, &c, 1, v, sizeof(v));
	assert_string_equal(v, "10.0.0.0/8,192.0.2.0/24,198.18.0.0/15");
	kl_origin_format(&r, 1, o, sizeof(o));
	assert_string_equal(o, "flag --add + file t.yaml:2");
	kl_value_format(&lks, &c, 2, v, sizeof(v));
	assert_string_equal(v, "2.0.0.0/8");
	kl_place_of(&r, 1, o, sizeof(o));
	assert_string_equal(o, "--add");
	kl_place_of(&r, 3, o, sizeof(o));
	assert_string_equal(o, "--n (default)");
	kl_resolved_free(&r);

	/* from the file alone: its lines, and names that need quoting */
	char *none[] = { "t", NULL };
	assert_int_equal(lbuild("n: -7\nnames: [\"a b\", c]\nadd: [10.0.0.0/8]\n", 1, none, &c, &r,
				&e), 0);
	kl_value_format(&lks, &c, 0, v, sizeof(v));
	assert_string_equal(v, "\"a b\",c");
	kl_origin_format(&r, 1, o, sizeof(o));
	assert_string_equal(o, "file t.yaml:3");
	kl_place_of(&r, 0, o, sizeof(o));
	assert_string_equal(o, "t.yaml:2: names");
	assert_int_equal(c.n, -7);
	kl_resolved_free(&r);

	/* refused: an empty name, a scalar for a list, leading zeros */
	assert_int_equal(lbuild("names: [\"\"]\nadd: 10.0.0.0/8\nn: 0100\n", 1, none, &c, &r, &e), 3);
	assert_string_equal(e.v[0], "t.yaml:1: names: item 1: empty");
	assert_string_equal(e.v[1], "t.yaml:2: add: expected a list of CIDRs, got a scalar");
	assert_string_equal(e.v[2], "t.yaml:3: n: expected an integer, got '0100'");
	kl_resolved_free(&r);
	kl_errs_free(&e);
	assert_int_equal(lbuild("n: -010\n", 1, none, &c, &r, &e), 1);
	kl_resolved_free(&r);
	kl_errs_free(&e);
	assert_int_equal(lbuild("n: 0\n", 1, none, &c, &r, &e), 0);
	kl_resolved_free(&r);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_precedence_and_origins),
		cmocka_unit_test(test_errors_name_place),
		cmocka_unit_test(test_value_quoting),
		cmocka_unit_test(test_reload_apply),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_cli_layer_and_file_layer),
		cmocka_unit_test(test_lists),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
