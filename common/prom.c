/* SPDX-License-Identifier: MPL-2.0 */
#include "common/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/safefile.h"

static void put(struct kl_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct kl_prom *p, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		if (p->oom)
			return;
		size_t room = p->cap - p->len;
		va_start(ap, fmt);
		int n = vsnprintf(p->buf ? p->buf + p->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			p->oom = true;
			return;
		}
		if ((size_t)n < room) {
			p->len += (size_t)n;
			return;
		}
		size_t cap = p->cap ? p->cap * 2 : 4096;
		while (cap - p->len <= (size_t)n)
			cap *= 2;
		char *b = realloc(p->buf, cap);
		if (!b) {
			p->oom = true;
			return;
		}
		p->buf = b;
		p->cap = cap;
	}
}

void kl_prom_add(struct kl_prom *p, const char *name, const char *type, const char *help,
		 const char *labels, double value)
{
	if (strcmp(p->last, name) != 0) {
		put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
		snprintf(p->last, sizeof(p->last), "%s", name);
	}
	/* Prometheus spells the special values its own way. */
	const char *special = isnan(value) ? "NaN" : isinf(value) ? (value > 0 ? "+Inf" : "-Inf") : NULL;
	if (special)
		put(p, "%s%s%s%s %s\n", name, labels ? "{" : "", labels ? labels : "", labels ? "}" : "",
		    special);
	else
		put(p, "%s%s%s%s %.17g\n", name, labels ? "{" : "", labels ? labels : "",
		    labels ? "}" : "", value);
}

int kl_prom_write(struct kl_prom *p, const char *path, char *err, size_t errlen)
{
	int rc;
	if (p->oom) {
		snprintf(err, errlen, "%s: out of memory building the metrics", path);
		rc = -1;
	} else {
		rc = kl_safe_replace(path, p->buf ? p->buf : "", p->len, 0644, NULL, KL_SAFE_OWNED, err,
				     errlen);
	}
	p->len = 0;
	p->oom = false;
	p->last[0] = '\0';
	return rc;
}

void kl_prom_free(struct kl_prom *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}
