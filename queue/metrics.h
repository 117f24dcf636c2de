/*
 * metrics: the installation's counters and histograms, shared by every
 * process of it (the responders of spawn-fcgi -F N, the helper, fcgiqctl)
 * through one file mapped with mmap: beside a SQLite database,
 * DATABASE-metrics; with PostgreSQL, the configuration's metrics_file (a
 * database on a server has no directory of ours, and each host's
 * processes count apart: Prometheus scrapes each host).  Each process owns one fixed-size slot of it and only ever adds to
 * its own slot with relaxed atomic adds: no lock, no system call on the
 * hot path, no allocation.  A scrape sums every slot.  A slot outlives its
 * process: the next process to start takes over a free slot (its owner
 * gone) and goes on adding to it, so the sums never go backwards while the
 * file exists.
 *
 * Label values are bounded: queues come from the configuration (at most
 * METRICS_MAX_QUEUES names, kept in the file's header so every process
 * gives a name the same index), HTTP codes from a fixed table.  No value a
 * job or a client carries is ever a label.
 *
 * Until metrics_open() (or when it fails) the counts go to a slot in the
 * process's own memory, so every call below is always safe.
 */
#ifndef FCGIQ_METRICS_H
#define FCGIQ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_QUEUES	32
#define METRICS_SLOTS		64	/* processes at once */
#define METRICS_NBUCKETS	12	/* finite buckets per histogram */
#define METRICS_QUEUE_NAME	64

/* The histograms' upper bounds (finite ones; +Inf follows). */
enum metrics_hist_kind {
	METRICS_H_FAST = 0,	/* seconds: intake, commit */
	METRICS_H_JOB,		/* seconds: a job's wait and run */
	METRICS_H_BATCH		/* jobs per commit */
};
extern const double metrics_bounds[3][METRICS_NBUCKETS];

/* One histogram: counts per bucket (not cumulative; the last is +Inf) and
 * the sum, in the kind's unit times 1e6 (microseconds for seconds). */
struct metrics_hist {
	uint64_t	b[METRICS_NBUCKETS + 1];
	uint64_t	sum;
};

/* How a job or an attempt ended (fcgiq_jobs_finished_total's outcome). */
enum metrics_outcome {
	METRICS_DONE = 0,	/* the handler succeeded */
	METRICS_FAILED,		/* an attempt failed, or its lease expired or
				   its helper went away; another will run */
	METRICS_DEAD,		/* no attempt will run any more (the last one
				   failed, expired or lost its helper) */
	METRICS_CANCELLED,	/* a waiting job was cancelled */
	METRICS_NOUTCOMES
};
extern const char *const metrics_outcome_names[METRICS_NOUTCOMES];

struct metrics_queue {
	uint64_t	enqueued;
	uint64_t	retried;
	uint64_t	verify_failures;
	uint64_t	finished[METRICS_NOUTCOMES];
	struct metrics_hist wait;	/* due -> started, seconds */
	struct metrics_hist run[3];	/* done, failed, dead: seconds */
};

/* The HTTP statuses counted one by one; any other is counted as "other". */
#define METRICS_NCODES	24
extern const int metrics_codes[METRICS_NCODES];	/* 0: the "other" entry */

/* One process's counts (and the sums of all of them). */
struct metrics_slot {
	int32_t		pid;		/* owner; 0: free */
	uint32_t	gen;		/* owners so far */
	uint64_t	http[METRICS_NCODES];
	struct metrics_hist intake;	/* request read -> 2xx written */
	struct metrics_hist commit;	/* one group commit, seconds */
	struct metrics_hist batch;	/* jobs per group commit */
	struct metrics_queue q[METRICS_MAX_QUEUES];
};

/*
 * The shared file of the PostgreSQL database (as the configuration names
 * it): path, absolute, that every process loading the configuration of
 * owner (its file's real path; NULL: the embedded one) names alike.  A
 * file made for another owner or database is refused, so two
 * installations of one host never add up each other's counts.  path NULL:
 * none (each process counts on its own).  0, or -1 when path is not
 * absolute or too long.
 */
int	metrics_set_file(const char *database, const char *path,
	    const char *owner);

/* The file metrics_set_file gave the PostgreSQL database, or NULL. */
const char *metrics_file_of(const char *database);

/*
 * Map the shared file (created when missing and create is set: fcgiq's
 * processes make it, with their owner; fcgiqctl only joins it) and take
 * a slot in it for this process.  0; or -1 with a message in err (counting goes on in the
 * process's own memory: nothing is shared, nothing fails).
 */
int	metrics_open(const char *database, int create, char *err,
	    size_t errlen);
/* Give the slot back (its counts stay for the next owner) and unmap. */
void	metrics_close(void);

/*
 * The index of queue name in the file's table, registering it when new;
 * -1 when the table is full (the queue is then not counted) or name is
 * too long.  A few comparisons: callers may call it per job.
 */
int	metrics_queue(const char *name);

void	metrics_http(int status);
void	metrics_intake(int64_t us);
void	metrics_commit(size_t jobs, int64_t us);
void	metrics_enqueued(const char *queue, uint64_t n);
void	metrics_retried(const char *queue, uint64_t n);
void	metrics_verify_failed(const char *queue);
/* A job that started wait_ms after it became due. */
void	metrics_started(const char *queue, int64_t wait_ms);
/* A job or attempt that ended with outcome; run_ms < 0: it did not run
 * (a cancel, a lease that expired). */
void	metrics_finished(const char *queue, enum metrics_outcome outcome,
	    int64_t run_ms);

/*
 * The sums of every slot of the file of database (mapped read-only when
 * this process has not opened it) into *out, and the queue names of the
 * table into names (n entries, "" where unused).  0, or -1 with a message
 * in err (no file yet is not an error: all zero; PostgreSQL without a
 * metrics_file: this process's own counts).
 */
int	metrics_sum(const char *database, struct metrics_slot *out,
	    char names[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], char *err,
	    size_t errlen);

/*
 * The jobs counted per queue and state (enum store_state order), shared
 * like the counters so that one process of the installation counts for
 * all.  Counting walks the indexes, O(jobs), so it is rare: beside each
 * count the counter sums below are kept (base), and a reader serves the
 * count moved on by what the counters did since (gauges.c), so fcgiq's
 * own transitions show at once.  A full count picks up what others
 * changed (fcgiqctl, the sqlite3 shell, pruning); it is due every
 * METRICS_COUNT_DUTY times its own cost and at most every
 * METRICS_COUNT_EVERY_MS, or, without a base (PostgreSQL, whose other
 * hosts' transitions are not in this host's file), every
 * METRICS_COUNT_DUTY_BARE times its cost and at most once a second; whichever process claims it first counts.  Indexed like the
 * queue table.
 */
#define METRICS_NSTATES		6
#define METRICS_COUNT_DUTY	100	/* 1 % of a core at most */
#define METRICS_COUNT_EVERY_MS	10000
#define METRICS_COUNT_DUTY_BARE	20

/* The counters a count's base holds, per queue. */
enum metrics_base_kind {
	METRICS_B_ENQUEUED = 0,
	METRICS_B_STARTED,	/* attempts started: the wait histogram's */
	METRICS_B_DONE,		/* finished, by outcome, as METRICS_DONE.. */
	METRICS_B_FAILED,
	METRICS_B_DEAD,
	METRICS_B_CANCELLED,
	METRICS_NBASE
};

struct metrics_counts {
	int64_t		at_ms;		/* wall clock when read; 0: never */
	int64_t		cost_ms;	/* how long the reading took */
	int64_t		has_base;	/* base below was read with n */
	int64_t		n[METRICS_MAX_QUEUES][METRICS_NSTATES];
	uint64_t	base[METRICS_MAX_QUEUES][METRICS_NBASE];
};

/* The base counters of one queue of a sum (metrics_sum) into b. */
void	metrics_base_of(const struct metrics_queue *q,
	    uint64_t b[METRICS_NBASE]);

/* The last counts into *out: 1, or 0 when there are none yet. */
int	metrics_counts_get(struct metrics_counts *out);
/*
 * 1 when the counts are due (see above; or marked stale) and this caller
 * has claimed the counting (for
 * a while: a claimant that dies is replaced); then it calls
 * metrics_counts_put, or metrics_counts_drop when it could not count.
 * 0: not due, or another process counts.
 */
int	metrics_counts_claim(int64_t now_ms);
void	metrics_counts_put(const struct metrics_counts *c);
void	metrics_counts_drop(void);
/* Make the counts due now (a reader found the counters behind the base:
 * the file was replaced, a count is no longer what they move on). */
void	metrics_counts_stale(void);

/*
 * Jobs enqueued, done and failed (an attempt that failed, dead included)
 * per queue and wall-clock minute, for the last METRICS_MINUTES minutes,
 * in the file's header: every process adds to the same minute, so one
 * read gives the installation's history (the dashboard's chart) without
 * a sampler that must have been running all along.  A minute's counts are
 * zeroed by the first process to count into it; counts made while another
 * zeroes it are dropped (a chart, not an account: the counters above are
 * the account).
 */
#define METRICS_MINUTES		64
enum { METRICS_M_ENQUEUED = 0, METRICS_M_DONE, METRICS_M_FAILED,
	METRICS_M_N };

struct metrics_minute {
	int64_t		minute;		/* wall ms / 60000; 0: no counts */
	uint64_t	n[METRICS_MAX_QUEUES][METRICS_M_N];
};

/* The minutes from now_ms's minute back, out[0] the current one, n at most
 * METRICS_MINUTES; a minute nobody counted in is all zero (with its
 * minute set).  Queue indexes as metrics_queue(). */
void	metrics_minutes(int64_t now_ms, struct metrics_minute *out, size_t n);

/* Bytes of shared state per process (one slot). */
size_t	metrics_slot_bytes(void);

#endif /* FCGIQ_METRICS_H */
