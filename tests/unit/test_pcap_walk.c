/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The capture side of `klctl trace from-pcap` (kl_pcap_walk), without the
 * kernel: a capture built byte by byte in memory, walked with callbacks
 * that record what the XDP replay would be handed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_DONT_INCLUDE_PCAP_BPF_H
#include <pcap/pcap.h>

#include "harvest/pcap.h"

#define S 1000000000ull

struct cap {
	uint8_t buf[16384];
	size_t len;
};

static void cap_init(struct cap *c, uint32_t linktype)
{
	uint32_t h[6] = { 0xa1b2c3d4, 2 | (4u << 16), 0, 0, 65535, linktype };
	memcpy(c->buf, h, sizeof(h));
	c->len = sizeof(h);
}

/* One record at sec.usec with caplen bytes captured of len. */
static void cap_add(struct cap *c, uint32_t sec, uint32_t usec, uint32_t caplen, uint32_t len)
{
	uint32_t r[4] = { sec, usec, caplen, len };
	assert_true(c->len + sizeof(r) + caplen <= sizeof(c->buf));
	memcpy(c->buf + c->len, r, sizeof(r));
	c->len += sizeof(r);
	memset(c->buf + c->len, 0xab, caplen);
	c->len += caplen;
}

struct seen {
	uint64_t ticks[16], elapsed;
	size_t nticks;
	uint32_t lens[16];
	size_t npkts;
	unsigned windows;
};

static int on_tick(void *ctx, uint64_t t_ns, uint64_t elapsed, char *err, size_t errlen)
{
	struct seen *s = ctx;
	(void)err;
	(void)errlen;
	assert_true(s->nticks < 16);
	s->ticks[s->nticks++] = t_ns;
	s->elapsed = elapsed;
	return 0;
}

static int on_window(void *ctx, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	((struct seen *)ctx)->windows++;
	return 0;
}

static int on_packet(void *ctx, const uint8_t *data, uint32_t len, char *err, size_t errlen)
{
	struct seen *s = ctx;
	(void)err;
	(void)errlen;
	assert_true(s->npkts < 16);
	assert_int_equal(data[len - 1], 0xab);
	s->lens[s->npkts++] = len;
	return 0;
}

static const struct kl_pcap_walk_cb cb = { on_tick, on_window, on_packet };

static int walk(struct cap *c, uint64_t interval, struct seen *s, struct kl_pcap_stats *st,
		char *err, size_t errlen)
{
	char perr[PCAP_ERRBUF_SIZE];
	FILE *f = fmemopen(c->buf, c->len, "rb");
	assert_non_null(f);
	pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, perr);
	assert_non_null(pc);
	memset(s, 0, sizeof(*s));
	memset(st, 0, sizeof(*st));
	int rc = kl_pcap_check_link(pc, "c.pcap", err, errlen);
	if (rc == 0)
		rc = kl_pcap_walk(pc, "c.pcap", interval, &cb, s, st, err, errlen);
	pcap_close(pc);
	return rc;
}

/* Ticks on the capture's clock, short packets skipped, long ones cut to
 * a test run's size, snapped and backwards packets counted. */
static void test_ticks_and_packets(void **state)
{
	(void)state;
	struct cap c;
	struct seen s;
	struct kl_pcap_stats st;
	char err[600];

	cap_init(&c, 1 /* Ethernet */);
	cap_add(&c, 100, 0, 60, 60);
	cap_add(&c, 100, 200000, 10, 10);   /* shorter than an Ethernet header */
	cap_add(&c, 101, 500000, 4000, 4000); /* longer than a test run takes */
	cap_add(&c, 103, 100000, 60, 1500); /* snapped */
	cap_add(&c, 103, 50000, 60, 60);    /* 50 ms older than the one before */
	assert_int_equal(walk(&c, 1 * S, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nticks, 4);
	assert_true(s.ticks[0] == 101 * S && s.ticks[1] == 102 * S && s.ticks[2] == 103 * S &&
		    s.ticks[3] == 104 * S);
	assert_true(s.elapsed == 1 * S);
	assert_int_equal(s.npkts, 4);
	assert_int_equal(s.lens[0], 60);
	assert_int_equal(s.lens[1], 3000);
	assert_int_equal(st.packets, 4);
	assert_int_equal(st.short_skipped, 1);
	assert_int_equal(st.cut, 1);
	assert_int_equal(st.snapped, 1);
	assert_int_equal(st.backwards, 1);

	/* An empty capture: no tick at all. */
	cap_init(&c, 1);
	assert_int_equal(walk(&c, 1 * S, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nticks, 0);
	assert_int_equal(st.packets, 0);
}

static void test_refusals(void **state)
{
	(void)state;
	struct cap c;
	struct seen s;
	struct kl_pcap_stats st;
	char err[600];

	cap_init(&c, 101 /* raw IP */);
	cap_add(&c, 100, 0, 60, 60);
	assert_int_equal(walk(&c, 1 * S, &s, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "c.pcap: link type"));
	assert_non_null(strstr(err, "only Ethernet"));

	/* More than 10 million empty ticks between two packets. */
	cap_init(&c, 1);
	cap_add(&c, 100, 0, 60, 60);
	cap_add(&c, 100 + 20000, 0, 60, 60);
	assert_int_equal(walk(&c, 1000000 /* 1 ms */, &s, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "c.pcap: packet 2 is"));
	assert_non_null(strstr(err, "not filling that gap"));
	assert_int_equal(s.nticks, 0);

	assert_int_equal(walk(&c, 0, &s, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--interval"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ticks_and_packets),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
