/* SPDX-License-Identifier: MPL-2.0 */
#include "common/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *kl_grow(void *v, size_t n, size_t *cap, size_t elem, size_t min)
{
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : min;
	if (ncap < *cap || elem == 0 || ncap > SIZE_MAX / elem)
		return NULL;
	void *nv = realloc(v, ncap * elem);
	if (nv != NULL)
		*cap = ncap;
	return nv;
}
