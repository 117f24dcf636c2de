/*
 * helper-internal.h: the helper's state, shared by its two halves and by
 * no one else.  helper.c is the process: configuration, the poll loop,
 * signals, stopping, helper_main().  helper-jobs.c is the jobs: the slot
 * table, starting and reaping handlers, their timers, and each turn's
 * transaction of outcomes and claims.
 */
#ifndef FCGIQ_HELPER_INTERNAL_H
#define FCGIQ_HELPER_INTERNAL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "flow.h"
#include "slot.h"
#include "store.h"
#include "wake.h"

#define SAFETY_POLL_MS		1000	/* claim pass without a wake-up */
#define MAINT_MS		5000	/* requeue_expired */
#define PRUNE_MS		60000	/* prune finished jobs */
#define STORE_RETRY_MS		1000	/* an outcome the store refused */
#define STOP_GIVEUP_MS		10000	/* past grace + kill: stop recording */

/* A queue's flow control in the helper (helper-flow.c), by name. */
struct flow_state {
	char		 name[64];
	struct flow_bucket bucket;
	struct flow_breaker br;
	char		 probe[STORE_ID_LEN + 1];	/* half-open's job */
	int64_t		 peek_at;	/* monotonic ms: next look at the
					 * stored breaker while closed */
};

/* What a poll entry is for: an fd of slot s (which: the kind's tag for
 * it), or, s NULL, one of the helper's own (which: a TAG_*). */
struct ptag {
	struct slot	*s;
	int		 which;
};

struct helper {
	const char	*conf_path;
	struct config_ref	*cfg;
	char		*db;		/* the database path in use */
	struct store	*store;
	int		 lock_fd;
	int		 wake_fd;
	struct wake_watchers watchers;	/* responders with waiting requests */
	int		 sig_fd;
	int		 parent_fd;
	struct slot	*slots;
	size_t		 nslots;
	size_t		 rr;		/* queue to claim from first */
	int		 stopping;
	int64_t		 stop_deadline;	/* grace ends: kill what runs */
	int		 stop_killed;
	int		 claim_now;
	int64_t		 claim_at;
	int64_t		 maint_at;
	int64_t		 prune_at;
	struct pollfd	*pfd;
	struct ptag	*ptag;
	size_t		 pfd_cap;
	struct http_multi *http;	/* http: jobs' transfers, or NULL */
	struct claimed	*claimed;	/* claims of the open batch */
	size_t		 nclaimed, claimed_cap;
	/* [schedule NAME] (helper-schedules.c): each one's next slot. */
	struct sched_state *sched;
	size_t		 nsched;
	const struct config_ref *sched_cfg;	/* what sched was built for */
	int64_t		 sched_since;	/* wall ms it was built */
	int64_t		 sched_due;	/* wall ms of the first next, 0: none */
	int64_t		 sched_at;	/* the same on the mono clock */
	struct flow_state *flows;	/* queues with flow state */
	size_t		 nflows, flows_cap;
};

/* A job claimed in the open batch: its handler starts after the COMMIT. */
struct claimed {
	const struct queue_conf *q;
	struct store_job *job;
};

/* ------------------------------------------------------- helper-jobs.c */

/* A transition the slot refused: a bug in the helper, logged, not fatal. */
void	 helper_refused(const struct slot *, const char *);
/* Slots that are not FREE. */
size_t	 helper_slots_active(const struct helper *);
/* The helper is leaving: kill what still runs, free the tables. */
void	 helper_slots_free(struct helper *);
/* Reap every exited child (and kill what escaped a handler's group). */
void	 helper_reap(struct helper *);
/* A running (or stopping) slot's timers: timeout, kill, lease. */
void	 helper_job_timers(struct helper *, struct slot *, int64_t);
/* This turn's transaction: due outcomes, then claims; start the claimed. */
void	 helper_record_and_claim(struct helper *, int64_t);
/* http: curl's timer when due; the slots whose transfer ended exit. */
void	 helper_http(struct helper *, int64_t);
/* Requeue expired leases and prune finished jobs, when each is due. */
void	 helper_maintenance(struct helper *, int64_t);
/* A store_requeue_fn: count what a requeue did to a queue's jobs (the
 * attempts it ended failed and retried, or dead) in the metrics. */
void	 helper_count_requeue(void *, const char *, int, int);

/* -------------------------------------------------- helper-schedules.c */

/* Enqueue the schedules' due slots (cheap when none is); sets sched_at. */
void	 helper_schedules(struct helper *, int64_t);
void	 helper_schedules_free(struct helper *);

/* ------------------------------------------------------- helper-flow.c */

/* May q start one more job at now (monotonic)?  1 yes; 0 no, *next
 * brought forward to when it may (a token, the breaker's half-open). */
int	 helper_flow_allow(struct helper *, const struct queue_conf *q,
	    int64_t now, int64_t *next);
/* job of q was claimed at now: a token taken; half-open, it probes. */
void	 helper_flow_started(struct helper *, const struct queue_conf *q,
	    const struct store_job *job, int64_t now);
/* A claim its batch lost (never made): a probe it was may be made again. */
void	 helper_flow_dropped(struct helper *, const struct store_job *job);
/* A recorded outcome (rc 1) for q's breaker; a transition is logged and
 * stored in the open batch. */
void	 helper_flow_outcome(struct helper *, const struct slot *);
/* 1 when q's retries hold every slot retry_concurrency lets them. */
int	 helper_flow_retries_full(const struct helper *,
	    const struct queue_conf *q);
/* A claimed job that crashed quarantine_after times is made dead in the
 * open batch: 1; 0 it may run; -1 the store failed. */
int	 helper_flow_quarantine(struct helper *, const struct queue_conf *q,
	    const struct store_job *job);
/* 1 when crashes reach q's quarantine_after (not 0). */
int	 flow_quarantined(const struct queue_conf *q, int crashes);
void	 helper_flow_free(struct helper *);

#endif
