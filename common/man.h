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
/* A request line with one quoted, escaped argument: .SH / .SS TITLE. */
void kl_man_request(FILE *out, const char *req, const char *arg);
#define kl_man_section(out, title) kl_man_request((out), ".SH", (title))
#define kl_man_subsection(out, title) kl_man_request((out), ".SS", (title))
/* S escaped for use inside a line: backslash, hyphen (so options stay
 * copyable as ASCII minus), and a line break starting a request. */
void kl_man_puts(FILE *out, const char *s);
/* S as a whole text line (a leading '.' or '\'' is neutralised). */
void kl_man_line(FILE *out, const char *s);
/* S escaped, inline, in font F (\fB S \fR, \fI S \fR). */
void kl_man_font(FILE *out, char font, const char *s);
#define kl_man_bold(out, s) kl_man_font((out), 'B', (s))
#define kl_man_italic(out, s) kl_man_font((out), 'I', (s))

#endif
