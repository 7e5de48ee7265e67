/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Wire format (DESIGN §4). Every field is read and written byte by byte in
 * little-endian order: no struct is ever copied onto or off the wire, so
 * padding and host byte order cannot leak into a message.
 *
 * The decoders are the trust boundary of every daemon: they check the
 * exact size and every field before the caller sees a struct, and they
 * name the field at fault so the operator learns why a request was refused.
 */
#include "ipc/msg.h"
#include "common/err.h"
#include "ipc/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bpf/shield.h"

/* IP protocol numbers (kept local: <netinet/in.h> is not needed for four). */
#define PROTO_ICMP   1
#define PROTO_TCP    6
#define PROTO_UDP    17
#define PROTO_ICMPV6 58

/* ---- little-endian helpers ---- */

/* ---- names ---- */

static const char *const type_names[KL_MSG_TYPE_MAX] = {
	[KL_MSG_HELLO] = "HELLO",
	[KL_MSG_TELEMETRY] = "TELEMETRY",
	[KL_MSG_FLOWS] = "FLOWS",
	[KL_MSG_DECISIONS] = "DECISIONS",
	[KL_MSG_DECISIONS_ACK] = "DECISIONS_ACK",
	[KL_MSG_RELEASE] = "RELEASE",
	[KL_MSG_RELEASE_ACK] = "RELEASE_ACK",
	[KL_MSG_ENFORCED_Q] = "ENFORCED_Q",
	[KL_MSG_STATE] = "STATE",
	[KL_MSG_EDGE_RULES] = "EDGE_RULES",
	[KL_MSG_EDGE_ACK] = "EDGE_ACK",
	[KL_MSG_VIOLATION] = "VIOLATION",
	[KL_MSG_CONTROL] = "CONTROL",
	[KL_MSG_RESULT] = "RESULT",
	[KL_MSG_NEWSRC_LIMIT] = "NEWSRC_LIMIT",
};

const char *kl_msg_type_name(unsigned type)
{
	if (type >= KL_MSG_TYPE_MAX || type_names[type] == NULL)
		return "UNKNOWN";
	return type_names[type];
}

static const char *const role_names[KL_ROLE_MAX] = {
	[KL_ROLE_NONE] = "none",
	[KL_ROLE_ENFORCER] = "enforcer",
	[KL_ROLE_SENSOR] = "sensor",
	[KL_ROLE_DECIDER] = "decider",
	[KL_ROLE_GRAPHD] = "graphd",
	[KL_ROLE_CTL] = "ctl",
};

const char *kl_role_name(unsigned role)
{
	if (role >= KL_ROLE_MAX)
		return "unknown";
	return role_names[role];
}

enum kl_role kl_role_parse(const char *s)
{
	if (s == NULL)
		return KL_ROLE_NONE;
	for (unsigned r = KL_ROLE_NONE + 1; r < KL_ROLE_MAX; r++) {
		if (strcmp(s, role_names[r]) == 0)
			return (enum kl_role)r;
	}
	return KL_ROLE_NONE;
}

#define NAME_(id, name, role, uses, mode_max, mode_what, kind) [KL_CTL_##id] = name,
static const char *const cmd_names[KL_CTL_CMD_MAX] = { KL_CTL_COMMANDS(NAME_) };
#undef NAME_

const char *kl_ctl_cmd_name(unsigned cmd)
{
	if (cmd >= KL_CTL_CMD_MAX || cmd_names[cmd] == NULL)
		return "unknown";
	return cmd_names[cmd];
}

static const char *const status_names[KL_STATUS_MAX] = {
	[KL_OK] = "OK",
	[KL_ERR_INVALID] = "INVALID",
	[KL_ERR_REFUSED] = "REFUSED",
	[KL_ERR_NOTFOUND] = "NOTFOUND",
	[KL_ERR_FAILED] = "FAILED",
	[KL_ERR_UNSUPPORTED] = "UNSUPPORTED",
};

const char *kl_status_name(int status)
{
	if (status < 0 || status >= KL_STATUS_MAX)
		return "UNKNOWN";
	return status_names[status];
}

/* ---- the monitor table ---- */

#define R(x) (1u << (x))
#define DAEMONS (R(KL_ROLE_ENFORCER) | R(KL_ROLE_SENSOR) | R(KL_ROLE_DECIDER) | R(KL_ROLE_GRAPHD))
#define ANYONE (DAEMONS | R(KL_ROLE_CTL))

/*
 * allowed_to[type][from] = the set of roles that may receive `type` from
 * `from`. Everything not listed is refused. RESULT is what a server answers
 * to HELLO and CONTROL, so every daemon (any of them may listen) may send
 * it to anyone who can be its client; klctl never listens, so it never
 * sends one. The *_ACK, STATE and EDGE_ACK answers flow back along the
 * same request/answer link.
 */
static const uint8_t allowed_to[KL_MSG_TYPE_MAX][KL_ROLE_MAX] = {
	[KL_MSG_HELLO] = {
		[KL_ROLE_ENFORCER] = ANYONE, [KL_ROLE_SENSOR] = ANYONE,
		[KL_ROLE_DECIDER] = ANYONE, [KL_ROLE_GRAPHD] = ANYONE,
		[KL_ROLE_CTL] = ANYONE,
	},
	[KL_MSG_TELEMETRY] = { [KL_ROLE_SENSOR] = R(KL_ROLE_DECIDER) },
	[KL_MSG_FLOWS] = { [KL_ROLE_SENSOR] = R(KL_ROLE_GRAPHD) },
	[KL_MSG_DECISIONS] = { [KL_ROLE_DECIDER] = R(KL_ROLE_ENFORCER) },
	[KL_MSG_DECISIONS_ACK] = { [KL_ROLE_ENFORCER] = R(KL_ROLE_DECIDER) },
	[KL_MSG_RELEASE] = { [KL_ROLE_DECIDER] = R(KL_ROLE_ENFORCER) },
	[KL_MSG_RELEASE_ACK] = { [KL_ROLE_ENFORCER] = R(KL_ROLE_DECIDER) },
	[KL_MSG_ENFORCED_Q] = {
		[KL_ROLE_DECIDER] = R(KL_ROLE_ENFORCER),
		[KL_ROLE_GRAPHD] = R(KL_ROLE_ENFORCER),
	},
	[KL_MSG_STATE] = {
		[KL_ROLE_ENFORCER] = R(KL_ROLE_DECIDER) | R(KL_ROLE_GRAPHD),
	},
	[KL_MSG_EDGE_RULES] = { [KL_ROLE_GRAPHD] = R(KL_ROLE_ENFORCER) },
	[KL_MSG_EDGE_ACK] = { [KL_ROLE_ENFORCER] = R(KL_ROLE_GRAPHD) },
	[KL_MSG_VIOLATION] = { [KL_ROLE_GRAPHD] = R(KL_ROLE_DECIDER) },
	[KL_MSG_NEWSRC_LIMIT] = { [KL_ROLE_DECIDER] = R(KL_ROLE_ENFORCER) },
	[KL_MSG_CONTROL] = { [KL_ROLE_CTL] = DAEMONS },
	[KL_MSG_RESULT] = {
		[KL_ROLE_ENFORCER] = ANYONE & ~R(KL_ROLE_ENFORCER),
		[KL_ROLE_SENSOR] = ANYONE & ~R(KL_ROLE_SENSOR),
		[KL_ROLE_DECIDER] = ANYONE & ~R(KL_ROLE_DECIDER),
		[KL_ROLE_GRAPHD] = ANYONE & ~R(KL_ROLE_GRAPHD),
	},
};

bool kl_msg_allowed(enum kl_role from, enum kl_role to, unsigned type)
{
	if ((unsigned)from >= KL_ROLE_MAX || (unsigned)to >= KL_ROLE_MAX ||
	    type >= KL_MSG_TYPE_MAX)
		return false;
	if (from == KL_ROLE_NONE || to == KL_ROLE_NONE)
		return false;
	return (allowed_to[type][from] & R(to)) != 0;
}

#undef R

/* ---- header ---- */

void kl_msg_hdr_encode(const struct kl_msg_hdr *h, uint8_t *out)
{
	kl_put32(out + 0, h->magic);
	kl_put16(out + 4, h->version);
	kl_put16(out + 6, h->type);
	kl_put32(out + 8, h->flags);
	kl_put32(out + 12, h->payload_len);
	kl_put64(out + 16, h->seq);
	kl_put64(out + 24, h->tick);
}

int kl_msg_decode(const uint8_t *buf, size_t len, struct kl_msg *out,
		  char *err, size_t errlen)
{
	struct kl_msg_hdr h;

	if (buf == NULL || len < KL_MSG_HDR_LEN)
		return kl_fail(err, errlen, "message too short: %zu bytes, the header alone is %d",
			    buf == NULL ? (size_t)0 : len, KL_MSG_HDR_LEN);
	h.magic = kl_get32(buf + 0);
	h.version = kl_get16(buf + 4);
	h.type = kl_get16(buf + 6);
	h.flags = kl_get32(buf + 8);
	h.payload_len = kl_get32(buf + 12);
	h.seq = kl_get64(buf + 16);
	h.tick = kl_get64(buf + 24);
	if (h.magic != KL_MSG_MAGIC)
		return kl_fail(err, errlen, "header field 'magic' is 0x%08x, want 0x%08x",
			    h.magic, KL_MSG_MAGIC);
	if (h.version != KL_MSG_VERSION)
		return kl_fail(err, errlen, "header field 'version' is %u, this side speaks %d",
			    h.version, KL_MSG_VERSION);
	if (h.type == 0 || h.type >= KL_MSG_TYPE_MAX)
		return kl_fail(err, errlen, "header field 'type' is %u, not a known message type",
			    h.type);
	if (h.flags != 0)
		return kl_fail(err, errlen, "header field 'flags' is 0x%x, must be 0", h.flags);
	if (h.payload_len > KL_MSG_MAX_PAYLOAD)
		return kl_fail(err, errlen, "header field 'payload_len' is %u, above the limit %u",
			    h.payload_len, KL_MSG_MAX_PAYLOAD);
	if ((size_t)h.payload_len != len - KL_MSG_HDR_LEN)
		return kl_fail(err, errlen,
			    "header field 'payload_len' is %u but %zu payload bytes arrived",
			    h.payload_len, len - KL_MSG_HDR_LEN);
	out->hdr = h;
	out->payload = buf + KL_MSG_HDR_LEN;
	out->payload_len = h.payload_len;
	return 0;
}

/* ---- HELLO ---- */

void kl_hello_encode(const struct kl_hello *h, uint8_t out[KL_HELLO_LEN])
{
	kl_put16(out + 0, h->role);
	kl_put16(out + 2, h->proto_version);
	kl_put32(out + 4, h->pid);
}

int kl_hello_decode(const uint8_t *p, size_t len, struct kl_hello *out,
		    char *err, size_t errlen)
{
	struct kl_hello h;

	if (p == NULL || len != KL_HELLO_LEN)
		return kl_fail(err, errlen, "HELLO payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_HELLO_LEN);
	h.role = kl_get16(p + 0);
	h.proto_version = kl_get16(p + 2);
	h.pid = kl_get32(p + 4);
	if (h.role == KL_ROLE_NONE || h.role >= KL_ROLE_MAX)
		return kl_fail(err, errlen, "HELLO field 'role' is %u, not a known role", h.role);
	/* proto_version is checked by the receiver, which knows what it
	 * speaks and answers a mismatch with a reason. */
	*out = h;
	return 0;
}

enum kl_hello_verdict kl_hello_admit(const struct kl_msg *msg, enum kl_role current,
				     enum kl_role peer_role, struct kl_hello *h, char *why,
				     size_t whylen)
{
	memset(h, 0, sizeof(*h));
	if (kl_hello_decode(msg->payload, msg->payload_len, h, why, whylen) < 0)
		return KL_HELLO_MALFORMED;
	if (current != KL_ROLE_NONE && h->role != current) {
		kl_fail(why, whylen, "a second HELLO with another role (%s, first %s)",
			kl_role_name(h->role), kl_role_name(current));
		return KL_HELLO_ROLE_SWITCH;
	}
	if (h->role != peer_role) {
		kl_fail(why, whylen, "role %s may not connect to this socket (it serves %s)",
			kl_role_name(h->role), kl_role_name(peer_role));
		return KL_HELLO_WRONG_ROLE;
	}
	if (h->proto_version != KL_MSG_VERSION) {
		kl_fail(why, whylen, "protocol version %u not supported (this side speaks %d)",
			h->proto_version, KL_MSG_VERSION);
		return KL_HELLO_WRONG_VERSION;
	}
	return current == KL_ROLE_NONE ? KL_HELLO_ADMIT : KL_HELLO_AGAIN;
}

/* ---- CONTROL ---- */

/* Offsets inside the 80-byte record. */
enum {
	O_CMD = 0, O_MODE = 2, O_PROTO = 3, O_FLAGS = 4,
	O_FAMILY = 8, O_PREFIXLEN = 9, O_ADDR = 10, O_PORT = 26,
	O_RATE = 28, O_BURST = 36, O_TTL = 44, O_COUNT = 52,
	O_IFNAME = 60, O_RESERVED = 76,
};
_Static_assert(O_RESERVED + 4 == KL_CTL_REQ_LEN, "CONTROL layout");

void kl_ctl_req_encode(const struct kl_ctl_req *r, uint8_t out[KL_CTL_REQ_LEN])
{
	memset(out, 0, KL_CTL_REQ_LEN);
	kl_put16(out + O_CMD, r->cmd);
	out[O_MODE] = r->mode;
	out[O_PROTO] = r->proto;
	kl_put32(out + O_FLAGS, r->flags);
	out[O_FAMILY] = r->addr.family;
	out[O_PREFIXLEN] = r->addr.prefixlen;
	memcpy(out + O_ADDR, r->addr.addr, 16);
	kl_put16(out + O_PORT, r->port);
	kl_put64(out + O_RATE, r->rate);
	kl_put64(out + O_BURST, r->burst);
	kl_put64(out + O_TTL, r->ttl_ms);
	kl_put64(out + O_COUNT, r->count);
	/* Only the name goes out; whatever follows the NUL in the caller's
	 * buffer is not ours to send. */
	size_t n = strnlen(r->ifname, KL_IFNAMSIZ);
	memcpy(out + O_IFNAME, r->ifname, n);
}


struct cmd_rule {
	unsigned uses;     /* enum kl_ctl_use */
	unsigned mode_max; /* modes 0..mode_max allowed (with KL_CTL_U_MODE) */
	const char *mode_what;
	enum kl_role role;
	enum kl_ctl_kind kind;
};

#define RULE_(id, name, role, uses, mode_max, mode_what, kind) \
	[KL_CTL_##id] = { uses, mode_max, mode_what, KL_ROLE_##role, KL_CTL_K_##kind },
static const struct cmd_rule cmd_rules[KL_CTL_CMD_MAX] = { KL_CTL_COMMANDS(RULE_) };
#undef RULE_

enum kl_role kl_ctl_cmd_role(unsigned cmd)
{
	return cmd > 0 && cmd < KL_CTL_CMD_MAX ? cmd_rules[cmd].role : KL_ROLE_NONE;
}

enum kl_ctl_kind kl_ctl_cmd_kind(unsigned cmd)
{
	return cmd > 0 && cmd < KL_CTL_CMD_MAX ? cmd_rules[cmd].kind : KL_CTL_K_READ;
}

unsigned kl_ctl_cmd_uses(unsigned cmd)
{
	return cmd > 0 && cmd < KL_CTL_CMD_MAX ? cmd_rules[cmd].uses : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

static bool ifname_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	       c == '-';
}

static int check_addr(const struct kl_ctl_req *r, const uint8_t *p,
		      unsigned uses, const char *cname, char *err, size_t errlen)
{
	const struct kl_addr *a = &r->addr;

	if (!(uses & (KL_CTL_U_ADDR_HOST | KL_CTL_U_ADDR_PREFIX))) {
		if (a->family != 0 || a->prefixlen != 0 || !all_zero(p + O_ADDR, 16))
			return kl_fail(err, errlen,
				    "CONTROL %s: field 'addr' must be empty (family 0, all zero)",
				    cname);
		return 0;
	}
	if (a->family != 4 && a->family != 6)
		return kl_fail(err, errlen,
			    "CONTROL %s: field 'addr.family' is %u, want 4 or 6", cname,
			    a->family);
	unsigned host = kl_addr_hostlen(a);
	if (a->prefixlen > host)
		return kl_fail(err, errlen,
			    "CONTROL %s: field 'addr.prefixlen' is %u, out of range 0..%u",
			    cname, a->prefixlen, host);
	if ((uses & KL_CTL_U_ADDR_HOST) && a->prefixlen != host)
		return kl_fail(err, errlen,
			    "CONTROL %s: field 'addr.prefixlen' is %u, this command needs a single address (/%u)",
			    cname, a->prefixlen, host);
	if (a->family == 4 && !all_zero(p + O_ADDR + 4, 12))
		return kl_fail(err, errlen,
			    "CONTROL %s: field 'addr.addr' bytes 4..15 must be zero for IPv4",
			    cname);
	struct kl_addr masked = *a;
	kl_addr_mask(&masked);
	if (memcmp(masked.addr, a->addr, 16) != 0)
		return kl_fail(err, errlen,
			    "CONTROL %s: field 'addr.addr' has host bits set after /%u",
			    cname, a->prefixlen);
	return 0;
}

int kl_ctl_req_decode(const uint8_t *p, size_t len, struct kl_ctl_req *out,
		      char *err, size_t errlen)
{
	struct kl_ctl_req r;
	const struct cmd_rule *rule;
	const char *cname;
	unsigned uses;

	if (p == NULL || len != KL_CTL_REQ_LEN)
		return kl_fail(err, errlen, "CONTROL payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_CTL_REQ_LEN);
	memset(&r, 0, sizeof(r));
	r.cmd = kl_get16(p + O_CMD);
	r.mode = p[O_MODE];
	r.proto = p[O_PROTO];
	r.flags = kl_get32(p + O_FLAGS);
	r.addr.family = p[O_FAMILY];
	r.addr.prefixlen = p[O_PREFIXLEN];
	memcpy(r.addr.addr, p + O_ADDR, 16);
	r.port = kl_get16(p + O_PORT);
	r.rate = kl_get64(p + O_RATE);
	r.burst = kl_get64(p + O_BURST);
	r.ttl_ms = kl_get64(p + O_TTL);
	r.count = kl_get64(p + O_COUNT);

	if (r.cmd == 0 || r.cmd >= KL_CTL_CMD_MAX)
		return kl_fail(err, errlen, "CONTROL field 'cmd' is %u, not a known command", r.cmd);
	rule = &cmd_rules[r.cmd];
	uses = rule->uses;
	cname = kl_ctl_cmd_name(r.cmd);

	/* flags */
	if (r.flags & ~KL_CTL_F_ALL)
		return kl_fail(err, errlen, "CONTROL %s: field 'flags' is 0x%x, unknown bits 0x%x",
			    cname, r.flags, r.flags & ~KL_CTL_F_ALL);
	if ((r.flags & KL_CTL_F_FORCE) && !(uses & KL_CTL_U_FORCE))
		return kl_fail(err, errlen, "CONTROL %s: field 'flags' has FORCE, which only attach takes",
			    cname);

	/* reserved */
	if (!all_zero(p + O_RESERVED, KL_CTL_REQ_LEN - O_RESERVED))
		return kl_fail(err, errlen, "CONTROL %s: reserved bytes 76..79 must be zero", cname);

	/* ifname: NUL-terminated, NUL-padded, a safe character set */
	size_t n = strnlen((const char *)p + O_IFNAME, KL_IFNAMSIZ);
	if (n == KL_IFNAMSIZ)
		return kl_fail(err, errlen, "CONTROL %s: field 'ifname' is not NUL-terminated within %d bytes",
			    cname, KL_IFNAMSIZ);
	if (!all_zero(p + O_IFNAME + n, KL_IFNAMSIZ - n))
		return kl_fail(err, errlen, "CONTROL %s: field 'ifname' has bytes after its NUL", cname);
	if (uses & KL_CTL_U_IFNAME) {
		if (n == 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'ifname' is empty", cname);
		for (size_t i = 0; i < n; i++) {
			char c = (char)p[O_IFNAME + i];
			if (!ifname_char_ok(c))
				return kl_fail(err, errlen,
					    "CONTROL %s: field 'ifname' has byte 0x%02x at %zu (allowed: A-Z a-z 0-9 _ . : -)",
					    cname, (unsigned char)c, i);
		}
		if (strcmp((const char *)p + O_IFNAME, ".") == 0 ||
		    strcmp((const char *)p + O_IFNAME, "..") == 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'ifname' may not be '.' or '..'",
				    cname);
		memcpy(r.ifname, p + O_IFNAME, n);
	} else if (n != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'ifname' must be empty", cname);
	}

	/* mode */
	if (uses & KL_CTL_U_MODE) {
		if (r.mode > rule->mode_max)
			return kl_fail(err, errlen, "CONTROL %s: field 'mode' is %u, want %s",
				    cname, r.mode, rule->mode_what);
	} else if (r.mode != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'mode' must be 0", cname);
	}

	/* addr */
	if (check_addr(&r, p, uses, cname, err, errlen) < 0)
		return -1;

	/* proto and port */
	if ((uses & KL_CTL_U_PROTO_OPT) && r.proto == 0) {
		if (r.port != 0)
			return kl_fail(err, errlen,
				    "CONTROL %s: field 'port' is %u, must be 0 when 'proto' is 0 (every edge)",
				    cname, r.port);
	} else if (uses & (KL_CTL_U_PROTO | KL_CTL_U_PROTO_OPT)) {
		switch (r.proto) {
		case PROTO_TCP:
		case PROTO_UDP:
			break;
		case PROTO_ICMP:
			if (r.addr.family != 4)
				return kl_fail(err, errlen,
					    "CONTROL %s: field 'proto' is ICMP (1) but the address is IPv6 (use 58)",
					    cname);
			break;
		case PROTO_ICMPV6:
			if (r.addr.family != 6)
				return kl_fail(err, errlen,
					    "CONTROL %s: field 'proto' is ICMPv6 (58) but the address is IPv4 (use 1)",
					    cname);
			break;
		default:
			return kl_fail(err, errlen,
				    "CONTROL %s: field 'proto' is %u, want 6 (tcp), 17 (udp), 1 (icmp) or 58 (icmpv6)",
				    cname, r.proto);
		}
		if ((r.proto == PROTO_ICMP || r.proto == PROTO_ICMPV6) && r.port != 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'port' is %u, must be 0 for ICMP",
				    cname, r.port);
	} else {
		if (r.proto != 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'proto' must be 0", cname);
	}
	if (!(uses & KL_CTL_U_PORT) && r.port != 0)
		return kl_fail(err, errlen, "CONTROL %s: field 'port' must be 0", cname);

	/* rate and burst */
	if (uses & KL_CTL_U_RATE) {
		if (r.rate > KL_CTL_MAX_RATE)
			return kl_fail(err, errlen, "CONTROL %s: field 'rate' is %llu, above the limit %llu",
				    cname, (unsigned long long)r.rate, KL_CTL_MAX_RATE);
		/* The global default with rate 0 would drop everything from
		 * everyone; a per-source rate 0 is a deliberate "drop all". */
		if (r.cmd == KL_CTL_RL_SET && r.rate == 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'rate' must be at least 1 (use rl-off to disable)",
				    cname);
	} else if (r.rate != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'rate' must be 0", cname);
	}
	if (uses & KL_CTL_U_BURST) {
		if (r.burst == 0)
			return kl_fail(err, errlen, "CONTROL %s: field 'burst' must be at least 1", cname);
		if (r.burst > KL_CTL_MAX_BURST)
			return kl_fail(err, errlen, "CONTROL %s: field 'burst' is %llu, above the limit %llu",
				    cname, (unsigned long long)r.burst, KL_CTL_MAX_BURST);
	} else if (r.burst != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'burst' must be 0", cname);
	}

	/* ttl */
	if (uses & KL_CTL_U_TTL) {
		if (r.ttl_ms > KL_CTL_MAX_TTL_MS)
			return kl_fail(err, errlen, "CONTROL %s: field 'ttl_ms' is %llu, above the limit %llu (10 years)",
				    cname, (unsigned long long)r.ttl_ms, KL_CTL_MAX_TTL_MS);
	} else if (r.ttl_ms != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'ttl_ms' must be 0 (no expiry on this command)",
			    cname);
	}

	/* count */
	if (uses & KL_CTL_U_COUNT) {
		if (r.cmd == KL_CTL_SAMPLING) {
			if (r.count > 0xffffffffull)
				return kl_fail(err, errlen, "CONTROL %s: field 'count' (mask) is 0x%llx, above 0xffffffff",
					    cname, (unsigned long long)r.count);
			/* (n & mask) == 0 samples one in mask+1 only when mask
			 * is all low bits. */
			if ((r.count & (r.count + 1)) != 0)
				return kl_fail(err, errlen, "CONTROL %s: field 'count' (mask) is 0x%llx, want 0 or 2^k-1",
					    cname, (unsigned long long)r.count);
		} else if (r.count > KL_CTL_MAX_COUNT) {
			return kl_fail(err, errlen, "CONTROL %s: field 'count' is %llu, above the limit %llu",
				    cname, (unsigned long long)r.count, KL_CTL_MAX_COUNT);
		}
	} else if (r.count != 0) {
		return kl_fail(err, errlen, "CONTROL %s: field 'count' must be 0", cname);
	}

	*out = r;
	return 0;
}

/* ---- RESULT ---- */

size_t kl_result_len(const struct kl_result *r)
{
	return KL_RESULT_FIXED_LEN + (size_t)r->text_len + (size_t)r->json_len;
}

void kl_result_encode(const struct kl_result *r, uint8_t *out)
{
	kl_put32(out + 0, (uint32_t)r->status);
	kl_put32(out + 4, r->text_len);
	kl_put32(out + 8, r->json_len);
	if (r->text_len > 0)
		memcpy(out + KL_RESULT_FIXED_LEN, r->text, r->text_len);
	if (r->json_len > 0)
		memcpy(out + KL_RESULT_FIXED_LEN + r->text_len, r->json, r->json_len);
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF),
 * printable: no C0 controls except tab and newline, no DEL, no C1. */
size_t kl_result_text_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				return i;
			i++;
			continue;
		}
		uint32_t cp;
		size_t n;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i < n)
			return i;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp < 0xa0))
			return i;
		i += n;
	}
	return len;
}

int kl_result_decode(const uint8_t *p, size_t len, struct kl_result *out,
		     char *err, size_t errlen)
{
	struct kl_result r;
	size_t bad;

	if (p == NULL || len < KL_RESULT_FIXED_LEN)
		return kl_fail(err, errlen, "RESULT payload is %zu bytes, shorter than its fixed %d",
			    p == NULL ? (size_t)0 : len, KL_RESULT_FIXED_LEN);
	r.status = (int32_t)kl_get32(p + 0);
	r.text_len = kl_get32(p + 4);
	r.json_len = kl_get32(p + 8);
	if (r.status < 0 || r.status >= KL_STATUS_MAX)
		return kl_fail(err, errlen, "RESULT field 'status' is %d, not a known status", r.status);
	if ((uint64_t)KL_RESULT_FIXED_LEN + r.text_len + r.json_len != (uint64_t)len)
		return kl_fail(err, errlen,
			    "RESULT is %zu bytes but 'text_len' %u + 'json_len' %u + %d make %llu",
			    len, r.text_len, r.json_len, KL_RESULT_FIXED_LEN,
			    (unsigned long long)KL_RESULT_FIXED_LEN + r.text_len + r.json_len);
	r.text = (const char *)p + KL_RESULT_FIXED_LEN;
	r.json = r.text + r.text_len;
	bad = kl_result_text_check((const uint8_t *)r.text, r.text_len);
	if (bad != r.text_len)
		return kl_fail(err, errlen,
			    "RESULT field 'text' has a NUL, control or invalid UTF-8 byte 0x%02x at offset %zu",
			    (unsigned char)r.text[bad], bad);
	if (memchr(r.json, 0, r.json_len) != NULL)
		return kl_fail(err, errlen, "RESULT field 'json' contains a NUL byte");
	*out = r;
	return 0;
}
