/*
 * flow: what decides whether the helper may start one more job of a queue
 * beyond its concurrency: a rate limit (a token bucket, rate and burst),
 * a circuit breaker (pause_after consecutive failed attempts pause the
 * queue for pause_for, then one job probes), the share of the queue's
 * slots its retries may take (retry_concurrency), and how many crashes
 * make a job dead (quarantine_after).  The keys of [queue NAME] that set
 * them, their parsing, and the two state machines as pure functions of
 * an injected clock: no I/O, no allocation, no store.
 */
#ifndef FCGIQ_FLOW_H
#define FCGIQ_FLOW_H

#include <stddef.h>
#include <stdint.h>

#define FLOW_PAUSE_FOR_MS	60000	/* pause_for's default */
#define FLOW_QUARANTINE		3	/* quarantine_after's default */

/* A queue's flow keys; flow_conf_defaults() gives the defaults. */
struct flow_conf {
	int	 rate;			/* jobs a period; 0: no limit */
	int64_t	 period_ms;		/* rate's period: 1 s, 1 m, 1 h */
	int	 burst;			/* 0: one second's worth (rate_burst) */
	int	 pause_after;		/* failed attempts in a row; 0: no
					   breaker */
	int64_t	 pause_for_ms;		/* first pause, doubled up to the cap */
	int	 retry_concurrency;	/* 0: half the concurrency, at least 1 */
	int	 quarantine_after;	/* crashes that make a job dead; 0: off */
};

void	flow_conf_defaults(struct flow_conf *f);

/*
 * When name is one of the flow keys (rate, burst, pause_after, pause_for,
 * retry_concurrency, quarantine_after): 1, with *rc 0 (value taken) or -1
 * (bad value, the reason in msg).  0 when name is no flow key.
 */
int	flow_conf_key(struct flow_conf *f, const char *name, const char *value,
	    char *msg, size_t len, int *rc);

/* "10/s", "600/m", "5/h" into *n and *period_ms: 0, or -1. */
int	flow_parse_rate(const char *s, int *n, int64_t *period_ms);

/* The bucket's size: burst, or one second's worth of the rate, at least 1. */
int	flow_burst(const struct flow_conf *f);

/* Slots a queue of concurrency c lets its retries hold. */
int	flow_retry_slots(const struct flow_conf *f, int c);

/*
 * The rate limit as a token bucket, kept as the time the bucket would be
 * full again (GCRA: one number, exact over any span, no drift).  Times
 * are monotonic ms.
 */
struct flow_bucket {
	int64_t	 tat_us;		/* theoretical arrival time */
};

/* 1 when a token is there at now (none is taken); 0 when not, with
 * *next the time one is (*next untouched when there is no limit). */
int	flow_bucket_ready(const struct flow_bucket *b, const struct flow_conf *f,
	    int64_t now, int64_t *next);
/* Take a token at now (a job started; the caller asked ready first). */
void	flow_bucket_take(struct flow_bucket *b, const struct flow_conf *f,
	    int64_t now);

/*
 * The circuit breaker.  Times are wall ms (the state outlives the helper
 * in the store).
 *
 *            pause_after failures in a row
 *   CLOSED -------------------------------> OPEN  (pause_for, trips + 1)
 *     ^  ^                                   |  ^
 *     |  |         any success               |  | the probe failed
 *     |  +-----------------------------------+  | (pause doubled, up to
 *     |                                      |  |  the cap; trips + 1)
 *     |        the probe succeeded           v  |
 *     +---------------------------------- HALF_OPEN
 *                                (open_until passed: one job starts)
 */
enum flow_breaker_state {
	FLOW_CLOSED = 0,
	FLOW_OPEN,
	FLOW_HALF_OPEN
};

/* What a call did to the breaker, for its log line and its store row. */
enum flow_event {
	FLOW_EV_NONE = 0,
	FLOW_EV_OPENED,		/* CLOSED -> OPEN, or a probe failed */
	FLOW_EV_HALF_OPEN,	/* OPEN -> HALF_OPEN */
	FLOW_EV_CLOSED		/* -> CLOSED */
};

struct flow_breaker {
	enum flow_breaker_state state;
	int	 failures;		/* failed attempts in a row */
	int64_t	 open_until;		/* OPEN: until then; 0 when CLOSED */
	int64_t	 pause_ms;		/* the last pause (0: none yet) */
	int64_t	 trips;			/* times it opened */
	int	 probing;		/* HALF_OPEN: the probe has started */
};

/* "closed", "open", "half-open". */
const char	*flow_breaker_name(enum flow_breaker_state);

/*
 * May a job start at now?  1 yes; 0 no, with *next when to ask again
 * (untouched when only an outcome can change it).  An OPEN breaker past
 * open_until becomes HALF_OPEN here (*ev says so).
 */
int	flow_breaker_allow(struct flow_breaker *b, const struct flow_conf *f,
	    int64_t now, int64_t *next, enum flow_event *ev);
/* A job started: in HALF_OPEN it is the probe. */
void	flow_breaker_started(struct flow_breaker *b);
/* The probe ended without an outcome (released): another may start. */
void	flow_breaker_released(struct flow_breaker *b);

/*
 * An attempt ended at now: ok (done) or failed.  probe: it is the job
 * HALF_OPEN let through.  cap_ms bounds the doubled pause (backoff's
 * cap).  Returns the transition made, FLOW_EV_NONE when none.
 */
enum flow_event flow_breaker_outcome(struct flow_breaker *b,
	    const struct flow_conf *f, int ok, int probe, int64_t cap_ms,
	    int64_t now);

#endif /* FCGIQ_FLOW_H */
