/* SPDX-License-Identifier: MPL-2.0 */
#ifndef KL_COMMON_GROW_H
#define KL_COMMON_GROW_H

#include <stddef.h>

/* Room for one more element in a growable array v of *cap elements of
 * elem bytes, n in use: v itself while n < *cap, else v reallocated to
 * twice the size (min elements at first) with *cap updated. NULL when out
 * of memory; v and *cap are then unchanged. */
void *kl_grow(void *v, size_t n, size_t *cap, size_t elem, size_t min);
/* The same for room for `need` elements at once (a tick's records):
 * doubled until it holds them; v NULL gets an array even for need 0. */
void *kl_grow_to(void *v, size_t need, size_t *cap, size_t elem, size_t min);

#endif
