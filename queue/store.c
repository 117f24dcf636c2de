/*
 * store.c: the connection to the SQLite database (WAL), its transactions
 * and its errors.  Every change the store makes is one transaction, or
 * part of the caller's batch (store_batch_begin): a call that returns -1
 * has changed nothing, and a crash at any instant leaves either the whole
 * change or none of it.  SQLite's result codes stop here: the callers see
 * enum store_errcode and a message.
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

#include "clock.h"
#include "store-sqlite.h"

int (*store_step_fn)(sqlite3_stmt *) = sqlite3_step;

#define STORE_BUSY_TIMEOUT_MS	5000

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
int
sq_set_error(struct store *s, int rc, const char *fmt, ...)
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
int
sq_fail(struct store *s, int rc, const char *what)
{
	const char	*why;

	rc &= 0xff;
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = SQLITE_ERROR;	/* a result we did not expect */
	if ((sqlite3_errcode(s->db) & 0xff) == rc)
		why = sqlite3_errmsg(s->db);
	else
		why = sqlite3_errstr(rc);
	(void)sq_set_error(s, rc, "%s: %s", what, why);
	if (s->batch == BATCH_OPEN)
		s->batch = BATCH_FAILED;
	return -1;
}

/* The last error of the connection, for binds (which set it themselves). */
int
sq_fail_db(struct store *s, const char *what)
{
	return sq_fail(s, sqlite3_errcode(s->db), what);
}

/* A caller's mistake, not SQLite's. */
int
sq_fail_arg(struct store *s, const char *what)
{
	return sq_set_error(s, SQLITE_MISUSE, "%s", what);
}

sqlite3_stmt *
sq_stmt(struct store *s, enum stmt_id id)
{
	int	rc;

	/* A store function without its PostgreSQL version: refuse. */
	if (s->pg != NULL) {
		(void)pgs_unsupported(s, "this operation");
		return NULL;
	}
	if (s->st[id] == NULL) {
		rc = sqlite3_prepare_v3(s->db, sq_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL);
		if (rc != SQLITE_OK) {
			(void)sq_fail(s, rc, "prepare");
			sqlite3_finalize(s->st[id]);
			s->st[id] = NULL;
		}
	}
	return s->st[id];
}

/*
 * Prepare sql for one use (what runs rarely: listings, bulk changes,
 * schedules, gauges), finalized by the caller; NULL with the error set.
 * Like sq_stmt it refuses on PostgreSQL, naming what: a store function
 * without its PostgreSQL version never reaches SQLite with no handle.
 */
sqlite3_stmt *
sq_prepare(struct store *s, const char *sql, const char *what)
{
	sqlite3_stmt	*st = NULL;
	int		 rc;

	if (s->pg != NULL) {
		(void)pgs_unsupported(s, what);
		return NULL;
	}
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK) {
		(void)sq_fail(s, rc, what);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Run a statement without parameters or rows (BEGIN, COMMIT); 0 or -1. */
static int
run_plain(struct store *s, enum stmt_id id, const char *what)
{
	sqlite3_stmt	*st;
	int		 r;

	if ((st = sq_stmt(s, id)) == NULL)
		return -1;
	r = sq_step_done(s, st, what);
	sq_done_with(st);
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
		return sq_fail(s, SQLITE_ABORT, "batch: transaction rolled back");
	if (s->batch == BATCH_FAILED)
		return sq_set_error(s, SQLITE_ABORT,
		    "batch: an earlier change failed");
	return 0;
}

int
sq_begin(struct store *s)
{
	if (s->pg != NULL)
		return pgs_unsupported(s, "this operation");
	if (s->batch != BATCH_NONE)
		return batch_usable(s);
	return run_plain(s, ST_BEGIN, "begin");
}

int
sq_commit(struct store *s)
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
void
sq_rollback(struct store *s)
{
	sqlite3_stmt	*st;
	int		 i;

	if (s->batch == BATCH_OPEN)
		s->batch = BATCH_FAILED;
	for (i = 0; i < 2 && !sqlite3_get_autocommit(s->db); i++) {
		if (s->st[ST_ROLLBACK] == NULL) {
			if (sqlite3_prepare_v3(s->db, sq_sql[ST_ROLLBACK], -1,
			    SQLITE_PREPARE_PERSISTENT, &s->st[ST_ROLLBACK],
			    NULL) != SQLITE_OK)
				return;
		}
		st = s->st[ST_ROLLBACK];
		(void)store_step_fn(st);
		(void)sqlite3_reset(st);
	}
}

/*
 * Run one single-statement change (its own transaction) whose parameters
 * are already bound; the number of rows it changed, or -1.
 */
int
sq_run_change(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	r = -1;

	if (s->batch != BATCH_NONE && batch_usable(s) == -1) {
		sq_done_with(st);
		return -1;
	}
	if (sq_step_done(s, st, what) == 0)
		r = sqlite3_changes(s->db);
	sq_done_with(st);
	return r;
}

/* Run every statement of sql (rows are discarded); 0 or -1. */
int
sq_exec(struct store *s, const char *sql, const char *what)
{
	sqlite3_stmt	*st;
	const char	*tail = sql;
	int		 rc;

	if (s->pg != NULL)
		return pgs_unsupported(s, what);
	while (*tail != '\0') {
		rc = sqlite3_prepare_v2(s->db, tail, -1, &st, &tail);
		if (rc != SQLITE_OK)
			return sq_fail(s, rc, what);
		if (st == NULL)		/* only blanks or a comment left */
			break;
		while ((rc = store_step_fn(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			(void)sq_fail(s, rc, what);
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
	}
	return 0;
}

/* The first column of the single row of sql, as an integer or text. */
int
sq_query_one(struct store *s, const char *sql, int64_t *ival, char *tval,
    size_t tlen)
{
	sqlite3_stmt	*st;
	const char	*t;
	int		 rc;

	if ((st = sq_prepare(s, sql, sql)) == NULL)
		return -1;
	if ((rc = store_step_fn(st)) != SQLITE_ROW) {
		(void)sq_fail(s, rc, sql);
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
	int		 waited, rc, persist = 1;

	for (waited = 0;; waited += 10) {
		if (sq_query_one(s, "PRAGMA journal_mode = WAL", NULL, mode,
		    sizeof(mode)) == 0)
			break;
		if (s->rc != SQLITE_BUSY || waited >= timeout_ms)
			return -1;
		(void)nanosleep(&pause, NULL);
	}
	if (strcmp(mode, "wal") != 0)
		return sq_set_error(s, SQLITE_ERROR, "journal_mode is %s, not wal",
		    mode);
	/*
	 * Keep the -wal and -shm files when the last writer closes.  A
	 * reader that may not create them (fcgiqctl or sqlite3 run by a
	 * member of fcgiq's group, the directory 0750) can read a WAL
	 * database only while both exist; without this they went with the
	 * last fcgiq, and a stopped service could not be inspected.
	 */
	if ((rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL,
	    &persist)) != SQLITE_OK)
		return sq_fail(s, rc, "persist_wal");
	return 0;
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
	int64_t		 now = mono_us(), step;

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

int
store_is_postgresql(const char *database)
{
	return pgs_is_conninfo(database);
}

/* store_open of a PostgreSQL database; its password never in the text. */
static struct store *
open_pg(struct store *s, const char *conninfo,
    const struct store_opts *opts, char *err, size_t errlen)
{
	if ((s->pg = calloc(1, sizeof(*s->pg))) == NULL) {
		(void)snprintf(err, errlen, "PostgreSQL: %s", strerror(errno));
		free(s);
		return NULL;
	}
	if (pgs_open(s, conninfo, opts->readonly) == -1) {
		(void)snprintf(err, errlen, "PostgreSQL: %s", s->errmsg);
		store_close(s);
		return NULL;
	}
	return s;
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
	if (store_is_postgresql(path))
		return open_pg(s, path, opts, err, errlen);
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
		(void)sq_fail(s, rc, "busy handler");
		goto fail_msg;
	}
	/* Journal mode is a property of the file: only a writer sets it. */
	if (!opts->readonly && set_wal(s, timeout) == -1)
		goto fail_msg;
	/* synchronous is per connection, so every connection sets it. */
	if (sq_exec(s, opts->durability == STORE_DURABILITY_NORMAL ?
	    "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	    "synchronous") == -1)
		goto fail_msg;
	if ((opts->readonly ? sq_check_schema(s) : sq_migrate(s)) == -1)
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
	pgs_close(s->pg);
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->st[i]);
	for (i = 0; i <= STORE_INSERT_LOG2; i++)
		sqlite3_finalize(s->ins[i]);
	/* Every statement is finalized, so this closes for real. */
	(void)sqlite3_close(s->db);
	free(s->dlq);
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

int
store_one_thread(void)
{
	return sqlite3_config(SQLITE_CONFIG_MULTITHREAD) == SQLITE_OK ? 0 : -1;
}

int64_t
store_now(void)
{
	struct timespec	ts;

	/* CLOCK_REALTIME cannot fail with a valid pointer. */
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * len bytes from the kernel's CSPRNG; 0 or -1.  Not OpenSSL's RAND_bytes:
 * its first call in a process loads openssl.cnf and seeds a DRBG, ~6 ms
 * here, and every fcgiqctl enqueue is a first call (that was most of the
 * enqueue-to-start latency bench/exec.sh measured).
 */
int
sq_random(void *buf, size_t len)
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

int
store_listen(struct store *s)
{
	return s->pg != NULL ? pgs_listen(s) : 0;
}

int
store_listen_fd(struct store *s)
{
	return s->pg != NULL ? pgs_listen_fd(s) : -1;
}

int
store_listen_take(struct store *s)
{
	return s->pg != NULL ? pgs_listen_take(s) : 0;
}

int
store_batch_begin(struct store *s)
{
	if (s->pg != NULL)
		return pgs_batch_begin(s);
	if (s->batch != BATCH_NONE)
		return sq_fail_arg(s, "batch: already open");
	if (run_plain(s, ST_BEGIN, "batch: begin") == -1)
		return -1;
	s->batch = BATCH_OPEN;
	return 0;
}

int
store_batch_end(struct store *s)
{
	int	failed = s->batch != BATCH_OPEN;

	if (s->pg != NULL)
		return pgs_batch_end(s);
	if (s->batch == BATCH_NONE)
		return sq_fail_arg(s, "batch: none open");
	if (!failed && batch_usable(s) == -1)
		failed = 1;
	s->batch = BATCH_NONE;
	if (!failed && run_plain(s, ST_COMMIT, "batch: commit") == 0)
		return 0;
	sq_rollback(s);
	return -1;
}
