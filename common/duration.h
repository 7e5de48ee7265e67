/* SPDX-License-Identifier: MPL-2.0 */
/* Durations in the Go flag grammar the seeds use: "500ms", "30s", "2m",
 * "336h", "1h30m", "1.5s", "0". Units: ns us µs ms s m h (d for days). */
#ifndef KL_DURATION_H
#define KL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define KL_NS_PER_MS 1000000ull
#define KL_NS_PER_S  1000000000ull

/* Parse into nanoseconds. Rejects negatives, missing units (except "0"),
 * unknown units, overflow and junk. Returns 0 or -1 with err set. */
int kl_duration_parse(const char *s, uint64_t *ns, char *err, size_t errlen);

/* Shortest exact text: "0s", "500ms", "30s", "2m", "1h30m", "336h". */
const char *kl_duration_format(uint64_t ns, char *buf, size_t len);

/* "2026-06-01T00:00:00Z", "...+02:00", fractional seconds. -> Unix ms.
 * 0, or -1 when s is not such a time. */
int kl_rfc3339_parse(const char *s, int64_t *ms);
/* Unix ms -> "2026-06-01T00:00:00Z" (".123" before the Z when ms is not
 * whole seconds), what an RFC 3339 parser reads back to the same value. */
char *kl_rfc3339_format(int64_t ms, char *buf, size_t len);

#endif
