/* SPDX-License-Identifier: MPL-2.0 */
/* Per-edge baselines (see edgebase.h). */
#include "graphd/edgebase.h"

#include <string.h>

void gr_eb_params_default(struct gr_eb_params *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = true;
	p->min_obs = 30;
	p->alpha = 0.05;
	p->factor = 3.0;
	p->min_pps = 10.0;
}

enum gr_eb_verdict gr_eb_judge(const struct gr_eb_params *p, const struct gr_eb *b,
			       const double x[GR_EB_NF])
{
	bool above = false;

	if (b->n < p->min_obs)
		return GR_EB_LEARN;
	for (int f = 0; f < GR_EB_NF; f++)
		if (x[f] > p->factor * b->peak[f])
			above = true;
	if (!above)
		return GR_EB_LEARN;
	return x[GR_EB_PPS] >= p->min_pps ? GR_EB_DEVIATION : GR_EB_SKIP;
}

void gr_eb_learn(const struct gr_eb_params *p, struct gr_eb *b, const double x[GR_EB_NF])
{
	for (int f = 0; f < GR_EB_NF; f++) {
		b->ewma[f] = b->n == 0 ? (float)x[f]
				       : (float)(b->ewma[f] + p->alpha * (x[f] - b->ewma[f]));
		if ((float)x[f] > b->peak[f])
			b->peak[f] = (float)x[f];
	}
	if (b->n < UINT32_MAX)
		b->n++;
}
