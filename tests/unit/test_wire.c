/*
 * Unit tests of fcgi-app/wire.c over a socket pair: what a web server
 * sends, record by record, and what comes back.  (Hostile input is
 * tests/hostile/adversary.sh's and tests/fuzz/fuzz_wire.c's.)
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgibuf.h"
#include "request.h"
#include "wire.h"

/* A POST of body in records of at most chunk bytes; params split in two
 * records. */
static void
request(struct fcgibuf *b, unsigned id, int keep, const char *body,
    size_t chunk)
{
	struct fcgibuf p = { 0 };
	size_t i, n;

	fcgibuf_begin(b, (int)id, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	fcgibuf_param(&p, "REQUEST_METHOD", "POST");
	fcgibuf_param(&p, "REQUEST_URI", "/in");
	fcgibuf_record(b, FCGI_PARAMS, id, p.p, 3);
	fcgibuf_record(b, FCGI_PARAMS, id, p.p + 3, p.len - 3);
	fcgibuf_record(b, FCGI_PARAMS, id, NULL, 0);
	for (i = 0; i < strlen(body); i += n) {
		n = strlen(body) - i < chunk ? strlen(body) - i : chunk;
		fcgibuf_record(b, FCGI_STDIN, id, body + i, n);
	}
	fcgibuf_record(b, FCGI_STDIN, id, NULL, 0);
	free(p.p);
}

/* Read what the responder sent on fd until FCGI_END_REQUEST: the STDOUT
 * bytes into *out; returns the number of STDOUT records. */
static int
answer(int fd, struct fcgibuf *out)
{
	unsigned char h[8], c[65536 + 256];
	size_t clen;
	int n = 0;

	for (;;) {
		assert_int_equal(read(fd, h, 8), 8);
		clen = (size_t)h[4] << 8 | h[5];
		if (clen + h[6] > 0)
			assert_int_equal(recv(fd, c, clen + h[6], MSG_WAITALL),
			    (ssize_t)(clen + h[6]));
		if (h[1] == FCGI_END_REQUEST)
			return n;
		assert_int_equal(h[1], FCGI_STDOUT);
		if (clen > 0) {
			fcgibuf_add(out, c, clen);
			n++;
		}
	}
}

static char *
body_of(struct wire *w)
{
	static char body[200000];
	size_t len = 0;
	ssize_t n;

	while ((n = wire_read(w, body + len, sizeof(body) - 1 - len)) > 0)
		len += (size_t)n;
	assert_int_equal(n, 0);
	body[len] = '\0';
	return body;
}

static void
test_pipelined_keep(void **state)
{
	struct wire w;
	struct fcgibuf in = { 0 }, out = { 0 };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_init(&w, 2000, 10), 0);
	request(&in, 1, 1, "first body", 3);
	request(&in, 7, 0, "second", 100);
	assert_int_equal(write(sv[0], in.p, in.len), (ssize_t)in.len);
	wire_attach(&w, sv[1]);

	assert_int_equal(wire_next(&w, -1), 1);
	assert_int_equal(w.role, FCGI_RESPONDER);
	assert_string_equal(req_param(w.envp, "REQUEST_METHOD"), "POST");
	assert_string_equal(req_param(w.envp, "REQUEST_URI"), "/in");
	assert_string_equal(body_of(&w), "first body");
	assert_int_equal(wire_put(&w, "one", 3), 0);
	assert_int_equal(wire_end(&w, 0), 1);	/* kept */
	answer(sv[0], &out);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.p, "one", 3);

	/* The pipelined request is there without waiting. */
	assert_int_equal(wire_next(&w, 0), 1);
	assert_string_equal(body_of(&w), "second");
	assert_int_equal(wire_end(&w, 0), 0);	/* not kept */
	close(sv[0]);
	wire_close(&w);
	wire_free(&w);
	free(in.p);
	free(out.p);
}

/* An answer over 65535 bytes goes out as several records, whole. */
static void
test_large_answer(void **state)
{
	struct wire w;
	struct fcgibuf in = { 0 }, out = { 0 };
	static unsigned char big[150000];
	size_t i;
	pid_t pid;
	int sv[2], status;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_init(&w, 2000, 10), 0);
	request(&in, 3, 0, "x", 1);
	assert_int_equal(write(sv[0], in.p, in.len), (ssize_t)in.len);
	wire_attach(&w, sv[1]);
	assert_int_equal(wire_next(&w, -1), 1);
	assert_string_equal(body_of(&w), "x");
	assert_int_equal(wire_put(&w, big, 1000), 0);
	assert_int_equal(wire_put(&w, big + 1000, sizeof(big) - 1000), 0);
	/* More than the socket buffer holds: the writer apart. */
	if ((pid = fork()) == 0)
		_exit(wire_end(&w, 0) == 0 ? 0 : 1);
	assert_int_equal(answer(sv[0], &out), 3);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(out.len, sizeof(big));
	assert_memory_equal(out.p, big, sizeof(big));
	close(sv[0]);
	wire_close(&w);
	wire_free(&w);
	free(in.p);
	free(out.p);
}

/* A request that stops arriving fails at the deadline, however the bytes
 * before it trickled. */
static void
test_deadline(void **state)
{
	struct wire w;
	struct fcgibuf in = { 0 };
	struct timespec t0, t1;
	long ms;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_init(&w, 300, 10), 0);
	request(&in, 1, 0, "never ends", 100);
	assert_int_equal(write(sv[0], in.p, in.len - 8), (ssize_t)in.len - 8);
	wire_attach(&w, sv[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(wire_next(&w, -1), 1);
	assert_true(wire_read(&w, (char[64]){ 0 }, 64) > 0);
	assert_int_equal(wire_read(&w, (char[64]){ 0 }, 64), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 250);
	close(sv[0]);
	wire_close(&w);
	wire_free(&w);
	free(in.p);
}

/* A connection with nothing to say yet is idle, not broken; its request
 * is read when it comes. */
static void
test_idle(void **state)
{
	struct wire w;
	struct fcgibuf in = { 0 };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_init(&w, 2000, 10), 0);
	wire_attach(&w, sv[1]);
	assert_int_equal(wire_next(&w, 0), WIRE_IDLE);
	assert_int_equal(wire_next(&w, 20), WIRE_IDLE);
	request(&in, 1, 0, "late", 100);
	assert_int_equal(write(sv[0], in.p, in.len), (ssize_t)in.len);
	assert_int_equal(wire_next(&w, 0), 1);
	assert_string_equal(body_of(&w), "late");
	close(sv[0]);
	wire_close(&w);
	wire_free(&w);
	free(in.p);
}

/* FCGI_GET_VALUES between requests is answered, and the request after it
 * served. */
static void
test_get_values(void **state)
{
	struct wire w;
	struct fcgibuf in = { 0 }, q = { 0 }, out = { 0 };
	unsigned char h[8], c[256];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(wire_init(&w, 2000, 42), 0);
	fcgibuf_param(&q, "FCGI_MAX_REQS", "");
	fcgibuf_param(&q, "FCGI_UNHEARD_OF", "");
	fcgibuf_record(&in, FCGI_GET_VALUES, 0, q.p, q.len);
	request(&in, 1, 0, "b", 1);
	assert_int_equal(write(sv[0], in.p, in.len), (ssize_t)in.len);
	wire_attach(&w, sv[1]);
	assert_int_equal(wire_next(&w, -1), 1);
	assert_int_equal(read(sv[0], h, 8), 8);
	assert_int_equal(h[1], FCGI_GET_VALUES_RESULT);
	assert_int_equal(h[5], 2 + 13 + 2);
	assert_int_equal(read(sv[0], c, h[5]), h[5]);
	assert_memory_equal(c, "\x0d\x02" "FCGI_MAX_REQS42", h[5]);
	assert_string_equal(body_of(&w), "b");
	wire_end(&w, 0);
	answer(sv[0], &out);
	close(sv[0]);
	wire_close(&w);
	wire_free(&w);
	free(in.p);
	free(q.p);
	free(out.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_keep),
		cmocka_unit_test(test_large_answer),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_get_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
