/*
 * store: the job queue shared by the responder, the helper and fcgiqctl,
 * kept today in one SQLite database; nothing in this header names the
 * engine.  One struct store is one connection; never share one across
 * threads without a lock and never across fork().  Every function returns
 * -1 on a database error and keeps the message for store_error() and its
 * kind for store_errcode(); a failed call has changed nothing (each write
 * is one transaction).
 *
 * Times are integer milliseconds since the epoch.
 *
 * The life of a job, with the function that makes each transition:
 *
 *   store_enqueue
 *        |
 *        v                     store_cancel
 *     queued -------------------------------------------> cancelled
 *      |  ^                                                    ^
 *      |  |  store_release,                                    |
 *      |  |  store_requeue_expired,                            |
 *      |  |  store_requeue_running (attempts left)             |
 *      |  |                                                    |
 *      |  |              store_finish_failed                   |
 *      |  |        (attempts left, not permanent)              |
 *      v  |  -------------------------------------->           |
 *     running                                        retry ----+
 *      |  |  <--------------------------------------     store_cancel
 *      |  |                  store_claim
 *      |  |
 *      |  +------> dead    store_finish_failed (permanent or exhausted),
 *      |                   store_finish_crashed (quarantined),
 *      |                   store_requeue_expired, store_requeue_running
 *      |                   (attempts exhausted)
 *      v
 *     done         store_finish_done
 *
 *   queued -> running is store_claim, as is retry -> running.
 *   dead, cancelled, retry -> queued is an operator's store_retry or
 *   store_retry_dead.
 *
 *   store_extend moves a running job's lease forward; store_prune and
 *   store_purge delete done, dead and cancelled jobs that finished before
 *   a cutoff.
 *
 * The sections below follow the store's files:
 *   store.c          the connection, transactions and errors
 *   store-enqueue.c  new jobs and their ids
 *   store-jobs.c     a job's life after its enqueue: claim, finish,
 *                    release, extend, requeue
 *   store-admin.c    operator actions and reads: cancel, retry, purge,
 *                    pause, get, counts, stats, listing
 *   store-rejected.c requests refused at the door (a signature check),
 *                    kept for inspection, bounded per queue
 *   store-schedule.c the slots of recurring jobs, each enqueued once
 *   store-flow.c     each queue's circuit breaker (flow.h)
 * and, with no function of their own here:
 *   store-schema.c   the schema, its version and migrations
 *   store-sql.c      the text of the statements
 *   store-sqlite.h   the engine's internals, for those files and the tests
 */
#ifndef FCGIQ_STORE_H
#define FCGIQ_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * A job id, 30 characters of base64url's alphabet taken in ASCII order
 * ("-0-9A-Z_a-z"), so ids sort by the bits they carry:
 *   1 character   the creation time's (ms since the epoch) bits 42-46 as
 *                 the alphabet's 2nd to 33rd ('0' until 2109, a digit or
 *                 a capital until 6429), 7 characters its bits 0-41;
 *   22 characters a 10-bit sequence number, then 122 random bits.
 * The time prefix makes each new id land beside the last ones in the id
 * index: with random ids every job of a commit dirtied a page of its own
 * (most of the WAL frames written).  The sequence number keeps the ids one
 * store handle makes within a millisecond in creation order.  The first
 * character is a letter or digit, so an id is never read as an option
 * (grep, xargs, fcgiqctl).  Ids stored before stay valid: 30 characters
 * starting with '-' (the time in the first 8, 128 random bits after; every
 * new id sorts after them) and 22 characters (random alone, older still).
 */
#define STORE_ID_LEN		30
#define STORE_ID_LEN_V1		22

/*
 * The states of a job (the diagram above).  The database keeps them as
 * their names, store_state_name().
 */
enum store_state {
	STORE_JOB_ANY = -1,	/* a filter that takes every state */
	STORE_JOB_QUEUED = 0,
	STORE_JOB_RUNNING,
	STORE_JOB_RETRY,
	STORE_JOB_DONE,
	STORE_JOB_DEAD,
	STORE_JOB_CANCELLED
};

/* ---------------------------------------------------------------------- */
/* store.c: the connection, transactions and errors                       */
/* ---------------------------------------------------------------------- */

enum store_durability {
	STORE_DURABILITY_FULL = 0,	/* synchronous=FULL: survives power loss */
	STORE_DURABILITY_NORMAL		/* synchronous=NORMAL: survives crashes */
};

struct store_opts {
	int	durability;		/* enum store_durability */
	int	busy_timeout_ms;	/* 0 means the default, 5000 */
	int	readonly;		/* open read-only, no migration */
};

/*
 * What went wrong, as store_errcode() tells it: the kinds a caller answers
 * differently (a busy, full, read-only or failing database is no fault of
 * the job, so the responder answers 503 with Retry-After).
 */
enum store_errcode {
	STORE_OK = 0,
	STORE_EOTHER,		/* anything not below */
	STORE_EBUSY,		/* another connection holds the lock too long */
	STORE_EFULL,		/* the disk (or the database's limit) is full */
	STORE_EREADONLY,	/* the database or its directory cannot be written */
	STORE_EIO,		/* the file cannot be opened, read or written */
	STORE_ENOMEM,		/* out of memory */
	STORE_ECONSTRAINT,	/* a row broke a constraint of the schema */
	STORE_ENOTFOUND,	/* the database holds no fcgiq schema */
	STORE_EABORT,		/* a batch's transaction is gone; end it */
	STORE_EINVAL		/* the caller's mistake (bad argument) */
};

/*
 * Open (creating and migrating when needed) the database at path.  Returns
 * NULL on failure with a message in err.
 */
struct store	*store_open(const char *path, const struct store_opts *opts,
		    char *err, size_t errlen);
/*
 * Whether database names a PostgreSQL database (a postgresql:// or
 * postgres:// URI, or a libpq keyword string such as "host=/run/pg
 * dbname=fcgiq") rather than a SQLite file: store_open() connects to it,
 * and nothing is created or locked beside it on the local disk.
 */
int		 store_is_postgresql(const char *database);
void		 store_close(struct store *);
/* The message of the last error ("what: why"), owned by the store. */
const char	*store_error(struct store *);
/* The kind of the last error: enum store_errcode. */
int		 store_errcode(struct store *);

int64_t		 store_now(void);		/* wall clock, ms since the epoch */

/*
 * Tell SQLite that no connection of this process is used by two threads
 * at once, before the process's first store_open: no lock is then taken
 * around each call into a connection.  0, or -1 when it came too late
 * (SQLite is already started; it stays serialized, which is safe).
 */
int		 store_one_thread(void);

/*
 * One transaction around several of the calls below, as the helper makes
 * when it records its handlers' outcomes and claims their successors (one
 * commit, one set of page writes).  Between the two, the calls change
 * nothing for other connections; a call that fails dooms the batch, and
 * every later call fails too (STORE_EABORT).  store_batch_end commits: 0;
 * or -1 when it rolled all of it back, as if none of the calls had been
 * made.
 */
int	store_batch_begin(struct store *);
int	store_batch_end(struct store *);

/*
 * Wake-ups from other hosts (PostgreSQL's LISTEN/NOTIFY; SQLite has none:
 * its wake-ups are wake.c's).  Every committed enqueue notifies, once per
 * batch; store_listen subscribes this connection (again after each
 * reconnect).  store_listen_fd is the fd to poll now (-1: none; it can
 * change after a reconnect), store_listen_take 1 when a notification came
 * since the last call.  A hint only: the caller still looks now and then.
 */
int	store_listen(struct store *);
int	store_listen_fd(struct store *);
int	store_listen_take(struct store *);

/* ---------------------------------------------------------------------- */
/* store-enqueue.c: new jobs and their ids                                */
/* ---------------------------------------------------------------------- */

/* A job to enqueue.  Inputs are borrowed; id and outcome are filled in. */
enum store_enqueue_outcome {
	STORE_ENQ_NEW = 0,		/* stored as a new job */
	STORE_ENQ_DUPLICATE,		/* same idempotency key and body: id is the earlier job */
	STORE_ENQ_CONFLICT		/* same key, different body: nothing stored, id is the earlier job */
};

struct store_newjob {
	const char	*queue;
	int		 priority;	/* higher runs first */
	int		 max_attempts;	/* >= 1 */
	int64_t		 run_at;	/* 0: now */
	const char	*idempotency_key; /* NULL: none; unique per queue */
	/* Jobs of a queue with the same serial key run one at a time, in
	 * arrival order.  NULL: not serialized; "": the queue serializes
	 * but the request had no key: the job is its own key (stored as
	 * "unkeyed " and its id, which no key from a request can equal). */
	const char	*serial_key;
	const char	*method;
	const char	*request_uri;
	const char	*query_string;
	const char	*content_type;
	const char	*remote_addr;
	const char	*headers;	/* JSON object text, or NULL */
	const void	*body;
	size_t		 body_len;
	/* out */
	char		 id[STORE_ID_LEN + 1];
	int		 outcome;	/* enum store_enqueue_outcome */
};

/*
 * Enqueue n jobs in one transaction.  0: committed, each job's id and
 * outcome set.  -1: nothing stored, for any of the jobs.
 */
int	store_enqueue(struct store *, struct store_newjob *jobs, size_t n);

/*
 * The creation time an id carries (its first 8 characters, either layout
 * of 30 characters).  1: *ms set; 0: id has no time (22 characters, or not
 * an id).  Says nothing of whether such a job exists or ever did.
 */
int	store_id_time(const char *id, int64_t *ms);

/* ---------------------------------------------------------------------- */
/* store-jobs.c: a job's life after its enqueue                           */
/* ---------------------------------------------------------------------- */

/* A job read back from the database; free with store_job_free(). */
struct store_job {
	char		 id[STORE_ID_LEN + 1];
	char		*queue;
	enum store_state state;
	int		 priority;
	int		 attempts;	/* runs started; the running attempt's number */
	int		 max_attempts;
	int64_t		 created_at;
	int64_t		 run_at;
	int64_t		 started_at;	/* 0 when NULL, likewise below */
	int64_t		 finished_at;
	int64_t		 lease_until;
	char		*idempotency_key;	/* NULL when none; likewise the strings below */
	char		*method;
	char		*request_uri;
	char		*query_string;
	char		*content_type;
	char		*remote_addr;
	char		*headers;
	void		*body;
	size_t		 body_len;
	void		*result;	/* NULL when none */
	size_t		 result_len;
	char		*last_error;
	char		*result_type;	/* the result's media type, as its
					   handler named it; NULL: unnamed
					   (exec:) */
	int		 crashes;	/* runs that crashed (quarantine_after) */
};

/* The name of state ("queued", ...), or "?" for a value out of range. */
const char	*store_state_name(enum store_state state);
/* The state called name into *state: 0, or -1 for no such state. */
int		 store_state_parse(const char *name, enum store_state *state);

void	store_job_free(struct store_job *);

/*
 * Claim the next due job of queue (priority desc, run_at, arrival) under a
 * lease ending at now + lease_ms: state running, attempts + 1.
 * 1: claimed, *out set.  0: nothing due.  -1: error.
 */
int	store_claim(struct store *, const char *queue, int64_t now,
	    int64_t lease_ms, struct store_job **out);

/* Likewise, among the jobs that never ran (attempts 0): a queue's first
 * attempts, when its retries hold all the slots they may. */
int	store_claim_fresh(struct store *, const char *queue, int64_t now,
	    int64_t lease_ms, struct store_job **out);

/* Earliest run_at of a waiting job in queue.  1: *when set; 0: none; -1. */
int	store_next_due(struct store *, const char *queue, int64_t *when);

/*
 * The transitions of a running job name the attempt they finish (fencing).
 * 1: done.  0: lost lease (the job is no longer this attempt's; nothing
 * changed).  -1: error.
 */
int	store_finish_done(struct store *, const char *id, int attempt,
	    const void *result, size_t result_len, int64_t now);
/* Likewise, with the result's media type (NULL: none; exec: has none) in
 * jobs.result_type. */
int	store_finish_done_typed(struct store *, const char *id, int attempt,
	    const void *result, size_t result_len, const char *result_type,
	    int64_t now);
/*
 * A failed attempt: retry at now + backoff (exponential in the attempt,
 * full jitter, between backoff_min_ms and backoff_max_ms), or dead when
 * permanent or attempts are exhausted.  *dead (if not NULL) says which.
 */
int	store_finish_failed(struct store *, const char *id, int attempt,
	    const char *error, int permanent, int64_t backoff_min_ms,
	    int64_t backoff_max_ms, int64_t now, int *dead);
/* Likewise, retried at run_at when it is > 0 (an upstream's Retry-After,
 * which the caller has capped) instead of after the backoff. */
int	store_finish_failed_at(struct store *, const char *id, int attempt,
	    const char *error, int permanent, int64_t run_at,
	    int64_t backoff_min_ms, int64_t backoff_max_ms, int64_t now,
	    int *dead);
/*
 * Likewise for an attempt that crashed (its handler was killed by a
 * signal): one crash more for the job, and dead with last_error "crashed
 * N times" once its crashes reach quarantine (0: never), attempts left
 * or not; else retried after the backoff.
 */
int	store_finish_crashed(struct store *, const char *id, int attempt,
	    const char *error, int quarantine, int64_t backoff_min_ms,
	    int64_t backoff_max_ms, int64_t now, int *dead);
/* Give a running attempt back (shutdown): queued again at once, attempt counted. */
int	store_release(struct store *, const char *id, int attempt,
	    const char *reason, int64_t now);
/* Move a running attempt's lease to end at lease_until. */
int	store_extend(struct store *, const char *id, int attempt,
	    int64_t lease_until);

/*
 * What a requeue did to one queue's jobs: requeued will run again, dead
 * will not (their attempts are used up).
 */
typedef void	(*store_requeue_fn)(void *arg, const char *queue,
		    int requeued, int dead);

/*
 * Requeue running jobs whose lease ended before now (or every running job,
 * for a helper that has just become the only active one).  A job whose
 * attempts are exhausted goes dead instead.  When fn is not NULL it is
 * called after the commit once per queue touched (the counts read in the
 * same transaction as the change).  Returns how many, or -1.
 */
int	store_requeue_expired(struct store *, int64_t now, store_requeue_fn fn,
	    void *arg);
int	store_requeue_running(struct store *, int64_t now, store_requeue_fn fn,
	    void *arg);

/* ---------------------------------------------------------------------- */
/* store-admin.c: operator actions and reads                              */
/* ---------------------------------------------------------------------- */

/* Cancel a job that is not running: -1 error, 0 unknown id, 1 cancelled,
 * 2 not cancellable (running or finished). */
enum { STORE_CANCEL_UNKNOWN = 0, STORE_CANCEL_DONE = 1, STORE_CANCEL_REFUSED = 2 };
int	store_cancel(struct store *, const char *id, int64_t now);

/*
 * An operator's retry of a dead, cancelled or retry-waiting job: queued
 * from now with at least one attempt left.  -1 error, 0 unknown id,
 * 1 requeued, 2 refused (queued, running or done).
 */
enum { STORE_RETRY_UNKNOWN = 0, STORE_RETRY_DONE = 1, STORE_RETRY_REFUSED = 2 };
int	store_retry(struct store *, const char *id, int64_t now);
/* Every dead job of queue (NULL: all queues) likewise; how many, or -1. */
int	store_retry_dead(struct store *, const char *queue, int64_t now);

/* ---- store-bulk.c: an operator's change of many jobs, in batches ---- */

enum store_bulk_op {
	STORE_BULK_RETRY = 0,	/* as store_retry: queued from now */
	STORE_BULK_DISCARD,	/* deleted */
	STORE_BULK_CANCEL	/* as store_cancel: cancelled */
};

/* Which jobs: every condition set must hold. */
struct store_filter {
	const char	*queue;		/* NULL: any */
	unsigned	 states;	/* 1 << enum store_state; 0: the op's
					 * default (store_bulk_states) */
	int64_t		 since;		/* created_at >= since; 0: no bound */
	int64_t		 until;		/* created_at < until; 0: no bound */
	const char	*error;		/* last_error LIKE this; NULL: any */
};

/*
 * The states op applies to (retry: dead, cancelled, retry; discard: done,
 * dead, cancelled; cancel: queued, retry) as a mask of 1 << state, or,
 * when defaults is set, those it takes when the filter names none (retry
 * and discard: dead; cancel: queued and retry).
 */
unsigned store_bulk_states(enum store_bulk_op op, int defaults);

/* How many jobs f selects for op now, or -1 (a state op refuses too). */
int64_t	store_bulk_count(struct store *, enum store_bulk_op op,
	    const struct store_filter *f);

/* Jobs per transaction, at most: store_bulk makes batches smaller when
 * they hold the write lock longer than ~10 ms. */
#define STORE_BULK_BATCH	1000

/* Progress after each batch: done so far.  Non-zero stops the change. */
typedef int	(*store_bulk_fn)(void *arg, int64_t done);

/*
 * Apply op to the jobs f selects, in arrival order, at most batch of them
 * per transaction (the filter checked again for each row in it; fewer
 * when a batch holds the write lock too long), calling fn
 * (if not NULL) after each batch.  How many changed, or -1: the batch
 * that failed changed nothing, those before it stay done.
 */
int64_t	store_bulk(struct store *, enum store_bulk_op op,
	    const struct store_filter *f, int64_t now, int batch,
	    store_bulk_fn fn, void *arg);

/* Delete finished jobs (done, dead, cancelled) of queue (NULL: all)
 * finished before cutoff.  Returns how many, or -1. */
int	store_prune(struct store *, const char *queue, int64_t cutoff);
/* Like store_prune, for one state (done, dead or cancelled; STORE_JOB_ANY:
 * all three).  Returns how many, or -1. */
int	store_purge(struct store *, const char *queue, enum store_state state,
	    int64_t cutoff);

/*
 * Pause (paused = 1) or resume a queue.  A paused queue still takes jobs,
 * but store_claim and store_next_due see none of them.  0 or -1.
 */
int	store_pause(struct store *, const char *queue, int paused);
/* 1 paused, 0 not, -1 error. */
int	store_paused(struct store *, const char *queue);

/* 1: *out set; 0: no such id; -1: error. */
int	store_get(struct store *, const char *id, struct store_job **out);

/*
 * The states of n jobs, read in one transaction (one snapshot): out[i] is
 * ids[i]'s state, or STORE_JOB_ANY when there is no such job.  0 or -1.
 */
int	store_states(struct store *, const char *const *ids, size_t n,
	    enum store_state *out);

/* Jobs waiting (queued or retry) in queue, or -1. */
int64_t	store_count_waiting(struct store *, const char *queue);

/*
 * How fast queue drains: of its jobs that finished (done, dead or
 * cancelled) at or after since, the latest limit: *n how many and
 * *oldest the earliest finished_at among them (0 when none).  0 or -1.
 */
int	store_drain(struct store *, const char *queue, int64_t since,
	    int64_t limit, int64_t *n, int64_t *oldest);

struct store_stat {
	char		 queue[64];
	enum store_state state;
	int64_t		 count;
	int64_t		 oldest_created_at;	/* oldest job in this queue and state */
};

/* Counts per queue and state; *out is malloc'd, *n entries.  0 or -1. */
int	store_stats(struct store *, struct store_stat **out, size_t *n);

/* A job as store_list shows it: no body, no result. */
struct store_summary {
	const char	*id;
	const char	*queue;
	enum store_state state;
	int		 attempts;
	int		 max_attempts;
	int64_t		 created_at;
	int64_t		 body_len;
	const char	*last_error;	/* "" when none */
};
typedef void	(*store_list_fn)(void *arg, const struct store_summary *);

/*
 * Call fn for each of the newest limit jobs of queue (NULL: all queues) in
 * state (STORE_JOB_ANY: all), newest first.  The strings last only for the
 * call.  0 or -1.
 */
int	store_list(struct store *, const char *queue, enum store_state state,
	    int64_t limit, store_list_fn fn, void *arg);

/* ---------------------------------------------------------------------- */
/* store-dead.c: dead letters                                             */
/* ---------------------------------------------------------------------- */

/*
 * From now on, every job of another queue that turns dead on s enqueues,
 * in the same transaction, a JSON letter into queue ({"job", "queue",
 * "attempts", "last_error", "status_url": status_prefix + id}) with
 * max_attempts and priority.  queue NULL: no letters.  0 or -1.
 */
int	store_set_dead_letter(struct store *, const char *queue,
	    const char *status_prefix, int max_attempts, int priority);

/* ---------------------------------------------------------------------- */
/* store-flow.c: circuit breakers                                         */
/* ---------------------------------------------------------------------- */

/* A queue's breaker as the helper last wrote it (flow.h's states). */
struct store_breaker {
	int		 state;		/* 0 closed, 1 open, 2 half-open */
	int64_t		 open_until;	/* wall ms; 0 when closed */
	int		 failures;	/* failed attempts in a row */
	int64_t		 pause_ms;	/* the last pause */
	int64_t		 trips;		/* times it opened, ever */
};

/* queue's breaker into *b: 1, 0 when none was written (*b zero), -1. */
int	store_breaker_get(struct store *, const char *queue,
	    struct store_breaker *b);
/*
 * Write queue's breaker; opened: it has just opened, and the event goes
 * to the dead-letter queue (when one is set) in the same transaction.
 * 0 or -1.
 */
int	store_breaker_set(struct store *, const char *queue,
	    const struct store_breaker *b, int opened);
typedef void	(*store_breaker_fn)(void *arg, const char *queue,
		    const struct store_breaker *b);
/* Call fn for each queue whose breaker ever opened.  0 or -1. */
int	store_breakers(struct store *, store_breaker_fn fn, void *arg);

/* ---------------------------------------------------------------------- */
/* store-gauges.c: what the metrics read                                  */
/* ---------------------------------------------------------------------- */

/* A queue's head of line: the first job of each priority level in claim
 * order (at most 16 levels). */
struct store_head {
	int		 jobs;			/* heads found */
	int64_t		 oldest_created_at;	/* the oldest of them */
	int64_t		 oldest_due;		/* the earliest run_at <= now, 0: none */
};

/* The head of queue's line as of now: 1 set, 0 nothing waits, -1. */
int	store_queue_head(struct store *, const char *queue, int64_t now,
	    struct store_head *h);

typedef void	(*store_count_fn)(void *arg, const char *queue,
		    enum store_state state, int64_t count);
/*
 * Call fn with the number of jobs of each queue and state that has any,
 * read from the indexes alone where they suffice (waiting and running),
 * else one row per finished job: time in proportion to the jobs kept.
 * 0 or -1.
 */
int	store_count_states(struct store *, store_count_fn fn, void *arg);
/* The same, the counts of one snapshot, snapped(sarg) called the moment
 * it is taken (before any count is read).  0 or -1. */
int	store_count_states_snap(struct store *, void (*snapped)(void *),
	    void *sarg, store_count_fn fn, void *arg);

/* ---------------------------------------------------------------------- */
/* store-schedule.c: recurring jobs' slots                                */
/* ---------------------------------------------------------------------- */

/*
 * Called inside store_schedule_run's transaction with the schedule's last
 * slot (has 0: none stored yet): sets *jobs (the caller's memory; each
 * with its idempotency key) and *n, and moves *newlast forward when slots
 * were accounted for (it comes in as last, or INT64_MIN when none).  0, or
 * -1 (out of memory).
 */
typedef int	(*store_slots_fn)(void *arg, int has, int64_t last,
		    struct store_newjob **jobs, size_t *n, int64_t *newlast);

/*
 * In one transaction: read schedule name's last slot, insert the jobs fn
 * gives (those whose queue already holds their key are skipped), store
 * the new last slot.  *enqueued: jobs inserted.  0 or -1.
 */
int	store_schedule_run(struct store *, const char *name,
	    store_slots_fn fn, void *arg, int *enqueued);
/* The last slot enqueued for name: 1 *last set, 0 none, -1 error. */
int	store_schedule_last(struct store *, const char *name, int64_t *last);

/* ---------------------------------------------------------------------- */
/* store-rejected.c: requests refused at the door                         */
/* ---------------------------------------------------------------------- */

/* One refused request (table rejected).  Inputs borrowed. */
struct store_rejected {
	int64_t		 seq;		/* out (store_rejected_list) */
	int64_t		 at;		/* ms since the epoch */
	const char	*queue;
	const char	*reason;
	const char	*remote_addr;	/* NULL: unknown; likewise below */
	const char	*method;
	const char	*request_uri;
	const char	*headers;	/* JSON object text */
	int64_t		 body_length;	/* the whole body's */
	const void	*body_head;	/* its first bytes (at most 1 KiB) */
	size_t		 head_len;
	int		 keep;		/* rows its queue keeps (store_reject) */
};

#define STORE_REJECTED_HEAD	1024	/* bytes of a body kept */

/*
 * Store rows[0..n) in one transaction, and in it delete the oldest rows
 * of each of their queues past that queue's keep, so a flood can never
 * hold more than keep rows of a queue.  0, or -1 (nothing stored).
 */
int	store_reject(struct store *, const struct store_rejected *rows,
	    size_t n);

typedef void	(*store_rejected_fn)(void *arg, const struct store_rejected *);

/*
 * Call fn for each of the newest limit rejected requests of queue (NULL:
 * all queues), newest first; the strings last only for the call.  0 or
 * -1.
 */
int	store_rejected_list(struct store *, const char *queue, int64_t limit,
	    store_rejected_fn fn, void *arg);

/* ---------------------------------------------------------------------- */
/* store-dash.c: the dashboard's listings and dead-job actions            */
/* ---------------------------------------------------------------------- */

/* Index entries a listing looks at, at most, whatever it finds. */
#define STORE_DASH_BUDGET	10000

struct store_dash_filter {
	const char	*queue;		/* NULL: every queue */
	enum store_state state;		/* STORE_JOB_ANY: every state */
	int64_t		 before;	/* > 0: only jobs created (finished, for
					   done, dead, cancelled) at or before */
	int64_t		 offset;
	int64_t		 limit;
};

/* A job as a listing shows it; the strings last only for the call. */
struct store_dash_row {
	const char	*id;
	const char	*queue;
	enum store_state state;
	int		 attempts;
	int		 max_attempts;
	int64_t		 created_at;
	int64_t		 run_at;
	int64_t		 finished_at;	/* 0: not finished */
	int64_t		 body_len;
	const char	*last_error;	/* "" when none */
};
typedef void	(*store_dash_fn)(void *arg, const struct store_dash_row *);

/*
 * Call fn for the jobs matching f among the first STORE_DASH_BUDGET
 * entries of the index of f's state (waiting: claim order; running: by
 * lease; done, cancelled: newest finished first; dead: newest death
 * first; any: newest first), skipping f->offset, at most f->limit.
 * Returns how many, or -1.
 */
int	store_dash_list(struct store *, const struct store_dash_filter *f,
	    store_dash_fn fn, void *arg);

/* Delete a dead job: -1 error, 0 unknown id, 1 deleted, 2 not dead. */
int	store_dash_discard(struct store *, const char *id);

/*
 * Retry (as store_retry) or, when discard, delete at most n dead jobs of
 * queue (NULL: every queue) that died at or before before, in one short
 * transaction of their own.  Returns how many, or -1.  Call it again
 * until it returns less than n.
 */
int	store_dash_dead_batch(struct store *, const char *queue,
	    int64_t before, int discard, int n, int64_t now);

/*
 * The installation's dashboard key, len bytes (at most 64) into key: made
 * by the first process that asks and kept in the database, so every
 * process on every host makes and accepts the same action token.  0, or
 * -1.  PostgreSQL only: a SQLite installation keeps its key in a file
 * beside the database (dashboard.c), and this answers -1.
 */
int	store_dash_key(struct store *, unsigned char *key, size_t len);

#endif /* FCGIQ_STORE_H */
