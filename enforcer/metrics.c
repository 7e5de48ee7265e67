/* SPDX-License-Identifier: MPL-2.0 */
/* kl-enforcer's Prometheus page (enforcer.h, metrics.c section). */
#include "enforcer/enforcer.h"

#include <stdio.h>
#include <string.h>

#include "bpf/shield.h"
#include "common/prom.h"

static const char *const link_label[ENF_LINK_MAX] = {
	[ENF_LINK_DECIDER] = "decider",
	[ENF_LINK_GRAPHD] = "graphd",
};

static const char *const origin_label[ENF_ORIGIN_SLOTS] = {
	[KL_ORIGIN_OPERATOR] = "operator",
	[KL_ORIGIN_DECIDER] = "decider",
	[KL_ORIGIN_GRAPHD] = "graphd",
};

/* The counters that are a packet's verdict; the others are what the
 * program saw on the way (ipv4, fragments, events, ...). */
static bool is_verdict(unsigned t)
{
	switch (t) {
	case KL_T_PASS:
	case KL_T_DROP_ALLOW:
	case KL_T_DROP_DENY:
	case KL_T_DROP_RL:
	case KL_T_DROP_EDGE:
	case KL_T_DROP_NEWSRC:
		return true;
	default:
		return false;
	}
}

static void requests(const struct enf_ctx *ctx, struct kl_prom *p)
{
	char lab[64];
	for (int s = 0; s < KL_STATUS_MAX; s++) {
		snprintf(lab, sizeof(lab), "status=\"%s\"", kl_status_name(s));
		kl_prom_add(p, "kernloom_enforcer_ctl_requests_total", "counter",
			    "klctl requests answered, by status.", lab, (double)ctx->ctl_requests[s]);
	}
	for (int l = 0; l < ENF_LINK_MAX; l++) {
		snprintf(lab, sizeof(lab), "link=\"%s\"", link_label[l]);
		kl_prom_add(p, "kernloom_enforcer_link_batches_total", "counter",
			    "DECISIONS and EDGE_RULES messages applied, by link.", lab,
			    (double)ctx->links[l].batches);
	}
	for (int l = 0; l < ENF_LINK_MAX; l++) {
		snprintf(lab, sizeof(lab), "link=\"%s\"", link_label[l]);
		kl_prom_add(p, "kernloom_enforcer_link_records_applied_total", "counter",
			    "Decision and edge records applied, by link.", lab,
			    (double)ctx->links[l].applied);
	}
	for (int l = 0; l < ENF_LINK_MAX; l++) {
		for (unsigned r = 1; r < KL_ACK_REASON_MAX; r++) {
			snprintf(lab, sizeof(lab), "link=\"%s\",reason=\"%s\"", link_label[l],
				 kl_ack_reason_name(r));
			kl_prom_add(p, "kernloom_enforcer_link_records_refused_total", "counter",
				    "Decision and edge records refused, by link and reason.", lab,
				    (double)ctx->links[l].refused[r]);
		}
	}
	for (int l = 0; l < ENF_LINK_MAX; l++) {
		snprintf(lab, sizeof(lab), "link=\"%s\"", link_label[l]);
		kl_prom_add(p, "kernloom_enforcer_link_released_total", "counter",
			    "Entries removed by RELEASE, by link.", lab, (double)ctx->links[l].released);
	}
	for (int l = 0; l < ENF_LINK_MAX; l++) {
		snprintf(lab, sizeof(lab), "link=\"%s\"", link_label[l]);
		kl_prom_add(p, "kernloom_enforcer_link_busy_refused_total", "counter",
			    "Requests refused for keeping the enforcer busy too long, by link.", lab,
			    (double)ctx->links[l].busy_refused);
	}
}

static void maps(const struct enf_ctx *ctx, struct kl_prom *p)
{
	char lab[96];
	/* The policy maps' counts are kept by every write (enf_count_note), so
	 * the page costs no map walk; the allowlists are small LPM tries. */
	for (int m = 0; m < ENF_M_MAX; m++) {
		long n;
		if (ctx->fd[m] < 0)
			continue;
		if (enf_map_counted((enum enf_map_id)m))
			n = (long)ctx->map_count[m];
		else if (m == ENF_M_ALLOW4 || m == ENF_M_ALLOW6)
			n = enf_map_count(ctx, (enum enf_map_id)m);
		else
			continue;
		if (n < 0)
			continue;
		snprintf(lab, sizeof(lab), "map=\"%s\"", enf_map_specs[m].name);
		kl_prom_add(p, "kernloom_enforcer_map_entries", "gauge",
			    "Entries in each policy map (deny, rate-limit, edge, allow).", lab,
			    (double)n);
	}
	for (int m = 0; m < ENF_M_MAX; m++) {
		if (ctx->fd[m] < 0 || ctx->map_max[m] == 0)
			continue;
		snprintf(lab, sizeof(lab), "map=\"%s\"", enf_map_specs[m].name);
		kl_prom_add(p, "kernloom_enforcer_map_max_entries", "gauge",
			    "max_entries of each map.", lab, (double)ctx->map_max[m]);
	}
	for (int o = 0; o < ENF_ORIGIN_SLOTS; o++) {
		if (origin_label[o] == NULL)
			continue;
		snprintf(lab, sizeof(lab), "origin=\"%s\"", origin_label[o]);
		kl_prom_add(p, "kernloom_enforcer_entries", "gauge",
			    "Policy entries by who made them.", lab, (double)ctx->origin_count[o]);
	}
}

static void xdp(const struct enf_ctx *ctx, struct kl_prom *p)
{
	uint64_t t[KL_T_MAX];
	char lab[64];
	if (enf_totals_read(ctx, t) < 0)
		return; /* no sample beats a wrong zero */
	for (unsigned i = 0; i < KL_T_MAX; i++) {
		if (!is_verdict(i))
			continue;
		snprintf(lab, sizeof(lab), "verdict=\"%s\"", enf_total_name(i));
		kl_prom_add(p, "kernloom_enforcer_xdp_verdicts_total", "counter",
			    "Packets by XDP verdict (kernloom_totals, summed over CPUs).", lab,
			    (double)t[i]);
	}
	for (unsigned i = 0; i < KL_T_MAX; i++) {
		if (is_verdict(i))
			continue;
		snprintf(lab, sizeof(lab), "counter=\"%s\"", enf_total_name(i));
		kl_prom_add(p, "kernloom_enforcer_xdp_total", "counter",
			    "The other kernloom_totals counters (packets, bytes, malformed, ...).",
			    lab, (double)t[i]);
	}
}

void enf_metrics_page(const struct enf_ctx *ctx, struct kl_prom *p, double now_s)
{
	kl_prom_add(p, "kernloom_enforcer_interfaces_attached", "gauge",
		    "Interfaces the shield is attached to.", NULL, (double)ctx->n_ifaces);
	requests(ctx, p);
	maps(ctx, p);
	xdp(ctx, p);
	kl_prom_add(p, "kernloom_enforcer_last_write_timestamp_seconds", "gauge",
		    "When this page was written (Unix time).", NULL, now_s);
}
