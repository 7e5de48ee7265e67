/* SPDX-License-Identifier: MPL-2.0 */
/* Peak resident memory of this process, for tests that bound allocations
 * driven by input. */
#ifndef KL_TEST_MEMHWM_H
#define KL_TEST_MEMHWM_H

#include <stdio.h>
#include <string.h>

/* Reset the peak to the current RSS (Linux >= 4.0); 0 when it worked. */
static inline int hwm_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f == NULL)
		return -1;
	int rc = fputs("5", f) < 0 ? -1 : 0;
	return fclose(f) == 0 ? rc : -1;
}

/* VmHWM in KiB, -1 when unreadable. */
static inline long hwm_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			sscanf(line + 6, "%ld", &kib);
			break;
		}
	}
	fclose(f);
	return kib;
}

#endif
