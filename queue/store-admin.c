/*
 * store-admin.c: what an operator (fcgiqctl) and the responder's status
 * and cancel answers ask of the queue besides the helper's transitions:
 * cancel, retry, purge, pause, and reading jobs, counts and listings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "store-sqlite.h"

/*
 * An operator's change of one job (cancel, retry) by id with the statement
 * sid (?1 id, ?2 now).  Two statements, no transaction: when the update
 * changes nothing, the lookup only tells "refused" (2) from "unknown" (0),
 * and a job cannot go back to being changeable in between.  1: changed.
 */
static int
change_by_id(struct store *s, enum stmt_id sid, const char *id, int64_t now,
    const char *what)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	if ((st = sq_stmt(s, sid)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		(void)sq_fail_db(s, what);
		sq_done_with(st);
		return -1;
	}
	if ((r = sq_run_change(s, st, what)) != 0)
		return r > 0 ? 1 : -1;
	if ((st = sq_stmt(s, ST_EXISTS)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK) {
		(void)sq_fail_db(s, what);
		sq_done_with(st);
		return -1;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		r = 2;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = sq_fail(s, rc, what);
	sq_done_with(st);
	return r;
}

int
store_cancel(struct store *s, const char *id, int64_t now)
{
	if (s->pg != NULL)
		return pgs_cancel(s, id, now);
	return change_by_id(s, ST_CANCEL, id, now, "cancel");
}

int
store_retry(struct store *s, const char *id, int64_t now)
{
	if (s->pg != NULL)
		return pgs_retry(s, id, now);
	return change_by_id(s, ST_RETRY, id, now, "retry");
}

/* In batches (store-bulk.c): a million dead jobs must not hold the write
 * lock, and intake with it, for seconds. */
int
store_retry_dead(struct store *s, const char *queue, int64_t now)
{
	struct store_filter	 f;
	int64_t			 n;

	if (s->pg != NULL)
		return pgs_retry_dead(s, queue, now);
	memset(&f, 0, sizeof(f));
	f.queue = queue;
	f.states = 1u << STORE_JOB_DEAD;
	if ((n = store_bulk(s, STORE_BULK_RETRY, &f, now, STORE_BULK_BATCH,
	    NULL, NULL)) == -1)
		return -1;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
store_prune(struct store *s, const char *queue, int64_t cutoff)
{
	return store_purge(s, queue, STORE_JOB_ANY, cutoff);
}

int
store_purge(struct store *s, const char *queue, enum store_state state,
    int64_t cutoff)
{
	sqlite3_stmt	*st;

	if (s->pg != NULL)
		return pgs_purge(s, queue, state, cutoff);
	if (state != STORE_JOB_ANY && state != STORE_JOB_DONE &&
	    state != STORE_JOB_DEAD && state != STORE_JOB_CANCELLED)
		return sq_fail_arg(s, "purge: only done, dead or cancelled jobs");
	if ((st = sq_stmt(s, ST_PRUNE)) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, cutoff) != SQLITE_OK ||
	    sq_bind_str(st, 2, queue) != SQLITE_OK ||
	    sq_bind_str(st, 3, state == STORE_JOB_ANY ? NULL :
	    store_state_name(state)) != SQLITE_OK) {
		(void)sq_fail_db(s, "purge: bind");
		sq_done_with(st);
		return -1;
	}
	return sq_run_change(s, st, "purge");
}

int
store_pause(struct store *s, const char *queue, int paused)
{
	sqlite3_stmt	*st;

	if (s->pg != NULL)
		return pgs_pause(s, queue, paused);
	if ((st = sq_stmt(s, ST_PAUSE)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, paused != 0) != SQLITE_OK) {
		(void)sq_fail_db(s, "pause: bind");
		sq_done_with(st);
		return -1;
	}
	return sq_run_change(s, st, "pause") < 0 ? -1 : 0;
}

int
store_paused(struct store *s, const char *queue)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	if (s->pg != NULL)
		return pgs_paused(s, queue);
	if ((st = sq_stmt(s, ST_PAUSED)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK) {
		(void)sq_fail_db(s, "paused: bind");
		sq_done_with(st);
		return -1;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		r = sqlite3_column_int(st, 0) != 0;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = sq_fail(s, rc, "paused");
	sq_done_with(st);
	return r;
}

int
store_get(struct store *s, const char *id, struct store_job **out)
{
	sqlite3_stmt	*st;
	int		 rc, r = -1;

	if (s->pg != NULL)
		return pgs_get(s, id, out);
	*out = NULL;
	if ((st = sq_stmt(s, ST_GET)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK) {
		(void)sq_fail_db(s, "get: bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_DONE)
		r = 0;
	else if (rc != SQLITE_ROW)
		(void)sq_fail(s, rc, "get");
	else if ((rc = sq_job_from_row(st, out)) != SQLITE_OK)
		(void)sq_fail(s, rc, "get");
	else
		r = 1;
done:
	sq_done_with(st);
	return r;
}

int
store_states(struct store *s, const char *const *ids, size_t n,
    enum store_state *out)
{
	sqlite3_stmt	*st;
	size_t		 i;
	int		 rc, r = -1;

	if (s->pg != NULL)
		return pgs_states(s, ids, n, out);
	if ((st = sq_stmt(s, ST_STATE)) == NULL)
		return -1;
	/* Deferred: a read transaction, on a read-only connection too. */
	if (sq_exec(s, "BEGIN", "states: begin") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (sq_bind_str(st, 1, ids[i]) != SQLITE_OK) {
			(void)sq_fail_db(s, "states: bind");
			goto done;
		}
		rc = store_step_fn(st);
		if (rc == SQLITE_DONE)
			out[i] = STORE_JOB_ANY;
		else if (rc != SQLITE_ROW ||
		    sq_col_state(st, 0, &out[i]) == -1) {
			(void)sq_fail(s, rc == SQLITE_ROW ? SQLITE_CORRUPT : rc,
			    "states");
			goto done;
		}
		sq_done_with(st);
	}
	r = 0;
done:
	sq_done_with(st);
	(void)sq_exec(s, r == 0 ? "COMMIT" : "ROLLBACK", "states: end");
	return r;
}

int
store_drain(struct store *s, const char *queue, int64_t since, int64_t limit,
    int64_t *n, int64_t *oldest)
{
	sqlite3_stmt	*st;
	int		 r = -1;

	if (s->pg != NULL)
		return pgs_drain(s, queue, since, limit, n, oldest);
	*n = 0;
	*oldest = 0;
	if ((st = sq_stmt(s, ST_DRAIN)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, since) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, limit) != SQLITE_OK) {
		(void)sq_fail_db(s, "drain: bind");
		goto done;
	}
	if (sq_step_row(s, st, "drain") == 0) {
		*n = sqlite3_column_int64(st, 0);
		*oldest = sqlite3_column_int64(st, 1);	/* NULL: 0 */
		r = 0;
	}
done:
	sq_done_with(st);
	return r;
}

int64_t
store_count_waiting(struct store *s, const char *queue)
{
	sqlite3_stmt	*st;
	int64_t		 r = -1;

	if (s->pg != NULL)
		return pgs_count_waiting(s, queue);
	if ((st = sq_stmt(s, ST_COUNT_WAITING)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK) {
		(void)sq_fail_db(s, "count_waiting: bind");
		goto done;
	}
	if (sq_step_row(s, st, "count_waiting") == 0)
		r = sqlite3_column_int64(st, 0);
done:
	sq_done_with(st);
	return r;
}

int
store_stats(struct store *s, struct store_stat **out, size_t *n)
{
	sqlite3_stmt	*st;
	struct store_stat *v = NULL, *e;
	size_t		 len = 0, cap = 0;
	int		 rc;

	if (s->pg != NULL)
		return pgs_stats(s, out, n);
	*out = NULL;
	*n = 0;
	if ((st = sq_stmt(s, ST_STATS)) == NULL)
		return -1;
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		if (array_grow(&v, &cap, len + 1, sizeof(*v), 16) == -1) {
			(void)sq_fail(s, SQLITE_NOMEM, "stats");
			goto fail;
		}
		e = &v[len++];
		/* Longer queue names are cut: these are for display. */
		(void)snprintf(e->queue, sizeof(e->queue), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		if (sq_col_state(st, 1, &e->state) == -1) {
			(void)sq_fail(s, SQLITE_CORRUPT, "stats");
			goto fail;
		}
		e->count = sqlite3_column_int64(st, 2);
		e->oldest_created_at = sqlite3_column_int64(st, 3);
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "stats");
		goto fail;
	}
	sq_done_with(st);
	*out = v;
	*n = len;
	return 0;
fail:
	sq_done_with(st);
	free(v);
	return -1;
}

int
store_list(struct store *s, const char *queue, enum store_state state,
    int64_t limit, store_list_fn fn, void *arg)
{
	struct store_summary	 j;
	sqlite3_stmt		*st;
	int			 rc, r = -1;

	if (s->pg != NULL)
		return pgs_list(s, queue, state, limit, fn, arg);
	if ((st = sq_stmt(s, ST_LIST)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sq_bind_str(st, 2, state == STORE_JOB_ANY ? NULL :
	    store_state_name(state)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, limit) != SQLITE_OK) {
		(void)sq_fail_db(s, "list: bind");
		goto done;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		j.id = (const char *)sqlite3_column_text(st, 0);
		j.queue = (const char *)sqlite3_column_text(st, 1);
		if (sq_col_state(st, 2, &j.state) == -1) {
			(void)sq_fail(s, SQLITE_CORRUPT, "list");
			goto done;
		}
		j.attempts = sqlite3_column_int(st, 3);
		j.max_attempts = sqlite3_column_int(st, 4);
		j.created_at = sqlite3_column_int64(st, 5);
		j.body_len = sqlite3_column_int64(st, 6);
		j.last_error = (const char *)sqlite3_column_text(st, 7);
		fn(arg, &j);
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "list");
		goto done;
	}
	r = 0;
done:
	sq_done_with(st);
	return r;
}
