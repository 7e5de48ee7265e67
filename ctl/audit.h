/* SPDX-License-Identifier: MPL-2.0 */
/*
 * `klctl audit verify [--key FILE.pub]... [DIR...]` and
 * `klctl audit show [--source IP|CIDR] [--since DUR] [--json] [DIR...]`.
 *
 * Both read audit files only (docs/audit.md): an auditor runs them
 * on another machine with copies of the logs and the public keys. Without
 * DIR, every /var/log/kernloom/<role>/ that exists. Exit codes: verify 0
 * only when every directory verifies, 1 otherwise; show 0, 1 when nothing
 * could be read; 2 usage.
 */
#ifndef KL_CTL_AUDIT_H
#define KL_CTL_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/addr.h"

int ctl_audit_main(int argc, char **argv);

/* Whether a record's subject (address, CIDR or edge "A->B") touches `q`.
 * Public for tests. */
bool ctl_audit_subject_matches(const char *subject, const struct kl_addr *q);

#endif
