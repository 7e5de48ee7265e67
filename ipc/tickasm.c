/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Tick assembly (see tickasm.h for the rule and why).
 */
#include "ipc/tickasm.h"
#include "common/err.h"
#include "ipc/wire.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kl_tickasm_init(struct kl_tickasm *a, unsigned type, uint64_t max_records)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->max_records = max_records;
}

void kl_tickasm_free(struct kl_tickasm *a)
{
	free(a->recs);
	a->recs = NULL;
	a->cap = a->nrec = 0;
}

uint32_t kl_tickasm_records(const struct kl_tickasm *a)
{
	return a->type == KL_MSG_FLOWS ? a->flows.h.n_records : a->telem.h.n_records;
}

/* What both payloads have in common. */
struct part {
	uint64_t tick, t_ns, elapsed_ns;
	uint32_t n, frame;
	bool last;
	const uint8_t *recs;
};

static int decode(struct kl_tickasm *a, const struct kl_msg *m, struct part *p,
		  struct kl_telem_view *tv, struct kl_flows_view *fv, char *err, size_t errlen)
{
	if (m->hdr.type != a->type)
		return kl_fail(err, errlen, "%s on a link that carries %s",
			       kl_msg_type_name(m->hdr.type), kl_msg_type_name(a->type));
	if (a->type == KL_MSG_FLOWS) {
		if (kl_flows_decode(m->payload, m->payload_len, fv, err, errlen) < 0)
			return -1;
		*p = (struct part){ fv->h.tick, fv->h.t_ns, fv->h.elapsed_ns, fv->h.n_records,
				    fv->h.frame, fv->h.last, fv->records };
	} else {
		if (kl_telem_decode(m->payload, m->payload_len, tv, err, errlen) < 0)
			return -1;
		*p = (struct part){ tv->h.tick, tv->h.t_ns, tv->h.elapsed_ns, tv->h.n_records,
				    tv->h.frame, tv->h.last, tv->records };
	}
	if (m->hdr.tick != p->tick)
		return kl_fail(err, errlen, "%s: header tick %llu but payload tick %llu",
			       kl_msg_type_name(a->type), (unsigned long long)m->hdr.tick,
			       (unsigned long long)p->tick);
	return 0;
}

/* Give up the open tick; frames up to the next frame 0 are dropped too. */
static void drop_open(struct kl_tickasm *a, const char *why)
{
	if (a->open) {
		a->st.dropped++;
		snprintf(a->note, sizeof(a->note), "%s: tick %llu dropped after %u of its frames: %s",
			 kl_msg_type_name(a->type), (unsigned long long)a->tick, a->next, why);
	}
	a->open = false;
	a->skipping = true;
}

static void complete(struct kl_tickasm *a, uint64_t tick)
{
	if (a->have_last && tick > a->last_tick + 1) {
		a->st.missed += tick - a->last_tick - 1;
		snprintf(a->note, sizeof(a->note), "%s: %llu ticks missed before sensor tick %llu",
			 kl_msg_type_name(a->type), (unsigned long long)(tick - a->last_tick - 1),
			 (unsigned long long)tick);
	} else if (a->have_last && tick <= a->last_tick) {
		a->st.restarts++;
		snprintf(a->note, sizeof(a->note),
			 "%s: sensor tick went from %llu to %llu (sensor restarted)",
			 kl_msg_type_name(a->type), (unsigned long long)a->last_tick,
			 (unsigned long long)tick);
	}
	a->have_last = true;
	a->last_tick = tick;
	a->open = false;
	a->st.ticks++;
}

static size_t rec_len(const struct kl_tickasm *a)
{
	return a->type == KL_MSG_FLOWS ? KL_FLOWS_REC_LEN : KL_TELEM_REC_LEN;
}

/* Append a frame's records; the buffer stays within max_records. */
static int append(struct kl_tickasm *a, const struct part *p, char *err, size_t errlen)
{
	size_t rl = rec_len(a), need = a->nrec + p->n;

	if (p->n == 0)
		return 0;
	if (need > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > a->max_records)
			cap = (size_t)a->max_records;
		uint8_t *b = realloc(a->recs, cap * rl);
		if (b == NULL)
			return kl_fail(err, errlen, "out of memory for a tick of %zu %s records", need,
				       kl_msg_type_name(a->type));
		a->recs = b;
		a->cap = cap;
	}
	memcpy(a->recs + a->nrec * rl, p->recs, (size_t)p->n * rl);
	a->nrec = need;
	return 0;
}

int kl_tickasm_feed(struct kl_tickasm *a, const struct kl_msg *m, char *err, size_t errlen)
{
	struct kl_telem_view tv;
	struct kl_flows_view fv;
	struct part p = { 0 };

	a->note[0] = '\0';
	a->st.frames++;
	if (decode(a, m, &p, &tv, &fv, err, errlen) < 0) {
		a->st.bad++;
		drop_open(a, "a frame of the link was refused");
		return KL_TICKASM_REFUSED;
	}
	if (p.frame == 0) {
		if (a->open)
			drop_open(a, "the next tick began before its last frame");
		a->open = true;
		a->skipping = false;
		a->tick = p.tick;
		a->next = 0;
		a->nrec = 0;
		/* Frame 0's fixed part (the totals) is the tick's. */
		if (a->type == KL_MSG_FLOWS)
			a->flows = fv;
		else
			a->telem = tv;
	} else if (a->skipping || !a->open) {
		/* The rest of a dropped tick, or frames whose frame 0 never came
		 * (also a repeated last frame): nothing to apply them to. */
		if (!a->skipping) {
			a->st.dropped++;
			snprintf(a->note, sizeof(a->note),
				 "%s: frame %u of tick %llu without its frame 0: dropped",
				 kl_msg_type_name(a->type), p.frame, (unsigned long long)p.tick);
			a->skipping = true;
		}
		if (p.last)
			a->skipping = false;
		return KL_TICKASM_MORE;
	} else if (p.tick != a->tick || p.frame != a->next) {
		char why[96];
		snprintf(why, sizeof(why), "frame %u of tick %llu came where frame %u belonged",
			 p.frame, (unsigned long long)p.tick, a->next);
		drop_open(a, why);
		if (p.last)
			a->skipping = false;
		return KL_TICKASM_MORE;
	} else {
		uint64_t t_ns = a->type == KL_MSG_FLOWS ? a->flows.h.t_ns : a->telem.h.t_ns;
		uint64_t el = a->type == KL_MSG_FLOWS ? a->flows.h.elapsed_ns : a->telem.h.elapsed_ns;
		if (p.t_ns != t_ns || p.elapsed_ns != el) {
			a->st.bad++;
			drop_open(a, "its frames disagree on the time");
			kl_fail(err, errlen, "%s: frame %u of tick %llu has another t_ns or elapsed_ns "
				"than its frame 0", kl_msg_type_name(a->type), p.frame,
				(unsigned long long)p.tick);
			return KL_TICKASM_REFUSED;
		}
	}
	if (a->nrec + p.n > a->max_records) {
		a->st.oversized++;
		a->open = false;
		a->skipping = !p.last;
		kl_fail(err, errlen,
			"%s: tick %llu holds more than %llu records, more than the configured maps "
			"can produce: refused",
			kl_msg_type_name(a->type), (unsigned long long)p.tick,
			(unsigned long long)a->max_records);
		return KL_TICKASM_REFUSED;
	}
	if (p.frame == 0 && p.last) {
		/* The common case: the view into the message as it is. */
		complete(a, p.tick);
		return KL_TICKASM_TICK;
	}
	if (append(a, &p, err, errlen) < 0) {
		a->open = false;
		a->skipping = !p.last;
		return KL_TICKASM_NOMEM;
	}
	a->next++;
	if (!p.last)
		return KL_TICKASM_MORE;
	if (a->type == KL_MSG_FLOWS) {
		a->flows.h.n_records = (uint32_t)a->nrec;
		a->flows.h.last = true;
		a->flows.records = a->recs;
	} else {
		a->telem.h.n_records = (uint32_t)a->nrec;
		a->telem.h.last = true;
		a->telem.records = a->recs;
	}
	complete(a, p.tick);
	return KL_TICKASM_TICK;
}

int kl_tickasm_intake(struct kl_tickasm *a, const struct kl_msg *m, int pid, int64_t now_ms)
{
	char err[512];
	int rc = kl_tickasm_feed(a, m, err, sizeof(err));

	if (a->note[0] != '\0')
		kl_info("%s", a->note);
	switch (rc) {
	case KL_TICKASM_TICK:
		return 1;
	case KL_TICKASM_NOMEM:
		kl_error("%s", err);
		return -1;
	case KL_TICKASM_REFUSED:
		if (a->last_warn_ms == 0 || now_ms - a->last_warn_ms >= 10000) {
			kl_warn("%s from pid %d: %s (%llu frames refused, %llu ticks refused so far)",
				kl_msg_type_name(a->type), pid, err, (unsigned long long)a->st.bad,
				(unsigned long long)a->st.oversized);
			a->last_warn_ms = now_ms;
		}
		return 0;
	default:
		return 0;
	}
}
