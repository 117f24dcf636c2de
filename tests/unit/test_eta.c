/*
 * test_eta: fcgi-app/eta.c, the Retry-After estimate: the arithmetic
 * (bounds, a stalled queue, no measurement yet), the rate from
 * store_drain's sample, and the refresher on a real database: the first
 * answer is the unmeasured one, the next ones the queue's depth over its
 * drain rate, other queues' jobs not counted.  Group commit is not
 * started, so the depth is the refresher's own count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "eta.h"
#include "store.h"
#include "store-sqlite.h"
#include "tmpdir.h"

static void
test_estimate(void **state)
{
	(void)state;
	assert_int_equal(eta_estimate(100, -1), 1);	/* not measured */
	assert_int_equal(eta_estimate(0, 5), 1);	/* nothing ahead */
	assert_int_equal(eta_estimate(-1, 5), 1);	/* depth unknown */
	assert_int_equal(eta_estimate(1, 0), ETA_STALLED_S);
	assert_int_equal(eta_estimate(10, 2), 5);
	assert_int_equal(eta_estimate(11, 2), 6);	/* rounded up */
	assert_int_equal(eta_estimate(1, 1000), 1);	/* at least 1 s */
	assert_int_equal(eta_estimate(1000000, 10), ETA_MAX_S);
	assert_int_equal(eta_estimate(INT64_MAX, 1e-9), ETA_MAX_S);

	assert_true(eta_rate(0, 0, 5000) == 0);
	assert_true(eta_rate(20, 0, 10000) == 2);	/* 20 in 10 s */
	assert_true(eta_rate(3, 9900, 10000) == 3);	/* span >= 1 s */
	/* A full sample keeps its span: 10,000 a second is measurable. */
	assert_true(eta_rate(ETA_SAMPLE, 9900, 10000) == ETA_SAMPLE * 10);
	assert_true(eta_rate(ETA_SAMPLE, 10000, 10000) == ETA_SAMPLE * 1000);
}

/* n jobs of queue; finished ones finish at now - 10 s + i * 10 s / n. */
static void
jobs(struct store *s, const char *queue, int n, int finished, int64_t now)
{
	struct store_newjob j;
	char sql[256];
	int i;

	for (i = 0; i < n; i++) {
		memset(&j, 0, sizeof(j));
		j.queue = queue;
		j.max_attempts = 1;
		j.body = "x";
		j.body_len = 1;
		assert_int_equal(store_enqueue(s, &j, 1), 0);
		if (!finished)
			continue;
		snprintf(sql, sizeof(sql), "UPDATE jobs SET state = 'done', "
		    "finished_at = %lld WHERE id = '%s'",
		    (long long)(now - 10000 + (int64_t)i * 10000 / n), j.id);
		assert_int_equal(sqlite3_exec(store_db(s), sql, NULL, NULL,
		    NULL), SQLITE_OK);
	}
}

/* eta_seconds(queue, ahead) until it answers other than 1 (5 s). */
static int
measured(const char *queue, int64_t ahead)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i, v = 1;

	for (i = 0; i < 250 && (v = eta_seconds(queue, ahead)) == 1; i++)
		nanosleep(&ts, NULL);
	return v;
}

static void
test_refresher(void **state)
{
	char dir[] = "/tmp/test_eta.XXXXXX", path[64], err[256];
	struct store_opts o = { 0 };
	struct store *s;
	int64_t now = store_now(), span;
	int v;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q.db", dir);
	assert_non_null(s = store_open(path, &o, err, sizeof(err)));
	/* q: 20 finished over the last 10 s (2/s), 10 waiting; busy: 500
	 * finished (not q's), none waiting. */
	jobs(s, "q", 20, 1, now);
	jobs(s, "q", 10, 0, now);
	jobs(s, "busy", 500, 1, now);
	jobs(s, "stalled", 3, 0, now);

	assert_int_equal(eta_seconds("q", -1), 1);	/* no refresher */
	assert_int_equal(eta_start(path, &o, err, sizeof(err)), 0);
	/* 10 waiting at 2 jobs/s: 5 s.  The window reaches from the first
	 * finish (10 s before now) to the measurement, a little more than
	 * 10 s as the test runs (more on a loaded machine): the rate is 20
	 * over that span, the estimate 10 / rate, rounded up. */
	v = measured("q", -1);
	span = store_now() - now + 10000;
	assert_in_range(v, 5, (span + 1999) / 2000);
	assert_int_equal(eta_seconds("q", 1), 1);
	assert_in_range(eta_seconds("q", 100), 50, (span + 199) / 200 + 1);
	/* Jobs wait, none finished within the window. */
	assert_int_equal(measured("stalled", -1), ETA_STALLED_S);
	/* 500 finished in 10 s; nothing waits: 1000 ahead take 20 s. */
	v = measured("busy", 1000);
	span = store_now() - now + 10000;
	assert_in_range(v, 20, (span + 499) / 500 + 1);
	assert_int_equal(eta_seconds("busy", -1), 1);
	eta_stop();
	assert_int_equal(eta_seconds("q", -1), 1);	/* stopped */
	store_close(s);
	assert_int_equal(tmpdir_remove(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_refresher),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
