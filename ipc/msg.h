/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Wire format shared by every Kernloom process (DESIGN §4).
 *
 * A message is a 32-byte header followed by `payload_len` bytes of payload.
 * All integers are little-endian, all records have a fixed layout; a
 * decoder checks exact lengths, counts, enum ranges, finite floats and
 * address families before anyone reads a field. Encoders and decoders work
 * on plain buffers and structs: no I/O here (see chan.h for the sockets).
 */
#ifndef KL_IPC_MSG_H
#define KL_IPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

#define KL_MSG_MAGIC   0x314d4c4bu /* "KLM1" little-endian */
/* 2: TELEMETRY and FLOWS carry a frame index and a last-frame flag. */
#define KL_MSG_VERSION 2
#define KL_MSG_HDR_LEN 32
#define KL_MSG_MAX_PAYLOAD (128u << 20) /* a 1M-source TELEMETRY frame fits */

enum kl_msg_type {
	KL_MSG_HELLO = 1,
	KL_MSG_TELEMETRY = 2,
	KL_MSG_FLOWS = 3,
	KL_MSG_DECISIONS = 4,
	KL_MSG_DECISIONS_ACK = 5,
	KL_MSG_RELEASE = 6,
	KL_MSG_RELEASE_ACK = 7,
	KL_MSG_ENFORCED_Q = 8,
	KL_MSG_STATE = 9,
	KL_MSG_EDGE_RULES = 10,
	KL_MSG_EDGE_ACK = 11,
	KL_MSG_VIOLATION = 12,
	KL_MSG_CONTROL = 13,
	KL_MSG_RESULT = 14,
	KL_MSG_NEWSRC_LIMIT = 15, /* decider -> enforcer; answered with RESULT */
	KL_MSG_TYPE_MAX = 16
};

enum kl_role {
	KL_ROLE_NONE = 0,
	KL_ROLE_ENFORCER = 1,
	KL_ROLE_SENSOR = 2,
	KL_ROLE_DECIDER = 3,
	KL_ROLE_GRAPHD = 4,
	KL_ROLE_CTL = 5,
	KL_ROLE_MAX = 6
};

struct kl_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;        /* enum kl_msg_type */
	uint32_t flags;       /* reserved, must be 0 */
	uint32_t payload_len;
	uint64_t seq;
	uint64_t tick;
};

/* A decoded message: header plus a view of the payload inside the buffer
 * that was decoded (not copied). */
struct kl_msg {
	struct kl_msg_hdr hdr;
	const uint8_t *payload;
	size_t payload_len;
};

const char *kl_msg_type_name(unsigned type);
const char *kl_role_name(unsigned role);
/* "enforcer", "sensor", "decider", "graphd", "ctl" -> role; KL_ROLE_NONE if unknown. */
enum kl_role kl_role_parse(const char *s);

/* Who may send which message type to whom (the monitor table). */
bool kl_msg_allowed(enum kl_role from, enum kl_role to, unsigned type);

/* Write the header into out[0..31]. */
void kl_msg_hdr_encode(const struct kl_msg_hdr *h, uint8_t *out);

/* Check and split a received buffer: magic, version, known type, flags 0,
 * payload_len == len - 32 exactly. Returns 0, or -1 with err set. */
int kl_msg_decode(const uint8_t *buf, size_t len, struct kl_msg *out,
		  char *err, size_t errlen);

/* ---- HELLO: first message on every connection ---- */
struct kl_hello {
	uint16_t role;          /* enum kl_role of the sender */
	uint16_t proto_version; /* KL_MSG_VERSION */
	uint32_t pid;
};
#define KL_HELLO_LEN 8
void kl_hello_encode(const struct kl_hello *h, uint8_t out[KL_HELLO_LEN]);
int kl_hello_decode(const uint8_t *p, size_t len, struct kl_hello *out,
		    char *err, size_t errlen);

/* ---- CONTROL: an operator command (klctl -> any daemon) ---- */
enum kl_ctl_cmd {
	KL_CTL_STATUS = 1,
	KL_CTL_STATS,
	KL_CTL_TOP_SRC,        /* count = N, mode = enum kl_top_by */
	KL_CTL_EVENTS,         /* count = max events to return */
	KL_CTL_ATTACH,         /* ifname, flags FORCE, mode = enum kl_xdp_mode */
	KL_CTL_DETACH,         /* ifname */
	KL_CTL_ALLOW_ADD,      /* addr (prefix) */
	KL_CTL_ALLOW_DEL,
	KL_CTL_ALLOW_LIST,     /* count = limit (0 = default) */
	KL_CTL_ENFORCE_ALLOW,  /* mode = 0 off / 1 on */
	KL_CTL_DENY_ADD,       /* addr (host or prefix), ttl_ms (0 = permanent) */
	KL_CTL_DENY_DEL,
	KL_CTL_DENY_LIST,      /* count = limit (0 = default), as for every *_LIST */
	KL_CTL_RL_SET,         /* rate, burst: global default */
	KL_CTL_RL_OFF,
	KL_CTL_RL_SET_IP,      /* addr (host), rate, burst, ttl_ms */
	KL_CTL_RL_UNSET_IP,
	KL_CTL_RL_LIST,
	KL_CTL_TUPLE_ENFORCE,  /* mode = enum kl_edge_mode */
	KL_CTL_EDGE_ADD_DENY,  /* addr (host), port, proto, ttl_ms */
	KL_CTL_EDGE_DEL_DENY,
	KL_CTL_EDGE_ADD_ALLOW,
	KL_CTL_EDGE_DEL_ALLOW,
	KL_CTL_EDGE_LIST,
	KL_CTL_SAMPLING,       /* count = mask */
	KL_CTL_RESET,          /* flush RL overrides and deny entries */
	KL_CTL_SOURCES,        /* decider: count = max sources (0 = default) */
	KL_CTL_FORGIVE,        /* decider: addr (host or prefix), ttl_ms (0 = default) */
	KL_CTL_GRAPH_EXPORT,   /* graphd: mode 0 = every edge, 1 + enum gr_state = that state */
	KL_CTL_GRAPH_FREEZE,   /* graphd: mode 0 = freeze, 1 = dry run */
	KL_CTL_GRAPH_APPROVE,  /* graphd: addr (host); proto 0 = all its edges, else port+proto */
	KL_CTL_GRAPH_DENY,     /* graphd: as GRAPH_APPROVE */
	KL_CTL_GRAPH_VIOLATIONS, /* graphd: ttl_ms = since (0 = all), count = rows (0 = default) */
	KL_CTL_TUNE,           /* decider: autotune status; no arguments */
	KL_CTL_BASELINE,       /* decider: addr (host): its per-source baseline */
	KL_CTL_NEWSRC_LIMIT,   /* rate (0 = drop all), burst, ttl_ms (0 = permanent): the
				* aggregate limit on sources not yet admitted to a slot */
	KL_CTL_NEWSRC_OFF,
	KL_CTL_RELOAD,         /* decider: re-read whitelist and feedback now; no arguments */
	KL_CTL_CMD_MAX
};

enum kl_top_by { KL_TOP_PKTS = 0, KL_TOP_BYTES, KL_TOP_DROPS, KL_TOP_DROPRL, KL_TOP_MAX };
enum kl_xdp_mode { KL_XDP_AUTO = 0, KL_XDP_NATIVE, KL_XDP_GENERIC, KL_XDP_MODE_MAX };

#define KL_CTL_F_FORCE 0x1u
#define KL_CTL_F_ALL   0x1u /* flags allowed at all */

#define KL_IFNAMSIZ 16

/* Fixed record; the fields a command does not use must be zero. */
struct kl_ctl_req {
	uint16_t cmd;          /* enum kl_ctl_cmd */
	uint8_t mode;
	uint8_t proto;         /* IPPROTO_TCP/UDP/ICMP/ICMPV6 for edge commands */
	uint32_t flags;        /* KL_CTL_F_* */
	struct kl_addr addr;   /* family 0 when unused */
	uint16_t port;
	uint64_t rate;
	uint64_t burst;
	uint64_t ttl_ms;
	uint64_t count;
	char ifname[KL_IFNAMSIZ]; /* NUL-padded */
};
#define KL_CTL_REQ_LEN 80
void kl_ctl_req_encode(const struct kl_ctl_req *r, uint8_t out[KL_CTL_REQ_LEN]);
/* Exact length, known cmd, flags, family/prefix consistent (host bits zero),
 * ifname NUL-terminated and printable, every field the command does not use
 * zero, and per-command ranges (rate/burst/ttl/port/proto/mode/count). */
int kl_ctl_req_decode(const uint8_t *p, size_t len, struct kl_ctl_req *out,
		      char *err, size_t errlen);
const char *kl_ctl_cmd_name(unsigned cmd);

/* Limits the decoder enforces. */
#define KL_CTL_MAX_RATE   100000000ull      /* 1e8 pps */
#define KL_CTL_MAX_BURST  100000000ull
#define KL_CTL_MAX_TTL_MS (3650ull * 24 * 3600 * 1000)
#define KL_CTL_MAX_COUNT  10000000ull

/* ---- RESULT: the answer to CONTROL (and to HELLO) ---- */
enum kl_status {
	KL_OK = 0,
	KL_ERR_INVALID = 1,   /* malformed or out-of-range request */
	KL_ERR_REFUSED = 2,   /* policy said no (protected, quota, role) */
	KL_ERR_NOTFOUND = 3,
	KL_ERR_FAILED = 4,    /* the operation was tried and failed */
	KL_ERR_UNSUPPORTED = 5,
	KL_STATUS_MAX = 6
};
struct kl_result {
	int32_t status;       /* enum kl_status */
	const char *text;     /* human-readable, not NUL-terminated on decode */
	uint32_t text_len;
	const char *json;     /* a JSON document, or empty */
	uint32_t json_len;
};
#define KL_RESULT_FIXED_LEN 12 /* status, text_len, json_len; then the bytes */
/* Returns the payload length needed for r. */
size_t kl_result_len(const struct kl_result *r);
/* Encodes into out (kl_result_len bytes). */
void kl_result_encode(const struct kl_result *r, uint8_t *out);
/* Checks status range, exact total length, text printable UTF-8 without NUL,
 * json without NUL. Pointers in out point into p. */
int kl_result_decode(const uint8_t *p, size_t len, struct kl_result *out,
		     char *err, size_t errlen);
const char *kl_status_name(int status);
/* Offset of the first byte RESULT text may not hold (NUL, control other
 * than tab/newline, invalid UTF-8), or len when all of it is fine. */
size_t kl_result_text_check(const uint8_t *s, size_t len);

#endif
