/* SPDX-License-Identifier: MPL-2.0 */
/*
 * An in-memory backend for struct enf_map_ops, so the enforcer's policy
 * logic runs in unit tests without privileges. It keeps the kernel's
 * semantics the logic depends on:
 *   - HASH / LRU_HASH: exact keys; a full HASH refuses a new key (E2BIG),
 *     a full LRU evicts its least recently written entry; get_next_key of
 *     a key that is not there restarts at the first key;
 *   - LPM_TRIE: a lookup finds the longest stored prefix covering the key
 *     (prefix length at most the key's); update and delete are exact; a
 *     prefix length beyond the data is EINVAL, a full trie ENOSPC; no
 *     batch operations;
 *   - ARRAY / PERCPU_ARRAY: every index exists (zeroed), delete is EINVAL,
 *     an index past max_entries is E2BIG on update and ENOENT on lookup.
 *     A per-CPU value is created as ncpu slots by the caller.
 * Entries are kept in insertion order; batch positions are indices.
 * Handles are fds from FAKE_FD_BASE up, never real descriptors.
 */
#ifndef KL_TESTS_FAKEMAPS_H
#define KL_TESTS_FAKEMAPS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "enforcer/enforcer.h"

#define FAKE_FD_BASE 10000
#define FAKE_MAPS_MAX 64

struct fake_map {
	bool used;
	int type;
	uint32_t ksz, vsz, max, n;
	uint8_t *keys, *vals;
	/* Counts per operation, so a test can see which path ran. */
	unsigned n_batch;
};

static struct fake_map fake_maps[FAKE_MAPS_MAX];

static inline struct fake_map *fake_get(int fd)
{
	int i = fd - FAKE_FD_BASE;
	if (i < 0 || i >= FAKE_MAPS_MAX || !fake_maps[i].used)
		return NULL;
	return &fake_maps[i];
}

static inline bool fake_is_array(const struct fake_map *f)
{
	return f->type == BPF_MAP_TYPE_ARRAY || f->type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* A new map; returns its handle, or -1 when the table is full. */
static inline int fake_map_create(int type, uint32_t ksz, uint32_t vsz, uint32_t max)
{
	for (int i = 0; i < FAKE_MAPS_MAX; i++) {
		struct fake_map *f = &fake_maps[i];
		if (f->used)
			continue;
		memset(f, 0, sizeof(*f));
		f->used = true;
		f->type = type;
		f->ksz = ksz;
		/* A per-CPU value is read and written as one 8-byte aligned
		 * slot per possible CPU, as the kernel hands it out. */
		if (type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH)
			vsz = ((vsz + 7) & ~7u) * (uint32_t)libbpf_num_possible_cpus();
		f->vsz = vsz;
		f->max = max;
		f->keys = calloc(max, ksz);
		f->vals = calloc(max, vsz);
		if (!f->keys || !f->vals)
			abort();
		if (fake_is_array(f)) {
			f->n = max;
			for (uint32_t k = 0; k < max; k++)
				memcpy(f->keys + (size_t)k * ksz, &k, sizeof(k));
		}
		return FAKE_FD_BASE + i;
	}
	return -1;
}

static inline void fake_map_destroy(int fd)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return;
	free(f->keys);
	free(f->vals);
	memset(f, 0, sizeof(*f));
}

static inline uint8_t *fake_key(const struct fake_map *f, uint32_t i)
{
	return f->keys + (size_t)i * f->ksz;
}

static inline uint8_t *fake_val(const struct fake_map *f, uint32_t i)
{
	return f->vals + (size_t)i * f->vsz;
}

/* Do the first plen bits of a and b agree? */
static inline bool fake_bits_equal(const uint8_t *a, const uint8_t *b, uint32_t plen)
{
	uint32_t bytes = plen / 8, rest = plen % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static inline uint32_t fake_plen(const uint8_t *key)
{
	uint32_t p;
	memcpy(&p, key, sizeof(p));
	return p;
}

/* Index of the entry stored under exactly this key, or -1. */
static inline long fake_find(const struct fake_map *f, const void *key)
{
	if (fake_is_array(f)) {
		uint32_t k;
		memcpy(&k, key, sizeof(k));
		return k < f->max ? (long)k : -1;
	}
	for (uint32_t i = 0; i < f->n; i++) {
		const uint8_t *k = fake_key(f, i);
		if (f->type == BPF_MAP_TYPE_LPM_TRIE) {
			uint32_t p = fake_plen(key);
			if (fake_plen(k) == p && fake_bits_equal(k + 4, (const uint8_t *)key + 4, p))
				return i;
		} else if (memcmp(k, key, f->ksz) == 0) {
			return i;
		}
	}
	return -1;
}

static inline int fake_lookup(int fd, const void *key, void *val)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return -EBADF;
	long at = -1;
	if (f->type == BPF_MAP_TYPE_LPM_TRIE) {
		uint32_t want = fake_plen(key), best = 0;
		for (uint32_t i = 0; i < f->n; i++) {
			const uint8_t *k = fake_key(f, i);
			uint32_t p = fake_plen(k);
			if (p <= want && (at < 0 || p > best) &&
			    fake_bits_equal(k + 4, (const uint8_t *)key + 4, p)) {
				at = i;
				best = p;
			}
		}
	} else {
		at = fake_find(f, key);
	}
	if (at < 0)
		return -ENOENT;
	memcpy(val, fake_val(f, (uint32_t)at), f->vsz);
	return 0;
}

static inline void fake_remove_at(struct fake_map *f, uint32_t i)
{
	size_t tail = f->n - i - 1;
	memmove(fake_key(f, i), fake_key(f, i + 1), tail * f->ksz);
	memmove(fake_val(f, i), fake_val(f, i + 1), tail * f->vsz);
	f->n--;
}

static inline int fake_update(int fd, const void *key, const void *val, uint64_t flags)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return -EBADF;
	if (f->type == BPF_MAP_TYPE_LPM_TRIE && fake_plen(key) > (f->ksz - 4) * 8)
		return -EINVAL;
	long at = fake_find(f, key);
	if (fake_is_array(f) && at < 0)
		return -E2BIG;
	if (at >= 0 && flags == BPF_NOEXIST)
		return -EEXIST;
	if (at < 0 && flags == BPF_EXIST)
		return -ENOENT;
	if (at >= 0 && f->type == BPF_MAP_TYPE_LRU_HASH) {
		/* A write makes the entry the most recent one. */
		fake_remove_at(f, (uint32_t)at);
		at = -1;
	}
	if (at < 0) {
		if (f->n == f->max) {
			if (f->type == BPF_MAP_TYPE_LPM_TRIE)
				return -ENOSPC;
			if (f->type != BPF_MAP_TYPE_LRU_HASH)
				return -E2BIG;
			fake_remove_at(f, 0);
		}
		at = f->n++;
		memcpy(fake_key(f, (uint32_t)at), key, f->ksz);
	}
	memcpy(fake_val(f, (uint32_t)at), val, f->vsz);
	return 0;
}

static inline int fake_del(int fd, const void *key)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return -EBADF;
	if (fake_is_array(f))
		return -EINVAL;
	long at = fake_find(f, key);
	if (at < 0)
		return -ENOENT;
	fake_remove_at(f, (uint32_t)at);
	return 0;
}

static inline int fake_next_key(int fd, const void *key, void *next)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return -EBADF;
	long at = key ? fake_find(f, key) : -1;
	uint32_t i = at < 0 ? 0 : (uint32_t)at + 1;
	if (i >= f->n)
		return -ENOENT;
	memcpy(next, fake_key(f, i), f->ksz);
	return 0;
}

static inline int fake_lookup_batch(int fd, const uint64_t *in, uint64_t *out, void *keys,
				    void *vals, uint32_t *count)
{
	struct fake_map *f = fake_get(fd);
	if (!f)
		return -EBADF;
	if (f->type == BPF_MAP_TYPE_LPM_TRIE)
		return -EINVAL;
	f->n_batch++;
	uint64_t pos = in ? *in : 0;
	uint32_t got = 0;
	while (got < *count && pos < f->n) {
		memcpy((uint8_t *)keys + (size_t)got * f->ksz, fake_key(f, (uint32_t)pos), f->ksz);
		memcpy((uint8_t *)vals + (size_t)got * f->vsz, fake_val(f, (uint32_t)pos), f->vsz);
		got++;
		pos++;
	}
	*count = got;
	*out = pos;
	return pos >= f->n ? -ENOENT : 0;
}

static const struct enf_map_ops fake_map_ops = {
	.lookup = fake_lookup,
	.update = fake_update,
	.del = fake_del,
	.next_key = fake_next_key,
	.lookup_batch = fake_lookup_batch,
};

/* The type of each map of the shield (bpf/shield.bpf.c), for building
 * its layout in a test without loading the object. */
static inline int kl_test_map_type(int m)
{
	switch (m) {
	case ENF_M_CFG: return BPF_MAP_TYPE_ARRAY;
	case ENF_M_TOTALS: return BPF_MAP_TYPE_PERCPU_ARRAY;
	case ENF_M_EVENTS: return BPF_MAP_TYPE_RINGBUF;
	case ENF_M_SRC4:
	case ENF_M_SRC6:
	case ENF_M_FLOW4:
	case ENF_M_FLOW6: return BPF_MAP_TYPE_ARRAY;
	default: return enf_map_specs[m].lpm ? BPF_MAP_TYPE_LPM_TRIE : BPF_MAP_TYPE_HASH;
	}
}

/* One map of the shield's layout: fake (handle) or real (fd, needs
 * CAP_BPF), max entries `max`. Negative on failure. */
static inline int kl_test_map_new(bool real, int m, uint32_t max)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	int t = kl_test_map_type(m);
	if (!real)
		return fake_map_create(t, s->key_size, s->value_size, max);
	LIBBPF_OPTS(bpf_map_create_opts, o);
	if (t == BPF_MAP_TYPE_LPM_TRIE || t == BPF_MAP_TYPE_HASH)
		o.map_flags = BPF_F_NO_PREALLOC;
	if (enf_is_slot_map(m))
		o.map_flags = BPF_F_MMAPABLE;
	int fd = bpf_map_create(t, s->name, s->key_size, s->value_size, max, &o);
	return fd < 0 ? -errno : fd;
}

static inline void kl_test_map_free(bool real, int fd)
{
	if (real)
		close(fd);
	else
		fake_map_destroy(fd);
}

/* Every map the policy logic uses (not the ring buffer), max entries
 * `max` (the config and totals arrays: 1), and the policy summary, on the
 * chosen backend; ctx->maps set to match. 0, or -1. */
static inline int kl_test_maps_create(struct enf_ctx *ctx, bool real, uint32_t max)
{
	ctx->maps = real ? &enf_bpf_map_ops : &fake_map_ops;
	for (int m = 0; m < ENF_M_MAX; m++) {
		if (m == ENF_M_EVENTS)
			continue;
		uint32_t n = (m == ENF_M_CFG || m == ENF_M_TOTALS) ? 1 : max;
		int fd = kl_test_map_new(real, m, n);
		if (fd < 0)
			return -1;
		ctx->fd[m] = fd;
		ctx->map_max[m] = n;
	}
	ctx->bloom_fd = real ? bpf_map_create(BPF_MAP_TYPE_ARRAY, KL_MAP_POLICY_BLOOM, 4, 8,
					      KL_POL_BLOOM_WORDS, NULL)
			     : fake_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, KL_POL_BLOOM_WORDS);
	return ctx->bloom_fd < 0 ? -1 : 0;
}

static inline void kl_test_maps_free(struct enf_ctx *ctx, bool real)
{
	for (int m = 0; m < ENF_M_MAX; m++)
		if (ctx->fd[m] >= 0) {
			kl_test_map_free(real, ctx->fd[m]);
			ctx->fd[m] = -1;
		}
	if (ctx->bloom_fd >= 0)
		kl_test_map_free(real, ctx->bloom_fd);
	ctx->bloom_fd = -1;
}

/* Number of entries stored (for a hash or trie). */
static inline uint32_t fake_map_entries(int fd)
{
	struct fake_map *f = fake_get(fd);
	return f ? f->n : 0;
}


/* The enforcer context the policy tests start from: the built-in
 * configuration protecting `protect4` and fd00:6b6c::200, on fake maps of
 * `max` entries, with the clock `now`. 0, or -1. */
static inline int kl_test_enf_setup(struct enf_ctx *ctx, struct enf_config *cfg,
				    struct enf_evring *ring, uint64_t (*now)(void),
				    const char *protect4, uint32_t max)
{
	char err[64];
	static struct enf_opts opts;
	static struct kl_addr prot[2];
	enf_opts_free(&opts);
	if (enf_config_defaults(&opts) < 0)
		return -1;
	*cfg = opts.c;
	if (kl_cidr_parse(protect4, &prot[0], err, sizeof(err)) < 0 ||
	    kl_cidr_parse("fd00:6b6c::200", &prot[1], err, sizeof(err)) < 0)
		return -1;
	cfg->protect = (struct kl_cidrs){ .v = prot, .n = 2 };
	enf_ctx_init(ctx, cfg, ring);
	ctx->now = now;
	if (kl_test_maps_create(ctx, false, max) < 0)
		return -1;
	return enf_cfg_init(ctx);
}

#endif
