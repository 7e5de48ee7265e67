/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The daemons' signals. SIGTERM and SIGINT store their number in *stop
 * (stop after the current pass), SIGHUP sets *hup (read the configuration
 * again); the main loop polls both. SIGPIPE is ignored: a peer that went
 * away shows as EPIPE where it is written to. No handler sets SA_RESTART,
 * so a signal ends a blocking poll at once.
 */
#ifndef KL_SIGNALS_H
#define KL_SIGNALS_H

#include <signal.h>

void kl_signals_init(volatile sig_atomic_t *stop, volatile sig_atomic_t *hup);

#endif
