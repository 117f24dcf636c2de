/*
 * store-enqueue.c: new jobs and their ids.  A batch of jobs goes in with
 * one transaction of multi-row INSERTs, keyed jobs among the others.  A key
 * repeated within the batch is a duplicate of its first job; a key already
 * in the database is found by the INSERT itself (the unique index's
 * probe: the row is not inserted), and only then looked up.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store-sqlite.h"

#define INSERT_COLS		15	/* bound values per row */
#define ID_SEQ_BITS		10	/* ids per millisecond before borrowing */

/* base64url's 64 characters in ASCII order: an id sorts as its bits. */
static const char	 ordered[] = "-0123456789"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/*
 * The id of time ms, sequence number seq (ID_SEQ_BITS) and 16 random bytes
 * r, as store.h lays it out.  The first character is ordered[1 + the time's
 * bits 42-46]: never '-', and past every id of the old layout, whose first
 * character was ordered[bits 42-47], '-' until the year 2109.
 */
static void
make_id(char id[STORE_ID_LEN + 1], int64_t ms, unsigned seq,
    const unsigned char r[16])
{
	uint64_t		 t = (uint64_t)ms;
	uint32_t		 acc;
	int			 i, o, nbits;

	for (i = 7; i >= 1; i--) {
		id[i] = ordered[t & 63];
		t >>= 6;
	}
	id[0] = ordered[1 + (t & 31)];
	/* seq, then r's first 122 bits, six at a time. */
	acc = seq & ((1u << ID_SEQ_BITS) - 1);
	nbits = ID_SEQ_BITS;
	for (i = 0, o = 8; i < 16 && o < STORE_ID_LEN; i++) {
		acc = acc << 8 | r[i];
		nbits += 8;
		while (nbits >= 6 && o < STORE_ID_LEN) {
			nbits -= 6;
			id[o++] = ordered[acc >> nbits & 63];
		}
		acc &= (1u << nbits) - 1;
	}
	id[o] = '\0';
}

int
store_id_time(const char *id, int64_t *ms)
{
	const char	*p;
	uint64_t	 t = 0;
	int		 i, v;

	if (strlen(id) != STORE_ID_LEN)
		return 0;
	for (i = 0; i < 8; i++) {
		if ((p = strchr(ordered, id[i])) == NULL)
			return 0;
		v = (int)(p - ordered);
		/* The first character: bits 42-47 in the old layout ('-',
		 * 0, until 2109), 1 + bits 42-46 in the new one. */
		if (i == 0 && v > 0)
			v--;
		t = t << 6 | (uint64_t)v;
	}
	*ms = (int64_t)t;
	return 1;
}

/*
 * Give jobs[0..n) fresh ids, up to 64 from one getrandom.  Each id of s
 * sorts after the one before: within a millisecond the sequence number
 * grows; when it is used up, or the wall clock stepped back, the time part
 * goes on from the last id's instead of going back.
 */
static int
make_ids(struct store *s, struct store_newjob *jobs, size_t n, int64_t now)
{
	unsigned char	 r[16 * 64];
	size_t		 i, k, m;

	for (i = 0; i < n; i += m) {
		m = n - i < 64 ? n - i : 64;
		if (sq_random(r, 16 * m) == -1)
			return sq_set_error(s, SQLITE_ERROR, "getrandom: %s",
			    strerror(errno));
		for (k = 0; k < m; k++) {
			if (now > s->id_ms) {
				s->id_ms = now;
				s->id_seq = 0;
			} else if (++s->id_seq >= 1u << ID_SEQ_BITS) {
				s->id_ms++;
				s->id_seq = 0;
			}
			make_id(jobs[i + k].id, s->id_ms, s->id_seq,
			    r + 16 * k);
		}
	}
	return 0;
}

int
sq_make_ids(struct store *s, struct store_newjob *jobs, size_t n, int64_t now)
{
	return make_ids(s, jobs, n, now);
}

/*
 * Look up an earlier job with the same queue and idempotency key: one
 * other than j itself (its id, when it was inserted).  1: found, j's id
 * and outcome set; 0: none; -1: error.
 */
static int
enqueue_lookup(struct store *s, struct store_newjob *j)
{
	sqlite3_stmt	*st;
	const void	*body;
	int		 rc, r = -1, len;

	if ((st = sq_stmt(s, ST_IDEM_LOOKUP)) == NULL)
		return -1;
	if (sq_bind_str(st, 1, j->queue) != SQLITE_OK ||
	    sq_bind_str(st, 2, j->idempotency_key) != SQLITE_OK) {
		(void)sq_fail_db(s, "bind");
		goto done;
	}
	rc = store_step_fn(st);
	if (rc == SQLITE_DONE) {
		r = 0;
		goto done;
	}
	if (rc != SQLITE_ROW) {
		(void)sq_fail(s, rc, "idempotency lookup");
		goto done;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), j->id) == 0) {
		r = 0;		/* j went in: it is the first */
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
	sq_done_with(st);
	return r;
}

/*
 * The keyed job jobs[i] against the jobs before it in the batch that may
 * be stored (outcome still new): 1 when one of them holds its queue and
 * key, jobs[i]'s id and outcome then set; else 0.
 */
int
store_batch_match(struct store_newjob *jobs, size_t i)
{
	struct store_newjob *j = &jobs[i], *e;
	size_t k;

	for (k = 0; k < i; k++) {
		e = &jobs[k];
		if (e->outcome != STORE_ENQ_NEW || e->idempotency_key == NULL ||
		    strcmp(e->idempotency_key, j->idempotency_key) != 0 ||
		    strcmp(e->queue, j->queue) != 0)
			continue;
		memcpy(j->id, e->id, sizeof(j->id));
		j->outcome = e->body_len == j->body_len && (j->body_len == 0 ||
		    memcmp(e->body, j->body, j->body_len) == 0) ?
		    STORE_ENQ_DUPLICATE : STORE_ENQ_CONFLICT;
		return 1;
	}
	return 0;
}

/*
 * The INSERT of 2^k rows, prepared on first use.  A row whose queue and
 * key are taken already is left out, not an error: the unique index
 * probes for it anyway, and the caller looks up only when fewer rows went
 * in than it gave.
 */
static sqlite3_stmt *
insert_stmt(struct store *s, int k)
{
	static const char head[] =
	    "INSERT INTO jobs (id, queue, state, priority, attempts,"
	    "  max_attempts, created_at, run_at, idempotency_key, method,"
	    "  request_uri, query_string, content_type, remote_addr, headers,"
	    "  body, serial_key) VALUES ";
	static const char row[] =
	    "(?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	static const char tail[] =
	    " ON CONFLICT (queue, idempotency_key)"
	    " WHERE idempotency_key IS NOT NULL DO NOTHING";
	char	 sql[sizeof(head) + STORE_INSERT_ROWS * sizeof(row) +
	    sizeof(tail)], *p;
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
	memcpy(p, tail, sizeof(tail));
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &s->ins[k], NULL);
	if (rc != SQLITE_OK) {
		(void)sq_fail(s, rc, "prepare");
		sqlite3_finalize(s->ins[k]);
		s->ins[k] = NULL;
	}
	return s->ins[k];
}

/*
 * Insert jobs[0..n) (ids already made) with one statement of n = 2^k rows:
 * how many went in (fewer when keys were taken), or -1.
 */
static int
insert_rows(struct store *s, struct store_newjob *jobs, int k, int64_t now)
{
	struct store_newjob	*j;
	sqlite3_stmt		*st;
	char			 own[STORE_ID_LEN + 16];
	int			 i, b, r = -1;

	if ((st = insert_stmt(s, k)) == NULL)
		return -1;
	for (i = 0; i < 1 << k; i++) {
		j = &jobs[i];
		b = i * INSERT_COLS;
		/* A zero-length body must bind as an empty blob, not NULL. */
		if (sqlite3_bind_text(st, b + 1, j->id, STORE_ID_LEN,
		    SQLITE_STATIC) != SQLITE_OK ||
		    sq_bind_str(st, b + 2, j->queue) != SQLITE_OK ||
		    sqlite3_bind_int(st, b + 3, j->priority) != SQLITE_OK ||
		    sqlite3_bind_int(st, b + 4, j->max_attempts) != SQLITE_OK ||
		    sqlite3_bind_int64(st, b + 5, now) != SQLITE_OK ||
		    sqlite3_bind_int64(st, b + 6, j->run_at != 0 ? j->run_at :
		    now) != SQLITE_OK ||
		    sq_bind_str(st, b + 7, j->idempotency_key) != SQLITE_OK ||
		    sq_bind_str(st, b + 8, j->method) != SQLITE_OK ||
		    sq_bind_str(st, b + 9, j->request_uri) != SQLITE_OK ||
		    sq_bind_str(st, b + 10, j->query_string) != SQLITE_OK ||
		    sq_bind_str(st, b + 11, j->content_type) != SQLITE_OK ||
		    sq_bind_str(st, b + 12, j->remote_addr) != SQLITE_OK ||
		    sq_bind_str(st, b + 13, j->headers) != SQLITE_OK ||
		    sqlite3_bind_blob64(st, b + 14, j->body_len != 0 ? j->body :
		    "", (sqlite3_uint64)j->body_len, SQLITE_STATIC) !=
		    SQLITE_OK) {
			(void)sq_fail_db(s, "bind");
			goto done;
		}
		if (j->serial_key != NULL && *j->serial_key == '\0')
			(void)snprintf(own, sizeof(own), "unkeyed %s", j->id);
		if (sqlite3_bind_text(st, b + 15, j->serial_key == NULL ? NULL :
		    *j->serial_key == '\0' ? own : j->serial_key, -1,
		    SQLITE_TRANSIENT) != SQLITE_OK) {
			(void)sq_fail_db(s, "bind");
			goto done;
		}
	}
	if (sq_step_done(s, st, "insert") == -1)
		goto done;
	for (i = 0; i < 1 << k; i++)
		jobs[i].outcome = STORE_ENQ_NEW;
	r = sqlite3_changes(s->db);
done:
	sq_done_with(st);
	return r;
}

/* Insert jobs[0..n) in chunks of 2^k rows, largest first: how many went
 * in, or -1. */
static ssize_t
insert_run(struct store *s, struct store_newjob *jobs, size_t n, int64_t now)
{
	size_t	 done = 0;
	ssize_t	 in = 0;
	int	 k, r;

	for (k = STORE_INSERT_LOG2; k >= 0; k--)
		while (n - done >= (size_t)1 << k) {
			if ((r = insert_rows(s, jobs + done, k, now)) == -1)
				return -1;
			in += r;
			done += (size_t)1 << k;
		}
	return in;
}

int
sq_enqueue_in(struct store *s, struct store_newjob *jobs, size_t n)
{
	ssize_t in;

	if (make_ids(s, jobs, n, store_now()) == -1)
		return -1;
	if ((in = insert_run(s, jobs, n, store_now())) == -1)
		return -1;
	if ((size_t)in != n)
		return sq_fail_arg(s, "enqueue: idempotency key taken");
	return 0;
}

int
store_enqueue(struct store *s, struct store_newjob *jobs, size_t n)
{
	struct store_newjob	*j;
	ssize_t			 in;
	int64_t			 now;
	size_t			 i, run, missing = 0;
	int			 rc;

	if (s->pg != NULL)
		return pgs_enqueue(s, jobs, n);
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		jobs[i].id[0] = '\0';
		jobs[i].outcome = STORE_ENQ_NEW;
	}
	for (i = 0; i < n; i++) {
		j = &jobs[i];
		if (j->queue == NULL)
			return sq_fail_arg(s, "enqueue: job without a queue");
		if (j->max_attempts < 1)
			return sq_fail_arg(s, "enqueue: max_attempts below 1");
		if (j->body == NULL && j->body_len != 0)
			return sq_fail_arg(s, "enqueue: body is NULL");
	}
	now = store_now();
	if (make_ids(s, jobs, n, now) == -1)
		goto fail_ids;
	if (sq_begin(s) == -1)
		goto fail_ids;
	/*
	 * A keyed job is decided against the jobs before it in the batch
	 * first (the same key twice in one batch is a duplicate).  Then
	 * every job that may be new goes in with the multi-row INSERTs,
	 * keyed or not: a webhook queue keys every job, and one INSERT per
	 * keyed job cost it over half its rate (bench/storebench -k).  A
	 * row whose key the database holds already stays out; only then is
	 * the earlier job looked up.  A lookup per keyed job before the
	 * INSERTs cost the committer a statement per job for the rare
	 * replay.
	 */
	for (i = 0; i < n; i++)
		if (jobs[i].idempotency_key != NULL)
			(void)store_batch_match(jobs, i);
	/* The runs of new jobs, split where a duplicate or conflict is. */
	for (i = 0, run = 0; i <= n; i++) {
		if (i < n && jobs[i].outcome == STORE_ENQ_NEW)
			continue;
		if ((in = insert_run(s, jobs + run, i - run, now)) == -1)
			goto fail;
		missing += i - run - (size_t)in;
		run = i + 1;
	}
	/*
	 * Rows were left out: every keyed job is decided again in turn, as
	 * the jobs before it now stand (a job that matched one left out
	 * matches that one's earlier job), then against the database, where
	 * a job that went in finds itself.
	 */
	for (i = 0; i < n && missing > 0; i++) {
		j = &jobs[i];
		if (j->idempotency_key == NULL)
			continue;
		if (j->outcome == STORE_ENQ_NEW) {
			if (enqueue_lookup(s, j) == -1)
				goto fail;
			continue;
		}
		j->outcome = STORE_ENQ_NEW;
		if (store_batch_match(jobs, i))
			continue;
		/* It matched one left out: that one's earlier job. */
		if ((rc = enqueue_lookup(s, j)) == 0)
			(void)sq_fail_arg(s, "enqueue: a taken key not found");
		if (rc != 1)
			goto fail;
	}
	if (sq_commit(s) == -1)
		goto fail;
	return 0;
fail:
	sq_rollback(s);
fail_ids:
	for (i = 0; i < n; i++)
		jobs[i].id[0] = '\0';
	return -1;
}
