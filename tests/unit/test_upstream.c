/*
 * Unit tests for upstream: the verdict of each status, Retry-After in its
 * three date forms and as seconds (capped), the one-line last_error with
 * its bounded tail, and the once-a-minute gate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "upstream.h"

static void
test_verdicts(void **state)
{
	static const struct {
		int status;
		enum upstream_verdict v;
	} t[] = {
		{ 200, UPSTREAM_DONE }, { 202, UPSTREAM_DONE },
		{ 204, UPSTREAM_DONE }, { 299, UPSTREAM_DONE },
		{ 408, UPSTREAM_RETRY }, { 425, UPSTREAM_RETRY },
		{ 429, UPSTREAM_RETRY }, { 500, UPSTREAM_RETRY },
		{ 502, UPSTREAM_RETRY }, { 503, UPSTREAM_RETRY },
		{ 599, UPSTREAM_RETRY },
		{ 400, UPSTREAM_DEAD }, { 401, UPSTREAM_DEAD },
		{ 404, UPSTREAM_DEAD }, { 410, UPSTREAM_DEAD },
		{ 422, UPSTREAM_DEAD }, { 499, UPSTREAM_DEAD },
		/* Not a success, and not the request's fault. */
		{ 100, UPSTREAM_RETRY }, { 302, UPSTREAM_RETRY },
		{ 0, UPSTREAM_RETRY }, { 600, UPSTREAM_RETRY },
		{ -1, UPSTREAM_RETRY },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (upstream_verdict(t[i].status) != t[i].v)
			fail_msg("status %d", t[i].status);
}

static void
test_retry_after(void **state)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const int64_t date = 784111777000LL, cap = 3600 * 1000;
	int64_t r;

	(void)state;
	r = -7;
	assert_int_equal(upstream_retry_after("120", 1000, cap, &r), 1);
	assert_int_equal(r, 1000 + 120000);
	assert_int_equal(upstream_retry_after(" 0 ", 1000, cap, &r), 1);
	assert_int_equal(r, 1000);
	/* Capped by the queue's backoff cap, however large. */
	assert_int_equal(upstream_retry_after("86400", 5, cap, &r), 1);
	assert_int_equal(r, 5 + cap);
	assert_int_equal(upstream_retry_after(
	    "99999999999999999999999999", 5, cap, &r), 1);
	assert_int_equal(r, 5 + cap);
	/* The three HTTP-date forms. */
	assert_int_equal(upstream_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
	    date - 30000, cap, &r), 1);
	assert_int_equal(r, date);
	assert_int_equal(upstream_retry_after(
	    "Sunday, 06-Nov-94 08:49:37 GMT", date - 30000, cap, &r), 1);
	assert_int_equal(r, date);
	assert_int_equal(upstream_retry_after("Sun Nov  6 08:49:37 1994",
	    date - 30000, cap, &r), 1);
	assert_int_equal(r, date);
	/* A date past: now; a date far ahead: the cap. */
	assert_int_equal(upstream_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
	    date + 5000, cap, &r), 1);
	assert_int_equal(r, date + 5000);
	assert_int_equal(upstream_retry_after("Fri, 31 Dec 9999 23:59:59 GMT",
	    date, cap, &r), 1);
	assert_int_equal(r, date + cap);
	/* Not a Retry-After: *run_at untouched. */
	r = -7;
	assert_int_equal(upstream_retry_after("soon", 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after("-1", 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after("1.5", 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after("12 monkeys", 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after("", 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after(NULL, 1, cap, &r), 0);
	assert_int_equal(upstream_retry_after("Sun, 06 Nov 1994 08:49:37 UTC",
	    1, cap, &r), 0);
	assert_int_equal(r, -7);
}

static void
test_error_line(void **state)
{
	struct exec_tail t;
	char buf[UPSTREAM_ERROR_MAX], big[3000], small[24];
	const char *php = "PHP message: PHP Fatal error:  Uncaught Error: "
	    "Call to undefined function nope() in /srv/x.php:3\n"
	    "Stack trace:\n#0 {main}\n  thrown in /srv/x.php on line 3\n";
	size_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	upstream_error_line(buf, sizeof(buf), "http 500", NULL);
	assert_string_equal(buf, "http 500");
	upstream_error_line(buf, sizeof(buf), "http 500", &t);
	assert_string_equal(buf, "http 500");
	upstream_tail_add(&t, php, strlen(php));
	upstream_error_line(buf, sizeof(buf), "http 500", &t);
	assert_string_equal(buf, "http 500: PHP message: PHP Fatal error: "
	    "Uncaught Error: Call to undefined function nope() in "
	    "/srv/x.php:3 Stack trace: #0 {main} thrown in /srv/x.php on "
	    "line 3");
	assert_null(strchr(buf, '\n'));

	/* Only the tail, marked as cut; control bytes and bad UTF-8 as '?'. */
	memset(&t, 0, sizeof(t));
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	upstream_tail_add(&t, big, sizeof(big));
	upstream_tail_add(&t, "\x01z\xff\xc3\xa9\r\n", 7);
	assert_int_equal(t.total, sizeof(big) + 7);
	upstream_error_line(buf, sizeof(buf), "http 502", &t);
	assert_memory_equal(buf, "http 502: ...", 13);
	assert_int_equal(strlen(buf), 13 + UPSTREAM_TAIL_SHOWN - 2);
	assert_string_equal(buf + strlen(buf) - 5, "?z?\xc3\xa9");

	/* A small buffer: cut, terminated, never mid-character. */
	memset(&t, 0, sizeof(t));
	upstream_tail_add(&t, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 10);
	upstream_error_line(small, sizeof(small), "fastcgi: x", &t);
	assert_string_equal(small, "fastcgi: x: \xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9");
	upstream_error_line(small, 16, "fastcgi: x", &t);
	assert_string_equal(small, "fastcgi: x: \xc3\xa9");
	upstream_error_line(small, 1, "fastcgi: x", &t);
	assert_string_equal(small, "");

	/* A tail wrapped round the ring many times keeps the last bytes. */
	memset(&t, 0, sizeof(t));
	for (i = 0; i < 1000; i++)
		upstream_tail_add(&t, "0123456789", 10);
	upstream_tail_add(&t, "END", 3);
	upstream_error_line(buf, sizeof(buf), "r", &t);
	assert_string_equal(buf + strlen(buf) - 13, "0123456789END");
}

static void
test_gate(void **state)
{
	struct upstream_gate g = { 0, 0 };
	unsigned long held = 99;
	int i;

	(void)state;
	assert_int_equal(upstream_gate_pass(&g, 1000, &held), 1);
	assert_int_equal(held, 0);
	for (i = 0; i < 500; i++)
		assert_int_equal(upstream_gate_pass(&g, 1000 + i * 100, &held),
		    0);
	assert_int_equal(upstream_gate_pass(&g, 1000 + UPSTREAM_GATE_MS - 1,
	    &held), 0);
	assert_int_equal(upstream_gate_pass(&g, 1000 + UPSTREAM_GATE_MS,
	    &held), 1);
	assert_int_equal(held, 501);
	/* It answered: the next failure is news at once. */
	upstream_gate_reset(&g);
	assert_int_equal(upstream_gate_pass(&g, 1000 + UPSTREAM_GATE_MS + 5,
	    &held), 1);
	assert_int_equal(held, 0);
	/* Monotonic time may start at 0. */
	memset(&g, 0, sizeof(g));
	assert_int_equal(upstream_gate_pass(&g, 0, &held), 1);
	assert_int_equal(upstream_gate_pass(&g, 10, &held), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_error_line),
		cmocka_unit_test(test_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
