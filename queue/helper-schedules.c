/*
 * helper-schedules.c: the helper's hook for [schedule NAME]: one call a
 * loop turn.  The next slot of each schedule is kept in memory, so a turn
 * with nothing due costs one clock read and a compare; the database is
 * touched only when a slot is due (schedule_fire: one transaction that
 * reads the last slot enqueued, enqueues, moves it).  After a
 * configuration load every schedule is due at once: that first fire
 * catches up on what a downtime missed.
 */
#include <stdlib.h>
#include <string.h>

#include "helper-internal.h"
#include "log.h"
#include "schedule.h"
#include "store.h"

struct sched_state {
	int64_t	next;		/* wall ms of the next check; 0: never */
};

/* The mono deadline of the next slot, for poll's timeout. */
static void
set_wake(struct helper *h, int64_t mono, int64_t wall)
{
	int64_t d = h->sched_due - wall;

	if (h->sched_due == 0)
		h->sched_at = 0;
	else
		h->sched_at = mono + (d < 0 ? 0 : d > 60000 ? 60000 : d);
}

static int
rebuild(struct helper *h, int64_t wall)
{
	const struct config *c = &h->cfg->c;
	struct sched_state *v = NULL;
	size_t i;

	if (c->schedules.n > 0 &&
	    (v = calloc(c->schedules.n, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < c->schedules.n; i++)
		v[i].next = wall;	/* catch up at once */
	free(h->sched);
	h->sched = v;
	h->nsched = c->schedules.n;
	h->sched_cfg = h->cfg;
	h->sched_since = wall;
	h->sched_due = h->nsched > 0 ? wall : 0;
	return 0;
}

void
helper_schedules(struct helper *h, int64_t mono)
{
	const struct config *c = &h->cfg->c;
	const struct schedule_conf *sc;
	const struct queue_conf *q;
	int64_t wall, last, base, slot, due = 0;
	size_t i;
	int n;

	if (h->stopping || h->store == NULL)
		return;
	if (h->sched_cfg != h->cfg && rebuild(h, schedule_now()) == -1) {
		log_warnx("helper: schedules: out of memory");
		return;
	}
	if (h->nsched == 0)
		return;
	wall = schedule_now();
	if (wall < h->sched_due) {
		set_wake(h, mono, wall);
		return;
	}
	for (i = 0; i < h->nsched; i++) {
		sc = &c->schedules.v[i];
		if (h->sched[i].next != 0 && h->sched[i].next <= wall) {
			q = config_queue(c, sc->queue);
			if (schedule_fire(h->store, sc, q != NULL ?
			    q->max_attempts : 1, q != NULL ? q->priority : 0,
			    wall, h->sched_since, &last, &n) == -1) {
				log_warnx("helper: schedule %s: %s", sc->name,
				    store_error(h->store));
				h->sched[i].next = wall + STORE_RETRY_MS;
			} else {
				if (n > 0) {
					log_info("helper: schedule %s: %d job%s "
					    "enqueued", sc->name, n, n == 1 ?
					    "" : "s");
					h->claim_now = 1;
				}
				/* Everything up to now is accounted for;
				 * a clock stepped back waits for last. */
				base = last > wall ? last : wall;
				h->sched[i].next = schedule_next(sc, base,
				    &slot) ? slot : 0;
			}
		}
		if (h->sched[i].next != 0 &&
		    (due == 0 || h->sched[i].next < due))
			due = h->sched[i].next;
	}
	h->sched_due = due;
	set_wake(h, mono, wall);
}

void
helper_schedules_free(struct helper *h)
{
	free(h->sched);
	h->sched = NULL;
	h->nsched = 0;
}
