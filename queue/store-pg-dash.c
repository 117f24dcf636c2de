/*
 * store-pg-dash.c: store-dash.c's functions on PostgreSQL (the dashboard's
 * listings and dead-job actions), the key its action tokens are made from,
 * and schema version 7, which holds that key.
 *
 * A listing keeps store-dash.c's bound: the inner SELECT walks one
 * partial index in its own order (jobs_claim, jobs_lease, jobs_finished,
 * jobs_dead, or the primary key) and stops after the budget, and only
 * those rows meet the conditions the index does not carry.  A dead-job
 * batch picks its rows, then changes each only if it is still dead when
 * the change reaches it (the outer WHERE is checked again on a row that
 * another transaction changed meanwhile), so a retried job that a helper
 * has already claimed is never put back in the queue; retried jobs wake
 * the helpers of every host (NOTIFY), as an enqueue does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store-sqlite.h"
#include "store-pg.h"
#include "text.h"

#define LIST_COLUMNS \
	"id, queue, state, attempts, max_attempts, created_at, run_at," \
	" coalesce(finished_at, 0), octet_length(body)," \
	" coalesce(last_error, '')"

/* $1 queue (NULL any), $2 state (NULL any), $3 the age bound (NULL none),
 * $4 budget, $5 limit, $6 offset, as store-dash.c's ?1 .. ?6. */
#define OUTER	"SELECT " LIST_COLUMNS " FROM jobs WHERE seq IN ("
#define FILTER	") AND ($1::text IS NULL OR queue = $1)" \
	" AND ($2::text IS NULL OR state = $2)"
#define AGE	" AND ($3::bigint IS NULL OR created_at <= $3)"
#define UPTO	" coalesce($3::bigint, 9223372036854775807)"

/* [kind][a queue is named]. */
static const char *const list_sql[L__N][2] = {
	[L_ANY] = {
		OUTER "SELECT seq FROM jobs ORDER BY seq DESC LIMIT $4"
		FILTER AGE " ORDER BY seq DESC LIMIT $5 OFFSET $6",
		OUTER "SELECT seq FROM jobs ORDER BY seq DESC LIMIT $4"
		FILTER AGE " ORDER BY seq DESC LIMIT $5 OFFSET $6",
	},
	[L_WAITING] = {
		OUTER "SELECT seq FROM jobs WHERE state IN ('queued', 'retry')"
		" ORDER BY queue, priority DESC, run_at, seq LIMIT $4"
		FILTER AGE " ORDER BY queue, priority DESC, run_at, seq"
		" LIMIT $5 OFFSET $6",
		OUTER "SELECT seq FROM jobs WHERE queue = $1"
		" AND state IN ('queued', 'retry')"
		" ORDER BY priority DESC, run_at, seq LIMIT $4"
		FILTER AGE " ORDER BY priority DESC, run_at, seq"
		" LIMIT $5 OFFSET $6",
	},
	[L_RUNNING] = {
		OUTER "SELECT seq FROM jobs WHERE state = 'running'"
		" ORDER BY lease_until LIMIT $4"
		FILTER AGE " ORDER BY lease_until LIMIT $5 OFFSET $6",
		OUTER "SELECT seq FROM jobs WHERE state = 'running'"
		" ORDER BY lease_until LIMIT $4"
		FILTER AGE " ORDER BY lease_until LIMIT $5 OFFSET $6",
	},
	[L_FINISHED] = {
		OUTER "SELECT seq FROM jobs WHERE finished_at IS NOT NULL"
		" AND finished_at <=" UPTO
		" ORDER BY finished_at DESC LIMIT $4"
		FILTER " ORDER BY finished_at DESC LIMIT $5 OFFSET $6",
		OUTER "SELECT seq FROM jobs WHERE finished_at IS NOT NULL"
		" AND finished_at <=" UPTO
		" ORDER BY finished_at DESC LIMIT $4"
		FILTER " ORDER BY finished_at DESC LIMIT $5 OFFSET $6",
	},
	[L_DEAD] = {
		OUTER "SELECT seq FROM jobs WHERE state = 'dead'"
		" AND finished_at <=" UPTO
		" ORDER BY queue DESC, finished_at DESC LIMIT $4"
		FILTER " ORDER BY queue DESC, finished_at DESC"
		" LIMIT $5 OFFSET $6",
		OUTER "SELECT seq FROM jobs WHERE state = 'dead'"
		" AND queue = $1 AND finished_at <=" UPTO
		" ORDER BY finished_at DESC LIMIT $4"
		FILTER " ORDER BY finished_at DESC LIMIT $5 OFFSET $6",
	},
};

/* The dead jobs of a batch: $1 queue (NULL any), $2 died at or before,
 * $3 how many; the outer WHERE checks the state again (see above). */
#define DEAD_PICK \
	" WHERE seq IN (SELECT seq FROM jobs WHERE state = 'dead'" \
	" AND ($1::text IS NULL OR queue = $1) AND finished_at <= $2" \
	" LIMIT $3) AND state = 'dead'"
static const char retry_sql[] =
	"WITH c AS (UPDATE jobs SET state = 'queued', run_at = $4,"
	"  finished_at = NULL, lease_until = NULL,"
	"  max_attempts = greatest(max_attempts, attempts + 1)"
	DEAD_PICK " RETURNING 1)"
	" SELECT count(*), pg_notify('" PGS_CHANNEL "', '') FROM c";
static const char discard_sql[] =
	"WITH c AS (DELETE FROM jobs" DEAD_PICK " RETURNING 1)"
	" SELECT count(*) FROM c";

int
pgs_dash_list(struct store *s, const struct store_dash_filter *f,
    store_dash_fn fn, void *arg)
{
	struct store_dash_row	 row;
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	enum dash_kind		 k;
	const char		*state = NULL;
	int64_t			 budget;
	int			 i, n;

	if (dash_plan(f, &k, &budget) == -1)
		return pgs_set_error(s, STORE_EINVAL, "list: no such state");
	if (f->state != STORE_JOB_ANY)
		state = store_state_name(f->state);
	pgs_p_str(&p, f->queue);
	pgs_p_str(&p, state);
	if (f->before > 0)
		pgs_p_i64(&p, f->before);
	else
		pgs_p_str(&p, NULL);
	pgs_p_i64(&p, budget);
	pgs_p_i64(&p, f->limit);
	pgs_p_i64(&p, f->offset);
	if ((res = pgs_exec(s, list_sql[k][f->queue != NULL], &p,
	    PGRES_TUPLES_OK, "list")) == NULL)
		return -1;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		memset(&row, 0, sizeof(row));
		row.id = PQgetvalue(res, i, 0);
		row.queue = PQgetvalue(res, i, 1);
		if (store_state_parse(PQgetvalue(res, i, 2), &row.state) ==
		    -1) {
			PQclear(res);
			return pgs_set_error(s, STORE_EOTHER, "list: a job "
			    "in an unknown state");
		}
		row.attempts = (int)pgs_i64(res, i, 3);
		row.max_attempts = (int)pgs_i64(res, i, 4);
		row.created_at = pgs_i64(res, i, 5);
		row.run_at = pgs_i64(res, i, 6);
		row.finished_at = pgs_i64(res, i, 7);
		row.body_len = pgs_i64(res, i, 8);
		row.last_error = PQgetvalue(res, i, 9);
		fn(arg, &row);
	}
	PQclear(res);
	return n;
}

int
pgs_dash_discard(struct store *s, const char *id)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 n;

	pgs_p_str(&p, id);
	if ((n = pgs_change(s, "DELETE FROM jobs WHERE id = $1 AND"
	    " state = 'dead'", &p, "discard")) != 0)
		return n > 0 ? 1 : -1;
	if ((res = pgs_exec(s, "SELECT 1 FROM jobs WHERE id = $1", &p,
	    PGRES_TUPLES_OK, "discard")) == NULL)
		return -1;
	n = PQntuples(res) > 0 ? 2 : 0;
	PQclear(res);
	return n;
}

int
pgs_dash_dead_batch(struct store *s, const char *queue, int64_t before,
    int discard, int n, int64_t now)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int			 changed;

	pgs_p_str(&p, queue);
	pgs_p_i64(&p, before);
	pgs_p_i64(&p, n);
	if (!discard)
		pgs_p_i64(&p, now);
	if ((res = pgs_exec(s, discard ? discard_sql : retry_sql, &p,
	    PGRES_TUPLES_OK, "dead batch")) == NULL)
		return -1;
	changed = (int)pgs_i64(res, 0, 0);
	PQclear(res);
	return changed;
}

/* --- the dashboard's key ----------------------------------------------- */

/*
 * One row per installation, made by the first process that asks: the
 * INSERT does nothing when another got there first, and the SELECT then
 * reads its row; a row committed after this statement's snapshot was
 * taken (two first askers at once) is seen by the next try.
 */
int
pgs_dash_key(struct store *s, unsigned char *key, size_t len)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	unsigned char		 k[64];
	char			 hex[2 * sizeof(k) + 1];
	const char		*v;
	size_t			 i;
	int			 tries;

	if (len == 0 || len > sizeof(k))
		return pgs_set_error(s, STORE_EINVAL, "dashboard key: "
		    "%zu bytes", len);
	if (getentropy(k, len) == -1)
		return pgs_set_error(s, STORE_EOTHER, "dashboard key: no "
		    "entropy");
	for (i = 0; i < len; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", k[i]);
	explicit_bzero(k, sizeof(k));
	pgs_p_str(&p, hex);
	pgs_p_i64(&p, store_now());
	for (tries = 0; tries < 3; tries++) {
		res = pgs_exec(s, "WITH i AS (INSERT INTO fcgiq_keys"
		    " (name, key, created_at)"
		    " VALUES ('dashboard', decode($1, 'hex'), $2)"
		    " ON CONFLICT (name) DO NOTHING RETURNING key)"
		    " SELECT encode(key, 'hex') FROM i UNION ALL"
		    " SELECT encode(key, 'hex') FROM fcgiq_keys"
		    "  WHERE name = 'dashboard'", &p, PGRES_TUPLES_OK,
		    "dashboard key");
		if (res == NULL)
			break;
		if (PQntuples(res) == 0) {
			PQclear(res);
			continue;
		}
		v = PQgetvalue(res, 0, 0);
		if (strlen(v) != 2 * len ||
		    text_hex_decode(v, 2 * len, key) == -1) {
			PQclear(res);
			explicit_bzero(hex, sizeof(hex));
			return pgs_set_error(s, STORE_EOTHER, "dashboard key: "
			    "the stored key is not %zu bytes", len);
		}
		PQclear(res);
		explicit_bzero(hex, sizeof(hex));
		return 0;
	}
	explicit_bzero(hex, sizeof(hex));
	return res == NULL ? -1 : pgs_set_error(s, STORE_EOTHER,
	    "dashboard key: not found after making it");
}

/* --- schema version 7 -------------------------------------------------- */

/*
 * Version 6 -> 7: fcgiq_keys, the installation's secrets that every host
 * must share (the dashboard's action tokens: a page served by one host
 * may post its action to another behind the same load balancer).  Run by
 * store-pg.c's migrate() inside its transaction, under its lock.
 */
int
pgs_dash_schema_v7(struct store *s)
{
	static const char *const step[] = {
		"CREATE TABLE fcgiq_keys ("
		"  name       text PRIMARY KEY,"
		"  key        bytea NOT NULL,"
		"  created_at bigint NOT NULL"
		")",
		"UPDATE fcgiq_schema SET version = 7",
	};
	PGresult	*res;
	size_t		 i;

	for (i = 0; i < sizeof(step) / sizeof(step[0]); i++) {
		if ((res = pgs_exec(s, step[i], NULL, PGRES_COMMAND_OK,
		    "migrate to version 7")) == NULL)
			return -1;
		PQclear(res);
	}
	return 0;
}
