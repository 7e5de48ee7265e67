/* SPDX-License-Identifier: MPL-2.0 */
/* Logging to stderr: "<ISO8601 time> <prog> <LEVEL> message". The seeds'
 * grammar (STATE, ACTION, TICK#n, AUTOTUNE) is written by callers. */
#ifndef KL_LOG_H
#define KL_LOG_H

#include <stdarg.h>

enum kl_log_level { KL_LOG_DEBUG = 0, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR };

void kl_log_init(const char *prog, enum kl_log_level min);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int kl_log_level_parse(const char *s);

void kl_log(enum kl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define kl_debug(...) kl_log(KL_LOG_DEBUG, __VA_ARGS__)
#define kl_info(...)  kl_log(KL_LOG_INFO, __VA_ARGS__)
#define kl_warn(...)  kl_log(KL_LOG_WARN, __VA_ARGS__)
#define kl_error(...) kl_log(KL_LOG_ERROR, __VA_ARGS__)

#endif
