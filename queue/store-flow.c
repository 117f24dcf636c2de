/*
 * store-flow.c: each queue's circuit breaker as the store keeps it (table
 * queues, the breaker_ columns), so that fcgiqctl stats, a metrics scrape
 * and the next helper see what the helper decided.  The helper writes a
 * row only when the breaker changes state; the write that opens it also
 * enqueues, when a dead-letter queue is set, an event there in the same
 * transaction:
 *   {"event": "breaker_open", "queue": q, "failures": n, "until": ms,
 *    "trips": n}
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store-pg.h"
#include "store-sqlite.h"

static void
row_breaker(sqlite3_stmt *st, int c, struct store_breaker *b)
{
	b->state = sqlite3_column_int(st, c);
	b->open_until = sqlite3_column_int64(st, c + 1);
	b->failures = sqlite3_column_int(st, c + 2);
	b->pause_ms = sqlite3_column_int64(st, c + 3);
	b->trips = sqlite3_column_int64(st, c + 4);
}

int
store_breaker_get(struct store *s, const char *queue, struct store_breaker *b)
{
	static const char sql[] =
	    "SELECT breaker_state, breaker_until, breaker_failures,"
	    "  breaker_pause, breaker_trips FROM queues WHERE name = ?1";
	sqlite3_stmt *st = NULL;
	int rc, r = -1;

	if (s->pg != NULL)
		return pgs_breaker_get(s, queue, b);
	memset(b, 0, sizeof(*b));
	if ((st = sq_prepare(s, sql, "circuit breakers")) == NULL)
		return -1;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK) {
		(void)sq_fail_db(s, "breaker: bind");
		goto done;
	}
	if ((rc = store_step_fn(st)) == SQLITE_ROW) {
		row_breaker(st, 0, b);
		r = 1;
	} else if (rc == SQLITE_DONE)
		r = 0;
	else
		(void)sq_fail(s, rc, "breaker");
done:
	sqlite3_finalize(st);
	return r;
}

int
sq_breaker_letter(struct store *s, const char *queue,
    const struct store_breaker *b)
{
	char body[256];
	int n;

	/* Queue names are A-Z a-z 0-9 - _ . (config.c): nothing to
	 * escape. */
	n = snprintf(body, sizeof(body), "{\"event\":\"breaker_open\","
	    "\"queue\":\"%s\",\"failures\":%d,\"until\":%lld,\"trips\":%lld}",
	    queue, b->failures, (long long)b->open_until,
	    (long long)b->trips);
	if (n < 0 || (size_t)n >= sizeof(body))
		return sq_fail_arg(s, "breaker: queue name");
	return sq_dead_event(s, queue, body);
}

int
store_breaker_set(struct store *s, const char *queue,
    const struct store_breaker *b, int opened)
{
	static const char sql[] =
	    "INSERT INTO queues (name, breaker_state, breaker_until,"
	    "  breaker_failures, breaker_pause, breaker_trips)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    "  breaker_state = excluded.breaker_state,"
	    "  breaker_until = excluded.breaker_until,"
	    "  breaker_failures = excluded.breaker_failures,"
	    "  breaker_pause = excluded.breaker_pause,"
	    "  breaker_trips = excluded.breaker_trips";
	sqlite3_stmt *st = NULL;

	if (s->pg != NULL)
		return pgs_breaker_set(s, queue, b, opened);
	if (sq_begin(s) == -1)
		return -1;
	if ((st = sq_prepare(s, sql, "circuit breakers")) == NULL)
		goto fail;
	if (sq_bind_str(st, 1, queue) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, b->state) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, b->open_until) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, b->failures) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, b->pause_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, b->trips) != SQLITE_OK) {
		(void)sq_fail_db(s, "breaker: bind");
		goto fail;
	}
	if (sq_step_done(s, st, "breaker") == -1)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (opened && sq_breaker_letter(s, queue, b) == -1)
		goto fail;
	if (sq_commit(s) == -1)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(st);
	sq_rollback(s);
	return -1;
}

int
store_breakers(struct store *s, store_breaker_fn fn, void *arg)
{
	static const char sql[] =
	    "SELECT name, breaker_state, breaker_until, breaker_failures,"
	    "  breaker_pause, breaker_trips FROM queues"
	    " WHERE breaker_trips > 0 OR breaker_state != 0 ORDER BY name";
	struct store_breaker b;
	sqlite3_stmt *st = NULL;
	int rc;

	if (s->pg != NULL)
		return pgs_breakers(s, fn, arg);
	if ((st = sq_prepare(s, sql, "circuit breakers")) == NULL)
		return -1;
	while ((rc = store_step_fn(st)) == SQLITE_ROW) {
		row_breaker(st, 1, &b);
		fn(arg, (const char *)sqlite3_column_text(st, 0), &b);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sq_fail(s, rc, "breakers");
	return 0;
}
