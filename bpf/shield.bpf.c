// SPDX-License-Identifier: MPL-2.0
/*
 * Kernloom shield: the XDP data plane (DESIGN §3).
 *
 * Contract with the enforcer (the only writer of the policy maps):
 *
 *  - Policy verdict cache. A source's policy (allow / protected / deny /
 *    per-source RL override) is computed from the policy maps once and cached
 *    in its kl_src_stats entry, stamped with kernloom_cfg.policy_gen. A known
 *    source then costs one tag word and one slot per packet (shield.h,
 *    "Source slots" and struct kl_src_tags; no hash map). The enforcer
 *    MUST bump kl_cfg.policy_gen after every write to kernloom_allow*_lpm,
 *    kernloom_deny*_hash, kernloom_deny*_lpm and kernloom_rl_policy* (write
 *    the map first, bump second): until the bump, sources already cached keep
 *    their old verdict. Packets read policy_gen before they read the maps, so
 *    a bump can never be missed, only observed one packet late.
 *  - kl_cfg.src_seed picks every source's bucket: the enforcer sets it once
 *    and never changes it under live source maps, and sets kl_src4_mask /
 *    kl_src6_mask to the sizes it gives them.
 *  - A slot's next owner starts from zeroed stats (no KL_V_CACHED), so a
 *    verdict is never inherited. A packet that matched a slot just before
 *    it was reclaimed may still count in, or be judged by, the slot while
 *    it is reset (at most the packets in flight then, one per CPU).
 *  - Expiries are evaluated per packet against the cached expiry (deny,
 *    RL override) and per lookup for edge rules, so a lapsing entry needs no
 *    bump. Allow entries are permanent in the data plane (expires_ns is not
 *    read): the enforcer removes them and bumps the generation.
 *  - Edge maps (kernloom_edge*) need the bump too: a source's last tuple
 *    verdict is cached in its slot (shield.h, struct kl_edge_cache) under
 *    the generation's low 16 bits, so a change is seen at the bump; an allow
 *    rule's own expiry ends the cached pass without one. kernloom_cfg fields
 *    other than the generation are read on every packet and need no bump.
 *  - Exact-source entries (deny, RL override, edge rules) also need the
 *    source's bit in kernloom_policy_bloom set BEFORE the write: a source
 *    without a slot skips those hashes when its bit is clear.
 *  - Sources without a slot: the first packet of a source is judged with
 *    the same policy but only counted in aggregate (KL_T_SRC_UNADMITTED);
 *    the admission filter lets its second packet claim a slot. kl_cfg.new_*
 *    sets an aggregate GCRA over such packets (and admissions), protected
 *    and allowlisted sources exempt.
 *  - Rate limits are GCRA ("virtual scheduling"): rate_pps packets per second
 *    pass, burst packets may pass back to back, rate 0 or burst 0 drops all.
 *    The source bucket lives in kl_src_stats.tat_ns and is shared by every
 *    interface and CPU; per-edge buckets live in kl_rl_rule.tat_ns.
 *
 * Time: CLOCK_BOOTTIME (bpf_ktime_get_boot_ns), as shield.h says. Reading it
 * costs more than the whole known-source path may (a helper call and a TSC
 * read, ~50 ns here), so each CPU caches it and re-reads it only when
 * jiffies (an inlined load) moves: telemetry times, port windows and
 * expiry checks may lag by up to one tick (1/HZ). The rate limiters read the
 * exact clock, since a tick-sized step would let a small bucket overflow
 * and lose tokens.
 *
 * Feature profiles: kl_feat_flow / kl_feat_edge are .rodata constants set
 * between open and load; when 0 the verifier removes that code entirely.
 *
 * Malformed or truncated packets are counted and passed without per-source
 * accounting; the kernel stack drops them anyway, and a source address read
 * from a broken header cannot be trusted. Non-first fragments are accounted
 * to their source and subject to allow/deny/RL, but carry no L4 header, so
 * they skip edge enforcement, flow telemetry and the scan signal (dropping a
 * flow's first fragment is enough to stop reassembly). The same holds for an
 * IPv6 packet whose extension-header chain is longer than we walk.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/shield.h"
#include "bpf/shield_parse.bpf.h"

char LICENSE[] SEC("license") = "Dual MPL/GPL";

const volatile __u32 kl_feat_flow = 0;
const volatile __u32 kl_feat_edge = 0;
/* Bucket masks of kernloom_src{4,6}_stats: max_entries / KL_SRC_WAYS - 1
 * (at least 1: two buckets). The loader sets them with the map sizes (a
 * mask too large only costs
 * telemetry: buckets past the array are never found, such sources go
 * without an entry). */
const volatile __u32 kl_src4_mask = KL_SRC_SLOTS_DEFAULT / KL_SRC_WAYS - 1;
const volatile __u32 kl_src6_mask = KL_SRC_SLOTS_DEFAULT / KL_SRC_WAYS - 1;
/* Bucket mask of both flow slot arrays (sized alike): max_entries /
 * KL_FLOW_WAYS - 1, set by the loader in the same way. */
const volatile __u32 kl_flow_mask = KL_FLOW_SLOTS_DEFAULT / KL_FLOW_WAYS - 1;

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kernloom_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_totals);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kernloom_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KL_EVENTS_BYTES_DEFAULT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kernloom_events SEC(".maps");

/* Per-CPU clock cache; internal, so not pinned. */
struct kl_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_clock);
} kl_clock_cache SEC(".maps");

/* Every pinned map has the same shape; only its type and flags differ. */
#define PINNED_MAP(name, mtype, flags, ktype, vtype, max) \
	struct {                                         \
		__uint(type, mtype);                     \
		__uint(max_entries, max);                \
		__uint(map_flags, flags);                \
		__type(key, ktype);                      \
		__type(value, vtype);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);     \
	} name SEC(".maps")

#define HASH_MAP(name, ktype, vtype, max) \
	PINNED_MAP(name, BPF_MAP_TYPE_HASH, BPF_F_NO_PREALLOC, ktype, vtype, max)
#define LPM_MAP(name, ktype, vtype, max) \
	PINNED_MAP(name, BPF_MAP_TYPE_LPM_TRIE, BPF_F_NO_PREALLOC, ktype, vtype, max)
#define SLOT_MAP(name, vtype, max) \
	PINNED_MAP(name, BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE, __u32, vtype, max)

SLOT_MAP(kernloom_src4_stats, struct kl_src_slot, KL_SRC_SLOTS_DEFAULT);
SLOT_MAP(kernloom_src6_stats, struct kl_src_slot, KL_SRC_SLOTS_DEFAULT);

/* Bucket tags (shield.h, struct kl_src_tags), one word per bucket.
 * Internal: a reload starts them empty and the slow lookup (find)
 * heals them. The loader sizes them to the bucket count. */
#define TAG_MAP(name)                                    \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_ARRAY);        \
		__uint(max_entries, KL_SRC_SLOTS_DEFAULT / KL_SRC_WAYS); \
		__type(key, __u32);                      \
		__type(value, struct kl_src_tags);       \
	} name SEC(".maps")

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KL_POL_BLOOM_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kernloom_policy_bloom SEC(".maps");

TAG_MAP(kl_src_tags4);
TAG_MAP(kl_src_tags6);
LPM_MAP(kernloom_allow4_lpm, struct kl_lpm4_key, struct kl_rule, KL_ALLOW_MAX_DEFAULT);
LPM_MAP(kernloom_allow6_lpm, struct kl_lpm6_key, struct kl_rule, KL_ALLOW_MAX_DEFAULT);
HASH_MAP(kernloom_deny4_hash, __u32, struct kl_rule, KL_DENY_MAX_DEFAULT);
HASH_MAP(kernloom_deny6_hash, struct kl_in6, struct kl_rule, KL_DENY_MAX_DEFAULT);
LPM_MAP(kernloom_deny4_lpm, struct kl_lpm4_key, struct kl_rule, KL_DENY_LPM_MAX_DEFAULT);
LPM_MAP(kernloom_deny6_lpm, struct kl_lpm6_key, struct kl_rule, KL_DENY_LPM_MAX_DEFAULT);
HASH_MAP(kernloom_rl_policy4, __u32, struct kl_rl_rule, KL_RL_MAX_DEFAULT);
HASH_MAP(kernloom_rl_policy6, struct kl_in6, struct kl_rl_rule, KL_RL_MAX_DEFAULT);
SLOT_MAP(kernloom_flow4_stats, struct kl_flow_slot, KL_FLOW_SLOTS_DEFAULT);
SLOT_MAP(kernloom_flow6_stats, struct kl_flow_slot, KL_FLOW_SLOTS_DEFAULT);
HASH_MAP(kernloom_edge4_deny, struct kl_edge4_key, struct kl_rule, KL_EDGE_MAX_DEFAULT);
HASH_MAP(kernloom_edge6_deny, struct kl_edge6_key, struct kl_rule, KL_EDGE_MAX_DEFAULT);
HASH_MAP(kernloom_edge4_allow, struct kl_edge4_key, struct kl_rule, KL_EDGE_MAX_DEFAULT);
HASH_MAP(kernloom_edge6_allow, struct kl_edge6_key, struct kl_rule, KL_EDGE_MAX_DEFAULT);
HASH_MAP(kernloom_edge4_rl_policy, struct kl_edge4_key, struct kl_rl_rule, KL_EDGE_MAX_DEFAULT);
HASH_MAP(kernloom_edge6_rl_policy, struct kl_edge6_key, struct kl_rl_rule, KL_EDGE_MAX_DEFAULT);

/* Admission filter (shield.h, KL_ADMIT_SLOTS) and the GCRA state of the
 * aggregate new-source limit. Internal state in .bss: a reload starts them
 * empty, which costs at most one more packet per source. */
__u32 kl_admit[KL_ADMIT_SLOTS];
__u64 kl_new_tat;

#define NSEC_PER_SEC 1000000000ull
#define GCRA_TRIES 16

#define barrier() asm volatile("" ::: "memory")
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* ---- policy ---- */

/* Outcomes index both kl_src_stats.pass.. drop_edge and KL_T_PASS..
 * KL_T_DROP_EDGE, and equal the KL_EV_DROP_* event kinds. */
enum { O_PASS = 0, O_DROP_ALLOW, O_DROP_DENY, O_DROP_RL, O_DROP_EDGE };

static __always_inline __u64 clock_now(struct kl_clock *c)
{
	__u64 j = bpf_jiffies64();

	if (c->jiffies != j) {
		c->ns = bpf_ktime_get_boot_ns();
		c->jiffies = j;
	}
	return c->ns;
}

static __always_inline int live(__u64 expires, __u64 now)
{
	return expires == 0 || now < expires;
}

/* GCRA with a CAS on the theoretical arrival time: a token is taken only by
 * the CPU whose CAS succeeds, so concurrent CPUs can neither pass more than
 * burst + rate*t packets nor consume a token without passing a packet. A CAS
 * fails only when another CPU just passed a packet; after GCRA_TRIES such
 * losses in a row the packet is dropped (no token is consumed). */
/* A throttled flood is mostly dropped far from its bucket's next token:
 * the per-CPU cached clock (`cnow`, at most one jiffy behind, a jiffy being
 * at most KL_JIFFY_MAX_NS) then proves the drop without the exact clock's
 * helper call. Only packets within a jiffy of a token read the exact clock. */
#define KL_JIFFY_MAX_NS 10000000ull /* HZ >= 100 */

static __always_inline int gcra_pass(__u64 *tat, __u64 rate, __u64 burst, __u64 cnow)
{
	__u64 t, limit, now;

	if (rate == 0 || burst == 0)
		return 0;
	if (rate > NSEC_PER_SEC)
		return 1; /* finer than our clock: no limit */
	t = NSEC_PER_SEC / rate;
	if (burst > (1ull << 32))
		burst = 1ull << 32; /* keeps (burst - 1) * t below 2^62 */
	limit = (burst - 1) * t;
	if (READ_ONCE(*tat) > cnow + KL_JIFFY_MAX_NS + limit)
		return 0;
	now = bpf_ktime_get_boot_ns();
	for (int i = 0; i < GCRA_TRIES; i++) {
		__u64 old = READ_ONCE(*tat);
		__u64 t0 = old > now ? old : now;

		if (t0 - now > limit)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, t0 + t) == old)
			return 1;
	}
	return 0;
}

/* Combine the policy-map lookups into the entry's cached verdict. The fields
 * are written first and cache_gen last, with an atomic exchange as the
 * barrier, so a CPU that sees the new generation sees the fields. */
static __always_inline void cache_verdict(struct kl_src_stats *e, struct kl_rule *allow,
					  struct kl_rule *deny, struct kl_rule *dlpm,
					  struct kl_rl_rule *rl, __u32 gen, __u64 now)
{
	__u32 v = KL_V_CACHED;
	__u64 dexp = 0;

	if (allow) {
		v |= KL_V_ALLOWED;
		if (allow->origin == KL_ORIGIN_PROTECTED)
			v |= KL_V_PROTECTED;
	}
	if (deny && live(deny->expires_ns, now)) {
		v |= KL_V_DENIED;
		dexp = deny->expires_ns;
	}
	if (dlpm && live(dlpm->expires_ns, now)) {
		/* The verdict lasts as long as the longer-lived entry. */
		if (!(v & KL_V_DENIED))
			dexp = dlpm->expires_ns;
		else if (dexp != 0 && (dlpm->expires_ns == 0 || dlpm->expires_ns > dexp))
			dexp = dlpm->expires_ns;
		v |= KL_V_DENIED;
	}
	if (rl && live(rl->expires_ns, now)) {
		v |= KL_V_RL;
		e->rl_rate_pps = rl->rate_pps;
		e->rl_burst = rl->burst;
		e->rl_expires_ns = rl->expires_ns;
	}
	e->deny_expires_ns = dexp;
	e->verdict = v;
	__sync_lock_test_and_set(&e->cache_gen, gen);
}

static __always_inline void recompute4(struct kl_src_stats *e, __u32 src, __u32 gen, __u64 now)
{
	struct kl_lpm4_key lk = { .prefixlen = 32, .addr = src };

	cache_verdict(e, bpf_map_lookup_elem(&kernloom_allow4_lpm, &lk),
		      bpf_map_lookup_elem(&kernloom_deny4_hash, &src),
		      bpf_map_lookup_elem(&kernloom_deny4_lpm, &lk),
		      bpf_map_lookup_elem(&kernloom_rl_policy4, &src), gen, now);
}

static __always_inline void recompute6(struct kl_src_stats *e, struct kl_in6 *src, __u32 gen,
				       __u64 now)
{
	struct kl_lpm6_key lk = { .prefixlen = 128 };

	__builtin_memcpy(lk.addr, src->addr, 16);
	cache_verdict(e, bpf_map_lookup_elem(&kernloom_allow6_lpm, &lk),
		      bpf_map_lookup_elem(&kernloom_deny6_hash, src),
		      bpf_map_lookup_elem(&kernloom_deny6_lpm, &lk),
		      bpf_map_lookup_elem(&kernloom_rl_policy6, src), gen, now);
}

/* Source-level decision from the cached verdict. *bypass is set for
 * protected sources, which also skip edge rules. */
static __always_inline int decide(struct kl_src_stats *e, struct kl_cfg *cfg, __u64 now,
				  int *bypass)
{
	__u32 v = e->verdict;
	__u64 rate, burst;

	/* Common case first: no policy for this source, no global rules. */
	if (likely(!(v & (KL_V_PROTECTED | KL_V_ALLOWED | KL_V_DENIED | KL_V_RL)) &&
		   !cfg->allow_enforce && !cfg->rl_burst))
		return O_PASS;
	if (v & KL_V_PROTECTED) {
		*bypass = 1;
		return O_PASS;
	}
	if (v & KL_V_ALLOWED)
		return O_PASS;
	if (cfg->allow_enforce)
		return O_DROP_ALLOW;
	if ((v & KL_V_DENIED) && live(e->deny_expires_ns, now))
		return O_DROP_DENY;
	if ((v & KL_V_RL) && live(e->rl_expires_ns, now)) {
		rate = e->rl_rate_pps;
		burst = e->rl_burst;
	} else if (cfg->rl_burst) {
		rate = cfg->rl_rate_pps;
		burst = cfg->rl_burst;
	} else {
		return O_PASS;
	}
	return gcra_pass(&e->tat_ns, rate, burst, now) ? O_PASS : O_DROP_RL;
}

/* Tuple enforcement; returns O_PASS or O_DROP_EDGE. */
/* Per-edge rate limit of a tuple that passed the edge rules. */
static __always_inline int edge_rl(void *rl_map, void *key, __u64 now, int *has_rl)
{
	struct kl_rl_rule *rl = bpf_map_lookup_elem(rl_map, key);

	*has_rl = rl != NULL;
	if (rl && live(rl->expires_ns, now) &&
	    !gcra_pass(&rl->tat_ns, rl->rate_pps, rl->burst, now))
		return O_DROP_EDGE;
	return O_PASS;
}

/* Tuple enforcement; returns O_PASS or O_DROP_EDGE. On a pass, *exp is the
 * allow rule's expiry (0: none) and *has_rl whether a per-edge RL exists. */
static __always_inline int edge_decide(void *deny_map, void *allow_map, void *rl_map, void *key,
				       __u32 mode, __u64 now, __u64 *exp, int *has_rl)
{
	struct kl_rule *r;

	*exp = 0;
	*has_rl = 0;
	if (mode == KL_EDGE_DENY) {
		r = bpf_map_lookup_elem(deny_map, key);
		if (r && live(r->expires_ns, now))
			return O_DROP_EDGE;
	} else if (mode == KL_EDGE_ALLOW) {
		r = bpf_map_lookup_elem(allow_map, key);
		if (!r || !live(r->expires_ns, now))
			return O_DROP_EDGE;
		*exp = r->expires_ns;
	} else {
		return O_PASS;
	}
	return edge_rl(rl_map, key, now, has_rl);
}

#define EC_UNIT_SHIFT 30
#define EC_MAX_UNITS (1u << 14)

/* The cached flags (KL_EC_PASS set) if the cache holds this tuple's pass,
 * else 0. One 8-byte load, so the fields belong to one fill. */
static __always_inline __u8 ec_hit(struct kl_edge_cache *ec, __u16 port, __u8 proto, __u32 mode,
				   __u32 gen, __u64 now)
{
	__u64 c = READ_ONCE(*(__u64 *)ec);
	struct kl_edge_cache v;

	__builtin_memcpy(&v, &c, sizeof(v));
	if ((v.flags & KL_EC_PASS) && v.port == port && v.proto == proto &&
	    (v.flags >> 2) == mode && v.gen == (__u16)gen &&
	    (__s16)(v.until - (__u16)(now >> EC_UNIT_SHIFT)) > 0)
		return v.flags;
	return 0;
}

/* Caches a pass (one 8-byte store, so a reader never sees half of it). */
static __always_inline void ec_fill(struct kl_edge_cache *ec, __u16 port, __u8 proto, __u32 mode,
				    __u32 gen, __u64 now, __u64 exp, int has_rl)
{
	__u64 u = now >> EC_UNIT_SHIFT, until = u + EC_MAX_UNITS, c;
	struct kl_edge_cache v;

	if (exp && (exp >> EC_UNIT_SHIFT) < until)
		until = exp >> EC_UNIT_SHIFT;
	if (until <= u)
		return;
	v.port = port;
	v.proto = proto;
	v.flags = KL_EC_PASS | (has_rl ? KL_EC_RL : 0) | (__u8)(mode << 2);
	v.gen = (__u16)gen;
	v.until = (__u16)until;
	__builtin_memcpy(&c, &v, sizeof(c));
	WRITE_ONCE(*(__u64 *)ec, c);
}

static __always_inline __u16 fold_port(struct kl_cfg *cfg, struct parsed *p)
{
	__u32 min = cfg->ephemeral_min;

	if (!p->ports)
		return 0;
	if (min && p->dport >= min)
		return KL_PORT_EPHEMERAL;
	return p->dport;
}

/* ---- telemetry ---- */

static __always_inline void emit(struct kl_cfg *cfg, struct kl_totals *tot, struct parsed *p,
				 __u8 kind, __u32 len, __u64 now)
{
	__u32 mask = cfg->sample_mask;
	struct kl_event *ev;

	if (!mask)
		return;
	/* Per-CPU, so a plain increment is exact. */
	if (tot->v[KL_T_EV_CANDIDATES]++ & mask)
		return;
	ev = bpf_ringbuf_reserve(&kernloom_events, sizeof(*ev), 0);
	if (!ev) {
		tot->v[KL_T_EVENTS_LOST]++;
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = now;
	ev->family = p->family;
	if (p->family == 4)
		__builtin_memcpy(ev->addr, &p->src4, 4);
	else if (p->family == 6)
		__builtin_memcpy(ev->addr, p->src6.addr, 16);
	ev->kind = kind;
	ev->proto = p->proto;
	ev->dport = p->dport;
	ev->pkt_len = len;
	bpf_ringbuf_submit(ev, 0);
	tot->v[KL_T_EVENTS]++;
}

/* Fibonacci hashing: consecutive ports land far apart, so a sequential scan
 * does not alias the way `port & mask` would for a strided one. */
#define PORTMAP_BITS_LOG2 9
_Static_assert(KL_PORTMAP_WORDS * 64 == 1 << PORTMAP_BITS_LOG2, "portmap size");

static __always_inline int scan_note(struct kl_src_stats *e, __u16 dport, __u64 now)
{
	__u64 win = now >> KL_PORT_WINDOW_SHIFT;
	__u64 old = READ_ONCE(e->port_window);
	__u32 h, w;
	__u64 bit;

	/* Forward only: each CPU caches its clock, and one a jiffy behind
	 * another near a window boundary would otherwise move the window back
	 * and forth, counting the same port again at every flip. */
	if (win > old && __sync_val_compare_and_swap(&e->port_window, old, win) == old) {
		/* Only the CPU that moved the window clears it. A bit set by
		 * another CPU between the CAS and this clear is lost, which at
		 * most counts that port once more in the new window. */
#pragma unroll
		for (int i = 0; i < KL_PORTMAP_WORDS; i++)
			e->port_bits[i] = 0;
	}
	h = ((__u32)dport * 2654435761u) >> (32 - PORTMAP_BITS_LOG2);
	w = (h >> 6) & (KL_PORTMAP_WORDS - 1);
	bit = 1ull << (h & 63);
	/* Read first: the common case (port already seen) needs no atomic. */
	if (READ_ONCE(e->port_bits[w]) & bit)
		return 0;
	if (__sync_fetch_and_or(&e->port_bits[w], bit) & bit)
		return 0;
	__sync_fetch_and_add(&e->ports_distinct, 1);
	return 1;
}

/* ---- source slots (shield.h, "Source slots") ---- */

/* Whether slot sl is owned by (fam, w0, w1): IPv4 compares its one word.
 * fam is a constant at every call, so each use compiles to one family's
 * comparison. */
static __always_inline int owned_by(struct kl_src_slot *sl, __u32 fam, __u64 w0, __u64 w1)
{
	if (fam == 4)
		return sl->owner4 == (__u32)w0 && sl->family == 4;
	return sl->owner64[0] == w0 && sl->owner64[1] == w1 && sl->family == 6;
}

/* Known source, fast: read the tag word of each bucket and open only the
 * slots whose tag matches (normally exactly the one). */
static __always_inline struct kl_src_slot *tfind(void *map, void *tags, __u32 fam, __u64 w0,
						  __u64 w1, __u32 base[2], __u16 fp)
{
#pragma unroll
	for (int b = 0; b < 2; b++) {
		__u32 bk = base[b] / KL_SRC_WAYS;
		struct kl_src_tags *t = bpf_map_lookup_elem(tags, &bk);
		__u64 x;

		if (!t)
			return NULL;
		__builtin_memcpy(&x, t, sizeof(x));
#pragma unroll
		for (int w = 0; w < KL_SRC_WAYS; w++) {
			__u32 k = base[b] + w;
			struct kl_src_slot *sl;

			if ((__u16)(x >> (16 * w)) != fp)
				continue;
			sl = bpf_map_lookup_elem(map, &k);
			if (sl && owned_by(sl, fam, w0, w1))
				return sl;
		}
	}
	return NULL;
}

/* Writes way j's tag (j: 0..7 over both buckets). */
static __always_inline void set_tag(void *tags, __u32 base[2], __u32 j, __u16 fp)
{
	__u32 bk = base[(j / KL_SRC_WAYS) & 1] / KL_SRC_WAYS;
	struct kl_src_tags *t = bpf_map_lookup_elem(tags, &bk);

	if (t)
		WRITE_ONCE(t->tag[j & (KL_SRC_WAYS - 1)], fp);
}

/* Known source, slow (its tag is missing: a reload emptied the tag lines):
 * compare the owner in each way of its first bucket, then of
 * its second. One lookup site per map and family (see kl_shield) so each is
 * an inlined array access. A slot being reclaimed has family 0 and matches
 * nothing. */
static __always_inline struct kl_src_slot *find(void *map, void *tags, __u32 fam, __u64 w0,
						 __u64 w1, __u32 base[2], __u16 fp)
{
#pragma unroll
	for (int j = 0; j < 2 * KL_SRC_WAYS; j++) {
		__u32 k = base[j / KL_SRC_WAYS] + j % KL_SRC_WAYS;
		struct kl_src_slot *sl = bpf_map_lookup_elem(map, &k);

		if (!sl)
			return NULL;
		if (owned_by(sl, fam, w0, w1)) {
			set_tag(tags, base, j, fp);
			return sl;
		}
	}
	return NULL;
}

static __always_inline int owns(struct kl_src_slot *sl, __u32 fam, __u64 w0, __u64 w1)
{
	__u32 q = READ_ONCE(sl->seq);

	return q && !(q & 1) && READ_ONCE(sl->family) == fam && sl->owner64[0] == w0 &&
	       sl->owner64[1] == w1;
}

/* A published claim's sequence word: even and never 0 (never claimed). */
static __always_inline __u32 seq_next(__u32 q)
{
	return q + 2 ? q + 2 : 2;
}

#define CLAIM_TRIES 3
#define CLAIM_SPIN 256

/* A source that missed claims a slot: a free one of its first bucket, else
 * of its second, else the least recently seen of the eight (that owner is
 * robbed). NULL when every way is being claimed or the compare-and-swap is
 * lost: the caller looks again (the winner may have claimed for this very
 * source), CLAIM_TRIES times, and then judges the packet without an entry.
 * w0/w1: the owner words (IPv4: w0 = address, w1 = 0). */
static __always_inline struct kl_src_slot *claim(void *map, void *tags, __u32 base[2], __u32 fam,
						  __u64 w0, __u64 w1, __u16 fp,
						  struct kl_totals *tot, __u64 now)
{
	struct kl_src_slot *v = NULL, *sl;
	__u64 oldest = ~0ull, ls;
	__u32 vseq = 0, q, nseq, vj = 0;

#pragma unroll
	for (int j = 0; j < 2 * KL_SRC_WAYS; j++) {
		__u32 k = base[j / KL_SRC_WAYS] + j % KL_SRC_WAYS;

		sl = bpf_map_lookup_elem(map, &k);
		if (!sl)
			return NULL;
		q = READ_ONCE(sl->seq);
		if (q & 1)
			continue;
		if (!READ_ONCE(sl->family)) {
			v = sl;
			vseq = q;
			vj = j;
			break;
		}
		ls = READ_ONCE(sl->s.last_seen_ns);
		if (ls < oldest) {
			oldest = ls;
			v = sl;
			vseq = q;
			vj = j;
		}
	}
	if (!v)
		return NULL;
	if (__sync_val_compare_and_swap(&v->seq, vseq, vseq + 1) != vseq) {
		/* Another CPU is claiming this way, most likely for the same
		 * new source: let it publish, then the caller looks again. */
		for (int i = 0; i < CLAIM_SPIN && (READ_ONCE(v->seq) & 1); i++)
			barrier();
		return NULL;
	}
	/* Ours. Unmatchable first, so the robbed owner's packets stop
	 * counting here before the counters are reset. */
	__sync_lock_test_and_set(&v->family, 0);
	__builtin_memset(&v->s, 0, sizeof(v->s));
	__builtin_memset(&v->ec, 0, sizeof(v->ec));
	v->owner64[0] = w0;
	v->owner64[1] = w1;
	v->s.first_seen_ns = now;
	v->s.last_seen_ns = now;
	barrier();
	__sync_lock_test_and_set(&v->family, fam);
	nseq = seq_next(vseq);
	__sync_lock_test_and_set(&v->seq, nseq);
	set_tag(tags, base, vj, fp);
	/* Two CPUs that missed the same new source at once claim two ways.
	 * Each exchange above is a full barrier, so the later of the two sees
	 * the other's slot here and gives its own back (if both see each
	 * other both do, and the next packet claims again). */
#pragma unroll
	for (int j = 0; j < 2 * KL_SRC_WAYS; j++) {
		__u32 k = base[j / KL_SRC_WAYS] + j % KL_SRC_WAYS;

		sl = bpf_map_lookup_elem(map, &k);
		if (!sl || sl == v || !owns(sl, fam, w0, w1))
			continue;
		if (__sync_val_compare_and_swap(&v->seq, nseq, nseq + 1) == nseq) {
			__sync_lock_test_and_set(&v->family, 0);
			__sync_lock_test_and_set(&v->seq, seq_next(nseq));
			set_tag(tags, base, vj, 0);
			set_tag(tags, base, j, fp);
		}
		return sl;
	}
	tot->v[KL_T_SRC_NEW]++;
	return v;
}

static __always_inline void recompute(struct kl_src_stats *e, struct parsed *p, __u32 gen,
				      __u64 now)
{
	if (p->family == 4)
		recompute4(e, p->src4, gen, now);
	else
		recompute6(e, &p->src6, gen, now);
}

static __always_inline void account(struct kl_src_stats *e, struct parsed *p, int o, __u64 len,
				    __u64 now)
{
	__u8 f = p->tcp_flags;

	__sync_fetch_and_add(&e->pkts, 1);
	__sync_fetch_and_add(&e->bytes, len);
	/* parse() sets tcp_flags only for TCP with a full header, so one test
	 * keeps the common ACK/data packet off the flag counters. */
	if (unlikely(f & (TCP_SYN | TCP_RST))) {
		if ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			__sync_fetch_and_add(&e->syn, 1);
		else if ((f & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
			__sync_fetch_and_add(&e->synack, 1);
		if (f & TCP_RST)
			__sync_fetch_and_add(&e->rst, 1);
	}
	if (likely(o == O_PASS)) {
		__sync_fetch_and_add(&e->pass, 1);
	} else {
		switch (o) {
		case O_DROP_ALLOW: __sync_fetch_and_add(&e->drop_allow, 1); break;
		case O_DROP_DENY: __sync_fetch_and_add(&e->drop_deny, 1); break;
		case O_DROP_RL: __sync_fetch_and_add(&e->drop_rl, 1); break;
		default: __sync_fetch_and_add(&e->drop_edge, 1); break;
		}
	}
	/* Written only when the cached clock moved: most packets leave it. */
	if (e->last_seen_ns != now)
		e->last_seen_ns = now;
}

/* The packet's verdict from its source's cached verdict (e: the slot's
 * stats, or a stack template for a source without one), then the tuple
 * rules; ec: the slot's edge cache, NULL without a slot. */
static __always_inline int judge(struct kl_src_stats *e, struct kl_edge_cache *ec,
				 struct kl_cfg *cfg, struct parsed *p, __u32 gen, __u64 now)
{
	int bypass = 0, o, has_rl;
	__u32 mode = cfg->edge_mode;
	__u8 hit;
	__u64 exp;

	o = decide(e, cfg, now, &bypass);
	if (kl_feat_edge && o == O_PASS && !bypass && p->l4 && mode != KL_EDGE_OFF) {
		__u16 port = fold_port(cfg, p);

		if (p->family == 4) {
			struct kl_edge4_key k = { .src = p->src4, .port = port, .proto = p->proto };

			hit = ec ? ec_hit(ec, port, p->proto, mode, gen, now) : 0;
			if (hit)
				return (hit & KL_EC_RL) ?
					       edge_rl(&kernloom_edge4_rl_policy, &k, now, &has_rl) :
					       O_PASS;
			o = edge_decide(&kernloom_edge4_deny, &kernloom_edge4_allow,
					&kernloom_edge4_rl_policy, &k, mode, now, &exp, &has_rl);
		} else {
			struct kl_edge6_key k = { .port = port, .proto = p->proto };

			__builtin_memcpy(k.src, p->src6.addr, 16);
			hit = ec ? ec_hit(ec, port, p->proto, mode, gen, now) : 0;
			if (hit)
				return (hit & KL_EC_RL) ?
					       edge_rl(&kernloom_edge6_rl_policy, &k, now, &has_rl) :
					       O_PASS;
			o = edge_decide(&kernloom_edge6_deny, &kernloom_edge6_allow,
					&kernloom_edge6_rl_policy, &k, mode, now, &exp, &has_rl);
		}
		/* A pass (RL drops included: the rule exists either way). */
		if (ec && (o == O_PASS || has_rl))
			ec_fill(ec, port, p->proto, mode, gen, now, exp, has_rl);
	}
	return o;
}

/* ---- flow slots (shield.h, "Flow slots") ---- */

/* Whether flow slot f holds (tuple, source): tuple carries the family, so
 * a free slot or one being claimed (tuple 0) matches nothing. */
/* fam 6's comparison holds for IPv4 slots too (w1 and the address's upper
 * half are 0), so code that does not know the family passes 6. */
static __always_inline int flow_owned(struct kl_flow_slot *f, const __u32 fam, __u32 tuple,
				      __u64 w0, __u64 w1)
{
	if (READ_ONCE(f->tuple) != tuple)
		return 0;
	if (fam == 4)
		return f->src4 == (__u32)w0;
	return f->src64[0] == w0 && f->src64[1] == w1;
}

static __always_inline void flow_add(struct kl_flow_slot *f, __u64 len, __u64 now)
{
	__sync_fetch_and_add(&f->s.pkts, 1);
	__sync_fetch_and_add(&f->s.bytes, len);
	if (f->s.last_seen_ns != now)
		f->s.last_seen_ns = now;
}

/* A flow that missed claims a way of its bucket, as a source claims
 * (claim() above: compare-and-swap on seq, unmatchable while reset, a
 * duplicate of a concurrent claim given back): a free way, else the one
 * seen least recently. Returns the index of the flow's slot, or -1 when
 * every way is being claimed or the race was lost to a claim for another
 * flow (this packet's flow then goes unrecorded; its source's counters
 * still have it).
 *
 * A global function, verified once on its own: inlined at the four
 * places that record a flow, its branches multiplied the verifier's
 * states past the limit. Only a flow's first packet pays the call. */
__noinline int kl_flow_claim(__u32 tuple, __u32 base, __u64 w0, __u64 w1, __u64 now)
{
	struct kl_flow_slot t = { .tuple = tuple }, *v = NULL, *f;
	void *map = t.family == 4 ? (void *)&kernloom_flow4_stats : (void *)&kernloom_flow6_stats;
	__u64 oldest = ~0ull, ls;
	__u32 vseq = 0, vk = 0, q, nseq;

	for (__u32 w = 0; w < KL_FLOW_WAYS; w++) {
		__u32 k = base + w;

		f = bpf_map_lookup_elem(map, &k);
		if (!f)
			return -1;
		q = READ_ONCE(f->seq);
		if (q & 1)
			continue;
		if (flow_owned(f, 6, tuple, w0, w1))
			return (int)k; /* claimed meanwhile */
		ls = READ_ONCE(f->family) ? READ_ONCE(f->s.last_seen_ns) : 0;
		if (!v || ls < oldest) {
			oldest = ls;
			v = f;
			vseq = q;
			vk = k;
		}
	}
	if (!v)
		return -1;
	if (__sync_val_compare_and_swap(&v->seq, vseq, vseq + 1) != vseq) {
		/* Most likely another CPU claiming it for this very flow. */
		for (int i = 0; i < CLAIM_SPIN && (READ_ONCE(v->seq) & 1); i++)
			barrier();
		return flow_owned(v, 6, tuple, w0, w1) ? (int)vk : -1;
	}
	__sync_lock_test_and_set(&v->tuple, 0);
	__builtin_memset(&v->s, 0, sizeof(v->s));
	v->src64[0] = w0;
	v->src64[1] = w1;
	v->s.first_seen_ns = now;
	v->s.last_seen_ns = now;
	barrier();
	__sync_lock_test_and_set(&v->tuple, tuple);
	nseq = seq_next(vseq);
	__sync_lock_test_and_set(&v->seq, nseq);
	for (__u32 w = 0; w < KL_FLOW_WAYS; w++) {
		__u32 k = base + w;

		f = bpf_map_lookup_elem(map, &k);
		if (!f || f == v || (READ_ONCE(f->seq) & 1) || !flow_owned(f, 6, tuple, w0, w1))
			continue;
		if (__sync_val_compare_and_swap(&v->seq, nseq, nseq + 1) == nseq) {
			__sync_lock_test_and_set(&v->tuple, 0);
			__sync_lock_test_and_set(&v->seq, seq_next(nseq));
		}
		return (int)k;
	}
	return (int)vk;
}

/* Records a packet in its flow's slot: a known flow is found by comparing
 * the key in the ways of its bucket (inlined array reads, normally the
 * first way), a new one claims. */
static __always_inline void flow_note(void *map, const __u32 fam, __u32 base, __u32 tuple,
				      __u64 w0, __u64 w1, __u64 len, __u64 now)
{
	struct kl_flow_slot *f;
	__u32 k;
	int c;

#pragma unroll
	for (int w = 0; w < KL_FLOW_WAYS; w++) {
		k = base + w;
		f = bpf_map_lookup_elem(map, &k);
		if (!f)
			return;
		if (flow_owned(f, fam, tuple, w0, w1)) {
			flow_add(f, len, now);
			return;
		}
	}
	c = kl_flow_claim(tuple, base, w0, w1, now);
	if (c < 0)
		return;
	k = (__u32)c;
	f = bpf_map_lookup_elem(map, &k);
	if (f)
		flow_add(f, len, now);
}

/* Has this source recorded the flow of this tuple last (shield.h,
 * struct kl_edge_cache)? */
static __always_inline int flow_memo_hit(struct kl_edge_cache *ec, __u16 port, __u8 proto)
{
	__u64 c = READ_ONCE(*(__u64 *)ec);
	struct kl_edge_cache v;

	__builtin_memcpy(&v, &c, sizeof(v));
	return (v.flags & (KL_EC_PASS | KL_EC_FLOW)) && v.port == port && v.proto == proto;
}

/* Remembers the tuple whose flow a throttled packet just recorded. Under
 * edge enforcement this may evict the word's edge verdict: the source's
 * next passing packet (one per token) looks the edge up again. */
static __always_inline void flow_memo_set(struct kl_edge_cache *ec, __u16 port, __u8 proto)
{
	struct kl_edge_cache v = { .port = port, .proto = proto, .flags = KL_EC_FLOW };
	__u64 c;

	__builtin_memcpy(&c, &v, sizeof(c));
	WRITE_ONCE(*(__u64 *)ec, c);
}

/* Everything after the source telemetry: the drop event, flow telemetry and
 * the XDP action. ec: the slot's edge cache word, NULL without a slot.
 * Every packet records its flow (dropped ones too: graphd must see unknown
 * edges), except a throttled source's drop on the tuple whose flow it last
 * recorded while throttled, or last passed under edge enforcement: that
 * edge is known already, the drop is counted in the source's drop_rl, and
 * a throttled flood costs no flow-table lookup. */
static __always_inline int finish(struct kl_cfg *cfg, struct kl_totals *tot, struct parsed *p,
				  struct kl_edge_cache *ec, int o, __u64 len, __u64 now)
{
	if (unlikely(o != O_PASS))
		emit(cfg, tot, p, o, len, now);
	if (kl_feat_flow && p->l4) {
		__u16 port = fold_port(cfg, p);
		int memo = o == O_DROP_RL && ec;

		if (memo && flow_memo_hit(ec, port, p->proto))
			return XDP_DROP;
		if (p->family == 4) {
			__u32 t = kl_flow_tuple(4, p->proto, port);

			flow_note(&kernloom_flow4_stats, 4, kl_flow_bucket(p->src_hash, t, kl_flow_mask),
				  t, p->src4, 0, len, now);
		} else {
			__u32 t = kl_flow_tuple(6, p->proto, port);
			__u64 w0, w1;

			__builtin_memcpy(&w0, p->src6.addr, 8);
			__builtin_memcpy(&w1, p->src6.addr + 8, 8);
			flow_note(&kernloom_flow6_stats, 6, kl_flow_bucket(p->src_hash, t, kl_flow_mask),
				  t, w0, w1, len, now);
		}
		if (memo)
			flow_memo_set(ec, port, p->proto);
	}
	return o == O_PASS ? XDP_PASS : XDP_DROP;
}

/* ---- new sources (admission filter, aggregate limit) ---- */

/* Second sighting of this source's fingerprint? Records it otherwise. Index
 * and fingerprint come from the bucket hash (keyed), so an outsider cannot
 * aim at an entry either. */
static __always_inline int admitted(__u64 h)
{
	__u32 i = (__u32)(h >> 48) & (KL_ADMIT_SLOTS - 1);
	__u32 fp = (__u32)h | 1;

	if (READ_ONCE(kl_admit[i]) == fp)
		return 1;
	kl_admit[i] = fp;
	return 0;
}

/* May an exact-source entry exist for this source (policy summary)? */
static __always_inline int pol_maybe(__u64 h)
{
	__u32 bit = kl_pol_bit(h), wi = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(&kernloom_policy_bloom, &wi);

	return !w || (READ_ONCE(*w) & (1ull << (bit & 63)));
}

/* Is the aggregate new-source limit on? */
static __always_inline int new_limit_on(struct kl_cfg *cfg, __u64 now)
{
	return READ_ONCE(cfg->new_burst) && live(cfg->new_expires_ns, now);
}

/* Verdict for a packet of a source that holds no slot: policy as for any
 * source (deny and allow-enforce apply; protected and allowlisted sources
 * are exempt from the aggregate limit), then the aggregate new-source
 * limit, then edge rules. The exact-source hashes are read only when the
 * policy summary says they may hold this source. *limited: dropped by the
 * aggregate limit. */
static __always_inline int slotless(struct kl_cfg *cfg, struct parsed *p, __u32 gen, __u64 now,
				    __u64 h, int *limited)
{
	struct kl_src_stats ns;
	int o, exact = pol_maybe(h);

	__builtin_memset(&ns, 0, sizeof(ns));
	if (p->family == 4) {
		struct kl_lpm4_key lk = { .prefixlen = 32, .addr = p->src4 };

		cache_verdict(&ns, bpf_map_lookup_elem(&kernloom_allow4_lpm, &lk),
			      exact ? bpf_map_lookup_elem(&kernloom_deny4_hash, &p->src4) : NULL,
			      bpf_map_lookup_elem(&kernloom_deny4_lpm, &lk),
			      exact ? bpf_map_lookup_elem(&kernloom_rl_policy4, &p->src4) : NULL,
			      gen, now);
	} else {
		struct kl_lpm6_key lk = { .prefixlen = 128 };

		__builtin_memcpy(lk.addr, p->src6.addr, 16);
		cache_verdict(&ns, bpf_map_lookup_elem(&kernloom_allow6_lpm, &lk),
			      exact ? bpf_map_lookup_elem(&kernloom_deny6_hash, &p->src6) : NULL,
			      bpf_map_lookup_elem(&kernloom_deny6_lpm, &lk),
			      exact ? bpf_map_lookup_elem(&kernloom_rl_policy6, &p->src6) : NULL,
			      gen, now);
	}
	if (new_limit_on(cfg, now) &&
	    !(ns.verdict & (KL_V_PROTECTED | KL_V_ALLOWED | KL_V_DENIED)) && !cfg->allow_enforce &&
	    !gcra_pass(&kl_new_tat, cfg->new_rate_pps, cfg->new_burst, now)) {
		*limited = 1;
		return O_DROP_RL;
	}
	if (kl_feat_edge && !exact && cfg->edge_mode != KL_EDGE_OFF && p->l4) {
		/* No edge rule names this source: allow mode drops, deny mode
		 * passes, once the source-level verdict passes. */
		int bypass = 0;

		o = decide(&ns, cfg, now, &bypass);
		if (o == O_PASS && !bypass && cfg->edge_mode == KL_EDGE_ALLOW)
			o = O_DROP_EDGE;
		return o;
	}
	return judge(&ns, NULL, cfg, p, gen, now);
}

/* A packet of a source not admitted, or refused admission by the aggregate
 * limit: counted in aggregate only. No slot, so no per-source telemetry and
 * no flow telemetry (a spoofed flood would only flush the flow table). */
static __always_inline int unadmitted(struct kl_cfg *cfg, struct kl_totals *tot,
				      struct parsed *p, int o, int limited, __u64 len, __u64 now)
{
	tot->v[KL_T_SRC_UNADMITTED]++;
	if (limited)
		tot->v[KL_T_DROP_NEWSRC]++;
	tot->v[KL_T_PASS + (o & 7)]++;
	if (unlikely(o != O_PASS))
		emit(cfg, tot, p, o, len, now);
	return o == O_PASS ? XDP_PASS : XDP_DROP;
}

/* The slot of a known source, or of an admitted new source that claims one
 * (CLAIM_TRIES times; NULL when every try lost). A packet of a source not
 * admitted, or refused admission by the aggregate limit, is judged and
 * counted here without a slot: *act is then its XDP action (else -1).
 * fam is a constant at each call site, so every map below is too.
 * w0/w1: the owner words (IPv4: w0 = address, w1 = 0). */
static __always_inline struct kl_src_slot *source_slot(const __u32 fam, struct kl_cfg *cfg,
							struct kl_totals *tot, struct parsed *p,
							__u64 w0, __u64 w1, __u32 gen, __u64 now,
							__u64 len, int *act)
{
	struct kl_src_slot *sl;
	__u32 base[2];
	int o, lim = 0;
	__u64 h;
	__u16 fp;

	h = fam == 4 ? kl_src_hash4((__u32)w0, cfg->src_seed) : kl_src_hash6w(w0, w1, cfg->src_seed);
	p->src_hash = h;
	fp = kl_src_tag(h);
	kl_src_bases(h, fam == 4 ? kl_src4_mask : kl_src6_mask, base);
	sl = fam == 4 ? tfind(&kernloom_src4_stats, &kl_src_tags4, 4, w0, 0, base, fp)
		      : tfind(&kernloom_src6_stats, &kl_src_tags6, 6, w0, w1, base, fp);
	if (likely(sl))
		return sl;
	if (!cfg->admit_off && !admitted(h)) {
		o = slotless(cfg, p, gen, now, h, &lim);
		*act = unadmitted(cfg, tot, p, o, lim, len, now);
		return NULL;
	}
	/* Admission is refused too while the aggregate limit drops: it
	 * bounds the claims a flood can make. */
	if (new_limit_on(cfg, now)) {
		o = slotless(cfg, p, gen, now, h, &lim);
		if (lim) {
			*act = unadmitted(cfg, tot, p, o, lim, len, now);
			return NULL;
		}
	}
	for (int t = 0; t < CLAIM_TRIES; t++) {
		sl = fam == 4 ? find(&kernloom_src4_stats, &kl_src_tags4, 4, w0, 0, base, fp)
			      : find(&kernloom_src6_stats, &kl_src_tags6, 6, w0, w1, base, fp);
		if (sl)
			return sl;
		sl = fam == 4 ? claim(&kernloom_src4_stats, &kl_src_tags4, base, 4, w0, 0, fp, tot,
				      now) :
				claim(&kernloom_src6_stats, &kl_src_tags6, base, 6, w0, w1, fp, tot,
				      now);
		if (sl)
			return sl;
	}
	return NULL;
}

SEC("xdp")
int kl_shield(struct xdp_md *ctx)
{
	struct kl_src_stats ns; /* verdict holder without an entry */
	struct parsed p = {};
	struct kl_src_stats *e;
	struct kl_src_slot *sl;
	__u64 w0, w1;
	struct kl_totals *tot;
	struct kl_clock *clk;
	struct kl_cfg *cfg;
	__u32 zero = 0, gen;
	__u64 len, now;
	int o, r, act = -1;

	tot = bpf_map_lookup_elem(&kernloom_totals, &zero);
	cfg = bpf_map_lookup_elem(&kernloom_cfg, &zero);
	clk = bpf_map_lookup_elem(&kl_clock_cache, &zero);
	if (unlikely(!tot || !cfg || !clk))
		return XDP_PASS;
	len = ctx->data_end - ctx->data;
	r = parse(ctx, &p);
	if (unlikely(r != P_OK)) {
		if (r == P_NON_IP) {
			tot->v[KL_T_NON_IP]++;
		} else {
			tot->v[KL_T_MALFORMED]++;
			now = clock_now(clk);
			emit(cfg, tot, &p, KL_EV_MALFORMED, len, now);
		}
		return XDP_PASS;
	}
	now = clock_now(clk);
	/* Read the generation before any policy map (see the contract). */
	gen = READ_ONCE(cfg->policy_gen);
	tot->v[KL_T_PKTS]++;
	tot->v[KL_T_BYTES] += len;
	if (unlikely(p.frag))
		tot->v[KL_T_FRAGMENTS]++;

	/* One lookup site per map: the verifier inlines a hash lookup only
	 * where the map is known, and if clang merged the two into one call
	 * with a map chosen at run time, every packet would take the generic
	 * helper (an indirect call, 20% slower here). source_slot() is inlined
	 * once per family with a constant family, so each keeps its own sites. */
	if (p.family == 4) {
		tot->v[KL_T_IPV4]++;
		sl = source_slot(4, cfg, tot, &p, p.src4, 0, gen, now, len, &act);
	} else {
		tot->v[KL_T_IPV6]++;
		__builtin_memcpy(&w0, p.src6.addr, 8);
		__builtin_memcpy(&w1, p.src6.addr + 8, 8);
		sl = source_slot(6, cfg, tot, &p, w0, w1, gen, now, len, &act);
	}
	if (act >= 0)
		return act;
	if (unlikely(!sl)) {
		/* No entry: policy still applies, computed into the template,
		 * and this packet's source telemetry is lost. Kept apart from
		 * the main path so that one only ever sees a map entry. */
		__builtin_memset(&ns, 0, sizeof(ns));
		recompute(&ns, &p, gen, now);
		o = judge(&ns, NULL, cfg, &p, gen, now);
		tot->v[KL_T_PASS + (o & 7)]++;
		return finish(cfg, tot, &p, NULL, o, len, now);
	}
	e = &sl->s;
	if (unlikely(READ_ONCE(e->cache_gen) != gen || !(READ_ONCE(e->verdict) & KL_V_CACHED)))
		recompute(e, &p, gen, now);
	barrier();
	o = judge(e, &sl->ec, cfg, &p, gen, now);
	tot->v[KL_T_PASS + (o & 7)]++;
	account(e, &p, o, len, now);
	if (p.ports && scan_note(e, p.dport, now))
		emit(cfg, tot, &p, KL_EV_SCAN_HINT, len, now);
	return finish(cfg, tot, &p, &sl->ec, o, len, now);
}
