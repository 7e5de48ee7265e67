/* SPDX-License-Identifier: MPL-2.0 */
/* klctl trace dump / from-pcap (see trace.h for the output format). */
#include "ctl/trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/duration.h"
#include "common/log.h"
#include "ctl/cmds.h"
#include "ipc/frames.h"
#include "ipc/tickasm.h"
#include "common/grow.h"
#include "ipc/msg.h"
#include "ipc/trace.h"
#include "harvest/pcap.h"

#ifndef KL_DEFAULT_OBJ
#define KL_DEFAULT_OBJ "/usr/local/lib/kernloom/shield.bpf.o"
#endif

/* ---- numbers ---- */

const char *ctl_trace_num(double v, bool with_decimal, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%.3f", v);

	if (n <= 0 || (size_t)n >= len)
		return buf;
	char *dot = strchr(buf, '.');
	if (dot == NULL)
		return buf;
	char *e = buf + n - 1;
	while (e > dot && *e == '0')
		*e-- = '\0';
	if (e == dot) {
		if (with_decimal && (size_t)(e - buf) + 2 < len) {
			e[1] = '0';
			e[2] = '\0';
		} else {
			*e = '\0';
		}
	}
	/* "-0" cannot come from a decoded frame, but t could round to it. */
	if (strcmp(buf, "-0") == 0 || strcmp(buf, "-0.0") == 0)
		memmove(buf, buf + 1, strlen(buf));
	return buf;
}

static const char *proto_name(uint8_t p, char *buf, size_t len)
{
	switch (p) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "icmpv6";
	default:
		snprintf(buf, len, "%u", p);
		return buf;
	}
}

static const char *ip_text(uint8_t family, const uint8_t *addr, char *buf, size_t len)
{
	struct kl_addr a;

	memset(&a, 0, sizeof(a));
	a.family = family;
	a.prefixlen = family == 4 ? 32 : 128;
	memcpy(a.addr, addr, family == 4 ? 4 : 16);
	return kl_addr_format(&a, buf, len);
}

/* ---- one tick ---- */

struct ctl_tick_printer {
	FILE *out;
	bool json;
	bool have, have_telem, have_flows, have_t0;
	uint64_t tick, t_ns, t0, elapsed_ns;
	uint64_t totals[KL_T_MAX];
	struct kl_src_rate *src;
	size_t nsrc, capsrc;
	struct kl_flow_rec *flows;
	size_t nflows, capflows;
	uint64_t printed;
	struct kl_tickasm ta_telem, ta_flows; /* frames -> whole ticks */
};

struct ctl_tick_printer *ctl_tick_printer_new(FILE *out, bool json)
{
	struct ctl_tick_printer *p = calloc(1, sizeof(*p));

	if (p != NULL) {
		p->out = out;
		p->json = json;
		kl_tickasm_init(&p->ta_telem, KL_MSG_TELEMETRY,
				kl_telem_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
		kl_tickasm_init(&p->ta_flows, KL_MSG_FLOWS,
				kl_flows_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
	}
	return p;
}

void ctl_tick_printer_free(struct ctl_tick_printer *p)
{
	if (p == NULL)
		return;
	free(p->src);
	free(p->flows);
	kl_tickasm_free(&p->ta_telem);
	kl_tickasm_free(&p->ta_flows);
	free(p);
}

static int cmp_addr(uint8_t fa, const uint8_t *a, uint8_t fb, const uint8_t *b)
{
	if (fa != fb)
		return fa < fb ? -1 : 1;
	return memcmp(a, b, 16);
}

static int cmp_src(const void *x, const void *y)
{
	const struct kl_src_rate *a = x, *b = y;
	return cmp_addr(a->family, a->addr, b->family, b->addr);
}

static int cmp_flow(const void *x, const void *y)
{
	const struct kl_flow_rec *a = x, *b = y;
	int c = cmp_addr(a->family, a->addr, b->family, b->addr);

	if (c != 0)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->proto < b->proto ? -1 : a->proto > b->proto;
}

static void print_json(struct ctl_tick_printer *p, double t)
{
	char n[64], ip[KL_ADDR_STRLEN], pb[8];
	FILE *o = p->out;

	fprintf(o, "{\"t\": %s, ", ctl_trace_num(t, true, n, sizeof(n)));
	/* Packets of sources not admitted to a slot (first sightings): the
	 * spoofing signal, so a replayed spoofed flood stays one. */
	if (p->have_telem)
		fprintf(o, "\"new_sources\": %llu, ",
			(unsigned long long)p->totals[KL_T_SRC_UNADMITTED]);
	fputs("\"sources\": [", o);
	for (size_t i = 0; i < p->nsrc; i++) {
		const struct kl_src_rate *r = &p->src[i];
		static const enum kl_rate shown[] = { KL_R_PPS, KL_R_BPS, KL_R_SYN, KL_R_SCAN,
						      KL_R_DROP_RL };
		fprintf(o, "%s{\"ip\": \"%s\"", i ? ", " : "",
			ip_text(r->family, r->addr, ip, sizeof(ip)));
		for (size_t k = 0; k < sizeof(shown) / sizeof(shown[0]); k++)
			fprintf(o, ", \"%s\": %s", kl_rate_name(shown[k]),
				ctl_trace_num(r->r[shown[k]], false, n, sizeof(n)));
		fputc('}', o);
	}
	fputc(']', o);
	if (p->have_flows) {
		fputs(", \"flows\": [", o);
		for (size_t i = 0; i < p->nflows; i++) {
			const struct kl_flow_rec *f = &p->flows[i];
			fprintf(o,
				"%s{\"src\": \"%s\", \"port\": %u, \"proto\": \"%s\", \"pkts\": %llu, "
				"\"bytes\": %llu%s}",
				i ? ", " : "", ip_text(f->family, f->addr, ip, sizeof(ip)), f->port,
				proto_name(f->proto, pb, sizeof(pb)), (unsigned long long)f->pkts,
				(unsigned long long)f->bytes,
				(f->flags & KL_FLOW_F_RESTRICTED) ? ", \"restricted\": true" : "");
		}
		fputc(']', o);
	}
	fputs("}\n", o);
}

static void print_table(struct ctl_tick_printer *p, double t)
{
	char n[64], ip[KL_ADDR_STRLEN], pb[8];
	FILE *o = p->out;
	uint64_t drops = p->totals[KL_T_DROP_ALLOW] + p->totals[KL_T_DROP_DENY] +
			 p->totals[KL_T_DROP_RL] + p->totals[KL_T_DROP_EDGE];

	if (p->printed > 0)
		fputc('\n', o);
	fprintf(o, "tick %llu  t=%.3fs  elapsed=%.3fs  pkts=%llu bytes=%llu pass=%llu drops=%llu  "
		"new_sources=%llu sources=%zu flows=%zu\n",
		(unsigned long long)p->tick, t, (double)p->elapsed_ns / 1e9,
		(unsigned long long)p->totals[KL_T_PKTS], (unsigned long long)p->totals[KL_T_BYTES],
		(unsigned long long)p->totals[KL_T_PASS], (unsigned long long)drops,
		(unsigned long long)p->totals[KL_T_SRC_UNADMITTED], p->nsrc, p->nflows);
	if (p->nsrc > 0) {
		fprintf(o, "  %-39s", "SOURCE");
		for (int k = 0; k < KL_R_MAX; k++)
			fprintf(o, " %11s", kl_rate_name((unsigned)k));
		fputc('\n', o);
	}
	for (size_t i = 0; i < p->nsrc; i++) {
		fprintf(o, "  %-39s", ip_text(p->src[i].family, p->src[i].addr, ip, sizeof(ip)));
		for (int k = 0; k < KL_R_MAX; k++)
			fprintf(o, " %11s", ctl_trace_num(p->src[i].r[k], false, n, sizeof(n)));
		fputc('\n', o);
	}
	if (p->nflows > 0)
		fprintf(o, "  %-39s %6s %6s %11s %13s\n", "FLOW SOURCE", "PORT", "PROTO", "PKTS",
			"BYTES");
	for (size_t i = 0; i < p->nflows; i++) {
		const struct kl_flow_rec *f = &p->flows[i];
		fprintf(o, "  %-39s %6u %6s %11llu %13llu%s\n",
			ip_text(f->family, f->addr, ip, sizeof(ip)), f->port,
			proto_name(f->proto, pb, sizeof(pb)), (unsigned long long)f->pkts,
			(unsigned long long)f->bytes,
			(f->flags & KL_FLOW_F_RESTRICTED) ? "  restricted" : "");
	}
}

static void flush(struct ctl_tick_printer *p)
{
	if (!p->have)
		return;
	if (!p->have_t0) {
		p->t0 = p->t_ns;
		p->have_t0 = true;
	}
	double t = p->t_ns >= p->t0 ? (double)(p->t_ns - p->t0) / 1e9
				    : -(double)(p->t0 - p->t_ns) / 1e9;
	if (p->nsrc > 1)
		qsort(p->src, p->nsrc, sizeof(*p->src), cmp_src);
	if (p->nflows > 1)
		qsort(p->flows, p->nflows, sizeof(*p->flows), cmp_flow);
	if (p->json)
		print_json(p, t);
	else
		print_table(p, t);
	p->printed++;
	p->have = p->have_telem = p->have_flows = false;
	p->nsrc = p->nflows = 0;
	memset(p->totals, 0, sizeof(p->totals));
}


int ctl_tick_printer_add(struct ctl_tick_printer *p, const uint8_t *buf, size_t len, char *err,
			 size_t errlen)
{
	struct kl_msg m;

	if (kl_msg_decode(buf, len, &m, err, errlen) < 0)
		return -1;
	if (m.hdr.type != KL_MSG_TELEMETRY && m.hdr.type != KL_MSG_FLOWS) {
		snprintf(err, errlen, "a %s message has no place in a trace",
			 kl_msg_type_name(m.hdr.type));
		return -1;
	}
	bool telem = m.hdr.type == KL_MSG_TELEMETRY;
	/* Frames of a tick are put together first; a partial tick is dropped
	 * and said so (ipc/tickasm.h). */
	struct kl_tickasm *ta = telem ? &p->ta_telem : &p->ta_flows;
	int rc = kl_tickasm_feed(ta, &m, err, errlen);
	if (ta->note[0] != '\0')
		fprintf(stderr, "klctl: %s\n", ta->note);
	if (rc == KL_TICKASM_MORE)
		return 0;
	if (rc != KL_TICKASM_TICK)
		return -1;
	if (p->have && (m.hdr.tick != p->tick || (telem ? p->have_telem : p->have_flows)))
		flush(p);
	if (telem) {
		const struct kl_telem_view *v = &ta->telem;
		struct kl_src_rate *src = kl_grow_to(p->src, p->nsrc + v->h.n_records, &p->capsrc,
						     sizeof(*src), 64);
		if (src == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->src = src;
		for (uint32_t i = 0; i < v->h.n_records; i++)
			kl_telem_record(v, i, &p->src[p->nsrc++]);
		memcpy(p->totals, v->h.totals, sizeof(p->totals));
		p->t_ns = v->h.t_ns;
		p->elapsed_ns = v->h.elapsed_ns;
		p->have_telem = true;
	} else {
		const struct kl_flows_view *v = &ta->flows;
		struct kl_flow_rec *fl = kl_grow_to(p->flows, p->nflows + v->h.n_records,
						    &p->capflows, sizeof(*fl), 64);
		if (fl == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->flows = fl;
		for (uint32_t i = 0; i < v->h.n_records; i++)
			kl_flows_record(v, i, &p->flows[p->nflows++]);
		if (!p->have_telem) {
			p->t_ns = v->h.t_ns;
			p->elapsed_ns = v->h.elapsed_ns;
		}
		p->have_flows = true;
	}
	p->tick = m.hdr.tick;
	p->have = true;
	return 0;
}

uint64_t ctl_tick_printer_finish(struct ctl_tick_printer *p)
{
	flush(p);
	fflush(p->out);
	return p->printed;
}

/* ---- commands ---- */

static void usage(FILE *f)
{
	ctl_print_offline_help("trace", f);
	fprintf(f,
		"\nthe installed shield object: %s\n"
		"examples:\n"
		"  klctl trace dump /var/lib/kernloom/sensor.trace --json > ticks.jsonl\n"
		"  tcpdump -i eth0 -w attack.pcap; klctl trace from-pcap attack.pcap > attack.jsonl\n",
		KL_DEFAULT_OBJ);
}

static int cmd_dump(int argc, char **argv)
{
	const char *file = NULL;
	bool json = false;
	char err[600];

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "klctl: trace dump: unknown option %s\n", argv[i]);
			return 2;
		} else if (file == NULL) {
			file = argv[i];
		} else {
			fprintf(stderr, "klctl: trace dump: one FILE only (got \"%s\" too)\n", argv[i]);
			return 2;
		}
	}
	if (file == NULL) {
		fprintf(stderr, "klctl: trace dump: FILE missing\nusage: klctl trace dump FILE [--json]\n");
		return 2;
	}

	struct kl_trace_reader *r;
	if (kl_trace_open_read(&r, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: %s\n", err);
		return 1;
	}
	struct ctl_tick_printer *p = ctl_tick_printer_new(stdout, json);
	if (p == NULL) {
		kl_trace_close_read(r);
		fprintf(stderr, "klctl: out of memory\n");
		return 1;
	}
	const uint8_t *msg;
	size_t len;
	int rc, ret = 0;
	while ((rc = kl_trace_next(r, &msg, &len, err, sizeof(err))) == KL_TRACE_REC) {
		char why[300];
		if (ctl_tick_printer_add(p, msg, len, why, sizeof(why)) < 0) {
			fprintf(stderr, "klctl: %s: record at offset %llu: %s\n", file,
				(unsigned long long)kl_trace_offset(r), why);
			ret = 1;
			break;
		}
	}
	ctl_tick_printer_finish(p);
	if (rc == KL_TRACE_TORN) {
		fprintf(stderr, "klctl: note: %s\n", err);
	} else if (rc == KL_TRACE_CORRUPT || rc == KL_TRACE_ERR) {
		fprintf(stderr, "klctl: %s\n", err);
		ret = 1;
	}
	ctl_tick_printer_free(p);
	kl_trace_close_read(r);
	return ret;
}

static int emit_line(void *ctx, const uint8_t *msg, size_t len)
{
	char err[300];

	if (ctl_tick_printer_add(ctx, msg, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "klctl: internal: a frame we built does not decode: %s\n", err);
		return 1;
	}
	return ferror(stdout) ? 1 : 0;
}

static int cmd_from_pcap(int argc, char **argv)
{
	struct kl_pcap_opts o = {
		.obj = KL_DEFAULT_OBJ,
		.interval_ns = 1000000000ull,
		.ephemeral_min = KL_EPHEMERAL_MIN_DEFAULT,
	};
	char err[600];

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			/* JSON lines are the only output. */
		} else if (strcmp(a, "--interval") == 0 || strcmp(a, "--obj") == 0 ||
			   strcmp(a, "--ephemeral-min") == 0) {
			if (val == NULL) {
				fprintf(stderr, "klctl: trace from-pcap: %s needs a value\n", a);
				return 2;
			}
			i++;
			if (strcmp(a, "--obj") == 0) {
				o.obj = val;
			} else if (strcmp(a, "--interval") == 0) {
				if (kl_duration_parse(val, &o.interval_ns, err, sizeof(err)) < 0) {
					fprintf(stderr, "klctl: trace from-pcap: --interval %s: %s\n", val,
						err);
					return 2;
				}
				if (o.interval_ns < 1000000ull || o.interval_ns > 3600000000000ull) {
					fprintf(stderr, "klctl: trace from-pcap: --interval %s: must be "
							"between 1ms and 1h\n",
						val);
					return 2;
				}
			} else {
				char *end;
				errno = 0;
				unsigned long v = strtoul(val, &end, 10);
				if (errno || *end || val[0] < '0' || val[0] > '9' || v > 65535) {
					fprintf(stderr, "klctl: trace from-pcap: --ephemeral-min %s: want "
							"a port number 0..65535\n",
						val);
					return 2;
				}
				o.ephemeral_min = (uint32_t)v;
			}
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "klctl: trace from-pcap: unknown option %s\n", a);
			return 2;
		} else if (o.capture == NULL) {
			o.capture = a;
		} else {
			fprintf(stderr, "klctl: trace from-pcap: one CAPTURE only (got \"%s\" too)\n", a);
			return 2;
		}
	}
	if (o.capture == NULL) {
		fprintf(stderr, "klctl: trace from-pcap: CAPTURE missing\n"
				"usage: klctl trace from-pcap CAPTURE.pcap [--interval DUR] [--obj PATH]\n");
		return 2;
	}

	struct ctl_tick_printer *p = ctl_tick_printer_new(stdout, true);
	struct kl_pcap_stats st;
	if (p == NULL) {
		fprintf(stderr, "klctl: out of memory\n");
		return 1;
	}
	int rc = kl_pcap_replay(&o, emit_line, p, &st, err, sizeof(err));
	ctl_tick_printer_finish(p);
	ctl_tick_printer_free(p);
	if (rc < 0) {
		fprintf(stderr, "klctl: trace from-pcap: %s\n", err);
		return 1;
	}
	char ivl[32];
	fprintf(stderr, "klctl: %s: %llu packets in %llu ticks of %s", o.capture,
		(unsigned long long)st.packets, (unsigned long long)st.ticks,
		kl_duration_format(o.interval_ns, ivl, sizeof(ivl)));
	if (st.short_skipped)
		fprintf(stderr, "; %llu shorter than an Ethernet header skipped",
			(unsigned long long)st.short_skipped);
	if (st.cut)
		fprintf(stderr, "; %llu longer than %d bytes run cut (their bytes undercounted)",
			(unsigned long long)st.cut, 3000);
	if (st.snapped)
		fprintf(stderr, "; %llu captured short of their length (snaplen; bytes undercounted)",
			(unsigned long long)st.snapped);
	if (st.backwards)
		fprintf(stderr, "; %llu with a timestamp older than the one before (kept in its tick)",
			(unsigned long long)st.backwards);
	fputc('\n', stderr);
	return 0;
}

int ctl_trace_main(int argc, char **argv)
{
	if (argc > 0 && strcmp(argv[0], "trace") == 0) {
		argc--;
		argv++;
	}
	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
	    strcmp(argv[0], "help") == 0) {
		usage(argc == 0 ? stderr : stdout);
		return argc == 0 ? 2 : 0;
	}
	if (strcmp(argv[0], "dump") == 0)
		return cmd_dump(argc - 1, argv + 1);
	if (strcmp(argv[0], "from-pcap") == 0)
		return cmd_from_pcap(argc - 1, argv + 1);
	fprintf(stderr, "klctl: trace: unknown subcommand \"%s\" (dump, from-pcap)\n", argv[0]);
	return 2;
}
