/*
 * Unit tests for the fastcgi: kind (fcgi.c), its slot driven by hand
 * against a FastCGI application played by the test on a unix socket: the
 * request's records and params, the CGI answer read into the outcome,
 * broken answers, and the kept connection: reused by the next job, and
 * replaced without a failed attempt when the application closed it while
 * idle.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "fcgi.h"
#include "fcgirec.h"
#include "slot.h"
#include "store.h"
#include "tmpdir.h"

static char dir[] = "/tmp/fcgiq-fcgi-XXXXXX";
static char sock[96], handler[128];
static char *params[] = { "APP_ENV", "test" };
static struct queue_conf Q;
static int lfd = -1;

static int
setup(void **state)
{
	struct sockaddr_un sun;

	(void)state;
	memcpy(dir, "/tmp/fcgiq-fcgi-XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/app.sock", dir);
	snprintf(handler, sizeof(handler), "fastcgi:unix:%s", sock);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	memset(&Q, 0, sizeof(Q));
	Q.name = "php";
	Q.handler = handler;
	Q.kind = HANDLER_FASTCGI;
	Q.fcgi_unix = sock;
	Q.script = "/srv/app/jobs/mail.php";
	Q.params = params;
	Q.nparams = 1;
	Q.concurrency = 1;
	Q.timeout_ms = 5000;
	Q.backoff_min_ms = 1000;
	Q.backoff_max_ms = 60000;
	Q.max_result = 16;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fcgi_pool_free();
	close(lfd);
	(void)unlink(sock);
	assert_int_equal(tmpdir_remove(dir), 0);
	return 0;
}

static struct store_job *
job_new(const char *body)
{
	struct store_job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	snprintf(j->id, sizeof(j->id), "JOB1");
	j->queue = "php";
	j->attempts = 2;
	j->method = "POST";
	j->request_uri = "/mail/x?a=1";
	j->query_string = "a=1";
	j->content_type = "application/x-www-form-urlencoded";
	j->remote_addr = "192.0.2.7";
	j->headers = "{\"X-GitHub-Event\":\"push\",\"Proxy\":\"evil\"}";
	j->body = (void *)body;
	j->body_len = strlen(body);
	return j;
}

/* A slot of the kind, started on a new job. */
static void
start(struct slot *s, const char *body)
{
	memset(s, 0, sizeof(*s));
	fcgi_slot_prepare(s);
	assert_int_equal(slot_start(s, &Q, job_new(body), NULL, NULL,
	    mono_ms()), 0);
}

/* Read exactly n bytes from fd (blocking). */
static void
read_n(int fd, void *p, size_t n)
{
	ssize_t r;
	size_t got = 0;

	while (got < n) {
		r = read(fd, (char *)p + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* The application's side: one request from fd, its params (raw) and
 * body; the BEGIN_REQUEST flags into *flags. */
static void
app_request(int fd, unsigned char *par, size_t *plen, char *body,
    size_t *blen, int *flags)
{
	unsigned char h[8], c[65535 + 255];
	struct fcgirec_hdr rh;

	*plen = *blen = 0;
	for (;;) {
		read_n(fd, h, 8);
		assert_int_equal(fcgirec_parse(h, &rh), 0);
		assert_int_equal(rh.id, 1);
		read_n(fd, c, rh.clen + rh.pad);
		if (rh.type == FCGI_BEGIN_REQUEST) {
			assert_int_equal(c[1], FCGI_RESPONDER);
			*flags = c[2];
		} else if (rh.type == FCGI_PARAMS) {
			memcpy(par + *plen, c, rh.clen);
			*plen += rh.clen;
		} else if (rh.type == FCGI_STDIN) {
			if (rh.clen == 0)
				return;
			memcpy(body + *blen, c, rh.clen);
			*blen += rh.clen;
		} else
			fail_msg("record type %d", rh.type);
	}
}

/* The value of param name in par, or NULL. */
static const char *
param(const unsigned char *par, size_t plen, const char *name)
{
	static char v[256];
	const unsigned char *n, *val;
	size_t i = 0, nl, vl;

	while (fcgirec_nv_pair(par, plen, &i, &n, &nl, &val, &vl) == 1)
		if (nl == strlen(name) && memcmp(n, name, nl) == 0) {
			snprintf(v, sizeof(v), "%.*s", (int)vl, val);
			return v;
		}
	return NULL;
}

/* Append a record to out. */
static size_t
rec(unsigned char *out, int type, unsigned id, const void *c, size_t n)
{
	fcgirec_header(out, type, id, n, 0);
	if (n > 0)
		memcpy(out + 8, c, n);
	return 8 + n;
}

/* A whole answer: STDOUT text, its end, END_REQUEST (status). */
static void
app_answer(int fd, const char *out, const char *err, int pstatus)
{
	unsigned char b[4096], e[8] = { 0 };
	size_t n = 0;

	if (err != NULL)
		n += rec(b + n, FCGI_STDERR, 1, err, strlen(err));
	n += rec(b + n, FCGI_STDOUT, 1, out, strlen(out));
	n += rec(b + n, FCGI_STDOUT, 1, NULL, 0);
	e[4] = (unsigned char)pstatus;
	n += rec(b + n, FCGI_END_REQUEST, 1, e, 8);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
}

/* Drive s's poll entries until it leaves RUNNING (5 s at most). */
static void
drive(struct slot *s)
{
	struct pollfd pfd[SLOT_MAXFD];
	int which[SLOT_MAXFD], n, i, k;

	for (k = 0; k < 500 && s->state == SLOT_RUNNING; k++) {
		n = slot_poll(s, pfd, which);
		if (n == 0)
			break;
		assert_true(poll(pfd, (nfds_t)n, 10) >= 0);
		for (i = 0; i < n; i++)
			if (pfd[i].revents != 0)
				assert_int_equal(slot_ready(s, which[i],
				    pfd[i].revents), 0);
	}
	assert_int_equal(s->state, SLOT_EXITED);
	assert_int_equal(slot_drained(s), 0);
	assert_int_equal(slot_outcome(s, mono_ms()), 0);
}

static void
finish(struct slot *s)
{
	slot_free(s);
}

/* The request as a web server would send it; the answer into the
 * outcome; the connection kept for the next job. */
static void
test_request_and_answer(void **state)
{
	unsigned char par[65536];
	char body[1024];
	size_t plen, blen;
	struct slot s;
	int fd, flags = 0;

	(void)state;
	start(&s, "name=Ada");
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	app_request(fd, par, &plen, body, &blen, &flags);
	assert_int_equal(flags & FCGI_KEEP_CONN, FCGI_KEEP_CONN);
	assert_int_equal(blen, 8);
	assert_memory_equal(body, "name=Ada", 8);
	assert_string_equal(param(par, plen, "REQUEST_METHOD"), "POST");
	assert_string_equal(param(par, plen, "REQUEST_URI"), "/mail/x?a=1");
	assert_string_equal(param(par, plen, "QUERY_STRING"), "a=1");
	assert_string_equal(param(par, plen, "CONTENT_TYPE"),
	    "application/x-www-form-urlencoded");
	assert_string_equal(param(par, plen, "CONTENT_LENGTH"), "8");
	assert_string_equal(param(par, plen, "REMOTE_ADDR"), "192.0.2.7");
	assert_string_equal(param(par, plen, "HTTP_X_GITHUB_EVENT"), "push");
	assert_null(param(par, plen, "HTTP_PROXY"));
	assert_null(param(par, plen, "PATH"));
	assert_string_equal(param(par, plen, "SCRIPT_FILENAME"),
	    "/srv/app/jobs/mail.php");
	assert_string_equal(param(par, plen, "SCRIPT_NAME"), "/mail.php");
	assert_string_equal(param(par, plen, "GATEWAY_INTERFACE"), "CGI/1.1");
	assert_string_equal(param(par, plen, "FCGIQ_JOB_ID"), "JOB1");
	assert_string_equal(param(par, plen, "FCGIQ_QUEUE"), "php");
	assert_string_equal(param(par, plen, "FCGIQ_ATTEMPT"), "2");
	assert_string_equal(param(par, plen, "APP_ENV"), "test");

	/* No Status: 200.  The body past max_result (16) is cut. */
	app_answer(fd, "Content-Type: application/json\r\nX-A: b\r\n\r\n"
	    "{\"ok\":true,\"more\":\"than sixteen\"}", "a PHP warning", 0);
	drive(&s);
	assert_int_equal(s.up.status, 200);
	assert_int_equal(s.rec.result, SLOT_DONE);
	assert_string_equal(s.up.type, "application/json");
	assert_int_equal(s.out.b.len, 16);
	assert_memory_equal(s.out.b.data, "{\"ok\":true,\"more", 16);
	assert_int_equal(s.out.total, 33);
	finish(&s);

	/* The next job: on the kept connection, no accept. */
	start(&s, "");
	app_request(fd, par, &plen, body, &blen, &flags);
	assert_int_equal(blen, 0);
	app_answer(fd, "Status: 503 Busy\nRetry-After: 7\n\nlater", NULL, 0);
	drive(&s);
	assert_int_equal(s.up.status, 503);
	assert_int_equal(s.rec.result, SLOT_FAILED);
	assert_int_equal(s.rec.permanent, 0);
	assert_true(s.rec.run_at >= store_now() + 6000 &&
	    s.rec.run_at <= store_now() + 7000);
	assert_string_equal(s.rec.reason + strlen(s.rec.reason) - 10,
	    "status 503");
	finish(&s);

	/* A third: 404 is dead, a Location alone is 302 (a retry). */
	start(&s, "");
	app_request(fd, par, &plen, body, &blen, &flags);
	app_answer(fd, "Status: 404\r\n\r\n", NULL, 0);
	drive(&s);
	assert_int_equal(s.rec.permanent, 1);
	finish(&s);
	start(&s, "");
	app_request(fd, par, &plen, body, &blen, &flags);
	app_answer(fd, "Location: /elsewhere\r\n\r\n", NULL, 0);
	drive(&s);
	assert_int_equal(s.up.status, 302);
	assert_int_equal(s.rec.result, SLOT_FAILED);
	assert_int_equal(s.rec.permanent, 0);
	finish(&s);
	close(fd);
}

/* A param line of the same name as a built-in variable replaces it. */
static char *over[] = { "SERVER_PROTOCOL", "HTTP/2", "SCRIPT_NAME",
    "/index.php" };

static void
test_param_overrides(void **state)
{
	unsigned char par[65536];
	char body[64];
	size_t plen, blen;
	struct slot s;
	int fd, flags;

	(void)state;
	Q.params = over;
	Q.nparams = 2;
	start(&s, "");
	fd = accept(lfd, NULL, NULL);
	app_request(fd, par, &plen, body, &blen, &flags);
	assert_string_equal(param(par, plen, "SERVER_PROTOCOL"), "HTTP/2");
	assert_string_equal(param(par, plen, "SCRIPT_NAME"), "/index.php");
	app_answer(fd, "\r\n", NULL, 0);
	drive(&s);
	/* A blank first line: no headers at all, 200. */
	assert_int_equal(s.up.status, 200);
	finish(&s);
	close(fd);
}

/* Broken answers: each one failed attempt with its reason. */
static void
test_broken_answers(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		const char	*reason;
	} t[] = {
		{ "\2\6\0\1\0\0\0\0", 8, "bad record version 2" },
		{ "\1\3\0\7\0\10\0\0\0\0\0\0\0\0\0\0", 16,
		    "FCGI_END_REQUEST for another request (id 7)" },
		{ "\1\3\0\1\0\4\0\0\0\0\0\0", 12,
		    "FCGI_END_REQUEST of 4 bytes" },
		{ "\1\12\0\1\0\0\0\0", 8, "unexpected record type 10" },
		{ "\1\6\0\1\0\5\0\0abcde\1\3\0\1\0\10\0\0\0\0\0\0\0\0\0\0",
		    29, "CGI headers without their blank line" },
		{ "\1\6\0\1\0\12\0\0bad line\n\n", 18,
		    "malformed CGI header line" },
		{ "\1\6\0\1\0\17\0\0Status: 9000\n\n\n", 23,
		    "bad Status header" },
		{ "\1\3\0\1\0\10\0\0\0\0\0\0\2\0\0\0", 16,
		    "refused the request (FCGI_OVERLOADED)" },
		{ "\1\6\0\1\3\350\0\0Status: 200\n\n", 21,
		    "connection closed mid-answer" },
	};
	unsigned char par[65536];
	char body[64];
	size_t plen, blen, i;
	struct slot s;
	int fd, flags;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		start(&s, "");
		fd = accept(lfd, NULL, NULL);
		assert_true(fd >= 0);
		app_request(fd, par, &plen, body, &blen, &flags);
		assert_int_equal(write(fd, t[i].bytes, t[i].len),
		    (ssize_t)t[i].len);
		close(fd);
		drive(&s);
		assert_int_equal(s.rec.result, SLOT_FAILED);
		assert_int_equal(s.rec.permanent, 0);
		if (strstr(s.rec.reason, t[i].reason) == NULL)
			fail_msg("case %zu: \"%s\"", i, s.rec.reason);
		finish(&s);
	}
}

/* A kept connection the application closed while idle: the next job
 * goes on a new one, with no failed attempt. */
static void
test_stale_kept_connection(void **state)
{
	unsigned char par[65536];
	char body[64];
	size_t plen, blen;
	struct slot s;
	int fd, fd2, flags;

	(void)state;
	start(&s, "");
	fd = accept(lfd, NULL, NULL);
	app_request(fd, par, &plen, body, &blen, &flags);
	app_answer(fd, "Status: 200\r\n\r\nok", NULL, 0);
	drive(&s);
	finish(&s);
	/* Closed after the answer's last byte was read: the kept
	 * connection is found dead when taken (or when written to). */
	close(fd);
	start(&s, "x");
	fd2 = accept(lfd, NULL, NULL);
	assert_true(fd2 >= 0);
	app_request(fd2, par, &plen, body, &blen, &flags);
	assert_int_equal(blen, 1);
	app_answer(fd2, "\r\nagain", NULL, 0);
	drive(&s);
	assert_int_equal(s.rec.result, SLOT_DONE);
	assert_memory_equal(s.out.b.data, "again", 5);
	finish(&s);
	close(fd2);
}

/* A kept connection that looked alive but is closed once the request is
 * on it, before a byte of answer: sent again on a new one, once. */
static void
test_kept_connection_lost(void **state)
{
	unsigned char par[65536];
	char body[64];
	size_t plen, blen;
	struct pollfd pfd[SLOT_MAXFD + 1];
	int which[SLOT_MAXFD], fd, fd2 = -1, flags, n, i, k;
	struct slot s;

	(void)state;
	start(&s, "");
	fd = accept(lfd, NULL, NULL);
	app_request(fd, par, &plen, body, &blen, &flags);
	app_answer(fd, "\r\nfirst", NULL, 0);
	drive(&s);
	finish(&s);
	start(&s, "y");
	app_request(fd, par, &plen, body, &blen, &flags);
	close(fd);
	for (k = 0; k < 500 && fd2 == -1; k++) {
		n = slot_poll(&s, pfd, which);
		assert_int_equal(n, 1);
		pfd[n].fd = lfd;
		pfd[n].events = POLLIN;
		assert_true(poll(pfd, (nfds_t)n + 1, 10) >= 0);
		if (pfd[n].revents & POLLIN)
			fd2 = accept(lfd, NULL, NULL);
		for (i = 0; i < n; i++)
			if (pfd[i].revents != 0)
				assert_int_equal(slot_ready(&s, which[i],
				    pfd[i].revents), 0);
		assert_int_equal(s.state, SLOT_RUNNING);
	}
	assert_true(fd2 >= 0);
	app_request(fd2, par, &plen, body, &blen, &flags);
	assert_int_equal(blen, 1);
	app_answer(fd2, "\r\nsecond", NULL, 0);
	drive(&s);
	assert_int_equal(s.rec.result, SLOT_DONE);
	assert_memory_equal(s.out.b.data, "second", 6);
	finish(&s);
	close(fd2);
}

/* Nobody listening: a failed attempt at once, from slot_start. */
static void
test_unreachable(void **state)
{
	struct queue_conf q = Q;
	struct slot s;

	(void)state;
	q.handler = "fastcgi:unix:/nonexistent/app.sock";
	q.fcgi_unix = "/nonexistent/app.sock";
	memset(&s, 0, sizeof(s));
	fcgi_slot_prepare(&s);
	assert_int_equal(slot_start(&s, &q, job_new(""), NULL, NULL,
	    mono_ms()), 0);
	assert_int_equal(s.state, SLOT_EXITED);
	assert_int_equal(slot_drained(&s), 0);
	assert_int_equal(slot_outcome(&s, mono_ms()), 0);
	assert_int_equal(s.rec.result, SLOT_FAILED);
	assert_string_equal(s.rec.reason, "fastcgi: /nonexistent/app.sock: "
	    "connect: No such file or directory");
	assert_int_equal(s.up.quiet, 1);
	slot_free(&s);
}

/* The timeout: stop() aborts and ends the attempt at once. */
static void
test_stop_aborts(void **state)
{
	unsigned char par[65536], h[8];
	char body[64];
	size_t plen, blen;
	struct fcgirec_hdr rh;
	struct slot s;
	int fd, flags;

	(void)state;
	start(&s, "");
	fd = accept(lfd, NULL, NULL);
	app_request(fd, par, &plen, body, &blen, &flags);
	/* Let the slot see its request is sent. */
	{
		struct pollfd pfd[SLOT_MAXFD];
		int which[SLOT_MAXFD], n;

		n = slot_poll(&s, pfd, which);
		assert_int_equal(n, 1);
	}
	assert_int_equal(slot_stop(&s, SLOT_STOP_TIMEOUT, mono_ms()), 0);
	assert_int_equal(s.state, SLOT_EXITED);
	assert_int_equal(s.kill_at, 0);
	read_n(fd, h, 8);
	assert_int_equal(fcgirec_parse(h, &rh), 0);
	assert_int_equal(rh.type, FCGI_ABORT_REQUEST);
	assert_int_equal(read(fd, h, 1), 0);	/* and closed */
	assert_int_equal(slot_drained(&s), 0);
	assert_int_equal(slot_outcome(&s, mono_ms()), 0);
	assert_string_equal(s.rec.reason, "timeout after 5s");
	slot_free(&s);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_request_and_answer),
		T(test_param_overrides),
		T(test_broken_answers),
		T(test_stale_kept_connection),
		T(test_kept_connection_lost),
		T(test_unreachable),
		T(test_stop_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
