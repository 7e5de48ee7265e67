/* SPDX-License-Identifier: MPL-2.0 */
/* klctl: strict argument parsing into kl_ctl_req, aliases, help, printers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/cmds.h"
#include "ctl/daemons.h"

static char err[320];

/* Parse a space-separated command line (no quoting needed here). */
static int parse(const char *line, struct ctl_call *c)
{
	static char buf[512];
	static char *argv[32];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	err[0] = '\0';
	int rc = ctl_parse(argc, argv, c, err, sizeof(err));
	if (rc < 0)
		print_message("usage error: %s\n", err);
	return rc;
}

/* The request must survive the wire decoder the enforcer uses. */
static void assert_decodes(const struct ctl_call *c)
{
	uint8_t wire[KL_CTL_REQ_LEN];
	struct kl_ctl_req back;
	char why[256];
	kl_ctl_req_encode(&c->req, wire);
	int rc = kl_ctl_req_decode(wire, sizeof(wire), &back, why, sizeof(why));
	if (rc < 0)
		print_message("decoder: %s\n", why);
	assert_int_equal(rc, 0);
	assert_memory_equal(&back.addr, &c->req.addr, sizeof(back.addr));
}

static void test_simple_commands(void **state)
{
	(void)state;
	struct ctl_call c;
	static const struct {
		const char *line;
		uint16_t cmd;
	} t[] = {
		{ "status enforcer", KL_CTL_STATUS }, { "stats", KL_CTL_STATS },
		{ "allow list", KL_CTL_ALLOW_LIST }, { "deny list", KL_CTL_DENY_LIST },
		{ "rl off", KL_CTL_RL_OFF },	   { "rl list", KL_CTL_RL_LIST },
		{ "edge list", KL_CTL_EDGE_LIST },   { "reset", KL_CTL_RESET },
		{ "list-allow", KL_CTL_ALLOW_LIST }, { "list-deny", KL_CTL_DENY_LIST },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(parse(t[i].line, &c), 0);
		assert_int_equal(c.req.cmd, t[i].cmd);
		assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_ENFORCER);
		assert_decodes(&c);
	}
}

static void test_deny(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("deny add 203.0.113.7 --ttl 2s", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_DENY_ADD);
	assert_int_equal(c.req.addr.family, 4);
	assert_int_equal(c.req.addr.prefixlen, 32);
	assert_int_equal(c.req.ttl_ms, 2000);
	assert_decodes(&c);

	assert_int_equal(parse("deny add 198.18.0.7/24", &c), 0);
	assert_int_equal(c.req.addr.prefixlen, 24);
	assert_int_equal(c.req.addr.addr[3], 0); /* host bits cleared */
	assert_int_equal(c.req.ttl_ms, 0);
	assert_decodes(&c);

	assert_int_equal(parse("deny add fd00:6b6c::1 --ttl=336h", &c), 0);
	assert_int_equal(c.req.addr.family, 6);
	assert_int_equal(c.req.ttl_ms, 336ull * 3600 * 1000);
	assert_decodes(&c);

	assert_int_equal(parse("deny del fd00:6b6c::/48", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_DENY_DEL);
	assert_decodes(&c);

	/* TTL below a millisecond rounds up, never down to "permanent" */
	assert_int_equal(parse("deny add 1.2.3.4 --ttl 1us", &c), 0);
	assert_int_equal(c.req.ttl_ms, 1);
}

static void test_usage_errors_name_the_argument(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("deny add 198.18.0.300", &c), -1);
	assert_non_null(strstr(err, "198.18.0.300"));
	assert_int_equal(parse("deny add 1.2.3", &c), -1);
	assert_int_equal(parse("deny add 1.2.3.4/33", &c), -1);
	assert_int_equal(parse("deny add ::1/129", &c), -1);
	assert_int_equal(parse("deny add", &c), -1);
	assert_non_null(strstr(err, "needs IP|CIDR"));
	assert_int_equal(parse("deny add 1.2.3.4 --ttl", &c), -1);
	assert_non_null(strstr(err, "--ttl needs a value"));
	assert_int_equal(parse("deny add 1.2.3.4 --ttl 5 ", &c), -1);
	assert_non_null(strstr(err, "bad duration"));
	assert_int_equal(parse("deny add 1.2.3.4 --tll 5s", &c), -1);
	assert_non_null(strstr(err, "unknown option \"--tll\""));
	assert_int_equal(parse("deny add 1.2.3.4 5.6.7.8", &c), -1);
	assert_non_null(strstr(err, "unexpected argument \"5.6.7.8\""));
	assert_int_equal(parse("deny add 1.2.3.4 --ttl 1s --ttl 2s", &c), -1);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(parse("deny frobnicate", &c), -1);
	assert_non_null(strstr(err, "unknown subcommand"));
	assert_int_equal(parse("deny", &c), -1);
	assert_non_null(strstr(err, "needs a subcommand"));
	assert_int_equal(parse("launch-missiles", &c), -1);
	assert_non_null(strstr(err, "unknown command"));
	/* single-address commands refuse prefixes */
	assert_int_equal(parse("rl set-ip 1.2.3.0/24 --rate 1 --burst 1", &c), -1);
	assert_int_equal(parse("add-deny-ip 1.2.3.0/24", &c), -1);
}

static void test_rate_limits(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("rl set --rate 1000 --burst 2000", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_RL_SET);
	assert_int_equal(c.req.rate, 1000);
	assert_int_equal(c.req.burst, 2000);
	assert_decodes(&c);
	assert_int_equal(parse("rl set --rate 1000", &c), -1);
	assert_non_null(strstr(err, "--burst"));
	assert_int_equal(parse("rl set --rate 0 --burst 5", &c), -1); /* global 0 = drop all */
	assert_int_equal(parse("rl set --rate -5 --burst 5", &c), -1);
	assert_int_equal(parse("rl set --rate 10 --burst 0", &c), -1);
	assert_int_equal(parse("rl set --rate 007 --burst 5", &c), -1);
	assert_int_equal(parse("rl set --rate 100000001 --burst 5", &c), -1);

	assert_int_equal(parse("rl set-ip fd00:6b6c::9 --rate 0 --burst 1 --ttl 2s", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_RL_SET_IP);
	assert_int_equal(c.req.rate, 0); /* per-source 0 = drop all, allowed */
	assert_int_equal(c.req.ttl_ms, 2000);
	assert_decodes(&c);
	/* flags may come before the positional */
	assert_int_equal(parse("rl set-ip --rate 5 --burst 9 1.2.3.4", &c), 0);
	assert_int_equal(c.req.burst, 9);
	assert_int_equal(parse("rl unset-ip 1.2.3.4", &c), 0);
	assert_decodes(&c);
}

static void test_top_events_sampling(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("top-src", &c), 0);
	assert_int_equal(c.req.count, 10);
	assert_int_equal(c.req.mode, KL_TOP_PKTS);
	assert_int_equal(parse("top-src -n 20 --by droprl", &c), 0);
	assert_int_equal(c.req.count, 20);
	assert_int_equal(c.req.mode, KL_TOP_DROPRL);
	assert_decodes(&c);
	/* the seeds' spelling */
	assert_int_equal(parse("top-src -n 20 -by drops", &c), 0);
	assert_int_equal(c.req.mode, KL_TOP_DROPS);
	assert_int_equal(parse("top-src -n 20 --by size", &c), -1);
	assert_int_equal(parse("top-src -n 0", &c), -1);
	assert_int_equal(parse("events", &c), 0);
	assert_int_equal(c.req.count, 100);
	assert_int_equal(parse("events --count 5", &c), 0);
	assert_int_equal(c.req.count, 5);
	assert_decodes(&c);

	assert_int_equal(parse("sampling 1023", &c), 0);
	assert_int_equal(c.req.count, 1023);
	assert_decodes(&c);
	assert_int_equal(parse("sampling 0", &c), 0);
	assert_int_equal(c.req.count, 0);
	assert_decodes(&c);
	assert_int_equal(parse("sampling 1000", &c), -1); /* not 2^k-1 */
	assert_int_equal(parse("set-sampling 3", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_SAMPLING);
	assert_int_equal(c.req.count, 3);
}

static void test_modes(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("enforce-allow on", &c), 0);
	assert_int_equal(c.req.mode, 1);
	assert_decodes(&c);
	assert_int_equal(parse("enforce-allow off", &c), 0);
	assert_int_equal(c.req.mode, 0);
	assert_int_equal(parse("enforce-allow yes", &c), -1);
	assert_int_equal(parse("tuple-enforce allow", &c), 0);
	assert_int_equal(c.req.mode, 2);
	assert_decodes(&c);
	assert_int_equal(parse("tuple-enforce deny", &c), 0);
	assert_int_equal(c.req.mode, 1);
	assert_int_equal(parse("tuple-enforce", &c), -1);
}

static void test_edges(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("edge add-deny 198.18.0.9 22 tcp --ttl 10m", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_EDGE_ADD_DENY);
	assert_int_equal(c.req.port, 22);
	assert_int_equal(c.req.proto, IPPROTO_TCP);
	assert_int_equal(c.req.ttl_ms, 600000);
	assert_decodes(&c);
	assert_int_equal(parse("edge add-allow fd00:6b6c::9 0 icmpv6", &c), 0);
	assert_int_equal(c.req.proto, IPPROTO_ICMPV6);
	assert_decodes(&c);
	assert_int_equal(parse("edge del-allow 198.18.0.9 53 17", &c), 0);
	assert_int_equal(c.req.proto, IPPROTO_UDP);
	assert_decodes(&c);
	assert_int_equal(parse("edge del-deny 198.18.0.9 53 udp", &c), 0);
	assert_decodes(&c);
	assert_int_equal(parse("edge add-deny 198.18.0.9 0 icmpv6", &c), -1); /* family */
	assert_int_equal(parse("edge add-deny 198.18.0.9 8 icmp", &c), -1);   /* port */
	assert_int_equal(parse("edge add-deny 198.18.0.9 70000 tcp", &c), -1);
	assert_int_equal(parse("edge add-deny 198.18.0.9 22 sctp", &c), -1);
	assert_int_equal(parse("edge add-deny 198.18.0.9 22", &c), -1);
	assert_non_null(strstr(err, "needs PROTO"));
}

static void test_attach_and_aliases(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("attach eth0 --force --mode generic", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_ATTACH);
	assert_string_equal(c.req.ifname, "eth0");
	assert_int_equal(c.req.flags, KL_CTL_F_FORCE);
	assert_int_equal(c.req.mode, KL_XDP_GENERIC);
	assert_decodes(&c);
	assert_int_equal(parse("attach eth0", &c), 0);
	assert_int_equal(c.req.mode, KL_XDP_AUTO);
	assert_int_equal(c.req.flags, 0);
	assert_int_equal(parse("attach averyveryverylongname0", &c), -1);
	assert_int_equal(parse("attach eth/0", &c), -1);
	assert_int_equal(parse("detach eth0", &c), 0);
	assert_false(c.detach_all);
	assert_decodes(&c);

	assert_int_equal(parse("attach-xdp -iface eth0 -obj /opt/x.o -force", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_ATTACH);
	assert_string_equal(c.req.ifname, "eth0");
	assert_int_equal(c.req.flags, KL_CTL_F_FORCE);
	assert_non_null(strstr(c.note, "kl-enforcer --obj"));
	assert_decodes(&c);
	assert_int_equal(parse("attach-xdp -obj /opt/x.o", &c), -1);
	assert_non_null(strstr(err, "-iface"));
	/* double-dash spellings belong to the new commands only */
	assert_int_equal(parse("attach-xdp --iface eth0", &c), -1);

	assert_int_equal(parse("detach-xdp", &c), 0);
	assert_true(c.detach_all);
	assert_int_equal(parse("detach-xdp -iface eth1", &c), 0);
	assert_false(c.detach_all);
	assert_string_equal(c.req.ifname, "eth1");

	assert_int_equal(parse("add-allow-cidr 198.18.0.0/15", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_ALLOW_ADD);
	assert_int_equal(c.req.addr.prefixlen, 15);
	assert_int_equal(parse("add-deny-ip 203.0.113.7", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_DENY_ADD);
	assert_int_equal(parse("del-deny-ip 203.0.113.7", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_DENY_DEL);
	assert_int_equal(parse("rl-set -rate 100 -burst 200", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_RL_SET);
	assert_int_equal(c.req.burst, 200);
	assert_int_equal(parse("rl-set-ip -rate 20 -burst 40 203.0.113.7", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_RL_SET_IP);
	assert_int_equal(c.req.rate, 20);
	assert_decodes(&c);
}

static void test_help_flag(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("deny add --help", &c), 0);
	assert_true(c.help);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ctl_print_cmd_help(c.cmd, f);
	ctl_print_usage(f);
	fclose(f);
	assert_non_null(strstr(buf, "usage: klctl deny add IP|CIDR [--ttl DUR]"));
	assert_non_null(strstr(buf, "example: klctl deny add"));
	/* every command and alias appears in the overview */
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		char name[64], line[96];
		snprintf(line, sizeof(line), "  %s ", ctl_cmd_name(&ctl_cmds[i], name, sizeof(name)));
		assert_non_null(strstr(buf, line));
		assert_non_null(ctl_cmds[i].help);
		assert_non_null(ctl_cmds[i].example);
	}
	free(buf);
}

/* klctl(8) comes from the same table as --help: every command and alias,
 * each argument of each command, the offline commands, and nothing a roff
 * reader would take for a request it does not know. */
static void test_man_page(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ctl_print_man(f);
	fclose(f);
	assert_non_null(strstr(buf, ".TH \"KLCTL\" 8 "));
	for (const char *s = buf; *s;) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		if (s[0] == '.') {
			static const char *const known[] = { ".TH ", ".SH ", ".SS ", ".TP", ".RS", ".RE",
							     ".IP", ".B ", ".BR ", ".nf", ".fi", ".br",
							     ".nh" };
			bool found = false;
			for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
				if (strncmp(s, known[k], strlen(known[k])) == 0)
					found = true;
			if (!found)
				print_message("unexpected request: %.*s\n", (int)n, s);
			assert_true(found);
		}
		assert_false(s[0] == '\'');
		s += n + (nl ? 1 : 0);
	}
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		char name[64], want[160];
		if (c->alias_of)
			snprintf(want, sizeof(want), "\\fB%s\\fR", ctl_cmd_name(c, name, sizeof(name)));
		else
			snprintf(want, sizeof(want), "\\fBklctl \\fR\\fB%s\\fR",
				 ctl_cmd_name(c, name, sizeof(name)));
		for (char *p = want; *p; p++)
			if (*p == '-') { /* hyphens are escaped in the page */
				memmove(p + 2, p + 1, strlen(p + 1) + 1);
				p[0] = '\\';
				p[1] = '-';
				p++;
			}
		if (!strstr(buf, want))
			print_message("missing: %s\n", want);
		assert_non_null(strstr(buf, want));
	}
	/* an argument of a command, with its value name and meaning */
	assert_non_null(strstr(buf, "\\fB\\-\\-ttl\\fR \\fIDUR\\fR\na duration"));
	for (size_t i = 0; i < ctl_n_offline; i++)
		assert_non_null(ctl_offline[i].help);
	assert_non_null(strstr(buf, "\\fBklctl \\fRtrace from\\-pcap"));
	assert_non_null(strstr(buf, "\\fBklctl \\fRstatus [\\-\\-expect LIST] [\\-\\-json]\n"));
	assert_non_null(strstr(buf, "\\fBklctl \\fR\\fBstatus enforcer\\fR\n"));
	assert_non_null(strstr(buf, ".SH \"EXIT STATUS\""));
	assert_non_null(strstr(buf, "/run/kernloom/decider/decider.sock"));
	free(buf);

	/* `klctl help trace` prints from the same offline table, whole words only */
	buf = NULL;
	f = open_memstream(&buf, &len);
	ctl_print_offline_help("trace", f);
	ctl_print_offline_help("tr", f);
	fclose(f);
	assert_non_null(strstr(buf, "usage: klctl trace dump FILE [--json]\n"
				    "       klctl trace from-pcap CAPTURE"));
	assert_non_null(strstr(buf, "  --ephemeral-min N\n"));
	assert_non_null(strstr(buf, "(default\n      32768;")); /* folded at 79 columns */
	assert_null(strstr(buf, "audit"));
	assert_null(strstr(strstr(buf, "usage:") + 1, "usage:")); /* "tr" is no command */
	free(buf);
}

static void test_global_options(void **state)
{
	(void)state;
	struct ctl_global g;
	char *a1[] = { "klctl", "--run-dir", "/tmp/x", "--json", "--timeout", "2s", "stats", NULL };
	assert_int_equal(ctl_global_parse(7, a1, NULL, &g, err, sizeof(err)), 0);
	assert_string_equal(g.run_dir, "/tmp/x");
	assert_true(g.json);
	assert_int_equal(g.timeout_ms, 2000);
	assert_int_equal(g.cmd_index, 6);
	char *a2[] = { "klctl", "stats", NULL };
	assert_int_equal(ctl_global_parse(2, a2, "/env/dir", &g, err, sizeof(err)), 0);
	assert_string_equal(g.run_dir, "/env/dir");
	assert_false(g.json);
	assert_int_equal(g.cmd_index, 1);
	assert_int_equal(ctl_global_parse(2, a2, NULL, &g, err, sizeof(err)), 0);
	assert_string_equal(g.run_dir, "/run/kernloom");
	/* the flag beats the environment */
	char *a3[] = { "klctl", "--run-dir=/flag", "stats", NULL };
	assert_int_equal(ctl_global_parse(3, a3, "/env", &g, err, sizeof(err)), 0);
	assert_string_equal(g.run_dir, "/flag");
	char *a4[] = { "klctl", "--bogus", "stats", NULL };
	assert_int_equal(ctl_global_parse(3, a4, NULL, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--bogus"));
	char *a5[] = { "klctl", "--run-dir", NULL };
	assert_int_equal(ctl_global_parse(2, a5, NULL, &g, err, sizeof(err)), -1);
	char *a6[] = { "klctl", "--timeout", "soon", "stats", NULL };
	assert_int_equal(ctl_global_parse(4, a6, NULL, &g, err, sizeof(err)), -1);
}

static char *print_with(void (*fn)(json_t *, const char *, FILE *), const char *json)
{
	json_error_t je;
	json_t *doc = json_loads(json, 0, &je);
	assert_non_null(doc);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fn(doc, "text", f);
	fclose(f);
	json_decref(doc);
	return buf;
}

static void test_stats_printer(void **state)
{
	(void)state;
	char *out = print_with(ctl_print_stats,
			       "{\"pkts\":10,\"bytes\":900,\"pass\":7,\"drop_allow\":0,"
			       "\"drop_deny\":3,\"drop_rl\":0,\"drop_edge\":0,\"malformed\":1,"
			       "\"non_ip\":2,\"ipv4\":10,\"src_new\":1,\"new_sources\":40,"
			       "\"drop_new_sources\":30}");
	assert_string_equal(out, "pkts=10 bytes=900 pass=7 drop_allow=0 drop_deny=3 drop_rl=0 "
				 "drop_edge=0 malformed=1 non_ip=2 new_sources=40 "
				 "drop_new_sources=30\n");
	free(out);
}

static void test_list_printers(void **state)
{
	(void)state;
	struct ctl_call c;
	json_error_t je;
	assert_int_equal(parse("deny list", &c), 0);
	json_t *doc = json_loads("{\"entries\":[{\"ip\":\"203.0.113.7\",\"kind\":\"host\","
				 "\"origin\":\"operator\",\"expires_in_ms\":1500},"
				 "{\"ip\":\"198.51.100.0/24\",\"kind\":\"cidr\",\"origin\":\"decider\","
				 "\"expires_in_ms\":null}],\"total\":5,\"truncated\":true}",
				 0, &je);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ctl_print_result(c.cmd, doc, "ignored", f);
	fclose(f);
	assert_non_null(strstr(buf, "203.0.113.7"));
	assert_non_null(strstr(buf, "in 1.5s"));
	assert_non_null(strstr(buf, "never"));
	assert_non_null(strstr(buf, "(2 of 5 deny entries shown"));
	free(buf);
	json_decref(doc);

	/* commands without a printer show the daemon's text */
	assert_int_equal(parse("deny add 1.2.3.4", &c), 0);
	buf = NULL;
	f = open_memstream(&buf, &len);
	ctl_print_result(c.cmd, NULL, "deny 1.2.3.4 added (permanent)", f);
	fclose(f);
	assert_string_equal(buf, "deny 1.2.3.4 added (permanent)\n");
	free(buf);
}

/* whitelist add|del|list: --ttl or --until (RFC 3339), never both; the
 * requests pass the decoder; the list printer shows origin and expiry. */
static void test_whitelist_commands(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("whitelist add 203.0.113.0/24", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_WHITELIST_ADD);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_DECIDER);
	assert_true(c.req.mode == 0 && c.req.ttl_ms == 0);
	assert_decodes(&c);
	assert_int_equal(parse("whitelist add fd00:6b6c::1 --ttl 2h", &c), 0);
	assert_true(c.req.mode == 0 && c.req.ttl_ms == 7200000);
	assert_decodes(&c);
	assert_int_equal(parse("whitelist add 198.18.0.0/24 --until 2030-01-01T00:00:00Z", &c), 0);
	assert_int_equal(c.req.mode, 1);
	assert_true(c.req.ttl_ms == 1893456000000ull);
	assert_decodes(&c);
	assert_int_equal(parse("whitelist add 198.18.0.0/24 --until=2030-01-01T02:00:00+02:00", &c), 0);
	assert_true(c.req.ttl_ms == 1893456000000ull);
	assert_int_equal(parse("whitelist add 198.18.0.1 --ttl 1h --until 2030-01-01T00:00:00Z", &c),
			 -1);
	assert_non_null(strstr(err, "--ttl or --until, not both"));
	assert_int_equal(parse("whitelist add 198.18.0.1 --until tomorrow", &c), -1);
	assert_non_null(strstr(err, "--until: \"tomorrow\" is not an RFC 3339 time"));
	assert_int_equal(parse("whitelist add 198.18.0.1/33", &c), -1);
	assert_int_equal(parse("whitelist add", &c), -1);
	assert_int_equal(parse("whitelist del 198.18.0.0/24", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_WHITELIST_DEL);
	assert_decodes(&c);
	assert_int_equal(parse("whitelist del 198.18.0.0/24 --ttl 1h", &c), -1);
	assert_int_equal(parse("whitelist list --json", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_WHITELIST_LIST);
	assert_true(c.json);

	json_error_t je;
	json_t *doc = json_loads("{\"entries\":[{\"target\":\"198.18.5.0/24\",\"origin\":\"file\","
				 "\"expires_in_ms\":null,\"until\":null,\"notes\":\"\"},"
				 "{\"target\":\"203.0.113.7\",\"origin\":\"feedback\","
				 "\"expires_in_ms\":29500,\"until\":\"2030-01-01T00:00:00Z\","
				 "\"notes\":\"klctl whitelist add by uid 1000\"}],"
				 "\"total\":2,\"truncated\":false}",
				 0, &je);
	assert_non_null(doc);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ctl_print_result(c.cmd, doc, "ignored", f);
	fclose(f);
	assert_non_null(strstr(buf, "198.18.5.0/24"));
	assert_non_null(strstr(buf, "never"));
	assert_non_null(strstr(buf, "in 29s"));
	assert_non_null(strstr(buf, "2030-01-01T00:00:00Z"));
	assert_non_null(strstr(buf, "by uid 1000"));
	assert_non_null(strstr(buf, "(2 whitelist entries)"));
	free(buf);
	json_decref(doc);
}

static void test_decider_commands(void **state)
{
	(void)state;
	struct ctl_call c;

	assert_int_equal(parse("sources", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_SOURCES);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_DECIDER);
	assert_string_equal(ctl_daemon_socket(ctl_cmd_daemon(c.cmd)), "decider.sock");
	assert_string_equal(ctl_daemon_name(ctl_cmd_daemon(c.cmd)), "kl-decider");
	assert_int_equal(c.req.count, 50); /* the default */
	assert_decodes(&c);
	assert_int_equal(parse("sources -n 7", &c), 0);
	assert_int_equal(c.req.count, 7);
	assert_decodes(&c);
	assert_int_equal(parse("sources -n 0", &c), -1);
	assert_non_null(strstr(err, "-n"));
	assert_int_equal(parse("sources 198.18.0.1", &c), -1);
	assert_non_null(strstr(err, "unexpected argument"));

	assert_int_equal(parse("forgive 198.18.0.1", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_FORGIVE);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_DECIDER);
	assert_int_equal(c.req.addr.family, 4);
	assert_int_equal(c.req.addr.prefixlen, 32);
	assert_int_equal(c.req.ttl_ms, 0); /* the decider's default (1h) */
	assert_decodes(&c);
	assert_int_equal(parse("forgive 198.18.0.77/24 --ttl 2h", &c), 0);
	assert_int_equal(c.req.addr.prefixlen, 24);
	assert_int_equal(c.req.addr.addr[3], 0);
	assert_int_equal(c.req.ttl_ms, 2ull * 3600 * 1000);
	assert_decodes(&c);
	assert_int_equal(parse("forgive fd00:6b6c::/48 --ttl=90s", &c), 0);
	assert_int_equal(c.req.addr.family, 6);
	assert_int_equal(c.req.ttl_ms, 90000);
	assert_decodes(&c);
	assert_int_equal(parse("forgive", &c), -1);
	assert_non_null(strstr(err, "needs IP|CIDR"));
	assert_int_equal(parse("forgive 198.18.0.1 --ttl 1x", &c), -1);
	assert_non_null(strstr(err, "bad duration"));
	assert_int_equal(parse("forgive 198.18.0.1 -n 3", &c), -1);
	assert_non_null(strstr(err, "unknown option \"-n\""));

	assert_int_equal(parse("new-sources limit --rate 0 --burst 100 --ttl 10m", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_NEWSRC_LIMIT);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_ENFORCER);
	assert_int_equal(c.req.rate, 0);
	assert_int_equal(c.req.burst, 100);
	assert_int_equal(c.req.ttl_ms, 600000);
	assert_decodes(&c);
	assert_int_equal(parse("new-sources limit --rate 10", &c), -1);
	assert_non_null(strstr(err, "--burst"));
	assert_int_equal(parse("new-sources off", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_NEWSRC_OFF);
	assert_decodes(&c);

	assert_int_equal(parse("tune", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_TUNE);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_DECIDER);
	assert_false(c.json);
	assert_decodes(&c);
	assert_int_equal(parse("tune --json", &c), 0);
	assert_true(c.json);
	assert_decodes(&c);
	assert_int_equal(parse("tune --json=yes", &c), -1);
	assert_non_null(strstr(err, "takes no value"));
	assert_int_equal(parse("tune -n 3", &c), -1);
	assert_non_null(strstr(err, "unknown option \"-n\""));
	assert_int_equal(parse("tune pps", &c), -1);
	assert_non_null(strstr(err, "unexpected argument"));

	/* every enforcer command still goes to the enforcer */
	assert_int_equal(parse("deny list", &c), 0);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_ENFORCER);
}

static void test_sources_printer(void **state)
{
	(void)state;
	struct ctl_call c;
	assert_int_equal(parse("sources", &c), 0);
	char *out = NULL;
	size_t len = 0;
	json_error_t je;
	json_t *doc = json_loads(
		"[{\"ip\":\"198.18.0.1\",\"level\":\"BLOCK\",\"strikes\":9,\"severity\":4.5,"
		"\"pps\":3000,\"syn\":0,\"scan\":1,\"droprl\":2500.5,\"in_level_s\":3.25,"
		"\"ttl_left_s\":597},"
		"{\"ip\":\"fd00:6b6c::3\",\"level\":\"OBSERVE\",\"strikes\":0,\"severity\":0.1,"
		"\"pps\":2,\"syn\":0,\"scan\":0,\"droprl\":0,\"in_level_s\":null,"
		"\"ttl_left_s\":null}]",
		0, &je);
	assert_non_null(doc);
	FILE *f = open_memstream(&out, &len);
	ctl_print_result(c.cmd, doc, "2 of 2 tracked sources", f);
	fclose(f);
	/* header, one line per source in the daemon's order, footer */
	char *l1 = strchr(out, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
	assert_true(strncmp(out, "SOURCE", 6) == 0);
	assert_true(strncmp(l1, "198.18.0.1", 10) == 0);
	assert_non_null(strstr(l1, "BLOCK"));
	assert_non_null(strstr(l1, "4.50"));
	assert_non_null(strstr(l1, "3000.0"));
	assert_non_null(strstr(l1, "2500.5"));
	assert_non_null(strstr(l1, "3.2s")); /* 3.25 -> one decimal */
	assert_non_null(strstr(l1, "597s"));
	assert_true(strncmp(l2, "fd00:6b6c::3", 12) == 0);
	assert_non_null(strstr(l2, "OBSERVE"));
	assert_non_null(strstr(l2, " -")); /* null times */
	assert_non_null(strstr(out, "(2 of 2 tracked sources)\n"));
	free(out);
	json_decref(doc);
}

static char *print_tune(const char *doc_text)
{
	struct ctl_call c;
	json_error_t je;
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(parse("tune", &c), 0);
	json_t *doc = json_loads(doc_text, 0, &je);
	assert_non_null(doc);
	FILE *f = open_memstream(&out, &len);
	ctl_print_result(c.cmd, doc, "autotune phase 1", f);
	fclose(f);
	json_decref(doc);
	return out;
}

static void test_tune_printer(void **state)
{
	(void)state;
	/* The shape autotune_status_json produces (decider/state.c). */
	char *out = print_tune(
		"{\"phase\":\"2\",\"k\":3.75,\"bootstrap\":{\"enabled\":true,\"start\":1767225600.0,"
		"\"age_s\":190800.0,\"observed_s\":180000.0,\"phase1_end_s\":172800.0,"
		"\"phase2_end_s\":432000.0,\"window_s\":1209600.0},"
		"\"next_tune\":{\"observed_s\":194400.0,\"in_s\":14400.0,\"phase\":\"2\"},"
		"\"samples\":{\"n\":16384,\"cap\":16384,\"min\":5000,\"seen\":120000},"
		"\"ticks\":{\"clean\":3000,\"block\":12,\"sev_frac\":3,\"drop_ratio\":0},"
		"\"trig\":{\"pps\":4705.96,\"syn\":470.6,\"scan\":47.06,\"bps\":0.0},"
		"\"floors\":{\"pps\":100.0,\"syn\":50.0,\"scan\":20.0,\"bps\":0.0},\"history\":3,"
		"\"last\":{\"t\":1767400000.0,\"observed_s\":172800.0,\"phase\":\"2\",\"k\":3.8,"
		"\"samples\":16384,\"applied\":true,\"pps\":{\"median\":250.1,\"mad\":61.2,"
		"\"target\":494.7,\"from\":4802.0,\"to\":4705.96}}}");
	assert_non_null(strstr(out, "phase     2 (k=3.75)\n"));
	assert_non_null(strstr(out, "53h since start, 50h clean observed"));
	assert_non_null(strstr(out, "(phases end at 48h / 120h / 336h)"));
	assert_non_null(strstr(out, "next tune in 4h of clean traffic (at 54h observed, phase 2)"));
	assert_non_null(strstr(out, "samples   16384 of 16384 slots (need 5000), 120000 offered"));
	assert_non_null(strstr(out, "block=12 sev_frac=3"));
	assert_non_null(strstr(out, "triggers  pps=4706.0 syn=470.6 scan=47.1 bps=0.0\n"));
	assert_non_null(strstr(out, "last      applied at 48h observed, phase 2, k=3.80, samples=16384\n"));
	assert_non_null(strstr(out, "  pps   median=250.1 mad=61.2 target=494.7 4802.0->4706.0\n"));
	free(out);

	out = print_tune("{\"phase\":\"1\",\"k\":4.0,\"bootstrap\":{\"enabled\":true},"
			 "\"next_tune\":{},\"samples\":{},\"ticks\":{},\"trig\":{},\"floors\":{},"
			 "\"history\":0,\"last\":{\"applied\":false,\"phase\":\"1\",\"k\":4.0,"
			 "\"samples\":12,\"reason\":\"too few samples (need 5000)\"}}");
	assert_non_null(strstr(out, "skipped at 0s observed, phase 1, k=4.00, samples=12: too few "
				    "samples (need 5000)\n"));
	assert_null(strstr(out, "median="));
	free(out);

	out = print_tune("{\"phase\":\"1\",\"k\":4.0,\"bootstrap\":{\"enabled\":true},\"last\":null}");
	assert_non_null(strstr(out, "last      none yet"));
	free(out);
	/* An error answer (no document) prints its text. */
	out = print_tune("[]");
	assert_string_equal(out, "autotune phase 1\n");
	free(out);
}

static void test_graph_commands(void **state)
{
	(void)state;
	struct ctl_call c;

	assert_int_equal(parse("graph export", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_GRAPH_EXPORT);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_GRAPHD);
	assert_string_equal(ctl_daemon_socket(ctl_cmd_daemon(c.cmd)), "graphd.sock");
	assert_string_equal(ctl_daemon_name(ctl_cmd_daemon(c.cmd)), "kl-graphd");
	assert_int_equal(c.req.mode, 0);
	assert_decodes(&c);
	assert_int_equal(parse("graph export --state frozen --json", &c), 0);
	assert_int_equal(c.req.mode, 1 + 2);
	assert_true(c.json);
	assert_decodes(&c);
	assert_int_equal(parse("graph export --state expired", &c), 0);
	assert_int_equal(c.req.mode, 6);
	assert_decodes(&c);
	assert_int_equal(parse("graph export --state gone", &c), -1);
	assert_non_null(strstr(err, "--state: \"gone\" is not one of candidate"));

	assert_int_equal(parse("graph freeze", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_GRAPH_FREEZE);
	assert_int_equal(c.req.mode, 0);
	assert_decodes(&c);
	assert_int_equal(parse("graph freeze --dry-run", &c), 0);
	assert_int_equal(c.req.mode, 1);
	assert_decodes(&c);
	assert_int_equal(parse("graph freeze --dry-run=yes", &c), -1);
	assert_non_null(strstr(err, "takes no value"));

	assert_int_equal(parse("graph approve-ip 198.18.0.7", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_GRAPH_APPROVE);
	assert_int_equal(c.req.proto, 0); /* every edge of the source */
	assert_decodes(&c);
	assert_int_equal(parse("graph deny-ip fd00:6b6c::7 --port 22 --proto tcp", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_GRAPH_DENY);
	assert_int_equal(c.req.port, 22);
	assert_int_equal(c.req.proto, 6);
	assert_decodes(&c);
	assert_int_equal(parse("graph approve-ip 198.18.0.0/24", &c), -1);
	assert_non_null(strstr(err, "IP: bad address"));
	assert_int_equal(parse("graph approve-ip", &c), -1);
	assert_non_null(strstr(err, "needs IP"));

	assert_int_equal(parse("graph violations --since 1h -n 20", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_GRAPH_VIOLATIONS);
	assert_int_equal(c.req.ttl_ms, 3600000);
	assert_int_equal(c.req.count, 20);
	assert_decodes(&c);
	assert_int_equal(parse("graph frobnicate", &c), -1);
	assert_non_null(strstr(err, "unknown subcommand \"graph frobnicate\""));
}

/* --json and the seeds' --format json|table work after the command name on
 * every command; `graph export --violations` is `graph violations`. */
static void test_output_options(void **state)
{
	(void)state;
	struct ctl_call c;
	static const struct {
		const char *line;
		uint16_t cmd;
		bool json;
	} ok[] = {
		{ "sources --json", KL_CTL_SOURCES, true },
		{ "sources -n 5 --json", KL_CTL_SOURCES, true },
		{ "stats --json", KL_CTL_STATS, true },
		{ "deny list --format json", KL_CTL_DENY_LIST, true },
		{ "deny list --format=json", KL_CTL_DENY_LIST, true },
		{ "rl list --format table", KL_CTL_RL_LIST, false },
		{ "top-src --json -n 3", KL_CTL_TOP_SRC, true },
		{ "graph export --format json", KL_CTL_GRAPH_EXPORT, true },
		{ "graph export --state learned --format=table", KL_CTL_GRAPH_EXPORT, false },
		{ "graph export --violations", KL_CTL_GRAPH_VIOLATIONS, false },
		{ "graph export --violations --format=json", KL_CTL_GRAPH_VIOLATIONS, true },
		{ "graph export --format json --violations", KL_CTL_GRAPH_VIOLATIONS, true },
		{ "tune --json", KL_CTL_TUNE, true },
		{ "reload", KL_CTL_RELOAD, false },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		print_message("%s\n", ok[i].line);
		assert_int_equal(parse(ok[i].line, &c), 0);
		assert_int_equal(c.req.cmd, ok[i].cmd);
		assert_int_equal(c.json, ok[i].json);
	}
	assert_int_equal(parse("stats --format xml", &c), -1);
	assert_non_null(strstr(err, "--format takes json or table"));
	assert_int_equal(parse("deny list --format", &c), -1);
	assert_non_null(strstr(err, "needs a value"));
	/* --violations belongs to graph export only */
	assert_int_equal(parse("deny list --violations", &c), -1);
	assert_int_equal(parse("sources --jsonx", &c), -1);
}

static void test_top_options(void **state)
{
	(void)state;
	struct ctl_top_opts o;
	char *d[] = { "top" };
	assert_int_equal(ctl_top_parse(1, d, &o, err, sizeof(err)), 0);
	assert_int_equal(o.n, 15);
	assert_true(o.interval_ns == 1000000000ull);
	assert_true(o.count == 0 && !o.json);
	char *a[] = { "top", "-n", "5", "--interval", "250ms", "--count", "3", "--json" };
	assert_int_equal(ctl_top_parse(8, a, &o, err, sizeof(err)), 0);
	assert_int_equal(o.n, 5);
	assert_true(o.interval_ns == 250000000ull);
	assert_true(o.count == 3 && o.json);
	static const char *bad[][3] = {
		{ "-n", "0", "not a number in range" },	     { "-n", "x", "not a number" },
		{ "-n", "-3", "not a number" },		     { "--interval", "10ms", "between 100ms" },
		{ "--interval", "soon", "--interval" },	     { "--count", "", "not a number" },
		{ "--bogus", "1", "unknown option" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *b[] = { "top", (char *)bad[i][0], (char *)bad[i][1] };
		assert_int_equal(ctl_top_parse(3, b, &o, err, sizeof(err)), -1);
		print_message("%s %s: %s\n", bad[i][0], bad[i][1], err);
		assert_non_null(strstr(err, bad[i][2]));
	}
	char *m[] = { "top", "-n" };
	assert_int_equal(ctl_top_parse(2, m, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs a value"));
}

/* Split LINE at spaces into argv and run ctl_status_parse on it. */
static int status_parse(const char *line, struct ctl_status_opts *o)
{
	static char buf[256];
	static char *argv[16];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 15; t = strtok(NULL, " "))
		argv[argc++] = t;
	err[0] = '\0';
	return ctl_status_parse(argc, argv, o, err, sizeof(err));
}

/* `klctl status` is every daemon; which ones must be up is --expect;
 * the shield's own detail is `status enforcer`, a table command. */
static void test_status_options(void **state)
{
	(void)state;
	struct ctl_status_opts o;
	const unsigned all = (1u << CTL_U_ENFORCER) | (1u << CTL_U_SENSOR) |
			     (1u << CTL_U_DECIDER) | (1u << CTL_U_GRAPHD);
	assert_int_equal(status_parse("status", &o), 0);
	assert_int_equal(o.expect, all);
	assert_false(o.json || o.help);
	assert_int_equal(status_parse("status --json", &o), 0);
	assert_true(o.json);
	assert_int_equal(status_parse("status --format json", &o), 0);
	assert_true(o.json);
	assert_int_equal(status_parse("status --format=table", &o), 0);
	assert_false(o.json);
	assert_int_equal(status_parse("status --expect enforcer,sensor,decider --json", &o), 0);
	assert_int_equal(o.expect, all & ~(1u << CTL_U_GRAPHD));
	assert_true(o.json);
	assert_int_equal(status_parse("status --expect=kl-graphd", &o), 0);
	assert_int_equal(o.expect, 1u << CTL_U_GRAPHD);
	assert_int_equal(status_parse("status --expect decider,decider", &o), 0);
	assert_int_equal(o.expect, 1u << CTL_U_DECIDER);
	assert_int_equal(status_parse("status --help", &o), 0);
	assert_true(o.help);
	static const char *bad[][2] = {
		{ "status --expect", "needs a list" },
		{ "status --expect=", "needs a list" },
		{ "status --expect enforcer,", "\"\" is not one of" },
		{ "status --expect ,enforcer", "\"\" is not one of" },
		{ "status --expect enforcer,graph", "\"graph\" is not one of" },
		{ "status --expect kl-", "\"kl-\" is not one of" },
		{ "status --expect sensor --expect decider", "given twice" },
		{ "status --all", "unknown option \"--all\"" },
		{ "status --format xml", "json or table" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(status_parse(bad[i][0], &o), -1);
		print_message("%s: %s\n", bad[i][0], err);
		assert_non_null(strstr(err, bad[i][1]));
	}

	/* Down only counts when expected; a socket that keeps klctl out is
	 * not taken for a daemon that is down. */
	assert_int_equal(ctl_unit_state(true, false, true), CTL_ST_UP);
	assert_int_equal(ctl_unit_state(true, false, false), CTL_ST_UP);
	assert_int_equal(ctl_unit_state(false, false, true), CTL_ST_DOWN);
	assert_int_equal(ctl_unit_state(false, false, false), CTL_ST_OFF);
	assert_int_equal(ctl_unit_state(false, true, true), CTL_ST_UNKNOWN);
	assert_int_equal(ctl_unit_state(false, true, false), CTL_ST_UNKNOWN);
	assert_string_equal(ctl_unit_state_name(CTL_ST_OFF), "off");
	assert_string_equal(ctl_unit_name(CTL_U_SENSOR), "kl-sensor");

	/* `status` alone is not a table command; `status enforcer` is. */
	struct ctl_call c;
	assert_int_equal(parse("status enforcer --json", &c), 0);
	assert_int_equal(c.req.cmd, KL_CTL_STATUS);
	assert_true(c.json);
	assert_int_equal(ctl_cmd_daemon(c.cmd), CTL_D_ENFORCER);
	assert_int_equal(parse("status", &c), -1);
	assert_int_equal(parse("status decider", &c), -1);
	assert_non_null(strstr(err, "unknown subcommand \"status decider\""));

	/* `klctl help status`: klctl's own command, then the table's. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(ctl_print_offline_help("status", f), 1);
	assert_int_equal(ctl_print_group_help("status", f), 1);
	fclose(f);
	assert_non_null(strstr(buf, "usage: klctl status [--expect LIST] [--json]\n"));
	assert_non_null(strstr(buf, "usage: klctl status enforcer\n"));
	free(buf);
}

static void test_events_follow_window(void **state)
{
	(void)state;
	uint64_t missed;
	/* 3 new events, answer holds the newest 10: print its last 3 */
	assert_int_equal(ctl_events_new(100, 103, 10, &missed), 7);
	assert_true(missed == 0);
	/* nothing new */
	assert_int_equal(ctl_events_new(103, 103, 10, &missed), 10);
	assert_true(missed == 0);
	/* 15 new, only 10 in the answer: all of it, 5 missed */
	assert_int_equal(ctl_events_new(100, 115, 10, &missed), 0);
	assert_true(missed == 5);
	/* the enforcer restarted and counts from 0: its 4 are new */
	assert_int_equal(ctl_events_new(500, 4, 4, &missed), 0);
	assert_true(missed == 0);
	/* an empty answer */
	assert_int_equal(ctl_events_new(0, 0, 0, &missed), 0);
}

static void test_status_all_proc(void **state)
{
	(void)state;
	struct ctl_proc p;
	const char *st = "Name:\tkl-decider\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n"
			 "Uid:\t0\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n"
			 "CapEff:\t000000c000001000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
	assert_int_equal(ctl_proc_parse_status(st, &p), 0);
	assert_int_equal(p.pid, 4242);
	assert_int_equal(p.uid, 65534); /* the effective uid */
	assert_true(p.cap_eff == 0xc000001000ull);
	assert_int_equal(p.no_new_privs, 1);
	assert_int_equal(p.seccomp, 2);
	/* an older kernel without Seccomp: unknown, not off */
	assert_int_equal(ctl_proc_parse_status("Pid:\t1\nUid:\t0\t0\t0\t0\nCapEff:\t0\n", &p), 0);
	assert_int_equal(p.seccomp, -1);
	assert_int_equal(ctl_proc_parse_status("Pid:\t1\nCapEff:\t0\n", &p), -1);
	assert_int_equal(ctl_proc_parse_status("", &p), -1);

	static const char c1[] = "kl-sensor\0--run-dir\0/tmp/x/run\0--user\0nobody";
	static const char c2[] = "kl-sensor\0--run-dir=/tmp/x/run";
	static const char c3[] = "kl-sensor\0--user\0nobody";
	static const char c4[] = "kl-sensor\0--run-dir";
	assert_true(ctl_cmdline_run_dir_is(c1, sizeof(c1), "/tmp/x/run", "/run/kernloom"));
	assert_false(ctl_cmdline_run_dir_is(c1, sizeof(c1), "/tmp/y/run", "/run/kernloom"));
	assert_true(ctl_cmdline_run_dir_is(c2, sizeof(c2), "/tmp/x/run", "/run/kernloom"));
	assert_true(ctl_cmdline_run_dir_is(c3, sizeof(c3), "/run/kernloom", "/run/kernloom"));
	assert_false(ctl_cmdline_run_dir_is(c3, sizeof(c3), "/tmp/x/run", "/run/kernloom"));
	assert_false(ctl_cmdline_run_dir_is(c4, sizeof(c4), "/tmp/x/run", "/run/kernloom"));
	/* nobody listens there */
	char why[256];
	assert_int_equal(ctl_socket_peer_pid("/nonexistent/kl.sock", 100, why, sizeof(why)), 0);

	/* The sensor's metrics file from its cmdline, and the samples in it. */
	static const char c5[] = "kl-sensor\0--metrics-file\0/a.prom\0--metrics-file=/b.prom";
	assert_string_equal(ctl_cmdline_flag(c5, sizeof(c5), "--metrics-file"), "/b.prom");
	assert_string_equal(ctl_cmdline_flag(c1, sizeof(c1), "--user"), "nobody");
	assert_null(ctl_cmdline_flag(c3, sizeof(c3), "--metrics-file"));
	assert_null(ctl_cmdline_flag(c4, sizeof(c4), "--run-dir"));
	const char *page = "# HELP kernloom_sensor_ticks_total Ticks.\n"
			   "kernloom_sensor_ticks_total 42\n"
			   "kernloom_sensor_frames_sent_total{stream=\"telemetry\"} 40\n"
			   "kernloom_sensor_frames_sent_total{stream=\"flows\"} 41\n";
	assert_true(ctl_prom_value(page, "kernloom_sensor_ticks_total") == 42);
	assert_true(ctl_prom_value(page, "kernloom_sensor_frames_sent_total{stream=\"flows\"}") == 41);
	assert_true(isnan(ctl_prom_value(page, "kernloom_sensor_ticks")));
	assert_true(isnan(ctl_prom_value(page, "kernloom_sensor_frames_sent_total")));
}

/* An SP server in a thread: accepts once, answers the SP header as a REP0
 * socket, and reports whether the peer sent a whole header first. */
struct sp_server {
	int lfd;
	bool answer;
	bool got_header;
};
static void *sp_serve(void *arg)
{
	struct sp_server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	uint8_t h[8];
	size_t have = 0;
	while (fd >= 0 && have < sizeof(h)) {
		ssize_t n = read(fd, h + have, sizeof(h) - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	s->got_header = have == sizeof(h) && memcmp(h, "\0SP\0\0\x30\0\0", 8) == 0;
	if (s->answer && s->got_header)
		assert_int_equal(write(fd, "\0SP\0\0\x31\0\0", 8), 8);
	/* wait for the peer to hang up */
	while (fd >= 0 && read(fd, h, sizeof(h)) > 0)
		;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int sp_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* `klctl status` finds a daemon's pid by knocking on its control socket
 * the way nng does: the whole SP header exchange, never a bare connect
 * and close (that wedges an nng 1.5.2 listener). A socket that does not
 * answer cannot be told up or down. */
static void test_status_probe(void **state)
{
	(void)state;
	char dir[] = "/tmp/kl-ctlprobe.XXXXXX", path[128], why[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);

	struct sp_server s = { .lfd = sp_listen(path), .answer = true };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, sp_serve, &s), 0);
	assert_int_equal(ctl_socket_peer_pid(path, 2000, why, sizeof(why)), getpid());
	pthread_join(t, NULL);
	assert_true(s.got_header);

	s.answer = false;
	assert_int_equal(pthread_create(&t, NULL, sp_serve, &s), 0);
	why[0] = '\0';
	assert_int_equal(ctl_socket_peer_pid(path, 100, why, sizeof(why)), -1);
	pthread_join(t, NULL);
	print_message("silent server: %s\n", why);
	assert_non_null(strstr(why, "no SP handshake"));
	close(s.lfd);

	/* the socket file of a daemon that is gone */
	assert_int_equal(ctl_socket_peer_pid(path, 100, why, sizeof(why)), 0);
	unlink(path);
	rmdir(dir);
}

/* The request field each klctl argument fills (0: none). */
static unsigned field_use(enum ctl_field f)
{
	switch (f) {
	case F_ADDR_HOST: return KL_CTL_U_ADDR_HOST | KL_CTL_U_ADDR_PREFIX; /* a host is a prefix too */
	case F_ADDR_CIDR: return KL_CTL_U_ADDR_PREFIX;
	case F_TTL: return KL_CTL_U_TTL;
	case F_RATE: return KL_CTL_U_RATE;
	case F_BURST: return KL_CTL_U_BURST;
	case F_COUNT:
	case F_MASK: return KL_CTL_U_COUNT;
	case F_IFNAME: return KL_CTL_U_IFNAME;
	case F_FORCE: return KL_CTL_U_FORCE;
	case F_PORT: return KL_CTL_U_PORT;
	case F_PROTO: return KL_CTL_U_PROTO | KL_CTL_U_PROTO_OPT;
	case F_TOPBY:
	case F_XDPMODE:
	case F_ONOFF:
	case F_EDGEMODE:
	case F_DRYRUN:
	case F_GSTATE: return KL_CTL_U_MODE;
	default: return 0;
	}
}

/* klctl's table agrees with the command table in ipc/msg.h: every
 * argument fills a field its command uses, and every command has a name
 * and a daemon. */
static void test_table_matches_commands(void **state)
{
	(void)state;
	for (size_t i = 0; i < ctl_n_cmds; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		unsigned uses = kl_ctl_cmd_uses(c->cmd);

		assert_true(c->cmd > 0 && c->cmd < KL_CTL_CMD_MAX);
		assert_int_not_equal(kl_ctl_cmd_role(c->cmd), KL_ROLE_NONE);
		for (size_t a = 0; a < CTL_MAX_ARGS && c->args[a].name != NULL; a++) {
			unsigned u = field_use(c->args[a].field);
			if (u != 0 && (u & uses) == 0)
				fail_msg("%s %s: argument %s fills a field %s does not use",
					 c->words[0], c->words[1] ? c->words[1] : "", c->args[a].name,
					 kl_ctl_cmd_name(c->cmd));
		}
	}
	for (unsigned cmd = 1; cmd < KL_CTL_CMD_MAX; cmd++)
		assert_string_not_equal(kl_ctl_cmd_name(cmd), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_graph_commands),
		cmocka_unit_test(test_table_matches_commands),
		cmocka_unit_test(test_decider_commands),
		cmocka_unit_test(test_whitelist_commands),
		cmocka_unit_test(test_sources_printer),
		cmocka_unit_test(test_tune_printer),
		cmocka_unit_test(test_simple_commands),
		cmocka_unit_test(test_deny),
		cmocka_unit_test(test_usage_errors_name_the_argument),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_top_events_sampling),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_attach_and_aliases),
		cmocka_unit_test(test_help_flag),
		cmocka_unit_test(test_man_page),
		cmocka_unit_test(test_global_options),
		cmocka_unit_test(test_output_options),
		cmocka_unit_test(test_top_options),
		cmocka_unit_test(test_status_options),
		cmocka_unit_test(test_status_probe),
		cmocka_unit_test(test_events_follow_window),
		cmocka_unit_test(test_status_all_proc),
		cmocka_unit_test(test_stats_printer),
		cmocka_unit_test(test_list_printers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
