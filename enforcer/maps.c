/* SPDX-License-Identifier: MPL-2.0 */
/* Walking, counting and clearing the shield's maps through their fds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "enforcer/enforcer.h"

const struct enf_map_spec enf_map_specs[ENF_M_MAX] = {
#define ENF_MAP_SPEC(id, name, ksz, vsz, szk, lpm) [id] = { #name, ksz, vsz, szk, lpm },
	ENF_MAPS(ENF_MAP_SPEC)
#undef ENF_MAP_SPEC
};

/* Largest key the enforcer walks (struct kl_edge6_key / kl_lpm6_key). */
#define KEY_MAX 40
_Static_assert(sizeof(struct kl_edge6_key) <= KEY_MAX, "key buffer");
_Static_assert(sizeof(struct kl_lpm6_key) <= KEY_MAX, "key buffer");

uint32_t enf_slots(uint32_t count)
{
	uint64_t n = kl_slots_for(count);

	_Static_assert(KL_SRC_WAYS == KL_FLOW_WAYS, "one slot-count rule for both");
	return (uint32_t)(n < ENF_SLOTS_MAX ? n : ENF_SLOTS_MAX);
}

bool enf_is_slot_map(int m)
{
	return m == ENF_M_SRC4 || m == ENF_M_SRC6 || m == ENF_M_FLOW4 || m == ENF_M_FLOW6;
}

uint64_t enf_boottime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void enf_ctx_init(struct enf_ctx *ctx, const struct enf_config *cfg, struct enf_evring *ring)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	for (int i = 0; i < ENF_M_MAX; i++)
		ctx->fd[i] = -1;
	ctx->prog_fd = -1;
	ctx->bloom_fd = -1;
	ctx->ring = ring;
	ctx->maps = &enf_bpf_map_ops;
	ctx->now = enf_boottime_ns;
	/* The policy only needs the prefixes; copy them out of the config. */
	for (size_t i = 0; i < cfg->protect.n && i < ENF_MAX_PROTECT; i++)
		ctx->protect[i] = cfg->protect.v[i];
	ctx->policy.protect = ctx->protect;
	ctx->policy.n_protect = cfg->protect.n < ENF_MAX_PROTECT ? cfg->protect.n : ENF_MAX_PROTECT;
	ctx->policy.self = ctx->self;
	ctx->policy.n_self = 0;
	enf_quota_init(&ctx->links[ENF_LINK_DECIDER].quota, cfg->decider_rate, cfg->decider_max);
	enf_quota_init(&ctx->links[ENF_LINK_GRAPHD].quota, cfg->graph_rate, cfg->graph_max);
	for (int i = 0; i < ENF_LINK_MAX; i++)
		ctx->links[i].uid = -1;
}

static int bpf_lookup(int fd, const void *key, void *val)
{
	return bpf_map_lookup_elem(fd, key, val) < 0 ? -errno : 0;
}

static int bpf_update(int fd, const void *key, const void *val, uint64_t flags)
{
	return bpf_map_update_elem(fd, key, val, flags) < 0 ? -errno : 0;
}

static int bpf_del(int fd, const void *key)
{
	return bpf_map_delete_elem(fd, key) < 0 ? -errno : 0;
}

static int bpf_next_key(int fd, const void *key, void *next)
{
	return bpf_map_get_next_key(fd, key, next) < 0 ? -errno : 0;
}

static int bpf_lookup_batch(int fd, const uint64_t *in, uint64_t *out, void *keys, void *vals,
			    uint32_t *count)
{
	__u32 n = *count;
	/* libbpf takes the resume position as a non-const pointer. */
	uint64_t pos = in ? *in : 0;
	int rc = bpf_map_lookup_batch(fd, in ? &pos : NULL, out, keys, vals, &n, NULL);
	int e = rc < 0 ? errno : 0;
	*count = n;
	/* 524: ENOTSUPP, the kernel's own "not supported" for a map type. */
	return e == 524 ? -ENOTSUP : -e;
}

const struct enf_map_ops enf_bpf_map_ops = {
	.lookup = bpf_lookup,
	.update = bpf_update,
	.del = bpf_del,
	.next_key = bpf_next_key,
	.lookup_batch = bpf_lookup_batch,
};

int enf_map_lookup(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, void *val)
{
	return ctx->fd[m] < 0 ? -EBADF : ctx->maps->lookup(ctx->fd[m], key, val);
}

int enf_map_update(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, const void *val)
{
	return ctx->fd[m] < 0 ? -EBADF : ctx->maps->update(ctx->fd[m], key, val, BPF_ANY);
}

int enf_map_delete(const struct enf_ctx *ctx, enum enf_map_id m, const void *key)
{
	return ctx->fd[m] < 0 ? -EBADF : ctx->maps->del(ctx->fd[m], key);
}

int enf_map_next_key(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, void *next)
{
	return ctx->fd[m] < 0 ? -EBADF : ctx->maps->next_key(ctx->fd[m], key, next);
}

/* get_next_key walk: LPM tries have no batch operations. */
static int foreach_slow(const struct enf_ctx *ctx, enum enf_map_id m, enf_visit_fn cb, void *arg)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	uint8_t key[KEY_MAX], next[KEY_MAX];
	uint8_t *val = malloc(s->value_size);
	if (!val)
		return -ENOMEM;
	int rc = 0;
	bool first = true;
	for (;;) {
		int e = enf_map_next_key(ctx, m, first ? NULL : key, next);
		if (e < 0) {
			rc = e == -ENOENT ? 0 : e;
			break;
		}
		first = false;
		memcpy(key, next, s->key_size);
		if ((e = enf_map_lookup(ctx, m, key, val)) < 0) {
			if (e == -ENOENT) /* deleted under us */
				continue;
			rc = e;
			break;
		}
		if (cb(key, val, arg))
			break;
	}
	free(val);
	return rc;
}

#define BATCH 1024

/* 1: the map type has no batch operations (walk it key by key). */
static int foreach_batch(const struct enf_ctx *ctx, enum enf_map_id m, enf_visit_fn cb, void *arg)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	uint32_t ksz = s->key_size, vsz = s->value_size;
	uint8_t *keys = malloc((size_t)BATCH * ksz), *vals = malloc((size_t)BATCH * vsz);
	uint64_t in = 0, out = 0;
	int rc = 0;
	bool first = true;
	if (!keys || !vals) {
		rc = -ENOMEM;
		goto done;
	}
	for (;;) {
		uint32_t count = BATCH;
		int err = ctx->maps->lookup_batch(ctx->fd[m], first ? NULL : &in, &out, keys, vals,
						  &count);
		if (err < 0 && err != -ENOENT) {
			rc = (first && (err == -EINVAL || err == -ENOTSUP)) ? 1 : err;
			goto done;
		}
		for (uint32_t i = 0; i < count; i++)
			if (cb(keys + (size_t)i * ksz, vals + (size_t)i * vsz, arg))
				goto done;
		if (err < 0) /* ENOENT: that was the last batch */
			break;
		first = false;
		in = out;
	}
done:
	free(keys);
	free(vals);
	return rc;
}

int enf_map_foreach(const struct enf_ctx *ctx, enum enf_map_id m, enf_visit_fn cb, void *arg)
{
	if (ctx->fd[m] < 0)
		return -EBADF;
	if (!enf_map_specs[m].lpm) {
		int rc = foreach_batch(ctx, m, cb, arg);
		if (rc <= 0)
			return rc;
	}
	return foreach_slow(ctx, m, cb, arg);
}

/* Collect matching keys in chunks, then delete them: deleting while a
 * get_next_key walk stands on the key would restart the walk. */
long enf_map_delete_if(const struct enf_ctx *ctx, enum enf_map_id m, enf_pred_fn pred,
		       void *arg)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	if (ctx->fd[m] < 0)
		return -EBADF;
	size_t cap = 4096, n = 0;
	uint8_t *keys = malloc(cap * s->key_size);
	uint8_t *val = malloc(s->value_size);
	uint8_t key[KEY_MAX], next[KEY_MAX];
	long deleted = 0;
	bool first = true;
	int rc = 0;
	if (!keys || !val) {
		rc = -ENOMEM;
		goto done;
	}
	for (;;) {
		int e = enf_map_next_key(ctx, m, first ? NULL : key, next);
		if (e < 0) {
			if (e != -ENOENT)
				rc = e;
			break;
		}
		first = false;
		memcpy(key, next, s->key_size);
		if (pred) {
			if (enf_map_lookup(ctx, m, key, val) < 0)
				continue;
			if (!pred(key, val, arg))
				continue;
		}
		if (n == cap) {
			uint8_t *nk = realloc(keys, 2 * cap * s->key_size);
			if (!nk) {
				rc = -ENOMEM;
				break;
			}
			keys = nk;
			cap *= 2;
		}
		memcpy(keys + n * s->key_size, key, s->key_size);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		if (enf_map_delete(ctx, m, keys + i * s->key_size) == 0)
			deleted++;
done:
	free(keys);
	free(val);
	return rc < 0 && deleted == 0 ? rc : deleted;
}

long enf_map_count(const struct enf_ctx *ctx, enum enf_map_id m)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	if (ctx->fd[m] < 0 || s->key_size == 0)
		return -EBADF;
	uint8_t key[KEY_MAX], next[KEY_MAX];
	long n = 0;
	int e;
	bool first = true;
	while ((e = enf_map_next_key(ctx, m, first ? NULL : key, next)) == 0) {
		memcpy(key, next, s->key_size);
		first = false;
		n++;
	}
	return e == -ENOENT || n > 0 ? n : e;
}

int enf_cfg_read(const struct enf_ctx *ctx, struct kl_cfg *c)
{
	uint32_t zero = 0;
	return enf_map_lookup(ctx, ENF_M_CFG, &zero, c);
}

int enf_cfg_write(const struct enf_ctx *ctx, const struct kl_cfg *c)
{
	uint32_t zero = 0;
	return enf_map_update(ctx, ENF_M_CFG, &zero, c);
}

int enf_gen_bump(const struct enf_ctx *ctx)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);
	if (rc < 0)
		return rc;
	c.policy_gen++;
	if (c.policy_gen == 0) /* 0 means "never written": skip it */
		c.policy_gen = 1;
	return enf_cfg_write(ctx, &c);
}

/* Family of an exact-source policy map (its key starts with the source
 * address), else 0. */
static int bloom_family(enum enf_map_id m)
{
	switch (m) {
	case ENF_M_DENY4: case ENF_M_RL4: case ENF_M_EDGE4_DENY: case ENF_M_EDGE4_ALLOW:
	case ENF_M_EDGE4_RL:
		return 4;
	case ENF_M_DENY6: case ENF_M_RL6: case ENF_M_EDGE6_DENY: case ENF_M_EDGE6_ALLOW:
	case ENF_M_EDGE6_RL:
		return 6;
	default:
		return 0;
	}
}

static uint32_t bloom_bit(int fam, const void *key, const __u64 seed[2])
{
	uint64_t w0, w1;
	uint32_t a;

	if (fam == 4) {
		memcpy(&a, key, 4);
		return kl_pol_bit(kl_src_hash4(a, seed));
	}
	memcpy(&w0, key, 8);
	memcpy(&w1, (const uint8_t *)key + 8, 8);
	return kl_pol_bit(kl_src_hash6w(w0, w1, seed));
}

int enf_bloom_note(const struct enf_ctx *ctx, enum enf_map_id m, const void *key)
{
	int fam = bloom_family(m);
	struct kl_cfg c;
	uint64_t w;

	if (ctx->bloom_fd < 0 || fam == 0)
		return 0;
	int rc = enf_cfg_read(ctx, &c);
	if (rc < 0)
		return rc;
	uint32_t bit = bloom_bit(fam, key, c.src_seed), wi = bit >> 6;
	if ((rc = ctx->maps->lookup(ctx->bloom_fd, &wi, &w)) < 0)
		return rc;
	if (w & (1ull << (bit & 63)))
		return 0;
	w |= 1ull << (bit & 63);
	return ctx->maps->update(ctx->bloom_fd, &wi, &w, BPF_ANY);
}

struct bloom_acc {
	uint64_t *words;
	const __u64 *seed;
	int fam;
};

static int bloom_visit(const void *key, const void *val, void *arg)
{
	struct bloom_acc *a = arg;
	uint32_t bit = bloom_bit(a->fam, key, a->seed);

	(void)val;
	a->words[bit >> 6] |= 1ull << (bit & 63);
	return 0;
}

int enf_bloom_rebuild(const struct enf_ctx *ctx)
{
	struct kl_cfg c;
	int rc;

	if (ctx->bloom_fd < 0)
		return 0;
	if ((rc = enf_cfg_read(ctx, &c)) < 0)
		return rc;
	uint64_t *words = calloc(KL_POL_BLOOM_WORDS, sizeof(*words));
	if (!words)
		return -ENOMEM;
	struct bloom_acc a = { .words = words, .seed = c.src_seed };
	for (int m = 0; m < ENF_M_MAX && rc == 0; m++) {
		if ((a.fam = bloom_family((enum enf_map_id)m)) == 0 || ctx->fd[m] < 0)
			continue;
		rc = enf_map_foreach(ctx, (enum enf_map_id)m, bloom_visit, &a);
	}
	/* Word by word: a bit an existing entry needs is set in the old word
	 * (noted before its write) and in the new one, so it never clears. */
	for (uint32_t i = 0; i < KL_POL_BLOOM_WORDS && rc == 0; i++)
		rc = ctx->maps->update(ctx->bloom_fd, &i, &words[i], BPF_ANY);
	free(words);
	return rc;
}

int enf_totals_read(const struct enf_ctx *ctx, uint64_t out[KL_T_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return -EINVAL;
	/* Per-CPU values come back as one 8-byte-aligned slot per CPU. */
	size_t slot = (sizeof(struct kl_totals) + 7) & ~(size_t)7;
	uint8_t *buf = calloc((size_t)ncpu, slot);
	if (!buf)
		return -ENOMEM;
	uint32_t zero = 0;
	int rc = enf_map_lookup(ctx, ENF_M_TOTALS, &zero, buf);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	memset(out, 0, KL_T_MAX * sizeof(uint64_t));
	for (int c = 0; c < ncpu; c++) {
		const struct kl_totals *t = (const void *)(buf + (size_t)c * slot);
		for (int i = 0; i < KL_T_MAX; i++)
			out[i] += t->v[i];
	}
	free(buf);
	return 0;
}
