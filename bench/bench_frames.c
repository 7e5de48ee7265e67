/* SPDX-License-Identifier: MPL-2.0 */
/*
 * bench_frames: TELEMETRY records per second from a sensor to a receiver
 * process over nng ipc:// (kl_stream_* on both ends, the receiver decoding
 * every frame with kl_telem_decode), for frames of 1 to 100k records.
 * The sender waits for the receiver's acknowledgement (a pipe) after each
 * frame, as a sensor sends one frame per tick; 1 record per frame is what
 * sending one message per source would cost. The receiver is forked
 * before any nng call (nng is not fork-safe).
 *
 *   bench_frames [--seconds S]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/frames.h"
#include "ipc/stream.h"

#define S 1000000000ull

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static void receiver(const char *path, int ack)
{
	struct kl_stream_opts o = { .path = path, .self = KL_ROLE_DECIDER,
				    .peer_role = KL_ROLE_SENSOR, .gid = (gid_t)-1,
				    .allowed_gid = (gid_t)-1 };
	struct kl_stream_rx *r;
	char err[256];

	if (kl_stream_listen(&r, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "receiver: %s\n", err);
		_exit(1);
	}
	for (;;) {
		struct kl_stream_msg m;
		struct kl_telem_view v;
		uint32_t n;
		if (kl_stream_recv(r, &m, -1) != 1)
			_exit(0);
		n = kl_telem_decode(m.msg.payload, m.msg.payload_len, &v, err, sizeof(err)) == 0
			    ? v.h.n_records
			    : UINT32_MAX;
		kl_stream_msg_done(&m);
		if (write(ack, &n, sizeof(n)) != sizeof(n))
			_exit(0);
	}
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 1, 10, 100, 1000, 10000, 100000, 600000 };
	double seconds = 1.0;
	char dir[64], path[128], err[256];
	int p[2];

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: bench_frames [--seconds S]\n");
		return 2;
	}
	kl_log_init("bench_frames", KL_LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/klh5-frames.XXXXXX");
	if (mkdtemp(dir) == NULL || pipe(p) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/telemetry.sock", dir);
	pid_t pid = fork(); /* before any nng call */
	if (pid == 0) {
		close(p[0]);
		receiver(path, p[1]);
	}
	close(p[1]);
	struct kl_stream_tx *tx;
	if (kl_stream_dial(&tx, path, KL_ROLE_SENSOR, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_frames: %s\n", err);
		return 1;
	}

	printf("TELEMETRY frames sensor -> receiver process over nng ipc://, one frame in flight\n"
	       "(sent, received, decoded, acknowledged), %.1f s per row; %d-byte records.\n\n",
	       seconds, KL_TELEM_REC_LEN);
	printf("| records per frame | frame bytes | frames/s | us per frame | records/s | MB/s |\n");
	printf("|---:|---:|---:|---:|---:|---:|\n");
	struct kl_frame f = { 0 };
	int rc = 0;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct kl_telem_hdr h;
		memset(&h, 0, sizeof(h));
		h.n_totals = KL_T_MAX;
		if (kl_frame_begin_telem(&f, 1, &h) < 0)
			return 1;
		for (uint32_t i = 0; i < sizes[s]; i++) {
			struct kl_src_rate r;
			memset(&r, 0, sizeof(r));
			r.family = 4;
			memcpy(r.addr, &i, 4);
			r.r[KL_R_PPS] = i;
			kl_frame_add_src(&f, &r);
		}
		kl_frame_end(&f);
		uint64_t frames = 0, t0 = mono(), deadline = t0 + (uint64_t)(seconds * 1e9);
		bool warm = false;
		while (mono() < deadline || frames < 5) {
			uint32_t got;
			int tries = 0;
			while (kl_stream_send(tx, f.buf, f.len) != 0 && tries++ < 300) {
				struct timespec ts = { 0, 10000000 };
				nanosleep(&ts, NULL);
			}
			if (read(p[0], &got, sizeof(got)) != sizeof(got) || got != sizes[s]) {
				fprintf(stderr, "bench_frames: receiver got %u, sent %u\n", got, sizes[s]);
				rc = 1;
				break;
			}
			if (!warm) { /* the first frame waited for the connection */
				warm = true;
				t0 = mono();
				deadline = t0 + (uint64_t)(seconds * 1e9);
				continue;
			}
			frames++;
		}
		if (rc)
			break;
		double el = (double)(mono() - t0) / 1e9;
		printf("| %u | %zu | %.0f | %.0f | %.0f | %.1f |\n", sizes[s], f.len,
		       (double)frames / el, el * 1e6 / (double)frames,
		       (double)frames * sizes[s] / el, (double)frames * (double)f.len / el / 1048576.0);
		fflush(stdout);
	}
	kl_frame_free(&f);
	kl_stream_tx_close(tx);
	close(p[0]);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(dir);
	return rc;
}
