/*
 * top: readings and frames for `fcgiqctl top`.  Nothing here writes the
 * database: the counts per state are the installation's shared ones
 * (counted here only when they are due and no other process counts, as a
 * scrape would), so a top left open on a large database costs what one
 * more scraper costs.  Per queue a frame shows:
 *   WAITING  queued jobs (due or not), RUNNING, RETRY (waiting for their
 *            next attempt), DEAD, PAUSED, OLDEST (the oldest waiting
 *            job's age, from the heads of line),
 *   DONE/m   jobs that ended done, FAIL/m attempts that failed (retried
 *            or dead), per minute over the last minute of readings.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "expo.h"
#include "gauges.h"
#include "store.h"
#include "top.h"

/* The counters of one reading, by configured queue (the first
 * METRICS_MAX_QUEUES of them: the counters' table holds no more). */
struct top_sample {
	int64_t		at;		/* wall ms; 0: none */
	uint64_t	enqueued;	/* every queue */
	uint64_t	done[METRICS_MAX_QUEUES];
	uint64_t	failed[METRICS_MAX_QUEUES];
};

struct top {
	const struct config *c;
	struct expo_queue *q;		/* counts and heads, per queue */
	int		*paused;	/* 1, 0; -1: unknown */
	int		 helper_up;	/* 1, 0; -1: unknown */
	double		 counts_age_s;	/* < 0: no counts */
	int64_t		 now;
	char		 error[160];	/* why the database was not read */
	struct metrics_slot sum;	/* scratch: 16 KB, not on a stack */
	int		 have_sum;	/* sum is this reading's */
	char		 names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME];
	struct top_sample ring[TOP_RING];
	size_t		 last;		/* ring index of the latest */
};

struct top *
top_new(const struct config *c)
{
	struct top *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->c = c;
	if ((t->q = gauges_new(c)) == NULL ||
	    (t->paused = calloc(c->nqueues ? c->nqueues : 1,
	    sizeof(*t->paused))) == NULL) {
		top_free(t);
		return NULL;
	}
	t->counts_age_s = -1;
	t->helper_up = -1;
	return t;
}

void
top_free(struct top *t)
{
	if (t == NULL)
		return;
	free(t->q);
	free(t->paused);
	free(t);
}

/* Sum the installation's counters into the next sample. */
static void
read_counters(struct top *t, int64_t now)
{
	struct top_sample *x;
	const struct metrics_queue *mq;
	char err[256];
	size_t i, k, n = t->c->nqueues;
	int o;

	t->have_sum = metrics_sum(t->c->database, &t->sum, t->names, err,
	    sizeof(err)) == 0;
	if (!t->have_sum)
		return;		/* no sample: the rates span the gap */
	t->last = (t->last + 1) % TOP_RING;
	x = &t->ring[t->last];
	memset(x, 0, sizeof(*x));
	x->at = now;
	for (k = 0; k < METRICS_MAX_QUEUES; k++)
		if (t->names[k][0] != '\0')
			x->enqueued += t->sum.q[k].enqueued;
	if (n > METRICS_MAX_QUEUES)
		n = METRICS_MAX_QUEUES;
	for (i = 0; i < n; i++)
		for (k = 0; k < METRICS_MAX_QUEUES; k++) {
			if (strcmp(t->names[k], t->q[i].name) != 0)
				continue;
			mq = &t->sum.q[k];
			x->done[i] = mq->finished[METRICS_DONE];
			for (o = METRICS_FAILED; o <= METRICS_DEAD; o++)
				x->failed[i] += mq->finished[o];
			break;
		}
}

int
top_read(struct top *t, struct store *s, int64_t now)
{
	struct metrics_counts mc;
	size_t i;
	int rc = 0, p;

	t->now = now;
	t->error[0] = '\0';
	if (metrics_counts_claim(now) && gauges_count_shared(s, t->c) == -1)
		metrics_counts_drop();
	t->counts_age_s = -1;
	read_counters(t, now);
	if (metrics_counts_get(&mc) == 1 && mc.at_ms != 0) {
		gauges_from_counts(t->q, t->c->nqueues, &mc, t->have_sum ?
		    &t->sum : NULL);
		t->counts_age_s = now > mc.at_ms ? (double)(now - mc.at_ms) /
		    1e3 : 0;
	}
	if (gauges_heads(s, t->q, t->c->nqueues, now) == -1) {
		snprintf(t->error, sizeof(t->error), "%s", store_error(s));
		rc = -1;
	}
	for (i = 0; i < t->c->nqueues; i++) {
		if ((p = store_paused(s, t->q[i].name)) == -1 && rc == 0) {
			snprintf(t->error, sizeof(t->error), "%s",
			    store_error(s));
			rc = -1;
		}
		t->paused[i] = p;
	}
	t->helper_up = gauges_helper_up(t->c->database);
	return rc;
}

/* The oldest reading at most span ms before the latest, or NULL when
 * there is none (only the latest, or the latest is too close to it). */
static const struct top_sample *
since(const struct top *t, int64_t span)
{
	const struct top_sample *cur = &t->ring[t->last], *x, *best = NULL;
	size_t k, i;

	if (cur->at == 0)
		return NULL;
	for (k = 1; k < TOP_RING; k++) {
		i = (t->last + TOP_RING - k) % TOP_RING;
		x = &t->ring[i];
		if (x->at == 0 || x->at > cur->at || cur->at - x->at > span)
			break;
		best = x;
	}
	/* Under half a second the rate is mostly noise. */
	if (best == NULL || cur->at - best->at < 500)
		return NULL;
	return best;
}

/* (b - a) per unit ms over dt ms; a counter that went back (its file was
 * made again) counts from zero. */
static double
rate(uint64_t a, uint64_t b, int64_t dt, double unit)
{
	return (double)(b >= a ? b - a : b) * unit / (double)dt;
}

static void
fmt_count(char *s, size_t n, int have, int64_t v)
{
	if (!have)
		snprintf(s, n, "-");
	else if (v < 10000000)
		snprintf(s, n, "%lld", (long long)v);
	else if (v < 10000000000LL)
		snprintf(s, n, "%.1fM", (double)v / 1e6);
	else
		snprintf(s, n, "%.1fG", (double)v / 1e9);
}

static void
fmt_age(char *s, size_t n, int have, double sec)
{
	long v = (long)sec;

	if (!have)
		snprintf(s, n, "-");
	else if (sec < 100)
		snprintf(s, n, "%.1fs", sec);
	else if (v < 6000)
		snprintf(s, n, "%ldm%02lds", v / 60, v % 60);
	else if (v < 360000)
		snprintf(s, n, "%ldh%02ldm", v / 3600, v / 60 % 60);
	else
		snprintf(s, n, "%ldd", v / 86400);
}

static void
fmt_rate(char *s, size_t n, double r)
{
	if (r < 0)
		snprintf(s, n, "-");
	else if (r < 10)
		snprintf(s, n, "%.1f", r);
	else if (r < 10000000)
		snprintf(s, n, "%.0f", r);
	else
		snprintf(s, n, "%.1fM", r / 1e6);
}

/* Append one line: printf(fmt, ...) cut to width columns (the frame is
 * ASCII but for queue names, cut on a byte: a name is the operator's). */
static int __attribute__((format(printf, 5, 6)))
line(struct buf *b, int width, int ansi, int cut, const char *fmt, ...)
{
	char l[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l, sizeof(l), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(l))
		n = sizeof(l) - 1;
	if (cut && n > width)
		n = width;
	if (buf_append(b, l, (size_t)n) == -1)
		return -1;
	return ansi ? buf_append(b, "\033[K\n", 4) : buf_append(b, "\n", 1);
}

#define ROW	"%-16.16s %7s %7s %6s %6s %6s %7s %7s %7s"

int
top_frame(const struct top *t, struct buf *b, int width, int ansi)
{
	const struct top_sample *cur = &t->ring[t->last], *m, *ten;
	const struct expo_queue *q;
	char wait[32], run[32], retry[32], dead[32], old[32], done[32],
	    fail[32], intake[32], age[32], clock[32];
	struct tm tm;
	time_t sec = (time_t)(t->now / 1000);
	size_t i;
	int64_t dt;
	int have;

	if (width > TOP_WIDTH || width <= 0)
		width = TOP_WIDTH;
	if (gmtime_r(&sec, &tm) == NULL ||
	    strftime(clock, sizeof(clock), "%H:%M:%SZ", &tm) == 0)
		snprintf(clock, sizeof(clock), "-");
	if (line(b, width, ansi, 1, "fcgiq top  %-*.*s %9s", TOP_WIDTH - 21,
	    TOP_WIDTH - 21, t->c->database, clock) == -1)
		return -1;
	ten = since(t, TOP_INTAKE_MS);
	if (ten != NULL)
		fmt_rate(intake, sizeof(intake), rate(ten->enqueued,
		    cur->enqueued, cur->at - ten->at, 1e3));
	else
		fmt_rate(intake, sizeof(intake), -1);
	fmt_age(age, sizeof(age), t->counts_age_s >= 0, t->counts_age_s);
	if (line(b, width, ansi, 1, "helper %-7s intake %s/s   counts %s old",
	    t->helper_up == 1 ? "up" : t->helper_up == 0 ? "DOWN" : "unknown",
	    intake, age) == -1 || line(b, width, ansi, 1, "%s", "") == -1 ||
	    line(b, width, ansi, 1, ROW, "QUEUE", "WAITING", "RUNNING",
	    "RETRY", "DEAD", "PAUSED", "OLDEST", "DONE/m", "FAIL/m") == -1)
		return -1;
	m = since(t, TOP_RATE_MS);
	dt = m != NULL ? cur->at - m->at : 0;
	for (i = 0; i < t->c->nqueues; i++) {
		q = &t->q[i];
		have = q->have_counts;
		fmt_count(wait, sizeof(wait), have, q->count[STORE_JOB_QUEUED]);
		fmt_count(run, sizeof(run), have, q->count[STORE_JOB_RUNNING]);
		fmt_count(retry, sizeof(retry), have,
		    q->count[STORE_JOB_RETRY]);
		fmt_count(dead, sizeof(dead), have, q->count[STORE_JOB_DEAD]);
		/* No head of line (nothing waits): 0 from gauges_heads. */
		fmt_age(old, sizeof(old), q->have_head &&
		    q->oldest_waiting_s > 0, q->oldest_waiting_s);
		if (m != NULL && i < METRICS_MAX_QUEUES) {
			fmt_rate(done, sizeof(done), rate(m->done[i],
			    cur->done[i], dt, 60e3));
			fmt_rate(fail, sizeof(fail), rate(m->failed[i],
			    cur->failed[i], dt, 60e3));
		} else {
			fmt_rate(done, sizeof(done), -1);
			fmt_rate(fail, sizeof(fail), -1);
		}
		if (line(b, width, ansi, 1, ROW, q->name, wait, run, retry,
		    dead, t->paused[i] == 1 ? "yes" : t->paused[i] == 0 ?
		    "no" : "-", old, done, fail) == -1)
			return -1;
	}
	if (t->error[0] != '\0' &&
	    line(b, width, ansi, 1, "error: %s", t->error) == -1)
		return -1;
	return 0;
}
