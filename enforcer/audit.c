/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer's audit records (docs/audit.md): who asked for what
 * and what came of it, one record per request and one per entry of a
 * decider or graphd batch, each with the peer's role, uid and pid from the
 * connection's credentials, and one per message refused before it could be
 * handled (not the role's to send, malformed, over its time share).
 */

/* Refused messages recorded per second: a peer that loops on a bad message
 * must not fill the audit disk; the next record counts what was left out. */
#define REFUSALS_PER_S 10
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/audit.h"
#include "enforcer/enforcer.h"

static int peer_json(char *buf, size_t len, const struct enf_actor *who)
{
	return snprintf(buf, len, "\"peer\":{\"role\":\"%s\",\"uid\":%u,\"pid\":%d}",
			kl_role_name(who->role), (unsigned)who->uid, (int)who->pid);
}

/* The address a request names ("addr=X" in its detail text), if any. */
static void subject_of(const char *detail, char *out, size_t len)
{
	const char *p = strstr(detail, "addr=");
	out[0] = '\0';
	if (p && (p == detail || p[-1] == ' ')) {
		size_t n = strcspn(p + 5, " ");
		snprintf(out, len, "%.*s", (int)n, p + 5);
	}
}

void enf_audit_request(struct enf_ctx *ctx, const struct enf_actor *who, const char *action,
		       const char *detail, int result)
{
	if (ctx->audit == NULL)
		return;
	char d[1024], peer[160], sub[KL_ADDR_STRLEN], act[64], det[640];
	subject_of(detail, sub, sizeof(sub));
	peer_json(peer, sizeof(peer), who);
	kl_audit_json_str(act, sizeof(act), action);
	kl_audit_json_str(det, sizeof(det), detail);
	snprintf(d, sizeof(d), "{\"action\":%s,\"detail\":%s,%s}", act, det, peer);
	kl_audit_record(ctx->audit, result == KL_OK ? "change" : "refused", sub, d,
			kl_status_name(result));
	kl_audit_flush(ctx->audit);
}

void enf_audit_entry(struct enf_ctx *ctx, const struct enf_actor *who, const char *what,
		     const struct kl_addr *a, const char *extra, uint8_t reason, const char *why)
{
	if (ctx->audit == NULL)
		return;
	char d[1024], peer[160], sub[KL_ADDR_STRLEN], w[96], y[320];
	kl_addr_format(a, sub, sizeof(sub));
	peer_json(peer, sizeof(peer), who);
	kl_audit_json_str(w, sizeof(w), what);
	kl_audit_json_str(y, sizeof(y), why ? why : "");
	snprintf(d, sizeof(d), "{\"what\":%s%s%s,\"reason\":\"%s\",\"why\":%s,%s}", w,
		 extra && extra[0] ? "," : "", extra ? extra : "", kl_ack_reason_name(reason), y,
		 peer);
	kl_audit_record(ctx->audit, reason == KL_ACK_OK ? "map_change" : "refused", sub, d,
			reason == KL_ACK_OK ? "ok" : kl_ack_reason_name(reason));
}

void enf_audit_refusal(struct enf_ctx *ctx, const struct enf_actor *who, const char *what,
		       int status, const char *why)
{
	static time_t window;
	static unsigned in_window;
	static uint64_t left_out;
	if (ctx->audit == NULL)
		return;
	time_t t = time(NULL);
	if (t != window) {
		window = t;
		in_window = 0;
	}
	if (in_window++ >= REFUSALS_PER_S) {
		left_out++;
		return;
	}
	char d[512];
	if (left_out > 0)
		snprintf(d, sizeof(d), "%s (and %" PRIu64 " refused messages before this one, not "
				       "recorded: over %d a second)", why, left_out, REFUSALS_PER_S);
	else
		snprintf(d, sizeof(d), "%s", why);
	left_out = 0;
	enf_audit_request(ctx, who, what, d, status);
}
