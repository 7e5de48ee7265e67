/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The enforcer sink (see enfsink.h). The bookkeeping that makes it robust
 * is one set of addresses, `dirty`: sources whose current level the
 * enforcer may not hold (a call failed, a record was refused for now,
 * reconciliation found a mismatch). Each batch carries, besides the
 * tick's changes, one record per dirty source built from the engine's
 * state at that moment, so a source that changed three times while the
 * enforcer was away is told its last level once.
 */
#include "decider/enfsink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "decider/table.h"

/* Refusals logged one by one per batch; the rest are summed up. */
#define REFUSAL_LINES 20
#define DOWN_LOG_EVERY_MS 60000

/* ---- pure helpers ---- */

static uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

static void fill_decision(unsigned action, uint64_t rate, uint64_t burst, int64_t ttl_ms,
			  struct kl_decision *d)
{
	d->level = (uint8_t)action;
	d->rate_pps = 0;
	d->burst = 0;
	d->ttl_ms = 0;
	if (action == DEC_LVL_OBSERVE)
		return;
	/* The enforcer refuses a record outside its ranges as a whole batch's
	 * fault; the profile's values are clamped into them instead. */
	d->ttl_ms = ttl_ms < (int64_t)KL_DEC_TTL_MIN_MS ? KL_DEC_TTL_MIN_MS
		    : (uint64_t)ttl_ms > KL_DEC_TTL_MAX_MS ? KL_DEC_TTL_MAX_MS
							  : (uint64_t)ttl_ms;
	if (action != DEC_LVL_BLOCK) {
		d->rate_pps = clamp_u32(rate, 0, KL_DEC_MAX_RATE);
		d->burst = clamp_u32(burst, 1, KL_DEC_MAX_BURST);
	}
}

bool dec_decision_from_change(const struct dec_change *c, struct kl_decision *d)
{
	if (c->action == DEC_LVL_OBSERVE && c->from_action == DEC_LVL_OBSERVE)
		return false;
	memset(d, 0, sizeof(*d));
	d->addr = c->addr;
	fill_decision(c->action, c->rate, c->burst, c->ttl_ms, d);
	return true;
}

void dec_decision_from_src(const struct dec_engine_params *p, const struct dec_src *s, int64_t now,
			  struct kl_decision *d)
{
	struct dec_change c;

	memset(&c, 0, sizeof(c));
	c.to = s->level;
	c.from = s->level;
	dec_change_fill(p, &c);
	memset(d, 0, sizeof(*d));
	d->addr = s->key;
	int64_t left = s->enforce_until == DEC_T_NEVER ? c.ttl_ms : s->enforce_until - now;
	fill_decision(c.action, c.rate, c.burst, left, d);
}

int dec_level_of_state(const struct dec_engine_params *p, const struct kl_state_rec *r)
{
	if (r->kind == KL_STATE_DENY) {
		for (unsigned l = DEC_LVL_SOFT; l < DEC_LVL_COUNT; l++)
			if (p->action[l] == DEC_LVL_BLOCK)
				return (int)l;
		return DEC_LVL_BLOCK;
	}
	if (r->kind != KL_STATE_RL)
		return -1;
	for (unsigned l = DEC_LVL_SOFT; l < DEC_LVL_COUNT; l++) {
		unsigned a = p->action[l] > l ? l : p->action[l];
		if ((a == DEC_LVL_SOFT || a == DEC_LVL_HARD) && p->rate[a] == r->rate_pps)
			return (int)l;
	}
	return r->rate_pps >= p->rate[DEC_LVL_SOFT] ? DEC_LVL_SOFT : DEC_LVL_HARD;
}

bool dec_ack_retryable(unsigned reason)
{
	return reason == KL_ACK_RATE_CAP || reason == KL_ACK_TOTAL_CAP ||
	       reason == KL_ACK_MAP_FULL || reason == KL_ACK_FAILED;
}

/* ---- the sink ---- */

struct meta {
	uint8_t from, to; /* engine levels, for the refusal lines */
};

struct esink {
	struct dec_sink s;
	struct kl_enf_link *link;
	struct dec_sink *log;
	struct dec_engine *eng;
	dec_exempt_fn exempt;
	void *exempt_ctx;
	bool synced, ever_synced, ever_up;
	int64_t down_since, last_down_log;
	struct dec_keyset dirty;
	struct kl_decision *dec;
	struct meta *meta;
	size_t n, cap;
	uint8_t *wire;
	size_t wire_cap;
	struct dec_enf_stats st;
};

static void note_down(struct esink *e, int64_t now, const char *what, const char *err)
{
	e->st.up = false;
	e->st.failed_calls++;
	e->synced = false;
	if (e->down_since == DEC_T_NEVER)
		e->down_since = now;
	if (e->last_down_log == DEC_T_NEVER || now - e->last_down_log >= DOWN_LOG_EVERY_MS) {
		kl_warn("enforcer unreachable (%s: %s); still deciding, %zu sources to send when it "
			"is back (retrying every tick; this is logged once a minute)",
			what, err, e->dirty.n);
		e->last_down_log = now;
	}
}

static void note_up(struct esink *e, int64_t now)
{
	if (!e->st.up) {
		if (e->down_since != DEC_T_NEVER && e->ever_up) {
			char d[48];
			kl_info("enforcer reachable again after %s",
				kl_duration_format((uint64_t)(now - e->down_since) * 1000000ull, d,
						   sizeof(d)));
		} else {
			kl_info("connected to the enforcer");
		}
	}
	/* nng reconnected to a restarted enforcer by itself: the call went
	 * through, but what the enforcer holds may have changed under us. */
	if (e->link->reconnected) {
		e->link->reconnected = false;
		if (e->ever_synced && e->synced)
			kl_info("the enforcer's connection was re-established (restarted?); "
				"reconciling");
		e->synced = false;
	}
	e->st.up = true;
	e->ever_up = true;
	e->down_since = DEC_T_NEVER;
	e->last_down_log = DEC_T_NEVER;
}

static int mark_dirty(struct esink *e, const struct kl_addr *a)
{
	struct kl_addr key;

	if (!dec_addr_key(a, &key))
		return 0;
	if (dec_keyset_add(&e->dirty, &key) == NULL) {
		kl_error("out of memory remembering a decision to resend");
		return -1;
	}
	return 0;
}

/* A RESULT where a typed answer was expected: the enforcer refused the
 * whole message. */
static void result_text(const struct kl_msg *reply, char *buf, size_t len)
{
	struct kl_result r;
	char why[160];

	if (reply->hdr.type != KL_MSG_RESULT) {
		snprintf(buf, len, "unexpected answer %s", kl_msg_type_name(reply->hdr.type));
	} else if (kl_result_decode(reply->payload, reply->payload_len, &r, why, sizeof(why)) < 0) {
		snprintf(buf, len, "bad RESULT: %s", why);
	} else {
		snprintf(buf, len, "%s: %.*s", kl_status_name(r.status),
			 (int)(r.text_len > 300 ? 300 : r.text_len), r.text ? r.text : "");
	}
}

struct sync_acc {
	struct esink *e;
	const struct dec_keyset *seen;
	size_t missing;
	int rc;
};

static void sync_missing(void *ctx, const struct dec_src *s)
{
	struct sync_acc *acc = ctx;
	struct kl_decision d;

	if (s->level == DEC_LVL_OBSERVE || dec_keyset_find(acc->seen, &s->key) != NULL)
		return;
	dec_decision_from_src(dec_engine_params(acc->e->eng), s, 0, &d);
	if (d.level == DEC_LVL_OBSERVE)
		return;
	acc->missing++;
	if (mark_dirty(acc->e, &s->key) < 0)
		acc->rc = -1;
}

static bool entry_matches(const struct kl_decision *d, const struct kl_state_rec *r)
{
	if (d->level == DEC_LVL_BLOCK)
		return r->kind == KL_STATE_DENY;
	if (d->level == DEC_LVL_SOFT || d->level == DEC_LVL_HARD)
		return r->kind == KL_STATE_RL && r->rate_pps == d->rate_pps && r->burst == d->burst;
	return false;
}

int dec_sink_enforcer_sync(struct dec_sink *s, int64_t now)
{
	struct esink *e = (struct esink *)s;
	const struct dec_engine_params *p = dec_engine_params(e->eng);
	uint8_t q[KL_ENFORCED_Q_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	char err[512];
	struct kl_state_rec *recs = NULL;
	uint32_t n = 0;
	bool truncated = false;
	size_t adopted[DEC_LVL_COUNT] = { 0 }, kept = 0, release = 0, lapse = 0, resend = 0;
	struct dec_keyset seen;
	int rc = -1;

	kl_enforced_q_encode(KL_STATE_MAX, q);
	if (e->link->call(e->link, KL_MSG_ENFORCED_Q, q, sizeof(q), &reply, &rbuf, err,
			  sizeof(err)) < 0) {
		note_down(e, now, "ENFORCED_Q", err);
		return -1;
	}
	note_up(e, now);
	if (reply.hdr.type != KL_MSG_STATE) {
		result_text(&reply, err, sizeof(err));
		kl_error("enforcer answered the reconciliation query with %s", err);
		free(rbuf);
		e->synced = false;
		return -1;
	}
	if (kl_state_count(reply.payload, reply.payload_len, &n, err, sizeof(err)) < 0 ||
	    (recs = calloc(n ? n : 1, sizeof(*recs))) == NULL ||
	    kl_state_decode(reply.payload, reply.payload_len, recs, n, &n, &truncated, err,
			    sizeof(err)) < 0) {
		kl_error("enforcer's STATE answer: %s", recs == NULL ? "out of memory" : err);
		free(recs);
		free(rbuf);
		return -1;
	}
	free(rbuf);
	dec_keyset_init(&seen, 0x5eed5eed);
	for (uint32_t i = 0; i < n; i++) {
		const struct kl_state_rec *r = &recs[i];
		struct kl_addr key;
		int lvl = dec_level_of_state(p, r);

		if (lvl < 0 || !dec_addr_key(&r->addr, &key))
			continue;
		if (dec_keyset_add(&seen, &key) == NULL)
			goto out;
		int ex = e->exempt != NULL ? e->exempt(e->exempt_ctx, &key) : DEC_EX_NONE;
		const struct dec_src *src = dec_engine_lookup(e->eng, &key);
		if (ex != DEC_EX_NONE) {
			/* Whitelisted or forgiven meanwhile: take it away. */
			release++;
			if (mark_dirty(e, &key) < 0)
				goto out;
		} else if (src != NULL && src->level > DEC_LVL_OBSERVE) {
			struct kl_decision want;
			dec_decision_from_src(p, src, now, &want);
			if (entry_matches(&want, r)) {
				kept++;
			} else {
				resend++;
				if (mark_dirty(e, &key) < 0)
					goto out;
			}
		} else if (!e->ever_synced) {
			int64_t left = r->expires_in_ms > (uint64_t)INT64_MAX / 2
					       ? 0
					       : (int64_t)r->expires_in_ms;
			int a = dec_engine_adopt(e->eng, &key, (unsigned)lvl, left, now);
			if (a < 0)
				goto out;
			adopted[lvl] += (size_t)a;
			e->st.adopted += (uint64_t)a;
		} else if (src != NULL) {
			/* The engine let it go while the link was down. */
			release++;
			if (mark_dirty(e, &key) < 0)
				goto out;
		} else {
			/* Nobody vouches for it any more: it lapses at its expiry. */
			char ip[KL_ADDR_STRLEN];
			kl_debug("enforcer entry for %s (%s) not ours any more; it lapses in %" PRIu64
				 " ms",
				 kl_addr_format(&key, ip, sizeof(ip)), kl_state_kind_name(r->kind),
				 r->expires_in_ms);
			lapse++;
		}
	}
	struct sync_acc acc = { .e = e, .seen = &seen };
	dec_engine_foreach(e->eng, sync_missing, &acc);
	if (acc.rc < 0)
		goto out;
	resend += acc.missing;
	kl_info("reconciled with the enforcer: %u entries of ours; adopted %zu (soft=%zu hard=%zu "
		"block=%zu), kept %zu, to release %zu, to resend %zu, left to lapse %zu",
		n, adopted[DEC_LVL_SOFT] + adopted[DEC_LVL_HARD] + adopted[DEC_LVL_BLOCK],
		adopted[DEC_LVL_SOFT], adopted[DEC_LVL_HARD], adopted[DEC_LVL_BLOCK], kept, release,
		resend, lapse);
	if (truncated)
		kl_warn("the enforcer's STATE answer was truncated at %u entries; the rest lapse "
			"at their expiry",
			n);
	e->synced = true;
	e->ever_synced = true;
	e->st.syncs++;
	rc = 0;
out:
	if (rc < 0)
		kl_error("reconciliation failed: out of memory");
	dec_keyset_free(&seen);
	free(recs);
	return rc;
}

static int batch_push(struct esink *e, const struct kl_decision *d, unsigned from, unsigned to)
{
	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 256;
		struct kl_decision *nd = realloc(e->dec, nc * sizeof(*nd));
		if (nd == NULL)
			return -1;
		e->dec = nd;
		struct meta *nm = realloc(e->meta, nc * sizeof(*nm));
		if (nm == NULL)
			return -1;
		e->meta = nm;
		e->cap = nc;
	}
	e->dec[e->n] = *d;
	e->meta[e->n] = (struct meta){ .from = (uint8_t)from, .to = (uint8_t)to };
	e->n++;
	return 0;
}

/* Check the answer to one DECISIONS message of `n` records starting at
 * e->dec[first]. Refusals are logged; those worth retrying become dirty. */
static int handle_acks(struct esink *e, const struct kl_msg *reply, size_t first, uint32_t n,
		       unsigned *lines)
{
	struct kl_ack *acks = NULL;
	uint32_t got = 0, applied = 0, more[KL_ACK_REASON_MAX] = { 0 };
	char err[512];

	if (reply->hdr.type != KL_MSG_DECISIONS_ACK) {
		result_text(reply, err, sizeof(err));
		kl_error("enforcer refused a batch of %u decisions: %s", n, err);
		goto resend_all;
	}
	acks = calloc(n ? n : 1, sizeof(*acks));
	if (acks == NULL)
		goto resend_all;
	if (kl_acks_decode(reply->payload, reply->payload_len, acks, n, &got, &applied, err,
			   sizeof(err)) < 0 ||
	    got != n) {
		kl_error("enforcer's answer to %u decisions: %s", n,
			 got != n ? "wrong number of records" : err);
		goto resend_all;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct kl_decision *d = &e->dec[first + i];
		const struct meta *m = &e->meta[first + i];
		uint8_t why = acks[i].reason;

		if (acks[i].status == KL_OK) {
			e->st.applied++;
			continue;
		}
		if (dec_ack_retryable(why)) {
			e->st.retry++;
			if (mark_dirty(e, &d->addr) < 0)
				break;
		} else {
			e->st.refused++;
		}
		if (*lines < REFUSAL_LINES) {
			char ip[KL_ADDR_STRLEN];
			(*lines)++;
			kl_warn("ACTION ip=%s %s->%s refused reason=%s%s",
				kl_addr_format(&d->addr, ip, sizeof(ip)), dec_level_name(m->from),
				dec_level_name(m->to), kl_ack_reason_name(why),
				dec_ack_retryable(why) ? " (will retry)" : "");
		} else if (why < KL_ACK_REASON_MAX) {
			more[why]++;
		}
	}
	for (unsigned r = 1; r < KL_ACK_REASON_MAX; r++)
		if (more[r] > 0)
			kl_warn("ACTION ... refused reason=%s for %u more sources", kl_ack_reason_name(r),
				more[r]);
	free(acks);
	return 0;
resend_all:
	free(acks);
	for (uint32_t i = 0; i < n; i++)
		if (mark_dirty(e, &e->dec[first + i].addr) < 0)
			return -1;
	return 0;
}

static int e_apply(struct dec_sink *s, int64_t now, const struct dec_change *c, size_t n)
{
	struct esink *e = (struct esink *)s;
	const struct dec_engine_params *p = dec_engine_params(e->eng);
	unsigned lines = 0;

	if (n > 0 && e->log->apply(e->log, now, c, n) < 0)
		return -1;
	if (!e->synced && dec_sink_enforcer_sync(s, now) < 0) {
		for (size_t i = 0; i < n; i++) {
			struct kl_decision d;
			if (dec_decision_from_change(&c[i], &d) && mark_dirty(e, &c[i].addr) < 0)
				return -1;
		}
		e->st.pending = e->dirty.n;
		return 0;
	}

	/* The tick's changes, then every dirty source the changes do not cover. */
	e->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct kl_decision d;
		struct dec_keyslot *k = dec_keyset_find(&e->dirty, &c[i].addr);
		if (k != NULL)
			k->mark = 1;
		if (dec_decision_from_change(&c[i], &d) && batch_push(e, &d, c[i].from, c[i].to) < 0)
			goto oom;
	}
	for (size_t i = 0; i < e->dirty.cap && e->dirty.n > 0; i++) {
		const struct dec_keyslot *k = &e->dirty.slots[i];
		struct kl_decision d;
		if (k->key.family == 0 || k->mark)
			continue;
		const struct dec_src *src = dec_engine_lookup(e->eng, &k->key);
		unsigned lvl = src != NULL ? src->level : DEC_LVL_OBSERVE;
		if (src != NULL) {
			dec_decision_from_src(p, src, now, &d);
		} else {
			memset(&d, 0, sizeof(d));
			d.addr = k->key;
			d.level = KL_DEC_OBSERVE;
		}
		if (batch_push(e, &d, lvl, lvl) < 0)
			goto oom;
	}
	dec_keyset_clear(&e->dirty);

	for (size_t first = 0; first < e->n;) {
		uint32_t cnt = (uint32_t)(e->n - first > KL_DECISIONS_MAX ? KL_DECISIONS_MAX
									  : e->n - first);
		size_t len = kl_decisions_len(cnt);
		struct kl_msg reply;
		void *rbuf = NULL;
		char err[512];

		if (len > e->wire_cap) {
			uint8_t *w = realloc(e->wire, len);
			if (w == NULL)
				goto oom;
			e->wire = w;
			e->wire_cap = len;
		}
		kl_decisions_encode(e->dec + first, cnt, e->wire);
		if (e->link->call(e->link, KL_MSG_DECISIONS, e->wire, len, &reply, &rbuf, err,
				  sizeof(err)) < 0) {
			for (size_t i = first; i < e->n; i++)
				if (mark_dirty(e, &e->dec[i].addr) < 0)
					goto oom;
			note_down(e, now, "DECISIONS", err);
			break;
		}
		note_up(e, now);
		e->st.batches++;
		e->st.sent += cnt;
		int rc = handle_acks(e, &reply, first, cnt, &lines);
		free(rbuf);
		if (rc < 0)
			goto oom;
		first += cnt;
	}
	e->st.pending = e->dirty.n;
	return 0;
oom:
	kl_error("out of memory building the decisions for the enforcer");
	return -1;
}

static int e_release(struct dec_sink *s, int64_t now, const struct kl_addr *cidr, uint32_t budget,
		     uint32_t *removed)
{
	struct esink *e = (struct esink *)s;
	struct kl_release r = { .prefix = *cidr, .budget = budget };
	struct kl_release_ack a;
	uint8_t w[KL_RELEASE_LEN];
	struct kl_msg reply;
	void *rbuf = NULL;
	char err[512], ip[KL_ADDR_STRLEN];

	*removed = 0;
	if (!e->synced && dec_sink_enforcer_sync(s, now) < 0)
		return -1;
	if (r.budget == 0)
		r.budget = 1;
	if (r.budget > KL_RELEASE_MAX_BUDGET)
		r.budget = KL_RELEASE_MAX_BUDGET;
	kl_release_encode(&r, w);
	if (e->link->call(e->link, KL_MSG_RELEASE, w, sizeof(w), &reply, &rbuf, err, sizeof(err)) <
	    0) {
		note_down(e, now, "RELEASE", err);
		return -1;
	}
	note_up(e, now);
	if (reply.hdr.type != KL_MSG_RELEASE_ACK ||
	    kl_release_ack_decode(reply.payload, reply.payload_len, &a, err, sizeof(err)) < 0) {
		if (reply.hdr.type != KL_MSG_RELEASE_ACK)
			result_text(&reply, err, sizeof(err));
		kl_error("enforcer's answer to RELEASE %s: %s",
			 kl_addr_format(cidr, ip, sizeof(ip)), err);
		free(rbuf);
		return -1;
	}
	free(rbuf);
	e->st.released += a.removed;
	/* The caller keeps a CIDR queued while its budget was used up. */
	*removed = a.more ? (budget > a.removed ? budget : a.removed) : a.removed;
	kl_debug("RELEASE cidr=%s budget=%u removed=%u more=%u",
		 kl_addr_format(cidr, ip, sizeof(ip)), r.budget, a.removed, a.more);
	return 0;
}

static void e_close(struct dec_sink *s)
{
	struct esink *e = (struct esink *)s;

	if (e == NULL)
		return;
	if (e->link != NULL)
		e->link->close(e->link);
	if (e->log != NULL)
		e->log->close(e->log);
	dec_keyset_free(&e->dirty);
	free(e->dec);
	free(e->meta);
	free(e->wire);
	free(e);
}

struct dec_sink *dec_sink_enforcer_new(struct kl_enf_link *link, struct dec_engine *eng,
				     dec_exempt_fn exempt, void *exempt_ctx)
{
	struct esink *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->log = dec_sink_print_new(NULL, false, false);
	if (e->log == NULL) {
		free(e);
		return NULL;
	}
	struct dec_sink *log = e->log;
	*e = (struct esink){
		.s = { .apply = e_apply, .release = e_release, .close = e_close },
		.link = link, .log = log, .eng = eng, .exempt = exempt, .exempt_ctx = exempt_ctx,
		.down_since = DEC_T_NEVER, .last_down_log = DEC_T_NEVER,
	};
	dec_keyset_init(&e->dirty, 0xd1b7d1b7);
	return &e->s;
}

const struct dec_enf_stats *dec_sink_enforcer_stats(const struct dec_sink *s)
{
	const struct esink *e = (const struct esink *)s;
	return &e->st;
}
