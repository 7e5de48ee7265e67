/* SPDX-License-Identifier: MPL-2.0 */
/*
 * `klctl trace from-pcap`: the capture side of the replay (harvest/pcap.c),
 * that is libpcap's file reader (pcap and pcapng) and our walk over it on
 * the capture's clock; kl_pcap_replay runs the same walk with callbacks
 * that drive the XDP program, which needs the kernel and is left out.
 * Beyond "does not crash or leak": ticks come one interval apart in order,
 * every packet handed on is at least an Ethernet header and at most what a
 * test run takes, and the counters add up to the callbacks seen.
 *
 * Input: byte 0 selects the tick interval, the rest is the capture.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_DONT_INCLUDE_PCAP_BPF_H
#include <pcap/pcap.h>

#include "harvest/pcap.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Past this many ticks the fuzz callback stops the walk, as a failing
 * output would: a long gap of empty ticks is legal but slow to walk. */
#define TICK_BUDGET 65536

struct seen {
	uint64_t interval, ticks, packets, windows, last_t;
};

static int tick(void *ctx, uint64_t t_ns, uint64_t elapsed, char *err, size_t errlen)
{
	struct seen *s = ctx;

	CHECK(elapsed == s->interval);
	CHECK(s->ticks == 0 || t_ns == s->last_t + s->interval);
	s->last_t = t_ns;
	if (++s->ticks > TICK_BUDGET) {
		snprintf(err, errlen, "tick budget");
		return -1;
	}
	return 0;
}

static int window(void *ctx, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	((struct seen *)ctx)->windows++;
	return 0;
}

static int packet(void *ctx, const uint8_t *data, uint32_t len, char *err, size_t errlen)
{
	struct seen *s = ctx;
	volatile uint8_t sink = 0;

	(void)err;
	(void)errlen;
	CHECK(len >= 14 && len <= 3000);
	/* The whole packet must be readable (ASan checks the bytes). */
	for (uint32_t i = 0; i < len; i++)
		sink ^= data[i];
	(void)sink;
	s->packets++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t intervals[] = { 1000000000ull, 500000000ull, 1000000ull,
					      60000000000ull };
	static const struct kl_pcap_walk_cb cb = { .tick = tick, .window = window,
						   .packet = packet };
	char perr[PCAP_ERRBUF_SIZE], err[600] = "";

	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	FILE *f = fmemopen(p, len ? len : 1, "rb");
	CHECK(f != NULL);
	if (len == 0)
		getc(f);
	pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, perr);
	if (pc == NULL) {
		fclose(f);
		free(p);
		return 0;
	}
	struct seen s = { .interval = intervals[data[0] % 4] };
	struct kl_pcap_stats st;
	memset(&st, 0, sizeof(st));
	if (kl_pcap_check_link(pc, "fuzz.pcap", err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
	} else if (kl_pcap_walk(pc, "fuzz.pcap", s.interval, &cb, &s, &st, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
	} else {
		CHECK(s.packets == st.packets);
		CHECK(st.cut <= st.packets);
		CHECK(s.ticks == 0 || st.packets + st.short_skipped > 0);
	}
	CHECK(s.packets == st.packets);
	pcap_close(pc); /* closes f */
	free(p);
	return 0;
}
