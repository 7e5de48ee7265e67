/* SPDX-License-Identifier: MPL-2.0 */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QUOTE_MAX_INPUT 64

static void vfail(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
}

int kl_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int kl_fail_errno(int e, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

static void quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0' && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= QUOTE_MAX_INPUT) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, outlen - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

int kl_fail_in(char *err, size_t errlen, const char *what, const char *input, const char *fmt,
	       ...)
{
	char reason[160];
	char q[QUOTE_MAX_INPUT * 4 + 8];
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (input == NULL) {
		snprintf(err, errlen, "%s", reason);
	} else {
		quote(input, q, sizeof(q));
		snprintf(err, errlen, "%s in %s'%s'", reason, what, q);
	}
	return -1;
}
