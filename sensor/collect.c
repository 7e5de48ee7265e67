/* SPDX-License-Identifier: MPL-2.0 */
/* Telemetry map access for the harvest: pins, batch reads, one tick. */
#include "sensor/collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "common/log.h"

#define BATCH_DEFAULT 4096
/* Batch reads fail with ENOSPC when one hash bucket holds more entries
 * than the batch; keep the batch well above any bucket. */
#define BATCH_MIN 256

struct smap_desc {
	const char *name;
	uint32_t key_size, value_size;
	uint32_t type;
	bool required;
};

static const struct smap_desc descs[KL_SM_MAX] = {
	[KL_SM_SRC4] = { KL_MAP_SRC4, 4, sizeof(struct kl_src_stats), BPF_MAP_TYPE_LRU_HASH, true },
	[KL_SM_SRC6] = { KL_MAP_SRC6, 16, sizeof(struct kl_src_stats), BPF_MAP_TYPE_LRU_HASH, true },
	[KL_SM_FLOW4] = { KL_MAP_FLOW4, sizeof(struct kl_edge4_key), sizeof(struct kl_flow_stats),
			  BPF_MAP_TYPE_LRU_HASH, false },
	[KL_SM_FLOW6] = { KL_MAP_FLOW6, sizeof(struct kl_edge6_key), sizeof(struct kl_flow_stats),
			  BPF_MAP_TYPE_LRU_HASH, false },
	[KL_SM_TOTALS] = { KL_MAP_TOTALS, 4, sizeof(struct kl_totals), BPF_MAP_TYPE_PERCPU_ARRAY,
			   true },
};

const char *kl_smap_name(enum kl_smap m)
{
	return (unsigned)m < KL_SM_MAX ? descs[m].name : "?";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- pins ---- */

int kl_smap_check(int fd, enum kl_smap which, uint32_t *id, char *err, size_t errlen)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	const struct smap_desc *d = &descs[which];

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		snprintf(err, errlen, "%s: map info: %s", d->name, strerror(errno));
		return -1;
	}
	if (info.type != d->type || info.key_size != d->key_size ||
	    info.value_size != d->value_size) {
		snprintf(err, errlen,
			 "%s: map type %u, key %u bytes, value %u bytes; this build expects type %u, "
			 "key %u, value %u (kl-sensor and the shield object are from different "
			 "versions)",
			 d->name, info.type, info.key_size, info.value_size, d->type, d->key_size,
			 d->value_size);
		return -1;
	}
	*id = info.id;
	return 0;
}

static int open_pin(const char *dir, enum kl_smap which, uint32_t *id, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_obj_get_opts, oo, .file_flags = BPF_F_RDONLY);
	char path[600];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, descs[which].name) >= (int)sizeof(path)) {
		snprintf(err, errlen, "pin path %s/%s is too long", dir, descs[which].name);
		return -1;
	}
	fd = bpf_obj_get_opts(path, &oo);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(e),
			 e == EACCES ? " (the pin must be readable by this user: chgrp it to the "
				       "sensor's group and chmod 0640, and the directory 0750)"
				     : e == ENOENT ? " (is kl-enforcer running with this --pin-dir?)"
						   : "");
		errno = e;
		return -1;
	}
	if (kl_smap_check(fd, which, id, err, errlen) < 0) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

int kl_smaps_open(struct kl_smaps *m, const char *dir, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < KL_SM_MAX; i++)
		m->fd[i] = -1;
	if (snprintf(m->dir, sizeof(m->dir), "%s", dir) >= (int)sizeof(m->dir)) {
		snprintf(err, errlen, "--pin-dir %s is too long", dir);
		return -1;
	}
	for (int i = 0; i < KL_SM_MAX; i++) {
		char why[1024];
		m->fd[i] = open_pin(dir, (enum kl_smap)i, &m->id[i], why, sizeof(why));
		if (m->fd[i] >= 0)
			continue;
		if (descs[i].required || errno == EPROTO) {
			snprintf(err, errlen, "%s", why);
			kl_smaps_close(m);
			return -1;
		}
		kl_warn("%s; no flow telemetry from it", why);
		m->missing_logged |= 1u << i;
	}
	return 0;
}

int kl_smaps_refresh(struct kl_smaps *m)
{
	int swapped = 0, bad = 0;

	m->swapped = 0;
	for (int i = 0; i < KL_SM_MAX; i++) {
		char why[1024];
		uint32_t id;
		int fd = open_pin(m->dir, (enum kl_smap)i, &id, why, sizeof(why));

		if (fd < 0) {
			if (!(m->missing_logged & (1u << i)))
				kl_warn("re-acquire: %s; %s", why,
					m->fd[i] >= 0 ? "still reading the map held so far"
						      : "no data from it");
			m->missing_logged |= 1u << i;
			bad++;
			continue;
		}
		if (m->missing_logged & (1u << i)) {
			kl_info("re-acquire: %s/%s is readable again", m->dir, descs[i].name);
			m->missing_logged &= ~(1u << i);
		}
		if (m->fd[i] >= 0 && id == m->id[i]) {
			close(fd);
			continue;
		}
		kl_info("re-acquired %s: map id %u -> %u", descs[i].name, m->id[i], id);
		if (m->fd[i] >= 0)
			close(m->fd[i]);
		m->fd[i] = fd;
		m->id[i] = id;
		m->swapped |= 1u << i;
		swapped++;
	}
	return bad > 0 && swapped == 0 ? -1 : swapped;
}

void kl_smaps_close(struct kl_smaps *m)
{
	for (int i = 0; i < KL_SM_MAX; i++) {
		if (m->fd[i] >= 0)
			close(m->fd[i]);
		m->fd[i] = -1;
	}
}

/* ---- reading ---- */

int kl_collector_init(struct kl_collector *c, enum kl_read_mode mode)
{
	size_t vmax = sizeof(struct kl_src_stats), kmax = sizeof(struct kl_edge6_key);

	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->batch = BATCH_DEFAULT;
	c->ncpu = libbpf_num_possible_cpus();
	if (c->ncpu <= 0) {
		snprintf(c->err, sizeof(c->err), "cannot count the possible CPUs: %s",
			 strerror(-c->ncpu));
		return -1;
	}
	c->keys = malloc(c->batch * kmax);
	c->vals = malloc(c->batch * vmax);
	c->percpu = malloc((size_t)c->ncpu * sizeof(struct kl_totals));
	if (c->keys == NULL || c->vals == NULL || c->percpu == NULL) {
		kl_collector_free(c);
		snprintf(c->err, sizeof(c->err), "out of memory");
		return -1;
	}
	return 0;
}

void kl_collector_free(struct kl_collector *c)
{
	free(c->keys);
	free(c->vals);
	free(c->percpu);
	kl_frame_free(&c->telem);
	kl_frame_free(&c->flows);
	c->keys = c->vals = c->percpu = NULL;
}

typedef int (*entry_fn)(void *ctx, const uint8_t *key, const uint8_t *val);

/* Every entry of a hash map, in batches or one by one. */
static int read_map(struct kl_collector *c, int fd, const char *what, size_t ksz, size_t vsz,
		    entry_fn fn, void *ctx)
{
	if (c->mode == KL_READ_BATCH) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		uint64_t in = 0, out = 0;
		bool first = true;

		for (;;) {
			uint32_t count = c->batch < BATCH_MIN ? BATCH_MIN : c->batch;
			int rc = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, c->keys, c->vals,
						      &count, &bo);
			int e = rc < 0 ? errno : 0;

			if (rc < 0 && first && (e == EINVAL || e == EOPNOTSUPP || e == 524)) {
				/* 524 = ENOTSUPP: a kernel without batch ops for this map. */
				kl_warn("%s: batch lookup not supported (%s); reading entry by entry",
					what, strerror(e));
				c->mode = KL_READ_ITER;
				break;
			}
			if (rc < 0 && e != ENOENT) {
				snprintf(c->err, sizeof(c->err), "%s: batch lookup: %s", what,
					 strerror(e));
				return -1;
			}
			for (uint32_t i = 0; i < count; i++) {
				if (fn(ctx, c->keys + i * ksz, c->vals + i * vsz) < 0)
					return -1;
			}
			if (e == ENOENT)
				return 0;
			in = out;
			first = false;
		}
	}

	uint8_t *k = c->keys, *nk = c->keys + ksz, *v = c->vals;
	bool first = true;
	for (;;) {
		if (bpf_map_get_next_key(fd, first ? NULL : k, nk) < 0) {
			if (errno == ENOENT)
				return 0;
			snprintf(c->err, sizeof(c->err), "%s: get_next_key: %s", what,
				 strerror(errno));
			return -1;
		}
		first = false;
		memcpy(k, nk, ksz);
		if (bpf_map_lookup_elem(fd, k, v) < 0) {
			if (errno == ENOENT) /* evicted between the two calls */
				continue;
			snprintf(c->err, sizeof(c->err), "%s: lookup: %s", what, strerror(errno));
			return -1;
		}
		if (fn(ctx, k, v) < 0)
			return -1;
	}
}

struct src_ctx {
	struct kl_collector *c;
	struct kl_harvest *h;
	struct kl_frame *f;
	uint8_t family;
};

static int on_src(void *p, const uint8_t *key, const uint8_t *val)
{
	struct src_ctx *x = p;
	struct kl_src_stats s;
	struct kl_src_rate r;

	memcpy(&s, val, sizeof(s)); /* the batch buffer is not aligned for it */
	if (kl_harvest_src(x->h, x->family, key, &s, &r) && x->f != NULL &&
	    kl_frame_add_src(x->f, &r) < 0) {
		snprintf(x->c->err, sizeof(x->c->err), "out of memory building a frame");
		return -1;
	}
	return 0;
}

static int on_flow(void *p, const uint8_t *key, const uint8_t *val)
{
	struct src_ctx *x = p;
	struct kl_flow_stats s;
	struct kl_flow_rec r;
	uint16_t port;
	uint8_t proto;
	const uint8_t *addr;

	memcpy(&s, val, sizeof(s));
	if (x->family == 4) {
		struct kl_edge4_key k;
		memcpy(&k, key, sizeof(k));
		port = k.port;
		proto = k.proto;
		addr = key + offsetof(struct kl_edge4_key, src);
	} else {
		struct kl_edge6_key k;
		memcpy(&k, key, sizeof(k));
		port = k.port;
		proto = k.proto;
		addr = key + offsetof(struct kl_edge6_key, src);
	}
	if (kl_harvest_flow(x->h, x->family, addr, port, proto, &s, &r) && x->f != NULL &&
	    kl_frame_add_flow(x->f, &r) < 0) {
		snprintf(x->c->err, sizeof(x->c->err), "out of memory building a frame");
		return -1;
	}
	return 0;
}

int kl_collect_src(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		   struct kl_frame *f)
{
	struct src_ctx x = { c, h, f, family };

	return read_map(c, fd, family == 4 ? KL_MAP_SRC4 : KL_MAP_SRC6, family == 4 ? 4 : 16,
			sizeof(struct kl_src_stats), on_src, &x);
}

int kl_collect_flows(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		     struct kl_frame *f)
{
	struct src_ctx x = { c, h, f, family };

	return read_map(c, fd, family == 4 ? KL_MAP_FLOW4 : KL_MAP_FLOW6,
			family == 4 ? sizeof(struct kl_edge4_key) : sizeof(struct kl_edge6_key),
			sizeof(struct kl_flow_stats), on_flow, &x);
}

int kl_collect_totals(struct kl_collector *c, int fd, uint64_t out[KL_T_MAX])
{
	uint32_t zero = 0;

	/* Per-CPU values come back one (8-byte aligned) struct per possible CPU. */
	if (bpf_map_lookup_elem(fd, &zero, c->percpu) < 0) {
		snprintf(c->err, sizeof(c->err), "%s: lookup: %s", KL_MAP_TOTALS, strerror(errno));
		return -1;
	}
	memset(out, 0, sizeof(uint64_t) * KL_T_MAX);
	for (int cpu = 0; cpu < c->ncpu; cpu++) {
		struct kl_totals t;
		memcpy(&t, c->percpu + (size_t)cpu * sizeof(t), sizeof(t));
		for (int i = 0; i < KL_T_MAX; i++)
			out[i] += t.v[i];
	}
	return 0;
}

static void note_failure(struct kl_collector *c, enum kl_smap m)
{
	if (c->failed == 0)
		snprintf(c->why, sizeof(c->why), "%s", c->err);
	c->failed |= 1u << m;
}

int64_t kl_collect_tick(struct kl_collector *c, const int fds[KL_SM_MAX], struct kl_harvest *h,
			uint64_t now_ns, uint64_t elapsed_ns, uint64_t t_ns, uint64_t seq_telem,
			uint64_t seq_flows)
{
	uint64_t totals[KL_T_MAX] = { 0 }, t0 = mono_ns();
	uint64_t tick = kl_harvest_begin(h, now_ns, elapsed_ns);
	bool send = tick > 0;

	c->failed = 0;
	c->why[0] = '\0';
	if (fds[KL_SM_TOTALS] >= 0) {
		if (kl_collect_totals(c, fds[KL_SM_TOTALS], totals) == 0) {
			kl_harvest_totals(h, totals);
		} else {
			note_failure(c, KL_SM_TOTALS);
		}
	}
	struct kl_telem_hdr th;
	memset(&th, 0, sizeof(th));
	th.tick = tick;
	th.t_ns = t_ns;
	th.elapsed_ns = h->elapsed_ns;
	th.n_totals = KL_T_MAX;
	memcpy(th.totals, h->totals_delta, sizeof(h->totals_delta));
	struct kl_flows_hdr fh = { .tick = tick, .t_ns = t_ns, .elapsed_ns = h->elapsed_ns };
	if (kl_frame_begin_telem(&c->telem, seq_telem, &th) < 0 ||
	    kl_frame_begin_flows(&c->flows, seq_flows, &fh) < 0)
		return -1;

	static const struct {
		enum kl_smap m;
		uint8_t family;
		bool flow;
	} order[] = {
		{ KL_SM_SRC4, 4, false },
		{ KL_SM_SRC6, 6, false },
		{ KL_SM_FLOW4, 4, true },
		{ KL_SM_FLOW6, 6, true },
	};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int fd = fds[order[i].m];
		int rc;

		if (fd < 0)
			continue;
		h->all_new = (c->new_maps & (1u << order[i].m)) != 0;
		if (order[i].flow)
			rc = kl_collect_flows(c, fd, order[i].family, h, send ? &c->flows : NULL);
		else
			rc = kl_collect_src(c, fd, order[i].family, h, send ? &c->telem : NULL);
		if (rc < 0) {
			if (strncmp(c->err, "out of memory", 13) == 0)
				return -1;
			note_failure(c, order[i].m);
		}
	}
	h->all_new = false;
	c->new_maps = 0;
	kl_frame_end(&c->telem);
	kl_frame_end(&c->flows);
	kl_harvest_end(h);
	c->read_ns = mono_ns() - t0;
	return (int64_t)tick;
}
