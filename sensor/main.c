/* SPDX-License-Identifier: MPL-2.0 */
/* kl-sensor: unprivileged telemetry harvest (DESIGN §1, §4). */
#include <stdio.h>

#include "common/log.h"
#include "sensor/sensor.h"

int main(int argc, char **argv)
{
	struct kl_sensor_opts o;
	char err[512];

	kl_log_init("kl-sensor", KL_LOG_INFO);
	if (kl_sensor_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "kl-sensor: %s\n", err);
		return 2;
	}
	if (o.help) {
		kl_sensor_usage(stdout);
		return 0;
	}
	kl_log_init("kl-sensor", (enum kl_log_level)o.log_level);
	return kl_sensor_run(&o);
}
