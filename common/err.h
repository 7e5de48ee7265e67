/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The one error helper: functions that can fail take (char *err, size_t
 * errlen) and `return kl_fail(err, errlen, "...", ...)`.
 */
#ifndef KL_COMMON_ERR_H
#define KL_COMMON_ERR_H

#include <stddef.h>

/* Formats into err (when given) and returns -1. */
int kl_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same with errno set to e, for callers that report through errno too. */
int kl_fail_errno(int e, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "<reason> in <what>'<input>'" with the untrusted input quoted (printable
 * ASCII kept, the rest as \xNN, cut after 64 bytes so a hostile string
 * cannot flood a log line). input NULL: the reason alone. Returns -1. */
int kl_fail_in(char *err, size_t errlen, const char *what, const char *input, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));

#endif
