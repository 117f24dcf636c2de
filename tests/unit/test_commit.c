/*
 * test_commit: unit tests of the group committer (fcgi-app/commit.c), each
 * on a fresh database in its own mktemp -d directory, driven the way the
 * router drives it (commit_submit, commit_submit_async) and checked
 * against the rows of the jobs table afterwards, read on a connection of
 * the test's own.
 *
 * The committer's thread runs every statement through store_step_fn
 * (store-sqlite.h).  The step below can hold it at a BEGIN (a "plug" job
 * is stored while the test queues the jobs that must share the next
 * batch), fail each COMMIT with a chosen code, and fail the INSERT of a
 * chosen job.  Waits have generous caps and no test asserts a duration.
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

#include "commit.h"
#include "store-sqlite.h"
#include "tmpdir.h"

#define WAIT_CAP_S	60	/* a wait that takes this long has failed */

struct fx {
	char	dir[64];
	char	path[128];
	sqlite3	*db;		/* the test's own connection */
};

/* --- the step seam ---------------------------------------------------- */

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cv;
	int		 plugged;	/* hold the next BEGIN until unplugged */
	int		 held;		/* a BEGIN is being held */
	int		 commit_rc;	/* fail every COMMIT with it; 0: no */
	int		 commits_failed;
	const char	*poison;	/* fail an INSERT that binds this text */
	int		 poison_rc;
} seam = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static int
seam_step(sqlite3_stmt *st)
{
	const char *sql = sqlite3_sql(st);
	char *x;
	int rc = 0;

	pthread_mutex_lock(&seam.lock);
	if (strncmp(sql, "BEGIN", 5) == 0 && seam.plugged) {
		seam.held = 1;
		pthread_cond_broadcast(&seam.cv);
		while (seam.plugged)
			pthread_cond_wait(&seam.cv, &seam.lock);
		seam.held = 0;
	}
	if (strcmp(sql, "COMMIT") == 0 && seam.commit_rc != 0) {
		rc = seam.commit_rc;
		seam.commits_failed++;
	}
	if (strncmp(sql, "INSERT", 6) == 0 && seam.poison != NULL &&
	    (x = sqlite3_expanded_sql(st)) != NULL) {
		if (strstr(x, seam.poison) != NULL)
			rc = seam.poison_rc;
		sqlite3_free(x);
	}
	pthread_mutex_unlock(&seam.lock);
	return rc != 0 ? rc : sqlite3_step(st);
}

static struct timespec
cap(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_CAP_S;
	return ts;
}

/* Hold the committer at its next BEGIN. */
static void
plug(void)
{
	pthread_mutex_lock(&seam.lock);
	seam.plugged = 1;
	pthread_mutex_unlock(&seam.lock);
}

/* Wait until the committer is held at a BEGIN. */
static void
wait_held(void)
{
	struct timespec ts = cap();

	pthread_mutex_lock(&seam.lock);
	while (!seam.held)
		if (pthread_cond_timedwait(&seam.cv, &seam.lock, &ts) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&seam.lock);
			fail_msg("the committer never reached BEGIN");
		}
	pthread_mutex_unlock(&seam.lock);
}

static void
unplug(void)
{
	pthread_mutex_lock(&seam.lock);
	seam.plugged = 0;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.lock);
}

static void
seam_set(int commit_rc, const char *poison, int poison_rc)
{
	pthread_mutex_lock(&seam.lock);
	seam.commit_rc = commit_rc;
	seam.commits_failed = 0;
	seam.poison = poison;
	seam.poison_rc = poison_rc;
	pthread_mutex_unlock(&seam.lock);
}

/* The thread in commit_stop, joined by teardown if a test failed first. */
static pthread_t	stop_thread;
static int		stop_thread_live;

/* --- asynchronous answers ---------------------------------------------- */

/* One job and the answer it got. */
struct ajob {
	struct store_newjob	 job;
	char			 uri[32];
	int			 answers;	/* times fn was called */
	int			 inline_answer;	/* called before submit returned */
	int			 submitting;
	struct commit_result	 res;
};

static pthread_mutex_t	alock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	acv = PTHREAD_COND_INITIALIZER;
static int		nanswers;
static int		wrong_job;	/* fn was given another job than its own */

static void
answered(void *arg, struct store_newjob *job, const struct commit_result *res)
{
	struct ajob *a = arg;

	pthread_mutex_lock(&alock);
	if (job != &a->job)
		wrong_job = 1;	/* no cmocka assert off the test's thread */
	a->res = *res;
	a->answers++;
	if (a->submitting)
		a->inline_answer = 1;
	nanswers++;
	pthread_cond_broadcast(&acv);
	pthread_mutex_unlock(&alock);
}

static void
newjob(struct store_newjob *j, char *uri, size_t urilen, const char *label,
    const char *body)
{
	memset(j, 0, sizeof(*j));
	(void)snprintf(uri, urilen, "/%s", label);
	j->queue = "default";
	j->max_attempts = 3;
	j->method = "POST";
	j->request_uri = uri;
	j->content_type = "text/plain";
	j->body = body;
	j->body_len = strlen(body);
}

static void
ajob_init(struct ajob *a, const char *label)
{
	memset(a, 0, sizeof(*a));
	newjob(&a->job, a->uri, sizeof(a->uri), label, "payload");
}

static void
submit_async(struct ajob *a, int64_t max_queued)
{
	pthread_mutex_lock(&alock);
	a->submitting = 1;
	pthread_mutex_unlock(&alock);
	commit_submit_async(&a->job, max_queued, answered, a);
	pthread_mutex_lock(&alock);
	a->submitting = 0;
	pthread_mutex_unlock(&alock);
}

/* Wait until n answers have come since the count was last reset. */
static void
wait_answers(int n)
{
	struct timespec ts = cap();

	pthread_mutex_lock(&alock);
	while (nanswers < n)
		if (pthread_cond_timedwait(&acv, &alock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&alock);
			fail_msg("%d answers of %d after %d s", nanswers, n,
			    WAIT_CAP_S);
		}
	assert_false(wrong_job);
	pthread_mutex_unlock(&alock);
}

/* --- the database -------------------------------------------------------- */

static char *
qtext(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	const unsigned char *t;
	char *v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("%s: no row: %s", sql, sqlite3_errmsg(db));
	t = sqlite3_column_text(st, 0);
	v = strdup(t != NULL ? (const char *)t : "");
	sqlite3_finalize(st);
	assert_non_null(v);
	return v;
}

/* The request_uri of every job, in the order they were stored. */
static void
assert_rows(struct fx *f, const char *want)
{
	char *got = qtext(f->db, "SELECT group_concat(request_uri, ',')"
	    " FROM (SELECT request_uri FROM jobs ORDER BY seq)");

	assert_string_equal(got, want);
	free(got);
}

/* The job stored under id has request_uri uri and is queued. */
static void
assert_stored(struct fx *f, const char *id, const char *uri)
{
	sqlite3_stmt *st;

	assert_int_equal(strlen(id), STORE_ID_LEN);
	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT request_uri, state"
	    " FROM jobs WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), uri);
	assert_string_equal((const char *)sqlite3_column_text(st, 1),
	    "queued");
	sqlite3_finalize(st);
}

/* --- fixture ------------------------------------------------------------- */

static struct store *
open_store(struct fx *f, int readonly)
{
	struct store_opts o = { STORE_DURABILITY_FULL, 0, readonly };
	struct store *s;
	char err[512];

	if ((s = store_open(f->path, &o, err, sizeof(err))) == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static void
start(struct fx *f)
{
	struct store *w, *r;

	w = open_store(f, 0);
	r = open_store(f, 1);
	assert_int_equal(commit_start(w, r, f->path), 0);
}

static int
setup(void **state)
{
	struct fx *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "%s/test_commit.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	(void)snprintf(f->path, sizeof(f->path), "%s/q.db", f->dir);
	seam_set(0, NULL, 0);
	seam.plugged = 0;
	store_step_fn = seam_step;
	nanswers = 0;
	start(f);
	if (sqlite3_open_v2(f->path, &f->db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	unplug();
	if (stop_thread_live) {
		(void)pthread_join(stop_thread, NULL);
		stop_thread_live = 0;
	}
	commit_stop();
	store_step_fn = sqlite3_step;
	sqlite3_close(f->db);
	if (tmpdir_remove(f->dir) == -1)
		return -1;
	free(f);
	return 0;
}

/*
 * Queue a[0..n) asynchronously behind a plug job, so that they all go in
 * one batch once the plug is stored.  plug_job answers too.
 */
static void
batch_behind_plug(struct ajob *plug_job, struct ajob *a, size_t n,
    int64_t max_queued)
{
	size_t i;

	plug();
	ajob_init(plug_job, "plug");
	submit_async(plug_job, INT64_MAX);
	wait_held();
	for (i = 0; i < n; i++)
		submit_async(&a[i], max_queued);
	unplug();
	wait_answers((int)n + 1);
}

/* --- tests --------------------------------------------------------------- */

/* The rows of the rejected table, through the test's own connection. */
static int
rejected_rows(struct fx *f)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(f->db, "SELECT count(*) FROM rejected", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/*
 * A flood of refused requests: commit_reject never blocks, good jobs are
 * stored meanwhile, the rows are written a batch at a time (not one
 * transaction each), what finds no room is dropped, and the table never
 * holds more than keep rows of the queue.
 */
static void
test_reject_flood(void **state)
{
	struct fx *f = *state;
	struct store_rejected row;
	struct store_newjob j;
	struct commit_result res;
	char uri[32];
	int i, n;

	memset(&row, 0, sizeof(row));
	row.queue = "gh";
	row.reason = "no secret matched: X-Hub-Signature-256";
	row.headers = "{}";
	row.body_head = "{\"x\":1}";
	row.head_len = 7;
	row.body_length = 7;
	row.keep = 50;
	for (i = 0; i < 1000; i++) {
		row.at = i;
		commit_reject(&row);
	}
	newjob(&j, uri, sizeof(uri), "good", "hello");
	commit_submit(&j, 10, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_stored(f, j.id, "/good");
	for (i = 0; i < 200 && (n = rejected_rows(f)) == 0; i++)
		usleep(10000);
	assert_true(n > 0 && n <= 50);
	commit_stop();
	n = rejected_rows(f);
	assert_true(n > 0 && n <= 50);
}

/* One synchronous job: stored, its id and outcome filled in. */
static void
test_submit(void **state)
{
	struct fx *f = *state;
	struct store_newjob j;
	struct commit_result res;
	char uri[32];

	newjob(&j, uri, sizeof(uri), "one", "hello");
	commit_submit(&j, 10, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_int_equal(j.outcome, STORE_ENQ_NEW);
	assert_stored(f, j.id, "/one");
	assert_rows(f, "/one");
}

/* Jobs queued together go in one transaction, in order, all answered. */
static void
test_one_batch(void **state)
{
	struct fx *f = *state;
	static struct ajob p, a[5];
	char label[8];
	size_t i;

	for (i = 0; i < 5; i++) {
		(void)snprintf(label, sizeof(label), "j%zu", i);
		ajob_init(&a[i], label);
	}
	seam_set(0, NULL, 0);
	batch_behind_plug(&p, a, 5, INT64_MAX);
	assert_int_equal(p.res.status, COMMIT_OK);
	for (i = 0; i < 5; i++) {
		assert_int_equal(a[i].answers, 1);
		assert_false(a[i].inline_answer);
		assert_int_equal(a[i].res.status, COMMIT_OK);
		assert_int_equal(a[i].job.outcome, STORE_ENQ_NEW);
		assert_stored(f, a[i].job.id, a[i].uri);
	}
	/* One batch, one millisecond: one id prefix. */
	for (i = 1; i < 5; i++)
		assert_memory_equal(a[i].job.id, a[0].job.id, 8);
	assert_rows(f, "/plug,/j0,/j1,/j2,/j3,/j4");
}

/*
 * A job of the batch whose INSERT fails (a constraint): the batch is
 * retried job by job, the others are stored and answered, that one is
 * answered with its error and not stored.
 */
static void
test_batch_one_refused_constraint(void **state)
{
	struct fx *f = *state;
	static struct ajob p, a[4];

	ajob_init(&a[0], "a");
	ajob_init(&a[1], "b");
	ajob_init(&a[2], "poison");
	ajob_init(&a[3], "d");
	seam_set(0, "/poison", SQLITE_CONSTRAINT);
	batch_behind_plug(&p, a, 4, INT64_MAX);
	assert_int_equal(p.res.status, COMMIT_OK);
	assert_int_equal(a[2].answers, 1);
	assert_int_equal(a[2].res.status, COMMIT_FAILED);
	assert_int_equal(a[2].res.errcode, STORE_ECONSTRAINT);
	assert_true(a[2].res.error[0] != '\0');
	assert_int_equal(a[0].res.status, COMMIT_OK);
	assert_int_equal(a[1].res.status, COMMIT_OK);
	assert_int_equal(a[3].res.status, COMMIT_OK);
	assert_stored(f, a[0].job.id, "/a");
	assert_stored(f, a[1].job.id, "/b");
	assert_stored(f, a[3].job.id, "/d");
	assert_rows(f, "/plug,/a,/b,/d");
}

/* A job the store refuses outright (no attempts allowed), likewise. */
static void
test_batch_one_refused_invalid(void **state)
{
	struct fx *f = *state;
	static struct ajob p, a[3];

	ajob_init(&a[0], "a");
	ajob_init(&a[1], "bad");
	a[1].job.max_attempts = 0;
	ajob_init(&a[2], "c");
	batch_behind_plug(&p, a, 3, INT64_MAX);
	assert_int_equal(a[1].res.status, COMMIT_FAILED);
	assert_int_equal(a[1].res.errcode, STORE_EINVAL);
	assert_int_equal(a[0].res.status, COMMIT_OK);
	assert_int_equal(a[2].res.status, COMMIT_OK);
	assert_stored(f, a[0].job.id, "/a");
	assert_stored(f, a[2].job.id, "/c");
	assert_rows(f, "/plug,/a,/c");
}

/*
 * An idempotency conflict inside a batch: the conflicting job is answered
 * with the earlier job's id and stores nothing; a duplicate likewise; the
 * batch's other jobs are stored.
 */
static void
test_batch_idempotency(void **state)
{
	struct fx *f = *state;
	struct store_newjob first;
	struct commit_result res;
	static struct ajob p, a[4];
	char uri[32];

	newjob(&first, uri, sizeof(uri), "first", "same");
	first.idempotency_key = "evt-1";
	commit_submit(&first, INT64_MAX, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_int_equal(first.outcome, STORE_ENQ_NEW);

	ajob_init(&a[0], "a");
	ajob_init(&a[1], "conflict");
	a[1].job.idempotency_key = "evt-1";
	a[1].job.body = "different";
	a[1].job.body_len = strlen("different");
	ajob_init(&a[2], "dup");
	a[2].job.idempotency_key = "evt-1";
	a[2].job.body = "same";
	a[2].job.body_len = strlen("same");
	ajob_init(&a[3], "d");
	batch_behind_plug(&p, a, 4, INT64_MAX);
	assert_int_equal(a[0].res.status, COMMIT_OK);
	assert_int_equal(a[0].job.outcome, STORE_ENQ_NEW);
	assert_int_equal(a[1].res.status, COMMIT_OK);
	assert_int_equal(a[1].job.outcome, STORE_ENQ_CONFLICT);
	assert_string_equal(a[1].job.id, first.id);
	assert_int_equal(a[2].res.status, COMMIT_OK);
	assert_int_equal(a[2].job.outcome, STORE_ENQ_DUPLICATE);
	assert_string_equal(a[2].job.id, first.id);
	assert_int_equal(a[3].res.status, COMMIT_OK);
	assert_int_equal(a[3].job.outcome, STORE_ENQ_NEW);
	assert_rows(f, "/first,/plug,/a,/d");
}

/*
 * max_queued: a queue at its limit answers COMMIT_FULL and stores
 * nothing; jobs already in the database (another process's) count; a
 * duplicate is no new job and takes no room.
 */
static void
test_max_queued(void **state)
{
	struct fx *f = *state;
	struct store_newjob j, other;
	struct commit_result res;
	struct store *s;
	char uri[32];

	/* Two jobs stored behind the committer's back, before it counts. */
	commit_stop();
	s = open_store(f, 0);
	store_step_fn = sqlite3_step;
	newjob(&other, uri, sizeof(uri), "other0", "x");
	assert_int_equal(store_enqueue(s, &other, 1), 0);
	newjob(&other, uri, sizeof(uri), "other1", "x");
	assert_int_equal(store_enqueue(s, &other, 1), 0);
	store_close(s);
	store_step_fn = seam_step;
	start(f);
	commit_prime("default");

	newjob(&j, uri, sizeof(uri), "k", "same");
	j.idempotency_key = "evt-1";
	commit_submit(&j, 4, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_int_equal(j.outcome, STORE_ENQ_NEW);
	/* The same again: a duplicate, not a fourth job. */
	newjob(&j, uri, sizeof(uri), "k-again", "same");
	j.idempotency_key = "evt-1";
	commit_submit(&j, 4, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_int_equal(j.outcome, STORE_ENQ_DUPLICATE);
	newjob(&j, uri, sizeof(uri), "fourth", "x");
	commit_submit(&j, 4, &res);
	assert_int_equal(res.status, COMMIT_OK);
	/* Full: four waiting. */
	newjob(&j, uri, sizeof(uri), "fifth", "x");
	commit_submit(&j, 4, &res);
	assert_int_equal(res.status, COMMIT_FULL);
	assert_string_equal(res.error, "queue full");
	assert_string_equal(j.id, "");
	/* Another queue has room of its own. */
	newjob(&j, uri, sizeof(uri), "mail", "x");
	j.queue = "mail";
	commit_submit(&j, 1, &res);
	assert_int_equal(res.status, COMMIT_OK);
	newjob(&j, uri, sizeof(uri), "mail2", "x");
	j.queue = "mail";
	commit_submit(&j, 1, &res);
	assert_int_equal(res.status, COMMIT_FULL);
	assert_rows(f, "/other0,/other1,/k,/fourth,/mail");
}

/* Within one batch: the jobs past the limit are refused, in order. */
static void
test_max_queued_in_batch(void **state)
{
	struct fx *f = *state;
	static struct ajob p, a[5];
	char label[8];
	size_t i;

	for (i = 0; i < 5; i++) {
		(void)snprintf(label, sizeof(label), "j%zu", i);
		ajob_init(&a[i], label);
	}
	/* The plug itself counts: 1 + 2 fill a limit of 3. */
	batch_behind_plug(&p, a, 5, 3);
	for (i = 0; i < 5; i++) {
		assert_int_equal(a[i].answers, 1);
		assert_int_equal(a[i].res.status,
		    i < 2 ? COMMIT_OK : COMMIT_FULL);
	}
	assert_rows(f, "/plug,/j0,/j1");
}

/*
 * A COMMIT that fails with rc: every job of the batch is answered
 * COMMIT_FAILED with the store's code want, the database holds none of
 * them, and the next batch goes on.
 */
static void
commit_fails(struct fx *f, int rc, int want)
{
	static struct ajob p, a[4], later;
	struct store_newjob sj;
	struct commit_result res;
	char label[8], uri[32];
	size_t i;

	for (i = 0; i < 4; i++) {
		(void)snprintf(label, sizeof(label), "j%zu", i);
		ajob_init(&a[i], label);
	}
	seam_set(rc, NULL, 0);
	batch_behind_plug(&p, a, 4, INT64_MAX);
	assert_int_equal(p.res.status, COMMIT_FAILED);
	assert_int_equal(p.res.errcode, want);
	for (i = 0; i < 4; i++) {
		assert_int_equal(a[i].answers, 1);
		assert_int_equal(a[i].res.status, COMMIT_FAILED);
		assert_int_equal(a[i].res.errcode, want);
		assert_non_null(strstr(a[i].res.error, "commit"));
	}
	/* One COMMIT per batch: a failure of the whole database is not
	 * retried job by job. */
	pthread_mutex_lock(&seam.lock);
	assert_int_equal(seam.commits_failed, 2);
	pthread_mutex_unlock(&seam.lock);
	/* A synchronous waiter too. */
	newjob(&sj, uri, sizeof(uri), "sync", "x");
	commit_submit(&sj, INT64_MAX, &res);
	assert_int_equal(res.status, COMMIT_FAILED);
	assert_int_equal(res.errcode, want);
	assert_rows(f, "");

	/* The connection is not left inside the failed transaction: the
	 * next job is stored alone. */
	seam_set(0, NULL, 0);
	ajob_init(&later, "later");
	pthread_mutex_lock(&alock);
	nanswers = 0;
	pthread_mutex_unlock(&alock);
	submit_async(&later, INT64_MAX);
	wait_answers(1);
	assert_int_equal(later.res.status, COMMIT_OK);
	assert_rows(f, "/later");
	/* The failed jobs took no room in the queue. */
	newjob(&sj, uri, sizeof(uri), "second", "x");
	commit_submit(&sj, 2, &res);
	assert_int_equal(res.status, COMMIT_OK);
	assert_rows(f, "/later,/second");
}

static void
test_commit_full(void **state)
{
	commit_fails(*state, SQLITE_FULL, STORE_EFULL);
}

static void
test_commit_ioerr(void **state)
{
	commit_fails(*state, SQLITE_IOERR_WRITE, STORE_EIO);
}

static void
test_commit_busy(void **state)
{
	commit_fails(*state, SQLITE_BUSY, STORE_EBUSY);
}

struct syncer {
	pthread_t		 thread;
	struct store_newjob	 job;
	char			 uri[32];
	struct commit_result	 res;
	int			 done;
};

static void *
sync_submit(void *arg)
{
	struct syncer *s = arg;

	commit_submit(&s->job, INT64_MAX, &s->res);
	pthread_mutex_lock(&alock);
	s->done = 1;
	nanswers++;
	pthread_cond_broadcast(&acv);
	pthread_mutex_unlock(&alock);
	return NULL;
}

static void *
stopper(void *arg)
{
	(void)arg;
	commit_stop();
	return NULL;
}

/*
 * commit_stop while jobs wait behind a batch in progress: the waiting
 * jobs are stored and answered before the thread ends; a job submitted
 * once it is stopping is answered COMMIT_STOPPED at once, from the
 * submitting thread; none is left unanswered.
 */
static void
test_stop_while_waiting(void **state)
{
	struct fx *f = *state;
	static struct ajob p, a[6], probe[256], after;
	static struct syncer sy[3];
	struct commit_result res;
	struct store_newjob j;
	char label[16], want[512], uri[32];
	size_t i, nprobe = 0, queued_probes = 0;
	int stopped = 0, n, k;

	plug();
	ajob_init(&p, "plug");
	submit_async(&p, INT64_MAX);
	wait_held();
	for (i = 0; i < 6; i++) {
		(void)snprintf(label, sizeof(label), "a%zu", i);
		ajob_init(&a[i], label);
		submit_async(&a[i], INT64_MAX);
	}
	for (i = 0; i < 3; i++) {
		memset(&sy[i], 0, sizeof(sy[i]));
		(void)snprintf(label, sizeof(label), "s%zu", i);
		newjob(&sy[i].job, sy[i].uri, sizeof(sy[i].uri), label, "x");
		assert_int_equal(pthread_create(&sy[i].thread, NULL,
		    sync_submit, &sy[i]), 0);
	}
	assert_int_equal(pthread_create(&stop_thread, NULL, stopper, NULL), 0);
	stop_thread_live = 1;
	/* Probe until a submission is refused: the committer is stopping.
	 * A probe submitted before that is queued like the others.  The
	 * pauses grow to 100 ms: minutes in all before giving up. */
	for (k = 0; nprobe < 256 && !stopped; k++) {
		(void)snprintf(label, sizeof(label), "p%zu", nprobe);
		ajob_init(&probe[nprobe], label);
		submit_async(&probe[nprobe], INT64_MAX);
		pthread_mutex_lock(&alock);
		if (probe[nprobe].inline_answer) {
			assert_int_equal(probe[nprobe].res.status,
			    COMMIT_STOPPED);
			stopped = 1;
		} else
			queued_probes++;
		pthread_mutex_unlock(&alock);
		nprobe++;
		if (!stopped)
			usleep(k < 7 ? 1000U << k : 100000U);
	}
	assert_true(stopped);
	unplug();
	assert_int_equal(pthread_join(stop_thread, NULL), 0);
	stop_thread_live = 0;
	/* Every one answered: plug, a[], probes (one inline), syncers. */
	wait_answers(1 + 6 + (int)nprobe + 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_join(sy[i].thread, NULL), 0);

	assert_int_equal(p.answers, 1);
	assert_int_equal(p.res.status, COMMIT_OK);
	n = snprintf(want, sizeof(want), "/plug");
	for (i = 0; i < 6; i++) {
		assert_int_equal(a[i].answers, 1);
		assert_int_equal(a[i].res.status, COMMIT_OK);
		assert_stored(f, a[i].job.id, a[i].uri);
		n += snprintf(want + n, sizeof(want) - (size_t)n, ",%s",
		    a[i].uri);
	}
	for (i = 0; i < queued_probes; i++) {
		assert_int_equal(probe[i].answers, 1);
		assert_int_equal(probe[i].res.status, COMMIT_OK);
		assert_stored(f, probe[i].job.id, probe[i].uri);
	}
	assert_int_equal(probe[queued_probes].answers, 1);
	/* A synchronous waiter queued before the stop is stored; one that
	 * came after it is refused. */
	for (i = 0; i < 3; i++) {
		assert_true(sy[i].done);
		if (sy[i].res.status == COMMIT_OK)
			assert_stored(f, sy[i].job.id, sy[i].uri);
		else {
			assert_int_equal(sy[i].res.status, COMMIT_STOPPED);
			assert_string_equal(sy[i].job.id, "");
		}
	}
	/* The first rows are the plug's batch and the jobs queued behind
	 * it, in order. */
	{
		char *got = qtext(f->db, "SELECT group_concat(request_uri,"
		    " ',') FROM (SELECT request_uri FROM jobs ORDER BY seq"
		    " LIMIT 7)");

		assert_string_equal(got, want);
		free(got);
	}

	/* Stopped: both kinds of submission are refused at once. */
	newjob(&j, uri, sizeof(uri), "late", "x");
	commit_submit(&j, INT64_MAX, &res);
	assert_int_equal(res.status, COMMIT_STOPPED);
	ajob_init(&after, "late-async");
	submit_async(&after, INT64_MAX);
	assert_true(after.inline_answer);
	assert_int_equal(after.res.status, COMMIT_STOPPED);
	/* A second stop does nothing. */
	commit_stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_reject_flood),
		T(test_submit),
		T(test_one_batch),
		T(test_batch_one_refused_constraint),
		T(test_batch_one_refused_invalid),
		T(test_batch_idempotency),
		T(test_max_queued),
		T(test_max_queued_in_batch),
		T(test_commit_full),
		T(test_commit_ioerr),
		T(test_commit_busy),
		T(test_stop_while_waiting),
#undef T
	};

	return cmocka_run_group_tests_name("commit", tests, NULL, NULL);
}
