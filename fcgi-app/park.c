/*
 * park: the waiting requests of Prefer: wait, answered by one thread.
 *
 * A worker (a status read) or the committer (an intake, once its COMMIT
 * returned) detaches the request from its wire and hands it over
 * (park_add); the worker goes on at once.  The park thread keeps the
 * waiters in one epoll set with its eventfd (new waiters, kicks, stop) and
 * its notice socket, and sleeps until the first of: a notice, a parked
 * connection becoming readable (the web server gave up on the request:
 * the waiter is dropped and the connection closed), the nearest deadline,
 * the next re-read.  Waiters to look at are marked due; their jobs' states
 * are read in one transaction on the park's own read connection (a WAL
 * reader: it never waits for the writer), and only those final, or out
 * of time, are read whole and answered.  Answering hands the connection
 * back to the server's poller (server_release) when it is kept.
 *
 * Who tells a finish.  The helper records outcomes, and it may be another
 * process's (spawn-fcgi -F, fcgiq work): while this process has waiters
 * it asks the helper to watch (wake_watch, renewed every PARK_WATCH_MS)
 * and the helper sends, after each commit that finished jobs, their ids
 * (wake_tell): a waiter is answered about a millisecond after the COMMIT.
 * A cancel here kicks its waiters at once.  Anything else (a cancel by
 * fcgiqctl or another responder, a lease that expired into dead, a notice
 * lost) is found by the re-read of every waiter's state each PARK_POLL_MS:
 * one indexed lookup per waiter per second, none while there is none.
 *
 * Race: a new waiter is marked due, and its first read comes after the
 * watch was sent; a finish committed before that read is seen by it, one
 * committed after it is told (the helper reads its watch requests right
 * before it tells).
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "park.h"
#include "server.h"
#include "store.h"
#include "wake.h"
#include "wire.h"

#define KICKS_MAX	64	/* more kicks than this: every waiter looks */

struct waiter {
	struct wire_detached	 conn;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 deadline;	/* monotonic ms */
	park_answer_fn		 fn;
	void			*arg;
	size_t			 idx;		/* in pk.w */
	int			 due;		/* its job's state to be read */
	struct waiter		*next;		/* in the inbox */
};

static struct {
	pthread_mutex_t	 lock;
	struct waiter	*inbox;		/* new waiters, under lock */
	char		 kicks[KICKS_MAX][STORE_ID_LEN + 1];
	size_t		 nkicks;	/* under lock */
	int		 kick_all;	/* under lock */
	int		 stopping;	/* under lock */
	int		 running;
	pthread_t	 thread;
	int		 efd;		/* rouses the thread */
	int		 ep;
	int		 nfd;		/* notices from the helper */
	char		*db;
	struct store	*s;

	/* The thread's own. */
	struct waiter	**w;
	size_t		 n, cap;
	int64_t		 watch_at;	/* next wake_watch */
	int64_t		 poll_at;	/* next re-read of every waiter */
	const char	**ids;		/* scratch for store_states */
	enum store_state *states;
	size_t		 scap;
} pk = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.efd = -1,
	.ep = -1,
	.nfd = -1,
};

/* epoll's data for the park's own fds; a waiter's is its pointer. */
static char	tag_efd, tag_nfd;

static void
rouse(void)
{
	uint64_t one = 1;

	(void)!write(pk.efd, &one, sizeof(one));
}

/* Drop waiter i from the table and the epoll set; the caller has answered
 * (or closes) its connection. */
static void
remove_at(size_t i)
{
	struct waiter *x = pk.w[i];

	(void)epoll_ctl(pk.ep, EPOLL_CTL_DEL, x->conn.fd, NULL);
	pk.w[i] = pk.w[--pk.n];
	pk.w[i]->idx = i;
}

static void
waiter_free(struct waiter *x)
{
	free(x->arg);
	free(x);
}

/* The web server closed the connection (or sent what no parked request
 * expects: FastCGI 1.0 has no more of this request to send). */
static void
waiter_gone(struct waiter *x)
{
	log_debug("park: job %s: the waiting request went away", x->id);
	remove_at(x->idx);
	server_release(x->conn.fd, 0);
	waiter_free(x);
}

/* Answer x with its job as it is now, and let it go. */
static void
waiter_answer(struct waiter *x)
{
	struct store_job *job = NULL;
	char *buf;
	size_t len;
	int rc, sent = 0;

	if ((rc = store_get(pk.s, x->id, &job)) == -1)
		log_warnx("park: job %s: %s", x->id, store_error(pk.s));
	if ((buf = x->fn(x->arg, job, rc, &len)) != NULL)
		sent = wire_answer(&x->conn, buf, len) == 0;
	free(buf);
	store_job_free(job);
	remove_at(x->idx);
	server_release(x->conn.fd, sent && x->conn.keep);
	waiter_free(x);
}

static int
final(enum store_state st)
{
	return st == STORE_JOB_DONE || st == STORE_JOB_DEAD ||
	    st == STORE_JOB_CANCELLED || st == STORE_JOB_ANY;
}

/*
 * Read the states of the due waiters' jobs (one transaction) and answer
 * those final; with all, answer every waiter (stopping).  Waiters out of
 * time are answered too.
 */
static void
check(int64_t now, int all)
{
	size_t i, m = 0;
	int read_ok = 1;

	if (pk.scap < pk.n) {
		free(pk.ids);
		free(pk.states);
		pk.scap = pk.n * 2;
		pk.ids = calloc(pk.scap, sizeof(*pk.ids));
		pk.states = calloc(pk.scap, sizeof(*pk.states));
		if (pk.ids == NULL || pk.states == NULL) {
			free(pk.ids);
			free(pk.states);
			pk.ids = NULL;
			pk.states = NULL;
			pk.scap = 0;
			return;		/* tried again at the next event */
		}
	}
	for (i = 0; i < pk.n; i++) {
		if (all || now >= pk.w[i]->deadline)
			pk.w[i]->due = 2;	/* answered whatever the state */
		if (pk.w[i]->due == 1)
			pk.ids[m++] = pk.w[i]->id;
	}
	if (m > 0 && store_states(pk.s, pk.ids, m, pk.states) == -1) {
		log_warnx("park: states: %s", store_error(pk.s));
		read_ok = 0;	/* the next re-read tries again */
	}
	/* ids[] follows the table's order; answering reorders the table,
	 * so the verdicts are set first. */
	for (i = 0, m = 0; i < pk.n; i++)
		if (pk.w[i]->due == 1) {
			pk.w[i]->due = read_ok && final(pk.states[m]) ?
			    2 : 0;
			m++;
		}
	for (i = pk.n; i-- > 0;)
		if (i < pk.n && pk.w[i]->due == 2)
			waiter_answer(pk.w[i]);
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Notices from the helper: mark the waiters of the jobs they name. */
static void
read_notices(void)
{
	char msg[WAKE_NOTICE_MAX + 1], *p, *nl, *key;
	const char **ids = NULL, **nids;
	size_t nid = 0, cap = 0, i;
	ssize_t r;

	while ((r = recv(pk.nfd, msg, sizeof(msg) - 1, MSG_DONTWAIT)) > 0) {
		if (msg[0] != WAKE_NOTICE)
			continue;
		msg[r] = '\0';
		for (p = msg + 1; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			*nl = '\0';
			if (nid == cap) {
				cap = cap ? cap * 2 : 64;
				if ((nids = realloc(ids, cap *
				    sizeof(*ids))) == NULL)
					goto all;
				ids = nids;
			}
			if ((ids[nid] = strdup(p)) == NULL)
				goto all;
			nid++;
		}
	}
	if (nid == 0)
		goto done;
	qsort(ids, nid, sizeof(*ids), id_cmp);
	for (i = 0; i < pk.n; i++) {
		key = pk.w[i]->id;
		if (bsearch(&key, ids, nid, sizeof(*ids), id_cmp) != NULL)
			pk.w[i]->due = pk.w[i]->due ? pk.w[i]->due : 1;
	}
	goto done;
all:
	/* Out of memory: every waiter looks. */
	for (i = 0; i < pk.n; i++)
		pk.w[i]->due = pk.w[i]->due ? pk.w[i]->due : 1;
done:
	for (i = 0; i < nid; i++)
		free((void *)ids[i]);
	free(ids);
}

/* New waiters and kicks.  1 when stopping. */
static int
take_inbox(int64_t now)
{
	struct epoll_event ev;
	struct waiter *x, *next, **nw;
	char kicks[KICKS_MAX][STORE_ID_LEN + 1];
	size_t nk, i, k;
	int all, stopping, had = pk.n > 0;
	uint64_t v;

	(void)!read(pk.efd, &v, sizeof(v));
	pthread_mutex_lock(&pk.lock);
	x = pk.inbox;
	pk.inbox = NULL;
	nk = pk.nkicks;
	memcpy(kicks, pk.kicks, nk * sizeof(kicks[0]));
	pk.nkicks = 0;
	all = pk.kick_all;
	pk.kick_all = 0;
	stopping = pk.stopping;
	pthread_mutex_unlock(&pk.lock);

	for (; x != NULL; x = next) {
		next = x->next;
		if (pk.n == pk.cap) {
			k = pk.cap ? pk.cap * 2 : 64;
			if ((nw = realloc(pk.w, k * sizeof(*nw))) == NULL)
				goto refuse;
			pk.w = nw;
			pk.cap = k;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = x;
		if (epoll_ctl(pk.ep, EPOLL_CTL_ADD, x->conn.fd, &ev) == -1)
			goto refuse;
		x->idx = pk.n;
		x->due = 1;	/* its first look: it may be final already */
		pk.w[pk.n++] = x;
		log_debug("park: job %s: waiting, %lld ms at most", x->id,
		    (long long)(x->deadline - now));
		continue;
refuse:
		log_warn("park: job %s: cannot park", x->id);
		server_release(x->conn.fd, 0);
		waiter_free(x);
	}
	for (i = 0; i < pk.n; i++) {
		for (k = 0; k < nk && !all; k++)
			if (strcmp(pk.w[i]->id, kicks[k]) == 0)
				break;
		if ((all || k < nk) && pk.w[i]->due == 0)
			pk.w[i]->due = 1;
	}
	if (!had && pk.n > 0)
		pk.watch_at = now;	/* a watch may have lapsed: at once */
	return stopping;
}

/* Milliseconds until the thread has something to do, or -1. */
static int
next_timeout(int64_t now)
{
	int64_t next;
	size_t i;

	if (pk.n == 0)
		return -1;
	next = pk.watch_at < pk.poll_at ? pk.watch_at : pk.poll_at;
	for (i = 0; i < pk.n; i++)
		if (pk.w[i]->deadline < next)
			next = pk.w[i]->deadline;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void *
park_thread(void *arg)
{
	struct epoll_event evs[64];
	int64_t now;
	int i, n, stopping = 0;

	(void)arg;
	while (!stopping) {
		n = epoll_wait(pk.ep, evs, 64, next_timeout(mono_ms()));
		if (n == -1 && errno != EINTR) {
			log_warn("park: epoll_wait");
			usleep(10000);
		}
		now = mono_ms();
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tag_efd)
				stopping |= take_inbox(now);
			else if (evs[i].data.ptr == &tag_nfd)
				read_notices();
		}
		/* Gone after the table settled: a waiter's pointer stays
		 * valid until it is removed here or answered below. */
		for (i = 0; i < n; i++)
			if (evs[i].data.ptr != &tag_efd &&
			    evs[i].data.ptr != &tag_nfd)
				waiter_gone(evs[i].data.ptr);
		if (pk.n > 0 && now >= pk.watch_at) {
			wake_watch(pk.nfd, pk.db);
			pk.watch_at = now + PARK_WATCH_MS;
		}
		if (pk.n > 0 && now >= pk.poll_at) {
			for (i = 0; i < (int)pk.n; i++)
				if (pk.w[i]->due == 0)
					pk.w[i]->due = 1;
			pk.poll_at = now + PARK_POLL_MS;
		}
		check(now, stopping);
	}
	return NULL;
}

int
park_start(const char *db, const struct store_opts *opts, char *err,
    size_t errlen)
{
	struct epoll_event ev;
	struct store_opts ro = *opts;

	ro.readonly = 1;
	if ((pk.s = store_open(db, &ro, err, errlen)) == NULL)
		return -1;
	if ((pk.db = strdup(db)) == NULL ||
	    (pk.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (pk.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (pk.nfd = wake_watch_open()) == -1)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_efd;
	if (epoll_ctl(pk.ep, EPOLL_CTL_ADD, pk.efd, &ev) == -1)
		goto fail;
	ev.data.ptr = &tag_nfd;
	if (epoll_ctl(pk.ep, EPOLL_CTL_ADD, pk.nfd, &ev) == -1)
		goto fail;
	pk.poll_at = mono_ms();
	if ((errno = pthread_create(&pk.thread, NULL, park_thread,
	    NULL)) != 0)
		goto fail;
	pk.running = 1;
	return 0;
fail:
	snprintf(err, errlen, "park: %s", strerror(errno));
	park_stop();
	return -1;
}

int
park_add(const struct wire_detached *conn, const char *id, int64_t wait_ms,
    park_answer_fn fn, void *arg)
{
	struct waiter *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -1;
	x->conn = *conn;
	snprintf(x->id, sizeof(x->id), "%s", id);
	x->deadline = mono_ms() + wait_ms;
	x->fn = fn;
	x->arg = arg;
	pthread_mutex_lock(&pk.lock);
	if (!pk.running || pk.stopping) {
		pthread_mutex_unlock(&pk.lock);
		free(x);
		return -1;
	}
	x->next = pk.inbox;
	pk.inbox = x;
	rouse();	/* under the lock: park_stop closes efd */
	pthread_mutex_unlock(&pk.lock);
	return 0;
}

void
park_kick(const char *id)
{
	pthread_mutex_lock(&pk.lock);
	if (!pk.running) {
		pthread_mutex_unlock(&pk.lock);
		return;
	}
	if (pk.nkicks < KICKS_MAX)
		snprintf(pk.kicks[pk.nkicks++], sizeof(pk.kicks[0]), "%s", id);
	else
		pk.kick_all = 1;
	rouse();
	pthread_mutex_unlock(&pk.lock);
}

void
park_stop(void)
{
	if (pk.running) {
		pthread_mutex_lock(&pk.lock);
		pk.stopping = 1;
		rouse();
		pthread_mutex_unlock(&pk.lock);
		pthread_join(pk.thread, NULL);
	}
	pthread_mutex_lock(&pk.lock);
	pk.running = 0;
	pthread_mutex_unlock(&pk.lock);
	free(pk.w);
	free(pk.ids);
	free(pk.states);
	pk.w = NULL;
	pk.ids = NULL;
	pk.states = NULL;
	pk.n = pk.cap = pk.scap = 0;
	if (pk.nfd != -1)
		close(pk.nfd);
	if (pk.ep != -1)
		close(pk.ep);
	if (pk.efd != -1)
		close(pk.efd);
	pk.nfd = pk.ep = pk.efd = -1;
	store_close(pk.s);
	pk.s = NULL;
	free(pk.db);
	pk.db = NULL;
}
