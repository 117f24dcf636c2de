/*
 * store-pg.c: the connection to a PostgreSQL database (libpq), its
 * transactions, its errors and its schema.  Every change is one
 * transaction (a single statement, or BEGIN .. COMMIT), or part of the
 * caller's batch, as with SQLite; every session runs with
 * synchronous_commit = on, so a COMMIT that returned is on disk (and on
 * a synchronous standby, when one is configured).
 *
 * A connection that breaks (the server restarts, a failover, the network)
 * fails the call in progress with STORE_EIO, which the door answers with
 * 503 and Retry-After; the next call outside a transaction reconnects,
 * waiting 50 ms after a failed try, doubling to 2 s, so a server that is
 * down costs one connect attempt per wait, not per request.
 *
 * Statements are prepared once per connection (PQprepare, then
 * PQexecPrepared by name): parsing and planning the claim cost the server
 * more than running it.  The statements live in the server's session, so
 * they are forgotten with the connection and prepared again on the new
 * one; a session that lost them some other way (DISCARD ALL, a pooler
 * that hands out another server connection: pgbouncer's transaction mode
 * is not supported) is noticed by the error and prepared again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "store-sqlite.h"
#include "store-pg.h"

#define RECONNECT_MIN_MS	50
#define RECONNECT_MAX_MS	2000

/* Statements kept prepared per connection: the store's own are a few
 * dozen, an enqueue's INSERT nine per form (store-pg-jobs.c); past this
 * many, a new text runs unprepared rather than grow the session. */
#define MAX_STMTS		128

/* The advisory lock key of a migration: "fcgiq" in ASCII. */
#define MIGRATE_LOCK		"435711103345"

int
pgs_is_conninfo(const char *db)
{
	if (db == NULL)
		return 0;
	if (strncmp(db, "postgresql://", 13) == 0 ||
	    strncmp(db, "postgres://", 11) == 0)
		return 1;
	/* A keyword string: "host=... dbname=...", "dbname=x". */
	return strchr(db, '=') != NULL && strspn(db,
	    "abcdefghijklmnopqrstuvwxyz_ ") == (size_t)(strchr(db, '=') - db);
}

int
pgs_set_error(struct store *s, int code, const char *fmt, ...)
{
	va_list	ap;

	s->rc = SQLITE_ERROR;
	s->errcode = code;
	va_start(ap, fmt);
	(void)vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	if (s->pg != NULL && s->pg->batch == BATCH_OPEN)
		s->pg->batch = BATCH_FAILED;
	return -1;
}

int
pgs_unsupported(struct store *s, const char *what)
{
	return pgs_set_error(s, STORE_EINVAL, "%s is not available with the "
	    "PostgreSQL backend yet", what);
}

/*
 * The store's code for an error: a lost connection or a server that
 * cannot take writes now is transient (the door answers 503 with
 * Retry-After); a constraint is the job's; the rest is other.
 */
static int
errcode_of(PGconn *conn, const PGresult *res)
{
	const char	*st;

	if (PQstatus(conn) != CONNECTION_OK)
		return STORE_EIO;
	st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (st == NULL)
		return STORE_EIO;	/* libpq's own: the connection */
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 ||
	    strncmp(st, "58", 2) == 0 || strcmp(st, "XX001") == 0)
		return STORE_EIO;
	if (strcmp(st, "25006") == 0)
		return STORE_EREADONLY;	/* read_only_sql_transaction */
	if (strcmp(st, "53100") == 0)
		return STORE_EFULL;	/* disk_full */
	if (strcmp(st, "53200") == 0)
		return STORE_ENOMEM;
	if (strncmp(st, "53", 2) == 0 || strcmp(st, "40001") == 0 ||
	    strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0 ||
	    strcmp(st, "57014") == 0)
		return STORE_EBUSY;
	if (strncmp(st, "23", 2) == 0)
		return STORE_ECONSTRAINT;
	if (strcmp(st, "25P02") == 0)
		return STORE_EABORT;
	return STORE_EOTHER;
}

/* Keep "what: why" for res (NULL: the connection's error); -1. */
static int
fail_res(struct store *s, const PGresult *res, const char *what)
{
	const char	*why;
	char		 msg[400];
	size_t		 n;

	why = res != NULL ? PQresultErrorMessage(res) : "";
	if (why == NULL || *why == '\0')
		why = PQerrorMessage(s->pg->conn);
	if (why == NULL || *why == '\0')
		why = "unexpected result";
	(void)snprintf(msg, sizeof(msg), "%s", why);
	/* libpq's messages span lines ("...\n\tThis probably means...",
	 * and repeated once per failed command): the first says it. */
	msg[strcspn(msg, "\n")] = '\0';
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = '\0';
	return pgs_set_error(s, errcode_of(s->pg->conn, res), "%s: %s", what,
	    msg);
}

/*
 * The server's notices and warnings ("terminating connection due to
 * immediate shutdown"): libpq prints them on stderr by default, in the
 * middle of the log.  The error that follows says what matters.
 */
static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Settings every session needs, after each (re)connect. */
static int
session_setup(struct store *s)
{
	static const char sql[] =
	    "SET synchronous_commit = on;"
	    "SET client_min_messages = warning;"
	    "SET TIME ZONE 'UTC'";
	/* A reader (the status answers, fcgiqctl's reads) cannot write by
	 * mistake. */
	static const char ro_sql[] =
	    "SET synchronous_commit = on;"
	    "SET client_min_messages = warning;"
	    "SET TIME ZONE 'UTC';"
	    "SET default_transaction_read_only = on";
	PGresult	*res;
	int		 r = 0;

	res = PQexec(s->pg->conn, s->pg->readonly ? ro_sql : sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = fail_res(s, res, "session");
	PQclear(res);
	return r;
}

/* LISTEN on this connection: 0 or -1. */
static int
do_listen(struct store *s)
{
	PGresult	*res;
	int		 r = 0;

	res = PQexec(s->pg->conn, "LISTEN " PGS_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = fail_res(s, res, "listen");
	PQclear(res);
	return r;
}

/* Forget the statements prepared on the connection (names are not
 * reused: stmt_seq goes on until the next session). */
static void
stmts_forget(struct pgs *pg)
{
	int	i;

	for (i = 0; i < pg->nstmts; i++)
		free(pg->stmts[i].sql);
	pg->nstmts = 0;
}

/* FNV-1a over the text of a statement. */
static uint64_t
sql_hash(const char *sql)
{
	uint64_t	h = 14695981039346656037ULL;

	for (; *sql != '\0'; sql++)
		h = (h ^ (unsigned char)*sql) * 1099511628211ULL;
	return h;
}

/*
 * The name sql is prepared under on this connection, preparing it (n
 * parameters, their types the server's inference, as PQexecParams) the
 * first time: 1 (*name set), 0 to run it unprepared (the cache is full or
 * memory short), -1 when the server refused (error kept, as what's).
 */
static int
stmt_prepared(struct store *s, const char *sql, int n, const char *what,
    const char **name)
{
	struct pgs	*pg = s->pg;
	struct pgs_stmt	*st;
	PGresult	*res;
	uint64_t	 h = sql_hash(sql);
	int		 i;

	for (i = 0; i < pg->nstmts; i++)
		if (pg->stmts[i].hash == h && strcmp(pg->stmts[i].sql,
		    sql) == 0) {
			*name = pg->stmts[i].name;
			return 1;
		}
	if (pg->nstmts == MAX_STMTS)
		return 0;
	if (pg->stmts == NULL &&
	    (pg->stmts = calloc(MAX_STMTS, sizeof(*pg->stmts))) == NULL)
		return 0;
	st = &pg->stmts[pg->nstmts];
	if ((st->sql = strdup(sql)) == NULL)
		return 0;
	st->hash = h;
	(void)snprintf(st->name, sizeof(st->name), "fcgiq_%u", pg->stmt_seq++);
	res = PQprepare(pg->conn, st->name, sql, n, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		(void)fail_res(s, res, what);
		PQclear(res);
		free(st->sql);
		return -1;
	}
	PQclear(res);
	pg->nstmts++;
	*name = st->name;
	return 1;
}

/* Whether res says that a prepared statement of ours is gone from the
 * session (DISCARD ALL, DEALLOCATE) or stale (a table changed under a
 * statement whose result type it fixed). */
static int
stmt_lost(const PGresult *res)
{
	const char	*st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char	*msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (st == NULL)
		return 0;
	return strcmp(st, "26000") == 0 || (strcmp(st, "0A000") == 0 &&
	    msg != NULL && strstr(msg, "cached plan") != NULL);
}

/*
 * Make sure the connection is up before a call: reconnect when it broke,
 * at most once per backoff step.  Inside a transaction of ours (a batch)
 * a new connection would not hold it: the batch fails instead.
 */
static int
ready(struct store *s)
{
	struct pgs	*pg = s->pg;
	int64_t		 now;

	if (PQstatus(pg->conn) == CONNECTION_OK)
		return 0;
	if (pg->batch != BATCH_NONE)
		return pgs_set_error(s, STORE_EABORT,
		    "batch: the connection to PostgreSQL was lost");
	now = mono_us();
	if (now < pg->retry_at_us)
		return pgs_set_error(s, STORE_EIO, "PostgreSQL: not connected "
		    "(reconnecting in %lld ms)",
		    (long long)(pg->retry_at_us - now) / 1000 + 1);
	stmts_forget(pg);
	pg->stmt_seq = 0;	/* a new session: no names taken */
	PQreset(pg->conn);
	if (PQstatus(pg->conn) == CONNECTION_OK && session_setup(s) == 0 &&
	    (!pg->listening || do_listen(s) == 0)) {
		pg->backoff_ms = RECONNECT_MIN_MS;
		pg->retry_at_us = 0;
		return 0;
	}
	pg->retry_at_us = mono_us() + pg->backoff_ms * 1000;
	pg->backoff_ms *= 2;
	if (pg->backoff_ms > RECONNECT_MAX_MS)
		pg->backoff_ms = RECONNECT_MAX_MS;
	return fail_res(s, NULL, "PostgreSQL: reconnect");
}

void
pgs_p_str(struct pgs_params *p, const char *v)
{
	p->v[p->n] = v;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

void
pgs_p_i64(struct pgs_params *p, int64_t v)
{
	(void)snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld",
	    (long long)v);
	pgs_p_str(p, p->num[p->n]);
}

void
pgs_p_bin(struct pgs_params *p, const void *v, size_t len)
{
	p->v[p->n] = v != NULL ? v : "";
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

PGresult *
pgs_execv(struct store *s, const char *sql, int n, const char *const *v,
    const int *len, const int *fmt, ExecStatusType want, const char *what)
{
	PGresult	*res;
	const char	*name = NULL;
	int		 r, tries;

	if (s->pg->batch == BATCH_FAILED) {
		(void)pgs_set_error(s, STORE_EABORT,
		    "batch: an earlier change failed");
		return NULL;
	}
	if (ready(s) == -1)
		return NULL;
	for (tries = 0;; tries++) {
		if ((r = stmt_prepared(s, sql, n, what, &name)) == -1)
			return NULL;
		res = r == 1 ? PQexecPrepared(s->pg->conn, name, n, v, len,
		    fmt, 0) : PQexecParams(s->pg->conn, sql, n, NULL, v, len,
		    fmt, 0);
		if (PQresultStatus(res) == want)
			return res;
		if (r == 0 || tries > 0 || !stmt_lost(res))
			break;
		/* Prepared again under new names; once more at once when
		 * no transaction of ours was aborted by the error. */
		stmts_forget(s->pg);
		if (PQtransactionStatus(s->pg->conn) != PQTRANS_IDLE ||
		    s->pg->batch != BATCH_NONE)
			break;
		PQclear(res);
	}
	(void)fail_res(s, res, what);
	PQclear(res);
	return NULL;
}

PGresult *
pgs_exec(struct store *s, const char *sql, const struct pgs_params *p,
    ExecStatusType want, const char *what)
{
	if (p == NULL)
		return pgs_execv(s, sql, 0, NULL, NULL, NULL, want, what);
	return pgs_execv(s, sql, p->n, p->v, p->len, p->fmt, want, what);
}

int
pgs_change(struct store *s, const char *sql, const struct pgs_params *p,
    const char *what)
{
	PGresult	*res;
	int		 n;

	if ((res = pgs_exec(s, sql, p, PGRES_COMMAND_OK, what)) == NULL)
		return -1;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n;
}

int64_t
pgs_i64(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c),
	    NULL, 10);
}

const char *
pgs_str(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

int
pgs_begin(struct store *s)
{
	PGresult	*res;

	if (s->pg->batch != BATCH_NONE)
		return s->pg->batch == BATCH_OPEN ? 0 : pgs_set_error(s,
		    STORE_EABORT, "batch: an earlier change failed");
	if ((res = pgs_exec(s, "BEGIN", NULL, PGRES_COMMAND_OK,
	    "begin")) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* COMMIT, which answers ROLLBACK (not an error) when the transaction had
 * already failed. */
static int
commit(struct store *s, const char *what)
{
	PGresult	*res;
	int		 r = 0;

	if ((res = pgs_exec(s, "COMMIT", NULL, PGRES_COMMAND_OK,
	    what)) == NULL)
		return -1;
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		r = pgs_set_error(s, STORE_EABORT, "%s: rolled back", what);
	PQclear(res);
	return r;
}

int
pgs_commit(struct store *s)
{
	if (s->pg->batch != BATCH_NONE)
		return s->pg->batch == BATCH_OPEN ? 0 : pgs_set_error(s,
		    STORE_EABORT, "batch: an earlier change failed");
	return commit(s, "commit");
}

/* Undo the open transaction, if any, keeping the error that led here. */
void
pgs_rollback(struct store *s)
{
	PGTransactionStatusType	 ts;
	PGresult		*res;

	if (s->pg->batch == BATCH_OPEN)
		s->pg->batch = BATCH_FAILED;
	if (s->pg->batch != BATCH_NONE)
		return;		/* the batch's end rolls back */
	ts = PQtransactionStatus(s->pg->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		res = PQexec(s->pg->conn, "ROLLBACK");
		PQclear(res);
	}
}

int
pgs_listen(struct store *s)
{
	PGresult	*res;

	s->pg->listening = 1;
	if ((res = pgs_exec(s, "LISTEN " PGS_CHANNEL, NULL, PGRES_COMMAND_OK,
	    "listen")) == NULL)
		return -1;	/* the next reconnect listens */
	PQclear(res);
	return 0;
}

int
pgs_listen_fd(struct store *s)
{
	if (!s->pg->listening || PQstatus(s->pg->conn) != CONNECTION_OK)
		return -1;
	return PQsocket(s->pg->conn);
}

/* Read what the socket holds; 1 when notifications were among it (or had
 * come in with the results of other calls). */
int
pgs_listen_take(struct store *s)
{
	PGnotify	*n;
	int		 got = 0;

	if (PQstatus(s->pg->conn) != CONNECTION_OK ||
	    PQtransactionStatus(s->pg->conn) == PQTRANS_ACTIVE)
		return 0;
	(void)PQconsumeInput(s->pg->conn);
	while ((n = PQnotifies(s->pg->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

int
pgs_batch_begin(struct store *s)
{
	if (s->pg->batch != BATCH_NONE)
		return pgs_set_error(s, STORE_EINVAL, "batch: already open");
	if (pgs_begin(s) == -1)
		return -1;
	s->pg->batch = BATCH_OPEN;
	return 0;
}

int
pgs_batch_end(struct store *s)
{
	int	failed = s->pg->batch != BATCH_OPEN;

	if (s->pg->batch == BATCH_NONE)
		return pgs_set_error(s, STORE_EINVAL, "batch: none open");
	s->pg->batch = BATCH_NONE;
	if (!failed && commit(s, "batch: commit") == 0)
		return 0;
	pgs_rollback(s);
	if (failed && s->errcode == STORE_OK)
		(void)pgs_set_error(s, STORE_EABORT, "batch: rolled back");
	return -1;
}

/* --- schema ------------------------------------------------------------ */

/* An ISO-8601 text of a Unix ms column, as SQLite's jobs_readable. */
#define ISO(c) \
	"to_char(to_timestamp(" c " / 1000.0) AT TIME ZONE 'UTC'," \
	"  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS " c
/* A blob as text, or "<N bytes binary>" when it holds a NUL. */
#define TEXTOF(c) \
	"CASE WHEN position('\\x00'::bytea IN " c ") = 0" \
	"  THEN encode(" c ", 'escape')" \
	"  ELSE '<' || length(" c ") || ' bytes binary>' END AS " c

/*
 * Version 5, the one SQLite reaches by its five steps (store-schema.c),
 * made at once: the same tables, columns, indexes and views, times as
 * bigint Unix ms, blobs as bytea.  jobs_claim holds its entries in claim
 * order, so the claim reads the first one it can lock.  datetime() and
 * julianday() take SQLite's arguments, so the README's operator queries
 * run unchanged in psql.
 */
static const char create_v5[] =
	"CREATE TABLE jobs ("
	"  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  id              text NOT NULL UNIQUE,"
	"  queue           text NOT NULL,"
	"  state           text NOT NULL CHECK (state IN ('queued', 'running',"
	"                    'retry', 'done', 'dead', 'cancelled')),"
	"  priority        integer NOT NULL DEFAULT 0,"
	"  attempts        integer NOT NULL DEFAULT 0,"
	"  max_attempts    integer NOT NULL CHECK (max_attempts >= 1),"
	"  created_at      bigint NOT NULL,"
	"  run_at          bigint NOT NULL,"
	"  started_at      bigint,"
	"  finished_at     bigint,"
	"  lease_until     bigint,"
	"  idempotency_key text,"
	"  method          text,"
	"  request_uri     text,"
	"  query_string    text,"
	"  content_type    text,"
	"  remote_addr     text,"
	"  headers         text,"
	"  body            bytea NOT NULL,"
	"  result          bytea,"
	"  last_error      text,"
	"  result_type     text,"
	"  serial_key      text,"
	"  crashes         integer NOT NULL DEFAULT 0"
	") WITH (fillfactor = 80);"
	"CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, seq)"
	"  WHERE state IN ('queued', 'retry');"
	"CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';"
	"CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)"
	"  WHERE idempotency_key IS NOT NULL;"
	"CREATE INDEX jobs_finished ON jobs (finished_at)"
	"  WHERE finished_at IS NOT NULL;"
	"CREATE TABLE queues ("
	"  name   text PRIMARY KEY,"
	"  paused integer NOT NULL DEFAULT 0 CHECK (paused IN (0, 1))"
	");"
	"CREATE TABLE rejected ("
	"  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  at          bigint NOT NULL,"
	"  queue       text NOT NULL,"
	"  reason      text NOT NULL,"
	"  remote_addr text,"
	"  method      text,"
	"  request_uri text,"
	"  headers     text,"
	"  body_length bigint NOT NULL,"
	"  body_head   bytea NOT NULL"
	");"
	"CREATE INDEX rejected_queue ON rejected (queue, seq);"
	"CREATE TABLE schedules ("
	"  name      text PRIMARY KEY,"
	"  last_slot bigint NOT NULL"
	");"
	"CREATE VIEW queue_stats AS"
	"  SELECT queue, state, count(*) AS jobs,"
	"    CASE WHEN state IN ('queued', 'retry') THEN"
	"      (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
	"        - min(created_at) END AS oldest_waiting_ms"
	"  FROM jobs GROUP BY queue, state;"
	"CREATE VIEW jobs_readable AS"
	"  SELECT seq, id, queue, state, priority, attempts, max_attempts,"
	"    " ISO("created_at") ", " ISO("run_at") ", " ISO("started_at") ","
	"    " ISO("finished_at") ", " ISO("lease_until") ","
	"    idempotency_key, method, request_uri, query_string, content_type,"
	"    remote_addr, headers, " TEXTOF("body") ", " TEXTOF("result") ","
	"    last_error"
	"  FROM jobs;"
	"CREATE FUNCTION datetime(t double precision, modifier text)"
	"  RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$"
	"  SELECT CASE WHEN modifier = 'unixepoch' THEN"
	"    to_char(to_timestamp(t) AT TIME ZONE 'UTC',"
	"      'YYYY-MM-DD HH24:MI:SS') END $$;"
	"CREATE FUNCTION julianday(what text)"
	"  RETURNS double precision LANGUAGE sql STABLE STRICT AS $$"
	"  SELECT CASE WHEN what = 'now' THEN"
	"    extract(epoch FROM clock_timestamp())::double precision / 86400.0"
	"      + 2440587.5 END $$;"
	"CREATE TABLE fcgiq_schema (version integer NOT NULL);"
	"INSERT INTO fcgiq_schema VALUES (5)";

/*
 * Version 5 -> 6: what SQLite's version 5 has beyond create_v5, for flow
 * control.  Each queue's circuit breaker as its helper last wrote it
 * (store-flow.c, store-pg-flow.c: state 0 closed, 1 open, 2 half-open);
 * jobs_serial, the unfinished keyed jobs of a queue in arrival order per
 * key, in which the claim looks for an earlier or running job of a
 * candidate's key (store-pg-flow.c); jobs_dead, the dead jobs of a queue
 * by when they died.  Both indexes are partial, so the other jobs' writes
 * never touch them.  On a populated version-5 database the two CREATE
 * INDEX read the jobs table once, holding intake back meanwhile (the
 * migration's transaction; CONCURRENTLY cannot run inside one).  A new
 * database gets create_v5 and this step in the same transaction.
 */
static const char step_v6[] =
	"ALTER TABLE queues"
	"  ADD COLUMN breaker_state integer NOT NULL DEFAULT 0,"
	"  ADD COLUMN breaker_until bigint NOT NULL DEFAULT 0,"
	"  ADD COLUMN breaker_failures integer NOT NULL DEFAULT 0,"
	"  ADD COLUMN breaker_pause bigint NOT NULL DEFAULT 0,"
	"  ADD COLUMN breaker_trips bigint NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_serial ON jobs (queue, serial_key, seq)"
	"  WHERE serial_key IS NOT NULL AND finished_at IS NULL;"
	"CREATE INDEX jobs_dead ON jobs (queue, finished_at)"
	"  WHERE state = 'dead';"
	"UPDATE fcgiq_schema SET version = 6";

/* Run the statements of one schema step (the simple protocol: several
 * statements, no parameters).  0 or -1. */
static int
schema_step(struct store *s, const char *sql, const char *what)
{
	PGresult	*res;
	int		 r = 0;

	res = PQexec(s->pg->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = fail_res(s, res, what);
	PQclear(res);
	return r;
}

/* The schema's version: 0 when there is none. */
static int
schema_version(struct store *s, int64_t *v)
{
	PGresult	*res;

	/* pg_class through the statement's snapshot, not to_regclass():
	 * after the migration lock, the catalog caches may still miss a
	 * schema that another process has just committed. */
	res = pgs_exec(s, "SELECT CASE WHEN EXISTS (SELECT 1"
	    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
	    "  ON n.oid = c.relnamespace"
	    " WHERE c.relname = 'fcgiq_schema' AND n.nspname = current_schema())"
	    " THEN -1 ELSE 0 END", NULL, PGRES_TUPLES_OK, "schema");
	if (res == NULL)
		return -1;
	*v = pgs_i64(res, 0, 0);
	PQclear(res);
	if (*v == 0)
		return 0;
	if ((res = pgs_exec(s, "SELECT max(version) FROM fcgiq_schema", NULL,
	    PGRES_TUPLES_OK, "schema")) == NULL)
		return -1;
	*v = pgs_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

/*
 * Bring the schema to PGS_SCHEMA_VERSION in one transaction, under an
 * advisory lock: processes opening a new (or older) database at once wait
 * for the first, then find its schema.  (DDL is transactional in
 * PostgreSQL.)  To change the schema: append a step (never edit one that
 * has shipped), apply it here after the one before it, bump
 * PGS_SCHEMA_VERSION, and check that test_store_pg's schema case still
 * migrates a database of the previous version.
 */
static int
migrate(struct store *s)
{
	PGresult	*res;
	int64_t		 v;

	if (schema_version(s, &v) == -1)
		return -1;
	if (v == PGS_SCHEMA_VERSION)
		return 0;
	if (pgs_begin(s) == -1)
		return -1;
	if ((res = pgs_exec(s, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK
	    ")", NULL, PGRES_TUPLES_OK, "migrate: lock")) == NULL)
		goto fail;
	PQclear(res);
	if (schema_version(s, &v) == -1)
		goto fail;
	if (v > PGS_SCHEMA_VERSION || v < 0) {
		(void)pgs_set_error(s, STORE_EOTHER, "schema version %lld is "
		    "newer than this program's (%d)", (long long)v,
		    PGS_SCHEMA_VERSION);
		goto fail;
	}
	if (v == 0) {
		if (schema_step(s, create_v5, "migrate to version 5") == -1)
			goto fail;
		v = 5;
	}
	if (v < 5) {
		(void)pgs_set_error(s, STORE_EOTHER, "schema version %lld: no "
		    "step from it", (long long)v);
		goto fail;
	}
	if (v == 5) {
		if (schema_step(s, step_v6, "migrate to version 6") == -1)
			goto fail;
		v = 6;
	}
	/* The dashboard's key (store-pg-dash.c). */
	if (v == 6 && pgs_dash_schema_v7(s) == -1)
		goto fail;
	if (pgs_commit(s) == -1)
		goto fail;
	return 0;
fail:
	pgs_rollback(s);
	return -1;
}

static int
check_schema(struct store *s)
{
	int64_t	v;

	if (schema_version(s, &v) == -1)
		return -1;
	if (v == PGS_SCHEMA_VERSION)
		return 0;
	if (v == 0)
		return pgs_set_error(s, STORE_ENOTFOUND, "no fcgiq schema "
		    "(open it read-write once to create it)");
	return pgs_set_error(s, STORE_EOTHER, "schema version %lld, this "
	    "program's is %d", (long long)v, PGS_SCHEMA_VERSION);
}

int
pgs_open(struct store *s, const char *conninfo, int readonly)
{
	struct pgs	*pg = s->pg;

	pg->readonly = readonly;
	pg->backoff_ms = RECONNECT_MIN_MS;
	if ((pg->conninfo = strdup(conninfo)) == NULL)
		return pgs_set_error(s, STORE_ENOMEM, "%s", strerror(errno));
	if ((pg->conn = PQconnectdb(conninfo)) == NULL)
		return pgs_set_error(s, STORE_ENOMEM, "out of memory");
	/* Kept by PQreset too. */
	(void)PQsetNoticeProcessor(pg->conn, quiet, NULL);
	if (PQstatus(pg->conn) != CONNECTION_OK)
		return fail_res(s, NULL, "connect");
	if (session_setup(s) == -1)
		return -1;
	return readonly ? check_schema(s) : migrate(s);
}

void
pgs_close(struct pgs *pg)
{
	if (pg == NULL)
		return;
	PQfinish(pg->conn);
	stmts_forget(pg);
	free(pg->stmts);
	free(pg->conninfo);
	free(pg);
}
