/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Decoders of the enforcer links' payloads (ipc/enforce.h). Every input is
 * tried with each decoder; whatever one accepts must re-encode to the very
 * same bytes (one encoding per request, so sender and receiver cannot
 * disagree about what was asked) and hold what the decoder promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/enforce.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static bool host_ok(const struct kl_addr *a)
{
	return (a->family == 4 && a->prefixlen == 32) || (a->family == 6 && a->prefixlen == 128);
}

static void decisions(const uint8_t *p, size_t n)
{
	char err[256] = "";
	uint32_t c;
	if (kl_decisions_count(p, n, &c, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(kl_decisions_len(c) == n);
	struct kl_decision *d = calloc(c ? c : 1, sizeof(*d));
	uint8_t *again = malloc(n);
	if (!d || !again)
		goto out;
	if (kl_decisions_decode(p, n, d, c, &c, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		goto out;
	}
	for (uint32_t i = 0; i < c; i++) {
		CHECK(host_ok(&d[i].addr));
		CHECK(d[i].level < KL_DEC_LEVEL_MAX);
		if (d[i].level != KL_DEC_OBSERVE)
			CHECK(d[i].ttl_ms >= KL_DEC_TTL_MIN_MS && d[i].ttl_ms <= KL_DEC_TTL_MAX_MS);
	}
	kl_decisions_encode(d, c, again);
	CHECK(memcmp(again, p, n) == 0);
out:
	free(d);
	free(again);
}

static void edge_rules(const uint8_t *p, size_t n)
{
	char err[256] = "";
	uint32_t c;
	if (kl_edge_rules_count(p, n, &c, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(kl_edge_rules_len(c) == n);
	struct kl_edge_rule *e = calloc(c ? c : 1, sizeof(*e));
	uint8_t *again = malloc(n);
	if (!e || !again)
		goto out;
	if (kl_edge_rules_decode(p, n, e, c, &c, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		goto out;
	}
	for (uint32_t i = 0; i < c; i++) {
		CHECK(host_ok(&e[i].src));
		CHECK(e[i].action >= KL_EDGE_ACT_ADD_ALLOW && e[i].action < KL_EDGE_ACT_MAX);
	}
	kl_edge_rules_encode(e, c, again);
	CHECK(memcmp(again, p, n) == 0);
out:
	free(e);
	free(again);
}

static void release(const uint8_t *p, size_t n)
{
	char err[256] = "";
	struct kl_release r;
	uint8_t again[KL_RELEASE_LEN];
	if (kl_release_decode(p, n, &r, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(n == KL_RELEASE_LEN);
	CHECK(r.budget >= 1 && r.budget <= KL_RELEASE_MAX_BUDGET);
	CHECK(r.prefix.prefixlen <= kl_addr_hostlen(&r.prefix));
	kl_release_encode(&r, again);
	CHECK(memcmp(again, p, n) == 0);
}

static void newsrc_limit(const uint8_t *p, size_t n)
{
	char err[256] = "";
	struct kl_newsrc_limit l;
	uint8_t again[KL_NEWSRC_LIMIT_LEN];
	if (kl_newsrc_limit_decode(p, n, &l, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(n == KL_NEWSRC_LIMIT_LEN);
	CHECK(l.rate_pps <= KL_DEC_MAX_RATE && l.burst >= 1 && l.burst <= KL_DEC_MAX_BURST);
	CHECK(l.ttl_ms >= KL_DEC_TTL_MIN_MS && l.ttl_ms <= KL_NEWSRC_TTL_MAX_MS);
	kl_newsrc_limit_encode(&l, again);
	CHECK(memcmp(again, p, n) == 0);
}

/* The answers and the query, for good measure (the decider decodes them). */
static void answers(const uint8_t *p, size_t n)
{
	char err[256] = "";
	uint32_t c, applied, max;
	bool tr;
	if (kl_acks_count(p, n, &c, NULL, 0) == 0) {
		struct kl_ack *a = calloc(c ? c : 1, sizeof(*a));
		uint8_t *again = malloc(n);
		if (a && again && kl_acks_decode(p, n, a, c, &c, &applied, err, sizeof(err)) == 0) {
			kl_acks_encode(a, c, again);
			CHECK(memcmp(again, p, n) == 0);
			CHECK(applied <= c);
		}
		free(a);
		free(again);
	}
	if (kl_state_count(p, n, &c, NULL, 0) == 0) {
		struct kl_state_rec *s = calloc(c ? c : 1, sizeof(*s));
		uint8_t *again = malloc(n);
		if (s && again && kl_state_decode(p, n, s, c, &c, &tr, err, sizeof(err)) == 0) {
			kl_state_encode(s, c, tr, again);
			CHECK(memcmp(again, p, n) == 0);
		}
		free(s);
		free(again);
	}
	struct kl_release_ack ra;
	if (kl_release_ack_decode(p, n, &ra, err, sizeof(err)) == 0) {
		uint8_t again[KL_RELEASE_ACK_LEN];
		kl_release_ack_encode(&ra, again);
		CHECK(memcmp(again, p, n) == 0);
	}
	if (kl_enforced_q_decode(p, n, &max, err, sizeof(err)) == 0) {
		uint8_t again[KL_ENFORCED_Q_LEN];
		kl_enforced_q_encode(max, again);
		CHECK(memcmp(again, p, n) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes, so ASan sees any over-read. */
	uint8_t *buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	decisions(buf, size);
	edge_rules(buf, size);
	release(buf, size);
	newsrc_limit(buf, size);
	answers(buf, size);
	free(buf);
	return 0;
}
