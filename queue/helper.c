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

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "fd.h"
#include "helper.h"
#include "helper-internal.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "slot.h"
#include "store.h"
#include "supervisor.h"
#include "wake.h"

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
	/* The helper is where handlers start: it checks for itself. */
	if (config_check_run(&c, err, sizeof(err)) == -1) {
		log_warnx("helper: config: %s", err);
		config_free(&c);
		return NULL;
	}
	if ((r = config_ref_new(&c)) == NULL) {
		config_free(&c);
		log_warnx("helper: config: out of memory");
	}
	return r;
}

/* Dead letters as h's configuration says (store-dead.c). */
static void
dead_letters(struct helper *h)
{
	const struct config *c = &h->cfg->c;
	const struct queue_conf *q = NULL;

	if (h->store == NULL)
		return;
	if (c->dead_letter_queue != NULL)
		q = config_queue(c, c->dead_letter_queue);
	if (store_set_dead_letter(h->store, q != NULL ? q->name : NULL,
	    c->status_prefix, q != NULL ? q->max_attempts : 1,
	    q != NULL ? q->priority : 0) == -1)
		log_warnx("helper: dead letters: %s", store_error(h->store));
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
	dead_letters(h);
	h->claim_now = 1;
	log_info("helper: configuration reloaded");
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
	if (helper_slots_active(h) > 0)
		log_info("helper: %s: stopping, %zu handler%s get %s", why,
		    helper_slots_active(h), helper_slots_active(h) == 1 ? "" : "s", dur);
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
			helper_refused(&h->slots[i], "stop");
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
#define TAG_HTTP	(-4)	/* a socket of the http: transfers */
#define TAG_LISTEN	(-5)	/* the store's wake-ups (PostgreSQL) */

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
	if ((k = store_listen_fd(h->store)) != -1 &&
	    pfd_add(h, &n, k, TAG_LISTEN) == -1)
		return -1;
	/* The http: transfers share their connections: their sockets are
	 * the multi handle's, not a slot's. */
	if (http_multi_nfds(h->http) > 0) {
		size_t nh = http_multi_nfds(h->http), e;

		if (pfd_reserve(h, n, nh) == -1)
			return -1;
		nh = http_multi_poll(h->http, &h->pfd[n], nh);
		for (e = 0; e < nh; e++, n++) {
			h->ptag[n].s = NULL;
			h->ptag[n].which = TAG_HTTP;
		}
	}
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
		min_at(&next, h->sched_at);
	} else if (!h->stop_killed)
		min_at(&next, h->stop_deadline);
	else
		min_at(&next, h->stop_deadline + STOP_GIVEUP_MS);
	min_at(&next, http_multi_timer(h->http));
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
		case SLOT_EXITED:
			/* Ended inside the loop's turn (an upstream's
			 * answer, a failed connect): drain it now. */
			next = now;
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
	/* SIGCHLD: helper_reap() runs every turn. */
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
			if (wake_take(h->wake_fd, &h->watchers, now))
				h->claim_now = 1;
			break;
		case TAG_LISTEN:
			if (store_listen_take(h->store))
				h->claim_now = 1;
			break;
		case TAG_HTTP:
			http_multi_ready(h->http, h->pfd[i].fd,
			    h->pfd[i].revents);
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
		helper_reap(h);
		for (i = 0; i < h->nslots; i++)
			if (h->slots[i].state == SLOT_RUNNING ||
			    h->slots[i].state == SLOT_STOPPING)
				helper_job_timers(h, &h->slots[i], now);
		if (h->stopping)
			stop_handlers(h, now);
		else
			helper_maintenance(h, now);
		helper_schedules(h, now);
		/* After the timers: a transfer they stopped ends now. */
		helper_http(h, now);
		helper_record_and_claim(h, now);
		if (h->stopping && helper_slots_active(h) == 0)
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
	/*
	 * The loop is the helper's only thread, and each of its connections
	 * is its alone: a mutex taken around every call into SQLite is a
	 * few percent of a job's time.  Too late (SQLite started before the
	 * fork) only keeps them.
	 */
	if (store_one_thread() == -1)
		log_debug("helper: SQLite stays serialized");
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
	 * helper's earlier frames with it.  This halves the fsyncs per job.
	 */
	memset(&so, 0, sizeof(so));
	so.durability = STORE_DURABILITY_NORMAL;
	so.busy_timeout_ms = h.cfg->c.busy_timeout_ms;
	if ((h.store = store_open(h.db, &so, err, sizeof(err))) == NULL) {
		log_warnx("helper: %s", err);
		goto done;
	}
	dead_letters(&h);
	/* Other hosts' enqueues (PostgreSQL); without it, the look each
	 * second finds them. */
	if (store_listen(h.store) == -1)
		log_warnx("helper: listen: %s", store_error(h.store));
	/* Not fatal: without the shared file, counts stay the helper's. */
	if (metrics_open(h.db, 1, err, sizeof(err)) == -1)
		log_warnx("helper: metrics: %s", err);
	/* Wake-ups first, so that a commit racing the requeue below is not
	 * missed. */
	/* With PostgreSQL another helper of this host may hold the socket:
	 * LISTEN (above) wakes this one. */
	if ((h.wake_fd = wake_listen(h.db)) == -1 &&
	    !store_is_postgresql(h.db)) {
		char name[128];
		int saved = errno;

		if (wake_name(h.db, name, sizeof(name)) == -1)
			snprintf(name, sizeof(name), "?");
		errno = saved;
		log_warn("helper: %s: wake-up socket %s: cannot bind, so "
		    "nothing pushes jobs to this helper: they start up to "
		    "%d ms late", h.db, name, SAFETY_POLL_MS);
	}
	/*
	 * We hold the lock: whatever is running has lost its runner.  With
	 * PostgreSQL there is no lock, other helpers' jobs run too: leases
	 * that end bring back what a vanished helper held.
	 */
	if ((n = store_is_postgresql(h.db) ? 0 : store_requeue_running(h.store,
	    store_now(), helper_count_requeue, NULL)) == -1) {
		log_warnx("helper: requeue running: %s", store_error(h.store));
		goto done;
	}
	if (n > 0)
		log_info("helper: %d interrupted job%s requeued", n,
		    n == 1 ? "" : "s");

	rc = helper_loop(&h);
done:
	helper_slots_free(&h);
	helper_schedules_free(&h);
	fd_close(&h.wake_fd);
	if (h.store != NULL)
		store_close(h.store);
	metrics_close();
	fd_close(&h.lock_fd);
	fd_close(&h.sig_fd);
	config_unref(h.cfg);
	free(h.db);
	return rc;
}
