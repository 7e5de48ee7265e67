/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Open-addressing hash tables keyed by address (v4 and v6), linear probing
 * with backward-shift deletion (no tombstones, so lookups stay short after
 * many forgets). Keys must be normalised: kl_addr with zeroed unused bytes.
 *
 *  dec_srctab: the engine's per-source state (struct dec_src slots).
 *  dec_keyset: a small set of addresses with one byte of value each
 *             (elevated sources, this tick's violations).
 */
#ifndef KL_DECIDER_TABLE_H
#define KL_DECIDER_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decider/engine.h"

uint64_t dec_addr_hash(const struct kl_addr *a, uint64_t seed);

static inline bool dec_addr_eq(const struct kl_addr *a, const struct kl_addr *b)
{
	const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
	uint64_t x0, x1, y0, y1;
	uint16_t x2, y2;

	/* 18 bytes: two 8-byte words and a 2-byte tail, no padding. */
	__builtin_memcpy(&x0, x, 8);
	__builtin_memcpy(&y0, y, 8);
	__builtin_memcpy(&x1, x + 8, 8);
	__builtin_memcpy(&y1, y + 8, 8);
	__builtin_memcpy(&x2, x + 16, 2);
	__builtin_memcpy(&y2, y + 16, 2);
	return ((x0 ^ y0) | (x1 ^ y1) | (uint64_t)(x2 ^ y2)) == 0;
}

/* Copy a host address into key form: unused bytes zero. Returns false if
 * a is not a v4/v6 host address. */
bool dec_addr_key(const struct kl_addr *a, struct kl_addr *key);

struct dec_srctab {
	struct dec_src *slots;
	size_t cap;   /* power of two, or 0 */
	size_t n;
	uint64_t seed;
};

int dec_srctab_init(struct dec_srctab *t, size_t cap_hint, uint64_t seed);
void dec_srctab_free(struct dec_srctab *t);
struct dec_src *dec_srctab_find(const struct dec_srctab *t, const struct kl_addr *key);
/* The same with the key's hash already computed (dec_addr_hash(key, t->seed)). */
struct dec_src *dec_srctab_find_h(const struct dec_srctab *t, const struct kl_addr *key,
				uint64_t h);
/* Hint the cache about the slot a key with hash h starts probing at.
 * A macro, not an inline function: GCC 12 finds such a function free of
 * side effects and deletes the call. Read prefetches: without PRFCHW,
 * x86-64 drops write prefetches. */
#define DEC_SRCTAB_PREFETCH(t, h)                                                  \
	do {                                                                      \
		if ((t)->cap > 0) {                                               \
			const char *pf_ = (const char *)&(t)->slots[(h) & ((t)->cap - 1)]; \
			__builtin_prefetch(pf_, 0);                               \
			__builtin_prefetch(pf_ + 64, 0);                          \
		}                                                                 \
	} while (0)
/* Find or add (initialised with dec_src_init). NULL when out of memory.
 * Growing moves slots: pointers from earlier calls become invalid. */
struct dec_src *dec_srctab_insert(struct dec_srctab *t, const struct kl_addr *key,
				bool *created);
struct dec_src *dec_srctab_insert_h(struct dec_srctab *t, const struct kl_addr *key, uint64_t h,
				  bool *created);
/* Remove the slot at index i; a later slot may move into i. */
void dec_srctab_del_at(struct dec_srctab *t, size_t i);
bool dec_srctab_del(struct dec_srctab *t, const struct kl_addr *key);

struct dec_keyslot {
	struct kl_addr key; /* family 0 = empty */
	uint8_t val;
	uint8_t mark;
};

struct dec_keyset {
	struct dec_keyslot *slots;
	size_t cap, n;
	uint64_t seed;
};

void dec_keyset_init(struct dec_keyset *s, uint64_t seed);
void dec_keyset_free(struct dec_keyset *s);
/* Empty the set; shrinks storage that is far too large for what was used. */
void dec_keyset_clear(struct dec_keyset *s);
struct dec_keyslot *dec_keyset_find(const struct dec_keyset *s, const struct kl_addr *key);
/* Find or add with val 0. NULL when out of memory. */
struct dec_keyslot *dec_keyset_add(struct dec_keyset *s, const struct kl_addr *key);

#endif
