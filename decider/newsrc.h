/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A spoofed flood as the decider sees it (DESIGN §1): packets of
 * sources the shield has not admitted to a slot (totals' new_sources) above
 * a trigger rate. While it lasts, an enforcing decider asks kl-enforcer for
 * the aggregate new-source limit (NEWSRC_LIMIT, bounded by enforcer.yaml)
 * and renews it before it lapses; when the flood ends it lets the limit
 * lapse. Known clients hold slots and are never affected.
 */
#ifndef KL_DECIDER_NEWSRC_H
#define KL_DECIDER_NEWSRC_H

#include <stdbool.h>
#include <stdint.h>

struct dec_newsrc_cfg {
	double trigger;  /* new sources per second that count as a flood; <= 0: off */
	uint32_t rate;   /* the limit asked for, packets per second */
	uint32_t burst;
	int64_t ttl_ms;  /* each request; renewed at half of it */
};

struct dec_newsrc {
	bool flood;       /* the last tick was above the trigger */
	int64_t until_ms; /* the limit the enforcer granted lasts until (0: none) */
	uint64_t floods;  /* flood episodes seen */
};

/* One tick: `per_s` new sources per second at `now_ms`. Returns true when
 * the caller should ask for the limit now (a flood, and no granted limit
 * that lasts at least another half TTL); the caller then records a grant
 * with dec_newsrc_granted. *started / *ended report flood edges (for logs). */
bool dec_newsrc_step(struct dec_newsrc *s, const struct dec_newsrc_cfg *c, double per_s,
		    int64_t now_ms, bool *started, bool *ended);
void dec_newsrc_granted(struct dec_newsrc *s, const struct dec_newsrc_cfg *c, int64_t now_ms);

#endif
