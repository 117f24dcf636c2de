/*
 * store-pg-sched.c: recurring jobs' slots and dead letters on PostgreSQL,
 * with the semantics of store-schedule.c and store-dead.c.
 *
 * Schedules: with PostgreSQL every helper is active, on every host, so
 * several may fire one schedule at once.  pgs_schedule_run holds, for the
 * whole transaction, an advisory lock keyed by the schedule's name: the
 * read of the last slot, the insert of the slots' jobs and the move of
 * the last slot are one critical section per schedule across all
 * sessions, as BEGIN IMMEDIATE makes them with SQLite (the run itself is
 * store_schedule_run's, over these primitives).  A second helper
 * waits for the first's COMMIT, then (READ COMMITTED: each statement sees
 * what was committed before it) reads the last slot moved past the slot
 * and enqueues nothing.  Behind the lock, each job's idempotency key
 * "schedule:NAME:SLOTMS" and the unique index on (queue, idempotency_key)
 * forbid a second row for a slot (the INSERT's ON CONFLICT DO NOTHING),
 * and the last slot only moves forward (greatest()), so a clock stepped
 * back cannot move it back either.
 *
 * Dead letters: the letter is inserted in the transaction that makes the
 * job dead (the caller's: store-pg-jobs.c opens one when dead letters are
 * on), so it is committed with the death or not at all.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store-sqlite.h"
#include "store-pg.h"

/* The advisory locks of schedules: the class of pg_advisory_xact_lock's
 * two-key form ("fcqs" in ASCII), whose keyspace is apart from the
 * one-key form the migration lock uses; the other key is the name's
 * hash (two names sharing one only wait for each other). */
#define SCHED_LOCK_CLASS	"1717793139"

int
pgs_enqueue_in(struct store *s, struct store_newjob *jobs, size_t n)
{
	int	saved = s->pg->batch, r;

	/*
	 * pgs_enqueue opens and commits a transaction of its own unless a
	 * batch holds one: marked as a batch for the call, the caller's
	 * transaction is the one it joins.  A failure marks it failed; the
	 * caller rolls back.
	 */
	if (saved == BATCH_NONE)
		s->pg->batch = BATCH_OPEN;
	r = pgs_enqueue(s, jobs, n);
	if (saved == BATCH_NONE)
		s->pg->batch = BATCH_NONE;
	return r;
}

/* --- schedules --------------------------------------------------------- */

int
pgs_schedule_last(struct store *s, const char *name, int64_t *last)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r = 0;

	pgs_p_str(&p, name);
	if ((res = pgs_exec(s, "SELECT last_slot FROM schedules"
	    " WHERE name = $1", &p, PGRES_TUPLES_OK,
	    "schedule: last slot")) == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*last = pgs_i64(res, 0, 0);
		r = 1;
	}
	PQclear(res);
	return r;
}

/* 1 when queue holds a job with key, 0 not, -1. */
int
pgs_schedule_key_taken(struct store *s, const char *queue, const char *key)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r;

	pgs_p_str(&p, queue);
	pgs_p_str(&p, key);
	if ((res = pgs_exec(s, "SELECT 1 FROM jobs"
	    " WHERE queue = $1 AND idempotency_key = $2", &p,
	    PGRES_TUPLES_OK, "schedule: key lookup")) == NULL)
		return -1;
	r = PQntuples(res) > 0;
	PQclear(res);
	return r;
}

int
pgs_schedule_begin(struct store *s, const char *name)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;

	if (pgs_begin(s) == -1)
		return -1;
	pgs_p_str(&p, name);
	if ((res = pgs_exec(s, "SELECT pg_advisory_xact_lock("
	    SCHED_LOCK_CLASS ", hashtext($1))", &p, PGRES_TUPLES_OK,
	    "schedule: lock")) == NULL) {
		pgs_rollback(s);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
pgs_schedule_set_last(struct store *s, const char *name, int64_t last)
{
	struct pgs_params	 p = { 0 };

	pgs_p_str(&p, name);
	pgs_p_i64(&p, last);
	return pgs_change(s, "INSERT INTO schedules (name, last_slot)"
	    " VALUES ($1, $2) ON CONFLICT (name) DO UPDATE"
	    " SET last_slot = greatest(schedules.last_slot,"
	    "  excluded.last_slot)", &p, "schedule: last slot") == -1 ? -1 : 0;
}

/* --- dead letters ------------------------------------------------------ */

int
pgs_dead_letter(struct store *s, const char *id, const char *prefix)
{
	/* The body byte for byte as SQLite's json_object() makes it (no
	 * spaces, keys in this order): to_json() quotes and escapes. */
	static const char sql[] =
	    "SELECT queue, '{\"job\":' || to_json(id)::text"
	    "  || ',\"queue\":' || to_json(queue)::text"
	    "  || ',\"attempts\":' || attempts"
	    "  || ',\"last_error\":' || coalesce(to_json(last_error)::text,"
	    "    'null')"
	    "  || ',\"status_url\":' || to_json($2::text || id)::text || '}'"
	    " FROM jobs WHERE id = $1 AND state = 'dead'";
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r = 0;

	pgs_p_str(&p, id);
	pgs_p_str(&p, prefix);
	if ((res = pgs_exec(s, sql, &p, PGRES_TUPLES_OK,
	    "dead letter")) == NULL)
		return -1;
	/* Not dead after all: no letter. */
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
	    !PQgetisnull(res, 0, 1))
		r = sq_dead_event(s, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
	PQclear(res);
	return r;
}
