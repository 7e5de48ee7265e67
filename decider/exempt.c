/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/exempt.h"
#include "common/knob.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/safefile.h"

void dec_exempt_list_free(struct dec_exempt_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].id);
		free(l->v[i].notes);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static struct dec_exempt_entry *list_push(struct dec_exempt_list *l)
{
	struct dec_exempt_entry *nv;

	/* Capacity is implicit: 8, then doubled whenever n reaches a power of two. */
	if (l->n == 0 || (l->n >= 8 && (l->n & (l->n - 1)) == 0)) {
		size_t ncap = l->n ? l->n * 2 : 8;
		nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return NULL;
		l->v = nv;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* Printable, bounded copy of untrusted text for messages. */
int dec_whitelist_parse(const char *text, size_t len, const char *name,
		       struct dec_exempt_list *out, struct kl_errs *errs)
{
	size_t before = errs->n;
	size_t pos = 0;
	int line = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		line++;
		/* Cut the comment, then trim. */
		size_t e = pos;
		while (e < end && text[e] != '#')
			e++;
		size_t b = pos;
		while (b < e && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r'))
			b++;
		while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r'))
			e--;
		if (e > b) {
			char tok[96], err[160], qb[96];
			struct kl_addr a;
			if (e - b >= sizeof(tok)) {
				kl_errs_add(errs, "%s:%d: '%s' is too long for an address", name, line,
					    kl_printable_n(text + b, e - b, qb, sizeof(qb)));
			} else {
				memcpy(tok, text + b, e - b);
				tok[e - b] = '\0';
				if (kl_cidr_parse(tok, &a, err, sizeof(err)) < 0) {
					kl_errs_add(errs, "%s:%d: %s", name, line, err);
				} else if (out->n >= DEC_EX_MAX_ENTRIES) {
					kl_errs_add(errs, "%s:%d: more than %d entries", name, line,
						    DEC_EX_MAX_ENTRIES);
					break;
				} else {
					struct dec_exempt_entry *x = list_push(out);
					if (x == NULL)
						return -1;
					x->net = a;
					x->kind = DEC_EX_WHITELIST;
					x->expires_ms = DEC_EX_NEVER;
					x->id = strdup(tok);
					if (x->id == NULL)
						return -1;
				}
			}
		}
		pos = end + 1;
	}
	if (errs->n > before) {
		dec_exempt_list_free(out);
		return -1;
	}
	return 0;
}

static const char *const fb_keys[] = { "target", "action", "ttl", "until", "notes", NULL };

int dec_feedback_from_json(const void *json_array, const char *name,
			  struct dec_exempt_list *out, struct kl_errs *errs)
{
	const json_t *arr = json_array;
	size_t before = errs->n;
	size_t i;
	json_t *el;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(arr)) {
		kl_errs_add(errs, "%s: expected a JSON array of {target, action, ttl|until, notes}",
			    name);
		return -1;
	}
	if (json_array_size(arr) > DEC_EX_MAX_ENTRIES) {
		kl_errs_add(errs, "%s: more than %d entries", name, DEC_EX_MAX_ENTRIES);
		return -1;
	}
	json_array_foreach(arr, i, el) {
		const char *key;
		json_t *val;
		char qb[96], err[160];
		size_t nerr = errs->n;
		struct dec_exempt_entry x;

		memset(&x, 0, sizeof(x));
		x.from_feedback = true;
		if (!json_is_object(el)) {
			kl_errs_add(errs, "%s: entry %zu: expected an object", name, i + 1);
			continue;
		}
		json_object_foreach((json_t *)el, key, val) {
			bool known = false;
			for (int k = 0; fb_keys[k] != NULL; k++)
				known |= strcmp(key, fb_keys[k]) == 0;
			if (!known)
				kl_errs_add(errs, "%s: entry %zu: unknown key '%s' (valid: target, action, ttl, until, notes)",
					    name, i + 1, kl_printable_n(key, strlen(key), qb, sizeof(qb)));
			else if (!json_is_string(val))
				kl_errs_add(errs, "%s: entry %zu: '%s' must be a string", name, i + 1, key);
		}
		if (errs->n > nerr)
			continue;
		const char *target = json_string_value(json_object_get(el, "target"));
		const char *action = json_string_value(json_object_get(el, "action"));
		const char *ttl = json_string_value(json_object_get(el, "ttl"));
		const char *until = json_string_value(json_object_get(el, "until"));
		const char *notes = json_string_value(json_object_get(el, "notes"));
		if (target == NULL) {
			kl_errs_add(errs, "%s: entry %zu: 'target' is missing", name, i + 1);
		} else if (kl_cidr_parse(target, &x.net, err, sizeof(err)) < 0) {
			kl_errs_add(errs, "%s: entry %zu: target: %s", name, i + 1, err);
		}
		if (action == NULL)
			kl_errs_add(errs, "%s: entry %zu: 'action' is missing (forgive | whitelist)",
				    name, i + 1);
		else if (strcmp(action, "forgive") == 0)
			x.kind = DEC_EX_FORGIVE;
		else if (strcmp(action, "whitelist") == 0)
			x.kind = DEC_EX_WHITELIST;
		else
			kl_errs_add(errs, "%s: entry %zu: action '%s' is not forgive | whitelist",
				    name, i + 1, kl_printable_n(action, strlen(action), qb, sizeof(qb)));
		if (ttl != NULL && until != NULL)
			kl_errs_add(errs, "%s: entry %zu: give 'ttl' or 'until', not both", name, i + 1);
		if (ttl != NULL) {
			uint64_t ns;
			if (kl_duration_parse(ttl, &ns, err, sizeof(err)) < 0)
				kl_errs_add(errs, "%s: entry %zu: ttl: %s", name, i + 1, err);
			else if (ns < 1000000 || ns > (uint64_t)3650 * 86400 * 1000000000ull)
				kl_errs_add(errs, "%s: entry %zu: ttl '%s' is out of range (1ms .. 3650d)",
					    name, i + 1, kl_printable_n(ttl, strlen(ttl), qb, sizeof(qb)));
			else {
				x.has_ttl = true;
				x.ttl_ms = (int64_t)(ns / 1000000);
			}
		}
		if (until != NULL) {
			if (kl_rfc3339_parse(until, &x.until_ms) < 0)
				kl_errs_add(errs, "%s: entry %zu: until '%s' is not an RFC 3339 time "
					    "(e.g. 2026-06-01T00:00:00Z)",
					    name, i + 1, kl_printable_n(until, strlen(until), qb, sizeof(qb)));
			else
				x.has_until = true;
		}
		if (errs->n > nerr)
			continue;
		struct dec_exempt_entry *d = list_push(out);
		if (d == NULL)
			goto oom;
		*d = x;
		d->expires_ms = DEC_EX_NEVER;
		if (asprintf(&d->id, "%s|%s|%s|%s", target, action, ttl ? ttl : "",
			     until ? until : "") < 0) {
			d->id = NULL;
			goto oom;
		}
		if (notes != NULL && (d->notes = strdup(notes)) == NULL)
			goto oom;
	}
	if (errs->n > before) {
		dec_exempt_list_free(out);
		return -1;
	}
	return 0;
oom:
	kl_errs_add(errs, "%s: out of memory", name);
	dec_exempt_list_free(out);
	return -1;
}

int dec_feedback_parse(const char *text, size_t len, const char *name,
		      struct dec_exempt_list *out, struct kl_errs *errs)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	/* An empty file is an empty list (klctl may create it so). */
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
		i++;
	if (i == len)
		return 0;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		kl_errs_add(errs, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	rc = dec_feedback_from_json(root, name, out, errs);
	json_decref(root);
	return rc;
}

void dec_exempt_init(struct dec_exempt *x)
{
	memset(x, 0, sizeof(*x));
}

void dec_exempt_free(struct dec_exempt *x)
{
	dec_exempt_list_free(&x->wl);
	dec_exempt_list_free(&x->fb);
}

static int add_release(struct kl_cidrs *r, const struct kl_addr *a)
{
	struct kl_addr *nv;

	if (r == NULL || kl_addr_is_host(a))
		return 0;
	nv = realloc(r->v, (r->n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	r->v = nv;
	r->v[r->n++] = *a;
	return 0;
}

static const struct dec_exempt_entry *find_id(const struct dec_exempt_list *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].id, id) == 0)
			return &l->v[i];
	}
	return NULL;
}

static int replace(struct dec_exempt_list *old, struct dec_exempt_list *l, int64_t now,
		   struct kl_cidrs *released)
{
	for (size_t i = 0; i < l->n; i++) {
		struct dec_exempt_entry *x = &l->v[i];
		const struct dec_exempt_entry *prev = find_id(old, x->id);
		x->first_ms = prev != NULL ? prev->first_ms : now;
		if (x->has_ttl)
			x->expires_ms = x->first_ms + x->ttl_ms;
		else if (x->has_until)
			x->expires_ms = x->until_ms;
		else
			x->expires_ms = DEC_EX_NEVER;
		if (prev == NULL && x->expires_ms > now && add_release(released, &x->net) < 0)
			return -1;
	}
	dec_exempt_list_free(old);
	*old = *l;
	memset(l, 0, sizeof(*l));
	return 0;
}

int dec_exempt_set_whitelist(struct dec_exempt *x, struct dec_exempt_list *l, int64_t now,
			    struct kl_cidrs *released)
{
	return replace(&x->wl, l, now, released);
}

int dec_exempt_set_feedback(struct dec_exempt *x, struct dec_exempt_list *l, int64_t now,
			   struct kl_cidrs *released)
{
	return replace(&x->fb, l, now, released);
}

static int lookup_list(const struct dec_exempt_list *l, const struct kl_addr *a, int64_t now,
		       int best)
{
	for (size_t i = 0; i < l->n && best < DEC_EX_WHITELIST; i++) {
		const struct dec_exempt_entry *x = &l->v[i];
		if (x->kind <= best || now >= x->expires_ms)
			continue;
		if (kl_cidr_contains(&x->net, a))
			best = x->kind;
	}
	return best;
}

int dec_exempt_lookup(const struct dec_exempt *x, const struct kl_addr *a, int64_t now)
{
	int best = lookup_list(&x->wl, a, now, DEC_EX_NONE);
	return lookup_list(&x->fb, a, now, best);
}

int dec_exempt_cb(void *ctx, const struct kl_addr *a)
{
	const struct dec_exempt *x = ctx;
	return dec_exempt_lookup(x, a, x->now);
}

bool dec_exempt_empty(const struct dec_exempt *x)
{
	return x->wl.n == 0 && x->fb.n == 0;
}

int dec_filewatch_changed(struct dec_filewatch *w, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		bool had = w->have;
		w->have = false;
		return had ? 1 : 0;
	}
	if (w->have && w->dev == st.st_dev && w->ino == st.st_ino && w->size == st.st_size &&
	    w->mtime.tv_sec == st.st_mtim.tv_sec && w->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return 0;
	w->have = true;
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	w->size = st.st_size;
	w->mtime = st.st_mtim;
	return 1;
}

int dec_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		 size_t errlen)
{
	/* The whitelist and the feedback file may sit in the decider's own
	 * directory: never follow a link planted there, never hang on a FIFO. */
	return kl_safe_read_file(path, max, KL_SAFE_OWNED, buf, len, err, errlen);
}
