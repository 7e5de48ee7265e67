/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-decider's audit receipts (docs/audit.md). Every decision of a
 * tick becomes a receipt with its inputs: the source's features, severity,
 * strikes, the thresholds and profile in force, the rule that fired. The
 * tick thread only copies the tick's decisions (a memcpy); a writer thread
 * formats, signs (each receipt on its own), chains and writes them, which
 * is what keeps a tick of 10 000 decisions within 1.1x of its time without
 * audit (`make bench`, bench_audit).
 */
#ifndef KL_DECIDER_AUDIT_H
#define KL_DECIDER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "decider/engine.h"

struct kl_audit;
struct dec_audit;

/* Takes over `a` (closed by dec_audit_free). NULL when out of memory. */
struct dec_audit *dec_audit_new(struct kl_audit *a, const char *profile);
/* Hand one tick's decisions over (a copy; each carries its source's
 * features). Never blocks on the disk. */
void dec_audit_tick(struct dec_audit *da, uint64_t tick, const struct dec_engine_params *p,
		       const struct dec_change *ch, size_t n);
/* Any other record (forgive, ...), in order with the receipts. */
void dec_audit_record(struct dec_audit *da, const char *event, const char *subject,
			 const char *details, const char *result);
/* Wait until everything handed over is written (tests, bench, exit). */
void dec_audit_sync(struct dec_audit *da);
/* Sync, stop the writer, close the trail. NULL is fine. */
void dec_audit_free(struct dec_audit *da);

/* The receipt's details for one decision (pure; for tests). */
int dec_receipt_json(char *buf, size_t len, const struct dec_change *c,
			const struct dec_engine_params *p, const char *profile, uint64_t tick);

#endif
