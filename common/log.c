/* SPDX-License-Identifier: MPL-2.0 */
/*
 * "<UTC time with ms> <prog>[<pid>] <LEVEL> <message>\n" on stderr.
 * Each line is built in one buffer and written with a single write(), so
 * lines from several threads or processes sharing stderr never interleave.
 * Control characters in the message are replaced: a peer-supplied string
 * must not be able to forge a second log line.
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_prog;
static enum kl_log_level log_min = KL_LOG_INFO;

static const char *const level_names[] = {
	[KL_LOG_DEBUG] = "DEBUG",
	[KL_LOG_INFO] = "INFO",
	[KL_LOG_WARN] = "WARN",
	[KL_LOG_ERROR] = "ERROR",
};

void kl_log_init(const char *prog, enum kl_log_level min)
{
	log_prog = prog;
	log_min = min;
}

int kl_log_level_parse(const char *s)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "debug") == 0)
		return KL_LOG_DEBUG;
	if (strcasecmp(s, "info") == 0)
		return KL_LOG_INFO;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return KL_LOG_WARN;
	if (strcasecmp(s, "error") == 0)
		return KL_LOG_ERROR;
	return -1;
}

static void emit(const char *level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void emit(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t o = 0;
	int n;
	int saved = errno; /* callers may log and then look at errno */

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	o = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + o, sizeof(line) - o, ".%03ldZ %s[%ld] %s ",
		     ts.tv_nsec / 1000000,
		     log_prog != NULL ? log_prog : program_invocation_short_name,
		     (long)getpid(), level);
	if (n > 0)
		o += (size_t)n < sizeof(line) - o ? (size_t)n : sizeof(line) - o - 1;

	size_t msg_start = o;
	/* Leave room for "...\n" in case the message is cut. */
	size_t room = sizeof(line) - o - 4;
	n = vsnprintf(line + o, room + 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > room) {
		o += room;
		memcpy(line + o, "...", 3);
		o += 3;
	} else {
		o += (size_t)n;
	}
	for (size_t i = msg_start; i < o; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			line[i] = '?';
	}
	line[o++] = '\n';

	const char *p = line;
	while (o > 0) {
		ssize_t w = write(STDERR_FILENO, p, o);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		p += w;
		o -= (size_t)w;
	}
	errno = saved;
}

void kl_log(enum kl_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl < (int)log_min || (unsigned)lvl > KL_LOG_ERROR)
		return;
	va_start(ap, fmt);
	emit(level_names[lvl], fmt, ap);
	va_end(ap);
}
