/* SPDX-License-Identifier: MPL-2.0 */
/* When to ask for the aggregate new-source limit (newsrc.h). */
#include "decider/newsrc.h"

bool dec_newsrc_step(struct dec_newsrc *s, const struct dec_newsrc_cfg *c, double per_s,
		    int64_t now_ms, bool *started, bool *ended)
{
	bool flood = c->trigger > 0 && per_s >= c->trigger;

	*started = flood && !s->flood;
	*ended = !flood && s->flood;
	if (*started)
		s->floods++;
	s->flood = flood;
	return flood && s->until_ms - now_ms < c->ttl_ms / 2;
}

void dec_newsrc_granted(struct dec_newsrc *s, const struct dec_newsrc_cfg *c, int64_t now_ms)
{
	s->until_ms = now_ms + c->ttl_ms;
}
