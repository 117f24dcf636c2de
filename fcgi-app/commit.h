/*
 * commit: the group committer.  One thread owns the write connection;
 * request threads hand it a job, and either block until the transaction
 * that holds it (with every other job waiting at that moment) has
 * committed or failed, or go on and have a function of theirs called with
 * the result.
 */
#ifndef FCGIQ_COMMIT_H
#define FCGIQ_COMMIT_H

#include <stdint.h>

#include "store.h"

#define COMMIT_BATCH_MAX	256

enum commit_status {
	COMMIT_OK = 0,		/* committed: job.id and job.outcome are set */
	COMMIT_FULL,		/* the queue holds max_queued waiting jobs: 503 */
	COMMIT_FAILED,		/* the transaction failed, nothing stored: 503 */
	COMMIT_STOPPED		/* fcgiq is shutting down: 503 */
};

struct commit_result {
	int	status;		/* enum commit_status */
	int	errcode;	/* enum store_errcode, for COMMIT_FAILED */
	char	error[160];	/* for the log */
};

/*
 * Start the committer on store w and the queue counter on store r (a
 * read-only connection; both taken over: commit_stop closes them) for the
 * database at db (whose helper is woken after each commit).  0 or -1.
 */
int	commit_start(struct store *w, struct store *r, const char *db);

/*
 * Count queue's waiting jobs now, before the first request does: a first
 * count is read on the committer (its check needs it) and takes time in
 * proportion to the queue (about half a second at 10 M jobs).
 */
void	commit_prime(const char *queue);

/*
 * queue's waiting jobs as the max_queued check last knew them (this
 * process's commits included at once, others' at the next count), or -1
 * when this process has not counted that queue.  Takes a lock, no query.
 */
int64_t	commit_waiting(const char *queue);

/*
 * Enqueue job (inputs borrowed until the call returns) in the next group
 * commit, at most max_queued waiting jobs in its queue.  Blocks until the
 * COMMIT has returned; fills job->id, job->outcome and *res.
 */
void	commit_submit(struct store_newjob *job, int64_t max_queued,
	    struct commit_result *res);

/*
 * Like commit_submit, without waiting: fn(arg, job, res) is called once
 * the COMMIT has returned, from the committer thread (or at once, from
 * this one, when the committer is stopping or memory is short).  job (and
 * what it points to) must stay valid until then; fn owns it afterwards.
 */
typedef void (*commit_done_fn)(void *arg, struct store_newjob *job,
	    const struct commit_result *res);
void	commit_submit_async(struct store_newjob *job, int64_t max_queued,
	    commit_done_fn fn, void *arg);

/*
 * Keep a refused request (store_reject, row copied) for inspection: the
 * committer writes what is waiting at most every COMMIT_REJECT_MS, in a
 * transaction of its own, and what does not fit in the waiting room
 * (COMMIT_REJECT_MAX rows, COMMIT_REJECT_BYTES) is counted and dropped, so
 * a flood of bad requests costs good intake at most one fsync in ten
 * batches' time and holds a bounded amount of memory.  Never blocks.
 */
#define COMMIT_REJECT_MS	100
#define COMMIT_REJECT_MAX	256
#define COMMIT_REJECT_BYTES	(4 * 1024 * 1024)
void	commit_reject(const struct store_rejected *row);

/* Commit what is waiting (answering the asynchronous jobs), refuse what
 * comes later, stop the thread. */
void	commit_stop(void);

#endif /* FCGIQ_COMMIT_H */
