/* SPDX-License-Identifier: MPL-2.0 */
#include "common/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *kl_grow_to(void *v, size_t need, size_t *cap, size_t elem, size_t min)
{
	size_t ncap;

	/* Nothing allocated yet: allocate even for 0, so that NULL only
	 * ever means out of memory. */
	if (need <= *cap && v != NULL)
		return v;
	ncap = *cap ? *cap * 2 : min;
	while (ncap != 0 && ncap < need && ncap <= SIZE_MAX / 2)
		ncap *= 2;
	if (ncap < need || elem == 0 || ncap > SIZE_MAX / elem)
		return NULL;
	void *nv = realloc(v, ncap * elem);
	if (nv != NULL)
		*cap = ncap;
	return nv;
}

void *kl_grow(void *v, size_t n, size_t *cap, size_t elem, size_t min)
{
	return n == SIZE_MAX ? NULL : kl_grow_to(v, n + 1, cap, elem, min);
}
