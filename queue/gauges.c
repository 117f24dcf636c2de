/*
 * gauges: read the database's side of an exposition.  Nothing here takes
 * a write lock: the reads are WAL snapshots, so intake never waits on a
 * scrape; the helper's lock is only tested (a shared flock that fails
 * while the active helper holds its exclusive one).
 */
#include <sys/file.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "buf.h"
#include "gauges.h"
#include "metrics.h"
#include "store.h"

struct expo_queue *
gauges_new(const struct config *c)
{
	struct expo_queue *q;
	size_t i;

	if ((q = calloc(c->nqueues ? c->nqueues : 1, sizeof(*q))) == NULL)
		return NULL;
	for (i = 0; i < c->nqueues; i++)
		q[i].name = c->queues[i].name;
	return q;
}

int
gauges_heads(struct store *s, struct expo_queue *q, size_t n, int64_t now)
{
	struct store_head h;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = store_queue_head(s, q[i].name, now, &h)) == -1)
			return -1;
		q[i].have_head = 1;
		q[i].oldest_waiting_s = rc == 1 && now > h.oldest_created_at ?
		    (double)(now - h.oldest_created_at) / 1e3 : 0;
		q[i].past_due_s = rc == 1 && h.oldest_due != 0 ?
		    (double)(now - h.oldest_due) / 1e3 : 0;
	}
	return 0;
}

struct count_ctx {
	struct expo_queue	*q;
	size_t			 n;
};

static void
on_count(void *arg, const char *queue, enum store_state state, int64_t count)
{
	struct count_ctx *cx = arg;
	size_t i;

	if (state < 0 || state >= EXPO_NSTATES)
		return;
	for (i = 0; i < cx->n; i++)
		if (strcmp(cx->q[i].name, queue) == 0) {
			cx->q[i].count[state] += count;
			return;
		}
}

int
gauges_counts(struct store *s, struct expo_queue *q, size_t n)
{
	struct count_ctx cx = { q, n };
	size_t i;

	for (i = 0; i < n; i++) {
		memset(q[i].count, 0, sizeof(q[i].count));
		q[i].have_counts = 0;
	}
	if (store_count_states(s, on_count, &cx) == -1)
		return -1;
	for (i = 0; i < n; i++)
		q[i].have_counts = 1;
	return 0;
}

int
gauges_lock_path(const char *database, char *buf, size_t len)
{
	const char *base = database;
	int n;

	if (store_is_postgresql(database) &&
	    (base = metrics_file_of(database)) == NULL)
		return -1;
	n = snprintf(buf, len, "%s-helper.lock", base);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
gauges_helper_up(const char *database)
{
	char path[4096];
	int fd, up;

	if (gauges_lock_path(database, path, sizeof(path)) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	/* SQLite's active helper holds it exclusively, PostgreSQL's helpers
	 * shared: the lock this one cannot take says someone holds it. */
	if (flock(fd, (store_is_postgresql(database) ? LOCK_EX : LOCK_SH) |
	    LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
		up = 0;
	} else
		up = errno == EWOULDBLOCK ? 1 : -1;
	(void)close(fd);
	return up;
}

/*
 * Move the counts c of one queue on by the counters' deltas d since its
 * base: a start takes a waiting job (queued or retry: the count's split
 * is kept, the queued ones take the difference) and makes it running; an
 * attempt that failed puts it back to wait; done, dead and cancelled are
 * where jobs end.  A transition the counters do not see (a release at
 * shutdown, fcgiqctl retry, a prune) waits for the next count; nothing
 * goes below 0.
 */
static void
move_on(int64_t c[EXPO_NSTATES], const int64_t d[METRICS_NBASE])
{
	int64_t waiting, running;

	waiting = c[STORE_JOB_QUEUED] + c[STORE_JOB_RETRY] +
	    d[METRICS_B_ENQUEUED] + d[METRICS_B_FAILED] -
	    d[METRICS_B_STARTED] - d[METRICS_B_CANCELLED];
	if (waiting < 0)
		waiting = 0;
	if (c[STORE_JOB_RETRY] > waiting)
		c[STORE_JOB_RETRY] = waiting;
	c[STORE_JOB_QUEUED] = waiting - c[STORE_JOB_RETRY];
	running = c[STORE_JOB_RUNNING] + d[METRICS_B_STARTED] -
	    d[METRICS_B_DONE] - d[METRICS_B_FAILED] - d[METRICS_B_DEAD];
	c[STORE_JOB_RUNNING] = running > 0 ? running : 0;
	c[STORE_JOB_DONE] += d[METRICS_B_DONE];
	c[STORE_JOB_DEAD] += d[METRICS_B_DEAD];
	c[STORE_JOB_CANCELLED] += d[METRICS_B_CANCELLED];
}

void
gauges_from_counts(struct expo_queue *q, size_t n,
    const struct metrics_counts *mc, const struct metrics_slot *sum)
{
	uint64_t b[METRICS_NBASE];
	int64_t d[METRICS_NBASE];
	size_t i, k;
	int ix, back;

	for (i = 0; i < n; i++) {
		if ((ix = metrics_queue(q[i].name)) == -1)
			continue;
		for (k = 0; k < EXPO_NSTATES; k++)
			q[i].count[k] = mc->n[ix][k];
		q[i].have_counts = mc->at_ms != 0;
		if (!mc->has_base || sum == NULL || mc->at_ms == 0)
			continue;
		metrics_base_of(&sum->q[ix], b);
		for (k = 0, back = 0; k < METRICS_NBASE; k++) {
			back |= b[k] < mc->base[ix][k];
			d[k] = (int64_t)(b[k] - mc->base[ix][k]);
		}
		/* Counters behind the base: not the ones it was read from
		 * (the file was replaced).  The count as it is, and another
		 * count soon. */
		if (back) {
			metrics_counts_stale();
			continue;
		}
		move_on(q[i].count, d);
	}
}

int
gauges_live_counts(struct expo_queue *q, size_t n, const char *database,
    int64_t now, double *age_s)
{
	static char nm[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct metrics_counts mc;
	struct metrics_slot *sum;
	char err[256];

	*age_s = -1;
	if (metrics_counts_get(&mc) != 1 || mc.at_ms == 0)
		return 0;
	if ((sum = malloc(sizeof(*sum))) != NULL) {
		pthread_mutex_lock(&lock);
		if (metrics_sum(database, sum, nm, err, sizeof(err)) == -1) {
			free(sum);
			sum = NULL;
		}
		pthread_mutex_unlock(&lock);
	}
	gauges_from_counts(q, n, &mc, sum);
	free(sum);
	*age_s = now > mc.at_ms ? (double)(now - mc.at_ms) / 1e3 : 0;
	return 1;
}

/* The counters as a count's snapshot is taken: its base. */
struct snap_ctx {
	const char		*database;
	struct metrics_slot	*sum;
	int			 ok;
};

static void
on_snapped(void *arg)
{
	static char nm[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct snap_ctx *sx = arg;
	char err[256];

	if (sx->sum == NULL)
		return;
	pthread_mutex_lock(&lock);
	sx->ok = metrics_sum(sx->database, sx->sum, nm, err, sizeof(err)) == 0;
	pthread_mutex_unlock(&lock);
}

int
gauges_count_shared(struct store *s, const struct config *c)
{
	struct metrics_counts mc;
	struct count_ctx cx;
	struct snap_ctx sx;
	struct expo_queue *q;
	int64_t t0 = mono_ms();
	size_t i, k;
	int ix, rc;

	if ((q = gauges_new(c)) == NULL)
		return -1;
	memset(&mc, 0, sizeof(mc));
	sx.database = c->database;
	sx.sum = malloc(sizeof(*sx.sum));
	sx.ok = 0;
	cx.q = q;
	cx.n = c->nqueues;
	rc = store_count_states_snap(s, on_snapped, &sx, on_count, &cx);
	if (rc == -1) {
		free(sx.sum);
		free(q);
		return -1;
	}
	for (i = 0; i < c->nqueues; i++) {
		if ((ix = metrics_queue(q[i].name)) == -1)
			continue;
		for (k = 0; k < EXPO_NSTATES; k++)
			mc.n[ix][k] = q[i].count[k];
		if (sx.ok)
			metrics_base_of(&sx.sum->q[ix], mc.base[ix]);
	}
	/* PostgreSQL: other hosts' helpers move jobs too, and their counters
	 * are not in this host's file: the count is served as it is. */
	mc.has_base = sx.ok && !store_is_postgresql(c->database);
	mc.at_ms = store_now();
	mc.cost_ms = mono_ms() - t0;
	metrics_counts_put(&mc);
	free(sx.sum);
	free(q);
	return 0;
}

struct breaker_ctx {
	const struct config	*c;
	struct store_breaker	*b;	/* one per queue of c */
};

static void
on_breaker(void *arg, const char *queue, const struct store_breaker *b)
{
	struct breaker_ctx *cx = arg;
	size_t i;

	for (i = 0; i < cx->c->nqueues; i++)
		if (strcmp(cx->c->queues[i].name, queue) == 0)
			cx->b[i] = *b;
}

/*
 * Each configured queue's circuit breaker, as its helper last stored it
 * (store-flow.c): open (1 while starts are held back: open or
 * half-open) and the times it opened.  A database error leaves them out.
 * 0, or -1 when out of memory.
 */
static int
breakers_render(struct buf *out, const struct config *c, struct store *s)
{
	static const char *const fam[2][3] = {
		{ "fcgiq_queue_breaker_open", "gauge", "1 while the queue's "
		    "circuit breaker holds its starts back (open or "
		    "half-open)." },
		{ "fcgiq_queue_breaker_trips_total", "counter", "Times the "
		    "queue's circuit breaker opened." }
	};
	struct breaker_ctx cx;
	char line[256];
	size_t i, k;
	int n, rc = 0;

	if (c->nqueues == 0)
		return 0;
	if ((cx.b = calloc(c->nqueues, sizeof(*cx.b))) == NULL)
		return -1;
	cx.c = c;
	if (store_breakers(s, on_breaker, &cx) == -1)
		goto done;
	for (k = 0; k < 2 && rc == 0; k++) {
		n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n",
		    fam[k][0], fam[k][2], fam[k][0], fam[k][1]);
		rc = buf_append(out, line, (size_t)n);
		for (i = 0; i < c->nqueues && rc == 0; i++) {
			n = snprintf(line, sizeof(line),
			    "%s{queue=\"%s\"} %lld\n", fam[k][0],
			    c->queues[i].name, k == 0 ?
			    (long long)(cx.b[i].state != 0) :
			    (long long)cx.b[i].trips);
			if (n > 0 && (size_t)n < sizeof(line))
				rc = buf_append(out, line, (size_t)n);
		}
	}
done:
	free(cx.b);
	return rc;
}

int
gauges_render(struct buf *b, const struct config *c, struct store *s,
    int count_here)
{
	static struct metrics_slot sum;	/* 16 KB: not on a stack */
	static char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct metrics_counts mc;
	struct expo_input in;
	struct expo_queue *q;
	char err[256];
	int64_t now = store_now();
	int rc, have_sum = 0;

	if ((q = gauges_new(c)) == NULL)
		return -1;
	if (count_here && metrics_counts_claim(now) &&
	    gauges_count_shared(s, c) == -1)
		metrics_counts_drop();
	(void)gauges_heads(s, q, c->nqueues, now);
	memset(&in, 0, sizeof(in));
	in.counts_age_s = -1;
	pthread_mutex_lock(&lock);
	if (metrics_sum(c->database, &sum, names, err, sizeof(err)) == -1)
		memset(&sum, 0, sizeof(sum));
	else
		have_sum = 1;
	if (metrics_counts_get(&mc) == 1) {
		gauges_from_counts(q, c->nqueues, &mc, have_sum ? &sum : NULL);
		in.counts_age_s = now > mc.at_ms ?
		    (double)(now - mc.at_ms) / 1e3 : 0;
	}
	in.q = q;
	in.nq = c->nqueues;
	in.helper_up = gauges_helper_up(c->database);
	in.sum = &sum;
	in.names = names;
	rc = expo_write(b, &in);
	pthread_mutex_unlock(&lock);
	if (rc == 0 && s != NULL)
		rc = breakers_render(b, c, s);
	free(q);
	return rc;
}
