/*
 * store-rejected.c: the requests a queue's signature check refused, kept
 * for people to look at (fcgiqctl rejected, the sqlite3 shell) and
 * bounded: each store_reject() deletes, in the transaction that adds rows,
 * the oldest rows of their queues past keep_rejected, so the table holds
 * at most keep rows of a queue whatever a flood sends.  The responder
 * writes here from its committer, a batch at most every 100 ms (commit.c),
 * so these statements are prepared per call: a handful a second.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store-sqlite.h"

static const char sql_insert[] =
    "INSERT INTO rejected (at, queue, reason, remote_addr, method,"
    "  request_uri, headers, body_length, body_head)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
/* The keep-th newest row and everything older, through rejected_queue. */
static const char sql_prune[] =
    "DELETE FROM rejected WHERE queue = ?1 AND seq <= ("
    "  SELECT seq FROM rejected WHERE queue = ?1"
    "  ORDER BY seq DESC LIMIT 1 OFFSET ?2)";
static const char sql_list[] =
    "SELECT seq, at, queue, reason, remote_addr, method, request_uri,"
    "  headers, body_length, body_head FROM rejected"
    " WHERE ?1 IS NULL OR queue = ?1 ORDER BY seq DESC LIMIT ?2";


/* 1 when rows[0..i) already named queue (its prune is done once). */
static int
seen_before(const struct store_rejected *rows, size_t i)
{
	size_t k;

	for (k = 0; k < i; k++)
		if (strcmp(rows[k].queue, rows[i].queue) == 0)
			return 1;
	return 0;
}

int
store_reject(struct store *s, const struct store_rejected *rows, size_t n)
{
	sqlite3_stmt *ins = NULL, *prune = NULL;
	const struct store_rejected *r;
	size_t i, head;
	int rc = -1;

	if (s->pg != NULL)
		return pgs_reject(s, rows, n);
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (rows[i].queue == NULL || rows[i].reason == NULL ||
		    rows[i].keep < 0)
			return sq_fail_arg(s, "reject: a row without queue, "
			    "reason or keep");
	if ((ins = sq_prepare(s, sql_insert, "rejected requests")) == NULL ||
	    (prune = sq_prepare(s, sql_prune, "rejected requests")) == NULL)
		goto done;
	if (sq_begin(s) == -1)
		goto done;
	for (i = 0; i < n; i++) {
		r = &rows[i];
		head = r->head_len < STORE_REJECTED_HEAD ? r->head_len :
		    STORE_REJECTED_HEAD;
		if (sqlite3_bind_int64(ins, 1, r->at) != SQLITE_OK ||
		    sq_bind_str(ins, 2, r->queue) != SQLITE_OK ||
		    sq_bind_str(ins, 3, r->reason) != SQLITE_OK ||
		    sq_bind_str(ins, 4, r->remote_addr) != SQLITE_OK ||
		    sq_bind_str(ins, 5, r->method) != SQLITE_OK ||
		    sq_bind_str(ins, 6, r->request_uri) != SQLITE_OK ||
		    sq_bind_str(ins, 7, r->headers) != SQLITE_OK ||
		    sqlite3_bind_int64(ins, 8, r->body_length) != SQLITE_OK ||
		    sqlite3_bind_blob(ins, 9, head > 0 ? r->body_head : "",
		    (int)head, SQLITE_STATIC) != SQLITE_OK) {
			(void)sq_fail_db(s, "reject: bind");
			goto rollback;
		}
		if (sq_step_done(s, ins, "reject: insert") == -1)
			goto rollback;
		sq_done_with(ins);
	}
	for (i = 0; i < n; i++) {
		if (seen_before(rows, i))
			continue;
		if (sq_bind_str(prune, 1, rows[i].queue) != SQLITE_OK ||
		    sqlite3_bind_int(prune, 2, rows[i].keep) != SQLITE_OK) {
			(void)sq_fail_db(s, "reject: bind");
			goto rollback;
		}
		if (sq_step_done(s, prune, "reject: prune") == -1)
			goto rollback;
		sq_done_with(prune);
	}
	if (sq_commit(s) == -1)
		goto rollback;
	rc = 0;
	goto done;
rollback:
	sq_rollback(s);
done:
	sqlite3_finalize(ins);
	sqlite3_finalize(prune);
	return rc;
}

static const char *
col_str(sqlite3_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(st, c);
}

int
store_rejected_list(struct store *s, const char *queue, int64_t limit,
    store_rejected_fn fn, void *arg)
{
	struct store_rejected r;
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (s->pg != NULL)
		return pgs_rejected_list(s, queue, limit, fn, arg);
	/* seq orders the rows of every queue: they share the rowid. */
	if ((st = sq_prepare(s, sql_list, "rejected requests")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, limit) != SQLITE_OK) {
		(void)sq_fail_db(s, "rejected: bind");
		goto done;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.seq = sqlite3_column_int64(st, 0);
		r.at = sqlite3_column_int64(st, 1);
		r.queue = col_str(st, 2);
		r.reason = col_str(st, 3);
		r.remote_addr = col_str(st, 4);
		r.method = col_str(st, 5);
		r.request_uri = col_str(st, 6);
		r.headers = col_str(st, 7);
		r.body_length = sqlite3_column_int64(st, 8);
		r.body_head = sqlite3_column_blob(st, 9);
		r.head_len = (size_t)sqlite3_column_bytes(st, 9);
		if (r.queue == NULL || r.reason == NULL) {
			(void)sq_fail(s, SQLITE_NOMEM, "rejected: row");
			goto done;
		}
		fn(arg, &r);
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "rejected: list");
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	return ret;
}
