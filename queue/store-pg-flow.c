/*
 * store-pg-flow.c: flow control on PostgreSQL: the claim, with
 * serialize_by's keys held to one job at a time across every helper on
 * every host, and each queue's circuit breaker as its helpers write it
 * (store-flow.c's, in the columns of queues that schema 6 adds).
 *
 * A job of a serial key may start when no other unfinished job of its
 * queue and key arrived before it and none of them runs.  SQLite's claim
 * checks the first half in its one writer's transaction, where nothing
 * changes under it.  Here every helper claims at once, in READ COMMITTED:
 * two claimers reading the same snapshot would each find their candidate
 * free, and a job committed by a slow intake transaction can take a seq
 * lower than one already running (identities are handed out at insert,
 * rows become visible at commit).  So:
 *
 *   1. the pick (one statement, SKIP LOCKED as before) takes the first
 *      due job in claim order that the condition above lets go in its
 *      snapshot; a job without a key is claimed in that statement;
 *   2. a keyed one is claimed in a transaction that first takes a
 *      transaction-scoped advisory lock on a hash of (queue, key), then
 *      checks the condition again in a statement whose snapshot begins
 *      after the lock was granted, and claims the row in that statement.
 *
 * Every claim of a keyed job happens under its key's lock, and whoever
 * gets the lock next sees the claim committed: two jobs of one key can
 * never both pass.  The "none of them runs" half keeps a late-committed
 * earlier job from starting beside a later one that runs (it starts
 * after it: its 202 was given after the running one's, so that is the
 * order the callers saw).  The lock is only tried (pg_try_advisory_xact_
 * lock): when another claimer holds it, that claimer is starting a job of
 * the key, so this candidate is held back anyway; the pick goes on
 * without the key.  Nothing waits on a lock, so helpers whose turns (one
 * transaction each, store_batch_begin) claim several keys cannot
 * deadlock; the lock lasts until the turn commits.  A lock on the key's
 * first unfinished row would not do: the job that runs can be a later
 * one, and locking rows that other helpers must skip or wait for ties the
 * key to a row, not to the claim.  Keys whose hashes collide only share a
 * lock: their claims take turns.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "store-sqlite.h"
#include "store-pg.h"

/* The first key of the two-key advisory locks of serial keys ("fcqs"),
 * a space apart from the one-key lock of a migration. */
#define SERIAL_LOCK_CLASS	"1717793139"

/* Keys set aside in one claim (their lock busy, or their job taken
 * meanwhile) before it gives up until the next turn. */
#define SERIAL_TRIES		8

/* No other unfinished job of the candidate's key (queue $1, the row's
 * key key_, seq seq_) arrived before it or runs. */
#define SERIAL_FREE(key_, seq_) \
	"NOT EXISTS (SELECT 1 FROM jobs e" \
	"  WHERE e.queue = $1 AND e.serial_key = " key_ \
	"   AND e.serial_key IS NOT NULL AND e.finished_at IS NULL" \
	"   AND e.seq <> " seq_ " AND (e.seq < " seq_ \
	"    OR e.state = 'running'))"

#define NOT_PAUSED \
	"NOT EXISTS (SELECT 1 FROM queues WHERE name = $1 AND paused <> 0)"

/*
 * The pick (step 1): the first due job of queue $1 at $2 in claim order
 * that its key lets go and whose key is not among $4 (a text[]), claimed
 * with lease until $3 when it has no key.  Its row: JOB_COLUMNS of the
 * claimed job (NULL for a keyed one), then the pick's seq and key; no row:
 * nothing to claim.  lane: the first attempts' (retry_concurrency), as
 * SQLite's ST_CLAIM_PICK_FRESH.
 */
#define PICK(lane) \
	"WITH c AS (SELECT seq AS c_seq, serial_key AS c_key FROM jobs" \
	"  WHERE queue = $1 AND state IN ('queued', 'retry')" \
	"   AND run_at <= $2" lane " AND " NOT_PAUSED \
	"   AND (serial_key IS NULL OR (serial_key <> ALL ($4::text[])" \
	"    AND " SERIAL_FREE("jobs.serial_key", "jobs.seq") "))" \
	"  ORDER BY priority DESC, run_at, seq LIMIT 1" \
	"  FOR UPDATE SKIP LOCKED)," \
	" u AS (UPDATE jobs SET state = 'running', attempts = attempts + 1," \
	"  started_at = $2, lease_until = $3" \
	"  FROM c WHERE jobs.seq = c.c_seq AND c.c_key IS NULL" \
	"  RETURNING " JOB_COLUMNS ")" \
	" SELECT " JOB_COLUMNS ", c_seq, c_key FROM c LEFT JOIN u ON true"

/*
 * The claim of a keyed pick (step 2), under its key's lock: job $5 of
 * queue $1 and key $4, if it is still due and free, claimed at $2 with
 * lease until $3.  Its row is skipped, not waited for, when another
 * transaction holds it.
 */
#define SERIAL_CLAIM(lane) \
	"UPDATE jobs SET state = 'running', attempts = attempts + 1," \
	"  started_at = $2, lease_until = $3" \
	" WHERE seq = (SELECT seq FROM jobs" \
	"  WHERE seq = $5 AND queue = $1 AND serial_key = $4" \
	"   AND state IN ('queued', 'retry') AND run_at <= $2" lane \
	"   AND " NOT_PAUSED " AND " SERIAL_FREE("$4", "$5") \
	"  FOR UPDATE SKIP LOCKED)" \
	" RETURNING " JOB_COLUMNS

static int
buf_add_char(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

/* keys[0..n) as a text[] literal into b, NUL-terminated.  0 or -1 (out
 * of memory). */
static int
key_array(struct buf *b, char *const *keys, int n)
{
	const char	*k;
	int		 i;

	b->len = 0;
	if (buf_add_char(b, '{') == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((i > 0 && buf_add_char(b, ',') == -1) ||
		    buf_add_char(b, '"') == -1)
			return -1;
		for (k = keys[i]; *k != '\0'; k++)
			if ((strchr("\"\\", *k) != NULL &&
			    buf_add_char(b, '\\') == -1) ||
			    buf_add_char(b, *k) == -1)
				return -1;
		if (buf_add_char(b, '"') == -1)
			return -1;
	}
	if (buf_add_char(b, '}') == -1 || buf_add_char(b, '\0') == -1)
		return -1;
	return 0;
}

/*
 * Step 2 for job seq of key: 1 claimed (*out set), 0 held back or taken
 * meanwhile (the caller sets the key aside), -1 error.  In the caller's
 * batch when one is open; its own transaction otherwise.
 */
static int
claim_keyed(struct store *s, const char *queue, int64_t now,
    int64_t lease_ms, int fresh, const char *seq, const char *key,
    struct store_job **out)
{
	static const char lock[] =
	    "SELECT pg_try_advisory_xact_lock(" SERIAL_LOCK_CLASS ","
	    "  hashtext($1 || ' ' || $2))";
	static const char any[] = SERIAL_CLAIM(""), first[] =
	    SERIAL_CLAIM(" AND attempts = 0");
	struct pgs_params	 p = { 0 };
	PGresult		*res = NULL;
	int			 r = 0;

	if (pgs_begin(s) == -1)
		return -1;
	pgs_p_str(&p, queue);
	pgs_p_str(&p, key);
	if ((res = pgs_exec(s, lock, &p, PGRES_TUPLES_OK,
	    "claim: serial key lock")) == NULL)
		goto fail;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		goto done;	/* another claimer is starting one of key */
	PQclear(res);
	memset(&p, 0, sizeof(p));
	pgs_p_str(&p, queue);
	pgs_p_i64(&p, now);
	pgs_p_i64(&p, now + lease_ms);
	pgs_p_str(&p, key);
	pgs_p_str(&p, seq);
	if ((res = pgs_exec(s, fresh ? first : any, &p, PGRES_TUPLES_OK,
	    "claim: serial key")) == NULL)
		goto fail;
	if (PQntuples(res) == 1) {
		if (pgs_job_from_row(s, res, 0, out) == -1)
			goto fail;
		r = 1;
	}
done:
	PQclear(res);
	res = NULL;
	if (pgs_commit(s) == -1)
		goto fail;
	return r;
fail:
	PQclear(res);
	store_job_free(*out);
	*out = NULL;
	pgs_rollback(s);
	return -1;
}

int
pgs_claim(struct store *s, const char *queue, int64_t now, int64_t lease_ms,
    int fresh, struct store_job **out)
{
	static const char any[] = PICK(""), first[] =
	    PICK(" AND attempts = 0");
	struct pgs_params	 p;
	struct buf		 arr;
	PGresult		*res = NULL;
	char			*aside[SERIAL_TRIES];
	int			 n = 0, i, r = -1;

	*out = NULL;
	buf_init(&arr, 0);
	for (;;) {
		if (key_array(&arr, aside, n) == -1) {
			(void)pgs_set_error(s, STORE_ENOMEM,
			    "claim: out of memory");
			break;
		}
		memset(&p, 0, sizeof(p));
		pgs_p_str(&p, queue);
		pgs_p_i64(&p, now);
		pgs_p_i64(&p, now + lease_ms);
		pgs_p_str(&p, (const char *)arr.data);
		if ((res = pgs_exec(s, fresh ? first : any, &p,
		    PGRES_TUPLES_OK, "claim")) == NULL)
			break;
		if (PQntuples(res) != 1) {
			r = 0;
			break;
		}
		if (PQgetisnull(res, 0, C__COUNT + 1)) {
			r = pgs_job_from_row(s, res, 0, out) == 0 ? 1 : -1;
			break;
		}
		if ((r = claim_keyed(s, queue, now, lease_ms, fresh,
		    PQgetvalue(res, 0, C__COUNT),
		    PQgetvalue(res, 0, C__COUNT + 1), out)) != 0)
			break;
		/* Held back after all: its key is busy, look past it. */
		if (n == SERIAL_TRIES ||
		    (aside[n] = strdup(PQgetvalue(res, 0, C__COUNT + 1))) ==
		    NULL) {
			r = n == SERIAL_TRIES ? 0 : pgs_set_error(s,
			    STORE_ENOMEM, "claim: out of memory");
			break;
		}
		n++;
		PQclear(res);
		res = NULL;
	}
	PQclear(res);
	for (i = 0; i < n; i++)
		free(aside[i]);
	buf_free(&arr);
	return r;
}

/* --- circuit breakers -------------------------------------------------- */

static void
row_breaker(const PGresult *res, int r, int c, struct store_breaker *b)
{
	b->state = (int)pgs_i64(res, r, c);
	b->open_until = pgs_i64(res, r, c + 1);
	b->failures = (int)pgs_i64(res, r, c + 2);
	b->pause_ms = pgs_i64(res, r, c + 3);
	b->trips = pgs_i64(res, r, c + 4);
}

int
pgs_breaker_get(struct store *s, const char *queue, struct store_breaker *b)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 r = 0;

	memset(b, 0, sizeof(*b));
	pgs_p_str(&p, queue);
	if ((res = pgs_exec(s, "SELECT breaker_state, breaker_until,"
	    "  breaker_failures, breaker_pause, breaker_trips"
	    " FROM queues WHERE name = $1", &p, PGRES_TUPLES_OK,
	    "breaker")) == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		row_breaker(res, 0, 0, b);
		r = 1;
	}
	PQclear(res);
	return r;
}

int
pgs_breaker_set(struct store *s, const char *queue,
    const struct store_breaker *b, int opened)
{
	struct pgs_params	 p = { 0 };

	if (pgs_begin(s) == -1)
		return -1;
	pgs_p_str(&p, queue);
	pgs_p_i64(&p, b->state);
	pgs_p_i64(&p, b->open_until);
	pgs_p_i64(&p, b->failures);
	pgs_p_i64(&p, b->pause_ms);
	pgs_p_i64(&p, b->trips);
	if (pgs_change(s, "INSERT INTO queues (name, breaker_state,"
	    "  breaker_until, breaker_failures, breaker_pause, breaker_trips)"
	    " VALUES ($1, $2, $3, $4, $5, $6)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    "  breaker_state = excluded.breaker_state,"
	    "  breaker_until = excluded.breaker_until,"
	    "  breaker_failures = excluded.breaker_failures,"
	    "  breaker_pause = excluded.breaker_pause,"
	    "  breaker_trips = excluded.breaker_trips", &p, "breaker") == -1)
		goto fail;
	/* The event goes where SQLite's does (none while the PostgreSQL
	 * engine has no dead-letter queue: config.c refuses one). */
	if (opened && sq_breaker_letter(s, queue, b) == -1)
		goto fail;
	if (pgs_commit(s) == -1)
		goto fail;
	return 0;
fail:
	pgs_rollback(s);
	return -1;
}

int
pgs_breakers(struct store *s, store_breaker_fn fn, void *arg)
{
	struct store_breaker	 b;
	PGresult		*res;
	int			 r;

	if ((res = pgs_exec(s, "SELECT name, breaker_state, breaker_until,"
	    "  breaker_failures, breaker_pause, breaker_trips FROM queues"
	    " WHERE breaker_trips > 0 OR breaker_state <> 0"
	    " ORDER BY name COLLATE \"C\"", NULL, PGRES_TUPLES_OK,
	    "breakers")) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		row_breaker(res, r, 1, &b);
		fn(arg, PQgetvalue(res, r, 0), &b);
	}
	PQclear(res);
	return 0;
}
