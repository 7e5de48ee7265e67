/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The printing sink: replay output and dry-run logging. Formatting is done
 * by hand (not by jansson) so the bytes are fixed: same input, same output.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "decider/io.h"

struct psink {
	struct dec_sink s;
	FILE *out;
	bool json, dry_run;
};

const char *dec_fmt_t(int64_t t_ms, char *buf, size_t len)
{
	int64_t sec = t_ms / 1000, frac = t_ms % 1000;

	if (frac < 0) {
		sec -= 1;
		frac += 1000;
	}
	if (frac == 0)
		snprintf(buf, len, "%" PRId64 ".0", sec);
	else if (frac % 100 == 0)
		snprintf(buf, len, "%" PRId64 ".%01" PRId64, sec, frac / 100);
	else if (frac % 10 == 0)
		snprintf(buf, len, "%" PRId64 ".%02" PRId64, sec, frac / 10);
	else
		snprintf(buf, len, "%" PRId64 ".%03" PRId64, sec, frac);
	return buf;
}

static const char *ttl_text(int64_t ms, char *buf, size_t len)
{
	return kl_duration_format((uint64_t)(ms < 0 ? 0 : ms) * 1000000ull, buf, len);
}

static void emit_text(struct psink *p, int64_t t_ms, const struct dec_change *c)
{
	char ip[KL_ADDR_STRLEN], ts[32], ttl[32];
	char state[256], action[256];

	kl_addr_format(&c->addr, ip, sizeof(ip));
	snprintf(state, sizeof(state), "STATE %s %s->%s strikes=%d sev=%.2f reason=%s", ip,
		 dec_level_name(c->from), dec_level_name(c->to), c->strikes, c->sev,
		 dec_reason_name(c->reason));
	if (c->action == DEC_LVL_OBSERVE)
		snprintf(action, sizeof(action), "ACTION ip=%s %s->%s dry_run=%s action=%s", ip,
			 dec_level_name(c->from), dec_level_name(c->to), p->dry_run ? "true" : "false",
			 c->to == DEC_LVL_OBSERVE ? "release" : "observe");
	else if (c->action == DEC_LVL_BLOCK)
		snprintf(action, sizeof(action), "ACTION ip=%s %s->%s dry_run=%s action=block ttl=%s",
			 ip, dec_level_name(c->from), dec_level_name(c->to),
			 p->dry_run ? "true" : "false", ttl_text(c->ttl_ms, ttl, sizeof(ttl)));
	else
		snprintf(action, sizeof(action),
			 "ACTION ip=%s %s->%s dry_run=%s action=%s rate=%" PRIu64 " burst=%" PRIu64
			 " ttl=%s",
			 ip, dec_level_name(c->from), dec_level_name(c->to),
			 p->dry_run ? "true" : "false", dec_action_names[c->action], c->rate, c->burst,
			 ttl_text(c->ttl_ms, ttl, sizeof(ttl)));
	if (p->out != NULL) {
		dec_fmt_t(t_ms, ts, sizeof(ts));
		fprintf(p->out, "t=%s %s\nt=%s %s\n", ts, state, ts, action);
	} else {
		kl_info("%s", state);
		kl_info("%s", action);
	}
}

static void emit_json(struct psink *p, int64_t t_ms, const struct dec_change *c)
{
	char ip[KL_ADDR_STRLEN], ts[32];

	kl_addr_format(&c->addr, ip, sizeof(ip));
	fprintf(p->out,
		"{\"t\": %s, \"ip\": \"%s\", \"from\": \"%s\", \"to\": \"%s\", \"severity\": %.2f, "
		"\"strikes\": %d, \"reason\": \"%s\"}\n",
		dec_fmt_t(t_ms, ts, sizeof(ts)), ip, dec_level_name(c->from), dec_level_name(c->to),
		c->sev, c->strikes, dec_reason_name(c->reason));
}

static int print_apply(struct dec_sink *s, int64_t t_ms, const struct dec_change *c, size_t n)
{
	struct psink *p = (struct psink *)s;

	for (size_t i = 0; i < n; i++) {
		if (c[i].reason == DEC_R_REFRESH) {
			char ip[KL_ADDR_STRLEN], ttl[32];
			kl_debug("RENEW ip=%s level=%s ttl=%s dry_run=%s",
				 kl_addr_format(&c[i].addr, ip, sizeof(ip)), dec_level_name(c[i].to),
				 ttl_text(c[i].ttl_ms, ttl, sizeof(ttl)), p->dry_run ? "true" : "false");
			continue;
		}
		if (p->json && p->out != NULL)
			emit_json(p, t_ms, &c[i]);
		else
			emit_text(p, t_ms, &c[i]);
	}
	if (p->out != NULL && ferror(p->out))
		return -1;
	return 0;
}

static int print_release(struct dec_sink *s, int64_t t_ms, const struct kl_addr *cidr,
			 uint32_t budget, uint32_t *removed)
{
	struct psink *p = (struct psink *)s;
	char a[KL_ADDR_STRLEN], ts[32];

	/* Nothing is enforced through a printing sink, so nothing to remove. */
	kl_debug("RELEASE cidr=%s budget=%u t=%s dry_run=%s", kl_addr_format(cidr, a, sizeof(a)),
		 budget, dec_fmt_t(t_ms, ts, sizeof(ts)), p->dry_run ? "true" : "false");
	*removed = 0;
	return 0;
}

static void print_close(struct dec_sink *s)
{
	struct psink *p = (struct psink *)s;

	if (p != NULL && p->out != NULL)
		fflush(p->out);
	free(p);
}

struct dec_sink *dec_sink_print_new(FILE *out, bool json, bool dry_run)
{
	struct psink *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	*p = (struct psink){
		.s = { .apply = print_apply, .release = print_release, .close = print_close },
		.out = out, .json = json, .dry_run = dry_run,
	};
	return &p->s;
}
