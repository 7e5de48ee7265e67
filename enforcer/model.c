/* SPDX-License-Identifier: MPL-2.0 */
/* Pure helpers: keys, expiry, names, event ring, top-source ranking. */
#include "enforcer/model.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t enf_host_key(const struct kl_addr *a, void *key)
{
	if (a->family == 4) {
		memcpy(key, a->addr, 4);
		return 4;
	}
	memcpy(key, a->addr, 16);
	return 16;
}

size_t enf_lpm_key(const struct kl_addr *a, void *key)
{
	if (a->family == 4) {
		struct kl_lpm4_key k = { .prefixlen = a->prefixlen };
		memcpy(&k.addr, a->addr, 4);
		memcpy(key, &k, sizeof(k));
		return sizeof(k);
	}
	struct kl_lpm6_key k = { .prefixlen = a->prefixlen };
	memcpy(k.addr, a->addr, 16);
	memcpy(key, &k, sizeof(k));
	return sizeof(k);
}

void enf_addr_from_host4(uint32_t be, struct kl_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = 4;
	out->prefixlen = 32;
	memcpy(out->addr, &be, 4);
}

void enf_addr_from_host6(const uint8_t addr[16], struct kl_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = 6;
	out->prefixlen = 128;
	memcpy(out->addr, addr, 16);
}

void enf_addr_from_lpm4(const struct kl_lpm4_key *k, struct kl_addr *out)
{
	enf_addr_from_host4(k->addr, out);
	out->prefixlen = (uint8_t)(k->prefixlen > 32 ? 32 : k->prefixlen);
	kl_addr_mask(out);
}

void enf_addr_from_lpm6(const struct kl_lpm6_key *k, struct kl_addr *out)
{
	enf_addr_from_host6(k->addr, out);
	out->prefixlen = (uint8_t)(k->prefixlen > 128 ? 128 : k->prefixlen);
	kl_addr_mask(out);
}

uint16_t enf_fold_port(uint16_t port, uint32_t ephemeral_min)
{
	return (ephemeral_min && port >= ephemeral_min) ? KL_PORT_EPHEMERAL : port;
}

size_t enf_edge_key(const struct kl_addr *src, uint16_t port, uint8_t proto,
		    uint32_t ephemeral_min, void *key)
{
	uint16_t p = enf_fold_port(port, ephemeral_min);
	if (src->family == 4) {
		struct kl_edge4_key k = { .port = p, .proto = proto };
		memcpy(&k.src, src->addr, 4);
		memcpy(key, &k, sizeof(k));
		return sizeof(k);
	}
	struct kl_edge6_key k = { .port = p, .proto = proto };
	memcpy(k.src, src->addr, 16);
	memcpy(key, &k, sizeof(k));
	return sizeof(k);
}

uint64_t enf_expiry(uint64_t now_ns, uint64_t ttl_ms)
{
	if (ttl_ms == 0)
		return 0;
	if (ttl_ms > (UINT64_MAX - now_ns) / 1000000ull)
		return UINT64_MAX;
	return now_ns + ttl_ms * 1000000ull;
}

bool enf_expired(uint64_t expires_ns, uint64_t now_ns)
{
	return expires_ns != 0 && expires_ns <= now_ns;
}

const char *enf_origin_name(uint32_t origin)
{
	switch (origin) {
	case KL_ORIGIN_OPERATOR: return "operator";
	case KL_ORIGIN_DECIDER: return "decider";
	case KL_ORIGIN_GRAPHD: return "graphd";
	case KL_ORIGIN_PROTECTED: return "protected";
	default: return "unknown";
	}
}

const char *enf_edge_mode_name(uint32_t mode)
{
	switch (mode) {
	case KL_EDGE_OFF: return "off";
	case KL_EDGE_DENY: return "deny";
	case KL_EDGE_ALLOW: return "allow";
	default: return "unknown";
	}
}

const char *enf_event_kind_name(unsigned kind)
{
	switch (kind) {
	case KL_EV_DROP_ALLOW: return "drop_allow";
	case KL_EV_DROP_DENY: return "drop_deny";
	case KL_EV_DROP_RL: return "drop_rl";
	case KL_EV_DROP_EDGE: return "drop_edge";
	case KL_EV_SCAN_HINT: return "scan_hint";
	case KL_EV_MALFORMED: return "malformed";
	default: return "unknown";
	}
}

const char *enf_proto_name(unsigned proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	default: snprintf(buf, len, "%u", proto); return buf;
	}
}

static const char *const total_names[KL_T_MAX] = {
	[KL_T_PKTS] = "pkts",
	[KL_T_BYTES] = "bytes",
	[KL_T_PASS] = "pass",
	[KL_T_DROP_ALLOW] = "drop_allow",
	[KL_T_DROP_DENY] = "drop_deny",
	[KL_T_DROP_RL] = "drop_rl",
	[KL_T_DROP_EDGE] = "drop_edge",
	[KL_T_MALFORMED] = "malformed",
	[KL_T_NON_IP] = "non_ip",
	[KL_T_IPV4] = "ipv4",
	[KL_T_IPV6] = "ipv6",
	[KL_T_FRAGMENTS] = "fragments",
	[KL_T_EVENTS] = "events",
	[KL_T_EVENTS_LOST] = "events_lost",
	[KL_T_SRC_NEW] = "src_new",
	[KL_T_EV_CANDIDATES] = "ev_candidates",
	[KL_T_SRC_UNADMITTED] = "new_sources",
	[KL_T_DROP_NEWSRC] = "drop_new_sources",
};

const char *enf_total_name(unsigned i)
{
	return i < KL_T_MAX ? total_names[i] : NULL;
}

void enf_evring_push(struct enf_evring *r, const struct kl_event *e)
{
	r->ev[r->pushed % ENF_EVRING_CAP] = *e;
	r->pushed++;
}

size_t enf_evring_last(const struct enf_evring *r, size_t n, struct kl_event *out)
{
	uint64_t have = r->pushed < ENF_EVRING_CAP ? r->pushed : ENF_EVRING_CAP;
	if (n > have)
		n = (size_t)have;
	uint64_t first = r->pushed - n;
	for (size_t i = 0; i < n; i++)
		out[i] = r->ev[(first + i) % ENF_EVRING_CAP];
	return n;
}

uint64_t enf_top_metric(const struct kl_src_stats *s, enum kl_top_by by)
{
	switch (by) {
	case KL_TOP_BYTES: return s->bytes;
	case KL_TOP_DROPS: return s->drop_allow + s->drop_deny + s->drop_rl + s->drop_edge;
	case KL_TOP_DROPRL: return s->drop_rl;
	case KL_TOP_PKTS:
	default: return s->pkts;
	}
}

/* qsort has no context argument; the sort key travels in a thread-local. */
static __thread enum kl_top_by sort_by;

static int cmp_rows(const void *pa, const void *pb)
{
	const struct enf_src_row *a = pa, *b = pb;
	uint64_t ma = enf_top_metric(&a->st, sort_by), mb = enf_top_metric(&b->st, sort_by);
	if (ma != mb)
		return ma > mb ? -1 : 1;
	if (a->st.pkts != b->st.pkts)
		return a->st.pkts > b->st.pkts ? -1 : 1;
	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	return memcmp(a->addr.addr, b->addr.addr, sizeof(a->addr.addr));
}

void enf_top_sort(struct enf_src_row *rows, size_t n, enum kl_top_by by)
{
	sort_by = by;
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_rows);
}
