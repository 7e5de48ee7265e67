/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enfclient: speaks the decider's and graphd's side of the enforcer
 * links from the command line, for the integration tests and for poking a
 * running enforcer by hand:
 *
 *   kl-enfclient --run-dir D decide 198.18.0.1 RATE_SOFT --rate 20 --burst 40 --ttl 60s
 *   kl-enfclient --run-dir D release 198.18.0.0/24 --budget 100
 *   kl-enfclient --run-dir D state
 *   kl-enfclient --run-dir D --role graphd edge allow 198.18.0.1 443 tcp --ttl 10m
 *
 * It encodes what it is told without judging it (a TTL of 500ms goes out
 * as such), so tests can also see the enforcer refuse things.
 * Exit status: 0 everything applied, 1 refused/failed/unreachable, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/duration.h"
#include "common/log.h"
#include "ipc/chan.h"
#include "ipc/enforce.h"

#define MAX_ADDRS KL_DECISIONS_MAX
/* Batches longer than this print only the records not applied. */
#define QUIET_OVER 16

struct opts {
	const char *run_dir, *socket, *role;
	int timeout_ms;
	uint64_t rate, burst, ttl_ms, budget, max, count;
	bool have_ttl;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kl-enfclient [--run-dir DIR] [--socket PATH] [--role ROLE] [--timeout DUR] CMD ...\n"
		"  decide ADDR[,ADDR...] OBSERVE|RATE_SOFT|RATE_HARD|BLOCK|N [--rate PPS] [--burst N] [--ttl DUR]\n"
		"         [--count N]   (N consecutive addresses from each ADDR)\n"
		"  release CIDR [--budget N]                (default budget 1000)\n"
		"  state [--max N]                          (default max 100000)\n"
		"  edge allow|deny|add-allow|add-deny|del-allow|del-deny ADDR PORT tcp|udp|icmp|icmpv6|N\n"
		"       [--ttl DUR] [--count N]   (N consecutive ports from PORT, one batch)\n"
		"The role defaults to decider (graphd for edge); the socket to\n"
		"RUN_DIR/enforcer/enforcer-<role>.sock (RUN_DIR: --run-dir, $KERNLOOM_RUN_DIR, /run/kernloom).\n"
		"Exit status: 0 all applied, 1 refused or failed, 2 usage error.\n");
}

static int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "kl-enfclient: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_ttl(const char *s, uint64_t *ms)
{
	uint64_t ns;
	char err[128];
	if (kl_duration_parse(s, &ns, err, sizeof(err)) < 0)
		return -1;
	*ms = ns / KL_NS_PER_MS;
	return 0;
}

static int parse_proto(const char *s, uint8_t *out)
{
	static const struct {
		const char *n;
		uint8_t v;
	} names[] = { { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 } };
	uint64_t v;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].n) == 0) {
			*out = names[i].v;
			return 0;
		}
	if (parse_u64(s, 255, &v) < 0)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/* Send one message; 0 with the answer in *reply, or 1 after printing why. */
static int call(const struct opts *o, enum kl_role role, unsigned type, const uint8_t *p,
		size_t len, struct kl_msg *reply, void **rbuf)
{
	char path[4096], err[512];
	struct kl_client *c;
	if (o->socket)
		snprintf(path, sizeof(path), "%s", o->socket);
	else if (role == KL_ROLE_CTL)
		snprintf(path, sizeof(path), "%s/enforcer/enforcer.sock", o->run_dir);
	else
		snprintf(path, sizeof(path), "%s/enforcer/enforcer-%s.sock", o->run_dir,
			 kl_role_name(role));
	if (kl_client_open(&c, path, role, o->timeout_ms, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-enfclient: %s\n", err);
		return 1;
	}
	int rc = kl_client_call(c, type, p, len, reply, rbuf, err, sizeof(err));
	kl_client_close(c);
	if (rc < 0) {
		fprintf(stderr, "kl-enfclient: %s\n", err);
		return 1;
	}
	if (reply->hdr.type == KL_MSG_RESULT) {
		struct kl_result r;
		if (kl_result_decode(reply->payload, reply->payload_len, &r, err, sizeof(err)) < 0)
			fprintf(stderr, "kl-enfclient: bad RESULT: %s\n", err);
		else
			fprintf(stderr, "kl-enfclient: enforcer answered %s: %.*s\n",
				kl_status_name(r.status), (int)r.text_len, r.text);
		free(*rbuf);
		*rbuf = NULL;
		return 1;
	}
	return 0;
}

/* Print one ACK line per record; exit status 0 when all were applied. */
static int print_acks(const struct kl_msg *reply, unsigned want, char **labels, uint32_t n)
{
	char err[256];
	uint32_t got, applied;
	struct kl_ack *a = calloc(n ? n : 1, sizeof(*a));
	if (!a)
		return 1;
	if (reply->hdr.type != want) {
		fprintf(stderr, "kl-enfclient: answer is %s, want %s\n",
			kl_msg_type_name(reply->hdr.type), kl_msg_type_name(want));
		free(a);
		return 1;
	}
	if (kl_acks_decode(reply->payload, reply->payload_len, a, n, &got, &applied, err,
			   sizeof(err)) < 0 ||
	    got != n) {
		fprintf(stderr, "kl-enfclient: bad %s: %s\n", kl_msg_type_name(want),
			got != n ? "record count differs from the request" : err);
		free(a);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++)
		if (n > QUIET_OVER && a[i].reason == KL_ACK_OK)
			continue;
		else if (a[i].reason)
			printf("%s: %s (%s)\n", labels[i], kl_status_name(a[i].status),
			       kl_ack_reason_name(a[i].reason));
		else
			printf("%s: OK\n", labels[i]);
	printf("applied %u of %u\n", applied, n);
	free(a);
	return applied == n ? 0 : 1;
}

static int cmd_decide(const struct opts *o, enum kl_role role, int argc, char **argv)
{
	if (argc != 2)
		return die_usage("decide takes ADDR[,ADDR...] LEVEL");
	int level = kl_dec_level_parse(argv[1]);
	uint64_t lv;
	if (level < 0) {
		if (parse_u64(argv[1], 255, &lv) < 0)
			return die_usage("unknown level %s", argv[1]);
		level = (int)lv;
	}
	struct kl_decision *d = calloc(MAX_ADDRS, sizeof(*d));
	char **labels = calloc(MAX_ADDRS, sizeof(*labels));
	char *list = strdup(argv[0]);
	uint32_t n = 0;
	int rc = 2;
	if (!d || !labels || !list) {
		rc = 1;
		goto out;
	}
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char err[128];
		struct kl_addr a;
		if (kl_addr_parse(tok, &a, err, sizeof(err)) < 0) {
			rc = die_usage("bad address %s", tok);
			goto out;
		}
		for (uint64_t k = 0; k < (o->count ? o->count : 1); k++) {
			char ip[KL_ADDR_STRLEN];
			if (n == MAX_ADDRS) {
				rc = die_usage("more than %d addresses", MAX_ADDRS);
				goto out;
			}
			d[n].addr = a;
			d[n].level = (uint8_t)level;
			d[n].rate_pps = (uint32_t)o->rate;
			d[n].burst = (uint32_t)o->burst;
			d[n].ttl_ms = level == KL_DEC_OBSERVE && !o->have_ttl ? 0 : o->ttl_ms;
			if (asprintf(&labels[n], "%s %s", kl_addr_format(&a, ip, sizeof(ip)),
				     kl_dec_level_name((unsigned)level)) < 0) {
				rc = 1;
				goto out;
			}
			n++;
			/* the next address: +1 in the last four bytes */
			uint8_t *b = a.addr + (a.family == 4 ? 0 : 12);
			for (int j = 3; j >= 0 && ++b[j] == 0; j--)
				;
		}
	}
	size_t len = kl_decisions_len(n);
	uint8_t *p = malloc(len);
	struct kl_msg reply;
	void *rbuf = NULL;
	if (!p) {
		rc = 1;
		goto out;
	}
	kl_decisions_encode(d, n, p);
	rc = call(o, role, KL_MSG_DECISIONS, p, len, &reply, &rbuf);
	free(p);
	if (rc == 0)
		rc = print_acks(&reply, KL_MSG_DECISIONS_ACK, labels, n);
	free(rbuf);
out:
	for (uint32_t i = 0; labels && i < n; i++)
		free(labels[i]);
	free(labels);
	free(d);
	free(list);
	return rc;
}

static int cmd_release(const struct opts *o, enum kl_role role, int argc, char **argv)
{
	char err[128];
	struct kl_release r = { .budget = (uint32_t)o->budget };
	if (argc != 1)
		return die_usage("release takes one CIDR");
	if (kl_cidr_parse(argv[0], &r.prefix, err, sizeof(err)) < 0)
		return die_usage("bad CIDR %s", argv[0]);
	uint8_t p[KL_RELEASE_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	kl_release_encode(&r, p);
	int rc = call(o, role, KL_MSG_RELEASE, p, sizeof(p), &reply, &rbuf);
	if (rc)
		return rc;
	struct kl_release_ack a;
	if (reply.hdr.type != KL_MSG_RELEASE_ACK ||
	    kl_release_ack_decode(reply.payload, reply.payload_len, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-enfclient: bad answer to RELEASE (%s): %s\n",
			kl_msg_type_name(reply.hdr.type), err);
		free(rbuf);
		return 1;
	}
	printf("removed %u more %u\n", a.removed, a.more);
	free(rbuf);
	return 0;
}

static int cmd_state(const struct opts *o, enum kl_role role, int argc)
{
	char err[256];
	if (argc != 0)
		return die_usage("state takes no arguments");
	uint8_t p[KL_ENFORCED_Q_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	kl_enforced_q_encode((uint32_t)o->max, p);
	int rc = call(o, role, KL_MSG_ENFORCED_Q, p, sizeof(p), &reply, &rbuf);
	if (rc)
		return rc;
	uint32_t n = 0;
	bool truncated = false;
	struct kl_state_rec *s = NULL;
	if (reply.hdr.type != KL_MSG_STATE ||
	    kl_state_count(reply.payload, reply.payload_len, &n, err, sizeof(err)) < 0 ||
	    !(s = calloc(n ? n : 1, sizeof(*s))) ||
	    kl_state_decode(reply.payload, reply.payload_len, s, n, &n, &truncated, err,
			    sizeof(err)) < 0) {
		fprintf(stderr, "kl-enfclient: bad answer to ENFORCED_Q (%s): %s\n",
			kl_msg_type_name(reply.hdr.type), err);
		free(s);
		free(rbuf);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		char ip[KL_ADDR_STRLEN];
		kl_addr_format(&s[i].addr, ip, sizeof(ip));
		if (s[i].kind == KL_STATE_RL)
			printf("%s %s rate=%u burst=%u expires_in_ms=%llu\n",
			       kl_state_kind_name(s[i].kind), ip, s[i].rate_pps, s[i].burst,
			       (unsigned long long)s[i].expires_in_ms);
		else if (s[i].kind == KL_STATE_DENY)
			printf("%s %s expires_in_ms=%llu\n", kl_state_kind_name(s[i].kind), ip,
			       (unsigned long long)s[i].expires_in_ms);
		else
			printf("%s %s %u/%u expires_in_ms=%llu\n", kl_state_kind_name(s[i].kind), ip,
			       s[i].port, s[i].proto, (unsigned long long)s[i].expires_in_ms);
	}
	printf("%u entries%s\n", n, truncated ? " (truncated)" : "");
	free(s);
	free(rbuf);
	return 0;
}

static int cmd_edge(const struct opts *o, enum kl_role role, int argc, char **argv)
{
	static const struct {
		const char *n;
		uint8_t a;
	} acts[] = {
		{ "allow", KL_EDGE_ACT_ADD_ALLOW },	   { "add-allow", KL_EDGE_ACT_ADD_ALLOW },
		{ "deny", KL_EDGE_ACT_ADD_DENY },	   { "add-deny", KL_EDGE_ACT_ADD_DENY },
		{ "del-allow", KL_EDGE_ACT_DEL_ALLOW }, { "del-deny", KL_EDGE_ACT_DEL_DENY },
	};
	struct kl_edge_rule e;
	char err[128];
	uint64_t port;
	memset(&e, 0, sizeof(e));
	if (argc != 4)
		return die_usage("edge takes ACTION ADDR PORT PROTO");
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (strcmp(argv[0], acts[i].n) == 0)
			e.action = acts[i].a;
	if (!e.action)
		return die_usage("unknown edge action %s", argv[0]);
	if (kl_addr_parse(argv[1], &e.src, err, sizeof(err)) < 0)
		return die_usage("bad address %s", argv[1]);
	if (parse_u64(argv[2], 65535, &port) < 0)
		return die_usage("bad port %s", argv[2]);
	e.port = (uint16_t)port;
	if (parse_proto(argv[3], &e.proto) < 0)
		return die_usage("bad protocol %s", argv[3]);
	bool add = e.action == KL_EDGE_ACT_ADD_ALLOW || e.action == KL_EDGE_ACT_ADD_DENY;
	e.ttl_ms = add ? o->ttl_ms : (o->have_ttl ? o->ttl_ms : 0);
	uint32_t n = o->count ? (uint32_t)o->count : 1;
	if (port + n - 1 > 65535 || n > KL_EDGE_RULES_MAX)
		return die_usage("--count %u from port %llu runs past 65535", n,
				 (unsigned long long)port);
	struct kl_edge_rule *ev = calloc(n, sizeof(*ev));
	uint8_t *p = malloc(KL_BATCH_HDR_LEN + (size_t)n * KL_EDGE_RULE_LEN);
	char *lbuf = malloc((size_t)n * 160);
	char **labels = calloc(n, sizeof(*labels));
	if (!ev || !p || !lbuf || !labels) {
		free(ev), free(p), free(lbuf), free(labels);
		fprintf(stderr, "kl-enfclient: out of memory\n");
		return 1;
	}
	for (uint32_t k = 0; k < n; k++) {
		ev[k] = e;
		ev[k].port = (uint16_t)(port + k);
		labels[k] = lbuf + (size_t)k * 160;
		snprintf(labels[k], 160, "edge %s %s %u/%s", kl_edge_action_name(e.action), argv[1],
			 ev[k].port, argv[3]);
	}
	kl_edge_rules_encode(ev, n, p);
	struct kl_msg reply;
	void *rbuf = NULL;
	int rc = call(o, role, KL_MSG_EDGE_RULES, p, KL_BATCH_HDR_LEN + (size_t)n * KL_EDGE_RULE_LEN,
		      &reply, &rbuf);
	if (rc == 0)
		rc = print_acks(&reply, KL_MSG_EDGE_ACK, labels, n);
	free(rbuf);
	free(ev);
	free(p);
	free(lbuf);
	free(labels);
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_RUN = 256, O_SOCK, O_ROLE, O_TIMEOUT, O_RATE, O_BURST, O_TTL, O_BUDGET, O_MAX,
	       O_COUNT };
	static const struct option lo[] = {
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "socket", required_argument, NULL, O_SOCK },
		{ "role", required_argument, NULL, O_ROLE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "rate", required_argument, NULL, O_RATE },
		{ "burst", required_argument, NULL, O_BURST },
		{ "ttl", required_argument, NULL, O_TTL },
		{ "budget", required_argument, NULL, O_BUDGET },
		{ "max", required_argument, NULL, O_MAX },
		{ "count", required_argument, NULL, O_COUNT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .timeout_ms = 10000, .ttl_ms = 60000, .budget = 1000, .max = 100000 };
	const char *env = getenv("KERNLOOM_RUN_DIR");
	o.run_dir = env && *env ? env : "/run/kernloom";
	int ch;
	uint64_t v;

	kl_log_init("kl-enfclient", KL_LOG_WARN);
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case O_RUN: o.run_dir = optarg; break;
		case O_SOCK: o.socket = optarg; break;
		case O_ROLE: o.role = optarg; break;
		case O_TIMEOUT:
			if (parse_ttl(optarg, &v) < 0 || v == 0 || v > 3600000)
				return die_usage("bad --timeout %s", optarg);
			o.timeout_ms = (int)v;
			break;
		case O_RATE:
			if (parse_u64(optarg, UINT32_MAX, &o.rate) < 0)
				return die_usage("bad --rate %s", optarg);
			break;
		case O_BURST:
			if (parse_u64(optarg, UINT32_MAX, &o.burst) < 0)
				return die_usage("bad --burst %s", optarg);
			break;
		case O_TTL:
			if (parse_ttl(optarg, &o.ttl_ms) < 0)
				return die_usage("bad --ttl %s", optarg);
			o.have_ttl = true;
			break;
		case O_BUDGET:
			if (parse_u64(optarg, UINT32_MAX, &o.budget) < 0)
				return die_usage("bad --budget %s", optarg);
			break;
		case O_MAX:
			if (parse_u64(optarg, UINT32_MAX, &o.max) < 0)
				return die_usage("bad --max %s", optarg);
			break;
		case O_COUNT:
			if (parse_u64(optarg, MAX_ADDRS, &o.count) < 0 || o.count == 0)
				return die_usage("bad --count %s", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc)
		return die_usage("no command");
	const char *cmd = argv[optind];
	int rest = argc - optind - 1;
	char **args = argv + optind + 1;
	enum kl_role role = o.role ? kl_role_parse(o.role)
				   : strcmp(cmd, "edge") == 0 ? KL_ROLE_GRAPHD : KL_ROLE_DECIDER;
	if (role == KL_ROLE_NONE)
		return die_usage("unknown role %s", o.role);
	if (strcmp(cmd, "decide") == 0)
		return cmd_decide(&o, role, rest, args);
	if (strcmp(cmd, "release") == 0)
		return cmd_release(&o, role, rest, args);
	if (strcmp(cmd, "state") == 0)
		return cmd_state(&o, role, rest);
	if (strcmp(cmd, "edge") == 0)
		return cmd_edge(&o, role, rest, args);
	return die_usage("unknown command %s", cmd);
}
