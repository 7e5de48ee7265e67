/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Go time.ParseDuration grammar without a sign: one or more
 * <decimal>[.<decimal>]<unit>, "0" alone, units ns us µs μs ms s m h d.
 * Arithmetic is exact integer nanoseconds (Go goes through float64 for the
 * fraction; we truncate the exact product instead), overflow is an error.
 */
#include "common/duration.h"
#include "common/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DUR_MAX_INPUT 256

struct unit {
	const char *name;
	uint64_t ns;
};

static const struct unit units[] = {
	{ "ns", 1ull },
	{ "us", 1000ull },
	{ "\xc2\xb5s", 1000ull }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000ull }, /* U+03BC greek mu */
	{ "ms", 1000000ull },
	{ "s", KL_NS_PER_S },
	{ "m", 60ull * KL_NS_PER_S },
	{ "h", 3600ull * KL_NS_PER_S },
	{ "d", 86400ull * KL_NS_PER_S },
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int kl_duration_parse(const char *s, uint64_t *ns, char *err, size_t errlen)
{
	const char *p = s;
	uint64_t total = 0;

	if (s == NULL)
		return kl_fail_in(err, errlen, "duration ", NULL, "no duration given");
	if (*s == '\0')
		return kl_fail_in(err, errlen, "duration ", NULL, "empty duration");
	if (strlen(s) > DUR_MAX_INPUT)
		return kl_fail_in(err, errlen, "duration ", s, "too long");
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*s == '-' || *s == '+')
		return kl_fail_in(err, errlen, "duration ", s, "a sign is not allowed");

	while (*p != '\0') {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool have_whole = false, have_frac = false, overflow = false;
		const char *u;
		size_t ulen;
		const struct unit *unit = NULL;

		while (is_digit(*p)) {
			uint64_t d = (uint64_t)(*p - '0');
			if (whole > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				whole = whole * 10 + d;
			have_whole = true;
			p++;
		}
		if (*p == '.') {
			p++;
			while (is_digit(*p)) {
				/* Digits beyond 10^19 change the result by less
				 * than a nanosecond even for days: drop them. */
				if (scale <= UINT64_MAX / 10 / 10) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				have_frac = true;
				p++;
			}
		}
		if (!have_whole && !have_frac)
			return kl_fail_in(err, errlen, "duration ", s, "expected a number at offset %td", p - s);
		u = p;
		while (*p != '\0' && *p != '.' && !is_digit(*p))
			p++;
		ulen = (size_t)(p - u);
		if (ulen == 0)
			return kl_fail_in(err, errlen, "duration ", s,
				    "missing unit (ns, us, ms, s, m, h, d) after the number");
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strlen(units[i].name) == ulen &&
			    memcmp(units[i].name, u, ulen) == 0) {
				unit = &units[i];
				break;
			}
		}
		if (unit == NULL) {
			char uname[24];
			size_t n = ulen < sizeof(uname) - 1 ? ulen : sizeof(uname) - 1;
			for (size_t i = 0; i < n; i++) {
				unsigned char c = (unsigned char)u[i];
				uname[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
			}
			uname[n] = '\0';
			return kl_fail_in(err, errlen, "duration ", s,
				    "unknown unit '%s' (use ns, us, ms, s, m, h, d)", uname);
		}
		if (overflow || whole > UINT64_MAX / unit->ns)
			return kl_fail_in(err, errlen, "duration ", s, "too large (overflows 64-bit nanoseconds)");
		uint64_t v = whole * unit->ns;
		/* frac/scale < 1, so the product fits in 128 bits and the
		 * quotient is below unit->ns. */
		uint64_t fv = (uint64_t)(((unsigned __int128)frac * unit->ns) / scale);
		if (v > UINT64_MAX - fv || v + fv > UINT64_MAX - total)
			return kl_fail_in(err, errlen, "duration ", s, "too large (overflows 64-bit nanoseconds)");
		total += v + fv;
	}
	*ns = total;
	return 0;
}

/* Appends "<n><unit>" for each non-zero component, largest first. */
static void fmt_components(uint64_t ns, char *out, size_t len)
{
	static const struct unit comp[] = {
		{ "h", 3600ull * KL_NS_PER_S }, { "m", 60ull * KL_NS_PER_S },
		{ "s", KL_NS_PER_S }, { "ms", 1000000ull },
		{ "us", 1000ull }, { "ns", 1ull },
	};
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(comp) / sizeof(comp[0]); i++) {
		uint64_t n = ns / comp[i].ns;
		if (n == 0)
			continue;
		ns -= n * comp[i].ns;
		int w = snprintf(out + o, len - o, "%llu%s",
				 (unsigned long long)n, comp[i].name);
		if (w < 0 || (size_t)w >= len - o)
			return;
		o += (size_t)w;
	}
}

/* "<int>[.<frac>]<unit>" with trailing zeros of the fraction dropped. */
static int fmt_fraction(char *out, size_t len, uint64_t v, uint64_t unit,
			unsigned digits, const char *name)
{
	uint64_t whole = v / unit, rest = v % unit;

	if (rest == 0)
		return snprintf(out, len, "%llu%s", (unsigned long long)whole, name);
	while (rest % 10 == 0) {
		rest /= 10;
		digits--;
	}
	return snprintf(out, len, "%llu.%0*llu%s", (unsigned long long)whole,
			(int)digits, (unsigned long long)rest, name);
}

/* Go's layout with zero components left out: hours and minutes, then the
 * rest as a decimal of the largest unit that is at least 1. */
static void fmt_go(uint64_t ns, char *out, size_t len)
{
	uint64_t h = ns / (3600ull * KL_NS_PER_S);
	uint64_t r = ns % (3600ull * KL_NS_PER_S);
	uint64_t m = r / (60ull * KL_NS_PER_S);
	size_t o = 0;
	int w;

	r %= 60ull * KL_NS_PER_S;
	out[0] = '\0';
	if (h != 0) {
		w = snprintf(out + o, len - o, "%lluh", (unsigned long long)h);
		if (w < 0 || (size_t)w >= len - o)
			return;
		o += (size_t)w;
	}
	if (m != 0) {
		w = snprintf(out + o, len - o, "%llum", (unsigned long long)m);
		if (w < 0 || (size_t)w >= len - o)
			return;
		o += (size_t)w;
	}
	if (r == 0)
		return;
	if (r >= KL_NS_PER_S)
		fmt_fraction(out + o, len - o, r, KL_NS_PER_S, 9, "s");
	else if (r >= 1000000ull)
		fmt_fraction(out + o, len - o, r, 1000000ull, 6, "ms");
	else if (r >= 1000ull)
		fmt_fraction(out + o, len - o, r, 1000ull, 3, "us");
	else
		snprintf(out + o, len - o, "%lluns", (unsigned long long)r);
}

const char *kl_duration_format(uint64_t ns, char *buf, size_t len)
{
	char a[64], b[64];

	if (buf == NULL || len == 0)
		return buf;
	if (ns == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	/* Both forms are exact; "1.5s" beats "1s500ms", "2s1us" beats
	 * "2.000001s". On a tie the component form wins. */
	fmt_components(ns, a, sizeof(a));
	fmt_go(ns, b, sizeof(b));
	snprintf(buf, len, "%s", strlen(b) < strlen(a) ? b : a);
	return buf;
}
