/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Graphd reports up to viol_max_tick (1000) violations per tick, and one
 * limit (KL_VIOLATIONS_MAX) holds at both ends: graphd's sender splits by
 * it, the decider decodes by it, and whatever does not fit is counted,
 * never silently lost, so a busy tick is never lost whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "decider/engine.h"
#include "ipc/msg.h"
#include "ipc/stream.h"
#include "ipc/violation.h"
#include "tests/wait.h"

#define DECIDER_TICK_ROOM 4096 /* decider/live.c VIOL_MAX */

static void make_recs(struct kl_violation_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].src.family = 4;
		r[i].src.prefixlen = 32;
		r[i].src.addr[0] = 198;
		r[i].src.addr[1] = 18;
		r[i].src.addr[2] = (uint8_t)(i >> 8);
		r[i].src.addr[3] = (uint8_t)i;
		r[i].proto = 6;
		r[i].port = (uint16_t)(1 + i % 60000);
		r[i].mode = i % 3 ? KL_VIOLATION_OBSERVE : KL_VIOLATION_ENFORCE;
	}
}

/* The decider's side of one message, as decider/live.c does it. */
struct decider {
	struct dec_violation tick[DECIDER_TICK_ROOM];
	size_t n, lost, msgs, refused;
	uint64_t last_seq;
	struct kl_violation_rec scratch[KL_VIOLATIONS_MAX];
};

static int decider_take(struct decider *d, const uint8_t *buf, size_t len)
{
	struct kl_msg m;
	uint32_t n;
	char err[256];

	assert_int_equal(kl_msg_decode(buf, len, &m, err, sizeof(err)), 0);
	assert_int_equal(m.hdr.type, KL_MSG_VIOLATION);
	assert_true(m.hdr.seq > d->last_seq);
	d->last_seq = m.hdr.seq;
	d->msgs++;
	if (kl_violations_decode(m.payload, m.payload_len, d->scratch, KL_VIOLATIONS_MAX, &n, err,
				 sizeof(err)) < 0) {
		d->refused++;
		return 0;
	}
	d->lost += dec_violations_take(d->tick, &d->n, DECIDER_TICK_ROOM, d->scratch, n);
	return 0;
}

static int put_to_decider(void *ctx, const uint8_t *msg, size_t len)
{
	return decider_take(ctx, msg, len);
}

static void check_same(const struct decider *d, const struct kl_violation_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(dec_addr_cmp(&d->tick[i].addr, &r[i].src), 0);
		assert_int_equal(d->tick[i].port, r[i].port);
		assert_int_equal(d->tick[i].proto, r[i].proto);
		assert_int_equal(d->tick[i].mode, r[i].mode == KL_VIOLATION_ENFORCE ? DEC_VIOL_ENFORCE
										    : DEC_VIOL_OBSERVE);
	}
}

static void test_split_and_accepted(void **state)
{
	static const size_t sizes[] = { 1, 256, 257, 1000, KL_VIOLATIONS_MAX, KL_VIOLATIONS_MAX + 1,
					 4000 };
	static struct kl_violation_rec r[4096];
	static struct decider d;
	(void)state;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint64_t seq = 10;
		memset(&d, 0, sizeof(d));
		make_recs(r, n);
		assert_int_equal(kl_violations_send(r, n, &seq, 7, put_to_decider, &d), 0);
		assert_int_equal(d.refused, 0);
		assert_int_equal(d.lost, 0);
		assert_int_equal(d.n, n);
		assert_int_equal(d.msgs, (n + KL_VIOLATIONS_MAX - 1) / KL_VIOLATIONS_MAX);
		assert_int_equal(seq, 10 + d.msgs);
		check_same(&d, r, n);
	}
}

/* A message over the limit is refused by the decoder, and what the
 * decider's tick cannot hold is counted. */
static void test_limits_counted(void **state)
{
	static uint8_t big[KL_VIOLATION_HDR_LEN + (KL_VIOLATIONS_MAX + 1) * KL_VIOLATION_REC_LEN];
	static struct kl_violation_rec r[KL_VIOLATIONS_MAX + 1], out[KL_VIOLATIONS_MAX];
	static struct dec_violation tick[10];
	uint32_t n;
	size_t have = 0;
	char err[256];
	(void)state;

	make_recs(r, KL_VIOLATIONS_MAX + 1);
	kl_violations_encode(r, KL_VIOLATIONS_MAX + 1, big);
	assert_int_equal(kl_violations_decode(big, sizeof(big), out, KL_VIOLATIONS_MAX, &n, err,
					      sizeof(err)), -1);
	assert_non_null(strstr(err, "above the limit"));
	assert_int_equal(dec_violations_take(tick, &have, 10, r, 25), 15);
	assert_int_equal(have, 10);
}

static int put_fails(void *ctx, const uint8_t *msg, size_t len)
{
	(void)msg;
	(void)len;
	return (*(int *)ctx)++ == 1 ? -1 : 0; /* the second message is refused */
}

static void test_sender_counts_what_did_not_go(void **state)
{
	static struct kl_violation_rec r[3000];
	uint64_t seq = 0;
	int calls = 0;
	(void)state;

	make_recs(r, 3000);
	assert_int_equal(kl_violations_send(r, 3000, &seq, 1, put_fails, &calls), KL_VIOLATIONS_MAX);
	assert_int_equal(calls, 3);
}

/* As graphd/daemon.c puts them. */
static int put_stream(void *tx, const uint8_t *msg, size_t len)
{
	return kl_stream_send(tx, msg, len) == 0 ? 0 : -1;
}

/* graphd's real sender over a real stream: 1000 violations of one tick
 * all reach a decider receiver and are all taken. */
static void test_over_a_stream(void **state)
{
	char dir[] = "/tmp/kl-viol-XXXXXX", path[128], err[256];
	static struct kl_violation_rec r[1000];
	static struct decider d;
	struct kl_stream_rx *rx;
	struct kl_stream_tx *tx;
	struct kl_stream_tx_stats st;
	uint64_t seq = 0;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/violations.sock", dir);
	struct kl_stream_opts o = { .path = path, .self = KL_ROLE_DECIDER,
				    .peer_role = KL_ROLE_GRAPHD, .mode = 0600, .gid = (gid_t)-1,
				    .allowed_gid = (gid_t)-1 };
	if (kl_stream_listen(&rx, &o, err, sizeof(err)) < 0)
		fail_msg("listen: %s", err);
	assert_int_equal(kl_stream_dial(&tx, path, KL_ROLE_GRAPHD, err, sizeof(err)), 0);
	assert_true(KL_WAIT_UNTIL((kl_stream_tx_stats(tx, &st), st.connected), 3000));
	make_recs(r, 1000);
	memset(&d, 0, sizeof(d));
	size_t lost = kl_violations_send(r, 1000, &seq, 3, put_stream, tx);
	assert_int_equal(lost, 0);
	for (int i = 0; i < 100 && d.n < 1000; i++) {
		struct kl_stream_msg m;
		if (kl_stream_recv(rx, &m, 50) == 1) {
			if (m.msg.hdr.type == KL_MSG_VIOLATION)
				decider_take(&d, m.msg.payload - KL_MSG_HDR_LEN,
					     KL_MSG_HDR_LEN + m.msg.payload_len);
			kl_stream_msg_done(&m);
		}
	}
	assert_int_equal(d.refused, 0);
	assert_int_equal(d.n, 1000);
	check_same(&d, r, 1000);
	kl_stream_tx_close(tx);
	kl_stream_close(rx);
	rmdir(dir);
}

/* APPROVED: exact size, family, reserved bytes and IPv4 padding checked;
 * what decodes re-encodes to the same bytes; the sender numbers it. */
static int put_keep(void *ctx, const uint8_t *msg, size_t len)
{
	memcpy(ctx, msg, len);
	return 0;
}

static void test_approved(void **state)
{
	(void)state;
	struct kl_addr a, b;
	uint8_t p[KL_APPROVED_LEN], again[KL_APPROVED_LEN], bad[KL_APPROVED_LEN + 1];
	char err[256], e2[64];
	const char *ips[] = { "198.18.0.3", "fd00:6b6c::3" };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(kl_addr_parse(ips[i], &a, e2, sizeof(e2)), 0);
		kl_approved_encode(&a, p);
		assert_int_equal(kl_approved_decode(p, sizeof(p), &b, err, sizeof(err)), 0);
		assert_int_equal(dec_addr_cmp(&a, &b), 0);
		kl_approved_encode(&b, again);
		assert_memory_equal(p, again, sizeof(p));
	}
	kl_addr_parse("198.18.0.3", &a, e2, sizeof(e2));
	kl_approved_encode(&a, p);
	assert_int_equal(kl_approved_decode(p, sizeof(p) - 1, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "want exactly 24"));
	memcpy(bad, p, sizeof(p));
	bad[KL_APPROVED_LEN] = 0;
	assert_int_equal(kl_approved_decode(bad, sizeof(bad), &b, err, sizeof(err)), -1);
	memcpy(bad, p, sizeof(p));
	bad[0] = 5;
	assert_int_equal(kl_approved_decode(bad, KL_APPROVED_LEN, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "family 5"));
	memcpy(bad, p, sizeof(p));
	bad[3] = 1;
	assert_int_equal(kl_approved_decode(bad, KL_APPROVED_LEN, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reserved"));
	memcpy(bad, p, sizeof(p));
	bad[20] = 1;
	assert_int_equal(kl_approved_decode(bad, KL_APPROVED_LEN, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bytes 4..15"));

	uint8_t msg[KL_MSG_HDR_LEN + KL_APPROVED_LEN];
	uint64_t seq = 41;
	assert_int_equal(kl_approved_send(&a, &seq, 7, put_keep, msg), 0);
	assert_int_equal(seq, 42);
	struct kl_msg m;
	assert_int_equal(kl_msg_decode(msg, sizeof(msg), &m, err, sizeof(err)), 0);
	assert_int_equal(m.hdr.type, KL_MSG_APPROVED);
	assert_int_equal(m.hdr.seq, 42);
	assert_int_equal(kl_approved_decode(m.payload, m.payload_len, &b, err, sizeof(err)), 0);
	assert_int_equal(dec_addr_cmp(&a, &b), 0);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_split_and_accepted),
		cmocka_unit_test(test_limits_counted),
		cmocka_unit_test(test_sender_counts_what_did_not_go),
		cmocka_unit_test(test_over_a_stream),
		cmocka_unit_test(test_approved),
	};
	kl_log_init("test_violations", KL_LOG_ERROR);
	return cmocka_run_group_tests(t, NULL, NULL);
}
