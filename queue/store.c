/*
 * store: the job queue in one SQLite database (WAL), shared by the
 * responder, the helper and fcgiqctl, each process with its own connection.
 * Every change is one transaction: a call that returns -1 has changed
 * nothing, and a crash at any instant leaves either the whole change or none
 * of it.  A running job belongs to one attempt (its attempts count at claim
 * time); every transition out of running names that attempt and does
 * nothing when the job has moved on (fencing), so an attempt whose lease
 * expired cannot overwrite the outcome of the next one.
 *
 * The life of a job, with the function that makes each transition:
 *
 *   store_enqueue
 *        |
 *        v                     store_cancel
 *     queued -------------------------------------------> cancelled
 *      |  ^                                                    ^
 *      |  |  store_release,                                    |
 *      |  |  store_requeue_expired,                            |
 *      |  |  store_requeue_running (attempts left)             |
 *      |  |                                                    |
 *      |  |              store_finish_failed                   |
 *      |  |        (attempts left, not permanent)              |
 *      v  |  -------------------------------------->           |
 *     running                                        retry ----+
 *      |  |  <--------------------------------------     store_cancel
 *      |  |                  store_claim
 *      |  |
 *      |  +------> dead    store_finish_failed (permanent or exhausted),
 *      |                   store_requeue_expired, store_requeue_running
 *      |                   (attempts exhausted)
 *      v
 *     done         store_finish_done
 *
 *   queued -> running is store_claim, as is retry -> running.
 *
 *   store_extend moves a running job's lease forward; store_prune deletes
 *   done, dead and cancelled jobs that finished before a cutoff.
 */
#include <sys/random.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store-sqlite.h"

int (*store_step_fn)(sqlite3_stmt *) = sqlite3_step;

#define STORE_BUSY_TIMEOUT_MS	5000
#define STORE_MAX_ERROR		4096	/* bytes of last_error kept */

/*
 * Schema version, kept in PRAGMA user_version.  migrations[v] takes a
 * database from version v to v + 1; store_open() applies the missing steps
 * and sets user_version in one transaction.  To change the schema:
 *   1. append a step to migrations[] (never edit a step that has shipped:
 *      databases out there have already run it);
 *   2. bump STORE_SCHEMA_VERSION to the new number of steps;
 *   3. keep each step valid on a populated database (ALTER TABLE ... ADD
 *      COLUMN, CREATE INDEX, or create-copy-drop-rename for a STRICT table
 *      whose constraints change) and keep the claim query's partial index
 *      usable (test_store checks its query plan);
 *   4. update JOB_COLUMNS and job_from_row() if struct store_job changes,
 *      and the expected version in tests/unit/test_store.c.
 */
#define STORE_SCHEMA_VERSION	3

static const char *const migrations[STORE_SCHEMA_VERSION] = {
	/* 0 -> 1: the jobs table, its indexes and the views for people. */
	"CREATE TABLE jobs ("
	"  seq             INTEGER PRIMARY KEY,"	/* arrival order */
	"  id              TEXT NOT NULL UNIQUE,"	/* public id */
	"  queue           TEXT NOT NULL,"
	"  state           TEXT NOT NULL CHECK (state IN ('queued', 'running',"
	"                    'retry', 'done', 'dead', 'cancelled')),"
	"  priority        INTEGER NOT NULL DEFAULT 0,"
	"  attempts        INTEGER NOT NULL DEFAULT 0,"
	"  max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),"
	"  created_at      INTEGER NOT NULL,"
	"  run_at          INTEGER NOT NULL,"
	"  started_at      INTEGER,"
	"  finished_at     INTEGER,"
	"  lease_until     INTEGER,"
	"  idempotency_key TEXT,"
	"  method          TEXT,"
	"  request_uri     TEXT,"
	"  query_string    TEXT,"
	"  content_type    TEXT,"
	"  remote_addr     TEXT,"
	"  headers         TEXT,"			/* JSON object */
	"  body            BLOB NOT NULL,"
	"  result          BLOB,"
	"  last_error      TEXT"
	") STRICT;"
	/*
	 * The claim: equality on queue, then entries already in claim order.
	 * state is repeated in the entry because SQLite 3.40 does not count a
	 * partial index's own WHERE columns as covered: without it, every
	 * entry skipped (not yet due) or counted costs a table lookup.
	 */
	"CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, seq,"
	"  state) WHERE state IN ('queued', 'retry');"
	"CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';"
	"CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)"
	"  WHERE idempotency_key IS NOT NULL;"
	"CREATE INDEX jobs_finished ON jobs (finished_at)"
	"  WHERE state IN ('done', 'dead', 'cancelled');"
	"CREATE VIEW queue_stats AS"
	"  SELECT queue, state, count(*) AS jobs,"
	"    CASE WHEN state IN ('queued', 'retry') THEN"
	"      CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
	"        - min(created_at) END AS oldest_waiting_ms"
	"  FROM jobs GROUP BY queue, state;"
	"CREATE VIEW jobs_readable AS"
	"  SELECT seq, id, queue, state, priority, attempts, max_attempts,"
	"    strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')"
	"      AS created_at,"
	"    strftime('%Y-%m-%dT%H:%M:%fZ', run_at / 1000.0, 'unixepoch')"
	"      AS run_at,"
	"    strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000.0, 'unixepoch')"
	"      AS started_at,"
	"    strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1000.0, 'unixepoch')"
	"      AS finished_at,"
	"    strftime('%Y-%m-%dT%H:%M:%fZ', lease_until / 1000.0, 'unixepoch')"
	"      AS lease_until,"
	"    idempotency_key, method, request_uri, query_string, content_type,"
	"    remote_addr, headers,"
	"    CASE WHEN instr(body, x'00') = 0 THEN CAST(body AS TEXT)"
	"      ELSE '<' || length(body) || ' bytes binary>' END AS body,"
	"    CASE WHEN instr(result, x'00') = 0 THEN CAST(result AS TEXT)"
	"      ELSE '<' || length(result) || ' bytes binary>' END AS result,"
	"    last_error"
	"  FROM jobs;",
	/* 1 -> 2: queues an operator has paused (fcgiqctl pause/resume). */
	"CREATE TABLE queues ("
	"  name   TEXT PRIMARY KEY,"
	"  paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1))"
	") STRICT;",
	/*
	 * 2 -> 3: no IN list of more than two constants where a write
	 * evaluates it.  SQLite 3.40 builds such a list into a temporary
	 * b-tree each time a statement runs (its own pager and an 88 KB page
	 * cache, allocated and page-faulted afresh): the state CHECK cost one
	 * per INSERT and per state change, jobs_finished's WHERE one per
	 * INSERT and two per state change.  The CHECK is rewritten in place
	 * as the equivalent OR chain (the procedure of SQLite's ALTER TABLE
	 * page for changing a CHECK constraint: the rows are unchanged);
	 * jobs_finished keys on finished_at being set, which holds exactly
	 * for done, dead and cancelled jobs.  RESET makes this connection
	 * read the rewritten table again.
	 */
	"PRAGMA writable_schema = ON;"
	"UPDATE sqlite_schema SET sql = replace(sql,"
	"  'CHECK (state IN (''queued'', ''running'',                    "
	"''retry'', ''done'', ''dead'', ''cancelled''))',"
	"  'CHECK (state = ''queued'' OR state = ''running'' OR"
	" state = ''retry'' OR state = ''done'' OR state = ''dead'' OR"
	" state = ''cancelled'')')"
	" WHERE type = 'table' AND name = 'jobs';"
	"PRAGMA writable_schema = RESET;"
	"DROP INDEX jobs_finished;"
	"CREATE INDEX jobs_finished ON jobs (finished_at)"
	"  WHERE finished_at IS NOT NULL;",
};

/* The columns of a struct store_job, in the order job_from_row() reads. */
#define JOB_COLUMNS \
	"id, queue, state, priority, attempts, max_attempts, created_at, " \
	"run_at, started_at, finished_at, lease_until, idempotency_key, " \
	"method, request_uri, query_string, content_type, remote_addr, " \
	"headers, body, result, last_error"
enum {
	C_ID, C_QUEUE, C_STATE, C_PRIORITY, C_ATTEMPTS, C_MAX_ATTEMPTS,
	C_CREATED_AT, C_RUN_AT, C_STARTED_AT, C_FINISHED_AT, C_LEASE_UNTIL,
	C_IDEMPOTENCY_KEY, C_METHOD, C_REQUEST_URI, C_QUERY_STRING,
	C_CONTENT_TYPE, C_REMOTE_ADDR, C_HEADERS, C_BODY, C_RESULT,
	C_LAST_ERROR, C__COUNT
};

/*
 * Statements, prepared on first use and kept for the connection's life.
 * Each query that must use a partial index names it (INDEXED BY), so a
 * schema change that made it unusable fails at prepare time instead of
 * silently turning the claim into a table scan.
 */
enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_IDEM_LOOKUP, ST_INSERT, ST_CLAIM_PICK, ST_CLAIM, ST_GET_SEQ,
	ST_NEXT_DUE, ST_DONE, ST_FAILED, ST_STATE,
	ST_RELEASE, ST_EXTEND, ST_CANCEL, ST_EXISTS, ST_REQUEUE_EXPIRED,
	ST_REQUEUE_RUNNING, ST_PRUNE, ST_GET, ST_COUNT_WAITING, ST_STATS,
	ST_PAUSE, ST_PAUSED, ST_RETRY, ST_RETRY_DEAD, ST_LIST,
	ST__COUNT
};

/* A job put back to queued, or dead when it has had all its attempts. */
#define REQUEUE_SET \
	"SET state = CASE WHEN attempts >= max_attempts THEN 'dead'" \
	"    ELSE 'queued' END," \
	"  run_at = CASE WHEN attempts >= max_attempts THEN run_at" \
	"    ELSE ?1 END," \
	"  finished_at = CASE WHEN attempts >= max_attempts THEN ?1 END," \
	"  lease_until = NULL, last_error = ?2 "

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_IDEM_LOOKUP] =
	    "SELECT id, body FROM jobs"
	    " WHERE queue = ?1 AND idempotency_key = ?2",
	[ST_INSERT] =
	    "INSERT INTO jobs (id, queue, state, priority, attempts,"
	    "  max_attempts, created_at, run_at, idempotency_key, method,"
	    "  request_uri, query_string, content_type, remote_addr, headers,"
	    "  body)"
	    " VALUES (?1, ?2, 'queued', ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
	    "  ?11, ?12, ?13, ?14)",
	/* The claim is three statements: RETURNING would collect its row
	 * in a temporary b-tree (see migration 2 -> 3 for their cost). */
	[ST_CLAIM_PICK] =
	    "SELECT seq FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')"
	    "  AND run_at <= ?2"
	    "  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)"
	    " ORDER BY priority DESC, run_at, seq LIMIT 1",
	[ST_CLAIM] =
	    "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
	    "  started_at = ?2, lease_until = ?3"
	    " WHERE seq = ?1",
	[ST_GET_SEQ] = "SELECT " JOB_COLUMNS " FROM jobs WHERE seq = ?1",
	[ST_NEXT_DUE] =
	    "SELECT min(run_at) FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')"
	    "  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)",
	[ST_DONE] =
	    "UPDATE jobs SET state = 'done', result = ?3, finished_at = ?4,"
	    "  lease_until = NULL"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_FAILED] =
	    "UPDATE jobs SET"
	    "  state = CASE WHEN ?3 OR attempts >= max_attempts THEN 'dead'"
	    "    ELSE 'retry' END,"
	    "  run_at = CASE WHEN ?3 OR attempts >= max_attempts THEN run_at"
	    "    ELSE ?5 END,"
	    "  finished_at = CASE WHEN ?3 OR attempts >= max_attempts THEN ?4"
	    "    END,"
	    "  lease_until = NULL, last_error = ?6"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_STATE] = "SELECT state FROM jobs WHERE id = ?1",
	[ST_RELEASE] =
	    "UPDATE jobs SET state = 'queued', run_at = ?3, lease_until = NULL,"
	    "  last_error = ?4"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_EXTEND] =
	    "UPDATE jobs SET lease_until = ?3"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_CANCEL] =
	    "UPDATE jobs SET state = 'cancelled', finished_at = ?2,"
	    "  lease_until = NULL"
	    " WHERE id = ?1 AND state IN ('queued', 'retry')",
	[ST_EXISTS] = "SELECT 1 FROM jobs WHERE id = ?1",
	[ST_REQUEUE_EXPIRED] =
	    "UPDATE jobs INDEXED BY jobs_lease " REQUEUE_SET
	    " WHERE state = 'running' AND lease_until < ?1",
	[ST_REQUEUE_RUNNING] =
	    "UPDATE jobs INDEXED BY jobs_lease " REQUEUE_SET
	    " WHERE state = 'running'",
	[ST_PRUNE] =
	    "DELETE FROM jobs INDEXED BY jobs_finished"
	    " WHERE finished_at < ?1 AND (?2 IS NULL OR queue = ?2)"
	    "  AND (?3 IS NULL OR state = ?3)",
	[ST_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
	[ST_COUNT_WAITING] =
	    "SELECT count(*) FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')",
	[ST_STATS] =
	    "SELECT queue, state, count(*), min(created_at) FROM jobs"
	    " GROUP BY queue, state ORDER BY queue, state",
	[ST_PAUSE] =
	    "INSERT INTO queues (name, paused) VALUES (?1, ?2)"
	    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
	[ST_PAUSED] = "SELECT paused FROM queues WHERE name = ?1",
	/* An operator's retry: at least one more attempt, from now. */
	[ST_RETRY] =
	    "UPDATE jobs SET state = 'queued', run_at = ?2, finished_at = NULL,"
	    "  max_attempts = max(max_attempts, attempts + 1)"
	    " WHERE id = ?1 AND state IN ('dead', 'cancelled', 'retry')",
	[ST_RETRY_DEAD] =
	    "UPDATE jobs SET state = 'queued', run_at = ?1, finished_at = NULL,"
	    "  max_attempts = max(max_attempts, attempts + 1)"
	    " WHERE state = 'dead' AND (?2 IS NULL OR queue = ?2)",
	[ST_LIST] =
	    "SELECT id, queue, state, attempts, max_attempts, created_at,"
	    "  length(body), coalesce(last_error, '') FROM jobs"
	    " WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR state = ?2)"
	    " ORDER BY seq DESC LIMIT ?3",
};

/*
 * Jobs without an idempotency key go in with multi-row INSERTs of 1, 2, 4
 * ... STORE_INSERT_ROWS rows: one statement execution per chunk instead of
 * one per job.  With schema 3 (no temporary b-trees) store_enqueue costs
 * about 64,000 instructions per job one at a time, 25,500 in batches of 16
 * (callgrind, bench/storebench -e 2000 -b 1 / -b 16).
 */
#define STORE_INSERT_LOG2	5
#define STORE_INSERT_ROWS	(1 << STORE_INSERT_LOG2)
#define INSERT_COLS		14	/* bound values per row */

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
};

/* store_batch_begin .. store_batch_end: one transaction around many calls. */
enum batch_state {
	BATCH_NONE = 0,
	BATCH_OPEN,
	BATCH_FAILED		/* a call failed: the end rolls back */
};

/*
 * The store's code for a SQLite result code.  The callers above the store
 * decide by it which answer a client gets (503 + Retry-After for the
 * kinds that say the database, not the job, is the problem).
 */
static int
errcode_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return STORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_EBUSY;
	case SQLITE_FULL:
		return STORE_EFULL;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return STORE_EREADONLY;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return STORE_EIO;
	case SQLITE_NOMEM:
		return STORE_ENOMEM;
	case SQLITE_CONSTRAINT:
		return STORE_ECONSTRAINT;
	case SQLITE_ABORT:
		return STORE_EABORT;
	case SQLITE_MISUSE:
		return STORE_EINVAL;
	default:
		return STORE_EOTHER;
	}
}

/* Keep rc (a SQLite code) and a formatted message as the last error. */
static int
set_error(struct store *s, int rc, const char *fmt, ...)
{
	va_list	ap;

	s->rc = rc & 0xff;
	s->errcode = errcode_of(rc);
	va_start(ap, fmt);
	(void)vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Keep "what: why" as the last error.  The step seam may return a code
 * that SQLite itself never set, so fall back to the code's own text.
 */
static int
fail(struct store *s, int rc, const char *what)
{
	const char	*why;

	rc &= 0xff;
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = SQLITE_ERROR;	/* a result we did not expect */
	if ((sqlite3_errcode(s->db) & 0xff) == rc)
		why = sqlite3_errmsg(s->db);
	else
		why = sqlite3_errstr(rc);
	(void)set_error(s, rc, "%s: %s", what, why);
	if (s->batch == BATCH_OPEN)
		s->batch = BATCH_FAILED;
	return -1;
}

/* The last error of the connection, for binds (which set it themselves). */
static int
fail_db(struct store *s, const char *what)
{
	return fail(s, sqlite3_errcode(s->db), what);
}

/* A caller's mistake, not SQLite's. */
static int
fail_arg(struct store *s, const char *what)
{
	return set_error(s, SQLITE_MISUSE, "%s", what);
}

static sqlite3_stmt *
stmt(struct store *s, enum stmt_id id)
{
	int	rc;

	if (s->st[id] == NULL) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL);
		if (rc != SQLITE_OK) {
			(void)fail(s, rc, "prepare");
			sqlite3_finalize(s->st[id]);
			s->st[id] = NULL;
		}
	}
	return s->st[id];
}

/* Make a statement ready for the next use, whatever happened to it. */
static void
done_with(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Step a statement that returns no row; 0 or -1. */
static int
step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if ((rc = store_step_fn(st)) != SQLITE_DONE)
		return fail(s, rc, what);
	return 0;
}

/* Step a statement that owes one row (an aggregate, a row this
 * transaction just wrote); 0 with the row to read, or -1.  No row at all
 * is SQLITE_INTERNAL: the store's own logic is wrong, not the disk. */
static int
step_row(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if ((rc = store_step_fn(st)) != SQLITE_ROW)
		return fail(s, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, what);
	return 0;
}

/* Run a statement without parameters or rows (BEGIN, COMMIT); 0 or -1. */
static int
run_plain(struct store *s, enum stmt_id id, const char *what)
{
	sqlite3_stmt	*st;
	int		 r;

	if ((st = stmt(s, id)) == NULL)
		return -1;
	r = step_done(s, st, what);
	done_with(st);
	return r;
}

/*
 * Inside a batch a call may go on only while the batch's transaction is
 * still there: SQLite rolls back by itself on some errors, and a statement
 * run after that would commit on its own.  0, or -1.
 */
static int
batch_usable(struct store *s)
{
	if (s->batch == BATCH_OPEN && sqlite3_get_autocommit(s->db))
		return fail(s, SQLITE_ABORT, "batch: transaction rolled back");
	if (s->batch == BATCH_FAILED)
		return set_error(s, SQLITE_ABORT,
		    "batch: an earlier change failed");
	return 0;
}

static int
begin(struct store *s)
{
	if (s->batch != BATCH_NONE)
		return batch_usable(s);
	return run_plain(s, ST_BEGIN, "begin");
}

static int
commit(struct store *s)
{
	if (s->batch != BATCH_NONE)
		return batch_usable(s);
	return run_plain(s, ST_COMMIT, "commit");
}

/*
 * Undo the open transaction, if any: SQLite rolls back by itself on some
 * errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM...).  Keeps the error that
 * led here as the last one.  A second try covers a transient failure; a
 * connection left inside a transaction would refuse every later BEGIN.
 */
static void
rollback(struct store *s)
{
	sqlite3_stmt	*st;
	int		 i;

	if (s->batch == BATCH_OPEN)
		s->batch = BATCH_FAILED;
	for (i = 0; i < 2 && !sqlite3_get_autocommit(s->db); i++) {
		if (s->st[ST_ROLLBACK] == NULL) {
			if (sqlite3_prepare_v3(s->db, stmt_sql[ST_ROLLBACK], -1,
			    SQLITE_PREPARE_PERSISTENT, &s->st[ST_ROLLBACK],
			    NULL) != SQLITE_OK)
				return;
		}
		st = s->st[ST_ROLLBACK];
		(void)store_step_fn(st);
		(void)sqlite3_reset(st);
	}
}

/* Run every statement of sql (rows are discarded); 0 or -1. */
static int
exec_sql(struct store *s, const char *sql, const char *what)
{
	sqlite3_stmt	*st;
	const char	*tail = sql;
	int		 rc;

	while (*tail != '\0') {
		rc = sqlite3_prepare_v2(s->db, tail, -1, &st, &tail);
		if (rc != SQLITE_OK)
			return fail(s, rc, what);
		if (st == NULL)		/* only blanks or a comment left */
			break;
		while ((rc = store_step_fn(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			(void)fail(s, rc, what);
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
	}
	return 0;
}

/* The first column of the single row of sql, as an integer or text. */
static int
query_one(struct store *s, const char *sql, int64_t *ival, char *tval,
    size_t tlen)
{
	sqlite3_stmt	*st;
	const char	*t;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return fail(s, rc, sql);
	if ((rc = store_step_fn(st)) != SQLITE_ROW) {
		(void)fail(s, rc, sql);
		sqlite3_finalize(st);
		return -1;
	}
	if (ival != NULL)
		*ival = sqlite3_column_int64(st, 0);
	if (tval != NULL) {
		t = (const char *)sqlite3_column_text(st, 0);
		(void)snprintf(tval, tlen, "%s", t != NULL ? t : "");
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Bring the schema to STORE_SCHEMA_VERSION.  The version is read again
 * under the write lock: two processes opening a new database at once
 * must not both create it.
 */
static int
migrate(struct store *s)
{
	int64_t	v;
	char	what[64];

	if (query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		return -1;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (begin(s) == -1)
		return -1;
	if (query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		goto fail;
	if (v > STORE_SCHEMA_VERSION || v < 0) {
		(void)set_error(s, SQLITE_ERROR, "schema version %lld is "
		    "newer than this program's (%d)", (long long)v,
		    STORE_SCHEMA_VERSION);
		goto fail;
	}
	for (; v < STORE_SCHEMA_VERSION; v++) {
		(void)snprintf(what, sizeof(what), "migrate to version %lld",
		    (long long)v + 1);
		if (exec_sql(s, migrations[v], what) == -1)
			goto fail;
	}
	/* A pragma takes no parameter: the number is ours, not data. */
	(void)snprintf(what, sizeof(what), "PRAGMA user_version = %d",
	    STORE_SCHEMA_VERSION);
	if (exec_sql(s, what, "set user_version") == -1)
		goto fail;
	if (commit(s) == -1)
		goto fail;
	return 0;
fail:
	rollback(s);
	return -1;
}

/* A read-only connection cannot migrate: it needs the current schema. */
static int
check_schema(struct store *s)
{
	int64_t	v;

	if (query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		return -1;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (v == 0) {
		(void)set_error(s, SQLITE_ERROR, "no fcgiq schema (open it "
		    "read-write once to create it)");
		s->errcode = STORE_ENOTFOUND;
		return -1;
	}
	if (v > STORE_SCHEMA_VERSION)
		return set_error(s, SQLITE_ERROR, "schema version %lld is "
		    "newer than this program's (%d)", (long long)v,
		    STORE_SCHEMA_VERSION);
	return set_error(s, SQLITE_ERROR, "schema version %lld is older "
	    "than this program's (%d): open it read-write once to migrate it",
	    (long long)v, STORE_SCHEMA_VERSION);
}

/*
 * Put the file in WAL mode.  Switching needs an exclusive lock and SQLite
 * does not call the busy handler for it, so processes opening a new
 * database together (spawn-fcgi -F N) would fail; wait as the busy
 * timeout would.
 */
static int
set_wal(struct store *s, int timeout_ms)
{
	struct timespec	 pause = { 0, 10 * 1000000 };
	char		 mode[16];
	int		 waited;

	for (waited = 0;; waited += 10) {
		if (query_one(s, "PRAGMA journal_mode = WAL", NULL, mode,
		    sizeof(mode)) == 0)
			break;
		if (s->rc != SQLITE_BUSY || waited >= timeout_ms)
			return -1;
		(void)nanosleep(&pause, NULL);
	}
	if (strcmp(mode, "wal") != 0)
		return set_error(s, SQLITE_ERROR, "journal_mode is %s, not wal",
		    mode);
	return 0;
}

static int64_t
monotonic_us(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Wait for the write lock in short steps.  SQLite's own busy timeout
 * sleeps up to 100 ms at a time; with several fcgiq processes (spawn-fcgi
 * -F N) each committer would then sit out whole commits of the others,
 * which take about a millisecond each, and tail latency went to ~1 s.
 * Steps of 0.1 ms growing to 2 ms hand the lock over within a commit or
 * two.  Returns 0 (give up: SQLITE_BUSY) once busy_timeout has passed.
 */
static int
busy_wait(void *arg, int count)
{
	struct store	*s = arg;
	struct timespec	 pause;
	int64_t		 now = monotonic_us(), step;

	if (count == 0)
		s->busy_since_us = now;
	if (now - s->busy_since_us >= (int64_t)s->busy_timeout_ms * 1000)
		return 0;
	step = 100 * (int64_t)(count + 1);
	if (step > 2000)
		step = 2000;
	pause.tv_sec = 0;
	pause.tv_nsec = (long)step * 1000;
	(void)nanosleep(&pause, NULL);
	return 1;
}

/*
 * The database file descriptors need no work here: SQLite's unix VFS opens
 * them with O_CLOEXEC (test_store checks), so handlers never inherit them.
 */
struct store *
store_open(const char *path, const struct store_opts *opts, char *err,
    size_t errlen)
{
	struct store_opts	 defaults = { 0 };
	struct store		*s;
	int			 flags, rc, syserr, timeout;

	if (opts == NULL)
		opts = &defaults;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	flags = opts->readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if ((rc = sqlite3_open_v2(path, &s->db, flags, NULL)) != SQLITE_OK) {
		syserr = s->db != NULL ? sqlite3_system_errno(s->db) : 0;
		(void)snprintf(err, errlen, "%s: %s%s%s%s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
		    syserr ? " (" : "", syserr ? strerror(syserr) : "",
		    syserr ? ")" : "");
		goto fail;
	}
	timeout = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms :
	    STORE_BUSY_TIMEOUT_MS;
	s->busy_timeout_ms = timeout;
	if ((rc = sqlite3_busy_handler(s->db, busy_wait, s)) != SQLITE_OK) {
		(void)fail(s, rc, "busy handler");
		goto fail_msg;
	}
	/* Journal mode is a property of the file: only a writer sets it. */
	if (!opts->readonly && set_wal(s, timeout) == -1)
		goto fail_msg;
	/* synchronous is per connection, so every connection sets it. */
	if (exec_sql(s, opts->durability == STORE_DURABILITY_NORMAL ?
	    "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	    "synchronous") == -1)
		goto fail_msg;
	if ((opts->readonly ? check_schema(s) : migrate(s)) == -1)
		goto fail_msg;
	return s;
fail_msg:
	/* errno is stale unless the file itself failed us. */
	syserr = s->rc == SQLITE_CANTOPEN || s->rc == SQLITE_IOERR ?
	    sqlite3_system_errno(s->db) : 0;
	(void)snprintf(err, errlen, "%s: %s%s%s%s", path, s->errmsg,
	    syserr ? " (" : "", syserr ? strerror(syserr) : "",
	    syserr ? ")" : "");
fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	int	i;

	if (s == NULL)
		return;
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->st[i]);
	for (i = 0; i <= STORE_INSERT_LOG2; i++)
		sqlite3_finalize(s->ins[i]);
	/* Every statement is finalized, so this closes for real. */
	(void)sqlite3_close(s->db);
	free(s);
}

const char *
store_error(struct store *s)
{
	return s->errmsg[0] != '\0' ? s->errmsg : "no error";
}

int
store_errcode(struct store *s)
{
	return s->errcode;
}

sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

int64_t
store_now(void)
{
	struct timespec	ts;

	/* CLOCK_REALTIME cannot fail with a valid pointer. */
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
static int
col_state(sqlite3_stmt *st, int c, enum store_state *state)
{
	const char	*t = (const char *)sqlite3_column_text(st, c);

	return t != NULL ? store_state_parse(t, state) : -1;
}

/* The time now (ms) as 8 characters, then 16 random bytes r as 22
 * characters of base64url without padding. */
static void
make_id(char id[STORE_ID_LEN + 1], int64_t now, const unsigned char r[16])
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	/* The same 64 characters in ASCII order: the prefix sorts. */
	static const char	 ordered[] = "-0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
	uint64_t		 t = (uint64_t)now;
	uint32_t		 v;
	int			 i, o = 0;

	for (i = 7; i >= 0; i--) {
		id[i] = ordered[t & 63];
		t >>= 6;
	}
	o = 8;
	for (i = 0; i + 3 <= 16; i += 3) {
		v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
		id[o++] = b64[v >> 18 & 63];
		id[o++] = b64[v >> 12 & 63];
		id[o++] = b64[v >> 6 & 63];
		id[o++] = b64[v & 63];
	}
	/* The 16th byte: two characters, the last one carrying 2 bits. */
	id[o++] = b64[r[15] >> 2];
	id[o++] = b64[(r[15] & 3) << 4];
	id[o] = '\0';
}

/*
 * len bytes from the kernel's CSPRNG; 0 or -1.  Not OpenSSL's RAND_bytes:
 * its first call in a process loads openssl.cnf and seeds a DRBG, ~6 ms
 * here, and every fcgiqctl enqueue is a first call (that was most of the
 * enqueue-to-start latency bench/exec.sh measured).
 */
static int
fill_random(void *buf, size_t len)
{
	unsigned char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = getrandom(p, len, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Give jobs[0..n) fresh ids, up to 64 from one getrandom. */
static int
make_ids(struct store *s, struct store_newjob *jobs, size_t n)
{
	unsigned char	 r[16 * 64];
	int64_t		 now = store_now();
	size_t		 i, k, m;

	for (i = 0; i < n; i += m) {
		m = n - i < 64 ? n - i : 64;
		if (fill_random(r, 16 * m) == -1)
			return set_error(s, SQLITE_ERROR, "getrandom: %s",
			    strerror(errno));
		for (k = 0; k < m; k++)
			make_id(jobs[i + k].id, now, r + 16 * k);
	}
	return 0;
}

static int
bind_str(sqlite3_stmt *st, int i, const char *v)
{
	return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) :
	    sqlite3_bind_null(st, i);
}

/*
 * Look up an earlier job with the same queue and idempotency key.
 * 1: found, j's id and outcome set; 0: none; -1: error.
 */
static int
enqueue_lookup(struct store *s, struct store_newjob *j)
{
	sqlite3_stmt	*st;
	const void	*body;
	int		 rc, r = -1, len;

	if ((st = stmt(s, ST_IDEM_LOOKUP)) == NULL)
		return -1;
	if (bind_str(st, 1, j->queue) != SQLITE_OK ||
	    bind_str(st, 2, j->idempotency_key) != SQLITE_OK) {
		(void)fail_db(s, "bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_DONE) {
		r = 0;
		goto done;
	}
	if (rc != SQLITE_ROW) {
		(void)fail(s, rc, "idempotency lookup");
		goto done;
	}
	(void)snprintf(j->id, sizeof(j->id), "%s",
	    (const char *)sqlite3_column_text(st, 0));
	body = sqlite3_column_blob(st, 1);
	len = sqlite3_column_bytes(st, 1);
	if ((size_t)len == j->body_len &&
	    (len == 0 || memcmp(body, j->body, (size_t)len) == 0))
		j->outcome = STORE_ENQ_DUPLICATE;
	else
		j->outcome = STORE_ENQ_CONFLICT;
	r = 1;
done:
	done_with(st);
	return r;
}

/* The INSERT of 2^k rows, prepared on first use. */
static sqlite3_stmt *
insert_stmt(struct store *s, int k)
{
	static const char head[] =
	    "INSERT INTO jobs (id, queue, state, priority, attempts,"
	    "  max_attempts, created_at, run_at, idempotency_key, method,"
	    "  request_uri, query_string, content_type, remote_addr, headers,"
	    "  body) VALUES ";
	static const char row[] =
	    "(?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	char	 sql[sizeof(head) + STORE_INSERT_ROWS * sizeof(row)], *p;
	int	 i, rc;

	if (s->ins[k] != NULL)
		return s->ins[k];
	p = sql;
	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	for (i = 0; i < 1 << k; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, row, sizeof(row) - 1);
		p += sizeof(row) - 1;
	}
	*p = '\0';
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->ins[k], NULL);
	if (rc != SQLITE_OK) {
		(void)fail(s, rc, "prepare");
		sqlite3_finalize(s->ins[k]);
		s->ins[k] = NULL;
	}
	return s->ins[k];
}

/* Insert jobs[0..n) (ids already made) with one statement of n = 2^k rows. */
static int
insert_rows(struct store *s, struct store_newjob *jobs, int k, int64_t now)
{
	struct store_newjob	*j;
	sqlite3_stmt		*st;
	int			 i, b, r = -1;

	if ((st = insert_stmt(s, k)) == NULL)
		return -1;
	for (i = 0; i < 1 << k; i++) {
		j = &jobs[i];
		b = i * INSERT_COLS;
		/* A zero-length body must bind as an empty blob, not NULL. */
		if (sqlite3_bind_text(st, b + 1, j->id, STORE_ID_LEN,
		    SQLITE_STATIC) != SQLITE_OK ||
		    bind_str(st, b + 2, j->queue) != SQLITE_OK ||
		    sqlite3_bind_int(st, b + 3, j->priority) != SQLITE_OK ||
		    sqlite3_bind_int(st, b + 4, j->max_attempts) != SQLITE_OK ||
		    sqlite3_bind_int64(st, b + 5, now) != SQLITE_OK ||
		    sqlite3_bind_int64(st, b + 6, j->run_at != 0 ? j->run_at :
		    now) != SQLITE_OK ||
		    bind_str(st, b + 7, j->idempotency_key) != SQLITE_OK ||
		    bind_str(st, b + 8, j->method) != SQLITE_OK ||
		    bind_str(st, b + 9, j->request_uri) != SQLITE_OK ||
		    bind_str(st, b + 10, j->query_string) != SQLITE_OK ||
		    bind_str(st, b + 11, j->content_type) != SQLITE_OK ||
		    bind_str(st, b + 12, j->remote_addr) != SQLITE_OK ||
		    bind_str(st, b + 13, j->headers) != SQLITE_OK ||
		    sqlite3_bind_blob64(st, b + 14, j->body_len != 0 ? j->body :
		    "", (sqlite3_uint64)j->body_len, SQLITE_STATIC) !=
		    SQLITE_OK) {
			(void)fail_db(s, "bind");
			goto done;
		}
	}
	if (step_done(s, st, "insert") == -1)
		goto done;
	for (i = 0; i < 1 << k; i++)
		jobs[i].outcome = STORE_ENQ_NEW;
	r = 0;
done:
	done_with(st);
	return r;
}

/* Insert jobs[0..n) in chunks of 2^k rows, largest first. */
static int
insert_run(struct store *s, struct store_newjob *jobs, size_t n, int64_t now)
{
	size_t	 done = 0;
	int	 k;

	for (k = STORE_INSERT_LOG2; k >= 0; k--)
		while (n - done >= (size_t)1 << k) {
			if (insert_rows(s, jobs + done, k, now) == -1)
				return -1;
			done += (size_t)1 << k;
		}
	return 0;
}

int
store_enqueue(struct store *s, struct store_newjob *jobs, size_t n)
{
	struct store_newjob	*j;
	int64_t			 now;
	size_t			 i, run;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		jobs[i].id[0] = '\0';
		jobs[i].outcome = STORE_ENQ_NEW;
	}
	for (i = 0; i < n; i++) {
		j = &jobs[i];
		if (j->queue == NULL)
			return fail_arg(s, "enqueue: job without a queue");
		if (j->max_attempts < 1)
			return fail_arg(s, "enqueue: max_attempts below 1");
		if (j->body == NULL && j->body_len != 0)
			return fail_arg(s, "enqueue: body is NULL");
	}
	now = store_now();
	if (make_ids(s, jobs, n) == -1)
		goto fail_ids;
	if (begin(s) == -1)
		goto fail_ids;
	/*
	 * In order: a keyed job must see the jobs before it in the batch
	 * (the same key twice in one batch is a duplicate), so a run of
	 * unkeyed jobs is inserted before the next keyed job is looked up.
	 */
	for (i = 0, run = 0; i < n; i++) {
		j = &jobs[i];
		if (j->idempotency_key == NULL)
			continue;
		if (insert_run(s, jobs + run, i - run, now) == -1)
			goto fail;
		run = i + 1;
		switch (enqueue_lookup(s, j)) {
		case 1:
			continue;
		case 0:
			break;
		default:
			goto fail;
		}
		if (insert_rows(s, j, 0, now) == -1)
			goto fail;
	}
	if (insert_run(s, jobs + run, n - run, now) == -1)
		goto fail;
	if (commit(s) == -1)
		goto fail;
	return 0;
fail:
	rollback(s);
fail_ids:
	for (i = 0; i < n; i++)
		jobs[i].id[0] = '\0';
	return -1;
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
static int
job_from_row(sqlite3_stmt *st, struct store_job **out)
{
	static const int	 strs[] = { C_QUEUE, C_IDEMPOTENCY_KEY,
	    C_METHOD, C_REQUEST_URI, C_QUERY_STRING, C_CONTENT_TYPE,
	    C_REMOTE_ADDR, C_HEADERS, C_LAST_ERROR };
	const void		*p[C__COUNT];
	size_t			 len[C__COUNT];
	char			*at, *dst[C__COUNT];
	struct store_job	*j;
	enum store_state	 state;
	size_t			 need = sizeof(*j), k;
	int			 c;

	*out = NULL;
	if (col_state(st, C_STATE, &state) == -1)
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
	*out = j;
	return SQLITE_OK;
}

void
store_job_free(struct store_job *j)
{
	free(j);
}

int
store_batch_begin(struct store *s)
{
	if (s->batch != BATCH_NONE)
		return fail_arg(s, "batch: already open");
	if (run_plain(s, ST_BEGIN, "batch: begin") == -1)
		return -1;
	s->batch = BATCH_OPEN;
	return 0;
}

int
store_batch_end(struct store *s)
{
	int	failed = s->batch != BATCH_OPEN;

	if (s->batch == BATCH_NONE)
		return fail_arg(s, "batch: none open");
	if (!failed && batch_usable(s) == -1)
		failed = 1;
	s->batch = BATCH_NONE;
	if (!failed && run_plain(s, ST_COMMIT, "batch: commit") == 0)
		return 0;
	rollback(s);
	return -1;
}

int
store_claim(struct store *s, const char *queue, int64_t now,
    int64_t lease_ms, struct store_job **out)
{
	sqlite3_stmt	*st = NULL;
	struct store_job *j = NULL;
	int64_t		 seq;
	int		 rc;

	*out = NULL;
	if (begin(s) == -1)
		return -1;
	if ((st = stmt(s, ST_CLAIM_PICK)) == NULL)
		goto fail;
	if (bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		(void)fail_db(s, "claim: bind");
		goto fail;
	}
	if ((rc = store_step_fn(st)) == SQLITE_DONE) {
		done_with(st);
		if (s->batch == BATCH_NONE)
			rollback(s);	/* nothing written */
		return 0;
	}
	if (rc != SQLITE_ROW) {
		(void)fail(s, rc, "claim");
		goto fail;
	}
	seq = sqlite3_column_int64(st, 0);
	done_with(st);

	if ((st = stmt(s, ST_CLAIM)) == NULL)
		goto fail;
	if (sqlite3_bind_int64(st, 1, seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, now + lease_ms) != SQLITE_OK) {
		(void)fail_db(s, "claim: bind");
		goto fail;
	}
	if (step_done(s, st, "claim") == -1)
		goto fail;
	done_with(st);

	if ((st = stmt(s, ST_GET_SEQ)) == NULL)
		goto fail;
	if (sqlite3_bind_int64(st, 1, seq) != SQLITE_OK) {
		(void)fail_db(s, "claim: bind");
		goto fail;
	}
	if (step_row(s, st, "claim") == -1)
		goto fail;
	if ((rc = job_from_row(st, &j)) != SQLITE_OK) {
		(void)fail(s, rc, "claim");
		goto fail;
	}
	done_with(st);
	st = NULL;
	if (commit(s) == -1)
		goto fail;
	*out = j;
	return 1;
fail:
	done_with(st);
	rollback(s);
	store_job_free(j);
	return -1;
}

int
store_next_due(struct store *s, const char *queue, int64_t *when)
{
	sqlite3_stmt	*st;
	int		 r = -1;

	if ((st = stmt(s, ST_NEXT_DUE)) == NULL)
		return -1;
	if (bind_str(st, 1, queue) != SQLITE_OK) {
		(void)fail_db(s, "next_due: bind");
		goto done;
	}
	if (step_row(s, st, "next_due") == -1)
		goto done;
	r = 0;
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*when = sqlite3_column_int64(st, 0);
		r = 1;
	}
done:
	done_with(st);
	return r;
}

/*
 * Run one single-statement change (its own transaction) whose parameters
 * are already bound; the number of rows it changed, or -1.
 */
static int
run_change(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	r = -1;

	if (s->batch != BATCH_NONE && batch_usable(s) == -1) {
		done_with(st);
		return -1;
	}
	if (step_done(s, st, what) == 0)
		r = sqlite3_changes(s->db);
	done_with(st);
	return r;
}

static int
bind_fence(struct store *s, sqlite3_stmt *st, const char *id, int attempt)
{
	if (bind_str(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, attempt) != SQLITE_OK)
		return -1;
	return 0;
}

int
store_finish_done(struct store *s, const char *id, int attempt,
    const void *result, size_t result_len, int64_t now)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = stmt(s, ST_DONE)) == NULL)
		return -1;
	if (result != NULL)
		rc = sqlite3_bind_blob64(st, 3, result,
		    (sqlite3_uint64)result_len, SQLITE_STATIC);
	else
		rc = sqlite3_bind_null(st, 3);
	if (rc != SQLITE_OK || bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 4, now) != SQLITE_OK) {
		(void)fail_db(s, "finish_done: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "finish_done");
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
static int64_t
backoff(int attempt, int64_t min, int64_t max)
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
	if (fill_random(&r, sizeof(r)) == -1)
		return cap;
	return min + (int64_t)(r % (uint64_t)(cap - min + 1));
}

int
store_finish_failed(struct store *s, const char *id, int attempt,
    const char *error, int permanent, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int *dead)
{
	sqlite3_stmt	*st = NULL;
	enum store_state state;
	int		 r = 0, isdead = 0;

	if (dead != NULL)
		*dead = 0;
	if (begin(s) == -1)
		return -1;
	if ((st = stmt(s, ST_FAILED)) == NULL)
		goto fail;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int(st, 3, permanent != 0) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, now + backoff(attempt, backoff_min_ms,
	    backoff_max_ms)) != SQLITE_OK ||
	    bind_error(st, 6, error) != SQLITE_OK) {
		(void)fail_db(s, "finish_failed: bind");
		goto fail;
	}
	if (step_done(s, st, "finish_failed") == -1)
		goto fail;
	done_with(st);
	st = NULL;
	/* Whether the update made it dead: read back, not RETURNING (see
	 * ST_CLAIM_PICK). */
	if (sqlite3_changes(s->db) > 0) {
		r = 1;
		if ((st = stmt(s, ST_STATE)) == NULL)
			goto fail;
		if (bind_str(st, 1, id) != SQLITE_OK) {
			(void)fail_db(s, "finish_failed: bind");
			goto fail;
		}
		if (step_row(s, st, "finish_failed") == -1)
			goto fail;
		isdead = col_state(st, 0, &state) == 0 &&
		    state == STORE_JOB_DEAD;
		done_with(st);
		st = NULL;
	}
	if (commit(s) == -1)
		goto fail;
	if (dead != NULL)
		*dead = isdead;
	return r;
fail:
	done_with(st);
	rollback(s);
	return -1;
}

int
store_release(struct store *s, const char *id, int attempt,
    const char *reason, int64_t now)
{
	sqlite3_stmt	*st;

	if ((st = stmt(s, ST_RELEASE)) == NULL)
		return -1;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 3, now) != SQLITE_OK ||
	    bind_error(st, 4, reason) != SQLITE_OK) {
		(void)fail_db(s, "release: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "release");
}

int
store_extend(struct store *s, const char *id, int attempt,
    int64_t lease_until)
{
	sqlite3_stmt	*st;

	if ((st = stmt(s, ST_EXTEND)) == NULL)
		return -1;
	if (bind_fence(s, st, id, attempt) == -1 ||
	    sqlite3_bind_int64(st, 3, lease_until) != SQLITE_OK) {
		(void)fail_db(s, "extend: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "extend");
}

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

	if ((st = stmt(s, sid)) == NULL)
		return -1;
	if (bind_str(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		(void)fail_db(s, what);
		done_with(st);
		return -1;
	}
	if ((r = run_change(s, st, what)) != 0)
		return r > 0 ? 1 : -1;
	if ((st = stmt(s, ST_EXISTS)) == NULL)
		return -1;
	if (bind_str(st, 1, id) != SQLITE_OK) {
		(void)fail_db(s, what);
		done_with(st);
		return -1;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		r = 2;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = fail(s, rc, what);
	done_with(st);
	return r;
}

int
store_cancel(struct store *s, const char *id, int64_t now)
{
	return change_by_id(s, ST_CANCEL, id, now, "cancel");
}

static int
requeue(struct store *s, enum stmt_id id, int64_t now, const char *reason)
{
	sqlite3_stmt	*st;

	if ((st = stmt(s, id)) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    bind_str(st, 2, reason) != SQLITE_OK) {
		(void)fail_db(s, "requeue: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "requeue");
}

int
store_requeue_expired(struct store *s, int64_t now)
{
	return requeue(s, ST_REQUEUE_EXPIRED, now, "lease expired");
}

int
store_requeue_running(struct store *s, int64_t now)
{
	return requeue(s, ST_REQUEUE_RUNNING, now,
	    "requeued: its helper went away");
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

	if (state != STORE_JOB_ANY && state != STORE_JOB_DONE &&
	    state != STORE_JOB_DEAD && state != STORE_JOB_CANCELLED)
		return fail_arg(s, "purge: only done, dead or cancelled jobs");
	if ((st = stmt(s, ST_PRUNE)) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, cutoff) != SQLITE_OK ||
	    bind_str(st, 2, queue) != SQLITE_OK ||
	    bind_str(st, 3, state == STORE_JOB_ANY ? NULL :
	    store_state_name(state)) != SQLITE_OK) {
		(void)fail_db(s, "purge: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "purge");
}

int
store_pause(struct store *s, const char *queue, int paused)
{
	sqlite3_stmt	*st;

	if ((st = stmt(s, ST_PAUSE)) == NULL)
		return -1;
	if (bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, paused != 0) != SQLITE_OK) {
		(void)fail_db(s, "pause: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "pause") < 0 ? -1 : 0;
}

int
store_paused(struct store *s, const char *queue)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	if ((st = stmt(s, ST_PAUSED)) == NULL)
		return -1;
	if (bind_str(st, 1, queue) != SQLITE_OK) {
		(void)fail_db(s, "paused: bind");
		done_with(st);
		return -1;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_ROW)
		r = sqlite3_column_int(st, 0) != 0;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = fail(s, rc, "paused");
	done_with(st);
	return r;
}

int
store_retry(struct store *s, const char *id, int64_t now)
{
	return change_by_id(s, ST_RETRY, id, now, "retry");
}

int
store_retry_dead(struct store *s, const char *queue, int64_t now)
{
	sqlite3_stmt	*st;

	if ((st = stmt(s, ST_RETRY_DEAD)) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    bind_str(st, 2, queue) != SQLITE_OK) {
		(void)fail_db(s, "retry dead: bind");
		done_with(st);
		return -1;
	}
	return run_change(s, st, "retry dead");
}

int
store_get(struct store *s, const char *id, struct store_job **out)
{
	sqlite3_stmt	*st;
	int		 rc, r = -1;

	*out = NULL;
	if ((st = stmt(s, ST_GET)) == NULL)
		return -1;
	if (bind_str(st, 1, id) != SQLITE_OK) {
		(void)fail_db(s, "get: bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_DONE)
		r = 0;
	else if (rc != SQLITE_ROW)
		(void)fail(s, rc, "get");
	else if ((rc = job_from_row(st, out)) != SQLITE_OK)
		(void)fail(s, rc, "get");
	else
		r = 1;
done:
	done_with(st);
	return r;
}

int64_t
store_count_waiting(struct store *s, const char *queue)
{
	sqlite3_stmt	*st;
	int64_t		 r = -1;

	if ((st = stmt(s, ST_COUNT_WAITING)) == NULL)
		return -1;
	if (bind_str(st, 1, queue) != SQLITE_OK) {
		(void)fail_db(s, "count_waiting: bind");
		goto done;
	}
	if (step_row(s, st, "count_waiting") == 0)
		r = sqlite3_column_int64(st, 0);
done:
	done_with(st);
	return r;
}

int
store_stats(struct store *s, struct store_stat **out, size_t *n)
{
	sqlite3_stmt	*st;
	struct store_stat *v = NULL, *nv, *e;
	size_t		 len = 0, cap = 0;
	int		 rc;

	*out = NULL;
	*n = 0;
	if ((st = stmt(s, ST_STATS)) == NULL)
		return -1;
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				(void)fail(s, SQLITE_NOMEM, "stats");
				goto fail;
			}
			v = nv;
		}
		e = &v[len++];
		/* Longer queue names are cut: these are for display. */
		(void)snprintf(e->queue, sizeof(e->queue), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		if (col_state(st, 1, &e->state) == -1) {
			(void)fail(s, SQLITE_CORRUPT, "stats");
			goto fail;
		}
		e->count = sqlite3_column_int64(st, 2);
		e->oldest_created_at = sqlite3_column_int64(st, 3);
	}
	if (rc != SQLITE_DONE) {
		(void)fail(s, rc, "stats");
		goto fail;
	}
	done_with(st);
	*out = v;
	*n = len;
	return 0;
fail:
	done_with(st);
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

	if ((st = stmt(s, ST_LIST)) == NULL)
		return -1;
	if (bind_str(st, 1, queue) != SQLITE_OK ||
	    bind_str(st, 2, state == STORE_JOB_ANY ? NULL :
	    store_state_name(state)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, limit) != SQLITE_OK) {
		(void)fail_db(s, "list: bind");
		goto done;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		j.id = (const char *)sqlite3_column_text(st, 0);
		j.queue = (const char *)sqlite3_column_text(st, 1);
		if (col_state(st, 2, &j.state) == -1) {
			(void)fail(s, SQLITE_CORRUPT, "list");
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
		(void)fail(s, rc, "list");
		goto done;
	}
	r = 0;
done:
	done_with(st);
	return r;
}
