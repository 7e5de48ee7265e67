/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Writing man(7) pages from the binaries' own tables (`--help-man`), so a
 * page cannot drift from the code it documents. The helpers only escape:
 * a help string must never be read as a roff request or escape.
 */
#ifndef KL_COMMON_MAN_H
#define KL_COMMON_MAN_H

#include <stdio.h>

/* .TH with no date, so the same binary always prints the same page. */
void kl_man_header(FILE *out, const char *name, int section, const char *manual);
/* .SH / .SS TITLE */
void kl_man_section(FILE *out, const char *title);
void kl_man_subsection(FILE *out, const char *title);
/* S escaped for use inside a line: backslash, hyphen (so options stay
 * copyable as ASCII minus), and a line break starting a request. */
void kl_man_puts(FILE *out, const char *s);
/* S as a whole text line (a leading '.' or '\'' is neutralised). */
void kl_man_line(FILE *out, const char *s);
/* \fB S \fR and \fI S \fR, escaped, inline. */
void kl_man_bold(FILE *out, const char *s);
void kl_man_italic(FILE *out, const char *s);

#endif
