/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Telemetry frames as ticks: the conversion live mode uses for frames off
 * the wire, and the replay input for binary traces written by
 * `kl-sensor --record` (the same wire messages behind a file header).
 * A binary trace replays on the clock of its frames (t_ns), so a recorded
 * incident gives the decisions the live decider made, tick for tick.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/safefile.h"
#include "decider/io.h"
#include "ipc/tickasm.h"
#include "ipc/trace.h"
#include "common/grow.h"

size_t dec_metrics_from_telem(const struct kl_telem_view *v, struct dec_metrics *out)
{
	size_t n = 0;

	for (size_t i = 0; i < v->h.n_records; i++) {
		struct kl_src_rate r;
		struct dec_metrics *m = &out[n];

		kl_telem_record(v, i, &r);
		memset(&m->addr, 0, sizeof(m->addr));
		m->addr.family = r.family;
		m->addr.prefixlen = r.family == 4 ? 32 : 128;
		memcpy(m->addr.addr, r.addr, r.family == 4 ? 4 : 16);
		m->pps = r.r[KL_R_PPS];
		m->bps = r.r[KL_R_BPS];
		m->syn = r.r[KL_R_SYN];
		m->scan = r.r[KL_R_SCAN];
		m->droprl = r.r[KL_R_DROP_RL];
		n++;
	}
	return n;
}

int64_t dec_frame_tick_ms(uint64_t t_ns, int64_t prev_t_ms)
{
	int64_t t = (int64_t)(t_ns / 1000000u);

	if (prev_t_ms != DEC_T_NEVER && t <= prev_t_ms)
		t = prev_t_ms + 1;
	return t;
}

struct ktrace {
	struct dec_input in;
	struct kl_trace_reader *r;
	char *name;
	int64_t prev_t;
	uint64_t skipped;
	struct kl_tickasm tasm;
	struct dec_metrics *src;
	size_t src_cap;
	uint64_t totals[KL_TELEM_MAX_TOTALS];
	char where[320];
};

static int kt_next(struct dec_input *in, struct dec_tick *t, struct kl_errs *errs)
{
	struct ktrace *k = (struct ktrace *)in;
	char err[512];

	memset(t, 0, sizeof(*t));
	for (;;) {
		const uint8_t *buf;
		size_t len;
		struct kl_msg msg;
		int rc = kl_trace_next(k->r, &buf, &len, err, sizeof(err));

		if (rc == KL_TRACE_EOF)
			return 0;
		if (rc == KL_TRACE_TORN) {
			/* A recording cut by a crash or copied while written. */
			kl_warn("%s: %s; replaying the %llu whole ticks before it", k->name, err,
				(unsigned long long)k->tasm.st.ticks);
			return 0;
		}
		if (rc != KL_TRACE_REC) {
			kl_errs_add(errs, "%s: %s", k->name, err);
			return -1;
		}
		unsigned long long off = (unsigned long long)kl_trace_offset(k->r);
		if (kl_msg_decode(buf, len, &msg, err, sizeof(err)) < 0) {
			kl_errs_add(errs, "%s: record at offset %llu: %s", k->name, off, err);
			return -1;
		}
		if (msg.hdr.type != KL_MSG_TELEMETRY) {
			k->skipped++;
			continue;
		}
		rc = kl_tickasm_feed(&k->tasm, &msg, err, sizeof(err));
		if (k->tasm.note[0] != '\0')
			kl_warn("%s: record at offset %llu: %s", k->name, off, k->tasm.note);
		if (rc == KL_TICKASM_MORE)
			continue;
		if (rc != KL_TICKASM_TICK) {
			kl_errs_add(errs, "%s: record at offset %llu: %s", k->name, off, err);
			return -1;
		}
		const struct kl_telem_view *v = &k->tasm.telem;
		struct dec_metrics *src = kl_grow_to(k->src, v->h.n_records, &k->src_cap,
						    sizeof(*src), 64);
		if (src == NULL) {
			kl_errs_add(errs, "%s: out of memory for %u sources", k->name, v->h.n_records);
			return -1;
		}
		k->src = src;
		int64_t tms = dec_frame_tick_ms(v->h.t_ns, k->prev_t);
		if (k->prev_t != DEC_T_NEVER && (int64_t)(v->h.t_ns / 1000000u) <= k->prev_t)
			kl_warn("%s: frame at offset %llu (tick %llu) is not later than the one "
				"before; using t=%lld ms",
				k->name, off, (unsigned long long)v->h.tick, (long long)tms);
		snprintf(k->where, sizeof(k->where), "%s@%llu", k->name, off);
		memcpy(k->totals, v->h.totals, sizeof(k->totals));
		t->t_ms = tms;
		t->elapsed_ms = (int64_t)(v->h.elapsed_ns / 1000000u);
		t->src = k->src;
		t->nsrc = dec_metrics_from_telem(v, k->src);
		t->totals = k->totals;
		t->ntotals = v->h.n_totals;
		t->where = k->where;
		k->prev_t = tms;
		return 1;
	}
}

static void kt_close(struct dec_input *in)
{
	struct ktrace *k = (struct ktrace *)in;

	if (k == NULL)
		return;
	if (k->skipped > 0)
		kl_debug("%s: %llu telemetry frames, %llu other frames skipped", k->name,
			 (unsigned long long)k->tasm.st.frames, (unsigned long long)k->skipped);
	kl_trace_close_read(k->r);
	kl_tickasm_free(&k->tasm);
	free(k->src);
	free(k->name);
	free(k);
}

static struct dec_input *ktrace_new(struct kl_trace_reader *r, const char *name,
				   struct kl_errs *errs)
{
	struct ktrace *k = calloc(1, sizeof(*k));

	if (k == NULL || (k->name = strdup(name)) == NULL) {
		free(k);
		kl_trace_close_read(r);
		kl_errs_add(errs, "%s: out of memory", name);
		return NULL;
	}
	k->in.next = kt_next;
	k->in.close = kt_close;
	k->prev_t = DEC_T_NEVER;
	k->r = r;
	kl_tickasm_init(&k->tasm, KL_MSG_TELEMETRY, kl_telem_tick_max(KL_TICKASM_REPLAY_MAX_SRC));
	return &k->in;
}

struct dec_input *dec_input_ktrace_open(const char *path, struct kl_errs *errs)
{
	struct kl_trace_reader *r;
	char err[512];

	if (kl_trace_open_read(&r, path, err, sizeof(err)) < 0) {
		kl_errs_add(errs, "%s", err);
		return NULL;
	}
	return ktrace_new(r, strcmp(path, "-") == 0 ? "<stdin>" : path, errs);
}

struct dec_input *dec_input_ktrace_stream(FILE *f, bool own, const char *name,
					struct kl_errs *errs)
{
	struct kl_trace_reader *r;
	char err[512];

	if (kl_trace_open_stream(&r, f, own, name, err, sizeof(err)) < 0) {
		kl_errs_add(errs, "%s", err);
		return NULL;
	}
	return ktrace_new(r, name, errs);
}

struct dec_input *dec_input_open(const char *path, int64_t interval_ms, struct kl_errs *errs)
{
	bool binary;

	if (strcmp(path, "-") == 0) {
		/* One byte of look-ahead is all stdio promises to push back. */
		int c = getc(stdin);
		if (c != EOF)
			ungetc(c, stdin);
		binary = c == KL_TRACE_MAGIC[0];
	} else {
		char head[sizeof(KL_TRACE_MAGIC) - 1];
		char why[512];
		FILE *f = kl_safe_fopen_read(path, KL_SAFE_OWNED, why, sizeof(why));
		if (f == NULL) {
			kl_errs_add(errs, "%s", why);
			return NULL;
		}
		binary = fread(head, 1, sizeof(head), f) == sizeof(head) &&
			 memcmp(head, KL_TRACE_MAGIC, sizeof(head)) == 0;
		fclose(f);
	}
	return binary ? dec_input_ktrace_open(path, errs)
		      : dec_input_jsonl_open(path, interval_ms, errs);
}
