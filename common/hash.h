/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Hashing and linear probing for the open-addressing tables of the daemons
 * (the decider's source table and key set, the sensor's previous-counter
 * table, graphd's edge and suspect tables). Tables have a power of two of
 * slots (mask = slots - 1), always keep one slot empty, and delete by
 * backward shift: no tombstones, so probe runs stay short however much a
 * table churns.
 *
 * Everything is inline with the slot tests passed as function pointers:
 * at -O2 the compiler inlines them into each table's loop, so one probe
 * loop serves every table at the cost of a hand-written one.
 */
#ifndef KL_COMMON_HASH_H
#define KL_COMMON_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_INLINE static inline __attribute__((always_inline))

/* The 64-bit finaliser of MurmurHash3: each input bit flips about half of
 * the output bits. */
KL_INLINE uint64_t kl_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* The smallest power of two that is >= n and >= min (min a power of two). */
KL_INLINE size_t kl_pow2_at_least(size_t n, size_t min)
{
	size_t c = min;

	while (c < n)
		c <<= 1;
	return c;
}

/* The first slot from h's home slot on which stop(ctx, slot) holds: the
 * key's own slot or the empty slot that ends its probe run. */
KL_INLINE size_t kl_probe(uint64_t h, size_t mask, bool (*stop)(const void *ctx, size_t slot),
			  const void *ctx)
{
	size_t i = (size_t)h & mask;

	while (!stop(ctx, i))
		i = (i + 1) & mask;
	return i;
}

/* How a table lets kl_probe_delete move its slots. */
struct kl_probe_ops {
	bool (*empty)(const void *ctx, size_t slot);
	size_t (*home)(const void *ctx, size_t slot); /* hash & mask of the entry there */
	void (*move)(void *ctx, size_t to, size_t from);
	void (*clear)(void *ctx, size_t slot);
};

/* Empty slot hole by backward shift: each later member of the probe run
 * moves into the hole unless its home lies cyclically in (hole, its slot],
 * where it would leave its own run. */
KL_INLINE void kl_probe_delete(size_t hole, size_t mask, const struct kl_probe_ops *ops,
			       void *ctx)
{
	size_t j = hole;

	for (;;) {
		j = (j + 1) & mask;
		if (ops->empty(ctx, j))
			break;
		size_t home = ops->home(ctx, j);
		if (((j - home) & mask) < ((j - hole) & mask))
			continue;
		ops->move(ctx, hole, j);
		hole = j;
	}
	ops->clear(ctx, hole);
}

#endif
