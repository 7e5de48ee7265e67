/* SPDX-License-Identifier: MPL-2.0 */
#include "ipc/wire.h"

#include <stdarg.h>
#include <stdio.h>

int kl_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
