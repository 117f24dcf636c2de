/*
 * slot: the state machine of a job's place in the helper (the diagram is in
 * slot.h).  Each function below is one transition: it checks that the slot
 * is in a state the transition leaves from and refuses (-1, nothing
 * changed) otherwise, so a caller's mistake cannot, say, store an outcome
 * twice or kill a process group that was already reaped.  The handler
 * kind's part (a process, pipes, signals) is only reached through
 * s->kind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config.h"
#include "exec.h"
#include "slot.h"
#include "store.h"

#define BIT(st)		(1u << (st))

/* 1 when s is in one of the states of mask. */
static int
in(const struct slot *s, unsigned int mask)
{
	return (BIT(s->state) & mask) != 0;
}

const char *
slot_state_name(enum slot_state state)
{
	switch (state) {
	case SLOT_FREE:
		return "free";
	case SLOT_RUNNING:
		return "running";
	case SLOT_STOPPING:
		return "stopping";
	case SLOT_EXITED:
		return "exited";
	case SLOT_FINISHED:
		return "finished";
	case SLOT_RECORDED:
		return "recorded";
	}
	return "?";
}

int64_t
slot_lease_ms(const struct queue_conf *q)
{
	return q->timeout_ms + SLOT_KILL_GRACE_MS + SLOT_LEASE_MARGIN_MS;
}

int
slot_start(struct slot *s, const struct queue_conf *q, struct store_job *job,
    void *ref, void (*unref)(void *), int64_t now)
{
	if (!in(s, BIT(SLOT_FREE)) || s->kind == NULL)
		return -1;
	s->state = SLOT_RUNNING;
	s->q = q;
	s->job = job;
	s->attempt = job->attempts;
	s->ref = ref;
	s->unref = unref;
	s->out.b.max = q->max_result;
	s->started = now;
	s->deadline = now + q->timeout_ms;
	s->extend_at = now + slot_lease_ms(q) / 2;
	s->code = -1;
	s->kind->started(s);
	return 0;
}

int
slot_poll(struct slot *s, struct pollfd *pfd, int *which)
{
	if (!in(s, BIT(SLOT_RUNNING) | BIT(SLOT_STOPPING)))
		return 0;
	return s->kind->poll(s, pfd, which);
}

int
slot_ready(struct slot *s, int which, short revents)
{
	if (!in(s, BIT(SLOT_RUNNING) | BIT(SLOT_STOPPING)))
		return 0;
	return s->kind->ready(s, which, revents);
}

int
slot_timed_out(const struct slot *s, int64_t now)
{
	return s->state == SLOT_RUNNING && now >= s->deadline;
}

int
slot_stop(struct slot *s, enum slot_stop why, int64_t now)
{
	if (!in(s, BIT(SLOT_RUNNING)) || why == SLOT_STOP_NONE)
		return -1;
	s->state = SLOT_STOPPING;
	s->stop = why;
	s->kind->stop(s);
	/* A kind with nothing to wait for (an upstream request, closed)
	 * has ended it in stop(): slot_exited() already. */
	if (s->state == SLOT_STOPPING)
		s->kill_at = now + SLOT_KILL_GRACE_MS;
	return 0;
}

int
slot_kill(struct slot *s)
{
	if (!in(s, BIT(SLOT_STOPPING)))
		return -1;
	s->kind->kill(s);
	s->kill_at = 0;
	return 0;
}

int
slot_exited(struct slot *s, int code, const char *status)
{
	if (!in(s, BIT(SLOT_RUNNING) | BIT(SLOT_STOPPING)))
		return -1;
	s->state = SLOT_EXITED;
	s->code = code;
	(void)snprintf(s->status, sizeof(s->status), "%s", status);
	s->kill_at = 0;
	return 0;
}

int
slot_drained(struct slot *s)
{
	if (!in(s, BIT(SLOT_EXITED)))
		return -1;
	s->state = SLOT_FINISHED;
	return s->kind->drain(s) == -1 ? 1 : 0;
}

int
slot_due(const struct slot *s, int64_t now)
{
	return in(s, BIT(SLOT_FINISHED) | BIT(SLOT_RECORDED)) &&
	    (s->retry_at == 0 || now >= s->retry_at);
}

/*
 * An exec: handler that exits 75 may say when to try again, as an
 * upstream does with its header: "Retry-After: 120" (or an HTTP date) as
 * the first line of its stdout.  1 with *run_at (wall ms, within the
 * queue's backoff cap), 0 when the line is not there.
 */
static int
exec_retry_after(const struct slot *s, int64_t *run_at)
{
	static const char name[] = "Retry-After:";
	const char *p = (const char *)s->out.b.data, *nl;
	char value[128];
	size_t n, len = s->out.b.len;

	if (p == NULL || len <= sizeof(name) - 1 ||
	    strncasecmp(p, name, sizeof(name) - 1) != 0)
		return 0;
	p += sizeof(name) - 1;
	len -= sizeof(name) - 1;
	n = (nl = memchr(p, '\n', len)) != NULL ? (size_t)(nl - p) : len;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n >= sizeof(value) || memchr(p, '\0', n) != NULL)
		return 0;
	memcpy(value, p, n);
	value[n] = '\0';
	return upstream_retry_after(value, store_now(), s->q->backoff_max_ms,
	    run_at);
}

/*
 * The outcome: released when the helper stopped it (the job is not at
 * fault); done on exit 0; otherwise failed: timed out, exit 65 (EX_DATAERR:
 * permanent), exit 75 (EX_TEMPFAIL: at its Retry-After line's time, when
 * it printed one), or any other end.  An upstream kind
 * (s->up.set) has its verdict instead of an exit code: done, retry (at
 * up.run_at when a Retry-After said), or dead at once.
 */
int
slot_outcome(struct slot *s, int64_t now)
{
	struct slot_outcome *o = &s->rec;
	char dur[32];

	if (!in(s, BIT(SLOT_FINISHED)))
		return -1;
	memset(o, 0, sizeof(*o));
	o->ms = now - s->started;
	if (s->stop == SLOT_STOP_SHUTDOWN) {
		o->result = SLOT_RELEASED;
		snprintf(o->reason, sizeof(o->reason), "helper stopping (%s)",
		    s->status);
		return 0;
	}
	if (s->stop == SLOT_STOP_NONE && s->up.set) {
		if (s->up.verdict == UPSTREAM_DONE) {
			o->result = SLOT_DONE;
			return 0;
		}
		o->result = SLOT_FAILED;
		o->permanent = s->up.verdict == UPSTREAM_DEAD;
		o->run_at = s->up.run_at;
		snprintf(o->reason, sizeof(o->reason), "%s", s->up.reason);
		return 0;
	}
	if (s->stop == SLOT_STOP_NONE && s->code == 0) {
		o->result = SLOT_DONE;
		return 0;
	}
	o->result = SLOT_FAILED;
	/* Ended by a signal the helper did not send: a crash (a fault, an
	 * abort on the memory limit, the kernel's OOM killer, the CPU
	 * limit).  A timeout is the helper's kill, not a crash. */
	o->crashed = s->stop == SLOT_STOP_NONE && s->code == -1;
	if (s->stop == SLOT_STOP_TIMEOUT) {
		clock_fmt(s->q->timeout_ms, dur, sizeof(dur));
		snprintf(o->reason, sizeof(o->reason), "timeout after %s", dur);
	} else if (s->code == 65) {
		snprintf(o->reason, sizeof(o->reason), "%s (data error)",
		    s->status);
		o->permanent = 1;
	} else if (s->code == 75) {
		snprintf(o->reason, sizeof(o->reason),
		    "%s (temporary failure)", s->status);
		if (exec_retry_after(s, &o->run_at) == 0)
			o->run_at = 0;
	}
	else
		snprintf(o->reason, sizeof(o->reason), "%s", s->status);
	return 0;
}

int
slot_recorded(struct slot *s, int rc, int dead)
{
	if (!in(s, BIT(SLOT_FINISHED)))
		return -1;
	s->state = SLOT_RECORDED;
	s->rec.rc = rc;
	s->rec.dead = dead;
	return 0;
}

int
slot_unrecorded(struct slot *s, int64_t retry_at)
{
	if (!in(s, BIT(SLOT_FINISHED) | BIT(SLOT_RECORDED)))
		return -1;
	s->state = SLOT_FINISHED;
	s->retry_at = retry_at;
	return 0;
}

int
slot_committed(struct slot *s)
{
	if (!in(s, BIT(SLOT_RECORDED)))
		return -1;
	slot_free(s);
	return 0;
}

int
slot_abandon(struct slot *s)
{
	if (!in(s, BIT(SLOT_FINISHED) | BIT(SLOT_RECORDED)))
		return -1;
	slot_free(s);
	return 0;
}

void
slot_free(struct slot *s)
{
	/* Nobody will watch it any more: a handler still running ends now. */
	if (in(s, BIT(SLOT_RUNNING) | BIT(SLOT_STOPPING)))
		s->kind->kill(s);
	if (s->kind != NULL)
		s->kind->close(s);
	exec_out_free(&s->out);
	store_job_free(s->job);
	if (s->unref != NULL)
		s->unref(s->ref);
	memset(s, 0, sizeof(*s));
}
