/*
 * helper: the process that runs the queue's jobs.
 *
 * Processes (supervisor.c) fork it, re-fork it and stop it; helper_main()
 * stands by in supervisor_lock() until it holds its database's helper
 * lock, so one helper per database is active.  On becoming active it
 * requeues every running job at once (their runner is gone; the attempt
 * counts), binds the wake-up socket, and runs the loop.
 *
 * The loop is single-threaded around poll(2): the parent pipe, a signalfd
 * (TERM, INT, HUP, CHLD), the wake-up socket (pushed by committers after
 * each COMMIT; a claim pass every SAFETY_POLL_MS is only the safety net),
 * and three pipes per running handler.  Timers (handler timeouts, kill
 * grace, lease extension, maintenance) use CLOCK_MONOTONIC; the store's
 * times are wall clock.  Children are reaped with waitid/waitpid in the
 * loop, never in a signal handler.  Each turn stores the reaped handlers'
 * outcomes and the claims of the places they free in one transaction
 * (record_and_claim); the claimed handlers start after its COMMIT.
 *
 * Invariants: a slot's job is running in the store under the slot's
 * attempt until the slot records an outcome (done, failed, released); a
 * slot is freed only once its handler is reaped and the outcome is stored
 * (or, at shutdown, given up on: the next helper's requeue_running then
 * takes the job back).  Each queue runs at most its concurrency at once,
 * counted by queue name across configuration reloads, so one slow queue
 * never takes another queue's slots.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "exec.h"
#include "helper.h"
#include "log.h"
#include "store.h"
#include "supervisor.h"
#include "wake.h"

#define SAFETY_POLL_MS		1000	/* claim pass without a wake-up */
#define KILL_GRACE_MS		2000	/* SIGTERM to SIGKILL */
#define LEASE_MARGIN_MS		30000	/* lease = timeout + kill grace + this */
#define MAINT_MS		5000	/* requeue_expired */
#define PRUNE_MS		60000	/* prune finished jobs */
#define STORE_RETRY_MS		1000	/* an outcome the store refused */
#define STOP_GIVEUP_MS		10000	/* past grace + kill: stop recording */

/* A configuration with the slots that still use it. */
struct cfgref {
	struct config	c;
	int		refs;
};

enum slot_end {
	END_NONE = 0,
	END_TIMEOUT,		/* killed: past the queue's timeout */
	END_STOP		/* killed: the helper is stopping */
};

/* What a slot's store call did, logged once its batch has committed. */
struct outcome {
	int		  stored;	/* in the open batch */
	int		  rc;		/* 1: recorded; 0: the lease was lost */
	int		  kind;		/* enum outcome_kind */
	int		  dead;
	int64_t		  ms;		/* the attempt's run time */
	char		  reason[128];
};

enum outcome_kind {
	OUT_DONE = 0,
	OUT_FAILED,
	OUT_RELEASED
};

struct slot {
	int		  used;
	struct cfgref	 *cfg;		/* the configuration it started under */
	const struct queue_conf *q;	/* in cfg */
	struct store_job *job;
	int		  attempt;
	pid_t		  pid;		/* also its process group; 0 once reaped */
	int		  status;	/* wait status once reaped */
	int		  fd_in, fd_out, fd_err;
	size_t		  in_off;
	struct exec_out	  out;
	struct exec_tail  err;
	int64_t		  started;	/* monotonic ms */
	int64_t		  deadline;	/* timeout */
	int64_t		  kill_at;	/* SIGKILL due; 0: none */
	int64_t		  extend_at;	/* next lease extension */
	int		  end;		/* enum slot_end */
	int		  reaped;
	int64_t		  retry_at;	/* outcome not stored yet; 0: not tried */
	struct outcome	  rec;		/* stored in the open batch */
};

struct helper {
	const char	*conf_path;
	struct cfgref	*cfg;
	char		*db;		/* the database path in use */
	struct store	*store;
	int		 lock_fd;
	int		 wake_fd;
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
	int		*pfd_tag;	/* slot index * 4 + which */
	size_t		 pfd_cap;
	struct claimed	*claimed;	/* claims of the open batch */
	size_t		 nclaimed, claimed_cap;
};

/* A job claimed in the open batch: its handler starts after the COMMIT. */
struct claimed {
	const struct queue_conf *q;
	struct store_job *job;
};

static void
fmt_duration(int64_t ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRId64 "ms", ms);
}

static void
close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* ---------------------------------------------------------------- config */

static struct cfgref *
cfg_load(const char *path)
{
	struct cfgref *r;
	char err[512];

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warnx("helper: config: out of memory");
		return NULL;
	}
	if (config_load(&r->c, path, err, sizeof(err)) == -1) {
		log_warnx("helper: config: %s", err);
		free(r);
		return NULL;
	}
	r->refs = 1;
	return r;
}

static void
cfg_put(struct cfgref *r)
{
	if (r != NULL && --r->refs == 0) {
		config_free(&r->c);
		free(r);
	}
}

static int
queue_runnable(const struct queue_conf *q)
{
	return q->handler_argv != NULL && q->handler_argv[0] != NULL &&
	    q->concurrency > 0;
}

static int64_t
lease_ms(const struct queue_conf *q)
{
	return q->timeout_ms + KILL_GRACE_MS + LEASE_MARGIN_MS;
}

static void
helper_reload(struct helper *h)
{
	struct cfgref *n;

	if ((n = cfg_load(h->conf_path)) == NULL) {
		log_warnx("helper: reload failed, keeping the old configuration");
		return;
	}
	if (h->db != NULL && strcmp(n->c.database, h->db) != 0)
		log_warnx("helper: database %s: changing it needs a restart; "
		    "still using %s", n->c.database, h->db);
	log_setlevel(n->c.log_level);
	cfg_put(h->cfg);
	h->cfg = n;
	h->claim_now = 1;
	log_info("helper: configuration reloaded");
}

/* ----------------------------------------------------------------- slots */

/*
 * Handlers of queue name that hold a place: running ones, and the claims
 * of the open batch; a slot whose outcome the batch stores no longer does.
 */
static size_t
queue_active(const struct helper *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].used && !h->slots[i].rec.stored &&
		    strcmp(h->slots[i].q->name, name) == 0)
			n++;
	for (i = 0; i < h->nclaimed; i++)
		if (strcmp(h->claimed[i].q->name, name) == 0)
			n++;
	return n;
}

static size_t
slots_active(const struct helper *h)
{
	size_t i, n = 0;

	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].used)
			n++;
	return n;
}

static struct slot *
slot_alloc(struct helper *h)
{
	struct slot *ns;
	size_t i, cap;

	for (i = 0; i < h->nslots; i++)
		if (!h->slots[i].used)
			goto found;
	cap = h->nslots ? h->nslots * 2 : 8;
	if ((ns = realloc(h->slots, cap * sizeof(*ns))) == NULL)
		return NULL;
	memset(ns + h->nslots, 0, (cap - h->nslots) * sizeof(*ns));
	h->slots = ns;
	i = h->nslots;
	h->nslots = cap;
found:
	memset(&h->slots[i], 0, sizeof(h->slots[i]));
	h->slots[i].fd_in = h->slots[i].fd_out = h->slots[i].fd_err = -1;
	return &h->slots[i];
}

static void
slot_free(struct slot *s)
{
	close_fd(&s->fd_in);
	close_fd(&s->fd_out);
	close_fd(&s->fd_err);
	exec_out_free(&s->out);
	store_job_free(s->job);
	cfg_put(s->cfg);
	memset(s, 0, sizeof(*s));
	s->fd_in = s->fd_out = s->fd_err = -1;
}

/* Record a failed attempt for a job that never got a slot's process. */
static void
fail_unstarted(struct helper *h, const struct queue_conf *q,
    struct store_job *job, const char *why)
{
	int dead = 0;

	if (store_finish_failed(h->store, job->id, job->attempts, why, 0,
	    q->backoff_min_ms, q->backoff_max_ms, store_now(), &dead) == -1)
		log_warnx("helper: job %s: finish: %s", job->id,
		    store_error(h->store));
	log_warnx("helper: job %s: %s", job->id, why);
}

/* Feed as much of the body as the pipe takes now; close stdin when done. */
static void
slot_write_in(struct slot *s)
{
	const char *body = s->job->body;
	ssize_t n;

	while (s->fd_in != -1 && s->in_off < s->job->body_len) {
		n = write(s->fd_in, body + s->in_off,
		    s->job->body_len - s->in_off);
		if (n > 0) {
			s->in_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EPIPE: the handler does not want (the rest of) its body. */
		break;
	}
	close_fd(&s->fd_in);
}

static void
slot_start(struct helper *h, const struct queue_conf *q, struct store_job *job)
{
	struct exec_limits limits = { q->rlimit_as, q->rlimit_cpu_s,
	    q->rlimit_nofile };
	struct exec_child child;
	struct slot *s;
	char **env, why[256];
	int64_t now;

	env = exec_env(job, h->cfg->c.handler_path);
	if (env == NULL) {
		fail_unstarted(h, q, job, "spawn: out of memory");
		store_job_free(job);
		return;
	}
	if (exec_spawn(q->handler_argv, env, &limits, &child) == -1) {
		snprintf(why, sizeof(why), "spawn %s: %s", q->handler_argv[0],
		    strerror(errno));
		exec_env_free(env);
		fail_unstarted(h, q, job, why);
		store_job_free(job);
		return;
	}
	exec_env_free(env);
	if ((s = slot_alloc(h)) == NULL) {
		/* Cannot track it: stop it, and let the lease bring the job
		 * back (the reaper finds no slot for this pid). */
		kill(-child.pid, SIGKILL);
		close(child.fd_in);
		close(child.fd_out);
		close(child.fd_err);
		log_warnx("helper: job %s: out of memory", job->id);
		store_job_free(job);
		return;
	}
	now = mono_ms();
	s->used = 1;
	s->cfg = h->cfg;
	h->cfg->refs++;
	s->q = q;
	s->job = job;
	s->attempt = job->attempts;
	s->pid = child.pid;
	s->fd_in = child.fd_in;
	s->fd_out = child.fd_out;
	s->fd_err = child.fd_err;
	s->out.max = q->max_result;
	s->started = now;
	s->deadline = now + q->timeout_ms;
	s->extend_at = now + lease_ms(q) / 2;
	log_debug("helper: job %s: attempt %d: started pid %ld", job->id,
	    s->attempt, (long)child.pid);
	slot_write_in(s);
}

/*
 * A handler's descendants that left its process group (setsid) and
 * outlived it are reparented to the helper (PR_SET_CHILD_SUBREAPER): kill
 * every child that is not a running handler, with its own group.  Once
 * dead they are reaped like any child.
 */
static void
kill_escapees(struct helper *h)
{
	char path[64], buf[4096], *p, *end;
	ssize_t n;
	size_t i;
	long pid;
	int fd, ours;

	(void)snprintf(path, sizeof(path), "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; (pid = strtol(p, &end, 10)) > 0 && end != p; p = end) {
		for (i = 0, ours = 0; i < h->nslots && !ours; i++)
			ours = h->slots[i].used && !h->slots[i].reaped &&
			    h->slots[i].pid == pid;
		if (ours)
			continue;
		log_warnx("helper: pid %ld outlived its handler: killed", pid);
		(void)kill(-(pid_t)pid, SIGKILL);
		(void)kill((pid_t)pid, SIGKILL);
	}
}

/* Reap every exited child; a handler's leftover group is killed first, and
 * then what escaped it. */
static void
reap(struct helper *h)
{
	siginfo_t si;
	size_t i;
	pid_t pid;
	int status, reaped = 0;

	for (;;) {
		memset(&si, 0, sizeof(si));
		/* Peek first: while the leader is a zombie its process
		 * group id cannot be reused, so killing the group is safe. */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
			break;
		if ((pid = si.si_pid) == 0)
			break;
		(void)kill(-pid, SIGKILL);
		if (waitpid(pid, &status, WNOHANG) != pid)
			break;
		reaped = 1;
		for (i = 0; i < h->nslots; i++) {
			struct slot *s = &h->slots[i];

			if (s->used && !s->reaped && s->pid == pid) {
				s->reaped = 1;
				s->status = status;
				break;
			}
		}
	}
	if (reaped)
		kill_escapees(h);
}

/*
 * Store the outcome of a reaped handler in the open batch, noting in
 * s->rec what to log once it commits.  0, or -1 when the store failed
 * (which dooms the batch).
 */
static int
slot_record(struct helper *h, struct slot *s)
{
	const struct queue_conf *q = s->q;
	struct outcome *o = &s->rec;
	const char *id = s->job->id;
	char status[64], dur[32], *text = NULL;
	int rc, permanent = 0, code = -1;

	memset(o, 0, sizeof(*o));
	o->ms = mono_ms() - s->started;
	exec_status_text(s->status, status, sizeof(status));
	if (WIFEXITED(s->status))
		code = WEXITSTATUS(s->status);

	if (s->end == END_STOP) {
		o->kind = OUT_RELEASED;
		snprintf(o->reason, sizeof(o->reason), "helper stopping (%s)",
		    status);
		text = exec_error_text(o->reason, &s->err);
		rc = store_release(h->store, id, s->attempt,
		    text ? text : o->reason, store_now());
	} else if (s->end == END_NONE && code == 0) {
		o->kind = OUT_DONE;
		rc = store_finish_done(h->store, id, s->attempt,
		    s->out.len ? s->out.buf : "", s->out.len, store_now());
	} else {
		o->kind = OUT_FAILED;
		if (s->end == END_TIMEOUT) {
			fmt_duration(q->timeout_ms, dur, sizeof(dur));
			snprintf(o->reason, sizeof(o->reason),
			    "timeout after %s", dur);
		} else if (code == 65) {
			snprintf(o->reason, sizeof(o->reason),
			    "%s (data error)", status);
			permanent = 1;
		} else if (code == 75)
			snprintf(o->reason, sizeof(o->reason),
			    "%s (temporary failure)", status);
		else
			snprintf(o->reason, sizeof(o->reason), "%s", status);
		text = exec_error_text(o->reason, &s->err);
		rc = store_finish_failed(h->store, id, s->attempt,
		    text ? text : o->reason, permanent, q->backoff_min_ms,
		    q->backoff_max_ms, store_now(), &o->dead);
	}
	free(text);
	if (rc == -1)
		return -1;
	o->stored = 1;
	o->rc = rc;
	return 0;
}

/* The log line of an outcome its batch committed. */
static void
slot_log_outcome(const struct slot *s)
{
	const struct outcome *o = &s->rec;
	const char *id = s->job->id;

	if (o->rc == 0) {
		log_warnx("helper: job %s: attempt %d: lease lost, outcome "
		    "dropped", id, s->attempt);
		return;
	}
	switch (o->kind) {
	case OUT_DONE:
		if (s->out.total > s->out.len)
			log_info("helper: job %s: result cut to %zu of %" PRIu64
			    " bytes", id, s->out.len, s->out.total);
		log_debug("helper: job %s: attempt %d: done in %" PRId64 " ms",
		    id, s->attempt, o->ms);
		break;
	case OUT_RELEASED:
		log_info("helper: job %s: attempt %d: released: %s", id,
		    s->attempt, o->reason);
		break;
	default:
		log_info("helper: job %s: attempt %d: %s: %s", id, s->attempt,
		    o->reason, o->dead ? "dead" : "will retry");
	}
}

/* A reaped handler: take what is left in its pipes and close them (called
 * again for an outcome not stored yet, it finds them closed). */
static void
slot_drain(struct slot *s)
{
	close_fd(&s->fd_in);
	/* Whatever it wrote before exiting is in the pipes; a grandchild
	 * that escaped its group may keep them open, and keep writing, so
	 * read once (a call's budget covers a full pipe, and bounds a writer
	 * that never stops) and close: never wait for an EOF. */
	if (s->fd_out != -1 && exec_out_read(s->fd_out, &s->out) == -1)
		log_warnx("helper: job %s: result: out of memory", s->job->id);
	if (s->fd_err != -1)
		(void)exec_tail_read(s->fd_err, &s->err);
	close_fd(&s->fd_out);
	close_fd(&s->fd_err);
}

/* A reaped handler whose outcome is to be stored now. */
static int
slot_due(const struct slot *s, int64_t now)
{
	return s->retry_at == 0 || now >= s->retry_at;
}

/* An outcome the store refused: try again later, or give up at shutdown. */
static void
slot_unrecorded(struct helper *h, struct slot *s, int64_t now)
{
	s->rec.stored = 0;
	if (h->stopping && now >= h->stop_deadline + STOP_GIVEUP_MS) {
		log_warnx("helper: job %s: giving up; the next helper requeues "
		    "it", s->job->id);
		slot_free(s);
		return;
	}
	s->retry_at = now + STORE_RETRY_MS;
}

static void
slot_kill(struct slot *s, int end, int64_t now)
{
	if (s->reaped)
		return;
	s->end = end;
	(void)kill(-s->pid, SIGTERM);
	s->kill_at = now + KILL_GRACE_MS;
}

static void
slot_timers(struct helper *h, struct slot *s, int64_t now)
{
	int rc;

	if (s->reaped)
		return;
	if (s->end == END_NONE && now >= s->deadline) {
		log_info("helper: job %s: attempt %d: timeout, stopping pid %ld",
		    s->job->id, s->attempt, (long)s->pid);
		slot_kill(s, END_TIMEOUT, now);
	}
	if (s->kill_at != 0 && now >= s->kill_at) {
		(void)kill(-s->pid, SIGKILL);
		s->kill_at = 0;
	}
	if (now >= s->extend_at) {
		int64_t ms = lease_ms(s->q);

		rc = store_extend(h->store, s->job->id, s->attempt,
		    store_now() + ms);
		if (rc == -1) {
			log_warnx("helper: job %s: extend lease: %s",
			    s->job->id, store_error(h->store));
			s->extend_at = now + STORE_RETRY_MS;
		} else {
			if (rc == 0)
				log_warnx("helper: job %s: attempt %d: lease "
				    "lost", s->job->id, s->attempt);
			s->extend_at = now + ms / 2;
		}
	}
}

/* ---------------------------------------------------------------- claims */

/*
 * Claim, in the open batch, what each runnable queue's free places take.
 * The next claim pass is due at the safety poll, or sooner when a queue's
 * next job is.  0, or -1 when the store failed (which dooms the batch).
 */
static int
claim_all(struct helper *h, int64_t now)
{
	const struct config *c = &h->cfg->c;
	struct store_job *job;
	int64_t next = now + SAFETY_POLL_MS, when, wall;
	size_t k, n = c->nqueues;
	int rc;

	for (k = 0; k < n; k++) {
		const struct queue_conf *q = &c->queues[(h->rr + k) % n];

		if (!queue_runnable(q))
			continue;
		while (queue_active(h, q->name) < (size_t)q->concurrency) {
			if (h->nclaimed == h->claimed_cap) {
				size_t cap = h->claimed_cap ?
				    h->claimed_cap * 2 : 8;
				struct claimed *nc;

				if ((nc = realloc(h->claimed,
				    cap * sizeof(*nc))) == NULL)
					break;	/* next pass */
				h->claimed = nc;
				h->claimed_cap = cap;
			}
			wall = store_now();
			rc = store_claim(h->store, q->name, wall, lease_ms(q),
			    &job);
			if (rc == -1) {
				log_warnx("helper: queue %s: claim: %s",
				    q->name, store_error(h->store));
				return -1;
			}
			if (rc == 0) {
				/* Sleep until its next job is due, if that
				 * comes before the safety poll. */
				rc = store_next_due(h->store, q->name, &when);
				if (rc == 1 && when > wall &&
				    now + (when - wall) < next)
					next = now + (when - wall);
				break;
			}
			h->claimed[h->nclaimed].q = q;
			h->claimed[h->nclaimed].job = job;
			h->nclaimed++;
		}
	}
	if (n > 0)
		h->rr = (h->rr + 1) % n;
	h->claim_at = next;
	return 0;
}

/*
 * One transaction for everything the store must hear this turn: the
 * outcomes of reaped handlers, then the claims their places (and any other
 * free ones) take.  One COMMIT instead of two per job, and the pages a
 * finish and the next claim share are written once.  Handlers start only
 * after the COMMIT, never inside it: the write lock would hold the
 * responder's commits up for the length of a spawn.  If anything fails,
 * the whole transaction is gone: outcomes are tried again, claims were
 * never made.
 */
static void
record_and_claim(struct helper *h, int64_t now)
{
	size_t i, nrec = 0;
	int failed = 0, begun = 0;

	for (i = 0; i < h->nslots; i++) {
		struct slot *s = &h->slots[i];

		if (s->used && s->reaped) {
			slot_drain(s);
			nrec += slot_due(s, now);
		}
	}
	/* Freed places are filled at once; otherwise claims wait for a
	 * wake-up or their time. */
	if (nrec == 0 && (h->stopping || (!h->claim_now && now < h->claim_at)))
		return;
	h->claim_now = 0;
	if (store_batch_begin(h->store) == -1) {
		log_warnx("helper: begin: %s", store_error(h->store));
		failed = 1;
	} else
		begun = 1;
	for (i = 0; i < h->nslots && !failed; i++) {
		struct slot *s = &h->slots[i];

		if (s->used && s->reaped && slot_due(s, now) &&
		    slot_record(h, s) == -1) {
			log_warnx("helper: job %s: recording the outcome: %s",
			    s->job->id, store_error(h->store));
			failed = 1;
		}
	}
	if (!failed && !h->stopping && claim_all(h, now) == -1)
		failed = 1;
	if (begun && store_batch_end(h->store) == -1 && !failed) {
		log_warnx("helper: commit: %s", store_error(h->store));
		failed = 1;
	}

	for (i = 0; i < h->nslots; i++) {
		struct slot *s = &h->slots[i];

		if (!s->used || !s->reaped)
			continue;
		if (failed && slot_due(s, now))
			slot_unrecorded(h, s, now);
		else if (!failed && s->rec.stored) {
			slot_log_outcome(s);
			slot_free(s);
		}
	}
	if (failed) {
		h->claim_at = now + STORE_RETRY_MS;
		for (i = 0; i < h->nclaimed; i++)
			store_job_free(h->claimed[i].job);
		h->nclaimed = 0;
		return;
	}
	/* slot_start may grow h->slots; the list is ours until then. */
	for (i = 0; i < h->nclaimed; i++)
		slot_start(h, h->claimed[i].q, h->claimed[i].job);
	h->nclaimed = 0;
}

static void
maintenance(struct helper *h, int64_t now)
{
	const struct config *c = &h->cfg->c;
	int64_t wall = store_now();
	size_t i;
	int n;

	if (now >= h->maint_at) {
		h->maint_at = now + MAINT_MS;
		n = store_requeue_expired(h->store, wall);
		if (n == -1)
			log_warnx("helper: requeue expired: %s",
			    store_error(h->store));
		else if (n > 0) {
			log_warnx("helper: %d job%s with an expired lease "
			    "requeued", n, n == 1 ? "" : "s");
			h->claim_now = 1;
		}
	}
	if (now >= h->prune_at) {
		h->prune_at = now + PRUNE_MS;
		for (i = 0; i < c->nqueues; i++) {
			n = store_prune(h->store, c->queues[i].name,
			    wall - c->queues[i].keep_done_ms);
			if (n == -1)
				log_warnx("helper: queue %s: prune: %s",
				    c->queues[i].name, store_error(h->store));
			else if (n > 0)
				log_debug("helper: queue %s: pruned %d",
				    c->queues[i].name, n);
		}
	}
}

/* ------------------------------------------------------------------ loop */

static void
stop_begin(struct helper *h, const char *why, int64_t now)
{
	char dur[32];

	/* A second request changes nothing: under systemd the whole cgroup
	 * gets SIGTERM at once (fcgiq, the supervisor that forwards it, and
	 * us), and the handlers must still get their grace period. */
	if (h->stopping)
		return;
	h->stopping = 1;
	h->stop_deadline = now + h->cfg->c.grace_ms;
	fmt_duration(h->cfg->c.grace_ms, dur, sizeof(dur));
	if (slots_active(h) > 0)
		log_info("helper: %s: stopping, %zu handler%s get %s", why,
		    slots_active(h), slots_active(h) == 1 ? "" : "s", dur);
	else
		log_info("helper: %s: stopping", why);
}

static int
pfd_add(struct helper *h, size_t *n, int fd, short events, int tag)
{
	if (*n == h->pfd_cap) {
		size_t cap = h->pfd_cap ? h->pfd_cap * 2 : 16;
		struct pollfd *np;
		int *nt;

		if ((np = realloc(h->pfd, cap * sizeof(*np))) == NULL)
			return -1;
		h->pfd = np;
		if ((nt = realloc(h->pfd_tag, cap * sizeof(*nt))) == NULL)
			return -1;
		h->pfd_tag = nt;
		h->pfd_cap = cap;
	}
	h->pfd[*n].fd = fd;
	h->pfd[*n].events = events;
	h->pfd[*n].revents = 0;
	h->pfd_tag[*n] = tag;
	(*n)++;
	return 0;
}

#define TAG_PARENT	(-1)
#define TAG_SIGNAL	(-2)
#define TAG_WAKE	(-3)

static void
min_at(int64_t *t, int64_t at)
{
	if (at != 0 && at < *t)
		*t = at;
}

static int
helper_loop(struct helper *h)
{
	size_t i, n;
	int64_t now, next;
	unsigned int sigs;
	int timeout, r;

	h->claim_now = 1;
	now = mono_ms();
	h->maint_at = now + MAINT_MS;
	h->prune_at = now;
	for (;;) {
		now = mono_ms();
		reap(h);
		for (i = 0; i < h->nslots; i++)
			if (h->slots[i].used && !h->slots[i].reaped)
				slot_timers(h, &h->slots[i], now);
		if (h->stopping) {
			if (!h->stop_killed && now >= h->stop_deadline) {
				h->stop_killed = 1;
				for (i = 0; i < h->nslots; i++)
					if (h->slots[i].used &&
					    !h->slots[i].reaped &&
					    h->slots[i].end == END_NONE)
						slot_kill(&h->slots[i],
						    END_STOP, now);
			}
		} else
			maintenance(h, now);
		record_and_claim(h, now);
		if (h->stopping && slots_active(h) == 0)
			return 0;

		n = 0;
		if (h->parent_fd != -1 &&
		    pfd_add(h, &n, h->parent_fd, POLLIN, TAG_PARENT) == -1)
			goto oom;
		if (pfd_add(h, &n, h->sig_fd, POLLIN, TAG_SIGNAL) == -1)
			goto oom;
		if (h->wake_fd != -1 &&
		    pfd_add(h, &n, h->wake_fd, POLLIN, TAG_WAKE) == -1)
			goto oom;
		next = now + 60000;
		if (!h->stopping) {
			min_at(&next, h->claim_at);
			min_at(&next, h->maint_at);
			min_at(&next, h->prune_at);
		} else if (!h->stop_killed)
			min_at(&next, h->stop_deadline);
		else
			min_at(&next, h->stop_deadline + STOP_GIVEUP_MS);
		for (i = 0; i < h->nslots; i++) {
			struct slot *s = &h->slots[i];

			if (!s->used)
				continue;
			if (s->reaped) {
				min_at(&next, s->retry_at);
				continue;
			}
			if (s->end == END_NONE)
				min_at(&next, s->deadline);
			min_at(&next, s->kill_at);
			min_at(&next, s->extend_at);
			if (s->fd_in != -1 && pfd_add(h, &n, s->fd_in,
			    POLLOUT, (int)i * 4 + 0) == -1)
				goto oom;
			if (s->fd_out != -1 && pfd_add(h, &n, s->fd_out,
			    POLLIN, (int)i * 4 + 1) == -1)
				goto oom;
			if (s->fd_err != -1 && pfd_add(h, &n, s->fd_err,
			    POLLIN, (int)i * 4 + 2) == -1)
				goto oom;
		}
		timeout = next <= now ? 0 : (int)(next - now);
		r = poll(h->pfd, n, timeout);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			log_warn("helper: poll");
			return 1;
		}
		if (r == 0)
			continue;
		now = mono_ms();
		for (i = 0; i < n; i++) {
			int tag = h->pfd_tag[i];
			struct slot *s;

			if (h->pfd[i].revents == 0)
				continue;
			if (tag == TAG_PARENT) {
				if (supervisor_parent_gone(h->parent_fd)) {
					close_fd(&h->parent_fd);
					stop_begin(h, "fcgiq went away", now);
				}
			} else if (tag == TAG_SIGNAL) {
				sigs = supervisor_sigread(h->sig_fd);
				if (sigs & SIGBIT(SIGHUP))
					helper_reload(h);
				if (sigs & SIGBIT(SIGTERM))
					stop_begin(h, "SIGTERM", now);
				if (sigs & SIGBIT(SIGINT))
					stop_begin(h, "SIGINT", now);
				/* SIGCHLD: reap() runs every turn. */
			} else if (tag == TAG_WAKE) {
				wake_drain(h->wake_fd);
				h->claim_now = 1;
			} else {
				s = &h->slots[tag / 4];
				switch (tag % 4) {
				case 0:
					if (h->pfd[i].revents &
					    (POLLERR | POLLHUP | POLLNVAL))
						close_fd(&s->fd_in);
					else
						slot_write_in(s);
					break;
				case 1:
					r = exec_out_read(s->fd_out, &s->out);
					if (r == -1)
						log_warnx("helper: job %s: "
						    "result: out of memory",
						    s->job->id);
					if (r != 0)
						close_fd(&s->fd_out);
					break;
				case 2:
					if (exec_tail_read(s->fd_err,
					    &s->err) != 0)
						close_fd(&s->fd_err);
					break;
				}
			}
		}
	}
oom:
	log_warnx("helper: out of memory");
	return 1;
}

/* supervisor_lock()'s reload hook: the database to wait for now. */
static const char *
standby_reload(void *arg)
{
	struct helper *h = arg;

	helper_reload(h);
	return h->cfg->c.database;
}

int
helper_main(const char *conf_path, int parent_fd)
{
	struct helper h;
	char err[512];
	struct store_opts so;
	int rc = 1, n;
	size_t i;

	memset(&h, 0, sizeof(h));
	h.conf_path = conf_path;
	h.lock_fd = h.wake_fd = h.sig_fd = -1;
	h.parent_fd = parent_fd;
	(void)prctl(PR_SET_NAME, "fcgiq-helper", 0, 0, 0);
	/* What escapes a handler's process group comes here when the
	 * handler is gone, to be killed (kill_escapees). */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1)
		log_warn("helper: PR_SET_CHILD_SUBREAPER");
	if (parent_fd != -1)
		(void)fcntl(parent_fd, F_SETFL,
		    fcntl(parent_fd, F_GETFL) | O_NONBLOCK);
	if ((h.sig_fd = supervisor_signals()) == -1) {
		log_warn("helper: signalfd");
		goto done;
	}
	if ((h.cfg = cfg_load(conf_path)) == NULL)
		goto done;
	log_setlevel(h.cfg->c.log_level);

	if ((n = supervisor_lock(h.cfg->c.database, h.sig_fd, h.parent_fd,
	    standby_reload, &h, &h.lock_fd, &h.db)) != 1) {
		rc = n == 0 ? 0 : 1;
		goto done;
	}
	log_info("helper: %s: active", h.db);

	/*
	 * The helper's own commits (claim, done, retry, dead) need not reach
	 * the disk before it goes on: execution is at-least-once, so losing
	 * the last of them to a power cut means a job runs again, never a job
	 * lost.  Acknowledged jobs keep their durability: the responder's
	 * commits stay FULL, and each of its fsyncs of the WAL takes the
	 * helper's earlier frames with it.  This halves the fsyncs per job
	 * (bench/exec.sh: 35 -> 71 jobs/s on a loaded box).
	 */
	memset(&so, 0, sizeof(so));
	so.durability = STORE_DURABILITY_NORMAL;
	so.busy_timeout_ms = h.cfg->c.busy_timeout_ms;
	if ((h.store = store_open(h.db, &so, err, sizeof(err))) == NULL) {
		log_warnx("helper: %s", err);
		goto done;
	}
	/* Wake-ups first, so that a commit racing the requeue below is not
	 * missed. */
	if ((h.wake_fd = wake_listen(h.db)) == -1) {
		char name[128];
		int saved = errno;

		if (wake_name(h.db, name, sizeof(name)) == -1)
			snprintf(name, sizeof(name), "?");
		errno = saved;
		log_warn("helper: %s: wake-up socket %s: cannot bind, so "
		    "nothing pushes jobs to this helper: they start up to "
		    "%d ms late", h.db, name, SAFETY_POLL_MS);
	}
	/* We hold the lock: whatever is running has lost its runner. */
	if ((n = store_requeue_running(h.store, store_now())) == -1) {
		log_warnx("helper: requeue running: %s", store_error(h.store));
		goto done;
	}
	if (n > 0)
		log_info("helper: %d interrupted job%s requeued", n,
		    n == 1 ? "" : "s");

	rc = helper_loop(&h);
	if (rc != 0) {
		/* Leaving on an error: stop the handlers we cannot watch;
		 * the next helper requeues their jobs. */
		for (i = 0; i < h.nslots; i++)
			if (h.slots[i].used && !h.slots[i].reaped)
				(void)kill(-h.slots[i].pid, SIGKILL);
	}
done:
	for (i = 0; i < h.nslots; i++)
		if (h.slots[i].used)
			slot_free(&h.slots[i]);
	free(h.slots);
	free(h.pfd);
	free(h.pfd_tag);
	free(h.claimed);
	close_fd(&h.wake_fd);
	if (h.store != NULL)
		store_close(h.store);
	close_fd(&h.lock_fd);
	close_fd(&h.sig_fd);
	cfg_put(h.cfg);
	free(h.db);
	return rc;
}
