/*
 * test_text: the shared utilities of queue/: text.c (UTF-8, CGI names,
 * ISO-8601) and buf.c (the growable buffer, its doubling and its bound).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "text.h"

static void
test_utf8(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_char("a", 1), 1);
	assert_int_equal(text_utf8_char("", 1), 1);		/* NUL */
	assert_int_equal(text_utf8_char("\xc3\xa9", 2), 2);
	assert_int_equal(text_utf8_char("\xe2\x82\xac", 3), 3);
	assert_int_equal(text_utf8_char("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(text_utf8_char("\xf0\x9f\x98\x80", 3), 0);
	assert_int_equal(text_utf8_char("\x80", 1), 0);
	/* Past U+10FFFF. */
	assert_int_equal(text_utf8_char("\xf4\x90\x80\x80", 4), 0);
	assert_true(text_utf8_valid("plain", 5));
	assert_true(text_utf8_valid("caf\xc3\xa9", 5));
	assert_true(text_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_true(text_utf8_valid("", 0));
	assert_false(text_utf8_valid("caf\xe9", 4));
	assert_false(text_utf8_valid("\xc0\xaf", 2));		/* overlong */
	assert_false(text_utf8_valid("\xe0\x80\xaf", 3));	/* overlong */
	assert_false(text_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(text_utf8_valid("a\0b", 3));
	assert_false(text_utf8_valid("\xe2\x82", 2));		/* truncated */
}

static void
test_sanitize(void **state)
{
	char *s;

	(void)state;
	s = text_utf8_sanitize("caf\xc3\xa9");
	assert_string_equal(s, "caf\xc3\xa9");
	free(s);
	s = text_utf8_sanitize("a\xe9z\xe2\x82");
	assert_string_equal(s, "a\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	s = text_utf8_sanitize("");
	assert_string_equal(s, "");
	free(s);
}

static void
test_cgi_name(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(text_cgi_name("X-GitHub-Delivery", buf, sizeof(buf)),
	    0);
	assert_string_equal(buf, "HTTP_X_GITHUB_DELIVERY");
	assert_int_equal(text_cgi_name("user_agent", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "HTTP_USER_AGENT");
	assert_int_equal(text_cgi_name("bad header", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "HTTP_BAD_HEADER");
	assert_int_equal(text_cgi_name("", buf, sizeof(buf)), -1);
	assert_int_equal(text_cgi_name(NULL, buf, sizeof(buf)), -1);
	/* "HTTP_" + 26 + NUL = 32 fits; one more does not. */
	assert_int_equal(text_cgi_name("abcdefghijklmnopqrstuvwxyz", buf,
	    sizeof(buf)), 0);
	assert_int_equal(text_cgi_name("abcdefghijklmnopqrstuvwxyz0", buf,
	    sizeof(buf)), -1);
}

static void
test_hex(void **state)
{
	unsigned char out[4];

	(void)state;
	assert_int_equal(text_hexval('0'), 0);
	assert_int_equal(text_hexval('9'), 9);
	assert_int_equal(text_hexval('a'), 10);
	assert_int_equal(text_hexval('F'), 15);
	assert_int_equal(text_hexval('g'), -1);
	assert_int_equal(text_hexval('\0'), -1);
	assert_int_equal(text_hex_decode("00ffA07b", 8, out), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0xa0);
	assert_int_equal(out[3], 0x7b);
	assert_int_equal(text_hex_decode("abc", 3, out), -1);	/* odd */
	assert_int_equal(text_hex_decode("0g", 2, out), -1);
	assert_int_equal(text_hex_decode(" 1", 2, out), -1);
	assert_int_equal(text_hex_decode("", 0, out), 0);
}

static void
test_iso8601(void **state)
{
	char iso[40];

	(void)state;
	text_iso8601(1747744496789LL, iso, sizeof(iso));
	assert_string_equal(iso, "2025-05-20T12:34:56.789Z");
	text_iso8601(0, iso, sizeof(iso));
	assert_string_equal(iso, "1970-01-01T00:00:00.000Z");
}

/* RFC 3339 date-times in, ms out; anything else refused. */
static void
test_rfc3339(void **state)
{
	const char *bad[] = { "", "2025-05-20", "2025-05-20T12:34:56",
	    "2025-05-20 12:34:56Z", "2025-5-20T12:34:56Z",
	    "2025-05-20T12:34:56ZZ", "2025-05-20T12:34:56.Z",
	    "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z",
	    "2025-04-31T00:00:00Z", "2025-02-29T00:00:00Z",
	    "2100-02-29T00:00:00Z", "2025-05-20T24:00:00Z",
	    "2025-05-20T12:60:00Z", "2025-05-20T12:34:61Z",
	    "2025-05-20T12:34:56+0100", "2025-05-20T12:34:56+24:00",
	    "2025-05-20T12:34:56 +01:00", " 2025-05-20T12:34:56Z",
	    "+2025-05-20T12:34:56Z", NULL };
	int64_t ms;
	size_t i;

	(void)state;
	assert_int_equal(text_rfc3339("2025-05-20T12:34:56.789Z", &ms), 0);
	assert_int_equal(ms, 1747744496789LL);
	assert_int_equal(text_rfc3339("2025-05-20t12:34:56z", &ms), 0);
	assert_int_equal(ms, 1747744496000LL);
	assert_int_equal(text_rfc3339("2025-05-20T14:34:56.7891+02:00",
	    &ms), 0);
	assert_int_equal(ms, 1747744496789LL);
	assert_int_equal(text_rfc3339("2025-05-20T07:04:56.5-05:30", &ms),
	    0);
	assert_int_equal(ms, 1747744496500LL);
	assert_int_equal(text_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
	assert_int_equal(text_rfc3339("2000-02-29T00:00:00Z", &ms), 0);
	assert_int_equal(text_rfc3339("2016-12-31T23:59:60Z", &ms), 0);
	assert_int_equal(ms, 1483228800000LL);	/* the leap second */
	for (i = 0; bad[i] != NULL; i++) {
		ms = 42;
		if (text_rfc3339(bad[i], &ms) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(ms, 42);
	}
}

static void
test_buf(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 0);
	assert_null(b.data);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_reserve(&b, 10), 0);
	assert_int_equal(b.cap, 10);		/* the first one exact */
	assert_int_equal(b.len, 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(b.len, 3000);
	assert_true(b.cap >= 3000 && b.cap < 6000);	/* doubled */
	assert_memory_equal(b.data + 2997, "abc", 3);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
	assert_int_equal(b.len, 3000);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

/* A bounded buffer never holds more than its bound. */
static void
test_buf_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_reserve(&b, 60), 0);
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(b.cap, 60);
	b.len = 60;
	assert_int_equal(buf_reserve(&b, 1), 0);
	assert_int_equal(b.cap, 100);		/* doubling stops at the bound */
	b.len = 100;
	assert_int_equal(buf_append(&b, "y", 1), -1);
	assert_int_equal(b.len, 100);
	assert_int_equal(buf_reserve(&b, 0), 0);
	buf_free(&b);
	assert_int_equal(b.max, 100);
}

/* Arrays grow from their first size by doubling, and fail unchanged. */
static void
test_array_grow(void **state)
{
	struct { int a, b; } *v = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(array_grow(&v, &cap, 0, sizeof(*v), 8), 0);
	assert_null(v);
	assert_int_equal(array_grow(&v, &cap, 1, sizeof(*v), 8), 0);
	assert_int_equal(cap, 8);
	v[7].a = 7;
	assert_int_equal(array_grow(&v, &cap, 8, sizeof(*v), 8), 0);
	assert_int_equal(cap, 8);		/* fits: nothing moves */
	assert_int_equal(array_grow(&v, &cap, 9, sizeof(*v), 8), 0);
	assert_int_equal(cap, 16);
	assert_int_equal(v[7].a, 7);
	assert_int_equal(array_grow(&v, &cap, 100, sizeof(*v), 8), 0);
	assert_int_equal(cap, 128);		/* doubled until it fits */
	assert_int_equal(array_grow(&v, &cap, SIZE_MAX / 4, sizeof(*v), 8),
	    -1);
	assert_int_equal(cap, 128);
	assert_int_equal(v[7].a, 7);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_cgi_name),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_array_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
