/* SPDX-License-Identifier: MPL-2.0 */
/* man(7) writing helpers: text from a table never becomes a roff request. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/man.h"

typedef void (*writer)(FILE *out, const char *s);

static char *render(writer w, const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	w(f, s);
	fclose(f);
	return buf;
}

static void check(writer w, const char *in, const char *want)
{
	char *got = render(w, in);
	if (strcmp(got, want) != 0)
		print_message("in=[%s] got=[%s] want=[%s]\n", in, got, want);
	assert_string_equal(got, want);
	free(got);
}

/* The font and heading forms are macros over kl_man_font/kl_man_request. */
static void bold(FILE *out, const char *s)
{
	kl_man_bold(out, s);
}

static void italic(FILE *out, const char *s)
{
	kl_man_italic(out, s);
}

static void section(FILE *out, const char *s)
{
	kl_man_section(out, s);
}

static void subsection(FILE *out, const char *s)
{
	kl_man_subsection(out, s);
}

static void test_escaping(void **state)
{
	(void)state;
	check(kl_man_puts, "--ttl", "\\-\\-ttl");
	check(kl_man_puts, "a\\b", "a\\eb");
	/* a request hidden after a line break is neutralised */
	check(kl_man_puts, "x\n.sp 10\n'br", "x\n\\&.sp 10\n\\&'br");
	check(kl_man_line, ".TH x", "\\&.TH x\n");
	check(kl_man_line, "'x", "\\&'x\n");
	check(kl_man_line, "plain", "plain\n");
	check(bold, "-n N", "\\fB\\-n N\\fR");
	check(italic, "DIR", "\\fIDIR\\fR");
}

static void th(FILE *out, const char *name)
{
	kl_man_header(out, name, 5, "File \"Formats\"");
}

static void test_header_and_sections(void **state)
{
	(void)state;
	/* upper-cased name, no date (a page depends on the binary alone), a
	 * quote inside a macro argument cannot end it */
	check(th, "kernloom-pdp", ".TH \"KERNLOOM\\-PDP\" 5 \"\" \"Kernloom\" \"File \\(dqFormats\\(dq\"\n.nh\n");
	check(section, "EXIT STATUS", ".SH \"EXIT STATUS\"\n");
	check(subsection, "a \"b\" -c", ".SS \"a \\(dqb\\(dq \\-c\"\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_header_and_sections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
