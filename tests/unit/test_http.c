/*
 * test_http: the http handler's pure parts, without a network: stored
 * header keys back to header names, the request's header list (hop-by-hop
 * headers, those the Connection header names, Proxy, Host, the length and
 * the client's encodings left out; values that would split a header line
 * refused; Content-Type and the Fcgiq-* headers fcgiq's own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "store.h"

/* The value of header name in h, or NULL; how many times it is there in
 * *count. */
static const char *
hget(char **h, const char *name, int *count)
{
	const char *v = NULL;
	size_t nl = strlen(name);

	*count = 0;
	for (; *h != NULL; h++)
		if (strncmp(*h, name, nl) == 0 &&
		    ((*h)[nl] == ':' || (*h)[nl] == ';')) {
			(*count)++;
			v = (*h)[nl] == ';' ? "" : *h + nl + 2;
		}
	return v;
}

static void
test_header_name(void **state)
{
	char b[64];

	(void)state;
	assert_int_equal(http_header_name("HTTP_X_GITHUB_EVENT", b, sizeof(b)),
	    0);
	assert_string_equal(b, "X-Github-Event");
	assert_int_equal(http_header_name("HTTP_USER_AGENT", b, sizeof(b)), 0);
	assert_string_equal(b, "User-Agent");
	assert_int_equal(http_header_name("HTTP_TE", b, sizeof(b)), 0);
	assert_string_equal(b, "Te");
	/* Already a header name (fcgiqctl, an older store): as it is. */
	assert_int_equal(http_header_name("X-Custom", b, sizeof(b)), 0);
	assert_string_equal(b, "X-Custom");
	assert_int_equal(http_header_name("HTTP_", b, sizeof(b)), -1);
	assert_int_equal(http_header_name("", b, sizeof(b)), -1);
	assert_int_equal(http_header_name("HTTP_A B", b, sizeof(b)), -1);
	assert_int_equal(http_header_name("X:Y", b, sizeof(b)), -1);
	assert_int_equal(http_header_name("HTTP_ABCDEFGH", b, 8), -1);
	assert_int_equal(http_header_name("HTTP_ABCDEF", b, 8), 0);
}

static void
test_dropped(void **state)
{
	const char *gone[] = { "Connection", "keep-alive", "TE", "Trailer",
	    "Transfer-Encoding", "Upgrade", "Proxy", "Proxy-Authorization",
	    "Proxy-Connection", "Host", "Content-Length", "Content-Type",
	    "Expect", "Accept-Encoding", "Fcgiq-Job-Id", "fcgiq-anything",
	    NULL };
	const char *kept[] = { "Authorization", "Cookie", "X-Github-Event",
	    "User-Agent", "Accept", "Proxyish", "Hosts", NULL };
	size_t i;

	(void)state;
	for (i = 0; gone[i] != NULL; i++)
		assert_true(http_header_dropped(gone[i]));
	for (i = 0; kept[i] != NULL; i++)
		assert_false(http_header_dropped(kept[i]));
}

static void
test_headers(void **state)
{
	struct store_job job;
	char **h;
	int n;

	(void)state;
	memset(&job, 0, sizeof(job));
	strcpy(job.id, "abcDEF123");
	job.queue = "deploy";
	job.attempts = 3;
	job.content_type = "application/json";
	job.headers = "{\"HTTP_HOST\":\"front.example\","
	    "\"HTTP_CONNECTION\":\"keep-alive, X-Hop\","
	    "\"HTTP_X_HOP\":\"1\",\"HTTP_KEEP_ALIVE\":\"300\","
	    "\"HTTP_PROXY\":\"http://evil:3128\","
	    "\"HTTP_TRANSFER_ENCODING\":\"chunked\","
	    "\"HTTP_UPGRADE\":\"h2c\",\"HTTP_TE\":\"trailers\","
	    "\"HTTP_CONTENT_LENGTH\":\"99\",\"HTTP_EXPECT\":\"100-continue\","
	    "\"HTTP_ACCEPT_ENCODING\":\"gzip\","
	    "\"HTTP_FCGIQ_JOB_ID\":\"forged\","
	    "\"HTTP_X_GITHUB_EVENT\":\"push\","
	    "\"HTTP_X_EMPTY\":\"\","
	    "\"HTTP_X_SPLIT\":\"a\\r\\nInjected: 1\","
	    "\"HTTP_X_NUL\":\"a\\u0000b\","
	    "\"HTTP_X_LIST\":[\"a\",\"b\"],"
	    "\"HTTP_AUTHORIZATION\":\"Bearer t\"}";
	assert_non_null(h = http_headers(&job));
	assert_string_equal(hget(h, "Content-Type", &n), "application/json");
	assert_int_equal(n, 1);
	assert_string_equal(hget(h, "X-Github-Event", &n), "push");
	assert_string_equal(hget(h, "Authorization", &n), "Bearer t");
	assert_string_equal(hget(h, "X-List", &n), "a, b");
	/* "X-Empty;": curl's way to send a header with an empty value. */
	assert_string_equal(hget(h, "X-Empty", &n), "");
	assert_int_equal(n, 1);
	assert_string_equal(hget(h, "Fcgiq-Job-Id", &n), "abcDEF123");
	assert_int_equal(n, 1);
	assert_string_equal(hget(h, "Fcgiq-Queue", &n), "deploy");
	assert_string_equal(hget(h, "Fcgiq-Attempt", &n), "3");
	assert_null(hget(h, "Host", &n));
	assert_null(hget(h, "Connection", &n));
	assert_null(hget(h, "X-Hop", &n));
	assert_null(hget(h, "Keep-Alive", &n));
	assert_null(hget(h, "Proxy", &n));
	assert_null(hget(h, "Transfer-Encoding", &n));
	assert_null(hget(h, "Upgrade", &n));
	assert_null(hget(h, "Te", &n));
	assert_null(hget(h, "Content-Length", &n));
	assert_null(hget(h, "Accept-Encoding", &n));
	assert_null(hget(h, "X-Split", &n));
	assert_null(hget(h, "X-Nul", &n));
	assert_null(hget(h, "Injected", &n));
	/* Expect: only curl's removal of its own ("Expect:"). */
	assert_non_null(hget(h, "Expect", &n));
	assert_int_equal(n, 1);
	http_headers_free(h);

	/* No type: an empty "Content-Type:" keeps curl from adding one. */
	job.content_type = NULL;
	job.headers = NULL;
	assert_non_null(h = http_headers(&job));
	hget(h, "Content-Type", &n);
	assert_int_equal(n, 1);
	assert_string_equal(h[0], "Content-Type:");
	http_headers_free(h);
}

static void
test_url(void **state)
{
	char *u;

	(void)state;
	u = http_url("http://h/x", "a=1&b=2");
	assert_string_equal(u, "http://h/x?a=1&b=2");
	free(u);
	u = http_url("http://h/x?k=v", "a=1");
	assert_string_equal(u, "http://h/x?k=v&a=1");
	free(u);
	u = http_url("http://h/x", "");
	assert_string_equal(u, "http://h/x");
	free(u);
	u = http_url("http://h/x", NULL);
	assert_string_equal(u, "http://h/x");
	free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_name),
		cmocka_unit_test(test_dropped),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
