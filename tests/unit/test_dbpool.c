/*
 * test_dbpool: unit tests of the status connections' pool
 * (fcgi-app/dbpool.c), each on a fresh database in its own mktemp -d
 * directory: a connection is its taker's alone until given back, many
 * threads share a few connections, and a pool that cannot open all of
 * its connections opens none.  Waits have generous caps; the only timed
 * check is that a blocked taker is still blocked, which no load can
 * make fail.
 */
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
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

#include "dbpool.h"
#include "store-sqlite.h"
#include "tmpdir.h"

#define NCONN		3
#define NTHREADS	8
#define ROUNDS		300
#define WAIT_CAP_MS	60000

struct fx {
	char		 dir[64];
	char		 path[128];
	int		 open;		/* the pool is open */
};

static int
setup(void **state)
{
	struct fx *f;
	struct store *s;
	char err[512];

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "%s/test_dbpool.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	(void)snprintf(f->path, sizeof(f->path), "%s/q.db", f->dir);
	/* The responder's write connection creates the database first. */
	if ((s = store_open(f->path, NULL, err, sizeof(err))) == NULL)
		return -1;
	store_close(s);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_step_fn = sqlite3_step;
	if (f->open)
		dbpool_close();
	if (tmpdir_remove(f->dir) == -1)
		return -1;
	free(f);
	return 0;
}

static void
pool_open(struct fx *f, const struct store_opts *o, int n)
{
	char err[512] = "";

	if (dbpool_open(f->path, o, n, err, sizeof(err)) == -1)
		fail_msg("dbpool_open: %s", err);
	f->open = 1;
}

static void
enqueue1(struct store *s, const char *body)
{
	struct store_newjob j;

	memset(&j, 0, sizeof(j));
	j.queue = "default";
	j.max_attempts = 1;
	j.body = body;
	j.body_len = strlen(body);
	if (store_enqueue(s, &j, 1) != 0)
		fail_msg("enqueue: %s", store_error(s));
}

/* n connections, each distinct, each working; given back, taken again. */
static void
test_take_give(void **state)
{
	struct fx *f = *state;
	struct store *s[NCONN], *again;
	int i, k, found;

	pool_open(f, NULL, NCONN);
	for (i = 0; i < NCONN; i++) {
		s[i] = dbpool_get();
		assert_non_null(s[i]);
		for (k = 0; k < i; k++)
			assert_ptr_not_equal(s[i], s[k]);
	}
	enqueue1(s[0], "a");
	for (i = 0; i < NCONN; i++)
		assert_int_equal(store_count_waiting(s[i], "default"), 1);
	dbpool_put(s[1]);
	again = dbpool_get();	/* the only free one */
	assert_ptr_equal(again, s[1]);
	for (i = 0; i < NCONN; i++)
		dbpool_put(s[i]);
	/* All free: each get finds one of the pool's. */
	for (i = 0; i < 2 * NCONN; i++) {
		again = dbpool_get();
		for (k = 0, found = 0; k < NCONN; k++)
			found |= again == s[k];
		assert_true(found);
		dbpool_put(again);
	}
}

struct taker {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cv;
	struct store	*got;
};

static void *
take(void *arg)
{
	struct taker *t = arg;
	struct store *s = dbpool_get();

	pthread_mutex_lock(&t->lock);
	t->got = s;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* With every connection taken, a taker waits until one is given back. */
static void
test_get_blocks_until_put(void **state)
{
	struct fx *f = *state;
	struct store *s[2];
	struct taker t = { PTHREAD_MUTEX_INITIALIZER,
	    PTHREAD_COND_INITIALIZER, NULL };
	struct timespec ts;
	pthread_t th;
	int i;

	pool_open(f, NULL, 2);
	s[0] = dbpool_get();
	s[1] = dbpool_get();
	assert_int_equal(pthread_create(&th, NULL, take, &t), 0);
	usleep(200000);
	pthread_mutex_lock(&t.lock);
	assert_null(t.got);		/* still waiting */
	pthread_mutex_unlock(&t.lock);
	/* Give both back: the taker gets one of them. */
	dbpool_put(s[0]);
	dbpool_put(s[1]);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_CAP_MS / 1000;
	pthread_mutex_lock(&t.lock);
	while (t.got == NULL)
		if (pthread_cond_timedwait(&t.cv, &t.lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&t.lock);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(t.got == s[0] || t.got == s[1]);
	dbpool_put(t.got);
	for (i = 0; i < 2; i++) {
		s[i] = dbpool_get();
		assert_non_null(s[i]);
	}
	assert_ptr_not_equal(s[0], s[1]);
	dbpool_put(s[0]);
	dbpool_put(s[1]);
}

/* Many threads, few connections: never one connection in two hands. */
static struct store	*pool_conns[NCONN];
static int		 in_use[NCONN];
static int		 overlap, unknown, failed;

static void *
hammer(void *arg)
{
	struct store *s;
	int r, i, k;

	(void)arg;
	for (r = 0; r < ROUNDS; r++) {
		s = dbpool_get();
		for (k = 0; k < NCONN && pool_conns[k] != s; k++)
			;
		if (k == NCONN) {
			__atomic_store_n(&unknown, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_add_fetch(&in_use[k], 1, __ATOMIC_SEQ_CST) != 1)
			__atomic_store_n(&overlap, 1, __ATOMIC_RELAXED);
		/* Use it: a statement, and a moment for the others to
		 * try to take it. */
		if (store_count_waiting(s, "default") != 2)
			__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
		for (i = 0; i < 100; i++)
			__atomic_load_n(&in_use[k], __ATOMIC_RELAXED);
		__atomic_sub_fetch(&in_use[k], 1, __ATOMIC_SEQ_CST);
		dbpool_put(s);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx *f = *state;
	pthread_t th[NTHREADS];
	struct store *s;
	int i;

	pool_open(f, NULL, NCONN);
	for (i = 0; i < NCONN; i++)
		pool_conns[i] = dbpool_get();
	enqueue1(pool_conns[0], "a");
	enqueue1(pool_conns[1], "b");
	for (i = 0; i < NCONN; i++) {
		in_use[i] = 0;
		dbpool_put(pool_conns[i]);
	}
	overlap = unknown = failed = 0;
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL),
		    0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_false(unknown);
	assert_false(overlap);
	assert_false(failed);
	/* Every connection given back: all of them free at once. */
	for (i = 0; i < NCONN; i++) {
		assert_int_equal(in_use[i], 0);
		s = dbpool_get();
		assert_true(s == pool_conns[0] || s == pool_conns[1] ||
		    s == pool_conns[2]);
	}
	for (i = 0; i < NCONN; i++)
		dbpool_put(pool_conns[i]);
}

/* Closed and opened again (as a restarted responder does in tests). */
static void
test_close_reopen(void **state)
{
	struct fx *f = *state;
	struct store *s;

	pool_open(f, NULL, 0);		/* at least one */
	s = dbpool_get();
	assert_int_equal(store_count_waiting(s, "default"), 0);
	dbpool_put(s);
	dbpool_close();
	f->open = 0;
	pool_open(f, NULL, 4);
	s = dbpool_get();
	enqueue1(s, "x");
	assert_int_equal(store_count_waiting(s, "default"), 1);
	dbpool_put(s);
}

/* A database that cannot be opened: -1 and a message, and no pool. */
static void
test_open_errors(void **state)
{
	struct fx *f = *state;
	struct store_opts ro = { STORE_DURABILITY_FULL, 0, 1 };
	char err[512], path[256];

	(void)snprintf(path, sizeof(path), "%s/no/such/dir/q.db", f->dir);
	err[0] = '\0';
	assert_int_equal(dbpool_open(path, NULL, 2, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	/* Read-only: never created. */
	(void)snprintf(path, sizeof(path), "%s/absent.db", f->dir);
	err[0] = '\0';
	assert_int_equal(dbpool_open(path, &ro, 2, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(access(path, F_OK), -1);
	/* The pool still opens afterwards. */
	pool_open(f, NULL, 2);
}

/* Read-only connections read, and refuse to write. */
static void
test_readonly(void **state)
{
	struct fx *f = *state;
	struct store_opts ro = { STORE_DURABILITY_FULL, 0, 1 };
	struct store_newjob j;
	struct store *s;

	pool_open(f, &ro, 2);
	s = dbpool_get();
	assert_int_equal(store_count_waiting(s, "default"), 0);
	memset(&j, 0, sizeof(j));
	j.queue = "default";
	j.max_attempts = 1;
	j.body = "x";
	j.body_len = 1;
	assert_int_equal(store_enqueue(s, &j, 1), -1);
	assert_int_equal(store_errcode(s), STORE_EREADONLY);
	dbpool_put(s);
}

/*
 * The third connection fails to open (a fault in its first statement):
 * the pool is not opened, the two opened before are closed (ASan's leak
 * check sees them otherwise), and the database was not changed.
 */
static int	steps, fail_from;

static int
count_step(sqlite3_stmt *st)
{
	if (fail_from > 0 && ++steps >= fail_from)
		return SQLITE_IOERR;
	if (fail_from == 0)
		steps++;
	return sqlite3_step(st);
}

static void
test_open_partial_failure(void **state)
{
	struct fx *f = *state;
	char err[512];
	int per;

	/* How many steps one connection's open takes. */
	steps = 0;
	fail_from = 0;
	store_step_fn = count_step;
	pool_open(f, NULL, 1);
	per = steps;
	dbpool_close();
	f->open = 0;
	if (per == 0)
		skip();		/* an open without statements: no fault seam */

	steps = 0;
	fail_from = 2 * per + 1;
	err[0] = '\0';
	assert_int_equal(dbpool_open(f->path, NULL, 3, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_true(steps >= 2 * per + 1);
	store_step_fn = sqlite3_step;
	pool_open(f, NULL, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_take_give),
		T(test_get_blocks_until_put),
		T(test_threads),
		T(test_close_reopen),
		T(test_open_errors),
		T(test_readonly),
		T(test_open_partial_failure),
#undef T
	};

	return cmocka_run_group_tests_name("dbpool", tests, NULL, NULL);
}
