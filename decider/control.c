/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/err.h"
#include "common/log.h"
#include "common/safefile.h"
#include "decider/autotune.h"
#include "decider/baseline.h"
#include "decider/state.h"
#include "decider/table.h"

/* ---- sources ---- */

struct collect {
	const struct dec_src **v;
	size_t n, cap;
	bool oom;
};

static void collect_one(void *ctx, const struct dec_src *s)
{
	struct collect *c = ctx;

	if (c->oom)
		return;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 256;
		const struct dec_src **nv = realloc(c->v, nc * sizeof(*nv));
		if (nv == NULL) {
			c->oom = true;
			return;
		}
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n++] = s;
}

static int cmp_src(const void *a, const void *b)
{
	const struct dec_src *x = *(const struct dec_src *const *)a;
	const struct dec_src *y = *(const struct dec_src *const *)b;

	if (x->level != y->level)
		return x->level > y->level ? -1 : 1;
	if (x->sev != y->sev)
		return x->sev > y->sev ? -1 : 1;
	return dec_addr_cmp(&x->key, &y->key);
}

/* Rates and scores are shown, never computed with: two decimals are plenty
 * and keep the JSON free of float noise (2.4000000953674316). */
static json_t *num2(double v)
{
	return json_real(round(v * 100.0) / 100.0);
}

static json_t *secs(int64_t ms)
{
	return json_real((double)(ms < 0 ? 0 : ms) / 1000.0);
}

json_t *dec_sources_json(const struct dec_engine *e, int64_t now, size_t limit)
{
	struct collect c = { 0 };
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	dec_engine_foreach(e, collect_one, &c);
	if (c.oom) {
		free(c.v);
		json_decref(arr);
		return NULL;
	}
	if (c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), cmp_src);
	for (size_t i = 0; i < c.n && i < limit; i++) {
		const struct dec_src *s = c.v[i];
		char ip[KL_ADDR_STRLEN];
		json_t *o = json_object();

		kl_addr_format(&s->key, ip, sizeof(ip));
		json_object_set_new(o, "ip", json_string(ip));
		json_object_set_new(o, "level", json_string(dec_level_name(s->level)));
		json_object_set_new(o, "strikes", json_integer(s->strikes));
		json_object_set_new(o, "severity", num2(s->sev));
		json_object_set_new(o, "pps", num2(s->pps));
		json_object_set_new(o, "syn", num2(s->syn));
		json_object_set_new(o, "scan", num2(s->scan));
		json_object_set_new(o, "droprl", num2(s->droprl));
		json_object_set_new(o, "in_level_s",
				    s->t_change == DEC_T_NEVER ? json_null() : secs(now - s->t_change));
		json_object_set_new(o, "ttl_left_s",
				    s->level == DEC_LVL_OBSERVE || s->enforce_until == DEC_T_NEVER
					    ? json_null()
					    : secs(s->enforce_until - now));
		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
			break;
		}
	}
	free(c.v);
	return arr;
}

/* ---- forgive ---- */

/* The file's entries (a new array if it is missing or blank). */
static json_t *load_feedback(const char *path, mode_t *mode, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, i = 0;
	char why[512];
	struct stat st;

	*mode = 0640;
	if (dec_read_file(path, DEC_EX_MAX_FILE, &buf, &len, why, sizeof(why)) < 0) {
		if (errno == ENOENT)
			return json_array();
		kl_fail(err, errlen, "%s", why);
		return NULL;
	}
	if (stat(path, &st) == 0)
		*mode = st.st_mode & 07777;
	while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
		i++;
	if (i == len) {
		free(buf);
		return json_array();
	}
	/* Only a file the decider itself accepts is extended: appending to a
	 * broken one would leave it broken and hide the new entry too. */
	struct kl_errs errs = { 0 };
	struct dec_exempt_list l;
	if (dec_feedback_parse(buf, len, path, &l, &errs) < 0) {
		kl_fail(err, errlen, "%s; not changing it (fix the file first)",
			errs.n > 0 ? errs.v[0] : "invalid feedback file");
		kl_errs_free(&errs);
		free(buf);
		return NULL;
	}
	dec_exempt_list_free(&l);
	kl_errs_free(&errs);
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (root == NULL || !json_is_array(root)) {
		json_decref(root);
		kl_fail(err, errlen, "%s: not a JSON array", path);
		return NULL;
	}
	return root;
}

/* Write text to path through path.tmp: a reader (the decider's reload, an
 * editor) sees the old file or the new one, never half of either; a name
 * planted in the directory is replaced, never followed (safefile.h). */
static int write_atomic(const char *path, const char *text, mode_t mode, char *err,
			size_t errlen)
{
	return kl_safe_replace(path, text, strlen(text), mode, NULL, KL_SAFE_OWNED, err, errlen);
}

/* A feedback entry the new one supersedes. A forgive replaces only one
 * with the same ttl (same identity: its first-load time would be kept and
 * the new ttl would not count from now); a whitelist entry replaces every
 * earlier whitelist entry for its target, so `whitelist add` sets the
 * expiry rather than adding a second, longer-lived one beside it. */
static bool fb_supersedes(json_t *el, const struct dec_fb_new *n, const char *ttl)
{
	struct kl_addr a;
	const char *t = json_string_value(json_object_get(el, "target"));
	const char *act = json_string_value(json_object_get(el, "action"));

	if (t == NULL || act == NULL || kl_cidr_parse(t, &a, NULL, 0) < 0 ||
	    dec_addr_cmp(&a, n->target) != 0)
		return false;
	if (n->kind == DEC_EX_WHITELIST)
		return strcmp(act, "whitelist") == 0;
	const char *et = json_string_value(json_object_get(el, "ttl"));
	return strcmp(act, "forgive") == 0 && et != NULL && ttl != NULL &&
	       json_object_get(el, "until") == NULL && strcmp(et, ttl) == 0;
}

static int save_feedback(const char *path, json_t *root, mode_t mode, char *err, size_t errlen)
{
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		return kl_fail(err, errlen, "out of memory");
	size_t tl = strlen(text);
	char *nl = realloc(text, tl + 2);
	if (nl == NULL) {
		free(text);
		return kl_fail(err, errlen, "out of memory");
	}
	nl[tl] = '\n';
	nl[tl + 1] = '\0';
	int rc = write_atomic(path, nl, mode, err, errlen);
	free(nl);
	return rc;
}

int dec_feedback_add(const char *path, const struct dec_fb_new *n, size_t *entries, char *err,
		    size_t errlen)
{
	char tgt[KL_ADDR_STRLEN], ttl[48], until[48];
	mode_t mode;
	json_t *root, *el;
	size_t i;
	int rc = -1;

	if (n->kind == DEC_EX_FORGIVE && n->ttl_ms <= 0)
		return kl_fail(err, errlen, "forgive needs a TTL above 0");
	if (n->ttl_ms > 0 && n->until_ms > 0)
		return kl_fail(err, errlen, "give a ttl or an until, not both");
	kl_addr_format(n->target, tgt, sizeof(tgt));
	if (n->ttl_ms > 0)
		kl_duration_format((uint64_t)n->ttl_ms * 1000000ull, ttl, sizeof(ttl));
	if (n->until_ms > 0)
		kl_rfc3339_format(n->until_ms, until, sizeof(until));
	root = load_feedback(path, &mode, err, errlen);
	if (root == NULL)
		return -1;
	json_array_foreach(root, i, el) {
		if (fb_supersedes(el, n, n->ttl_ms > 0 ? ttl : NULL)) {
			json_array_remove(root, i);
			i--;
		}
	}
	if (json_array_size(root) >= DEC_EX_MAX_ENTRIES) {
		kl_fail(err, errlen, "%s already holds %d entries; remove old ones first", path,
			DEC_EX_MAX_ENTRIES);
		goto out;
	}
	el = json_pack("{s:s, s:s}", "target", tgt, "action",
		       n->kind == DEC_EX_WHITELIST ? "whitelist" : "forgive");
	if (el != NULL && n->ttl_ms > 0)
		json_object_set_new(el, "ttl", json_string(ttl));
	if (el != NULL && n->until_ms > 0)
		json_object_set_new(el, "until", json_string(until));
	if (el != NULL)
		json_object_set_new(el, "notes", json_string(n->notes != NULL ? n->notes : ""));
	if (el == NULL || json_array_append_new(root, el) < 0) {
		kl_fail(err, errlen, "out of memory");
		goto out;
	}
	rc = save_feedback(path, root, mode, err, errlen);
	if (rc == 0 && entries != NULL)
		*entries = json_array_size(root);
out:
	json_decref(root);
	return rc;
}

int dec_feedback_del(const char *path, const struct kl_addr *target, uint8_t kind,
		    size_t *removed, size_t *entries, char *err, size_t errlen)
{
	const char *want = kind == DEC_EX_WHITELIST ? "whitelist" : "forgive";
	mode_t mode;
	json_t *root, *el;
	size_t i, n = 0;
	int rc = 0;

	root = load_feedback(path, &mode, err, errlen);
	if (root == NULL)
		return -1;
	json_array_foreach(root, i, el) {
		struct kl_addr a;
		const char *t = json_string_value(json_object_get(el, "target"));
		const char *act = json_string_value(json_object_get(el, "action"));
		if (t != NULL && act != NULL && strcmp(act, want) == 0 &&
		    kl_cidr_parse(t, &a, NULL, 0) == 0 && dec_addr_cmp(&a, target) == 0) {
			json_array_remove(root, i);
			i--;
			n++;
		}
	}
	/* Nothing matched: the file stays byte for byte as it was. */
	if (n > 0)
		rc = save_feedback(path, root, mode, err, errlen);
	if (rc == 0) {
		*removed = n;
		if (entries != NULL)
			*entries = json_array_size(root);
	}
	json_decref(root);
	return rc;
}

/* ---- dispatch ---- */

void dec_ctl_answer_free(struct dec_ctl_answer *a)
{
	free(a->json);
	a->json = NULL;
}

static void answer(struct dec_ctl_answer *a, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void answer(struct dec_ctl_answer *a, int status, const char *fmt, ...)
{
	va_list ap;

	a->status = status;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

/* A new entry's ttl counts from now even if an identical entry was loaded
 * before (dec_feedback_add dropped it from the file, but the reload keeps
 * the first-load time of an entry with the same identity). */
static void restart_entry(struct dec_exempt *x, const struct kl_addr *target, uint8_t kind,
			  int64_t ttl_ms, int64_t now)
{
	if (ttl_ms <= 0)
		return;
	for (size_t i = 0; i < x->fb.n; i++) {
		struct dec_exempt_entry *e = &x->fb.v[i];
		if (e->kind == kind && e->has_ttl && e->ttl_ms == ttl_ms &&
		    dec_addr_cmp(&e->net, target) == 0) {
			e->first_ms = now;
			e->expires_ms = now + ttl_ms;
		}
	}
}

static void audit_forgive(struct dec_decider *d, const char *ip, int64_t ttl_ms, uid_t uid, int rc)
{
	char det[160];
	snprintf(det, sizeof(det), "{\"ttl_ms\":%lld,\"operator_uid\":%u}", (long long)ttl_ms,
		 (unsigned)uid);
	dec_audit_record(d->audit, "forgive", ip, det, rc < 0 ? "failed" : "ok");
}

static bool feedback_off(const struct dec_decider *d, const char *what, struct dec_ctl_answer *out)
{
	if (d->cfg->v.feedback_file[0] != '\0')
		return false;
	answer(out, KL_ERR_REFUSED,
	       "the feedback file is disabled (--feedback-file=); kl-decider cannot record "
	       "a %s without it",
	       what);
	return true;
}

/* Apply a changed feedback file now, through the same path as its reload. */
static int reload_now(struct dec_decider *d, int64_t now)
{
	struct kl_errs errs = { 0 };
	d->ex.now = now;
	int rc = dec_reload_exemptions(d, now, true, false, &errs);
	kl_errs_free(&errs);
	return rc;
}

static void do_forgive(struct dec_decider *d, const struct kl_ctl_req *r, uid_t uid, int64_t now,
		       struct dec_ctl_answer *out)
{
	const char *path = d->cfg->v.feedback_file;
	int64_t ttl_ms = r->ttl_ms > 0 ? (int64_t)r->ttl_ms : DEC_FORGIVE_DEFAULT_TTL_MS;
	char notes[64], err[600], ip[KL_ADDR_STRLEN], ttl[48];
	size_t n = 0;

	kl_addr_format(&r->addr, ip, sizeof(ip));
	if (feedback_off(d, "forgive", out))
		return;
	snprintf(notes, sizeof(notes), "klctl forgive by uid %u", (unsigned)uid);
	struct dec_fb_new fe = { .target = &r->addr, .kind = DEC_EX_FORGIVE, .ttl_ms = ttl_ms,
				.notes = notes };
	if (dec_feedback_add(path, &fe, &n, err, sizeof(err)) < 0) {
		kl_warn("forgive %s by uid %u failed: %s", ip, (unsigned)uid, err);
		answer(out, KL_ERR_FAILED, "%s", err);
		return;
	}
	int rc = reload_now(d, now);
	restart_entry(&d->ex, &r->addr, DEC_EX_FORGIVE, ttl_ms, now);
	kl_duration_format((uint64_t)ttl_ms * 1000000ull, ttl, sizeof(ttl));
	kl_info("FORGIVE target=%s ttl=%s by uid %u (feedback %s, %zu entries)", ip, ttl,
		(unsigned)uid, path, n);
	audit_forgive(d, ip, ttl_ms, uid, rc);
	if (rc < 0) {
		answer(out, KL_ERR_FAILED, "written to %s, but reloading it failed (see the log)",
		       path);
		return;
	}
	answer(out, KL_OK, "forgave %s for %s: back to OBSERVE at the next tick (%s, %zu entries)",
	       ip, ttl, path, n);
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "target", ip, "action", "forgive",
			      "ttl", ttl, "ttl_ms", (json_int_t)ttl_ms, "file", path, "entries",
			      (json_int_t)n);
	if (j != NULL) {
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
	}
}

/* ---- whitelist ---- */

json_t *dec_whitelist_json(const struct dec_decider *d, int64_t now, size_t limit)
{
	const struct dec_exempt_list *lists[2] = { &d->ex.wl, &d->ex.fb };
	const char *files[2] = { d->cfg->v.whitelist, d->cfg->v.feedback_file };
	json_t *arr = json_array();
	size_t total = 0;

	if (arr == NULL)
		return NULL;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			const struct dec_exempt_entry *e = &lists[k]->v[i];
			char ip[KL_ADDR_STRLEN], until[48];
			if (e->kind != DEC_EX_WHITELIST ||
			    (e->expires_ms != DEC_EX_NEVER && e->expires_ms <= now))
				continue;
			if (total++ >= limit)
				continue;
			kl_addr_format(&e->net, ip, sizeof(ip));
			bool never = e->expires_ms == DEC_EX_NEVER;
			json_t *o = json_pack("{s:s, s:s, s:s}", "target", ip, "origin",
					      k == 0 ? "file" : "feedback", "file", files[k]);
			if (o == NULL)
				continue;
			json_object_set_new(o, "expires_in_ms",
					    never ? json_null() : json_integer(e->expires_ms - now));
			json_object_set_new(o, "until",
					    never ? json_null()
						  : json_string(kl_rfc3339_format(e->expires_ms, until,
										   sizeof(until))));
			json_object_set_new(o, "notes", json_string(e->notes != NULL ? e->notes : ""));
			json_array_append_new(arr, o);
		}
	}
	json_t *doc = json_pack("{s:o, s:I, s:b}", "entries", arr, "total", (json_int_t)total,
				"truncated", total > limit);
	return doc;
}

static void audit_whitelist(struct dec_decider *d, const char *event, const char *ip,
			    const struct dec_fb_new *n, uid_t uid, bool ok)
{
	char det[200];
	if (n != NULL)
		snprintf(det, sizeof(det),
			 "{\"ttl_ms\":%lld,\"until_ms\":%lld,\"operator_uid\":%u}",
			 (long long)n->ttl_ms, (long long)n->until_ms, (unsigned)uid);
	else
		snprintf(det, sizeof(det), "{\"operator_uid\":%u}", (unsigned)uid);
	dec_audit_record(d->audit, event, ip, det, ok ? "ok" : "failed");
}

static void do_whitelist_add(struct dec_decider *d, const struct kl_ctl_req *r, uid_t uid,
			     int64_t now, struct dec_ctl_answer *out)
{
	const char *path = d->cfg->v.feedback_file;
	char notes[64], err[600], ip[KL_ADDR_STRLEN], until[48], ttl[48];
	size_t n = 0;
	struct dec_fb_new fe = { .target = &r->addr, .kind = DEC_EX_WHITELIST, .notes = notes };

	if (r->mode == 1)
		fe.until_ms = (int64_t)r->ttl_ms;
	else
		fe.ttl_ms = (int64_t)r->ttl_ms;
	kl_addr_format(&r->addr, ip, sizeof(ip));
	if (feedback_off(d, "whitelist entry", out))
		return;
	/* An expiry already past would be written and ignored at once. */
	if (fe.until_ms > 0 && fe.until_ms <= now) {
		answer(out, KL_ERR_INVALID, "--until %s is not in the future",
		       kl_rfc3339_format(fe.until_ms, until, sizeof(until)));
		return;
	}
	snprintf(notes, sizeof(notes), "klctl whitelist add by uid %u", (unsigned)uid);
	if (dec_feedback_add(path, &fe, &n, err, sizeof(err)) < 0) {
		kl_warn("whitelist add %s by uid %u failed: %s", ip, (unsigned)uid, err);
		audit_whitelist(d, "whitelist-add", ip, &fe, uid, false);
		answer(out, KL_ERR_FAILED, "%s", err);
		return;
	}
	int rc = reload_now(d, now);
	restart_entry(&d->ex, &r->addr, DEC_EX_WHITELIST, fe.ttl_ms, now);
	if (fe.ttl_ms > 0)
		kl_duration_format((uint64_t)fe.ttl_ms * 1000000ull, ttl, sizeof(ttl));
	else if (fe.until_ms > 0)
		snprintf(ttl, sizeof(ttl), "until %s",
			 kl_rfc3339_format(fe.until_ms, until, sizeof(until)));
	else
		snprintf(ttl, sizeof(ttl), "permanent");
	kl_info("WHITELIST add target=%s expiry=%s by uid %u (feedback %s, %zu entries)", ip, ttl,
		(unsigned)uid, path, n);
	audit_whitelist(d, "whitelist-add", ip, &fe, uid, rc == 0);
	if (rc < 0) {
		answer(out, KL_ERR_FAILED, "written to %s, but reloading it failed (see the log)",
		       path);
		return;
	}
	answer(out, KL_OK,
	       "whitelisted %s (%s): never scored or enforced; back to OBSERVE at the next tick "
	       "(%s, %zu entries)",
	       ip, ttl, path, n);
	json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "target", ip, "action", "whitelist", "file",
			      path, "entries", (json_int_t)n);
	if (j != NULL) {
		json_object_set_new(j, "ttl_ms", fe.ttl_ms > 0 ? json_integer(fe.ttl_ms) : json_null());
		json_object_set_new(j, "until",
				    fe.until_ms > 0 ? json_string(kl_rfc3339_format(
							      fe.until_ms, until, sizeof(until)))
						    : json_null());
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
	}
}

/* The whitelist file's line holding exactly this target, or 0. */
static size_t file_line_of(const struct dec_decider *d, const struct kl_addr *a)
{
	for (size_t i = 0; i < d->ex.wl.n; i++)
		if (dec_addr_cmp(&d->ex.wl.v[i].net, a) == 0)
			return i + 1;
	return 0;
}

static void do_whitelist_del(struct dec_decider *d, const struct kl_ctl_req *r, uid_t uid,
			     int64_t now, struct dec_ctl_answer *out)
{
	const char *path = d->cfg->v.feedback_file;
	char err[600], ip[KL_ADDR_STRLEN];
	size_t removed = 0, n = 0;

	kl_addr_format(&r->addr, ip, sizeof(ip));
	if (feedback_off(d, "whitelist change", out))
		return;
	if (dec_feedback_del(path, &r->addr, DEC_EX_WHITELIST, &removed, &n, err, sizeof(err)) < 0) {
		kl_warn("whitelist del %s by uid %u failed: %s", ip, (unsigned)uid, err);
		audit_whitelist(d, "whitelist-del", ip, NULL, uid, false);
		answer(out, KL_ERR_FAILED, "%s", err);
		return;
	}
	if (removed == 0) {
		/* The whitelist file is root's (/etc): the operator learns
		 * where the entry is instead of a bare "not found". */
		if (file_line_of(d, &r->addr) > 0)
			answer(out, KL_ERR_REFUSED,
			       "%s is in the whitelist file %s, which kl-decider only reads: remove "
			       "it there (as root), then run `klctl reload`",
			       ip, d->cfg->v.whitelist);
		else
			answer(out, KL_ERR_NOTFOUND, "%s is not a whitelist entry in %s", ip, path);
		return;
	}
	int rc = reload_now(d, now);
	kl_info("WHITELIST del target=%s by uid %u (feedback %s, %zu entries)", ip, (unsigned)uid,
		path, n);
	audit_whitelist(d, "whitelist-del", ip, NULL, uid, rc == 0);
	if (rc < 0) {
		answer(out, KL_ERR_FAILED, "removed from %s, but reloading it failed (see the log)",
		       path);
		return;
	}
	answer(out, KL_OK, "removed %s from the whitelist (%zu entries from %s): scored again from "
	       "the next tick", ip, removed, path);
	json_t *j = json_pack("{s:s, s:I, s:s, s:I}", "target", ip, "removed", (json_int_t)removed,
			      "file", path, "entries", (json_int_t)n);
	if (j != NULL) {
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
	}
}

static void do_whitelist_list(struct dec_decider *d, const struct kl_ctl_req *r, int64_t now,
			      struct dec_ctl_answer *out)
{
	size_t limit = r->count > 0 ? (size_t)r->count : DEC_WHITELIST_LIST_DEFAULT;
	json_t *j = dec_whitelist_json(d, now, limit);
	if (j != NULL)
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (out->json == NULL) {
		json_decref(j);
		answer(out, KL_ERR_FAILED, "out of memory listing the whitelist");
		return;
	}
	answer(out, KL_OK, "%lld whitelist entries (file %s, feedback %s)",
	       (long long)json_integer_value(json_object_get(j, "total")),
	       d->cfg->v.whitelist[0] ? d->cfg->v.whitelist : "off",
	       d->cfg->v.feedback_file[0] ? d->cfg->v.feedback_file : "off");
	json_decref(j);
}

static void do_tune(struct dec_decider *d, int64_t now, struct dec_ctl_answer *out)
{
	if (d->at == NULL) {
		answer(out, KL_ERR_REFUSED,
		       "autotune is off (--autotune=false): the triggers are the configured ones");
		return;
	}
	json_t *j = autotune_status_json(d->at, now);
	if (j != NULL)
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (out->json == NULL) {
		json_decref(j);
		answer(out, KL_ERR_FAILED, "out of memory describing autotune");
		return;
	}
	struct at_status s;
	autotune_status(d->at, &s);
	answer(out, KL_OK, "autotune phase %s, %u samples, trig_pps %.1f trig_syn %.1f trig_scan %.1f",
	       at_phase_name(s.phase), s.samples, s.trig.v[DEC_F_PPS], s.trig.v[DEC_F_SYN],
	       s.trig.v[DEC_F_SCAN]);
	json_decref(j);
}

static void do_baseline(struct dec_decider *d, const struct kl_ctl_req *r, int64_t now,
			struct dec_ctl_answer *out)
{
	if (d->bl == NULL) {
		answer(out, KL_ERR_REFUSED, "baselines are off (--baseline=false)");
		return;
	}
	json_t *j = dec_bl_show_json(d->bl, dec_engine_params(d->eng), &r->addr, now);
	if (j != NULL)
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (out->json == NULL) {
		json_decref(j);
		answer(out, KL_ERR_FAILED, "out of memory describing the baseline");
		return;
	}
	char ip[KL_ADDR_STRLEN];
	kl_addr_format(&r->addr, ip, sizeof(ip));
	struct kl_addr key;
	const struct dec_bl *b = dec_addr_key(&r->addr, &key) ? dec_bl_lookup(d->bl, &key) : NULL;
	if (b == NULL) {
		answer(out, KL_OK, "%s: no baseline (never observed clean near a trigger)", ip);
	} else {
		json_t *eff = json_object_get(j, "effective_trigger");
		answer(out, KL_OK,
		       "%s: %u observations, %s, confidence %.2f, peak pps %.1f syn %.1f scan %.1f, "
		       "effective trig pps %.1f syn %.1f scan %.1f",
		       ip, b->n, (b->flags & DEC_BL_F_PROMOTED) ? "promoted" : "not promoted",
		       json_real_value(json_object_get(j, "confidence")), b->peak[0], b->peak[1],
		       b->peak[2], json_number_value(json_object_get(eff, "pps")),
		       json_number_value(json_object_get(eff, "syn")),
		       json_number_value(json_object_get(eff, "scan")));
	}
	json_decref(j);
}

void dec_control(struct dec_decider *d, const struct kl_ctl_req *r, uid_t uid,
			int64_t now, struct dec_ctl_answer *out)
{
	memset(out, 0, sizeof(*out));
	switch (r->cmd) {
	case KL_CTL_SOURCES: {
		size_t limit = r->count > 0 ? (size_t)r->count : DEC_SOURCES_DEFAULT;
		json_t *j = dec_sources_json(d->eng, now, limit);
		if (j == NULL) {
			answer(out, KL_ERR_FAILED, "out of memory listing the sources");
			return;
		}
		const struct dec_engine_stats *st = dec_engine_stats(d->eng);
		out->json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		answer(out, out->json != NULL ? KL_OK : KL_ERR_FAILED,
		       "%zu of %zu tracked sources: observe=%zu soft=%zu hard=%zu block=%zu",
		       json_array_size(j), st->tracked, st->per_level[DEC_LVL_OBSERVE],
		       st->per_level[DEC_LVL_SOFT], st->per_level[DEC_LVL_HARD],
		       st->per_level[DEC_LVL_BLOCK]);
		json_decref(j);
		return;
	}
	case KL_CTL_FORGIVE:
		do_forgive(d, r, uid, now, out);
		return;
	case KL_CTL_TUNE:
		do_tune(d, now, out);
		return;
	case KL_CTL_WHITELIST_ADD:
		do_whitelist_add(d, r, uid, now, out);
		return;
	case KL_CTL_WHITELIST_DEL:
		do_whitelist_del(d, r, uid, now, out);
		return;
	case KL_CTL_WHITELIST_LIST:
		do_whitelist_list(d, r, now, out);
		return;
	case KL_CTL_BASELINE:
		do_baseline(d, r, now, out);
		return;
	case KL_CTL_RELOAD: {
		/* What SIGUSR1 does, with the outcome in the answer. A file
		 * that does not parse keeps the previous list (logged). */
		struct kl_errs errs = { 0 };
		d->ex.now = now;
		int rc = dec_reload_exemptions(d, now, true, false, &errs);
		kl_errs_free(&errs);
		kl_info("RELOAD of the exemptions by uid %u: %s", (unsigned)uid,
			rc < 0 ? "failed" : "done");
		if (rc < 0)
			answer(out, KL_ERR_FAILED, "reloading the exemptions failed (see the log)");
		else
			answer(out, KL_OK,
			       "reloaded the whitelist (%s) and the feedback file (%s); a file that "
			       "does not parse keeps its previous entries (see the log)",
			       d->cfg->v.whitelist[0] ? d->cfg->v.whitelist : "off",
			       d->cfg->v.feedback_file[0] ? d->cfg->v.feedback_file : "off");
		return;
	}
	default:
		answer(out, KL_ERR_UNSUPPORTED,
		       "%s is not served by kl-decider (it serves sources, forgive, whitelist, tune, "
		       "baseline and reload)",
		       kl_ctl_cmd_name(r->cmd));
		return;
	}
}
