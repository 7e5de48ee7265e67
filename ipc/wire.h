/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Little-endian field access for the wire codecs (DESIGN §4): every field is
 * written and read byte by byte, never by casting a struct onto the buffer,
 * so layout and host byte order cannot leak onto the wire. And the one
 * error-text helper every decoder uses.
 */
#ifndef KL_IPC_WIRE_H
#define KL_IPC_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* On little-endian hosts a memcpy is the same bytes, and the frames of a
 * 1M-source tick are encoded and decoded field by field. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KL_HOST_LE 1
#else
#define KL_HOST_LE 0
#endif

static inline void kl_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void kl_put32(uint8_t *p, uint32_t v)
{
	if (KL_HOST_LE) {
		memcpy(p, &v, 4);
		return;
	}
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void kl_put64(uint8_t *p, uint64_t v)
{
	if (KL_HOST_LE) {
		memcpy(p, &v, 8);
		return;
	}
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t kl_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t kl_get32(const uint8_t *p)
{
	uint32_t v = 0;
	if (KL_HOST_LE) {
		memcpy(&v, p, 4);
		return v;
	}
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t kl_get64(const uint8_t *p)
{
	uint64_t v = 0;
	if (KL_HOST_LE) {
		memcpy(&v, p, 8);
		return v;
	}
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* IEEE 754 binary64, little-endian. */
static inline void kl_putf64(uint8_t *p, double d)
{
	uint64_t v;
	memcpy(&v, &d, sizeof(v));
	kl_put64(p, v);
}

static inline double kl_getf64(const uint8_t *p)
{
	uint64_t v = kl_get64(p);
	double d;
	memcpy(&d, &v, sizeof(d));
	return d;
}

#endif
