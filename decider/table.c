/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/table.h"

#include "common/hash.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Grow when the load would pass 3/4: linear probing stays short (about 2.5
 * probes for a hit, 8.5 for a miss at the limit). */
#define LOAD_NUM 3
#define LOAD_DEN 4

uint64_t dec_addr_hash(const struct kl_addr *a, uint64_t seed)
{
	uint64_t lo, hi;

	memcpy(&lo, a->addr, 8);
	memcpy(&hi, a->addr + 8, 8);
	/* Keyed by a per-process seed so that an attacker choosing source
	 * addresses cannot aim them at one probe chain. */
	return kl_mix64(lo ^ seed) ^ kl_mix64(hi + (seed >> 7) + ((uint64_t)a->family << 56) +
				       0x9e3779b97f4a7c15ull);
}

bool dec_addr_key(const struct kl_addr *a, struct kl_addr *key)
{
	memset(key, 0, sizeof(*key));
	if (a->family == 4 && a->prefixlen == 32) {
		key->family = 4;
		key->prefixlen = 32;
		memcpy(key->addr, a->addr, 4);
		return true;
	}
	if (a->family == 6 && a->prefixlen == 128) {
		*key = *a;
		return true;
	}
	return false;
}

/* Large tables come straight from mmap with transparent huge pages asked
 * for: at a million sources every lookup is a cache miss, and with 4 KiB
 * pages a TLB miss on top. Small ones use calloc. Either way: zeroed. */
#define BIG_TABLE (2u << 20)

static struct dec_src *slots_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(struct dec_src);

	if (bytes < BIG_TABLE)
		return calloc(cap, sizeof(struct dec_src));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void slots_free(struct dec_src *s, size_t cap)
{
	size_t bytes = cap * sizeof(struct dec_src);

	if (s == NULL)
		return;
	if (bytes < BIG_TABLE)
		free(s);
	else
		munmap(s, bytes);
}

int dec_srctab_init(struct dec_srctab *t, size_t cap_hint, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->seed = seed;
	t->cap = kl_pow2_at_least(cap_hint, 16);
	t->slots = slots_alloc(t->cap);
	if (t->slots == NULL) {
		t->cap = 0;
		return -1;
	}
	return 0;
}

void dec_srctab_free(struct dec_srctab *t)
{
	slots_free(t->slots, t->cap);
	memset(t, 0, sizeof(*t));
}

struct dec_src *dec_srctab_find(const struct dec_srctab *t, const struct kl_addr *key)
{
	return dec_srctab_find_h(t, key, dec_addr_hash(key, t->seed));
}

/* A probe over src slots: for a key, or (key NULL) for an empty slot. */
struct src_probe {
	struct dec_src *slots;
	const struct kl_addr *key;
};

static inline bool src_stop(const void *ctx, size_t i)
{
	const struct src_probe *p = ctx;
	const struct dec_src *s = &p->slots[i];

	return s->key.family == 0 || (p->key != NULL && dec_addr_eq(&s->key, p->key));
}

struct dec_src *dec_srctab_find_h(const struct dec_srctab *t, const struct kl_addr *key,
				uint64_t h)
{
	struct src_probe p = { t->slots, key };
	struct dec_src *s;

	if (t->cap == 0)
		return NULL;
	s = &t->slots[kl_probe(h, t->cap - 1, src_stop, &p)];
	return s->key.family != 0 ? s : NULL;
}

/* Place s (known absent) into slots of size cap. */
static struct dec_src *place(struct dec_src *slots, size_t cap, uint64_t seed,
			    const struct dec_src *s)
{
	struct src_probe p = { slots, NULL };
	size_t i = kl_probe(dec_addr_hash(&s->key, seed), cap - 1, src_stop, &p);

	slots[i] = *s;
	return &slots[i];
}

static int grow(struct dec_srctab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 16;
	struct dec_src *ns = slots_alloc(ncap);

	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].key.family != 0)
			place(ns, ncap, t->seed, &t->slots[i]);
	}
	slots_free(t->slots, t->cap);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

struct dec_src *dec_srctab_insert(struct dec_srctab *t, const struct kl_addr *key,
				bool *created)
{
	return dec_srctab_insert_h(t, key, dec_addr_hash(key, t->seed), created);
}

struct dec_src *dec_srctab_insert_h(struct dec_srctab *t, const struct kl_addr *key, uint64_t h,
				  bool *created)
{
	struct dec_src *s = dec_srctab_find_h(t, key, h);
	struct dec_src fresh;

	*created = false;
	if (s != NULL)
		return s;
	if ((t->n + 1) * LOAD_DEN > t->cap * LOAD_NUM && grow(t) < 0)
		return NULL;
	dec_src_init(&fresh, key);
	s = place(t->slots, t->cap, t->seed, &fresh);
	t->n++;
	*created = true;
	return s;
}

static bool src_empty(const void *ctx, size_t i)
{
	const struct dec_srctab *t = ctx;

	return t->slots[i].key.family == 0;
}

static size_t src_home(const void *ctx, size_t i)
{
	const struct dec_srctab *t = ctx;

	return (size_t)dec_addr_hash(&t->slots[i].key, t->seed) & (t->cap - 1);
}

static void src_move(void *ctx, size_t to, size_t from)
{
	struct dec_srctab *t = ctx;

	t->slots[to] = t->slots[from];
}

static void src_clear(void *ctx, size_t i)
{
	struct dec_srctab *t = ctx;

	memset(&t->slots[i], 0, sizeof(t->slots[i]));
}

static const struct kl_probe_ops src_ops = { src_empty, src_home, src_move, src_clear };

void dec_srctab_del_at(struct dec_srctab *t, size_t i)
{
	kl_probe_delete(i, t->cap - 1, &src_ops, t);
	t->n--;
}

bool dec_srctab_del(struct dec_srctab *t, const struct kl_addr *key)
{
	struct dec_src *s = dec_srctab_find(t, key);

	if (s == NULL)
		return false;
	dec_srctab_del_at(t, (size_t)(s - t->slots));
	return true;
}

/* ---- keyset ---- */

void dec_keyset_init(struct dec_keyset *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed ^ 0x5bd1e9955bd1e995ull;
}

void dec_keyset_free(struct dec_keyset *s)
{
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

void dec_keyset_clear(struct dec_keyset *s)
{
	if (s->cap > 1024 && s->n * 16 < s->cap) {
		/* A burst once made this large; do not pay to clear it forever. */
		free(s->slots);
		s->slots = NULL;
		s->cap = 0;
	} else if (s->n > 0) {
		memset(s->slots, 0, s->cap * sizeof(*s->slots));
	}
	s->n = 0;
}

/* A probe over key slots: for a key, or (key NULL) for an empty slot. */
struct key_probe {
	struct dec_keyslot *slots;
	const struct kl_addr *key;
};

static inline bool key_stop(const void *ctx, size_t i)
{
	const struct key_probe *p = ctx;
	const struct dec_keyslot *k = &p->slots[i];

	return k->key.family == 0 || (p->key != NULL && dec_addr_eq(&k->key, p->key));
}

struct dec_keyslot *dec_keyset_find(const struct dec_keyset *s, const struct kl_addr *key)
{
	struct key_probe p = { s->slots, key };
	struct dec_keyslot *k;

	if (s->n == 0)
		return NULL;
	k = &s->slots[kl_probe(dec_addr_hash(key, s->seed), s->cap - 1, key_stop, &p)];
	return k->key.family != 0 ? k : NULL;
}

static struct dec_keyslot *keyset_place(struct dec_keyslot *slots, size_t cap,
				       uint64_t seed, const struct dec_keyslot *k)
{
	struct key_probe p = { slots, NULL };
	size_t i = kl_probe(dec_addr_hash(&k->key, seed), cap - 1, key_stop, &p);

	slots[i] = *k;
	return &slots[i];
}

struct dec_keyslot *dec_keyset_add(struct dec_keyset *s, const struct kl_addr *key)
{
	struct dec_keyslot *k = dec_keyset_find(s, key);
	struct dec_keyslot fresh;

	if (k != NULL)
		return k;
	if ((s->n + 1) * LOAD_DEN > s->cap * LOAD_NUM) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dec_keyslot *ns = calloc(ncap, sizeof(*ns));
		if (ns == NULL)
			return NULL;
		for (size_t i = 0; i < s->cap; i++) {
			if (s->slots[i].key.family != 0)
				keyset_place(ns, ncap, s->seed, &s->slots[i]);
		}
		free(s->slots);
		s->slots = ns;
		s->cap = ncap;
	}
	memset(&fresh, 0, sizeof(fresh));
	fresh.key = *key;
	s->n++;
	return keyset_place(s->slots, s->cap, s->seed, &fresh);
}
