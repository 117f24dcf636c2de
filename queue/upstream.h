/*
 * upstream: what the handler kinds that hand a job to an application
 * already running (fastcgi:, http:) share.  An answer's HTTP status is
 * the job's verdict; a Retry-After sets its next run, within the queue's
 * backoff cap; last_error is one line, the reason and a bounded tail of
 * what the upstream said (FastCGI's stderr, an HTTP body); and an
 * upstream that is down is logged once a minute, not once a job.  Pure
 * functions and small structs: no I/O, no allocation.
 */
#ifndef FCGIQ_UPSTREAM_H
#define FCGIQ_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"

enum upstream_verdict {
	UPSTREAM_DONE = 0,	/* 2xx: the result is the answer's body */
	UPSTREAM_RETRY,		/* 408, 425, 429, 5xx, transport: try again */
	UPSTREAM_DEAD		/* any other 4xx: the request itself is wrong */
};

/*
 * What an upstream kind found, for slot_outcome(): set (set = 1) by the
 * kind before it calls slot_exited().  reason is the one-line cause
 * ("http 503 from ci.internal:8443"); type the answer's media type.
 */
struct upstream_answer {
	int		 set;
	enum upstream_verdict verdict;
	int		 status;	/* HTTP status, 0: none (transport) */
	int64_t		 run_at;	/* Retry-After (wall ms), 0: backoff */
	char		 type[128];	/* Content-Type, "" when none */
	char		 reason[128];	/* as slot_outcome's */
	int		 quiet;		/* the kind logged it (upstream_gate):
					 * the job's own line at debug */
};

/* The verdict of an answer with HTTP status status (100-599; anything
 * else is a broken answer: UPSTREAM_RETRY).  1xx and 3xx are not
 * successes and the request may be fine: UPSTREAM_RETRY. */
enum upstream_verdict upstream_verdict(int status);

/*
 * A Retry-After value (RFC 9110 10.2.3: delay-seconds, or an HTTP-date:
 * IMF-fixdate, and the obsolete RFC 850 and asctime forms) read as of now
 * (wall ms) into *run_at: at most now + cap_ms, a date past is now.  1,
 * or 0 when value is not one (then *run_at is untouched).
 */
int	upstream_retry_after(const char *value, int64_t now, int64_t cap_ms,
	    int64_t *run_at);

/* Keep the last EXEC_TAIL bytes of p[0..n) in t (after what it holds). */
void	upstream_tail_add(struct exec_tail *t, const void *p, size_t n);

/*
 * last_error as one line into buf (len > 0 bytes, always terminated):
 * reason, then ": " and the last UPSTREAM_TAIL_SHOWN bytes of t (NULL or
 * empty: none), "..." first when cut; newlines, tabs and runs of blanks
 * become one space, other control characters and bytes that are not
 * UTF-8 '?', and it is cut on a character boundary to fit.
 */
#define UPSTREAM_TAIL_SHOWN	512
#define UPSTREAM_ERROR_MAX	1024	/* a last_error line, with its NUL */
void	upstream_error_line(char *buf, size_t len, const char *reason,
	    const struct exec_tail *t);

/*
 * "Unreachable" in the log once per UPSTREAM_GATE_MS per upstream, not
 * once per job: each upstream keeps a gate.  upstream_gate_pass() says 1
 * when the message is due now (monotonic ms), with *held the number of
 * messages kept back since the last one; 0 when it is to be kept back.
 * upstream_gate_reset() (the upstream answered) makes the next one due at
 * once.
 */
#define UPSTREAM_GATE_MS	60000
struct upstream_gate {
	int64_t		 next;		/* 0: due */
	unsigned long	 held;
};
int	upstream_gate_pass(struct upstream_gate *g, int64_t now,
	    unsigned long *held);
void	upstream_gate_reset(struct upstream_gate *g);

#endif /* FCGIQ_UPSTREAM_H */
