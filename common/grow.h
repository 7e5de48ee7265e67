/* SPDX-License-Identifier: MPL-2.0 */
/*
 * An array that is reused from tick to tick and grows to the largest tick
 * seen, never shrinking: the receivers convert each tick's records into
 * one such array.
 */
#ifndef KL_COMMON_GROW_H
#define KL_COMMON_GROW_H

#include <stddef.h>
#include <stdlib.h>

/* Make *p hold at least n elements of esz bytes (*cap counts elements),
 * doubling from 64. 0, or -1 when out of memory (*p and *cap unchanged). */
static inline int kl_grow(void **p, size_t *cap, size_t n, size_t esz)
{
	size_t c = *cap ? *cap : 64;
	void *np;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	np = realloc(*p, c * esz);
	if (np == NULL)
		return -1;
	*p = np;
	*cap = c;
	return 0;
}

#endif
