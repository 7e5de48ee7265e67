/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Wire decoders. The input is tried as a whole message (header + payload)
 * and, so the fuzzer need not forge a header first, as a bare CONTROL,
 * RESULT and HELLO payload. Every accepted buffer must re-encode to the
 * same bytes: a decoder that accepts two encodings of one request leaves
 * room for confusion between sender and receiver.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void ctl(const uint8_t *p, size_t n)
{
	struct kl_ctl_req r;
	uint8_t again[KL_CTL_REQ_LEN];
	char err[256] = "";

	if (kl_ctl_req_decode(p, n, &r, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(n == KL_CTL_REQ_LEN);
	CHECK(r.cmd > 0 && r.cmd < KL_CTL_CMD_MAX);
	CHECK(r.ifname[KL_IFNAMSIZ - 1] == '\0');
	if (r.addr.family != 0)
		CHECK(r.addr.prefixlen <= kl_addr_hostlen(&r.addr));
	kl_ctl_req_encode(&r, again);
	CHECK(memcmp(again, p, KL_CTL_REQ_LEN) == 0);
}

static void result(const uint8_t *p, size_t n)
{
	struct kl_result r;
	char err[256] = "";

	if (kl_result_decode(p, n, &r, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(r.status >= 0 && r.status < KL_STATUS_MAX);
	CHECK(kl_result_len(&r) == n);
	CHECK(memchr(r.text, 0, r.text_len) == NULL);
	CHECK(memchr(r.json, 0, r.json_len) == NULL);
	uint8_t *again = malloc(n);
	if (again == NULL)
		return;
	kl_result_encode(&r, again);
	CHECK(memcmp(again, p, n) == 0);
	free(again);
}

static void hello(const uint8_t *p, size_t n)
{
	struct kl_hello h;
	uint8_t again[KL_HELLO_LEN];
	char err[256] = "";

	if (kl_hello_decode(p, n, &h, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(h.role > KL_ROLE_NONE && h.role < KL_ROLE_MAX);
	kl_hello_encode(&h, again);
	CHECK(memcmp(again, p, KL_HELLO_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_msg m;
	char err[256] = "";

	/* Copies of exactly `size` bytes, so ASan sees any over-read. */
	uint8_t *buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);

	if (kl_msg_decode(buf, size, &m, err, sizeof(err)) == 0) {
		uint8_t hdr[KL_MSG_HDR_LEN];
		kl_msg_hdr_encode(&m.hdr, hdr);
		CHECK(memcmp(hdr, buf, KL_MSG_HDR_LEN) == 0);
		CHECK(m.payload == buf + KL_MSG_HDR_LEN);
		CHECK(m.payload_len == size - KL_MSG_HDR_LEN);
		CHECK(strcmp(kl_msg_type_name(m.hdr.type), "UNKNOWN") != 0);
		switch (m.hdr.type) {
		case KL_MSG_CONTROL: ctl(m.payload, m.payload_len); break;
		case KL_MSG_RESULT: result(m.payload, m.payload_len); break;
		case KL_MSG_HELLO: hello(m.payload, m.payload_len); break;
		default: break;
		}
		/* The monitor table answers for any role pair without reading
		 * out of bounds. */
		for (unsigned f = 0; f <= KL_ROLE_MAX; f++)
			for (unsigned t = 0; t <= KL_ROLE_MAX; t++)
				(void)kl_msg_allowed(f, t, m.hdr.type);
	} else {
		CHECK(err[0] != '\0');
	}

	ctl(buf, size);
	result(buf, size);
	hello(buf, size);
	free(buf);
	return 0;
}
