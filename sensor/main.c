/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor: unprivileged telemetry harvest (DESIGN §1, §4). */
#include <stdio.h>

#include "common/log.h"
#include "sensor/sensor.h"

int main(int argc, char **argv)
{
	struct sen_opts o;
	struct kl_errs errs = { 0 };
	int rc = 0;

	kl_log_init("kl-sensor", KL_LOG_INFO);
	if (sen_parse(argc, argv, &o, &errs) < 0) {
		kl_errs_print_prog(&errs, "kl-sensor", stderr);
		kl_errs_free(&errs);
		sen_opts_free(&o);
		return KL_EXIT_CONFIG;
	}
	if (o.action == KL_CLI_HELP_MD)
		kl_knob_help_markdown(&sen_knobs, stdout);
	else if (o.action == KL_CLI_HELP_MAN)
		sen_help_man(stdout);
	else if (o.action != KL_CLI_RUN)
		sen_usage(stdout);
	else if (o.c.config_check)
		sen_print(&o, stdout);
	else {
		kl_log_init("kl-sensor", (enum kl_log_level)o.log_level);
		rc = sen_run(&o, argc, argv);
	}
	sen_opts_free(&o);
	return rc;
}
