/*
 * test_cron: cron.c's parser and next slot (ranges, names, steps, lists,
 * the day-of-month/day-of-week OR, daylight saving time in Europe/Berlin
 * and America/New_York, leap days, year boundaries), and schedule.c's
 * fire against a real store: each slot once (two connections, a clock
 * stepped back) and catch_up's last, none and all after a downtime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cron.h"
#include "schedule.h"
#include "store.h"
#include "tmpdir.h"

/* "2026-03-29T01:00" (UTC) as Unix ms. */
static int64_t
ms(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(iso, "%Y-%m-%dT%H:%M", &tm) == NULL)
		fail_msg("bad time %s", iso);
	return (int64_t)timegm(&tm) * 1000;
}

/* The next slot of expr in zone after after, as "YYYY-MM-DDTHH:MM" UTC. */
static const char *
next(const char *expr, const char *zone, const char *after)
{
	static char buf[32];
	struct cron c;
	char err[200];
	int64_t slot;
	struct tm tm;
	time_t t;

	if (cron_parse(&c, expr, err, sizeof(err)) == -1)
		fail_msg("%s: %s", expr, err);
	assert_int_equal(cron_tz_enter(zone), 0);
	if (!cron_next(&c, ms(after), &slot)) {
		cron_tz_leave();
		return "none";
	}
	cron_tz_leave();
	t = (time_t)(slot / 1000);
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M", &tm);
	return buf;
}

/* The message cron_parse gives expr ("" when it takes it). */
static const char *
bad(const char *expr)
{
	static char err[200];
	struct cron c;

	err[0] = '\0';
	if (cron_parse(&c, expr, err, sizeof(err)) == 0)
		return "";
	return err;
}

static void
test_errors(void **state)
{
	(void)state;
	assert_string_equal(bad("60 * * * *"),
	    "cron: minute: 60 is out of range 0-59");
	assert_string_equal(bad("* 24 * * *"),
	    "cron: hour: 24 is out of range 0-23");
	assert_string_equal(bad("* * 0 * *"),
	    "cron: day-of-month: 0 is out of range 1-31");
	assert_string_equal(bad("* * 32 * *"),
	    "cron: day-of-month: 32 is out of range 1-31");
	assert_string_equal(bad("* * * 13 *"),
	    "cron: month: 13 is out of range 1-12");
	assert_string_equal(bad("0 3 * * 8"),
	    "cron: day-of-week: 8 is out of range 0-7");
	assert_string_equal(bad("* * * foo *"),
	    "cron: month: \"foo\" is not a number or a name");
	assert_string_equal(bad("x * * * *"),
	    "cron: minute: \"x\" is not a number");
	assert_string_equal(bad("* * * * mon-sun"), "");
	assert_string_equal(bad("* * * * fri-mon"),
	    "cron: day-of-week: range 5-1 runs backwards");
	assert_string_equal(bad("*/0 * * * *"),
	    "cron: minute: step 0 is out of range 1-59");
	assert_string_equal(bad("*/ * * * *"),
	    "cron: minute: a step is a number");
	assert_string_equal(bad("1,,2 * * * *"),
	    "cron: minute: \"\" is not a number");
	assert_string_equal(bad("1;2 * * * *"),
	    "cron: minute: unexpected \";\" in \"1;2\"");
	assert_string_equal(bad("* * * *"), "cron: expected 5 fields "
	    "(minute hour day-of-month month day-of-week), found 4");
	assert_string_equal(bad("* * * * * *"), "cron: expected 5 fields "
	    "(minute hour day-of-month month day-of-week), found more");
	assert_string_equal(bad(""), "cron: expected 5 fields "
	    "(minute hour day-of-month month day-of-week), found none");
	assert_string_equal(bad("@reboot"), "cron: \"@reboot\" is not one "
	    "of @hourly @daily @midnight @weekly @monthly @yearly @annually");
	assert_string_equal(bad("0 0 31 4,6,9,11 *"), "cron: day-of-month: "
	    "no such day in the months named: never runs");
	assert_string_equal(bad("0 0 30 2 *"), "cron: day-of-month: "
	    "no such day in the months named: never runs");
	/* With a day of week too, either may match: it runs. */
	assert_string_equal(bad("0 0 30 2 mon"), "");
	assert_string_equal(bad("0 0 29 2 *"), "");
}

static void
test_fields(void **state)
{
	(void)state;
	/* Ranges, steps and lists. */
	assert_string_equal(next("*/15 * * * *", "UTC", "2026-05-05T10:07"),
	    "2026-05-05T10:15");
	assert_string_equal(next("10-40/10 * * * *", "UTC",
	    "2026-05-05T10:41"), "2026-05-05T11:10");
	assert_string_equal(next("5/20 * * * *", "UTC", "2026-05-05T10:46"),
	    "2026-05-05T11:05");
	assert_string_equal(next("0 1,13 * * *", "UTC", "2026-05-05T01:00"),
	    "2026-05-05T13:00");
	assert_string_equal(next("0 1,13 * * *", "UTC", "2026-05-05T13:00"),
	    "2026-05-06T01:00");
	assert_string_equal(next("59 23 * * *", "UTC", "2026-05-05T23:58"),
	    "2026-05-05T23:59");
	/* Names, any case; 7 is Sunday too. */
	assert_string_equal(next("0 9 * jan,JUL mon-fri", "UTC",
	    "2026-01-02T12:00"), "2026-01-05T09:00");
	assert_string_equal(next("0 9 * jan,jul mon-fri", "UTC",
	    "2026-01-30T12:00"), "2026-07-01T09:00");
	assert_string_equal(next("0 0 * * 7", "UTC", "2026-05-05T00:00"),
	    "2026-05-10T00:00");
	assert_string_equal(next("0 0 * * 5-7", "UTC", "2026-05-09T00:00"),
	    "2026-05-10T00:00");
	assert_string_equal(next("0 0 * * fri-sun", "UTC",
	    "2026-05-09T00:00"), "2026-05-10T00:00");
	assert_string_equal(next("@hourly", "UTC", "2026-05-05T10:00"),
	    "2026-05-05T11:00");
	assert_string_equal(next("@weekly", "UTC", "2026-05-05T10:00"),
	    "2026-05-10T00:00");
	assert_string_equal(next("@monthly", "UTC", "2026-05-05T10:00"),
	    "2026-06-01T00:00");
	assert_string_equal(next("@yearly", "UTC", "2026-05-05T10:00"),
	    "2027-01-01T00:00");
}

static void
test_dom_dow(void **state)
{
	(void)state;
	/* Both restricted: the 13th or a Friday (2026-02-01 is a Sunday). */
	assert_string_equal(next("0 0 13 * 5", "UTC", "2026-02-01T00:00"),
	    "2026-02-06T00:00");
	assert_string_equal(next("0 0 13 * 5", "UTC", "2026-02-06T00:00"),
	    "2026-02-13T00:00");
	assert_string_equal(next("0 0 13 * 5", "UTC", "2026-02-27T00:00"),
	    "2026-03-06T00:00");
	assert_string_equal(next("0 0 13 * 5", "UTC", "2026-03-06T00:00"),
	    "2026-03-13T00:00");	/* a Friday and the 13th */
	assert_string_equal(next("0 0 1 * 1", "UTC", "2026-05-25T00:00"),
	    "2026-06-01T00:00");
	/* A day of week alone. */
	assert_string_equal(next("0 0 * * 5", "UTC", "2026-02-06T00:00"),
	    "2026-02-13T00:00");
	/* A field that begins with '*' restricts with AND (crontab(5)):
	 * odd days that are Fridays. */
	assert_string_equal(next("0 0 */2 * 5", "UTC", "2026-02-01T00:00"),
	    "2026-02-13T00:00");
}

static void
test_berlin(void **state)
{
	(void)state;
	/* 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.  A slot in
	 * the skipped hour runs once, right after the jump. */
	assert_string_equal(next("30 2 * * *", "Europe/Berlin",
	    "2026-03-28T12:00"), "2026-03-29T01:00");
	assert_string_equal(next("30 2 * * *", "Europe/Berlin",
	    "2026-03-29T01:00"), "2026-03-30T00:30");
	assert_string_equal(next("*/15 * * * *", "Europe/Berlin",
	    "2026-03-29T00:50"), "2026-03-29T01:00");
	assert_string_equal(next("*/15 * * * *", "Europe/Berlin",
	    "2026-03-29T01:00"), "2026-03-29T01:15");
	assert_string_equal(next("0 3 * * *", "Europe/Berlin",
	    "2026-03-28T12:00"), "2026-03-29T01:00");
	/* 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC.  A slot in
	 * the repeated hour runs once, at its first occurrence. */
	assert_string_equal(next("30 2 * * *", "Europe/Berlin",
	    "2026-10-24T12:00"), "2026-10-25T00:30");
	assert_string_equal(next("30 2 * * *", "Europe/Berlin",
	    "2026-10-25T00:30"), "2026-10-26T01:30");
	assert_string_equal(next("0 * * * *", "Europe/Berlin",
	    "2026-10-24T23:30"), "2026-10-25T00:00");
	assert_string_equal(next("0 * * * *", "Europe/Berlin",
	    "2026-10-25T00:00"), "2026-10-25T02:00");
	/* From inside the second occurrence: on to 03:00 CET. */
	assert_string_equal(next("*/20 * * * *", "Europe/Berlin",
	    "2026-10-25T01:10"), "2026-10-25T02:00");
	/* 03:00 on the day of the fall back is there once, in CET. */
	assert_string_equal(next("0 3 * * *", "Europe/Berlin",
	    "2026-10-24T12:00"), "2026-10-25T02:00");
	/* Far ahead, where the zone's rule (not a table) decides. */
	assert_string_equal(next("30 2 * * *", "Europe/Berlin",
	    "2099-03-28T12:00"), "2099-03-29T01:00");
	/* Winter: CET is UTC+1. */
	assert_string_equal(next("0 3 * * *", "Europe/Berlin",
	    "2026-12-03T00:00"), "2026-12-03T02:00");
}

static void
test_new_york(void **state)
{
	(void)state;
	/* 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC. */
	assert_string_equal(next("30 2 * * *", "America/New_York",
	    "2026-03-07T12:00"), "2026-03-08T07:00");
	assert_string_equal(next("30 2 * * *", "America/New_York",
	    "2026-03-08T07:00"), "2026-03-09T06:30");
	/* 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC. */
	assert_string_equal(next("30 1 * * *", "America/New_York",
	    "2026-10-31T12:00"), "2026-11-01T05:30");
	assert_string_equal(next("30 1 * * *", "America/New_York",
	    "2026-11-01T05:30"), "2026-11-02T06:30");
	/* Every half hour through the jump: 01:30 EST, then 03:00 EDT
	 * (the jump, for 02:00 and 02:30), then 03:30 EDT. */
	assert_string_equal(next("*/30 * * * *", "America/New_York",
	    "2026-03-08T06:30"), "2026-03-08T07:00");
	assert_string_equal(next("*/30 * * * *", "America/New_York",
	    "2026-03-08T07:00"), "2026-03-08T07:30");
	/* Through the repeated hour: 01:00 and 01:30 EDT once each, then
	 * 02:00 EST. */
	assert_string_equal(next("*/30 * * * *", "America/New_York",
	    "2026-11-01T05:30"), "2026-11-01T07:00");
	assert_string_equal(next("0 9 * * mon-fri", "America/New_York",
	    "2026-12-04T15:00"), "2026-12-07T14:00");
}

static void
test_calendar(void **state)
{
	(void)state;
	/* Leap days: 2100 is not a leap year. */
	assert_string_equal(next("0 0 29 2 *", "UTC", "2026-01-01T00:00"),
	    "2028-02-29T00:00");
	assert_string_equal(next("0 0 29 2 *", "UTC", "2028-02-29T00:00"),
	    "2032-02-29T00:00");
	assert_string_equal(next("0 0 29 2 *", "UTC", "2096-03-01T00:00"),
	    "2104-02-29T00:00");
	assert_string_equal(next("0 12 29 2 *", "Europe/Berlin",
	    "2027-06-01T00:00"), "2028-02-29T11:00");
	/* Year boundaries. */
	assert_string_equal(next("0 0 1 1 *", "UTC", "2026-12-31T23:59"),
	    "2027-01-01T00:00");
	assert_string_equal(next("59 23 31 12 *", "UTC", "2026-12-31T23:59"),
	    "2027-12-31T23:59");
	assert_string_equal(next("* * * * *", "UTC", "2026-12-31T23:59"),
	    "2027-01-01T00:00");
	assert_string_equal(next("0 0 1 1 *", "Europe/Berlin",
	    "2026-12-31T22:59"), "2026-12-31T23:00");
	assert_string_equal(next("0 0 31 * *", "UTC", "2026-04-01T00:00"),
	    "2026-05-31T00:00");
}

static void
test_zones(void **state)
{
	(void)state;
	assert_true(cron_tz_valid("Europe/Berlin"));
	assert_true(cron_tz_valid("UTC"));
	assert_false(cron_tz_valid("Mars/Olympus_Mons"));
	assert_false(cron_tz_valid("../../etc/passwd"));
	assert_false(cron_tz_valid("Europe/../../../etc/passwd"));
	assert_false(cron_tz_valid("/etc/localtime"));
	assert_false(cron_tz_valid("Europe"));		/* a directory */
	assert_false(cron_tz_valid(""));
	assert_int_equal(cron_tz_enter("Nowhere/Atall"), -1);
}

/* --- schedule_fire against a store ------------------------------------ */

struct fx {
	char		 dir[64];
	char		 path[128];
	struct store	*s;
};

static int
setup(void **state)
{
	struct fx *f;
	char err[256];

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/test_cron.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/q.db", f->dir);
	if ((f->s = store_open(f->path, NULL, err, sizeof(err))) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	(void)tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
sched(struct schedule_conf *sc, const char *expr, int catch_up)
{
	char err[200];

	memset(sc, 0, sizeof(*sc));
	sc->name = "hourly";
	sc->queue = "reports";
	sc->timezone = "Europe/Berlin";
	sc->body = "{}";
	sc->body_len = 2;
	sc->catch_up = catch_up;
	assert_int_equal(cron_parse(&sc->cron, expr, err, sizeof(err)), 0);
}

static int64_t
waiting(struct fx *f)
{
	return store_count_waiting(f->s, "reports");
}

static void
test_fire_once(void **state)
{
	struct fx *f = *state;
	struct schedule_conf sc;
	struct store *s2;
	int64_t last, t0 = ms("2026-12-03T10:00");
	char err[256];
	int n;

	sched(&sc, "0 * * * *", CATCH_UP_LAST);
	/* A first helper started at 09:30: nothing due yet, nothing kept. */
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 - 1800000,
	    t0 - 1800000, &last, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(last, 0);
	/* 10:00:00.5: the slot goes in, once. */
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 + 500,
	    t0 - 1800000, &last, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(last, t0);
	/* A second connection (another helper, a restart) at the same
	 * slot: nothing. */
	s2 = store_open(f->path, NULL, err, sizeof(err));
	assert_non_null(s2);
	assert_int_equal(schedule_fire(s2, &sc, 3, 0, t0 + 900, t0 + 900,
	    &last, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(last, t0);
	/* The clock stepped back an hour, then forward again. */
	assert_int_equal(schedule_fire(s2, &sc, 3, 0, t0 - 3600000,
	    t0 - 3600000, &last, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(last, t0);
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 + 60000, t0,
	    &last, &n), 0);
	assert_int_equal(n, 0);
	store_close(s2);
	assert_int_equal(waiting(f), 1);
	/* The next hour. */
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 + 3600000, t0,
	    &last, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(waiting(f), 2);
}

/* Run at 10:00, down until 15:30: 11..15, five slots missed. */
static int
downtime(struct fx *f, int catch_up)
{
	struct schedule_conf sc;
	int64_t last, t0 = ms("2026-12-03T10:00");
	int n;

	sched(&sc, "0 * * * *", catch_up);
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0, t0, &last, &n),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 + 5 * 3600000 +
	    1800000, t0 + 5 * 3600000 + 1800000, &last, &n), 0);
	assert_int_equal(last, t0 + 5 * 3600000);
	return n;
}

static void
test_catch_up_last(void **state)
{
	assert_int_equal(downtime(*state, CATCH_UP_LAST), 1);
}

static void
test_catch_up_none(void **state)
{
	assert_int_equal(downtime(*state, CATCH_UP_NONE), 0);
}

static void
test_catch_up_all(void **state)
{
	assert_int_equal(downtime(*state, CATCH_UP_ALL), 5);
	assert_int_equal(waiting(*state), 6);
}

/* catch_up = all stops at SCHEDULE_ALL_MAX, the newest. */
static void
test_catch_up_bound(void **state)
{
	struct fx *f = *state;
	struct schedule_conf sc;
	int64_t last, t0 = ms("2026-12-03T10:00");
	int n;

	sched(&sc, "* * * * *", CATCH_UP_ALL);
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0, t0, &last, &n),
	    0);
	assert_int_equal(schedule_fire(f->s, &sc, 3, 0, t0 + 86400000,
	    t0, &last, &n), 0);
	assert_int_equal(n, SCHEDULE_ALL_MAX);
	assert_int_equal(last, t0 + 86400000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_dom_dow),
		cmocka_unit_test(test_berlin),
		cmocka_unit_test(test_new_york),
		cmocka_unit_test(test_calendar),
		cmocka_unit_test(test_zones),
		cmocka_unit_test_setup_teardown(test_fire_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_last, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_none, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_all, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_bound, setup,
		    teardown),
	};

	/* The zones come from tzdata (tests/install-deps.sh). */
	if (!cron_tz_valid("Europe/Berlin") || !cron_tz_valid("UTC") ||
	    !cron_tz_valid("America/New_York")) {
		printf("1..0 # SKIP tzdata not installed\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
