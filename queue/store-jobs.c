/*
 * store-jobs.c: the life of a job after its enqueue, as the helper drives
 * it: claim, finish (done or failed), release, lease extension and the
 * requeue of jobs whose helper went away.  A running job belongs to one
 * attempt (its attempts count at claim time); every transition out of
 * running names that attempt and does nothing when the job has moved on
 * (fencing), so an attempt whose lease expired cannot overwrite the
 * outcome of the next one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "store-sqlite.h"

#define STORE_MAX_ERROR		4096	/* bytes of last_error kept */

static const char *const state_names[] = {
	[STORE_JOB_QUEUED] = "queued",
	[STORE_JOB_RUNNING] = "running",
	[STORE_JOB_RETRY] = "retry",
	[STORE_JOB_DONE] = "done",
	[STORE_JOB_DEAD] = "dead",
	[STORE_JOB_CANCELLED] = "cancelled"
};
#define NSTATES	(sizeof(state_names) / sizeof(state_names[0]))

const char *
store_state_name(enum store_state state)
{
	if (state < 0 || (size_t)state >= NSTATES)
		return "?";
	return state_names[state];
}

int
store_state_parse(const char *name, enum store_state *state)
{
	size_t	i;

	for (i = 0; i < NSTATES; i++)
		if (strcmp(name, state_names[i]) == 0) {
			*state = (enum store_state)i;
			return 0;
		}
	return -1;
}

/* The state in column c of st; -1 when it is no state's name. */
int
sq_col_state(sqlite3_stmt *st, int c, enum store_state *state)
{
	const char	*t = (const char *)sqlite3_column_text(st, c);

	return t != NULL ? store_state_parse(t, state) : -1;
}

static int64_t
col_time(sqlite3_stmt *st, int c)
{
	return sqlite3_column_type(st, c) == SQLITE_NULL ? 0 :
	    sqlite3_column_int64(st, c);
}

/*
 * The current row (JOB_COLUMNS) as one allocation in *out: the struct,
 * then every string and blob it points to, so store_job_free() is a single
 * free().  SQLITE_OK, SQLITE_NOMEM, or SQLITE_CORRUPT for a state that the
 * schema's CHECK should have refused.
 */
int
sq_job_from_row(sqlite3_stmt *st, struct store_job **out)
{
	static const int	 strs[] = { C_QUEUE, C_IDEMPOTENCY_KEY,
	    C_METHOD, C_REQUEST_URI, C_QUERY_STRING, C_CONTENT_TYPE,
	    C_REMOTE_ADDR, C_HEADERS, C_LAST_ERROR, C_RESULT_TYPE };
	const void		*p[C__COUNT];
	size_t			 len[C__COUNT];
	char			*at, *dst[C__COUNT];
	struct store_job	*j;
	enum store_state	 state;
	size_t			 need = sizeof(*j), k;
	int			 c;

	*out = NULL;
	if (sq_col_state(st, C_STATE, &state) == -1)
		return SQLITE_CORRUPT;
	/* Fetch each value first, then its length, as SQLite advises. */
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
		c = strs[k];
		p[c] = sqlite3_column_text(st, c);
		len[c] = (size_t)sqlite3_column_bytes(st, c);
		if (p[c] != NULL)
			need += len[c] + 1;
	}
	for (c = C_BODY; c <= C_RESULT; c++) {
		p[c] = sqlite3_column_blob(st, c);
		len[c] = (size_t)sqlite3_column_bytes(st, c);
		if (c == C_BODY || sqlite3_column_type(st, c) != SQLITE_NULL)
			need += len[c] + 1;
	}
	if ((j = calloc(1, need)) == NULL)
		return SQLITE_NOMEM;
	at = (char *)(j + 1);
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
		c = strs[k];
		dst[c] = NULL;
		if (p[c] == NULL)
			continue;
		dst[c] = at;
		memcpy(at, p[c], len[c]);
		at += len[c] + 1;	/* calloc wrote the NUL */
	}
	for (c = C_BODY; c <= C_RESULT; c++) {
		dst[c] = NULL;
		if (c == C_RESULT && sqlite3_column_type(st, c) == SQLITE_NULL)
			continue;
		dst[c] = at;
		if (len[c] != 0)
			memcpy(at, p[c], len[c]);
		at += len[c] + 1;
	}
	(void)snprintf(j->id, sizeof(j->id), "%s",
	    (const char *)sqlite3_column_text(st, C_ID));
	j->queue = dst[C_QUEUE];
	j->state = state;
	j->priority = sqlite3_column_int(st, C_PRIORITY);
	j->attempts = sqlite3_column_int(st, C_ATTEMPTS);
	j->max_attempts = sqlite3_column_int(st, C_MAX_ATTEMPTS);
	j->created_at = col_time(st, C_CREATED_AT);
	j->run_at = col_time(st, C_RUN_AT);
	j->started_at = col_time(st, C_STARTED_AT);
	j->finished_at = col_time(st, C_FINISHED_AT);
	j->lease_until = col_time(st, C_LEASE_UNTIL);
	j->idempotency_key = dst[C_IDEMPOTENCY_KEY];
	j->method = dst[C_METHOD];
	j->request_uri = dst[C_REQUEST_URI];
	j->query_string = dst[C_QUERY_STRING];
	j->content_type = dst[C_CONTENT_TYPE];
	j->remote_addr = dst[C_REMOTE_ADDR];
	j->headers = dst[C_HEADERS];
	j->body = dst[C_BODY];
	j->body_len = len[C_BODY];
	j->result = dst[C_RESULT];
	j->result_len = dst[C_RESULT] != NULL ? len[C_RESULT] : 0;
	j->last_error = dst[C_LAST_ERROR];
	j->result_type = dst[C_RESULT_TYPE];
	j->crashes = sqlite3_column_int(st, C_CRASHES);
	*out = j;
	return SQLITE_OK;
}

void
store_job_free(struct store_job *j)
{
	free(j);
}

static int	claim(struct store *, enum stmt_id, const char *, int64_t,
		    int64_t, struct store_job **);

/*
 * Due jobs store_claim() reads in claim order before it looks for the
 * first job of each serial key instead: enough that a few keys busy with
 * a job running rarely send it there, few enough that 10 000 jobs held
 * back behind one key cost a bounded read, not a scan.
 */
#define CLAIM_WINDOW	32

/* Whether an unfinished job of queue and key arrived before seq: 1, 0, or
 * -1 on error. */
static int
held_back(struct store *s, const char *queue, const char *key, int64_t seq)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = sq_stmt(s, ST_SERIAL_PROBE)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, seq) != SQLITE_OK) {
		sq_done_with(st);
		return sq_fail_db(s, "claim: bind");
	}
	rc = store_step_fn(st);
	sq_done_with(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_fail(s, rc, "claim: serial key");
}

/*
 * The job to claim (pick: ST_CLAIM_PICK, or ST_CLAIM_PICK_FRESH for the
 * first attempts' lane): the first due one, in claim order, that no earlier
 * unfinished job of its serial key holds back (a job without a key is
 * never held back).  When the first CLAIM_WINDOW due jobs are all held
 * back, the best of the keys' first jobs (ST_SERIAL_HEADS), which a job
 * without a key is not among: a queue that serializes gives every job a
 * key (store.h), so that only a queue whose serialize_by was removed
 * while keyed jobs waited can leave one behind them until they go.
 * 1: *seq set; 0: none; -1: error.
 */
static int
claim_pick(struct store *s, enum stmt_id pick, const char *queue,
    int64_t now, int64_t *seq)
{
	sqlite3_stmt	*st;
	int64_t		 cand;
	int		 rc, n = 0, held;

	if ((st = sq_stmt(s, pick)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, CLAIM_WINDOW) != SQLITE_OK) {
		sq_done_with(st);
		return sq_fail_db(s, "claim: bind");
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		n++;
		cand = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) == SQLITE_NULL)
			held = 0;
		else if ((held = held_back(s, queue, (const char *)
		    sqlite3_column_text(st, 1), cand)) == -1) {
			sq_done_with(st);
			return -1;
		}
		if (!held) {
			sq_done_with(st);
			*seq = cand;
			return 1;
		}
	}
	sq_done_with(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "claim");
	if (n < CLAIM_WINDOW)
		return 0;

	if ((st = sq_stmt(s, pick == ST_CLAIM_PICK_FRESH ?
	    ST_SERIAL_HEADS_FRESH : ST_SERIAL_HEADS)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		sq_done_with(st);
		return sq_fail_db(s, "claim: bind");
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	sq_done_with(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_fail(s, rc, "claim: serial keys");
}

int
store_claim(struct store *s, const char *queue, int64_t now,
    int64_t lease_ms, struct store_job **out)
{
	return claim(s, ST_CLAIM_PICK, queue, now, lease_ms, out);
}

int
store_claim_fresh(struct store *s, const char *queue, int64_t now,
    int64_t lease_ms, struct store_job **out)
{
	return claim(s, ST_CLAIM_PICK_FRESH, queue, now, lease_ms, out);
}

/* The claim of the job statement pick finds. */
static int
claim(struct store *s, enum stmt_id pick, const char *queue, int64_t now,
    int64_t lease_ms, struct store_job **out)
{
	sqlite3_stmt	*st = NULL;
	struct store_job *j = NULL;
	int64_t		 seq = 0;
	int		 rc;

	if (s->pg != NULL)
		return pgs_claim(s, queue, now, lease_ms,
		    pick == ST_CLAIM_PICK_FRESH, out);
	*out = NULL;
	if (sq_begin(s) == -1)
		return -1;
	if ((rc = claim_pick(s, pick, queue, now, &seq)) == -1)
		goto fail;
	if (rc == 0) {
		if (s->batch == BATCH_NONE)
			sq_rollback(s);	/* nothing written */
		return 0;
	}

	if ((st = sq_stmt(s, ST_CLAIM)) == NULL)
		goto fail;
	if (sqlite3_bind_int64(st, 1, seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, now + lease_ms) != SQLITE_OK) {
		(void)sq_fail_db(s, "claim: bind");
		goto fail;
	}
	if (sq_step_done(s, st, "claim") == -1)
		goto fail;
	sq_done_with(st);

	if ((st = sq_stmt(s, ST_GET_SEQ)) == NULL)
		goto fail;
	if (sqlite3_bind_int64(st, 1, seq) != SQLITE_OK) {
		(void)sq_fail_db(s, "claim: bind");
		goto fail;
	}
	if (sq_step_row(s, st, "claim") == -1)
		goto fail;
	if ((rc = sq_job_from_row(st, &j)) != SQLITE_OK) {
		(void)sq_fail(s, rc, "claim");
		goto fail;
	}
	sq_done_with(st);
	st = NULL;
	if (sq_commit(s) == -1)
		goto fail;
	*out = j;
	return 1;
fail:
	sq_done_with(st);
	sq_rollback(s);
	store_job_free(j);
	return -1;
}

int
store_next_due(struct store *s, const char *queue, int64_t *when)
{
	sqlite3_stmt	*st;
	int		 r = -1;

	if (s->pg != NULL)
		return pgs_next_due(s, queue, when);
	if ((st = sq_stmt(s, ST_NEXT_DUE)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK) {
		(void)sq_fail_db(s, "next_due: bind");
		goto done;
	}
	if (sq_step_row(s, st, "next_due") == -1)
		goto done;
	r = 0;
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*when = sqlite3_column_int64(st, 0);
		r = 1;
	}
done:
	sq_done_with(st);
	return r;
}

static int
bind_fence(struct store *s, sqlite3_stmt *st, const char *id, int attempt)
{
	if (sq_bind_str(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, attempt) != SQLITE_OK)
		return -1;
	return 0;
}

int
store_finish_done(struct store *s, const char *id, int attempt,
    const void *result, size_t result_len, int64_t now)
{
	return store_finish_done_typed(s, id, attempt, result, result_len,
	    NULL, now);
}

int
store_finish_done_typed(struct store *s, const char *id, int attempt,
    const void *result, size_t result_len, const char *result_type,
    int64_t now)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (s->pg != NULL)
		return pgs_finish_done_typed(s, id, attempt, result,
		    result_len, result_type, now);
	if ((st = sq_stmt(s, ST_DONE)) == NULL)
		return -1;
	if (result != NULL)
		rc = sqlite3_bind_blob64(st, 3, result,
		    (sqlite3_uint64)result_len, SQLITE_STATIC);
	else
		rc = sqlite3_bind_null(st, 3);
	if (rc != SQLITE_OK || bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 4, now) != SQLITE_OK ||
	    (result_type != NULL ? sq_bind_str(st, 5, result_type) :
	    sqlite3_bind_null(st, 5)) != SQLITE_OK) {
		(void)sq_fail_db(s, "finish_done: bind");
		sq_done_with(st);
		return -1;
	}
	return sq_run_change(s, st, "finish_done");
}

/* Bind error text cut to STORE_MAX_ERROR bytes, on a UTF-8 boundary. */
static int
bind_error(sqlite3_stmt *st, int i, const char *e)
{
	size_t	n;

	if (e == NULL)
		return sqlite3_bind_null(st, i);
	if ((n = strlen(e)) > STORE_MAX_ERROR) {
		n = STORE_MAX_ERROR;
		while (n > 0 && ((unsigned char)e[n] & 0xc0) == 0x80)
			n--;
	}
	return sqlite3_bind_text64(st, i, e, n, SQLITE_STATIC, SQLITE_UTF8);
}

/*
 * "Full jitter" exponential backoff: a delay drawn uniformly from
 * [min, min(max, min * 2^(attempt - 1))].
 */
int64_t
store_backoff(int attempt, int64_t min, int64_t max)
{
	uint64_t	r;
	int64_t		cap;
	int		shift;

	if (min < 0)
		min = 0;
	if (max < min)
		max = min;
	shift = attempt > 1 ? attempt - 1 : 0;
	/* Doubling past max (or past the type) stops at max. */
	if (shift >= 62 || min > (max >> shift))
		cap = max;
	else
		cap = min << shift;
	if (cap == min)
		return min;
	/*
	 * The jitter spreads load; it guards nothing.  Should getrandom
	 * fail, wait the longest delay rather than fail the transition.
	 */
	if (sq_random(&r, sizeof(r)) == -1)
		return cap;
	return min + (int64_t)(r % (uint64_t)(cap - min + 1));
}

static int	finish_failed(struct store *, const char *, int, const char *,
		    int, int64_t, int64_t, int64_t, int64_t, int, int, int *);

int
store_finish_failed(struct store *s, const char *id, int attempt,
    const char *error, int permanent, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int *dead)
{
	return store_finish_failed_at(s, id, attempt, error, permanent, 0,
	    backoff_min_ms, backoff_max_ms, now, dead);
}

int
store_finish_failed_at(struct store *s, const char *id, int attempt,
    const char *error, int permanent, int64_t run_at, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int *dead)
{
	return finish_failed(s, id, attempt, error, permanent, run_at,
	    backoff_min_ms, backoff_max_ms, now, 0, 0, dead);
}

int
store_finish_crashed(struct store *s, const char *id, int attempt,
    const char *error, int quarantine, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int *dead)
{
	return finish_failed(s, id, attempt, error, 0, 0, backoff_min_ms,
	    backoff_max_ms, now, 1, quarantine, dead);
}

/* A failed attempt, crashed or not (ST_FAILED's ?7 and ?8). */
static int
finish_failed(struct store *s, const char *id, int attempt,
    const char *error, int permanent, int64_t run_at, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int crashed, int quarantine,
    int *dead)
{
	sqlite3_stmt	*st = NULL;
	enum store_state state;
	int		 r = 0, isdead = 0;

	if (s->pg != NULL)
		return pgs_finish_failed_at(s, id, attempt, error, permanent,
		    run_at, backoff_min_ms, backoff_max_ms, now, crashed,
		    quarantine, dead);
	if (dead != NULL)
		*dead = 0;
	if (sq_begin(s) == -1)
		return -1;
	if ((st = sq_stmt(s, ST_FAILED)) == NULL)
		goto fail;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int(st, 3, permanent != 0) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, run_at > 0 ? run_at : now +
	    store_backoff(attempt, backoff_min_ms, backoff_max_ms)) != SQLITE_OK ||
	    bind_error(st, 6, error) != SQLITE_OK ||
	    sqlite3_bind_int(st, 7, crashed != 0) != SQLITE_OK ||
	    sqlite3_bind_int(st, 8, quarantine) != SQLITE_OK) {
		(void)sq_fail_db(s, "finish_failed: bind");
		goto fail;
	}
	if (sq_step_done(s, st, "finish_failed") == -1)
		goto fail;
	sq_done_with(st);
	st = NULL;
	/* Whether the update made it dead: read back, not RETURNING (see
	 * ST_CLAIM_PICK). */
	if (sqlite3_changes(s->db) > 0) {
		r = 1;
		if ((st = sq_stmt(s, ST_STATE)) == NULL)
			goto fail;
		if (sq_bind_str(st, 1, id) != SQLITE_OK) {
			(void)sq_fail_db(s, "finish_failed: bind");
			goto fail;
		}
		if (sq_step_row(s, st, "finish_failed") == -1)
			goto fail;
		isdead = sq_col_state(st, 0, &state) == 0 &&
		    state == STORE_JOB_DEAD;
		sq_done_with(st);
		st = NULL;
		if (isdead && sq_dead_letter(s, id) == -1)
			goto fail;
	}
	if (sq_commit(s) == -1)
		goto fail;
	if (dead != NULL)
		*dead = isdead;
	return r;
fail:
	sq_done_with(st);
	sq_rollback(s);
	return -1;
}

int
store_release(struct store *s, const char *id, int attempt,
    const char *reason, int64_t now)
{
	sqlite3_stmt	*st;

	if (s->pg != NULL)
		return pgs_release(s, id, attempt, reason, now);
	if ((st = sq_stmt(s, ST_RELEASE)) == NULL)
		return -1;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 3, now) != SQLITE_OK ||
	    bind_error(st, 4, reason) != SQLITE_OK) {
		(void)sq_fail_db(s, "release: bind");
		sq_done_with(st);
		return -1;
	}
	return sq_run_change(s, st, "release");
}

int
store_extend(struct store *s, const char *id, int attempt,
    int64_t lease_until)
{
	sqlite3_stmt	*st;

	if (s->pg != NULL)
		return pgs_extend(s, id, attempt, lease_until);
	if ((st = sq_stmt(s, ST_EXTEND)) == NULL)
		return -1;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 3, lease_until) != SQLITE_OK) {
		(void)sq_fail_db(s, "extend: bind");
		sq_done_with(st);
		return -1;
	}
	return sq_run_change(s, st, "extend");
}

/* What one requeue does to one queue, read before it. */
struct requeue_count {
	char	*queue;
	int	 requeued;
	int	 dead;
};

static void
requeue_counts_free(struct requeue_count *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(c[i].queue);
	free(c);
}

/* The jobs the requeue of all (every running job) or of expired leases
 * at now will make queued and dead, per queue: *out malloc'd. */
static int
requeue_counts(struct store *s, int64_t now, int all,
    struct requeue_count **out, size_t *n)
{
	static const char sql[] =
	    "SELECT queue, count(*) - sum(attempts >= max_attempts),"
	    "  sum(attempts >= max_attempts)"
	    " FROM jobs INDEXED BY jobs_lease"
	    " WHERE state = 'running' AND (?2 OR lease_until < ?1)"
	    " GROUP BY queue";
	struct requeue_count *v = NULL;
	sqlite3_stmt *st = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((st = sq_prepare(s, sql, "requeue: counts")) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, all != 0) != SQLITE_OK) {
		(void)sq_fail_db(s, "requeue: counts: bind");
		goto fail;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		if (array_grow(&v, &cap, len + 1, sizeof(*v), 4) == -1)
			goto nomem;
		if ((v[len].queue = strdup((const char *)
		    sqlite3_column_text(st, 0))) == NULL)
			goto nomem;
		v[len].requeued = sqlite3_column_int(st, 1);
		v[len].dead = sqlite3_column_int(st, 2);
		len++;
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "requeue: counts");
		goto fail;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return 0;
nomem:
	(void)sq_set_error(s, SQLITE_NOMEM, "requeue: counts: out of memory");
fail:
	sqlite3_finalize(st);
	requeue_counts_free(v, len);
	return -1;
}

/* The requeue of statement id; with dead letters on or counts asked for
 * (fn), one transaction for the change, its letters and its counts. */
static int
requeue(struct store *s, enum stmt_id id, int64_t now, const char *reason,
    store_requeue_fn fn, void *arg)
{
	sqlite3_stmt	*st;
	char		**dead = NULL;
	struct requeue_count *counts = NULL;
	size_t		 ndead = 0, ncounts = 0, i;
	int		 n, all = id == ST_REQUEUE_RUNNING;
	int		 txn = s->dlq != NULL || fn != NULL;

	if (txn) {
		/*
		 * Most turns nothing expired: a read says so without the
		 * write lock intake commits under (no lease can expire
		 * before now meanwhile: claims lease from now on).
		 */
		if (requeue_counts(s, now, all, &counts, &ncounts) == -1)
			return -1;
		requeue_counts_free(counts, ncounts);
		counts = NULL;
		if (ncounts == 0)
			return 0;
		ncounts = 0;
		if (sq_begin(s) == -1)
			return -1;
		if (sq_dead_ids(s, now, all, &dead, &ndead) == -1)
			goto fail;
		if (fn != NULL &&
		    requeue_counts(s, now, all, &counts, &ncounts) == -1)
			goto fail;
	}
	if ((st = sq_stmt(s, id)) == NULL)
		goto fail;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    sq_bind_str(st, 2, reason) != SQLITE_OK) {
		(void)sq_fail_db(s, "requeue: bind");
		sq_done_with(st);
		goto fail;
	}
	if ((n = sq_run_change(s, st, "requeue")) == -1)
		goto fail;
	if (!txn)
		return n;
	for (i = 0; i < ndead; i++)
		if (sq_dead_letter(s, dead[i]) == -1)
			goto fail;
	if (sq_commit(s) == -1)
		goto fail;
	for (i = 0; i < ncounts; i++)
		fn(arg, counts[i].queue, counts[i].requeued, counts[i].dead);
	sq_free_ids(dead, ndead);
	requeue_counts_free(counts, ncounts);
	return n;
fail:
	if (txn)
		sq_rollback(s);
	sq_free_ids(dead, ndead);
	requeue_counts_free(counts, ncounts);
	return -1;
}

int
store_requeue_expired(struct store *s, int64_t now, store_requeue_fn fn,
    void *arg)
{
	if (s->pg != NULL)
		return pgs_requeue(s, now, 0, fn, arg);
	return requeue(s, ST_REQUEUE_EXPIRED, now, "lease expired", fn, arg);
}

int
store_requeue_running(struct store *s, int64_t now, store_requeue_fn fn,
    void *arg)
{
	if (s->pg != NULL)
		return pgs_requeue(s, now, 1, fn, arg);
	return requeue(s, ST_REQUEUE_RUNNING, now,
	    "requeued: its helper went away", fn, arg);
}
