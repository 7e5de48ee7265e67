/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's exemption files: the parsers kl-decider (and its control
 * socket's feedback command) run on the whitelist file and the feedback
 * file's text, and what the decider does with a parsed list. Beyond "does
 * not crash or leak": a rejected file says why; an accepted list stays
 * within its cap, every entry is a valid network with a kind, and once
 * installed each live entry covers its own address at least at its kind,
 * on a reload too; CIDRs handed back for release are the lists' prefixes.
 *
 * Input: byte 0 selects the file (even: whitelist, odd: feedback JSON),
 * the rest is its text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decider/engine.h"
#include "decider/exempt.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define NOW_MS 1780000000000LL

static void check_covered(const struct dec_exempt *x, const struct dec_exempt_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct dec_exempt_entry *e = &l->v[i];
		if (e->expires_ms <= NOW_MS)
			continue;
		CHECK(dec_exempt_lookup(x, &e->net, NOW_MS) >= e->kind);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool feedback = data[0] & 1;
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	CHECK(text != NULL);
	memcpy(text, data + 1, len);

	struct dec_exempt_list l = { 0 };
	struct kl_errs e = { 0 };
	int rc = feedback ? dec_feedback_parse(text, len, "fuzz", &l, &e)
			  : dec_whitelist_parse(text, len, "fuzz", &l, &e);
	if (rc < 0) {
		CHECK(e.n > 0);
		dec_exempt_list_free(&l);
	} else {
		CHECK(l.n <= DEC_EX_MAX_ENTRIES);
		for (size_t i = 0; i < l.n; i++) {
			const struct dec_exempt_entry *x = &l.v[i];
			CHECK(x->net.family == 4 || x->net.family == 6);
			CHECK(x->net.prefixlen <= (x->net.family == 4 ? 32 : 128));
			CHECK(x->kind == DEC_EX_FORGIVE || x->kind == DEC_EX_WHITELIST);
			CHECK(feedback || x->kind == DEC_EX_WHITELIST);
			CHECK(x->id != NULL);
		}
		/* Installed twice: the second time is the reload of an
		 * unchanged file. */
		struct dec_exempt_list again = { 0 };
		struct kl_errs e2 = { 0 };
		CHECK((feedback ? dec_feedback_parse(text, len, "fuzz", &again, &e2)
				: dec_whitelist_parse(text, len, "fuzz", &again, &e2)) == 0);
		kl_errs_free(&e2);
		struct dec_exempt x;
		struct kl_cidrs rel = { 0 };
		dec_exempt_init(&x);
		CHECK((feedback ? dec_exempt_set_feedback(&x, &l, NOW_MS, &rel)
				: dec_exempt_set_whitelist(&x, &l, NOW_MS, &rel)) == 0);
		check_covered(&x, feedback ? &x.fb : &x.wl);
		for (size_t i = 0; i < rel.n; i++)
			CHECK(rel.v[i].prefixlen < (rel.v[i].family == 4 ? 32 : 128));
		CHECK((feedback ? dec_exempt_set_feedback(&x, &again, NOW_MS + 1, &rel)
				: dec_exempt_set_whitelist(&x, &again, NOW_MS + 1, &rel)) == 0);
		check_covered(&x, feedback ? &x.fb : &x.wl);
		free(rel.v);
		dec_exempt_free(&x);
		dec_exempt_list_free(&l);
		dec_exempt_list_free(&again);
	}
	kl_errs_free(&e);
	free(text);
	return 0;
}
