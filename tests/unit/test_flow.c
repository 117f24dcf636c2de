/*
 * Unit tests for flow: the keys' syntax, the token bucket over long spans
 * of an injected clock (no drift, bursts bounded), and every transition
 * of the circuit breaker, its doubling pause and its cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "flow.h"

static void
test_keys(void **state)
{
	struct flow_conf f;
	char msg[256];
	int rc, n;
	int64_t p;

	(void)state;
	flow_conf_defaults(&f);
	assert_int_equal(f.rate, 0);
	assert_int_equal(f.pause_after, 0);
	assert_int_equal(f.pause_for_ms, 60000);
	assert_int_equal(f.quarantine_after, 3);
	assert_int_equal(flow_parse_rate("10/s", &n, &p), 0);
	assert_int_equal(n, 10);
	assert_int_equal(p, 1000);
	assert_int_equal(flow_parse_rate("600/m", &n, &p), 0);
	assert_int_equal(p, 60000);
	assert_int_equal(flow_parse_rate("5/h", &n, &p), 0);
	assert_int_equal(p, 3600000);
	assert_int_equal(flow_parse_rate("0/s", &n, &p), -1);
	assert_int_equal(flow_parse_rate("10", &n, &p), -1);
	assert_int_equal(flow_parse_rate("10/d", &n, &p), -1);
	assert_int_equal(flow_parse_rate("/s", &n, &p), -1);
	assert_int_equal(flow_parse_rate("-3/s", &n, &p), -1);
	assert_int_equal(flow_parse_rate("10/ s", &n, &p), -1);

	assert_int_equal(flow_conf_key(&f, "rate", "50/s", msg, sizeof(msg),
	    &rc), 1);
	assert_int_equal(rc, 0);
	assert_int_equal(f.rate, 50);
	assert_int_equal(flow_conf_key(&f, "rate", "50 per second", msg,
	    sizeof(msg), &rc), 1);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "rate: bad value"));
	assert_int_equal(flow_conf_key(&f, "pause_for", "10ms", msg,
	    sizeof(msg), &rc), 1);
	assert_int_equal(rc, -1);
	assert_int_equal(flow_conf_key(&f, "pause_for", "2m", msg,
	    sizeof(msg), &rc), 1);
	assert_int_equal(rc, 0);
	assert_int_equal(f.pause_for_ms, 120000);
	assert_int_equal(flow_conf_key(&f, "quarantine_after", "0", msg,
	    sizeof(msg), &rc), 1);
	assert_int_equal(rc, 0);
	assert_int_equal(flow_conf_key(&f, "retry_concurrency", "0", msg,
	    sizeof(msg), &rc), 1);
	assert_int_equal(rc, -1);
	assert_int_equal(flow_conf_key(&f, "concurrency", "4", msg,
	    sizeof(msg), &rc), 0);

	/* Defaults that follow from other keys. */
	flow_conf_defaults(&f);
	assert_int_equal(flow_retry_slots(&f, 1), 1);
	assert_int_equal(flow_retry_slots(&f, 5), 2);
	assert_int_equal(flow_retry_slots(&f, 8), 4);
	f.retry_concurrency = 6;
	assert_int_equal(flow_retry_slots(&f, 4), 4);
	f.rate = 50;
	f.period_ms = 1000;
	assert_int_equal(flow_burst(&f), 50);
	f.rate = 10;
	f.period_ms = 60000;
	assert_int_equal(flow_burst(&f), 1);
	f.burst = 7;
	assert_int_equal(flow_burst(&f), 7);
}

/* Start whatever the bucket lets through, polling as the helper does:
 * ask, and when refused sleep until the time it names. */
static int
drain(struct flow_bucket *b, const struct flow_conf *f, int64_t from,
    int64_t to)
{
	int64_t now = from, next;
	int n = 0;

	while (now < to) {
		if (flow_bucket_ready(b, f, now, &next)) {
			flow_bucket_take(b, f, now);
			n++;
			continue;
		}
		assert_true(next > now);
		now = next;
	}
	return n;
}

static void
test_bucket(void **state)
{
	struct flow_conf f;
	struct flow_bucket b;
	int64_t next = -1;

	(void)state;
	flow_conf_defaults(&f);
	memset(&b, 0, sizeof(b));
	/* No rate: always ready, *next untouched. */
	assert_int_equal(flow_bucket_ready(&b, &f, 5, &next), 1);
	assert_int_equal(next, -1);

	f.rate = 50;
	f.period_ms = 1000;
	f.burst = 1;
	/* Exactly 50 a second over ten seconds: no drift, no burst. */
	assert_int_equal(drain(&b, &f, 1000000, 1010000), 500);
	/* The next ten seconds, likewise. */
	assert_int_equal(drain(&b, &f, 1010000, 1020000), 500);

	/* A full bucket after a quiet spell: the burst, then the rate. */
	memset(&b, 0, sizeof(b));
	f.burst = 20;
	assert_int_equal(drain(&b, &f, 2000000, 2000001), 20);
	assert_int_equal(drain(&b, &f, 2000001, 2010001), 500);

	/* Uneven intervals (3 an hour): 1.2 s is 1200 ms, no rounding
	 * lost over a day. */
	memset(&b, 0, sizeof(b));
	f.rate = 3;
	f.period_ms = 3600000;
	f.burst = 1;
	assert_int_equal(drain(&b, &f, 0, 24 * 3600000LL), 72);
	/* 7 a second: 142857 us apart, 70 in ten seconds. */
	memset(&b, 0, sizeof(b));
	f.rate = 7;
	f.period_ms = 1000;
	assert_int_equal(drain(&b, &f, 0, 10000), 70);
}

static void
test_breaker(void **state)
{
	struct flow_conf f;
	struct flow_breaker b;
	enum flow_event ev;
	int64_t next, cap = 300000, t = 1000000;
	int i;

	(void)state;
	flow_conf_defaults(&f);
	memset(&b, 0, sizeof(b));
	/* No breaker: failures change nothing. */
	for (i = 0; i < 100; i++)
		assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t),
		    FLOW_EV_NONE);
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);

	memset(&b, 0, sizeof(b));
	f.pause_after = 3;
	f.pause_for_ms = 60000;
	/* Two failures, a success: the count starts again. */
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t), 0);
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t), 0);
	assert_int_equal(flow_breaker_outcome(&b, &f, 1, 0, cap, t), 0);
	assert_int_equal(b.failures, 0);
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t), 0);
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t), 0);
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t),
	    FLOW_EV_OPENED);
	assert_int_equal(b.state, FLOW_OPEN);
	assert_int_equal(b.open_until, t + 60000);
	assert_int_equal(b.trips, 1);

	/* Open: nothing starts until open_until; late failures of jobs
	 * that started before change nothing. */
	next = 0;
	assert_int_equal(flow_breaker_allow(&b, &f, t + 59999, &next, &ev),
	    0);
	assert_int_equal(next, t + 60000);
	assert_int_equal(ev, FLOW_EV_NONE);
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t + 10),
	    FLOW_EV_NONE);
	assert_int_equal(b.open_until, t + 60000);

	/* Half-open: one job, and only one, until its outcome. */
	t += 60000;
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	assert_int_equal(ev, FLOW_EV_HALF_OPEN);
	flow_breaker_started(&b);
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 0);
	assert_int_equal(ev, FLOW_EV_NONE);
	/* Given back at shutdown: another may probe. */
	flow_breaker_released(&b);
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	flow_breaker_started(&b);
	/* A failure that is not the probe's decides nothing. */
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t),
	    FLOW_EV_NONE);
	assert_int_equal(b.state, FLOW_HALF_OPEN);
	/* The probe fails: open again for twice as long. */
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 1, cap, t),
	    FLOW_EV_OPENED);
	assert_int_equal(b.open_until, t + 120000);
	assert_int_equal(b.trips, 2);
	/* Doubling stops at the cap. */
	for (i = 0; i < 5; i++) {
		t = b.open_until;
		assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
		flow_breaker_started(&b);
		assert_int_equal(flow_breaker_outcome(&b, &f, 0, 1, cap, t),
		    FLOW_EV_OPENED);
	}
	assert_int_equal(b.pause_ms, cap);
	assert_int_equal(b.open_until, t + cap);
	assert_int_equal(b.trips, 7);

	/* The probe succeeds: closed, the pause back to pause_for. */
	t = b.open_until;
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	flow_breaker_started(&b);
	assert_int_equal(flow_breaker_outcome(&b, &f, 1, 1, cap, t),
	    FLOW_EV_CLOSED);
	assert_int_equal(b.state, FLOW_CLOSED);
	assert_int_equal(b.open_until, 0);
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	for (i = 0; i < 3; i++)
		(void)flow_breaker_outcome(&b, &f, 0, 0, cap, t);
	assert_int_equal(b.open_until, t + 60000);

	/* A success of a job started before it opened closes it too. */
	assert_int_equal(flow_breaker_outcome(&b, &f, 1, 0, cap, t + 5),
	    FLOW_EV_CLOSED);

	/* pause_for above the cap: the cap. */
	memset(&b, 0, sizeof(b));
	f.pause_after = 1;
	f.pause_for_ms = 600000;
	assert_int_equal(flow_breaker_outcome(&b, &f, 0, 0, cap, t),
	    FLOW_EV_OPENED);
	assert_int_equal(b.open_until, t + cap);

	/* The breaker taken out of the configuration: closed at once. */
	f.pause_after = 0;
	assert_int_equal(flow_breaker_allow(&b, &f, t, &next, &ev), 1);
	assert_int_equal(ev, FLOW_EV_CLOSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_breaker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
