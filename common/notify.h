/* SPDX-License-Identifier: MPL-2.0 */
/*
 * systemd readiness and watchdog (Type=notify, WatchdogSec=). Outside
 * systemd ($NOTIFY_SOCKET unset) every call does nothing, so the daemons
 * started by hand or by the tests behave as before.
 *
 * sd_notify opens an AF_UNIX datagram socket and calls sendmsg each time:
 * the seccomp allow-lists must admit socket(AF_UNIX), sendmsg and close.
 */
#ifndef KL_NOTIFY_H
#define KL_NOTIFY_H

/* READY=1 with a STATUS= line: call once the daemon really serves
 * (sockets listening, maps open, first tick ready). */
void kl_notify_ready(const char *status);
/* WATCHDOG=1, at most every quarter of WatchdogSec= (call it from every
 * pass of the main loop; passes are at most a second apart). */
void kl_notify_watchdog(void);
/* STOPPING=1, when a signal ends the loop. */
void kl_notify_stopping(void);

#endif
