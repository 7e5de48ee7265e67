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
	KL_MSG_APPROVED = 16,     /* graphd -> decider: the operator approved a source */
	KL_MSG_TYPE_MAX = 17
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

/* Admission of a HELLO on a connection whose role so far is `current`
 * (KL_ROLE_NONE before any HELLO), on a socket that serves `peer_role`. */
enum kl_hello_verdict {
	KL_HELLO_ADMIT,       /* the connection now speaks as h->role */
	KL_HELLO_AGAIN,       /* the same HELLO once more on this connection */
	KL_HELLO_MALFORMED,   /* why: the decoder's reason */
	KL_HELLO_ROLE_SWITCH, /* another role than the connection's first HELLO */
	KL_HELLO_WRONG_ROLE,  /* that role may not connect to this socket */
	KL_HELLO_WRONG_VERSION,
};
/* Decodes msg's HELLO payload into *h and judges it; why gets the reason
 * for any verdict but ADMIT and AGAIN. */
enum kl_hello_verdict kl_hello_admit(const struct kl_msg *msg, enum kl_role current,
				     enum kl_role peer_role, struct kl_hello *h, char *why,
				     size_t whylen);

/* ---- CONTROL: an operator command (klctl -> any daemon) ---- */

/* The request fields a command uses; every other field must be zero. */
enum kl_ctl_use {
	KL_CTL_U_MODE = 1 << 0,
	KL_CTL_U_PROTO = 1 << 1,
	KL_CTL_U_FORCE = 1 << 2,
	KL_CTL_U_ADDR_HOST = 1 << 3,   /* a single address */
	KL_CTL_U_ADDR_PREFIX = 1 << 4, /* an address or a prefix */
	KL_CTL_U_PORT = 1 << 5,
	KL_CTL_U_RATE = 1 << 6,
	KL_CTL_U_BURST = 1 << 7,
	KL_CTL_U_TTL = 1 << 8,
	KL_CTL_U_COUNT = 1 << 9,
	KL_CTL_U_IFNAME = 1 << 10,
	KL_CTL_U_PROTO_OPT = 1 << 11,  /* as PROTO, or proto 0 (with port 0) for "every edge" */
	KL_CTL_U_UNTIL = 1 << 12,      /* with TTL and MODE: mode 1 makes ttl_ms an absolute
					* Unix time in ms (up to KL_CTL_MAX_UNTIL_MS) */
};

/* What a command does to the daemon that serves it. */
enum kl_ctl_kind {
	KL_CTL_K_READ,     /* reads only */
	KL_CTL_K_WRITE,    /* changes state */
	KL_CTL_K_RESTRICT, /* adds an entry the data plane drops or throttles a
			    * source by: the protected list guards these, and
			    * only the operator may make one permanent */
};

/*
 * Every control command, once. Its enum is KL_CTL_<ID>; the rest is derived
 * from this table: the wire and log name, the daemon that serves it, the
 * field rules of the decoder (fields used, highest mode and what a mode
 * means), and how the serving daemon treats it.
 *
 * X(ID, name, serving role, fields used, mode max, mode meaning, kind)
 */
#define KL_U(f) KL_CTL_U_##f
#define KL_CTL_COMMANDS(X)                                                                       \
	X(STATUS, "status", ENFORCER, KL_U(MODE), 1,                                             \
	  "1: brief, only the \"daemon\" object is needed (klctl status)", READ)                 \
	X(STATS, "stats", ENFORCER, 0, 0, NULL, READ)                                            \
	X(TOP_SRC, "top-src", ENFORCER, KL_U(MODE) | KL_U(COUNT), KL_TOP_MAX - 1,                \
	  "sort key (enum kl_top_by)", READ)                                                     \
	X(EVENTS, "events", ENFORCER, KL_U(COUNT), 0, NULL, READ)                                \
	X(ATTACH, "attach", ENFORCER, KL_U(IFNAME) | KL_U(FORCE) | KL_U(MODE),                   \
	  KL_XDP_MODE_MAX - 1, "XDP mode (enum kl_xdp_mode)", WRITE)                             \
	X(DETACH, "detach", ENFORCER, KL_U(IFNAME), 0, NULL, WRITE)                              \
	X(ALLOW_ADD, "allow-add", ENFORCER, KL_U(ADDR_PREFIX), 0, NULL, WRITE)                   \
	X(ALLOW_DEL, "allow-del", ENFORCER, KL_U(ADDR_PREFIX), 0, NULL, WRITE)                   \
	X(ALLOW_LIST, "allow-list", ENFORCER, KL_U(COUNT), 0, NULL, READ)                        \
	X(ENFORCE_ALLOW, "enforce-allow", ENFORCER, KL_U(MODE), 1, "0 (off) or 1 (on)", WRITE)   \
	X(DENY_ADD, "deny-add", ENFORCER, KL_U(ADDR_PREFIX) | KL_U(TTL), 0, NULL, RESTRICT)      \
	X(DENY_DEL, "deny-del", ENFORCER, KL_U(ADDR_PREFIX), 0, NULL, WRITE)                     \
	X(DENY_LIST, "deny-list", ENFORCER, KL_U(COUNT), 0, NULL, READ)                          \
	X(RL_SET, "rl-set", ENFORCER, KL_U(RATE) | KL_U(BURST), 0, NULL, WRITE)                  \
	X(RL_OFF, "rl-off", ENFORCER, 0, 0, NULL, WRITE)                                         \
	X(RL_SET_IP, "rl-set-ip", ENFORCER, KL_U(ADDR_HOST) | KL_U(RATE) | KL_U(BURST) | KL_U(TTL), \
	  0, NULL, RESTRICT)                                                                     \
	X(RL_UNSET_IP, "rl-unset-ip", ENFORCER, KL_U(ADDR_HOST), 0, NULL, WRITE)                 \
	X(RL_LIST, "rl-list", ENFORCER, KL_U(COUNT), 0, NULL, READ)                              \
	X(TUPLE_ENFORCE, "tuple-enforce", ENFORCER, KL_U(MODE), KL_EDGE_ALLOW,                   \
	  "0 (off), 1 (deny) or 2 (allow)", WRITE)                                               \
	X(EDGE_ADD_DENY, "edge-add-deny", ENFORCER,                                              \
	  KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO) | KL_U(TTL), 0, NULL, RESTRICT)             \
	X(EDGE_DEL_DENY, "edge-del-deny", ENFORCER, KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO),  \
	  0, NULL, WRITE)                                                                        \
	X(EDGE_ADD_ALLOW, "edge-add-allow", ENFORCER,                                            \
	  KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO) | KL_U(TTL), 0, NULL, WRITE)                \
	X(EDGE_DEL_ALLOW, "edge-del-allow", ENFORCER, KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO),\
	  0, NULL, WRITE)                                                                        \
	X(EDGE_LIST, "edge-list", ENFORCER, KL_U(COUNT), 0, NULL, READ)                          \
	/* count = the event sampling mask */                                                    \
	X(SAMPLING, "sampling", ENFORCER, KL_U(COUNT), 0, NULL, WRITE)                           \
	/* flush rate-limit overrides, deny entries and edge denies */                           \
	X(RESET, "reset", ENFORCER, 0, 0, NULL, WRITE)                                           \
	X(SOURCES, "sources", DECIDER, KL_U(COUNT), 0, NULL, READ)                               \
	/* ttl_ms 0 = the decider's default */                                                   \
	X(FORGIVE, "forgive", DECIDER, KL_U(ADDR_PREFIX) | KL_U(TTL), 0, NULL, WRITE)            \
	/* 6 = 1 + the last enum gr_state (graphd/graph.h: expired) */                           \
	X(GRAPH_EXPORT, "graph-export", GRAPHD, KL_U(MODE), 6,                                   \
	  "0 (every edge) or 1 + a graph state (1..6)", READ)                                    \
	X(GRAPH_FREEZE, "graph-freeze", GRAPHD, KL_U(MODE), 1, "0 (freeze) or 1 (dry run)", WRITE) \
	X(GRAPH_APPROVE, "graph-approve-ip", GRAPHD,                                             \
	  KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO_OPT), 0, NULL, WRITE)                        \
	X(GRAPH_DENY, "graph-deny-ip", GRAPHD, KL_U(ADDR_HOST) | KL_U(PORT) | KL_U(PROTO_OPT),   \
	  0, NULL, WRITE)                                                                        \
	/* ttl_ms = since (0 = all), count = rows (0 = default) */                               \
	X(GRAPH_VIOLATIONS, "graph-violations", GRAPHD, KL_U(TTL) | KL_U(COUNT), 0, NULL, READ)  \
	X(TUNE, "tune", DECIDER, 0, 0, NULL, READ)                                               \
	X(BASELINE, "baseline-show", DECIDER, KL_U(ADDR_HOST), 0, NULL, READ)                    \
	/* rate 0 drops them all; ttl_ms 0 = permanent: the aggregate limit on                   \
	 * sources not yet admitted to a slot */                                                 \
	X(NEWSRC_LIMIT, "new-sources-limit", ENFORCER, KL_U(RATE) | KL_U(BURST) | KL_U(TTL), 0,  \
	  NULL, WRITE)                                                                           \
	X(NEWSRC_OFF, "new-sources-off", ENFORCER, 0, 0, NULL, WRITE)                            \
	/* re-read the whitelist and the feedback file now */                                    \
	X(RELOAD, "reload", DECIDER, 0, 0, NULL, WRITE)                                          \
	/* mode 0: ttl_ms a duration (0 = permanent); mode 1: the absolute expiry (--until) */    \
	X(WHITELIST_ADD, "whitelist-add", DECIDER,                                               \
	  KL_U(ADDR_PREFIX) | KL_U(TTL) | KL_U(MODE) | KL_U(UNTIL), 1,                          \
	  "0 (ttl_ms is a duration) or 1 (ttl_ms is an absolute time)", WRITE)                   \
	X(WHITELIST_DEL, "whitelist-del", DECIDER, KL_U(ADDR_PREFIX), 0, NULL, WRITE)            \
	X(WHITELIST_LIST, "whitelist-list", DECIDER, KL_U(COUNT), 0, NULL, READ)

#define KL_CTL_ENUM_(id, name, role, uses, mode_max, mode_what, kind) KL_CTL_##id,
enum kl_ctl_cmd {
	KL_CTL_NONE = 0,
	KL_CTL_COMMANDS(KL_CTL_ENUM_)
	KL_CTL_CMD_MAX
};
#undef KL_CTL_ENUM_

/* The daemon that serves cmd (KL_ROLE_NONE if unknown), what it does. */
enum kl_role kl_ctl_cmd_role(unsigned cmd);
enum kl_ctl_kind kl_ctl_cmd_kind(unsigned cmd);
/* The fields cmd uses (enum kl_ctl_use bits; 0 if unknown). */
unsigned kl_ctl_cmd_uses(unsigned cmd);

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
/* whitelist-add mode 1: an absolute time, up to 9999-12-31T23:59:59Z */
#define KL_CTL_MAX_UNTIL_MS 253402300799000ull

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
