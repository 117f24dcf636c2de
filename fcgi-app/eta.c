/*
 * eta: Retry-After from a queue's depth and its measured drain rate.
 *
 * The depth is group commit's count of the queue's waiting jobs
 * (commit_waiting: kept current by every commit of this process, read
 * again from the database about once a second), or, for a queue this
 * process has taken no job for, a count of the refresher's own.  The drain
 * rate is how many of the queue's jobs finished (done, dead, cancelled:
 * they left it) over the last ETA_WINDOW_MS, read from the jobs_finished
 * index backwards from now and cut at ETA_SAMPLE jobs (store_drain), so a
 * measurement reads a bounded number of rows however fast the queue runs:
 * rate = jobs / (now - the earliest of them to finish), that span at least
 * a second unless the sample is full.
 *
 * A request never waits for either: eta_seconds() reads a per-queue cache
 * under a mutex (the 202 is written on the committer thread, where a query
 * would hold up every commit).  When an entry is older than a second it
 * asks the refresher thread, which measures on its own read-only
 * connection (a WAL reader: no writer waits for it) and at most once per
 * ETA_DUTY times its last measurement's duration, so its share of a core
 * stays small even when a busy neighbour queue makes the index walk long.
 * Intake pays a lock, a string compare per queue and, once a second, a
 * condition signal.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "commit.h"
#include "eta.h"
#include "log.h"
#include "store.h"

#define ETA_REFRESH_MS	1000
#define ETA_DUTY	100

struct entry {
	char		*queue;
	double		 rate;		/* jobs/s; < 0: not measured yet */
	int64_t		 depth;		/* own count, -1: none */
	int64_t		 at;		/* mono ms of the last refresh */
	int64_t		 cost_ms;	/* how long it took */
	int		 wanted;	/* 0, 1: asked for, 2: running */
	struct entry	*next;
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 wanted;
	struct entry	*entries;
	struct store	*s;
	pthread_t	 thread;
	int		 running;
	int		 stopping;
} eta = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wanted = PTHREAD_COND_INITIALIZER,
};

int
eta_estimate(int64_t ahead, double rate)
{
	double s;

	if (rate < 0 || ahead <= 0)
		return 1;
	if (rate == 0)
		return ETA_STALLED_S;
	s = (double)ahead / rate;
	if (s >= ETA_MAX_S)
		return ETA_MAX_S;
	/* Whole seconds, rounded up: never before the jobs are through. */
	return s <= 1 ? 1 : (int)s + ((double)(int)s < s);
}

double
eta_rate(int64_t n, int64_t oldest, int64_t now)
{
	int64_t span = now - oldest;

	if (n <= 0)
		return 0;
	/* A few jobs in a short span say little: a second at least.  A full
	 * sample is enough to take its span as it is, or a queue draining
	 * faster than ETA_SAMPLE a second would be underestimated. */
	if (span < 1000 && n < ETA_SAMPLE)
		span = 1000;
	if (span < 1)
		span = 1;
	return (double)n * 1000.0 / (double)span;
}

/* Measure queue: its rate, and its depth when group commit has none
 * (else -1).  The database's errors are logged and leave -1 / no rate. */
static void
measure(const char *queue, double *rate, int64_t *depth)
{
	int64_t now = store_now(), n, oldest;

	*rate = -1;
	*depth = -1;
	if (store_drain(eta.s, queue, now - ETA_WINDOW_MS, ETA_SAMPLE, &n,
	    &oldest) == -1)
		log_warnx("eta: queue %s: drain: %s", queue,
		    store_error(eta.s));
	else
		*rate = eta_rate(n, oldest, now);
	if (commit_waiting(queue) < 0 &&
	    (*depth = store_count_waiting(eta.s, queue)) < 0)
		log_warnx("eta: queue %s: count: %s", queue,
		    store_error(eta.s));
}

static void *
refresher(void *arg)
{
	struct entry *e;
	char *queue;
	double rate;
	int64_t depth, t0;

	(void)arg;
	pthread_mutex_lock(&eta.lock);
	for (;;) {
		for (e = eta.entries; e != NULL && e->wanted != 1; e = e->next)
			;
		if (eta.stopping)
			break;
		if (e == NULL) {
			pthread_cond_wait(&eta.wanted, &eta.lock);
			continue;
		}
		/* Entries are never freed while the thread runs; the name is
		 * copied all the same, to read it without the lock. */
		if ((queue = strdup(e->queue)) == NULL) {
			e->wanted = 0;
			e->at = mono_ms();
			continue;
		}
		e->wanted = 2;
		pthread_mutex_unlock(&eta.lock);

		t0 = mono_ms();
		measure(queue, &rate, &depth);
		free(queue);

		pthread_mutex_lock(&eta.lock);
		if (rate >= 0)
			e->rate = rate;
		e->depth = depth;
		e->at = mono_ms();
		e->cost_ms = e->at - t0;
		e->wanted = 0;
	}
	pthread_mutex_unlock(&eta.lock);
	return NULL;
}

int
eta_start(const char *path, const struct store_opts *opts, char *err,
    size_t errlen)
{
	struct store_opts ro = *opts;

	ro.readonly = 1;
	if ((eta.s = store_open(path, &ro, err, errlen)) == NULL)
		return -1;
	eta.stopping = 0;
	if (pthread_create(&eta.thread, NULL, refresher, NULL) != 0) {
		store_close(eta.s);
		eta.s = NULL;
		strncpy(err, "eta: cannot start its thread", errlen);
		return -1;
	}
	eta.running = 1;
	return 0;
}

void
eta_stop(void)
{
	struct entry *e, *next;

	if (eta.running) {
		pthread_mutex_lock(&eta.lock);
		eta.stopping = 1;
		pthread_cond_signal(&eta.wanted);
		pthread_mutex_unlock(&eta.lock);
		pthread_join(eta.thread, NULL);
		eta.running = 0;
	}
	store_close(eta.s);
	eta.s = NULL;
	for (e = eta.entries; e != NULL; e = next) {
		next = e->next;
		free(e->queue);
		free(e);
	}
	eta.entries = NULL;
}

/* queue's entry, created when new; NULL when out of memory.  Lock held. */
static struct entry *
entry_get(const char *queue)
{
	struct entry *e;

	for (e = eta.entries; e != NULL; e = e->next)
		if (strcmp(e->queue, queue) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->queue = strdup(queue)) == NULL) {
		free(e);
		return NULL;
	}
	e->rate = -1;
	e->depth = -1;
	e->at = -ETA_REFRESH_MS;	/* due at once */
	e->next = eta.entries;
	eta.entries = e;
	return e;
}

int
eta_seconds(const char *queue, int64_t ahead)
{
	struct entry *e;
	double rate = -1;
	int64_t now, depth = -1, wait;

	/* No refresher (the unit tests): no measurement, no cache. */
	if (!eta.running)
		return eta_estimate(ahead, -1);
	now = mono_ms();
	pthread_mutex_lock(&eta.lock);
	if ((e = entry_get(queue)) != NULL) {
		wait = e->cost_ms * ETA_DUTY;
		if (wait < ETA_REFRESH_MS)
			wait = ETA_REFRESH_MS;
		if (e->wanted == 0 && now - e->at >= wait) {
			e->wanted = 1;
			pthread_cond_signal(&eta.wanted);
		}
		rate = e->rate;
		depth = e->depth;
	}
	pthread_mutex_unlock(&eta.lock);
	if (ahead < 0 && (ahead = commit_waiting(queue)) < 0)
		ahead = depth;
	return eta_estimate(ahead, rate);
}
