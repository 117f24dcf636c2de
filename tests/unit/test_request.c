/*
 * Unit tests of fcgi-app/request.c (the pure parsing of a request) and the
 * rendering half of fcgi-app/response.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "request.h"
#include "response.h"
#include "store.h"

static void
test_content_length(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(req_content_length(NULL, &v), 1);
	assert_int_equal(req_content_length("", &v), 1);
	assert_int_equal(req_content_length("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(req_content_length("1048576", &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(req_content_length("007", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(req_content_length("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(req_content_length("9223372036854775808", &v), -1);
	assert_int_equal(req_content_length("18446744073709551616", &v), -1);
	assert_int_equal(req_content_length("99999999999999999999999", &v), -1);
	/* Caddy's "length unknown" (a chunked upload): like absent, and
	 * only that exact spelling. */
	v = 42;
	assert_int_equal(req_content_length("-1", &v), 1);
	assert_int_equal(v, 42);
	assert_int_equal(req_content_length("-2", &v), -1);
	assert_int_equal(req_content_length("-0", &v), -1);
	assert_int_equal(req_content_length("-01", &v), -1);
	assert_int_equal(req_content_length("-1 ", &v), -1);
	assert_int_equal(req_content_length(" -1", &v), -1);
	assert_int_equal(req_content_length("--1", &v), -1);
	assert_int_equal(req_content_length("-10", &v), -1);
	assert_int_equal(req_content_length("-", &v), -1);
	assert_int_equal(req_content_length("+5", &v), -1);
	assert_int_equal(req_content_length(" 5", &v), -1);
	assert_int_equal(req_content_length("5 ", &v), -1);
	assert_int_equal(req_content_length("0x10", &v), -1);
	assert_int_equal(req_content_length("1e3", &v), -1);
	assert_int_equal(req_content_length("abc", &v), -1);
}

static void
test_param(void **state)
{
	char *envp[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/a=b",
	    "EMPTY=", "LONGER_NAME=x", NULL };

	(void)state;
	assert_string_equal(req_param(envp, "REQUEST_METHOD"), "POST");
	assert_string_equal(req_param(envp, "REQUEST_URI"), "/a=b");
	assert_string_equal(req_param(envp, "EMPTY"), "");
	assert_null(req_param(envp, "LONGER"));
	assert_null(req_param(envp, "MISSING"));
	assert_null(req_param(NULL, "X"));
}

#define ID	"AbCdEfGhIjKlMnOpQr_-09"		/* of before the time prefix */
#define ID30	"-0Zx_abcAbCdEfGhIjKlMnOpQr_-09"

/* One pass finds what req_param finds: the first of a repeated name. */
static void
test_parse(void **state)
{
	char *envp[] = { "REQUEST_METHOD=POST", "FCGIQ_QUEUE=",
	    "REQUEST_URI=/in?a=1", "FCGIQ_QUEUE=mail", "QUERY_STRING=a=1",
	    "REQUEST_METHOD=GET",
	    "FCGIQ_STATUS_PREFIX=no-slash", "HTTP_IDEMPOTENCY_KEY=k",
	    "CONTENT_TYPE=text/plain", "CONTENT_LENGTH=3",
	    "REMOTE_ADDR=127.0.0.1", NULL };
	char *head[] = { "REQUEST_METHOD=HEAD", "FCGIQ_STATUS_PREFIX=/api/",
	    "REQUEST_URI=/api/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL };
	struct request rq;

	(void)state;
	req_parse(&rq, envp, FCGI_RESPONDER, WIRE_OK, "/jobs/");
	assert_string_equal(rq.method, "POST");
	assert_string_equal(rq.uri, "/in?a=1");
	assert_string_equal(rq.query, "a=1");
	assert_string_equal(rq.queue, "default");	/* the first is empty */
	assert_string_equal(rq.prefix, "/jobs/");	/* not usable */
	assert_string_equal(rq.idempotency, "k");
	assert_string_equal(rq.content_type, "text/plain");
	assert_string_equal(rq.content_length, "3");
	assert_string_equal(rq.remote_addr, "127.0.0.1");
	assert_null(rq.dedupe_header);
	assert_false(rq.head);
	assert_int_equal(rq.route, REQ_ROUTE_ENQUEUE);
	assert_null(rq.headers);

	req_parse(&rq, head, FCGI_RESPONDER, WIRE_OK, "/jobs/");
	assert_string_equal(rq.prefix, "/api/");
	assert_true(rq.head);
	assert_int_equal(rq.route, REQ_ROUTE_STATUS_HEAD);
	assert_string_equal(rq.id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_null(rq.content_length);

	req_parse(&rq, NULL, FCGI_RESPONDER, WIRE_OK, "/jobs/");
	assert_string_equal(rq.uri, "");
	assert_int_equal(rq.route, REQ_ROUTE_BAD_METHOD);
	assert_string_equal(rq.allow, "POST, PUT, PATCH");
}

/* One check, in the contract's order; an intake that passes has its
 * queue, length, headers and key. */
static void
test_check(void **state)
{
	char *ok[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "CONTENT_LENGTH=3", "HTTP_X_A=b", "HTTP_IDEMPOTENCY_KEY=k1", NULL };
	char *bad[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_QUEUE=nope", "CONTENT_LENGTH=x", NULL };
	char *badlen[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "CONTENT_LENGTH=x", "HTTP_IDEMPOTENCY_KEY=", NULL };
	char *get[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/in",
	    "FCGIQ_QUEUE=nope", NULL };
	char *unknown[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "CONTENT_LENGTH=-1", NULL };
	char *minus2[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "CONTENT_LENGTH=-2", NULL };
	struct request rq;
	struct req_verdict v;
	struct config c;
	char err[128];

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	req_parse(&rq, ok, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_string_equal(rq.qc->name, "default");
	assert_true(rq.have_length);
	assert_int_equal(rq.length, 3);
	assert_string_equal(rq.key, "k1");
	assert_string_equal(rq.headers,
	    "{\"HTTP_IDEMPOTENCY_KEY\":\"k1\",\"HTTP_X_A\":\"b\"}");
	req_free(&rq);
	assert_null(rq.headers);

	req_parse(&rq, ok, FCGI_AUTHORIZER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 400);
	req_parse(&rq, ok, FCGI_RESPONDER, WIRE_BAD_TOO_LARGE,
	    c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 431);
	assert_string_equal(v.error, "header fields too large");

	/* The queue before the length, the length before the key. */
	req_parse(&rq, bad, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 404);
	assert_string_equal(v.error, "unknown queue");
	assert_string_equal(v.detail, "nope");
	req_parse(&rq, badlen, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 400);
	assert_string_equal(v.error, "bad Content-Length");
	assert_null(rq.headers);

	/* Caddy's -1: no length, so no 413 before the body; -2 is bad. */
	req_parse(&rq, unknown, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_false(rq.have_length);
	req_free(&rq);
	req_parse(&rq, minus2, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 400);
	assert_string_equal(v.error, "bad Content-Length");

	/* Not an intake: the queue is not the router's to check. */
	req_parse(&rq, get, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_int_equal(rq.route, REQ_ROUTE_BAD_METHOD);
	config_free(&c);
}

/* FCGIQ_ACCEPT_STATUS: 202 unless 200; any other value is the location's
 * mistake, refused (500) before the queue is looked up. */
static void
test_accept_status(void **state)
{
	char *dflt[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in", NULL };
	char *ok200[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_ACCEPT_STATUS=200", "FCGIQ_ACCEPT_STATUS=201", NULL };
	char *ok202[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_ACCEPT_STATUS=202", NULL };
	char *empty[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_ACCEPT_STATUS=", NULL };
	const char *bad[] = { "201", "204", "200 ", "0200", "ok", NULL };
	char *badp[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_QUEUE=nope", NULL, NULL };
	struct request rq;
	struct req_verdict v;
	struct config c;
	char err[128], param[64];
	size_t i;

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	req_parse(&rq, dflt, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_int_equal(rq.accept_status, 202);
	req_free(&rq);
	req_parse(&rq, ok200, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_int_equal(rq.accept_status, 200);	/* the first */
	req_free(&rq);
	req_parse(&rq, ok202, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_int_equal(rq.accept_status, 202);
	req_free(&rq);
	req_parse(&rq, empty, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	assert_int_equal(rq.accept_status, 202);
	req_free(&rq);
	for (i = 0; bad[i] != NULL; i++) {
		snprintf(param, sizeof(param), "FCGIQ_ACCEPT_STATUS=%s",
		    bad[i]);
		badp[3] = param;
		req_parse(&rq, badp, FCGI_RESPONDER, WIRE_OK,
		    c.status_prefix);
		assert_int_equal(req_check(&rq, &c, &v), 500);
		assert_string_equal(v.error, "bad FCGIQ_ACCEPT_STATUS");
		assert_null(rq.headers);
	}
	config_free(&c);
}

/* FCGIQ_ROLE: metrics takes the whole location for GET and HEAD (even
 * under the status prefix), 405 otherwise; intake or none is intake; any
 * other value is the location's mistake (500). */
static void
test_role(void **state)
{
	char *get[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/jobs/x",
	    "FCGIQ_ROLE=metrics", NULL };
	char *head[] = { "REQUEST_METHOD=HEAD", "REQUEST_URI=/metrics",
	    "FCGIQ_ROLE=metrics", NULL };
	char *post[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/metrics",
	    "FCGIQ_ROLE=metrics", NULL };
	char *intake[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in",
	    "FCGIQ_ROLE=intake", NULL };
	char *bad[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/in",
	    "FCGIQ_ROLE=Metrics", NULL };
	struct request rq;
	struct req_verdict v;
	struct config c;
	char err[128];

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	req_parse(&rq, get, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(rq.route, REQ_ROUTE_METRICS);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	req_free(&rq);
	req_parse(&rq, head, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(rq.route, REQ_ROUTE_METRICS);
	assert_int_equal(rq.head, 1);
	req_free(&rq);
	req_parse(&rq, post, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(rq.route, REQ_ROUTE_BAD_METHOD);
	assert_string_equal(rq.allow, "GET, HEAD");
	req_free(&rq);
	req_parse(&rq, intake, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(rq.route, REQ_ROUTE_ENQUEUE);
	assert_int_equal(req_check(&rq, &c, &v), 0);
	req_free(&rq);
	req_parse(&rq, bad, FCGI_RESPONDER, WIRE_OK, c.status_prefix);
	assert_int_equal(req_check(&rq, &c, &v), 500);
	assert_string_equal(v.error, "bad FCGIQ_ROLE");
	req_free(&rq);
	config_free(&c);
}

static const char *sched_why;	/* check_sched's refusal */

/* Check an intake with params p (NULL-terminated, after the method and
 * URI) at now; the status, *rq filled, sched_why the error. */
static int
check_sched(struct request *rq, const struct config *c, int64_t now,
    char **p)
{
	char *envp[16] = { "REQUEST_METHOD=POST", "REQUEST_URI=/in" };
	struct req_verdict v;
	size_t i;
	int rc;

	for (i = 0; p[i] != NULL; i++)
		envp[2 + i] = p[i];
	envp[2 + i] = NULL;
	req_parse(rq, envp, FCGI_RESPONDER, WIRE_OK, c->status_prefix);
	rq->now = now;
	rc = req_check(rq, c, &v);
	req_free(rq);
	sched_why = rc != 0 ? v.error : NULL;
	return rc;
}

#define SCHED(rq, c, now, ...)						\
	check_sched((rq), (c), (now), (char *[]){ __VA_ARGS__, NULL })

/*
 * Scheduling from the request: the location's defaults (FCGIQ_DELAY,
 * FCGIQ_PRIORITY; a bad value is a 500), the client's Fcgiq-Delay,
 * Fcgiq-Run-At and Fcgiq-Priority only with FCGIQ_CLIENT_SCHEDULE on
 * (a bad value is a 400), ignored without it.
 */
static void
test_schedule(void **state)
{
	struct request rq;
	struct config c;
	char err[128];
	int64_t now = 1796000000000LL;	/* 2026-11-30T... */

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	c.queues[0].priority = 3;
	assert_int_equal(SCHED(&rq, &c, now, "X=1"), 0);
	assert_int_equal(rq.priority, 3);
	assert_int_equal(rq.run_at, 0);

	/* The location's defaults. */
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_DELAY=30s",
	    "FCGIQ_PRIORITY=5"), 0);
	assert_int_equal(rq.priority, 5);
	assert_int_equal(rq.run_at, now + 30000);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_DELAY=",
	    "FCGIQ_PRIORITY="), 0);
	assert_int_equal(rq.priority, 3);
	assert_int_equal(rq.run_at, 0);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_DELAY=soon"), 500);
	assert_string_equal(sched_why, "bad FCGIQ_DELAY");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_DELAY=367d"), 500);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_PRIORITY=1001"), 500);
	assert_string_equal(sched_why, "bad FCGIQ_PRIORITY");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=yes"),
	    500);
	assert_string_equal(sched_why, "bad FCGIQ_CLIENT_SCHEDULE");

	/* The client's headers, ignored unless the location allows them. */
	assert_int_equal(SCHED(&rq, &c, now, "HTTP_FCGIQ_DELAY=10m",
	    "HTTP_FCGIQ_PRIORITY=9", "FCGIQ_DELAY=30s"), 0);
	assert_int_equal(rq.priority, 3);
	assert_int_equal(rq.run_at, now + 30000);
	assert_int_equal(SCHED(&rq, &c, now, "HTTP_FCGIQ_DELAY=bad",
	    "HTTP_FCGIQ_RUN_AT=bad", "HTTP_FCGIQ_PRIORITY=bad",
	    "FCGIQ_CLIENT_SCHEDULE=off"), 0);
	assert_int_equal(SCHED(&rq, &c, now, "HTTP_FCGIQ_DELAY=10m",
	    "HTTP_FCGIQ_PRIORITY=-9", "FCGIQ_DELAY=30s", "FCGIQ_PRIORITY=5",
	    "FCGIQ_CLIENT_SCHEDULE=on"), 0);
	assert_int_equal(rq.priority, -9);
	assert_int_equal(rq.run_at, now + 600000);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_DELAY=30s",
	    "FCGIQ_CLIENT_SCHEDULE=on"), 0);	/* no header: the default */
	assert_int_equal(rq.run_at, now + 30000);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_RUN_AT=2026-11-30T10:00:00+01:00"), 0);
	assert_int_equal(rq.run_at, 1796029200000LL);
	/* The past is now, never earlier (run_at orders the queue). */
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_RUN_AT=2000-01-01T00:00:00Z"), 0);
	assert_int_equal(rq.run_at, 0);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_DELAY=0"), 0);
	assert_int_equal(rq.run_at, 0);

	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_DELAY=10 minutes"), 400);
	assert_string_equal(sched_why, "bad Fcgiq-Delay");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_DELAY=-5"), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_DELAY=400d"), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_RUN_AT=tomorrow"), 400);
	assert_string_equal(sched_why, "bad Fcgiq-Run-At");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_RUN_AT=2099-01-01T00:00:00Z"), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_RUN_AT=2026-12-01T00:00:00Z",
	    "HTTP_FCGIQ_DELAY=1m"), 400);
	assert_string_equal(sched_why, "conflicting schedule");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_PRIORITY=1001"), 400);
	assert_string_equal(sched_why, "bad Fcgiq-Priority");
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_PRIORITY= 5"), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_PRIORITY=+5"), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_PRIORITY="), 400);
	assert_int_equal(SCHED(&rq, &c, now, "FCGIQ_CLIENT_SCHEDULE=on",
	    "HTTP_FCGIQ_PRIORITY=-1000"), 0);
	assert_int_equal(rq.priority, -1000);
	config_free(&c);
}

/* If-None-Match against a tag: lists, W/, "*", and what is not a tag. */
/* RFC 7240: the first wait preference, delta-seconds, else ignored. */
static void
test_prefer_wait(void **state)
{
	(void)state;
	assert_int_equal(req_prefer_wait(NULL), -1);
	assert_int_equal(req_prefer_wait(""), -1);
	assert_int_equal(req_prefer_wait("wait=10"), 10);
	assert_int_equal(req_prefer_wait("WAIT = 7"), 7);
	assert_int_equal(req_prefer_wait("wait=\"3\""), 3);
	assert_int_equal(req_prefer_wait("respond-async, wait=5"), 5);
	assert_int_equal(req_prefer_wait("return=minimal; x=\"a,b\", wait=2"), 2);
	assert_int_equal(req_prefer_wait("wait=4;foo=bar"), 4);
	assert_int_equal(req_prefer_wait("wait=0"), 0);
	assert_int_equal(req_prefer_wait("wait=99999999999999999999"), INT_MAX);
	/* The first one decides, a bad one is ignored. */
	assert_int_equal(req_prefer_wait("wait=1, wait=9"), 1);
	assert_int_equal(req_prefer_wait("wait=x, wait=9"), -1);
	assert_int_equal(req_prefer_wait("wait"), -1);
	assert_int_equal(req_prefer_wait("wait="), -1);
	assert_int_equal(req_prefer_wait("wait=-1"), -1);
	assert_int_equal(req_prefer_wait("wait=1.5"), -1);
	assert_int_equal(req_prefer_wait("wait=\"3"), -1);
	assert_int_equal(req_prefer_wait("waiting=3"), -1);
	assert_int_equal(req_prefer_wait("respond-async"), -1);
}

static void
test_etag_match(void **state)
{
	const char *t = "\"0123456789abcdef\"";

	(void)state;
	assert_false(req_etag_match(NULL, t));
	assert_false(req_etag_match("", t));
	assert_true(req_etag_match("\"0123456789abcdef\"", t));
	assert_true(req_etag_match("*", t));
	assert_true(req_etag_match("W/\"0123456789abcdef\"", t));
	assert_true(req_etag_match("\"x\", \"0123456789abcdef\"", t));
	assert_true(req_etag_match("\"x\",W/\"0123456789abcdef\" ,\"y\"", t));
	assert_true(req_etag_match("bogus, \"0123456789abcdef\"", t));
	assert_false(req_etag_match("\"0123456789abcde\"", t));
	assert_false(req_etag_match("\"0123456789abcdef0\"", t));
	assert_false(req_etag_match("0123456789abcdef", t));
	assert_false(req_etag_match("\"x\", \"0123456789abcdef", t));
	assert_false(req_etag_match("\"a,\"0123456789abcdef\"\"", t));
}

static void
test_route(void **state)
{
	char id[STORE_ID_LEN + 1];
	const char *allow;

	(void)state;
	assert_int_equal(strlen(ID), STORE_ID_LEN_V1);
	assert_int_equal(strlen(ID30), STORE_ID_LEN);
	assert_int_equal(req_route("POST", "/in", "/jobs/", id, &allow),
	    REQ_ROUTE_ENQUEUE);
	assert_int_equal(req_route("PUT", "/in?x=1", "/jobs/", id, &allow),
	    REQ_ROUTE_ENQUEUE);
	assert_int_equal(req_route("PATCH", "/", "/jobs/", id, &allow),
	    REQ_ROUTE_ENQUEUE);
	assert_int_equal(req_route("GET", "/in", "/jobs/", id, &allow),
	    REQ_ROUTE_BAD_METHOD);
	assert_string_equal(allow, "POST, PUT, PATCH");
	assert_int_equal(req_route("OPTIONS", "/in", "/jobs/", id, &allow),
	    REQ_ROUTE_BAD_METHOD);
	assert_int_equal(req_route(NULL, NULL, "/jobs/", id, &allow),
	    REQ_ROUTE_BAD_METHOD);

	assert_int_equal(req_route("GET", "/jobs/" ID, "/jobs/", id, &allow),
	    REQ_ROUTE_STATUS);
	assert_string_equal(id, ID);
	assert_int_equal(req_route("GET", "/jobs/" ID "?pretty", "/jobs/", id,
	    &allow), REQ_ROUTE_STATUS);
	assert_string_equal(id, ID);
	assert_int_equal(req_route("HEAD", "/jobs/" ID, "/jobs/", id, &allow),
	    REQ_ROUTE_STATUS_HEAD);
	assert_int_equal(req_route("DELETE", "/jobs/" ID, "/jobs/", id,
	    &allow), REQ_ROUTE_CANCEL);
	assert_int_equal(req_route("POST", "/jobs/" ID, "/jobs/", id, &allow),
	    REQ_ROUTE_BAD_METHOD);
	assert_string_equal(allow, "GET, HEAD, DELETE");
	/* <id>/result: GET and HEAD only. */
	assert_int_equal(req_route("GET", "/jobs/" ID30 "/result?x", "/jobs/",
	    id, &allow), REQ_ROUTE_RESULT);
	assert_string_equal(id, ID30);
	assert_int_equal(req_route("HEAD", "/jobs/" ID "/result", "/jobs/",
	    id, &allow), REQ_ROUTE_RESULT_HEAD);
	assert_string_equal(id, ID);
	assert_int_equal(req_route("DELETE", "/jobs/" ID "/result", "/jobs/",
	    id, &allow), REQ_ROUTE_BAD_METHOD);
	assert_string_equal(allow, "GET, HEAD");
	assert_int_equal(req_route("GET", "/jobs/" ID "/results", "/jobs/",
	    id, &allow), REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/jobs//result", "/jobs/", id,
	    &allow), REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/jobs/", "/jobs/", id, &allow),
	    REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/jobs/short", "/jobs/", id,
	    &allow), REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/jobs/" ID "x", "/jobs/", id,
	    &allow), REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/jobs/AbCdEfGhIjKlMnOpQr/.09",
	    "/jobs/", id, &allow), REQ_ROUTE_NO_JOB);
	assert_int_equal(req_route("GET", "/api/j/" ID, "/api/j/", id,
	    &allow), REQ_ROUTE_STATUS);
	assert_true(req_valid_id(ID));
	assert_true(req_valid_id(ID30));
	assert_false(req_valid_id(ID30 "A"));
	assert_false(req_valid_id("AbCdEfGhIjKlMnOpQr_-09_-09"));	/* 26 */
	assert_int_equal(req_route("GET", "/jobs/" ID30 "?x", "/jobs/", id,
	    &allow), REQ_ROUTE_STATUS);
	assert_string_equal(id, ID30);
	assert_false(req_valid_id(""));
	assert_false(req_valid_id(ID "A"));
	assert_false(req_valid_id("AbCdEfGhIjKlMnOpQr%2F09"));
}

/* An id of the current layout made at ms (the random part all 'A'). */
static void
id_at(int64_t ms, char id[STORE_ID_LEN + 1])
{
	static const char a[] = "-0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
	uint64_t t = (uint64_t)ms;
	int i;

	for (i = 7; i >= 1; i--, t >>= 6)
		id[i] = a[t & 63];
	id[0] = a[1 + (t & 31)];
	memset(id + 8, 'A', STORE_ID_LEN - 8);
	id[STORE_ID_LEN] = '\0';
}

/*
 * 410 or 404 for an id the database does not hold: gone when its time
 * lies before now minus the shortest keep_done; not when newer, from the
 * future, from before fcgiq's ids had a time, or without one.
 */
static void
test_id_gone(void **state)
{
	struct config c;
	struct queue_conf *q2;
	char err[256], id[STORE_ID_LEN + 1];
	int64_t now = 1796000000000LL, t, day = 86400000LL;	/* 2026-11 */

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	assert_int_equal(c.queues[0].keep_done_ms, 7 * day);
	id_at(now - 8 * day, id);
	assert_int_equal(store_id_time(id, &t), 1);
	assert_int_equal(t, now - 8 * day);
	assert_int_equal(req_id_gone(id, &c, now), 1);
	id_at(now - 7 * day - 1, id);
	assert_int_equal(req_id_gone(id, &c, now), 1);
	id_at(now - 7 * day, id);
	assert_int_equal(req_id_gone(id, &c, now), 0);
	id_at(now - 6 * day, id);
	assert_int_equal(req_id_gone(id, &c, now), 0);
	id_at(now + day, id);				/* the future */
	assert_int_equal(req_id_gone(id, &c, now), 0);
	id_at(REQ_ID_EPOCH_MS - 1, id);			/* before fcgiq's */
	assert_int_equal(req_id_gone(id, &c, now), 0);
	id_at(REQ_ID_EPOCH_MS, id);
	assert_int_equal(req_id_gone(id, &c, now), 1);
	assert_int_equal(req_id_gone(ID, &c, now), 0);	/* no time */
	assert_int_equal(store_id_time(ID, &t), 0);
	assert_int_equal(store_id_time("x", &t), 0);
	/* The old layout ('-' first) carries its time too. */
	assert_int_equal(store_id_time("-Wzzzzzz" "AAAAAAAAAAAAAAAAAAAAAA",
	    &t), 1);
	assert_int_equal(t, (int64_t)33 << 36 | (((int64_t)1 << 36) - 1));

	/* The shortest keep_done of all queues sets the horizon: a status
	 * URL does not say which queue its job was in. */
	q2 = realloc(c.queues, 2 * sizeof(*q2));
	assert_non_null(q2);
	c.queues = q2;
	memset(&c.queues[1], 0, sizeof(c.queues[1]));
	c.queues[1].keep_done_ms = day;
	c.nqueues = 2;
	id_at(now - 2 * day, id);
	assert_int_equal(req_id_gone(id, &c, now), 1);
	c.nqueues = 1;
	assert_int_equal(req_id_gone(id, &c, now), 0);
	config_free(&c);
}

static void
test_headers_json(void **state)
{
	char *envp[] = { "HTTP_HOST=example.org", "HTTP_PROXY=evil:1",
	    "CONTENT_TYPE=text/plain", "HTTP_X_QUOTE=a\"b\\c",
	    "HTTP_X_LATIN=caf\xe9", "HTTP_CONTENT_TYPE=text/plain",
	    "HTTP_CONTENT_LENGTH=5", "HTTP_CONTENT_LENGTHS=x", NULL };
	char *many[300], name[300][32];
	char *out;
	const char *why;
	json_t *j;
	json_error_t err;
	int i;

	(void)state;
	assert_int_equal(req_headers_json(envp, 256, 65536, &out, &why), 0);
	j = json_loads(out, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "HTTP_HOST")),
	    "example.org");
	assert_null(json_object_get(j, "HTTP_PROXY"));
	assert_null(json_object_get(j, "CONTENT_TYPE"));
	/* Kept apart as content_type and the body: not twice. */
	assert_null(json_object_get(j, "HTTP_CONTENT_TYPE"));
	assert_null(json_object_get(j, "HTTP_CONTENT_LENGTH"));
	assert_string_equal(json_string_value(json_object_get(j,
	    "HTTP_CONTENT_LENGTHS")), "x");
	assert_string_equal(json_string_value(json_object_get(j,
	    "HTTP_X_QUOTE")), "a\"b\\c");
	assert_string_equal(json_string_value(json_object_get(j,
	    "HTTP_X_LATIN")), "caf\xef\xbf\xbd");
	json_decref(j);
	free(out);

	for (i = 0; i < 299; i++) {
		snprintf(name[i], sizeof(name[i]), "HTTP_X_%d=v", i);
		many[i] = name[i];
	}
	many[299] = NULL;
	assert_int_equal(req_headers_json(many, 256, 65536, &out, &why), -1);
	assert_null(out);
	assert_non_null(why);
	assert_int_equal(req_headers_json(many, 300, 65536, &out, &why), 0);
	free(out);
	assert_int_equal(req_headers_json(many, 300, 100, &out, &why), -1);

	char *none[] = { "REQUEST_METHOD=GET", NULL };
	assert_int_equal(req_headers_json(none, 10, 100, &out, &why), 0);
	assert_string_equal(out, "{}");
	free(out);
}

static void
test_idempotency(void **state)
{
	char *envp[] = { "HTTP_IDEMPOTENCY_KEY=k1",
	    "HTTP_X_GITHUB_DELIVERY=d-42", NULL };
	char *bad[] = { "HTTP_IDEMPOTENCY_KEY=has space", NULL };
	char *empty[] = { "HTTP_IDEMPOTENCY_KEY=", NULL };
	char *none[] = { NULL };
	const char *key;
	char buf[64];

	(void)state;
	assert_int_equal(req_idempotency_key(envp, NULL, &key), 1);
	assert_string_equal(key, "k1");
	assert_int_equal(req_idempotency_key(envp, "X-GitHub-Delivery", &key),
	    1);
	assert_string_equal(key, "d-42");
	assert_int_equal(req_idempotency_key(envp, "X-Absent", &key), 1);
	assert_string_equal(key, "k1");
	assert_int_equal(req_idempotency_key(bad, NULL, &key), -1);
	assert_int_equal(req_idempotency_key(empty, NULL, &key), -1);
	assert_int_equal(req_idempotency_key(none, NULL, &key), 0);
	assert_null(key);
	assert_int_equal(req_header_param("X-GitHub-Delivery", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "HTTP_X_GITHUB_DELIVERY");
	assert_int_equal(req_header_param("bad header", buf, sizeof(buf)), -1);
	assert_int_equal(req_header_param("", buf, sizeof(buf)), -1);
}

/* A read callback over a string, n bytes at most per call, then a
 * configurable end: 0 (clean end) or -1 (broken). */
struct src {
	const char	*p;
	size_t		 len, off, step;
	int		 end;
};

static ssize_t
src_read(void *ctx, void *buf, size_t len)
{
	struct src *s = ctx;
	size_t n = s->len - s->off;

	if (n == 0)
		return s->end;
	if (n > len)
		n = len;
	if (n > s->step)
		n = s->step;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void
test_read_body(void **state)
{
	struct src s;
	void *body;
	size_t len;

	(void)state;
	s = (struct src){ "hello", 5, 0, 2, 0 };
	assert_int_equal(req_read_body(src_read, &s, 1, 5, 100, &body, &len),
	    REQ_BODY_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "hello", 5);
	free(body);

	s = (struct src){ "hel", 3, 0, 2, 0 };
	assert_int_equal(req_read_body(src_read, &s, 1, 5, 100, &body, &len),
	    REQ_BODY_SHORT);
	assert_null(body);

	s = (struct src){ "hel", 3, 0, 2, -1 };
	assert_int_equal(req_read_body(src_read, &s, 1, 5, 100, &body, &len),
	    REQ_BODY_BROKEN);

	s = (struct src){ "hello!", 6, 0, 6, 0 };
	assert_int_equal(req_read_body(src_read, &s, 1, 5, 100, &body, &len),
	    REQ_BODY_LONG);

	s = (struct src){ "hello", 5, 0, 5, 0 };
	assert_int_equal(req_read_body(src_read, &s, 1, 5, 4, &body, &len),
	    REQ_BODY_TOO_BIG);
	assert_int_equal(s.off, 0);	/* refused before reading */

	/* No length: to the end of the stream, bounded by max. */
	s = (struct src){ "hello", 5, 0, 1, 0 };
	assert_int_equal(req_read_body(src_read, &s, 0, 0, 5, &body, &len),
	    REQ_BODY_OK);
	assert_int_equal(len, 5);
	free(body);
	s = (struct src){ "hello", 5, 0, 1, 0 };
	assert_int_equal(req_read_body(src_read, &s, 0, 0, 4, &body, &len),
	    REQ_BODY_TOO_BIG);
	s = (struct src){ "hello", 5, 0, 5, -1 };
	assert_int_equal(req_read_body(src_read, &s, 0, 0, 100, &body, &len),
	    REQ_BODY_BROKEN);

	s = (struct src){ "", 0, 0, 1, 0 };
	assert_int_equal(req_read_body(src_read, &s, 1, 0, 100, &body, &len),
	    REQ_BODY_OK);
	assert_non_null(body);
	assert_int_equal(len, 0);
	free(body);
}

static void
test_read_body_large(void **state)
{
	size_t big = 3 * 1024 * 1024 + 17, len;
	char *data = malloc(big);
	struct src s;
	void *body;

	(void)state;
	assert_non_null(data);
	memset(data, 'z', big);
	s = (struct src){ data, big, 0, 65536, 0 };
	assert_int_equal(req_read_body(src_read, &s, 0, 0, big, &body, &len),
	    REQ_BODY_OK);
	assert_int_equal(len, big);
	free(body);
	s = (struct src){ data, big, 0, 65536, 0 };
	assert_int_equal(req_read_body(src_read, &s, 0, 0, 1024 * 1024,
	    &body, &len), REQ_BODY_TOO_BIG);
	assert_true(s.off <= 1024 * 1024 + 65536);	/* bounded read */
	free(data);
}

static void
test_response(void **state)
{
	json_t *b = response_problem_json(404, "no such job", "x");
	const char *want;
	char *out;
	size_t len;

	(void)state;
	out = response_render(404, NULL, b, 0, &len);
	assert_non_null(out);
	assert_true(strncmp(out, "Status: 404 Not Found\r\n", 23) == 0);
	assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(out, "\r\n\r\n{\"type\":\"urn:fcgiq:problem:"
	    "no-such-job\",\"title\":\"no such job\",\"status\":404,"
	    "\"detail\":\"x\",\"error\":\"no such job\"}\n"));
	free(out);
	out = response_render(404, "Allow: GET\r\n", b, 1, &len);
	assert_non_null(strstr(out, "Allow: GET\r\n"));
	assert_true(len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
	free(out);
	json_decref(b);

	/* The whole problem answer: its media type; the type's slug from
	 * the title's words; no detail: the title again. */
	out = response_problem(405, "Allow: GET\r\n", "bad  Content-Length!",
	    NULL, 0, &len);
	assert_non_null(out);
	want = "Status: 405 Method Not Allowed\r\n"
	    "Content-Type: application/problem+json\r\n"
	    "Content-Length: 155\r\nCache-Control: no-store\r\n"
	    "Allow: GET\r\n\r\n"
	    "{\"type\":\"urn:fcgiq:problem:bad-content-length\","
	    "\"title\":\"bad  Content-Length!\",\"status\":405,"
	    "\"detail\":\"bad  Content-Length!\","
	    "\"error\":\"bad  Content-Length!\"}\n";
	assert_int_equal(len, strlen(want));	/* not NUL-terminated */
	assert_memory_equal(out, want, len);
	free(out);
}

static void
test_job_json(void **state)
{
	struct store_job j;
	json_t *o;

	(void)state;
	memset(&j, 0, sizeof(j));
	strcpy(j.id, ID);
	j.queue = "mail";
	j.state = STORE_JOB_DONE;
	j.attempts = 1;
	j.max_attempts = 5;
	j.created_at = 1747744496789LL;
	j.result = "\x01\xff\x02";
	j.result_len = 3;
	o = response_job_json(&j, "/jobs/" ID);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "result")),
	    "Af8C");
	assert_string_equal(json_string_value(json_object_get(o,
	    "result_encoding")), "base64");
	assert_true(json_is_null(json_object_get(o, "started_at")));
	assert_int_equal(json_integer_value(json_object_get(o, "created_at")),
	    1747744496789LL);
	json_decref(o);
	j.result = "ok\n";
	o = response_job_json(&j, NULL);
	assert_string_equal(json_string_value(json_object_get(o, "result")),
	    "ok\n");
	assert_null(json_object_get(o, "result_encoding"));
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_param),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_accept_status),
		cmocka_unit_test(test_role),
		cmocka_unit_test(test_etag_match),
		cmocka_unit_test(test_prefer_wait),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_id_gone),
		cmocka_unit_test(test_headers_json),
		cmocka_unit_test(test_idempotency),
		cmocka_unit_test(test_read_body),
		cmocka_unit_test(test_read_body_large),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_job_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
