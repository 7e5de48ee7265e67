/* SPDX-License-Identifier: MPL-2.0 */
/* kl-graphd: the communication graph, freeze and zero-trust paths (DESIGN §7). */
#include <stdio.h>

#include "common/log.h"
#include "graphd/opts.h"
#include "graphd/run.h"

int main(int argc, char **argv)
{
	struct gr_opts o;
	struct kl_errs errs = { 0 };
	int rc;

	kl_log_init("kl-graphd", KL_LOG_INFO);
	if (gr_opts_parse(argc, argv, &o, &errs) < 0) {
		kl_errs_print_prog(&errs, "kl-graphd", stderr);
		kl_errs_free(&errs);
		gr_opts_free(&o);
		return KL_EXIT_CONFIG;
	}
	kl_errs_free(&errs);
	if (o.action != KL_CLI_RUN || o.c.config_check) {
		if (o.action == KL_CLI_HELP_MD)
			kl_knob_help_markdown(&gr_knobs, stdout);
		else if (o.action == KL_CLI_HELP_MAN)
			gr_help_man(stdout);
		else if (o.action == KL_CLI_RUN)
			gr_opts_print(&o, stdout);
		else
			gr_usage(stdout);
		gr_opts_free(&o);
		return 0;
	}
	kl_log_init("kl-graphd", (enum kl_log_level)o.log_level);
	switch (o.cmd) {
	case GR_CMD_DAEMON: rc = gr_run_daemon(&o, argc, argv); break;
	case GR_CMD_REPLAY: rc = gr_run_replay(&o); break;
	default: rc = gr_run_command(&o); break;
	}
	gr_opts_free(&o);
	return rc;
}
