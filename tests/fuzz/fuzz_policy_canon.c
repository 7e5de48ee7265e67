/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The PolicyPack canonical text is injective: the input is two YAML
 * documents split at the first NUL byte (a NUL never belongs to a
 * document); when both load far enough to have a canonical text and the
 * texts are equal, the documents must be equal. "Equal" is decided here
 * by an oracle of its own, independent of decider/yamlcfg.c: libyaml's
 * events folded into a length-prefixed form with mapping entries sorted
 * (key order, quoting style, tags and layout do not count, as for the
 * signature), the top-level signature block left out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "decider/knobs.h"
#include "decider/yamlcfg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The normal form of the node whose first event is ev (consumed), or NULL
 * when the oracle gives up (libyaml error, alias, too deep). */
static char *norm(yaml_parser_t *p, yaml_event_t *ev, int depth, int top)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (depth > 40)
		return NULL;
	if (ev->type == YAML_SCALAR_EVENT) {
		f = open_memstream(&out, &len);
		fprintf(f, "S%zu:", ev->data.scalar.length);
		fwrite(ev->data.scalar.value, 1, ev->data.scalar.length, f);
		fclose(f);
		return out;
	}
	if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT)
		return NULL;
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	yaml_event_type_t end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	char **item = NULL;
	size_t n = 0;
	bool ok = true;
	for (;;) {
		yaml_event_t e;
		if (!yaml_parser_parse(p, &e)) {
			ok = false;
			break;
		}
		if (e.type == end) {
			yaml_event_delete(&e);
			break;
		}
		char *k = norm(p, &e, depth + 1, 0);
		yaml_event_delete(&e);
		if (k == NULL) {
			ok = false;
			break;
		}
		char *v = NULL;
		if (map) {
			if (!yaml_parser_parse(p, &e)) {
				free(k);
				ok = false;
				break;
			}
			v = norm(p, &e, depth + 1, 0);
			yaml_event_delete(&e);
			if (v == NULL) {
				free(k);
				ok = false;
				break;
			}
		}
		if (top && map && strcmp(k, "S9:signature") == 0) {
			free(k);
			free(v);
			continue;
		}
		char **ni = realloc(item, (n + 1) * sizeof(*ni));
		CHECK(ni != NULL);
		item = ni;
		if (map) {
			CHECK(asprintf(&item[n], "%zu:%s%zu:%s", strlen(k), k, strlen(v), v) > 0);
			free(k);
			free(v);
		} else {
			item[n] = k;
		}
		n++;
	}
	if (ok) {
		if (map && n > 1)
			qsort(item, n, sizeof(*item), cmp_str);
		f = open_memstream(&out, &len);
		fprintf(f, "%c%zu(", map ? 'M' : 'Q', n);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%zu:%s", strlen(item[i]), item[i]);
		fputc(')', f);
		fclose(f);
	}
	for (size_t i = 0; i < n; i++)
		free(item[i]);
	free(item);
	return out;
}

static char *oracle(const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char *out = NULL;

	CHECK(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (yaml_parser_parse(&p, &ev)) {
		bool node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
			    ev.type == YAML_SEQUENCE_START_EVENT;
		bool stop = node || ev.type == YAML_STREAM_END_EVENT;
		if (node)
			out = norm(&p, &ev, 0, 1);
		yaml_event_delete(&ev);
		if (stop)
			break;
	}
	yaml_parser_delete(&p);
	return out;
}

static char *canon(const char *text, size_t len)
{
	struct kl_layer L;
	struct kl_errs e = { 0 };
	struct dec_doc_info info;

	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "fuzz");
	dec_yaml_load_text(text, len, "fuzz", KL_DOC_POLICY, &L, &info, &e);
	char *c = info.canonical;
	info.canonical = NULL;
	dec_doc_info_free(&info);
	kl_errs_free(&e);
	kl_layer_free(&L);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *a = (const char *)data;
	const char *nul = memchr(data, 0, size);

	if (nul == NULL)
		return 0;
	size_t la = (size_t)(nul - a), lb = size - la - 1;
	const char *b = nul + 1;
	char *ca = canon(a, la), *cb = canon(b, lb);
	if (ca != NULL && cb != NULL && strcmp(ca, cb) == 0) {
		char *oa = oracle(a, la), *ob = oracle(b, lb);
		/* The loader parsed both with the same libyaml, so the oracle
		 * reads them too. */
		CHECK(oa != NULL && ob != NULL);
		CHECK(strcmp(oa, ob) == 0);
		free(oa);
		free(ob);
	}
	free(ca);
	free(cb);
	return 0;
}
