/*
 * server: the workers and the connections they share.
 *
 * Every connection lives in one epoll set, shared by the workers, armed
 * EPOLLONESHOT while it waits for bytes: a kept connection between
 * requests and a new one whose request has not arrived.  The listening
 * socket is in the same set.  A worker on duty waits in that set, and
 * whatever it gets -- a new connection or a request on a kept one -- it
 * reads, serves and answers itself (wire.c: the request whole within
 * io_timeout, however slowly it trickles), with no hand-off between
 * threads and no lock on the way; on this kind of VM a context switch
 * costs more than the whole parse.  An intake is detached and answered by
 * the committer after its COMMIT (router.c), which re-arms the connection
 * (server_release) -- one epoll_ctl -- so the next request on it wakes
 * whichever worker is on duty, with nothing in between.  An idle
 * connection, kept or new, holds no worker: it is only armed in the set.
 *
 * Only a few workers are on duty (waiting in the set) at a time, so a busy
 * one takes the next event itself instead of a sleeping one being woken
 * for it (epoll wakes its waiters in turn: with 32 of them, a cold thread
 * per request).  One whose peer is slow hands its duty to a worker on
 * standby (duty_give), and the events it had taken but not begun go back
 * to the set, so a slow peer delays nobody else.
 *
 * Each connection's slot (indexed by its fd) says who holds it, in one
 * atomic word with the connection's generation (the fd number is reused
 * after a close; an event carries the generation it was armed with):
 *
 *   FREE --accept--> BUSY --conn_arm--> ARMING --> IDLE --event--> BUSY
 *                     |                   | event:           |
 *                     |                   v FIRED (re-armed) | sweep: past
 *                     +--conn_close--> FREE <----------------+ its deadline
 *
 * Whoever holds a connection BUSY (a worker, the committer, the park) is
 * the only one to touch it; a worker takes an IDLE one from its event with
 * a compare-and-swap, as the sweep does one past its deadline, so an event
 * and a timeout never both act on one connection.
 *
 * Reads and writes never block past their deadlines (wire.c polls with
 * them), so no peer can hold a worker for longer than io_timeout.
 *
 * Shutdown needs no signal in the workers (they keep every signal blocked,
 * so no read is ever cut short by EINTR): server_stop sets srv.stopping
 * (workers accept no more, answers close their connections), takes the
 * listening socket out of the set, closes the idle connections but those
 * whose request is arriving, then makes stop_efd readable; workers serve
 * what is left in the set and exit; then the listening socket is closed
 * (what is left in its backlog goes to the other processes sharing it).
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

#define EV_LISTEN	UINT64_MAX
#define EV_STOP		(UINT64_MAX - 1)

/* 64 fds for all but connections: ~8 SQLite handles x 3 files, logs, pipes. */
#define FD_RESERVE	64
#define MIN_CONNS	16
#define MAX_CONNS	16384
#define MAX_SLOTS	(1 << 20)	/* fds past this are refused */
#define NEVENTS		16
#define ACCEPT_BATCH	16	/* new connections served per listener event */
#define SWEEP_MAX_MS	1000	/* idle deadlines are kept to this */
#define STOP_ARRIVE_MS	50	/* a request arriving at the stop is served */

enum { ST_FREE, ST_BUSY, ST_ARMING, ST_FIRED, ST_IDLE };

#define ST(v)		((int)((v) & 0xff))
#define GEN(v)		((uint32_t)((v) >> 32))
#define MKST(g, s)	((uint64_t)(g) << 32 | (uint64_t)(s))
#define EVDATA(g, fd)	((uint64_t)(g) << 32 | (uint32_t)(fd))

struct slot {
	uint64_t	 state;		/* MKST(generation, ST_*), atomic */
	int64_t		 deadline;	/* monotonic ms, while IDLE (atomic) */
	int		 in_set;	/* registered in srv.ep; the holder's */
};

struct worker {
	pthread_t		 thread;
	int			 cur_fd;	/* being served, -1 (atomic) */
	int			 started;
	int			 on_duty;	/* holds one of srv.duty_max;
						   written by its own thread,
						   under srv.lock */
	struct epoll_event	 evs[NEVENTS];	/* taken from the set */
	int			 nev, next;	/* evs[next..nev) not begun */
};

static struct {
	struct server_conf	 conf;
	pthread_mutex_t		 lock;
	pthread_cond_t		 done_cv;	/* server_stop waits for workers */
	pthread_cond_t		 standby_cv;	/* workers off duty wait here */
	int			 duty, duty_max;
	int			 max_conns;	/* from RLIMIT_NOFILE */
	int			 ep;		/* the set: listener, connections,
						   stop_efd */
	int			 stop_efd;	/* readable once the idle are closed */
	struct slot		*slots;		/* by fd */
	int			 nslots;
	int			 hi_fd;		/* highest fd accepted (atomic) */
	int			 nconns;	/* open connections, any state (atomic) */
	int64_t			 next_sweep;	/* mono ms (atomic) */
	int			 sweep_ms;
	int			 stopping;
	int			 stop_done;	/* the idle are closed (atomic) */
	int			 alive;		/* workers still running */
	struct worker		*workers;
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done_cv = PTHREAD_COND_INITIALIZER,
	.standby_cv = PTHREAD_COND_INITIALIZER,
	.ep = -1,
	.stop_efd = -1,
};

/* The worker running on this thread; NULL on any other. */
static __thread struct worker	*self;

static uint64_t
slot_load(int fd)
{
	return __atomic_load_n(&srv.slots[fd].state, __ATOMIC_ACQUIRE);
}

/* Close connection fd, held BUSY.  Its slot is free before the fd number
 * can be reused. */
static void
conn_close(int fd)
{
	struct slot *s = &srv.slots[fd];

	s->in_set = 0;		/* close() takes it out of the set */
	__atomic_store_n(&s->state, MKST(GEN(slot_load(fd)), ST_FREE),
	    __ATOMIC_RELEASE);
	close(fd);
	__atomic_sub_fetch(&srv.nconns, 1, __ATOMIC_RELAXED);
}

/*
 * Arm connection fd (held BUSY) in the set until its next byte or
 * deadline; it is no longer the caller's.  An event between the arming and
 * IDLE (the peer was quick) finds ARMING, marks it FIRED and is dropped;
 * then it is armed again, and the event comes again: the bytes are there.
 * 0, or -1: it could not be armed, and is closed.
 */
static int
conn_arm(int fd, int64_t deadline)
{
	struct slot *s = &srv.slots[fd];
	struct epoll_event ev;
	uint32_t gen = GEN(slot_load(fd));
	uint64_t want;

	__atomic_store_n(&s->deadline, deadline, __ATOMIC_RELAXED);
	for (;;) {
		__atomic_store_n(&s->state, MKST(gen, ST_ARMING),
		    __ATOMIC_RELEASE);
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLONESHOT;
		ev.data.u64 = EVDATA(gen, fd);
		if (epoll_ctl(srv.ep, s->in_set ? EPOLL_CTL_MOD :
		    EPOLL_CTL_ADD, fd, &ev) == -1) {
			log_warn("server: epoll_ctl");
			__atomic_store_n(&s->state, MKST(gen, ST_BUSY),
			    __ATOMIC_RELEASE);
			conn_close(fd);
			return -1;
		}
		s->in_set = 1;
		want = MKST(gen, ST_ARMING);
		if (__atomic_compare_exchange_n(&s->state, &want,
		    MKST(gen, ST_IDLE), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 0;
		/* FIRED: arm again. */
	}
}

/* Take connection fd of generation gen from its event: 1 when it is now
 * the caller's (BUSY), 0 when the event is stale or early. */
static int
conn_claim(int fd, uint32_t gen)
{
	uint64_t v;

	if (fd < 0 || fd >= srv.nslots)
		return 0;
	v = slot_load(fd);
	for (;;) {
		if (GEN(v) != gen)
			return 0;
		if (ST(v) == ST_IDLE) {
			if (__atomic_compare_exchange_n(&srv.slots[fd].state,
			    &v, MKST(gen, ST_BUSY), 0, __ATOMIC_ACQ_REL,
			    __ATOMIC_ACQUIRE))
				return 1;
		} else if (ST(v) == ST_ARMING) {
			if (__atomic_compare_exchange_n(&srv.slots[fd].state,
			    &v, MKST(gen, ST_FIRED), 0, __ATOMIC_ACQ_REL,
			    __ATOMIC_ACQUIRE))
				return 0;
		} else
			return 0;
	}
}

enum { SWEEP_DEADLINES, SWEEP_STOP, SWEEP_ALL };

/*
 * Close the idle connections past their deadlines (SWEEP_DEADLINES), or
 * all of them but those with bytes waiting, armed again for a worker
 * (SWEEP_STOP), or all (SWEEP_ALL).  Each is claimed first, so an event
 * cannot serve it meanwhile.
 */
static void
sweep(int64_t now, int how)
{
	int all = how != SWEEP_DEADLINES;
	struct pollfd pfd;
	uint64_t v;
	int fd, hi;

	hi = __atomic_load_n(&srv.hi_fd, __ATOMIC_ACQUIRE);
	for (fd = 0; fd <= hi && fd < srv.nslots; fd++) {
		v = slot_load(fd);
		if (ST(v) != ST_IDLE || (!all && now <
		    __atomic_load_n(&srv.slots[fd].deadline, __ATOMIC_RELAXED)))
			continue;
		if (!conn_claim(fd, GEN(v)))
			continue;
		/* Claimed: served and armed again since the look above? */
		if (!all && now < __atomic_load_n(&srv.slots[fd].deadline,
		    __ATOMIC_RELAXED)) {
			(void)conn_arm(fd, srv.slots[fd].deadline);
			continue;
		}
		if (how == SWEEP_STOP) {
			pfd.fd = fd;
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (poll(&pfd, 1, 0) == 1) {
				(void)conn_arm(fd, now + srv.conf.io_timeout_ms);
				continue;
			}
		}
		conn_close(fd);
	}
}

/* The idle sweep when due, by one worker; how long until the next. */
static int
sweep_due(void)
{
	int64_t now = mono_ms(), next;

	next = __atomic_load_n(&srv.next_sweep, __ATOMIC_RELAXED);
	if (now >= next && __atomic_compare_exchange_n(&srv.next_sweep,
	    &next, now + srv.sweep_ms, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED)) {
		sweep(now, SWEEP_DEADLINES);
		return srv.sweep_ms;
	}
	return next > now ? (int)(next - now) : 0;
}

/* A new connection (BUSY), or -1 (none now). */
static int
accept_one(void)
{
	uint64_t v;
	int fd, hi;

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
	if (fd >= srv.nslots || __atomic_add_fetch(&srv.nconns, 1,
	    __ATOMIC_RELAXED) > srv.max_conns) {
		if (fd < srv.nslots)
			__atomic_sub_fetch(&srv.nconns, 1, __ATOMIC_RELAXED);
		log_warnx("server: accept: %d connections open already",
		    srv.max_conns);
		close(fd);
		return -1;
	}
	/* A free slot: nothing else writes it (stale events find another
	 * generation or FREE). */
	v = slot_load(fd);
	srv.slots[fd].in_set = 0;
	__atomic_store_n(&srv.slots[fd].state, MKST(GEN(v) + 1, ST_BUSY),
	    __ATOMIC_RELEASE);
	hi = __atomic_load_n(&srv.hi_fd, __ATOMIC_RELAXED);
	while (fd > hi && !__atomic_compare_exchange_n(&srv.hi_fd, &hi, fd,
	    0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	return fd;
}

/*
 * Duty.  Only srv.duty_max workers at a time wait in the set; the others
 * wait on standby_cv.  Each event wakes one waiter, and with 32 of them
 * waiting that was a different, cold thread for nearly every request: two
 * context switches a request that a worker still busy would have saved by
 * taking the next event itself (one worker on duty served far more than
 * 32 did).  The other workers are still there for slow peers: a worker
 * whose read or write waits past WIRE_STALL_MS gives its duty to one on
 * standby, and takes a duty again, or waits for one, when it is done with
 * that connection.
 */
static void
duty_take(struct worker *w)
{
	/* Only this worker's own thread changes w->on_duty: no lock needed
	 * to see that it still holds one, the usual case between requests. */
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

/* wire's on_stall: this worker's connection is slow.  The events it took
 * and has not begun go back to the set, for the worker taking over. */
static void
duty_give(void *arg)
{
	struct worker *w = arg;
	struct epoll_event *ev;
	int fd;

	for (; w->next < w->nev; w->next++) {
		ev = &w->evs[w->next];
		if (ev->data.u64 == EV_LISTEN || ev->data.u64 == EV_STOP)
			continue;	/* level-triggered: still there */
		fd = (int)(uint32_t)ev->data.u64;
		if (conn_claim(fd, GEN(ev->data.u64)))
			(void)conn_arm(fd, srv.slots[fd].deadline);
	}
	if (!w->on_duty)
		return;
	pthread_mutex_lock(&srv.lock);
	w->on_duty = 0;
	srv.duty--;
	pthread_cond_signal(&srv.standby_cv);
	pthread_mutex_unlock(&srv.lock);
}

/*
 * Serve connection fd (BUSY, this worker's) while it has requests: until
 * it has nothing to say (armed in the set again), its request is detached
 * (the committer has it), or it ends (closed).
 */
static void
serve_conn(struct wire *wire, int fd, int fresh)
{
	int rc, wait_ms = fresh ? srv.conf.io_timeout_ms :
	    srv.conf.idle_timeout_ms;

	wire_attach(wire, fd);
	for (;;) {
		/* Nothing buffered: one read of what is there; an idle
		 * connection goes back to the set at once. */
		rc = wire_next(wire, 0);
		if (rc == 1) {
			if (srv.conf.serve(wire) == SERVER_DETACHED)
				return;	/* server_release() follows */
			rc = wire_end(wire, SERVER_DRAIN_MAX);
			if (__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
				rc = 0;
			if (rc == 1) {
				wait_ms = srv.conf.idle_timeout_ms;
				if (wire_buffered(wire))
					continue;	/* pipelined */
				rc = WIRE_IDLE;
			}
		}
		break;
	}
	if (rc == WIRE_IDLE &&
	    !__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED)) {
		wire_attach(wire, -1);
		(void)conn_arm(fd, mono_ms() + wait_ms);
	} else {
		/* The slot is free before wire_close() lets the number go
		 * (after a refused body, it reads a moment first). */
		srv.slots[fd].in_set = 0;
		__atomic_store_n(&srv.slots[fd].state,
		    MKST(GEN(slot_load(fd)), ST_FREE), __ATOMIC_RELEASE);
		wire_close(wire);
		__atomic_sub_fetch(&srv.nconns, 1, __ATOMIC_RELAXED);
	}
}

/* The next event to act on: into *ev; 0, or -1 when the server has
 * stopped and nothing is left in the set. */
static int
next_event(struct worker *w, struct epoll_event *ev)
{
	int n, i, timeout, conns;

	while (w->next == w->nev) {
		w->next = w->nev = 0;
		if (__atomic_load_n(&srv.stop_done, __ATOMIC_ACQUIRE)) {
			/* What is left: connections whose request arrived
			 * at the stop. */
			if ((n = epoll_wait(srv.ep, w->evs, NEVENTS, 0)) <= 0)
				return -1;
			for (i = 0, conns = 0; i < n; i++)
				if (w->evs[i].data.u64 != EV_STOP)
					w->evs[conns++] = w->evs[i];
			if (conns == 0)
				return -1;
			w->nev = conns;
			break;
		}
		timeout = sweep_due();
		if ((n = epoll_wait(srv.ep, w->evs, NEVENTS, timeout)) == -1) {
			if (errno != EINTR) {
				log_warn("server: epoll_wait");
				usleep(10000);
			}
			continue;
		}
		w->nev = n;
	}
	*ev = w->evs[w->next++];
	return 0;
}

/*
 * The listening socket is readable: serve new connections one after the
 * other while there are some (the web server writes its request right
 * after connecting, so each is mostly read at once), up to ACCEPT_BATCH,
 * saving an epoll_wait a connection under load.  Not once this worker has
 * given its duty away (a slow peer): others accept then.
 */
static void
accept_some(struct worker *w, struct wire *wire)
{
	int fd, k;

	for (k = 0; k < ACCEPT_BATCH && w->on_duty; k++) {
		if ((fd = accept_one()) == -1)
			break;
		__atomic_store_n(&w->cur_fd, fd, __ATOMIC_RELAXED);
		serve_conn(wire, fd, 1);
		__atomic_store_n(&w->cur_fd, -1, __ATOMIC_RELAXED);
	}
}

static void *
worker(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev;
	struct wire wire;
	int fd;

	self = w;
	if (wire_init(&wire, srv.conf.io_timeout_ms, srv.max_conns) == -1) {
		log_warnx("server: worker: out of memory");
		goto out;
	}
	wire.on_stall = duty_give;
	wire.on_stall_arg = w;
	for (;;) {
		duty_take(w);
		if (next_event(w, &ev) == -1)
			break;
		if (ev.data.u64 == EV_STOP)
			continue;
		if (ev.data.u64 == EV_LISTEN) {
			accept_some(w, &wire);
			continue;
		} else {
			fd = (int)(uint32_t)ev.data.u64;
			if (!conn_claim(fd, GEN(ev.data.u64)))
				continue;
		}
		__atomic_store_n(&w->cur_fd, fd, __ATOMIC_RELAXED);
		serve_conn(&wire, fd, 0);
		__atomic_store_n(&w->cur_fd, -1, __ATOMIC_RELAXED);
	}
	wire_free(&wire);
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
 * (two cores) nothing was served until it went on: a keyed POST waiting
 * for its group commit held up every status read.  So it hands the duty
 * (and the events it took) to a worker on standby, as a stalled read does,
 * and takes one again when it is done with its connection.
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
	if (srv.slots == NULL || fd < 0 || fd >= srv.nslots) {
		close(fd);
		return;
	}
	if (keep && !__atomic_load_n(&srv.stopping, __ATOMIC_RELAXED))
		(void)conn_arm(fd, mono_ms() + srv.conf.idle_timeout_ms);
	else
		conn_close(fd);
}

/* How many connections fit under RLIMIT_NOFILE beside FD_RESERVE and
 * the server's own fds; *slots: the fd numbers there can be. */
static int
max_conns(int threads, int *slots)
{
	struct rlimit rl;
	rlim_t n;

	n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	*slots = n == RLIM_INFINITY || n > MAX_SLOTS ? MAX_SLOTS : (int)n;
	if (n == RLIM_INFINITY || n > MAX_CONNS + FD_RESERVE + (rlim_t)threads)
		return MAX_CONNS;
	if (n < MIN_CONNS + FD_RESERVE + (rlim_t)threads)
		return MIN_CONNS;
	return (int)(n - FD_RESERVE - (rlim_t)threads);
}

/* An fd into the set, level-triggered: data is ev's u64. */
static int
set_add(int fd, uint64_t data)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = data;
	return epoll_ctl(srv.ep, EPOLL_CTL_ADD, fd, &ev);
}

int
server_start(const struct server_conf *conf)
{
	int flags, i;

	srv.conf = *conf;
	srv.max_conns = max_conns(conf->threads, &srv.nslots);
	if ((srv.slots = calloc((size_t)srv.nslots,
	    sizeof(*srv.slots))) == NULL)
		return -1;
	srv.hi_fd = -1;
	/* Idle deadlines are kept to a tenth of the shortest timeout. */
	srv.sweep_ms = conf->io_timeout_ms < conf->idle_timeout_ms ?
	    conf->io_timeout_ms / 10 : conf->idle_timeout_ms / 10;
	if (srv.sweep_ms > SWEEP_MAX_MS)
		srv.sweep_ms = SWEEP_MAX_MS;
	if (srv.sweep_ms < 10)
		srv.sweep_ms = 10;
	srv.next_sweep = mono_ms() + srv.sweep_ms;
	srv.duty_max = (int)(sysconf(_SC_NPROCESSORS_ONLN) / 2);
	if (srv.duty_max < 1)
		srv.duty_max = 1;
	if (srv.duty_max > conf->threads)
		srv.duty_max = conf->threads;
	if ((flags = fcntl(conf->listen_fd, F_GETFL)) == -1 ||
	    fcntl(conf->listen_fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(conf->listen_fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	if ((srv.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (srv.stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    set_add(conf->listen_fd, EV_LISTEN) == -1 ||
	    set_add(srv.stop_efd, EV_STOP) == -1)
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
	return 0;
fail:
	/* Workers started so far exit when the server is "stopped". */
	pthread_mutex_lock(&srv.lock);
	srv.stopping = 1;
	pthread_cond_broadcast(&srv.standby_cv);
	pthread_mutex_unlock(&srv.lock);
	__atomic_store_n(&srv.stop_done, 1, __ATOMIC_RELEASE);
	(void)eventfd_write(srv.stop_efd, 1);
	for (i = 0; i < conf->threads; i++)
		if (srv.workers[i].started)
			pthread_join(srv.workers[i].thread, NULL);
	return -1;
}

/* 1 when a connection is idle in the set. */
static int
any_idle(void)
{
	int fd, hi = __atomic_load_n(&srv.hi_fd, __ATOMIC_ACQUIRE);

	for (fd = 0; fd <= hi && fd < srv.nslots; fd++)
		if (ST(slot_load(fd)) == ST_IDLE)
			return 1;
	return 0;
}

void
server_stop(int grace_ms)
{
	struct timespec deadline, ts;
	int i, fd, cut = 0;

	pthread_mutex_lock(&srv.lock);
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&srv.standby_cv);	/* they drain too */
	pthread_mutex_unlock(&srv.lock);
	(void)epoll_ctl(srv.ep, EPOLL_CTL_DEL, srv.conf.listen_fd, NULL);

	/* A connection whose request is arriving now is in flight: give the
	 * web server a moment to finish sending; the workers serve it. Then
	 * the idle ones are closed. */
	if (any_idle()) {
		ts.tv_sec = 0;
		ts.tv_nsec = STOP_ARRIVE_MS * 1000000L;
		(void)nanosleep(&ts, NULL);
	}
	sweep(mono_ms(), SWEEP_STOP);
	__atomic_store_n(&srv.stop_done, 1, __ATOMIC_RELEASE);
	(void)eventfd_write(srv.stop_efd, 1);

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
	/* Connections armed again after the sweep (a release under way as
	 * the stop began). */
	sweep(mono_ms(), SWEEP_ALL);
	close(srv.conf.listen_fd);
	srv.conf.listen_fd = -1;
	free(srv.workers);
	srv.workers = NULL;
	/* srv.slots stays: the committer may still release connections
	 * (closed, as srv.stopping says) until commit_stop. */
	close(srv.stop_efd);
	srv.stop_efd = -1;
	close(srv.ep);
	srv.ep = -1;
}
