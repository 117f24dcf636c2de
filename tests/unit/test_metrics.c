/*
 * test_metrics: the shared counters (queue/metrics.c) and the exposition
 * writer (queue/expo.c).  Counters: several processes, each with threads,
 * adding at once to one file, summed exactly; a slot outlives its process
 * and is taken over, so sums never go back; queue names get one index
 * across processes; the shared counts' claim is exclusive.  Exposition:
 * families, labels escaped, histograms cumulated with _count = +Inf.
 * promtool checks a whole scrape in tests/e2e/metrics.sh.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "expo.h"
#include "gauges.h"
#include "metrics.h"
#include "store.h"
#include "tmpdir.h"

#define NPROC	4
#define NTHREAD	2
#define NADD	20000

static char	dir[64], db[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fcgiq-metrics.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(db, sizeof(db), "%s/q.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	metrics_close();
	return tmpdir_remove(dir);
}

static void *
adder(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < NADD; i++) {
		metrics_http(202);
		metrics_enqueued(i % 2 ? "mail" : "default", 1);
		metrics_intake(1500);		/* 1.5 ms */
	}
	return NULL;
}

/* A child that opens the file and adds from NTHREAD threads; it exits
 * without closing when keep is set (its slot stays taken by a dead pid). */
static pid_t
child(int keep)
{
	pthread_t t[NTHREAD];
	char err[256];
	pid_t pid;
	int i;

	if ((pid = fork()) != 0)
		return pid;
	if (metrics_open(db, 1, err, sizeof(err)) == -1) {
		fprintf(stderr, "child: %s\n", err);
		_exit(1);
	}
	for (i = 0; i < NTHREAD; i++)
		if (pthread_create(&t[i], NULL, adder, NULL) != 0)
			_exit(1);
	for (i = 0; i < NTHREAD; i++)
		pthread_join(t[i], NULL);
	if (!keep)
		metrics_close();
	_exit(0);
}

static void
wait_all(pid_t *pids, int n)
{
	int i, st;

	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

/* The index of name in a metrics_sum table, -1 when absent. */
static int
name_ix(char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], const char *name)
{
	int i;

	for (i = 0; i < METRICS_MAX_QUEUES; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

static uint64_t
http(const struct metrics_slot *s, int code)
{
	int i;

	for (i = 1; i < METRICS_NCODES; i++)
		if (metrics_codes[i] == code)
			return s->http[i];
	return s->http[0];
}

/* Several processes with several threads each: the sums are exact. */
static void
test_shared_sums(void **state)
{
	static struct metrics_slot sum;
	char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], err[256];
	pid_t pids[NPROC];
	uint64_t total = (uint64_t)NPROC * NTHREAD * NADD, cum = 0;
	int i, d, m;

	(void)state;
	/* No file yet: all zero, not an error. */
	assert_int_equal(metrics_sum(db, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(http(&sum, 202), 0);
	for (i = 0; i < NPROC; i++)
		pids[i] = child(i % 2);
	wait_all(pids, NPROC);
	assert_int_equal(metrics_sum(db, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(http(&sum, 202), total);
	d = name_ix(names, "default");
	m = name_ix(names, "mail");
	assert_true(d >= 0 && m >= 0 && d != m);
	assert_int_equal(name_ix(names, "default"), d);
	assert_int_equal(sum.q[d].enqueued, total / 2);
	assert_int_equal(sum.q[m].enqueued, total / 2);
	for (i = 0; i <= METRICS_NBUCKETS; i++)
		cum += sum.intake.b[i];
	assert_int_equal(cum, total);
	/* 1.5 ms is above 1 ms, within 2.5 ms: the third bucket. */
	assert_int_equal(sum.intake.b[2], total);
	assert_int_equal(sum.intake.sum, total * 1500);

	/* A new process takes over a slot: nothing goes back. */
	pids[0] = child(0);
	wait_all(pids, 1);
	assert_int_equal(metrics_sum(db, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(http(&sum, 202), total + NTHREAD * NADD);
	assert_int_equal(name_ix(names, "default"), d);
}

/* This process: counts made before metrics_open move into its slot;
 * codes outside the table count as "other"; unknown outcomes are ignored. */
static void
test_open_local(void **state)
{
	static struct metrics_slot sum;
	char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], err[256];
	int q;

	(void)state;
	metrics_http(404);
	metrics_http(299);
	assert_int_equal(metrics_open(db, 0, err, sizeof(err)), -1);
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	metrics_http(404);
	metrics_finished("default", METRICS_DONE, 20);
	metrics_finished("default", METRICS_CANCELLED, -1);
	metrics_finished("default", METRICS_NOUTCOMES, 1);
	metrics_started("default", 3000);
	assert_int_equal(metrics_sum(db, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(http(&sum, 404), 2);
	assert_int_equal(http(&sum, 0), 1);
	q = name_ix(names, "default");
	assert_true(q >= 0);
	assert_int_equal(sum.q[q].finished[METRICS_DONE], 1);
	assert_int_equal(sum.q[q].finished[METRICS_CANCELLED], 1);
	assert_int_equal(sum.q[q].run[METRICS_DONE].b[2], 1);	/* 0.02 s */
	assert_int_equal(sum.q[q].wait.b[6], 1);		/* 3 s */
	metrics_close();
	assert_true(metrics_slot_bytes() < 20 * 1024);
}

/* A file another fcgiq version left beside the database (an upgrade):
 * a reader refuses it, saying what to do; a process that creates the
 * file puts a new one in its place, the old one's inode left to those
 * that still map it. */
static void
test_open_other_layout(void **state)
{
	char path[160], err[256];
	struct stat st0, st1;
	FILE *f;
	int old;

	(void)state;
	(void)snprintf(path, sizeof(path), "%s-metrics", db);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs("an older layout", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	/* An old process's hold on it: its inode lives on, not reused. */
	assert_true((old = open(path, O_RDONLY)) != -1);
	assert_int_equal(fstat(old, &st0), 0);
	assert_int_equal(metrics_open(db, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another layout"));
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st1), 0);
	assert_true(st1.st_ino != st0.st_ino);
	assert_true(st1.st_size > st0.st_size);
	assert_int_equal(fstat(old, &st0), 0);
	assert_int_equal(st0.st_nlink, 0);	/* unlinked, still open */
	assert_int_equal(close(old), 0);
	metrics_http(200);
	metrics_close();
	assert_int_equal(metrics_open(db, 0, err, sizeof(err)), 0);
	metrics_close();
}

/* The shared counts without a base (PostgreSQL): one claimant at a time,
 * then not due again for a second (or 20 times the count's cost). */
static void
test_counts_claim(void **state)
{
	struct metrics_counts c, got;
	char err[256];
	int64_t now = 1000000;

	(void)state;
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	assert_int_equal(metrics_counts_get(&got), 0);
	assert_int_equal(metrics_counts_claim(now), 1);
	assert_int_equal(metrics_counts_claim(now), 0);	/* claimed */
	memset(&c, 0, sizeof(c));
	c.at_ms = now;
	c.cost_ms = 100;
	c.n[0][3] = 42;
	metrics_counts_put(&c);
	assert_int_equal(metrics_counts_get(&got), 1);
	assert_int_equal(got.n[0][3], 42);
	assert_int_equal(metrics_counts_claim(now + 1999), 0);	/* 20 x 100 */
	assert_int_equal(metrics_counts_claim(now + 2000), 1);
	metrics_counts_drop();
	assert_int_equal(metrics_counts_claim(now + 2000), 1);
	metrics_counts_drop();
	metrics_close();
}

/* With a base the counts are moved on in between: a count is due every
 * 10 s (or 100 times its cost), at once when marked stale (at most once a
 * second). */
static void
test_counts_claim_base(void **state)
{
	struct metrics_counts c;
	char err[256];
	int64_t now = 5000000;

	(void)state;
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	assert_int_equal(metrics_counts_claim(now), 1);
	memset(&c, 0, sizeof(c));
	c.at_ms = now;
	c.cost_ms = 20;
	c.has_base = 1;
	metrics_counts_put(&c);
	assert_int_equal(metrics_counts_claim(now + 9999), 0);
	assert_int_equal(metrics_counts_claim(now + 10000), 1);
	c.at_ms = now + 10000;
	c.cost_ms = 300;			/* 100 x 300 ms: 30 s */
	metrics_counts_put(&c);
	assert_int_equal(metrics_counts_claim(now + 39999), 0);
	metrics_counts_stale();
	assert_int_equal(metrics_counts_claim(now + 10999), 0);
	assert_int_equal(metrics_counts_claim(now + 11000), 1);
	c.at_ms = now + 11000;
	metrics_counts_put(&c);			/* not stale any more */
	assert_int_equal(metrics_counts_claim(now + 12000), 0);
	metrics_close();
}

/*
 * A count moved on by the counters: 10 queued and 2 retry counted, then
 * 5 enqueued, 4 started, 1 done, 1 failed (back to waiting), 1 dead, 1
 * cancelled: 10 waiting (the count's 2 retry kept), 1 running.  Counters
 * behind the base leave the count as it was and make it due.
 */
static void
test_counts_moved(void **state)
{
	static struct metrics_slot sum;
	struct metrics_counts c;
	struct expo_queue q[1];
	char err[256];
	int ix, k;

	(void)state;
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	ix = metrics_queue("moved");
	assert_true(ix >= 0);
	memset(&c, 0, sizeof(c));
	c.at_ms = 1;
	c.has_base = 1;
	c.n[ix][STORE_JOB_QUEUED] = 10;
	c.n[ix][STORE_JOB_RETRY] = 2;
	c.n[ix][STORE_JOB_RUNNING] = 1;
	c.n[ix][STORE_JOB_DONE] = 100;
	memset(&sum, 0, sizeof(sum));
	sum.q[ix].enqueued = 1005;
	sum.q[ix].wait.b[0] = 3;
	sum.q[ix].wait.b[METRICS_NBUCKETS] = 1;
	sum.q[ix].finished[METRICS_DONE] = 51;
	sum.q[ix].finished[METRICS_FAILED] = 1;
	sum.q[ix].finished[METRICS_DEAD] = 1;
	sum.q[ix].finished[METRICS_CANCELLED] = 1;
	c.base[ix][METRICS_B_ENQUEUED] = 1000;
	c.base[ix][METRICS_B_DONE] = 50;
	memset(q, 0, sizeof(q));
	q[0].name = "moved";
	gauges_from_counts(q, 1, &c, &sum);
	assert_int_equal(q[0].have_counts, 1);
	/* waiting 12 + 5 + 1 - 4 - 1 = 13: 2 retry, 11 queued */
	assert_int_equal(q[0].count[STORE_JOB_QUEUED], 11);
	assert_int_equal(q[0].count[STORE_JOB_RETRY], 2);
	/* running 1 + 4 - 1 - 1 - 1 */
	assert_int_equal(q[0].count[STORE_JOB_RUNNING], 2);
	assert_int_equal(q[0].count[STORE_JOB_DONE], 101);
	assert_int_equal(q[0].count[STORE_JOB_DEAD], 1);
	assert_int_equal(q[0].count[STORE_JOB_CANCELLED], 1);
	/* Without a sum: the count as it is. */
	gauges_from_counts(q, 1, &c, NULL);
	assert_int_equal(q[0].count[STORE_JOB_QUEUED], 10);
	/* More started than waiting: none below 0. */
	sum.q[ix].wait.b[0] = 100;
	gauges_from_counts(q, 1, &c, &sum);
	assert_int_equal(q[0].count[STORE_JOB_QUEUED], 0);
	assert_int_equal(q[0].count[STORE_JOB_RETRY], 0);
	/* Counters behind the base: the count, and a count due. */
	c.base[ix][METRICS_B_ENQUEUED] = 2000;
	c.at_ms = 5000000;
	c.cost_ms = 1;
	metrics_counts_put(&c);
	assert_int_equal(metrics_counts_claim(5000500), 0);
	gauges_from_counts(q, 1, &c, &sum);
	for (k = 0; k < EXPO_NSTATES; k++)
		assert_int_equal(q[0].count[k], c.n[ix][k]);
	assert_int_equal(metrics_counts_claim(5001000), 1);
	metrics_counts_drop();
	metrics_close();
}

static void
test_label_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(expo_label_value(&b, "a\"b\\c\nd"), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.data, "a\\\"b\\\\c\\nd");
	buf_free(&b);
}

/* 1 when line (a whole line) is in text. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	return 0;
}

static int
occurrences(const char *text, const char *s)
{
	int n = 0;

	while ((text = strstr(text, s)) != NULL) {
		n++;
		text += strlen(s);
	}
	return n;
}

static void
test_exposition(void **state)
{
	static struct metrics_slot sum;
	static char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME];
	struct expo_queue q[2];
	struct expo_input in;
	struct buf b;
	const char *t;
	int i;

	(void)state;
	memset(&sum, 0, sizeof(sum));
	memset(names, 0, sizeof(names));
	memset(q, 0, sizeof(q));
	strcpy(names[1], "mail");
	sum.q[1].enqueued = 7;
	sum.q[1].finished[METRICS_DEAD] = 2;
	sum.q[1].wait.b[0] = 3;
	sum.q[1].wait.b[5] = 1;
	sum.q[1].wait.b[METRICS_NBUCKETS] = 1;
	sum.q[1].wait.sum = 4500000;	/* 4.5 s */
	for (i = 1; i < METRICS_NCODES; i++)
		if (metrics_codes[i] == 503)
			sum.http[i] = 5;
	sum.http[0] = 1;
	q[0].name = "default";		/* counted by no process yet */
	q[0].have_counts = 1;
	q[0].count[0] = 10;
	q[0].have_head = 1;
	q[0].oldest_waiting_s = 1.5;
	q[1].name = "mail";		/* no counts read yet */
	memset(&in, 0, sizeof(in));
	in.sum = &sum;
	in.names = names;
	in.q = q;
	in.nq = 2;
	in.counts_age_s = 0.25;
	in.helper_up = 1;
	buf_init(&b, 0);
	assert_int_equal(expo_write(&b, &in), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	t = (const char *)b.data;
	assert_true(has_line(t, "# TYPE fcgiq_jobs gauge"));
	assert_true(has_line(t, "fcgiq_jobs{queue=\"default\",state=\"queued\"} 10"));
	assert_true(has_line(t, "fcgiq_jobs{queue=\"default\",state=\"cancelled\"} 0"));
	assert_null(strstr(t, "fcgiq_jobs{queue=\"mail\""));
	assert_true(has_line(t, "fcgiq_jobs_count_age_seconds 0.250000"));
	assert_true(has_line(t, "fcgiq_queue_oldest_waiting_seconds{queue=\"default\"} 1.500000"));
	assert_null(strstr(t, "fcgiq_queue_oldest_waiting_seconds{queue=\"mail\""));
	assert_true(has_line(t, "fcgiq_helper_up 1"));
	assert_true(has_line(t, "# TYPE fcgiq_http_requests_total counter"));
	assert_true(has_line(t, "fcgiq_http_requests_total{code=\"202\"} 0"));
	assert_true(has_line(t, "fcgiq_http_requests_total{code=\"503\"} 5"));
	assert_true(has_line(t, "fcgiq_http_requests_total{code=\"other\"} 1"));
	assert_null(strstr(t, "code=\"404\""));
	assert_true(has_line(t, "fcgiq_jobs_enqueued_total{queue=\"mail\"} 7"));
	assert_true(has_line(t, "fcgiq_jobs_enqueued_total{queue=\"default\"} 0"));
	assert_true(has_line(t, "fcgiq_jobs_finished_total{queue=\"mail\",outcome=\"dead\"} 2"));
	assert_true(has_line(t, "# TYPE fcgiq_job_queue_seconds histogram"));
	/* Cumulative: 3 at 0.005, 4 from 1 s, 5 at +Inf = _count. */
	assert_true(has_line(t, "fcgiq_job_queue_seconds_bucket{queue=\"mail\",le=\"0.005\"} 3"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_bucket{queue=\"mail\",le=\"0.5\"} 3"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_bucket{queue=\"mail\",le=\"1\"} 4"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_bucket{queue=\"mail\",le=\"3600\"} 4"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_bucket{queue=\"mail\",le=\"+Inf\"} 5"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_count{queue=\"mail\"} 5"));
	assert_true(has_line(t, "fcgiq_job_queue_seconds_sum{queue=\"mail\"} 4.500000"));
	assert_true(has_line(t, "fcgiq_job_duration_seconds_count{queue=\"default\",outcome=\"failed\"} 0"));
	assert_true(has_line(t, "fcgiq_intake_duration_seconds_bucket{le=\"0.0005\"} 0"));
	assert_true(has_line(t, "fcgiq_commit_batch_size_bucket{le=\"4096\"} 0"));
	assert_true(has_line(t, "fcgiq_commit_duration_seconds_count 0"));
	/* Each family's HELP and TYPE exactly once. */
	assert_int_equal(occurrences(t, "# TYPE fcgiq_jobs_finished_total "), 1);
	assert_int_equal(occurrences(t, "# HELP fcgiq_job_duration_seconds "),
	    1);
	assert_int_equal(occurrences(t, "# TYPE "), 15);
	buf_free(&b);

	/* Unknown helper and no counts: those samples are left out. */
	in.helper_up = -1;
	in.counts_age_s = -1;
	buf_init(&b, 0);
	assert_int_equal(expo_write(&b, &in), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	t = (const char *)b.data;
	assert_true(has_line(t, "# TYPE fcgiq_helper_up gauge"));
	assert_null(strstr(t, "\nfcgiq_helper_up "));
	assert_null(strstr(t, "\nfcgiq_jobs_count_age_seconds "));
	buf_free(&b);
}

/*
 * PostgreSQL: the file is the configuration's metrics_file, shared by the
 * processes of one installation (one configuration file, one database),
 * refused to another; without one, a process sums its own counts.
 */
static void
test_pg_file(void **state)
{
	static const char pg[] = "postgresql://fcgiq@/fcgiq?host=/x";
	struct metrics_slot sum;
	char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], err[512];
	char file[256];
	uint64_t before;
	pid_t pid;
	int st;

	(void)state;
	snprintf(file, sizeof(file), "%s/metrics", dir);
	/* A process of the installation counts in the file (forked first:
	 * a child takes the counts its parent made before along). */
	assert_int_equal(metrics_set_file(pg, file, "/etc/a.conf"), 0);
	if ((pid = fork()) == 0) {
		if (metrics_open(pg, 1, err, sizeof(err)) == -1)
			_exit(1);
		metrics_http(404);
		metrics_close();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* None set: counted here, summed from here. */
	assert_int_equal(metrics_set_file(pg, NULL, NULL), 0);
	assert_int_equal(metrics_open(pg, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no metrics_file"));
	assert_int_equal(metrics_sum(pg, &sum, names, err, sizeof(err)), 0);
	before = sum.http[2];
	metrics_http(202);
	assert_int_equal(metrics_sum(pg, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(sum.http[2], before + 1);
	assert_int_equal(metrics_set_file(pg, "metrics", "/etc/a.conf"), -1);
	/* Another process of it adds to the same sums. */
	assert_int_equal(metrics_set_file(pg, file, "/etc/a.conf"), 0);
	assert_int_equal(metrics_open(pg, 1, err, sizeof(err)), 0);
	metrics_http(404);
	assert_int_equal(metrics_sum(pg, &sum, names, err, sizeof(err)), 0);
	assert_int_equal(sum.http[9], 2);		/* 404 */
	assert_int_equal(sum.http[2], before + 1);	/* moved in */
	metrics_close();
	/* Another configuration, or another database, naming the same
	 * file: refused, to open and to sum. */
	assert_int_equal(metrics_set_file(pg, file, "/etc/b.conf"), 0);
	assert_int_equal(metrics_open(pg, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another installation (/etc/a.conf "));
	assert_int_equal(metrics_sum(pg, &sum, names, err, sizeof(err)), -1);
	assert_int_equal(metrics_set_file("dbname=other", file,
	    "/etc/a.conf"), 0);
	assert_int_equal(metrics_open("dbname=other", 1, err, sizeof(err)),
	    -1);
	/* A SQLite database's file is found by its path, never this. */
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	metrics_close();
	assert_int_equal(metrics_set_file(pg, NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_shared_sums),
		T(test_open_local),
		T(test_open_other_layout),
		T(test_counts_claim),
		T(test_counts_claim_base),
		T(test_counts_moved),
		T(test_label_escape),
		T(test_exposition),
		T(test_pg_file),
#undef T
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
