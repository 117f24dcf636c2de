/*
 * test_top: fcgiqctl top's readings and frames (queue/top.c) on a fresh
 * database and counters file: the rates come from the counters'
 * differences between readings and over their windows (none from one
 * reading; intake only over its 10 s), large counts are shortened to fit
 * their column, a long queue name is cut, and no line of a frame is wider
 * than asked (80 at most).  tests/e2e/top.sh drives the program itself.
 */
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
#include "config.h"
#include "metrics.h"
#include "store.h"
#include "tmpdir.h"
#include "top.h"

#define LONGQ	"a-queue-name-much-longer-than-its-column"

struct fx {
	char		 dir[64];
	struct config	 c;
	struct store	*s;
	struct top	*t;
	struct buf	 b;
};

static int
setup(void **state)
{
	struct store_opts o = { 0 };
	struct fx *f;
	char path[128], err[256];
	FILE *fp;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fcgiq-top.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/fcgiq.conf", f->dir);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	fprintf(fp, "[fcgiq]\ndatabase = %s/q.db\n[queue default]\n"
	    "[queue " LONGQ "]\n", f->dir);
	if (fclose(fp) != 0 || config_load(&f->c, path, err, sizeof(err)) == -1)
		return -1;
	if ((f->s = store_open(f->c.database, &o, err, sizeof(err))) == NULL ||
	    metrics_open(f->c.database, 1, err, sizeof(err)) == -1 ||
	    (f->t = top_new(&f->c)) == NULL)
		return -1;
	buf_init(&f->b, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rc;

	buf_free(&f->b);
	top_free(f->t);
	metrics_close();
	store_close(f->s);
	rc = tmpdir_remove(f->dir);
	config_free(&f->c);
	free(f);
	return rc;
}

/* The frame of the latest reading, width columns, as a string. */
static const char *
frame(struct fx *f, int width)
{
	f->b.len = 0;
	assert_int_equal(top_frame(f->t, &f->b, width, 0), 0);
	assert_int_equal(buf_append(&f->b, "", 1), 0);
	return (const char *)f->b.data;
}

/* The row of the queue whose (cut) name is q, as printed. */
static void
row(const char *fr, const char *q, char *out, size_t n)
{
	const char *p = strstr(fr, q);

	assert_non_null(p);
	snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
}

static void
assert_width(const char *fr, size_t width)
{
	const char *p;

	for (p = fr; *p != '\0'; p += strcspn(p, "\n") + 1)
		assert_true(strcspn(p, "\n") <= width);
}

static void
test_rates(void **state)
{
	struct fx *f = *state;
	char r[128];
	int64_t t0 = store_now();
	int i;

	assert_int_equal(top_read(f->t, f->s, t0), 0);
	row(frame(f, 80), "default", r, sizeof(r));
	assert_string_equal(r, "default                0       0      0      0"
	    "     no       -       -       -");
	/* 6 s later: 30 done, 3 failed and 1 dead, 12 enqueued. */
	for (i = 0; i < 30; i++)
		metrics_finished("default", METRICS_DONE, 5);
	for (i = 0; i < 3; i++)
		metrics_finished("default", METRICS_FAILED, 5);
	metrics_finished("default", METRICS_DEAD, -1);
	metrics_enqueued("default", 12);
	assert_int_equal(top_read(f->t, f->s, t0 + 6000), 0);
	row(frame(f, 80), "default", r, sizeof(r));
	assert_non_null(strstr(r, "     300      40"));
	assert_non_null(strstr(frame(f, 80), " intake 2.0/s "));
	/* 12 s after the first: intake over the last 10 s only (none). */
	assert_int_equal(top_read(f->t, f->s, t0 + 12000), 0);
	assert_non_null(strstr(frame(f, 80), " intake 0.0/s "));
	row(frame(f, 80), "default", r, sizeof(r));
	assert_non_null(strstr(r, "     150      20"));
}

static void
test_fits(void **state)
{
	struct fx *f = *state;
	struct metrics_counts mc;
	char r[128];
	int64_t now = store_now();
	int ix = metrics_queue("default");

	/* Counts as large as a busy installation's, fresh: not recounted. */
	memset(&mc, 0, sizeof(mc));
	assert_true(ix >= 0);
	mc.n[ix][STORE_JOB_QUEUED] = 12345678;
	mc.n[ix][STORE_JOB_DEAD] = 9999999;
	mc.n[ix][STORE_JOB_RUNNING] = 12345678901LL;
	mc.at_ms = now;
	metrics_counts_put(&mc);
	assert_int_equal(top_read(f->t, f->s, now), 0);
	row(frame(f, 80), "default", r, sizeof(r));
	assert_string_equal(r, "default            12.3M   12.3G      0 "
	    "9999999     no       -       -       -");
	assert_width(frame(f, 80), 80);
	/* A long name is cut to its column. */
	assert_non_null(strstr(frame(f, 80), "\na-queue-name-muc     "));
	assert_width(frame(f, 200), 80);
	assert_width(frame(f, 40), 40);
	assert_width(frame(f, 1), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fits, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
