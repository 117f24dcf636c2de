/*
 * slot: one job's place in the helper while its handler runs, and the life
 * of that place as an explicit state machine.  The machine knows nothing of
 * processes or sockets: what a handler kind does (exec: a process group and
 * three pipes; later kinds: a request in flight to an upstream, with no
 * process of its own) sits behind struct slot_kind.  Each transition checks
 * the state it expects and refuses (-1, the slot unchanged) any other.
 *
 *            slot_start           slot_stop (timeout, or
 *   FREE -------------> RUNNING ------------> STOPPING <--+  shutdown)
 *    ^                     |                     |  |     |
 *    |                     | slot_exited         |  +-----+ slot_kill
 *    |                     v                     |          (kill due)
 *    |                  EXITED <-----------------+ slot_exited
 *    |                     | slot_drained (the kind takes what its
 *    | slot_abandon        v   output still holds, and closes it)
 *    +----------------- FINISHED <-----------+
 *    |   (also from        | slot_recorded   | slot_unrecorded (the store
 *    |    RECORDED)        v                 |   refused, or its batch
 *    +----------------- RECORDED ------------+   failed)
 *      slot_committed
 *
 * slot_free() returns a slot in any state to FREE, releasing what it holds
 * and killing a handler still running (the helper's teardown).  A slot
 * holds its job, and its configuration through ref/unref, from slot_start
 * until it is FREE again.
 */
#ifndef FCGIQ_SLOT_H
#define FCGIQ_SLOT_H

#include <sys/types.h>

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "upstream.h"

struct queue_conf;
struct slot;
struct store_job;

#define SLOT_KILL_GRACE_MS	2000	/* stop() to kill() */
#define SLOT_LEASE_MARGIN_MS	30000	/* lease: timeout + kill grace + this */
#define SLOT_MAXFD		3	/* fds a kind polls at most */

enum slot_state {
	SLOT_FREE = 0,		/* no job */
	SLOT_RUNNING,		/* the handler runs; its timeout is ahead */
	SLOT_STOPPING,		/* stop() sent; kill() due at kill_at */
	SLOT_EXITED,		/* ended; its output may still hold data */
	SLOT_FINISHED,		/* outcome known, to be stored at retry_at */
	SLOT_RECORDED		/* outcome stored in the open batch */
};

/* Why a slot was stopped. */
enum slot_stop {
	SLOT_STOP_NONE = 0,
	SLOT_STOP_TIMEOUT,	/* past the queue's timeout */
	SLOT_STOP_SHUTDOWN	/* the helper is stopping */
};

enum slot_result {
	SLOT_DONE = 0,		/* store_finish_done */
	SLOT_FAILED,		/* store_finish_failed */
	SLOT_RELEASED		/* store_release: not the job's fault */
};

/* What a finished slot stores, and what its log line says once the batch
 * that stored it has committed. */
struct slot_outcome {
	enum slot_result result;
	int		 permanent;	/* failed: no retry (exit 65, 404) */
	int		 crashed;	/* failed: killed by a signal that was
					 * not the helper's (quarantine_after) */
	int64_t		 run_at;	/* failed: next run (wall ms); 0:
					 * after the backoff */
	int64_t		 ms;		/* the attempt's run time */
	char		 reason[128];
	int		 rc;		/* 1: recorded, 0: the lease was lost */
	int		 dead;		/* recorded: failed for good */
};

/*
 * What a handler kind does for the state machine.  poll() fills at most
 * SLOT_MAXFD entries (fd, events) and a tag each for ready(), returns how
 * many; ready() and drain() return -1 when the result could not be kept
 * (out of memory), else 0.  started() runs when the slot takes the job
 * (exec: feed it the body).  stop() asks the handler to end, kill() ends it;
 * neither waits.  A kind with no process to wait for calls slot_exited()
 * itself when its handler is over, from ready(), and also from started()
 * (the upstream cannot be reached) or stop() (the request is aborted).  drain() runs once after the end: it takes what the
 * output still holds without waiting, and closes it.  close() releases
 * whatever the kind still holds.  describe() names the handler for a log
 * line ("pid 42").
 */
struct slot_kind {
	const char	*name;
	void		 (*started)(struct slot *);
	int		 (*poll)(struct slot *, struct pollfd *, int *which);
	int		 (*ready)(struct slot *, int which, short revents);
	void		 (*stop)(struct slot *);
	void		 (*kill)(struct slot *);
	int		 (*drain)(struct slot *);
	void		 (*close)(struct slot *);
	void		 (*describe)(const struct slot *, char *, size_t);
};

/* The exec kind's part of a slot (exec.c). */
struct slot_exec {
	pid_t		 pid;		/* also its process group */
	int		 fd_in, fd_out, fd_err;
	size_t		 in_off;	/* body bytes written */
};

/* The http kind's part of a slot (http.c): its transfer. */
struct slot_http {
	struct http_xfer *x;
};

/* The fastcgi: kind's part of a slot (fcgi.c). */
struct fcgi_pool;
struct slot_fcgi {
	struct fcgi_pool *pool;		/* the upstream (its kept connections) */
	int		 fd;		/* -1: none */
	int		 phase;		/* fcgi.c's enum */
	int		 reused;	/* fd was a kept connection */
	int		 fresh_retry;	/* a kept one failed: reconnected once */
	int		 got;		/* bytes of the answer were read */
	struct buf	 req;		/* the whole request's records */
	size_t		 req_off;	/* bytes of it sent */
	unsigned char	 hdr[8];	/* the record header being read */
	size_t		 hlen;
	int		 rtype;		/* the record being read */
	size_t		 cleft, pleft;	/* its content, padding left */
	unsigned char	 end[8];	/* FCGI_END_REQUEST's body */
	size_t		 elen;
	struct buf	 head;		/* CGI headers, until the blank line */
	int		 in_body;
	int		 status;	/* Status:, 0 when none */
	int		 location;	/* a Location: header */
	uint64_t	 total;		/* answer bytes read */
	char		 retry_after[64];
};

struct slot {
	enum slot_state	  state;
	const struct slot_kind *kind;
	const struct queue_conf *q;
	struct store_job *job;
	int		  attempt;
	void		 *ref;		/* keeps q valid; unref(ref) at FREE */
	void		 (*unref)(void *);
	int64_t		  started;	/* monotonic ms */
	int64_t		  deadline;	/* RUNNING: the timeout */
	int64_t		  kill_at;	/* STOPPING: kill() due; 0: sent */
	int64_t		  extend_at;	/* next lease extension (helper) */
	int64_t		  retry_at;	/* FINISHED: store it then; 0: now */
	enum slot_stop	  stop;
	int		  code;		/* exit code, or -1 (a signal) */
	char		  status[64];	/* "exit 3", "killed by signal 9" */
	struct exec_out	  out;		/* stdout, bounded by max_result */
	struct exec_tail  err;		/* the tail of stderr (an upstream's
					 * FCGI_STDERR, or answer body) */
	struct upstream_answer up;	/* upstream kinds: their verdict */
	struct slot_outcome rec;
	union {				/* the kind's part: one member a kind */
		struct slot_exec exec;
		struct slot_http http;
		struct slot_fcgi fcgi;
	} u;
};

/* "running", "stopping", ... for a log line. */
const char	*slot_state_name(enum slot_state state);

/* The lease a claim of q takes, and each extension renews. */
int64_t	 slot_lease_ms(const struct queue_conf *q);

/*
 * FREE -> RUNNING: s (whose kind has already started the handler and set
 * s->kind and s->u) now holds job, claimed from q, as of now.  The slot
 * owns job from here; ref (unref'd when the slot is freed) keeps q valid.
 */
int	 slot_start(struct slot *s, const struct queue_conf *q,
	    struct store_job *job, void *ref, void (*unref)(void *),
	    int64_t now);

/* RUNNING: the poll entries of its output, at most SLOT_MAXFD; and one of
 * them ready (-1: its result could not be kept). */
int	 slot_poll(struct slot *s, struct pollfd *pfd, int *which);
int	 slot_ready(struct slot *s, int which, short revents);

/* The timeout, due at s->deadline, if RUNNING. */
int	 slot_timed_out(const struct slot *s, int64_t now);

/* RUNNING -> STOPPING: ask the handler to end; kill() is due in the grace. */
int	 slot_stop(struct slot *s, enum slot_stop why, int64_t now);

/* STOPPING, kill() due: end the handler now (kill_at becomes 0). */
int	 slot_kill(struct slot *s);

/* RUNNING or STOPPING -> EXITED: the handler ended with code (-1: none)
 * and status, the text for a reason. */
int	 slot_exited(struct slot *s, int code, const char *status);

/* EXITED -> FINISHED: take what the output still holds.  0, 1: the result
 * could not be kept (out of memory), -1: refused. */
int	 slot_drained(struct slot *s);

/* FINISHED (or RECORDED, whose batch failed): its outcome is to be stored
 * now. */
int	 slot_due(const struct slot *s, int64_t now);

/* FINISHED: fill s->rec with what to store, as of now. */
int	 slot_outcome(struct slot *s, int64_t now);

/* FINISHED -> RECORDED: the store took the outcome in the open batch; rc
 * and dead are its answers. */
int	 slot_recorded(struct slot *s, int rc, int dead);

/* FINISHED or RECORDED -> FINISHED: not stored; try again at retry_at. */
int	 slot_unrecorded(struct slot *s, int64_t retry_at);

/* RECORDED -> FREE: its batch committed. */
int	 slot_committed(struct slot *s);

/* FINISHED or RECORDED -> FREE: given up on (shutdown); the next helper's
 * requeue takes the job back. */
int	 slot_abandon(struct slot *s);

/* Any state -> FREE: kill() a handler still running, close what the kind
 * holds, free the job, unref. */
void	 slot_free(struct slot *s);

#endif /* FCGIQ_SLOT_H */
