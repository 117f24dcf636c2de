/*
 * test_server: unit tests of the accept and worker layer
 * (fcgi-app/server.c) over a real listening unix socket in a mktemp -d
 * directory, with a serve function of the test's own that echoes each
 * request's body.  The server keeps its state for the process and cannot
 * be started twice, so one server (four workers) serves every test, in
 * order, and the last one stops it.
 *
 * Nothing here asserts a duration: the box is small and shared.  Waits
 * have caps of a minute, far below io_timeout (ten minutes): a worker
 * held by a peer stays held for the whole test, so a starved request
 * fails at the cap instead of being served once io_timeout cut the peer.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgibuf.h"
#include "request.h"
#include "server.h"
#include "wire.h"

#define THREADS		4
#define IO_TIMEOUT_MS	600000	/* past every cap: no peer is cut by it */
#define GRACE_MS	5000
#define CAP_S		60	/* a wait this long has failed */

static char	dir[64], sock[96];

/* --- the serve function --------------------------------------------------- */

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cv;
	int		 served;
	int		 blocked;	/* requests waiting at the gate */
	int		 gate_open;
} sv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.gate_open = 1,
};

/* Answer "ok:" and the body; "/block" waits for the gate first, and
 * "/hold" too, but keeps its duty (as a serve busy on the CPU would). */
static int
serve(struct wire *w)
{
	const char *uri = req_param(w->envp, "REQUEST_URI");
	char body[4096];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(body) &&
	    (n = wire_read(w, body + len, sizeof(body) - len)) > 0)
		len += (size_t)n;
	if (uri != NULL && (strcmp(uri, "/block") == 0 ||
	    strcmp(uri, "/hold") == 0)) {
		if (strcmp(uri, "/block") == 0)
			server_blocking();	/* as the router before its waits */
		pthread_mutex_lock(&sv.lock);
		sv.blocked++;
		pthread_cond_broadcast(&sv.cv);
		while (!sv.gate_open)
			pthread_cond_wait(&sv.cv, &sv.lock);
		sv.blocked--;
		pthread_mutex_unlock(&sv.lock);
	}
	(void)wire_put(w, "ok:", 3);
	(void)wire_put(w, body, len);
	pthread_mutex_lock(&sv.lock);
	sv.served++;
	pthread_mutex_unlock(&sv.lock);
	return 0;
}

static void
gate_close(void)
{
	pthread_mutex_lock(&sv.lock);
	sv.gate_open = 0;
	pthread_mutex_unlock(&sv.lock);
}

static void
gate_open(void)
{
	pthread_mutex_lock(&sv.lock);
	sv.gate_open = 1;
	pthread_cond_broadcast(&sv.cv);
	pthread_mutex_unlock(&sv.lock);
}

/* Wait until n requests wait at the gate. */
static void
wait_blocked(int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += CAP_S;
	pthread_mutex_lock(&sv.lock);
	while (sv.blocked < n)
		if (pthread_cond_timedwait(&sv.cv, &sv.lock, &ts) ==
		    ETIMEDOUT)
			break;
	assert_int_equal(sv.blocked, n);
	pthread_mutex_unlock(&sv.lock);
}

/* --- a FastCGI client -------------------------------------------------- */

static int
client(void)
{
	struct sockaddr_un sun;
	struct timeval tv = { CAP_S, 0 };
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	(void)strncpy(sun.sun_path, sock, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A POST of body to uri, whole, into b. */
static void
build(struct fcgibuf *b, int id, int keep, const char *uri, const char *body)
{
	struct fcgibuf p = { 0 };

	fcgibuf_begin(b, id, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	fcgibuf_param(&p, "REQUEST_METHOD", "POST");
	fcgibuf_param(&p, "REQUEST_URI", uri);
	fcgibuf_stream(b, FCGI_PARAMS, id, p.p, p.len, 65535, 1);
	fcgibuf_stream(b, FCGI_STDIN, id, body, strlen(body), 65535, 1);
	fcgibuf_free(&p);
}

static int
send_all(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;
	ssize_t k;

	while (n > 0) {
		if ((k = send(fd, c, n, MSG_NOSIGNAL)) <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
send_request(int fd, int id, int keep, const char *uri, const char *body)
{
	struct fcgibuf b = { 0 };
	int rc;

	build(&b, id, keep, uri, body);
	rc = send_all(fd, b.p, b.len);
	fcgibuf_free(&b);
	return rc;
}

/*
 * Read an answer: its STDOUT into out (NUL-terminated).  1: an answer up
 * to FCGI_END_REQUEST; 0: the server closed the connection first; -1: an
 * error or no byte for CAP_S seconds.
 */
static int
read_answer(int fd, char *out, size_t outlen)
{
	unsigned char h[8], c[65536 + 256];
	size_t clen, len = 0;
	ssize_t n;

	out[0] = '\0';
	for (;;) {
		if ((n = recv(fd, h, 8, MSG_WAITALL)) == 0)
			return 0;
		if (n != 8)
			return n == -1 && errno == ECONNRESET ? 0 : -1;
		clen = (size_t)h[4] << 8 | h[5];
		if (clen + h[6] > 0 &&
		    recv(fd, c, clen + h[6], MSG_WAITALL) != (ssize_t)(clen + h[6]))
			return -1;
		if (h[1] == FCGI_END_REQUEST)
			return 1;
		if (h[1] == FCGI_STDOUT && clen > 0) {
			if (len + clen >= outlen)
				return -1;
			memcpy(out + len, c, clen);
			len += clen;
			out[len] = '\0';
		}
	}
}

/* One request on fd, and its answer checked. */
static void
roundtrip(int fd, int keep, const char *body)
{
	char want[256], got[256];

	assert_int_equal(send_request(fd, 1, keep, "/echo", body), 0);
	assert_int_equal(read_answer(fd, got, sizeof(got)), 1);
	(void)snprintf(want, sizeof(want), "ok:%s", body);
	assert_string_equal(got, want);
}

/* A request on a new connection of its own, its answer, then the end. */
static int
one_shot(const char *body)
{
	char want[256], got[256], c;
	int fd, ok;

	if ((fd = client()) == -1)
		return -1;
	ok = send_request(fd, 1, 0, "/echo", body) == 0 &&
	    read_answer(fd, got, sizeof(got)) == 1;
	(void)snprintf(want, sizeof(want), "ok:%s", body);
	ok = ok && strcmp(got, want) == 0 &&
	    recv(fd, &c, 1, 0) == 0;	/* not kept: closed */
	close(fd);
	return ok ? 0 : -1;
}

struct shooter {
	pthread_t	 thread;
	int		 id;
	int		 n;
	int		 failed;
};

static void *
shoot(void *arg)
{
	struct shooter *s = arg;
	char body[64];
	int i;

	for (i = 0; i < s->n; i++) {
		(void)snprintf(body, sizeof(body), "t%d-r%d", s->id, i);
		if (one_shot(body) == -1)
			s->failed++;
	}
	return NULL;
}

/* k threads each send n requests, one connection each; failures. */
static int
volley(int k, int n)
{
	struct shooter s[16];
	int i, failed = 0;

	assert_true(k <= 16);
	for (i = 0; i < k; i++) {
		s[i].id = i;
		s[i].n = n;
		s[i].failed = 0;
		assert_int_equal(pthread_create(&s[i].thread, NULL, shoot,
		    &s[i]), 0);
	}
	for (i = 0; i < k; i++) {
		assert_int_equal(pthread_join(s[i].thread, NULL), 0);
		failed += s[i].failed;
	}
	return failed;
}

/* --- the server -------------------------------------------------------- */

/* After each test, even a failed one: nothing stays at the gate. */
static int
reopen_gate(void **state)
{
	(void)state;
	gate_open();
	return 0;
}

static int
group_setup(void **state)
{
	struct server_conf sc;
	struct sockaddr_un sun;
	sigset_t all, old;
	int fd, rc;

	(void)state;
	(void)signal(SIGPIPE, SIG_IGN);
	(void)snprintf(dir, sizeof(dir), "%s/test_server.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	(void)snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	(void)strncpy(sun.sun_path, sock, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 128) == -1)
		return -1;
	memset(&sc, 0, sizeof(sc));
	sc.listen_fd = fd;
	sc.threads = THREADS;
	sc.io_timeout_ms = IO_TIMEOUT_MS;
	sc.idle_timeout_ms = 600000;
	sc.serve = serve;
	/* The workers inherit the mask: signals blocked, as fcgiq has them. */
	(void)sigfillset(&all);
	(void)sigdelset(&all, SIGSEGV);
	(void)sigdelset(&all, SIGBUS);
	(void)sigdelset(&all, SIGFPE);
	(void)sigdelset(&all, SIGILL);
	(void)sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = server_start(&sc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int
group_teardown(void **state)
{
	(void)state;
	(void)unlink(sock);
	return rmdir(dir);
}

/* --- tests --------------------------------------------------------------- */

/* Many connections, sequential and from several threads, all served. */
static void
test_many_connections(void **state)
{
	char body[32];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		(void)snprintf(body, sizeof(body), "seq-%d", i);
		assert_int_equal(one_shot(body), 0);
	}
	assert_int_equal(volley(8, 50), 0);
}

/* A kept connection carries request after request, pipelined too. */
static void
test_keep_alive(void **state)
{
	struct fcgibuf b = { 0 };
	char got[256];
	int fd, i;

	(void)state;
	assert_true((fd = client()) != -1);
	for (i = 0; i < 20; i++)
		roundtrip(fd, 1, i % 2 ? "odd" : "even");
	/* Three at once, answered in order. */
	build(&b, 1, 1, "/echo", "p1");
	build(&b, 1, 1, "/echo", "p2");
	build(&b, 1, 0, "/echo", "p3");
	assert_int_equal(send_all(fd, b.p, b.len), 0);
	fcgibuf_free(&b);
	assert_int_equal(read_answer(fd, got, sizeof(got)), 1);
	assert_string_equal(got, "ok:p1");
	assert_int_equal(read_answer(fd, got, sizeof(got)), 1);
	assert_string_equal(got, "ok:p2");
	assert_int_equal(read_answer(fd, got, sizeof(got)), 1);
	assert_string_equal(got, "ok:p3");
	assert_int_equal(read_answer(fd, got, sizeof(got)), 0);	/* closed */
	close(fd);
}

/*
 * Connections that say nothing -- kept ones between requests, new ones
 * before their request -- hold no worker: with many more of them than
 * workers, other connections are served, and each of them is served
 * when it speaks.
 */
static void
test_idle_hold_no_worker(void **state)
{
	int kept[3 * THREADS], silent[3 * THREADS], i;
	char body[32], want[64], got[64];

	(void)state;
	for (i = 0; i < 3 * THREADS; i++) {
		assert_true((kept[i] = client()) != -1);
		roundtrip(kept[i], 1, "first");
		assert_true((silent[i] = client()) != -1);
	}
	assert_int_equal(volley(4, 10), 0);
	for (i = 0; i < 3 * THREADS; i++) {
		(void)snprintf(body, sizeof(body), "kept-%d", i);
		roundtrip(kept[i], 1, body);
		(void)snprintf(body, sizeof(body), "silent-%d", i);
		assert_int_equal(send_request(silent[i], 1, 0, "/echo", body),
		    0);
	}
	for (i = 0; i < 3 * THREADS; i++) {
		(void)snprintf(body, sizeof(body), "silent-%d", i);
		(void)snprintf(want, sizeof(want), "ok:%s", body);
		assert_int_equal(read_answer(silent[i], got, sizeof(got)), 1);
		assert_string_equal(got, want);
		close(silent[i]);
		close(kept[i]);
	}
}

/*
 * Peers that send half a request and stall, one fewer than the workers:
 * each holds a worker while it is read (until io_timeout, longer than the
 * test), and the others are still served; the slow peers then finish
 * their requests and are answered too.
 */
static void
test_slow_peer(void **state)
{
	struct fcgibuf b = { 0 };
	int slow[THREADS - 1], i;
	char got[64];
	size_t half;

	(void)state;
	build(&b, 1, 0, "/echo", "slow");
	half = b.len / 2;
	for (i = 0; i < THREADS - 1; i++) {
		assert_true((slow[i] = client()) != -1);
		assert_int_equal(send_all(slow[i], b.p, half), 0);
	}
	assert_int_equal(volley(4, 25), 0);
	for (i = 0; i < THREADS - 1; i++)
		assert_int_equal(send_all(slow[i], b.p + half, b.len - half),
		    0);
	for (i = 0; i < THREADS - 1; i++) {
		assert_int_equal(read_answer(slow[i], got, sizeof(got)), 1);
		assert_string_equal(got, "ok:slow");
		close(slow[i]);
	}
	fcgibuf_free(&b);
	assert_int_equal(one_shot("after"), 0);
}

/*
 * Kept connections whose next requests arrive together, the first of
 * them half-sent and stalling: whatever the worker that takes it had
 * taken from the set with it goes back (duty_give), and those are
 * answered while the slow one is still being read.  Then it is too.
 * They arrive while the worker on duty is held in a serve (without
 * giving its duty away), so on a machine with one duty (two CPUs) it
 * takes them all in one epoll_wait.
 */
static void
test_stall_gives_back(void **state)
{
	struct fcgibuf b = { 0 };
	int fds[6], held, i;
	char body[32], want[64], got[64];
	size_t half;

	(void)state;
	for (i = 0; i < 6; i++) {
		assert_true((fds[i] = client()) != -1);
		roundtrip(fds[i], 1, "first");
	}
	gate_close();
	assert_true((held = client()) != -1);
	assert_int_equal(send_request(held, 1, 1, "/hold", "held"), 0);
	wait_blocked(1);
	build(&b, 1, 1, "/echo", "slow");
	half = b.len / 2;
	assert_int_equal(send_all(fds[0], b.p, half), 0);
	for (i = 1; i < 6; i++) {
		(void)snprintf(body, sizeof(body), "quick-%d", i);
		assert_int_equal(send_request(fds[i], 1, 1, "/echo", body), 0);
	}
	gate_open();
	assert_int_equal(read_answer(held, got, sizeof(got)), 1);
	assert_string_equal(got, "ok:held");
	close(held);
	for (i = 1; i < 6; i++) {
		(void)snprintf(want, sizeof(want), "ok:quick-%d", i);
		assert_int_equal(read_answer(fds[i], got, sizeof(got)), 1);
		assert_string_equal(got, want);
	}
	assert_int_equal(send_all(fds[0], b.p + half, b.len - half), 0);
	assert_int_equal(read_answer(fds[0], got, sizeof(got)), 1);
	assert_string_equal(got, "ok:slow");
	fcgibuf_free(&b);
	for (i = 0; i < 6; i++)
		close(fds[i]);
}

/*
 * Requests whose serve waits (as the router's does for a group commit or
 * a database connection), one fewer than the workers: the other
 * connections are still accepted and served meanwhile, and the waiting
 * ones are answered once they go on.
 */
static void
test_blocked_serve(void **state)
{
	int blocked[THREADS - 1], i;
	char got[64];

	(void)state;
	gate_close();
	for (i = 0; i < THREADS - 1; i++) {
		assert_true((blocked[i] = client()) != -1);
		assert_int_equal(send_request(blocked[i], 1, 0, "/block",
		    "waited"), 0);
		wait_blocked(i + 1);
	}
	assert_int_equal(volley(4, 10), 0);
	gate_open();
	for (i = 0; i < THREADS - 1; i++) {
		assert_int_equal(read_answer(blocked[i], got, sizeof(got)), 1);
		assert_string_equal(got, "ok:waited");
		close(blocked[i]);
	}
}

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cv;
	int		 done;
} stop = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void *
stopper(void *arg)
{
	(void)arg;
	server_stop(GRACE_MS);
	pthread_mutex_lock(&stop.lock);
	stop.done = 1;
	pthread_cond_broadcast(&stop.cv);
	pthread_mutex_unlock(&stop.lock);
	return NULL;
}

/*
 * server_stop: a request being served is answered, a kept idle
 * connection is closed, a request still arriving after the grace is cut,
 * and server_stop returns; the socket takes no more connections.
 */
static void
test_stop(void **state)
{
	struct fcgibuf b = { 0 };
	struct timespec ts;
	pthread_t th;
	int inflight, idle, partial, fd;

	char got[64];

	(void)state;
	/* Idle and kept. */
	assert_true((idle = client()) != -1);
	roundtrip(idle, 1, "before");
	/* Half a request, never finished. */
	assert_true((partial = client()) != -1);
	build(&b, 1, 0, "/echo", "never");
	assert_int_equal(send_all(partial, b.p, b.len / 2), 0);
	fcgibuf_free(&b);
	/* In flight: served, waiting at the gate. */
	gate_close();
	assert_true((inflight = client()) != -1);
	assert_int_equal(send_request(inflight, 1, 1, "/block", "late"), 0);
	wait_blocked(1);

	assert_int_equal(pthread_create(&th, NULL, stopper, NULL), 0);
	/* The request in flight is answered: let it go a moment into the
	 * stop (well inside the grace; on a box too loaded to have begun
	 * the stop by then, it is answered before, and the rest holds). */
	usleep(200000);
	gate_open();
	assert_int_equal(read_answer(inflight, got, sizeof(got)), 1);
	assert_string_equal(got, "ok:late");
	/* Kept, but the server is stopping: closed. */
	assert_int_equal(read_answer(inflight, got, sizeof(got)), 0);
	close(inflight);
	/* The idle connection is closed. */
	assert_int_equal(read_answer(idle, got, sizeof(got)), 0);
	close(idle);
	/* The one still arriving is cut after the grace (io_timeout is
	 * far beyond the cap). */
	assert_int_equal(read_answer(partial, got, sizeof(got)), 0);
	close(partial);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += CAP_S;
	pthread_mutex_lock(&stop.lock);
	while (!stop.done)
		if (pthread_cond_timedwait(&stop.cv, &stop.lock, &ts) ==
		    ETIMEDOUT)
			break;
	assert_true(stop.done);
	pthread_mutex_unlock(&stop.lock);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* Nothing listens any more. */
	fd = client();
	assert_int_equal(fd, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_teardown(name, reopen_gate)
		T(test_many_connections),
		T(test_keep_alive),
		T(test_idle_hold_no_worker),
		T(test_slow_peer),
		T(test_stall_gives_back),
		T(test_blocked_serve),
		T(test_stop),	/* last: the server ends */
#undef T
	};

	return cmocka_run_group_tests_name("server", tests, group_setup,
	    group_teardown);
}
