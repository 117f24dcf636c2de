/*
 * commit: group commit, led by the request threads themselves.  A thread
 * appends its item to a FIFO under one mutex; if no commit is under way it
 * leads one: takes everything waiting (at most COMMIT_BATCH_MAX, its own
 * item among them), stores it with one store_enqueue() (one BEGIN
 * IMMEDIATE ... COMMIT, the idempotency decision inside it), wakes the
 * other threads of the batch with their ids or errors, and wakes one
 * thread still waiting to lead the next batch.  Otherwise it sleeps until
 * its item is done or the lead comes to it.  The wake-ups go out after the
 * mutex is let go (the condition variables are global, so that is safe):
 * woken threads do not pile up on the mutex.
 * There is no committer thread: a request that finds the store idle
 * commits at once, with no hand-off (two context switches, which cost
 * more than the INSERT on this kind of VM); the jobs that arrive during
 * one commit's fsync make the next batch.
 *
 * Invariant: an item is marked done only after store_enqueue() has
 * returned, so a thread answers 202 only for a job whose COMMIT returned.
 * A failed transaction stores nothing of its batch; every item of it gets
 * COMMIT_FAILED and the next batch goes on.
 *
 * max_queued is checked against a per-queue count of waiting jobs that is
 * read with store_count_waiting() now and then and kept current in between
 * with what this process stored (other processes' jobs, and what the
 * helper took, are seen at the next refresh), so the check costs no query
 * per request.  The count walks the claim index, so it costs time in
 * proportion to the jobs waiting (not measured alone yet; it is index
 * entries walked, so expect a large part of a second at 10 M) and holds up
 * every commit meanwhile: it is read at most once a second and at most
 * once per COUNT_DUTY times its own last duration, which keeps it under
 * 0.5 % of the commit time however long the queue grows.
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "commit.h"
#include "log.h"
#include "store.h"
#include "wake.h"

#define COUNT_REFRESH_MS	1000
#define COUNT_DUTY		200

struct item {
	struct store_newjob	*job;
	int64_t			 max_queued;
	struct commit_result	*res;
	int			 done;
	uint64_t		 gen;	/* the batch it is in, or waits to be in */
	int			 taken;	/* in a batch (its gen is final) */
	struct item		*next;
};

struct qcount {
	char	*queue;
	int64_t	 count;		/* waiting jobs, as last known */
	int64_t	 at;		/* when it was read, 0: never */
	int64_t	 cost_ms;	/* how long that read took */
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 idle;		/* commit_stop waits for the leader */
	/* A batch's threads wait on batch_cv[gen & 1]: the batch taken
	 * next (cm.gen) and the one committing use different ones, so a
	 * batch's broadcast wakes its own threads, not the next batch's. */
	pthread_cond_t	 batch_cv[2];
	uint64_t	 gen;
	struct item	*head, **tail;
	int		 running;
	int		 stopping;
	int		 leading;	/* a thread commits (owns w, counts) */
	struct store	*w;
	char		*db;
	struct qcount	*counts;
	size_t		 ncounts;
} cm = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.batch_cv = { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER },
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The count entry of queue, refreshed when due: its index in cm.counts, or
 * -1.  An index, not a pointer: a later call for a new queue reallocs
 * cm.counts, and commit_batch holds entries across such calls.
 */
static ssize_t
qcount_get(const char *queue, int64_t now)
{
	struct qcount *q = NULL, *n;
	int64_t c, t0;
	size_t i, at = 0;

	for (i = 0; i < cm.ncounts; i++)
		if (strcmp(cm.counts[i].queue, queue) == 0) {
			q = &cm.counts[i];
			at = i;
		}
	if (q == NULL) {
		n = realloc(cm.counts, (cm.ncounts + 1) * sizeof(*n));
		if (n == NULL)
			return -1;
		cm.counts = n;
		at = cm.ncounts;
		q = &cm.counts[at];
		if ((q->queue = strdup(queue)) == NULL)
			return -1;
		q->count = 0;
		q->at = 0;
		q->cost_ms = 0;
		cm.ncounts++;
	}
	if (now - q->at >= COUNT_REFRESH_MS &&
	    now - q->at >= COUNT_DUTY * q->cost_ms) {
		t0 = mono_ms();
		if ((c = store_count_waiting(cm.w, queue)) < 0)
			log_warnx("commit: count queue %s: %s", queue,
			    store_error(cm.w));
		else
			q->count = c;
		q->at = now;	/* a failing count is not retried per job */
		q->cost_ms = mono_ms() - t0;
	}
	return (ssize_t)at;
}

static struct qcount *
qcount_at(ssize_t at)
{
	return at >= 0 ? &cm.counts[at] : NULL;
}

/* Errors that say the database, not one job, is the problem: a batch
 * failing with one of these fails the same way job by job. */
static int
whole_batch_error(int code)
{
	switch (code & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_NOMEM:
	case SQLITE_PERM:
		return 1;
	default:
		return 0;
	}
}

static void
fail(struct item *it, int status, int code, const char *msg)
{
	it->res->status = status;
	it->res->errcode = code;
	strncpy(it->res->error, msg, sizeof(it->res->error) - 1);
	it->res->error[sizeof(it->res->error) - 1] = '\0';
}

/* Store batch[0..n) in one transaction (or, after a failure that may be
 * one job's fault, job by job) and set every item's result. */
static void
commit_batch(struct item **batch, size_t n)
{
	static struct store_newjob jobs[COMMIT_BATCH_MAX];
	ssize_t qc[COMMIT_BATCH_MAX];	/* cm.counts index of each job */
	size_t idx[COMMIT_BATCH_MAX], m = 0, i, k;
	int64_t now = store_now();
	int committed = 0, code;

	for (i = 0; i < n; i++) {
		qc[i] = qcount_get(batch[i]->job->queue, now);
		if (qc[i] >= 0 &&
		    qcount_at(qc[i])->count >= batch[i]->max_queued) {
			fail(batch[i], COMMIT_FULL, 0, "queue full");
			continue;
		}
		if (qc[i] >= 0)
			qcount_at(qc[i])->count++;	/* held until the commit says */
		jobs[m] = *batch[i]->job;
		idx[m++] = i;
	}
	if (m == 0)
		return;
	if (store_enqueue(cm.w, jobs, m) == 0) {
		committed = 1;
	} else {
		code = store_errcode(cm.w);
		log_warnx("commit: batch of %zu: %s", m, store_error(cm.w));
		if (m > 1 && !whole_batch_error(code)) {
			/* One bad job must not fail its neighbours. */
			for (k = 0; k < m; k++) {
				i = idx[k];
				if (store_enqueue(cm.w, &jobs[k], 1) == 0) {
					*batch[i]->job = jobs[k];
					batch[i]->res->status = COMMIT_OK;
					committed = 1;
					if (jobs[k].outcome != STORE_ENQ_NEW &&
					    qc[i] >= 0)
						qcount_at(qc[i])->count--;
				} else {
					fail(batch[i], COMMIT_FAILED,
					    store_errcode(cm.w),
					    store_error(cm.w));
					if (qc[i] >= 0)
						qcount_at(qc[i])->count--;
				}
			}
			goto woken;
		}
		for (k = 0; k < m; k++) {
			i = idx[k];
			fail(batch[i], COMMIT_FAILED, code, store_error(cm.w));
			if (qc[i] >= 0)
				qcount_at(qc[i])->count--;
		}
		return;
	}
	for (k = 0; k < m; k++) {
		i = idx[k];
		memcpy(batch[i]->job->id, jobs[k].id, sizeof(jobs[k].id));
		batch[i]->job->outcome = jobs[k].outcome;
		batch[i]->res->status = COMMIT_OK;
		if (jobs[k].outcome != STORE_ENQ_NEW && qc[i] >= 0)
			qcount_at(qc[i])->count--;
	}
woken:
	if (committed)
		wake_notify(cm.db);
}

/*
 * With cm.lock held and cm.leading unset: lead one batch from the head of
 * the FIFO; the lock is let go meanwhile and held again on return.
 */
static void
lead(void)
{
	struct item *batch[COMMIT_BATCH_MAX];
	uint64_t gen;
	size_t n, i;
	int more;

	cm.leading = 1;
	gen = cm.gen++;		/* who arrives now waits for the next batch */
	for (n = 0; n < COMMIT_BATCH_MAX && cm.head != NULL; n++) {
		batch[n] = cm.head;
		batch[n]->gen = gen;
		batch[n]->taken = 1;
		cm.head = cm.head->next;
	}
	if (cm.head == NULL)
		cm.tail = &cm.head;
	pthread_mutex_unlock(&cm.lock);

	commit_batch(batch, n);

	pthread_mutex_lock(&cm.lock);
	for (i = 0; i < n; i++)
		batch[i]->done = 1;
	cm.leading = 0;
	more = cm.head != NULL;
	if (!more)
		pthread_cond_broadcast(&cm.idle);
	pthread_mutex_unlock(&cm.lock);
	pthread_cond_broadcast(&cm.batch_cv[gen & 1]);
	/* One of the next batch leads it (any thread woken in vain goes
	 * back to sleep). */
	if (more)
		pthread_cond_signal(&cm.batch_cv[(gen + 1) & 1]);
	pthread_mutex_lock(&cm.lock);
}

int
commit_start(struct store *w, const char *db)
{
	cm.w = w;
	cm.head = NULL;
	cm.tail = &cm.head;
	cm.stopping = 0;
	cm.leading = 0;
	if ((cm.db = strdup(db)) == NULL)
		return -1;
	cm.running = 1;
	return 0;
}

void
commit_submit(struct store_newjob *job, int64_t max_queued,
    struct commit_result *res)
{
	struct item it;

	memset(res, 0, sizeof(*res));
	memset(&it, 0, sizeof(it));
	it.job = job;
	it.max_queued = max_queued;
	it.res = res;
	pthread_mutex_lock(&cm.lock);
	if (!cm.running || cm.stopping) {
		pthread_mutex_unlock(&cm.lock);
		res->status = COMMIT_STOPPED;
		strncpy(res->error, "shutting down", sizeof(res->error) - 1);
		return;
	}
	*cm.tail = &it;
	cm.tail = &it.next;
	while (!it.done) {
		if (!cm.leading) {
			lead();
			continue;
		}
		/*
		 * Taken into the batch being committed: that batch's
		 * broadcast.  Still queued (or left over by a full batch):
		 * the next batch's, or the lead.
		 */
		if (!it.taken)
			it.gen = cm.gen;
		pthread_cond_wait(&cm.batch_cv[it.gen & 1], &cm.lock);
	}
	pthread_mutex_unlock(&cm.lock);
}

void
commit_stop(void)
{
	size_t i;

	pthread_mutex_lock(&cm.lock);
	if (!cm.running) {
		pthread_mutex_unlock(&cm.lock);
		return;
	}
	/* Items queued already are led by their own threads. */
	cm.stopping = 1;
	while (cm.leading || cm.head != NULL)
		pthread_cond_wait(&cm.idle, &cm.lock);
	cm.running = 0;
	pthread_mutex_unlock(&cm.lock);
	store_close(cm.w);
	cm.w = NULL;
	for (i = 0; i < cm.ncounts; i++)
		free(cm.counts[i].queue);
	free(cm.counts);
	cm.counts = NULL;
	cm.ncounts = 0;
	free(cm.db);
	cm.db = NULL;
}
