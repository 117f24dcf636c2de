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
 * and the fds of each running handler (an exec handler's three pipes).
 * Each running job has a slot, whose life is the state machine of slot.c;
 * what a handler kind does (exec.c: fork, signal the process group, read
 * its pipes) sits behind the slot's kind.  Timers (handler timeouts, kill
 * grace, lease extension, maintenance) use CLOCK_MONOTONIC; the store's
 * times are wall clock.  Children are reaped with waitid/waitpid in the
 * loop, never in a signal handler.  Each turn stores the finished
 * handlers' outcomes and the claims of the places they free in one
 * transaction (record_and_claim); the claimed handlers start after its
 * COMMIT.
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

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "exec.h"
#include "fd.h"
#include "helper.h"
#include "log.h"
#include "slot.h"
#include "store.h"
#include "supervisor.h"
#include "wake.h"

#define SAFETY_POLL_MS		1000	/* claim pass without a wake-up */
#define MAINT_MS		5000	/* requeue_expired */
#define PRUNE_MS		60000	/* prune finished jobs */
#define STORE_RETRY_MS		1000	/* an outcome the store refused */
#define STOP_GIVEUP_MS		10000	/* past grace + kill: stop recording */

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
	struct claimed	*claimed;	/* claims of the open batch */
	size_t		 nclaimed, claimed_cap;
};

/* A job claimed in the open batch: its handler starts after the COMMIT. */
struct claimed {
	const struct queue_conf *q;
	struct store_job *job;
};

/* ---------------------------------------------------------------- config */

/* The configuration at path, held once (by the helper), or NULL. */
static struct config_ref *
cfg_load(const char *path)
{
	struct config c;
	struct config_ref *r;
	char err[512];

	if (config_load(&c, path, err, sizeof(err)) == -1) {
		log_warnx("helper: config: %s", err);
		return NULL;
	}
	if ((r = config_ref_new(&c)) == NULL) {
		config_free(&c);
		log_warnx("helper: config: out of memory");
	}
	return r;
}

static int
queue_runnable(const struct queue_conf *q)
{
	return q->handler_argv != NULL && q->handler_argv[0] != NULL &&
	    q->concurrency > 0;
}

/* A slot's hold on the configuration it started under. */
static void
cfg_unref(void *r)
{
	config_unref(r);
}

static void
helper_reload(struct helper *h)
{
	struct config_ref *n;

	if ((n = cfg_load(h->conf_path)) == NULL) {
		log_warnx("helper: reload failed, keeping the old configuration");
		return;
	}
	if (h->db != NULL && strcmp(n->c.database, h->db) != 0)
		log_warnx("helper: database %s: changing it needs a restart; "
		    "still using %s", n->c.database, h->db);
	log_setlevel(n->c.log_level);
	config_unref(h->cfg);
	h->cfg = n;
	h->claim_now = 1;
	log_info("helper: configuration reloaded");
}

/* ----------------------------------------------------------------- slots */

/* A transition the slot refused: a bug in the helper, logged, not fatal. */
static void
refused(const struct slot *s, const char *event)
{
	log_warnx("helper: job %s: slot: %s refused while %s",
	    s->job != NULL ? s->job->id : "-", event,
	    slot_state_name(s->state));
}

/*
 * Handlers of queue name that hold a place: running ones, and the claims
 * of the open batch; a slot whose outcome the batch stores no longer does.
 */
static size_t
queue_active(const struct helper *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].state != SLOT_FREE &&
		    h->slots[i].state != SLOT_RECORDED &&
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
		if (h->slots[i].state != SLOT_FREE)
			n++;
	return n;
}

/* A FREE slot, the table grown if need be (which moves every slot). */
static struct slot *
slots_alloc(struct helper *h)
{
	size_t i, cap;

	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].state == SLOT_FREE)
			return &h->slots[i];
	cap = h->nslots;
	if (array_grow(&h->slots, &cap, cap + 1, sizeof(*h->slots), 8) == -1)
		return NULL;
	memset(h->slots + h->nslots, 0, (cap - h->nslots) * sizeof(*h->slots));
	i = h->nslots;
	h->nslots = cap;
	return &h->slots[i];
}

/* The helper is leaving: slot_free kills what still runs (the next helper
 * requeues those jobs). */
static void
slots_free_all(struct helper *h)
{
	size_t i;

	for (i = 0; i < h->nslots; i++)
		slot_free(&h->slots[i]);
	free(h->slots);
	free(h->pfd);
	free(h->ptag);
	free(h->claimed);
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

/* Start job's handler in a free slot; a failure to start is its outcome. */
static void
job_start(struct helper *h, const struct queue_conf *q, struct store_job *job)
{
	struct exec_limits limits = { q->rlimit_as, q->rlimit_cpu_s,
	    q->rlimit_nofile };
	struct slot *s;
	char **env, why[256], who[32];

	if ((s = slots_alloc(h)) == NULL) {
		/* The lease brings the job back. */
		log_warnx("helper: job %s: out of memory", job->id);
		store_job_free(job);
		return;
	}
	if ((env = exec_env(job, h->cfg->c.handler_path)) == NULL) {
		fail_unstarted(h, q, job, "spawn: out of memory");
		store_job_free(job);
		return;
	}
	if (exec_slot_spawn(s, q->handler_argv, env, &limits) == -1) {
		snprintf(why, sizeof(why), "spawn %s: %s", q->handler_argv[0],
		    strerror(errno));
		exec_env_free(env);
		fail_unstarted(h, q, job, why);
		store_job_free(job);
		return;
	}
	exec_env_free(env);
	(void)config_ref(h->cfg);
	if (slot_start(s, q, job, h->cfg, cfg_unref, mono_ms()) == -1) {
		/* Not reached: s is free and has its kind. */
		refused(s, "start");
		return;
	}
	s->kind->describe(s, who, sizeof(who));
	log_debug("helper: job %s: attempt %d: started %s", job->id,
	    s->attempt, who);
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
			ours = exec_slot_pid(&h->slots[i]) == pid;
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

			if (exec_slot_pid(s) == pid) {
				if (exec_slot_reaped(s, status) == -1)
					refused(s, "exited");
				break;
			}
		}
	}
	if (reaped)
		kill_escapees(h);
}

/*
 * Store the outcome of a finished handler in the open batch (the slot is
 * then RECORDED; s->rec says what to log once it commits).  0, or -1 when
 * the store failed (which dooms the batch).
 */
static int
job_record(struct helper *h, struct slot *s)
{
	const struct queue_conf *q = s->q;
	const struct slot_outcome *o = &s->rec;
	const char *id = s->job->id;
	char *text = NULL;
	int rc, dead = 0;

	if (slot_outcome(s, mono_ms()) == -1) {
		refused(s, "outcome");
		return 0;
	}
	switch (o->result) {
	case SLOT_RELEASED:
		text = exec_error_text(o->reason, &s->err);
		rc = store_release(h->store, id, s->attempt,
		    text ? text : o->reason, store_now());
		break;
	case SLOT_DONE:
		rc = store_finish_done(h->store, id, s->attempt,
		    s->out.b.len ? (const char *)s->out.b.data : "",
		    s->out.b.len, store_now());
		break;
	default:
		text = exec_error_text(o->reason, &s->err);
		rc = store_finish_failed(h->store, id, s->attempt,
		    text ? text : o->reason, o->permanent, q->backoff_min_ms,
		    q->backoff_max_ms, store_now(), &dead);
	}
	free(text);
	if (rc == -1)
		return -1;
	if (slot_recorded(s, rc, dead) == -1)
		refused(s, "recorded");
	return 0;
}

/* The log line of an outcome its batch committed. */
static void
job_log_outcome(const struct slot *s)
{
	const struct slot_outcome *o = &s->rec;
	const char *id = s->job->id;

	if (o->rc == 0) {
		log_warnx("helper: job %s: attempt %d: lease lost, outcome "
		    "dropped", id, s->attempt);
		return;
	}
	switch (o->result) {
	case SLOT_DONE:
		if (s->out.total > s->out.b.len)
			log_info("helper: job %s: result cut to %zu of %" PRIu64
			    " bytes", id, s->out.b.len, s->out.total);
		log_debug("helper: job %s: attempt %d: done in %" PRId64 " ms",
		    id, s->attempt, o->ms);
		break;
	case SLOT_RELEASED:
		log_info("helper: job %s: attempt %d: released: %s", id,
		    s->attempt, o->reason);
		break;
	default:
		log_info("helper: job %s: attempt %d: %s: %s", id, s->attempt,
		    o->reason, o->dead ? "dead" : "will retry");
	}
}

/* An outcome the store refused: try again later, or give up at shutdown. */
static void
job_unrecorded(struct helper *h, struct slot *s, int64_t now)
{
	if (h->stopping && now >= h->stop_deadline + STOP_GIVEUP_MS) {
		log_warnx("helper: job %s: giving up; the next helper requeues "
		    "it", s->job->id);
		if (slot_abandon(s) == -1)
			refused(s, "abandon");
		return;
	}
	if (slot_unrecorded(s, now + STORE_RETRY_MS) == -1)
		refused(s, "unrecorded");
}

/* Renew the lease of a running job: half of it is left. */
static void
job_extend(struct helper *h, struct slot *s, int64_t now)
{
	int64_t ms = slot_lease_ms(s->q);
	int rc;

	rc = store_extend(h->store, s->job->id, s->attempt, store_now() + ms);
	if (rc == -1) {
		log_warnx("helper: job %s: extend lease: %s", s->job->id,
		    store_error(h->store));
		s->extend_at = now + STORE_RETRY_MS;
		return;
	}
	if (rc == 0)
		log_warnx("helper: job %s: attempt %d: lease lost", s->job->id,
		    s->attempt);
	s->extend_at = now + ms / 2;
}

/* A running (or stopping) slot's timers: timeout, kill, lease. */
static void
job_timers(struct helper *h, struct slot *s, int64_t now)
{
	char who[32];

	if (slot_timed_out(s, now)) {
		s->kind->describe(s, who, sizeof(who));
		log_info("helper: job %s: attempt %d: timeout, stopping %s",
		    s->job->id, s->attempt, who);
		if (slot_stop(s, SLOT_STOP_TIMEOUT, now) == -1)
			refused(s, "stop");
	}
	if (s->state == SLOT_STOPPING && s->kill_at != 0 &&
	    now >= s->kill_at && slot_kill(s) == -1)
		refused(s, "kill");
	if (now >= s->extend_at)
		job_extend(h, s, now);
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
			if (array_grow(&h->claimed, &h->claimed_cap,
			    h->nclaimed + 1, sizeof(*h->claimed), 8) == -1)
				break;	/* next pass */
			wall = store_now();
			rc = store_claim(h->store, q->name, wall,
			    slot_lease_ms(q), &job);
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
 * Take what the output of each exited handler still holds; the number of
 * finished slots whose outcome is due now.
 */
static size_t
slots_drain(struct helper *h, int64_t now)
{
	size_t i, n = 0;

	for (i = 0; i < h->nslots; i++) {
		struct slot *s = &h->slots[i];

		if (s->state == SLOT_EXITED && slot_drained(s) == 1)
			log_warnx("helper: job %s: result: out of memory",
			    s->job->id);
		n += slot_due(s, now);
	}
	return n;
}

/*
 * The open batch: the due outcomes, then the claims of the places free.
 * 0, or -1 when anything failed: the whole transaction is gone.
 */
static int
batch_run(struct helper *h, int64_t now)
{
	size_t i;
	int failed = 0, begun = 0;

	if (store_batch_begin(h->store) == -1) {
		log_warnx("helper: begin: %s", store_error(h->store));
		failed = 1;
	} else
		begun = 1;
	for (i = 0; i < h->nslots && !failed; i++) {
		struct slot *s = &h->slots[i];

		if (s->state == SLOT_FINISHED && slot_due(s, now) &&
		    job_record(h, s) == -1) {
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
	return failed ? -1 : 0;
}

/*
 * One transaction for everything the store must hear this turn: the
 * outcomes of finished handlers, then the claims their places (and any
 * other free ones) take.  One COMMIT instead of two per job, and the pages
 * a finish and the next claim share are written once.  Handlers start only
 * after the COMMIT, never inside it: the write lock would hold the
 * responder's commits up for the length of a spawn.  If anything fails,
 * the whole transaction is gone: outcomes are tried again, claims were
 * never made.
 */
static void
record_and_claim(struct helper *h, int64_t now)
{
	size_t i, nrec;
	int failed;

	nrec = slots_drain(h, now);
	/* Freed places are filled at once; otherwise claims wait for a
	 * wake-up or their time. */
	if (nrec == 0 && (h->stopping || (!h->claim_now && now < h->claim_at)))
		return;
	h->claim_now = 0;
	failed = batch_run(h, now) == -1;

	for (i = 0; i < h->nslots; i++) {
		struct slot *s = &h->slots[i];

		if (failed && slot_due(s, now))
			job_unrecorded(h, s, now);
		else if (!failed && s->state == SLOT_RECORDED) {
			job_log_outcome(s);
			if (slot_committed(s) == -1)
				refused(s, "committed");
		}
	}
	if (failed) {
		h->claim_at = now + STORE_RETRY_MS;
		for (i = 0; i < h->nclaimed; i++)
			store_job_free(h->claimed[i].job);
		h->nclaimed = 0;
		return;
	}
	/* job_start may grow h->slots; the list is ours until then. */
	for (i = 0; i < h->nclaimed; i++)
		job_start(h, h->claimed[i].q, h->claimed[i].job);
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
	clock_fmt(h->cfg->c.grace_ms, dur, sizeof(dur));
	if (slots_active(h) > 0)
		log_info("helper: %s: stopping, %zu handler%s get %s", why,
		    slots_active(h), slots_active(h) == 1 ? "" : "s", dur);
	else
		log_info("helper: %s: stopping", why);
}

/* Stopping, past the grace: stop every handler still running. */
static void
stop_handlers(struct helper *h, int64_t now)
{
	size_t i;

	if (h->stop_killed || now < h->stop_deadline)
		return;
	h->stop_killed = 1;
	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].state == SLOT_RUNNING &&
		    slot_stop(&h->slots[i], SLOT_STOP_SHUTDOWN, now) == -1)
			refused(&h->slots[i], "stop");
}

/* Room for n more poll entries. */
static int
pfd_reserve(struct helper *h, size_t used, size_t n)
{
	size_t need = used + n, cp = h->pfd_cap, ct = h->pfd_cap;

	/* Two arrays, one capacity: it counts once both have grown. */
	if (array_grow(&h->pfd, &cp, need, sizeof(*h->pfd), 16) == -1 ||
	    array_grow(&h->ptag, &ct, need, sizeof(*h->ptag), 16) == -1)
		return -1;
	h->pfd_cap = cp;
	return 0;
}

#define TAG_PARENT	(-1)
#define TAG_SIGNAL	(-2)
#define TAG_WAKE	(-3)

static int
pfd_add(struct helper *h, size_t *n, int fd, int which)
{
	if (pfd_reserve(h, *n, 1) == -1)
		return -1;
	h->pfd[*n].fd = fd;
	h->pfd[*n].events = POLLIN;
	h->pfd[*n].revents = 0;
	h->ptag[*n].s = NULL;
	h->ptag[*n].which = which;
	(*n)++;
	return 0;
}

/* The poll set of this turn: the helper's fds, then each running
 * handler's.  The number of entries, or -1 when out of memory. */
static int
poll_build(struct helper *h, size_t *np)
{
	int which[SLOT_MAXFD];
	size_t i, n = 0;
	int k, j;

	if (h->parent_fd != -1 &&
	    pfd_add(h, &n, h->parent_fd, TAG_PARENT) == -1)
		return -1;
	if (pfd_add(h, &n, h->sig_fd, TAG_SIGNAL) == -1)
		return -1;
	if (h->wake_fd != -1 && pfd_add(h, &n, h->wake_fd, TAG_WAKE) == -1)
		return -1;
	for (i = 0; i < h->nslots; i++) {
		if (pfd_reserve(h, n, SLOT_MAXFD) == -1)
			return -1;
		k = slot_poll(&h->slots[i], &h->pfd[n], which);
		for (j = 0; j < k; j++, n++) {
			h->pfd[n].revents = 0;
			h->ptag[n].s = &h->slots[i];
			h->ptag[n].which = which[j];
		}
	}
	*np = n;
	return 0;
}

static void
min_at(int64_t *t, int64_t at)
{
	if (at != 0 && at < *t)
		*t = at;
}

/* Milliseconds until the next timer: the helper's, or a slot's. */
static int
poll_timeout(const struct helper *h, int64_t now)
{
	int64_t next = now + 60000;
	size_t i;

	if (!h->stopping) {
		min_at(&next, h->claim_at);
		min_at(&next, h->maint_at);
		min_at(&next, h->prune_at);
	} else if (!h->stop_killed)
		min_at(&next, h->stop_deadline);
	else
		min_at(&next, h->stop_deadline + STOP_GIVEUP_MS);
	for (i = 0; i < h->nslots; i++) {
		const struct slot *s = &h->slots[i];

		switch (s->state) {
		case SLOT_FREE:
			break;
		case SLOT_RUNNING:
			min_at(&next, s->deadline);
			min_at(&next, s->extend_at);
			break;
		case SLOT_STOPPING:
			min_at(&next, s->kill_at);
			min_at(&next, s->extend_at);
			break;
		default:
			min_at(&next, s->retry_at);
		}
	}
	return next <= now ? 0 : (int)(next - now);
}

static void
on_signals(struct helper *h, int64_t now)
{
	unsigned int sigs = supervisor_sigread(h->sig_fd);

	if (sigs & SIGBIT(SIGHUP))
		helper_reload(h);
	if (sigs & SIGBIT(SIGTERM))
		stop_begin(h, "SIGTERM", now);
	if (sigs & SIGBIT(SIGINT))
		stop_begin(h, "SIGINT", now);
	/* SIGCHLD: reap() runs every turn. */
}

/* Serve the n entries poll found ready. */
static void
poll_dispatch(struct helper *h, size_t n, int64_t now)
{
	const struct ptag *t;
	size_t i;

	for (i = 0; i < n; i++) {
		if (h->pfd[i].revents == 0)
			continue;
		t = &h->ptag[i];
		if (t->s != NULL) {
			if (slot_ready(t->s, t->which, h->pfd[i].revents) == -1)
				log_warnx("helper: job %s: result: out of "
				    "memory", t->s->job->id);
			continue;
		}
		switch (t->which) {
		case TAG_PARENT:
			if (supervisor_parent_gone(h->parent_fd)) {
				fd_close(&h->parent_fd);
				stop_begin(h, "fcgiq went away", now);
			}
			break;
		case TAG_SIGNAL:
			on_signals(h, now);
			break;
		case TAG_WAKE:
			wake_drain(h->wake_fd);
			h->claim_now = 1;
			break;
		}
	}
}

/*
 * Each turn: reap, run the slots' timers, stop or maintain, store the
 * outcomes and the claims (record_and_claim), then sleep in poll until an
 * fd or the next timer.  0 once stopped with every slot free, 1 on error.
 */
static int
helper_loop(struct helper *h)
{
	size_t i, n;
	int64_t now;
	int r;

	h->claim_now = 1;
	now = mono_ms();
	h->maint_at = now + MAINT_MS;
	h->prune_at = now;
	for (;;) {
		now = mono_ms();
		reap(h);
		for (i = 0; i < h->nslots; i++)
			if (h->slots[i].state == SLOT_RUNNING ||
			    h->slots[i].state == SLOT_STOPPING)
				job_timers(h, &h->slots[i], now);
		if (h->stopping)
			stop_handlers(h, now);
		else
			maintenance(h, now);
		record_and_claim(h, now);
		if (h->stopping && slots_active(h) == 0)
			return 0;

		if (poll_build(h, &n) == -1) {
			log_warnx("helper: out of memory");
			return 1;
		}
		r = poll(h->pfd, n, poll_timeout(h, now));
		if (r == -1 && errno != EINTR) {
			log_warn("helper: poll");
			return 1;
		}
		if (r > 0)
			poll_dispatch(h, n, mono_ms());
	}
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
done:
	slots_free_all(&h);
	fd_close(&h.wake_fd);
	if (h.store != NULL)
		store_close(h.store);
	fd_close(&h.lock_fd);
	fd_close(&h.sig_fd);
	config_unref(h.cfg);
	free(h.db);
	return rc;
}
