/*
 * server: the poller and the workers.
 *
 * A thread is tied to a connection only while a request is on it: the
 * poller accept4()s (close-on-exec, with SO_SNDTIMEO so no write can stall
 * a worker for longer than io_timeout), poll()s the idle connections, and
 * queues the readable ones; a worker reads the request (wire.c: the whole
 * request within io_timeout, however slowly it trickles), serves it, and
 * answers.  A connection the web server keeps (fastcgi_keep_conn) goes
 * back to the poller, unless the next request is there already.
 *
 * Shutdown needs no signal in the workers (they keep every signal blocked,
 * so no read is ever cut short by EINTR): the poller closes the listening
 * socket and the idle connections and queues the ones that have a request
 * waiting; workers drain the queue and exit.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "wire.h"

struct worker {
	pthread_t	 thread;
	int		 cur_fd;	/* connection being served, -1 */
	int		 started;
};

struct pconn {
	int	 fd;
	int64_t	 deadline;	/* monotonic ms: closed when idle past it */
};

static struct {
	struct server_conf	 conf;
	pthread_mutex_t		 lock;
	pthread_cond_t		 ready_cv;	/* workers wait for a connection */
	pthread_cond_t		 done_cv;	/* server_stop waits for workers */
	int			 ready[SERVER_MAX_CONNS];	/* ring */
	size_t			 rhead, rcount;
	int			 returned[SERVER_MAX_CONNS];	/* kept-alive, back from workers */
	size_t			 nreturned;
	int			 nconns;	/* open connections, any state */
	int			 stopping;
	int			 poller_done;
	int			 alive;		/* workers still running */
	int			 wake[2];	/* pipe: rouse the poller */
	pthread_t		 poller;
	struct worker		*workers;
	/* poller's own */
	struct pconn		 idle[SERVER_MAX_CONNS];
	size_t			 nidle;
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.ready_cv = PTHREAD_COND_INITIALIZER,
	.done_cv = PTHREAD_COND_INITIALIZER,
	.wake = { -1, -1 },
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
rouse(void)
{
	char c = 1;

	/* EAGAIN: the pipe is full, the poller is roused already. */
	(void)!write(srv.wake[1], &c, 1);
}

/* With srv.lock held. */
static void
ready_push(int fd)
{
	srv.ready[(srv.rhead + srv.rcount) % SERVER_MAX_CONNS] = fd;
	srv.rcount++;
	pthread_cond_signal(&srv.ready_cv);
}

static void
conn_gone(void)
{
	pthread_mutex_lock(&srv.lock);
	if (srv.nconns-- == SERVER_MAX_CONNS)
		rouse();	/* the poller may accept again */
	pthread_mutex_unlock(&srv.lock);
}

static void
set_timeouts(int fd)
{
	struct timeval tv;

	tv.tv_sec = srv.conf.io_timeout_ms / 1000;
	tv.tv_usec = (srv.conf.io_timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		log_warn("server: connection: timeouts");
}

static void
accept_some(int64_t now)
{
	int fd, n;

	for (n = 0; n < 64; n++) {
		pthread_mutex_lock(&srv.lock);
		if (srv.nconns >= SERVER_MAX_CONNS) {
			pthread_mutex_unlock(&srv.lock);
			return;
		}
		pthread_mutex_unlock(&srv.lock);
		fd = accept4(srv.conf.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("server: accept");
			return;
		}
		if (srv.nidle >= SERVER_MAX_CONNS) {
			log_warnx("server: accept: too many connections");
			close(fd);
			continue;
		}
		set_timeouts(fd);
		pthread_mutex_lock(&srv.lock);
		srv.nconns++;
		pthread_mutex_unlock(&srv.lock);
		/* A new connection must bring its request within io_timeout. */
		srv.idle[srv.nidle].fd = fd;
		srv.idle[srv.nidle].deadline = now + srv.conf.io_timeout_ms;
		srv.nidle++;
	}
}

static void
idle_remove(size_t i)
{
	srv.idle[i] = srv.idle[--srv.nidle];
}

/* Queue the idle connections that poll() found readable (or hung up: the
 * worker sees the end and closes), close the expired ones. */
static void
idle_scan(struct pollfd *pfd, size_t first, size_t n, int64_t now,
    int close_all)
{
	size_t k;
	int fd;

	/* pfd[first + k] watched idle[k] for k < n; removal swaps from the
	 * end, so walk backwards to keep the pairing. */
	for (k = n; k-- > 0;) {
		fd = srv.idle[k].fd;
		if (pfd[first + k].revents != 0) {
			pthread_mutex_lock(&srv.lock);
			ready_push(fd);
			pthread_mutex_unlock(&srv.lock);
			idle_remove(k);
		} else if (close_all || now >= srv.idle[k].deadline) {
			close(fd);
			conn_gone();
			idle_remove(k);
		}
	}
}

static void *
poller(void *arg)
{
	static struct pollfd pfd[SERVER_MAX_CONNS + 2];
	int64_t now, next;
	size_t i, n, first;
	int stopping, accepting, timeout;
	char buf[64];

	(void)arg;
	for (;;) {
		now = mono_ms();
		pthread_mutex_lock(&srv.lock);
		stopping = srv.stopping;
		for (i = 0; i < srv.nreturned; i++) {
			srv.idle[srv.nidle].fd = srv.returned[i];
			srv.idle[srv.nidle].deadline = now +
			    srv.conf.idle_timeout_ms;
			srv.nidle++;
		}
		srv.nreturned = 0;
		accepting = srv.nconns < SERVER_MAX_CONNS;
		pthread_mutex_unlock(&srv.lock);
		if (stopping)
			break;

		pfd[0].fd = srv.wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = accepting ? srv.conf.listen_fd : -1;
		pfd[1].events = POLLIN;
		first = 2;
		next = now + 60000;
		for (i = 0; i < srv.nidle; i++) {
			pfd[first + i].fd = srv.idle[i].fd;
			pfd[first + i].events = POLLIN;
			pfd[first + i].revents = 0;
			if (srv.idle[i].deadline < next)
				next = srv.idle[i].deadline;
		}
		n = srv.nidle;
		timeout = next > now ? (int)(next - now) : 0;
		if (poll(pfd, first + n, timeout) == -1) {
			if (errno != EINTR)
				log_warn("server: poll");
			continue;
		}
		now = mono_ms();
		if (pfd[0].revents & POLLIN)
			while (read(srv.wake[0], buf, sizeof(buf)) > 0)
				;
		/* Scan before accepting: accepting appends to idle[]. */
		idle_scan(pfd, first, n, now, 0);
		if (pfd[1].revents & POLLIN)
			accept_some(now);
	}

	/* Stop accepting; what is queued in the backlog goes to the other
	 * processes sharing the socket, or is refused. */
	close(srv.conf.listen_fd);
	srv.conf.listen_fd = -1;
	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < srv.nreturned; i++) {
		srv.idle[srv.nidle].fd = srv.returned[i];
		srv.idle[srv.nidle].deadline = 0;
		srv.nidle++;
	}
	srv.nreturned = 0;
	pthread_mutex_unlock(&srv.lock);
	/* A connection whose request is arriving now is in flight: give the
	 * web server a moment to finish sending, then close the rest. */
	for (i = 0; i < srv.nidle; i++) {
		pfd[i].fd = srv.idle[i].fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if (srv.nidle > 0 && poll(pfd, srv.nidle, 50) == -1)
		for (i = 0; i < srv.nidle; i++)
			pfd[i].revents = 0;
	idle_scan(pfd, 0, srv.nidle, mono_ms(), 1);

	pthread_mutex_lock(&srv.lock);
	srv.poller_done = 1;
	pthread_cond_broadcast(&srv.ready_cv);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/*
 * After an answer on a kept connection, wait a moment on it before handing
 * it back: under load the web server reuses the connection it just got
 * back at once, and the round trip through the poller costs two context
 * switches per request.  Only when no other connection waits for a worker.
 */
static int
linger(int fd)
{
	struct pollfd pfd;

	if (__atomic_load_n(&srv.rcount, __ATOMIC_RELAXED) > 0 ||
	    __atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
		return 0;
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, SERVER_LINGER_MS) == 1;
}

static void *
worker(void *arg)
{
	struct worker *w = arg;
	struct wire wire;
	int fd = -1, gone, rc;

	if (wire_init(&wire, srv.conf.io_timeout_ms, SERVER_MAX_CONNS) == -1) {
		log_warnx("server: worker: out of memory");
		goto out;
	}
	for (;;) {
		if (fd == -1) {
			pthread_mutex_lock(&srv.lock);
			while (srv.rcount == 0 && !srv.poller_done)
				pthread_cond_wait(&srv.ready_cv, &srv.lock);
			if (srv.rcount == 0) {
				pthread_mutex_unlock(&srv.lock);
				break;
			}
			fd = srv.ready[srv.rhead];
			srv.rhead = (srv.rhead + 1) % SERVER_MAX_CONNS;
			srv.rcount--;
			w->cur_fd = fd;
			pthread_mutex_unlock(&srv.lock);
			wire_attach(&wire, fd);
		}

		rc = wire_next(&wire);
		if (rc == 1) {
			srv.conf.serve(&wire);
			rc = wire_end(&wire, SERVER_DRAIN_MAX);
			if (__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
				rc = 0;
		}
		/* A request already buffered (pipelined) or arriving at once
		 * is served without the round trip through the poller. */
		if (rc == 1 && (wire_pending(&wire) || linger(fd)))
			continue;

		gone = 0;
		pthread_mutex_lock(&srv.lock);
		if (rc == 1 && !srv.stopping) {
			w->cur_fd = -1;
			srv.returned[srv.nreturned++] = fd;
			rouse();
		} else
			gone = 1;
		pthread_mutex_unlock(&srv.lock);
		if (gone) {
			wire_close(&wire);
			pthread_mutex_lock(&srv.lock);
			w->cur_fd = -1;
			pthread_mutex_unlock(&srv.lock);
			conn_gone();
		}
		fd = -1;
	}
	wire_free(&wire);
out:
	pthread_mutex_lock(&srv.lock);
	srv.alive--;
	pthread_cond_broadcast(&srv.done_cv);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

int
server_start(const struct server_conf *conf)
{
	int flags, i;

	srv.conf = *conf;
	if ((flags = fcntl(conf->listen_fd, F_GETFL)) == -1 ||
	    fcntl(conf->listen_fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(conf->listen_fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	if (pipe2(srv.wake, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	if ((srv.workers = calloc((size_t)conf->threads,
	    sizeof(*srv.workers))) == NULL)
		return -1;
	for (i = 0; i < conf->threads; i++) {
		srv.workers[i].cur_fd = -1;
		if ((errno = pthread_create(&srv.workers[i].thread, NULL,
		    worker, &srv.workers[i])) != 0)
			goto fail;
		srv.workers[i].started = 1;
		pthread_mutex_lock(&srv.lock);
		srv.alive++;
		pthread_mutex_unlock(&srv.lock);
	}
	if ((errno = pthread_create(&srv.poller, NULL, poller, NULL)) != 0)
		goto fail;
	return 0;
fail:
	/* Workers started so far exit when the (absent) poller is "done". */
	pthread_mutex_lock(&srv.lock);
	srv.poller_done = 1;
	pthread_cond_broadcast(&srv.ready_cv);
	pthread_mutex_unlock(&srv.lock);
	for (i = 0; i < conf->threads; i++)
		if (srv.workers[i].started)
			pthread_join(srv.workers[i].thread, NULL);
	return -1;
}

void
server_stop(int grace_ms)
{
	struct timespec deadline;
	int i, cut = 0;

	pthread_mutex_lock(&srv.lock);
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&srv.lock);
	rouse();
	pthread_join(srv.poller, NULL);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&srv.lock);
	while (srv.alive > 0) {
		if (pthread_cond_timedwait(&srv.done_cv, &srv.lock,
		    &deadline) == ETIMEDOUT) {
			/* Slow clients: cut their connections short. */
			for (i = 0; i < srv.conf.threads; i++)
				if (srv.workers[i].cur_fd >= 0) {
					shutdown(srv.workers[i].cur_fd,
					    SHUT_RDWR);
					cut++;
				}
			break;
		}
	}
	pthread_mutex_unlock(&srv.lock);
	if (cut > 0)
		log_warnx("server: stop: %d connections cut after the grace "
		    "period", cut);
	for (i = 0; i < srv.conf.threads; i++)
		pthread_join(srv.workers[i].thread, NULL);
	free(srv.workers);
	srv.workers = NULL;
	close(srv.wake[0]);
	close(srv.wake[1]);
}
