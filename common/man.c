/* SPDX-License-Identifier: MPL-2.0 */
#include "common/man.h"

#include <ctype.h>

/* Quote a macro argument: roff has no escape for '"' inside quotes but \(dq. */
static void quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputs("\\(dq", out);
		else if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else if (*s != '\n')
			fputc(*s, out);
	}
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

void kl_man_section(FILE *out, const char *title)
{
	fputs(".SH ", out);
	quoted(out, title);
	fputc('\n', out);
}

void kl_man_subsection(FILE *out, const char *title)
{
	fputs(".SS ", out);
	quoted(out, title);
	fputc('\n', out);
}

void kl_man_puts(FILE *out, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else
			fputc(*p, out);
		if (*p == '\n' && (p[1] == '.' || p[1] == '\''))
			fputs("\\&", out);
	}
}

void kl_man_line(FILE *out, const char *s)
{
	if (s[0] == '.' || s[0] == '\'')
		fputs("\\&", out);
	kl_man_puts(out, s);
	fputc('\n', out);
}

void kl_man_bold(FILE *out, const char *s)
{
	fputs("\\fB", out);
	kl_man_puts(out, s);
	fputs("\\fR", out);
}

void kl_man_italic(FILE *out, const char *s)
{
	fputs("\\fI", out);
	kl_man_puts(out, s);
	fputs("\\fR", out);
}
