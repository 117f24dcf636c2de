/*
 * test_store_pg: the store's cases on PostgreSQL.  Run by
 * tests/unit/store-pg.sh, which starts a private cluster and passes its
 * connection string in FCGIQ_TEST_PG; without it every case is skipped.
 *
 * The cases of test_store.c that use the public API alone run here as
 * they are (the file is included; its own main is renamed away), each on
 * emptied tables; the cases below check what SQLite's cases check through
 * the sqlite3 handle, through libpq instead, and what only PostgreSQL
 * has: SKIP LOCKED claims, reconnection, read-only and concurrent
 * migrations.
 */
#include <stdint.h>

/* test_store.c's statements beside the seam, on a side connection. */
static void	pexec(const char *);
static int64_t	pint(const char *);
#define FX_EXEC(s, sql)	((void)(s), pexec(sql))
#define FX_INT(s, sql)	((void)(s), pint(sql))
#define main	test_store_sqlite_main
#include "test_store.c"
#undef main

#include <poll.h>

#include <libpq-fe.h>

#include "store-pg.h"

static const char *
conninfo(void)
{
	return getenv("FCGIQ_TEST_PG");
}

/* A side connection, to look and change behind the store's back. */
static PGconn *
side(void)
{
	PGconn	*c = PQconnectdb(conninfo());

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

static void
pexec(const char *sql)
{
	PGconn		*c = side();
	PGresult	*r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static int64_t
pint(const char *sql)
{
	PGconn		*c = side();
	PGresult	*r = PQexec(c, sql);
	int64_t		 v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

static int
pg_setup(void **state)
{
	struct fx	*f;

	if (conninfo() == NULL)
		skip();
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->path, sizeof(f->path), "%s", conninfo());
	*state = f;
	f->s = open_store(f, NULL);
	pexec("TRUNCATE jobs, queues, rejected, schedules RESTART IDENTITY");
	return 0;
}

static int
pg_teardown(void **state)
{
	struct fx	*f = *state;

	store_close(f->s);
	free(f);
	return 0;
}

/* --- cases ------------------------------------------------------------ */

static void
test_pg_selects(void **state)
{
	(void)state;
	assert_true(store_is_postgresql("postgresql://u@h/db"));
	assert_true(store_is_postgresql("postgres://h/db"));
	assert_true(store_is_postgresql("host=/run/pg dbname=fcgiq"));
	assert_true(store_is_postgresql("dbname=fcgiq"));
	assert_false(store_is_postgresql("/var/lib/fcgiq/queue.db"));
	assert_false(store_is_postgresql("queue.db"));
	assert_false(store_is_postgresql("/tmp/a=b/queue.db"));
}

static void
test_pg_schema(void **state)
{
	struct fx	*f = *state;
	struct store	*s2;

	assert_int_equal(pint("SELECT max(version) FROM fcgiq_schema"), 7);
	/* The claim's partial index, in claim order. */
	assert_int_equal(pint("SELECT count(*) FROM pg_indexes WHERE"
	    " indexname = 'jobs_claim' AND indexdef LIKE"
	    " '%(queue, priority DESC, run_at, seq) WHERE%'"), 1);
	assert_int_equal(pint("SELECT count(*) FROM information_schema.columns"
	    " WHERE table_name = 'jobs' AND column_name IN ('serial_key',"
	    " 'crashes', 'result_type')"), 3);
	/* Open again: nothing to migrate, and a read-only open works. */
	s2 = open_store(f, NULL);
	store_close(s2);
	struct store_opts ro = { .readonly = 1 };
	s2 = open_store(f, &ro);
	store_close(s2);
}

static void
test_pg_enqueue_fields(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j;
	struct store_job	*g;
	static const char	 body[] = "a\0b\xff\x01z";

	newjob(&j, "q", 7, 0, "");
	j.body = body;
	j.body_len = sizeof(body) - 1;
	j.max_attempts = 4;
	j.query_string = "x=1&y=it's";
	j.remote_addr = "127.0.0.1";
	j.headers = "{\"X-A\":\"b\"}";
	assert_int_equal(store_enqueue(f->s, &j, 1), 0);
	assert_int_equal(j.outcome, STORE_ENQ_NEW);
	assert_int_equal(strlen(j.id), STORE_ID_LEN);
	g = get(f->s, j.id);
	assert_string_equal(g->queue, "q");
	assert_int_equal(g->state, STORE_JOB_QUEUED);
	assert_int_equal(g->priority, 7);
	assert_int_equal(g->max_attempts, 4);
	assert_int_equal(g->attempts, 0);
	assert_int_equal(g->body_len, sizeof(body) - 1);
	assert_memory_equal(g->body, body, sizeof(body) - 1);
	assert_string_equal(g->query_string, "x=1&y=it's");
	assert_string_equal(g->headers, "{\"X-A\":\"b\"}");
	assert_string_equal(g->method, "POST");
	assert_null(g->idempotency_key);
	assert_null(g->result);
	assert_int_equal(g->started_at, 0);
	assert_true(g->run_at == g->created_at);
	store_job_free(g);
	assert_int_equal(store_get(f->s, "nosuch", &g), 0);
	/* Invalid jobs: nothing stored. */
	j.max_attempts = 0;
	assert_int_equal(store_enqueue(f->s, &j, 1), -1);
	assert_int_equal(store_errcode(f->s), STORE_EINVAL);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 1);
}

static void
test_pg_batch_enqueue(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[600];
	size_t			 i;

	for (i = 0; i < 600; i++)
		newjob(&j[i], i % 2 ? "a" : "b", 0, 0, "payload");
	assert_int_equal(store_enqueue(f->s, j, 600), 0);
	for (i = 0; i < 600; i++) {
		assert_int_equal(j[i].outcome, STORE_ENQ_NEW);
		if (i > 0)	/* ids sort in creation order */
			assert_true(strcmp(j[i - 1].id, j[i].id) < 0);
	}
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 600);
	assert_int_equal(store_count_waiting(f->s, "a"), 300);
}

/* Batches of every size up to 2 x 17 rows (insert_rows pads each to a
 * power of two with NULL rows it filters out): exactly their jobs go in,
 * with their fields, keyed or not. */
static void
test_pg_batch_sizes(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[34];
	struct store_job	*g;
	char			 key[34][16], body[34][16];
	size_t			 n, i, total = 0;

	for (n = 1; n <= 34; n++) {
		for (i = 0; i < n; i++) {
			(void)snprintf(body[i], sizeof(body[i]), "b%zu.%zu", n,
			    i);
			newjob(&j[i], "q", (int)i, 0, body[i]);
			if (n % 2 == 0 && i % 3 == 0) {
				(void)snprintf(key[i], sizeof(key[i]), "k%zu.%zu",
				    n, i);
				j[i].idempotency_key = key[i];
			}
		}
		assert_int_equal(store_enqueue(f->s, j, n), 0);
		total += n;
		assert_int_equal(pint("SELECT count(*) FROM jobs"),
		    (int64_t)total);
		i = n - 1;
		assert_int_equal(store_get(f->s, j[i].id, &g), 1);
		assert_int_equal(g->priority, (int)i);
		assert_int_equal(g->body_len, strlen(body[i]));
		assert_memory_equal(g->body, body[i], g->body_len);
		store_job_free(g);
	}
}

static void
test_pg_idempotency(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[4];
	char			 first[STORE_ID_LEN + 1];

	newjob(&j[0], "q", 0, 0, "one");
	j[0].idempotency_key = "k1";
	assert_int_equal(store_enqueue(f->s, j, 1), 0);
	assert_int_equal(j[0].outcome, STORE_ENQ_NEW);
	memcpy(first, j[0].id, sizeof(first));
	/* Same key and body: duplicate; other body: conflict; other queue:
	 * new; a key repeated within the batch: its first job's. */
	newjob(&j[0], "q", 0, 0, "one");
	j[0].idempotency_key = "k1";
	newjob(&j[1], "q", 0, 0, "two");
	j[1].idempotency_key = "k1";
	newjob(&j[2], "r", 0, 0, "one");
	j[2].idempotency_key = "k1";
	newjob(&j[3], "r", 0, 0, "one");
	j[3].idempotency_key = "k1";
	assert_int_equal(store_enqueue(f->s, j, 4), 0);
	assert_int_equal(j[0].outcome, STORE_ENQ_DUPLICATE);
	assert_string_equal(j[0].id, first);
	assert_int_equal(j[1].outcome, STORE_ENQ_CONFLICT);
	assert_string_equal(j[1].id, first);
	assert_int_equal(j[2].outcome, STORE_ENQ_NEW);
	assert_int_equal(j[3].outcome, STORE_ENQ_DUPLICATE);
	assert_string_equal(j[3].id, j[2].id);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 2);
	/* A repeat of a lost key within the batch stands against the
	 * winner too. */
	newjob(&j[0], "q", 0, 0, "one");
	j[0].idempotency_key = "k1";
	newjob(&j[1], "q", 0, 0, "two");
	j[1].idempotency_key = "k1";
	assert_int_equal(store_enqueue(f->s, j, 2), 0);
	assert_int_equal(j[0].outcome, STORE_ENQ_DUPLICATE);
	assert_int_equal(j[1].outcome, STORE_ENQ_CONFLICT);
	assert_string_equal(j[1].id, first);
}

static void
test_pg_lifecycle_done(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j, *g;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */

	enqueue1(f->s, "q", 0, 0, 3, id);
	assert_int_equal(store_claim(f->s, "q", t + 10, 30000, &j), 1);
	assert_string_equal(j->id, id);
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->lease_until, t + 10 + 30000);
	assert_int_equal(j->started_at, t + 10);
	assert_memory_equal(j->body, "payload", 7);
	assert_int_equal(store_extend(f->s, id, 1, t + 90000), 1);
	assert_int_equal(store_extend(f->s, id, 2, t + 90000), 0);
	assert_int_equal(store_finish_done_typed(f->s, id, 2, "x", 1, NULL,
	    t), 0);
	assert_int_equal(store_finish_done_typed(f->s, id, 1, "r\0s", 3,
	    "application/json", t + 20), 1);
	g = get(f->s, id);
	assert_int_equal(g->state, STORE_JOB_DONE);
	assert_int_equal(g->result_len, 3);
	assert_memory_equal(g->result, "r\0s", 3);
	assert_string_equal(g->result_type, "application/json");
	assert_int_equal(g->finished_at, t + 20);
	assert_int_equal(g->lease_until, 0);
	store_job_free(g);
	store_job_free(j);
	/* Done once: a second finish is a lost lease. */
	assert_int_equal(store_finish_done(f->s, id, 1, NULL, 0, t), 0);
}

static void
test_pg_failed(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j, *g;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */
	int			 dead = -1;

	enqueue1(f->s, "q", 0, 0, 2, id);
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "boom", 0, 1000,
	    1000, t, &dead), 1);
	assert_int_equal(dead, 0);
	g = get(f->s, id);
	assert_int_equal(g->state, STORE_JOB_RETRY);
	assert_int_equal(g->run_at, t + 1000);
	assert_string_equal(g->last_error, "boom");
	store_job_free(g);
	/* Not due before its backoff. */
	assert_int_equal(store_claim(f->s, "q", t + 999, 1000, &j), 0);
	assert_int_equal(store_claim(f->s, "q", t + 1000, 1000, &j), 1);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
	assert_int_equal(store_finish_failed_at(f->s, id, 2, "again", 0,
	    t + 5000, 10, 10, t + 1001, &dead), 1);
	assert_int_equal(dead, 1);	/* attempts used up */
	g = get(f->s, id);
	assert_int_equal(g->state, STORE_JOB_DEAD);
	assert_int_equal(g->finished_at, t + 1001);
	store_job_free(g);
	assert_int_equal(store_retry(f->s, id, t), STORE_RETRY_DONE);
	assert_int_equal(store_retry(f->s, "nosuch", t), STORE_RETRY_UNKNOWN);
	g = get(f->s, id);
	assert_int_equal(g->state, STORE_JOB_QUEUED);
	assert_int_equal(g->max_attempts, 3);
	store_job_free(g);
	/* Permanent: dead at once. */
	assert_int_equal(store_claim(f->s, "q", t + 2000, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 3, "no", 1, 10, 10,
	    t, &dead), 1);
	assert_int_equal(dead, 1);
	assert_int_equal(store_retry_dead(f->s, NULL, t), 1);
}

static int	rq_requeued, rq_dead;
static void
rq_count(void *arg, const char *queue, int requeued, int dead)
{
	(void)arg;
	(void)queue;
	rq_requeued += requeued;
	rq_dead += dead;
}

static void
test_pg_requeue_fencing(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */

	enqueue1(f->s, "q", 0, 0, 3, a);
	enqueue1(f->s, "q", 0, 0, 1, b);
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_claim(f->s, "q", t, 5000, &j), 1);
	store_job_free(j);
	/* Before either lease ends, nothing. */
	assert_int_equal(store_requeue_expired(f->s, t + 999, rq_count,
	    NULL), 0);
	rq_requeued = rq_dead = 0;
	assert_int_equal(store_requeue_expired(f->s, t + 6000, rq_count,
	    NULL), 2);
	assert_int_equal(rq_requeued, 1);
	assert_int_equal(rq_dead, 1);	/* b had one attempt */
	assert_state(f->s, a, STORE_JOB_QUEUED);
	assert_state(f->s, b, STORE_JOB_DEAD);
	/* The expired attempt can no longer finish. */
	assert_int_equal(store_finish_done(f->s, a, 1, NULL, 0, t), 0);
	assert_int_equal(store_claim(f->s, "q", t + 6000, 1000, &j), 1);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
	assert_int_equal(store_finish_done(f->s, a, 1, NULL, 0, t), 0);
	assert_int_equal(store_release(f->s, a, 2, "shutdown", t), 1);
	assert_state(f->s, a, STORE_JOB_QUEUED);
	assert_int_equal(store_claim(f->s, "q", t + 6000, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_requeue_running(f->s, t, NULL, NULL), 1);
}

static void
test_pg_prune(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */
	int			 i;

	for (i = 0; i < 3; i++) {
		enqueue1(f->s, i == 2 ? "b" : "a", 0, 0, 3, id);
		assert_int_equal(store_claim(f->s, i == 2 ? "b" : "a", t, 1000,
		    &j), 1);
		assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0,
		    t + i), 1);
		store_job_free(j);
	}
	enqueue1(f->s, "a", 0, 0, 3, id);
	assert_int_equal(store_prune(f->s, "a", t + 1), 1);
	assert_int_equal(store_prune(f->s, NULL, t + 100), 2);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 1);
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_QUEUED, t), -1);
}

static void
test_pg_batch(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */

	enqueue1(f->s, "q", 0, 0, 3, a);
	enqueue1(f->s, "q", 0, 0, 3, b);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 1);
	assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0, t), 1);
	store_job_free(j);
	/* Other connections see nothing of it yet. */
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state ="
	    " 'queued'"), 2);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_state(f->s, a, STORE_JOB_DONE);
	/* A failing call dooms the batch: all of it rolls back. */
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_purge(f->s, NULL, STORE_JOB_ANY, t), 0);
	assert_int_equal(store_pause(f->s, NULL, 1), -1);	/* NOT NULL */
	assert_int_equal(store_finish_done(f->s, b, 1, NULL, 0, t), -1);
	assert_int_equal(store_errcode(f->s), STORE_EABORT);
	assert_int_equal(store_batch_end(f->s), -1);
	assert_state(f->s, b, STORE_JOB_QUEUED);
	assert_int_equal(store_batch_end(f->s), -1);	/* none open */
}

/* Two connections claim at once: the row one holds is skipped, not
 * waited for. */
static void
test_pg_skip_locked(void **state)
{
	struct fx		*f = *state;
	struct store		*s2 = open_store(f, NULL);
	struct store_job	*j1, *j2;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	int64_t			 t = store_now() + 1000;	/* all due */

	enqueue1(f->s, "q", 5, 0, 3, a);
	enqueue1(f->s, "q", 0, 0, 3, b);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "q", t, 1000, &j1), 1);
	assert_string_equal(j1->id, a);
	assert_int_equal(store_claim(s2, "q", t, 1000, &j2), 1);
	assert_string_equal(j2->id, b);
	store_job_free(j2);
	assert_int_equal(store_claim(s2, "q", t, 1000, &j2), 0);
	assert_int_equal(store_batch_end(f->s), 0);
	store_job_free(j1);
	store_close(s2);
}

/* Many processes claiming: every job exactly once. */
static void
test_pg_concurrent_claims(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[200];
	pid_t			 pid[4];
	int			 i, st;

	for (i = 0; i < 200; i++)
		newjob(&j[i], "q", 0, 0, "p");
	assert_int_equal(store_enqueue(f->s, j, 200), 0);
	for (i = 0; i < 4; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[256];
			struct store *s = store_open(f->path, NULL, err,
			    sizeof(err));
			struct store_job *c;
			int r;

			if (s == NULL)
				_exit(2);
			while ((r = store_claim(s, "q", store_now(), 60000,
			    &c)) == 1) {
				if (store_finish_done(s, c->id, c->attempts,
				    NULL, 0, store_now()) != 1)
					_exit(3);
				store_job_free(c);
			}
			_exit(r == 0 ? 0 : 4);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state = 'done'"
	    " AND attempts = 1"), 200);
}

/* Fresh database, several processes opening it at once: one migrates,
 * the others wait for it (advisory lock) and find the schema. */
static void
test_pg_open_concurrent(void **state)
{
	struct fx	*f = *state;
	pid_t		 pid[4];
	int		 i, st;

	store_close(f->s);
	f->s = NULL;
	pexec("SET client_min_messages = warning; DROP TABLE jobs, queues, rejected, schedules, fcgiq_schema, fcgiq_keys"
	    " CASCADE; DROP FUNCTION datetime(double precision, text);"
	    " DROP FUNCTION julianday(text)");
	for (i = 0; i < 4; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[256];
			struct store *s = store_open(f->path, NULL, err,
			    sizeof(err));

			if (s == NULL) {
				fprintf(stderr, "open: %s\n", err);
				_exit(1);
			}
			store_close(s);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(pint("SELECT count(*) FROM fcgiq_schema"), 1);
	f->s = open_store(f, NULL);
}

/* The connection is cut: the call fails as transient (503 at the door),
 * and a later call reconnects by itself. */
static void
test_pg_reconnect(void **state)
{
	struct fx		*f = *state;
	char			 id[STORE_ID_LEN + 1];
	struct store_newjob	 j;
	struct timespec		 ms = { 0, 20 * 1000000 };
	int			 i, r = -1;

	enqueue1(f->s, "q", 0, 0, 3, id);
	pexec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = 'fcgiq' AND pid <> pg_backend_pid()");
	newjob(&j, "q", 0, 0, "after");
	assert_int_equal(store_enqueue(f->s, &j, 1), -1);
	assert_int_equal(store_errcode(f->s), STORE_EIO);
	for (i = 0; i < 200 && r != 0; i++) {
		r = store_enqueue(f->s, &j, 1);
		if (r != 0)
			nanosleep(&ms, NULL);
	}
	assert_int_equal(r, 0);
	assert_int_equal(store_count_waiting(f->s, "q"), 2);
}

/*
 * Statements are prepared per connection (store-pg.c): a reconnect must
 * prepare them again on the new session.  The claim inside a batch is
 * the proof: a statement name the new session does not know would fail
 * there (inside a transaction nothing is retried).  between() cuts the
 * store's session, the store finds out at its next call.
 */
static void
reprepare_after(struct fx *f, void (*between)(void))
{
	char			 id[STORE_ID_LEN + 1];
	struct store_job	*c = NULL;
	struct timespec		 ms = { 0, 20 * 1000000 };
	int			 i, r = -1;

	enqueue1(f->s, "q", 0, 0, 3, id);
	enqueue1(f->s, "q", 0, 0, 3, id);
	/* The claim and the finish prepared on this session. */
	assert_int_equal(store_claim(f->s, "q", store_now(), 30000, &c), 1);
	assert_int_equal(store_finish_done(f->s, c->id, 1, NULL, 0,
	    store_now()), 1);
	store_job_free(c);
	c = NULL;
	between();
	/* Fails until the store has seen the connection go and is back. */
	for (i = 0; i < 500 && r != 0; i++) {
		if ((r = store_batch_begin(f->s)) != 0) {
			assert_int_equal(store_errcode(f->s), STORE_EIO);
			nanosleep(&ms, NULL);
		}
	}
	assert_int_equal(r, 0);
	assert_int_equal(store_claim(f->s, "q", store_now(), 30000, &c), 1);
	assert_int_equal(store_finish_done(f->s, c->id, 1, NULL, 0,
	    store_now()), 1);
	assert_int_equal(store_batch_end(f->s), 0);
	store_job_free(c);
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state = 'done'"),
	    2);
}

static void
terminate(void)
{
	pexec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = 'fcgiq' AND pid <> pg_backend_pid()");
}

static void
test_pg_reprepare_reconnect(void **state)
{
	reprepare_after(*state, terminate);
}

/* The server itself restarted (pg_ctl restart -m immediate, the command
 * store-pg.sh passes in FCGIQ_TEST_PG_RESTART). */
static void
restart(void)
{
	assert_int_equal(system(getenv("FCGIQ_TEST_PG_RESTART")), 0);
}

static void
test_pg_reprepare_restart(void **state)
{
	if (getenv("FCGIQ_TEST_PG_RESTART") == NULL)
		skip();
	reprepare_after(*state, restart);
}

/*
 * The session lost its statements with the connection still up
 * (DEALLOCATE ALL here; DISCARD ALL or a pooler would do the same): the
 * first call to notice, outside a transaction, prepares again and
 * succeeds at once, and so do the calls after it; inside a transaction
 * the call fails (the transaction is gone) and the next batch works.
 */
static void
lose_statements(struct store *s)
{
	PGresult	*res = PQexec(s->pg->conn, "DEALLOCATE ALL");

	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

static void
test_pg_reprepare_lost(void **state)
{
	struct fx		*f = *state;
	char			 id[STORE_ID_LEN + 1];
	struct store_job	*c = NULL;

	enqueue1(f->s, "q", 0, 0, 3, id);
	enqueue1(f->s, "q", 0, 0, 3, id);
	assert_int_equal(store_count_waiting(f->s, "q"), 2);
	lose_statements(f->s);
	assert_int_equal(store_count_waiting(f->s, "q"), 2);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "q", store_now(), 30000, &c), 1);
	assert_int_equal(store_batch_end(f->s), 0);
	store_job_free(c);
	c = NULL;
	lose_statements(f->s);
	assert_int_equal(store_batch_begin(f->s), 0);	/* prepared again */
	assert_int_equal(store_count_waiting(f->s, "q"), 1);
	lose_statements(f->s);				/* in the batch */
	assert_int_equal(store_count_waiting(f->s, "q"), -1);
	assert_int_equal(store_batch_end(f->s), -1);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "q", store_now(), 30000, &c), 1);
	assert_int_equal(store_batch_end(f->s), 0);
	store_job_free(c);
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state ="
	    " 'running'"), 2);
}

/* A read-only server (a standby, or default_transaction_read_only):
 * STORE_EREADONLY, nothing stored. */
static void
test_pg_readonly(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j;
	struct store		*s2;
	PGconn			*c;
	PGresult		*r;

	pexec("ALTER DATABASE fcgiq SET default_transaction_read_only = on");
	s2 = open_store(f, NULL);
	newjob(&j, "q", 0, 0, "x");
	assert_int_equal(store_enqueue(s2, &j, 1), -1);
	assert_int_equal(store_errcode(s2), STORE_EREADONLY);
	store_close(s2);
	/* One statement at a time: a multi-statement string is one
	 * transaction, read-only from its start. */
	c = side();
	PQclear(PQexec(c, "SET default_transaction_read_only = off"));
	r = PQexec(c, "ALTER DATABASE fcgiq"
	    " SET default_transaction_read_only = off");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 0);
}

/* An enqueue on one connection wakes a listening other (another host's
 * helper), once per committed batch; SQLite has no such fd. */
static void
test_pg_listen(void **state)
{
	struct fx		*f = *state;
	struct store		*s2 = open_store(f, NULL);
	struct store_newjob	 j[3];
	struct pollfd		 pfd;
	char			 id[STORE_ID_LEN + 1];

	assert_int_equal(store_listen_fd(s2), -1);
	assert_int_equal(store_listen(s2), 0);
	assert_true(store_listen_fd(s2) >= 0);
	assert_int_equal(store_listen_take(s2), 0);
	enqueue1(f->s, "q", 0, 0, 3, id);
	pfd.fd = store_listen_fd(s2);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(store_listen_take(s2), 1);
	assert_int_equal(store_listen_take(s2), 0);
	/* A keyed batch (a transaction): one notification at its commit. */
	newjob(&j[0], "q", 0, 0, "a");
	j[0].idempotency_key = "k";
	newjob(&j[1], "q", 0, 0, "b");
	newjob(&j[2], "q", 0, 0, "c");
	assert_int_equal(store_enqueue(f->s, j, 3), 0);
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(store_listen_take(s2), 1);
	/* After a lost connection, the reconnect listens again. */
	pexec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = 'fcgiq' AND pid <> pg_backend_pid()");
	(void)store_listen_take(s2);	/* finds the connection gone */
	while (store_count_waiting(s2, "q") == -1)
		(void)poll(NULL, 0, 20);
	while (store_count_waiting(f->s, "q") == -1)
		(void)poll(NULL, 0, 20);
	enqueue1(f->s, "q", 0, 0, 3, id);
	pfd.fd = store_listen_fd(s2);
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(store_listen_take(s2), 1);
	store_close(s2);
}

static void
test_pg_unsupported(void **state)
{
	struct fx	*f = *state;

	/* A store function added without its PostgreSQL version fails the
	 * same way at its first SQLite step, instead of using no handle. */
	assert_null(sq_stmt(f->s, ST_GET));
	assert_int_equal(store_errcode(f->s), STORE_EINVAL);
	assert_int_equal(sq_begin(f->s), -1);
	assert_int_equal(sq_exec(f->s, "SELECT 1", "a new function"), -1);
	assert_string_equal(store_error(f->s), "a new function is not "
	    "available with the PostgreSQL backend yet");
}

static int	rj_n;
static void
rj_count(void *arg, const struct store_rejected *r)
{
	(void)arg;
	assert_string_equal(r->queue, "q");
	rj_n++;
}

static void
test_pg_rejected_gauges(void **state)
{
	struct fx		*f = *state;
	struct store_rejected	 r[5];
	struct store_head	 h;
	char			 id[STORE_ID_LEN + 1];
	int			 i;
	int64_t			 t = store_now() + 1000;	/* all due */

	memset(r, 0, sizeof(r));
	for (i = 0; i < 5; i++) {
		r[i].at = t;
		r[i].queue = "q";
		r[i].reason = "bad signature";
		r[i].body_head = "x\0y";
		r[i].head_len = 3;
		r[i].keep = 3;
	}
	assert_int_equal(store_reject(f->s, r, 5), 0);
	rj_n = 0;
	assert_int_equal(store_rejected_list(f->s, NULL, 10, rj_count, NULL),
	    0);
	assert_int_equal(rj_n, 3);
	enqueue1(f->s, "q", 1, t - 10, 3, id);
	enqueue1(f->s, "q", 0, t - 20, 3, id);
	assert_int_equal(store_queue_head(f->s, "q", t, &h), 1);
	assert_int_equal(h.jobs, 2);
	assert_int_equal(h.oldest_due, t - 20);
	assert_int_equal(store_queue_head(f->s, "none", t, &h), 0);
}

/* The README's operator queries, as written for sqlite3. */
static void
test_pg_operator_queries(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1];

	enqueue1(f->s, "q", 0, 0, 3, id);
	enqueue1(f->s, "q", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "q", store_now(), 1000, &j), 1);
	assert_int_equal(store_finish_done(f->s, j->id, 1, NULL, 0,
	    store_now()), 1);
	store_job_free(j);
	assert_int_equal(pint("SELECT count(*) FROM (SELECT queue, state,"
	    " jobs, oldest_waiting_ms / 1000 AS oldest_waiting_s"
	    " FROM queue_stats ORDER BY queue, state) t"), 2);
	assert_int_equal(pint("SELECT count(*) FROM (SELECT id, queue, state,"
	    " attempts, datetime(created_at / 1000, 'unixepoch') AS created,"
	    " datetime(run_at / 1000, 'unixepoch') AS next_run, last_error"
	    " FROM jobs WHERE state IN ('queued', 'retry')"
	    " ORDER BY created_at, seq LIMIT 1) t"), 1);
	assert_int_equal(pint("SELECT count(*) FROM (SELECT queue, state,"
	    " count(*) AS jobs, round(avg(finished_at - started_at))"
	    " AS avg_run_ms FROM jobs"
	    " WHERE state IN ('done', 'dead', 'cancelled')"
	    "  AND finished_at >= (julianday('now') - 2440587.5) * 86400000"
	    "  - 3600000 GROUP BY queue, state ORDER BY queue, state) t"), 1);
	assert_int_equal(pint("SELECT count(*) FROM jobs_readable WHERE"
	    " created_at LIKE '20__-__-__T__:__:__.___Z' AND body = 'payload'"),
	    2);
}

/* --- schedules and dead letters (store-pg-sched.c) --------------------- */

static char *
ptext(const char *sql)
{
	PGconn		*c = side();
	PGresult	*r = PQexec(c, sql);
	char		*v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if ((v = strdup(PQgetvalue(r, 0, 0))) == NULL)
		fail_msg("out of memory");
	PQclear(r);
	PQfinish(c);
	return v;
}

/* One slot a run: the slot sl_slot of schedule "nightly" when it is after
 * the last one stored (or none is). */
static int64_t	sl_slot;
static char	sl_key[64];
static struct store_newjob sl_job;

static int
sl_fn(void *arg, int has, int64_t last, struct store_newjob **jobs,
    size_t *n, int64_t *newlast)
{
	(void)arg;
	*n = 0;
	if (has && last >= sl_slot)
		return 0;
	memset(&sl_job, 0, sizeof(sl_job));
	newjob(&sl_job, "reports", 0, 0, "{\"report\":\"daily\"}");
	(void)snprintf(sl_key, sizeof(sl_key), "schedule:nightly:%lld",
	    (long long)sl_slot);
	sl_job.idempotency_key = sl_key;
	*jobs = &sl_job;
	*n = 1;
	*newlast = sl_slot;
	return 0;
}

/* A slot is enqueued once: a second run of it, a run after the table lost
 * its row, a run with the clock stepped back enqueue nothing; the last
 * slot reads back and never moves back. */
static void
test_pg_schedule_run(void **state)
{
	struct fx	*f = *state;
	int64_t		 last = -1;
	int		 n = -1;

	assert_int_equal(store_schedule_last(f->s, "nightly", &last), 0);
	sl_slot = 1700000000000;
	assert_int_equal(store_schedule_run(f->s, "nightly", sl_fn, NULL,
	    &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_schedule_last(f->s, "nightly", &last), 1);
	assert_int_equal(last, sl_slot);
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE queue ="
	    " 'reports' AND idempotency_key = 'schedule:nightly:1700000000000'"
	    " AND state = 'queued'"), 1);
	/* The same slot again: nothing. */
	assert_int_equal(store_schedule_run(f->s, "nightly", sl_fn, NULL,
	    &n), 0);
	assert_int_equal(n, 0);
	/* The row lost: the slot's key still stands against it. */
	pexec("DELETE FROM schedules");
	assert_int_equal(store_schedule_run(f->s, "nightly", sl_fn, NULL,
	    &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_schedule_last(f->s, "nightly", &last), 1);
	assert_int_equal(last, sl_slot);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 1);
	/* The next slot: one more job. */
	sl_slot += 60000;
	assert_int_equal(store_schedule_run(f->s, "nightly", sl_fn, NULL,
	    &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 2);
	/* Another session moved the last slot on meanwhile: greatest()
	 * keeps it. */
	pexec("UPDATE schedules SET last_slot = last_slot + 600000");
	assert_int_equal(store_schedule_last(f->s, "nightly", &last), 1);
	assert_int_equal(last, sl_slot + 600000);
	assert_int_equal(store_schedule_last(f->s, "other", &last), 0);
}

/* Two processes fire one schedule at once, each on its own connection,
 * slot after slot: every slot has exactly one job. */
static void
test_pg_schedule_concurrent(void **state)
{
	struct fx	*f = *state;
	pid_t		 pid[2];
	char		 err[512];
	int		 i, k, st, n, total;

	for (k = 0; k < 2; k++) {
		if ((pid[k] = fork()) == -1)
			fail_msg("fork");
		if (pid[k] != 0)
			continue;
		/* The parent's connection is left alone (a close would end
		 * its session): a connection of the child's own. */
		if ((f->s = store_open(f->path, NULL, err,
		    sizeof(err))) == NULL)
			_exit(101);
		total = 0;
		for (i = 0; i < 40; i++) {
			sl_slot = 1700000000000 + (int64_t)i * 60000;
			if (store_schedule_run(f->s, "nightly", sl_fn, NULL,
			    &n) == -1)
				_exit(2);
			total += n;
		}
		store_close(f->s);
		_exit(total < 100 ? total : 100);
	}
	total = 0;
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
		assert_true(WIFEXITED(st));
		total += WEXITSTATUS(st);
	}
	assert_int_equal(total, 40);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 40);
	assert_int_equal(pint("SELECT count(DISTINCT idempotency_key)"
	    " FROM jobs"), 40);
	assert_int_equal(pint("SELECT last_slot FROM schedules"),
	    1700000000000 + 39 * 60000);
}

/* A death enqueues one JSON letter into the dead-letter queue in its
 * transaction (finish_failed, alone or in a batch, and a requeue of an
 * expired lease), byte for byte as SQLite's; a retry is no death; a
 * letter's own death gets none. */
static void
test_pg_dead_letters(void **state)
{
	struct fx		*f = *state;
	struct store_job	*j;
	char			 id[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	char			 id3[STORE_ID_LEN + 1], want[512], *t;
	int64_t			 t0 = store_now() + 1000;
	int			 dead = 0;

	assert_int_equal(store_set_dead_letter(f->s, "alerts", "/jobs/", 3,
	    5), 0);
	enqueue1(f->s, "default", 0, 0, 2, id);
	assert_int_equal(store_claim(f->s, "default", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "once", 0, 1, 1,
	    t0, &dead), 1);
	assert_int_equal(dead, 0);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 0);
	assert_int_equal(store_claim(f->s, "default", t0 + 10, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 2, "exit \"3\"\n", 0,
	    1, 1, t0 + 20, &dead), 1);
	assert_int_equal(dead, 1);
	t = ptext("SELECT convert_from(body, 'UTF8') || '|' || content_type"
	    " || '|' || state || '|' || max_attempts || '|' || priority"
	    " FROM jobs WHERE queue = 'alerts'");
	snprintf(want, sizeof(want), "{\"job\":\"%s\",\"queue\":\"default\","
	    "\"attempts\":2,\"last_error\":\"exit \\\"3\\\"\\n\","
	    "\"status_url\":\"/jobs/%s\"}|application/json|queued|3|5", id,
	    id);
	assert_string_equal(t, want);
	free(t);

	/* An expired lease with no attempt left: dead, with its letter. */
	enqueue1(f->s, "mail", 0, 0, 1, id2);
	assert_int_equal(store_claim(f->s, "mail", t0, 10, &j), 1);
	store_job_free(j);
	assert_int_equal(store_requeue_expired(f->s, t0 + 100, NULL, NULL), 1);
	assert_state(f->s, id2, STORE_JOB_DEAD);
	snprintf(want, sizeof(want), "SELECT count(*) FROM jobs WHERE queue ="
	    " 'alerts' AND convert_from(body, 'UTF8')::json->>'job' = '%s'",
	    id2);
	assert_int_equal(pint(want), 1);

	/* Inside the helper's batch: committed with the batch. */
	enqueue1(f->s, "mail", 0, 0, 1, id3);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_claim(f->s, "mail", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id3, 1, "no", 1, 1, 1,
	    t0, &dead), 1);
	assert_int_equal(dead, 1);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 2);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 3);

	/* A letter that dies gets no letter. */
	assert_int_equal(store_claim(f->s, "alerts", t0 + 1000, 1000, &j), 1);
	assert_int_equal(store_finish_failed(f->s, j->id, 1, "no", 1, 1, 1,
	    t0 + 1000, &dead), 1);
	assert_int_equal(dead, 1);
	store_job_free(j);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 3);

	/* Off: a death adds nothing. */
	assert_int_equal(store_set_dead_letter(f->s, NULL, NULL, 0, 0), 0);
	enqueue1(f->s, "default", 0, 0, 1, id);
	assert_int_equal(store_claim(f->s, "default", t0, 1000, &j), 1);
	store_job_free(j);
	assert_int_equal(store_finish_failed(f->s, id, 1, "x", 1, 1, 1, t0,
	    &dead), 1);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE queue = 'alerts'"), 3);
}

/* --- flow control (store-pg-flow.c) ----------------------------------- */

/* Enqueue one job of queue with serial key key ("": its own); its id to
 * id.  The body names it. */
static void
enqueue_keyed(struct store *s, const char *queue, const char *key,
    const char *body, char id[STORE_ID_LEN + 1])
{
	struct store_newjob	j;

	newjob(&j, queue, 0, 0, body);
	j.serial_key = key;
	if (store_enqueue(s, &j, 1) != 0)
		fail_msg("enqueue: %s", store_error(s));
	memcpy(id, j.id, STORE_ID_LEN + 1);
}

/* The id of the job claimed now from queue on s, "" when none. */
static const char *
pclaim(struct store *s, const char *queue, char id[STORE_ID_LEN + 1])
{
	struct store_job	*j;
	int			 r;

	id[0] = '\0';
	if ((r = store_claim(s, queue, store_now(), 60000, &j)) == -1)
		fail_msg("claim: %s", store_error(s));
	if (r == 1) {
		memcpy(id, j->id, STORE_ID_LEN + 1);
		store_job_free(j);
	}
	return id;
}

static int	br_n;
static void
br_list(void *arg, const char *queue, const struct store_breaker *b)
{
	(void)arg;
	assert_string_equal(queue, "up");
	assert_int_equal(b->state, 1);
	assert_int_equal(b->trips, 2);
	br_n++;
}

/* Schema 6: a version-5 database migrates on open, its jobs kept; the
 * breaker columns and the two indexes are there. */
static void
test_pg_schema_v6(void **state)
{
	struct fx	*f = *state;
	char		 id[STORE_ID_LEN + 1];

	enqueue1(f->s, "q", 0, 0, 3, id);
	store_close(f->s);
	f->s = NULL;
	pexec("SET client_min_messages = warning;"
	    " DROP INDEX jobs_serial; DROP INDEX jobs_dead;"
	    " ALTER TABLE queues DROP COLUMN breaker_state,"
	    "  DROP COLUMN breaker_until, DROP COLUMN breaker_failures,"
	    "  DROP COLUMN breaker_pause, DROP COLUMN breaker_trips;"
	    " DROP TABLE fcgiq_keys;"
	    " UPDATE fcgiq_schema SET version = 5");
	f->s = open_store(f, NULL);
	assert_int_equal(pint("SELECT max(version) FROM fcgiq_schema"), 7);
	assert_int_equal(pint("SELECT count(*) FROM fcgiq_schema"), 1);
	assert_int_equal(pint("SELECT count(*) FROM information_schema.columns"
	    " WHERE table_name = 'queues' AND column_name LIKE 'breaker_%'"),
	    5);
	assert_int_equal(pint("SELECT count(*) FROM pg_indexes WHERE"
	    " indexname IN ('jobs_serial', 'jobs_dead')"), 2);
	assert_int_equal(store_count_waiting(f->s, "q"), 1);
}

/* Schema 7: a version-6 database migrates on open (fcgiq_keys), its jobs
 * kept; the dashboard's key is made once and read back the same by
 * another connection (another host). */
static void
test_pg_schema_v7(void **state)
{
	struct fx	*f = *state;
	struct store	*s2;
	unsigned char	 k1[32], k2[32];
	char		 id[STORE_ID_LEN + 1];

	enqueue1(f->s, "q", 0, 0, 3, id);
	store_close(f->s);
	f->s = NULL;
	pexec("SET client_min_messages = warning; DROP TABLE fcgiq_keys;"
	    " UPDATE fcgiq_schema SET version = 6");
	f->s = open_store(f, NULL);
	assert_int_equal(pint("SELECT max(version) FROM fcgiq_schema"), 7);
	assert_int_equal(pint("SELECT count(*) FROM fcgiq_keys"), 0);
	assert_int_equal(store_count_waiting(f->s, "q"), 1);
	assert_int_equal(store_dash_key(f->s, k1, sizeof(k1)), 0);
	s2 = open_store(f, NULL);
	assert_int_equal(store_dash_key(s2, k2, sizeof(k2)), 0);
	store_close(s2);
	assert_memory_equal(k1, k2, sizeof(k1));
	assert_int_equal(pint("SELECT count(*) FROM fcgiq_keys"), 1);
	assert_int_equal(pint("SELECT octet_length(key) FROM fcgiq_keys"),
	    32);
	/* Made anew only when the row is gone (a rotation). */
	pexec("DELETE FROM fcgiq_keys");
	assert_int_equal(store_dash_key(f->s, k2, sizeof(k2)), 0);
	assert_memory_not_equal(k1, k2, sizeof(k1));
}

/* Several processes asking for the key of a fresh database at once all
 * get the one that was stored. */
static void
test_pg_dash_key_concurrent(void **state)
{
	struct fx	*f = *state;
	unsigned char	 k[32], got[32];
	pid_t		 pid[4];
	int		 i, st, fd[2];

	pexec("DELETE FROM fcgiq_keys");
	assert_int_equal(pipe(fd), 0);
	for (i = 0; i < 4; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[256];
			struct store *s = store_open(f->path, NULL, err,
			    sizeof(err));

			close(fd[0]);
			if (s == NULL || store_dash_key(s, k, sizeof(k)) == -1)
				_exit(1);
			if (write(fd[1], k, sizeof(k)) != (ssize_t)sizeof(k))
				_exit(1);
			store_close(s);
			_exit(0);
		}
	}
	close(fd[1]);
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(store_dash_key(f->s, k, sizeof(k)), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(read(fd[0], got, sizeof(got)),
		    (ssize_t)sizeof(got));
		assert_memory_equal(k, got, sizeof(k));
	}
	close(fd[0]);
	assert_int_equal(pint("SELECT count(*) FROM fcgiq_keys"), 1);
}

struct dash_seen {
	int	 n;
	char	 ids[64][STORE_ID_LEN + 1];
};

static void
dash_row(void *arg, const struct store_dash_row *r)
{
	struct dash_seen *s = arg;

	if (s->n < 64)
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", r->id);
	s->n++;
}

/* test_dashboard's listing and batches case, on PostgreSQL. */
static void
test_pg_dash(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[40];
	struct store_dash_filter fl;
	struct dash_seen	 seen;
	struct store_job	*c = NULL;
	char			 sql[256];
	int64_t			 now = store_now();
	int			 i;

	memset(j, 0, sizeof(j));
	for (i = 0; i < 40; i++) {
		j[i].queue = i < 30 ? "default" : "mail";
		j[i].max_attempts = 1;
		j[i].body = "x";
		j[i].body_len = 1;
	}
	assert_int_equal(store_enqueue(f->s, j, 40), 0);
	/* 20 of default and 5 of mail dead; 10 of them long ago. */
	for (i = 0; i < 40; i++) {
		if (!(i < 20 || i >= 35))
			continue;
		snprintf(sql, sizeof(sql), "UPDATE jobs SET state = 'dead', "
		    "finished_at = %lld WHERE id = '%s'",
		    (long long)(i < 10 ? now - 7200000 + i : now - 1000 + i),
		    j[i].id);
		pexec(sql);
	}
	memset(&fl, 0, sizeof(fl));
	fl.state = STORE_JOB_DEAD;
	fl.queue = "default";
	fl.limit = 100;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 20);
	assert_string_equal(seen.ids[19], j[0].id);	/* newest death first */
	fl.before = now - 3600000;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 10);
	fl.before = 0;
	fl.queue = NULL;
	fl.offset = 20;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 5);
	fl.state = STORE_JOB_QUEUED;
	fl.offset = 0;
	fl.queue = "default";
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 10);
	assert_string_equal(seen.ids[0], j[20].id);	/* claim order */
	fl.state = STORE_JOB_ANY;
	fl.queue = NULL;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 40);
	assert_string_equal(seen.ids[0], j[39].id);	/* newest first */

	/* The old dead of default, in batches of 3: 3, 3, 3, 1. */
	assert_int_equal(store_dash_dead_batch(f->s, "default",
	    now - 3600000, 1, 3, now), 3);
	assert_int_equal(store_dash_dead_batch(f->s, "default",
	    now - 3600000, 1, 3, now), 3);
	assert_int_equal(store_dash_dead_batch(f->s, "default",
	    now - 3600000, 1, 3, now), 3);
	assert_int_equal(store_dash_dead_batch(f->s, "default",
	    now - 3600000, 1, 3, now), 1);
	assert_int_equal(store_dash_dead_batch(f->s, "default",
	    now - 3600000, 1, 3, now), 0);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 30);
	/* The rest of every queue retried: waiting again, every job. */
	assert_int_equal(store_dash_dead_batch(f->s, NULL, now, 0, 100, now),
	    15);
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state = 'queued'"
	    " AND finished_at IS NULL"), 30);
	fl.state = STORE_JOB_DEAD;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_dash_list(f->s, &fl, dash_row, &seen), 0);
	/* Only dead jobs: a claimed (running) one is left alone. */
	assert_int_equal(store_claim(f->s, "mail", now, 60000, &c), 1);
	store_job_free(c);
	pexec("UPDATE jobs SET state = 'dead', finished_at = 1"
	    " WHERE state <> 'running'");
	assert_int_equal(store_dash_dead_batch(f->s, "mail", now, 0, 100, now),
	    9);
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state ="
	    " 'running'"), 1);
	/* One dead job discarded; a queued one is refused; unknown is 0. */
	assert_int_equal(store_dash_discard(f->s, j[30].id), 2);
	assert_int_equal(store_dash_discard(f->s, j[25].id), 1);
	assert_int_equal(store_dash_discard(f->s, j[25].id), 0);
	assert_int_equal(store_dash_discard(f->s,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
}

/* A breaker written is read back, listed, and leaves pause alone. */
static void
test_pg_breaker(void **state)
{
	struct fx		*f = *state;
	struct store_breaker	 b, g;

	assert_int_equal(store_breaker_get(f->s, "up", &g), 0);
	assert_int_equal(g.state, 0);
	assert_int_equal(store_pause(f->s, "up", 1), 0);
	memset(&b, 0, sizeof(b));
	b.state = 1;
	b.open_until = 1767225600123LL;
	b.failures = 20;
	b.pause_ms = 60000;
	b.trips = 2;
	/* opened: the event goes nowhere without a dead-letter queue. */
	assert_int_equal(store_breaker_set(f->s, "up", &b, 1), 0);
	assert_int_equal(store_breaker_get(f->s, "up", &g), 1);
	assert_int_equal(g.state, 1);
	assert_true(g.open_until == 1767225600123LL);
	assert_int_equal(g.failures, 20);
	assert_true(g.pause_ms == 60000);
	assert_true(g.trips == 2);
	assert_int_equal(store_paused(f->s, "up"), 1);
	br_n = 0;
	assert_int_equal(store_breakers(f->s, br_list, NULL), 0);
	assert_int_equal(br_n, 1);
	assert_int_equal(pint("SELECT count(*) FROM jobs"), 0);
	/* Inside a batch (the helper's turn), as the helper writes it. */
	b.state = 0;
	b.open_until = 0;
	b.failures = 0;
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_breaker_set(f->s, "up", &b, 0), 0);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_int_equal(store_breaker_get(f->s, "up", &g), 1);
	assert_int_equal(g.state, 0);
	assert_true(g.trips == 2);
}

/* Two jobs of one key: the second waits while the first runs and goes
 * after it; another key's job runs meanwhile; intake stores the keys. */
static void
test_pg_serial_claim(void **state)
{
	struct fx		*f = *state;
	char			 a1[STORE_ID_LEN + 1], a2[STORE_ID_LEN + 1];
	char			 b1[STORE_ID_LEN + 1], o[STORE_ID_LEN + 1];
	char			 id[STORE_ID_LEN + 1], q[200];
	int			 dead;

	enqueue_keyed(f->s, "q", "owner/a", "a1", a1);
	enqueue_keyed(f->s, "q", "owner/a", "a2", a2);
	enqueue_keyed(f->s, "q", "b\"\\,{}", "b1", b1);
	enqueue_keyed(f->s, "q", "", "own", o);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE serial_key = 'owner/a'"), 2);
	(void)snprintf(q, sizeof(q), "SELECT count(*) FROM jobs WHERE"
	    " id = '%s' AND serial_key = 'unkeyed %s'", o, o);
	assert_int_equal(pint(q), 1);
	assert_string_equal(pclaim(f->s, "q", id), a1);
	/* a2 is held back while a1 runs; the other keys are not. */
	assert_string_equal(pclaim(f->s, "q", id), b1);
	assert_string_equal(pclaim(f->s, "q", id), o);
	assert_string_equal(pclaim(f->s, "q", id), "");
	/* A failed attempt waiting to retry still holds a2 back. */
	assert_int_equal(store_finish_failed(f->s, a1, 1, "boom", 0, 1, 1,
	    store_now(), &dead), 1);
	assert_int_equal(dead, 0);
	assert_int_equal(pint("SELECT count(*) FROM jobs"
	    " WHERE state = 'retry'"), 1);
	pexec("UPDATE jobs SET run_at = run_at + 3600000"
	    " WHERE state = 'retry'");
	assert_string_equal(pclaim(f->s, "q", id), "");
	pexec("UPDATE jobs SET run_at = 0 WHERE state = 'retry'");
	assert_string_equal(pclaim(f->s, "q", id), a1);
	assert_string_equal(pclaim(f->s, "q", id), "");
	assert_int_equal(store_finish_done(f->s, a1, 2, NULL, 0,
	    store_now()), 1);
	assert_string_equal(pclaim(f->s, "q", id), a2);
}

/* A job of the key runs, and an earlier one of the key commits late (a
 * slow intake transaction's lower seq): it waits for the running one. */
static void
test_pg_serial_late_commit(void **state)
{
	struct fx	*f = *state;
	char		 y[STORE_ID_LEN + 1], id[STORE_ID_LEN + 1];

	enqueue_keyed(f->s, "q", "k", "y", y);
	assert_string_equal(pclaim(f->s, "q", id), y);
	pexec("INSERT INTO jobs (seq, id, queue, state, max_attempts,"
	    "  created_at, run_at, body, serial_key) OVERRIDING SYSTEM VALUE"
	    " VALUES (0, 'late', 'q', 'queued', 3, 0, 0, '', 'k')");
	assert_string_equal(pclaim(f->s, "q", id), "");
	assert_int_equal(store_finish_done(f->s, y, 1, NULL, 0,
	    store_now()), 1);
	assert_string_equal(pclaim(f->s, "q", id), "late");
}

/* Two stores whose claims overlap in open batches (two helpers' turns):
 * the second skips the key the first is starting and takes another. */
static void
test_pg_serial_batches(void **state)
{
	struct fx		*f = *state;
	struct store		*s2 = open_store(f, NULL);
	char			 a1[STORE_ID_LEN + 1], a2[STORE_ID_LEN + 1];
	char			 b1[STORE_ID_LEN + 1], id[STORE_ID_LEN + 1];

	enqueue_keyed(f->s, "q", "a", "a1", a1);
	enqueue_keyed(f->s, "q", "a", "a2", a2);
	enqueue_keyed(f->s, "q", "b", "b1", b1);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_int_equal(store_batch_begin(s2), 0);
	assert_string_equal(pclaim(f->s, "q", id), a1);
	assert_string_equal(pclaim(s2, "q", id), b1);
	assert_string_equal(pclaim(s2, "q", id), "");
	assert_int_equal(store_batch_end(s2), 0);
	assert_int_equal(store_batch_end(f->s), 0);
	assert_string_equal(pclaim(s2, "q", id), "");
	assert_int_equal(store_finish_done(f->s, a1, 1, NULL, 0,
	    store_now()), 1);
	assert_string_equal(pclaim(s2, "q", id), a2);
	store_close(s2);
}

/*
 * The race the key's lock closes: a helper's turn claims y of key k (not
 * yet committed) while an earlier job of k commits late; another helper
 * sees y still queued and the late job free in its snapshot, and finds
 * the key's lock taken: it leaves the key alone.
 */
static void
test_pg_serial_lock(void **state)
{
	struct fx	*f = *state;
	struct store	*s2 = open_store(f, NULL);
	char		 y[STORE_ID_LEN + 1], id[STORE_ID_LEN + 1];

	enqueue_keyed(f->s, "q", "k", "y", y);
	assert_int_equal(store_batch_begin(f->s), 0);
	assert_string_equal(pclaim(f->s, "q", id), y);
	pexec("INSERT INTO jobs (seq, id, queue, state, max_attempts,"
	    "  created_at, run_at, body, serial_key) OVERRIDING SYSTEM VALUE"
	    " VALUES (0, 'late', 'q', 'queued', 3, 0, 0, '', 'k')");
	assert_string_equal(pclaim(s2, "q", id), "");
	assert_int_equal(store_batch_end(f->s), 0);
	assert_string_equal(pclaim(s2, "q", id), "");
	assert_int_equal(store_finish_done(f->s, y, 1, NULL, 0,
	    store_now()), 1);
	assert_string_equal(pclaim(s2, "q", id), "late");
	store_close(s2);
}

/*
 * Four processes claim at once from 8 keys of 6 jobs and 16 unkeyed ones:
 * at each claim, no other job of its key runs and none of its key that
 * arrived before it is unfinished (read on a side connection after the
 * claim committed); every job runs once.
 */
static void
test_pg_serial_concurrent(void **state)
{
	struct fx		*f = *state;
	struct store_newjob	 j[64];
	char			 keys[8][8], bodies[64][16];
	pid_t			 pid[4];
	int			 i, k, st;

	for (i = 0; i < 64; i++) {
		(void)snprintf(bodies[i], sizeof(bodies[i]), "j%d", i);
		newjob(&j[i], "q", 0, 0, bodies[i]);
		if (i < 48) {
			k = i % 8;
			(void)snprintf(keys[k], sizeof(keys[k]), "key%d", k);
			j[i].serial_key = keys[k];
		}
	}
	assert_int_equal(store_enqueue(f->s, j, 64), 0);
	for (i = 0; i < 4; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[256], sql[400];
			struct store *s = store_open(f->path, NULL, err,
			    sizeof(err));
			struct timespec ms = { 0, 2 * 1000000 };
			struct store_job *c;
			PGconn *pc = PQconnectdb(conninfo());
			PGresult *res;
			int r, bad;

			if (s == NULL || PQstatus(pc) != CONNECTION_OK)
				_exit(2);
			while ((r = store_claim(s, "q", store_now(), 60000,
			    &c)) == 1) {
				(void)snprintf(sql, sizeof(sql), "SELECT"
				    " count(*) FROM jobs o, jobs e WHERE"
				    " o.id = '%s' AND e.queue = o.queue"
				    " AND e.serial_key = o.serial_key"
				    " AND e.seq <> o.seq AND e.finished_at"
				    " IS NULL AND (e.seq < o.seq OR"
				    " e.state = 'running')", c->id);
				res = PQexec(pc, sql);
				bad = PQresultStatus(res) != PGRES_TUPLES_OK ||
				    strcmp(PQgetvalue(res, 0, 0), "0") != 0;
				PQclear(res);
				if (bad) {
					fprintf(stderr, "job %s: not alone\n",
					    c->id);
					_exit(5);
				}
				nanosleep(&ms, NULL);
				if (store_finish_done(s, c->id, c->attempts,
				    NULL, 0, store_now()) != 1)
					_exit(3);
				store_job_free(c);
			}
			PQfinish(pc);
			store_close(s);
			_exit(r == 0 ? 0 : 4);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* A claimer that found every key busy may stop before the end: the
	 * rest is claimed here. */
	while (pint("SELECT count(*) FROM jobs WHERE state <> 'done'") > 0) {
		struct store_job *c;

		assert_int_equal(store_claim(f->s, "q", store_now(), 60000,
		    &c), 1);
		assert_int_equal(store_finish_done(f->s, c->id, 1, NULL, 0,
		    store_now()), 1);
		store_job_free(c);
	}
	assert_int_equal(pint("SELECT count(*) FROM jobs WHERE state = 'done'"
	    " AND attempts = 1"), 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, pg_setup, pg_teardown)
		/* test_store.c's own, unchanged */
		T(test_state_names),
		T(test_claim_order),
		T(test_lifecycle_retry_dead),
		T(test_release),
		T(test_states),
		T(test_cancel),
		T(test_stats),
		T(test_list),
		T(test_pause),
		T(test_bulk),
		/* PostgreSQL's */
		T(test_pg_selects),
		T(test_pg_schema),
		T(test_pg_enqueue_fields),
		T(test_pg_batch_enqueue),
		T(test_pg_batch_sizes),
		T(test_pg_idempotency),
		T(test_pg_lifecycle_done),
		T(test_pg_failed),
		T(test_pg_requeue_fencing),
		T(test_pg_prune),
		T(test_pg_batch),
		T(test_pg_skip_locked),
		T(test_pg_concurrent_claims),
		T(test_pg_open_concurrent),
		T(test_pg_reconnect),
		T(test_pg_reprepare_reconnect),
		T(test_pg_reprepare_restart),
		T(test_pg_reprepare_lost),
		T(test_pg_readonly),
		T(test_pg_listen),
		T(test_pg_unsupported),
		T(test_pg_rejected_gauges),
		T(test_pg_operator_queries),
		T(test_pg_schedule_run),
		T(test_pg_schedule_concurrent),
		T(test_pg_dead_letters),
		/* flow control (store-pg-flow.c) */
		T(test_pg_schema_v6),
		/* the dashboard (store-pg-dash.c) */
		T(test_pg_schema_v7),
		T(test_pg_dash_key_concurrent),
		T(test_pg_dash),
		T(test_pg_breaker),
		T(test_pg_serial_claim),
		T(test_pg_serial_late_commit),
		T(test_pg_serial_batches),
		T(test_pg_serial_lock),
		T(test_pg_serial_concurrent),
#undef T
	};

	(void)test_store_sqlite_main;
	return cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
}
