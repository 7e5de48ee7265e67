/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Prometheus metrics in the node_exporter textfile format, written
 * atomically (kl_safe_replace: a reader never sees half a file). Each
 * daemon builds its page every tick with kl_prom_add and writes it with
 * kl_prom_write to its --metrics-file.
 */
#ifndef KL_COMMON_PROM_H
#define KL_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>

struct kl_prom {
	char *buf;
	size_t len, cap;
	bool oom;
	char last[96]; /* the last metric name: its HELP/TYPE are written once */
};

/* One sample: `name{labels} value`. TYPE is "counter" or "gauge"; HELP and
 * TYPE lines are written before the first sample of a name (samples of one
 * name must be added one after the other). labels may be NULL. */
void kl_prom_add(struct kl_prom *p, const char *name, const char *type, const char *help,
		 const char *labels, double value);
/* Replace PATH with the page (mode 0644). 0, or -1 with err. The page is
 * emptied either way. */
int kl_prom_write(struct kl_prom *p, const char *path, char *err, size_t errlen);
void kl_prom_free(struct kl_prom *p);

#endif
