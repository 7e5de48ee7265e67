/* SPDX-License-Identifier: MPL-2.0 */
/*
 * bench_harvest: the sensor's work per tick for 10k, 128k and 1M sources,
 * with batch lookups next to a get_next_key loop in the same run, and the
 * frame's way to a receiver process over nng ipc:// (received and
 * decoded there, acknowledged through a pipe).
 *
 * The source table as the shield keeps it now (bpf/shield.h "Source
 * slots"): a private BPF_F_MMAPABLE array of kl_src_slot sized like the
 * enforcer does (the power of two >= 2N), the N sources spread over it,
 * written through a writable mapping of this (unfrozen) test copy, then
 * harvested by kl_collect_tick through its read-only mapping: the sensor's
 * code path. Next to it, in the same run, the old layout as the baseline:
 * an LRU hash (key u32, value kl_src_stats) filled with
 * bpf_map_update_batch and harvested by address (kl_harvest_src) after
 * batch lookups or a get_next_key loop. Between ticks every source's
 * counters move (the worst case: every source has a delta and is
 * encoded), so a tick = read all + delta all + encode all. Tick 0 (the
 * baseline) is not timed. The receiver is forked before any nng call (nng is not
 * fork-safe). Goal: 1M sources harvested and delivered in 300 ms (median of
 * the timed ticks, 5 by default). A tick larger than one frame goes as
 * several frames, which the receiver puts back together (ipc/tickasm.h);
 * --frame-records N lowers the records per frame to show that at any size.
 *
 *   bench_harvest [--sizes 10000,131072,1048576] [--ticks N] [--frame-records N]
 *
 * Needs root (BPF maps); exits 77 otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "ipc/frames.h"
#include "ipc/stream.h"
#include "ipc/tickasm.h"
#include "harvest/collect.h"
#include "harvest/harvest.h"

#define S 1000000000ull

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static uint64_t boot(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return (double)v[n / 2] / 1e6;
}

/* Receiver: put each tick together from its frames as the decider does,
 * report its record count through the pipe. */
static void receiver(const char *path, int ack)
{
	struct kl_tickasm ta;
	struct kl_stream_opts o = { .path = path, .self = KL_ROLE_DECIDER,
				    .peer_role = KL_ROLE_SENSOR, .gid = (gid_t)-1,
				    .allowed_gid = (gid_t)-1 };
	struct kl_stream_rx *r;
	char err[256];

	if (kl_stream_listen(&r, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "receiver: %s\n", err);
		_exit(1);
	}
	kl_tickasm_init(&ta, KL_MSG_TELEMETRY, kl_telem_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
	for (;;) {
		struct kl_stream_msg m;
		uint64_t a[2]; /* tick, records (UINT64_MAX: refused) */
		if (kl_stream_recv(r, &m, -1) != 1)
			_exit(0);
		int rc = kl_tickasm_feed(&ta, &m.msg, err, sizeof(err));
		a[0] = m.msg.hdr.tick;
		a[1] = rc == KL_TICKASM_TICK ? kl_tickasm_records(&ta) : UINT64_MAX;
		kl_stream_msg_done(&m);
		if (rc == KL_TICKASM_MORE)
			continue;
		if (write(ack, a, sizeof(a)) != sizeof(a))
			_exit(0);
	}
}

struct filler {
	uint32_t *keys;
	struct kl_src_stats *vals;
	uint32_t n;
};

/* Set every source's counters to the values of round `round`. */
static int fill(int fd, struct filler *f, uint64_t round, uint64_t first)
{
	for (uint32_t i = 0; i < f->n; i++) {
		f->keys[i] = i + 1;
		memset(&f->vals[i], 0, sizeof(f->vals[i]));
		f->vals[i].pkts = 1000 + round * (1 + i % 7);
		f->vals[i].bytes = f->vals[i].pkts * 100;
		f->vals[i].syn = round;
		f->vals[i].ports_distinct = round / 2;
		f->vals[i].first_seen_ns = first;
	}
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	for (uint32_t done = 0; done < f->n;) {
		uint32_t cnt = f->n - done > 65536 ? 65536 : f->n - done;
		if (bpf_map_update_batch(fd, f->keys + done, f->vals + done, &cnt, &bo) < 0) {
			fprintf(stderr, "bench_harvest: update_batch: %s\n", strerror(errno));
			return -1;
		}
		done += cnt;
	}
	return 0;
}

/* Only the syscalls: every entry read in 4096-entry batches, nothing done with it. */
static uint64_t raw_batch_read(int fd, uint32_t n)
{
	uint32_t *keys = malloc(4096 * 4);
	struct kl_src_stats *vals = malloc(4096 * sizeof(*vals));
	uint64_t in = 0, out = 0, got = 0, t0 = mono();
	LIBBPF_OPTS(bpf_map_batch_opts, bo);

	for (int first = 1;; first = 0) {
		uint32_t cnt = 4096;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &cnt, &bo);
		got += cnt;
		if (rc < 0)
			break;
		in = out;
	}
	uint64_t t = mono() - t0;
	if (got != n)
		fprintf(stderr, "bench_harvest: raw read saw %llu of %u\n", (unsigned long long)got, n);
	free(keys);
	free(vals);
	return t;
}

struct result {
	double read_ms, total_ms, send_ms, delivered_ms;
	uint64_t records, truncated, frames;
	size_t frame_bytes;
};

/* ---- old layout: LRU hash by address (baseline) ---- */

struct old_ctx {
	struct kl_harvest *h;
	struct kl_frame *f;
};

static int old_tick(int fd, enum kl_read_mode mode, struct kl_harvest *h, struct kl_frame *f,
		    uint32_t n, uint64_t seq)
{
	struct kl_telem_hdr th;
	struct kl_src_rate r;
	uint32_t *keys = malloc(4096 * 4);
	struct kl_src_stats *vals = malloc(4096 * sizeof(*vals));
	uint64_t tick = kl_harvest_begin(h, boot(), S);
	int rc = 0;

	memset(&th, 0, sizeof(th));
	th.tick = tick;
	th.elapsed_ns = S;
	th.n_totals = KL_T_MAX;
	if (!keys || !vals || kl_frame_begin_telem(f, seq, &th) < 0)
		return -1;
	if (mode == KL_READ_BATCH) {
		uint64_t in = 0, out = 0;
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		for (int first = 1;; first = 0) {
			uint32_t cnt = 4096;
			int e = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &cnt, &bo);
			for (uint32_t i = 0; i < cnt; i++)
				if (kl_harvest_src(h, 4, (const uint8_t *)&keys[i], &vals[i], &r) &&
				    tick > 0 && kl_frame_add_src(f, &r) < 0)
					rc = -1;
			if (e < 0)
				break;
			in = out;
		}
	} else {
		uint32_t k = 0, nk;
		for (int first = 1; bpf_map_get_next_key(fd, first ? NULL : &k, &nk) == 0; first = 0) {
			k = nk;
			if (bpf_map_lookup_elem(fd, &k, &vals[0]) < 0)
				continue;
			if (kl_harvest_src(h, 4, (const uint8_t *)&k, &vals[0], &r) && tick > 0 &&
			    kl_frame_add_src(f, &r) < 0)
				rc = -1;
		}
	}
	kl_frame_end(f);
	kl_harvest_end(h);
	if (h->st.src_seen != n)
		fprintf(stderr, "bench_harvest: old layout saw %llu of %u\n",
			(unsigned long long)h->st.src_seen, n);
	free(keys);
	free(vals);
	return rc;
}

static int run_old(int fd, struct filler *f, enum kl_read_mode mode, int ticks,
		   struct result *res)
{
	struct kl_harvest h;
	struct kl_frame fr;
	uint64_t first = boot() - S, t_tick[16];
	int ok = 0;

	memset(&fr, 0, sizeof(fr));
	if (kl_harvest_init(&h, 600 * S, f->n, 0) < 0 || kl_frame_reserve(&fr, f->n) < 0)
		return -1;
	if (fill(fd, f, 0, first) < 0 || old_tick(fd, mode, &h, &fr, f->n, 0) < 0)
		return -1;
	for (int t = 0; t < ticks; t++) {
		if (fill(fd, f, (uint64_t)t + 1, first) < 0)
			return -1;
		uint64_t t0 = mono();
		if (old_tick(fd, mode, &h, &fr, f->n, (uint64_t)t + 1) < 0)
			return -1;
		t_tick[t] = mono() - t0;
		ok++;
	}
	res->read_ms = mode == KL_READ_BATCH ? (double)raw_batch_read(fd, f->n) / 1e6 : 0;
	res->total_ms = median_ms(t_tick, ok);
	res->records = fr.n;
	kl_harvest_free(&h);
	kl_frame_free(&fr);
	return 0;
}

/* ---- new layout: slot array, read through a read-only mapping ---- */

struct slots {
	int fd;
	uint32_t nslots, n;
	struct kl_src_slot *w; /* writable mapping of the unfrozen test copy */
};

static uint32_t slots_for(uint32_t n)
{
	uint32_t s = 64;
	while (s < 2 * n)
		s <<= 1;
	return s;
}

static int slots_new(struct slots *sl, uint32_t n)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_MMAPABLE);

	sl->n = n;
	sl->nslots = slots_for(n);
	sl->fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct kl_src_slot),
				sl->nslots, &o);
	if (sl->fd < 0)
		return -1;
	sl->w = mmap(NULL, (size_t)sl->nslots * sizeof(*sl->w), PROT_READ | PROT_WRITE,
		     MAP_SHARED, sl->fd, 0);
	return sl->w == MAP_FAILED ? -1 : 0;
}

static void slots_free(struct slots *sl)
{
	munmap(sl->w, (size_t)sl->nslots * sizeof(*sl->w));
	close(sl->fd);
}

/* Source i in slot i * nslots / n: spread like a hash would, the rest free. */
static void slots_fill(struct slots *sl, uint64_t round, uint64_t first)
{
	for (uint32_t i = 0; i < sl->n; i++) {
		struct kl_src_slot *v = &sl->w[(uint64_t)i * sl->nslots / sl->n];
		uint32_t a = i + 1;
		v->seq = 2;
		v->family = 4;
		memcpy(v->owner, &a, 4);
		memset(&v->s, 0, sizeof(v->s));
		v->s.pkts = 1000 + round * (1 + i % 7);
		v->s.bytes = v->s.pkts * 100;
		v->s.syn = round;
		v->s.ports_distinct = round / 2;
		v->s.first_seen_ns = first;
	}
}


/* Send a tick's frames until the receiver acknowledges that tick whole.
 * Until the receiver is connected, or when a frame was lost, there is no
 * acknowledgement: the tick goes again from its frame 0 (the receiver
 * drops the partial one). *t1 is moved past failed sends. */
static int deliver(struct kl_stream_tx *tx, int ack, const struct kl_frame *f, uint64_t tick,
		   uint64_t *t1)
{
	for (int tries = 0; tries < 200; tries++) {
		if (kl_stream_send_tick(tx, f) != 0) {
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
			*t1 = mono();
			continue;
		}
		for (;;) {
			struct pollfd pfd = { .fd = ack, .events = POLLIN };
			uint64_t a[2];
			if (poll(&pfd, 1, 5000) <= 0)
				break;
			if (read(ack, a, sizeof(a)) != sizeof(a))
				return -1;
			if (a[0] == tick) {
				if (a[1] == f->n)
					return 0;
				fprintf(stderr, "bench_harvest: receiver got %llu records, sent %u\n",
					(unsigned long long)a[1], f->n);
				return -1;
			}
		}
		fprintf(stderr, "bench_harvest: tick %llu not acknowledged in 5 s; sending it again\n",
			(unsigned long long)tick);
	}
	return -1;
}

/* Baseline + ticks timed ticks over the slot array; optional send. */
static uint32_t frame_records; /* --frame-records: 0 = as many as fit */

static int run(struct slots *sl, int ticks, struct kl_stream_tx *tx, int ack,
	       struct result *res)
{
	enum kl_read_mode mode = KL_READ_BATCH; /* mmap'ed */
	int fd = sl->fd;
	uint32_t n = sl->n;
	struct kl_collector c;
	struct kl_harvest h;
	int fds[KL_SM_MAX] = { -1, -1, -1, -1, -1 };
	uint64_t first = boot() - S, t_tick[16], t_read[16], t_send[16], t_both[16];
	int ok = 0;

	fds[KL_SM_SRC4] = fd;
	if (kl_collector_init(&c, mode) < 0 || kl_harvest_init(&h, 600 * S, 1024, 0) < 0)
		return -1;
	c.frame_records = frame_records;
	if (kl_frame_reserve(&c.telem, n) < 0)
		return -1;
	slots_fill(sl, 0, first);
	if (kl_collect_tick(&c, fds, &h, boot(), S, 0, 0, 0) != 0)
		return -1;
	if (c.mm[0].base == NULL) {
		fprintf(stderr, "bench_harvest: the collector did not map the slots\n");
		return -1;
	}
	for (int t = 0; t < ticks; t++) {
		slots_fill(sl, (uint64_t)t + 1, first);
		uint64_t t0 = mono();
		if (kl_collect_tick(&c, fds, &h, boot(), S, 0, (uint64_t)t + 1, 0) < 0 || c.failed) {
			fprintf(stderr, "bench_harvest: %s\n", c.why);
			return -1;
		}
		t_tick[t] = mono() - t0;
		if (h.st.src_seen != n)
			fprintf(stderr, "bench_harvest: slots: saw %llu of %u\n",
				(unsigned long long)h.st.src_seen, n);
		/* Read only: the seq word of every slot plus a copy of each
		 * claimed one, as the collector does. */
		{
			const struct kl_src_slot *ro = c.mm[0].base;
			uint64_t r0 = mono(), sum = 0;
			for (uint32_t k = 0; k < c.mm[0].n; k++) {
				struct kl_src_slot cp;
				if (ro[k].seq != 0 && kl_slot_copy(&ro[k], &cp))
					sum += cp.s.pkts;
			}
			t_read[t] = mono() - r0;
			if (sum == 0)
				fprintf(stderr, "bench_harvest: nothing read\n");
		}
		uint64_t t1 = mono(); /* the send is timed alone */
		t_send[t] = 0;
		if (tx != NULL) {
			if (deliver(tx, ack, &c.telem, (uint64_t)t + 1, &t1) < 0)
				return -1;
			t_send[t] = mono() - t1;
		}
		t_both[t] = t_tick[t] + t_send[t];
		ok++;
	}
	res->read_ms = median_ms(t_read, ok);
	res->total_ms = median_ms(t_tick, ok);
	res->send_ms = tx ? median_ms(t_send, ok) : 0;
	res->delivered_ms = median_ms(t_both, ok);
	res->records = c.telem.n;
	/* Every source has a delta: anything not in the frames was cut. */
	res->truncated = h.st.src_active - c.telem.n;
	res->frames = c.telem.nmsg;
	res->frame_bytes = c.telem.len;
	kl_harvest_free(&h);
	kl_collector_free(&c);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t sizes[8] = { 10000, 131072, 1048576 };
	int nsizes = 3, ticks = 5;
	char dir[64], path[128];
	int p[2];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ticks") == 0 && i + 1 < argc) {
			ticks = atoi(argv[++i]);
			if (ticks < 1 || ticks > 16)
				ticks = 5;
		} else if (strcmp(argv[i], "--frame-records") == 0 && i + 1 < argc) {
			frame_records = (uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
			nsizes = 0;
			for (char *t = strtok(argv[++i], ","); t && nsizes < 8; t = strtok(NULL, ","))
				sizes[nsizes++] = (uint32_t)strtoul(t, NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_harvest [--sizes N,N,...] [--ticks N] "
					"[--frame-records N]\n");
			return 2;
		}
	}
	kl_log_init("bench_harvest", KL_LOG_ERROR);
	if (geteuid() != 0) {
		fprintf(stderr, "bench_harvest: needs root (BPF maps)\n");
		return 77;
	}
	snprintf(dir, sizeof(dir), "/tmp/klh5-bench.XXXXXX");
	if (mkdtemp(dir) == NULL || pipe(p) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/telemetry.sock", dir);
	pid_t pid = fork(); /* before any nng call */
	if (pid == 0) {
		close(p[0]);
		receiver(path, p[1]);
	}
	close(p[1]);

	struct kl_stream_tx *tx;
	char err[256];
	if (kl_stream_dial(&tx, path, KL_ROLE_SENSOR, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_harvest: %s\n", err);
		return 1;
	}
	printf("Sensor harvest per tick, N IPv4 sources, every source with a delta (read + delta +\n"
	       "encode), median of %d ticks. slots = the source slot array (2N rounded up to a power\n"
	       "of two, 256 B each) read through the collector's read-only mapping; old LRU = the\n"
	       "previous layout (LRU hash by address), batch lookups or get_next_key, same harvest\n"
	       "by address. \"to receiver\" = kl_stream_send of the tick's frames until a receiver\n"
	       "process has received, decoded and put the tick back together (nng ipc://). A frame\n"
	       "holds at most %u records; a larger tick goes as several frames. truncated =\n"
	       "sources with a delta that are in no frame (must be 0). delivered = tick + send,\n"
	       "median per tick.\n\n",
	       ticks, frame_records ? frame_records : (unsigned)KL_TELEM_MAX_RECORDS);
	printf("| sources | slots | slots: read only ms | slots: read+delta+encode ms | old LRU batch: read only ms | old LRU batch: read+delta+encode ms | old LRU get_next_key: read+delta+encode ms | speedup vs old batch | tick MB | records in tick | frames | truncated | to receiver ms | slots tick + send (delivered) ms |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	int rc = 0;
	for (int s = 0; s < nsizes; s++) {
		uint32_t n = sizes[s];
		/* LRU maps evict before they are full (per-CPU free lists): size
		 * them with headroom so all n sources stay. */
		int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, NULL, 4, sizeof(struct kl_src_stats),
					n + n / 4, NULL);
		struct filler f = { malloc((size_t)n * 4), malloc((size_t)n * sizeof(struct kl_src_stats)),
				    n };
		struct result rs, rb, ri;
		struct slots sl;
		if (fd < 0 || !f.keys || !f.vals || slots_new(&sl, n) < 0) {
			fprintf(stderr, "bench_harvest: maps of %u: %s\n", n, strerror(errno));
			rc = 1;
			break;
		}
		if (run(&sl, ticks, tx, p[0], &rs) < 0 ||
		    run_old(fd, &f, KL_READ_BATCH, ticks, &rb) < 0 ||
		    run_old(fd, &f, KL_READ_ITER, n > 200000 ? 1 : ticks, &ri) < 0) {
			rc = 1;
			break;
		}
		printf("| %u | %u | %.1f | %.1f | %.1f | %.1f | %.1f | %.1fx | %.1f | %llu | %llu | %llu | %.1f | %.1f |\n",
		       n, sl.nslots, rs.read_ms, rs.total_ms, rb.read_ms, rb.total_ms, ri.total_ms,
		       rb.total_ms / rs.total_ms, (double)rs.frame_bytes / 1048576.0,
		       (unsigned long long)rs.records, (unsigned long long)rs.frames,
		       (unsigned long long)rs.truncated, rs.send_ms, rs.delivered_ms);
		fflush(stdout);
		slots_free(&sl);
		close(fd);
		free(f.keys);
		free(f.vals);
	}
	kl_stream_tx_close(tx);
	close(p[0]);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(dir);
	return rc;
}
