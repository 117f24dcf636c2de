/*
 * server: the workers and the poller.
 *
 * Workers accept for themselves: each waits in its own epoll set on the
 * listening socket (EPOLLEXCLUSIVE: a connection wakes one worker, not
 * all), accept4()s, reads the request (wire.c: whole within io_timeout,
 * however slowly it trickles), serves it and answers, with no hand-off
 * between threads on the way -- on this kind of VM a context switch costs
 * more than the whole parse.  Only a few workers are on duty (waiting for
 * work) at a time, so a busy one accepts the next connection itself
 * instead of a sleeping one being woken for it; one whose peer is slow
 * hands its duty to a worker on standby (duty_take).  The poller only
 * watches connections that have nothing to read: kept-alive ones between
 * requests (fastcgi_keep_conn) and new ones whose request has not arrived
 * within SERVER_LINGER_MS, so neither holds a worker.  When one becomes readable the poller queues it
 * (srv.ready, counted by the semaphore eventfd ready_efd, also in every
 * worker's epoll set) and a worker takes it before accepting anew.
 *
 * Reads and writes never block past their deadlines (wire.c polls with
 * them), so no peer can hold a worker for longer than io_timeout.
 *
 * Shutdown needs no signal in the workers (they keep every signal blocked,
 * so no read is ever cut short by EINTR): workers stop accepting once
 * srv.stopping is set; the poller queues the connections that have a
 * request waiting, closes the others and makes stop_efd readable; workers
 * drain the queue and exit; then the listening socket is closed (what is
 * left in its backlog goes to the other processes sharing it).
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "wire.h"

enum { EV_LISTEN, EV_READY, EV_STOP };

/* 64 fds for all but connections: ~8 SQLite handles x 3 files, logs, pipes. */
#define FD_RESERVE	64
#define MIN_CONNS	16
#define MAX_CONNS	16384	/* the poller's arrays stay under 1 MB */

struct worker {
	pthread_t	 thread;
	int		 cur_fd;	/* connection being served, -1 (atomic) */
	int		 started;
	int		 on_duty;	/* holds one of srv.duty_max; written by its
					   own thread, under srv.lock */
};

struct pconn {
	int	 fd;
	int64_t	 deadline;	/* monotonic ms: closed when idle past it */
};

static struct {
	struct server_conf	 conf;
	pthread_mutex_t		 lock;
	pthread_cond_t		 done_cv;	/* server_stop waits for workers */
	pthread_cond_t		 standby_cv;	/* workers off duty wait here */
	int			 duty, duty_max;
	int			 max_conns;	/* from RLIMIT_NOFILE */
	int			*ready;		/* ring of max_conns */
	size_t			 rhead, rcount;
	int			 ready_efd;	/* semaphore: one per ready[] entry */
	int			 stop_efd;	/* readable once the poller is done */
	struct pconn		*returned;	/* to the poller */
	size_t			 nreturned;
	int			 nconns;	/* open connections, any state (atomic) */
	int			 stopping;
	int			 poller_done;
	int			 alive;		/* workers still running */
	int			 wake[2];	/* pipe: rouse the poller */
	pthread_t		 poller;
	struct worker		*workers;
	/* poller's own */
	struct pconn		*idle;
	struct pollfd		*pfd;		/* 1 + max_conns */
	size_t			 nidle;
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done_cv = PTHREAD_COND_INITIALIZER,
	.standby_cv = PTHREAD_COND_INITIALIZER,
	.ready_efd = -1,
	.stop_efd = -1,
	.wake = { -1, -1 },
};

/* The worker running on this thread; NULL on any other. */
static __thread struct worker	*self;

static void
rouse(void)
{
	char c = 1;

	/* EAGAIN: the pipe is full, the poller is roused already. */
	(void)!write(srv.wake[1], &c, 1);
}

static void
signal_efd(int efd)
{
	uint64_t one = 1;

	(void)!write(efd, &one, sizeof(one));
}

/* With srv.lock held. */
static void
ready_push(int fd)
{
	srv.ready[(srv.rhead + srv.rcount) % srv.max_conns] = fd;
	srv.rcount++;
	signal_efd(srv.ready_efd);
}

/* Hand connection fd to the poller until it is readable or deadline. */
static void
to_poller(int fd, int64_t deadline)
{
	pthread_mutex_lock(&srv.lock);
	srv.returned[srv.nreturned].fd = fd;
	srv.returned[srv.nreturned].deadline = deadline;
	srv.nreturned++;
	pthread_mutex_unlock(&srv.lock);
	rouse();
}

static void
conn_gone(void)
{
	__atomic_sub_fetch(&srv.nconns, 1, __ATOMIC_RELAXED);
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

/* Take what the workers handed over. */
static int
take_returned(void)
{
	size_t i;
	int stopping;

	pthread_mutex_lock(&srv.lock);
	stopping = srv.stopping;
	for (i = 0; i < srv.nreturned; i++)
		srv.idle[srv.nidle++] = srv.returned[i];
	srv.nreturned = 0;
	pthread_mutex_unlock(&srv.lock);
	return stopping;
}

static void *
poller(void *arg)
{
	struct pollfd *pfd = srv.pfd;
	int64_t now, next;
	size_t i, n;
	int timeout;
	char buf[64];

	(void)arg;
	while (!take_returned()) {
		now = mono_ms();
		pfd[0].fd = srv.wake[0];
		pfd[0].events = POLLIN;
		next = now + 60000;
		for (i = 0; i < srv.nidle; i++) {
			pfd[1 + i].fd = srv.idle[i].fd;
			pfd[1 + i].events = POLLIN;
			pfd[1 + i].revents = 0;
			if (srv.idle[i].deadline < next)
				next = srv.idle[i].deadline;
		}
		n = srv.nidle;
		timeout = next > now ? (int)(next - now) : 0;
		if (poll(pfd, 1 + n, timeout) == -1) {
			if (errno != EINTR)
				log_warn("server: poll");
			continue;
		}
		if (pfd[0].revents & POLLIN)
			while (read(srv.wake[0], buf, sizeof(buf)) > 0)
				;
		idle_scan(pfd, 1, n, mono_ms(), 0);
	}

	/* Workers accept no more.  A connection whose request is arriving
	 * now is in flight: give the web server a moment to finish sending,
	 * then close the rest.  Workers still serving may hand connections
	 * back meanwhile; they are closed too. */
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
	signal_efd(srv.stop_efd);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/*
 * How long a worker waits for the request on a new connection, or for the
 * next one on a kept connection after an answer, before it hands the
 * connection to the poller: the web server writes right after connecting,
 * and under load reuses a connection it just got back at once, and the
 * round trip through the poller costs two context switches.  Not when
 * another connection waits for a worker.
 */
static int
linger_ms(void)
{
	if (__atomic_load_n(&srv.rcount, __ATOMIC_RELAXED) > 0 ||
	    __atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
		return 0;
	return SERVER_LINGER_MS;
}

static int
worker_epoll(void)
{
	struct epoll_event ev;
	int ep;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u32 = EV_LISTEN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, srv.conf.listen_fd, &ev) == -1)
		goto fail;
	ev.data.u32 = EV_READY;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, srv.ready_efd, &ev) == -1)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.u32 = EV_STOP;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, srv.stop_efd, &ev) == -1)
		goto fail;
	return ep;
fail:
	close(ep);
	return -1;
}

/* A new connection, or -1 (none now). */
static int
accept_one(void)
{
	int fd;

	if (__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
		return -1;
	if ((fd = accept4(srv.conf.listen_fd, NULL, NULL,
	    SOCK_CLOEXEC)) == -1) {
		if (errno == EMFILE || errno == ENFILE) {
			log_warn("server: accept");
			usleep(10000);	/* the socket stays readable */
		} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR && errno != ECONNABORTED)
			log_warn("server: accept");
		return -1;
	}
	if (__atomic_add_fetch(&srv.nconns, 1, __ATOMIC_RELAXED) >
	    srv.max_conns) {
		conn_gone();
		log_warnx("server: accept: %d connections open already",
		    srv.max_conns);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The next connection to serve: a readable one the poller queued (it has
 * waited already), else a new one.  *fresh: a new one.  -1 when the server
 * stops and nothing is queued.
 */
static int
next_conn(int ep, int *fresh)
{
	struct epoll_event evs[3];
	uint64_t one;
	int fd;

	for (;;) {
		if (__atomic_load_n(&srv.rcount, __ATOMIC_RELAXED) > 0 &&
		    read(srv.ready_efd, &one, sizeof(one)) == sizeof(one)) {
			pthread_mutex_lock(&srv.lock);
			fd = srv.ready[srv.rhead];
			srv.rhead = (srv.rhead + 1) % srv.max_conns;
			srv.rcount--;
			pthread_mutex_unlock(&srv.lock);
			*fresh = 0;
			return fd;
		}
		if (__atomic_load_n(&srv.poller_done, __ATOMIC_ACQUIRE))
			return -1;
		if ((fd = accept_one()) != -1) {
			*fresh = 1;
			return fd;
		}
		if (epoll_wait(ep, evs, 3, -1) == -1 && errno != EINTR) {
			log_warn("server: epoll_wait");
			usleep(10000);
		}
	}
}

/*
 * Duty.  Only srv.duty_max workers at a time wait for connections; the
 * others wait on standby_cv.  Each connection that arrives wakes a worker
 * waiting in epoll, and with 32 of them waiting that was a different,
 * cold thread for nearly every request: two context switches a request
 * that a worker still busy would have saved by accepting the next
 * connection itself (one worker on duty served far more than 32 did).
 * The other workers are still there for slow peers: a worker whose read
 * or write waits past WIRE_STALL_MS gives its duty to one on standby, and
 * takes a duty again, or waits for one, when it is done with that
 * connection.
 */
static void
duty_take(struct worker *w)
{
	/* Only this worker's own thread changes w->on_duty: no lock needed
	 * to see that it still holds one, the usual case between requests
	 * (srv.lock also guards the poller's queue). */
	if (w->on_duty)
		return;
	pthread_mutex_lock(&srv.lock);
	while (!w->on_duty) {
		if (srv.duty < srv.duty_max || srv.stopping) {
			srv.duty++;
			w->on_duty = 1;
		} else
			pthread_cond_wait(&srv.standby_cv, &srv.lock);
	}
	pthread_mutex_unlock(&srv.lock);
}

/* wire's on_stall: this worker's connection is slow. */
static void
duty_give(void *arg)
{
	struct worker *w = arg;

	if (!w->on_duty)
		return;
	pthread_mutex_lock(&srv.lock);
	w->on_duty = 0;
	srv.duty--;
	pthread_cond_signal(&srv.standby_cv);
	pthread_mutex_unlock(&srv.lock);
}

static void *
worker(void *arg)
{
	struct worker *w = arg;
	struct wire wire;
	int ep, fd = -1, fresh, rc, wait = -1, park_ms = 0;

	self = w;
	if ((ep = worker_epoll()) == -1) {
		log_warn("server: worker: epoll");
		goto out;
	}
	if (wire_init(&wire, srv.conf.io_timeout_ms, srv.max_conns) == -1) {
		log_warnx("server: worker: out of memory");
		close(ep);
		goto out;
	}
	wire.on_stall = duty_give;
	wire.on_stall_arg = w;
	for (;;) {
		if (fd == -1) {
			duty_take(w);
			if ((fd = next_conn(ep, &fresh)) == -1)
				break;
			__atomic_store_n(&w->cur_fd, fd, __ATOMIC_RELAXED);
			wire_attach(&wire, fd);
			/* A new connection that brings nothing at once waits
			 * in the poller: it must not hold a worker.  One the
			 * poller queued is readable. */
			wait = fresh ? linger_ms() : -1;
			park_ms = srv.conf.io_timeout_ms;
		}

		rc = wire_next(&wire, wait);
		if (rc == 1) {
			if (srv.conf.serve(&wire) == SERVER_DETACHED) {
				/* Answered later, by another thread, which
				 * then calls server_release(). */
				__atomic_store_n(&w->cur_fd, -1,
				    __ATOMIC_RELAXED);
				fd = -1;
				continue;
			}
			rc = wire_end(&wire, SERVER_DRAIN_MAX);
			if (__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
				rc = 0;
			if (rc == 1) {
				/* The next request, if it is there or comes
				 * at once (pipelined, or the web server reuses
				 * the connection). */
				wait = linger_ms();
				park_ms = srv.conf.idle_timeout_ms;
				continue;
			}
		}

		__atomic_store_n(&w->cur_fd, -1, __ATOMIC_RELAXED);
		if (rc == WIRE_IDLE)
			to_poller(fd, mono_ms() + park_ms);
		else {
			wire_close(&wire);
			conn_gone();
		}
		fd = -1;
	}
	wire_free(&wire);
	close(ep);
out:
	duty_give(w);
	pthread_mutex_lock(&srv.lock);
	srv.alive--;
	pthread_cond_broadcast(&srv.done_cv);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/*
 * A worker that waits in serve() would keep its duty, and with one duty
 * (two cores) no connection was accepted until it went on: a keyed POST
 * waiting for its group commit held up every status read.  So it hands
 * the duty to a worker on standby, as a stalled read does, and takes one
 * again when it is done with its connection.
 */
void
server_blocking(void)
{
	if (self != NULL)
		duty_give(self);
}

void
server_release(int fd, int keep)
{
	if (keep && !__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
		to_poller(fd, mono_ms() + srv.conf.idle_timeout_ms);
	else {
		close(fd);
		conn_gone();
	}
}

/* How many connections fit under RLIMIT_NOFILE beside FD_RESERVE and
 * one epoll fd a worker. */
static int
max_conns(int threads)
{
	struct rlimit rl;
	rlim_t n;

	n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	if (n == RLIM_INFINITY || n > MAX_CONNS + FD_RESERVE + (rlim_t)threads)
		return MAX_CONNS;
	if (n < MIN_CONNS + FD_RESERVE + (rlim_t)threads)
		return MIN_CONNS;
	return (int)(n - FD_RESERVE - (rlim_t)threads);
}

int
server_start(const struct server_conf *conf)
{
	size_t n;
	int flags, i;

	srv.conf = *conf;
	srv.max_conns = max_conns(conf->threads);
	n = (size_t)srv.max_conns;
	if ((srv.ready = calloc(n, sizeof(*srv.ready))) == NULL ||
	    (srv.returned = calloc(n, sizeof(*srv.returned))) == NULL ||
	    (srv.idle = calloc(n, sizeof(*srv.idle))) == NULL ||
	    (srv.pfd = calloc(n + 1, sizeof(*srv.pfd))) == NULL)
		return -1;
	srv.duty_max = (int)(sysconf(_SC_NPROCESSORS_ONLN) / 2);
	if (srv.duty_max < 1)
		srv.duty_max = 1;
	if (srv.duty_max > conf->threads)
		srv.duty_max = conf->threads;
	if ((flags = fcntl(conf->listen_fd, F_GETFL)) == -1 ||
	    fcntl(conf->listen_fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(conf->listen_fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	if (pipe2(srv.wake, O_NONBLOCK | O_CLOEXEC) == -1 ||
	    (srv.ready_efd = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK |
	    EFD_CLOEXEC)) == -1 ||
	    (srv.stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
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
	srv.stopping = 1;
	srv.poller_done = 1;
	signal_efd(srv.stop_efd);
	pthread_cond_broadcast(&srv.standby_cv);
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
	int i, fd, cut = 0;

	pthread_mutex_lock(&srv.lock);
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&srv.standby_cv);	/* they drain too */
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
			for (i = 0; i < srv.conf.threads; i++) {
				fd = __atomic_load_n(&srv.workers[i].cur_fd,
				    __ATOMIC_RELAXED);
				if (fd >= 0) {
					shutdown(fd, SHUT_RDWR);
					cut++;
				}
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
	/* Connections workers handed back after the poller ended. */
	for (i = 0; i < (int)srv.nreturned; i++) {
		close(srv.returned[i].fd);
		srv.nconns--;
	}
	srv.nreturned = 0;
	close(srv.conf.listen_fd);
	srv.conf.listen_fd = -1;
	free(srv.workers);
	srv.workers = NULL;
	free(srv.ready);
	free(srv.returned);
	free(srv.idle);
	free(srv.pfd);
	srv.ready = NULL;
	srv.returned = NULL;
	srv.idle = NULL;
	srv.pfd = NULL;
	close(srv.wake[0]);
	close(srv.wake[1]);
	close(srv.ready_efd);
	close(srv.stop_efd);
}
