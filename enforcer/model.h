/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Pure helpers of the enforcer: map keys from addresses and back, expiry,
 * port folding, the in-memory event ring, and top-source ranking. No I/O.
 */
#ifndef KL_ENFORCER_MODEL_H
#define KL_ENFORCER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shield.h"
#include "common/addr.h"
#include "ipc/msg.h"

/* ---- keys ---- */

/* Host address -> exact key (IPv4: 4 bytes network order, IPv6: 16). */
size_t enf_host_key(const struct kl_addr *a, void *key);
/* Prefix -> LPM key (kl_lpm4_key / kl_lpm6_key). Returns the key size. */
size_t enf_lpm_key(const struct kl_addr *a, void *key);
void enf_addr_from_host4(uint32_t be, struct kl_addr *out);
void enf_addr_from_host6(const uint8_t addr[16], struct kl_addr *out);
void enf_addr_from_lpm4(const struct kl_lpm4_key *k, struct kl_addr *out);
void enf_addr_from_lpm6(const struct kl_lpm6_key *k, struct kl_addr *out);

/* The edge key the data plane looks up for (src, port, proto): ports at or
 * above ephemeral_min (when non-zero) fold to KL_PORT_EPHEMERAL. */
size_t enf_edge_key(const struct kl_addr *src, uint16_t port, uint8_t proto,
		    uint32_t ephemeral_min, void *key);
uint16_t enf_fold_port(uint16_t port, uint32_t ephemeral_min);

/* ---- time ---- */
/* 0 = permanent; otherwise now + ttl, saturating. */
uint64_t enf_expiry(uint64_t now_ns, uint64_t ttl_ms);
bool enf_expired(uint64_t expires_ns, uint64_t now_ns);

/* ---- names ---- */
const char *enf_origin_name(uint32_t origin);
const char *enf_edge_mode_name(uint32_t mode);
const char *enf_event_kind_name(unsigned kind);
/* "tcp", "udp", "icmp", "icmpv6" or the number. */
const char *enf_proto_name(unsigned proto, char *buf, size_t len);
/* Names of kl_total counters in KL_T_* order ("pkts", "bytes", "pass", ...). */
const char *enf_total_name(unsigned i);

/* ---- event ring: the last ENF_EVRING_CAP events, oldest overwritten ---- */
#define ENF_EVRING_CAP 4096

struct enf_evring {
	struct kl_event ev[ENF_EVRING_CAP];
	uint64_t pushed; /* total ever pushed */
};

void enf_evring_push(struct enf_evring *r, const struct kl_event *e);
/* Copy up to n of the newest events, oldest first, into out. Returns the
 * number copied. */
size_t enf_evring_last(const struct enf_evring *r, size_t n, struct kl_event *out);

/* ---- top sources ---- */
struct enf_src_row {
	struct kl_addr addr;
	struct kl_src_stats st;
};

uint64_t enf_top_metric(const struct kl_src_stats *s, enum kl_top_by by);
/* Sort rows by the metric, largest first (ties: more packets, then address
 * order, so the output is stable). */
void enf_top_sort(struct enf_src_row *rows, size_t n, enum kl_top_by by);

#endif
