/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-graphd's untrusted inputs (the FLOWS decoder itself is fuzzed by
 * fuzz_frames.c):
 *   0  VIOLATION payload (byte 0 below 0x80) or APPROVED payload (0x80 and
 *      up): accepted input re-encodes to the same bytes
 *   1  FLOWS payload merged into a frozen-enforce graph that lives across
 *      inputs: the state counts always add up, every edge is findable,
 *      violations stay within the per-tick cap and name edges outside the
 *      baseline, and the push planner stays within its budget
 *   2  a JSON-lines trace replayed into a fresh graph
 * Byte 0 selects the mode, the rest is the data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graphd/graph.h"
#include "graphd/push.h"
#include "graphd/replay.h"
#include "ipc/frames.h"
#include "ipc/violation.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void violations(const uint8_t *p, size_t len)
{
	char err[256] = "";
	uint32_t n;

	if (kl_violations_count(p, len, &n, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	struct kl_violation_rec *v = calloc(n ? n : 1, sizeof(*v));
	uint8_t *again = malloc(len);
	CHECK(v != NULL && again != NULL);
	if (kl_violations_decode(p, len, v, n, &n, err, sizeof(err)) == 0) {
		for (uint32_t i = 0; i < n; i++) {
			CHECK(kl_addr_is_host(&v[i].src));
			CHECK(v[i].mode == KL_VIOLATION_OBSERVE || v[i].mode == KL_VIOLATION_ENFORCE);
			CHECK(v[i].port == 0 || v[i].proto == 6 || v[i].proto == 17);
		}
		kl_violations_encode(v, n, again);
		CHECK(memcmp(again, p, len) == 0);
	} else {
		CHECK(err[0] != '\0');
	}
	free(v);
	free(again);
}

static void approved(const uint8_t *p, size_t len)
{
	char err[256] = "";
	struct kl_addr a;
	uint8_t again[KL_APPROVED_LEN];

	if (kl_approved_decode(p, len, &a, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(len == KL_APPROVED_LEN && kl_addr_is_host(&a));
	kl_approved_encode(&a, again);
	CHECK(memcmp(again, p, len) == 0);
}

static void check_graph(const struct gr_graph *g)
{
	size_t sum = 0, gone = 0;
	for (unsigned s = 0; s < GR_STATE_MAX; s++)
		sum += g->count[s];
	for (size_t i = 0; i < g->n; i++) {
		CHECK(g->e[i].state < GR_STATE_MAX || g->e[i].state == GR_GONE);
		gone += g->e[i].state == GR_GONE;
		CHECK(gr_find(g, &g->e[i].k) == &g->e[i]);
	}
	CHECK(gone == g->ngone);
	CHECK(sum + gone == g->n);
	CHECK(g->nviol <= g->p.viol_max_tick);
	for (size_t i = 0; i < g->nviol; i++) {
		const struct gr_edge *e = gr_find(g, &g->viol[i].k);
		CHECK(e != NULL);
		/* A path outside the frozen graph, or a known path carrying far
		 * more than its baseline (a deviation: a signal, never a block). */
		if (g->viol[i].action == GR_ACT_DEVIATION)
			CHECK(gr_in_baseline(e) && g->viol[i].mode == GR_MODE_OBSERVE);
		else
			CHECK(!gr_in_baseline(e) && g->viol[i].action == GR_ACT_BLOCK);
	}
}

static void flows(const uint8_t *p, size_t len)
{
	static struct gr_graph g;
	static bool init;
	static int64_t t;
	static struct gr_push_batch b;
	struct kl_flows_view v;
	char err[256];

	if (!init) {
		struct gr_params pp;
		gr_params_default(&pp);
		pp.mode = GR_MODE_ENFORCE;
		pp.viol_max_tick = 64;
		CHECK(gr_init(&g, &pp) == 0);
		/* A small baseline to violate against. */
		struct kl_addr a;
		kl_addr_parse("198.18.0.1", &a, NULL, 0);
		gr_set_source(&g, &a, false, 8080, 6, GR_APPROVED, 0, 0, err, sizeof(err));
		init = true;
	}
	if (kl_flows_decode(p, len, &v, err, sizeof(err)) < 0)
		return;
	struct gr_obs *o = calloc(v.h.n_records ? v.h.n_records : 1, sizeof(*o));
	CHECK(o != NULL);
	for (size_t i = 0; i < v.h.n_records; i++) {
		struct kl_flow_rec f;
		kl_flows_record(&v, i, &f);
		o[i].src.family = f.family;
		o[i].src.prefixlen = f.family == 4 ? 32 : 128;
		memcpy(o[i].src.addr, f.addr, 16);
		o[i].port = f.port;
		o[i].proto = f.proto;
		o[i].pkts = f.pkts;
		o[i].bytes = f.bytes;
	}
	t += 1000 + (int64_t)(v.h.t_ns % 600000);
	CHECK(gr_tick(&g, t, o, v.h.n_records, NULL, 0) == 0);
	check_graph(&g);
	gr_flushed(&g);
	struct gr_push_params pp;
	gr_push_params_default(&pp);
	pp.max = 16;
	long n = gr_push_plan(&g, &pp, t, &b);
	CHECK(n >= 0 && n <= 16);
	/* Keep the graph bounded across a long run. */
	if (g.n > 50000) {
		gr_free(&g);
		gr_push_free(&b);
		init = false;
	}
	free(o);
}

static void jsonl(const uint8_t *p, size_t len)
{
	struct gr_reader *r;
	struct gr_graph g;
	struct gr_params pp;
	struct gr_replay_stats st;
	char err[512];

	gr_params_default(&pp);
	pp.min_age_ms = 1000;
	pp.promote_every_ms = 1000;
	pp.window_ms = 1000;
	CHECK(gr_init(&g, &pp) == 0);
	CHECK(gr_reader_mem(&r, (const char *)p, len, "fuzz", err, sizeof(err)) == 0);
	if (gr_replay(&g, NULL, r, NULL, &st, err, sizeof(err)) < 0)
		CHECK(err[0] != '\0');
	size_t sum = 0;
	for (unsigned s = 0; s < GR_STATE_MAX; s++)
		sum += g.count[s];
	CHECK(sum == g.n);
	gr_reader_close(r);
	gr_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1);
	CHECK(p != NULL);
	memcpy(p, data + 1, len);
	switch (data[0] % 3) {
	case 0:
		if (data[0] >= 0x80)
			approved(p, len);
		else
			violations(p, len);
		break;
	case 1: flows(p, len); break;
	default: jsonl(p, len); break;
	}
	free(p);
	return 0;
}
