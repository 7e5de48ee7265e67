/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The audit verifier (klctl audit verify) on arbitrary files: it never
 * crashes, every refusal names its line, and whatever it accepts is a real
 * chain: consecutive seq from 1, each prev the hash of the line before.
 * The key is fixed (seed 0x01..0x20), so the seeds in the corpus, written
 * by the real writer with that key, verify and the fuzzer starts from
 * valid trails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/audit.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pk[1][KL_AUDIT_PK_LEN];
	static int ready;
	if (!ready) {
		uint8_t seed[32], sk[64];
		for (int i = 0; i < 32; i++)
			seed[i] = (uint8_t)(i + 1);
		if (sodium_init() < 0)
			abort();
		crypto_sign_seed_keypair(pk[0], sk, seed);
		ready = 1;
	}
	struct kl_audit_verifier v;
	kl_audit_verifier_init(&v, (const uint8_t(*)[KL_AUDIT_PK_LEN])pk, 1);
	const char *p = (const char *)data, *end = p + size;
	long lineno = 0;
	uint64_t accepted = 0;
	char err[512];
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		err[0] = '\0';
		uint64_t before = v.records;
		if (kl_audit_verify_line(&v, "f", lineno, p, l, nl == NULL, err, sizeof(err)) < 0) {
			char want[32];
			snprintf(want, sizeof(want), "f line %ld: ", lineno);
			CHECK(strncmp(err, want, strlen(want)) == 0 ||
			      (v.pending_torn_line && strncmp(err, "f line ", 7) == 0));
			return 0;
		}
		if (v.records > before) {
			accepted++;
			CHECK(v.seq == accepted); /* consecutive from 1 */
		}
		p += l + 1;
	}
	return 0;
}
