/*
 * store-dead.c: dead letters.  With a dead-letter queue set (fcgiq.conf's
 * dead_letter_queue), every transition that makes a job dead also
 * enqueues, in the same transaction, a small JSON job into that queue:
 *   {"job": id, "queue": q, "attempts": n, "last_error": e,
 *    "status_url": prefix || id}
 * so the operator's own handler learns of it durably and with retries: the
 * letter is committed with the death or not at all.  A job of the
 * dead-letter queue itself that dies gets no letter: the queue never feeds
 * itself.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-sqlite.h"
#include "store-pg.h"

struct store_dlq {
	int	 max_attempts;
	int	 priority;
	char	*prefix;
	char	 queue[];
};

int
store_set_dead_letter(struct store *s, const char *queue,
    const char *status_prefix, int max_attempts, int priority)
{
	struct store_dlq *d = NULL;
	size_t qn, pn;

	if (queue != NULL) {
		if (max_attempts < 1)
			return sq_fail_arg(s, "dead letters: max_attempts");
		qn = strlen(queue) + 1;
		pn = strlen(status_prefix) + 1;
		if ((d = malloc(sizeof(*d) + qn + pn)) == NULL)
			return sq_set_error(s, SQLITE_NOMEM, "dead letters: "
			    "out of memory");
		memcpy(d->queue, queue, qn);
		d->prefix = d->queue + qn;
		memcpy(d->prefix, status_prefix, pn);
		d->max_attempts = max_attempts;
		d->priority = priority;
	}
	free(s->dlq);
	s->dlq = d;
	return 0;
}

int
sq_dead_letter(struct store *s, const char *id)
{
	static const char sql[] =
	    "SELECT queue, json_object('job', id, 'queue', queue,"
	    "  'attempts', attempts, 'last_error', last_error,"
	    "  'status_url', ?2 || id)"
	    " FROM jobs WHERE id = ?1 AND state = 'dead'";
	struct store_newjob j;
	sqlite3_stmt *st = NULL;
	const char *q, *body;
	int rc, r = -1;

	if (s->dlq == NULL)
		return 0;
	if (s->pg != NULL)
		return pgs_dead_letter(s, id, s->dlq->prefix);
	if ((st = sq_prepare(s, sql, "dead letter")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, id) != SQLITE_OK ||
	    sq_bind_str(st, 2, s->dlq->prefix) != SQLITE_OK) {
		(void)sq_fail_db(s, "dead letter: bind");
		goto done;
	}
	if ((rc = store_step_fn(st)) == SQLITE_DONE) {
		r = 0;		/* not dead after all: no letter */
		goto done;
	}
	if (rc != SQLITE_ROW) {
		(void)sq_fail(s, rc, "dead letter");
		goto done;
	}
	q = (const char *)sqlite3_column_text(st, 0);
	body = (const char *)sqlite3_column_text(st, 1);
	if (q == NULL || strcmp(q, s->dlq->queue) == 0 || body == NULL) {
		r = 0;
		goto done;
	}
	memset(&j, 0, sizeof(j));
	j.queue = s->dlq->queue;
	j.priority = s->dlq->priority;
	j.max_attempts = s->dlq->max_attempts;
	j.method = "POST";
	j.content_type = "application/json";
	j.body = body;
	j.body_len = strlen(body);
	r = sq_enqueue_in(s, &j, 1);
done:
	sqlite3_finalize(st);
	return r;
}

int
sq_dead_event(struct store *s, const char *queue, const char *body)
{
	struct store_newjob j;

	if (s->dlq == NULL || strcmp(queue, s->dlq->queue) == 0)
		return 0;
	memset(&j, 0, sizeof(j));
	j.queue = s->dlq->queue;
	j.priority = s->dlq->priority;
	j.max_attempts = s->dlq->max_attempts;
	j.method = "POST";
	j.content_type = "application/json";
	j.body = body;
	j.body_len = strlen(body);
	if (s->pg != NULL)
		return pgs_enqueue_in(s, &j, 1);
	return sq_enqueue_in(s, &j, 1);
}

int
sq_dead_ids(struct store *s, int64_t now, int all, char ***ids, size_t *n)
{
	static const char sql[] =
	    "SELECT id FROM jobs INDEXED BY jobs_lease"
	    " WHERE state = 'running' AND (?2 OR lease_until < ?1)"
	    "  AND attempts >= max_attempts";
	sqlite3_stmt *st = NULL;
	char **v = NULL, **nv;
	size_t len = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (s->dlq == NULL)
		return 0;
	if ((st = sq_prepare(s, sql, "dead letters")) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, all != 0) != SQLITE_OK) {
		(void)sq_fail_db(s, "dead letters: bind");
		goto fail;
	}
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		if ((nv = realloc(v, (len + 1) * sizeof(*v))) == NULL)
			goto nomem;
		v = nv;
		if ((v[len] = strdup((const char *)sqlite3_column_text(st,
		    0))) == NULL)
			goto nomem;
		len++;
	}
	if (rc != SQLITE_DONE) {
		(void)sq_fail(s, rc, "dead letters");
		goto fail;
	}
	sqlite3_finalize(st);
	*ids = v;
	*n = len;
	return 0;
nomem:
	(void)sq_set_error(s, SQLITE_NOMEM, "dead letters: out of memory");
fail:
	sqlite3_finalize(st);
	sq_free_ids(v, len);
	return -1;
}

void
sq_free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}
