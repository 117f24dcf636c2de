/*
 * store-dash.c: what the dashboard reads and changes beyond what fcgiqctl
 * does: listings of jobs by queue, state and age that stay cheap with
 * millions of jobs kept, and the dead jobs' retry or discard, one by one
 * or matching a filter, in short batches.
 *
 * Every listing walks one index in its own order and stops after a fixed
 * number of entries (the inner SELECT's LIMIT, the budget): the conditions
 * the index cannot answer are applied to those entries only, so a refresh
 * costs at most the budget whatever the database holds (and only the
 * page's rows when there are no such conditions).  The price: a
 * filter the index does not carry (a queue among all waiting jobs kept in
 * another order, an age among all jobs) may find fewer rows than exist;
 * the caller says so.  The statements are prepared on each call, not
 * kept: a person clicks far less often than a helper claims.  The same on
 * PostgreSQL: store-pg-dash.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-pg.h"
#include "store-sqlite.h"

#define LIST_COLUMNS \
	"id, queue, state, attempts, max_attempts, created_at, run_at," \
	" coalesce(finished_at, 0), length(body), coalesce(last_error, '')"

/* Where the outer SELECT of a listing starts and what follows the inner
 * one: ?1 queue (NULL any), ?2 state (NULL any), ?3 the age bound (NULL
 * none), ?4 budget, ?5 limit, ?6 offset. */
#define OUTER	"SELECT " LIST_COLUMNS " FROM jobs WHERE seq IN ("
#define FILTER	") AND (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR state = ?2)"

/* [kind][a queue is named]. */
static const char *const list_sql[L__N][2] = {
	[L_ANY] = {
		OUTER "SELECT seq FROM jobs ORDER BY seq DESC LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY seq DESC LIMIT ?5 OFFSET ?6",
		OUTER "SELECT seq FROM jobs ORDER BY seq DESC LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY seq DESC LIMIT ?5 OFFSET ?6",
	},
	[L_WAITING] = {
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_claim"
		" WHERE state IN ('queued', 'retry')"
		" ORDER BY queue, priority DESC, run_at, seq LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY queue, priority DESC, run_at, seq"
		" LIMIT ?5 OFFSET ?6",
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_claim"
		" WHERE queue = ?1 AND state IN ('queued', 'retry')"
		" ORDER BY priority DESC, run_at, seq LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY priority DESC, run_at, seq LIMIT ?5 OFFSET ?6",
	},
	[L_RUNNING] = {
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_lease"
		" WHERE state = 'running' ORDER BY lease_until LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY lease_until LIMIT ?5 OFFSET ?6",
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_lease"
		" WHERE state = 'running' ORDER BY lease_until LIMIT ?4"
		FILTER " AND (?3 IS NULL OR created_at <= ?3)"
		" ORDER BY lease_until LIMIT ?5 OFFSET ?6",
	},
	[L_FINISHED] = {
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_finished"
		" WHERE finished_at IS NOT NULL"
		" AND finished_at <= coalesce(?3, 9223372036854775807)"
		" ORDER BY finished_at DESC LIMIT ?4"
		FILTER " ORDER BY finished_at DESC LIMIT ?5 OFFSET ?6",
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_finished"
		" WHERE finished_at IS NOT NULL"
		" AND finished_at <= coalesce(?3, 9223372036854775807)"
		" ORDER BY finished_at DESC LIMIT ?4"
		FILTER " ORDER BY finished_at DESC LIMIT ?5 OFFSET ?6",
	},
	[L_DEAD] = {
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_dead"
		" WHERE state = 'dead'"
		" AND finished_at <= coalesce(?3, 9223372036854775807)"
		" ORDER BY queue DESC, finished_at DESC LIMIT ?4"
		FILTER " ORDER BY queue DESC, finished_at DESC"
		" LIMIT ?5 OFFSET ?6",
		OUTER "SELECT seq FROM jobs INDEXED BY jobs_dead"
		" WHERE state = 'dead' AND queue = ?1"
		" AND finished_at <= coalesce(?3, 9223372036854775807)"
		" ORDER BY finished_at DESC LIMIT ?4"
		FILTER " ORDER BY finished_at DESC LIMIT ?5 OFFSET ?6",
	},
};

/* The dead jobs of a batch: ?1 queue, ?2 died at or before, ?3 how many. */
#define DEAD_PICK(q) \
	"SELECT seq FROM jobs INDEXED BY jobs_dead WHERE state = 'dead'" \
	q " AND finished_at <= ?2 LIMIT ?3"
static const char *const retry_sql[2] = {
	"UPDATE jobs SET state = 'queued', run_at = ?4, finished_at = NULL,"
	"  max_attempts = max(max_attempts, attempts + 1)"
	" WHERE seq IN (" DEAD_PICK("") ")",
	"UPDATE jobs SET state = 'queued', run_at = ?4, finished_at = NULL,"
	"  max_attempts = max(max_attempts, attempts + 1)"
	" WHERE seq IN (" DEAD_PICK(" AND queue = ?1") ")",
};
static const char *const discard_sql[2] = {
	"DELETE FROM jobs WHERE seq IN (" DEAD_PICK("") ")",
	"DELETE FROM jobs WHERE seq IN (" DEAD_PICK(" AND queue = ?1") ")",
};


static const char *
col_text(sqlite3_stmt *st, int c)
{
	const unsigned char *t = sqlite3_column_text(st, c);

	return t != NULL ? (const char *)t : "";
}

int
dash_plan(const struct store_dash_filter *f, enum dash_kind *k,
    int64_t *budget)
{
	int post;

	switch (f->state) {
	case STORE_JOB_ANY:
		*k = L_ANY;
		break;
	case STORE_JOB_QUEUED:
	case STORE_JOB_RETRY:
		*k = L_WAITING;
		break;
	case STORE_JOB_RUNNING:
		*k = L_RUNNING;
		break;
	case STORE_JOB_DEAD:
		*k = L_DEAD;
		break;
	case STORE_JOB_DONE:
	case STORE_JOB_CANCELLED:
		*k = L_FINISHED;
		break;
	default:
		return -1;
	}
	/* Conditions the index does not answer are checked on the budget's
	 * rows; without any, the first rows of the index are the answer. */
	switch (*k) {
	case L_ANY:
	case L_RUNNING:
		post = f->queue != NULL || f->before > 0;
		break;
	case L_DEAD:
		post = 0;
		break;
	default:
		post = 1;	/* one state of the index's two or three */
		break;
	}
	*budget = post ? STORE_DASH_BUDGET : f->offset + f->limit;
	return 0;
}

int
store_dash_list(struct store *s, const struct store_dash_filter *f,
    store_dash_fn fn, void *arg)
{
	struct store_dash_row row;
	sqlite3_stmt *st;
	enum dash_kind k;
	const char *state = NULL;
	int64_t budget;
	int rc, r = -1, n = 0;

	if (s->pg != NULL)
		return pgs_dash_list(s, f, fn, arg);
	if (dash_plan(f, &k, &budget) == -1)
		return sq_fail_arg(s, "list: no such state");
	if (f->state != STORE_JOB_ANY)
		state = store_state_name(f->state);
	if ((st = sq_prepare(s, list_sql[k][f->queue != NULL],
	    "the dashboard's listings")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, f->queue) != SQLITE_OK ||
	    sq_bind_str(st, 2, state) != SQLITE_OK ||
	    (f->before > 0 ? sqlite3_bind_int64(st, 3, f->before) :
	    sqlite3_bind_null(st, 3)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, budget) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, f->limit) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, f->offset) != SQLITE_OK) {
		(void)sq_fail_db(s, "list: bind");
		goto done;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		row.id = col_text(st, 0);
		row.queue = col_text(st, 1);
		if (sq_col_state(st, 2, &row.state) == -1) {
			(void)sq_fail(s, SQLITE_CORRUPT, "list");
			goto done;
		}
		row.attempts = sqlite3_column_int(st, 3);
		row.max_attempts = sqlite3_column_int(st, 4);
		row.created_at = sqlite3_column_int64(st, 5);
		row.run_at = sqlite3_column_int64(st, 6);
		row.finished_at = sqlite3_column_int64(st, 7);
		row.body_len = sqlite3_column_int64(st, 8);
		row.last_error = col_text(st, 9);
		fn(arg, &row);
		n++;
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "list");
		goto done;
	}
	r = n;
done:
	sqlite3_finalize(st);
	return r;
}

int
store_dash_discard(struct store *s, const char *id)
{
	sqlite3_stmt *st;
	int r;

	if (s->pg != NULL)
		return pgs_dash_discard(s, id);
	if ((st = sq_prepare(s, "DELETE FROM jobs WHERE id = ?1 AND"
	    " state = 'dead'", "the dashboard's discard")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK) {
		(void)sq_fail_db(s, "discard: bind");
		sqlite3_finalize(st);
		return -1;
	}
	r = sq_run_change(s, st, "discard");
	sqlite3_finalize(st);
	if (r != 0)
		return r > 0 ? 1 : -1;
	if ((st = sq_prepare(s, "SELECT 1 FROM jobs WHERE id = ?1",
	    "the dashboard's discard")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK) {
		(void)sq_fail_db(s, "discard: bind");
		sqlite3_finalize(st);
		return -1;
	}
	r = store_step_fn(st);
	r = r == SQLITE_ROW ? 2 : r == SQLITE_DONE ? 0 : sq_fail(s, r,
	    "discard");
	sqlite3_finalize(st);
	return r;
}

int
store_dash_dead_batch(struct store *s, const char *queue, int64_t before,
    int discard, int n, int64_t now)
{
	sqlite3_stmt *st;
	const char *sql;
	int r;

	if (s->pg != NULL)
		return pgs_dash_dead_batch(s, queue, before, discard, n, now);
	sql = discard ? discard_sql[queue != NULL] : retry_sql[queue != NULL];
	if ((st = sq_prepare(s, sql, "the dashboard's dead batch")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, before) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, n) != SQLITE_OK ||
	    (!discard && sqlite3_bind_int64(st, 4, now) != SQLITE_OK)) {
		(void)sq_fail_db(s, "dead batch: bind");
		sqlite3_finalize(st);
		return -1;
	}
	r = sq_run_change(s, st, "dead batch");
	sqlite3_finalize(st);
	return r;
}

int
store_dash_key(struct store *s, unsigned char *key, size_t len)
{
	if (s->pg != NULL)
		return pgs_dash_key(s, key, len);
	return sq_fail_arg(s, "dashboard key: a SQLite database's is in a "
	    "file beside it");
}
