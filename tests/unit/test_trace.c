/* SPDX-License-Identifier: MPL-2.0 */
/* Trace files: round trip, torn tails, corruption, append after a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/trace.h"
#include "ipc/frames.h"
#include "ipc/msg.h"
#include "ipc/trace.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/kl-test-trace.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.trace", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A wire message of `plen` payload bytes whose content encodes n. */
static size_t make_msg(uint8_t *buf, uint64_t n, size_t plen)
{
	struct kl_msg_hdr h = { .magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION,
				.type = KL_MSG_FLOWS, .payload_len = (uint32_t)plen, .seq = n,
				.tick = n };
	kl_msg_hdr_encode(&h, buf);
	for (size_t i = 0; i < plen; i++)
		buf[KL_MSG_HDR_LEN + i] = (uint8_t)(n + i);
	return KL_MSG_HDR_LEN + plen;
}

static void write_n(const char *path, uint64_t from, uint64_t to)
{
	struct kl_trace_writer *w;
	uint8_t buf[512];
	char err[256], note[256];

	assert_int_equal(kl_trace_open(&w, path, note, sizeof(note), err, sizeof(err)), 0);
	for (uint64_t n = from; n < to; n++) {
		size_t len = make_msg(buf, n, (size_t)(n * 7 % 200));
		assert_int_equal(kl_trace_append(w, buf, len, err, sizeof(err)), 0);
	}
	assert_int_equal(kl_trace_sync(w, err, sizeof(err)), 0);
	assert_int_equal(kl_trace_records(w), to - from);
	kl_trace_close(w);
}

/* Read everything; returns the final rc and the count; checks contents. */
static int read_all(const char *path, uint64_t *count, char *err, size_t errlen)
{
	struct kl_trace_reader *r;
	const uint8_t *m;
	size_t len;
	int rc;

	*count = 0;
	assert_int_equal(kl_trace_open_read(&r, path, err, errlen), 0);
	while ((rc = kl_trace_next(r, &m, &len, err, errlen)) == KL_TRACE_REC) {
		uint8_t want[512];
		size_t wl = make_msg(want, *count, (size_t)(*count * 7 % 200));
		assert_int_equal(len, wl);
		assert_memory_equal(m, want, wl);
		(*count)++;
	}
	kl_trace_close_read(r);
	return rc;
}

static off_t fsize(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void test_round_trip_and_append(void **state)
{
	struct fx *f = *state;
	uint64_t n;
	char err[256];

	write_n(f->path, 0, 50);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_EOF);
	assert_int_equal(n, 50);
	/* Header: magic, version 2, flags 0. */
	uint8_t h[16];
	FILE *fp = fopen(f->path, "rb");
	assert_int_equal(fread(h, 1, 16, fp), 16);
	fclose(fp);
	assert_memory_equal(h, "KLTRACE1\2\0\0\0\0\0\0\0", 16);
	/* Appending to an existing trace continues it. */
	write_n(f->path, 50, 60);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_EOF);
	assert_int_equal(n, 60);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_torn_tails(void **state)
{
	struct fx *f = *state;
	uint64_t n;
	char err[256];

	write_n(f->path, 0, 10);
	off_t full = fsize(f->path);
	write_n(f->path, 10, 11);
	off_t with = fsize(f->path);
	/* Cut one byte short, in the middle of the body, inside the record header. */
	off_t cuts[] = { with - 1, with - 60, full + 4 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(truncate(f->path, cuts[i]), 0);
		int rc = read_all(f->path, &n, err, sizeof(err));
		assert_int_equal(rc, KL_TRACE_TORN);
		assert_int_equal(n, 10);
		assert_non_null(strstr(err, "torn last record"));
		assert_int_equal(truncate(f->path, full), 0);
		write_n(f->path, 10, 11);
		assert_int_equal(fsize(f->path), with);
	}
	/* A whole-length last record with a bad CRC (crash after the size
	 * grew but before the data hit the disk) is a torn tail too. */
	int fd = open(f->path, O_WRONLY);
	uint8_t z = 0xee;
	assert_int_equal(pwrite(fd, &z, 1, with - 1), 1);
	close(fd);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_TORN);
	assert_int_equal(n, 10);
	assert_non_null(strstr(err, "CRC"));

	/* The writer cuts the torn tail off, so what it appends is readable. */
	struct kl_trace_writer *w;
	char note[256];
	assert_int_equal(kl_trace_open(&w, f->path, note, sizeof(note), err, sizeof(err)), 0);
	assert_non_null(strstr(note, "torn tail"));
	uint8_t buf[512];
	size_t len = make_msg(buf, 10, 10 * 7 % 200);
	assert_int_equal(kl_trace_append(w, buf, len, err, sizeof(err)), 0);
	kl_trace_close(w);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_EOF);
	assert_int_equal(n, 11);
	assert_int_equal(fsize(f->path), with);
}

static void test_corruption_in_the_middle(void **state)
{
	struct fx *f = *state;
	uint64_t n;
	char err[256];

	write_n(f->path, 0, 10);
	/* Flip a byte in record 3's message. */
	size_t off = KL_TRACE_HDR_LEN;
	for (uint64_t i = 0; i < 3; i++)
		off += KL_TRACE_REC_HDR_LEN + KL_MSG_HDR_LEN + i * 7 % 200;
	int fd = open(f->path, O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off + 12), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off + 12), 1);
	close(fd);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_CORRUPT);
	assert_int_equal(n, 3);
	assert_non_null(strstr(err, "corrupt record"));
	/* An impossible length is corruption too. */
	write_n(f->path, 0, 0);
	fd = open(f->path, O_RDWR);
	uint8_t big[4] = { 0xff, 0xff, 0xff, 0x7f };
	assert_int_equal(pwrite(fd, big, 4, (off_t)off), 4);
	close(fd);
	assert_int_equal(read_all(f->path, &n, err, sizeof(err)), KL_TRACE_CORRUPT);
	assert_non_null(strstr(err, "length"));
	/* The writer does not "repair" that by cutting off six good records. */
	off_t before = fsize(f->path);
	struct kl_trace_writer *w;
	char note[256];
	assert_int_equal(kl_trace_open(&w, f->path, note, sizeof(note), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not appending"));
	assert_int_equal(fsize(f->path), before);
}

static void test_not_a_trace(void **state)
{
	struct fx *f = *state;
	struct kl_trace_reader *r;
	struct kl_trace_writer *w;
	char err[256], note[256];

	FILE *fp = fopen(f->path, "wb");
	fputs("{\"t\": 1.0, \"sources\": []}\n", fp);
	fclose(fp);
	assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a Kernloom trace"));
	/* Never append our records to someone else's file. */
	assert_int_equal(kl_trace_open(&w, f->path, note, sizeof(note), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a Kernloom trace"));

	fp = fopen(f->path, "wb");
	fwrite("KLTRACE1\3\0\0\0\0\0\0\0", 1, 16, fp);
	fclose(fp);
	assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "version 3"));
	/* A version 1 recording (one frame per tick, the old layout) is
	 * refused with what to do, never misread. */
	fp = fopen(f->path, "wb");
	fwrite("KLTRACE1\1\0\0\0\0\0\0\0", 1, 16, fp);
	fclose(fp);
	assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trace version 1, this build reads version 2"));
	assert_non_null(strstr(err, "record it again"));
	fp = fopen(f->path, "wb");
	fwrite("KLTRACE1", 1, 8, fp);
	fclose(fp);
	assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
}

/* kl-sensor opens its --record file as root, before its drop, maybe in a
 * directory its user can write: a symlink, FIFO or hard link planted there
 * is refused by name and never written through (common/safefile.h). */
static void test_record_never_follows(void **state)
{
	struct fx *f = *state;
	struct kl_trace_writer *w;
	struct kl_trace_reader *r;
	char err[512], note[256], canary[160];
	struct stat st;
	static const char *const kinds[] = { "a symlink", "a FIFO", "2 hard links" };

	snprintf(canary, sizeof(canary), "%s/canary", f->dir);
	FILE *fp = fopen(canary, "w");
	fputs("canary\n", fp);
	fclose(fp);
	for (int k = 0; k < 3; k++) {
		unlink(f->path);
		assert_int_equal(k == 0   ? symlink(canary, f->path)
				 : k == 1 ? mkfifo(f->path, 0666)
					  : link(canary, f->path),
				 0);
		alarm(10); /* a FIFO must not hang the open */
		assert_int_equal(kl_trace_open(&w, f->path, note, sizeof(note), err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, f->path));
		assert_non_null(strstr(err, kinds[k]));
		assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), -1);
		assert_non_null(strstr(err, kinds[k]));
		alarm(0);
		assert_int_equal(stat(canary, &st), 0);
		assert_int_equal(st.st_size, 7);
	}
	unlink(f->path);
	unlink(canary);
}

/* The stream entry point (what the fuzz target and the path opener share):
 * the same records from a buffer as from the file, messages named by the
 * given name, and an owned stream closed on a refused header too (LSan
 * would report the FILE otherwise). */
static void test_stream(void **state)
{
	struct fx *f = *state;
	struct kl_trace_reader *r;
	const uint8_t *m;
	size_t len;
	char err[256];
	char buf[16384];

	write_n(f->path, 0, 20);
	FILE *fp = fopen(f->path, "rb");
	size_t n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(n > 16 && n < sizeof(buf));

	FILE *mem = fmemopen(buf, n, "rb");
	assert_int_equal(kl_trace_open_stream(&r, mem, true, "mem", err, sizeof(err)), 0);
	uint64_t count = 0;
	int rc;
	while ((rc = kl_trace_next(r, &m, &len, err, sizeof(err))) == KL_TRACE_REC) {
		uint8_t want[512];
		size_t wl = make_msg(want, count, (size_t)(count * 7 % 200));
		assert_int_equal(len, wl);
		assert_memory_equal(m, want, wl);
		count++;
	}
	assert_int_equal(rc, KL_TRACE_EOF);
	assert_int_equal(count, 20);
	kl_trace_close_read(r);

	/* Cut inside the last record: torn, reported under the stream's name. */
	mem = fmemopen(buf, n - 3, "rb");
	assert_int_equal(kl_trace_open_stream(&r, mem, true, "mem", err, sizeof(err)), 0);
	while ((rc = kl_trace_next(r, &m, &len, err, sizeof(err))) == KL_TRACE_REC)
		;
	assert_int_equal(rc, KL_TRACE_TORN);
	assert_non_null(strstr(err, "mem: torn last record"));
	kl_trace_close_read(r);

	buf[7] = 'X';
	mem = fmemopen(buf, n, "rb");
	assert_int_equal(kl_trace_open_stream(&r, mem, true, "mem", err, sizeof(err)), -1);
	assert_null(r);
	assert_non_null(strstr(err, "mem: "));
	assert_non_null(strstr(err, "not a Kernloom trace"));
}

static void test_one_writer_and_live_reader(void **state)
{
	struct fx *f = *state;
	struct kl_trace_writer *w, *w2;
	struct kl_trace_reader *r;
	const uint8_t *m;
	size_t len;
	uint8_t buf[512];
	char err[256], note[256];

	assert_int_equal(kl_trace_open(&w, f->path, note, sizeof(note), err, sizeof(err)), 0);
	assert_int_equal(kl_trace_open(&w2, f->path, note, sizeof(note), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another process"));
	len = make_msg(buf, 0, 0);
	assert_int_equal(kl_trace_append(w, buf, len, err, sizeof(err)), 0);
	/* A reader opened while the writer is live sees the whole records. */
	assert_int_equal(kl_trace_open_read(&r, f->path, err, sizeof(err)), 0);
	assert_int_equal(kl_trace_next(r, &m, &len, err, sizeof(err)), KL_TRACE_REC);
	assert_int_equal(kl_trace_next(r, &m, &len, err, sizeof(err)), KL_TRACE_EOF);
	kl_trace_close_read(r);
	/* Refuses what cannot be a message. */
	assert_int_equal(kl_trace_append(w, buf, 5, err, sizeof(err)), -1);
	kl_trace_close(w);
}

static void test_numbers(void **state)
{
	char b[64];
	(void)state;

	assert_string_equal(ctl_trace_num(200, false, b, sizeof(b)), "200");
	assert_string_equal(ctl_trace_num(200, true, b, sizeof(b)), "200.0");
	assert_string_equal(ctl_trace_num(33.333333, false, b, sizeof(b)), "33.333");
	assert_string_equal(ctl_trace_num(12.5, true, b, sizeof(b)), "12.5");
	assert_string_equal(ctl_trace_num(0, false, b, sizeof(b)), "0");
	assert_string_equal(ctl_trace_num(0, true, b, sizeof(b)), "0.0");
	assert_string_equal(ctl_trace_num(1e6, false, b, sizeof(b)), "1000000");
	assert_string_equal(ctl_trace_num(19998.7504, false, b, sizeof(b)), "19998.75");
	assert_string_equal(ctl_trace_num(0.0001, false, b, sizeof(b)), "0");
	assert_string_equal(ctl_trace_num(-0.0001, true, b, sizeof(b)), "0.0");
}

/* Build one tick's TELEMETRY (two sources, unsorted) and FLOWS frames. */
static void feed_tick(struct ctl_tick_printer *p, uint64_t tick, uint64_t t_ns, bool flows)
{
	struct kl_frame f = { 0 };
	struct kl_telem_hdr h;
	struct kl_src_rate r;
	char err[256];

	memset(&h, 0, sizeof(h));
	h.tick = tick;
	h.t_ns = t_ns;
	h.elapsed_ns = 1000000000;
	h.n_totals = KL_T_MAX;
	h.totals[KL_T_PKTS] = 300;
	h.totals[KL_T_SRC_UNADMITTED] = tick * 1000;
	assert_int_equal(kl_frame_begin_telem(&f, tick, &h), 0);
	memset(&r, 0, sizeof(r));
	r.family = 6;
	r.addr[0] = 0xfd;
	r.addr[1] = 0x00;
	r.addr[2] = 0x6b;
	r.addr[3] = 0x6c;
	r.addr[15] = 1;
	r.r[KL_R_PPS] = 50;
	r.r[KL_R_BPS] = 4000;
	kl_frame_add_src(&f, &r);
	memset(&r, 0, sizeof(r));
	r.family = 4;
	r.addr[0] = 203;
	r.addr[2] = 113;
	r.addr[3] = 7;
	r.r[KL_R_PPS] = 900;
	r.r[KL_R_BPS] = 72000;
	r.r[KL_R_SYN] = 850;
	r.r[KL_R_SCAN] = 1.0 / 3;
	r.r[KL_R_DROP_RL] = 12.25;
	r.r[KL_R_RST] = 99; /* not part of the JSON-lines format */
	kl_frame_add_src(&f, &r);
	kl_frame_end(&f);
	assert_int_equal(ctl_tick_printer_add(p, f.buf, f.len, err, sizeof(err)), 0);
	if (flows) {
		struct kl_flows_hdr fh = { .tick = tick, .t_ns = t_ns, .elapsed_ns = 1000000000 };
		struct kl_flow_rec fr = { .family = 4, .addr = { 203, 0, 113, 7 }, .port = 443,
					  .proto = 6, .pkts = 900, .bytes = 72000 };
		assert_int_equal(kl_frame_begin_flows(&f, tick, &fh), 0);
		kl_frame_add_flow(&f, &fr);
		fr.port = 0;
		fr.proto = 47;
		fr.pkts = 2;
		fr.bytes = 200;
		kl_frame_add_flow(&f, &fr);
		kl_frame_end(&f);
		assert_int_equal(ctl_tick_printer_add(p, f.buf, f.len, err, sizeof(err)), 0);
	}
	kl_frame_free(&f);
}

static void test_json_lines(void **state)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *m = open_memstream(&out, &outlen);
	struct ctl_tick_printer *p = ctl_tick_printer_new(m, true);
	char err[256];
	(void)state;

	feed_tick(p, 5, 1000000000000ull, true);
	feed_tick(p, 6, 1001000000000ull, false);
	feed_tick(p, 7, 1002500000000ull, true);
	/* Not a frame a trace may hold. */
	uint8_t hello[KL_MSG_HDR_LEN + KL_HELLO_LEN];
	struct kl_msg_hdr hh = { .magic = KL_MSG_MAGIC, .version = KL_MSG_VERSION,
				 .type = KL_MSG_HELLO, .payload_len = KL_HELLO_LEN };
	struct kl_hello he = { .role = KL_ROLE_SENSOR, .proto_version = KL_MSG_VERSION };
	kl_msg_hdr_encode(&hh, hello);
	kl_hello_encode(&he, hello + KL_MSG_HDR_LEN);
	assert_int_equal(ctl_tick_printer_add(p, hello, sizeof(hello), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HELLO"));
	assert_int_equal(ctl_tick_printer_finish(p), 3);
	ctl_tick_printer_free(p);
	fclose(m);
	const char *src = "\"sources\": [{\"ip\": \"203.0.113.7\", \"pps\": 900, \"bps\": 72000, "
			  "\"syn\": 850, \"scan\": 0.333, \"droprl\": 12.25}, {\"ip\": "
			  "\"fd00:6b6c::1\", \"pps\": 50, \"bps\": 4000, \"syn\": 0, \"scan\": 0, "
			  "\"droprl\": 0}]";
	const char *fl = "\"flows\": [{\"src\": \"203.0.113.7\", \"port\": 0, \"proto\": \"47\", "
			 "\"pkts\": 2, \"bytes\": 200}, {\"src\": \"203.0.113.7\", \"port\": 443, "
			 "\"proto\": \"tcp\", \"pkts\": 900, \"bytes\": 72000}]";
	char want[4096];
	/* new_sources: the spoofing signal, per tick */
	snprintf(want, sizeof(want),
		 "{\"t\": 0.0, \"new_sources\": 5000, %s, %s}\n{\"t\": 1.0, \"new_sources\": 6000, "
		 "%s}\n{\"t\": 2.5, \"new_sources\": 7000, %s, %s}\n",
		 src, fl, src, src, fl);
	assert_string_equal(out, want);
	free(out);

	/* An empty tick (nothing moved) is a line too. */
	m = open_memstream(&out, &outlen);
	p = ctl_tick_printer_new(m, true);
	struct kl_frame f = { 0 };
	struct kl_telem_hdr eh;
	memset(&eh, 0, sizeof(eh));
	eh.tick = 9;
	assert_int_equal(kl_frame_begin_telem(&f, 1, &eh), 0);
	kl_frame_end(&f);
	assert_int_equal(ctl_tick_printer_add(p, f.buf, f.len, err, sizeof(err)), 0);
	struct kl_flows_hdr efh = { .tick = 9 };
	assert_int_equal(kl_frame_begin_flows(&f, 1, &efh), 0);
	kl_frame_end(&f);
	assert_int_equal(ctl_tick_printer_add(p, f.buf, f.len, err, sizeof(err)), 0);
	kl_frame_free(&f);
	assert_int_equal(ctl_tick_printer_finish(p), 1);
	ctl_tick_printer_free(p);
	fclose(m);
	assert_string_equal(out, "{\"t\": 0.0, \"new_sources\": 0, \"sources\": [], \"flows\": []}\n");
	free(out);

	/* The table form names every rate. */
	m = open_memstream(&out, &outlen);
	p = ctl_tick_printer_new(m, false);
	feed_tick(p, 5, 1000000000000ull, true);
	ctl_tick_printer_finish(p);
	ctl_tick_printer_free(p);
	fclose(m);
	assert_non_null(strstr(out, "tick 5  t=0.000s  elapsed=1.000s  pkts=300"));
	assert_non_null(strstr(out, "new_sources=5000"));
	assert_non_null(strstr(out, "drop_edge"));
	assert_non_null(strstr(out, "FLOW SOURCE"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_and_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_in_the_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_writer_and_live_reader, setup, teardown),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_json_lines),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
