/* SPDX-License-Identifier: MPL-2.0 */
/* The three ways kl-graphd runs; each returns the process exit status. */
#ifndef KL_GRAPHD_RUN_H
#define KL_GRAPHD_RUN_H

#include "graphd/opts.h"

/* Exit statuses (besides 0). */
#define GR_EXIT_FAIL 1
#define GR_EXIT_USAGE 2
#define GR_EXIT_NOTFOUND 3

int gr_run_daemon(struct gr_opts *o, int argc, char **argv); /* daemon.c; argv again on SIGHUP */
int gr_run_replay(const struct gr_opts *o);  /* cli.c */
int gr_run_command(const struct gr_opts *o); /* cli.c: export, freeze, ... */

#endif
