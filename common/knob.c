/* SPDX-License-Identifier: MPL-2.0 */
/*
 * What every knob table gets: value parsing with ranges, layers, the
 * command line, precedence, -n, --help, --help-markdown and --help-man.
 */
#include "common/knob.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/man.h"

const char *kl_knob_path(const struct kl_knob *k, enum kl_kpath p)
{
	return p == KL_KP_PDP ? k->pdp : p == KL_KP_POL ? k->pol : k->key;
}

int kl_knob_index(const struct kl_knobset *ks, const char *name)
{
	for (size_t i = 0; i < ks->n; i++) {
		if (strcmp(ks->k[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

int kl_knob_by_path(const struct kl_knobset *ks, const char *path, enum kl_kpath p)
{
	for (size_t i = 0; i < ks->n; i++) {
		const char *kp = kl_knob_path(&ks->k[i], p);
		if (kp != NULL && strcmp(kp, path) == 0)
			return (int)i;
	}
	return -1;
}

bool kl_knob_path_prefix(const struct kl_knobset *ks, const char *path, enum kl_kpath p)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < ks->n; i++) {
		const char *kp = kl_knob_path(&ks->k[i], p);
		if (kp != NULL && strncmp(kp, path, n) == 0 && kp[n] == '.')
			return true;
	}
	return false;
}

/* ---- errors ---- */

void kl_errs_add(struct kl_errs *e, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	char **nv;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	nv = realloc(e->v, (e->n + 1) * sizeof(*nv));
	if (nv == NULL || s == NULL) {
		free(s);
		if (nv != NULL)
			e->v = nv;
		return;
	}
	e->v = nv;
	e->v[e->n++] = s;
}

void kl_errs_print(const struct kl_errs *e, FILE *f)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s\n", e->v[i]);
}

void kl_errs_print_prog(const struct kl_errs *e, const char *prog, FILE *f)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s: %s\n", prog, e->v[i]);
}

void kl_errs_free(struct kl_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

union kval {
	bool b;
	int64_t i;
	uint64_t u;
	double f;
	int e;
};

static void *field(void *v, const struct kl_knob *k)
{
	return (char *)v + k->off;
}

static const void *cfield(const void *v, const struct kl_knob *k)
{
	return (const char *)v + k->off;
}

/* Untrusted text for a message: printable ASCII, bounded; at most n bytes
 * of s are read, so text that is not NUL-terminated can be quoted too. */
const char *kl_printable_n(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && s[i] != '\0' && o + 4 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= 64) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[o] = '\0';
	return buf;
}

const char *kl_printable(const char *s, char *buf, size_t len)
{
	return kl_printable_n(s, SIZE_MAX, buf, len);
}

static const char *type_name(const struct kl_knob *k)
{
	switch (k->type) {
	case KT_BOOL: return "a boolean (true|false)";
	case KT_INT: return "an integer";
	case KT_U64: return "a non-negative integer";
	case KT_FLOAT: return "a number";
	case KT_DUR: return "a duration (e.g. 500ms, 30s, 2m, 336h)";
	case KT_STR: return "a string";
	case KT_ENUM: return "one of the listed words";
	case KT_CIDRS: return "a list of CIDRs";
	case KT_STRS: return "a list of names";
	}
	return "?";
}

static void range_text(const struct kl_knob *k, char *buf, size_t len)
{
	char a[32], b[32];

	if (k->type == KT_DUR) {
		kl_duration_format((uint64_t)(k->min * 1e9), a, sizeof(a));
		kl_duration_format((uint64_t)(k->max * 1e9), b, sizeof(b));
	} else {
		snprintf(a, sizeof(a), "%.15g", k->min);
		snprintf(b, sizeof(b), "%.15g", k->max);
	}
	snprintf(buf, len, "%s %s and <= %s", (k->flags & KF_EXCL_MIN) ? ">" : ">=", a, b);
}

/* "0100": YAML 1.1 reads it as octal, a decimal parser as 100; refused
 * rather than guessed. */
static bool leading_zero(const char *text)
{
	const char *d = text + (text[0] == '-' || text[0] == '+');
	return d[0] == '0' && isdigit((unsigned char)d[1]);
}

/* Parse text into *out. Returns 0, 1 if it is the knob's sentinel, or -1
 * with a reason in err. */
static int parse_value(const struct kl_knob *k, const char *text, union kval *out,
		       char *err, size_t errlen)
{
	char *end = NULL;
	char qb[96];

	if (k->sentinel != NULL && strcasecmp(text, k->sentinel) == 0) {
		/* Sentinels are compared as text first so that "NaN" and "-1"
		 * need no special syntax elsewhere. */
		if (k->type == KT_FLOAT && strcasecmp(text, "nan") == 0) {
			out->f = NAN;
			return 1;
		}
		if (k->type == KT_DUR && strcmp(text, "-1") == 0) {
			out->i = -1;
			return 1;
		}
	}
	switch (k->type) {
	case KT_BOOL:
		if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0)
			out->b = true;
		else if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0)
			out->b = false;
		else
			goto bad;
		return 0;
	case KT_INT: {
		if (leading_zero(text))
			goto bad;
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (text[0] == '\0' || *end != '\0' || errno != 0)
			goto bad;
		out->i = v;
		break;
	}
	case KT_U64: {
		if (text[0] == '-' || text[0] == '\0' || leading_zero(text))
			goto bad;
		errno = 0;
		unsigned long long v = strtoull(text, &end, 10);
		if (*end != '\0' || errno != 0)
			goto bad;
		out->u = v;
		break;
	}
	case KT_FLOAT: {
		errno = 0;
		double v = strtod(text, &end);
		if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
			goto bad;
		out->f = v;
		break;
	}
	case KT_DUR: {
		uint64_t ns;
		char derr[128];
		if (kl_duration_parse(text, &ns, derr, sizeof(derr)) < 0) {
			snprintf(err, errlen, "%s", derr);
			return -1;
		}
		if (ns > (uint64_t)INT64_MAX) {
			snprintf(err, errlen, "duration '%s' is too long", kl_printable(text, qb, sizeof(qb)));
			return -1;
		}
		out->i = (int64_t)ns;
		break;
	}
	case KT_ENUM:
		for (int i = 0; k->enums[i] != NULL; i++) {
			if (strcmp(text, k->enums[i]) == 0) {
				out->e = i;
				return 0;
			}
		}
		{
			char list[160];
			size_t o = 0;
			for (int i = 0; k->enums[i] != NULL; i++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
						      i ? " | " : "", k->enums[i]);
			snprintf(err, errlen, "'%.80s' is not one of %.150s", kl_printable(text, qb, sizeof(qb)), list);
		}
		return -1;
	case KT_STR:
	case KT_CIDRS:
	case KT_STRS:
		return 0;
	}

	/* Sentinel (numeric form, e.g. "0.0" for "0") and range. */
	if (k->sentinel != NULL) {
		union kval s;
		char e2[8];
		struct kl_knob plain = *k;
		plain.sentinel = NULL;
		plain.min = plain.max = 0; /* no range check on the sentinel itself */
		if (strcasecmp(k->sentinel, "nan") != 0 && strcmp(k->sentinel, "-1") != 0 &&
		    parse_value(&plain, k->sentinel, &s, e2, sizeof(e2)) == 0) {
			if ((k->type == KT_INT || k->type == KT_DUR) && s.i == out->i)
				return 1;
			if (k->type == KT_U64 && s.u == out->u)
				return 1;
			if (k->type == KT_FLOAT && s.f == out->f)
				return 1;
		}
	}
	if (k->max > k->min) {
		double v = k->type == KT_INT ? (double)out->i
			 : k->type == KT_U64 ? (double)out->u
			 : k->type == KT_DUR ? (double)out->i / 1e9
			 : out->f;
		bool lo_ok = (k->flags & KF_EXCL_MIN) ? v > k->min : v >= k->min;
		if (!lo_ok || v > k->max) {
			char r[96];
			range_text(k, r, sizeof(r));
			snprintf(err, errlen, "%s is out of range (must be %s)",
				 kl_printable(text, qb, sizeof(qb)), r);
			return -1;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "expected %s, got '%s'", type_name(k), kl_printable(text, qb, sizeof(qb)));
	return -1;
}

static void free_value(void *v, const struct kl_knob *k)
{
	if (k->type == KT_STR) {
		char **p = field(v, k);
		free(*p);
		*p = NULL;
	} else if (k->type == KT_CIDRS) {
		struct kl_cidrs *c = field(v, k);
		free(c->v);
		c->v = NULL;
		c->n = 0;
	} else if (k->type == KT_STRS) {
		struct kl_strs *l = field(v, k);
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		l->v = NULL;
		l->n = 0;
	}
}

static void store(void *v, const struct kl_knob *k, const union kval *x)
{
	void *p = field(v, k);

	switch (k->type) {
	case KT_BOOL: *(bool *)p = x->b; break;
	case KT_INT:
	case KT_DUR: *(int64_t *)p = x->i; break;
	case KT_U64: *(uint64_t *)p = x->u; break;
	case KT_FLOAT: *(double *)p = x->f; break;
	case KT_ENUM: *(int *)p = x->e; break;
	case KT_STR:
	case KT_CIDRS:
	case KT_STRS: break;
	}
}

static int append_cidrs(struct kl_cidrs *d, const struct kl_cidrs *s)
{
	if (s->n == 0)
		return 0;
	struct kl_addr *nv = realloc(d->v, (d->n + s->n) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	memcpy(nv + d->n, s->v, s->n * sizeof(*nv));
	d->v = nv;
	d->n += s->n;
	return 0;
}

static int append_strs(struct kl_strs *d, const struct kl_strs *s)
{
	if (s->n == 0)
		return 0;
	char **nv = realloc(d->v, (d->n + s->n) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	d->v = nv;
	for (size_t i = 0; i < s->n; i++) {
		d->v[d->n] = strdup(s->v[i]);
		if (d->v[d->n] == NULL)
			return -1;
		d->n++;
	}
	return 0;
}

/* Appends src's items of a list knob to dst's. */
static int append_value(void *dst, const void *src, const struct kl_knob *k)
{
	if (k->type == KT_CIDRS)
		return append_cidrs(field(dst, k), cfield(src, k));
	return append_strs(field(dst, k), cfield(src, k));
}

/* Deep copy of one knob's value from src to dst. */
static int copy_value(void *dst, const void *src, const struct kl_knob *k)
{
	free_value(dst, k);
	if (k->type == KT_STR) {
		const char *s = *(char *const *)cfield(src, k);
		char *d = strdup(s != NULL ? s : "");
		if (d == NULL)
			return -1;
		*(char **)field(dst, k) = d;
	} else if (k->type == KT_CIDRS) {
		const struct kl_cidrs *s = cfield(src, k);
		struct kl_cidrs *d = field(dst, k);
		if (s->n > 0) {
			d->v = malloc(s->n * sizeof(*d->v));
			if (d->v == NULL)
				return -1;
			memcpy(d->v, s->v, s->n * sizeof(*d->v));
			d->n = s->n;
		}
	} else if (k->type == KT_STRS) {
		return append_value(dst, src, k);
	} else {
		size_t sz = k->type == KT_BOOL ? sizeof(bool)
			  : k->type == KT_ENUM ? sizeof(int) : sizeof(int64_t);
		memcpy(field(dst, k), cfield(src, k), sz);
	}
	return 0;
}

int kl_layer_init(struct kl_layer *L, const struct kl_knobset *ks, enum kl_layer_kind kind,
		  const char *file)
{
	memset(L, 0, sizeof(*L));
	L->ks = ks;
	L->kind = kind;
	L->v = calloc(1, ks->size);
	if (file != NULL)
		L->file = strdup(file);
	return L->v == NULL || (file != NULL && L->file == NULL) ? -1 : 0;
}

/* Frees the knob-owned members of a settings struct. */
static void kl_knobs_free_values(const struct kl_knobset *ks, void *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < ks->n; i++)
		free_value(v, &ks->k[i]);
}

void kl_layer_free(struct kl_layer *L)
{
	if (L->ks != NULL)
		kl_knobs_free_values(L->ks, L->v);
	free(L->v);
	free(L->file);
	memset(L, 0, sizeof(*L));
}

static int parse_cidr_list(const struct kl_knob *k, const char *const *items, size_t n,
			   struct kl_cidrs *out, const char *where, struct kl_errs *errs)
{
	struct kl_addr *v = n ? calloc(n, sizeof(*v)) : NULL;
	int rc = 0;

	(void)k;
	if (n && v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char err[160];
		if (kl_cidr_parse(items[i], &v[i], err, sizeof(err)) < 0) {
			kl_errs_add(errs, "%s: item %zu: %s", where, i + 1, err);
			rc = -1;
		}
	}
	if (rc < 0) {
		free(v);
		return -1;
	}
	out->v = v;
	out->n = n;
	return 0;
}

int kl_layer_set_cidrs(struct kl_layer *L, int ki, const char *const *items, size_t n,
		       int line, const char *where, struct kl_errs *errs)
{
	const struct kl_knob *k = &L->ks->k[ki];
	struct kl_cidrs c = { 0 };

	if (parse_cidr_list(k, items, n, &c, where, errs) < 0)
		return -1;
	if ((k->flags & (KF_ADD | KF_REPEAT)) && L->set[ki]) {
		int rc = append_cidrs(field(L->v, k), &c);
		free(c.v);
		return rc;
	}
	free_value(L->v, k);
	*(struct kl_cidrs *)field(L->v, k) = c;
	L->set[ki] = 1;
	L->line[ki] = line;
	return 0;
}

int kl_layer_set_list(struct kl_layer *L, int ki, const char *const *items, size_t n,
		      int line, const char *where, struct kl_errs *errs)
{
	const struct kl_knob *k = &L->ks->k[ki];
	struct kl_strs l = { 0 };
	int rc = 0;

	if (k->type == KT_CIDRS)
		return kl_layer_set_cidrs(L, ki, items, n, line, where, errs);
	for (size_t i = 0; i < n; i++) {
		/* ',' separates the items of the flag and of -n's value. */
		const char *why = items[i][0] == '\0' ? "empty"
				: strchr(items[i], ',') != NULL ? "',' separates items" : NULL;
		for (const char *p = items[i]; why == NULL && *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				why = "control characters are not allowed";
		if (why != NULL) {
			kl_errs_add(errs, "%s: item %zu: %s", where, i + 1, why);
			rc = -1;
		}
	}
	if (rc < 0)
		return -1;
	l.v = n ? calloc(n, sizeof(*l.v)) : NULL;
	if (n && l.v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		l.v[i] = strdup(items[i]);
		if (l.v[i] == NULL)
			rc = -1;
		l.n = i + 1;
	}
	if (rc == 0 && (k->flags & (KF_ADD | KF_REPEAT)) && L->set[ki])
		rc = append_strs(field(L->v, k), &l);
	else if (rc == 0) {
		free_value(L->v, k);
		*(struct kl_strs *)field(L->v, k) = l;
		L->set[ki] = 1;
		L->line[ki] = line;
		return 0;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

int kl_layer_set(struct kl_layer *L, int ki, const char *text, int line,
		 const char *where, bool allow_sentinel, struct kl_errs *errs)
{
	const struct kl_knob *k = &L->ks->k[ki];
	union kval x = { 0 };
	char err[256];
	int rc;

	if (k->type == KT_CIDRS || k->type == KT_STRS) {
		/* Flag syntax: comma-separated. */
		char *dup = strdup(text), *save = NULL;
		const char *items[256];
		size_t n = 0;
		if (dup == NULL)
			return -1;
		for (char *t = strtok_r(dup, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
			if (n == sizeof(items) / sizeof(items[0])) {
				kl_errs_add(errs, "%s: more than %zu CIDRs", where, n);
				free(dup);
				return -1;
			}
			items[n++] = t;
		}
		rc = kl_layer_set_list(L, ki, items, n, line, where, errs);
		free(dup);
		return rc;
	}
	if (k->type == KT_STR) {
		if ((k->flags & KF_NONEMPTY) && text[0] == '\0') {
			kl_errs_add(errs, "%s: must not be empty", where);
			return -1;
		}
		for (const char *p = text; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				kl_errs_add(errs, "%s: control characters are not allowed", where);
				return -1;
			}
		}
		char *d = strdup(text);
		if (d == NULL)
			return -1;
		free_value(L->v, k);
		*(char **)field(L->v, k) = d;
		L->set[ki] = 1;
		L->line[ki] = line;
		return 0;
	}
	rc = parse_value(k, text, &x, err, sizeof(err));
	if (rc < 0) {
		kl_errs_add(errs, "%s: %s", where, err);
		return -1;
	}
	if (rc == 1 && !allow_sentinel) {
		L->set[ki] = 0; /* "use profile": fall through to lower layers */
		return 0;
	}
	store(L->v, k, &x);
	L->set[ki] = 1;
	L->line[ki] = line;
	return 0;
}

void kl_layer_set_float(struct kl_layer *L, int ki, double v)
{
	union kval x = { .f = v };

	store(L->v, &L->ks->k[ki], &x);
	L->set[ki] = 1;
}

/* ---- command line ---- */

int kl_cli_parse(const struct kl_knobset *ks, int argc, char *const argv[],
		 struct kl_layer *flags, enum kl_cli_action *action, kl_cli_other_fn other,
		 void *ctx, struct kl_errs *errs)
{
	size_t before = errs->n;

	*action = KL_CLI_RUN;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char name[64], where[80], qb[96];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*action = KL_CLI_HELP;
			continue;
		}
		if (strcmp(a, "--help-markdown") == 0) {
			*action = KL_CLI_HELP_MD;
			continue;
		}
		if (strcmp(a, "--help-man") == 0) {
			*action = KL_CLI_HELP_MAN;
			continue;
		}
		if (strcmp(a, "--help-man-file") == 0) {
			*action = KL_CLI_HELP_MAN_FILE;
			continue;
		}
		if (strcmp(a, "--version") == 0) {
			*action = KL_CLI_VERSION;
			continue;
		}
		if (strcmp(a, "-n") == 0 && kl_knob_index(ks, "config-check") >= 0)
			a = "--config-check";
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (other != NULL) {
				other(ctx, argc, argv, &i, errs);
				continue;
			}
			kl_errs_add(errs, "unexpected argument '%s' (flags start with --; see --help)",
				    kl_printable(a, qb, sizeof(qb)));
			continue;
		}
		const char *eq = strchr(a + 2, '=');
		size_t nl = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
		if (nl >= sizeof(name)) {
			kl_errs_add(errs, "%s: unknown flag (see --help)", kl_printable(a, qb, sizeof(qb)));
			continue;
		}
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		int ki = kl_knob_index(ks, name);
		if ((ki < 0 || (ks->k[ki].flags & KF_NOCLI)) && other != NULL) {
			other(ctx, argc, argv, &i, errs);
			continue;
		}
		if (ki < 0 || (ks->k[ki].flags & KF_NOCLI)) {
			kl_errs_add(errs, "--%s: unknown flag (see --help)", kl_printable(name, qb, sizeof(qb)));
			continue;
		}
		const char *text;
		if (eq != NULL) {
			text = eq + 1;
		} else if (ks->k[ki].type == KT_BOOL) {
			/* "--x false" as well as "--x=false": no command or
			 * positional argument is spelled true or false. */
			if (i + 1 < argc && (strcmp(argv[i + 1], "true") == 0 ||
					     strcmp(argv[i + 1], "false") == 0))
				text = argv[++i];
			else
				text = "true";
		} else if (i + 1 < argc) {
			text = argv[++i];
		} else {
			kl_errs_add(errs, "--%s needs a value (%s)", name, type_name(&ks->k[ki]));
			continue;
		}
		snprintf(where, sizeof(where), "--%s", name);
		kl_layer_set(flags, ki, text, 0, where, false, errs);
	}
	return errs->n > before ? -1 : 0;
}

int kl_cli_layer(const struct kl_knobset *ks, int argc, char *const argv[],
		 struct kl_layer *flags, enum kl_cli_action *action, kl_cli_other_fn other,
		 void *ctx, struct kl_errs *errs)
{
	size_t before = errs->n;

	if (kl_layer_init(flags, ks, KL_L_FLAG, NULL) < 0) {
		kl_layer_free(flags);
		kl_errs_add(errs, "out of memory");
		return -1;
	}
	kl_cli_parse(ks, argc, argv, flags, action, other, ctx, errs);
	if (*action == KL_CLI_RUN && errs->n == before)
		return 1;
	kl_layer_free(flags);
	return errs->n > before ? -1 : 0;
}

/* ---- resolution ---- */

int kl_resolve(struct kl_resolved *r, const struct kl_layer *const *order, size_t n,
	       struct kl_errs *errs)
{
	const struct kl_knobset *ks = r->ks;
	struct kl_layer def;
	size_t before = errs->n;
	int rc = 0;

	if (kl_layer_init(&def, ks, KL_L_DEFAULT, NULL) < 0) {
		kl_layer_free(&def);
		kl_errs_add(errs, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < ks->n; i++) {
		char where[96];
		snprintf(where, sizeof(where), "built-in default of --%s", ks->k[i].name);
		kl_layer_set(&def, (int)i, ks->k[i].def, 0, where, true, errs);
	}
	for (size_t l = 0; l < n; l++) {
		const struct kl_layer *L = order[l];
		if (L == NULL || L->file == NULL || r->files[L->kind] != NULL)
			continue;
		r->files[L->kind] = strdup(L->file);
		if (r->files[L->kind] == NULL)
			rc = -1;
	}
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_layer *from = &def, *also = NULL;
		size_t at = n;
		for (size_t l = 0; l < n; l++) {
			if (order[l] != NULL && order[l]->set[i]) {
				from = order[l];
				at = l;
				break;
			}
		}
		if (copy_value(r->v, from->v, &ks->k[i]) < 0)
			rc = -1;
		if (ks->k[i].flags & KF_ADD) {
			/* The lower layers' items come first: rebuild from the
			 * lowest layer that sets the knob up to `from`. */
			bool first = true;
			for (size_t l = n; l-- > at + 1;) {
				if (order[l] == NULL || !order[l]->set[i])
					continue;
				if ((first ? copy_value(r->v, order[l]->v, &ks->k[i])
					   : append_value(r->v, order[l]->v, &ks->k[i])) < 0)
					rc = -1;
				first = false;
			}
			if (!first && append_value(r->v, from->v, &ks->k[i]) < 0)
				rc = -1;
			/* also: the highest of the lower layers, named next to from. */
			for (size_t l = at + 1; l < n; l++) {
				if (order[l] != NULL && order[l]->set[i]) {
					also = order[l];
					break;
				}
			}
		}
		r->o[i].kind = (uint8_t)from->kind;
		r->o[i].line = from->line[i];
		r->o[i].file = r->files[from->kind];
		r->o[i].also_kind = also != NULL ? (uint8_t)also->kind : KL_L_DEFAULT;
		r->o[i].also_line = also != NULL ? also->line[i] : 0;
		r->o[i].also_file = also != NULL ? r->files[also->kind] : NULL;
	}
	kl_layer_free(&def);
	return rc < 0 || errs->n > before ? -1 : 0;
}

void kl_resolved_free(struct kl_resolved *r)
{
	if (r->ks != NULL)
		kl_knobs_free_values(r->ks, r->v);
	for (int i = 0; i < KL_L_COUNT; i++) {
		free(r->files[i]);
		r->files[i] = NULL;
	}
}

static void origin_text(const struct kl_resolved *r, int ki, uint8_t kind, int line,
			const char *file, char *buf, size_t len)
{
	const char *f = file ? file : "?";

	switch (kind) {
	case KL_L_DEFAULT: snprintf(buf, len, "default"); break;
	case KL_L_PROFILE: snprintf(buf, len, "profile %s", r->profile ? r->profile : "?"); break;
	case KL_L_STATE: snprintf(buf, len, "state %s", f); break;
	case KL_L_POLICY: snprintf(buf, len, "policy %s:%d", f, line); break;
	case KL_L_PDP: snprintf(buf, len, "pdp %s:%d", f, line); break;
	case KL_L_FILE: snprintf(buf, len, "file %s:%d", f, line); break;
	case KL_L_FLAG: snprintf(buf, len, "flag --%s", r->ks->k[ki].name); break;
	default: snprintf(buf, len, "?"); break;
	}
}

void kl_origin_format(const struct kl_resolved *r, int ki, char *buf, size_t len)
{
	const struct kl_knob_origin *o = &r->o[ki];

	origin_text(r, ki, o->kind, o->line, o->file, buf, len);
	if (o->also_kind != KL_L_DEFAULT) {
		size_t n = strlen(buf);
		if (n + 3 < len) {
			memcpy(buf + n, " + ", 4);
			origin_text(r, ki, o->also_kind, o->also_line, o->also_file, buf + n + 3,
				    len - n - 3);
		}
	}
}

void kl_place_of(const struct kl_resolved *r, int ki, char *buf, size_t len)
{
	const struct kl_knob *k = &r->ks->k[ki];
	const struct kl_knob_origin *o = &r->o[ki];
	const char *f = o->file ? o->file : "?";

	switch (o->kind) {
	case KL_L_FILE: snprintf(buf, len, "%s:%d: %s", f, o->line, k->key ? k->key : k->name); break;
	case KL_L_PDP: snprintf(buf, len, "%s:%d: spec.%s", f, o->line, k->pdp ? k->pdp : "?"); break;
	case KL_L_POLICY: snprintf(buf, len, "%s:%d: spec.%s", f, o->line, k->pol ? k->pol : "?"); break;
	case KL_L_FLAG: snprintf(buf, len, "--%s", k->name); break;
	default: {
		char from[256];
		origin_text(r, ki, o->kind, o->line, o->file, from, sizeof(from));
		snprintf(buf, len, "--%s (%s)", k->name, from);
		break;
	}
	}
}

/* A string printed as it is reads back as the same string, in a flag and
 * in YAML; anything else (empty, a YAML null or boolean word, leading
 * specials, spaces, quotes, commas (a flow list would split there),
 * control bytes, non-ASCII) is double-quoted. A null word
 * left plain would read back as "no value" rather than as this text. */
void kl_yaml_scalar(const char *s, char *buf, size_t len)
{
	static const char *const words[] = { "null", "Null", "NULL", "~", "true", "True",
					     "TRUE", "false", "False", "FALSE", NULL };
	bool plain = s[0] != '\0' && !strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]);

	for (size_t i = 0; plain && words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			plain = false;
	for (const char *p = s; plain && *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("/._-+@:", *p)))
			plain = false;
	/* ": " and a final ':' would read as a mapping key */
	if (plain && strstr(s, ": ") == NULL && s[strlen(s) - 1] != ':') {
		snprintf(buf, len, "%s", s);
		return;
	}
	size_t o = 0;
	if (o + 1 < len)
		buf[o++] = '"';
	for (const char *p = s; *p && o + 6 < len; p++) {
		unsigned char ch = (unsigned char)*p;
		/* YAML reads NEL, LS and PS as line breaks and folds them even
		 * between double quotes: only their own escapes read back. */
		const char *brk = strncmp(p, "\xc2\x85", 2) == 0 ? "\\N"
				: strncmp(p, "\xe2\x80\xa8", 3) == 0 ? "\\L"
				: strncmp(p, "\xe2\x80\xa9", 3) == 0 ? "\\P" : NULL;
		/* libyaml refuses the other C1 controls and U+FFFE/U+FFFF as
		 * text, so a value holding one (from an escape) must be
		 * written as an escape to load again. */
		bool c1 = ch == 0xc2 && (unsigned char)p[1] >= 0x80 && (unsigned char)p[1] <= 0x9f;
		bool nonchar = strncmp(p, "\xef\xbf\xbe", 3) == 0 || strncmp(p, "\xef\xbf\xbf", 3) == 0;
		if (brk != NULL) {
			buf[o++] = brk[0];
			buf[o++] = brk[1];
			p += ch == 0xc2 ? 1 : 2;
		} else if (c1) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", (unsigned char)p[1]);
			p++;
		} else if (nonchar) {
			if (o + 8 >= len)
				break; /* no room for it and the closing quote */
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", p[2] == '\xbe' ? 0xfffe : 0xffff);
			p += 2;
		} else if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	if (o + 1 < len)
		buf[o++] = '"';
	buf[o < len ? o : len - 1] = '\0';
}

void kl_value_format(const struct kl_knobset *ks, const void *cfg, int ki, char *buf, size_t len)
{
	const struct kl_knob *k = &ks->k[ki];
	const void *p = cfield(cfg, k);

	switch (k->type) {
	case KT_BOOL: snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false"); break;
	case KT_INT: snprintf(buf, len, "%lld", (long long)*(const int64_t *)p); break;
	case KT_U64: snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)p); break;
	case KT_FLOAT: snprintf(buf, len, "%.15g", *(const double *)p); break;
	case KT_DUR: {
		int64_t ns = *(const int64_t *)p;
		if (ns < 0)
			snprintf(buf, len, "%lld", (long long)ns);
		else
			kl_duration_format((uint64_t)ns, buf, len);
		break;
	}
	case KT_STR: {
		const char *s = *(char *const *)p;
		kl_yaml_scalar(s != NULL ? s : "", buf, len);
		break;
	}
	case KT_ENUM: snprintf(buf, len, "%s", k->enums[*(const int *)p]); break;
	case KT_STRS:
	case KT_CIDRS: {
		const struct kl_strs *l = p;
		const struct kl_cidrs *c = p;
		size_t n = k->type == KT_STRS ? l->n : c->n, o = 0;
		buf[0] = '\0';
		if (n == 0)
			snprintf(buf, len, "\"\"");
		for (size_t i = 0; i < n && o + 1 < len; i++) {
			/* Each item as a string would be: "::/0" and
			 * "2001:db8::" quoted, as YAML reads them otherwise. */
			char a[KL_ADDR_STRLEN], q[256];
			kl_yaml_scalar(k->type == KT_STRS ? l->v[i] : kl_addr_format(&c->v[i], a, sizeof(a)),
				   q, sizeof(q));
			int w = snprintf(buf + o, len - o, "%s%s", i ? "," : "", q);
			if (w < 0)
				break;
			o += (size_t)w;
		}
		break;
	}
	}
}

void kl_where_of(const struct kl_resolved *r, int ki, char *buf, size_t len)
{
	char v[96], o[160];

	kl_value_format(r->ks, r->v, ki, v, sizeof(v));
	kl_origin_format(r, ki, o, sizeof(o));
	snprintf(buf, len, "%s=%s (%s)", r->ks->k[ki].name, v, o);
}

void kl_config_print_table(const struct kl_resolved *r, const char *header, FILE *f)
{
	const struct kl_knobset *ks = r->ks;
	const char *group = NULL;

	fputs(header, f);
	for (size_t i = 0; i < ks->n; i++) {
		char v[1024], o[512];
		if (group == NULL || strcmp(group, ks->k[i].group) != 0) {
			group = ks->k[i].group;
			fprintf(f, "\n# %s\n", group);
		}
		kl_value_format(ks, r->v, (int)i, v, sizeof(v));
		kl_origin_format(r, (int)i, o, sizeof(o));
		fprintf(f, "%-26s %-36s %s\n", ks->k[i].name, v, o);
	}
}

/* ---- help ---- */

static const char *arg_name(const struct kl_knob *k, char *buf, size_t len)
{
	switch (k->type) {
	case KT_BOOL: return "";
	case KT_INT: return "INT";
	case KT_U64: return "UINT64";
	case KT_FLOAT: return "FLOAT";
	case KT_DUR: return "DURATION";
	case KT_STR: return "STRING";
	case KT_CIDRS: return "CIDR[,CIDR...]";
	case KT_STRS: return "NAME[,NAME...]";
	case KT_ENUM: {
		size_t o = 0;
		buf[0] = '\0';
		for (int i = 0; k->enums[i] != NULL; i++)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "|" : "", k->enums[i]);
		return buf;
	}
	}
	return "";
}

static const char *type_word(const struct kl_knob *k)
{
	switch (k->type) {
	case KT_BOOL: return "bool";
	case KT_INT: return "int";
	case KT_U64: return "uint64";
	case KT_FLOAT: return "float";
	case KT_DUR: return "duration";
	case KT_STR: return "string";
	case KT_ENUM: return "enum";
	case KT_CIDRS: return "cidr list";
	case KT_STRS: return "name list";
	}
	return "?";
}

void kl_knob_help(const struct kl_knobset *ks, const char *usage, FILE *f)
{
	const char *group = NULL;

	fputs(usage, f);
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		char a[96], flag[128];
		if (k->flags & KF_NOCLI)
			continue;
		if (group == NULL || strcmp(group, k->group) != 0) {
			group = k->group;
			fprintf(f, "\n%s:\n", group);
		}
		const char *an = arg_name(k, a, sizeof(a));
		snprintf(flag, sizeof(flag), "--%s%s%s", k->name, an[0] ? " " : "", an);
		fprintf(f, "  %-40s %s (default %s)\n", flag, k->help,
			k->def[0] ? k->def : "\"\"");
	}
}

void kl_knob_help_markdown(const struct kl_knobset *ks, FILE *f)
{
	const char *group = NULL;

	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		char yaml[192];
		if (group == NULL || strcmp(group, k->group) != 0) {
			group = k->group;
			fprintf(f, "%s#### %s\n\n", i ? "\n" : "", group);
			fprintf(f, "| Flag | Type | Default | YAML | Meaning |\n|---|---|---|---|---|\n");
		}
		if (k->key != NULL)
			snprintf(yaml, sizeof(yaml), "`%s`", k->key);
		else if (k->pdp != NULL && k->pol != NULL)
			snprintf(yaml, sizeof(yaml), "PDP `%s`, Policy `%s`", k->pdp, k->pol);
		else if (k->pdp != NULL)
			snprintf(yaml, sizeof(yaml), "PDP `%s`", k->pdp);
		else if (k->pol != NULL)
			snprintf(yaml, sizeof(yaml), "Policy `%s`", k->pol);
		else
			snprintf(yaml, sizeof(yaml), "-");
		const char *t = type_word(k);
		char tb[160];
		if (k->type == KT_ENUM) {
			char a[128];
			snprintf(tb, sizeof(tb), "%s", arg_name(k, a, sizeof(a)));
			/* '|' would split the Markdown cell. */
			for (char *p = tb; *p; p++)
				if (*p == '|')
					*p = '/';
			t = tb;
		}
		fprintf(f, "| `--%s` | %s | %s%s%s | %s | %s |\n", k->name, t,
			k->def[0] ? "`" : "", k->def[0] ? k->def : "(empty)", k->def[0] ? "`" : "",
			yaml, k->help);
	}
}

/* ---- man pages ---- */

void kl_man_page_header(const struct kl_manpage *mp, FILE *f)
{
	kl_man_header(f, mp->name, mp->section, "Kernloom Manual");
	kl_man_section(f, "NAME");
	kl_man_puts(f, mp->name);
	fputs(" \\- ", f);
	kl_man_puts(f, mp->summary);
	fputc('\n', f);
}

static void man_default(FILE *f, const struct kl_knob *k)
{
	fputs(" (default: ", f);
	if (k->def[0] != '\0') {
		fputs("\\fB", f);
		kl_man_puts(f, k->def);
		fputs("\\fR", f);
	} else {
		fputs("empty", f);
	}
	fputs(")", f);
}

static void man_range(FILE *f, const struct kl_knob *k)
{
	char r[96];

	if (k->max > k->min && k->type != KT_ENUM) {
		range_text(k, r, sizeof(r));
		fputs(" Must be ", f);
		kl_man_puts(f, r);
		fputs(".", f);
	}
}

void kl_knob_help_man(const struct kl_knobset *ks, const struct kl_manpage *mp, FILE *f)
{
	const char *group = NULL;

	kl_man_page_header(mp, f);
	fputs(".SH SYNOPSIS\n", f);
	fputs(mp->synopsis, f);
	fputs("\n.SH DESCRIPTION\n", f);
	fputs(mp->description, f);
	fputs("\n.SH OPTIONS\n", f);
	fputs("Booleans are given as \\fB\\-\\-x\\fR or \\fB\\-\\-x=true|false\\fR, other values as "
	      "\\fB\\-\\-x V\\fR or \\fB\\-\\-x=V\\fR. Durations: 500ms, 30s, 2m, 336h.\n", f);
	fputs(".TP\n.B \\-n\nPrint the effective configuration, each value with where it came "
	      "from, and exit: 0, or the status below naming every bad key.\n", f);
	fputs(".TP\n.B \\-h, \\-\\-help\nShort help. \\fB\\-\\-help\\-markdown\\fR prints the "
	      "option table as Markdown, \\fB\\-\\-help\\-man\\fR this page.\n", f);
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		char a[96];
		if (k->flags & KF_NOCLI)
			continue;
		if (group == NULL || strcmp(group, k->group) != 0) {
			group = k->group;
			kl_man_subsection(f, group);
		}
		const char *an = arg_name(k, a, sizeof(a));
		fputs(".TP\n.BR \\-\\-", f);
		kl_man_puts(f, k->name);
		if (an[0] != '\0') {
			fputs(" \" \\fI", f);
			kl_man_puts(f, an);
			fputs("\\fR\"", f);
		}
		fputc('\n', f);
		if (k->help[0] == '.' || k->help[0] == '\'')
			fputs("\\&", f); /* not a request */
		kl_man_puts(f, k->help);
		man_default(f, k);
		fputs(".", f);
		man_range(f, k);
		if (k->key != NULL || k->pdp != NULL) {
			fputs(" File key: \\fB", f);
			kl_man_puts(f, k->key != NULL ? k->key : "spec.");
			if (k->key == NULL)
				kl_man_puts(f, k->pdp);
			fputs("\\fR", f);
			fputs(k->key != NULL ? "." : " (PDPConfig).", f);
		}
		if (k->flags & KF_LIVE)
			fputs(" Reloaded on SIGHUP.", f);
		fputc('\n', f);
	}
	if (mp->files != NULL) {
		fputs(".SH FILES\n", f);
		fputs(mp->files, f);
		fputc('\n', f);
	}
	fputs(".SH EXIT STATUS\n", f);
	fputs(mp->exit_status, f);
	fputc('\n', f);
	if (mp->see_also != NULL) {
		fputs(".SH SEE ALSO\n", f);
		fputs(mp->see_also, f);
		fputc('\n', f);
	}
}

void kl_knob_man_keys(const struct kl_knobset *ks, enum kl_kpath p, const char *title,
		      const char *prefix, FILE *f)
{
	kl_man_subsection(f, title);
	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		const char *path = kl_knob_path(k, p);
		char a[96];
		if (path == NULL)
			continue;
		fputs(".TP\n.B ", f);
		kl_man_puts(f, prefix);
		kl_man_puts(f, path);
		fputc('\n', f);
		fputs("\\fI", f);
		kl_man_puts(f, k->type == KT_ENUM ? arg_name(k, a, sizeof(a)) : type_word(k));
		fputs("\\fR; ", f);
		kl_man_puts(f, k->help);
		man_default(f, k);
		fputs(".", f);
		man_range(f, k);
		fputs(" Flag: \\fB\\-\\-", f);
		kl_man_puts(f, k->name);
		fputs("\\fR.", f);
		if (k->flags & KF_LIVE)
			fputs(" Reloaded on SIGHUP.", f);
		fputc('\n', f);
	}
}

/* ---- reload ---- */

void kl_reload_refused(const struct kl_errs *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		kl_error("SIGHUP: %s", errs->v[i]);
	kl_error("SIGHUP: configuration refused; keeping the running one");
}

void kl_reload_done(size_t changed)
{
	kl_info("SIGHUP: configuration reloaded (%zu settings changed)", changed);
}

size_t kl_reload_apply(struct kl_resolved *run, const struct kl_resolved *fresh)
{
	const struct kl_knobset *ks = run->ks;
	size_t live = 0;

	for (size_t i = 0; i < ks->n; i++) {
		const struct kl_knob *k = &ks->k[i];
		char was[512], now[512], from[512];
		kl_value_format(ks, run->v, (int)i, was, sizeof(was));
		kl_value_format(ks, fresh->v, (int)i, now, sizeof(now));
		if (strcmp(was, now) == 0)
			continue;
		kl_origin_format(fresh, (int)i, from, sizeof(from));
		if (!(k->flags & KF_LIVE)) {
			kl_warn("reload: %s %s (%s) needs a restart; keeping %s", k->name, now, from,
				was);
			continue;
		}
		if (copy_value(run->v, fresh->v, k) < 0) {
			kl_error("reload: out of memory for %s; keeping %s", k->name, was);
			continue;
		}
		/* The origin names a file of fresh, which goes: point at run's
		 * copy of that layer's name (a default file may be new). */
		uint8_t kind = fresh->o[i].kind;
		if (run->files[kind] == NULL && fresh->files[kind] != NULL)
			run->files[kind] = strdup(fresh->files[kind]);
		run->o[i].kind = kind;
		run->o[i].line = fresh->o[i].line;
		run->o[i].file = run->files[fresh->o[i].kind];
		uint8_t also = fresh->o[i].also_kind;
		if (also != KL_L_DEFAULT && run->files[also] == NULL && fresh->files[also] != NULL)
			run->files[also] = strdup(fresh->files[also]);
		run->o[i].also_kind = also;
		run->o[i].also_line = fresh->o[i].also_line;
		run->o[i].also_file = also != KL_L_DEFAULT ? run->files[also] : NULL;
		kl_info("reload: %s %s -> %s (%s)", k->name, was, now, from);
		live++;
	}
	return live;
}
