/*
 * store-pg.h: the PostgreSQL engine behind store.h (libpq), shared by the
 * store-pg*.c files and the one line at the top of each public store
 * function that has a PostgreSQL version (`if (s->pg != NULL) return
 * pgs_...`).  Nothing above the store includes it.
 *
 * The functions keep the store's conventions: 0 or -1 (or the public
 * function's own return values) and, on -1, the last error of s set
 * (store_error, store_errcode).  A lost connection is the transient kind
 * (STORE_EIO, a 503 at the door): the next call reconnects, with backoff.
 */
#ifndef FCGIQ_STORE_PG_H
#define FCGIQ_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"

/* The schema version PostgreSQL databases reach, as SQLite's user_version
 * (6: what SQLite's 5 holds, reached here in two steps; 7: fcgiq_keys). */
#define PGS_SCHEMA_VERSION	7

/* One statement prepared on the current connection (store-pg.c). */
struct pgs_stmt {
	uint64_t	 hash;
	char		*sql;
	char		 name[16];
};

struct pgs {
	PGconn		*conn;
	char		*conninfo;
	int		 readonly;
	int		 listening;	/* LISTEN again after a reconnect */
	int		 batch;		/* enum batch_state (store-sqlite.h) */
	int64_t		 retry_at_us;	/* monotonic: next reconnect, 0: now */
	int64_t		 backoff_ms;	/* the wait after the next failure */
	struct pgs_stmt	*stmts;		/* prepared on this connection */
	int		 nstmts;
	unsigned	 stmt_seq;	/* names given on this connection */
};

/* --- the connection (store-pg.c) --------------------------------------- */

/* Whether database names a PostgreSQL database (a postgresql:// or
 * postgres:// URI, or a libpq keyword string) rather than a SQLite file. */
int	pgs_is_conninfo(const char *database);

/* Connect s (its pg field set by the caller), set the session up and
 * migrate (or check, read-only) the schema.  0 or -1 (error in s). */
int	pgs_open(struct store *s, const char *conninfo, int readonly);
void	pgs_close(struct pgs *);

/* A store function that PostgreSQL does not have yet: -1, with a message
 * naming it. */
int	pgs_unsupported(struct store *s, const char *what);

/* store_listen and its fd (store.h); the channel every enqueue
 * notifies. */
#define PGS_CHANNEL	"fcgiq_jobs"
int	pgs_listen(struct store *);
int	pgs_listen_fd(struct store *);
int	pgs_listen_take(struct store *);

int	pgs_batch_begin(struct store *);
int	pgs_batch_end(struct store *);

/* Parameters of one statement, as text (binary for a bytea). */
#define PGS_MAXPARAMS	16
struct pgs_params {
	int		 n;
	const char	*v[PGS_MAXPARAMS];
	int		 len[PGS_MAXPARAMS];
	int		 fmt[PGS_MAXPARAMS];
	char		 num[PGS_MAXPARAMS][24];
};
void	pgs_p_str(struct pgs_params *, const char *);	/* NULL: NULL */
void	pgs_p_i64(struct pgs_params *, int64_t);
void	pgs_p_bin(struct pgs_params *, const void *, size_t);

/*
 * Run sql with the parameters p (NULL: none); the result when its status
 * is want (PGRES_COMMAND_OK or PGRES_TUPLES_OK), else NULL with the error
 * kept (and a batch doomed).  Reconnects first when the connection is gone
 * and no transaction of ours is open.  sql (one statement) is prepared
 * on the connection the first time it runs there, and run by name after.
 */
PGresult *pgs_exec(struct store *s, const char *sql,
	    const struct pgs_params *p, ExecStatusType want, const char *what);
/* The same with n parameters in caller's arrays (a batch's INSERT). */
PGresult *pgs_execv(struct store *s, const char *sql, int n,
	    const char *const *v, const int *len, const int *fmt,
	    ExecStatusType want, const char *what);
/* One change: the rows it touched, or -1. */
int	pgs_change(struct store *s, const char *sql,
	    const struct pgs_params *p, const char *what);

/* Every change is one transaction, or part of the caller's batch. */
int	pgs_begin(struct store *s);
int	pgs_commit(struct store *s);
void	pgs_rollback(struct store *s);

/* Keep a message as the last error with the store's code; -1. */
int	pgs_set_error(struct store *s, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Column values of row r of res: 0 / NULL when NULL. */
int64_t	pgs_i64(const PGresult *res, int r, int c);
const char *pgs_str(const PGresult *res, int r, int c);

/* --- the store's functions (store-pg-jobs.c) --------------------------- */

/* Row r of res (JOB_COLUMNS first) as a job in *out, freed with
 * store_job_free.  0 or -1 (error set). */
int	pgs_job_from_row(struct store *, const PGresult *, int,
	    struct store_job **);
int	pgs_enqueue(struct store *, struct store_newjob *, size_t);
int	pgs_next_due(struct store *, const char *, int64_t *);
int	pgs_finish_done_typed(struct store *, const char *, int,
	    const void *, size_t, const char *, int64_t);
int	pgs_finish_failed_at(struct store *, const char *, int, const char *,
	    int, int64_t, int64_t, int64_t, int64_t, int, int, int *);
int	pgs_release(struct store *, const char *, int, const char *, int64_t);
int	pgs_extend(struct store *, const char *, int, int64_t);
int	pgs_requeue(struct store *, int64_t, int, store_requeue_fn, void *);

int	pgs_cancel(struct store *, const char *, int64_t);
int	pgs_retry(struct store *, const char *, int64_t);
int	pgs_retry_dead(struct store *, const char *, int64_t);
int	pgs_purge(struct store *, const char *, enum store_state, int64_t);
int	pgs_pause(struct store *, const char *, int);
int	pgs_paused(struct store *, const char *);
int	pgs_get(struct store *, const char *, struct store_job **);
int	pgs_states(struct store *, const char *const *, size_t,
	    enum store_state *);
int64_t	pgs_count_waiting(struct store *, const char *);
int	pgs_drain(struct store *, const char *, int64_t, int64_t, int64_t *,
	    int64_t *);
int	pgs_stats(struct store *, struct store_stat **, size_t *);
int	pgs_list(struct store *, const char *, enum store_state, int64_t,
	    store_list_fn, void *);
int	pgs_queue_head(struct store *, const char *, int64_t,
	    struct store_head *);
int	pgs_count_states(struct store *, store_count_fn, void *);
int	pgs_reject(struct store *, const struct store_rejected *, size_t);
int	pgs_rejected_list(struct store *, const char *, int64_t,
	    store_rejected_fn, void *);

/* --- schedules and dead letters (store-pg-sched.c) --------------------- */

/* pgs_enqueue inside the caller's open transaction (or batch), which it
 * joins instead of committing one of its own, as sq_enqueue_in. */
int	pgs_enqueue_in(struct store *, struct store_newjob *, size_t);
/* store_schedule_run's steps: BEGIN and the schedule's advisory lock;
 * whether a slot's key is stored; the last slot moved (never back). */
int	pgs_schedule_begin(struct store *, const char *);
int	pgs_schedule_key_taken(struct store *, const char *, const char *);
int	pgs_schedule_set_last(struct store *, const char *, int64_t);
int	pgs_schedule_last(struct store *, const char *, int64_t *);
/* Job id's dead letter, status URLs under prefix, inside the caller's
 * transaction (sq_dead_letter's PostgreSQL version).  0 or -1. */
int	pgs_dead_letter(struct store *, const char *id, const char *prefix);
/* --- flow control (store-pg-flow.c) ------------------------------------ */

/* The claim, serial keys held to one job at a time across helpers. */
int	pgs_claim(struct store *, const char *, int64_t, int64_t, int,
	    struct store_job **);
int	pgs_breaker_get(struct store *, const char *, struct store_breaker *);
int	pgs_breaker_set(struct store *, const char *,
	    const struct store_breaker *, int);
int	pgs_breakers(struct store *, store_breaker_fn, void *);
/* store-flow.c's: the event of queue's breaker that opened, into the
 * dead-letter queue (if any) in the caller's transaction.  0 or -1. */
int	sq_breaker_letter(struct store *, const char *,
	    const struct store_breaker *);

/* --- bulk changes (store-pg-bulk.c) ----------------------------------- */

/* store_bulk_count and store_bulk, states as ",a,b," (store-bulk.c). */
int64_t	pgs_bulk_count(struct store *, const struct store_filter *,
	    const char *);
int64_t	pgs_bulk(struct store *, enum store_bulk_op,
	    const struct store_filter *, const char *, int64_t, int,
	    store_bulk_fn, void *);

/* --- the dashboard (store-pg-dash.c) ---------------------------------- */

/* store-dash.c's functions. */
int	pgs_dash_list(struct store *, const struct store_dash_filter *,
	    store_dash_fn, void *);
int	pgs_dash_discard(struct store *, const char *);
int	pgs_dash_dead_batch(struct store *, const char *, int64_t, int, int,
	    int64_t);
int	pgs_dash_key(struct store *, unsigned char *, size_t);
/* Schema step 6 -> 7 (fcgiq_keys), inside migrate()'s transaction.  0 or
 * -1. */
int	pgs_dash_schema_v7(struct store *);

#endif /* FCGIQ_STORE_PG_H */
