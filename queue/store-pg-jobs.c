/*
 * store-pg-jobs.c: the store's functions on PostgreSQL: enqueue, the life
 * of a job (finish, release, extend, requeue) and the operators' reads and
 * changes.  The statements mirror store-sql.c's; the claim
 * (store-pg-flow.c) updates the first due row it can lock (FOR UPDATE
 * SKIP LOCKED), so helpers on several hosts claim at once without waiting
 * for each other, and attempts are fenced as with SQLite.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "store-sqlite.h"
#include "store-pg.h"

#define MAX_ERROR	4096	/* bytes of last_error kept, as SQLite's */
#define INSERT_COLS	15	/* parameters per row of an enqueue */
#define INSERT_ROWS	256	/* rows per INSERT statement */

/* --- rows -------------------------------------------------------------- */

static int
col_state(const PGresult *res, int r, int c, enum store_state *state)
{
	const char	*t = pgs_str(res, r, c);

	return t != NULL ? store_state_parse(t, state) : -1;
}

/*
 * Row r of res (JOB_COLUMNS) as one allocation, the struct then its
 * strings and blobs, as sq_job_from_row() makes it.  0 or -1 (error set).
 */
int
pgs_job_from_row(struct store *s, const PGresult *res, int r,
    struct store_job **out)
{
	static const int	 strs[] = { C_QUEUE, C_IDEMPOTENCY_KEY,
	    C_METHOD, C_REQUEST_URI, C_QUERY_STRING, C_CONTENT_TYPE,
	    C_REMOTE_ADDR, C_HEADERS, C_LAST_ERROR, C_RESULT_TYPE };
	unsigned char		*blob[2] = { NULL, NULL };
	size_t			 blen[2] = { 0, 0 }, need, k;
	const char		*p;
	char			*at, *dst[C__COUNT];
	struct store_job	*j;
	enum store_state	 state;
	int			 c, b;

	*out = NULL;
	if (col_state(res, r, C_STATE, &state) == -1)
		return pgs_set_error(s, STORE_EOTHER, "job: bad state");
	need = sizeof(*j);
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		if (!PQgetisnull(res, r, strs[k]))
			need += (size_t)PQgetlength(res, r, strs[k]) + 1;
	for (b = 0; b < 2; b++) {
		c = b == 0 ? C_BODY : C_RESULT;
		if (PQgetisnull(res, r, c))
			continue;
		blob[b] = PQunescapeBytea((const unsigned char *)
		    PQgetvalue(res, r, c), &blen[b]);
		if (blob[b] == NULL)
			goto nomem;
		need += blen[b] + 1;
	}
	if (blob[0] == NULL)
		need += 1;
	if ((j = calloc(1, need)) == NULL)
		goto nomem;
	at = (char *)(j + 1);
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
		c = strs[k];
		dst[c] = NULL;
		if ((p = pgs_str(res, r, c)) == NULL)
			continue;
		dst[c] = at;
		memcpy(at, p, (size_t)PQgetlength(res, r, c));
		at += PQgetlength(res, r, c) + 1;	/* calloc wrote the NUL */
	}
	j->body = at;
	if (blob[0] != NULL && blen[0] > 0)
		memcpy(at, blob[0], blen[0]);
	j->body_len = blen[0];
	at += blen[0] + 1;
	if (blob[1] != NULL) {
		j->result = at;
		if (blen[1] > 0)
			memcpy(at, blob[1], blen[1]);
		j->result_len = blen[1];
	}
	PQfreemem(blob[0]);
	PQfreemem(blob[1]);
	(void)snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(res, r, C_ID));
	j->queue = dst[C_QUEUE];
	j->state = state;
	j->priority = (int)pgs_i64(res, r, C_PRIORITY);
	j->attempts = (int)pgs_i64(res, r, C_ATTEMPTS);
	j->max_attempts = (int)pgs_i64(res, r, C_MAX_ATTEMPTS);
	j->created_at = pgs_i64(res, r, C_CREATED_AT);
	j->run_at = pgs_i64(res, r, C_RUN_AT);
	j->started_at = pgs_i64(res, r, C_STARTED_AT);
	j->finished_at = pgs_i64(res, r, C_FINISHED_AT);
	j->lease_until = pgs_i64(res, r, C_LEASE_UNTIL);
	j->idempotency_key = dst[C_IDEMPOTENCY_KEY];
	j->method = dst[C_METHOD];
	j->request_uri = dst[C_REQUEST_URI];
	j->query_string = dst[C_QUERY_STRING];
	j->content_type = dst[C_CONTENT_TYPE];
	j->remote_addr = dst[C_REMOTE_ADDR];
	j->headers = dst[C_HEADERS];
	j->last_error = dst[C_LAST_ERROR];
	j->result_type = dst[C_RESULT_TYPE];
	*out = j;
	return 0;
nomem:
	PQfreemem(blob[0]);
	PQfreemem(blob[1]);
	return pgs_set_error(s, STORE_ENOMEM, "job: out of memory");
}

/* Error text cut to MAX_ERROR bytes on a UTF-8 boundary, into buf. */
static const char *
cut_error(const char *e, char *buf)
{
	size_t	n;

	if (e == NULL)
		return NULL;
	if ((n = strlen(e)) <= MAX_ERROR)
		return e;
	n = MAX_ERROR;
	while (n > 0 && ((unsigned char)e[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, e, n);
	buf[n] = '\0';
	return buf;
}

/* --- enqueue ----------------------------------------------------------- */

/* The earlier job holding j's queue and key, in this transaction (after
 * the INSERT's ON CONFLICT waited for its writer).  0 or -1. */
static int
idem_lookup(struct store *s, struct store_newjob *j)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	unsigned char		*body;
	size_t			 len;

	pgs_p_str(&p, j->queue);
	pgs_p_str(&p, j->idempotency_key);
	if ((res = pgs_exec(s, "SELECT id, body FROM jobs"
	    " WHERE queue = $1 AND idempotency_key = $2", &p,
	    PGRES_TUPLES_OK, "idempotency lookup")) == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return pgs_set_error(s, STORE_EOTHER, "idempotency lookup: "
		    "the conflicting job is gone");
	}
	(void)snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(res, 0, 0));
	body = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1),
	    &len);
	PQclear(res);
	if (body == NULL)
		return pgs_set_error(s, STORE_ENOMEM, "idempotency lookup");
	j->outcome = len == j->body_len && (len == 0 ||
	    memcmp(body, j->body, len) == 0) ? STORE_ENQ_DUPLICATE :
	    STORE_ENQ_CONFLICT;
	PQfreemem(body);
	return 0;
}

/* Row i of an INSERT's VALUES, its parameters from $(b + 1), at q; the
 * end of what it wrote. */
static char *
row_values(char *q, int i, int b)
{
	return q + sprintf(q, "%s($%d,$%d,'queued',$%d::integer,0,"
	    "$%d::integer,$%d::bigint,$%d::bigint,$%d,$%d,$%d,$%d,$%d,$%d,$%d,"
	    "$%d::bytea,$%d)", i > 0 ? "," : "", b + 1, b + 2, b + 3, b + 4,
	    b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13,
	    b + 14, b + 15);
}

/*
 * Insert the new jobs of jobs[0..n) (outcome STORE_ENQ_NEW) with one
 * multi-row INSERT; a keyed row whose key another transaction holds is
 * left out (ON CONFLICT DO NOTHING), and marked for idem_lookup (outcome
 * -1).  notify (jobs without keys only): the statement notifies
 * PGS_CHANNEL too.  0 or -1.
 *
 * The statement has a power of two of rows, the ones past the jobs all
 * NULL and filtered out before the INSERT: its text is one of nine per
 * form, so it stays prepared on the connection (store-pg.c) whatever the
 * batch's size, and the server keeps nine plans, not one per size (a
 * 256-row plan holds about 1.4 MB).  Casts give the VALUES columns their
 * types, which NULLs alone would not.
 */
static int
insert_rows(struct store *s, struct store_newjob *jobs, size_t n,
    int64_t now, int notify)
{
	static const char head[] =
	    "INSERT INTO jobs (id, queue, state, priority, attempts,"
	    "  max_attempts, created_at, run_at, idempotency_key, method,"
	    "  request_uri, query_string, content_type, remote_addr, headers,"
	    "  body, serial_key) SELECT * FROM (VALUES ";
	static const char pad_tail[] = ") v WHERE column1 IS NOT NULL";
	static const char tail[] =
	    " ON CONFLICT (queue, idempotency_key)"
	    "  WHERE idempotency_key IS NOT NULL DO NOTHING"
	    " RETURNING id";
	static const char notify_head[] = "WITH ins AS (";
	static const char notify_tail[] =
	    " RETURNING 1) SELECT pg_notify('" PGS_CHANNEL "', '')"
	    " FROM (SELECT 1 FROM ins LIMIT 1) t";
	const char	**v = NULL;
	int		*len = NULL, *fmt = NULL, np = 0, rows = 0, i, keyed = 0;
	int		 cls;
	char		(*num)[24] = NULL, *sql = NULL, *q;
	char		(*own)[STORE_ID_LEN + 9] = NULL;
	PGresult	*res = NULL;
	size_t		 k, m;
	int		 r = -1;

	for (k = 0; k < n; k++)
		rows += jobs[k].outcome == STORE_ENQ_NEW;
	if (rows == 0)
		return 0;
	for (cls = 1; cls < rows; cls *= 2)
		;
	/* calloc: the padding rows' parameters are NULL. */
	v = calloc((size_t)cls * INSERT_COLS, sizeof(*v));
	len = calloc((size_t)cls * INSERT_COLS, sizeof(*len));
	fmt = calloc((size_t)cls * INSERT_COLS, sizeof(*fmt));
	num = calloc((size_t)rows * 4, sizeof(*num));
	own = calloc((size_t)rows, sizeof(*own));
	sql = malloc(sizeof(notify_head) + sizeof(head) + sizeof(pad_tail) +
	    sizeof(tail) + sizeof(notify_tail) + (size_t)cls * 200);
	if (v == NULL || len == NULL || fmt == NULL || num == NULL ||
	    own == NULL || sql == NULL) {
		(void)pgs_set_error(s, STORE_ENOMEM, "enqueue: out of memory");
		goto done;
	}
	q = sql + sprintf(sql, "%s", head);
	for (k = 0, i = 0; k < n; k++) {
		struct store_newjob *j = &jobs[k];

		if (j->outcome != STORE_ENQ_NEW)
			continue;
		keyed |= j->idempotency_key != NULL;
		q = row_values(q, i, np);
		(void)snprintf(num[4 * i], 24, "%d", j->priority);
		(void)snprintf(num[4 * i + 1], 24, "%d", j->max_attempts);
		(void)snprintf(num[4 * i + 2], 24, "%lld", (long long)now);
		(void)snprintf(num[4 * i + 3], 24, "%lld",
		    (long long)(j->run_at != 0 ? j->run_at : now));
		v[np++] = j->id;
		v[np++] = j->queue;
		v[np++] = num[4 * i];
		v[np++] = num[4 * i + 1];
		v[np++] = num[4 * i + 2];
		v[np++] = num[4 * i + 3];
		v[np++] = j->idempotency_key;
		v[np++] = j->method;
		v[np++] = j->request_uri;
		v[np++] = j->query_string;
		v[np++] = j->content_type;
		v[np++] = j->remote_addr;
		v[np++] = j->headers;
		v[np] = j->body_len != 0 ? j->body : "";
		len[np] = (int)j->body_len;
		fmt[np++] = 1;
		/* serialize_by's key; "": the job is its own (store.h). */
		if (j->serial_key != NULL && *j->serial_key == '\0')
			(void)snprintf(own[i], sizeof(own[i]), "unkeyed %s",
			    j->id);
		v[np++] = j->serial_key == NULL ? NULL :
		    *j->serial_key == '\0' ? own[i] : j->serial_key;
		i++;
	}
	for (; i < cls; i++, np += INSERT_COLS)
		q = row_values(q, i, np);
	(void)sprintf(q, "%s%s", pad_tail, keyed ? tail : notify ?
	    notify_tail : "");
	if (notify && !keyed) {
		/* The INSERT inside a statement that also notifies: one
		 * round trip, one transaction, the notification sent at its
		 * commit. */
		memmove(sql + sizeof(notify_head) - 1, sql, strlen(sql) + 1);
		memcpy(sql, notify_head, sizeof(notify_head) - 1);
	}
	if ((res = pgs_execv(s, sql, np, v, len, fmt, keyed || notify ?
	    PGRES_TUPLES_OK : PGRES_COMMAND_OK, "insert")) == NULL)
		goto done;
	if (keyed && PQntuples(res) != rows) {
		/* Who went in: the RETURNING ids, in no promised order. */
		for (k = 0; k < n; k++) {
			if (jobs[k].outcome != STORE_ENQ_NEW ||
			    jobs[k].idempotency_key == NULL)
				continue;
			for (m = 0; m < (size_t)PQntuples(res); m++)
				if (strcmp(PQgetvalue(res, (int)m, 0),
				    jobs[k].id) == 0)
					break;
			if (m == (size_t)PQntuples(res))
				jobs[k].outcome = -1;
		}
	}
	r = 0;
done:
	PQclear(res);
	free(v);
	free(len);
	free(fmt);
	free(num);
	free(own);
	free(sql);
	return r;
}

/* jobs[i] repeats the key of an earlier job of the batch that was not
 * stored (another transaction holds the key): 1, to be looked up too. */
static int
repeats_lost(const struct store_newjob *jobs, size_t i)
{
	size_t	k;

	if (jobs[i].idempotency_key == NULL ||
	    jobs[i].outcome == STORE_ENQ_NEW)
		return 0;
	for (k = 0; k < i; k++)
		if (jobs[k].outcome == -1 &&
		    strcmp(jobs[k].idempotency_key, jobs[i].idempotency_key) ==
		    0 && strcmp(jobs[k].queue, jobs[i].queue) == 0)
			return 1;
	return 0;
}

int
pgs_enqueue(struct store *s, struct store_newjob *jobs, size_t n)
{
	PGresult *res;
	int64_t	now;
	size_t	i, off, m;
	int	keyed;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		jobs[i].id[0] = '\0';
		jobs[i].outcome = STORE_ENQ_NEW;
		if (jobs[i].queue == NULL)
			return pgs_set_error(s, STORE_EINVAL,
			    "enqueue: job without a queue");
		if (jobs[i].max_attempts < 1)
			return pgs_set_error(s, STORE_EINVAL,
			    "enqueue: max_attempts below 1");
		if (jobs[i].body == NULL && jobs[i].body_len != 0)
			return pgs_set_error(s, STORE_EINVAL,
			    "enqueue: body is NULL");
	}
	now = store_now();
	if (sq_make_ids(s, jobs, n, now) == -1)
		goto fail_ids;
	/* The same key twice in one batch: a duplicate of its first job. */
	for (i = 0; i < n; i++)
		if (jobs[i].idempotency_key != NULL)
			(void)store_batch_match(jobs, i);
	/*
	 * Jobs without keys that one INSERT holds need no transaction
	 * around it: the statement is one, committed or not as a whole,
	 * and the batch costs one round trip instead of three.
	 */
	for (i = 0, keyed = 0; i < n; i++)
		keyed |= jobs[i].idempotency_key != NULL;
	if (!keyed && n <= INSERT_ROWS && s->pg->batch == BATCH_NONE) {
		if (insert_rows(s, jobs, n, now, 1) == -1)
			goto fail_ids;
		return 0;
	}
	if (pgs_begin(s) == -1)
		goto fail_ids;
	for (off = 0; off < n; off += m) {
		m = n - off < INSERT_ROWS ? n - off : INSERT_ROWS;
		if (insert_rows(s, jobs + off, m, now, 0) == -1)
			goto fail;
	}
	/* A later job repeating the key of one that lost to another
	 * transaction stands against the winner, as that one does. */
	for (i = 0; i < n; i++)
		if (repeats_lost(jobs, i))
			jobs[i].outcome = -1;
	for (i = 0; i < n; i++)
		if (jobs[i].outcome == -1 && idem_lookup(s, &jobs[i]) == -1)
			goto fail;
	/* One notification per batch, sent by the commit. */
	res = pgs_exec(s, "SELECT pg_notify('" PGS_CHANNEL "', '')", NULL,
	    PGRES_TUPLES_OK, "notify");
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (pgs_commit(s) == -1)
		goto fail;
	return 0;
fail:
	pgs_rollback(s);
fail_ids:
	for (i = 0; i < n; i++)
		jobs[i].id[0] = '\0';
	return -1;
}

/* --- a job's life ------------------------------------------------------ */

/* pgs_claim: store-pg-flow.c (serial keys). */

int
pgs_next_due(struct store *s, const char *queue, int64_t *when)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r = 0;

	pgs_p_str(&p, queue);
	if ((res = pgs_exec(s, "SELECT min(run_at) FROM jobs"
	    " WHERE queue = $1 AND state IN ('queued', 'retry')"
	    "  AND NOT EXISTS (SELECT 1 FROM queues"
	    "   WHERE name = $1 AND paused <> 0)", &p, PGRES_TUPLES_OK,
	    "next_due")) == NULL)
		return -1;
	if (!PQgetisnull(res, 0, 0)) {
		*when = pgs_i64(res, 0, 0);
		r = 1;
	}
	PQclear(res);
	return r;
}

int
pgs_finish_done_typed(struct store *s, const char *id, int attempt,
    const void *result, size_t result_len, const char *result_type,
    int64_t now)
{
	struct pgs_params	 p = { 0 };

	pgs_p_str(&p, id);
	pgs_p_i64(&p, attempt);
	if (result != NULL)
		pgs_p_bin(&p, result, result_len);
	else
		pgs_p_str(&p, NULL);
	pgs_p_i64(&p, now);
	pgs_p_str(&p, result_type);
	return pgs_change(s, "UPDATE jobs SET state = 'done', result = $3,"
	    "  finished_at = $4, lease_until = NULL, result_type = $5"
	    " WHERE id = $1 AND state = 'running' AND attempts = $2", &p,
	    "finish_done");
}

int
pgs_finish_failed_at(struct store *s, const char *id, int attempt,
    const char *error, int permanent, int64_t run_at, int64_t backoff_min_ms,
    int64_t backoff_max_ms, int64_t now, int crashed, int quarantine,
    int *dead)
{
	/* As SQLite's ST_FAILED: a crash counts toward quarantine_after ($8),
	 * and the one that reaches it makes the job dead, whatever its
	 * attempts. */
#define QUARANTINED "($7 <> 0 AND $8 > 0 AND crashes + 1 >= $8)"
#define FAILED_DEAD "($3 <> 0 OR attempts >= max_attempts OR " QUARANTINED ")"
	static const char sql[] =
	    "UPDATE jobs SET"
	    "  state = CASE WHEN " FAILED_DEAD " THEN 'dead' ELSE 'retry' END,"
	    "  run_at = CASE WHEN " FAILED_DEAD " THEN run_at ELSE $5 END,"
	    "  finished_at = CASE WHEN " FAILED_DEAD " THEN $4::bigint END,"
	    "  lease_until = NULL,"
	    "  last_error = CASE WHEN " QUARANTINED " THEN"
	    "    'crashed ' || (crashes + 1) || ' times' ELSE $6 END,"
	    "  crashes = crashes + $7"
	    " WHERE id = $1 AND state = 'running' AND attempts = $2"
	    " RETURNING state";
#undef FAILED_DEAD
#undef QUARANTINED
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	char			 buf[MAX_ERROR + 1];
	int			 r, isdead = 0, txn = s->dlq != NULL;

	if (dead != NULL)
		*dead = 0;
	/* With dead letters on, the death and its letter: one transaction. */
	if (txn && pgs_begin(s) == -1)
		return -1;
	pgs_p_str(&p, id);
	pgs_p_i64(&p, attempt);
	pgs_p_i64(&p, permanent != 0);
	pgs_p_i64(&p, now);
	pgs_p_i64(&p, run_at > 0 ? run_at : now + store_backoff(attempt,
	    backoff_min_ms, backoff_max_ms));
	pgs_p_str(&p, cut_error(error, buf));
	pgs_p_i64(&p, crashed != 0);
	pgs_p_i64(&p, quarantine);
	if ((res = pgs_exec(s, sql, &p, PGRES_TUPLES_OK,
	    "finish_failed")) == NULL)
		goto fail;
	r = PQntuples(res) > 0;
	if (r)
		isdead = strcmp(PQgetvalue(res, 0, 0), "dead") == 0;
	PQclear(res);
	if (isdead && sq_dead_letter(s, id) == -1)
		goto fail;
	if (txn && pgs_commit(s) == -1)
		goto fail;
	if (dead != NULL)
		*dead = isdead;
	return r;
fail:
	if (txn)
		pgs_rollback(s);
	return -1;
}

int
pgs_release(struct store *s, const char *id, int attempt, const char *reason,
    int64_t now)
{
	struct pgs_params	 p = { 0 };
	char			 buf[MAX_ERROR + 1];

	pgs_p_str(&p, id);
	pgs_p_i64(&p, attempt);
	pgs_p_i64(&p, now);
	pgs_p_str(&p, cut_error(reason, buf));
	return pgs_change(s, "UPDATE jobs SET state = 'queued', run_at = $3,"
	    "  lease_until = NULL, last_error = $4"
	    " WHERE id = $1 AND state = 'running' AND attempts = $2", &p,
	    "release");
}

int
pgs_extend(struct store *s, const char *id, int attempt, int64_t lease_until)
{
	struct pgs_params	 p = { 0 };

	pgs_p_str(&p, id);
	pgs_p_i64(&p, attempt);
	pgs_p_i64(&p, lease_until);
	return pgs_change(s, "UPDATE jobs SET lease_until = $3"
	    " WHERE id = $1 AND state = 'running' AND attempts = $2", &p,
	    "extend");
}

/*
 * Requeue the running jobs whose lease ended before now (all: every
 * running job), dead when their attempts are used up; one statement, whose
 * RETURNING gives the counts per queue (and the dead, whose letters join
 * its transaction).  How many, or -1.
 */
int
pgs_requeue(struct store *s, int64_t now, int all, store_requeue_fn fn,
    void *arg)
{
	static const char sql[] =
	    "UPDATE jobs SET"
	    "  state = CASE WHEN attempts >= max_attempts THEN 'dead'"
	    "    ELSE 'queued' END,"
	    "  run_at = CASE WHEN attempts >= max_attempts THEN run_at"
	    "    ELSE $1 END,"
	    "  finished_at = CASE WHEN attempts >= max_attempts THEN $1 END,"
	    "  lease_until = NULL, last_error = $2"
	    " WHERE state = 'running' AND ($3 <> 0 OR lease_until < $1)"
	    " RETURNING queue, state, id";
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 n, i, k, requeued, dead, txn = s->dlq != NULL;
	char			*done;

	pgs_p_i64(&p, now);
	pgs_p_str(&p, all ? "requeued: its helper went away" :
	    "lease expired");
	pgs_p_i64(&p, all != 0);
	/* With dead letters on, the deaths and their letters: one
	 * transaction. */
	if (txn && pgs_begin(s) == -1)
		return -1;
	if ((res = pgs_exec(s, sql, &p, PGRES_TUPLES_OK, "requeue")) == NULL)
		goto fail;
	n = PQntuples(res);
	for (i = 0; txn && i < n; i++)
		if (strcmp(PQgetvalue(res, i, 1), "dead") == 0 &&
		    sq_dead_letter(s, PQgetvalue(res, i, 2)) == -1) {
			PQclear(res);
			goto fail;
		}
	if (txn && pgs_commit(s) == -1) {
		PQclear(res);
		goto fail;
	}
	if (fn != NULL && n > 0 && (done = calloc((size_t)n, 1)) != NULL) {
		for (i = 0; i < n; i++) {
			if (done[i])
				continue;
			requeued = dead = 0;
			for (k = i; k < n; k++) {
				if (done[k] || strcmp(PQgetvalue(res, k, 0),
				    PQgetvalue(res, i, 0)) != 0)
					continue;
				done[k] = 1;
				if (strcmp(PQgetvalue(res, k, 1), "dead") == 0)
					dead++;
				else
					requeued++;
			}
			fn(arg, PQgetvalue(res, i, 0), requeued, dead);
		}
		free(done);
	}
	PQclear(res);
	return n;
fail:
	if (txn)
		pgs_rollback(s);
	return -1;
}

/* --- operators' changes ------------------------------------------------ */

/* cancel or retry of one job by id: 1 changed, 2 refused, 0 unknown. */
static int
change_by_id(struct store *s, const char *sql, const char *id, int64_t now,
    const char *what)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r;

	pgs_p_str(&p, id);
	pgs_p_i64(&p, now);
	if ((r = pgs_change(s, sql, &p, what)) != 0)
		return r > 0 ? 1 : -1;
	p.n = 1;
	if ((res = pgs_exec(s, "SELECT 1 FROM jobs WHERE id = $1", &p,
	    PGRES_TUPLES_OK, what)) == NULL)
		return -1;
	r = PQntuples(res) > 0 ? 2 : 0;
	PQclear(res);
	return r;
}

int
pgs_cancel(struct store *s, const char *id, int64_t now)
{
	return change_by_id(s, "UPDATE jobs SET state = 'cancelled',"
	    "  finished_at = $2, lease_until = NULL"
	    " WHERE id = $1 AND state IN ('queued', 'retry')", id, now,
	    "cancel");
}

int
pgs_retry(struct store *s, const char *id, int64_t now)
{
	return change_by_id(s, "UPDATE jobs SET state = 'queued',"
	    "  run_at = $2, finished_at = NULL,"
	    "  max_attempts = greatest(max_attempts, attempts + 1)"
	    " WHERE id = $1 AND state IN ('dead', 'cancelled', 'retry')", id,
	    now, "retry");
}

int
pgs_retry_dead(struct store *s, const char *queue, int64_t now)
{
	struct pgs_params	 p = { 0 };

	pgs_p_i64(&p, now);
	pgs_p_str(&p, queue);
	return pgs_change(s, "UPDATE jobs SET state = 'queued', run_at = $1,"
	    "  finished_at = NULL,"
	    "  max_attempts = greatest(max_attempts, attempts + 1)"
	    " WHERE state = 'dead' AND ($2::text IS NULL OR queue = $2)", &p,
	    "retry dead");
}

/*
 * Delete finished jobs in batches of PRUNE_BATCH rows, each its own
 * transaction: a prune of a million rows neither holds its locks for the
 * whole of it nor leaves one huge transaction for vacuum.
 */
#define PRUNE_BATCH	5000
int
pgs_purge(struct store *s, const char *queue, enum store_state state,
    int64_t cutoff)
{
	struct pgs_params	 p = { 0 };
	int			 n, total = 0;

	if (state != STORE_JOB_ANY && state != STORE_JOB_DONE &&
	    state != STORE_JOB_DEAD && state != STORE_JOB_CANCELLED)
		return pgs_set_error(s, STORE_EINVAL,
		    "purge: only done, dead or cancelled jobs");
	pgs_p_i64(&p, cutoff);
	pgs_p_str(&p, queue);
	pgs_p_str(&p, state == STORE_JOB_ANY ? NULL : store_state_name(state));
	pgs_p_i64(&p, PRUNE_BATCH);
	do {
		n = pgs_change(s, "DELETE FROM jobs WHERE seq IN"
		    " (SELECT seq FROM jobs WHERE finished_at < $1"
		    "  AND ($2::text IS NULL OR queue = $2)"
		    "  AND ($3::text IS NULL OR state = $3) LIMIT $4)", &p,
		    "purge");
		if (n == -1)
			return total > 0 && s->pg->batch == BATCH_NONE ?
			    total : -1;
		total += n;
	} while (n == PRUNE_BATCH && s->pg->batch == BATCH_NONE);
	return total;
}

int
pgs_pause(struct store *s, const char *queue, int paused)
{
	struct pgs_params	 p = { 0 };

	pgs_p_str(&p, queue);
	pgs_p_i64(&p, paused != 0);
	return pgs_change(s, "INSERT INTO queues (name, paused)"
	    " VALUES ($1, $2) ON CONFLICT (name)"
	    " DO UPDATE SET paused = excluded.paused", &p, "pause") < 0 ?
	    -1 : 0;
}

int
pgs_paused(struct store *s, const char *queue)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r;

	pgs_p_str(&p, queue);
	if ((res = pgs_exec(s, "SELECT paused FROM queues WHERE name = $1",
	    &p, PGRES_TUPLES_OK, "paused")) == NULL)
		return -1;
	r = PQntuples(res) > 0 && pgs_i64(res, 0, 0) != 0;
	PQclear(res);
	return r;
}

/* --- reads ------------------------------------------------------------- */

int
pgs_get(struct store *s, const char *id, struct store_job **out)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r = 0;

	*out = NULL;
	pgs_p_str(&p, id);
	if ((res = pgs_exec(s, "SELECT " JOB_COLUMNS " FROM jobs"
	    " WHERE id = $1", &p, PGRES_TUPLES_OK, "get")) == NULL)
		return -1;
	if (PQntuples(res) == 1)
		r = pgs_job_from_row(s, res, 0, out) == 0 ? 1 : -1;
	PQclear(res);
	return r;
}

/* One statement, so one snapshot: ids go in as a text[] literal (ids are
 * of base64url's alphabet; anything else matches no job). */
int
pgs_states(struct store *s, const char *const *ids, size_t n,
    enum store_state *out)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	char			*arr, *q;
	size_t			 i, k;
	int			 r;

	for (i = 0; i < n; i++)
		out[i] = STORE_JOB_ANY;
	if (n == 0)
		return 0;
	if ((arr = malloc(n * (STORE_ID_LEN + 3) + 3)) == NULL)
		return pgs_set_error(s, STORE_ENOMEM, "states: out of memory");
	q = arr;
	*q++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*q++ = ',';
		*q++ = '"';
		for (k = 0; ids[i][k] != '\0' && k < STORE_ID_LEN; k++)
			*q++ = strchr("\"\\", ids[i][k]) == NULL ? ids[i][k] :
			    '?';
		*q++ = '"';
	}
	*q++ = '}';
	*q = '\0';
	pgs_p_str(&p, arr);
	res = pgs_exec(s, "SELECT id, state FROM jobs WHERE id = ANY($1)",
	    &p, PGRES_TUPLES_OK, "states");
	free(arr);
	if (res == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++)
		for (i = 0; i < n; i++)
			if (strcmp(ids[i], PQgetvalue(res, r, 0)) == 0 &&
			    col_state(res, r, 1, &out[i]) == -1) {
				PQclear(res);
				return pgs_set_error(s, STORE_EOTHER,
				    "states: bad state");
			}
	PQclear(res);
	return 0;
}

int64_t
pgs_count_waiting(struct store *s, const char *queue)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int64_t			 n;

	pgs_p_str(&p, queue);
	if ((res = pgs_exec(s, "SELECT count(*) FROM jobs"
	    " WHERE queue = $1 AND state IN ('queued', 'retry')", &p,
	    PGRES_TUPLES_OK, "count_waiting")) == NULL)
		return -1;
	n = pgs_i64(res, 0, 0);
	PQclear(res);
	return n;
}

int
pgs_drain(struct store *s, const char *queue, int64_t since, int64_t limit,
    int64_t *n, int64_t *oldest)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;

	*n = 0;
	*oldest = 0;
	pgs_p_str(&p, queue);
	pgs_p_i64(&p, since);
	pgs_p_i64(&p, limit);
	if ((res = pgs_exec(s, "SELECT count(*), min(finished_at) FROM"
	    " (SELECT finished_at FROM jobs"
	    "  WHERE finished_at >= $2 AND queue = $1"
	    "  ORDER BY finished_at DESC LIMIT $3) t", &p, PGRES_TUPLES_OK,
	    "drain")) == NULL)
		return -1;
	*n = pgs_i64(res, 0, 0);
	*oldest = pgs_i64(res, 0, 1);
	PQclear(res);
	return 0;
}

int
pgs_stats(struct store *s, struct store_stat **out, size_t *n)
{
	struct store_stat	*v;
	PGresult		*res;
	int			 r, rows;

	*out = NULL;
	*n = 0;
	if ((res = pgs_exec(s, "SELECT queue, state, count(*),"
	    " min(created_at) FROM jobs GROUP BY queue, state"
	    " ORDER BY queue COLLATE \"C\", state COLLATE \"C\"", NULL,
	    PGRES_TUPLES_OK, "stats")) == NULL)
		return -1;
	rows = PQntuples(res);
	if ((v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v))) == NULL) {
		PQclear(res);
		return pgs_set_error(s, STORE_ENOMEM, "stats: out of memory");
	}
	for (r = 0; r < rows; r++) {
		(void)snprintf(v[r].queue, sizeof(v[r].queue), "%s",
		    PQgetvalue(res, r, 0));
		if (col_state(res, r, 1, &v[r].state) == -1) {
			PQclear(res);
			free(v);
			return pgs_set_error(s, STORE_EOTHER,
			    "stats: bad state");
		}
		v[r].count = pgs_i64(res, r, 2);
		v[r].oldest_created_at = pgs_i64(res, r, 3);
	}
	PQclear(res);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

int
pgs_list(struct store *s, const char *queue, enum store_state state,
    int64_t limit, store_list_fn fn, void *arg)
{
	struct pgs_params	 p = { 0 };
	struct store_summary	 j;
	PGresult		*res;
	int			 r;

	pgs_p_str(&p, queue);
	pgs_p_str(&p, state == STORE_JOB_ANY ? NULL : store_state_name(state));
	pgs_p_i64(&p, limit);
	if ((res = pgs_exec(s, "SELECT id, queue, state, attempts,"
	    "  max_attempts, created_at, length(body),"
	    "  coalesce(last_error, '') FROM jobs"
	    " WHERE ($1::text IS NULL OR queue = $1)"
	    "  AND ($2::text IS NULL OR state = $2)"
	    " ORDER BY seq DESC LIMIT $3", &p, PGRES_TUPLES_OK,
	    "list")) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		j.id = PQgetvalue(res, r, 0);
		j.queue = PQgetvalue(res, r, 1);
		if (col_state(res, r, 2, &j.state) == -1)
			continue;
		j.attempts = (int)pgs_i64(res, r, 3);
		j.max_attempts = (int)pgs_i64(res, r, 4);
		j.created_at = pgs_i64(res, r, 5);
		j.body_len = pgs_i64(res, r, 6);
		j.last_error = PQgetvalue(res, r, 7);
		fn(arg, &j);
	}
	PQclear(res);
	return 0;
}

/* --- what the metrics read --------------------------------------------- */

int
pgs_queue_head(struct store *s, const char *queue, int64_t now,
    struct store_head *h)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int64_t			 run_at, created_at;
	int			 r;

	h->jobs = 0;
	h->oldest_created_at = 0;
	h->oldest_due = 0;
	pgs_p_str(&p, queue);
	/* The first job of each priority level, of the 16 highest. */
	if ((res = pgs_exec(s, "SELECT run_at, created_at FROM"
	    " (SELECT DISTINCT ON (priority) priority, run_at, created_at"
	    "  FROM jobs WHERE queue = $1 AND state IN ('queued', 'retry')"
	    "  ORDER BY priority DESC, run_at, seq) t"
	    " ORDER BY priority DESC LIMIT 16", &p, PGRES_TUPLES_OK,
	    "queue head")) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		run_at = pgs_i64(res, r, 0);
		created_at = pgs_i64(res, r, 1);
		h->jobs++;
		if (h->oldest_created_at == 0 ||
		    created_at < h->oldest_created_at)
			h->oldest_created_at = created_at;
		if (run_at <= now && (h->oldest_due == 0 ||
		    run_at < h->oldest_due))
			h->oldest_due = run_at;
	}
	PQclear(res);
	return h->jobs > 0;
}

int
pgs_count_states(struct store *s, store_count_fn fn, void *arg)
{
	enum store_state	 state;
	PGresult		*res;
	int			 r;

	if ((res = pgs_exec(s, "SELECT queue, state, count(*) FROM jobs"
	    " GROUP BY queue, state", NULL, PGRES_TUPLES_OK,
	    "counts")) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++)
		if (col_state(res, r, 1, &state) == 0)
			fn(arg, PQgetvalue(res, r, 0), state,
			    pgs_i64(res, r, 2));
	PQclear(res);
	return 0;
}

/* --- requests refused at the door -------------------------------------- */

int
pgs_reject(struct store *s, const struct store_rejected *rows, size_t n)
{
	const struct store_rejected *r;
	struct pgs_params	 p;
	PGresult		*res;
	size_t			 i, head;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (rows[i].queue == NULL || rows[i].reason == NULL ||
		    rows[i].keep < 0)
			return pgs_set_error(s, STORE_EINVAL, "reject: a row "
			    "without queue, reason or keep");
	if (pgs_begin(s) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		r = &rows[i];
		head = r->head_len < STORE_REJECTED_HEAD ? r->head_len :
		    STORE_REJECTED_HEAD;
		memset(&p, 0, sizeof(p));
		pgs_p_i64(&p, r->at);
		pgs_p_str(&p, r->queue);
		pgs_p_str(&p, r->reason);
		pgs_p_str(&p, r->remote_addr);
		pgs_p_str(&p, r->method);
		pgs_p_str(&p, r->request_uri);
		pgs_p_str(&p, r->headers);
		pgs_p_i64(&p, r->body_length);
		pgs_p_bin(&p, r->body_head, head);
		if (pgs_change(s, "INSERT INTO rejected (at, queue, reason,"
		    "  remote_addr, method, request_uri, headers, body_length,"
		    "  body_head) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		    &p, "reject: insert") == -1)
			goto fail;
		/* Keep the newest keep rows of the queue. */
		memset(&p, 0, sizeof(p));
		pgs_p_str(&p, r->queue);
		pgs_p_i64(&p, r->keep);
		if ((res = pgs_exec(s, "DELETE FROM rejected WHERE queue = $1"
		    " AND seq <= (SELECT seq FROM rejected WHERE queue = $1"
		    "  ORDER BY seq DESC OFFSET $2 LIMIT 1)", &p,
		    PGRES_COMMAND_OK, "reject: prune")) == NULL)
			goto fail;
		PQclear(res);
	}
	if (pgs_commit(s) == -1)
		goto fail;
	return 0;
fail:
	pgs_rollback(s);
	return -1;
}

int
pgs_rejected_list(struct store *s, const char *queue, int64_t limit,
    store_rejected_fn fn, void *arg)
{
	struct pgs_params	 p = { 0 };
	struct store_rejected	 rj;
	PGresult		*res;
	unsigned char		*head;
	size_t			 len;
	int			 r;

	pgs_p_str(&p, queue);
	pgs_p_i64(&p, limit);
	if ((res = pgs_exec(s, "SELECT seq, at, queue, reason, remote_addr,"
	    "  method, request_uri, headers, body_length, body_head"
	    " FROM rejected WHERE ($1::text IS NULL OR queue = $1)"
	    " ORDER BY seq DESC LIMIT $2", &p, PGRES_TUPLES_OK,
	    "rejected: list")) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		memset(&rj, 0, sizeof(rj));
		rj.seq = pgs_i64(res, r, 0);
		rj.at = pgs_i64(res, r, 1);
		rj.queue = pgs_str(res, r, 2);
		rj.reason = pgs_str(res, r, 3);
		rj.remote_addr = pgs_str(res, r, 4);
		rj.method = pgs_str(res, r, 5);
		rj.request_uri = pgs_str(res, r, 6);
		rj.headers = pgs_str(res, r, 7);
		rj.body_length = pgs_i64(res, r, 8);
		head = PQunescapeBytea((const unsigned char *)
		    PQgetvalue(res, r, 9), &len);
		if (head == NULL) {
			PQclear(res);
			return pgs_set_error(s, STORE_ENOMEM,
			    "rejected: out of memory");
		}
		rj.body_head = head;
		rj.head_len = len;
		fn(arg, &rj);
		PQfreemem(head);
	}
	PQclear(res);
	return 0;
}
