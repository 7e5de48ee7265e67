/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Per-edge baselines: for every edge, an EWMA and a peak of its
 * packets/s and bytes/s, learned one tick at a time. Once an edge has
 * min_obs observations, a tick that carries more than factor x its peak
 * (and at least min_pps) is a deviation: graphd reports it to the decider
 * as an observe-mode violation (strikes, never a block by itself) and it is
 * not learned, so a jump never becomes the new normal. Pure functions.
 */
#ifndef KL_GRAPHD_EDGEBASE_H
#define KL_GRAPHD_EDGEBASE_H

#include <stdbool.h>
#include <stdint.h>

enum { GR_EB_PPS = 0, GR_EB_BPS = 1, GR_EB_NF = 2 };

struct gr_eb_params {
	bool enabled;
	uint32_t min_obs;  /* observations before deviations are judged (30) */
	double alpha;      /* EWMA weight of a new observation (0.05) */
	double factor;     /* deviation: rate > factor x peak (3.0) */
	double min_pps;    /* ... and pps >= this (10): tiny edges never deviate */
};

struct gr_eb {
	float ewma[GR_EB_NF];
	float peak[GR_EB_NF];
	uint32_t n;
};

enum gr_eb_verdict { GR_EB_LEARN = 0, GR_EB_DEVIATION, GR_EB_SKIP };

void gr_eb_params_default(struct gr_eb_params *p);
/* What one tick's rates x[] mean for baseline b: learn them, a deviation,
 * or (above factor x peak, but too small to report) neither. */
enum gr_eb_verdict gr_eb_judge(const struct gr_eb_params *p, const struct gr_eb *b,
			       const double x[GR_EB_NF]);
void gr_eb_learn(const struct gr_eb_params *p, struct gr_eb *b, const double x[GR_EB_NF]);

#endif
