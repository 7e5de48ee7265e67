/* SPDX-License-Identifier: MPL-2.0 */
/* kl-enforcer configuration: its knob table over enforcer.yaml and flags,
 * the checks across settings, -n and reload. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/shield.h"
#include "common/log.h"
#include "enforcer/config.h"

static struct kl_errs errs;

static void reset_errs(void)
{
	kl_errs_free(&errs);
}

static void dump(void)
{
	for (size_t i = 0; i < errs.n; i++)
		print_message("err: %s\n", errs.v[i]);
}

/* true if some recorded error contains every needle */
static bool has_err(const char *a, const char *b)
{
	for (size_t i = 0; i < errs.n; i++)
		if (strstr(errs.v[i], a) && (!b || strstr(errs.v[i], b)))
			return true;
	return false;
}

/* enforcer.yaml text -> o; returns the number of errors. */
static size_t parse(struct enf_opts *o, const char *yaml)
{
	reset_errs();
	enf_config_from_text(o, yaml, strlen(yaml), "t.yaml", &errs);
	dump();
	return errs.n;
}

static size_t build(struct enf_opts *o, int argc, const char **argv)
{
	reset_errs();
	enf_config_build(o, argc, (char *const *)argv, &errs);
	dump();
	return errs.n;
}

static const struct kl_knob_origin *origin(const struct enf_opts *o, const char *knob)
{
	int ki = kl_knob_index(&enf_knobs, knob);
	assert_true(ki >= 0);
	return &o->r.o[ki];
}

static char *print(const struct enf_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	enf_config_print(o, f);
	fclose(f);
	return buf;
}

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/kl-test-enf-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	static struct enf_opts o;
	assert_int_equal(enf_config_defaults(&o), 0);
	const struct enf_config *c = &o.c;
	assert_string_equal(c->pin_dir, "/sys/fs/bpf/kernloom");
	assert_string_equal(c->run_dir, "/run/kernloom");
	assert_string_equal(c->audit_dir, ENF_AUDIT_DIR_DEFAULT);
	assert_string_equal(c->audit_key, ENF_AUDIT_KEY_DEFAULT);
	assert_string_equal(c->metrics_file, "");
	assert_string_equal(c->user, ENF_USER_DEFAULT);
	assert_int_equal(c->xdp_mode, KL_XDP_AUTO);
	assert_int_equal(c->features, ENF_FEAT_IQ_LEARNING);
	assert_int_equal(c->map_sizes[ENF_SZ_SRC], KL_SRC_MAX_DEFAULT);
	assert_int_equal(c->map_sizes[ENF_SZ_DENY], KL_DENY_MAX_DEFAULT);
	assert_int_equal(c->map_sizes[ENF_SZ_EDGE], KL_EDGE_MAX_DEFAULT);
	assert_int_equal(c->ephemeral_min, KL_EPHEMERAL_MIN_DEFAULT);
	assert_int_equal(c->decider_max, ENF_DECIDER_MAX_DEFAULT);
	assert_int_equal(c->graph_max, ENF_GRAPH_MAX_DEFAULT);
	assert_int_equal(c->newsrc_min_rate, ENF_NEWSRC_MIN_RATE_DEFAULT);
	assert_int_equal(c->newsrc_max_ttl, ENF_NEWSRC_MAX_TTL_DEFAULT);
	assert_int_equal(c->log_level, KL_LOG_INFO);
	assert_int_equal(c->ifaces.n, 0);
	assert_int_equal(c->protect.n, 0);
	/* No object file: the shield built into kl-enforcer. */
	assert_string_equal(c->obj, "");
	assert_false(enf_config_given(c, "obj"));
	/* -n names every setting, the flag-only ones too, and says what is
	 * protected with no list. */
	char *out = print(&o);
	static const char *const lines[] = {
		"\nobj                        \"\"                                   default\n",
		"\naudit-dir                  /var/log/kernloom/enforcer           default\n",
		"\naudit-key                  /var/lib/kernloom/enforcer/audit.key default\n",
		"\nmetrics-file               \"\"                                   default\n",
		"\nforce                      false                                default\n",
		"\nlog-level                  info                                 default\n",
		"\nmap-size-edge              65536                                default\n",
		"# protect is empty: only this host's own addresses and loopback",
		"nothing else (not the operator's address)",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (strstr(out, lines[i]) == NULL)
			fail_msg("-n lacks <%s>:\n%s", lines[i], out);
	/* one line per knob besides headers, comments and blank lines */
	size_t settings = 0;
	for (const char *l = out; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		if (*l != '#' && *l != '\n')
			settings++;
		l = nl ? nl + 1 : NULL;
	}
	assert_int_equal(settings, enf_knobs.n);
	free(out);
	enf_opts_free(&o);
}

static void test_yaml_full(void **state)
{
	(void)state;
	static struct enf_opts o;
	const char *y = "# comment\n"
			"interfaces: [eth0, veth1]\n"
			"obj: /opt/x.o\n"
			"pin_dir: /sys/fs/bpf/t\n"
			"run_dir: /tmp/r\n"
			"xdp_mode: generic\n"
			"features: graph-enforce\n"
			"protect:\n"
			"  - 198.18.0.7/24\n"
			"  - fd00:6b6c::1\n"
			"map_sizes:\n"
			"  src: 1000\n"
			"  edge: 5\n"
			"ephemeral_min: 0\n"
			"graph_max: 4\n";
	assert_int_equal(parse(&o, y), 0);
	const struct enf_config *c = &o.c;
	assert_int_equal(c->ifaces.n, 2);
	assert_string_equal(c->ifaces.v[1], "veth1");
	assert_int_equal(origin(&o, "iface")->kind, KL_L_FILE);
	assert_int_equal(origin(&o, "iface")->line, 2);
	assert_string_equal(c->obj, "/opt/x.o");
	assert_int_equal(origin(&o, "obj")->line, 3);
	assert_int_equal(c->xdp_mode, KL_XDP_GENERIC);
	assert_int_equal(c->features, ENF_FEAT_GRAPH_ENFORCE);
	assert_true(enf_features_flow(c->features));
	assert_true(enf_features_edge(c->features));
	assert_int_equal(c->protect.n, 2);
	/* host bits are cleared by the CIDR parser */
	assert_int_equal(c->protect.v[0].addr[3], 0);
	assert_int_equal(c->protect.v[0].prefixlen, 24);
	assert_int_equal(c->protect.v[1].family, 6);
	assert_int_equal(c->map_sizes[ENF_SZ_SRC], 1000);
	assert_int_equal(origin(&o, "map-size-src")->line, 12);
	assert_int_equal(c->map_sizes[ENF_SZ_EDGE], 5);
	assert_int_equal(c->map_sizes[ENF_SZ_DENY], KL_DENY_MAX_DEFAULT);
	assert_int_equal(origin(&o, "map-size-deny")->kind, KL_L_DEFAULT);
	assert_int_equal(c->ephemeral_min, 0);
	assert_true(enf_config_given(c, "graph-max"));
	char from[128];
	enf_config_origin(c, "graph-max", from, sizeof(from));
	assert_string_equal(from, "file t.yaml:15");
	enf_opts_free(&o);
}

static void test_yaml_every_error_listed(void **state)
{
	(void)state;
	static struct enf_opts o;
	const char *y = "interfaces: eth0\n"                    /* 1: not a list */
			"colour: blue\n"                        /* 2: unknown key */
			"map_sizes: {src: 0x10, foo: 1, deny: 0}\n" /* 3 */
			"ephemeral_min: 70000\n"                /* 4 */
			"protect: [1.2.3.4/33, 10.0.0.0/8]\n"   /* 5 */
			"features: heavy\n"                     /* 6 */
			"xdp_mode: [native]\n"                  /* 7 */
			"pin_dir: ''\n"                         /* 8: empty */
			"features: light\n"                     /* 9: duplicate */
			"decider_rate: 0100\n";                 /* 10: octal or decimal? */
	assert_int_equal(parse(&o, y), 12);
	assert_true(has_err("t.yaml:1: interfaces: expected a list of names, got a scalar", NULL));
	assert_true(has_err("t.yaml:2: colour: unknown key", NULL));
	assert_true(has_err("t.yaml:3: map_sizes.src: expected a non-negative integer", "0x10"));
	assert_true(has_err("t.yaml:3: map_sizes.foo: unknown key (valid here: src, deny, deny_cidr, "
			    "allow, rl, flow, edge)", NULL));
	assert_true(has_err("t.yaml:3: map_sizes.deny: 0 is out of range (must be >= 1 and <= 16777216)",
			    NULL));
	assert_true(has_err("t.yaml:4: ephemeral_min: 70000 is out of range", NULL));
	assert_true(has_err("t.yaml:5: protect: item 1:", "1.2.3.4/33"));
	assert_true(has_err("t.yaml:6: features: 'heavy' is not one of light | iq-learning", NULL));
	assert_true(has_err("t.yaml:7: xdp_mode: expected a value, got a list", NULL));
	assert_true(has_err("t.yaml:8: pin_dir: must not be empty", NULL));
	assert_true(has_err("t.yaml:9: duplicate key 'features'", NULL));
	assert_true(has_err("t.yaml:10: decider_rate: expected a non-negative integer, got '0100'",
			    NULL));
	/* a refused configuration is not returned half-built */
	assert_null(o.c.pin_dir);
}

static void test_yaml_syntax_and_shape(void **state)
{
	(void)state;
	static struct enf_opts o;
	assert_int_equal(parse(&o, "interfaces: [eth0\n"), 1);
	assert_true(has_err("t.yaml:", "YAML error"));
	assert_int_equal(parse(&o, "- a\n- b\n"), 1);
	assert_true(has_err("t.yaml:1:", "expected a mapping of settings"));
	assert_int_equal(parse(&o, "obj: /a\n---\nobj: /b\n"), 1);
	assert_true(has_err("only one YAML document", NULL));
	assert_int_equal(parse(&o, "obj: &a /a\n"), 1);
	assert_true(has_err("anchors", NULL));
	/* empty file and comments only are fine */
	assert_int_equal(parse(&o, ""), 0);
	enf_opts_free(&o);
	assert_int_equal(parse(&o, "# nothing\n"), 0);
	enf_opts_free(&o);
	/* interface and user names are checked, naming the place */
	assert_int_equal(parse(&o, "interfaces: [averyveryverylongname0]\n"), 1);
	assert_true(has_err("t.yaml:1: interfaces: interface name", "longer than 15"));
	assert_int_equal(parse(&o, "interfaces: [\"a/b\"]\n"), 1);
	assert_true(has_err("t.yaml:1: interfaces:", "invalid character"));
	assert_int_equal(parse(&o, "interfaces: [x, y, x]\n"), 1);
	assert_true(has_err("t.yaml:1: interfaces: \"x\" is listed twice", NULL));
	assert_int_equal(parse(&o, "decider_user: 9lives\ngraph_user: \"a b\"\n"), 2);
	assert_true(has_err("t.yaml:1: decider_user: user name \"9lives\" has an invalid character at 0",
			    NULL));
	assert_true(has_err("t.yaml:2: graph_user:", "invalid character at 1"));
}

/* Flags over the file: a scalar flag wins, --iface (repeatable) replaces
 * the file's interfaces, --protect adds to its list; -n names both places. */
static void test_flags_and_file(void **state)
{
	(void)state;
	static struct enf_opts o;
	char *path = write_tmp("interfaces: [eth0]\n"
			       "xdp_mode: native\n"
			       "protect: [198.18.0.0/24]\n"
			       "features: light\n");
	const char *argv[] = { "kl-enforcer", "--config", path, "--iface", "veth9", "--iface",
			       "veth10", "--protect", "fd00:6b6c::/48", "--features",
			       "graph-learning", "--metrics-file=/tmp/m.prom", "-n", "--force" };
	assert_int_equal(build(&o, 14, argv), 0);
	const struct enf_config *c = &o.c;
	assert_int_equal(c->ifaces.n, 2);
	assert_string_equal(c->ifaces.v[0], "veth9");
	assert_string_equal(c->ifaces.v[1], "veth10");
	assert_int_equal(origin(&o, "iface")->kind, KL_L_FLAG);
	assert_int_equal(origin(&o, "iface")->also_kind, KL_L_DEFAULT);
	assert_int_equal(c->protect.n, 2);
	assert_int_equal(c->protect.v[0].family, 4); /* the file's items first */
	assert_int_equal(c->protect.v[1].family, 6);
	assert_int_equal(origin(&o, "protect")->kind, KL_L_FLAG);
	assert_int_equal(origin(&o, "protect")->also_kind, KL_L_FILE);
	assert_int_equal(origin(&o, "protect")->also_line, 3);
	assert_int_equal(c->xdp_mode, KL_XDP_NATIVE);
	assert_int_equal(origin(&o, "xdp-mode")->line, 2);
	assert_int_equal(c->features, ENF_FEAT_GRAPH_LEARNING);
	assert_string_equal(c->metrics_file, "/tmp/m.prom");
	assert_true(c->config_check);
	assert_true(c->force);
	assert_false(c->detach_on_exit);
	char *out = print(&o);
	char want[256];
	snprintf(want, sizeof(want), "\n%-26s %-36s flag --protect + file %s:3\n", "protect",
		 "198.18.0.0/24,fd00:6b6c::/48", path);
	if (strstr(out, want) == NULL)
		fail_msg("-n lacks <%s>:\n%s", want, out);
	snprintf(want, sizeof(want), "\n%-26s %-36s flag --metrics-file\n", "metrics-file",
		 "/tmp/m.prom");
	assert_non_null(strstr(out, want));
	free(out);
	enf_opts_free(&o);

	/* the same CIDR from file and flag is reported, and so is an
	 * interface named twice */
	const char *dup[] = { "kl-enforcer", "--config", path, "--protect", "198.18.0.9/24",
			      "--iface", "x", "--iface", "x" };
	assert_int_equal(build(&o, 9, dup), 2);
	assert_true(has_err("--protect: 198.18.0.0/24 is listed twice", NULL));
	assert_true(has_err("--iface: \"x\" is listed twice", NULL));

	/* an empty --config reads no file, not even the default */
	const char *none[] = { "kl-enforcer", "--config=", "--graph-user", "" };
	assert_int_equal(build(&o, 4, none), 1);
	assert_true(has_err("--graph-user: must not be empty", NULL));
	unlink(path);

	const char *missing[] = { "kl-enforcer", "--config", "/nonexistent/kl.yaml" };
	assert_int_equal(build(&o, 3, missing), 1);
	assert_true(has_err("--config /nonexistent/kl.yaml: no such file", NULL));

	const char *bad[] = { "kl-enforcer", "--bogus", "stray", "--xdp-mode", "turbo", "--iface" };
	assert_int_equal(build(&o, 6, bad), 4);
	assert_true(has_err("--bogus: unknown flag", NULL));
	assert_true(has_err("unexpected argument 'stray'", NULL));
	assert_true(has_err("--xdp-mode: 'turbo' is not one of auto | native | generic", NULL));
	assert_true(has_err("--iface needs a value", NULL));

	const char *help[] = { "kl-enforcer", "--help-man-file" };
	assert_int_equal(build(&o, 2, help), 0);
	assert_int_equal(o.action, KL_CLI_HELP_MAN_FILE);
	enf_opts_free(&o);
}

/* The links' users and quotas: file, flags, ranges. */
static void test_link_settings(void **state)
{
	(void)state;
	static struct enf_opts o;
	assert_int_equal(parse(&o, "decider_user: kl-dec\n"
				   "graph_user: _graph.d\n"
				   "decider_rate: 1\n"
				   "decider_max: 1000\n"
				   "graph_rate: 10000000\n"
				   "graph_max: 7\n"
				   "user: kl-enf\n"),
			 0);
	assert_string_equal(o.c.user, "kl-enf");
	assert_int_equal(origin(&o, "user")->line, 7);
	assert_string_equal(o.c.decider_user, "kl-dec");
	assert_string_equal(o.c.graph_user, "_graph.d");
	assert_int_equal(o.c.decider_rate, 1);
	assert_int_equal(o.c.decider_max, 1000);
	assert_int_equal(o.c.graph_rate, ENF_QUOTA_RATE_MAX);
	assert_int_equal(o.c.graph_max, 7);
	enf_opts_free(&o);

	assert_int_equal(parse(&o, "decider_rate: 0\n"
				   "decider_max: 67108865\n"
				   "graph_rate: fast\n"
				   "graph_max: [1]\n"),
			 4);
	assert_true(has_err("t.yaml:1: decider_rate: 0 is out of range (must be >= 1 and <= 10000000)",
			    NULL));
	assert_true(has_err("t.yaml:2: decider_max: 67108865 is out of range", NULL));
	assert_true(has_err("t.yaml:3: graph_rate: expected a non-negative integer", NULL));
	assert_true(has_err("t.yaml:4: graph_max: expected a value, got a list", NULL));

	const char *argv[] = { "kl-enforcer", "--config=", "--decider-user", "alice",
			       "--graph-user", "bob", "--user", "carol", "--new-source-max-ttl", "0" };
	assert_int_equal(build(&o, 10, argv), 0);
	assert_string_equal(o.c.user, "carol");
	assert_int_equal(origin(&o, "user")->kind, KL_L_FLAG);
	assert_true(enf_config_given(&o.c, "decider-user"));
	assert_false(enf_config_given(&o.c, "sensor-user"));
	assert_string_equal(o.c.graph_user, "bob");
	assert_int_equal(o.c.newsrc_max_ttl, 0);
	enf_opts_free(&o);
}

/* Quotas against map capacities: the defaults fit; a role's total that
 * one of its maps cannot hold after the operator's reserve is refused,
 * naming both settings and where they were set. */
static void test_quota_fits_maps(void **state)
{
	(void)state;
	static struct enf_opts o;
	assert_int_equal(enf_operator_reserve(65536), 4096);
	assert_int_equal(enf_operator_reserve(1 << 20), 4096);
	assert_int_equal(enf_operator_reserve(256), 16);
	assert_int_equal(enf_operator_reserve(8), 1);
	assert_int_equal(enf_operator_reserve(1), 1);
	assert_int_equal(enf_config_defaults(&o), 0);
	enf_opts_free(&o);

	assert_int_equal(parse(&o, "graph_max: 100000\n"), 1);
	assert_true(has_err("graph-max=100000 (file t.yaml:1) does not fit in one map",
			    "map-size-edge=65536 (default) minus the operator's reserve 4096 leaves "
			    "61440; lower --graph-max or raise --map-size-edge"));

	/* The decider's total against the deny and the rate-limit maps. */
	assert_int_equal(parse(&o, "map_sizes:\n  rl: 1024\n  deny: 4096\ndecider_max: 2000\n"), 1);
	assert_true(has_err("decider-max=2000 (file t.yaml:4)", "map-size-rl=1024 (file t.yaml:2)"));
	assert_false(has_err("map-size-deny", NULL));
	assert_int_equal(parse(&o, "map_sizes:\n  rl: 1024\n  edge: 256\ndecider_max: 960\n"
				   "graph_max: 240\n"), 0);
	enf_opts_free(&o);

	/* Through the whole build, as `kl-enforcer -n` runs it. */
	const char *argv[] = { "kl-enforcer", "--config=", "--map-size-edge", "1024", "-n" };
	assert_int_equal(build(&o, 5, argv), 1);
	assert_true(has_err("graph-max=60000 (default)", "map-size-edge=1024 (flag --map-size-edge)"));
}

static void test_shipped_example_parses(void **state)
{
	(void)state;
	static struct enf_opts o;
	/* the tests run from the repository root */
	if (access("etc/enforcer.yaml", R_OK) != 0)
		skip();
	const char *argv[] = { "kl-enforcer", "--config", "etc/enforcer.yaml" };
	assert_int_equal(build(&o, 3, argv), 0);
	assert_int_equal(o.c.ifaces.n, 1);
	assert_true(o.c.protect.n >= 1);
	enf_opts_free(&o);
}

/* SIGHUP: the new-source bounds change live; any other change keeps the
 * running value; a bad file keeps everything. */
static void test_reload(void **state)
{
	(void)state;
	static struct enf_opts run;
	char *path = write_tmp("new_source_min_rate: 100\nmap_sizes: {flow: 32768}\n"
			       "protect: [192.0.2.0/24]\n");
	const char *argv[] = { "kl-enforcer", "--config", path };
	assert_int_equal(build(&run, 3, argv), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("new_source_min_rate: 50\nnew_source_max_ttl: 60\nmap_sizes: {flow: 4096}\n"
	      "protect: [198.18.0.0/24]\n", f);
	fclose(f);
	assert_int_equal(enf_config_reload(&run, 3, (char *const *)argv), 2);
	assert_int_equal(run.c.newsrc_min_rate, 50);
	assert_int_equal(run.c.newsrc_max_ttl, 60);
	assert_int_equal(origin(&run, "new-source-max-ttl")->line, 2);
	assert_int_equal(run.c.map_sizes[ENF_SZ_FLOW], 32768);
	assert_int_equal(run.c.protect.n, 1);
	assert_int_equal(run.c.protect.v[0].addr[0], 192);
	/* Nothing changed: nothing live. */
	assert_int_equal(enf_config_reload(&run, 3, (char *const *)argv), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("new_source_min_rate: lots\n", f);
	fclose(f);
	assert_int_equal(enf_config_reload(&run, 3, (char *const *)argv), -1);
	assert_int_equal(run.c.newsrc_min_rate, 50);
	unlink(path);
	enf_opts_free(&run);
}

static int teardown(void **state)
{
	(void)state;
	reset_errs();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_defaults, teardown),
		cmocka_unit_test_teardown(test_yaml_full, teardown),
		cmocka_unit_test_teardown(test_yaml_every_error_listed, teardown),
		cmocka_unit_test_teardown(test_yaml_syntax_and_shape, teardown),
		cmocka_unit_test_teardown(test_flags_and_file, teardown),
		cmocka_unit_test_teardown(test_link_settings, teardown),
		cmocka_unit_test_teardown(test_quota_fits_maps, teardown),
		cmocka_unit_test_teardown(test_shipped_example_parses, teardown),
		cmocka_unit_test_teardown(test_reload, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
