/* SPDX-License-Identifier: MPL-2.0 */
/* kl-enforcer configuration: YAML, flags, merge, and the `-n` golden output. */
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
#include "enforcer/config.h"

static unsigned parse(struct enf_config *c, struct enf_diag *d, const char *yaml)
{
	enf_config_defaults(c);
	memset(d, 0, sizeof(*d));
	return enf_config_parse_yaml(c, yaml, strlen(yaml), "t.yaml", d);
}

/* true if some recorded error contains every needle */
static bool has_err(const struct enf_diag *d, const char *a, const char *b)
{
	for (unsigned i = 0; i < d->n; i++)
		if (strstr(d->msg[i], a) && (!b || strstr(d->msg[i], b)))
			return true;
	return false;
}

static void dump(const struct enf_diag *d)
{
	for (unsigned i = 0; i < d->n; i++)
		print_message("diag: %s\n", d->msg[i]);
}

static void test_defaults(void **state)
{
	(void)state;
	struct enf_config c;
	enf_config_defaults(&c);
	assert_string_equal(c.pin_dir, "/sys/fs/bpf/kernloom");
	assert_string_equal(c.run_dir, "/run/kernloom");
	assert_int_equal(c.xdp_mode, KL_XDP_AUTO);
	assert_int_equal(c.features, ENF_FEAT_IQ_LEARNING);
	assert_int_equal(c.map_sizes[ENF_SZ_SRC], KL_SRC_MAX_DEFAULT);
	assert_int_equal(c.map_sizes[ENF_SZ_DENY], KL_DENY_MAX_DEFAULT);
	assert_int_equal(c.map_sizes[ENF_SZ_EDGE], KL_EDGE_MAX_DEFAULT);
	assert_int_equal(c.ephemeral_min, 32768);
	assert_int_equal(c.n_ifaces, 0);
	assert_int_equal(c.n_protect, 0);
	assert_int_equal(c.o_obj.src, ENF_SRC_DEFAULT);
	/* No object file: the shield built into kl-enforcer, and -n says so
	 * in a comment (read back, it leaves obj unset). */
	assert_string_equal(c.obj, "");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	enf_config_render(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "\n# obj: not set: the shield object built into kl-enforcer\n"));
	assert_null(strstr(buf, "\nobj:"));
	free(buf);
}

static void test_yaml_full(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
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
			"ephemeral_min: 0\n";
	unsigned n = parse(&c, &d, y);
	dump(&d);
	assert_int_equal(n, 0);
	assert_int_equal(c.n_ifaces, 2);
	assert_string_equal(c.ifaces[1], "veth1");
	assert_int_equal(c.o_ifaces.src, ENF_SRC_FILE);
	assert_int_equal(c.o_ifaces.line, 2);
	assert_string_equal(c.obj, "/opt/x.o");
	assert_int_equal(c.o_obj.line, 3);
	assert_int_equal(c.xdp_mode, KL_XDP_GENERIC);
	assert_int_equal(c.features, ENF_FEAT_GRAPH_ENFORCE);
	assert_true(enf_features_flow(c.features));
	assert_true(enf_features_edge(c.features));
	assert_int_equal(c.n_protect, 2);
	/* host bits are cleared by the CIDR parser */
	assert_int_equal(c.protect[0].cidr.addr[3], 0);
	assert_int_equal(c.protect[0].cidr.prefixlen, 24);
	assert_int_equal(c.protect[0].o.line, 9);
	assert_int_equal(c.protect[1].cidr.family, 6);
	assert_int_equal(c.protect[1].o.line, 10);
	assert_int_equal(c.map_sizes[ENF_SZ_SRC], 1000);
	assert_int_equal(c.o_map_sizes[ENF_SZ_SRC].line, 12);
	assert_int_equal(c.map_sizes[ENF_SZ_EDGE], 5);
	assert_int_equal(c.map_sizes[ENF_SZ_DENY], KL_DENY_MAX_DEFAULT);
	assert_int_equal(c.o_map_sizes[ENF_SZ_DENY].src, ENF_SRC_DEFAULT);
	assert_int_equal(c.ephemeral_min, 0);
}

static void test_yaml_every_error_listed(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
	const char *y = "interfaces: eth0\n"                    /* 1: not a list */
			"colour: blue\n"                        /* 2: unknown key */
			"map_sizes: {src: 0x10, rl: \"7\", foo: 1, deny: 0}\n" /* 3 */
			"ephemeral_min: 70000\n"                /* 4 */
			"protect: [1.2.3.4/33, 10.0.0.0/8]\n"   /* 5 */
			"features: heavy\n"                     /* 6 */
			"xdp_mode: [native]\n"                  /* 7 */
			"obj:\n"                                /* 8: empty */
			"features: light\n";                    /* 9: duplicate */
	unsigned n = parse(&c, &d, y);
	dump(&d);
	assert_int_equal(n, 12);
	assert_true(has_err(&d, "t.yaml:1: interfaces:", "expected a list"));
	assert_true(has_err(&d, "t.yaml:2: colour: unknown key", NULL));
	assert_true(has_err(&d, "t.yaml:3: map_sizes.src: expected an integer", "0x10"));
	assert_true(has_err(&d, "t.yaml:3: map_sizes.rl:", "the string"));
	assert_true(has_err(&d, "t.yaml:3: map_sizes.foo: unknown key", NULL));
	assert_true(has_err(&d, "t.yaml:3: map_sizes.deny: 0 is out of range", NULL));
	assert_true(has_err(&d, "t.yaml:4: ephemeral_min: 70000 is out of range", NULL));
	assert_true(has_err(&d, "t.yaml:5: protect: \"1.2.3.4/33\"", NULL));
	assert_true(has_err(&d, "t.yaml:6: features: unknown profile \"heavy\"", NULL));
	assert_true(has_err(&d, "t.yaml:7: xdp_mode:", "got a list"));
	assert_true(has_err(&d, "t.yaml:8: obj:", "empty value"));
	assert_true(has_err(&d, "t.yaml:9: features: duplicate key", NULL));
	/* the good entry on a bad line still counts */
	assert_int_equal(c.n_protect, 1);
	/* values that failed keep their defaults */
	assert_int_equal(c.ephemeral_min, 32768);
	assert_int_equal(c.map_sizes[ENF_SZ_SRC], KL_SRC_MAX_DEFAULT);
}

static void test_yaml_syntax_and_shape(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
	assert_int_equal(parse(&c, &d, "interfaces: [eth0\n"), 1);
	assert_true(has_err(&d, "t.yaml:", "YAML syntax error"));
	assert_int_equal(parse(&c, &d, "- a\n- b\n"), 1);
	assert_true(has_err(&d, "t.yaml:1:", "mapping of settings"));
	assert_int_equal(parse(&c, &d, "obj: /a\n---\nobj: /b\n"), 1);
	assert_true(has_err(&d, "more than one YAML document", NULL));
	/* empty file and comments only are fine */
	assert_int_equal(parse(&c, &d, ""), 0);
	assert_int_equal(parse(&c, &d, "# nothing\n"), 0);
	/* interface names are checked */
	assert_int_equal(parse(&c, &d, "interfaces: [averyveryverylongname0]\n"), 1);
	assert_true(has_err(&d, "t.yaml:1: interfaces:", "longer than 15"));
	assert_int_equal(parse(&c, &d, "interfaces: [\"a/b\"]\n"), 1);
	assert_true(has_err(&d, "invalid character", NULL));
	/* leading zero is refused, not read as octal */
	assert_int_equal(parse(&c, &d, "ephemeral_min: 0100\n"), 1);
}

static int cli(struct enf_cli *out, struct enf_diag *d, int argc, const char **argv)
{
	static char *copy[32];
	memset(d, 0, sizeof(*d));
	for (int i = 0; i < argc; i++)
		copy[i] = (char *)argv[i];
	copy[argc] = NULL;
	return enf_cli_parse(argc, copy, out, d);
}

static void test_cli_parse(void **state)
{
	(void)state;
	struct enf_cli c;
	struct enf_diag d;
	const char *ok[] = { "kl-enforcer", "--iface", "a", "--iface", "b", "--protect",
			     "10.0.0.0/8", "--xdp-mode", "native", "--detach-on-exit", "-n",
			     "--force", "--log-level", "debug" };
	assert_int_equal(cli(&c, &d, 14, ok), 0);
	assert_int_equal(c.n_ifaces, 2);
	assert_string_equal(c.ifaces[1], "b");
	assert_int_equal(c.n_protect, 1);
	assert_true(c.detach_on_exit);
	assert_true(c.check_only);
	assert_true(c.force);
	assert_string_equal(c.xdp_mode, "native");

	const char *bad[] = { "kl-enforcer", "--bogus", "stray", "--iface" };
	assert_int_equal(cli(&c, &d, 4, bad), -1);
	dump(&d);
	assert_true(has_err(&d, "--bogus: unknown option", NULL));
	assert_true(has_err(&d, "--iface: missing value", NULL));
	assert_true(has_err(&d, "stray: unexpected argument", NULL));

	/* parsing twice works (getopt state is reset) */
	const char *again[] = { "kl-enforcer", "--obj", "/x.o" };
	assert_int_equal(cli(&c, &d, 3, again), 0);
	assert_string_equal(c.obj, "/x.o");
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

static void test_flags_override_file(void **state)
{
	(void)state;
	char *path = write_tmp("interfaces: [eth0]\n"
			       "xdp_mode: native\n"
			       "protect: [198.18.0.0/24]\n"
			       "features: light\n");
	struct enf_cli c;
	struct enf_diag d;
	struct enf_config cfg;
	const char *argv[] = { "kl-enforcer", "--config", path, "--iface", "veth9", "--protect",
			       "fd00:6b6c::/48", "--features", "graph-learning" };
	assert_int_equal(cli(&c, &d, 9, argv), 0);
	assert_int_equal(enf_config_build(&cfg, &c, &d), 0);
	dump(&d);
	/* --iface replaces the file's list */
	assert_int_equal(cfg.n_ifaces, 1);
	assert_string_equal(cfg.ifaces[0], "veth9");
	assert_int_equal(cfg.o_ifaces.src, ENF_SRC_FLAG);
	/* --protect adds to it */
	assert_int_equal(cfg.n_protect, 2);
	assert_int_equal(cfg.protect[0].o.src, ENF_SRC_FILE);
	assert_int_equal(cfg.protect[1].o.src, ENF_SRC_FLAG);
	/* untouched file values stay, flags win */
	assert_int_equal(cfg.xdp_mode, KL_XDP_NATIVE);
	assert_int_equal(cfg.o_xdp_mode.line, 2);
	assert_int_equal(cfg.features, ENF_FEAT_GRAPH_LEARNING);
	assert_int_equal(cfg.o_features.src, ENF_SRC_FLAG);

	/* the same CIDR from file and flag is reported, naming both places */
	const char *dup[] = { "kl-enforcer", "--config", path, "--protect", "198.18.0.9/24",
			      "--iface", "x", "--iface", "x" };
	assert_int_equal(cli(&c, &d, 9, dup), 0);
	assert_int_equal(enf_config_build(&cfg, &c, &d), 2);
	dump(&d);
	assert_true(has_err(&d, "--protect: 198.18.0.0/24 is already listed", ":3)"));
	assert_true(has_err(&d, "--iface: \"x\" is listed twice", NULL));
	unlink(path);

	const char *missing[] = { "kl-enforcer", "--config", "/nonexistent/kl.yaml" };
	assert_int_equal(cli(&c, &d, 3, missing), 0);
	assert_int_equal(enf_config_build(&cfg, &c, &d), 1);
	assert_true(has_err(&d, "/nonexistent/kl.yaml: cannot open", NULL));
}

static char *render(const struct enf_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	enf_config_render(c, f);
	fclose(f);
	return buf;
}

/* The golden `-n` report: every value with its origin. */
static void test_render_golden(void **state)
{
	(void)state;
	char *path = write_tmp("interfaces: [eth0, eth1]\n"
			       "obj: /opt/kernloom/shield.bpf.o\n"
			       "protect:\n"
			       "  - 192.0.2.0/24\n"
			       "map_sizes:\n"
			       "  deny: 4096\n"
			       "decider_max: 3840\n");
	struct enf_cli c;
	struct enf_diag d;
	struct enf_config cfg;
	const char *argv[] = { "kl-enforcer", "--config", path, "--protect", "fd00:6b6c::/48",
			       "--run-dir", "/tmp/run dir", "--xdp-mode", "generic", "-n" };
	assert_int_equal(cli(&c, &d, 10, argv), 0);
	assert_int_equal(enf_config_build(&cfg, &c, &d), 0);
	char *out = render(&cfg);
	char want[4096];
	snprintf(want, sizeof(want),
		 "# kl-enforcer effective configuration\n"
		 "interfaces: [eth0, eth1]                 # %s:1\n"
		 "obj: /opt/kernloom/shield.bpf.o          # %s:2\n"
		 "pin_dir: /sys/fs/bpf/kernloom            # default\n"
		 "run_dir: \"/tmp/run dir\"                  # flag\n"
		 "xdp_mode: generic                        # flag\n"
		 "features: iq-learning                    # default\n"
		 "# protect: besides these, this host's own addresses and loopback\n"
		 "protect:\n"
		 "  - 192.0.2.0/24                         # %s:4\n"
		 "  - fd00:6b6c::/48                       # flag\n"
		 "map_sizes:\n"
		 "  src: 131072                            # default\n"
		 "  deny: 4096                             # %s:6\n"
		 "  deny_cidr: 65536                       # default\n"
		 "  allow: 65536                           # default\n"
		 "  rl: 262144                             # default\n"
		 "  flow: 32768                            # default\n"
		 "  edge: 65536                            # default\n"
		 "ephemeral_min: 32768                     # default\n"
		 "decider_user: kernloom-decider           # default\n"
		 "decider_rate: 10000                      # default\n"
		 "decider_max: 3840                        # %s:7\n"
		 "graph_user: kernloom-graph               # default\n"
		 "graph_rate: 5000                         # default\n"
		 "graph_max: 60000                         # default\n"
		 "sensor_user: kernloom-sensor             # default\n"
		 "user: kernloom-enforcer                  # default\n"
		 "new_source_min_rate: 100                 # default\n"
		 "new_source_max_ttl: 300                  # default\n"
		 "# flags only: force=no detach_on_exit=no log_level=info\n",
		 path, path, path, path, path);
	assert_string_equal(out, want);

	/* The report is itself a valid config that reproduces the values. */
	struct enf_config again;
	enf_config_defaults(&again);
	memset(&d, 0, sizeof(d));
	assert_int_equal(enf_config_parse_yaml(&again, out, strlen(out), "n.yaml", &d), 0);
	assert_string_equal(again.run_dir, "/tmp/run dir");
	assert_int_equal(again.n_protect, 2);
	assert_int_equal(again.map_sizes[ENF_SZ_DENY], 4096);
	assert_int_equal(again.xdp_mode, KL_XDP_GENERIC);
	free(out);
	unlink(path);
}

/* The links' users and quotas: YAML, flags, ranges, names. */
static void test_link_settings(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
	unsigned n = parse(&c, &d,
			   "decider_user: kl-dec\n"
			   "graph_user: _graph.d\n"
			   "decider_rate: 1\n"
			   "decider_max: 67108864\n"
			   "graph_rate: 10000000\n"
			   "graph_max: 7\n"
			   "user: kl-enf\n");
	dump(&d);
	assert_int_equal(n, 0);
	/* the user the enforcer becomes when started as root */
	assert_string_equal(c.user, "kl-enf");
	assert_int_equal(c.o_user.line, 7);
	assert_string_equal(c.decider_user, "kl-dec");
	assert_int_equal(c.o_decider_user.line, 1);
	assert_string_equal(c.graph_user, "_graph.d");
	assert_int_equal(c.decider_rate, 1);
	assert_int_equal(c.decider_max, ENF_QUOTA_MAX_MAX);
	assert_int_equal(c.graph_rate, ENF_QUOTA_RATE_MAX);
	assert_int_equal(c.graph_max, 7);
	assert_int_equal(c.o_graph_max.line, 6);

	n = parse(&c, &d,
		  "decider_user: 9lives\n"
		  "graph_user: \"a b\"\n"
		  "decider_rate: 0\n"
		  "decider_max: 67108865\n"
		  "graph_rate: fast\n"
		  "graph_max: [1]\n");
	dump(&d);
	assert_int_equal(n, 6);
	assert_true(has_err(&d, "t.yaml:1: decider_user: user name \"9lives\" has an invalid character at 0",
			    NULL));
	assert_true(has_err(&d, "t.yaml:2: graph_user:", "invalid character at 1"));
	assert_true(has_err(&d, "t.yaml:3: decider_rate: 0 is out of range (1..10000000)", NULL));
	assert_true(has_err(&d, "t.yaml:4: decider_max: 67108865 is out of range", NULL));
	assert_true(has_err(&d, "t.yaml:5: graph_rate: expected an integer", NULL));
	assert_true(has_err(&d, "t.yaml:6: graph_max: expected an integer, got a list", NULL));
	/* the defaults stay where a value was refused */
	assert_string_equal(c.decider_user, ENF_DECIDER_USER_DEFAULT);
	assert_int_equal(c.decider_rate, ENF_DECIDER_RATE_DEFAULT);

	struct enf_cli cl;
	const char *argv[] = { "kl-enforcer", "--decider-user", "alice", "--graph-user", "bob",
			       "--user", "carol" };
	assert_int_equal(cli(&cl, &d, 7, argv), 0);
	assert_int_equal(enf_config_build(&c, &cl, &d), 0);
	assert_string_equal(c.user, "carol");
	assert_int_equal(c.o_user.src, ENF_SRC_FLAG);
	assert_string_equal(c.decider_user, "alice");
	assert_int_equal(c.o_decider_user.src, ENF_SRC_FLAG);
	assert_string_equal(c.graph_user, "bob");
	const char *bad[] = { "kl-enforcer", "--graph-user", "" };
	assert_int_equal(cli(&cl, &d, 3, bad), 0);
	assert_int_equal(enf_config_build(&c, &cl, &d), 1);
	assert_true(has_err(&d, "--graph-user: user name \"\" must have 1..32 characters", NULL));
}

/* Quotas against map capacities: the defaults fit,
 * a role's total that one of its maps cannot hold after the operator's
 * reserve is refused, naming both keys and where they were set. */
static void test_quota_fits_maps(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
	memset(&d, 0, sizeof(d));
	enf_config_defaults(&c);
	assert_int_equal(enf_config_validate(&c, &d), 0);
	assert_int_equal(enf_operator_reserve(65536), 4096);
	assert_int_equal(enf_operator_reserve(1 << 20), 4096);
	assert_int_equal(enf_operator_reserve(256), 16);
	assert_int_equal(enf_operator_reserve(8), 1);
	assert_int_equal(enf_operator_reserve(1), 1);
	assert_true(c.graph_max <= c.map_sizes[ENF_SZ_EDGE] - enf_operator_reserve(c.map_sizes[ENF_SZ_EDGE]));

	/* The report's configuration: graph_max 100000, edge maps of 65536. */
	unsigned n = parse(&c, &d, "graph_max: 100000\n");
	assert_int_equal(n, 0);
	assert_int_equal(enf_config_validate(&c, &d), 1);
	dump(&d);
	assert_true(has_err(&d, "graph_max 100000 (t.yaml:1) does not fit in one map",
			    "map_sizes.edge 65536 (default) minus the operator's reserve 4096 leaves 61440"));

	/* The decider's total against the deny and the rate-limit maps. */
	n = parse(&c, &d, "map_sizes:\n  rl: 1024\n  deny: 4096\ndecider_max: 2000\n");
	assert_int_equal(n, 0);
	assert_int_equal(enf_config_validate(&c, &d), 1);
	dump(&d);
	assert_true(has_err(&d, "decider_max 2000 (t.yaml:4)", "map_sizes.rl 1024 (t.yaml:2)"));
	assert_false(has_err(&d, "map_sizes.deny", NULL));
	n = parse(&c, &d, "map_sizes:\n  rl: 1024\n  edge: 256\ndecider_max: 960\ngraph_max: 240\n");
	assert_int_equal(n + enf_config_validate(&c, &d), 0);

	/* With no protect list, -n says what is still protected and that
	 * nothing else is. */
	enf_config_defaults(&c);
	char *rep = render(&c);
	assert_non_null(strstr(rep, "# protect is empty: only this host's own addresses and loopback"));
	assert_non_null(strstr(rep, "nothing else (not the operator's address)"));
	free(rep);

	/* Through the whole build, as `kl-enforcer -n` runs it. */
	char *path = write_tmp("map_sizes:\n  edge: 1024\n");
	struct enf_cli cl;
	const char *argv[] = { "kl-enforcer", "--config", path, "-n" };
	assert_int_equal(cli(&cl, &d, 4, argv), 0);
	assert_int_equal(enf_config_build(&c, &cl, &d), 1);
	assert_true(has_err(&d, "graph_max 60000 (default)", "lower graph_max or raise map_sizes.edge"));
	unlink(path);
}

static void test_shipped_example_parses(void **state)
{
	(void)state;
	struct enf_config c;
	struct enf_diag d;
	memset(&d, 0, sizeof(d));
	enf_config_defaults(&c);
	/* the tests run from the repository root */
	if (access("etc/enforcer.yaml", R_OK) != 0)
		skip();
	assert_int_equal(enf_config_load_file(&c, "etc/enforcer.yaml", &d), 0);
	dump(&d);
	assert_int_equal(c.n_ifaces, 1);
	assert_true(c.n_protect >= 1);
}

/* The -n report is a config that gives the same values back, also for
 * values that need quoting and escaping to their full length: 32
 * interface names that are all quotes (the list used to overflow its
 * buffer) and a path of newlines and quotes near PATH_MAX (it used to be
 * cut mid-string, leaving an unterminated scalar). Found by
 * fuzz_enforcer_yaml. */
static void test_render_round_trip_worst_case(void **state)
{
	(void)state;
	static struct enf_config c, again;
	static struct enf_diag d;
	size_t cap = 64 * 1024, o = 0;
	char *yaml = malloc(cap);
	assert_non_null(yaml);

	o += (size_t)snprintf(yaml + o, cap - o, "interfaces: [");
	for (int i = 0; i < ENF_MAX_IFACES; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "%s'\"\"\"\"\"\"\"\"\"\"\"\"\"%02d'",
				      i ? ", " : "", i);
	o += (size_t)snprintf(yaml + o, cap - o, "]\nrun_dir: \"/");
	size_t plen = 1;
	for (; plen + 2 < PATH_MAX - 40; plen += 2)
		o += (size_t)snprintf(yaml + o, cap - o, "\\n\\\"");
	o += (size_t)snprintf(yaml + o, cap - o, "\"\n");
	assert_true(o < cap);

	assert_int_equal(parse(&c, &d, yaml), 0);
	assert_int_equal(c.n_ifaces, ENF_MAX_IFACES);
	assert_int_equal(strlen(c.run_dir), plen);
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	enf_config_render(&c, m);
	fclose(m);
	enf_config_defaults(&again);
	memset(&d, 0, sizeof(d));
	if (enf_config_parse_yaml(&again, out, len, "n.yaml", &d) != 0) {
		dump(&d);
		fail_msg("the -n report does not parse");
	}
	assert_int_equal(again.n_ifaces, ENF_MAX_IFACES);
	for (int i = 0; i < ENF_MAX_IFACES; i++)
		assert_string_equal(again.ifaces[i], c.ifaces[i]);
	assert_string_equal(again.run_dir, c.run_dir);
	free(out);
	free(yaml);

	/* An IPv6 host address ending in "::" is rendered quoted: plain, it
	 * reads back as a mapping key. Found by fuzz_enforcer_yaml. */
	assert_int_equal(parse(&c, &d, "protect:\n  - 2001:db8:100::0000\n  - fd00:6b6c::/48\n"), 0);
	out = NULL;
	m = open_memstream(&out, &len);
	enf_config_render(&c, m);
	fclose(m);
	assert_non_null(strstr(out, "  - \"2001:db8:100::\" "));
	assert_non_null(strstr(out, "  - fd00:6b6c::/48 "));
	enf_config_defaults(&again);
	memset(&d, 0, sizeof(d));
	if (enf_config_parse_yaml(&again, out, len, "n.yaml", &d) != 0) {
		dump(&d);
		fail_msg("the -n report does not parse");
	}
	assert_int_equal(again.n_protect, 2);
	assert_memory_equal(&again.protect[0].cidr, &c.protect[0].cidr, sizeof(c.protect[0].cidr));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_yaml_full),
		cmocka_unit_test(test_yaml_every_error_listed),
		cmocka_unit_test(test_yaml_syntax_and_shape),
		cmocka_unit_test(test_cli_parse),
		cmocka_unit_test(test_flags_override_file),
		cmocka_unit_test(test_render_golden),
		cmocka_unit_test(test_render_round_trip_worst_case),
		cmocka_unit_test(test_link_settings),
		cmocka_unit_test(test_quota_fits_maps),
		cmocka_unit_test(test_shipped_example_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
