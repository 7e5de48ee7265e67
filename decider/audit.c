/* SPDX-License-Identifier: MPL-2.0 */
/* kl-decider's audit receipts, written by a thread of their own (audit.h). */
#include "decider/audit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/audit.h"
#include "common/log.h"

#define RECEIPTS_MAX (1u << 20) /* waiting receipts before new ones are dropped */
#define POLL_NS 50000000L       /* the writer looks for receipts every 50 ms */


/* One item of the queue: a tick (receipts [first, first + n) of `rc`) or a
 * free-form record. */
struct item {
	bool is_tick;
	uint64_t tick;
	struct dec_engine_params p;
	size_t first, n;
	uint64_t wall_ns, mono_ns; /* when it was handed over: the decision's time */
	char *event, *subject, *details, *result;
};

struct batch {
	struct dec_change *rc;
	size_t nrc, caprc;
	struct item *it;
	size_t nit, capit;
};

struct dec_audit {
	struct kl_audit *a;
	char profile[64];
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv, done_cv;
	struct batch in, work;
	bool stop, busy;
	uint64_t dropped;
};

int dec_receipt_json(char *buf, size_t len, const struct dec_change *c,
			const struct dec_engine_params *p, const char *profile, uint64_t tick)
{
	const float *f = c->feat;
	return snprintf(buf, len,
			"{\"tick\":%llu,\"from\":\"%s\",\"to\":\"%s\",\"action\":\"%s\",\"rule\":\"%s\","
			"\"severity\":%.3f,\"strikes\":%d,"
			"\"features\":{\"pps\":%.1f,\"syn\":%.1f,\"scan\":%.1f,\"droprl\":%.1f},"
			"\"thresholds\":{\"trig_pps\":%.1f,\"trig_syn\":%.1f,\"trig_scan\":%.1f,"
			"\"trig_bps\":%.1f,\"soft_at\":%d,\"hard_at\":%d,\"block_at\":%d},"
			"\"profile\":\"%s\",\"rate\":%llu,\"burst\":%llu,\"ttl_ms\":%lld}",
			(unsigned long long)tick, dec_level_name(c->from), dec_level_name(c->to),
			dec_level_name(c->action), dec_reason_name(c->reason), c->sev, c->strikes,
			(double)f[0], (double)f[1], (double)f[2], (double)f[3], p->trig[DEC_F_PPS],
			p->trig[DEC_F_SYN], p->trig[DEC_F_SCAN], p->trig[DEC_F_BPS], p->at[DEC_LVL_SOFT],
			p->at[DEC_LVL_HARD], p->at[DEC_LVL_BLOCK], profile, (unsigned long long)c->rate,
			(unsigned long long)c->burst, (long long)c->ttl_ms);
}

static void write_batch(struct dec_audit *da, struct batch *b)
{
	char d[1024], ip[KL_ADDR_STRLEN];
	for (size_t i = 0; i < b->nit; i++) {
		struct item *it = &b->it[i];
		if (!it->is_tick) {
			kl_audit_record_at(da->a, it->wall_ns, it->mono_ns, it->event, it->subject,
					   it->details, it->result);
			kl_audit_flush(da->a);
			free(it->event);
			free(it->subject);
			free(it->details);
			free(it->result);
			continue;
		}
		for (size_t k = it->first; k < it->first + it->n; k++) {
			const struct dec_change *r = &b->rc[k];
			dec_receipt_json(d, sizeof(d), r, &it->p, da->profile, it->tick);
			kl_audit_record_signed_at(da->a, it->wall_ns, it->mono_ns, "decision",
						  kl_addr_format(&r->addr, ip, sizeof(ip)), d, "ok");
		}
		kl_audit_flush(da->a);
	}
	b->nrc = 0;
	b->nit = 0;
}

static void *writer(void *arg)
{
	struct dec_audit *da = arg;
	pthread_mutex_lock(&da->mu);
	for (;;) {
		/* Woken by sync, free and free-form records; a tick's receipts
		 * wait for the next poll instead: a wake-up from inside the
		 * tick would hand the CPU to this thread in the middle of it. */
		while (!da->stop && da->in.nit == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += POLL_NS;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&da->cv, &da->mu, &ts);
		}
		if (da->in.nit == 0 && da->stop)
			break;
		struct batch t = da->work;
		da->work = da->in;
		da->in = t;
		da->busy = true;
		pthread_mutex_unlock(&da->mu);
		write_batch(da, &da->work);
		pthread_mutex_lock(&da->mu);
		da->busy = false;
		pthread_cond_broadcast(&da->done_cv);
	}
	pthread_mutex_unlock(&da->mu);
	return NULL;
}

struct dec_audit *dec_audit_new(struct kl_audit *a, const char *profile)
{
	struct dec_audit *da = calloc(1, sizeof(*da));
	if (!da)
		return NULL;
	da->a = a;
	snprintf(da->profile, sizeof(da->profile), "%s", profile ? profile : "");
	pthread_mutex_init(&da->mu, NULL);
	pthread_cond_init(&da->cv, NULL);
	pthread_cond_init(&da->done_cv, NULL);
	if (pthread_create(&da->thr, NULL, writer, da) != 0) {
		free(da);
		return NULL;
	}
	return da;
}

static struct item *new_item(struct dec_audit *da)
{
	struct batch *b = &da->in;
	if (b->nit == b->capit) {
		size_t n = b->capit ? 2 * b->capit : 64;
		struct item *p = realloc(b->it, n * sizeof(*p));
		if (!p)
			return NULL;
		b->it = p;
		b->capit = n;
	}
	struct item *it = &b->it[b->nit++];
	memset(it, 0, sizeof(*it));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	it->wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	it->mono_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return it;
}

void dec_audit_tick(struct dec_audit *da, uint64_t tick, const struct dec_engine_params *p,
		       const struct dec_change *ch, size_t n)
{
	if (da == NULL || n == 0)
		return;
	pthread_mutex_lock(&da->mu);
	struct batch *b = &da->in;
	if (b->nrc + n > RECEIPTS_MAX) {
		da->dropped += n;
		pthread_mutex_unlock(&da->mu);
		kl_error("audit: the receipt writer is behind; %zu receipts of tick %llu dropped", n,
			 (unsigned long long)tick);
		return;
	}
	if (b->nrc + n > b->caprc) {
		size_t c = b->caprc ? b->caprc : 1024;
		while (c < b->nrc + n)
			c *= 2;
		struct dec_change *r = realloc(b->rc, c * sizeof(*r));
		if (!r) {
			da->dropped += n;
			pthread_mutex_unlock(&da->mu);
			return;
		}
		b->rc = r;
		b->caprc = c;
	}
	struct item *it = new_item(da);
	if (!it) {
		da->dropped += n;
		pthread_mutex_unlock(&da->mu);
		return;
	}
	it->is_tick = true;
	it->tick = tick;
	it->p = *p;
	it->first = b->nrc;
	it->n = n;
	memcpy(&b->rc[b->nrc], ch, n * sizeof(*ch));
	b->nrc += n;
	pthread_mutex_unlock(&da->mu);
}

void dec_audit_record(struct dec_audit *da, const char *event, const char *subject,
			 const char *details, const char *result)
{
	if (da == NULL)
		return;
	pthread_mutex_lock(&da->mu);
	struct item *it = new_item(da);
	if (it) {
		it->event = strdup(event);
		it->subject = strdup(subject ? subject : "");
		it->details = strdup(details ? details : "{}");
		it->result = strdup(result ? result : "ok");
	}
	pthread_cond_signal(&da->cv);
	pthread_mutex_unlock(&da->mu);
}

void dec_audit_sync(struct dec_audit *da)
{
	if (da == NULL)
		return;
	pthread_mutex_lock(&da->mu);
	pthread_cond_signal(&da->cv);
	while (da->in.nit > 0 || da->busy)
		pthread_cond_wait(&da->done_cv, &da->mu);
	pthread_mutex_unlock(&da->mu);
}

void dec_audit_free(struct dec_audit *da)
{
	if (da == NULL)
		return;
	pthread_mutex_lock(&da->mu);
	da->stop = true;
	pthread_cond_signal(&da->cv);
	pthread_mutex_unlock(&da->mu);
	pthread_join(da->thr, NULL);
	kl_audit_close(da->a);
	free(da->in.rc);
	free(da->in.it);
	free(da->work.rc);
	free(da->work.it);
	pthread_mutex_destroy(&da->mu);
	pthread_cond_destroy(&da->cv);
	pthread_cond_destroy(&da->done_cv);
	free(da);
}
