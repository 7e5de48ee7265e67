/* SPDX-License-Identifier: MPL-2.0 */
#include "common/signals.h"

#include <string.h>

static volatile sig_atomic_t *stop_at, *hup_at;

static void on_stop(int sig)
{
	*stop_at = sig;
}

static void on_hup(int sig)
{
	(void)sig;
	*hup_at = 1;
}

void kl_signals_init(volatile sig_atomic_t *stop, volatile sig_atomic_t *hup)
{
	struct sigaction sa;

	stop_at = stop;
	hup_at = hup;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}
