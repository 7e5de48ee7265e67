/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Address and CIDR parser. Beyond "does not crash": whatever is accepted
 * is canonical (host bits zero, prefix in range, unused bytes zero) and
 * survives format -> parse unchanged; whatever is refused says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_canonical(const struct kl_addr *a)
{
	CHECK(a->family == 4 || a->family == 6);
	CHECK(a->prefixlen <= kl_addr_hostlen(a));
	struct kl_addr m = *a;
	kl_addr_mask(&m);
	CHECK(memcmp(&m, a, sizeof(m)) == 0); /* host bits (and v4 bytes 4..15) zero */
	CHECK(kl_cidr_contains(a, a));
	CHECK(kl_cidr_overlaps(a, a));
}

static void check_round_trip(const struct kl_addr *a, int as_cidr)
{
	char buf[KL_ADDR_STRLEN], err[256];
	struct kl_addr b;

	kl_addr_format(a, buf, sizeof(buf));
	CHECK(strlen(buf) < sizeof(buf) - 1);
	if (as_cidr)
		CHECK(kl_cidr_parse(buf, &b, err, sizeof(err)) == 0);
	else
		CHECK(kl_addr_parse(buf, &b, err, sizeof(err)) == 0);
	CHECK(memcmp(a, &b, sizeof(b)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct kl_addr a, c;
	char err[256];
	int ra, rc;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	ra = kl_addr_parse(s, &a, err, sizeof(err));
	CHECK(ra == 0 || ra == -1);
	if (ra == 0) {
		check_canonical(&a);
		CHECK(kl_addr_is_host(&a));
		check_round_trip(&a, 0);
	} else {
		CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
	}

	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	rc = kl_cidr_parse(s, &c, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		check_canonical(&c);
		check_round_trip(&c, 1);
		/* A single address parses the same both ways. */
		if (ra == 0)
			CHECK(memcmp(&a, &c, sizeof(a)) == 0);
		if (ra == 0 && a.family == 4) {
			struct kl_addr net = c;
			net.prefixlen = 8;
			kl_addr_mask(&net);
			CHECK(kl_cidr_contains(&net, &c));
		}
	} else {
		CHECK(err[0] != '\0');
		CHECK(ra == -1); /* an address is always a CIDR too */
	}
	/* Tiny error buffers are truncated, never overrun. */
	char small[3];
	kl_cidr_parse(s, &c, small, sizeof(small));
	free(s);
	return 0;
}
