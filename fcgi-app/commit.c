/*
 * commit: group commit.  Request threads append an item to a FIFO under one
 * mutex; the committer thread takes everything waiting (at most
 * COMMIT_BATCH_MAX), stores it with one store_enqueue() (one BEGIN
 * IMMEDIATE ... COMMIT, the idempotency decision inside it), then hands
 * each item its id or its error.  A synchronous item's thread sleeps on its
 * own condition variable until then.  An asynchronous item's thread does
 * not wait at all: it went on to the next request, and the committer calls
 * the item's function, which answers the request itself.  So a request
 * thread sleeps through no fsync and is woken by nobody: on this kind of VM
 * each of those wake-ups (a futex wait and a wake per request) cost more
 * than the INSERT.
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
 * proportion to the jobs waiting.  A count that took over COUNT_SYNC_MS
 * runs next time on a thread and read-only connection of its own, on a
 * WAL snapshot, so no commit waits for it (on the committer, a long count
 * held up every commit); a quick one runs on the committer, so the check
 * right after it is exact.  It is read at most once a second and at most
 * once per COUNT_DUTY times its own last duration, so its CPU share stays
 * small however long the queue grows.
 * What this process stored while a count ran is added to it afterwards
 * (a batch committed just before the snapshot may be counted twice: the
 * error is at most a batch or two, on the cautious side).
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "commit.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "wake.h"

#define COUNT_REFRESH_MS	1000
#define COUNT_DUTY		200
#define COUNT_SYNC_MS		5	/* counts this quick run on the committer */

struct item {
	struct store_newjob	*job;
	int64_t			 max_queued;
	struct commit_result	*res;
	int			 done;
	pthread_cond_t		 cond;	/* synchronous: its thread waits here */
	commit_done_fn		 fn;	/* asynchronous: called with the result */
	void			*arg;
	struct commit_result	 ares;	/* asynchronous: the result */
	struct item		*next;
};

struct qcount {
	char	*queue;
	int64_t	 count;		/* waiting jobs, as last known */
	int64_t	 added;		/* jobs this process stored here, ever */
	int64_t	 at;		/* when a read was asked for, 0: never */
	int64_t	 cost_ms;	/* how long the last read took */
	int	 wanted;	/* 0: no read, 1: one asked for, 2: running */
};

/* A refused request waiting for the committer: the row's strings and
 * body head live in the same allocation. */
struct reject_item {
	struct store_rejected	 row;
	size_t			 size;
	char			 data[];
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 work;		/* the committer sleeps here */
	struct reject_item *rej[COMMIT_REJECT_MAX];	/* waiting rows */
	size_t		 nrej;
	size_t		 rej_bytes;
	uint64_t	 rej_dropped;	/* since the last flush */
	int64_t		 rej_last;	/* mono ms of the last flush */
	struct item	*head, **tail;
	int		 running;
	int		 stopping;
	pthread_t	 thread;
	struct store	*w;
	char		*db;
} cm = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
};

/* The counts, shared by the committer and the counter thread. */
static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 wanted;	/* the counter sleeps here */
	struct qcount	*counts;
	size_t		 ncounts;
	int		 stopping;
	int		 running;
	pthread_t	 thread;
	struct store	*r;		/* read-only, the counter's own */
} qc = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wanted = PTHREAD_COND_INITIALIZER,
};

/* Count queue's waiting jobs on s: the count, or -1 (logged); *ms is
 * how long it took. */
static int64_t
count_read(struct store *s, const char *queue, int64_t *ms)
{
	int64_t c, t0 = mono_ms();

	if ((c = store_count_waiting(s, queue)) < 0)
		log_warnx("commit: count queue %s: %s", queue, store_error(s));
	*ms = mono_ms() - t0;
	return c;
}

/* The index of queue's entry in qc.counts, or -1; qc.lock held. */
static ssize_t
qcount_find(const char *queue)
{
	size_t i;

	for (i = 0; i < qc.ncounts; i++)
		if (strcmp(qc.counts[i].queue, queue) == 0)
			return (ssize_t)i;
	return -1;
}

/*
 * The count entry of queue, its refresh asked of the counter thread when
 * due: its index in qc.counts, or -1.  An index, not a pointer: a later
 * call for a new queue reallocs qc.counts, and commit_batch holds entries
 * across such calls.  Called with qc.lock held.
 */
static ssize_t
qcount_get(const char *queue, int64_t now)
{
	struct qcount *q, *n;
	int64_t c;
	ssize_t at;

	if ((at = qcount_find(queue)) == -1) {
		n = realloc(qc.counts, (qc.ncounts + 1) * sizeof(*n));
		if (n == NULL)
			return -1;
		qc.counts = n;
		at = (ssize_t)qc.ncounts;
		memset(&qc.counts[at], 0, sizeof(qc.counts[at]));
		if ((qc.counts[at].queue = strdup(queue)) == NULL)
			return -1;
		qc.ncounts++;
	}
	q = &qc.counts[at];
	if (q->wanted || now - q->at < COUNT_REFRESH_MS ||
	    now - q->at < COUNT_DUTY * q->cost_ms)
		return at;
	q->at = now;		/* a failing count is not retried per job */
	if (q->cost_ms > COUNT_SYNC_MS) {
		q->wanted = 1;
		pthread_cond_signal(&qc.wanted);
		return at;
	}
	/* Cheap (and the first one): read here, so the check that follows
	 * sees it. */
	if ((c = count_read(cm.w, queue, &q->cost_ms)) >= 0)
		q->count = c;
	return at;
}

/* Jobs of entry at held (d > 0) or given back (d < 0); qc.lock held. */
static void
qcount_add(ssize_t at, int64_t d)
{
	if (at >= 0) {
		qc.counts[at].count += d;
		qc.counts[at].added += d;
	}
}

/* A held job that was not stored after all (failed, or a replay). */
static void
qcount_release(ssize_t at)
{
	pthread_mutex_lock(&qc.lock);
	qcount_add(at, -1);
	pthread_mutex_unlock(&qc.lock);
}

static void *
counter(void *arg)
{
	char *queue;
	int64_t base, c, ms;
	ssize_t at;
	size_t i;

	(void)arg;
	pthread_mutex_lock(&qc.lock);
	for (;;) {
		for (i = 0; i < qc.ncounts && qc.counts[i].wanted != 1; i++)
			;
		if (qc.stopping)
			break;
		if (i == qc.ncounts) {
			pthread_cond_wait(&qc.wanted, &qc.lock);
			continue;
		}
		if ((queue = strdup(qc.counts[i].queue)) == NULL) {
			/* Asked again when next due. */
			qc.counts[i].wanted = 0;
			continue;
		}
		qc.counts[i].wanted = 2;	/* running */
		base = qc.counts[i].added;
		pthread_mutex_unlock(&qc.lock);

		c = count_read(qc.r, queue, &ms);

		pthread_mutex_lock(&qc.lock);
		/* Found again by name: qc.counts may have moved. */
		if ((at = qcount_find(queue)) >= 0) {
			if (c >= 0)
				qc.counts[at].count = c +
				    (qc.counts[at].added - base);
			qc.counts[at].cost_ms = ms;
			qc.counts[at].wanted = 0;
		}
		free(queue);
	}
	pthread_mutex_unlock(&qc.lock);
	return NULL;
}

/* Errors that say the database, not one job, is the problem: a batch
 * failing with one of these fails the same way job by job. */
static int
whole_batch_error(int code)
{
	switch (code) {
	case STORE_EBUSY:
	case STORE_EFULL:
	case STORE_EREADONLY:
	case STORE_EIO:
	case STORE_ENOMEM:
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
	ssize_t at[COMMIT_BATCH_MAX];	/* qc.counts index of each job */
	size_t idx[COMMIT_BATCH_MAX], m = 0, i, k;
	int64_t now = store_now(), t0;
	int committed = 0, code;

	pthread_mutex_lock(&qc.lock);
	for (i = 0; i < n; i++) {
		at[i] = qcount_get(batch[i]->job->queue, now);
		if (at[i] >= 0 &&
		    qc.counts[at[i]].count >= batch[i]->max_queued) {
			fail(batch[i], COMMIT_FULL, 0, "queue full");
			continue;
		}
		qcount_add(at[i], 1);	/* held until the commit says */
		jobs[m] = *batch[i]->job;
		idx[m++] = i;
	}
	pthread_mutex_unlock(&qc.lock);
	if (m == 0)
		return;
	t0 = mono_us();
	if (store_enqueue(cm.w, jobs, m) == 0) {
		committed = 1;
		metrics_commit(m, mono_us() - t0);
	} else {
		code = store_errcode(cm.w);
		log_warnx("commit: batch of %zu: %s", m, store_error(cm.w));
		if (m > 1 && !whole_batch_error(code)) {
			/* One bad job must not fail its neighbours. */
			for (k = 0; k < m; k++) {
				i = idx[k];
				if (store_enqueue(cm.w, &jobs[k], 1) == 0) {
					*batch[i]->job = jobs[k];
					if (jobs[k].outcome == STORE_ENQ_NEW)
						metrics_enqueued(jobs[k].queue,
						    1);
					batch[i]->res->status = COMMIT_OK;
					committed = 1;
					if (jobs[k].outcome != STORE_ENQ_NEW)
						qcount_release(at[i]);
				} else {
					fail(batch[i], COMMIT_FAILED,
					    store_errcode(cm.w),
					    store_error(cm.w));
					qcount_release(at[i]);
				}
			}
			goto woken;
		}
		for (k = 0; k < m; k++) {
			i = idx[k];
			fail(batch[i], COMMIT_FAILED, code, store_error(cm.w));
			qcount_release(at[i]);
		}
		return;
	}
	for (k = 0; k < m; k++) {
		i = idx[k];
		memcpy(batch[i]->job->id, jobs[k].id, sizeof(jobs[k].id));
		batch[i]->job->outcome = jobs[k].outcome;
		batch[i]->res->status = COMMIT_OK;
		if (jobs[k].outcome != STORE_ENQ_NEW)
			qcount_release(at[i]);
		else
			metrics_enqueued(jobs[k].queue, 1);
	}
woken:
	if (committed)
		wake_notify(cm.db);
}


/* 1 when refused requests wait and the last flush is COMMIT_REJECT_MS
 * old; cm.lock held. */
static int
reject_due(void)
{
	return (cm.nrej > 0 || cm.rej_dropped > 0) &&
	    mono_ms() - cm.rej_last >= COMMIT_REJECT_MS;
}

/* Sleep for work, or until the waiting refused requests are due;
 * cm.lock held. */
static void
reject_wait(void)
{
	struct timespec ts;
	int64_t left;

	if (cm.nrej == 0 && cm.rej_dropped == 0) {
		pthread_cond_wait(&cm.work, &cm.lock);
		return;
	}
	left = COMMIT_REJECT_MS - (mono_ms() - cm.rej_last);
	if (left < 1)
		left = 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&cm.work, &cm.lock, &ts);
}

/* Move the waiting refused requests to out; cm.lock held.  Their count;
 * *dropped gets how many found no room since the last take. */
static size_t
reject_take(struct reject_item **out, uint64_t *dropped)
{
	size_t n = cm.nrej;

	memcpy(out, cm.rej, n * sizeof(*out));
	cm.nrej = 0;
	cm.rej_bytes = 0;
	*dropped = cm.rej_dropped;
	cm.rej_dropped = 0;
	cm.rej_last = mono_ms();
	return n;
}

/* Store items[0..n) (one transaction, pruned per queue) and free them. */
static void
reject_flush(struct reject_item **items, size_t n, uint64_t dropped)
{
	struct store_rejected rows[COMMIT_REJECT_MAX];
	size_t i;

	for (i = 0; i < n; i++)
		rows[i] = items[i]->row;
	if (n > 0 && store_reject(cm.w, rows, n) == -1)
		log_warnx("commit: %zu rejected requests not kept: %s", n,
		    store_error(cm.w));
	if (dropped > 0)
		log_warnx("commit: %llu rejected requests not kept: more "
		    "than %d in %d ms", (unsigned long long)dropped,
		    COMMIT_REJECT_MAX, COMMIT_REJECT_MS);
	for (i = 0; i < n; i++)
		free(items[i]);
}

/* Copy s into *p (advanced); NULL stays NULL. */
static const char *
reject_str(char **p, const char *s)
{
	char *d = *p;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	memcpy(d, s, n);
	*p = d + n;
	return d;
}

void
commit_reject(const struct store_rejected *row)
{
	const char *s[] = { row->queue, row->reason, row->remote_addr,
	    row->method, row->request_uri, row->headers };
	struct reject_item *it;
	size_t i, size, head;
	char *p;

	head = row->head_len < STORE_REJECTED_HEAD ? row->head_len :
	    STORE_REJECTED_HEAD;
	size = sizeof(*it) + head;
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		size += s[i] != NULL ? strlen(s[i]) + 1 : 0;
	pthread_mutex_lock(&cm.lock);
	if (!cm.running || cm.stopping || cm.nrej == COMMIT_REJECT_MAX ||
	    cm.rej_bytes + size > COMMIT_REJECT_BYTES ||
	    (it = malloc(size)) == NULL) {
		cm.rej_dropped++;
		pthread_mutex_unlock(&cm.lock);
		return;
	}
	it->row = *row;
	it->size = size;
	p = it->data;
	memcpy(p, row->body_head != NULL ? row->body_head : "", head);
	it->row.body_head = p;
	it->row.head_len = head;
	p += head;
	it->row.queue = reject_str(&p, row->queue);
	it->row.reason = reject_str(&p, row->reason);
	it->row.remote_addr = reject_str(&p, row->remote_addr);
	it->row.method = reject_str(&p, row->method);
	it->row.request_uri = reject_str(&p, row->request_uri);
	it->row.headers = reject_str(&p, row->headers);
	if (cm.nrej == 0 && cm.rej_dropped == 0 &&
	    mono_ms() - cm.rej_last >= COMMIT_REJECT_MS)
		cm.rej_last = mono_ms();	/* the first of a burst waits too */
	cm.rej[cm.nrej++] = it;
	cm.rej_bytes += size;
	pthread_cond_signal(&cm.work);
	pthread_mutex_unlock(&cm.lock);
}

static void *
committer(void *arg)
{
	struct item *batch[COMMIT_BATCH_MAX], *later[COMMIT_BATCH_MAX], *it;
	struct reject_item *rej[COMMIT_REJECT_MAX];
	size_t n, na, i, nr;
	uint64_t dropped;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&cm.lock);
		while (cm.head == NULL && !cm.stopping && !reject_due())
			reject_wait();
		if (cm.head == NULL && cm.nrej == 0) {
			pthread_mutex_unlock(&cm.lock);
			break;
		}
		for (n = 0; n < COMMIT_BATCH_MAX && cm.head != NULL; n++) {
			batch[n] = cm.head;
			cm.head = cm.head->next;
		}
		if (cm.head == NULL)
			cm.tail = &cm.head;
		nr = 0;
		dropped = 0;
		if (reject_due() || (cm.stopping && cm.head == NULL))
			nr = reject_take(rej, &dropped);
		pthread_mutex_unlock(&cm.lock);

		if (n > 0)
			commit_batch(batch, n);
		if (nr > 0 || dropped > 0)
			reject_flush(rej, nr, dropped);

		/* A synchronous item lives on its thread's stack: once done
		 * is set and the lock let go, it may be gone.  So the
		 * asynchronous ones are set apart first. */
		pthread_mutex_lock(&cm.lock);
		for (i = 0, na = 0; i < n; i++)
			if (batch[i]->fn != NULL)
				later[na++] = batch[i];
			else {
				batch[i]->done = 1;
				pthread_cond_signal(&batch[i]->cond);
			}
		pthread_mutex_unlock(&cm.lock);
		for (i = 0; i < na; i++) {
			it = later[i];
			it->fn(it->arg, it->job, it->res);
			free(it);
		}
	}
	return NULL;
}

int
commit_start(struct store *w, struct store *r, const char *db)
{
	cm.w = w;
	cm.head = NULL;
	cm.tail = &cm.head;
	cm.stopping = 0;
	if ((cm.db = strdup(db)) == NULL)
		return -1;
	qc.r = r;
	qc.stopping = 0;
	if (pthread_create(&qc.thread, NULL, counter, NULL) != 0) {
		free(cm.db);
		cm.db = NULL;
		return -1;
	}
	qc.running = 1;
	if (pthread_create(&cm.thread, NULL, committer, NULL) != 0) {
		free(cm.db);
		cm.db = NULL;
		return -1;
	}
	cm.running = 1;
	return 0;
}

void
commit_prime(const char *queue)
{
	pthread_mutex_lock(&qc.lock);
	(void)qcount_get(queue, store_now());
	pthread_mutex_unlock(&qc.lock);
}

int64_t
commit_waiting(const char *queue)
{
	ssize_t at;
	int64_t c = -1;

	pthread_mutex_lock(&qc.lock);
	if ((at = qcount_find(queue)) >= 0 && qc.counts[at].at != 0)
		c = qc.counts[at].count;
	pthread_mutex_unlock(&qc.lock);
	return c;
}

/* Append it; 0, or -1 when group commit is stopping (it is not queued). */
static int
enqueue_item(struct item *it)
{
	if (!cm.running || cm.stopping)
		return -1;
	*cm.tail = it;
	cm.tail = &it->next;
	pthread_cond_signal(&cm.work);
	return 0;
}

static void
stopped(struct commit_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = COMMIT_STOPPED;
	strncpy(res->error, "shutting down", sizeof(res->error) - 1);
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
	pthread_cond_init(&it.cond, NULL);
	pthread_mutex_lock(&cm.lock);
	if (enqueue_item(&it) == -1) {
		pthread_mutex_unlock(&cm.lock);
		pthread_cond_destroy(&it.cond);
		stopped(res);
		return;
	}
	while (!it.done)
		pthread_cond_wait(&it.cond, &cm.lock);
	pthread_mutex_unlock(&cm.lock);
	pthread_cond_destroy(&it.cond);
}

void
commit_submit_async(struct store_newjob *job, int64_t max_queued,
    commit_done_fn fn, void *arg)
{
	struct commit_result res;
	struct item *it;

	if ((it = calloc(1, sizeof(*it))) == NULL) {
		memset(&res, 0, sizeof(res));
		res.status = COMMIT_FAILED;
		res.errcode = STORE_ENOMEM;
		strncpy(res.error, "out of memory", sizeof(res.error) - 1);
		fn(arg, job, &res);
		return;
	}
	it->job = job;
	it->max_queued = max_queued;
	it->res = &it->ares;
	it->fn = fn;
	it->arg = arg;
	pthread_mutex_lock(&cm.lock);
	if (enqueue_item(it) == -1) {
		pthread_mutex_unlock(&cm.lock);
		free(it);
		stopped(&res);
		fn(arg, job, &res);
		return;
	}
	pthread_mutex_unlock(&cm.lock);
}

/* Tell a thread that sleeps on cond under lock to stop; wait for it. */
static void
stop_worker(pthread_mutex_t *lock, pthread_cond_t *cond, int *stopping,
    pthread_t thread)
{
	pthread_mutex_lock(lock);
	*stopping = 1;
	pthread_cond_signal(cond);
	pthread_mutex_unlock(lock);
	pthread_join(thread, NULL);
}

void
commit_stop(void)
{
	size_t i;

	/* running is written by this thread only, as in commit_start. */
	if (!cm.running)
		return;
	/* The committer stores what is queued, then ends. */
	stop_worker(&cm.lock, &cm.work, &cm.stopping, cm.thread);
	cm.running = 0;
	store_close(cm.w);
	cm.w = NULL;
	if (qc.running) {
		stop_worker(&qc.lock, &qc.wanted, &qc.stopping, qc.thread);
		qc.running = 0;
	}
	store_close(qc.r);
	qc.r = NULL;
	/* Under the lock: commit_waiting() may still be asked (eta). */
	pthread_mutex_lock(&qc.lock);
	for (i = 0; i < qc.ncounts; i++)
		free(qc.counts[i].queue);
	free(qc.counts);
	qc.counts = NULL;
	qc.ncounts = 0;
	pthread_mutex_unlock(&qc.lock);
	free(cm.db);
	cm.db = NULL;
}
