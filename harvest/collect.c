/* SPDX-License-Identifier: MPL-2.0 */
/* Telemetry map access for the harvest: pins, batch reads, one tick. */
#include "harvest/collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

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
	[KL_SM_SRC4] = { KL_MAP_SRC4, 4, sizeof(struct kl_src_slot), BPF_MAP_TYPE_ARRAY, true },
	[KL_SM_SRC6] = { KL_MAP_SRC6, 4, sizeof(struct kl_src_slot), BPF_MAP_TYPE_ARRAY, true },
	[KL_SM_FLOW4] = { KL_MAP_FLOW4, 4, sizeof(struct kl_flow_slot), BPF_MAP_TYPE_ARRAY, false },
	[KL_SM_FLOW6] = { KL_MAP_FLOW6, 4, sizeof(struct kl_flow_slot), BPF_MAP_TYPE_ARRAY, false },
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

/* The source and flow slot arrays (the totals are a PERCPU_ARRAY). */
static bool is_slots(enum kl_smap m)
{
	return descs[m].type == BPF_MAP_TYPE_ARRAY;
}

static int open_pin(const char *dir, enum kl_smap which, uint32_t *id, char *err, size_t errlen)
{
	/* The slot arrays are mmap'ed, which takes a read-write fd; the
	 * enforcer froze them, so the kernel refuses every write through it
	 * all the same. Everything else is opened read-only. */
	LIBBPF_OPTS(bpf_obj_get_opts, oo, .file_flags = is_slots(which) ? 0 : BPF_F_RDONLY);
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
				       "sensor's group and chmod 0640 (0660 for the source and flow slot "
				       "arrays), and the directory 0750)"
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
	/* Only the slot arrays are read by batch or entry: u32 keys, the
	 * source slot the largest value. */
	size_t vmax = sizeof(struct kl_src_slot), kmax = sizeof(uint32_t);

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

static void slots_unmap(struct kl_collector *c, enum kl_smap i)
{
	if (c->mm[i].base != NULL)
		munmap(c->mm[i].base, c->mm[i].len);
	memset(&c->mm[i], 0, sizeof(c->mm[i]));
}

void kl_collector_free(struct kl_collector *c)
{
	for (int i = 0; i < KL_SM_MAX; i++)
		slots_unmap(c, (enum kl_smap)i);
	free(c->keys);
	free(c->vals);
	free(c->percpu);
	kl_frame_free(&c->telem);
	kl_frame_free(&c->flows);
	c->keys = c->vals = c->percpu = NULL;
}

typedef int (*entry_fn)(void *ctx, const uint8_t *key, const uint8_t *val);

/* Every entry of a map, in batches or one by one. */
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
			snprintf(c->err, sizeof(c->err), "%s: lookup: %s", what, strerror(errno));
			return -1;
		}
		if (fn(ctx, k, v) < 0)
			return -1;
	}
}

/* One slot array's walk: the map, its family, and how a whole copy of
 * one of its slots is fed to the harvest. */
struct slot_walk {
	struct kl_collector *c;
	struct kl_harvest *h;
	struct kl_frame *f;
	enum kl_smap m;
	uint8_t family;
	/* Feed a claimed slot (a whole copy) of any family; 0 or -1. */
	int (*feed)(struct slot_walk *w, uint32_t slot, const void *copy);
	uint64_t *torn; /* the harvest's counter of slots caught mid-claim */
	union {         /* the copy: aligned, unlike the batch buffer */
		struct kl_src_slot src;
		struct kl_flow_slot flow;
	} buf;
};

static int oom(struct slot_walk *w)
{
	snprintf(w->c->err, sizeof(w->c->err), "out of memory building a frame");
	return -1;
}

static int feed_src(struct slot_walk *w, uint32_t slot, const void *copy)
{
	const struct kl_src_slot *sl = copy;
	struct kl_src_rate r;

	if (sl->family != w->family)
		return 0;
	if (kl_harvest_slot(w->h, slot, sl, &r) && w->f != NULL && kl_frame_add_src(w->f, &r) < 0)
		return oom(w);
	return 0;
}

/* Flows are known by their key, not their slot: a flow robbed and
 * claimed again elsewhere is the same flow with a new first_seen. */
static int feed_flow(struct slot_walk *w, uint32_t slot, const void *copy)
{
	const struct kl_flow_slot *sl = copy;
	struct kl_flow_rec r;

	(void)slot;
	if (sl->family != w->family)
		return 0;
	if (kl_harvest_flow(w->h, sl->family, sl->src, sl->port, sl->proto, &sl->s, &r) &&
	    w->f != NULL && kl_frame_add_flow(w->f, &r) < 0)
		return oom(w);
	return 0;
}

/* Batch path: each value is one syscall's copy of a slot, so only a slot
 * caught mid-claim (odd seq) can be told apart; skip it. */
static int on_slot(void *p, const uint8_t *key, const uint8_t *val)
{
	struct slot_walk *w = p;
	uint32_t slot, seq;

	memcpy(&slot, key, 4);
	memcpy(&seq, val, 4);
	if (seq == 0)
		return 0;
	if (seq & 1) {
		(*w->torn)++;
		return 0;
	}
	memcpy(&w->buf, val, descs[w->m].value_size);
	return w->feed(w, slot, &w->buf);
}

bool kl_seq_copy(const void *slot, void *out, size_t size)
{
	const uint32_t *seq = slot;
	uint32_t q1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE), q2, copied;

	if (q1 == 0 || (q1 & 1))
		return false;
	memcpy(out, slot, size);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	q2 = __atomic_load_n(seq, __ATOMIC_RELAXED);
	memcpy(&copied, out, sizeof(copied));
	return q1 == q2 && copied == q1;
}

/* Map (or keep) slot array m read-only. The mapping follows the fd's map
 * id, so a re-acquired map (enforcer restart) is unmapped and the new one
 * mapped, and the harvest forgets the old source slots (flows are known
 * by key: nothing to forget). 1 when mapped, 0 when mmap is refused or
 * not wanted (read with batch lookups instead), -1 on error. */
static int slots_map(struct kl_collector *c, enum kl_smap m, int fd, uint8_t family,
		     struct kl_harvest *h)
{
	const struct smap_desc *d = &descs[m];
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		snprintf(c->err, sizeof(c->err), "%s: map info: %s", d->name, strerror(errno));
		return -1;
	}
	if (c->mm[m].id == info.id && c->mm[m].n == info.max_entries)
		return c->mm[m].base != NULL;
	slots_unmap(c, m);
	if ((m == KL_SM_SRC4 || m == KL_SM_SRC6) &&
	    kl_harvest_slots(h, family, info.max_entries) < 0) {
		snprintf(c->err, sizeof(c->err), "out of memory for %u slots", info.max_entries);
		return -1;
	}
	c->mm[m].id = info.id;
	c->mm[m].n = info.max_entries;
	if (info.value_size != d->value_size || !(info.map_flags & BPF_F_MMAPABLE) ||
	    c->mode != KL_READ_BATCH)
		return 0;
	size_t bytes = (size_t)info.max_entries * d->value_size;
	void *p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		kl_warn("%s: cannot map it read-only (%s); reading it with batch lookups", d->name,
			strerror(errno));
		return 0;
	}
	c->mm[m].base = p;
	c->mm[m].len = bytes;
	kl_info("mapped %s read-only: map id %u, %u slots", d->name, info.id, info.max_entries);
	return 1;
}

/* Every claimed slot of array w->m through w->feed: from the read-only
 * mapping, each slot copied under its seqlock, else by batch or entry
 * lookups. */
static int collect_slots(struct slot_walk *w, int fd)
{
	struct kl_collector *c = w->c;
	size_t size = descs[w->m].value_size;
	int rc = slots_map(c, w->m, fd, w->family, w->h);

	if (rc < 0)
		return -1;
	if (rc == 0)
		return read_map(c, fd, descs[w->m].name, 4, size, on_slot, w);
	const uint8_t *base = c->mm[w->m].base;
	for (uint32_t k = 0; k < c->mm[w->m].n; k++) {
		const uint32_t *seq = (const uint32_t *)(base + (size_t)k * size);

		/* A plain read first: most slots of a sized-for-the-worst
		 * table are free. */
		if (*seq == 0)
			continue;
		if (!kl_seq_copy(seq, &w->buf, size)) {
			if (__atomic_load_n(seq, __ATOMIC_RELAXED) != 0)
				(*w->torn)++;
			continue;
		}
		if (w->feed(w, k, &w->buf) < 0)
			return -1;
	}
	return 0;
}

int kl_collect_src(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		   struct kl_frame *f)
{
	struct slot_walk w = { .c = c, .h = h, .f = f, .family = family, .feed = feed_src,
			       .m = family == 4 ? KL_SM_SRC4 : KL_SM_SRC6, .torn = &h->st.src_torn };

	return collect_slots(&w, fd);
}

int kl_collect_flows(struct kl_collector *c, int fd, uint8_t family, struct kl_harvest *h,
		     struct kl_frame *f)
{
	struct slot_walk w = { .c = c, .h = h, .f = f, .family = family, .feed = feed_flow,
			       .m = family == 4 ? KL_SM_FLOW4 : KL_SM_FLOW6,
			       .torn = &h->st.flow_torn };

	return collect_slots(&w, fd);
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
	if (c->frame_records > 0 && c->frame_records < c->telem.max_records)
		c->telem.max_records = c->frame_records;
	if (c->frame_records > 0 && c->frame_records < c->flows.max_records)
		c->flows.max_records = c->frame_records;

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
