/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Codecs of the enforcer's link payloads (see enforce.h for the layouts).
 * Fields are read and written byte by byte in little-endian order; no
 * struct is copied to or from the wire. Each decoder is strict so that
 * decode followed by encode gives back the very bytes that came in.
 */
#include "ipc/enforce.h"
#include "common/err.h"
#include "ipc/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PROTO_ICMP   1
#define PROTO_TCP    6
#define PROTO_UDP    17
#define PROTO_ICMPV6 58

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

/* ---- names ---- */

static const char *const level_names[KL_DEC_LEVEL_MAX] = {
	[KL_DEC_OBSERVE] = "OBSERVE",
	[KL_DEC_RATE_SOFT] = "RATE_SOFT",
	[KL_DEC_RATE_HARD] = "RATE_HARD",
	[KL_DEC_BLOCK] = "BLOCK",
};

const char *kl_dec_level_name(unsigned level)
{
	return level < KL_DEC_LEVEL_MAX ? level_names[level] : "UNKNOWN";
}

int kl_dec_level_parse(const char *s)
{
	for (unsigned i = 0; s != NULL && i < KL_DEC_LEVEL_MAX; i++) {
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

static const char *const reason_names[KL_ACK_REASON_MAX] = {
	[KL_ACK_OK] = "ok",
	[KL_ACK_PROTECTED] = "protected",
	[KL_ACK_RATE_CAP] = "rate-cap",
	[KL_ACK_TOTAL_CAP] = "total-cap",
	[KL_ACK_MAP_FULL] = "map-full",
	[KL_ACK_OPERATOR] = "operator-entry",
	[KL_ACK_INVALID] = "invalid",
	[KL_ACK_FAILED] = "failed",
};

const char *kl_ack_reason_name(unsigned reason)
{
	return reason < KL_ACK_REASON_MAX ? reason_names[reason] : "unknown";
}

int kl_ack_reason_status(unsigned reason)
{
	switch (reason) {
	case KL_ACK_OK: return KL_OK;
	case KL_ACK_PROTECTED:
	case KL_ACK_RATE_CAP:
	case KL_ACK_TOTAL_CAP:
	case KL_ACK_OPERATOR: return KL_ERR_REFUSED;
	case KL_ACK_INVALID: return KL_ERR_INVALID;
	default: return KL_ERR_FAILED;
	}
}

static const char *const kind_names[KL_STATE_KIND_MAX] = {
	[KL_STATE_RL] = "rl",
	[KL_STATE_DENY] = "deny",
	[KL_STATE_EDGE_ALLOW] = "edge-allow",
	[KL_STATE_EDGE_DENY] = "edge-deny",
};

const char *kl_state_kind_name(unsigned kind)
{
	return kind > 0 && kind < KL_STATE_KIND_MAX ? kind_names[kind] : "unknown";
}

static const char *const action_names[KL_EDGE_ACT_MAX] = {
	[KL_EDGE_ACT_ADD_ALLOW] = "add-allow",
	[KL_EDGE_ACT_DEL_ALLOW] = "del-allow",
	[KL_EDGE_ACT_ADD_DENY] = "add-deny",
	[KL_EDGE_ACT_DEL_DENY] = "del-deny",
};

const char *kl_edge_action_name(unsigned action)
{
	return action > 0 && action < KL_EDGE_ACT_MAX ? action_names[action] : "unknown";
}

/* ---- shared pieces ---- */

static void put_addr(uint8_t *fam, uint8_t *addr, const struct kl_addr *a)
{
	*fam = a->family;
	memset(addr, 0, 16);
	memcpy(addr, a->addr, a->family == 4 ? 4 : 16);
}

/* A host address from a family byte and 16 address bytes. */
static int get_host(uint8_t fam, const uint8_t *addr, struct kl_addr *out, const char *where,
		    char *err, size_t errlen)
{
	if (fam != 4 && fam != 6)
		return kl_fail(err, errlen, "%s: field 'family' is %u, want 4 or 6", where, fam);
	if (fam == 4 && !all_zero(addr + 4, 12))
		return kl_fail(err, errlen, "%s: field 'addr' bytes 4..15 must be zero for IPv4", where);
	memset(out, 0, sizeof(*out));
	out->family = fam;
	out->prefixlen = fam == 4 ? 32 : 128;
	memcpy(out->addr, addr, fam == 4 ? 4 : 16);
	return 0;
}

/* Batch header + exact length; *n is the record count. */
int kl_batch_count(const char *what, const uint8_t *p, size_t len, size_t rec, uint32_t max,
		   uint32_t *n, char *err, size_t errlen)
{
	if (p == NULL || len < KL_BATCH_HDR_LEN)
		return kl_fail(err, errlen, "%s payload is %zu bytes, shorter than its %d-byte header",
			    what, p == NULL ? (size_t)0 : len, KL_BATCH_HDR_LEN);
	uint32_t c = kl_get32(p);
	if (c > max)
		return kl_fail(err, errlen, "%s: field 'n' is %u, above the limit %u", what, c, max);
	size_t want = KL_BATCH_HDR_LEN + (size_t)c * rec;
	if (len != want)
		return kl_fail(err, errlen, "%s payload is %zu bytes, want exactly %zu for n=%u", what,
			    len, want, c);
	*n = c;
	return 0;
}

/* The two reserved-or-rate/burst/ttl rules of DECISIONS and EDGE_RULES
 * share this: value v of field `name` must lie in [lo, hi]. */
static int want_range(uint64_t v, uint64_t lo, uint64_t hi, const char *where, const char *name,
		      const char *why, char *err, size_t errlen)
{
	if (v < lo || v > hi)
		return kl_fail(err, errlen, "%s: field '%s' is %llu, want %llu..%llu%s", where, name,
			    (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi,
			    why);
	return 0;
}

/* Protocol and port of an edge (rule or state record). */
static int check_proto_port(uint8_t proto, uint16_t port, uint8_t family, const char *where,
			    char *err, size_t errlen)
{
	switch (proto) {
	case PROTO_TCP:
	case PROTO_UDP:
		return 0;
	case PROTO_ICMP:
		if (family != 4)
			return kl_fail(err, errlen,
				    "%s: field 'proto' is ICMP (1) but the address is IPv6 (use 58)",
				    where);
		break;
	case PROTO_ICMPV6:
		if (family != 6)
			return kl_fail(err, errlen,
				    "%s: field 'proto' is ICMPv6 (58) but the address is IPv4 (use 1)",
				    where);
		break;
	default:
		return kl_fail(err, errlen,
			    "%s: field 'proto' is %u, want 6 (tcp), 17 (udp), 1 (icmp) or 58 (icmpv6)",
			    where, proto);
	}
	if (port != 0)
		return kl_fail(err, errlen, "%s: field 'port' is %u, must be 0 for ICMP", where, port);
	return 0;
}

/* ---- DECISIONS ---- */

size_t kl_decisions_len(size_t n)
{
	return KL_BATCH_HDR_LEN + n * KL_DECISION_LEN;
}

void kl_decisions_encode(const struct kl_decision *d, uint32_t n, uint8_t *out)
{
	kl_put32(out, n);
	kl_put32(out + 4, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = out + KL_BATCH_HDR_LEN + (size_t)i * KL_DECISION_LEN;
		memset(r, 0, KL_DECISION_LEN);
		put_addr(&r[0], r + 8, &d[i].addr);
		r[1] = d[i].level;
		kl_put32(r + 24, d[i].rate_pps);
		kl_put32(r + 28, d[i].burst);
		kl_put64(r + 32, d[i].ttl_ms);
	}
}

int kl_decisions_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen)
{
	if (kl_batch_count("DECISIONS", p, len, KL_DECISION_LEN, KL_DECISIONS_MAX, n, err, errlen) < 0)
		return -1;
	if (kl_get32(p + 4) != 0)
		return kl_fail(err, errlen, "DECISIONS: header bytes 4..7 (reserved) must be zero");
	return 0;
}

static int decision_decode(const uint8_t *r, uint32_t i, struct kl_decision *d, char *err,
			   size_t errlen)
{
	char where[48];
	snprintf(where, sizeof(where), "DECISIONS record %u", i);
	if (!all_zero(r + 2, 6))
		return kl_fail(err, errlen, "%s: reserved bytes 2..7 must be zero", where);
	if (get_host(r[0], r + 8, &d->addr, where, err, errlen) < 0)
		return -1;
	d->level = r[1];
	d->rate_pps = kl_get32(r + 24);
	d->burst = kl_get32(r + 28);
	d->ttl_ms = kl_get64(r + 32);
	switch (d->level) {
	case KL_DEC_OBSERVE:
		if (d->rate_pps != 0 || d->burst != 0 || d->ttl_ms != 0)
			return kl_fail(err, errlen,
				    "%s: OBSERVE takes no rate_pps, burst or ttl_ms (all must be 0)",
				    where);
		return 0;
	case KL_DEC_RATE_SOFT:
	case KL_DEC_RATE_HARD:
		if (want_range(d->rate_pps, 0, KL_DEC_MAX_RATE, where, "rate_pps", "", err,
			       errlen) < 0 ||
		    want_range(d->burst, 1, KL_DEC_MAX_BURST, where, "burst", "", err, errlen) < 0)
			return -1;
		break;
	case KL_DEC_BLOCK:
		if (d->rate_pps != 0 || d->burst != 0)
			return kl_fail(err, errlen, "%s: BLOCK takes no rate_pps or burst (both must be 0)",
				    where);
		break;
	default:
		return kl_fail(err, errlen,
			    "%s: field 'level' is %u, want 0 (OBSERVE), 1 (RATE_SOFT), 2 (RATE_HARD) "
			    "or 3 (BLOCK)",
			    where, d->level);
	}
	/* Every entry the decider causes must lapse on its own. */
	return want_range(d->ttl_ms, KL_DEC_TTL_MIN_MS, KL_DEC_TTL_MAX_MS, where, "ttl_ms",
			  " (1 s .. 7 days)", err, errlen);
}

int kl_decisions_decode(const uint8_t *p, size_t len, struct kl_decision *out, size_t cap,
			uint32_t *n, char *err, size_t errlen)
{
	uint32_t c;
	if (kl_decisions_count(p, len, &c, err, errlen) < 0)
		return -1;
	if (c > cap)
		return kl_fail(err, errlen, "DECISIONS: %u records, room for %zu", c, cap);
	for (uint32_t i = 0; i < c; i++) {
		if (decision_decode(p + KL_BATCH_HDR_LEN + (size_t)i * KL_DECISION_LEN, i, &out[i],
				    err, errlen) < 0)
			return -1;
	}
	*n = c;
	return 0;
}

/* ---- acks ---- */

size_t kl_acks_len(size_t n)
{
	return KL_BATCH_HDR_LEN + n * KL_ACK_REC_LEN;
}

void kl_acks_encode(const struct kl_ack *a, uint32_t n, uint8_t *out)
{
	uint32_t applied = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = out + KL_BATCH_HDR_LEN + (size_t)i * KL_ACK_REC_LEN;
		r[0] = a[i].status;
		r[1] = a[i].reason;
		kl_put16(r + 2, 0);
		if (a[i].status == KL_OK)
			applied++;
	}
	kl_put32(out, n);
	kl_put32(out + 4, applied);
}

int kl_acks_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen)
{
	/* An ACK answers one DECISIONS or EDGE_RULES message, so it never has
	 * more records than either may carry. */
	return kl_batch_count("ACK", p, len, KL_ACK_REC_LEN, KL_DECISIONS_MAX, n, err, errlen);
}

int kl_acks_decode(const uint8_t *p, size_t len, struct kl_ack *out, size_t cap, uint32_t *n,
		   uint32_t *applied, char *err, size_t errlen)
{
	uint32_t c, ok = 0;
	if (kl_acks_count(p, len, &c, err, errlen) < 0)
		return -1;
	if (c > cap)
		return kl_fail(err, errlen, "ACK: %u records, room for %zu", c, cap);
	for (uint32_t i = 0; i < c; i++) {
		const uint8_t *r = p + KL_BATCH_HDR_LEN + (size_t)i * KL_ACK_REC_LEN;
		if (r[1] >= KL_ACK_REASON_MAX)
			return kl_fail(err, errlen, "ACK record %u: field 'reason' is %u, want 0..%d", i,
				    r[1], KL_ACK_REASON_MAX - 1);
		if (r[0] != kl_ack_reason_status(r[1]))
			return kl_fail(err, errlen,
				    "ACK record %u: field 'status' is %u, but reason %s goes with %s",
				    i, r[0], kl_ack_reason_name(r[1]),
				    kl_status_name(kl_ack_reason_status(r[1])));
		if (kl_get16(r + 2) != 0)
			return kl_fail(err, errlen, "ACK record %u: reserved bytes 2..3 must be zero", i);
		out[i].status = r[0];
		out[i].reason = r[1];
		if (r[0] == KL_OK)
			ok++;
	}
	if (kl_get32(p + 4) != ok)
		return kl_fail(err, errlen, "ACK: field 'applied' is %u, but %u records say OK",
			    kl_get32(p + 4), ok);
	*n = c;
	*applied = ok;
	return 0;
}

/* ---- RELEASE, RELEASE_ACK, ENFORCED_Q ---- */

void kl_newsrc_limit_encode(const struct kl_newsrc_limit *l, uint8_t out[KL_NEWSRC_LIMIT_LEN])
{
	kl_put32(out, l->rate_pps);
	kl_put32(out + 4, l->burst);
	kl_put64(out + 8, l->ttl_ms);
}

int kl_newsrc_limit_decode(const uint8_t *p, size_t len, struct kl_newsrc_limit *out, char *err,
			   size_t errlen)
{
	struct kl_newsrc_limit l;
	if (p == NULL || len != KL_NEWSRC_LIMIT_LEN)
		return kl_fail(err, errlen, "NEWSRC_LIMIT payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_NEWSRC_LIMIT_LEN);
	l.rate_pps = kl_get32(p);
	l.burst = kl_get32(p + 4);
	l.ttl_ms = kl_get64(p + 8);
	if (l.rate_pps > KL_DEC_MAX_RATE)
		return kl_fail(err, errlen, "NEWSRC_LIMIT: field 'rate_pps' is %u, above %u", l.rate_pps,
			    KL_DEC_MAX_RATE);
	if (l.burst < 1 || l.burst > KL_DEC_MAX_BURST)
		return kl_fail(err, errlen, "NEWSRC_LIMIT: field 'burst' is %u, want 1..%u", l.burst,
			    KL_DEC_MAX_BURST);
	if (l.ttl_ms < KL_DEC_TTL_MIN_MS || l.ttl_ms > KL_NEWSRC_TTL_MAX_MS)
		return kl_fail(err, errlen, "NEWSRC_LIMIT: field 'ttl_ms' is %llu, want %llu..%llu",
			    (unsigned long long)l.ttl_ms, (unsigned long long)KL_DEC_TTL_MIN_MS,
			    (unsigned long long)KL_NEWSRC_TTL_MAX_MS);
	*out = l;
	return 0;
}

void kl_release_encode(const struct kl_release *r, uint8_t out[KL_RELEASE_LEN])
{
	memset(out, 0, KL_RELEASE_LEN);
	put_addr(&out[0], out + 8, &r->prefix);
	out[1] = r->prefix.prefixlen;
	kl_put32(out + 4, r->budget);
}

int kl_release_decode(const uint8_t *p, size_t len, struct kl_release *out, char *err,
		      size_t errlen)
{
	struct kl_release r;
	if (p == NULL || len != KL_RELEASE_LEN)
		return kl_fail(err, errlen, "RELEASE payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_RELEASE_LEN);
	if (kl_get16(p + 2) != 0)
		return kl_fail(err, errlen, "RELEASE: reserved bytes 2..3 must be zero");
	if (get_host(p[0], p + 8, &r.prefix, "RELEASE", err, errlen) < 0)
		return -1;
	unsigned host = kl_addr_hostlen(&r.prefix);
	if (p[1] > host)
		return kl_fail(err, errlen, "RELEASE: field 'prefixlen' is %u, out of range 0..%u", p[1],
			    host);
	r.prefix.prefixlen = p[1];
	struct kl_addr masked = r.prefix;
	kl_addr_mask(&masked);
	if (memcmp(masked.addr, r.prefix.addr, sizeof(masked.addr)) != 0)
		return kl_fail(err, errlen, "RELEASE: field 'addr' has host bits set after /%u", p[1]);
	r.budget = kl_get32(p + 4);
	if (r.budget < 1 || r.budget > KL_RELEASE_MAX_BUDGET)
		return kl_fail(err, errlen, "RELEASE: field 'budget' is %u, want 1..%u", r.budget,
			    KL_RELEASE_MAX_BUDGET);
	*out = r;
	return 0;
}

void kl_release_ack_encode(const struct kl_release_ack *a, uint8_t out[KL_RELEASE_ACK_LEN])
{
	kl_put32(out, a->removed);
	kl_put32(out + 4, a->more);
}

int kl_release_ack_decode(const uint8_t *p, size_t len, struct kl_release_ack *out, char *err,
			  size_t errlen)
{
	if (p == NULL || len != KL_RELEASE_ACK_LEN)
		return kl_fail(err, errlen, "RELEASE_ACK payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_RELEASE_ACK_LEN);
	uint32_t removed = kl_get32(p), more = kl_get32(p + 4);
	if (removed > KL_RELEASE_MAX_BUDGET)
		return kl_fail(err, errlen, "RELEASE_ACK: field 'removed' is %u, above the largest budget %u",
			    removed, KL_RELEASE_MAX_BUDGET);
	if (more > 1)
		return kl_fail(err, errlen, "RELEASE_ACK: field 'more' is %u, want 0 or 1", more);
	out->removed = removed;
	out->more = more;
	return 0;
}

void kl_enforced_q_encode(uint32_t max, uint8_t out[KL_ENFORCED_Q_LEN])
{
	kl_put32(out, max);
	kl_put32(out + 4, 0);
}

int kl_enforced_q_decode(const uint8_t *p, size_t len, uint32_t *max, char *err, size_t errlen)
{
	if (p == NULL || len != KL_ENFORCED_Q_LEN)
		return kl_fail(err, errlen, "ENFORCED_Q payload is %zu bytes, want exactly %d",
			    p == NULL ? (size_t)0 : len, KL_ENFORCED_Q_LEN);
	uint32_t m = kl_get32(p);
	if (m > KL_STATE_MAX)
		return kl_fail(err, errlen, "ENFORCED_Q: field 'max' is %u, above the limit %u", m,
			    KL_STATE_MAX);
	if (kl_get32(p + 4) != 0)
		return kl_fail(err, errlen, "ENFORCED_Q: reserved bytes 4..7 must be zero");
	*max = m;
	return 0;
}

/* ---- STATE ---- */

size_t kl_state_len(size_t n)
{
	return KL_BATCH_HDR_LEN + n * KL_STATE_REC_LEN;
}

void kl_state_encode(const struct kl_state_rec *s, uint32_t n, bool truncated, uint8_t *out)
{
	kl_put32(out, n);
	kl_put32(out + 4, truncated ? 1 : 0);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = out + KL_BATCH_HDR_LEN + (size_t)i * KL_STATE_REC_LEN;
		memset(r, 0, KL_STATE_REC_LEN);
		put_addr(&r[0], r + 8, &s[i].addr);
		r[1] = s[i].kind;
		r[2] = s[i].proto;
		kl_put16(r + 4, s[i].port);
		kl_put32(r + 24, s[i].rate_pps);
		kl_put32(r + 28, s[i].burst);
		kl_put64(r + 32, s[i].expires_in_ms);
	}
}

int kl_state_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen)
{
	if (kl_batch_count("STATE", p, len, KL_STATE_REC_LEN, KL_STATE_MAX, n, err, errlen) < 0)
		return -1;
	if (kl_get32(p + 4) > 1)
		return kl_fail(err, errlen, "STATE: field 'truncated' is %u, want 0 or 1", kl_get32(p + 4));
	return 0;
}

static int state_rec_decode(const uint8_t *r, uint32_t i, struct kl_state_rec *s, char *err,
			    size_t errlen)
{
	char where[48];
	snprintf(where, sizeof(where), "STATE record %u", i);
	if (r[3] != 0 || kl_get16(r + 6) != 0)
		return kl_fail(err, errlen, "%s: reserved bytes 3 and 6..7 must be zero", where);
	if (get_host(r[0], r + 8, &s->addr, where, err, errlen) < 0)
		return -1;
	s->kind = r[1];
	s->proto = r[2];
	s->port = kl_get16(r + 4);
	s->rate_pps = kl_get32(r + 24);
	s->burst = kl_get32(r + 28);
	s->expires_in_ms = kl_get64(r + 32);
	switch (s->kind) {
	case KL_STATE_RL:
	case KL_STATE_DENY:
		if (s->proto != 0 || s->port != 0)
			return kl_fail(err, errlen, "%s: kind %s has no proto or port (both must be 0)",
				    where, kl_state_kind_name(s->kind));
		if (s->kind == KL_STATE_RL)
			return want_range(s->burst, 1, UINT32_MAX, where, "burst", "", err, errlen);
		break;
	case KL_STATE_EDGE_ALLOW:
	case KL_STATE_EDGE_DENY:
		if (check_proto_port(s->proto, s->port, s->addr.family, where, err, errlen) < 0)
			return -1;
		break;
	default:
		return kl_fail(err, errlen,
			    "%s: field 'kind' is %u, want 1 (rl), 2 (deny), 3 (edge allow) or 4 "
			    "(edge deny)",
			    where, s->kind);
	}
	if (s->rate_pps != 0 || s->burst != 0)
		return kl_fail(err, errlen, "%s: kind %s has no rate_pps or burst (both must be 0)",
			    where, kl_state_kind_name(s->kind));
	return 0;
}

int kl_state_decode(const uint8_t *p, size_t len, struct kl_state_rec *out, size_t cap,
		    uint32_t *n, bool *truncated, char *err, size_t errlen)
{
	uint32_t c;
	if (kl_state_count(p, len, &c, err, errlen) < 0)
		return -1;
	if (c > cap)
		return kl_fail(err, errlen, "STATE: %u records, room for %zu", c, cap);
	for (uint32_t i = 0; i < c; i++) {
		if (state_rec_decode(p + KL_BATCH_HDR_LEN + (size_t)i * KL_STATE_REC_LEN, i, &out[i],
				     err, errlen) < 0)
			return -1;
	}
	*n = c;
	*truncated = kl_get32(p + 4) != 0;
	return 0;
}

/* ---- EDGE_RULES ---- */

size_t kl_edge_rules_len(size_t n)
{
	return KL_BATCH_HDR_LEN + n * KL_EDGE_RULE_LEN;
}

void kl_edge_rules_encode(const struct kl_edge_rule *e, uint32_t n, uint8_t *out)
{
	kl_put32(out, n);
	kl_put32(out + 4, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = out + KL_BATCH_HDR_LEN + (size_t)i * KL_EDGE_RULE_LEN;
		memset(r, 0, KL_EDGE_RULE_LEN);
		put_addr(&r[0], r + 16, &e[i].src);
		r[1] = e[i].action;
		r[2] = e[i].proto;
		kl_put16(r + 4, e[i].port);
		kl_put64(r + 8, e[i].ttl_ms);
	}
}

int kl_edge_rules_count(const uint8_t *p, size_t len, uint32_t *n, char *err, size_t errlen)
{
	if (kl_batch_count("EDGE_RULES", p, len, KL_EDGE_RULE_LEN, KL_EDGE_RULES_MAX, n, err,
			errlen) < 0)
		return -1;
	if (kl_get32(p + 4) != 0)
		return kl_fail(err, errlen, "EDGE_RULES: header bytes 4..7 (reserved) must be zero");
	return 0;
}

static int edge_rule_decode(const uint8_t *r, uint32_t i, struct kl_edge_rule *e, char *err,
			    size_t errlen)
{
	char where[48];
	snprintf(where, sizeof(where), "EDGE_RULES record %u", i);
	if (r[3] != 0 || kl_get16(r + 6) != 0)
		return kl_fail(err, errlen, "%s: reserved bytes 3 and 6..7 must be zero", where);
	if (get_host(r[0], r + 16, &e->src, where, err, errlen) < 0)
		return -1;
	e->action = r[1];
	e->proto = r[2];
	e->port = kl_get16(r + 4);
	e->ttl_ms = kl_get64(r + 8);
	if (e->action < KL_EDGE_ACT_ADD_ALLOW || e->action >= KL_EDGE_ACT_MAX)
		return kl_fail(err, errlen,
			    "%s: field 'action' is %u, want 1 (add allow), 2 (del allow), 3 (add "
			    "deny) or 4 (del deny)",
			    where, e->action);
	if (check_proto_port(e->proto, e->port, e->src.family, where, err, errlen) < 0)
		return -1;
	if (e->action == KL_EDGE_ACT_ADD_ALLOW || e->action == KL_EDGE_ACT_ADD_DENY)
		return want_range(e->ttl_ms, KL_EDGE_TTL_MIN_MS, KL_EDGE_TTL_MAX_MS, where, "ttl_ms",
				  " (1 s .. 30 days)", err, errlen);
	if (e->ttl_ms != 0)
		return kl_fail(err, errlen, "%s: field 'ttl_ms' must be 0 for %s", where,
			    kl_edge_action_name(e->action));
	return 0;
}

int kl_edge_rules_decode(const uint8_t *p, size_t len, struct kl_edge_rule *out, size_t cap,
			 uint32_t *n, char *err, size_t errlen)
{
	uint32_t c;
	if (kl_edge_rules_count(p, len, &c, err, errlen) < 0)
		return -1;
	if (c > cap)
		return kl_fail(err, errlen, "EDGE_RULES: %u records, room for %zu", c, cap);
	for (uint32_t i = 0; i < c; i++) {
		if (edge_rule_decode(p + KL_BATCH_HDR_LEN + (size_t)i * KL_EDGE_RULE_LEN, i, &out[i],
				     err, errlen) < 0)
			return -1;
	}
	*n = c;
	return 0;
}
