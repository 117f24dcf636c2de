/*
 * helper-flow.c: the helper's side of flow control (flow.h), called from
 * the claim loop and the recording of outcomes in helper-jobs.c.  Each
 * queue (by name, so that it survives a reload) has a token bucket and a
 * circuit breaker here; the breaker is also written to the store when it
 * changes state, in the turn's transaction, so that fcgiqctl stats, the
 * metrics and the next helper see it, and read back once a second while
 * closed, so that a breaker another helper opened pauses this one too.
 * Also the retry lane (how many of a queue's slots retries hold) and the
 * quarantine of a job that keeps killing its runner.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "flow.h"
#include "helper-internal.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

/* A queue's state, found or made (with its breaker as stored); NULL when
 * out of memory. */
static struct flow_state *
flow_of(struct helper *h, const char *name)
{
	struct store_breaker sb;
	struct flow_state *f;
	size_t i;

	for (i = 0; i < h->nflows; i++)
		if (strcmp(h->flows[i].name, name) == 0)
			return &h->flows[i];
	if (array_grow(&h->flows, &h->flows_cap, h->nflows + 1,
	    sizeof(*h->flows), 4) == -1)
		return NULL;
	f = &h->flows[h->nflows++];
	memset(f, 0, sizeof(*f));
	(void)snprintf(f->name, sizeof(f->name), "%s", name);
	/* An open breaker outlives its helper: the upstream is no better
	 * for a restart.  A half-open one was probing: open, due now. */
	switch (store_breaker_get(h->store, name, &sb)) {
	case 1:
		f->br.state = sb.state == FLOW_CLOSED ? FLOW_CLOSED :
		    FLOW_OPEN;
		f->br.open_until = sb.open_until;
		f->br.failures = sb.failures;
		f->br.pause_ms = sb.pause_ms;
		f->br.trips = sb.trips;
		break;
	case -1:
		log_warnx("helper: queue %s: breaker: %s", name,
		    store_error(h->store));
		break;
	}
	return f;
}

/* Log and store a transition of q's breaker (in the open batch). */
static void
breaker_event(struct helper *h, const struct queue_conf *q,
    struct flow_state *f, enum flow_event ev, const char *why)
{
	struct store_breaker sb;
	char dur[32];

	switch (ev) {
	case FLOW_EV_NONE:
		return;
	case FLOW_EV_OPENED:
		clock_fmt(f->br.pause_ms, dur, sizeof(dur));
		log_warnx("helper: queue %s: breaker open for %s after %d "
		    "failed attempt%s in a row (%s)", q->name, dur,
		    f->br.failures, f->br.failures == 1 ? "" : "s", why);
		break;
	case FLOW_EV_HALF_OPEN:
		log_info("helper: queue %s: breaker half-open: one job "
		    "probes", q->name);
		break;
	case FLOW_EV_CLOSED:
		log_info("helper: queue %s: breaker closed", q->name);
		break;
	}
	memset(&sb, 0, sizeof(sb));
	sb.state = f->br.state;
	sb.open_until = f->br.open_until;
	sb.failures = f->br.failures;
	sb.pause_ms = f->br.pause_ms;
	sb.trips = f->br.trips;
	if (store_breaker_set(h->store, q->name, &sb,
	    ev == FLOW_EV_OPENED) == -1)
		log_warnx("helper: queue %s: breaker: %s", q->name,
		    store_error(h->store));
}

/* How often a helper whose breaker is closed looks whether another one
 * opened it (ms). */
#define PEEK_MS		1000

/*
 * Several helpers share a queue (PostgreSQL: on several hosts), each with
 * its own breaker: one that finds the queue's breaker stored open by
 * another pauses too, until the same time, instead of failing
 * pause_after more attempts of its own first.  It then probes as any
 * open breaker does.  With one helper the stored breaker is its own, and
 * this finds nothing new.
 */
static void
breaker_peek(struct helper *h, const struct queue_conf *q,
    struct flow_state *f, int64_t now, int64_t wall)
{
	struct store_breaker sb;
	char dur[32];

	if (f->br.state != FLOW_CLOSED || now < f->peek_at)
		return;
	f->peek_at = now + PEEK_MS;
	switch (store_breaker_get(h->store, q->name, &sb)) {
	case 1:
		break;
	case -1:
		log_warnx("helper: queue %s: breaker: %s", q->name,
		    store_error(h->store));
		return;
	default:
		return;
	}
	if (sb.state != FLOW_OPEN || sb.open_until <= wall)
		return;
	f->br.state = FLOW_OPEN;
	f->br.open_until = sb.open_until;
	f->br.failures = sb.failures;
	f->br.pause_ms = sb.pause_ms;
	f->br.trips = sb.trips;
	clock_fmt(sb.open_until - wall, dur, sizeof(dur));
	log_info("helper: queue %s: breaker open for %s (another helper "
	    "opened it)", q->name, dur);
}

int
helper_flow_allow(struct helper *h, const struct queue_conf *q, int64_t now,
    int64_t *next)
{
	struct flow_state *f;
	enum flow_event ev;
	int64_t wall, until = 0, at;

	if (q->flow.rate <= 0 && q->flow.pause_after <= 0)
		return 1;
	if ((f = flow_of(h, q->name)) == NULL)
		return 1;
	wall = store_now();
	if (q->flow.pause_after > 0)
		breaker_peek(h, q, f, now, wall);
	if (!flow_breaker_allow(&f->br, &q->flow, wall, &until, &ev)) {
		/* Open: wake when it is due to half-open.  Probing: the
		 * probe's outcome is a turn of its own. */
		if (until > wall && now + (until - wall) < *next)
			*next = now + (until - wall);
		return 0;
	}
	breaker_event(h, q, f, ev, "");
	if (!flow_bucket_ready(&f->bucket, &q->flow, now, &at)) {
		if (at < *next)
			*next = at;
		return 0;
	}
	return 1;
}

void
helper_flow_started(struct helper *h, const struct queue_conf *q,
    const struct store_job *job, int64_t now)
{
	struct flow_state *f;

	if (q->flow.rate <= 0 && q->flow.pause_after <= 0)
		return;
	if ((f = flow_of(h, q->name)) == NULL)
		return;
	flow_bucket_take(&f->bucket, &q->flow, now);
	if (f->br.state == FLOW_HALF_OPEN && !f->br.probing) {
		flow_breaker_started(&f->br);
		(void)snprintf(f->probe, sizeof(f->probe), "%s", job->id);
	}
}

void
helper_flow_outcome(struct helper *h, const struct slot *s)
{
	const struct queue_conf *q = s->q;
	const struct slot_outcome *o = &s->rec;
	struct flow_state *f;
	enum flow_event ev;
	int probe;

	if (q->flow.pause_after <= 0)
		return;
	if ((f = flow_of(h, q->name)) == NULL)
		return;
	probe = f->br.state == FLOW_HALF_OPEN && f->br.probing &&
	    strcmp(f->probe, s->job->id) == 0;
	if (o->result == SLOT_RELEASED) {
		if (probe)
			flow_breaker_released(&f->br);
		return;
	}
	ev = flow_breaker_outcome(&f->br, &q->flow, o->result == SLOT_DONE,
	    probe, q->backoff_max_ms, store_now());
	breaker_event(h, q, f, ev, o->reason);
}

void
helper_flow_dropped(struct helper *h, const struct store_job *job)
{
	size_t i;

	for (i = 0; i < h->nflows; i++)
		if (h->flows[i].br.probing &&
		    strcmp(h->flows[i].probe, job->id) == 0)
			flow_breaker_released(&h->flows[i].br);
}

int
helper_flow_retries_full(const struct helper *h, const struct queue_conf *q)
{
	size_t i, n = 0, lane;

	lane = (size_t)flow_retry_slots(&q->flow, q->concurrency);
	if (lane >= (size_t)q->concurrency)
		return 0;
	/* A claimed job's attempts count its own run: > 1 is a retry. */
	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].state != SLOT_FREE &&
		    h->slots[i].state != SLOT_RECORDED &&
		    h->slots[i].job->attempts > 1 &&
		    strcmp(h->slots[i].q->name, q->name) == 0)
			n++;
	for (i = 0; i < h->nclaimed; i++)
		if (h->claimed[i].job->attempts > 1 &&
		    strcmp(h->claimed[i].q->name, q->name) == 0)
			n++;
	return n >= lane;
}

int
helper_flow_quarantine(struct helper *h, const struct queue_conf *q,
    const struct store_job *job)
{
	char why[64];
	int dead = 0, rc;

	if (!flow_quarantined(q, job->crashes))
		return 0;
	/* Its runner died under it that often (leases that expired, helpers
	 * that went away): it does not run again. */
	(void)snprintf(why, sizeof(why), "crashed %d times", job->crashes);
	rc = store_finish_failed(h->store, job->id, job->attempts, why, 1,
	    q->backoff_min_ms, q->backoff_max_ms, store_now(), &dead);
	if (rc == -1)
		return -1;
	log_warnx("helper: job %s: %s: dead", job->id, why);
	metrics_finished(job->queue, METRICS_DEAD, -1);
	return 1;
}

int
flow_quarantined(const struct queue_conf *q, int crashes)
{
	return q->flow.quarantine_after > 0 &&
	    crashes >= q->flow.quarantine_after;
}

void
helper_flow_free(struct helper *h)
{
	free(h->flows);
	h->flows = NULL;
	h->nflows = h->flows_cap = 0;
}
