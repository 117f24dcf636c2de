/*
 * test_router: fcgi-app/router.c's decisions, request in, answer out, over
 * a socket pair (wire.c) with the answers compared byte for byte: which
 * route a method and path take, 405 with Allow, 404 for an unknown queue
 * or job, 414, the refusals before the body, the status prefix a location
 * sets, ETag and 304 on status, FCGIQ_ACCEPT_STATUS, errors as problem
 * details.  Group commit is replaced by a stub that stores the job at once
 * (or refuses it as the test asks), and dbpool opens a fresh database, so
 * no thread but the test's own runs.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "commit.h"
#include "config.h"
#include "dbpool.h"
#include "fcgibuf.h"
#include "router.h"
#include "server.h"
#include "store.h"
#include "store-sqlite.h"
#include "wire.h"

static char	dir[] = "/tmp/test_router.XXXXXX";
static int	commit_status = COMMIT_OK;	/* what the stub answers */
static int	released;			/* server_release() calls */

/* The committer, at once on this thread. */
void
commit_submit(struct store_newjob *job, int64_t max_queued,
    struct commit_result *res)
{
	struct store *s;

	(void)max_queued;
	memset(res, 0, sizeof(*res));
	res->status = commit_status;
	if (commit_status != COMMIT_OK)
		return;
	s = dbpool_get();
	if (store_enqueue(s, job, 1) == -1)
		res->status = COMMIT_FAILED;
	dbpool_put(s);
}

void
commit_submit_async(struct store_newjob *job, int64_t max_queued,
    commit_done_fn fn, void *arg)
{
	struct commit_result res;

	commit_submit(job, max_queued, &res);
	fn(arg, job, &res);
}

/* No group commit, no count: eta has no refresher here either. */
int64_t
commit_waiting(const char *queue)
{
	(void)queue;
	return -1;
}

/* The rejected requests the router hands over. */
static int	rejects;
static char	reject_reason[160], reject_headers[1024];

void
commit_reject(const struct store_rejected *row)
{
	rejects++;
	snprintf(reject_reason, sizeof(reject_reason), "%s", row->reason);
	snprintf(reject_headers, sizeof(reject_headers), "%s",
	    row->headers != NULL ? row->headers : "");
}

void
server_release(int fd, int keep)
{
	(void)fd;
	(void)keep;
	released++;
}

/* No worker pool here: nothing to hand the accepting role to. */
void
server_blocking(void)
{
}

/*
 * Serve one request: params (NAME, value, ..., NULL), role, body (NULL:
 * none; sent without CONTENT_LENGTH unless the params have one).  The
 * STDOUT bytes, malloc'd and NUL-terminated.
 */
static char *
serve_role(int role, const char *body, const char *const *params)
{
	struct fcgibuf in = { 0 }, p = { 0 }, out = { 0 };
	unsigned char h[8], c[65536 + 256];
	struct wire w;
	size_t clen, i;
	int sv[2], rc;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcgibuf_begin(&in, 1, role, 0);
	for (i = 0; params[i] != NULL; i += 2)
		fcgibuf_param(&p, params[i], params[i + 1]);
	fcgibuf_stream(&in, FCGI_PARAMS, 1, p.p, p.len, 65535, 1);
	fcgibuf_stream(&in, FCGI_STDIN, 1, body, body != NULL ?
	    strlen(body) : 0, 65535, 1);
	assert_int_equal(write(sv[0], in.p, in.len), (ssize_t)in.len);
	assert_int_equal(wire_init(&w, 2000, 10), 0);
	wire_attach(&w, sv[1]);
	assert_int_equal(wire_next(&w, -1), 1);
	rc = router_serve(&w);
	if (rc != SERVER_DETACHED)
		(void)wire_end(&w, 65536);
	for (;;) {
		assert_int_equal(read(sv[0], h, 8), 8);
		clen = (size_t)h[4] << 8 | h[5];
		if (clen + h[6] > 0)
			assert_int_equal(recv(sv[0], c, clen + h[6],
			    MSG_WAITALL), (ssize_t)(clen + h[6]));
		if (h[1] == FCGI_END_REQUEST)
			break;
		assert_int_equal(h[1], FCGI_STDOUT);
		fcgibuf_add(&out, c, clen);
	}
	fcgibuf_add(&out, "", 1);
	close(sv[0]);
	close(sv[1]);
	w.fd = -1;
	wire_free(&w);
	free(in.p);
	free(p.p);
	return (char *)out.p;
}

#define serve(body, ...)	serve_role(FCGI_RESPONDER, (body),	\
	    (const char *const []){ __VA_ARGS__, NULL })

static void
expect(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

/* The job id of a 202's Location, into id. */
static void
location_id(const char *answer, const char *prefix, char *id)
{
	const char *p = strstr(answer, "Location: ");

	assert_non_null(p);
	p += strlen("Location: ");
	assert_memory_equal(p, prefix, strlen(prefix));
	p += strlen(prefix);
	memcpy(id, p, STORE_ID_LEN);
	id[STORE_ID_LEN] = '\0';
}

static int
setup(void **state)
{
	struct store_opts o = { 0 };
	struct config c;
	char path[128], err[256];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fcgiq.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "[fcgiq]\ndatabase = %s/q.db\nmax_body = 100\n"
	    "[queue default]\n[queue mail]\npriority = 5\n"
	    "[queue gh]\nverify = github\nsecret_file = %s/gh.secret\n"
	    "[queue sw]\nverify = standard-webhooks\n"
	    "secret_file = %s/sw.secret\ntolerance = 100000000d\n",
	    dir, dir, dir);
	assert_int_equal(fclose(f), 0);
	snprintf(path, sizeof(path), "%s/gh.secret", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "It's a Secret to Everybody\n");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/sw.secret", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/fcgiq.conf", dir);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/q.db", dir);
	assert_int_equal(dbpool_open(path, &o, 1, err, sizeof(err)), 0);
	assert_int_equal(router_set_config(&c), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	router_free();
	dbpool_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A JSON answer as response_render() lays it out (a static buffer);
 * head: the headers alone, Content-Length still the body's. */
static const char *
render(const char *status, const char *extra, const char *json, int head)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "Status: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n%s\r\n%s%s", status,
	    json[0] != '\0' ? strlen(json) + 1 : 0, extra, head ? "" : json,
	    head || json[0] == '\0' ? "" : "\n");
	return buf;
}

#define json_answer(status, extra, json)	render(status, extra, json, 0)

/*
 * An error answer as response_problem() lays it out (a static buffer):
 * RFC 9457 problem details, the type's slug made here from the error's
 * words as the README states the rule; detail NULL: the title again.
 */
static const char *
problem(const char *status, const char *extra, const char *error,
    const char *detail, int head)
{
	static char buf[1024];
	char json[768], slug[128];
	const char *e;
	size_t n = 0;
	int gap = 0;

	for (e = error; *e != '\0'; e++) {
		if (!isalnum((unsigned char)*e)) {
			gap = 1;
			continue;
		}
		if (gap && n > 0)
			slug[n++] = '-';
		slug[n++] = (char)tolower((unsigned char)*e);
		gap = 0;
	}
	slug[n] = '\0';
	snprintf(json, sizeof(json), "{\"type\":\"urn:fcgiq:problem:%s\","
	    "\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\","
	    "\"error\":\"%s\"}", slug, error, atoi(status),
	    detail != NULL ? detail : error, error);
	snprintf(buf, sizeof(buf), "Status: %s\r\n"
	    "Content-Type: application/problem+json\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n%s%s",
	    status, strlen(json) + 1, extra, head ? "" : json,
	    head ? "" : "\n");
	return buf;
}

#define PROBLEM(status, extra, error, detail)				\
	problem(status, extra, error, detail, 0)

/* GET, HEAD and DELETE outside the status prefix: 405 naming the intake
 * methods; HEAD gets no body. */
static void
test_intake_405(void **state)
{
	(void)state;
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", "/in"),
	    PROBLEM("405 Method Not Allowed", "Allow: POST, PUT, PATCH\r\n",
	    "method not allowed", "GET"));
	expect(serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", "/in"),
	    problem("405 Method Not Allowed", "Allow: POST, PUT, PATCH\r\n",
	    "method not allowed", "HEAD", 1));
	/* A method with CR/LF or a long one is not echoed. */
	expect(serve(NULL, "REQUEST_METHOD", "GE\r\nT", "REQUEST_URI", "/in"),
	    PROBLEM("405 Method Not Allowed", "Allow: POST, PUT, PATCH\r\n",
	    "method not allowed", NULL));
	expect(serve(NULL, "REQUEST_URI", "/in"),
	    PROBLEM("405 Method Not Allowed", "Allow: POST, PUT, PATCH\r\n",
	    "method not allowed", NULL));
}

/* Under the status prefix: only GET, HEAD, DELETE, and only of an id. */
static void
test_status_routes(void **state)
{
	(void)state;
	expect(serve(NULL, "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/jobs/x"),
	    PROBLEM("405 Method Not Allowed", "Allow: GET, HEAD, DELETE\r\n",
	    "method not allowed", "POST"));
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI",
	    "/jobs/not-an-id"),
	    PROBLEM("404 Not Found", "", "no such job", "not a job id"));
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI",
	    "/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	    PROBLEM("404 Not Found", "",
	    "no such job", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	expect(serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI",
	    "/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	    PROBLEM("404 Not Found", "",
	    "no such job", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}

/* What is refused from the params, before the body is read. */
static void
test_refusals(void **state)
{
	char *uri;

	(void)state;
	expect(serve_role(FCGI_AUTHORIZER, "x", (const char *const []){
	    "REQUEST_METHOD", "POST", "REQUEST_URI", "/in", NULL }),
	    PROBLEM("400 Bad Request", "",
	    "only the FastCGI responder role is served", NULL));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_QUEUE", "nope"),
	    PROBLEM("404 Not Found", "", "unknown queue", "nope"));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "1x"),
	    PROBLEM("400 Bad Request", "",
	    "bad Content-Length", "not a decimal number of bytes"));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "101"),
	    PROBLEM("413 Content Too Large", "",
	    "body too large", "over the max_body limit"));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_TYPE", "text/plain\r\nX: y"),
	    PROBLEM("400 Bad Request", "", "bad Content-Type", "too long"));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_IDEMPOTENCY_KEY", "a b"),
	    PROBLEM("400 Bad Request", "",
	    "bad idempotency key", "1-255 printable ASCII characters"));
	/* The queue is checked before the length. */
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_QUEUE", "nope", "CONTENT_LENGTH", "1x"),
	    PROBLEM("404 Not Found", "", "unknown queue", "nope"));
	/* A name holding '=' means two things: refused, as problem details
	 * like every other error. */
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_A=B", "c"),
	    PROBLEM("400 Bad Request", "", "bad FastCGI parameter",
	    "a NUL byte in a name or value, or '=' in a name"));
	/* The URI before the route. */
	assert_non_null(uri = calloc(1, 8194));
	uri[0] = '/';
	memset(uri + 1, 'a', 8192);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("414 URI Too Long", "", "URI too long",
	    "the request URI is over 8192 bytes"));
	free(uri);
	/* Only the body tells: longer than declared. */
	expect(serve("xyz", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "2"),
	    PROBLEM("400 Bad Request", "", "body longer than Content-Length",
	    "more bytes arrived than Content-Length declared"));
	expect(serve(NULL, "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "2"),
	    PROBLEM("400 Bad Request", "",
	    "incomplete body", "the body ended before Content-Length"));
}

/* More header fields than REQ_MAX_HEADERS: 431 before the body. */
static void
test_too_many_headers(void **state)
{
	const char *p[2 * 300 + 8];
	char names[300][16];
	size_t i, n = 0;

	(void)state;
	p[n++] = "REQUEST_METHOD";
	p[n++] = "POST";
	p[n++] = "REQUEST_URI";
	p[n++] = "/in";
	for (i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "HTTP_X_%zu", i);
		p[n++] = names[i];
		p[n++] = "v";
	}
	p[n] = NULL;
	expect(serve_role(FCGI_RESPONDER, "x", p),
	    PROBLEM("431 Request Header Fields Too Large", "",
	    "header fields too large", "too many header fields"));
}

/* An intake (answered by the committer), then its status and cancel. */
static void
test_enqueue_status_cancel(void **state)
{
	char *a, id[STORE_ID_LEN + 1], uri[64], want[512], loc[128];
	int before = released;

	(void)state;
	a = serve("hello", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_QUEUE", "mail", "CONTENT_LENGTH", "5");
	assert_int_equal(released, before + 1);	/* detached */
	location_id(a, "/jobs/", id);
	snprintf(want, sizeof(want), "{\"id\":\"%s\",\"queue\":\"mail\","
	    "\"state\":\"queued\",\"status_url\":\"/jobs/%s\"}", id, id);
	snprintf(loc, sizeof(loc), "Location: /jobs/%s\r\n"
	    "Retry-After: 1\r\n", id);
	expect(a, json_answer("202 Accepted", loc, want));

	snprintf(uri, sizeof(uri), "/jobs/%s", id);
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri);
	assert_true(strncmp(a, "Status: 200 OK\r\n", 16) == 0);
	assert_non_null(strstr(a, "\"state\":\"queued\""));
	assert_non_null(strstr(a, "\"queue\":\"mail\""));
	free(a);
	a = serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", uri);
	assert_non_null(strstr(a, "\r\n\r\n"));
	assert_string_equal(strstr(a, "\r\n\r\n"), "\r\n\r\n");
	free(a);
	expect(serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI", uri),
	    render("204 No Content", "", "", 0));
	snprintf(want, sizeof(want), "job %s is cancelled", id);
	expect(serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI", uri),
	    PROBLEM("409 Conflict", "", "not cancellable", want));
}

/* A location's own status prefix, when usable; else the configured one. */
static void
test_status_prefix(void **state)
{
	char *a, id[STORE_ID_LEN + 1], uri[64];

	(void)state;
	a = serve("x", "REQUEST_METHOD", "PUT", "REQUEST_URI", "/in",
	    "FCGIQ_STATUS_PREFIX", "/api/jobs/");
	location_id(a, "/api/jobs/", id);
	free(a);
	snprintf(uri, sizeof(uri), "/api/jobs/%s", id);
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "FCGIQ_STATUS_PREFIX", "/api/jobs/");
	assert_true(strncmp(a, "Status: 200 OK\r\n", 16) == 0);
	free(a);
	/* Without the prefix param, /api/jobs/ is an intake location. */
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri);
	assert_true(strncmp(a, "Status: 405 ", 12) == 0);
	free(a);
	/* Not starting with '/', or with CR/LF: the configured prefix. */
	a = serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_STATUS_PREFIX", "api/");
	location_id(a, "/jobs/", id);
	free(a);
	a = serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_STATUS_PREFIX", "/a\r\nX: y/");
	location_id(a, "/jobs/", id);
	free(a);
}

/* The body's length in the database, -1 when no job has that id. */
static long
stored_len(const char *id)
{
	struct store *s = dbpool_get();
	struct store_job *j;
	long n = -1;

	if (store_get(s, id, &j) == 1) {
		n = (long)j->body_len;
		store_job_free(j);
	}
	dbpool_put(s);
	return n;
}

/*
 * A length not sent, or sent as -1 (Caddy, for a chunked upload): the
 * body is read to the end of FCGI_STDIN, bounded by max_body (100 here).
 */
static void
test_unknown_length(void **state)
{
	char *a, id[STORE_ID_LEN + 1], big[102];
	int64_t before;
	struct store *s;

	(void)state;
	a = serve("hello", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "-1");
	assert_true(strncmp(a, "Status: 202 Accepted\r\n", 22) == 0);
	location_id(a, "/jobs/", id);
	free(a);
	assert_int_equal(stored_len(id), 5);
	a = serve("hello!", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in");
	location_id(a, "/jobs/", id);
	free(a);
	assert_int_equal(stored_len(id), 6);
	memset(big, 'b', 100);
	big[100] = '\0';
	a = serve(big, "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "-1");
	location_id(a, "/jobs/", id);
	free(a);
	assert_int_equal(stored_len(id), 100);

	/* One byte over max_body: 413, nothing stored. */
	s = dbpool_get();
	before = store_count_waiting(s, "default");
	dbpool_put(s);
	big[100] = 'b';
	big[101] = '\0';
	expect(serve(big, "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "-1"),
	    PROBLEM("413 Content Too Large", "",
	    "body too large", "over the max_body limit"));
	s = dbpool_get();
	assert_int_equal(store_count_waiting(s, "default"), before);
	dbpool_put(s);

	/* Any other negative or signed value stays a 400. */
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "-2"),
	    PROBLEM("400 Bad Request", "",
	    "bad Content-Length", "not a decimal number of bytes"));
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "CONTENT_LENGTH", "-01"),
	    PROBLEM("400 Bad Request", "",
	    "bad Content-Length", "not a decimal number of bytes"));
}

/* An idempotency key: answered on the worker, replayed, then refused. */
static void
test_idempotency(void **state)
{
	char *a, id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	int before = released;

	(void)state;
	a = serve("one", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_IDEMPOTENCY_KEY", "k1");
	/* Keyed jobs are answered by the committer too: detached. */
	assert_int_equal(released, before + 1);
	location_id(a, "/jobs/", id);
	assert_null(strstr(a, "Idempotent-Replayed"));
	free(a);
	a = serve("one", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_IDEMPOTENCY_KEY", "k1");
	location_id(a, "/jobs/", id2);
	assert_string_equal(id, id2);
	assert_non_null(strstr(a, "Idempotent-Replayed: true\r\n"));
	free(a);
	a = serve("two", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_X_DELIVERY", "k1", "FCGIQ_DEDUPE_HEADER", "X-Delivery");
	assert_true(strncmp(a, "Status: 422 ", 12) == 0);
	free(a);
}

/* The ETag of a status answer, into tag (with its quotes). */
static void
etag_of(const char *answer, char *tag)
{
	const char *p = strstr(answer, "\r\nETag: \""), *e;

	assert_non_null(p);
	p += strlen("\r\nETag: ");
	assert_non_null(e = strstr(p, "\r\n"));
	assert_int_equal(e - p, 18);
	memcpy(tag, p, 18);
	tag[18] = '\0';
}

/* The status answer as response_render() lays it out, its ETag the FNV-1a
 * of its body's bytes (the JSON text, without the final newline), then
 * ra (Retry-After, "" for a finished job). */
static void
expect_status(char *a, const char *tag, const char *ra)
{
	const char *body = strstr(a, "\r\n\r\n");
	char extra[96], want[32], json[1024];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t n;

	assert_non_null(body);
	body += 4;
	n = strlen(body);
	assert_true(n > 1 && n < sizeof(json));
	memcpy(json, body, n - 1);
	json[n - 1] = '\0';
	for (n = 0; json[n] != '\0'; n++) {
		h ^= (unsigned char)json[n];
		h *= 0x100000001b3ULL;
	}
	snprintf(want, sizeof(want), "\"%016llx\"", (unsigned long long)h);
	assert_string_equal(tag, want);
	snprintf(extra, sizeof(extra), "ETag: %s\r\n%s", tag, ra);
	expect(a, json_answer("200 OK", extra, json));
}

static const char *
not_modified(const char *tag)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "Status: 304 Not Modified\r\n"
	    "ETag: %s\r\nCache-Control: no-store\r\n\r\n", tag);
	return buf;
}

/*
 * Every status answer has an ETag, the same for GET and HEAD;
 * If-None-Match naming it (alone, in a list, weak, or "*") is answered
 * 304 with no body; when the job changes, so does the tag.
 */
static void
test_etag(void **state)
{
	char *a, id[STORE_ID_LEN + 1], uri[64], tag[19], tag2[19], list[96];

	(void)state;
	a = serve("e", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in");
	location_id(a, "/jobs/", id);
	free(a);
	snprintf(uri, sizeof(uri), "/jobs/%s", id);
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri);
	etag_of(a, tag);
	expect_status(a, tag, "Retry-After: 1\r\n");
	a = serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", uri);
	etag_of(a, tag2);
	assert_string_equal(tag, tag2);
	assert_string_equal(strstr(a, "\r\n\r\n"), "\r\n\r\n");
	free(a);

	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", tag), not_modified(tag));
	expect(serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", tag), not_modified(tag));
	snprintf(list, sizeof(list), "\"other\", W/%s", tag);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", list), not_modified(tag));
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", "*"), not_modified(tag));
	/* Another tag: the whole answer. */
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", "\"0000000000000000\"");
	expect_status(a, tag, "Retry-After: 1\r\n");
	/* "*" of a job that does not exist: still 404. */
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI",
	    "/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "HTTP_IF_NONE_MATCH", "*"),
	    PROBLEM("404 Not Found", "",
	    "no such job", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));

	/* The job changes state: a new tag, and the old one no longer
	 * matches. */
	a = serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI", uri);
	free(a);
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", tag);
	assert_non_null(strstr(a, "\"state\":\"cancelled\""));
	etag_of(a, tag2);
	assert_string_not_equal(tag, tag2);
	expect_status(a, tag2, "");
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
	    "HTTP_IF_NONE_MATCH", tag2), not_modified(tag2));
}

/* FCGIQ_ACCEPT_STATUS 200: the same answer as 202 but its status line,
 * from the committer and from the worker (a key, and its replay); any
 * other value is a 500 and nothing is stored. */
static void
test_accept_status(void **state)
{
	char *a, id[STORE_ID_LEN + 1], want[512], loc[128];
	int64_t before;
	struct store *s;

	(void)state;
	a = serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "200");
	location_id(a, "/jobs/", id);
	snprintf(want, sizeof(want), "{\"id\":\"%s\",\"queue\":\"default\","
	    "\"state\":\"queued\",\"status_url\":\"/jobs/%s\"}", id, id);
	snprintf(loc, sizeof(loc), "Location: /jobs/%s\r\n"
	    "Retry-After: 1\r\n", id);
	expect(a, json_answer("200 OK", loc, want));

	a = serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "200", "HTTP_IDEMPOTENCY_KEY", "a200");
	location_id(a, "/jobs/", id);
	snprintf(want, sizeof(want), "{\"id\":\"%s\",\"queue\":\"default\","
	    "\"state\":\"queued\",\"status_url\":\"/jobs/%s\"}", id, id);
	snprintf(loc, sizeof(loc), "Location: /jobs/%s\r\n"
	    "Retry-After: 1\r\n", id);
	expect(a, json_answer("200 OK", loc, want));
	a = serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "200", "HTTP_IDEMPOTENCY_KEY", "a200");
	snprintf(want, sizeof(want), "{\"id\":\"%s\",\"queue\":\"default\","
	    "\"state\":\"queued\",\"status_url\":\"/jobs/%s\","
	    "\"replayed\":true}", id, id);
	snprintf(loc, sizeof(loc), "Location: /jobs/%s\r\n"
	    "Idempotent-Replayed: true\r\nRetry-After: 1\r\n", id);
	expect(a, json_answer("200 OK", loc, want));

	/* 202 named: as without the param. */
	a = serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "202");
	assert_true(strncmp(a, "Status: 202 Accepted\r\n", 22) == 0);
	free(a);

	s = dbpool_get();
	before = store_count_waiting(s, "default");
	dbpool_put(s);
	expect(serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "201"),
	    PROBLEM("500 Internal Server Error", "",
	    "bad FCGIQ_ACCEPT_STATUS",
	    "the location's FCGIQ_ACCEPT_STATUS must be 200 or 202"));
	expect(serve("ok", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_ACCEPT_STATUS", "OK", "HTTP_IDEMPOTENCY_KEY", "a500"),
	    PROBLEM("500 Internal Server Error", "",
	    "bad FCGIQ_ACCEPT_STATUS",
	    "the location's FCGIQ_ACCEPT_STATUS must be 200 or 202"));
	s = dbpool_get();
	assert_int_equal(store_count_waiting(s, "default"), before);
	dbpool_put(s);
}

/* Run sql on the test's database. */
static void
db_exec(const char *sql)
{
	struct store *s = dbpool_get();

	assert_int_equal(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL),
	    SQLITE_OK);
	dbpool_put(s);
}

/*
 * <id>/result: 404 until the job has a result, then its bytes with the
 * type its handler named; without one (exec:), text/plain when the bytes
 * are UTF-8, else application/octet-stream.  HEAD: the same headers.
 */
static void
test_result(void **state)
{
	char *a, id[STORE_ID_LEN + 1], uri[80], sql[256], want[512];
	static const char hdrs[] = "Status: 200 OK\r\nContent-Type: %s\r\n"
	    "Content-Length: %d\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: sandbox\r\n\r\n%s";

	(void)state;
	a = serve("r", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in");
	location_id(a, "/jobs/", id);
	free(a);
	snprintf(uri, sizeof(uri), "/jobs/%s/result", id);
	snprintf(want, sizeof(want), "job %s is queued", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("404 Not Found", "Retry-After: 1\r\n", "no result",
	    want));
	expect(serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI", uri),
	    PROBLEM("405 Method Not Allowed", "Allow: GET, HEAD\r\n",
	    "method not allowed", "DELETE"));

	snprintf(sql, sizeof(sql), "UPDATE jobs SET state = 'done', "
	    "finished_at = run_at, result = CAST('{\"ok\":1}' AS BLOB), "
	    "result_type = 'application/json' WHERE id = '%s'", id);
	db_exec(sql);
	snprintf(want, sizeof(want), hdrs, "application/json", 8, "{\"ok\":1}");
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri), want);
	snprintf(want, sizeof(want), hdrs, "application/json", 8, "");
	expect(serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", uri), want);

	/* exec: names no type. */
	snprintf(sql, sizeof(sql), "UPDATE jobs SET result = "
	    "CAST('h\xc3\xa9' AS BLOB), result_type = NULL WHERE id = '%s'",
	    id);
	db_exec(sql);
	snprintf(want, sizeof(want), hdrs, "text/plain; charset=utf-8", 3,
	    "h\xc3\xa9");
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri), want);
	snprintf(sql, sizeof(sql), "UPDATE jobs SET result = x'ff01' "
	    "WHERE id = '%s'", id);
	db_exec(sql);
	snprintf(want, sizeof(want), hdrs, "application/octet-stream", 2, "");
	a = serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri);
	assert_int_equal(strlen(a), strlen(want) + 2);
	assert_memory_equal(a, want, strlen(want));
	assert_memory_equal(a + strlen(want), "\xff\x01", 2);
	free(a);
	/* A type with a line break is not echoed into the header. */
	snprintf(sql, sizeof(sql), "UPDATE jobs SET result = CAST('x' AS "
	    "BLOB), result_type = 'text/html\r\nX: y' WHERE id = '%s'", id);
	db_exec(sql);
	snprintf(want, sizeof(want), hdrs, "text/plain; charset=utf-8", 1,
	    "x");
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri), want);
	/* An empty result is a result. */
	snprintf(sql, sizeof(sql), "UPDATE jobs SET result = x'', "
	    "result_type = 'text/csv' WHERE id = '%s'", id);
	db_exec(sql);
	snprintf(want, sizeof(want), hdrs, "text/csv", 0, "");
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri), want);
	/* A dead job has none, and never will. */
	snprintf(sql, sizeof(sql), "UPDATE jobs SET state = 'dead', "
	    "result = NULL WHERE id = '%s'", id);
	db_exec(sql);
	snprintf(want, sizeof(want), "job %s is dead", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("404 Not Found", "", "no result", want));
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
 * An id the database does not hold: 410 Gone on status, result and
 * DELETE when its time lies before the prune horizon (keep_done, 7 days
 * here), 404 when newer; HEAD gets the headers alone.
 */
static void
test_gone(void **state)
{
	char id[STORE_ID_LEN + 1], uri[80], detail[160];
	int64_t day = 86400000LL;

	(void)state;
	id_at(store_now() - 8 * day, id);
	snprintf(detail, sizeof(detail), "job %s is older than keep_done: "
	    "finished jobs that old are pruned", id);
	snprintf(uri, sizeof(uri), "/jobs/%s", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("410 Gone", "", "job gone", detail));
	expect(serve(NULL, "REQUEST_METHOD", "HEAD", "REQUEST_URI", uri),
	    problem("410 Gone", "", "job gone", detail, 1));
	expect(serve(NULL, "REQUEST_METHOD", "DELETE", "REQUEST_URI", uri),
	    PROBLEM("410 Gone", "", "job gone", detail));
	snprintf(uri, sizeof(uri), "/jobs/%s/result", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("410 Gone", "", "job gone", detail));

	id_at(store_now() - 6 * day, id);
	snprintf(uri, sizeof(uri), "/jobs/%s", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("404 Not Found", "", "no such job", id));
	snprintf(uri, sizeof(uri), "/jobs/%s/result", id);
	expect(serve(NULL, "REQUEST_METHOD", "GET", "REQUEST_URI", uri),
	    PROBLEM("404 Not Found", "", "no such job", id));
}

/* The schedule a location allows reaches the stored job; a bad one is a
 * 400 before anything is stored. */
static void
test_schedule(void **state)
{
	char *a, id[STORE_ID_LEN + 1];
	struct store *s;
	struct store_job *j;
	int64_t t0 = store_now();

	(void)state;
	a = serve("s", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_QUEUE", "mail", "FCGIQ_CLIENT_SCHEDULE", "on",
	    "HTTP_FCGIQ_DELAY", "1h", "HTTP_FCGIQ_PRIORITY", "-7");
	location_id(a, "/jobs/", id);
	/* Not before it is due. */
	assert_non_null(strstr(a, "\r\nRetry-After: 3600\r\n"));
	free(a);
	s = dbpool_get();
	assert_int_equal(store_get(s, id, &j), 1);
	dbpool_put(s);
	assert_int_equal(j->priority, -7);
	assert_true(j->run_at >= t0 + 3600000 &&
	    j->run_at <= store_now() + 3600000);
	store_job_free(j);
	/* Without FCGIQ_CLIENT_SCHEDULE: the queue's priority, now. */
	a = serve("s", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_QUEUE", "mail", "HTTP_FCGIQ_DELAY", "1h",
	    "HTTP_FCGIQ_PRIORITY", "-7");
	location_id(a, "/jobs/", id);
	free(a);
	s = dbpool_get();
	assert_int_equal(store_get(s, id, &j), 1);
	dbpool_put(s);
	assert_int_equal(j->priority, 5);
	assert_true(j->run_at <= store_now());
	store_job_free(j);
	expect(serve("s", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_CLIENT_SCHEDULE", "on", "HTTP_FCGIQ_RUN_AT", "noon"),
	    PROBLEM("400 Bad Request", "", "bad Fcgiq-Run-At",
	    "an RFC 3339 date-time: 2026-12-03T10:00:00Z"));
	expect(serve("s", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "FCGIQ_PRIORITY", "high"),
	    PROBLEM("500 Internal Server Error", "", "bad FCGIQ_PRIORITY",
	    "the location's FCGIQ_PRIORITY must be from -1000 to 1000"));
}

/* The committer refuses: 503 with Retry-After. */
static void
test_commit_refused(void **state)
{
	(void)state;
	commit_status = COMMIT_FULL;
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in"),
	    PROBLEM("503 Service Unavailable", "Retry-After: 1\r\n",
	    "queue full", "the queue holds max_queued jobs; retry later"));
	commit_status = COMMIT_STOPPED;
	expect(serve("x", "REQUEST_METHOD", "POST", "REQUEST_URI", "/in",
	    "HTTP_IDEMPOTENCY_KEY", "k2"),
	    PROBLEM("503 Service Unavailable", "Retry-After: 1\r\n",
	    "queue unavailable", "fcgiq is shutting down; retry"));
	commit_status = COMMIT_OK;
}


#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/*
 * A queue with verify: a genuine request is stored, its delivery id its
 * idempotency key (a redelivery replays the first job); a refused one is
 * answered 401 with the check that failed, stored nowhere, and handed to
 * the rejected table with its signature cut short.
 */
static void
test_verify(void **state)
{
	char *a, id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	const char *www = "WWW-Authenticate: Signature scheme=\"github\"\r\n";
	int before = rejects;

	(void)state;
	a = serve("Hello, World!", "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/gh", "FCGIQ_QUEUE", "gh", "HTTP_X_HUB_SIGNATURE_256", GH_SIG,
	    "HTTP_X_GITHUB_DELIVERY", "d-1");
	location_id(a, "/jobs/", id);
	free(a);
	a = serve("Hello, World!", "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/gh", "FCGIQ_QUEUE", "gh", "HTTP_X_HUB_SIGNATURE_256", GH_SIG,
	    "HTTP_X_GITHUB_DELIVERY", "d-1");
	location_id(a, "/jobs/", id2);
	assert_string_equal(id, id2);
	assert_non_null(strstr(a, "Idempotent-Replayed: true\r\n"));
	free(a);
	assert_int_equal(rejects, before);

	a = serve("Hello, World?", "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/gh", "FCGIQ_QUEUE", "gh", "HTTP_X_HUB_SIGNATURE_256", GH_SIG);
	expect(a, PROBLEM("401 Unauthorized", www, "signature check failed",
	    "no secret matched: X-Hub-Signature-256"));
	assert_int_equal(rejects, before + 1);
	assert_string_equal(reject_reason,
	    "no secret matched: X-Hub-Signature-256");
	assert_non_null(strstr(reject_headers,
	    "\"HTTP_X_HUB_SIGNATURE_256\":\"sha256=757107ea0... (71 bytes)\""));

	a = serve("Hello, World!", "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/gh", "FCGIQ_QUEUE", "gh");
	expect(a, PROBLEM("401 Unauthorized", www, "signature check failed",
	    "missing header: X-Hub-Signature-256"));
	a = serve("Hello, World!", "REQUEST_METHOD", "POST", "REQUEST_URI",
	    "/gh", "FCGIQ_QUEUE", "gh", "HTTP_X_HUB_SIGNATURE_256", "sha256=x");
	assert_non_null(strstr(a, "malformed header: X-Hub-Signature-256"));
	free(a);
	assert_int_equal(rejects, before + 3);

	/* Standard Webhooks: the spec's example; webhook-id is the key. */
	a = serve("{\"test\": 2432232314}", "REQUEST_METHOD", "POST",
	    "REQUEST_URI", "/sw", "FCGIQ_QUEUE", "sw",
	    "HTTP_WEBHOOK_ID", "msg_p5jXN8AQM9LWM0D4loKWxJek",
	    "HTTP_WEBHOOK_TIMESTAMP", "1614265330", "HTTP_WEBHOOK_SIGNATURE",
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_true(strncmp(a, "Status: 202 ", 12) == 0);
	free(a);
	a = serve("{\"test\": 2432232315}", "REQUEST_METHOD", "POST",
	    "REQUEST_URI", "/sw", "FCGIQ_QUEUE", "sw",
	    "HTTP_WEBHOOK_ID", "msg_p5jXN8AQM9LWM0D4loKWxJek",
	    "HTTP_WEBHOOK_TIMESTAMP", "1614265330", "HTTP_WEBHOOK_SIGNATURE",
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_true(strncmp(a, "Status: 401 ", 12) == 0);
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intake_405),
		cmocka_unit_test(test_status_routes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_too_many_headers),
		cmocka_unit_test(test_enqueue_status_cancel),
		cmocka_unit_test(test_status_prefix),
		cmocka_unit_test(test_unknown_length),
		cmocka_unit_test(test_idempotency),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_accept_status),
		cmocka_unit_test(test_result),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_commit_refused),
		cmocka_unit_test(test_verify),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
