/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-sensor's loop: open the telemetry pins read-only while still root,
 * open the trace, drop to the sensor user with no capability, then once
 * per tick read, diff, send the tick's TELEMETRY and FLOWS frames (as many
 * as it takes: a tick is never truncated), record them.
 */
#include "sensor/sensor.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/prom.h"
#include "common/status.h"
#include "common/safefile.h"
#include "common/signals.h"
#include "ipc/stream.h"
#include "ipc/trace.h"
#include "sandbox/rundir.h"
#include "sandbox/sandbox.h"

#include <bpf/libbpf.h>
#include "harvest/collect.h"

#define NS 1000000000ull

static volatile sig_atomic_t stop_signal, reload_signal;


/* Sleep until `deadline` (CLOCK_BOOTTIME); false when a signal asked us to stop.
 * Wakes at least once a second to ping systemd's watchdog, so a long
 * --interval does not read as a hung sensor. */
static bool sleep_until(uint64_t deadline)
{
	while (!stop_signal) {
		uint64_t now = kl_clock_ns(CLOCK_BOOTTIME);
		if (now >= deadline)
			return true;
		uint64_t until = deadline - now > NS ? now + NS : deadline;
		struct timespec ts = { .tv_sec = (time_t)(until / NS), .tv_nsec = (long)(until % NS) };
		int rc = clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &ts, NULL);
		if (rc != 0 && rc != EINTR)
			return true;
		kl_notify_watchdog();
	}
	return false;
}

/* Become the sensor user with no capabilities. */
static int drop_privileges(const struct sen_opts *o)
{
	static struct kl_sandbox_opts so;

	/* Afterwards: the pins read-only (re-opened after an enforcer
	 * restart), the --record file; sockets are only dialled. */
	kl_sandbox_ro(&so, o->pin_dir);
	kl_sandbox_ro_file(&so, o->c.config); /* re-read on SIGHUP */
	/* libbpf caches the CPU count it reads from /sys (per-CPU maps). */
	if (libbpf_num_possible_cpus() < 0)
		return -1;
	kl_sandbox_rw(&so, o->record);
	kl_sandbox_rw(&so, o->audit_dir);
	kl_sandbox_rw_parent(&so, o->metrics_file);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(o->user);
		if (pw == NULL) {
			kl_error("--user %s: no such user (create it, e.g. with systemd-sysusers, or pass "
				 "--user)",
				 o->user);
			return -1;
		}
		if (pw->pw_uid == 0) {
			kl_error("--user %s: is uid 0; the sensor must not keep root", o->user);
			return -1;
		}
		so.user = o->user;
	}
	if (kl_sandbox_enter(KL_ROLE_SENSOR, &so) < 0)
		return -1;
	if (geteuid() == 0 || getuid() == 0) {
		kl_error("still uid 0 after the sandbox; refusing to run");
		return -1;
	}
	return 0;
}

/* The audit trail: opened before the drop, for the user we become. */
static struct kl_audit *open_audit(const struct sen_opts *o)
{
	char err[512];
	struct passwd *pw = geteuid() == 0 ? getpwnam(o->user) : NULL;
	struct kl_audit_opts ao = { .dir = o->audit_dir, .key = o->audit_key, .proc = "sensor",
				    .uid = pw ? pw->pw_uid : (uid_t)-1,
				    .gid = pw ? pw->pw_gid : (gid_t)-1 };
	struct kl_audit *a = kl_audit_open(&ao, err, sizeof(err));
	if (a == NULL)
		kl_error("%s", err);
	return a;
}

/* The maps this sensor reads, by kernel id ("what did it look at"). */
static void audit_maps(struct kl_audit *a, const char *event, const struct kl_smaps *m)
{
	char d[512];
	size_t o = (size_t)snprintf(d, sizeof(d), "{\"pin_dir\":\"%s\"", m->dir);
	for (int i = 0; i < KL_SM_MAX && o < sizeof(d); i++)
		o += (size_t)snprintf(d + o, sizeof(d) - o, ",\"%s\":%u", kl_smap_name((enum kl_smap)i),
				      m->fd[i] >= 0 ? m->id[i] : 0);
	if (o < sizeof(d) - 1)
		snprintf(d + o, sizeof(d) - o, "}");
	kl_audit_record(a, event, "", o < sizeof(d) - 1 ? d : "{}", "ok");
}

/* A tick that was lost (skipped) or torn (a failed or truncated read). */
static void audit_tick(struct kl_audit *a, const char *event, long long tick, const char *why,
		       unsigned long long n)
{
	char d[512], w[320];
	kl_audit_json_str(w, sizeof(w), why);
	snprintf(d, sizeof(d), "{\"tick\":%lld,\"why\":%s,\"count\":%llu}", tick, w, n);
	kl_audit_record(a, event, "", d, "error");
}

struct rec_ctx {
	struct kl_trace_writer *w;
	char *err;
	size_t errlen;
};

static int record_msg(void *p, const uint8_t *msg, size_t len)
{
	struct rec_ctx *x = p;

	return kl_trace_append(x->w, msg, len, x->err, x->errlen) < 0 ? -1 : 0;
}

struct link {
	struct kl_stream_tx *tx;
	uint64_t seq;
	uint64_t last_dropped; /* dropped counter at the previous summary */
};

/* --metrics-file, every tick. A failed write is logged once a minute. */
static void write_metrics(const char *path, struct kl_prom *p, uint64_t ticks, uint64_t pkts,
			  uint32_t sources, uint32_t flows, uint64_t read_ns, struct kl_stream_tx *t,
			  struct kl_stream_tx *f, time_t *warned)
{
	struct kl_stream_tx_stats st, sf;
	char err[512];
	struct timespec now;
	kl_stream_tx_stats(t, &st);
	kl_stream_tx_stats(f, &sf);
	clock_gettime(CLOCK_REALTIME, &now);
	kl_prom_add(p, "kernloom_sensor_build_info", "gauge", "The sensor's version.",
		    "version=\"" KL_VERSION "\"", 1);
	kl_prom_add(p, "kernloom_sensor_ticks_total", "counter", "Ticks since start.", NULL,
		    (double)ticks);
	kl_prom_add(p, "kernloom_sensor_packets_total", "counter",
		    "Packets the shield counted, summed over the ticks since start.", NULL, (double)pkts);
	kl_prom_add(p, "kernloom_sensor_sources", "gauge", "Sources in the last telemetry frame.",
		    NULL, sources);
	kl_prom_add(p, "kernloom_sensor_flows", "gauge", "Flows in the last flow frame.", NULL, flows);
	kl_prom_add(p, "kernloom_sensor_frames_sent_total", "counter", "Frames sent, by stream.",
		    "stream=\"telemetry\"", (double)st.sent);
	kl_prom_add(p, "kernloom_sensor_frames_sent_total", "counter", "Frames sent, by stream.",
		    "stream=\"flows\"", (double)sf.sent);
	kl_prom_add(p, "kernloom_sensor_frames_dropped_total", "counter",
		    "Frames dropped (no reader or a full queue), by stream.", "stream=\"telemetry\"",
		    (double)st.dropped);
	kl_prom_add(p, "kernloom_sensor_frames_dropped_total", "counter",
		    "Frames dropped (no reader or a full queue), by stream.", "stream=\"flows\"",
		    (double)sf.dropped);
	kl_prom_add(p, "kernloom_sensor_read_seconds", "gauge", "Time the last map read took.", NULL,
		    (double)read_ns / 1e9);
	kl_prom_add(p, "kernloom_sensor_last_tick_timestamp_seconds", "gauge",
		    "Wall-clock time of the last tick.", NULL,
		    (double)now.tv_sec + (double)now.tv_nsec / 1e9);
	if (kl_prom_write(p, path, err, sizeof(err)) < 0 && now.tv_sec - *warned >= 60) {
		kl_warn("metrics: %s", err);
		*warned = now.tv_sec;
	}
}

int sen_run(struct sen_opts *o, int argc, char **argv)
{
	struct kl_trace_writer *trace = NULL;
	struct kl_collector col;
	struct kl_harvest h;
	struct kl_smaps maps;
	struct link lt = { 0 }, lf = { 0 };
	char err[600], path[PATH_MAX];
	int rc = 1;
	struct kl_audit *audit = NULL;

	kl_signals_init(&stop_signal, &reload_signal);

	if (kl_smaps_open(&maps, o->pin_dir, err, sizeof(err)) < 0) {
		kl_error("%s", err);
		return 1;
	}
	if (o->record != NULL) {
		char note[600];
		/* Opened before the drop: the file may belong to root, us or the
		 * user we become, nobody else (safefile.h). */
		struct passwd *pw = geteuid() == 0 ? getpwnam(o->user) : NULL;
		kl_safe_set_user(pw != NULL ? pw->pw_uid : geteuid());
		if (kl_trace_open(&trace, o->record, note, sizeof(note), err, sizeof(err)) < 0) {
			kl_error("--record: %s", err);
			kl_smaps_close(&maps);
			return 1;
		}
		if (note[0])
			kl_warn("--record: %s", note);
	}
	if (o->audit_dir[0] != '\0' && (audit = open_audit(o)) == NULL)
		goto out_maps;
	audit_maps(audit, "start", &maps);
	if (drop_privileges(o) < 0)
		goto out_maps;

	/* nng starts its threads here, after the privilege drop. */
	if (kl_run_path(o->run_dir, KL_ROLE_DECIDER, "telemetry.sock", path, sizeof(path), err,
			sizeof(err)) < 0 ||
	    kl_stream_dial(&lt.tx, path, KL_ROLE_SENSOR, err, sizeof(err)) < 0) {
		kl_error("telemetry link: %s", err);
		goto out_maps;
	}
	if (kl_run_path(o->run_dir, KL_ROLE_GRAPHD, "flows.sock", path, sizeof(path), err,
			sizeof(err)) < 0 ||
	    kl_stream_dial(&lf.tx, path, KL_ROLE_SENSOR, err, sizeof(err)) < 0) {
		kl_error("flows link: %s", err);
		goto out_links;
	}
	/* Sources are kept by slot (kl_harvest_slots); the address table
	 * holds only restricted ones. */
	if (kl_harvest_init(&h, o->prev_ttl_ns, 1024, KL_FLOW_MAX_DEFAULT) < 0) {
		kl_error("out of memory for the harvest tables");
		goto out_links;
	}
	if (kl_collector_init(&col, KL_READ_BATCH) < 0) {
		kl_error("%s", col.err);
		goto out_harvest;
	}
	char ivl[32];
	kl_info("reading %s every %s; telemetry -> %s/decider/telemetry.sock, flows -> %s/graphd/flows.sock%s%s",
		o->pin_dir, kl_duration_format(o->interval_ns, ivl, sizeof(ivl)), o->run_dir,
		o->run_dir, o->record ? "; recording to " : "", o->record ? o->record : "");

	uint64_t next = kl_clock_ns(CLOCK_BOOTTIME), ticks = 0, fail_logged_tick = 0;
	uint64_t sum_pkts = 0, sum_frames = 0, sum_read_ns = 0, trace_errs = 0, total_pkts = 0;
	struct kl_prom prom = { 0 };
	time_t prom_warned = 0;
	bool first = true, reacquire_now = false, first_read = true;
	rc = 0;
	while (!stop_signal) {
		kl_notify_watchdog();
		if (!first && !sleep_until(next))
			break;
		uint64_t now = kl_clock_ns(CLOCK_BOOTTIME);
		/* Fell behind by more than a tick (suspend, a stalled host):
		 * skip the missed ticks instead of firing them back to back. */
		if (now > next + o->interval_ns) {
			if (!first) {
				kl_warn("tick late by %llu ms; skipping ahead",
					(unsigned long long)((now - next) / 1000000));
				audit_tick(audit, "ticks_lost", (long long)h.tick, "late; skipped ahead",
					   (now - next) / o->interval_ns);
			}
			next = now;
		}
		next += o->interval_ns;
		first = false;
		if (reload_signal) {
			reload_signal = 0;
			if (sen_reload(o, argc, argv) == 0)
				kl_log_init("kl-sensor", (enum kl_log_level)o->log_level);
		}

		/* Check the pins before reading, so a tick after an enforcer
		 * restart already reads the new maps. */
		if (reacquire_now || (h.started && (h.tick + 1) % o->reacquire_every == 0)) {
			if (kl_smaps_refresh(&maps) > 0) {
				col.new_maps |= maps.swapped;
				audit_maps(audit, "maps", &maps);
			}
			reacquire_now = false;
		}
		int64_t tick = kl_collect_tick(&col, maps.fd, &h, now, 0, kl_clock_ns(CLOCK_REALTIME),
					       lt.seq + 1, lf.seq + 1);
		if (tick < 0) {
			kl_error("out of memory building the frames");
			rc = 1;
			break;
		}
		if (col.failed) {
			if (fail_logged_tick == 0 || (uint64_t)tick - fail_logged_tick >= 60) {
				kl_warn("TICK#%lld: %s; checking the pins", (long long)tick, col.why);
				fail_logged_tick = (uint64_t)tick;
			}
			audit_tick(audit, "tick_torn", (long long)tick, col.why, 1);
			reacquire_now = true;
		}
		if (first_read) {
			/* The maps were read once: the first tick is ready. */
			kl_notify_ready("reading the telemetry pins");
			first_read = false;
		}
		if (tick == 0)
			continue;

		lt.seq += col.telem.nmsg;
		lf.seq += col.flows.nmsg;
		if (kl_stream_send_tick(lt.tx, &col.telem) < 0 ||
		    kl_stream_send_tick(lf.tx, &col.flows) < 0) {
			kl_error("a stream socket closed under us");
			rc = 1;
			break;
		}
		if (trace != NULL) {
			struct rec_ctx rx = { trace, err, sizeof(err) };
			if (kl_frame_each(&col.telem, record_msg, &rx) != 0 ||
			    kl_frame_each(&col.flows, record_msg, &rx) != 0 ||
			    (o->sync_every > 0 && (uint64_t)tick % o->sync_every == 0 &&
			     kl_trace_sync(trace, err, sizeof(err)) < 0)) {
				if (trace_errs++ % 60 == 0)
					kl_error("--record: %s (recording goes on; %llu errors so far)", err,
						 (unsigned long long)trace_errs);
			}
		}
		sum_pkts += h.totals_delta[KL_T_PKTS];
		sum_frames += col.telem.nmsg + col.flows.nmsg;
		sum_read_ns += col.read_ns;
		ticks++;
		total_pkts += h.totals_delta[KL_T_PKTS];
		if (o->metrics_file)
			write_metrics(o->metrics_file, &prom, ticks, total_pkts, col.telem.n, col.flows.n,
				      col.read_ns, lt.tx, lf.tx, &prom_warned);
		if (o->summary_every > 0 && ticks % o->summary_every == 0) {
			struct kl_stream_tx_stats st, sf;
			kl_stream_tx_stats(lt.tx, &st);
			kl_stream_tx_stats(lf.tx, &sf);
			kl_info("TICK#%lld sources=%u/%zu flows=%u/%zu pkts=%llu "
				"telemetry_sent=%llu telemetry_dropped=%llu flows_sent=%llu "
				"flows_dropped=%llu frames=%llu read_ms=%.2f",
				(long long)tick, col.telem.n, (size_t)h.st.src_seen, col.flows.n,
				kl_harvest_known_flows(&h), (unsigned long long)sum_pkts,
				(unsigned long long)st.sent, (unsigned long long)st.dropped,
				(unsigned long long)sf.sent, (unsigned long long)sf.dropped,
				(unsigned long long)sum_frames,
				(double)sum_read_ns / 1e6 / (double)o->summary_every);
			sum_pkts = sum_frames = sum_read_ns = 0;
		}
		if (o->max_ticks > 0 && (uint64_t)tick >= o->max_ticks)
			break;
	}
	if (stop_signal)
		kl_notify_stopping();
	if (stop_signal)
		kl_info("signal %d: stopping after %llu ticks", (int)stop_signal,
			(unsigned long long)ticks);
	kl_collector_free(&col);
	kl_prom_free(&prom);
out_harvest:
	kl_harvest_free(&h);
out_links:
	kl_stream_tx_close(lt.tx);
	kl_stream_tx_close(lf.tx);
out_maps:
	if (trace != NULL)
		kl_trace_close(trace);
	kl_smaps_close(&maps);
	kl_audit_close(audit);
	return rc;
}
