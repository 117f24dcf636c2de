/*
 * test_store: unit tests of the store (queue/store*.c), each on a fresh
 * database in its own mktemp -d directory.  Faults are injected through
 * store_step_fn (store-sqlite.h); the crash and concurrency tests fork
 * processes that open their own connections (nothing SQLite is open
 * across a fork).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store-sqlite.h"
#include "tmpdir.h"

/* What migrations 4 -> 5 and 3 -> 4 added, taken away again: a version 4
 * and a version 3 database. */
#define UNDO_V5 "DROP INDEX jobs_dead;" \
	"DROP TABLE schedules;" \
	"ALTER TABLE jobs DROP COLUMN crashes;" \
	"DROP INDEX jobs_serial;" \
	"ALTER TABLE jobs DROP COLUMN serial_key;" \
	"ALTER TABLE queues DROP COLUMN breaker_state;" \
	"ALTER TABLE queues DROP COLUMN breaker_until;" \
	"ALTER TABLE queues DROP COLUMN breaker_failures;" \
	"ALTER TABLE queues DROP COLUMN breaker_pause;" \
	"ALTER TABLE queues DROP COLUMN breaker_trips;"
#define UNDO_V4 UNDO_V5 "DROP TABLE rejected;" \
	"ALTER TABLE jobs DROP COLUMN result_type;"
#define XSTR(x) #x
#define STR(x) XSTR(x)
#define SCHEMA_VERSION	5	/* STORE_SCHEMA_VERSION in store-schema.c */

struct fx {
	char		 dir[64];
	char		 path[128];
	struct store	*s;
};

/* --- plumbing --------------------------------------------------------- */

static struct store *
open_store(struct fx *f, const struct store_opts *o)
{
	char		 err[512];
	struct store	*s;

	s = store_open(f->path, o, err, sizeof(err));
	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static int
setup(void **state)
{
	struct fx	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "%s/test_store.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	(void)snprintf(f->path, sizeof(f->path), "%s/q.db", f->dir);
	*state = f;
	f->s = open_store(f, NULL);
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	store_step_fn = sqlite3_step;
	store_close(f->s);
	if (tmpdir_remove(f->dir) == -1)
		return -1;
	free(f);
	return 0;
}

static void
newjob(struct store_newjob *j, const char *queue, int priority,
    int64_t run_at, const char *body)
{
	memset(j, 0, sizeof(*j));
	j->queue = queue;
	j->priority = priority;
	j->max_attempts = 3;
	j->run_at = run_at;
	j->method = "POST";
	j->request_uri = "/hook";
	j->content_type = "text/plain";
	j->body = body;
	j->body_len = strlen(body);
}

/* Enqueue one job; its id goes to id. */
static void
enqueue1(struct store *s, const char *queue, int priority, int64_t run_at,
    int max_attempts, char id[STORE_ID_LEN + 1])
{
	struct store_newjob	j;

	newjob(&j, queue, priority, run_at, "payload");
	j.max_attempts = max_attempts;
	if (store_enqueue(s, &j, 1) != 0)
		fail_msg("enqueue: %s", store_error(s));
	assert_int_equal(j.outcome, STORE_ENQ_NEW);
	memcpy(id, j.id, STORE_ID_LEN + 1);
}

/* One integer from sql, run on db directly (not through the seam). */
static int64_t
qint(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("%s: no row: %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One text value from sql, malloc'd. */
static char *
qtext(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	const unsigned char *t;
	char		*v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("%s: no row: %s", sql, sqlite3_errmsg(db));
	t = sqlite3_column_text(st, 0);
	v = strdup(t != NULL ? (const char *)t : "(null)");
	sqlite3_finalize(st);
	assert_non_null(v);
	return v;
}

static void
qexec(sqlite3 *db, const char *sql)
{
	char	*e = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
		fail_msg("%s: %s", sql, e);	/* e leaks: the test is over */
}

/*
 * A statement on the store's database beside the seam, for the cases that
 * run on both engines: SQLite's handle here; test_store_pg.c, which
 * includes this file, points them at a connection of its own.
 */
#ifndef FX_EXEC
#define FX_EXEC(s, sql)	qexec(store_db(s), (sql))
#define FX_INT(s, sql)	qint(store_db(s), (sql))
#endif

static int64_t
count_jobs(struct store *s)
{
	return FX_INT(s, "SELECT count(*) FROM jobs");
}

/* Every row, every column that a transition can change, as text. */
static char *
snapshot(struct store *s)
{
	return qtext(store_db(s),
	    "SELECT count(*) || '|' || ifnull(group_concat(seq || ',' || id"
	    " || ',' || state || ',' || attempts || ',' || run_at || ','"
	    " || ifnull(started_at, '') || ',' || ifnull(finished_at, '')"
	    " || ',' || ifnull(lease_until, '') || ',' || ifnull(last_error, '')"
	    " || ',' || ifnull(hex(result), '') || ',' || hex(body), ';'), '')"
	    " FROM (SELECT * FROM jobs ORDER BY seq)");
}

static void
assert_unchanged(struct store *s, const char *before)
{
	char	*after = snapshot(s);

	assert_string_equal(after, before);
	free(after);
}

static struct store_job *
get(struct store *s, const char *id)
{
	struct store_job	*j;

	if (store_get(s, id, &j) != 1)
		fail_msg("get %s: %s", id, store_error(s));
	return j;
}

static void
assert_state(struct store *s, const char *id, enum store_state state)
{
	struct store_job	*j = get(s, id);

	assert_int_equal(j->state, state);
	store_job_free(j);
}

/*
 * Set a job's state and attempts behind the store's back; a running job's
 * lease ended long ago.
 */
static void
force(struct store *s, const char *id, const char *state, int attempts)
{
	sqlite3_stmt	*st;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), "UPDATE jobs SET "
	    "state = ?1, attempts = ?2, lease_until = CASE ?1 WHEN 'running'"
	    " THEN 1 END WHERE id = ?3", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, attempts);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* --- the step seam ---------------------------------------------------- */

static int	fault_at;	/* fail the fault_at'th step (1-based); 0: never */
static int	fault_rc;
static int	nsteps;

static int
fault_step(sqlite3_stmt *st)
{
	if (++nsteps == fault_at)
		return fault_rc;
	return sqlite3_step(st);
}

static void
fault_arm(int at, int rc)
{
	nsteps = 0;
	fault_at = at;
	fault_rc = rc;
	store_step_fn = fault_step;
}

/* --- opening, schema, migrations -------------------------------------- */

static void
test_open_pragmas(void **state)
{
	struct fx		*f = *state;
	struct store_opts	 o = { STORE_DURABILITY_NORMAL, 1234, 0 };
	sqlite3			*db = store_db(f->s);
	char			*t;

	t = qtext(db, "PRAGMA journal_mode");
	assert_string_equal(t, "wal");
	free(t);
	assert_int_equal(qint(db, "PRAGMA synchronous"), 2);	/* FULL */
	assert_int_equal(qint(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(qint(db,
	    "SELECT strict FROM pragma_table_list('jobs')"), 1);
	assert_int_equal(qint(db, "PRAGMA integrity_check = 1") , 0);
	store_close(f->s);

	f->s = open_store(f, &o);
	db = store_db(f->s);
	assert_int_equal(qint(db, "PRAGMA synchronous"), 1);	/* NORMAL */
}

static void
test_open_reopen_idempotent(void **state)
{
	struct fx		*f = *state;
	char			 id[STORE_ID_LEN + 1];
	struct store_job	*j;
	char			*before, *after;

	enqueue1(f->s, "default", 0, 0, 3, id);
	before = qtext(store_db(f->s), "SELECT group_concat(type || name"
	    " || ifnull(sql, ''), ';') FROM sqlite_schema");
	store_close(f->s);
	f->s = open_store(f, NULL);
	after = qtext(store_db(f->s), "SELECT group_concat(type || name"
	    " || ifnull(sql, ''), ';') FROM sqlite_schema");
	assert_string_equal(before, after);
	assert_int_equal(qint(store_db(f->s), "PRAGMA user_version"),
	    SCHEMA_VERSION);
	j = get(f->s, id);
	assert_int_equal(j->state, STORE_JOB_QUEUED);
	store_job_free(j);
	free(before);
	free(after);
}

static void
test_open_empty_file(void **state)
{
	struct fx	*f = *state;
	char		 p[160];
	int		 fd;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(unlink(f->path), 0);
	(void)snprintf(p, sizeof(p), "%s-wal", f->path);
	(void)unlink(p);
	(void)snprintf(p, sizeof(p), "%s-shm", f->path);
	(void)unlink(p);
	assert_true((fd = open(f->path, O_CREAT | O_WRONLY | O_EXCL, 0600))
	    >= 0);
	assert_int_equal(close(fd), 0);
	f->s = open_store(f, NULL);
	assert_int_equal(qint(store_db(f->s), "PRAGMA user_version"),
	    SCHEMA_VERSION);
	assert_int_equal(count_jobs(f->s), 0);
}

static void
test_open_errors(void **state)
{
	struct fx		*f = *state;
	struct store_opts	 ro = { 0, 0, 1 };
	char			 err[512], p[256];
	sqlite3			*db;
	FILE			*fp;

	/* No such directory: the caller creates it; the message says why. */
	(void)snprintf(p, sizeof(p), "%s/missing/q.db", f->dir);
	assert_null(store_open(p, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "No such file"));

	/* Read-only and missing. */
	(void)snprintf(p, sizeof(p), "%s/none.db", f->dir);
	assert_null(store_open(p, &ro, err, sizeof(err)));
	assert_true(err[0] != '\0');

	/* Not a database. */
	(void)snprintf(p, sizeof(p), "%s/junk.db", f->dir);
	assert_non_null(fp = fopen(p, "w"));
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(store_open(p, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a database"));

	/* A database without our schema, read-only: refused, untouched. */
	(void)snprintf(p, sizeof(p), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	qexec(db, "CREATE TABLE t (x)");
	sqlite3_close(db);
	assert_null(store_open(p, &ro, err, sizeof(err)));
	assert_non_null(strstr(err, "no fcgiq schema"));

	/* A schema newer than ours: refused both ways, not migrated. */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	qexec(db, "PRAGMA user_version = 99");
	sqlite3_close(db);
	assert_null(store_open(f->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
	assert_null(store_open(f->path, &ro, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(qint(db, "PRAGMA user_version"), 99);
	qexec(db, "PRAGMA user_version = " STR(SCHEMA_VERSION));
	sqlite3_close(db);
	f->s = open_store(f, NULL);
}

/*
 * The start of a migration test: one waiting job in the current schema,
 * the store closed, and undo run on a plain connection to turn the file
 * back into an older version; the caller looks, then closes it.
 */
static sqlite3 *
older_schema(struct fx *f, char *id, const char *undo)
{
	sqlite3		*db;

	enqueue1(f->s, "default", 0, 0, 3, id);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	qexec(db, undo);
	return db;
}

/* The store opened again on that file: migrated to the current version. */
static sqlite3 *
migrated(struct fx *f)
{
	sqlite3		*db;

	f->s = open_store(f, NULL);
	db = store_db(f->s);
	assert_int_equal(qint(db, "PRAGMA user_version"), SCHEMA_VERSION);
	return db;
}

/* A version 1 database (no queues table) with jobs in it is migrated on
 * open, and keeps its jobs. */
static void
test_migrate_v1(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1];
	sqlite3		*db;

	db = older_schema(f, id, UNDO_V4 "DROP TABLE queues;"
	    " PRAGMA user_version = 1");
	sqlite3_close(db);
	db = migrated(f);
	assert_int_equal(qint(db,
	    "SELECT count(*) FROM sqlite_schema WHERE name = 'queues'"), 1);
	assert_state(f->s, id, STORE_JOB_QUEUED);
	assert_int_equal(store_paused(f->s, "default"), 0);
}

/* Opcodes OpenEphemeral in the program of sql: temporary b-trees. */
static int
temp_btrees(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	char		 explain[4096];
	int		 n = 0;

	(void)snprintf(explain, sizeof(explain), "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", explain, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(st, 1),
		    "OpenEphemeral") == 0)
			n++;
	sqlite3_finalize(st);
	return n;
}

#define V2_CHECK "CHECK (state IN ('queued', 'running'," \
	"                    'retry', 'done', 'dead', 'cancelled'))"

/* A version 2 database (IN-list CHECK, jobs_finished on state) with jobs
 * in it is migrated on open: the CHECK still refuses an unknown state,
 * the file is sound, the jobs are kept, and writes on the migrating
 * connection itself no longer build temporary b-trees. */
static void
test_migrate_v2(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1], *sql;
	const char	*done = "UPDATE jobs SET state = 'done' WHERE seq = 1";
	sqlite3		*db;

	db = older_schema(f, id, UNDO_V4 "PRAGMA writable_schema = ON;"
	    "UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (state ="
	    " ''queued'' OR state = ''running'' OR state = ''retry'' OR"
	    " state = ''done'' OR state = ''dead'' OR state = ''cancelled'')',"
	    " '" "CHECK (state IN (''queued'', ''running'',                    "
	    "''retry'', ''done'', ''dead'', ''cancelled''))"
	    "') WHERE name = 'jobs';"
	    "PRAGMA writable_schema = RESET;"
	    "DROP INDEX jobs_finished;"
	    "CREATE INDEX jobs_finished ON jobs (finished_at)"
	    "  WHERE state IN ('done', 'dead', 'cancelled');"
	    "PRAGMA user_version = 2");
	sql = qtext(db, "SELECT sql FROM sqlite_schema WHERE name = 'jobs'");
	assert_non_null(strstr(sql, V2_CHECK));	/* really a v2 table */
	free(sql);
	assert_int_equal(temp_btrees(db, done), 3);
	sqlite3_close(db);

	db = migrated(f);
	assert_int_equal(temp_btrees(db, done), 0);
	assert_int_equal(temp_btrees(db, "INSERT INTO jobs (id, queue, state,"
	    " max_attempts, created_at, run_at, body) VALUES"
	    " ('x', 'q', 'queued', 1, 0, 0, x'')"), 0);
	sql = qtext(db, "SELECT sql FROM sqlite_schema WHERE name = 'jobs'");
	assert_null(strstr(sql, V2_CHECK));
	free(sql);
	sql = qtext(db, "PRAGMA integrity_check");
	assert_string_equal(sql, "ok");
	free(sql);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE jobs SET state = 'gone'",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(db), "CHECK constraint failed"));
	assert_state(f->s, id, STORE_JOB_QUEUED);
	assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name = 'jobs_finished' AND sql LIKE '%IS NOT NULL'"), 1);
}

/* A version 3 database with a finished job in it is migrated on open: the
 * job keeps its result, has no result type, and the rejected table is
 * there, empty. */
static void
test_migrate_v3(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1];
	sqlite3		*db;

	db = older_schema(f, id, UNDO_V4 "UPDATE jobs SET state = 'done',"
	    " finished_at = 1, result = CAST('ok' AS BLOB);"
	    " PRAGMA user_version = 3");
	sqlite3_close(db);
	db = migrated(f);
	assert_int_equal(qint(db, "SELECT count(*) FROM jobs WHERE"
	    " result = CAST('ok' AS BLOB) AND result_type IS NULL"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM rejected"), 0);
	assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name = 'rejected_queue'"), 1);
	assert_state(f->s, id, STORE_JOB_DONE);
}

/* A version 4 database with a dead job in it is migrated on open: the
 * job has no serial key and no crash, the schedules table is there,
 * empty, and the dead jobs' index lists the job. */
static void
test_migrate_v4(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1];
	sqlite3		*db;

	db = older_schema(f, id, UNDO_V5 "UPDATE jobs SET state = 'dead',"
	    " finished_at = 1; PRAGMA user_version = 4");
	sqlite3_close(db);
	db = migrated(f);
	assert_int_equal(qint(db, "SELECT count(*) FROM jobs WHERE"
	    " serial_key IS NULL AND crashes = 0"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM schedules"), 0);
	assert_int_equal(qint(db, "SELECT count(*) FROM jobs INDEXED BY"
	    " jobs_dead WHERE state = 'dead' AND queue = 'default'"), 1);
	assert_state(f->s, id, STORE_JOB_DEAD);
}

/* store_rejected_list's callback: count rows, keep the newest's reason. */
static void
rejected_seen(void *arg, const struct store_rejected *r)
{
	int *n = arg;

	if (*n == 0)
		assert_string_equal(r->reason, "no secret matched: X");
	(*n)++;
}

/* Rejected requests: each store_reject keeps at most keep rows of each
 * of its queues, newest first out of the listing; a body keeps its first
 * KiB. */
static void
test_rejected_bounded(void **state)
{
	struct fx		*f = *state;
	struct store_rejected	 rows[3];
	static char		 body[4000];
	sqlite3			*db = store_db(f->s);
	int			 i, n;

	memset(rows, 0, sizeof(rows));
	memset(body, 'b', sizeof(body));
	for (i = 0; i < 3; i++) {
		rows[i].at = 1000 + i;
		rows[i].queue = i < 2 ? "gh" : "other";
		rows[i].reason = "missing header: X";
		rows[i].headers = "{}";
		rows[i].body_length = sizeof(body);
		rows[i].body_head = body;
		rows[i].head_len = sizeof(body);
		rows[i].keep = 5;
	}
	for (i = 0; i < 10; i++)
		assert_int_equal(store_reject(f->s, rows, 3), 0);
	assert_int_equal(qint(db, "SELECT count(*) FROM rejected WHERE"
	    " queue = 'gh'"), 5);
	assert_int_equal(qint(db, "SELECT count(*) FROM rejected WHERE"
	    " queue = 'other'"), 5);
	assert_int_equal(qint(db, "SELECT max(length(body_head)) FROM"
	    " rejected"), STORE_REJECTED_HEAD);
	assert_int_equal(qint(db, "SELECT min(body_length) FROM rejected"),
	    (int)sizeof(body));
	/* A smaller keep takes effect at the next write. */
	rows[0].keep = 2;
	rows[0].reason = "no secret matched: X";
	assert_int_equal(store_reject(f->s, rows, 1), 0);
	assert_int_equal(qint(db, "SELECT count(*) FROM rejected WHERE"
	    " queue = 'gh'"), 2);
	n = 0;
	assert_int_equal(store_rejected_list(f->s, "gh", 10, rejected_seen,
	    &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_rejected_list(f->s, NULL, 100, rejected_seen,
	    &n), 0);
	assert_int_equal(n, 7);
	rows[0].keep = 0;
	assert_int_equal(store_reject(f->s, rows, 1), 0);
	assert_int_equal(qint(db, "SELECT count(*) FROM rejected WHERE"
	    " queue = 'gh'"), 0);
	rows[0].queue = NULL;
	assert_int_equal(store_reject(f->s, rows, 1), -1);
}

static void
test_open_readonly(void **state)
{
	struct fx		*f = *state;
	struct store_opts	 ro = { 0, 0, 1 };
	struct store		*r;
	struct store_newjob	 nj;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];

	enqueue1(f->s, "default", 0, 0, 3, id);
	r = open_store(f, &ro);
	assert_int_equal(store_get(r, id, &j), 1);
	assert_string_equal(j->id, id);
	store_job_free(j);
	assert_int_equal(store_count_waiting(r, "default"), 1);
	newjob(&nj, "default", 0, 0, "x");
	assert_int_equal(store_enqueue(r, &nj, 1), -1);
	assert_int_equal(store_errcode(r), STORE_EREADONLY);
	assert_int_equal(store_claim(r, "default", store_now(), 1000, &j), -1);
	assert_null(j);
	store_close(r);
	assert_int_equal(count_jobs(f->s), 1);
}

/* SQLite opens every file with O_CLOEXEC: handlers inherit none of them. */
static void
test_open_cloexec(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1], link[64], target[PATH_MAX];
	char		 real[PATH_MAX];
	struct dirent	*de;
	DIR		*d;
	ssize_t		 n;
	int		 found = 0, fd;

	enqueue1(f->s, "default", 0, 0, 3, id);	/* -wal and -shm open too */
	assert_non_null(realpath(f->dir, real));
	assert_non_null(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		if ((n = readlink(link, target, sizeof(target) - 1)) == -1)
			continue;
		target[n] = '\0';
		if (strncmp(target, real, strlen(real)) != 0)
			continue;
		found++;
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	}
	(void)closedir(d);
	assert_true(found >= 3);	/* the database, -wal, -shm */
}

/*
 * The -wal and -shm files outlive the last writer (SQLITE_FCNTL_PERSIST_WAL),
 * so that a reader who may not create them in the directory can still
 * open the database read-only when fcgiq is stopped.
 */
static void
test_open_wal_files_kept(void **state)
{
	struct fx		*f = *state;
	struct store_opts	 ro = { 0 };
	char			 id[STORE_ID_LEN + 1], p[160];

	enqueue1(f->s, "default", 0, 0, 3, id);
	store_close(f->s);
	f->s = NULL;
	(void)snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(access(p, F_OK), 0);
	(void)snprintf(p, sizeof(p), "%s-shm", f->path);
	assert_int_equal(access(p, F_OK), 0);
	ro.readonly = 1;
	f->s = open_store(f, &ro);
	assert_int_equal(count_jobs(f->s), 1);
}

/* Every step of creating the schema fails cleanly and leaves nothing. */
static void
test_open_migration_faults(void **state)
{
	struct fx	*f = *state;
	struct store	*s;
	sqlite3		*db;
	char		 err[512], p[256];
	int		 at;

	/*
	 * Odd steps fail with SQLITE_FULL, even ones with SQLITE_BUSY: the
	 * first step, journal_mode = WAL, is retried on SQLITE_BUSY.
	 */
	(void)snprintf(p, sizeof(p), "%s/m.db", f->dir);
	for (at = 1;; at++) {
		fault_arm(at, at % 2 ? SQLITE_FULL : SQLITE_BUSY);
		err[0] = '\0';
		s = store_open(p, NULL, err, sizeof(err));
		store_step_fn = sqlite3_step;
		if (s != NULL)
			break;
		assert_true(err[0] != '\0');
		assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
		assert_int_equal(qint(db, "PRAGMA user_version"), 0);
		assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_schema"),
		    0);
		sqlite3_close(db);
	}
	assert_true(at > 8);	/* the pragmas and each CREATE were hit */
	assert_int_equal(qint(store_db(s), "PRAGMA user_version"),
	    SCHEMA_VERSION);
	store_close(s);
}

/*
 * Each SQLite result code reaches the caller as the store's kind of error,
 * grouped as the responder answers them (busy, full, read-only, I/O).
 */
static void
test_errcodes(void **state)
{
	static const struct {
		int	rc;
		int	want;
	} map[] = {
		{ SQLITE_BUSY, STORE_EBUSY }, { SQLITE_LOCKED, STORE_EBUSY },
		{ SQLITE_FULL, STORE_EFULL }, { SQLITE_READONLY, STORE_EREADONLY },
		{ SQLITE_PERM, STORE_EREADONLY }, { SQLITE_IOERR, STORE_EIO },
		{ SQLITE_IOERR_WRITE, STORE_EIO }, { SQLITE_CANTOPEN, STORE_EIO },
		{ SQLITE_CORRUPT, STORE_EIO }, { SQLITE_NOTADB, STORE_EIO },
		{ SQLITE_NOMEM, STORE_ENOMEM },
		{ SQLITE_CONSTRAINT, STORE_ECONSTRAINT },
		{ SQLITE_ERROR, STORE_EOTHER }, { SQLITE_INTERNAL, STORE_EOTHER },
	};
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	size_t			 i;

	enqueue1(f->s, "default", 0, 0, 3, id);
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		fault_arm(1, map[i].rc);
		assert_int_equal(store_get(f->s, id, &j), -1);
		assert_int_equal(store_errcode(f->s), map[i].want);
		assert_non_null(strstr(store_error(f->s), "get: "));
	}
	store_step_fn = sqlite3_step;
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_QUEUED, 0), -1);
	assert_int_equal(store_errcode(f->s), STORE_EINVAL);
}

/* Each state's name parses back to it; the database keeps these names. */
static void
test_state_names(void **state)
{
	static const char *const names[] = { "queued", "running", "retry",
	    "done", "dead", "cancelled" };
	enum store_state	 st;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(store_state_parse(names[i], &st), 0);
		assert_int_equal(st, (enum store_state)i);
		assert_string_equal(store_state_name(st), names[i]);
	}
	assert_int_equal(store_state_parse("gone", &st), -1);
	assert_int_equal(store_state_parse("", &st), -1);
	assert_string_equal(store_state_name(STORE_JOB_ANY), "?");
	assert_string_equal(store_state_name(STORE_JOB_CANCELLED + 1), "?");
}

/* --- ids and enqueue --------------------------------------------------- */

/* base64url's alphabet in ASCII order, as ids use it. */
static const char	 id_chars[] = "-0123456789"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/* An id of the layout before this one: 8 characters of time, all 48 bits
 * (so '-' first until 2109), then the largest 22 characters there were. */
static void
old_id(char id[STORE_ID_LEN + 1], int64_t ms)
{
	uint64_t	t = (uint64_t)ms;
	int		i;

	for (i = 7; i >= 0; i--) {
		id[i] = id_chars[t & 63];
		t >>= 6;
	}
	memset(id + 8, 'z', STORE_ID_LEN - 8);
	id[STORE_ID_LEN] = '\0';
}

/* The creation time a new id carries (store.h). */
static int64_t
id_time(const char *id)
{
	int64_t	t;
	int	i;

	t = strchr(id_chars, id[0]) - id_chars - 1;
	for (i = 1; i < 8; i++)
		t = t << 6 | (strchr(id_chars, id[i]) - id_chars);
	return t;
}

/*
 * New ids: 30 characters, a letter or digit first, strictly increasing
 * in a burst (one batch, then one job at a time), the creation time in
 * their prefix, and after every id of the old layout, in C and in SQL.
 */
static void
test_ids(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 jobs[200], one[200];
	struct store_job	*j = NULL;
	const char		*prev = "";
	char			 old[STORE_ID_LEN + 1], sql[160];
	int64_t			 before, after, t;
	sqlite3_stmt		*st;
	size_t			 i, k;

	before = store_now();
	for (i = 0; i < 200; i++)
		newjob(&jobs[i], "default", 0, 0, "b");
	assert_int_equal(store_enqueue(f->s, jobs, 200), 0);
	for (i = 0; i < 200; i++) {
		newjob(&one[i], "default", 0, 0, "b");
		assert_int_equal(store_enqueue(f->s, &one[i], 1), 0);
	}
	after = store_now();
	for (i = 0; i < 400; i++) {
		const char *id = i < 200 ? jobs[i].id : one[i - 200].id;

		assert_int_equal(strlen(id), STORE_ID_LEN);
		assert_int_equal(strspn(id, id_chars), STORE_ID_LEN);
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789", id[0]));
		assert_true(strcmp(id, prev) > 0);
		/* 1024 ids a millisecond before the time part runs ahead. */
		t = id_time(id);
		assert_true(t >= before && t <= after + 1);
		old_id(old, t);
		assert_true(strcmp(id, old) > 0);
		prev = id;
	}
	assert_int_equal(count_jobs(f->s), 400);
	/* Random after the sequence number: ids of one millisecond differ
	 * there, not only in their counter. */
	for (i = 1; i < 200; i++)
		for (k = 0; k < i; k++)
			assert_memory_not_equal(jobs[i].id + 10, jobs[k].id + 10,
			    STORE_ID_LEN - 10);
	/* The last id the old layout could make with its '-' still sorts
	 * first. */
	old_id(old, ((int64_t)1 << 42) - 1);
	assert_int_equal(old[0], '-');
	assert_true(strcmp(jobs[0].id, old) > 0);

	/* Old ids stored before the upgrade: found, and ORDER BY id is
	 * still the order of creation. */
	old_id(old, before - 1000);
	snprintf(sql, sizeof(sql), "UPDATE jobs SET id = '%s' WHERE seq = 1",
	    old);
	assert_int_equal(sqlite3_exec(store_db(f->s), sql, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(store_get(f->s, old, &j), 1);
	assert_string_equal(j->id, old);
	store_job_free(j);
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
	    "SELECT count(*) FROM (SELECT seq, row_number() OVER (ORDER BY id)"
	    " AS by_id, row_number() OVER (ORDER BY seq) AS by_seq FROM jobs)"
	    " WHERE by_id = by_seq", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 400);
	sqlite3_finalize(st);
	/* A job stored with an id of before the time prefix is found by it. */
	assert_int_equal(sqlite3_exec(store_db(f->s), "UPDATE jobs SET id = "
	    "'AbCdEfGhIjKlMnOpQr_-09' WHERE seq = 2", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(store_get(f->s, "AbCdEfGhIjKlMnOpQr_-09", &j), 1);
	assert_string_equal(j->id, "AbCdEfGhIjKlMnOpQr_-09");
	store_job_free(j);
}

static void
test_enqueue_fields(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj[3];
	struct store_job	*j;
	static const char	 bin[] = { 'a', 0, 'b', (char)0xff };
	int64_t			 before = store_now(), later = before + 60000;

	newjob(&nj[0], "mail", 7, later, "hello");
	nj[0].max_attempts = 9;
	nj[0].idempotency_key = "k1";
	nj[0].query_string = "a=1";
	nj[0].remote_addr = "192.0.2.1";
	nj[0].headers = "{\"HTTP_X\":\"y\"}";
	memset(&nj[1], 0, sizeof(nj[1]));	/* optional fields NULL */
	nj[1].queue = "mail";
	nj[1].max_attempts = 1;
	newjob(&nj[2], "mail", 0, 0, "");
	nj[2].body = bin;
	nj[2].body_len = sizeof(bin);
	assert_int_equal(store_enqueue(f->s, nj, 3), 0);
	assert_int_equal(store_enqueue(f->s, nj, 0), 0);

	j = get(f->s, nj[0].id);
	assert_string_equal(j->queue, "mail");
	assert_int_equal(j->state, STORE_JOB_QUEUED);
	assert_int_equal(j->priority, 7);
	assert_int_equal(j->attempts, 0);
	assert_int_equal(j->max_attempts, 9);
	assert_true(j->created_at >= before && j->created_at <= store_now());
	assert_int_equal(j->run_at, later);
	assert_int_equal(j->started_at, 0);
	assert_int_equal(j->finished_at, 0);
	assert_int_equal(j->lease_until, 0);
	assert_string_equal(j->idempotency_key, "k1");
	assert_string_equal(j->method, "POST");
	assert_string_equal(j->request_uri, "/hook");
	assert_string_equal(j->query_string, "a=1");
	assert_string_equal(j->content_type, "text/plain");
	assert_string_equal(j->remote_addr, "192.0.2.1");
	assert_string_equal(j->headers, "{\"HTTP_X\":\"y\"}");
	assert_int_equal(j->body_len, 5);
	assert_memory_equal(j->body, "hello", 5);
	assert_null(j->result);
	assert_null(j->last_error);
	store_job_free(j);

	/* No body and no optional field: empty blob, NULLs, run_at now. */
	j = get(f->s, nj[1].id);
	assert_null(j->method);
	assert_null(j->headers);
	assert_null(j->idempotency_key);
	assert_non_null(j->body);
	assert_int_equal(j->body_len, 0);
	assert_int_equal(j->run_at, j->created_at);
	store_job_free(j);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE typeof(body) = 'blob' AND length(body) = 0"), 1);

	j = get(f->s, nj[2].id);
	assert_int_equal(j->body_len, sizeof(bin));
	assert_memory_equal(j->body, bin, sizeof(bin));
	store_job_free(j);

	assert_int_equal(store_get(f->s, "AAAAAAAAAAAAAAAAAAAAAA", &j), 0);
	assert_null(j);
}

static void
test_enqueue_invalid(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj[3];

	newjob(&nj[0], "default", 0, 0, "a");
	newjob(&nj[1], "default", 0, 0, "b");
	newjob(&nj[2], "default", 0, 0, "c");
	nj[2].max_attempts = 0;
	assert_int_equal(store_enqueue(f->s, nj, 3), -1);
	assert_true(store_error(f->s)[0] != '\0');
	assert_int_equal(count_jobs(f->s), 0);
	assert_string_equal(nj[0].id, "");

	nj[2].max_attempts = 1;
	nj[1].queue = NULL;
	assert_int_equal(store_enqueue(f->s, nj, 3), -1);
	nj[1].queue = "default";
	nj[1].body = NULL;
	assert_int_equal(store_enqueue(f->s, nj, 3), -1);
	assert_int_equal(count_jobs(f->s), 0);

	/* A failure inside SQLite, on the last job's INSERT (begin, two
	 * rows, one row): nothing of the batch. */
	nj[1].body = "b";
	nj[2].idempotency_key = "k";
	fault_arm(3, SQLITE_CONSTRAINT);
	assert_int_equal(store_enqueue(f->s, nj, 3), -1);
	assert_int_equal(store_errcode(f->s), STORE_ECONSTRAINT);
	store_step_fn = sqlite3_step;
	assert_int_equal(count_jobs(f->s), 0);
	assert_int_equal(store_enqueue(f->s, nj, 3), 0);
	assert_int_equal(count_jobs(f->s), 3);
}

static void
test_idempotency(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 a, b[4];
	int64_t			 n;

	newjob(&a, "default", 0, 0, "same");
	a.idempotency_key = "evt-1";
	assert_int_equal(store_enqueue(f->s, &a, 1), 0);
	assert_int_equal(a.outcome, STORE_ENQ_NEW);

	/* Later batch: duplicate, conflict, other queue, within the batch. */
	newjob(&b[0], "default", 0, 0, "same");
	b[0].idempotency_key = "evt-1";
	newjob(&b[1], "default", 0, 0, "different");
	b[1].idempotency_key = "evt-1";
	newjob(&b[2], "other", 0, 0, "different");
	b[2].idempotency_key = "evt-1";
	newjob(&b[3], "other", 0, 0, "another");
	b[3].idempotency_key = "evt-1";
	assert_int_equal(store_enqueue(f->s, b, 4), 0);
	assert_int_equal(b[0].outcome, STORE_ENQ_DUPLICATE);
	assert_string_equal(b[0].id, a.id);
	assert_int_equal(b[1].outcome, STORE_ENQ_CONFLICT);
	assert_string_equal(b[1].id, a.id);
	assert_int_equal(b[2].outcome, STORE_ENQ_NEW);
	assert_string_not_equal(b[2].id, a.id);
	assert_int_equal(b[3].outcome, STORE_ENQ_CONFLICT);
	assert_string_equal(b[3].id, b[2].id);
	assert_int_equal(count_jobs(f->s), 2);

	/* Both new in one batch: the second is the first's duplicate. */
	newjob(&b[0], "default", 0, 0, "x");
	b[0].idempotency_key = "evt-2";
	newjob(&b[1], "default", 0, 0, "x");
	b[1].idempotency_key = "evt-2";
	newjob(&b[2], "default", 0, 0, "no key");
	newjob(&b[3], "default", 0, 0, "no key");
	assert_int_equal(store_enqueue(f->s, b, 4), 0);
	assert_int_equal(b[0].outcome, STORE_ENQ_NEW);
	assert_int_equal(b[1].outcome, STORE_ENQ_DUPLICATE);
	assert_string_equal(b[1].id, b[0].id);
	assert_int_equal(b[2].outcome, STORE_ENQ_NEW);
	assert_int_equal(b[3].outcome, STORE_ENQ_NEW);	/* no key: no check */
	n = count_jobs(f->s);
	assert_int_equal(n, 5);

	/* A batch whose first keyed job repeats a stored key: the jobs
	 * that repeat it after it in the batch are decided against the
	 * stored job, not against the one left out. */
	{
		struct store_newjob c[5];

		newjob(&c[0], "default", 0, 0, "same");
		c[0].idempotency_key = "evt-1";
		newjob(&c[1], "default", 0, 0, "same");
		c[1].idempotency_key = "evt-1";
		newjob(&c[2], "default", 0, 0, "no key");
		newjob(&c[3], "default", 0, 0, "new");
		c[3].idempotency_key = "evt-3";
		newjob(&c[4], "default", 0, 0, "different");
		c[4].idempotency_key = "evt-1";
		assert_int_equal(store_enqueue(f->s, c, 5), 0);
		assert_int_equal(c[0].outcome, STORE_ENQ_DUPLICATE);
		assert_string_equal(c[0].id, a.id);
		assert_int_equal(c[1].outcome, STORE_ENQ_DUPLICATE);
		assert_string_equal(c[1].id, a.id);
		assert_int_equal(c[2].outcome, STORE_ENQ_NEW);
		assert_int_equal(c[3].outcome, STORE_ENQ_NEW);
		assert_int_equal(c[4].outcome, STORE_ENQ_CONFLICT);
		assert_string_equal(c[4].id, a.id);
		n += 2;
		assert_int_equal(count_jobs(f->s), n);
		/* evt-3 went in: now a replay. */
		assert_int_equal(store_enqueue(f->s, &c[3], 1), 0);
		assert_int_equal(c[3].outcome, STORE_ENQ_DUPLICATE);
		assert_int_equal(count_jobs(f->s), n);
	}

	/* The key outlives the job's run: still a duplicate once done. */
	force(f->s, a.id, "done", 1);
	assert_int_equal(store_enqueue(f->s, &a, 1), 0);
	assert_int_equal(a.outcome, STORE_ENQ_DUPLICATE);
	assert_int_equal(count_jobs(f->s), n);
}

/* --- claim and the lifecycle ------------------------------------------- */

static void
test_claim_order(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1], c[STORE_ID_LEN + 1], d[STORE_ID_LEN + 1], e[STORE_ID_LEN + 1], o[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "q", 0, t - 1000, 3, a);
	enqueue1(f->s, "q", 5, t - 500, 3, b);
	enqueue1(f->s, "q", 5, t - 2000, 3, c);
	enqueue1(f->s, "q", 0, t - 1000, 3, d);	/* a's twin, later */
	enqueue1(f->s, "q", 9, t + 60000, 3, e);	/* not yet due */
	enqueue1(f->s, "other", 9, t - 9000, 3, o);

	const char *want[] = { c, b, a, d };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 1);
		assert_string_equal(j->id, want[i]);
		assert_int_equal(j->state, STORE_JOB_RUNNING);
		assert_string_equal(j->queue, "q");
		store_job_free(j);
	}
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 0);
	assert_null(j);
	assert_int_equal(store_claim(f->s, "q", t + 60000, 1000, &j), 1);
	assert_string_equal(j->id, e);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "nosuch", t, 1000, &j), 0);
	assert_int_equal(store_claim(f->s, "other", t, 1000, &j), 1);
	assert_string_equal(j->id, o);
	store_job_free(j);
}

static char	*plan_of(sqlite3 *, const char *);

/* Enqueue one job of queue q with serial key key (NULL: none) into id. */
static void
enqueue_serial(struct store *s, const char *q, const char *key,
    char id[STORE_ID_LEN + 1])
{
	struct store_newjob	j;

	newjob(&j, q, 0, 0, "payload");
	j.serial_key = key;
	assert_int_equal(store_enqueue(s, &j, 1), 0);
	memcpy(id, j.id, STORE_ID_LEN + 1);
}

/* Claim the next job of q at t: its id into id, or "" when none. */
static void
claim_id(struct store *s, const char *q, int64_t t, char id[STORE_ID_LEN + 1])
{
	struct store_job	*j;
	int			 rc;

	rc = store_claim(s, q, t, 60000, &j);
	assert_int_not_equal(rc, -1);
	id[0] = '\0';
	if (rc == 1)
		memcpy(id, j->id, STORE_ID_LEN + 1);
	store_job_free(j);
}

/*
 * serialize_by: a job is claimed only when no earlier job of its queue and
 * serial key is unfinished (queued, retry or running); other keys and
 * jobs without a key go on; a job waiting to retry holds the later ones
 * back, a dead or cancelled one lets them go.
 */
static void
test_serial_claim(void **state)
{
	struct fx	*f = *state;
	sqlite3		*db = store_db(f->s);
	char		 a1[STORE_ID_LEN + 1], a2[STORE_ID_LEN + 1];
	char		 a3[STORE_ID_LEN + 1], b1[STORE_ID_LEN + 1];
	char		 n1[STORE_ID_LEN + 1], u1[STORE_ID_LEN + 1];
	char		 u2[STORE_ID_LEN + 1], o1[STORE_ID_LEN + 1];
	char		 got[STORE_ID_LEN + 1], *p;
	int64_t		 t = store_now() + 1000;
	int		 dead;

	enqueue_serial(f->s, "q", "A", a1);
	enqueue_serial(f->s, "q", "A", a2);
	enqueue_serial(f->s, "q", "B", b1);
	enqueue_serial(f->s, "q", NULL, n1);
	enqueue_serial(f->s, "q", "A", a3);
	enqueue_serial(f->s, "q", "", u1);	/* no key: its own */
	enqueue_serial(f->s, "q", "", u2);
	enqueue_serial(f->s, "other", "A", o1);	/* keys are per queue */

	claim_id(f->s, "q", t, got);
	assert_string_equal(got, a1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, b1);		/* a2 waits for a1 */
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, n1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, u1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, u2);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, "");
	claim_id(f->s, "other", t, got);
	assert_string_equal(got, o1);
	/* Without a key: "unkeyed " and the job's id, unlike any other. */
	assert_int_equal(qint(db, "SELECT count(DISTINCT serial_key) FROM jobs"
	    " WHERE serial_key LIKE 'unkeyed %' AND serial_key = 'unkeyed ' ||"
	    " id"), 2);
	assert_int_equal(qint(db, "SELECT count(*) FROM jobs"
	    " WHERE serial_key IS NULL"), 1);

	/* a1 fails: waiting to retry, it still holds a2 and a3. */
	assert_int_equal(store_finish_failed(f->s, a1, 1, "boom", 0, 1, 1,
	    t, &dead), 1);
	assert_int_equal(dead, 0);
	claim_id(f->s, "q", t + 10000000, got);
	assert_string_equal(got, a1);		/* due again: a1, not a2 */
	claim_id(f->s, "q", t + 10000000, got);
	assert_string_equal(got, "");
	/* Dead: a2 goes, a3 still behind it. */
	assert_int_equal(store_finish_failed(f->s, a1, 2, "boom", 1, 1, 1,
	    t, &dead), 1);
	assert_int_equal(dead, 1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, a2);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, "");
	assert_int_equal(store_finish_done(f->s, a2, 1, "ok", 2, t), 1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, a3);

	/* A cancelled job lets the next go. */
	enqueue_serial(f->s, "q", "C", a1);
	enqueue_serial(f->s, "q", "C", a2);
	assert_int_equal(store_cancel(f->s, a1, t), STORE_CANCEL_DONE);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, a2);

	p = plan_of(db, "SELECT 1 FROM jobs INDEXED BY jobs_serial");
	print_message("# serial probe plan:\n%s", p);
	assert_non_null(strstr(p, "COVERING INDEX jobs_serial (queue=? AND "
	    "serial_key=? AND seq<?)"));
	free(p);
}

/*
 * Many jobs held back behind one key: the claim reads a window of them,
 * then walks the keys' first jobs (one search per key), and finds the
 * job of another key behind them; in claim order otherwise.
 */
static void
test_serial_many(void **state)
{
	struct fx	*f = *state;
	sqlite3		*db = store_db(f->s);
	char		 a1[STORE_ID_LEN + 1], id[STORE_ID_LEN + 1];
	char		 b1[STORE_ID_LEN + 1], c1[STORE_ID_LEN + 1];
	char		 got[STORE_ID_LEN + 1], *p;
	int64_t		 t = store_now() + 1000;
	int		 i;

	enqueue_serial(f->s, "q", "A", a1);
	for (i = 0; i < 200; i++)
		enqueue_serial(f->s, "q", "A", id);
	enqueue_serial(f->s, "q", "B", b1);
	enqueue_serial(f->s, "q", "C", c1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, a1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, b1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, c1);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, "");
	/* Paused: nothing, by either path. */
	assert_int_equal(store_finish_done(f->s, a1, 1, "ok", 2, t), 1);
	assert_int_equal(store_pause(f->s, "q", 1), 0);
	claim_id(f->s, "q", t, got);
	assert_string_equal(got, "");
	assert_int_equal(store_pause(f->s, "q", 0), 0);
	claim_id(f->s, "q", t, got);
	assert_int_not_equal(got[0], '\0');

	p = plan_of(db, "WITH RECURSIVE k(key)");
	print_message("# serial heads plan:\n%s", p);
	assert_non_null(strstr(p, "jobs_serial (queue=? AND serial_key>?)"));
	assert_non_null(strstr(p, "jobs_serial (queue=? AND serial_key=?)"));
	assert_null(strstr(p, "SCAN jobs\n"));
	free(p);
}

static void
test_lifecycle_done(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j, *g;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "default", 0, 0, 3, id);
	assert_state(f->s, id, STORE_JOB_QUEUED);
	assert_int_equal(store_claim(f->s, "default", t + 10, 30000, &j), 1);
	assert_string_equal(j->id, id);
	assert_int_equal(j->state, STORE_JOB_RUNNING);
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->started_at, t + 10);
	assert_int_equal(j->lease_until, t + 10 + 30000);
	assert_memory_equal(j->body, "payload", 7);
	g = get(f->s, id);	/* the claim returned what it stored */
	assert_int_equal(g->state, STORE_JOB_RUNNING);
	assert_int_equal(g->lease_until, j->lease_until);
	store_job_free(g);

	assert_int_equal(store_extend(f->s, id, 1, t + 90000), 1);
	assert_int_equal(store_finish_done(f->s, id, 1, "ok\n", 3, t + 20),
	    1);
	g = get(f->s, id);
	assert_int_equal(g->state, STORE_JOB_DONE);
	assert_int_equal(g->attempts, 1);
	assert_int_equal(g->finished_at, t + 20);
	assert_int_equal(g->lease_until, 0);
	assert_int_equal(g->result_len, 3);
	assert_memory_equal(g->result, "ok\n", 3);
	assert_null(g->result_type);	/* none named */
	store_job_free(g);
	store_job_free(j);
	/* A result's media type, as a fastcgi: or http: handler names it,
	 * is read back with the job. */
	qexec(store_db(f->s), "UPDATE jobs SET result_type = "
	    "'text/csv; charset=utf-8'");
	g = get(f->s, id);
	assert_string_equal(g->result_type, "text/csv; charset=utf-8");
	assert_memory_equal(g->result, "ok\n", 3);
	store_job_free(g);

	/* A result may be absent. */
	enqueue1(f->s, "default", 0, 0, 3, id);
	assert_int_equal(store_claim(f->s, "default", t + 10, 1000, &j), 1);
	assert_int_equal(store_finish_done(f->s, id, 1, NULL, 0, t), 1);
	g = get(f->s, id);
	assert_null(g->result);
	assert_int_equal(g->state, STORE_JOB_DONE);
	store_job_free(g);
	store_job_free(j);
}

/* An upstream's answer: its media type kept with the result; its
 * Retry-After as the next run instead of the backoff. */
static void
test_finish_typed_and_run_at(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	sqlite3_stmt		*st;
	char			 id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;
	int			 dead = -1;

	enqueue1(f->s, "default", 0, 0, 3, id);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_done_typed(f->s, id, 1, "{}", 2,
	    "application/json", t + 1), 1);
	enqueue1(f->s, "default", 0, 0, 3, id2);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_done(f->s, id2, 1, "x", 1, t + 1), 1);
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
	    "SELECT result_type FROM jobs WHERE id = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0),
	    "application/json");
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, id2, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(st, 0), SQLITE_NULL);
	sqlite3_finalize(st);

	/* run_at given: that, not now + backoff. */
	enqueue1(f->s, "default", 0, 0, 3, id);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed_at(f->s, id, 1, "http 429", 0,
	    t + 7777, 100, 1000, t + 5, &dead), 1);
	assert_int_equal(dead, 0);
	j = get(f->s, id);
	assert_int_equal(j->state, STORE_JOB_RETRY);
	assert_int_equal(j->run_at, t + 7777);
	assert_string_equal(j->last_error, "http 429");
	store_job_free(j);
	/* run_at 0: the backoff, as store_finish_failed. */
	assert_int_equal(store_claim(f->s, "default", t + 7777, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed_at(f->s, id, 2, "e", 0, 0, 100,
	    100, t + 8000, &dead), 1);
	j = get(f->s, id);
	assert_int_equal(j->run_at, t + 8100);
	store_job_free(j);
	/* Permanent: dead, whatever run_at says. */
	assert_int_equal(store_claim(f->s, "default", t + 8100, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed_at(f->s, id, 3, "http 404", 1,
	    t + 99999, 100, 100, t + 8200, &dead), 1);
	assert_int_equal(dead, 1);
}

static void
test_lifecycle_retry_dead(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */
	int			 dead = -1;

	enqueue1(f->s, "default", 0, 0, 2, id);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "exit 3", 0, 100,
	    1000, t + 5, &dead), 1);
	assert_int_equal(dead, 0);
	j = get(f->s, id);
	assert_int_equal(j->state, STORE_JOB_RETRY);
	assert_int_equal(j->run_at, t + 5 + 100);	/* cap = min on try 1 */
	assert_int_equal(j->lease_until, 0);
	assert_int_equal(j->finished_at, 0);
	assert_string_equal(j->last_error, "exit 3");
	store_job_free(j);

	/* Not due before run_at; due after. */
	assert_int_equal(store_claim(f->s, "default", t + 104, 1000, &j), 0);
	assert_int_equal(store_claim(f->s, "default", t + 105, 1000, &j), 1);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 2, "exit 4", 0, 100,
	    1000, t + 200, &dead), 1);
	assert_int_equal(dead, 1);
	j = get(f->s, id);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->finished_at, t + 200);
	assert_string_equal(j->last_error, "exit 4");
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", t + 99999, 1000, &j), 0);

	/* Permanent: dead at the first attempt. */
	enqueue1(f->s, "default", 0, 0, 5, id);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "bad data", 1, 100,
	    1000, t, NULL), 1);
	assert_state(f->s, id, STORE_JOB_DEAD);
}

static void
test_backoff(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	static const int	 attempts[] = { 1, 2, 3, 5, 10, 17, 40, 62, 63,
	    64, 65, 100, 1000, 1 << 30 };
	const int64_t		 lo = 100, hi = 100000;
	char			 id[STORE_ID_LEN + 1];
	char			 err[6001];
	int64_t			 t = store_now(), d, cap, first = -1;
	size_t			 i;
	int			 k, varied = 0;

	enqueue1(f->s, "default", 0, 0, INT_MAX, id);
	for (i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		for (k = 0; k < 8; k++) {
			force(f->s, id, "running", attempts[i]);
			assert_int_equal(store_finish_failed(f->s, id,
			    attempts[i], "x", 0, lo, hi, t, NULL), 1);
			j = get(f->s, id);
			d = j->run_at - t;
			cap = attempts[i] <= 11 ?
			    lo << (attempts[i] - 1) : hi;
			if (cap > hi)
				cap = hi;
			if (d < lo || d > cap)
				fail_msg("attempt %d: delay %lld not in "
				    "[%lld, %lld]", attempts[i], (long long)d,
				    (long long)lo, (long long)cap);
			if (attempts[i] == 10) {
				if (first != -1 && d != first)
					varied = 1;
				first = d;
			}
			store_job_free(j);
		}
	}
	assert_true(varied);	/* jitter */

	/* Equal bounds, and bounds given upside down. */
	force(f->s, id, "running", 7);
	assert_int_equal(store_finish_failed(f->s, id, 7, "x", 0, 500, 500,
	    t, NULL), 1);
	j = get(f->s, id);
	assert_int_equal(j->run_at, t + 500);
	store_job_free(j);
	force(f->s, id, "running", 7);
	assert_int_equal(store_finish_failed(f->s, id, 7, "x", 0, 500, 10,
	    t, NULL), 1);
	j = get(f->s, id);
	assert_int_equal(j->run_at, t + 500);
	store_job_free(j);

	/* last_error is bounded, and cut on a UTF-8 boundary. */
	for (k = 0; k < 2000; k++)
		memcpy(err + 3 * k, "\xe2\x82\xac", 3);	/* the euro sign */
	err[6000] = '\0';
	force(f->s, id, "running", 7);
	assert_int_equal(store_finish_failed(f->s, id, 7, err, 0, 1, 1, t,
	    NULL), 1);
	assert_int_equal(qint(store_db(f->s), "SELECT length(CAST(last_error"
	    " AS BLOB)) FROM jobs"), 4095);
}

static void
test_release(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "default", 0, t - 50, 3, id);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_release(f->s, id, 1, "shutting down", t + 7),
	    1);
	j = get(f->s, id);
	assert_int_equal(j->state, STORE_JOB_QUEUED);
	assert_int_equal(j->attempts, 1);	/* counted */
	assert_int_equal(j->run_at, t + 7);
	assert_int_equal(j->lease_until, 0);
	assert_string_equal(j->last_error, "shutting down");
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", t + 7, 1000, &j), 1);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
}

/* A stale attempt changes nothing, whatever it tries. */
static void
test_fencing(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1], *before, *after;
	int64_t			 t = store_now() + 1000;	/* everything due */
	int			 dead = -1;

	enqueue1(f->s, "default", 0, 0, 5, id);
	assert_int_equal(store_claim(f->s, "default", t, 100, &j), 1);
	store_job_free(j);
	assert_int_equal(store_requeue_expired(f->s, t + 200, NULL, NULL), 1);
	assert_int_equal(store_claim(f->s, "default", t + 200, 1000, &j), 1);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);

	before = snapshot(f->s);
	assert_int_equal(store_finish_done(f->s, id, 1, "r", 1, t + 300), 0);
	assert_int_equal(store_finish_failed(f->s, id, 1, "e", 0, 1, 2,
	    t + 300, &dead), 0);
	assert_int_equal(dead, 0);
	assert_int_equal(store_finish_failed(f->s, id, 1, "e", 1, 1, 2,
	    t + 300, NULL), 0);
	assert_int_equal(store_release(f->s, id, 1, "r", t + 300), 0);
	assert_int_equal(store_extend(f->s, id, 1, t + 99999), 0);
	assert_int_equal(store_extend(f->s, id, 3, t + 99999), 0);
	assert_int_equal(store_finish_done(f->s, "nosuchid", 2, NULL, 0, t),
	    0);
	after = snapshot(f->s);
	assert_string_equal(before, after);
	free(after);

	/* The current attempt still owns it; once done, nobody does. */
	assert_int_equal(store_finish_done(f->s, id, 2, "r", 1, t + 300), 1);
	free(before);
	before = snapshot(f->s);
	assert_int_equal(store_finish_done(f->s, id, 2, "x", 1, t + 400), 0);
	assert_int_equal(store_finish_failed(f->s, id, 2, "e", 0, 1, 2,
	    t + 400, NULL), 0);
	assert_int_equal(store_release(f->s, id, 2, "r", t + 400), 0);
	after = snapshot(f->s);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* The states of many jobs in one read: unknown ids say so. */
static void
test_states(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	const char		*ids[3];
	enum store_state	 st[3];
	int64_t			 t = store_now() + 1000;

	enqueue1(f->s, "default", 0, 0, 3, a);
	enqueue1(f->s, "default", 0, 0, 3, b);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0, t), 1);
	store_job_free(j);
	ids[0] = a;
	ids[1] = "0000000000000000000000000000AA";
	ids[2] = b;
	assert_int_equal(store_states(f->s, ids, 3, st), 0);
	assert_int_equal(st[0], STORE_JOB_DONE);
	assert_int_equal(st[1], STORE_JOB_ANY);
	assert_int_equal(st[2], STORE_JOB_QUEUED);
	assert_int_equal(store_states(f->s, ids, 0, st), 0);
}

static void
test_cancel(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 q[STORE_ID_LEN + 1], r[STORE_ID_LEN + 1], run[STORE_ID_LEN + 1], dn[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "default", 0, 0, 3, run);
	enqueue1(f->s, "default", 0, 0, 3, dn);
	enqueue1(f->s, "default", 0, 0, 3, r);
	enqueue1(f->s, "default", 0, t + 60000, 3, q);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_string_equal(j->id, run);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_string_equal(j->id, dn);
	store_job_free(j);
	assert_int_equal(store_finish_done(f->s, dn, 1, NULL, 0, t), 1);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_string_equal(j->id, r);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, r, 1, "e", 0, 10, 10, t,
	    NULL), 1);

	assert_int_equal(store_cancel(f->s, q, t + 1), STORE_CANCEL_DONE);
	j = get(f->s, q);
	assert_int_equal(j->state, STORE_JOB_CANCELLED);
	assert_int_equal(j->finished_at, t + 1);
	store_job_free(j);
	assert_int_equal(store_cancel(f->s, r, t + 1), STORE_CANCEL_DONE);
	assert_state(f->s, r, STORE_JOB_CANCELLED);
	assert_int_equal(store_cancel(f->s, run, t), STORE_CANCEL_REFUSED);
	assert_state(f->s, run, STORE_JOB_RUNNING);
	assert_int_equal(store_cancel(f->s, dn, t), STORE_CANCEL_REFUSED);
	assert_state(f->s, dn, STORE_JOB_DONE);
	assert_int_equal(store_cancel(f->s, q, t), STORE_CANCEL_REFUSED);
	assert_int_equal(store_cancel(f->s, "AAAAAAAAAAAAAAAAAAAAAA", t),
	    STORE_CANCEL_UNKNOWN);
	/* Cancelled jobs are never claimed. */
	assert_int_equal(store_claim(f->s, "default", t + 99999, 1000, &j), 0);
}

static void
test_requeue(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1], c[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "default", 0, 0, 3, a);
	enqueue1(f->s, "default", 0, 0, 1, b);	/* one attempt only */
	enqueue1(f->s, "default", 0, 0, 3, c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
		store_job_free(j);
	}
	assert_int_equal(store_extend(f->s, c, 1, t + 5000), 1);
	assert_int_equal(store_requeue_expired(f->s, t + 1000, NULL, NULL), 0);
	assert_int_equal(store_requeue_expired(f->s, t + 2000, NULL, NULL), 2);

	j = get(f->s, a);
	assert_int_equal(j->state, STORE_JOB_QUEUED);
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->run_at, t + 2000);
	assert_int_equal(j->lease_until, 0);
	assert_string_equal(j->last_error, "lease expired");
	store_job_free(j);
	j = get(f->s, b);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->finished_at, t + 2000);
	store_job_free(j);
	assert_state(f->s, c, STORE_JOB_RUNNING);

	/* A helper taking over requeues every running job. */
	assert_int_equal(store_claim(f->s, "default", t + 2000, 1000, &j), 1);
	assert_string_equal(j->id, a);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
	assert_int_equal(store_requeue_running(f->s, t + 2001, NULL, NULL), 2);
	assert_state(f->s, a, STORE_JOB_QUEUED);
	assert_state(f->s, c, STORE_JOB_QUEUED);
	assert_int_equal(store_requeue_running(f->s, t + 2002, NULL, NULL), 0);

	/* Exhausted by the requeue itself. */
	force(f->s, a, "running", 3);
	assert_int_equal(store_requeue_running(f->s, t + 3000, NULL, NULL), 1);
	assert_state(f->s, a, STORE_JOB_DEAD);
}

/* What store_requeue_fn was told, queue by queue. */
struct requeued {
	char	seen[256];
};

static void
on_requeue(void *arg, const char *queue, int requeued, int dead)
{
	struct requeued *r = arg;
	size_t n = strlen(r->seen);

	snprintf(r->seen + n, sizeof(r->seen) - n, "%s:%d:%d ", queue,
	    requeued, dead);
}

/* The counts a requeue reports are its own: per queue, what it made
 * queued and dead, after the commit; none when nothing expired. */
static void
test_requeue_counts(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	struct requeued		 r;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;

	enqueue1(f->s, "default", 0, 0, 3, id);
	enqueue1(f->s, "default", 0, 0, 1, id);	/* its last attempt */
	enqueue1(f->s, "mail", 0, 0, 1, id);
	enqueue1(f->s, "mail", 0, 0, 1, id);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
		store_job_free(j);
	}
	assert_int_equal(store_claim(f->s, "mail", t, 1000, &j), 1);
	store_job_free(j);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_requeue_expired(f->s, t + 500, on_requeue, &r),
	    0);
	assert_string_equal(r.seen, "");
	assert_int_equal(store_requeue_expired(f->s, t + 2000, on_requeue, &r),
	    3);
	assert_string_equal(r.seen, "default:1:1 mail:0:1 ");
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE state = 'dead'"), 2);

	/* A helper taking over: every running job, lease or not. */
	assert_int_equal(store_claim(f->s, "mail", t + 2000, 60000, &j), 1);
	store_job_free(j);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_requeue_running(f->s, t + 2001, on_requeue, &r),
	    1);
	assert_string_equal(r.seen, "mail:0:1 ");

	/* With dead letters on, the same counts: the letter is a new job,
	 * not a requeued one. */
	assert_int_equal(store_set_dead_letter(f->s, "alerts", "/jobs/", 3, 0),
	    0);
	enqueue1(f->s, "mail", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "mail", t + 3000, 1000, &j), 1);
	store_job_free(j);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_requeue_expired(f->s, t + 5000, on_requeue, &r),
	    1);
	assert_string_equal(r.seen, "mail:0:1 ");
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 1);
}

static void
test_prune(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 d1[STORE_ID_LEN + 1], d2[STORE_ID_LEN + 1], c1[STORE_ID_LEN + 1], d3[STORE_ID_LEN + 1], q[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* everything due */

	enqueue1(f->s, "a", 0, 0, 3, d1);
	enqueue1(f->s, "b", 0, 0, 3, d2);
	enqueue1(f->s, "a", 0, 0, 3, c1);
	enqueue1(f->s, "a", 0, 0, 3, d3);
	enqueue1(f->s, "a", 0, t + 60000, 3, q);
	assert_int_equal(store_claim(f->s, "a", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_done(f->s, d1, 1, NULL, 0, t - 10000),
	    1);
	assert_int_equal(store_claim(f->s, "b", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, d2, 1, "e", 1, 1, 1,
	    t - 10000, NULL), 1);
	assert_int_equal(store_cancel(f->s, c1, t - 10000), 1);
	assert_int_equal(store_claim(f->s, "a", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_done(f->s, d3, 1, NULL, 0, t), 1);

	assert_int_equal(store_prune(f->s, "a", t - 5000), 2);	/* d1, c1 */
	assert_int_equal(store_get(f->s, d1, &j), 0);
	assert_int_equal(store_get(f->s, c1, &j), 0);
	assert_int_equal(store_prune(f->s, NULL, t - 5000), 1);	/* d2 */
	assert_int_equal(store_prune(f->s, NULL, t - 5000), 0);
	assert_int_equal(store_prune(f->s, NULL, t + 1), 1);	/* d3 */
	assert_int_equal(count_jobs(f->s), 1);
	assert_state(f->s, q, STORE_JOB_QUEUED);
}

/* What store_list hands its callback, kept for the test to read. */
struct listed {
	char			 ids[8][STORE_ID_LEN + 1];
	enum store_state	 states[8];
	int64_t			 body_len[8];
	size_t			 n;
};

static void
list_keep(void *arg, const struct store_summary *j)
{
	struct listed	*l = arg;

	assert_true(l->n < 8);
	(void)snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", j->id);
	l->states[l->n] = j->state;
	l->body_len[l->n] = j->body_len;
	assert_non_null(j->last_error);
	l->n++;
}

/* store_list: newest first, filtered by queue and state, up to a limit. */
static void
test_list(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	struct listed		 l;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	char			 c[STORE_ID_LEN + 1];
	int64_t			 t = store_now();

	enqueue1(f->s, "a", 0, t, 3, a);
	enqueue1(f->s, "a", 0, t, 3, b);
	enqueue1(f->s, "b", 0, t, 3, c);
	assert_int_equal(store_claim(f->s, "a", t, 1000, &j), 1);
	store_job_free(j);

	memset(&l, 0, sizeof(l));
	assert_int_equal(store_list(f->s, NULL, STORE_JOB_ANY, 20, list_keep,
	    &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.ids[0], c);
	assert_string_equal(l.ids[2], a);
	assert_int_equal(l.states[2], STORE_JOB_RUNNING);
	assert_int_equal(l.body_len[0], 7);	/* "payload" */

	memset(&l, 0, sizeof(l));
	assert_int_equal(store_list(f->s, "a", STORE_JOB_QUEUED, 20, list_keep,
	    &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], b);

	memset(&l, 0, sizeof(l));
	assert_int_equal(store_list(f->s, NULL, STORE_JOB_ANY, 2, list_keep,
	    &l), 0);
	assert_int_equal(l.n, 2);

	memset(&l, 0, sizeof(l));
	assert_int_equal(store_list(f->s, "zzz", STORE_JOB_ANY, 20, list_keep,
	    &l), 0);
	assert_int_equal(l.n, 0);
}

static void
test_stats(void **state)
{
	struct fx		*f = *state;
	struct store_stat	*st;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	size_t			 n;
	int64_t			 t = store_now(), when = -1;

	assert_int_equal(store_stats(f->s, &st, &n), 0);
	assert_int_equal(n, 0);
	free(st);
	assert_int_equal(store_next_due(f->s, "a", &when), 0);

	enqueue1(f->s, "a", 0, t + 500, 3, id);
	enqueue1(f->s, "a", 0, t + 100, 3, id);
	enqueue1(f->s, "a", 0, t, 3, id);
	enqueue1(f->s, "b", 0, t, 3, id);
	assert_int_equal(store_claim(f->s, "a", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "b", t, 1000, &j), 1);
	assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0, t), 1);
	store_job_free(j);

	assert_int_equal(store_count_waiting(f->s, "a"), 2);
	assert_int_equal(store_count_waiting(f->s, "b"), 0);
	assert_int_equal(store_count_waiting(f->s, "zzz"), 0);
	assert_int_equal(store_next_due(f->s, "a", &when), 1);
	assert_int_equal(when, t + 100);
	assert_int_equal(store_next_due(f->s, "b", &when), 0);

	assert_int_equal(store_stats(f->s, &st, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(st[0].queue, "a");
	assert_int_equal(st[0].state, STORE_JOB_QUEUED);
	assert_int_equal(st[0].count, 2);
	assert_string_equal(st[1].queue, "a");
	assert_int_equal(st[1].state, STORE_JOB_RUNNING);
	assert_int_equal(st[1].count, 1);
	assert_string_equal(st[2].queue, "b");
	assert_int_equal(st[2].state, STORE_JOB_DONE);
	assert_int_equal(st[2].count, 1);
	assert_true(st[0].oldest_created_at >= t - 1000 &&
	    st[0].oldest_created_at <= store_now());
	assert_true(st[0].oldest_created_at <= st[1].oldest_created_at);
	free(st);
}

static void
test_views(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj[2];
	sqlite3			*db = store_db(f->s);
	char			*t;

	newjob(&nj[0], "v", 0, 0, "hello");
	newjob(&nj[1], "v", 0, 0, "");
	nj[1].body = "a\0b";
	nj[1].body_len = 3;
	assert_int_equal(store_enqueue(f->s, nj, 2), 0);
	qexec(db, "UPDATE jobs SET created_at = 1700000000123,"
	    " run_at = 1700000000000");

	t = qtext(db, "SELECT created_at || ' ' || run_at || ' ' ||"
	    " ifnull(started_at, '-') || ' ' || body FROM jobs_readable"
	    " ORDER BY seq LIMIT 1");
	assert_string_equal(t, "2023-11-14T22:13:20.123Z "
	    "2023-11-14T22:13:20.000Z - hello");
	free(t);
	t = qtext(db, "SELECT body || ' ' || ifnull(result, '-')"
	    " FROM jobs_readable ORDER BY seq DESC LIMIT 1");
	assert_string_equal(t, "<3 bytes binary> -");
	free(t);

	assert_int_equal(qint(db, "SELECT jobs FROM queue_stats"
	    " WHERE queue = 'v' AND state = 'queued'"), 2);
	/* created in 2023: waiting for well over a year by now */
	assert_true(qint(db, "SELECT oldest_waiting_ms FROM queue_stats"
	    " WHERE queue = 'v' AND state = 'queued'") >
	    (int64_t)365 * 86400 * 1000);
	qexec(db, "UPDATE jobs SET state = 'done'");
	assert_int_equal(qint(db, "SELECT oldest_waiting_ms IS NULL"
	    " FROM queue_stats WHERE queue = 'v'"), 1);
}

/* The detail of EXPLAIN QUERY PLAN for the store's prepared statement whose
 * SQL starts with prefix. */
static char *
plan_of(sqlite3 *db, const char *prefix)
{
	sqlite3_stmt	*st, *eqp;
	char		 sql[4096], *plan;
	size_t		 len = 0;

	for (st = sqlite3_next_stmt(db, NULL); st != NULL;
	    st = sqlite3_next_stmt(db, st))
		if (strncmp(sqlite3_sql(st), prefix, strlen(prefix)) == 0)
			break;
	if (st == NULL)
		fail_msg("no prepared statement starts with %s", prefix);
	(void)snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
	    sqlite3_sql(st));
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &eqp, NULL),
	    SQLITE_OK);
	assert_non_null(plan = calloc(1, 4096));
	while (sqlite3_step(eqp) == SQLITE_ROW)
		len += (size_t)snprintf(plan + len, 4096 - len, "# %s\n",
		    (const char *)sqlite3_column_text(eqp, 3));
	sqlite3_finalize(eqp);
	return plan;
}

/* The claim walks the partial index in claim order: no scan, no sort. */
static void
test_query_plans(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj;
	struct store_job	*j;
	sqlite3			*db = store_db(f->s);
	char			*p;
	int64_t			 t = store_now() + 1000;	/* everything due */

	newjob(&nj, "default", 0, 0, "x");
	nj.idempotency_key = "k";
	assert_int_equal(store_enqueue(f->s, &nj, 1), 0);
	/* A replay: the lookup runs only for a key taken already. */
	assert_int_equal(store_enqueue(f->s, &nj, 1), 0);
	assert_int_equal(nj.outcome, STORE_ENQ_DUPLICATE);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_count_waiting(f->s, "default"), 0);
	assert_int_equal(store_requeue_expired(f->s, t, NULL, NULL), 0);
	assert_int_equal(store_requeue_running(f->s, t, NULL, NULL), 1);
	assert_int_equal(store_prune(f->s, NULL, t), 0);

	/* Not covering since serialize_by: the serial key of the job
	 * picked is read from its row, which the claim reads anyway. */
	p = plan_of(db, "SELECT seq, serial_key FROM jobs INDEXED BY jobs_claim");
	print_message("# claim plan:\n%s", p);
	assert_non_null(strstr(p, "INDEX jobs_claim (queue=?)"));
	assert_null(strstr(p, "TEMP B-TREE"));
	assert_null(strstr(p, "SCAN jobs\n"));
	free(p);
	p = plan_of(db, "SELECT count(*) FROM jobs INDEXED BY jobs_claim");
	assert_non_null(strstr(p, "COVERING INDEX jobs_claim (queue=?)"));
	free(p);
	p = plan_of(db, "SELECT id, body FROM jobs");
	assert_non_null(strstr(p, "jobs_idempotency"));
	free(p);
	p = plan_of(db, "UPDATE jobs INDEXED BY jobs_lease SET");
	assert_non_null(strstr(p, "jobs_lease"));
	free(p);
	p = plan_of(db, "DELETE FROM jobs INDEXED BY jobs_finished");
	assert_non_null(strstr(p, "jobs_finished (finished_at<?)"));
	free(p);
}

/*
 * Flow control's store: crashes counted and the quarantine that makes a
 * job dead with "crashed N times" whatever its attempts; a requeue (its
 * runner gone) is a crash too; the first attempts' lane; a breaker
 * written, read back, listed, and its opening's event in the dead-letter
 * queue, in one transaction.
 */
static void
test_flow(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	struct store_breaker	 b;
	sqlite3			*db = store_db(f->s);
	char			 id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	char			*t, *p;
	int64_t			 t0 = store_now() + 1000;
	int			 dead = 0, i;

	enqueue1(f->s, "default", 0, 0, 10, id);
	for (i = 1; i <= 3; i++) {
		assert_int_equal(store_claim(f->s, "default", t0 + i * 10000,
		    1000, &j), 1);
		assert_int_equal(j->crashes, i - 1);
		store_job_free(j);
		assert_int_equal(store_finish_crashed(f->s, id, i,
		    "killed by signal 9", 3, 1, 1, t0 + i * 10000, &dead), 1);
		assert_int_equal(dead, i == 3);
	}
	t = qtext(db, "SELECT state || '|' || last_error || '|' || crashes"
	    " FROM jobs");
	assert_string_equal(t, "dead|crashed 3 times|3");
	free(t);
	/* quarantine 0: counted, never dead for it. */
	enqueue1(f->s, "q0", 0, 0, 10, id2);
	assert_int_equal(store_claim(f->s, "q0", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_crashed(f->s, id2, 1, "killed by "
	    "signal 11", 0, 1, 1, t0, &dead), 1);
	assert_int_equal(dead, 0);
	assert_int_equal(qint(db, "SELECT crashes FROM jobs WHERE queue ="
	    " 'q0'"), 1);
	/* An ordinary failure counts no crash. */
	assert_int_equal(store_claim(f->s, "q0", t0 + 10000, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id2, 2, "exit 1", 0, 1, 1,
	    t0 + 10000, &dead), 1);
	/* A lease that expired: its runner is gone, one crash more. */
	assert_int_equal(store_claim(f->s, "q0", t0 + 20000, 10, &j), 1);
	store_job_free(j);
	assert_int_equal(store_requeue_expired(f->s, t0 + 30000, NULL, NULL),
	    1);
	assert_int_equal(qint(db, "SELECT crashes FROM jobs WHERE queue ="
	    " 'q0'"), 2);

	/* The first attempts' lane passes over a job that ran before. */
	assert_int_equal(store_claim_fresh(f->s, "q0", t0 + 40000, 1000, &j),
	    0);
	enqueue1(f->s, "q0", 0, 0, 10, id);
	assert_int_equal(store_claim_fresh(f->s, "q0", t0 + 40000, 1000, &j),
	    1);
	assert_string_equal(j->id, id);
	assert_int_equal(j->attempts, 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "q0", t0 + 40000, 1000, &j), 1);
	assert_string_equal(j->id, id2);
	store_job_free(j);
	p = plan_of(db, "SELECT seq, serial_key FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')"
	    "  AND run_at <= ?2"
	    "  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)"
	    " AND attempts = 0");
	print_message("# fresh claim plan:\n%s", p);
	assert_non_null(strstr(p, "USING INDEX jobs_claim (queue=?)"));
	assert_null(strstr(p, "TEMP B-TREE"));
	free(p);

	/* Breakers. */
	assert_int_equal(store_breaker_get(f->s, "mail", &b), 0);
	assert_int_equal(b.trips, 0);
	memset(&b, 0, sizeof(b));
	b.state = 1;
	b.open_until = 12345;
	b.failures = 20;
	b.pause_ms = 60000;
	b.trips = 1;
	/* No dead-letter queue: no event. */
	assert_int_equal(store_breaker_set(f->s, "mail", &b, 1), 0);
	assert_int_equal(store_set_dead_letter(f->s, "alerts", "/jobs/", 3,
	    5), 0);
	b.trips = 2;
	assert_int_equal(store_breaker_set(f->s, "mail", &b, 1), 0);
	t = qtext(db, "SELECT CAST(body AS TEXT) FROM jobs WHERE queue ="
	    " 'alerts'");
	assert_string_equal(t, "{\"event\":\"breaker_open\",\"queue\":"
	    "\"mail\",\"failures\":20,\"until\":12345,\"trips\":2}");
	free(t);
	memset(&b, 0, sizeof(b));
	assert_int_equal(store_breaker_get(f->s, "mail", &b), 1);
	assert_int_equal(b.state, 1);
	assert_int_equal(b.open_until, 12345);
	assert_int_equal(b.failures, 20);
	assert_int_equal(b.pause_ms, 60000);
	assert_int_equal(b.trips, 2);
	/* A pause of the queue leaves its breaker alone, and back. */
	assert_int_equal(store_pause(f->s, "mail", 1), 0);
	assert_int_equal(store_breaker_get(f->s, "mail", &b), 1);
	assert_int_equal(b.trips, 2);
	b.state = 0;
	b.open_until = 0;
	assert_int_equal(store_breaker_set(f->s, "mail", &b, 0), 0);
	assert_int_equal(store_paused(f->s, "mail"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM jobs WHERE queue ="
	    " 'alerts'"), 1);
}

/*
 * store_drain: the latest jobs of a queue to finish since a time, at most
 * limit of them, read from jobs_finished backwards (no sort).
 */
static void
test_drain(void **state)
{
	struct fx	*f = *state;
	sqlite3		*db = store_db(f->s);
	char		 id[STORE_ID_LEN + 1], *p;
	int64_t		 n, oldest;
	int		 i;

	assert_int_equal(store_drain(f->s, "default", 0, 100, &n, &oldest),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(oldest, 0);
	for (i = 0; i < 10; i++)
		enqueue1(f->s, i < 8 ? "default" : "other", 0, 0, 3, id);
	/* Finished at 1000, 1010, ... 1070 (default), 1080, 1090 (other);
	 * one more waits. */
	qexec(db, "UPDATE jobs SET state = 'done', finished_at = 1000 +"
	    " 10 * (seq - (SELECT min(seq) FROM jobs))");
	enqueue1(f->s, "default", 0, 0, 3, id);
	assert_int_equal(store_drain(f->s, "default", 0, 100, &n, &oldest),
	    0);
	assert_int_equal(n, 8);
	assert_int_equal(oldest, 1000);
	assert_int_equal(store_drain(f->s, "default", 1035, 100, &n,
	    &oldest), 0);
	assert_int_equal(n, 4);
	assert_int_equal(oldest, 1040);
	assert_int_equal(store_drain(f->s, "default", 0, 3, &n, &oldest), 0);
	assert_int_equal(n, 3);
	assert_int_equal(oldest, 1050);
	assert_int_equal(store_drain(f->s, "other", 0, 100, &n, &oldest), 0);
	assert_int_equal(n, 2);
	assert_int_equal(oldest, 1080);

	p = plan_of(db, "SELECT count(*), min(finished_at) FROM");
	print_message("# drain plan:\n%s", p);
	assert_non_null(strstr(p, "jobs_finished (finished_at>?)"));
	assert_null(strstr(p, "TEMP B-TREE"));
	free(p);
}

/* The statements of intake and of the helper's loop build no temporary
 * b-tree (each costs a pager and a freshly faulted page cache per run). */
static void
test_hot_path_no_temp_btrees(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj[3];
	struct store_job	*j;
	sqlite3			*db = store_db(f->s);
	sqlite3_stmt		*st;
	int64_t			 t = store_now() + 1000;
	int			 i, n = 0;

	for (i = 0; i < 3; i++)
		newjob(&nj[i], "default", 0, 0, "x");
	nj[2].idempotency_key = "k";
	assert_int_equal(store_enqueue(f->s, nj, 3), 0);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_int_equal(store_extend(f->s, j->id, j->attempts, t + 2000), 1);
	assert_int_equal(store_finish_done(f->s, j->id, j->attempts, "ok", 2,
	    t), 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_int_equal(store_finish_failed(f->s, j->id, j->attempts, "no",
	    1, 100, 1000, t, NULL), 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	assert_int_equal(store_release(f->s, j->id, j->attempts, "stop", t),
	    1);
	store_job_free(j);
	assert_int_equal(store_requeue_expired(f->s, t, NULL, NULL), 0);
	assert_int_equal(store_prune(f->s, NULL, t + 1), 2);

	for (st = sqlite3_next_stmt(db, NULL); st != NULL;
	    st = sqlite3_next_stmt(db, st)) {
		const char *sql = sqlite3_sql(st);

		if (strncmp(sql, "INSERT", 6) != 0 &&
		    strncmp(sql, "UPDATE", 6) != 0 &&
		    strncmp(sql, "DELETE", 6) != 0 &&
		    strncmp(sql, "SELECT", 6) != 0)
			continue;
		/* Lease expiry updates many rows through the index it
		 * changes, so SQLite collects the rowids first; it runs once
		 * per maintenance pass, not per job. */
		if (strncmp(sql, "UPDATE jobs INDEXED BY jobs_lease", 33) == 0)
			continue;
		n++;
		if (temp_btrees(db, sql) != 0)
			fail_msg("temporary b-tree in: %s", sql);
	}
	print_message("# %d statements checked\n", n);
	assert_true(n >= 10);
}

/* --- failures: injected and real --------------------------------------- */

enum op { OP_ENQUEUE, OP_CLAIM, OP_DONE, OP_FAILED, OP_RELEASE, OP_EXTEND,
	OP_CANCEL, OP_REQUEUE, OP_PRUNE, OP__COUNT };
static const char *const op_name[OP__COUNT] = { "enqueue", "claim",
	"finish_done", "finish_failed", "release", "extend", "cancel",
	"requeue_expired", "prune" };

static int
run_op(struct fx *f, enum op op, const char *id, int64_t t)
{
	struct store_newjob	 nj[3];
	struct store_job	*j = NULL;
	int			 r;

	switch (op) {
	case OP_ENQUEUE:
		newjob(&nj[0], "default", 0, 0, "a");
		nj[0].idempotency_key = "fk";
		newjob(&nj[1], "default", 0, 0, "a");
		nj[1].idempotency_key = "fk";
		newjob(&nj[2], "default", 0, 0, "c");
		return store_enqueue(f->s, nj, 3);
	case OP_CLAIM:
		r = store_claim(f->s, "default", t, 1000, &j);
		if (r == -1)
			assert_null(j);
		store_job_free(j);
		return r;
	case OP_DONE:
		return store_finish_done(f->s, id, 1, "res", 3, t);
	case OP_FAILED:
		return store_finish_failed(f->s, id, 1, "err", 0, 10, 20, t,
		    NULL);
	case OP_RELEASE:
		return store_release(f->s, id, 1, "bye", t);
	case OP_EXTEND:
		return store_extend(f->s, id, 1, t + 5000);
	case OP_CANCEL:
		return store_cancel(f->s, id, t);
	case OP_REQUEUE:
		return store_requeue_expired(f->s, t + 100000, NULL, NULL);
	case OP_PRUNE:
		return store_prune(f->s, NULL, t + 100000);
	default:
		fail();
	}
	return -1;
}

/*
 * Fail each step of op in turn, with SQLITE_FULL and SQLITE_BUSY: every
 * time -1, a message, no transaction left open and the database as it
 * was; then the op succeeds on the same connection.  Returns the number of
 * steps the op takes.
 */
static int
fault_each_step(struct fx *f, enum op op, const char *id, int64_t t)
{
	static const int	 codes[] = { SQLITE_FULL, SQLITE_BUSY };
	static const int	 errcodes[] = { STORE_EFULL, STORE_EBUSY };
	char			*before, *after;
	int			 at, r;

	before = snapshot(f->s);
	for (at = 1;; at++) {
		fault_arm(at, codes[at % 2]);
		r = run_op(f, op, id, t);
		store_step_fn = sqlite3_step;
		if (nsteps < at) {	/* ran to the end without the fault */
			if (r == -1)
				fail_msg("%s: %s", op_name[op],
				    store_error(f->s));
			break;
		}
		if (r != -1)
			fail_msg("%s: step %d failed but it returned %d",
			    op_name[op], at, r);
		assert_int_equal(store_errcode(f->s), errcodes[at % 2]);
		assert_true(strlen(store_error(f->s)) > 0);
		assert_true(sqlite3_get_autocommit(store_db(f->s)));
		after = snapshot(f->s);
		if (strcmp(before, after) != 0)
			fail_msg("%s: step %d: database changed:\n%s\n%s",
			    op_name[op], at, before, after);
		free(after);
	}
	after = snapshot(f->s);
	assert_string_not_equal(before, after);	/* it did its job */
	free(before);
	free(after);
	return at - 1;
}

/*
 * A batch: the helper's outcomes and the claims after them in one
 * transaction.  Other connections see all of it at the end or none of it;
 * a failed call anywhere undoes every earlier one.
 */
static void
test_batch(void **state)
{
	struct fx		*f = *state;
	struct store		*other = open_store(f, NULL);
	struct store_job	*a, *b, *g;
	char			 ida[STORE_ID_LEN + 1], idb[STORE_ID_LEN + 1];
	char			*before;
	int64_t			 t = store_now() + 10000;	/* all due */

	assert_int_equal(store_batch_end(f->s), -1);	/* none open */
	enqueue1(f->s, "default", 0, 0, 3, ida);
	enqueue1(f->s, "default", 0, 0, 3, idb);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &a), 1);
	assert_string_equal(a->id, ida);

	/* Finish a, claim b: invisible to another connection until the end. */
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_batch_begin(f->s), -1);	/* no nesting */
	assert_int_equal(store_finish_done(f->s, ida, 1, "ok", 2, t), 1);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &b), 1);
	assert_string_equal(b->id, idb);
	/* Nothing else due: the empty claim must not undo the batch. */
	assert_int_equal(store_claim(f->s, "default", t, 1000, &g), 0);
	assert_state(other, ida, STORE_JOB_RUNNING);
	assert_state(other, idb, STORE_JOB_QUEUED);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_state(other, ida, STORE_JOB_DONE);
	assert_state(other, idb, STORE_JOB_RUNNING);
	store_job_free(a);

	/* A failed call undoes what came before it, and dooms what follows. */
	enqueue1(f->s, "default", 0, 0, 3, ida);
	before = snapshot(f->s);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_finish_done(f->s, idb, 1, NULL, 0, t), 1);
	fault_arm(1, SQLITE_IOERR);		/* the claim's pick */
	assert_int_equal(store_claim(f->s, "default", t, 1000, &a), -1);
	assert_null(a);
	store_step_fn = sqlite3_step;
	assert_int_equal(store_finish_done(f->s, idb, 1, NULL, 0, t), -1);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &a), -1);
	assert_int_equal(store_batch_end(f->s), -1);
	assert_unchanged(f->s, before);
	assert_state(other, idb, STORE_JOB_RUNNING);

	/* SQLite's own rollback (as on SQLITE_FULL) inside a batch: later
	 * calls must not commit one by one. */
	assert_int_equal(store_batch_begin(f->s), 0);
	qexec(store_db(f->s), "ROLLBACK");
	assert_int_equal(store_finish_done(f->s, idb, 1, NULL, 0, t), -1);
	assert_int_equal(store_errcode(f->s), STORE_EABORT);
	assert_int_equal(store_batch_end(f->s), -1);
	assert_unchanged(f->s, before);

	/* After a failed batch the store works as before. */
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_finish_done(f->s, idb, 1, NULL, 0, t), 1);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_state(other, idb, STORE_JOB_DONE);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &a), 1);
	assert_string_equal(a->id, ida);
	store_job_free(a);
	store_job_free(b);
	free(before);
	store_close(other);
}

static void
test_faults(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 10000;	/* all due */
	int			 n;

	enqueue1(f->s, "default", 0, 0, 3, id);
	n = fault_each_step(f, OP_ENQUEUE, NULL, t);
	/* begin, 2 inserts (the duplicate, found in the batch, splits the
	 * run), commit: no lookup, no key was taken before */
	assert_int_equal(n, 4);
	assert_int_equal(count_jobs(f->s), 3);

	/* id is the first job: claim it, then each transition of it. */
	/* begin, pick, update, read back, commit */
	assert_int_equal(fault_each_step(f, OP_CLAIM, NULL, t), 5);
	assert_state(f->s, id, STORE_JOB_RUNNING);
	assert_int_equal(fault_each_step(f, OP_EXTEND, id, t), 1);
	assert_int_equal(fault_each_step(f, OP_FAILED, id, t), 4);
	assert_state(f->s, id, STORE_JOB_RETRY);
	force(f->s, id, "running", 1);
	assert_int_equal(fault_each_step(f, OP_RELEASE, id, t), 1);
	force(f->s, id, "running", 1);
	assert_int_equal(fault_each_step(f, OP_REQUEUE, NULL, t), 1);
	assert_state(f->s, id, STORE_JOB_QUEUED);
	force(f->s, id, "running", 1);
	assert_int_equal(fault_each_step(f, OP_DONE, id, t), 1);
	assert_state(f->s, id, STORE_JOB_DONE);
	assert_int_equal(store_claim(f->s, "default", t, 1000, &j), 1);
	/* Refusing a running job takes a second step, a lookup. */
	fault_arm(2, SQLITE_BUSY);
	assert_int_equal(store_cancel(f->s, j->id, t), -1);
	assert_int_equal(store_errcode(f->s), STORE_EBUSY);
	store_step_fn = sqlite3_step;
	assert_int_equal(store_cancel(f->s, j->id, t), STORE_CANCEL_REFUSED);
	force(f->s, j->id, "queued", 1);
	assert_int_equal(fault_each_step(f, OP_CANCEL, j->id, t), 1);
	store_job_free(j);
	assert_int_equal(fault_each_step(f, OP_PRUNE, NULL, t), 1);

	/* Reads report the error too. */
	fault_arm(1, SQLITE_BUSY);
	assert_int_equal(store_get(f->s, id, &j), -1);
	assert_null(j);
	fault_arm(1, SQLITE_BUSY);
	assert_int_equal(store_count_waiting(f->s, "default"), -1);
	fault_arm(2, SQLITE_IOERR);
	{
		struct store_stat	*st;
		size_t			 ns;

		assert_int_equal(store_stats(f->s, &st, &ns), -1);
		assert_null(st);
		assert_int_equal(store_errcode(f->s), STORE_EIO);
	}
	store_step_fn = sqlite3_step;
	assert_int_equal(store_count_waiting(f->s, "default"), 1);
}

/* A real SQLITE_FULL: the database may not grow past max_page_count. */
static void
test_disk_full(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 nj[20];
	static char		 body[8192];
	sqlite3			*db = store_db(f->s);
	char			 sql[128], *before, *after;
	size_t			 i;

	memset(body, 'x', sizeof(body) - 1);
	for (i = 0; i < 20; i++)
		newjob(&nj[i], "default", 0, 0, body);
	assert_int_equal(store_enqueue(f->s, nj, 2), 0);
	before = snapshot(f->s);
	(void)snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	    (long long)qint(db, "PRAGMA page_count") + 2);
	(void)qint(db, sql);
	assert_int_equal(store_enqueue(f->s, nj, 20), -1);
	assert_int_equal(store_errcode(f->s), STORE_EFULL);
	print_message("# %s\n", store_error(f->s));
	assert_true(sqlite3_get_autocommit(db));
	after = snapshot(f->s);
	assert_string_equal(before, after);
	free(before);
	free(after);
	(void)qint(db, "PRAGMA max_page_count = 1073741823");
	assert_int_equal(store_enqueue(f->s, nj, 20), 0);
	assert_int_equal(count_jobs(f->s), 22);
}

/* A real SQLITE_BUSY: another connection holds the write lock. */
static int64_t
monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_busy(void **state)
{
	struct fx		*f = *state;
	struct store_opts	 o = { 0, 50, 0 };
	struct store_newjob	 nj;
	struct store_job	*j;
	struct store		*s;
	sqlite3			*other;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t0;

	enqueue1(f->s, "default", 0, 0, 3, id);
	s = open_store(f, &o);
	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	qexec(other, "BEGIN IMMEDIATE");
	newjob(&nj, "default", 0, 0, "x");
	t0 = monotonic_ms();
	assert_int_equal(store_enqueue(s, &nj, 1), -1);
	/* The store's busy handler waited out busy_timeout before giving up. */
	assert_true(monotonic_ms() - t0 >= 50);
	assert_int_equal(store_errcode(s), STORE_EBUSY);
	assert_int_equal(store_claim(s, "default", store_now(), 1000, &j), -1);
	assert_int_equal(store_errcode(s), STORE_EBUSY);
	assert_int_equal(store_cancel(s, id, store_now()), -1);
	assert_int_equal(store_get(s, id, &j), 1);	/* readers go on */
	store_job_free(j);
	qexec(other, "ROLLBACK");
	sqlite3_close(other);
	assert_int_equal(store_enqueue(s, &nj, 1), 0);
	assert_int_equal(store_claim(s, "default", store_now(), 1000, &j), 1);
	store_job_free(j);
	store_close(s);
}

/* --- processes ---------------------------------------------------------- */

static void
read_full(int fd, void *buf, size_t len)
{
	ssize_t	n;
	size_t	got = 0;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_msg("read: short (%zu of %zu)", got, len);
		got += (size_t)n;
	}
}

/* Claim until nothing is due; write each id to path.  Exit status. */
static int
claimer(const char *db, const char *path, int go)
{
	struct store_opts	 o = { STORE_DURABILITY_NORMAL, 30000, 0 };
	struct store		*s;
	struct store_job	*j;
	char			 err[256], c;
	FILE			*fp;
	int			 r, status = 0;

	if ((s = store_open(db, &o, err, sizeof(err))) == NULL)
		return 2;
	if ((fp = fopen(path, "w")) == NULL) {
		store_close(s);
		return 3;
	}
	if (read(go, &c, 1) != 0) {	/* EOF: every claimer is ready */
		(void)fclose(fp);
		store_close(s);
		return 1;
	}
	while ((r = store_claim(s, "default", store_now(), 600000, &j)) == 1) {
		fprintf(fp, "%s\n", j->id);
		/* A write of its own between claims, as a worker would. */
		if (store_extend(s, j->id, j->attempts, j->lease_until + 1)
		    != 1)
			r = -1;
		store_job_free(j);
		if (r == -1)
			break;
	}
	if (r == -1) {
		fprintf(stderr, "claimer: %s\n", store_error(s));
		status = 4;
	}
	if (fclose(fp) != 0)
		status = 5;
	store_close(s);
	return status;
}

/*
 * spawn-fcgi -F N starts N processes on a database that may not exist
 * yet: each must open (one creates the schema), none may fail.
 */
static void
test_open_concurrent(void **state)
{
	struct fx		*f = *state;
	enum { NPROC = 6 };
	struct store_newjob	 nj;
	struct store		*s;
	char			 p[256], err[256], c;
	pid_t			 pid[NPROC];
	int			 go[2], st, i, bad;

	store_close(f->s);	/* nothing open across the fork */
	f->s = NULL;
	(void)snprintf(p, sizeof(p), "%s/fresh.db", f->dir);
	assert_int_equal(pipe(go), 0);
	for (i = 0; i < NPROC; i++) {
		assert_true((pid[i] = fork()) != -1);
		if (pid[i] == 0) {
			(void)close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(1);
			if ((s = store_open(p, NULL, err, sizeof(err))) ==
			    NULL) {
				fprintf(stderr, "# open: %s\n", err);
				_exit(2);
			}
			newjob(&nj, "default", 0, 0, "x");
			bad = store_enqueue(s, &nj, 1) != 0;
			if (bad)
				fprintf(stderr, "# enqueue: %s\n",
				    store_error(s));
			store_close(s);
			_exit(bad ? 3 : 0);
		}
	}
	(void)close(go[0]);
	(void)close(go[1]);
	for (i = 0; i < NPROC; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	if ((s = store_open(p, NULL, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(count_jobs(s), NPROC);
	store_close(s);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_two_processes_claim(void **state)
{
	struct fx		*f = *state;
	enum { NJOBS = 2000, NPROC = 2 };
	struct store_newjob	*nj;
	char			(*ids)[STORE_ID_LEN + 1], path[NPROC][256];
	char			 line[64];
	pid_t			 pid[NPROC];
	FILE			*fp;
	size_t			 i, n = 0, per[NPROC] = { 0 };
	int			 go[2], st, p;

	assert_non_null(nj = calloc(NJOBS, sizeof(*nj)));
	for (i = 0; i < NJOBS; i++)
		newjob(&nj[i], "default", (int)(i % 3), 0, "job");
	assert_int_equal(store_enqueue(f->s, nj, NJOBS), 0);
	free(nj);
	store_close(f->s);	/* nothing open across the fork */
	f->s = NULL;

	assert_int_equal(pipe(go), 0);
	for (p = 0; p < NPROC; p++) {
		(void)snprintf(path[p], sizeof(path[p]), "%s/claimed.%d",
		    f->dir, p);
		assert_true((pid[p] = fork()) != -1);
		if (pid[p] == 0) {
			(void)close(go[1]);
			_exit(claimer(f->path, path[p], go[0]));
		}
	}
	(void)close(go[0]);
	(void)close(go[1]);	/* go */
	for (p = 0; p < NPROC; p++) {
		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}

	assert_non_null(ids = calloc(NJOBS + 1, sizeof(*ids)));
	for (p = 0; p < NPROC; p++) {
		assert_non_null(fp = fopen(path[p], "r"));
		while (fgets(line, sizeof(line), fp) != NULL) {
			assert_true(n < NJOBS);	/* else a job came twice */
			line[strcspn(line, "\n")] = '\0';
			assert_int_equal(strlen(line), STORE_ID_LEN);
			memcpy(ids[n++], line, STORE_ID_LEN + 1);
			per[p]++;
		}
		(void)fclose(fp);
	}
	print_message("# claimed %zu + %zu\n", per[0], per[1]);
	assert_int_equal(n, NJOBS);
	qsort(ids, n, sizeof(*ids), cmp_str);
	for (i = 1; i < n; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);

	f->s = open_store(f, NULL);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE state = 'running' AND attempts = 1"), NJOBS);
}

enum { BATCH = 500 };
struct report {
	char	first[STORE_ID_LEN + 1];
	char	last[STORE_ID_LEN + 1];
};

/* Enqueue batch after batch until killed, reporting each commit. */
static void
enqueuer(const char *db, int out)
{
	static struct store_newjob	 nj[BATCH];
	static char			 body[300];
	struct store			*s;
	struct report			 r;
	char				 err[256];
	int				 i;

	if ((s = store_open(db, NULL, err, sizeof(err))) == NULL)
		_exit(2);
	memset(body, 'b', sizeof(body) - 1);
	for (;;) {
		for (i = 0; i < BATCH; i++)
			newjob(&nj[i], "default", 0, 0, body);
		if (store_enqueue(s, nj, BATCH) != 0)
			_exit(3);
		memcpy(r.first, nj[0].id, sizeof(r.first));
		memcpy(r.last, nj[BATCH - 1].id, sizeof(r.last));
		if (write(out, &r, sizeof(r)) != sizeof(r))
			_exit(4);
	}
	/* NOTREACHED */
}

/*
 * kill -9 in the middle of big batches: the database is intact, holds
 * whole batches only, and every batch reported as committed.
 */
static void
test_kill_mid_enqueue(void **state)
{
	struct fx		*f = *state;
	struct report		*seen = NULL, r;
	struct store		*s;
	size_t			 nseen = 0, i, want;
	unsigned		 seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int			 round, fds[2], st, k;
	ssize_t			 n;
	pid_t			 pid;
	int64_t			 count;
	char			*ok;

	print_message("# seed %u\n", seed);
	srand(seed);
	store_close(f->s);
	f->s = NULL;
	for (round = 0; round < 4; round++) {
		assert_int_equal(pipe(fds), 0);
		assert_true((pid = fork()) != -1);
		if (pid == 0) {
			(void)close(fds[0]);
			enqueuer(f->path, fds[1]);
			_exit(5);
		}
		(void)close(fds[1]);
		want = 1 + (size_t)(rand() % 3);
		for (k = 0; (size_t)k < want; k++) {
			read_full(fds[0], &r, sizeof(r));
			assert_non_null(seen = realloc(seen,
			    (nseen + 1) * sizeof(*seen)));
			seen[nseen++] = r;
		}
		/* A random moment inside the next batch or two. */
		(void)usleep((useconds_t)(rand() % 40000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		while ((n = read(fds[0], &r, sizeof(r))) == sizeof(r)) {
			assert_non_null(seen = realloc(seen,
			    (nseen + 1) * sizeof(*seen)));
			seen[nseen++] = r;
		}
		assert_int_equal(n, 0);
		(void)close(fds[0]);

		s = open_store(f, NULL);
		ok = qtext(store_db(s), "PRAGMA integrity_check");
		assert_string_equal(ok, "ok");
		free(ok);
		count = count_jobs(s);
		print_message("# round %d: %zu batches reported, %lld jobs\n",
		    round, nseen, (long long)count);
		assert_int_equal(count % BATCH, 0);
		assert_true(count >= (int64_t)(nseen * BATCH));
		for (i = 0; i < nseen; i++) {
			assert_state(s, seen[i].first, STORE_JOB_QUEUED);
			assert_state(s, seen[i].last, STORE_JOB_QUEUED);
		}
		store_close(s);
	}
	free(seen);
	f->s = open_store(f, NULL);
}

/* --- operators: pause, retry, purge ----------------------------------- */

static void
test_pause(void **state)
{
	struct fx		*f = *state;
	char			 id[STORE_ID_LEN + 1], other[STORE_ID_LEN + 1];
	struct store_job	*j;
	int64_t			 when, now = store_now();

	enqueue1(f->s, "mail", 0, 0, 3, id);
	enqueue1(f->s, "default", 0, 0, 3, other);
	assert_int_equal(store_paused(f->s, "mail"), 0);
	assert_int_equal(store_pause(f->s, "mail", 1), 0);
	assert_int_equal(store_paused(f->s, "mail"), 1);
	/* Paused: nothing to claim and nothing due, so a helper sleeps. */
	assert_int_equal(store_claim(f->s, "mail", now + 1000, 1000, &j), 0);
	assert_int_equal(store_next_due(f->s, "mail", &when), 0);
	/* Other queues go on; the paused one still takes jobs. */
	assert_int_equal(store_claim(f->s, "default", now + 1000, 1000, &j), 1);
	store_job_free(j);
	enqueue1(f->s, "mail", 0, 0, 3, other);
	assert_int_equal(store_count_waiting(f->s, "mail"), 2);
	assert_int_equal(store_pause(f->s, "mail", 0), 0);
	assert_int_equal(store_paused(f->s, "mail"), 0);
	assert_int_equal(store_next_due(f->s, "mail", &when), 1);
	assert_int_equal(store_claim(f->s, "mail", now + 1000, 1000, &j), 1);
	assert_string_equal(j->id, id);
	store_job_free(j);
}

static void
test_retry(void **state)
{
	struct fx		*f = *state;
	char			 dead[STORE_ID_LEN + 1], done[STORE_ID_LEN + 1];
	char			 q[STORE_ID_LEN + 1], dead2[STORE_ID_LEN + 1];
	struct store_job	*j;
	int64_t			 now = store_now();

	enqueue1(f->s, "default", 0, 0, 2, dead);
	enqueue1(f->s, "default", 0, 0, 2, done);
	enqueue1(f->s, "default", 0, 0, 2, q);
	enqueue1(f->s, "mail", 0, 0, 1, dead2);
	force(f->s, dead, "dead", 2);
	force(f->s, done, "done", 1);
	force(f->s, dead2, "dead", 1);
	assert_int_equal(store_retry(f->s, dead, now), STORE_RETRY_DONE);
	j = get(f->s, dead);
	assert_int_equal(j->state, STORE_JOB_QUEUED);
	assert_int_equal(j->attempts, 2);	/* history kept */
	assert_int_equal(j->max_attempts, 3);	/* and one more run */
	assert_int_equal(j->run_at, now);
	assert_int_equal(j->finished_at, 0);
	store_job_free(j);
	assert_int_equal(store_retry(f->s, done, now), STORE_RETRY_REFUSED);
	assert_int_equal(store_retry(f->s, q, now), STORE_RETRY_REFUSED);
	assert_int_equal(store_retry(f->s, "nosuchjob", now),
	    STORE_RETRY_UNKNOWN);
	assert_state(f->s, done, STORE_JOB_DONE);
	/* Every dead job of one queue, then of all. */
	force(f->s, dead, "dead", 3);
	assert_int_equal(store_retry_dead(f->s, "mail", now), 1);
	assert_state(f->s, dead2, STORE_JOB_QUEUED);
	assert_state(f->s, dead, STORE_JOB_DEAD);
	assert_int_equal(store_retry_dead(f->s, NULL, now), 1);
	assert_state(f->s, dead, STORE_JOB_QUEUED);
	assert_int_equal(store_retry_dead(f->s, NULL, now), 0);
}

/* Progress of store_bulk: each batch's total, in order. */
static int
bulk_seen(void *arg, int64_t done)
{
	int64_t *v = arg;

	v[++v[0]] = done;
	return 0;
}

/*
 * store_bulk: each filter narrows, the op's states bound what changes,
 * batches report their running total, a rerun finds nothing left.
 */
static void
test_bulk(void **state)
{
	struct fx		*f = *state;
	struct store_filter	 flt;
	int64_t			 now = store_now(), seen[16] = { 0 };
	char			 id[STORE_ID_LEN + 1];
	int			 i;

	for (i = 0; i < 10; i++)
		enqueue1(f->s, i < 6 ? "default" : "mail", 0, 0, 2, id);
	/* created_at 1000 + i s; dead 0-7 (0-3 timed out), done 8, 9 queued */
	FX_EXEC(f->s, "UPDATE jobs SET created_at = 1000000 + (seq - 1) * 1000;"
	    "UPDATE jobs SET state = 'dead', attempts = 2, finished_at = 5,"
	    " last_error = CASE WHEN seq <= 4 THEN 'timeout after 60s'"
	    " ELSE 'exit 1' END WHERE seq <= 8;"
	    "UPDATE jobs SET state = 'done', finished_at = 5 WHERE seq = 9");

	memset(&flt, 0, sizeof(flt));
	assert_int_equal(store_bulk_count(f->s, STORE_BULK_RETRY, &flt), 8);
	flt.queue = "default";
	assert_int_equal(store_bulk_count(f->s, STORE_BULK_RETRY, &flt), 6);
	flt.error = "timeout%";
	assert_int_equal(store_bulk_count(f->s, STORE_BULK_RETRY, &flt), 4);
	flt.since = 1001000;
	flt.until = 1003000;
	assert_int_equal(store_bulk_count(f->s, STORE_BULK_RETRY, &flt), 2);
	assert_int_equal(store_bulk(f->s, STORE_BULK_RETRY, &flt, now, 1,
	    bulk_seen, seen), 2);
	assert_int_equal(seen[0], 2);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2], 2);
	assert_int_equal(FX_INT(f->s, "SELECT count(*) FROM jobs WHERE state ="
	    " 'queued' AND seq IN (2, 3) AND finished_at IS NULL AND"
	    " max_attempts = 3"), 2);
	assert_int_equal(store_bulk(f->s, STORE_BULK_RETRY, &flt, now, 1,
	    NULL, NULL), 0);

	/* A state the op does not apply to is refused. */
	memset(&flt, 0, sizeof(flt));
	flt.states = 1u << STORE_JOB_DONE;
	assert_int_equal(store_bulk(f->s, STORE_BULK_RETRY, &flt, now, 10,
	    NULL, NULL), -1);
	assert_int_equal(store_bulk(f->s, STORE_BULK_DISCARD, &flt, now, 10,
	    NULL, NULL), 1);
	/* cancel: queued and retry (3 now: 2 retried, 1 never ran). */
	memset(&flt, 0, sizeof(flt));
	assert_int_equal(store_bulk(f->s, STORE_BULK_CANCEL, &flt, now, 2,
	    NULL, NULL), 3);
	assert_int_equal(FX_INT(f->s, "SELECT count(*) FROM jobs WHERE state ="
	    " 'cancelled' AND finished_at IS NOT NULL"), 3);
	/* discard: dead by default. */
	assert_int_equal(store_bulk(f->s, STORE_BULK_DISCARD, &flt, now, 4,
	    NULL, NULL), 6);
	assert_int_equal(count_jobs(f->s), 3);
}

static void
test_purge(void **state)
{
	struct fx	*f = *state;
	char		 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	char		 c[STORE_ID_LEN + 1];
	struct store_job *j;

	enqueue1(f->s, "default", 0, 0, 2, a);
	enqueue1(f->s, "default", 0, 0, 2, b);
	enqueue1(f->s, "default", 0, 0, 2, c);
	force(f->s, a, "done", 1);
	force(f->s, b, "dead", 2);
	qexec(store_db(f->s), "UPDATE jobs SET finished_at = 1000"
	    " WHERE state IN ('done', 'dead')");
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_RUNNING, 5000), -1);
	assert_non_null(strstr(store_error(f->s), "purge"));
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_DEAD, 999), 0);
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_DEAD, 5000), 1);
	assert_int_equal(store_get(f->s, b, &j), 0);
	assert_state(f->s, a, STORE_JOB_DONE);
	assert_int_equal(store_purge(f->s, "mail", STORE_JOB_DONE, 5000), 0);
	assert_int_equal(store_purge(f->s, "default", STORE_JOB_DONE, 5000), 1);
	assert_state(f->s, c, STORE_JOB_QUEUED);
	assert_int_equal(count_jobs(f->s), 1);
}

/* Dead letters: a death enqueues one JSON letter in its transaction, by
 * finish_failed and by a requeue of expired leases; a letter's own death
 * enqueues none; without a dead-letter queue nothing is added. */
static void
test_dead_letters(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	char			 sql[256], *t;
	int64_t			 t0 = store_now() + 1000;
	int			 dead = 0;

	/* Off: a death adds nothing. */
	enqueue1(f->s, "default", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "default", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "boom", 0, 100,
	    1000, t0, &dead), 1);
	assert_int_equal(dead, 1);
	assert_int_equal(count_jobs(f->s), 1);

	assert_int_equal(store_set_dead_letter(f->s, "alerts", "/jobs/", 3,
	    5), 0);
	enqueue1(f->s, "default", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "default", t0, 1000, &j), 1);
	store_job_free(j);
	/* A retry is no death. */
	qexec(store_db(f->s), "UPDATE jobs SET max_attempts = 2"
	    " WHERE state = 'running'");
	assert_int_equal(store_finish_failed(f->s, id, 1, "once", 0, 1, 1,
	    t0, &dead), 1);
	assert_int_equal(dead, 0);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 0);
	assert_int_equal(store_claim(f->s, "default", t0 + 10, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 2, "exit \"3\"\n", 0,
	    1, 1, t0 + 20, &dead), 1);
	assert_int_equal(dead, 1);
	t = qtext(store_db(f->s), "SELECT CAST(body AS TEXT) || '|' ||"
	    " content_type || '|' || state || '|' || max_attempts || '|' ||"
	    " priority FROM jobs WHERE queue = 'alerts'");
	snprintf(sql, sizeof(sql), "{\"job\":\"%s\",\"queue\":\"default\","
	    "\"attempts\":2,\"last_error\":\"exit \\\"3\\\"\\n\","
	    "\"status_url\":\"/jobs/%s\"}|application/json|queued|3|5", id,
	    id);
	assert_string_equal(t, sql);
	free(t);

	/* An expired lease with no attempt left: dead, with its letter. */
	enqueue1(f->s, "mail", 0, 0, 1, id2);
	assert_int_equal(store_claim(f->s, "mail", t0, 10, &j), 1);
	store_job_free(j);
	assert_int_equal(store_requeue_expired(f->s, t0 + 100, NULL, NULL), 1);
	assert_state(f->s, id2, STORE_JOB_DEAD);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE queue ="
	    " 'alerts' AND json_extract(CAST(body AS TEXT), '$.job') = '%s'",
	    id2);
	assert_int_equal(qint(store_db(f->s), sql), 1);

	/* A letter that dies gets no letter. */
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 2);
	assert_int_equal(store_claim(f->s, "alerts", t0 + 1000, 1000, &j), 1);
	assert_int_equal(store_finish_failed(f->s, j->id, 1, "no", 1, 1, 1,
	    t0 + 1000, &dead), 1);
	assert_int_equal(dead, 1);
	store_job_free(j);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 2);

	/* Off again. */
	assert_int_equal(store_set_dead_letter(f->s, NULL, NULL, 0, 0), 0);
	enqueue1(f->s, "default", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "default", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "x", 1, 1, 1, t0,
	    &dead), 1);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 2);
}

struct counted {
	int64_t	n[3][6];	/* default, mail, other */
};

static void
on_count(void *arg, const char *queue, enum store_state state, int64_t n)
{
	struct counted *c = arg;
	int q = strcmp(queue, "default") == 0 ? 0 :
	    strcmp(queue, "mail") == 0 ? 1 : 2;

	c->n[q][state] += n;
}

/* The gauges' reads: the head of line per priority level (the oldest
 * created, the earliest due) and the counts per state, equal to a plain
 * GROUP BY. */
static void
test_gauges(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	struct store_head	 h;
	struct counted		 c;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 now = store_now();
	int			 i;

	assert_int_equal(store_queue_head(f->s, "default", now, &h), 0);
	assert_int_equal(h.jobs, 0);
	for (i = 0; i < 5; i++)
		enqueue1(f->s, "default", i % 3, 0, 3, id);
	enqueue1(f->s, "default", 7, now + 60000, 3, id);	/* not due */
	enqueue1(f->s, "mail", 0, 0, 3, id);
	qexec(store_db(f->s), "UPDATE jobs SET created_at = created_at - 5000,"
	    " run_at = run_at - 4000 WHERE priority = 1");
	assert_int_equal(store_queue_head(f->s, "default", now, &h), 1);
	assert_int_equal(h.jobs, 4);		/* priorities 7, 2, 1, 0 */
	/* The priority 1 level's head: created 5 s, due 4 s before its
	 * enqueue, a moment after now. */
	assert_true(h.oldest_created_at < now - 4500);
	assert_true(h.oldest_due < now - 3500);
	assert_true(h.oldest_due > now - 4500);

	assert_int_equal(store_claim(f->s, "mail", now + 1000, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "default", now + 1000, 1000, &j),
	    1);
	assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0, now), 1);
	store_job_free(j);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_count_states(f->s, on_count, &c), 0);
	assert_int_equal(c.n[0][STORE_JOB_QUEUED], 5);
	assert_int_equal(c.n[0][STORE_JOB_DONE], 1);
	assert_int_equal(c.n[1][STORE_JOB_RUNNING], 1);
	assert_int_equal(c.n[1][STORE_JOB_QUEUED], 0);
	assert_int_equal(qint(store_db(f->s), "SELECT count(*) FROM jobs"), 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_open_pragmas),
		T(test_open_reopen_idempotent),
		T(test_open_empty_file),
		T(test_open_errors),
		T(test_open_readonly),
		T(test_open_cloexec),
		T(test_open_wal_files_kept),
		T(test_open_migration_faults),
		T(test_migrate_v1),
		T(test_migrate_v2),
		T(test_migrate_v3),
		T(test_migrate_v4),
		T(test_rejected_bounded),
		T(test_errcodes),
		T(test_state_names),
		T(test_ids),
		T(test_enqueue_fields),
		T(test_enqueue_invalid),
		T(test_idempotency),
		T(test_claim_order),
		T(test_lifecycle_done),
		T(test_lifecycle_retry_dead),
		T(test_finish_typed_and_run_at),
		T(test_backoff),
		T(test_release),
		T(test_fencing),
		T(test_states),
		T(test_cancel),
		T(test_requeue),
		T(test_requeue_counts),
		T(test_prune),
		T(test_stats),
		T(test_list),
		T(test_views),
		T(test_query_plans),
		T(test_serial_claim),
		T(test_serial_many),
		T(test_drain),
		T(test_hot_path_no_temp_btrees),
		T(test_batch),
		T(test_faults),
		T(test_disk_full),
		T(test_busy),
		T(test_open_concurrent),
		T(test_two_processes_claim),
		T(test_kill_mid_enqueue),
		T(test_pause),
		T(test_retry),
		T(test_purge),
		T(test_bulk),
		T(test_dead_letters),
		T(test_flow),
		T(test_gauges),
#undef T
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
