/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor: unprivileged telemetry harvest (DESIGN §1, §4). */
#include <stdio.h>

#include "common/log.h"
#include "sensor/sensor.h"

int main(int argc, char **argv)
{
	struct kl_sensor_opts o;
	struct kl_errs errs = { 0 };
	int rc = 0;

	kl_log_init("kl-sensor", KL_LOG_INFO);
	if (kl_sensor_parse(argc, argv, &o, &errs) < 0) {
		kl_errs_print_prog(&errs, "kl-sensor", stderr);
		kl_errs_free(&errs);
		kl_sensor_opts_free(&o);
		return 2;
	}
	if (o.action == KL_CLI_HELP_MD)
		kl_knob_help_markdown(&kl_sensor_knobs, stdout);
	else if (o.action == KL_CLI_HELP_MAN)
		kl_sensor_help_man(stdout);
	else if (o.action != KL_CLI_RUN)
		kl_sensor_usage(stdout);
	else if (o.c.config_check)
		kl_sensor_print(&o, stdout);
	else {
		kl_log_init("kl-sensor", (enum kl_log_level)o.log_level);
		rc = kl_sensor_run(&o, argc, argv);
	}
	kl_sensor_opts_free(&o);
	return rc;
}
