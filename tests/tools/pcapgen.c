/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-pcapgen: writes a packet capture with exactly paced, known traffic for
 * the `klctl trace from-pcap` tests: a capture the test writes itself, so
 * the rates it expects are exact.
 *
 *   kl-pcapgen --out FILE [--start SECONDS] [--raw]
 *              --stream SRC,DST,udp|syn,PPS,DURATION[,PORT[,PORT_STEP[,PAYLOAD[,OFFSET]]]] ...
 *
 * Packet i of a stream is stamped start + OFFSET + i/PPS; streams are merged in
 * time order. --raw writes the LINKTYPE_RAW link type (no Ethernet header),
 * which from-pcap must refuse. Addresses: 198.18.0.0/15 or fd00:6b6c::/48.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "common/addr.h"
#include "common/duration.h"

#define MAX_STREAMS 16

struct stream {
	struct kl_addr src, dst;
	bool syn;
	double pps;
	uint64_t dur_ns;
	unsigned port, step, payload;
	uint64_t off_ns;
	uint64_t i, n;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kl-pcapgen --out FILE [--start SECONDS] [--raw]\n"
		   "       --stream SRC,DST,udp|syn,PPS,DURATION[,PORT[,PORT_STEP[,PAYLOAD[,OFFSET]]]] ...\n");
}

static int in_test_range(const struct kl_addr *a)
{
	if (a->family == 4)
		return a->addr[0] == 198 && (a->addr[1] & 0xfe) == 18;
	static const uint8_t p6[6] = { 0xfd, 0x00, 0x6b, 0x6c, 0, 0 };
	return memcmp(a->addr, p6, 6) == 0;
}

static int parse_stream(char *spec, struct stream *s)
{
	char *f[9];
	int n = 0;
	char err[128];

	for (char *t = strtok(spec, ","); t && n < 9; t = strtok(NULL, ","))
		f[n++] = t;
	if (n < 5)
		return -1;
	memset(s, 0, sizeof(*s));
	s->port = 9;
	s->payload = 18;
	if (kl_addr_parse(f[0], &s->src, err, sizeof(err)) < 0 ||
	    kl_addr_parse(f[1], &s->dst, err, sizeof(err)) < 0 || s->src.family != s->dst.family) {
		fprintf(stderr, "kl-pcapgen: %s,%s: %s\n", f[0], f[1], err);
		return -1;
	}
	if (!in_test_range(&s->src) || !in_test_range(&s->dst)) {
		fprintf(stderr, "kl-pcapgen: addresses must be in 198.18.0.0/15 or fd00:6b6c::/48\n");
		return -1;
	}
	if (strcmp(f[2], "syn") == 0)
		s->syn = true;
	else if (strcmp(f[2], "udp") != 0)
		return -1;
	s->pps = strtod(f[3], NULL);
	if (s->pps <= 0 || kl_duration_parse(f[4], &s->dur_ns, err, sizeof(err)) < 0)
		return -1;
	if (n > 5)
		s->port = (unsigned)strtoul(f[5], NULL, 10);
	if (n > 6)
		s->step = (unsigned)strtoul(f[6], NULL, 10);
	if (n > 7)
		s->payload = (unsigned)strtoul(f[7], NULL, 10);
	if (n > 8 && kl_duration_parse(f[8], &s->off_ns, err, sizeof(err)) < 0)
		return -1;
	if (s->port == 0 || s->port > 65535 || s->payload > 1400)
		return -1;
	s->n = (uint64_t)((double)s->dur_ns / 1e9 * s->pps + 0.5);
	return 0;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One frame of stream s (packet s->i) into buf; returns its length. */
static size_t build(const struct stream *s, bool raw, uint8_t *buf)
{
	size_t o = 0, l4len = s->syn ? 20 : 8 + s->payload;
	unsigned port = s->port + (unsigned)((s->i * s->step) % 20000);
	uint8_t *l3, *l4;
	uint32_t ps;

	if (!raw) {
		static const uint8_t macs[12] = { 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1 };
		memcpy(buf, macs, 12);
		buf[12] = s->src.family == 4 ? 0x08 : 0x86;
		buf[13] = s->src.family == 4 ? 0x00 : 0xdd;
		o = 14;
	}
	l3 = buf + o;
	if (s->src.family == 4) {
		memset(l3, 0, 20);
		l3[0] = 0x45;
		l3[2] = (uint8_t)((20 + l4len) >> 8);
		l3[3] = (uint8_t)(20 + l4len);
		l3[4] = (uint8_t)(s->i >> 8);
		l3[5] = (uint8_t)s->i;
		l3[8] = 64;
		l3[9] = s->syn ? 6 : 17;
		memcpy(l3 + 12, s->src.addr, 4);
		memcpy(l3 + 16, s->dst.addr, 4);
		uint16_t c = fold(sum16(l3, 20, 0));
		l3[10] = (uint8_t)(c >> 8);
		l3[11] = (uint8_t)c;
		l4 = l3 + 20;
		ps = sum16(l3 + 12, 8, 0) + (uint32_t)l3[9] + (uint32_t)l4len;
	} else {
		memset(l3, 0, 40);
		l3[0] = 0x60;
		l3[4] = (uint8_t)(l4len >> 8);
		l3[5] = (uint8_t)l4len;
		l3[6] = s->syn ? 6 : 17;
		l3[7] = 64;
		memcpy(l3 + 8, s->src.addr, 16);
		memcpy(l3 + 24, s->dst.addr, 16);
		l4 = l3 + 40;
		ps = sum16(l3 + 8, 32, 0) + (uint32_t)l3[6] + (uint32_t)l4len;
	}
	memset(l4, 0, l4len);
	uint16_t sport = (uint16_t)(40000 + s->i % 20000);
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(port >> 8);
	l4[3] = (uint8_t)port;
	if (s->syn) {
		l4[4] = (uint8_t)(s->i >> 24); /* sequence number */
		l4[7] = (uint8_t)s->i;
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		l4[14] = 0xfa;
		l4[15] = 0xf0;
		uint16_t c = fold(sum16(l4, l4len, ps));
		l4[16] = (uint8_t)(c >> 8);
		l4[17] = (uint8_t)c;
	} else {
		l4[4] = (uint8_t)(l4len >> 8);
		l4[5] = (uint8_t)l4len;
		for (size_t k = 8; k < l4len; k++)
			l4[k] = (uint8_t)k;
		uint16_t c = fold(sum16(l4, l4len, ps));
		l4[6] = (uint8_t)(c >> 8);
		l4[7] = (uint8_t)c;
	}
	return (size_t)(l4 - buf) + l4len;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", 1, 0, 'o' }, { "start", 1, 0, 's' }, { "raw", 0, 0, 'r' },
		{ "stream", 1, 0, 'S' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
	};
	struct stream st[MAX_STREAMS];
	const char *out = NULL;
	double start = 1700000000.25;
	bool raw = false;
	int ns = 0, c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 's': start = strtod(optarg, NULL); break;
		case 'r': raw = true; break;
		case 'S':
			if (ns == MAX_STREAMS || parse_stream(optarg, &st[ns]) < 0) {
				fprintf(stderr, "kl-pcapgen: bad --stream %s\n", optarg);
				return 2;
			}
			ns++;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (out == NULL || ns == 0 || start < 0) {
		usage(stderr);
		return 2;
	}
	pcap_t *p = pcap_open_dead_with_tstamp_precision(raw ? DLT_RAW : DLT_EN10MB, 65535,
							 PCAP_TSTAMP_PRECISION_NANO);
	pcap_dumper_t *d = p ? pcap_dump_open(p, out) : NULL;
	if (d == NULL) {
		fprintf(stderr, "kl-pcapgen: %s: %s\n", out, p ? pcap_geterr(p) : "pcap_open_dead");
		return 1;
	}
	/* Whole seconds apart: a double holds ns since 1970 only to ~256 ns. */
	uint64_t whole = (uint64_t)start, total = 0;
	uint64_t t0 = whole * 1000000000ull + (uint64_t)((start - (double)whole) * 1e9 + 0.5);
	for (;;) {
		int best = -1;
		uint64_t bt = 0;
		for (int k = 0; k < ns; k++) {
			if (st[k].i >= st[k].n)
				continue;
			uint64_t t = t0 + st[k].off_ns +
				     (uint64_t)((double)st[k].i * 1e9 / st[k].pps + 0.5);
			if (best < 0 || t < bt) {
				best = k;
				bt = t;
			}
		}
		if (best < 0)
			break;
		uint8_t buf[1600];
		struct pcap_pkthdr h;
		size_t len = build(&st[best], raw, buf);
		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = (time_t)(bt / 1000000000ull);
		h.ts.tv_usec = (suseconds_t)(bt % 1000000000ull); /* nanoseconds: NANO precision */
		h.caplen = h.len = (bpf_u_int32)len;
		pcap_dump((u_char *)d, &h, buf);
		st[best].i++;
		total++;
	}
	pcap_dump_close(d);
	pcap_close(p);
	fprintf(stderr, "kl-pcapgen: %llu packets written to %s\n", (unsigned long long)total, out);
	return 0;
}
