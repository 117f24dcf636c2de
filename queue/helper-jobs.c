/*
 * helper-jobs.c: the helper's jobs.  The slot table (one slot per running
 * handler, each a slot.c state machine), starting a claimed job's handler,
 * reaping, timers and lease extension, and each turn's one transaction:
 * the finished handlers' outcomes, then the claims of the places free
 * (record_and_claim).  The loop that calls these is helper.c's.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "exec.h"
#include "fcgi.h"
#include "helper-internal.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "slot.h"
#include "store.h"
#include "upstream.h"

/* ----------------------------------------------------------------- slots */

/* A queue whose jobs can run: it has a handler of a kind this helper
 * runs, and places. */
static int
queue_runnable(const struct queue_conf *q)
{
	if (q->concurrency <= 0)
		return 0;
	switch (q->kind) {
	case HANDLER_EXEC:
		return q->handler_argv != NULL && q->handler_argv[0] != NULL;
	case HANDLER_FASTCGI:
		return 1;
	case HANDLER_HTTP:
		return q->url != NULL;
	default:
		return 0;
	}
}

/* A slot's hold on the configuration it started under. */
static void
cfg_unref(void *r)
{
	config_unref(r);
}

/* A transition the slot refused: a bug in the helper, logged, not fatal. */
void
helper_refused(const struct slot *s, const char *event)
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

size_t
helper_slots_active(const struct helper *h)
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
void
helper_slots_free(struct helper *h)
{
	size_t i;

	for (i = 0; i < h->nslots; i++)
		slot_free(&h->slots[i]);
	fcgi_pool_free();
	/* After the slots: each took its transfer out of it. */
	http_multi_free(h->http);
	h->http = NULL;
	free(h->slots);
	free(h->pfd);
	free(h->ptag);
	free(h->claimed);
	helper_flow_free(h);
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

/* Start job's request to q's URL in a free slot; a failure to start is
 * its outcome. */
static void
http_job_start(struct helper *h, const struct queue_conf *q,
    struct store_job *job)
{
	struct slot *s;
	char why[256], who[160];

	if (h->http == NULL && (h->http = http_multi_new()) == NULL) {
		fail_unstarted(h, q, job, "http: cannot start libcurl");
		store_job_free(job);
		return;
	}
	if ((s = slots_alloc(h)) == NULL) {
		log_warnx("helper: job %s: out of memory", job->id);
		store_job_free(job);
		return;
	}
	if (http_slot_start(s, h->http, q, job, why, sizeof(why)) == -1) {
		fail_unstarted(h, q, job, why);
		store_job_free(job);
		return;
	}
	(void)config_ref(h->cfg);
	if (slot_start(s, q, job, h->cfg, cfg_unref, mono_ms()) == -1) {
		helper_refused(s, "start");
		return;
	}
	s->kind->describe(s, who, sizeof(who));
	log_debug("helper: job %s: attempt %d: started %s", job->id,
	    s->attempt, who);
}

void
helper_http(struct helper *h, int64_t now)
{
	char note[512];
	size_t i;

	if (h->http == NULL)
		return;
	http_multi_run(h->http, now);
	for (i = 0; i < h->nslots; i++)
		if (http_slot_collect(&h->slots[i], now, note,
		    sizeof(note)) == 1 && note[0] != '\0')
			log_warnx("helper: %s", note);
}

/* Start job's handler in a free slot; a failure to start is its outcome. */
static void
job_start(struct helper *h, const struct queue_conf *q, struct store_job *job)
{
	struct exec_limits limits = { q->rlimit_as, q->rlimit_cpu_s,
	    q->rlimit_nofile, 0, 0, 0, NULL, 0 };
	struct slot *s;
	char **env, why[256], who[128];

	/* As root, the queue's user (config_check_run() saw to it that
	 * one is written); otherwise the helper's own. */
	if (geteuid() == 0 && q->user != NULL) {
		limits.drop = 1;
		limits.uid = q->uid;
		limits.gid = q->gid;
		limits.groups = q->groups;
		limits.ngroups = q->ngroups;
	}

	if (q->kind == HANDLER_HTTP) {
		http_job_start(h, q, job);
		return;
	}
	if ((s = slots_alloc(h)) == NULL) {
		/* The lease brings the job back. */
		log_warnx("helper: job %s: out of memory", job->id);
		store_job_free(job);
		return;
	}
	if (q->kind == HANDLER_FASTCGI) {
		/* Connecting is the slot's first step: its failure is the
		 * attempt's outcome, as the answer's would be. */
		fcgi_slot_prepare(s);
		goto start;
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
start:
	(void)config_ref(h->cfg);
	if (slot_start(s, q, job, h->cfg, cfg_unref, mono_ms()) == -1) {
		/* Not reached: s is free and has its kind. */
		helper_refused(s, "start");
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
void
helper_reap(struct helper *h)
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
					helper_refused(s, "exited");
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
		helper_refused(s, "outcome");
		return 0;
	}
	/* An upstream's tail is one line (upstream.h); a process's stderr
	 * keeps its lines. */
	if (o->result != SLOT_DONE && s->up.set) {
		if ((text = malloc(UPSTREAM_ERROR_MAX)) != NULL)
			upstream_error_line(text, UPSTREAM_ERROR_MAX,
			    o->reason, &s->err);
	} else if (o->result != SLOT_DONE)
		text = exec_error_text(o->reason, &s->err);
	switch (o->result) {
	case SLOT_RELEASED:
		rc = store_release(h->store, id, s->attempt,
		    text ? text : o->reason, store_now());
		break;
	case SLOT_DONE:
		rc = store_finish_done_typed(h->store, id, s->attempt,
		    s->out.b.len ? (const char *)s->out.b.data : "",
		    s->out.b.len, s->up.type[0] != '\0' ? s->up.type : NULL,
		    store_now());
		break;
	default:
		if (o->crashed)
			rc = store_finish_crashed(h->store, id, s->attempt,
			    text ? text : o->reason, q->flow.quarantine_after,
			    q->backoff_min_ms, q->backoff_max_ms, store_now(),
			    &dead);
		else
			rc = store_finish_failed_at(h->store, id, s->attempt,
			    text ? text : o->reason, o->permanent, o->run_at,
			    q->backoff_min_ms, q->backoff_max_ms, store_now(),
			    &dead);
		if (rc == 1 && dead && o->crashed &&
		    flow_quarantined(q, s->job->crashes + 1))
			snprintf(s->rec.reason, sizeof(s->rec.reason),
			    "crashed %d times (%s)", s->job->crashes + 1,
			    s->status);
	}
	free(text);
	if (rc == -1)
		return -1;
	if (slot_recorded(s, rc, dead) == -1)
		helper_refused(s, "recorded");
	else if (rc == 1)
		helper_flow_outcome(h, s);
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
		/* An upstream that is down: said once a minute by its kind,
		 * not once a job. */
		if (s->up.set && s->up.quiet && s->stop == SLOT_STOP_NONE)
			log_debug("helper: job %s: attempt %d: %s: %s", id,
			    s->attempt, o->reason, o->dead ? "dead" :
			    "will retry");
		else
			log_info("helper: job %s: attempt %d: %s: %s", id,
			    s->attempt, o->reason, o->dead ? "dead" :
			    "will retry");
	}
}

/* The metrics of an outcome its batch committed. */
static void
job_count_outcome(const struct slot *s)
{
	const struct slot_outcome *o = &s->rec;
	const char *q = s->job->queue;

	if (o->rc == 0)
		return;
	switch (o->result) {
	case SLOT_DONE:
		metrics_finished(q, METRICS_DONE, o->ms);
		break;
	case SLOT_RELEASED:
		break;
	default:
		metrics_finished(q, o->dead ? METRICS_DEAD : METRICS_FAILED,
		    o->ms);
		if (!o->dead)
			metrics_retried(q, 1);
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
			helper_refused(s, "abandon");
		return;
	}
	if (slot_unrecorded(s, now + STORE_RETRY_MS) == -1)
		helper_refused(s, "unrecorded");
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
void
helper_job_timers(struct helper *h, struct slot *s, int64_t now)
{
	char who[128];

	if (slot_timed_out(s, now)) {
		s->kind->describe(s, who, sizeof(who));
		log_info("helper: job %s: attempt %d: timeout, stopping %s",
		    s->job->id, s->attempt, who);
		if (slot_stop(s, SLOT_STOP_TIMEOUT, now) == -1)
			helper_refused(s, "stop");
	}
	if (s->state == SLOT_STOPPING && s->kill_at != 0 &&
	    now >= s->kill_at && slot_kill(s) == -1)
		helper_refused(s, "kill");
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
		/* A paused queue's jobs are all skipped by the claim's own
		 * test, but only after a walk of its whole claim index (and
		 * next_due's another): ask once. */
		if ((rc = store_paused(h->store, q->name)) == -1) {
			log_warnx("helper: queue %s: paused: %s", q->name,
			    store_error(h->store));
			return -1;
		}
		if (rc == 1)
			continue;
		while (queue_active(h, q->name) < (size_t)q->concurrency) {
			if (array_grow(&h->claimed, &h->claimed_cap,
			    h->nclaimed + 1, sizeof(*h->claimed), 8) == -1)
				break;	/* next pass */
			/* Rate and breaker (helper-flow.c). */
			if (!helper_flow_allow(h, q, now, &next))
				break;
			wall = store_now();
			/* Retries hold all the slots they may: a first
			 * attempt, or nothing. */
			if (helper_flow_retries_full(h, q))
				rc = store_claim_fresh(h->store, q->name, wall,
				    slot_lease_ms(q), &job);
			else
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
			if ((rc = helper_flow_quarantine(h, q, job)) != 0) {
				store_job_free(job);
				if (rc == -1) {
					log_warnx("helper: queue %s: "
					    "quarantine: %s", q->name,
					    store_error(h->store));
					return -1;
				}
				continue;
			}
			helper_flow_started(h, q, job, now);
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
 * The jobs this turn's commit finished for good (done or dead), for the
 * responders whose requests wait on them (Prefer: wait).  Ids are copied:
 * the slot lets its job go once committed.
 */
static const char	*fin_ids[64];
static char		 fin_buf[64][STORE_ID_LEN + 1];
static size_t		 nfin;

/* The helper's own wake-ups and watch requests first: a responder that
 * asked to watch before this commit must hear of it. */
static void
finished_tell(struct helper *h, int64_t now)
{
	if (nfin == 0 || h->wake_fd == -1) {
		nfin = 0;
		return;
	}
	if (wake_take(h->wake_fd, &h->watchers, now))
		h->claim_now = 1;
	wake_tell(h->wake_fd, &h->watchers, fin_ids, nfin, now);
	nfin = 0;
}

static void
finished_add(struct helper *h, const struct slot *s)
{
	const struct slot_outcome *o = &s->rec;

	if (o->rc != 1 || (o->result != SLOT_DONE && !o->dead))
		return;
	if (nfin == sizeof(fin_ids) / sizeof(fin_ids[0]))
		finished_tell(h, mono_ms());
	snprintf(fin_buf[nfin], sizeof(fin_buf[nfin]), "%s", s->job->id);
	fin_ids[nfin] = fin_buf[nfin];
	nfin++;
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
void
helper_record_and_claim(struct helper *h, int64_t now)
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
			job_count_outcome(s);
			finished_add(h, s);
			if (slot_committed(s) == -1)
				helper_refused(s, "committed");
		}
	}
	finished_tell(h, now);
	if (failed) {
		h->claim_at = now + STORE_RETRY_MS;
		for (i = 0; i < h->nclaimed; i++) {
			helper_flow_dropped(h, h->claimed[i].job);
			store_job_free(h->claimed[i].job);
		}
		h->nclaimed = 0;
		return;
	}
	/* job_start may grow h->slots; the list is ours until then. */
	for (i = 0; i < h->nclaimed; i++) {
		struct store_job *j = h->claimed[i].job;

		metrics_started(j->queue, j->started_at - j->run_at);
		job_start(h, h->claimed[i].q, j);
	}
	h->nclaimed = 0;
}

/*
 * An attempt whose lease expired (or whose helper went away) has ended
 * without an outcome: like a failed attempt it is counted failed and
 * retried when the job runs again, dead when it was the last; its run
 * time is unknown, so it is in no duration histogram.
 */
void
helper_count_requeue(void *arg, const char *queue, int requeued, int dead)
{
	int i;

	(void)arg;
	for (i = 0; i < requeued; i++)
		metrics_finished(queue, METRICS_FAILED, -1);
	if (requeued > 0)
		metrics_retried(queue, (uint64_t)requeued);
	for (i = 0; i < dead; i++)
		metrics_finished(queue, METRICS_DEAD, -1);
}

void
helper_maintenance(struct helper *h, int64_t now)
{
	const struct config *c = &h->cfg->c;
	int64_t wall = store_now();
	size_t i;
	int n;

	if (now >= h->maint_at) {
		h->maint_at = now + MAINT_MS;
		n = store_requeue_expired(h->store, wall,
		    helper_count_requeue, NULL);
		if (n == -1)
			log_warnx("helper: requeue expired: %s",
			    store_error(h->store));
		else if (n > 0) {
			log_warnx("helper: %d job%s with an expired lease "
			    "requeued", n, n == 1 ? "" : "s");
			h->claim_now = 1;
		}
	}
	fcgi_pool_tick(now);
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
