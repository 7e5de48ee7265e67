/* SPDX-License-Identifier: MPL-2.0 */
/* Inside sandbox/: the steps' pieces, shared by sandbox.c and the tests. */
#ifndef KL_SANDBOX_INT_H
#define KL_SANDBOX_INT_H

#include "sandbox/sandbox.h"

/* The kernel's Landlock ABI version; 0 without Landlock. */
int kl_landlock_abi(void);
/* The file-system rights an ABI knows. */
uint64_t kl_landlock_fs_mask(int abi);
/* Restrict every thread to o's paths plus sys_ro (read-only). A kernel
 * without Landlock: a warning, 0. *abi_out gets the ABI used. */
int kl_landlock_apply(const struct kl_sandbox_opts *o, const char *const *sys_ro, size_t n_sys,
		      int *abi_out);

/* Load the role's seccomp filter on every thread (TSYNC). `log_only`
 * (test builds only) makes the default action log instead of kill. */
int kl_seccomp_apply(enum kl_role role, bool log_only);

/* Test builds (-DKL_TEST_HOOKS) only, else constant false / no-op:
 * KL_TEST_SECCOMP_LOG=1 logs instead of killing (leak-checked runs);
 * KL_TEST_SANDBOX_PROBE=what,... attempts forbidden things right after
 * the sandbox and logs each outcome (the proofs of tests/integration/
 * 15_sandbox.sh). */
bool test_seccomp_log_only(void);
void test_probe(enum kl_role role);

#endif
