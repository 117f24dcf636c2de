/*
 * store-pg-bulk.c: an operator's change of many jobs at once (fcgiqctl
 * retry, discard, cancel with filters) on PostgreSQL, with the semantics
 * of store-bulk.c: the jobs are found in arrival order (seq) outside any
 * transaction, then changed in batches, each one statement (so one
 * transaction) that applies the filter again to each row, so a process
 * killed in the middle leaves every job either changed or not, and the
 * same command run again does the rest.  PostgreSQL locks rows, not the
 * database: intake goes on during a batch whatever its size, so there is
 * no pause between batches; a claim skips the rows a batch holds (SKIP
 * LOCKED).  A batch that made jobs queued wakes the helpers (NOTIFY), as
 * an enqueue does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store-sqlite.h"
#include "store-pg.h"

/* The filter, on $1 .. $5; $2 is the states as ",dead,retry,". */
#define FILTER \
	" AND ($1::text IS NULL OR queue = $1)" \
	" AND position(',' || state || ',' IN $2::text) > 0" \
	" AND ($3::bigint IS NULL OR created_at >= $3)" \
	" AND ($4::bigint IS NULL OR created_at < $4)" \
	" AND ($5::text IS NULL OR last_error LIKE $5)"

/* Each op's change of the jobs whose seqs are $6 (an array; $7: now), as
 * the single-job forms make it. */
static const char *const op_sql[] = {
	[STORE_BULK_RETRY] =
	    "WITH c AS (UPDATE jobs SET state = 'queued', run_at = $7,"
	    "  finished_at = NULL, lease_until = NULL,"
	    "  max_attempts = greatest(max_attempts, attempts + 1)"
	    " WHERE seq = ANY($6::bigint[])" FILTER " RETURNING 1)"
	    " SELECT count(*), pg_notify('" PGS_CHANNEL "', '') FROM c",
	[STORE_BULK_DISCARD] =
	    "WITH c AS (DELETE FROM jobs WHERE seq = ANY($6::bigint[])" FILTER
	    " RETURNING 1) SELECT count(*) FROM c",
	[STORE_BULK_CANCEL] =
	    "WITH c AS (UPDATE jobs SET state = 'cancelled', finished_at = $7,"
	    "  lease_until = NULL"
	    " WHERE seq = ANY($6::bigint[])" FILTER " RETURNING 1)"
	    " SELECT count(*) FROM c",
};

static void
bind_filter(struct pgs_params *p, const struct store_filter *f,
    const char *states)
{
	pgs_p_str(p, f->queue);
	pgs_p_str(p, states);
	if (f->since != 0)
		pgs_p_i64(p, f->since);
	else
		pgs_p_str(p, NULL);
	if (f->until != 0)
		pgs_p_i64(p, f->until);
	else
		pgs_p_str(p, NULL);
	pgs_p_str(p, f->error);
}

int64_t
pgs_bulk_count(struct store *s, const struct store_filter *f,
    const char *states)
{
	struct pgs_params	 p = { 0 };
	PGresult		*res;
	int64_t			 n;

	bind_filter(&p, f, states);
	if ((res = pgs_exec(s, "SELECT count(*) FROM jobs WHERE true" FILTER,
	    &p, PGRES_TUPLES_OK, "bulk: count")) == NULL)
		return -1;
	n = pgs_i64(res, 0, 0);
	PQclear(res);
	return n;
}

int64_t
pgs_bulk(struct store *s, enum store_bulk_op op, const struct store_filter *f,
    const char *states, int64_t now, int batch, store_bulk_fn fn, void *arg)
{
	struct pgs_params	 p;
	PGresult		*res;
	char			*arr;
	size_t			 cap, len;
	int64_t			 lo = 0, total = 0;
	int			 i, n;

	/* "{" + batch numbers of up to 20 digits and a comma + "}". */
	cap = (size_t)batch * 21 + 3;
	if ((arr = malloc(cap)) == NULL)
		return pgs_set_error(s, STORE_ENOMEM, "bulk: out of memory");
	for (;;) {
		memset(&p, 0, sizeof(p));
		bind_filter(&p, f, states);
		pgs_p_i64(&p, lo);
		pgs_p_i64(&p, batch);
		if ((res = pgs_exec(s, "SELECT seq FROM jobs WHERE seq > $6"
		    FILTER " ORDER BY seq LIMIT $7", &p, PGRES_TUPLES_OK,
		    "bulk: read")) == NULL)
			goto fail;
		if ((n = PQntuples(res)) == 0) {
			PQclear(res);
			break;
		}
		len = 0;
		arr[len++] = '{';
		for (i = 0; i < n; i++)
			len += (size_t)snprintf(arr + len, cap - len, "%s%s",
			    i > 0 ? "," : "", PQgetvalue(res, i, 0));
		(void)snprintf(arr + len, cap - len, "}");
		lo = pgs_i64(res, n - 1, 0);
		PQclear(res);

		memset(&p, 0, sizeof(p));
		bind_filter(&p, f, states);
		pgs_p_str(&p, arr);
		if (op != STORE_BULK_DISCARD)
			pgs_p_i64(&p, now);
		if ((res = pgs_exec(s, op_sql[op], &p, PGRES_TUPLES_OK,
		    "bulk: change")) == NULL)
			goto fail;
		total += pgs_i64(res, 0, 0);
		PQclear(res);
		if (fn != NULL && fn(arg, total) != 0)
			break;
		if (n < batch)
			break;
	}
	free(arr);
	return total;
fail:
	free(arr);
	return -1;
}
