/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Payloads of the enforcer's links (DESIGN §4): decider -> enforcer
 * DECISIONS / RELEASE / ENFORCED_Q, graphd -> enforcer EDGE_RULES /
 * ENFORCED_Q, and the answers DECISIONS_ACK, RELEASE_ACK, STATE, EDGE_ACK.
 *
 * Every payload is fixed-layout little-endian. A batch is an 8-byte header
 * (u32 count, u32 second word) followed by count records of a fixed size;
 * the decoders check the exact length, the count limit, every enum, every
 * range and that every reserved byte (and bytes 4..15 of an IPv4 address)
 * is zero, and name the record and field at fault. A message with any bad
 * record is refused as a whole: a sender that gets one field wrong is
 * broken or hostile, and half-applying its batch would hide that.
 *
 * Layouts (offsets in bytes):
 *   DECISIONS        u32 n, u32 reserved; n x 40:
 *                    0 family, 1 level, 2 u16 reserved, 4 u32 reserved,
 *                    8 addr[16], 24 u32 rate_pps, 28 u32 burst, 32 u64 ttl_ms
 *   DECISIONS_ACK    u32 n, u32 applied; n x 4: 0 status, 1 reason, 2 u16 reserved
 *   EDGE_ACK         the same as DECISIONS_ACK
 *   RELEASE          0 family, 1 prefixlen, 2 u16 reserved, 4 u32 budget, 8 addr[16] (24)
 *   RELEASE_ACK      u32 removed, u32 more (8)
 *   ENFORCED_Q       u32 max, u32 reserved (8)
 *   STATE            u32 n, u32 truncated; n x 40:
 *                    0 family, 1 kind, 2 proto, 3 reserved, 4 u16 port, 6 u16 reserved,
 *                    8 addr[16], 24 u32 rate_pps, 28 u32 burst, 32 u64 expires_in_ms
 *   EDGE_RULES       u32 n, u32 reserved; n x 32:
 *                    0 family, 1 action, 2 proto, 3 reserved, 4 u16 port, 6 u16 reserved,
 *                    8 u64 ttl_ms, 16 addr[16]
 *   NEWSRC_LIMIT     u32 rate_pps, u32 burst, u64 ttl_ms (16): the aggregate limit on
 *                    sources not yet admitted to a slot; ttl 1 s .. 1 day, burst >= 1
 * (EDGE_RULES carries ttl_ms as a u64 so that its records are 32 bytes
 * with every field naturally aligned; the range is 1 s .. 30 days.)
 */
#ifndef KL_IPC_ENFORCE_H
#define KL_IPC_ENFORCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "ipc/msg.h"

#define KL_BATCH_HDR_LEN     8
#define KL_DECISION_LEN      40
#define KL_ACK_REC_LEN       4
#define KL_RELEASE_LEN       24
#define KL_RELEASE_ACK_LEN   8
#define KL_ENFORCED_Q_LEN    8
#define KL_STATE_REC_LEN     40
#define KL_EDGE_RULE_LEN     32
#define KL_NEWSRC_LIMIT_LEN  16
#define KL_NEWSRC_TTL_MAX_MS (24ull * 3600 * 1000)

/* A batch payload: u32 n, a u32 header word the caller checks, n records
 * of rec bytes. n (at most max) when the length is exactly that, else -1
 * with err naming `what`. */
int kl_batch_count(const char *what, const uint8_t *p, size_t len, size_t rec, uint32_t max,
		   uint32_t *n, char *err, size_t errlen);

#define KL_DECISIONS_MAX     65536u   /* records per DECISIONS message */
#define KL_EDGE_RULES_MAX    65536u   /* records per EDGE_RULES message */
#define KL_STATE_MAX         1048576u /* records per STATE answer */
#define KL_RELEASE_MAX_BUDGET 100000u

#define KL_DEC_MAX_RATE      100000000u /* 1e8 pps */
#define KL_DEC_MAX_BURST     100000000u
#define KL_DEC_TTL_MIN_MS    1000ull
#define KL_DEC_TTL_MAX_MS    (7ull * 24 * 3600 * 1000)
#define KL_EDGE_TTL_MIN_MS   1000ull
#define KL_EDGE_TTL_MAX_MS   (30ull * 24 * 3600 * 1000)

/* A source's level as the decider asks for it. */
enum kl_dec_level {
	KL_DEC_OBSERVE = 0,   /* remove the decider's entries for the source */
	KL_DEC_RATE_SOFT = 1, /* per-source rate-limit override */
	KL_DEC_RATE_HARD = 2,
	KL_DEC_BLOCK = 3,     /* exact deny */
	KL_DEC_LEVEL_MAX
};

/* Why a record was or was not applied (the status byte follows from it,
 * see kl_ack_reason_status). */
enum kl_ack_reason {
	KL_ACK_OK = 0,
	KL_ACK_PROTECTED = 1, /* inside a protected CIDR */
	KL_ACK_RATE_CAP = 2,  /* the role's entries-per-second quota ran out */
	KL_ACK_TOTAL_CAP = 3, /* the role already holds its maximum of entries */
	KL_ACK_MAP_FULL = 4,  /* the map is full */
	KL_ACK_OPERATOR = 5,  /* an entry of the operator (or another role) is in the way */
	KL_ACK_INVALID = 6,   /* not a usable target (unspecified, loopback, multicast, ...) */
	KL_ACK_FAILED = 7,    /* the map write failed for another reason */
	KL_ACK_REASON_MAX
};

enum kl_state_kind {
	KL_STATE_RL = 1,
	KL_STATE_DENY = 2,
	KL_STATE_EDGE_ALLOW = 3,
	KL_STATE_EDGE_DENY = 4,
	KL_STATE_KIND_MAX
};

enum kl_edge_action {
	KL_EDGE_ACT_ADD_ALLOW = 1,
	KL_EDGE_ACT_DEL_ALLOW = 2,
	KL_EDGE_ACT_ADD_DENY = 3,
	KL_EDGE_ACT_DEL_DENY = 4,
	KL_EDGE_ACT_MAX
};

/* One DECISIONS record. addr is a host (prefixlen 32/128). */
struct kl_decision {
	struct kl_addr addr;
	uint8_t level;     /* enum kl_dec_level */
	uint32_t rate_pps; /* RATE_*: <= 1e8; else 0 */
	uint32_t burst;    /* RATE_*: 1..1e8; else 0 */
	uint64_t ttl_ms;   /* RATE_*, BLOCK: 1 s .. 7 days; OBSERVE: 0 */
};

/* One DECISIONS_ACK / EDGE_ACK record. */
struct kl_ack {
	uint8_t status; /* enum kl_status */
	uint8_t reason; /* enum kl_ack_reason */
};

struct kl_release {
	struct kl_addr prefix; /* host bits zero */
	uint32_t budget;       /* 1 .. KL_RELEASE_MAX_BUDGET deletions */
};

struct kl_release_ack {
	uint32_t removed;
	uint32_t more; /* 1: the budget ran out before the scan finished */
};

/* One STATE record: an entry whose origin is the asker's role. */
struct kl_state_rec {
	struct kl_addr addr;    /* host */
	uint8_t kind;           /* enum kl_state_kind */
	uint8_t proto;          /* edges: 6, 17, 1, 58; else 0 */
	uint16_t port;          /* edges (as folded in the map); else 0 */
	uint32_t rate_pps;      /* RL: the override; else 0 */
	uint32_t burst;         /* RL: >= 1; else 0 */
	uint64_t expires_in_ms; /* 0 = permanent */
};

/* One EDGE_RULES record. src is a host. */
struct kl_edge_rule {
	struct kl_addr src;
	uint8_t action; /* enum kl_edge_action */
	uint8_t proto;  /* 6, 17 any family; 1 with IPv4; 58 with IPv6 */
	uint16_t port;  /* 0 for ICMP */
	uint64_t ttl_ms; /* add: 1 s .. 30 days; del: 0 */
};

const char *kl_dec_level_name(unsigned level);  /* "OBSERVE", "RATE_SOFT", ... */
int kl_dec_level_parse(const char *s);          /* -1 if unknown */
const char *kl_ack_reason_name(unsigned reason); /* "ok", "protected", "rate-cap", ... */
/* The status that goes with a reason: OK, REFUSED, FAILED or INVALID. */
int kl_ack_reason_status(unsigned reason);
const char *kl_state_kind_name(unsigned kind);   /* "rl", "deny", "edge-allow", "edge-deny" */
const char *kl_edge_action_name(unsigned action); /* "add-allow", "del-allow", ... */

/* ---- DECISIONS ---- */
size_t kl_decisions_len(size_t n);
/* Writes kl_decisions_len(n) bytes. */
void kl_decisions_encode(const struct kl_decision *d, uint32_t n, uint8_t *out);
/* The record count after checking the header and the exact length, so the
 * caller can size the array for kl_decisions_decode. */
int kl_decisions_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen);
/* Decode every record into out[0..cap); refuses n > cap. */
int kl_decisions_decode(const uint8_t *p, size_t len, struct kl_decision *out, size_t cap,
			uint32_t *n, char *err, size_t errlen);

/* ---- DECISIONS_ACK and EDGE_ACK ---- */
size_t kl_acks_len(size_t n);
/* `applied` is written as the number of records with status OK. */
void kl_acks_encode(const struct kl_ack *a, uint32_t n, uint8_t *out);
int kl_acks_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen);
/* Checks status/reason ranges and pairing and that `applied` matches. */
int kl_acks_decode(const uint8_t *p, size_t len, struct kl_ack *out, size_t cap, uint32_t *n,
		   uint32_t *applied, char *err, size_t errlen);

/* ---- RELEASE, RELEASE_ACK, ENFORCED_Q ---- */
/* NEWSRC_LIMIT: the decider's request for the aggregate new-source limit. */
struct kl_newsrc_limit {
	uint32_t rate_pps; /* <= KL_DEC_MAX_RATE; 0 drops every such packet */
	uint32_t burst;    /* 1 .. KL_DEC_MAX_BURST */
	uint64_t ttl_ms;   /* KL_DEC_TTL_MIN_MS .. KL_NEWSRC_TTL_MAX_MS */
};
void kl_newsrc_limit_encode(const struct kl_newsrc_limit *l, uint8_t out[KL_NEWSRC_LIMIT_LEN]);
int kl_newsrc_limit_decode(const uint8_t *p, size_t len, struct kl_newsrc_limit *out, char *err,
			   size_t errlen);

void kl_release_encode(const struct kl_release *r, uint8_t out[KL_RELEASE_LEN]);
int kl_release_decode(const uint8_t *p, size_t len, struct kl_release *out, char *err,
		      size_t errlen);
void kl_release_ack_encode(const struct kl_release_ack *a, uint8_t out[KL_RELEASE_ACK_LEN]);
int kl_release_ack_decode(const uint8_t *p, size_t len, struct kl_release_ack *out, char *err,
			  size_t errlen);
/* max: records wanted in STATE, 0 .. KL_STATE_MAX (0: only "is there any"). */
void kl_enforced_q_encode(uint32_t max, uint8_t out[KL_ENFORCED_Q_LEN]);
int kl_enforced_q_decode(const uint8_t *p, size_t len, uint32_t *max, char *err, size_t errlen);

/* ---- STATE ---- */
size_t kl_state_len(size_t n);
void kl_state_encode(const struct kl_state_rec *s, uint32_t n, bool truncated, uint8_t *out);
int kl_state_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen);
int kl_state_decode(const uint8_t *p, size_t len, struct kl_state_rec *out, size_t cap,
		    uint32_t *n, bool *truncated, char *err, size_t errlen);

/* ---- EDGE_RULES ---- */
size_t kl_edge_rules_len(size_t n);
void kl_edge_rules_encode(const struct kl_edge_rule *r, uint32_t n, uint8_t *out);
int kl_edge_rules_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen);
int kl_edge_rules_decode(const uint8_t *p, size_t len, struct kl_edge_rule *out, size_t cap,
			 uint32_t *n, char *err, size_t errlen);

#endif
