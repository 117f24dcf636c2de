/*
 * test_dashboard: the dashboard's pure parts and what it reads: the query
 * parameters (percent-decoding, bounds), the same-origin rule of its
 * actions (Host with or without a port, default ports, Sec-Fetch-Site),
 * the shared minute ring (several processes counting into one minute,
 * minutes nobody counted in), and the store's bounded listings and
 * dead-job batches on a fresh database.
 */
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dashboard.h"
#include "metrics.h"
#include "store-sqlite.h"
#include "tmpdir.h"

static char	dir[64], db[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fcgiq-dash.XXXXXX");
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

static void
test_query(void **state)
{
	char b[16];

	(void)state;
	assert_int_equal(dashboard_query("a=1&queue=ma%69l&x=", "queue", b,
	    sizeof(b)), 1);
	assert_string_equal(b, "mail");
	assert_int_equal(dashboard_query("a=1&x=", "x", b, sizeof(b)), 1);
	assert_string_equal(b, "");
	assert_int_equal(dashboard_query("aqueue=1", "queue", b, sizeof(b)), 0);
	assert_int_equal(dashboard_query("queue", "queue", b, sizeof(b)), 0);
	assert_int_equal(dashboard_query(NULL, "queue", b, sizeof(b)), 0);
	assert_int_equal(dashboard_query("q=a+b", "q", b, sizeof(b)), 1);
	assert_string_equal(b, "a b");
	/* First one wins; bad escapes, a NUL, too long: refused. */
	assert_int_equal(dashboard_query("q=1&q=2", "q", b, sizeof(b)), 1);
	assert_string_equal(b, "1");
	assert_int_equal(dashboard_query("q=%4", "q", b, sizeof(b)), -1);
	assert_int_equal(dashboard_query("q=%zz", "q", b, sizeof(b)), -1);
	assert_int_equal(dashboard_query("q=a%00b", "q", b, sizeof(b)), -1);
	assert_int_equal(dashboard_query("q=0123456789abcdef", "q", b,
	    sizeof(b)), -1);
}

static void
test_same_origin(void **state)
{
	(void)state;
	/* Host with its port (Apache, nginx with $http_host). */
	assert_true(dashboard_same_origin("http://h:8080", NULL, "http",
	    "h:8080", "8080"));
	assert_true(dashboard_same_origin("HTTP://H:8080", NULL, "http",
	    "h:8080", NULL));
	assert_false(dashboard_same_origin("http://h:8081", NULL, "http",
	    "h:8080", "8080"));
	assert_false(dashboard_same_origin("https://h:8080", NULL, "http",
	    "h:8080", "8080"));
	/* Host without it (Debian's fastcgi_params: $host). */
	assert_true(dashboard_same_origin("http://h:8080", NULL, "http", "h",
	    "8080"));
	assert_false(dashboard_same_origin("http://h", NULL, "http", "h",
	    "8080"));
	assert_true(dashboard_same_origin("https://h", NULL, "https", "h",
	    "443"));
	assert_true(dashboard_same_origin("http://h", NULL, "http", "h", "80"));
	assert_false(dashboard_same_origin("http://h:443", NULL, "http", "h",
	    "80"));
	assert_false(dashboard_same_origin("http://hx", NULL, "http", "h",
	    "80"));
	assert_false(dashboard_same_origin("http://h.evil", NULL, "http", "h",
	    "80"));
	assert_true(dashboard_same_origin("http://[::1]:81", NULL, "http",
	    "[::1]:81", "81"));
	assert_true(dashboard_same_origin("http://[::1]:81", NULL, "http",
	    "[::1]", "81"));
	/* Anything else another site could send. */
	assert_false(dashboard_same_origin("null", NULL, "http", "h", "80"));
	assert_false(dashboard_same_origin("http://evil", "same-origin",
	    "http", "h", "80"));
	assert_false(dashboard_same_origin("http://h", NULL, "http", NULL,
	    "80"));
	assert_false(dashboard_same_origin("http://h", NULL, "http", "", "80"));
	/* No Origin: the browser's Sec-Fetch-Site decides, else refused. */
	assert_true(dashboard_same_origin(NULL, "same-origin", "http", "h",
	    "80"));
	assert_false(dashboard_same_origin(NULL, "same-site", "http", "h",
	    "80"));
	assert_false(dashboard_same_origin(NULL, "cross-site", "http", "h",
	    "80"));
	assert_false(dashboard_same_origin(NULL, NULL, "http", "h", "80"));
}

/* The minute ring: two processes and this one count into one minute. */
static void
test_minutes(void **state)
{
	struct metrics_minute m[3];
	char err[256];
	int64_t now = store_now();
	pid_t pid[2];
	int i, k, st, qi;

	(void)state;
	assert_int_equal(metrics_open(db, 1, err, sizeof(err)), 0);
	qi = metrics_queue("default");
	assert_true(qi >= 0);
	for (k = 0; k < 2; k++) {
		if ((pid[k] = fork()) == 0) {
			if (metrics_open(db, 1, err, sizeof(err)) == -1)
				_exit(1);
			for (i = 0; i < 1000; i++) {
				metrics_enqueued("default", 1);
				metrics_finished("default", METRICS_DONE, 5);
			}
			metrics_finished("default", METRICS_FAILED, 5);
			metrics_finished("default", METRICS_DEAD, 5);
			metrics_finished("default", METRICS_CANCELLED, -1);
			metrics_close();
			_exit(0);
		}
		assert_true(pid[k] > 0);
	}
	metrics_enqueued("default", 10);
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* Unless the minute turned meanwhile, all of it is in out[0]. */
	now = store_now();
	metrics_minutes(now, m, 3);
	assert_int_equal(m[0].minute, now / 60000);
	assert_int_equal(m[1].minute, now / 60000 - 1);
	assert_int_equal(m[0].n[qi][METRICS_M_ENQUEUED] +
	    m[1].n[qi][METRICS_M_ENQUEUED], 2010);
	assert_int_equal(m[0].n[qi][METRICS_M_DONE] +
	    m[1].n[qi][METRICS_M_DONE], 2000);
	/* Failed and dead attempts count as failed; cancels do not. */
	assert_int_equal(m[0].n[qi][METRICS_M_FAILED] +
	    m[1].n[qi][METRICS_M_FAILED], 4);
	/* Nobody counted two hours ago: zero, whatever the ring held. */
	metrics_minutes(now - 2 * 3600 * 1000, m, 1);
	assert_int_equal(m[0].n[qi][METRICS_M_ENQUEUED], 0);
}

struct seen {
	int	 n;
	char	 ids[64][STORE_ID_LEN + 1];
};

static void
on_row(void *arg, const struct store_dash_row *r)
{
	struct seen *s = arg;

	if (s->n < 64)
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", r->id);
	s->n++;
}

static void
test_list_and_batches(void **state)
{
	struct store_newjob j[40];
	struct store_dash_filter f;
	struct store_opts o;
	struct store *s;
	struct seen seen;
	char err[256];
	int64_t now = store_now();
	int i;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.busy_timeout_ms = 5000;
	assert_non_null(s = store_open(db, &o, err, sizeof(err)));
	memset(j, 0, sizeof(j));
	for (i = 0; i < 40; i++) {
		j[i].queue = i < 30 ? "default" : "mail";
		j[i].max_attempts = 1;
		j[i].body = "x";
		j[i].body_len = 1;
	}
	assert_int_equal(store_enqueue(s, j, 40), 0);
	/* 20 of default and 5 of mail dead; 10 of them long ago. */
	for (i = 0; i < 40; i++) {
		char sql[256];

		if (!(i < 20 || i >= 35))
			continue;
		snprintf(sql, sizeof(sql), "UPDATE jobs SET state = 'dead', "
		    "finished_at = %lld WHERE id = '%s'",
		    (long long)(i < 10 ? now - 7200000 + i : now - 1000 + i),
		    j[i].id);
		assert_int_equal(sqlite3_exec(store_db(s), sql, NULL, NULL,
		    NULL), SQLITE_OK);
	}
	memset(&f, 0, sizeof(f));
	f.state = STORE_JOB_DEAD;
	f.queue = "default";
	f.limit = 100;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(s, &f, on_row, &seen), 20);
	/* Newest death first. */
	assert_string_equal(seen.ids[19], j[0].id);
	f.before = now - 3600000;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(s, &f, on_row, &seen), 10);
	f.before = 0;
	f.queue = NULL;
	f.offset = 20;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(s, &f, on_row, &seen), 5);
	f.state = STORE_JOB_QUEUED;
	f.offset = 0;
	f.queue = "default";
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(s, &f, on_row, &seen), 10);
	assert_string_equal(seen.ids[0], j[20].id);	/* claim order */

	/* The old dead of default, in batches of 3: 3, 3, 3, 1. */
	assert_int_equal(store_dash_dead_batch(s, "default", now - 3600000, 1,
	    3, now), 3);
	assert_int_equal(store_dash_dead_batch(s, "default", now - 3600000, 1,
	    3, now), 3);
	assert_int_equal(store_dash_dead_batch(s, "default", now - 3600000, 1,
	    3, now), 3);
	assert_int_equal(store_dash_dead_batch(s, "default", now - 3600000, 1,
	    3, now), 1);
	assert_int_equal(store_dash_dead_batch(s, "default", now - 3600000, 1,
	    3, now), 0);
	/* The rest of every queue retried. */
	assert_int_equal(store_dash_dead_batch(s, NULL, now, 0, 100, now), 15);
	f.state = STORE_JOB_DEAD;
	f.queue = NULL;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(s, &f, on_row, &seen), 0);
	/* One dead job discarded; a queued one is refused; unknown is 0. */
	assert_int_equal(store_dash_discard(s, j[25].id), 2);
	assert_int_equal(store_dash_discard(s,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_query),
		T(test_same_origin),
		T(test_minutes),
		T(test_list_and_batches),
#undef T
	};

	return cmocka_run_group_tests_name("dashboard", tests, NULL, NULL);
}
