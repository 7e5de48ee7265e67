/* SPDX-License-Identifier: MPL-2.0 */
/*
 * common/audit: the chain, rotation, signatures, torn-line recovery, a full
 * disk and an unwritable directory (never fatal, nothing lost), and every
 * kind of tampering an auditor must catch, each named by file and line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/audit.h"
#include "common/log.h"
#include "ctl/audit.h"
#include "decider/audit.h"

static char tmp[64];

static const char *P(const char *name)
{
	static char buf[8][256];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/kl-audit-test.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct kl_audit *open_log(const char *dir, uint64_t rotate, unsigned every)
{
	struct kl_audit_opts o = {
		.dir = dir, .key = P("key"), .proc = "decider", .rotate_bytes = rotate,
		.checkpoint_every = every, .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = "",
		.retry_ns = 1,
	};
	char err[512] = "";
	struct kl_audit *a = kl_audit_open(&o, err, sizeof(err));
	if (!a)
		fail_msg("kl_audit_open: %s", err);
	return a;
}

static void write_records(struct kl_audit *a, int n)
{
	for (int i = 0; i < n; i++) {
		char subj[32], d[96];
		snprintf(subj, sizeof(subj), "198.18.0.%d", i % 250);
		snprintf(d, sizeof(d), "{\"i\":%d,\"pps\":%d.5}", i, 1000 + i);
		kl_audit_record(a, "decision", subj, d, "ok");
	}
}

static int pubkey(uint8_t pk[KL_AUDIT_PK_LEN])
{
	char err[256];
	char path[300];
	snprintf(path, sizeof(path), "%s.pub", P("key"));
	return kl_audit_read_pub(path, pk, err, sizeof(err));
}

static int verify(const char *dir, char *err, size_t len)
{
	uint8_t pk[1][KL_AUDIT_PK_LEN];
	assert_int_equal(pubkey(pk[0]), 0);
	err[0] = '\0';
	return kl_audit_verify_dir(dir, (const uint8_t(*)[KL_AUDIT_PK_LEN])pk, 1, NULL, err, len);
}

/* ---- file helpers: a file as an array of lines ---- */

struct lines {
	char *v[4096];
	size_t n;
	bool trailing_nl;
};

static void lines_read(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	memset(l, 0, sizeof(*l));
	char *line = NULL;
	size_t cap = 0;
	ssize_t r;
	l->trailing_nl = true;
	while ((r = getline(&line, &cap, f)) > 0) {
		if (line[r - 1] == '\n')
			line[r - 1] = '\0';
		else
			l->trailing_nl = false;
		assert_true(l->n < 4096);
		l->v[l->n++] = strdup(line);
	}
	free(line);
	fclose(f);
}

static void lines_write(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%s\n", l->v[i]);
	fclose(f);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static bool has_sig(const char *line)
{
	return strstr(line, ",\"sig\":\"") != NULL;
}

/* Rewrite one line's prev to `head` and its hash; `head` becomes its hash. */
static void rechain_line(char **linep, uint8_t head[KL_AUDIT_HASH_LEN])
{
	char *line = *linep;
	char hex[KL_AUDIT_HASH_HEX + 1];
	char *p = strstr(line, ",\"prev\":\"");
	assert_non_null(p);
	kl_audit_hex(head, KL_AUDIT_HASH_LEN, hex);
	memcpy(p + 9, hex, KL_AUDIT_HASH_HEX);
	char *h = strstr(line, ",\"hash\":\"");
	assert_non_null(h);
	crypto_generichash(head, KL_AUDIT_HASH_LEN, (uint8_t *)line, (size_t)(h - line), NULL, 0);
	kl_audit_hex(head, KL_AUDIT_HASH_LEN, hex);
	memcpy(h + 9, hex, KL_AUDIT_HASH_HEX);
}

/* The attacker who knows the format: recompute every hash from (file,
 * line) on, across the later files. */
static void rechain_from(const char *dir, int nfiles, int file, size_t line)
{
	uint8_t head[KL_AUDIT_HASH_LEN] = { 0 };
	for (int f = 1; f <= nfiles; f++) {
		char path[300];
		snprintf(path, sizeof(path), "%s/audit-%06d.jsonl", dir, f);
		struct lines l;
		lines_read(path, &l);
		for (size_t i = 0; i < l.n; i++) {
			if (f > file || (f == file && i + 1 >= line)) {
				rechain_line(&l.v[i], head);
			} else {
				char *h = strstr(l.v[i], ",\"hash\":\"");
				kl_audit_unhex(h + 9, KL_AUDIT_HASH_HEX, head);
			}
		}
		lines_write(path, &l);
		lines_free(&l);
	}
}

static int count_files(const char *dir)
{
	char **names;
	size_t n;
	unsigned first;
	char err[256];
	assert_int_equal(kl_audit_list(dir, &names, &n, &first, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return (int)n;
}

/* ---- the chain ---- */

static void test_chain_verifies(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("log"), 0, 0);
	write_records(a, 50);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.records, 51); /* audit_start + 50 */
	kl_audit_close(a);
	char err[512];
	assert_int_equal(verify(P("log"), err, sizeof(err)), 0);

	/* each record's prev is the hash of the one before: check it here
	 * independently of the verifier */
	struct lines l;
	lines_read(P("log/audit-000001.jsonl"), &l);
	assert_int_equal(l.n, 52);
	assert_non_null(strstr(l.v[0], "\"event\":\"audit_start\""));
	assert_non_null(strstr(l.v[0], "\"seq\":1,\"prev\":\"0000000000"));
	assert_true(has_sig(l.v[0]));
	assert_false(has_sig(l.v[1]));
	assert_non_null(strstr(l.v[51], "\"event\":\"audit_stop\""));
	for (size_t i = 1; i < l.n; i++) {
		const char *h = strstr(l.v[i - 1], ",\"hash\":\"") + 9;
		const char *p = strstr(l.v[i], ",\"prev\":\"") + 9;
		assert_memory_equal(h, p, KL_AUDIT_HASH_HEX);
	}
	/* fields the issue asks for */
	assert_non_null(strstr(l.v[1], "\"proc\":\"decider\""));
	assert_non_null(strstr(l.v[1], "\"subject\":\"198.18.0.0\""));
	assert_non_null(strstr(l.v[1], "\"mono_ns\":"));
	assert_non_null(strstr(l.v[1], "\"details\":{\"i\":0,\"pps\":1000.5}"));
	lines_free(&l);

	/* a restart continues the same chain in the same file */
	a = open_log(P("log"), 0, 0);
	write_records(a, 3);
	kl_audit_close(a);
	assert_int_equal(verify(P("log"), err, sizeof(err)), 0);
	assert_int_equal(count_files(P("log")), 1);

	/* the key is private, the .pub is for everyone */
	struct stat sk, sp;
	assert_int_equal(stat(P("key"), &sk), 0);
	assert_int_equal(sk.st_mode & 0777, 0600);
	assert_int_equal(stat(P("key.pub"), &sp), 0);
	assert_int_equal(sp.st_mode & 0777, 0644);
	assert_int_equal(stat(P("log/audit.pub"), &sp), 0);
}

static void test_checkpoints_every_n(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("cp"), 0, 10);
	write_records(a, 35);
	kl_audit_close(a);
	struct lines l;
	lines_read(P("cp/audit-000001.jsonl"), &l);
	size_t unsigned_run = 0, max_run = 0, cps = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (has_sig(l.v[i])) {
			unsigned_run = 0;
			cps += strstr(l.v[i], "\"event\":\"checkpoint\"") != NULL;
		} else if (++unsigned_run > max_run) {
			max_run = unsigned_run;
		}
	}
	assert_int_equal(max_run, 10);
	assert_int_equal(cps, 3);
	lines_free(&l);
	char err[512];
	assert_int_equal(verify(P("cp"), err, sizeof(err)), 0);
}

static void test_wrong_key_refused(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("wk"), 0, 0);
	write_records(a, 5);
	kl_audit_close(a);
	uint8_t other[1][KL_AUDIT_PK_LEN], sk[64];
	crypto_sign_keypair(other[0], sk);
	char err[512];
	assert_int_equal(kl_audit_verify_dir(P("wk"), (const uint8_t(*)[KL_AUDIT_PK_LEN])other, 1,
					     NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "audit-000001.jsonl line 1"));
	assert_non_null(strstr(err, "not among the public keys"));
}

static void test_key_readable_by_others_refused(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("kr"), 0, 0);
	kl_audit_close(a);
	assert_int_equal(chmod(P("key"), 0644), 0);
	struct kl_audit_opts o = { .dir = P("kr"), .key = P("key"), .proc = "decider",
				   .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = "" };
	char err[512];
	assert_null(kl_audit_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "readable by others"));
}

static void test_rotation_spans_files(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("rot"), 4096, 0);
	write_records(a, 120);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	kl_audit_close(a);
	assert_true(st.rotations >= 3);
	int n = count_files(P("rot"));
	assert_int_equal(n, (int)st.rotations + 1);
	char err[512];
	assert_int_equal(verify(P("rot"), err, sizeof(err)), 0);
	for (int f = 1; f < n; f++) {
		char p1[64], p2[64];
		struct lines l1, l2;
		snprintf(p1, sizeof(p1), "rot/audit-%06d.jsonl", f);
		snprintf(p2, sizeof(p2), "rot/audit-%06d.jsonl", f + 1);
		lines_read(P(p1), &l1);
		lines_read(P(p2), &l2);
		struct stat sb;
		assert_int_equal(stat(P(p1), &sb), 0);
		assert_true(sb.st_size <= 4096 + 1024);
		/* the last record of a file is its signed rotate checkpoint,
		 * and the next file's first record carries its hash */
		assert_non_null(strstr(l1.v[l1.n - 1], "\"event\":\"rotate\""));
		assert_true(has_sig(l1.v[l1.n - 1]));
		assert_memory_equal(strstr(l1.v[l1.n - 1], ",\"hash\":\"") + 9,
				    strstr(l2.v[0], ",\"prev\":\"") + 9, KL_AUDIT_HASH_HEX);
		lines_free(&l1);
		lines_free(&l2);
	}
}

static void test_torn_line_recovered(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("torn"), 0, 0);
	write_records(a, 10);
	kl_audit_close(a);
	/* a crash mid-write */
	FILE *f = fopen(P("torn/audit-000001.jsonl"), "a");
	fputs("{\"time\":\"2026-12-07T04:00:00", f);
	fclose(f);
	char err[512];
	assert_int_equal(verify(P("torn"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "audit-000001.jsonl line 13"));
	assert_non_null(strstr(err, "torn"));

	a = open_log(P("torn"), 0, 0);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.torn, 1);
	write_records(a, 2);
	kl_audit_close(a);
	assert_int_equal(verify(P("torn"), err, sizeof(err)), 0);

	struct lines l;
	lines_read(P("torn/audit-000001.jsonl"), &l);
	/* nothing before it lost, the fragment kept, then the record saying so */
	assert_int_equal(l.n, 12 + 1 + 1 + 1 + 2 + 1);
	assert_string_equal(l.v[12], "{\"time\":\"2026-12-07T04:00:00");
	assert_non_null(strstr(l.v[13], "\"event\":\"torn_line\""));
	assert_non_null(strstr(l.v[13], "\"line\":13"));
	assert_true(has_sig(l.v[13]));
	lines_free(&l);

	/* a garbage line without a torn_line record after it is an error */
	lines_read(P("torn/audit-000001.jsonl"), &l);
	free(l.v[5]);
	l.v[5] = strdup("garbage");
	lines_write(P("torn/audit-000001.jsonl"), &l);
	lines_free(&l);
	assert_int_equal(verify(P("torn"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "audit-000001.jsonl line 6"));
}

/* A newest file with nothing whole in it (a crash, or a full disk, right
 * after a rotation opened it): the chain goes on from the file before, in
 * that file, and verifies. */
static void test_empty_newest_file_continues(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("en"), 4096, 0);
	write_records(a, 40);
	kl_audit_close(a);
	int n = count_files(P("en"));
	assert_true(n >= 2);
	char name[64];
	snprintf(name, sizeof(name), "en/audit-%06d.jsonl", n + 1);
	FILE *f = fopen(P(name), "w");
	assert_non_null(f);
	fclose(f);
	a = open_log(P("en"), 4096, 0);
	write_records(a, 2);
	kl_audit_close(a);
	char err[512];
	if (verify(P("en"), err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(count_files(P("en")), n + 1);

	/* and the same with only the torn start of its first record */
	snprintf(name, sizeof(name), "en/audit-%06d.jsonl", n + 2);
	f = fopen(P(name), "w");
	assert_non_null(f);
	fputs("{\"time\":\"2026-12", f);
	fclose(f);
	a = open_log(P("en"), 4096, 0);
	write_records(a, 2);
	kl_audit_close(a);
	if (verify(P("en"), err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(count_files(P("en")), n + 2);
}

static void test_unwritable_dir_not_fatal(void **state)
{
	(void)state;
	/* the directory's parent is a plain file: mkdir fails */
	FILE *f = fopen(P("blocker"), "w");
	fclose(f);
	struct kl_audit *a = open_log(P("blocker/audit"), 0, 0);
	assert_non_null(a);
	write_records(a, 20);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_true(st.write_errors > 0);
	assert_int_equal(st.records, 0);
	assert_true(st.queued_bytes > 0);
	/* the operator fixes it: everything waiting is written, in order */
	assert_int_equal(unlink(P("blocker")), 0);
	assert_int_equal(mkdir(P("blocker"), 0700), 0);
	kl_audit_flush(a);
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.records, 21);
	assert_int_equal(st.queued_bytes, 0);
	kl_audit_close(a);
	char err[512];
	assert_int_equal(verify(P("blocker/audit"), err, sizeof(err)), 0);
}

static void test_disk_full_not_fatal(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("full"), 0, 0);
	write_records(a, 5);
	struct stat sb;
	assert_int_equal(stat(P("full/audit-000001.jsonl"), &sb), 0);
	/* RLIMIT_FSIZE: writes past it fail (EFBIG) like a full disk */
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 300; /* room for less than two records */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	write_records(a, 10);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_true(st.write_errors > 0);
	assert_true(st.queued_bytes > 0);
	/* whatever got in ends in whole lines: no half record of ours */
	struct lines l;
	lines_read(P("full/audit-000001.jsonl"), &l);
	assert_true(l.trailing_nl);
	lines_free(&l);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	kl_audit_close(a);
	char err[512];
	assert_int_equal(verify(P("full"), err, sizeof(err)), 0);
	lines_read(P("full/audit-000001.jsonl"), &l);
	assert_int_equal(l.n, 1 + 15 + 1);
	lines_free(&l);
}

static void test_details_escaped(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("esc"), 0, 0);
	kl_audit_record(a, "odd", "a\"b\nc", "not json\n", "ok");
	kl_audit_record(a, "none", NULL, NULL, NULL);
	char longsub[700];
	memset(longsub, '"', sizeof(longsub) - 1); /* every byte needs an escape */
	longsub[sizeof(longsub) - 1] = '\0';
	kl_audit_record(a, "long", longsub, "{}", longsub);
	kl_audit_close(a);
	char err[512];
	assert_int_equal(verify(P("esc"), err, sizeof(err)), 0);
	struct lines l;
	lines_read(P("esc/audit-000001.jsonl"), &l);
	assert_int_equal(l.n, 5);
	assert_non_null(strstr(l.v[1], "\"subject\":\"a\\\"b\\u000ac\""));
	/* cut, but still a closed string: the line is JSON */
	assert_non_null(strstr(l.v[3], "\\\"\",\"details\":{}"));
	assert_non_null(strstr(l.v[1], "\"details\":{\"raw\":\"not json\\u000a\"}"));
	lines_free(&l);
}

static void test_journal_format(void **state)
{
	(void)state;
	struct kl_audit *a = open_log(P("jf"), 0, 0);
	kl_audit_record(a, "decision", "198.18.0.9", "{\"sev\":3}", "ok");
	kl_audit_close(a);
	struct lines l;
	lines_read(P("jf/audit-000001.jsonl"), &l);
	char buf[8192];
	size_t n = kl_audit_journal_fmt(l.v[1], strlen(l.v[1]), buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "KERNLOOM_EVENT=decision\n"));
	assert_non_null(strstr(buf, "KERNLOOM_SUBJECT=198.18.0.9\n"));
	assert_non_null(strstr(buf, "KERNLOOM_SEQ=2\n"));
	assert_non_null(strstr(buf, "KERNLOOM_PROC=decider\n"));
	assert_non_null(strstr(buf, "SYSLOG_IDENTIFIER=kl-decider\n"));
	assert_int_equal(kl_audit_journal_fmt("nope", 4, buf, sizeof(buf)), 0);
	lines_free(&l);
}

/* With a journald socket present, every record reaches it with its
 * KERNLOOM_* fields; without one, nothing is tried. */
static void test_journal_delivery(void **state)
{
	(void)state;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P("journal.sock"));
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct kl_audit_opts o = { .dir = P("jd"), .key = P("key"), .proc = "graphd",
				   .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = P("journal.sock") };
	char err[512];
	struct kl_audit *a = kl_audit_open(&o, err, sizeof(err));
	assert_non_null(a);
	kl_audit_record(a, "violation", "198.18.0.4", "{\"port\":22}", "block");
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.journal_sent, 2); /* audit_start, the violation */
	kl_audit_close(a);
	char buf[16384];
	ssize_t n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT); /* audit_start */
	assert_true(n > 0);
	n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "KERNLOOM_EVENT=violation\n"));
	assert_non_null(strstr(buf, "KERNLOOM_SUBJECT=198.18.0.4\n"));
	assert_non_null(strstr(buf, "KERNLOOM_SEQ=2\n"));
	assert_non_null(strstr(buf, "KERNLOOM_RESULT=block\n"));
	assert_non_null(strstr(buf, "PRIORITY=5\n"));
	close(s);

	/* no socket at the path: the trail is written all the same */
	o.dir = P("jd2");
	o.journal = P("absent.sock");
	a = kl_audit_open(&o, err, sizeof(err));
	kl_audit_record(a, "x", "", NULL, "ok");
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.journal_sent, 0);
	assert_int_equal(st.records, 2);
	kl_audit_close(a);
}

/* A journald slower than the daemon (its queue holds a few datagrams) is
 * waited for, and gets every record. */
struct slow_reader {
	int fd;
	int got;
};

static void *slow_read(void *arg)
{
	struct slow_reader *r = arg;
	char buf[16384];
	while (recv(r->fd, buf, sizeof(buf), 0) > 0) { /* ends at SO_RCVTIMEO */
		r->got++;
		usleep(300);
	}
	return NULL;
}

static int bound_dgram(const char *path, int rcv_timeout_s)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = { .tv_sec = rcv_timeout_s };
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return s;
}

static void test_journal_slow_reader(void **state)
{
	(void)state;
	struct slow_reader r = { .fd = bound_dgram(P("slow.sock"), 2) };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_read, &r), 0);
	struct kl_audit_opts o = { .dir = P("js"), .key = P("key"), .proc = "enforcer",
				   .uid = (uid_t)-1, .gid = (gid_t)-1, .journal = P("slow.sock") };
	char err[512];
	struct kl_audit *a = kl_audit_open(&o, err, sizeof(err));
	assert_non_null(a);
	write_records(a, 300);
	struct kl_audit_stats st;
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.journal_dropped, 0);
	assert_int_equal(st.records, 302); /* audit_start, 300, a checkpoint */
	assert_int_equal(st.journal_sent, st.records);
	kl_audit_close(a);
	pthread_join(th, NULL);
	assert_int_equal(r.got, 303); /* and audit_stop */
	close(r.fd);

	/* one that takes nothing at all: waited for once, then skipped for
	 * retry_ns, each record it misses counted; the files have them all */
	int dead = bound_dgram(P("dead.sock"), 1);
	o.dir = P("jd3");
	o.journal = P("dead.sock");
	o.retry_ns = 60ull * 1000000000ull;
	a = kl_audit_open(&o, err, sizeof(err));
	assert_non_null(a);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	write_records(a, 700);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	kl_audit_get_stats(a, &st);
	assert_int_equal(st.records, 703); /* audit_start, 700, two checkpoints */
	assert_true(st.journal_dropped > 0);
	assert_int_equal(st.journal_sent + st.journal_dropped, st.records);
	/* one wait of KL_AUDIT_JOURNAL_WAIT_MS, not one per record */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
	kl_audit_close(a);
	close(dead);
	assert_int_equal(verify(P("jd3"), err, sizeof(err)), 0);
}

/* klctl audit show --source: which subjects belong to an address. */
static void test_show_subject_match(void **state)
{
	(void)state;
	struct kl_addr q, n24, v6;
	assert_int_equal(kl_cidr_parse("198.18.0.1", &q, NULL, 0), 0);
	assert_int_equal(kl_cidr_parse("198.18.0.0/24", &n24, NULL, 0), 0);
	assert_int_equal(kl_cidr_parse("fd00:6b6c::/48", &v6, NULL, 0), 0);
	assert_true(ctl_audit_subject_matches("198.18.0.1", &q));
	assert_false(ctl_audit_subject_matches("198.18.0.10", &q));
	assert_true(ctl_audit_subject_matches("198.18.0.0/16", &q)); /* a CIDR holding it */
	assert_true(ctl_audit_subject_matches("198.18.0.77", &n24));
	assert_false(ctl_audit_subject_matches("198.18.1.77", &n24));
	assert_true(ctl_audit_subject_matches("10.0.0.1->198.18.0.1", &q)); /* edges: either end */
	assert_true(ctl_audit_subject_matches("198.18.0.1->10.0.0.1", &q));
	assert_true(ctl_audit_subject_matches("fd00:6b6c::5", &v6));
	assert_false(ctl_audit_subject_matches("fd00:6b6c::5", &q));
	assert_false(ctl_audit_subject_matches("", &q));
	assert_false(ctl_audit_subject_matches("not an address", &q));
}

/* The decider's receipts: one record per decision with its inputs, each
 * signed on its own. */
static void test_decider_receipts(void **state)
{
	(void)state;
	struct dec_engine_params p;
	memset(&p, 0, sizeof(p));
	p.trig[DEC_F_PPS] = 60;
	p.trig[DEC_F_SYN] = 25;
	p.at[DEC_LVL_SOFT] = 1;
	p.at[DEC_LVL_HARD] = 2;
	p.at[DEC_LVL_BLOCK] = 6;
	struct dec_change c[3];
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 3; i++) {
		c[i].addr = (struct kl_addr){ .family = 4, .prefixlen = 32,
					      .addr = { 198, 18, 0, (uint8_t)(10 + i) } };
		c[i].from = DEC_LVL_OBSERVE;
		c[i].to = c[i].action = DEC_LVL_SOFT;
		c[i].reason = DEC_R_SOFT_AT;
		c[i].strikes = 1;
		c[i].sev = 2.5;
		c[i].feat[0] = 3000;
		c[i].feat[1] = 2900;
	}
	struct dec_audit *da = dec_audit_new(open_log(P("rc"), 0, 0), "ssh-bastion");
	assert_non_null(da);
	dec_audit_tick(da, 7, &p, c, 3);
	dec_audit_record(da, "forgive", "198.18.0.10", "{\"operator_uid\":0}", "ok");
	dec_audit_tick(da, 8, &p, c, 2);
	dec_audit_sync(da);
	dec_audit_free(da);
	char err[512];
	assert_int_equal(verify(P("rc"), err, sizeof(err)), 0);
	struct lines l;
	lines_read(P("rc/audit-000001.jsonl"), &l);
	/* start, 3 receipts, forgive, 2 receipts, stop */
	assert_int_equal(l.n, 8);
	assert_non_null(strstr(l.v[1], "\"event\":\"decision\",\"subject\":\"198.18.0.10\""));
	assert_non_null(strstr(l.v[1], "\"features\":{\"pps\":3000.0,\"syn\":2900.0"));
	assert_non_null(strstr(l.v[1], "\"rule\":\"strikes>=soft_at\",\"severity\":2.500,\"strikes\":1"));
	assert_non_null(strstr(l.v[1], "\"profile\":\"ssh-bastion\""));
	assert_non_null(strstr(l.v[1], "\"soft_at\":1,\"hard_at\":2,\"block_at\":6"));
	assert_non_null(strstr(l.v[4], "\"event\":\"forgive\""));
	assert_non_null(strstr(l.v[6], "\"tick\":8,"));
	/* every receipt carries its own signature, by the decider's key, over
	 * every byte before it */
	uint8_t pk[KL_AUDIT_PK_LEN], sig[KL_AUDIT_SIG_LEN];
	assert_int_equal(pubkey(pk), 0);
	int receipts = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (!strstr(l.v[i], "\"event\":\"decision\""))
			continue;
		receipts++;
		const char *sg = strstr(l.v[i], ",\"sig\":\"");
		assert_non_null(sg);
		assert_int_equal(kl_audit_unhex(sg + 8, KL_AUDIT_SIG_HEX, sig), 0);
		assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)l.v[i],
							     (size_t)(sg - l.v[i]), pk),
				 0);
	}
	assert_int_equal(receipts, 5);
	assert_false(has_sig(l.v[4])); /* the forgive is covered by the next one */
	lines_free(&l);
}

/* ---- tampering: each caught, and named by file and line ---- */

/* A fresh 4-file trail in dir T (checkpoint every 8). */
static int make_trail(const char *dir)
{
	struct kl_audit *a = open_log(dir, 4096, 8);
	write_records(a, 100);
	kl_audit_close(a);
	int n = count_files(dir);
	assert_true(n >= 4);
	char err[512];
	assert_int_equal(verify(dir, err, sizeof(err)), 0);
	return n;
}

static void expect_bad(const char *dir, const char *where, const char *why)
{
	char err[512];
	assert_int_equal(verify(dir, err, sizeof(err)), -1);
	if (!strstr(err, where) || (why && !strstr(err, why)))
		fail_msg("expected \"%s\" (%s), got: %s", where, why ? why : "", err);
}

static void edit_line(const char *path, size_t line, const char *from, const char *to)
{
	struct lines l;
	lines_read(path, &l);
	char *s = l.v[line - 1], *p = strstr(s, from);
	assert_non_null(p);
	char *n = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
	memcpy(n, s, (size_t)(p - s));
	strcpy(n + (p - s), to);
	strcat(n, p + strlen(from));
	free(s);
	l.v[line - 1] = n;
	lines_write(path, &l);
	lines_free(&l);
}

static void test_tamper_edit_field(void **state)
{
	(void)state;
	make_trail(P("t"));
	edit_line(P("t/audit-000002.jsonl"), 5, "\"result\":\"ok\"", "\"result\":\"no\"");
	expect_bad(P("t"), "audit-000002.jsonl line 5", "does not match its hash");
}

static void test_tamper_delete_line(void **state)
{
	(void)state;
	make_trail(P("t"));
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	free(l.v[4]);
	memmove(&l.v[4], &l.v[5], (l.n - 5) * sizeof(char *));
	l.n--;
	lines_write(P("t/audit-000002.jsonl"), &l);
	lines_free(&l);
	expect_bad(P("t"), "audit-000002.jsonl line 5", "sequence gap");
}

static void test_tamper_insert_line(void **state)
{
	(void)state;
	make_trail(P("t"));
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	memmove(&l.v[5], &l.v[4], (l.n - 4) * sizeof(char *));
	l.v[4] = strdup(l.v[3]); /* a copy of a genuine record */
	l.n++;
	lines_write(P("t/audit-000002.jsonl"), &l);
	lines_free(&l);
	expect_bad(P("t"), "audit-000002.jsonl line 5", "sequence gap");
}

static void test_tamper_reorder(void **state)
{
	(void)state;
	make_trail(P("t"));
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	char *x = l.v[4];
	l.v[4] = l.v[5];
	l.v[5] = x;
	lines_write(P("t/audit-000002.jsonl"), &l);
	lines_free(&l);
	expect_bad(P("t"), "audit-000002.jsonl line 5", "sequence gap");
}

static void test_tamper_truncate(void **state)
{
	(void)state;
	make_trail(P("t"));
	struct stat sb;
	/* mid-line: a torn last line */
	assert_int_equal(stat(P("t/audit-000002.jsonl"), &sb), 0);
	assert_int_equal(truncate(P("t/audit-000002.jsonl"), sb.st_size / 2), 0);
	expect_bad(P("t"), "audit-000002.jsonl line", "torn");

	/* at a line boundary: the next file does not follow */
	teardown(NULL);
	setup(NULL);
	make_trail(P("t"));
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	l.n -= 3;
	lines_write(P("t/audit-000002.jsonl"), &l);
	l.n += 3;
	lines_free(&l);
	expect_bad(P("t"), "audit-000003.jsonl line 1", "sequence gap");
}

static void test_tamper_drop_middle_file(void **state)
{
	(void)state;
	int n = make_trail(P("t"));
	assert_int_equal(unlink(P("t/audit-000002.jsonl")), 0);
	expect_bad(P("t"), "audit-000002.jsonl is missing", NULL);
	/* and renumbered so that no number is missing */
	for (int f = 3; f <= n; f++) {
		char a[64], b[64];
		snprintf(a, sizeof(a), "t/audit-%06d.jsonl", f);
		snprintf(b, sizeof(b), "t/audit-%06d.jsonl", f - 1);
		assert_int_equal(rename(P(a), P(b)), 0);
	}
	expect_bad(P("t"), "audit-000002.jsonl line 1", "sequence gap");
}

static void test_tamper_swap_files(void **state)
{
	(void)state;
	make_trail(P("t"));
	assert_int_equal(rename(P("t/audit-000002.jsonl"), P("t/x")), 0);
	assert_int_equal(rename(P("t/audit-000003.jsonl"), P("t/audit-000002.jsonl")), 0);
	assert_int_equal(rename(P("t/x"), P("t/audit-000003.jsonl")), 0);
	expect_bad(P("t"), "audit-000002.jsonl line 1", "sequence gap");
}

static void test_tamper_replace_signature(void **state)
{
	(void)state;
	int n = make_trail(P("t"));
	/* a genuine signature from another record, hashes made to fit */
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	size_t s1 = SIZE_MAX, s2 = SIZE_MAX;
	for (size_t i = 0; i < l.n; i++)
		if (has_sig(l.v[i]))
			s1 == SIZE_MAX ? (s1 = i) : s2 == SIZE_MAX ? (s2 = i) : 0;
	assert_true(s2 != SIZE_MAX);
	memcpy(strstr(l.v[s1], ",\"sig\":\"") + 8, strstr(l.v[s2], ",\"sig\":\"") + 8,
	       KL_AUDIT_SIG_HEX);
	lines_write(P("t/audit-000002.jsonl"), &l);
	lines_free(&l);
	rechain_from(P("t"), n, 2, s1 + 1);
	char where[64];
	snprintf(where, sizeof(where), "audit-000002.jsonl line %zu", s1 + 1);
	expect_bad(P("t"), where, "bad signature");
}

static void test_tamper_edit_and_rechain(void **state)
{
	(void)state;
	int n = make_trail(P("t"));
	edit_line(P("t/audit-000002.jsonl"), 2, "\"result\":\"ok\"", "\"result\":\"no\"");
	rechain_from(P("t"), n, 2, 2);
	/* every hash fits now; the next signature does not */
	struct lines l;
	lines_read(P("t/audit-000002.jsonl"), &l);
	size_t next = 0;
	for (size_t i = 1; i < l.n && !next; i++)
		if (has_sig(l.v[i]))
			next = i + 1;
	lines_free(&l);
	assert_true(next > 2);
	char where[64];
	snprintf(where, sizeof(where), "audit-000002.jsonl line %zu", next);
	expect_bad(P("t"), where, "bad signature");
}

/* The attacker of the test above, who also strips every later signature
 * (and renames the records that must be signed): the unsigned run grows
 * past the checkpoint interval audit_start signed. */
static void test_tamper_strip_signatures(void **state)
{
	(void)state;
	int n = make_trail(P("t"));
	edit_line(P("t/audit-000002.jsonl"), 2, "\"result\":\"ok\"", "\"result\":\"no\"");
	for (int f = 2; f <= n; f++) {
		char path[64];
		snprintf(path, sizeof(path), "t/audit-%06d.jsonl", f);
		struct lines l;
		lines_read(P(path), &l);
		for (size_t i = 0; i < l.n; i++) {
			char *sig = strstr(l.v[i], ",\"sig\":\"");
			if (sig)
				memmove(sig, sig + 8 + KL_AUDIT_SIG_HEX + 1,
					strlen(sig + 8 + KL_AUDIT_SIG_HEX + 1) + 1);
			static const char *const ev[] = { "\"event\":\"checkpoint\"",
							   "\"event\":\"rotate\"",
							   "\"event\":\"audit_stop\"" };
			for (size_t k = 0; k < 3; k++) {
				char *e = strstr(l.v[i], ev[k]);
				if (e)
					memcpy(e + 9, "x", 1); /* "xheckpoint", "xotate", ... */
			}
		}
		lines_write(P(path), &l);
		lines_free(&l);
	}
	rechain_from(P("t"), n, 2, 1);
	/* file 1 ends signed; lines 1..8 of file 2 may go unsigned, not 9 */
	expect_bad(P("t"), "audit-000002.jsonl line 9", "without a signature");
}

int main(void)
{
	kl_log_init("test_audit", KL_LOG_ERROR + 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_every_n, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_readable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_spans_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_line_recovered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_newest_file_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_dir_not_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_not_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_details_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_slow_reader, setup, teardown),
		cmocka_unit_test(test_show_subject_match),
		cmocka_unit_test_setup_teardown(test_decider_receipts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_edit_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_delete_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_insert_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_reorder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_drop_middle_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_swap_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_replace_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_edit_and_rechain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_strip_signatures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
