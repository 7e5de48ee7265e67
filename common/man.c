/* SPDX-License-Identifier: MPL-2.0 */
#include "common/man.h"

#include <ctype.h>
#include <stdbool.h>

/* Text that roff prints as written: a backslash as \e, a dash as \- (an
 * option's dash must not become a hyphen). Inside a quoted macro argument
 * '"' is \(dq (roff has no other escape for it there) and a newline is
 * dropped; in running text a line that starts with '.' or '\'' gets \&,
 * so it is not read as a request. */
static void escaped(FILE *out, const char *s, bool in_quotes)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else if (in_quotes && *p == '"')
			fputs("\\(dq", out);
		else if (!in_quotes || *p != '\n')
			fputc(*p, out);
		if (!in_quotes && *p == '\n' && (p[1] == '.' || p[1] == '\''))
			fputs("\\&", out);
	}
}

static void quoted(FILE *out, const char *s)
{
	fputc('"', out);
	escaped(out, s, true);
	fputc('"', out);
}

void kl_man_header(FILE *out, const char *name, int section, const char *manual)
{
	char up[64];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	up[i] = '\0';
	fputs(".TH ", out);
	quoted(out, up);
	fprintf(out, " %d \"\" \"Kernloom\" ", section);
	quoted(out, manual);
	/* no hyphenation: option and path names must stay copyable */
	fputs("\n.nh\n", out);
}

void kl_man_request(FILE *out, const char *req, const char *arg)
{
	fprintf(out, "%s ", req);
	quoted(out, arg);
	fputc('\n', out);
}

void kl_man_puts(FILE *out, const char *s)
{
	escaped(out, s, false);
}

void kl_man_line(FILE *out, const char *s)
{
	if (s[0] == '.' || s[0] == '\'')
		fputs("\\&", out);
	kl_man_puts(out, s);
	fputc('\n', out);
}

void kl_man_font(FILE *out, char font, const char *s)
{
	fprintf(out, "\\f%c", font);
	kl_man_puts(out, s);
	fputs("\\fR", out);
}
