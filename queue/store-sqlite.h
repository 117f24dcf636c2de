/*
 * store-sqlite.h: the SQLite engine behind store.h, shared by the store's
 * own files (store.c, store-schema.c, store-sql.c, store-enqueue.c,
 * store-jobs.c, store-admin.c) and by the tests and benchmarks that look
 * beneath the store.  Nothing above the store includes it: the responder,
 * the helper and fcgiqctl see only store.h.
 *
 * The functions here (prefix sq_) keep the store's conventions: they
 * return 0 or -1 and, on -1, have set the last error of the connection.
 */
#ifndef FCGIQ_STORE_SQLITE_H
#define FCGIQ_STORE_SQLITE_H

#include <stdint.h>

#include <sqlite3.h>

#include "store.h"
#include "store-pg.h"

/* --- for tests and benchmarks ------------------------------------------ */

/* The connection of s, to read or change the database behind its back. */
sqlite3	*store_db(struct store *s);

/*
 * Fault-injection seam for tests: every sqlite3_step() the store makes goes
 * through this pointer.  Leave it alone outside tests.
 */
extern int (*store_step_fn)(sqlite3_stmt *);

/* --- statements (store-sql.c) ------------------------------------------ */

/*
 * Statements, prepared on first use and kept for the connection's life.
 * Each query that must use a partial index names it (INDEXED BY), so a
 * schema change that made it unusable fails at prepare time instead of
 * silently turning the claim into a table scan.
 */
enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_IDEM_LOOKUP, ST_CLAIM_PICK, ST_CLAIM_PICK_FRESH, ST_CLAIM,
	ST_GET_SEQ,
	ST_NEXT_DUE, ST_DONE, ST_FAILED, ST_STATE,
	ST_RELEASE, ST_EXTEND, ST_CANCEL, ST_EXISTS, ST_REQUEUE_EXPIRED,
	ST_REQUEUE_RUNNING, ST_PRUNE, ST_GET, ST_COUNT_WAITING, ST_STATS,
	ST_PAUSE, ST_PAUSED, ST_RETRY, ST_RETRY_DEAD, ST_LIST,
	ST_DRAIN, ST_SERIAL_PROBE, ST_SERIAL_HEADS, ST_SERIAL_HEADS_FRESH,
	ST__COUNT
};

/* The text of each statement. */
extern const char *const sq_sql[ST__COUNT];

/* The columns of a struct store_job, in the order sq_job_from_row() reads. */
#define JOB_COLUMNS \
	"id, queue, state, priority, attempts, max_attempts, created_at, " \
	"run_at, started_at, finished_at, lease_until, idempotency_key, " \
	"method, request_uri, query_string, content_type, remote_addr, " \
	"headers, body, result, last_error, result_type, crashes"
enum {
	C_ID, C_QUEUE, C_STATE, C_PRIORITY, C_ATTEMPTS, C_MAX_ATTEMPTS,
	C_CREATED_AT, C_RUN_AT, C_STARTED_AT, C_FINISHED_AT, C_LEASE_UNTIL,
	C_IDEMPOTENCY_KEY, C_METHOD, C_REQUEST_URI, C_QUERY_STRING,
	C_CONTENT_TYPE, C_REMOTE_ADDR, C_HEADERS, C_BODY, C_RESULT,
	C_LAST_ERROR, C_RESULT_TYPE, C_CRASHES, C__COUNT
};

/*
 * Jobs without an idempotency key go in with multi-row INSERTs of 1, 2, 4
 * ... STORE_INSERT_ROWS rows (store-enqueue.c): one statement execution
 * per chunk instead of one per job.
 */
#define STORE_INSERT_LOG2	5
#define STORE_INSERT_ROWS	(1 << STORE_INSERT_LOG2)

/* --- the connection (store.c) ------------------------------------------ */

struct store {
	sqlite3		*db;
	sqlite3_stmt	*st[ST__COUNT];
	sqlite3_stmt	*ins[STORE_INSERT_LOG2 + 1];	/* 2^k rows */
	int		 rc;		/* SQLite's code for the last error */
	int		 errcode;	/* the same as an enum store_errcode */
	char		 errmsg[512];
	int		 busy_timeout_ms;
	int64_t		 busy_since_us;	/* monotonic, when this wait began */
	int		 batch;		/* enum batch_state */
	int64_t		 id_ms;		/* the time part of the last id made */
	unsigned	 id_seq;	/* its sequence number within id_ms */
	struct store_dlq *dlq;		/* dead letters, NULL: none */
	struct pgs	*pg;		/* PostgreSQL (store-pg.h), NULL: SQLite */
};

/* store_batch_begin .. store_batch_end: one transaction around many calls. */
enum batch_state {
	BATCH_NONE = 0,
	BATCH_OPEN,
	BATCH_FAILED		/* a call failed: the end rolls back */
};

/* Keep rc (a SQLite code) and a formatted message as the last error; -1. */
int	sq_set_error(struct store *s, int rc, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Keep "what: why" for SQLite's rc as the last error (and doom a batch); -1. */
int	sq_fail(struct store *s, int rc, const char *what);
/* Likewise for the connection's last error (a bind sets it); -1. */
int	sq_fail_db(struct store *s, const char *what);
/* A caller's mistake, not SQLite's; -1. */
int	sq_fail_arg(struct store *s, const char *what);

/* Statement id of s, prepared on first use; NULL (error set) on failure. */
sqlite3_stmt	*sq_stmt(struct store *s, enum stmt_id id);
sqlite3_stmt	*sq_prepare(struct store *s, const char *sql, const char *what);

/*
 * Transactions: every change is one, or part of the caller's batch.
 * sq_begin and sq_commit do nothing but check the batch inside one;
 * sq_rollback undoes whatever is open and keeps the error that led there.
 */
int	sq_begin(struct store *s);
int	sq_commit(struct store *s);
void	sq_rollback(struct store *s);
/* Run one single-statement change whose parameters are bound: the number
 * of rows it changed, or -1.  Resets the statement either way. */
int	sq_run_change(struct store *s, sqlite3_stmt *st, const char *what);

/* Run every statement of sql, rows discarded; 0 or -1. */
int	sq_exec(struct store *s, const char *sql, const char *what);
/* The first column of the single row of sql, as an integer or text. */
int	sq_query_one(struct store *s, const char *sql, int64_t *ival,
	    char *tval, size_t tlen);
/* len bytes from the kernel's CSPRNG; 0 or -1 (errno set). */
int	sq_random(void *buf, size_t len);

/*
 * Engine-neutral pieces the PostgreSQL files share (store-pg-jobs.c).
 * store_backoff: a "full jitter" delay drawn uniformly from [min,
 * min(max, min * 2^(attempt - 1))] (store-jobs.c).  store_batch_match:
 * the keyed jobs[i] against the jobs before it in the batch still to be
 * stored; 1 when one holds its queue and key, jobs[i]'s id and outcome
 * then set, else 0 (store-enqueue.c).
 */
int64_t	store_backoff(int attempt, int64_t min, int64_t max);
int	store_batch_match(struct store_newjob *jobs, size_t i);

/* Make a statement ready for the next use, whatever happened to it. */
static inline void
sq_done_with(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Bind a string, or NULL. */
static inline int
sq_bind_str(sqlite3_stmt *st, int i, const char *v)
{
	return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) :
	    sqlite3_bind_null(st, i);
}

/* Step a statement that returns no row; 0 or -1. */
static inline int
sq_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if ((rc = store_step_fn(st)) != SQLITE_DONE)
		return sq_fail(s, rc, what);
	return 0;
}

/* Step a statement that owes one row (an aggregate, a row this
 * transaction just wrote); 0 with the row to read, or -1.  No row at all
 * is SQLITE_INTERNAL: the store's own logic is wrong, not the disk. */
static inline int
sq_step_row(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if ((rc = store_step_fn(st)) != SQLITE_ROW)
		return sq_fail(s, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc,
		    what);
	return 0;
}

/* --- schema (store-schema.c) ------------------------------------------- */

/* Bring the schema to the current version (a writer); 0 or -1. */
int	sq_migrate(struct store *s);
/* Check the schema is the current one (a read-only connection); 0 or -1. */
int	sq_check_schema(struct store *s);

/* --- rows (store-jobs.c) ----------------------------------------------- */

/* The state in column c of st into *state; -1 when it names none. */
int	sq_col_state(sqlite3_stmt *st, int c, enum store_state *state);
/* The current row (JOB_COLUMNS) as a job in *out, freed with
 * store_job_free: SQLITE_OK, SQLITE_NOMEM or SQLITE_CORRUPT. */
int	sq_job_from_row(sqlite3_stmt *st, struct store_job **out);

/* --- inside a transaction (store-enqueue.c, store-dead.c) ------------- */

/* Give jobs[0..n) fresh ids of time now (the PostgreSQL engine's too). */
int	sq_make_ids(struct store *s, struct store_newjob *jobs, size_t n,
	    int64_t now);
/* Give jobs[0..n) ids and insert them in the caller's open transaction
 * (no idempotency keys).  0 or -1. */
int	sq_enqueue_in(struct store *s, struct store_newjob *jobs, size_t n);
/* Enqueue the dead letter of job id, when a dead-letter queue is set and
 * the job, dead, is not of it.  0 or -1. */
int	sq_dead_letter(struct store *s, const char *id);
/* Enqueue body (JSON) into the dead-letter queue, when one is set and
 * queue, the event's own, is not it (store-flow.c's breaker).  0 or -1. */
int	sq_dead_event(struct store *s, const char *queue, const char *body);
/* The running jobs a requeue (of the expired ones before now, or of all)
 * will make dead, when dead letters are on: *ids malloc'd (sq_free_ids).
 * 0 or -1. */
int	sq_dead_ids(struct store *s, int64_t now, int all, char ***ids,
	    size_t *n);
void	sq_free_ids(char **ids, size_t n);

/* --- the dashboard's listings, either engine (store-dash.c) ------------ */

/* Which index a listing walks. */
enum dash_kind { L_ANY, L_WAITING, L_RUNNING, L_FINISHED, L_DEAD, L__N };

/* The index a listing of filter f walks, in *k, and how many of its
 * entries it may read, in *budget: the page itself when the index answers
 * every condition, STORE_DASH_BUDGET otherwise.  0, or -1 when f names no
 * state a listing knows. */
int	dash_plan(const struct store_dash_filter *f, enum dash_kind *k,
	    int64_t *budget);

#endif /* FCGIQ_STORE_SQLITE_H */
