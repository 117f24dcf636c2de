/*
 * store-bulk.c: an operator's change of many jobs at once (fcgiqctl retry,
 * discard, cancel with filters).  The jobs are found in arrival order
 * (seq) outside any write transaction, then changed in batches, each one
 * short transaction that applies the filter again to each row: the write
 * lock is let go between batches, so intake goes on, and a batch is all
 * or nothing, so a process killed in the middle leaves every job either
 * changed or not, and the same command run again does the rest.
 *
 * The lock is held about BULK_HOLD_US per batch whatever the machine's
 * load: a batch that took twice that halves the next one, one that took
 * half doubles it (up to the caller's size).  After each batch the change
 * pauses BULK_PAUSE_US, longer than a waiting committer's step
 * (busy_wait in store.c): without the pause the next batch took the lock
 * back within a millisecond, and intake through nginx, waiting behind
 * one batch after the other, went down to 5 requests/s (tests/e2e/bulk.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "clock.h"
#include "store-pg.h"
#include "store-sqlite.h"

#define BULK_HOLD_US	5000	/* write lock per batch, aimed at */
#define BULK_PAUSE_US	4000	/* between batches */
#define BULK_MIN	50	/* jobs per batch, at least */
#define BULK_CKPT_EVERY	4	/* batches between checkpoints */

/* The filter, on ?2 .. ?6; ?3 is the states as ",dead,retry,". */
#define FILTER \
	" AND (?2 IS NULL OR queue = ?2)" \
	" AND instr(?3, ',' || state || ',') > 0" \
	" AND (?4 IS NULL OR created_at >= ?4)" \
	" AND (?5 IS NULL OR created_at < ?5)" \
	" AND (?6 IS NULL OR last_error LIKE ?6)"

/* Each op's change of the job with seq ?1 (?7: now), as the single-job
 * forms make it: retry as store_retry, cancel as store_cancel. */
static const char *const op_sql[] = {
	[STORE_BULK_RETRY] =
	    "UPDATE jobs SET state = 'queued', run_at = ?7, finished_at = NULL,"
	    "  lease_until = NULL, max_attempts = max(max_attempts, attempts + 1)"
	    " WHERE seq = ?1" FILTER,
	[STORE_BULK_DISCARD] =
	    "DELETE FROM jobs WHERE seq = ?1" FILTER,
	[STORE_BULK_CANCEL] =
	    "UPDATE jobs SET state = 'cancelled', finished_at = ?7,"
	    "  lease_until = NULL"
	    " WHERE seq = ?1" FILTER,
};

static const unsigned op_states[] = {
	[STORE_BULK_RETRY] = 1u << STORE_JOB_DEAD | 1u << STORE_JOB_CANCELLED |
	    1u << STORE_JOB_RETRY,
	[STORE_BULK_DISCARD] = 1u << STORE_JOB_DONE | 1u << STORE_JOB_DEAD |
	    1u << STORE_JOB_CANCELLED,
	[STORE_BULK_CANCEL] = 1u << STORE_JOB_QUEUED | 1u << STORE_JOB_RETRY,
};

static const unsigned op_default[] = {
	[STORE_BULK_RETRY] = 1u << STORE_JOB_DEAD,
	[STORE_BULK_DISCARD] = 1u << STORE_JOB_DEAD,
	[STORE_BULK_CANCEL] = 1u << STORE_JOB_QUEUED | 1u << STORE_JOB_RETRY,
};

unsigned
store_bulk_states(enum store_bulk_op op, int defaults)
{
	return defaults ? op_default[op] : op_states[op];
}

/* f's states for op as ",a,b," into buf; -1 when f names one op refuses. */
static int
states_text(struct store *s, enum store_bulk_op op,
    const struct store_filter *f, char *buf, size_t len)
{
	unsigned want = f->states != 0 ? f->states : op_default[op];
	size_t n;
	int st;

	if ((want & ~op_states[op]) != 0)
		return sq_fail_arg(s, "bulk: a state this change does not "
		    "apply to");
	snprintf(buf, len, ",");
	for (st = STORE_JOB_QUEUED; st <= STORE_JOB_CANCELLED; st++)
		if (want & 1u << st) {
			n = strlen(buf);
			snprintf(buf + n, len - n, "%s,",
			    store_state_name((enum store_state)st));
		}
	return 0;
}

/* Bind the filter to ?2 .. ?6 of st. */
static int
bind_filter(struct store *s, sqlite3_stmt *st, const struct store_filter *f,
    const char *states)
{
	if (sq_bind_str(st, 2, f->queue) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, states, -1, SQLITE_TRANSIENT) !=
	    SQLITE_OK ||
	    (f->since != 0 ? sqlite3_bind_int64(st, 4, f->since) :
	    sqlite3_bind_null(st, 4)) != SQLITE_OK ||
	    (f->until != 0 ? sqlite3_bind_int64(st, 5, f->until) :
	    sqlite3_bind_null(st, 5)) != SQLITE_OK ||
	    sq_bind_str(st, 6, f->error) != SQLITE_OK)
		return sq_fail_db(s, "bulk: bind");
	return 0;
}

int64_t
store_bulk_count(struct store *s, enum store_bulk_op op,
    const struct store_filter *f)
{
	static const char sql[] = "SELECT count(*) FROM jobs WHERE 1" FILTER;
	sqlite3_stmt	*st = NULL;
	char		 states[96];
	int64_t		 n = -1;
	int		 rc;

	if (states_text(s, op, f, states, sizeof(states)) == -1)
		return -1;
	if (s->pg != NULL)
		return pgs_bulk_count(s, f, states);
	if ((st = sq_prepare(s, sql, "bulk: count")) == NULL)
		return -1;
	if (bind_filter(s, st, f, states) == -1)
		goto done;
	if ((rc = store_step_fn(st)) != SQLITE_ROW) {
		(void)sq_fail(s, rc, "bulk: count");
		goto done;
	}
	n = sqlite3_column_int64(st, 0);
done:
	sqlite3_finalize(st);
	return n;
}

/*
 * The seqs of the next (at most) batch jobs past lo that f selects, into
 * seqs, read outside a write transaction.  How many, or -1.
 */
static int
next_batch(struct store *s, sqlite3_stmt *st, const struct store_filter *f,
    const char *states, int64_t lo, int batch, int64_t *seqs)
{
	int	 rc, n = 0;

	if (sqlite3_bind_int64(st, 1, lo) != SQLITE_OK ||
	    bind_filter(s, st, f, states) == -1 ||
	    sqlite3_bind_int(st, 7, batch) != SQLITE_OK) {
		sq_done_with(st);
		return sq_fail_db(s, "bulk: bind");
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW)
		seqs[n++] = sqlite3_column_int64(st, 0);
	sq_done_with(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "bulk: read");
	return n;
}

/* Change the jobs seqs[0..n) in one transaction: how many changed, or -1
 * (nothing changed). */
static int64_t
change_batch(struct store *s, sqlite3_stmt *st, const struct store_filter *f,
    const char *states, int64_t now, const int64_t *seqs, int n)
{
	int64_t	 changed = 0;
	int	 i;

	if (sq_begin(s) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (sqlite3_bind_int64(st, 1, seqs[i]) != SQLITE_OK ||
		    bind_filter(s, st, f, states) == -1 ||
		    (sqlite3_bind_parameter_count(st) >= 7 &&
		    sqlite3_bind_int64(st, 7, now) != SQLITE_OK)) {
			(void)sq_fail_db(s, "bulk: bind");
			goto fail;
		}
		if (sq_step_done(s, st, "bulk: change") == -1)
			goto fail;
		changed += sqlite3_changes(s->db);
		sq_done_with(st);
	}
	if (sq_commit(s) == -1)
		goto fail;
	return changed;
fail:
	sq_done_with(st);
	sq_rollback(s);
	return -1;
}

int64_t
store_bulk(struct store *s, enum store_bulk_op op,
    const struct store_filter *f, int64_t now, int batch, store_bulk_fn fn,
    void *arg)
{
	static const char pick[] = "SELECT seq FROM jobs WHERE seq > ?1"
	    FILTER " ORDER BY seq LIMIT ?7";
	sqlite3_stmt	*read = NULL, *write = NULL;
	int64_t		*seqs, total = 0, r = -1, c, lo = 0, t0, dt;
	struct timespec	 pause;
	char		 states[96];
	int		 n, cur, nbatch = 0;

	if (batch < 1)
		return sq_fail_arg(s, "bulk: batch below 1");
	if (states_text(s, op, f, states, sizeof(states)) == -1)
		return -1;
	if (s->pg != NULL)
		return pgs_bulk(s, op, f, states, now, batch, fn, arg);
	if ((seqs = calloc((size_t)batch, sizeof(*seqs))) == NULL)
		return sq_set_error(s, SQLITE_NOMEM, "bulk: out of memory");
	if ((read = sq_prepare(s, pick, "bulk: prepare")) == NULL ||
	    (write = sq_prepare(s, op_sql[op], "bulk: prepare")) == NULL)
		goto done;
	for (cur = batch;;) {
		if ((n = next_batch(s, read, f, states, lo, cur, seqs)) == -1)
			goto done;
		if (n == 0)
			break;
		t0 = mono_us();
		if ((c = change_batch(s, write, f, states, now, seqs, n)) == -1)
			goto done;
		dt = mono_us() - t0;
		total += c;
		lo = seqs[n - 1];
		if (fn != NULL && fn(arg, total) != 0)
			break;
		if (n < cur)
			break;
		if (dt > 2 * BULK_HOLD_US && cur / 2 >= BULK_MIN)
			cur /= 2;
		else if (dt < BULK_HOLD_US / 2 && cur < batch)
			cur = cur * 2 < batch ? cur * 2 : batch;
		/* The WAL this change writes (some 50-100 pages a batch) is
		 * checkpointed here, before it reaches the automatic
		 * threshold (1000 pages) in the commit of an intake, which
		 * would pay for it.  A passive checkpoint neither waits
		 * for nor blocks a writer. */
		if (++nbatch % BULK_CKPT_EVERY == 0)
			(void)sqlite3_wal_checkpoint_v2(s->db, NULL,
			    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pause.tv_sec = 0;
		pause.tv_nsec = BULK_PAUSE_US * 1000L;
		(void)nanosleep(&pause, NULL);
	}
	r = total;
done:
	sqlite3_finalize(read);
	sqlite3_finalize(write);
	free(seqs);
	return r;
}
