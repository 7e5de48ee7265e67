/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Grow when the load would pass 3/4: linear probing stays short (about 2.5
 * probes for a hit, 8.5 for a miss at the limit). */
#define LOAD_NUM 3
#define LOAD_DEN 4

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

uint64_t kl_addr_hash(const struct kl_addr *a, uint64_t seed)
{
	uint64_t lo, hi;

	memcpy(&lo, a->addr, 8);
	memcpy(&hi, a->addr + 8, 8);
	/* Keyed by a per-process seed so that an attacker choosing source
	 * addresses cannot aim them at one probe chain. */
	return mix64(lo ^ seed) ^ mix64(hi + (seed >> 7) + ((uint64_t)a->family << 56) +
				       0x9e3779b97f4a7c15ull);
}

bool kl_addr_key(const struct kl_addr *a, struct kl_addr *key)
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

static struct kl_src *slots_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(struct kl_src);

	if (bytes < BIG_TABLE)
		return calloc(cap, sizeof(struct kl_src));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void slots_free(struct kl_src *s, size_t cap)
{
	size_t bytes = cap * sizeof(struct kl_src);

	if (s == NULL)
		return;
	if (bytes < BIG_TABLE)
		free(s);
	else
		munmap(s, bytes);
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 16;

	while (c < n)
		c <<= 1;
	return c;
}

int kl_srctab_init(struct kl_srctab *t, size_t cap_hint, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->seed = seed;
	t->cap = pow2_at_least(cap_hint);
	t->slots = slots_alloc(t->cap);
	if (t->slots == NULL) {
		t->cap = 0;
		return -1;
	}
	return 0;
}

void kl_srctab_free(struct kl_srctab *t)
{
	slots_free(t->slots, t->cap);
	memset(t, 0, sizeof(*t));
}

struct kl_src *kl_srctab_find(const struct kl_srctab *t, const struct kl_addr *key)
{
	return kl_srctab_find_h(t, key, kl_addr_hash(key, t->seed));
}

struct kl_src *kl_srctab_find_h(const struct kl_srctab *t, const struct kl_addr *key,
				uint64_t h)
{
	size_t mask = t->cap - 1;
	size_t i;

	if (t->cap == 0)
		return NULL;
	i = (size_t)h & mask;
	for (;;) {
		struct kl_src *s = &t->slots[i];
		if (s->key.family == 0)
			return NULL;
		if (kl_addr_eq(&s->key, key))
			return s;
		i = (i + 1) & mask;
	}
}

/* Place s (known absent) into slots of size cap. */
static struct kl_src *place(struct kl_src *slots, size_t cap, uint64_t seed,
			    const struct kl_src *s)
{
	size_t mask = cap - 1;
	size_t i = (size_t)kl_addr_hash(&s->key, seed) & mask;

	while (slots[i].key.family != 0)
		i = (i + 1) & mask;
	slots[i] = *s;
	return &slots[i];
}

static int grow(struct kl_srctab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 16;
	struct kl_src *ns = slots_alloc(ncap);

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

struct kl_src *kl_srctab_insert(struct kl_srctab *t, const struct kl_addr *key,
				bool *created)
{
	return kl_srctab_insert_h(t, key, kl_addr_hash(key, t->seed), created);
}

struct kl_src *kl_srctab_insert_h(struct kl_srctab *t, const struct kl_addr *key, uint64_t h,
				  bool *created)
{
	struct kl_src *s = kl_srctab_find_h(t, key, h);
	struct kl_src fresh;

	*created = false;
	if (s != NULL)
		return s;
	if ((t->n + 1) * LOAD_DEN > t->cap * LOAD_NUM && grow(t) < 0)
		return NULL;
	kl_src_init(&fresh, key);
	s = place(t->slots, t->cap, t->seed, &fresh);
	t->n++;
	*created = true;
	return s;
}

/* True when home slot h lies cyclically in (i, j]: the entry at j may not
 * move back to i without leaving its probe chain. */
static inline bool home_between(size_t i, size_t h, size_t j)
{
	if (i <= j)
		return i < h && h <= j;
	return i < h || h <= j;
}

void kl_srctab_del_at(struct kl_srctab *t, size_t i)
{
	size_t mask = t->cap - 1;
	size_t j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (t->slots[j].key.family == 0)
			break;
		size_t h = (size_t)kl_addr_hash(&t->slots[j].key, t->seed) & mask;
		if (home_between(i, h, j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->n--;
}

bool kl_srctab_del(struct kl_srctab *t, const struct kl_addr *key)
{
	struct kl_src *s = kl_srctab_find(t, key);

	if (s == NULL)
		return false;
	kl_srctab_del_at(t, (size_t)(s - t->slots));
	return true;
}

/* ---- keyset ---- */

void kl_keyset_init(struct kl_keyset *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed ^ 0x5bd1e9955bd1e995ull;
}

void kl_keyset_free(struct kl_keyset *s)
{
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

void kl_keyset_clear(struct kl_keyset *s)
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

struct kl_keyslot *kl_keyset_find(const struct kl_keyset *s, const struct kl_addr *key)
{
	size_t mask = s->cap - 1;
	size_t i;

	if (s->n == 0)
		return NULL;
	i = (size_t)kl_addr_hash(key, s->seed) & mask;
	for (;;) {
		struct kl_keyslot *k = &s->slots[i];
		if (k->key.family == 0)
			return NULL;
		if (kl_addr_eq(&k->key, key))
			return k;
		i = (i + 1) & mask;
	}
}

static struct kl_keyslot *keyset_place(struct kl_keyslot *slots, size_t cap,
				       uint64_t seed, const struct kl_keyslot *k)
{
	size_t mask = cap - 1;
	size_t i = (size_t)kl_addr_hash(&k->key, seed) & mask;

	while (slots[i].key.family != 0)
		i = (i + 1) & mask;
	slots[i] = *k;
	return &slots[i];
}

struct kl_keyslot *kl_keyset_add(struct kl_keyset *s, const struct kl_addr *key)
{
	struct kl_keyslot *k = kl_keyset_find(s, key);
	struct kl_keyslot fresh;

	if (k != NULL)
		return k;
	if ((s->n + 1) * LOAD_DEN > s->cap * LOAD_NUM) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct kl_keyslot *ns = calloc(ncap, sizeof(*ns));
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
