/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Control requests: policy check, apply to the maps, commit. Every state
 * change ends in enforcer_commit(), which bumps the policy generation (so
 * the data plane re-reads cached verdicts) and logs who asked what.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/status.h"
#include "enforcer/enforcer.h"

#define UNUSED __attribute__((unused))

#define LIST_DEFAULT 10000
#define TOP_DEFAULT 10
#define EVENTS_DEFAULT 100

void enf_result_set(struct enf_result *res, int status, const char *fmt, ...)
{
	va_list ap;
	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

void enf_result_free(struct enf_result *res)
{
	json_decref(res->json);
	res->json = NULL;
}

static const char *actor_text(const struct enf_actor *who, char *buf, size_t len)
{
	snprintf(buf, len, "%s(uid=%u,pid=%d)", kl_role_name(who->role), (unsigned)who->uid,
		 (int)who->pid);
	return buf;
}

void enforcer_commit(struct enf_ctx *ctx, const struct enf_actor *who, const char *action,
		     const char *detail, int result, bool bump)
{
	char a[64];
	/* A failed or partial write may still have changed something, and a
	 * spurious bump only costs one re-read per cached source. */
	if (bump) {
		int rc = enf_gen_bump(ctx);
		if (rc < 0) {
			/* The write happened but cached verdicts may lag until
			 * the next bump: say so loudly. */
			kl_error("CHANGE %s: policy_gen bump failed: %s", action, strerror(-rc));
		}
	}
	enf_audit_request(ctx, who, action, detail, result);
	kl_log(result == KL_OK ? KL_LOG_INFO : KL_LOG_WARN, "CHANGE who=%s action=%s%s%s result=%s",
	       actor_text(who, a, sizeof(a)), action, detail[0] ? " " : "", detail,
	       kl_status_name(result));
}

static struct enf_actor self_actor(void)
{
	return (struct enf_actor){ .role = KL_ROLE_ENFORCER, .uid = getuid(), .pid = getpid() };
}

/* ---- small helpers ---- */

static const char *fmt_addr(const struct kl_addr *a, char *buf, size_t len)
{
	return kl_addr_format(a, buf, len);
}

static const char *fmt_ttl(uint64_t ttl_ms, char *buf, size_t len)
{
	if (ttl_ms == 0)
		return "permanent";
	char d[48];
	snprintf(buf, len, "ttl %s", kl_duration_format(ttl_ms * KL_NS_PER_MS, d, sizeof(d)));
	return buf;
}

static json_t *expires_json(uint64_t expires_ns, uint64_t now)
{
	if (expires_ns == 0)
		return json_null();
	return json_integer(expires_ns > now ? (json_int_t)((expires_ns - now) / KL_NS_PER_MS) : 0);
}

static const char *proto_text(unsigned proto, char *buf, size_t len)
{
	return enf_proto_name(proto, buf, len);
}

static enum enf_map_id fam_map(const struct kl_addr *a, enum enf_map_id v4)
{
	/* every family pair is laid out as <v4>, <v6> in enum enf_map_id,
	 * except the LPM deny pair, which also follows that rule */
	return a->family == 4 ? v4 : (enum enf_map_id)(v4 + 1);
}

static void req_detail(const struct kl_ctl_req *r, char *buf, size_t len)
{
	char a[KL_ADDR_STRLEN], t[64], p[16];
	size_t o = 0;
	buf[0] = '\0';
#define ADD(...) o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__)
	if (r->addr.family)
		ADD("addr=%s ", fmt_addr(&r->addr, a, sizeof(a)));
	if (r->ifname[0])
		ADD("ifname=%s ", r->ifname);
	/* what the command carries, as the command table says */
	unsigned uses = kl_ctl_cmd_uses(r->cmd);
	if (uses & KL_CTL_U_TTL)
		ADD("%s ", r->ttl_ms ? fmt_ttl(r->ttl_ms, t, sizeof(t)) : "permanent");
	if (uses & KL_CTL_U_RATE)
		ADD("rate=%llu burst=%llu ", (unsigned long long)r->rate,
		    (unsigned long long)r->burst);
	if (r->proto)
		ADD("port=%u proto=%s ", r->port, proto_text(r->proto, p, sizeof(p)));
	if (uses & KL_CTL_U_MODE)
		ADD("mode=%u ", r->mode);
	if (r->flags & KL_CTL_F_FORCE)
		ADD("force ");
	if (r->cmd == KL_CTL_SAMPLING)
		ADD("mask=%llu ", (unsigned long long)r->count);
#undef ADD
	if (o > 0 && o <= len)
		buf[o - 1] = '\0';
}

static int errno_status(int e)
{
	return e == ENOENT ? KL_ERR_NOTFOUND : KL_ERR_FAILED;
}

/* ---- lists ---- */

enum list_kind { L_ALLOW, L_DENY_HOST, L_DENY_CIDR, L_RL, L_EDGE_DENY, L_EDGE_ALLOW, L_EDGE_RL };

struct list_acc {
	json_t *arr;
	size_t total, cap;
	uint64_t now;
	int family;
	enum list_kind kind;
	bool hide_expired;
};

static void key_addr(const struct list_acc *acc, const void *key, struct kl_addr *a)
{
	switch (acc->kind) {
	case L_ALLOW:
	case L_DENY_CIDR:
		if (acc->family == 4)
			enf_addr_from_lpm4(key, a);
		else
			enf_addr_from_lpm6(key, a);
		break;
	case L_DENY_HOST:
	case L_RL: {
		if (acc->family == 4) {
			uint32_t v;
			memcpy(&v, key, 4);
			enf_addr_from_host4(v, a);
		} else {
			enf_addr_from_host6(key, a);
		}
		break;
	}
	default:
		if (acc->family == 4) {
			const struct kl_edge4_key *k = key;
			enf_addr_from_host4(k->src, a);
		} else {
			const struct kl_edge6_key *k = key;
			enf_addr_from_host6(k->src, a);
		}
		break;
	}
}

static int list_visit(const void *key, const void *val, void *arg)
{
	struct list_acc *acc = arg;
	struct kl_addr a;
	char ip[KL_ADDR_STRLEN], p[16];
	bool rl = acc->kind == L_RL || acc->kind == L_EDGE_RL;
	const struct kl_rule *rule = val;
	const struct kl_rl_rule *rr = val;
	uint64_t exp = rl ? rr->expires_ns : rule->expires_ns;
	uint32_t origin = rl ? rr->origin : rule->origin;

	if (acc->hide_expired && enf_expired(exp, acc->now))
		return 0;
	acc->total++;
	if (json_array_size(acc->arr) >= acc->cap)
		return 0;
	key_addr(acc, key, &a);
	fmt_addr(&a, ip, sizeof(ip));
	json_t *o = json_object();
	bool edge = acc->kind >= L_EDGE_DENY;
	json_object_set_new(o, edge ? "src" : "ip", json_string(ip));
	if (edge) {
		uint16_t port = acc->family == 4 ? ((const struct kl_edge4_key *)key)->port
						 : ((const struct kl_edge6_key *)key)->port;
		uint8_t proto = acc->family == 4 ? ((const struct kl_edge4_key *)key)->proto
						 : ((const struct kl_edge6_key *)key)->proto;
		/* the same address field name as the other lists, so one jq
		 * filter fits all */
		json_object_set_new(o, "ip", json_string(ip));
		json_object_set_new(o, "port", json_integer(port));
		json_object_set_new(o, "proto", json_string(proto_text(proto, p, sizeof(p))));
		json_object_set_new(o, "kind", json_string(acc->kind == L_EDGE_DENY    ? "deny"
							   : acc->kind == L_EDGE_ALLOW ? "allow"
										       : "rl"));
	} else if (acc->kind == L_DENY_HOST || acc->kind == L_DENY_CIDR) {
		json_object_set_new(o, "kind",
				    json_string(acc->kind == L_DENY_HOST ? "host" : "cidr"));
	}
	if (rl) {
		json_object_set_new(o, "rate", json_integer((json_int_t)rr->rate_pps));
		json_object_set_new(o, "burst", json_integer((json_int_t)rr->burst));
	}
	json_object_set_new(o, "origin", json_string(enf_origin_name(origin)));
	json_object_set_new(o, "expires_in_ms", expires_json(exp, acc->now));
	json_array_append_new(acc->arr, o);
	return 0;
}

static int list_maps(struct enf_ctx *ctx, struct list_acc *acc, enum enf_map_id m4,
		     enum list_kind kind)
{
	acc->kind = kind;
	for (int f = 0; f < 2; f++) {
		acc->family = f == 0 ? 4 : 6;
		int rc = enf_map_foreach(ctx, (enum enf_map_id)(m4 + f), list_visit, acc);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static json_t *list_doc(struct list_acc *acc)
{
	return json_pack("{s:o, s:I, s:b}", "entries", acc->arr, "total", (json_int_t)acc->total,
			 "truncated", acc->total > json_array_size(acc->arr));
}

static void list_init(struct list_acc *acc, const struct enf_ctx *ctx, uint64_t count,
		      bool hide_expired)
{
	memset(acc, 0, sizeof(*acc));
	acc->arr = json_array();
	acc->cap = count ? (size_t)count : LIST_DEFAULT;
	acc->now = ctx->now();
	acc->hide_expired = hide_expired;
}

/* ---- handlers ---- */

static void h_stats(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r UNUSED, struct enf_result *res, const char *detail UNUSED)
{
	uint64_t t[KL_T_MAX];
	int rc = enf_totals_read(ctx, t);
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot read %s: %s", KL_MAP_TOTALS,
			       strerror(-rc));
		return;
	}
	json_t *o = json_object();
	for (unsigned i = 0; i < KL_T_MAX; i++)
		json_object_set_new(o, enf_total_name(i), json_integer((json_int_t)t[i]));
	res->json = o;
	enf_result_set(res, KL_OK,
		       "pkts=%llu bytes=%llu pass=%llu drop_allow=%llu drop_deny=%llu "
		       "drop_rl=%llu drop_edge=%llu malformed=%llu non_ip=%llu",
		       (unsigned long long)t[KL_T_PKTS], (unsigned long long)t[KL_T_BYTES],
		       (unsigned long long)t[KL_T_PASS], (unsigned long long)t[KL_T_DROP_ALLOW],
		       (unsigned long long)t[KL_T_DROP_DENY], (unsigned long long)t[KL_T_DROP_RL],
		       (unsigned long long)t[KL_T_DROP_EDGE], (unsigned long long)t[KL_T_MALFORMED],
		       (unsigned long long)t[KL_T_NON_IP]);
}

struct src_acc {
	struct enf_src_row *rows;
	size_t n, cap;
	int family;
	bool oom;
};

static int src_visit(const void *key, const void *val, void *arg)
{
	struct src_acc *acc = arg;
	struct kl_src_slot sl;
	(void)key;
	memcpy(&sl, val, sizeof(sl));
	/* Free, or caught mid-claim (odd seq): no source to show. */
	if (sl.seq == 0 || (sl.seq & 1) || sl.family != (uint32_t)acc->family)
		return 0;
	if (acc->n == acc->cap) {
		size_t nc = acc->cap ? acc->cap * 2 : 4096;
		struct enf_src_row *nr = realloc(acc->rows, nc * sizeof(*nr));
		if (!nr) {
			acc->oom = true;
			return 1;
		}
		acc->rows = nr;
		acc->cap = nc;
	}
	struct enf_src_row *row = &acc->rows[acc->n++];
	if (acc->family == 4)
		enf_addr_from_host4(sl.owner4, &row->addr);
	else
		enf_addr_from_host6(sl.owner, &row->addr);
	row->st = sl.s;
	return 0;
}

static json_int_t secs_ago(uint64_t t, uint64_t now)
{
	return t && now > t ? (json_int_t)((now - t) / KL_NS_PER_S) : 0;
}

static const char *const top_names[KL_TOP_MAX] = { "pkts", "bytes", "drops", "droprl" };

static void h_top_src(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct src_acc acc = { 0 };
	for (int f = 0; f < 2; f++) {
		acc.family = f == 0 ? 4 : 6;
		int rc = enf_map_foreach(ctx, f == 0 ? ENF_M_SRC4 : ENF_M_SRC6, src_visit, &acc);
		if (rc < 0 || acc.oom) {
			free(acc.rows);
			enf_result_set(res, KL_ERR_FAILED, "cannot read source telemetry: %s",
				       acc.oom ? "out of memory" : strerror(-rc));
			return;
		}
	}
	enum kl_top_by by = r->mode < KL_TOP_MAX ? (enum kl_top_by)r->mode : KL_TOP_PKTS;
	enf_top_sort(acc.rows, acc.n, by);
	size_t want = r->count ? (size_t)r->count : TOP_DEFAULT;
	uint64_t now = ctx->now();
	json_t *arr = json_array();
	for (size_t i = 0; i < acc.n && i < want; i++) {
		const struct kl_src_stats *s = &acc.rows[i].st;
		char ip[KL_ADDR_STRLEN];
		json_t *o = json_object();
		json_object_set_new(o, "ip", json_string(fmt_addr(&acc.rows[i].addr, ip, sizeof(ip))));
#define U(name, v) json_object_set_new(o, name, json_integer((json_int_t)(v)))
		U("pkts", s->pkts);
		U("bytes", s->bytes);
		U("syn", s->syn);
		U("synack", s->synack);
		U("rst", s->rst);
		U("pass", s->pass);
		U("drop_allow", s->drop_allow);
		U("drop_deny", s->drop_deny);
		U("drop_rl", s->drop_rl);
		U("drop_edge", s->drop_edge);
		U("ports", s->ports_distinct);
		U("first_seen", secs_ago(s->first_seen_ns, now));
		U("last_seen", secs_ago(s->last_seen_ns, now));
#undef U
		json_array_append_new(arr, o);
	}
	res->json = json_pack("{s:s, s:o, s:I, s:b}", "by", top_names[by], "entries", arr, "total",
			      (json_int_t)acc.n, "truncated", acc.n > want);
	enf_result_set(res, KL_OK, "top %zu of %zu sources by %s", json_array_size(arr), acc.n,
		       top_names[by]);
	free(acc.rows);
}

static void h_events(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	if (ctx->rb)
		ring_buffer__consume(ctx->rb);
	size_t want = r->count ? (size_t)r->count : EVENTS_DEFAULT;
	if (want > ENF_EVRING_CAP)
		want = ENF_EVRING_CAP;
	struct kl_event *ev = calloc(want ? want : 1, sizeof(*ev));
	if (!ev) {
		enf_result_set(res, KL_ERR_FAILED, "out of memory");
		return;
	}
	size_t n = ctx->ring ? enf_evring_last(ctx->ring, want, ev) : 0;
	uint64_t now = ctx->now();
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct kl_addr a;
		char ip[KL_ADDR_STRLEN], p[16];
		if (ev[i].family == 4) {
			uint32_t v;
			memcpy(&v, ev[i].addr, 4);
			enf_addr_from_host4(v, &a);
		} else {
			enf_addr_from_host6(ev[i].addr, &a);
		}
		json_array_append_new(
			arr, json_pack("{s:I, s:s, s:s, s:s, s:i, s:i}", "age_ms",
				       (json_int_t)(now > ev[i].ts_ns ? (now - ev[i].ts_ns) / KL_NS_PER_MS : 0),
				       "ip", fmt_addr(&a, ip, sizeof(ip)), "kind",
				       enf_event_kind_name(ev[i].kind), "proto",
				       proto_text(ev[i].proto, p, sizeof(p)), "dport", (int)ev[i].dport,
				       "len", (int)ev[i].pkt_len));
	}
	free(ev);
	uint64_t pushed = ctx->ring ? ctx->ring->pushed : 0;
	res->json = json_pack("{s:o, s:I, s:b}", "entries", arr, "total", (json_int_t)pushed,
			      "truncated", pushed > n);
	enf_result_set(res, KL_OK, "%zu events (of %llu received since start)", n,
		       (unsigned long long)pushed);
}

static json_t *maps_json(const struct enf_ctx *ctx)
{
	json_t *o = json_object();
	for (int m = 0; m < ENF_M_MAX; m++) {
		if (ctx->fd[m] < 0)
			continue;
		long n = enf_map_specs[m].key_size ? enf_map_count(ctx, (enum enf_map_id)m) : -1;
		json_t *e = json_object();
		json_object_set_new(e, "entries", n >= 0 ? json_integer(n) : json_null());
		json_object_set_new(e, "max_entries", json_integer(ctx->map_max[m]));
		json_object_set_new(o, enf_map_specs[m].name, e);
	}
	return o;
}

/* What every daemon says (common/status.h). No ticks: it serves
 * requests; frames in are klctl requests and the links' batches, frames
 * out the sampled events taken from the data plane. */
static json_t *self_json(const struct enf_ctx *ctx)
{
	uint64_t in = 0;
	for (int s = 0; s < KL_STATUS_MAX; s++)
		in += ctx->ctl_requests[s];
	for (int l = 0; l < ENF_LINK_MAX; l++)
		in += ctx->links[l].batches;
	struct kl_daemon_status ds = { .name = "kl-enforcer", .enforcing = true,
				       .mode = "enforcing", .last_tick_ms = KL_T_NONE,
				       .frames_in = in,
				       .frames_out = ctx->ring != NULL ? ctx->ring->pushed : 0 };
	return kl_daemon_status_json(&ds, kl_unix_ms());
}

static void h_status(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct kl_cfg c;
	/* `klctl status` asks every daemon for this alone; counting the maps'
	 * entries below walks every key, too slow for a monitoring probe. */
	if (r->mode == 1) {
		res->json = json_pack("{s:o}", "daemon", self_json(ctx));
		enf_result_set(res, KL_OK, "kl-enforcer %s", KL_VERSION);
		return;
	}
	int rc = enf_cfg_read(ctx, &c);
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot read %s: %s", KL_MAP_CFG, strerror(-rc));
		return;
	}
	const struct enf_config *cfg = ctx->cfg;
	json_t *prot = json_array();
	for (size_t i = 0; i < ctx->policy.n_protect; i++) {
		char ip[KL_ADDR_STRLEN];
		json_array_append_new(prot, json_string(fmt_addr(&ctx->policy.protect[i], ip,
								 sizeof(ip))));
	}
	json_t *rl = c.rl_burst ? json_pack("{s:I, s:I}", "rate", (json_int_t)c.rl_rate_pps,
					    "burst", (json_int_t)c.rl_burst)
				: json_null();
	/* The spoofing signal and what holds it back (shield.h, admission
	 * filter and kl_cfg.new_*). */
	uint64_t tot[KL_T_MAX] = { 0 };
	(void)enf_totals_read(ctx, tot);
	json_t *ns = json_pack("{s:b, s:I, s:I}", "admission", c.admit_off == 0, "total",
			       (json_int_t)(tot[KL_T_SRC_UNADMITTED] & INT64_MAX), "dropped",
			       (json_int_t)(tot[KL_T_DROP_NEWSRC] & INT64_MAX));
	if (c.new_burst)
		json_object_set_new(ns, "limit",
				    json_pack("{s:I, s:I, s:I}", "rate", (json_int_t)c.new_rate_pps,
					      "burst", (json_int_t)c.new_burst, "expires_ns",
					      (json_int_t)(c.new_expires_ns & INT64_MAX)));
	json_t *ifs = enf_ifaces_json(ctx);
	res->json = json_pack("{s:o, s:s, s:s, s:s, s:I, s:b, s:s, s:o, s:I, s:I, s:I, s:o, s:o, s:o}",
			      "interfaces", ifs, "pin_dir", cfg->pin_dir, "obj", cfg->obj,
			      "features", enf_features_name(cfg->features), "prog_id",
			      (json_int_t)ctx->prog_id, "allow_enforce", c.allow_enforce != 0,
			      "edge_mode", enf_edge_mode_name(c.edge_mode), "rl", rl, "sample_mask",
			      (json_int_t)c.sample_mask, "ephemeral_min", (json_int_t)c.ephemeral_min,
			      "policy_gen", (json_int_t)c.policy_gen, "protected", prot, "maps",
			      maps_json(ctx), "links", enf_links_json(ctx));
	if (res->json)
		json_object_set_new(res->json, "new_sources", ns);
	else
		json_decref(ns);
	if (res->json)
		json_object_set_new(res->json, "daemon", self_json(ctx));
	enf_result_set(res, KL_OK, "%zu interface(s) attached, features %s, policy_gen %u",
		       ctx->n_ifaces, enf_features_name(cfg->features), c.policy_gen);
}

static void h_attach(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail)
{
	char msg[ENF_TEXT_LEN];
	int rc = enf_attach(ctx, r->ifname, (enum kl_xdp_mode)r->mode, r->flags & KL_CTL_F_FORCE,
			    msg, sizeof(msg));
	enf_result_set(res, rc < 0 ? (rc == -2 ? KL_ERR_REFUSED : KL_ERR_FAILED) : KL_OK, "%s",
		       msg);
	res->json = json_pack("{s:o}", "interfaces", enf_ifaces_json(ctx));
	enforcer_commit(ctx, who, "attach", detail, res->status, false);
}

static void h_detach(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail)
{
	char msg[ENF_TEXT_LEN];
	int rc = enf_detach(ctx, r->ifname, msg, sizeof(msg));
	enf_result_set(res, rc < 0 ? KL_ERR_FAILED : KL_OK, "%s", msg);
	res->json = json_pack("{s:o}", "interfaces", enf_ifaces_json(ctx));
	enforcer_commit(ctx, who, "detach", detail, res->status, false);
}

/* Origin of the entry at key in a counted map; 0 when there is none (or
 * the map is not counted). Writes and deletes keep ctx->origin_count
 * right with it. */
static uint32_t origin_at(const struct enf_ctx *ctx, enum enf_map_id m, const void *key)
{
	uint8_t val[sizeof(struct kl_rl_rule)];
	if (!enf_map_counted(m) || enf_map_lookup(ctx, m, key, val) < 0)
		return 0;
	return enf_val_origin(m, val);
}

static int put_rule(struct enf_ctx *ctx, enum enf_map_id m, const void *key, uint64_t ttl_ms,
		    uint32_t origin)
{
	uint64_t now = ctx->now();
	struct kl_rule v = { .expires_ns = enf_expiry(now, ttl_ms), .created_ns = now,
			     .origin = origin };
	uint32_t old = origin_at(ctx, m, key);
	int rc = enf_bloom_note(ctx, m, key);
	if (rc < 0)
		return rc;
	if ((rc = enf_map_update(ctx, m, key, &v)) < 0)
		return rc;
	if (enf_map_counted(m))
		enf_count_note(ctx, m, old, origin);
	return 0;
}

static uint32_t origin_of(const struct enf_actor *who)
{
	return enf_origin_of(who->role);
}

/* The allowlist entry r names: its map and key, the address as text, and
 * the entry now in the map (0) or a negative errno (none there). */
static int allow_entry(struct enf_ctx *ctx, const struct kl_ctl_req *r, enum enf_map_id *m,
		       uint8_t key[40], char ip[KL_ADDR_STRLEN], struct kl_rule *old)
{
	*m = fam_map(&r->addr, ENF_M_ALLOW4);
	enf_lpm_key(&r->addr, key);
	fmt_addr(&r->addr, ip, KL_ADDR_STRLEN);
	return enf_map_lookup(ctx, *m, key, old);
}

static void h_allow_add(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[40];
	char ip[KL_ADDR_STRLEN];
	struct kl_rule old;
	enum enf_map_id m;
	if (allow_entry(ctx, r, &m, key, ip, &old) == 0 && old.origin == KL_ORIGIN_PROTECTED) {
		/* Re-stamping it as the operator's would let `allow del` remove a
		 * protected entry later. */
		enf_result_set(res, KL_OK, "%s is already in the allowlist (protected)", ip);
		return;
	}
	int rc = put_rule(ctx, m, key, 0, origin_of(who));
	if (rc < 0)
		enf_result_set(res, KL_ERR_FAILED, "cannot add %s to %s: %s", ip,
			       enf_map_specs[m].name, strerror(-rc));
	else
		enf_result_set(res, KL_OK, "allow %s added", ip);
	res->json = json_pack("{s:s}", "ip", ip);
}

static void h_allow_del(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[40];
	char ip[KL_ADDR_STRLEN];
	struct kl_rule old;
	enum enf_map_id m;
	int rc = allow_entry(ctx, r, &m, key, ip, &old);
	res->json = json_pack("{s:s}", "ip", ip);
	if (rc < 0) {
		enf_result_set(res, errno_status(-rc), "%s is not in the allowlist", ip);
		return;
	}
	if (old.origin == KL_ORIGIN_PROTECTED) {
		enf_result_set(res, KL_ERR_REFUSED,
			       "refused: %s is a protected allow entry (remove it from the protect "
			       "list and restart kl-enforcer)",
			       ip);
		return;
	}
	if ((rc = enf_map_delete(ctx, m, key)) < 0)
		enf_result_set(res, errno_status(-rc), "cannot remove %s: %s", ip, strerror(-rc));
	else
		enf_result_set(res, KL_OK, "allow %s removed", ip);
}

static void h_enforce_allow(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);
	if (rc == 0) {
		c.allow_enforce = r->mode ? 1 : 0;
		rc = enf_cfg_write(ctx, &c);
	}
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		return;
	}
	long n4 = enf_map_count(ctx, ENF_M_ALLOW4), n6 = enf_map_count(ctx, ENF_M_ALLOW6);
	long n = (n4 > 0 ? n4 : 0) + (n6 > 0 ? n6 : 0);
	res->json = json_pack("{s:b, s:I}", "allow_enforce", r->mode != 0, "allow_entries",
			      (json_int_t)n);
	if (r->mode && n == 0)
		enf_result_set(res, KL_OK,
			       "enforce-allow on; the allowlist is empty, so every source is now "
			       "dropped");
	else
		enf_result_set(res, KL_OK, "enforce-allow %s (%ld allow entries)",
			       r->mode ? "on" : "off", n);
}

/* A deny entry's map and key: a single address in the host map, a prefix
 * in the LPM trie. */
static enum enf_map_id deny_key(const struct kl_addr *a, uint8_t key[40])
{
	bool host = kl_addr_is_host(a);

	if (host)
		enf_host_key(a, key);
	else
		enf_lpm_key(a, key);
	return fam_map(a, host ? ENF_M_DENY4 : ENF_M_DENY4_LPM);
}

static void h_deny_add(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[40];
	char ip[KL_ADDR_STRLEN], t[64];
	bool host = kl_addr_is_host(&r->addr);
	enum enf_map_id m = deny_key(&r->addr, key);
	fmt_addr(&r->addr, ip, sizeof(ip));
	int rc = put_rule(ctx, m, key, r->ttl_ms, origin_of(who));
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot add %s to %s: %s%s", ip,
			       enf_map_specs[m].name, strerror(-rc),
			       rc == -E2BIG ? " (map full: raise map_sizes)" : "");
		return;
	}
	res->json = json_pack("{s:s, s:s, s:o}", "ip", ip, "kind", host ? "host" : "cidr",
			      "expires_in_ms",
			      r->ttl_ms ? json_integer((json_int_t)r->ttl_ms) : json_null());
	enf_result_set(res, KL_OK, "deny %s added (%s)", ip, fmt_ttl(r->ttl_ms, t, sizeof(t)));
}

static void h_del(struct enf_ctx *ctx, enum enf_map_id m, const void *key, const char *what,
		  const char *ip, struct enf_result *res)
{
	uint32_t old = origin_at(ctx, m, key);
	int e = -enf_map_delete(ctx, m, key);
	if (e) {
		enf_result_set(res, errno_status(e), e == ENOENT ? "%s: %s is not there" : "%s: %s: %s",
			       what, ip, strerror(e));
	} else {
		enf_count_note(ctx, m, old, 0);
		enf_result_set(res, KL_OK, "%s %s removed", what, ip);
	}
	res->json = json_pack("{s:s}", "ip", ip);
}

static void h_deny_del(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[40];
	char ip[KL_ADDR_STRLEN];
	enum enf_map_id m = deny_key(&r->addr, key);
	h_del(ctx, m, key, "deny", fmt_addr(&r->addr, ip, sizeof(ip)), res);
}

/* One of the cfg map's global limits: read the map, set (on: r's values;
 * off: zero), write it back. On failure, or when the limit went off, the
 * answer is written here and false returned; true: on and written, and
 * the caller describes the limit. */
typedef void (*cfg_limit_fn)(struct enf_ctx *ctx, struct kl_cfg *c, const struct kl_ctl_req *r,
			     bool on);

static bool cfg_limit(struct enf_ctx *ctx, const struct kl_ctl_req *r, bool on, const char *name,
		      cfg_limit_fn set, struct enf_result *res)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);

	if (rc == 0) {
		set(ctx, &c, r, on);
		rc = enf_cfg_write(ctx, &c);
	}
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		return false;
	}
	if (!on) {
		res->json = json_pack("{s:n}", "rate");
		enf_result_set(res, KL_OK, "%s off", name);
	}
	return on;
}

static void set_newsrc(struct enf_ctx *ctx, struct kl_cfg *c, const struct kl_ctl_req *r, bool on)
{
	c->new_rate_pps = on ? r->rate : 0;
	c->new_burst = on ? r->burst : 0;
	c->new_expires_ns = on ? enf_expiry(ctx->now(), r->ttl_ms) : 0;
}

static void set_rl(struct enf_ctx *ctx, struct kl_cfg *c, const struct kl_ctl_req *r, bool on)
{
	(void)ctx;
	c->rl_rate_pps = on ? r->rate : 0;
	c->rl_burst = on ? r->burst : 0;
}

/* The aggregate limit on packets of sources not yet admitted to a slot
 * (shield.h, kl_cfg.new_*): what a spoofed flood meets. Protected,
 * allowlisted and known (slot-holding) sources are exempt in the data plane. */
static void h_newsrc(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	char t[64];

	if (!cfg_limit(ctx, r, r->cmd == KL_CTL_NEWSRC_LIMIT, "new-source limit", set_newsrc, res))
		return;
	res->json = json_pack("{s:I, s:I, s:I}", "rate", (json_int_t)r->rate, "burst",
			      (json_int_t)r->burst, "ttl_ms", (json_int_t)r->ttl_ms);
	enf_result_set(res, KL_OK,
		       "new-source limit: %llu pps, burst %llu for sources not yet admitted, %s",
		       (unsigned long long)r->rate, (unsigned long long)r->burst,
		       r->ttl_ms ? fmt_ttl(r->ttl_ms, t, sizeof(t)) : "permanent");
}

static void h_rl_global(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	if (!cfg_limit(ctx, r, r->cmd == KL_CTL_RL_SET, "global rate limit", set_rl, res))
		return;
	res->json = json_pack("{s:I, s:I}", "rate", (json_int_t)r->rate, "burst",
			      (json_int_t)r->burst);
	enf_result_set(res, KL_OK, "global rate limit: %llu pps, burst %llu per source",
		       (unsigned long long)r->rate, (unsigned long long)r->burst);
}

static void h_rl_set_ip(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[16];
	char ip[KL_ADDR_STRLEN], t[64];
	enum enf_map_id m = fam_map(&r->addr, ENF_M_RL4);
	enf_host_key(&r->addr, key);
	fmt_addr(&r->addr, ip, sizeof(ip));
	struct kl_rl_rule v = { .rate_pps = r->rate,
				.burst = r->burst,
				.expires_ns = enf_expiry(ctx->now(), r->ttl_ms),
				.origin = origin_of(who) };
	uint32_t old = origin_at(ctx, m, key);
	int brc = enf_bloom_note(ctx, m, key);
	if (brc == 0)
		brc = enf_map_update(ctx, m, key, &v);
	if (brc < 0) {
		int e = -brc;
		enf_result_set(res, KL_ERR_FAILED, "cannot add %s to %s: %s", ip,
			       enf_map_specs[m].name, strerror(e));
		return;
	}
	enf_count_note(ctx, m, old, v.origin);
	res->json = json_pack("{s:s, s:I, s:I, s:o}", "ip", ip, "rate", (json_int_t)r->rate,
			      "burst", (json_int_t)r->burst, "expires_in_ms",
			      r->ttl_ms ? json_integer((json_int_t)r->ttl_ms) : json_null());
	enf_result_set(res, KL_OK, "rate limit %s: %llu pps, burst %llu (%s)", ip,
		       (unsigned long long)r->rate, (unsigned long long)r->burst,
		       fmt_ttl(r->ttl_ms, t, sizeof(t)));
}

static void h_rl_unset_ip(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[16];
	char ip[KL_ADDR_STRLEN];
	enf_host_key(&r->addr, key);
	h_del(ctx, fam_map(&r->addr, ENF_M_RL4), key, "rate limit", fmt_addr(&r->addr, ip, sizeof(ip)),
	      res);
}

static void h_tuple_enforce(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);
	if (rc == 0) {
		c.edge_mode = r->mode;
		rc = enf_cfg_write(ctx, &c);
	}
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		return;
	}
	res->json = json_pack("{s:s}", "edge_mode", enf_edge_mode_name(r->mode));
	if (r->mode != KL_EDGE_OFF && !enf_features_edge(ctx->cfg->features))
		enf_result_set(res, KL_OK,
			       "tuple-enforce %s set, but it has no effect: the shield runs features "
			       "%s (restart kl-enforcer with --features graph-enforce)",
			       enf_edge_mode_name(r->mode), enf_features_name(ctx->cfg->features));
	else
		enf_result_set(res, KL_OK, "tuple-enforce %s", enf_edge_mode_name(r->mode));
}

static void h_edge(struct enf_ctx *ctx, const struct enf_actor *who,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	uint8_t key[40];
	char ip[KL_ADDR_STRLEN], p[16], t[64], what[96];
	struct kl_cfg c = { 0 };
	bool deny = r->cmd == KL_CTL_EDGE_ADD_DENY || r->cmd == KL_CTL_EDGE_DEL_DENY;
	bool add = r->cmd == KL_CTL_EDGE_ADD_DENY || r->cmd == KL_CTL_EDGE_ADD_ALLOW;
	enum enf_map_id m = fam_map(&r->addr, deny ? ENF_M_EDGE4_DENY : ENF_M_EDGE4_ALLOW);
	/* Fold the port as the data plane will, or the rule never matches. */
	enf_cfg_read(ctx, &c);
	enf_edge_key(&r->addr, r->port, r->proto, c.ephemeral_min, key);
	uint16_t port = enf_fold_port(r->port, c.ephemeral_min);
	fmt_addr(&r->addr, ip, sizeof(ip));
	snprintf(what, sizeof(what), "%s %s port %u/%s", deny ? "edge deny" : "edge allow", ip, port,
		 proto_text(r->proto, p, sizeof(p)));
	if (!add) {
		h_del(ctx, m, key, deny ? "edge deny" : "edge allow", ip, res);
		json_object_set_new(res->json, "port", json_integer(port));
		json_object_set_new(res->json, "proto", json_string(p));
		return;
	}
	int rc = put_rule(ctx, m, key, r->ttl_ms, origin_of(who));
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot add %s: %s", what, strerror(-rc));
		return;
	}
	res->json = json_pack("{s:s, s:i, s:s, s:s}", "ip", ip, "port", (int)port, "proto", p,
			      "kind", deny ? "deny" : "allow");
	enf_result_set(res, KL_OK, "%s added (%s)%s%s", what, fmt_ttl(r->ttl_ms, t, sizeof(t)),
		       port != r->port ? "; port folded to 0 (ephemeral)" : "",
		       enf_features_edge(ctx->cfg->features)
			       ? ""
			       : "; no effect until kl-enforcer runs --features graph-enforce");
}

static void h_sampling(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);
	if (rc == 0) {
		c.sample_mask = (uint32_t)r->count;
		rc = enf_cfg_write(ctx, &c);
	}
	if (rc < 0) {
		enf_result_set(res, KL_ERR_FAILED, "cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		return;
	}
	res->json = json_pack("{s:I}", "sample_mask", (json_int_t)r->count);
	if (r->count == 0)
		enf_result_set(res, KL_OK, "sampling off (no events)");
	else
		enf_result_set(res, KL_OK, "sampling mask %llu (about 1 in %llu events)",
			       (unsigned long long)r->count, (unsigned long long)r->count + 1);
}

static void h_reset(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r UNUSED, struct enf_result *res, const char *detail UNUSED)
{
	static const struct {
		const char *name;
		enum enf_map_id m4;
	} groups[] = {
		{ "rl", ENF_M_RL4 },
		{ "deny", ENF_M_DENY4 },
		{ "deny_cidr", ENF_M_DENY4_LPM },
		{ "edge_deny", ENF_M_EDGE4_DENY },
		{ "edge_rl", ENF_M_EDGE4_RL },
	};
	json_t *o = json_object();
	bool failed = false;
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		long n = 0;
		for (int f = 0; f < 2; f++) {
			long d = enf_map_delete_if(ctx, (enum enf_map_id)(groups[g].m4 + f), NULL, NULL);
			if (d < 0) {
				kl_error("reset: %s: %s", enf_map_specs[groups[g].m4 + f].name,
					 strerror((int)-d));
				failed = true;
			} else {
				n += d;
			}
		}
		json_object_set_new(o, groups[g].name, json_integer(n));
	}
	res->json = o;
	/* Whole maps went: count again rather than track every key. */
	if (enf_count_origins(ctx) < 0)
		failed = true;
	json_int_t rl = json_integer_value(json_object_get(o, "rl"));
	json_int_t dn = json_integer_value(json_object_get(o, "deny")) +
			json_integer_value(json_object_get(o, "deny_cidr"));
	json_int_t ed = json_integer_value(json_object_get(o, "edge_deny")) +
			json_integer_value(json_object_get(o, "edge_rl"));
	enf_result_set(res, failed ? KL_ERR_FAILED : KL_OK,
		       "reset%s: removed %lld rate-limit overrides, %lld deny entries, %lld edge "
		       "deny/rl entries (allowlist kept)",
		       failed ? " incomplete" : "", (long long)rl, (long long)dn, (long long)ed);
}

/* What each list command shows: its word in messages and its maps (the
 * IPv4 id of each pair), read in this order. */
static const struct list_spec {
	unsigned cmd;
	const char *what;
	size_t n;
	struct {
		enum enf_map_id m4;
		enum list_kind kind;
	} maps[3];
} list_specs[] = {
	{ KL_CTL_ALLOW_LIST, "allow", 1, { { ENF_M_ALLOW4, L_ALLOW } } },
	{ KL_CTL_DENY_LIST, "deny", 2,
	  { { ENF_M_DENY4, L_DENY_HOST }, { ENF_M_DENY4_LPM, L_DENY_CIDR } } },
	{ KL_CTL_RL_LIST, "rate-limit", 1, { { ENF_M_RL4, L_RL } } },
	{ KL_CTL_EDGE_LIST, "edge", 3,
	  { { ENF_M_EDGE4_DENY, L_EDGE_DENY }, { ENF_M_EDGE4_ALLOW, L_EDGE_ALLOW },
	    { ENF_M_EDGE4_RL, L_EDGE_RL } } },
};

static void h_list(struct enf_ctx *ctx, const struct enf_actor *who UNUSED,
		const struct kl_ctl_req *r, struct enf_result *res, const char *detail UNUSED)
{
	struct list_acc acc;
	int rc = 0;
	const char *what = "";
	list_init(&acc, ctx, r->count, r->cmd != KL_CTL_ALLOW_LIST);
	for (size_t i = 0; i < sizeof(list_specs) / sizeof(list_specs[0]); i++) {
		const struct list_spec *ls = &list_specs[i];
		if (ls->cmd != r->cmd)
			continue;
		what = ls->what;
		for (size_t j = 0; j < ls->n && rc == 0; j++)
			rc = list_maps(ctx, &acc, ls->maps[j].m4, ls->maps[j].kind);
	}
	if (rc < 0) {
		json_decref(acc.arr);
		enf_result_set(res, KL_ERR_FAILED, "cannot read the %s maps: %s", what, strerror(-rc));
		return;
	}
	size_t shown = json_array_size(acc.arr);
	res->json = list_doc(&acc);
	if (r->cmd == KL_CTL_RL_LIST || r->cmd == KL_CTL_EDGE_LIST) {
		struct kl_cfg c;
		if (enf_cfg_read(ctx, &c) == 0) {
			if (r->cmd == KL_CTL_RL_LIST)
				json_object_set_new(res->json, "global",
						    c.rl_burst ? json_pack("{s:I, s:I}", "rate",
									   (json_int_t)c.rl_rate_pps, "burst",
									   (json_int_t)c.rl_burst)
							       : json_null());
			else
				json_object_set_new(res->json, "edge_mode",
						    json_string(enf_edge_mode_name(c.edge_mode)));
		}
	}
	enf_result_set(res, KL_OK, "%zu %s entries%s", acc.total, what,
		       acc.total > shown ? " (truncated)" : "");
}

/* What the enforcer does for each control command, and what follows: a
 * read is answered only; a change is committed (logged, audited, and the
 * policy generation bumped unless it changes nothing the data plane caches
 * per source); attach and detach commit themselves. */
enum ctl_after { AFTER_NONE, AFTER_COMMIT, AFTER_COMMIT_BUMP };
struct ctl_handler {
	void (*fn)(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_ctl_req *r,
		   struct enf_result *res, const char *detail);
	enum ctl_after after;
};
static const struct ctl_handler ctl_handlers[KL_CTL_CMD_MAX] = {
	[KL_CTL_STATUS] = { h_status, AFTER_NONE },
	[KL_CTL_STATS] = { h_stats, AFTER_NONE },
	[KL_CTL_TOP_SRC] = { h_top_src, AFTER_NONE },
	[KL_CTL_EVENTS] = { h_events, AFTER_NONE },
	[KL_CTL_ALLOW_LIST] = { h_list, AFTER_NONE },
	[KL_CTL_DENY_LIST] = { h_list, AFTER_NONE },
	[KL_CTL_RL_LIST] = { h_list, AFTER_NONE },
	[KL_CTL_EDGE_LIST] = { h_list, AFTER_NONE },
	[KL_CTL_ATTACH] = { h_attach, AFTER_NONE },
	[KL_CTL_DETACH] = { h_detach, AFTER_NONE },
	[KL_CTL_ALLOW_ADD] = { h_allow_add, AFTER_COMMIT_BUMP },
	[KL_CTL_ALLOW_DEL] = { h_allow_del, AFTER_COMMIT_BUMP },
	[KL_CTL_ENFORCE_ALLOW] = { h_enforce_allow, AFTER_COMMIT_BUMP },
	[KL_CTL_DENY_ADD] = { h_deny_add, AFTER_COMMIT_BUMP },
	[KL_CTL_DENY_DEL] = { h_deny_del, AFTER_COMMIT_BUMP },
	[KL_CTL_RL_SET] = { h_rl_global, AFTER_COMMIT_BUMP },
	[KL_CTL_RL_OFF] = { h_rl_global, AFTER_COMMIT_BUMP },
	[KL_CTL_RL_SET_IP] = { h_rl_set_ip, AFTER_COMMIT_BUMP },
	[KL_CTL_RL_UNSET_IP] = { h_rl_unset_ip, AFTER_COMMIT_BUMP },
	/* Read per packet, not cached. */
	[KL_CTL_NEWSRC_LIMIT] = { h_newsrc, AFTER_COMMIT },
	[KL_CTL_NEWSRC_OFF] = { h_newsrc, AFTER_COMMIT },
	[KL_CTL_TUPLE_ENFORCE] = { h_tuple_enforce, AFTER_COMMIT_BUMP },
	[KL_CTL_EDGE_ADD_DENY] = { h_edge, AFTER_COMMIT_BUMP },
	[KL_CTL_EDGE_DEL_DENY] = { h_edge, AFTER_COMMIT_BUMP },
	[KL_CTL_EDGE_ADD_ALLOW] = { h_edge, AFTER_COMMIT_BUMP },
	[KL_CTL_EDGE_DEL_ALLOW] = { h_edge, AFTER_COMMIT_BUMP },
	/* Sampling does not change verdicts. */
	[KL_CTL_SAMPLING] = { h_sampling, AFTER_COMMIT },
	[KL_CTL_RESET] = { h_reset, AFTER_COMMIT_BUMP },
};

static void handle(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_ctl_req *r,
		   struct enf_result *res)
{
	char why[ENF_TEXT_LEN], detail[256];
	const char *action = kl_ctl_cmd_name(r->cmd);

	memset(res, 0, sizeof(*res));
	req_detail(r, detail, sizeof(detail));
	int st = enforcer_check(&ctx->policy, who->role, r, why, sizeof(why));
	if (st != KL_OK) {
		enf_result_set(res, st, "%s", why);
		if (kl_ctl_cmd_kind(r->cmd) != KL_CTL_K_READ)
			enforcer_commit(ctx, who, action, detail, st, false);
		else
			enf_audit_request(ctx, who, action, detail, st);
		return;
	}
	const struct ctl_handler *h = r->cmd < KL_CTL_CMD_MAX ? &ctl_handlers[r->cmd] : NULL;
	if (h == NULL || h->fn == NULL) {
		enf_result_set(res, KL_ERR_UNSUPPORTED, "%s is not supported by kl-enforcer", action);
		return;
	}
	h->fn(ctx, who, r, res, detail);
	if (h->after != AFTER_NONE)
		enforcer_commit(ctx, who, action, detail, res->status, h->after == AFTER_COMMIT_BUMP);
}

bool enf_ctl_served(unsigned cmd)
{
	return cmd < KL_CTL_CMD_MAX && ctl_handlers[cmd].fn != NULL;
}

void enf_handle(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_ctl_req *r,
		struct enf_result *res)
{
	handle(ctx, who, r, res);
	if (res->status >= 0 && res->status < KL_STATUS_MAX)
		ctx->ctl_requests[res->status]++;
}

/* ---- startup ---- */

int enf_cfg_init(struct enf_ctx *ctx)
{
	struct kl_cfg c;
	int rc = enf_cfg_read(ctx, &c);
	if (rc < 0) {
		kl_error("cannot read %s: %s", KL_MAP_CFG, strerror(-rc));
		return -1;
	}
	if (c.policy_gen == 0) {
		/* Never written by an enforcer: fresh maps. */
		memset(&c, 0, sizeof(c));
		c.sample_mask = 1023;
		kl_info("fresh maps: kernloom_cfg initialised (sampling 1023, enforce-allow off, "
			"no global rate limit, tuple-enforce off)");
	} else {
		kl_info("reusing pinned maps: policy_gen=%u enforce-allow=%s edge_mode=%s "
			"rl=%llu/%llu sampling=%u",
			c.policy_gen, c.allow_enforce ? "on" : "off", enf_edge_mode_name(c.edge_mode),
			(unsigned long long)c.rl_rate_pps, (unsigned long long)c.rl_burst,
			c.sample_mask);
	}
	if (c.src_seed[0] == 0 && c.src_seed[1] == 0) {
		/* Drawn once per kernloom_cfg: a reused pin keeps its seed,
		 * so the reused source slots stay where the data plane looks. */
		if (getrandom(c.src_seed, sizeof(c.src_seed), 0) != (ssize_t)sizeof(c.src_seed)) {
			kl_error("getrandom for the source bucket seed: %s", strerror(errno));
			return -1;
		}
	}
	/* The table bounds it to a port number. */
	uint32_t eph = (uint32_t)ctx->cfg->ephemeral_min;
	if (c.ephemeral_min != eph && c.policy_gen != 0)
		kl_info("ephemeral_min %u -> %u", c.ephemeral_min, eph);
	c.ephemeral_min = eph;
	c.policy_gen = c.policy_gen + 1 ? c.policy_gen + 1 : 1;
	rc = enf_cfg_write(ctx, &c);
	if (rc < 0) {
		kl_error("cannot write %s: %s", KL_MAP_CFG, strerror(-rc));
		return -1;
	}
	/* After the seed is final: the summary's bits come from it. */
	rc = enf_bloom_rebuild(ctx);
	if (rc < 0) {
		kl_error("cannot rebuild %s: %s", KL_MAP_POLICY_BLOOM, strerror(-rc));
		return -1;
	}
	return 0;
}

struct stale_acc {
	const struct enf_ctx *ctx;
	int family;
	uint8_t (*keys)[40];
	size_t n, cap;
};

static bool configured(const struct enf_ctx *ctx, const struct kl_addr *a)
{
	for (size_t i = 0; i < ctx->policy.n_protect; i++) {
		const struct kl_addr *p = &ctx->policy.protect[i];
		if (p->family == a->family && p->prefixlen == a->prefixlen &&
		    memcmp(p->addr, a->addr, 16) == 0)
			return true;
	}
	return false;
}

static int stale_visit(const void *key, const void *val, void *arg)
{
	struct stale_acc *acc = arg;
	const struct kl_rule *v = val;
	struct kl_addr a;
	if (v->origin != KL_ORIGIN_PROTECTED)
		return 0;
	if (acc->family == 4)
		enf_addr_from_lpm4(key, &a);
	else
		enf_addr_from_lpm6(key, &a);
	if (configured(acc->ctx, &a) || acc->n == acc->cap)
		return 0;
	memcpy(acc->keys[acc->n++], key,
	       acc->family == 4 ? sizeof(struct kl_lpm4_key) : sizeof(struct kl_lpm6_key));
	return 0;
}

void enf_self_refresh(struct enf_ctx *ctx, bool force)
{
	uint64_t now = enf_boottime_ns();
	struct ifaddrs *list = NULL;
	static struct kl_addr fresh[ENF_MAX_SELF];

	if (!force && now - ctx->self_read_ns < ENF_SELF_EVERY_NS)
		return;
	ctx->self_read_ns = now;
	if (getifaddrs(&list) < 0) {
		if (!ctx->self_failed)
			kl_warn("cannot read this host's addresses (%s); keeping the %zu known",
				strerror(errno), ctx->policy.n_self);
		ctx->self_failed = true;
		return;
	}
	ctx->self_failed = false;
	size_t seen = enf_self_from_ifaddrs(list, fresh, ENF_MAX_SELF);
	freeifaddrs(list);
	size_t n = seen < ENF_MAX_SELF ? seen : ENF_MAX_SELF;
	if (n == ctx->policy.n_self && memcmp(fresh, ctx->self, n * sizeof(fresh[0])) == 0)
		return;
	char buf[512];
	size_t o = 0;
	bool cut = false;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char ip[KL_ADDR_STRLEN];
		if (o + KL_ADDR_STRLEN + 2 >= sizeof(buf)) {
			cut = true;
			break;
		}
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "",
				      fmt_addr(&fresh[i], ip, sizeof(ip)));
	}
	memcpy(ctx->self, fresh, n * sizeof(fresh[0]));
	ctx->policy.n_self = n;
	kl_info("own addresses protected from the decider and graphd (%zu%s): %s%s", n,
		seen > n ? ", more not kept" : "", buf, cut ? " ..." : "");
}

int enf_sync_protected(struct enf_ctx *ctx)
{
	struct enf_actor me = self_actor();
	unsigned added = 0, removed = 0, failed = 0;
	uint64_t now = ctx->now();

	for (size_t i = 0; i < ctx->policy.n_protect; i++) {
		const struct kl_addr *a = &ctx->policy.protect[i];
		uint8_t key[40];
		char ip[KL_ADDR_STRLEN];
		struct kl_rule old, v = { .expires_ns = 0, .created_ns = now,
					  .origin = KL_ORIGIN_PROTECTED };
		enum enf_map_id m = fam_map(a, ENF_M_ALLOW4);
		enf_lpm_key(a, key);
		if (enf_map_lookup(ctx, m, key, &old) == 0 &&
		    old.origin == KL_ORIGIN_PROTECTED && old.expires_ns == 0)
			continue;
		int rc = enf_map_update(ctx, m, key, &v);
		if (rc < 0) {
			kl_error("protect %s: cannot write %s: %s", fmt_addr(a, ip, sizeof(ip)),
				 enf_map_specs[m].name, strerror(-rc));
			failed++;
			continue;
		}
		kl_info("protected %s added to the allowlist", fmt_addr(a, ip, sizeof(ip)));
		added++;
	}
	for (int f = 0; f < 2; f++) {
		struct stale_acc acc = { .ctx = ctx, .family = f ? 6 : 4, .cap = ENF_MAX_PROTECT * 4 };
		enum enf_map_id m = f ? ENF_M_ALLOW6 : ENF_M_ALLOW4;
		acc.keys = calloc(acc.cap, sizeof(*acc.keys));
		if (!acc.keys)
			return -1;
		int rc = enf_map_foreach(ctx, m, stale_visit, &acc);
		if (rc < 0) {
			kl_error("protect sync: cannot walk %s: %s", enf_map_specs[m].name,
				 strerror(-rc));
			failed++;
		}
		for (size_t i = 0; i < acc.n; i++) {
			struct kl_addr a;
			char ip[KL_ADDR_STRLEN];
			if (f)
				enf_addr_from_lpm6((const void *)acc.keys[i], &a);
			else
				enf_addr_from_lpm4((const void *)acc.keys[i], &a);
			if (enf_map_delete(ctx, m, acc.keys[i]) == 0) {
				kl_info("protected %s is no longer configured: removed from the "
					"allowlist",
					fmt_addr(&a, ip, sizeof(ip)));
				removed++;
			} else {
				failed++;
			}
		}
		free(acc.keys);
	}
	char detail[96];
	snprintf(detail, sizeof(detail), "configured=%zu added=%u removed=%u failed=%u",
		 ctx->policy.n_protect, added, removed, failed);
	enforcer_commit(ctx, &me, "protect-sync", detail, failed ? KL_ERR_FAILED : KL_OK,
			added + removed > 0);
	return failed ? -1 : 0;
}

/* ---- sweep ---- */

static const enum enf_map_id sweep_maps[] = {
	ENF_M_DENY4, ENF_M_DENY6, ENF_M_DENY4_LPM, ENF_M_DENY6_LPM, ENF_M_RL4, ENF_M_RL6,
	ENF_M_EDGE4_DENY, ENF_M_EDGE6_DENY, ENF_M_EDGE4_ALLOW, ENF_M_EDGE6_ALLOW,
	ENF_M_EDGE4_RL, ENF_M_EDGE6_RL,
};

static bool is_rl_map(enum enf_map_id m)
{
	return m == ENF_M_RL4 || m == ENF_M_RL6 || m == ENF_M_EDGE4_RL || m == ENF_M_EDGE6_RL;
}

static long sweep_one(struct enf_ctx *ctx, enum enf_map_id m, unsigned budget, uint64_t now)
{
	const struct enf_map_spec *s = &enf_map_specs[m];
	uint8_t cur[40], next[40];
	uint8_t val[sizeof(struct kl_rl_rule)];
	uint8_t(*dead)[40] = calloc(budget, sizeof(*dead));
	uint32_t *dead_origin = calloc(budget, sizeof(*dead_origin));
	size_t n_dead = 0;
	bool have = ctx->sweep_has_key[m];
	if (ctx->fd[m] < 0 || !dead || !dead_origin) {
		free(dead);
		free(dead_origin);
		return 0;
	}
	memcpy(cur, ctx->sweep_key[m], s->key_size);
	unsigned visited = 0;
	bool end = false;
	bool keep_valid = false;
	uint8_t keep[40];
	while (visited < budget) {
		if (enf_map_next_key(ctx, m, have ? cur : NULL, next) < 0) {
			end = true;
			break;
		}
		have = true;
		memcpy(cur, next, s->key_size);
		visited++;
		if (enf_map_lookup(ctx, m, cur, val) < 0)
			continue;
		uint64_t exp = is_rl_map(m) ? ((struct kl_rl_rule *)(void *)val)->expires_ns
					    : ((struct kl_rule *)(void *)val)->expires_ns;
		if (enf_expired(exp, now)) {
			dead_origin[n_dead] = enf_val_origin(m, val);
			memcpy(dead[n_dead++], cur, s->key_size);
		} else {
			memcpy(keep, cur, s->key_size);
			keep_valid = true;
		}
	}
	/* Resume after the last live key: resuming from a deleted key would
	 * send get_next_key back to the start of the map. */
	if (end) {
		ctx->sweep_has_key[m] = false;
	} else if (keep_valid) {
		memcpy(ctx->sweep_key[m], keep, s->key_size);
		ctx->sweep_has_key[m] = true;
	} else {
		ctx->sweep_has_key[m] = false;
	}
	long deleted = 0;
	for (size_t i = 0; i < n_dead; i++)
		if (enf_map_delete(ctx, m, dead[i]) == 0) {
			enf_count_note(ctx, m, dead_origin[i], 0);
			deleted++;
		}
	free(dead);
	free(dead_origin);
	return deleted;
}

long enf_sweep(struct enf_ctx *ctx, unsigned budget)
{
	uint64_t now = ctx->now();
	long total = 0;
	char detail[64];
	for (size_t i = 0; i < sizeof(sweep_maps) / sizeof(sweep_maps[0]); i++)
		total += sweep_one(ctx, sweep_maps[i], budget, now);
	if (total > 0) {
		struct enf_actor me = self_actor();
		snprintf(detail, sizeof(detail), "expired=%ld", total);
		enforcer_commit(ctx, &me, "sweep", detail, KL_OK, true);
	}
	return total;
}
