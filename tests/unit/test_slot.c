/*
 * test_slot: the slot state machine (queue/slot.c) without a helper or a
 * database.  A fake handler kind counts what the machine asks of it; every
 * transition is tried from every state: where it is legal it moves to the
 * state of the diagram in slot.h, elsewhere it is refused with the slot
 * and the kind untouched.  Then the outcomes (done, 65, 75, other, timeout,
 * shutdown), and the exec kind driving a real process through the states.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "exec.h"
#include "slot.h"
#include "store.h"

#define NSTATES		(SLOT_RECORDED + 1)

/* What the fake kind was asked to do. */
static struct calls {
	int	started, poll, ready, stop, kill, drain, close, unref;
} calls;

static void
fake_started(struct slot *s)
{
	(void)s;
	calls.started++;
}

static int
fake_poll(struct slot *s, struct pollfd *pfd, int *which)
{
	(void)s;
	calls.poll++;
	pfd[0].fd = 42;
	pfd[0].events = POLLIN;
	which[0] = 7;
	return 1;
}

static int
fake_ready(struct slot *s, int which, short revents)
{
	(void)s;
	(void)revents;
	calls.ready++;
	return which == 7 ? 0 : -1;
}

static void
fake_stop(struct slot *s)
{
	(void)s;
	calls.stop++;
}

static void
fake_kill(struct slot *s)
{
	(void)s;
	calls.kill++;
}

static int
fake_drain(struct slot *s)
{
	(void)s;
	calls.drain++;
	return 0;
}

static void
fake_close(struct slot *s)
{
	(void)s;
	calls.close++;
}

static void
fake_describe(const struct slot *s, char *buf, size_t len)
{
	(void)s;
	(void)snprintf(buf, len, "fake");
}

static const struct slot_kind fake_kind = {
	"fake", fake_started, fake_poll, fake_ready, fake_stop, fake_kill,
	fake_drain, fake_close, fake_describe
};

static struct queue_conf Q = {
	.name = "q",
	.timeout_ms = 1500,
	.max_result = 100
};

static void
unref(void *r)
{
	assert_ptr_equal(r, &Q);
	calls.unref++;
}

static struct store_job *
job_new(int attempts)
{
	struct store_job *j;

	j = calloc(1, sizeof(*j));
	assert_non_null(j);
	(void)snprintf(j->id, sizeof(j->id), "J%d", attempts);
	j->attempts = attempts;
	return j;
}

static const int64_t T0 = 1000000;

/* A slot of the fake kind, driven along legal transitions into state st. */
static void
drive(struct slot *s, enum slot_state st)
{
	memset(s, 0, sizeof(*s));
	if (st == SLOT_FREE)
		return;
	s->kind = &fake_kind;
	assert_int_equal(slot_start(s, &Q, job_new(2), &Q, unref, T0), 0);
	if (st == SLOT_RUNNING)
		return;
	if (st == SLOT_STOPPING) {
		assert_int_equal(slot_stop(s, SLOT_STOP_TIMEOUT, T0 + 1500), 0);
		return;
	}
	assert_int_equal(slot_exited(s, 0, "exit 0"), 0);
	if (st == SLOT_EXITED)
		return;
	assert_int_equal(slot_drained(s), 0);
	if (st == SLOT_FINISHED)
		return;
	assert_int_equal(slot_outcome(s, T0 + 10), 0);
	assert_int_equal(slot_recorded(s, 1, 0), 0);
	assert_int_equal(s->state, SLOT_RECORDED);
}

enum event {
	EV_START, EV_STOP, EV_KILL, EV_EXITED, EV_DRAINED, EV_OUTCOME,
	EV_RECORDED, EV_UNRECORDED, EV_COMMITTED, EV_ABANDON, NEVENTS
};

static const char *const event_name[NEVENTS] = {
	"start", "stop", "kill", "exited", "drained", "outcome", "recorded",
	"unrecorded", "committed", "abandon"
};

static int
apply(struct slot *s, enum event ev, struct store_job **spare)
{
	switch (ev) {
	case EV_START:
		if (s->kind == NULL)
			s->kind = &fake_kind;
		*spare = job_new(1);
		return slot_start(s, &Q, *spare, &Q, unref, T0);
	case EV_STOP:
		return slot_stop(s, SLOT_STOP_SHUTDOWN, T0 + 5);
	case EV_KILL:
		return slot_kill(s);
	case EV_EXITED:
		return slot_exited(s, 3, "exit 3");
	case EV_DRAINED:
		return slot_drained(s);
	case EV_OUTCOME:
		return slot_outcome(s, T0 + 10);
	case EV_RECORDED:
		return slot_recorded(s, 1, 0);
	case EV_UNRECORDED:
		return slot_unrecorded(s, T0 + 1000);
	case EV_COMMITTED:
		return slot_committed(s);
	case EV_ABANDON:
		return slot_abandon(s);
	default:
		return -1;
	}
}

/* The state each event leads to from each state; -1: refused. */
static const int next_state[NEVENTS][NSTATES] = {
	/*		FREE	    RUNNING	   STOPPING	  EXITED
	 *		FINISHED    RECORDED */
	[EV_START] =	{ SLOT_RUNNING, -1, -1, -1, -1, -1 },
	[EV_STOP] =	{ -1, SLOT_STOPPING, -1, -1, -1, -1 },
	[EV_KILL] =	{ -1, -1, SLOT_STOPPING, -1, -1, -1 },
	[EV_EXITED] =	{ -1, SLOT_EXITED, SLOT_EXITED, -1, -1, -1 },
	[EV_DRAINED] =	{ -1, -1, -1, SLOT_FINISHED, -1, -1 },
	[EV_OUTCOME] =	{ -1, -1, -1, -1, SLOT_FINISHED, -1 },
	[EV_RECORDED] =	{ -1, -1, -1, -1, SLOT_RECORDED, -1 },
	[EV_UNRECORDED] = { -1, -1, -1, -1, SLOT_FINISHED, SLOT_FINISHED },
	[EV_COMMITTED] = { -1, -1, -1, -1, -1, SLOT_FREE },
	[EV_ABANDON] =	{ -1, -1, -1, -1, SLOT_FREE, SLOT_FREE },
};

static void
test_every_transition_from_every_state(void **state)
{
	struct store_job *spare;
	struct slot s, before;
	struct calls c;
	int ev, st, rc;

	(void)state;
	for (ev = 0; ev < NEVENTS; ev++)
		for (st = 0; st < NSTATES; st++) {
			drive(&s, (enum slot_state)st);
			spare = NULL;
			before = s;
			c = calls;
			rc = apply(&s, (enum event)ev, &spare);
			if (next_state[ev][st] == -1) {
				if (rc != -1)
					fail_msg("%s from %s: not refused",
					    event_name[ev],
					    slot_state_name(st));
				if (ev == EV_START)
					before.kind = s.kind;
				assert_memory_equal(&s, &before, sizeof(s));
				assert_memory_equal(&calls, &c, sizeof(c));
				free(spare);
			} else {
				if (rc == -1)
					fail_msg("%s from %s: refused",
					    event_name[ev],
					    slot_state_name(st));
				assert_int_equal(s.state, next_state[ev][st]);
			}
			slot_free(&s);
		}
}

static void
test_start_sets_timers_and_owns_job(void **state)
{
	struct slot s;

	(void)state;
	memset(&calls, 0, sizeof(calls));
	drive(&s, SLOT_RUNNING);
	assert_int_equal(calls.started, 1);
	assert_int_equal(s.attempt, 2);
	assert_int_equal(s.started, T0);
	assert_int_equal(s.deadline, T0 + 1500);
	assert_int_equal(s.extend_at, T0 + slot_lease_ms(&Q) / 2);
	assert_int_equal(slot_lease_ms(&Q),
	    1500 + SLOT_KILL_GRACE_MS + SLOT_LEASE_MARGIN_MS);
	assert_int_equal(s.out.b.max, 100);
	assert_false(slot_timed_out(&s, T0 + 1499));
	assert_true(slot_timed_out(&s, T0 + 1500));
	slot_free(&s);
	assert_int_equal(calls.kill, 1);	/* it was still running */
	assert_int_equal(calls.close, 1);
	assert_int_equal(calls.unref, 1);
	assert_int_equal(s.state, SLOT_FREE);

	/* No kind: nothing started, nothing to take the job. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(slot_start(&s, &Q, NULL, NULL, NULL, T0), -1);
}

static void
test_stop_then_kill(void **state)
{
	struct slot s;

	(void)state;
	memset(&calls, 0, sizeof(calls));
	drive(&s, SLOT_RUNNING);
	assert_int_equal(slot_stop(&s, SLOT_STOP_NONE, T0), -1);
	assert_int_equal(slot_stop(&s, SLOT_STOP_TIMEOUT, T0 + 1500), 0);
	assert_int_equal(calls.stop, 1);
	assert_int_equal(s.kill_at, T0 + 1500 + SLOT_KILL_GRACE_MS);
	assert_false(slot_timed_out(&s, T0 + 9999));	/* said once */
	assert_int_equal(slot_stop(&s, SLOT_STOP_SHUTDOWN, T0 + 1600), -1);
	assert_int_equal(s.stop, SLOT_STOP_TIMEOUT);
	assert_int_equal(slot_kill(&s), 0);
	assert_int_equal(calls.kill, 1);
	assert_int_equal(s.kill_at, 0);
	assert_int_equal(slot_exited(&s, -1, "killed by signal 9"), 0);
	assert_int_equal(s.kill_at, 0);
	/* Reaped: nothing is killed any more, not even when freed. */
	assert_int_equal(slot_kill(&s), -1);
	slot_free(&s);
	assert_int_equal(calls.kill, 1);
}

static void
test_poll_only_while_it_runs(void **state)
{
	struct pollfd pfd[SLOT_MAXFD];
	int which[SLOT_MAXFD], st;
	struct slot s;

	(void)state;
	for (st = 0; st < NSTATES; st++) {
		drive(&s, (enum slot_state)st);
		memset(&calls, 0, sizeof(calls));
		if (st == SLOT_RUNNING || st == SLOT_STOPPING) {
			assert_int_equal(slot_poll(&s, pfd, which), 1);
			assert_int_equal(which[0], 7);
			assert_int_equal(slot_ready(&s, 7, POLLIN), 0);
			assert_int_equal(slot_ready(&s, 8, POLLIN), -1);
			assert_int_equal(calls.ready, 2);
		} else {
			assert_int_equal(slot_poll(&s, pfd, which), 0);
			assert_int_equal(slot_ready(&s, 7, POLLIN), 0);
			assert_int_equal(calls.poll + calls.ready, 0);
		}
		slot_free(&s);
	}
}

static void
test_due_and_retry(void **state)
{
	struct slot s;

	(void)state;
	drive(&s, SLOT_EXITED);
	assert_false(slot_due(&s, T0));		/* not drained yet */
	assert_int_equal(slot_drained(&s), 0);
	assert_true(slot_due(&s, T0));
	assert_int_equal(slot_unrecorded(&s, T0 + 1000), 0);
	assert_false(slot_due(&s, T0 + 999));
	assert_true(slot_due(&s, T0 + 1000));
	assert_int_equal(slot_outcome(&s, T0 + 1000), 0);
	assert_int_equal(slot_recorded(&s, 0, 0), 0);
	assert_int_equal(s.rec.rc, 0);		/* the lease was lost */
	assert_true(slot_due(&s, T0 + 1000));
	/* The batch failed: back to FINISHED, due again later. */
	assert_int_equal(slot_unrecorded(&s, T0 + 2000), 0);
	assert_int_equal(s.state, SLOT_FINISHED);
	assert_false(slot_due(&s, T0 + 1999));
	slot_free(&s);
}

/* The outcome of a handler that ended with code/status after stop why. */
static void
outcome(enum slot_stop why, int code, const char *status,
    struct slot_outcome *o)
{
	struct slot s;

	drive(&s, SLOT_RUNNING);
	if (why != SLOT_STOP_NONE)
		assert_int_equal(slot_stop(&s, why, T0 + 100), 0);
	assert_int_equal(slot_exited(&s, code, status), 0);
	assert_int_equal(slot_drained(&s), 0);
	assert_int_equal(slot_outcome(&s, T0 + 250), 0);
	*o = s.rec;
	slot_free(&s);
}

static void
test_outcomes(void **state)
{
	static const struct {
		enum slot_stop	 why;
		int		 code;
		const char	*status;
		enum slot_result result;
		int		 permanent;
		const char	*reason;
	} t[] = {
		{ SLOT_STOP_NONE, 0, "exit 0", SLOT_DONE, 0, "" },
		{ SLOT_STOP_NONE, 65, "exit 65", SLOT_FAILED, 1,
		    "exit 65 (data error)" },
		{ SLOT_STOP_NONE, 75, "exit 75", SLOT_FAILED, 0,
		    "exit 75 (temporary failure)" },
		{ SLOT_STOP_NONE, 3, "exit 3", SLOT_FAILED, 0, "exit 3" },
		{ SLOT_STOP_NONE, -1, "killed by signal 11", SLOT_FAILED, 0,
		    "killed by signal 11" },
		/* Stopped at its timeout: failed, even if it then exits 0. */
		{ SLOT_STOP_TIMEOUT, 0, "exit 0", SLOT_FAILED, 0,
		    "timeout after 1500ms" },
		/* Stopped by the helper: released, whatever its exit. */
		{ SLOT_STOP_SHUTDOWN, 65, "exit 65", SLOT_RELEASED, 0,
		    "helper stopping (exit 65)" },
	};
	struct slot_outcome o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		outcome(t[i].why, t[i].code, t[i].status, &o);
		assert_int_equal(o.result, t[i].result);
		assert_int_equal(o.permanent, t[i].permanent);
		assert_string_equal(o.reason, t[i].reason);
		assert_int_equal(o.ms, 250);
	}
}

/* An exec: handler that exits 75 names its next run on stdout's first
 * line, as an upstream does with Retry-After; capped by backoff's cap. */
static int64_t
exit75(const char *out, int code)
{
	struct slot s;
	int64_t at;

	drive(&s, SLOT_RUNNING);
	assert_int_equal(buf_append(&s.out.b, out, strlen(out)), 0);
	assert_int_equal(slot_exited(&s, code, "exit 75"), 0);
	assert_int_equal(slot_drained(&s), 0);
	assert_int_equal(slot_outcome(&s, T0 + 250), 0);
	assert_int_equal(s.rec.result, SLOT_FAILED);
	at = s.rec.run_at;
	slot_free(&s);
	return at;
}

static void
test_exec_retry_after(void **state)
{
	int64_t before, at;

	(void)state;
	Q.backoff_max_ms = 3600 * 1000;
	before = store_now();
	at = exit75("Retry-After: 120\nwhy\n", 75);
	assert_true(at >= before + 120000 && at <= store_now() + 120000);
	at = exit75("retry-after:  30\r\n", 75);
	assert_true(at >= before + 30000 && at <= store_now() + 30000);
	/* An HTTP date in the past: now. */
	at = exit75("Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\n", 75);
	assert_true(at >= before && at <= store_now());
	/* Past the cap: the cap. */
	Q.backoff_max_ms = 60000;
	at = exit75("Retry-After: 86400\n", 75);
	assert_true(at >= before + 60000 && at <= store_now() + 60000);
	/* Not the first line, not a value, not exit 75: the backoff. */
	assert_int_equal(exit75("hello\nRetry-After: 5\n", 75), 0);
	assert_int_equal(exit75("Retry-After: soon\n", 75), 0);
	assert_int_equal(exit75("Retry-After: 5\n", 3), 0);
	Q.backoff_max_ms = 0;
}

/* An upstream kind's verdict decides, unless the helper stopped it. */
static void
test_upstream_outcomes(void **state)
{
	static const struct {
		enum slot_stop	 why;
		enum upstream_verdict v;
		int64_t		 run_at;
		enum slot_result result;
		int		 permanent;
		const char	*reason;
	} t[] = {
		{ SLOT_STOP_NONE, UPSTREAM_DONE, 0, SLOT_DONE, 0, "" },
		{ SLOT_STOP_NONE, UPSTREAM_RETRY, 4242, SLOT_FAILED, 0,
		    "http 503" },
		{ SLOT_STOP_NONE, UPSTREAM_DEAD, 0, SLOT_FAILED, 1,
		    "http 503" },
		{ SLOT_STOP_TIMEOUT, UPSTREAM_DONE, 0, SLOT_FAILED, 0,
		    "timeout after 1500ms" },
		{ SLOT_STOP_SHUTDOWN, UPSTREAM_RETRY, 0, SLOT_RELEASED, 0,
		    "helper stopping (aborted)" },
	};
	struct slot s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		drive(&s, SLOT_RUNNING);
		s.up.set = 1;
		s.up.verdict = t[i].v;
		s.up.run_at = t[i].run_at;
		snprintf(s.up.reason, sizeof(s.up.reason), "http 503");
		if (t[i].why != SLOT_STOP_NONE)
			assert_int_equal(slot_stop(&s, t[i].why, T0 + 1500), 0);
		assert_int_equal(slot_exited(&s, -1, "aborted"), 0);
		assert_int_equal(slot_drained(&s), 0);
		assert_int_equal(slot_outcome(&s, T0 + 250), 0);
		assert_int_equal(s.rec.result, t[i].result);
		assert_int_equal(s.rec.permanent, t[i].permanent);
		assert_string_equal(s.rec.reason, t[i].reason);
		assert_int_equal(s.rec.run_at, t[i].v == UPSTREAM_RETRY &&
		    t[i].why == SLOT_STOP_NONE ? t[i].run_at : 0);
		slot_free(&s);
	}
}

/* Poll s's fds until its kind has closed them all. */
static void
exec_run(struct slot *s)
{
	struct pollfd pfd[SLOT_MAXFD];
	int which[SLOT_MAXFD], n, i;

	while ((n = slot_poll(s, pfd, which)) > 0) {
		assert_true(poll(pfd, (nfds_t)n, 5000) > 0);
		for (i = 0; i < n; i++)
			if (pfd[i].revents != 0)
				assert_int_equal(slot_ready(s, which[i],
				    pfd[i].revents), 0);
	}
}

static void
exec_reap(struct slot *s)
{
	pid_t pid = exec_slot_pid(s);
	int status;

	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(exec_slot_reaped(s, status), 0);
	assert_int_equal(s->state, SLOT_EXITED);
	assert_int_equal(exec_slot_pid(s), 0);
	assert_int_equal(slot_drained(s), 0);
}

static void
test_exec_kind(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "cat; echo oops >&2; exit 75",
	    NULL };
	char *envp[] = { NULL };
	struct exec_limits lim = { 0 };
	struct store_job *job;
	struct slot s;

	(void)state;
	memset(&s, 0, sizeof(s));
	job = job_new(1);
	job->body = "hello";
	job->body_len = 5;
	assert_int_equal(exec_slot_spawn(&s, argv, envp, &lim), 0);
	assert_ptr_equal(s.kind, &exec_kind);
	assert_int_equal(exec_slot_pid(&s), 0);	/* not started yet */
	assert_int_equal(slot_start(&s, &Q, job, &Q, unref, T0), 0);
	assert_int_equal(exec_slot_pid(&s), s.u.exec.pid);
	/* A spawn into a slot in use is refused. */
	assert_int_equal(exec_slot_spawn(&s, argv, envp, &lim), -1);
	exec_run(&s);
	exec_reap(&s);
	assert_string_equal(s.status, "exit 75");
	assert_int_equal(s.code, 75);
	assert_int_equal(s.out.b.len, 5);
	assert_memory_equal(s.out.b.data, "hello", 5);
	assert_int_equal(s.err.total, 5);
	assert_int_equal(slot_outcome(&s, T0 + 1), 0);
	assert_string_equal(s.rec.reason, "exit 75 (temporary failure)");
	s.job->body = NULL;
	slot_free(&s);
}

static void
test_exec_kind_stop(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "exec sleep 30", NULL };
	char *envp[] = { NULL };
	struct exec_limits lim = { 0 };
	struct slot s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(exec_slot_spawn(&s, argv, envp, &lim), 0);
	assert_int_equal(slot_start(&s, &Q, job_new(1), &Q, unref, T0), 0);
	assert_int_equal(slot_stop(&s, SLOT_STOP_TIMEOUT, T0 + 1500), 0);
	exec_run(&s);
	exec_reap(&s);
	assert_string_equal(s.status, "killed by signal 15");
	assert_int_equal(slot_outcome(&s, T0 + 1600), 0);
	assert_int_equal(s.rec.result, SLOT_FAILED);
	assert_string_equal(s.rec.reason, "timeout after 1500ms");
	slot_free(&s);

	/* Freed while it runs (the helper leaving): killed. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(exec_slot_spawn(&s, argv, envp, &lim), 0);
	assert_int_equal(slot_start(&s, &Q, job_new(1), &Q, unref, T0), 0);
	{
		pid_t pid = s.u.exec.pid;
		int status;

		slot_free(&s);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_transition_from_every_state),
		cmocka_unit_test(test_start_sets_timers_and_owns_job),
		cmocka_unit_test(test_stop_then_kill),
		cmocka_unit_test(test_poll_only_while_it_runs),
		cmocka_unit_test(test_due_and_retry),
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_upstream_outcomes),
		cmocka_unit_test(test_exec_retry_after),
		cmocka_unit_test(test_exec_kind),
		cmocka_unit_test(test_exec_kind_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
