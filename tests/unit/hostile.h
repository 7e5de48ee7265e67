/* SPDX-License-Identifier: MPL-2.0 */
/*
 * What a hostile local peer does to a listening socket, with raw AF_UNIX
 * calls only (usable in a child forked after nng started: no nng here).
 * Shared by the chan and stream tests.
 */
#ifndef KL_TEST_HOSTILE_H
#define KL_TEST_HOSTILE_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc/msg.h"

/* SP protocol numbers (nng): REQ0 0x30, REP0 0x31, PUSH0 0x50, PULL0 0x51. */
#define HOSTILE_REQ0 0x30
#define HOSTILE_PUSH0 0x50

static inline int hostile_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline void hostile_send(int fd, const void *b, size_t n)
{
	(void)!send(fd, b, n, MSG_NOSIGNAL);
}

static inline void hostile_sp_hdr(uint8_t out[8], uint8_t proto)
{
	const uint8_t h[8] = { 0, 'S', 'P', 0, 0x00, proto, 0, 0 };
	memcpy(out, h, 8);
}

/* One nng ipc frame: 0x01, u64 big-endian length, body. For REQ0 the body
 * starts with a 4-byte request id (high bit set). */
static inline size_t hostile_frame(uint8_t *out, uint8_t proto, const uint8_t *msg, size_t len)
{
	size_t body = len + (proto == HOSTILE_REQ0 ? 4 : 0), o = 0;

	out[o++] = 1;
	for (int i = 7; i >= 0; i--)
		out[o++] = (uint8_t)((uint64_t)body >> (8 * i));
	if (proto == HOSTILE_REQ0) {
		const uint8_t id[4] = { 0x80, 0, 0, 1 };
		memcpy(out + o, id, 4);
		o += 4;
	}
	memcpy(out + o, msg, len);
	return o + len;
}

static inline size_t hostile_hello(uint8_t *out, enum kl_role role)
{
	struct kl_msg_hdr h = { .magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION,
				.type = KL_MSG_HELLO, .payload_len = KL_HELLO_LEN, .seq = 1 };
	struct kl_hello he = { .role = (uint16_t)role, .proto_version = KL_MSG_VERSION,
			       .pid = (uint32_t)getpid() };

	kl_msg_hdr_encode(&h, out);
	kl_hello_encode(&he, out + KL_MSG_HDR_LEN);
	return KL_MSG_HDR_LEN + KL_HELLO_LEN;
}

/* The hostile peer's attack and its relatives: bare connect+close
 * rounds, garbage, half a header, a valid header and gone, half a message,
 * a HELLO with the wrong role. `proto` is the protocol a real peer of this
 * socket speaks. Returns the number of connections made. */
static inline int hostile_attack(const char *path, uint8_t proto, enum kl_role wrong_role)
{
	uint8_t b[256], m[128];
	int made = 0, fd;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20; i++) {
			if ((fd = hostile_connect(path)) >= 0) {
				made++;
				close(fd);
			}
		}
		usleep(100 * 1000);
	}
	for (int kind = 0; kind < 5; kind++) {
		for (int i = 0; i < 5; i++) {
			if ((fd = hostile_connect(path)) < 0)
				continue;
			made++;
			hostile_sp_hdr(b, proto);
			switch (kind) {
			case 0: /* garbage */
				memset(b, 0xA5, 64);
				hostile_send(fd, b, 64);
				break;
			case 1: /* half the SP header */
				hostile_send(fd, b, 4);
				break;
			case 2: /* the header, then gone before the answer */
				hostile_send(fd, b, 8);
				break;
			case 3: { /* header and half a message */
				size_t n = hostile_frame(b + 8, proto, (const uint8_t *)"0123456789abcdef", 16);
				hostile_send(fd, b, 8 + n / 2);
				break;
			}
			default: { /* a HELLO with a role this socket does not serve */
				size_t n = hostile_frame(b + 8, proto, m, hostile_hello(m, wrong_role));
				hostile_send(fd, b, 8 + n);
				usleep(20 * 1000);
				break;
			}
			}
			close(fd);
		}
	}
	return made;
}

/* Connections that say nothing and stay: they must not hold the socket. */
static inline int hostile_stall(const char *path, int *fds, int n, uint8_t proto)
{
	int made = 0;

	for (int i = 0; i < n; i++) {
		fds[i] = hostile_connect(path);
		if (fds[i] < 0)
			continue;
		made++;
		if (i % 2 == 1) { /* half of them complete the SP header first */
			uint8_t h[8];
			hostile_sp_hdr(h, proto);
			hostile_send(fds[i], h, 8);
		}
	}
	return made;
}

static inline int64_t hostile_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int hostile_read(int fd, uint8_t *b, size_t n, int64_t deadline)
{
	size_t have = 0;

	while (have < n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - hostile_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return -1;
		ssize_t r = read(fd, b + have, n - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

/* A well-behaved REQ0 peer in raw calls: HELLO as `role`, and the status
 * of the RESULT that answers it; -1 when no answer came within wait_ms. */
static inline int hostile_req_hello(const char *path, enum kl_role role, int wait_ms)
{
	uint8_t b[512], m[128];
	int64_t deadline = hostile_ms() + wait_ms;
	int fd = hostile_connect(path), status = -1;
	struct kl_msg msg;
	struct kl_result res;

	if (fd < 0)
		return -1;
	hostile_sp_hdr(b, HOSTILE_REQ0);
	size_t n = hostile_frame(b + 8, HOSTILE_REQ0, m, hostile_hello(m, role));
	hostile_send(fd, b, 8 + n);
	if (hostile_read(fd, b, 8 + 9, deadline) == 0) {
		uint64_t len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | b[9 + i];
		if (len > 4 && len <= sizeof(b) && hostile_read(fd, b, (size_t)len, deadline) == 0 &&
		    kl_msg_decode(b + 4, (size_t)len - 4, &msg, NULL, 0) == 0 &&
		    msg.hdr.type == KL_MSG_RESULT &&
		    kl_result_decode(msg.payload, msg.payload_len, &res, NULL, 0) == 0)
			status = res.status;
	}
	close(fd);
	return status;
}

#endif
