/* SPDX-License-Identifier: MPL-2.0 */
#include "common/jsonl.h"

#include "common/addr.h"
#include "common/safefile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int kl_jsonl_open(struct kl_jsonl *l, const char *path)
{
	memset(l, 0, sizeof(*l));
	if (strcmp(path, "-") == 0) {
		l->f = stdin;
		return 0;
	}
	/* No link, FIFO or hard link followed (safefile.h); "-" reads stdin. */
	l->f = kl_safe_fopen_read(path, KL_SAFE_OWNED, NULL, 0);
	if (l->f == NULL)
		return -1;
	l->own_f = true;
	return 0;
}

void kl_jsonl_file(struct kl_jsonl *l, FILE *f, bool own)
{
	memset(l, 0, sizeof(*l));
	l->f = f;
	l->own_f = own;
}

void kl_jsonl_mem(struct kl_jsonl *l, const char *buf, size_t len)
{
	memset(l, 0, sizeof(*l));
	l->mem = buf;
	l->mem_len = len;
}

void kl_jsonl_close(struct kl_jsonl *l)
{
	if (l->own_f && l->f != NULL)
		fclose(l->f);
	free(l->line);
	memset(l, 0, sizeof(*l));
}

static size_t max_line(const struct kl_jsonl *l)
{
	return l->max_line != 0 && l->max_line < KL_JSONL_MAX_LINE ? l->max_line : KL_JSONL_MAX_LINE;
}

/*
 * One line of a file into l->line, which never grows past the line limit:
 * the rest of a longer line is read and dropped (l->too_long), so a file
 * with a line of gigabytes costs no more memory than the limit. getline()
 * would hold the whole line first. Byte by byte (buffered by stdio) so a
 * NUL byte is just a byte, as with getline.
 */
static const char *file_line(struct kl_jsonl *l, size_t *len)
{
	size_t n = 0, limit = max_line(l);
	bool any = false;
	int c;

	l->too_long = false;
	while ((c = getc_unlocked(l->f)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (l->too_long)
			continue;
		if (n >= limit) {
			l->too_long = true;
			continue;
		}
		if (n + 1 >= l->line_cap) {
			size_t cap = l->line_cap ? l->line_cap * 2 : 4096;
			if (cap > limit + 1)
				cap = limit + 1;
			char *nl = realloc(l->line, cap);
			if (nl == NULL) {
				l->too_long = true; /* refused like an overlong line */
				continue;
			}
			l->line = nl;
			l->line_cap = cap;
		}
		l->line[n++] = (char)c;
	}
	if (!any)
		return NULL;
	if (l->line == NULL) {
		/* An empty line before anything was allocated. */
		static const char empty[1] = "";
		*len = 0;
		return empty;
	}
	l->line[n] = '\0';
	*len = n;
	return l->line;
}

/* Next line without its newline; NULL at the end. */
static const char *raw_line(struct kl_jsonl *l, size_t *len)
{
	if (l->f != NULL)
		return file_line(l, len);
	l->too_long = false;
	if (l->mem == NULL || l->mem_pos >= l->mem_len)
		return NULL;
	const char *s = l->mem + l->mem_pos;
	const char *nl = memchr(s, '\n', l->mem_len - l->mem_pos);
	size_t n = nl ? (size_t)(nl - s) : l->mem_len - l->mem_pos;
	l->mem_pos += n + (nl ? 1 : 0);
	*len = n;
	if (n > max_line(l))
		l->too_long = true;
	return s;
}

int kl_jsonl_next(struct kl_jsonl *l, const char **line, size_t *len, const char **why)
{
	for (;;) {
		const char *s = raw_line(l, len);
		if (s == NULL)
			return 0;
		l->lineno++;
		if (l->too_long) {
			snprintf(l->why, sizeof(l->why), "line longer than %zu bytes (the limit; "
				 "a line is one tick)", max_line(l));
			*why = l->why;
			return -1;
		}
		size_t b = 0;
		while (b < *len && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r'))
			b++;
		if (b == *len || s[b] == '#')
			continue;
		if (s[b] != '{') {
			for (size_t k = 0; k < *len && k < 16; k++) {
				unsigned char c = (unsigned char)s[k];
				if (c == 0 || (c < 0x20 && c != '\t' && c != '\r')) {
					*why = "binary data: neither a JSON-lines trace nor a kl-sensor "
					       "trace (those start with KLTRACE1)";
					return -1;
				}
			}
			*why = "expected a JSON object per line";
			return -1;
		}
		*line = s;
		return 1;
	}
}

bool kl_json_nonneg(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	double d = json_number_value(v);
	if (!isfinite(d) || d < 0)
		return false;
	*out = d;
	return true;
}

int kl_json_proto(const json_t *v, uint8_t *out)
{
	if (json_is_integer(v)) {
		json_int_t p = json_integer_value(v);
		if (p < 0 || p > 255)
			return -1;
		*out = (uint8_t)p;
		return 0;
	}
	const char *s = json_string_value(v);
	int p = s != NULL ? kl_proto_parse(s) : -1;
	if (p < 0)
		return -1;
	*out = (uint8_t)p;
	return 0;
}
