/* SPDX-License-Identifier: MPL-2.0 */
#include "common/status.h"
#include "common/duration.h"

#include <jansson.h>
#include <time.h>
#include <unistd.h>

int64_t kl_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *kl_daemon_status_json(const struct kl_daemon_status *s, int64_t now_ms)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:s, s:I, s:I, s:I, s:I}", "name", s->name,
			      "version", KL_VERSION, "pid", (json_int_t)getpid(), "enforcing",
			      s->enforcing, "mode", s->mode ? s->mode : "", "ticks",
			      (json_int_t)s->ticks, "interval_ms", (json_int_t)s->interval_ms,
			      "frames_in", (json_int_t)s->frames_in, "frames_out",
			      (json_int_t)s->frames_out);
	if (o == NULL)
		return NULL;
	if (s->last_tick_ms == KL_T_NONE) {
		json_object_set_new(o, "last_tick", json_null());
		json_object_set_new(o, "last_tick_age_ms", json_null());
		return o;
	}
	char buf[48];
	json_object_set_new(o, "last_tick",
			    json_string(kl_rfc3339_format(s->last_tick_ms, buf, sizeof(buf))));
	json_object_set_new(o, "last_tick_age_ms",
			    json_integer(now_ms > s->last_tick_ms ? now_ms - s->last_tick_ms : 0));
	return o;
}
