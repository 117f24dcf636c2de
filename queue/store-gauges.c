/*
 * store-gauges.c: what the metrics read from the database, each through
 * an index so that none reads the jobs' rows wholesale: a queue's head of
 * line (a skip scan of the claim index, one probe per priority level:
 * O(levels log n) however many jobs wait) and the counts per queue and
 * state (a walk of the claim, lease and finished indexes: O(jobs), for
 * callers that bound how often they pay it, and that move it on from the
 * shared counters in between: metrics.h).  The queue_stats view
 * answers the same by reading every row of the table: at 10 M jobs
 * 33 s here, against 3 s for the counts below and 1 ms for a head.  The
 * statements are prepared per call: a scrape runs them once a second at
 * most, and the store's table of statements stays the helper's and the
 * responder's.
 */
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "store-sqlite.h"

#define HEAD_LEVELS	16	/* priority levels probed per queue */

int
store_queue_head(struct store *s, const char *queue, int64_t now,
    struct store_head *h)
{
	if (s->pg != NULL)
		return pgs_queue_head(s, queue, now, h);
	static const char sql[] =
	    "SELECT priority, run_at, created_at FROM jobs"
	    " INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')"
	    "  AND priority < ?2"
	    " ORDER BY priority DESC, run_at, seq LIMIT 1";
	sqlite3_stmt	*st;
	int64_t		 below = INT64_MAX, run_at, created_at;
	int		 rc, level, r = -1;

	h->jobs = 0;
	h->oldest_created_at = 0;
	h->oldest_due = 0;
	if ((st = sq_prepare(s, sql, "queue head")) == NULL)
		return -1;
	for (level = 0; level < HEAD_LEVELS; level++) {
		if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, below) != SQLITE_OK) {
			(void)sq_fail_db(s, "queue head: bind");
			goto done;
		}
		if ((rc = store_step_fn(st)) == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			(void)sq_fail(s, rc, "queue head");
			goto done;
		}
		below = sqlite3_column_int64(st, 0);
		run_at = sqlite3_column_int64(st, 1);
		created_at = sqlite3_column_int64(st, 2);
		h->jobs++;
		if (h->oldest_created_at == 0 ||
		    created_at < h->oldest_created_at)
			h->oldest_created_at = created_at;
		if (run_at <= now && (h->oldest_due == 0 ||
		    run_at < h->oldest_due))
			h->oldest_due = run_at;
		sqlite3_reset(st);
	}
	r = h->jobs > 0;
done:
	sqlite3_finalize(st);
	return r;
}

/* Run sql (rows: queue, state or NULL, count) into fn; state NULL means
 * the statement's columns 2.. are counts of states[]. */
static int
count_rows(struct store *s, const char *sql, const enum store_state *states,
    int nstates, store_count_fn fn, void *arg)
{
	sqlite3_stmt	*st;
	enum store_state state;
	int		 rc, k;

	if ((st = sq_prepare(s, sql, "counts")) == NULL)
		return -1;
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		const char *q = (const char *)sqlite3_column_text(st, 0);

		if (q == NULL)
			continue;
		if (states == NULL) {
			if (sq_col_state(st, 1, &state) == -1)
				continue;
			fn(arg, q, state, sqlite3_column_int64(st, 2));
			continue;
		}
		for (k = 0; k < nstates; k++)
			fn(arg, q, states[k], sqlite3_column_int64(st, 1 + k));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "counts");
	return 0;
}

/* The three walks of store_count_states, each its own statement. */
static int
count_all(struct store *s, store_count_fn fn, void *arg)
{
	static const enum store_state waiting[] = { STORE_JOB_QUEUED,
	    STORE_JOB_RETRY };
	static const enum store_state running[] = { STORE_JOB_RUNNING };

	/* The claim index holds queue and state: no row is read. */
	if (count_rows(s, "SELECT queue, sum(state = 'queued'),"
	    " sum(state = 'retry') FROM jobs INDEXED BY jobs_claim"
	    " WHERE state IN ('queued', 'retry') GROUP BY queue", waiting, 2,
	    fn, arg) == -1)
		return -1;
	/* As many rows as worker slots. */
	if (count_rows(s, "SELECT queue, count(*) FROM jobs"
	    " INDEXED BY jobs_lease WHERE state = 'running' GROUP BY queue",
	    running, 1, fn, arg) == -1)
		return -1;
	/* One row per finished job still kept (keep_done bounds them). */
	return count_rows(s, "SELECT queue, state, count(*) FROM jobs"
	    " INDEXED BY jobs_finished WHERE finished_at IS NOT NULL"
	    " GROUP BY queue, state", NULL, 0, fn, arg);
}

int
store_count_states(struct store *s, store_count_fn fn, void *arg)
{
	return store_count_states_snap(s, NULL, NULL, fn, arg);
}

/*
 * With snapped, the three walks read one snapshot (a read transaction),
 * and snapped runs the moment it is taken, before the walks: what it reads
 * beside the database (the shared counters) is then of the same instant,
 * give or take the transitions committed in between.
 */
int
store_count_states_snap(struct store *s, void (*snapped)(void *),
    void *sarg, store_count_fn fn, void *arg)
{
	int64_t v;
	int rc;

	if (s->pg != NULL) {
		if (snapped != NULL)
			snapped(sarg);
		return pgs_count_states(s, fn, arg);
	}
	if (snapped == NULL)
		return count_all(s, fn, arg);
	/* BEGIN is deferred: the first read takes the snapshot. */
	if (sq_exec(s, "BEGIN", "counts: begin") == -1)
		return -1;
	if (sq_query_one(s, "SELECT count(*) FROM queues", &v, NULL, 0) ==
	    -1) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	snapped(sarg);
	rc = count_all(s, fn, arg);
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
