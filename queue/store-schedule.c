/*
 * store-schedule.c: recurring jobs' slots.  The table schedules keeps, per
 * [schedule NAME], the last slot enqueued; store_schedule_run reads it,
 * inserts the jobs of the slots after it and moves it forward in one
 * transaction (BEGIN IMMEDIATE: read then write), so two helpers, a
 * restart or a clock stepped back never enqueue a slot twice.  Each job
 * also carries the idempotency key "schedule:NAME:SLOTMS": a job whose key
 * is already stored is skipped, never inserted twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-pg.h"
#include "store-sqlite.h"

/* The last slot of name in this transaction: 1 *last set, 0 none, -1. */
static int
read_last(struct store *s, const char *name, int64_t *last)
{
	static const char sql[] =
	    "SELECT last_slot FROM schedules WHERE name = ?1";
	sqlite3_stmt *st = NULL;
	int rc, r = -1;

	if (s->pg != NULL)
		return pgs_schedule_last(s, name, last);
	if ((st = sq_prepare(s, sql, "schedules")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, name) != SQLITE_OK) {
		(void)sq_fail_db(s, "schedule: bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW) {
		*last = sqlite3_column_int64(st, 0);
		r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		(void)sq_fail(s, rc, "schedule: last slot");
done:
	sqlite3_finalize(st);
	return r;
}

/* 1 when queue holds a job with key, 0 not, -1. */
static int
key_taken(struct store *s, const char *queue, const char *key)
{
	sqlite3_stmt *st;
	int rc, r = -1;

	if (s->pg != NULL)
		return pgs_schedule_key_taken(s, queue, key);
	if ((st = sq_stmt(s, ST_IDEM_LOOKUP)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sq_bind_str(st, 2, key) != SQLITE_OK) {
		(void)sq_fail_db(s, "schedule: bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		r = 1;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		(void)sq_fail(s, rc, "schedule: key lookup");
done:
	sq_done_with(st);
	return r;
}

static int
write_last(struct store *s, const char *name, int64_t last)
{
	static const char sql[] =
	    "INSERT INTO schedules (name, last_slot) VALUES (?1, ?2)"
	    " ON CONFLICT (name) DO UPDATE SET last_slot = excluded.last_slot";
	sqlite3_stmt *st = NULL;
	int r = -1;

	if (s->pg != NULL)
		return pgs_schedule_set_last(s, name, last);
	if ((st = sq_prepare(s, sql, "schedules")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, name) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, last) != SQLITE_OK) {
		(void)sq_fail_db(s, "schedule: bind");
		goto done;
	}
	r = sq_step_done(s, st, "schedule: last slot");
done:
	sqlite3_finalize(st);
	return r;
}

int
store_schedule_run(struct store *s, const char *name, store_slots_fn fn,
    void *arg, int *enqueued)
{
	struct store_newjob *jobs = NULL;
	size_t n = 0, i, k;
	int64_t last = 0, newlast;
	int has, t;

	*enqueued = 0;
	/* PostgreSQL: BEGIN and an advisory lock on the schedule, since
	 * every helper there is active (store-pg-sched.c). */
	if ((s->pg != NULL ? pgs_schedule_begin(s, name) : sq_begin(s)) == -1)
		return -1;
	if ((has = read_last(s, name, &last)) == -1)
		goto fail;
	newlast = has ? last : INT64_MIN;
	if (fn(arg, has, last, &jobs, &n, &newlast) == -1) {
		(void)sq_set_error(s, SQLITE_NOMEM, "schedule: out of memory");
		goto fail;
	}
	/* Drop the slots whose key is stored (the table lost its row). */
	for (i = 0, k = 0; i < n; i++) {
		if ((t = key_taken(s, jobs[i].queue,
		    jobs[i].idempotency_key)) == -1)
			goto fail;
		if (t == 0)
			jobs[k++] = jobs[i];
	}
	if (k > 0 && (s->pg != NULL ? pgs_enqueue_in(s, jobs, k) :
	    sq_enqueue_in(s, jobs, k)) == -1)
		goto fail;
	if (newlast > (has ? last : INT64_MIN) &&
	    write_last(s, name, newlast) == -1)
		goto fail;
	if ((s->pg != NULL ? pgs_commit(s) : sq_commit(s)) == -1)
		goto fail;
	/* Those stored: a key taken meanwhile is a duplicate, not counted. */
	for (i = 0; i < k; i++)
		*enqueued += jobs[i].outcome == STORE_ENQ_NEW;
	return 0;
fail:
	if (s->pg != NULL)
		pgs_rollback(s);
	else
		sq_rollback(s);
	return -1;
}

int
store_schedule_last(struct store *s, const char *name, int64_t *last)
{
	return read_last(s, name, last);
}
