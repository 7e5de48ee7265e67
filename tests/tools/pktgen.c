/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-pktgen: a paced packet sender for the integration tests.
 *
 * Sends UDP datagrams or TCP SYNs from a given source address (raw socket,
 * IP_HDRINCL / IPV6_HDRINCL-free for v6 via a bound raw socket) at a fixed
 * rate for a fixed time, optionally walking destination ports, so tests can
 * produce "200 pps from A" or "SYNs to 100 new ports per second from B".
 * Only for the project's own test namespaces (198.18.0.0/15, fd00:6b6c::/48).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/duration.h"

struct opts {
	struct kl_addr src, dst;
	bool tcp_syn;
	unsigned port, port_step, port_span;
	double rate;
	uint64_t duration_ns;
	uint64_t count;
	unsigned payload;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kl-pktgen --src ADDR --dst ADDR [--udp|--syn] [--port N] [--port-step N]\n"
		"                 [--port-span N] [--rate PPS] [--duration DUR] [--count N] [--payload BYTES]\n"
		"Sends paced UDP datagrams or TCP SYNs from SRC to DST (test namespaces only).\n"
		"  --port N        first destination port (default 9)\n"
		"  --port-step N   add N to the port after each packet (default 0)\n"
		"  --port-span N   wrap the port walk after N ports (default 1000)\n"
		"  --rate PPS      packets per second (default 100)\n"
		"  --duration DUR  how long to send (default 1s); --count stops earlier\n");
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

/* Builds the L4 header + payload into buf, with the pseudo-header checksum. */
static size_t build_l4(const struct opts *o, unsigned port, uint8_t *buf, uint16_t sport)
{
	size_t len;
	uint8_t proto = o->tcp_syn ? IPPROTO_TCP : IPPROTO_UDP;
	if (o->tcp_syn) {
		struct tcphdr *t = (struct tcphdr *)buf;
		memset(t, 0, sizeof(*t));
		t->source = htons(sport);
		t->dest = htons((uint16_t)port);
		t->seq = htonl((uint32_t)rand());
		t->doff = 5;
		t->syn = 1;
		t->window = htons(64240);
		len = sizeof(*t);
	} else {
		struct udphdr *u = (struct udphdr *)buf;
		len = sizeof(*u) + o->payload;
		memset(buf, 0, len);
		u->source = htons(sport);
		u->dest = htons((uint16_t)port);
		u->len = htons((uint16_t)len);
	}
	uint32_t sum = 0;
	size_t alen = o->src.family == 4 ? 4 : 16;
	sum = csum_add(sum, o->src.addr, alen);
	sum = csum_add(sum, o->dst.addr, alen);
	sum += proto;
	sum += (uint32_t)len;
	sum = csum_add(sum, buf, len);
	uint16_t c = csum_fold(sum);
	if (o->tcp_syn)
		((struct tcphdr *)buf)->check = htons(c);
	else
		((struct udphdr *)buf)->check = htons(c ? c : 0xffff);
	return len;
}

static int send_one(int fd, const struct opts *o, unsigned port)
{
	uint8_t pkt[2048];
	uint16_t sport = (uint16_t)(40000 + rand() % 20000);
	if (o->src.family == 4) {
		struct iphdr *ip = (struct iphdr *)pkt;
		size_t l4 = build_l4(o, port, pkt + sizeof(*ip), sport);
		memset(ip, 0, sizeof(*ip));
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = o->tcp_syn ? IPPROTO_TCP : IPPROTO_UDP;
		ip->tot_len = htons((uint16_t)(sizeof(*ip) + l4));
		memcpy(&ip->saddr, o->src.addr, 4);
		memcpy(&ip->daddr, o->dst.addr, 4);
		ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));
		struct sockaddr_in to = { .sin_family = AF_INET };
		memcpy(&to.sin_addr, o->dst.addr, 4);
		return (int)sendto(fd, pkt, sizeof(*ip) + l4, 0, (struct sockaddr *)&to, sizeof(to));
	}
	size_t l4 = build_l4(o, port, pkt, sport);
	struct sockaddr_in6 to = { .sin6_family = AF_INET6 };
	memcpy(&to.sin6_addr, o->dst.addr, 16);
	return (int)sendto(fd, pkt, l4, 0, (struct sockaddr *)&to, sizeof(to));
}

static int open_socket(const struct opts *o)
{
	int fd;
	if (o->src.family == 4) {
		fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
		int one = 1;
		if (fd >= 0 && setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) < 0)
			return -1;
		return fd;
	}
	/* v6 raw sockets let the kernel write the IPv6 header; binding the
	 * source address picks it (it must be configured in the namespace). */
	fd = socket(AF_INET6, SOCK_RAW, o->tcp_syn ? IPPROTO_TCP : IPPROTO_UDP);
	if (fd < 0)
		return -1;
	struct sockaddr_in6 me = { .sin6_family = AF_INET6 };
	memcpy(&me.sin6_addr, o->src.addr, 16);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0)
		return -1;
	return fd;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct opts o = { .port = 9, .port_span = 1000, .rate = 100, .duration_ns = 1000000000ull };
	char err[160];
	bool have_src = false, have_dst = false;
	static const struct option lo[] = {
		{ "src", 1, 0, 's' }, { "dst", 1, 0, 'd' }, { "udp", 0, 0, 'u' }, { "syn", 0, 0, 'S' },
		{ "port", 1, 0, 'p' }, { "port-step", 1, 0, 'P' }, { "port-span", 1, 0, 'W' },
		{ "rate", 1, 0, 'r' }, { "duration", 1, 0, 't' }, { "count", 1, 0, 'c' },
		{ "payload", 1, 0, 'l' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (kl_addr_parse(optarg, &o.src, err, sizeof(err)) < 0)
				goto bad;
			have_src = true;
			break;
		case 'd':
			if (kl_addr_parse(optarg, &o.dst, err, sizeof(err)) < 0)
				goto bad;
			have_dst = true;
			break;
		case 'u': o.tcp_syn = false; break;
		case 'S': o.tcp_syn = true; break;
		case 'p': o.port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'P': o.port_step = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'W': o.port_span = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': o.rate = strtod(optarg, NULL); break;
		case 't':
			if (kl_duration_parse(optarg, &o.duration_ns, err, sizeof(err)) < 0)
				goto bad;
			break;
		case 'c': o.count = strtoull(optarg, NULL, 10); break;
		case 'l': o.payload = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!have_src || !have_dst || o.src.family != o.dst.family || o.rate <= 0 ||
	    o.port == 0 || o.port > 65535 || o.port_span == 0 || o.payload > 1400) {
		fprintf(stderr, "kl-pktgen: need --src and --dst of one family, rate > 0, port 1..65535\n");
		return 2;
	}
	int fd = open_socket(&o);
	if (fd < 0) {
		fprintf(stderr, "kl-pktgen: raw socket: %s\n", strerror(errno));
		return 1;
	}
	srand((unsigned)getpid());
	uint64_t start = now_ns(), interval = (uint64_t)(1e9 / o.rate), sent = 0, failed = 0;
	for (uint64_t i = 0;; i++) {
		uint64_t due = start + i * interval;
		if (due - start >= o.duration_ns || (o.count && i >= o.count))
			break;
		uint64_t t = now_ns();
		if (t < due) {
			struct timespec ts = { .tv_sec = (time_t)((due - t) / 1000000000ull),
					       .tv_nsec = (long)((due - t) % 1000000000ull) };
			nanosleep(&ts, NULL);
		}
		unsigned port = o.port + (unsigned)((i * o.port_step) % o.port_span);
		if (port > 65535)
			port = o.port;
		if (send_one(fd, &o, port) < 0)
			failed++;
		else
			sent++;
	}
	printf("sent=%llu failed=%llu\n", (unsigned long long)sent, (unsigned long long)failed);
	close(fd);
	return 0;
bad:
	fprintf(stderr, "kl-pktgen: %s\n", err);
	return 2;
}
