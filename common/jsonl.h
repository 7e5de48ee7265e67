/* SPDX-License-Identifier: MPL-2.0 */
/*
 * JSON-lines input (DESIGN §6.6) shared by the decider's and graphd's trace
 * readers: one JSON object per line from a file, stdin or a buffer; blank
 * lines and lines starting with '#' are skipped. Plus the field checks
 * both readers apply the same way.
 */
#ifndef KL_COMMON_JSONL_H
#define KL_COMMON_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Longer lines are refused: a trace line is one tick. The limit holds while
 * reading (the rest of a longer line is dropped unread into memory), and
 * a reader may set a lower one in max_line. */
#define KL_JSONL_MAX_LINE (64u << 20)

struct kl_jsonl {
	FILE *f;
	bool own_f;
	const char *mem;
	size_t mem_len, mem_pos;
	char *line;
	size_t line_cap;
	unsigned long lineno; /* of the line kl_jsonl_next returned last */
	size_t max_line;      /* 0 = KL_JSONL_MAX_LINE; never above it */
	bool too_long;        /* the last line read was over the limit */
	char why[96];
};

/* path "-" is stdin. 0, or -1 with errno set. */
int kl_jsonl_open(struct kl_jsonl *l, const char *path);
/* A trace already open (its first bytes read back with rewind by the caller). */
void kl_jsonl_file(struct kl_jsonl *l, FILE *f, bool own);
/* A trace in memory; buf must outlive l. */
void kl_jsonl_mem(struct kl_jsonl *l, const char *buf, size_t len);
void kl_jsonl_close(struct kl_jsonl *l);

/* The next line that should hold a JSON object: 1 with *line and *len (not
 * NUL-terminated for buffers), 0 at the end, -1 with *why when the line
 * cannot be one (binary data, not starting with '{', too long). */
int kl_jsonl_next(struct kl_jsonl *l, const char **line, size_t *len, const char **why);

/* A finite number >= 0. */
bool kl_json_nonneg(const json_t *v, double *out);
/* An IP protocol: 0..255, or a string kl_proto_parse() takes. 0 or -1. */
int kl_json_proto(const json_t *v, uint8_t *out);

#endif
