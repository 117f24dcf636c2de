/*
 * store-schema.c: the database's schema and its migrations.  A writer
 * brings an older database to the current version when it opens it, in
 * one transaction; a read-only connection refuses any other version.
 */
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "store-sqlite.h"

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
 *   4. update JOB_COLUMNS (store-sqlite.h), sq_job_from_row() (store-jobs.c)
 *      and the statements in store-sql.c if struct store_job changes, and
 *      the expected version in tests/unit/test_store.c.
 */
#define STORE_SCHEMA_VERSION	5

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
	/*
	 * 3 -> 4: the media type of a job's result (a fastcgi: or http:
	 * upstream names it; NULL for exec:), and the requests refused at the
	 * door by a queue's signature check, kept for inspection and bounded
	 * per queue by keep_rejected (oldest first out: rejected_queue).
	 */
	"ALTER TABLE jobs ADD COLUMN result_type TEXT;"
	"CREATE TABLE rejected ("
	"  seq         INTEGER PRIMARY KEY,"
	"  at          INTEGER NOT NULL,"	/* Unix ms */
	"  queue       TEXT NOT NULL,"
	"  reason      TEXT NOT NULL,"
	"  remote_addr TEXT,"
	"  method      TEXT,"
	"  request_uri TEXT,"
	"  headers     TEXT,"			/* JSON object */
	"  body_length INTEGER NOT NULL,"
	"  body_head   BLOB NOT NULL"		/* the first KiB */
	") STRICT;"
	"CREATE INDEX rejected_queue ON rejected (queue, seq);",
	/*
	 * 4 -> 5: flow control and schedules.  serial_key is the value a
	 * queue's serialize_by takes from the request at intake (jobs with
	 * the same key run one at a time, in arrival order); crashes counts
	 * the runs of a job that ended by a signal or killed its runner, for
	 * quarantine_after; schedules remembers, per [schedule NAME], the
	 * last cron slot enqueued, written in the transaction that enqueues
	 * it, so that each slot is enqueued once across helpers, restarts
	 * and clock steps.  jobs_serial holds the unfinished keyed jobs in
	 * arrival order per key: the claim's probe for an earlier one
	 * (ST_SERIAL_PROBE) and its walk over the keys' first jobs
	 * (ST_SERIAL_HEADS) are searches in it.  finished_at is NULL for
	 * exactly the queued, retry and running jobs; it is repeated in the
	 * entry for the reason given at jobs_claim (covered, no row read).
	 * jobs_dead holds the dead jobs of a queue by when they died, for
	 * the dashboard's list of dead jobs and its retry or discard of
	 * every one matching a filter: dead jobs are few among millions
	 * done, and without it finding them reads every finished job.
	 * Partial, so the other jobs' writes never touch it.
	 */
	"ALTER TABLE jobs ADD COLUMN serial_key TEXT;"
	"CREATE INDEX jobs_serial ON jobs (queue, serial_key, seq, finished_at)"
	"  WHERE serial_key IS NOT NULL AND finished_at IS NULL;"
	"ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE schedules ("
	"  name      TEXT PRIMARY KEY,"
	"  last_slot INTEGER NOT NULL"		/* Unix ms of the slot */
	") STRICT;"
	/* Each queue's circuit breaker (store-flow.c), as its helper last
	 * wrote it: state 0 closed, 1 open, 2 half-open. */
	"ALTER TABLE queues ADD COLUMN breaker_state INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE queues ADD COLUMN breaker_until INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE queues ADD COLUMN breaker_failures INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE queues ADD COLUMN breaker_pause INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE queues ADD COLUMN breaker_trips INTEGER NOT NULL"
	"  DEFAULT 0;"
	"CREATE INDEX jobs_dead ON jobs (queue, finished_at)"
	"  WHERE state = 'dead';",
};

/*
 * Bring the schema to STORE_SCHEMA_VERSION.  The version is read again
 * under the write lock: two processes opening a new database at once
 * must not both create it.
 */
int
sq_migrate(struct store *s)
{
	int64_t	v;
	char	what[64];

	if (sq_query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		return -1;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (sq_begin(s) == -1)
		return -1;
	if (sq_query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		goto fail;
	if (v > STORE_SCHEMA_VERSION || v < 0) {
		(void)sq_set_error(s, SQLITE_ERROR, "schema version %lld is "
		    "newer than this program's (%d)", (long long)v,
		    STORE_SCHEMA_VERSION);
		goto fail;
	}
	for (; v < STORE_SCHEMA_VERSION; v++) {
		(void)snprintf(what, sizeof(what), "migrate to version %lld",
		    (long long)v + 1);
		if (sq_exec(s, migrations[v], what) == -1)
			goto fail;
	}
	/* A pragma takes no parameter: the number is ours, not data. */
	(void)snprintf(what, sizeof(what), "PRAGMA user_version = %d",
	    STORE_SCHEMA_VERSION);
	if (sq_exec(s, what, "set user_version") == -1)
		goto fail;
	if (sq_commit(s) == -1)
		goto fail;
	return 0;
fail:
	sq_rollback(s);
	return -1;
}

/* A read-only connection cannot migrate: it needs the current schema. */
int
sq_check_schema(struct store *s)
{
	int64_t	v;

	if (sq_query_one(s, "PRAGMA user_version", &v, NULL, 0) == -1)
		return -1;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (v == 0) {
		(void)sq_set_error(s, SQLITE_ERROR, "no fcgiq schema (open it "
		    "read-write once to create it)");
		s->errcode = STORE_ENOTFOUND;
		return -1;
	}
	if (v > STORE_SCHEMA_VERSION)
		return sq_set_error(s, SQLITE_ERROR, "schema version %lld is "
		    "newer than this program's (%d)", (long long)v,
		    STORE_SCHEMA_VERSION);
	return sq_set_error(s, SQLITE_ERROR, "schema version %lld is older "
	    "than this program's (%d): open it read-write once to migrate it",
	    (long long)v, STORE_SCHEMA_VERSION);
}
