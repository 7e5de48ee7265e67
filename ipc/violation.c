/* SPDX-License-Identifier: MPL-2.0 */
/* VIOLATION codec (see violation.h for the layout). */
#include "ipc/violation.h"
#include "common/err.h"
#include "ipc/enforce.h"
#include "ipc/msg.h"
#include "ipc/wire.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

size_t kl_violations_len(size_t n)
{
	return KL_VIOLATION_HDR_LEN + n * KL_VIOLATION_REC_LEN;
}

void kl_violations_encode(const struct kl_violation_rec *v, uint32_t n, uint8_t *out)
{
	kl_put32(out, n);
	kl_put32(out + 4, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = out + kl_violations_len(i);
		memset(r, 0, KL_VIOLATION_REC_LEN);
		r[0] = v[i].src.family;
		r[1] = v[i].mode;
		r[2] = v[i].proto;
		r[3] = v[i].reason;
		r[4] = (uint8_t)v[i].port;
		r[5] = (uint8_t)(v[i].port >> 8);
		memcpy(r + 8, v[i].src.addr, v[i].src.family == 4 ? 4 : 16);
	}
}

int kl_violations_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen)
{
	if (kl_batch_count("VIOLATION", p, len, KL_VIOLATION_REC_LEN, KL_VIOLATIONS_MAX, n, err,
			   errlen) < 0)
		return -1;
	if (kl_get32(p + 4) != 0)
		return kl_fail(err, errlen, "VIOLATION: reserved header word is not zero");
	return 0;
}

int kl_violations_decode(const uint8_t *p, size_t len, struct kl_violation_rec *out, size_t cap,
			 uint32_t *n, char *err, size_t errlen)
{
	uint32_t c;

	if (kl_violations_count(p, len, &c, err, errlen) < 0)
		return -1;
	if (c > cap)
		return kl_fail(err, errlen, "VIOLATION: %u records, room for %zu", c, cap);
	for (uint32_t i = 0; i < c; i++) {
		const uint8_t *r = p + kl_violations_len(i);
		struct kl_violation_rec *v = &out[i];
		uint16_t port = (uint16_t)(r[4] | r[5] << 8);

		if (r[0] != 4 && r[0] != 6)
			return kl_fail(err, errlen, "VIOLATION record %u: family %u is not 4 or 6", i, r[0]);
		if (r[1] != KL_VIOLATION_OBSERVE && r[1] != KL_VIOLATION_ENFORCE)
			return kl_fail(err, errlen, "VIOLATION record %u: mode %u is not 1 (observe) or 2 "
				    "(enforce)", i, r[1]);
		if (r[3] != KL_VIOLATION_R_EDGE && r[3] != KL_VIOLATION_R_DEVIATION)
			return kl_fail(err, errlen, "VIOLATION record %u: reason %u is not 0 (edge) or 1 "
				    "(deviation)", i, r[3]);
		if (r[3] == KL_VIOLATION_R_DEVIATION && r[1] != KL_VIOLATION_OBSERVE)
			return kl_fail(err, errlen, "VIOLATION record %u: a deviation must be mode 1 "
				    "(observe): it never blocks by itself", i);
		if (r[6] != 0 || r[7] != 0)
			return kl_fail(err, errlen, "VIOLATION record %u: reserved bytes are not zero", i);
		if (r[0] == 4 && !all_zero(r + 12, 12))
			return kl_fail(err, errlen, "VIOLATION record %u: IPv4 address with bytes 4..15 "
				    "not zero", i);
		if (port != 0 && r[2] != 6 && r[2] != 17)
			return kl_fail(err, errlen, "VIOLATION record %u: port %u with protocol %u (only "
				    "TCP and UDP have ports)", i, port, r[2]);
		memset(v, 0, sizeof(*v));
		v->src.family = r[0];
		v->src.prefixlen = r[0] == 4 ? 32 : 128;
		memcpy(v->src.addr, r + 8, r[0] == 4 ? 4 : 16);
		v->mode = r[1];
		v->proto = r[2];
		v->reason = r[3];
		v->port = port;
	}
	*n = c;
	return 0;
}

size_t kl_violations_send(const struct kl_violation_rec *v, size_t n, uint64_t *seq,
			  uint64_t tick, int (*put)(void *ctx, const uint8_t *msg, size_t len),
			  void *ctx)
{
	size_t lost = 0;
	uint8_t *msg = malloc(KL_MSG_HDR_LEN + kl_violations_len(KL_VIOLATIONS_MAX));

	if (msg == NULL)
		return n;
	for (size_t off = 0; off < n; off += KL_VIOLATIONS_MAX) {
		uint32_t k = (uint32_t)(n - off < KL_VIOLATIONS_MAX ? n - off : KL_VIOLATIONS_MAX);
		size_t plen = kl_violations_len(k);
		struct kl_msg_hdr h = { .magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION,
					.type = KL_MSG_VIOLATION, .payload_len = (uint32_t)plen,
					.seq = ++*seq, .tick = tick };

		kl_msg_hdr_encode(&h, msg);
		kl_violations_encode(v + off, k, msg + KL_MSG_HDR_LEN);
		if (put(ctx, msg, KL_MSG_HDR_LEN + plen) != 0)
			lost += k;
	}
	free(msg);
	return lost;
}
