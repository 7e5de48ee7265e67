/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Kernel/user ABI of the Kernloom shield: map keys, map values, config and
 * events. Included by bpf/shield.bpf.c and by every userspace reader/writer.
 *
 * Conventions
 *  - Addresses are stored in network byte order: IPv4 as a __u32, IPv6 as
 *    16 bytes. Ports are stored in host byte order.
 *  - Times are CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns()), so an
 *    expiry written by userspace with clock_gettime(CLOCK_BOOTTIME) compares
 *    directly in the data plane and survives suspend.
 *  - An expiry of 0 means "never expires" (only an operator may ask for it).
 *  - Every struct is padded explicitly so both compilers agree on layout.
 */
#ifndef KL_SHIELD_H
#define KL_SHIELD_H

#include <linux/types.h>

#define KL_PIN_DIR_DEFAULT "/sys/fs/bpf/kernloom"

/* Default map sizes (settable at load time by the enforcer). */
#define KL_SRC_MAX_DEFAULT     131072  /* per family */
/* Source slots per family: twice the sources asked for, so the 4-way
 * buckets rarely overflow (a power of two: see kl_src_slot). */
#define KL_SRC_SLOTS_DEFAULT   (2 * KL_SRC_MAX_DEFAULT)
#define KL_SRC_WAYS            4
#define KL_DENY_MAX_DEFAULT    1048576 /* exact deny, per family */
#define KL_DENY_LPM_MAX_DEFAULT 65536  /* CIDR deny, per family */
#define KL_ALLOW_MAX_DEFAULT   65536   /* allow LPM, per family */
#define KL_RL_MAX_DEFAULT      262144  /* RL overrides, per family */
#define KL_FLOW_MAX_DEFAULT    32768   /* flow telemetry, per family */
#define KL_EDGE_MAX_DEFAULT    65536   /* edge rules, per family and kind */
#define KL_EVENTS_BYTES_DEFAULT (1u << 20)

/* Ports at or above this are folded to KL_PORT_EPHEMERAL in flow telemetry
 * and in edge lookups (replies to the host's own outbound connections). */
#define KL_EPHEMERAL_MIN_DEFAULT 32768
#define KL_PORT_EPHEMERAL 0

/* Scan signal: distinct destination ports per window, counted with a
 * bitmap of KL_PORTMAP_WORDS*64 bits that is cleared when the window moves. */
#define KL_PORTMAP_WORDS 8
#define KL_PORT_WINDOW_SHIFT 30 /* ~1.07 s windows */

/* ---- keys ---- */

struct kl_lpm4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct kl_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct kl_in6 {
	__u8 addr[16];
};

/* Edge (tuple) and flow key: source, destination port (host order, folded
 * when ephemeral), IP protocol. */
struct kl_edge4_key {
	__u32 src;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct kl_edge6_key {
	__u8 src[16];
	__u16 port;
	__u8 proto;
	__u8 pad;
};

/* ---- policy values ---- */

/* Who caused an entry; the enforcer stamps it, the data plane ignores it. */
enum kl_origin {
	KL_ORIGIN_OPERATOR = 1,
	KL_ORIGIN_DECIDER = 2,
	KL_ORIGIN_GRAPHD = 3,
	/* Allowlist entries made from the enforcer's `protect` list: such a
	 * source bypasses allow-enforce, deny, rate limits and edge rules, so
	 * no rule can lock the operator out. */
	KL_ORIGIN_PROTECTED = 4,
};

/* Value of the allow LPMs, exact deny hashes, deny LPMs, edge allow/deny. */
struct kl_rule {
	__u64 expires_ns; /* 0 = permanent */
	__u64 created_ns;
	__u32 origin;     /* enum kl_origin */
	__u32 pad;
};

/* Value of the per-source and per-edge rate-limit override maps.
 * `tat_ns` is the GCRA theoretical arrival time; for per-edge limits the
 * data plane keeps it here, for per-source limits it lives in the source's
 * telemetry entry (so one lookup serves both). */
struct kl_rl_rule {
	__u64 rate_pps;   /* packets per second that pass; 0 = drop all */
	__u64 burst;      /* packets that may pass back to back */
	__u64 expires_ns; /* 0 = permanent */
	__u64 tat_ns;     /* edge limits only */
	__u32 origin;
	__u32 pad;
};

/* ---- runtime config: one entry in kernloom_cfg (ARRAY, key 0) ---- */

enum kl_edge_mode {
	KL_EDGE_OFF = 0,
	KL_EDGE_DENY = 1,  /* drop tuples in the edge deny map */
	KL_EDGE_ALLOW = 2, /* drop tuples not in the edge allow map */
};

struct kl_cfg {
	__u32 allow_enforce;  /* 1: sources outside the allowlist are dropped */
	__u32 sample_mask;    /* 0: no events; else emit when (n & mask) == 0 */
	__u32 edge_mode;      /* enum kl_edge_mode */
	__u32 policy_gen;     /* bumped by the enforcer after every policy write */
	__u64 rl_rate_pps;    /* global default bucket; burst 0 = no default */
	__u64 rl_burst;
	__u32 ephemeral_min;  /* 0 = no folding */
	/* 1: a source claims a slot on its first packet. 0 (default): only
	 * on its second one seen through the admission filter (see
	 * KL_ADMIT_SLOTS), so a spoofed flood cannot churn the table. */
	__u32 admit_off;
	/* Keys of the source-slot bucket hash (kl_src_buckets4/6). The
	 * enforcer draws them with getrandom() when it creates kernloom_cfg
	 * and never changes them while the pinned source maps live, since
	 * every source would then hash to another bucket. */
	__u64 src_seed[2];
	/* Aggregate limit on packets of not-yet-admitted sources (a spoofed
	 * flood): GCRA like a per-source override, shared by all of them.
	 * burst 0 = no limit; expires 0 = permanent. Protected and allowlisted
	 * sources are exempt, sources holding a slot are not affected. */
	__u64 new_rate_pps;
	__u64 new_burst;
	__u64 new_expires_ns;
};

/* Admission filter: a direct-mapped array of source fingerprints (256 KiB,
 * stays in L2). A source without a slot is admitted, i.e. claims one, only
 * when its fingerprint is already there, i.e. on its second packet unless
 * another new source overwrote the entry in between. Packets of sources not
 * admitted are counted in aggregate (KL_T_SRC_UNADMITTED). */
#define KL_ADMIT_SLOTS (1u << 16)

/* Policy summary (kernloom_policy_bloom, ARRAY of KL_POL_BLOOM_WORDS __u64,
 * 128 KiB): one bit per source address (kl_pol_bit of its bucket hash) that
 * the enforcer sets BEFORE it writes an exact-source entry (deny, RL
 * override, edge rule) for that address, and rebuilds from the maps at
 * load. A clear bit proves that no such entry exists, so a packet of a
 * source that holds no slot skips the lookups into those large hashes (each
 * a cache and TLB miss) unless its bit is set. Bits of deleted entries stay
 * until the next rebuild: a false positive only costs the lookups. */
#define KL_POL_BLOOM_WORDS 16384u

/* ---- telemetry ---- */

/* Cached policy verdict bits in struct kl_src_stats.verdict. */
#define KL_V_ALLOWED  (1u << 0) /* in the allowlist */
#define KL_V_DENIED   (1u << 1) /* exact or CIDR deny (see deny_expires_ns) */
#define KL_V_RL       (1u << 2) /* per-source RL override (see rl_*) */
#define KL_V_PROTECTED (1u << 3) /* allow entry with KL_ORIGIN_PROTECTED */
/* Set by the data plane whenever it computes a verdict. A zeroed entry (a
 * fresh insert, or one userspace rewrote) lacks it, so its verdict is
 * recomputed even when policy_gen happens to equal cache_gen. */
#define KL_V_CACHED   (1u << 31)

/* Per-source telemetry, inside struct kl_src_slot (shared by all CPUs:
 * counters are updated with atomic adds, so none is lost). */
struct kl_src_stats {
	/* Laid out by access pattern: a known source's pass path touches only
	 * the first 64 bytes and reads one word of port_bits. */
	__u32 cache_gen;       /* cached verdict valid while == cfg.policy_gen */
	__u32 verdict;         /* KL_V_* */
	__u64 pkts;
	__u64 bytes;
	__u64 pass;
	__u64 last_seen_ns;
	__u64 port_window;     /* window id of port_bits */
	__u64 deny_expires_ns;
	__u64 tat_ns;          /* GCRA state of this source's bucket */
	__u64 port_bits[KL_PORTMAP_WORDS];
	__u64 syn;             /* TCP SYN without ACK */
	__u64 synack;
	__u64 rst;
	__u64 drop_allow;
	__u64 drop_deny;
	__u64 drop_rl;
	__u64 drop_edge;
	__u64 ports_distinct;  /* cumulative: +1 per new port in the window */
	__u64 first_seen_ns;
	__u64 rl_rate_pps;
	__u64 rl_burst;
	__u64 rl_expires_ns;
};

/* A source's last tuple verdict (graph-enforce), so a known source talking
 * to the same (port, proto) skips the edge lookups. Valid only while `gen`
 * equals the low bits of kl_cfg.policy_gen (the enforcer bumps it after
 * every edge write), the edge mode is the one it was computed under, and
 * the current ~1.07 s unit (now >> 30) is before `until` (wrap-aware: at
 * most 2^14 units ahead, and never past the allow rule's expiry).
 * The same word remembers the tuple whose flow a throttled packet of the
 * source last recorded (KL_EC_FLOW; a KL_EC_PASS tuple recorded its flow
 * too), so its next drops on that tuple skip the flow table (shield.bpf.c,
 * finish). */
struct kl_edge_cache {
	__u16 port;
	__u8 proto;
	__u8 flags;  /* KL_EC_* | edge mode << 2 */
	__u16 gen;
	__u16 until;
};
#define KL_EC_PASS 1u /* the tuple passed the edge rules */
#define KL_EC_RL   2u /* it has a per-edge RL rule: still looked up per packet */
#define KL_EC_FLOW 0x80u /* flow memo only: never an edge verdict */

/* Source slots. kernloom_src4_stats / kernloom_src6_stats are ARRAYs
 * (BPF_F_MMAPABLE, frozen by the enforcer so userspace can only read them)
 * of nslots struct kl_src_slot, used as a 4-way set-associative table with
 * two choices: source A lives in one of the KL_SRC_WAYS slots of one of its
 * two buckets, kl_src_buckets4/6(A) (nslots a power of two, at least two
 * buckets). Two choices keep the sources that find no slot rare: at 2x
 * slots per source none of 2^17 sources went without one (bench_xdp prints
 * the count).
 *
 * A source that misses (and, unless kl_cfg.admit_off, is admitted by the
 * filter, see KL_ADMIT_SLOTS) claims a free slot of its first bucket, else of
 * its second, else the one of the eight seen least recently (the previous owner
 * is "robbed" and claims again, with a fresh first_seen_ns, on its next
 * packet). `seq` is a sequence word:
 *   0            never claimed
 *   odd          being (re)claimed: owner and counters are being reset
 *   even, != 0   claimed by `owner`
 * A claim moves seq from even s to s + 1 with a compare-and-swap (so two
 * CPUs never both take a slot), clears family, resets the counters, writes
 * the owner, then publishes s + 2 (never 0) with an atomic exchange. A
 * reader copies a slot between two reads of seq and keeps the copy only if
 * both are the same even non-zero value (a seqlock; counters move under it,
 * but each is one atomic 64-bit word). A slot's seq names one claim: the
 * sensor keeps its previous counters by (slot, seq). */
struct kl_src_slot {
	__u32 seq;
	__u32 family;           /* 0 (free), 4 or 6 */
	union {                 /* network order; IPv4 in owner[0..3], rest 0 */
		__u8 owner[16];
		__u32 owner4;
		__u64 owner64[2];
	};
	/* The header and the stats' first 40 bytes (verdict cache, pkts,
	 * bytes, pass, last_seen) share the slot's first cache line. */
	struct kl_src_stats s;
	struct kl_edge_cache ec;
};

/* Tags of a bucket (kl_src_tags4/6, internal, one 8-byte word per bucket):
 * a 16-bit fingerprint (kl_src_tag) of each way's owner, 0 when none was
 * written. A lookup reads this one word and opens only the slots whose tag
 * matches, so a miss costs two words instead of eight 256-byte slots, and
 * the tags of 2^16 buckets (256k slots) take 512 KiB, small enough to stay
 * in cache. Tags are hints written after a claim publishes the slot; the
 * slot's owner stays the authority (a stale or missing tag costs a slower
 * lookup, never a wrong match). */
struct kl_src_tags {
	__u16 tag[KL_SRC_WAYS];
};

/* Keyed multiplicative hash of a source address: 64 bits, the two buckets
 * from its two halves. Not cryptographic: the random keys only keep an
 * outsider from computing which addresses share a bucket. Shared by the
 * data plane and its userspace readers. */
static inline __attribute__((always_inline)) __u64 kl_src_hash4(__u32 addr, const __u64 seed[2])
{
	__u64 h = ((__u64)addr ^ seed[0]) * 0x9e3779b97f4a7c15ull;

	return (h ^ (h >> 29)) * (seed[1] | 1);
}

/* IPv6 by its two 64-bit halves (as loaded from memory, i.e. in host order
 * of the network-order bytes; kl_src_buckets6 does the load). */
static inline __attribute__((always_inline)) __u64 kl_src_hash6w(__u64 w0, __u64 w1,
								 const __u64 seed[2])
{
	__u64 h = (w0 ^ seed[0]) * 0x9e3779b97f4a7c15ull + (w1 ^ seed[1]) * 0xc2b2ae3d27d4eb4full;

	return (h ^ (h >> 29)) * 0x165667b19e3779f9ull;
}

/* Fingerprint of a source in its bucket's tag line: other bits of its hash
 * than the bucket index, never 0. */
static inline __attribute__((always_inline)) __u16 kl_src_tag(__u64 h)
{
	return (__u16)((h * 0x9e3779b97f4a7c15ull) >> 48) | 1;
}

/* Bit of a source (its kl_src_hash4/kl_src_hash6w) in kernloom_policy_bloom. */
static inline __attribute__((always_inline)) __u32 kl_pol_bit(__u64 h)
{
	return (__u32)(h >> 7) & (KL_POL_BLOOM_WORDS * 64 - 1);
}

/* First slot of each of the two buckets of a hash, for a bucket mask
 * (nslots / KL_SRC_WAYS - 1). The second bucket differs from the first
 * (flipped low bit when the halves agree). */
static inline __attribute__((always_inline)) void kl_src_bases(__u64 h, __u32 mask, __u32 base[2])
{
	__u32 b1 = (__u32)(h >> 32) & mask, b2 = (__u32)h & mask;

	if (b2 == b1)
		b2 = b1 ^ 1;
	base[0] = b1 * KL_SRC_WAYS;
	base[1] = b2 * KL_SRC_WAYS;
}

static inline __attribute__((always_inline)) void kl_src_buckets4(__u32 addr, const __u64 seed[2],
								  __u32 mask, __u32 base[2])
{
	kl_src_bases(kl_src_hash4(addr, seed), mask, base);
}

static inline __attribute__((always_inline)) void kl_src_buckets6(const __u8 a[16],
								  const __u64 seed[2], __u32 mask,
								  __u32 base[2])
{
	__u64 w0, w1;

	__builtin_memcpy(&w0, a, 8);
	__builtin_memcpy(&w1, a + 8, 8);
	kl_src_bases(kl_src_hash6w(w0, w1, seed), mask, base);
}

/* Slots of a source or flow slot array for n entries per family
 * (map_sizes src, flow): twice n, so 4-way buckets rarely overflow, rounded
 * up to a power of two for the bucket mask, at least 16 buckets.
 * Userspace: the enforcer sizes the arrays with it, receivers bound a
 * tick's records by it. */
static inline __u64 kl_slots_for(__u32 n)
{
	__u64 s = 16 * KL_SRC_WAYS;

	while (s < 2ull * n)
		s <<= 1;
	return s;
}

/* A flow's counters (struct kl_flow_slot). */
struct kl_flow_stats {
	__u64 pkts;
	__u64 bytes;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
};

/* Flow slots. kernloom_flow4_stats / kernloom_flow6_stats are ARRAYs
 * (BPF_F_MMAPABLE, frozen by the enforcer like the source slots) of
 * nslots struct kl_flow_slot, one cache line each, used as a 4-way
 * set-associative table: flow (source, port, proto) lives in one of the
 * KL_FLOW_WAYS slots of bucket kl_flow_bucket(). The data plane finds a
 * flow by its own hash and compares the key in the slot, so a known flow
 * costs one line and no map-helper call (an LRU hash lookup cost a known
 * source in the graph profiles 22-34 ns, more than the rest of its path).
 * A flow that misses claims a free way of its bucket, else the one seen
 * least recently (that flow's counts since the last harvest are lost, as an
 * LRU eviction loses them; it claims again, with a fresh first_seen_ns, on
 * its next packet). Twice the configured flows in slots (enf_slots) keeps
 * such robbing rare.
 *
 * `seq` is the sequence word of kl_src_slot (0 never claimed, odd being
 * claimed, even non-zero claimed), with the same claim: compare-and-swap to
 * odd, clear `tuple` (so nothing matches the slot), reset the counters,
 * write the key, publish `tuple`, then seq + 2. Readers copy a slot between
 * two reads of seq. The key is (src, tuple): tuple packs family, protocol
 * and folded destination port into one word compared at once; family 0
 * means free or being claimed. */
#define KL_FLOW_WAYS 4
#define KL_FLOW_SLOTS_DEFAULT (2 * KL_FLOW_MAX_DEFAULT)

struct kl_flow_slot {
	__u32 seq;
	union {
		struct {
			__u8 family; /* 0, 4 or 6 */
			__u8 proto;
			__u16 port;  /* host order, folded when ephemeral */
		};
		__u32 tuple;
	};
	union { /* network order; IPv4 in src[0..3], rest 0 */
		__u8 src[16];
		__u32 src4;
		__u64 src64[2];
	};
	struct kl_flow_stats s;
	__u64 pad;
};

static inline __attribute__((always_inline)) __u32 kl_flow_tuple(__u8 family, __u8 proto,
								 __u16 port)
{
	struct kl_flow_slot t = { .family = family, .proto = proto, .port = port };

	return t.tuple;
}

/* First slot of a flow's bucket: from its source's keyed hash
 * (kl_src_hash4 / kl_src_hash6w, so an outsider cannot aim at a bucket
 * either) and its tuple, for a bucket mask (nslots / KL_FLOW_WAYS - 1). */
static inline __attribute__((always_inline)) __u32 kl_flow_bucket(__u64 src_hash, __u32 tuple,
								  __u32 mask)
{
	__u64 x = (src_hash ^ ((__u64)tuple * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;

	return ((__u32)(x >> 32) & mask) * KL_FLOW_WAYS;
}

/* kernloom_totals: PERCPU_ARRAY with KL_T_MAX __u64 counters at key 0. */
enum kl_total {
	KL_T_PKTS = 0,
	KL_T_BYTES,
	KL_T_PASS,
	KL_T_DROP_ALLOW,
	KL_T_DROP_DENY,
	KL_T_DROP_RL,
	KL_T_DROP_EDGE,
	KL_T_MALFORMED,
	KL_T_NON_IP,
	KL_T_IPV4,
	KL_T_IPV6,
	KL_T_FRAGMENTS,
	KL_T_EVENTS,
	KL_T_EVENTS_LOST,
	KL_T_SRC_NEW,
	/* Event candidates (drops, scan hints, malformed) seen on this CPU,
	 * emitted or not; it is also the per-CPU sampling sequence
	 * (emit when (n & sample_mask) == 0). */
	KL_T_EV_CANDIDATES,
	/* Packets of sources that hold no slot and were not admitted (first
	 * sightings): the rate of new sources, the spoofing signal. */
	KL_T_SRC_UNADMITTED,
	/* Of those, dropped by the aggregate new-source limit (also counted
	 * in KL_T_DROP_RL). */
	KL_T_DROP_NEWSRC,
	KL_T_MAX
};

struct kl_totals {
	__u64 v[KL_T_MAX];
};

/* ---- events (ring buffer kernloom_events) ---- */

enum kl_event_kind {
	KL_EV_DROP_ALLOW = 1,
	KL_EV_DROP_DENY = 2,
	KL_EV_DROP_RL = 3,
	KL_EV_DROP_EDGE = 4,
	KL_EV_SCAN_HINT = 5, /* a new distinct port for this source */
	KL_EV_MALFORMED = 6,
};

struct kl_event {
	__u64 ts_ns;
	__u8 addr[16];  /* IPv4 in the first 4 bytes */
	__u8 family;    /* 4 or 6 */
	__u8 kind;      /* enum kl_event_kind */
	__u8 proto;
	__u8 pad;
	__u16 dport;
	__u16 pad2;
	__u32 pkt_len;
};

/* Map names (pin file names under the pin directory). */
#define KL_MAP_CFG          "kernloom_cfg"
#define KL_MAP_TOTALS       "kernloom_totals"
#define KL_MAP_EVENTS       "kernloom_events"
#define KL_MAP_SRC4         "kernloom_src4_stats"
#define KL_MAP_SRC6         "kernloom_src6_stats"
#define KL_MAP_ALLOW4       "kernloom_allow4_lpm"
#define KL_MAP_ALLOW6       "kernloom_allow6_lpm"
#define KL_MAP_DENY4        "kernloom_deny4_hash"
#define KL_MAP_DENY6        "kernloom_deny6_hash"
#define KL_MAP_DENY4_LPM    "kernloom_deny4_lpm"
#define KL_MAP_DENY6_LPM    "kernloom_deny6_lpm"
#define KL_MAP_RL4          "kernloom_rl_policy4"
#define KL_MAP_RL6          "kernloom_rl_policy6"
#define KL_MAP_FLOW4        "kernloom_flow4_stats"
#define KL_MAP_FLOW6        "kernloom_flow6_stats"
#define KL_MAP_EDGE4_DENY   "kernloom_edge4_deny"
#define KL_MAP_EDGE6_DENY   "kernloom_edge6_deny"
#define KL_MAP_EDGE4_ALLOW  "kernloom_edge4_allow"
#define KL_MAP_EDGE6_ALLOW  "kernloom_edge6_allow"
#define KL_MAP_EDGE4_RL     "kernloom_edge4_rl_policy"
#define KL_MAP_EDGE6_RL     "kernloom_edge6_rl_policy"
#define KL_MAP_POLICY_BLOOM "kernloom_policy_bloom"

_Static_assert(sizeof(struct kl_src_stats) == 224, "kl_src_stats layout");
_Static_assert(sizeof(struct kl_src_tags) == 8, "kl_src_tags: one word");
_Static_assert(sizeof(struct kl_src_slot) == 256, "kl_src_slot: a power of two (shift, not multiply)");
_Static_assert(sizeof(struct kl_flow_slot) == 64, "kl_flow_slot: one cache line");

#endif /* KL_SHIELD_H */
