/* SPDX-License-Identifier: MPL-2.0 */
/*
 * TELEMETRY and FLOWS frames. A frame may carry a million records, so the
 * field helpers compile to plain loads and stores on little-endian hosts
 * (memcpy of a fixed size) and to byte shuffles elsewhere; either way no
 * struct is copied onto the wire.
 */
#include "ipc/frames.h"
#include "common/err.h"
#include "ipc/wire.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_TCP 6
#define PROTO_UDP 17

static const char *const rate_names[KL_R_MAX] = {
	[KL_R_PPS] = "pps",
	[KL_R_BPS] = "bps",
	[KL_R_SYN] = "syn",
	[KL_R_SYNACK] = "synack",
	[KL_R_RST] = "rst",
	[KL_R_SCAN] = "scan",
	[KL_R_PASS] = "pass",
	[KL_R_DROP_ALLOW] = "drop_allow",
	[KL_R_DROP_DENY] = "drop_deny",
	[KL_R_DROP_RL] = "droprl",
	[KL_R_DROP_EDGE] = "drop_edge",
};

const char *kl_rate_name(unsigned r)
{
	return r < KL_R_MAX ? rate_names[r] : "?";
}

/* ---- encode ---- */

size_t kl_telem_payload_len(uint32_t n_totals, size_t n_records)
{
	return KL_TELEM_FIXED_LEN + 8u * (size_t)n_totals + KL_TELEM_REC_LEN * n_records;
}

size_t kl_flows_payload_len(size_t n_records)
{
	return KL_FLOWS_FIXED_LEN + KL_FLOWS_REC_LEN * n_records;
}

void kl_telem_encode_fixed(const struct kl_telem_hdr *h, uint8_t *out)
{
	uint32_t nt = h->n_totals > KL_TELEM_MAX_TOTALS ? KL_TELEM_MAX_TOTALS : h->n_totals;

	kl_put64(out + 0, h->tick);
	kl_put64(out + 8, h->t_ns);
	kl_put64(out + 16, h->elapsed_ns);
	kl_put32(out + 24, nt);
	kl_put32(out + 28, h->n_records);
	kl_put32(out + 32, h->frame);
	kl_put32(out + 36, h->last ? KL_FRAME_LAST : 0);
	for (uint32_t i = 0; i < nt; i++)
		kl_put64(out + KL_TELEM_FIXED_LEN + 8 * i, h->totals[i]);
}

/* Family, three zero bytes, the address (IPv4 zero-padded): the first 20
 * bytes of both record kinds. */
static void put_addr(uint8_t *out, uint8_t family, const uint8_t addr[16])
{
	out[0] = family;
	out[1] = out[2] = out[3] = 0;
	if (family == 4) {
		memcpy(out + 4, addr, 4);
		memset(out + 8, 0, 12);
	} else {
		memcpy(out + 4, addr, 16);
	}
}

void kl_telem_encode_record(const struct kl_src_rate *r, uint8_t *out)
{
	put_addr(out, r->family, r->addr);
	for (int i = 0; i < KL_R_MAX; i++)
		kl_putf64(out + 20 + 8 * i, r->r[i]);
}

void kl_flows_encode_fixed(const struct kl_flows_hdr *h, uint8_t *out)
{
	kl_put64(out + 0, h->tick);
	kl_put64(out + 8, h->t_ns);
	kl_put64(out + 16, h->elapsed_ns);
	kl_put32(out + 24, h->n_records);
	kl_put32(out + 28, 0);
	kl_put32(out + 32, h->frame);
	kl_put32(out + 36, h->last ? KL_FRAME_LAST : 0);
}

void kl_flows_encode_record(const struct kl_flow_rec *r, uint8_t *out)
{
	put_addr(out, r->family, r->addr);
	kl_put16(out + 20, r->port);
	out[22] = r->proto;
	out[23] = r->flags;
	kl_put64(out + 24, r->pkts);
	kl_put64(out + 32, r->bytes);
}

/* ---- decode ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

/* Frame index and flags at offsets 32 and 36 of both payloads. */
static int check_frame(const uint8_t *p, const char *what, uint32_t *frame, bool *last,
		       char *err, size_t errlen)
{
	uint32_t fl = kl_get32(p + 36);

	if ((fl & ~KL_FRAME_F_ALL) != 0)
		return kl_fail(err, errlen, "%s: unknown frame_flags 0x%x", what, fl);
	*frame = kl_get32(p + 32);
	*last = (fl & KL_FRAME_LAST) != 0;
	return 0;
}

/* Family byte, the three pad bytes and the unused tail of an IPv4 address. */
static int check_addr(const uint8_t *rec, const char *what, size_t i, char *err, size_t errlen)
{
	if (rec[0] != 4 && rec[0] != 6)
		return kl_fail(err, errlen, "%s record %zu: family is %u, want 4 or 6", what, i, rec[0]);
	if (!all_zero(rec + 1, 3))
		return kl_fail(err, errlen, "%s record %zu: padding after family is not zero", what, i);
	if (rec[0] == 4 && !all_zero(rec + 8, 12))
		return kl_fail(err, errlen, "%s record %zu: IPv4 address has non-zero bytes 4..15",
			    what, i);
	return 0;
}

int kl_telem_decode(const uint8_t *p, size_t len, struct kl_telem_view *v, char *err,
		    size_t errlen)
{
	uint32_t nt, nr, frame = 0;
	bool last = false;
	size_t want;

	memset(&v->h, 0, sizeof(v->h));
	v->records = NULL;
	if (p == NULL || len < KL_TELEM_FIXED_LEN)
		return kl_fail(err, errlen, "TELEMETRY: %zu bytes, the fixed part alone is %d",
			    p == NULL ? (size_t)0 : len, KL_TELEM_FIXED_LEN);
	nt = kl_get32(p + 24);
	nr = kl_get32(p + 28);
	if (nt > KL_TELEM_MAX_TOTALS)
		return kl_fail(err, errlen, "TELEMETRY: n_totals is %u, above %d", nt,
			    KL_TELEM_MAX_TOTALS);
	if (check_frame(p, "TELEMETRY", &frame, &last, err, errlen) < 0)
		return -1;
	/* The totals belong to the tick, not to a frame: one copy. */
	if (frame > 0 && nt != 0)
		return kl_fail(err, errlen, "TELEMETRY: frame %u carries %u totals, only frame 0 may",
			    frame, nt);
	want = kl_telem_payload_len(nt, nr);
	if (len != want)
		return kl_fail(err, errlen,
			    "TELEMETRY: %zu bytes, but n_totals %u and n_records %u need %zu", len,
			    nt, nr, want);
	const uint8_t *rec = p + KL_TELEM_FIXED_LEN + 8u * nt;
	for (uint32_t i = 0; i < nr; i++, rec += KL_TELEM_REC_LEN) {
		if (check_addr(rec, "TELEMETRY", i, err, errlen) < 0)
			return -1;
		for (int k = 0; k < KL_R_MAX; k++) {
			double d = kl_getf64(rec + 20 + 8 * k);
			/* signbit also refuses -0.0 and negative NaNs. */
			if (!isfinite(d) || signbit(d))
				return kl_fail(err, errlen,
					    "TELEMETRY record %u: field '%s' is %g, want a finite "
					    "number >= 0",
					    i, rate_names[k], d);
		}
	}
	v->h.tick = kl_get64(p + 0);
	v->h.t_ns = kl_get64(p + 8);
	v->h.elapsed_ns = kl_get64(p + 16);
	v->h.n_totals = nt;
	v->h.n_records = nr;
	v->h.frame = frame;
	v->h.last = last;
	for (uint32_t i = 0; i < nt; i++)
		v->h.totals[i] = kl_get64(p + KL_TELEM_FIXED_LEN + 8 * i);
	v->records = p + KL_TELEM_FIXED_LEN + 8u * nt;
	return 0;
}

void kl_telem_record(const struct kl_telem_view *v, size_t i, struct kl_src_rate *out)
{
	const uint8_t *rec = v->records + i * KL_TELEM_REC_LEN;

	out->family = rec[0];
	memcpy(out->addr, rec + 4, 16);
	for (int k = 0; k < KL_R_MAX; k++)
		out->r[k] = kl_getf64(rec + 20 + 8 * k);
}

int kl_flows_decode(const uint8_t *p, size_t len, struct kl_flows_view *v, char *err,
		    size_t errlen)
{
	uint32_t nr, frame = 0;
	bool last = false;
	size_t want;

	memset(&v->h, 0, sizeof(v->h));
	v->records = NULL;
	if (p == NULL || len < KL_FLOWS_FIXED_LEN)
		return kl_fail(err, errlen, "FLOWS: %zu bytes, the fixed part alone is %d",
			    p == NULL ? (size_t)0 : len, KL_FLOWS_FIXED_LEN);
	nr = kl_get32(p + 24);
	if (kl_get32(p + 28) != 0)
		return kl_fail(err, errlen, "FLOWS: reserved field is not zero");
	if (check_frame(p, "FLOWS", &frame, &last, err, errlen) < 0)
		return -1;
	want = kl_flows_payload_len(nr);
	if (len != want)
		return kl_fail(err, errlen, "FLOWS: %zu bytes, but n_records %u needs %zu", len, nr,
			    want);
	const uint8_t *rec = p + KL_FLOWS_FIXED_LEN;
	for (uint32_t i = 0; i < nr; i++, rec += KL_FLOWS_REC_LEN) {
		if (check_addr(rec, "FLOWS", i, err, errlen) < 0)
			return -1;
		uint8_t proto = rec[22];
		uint16_t port = kl_get16(rec + 20);
		if ((rec[23] & ~KL_FLOW_F_ALL) != 0)
			return kl_fail(err, errlen, "FLOWS record %u: unknown flags 0x%02x", i, rec[23]);
		if (port != 0 && proto != PROTO_TCP && proto != PROTO_UDP)
			return kl_fail(err, errlen,
				    "FLOWS record %u: port %u with protocol %u (only TCP and UDP have "
				    "ports)",
				    i, port, proto);
		if (kl_get64(rec + 24) == 0)
			return kl_fail(err, errlen, "FLOWS record %u: pkts is 0", i);
	}
	v->h.tick = kl_get64(p + 0);
	v->h.t_ns = kl_get64(p + 8);
	v->h.elapsed_ns = kl_get64(p + 16);
	v->h.n_records = nr;
	v->h.frame = frame;
	v->h.last = last;
	v->records = p + KL_FLOWS_FIXED_LEN;
	return 0;
}

void kl_flows_record(const struct kl_flows_view *v, size_t i, struct kl_flow_rec *out)
{
	const uint8_t *rec = v->records + i * KL_FLOWS_REC_LEN;

	out->family = rec[0];
	memcpy(out->addr, rec + 4, 16);
	out->port = kl_get16(rec + 20);
	out->proto = rec[22];
	out->flags = rec[23];
	out->pkts = kl_get64(rec + 24);
	out->bytes = kl_get64(rec + 32);
}

/* ---- frame builder ---- */

static int frame_grow(struct kl_frame *f, size_t need)
{
	size_t cap;
	uint8_t *b;

	if (need <= f->cap)
		return 0;
	cap = f->cap ? f->cap : 4096;
	while (cap < need)
		cap *= 2;
	b = realloc(f->buf, cap);
	if (b == NULL)
		return -1;
	f->buf = b;
	f->cap = cap;
	return 0;
}

static size_t rec_len(const struct kl_frame *f)
{
	return f->type == KL_MSG_FLOWS ? KL_FLOWS_REC_LEN : KL_TELEM_REC_LEN;
}

/* Wire header and fixed part of the message after the last one. */
static size_t fixed_len(const struct kl_frame *f, uint32_t frame)
{
	if (f->type == KL_MSG_FLOWS)
		return KL_MSG_HDR_LEN + KL_FLOWS_FIXED_LEN;
	return KL_MSG_HDR_LEN + KL_TELEM_FIXED_LEN + (frame == 0 ? 8u * f->th.n_totals : 0);
}

int kl_frame_reserve(struct kl_frame *f, size_t n)
{
	uint32_t per = f->max_records ? f->max_records : KL_TELEM_MAX_RECORDS;

	return frame_grow(f, f->len + n * rec_len(f) + (n / per + 1) * fixed_len(f, 1));
}

/* Open message number f->nmsg at f->len: wire header and fixed part, the
 * counts patched when it is closed. */
static int open_msg(struct kl_frame *f)
{
	uint32_t i = f->nmsg;
	size_t fixed = fixed_len(f, i);

	if (frame_grow(f, f->len + fixed) < 0)
		return -1;
	if (i == f->off_cap) {
		uint32_t cap = f->off_cap ? 2 * f->off_cap : 4;
		size_t *o = realloc(f->off, cap * sizeof(*o));
		if (o == NULL)
			return -1;
		f->off = o;
		f->off_cap = cap;
	}
	f->off[i] = f->len;
	uint8_t *m = f->buf + f->len;
	struct kl_msg_hdr h = {
		.magic = KL_MSG_MAGIC,
		.version = KL_MSG_VERSION,
		.type = (uint16_t)f->type,
		.seq = f->seq + i,
		.tick = f->type == KL_MSG_FLOWS ? f->fh.tick : f->th.tick,
	};
	kl_msg_hdr_encode(&h, m);
	if (f->type == KL_MSG_FLOWS) {
		struct kl_flows_hdr fh = f->fh;
		fh.frame = i;
		fh.last = false;
		kl_flows_encode_fixed(&fh, m + KL_MSG_HDR_LEN);
	} else {
		/* Frame 0 carries the totals; the header copy is only this big
		 * once, so build the later frames' from it without them. */
		uint32_t nt = f->th.n_totals;
		f->th.frame = i;
		f->th.n_totals = i == 0 ? nt : 0;
		kl_telem_encode_fixed(&f->th, m + KL_MSG_HDR_LEN);
		f->th.n_totals = nt;
		f->th.frame = 0;
	}
	f->len += fixed;
	f->nmsg++;
	f->cur_n = 0;
	return 0;
}

/* Patch the last message's payload length, record count and flags. */
static void close_msg(struct kl_frame *f, bool last)
{
	uint8_t *m = f->buf + f->off[f->nmsg - 1];
	uint8_t *pl = m + KL_MSG_HDR_LEN;

	kl_put32(m + 12, (uint32_t)(f->len - f->off[f->nmsg - 1] - KL_MSG_HDR_LEN));
	kl_put32(pl + (f->type == KL_MSG_FLOWS ? 24 : 28), f->cur_n);
	kl_put32(pl + 36, last ? KL_FRAME_LAST : 0);
}

static int frame_begin(struct kl_frame *f, unsigned type, uint64_t seq, uint32_t max_records)
{
	f->type = type;
	f->seq = seq;
	f->n = 0;
	f->nmsg = 0;
	f->len = 0;
	f->max_records = max_records;
	return open_msg(f);
}

int kl_frame_begin_telem(struct kl_frame *f, uint64_t seq, const struct kl_telem_hdr *h)
{
	f->th = *h;
	if (f->th.n_totals > KL_TELEM_MAX_TOTALS)
		f->th.n_totals = KL_TELEM_MAX_TOTALS;
	return frame_begin(f, KL_MSG_TELEMETRY, seq,
			   (uint32_t)((KL_MSG_MAX_PAYLOAD - KL_TELEM_FIXED_LEN -
				       8u * f->th.n_totals) / KL_TELEM_REC_LEN));
}

int kl_frame_begin_flows(struct kl_frame *f, uint64_t seq, const struct kl_flows_hdr *h)
{
	f->fh = *h;
	return frame_begin(f, KL_MSG_FLOWS, seq, KL_FLOWS_MAX_RECORDS);
}

/* Room for one more record, in a new frame when the current one is full. */
static uint8_t *next_rec(struct kl_frame *f)
{
	size_t rl = rec_len(f);

	if (f->cur_n >= f->max_records) {
		close_msg(f, false);
		if (open_msg(f) < 0)
			return NULL;
	}
	if (frame_grow(f, f->len + rl) < 0)
		return NULL;
	uint8_t *p = f->buf + f->len;
	f->len += rl;
	f->cur_n++;
	f->n++;
	return p;
}

int kl_frame_add_src(struct kl_frame *f, const struct kl_src_rate *r)
{
	uint8_t *p = next_rec(f);

	if (p == NULL)
		return -1;
	kl_telem_encode_record(r, p);
	return 0;
}

int kl_frame_add_flow(struct kl_frame *f, const struct kl_flow_rec *r)
{
	uint8_t *p = next_rec(f);

	if (p == NULL)
		return -1;
	kl_flows_encode_record(r, p);
	return 0;
}

void kl_frame_end(struct kl_frame *f)
{
	close_msg(f, true);
}

const uint8_t *kl_frame_msg(const struct kl_frame *f, uint32_t i, size_t *len)
{
	size_t end = i + 1 < f->nmsg ? f->off[i + 1] : f->len;

	*len = end - f->off[i];
	return f->buf + f->off[i];
}

int kl_frame_each(const struct kl_frame *f, int (*fn)(void *ctx, const uint8_t *msg, size_t len),
		  void *ctx)
{
	for (uint32_t i = 0; i < f->nmsg; i++) {
		size_t len;
		const uint8_t *m = kl_frame_msg(f, i, &len);
		int rc = fn(ctx, m, len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void kl_frame_free(struct kl_frame *f)
{
	free(f->buf);
	free(f->off);
	memset(f, 0, sizeof(*f));
}

static size_t msg_cap(size_t payload)
{
	return KL_MSG_HDR_LEN + (payload < KL_MSG_MAX_PAYLOAD ? payload : KL_MSG_MAX_PAYLOAD);
}

uint64_t kl_telem_tick_max(uint32_t src_per_family)
{
	return 2 * kl_slots_for(src_per_family);
}

uint64_t kl_flows_tick_max(uint32_t flows_per_family)
{
	return 2 * kl_slots_for(flows_per_family);
}

size_t kl_telem_msg_max(uint32_t src_per_family)
{
	return msg_cap(kl_telem_payload_len(KL_TELEM_MAX_TOTALS,
					    (size_t)kl_telem_tick_max(src_per_family)));
}

size_t kl_flows_msg_max(uint32_t flows_per_family)
{
	return msg_cap(kl_flows_payload_len((size_t)kl_flows_tick_max(flows_per_family)));
}
