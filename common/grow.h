/* SPDX-License-Identifier: MPL-2.0 */
#ifndef KL_COMMON_GROW_H
#define KL_COMMON_GROW_H

#include <stddef.h>

/* Room for one more element in a growable array v of *cap elements of
 * elem bytes, n in use: v itself while n < *cap, else v reallocated to
 * twice the size (min elements at first) with *cap updated. NULL when out
 * of memory; v and *cap are then unchanged. */
void *kl_grow(void *v, size_t n, size_t *cap, size_t elem, size_t min);

#endif
