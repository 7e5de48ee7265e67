/* SPDX-License-Identifier: MPL-2.0 */
/*
 * VIOLATION and APPROVED payloads (graphd -> decider, DESIGN §4, §7): the edges outside
 * the frozen baseline that one graphd tick saw, batched (one message per
 * KL_VIOLATIONS_MAX records of a tick, never one per edge).
 *
 *   u32 n, u32 reserved (0); then n records of 24 bytes:
 *    0 u8 family (4 or 6), 1 u8 mode (1 observe, 2 enforce), 2 u8 proto,
 *    3 u8 reason (0 edge outside the baseline, 1 deviation: a learned edge
 *    far above its per-edge baseline; a deviation is always mode observe),
 *    4 u16 port, 6 u16 reserved, 8 addr[16]
 *
 * The port is 0 unless proto is TCP or UDP (0 there: ephemeral, folded).
 * Mode observe means "add strikes" (frozen-observe), enforce "block now"
 * (frozen-enforce); the numbers are the decider's enum kl_viol_mode. The
 * decoder checks the exact length, the count limit, every reserved byte
 * and bytes 4..15 of an IPv4 address, so decode + encode gives back the
 * very bytes that came in.
 */
#ifndef KL_IPC_VIOLATION_H
#define KL_IPC_VIOLATION_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

#define KL_VIOLATION_HDR_LEN 8
#define KL_VIOLATION_REC_LEN 24
/* Records in one VIOLATION message, at most: the one limit both ends use.
 * The decoder refuses more, the receiver sizes its buffer by it, and the
 * sender (kl_violations_send) splits a longer list into several messages. */
#define KL_VIOLATIONS_MAX 1024u

enum kl_violation_mode { KL_VIOLATION_OBSERVE = 1, KL_VIOLATION_ENFORCE = 2 };
enum kl_violation_reason { KL_VIOLATION_R_EDGE = 0, KL_VIOLATION_R_DEVIATION = 1 };

struct kl_violation_rec {
	struct kl_addr src; /* host */
	uint16_t port;
	uint8_t proto;
	uint8_t mode;       /* enum kl_violation_mode */
	uint8_t reason;     /* enum kl_violation_reason */
};

size_t kl_violations_len(size_t n);
void kl_violations_encode(const struct kl_violation_rec *v, uint32_t n, uint8_t *out);
int kl_violations_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen);
/* Decode every record into out[0..cap); refuses n > cap. */
int kl_violations_decode(const uint8_t *p, size_t len, struct kl_violation_rec *out, size_t cap,
			 uint32_t *n, char *err, size_t errlen);

/* Encode v[0..n) as VIOLATION messages (wire header + payload) of at most
 * KL_VIOLATIONS_MAX records each, numbered from ++*seq, and hand each to
 * put(ctx, msg, len), which returns 0 when the message went out. Returns
 * the number of records in messages put() did not take (or that could not
 * be built), for the caller to count and log. */
size_t kl_violations_send(const struct kl_violation_rec *v, size_t n, uint64_t *seq,
			  uint64_t tick, int (*put)(void *ctx, const uint8_t *msg, size_t len),
			  void *ctx);

/*
 * APPROVED payload (graphd -> decider, on the same link): the operator put
 * a source's edges into the baseline (`klctl graph approve-ip`), so what
 * the decider holds against it for graph violations is released now, not
 * at its TTL. Exactly 24 bytes:
 *   0 u8 family (4 or 6), 1..7 reserved (0), 8 addr[16] (IPv4: bytes 4..15 0)
 */
#define KL_APPROVED_LEN 24
void kl_approved_encode(const struct kl_addr *src, uint8_t out[KL_APPROVED_LEN]);
/* out gets a host address (prefix /32 or /128). */
int kl_approved_decode(const uint8_t *p, size_t len, struct kl_addr *out, char *err,
		       size_t errlen);
/* One APPROVED message (wire header + payload) numbered ++*seq, handed to
 * put as kl_violations_send does. Returns put's answer, or -1. */
int kl_approved_send(const struct kl_addr *src, uint64_t *seq, uint64_t tick,
		     int (*put)(void *ctx, const uint8_t *msg, size_t len), void *ctx);

#endif
