/*
 * flow.c: a queue's flow keys and the two state machines that use them,
 * the token bucket and the circuit breaker (flow.h).  Everything here is a
 * pure function of its arguments and the clock it is given, so the unit
 * tests drive it through hours in microseconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flow.h"

void
flow_conf_defaults(struct flow_conf *f)
{
	memset(f, 0, sizeof(*f));
	f->pause_for_ms = FLOW_PAUSE_FOR_MS;
	f->quarantine_after = FLOW_QUARANTINE;
}

/* A whole number from lo to hi: 0, or -1. */
static int
parse_num(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int
flow_parse_rate(const char *s, int *n, int64_t *period_ms)
{
	const char *slash;
	char num[16];
	size_t len;

	if ((slash = strchr(s, '/')) == NULL ||
	    (len = (size_t)(slash - s)) == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	/* 1,000,000 a period: far past what one helper starts. */
	if (parse_num(num, 1, 1000000, n) == -1)
		return -1;
	if (strcmp(slash + 1, "s") == 0)
		*period_ms = 1000;
	else if (strcmp(slash + 1, "m") == 0)
		*period_ms = 60 * 1000;
	else if (strcmp(slash + 1, "h") == 0)
		*period_ms = 3600 * 1000;
	else
		return -1;
	return 0;
}

int
flow_conf_key(struct flow_conf *f, const char *name, const char *value,
    char *msg, size_t len, int *rc)
{
	const char *want;
	int64_t ms;

	*rc = 0;
	if (strcmp(name, "rate") == 0) {
		want = "N/s, N/m or N/h, N from 1 to 1000000";
		if (flow_parse_rate(value, &f->rate, &f->period_ms) == -1)
			goto bad;
	} else if (strcmp(name, "burst") == 0) {
		want = "a number from 1 to 1000000";
		if (parse_num(value, 1, 1000000, &f->burst) == -1)
			goto bad;
	} else if (strcmp(name, "pause_after") == 0) {
		want = "a number from 0 (no breaker) to 1000000";
		if (parse_num(value, 0, 1000000, &f->pause_after) == -1)
			goto bad;
	} else if (strcmp(name, "pause_for") == 0) {
		want = "a duration of at least 1s";
		if (config_parse_duration(value, &ms) == -1 || ms < 1000)
			goto bad;
		f->pause_for_ms = ms;
	} else if (strcmp(name, "retry_concurrency") == 0) {
		want = "a number from 1 to 256";
		if (parse_num(value, 1, 256, &f->retry_concurrency) == -1)
			goto bad;
	} else if (strcmp(name, "quarantine_after") == 0) {
		want = "a number from 0 (off) to 1000";
		if (parse_num(value, 0, 1000, &f->quarantine_after) == -1)
			goto bad;
	} else
		return 0;
	return 1;
bad:
	snprintf(msg, len, "%s: bad value \"%s\" (%s)", name, value, want);
	*rc = -1;
	return 1;
}

int
flow_burst(const struct flow_conf *f)
{
	int64_t n;

	if (f->burst > 0)
		return f->burst;
	/* One second's worth: a queue limited per hour does not start an
	 * hour's jobs at once after a quiet spell. */
	n = (int64_t)f->rate * 1000 / (f->period_ms > 0 ? f->period_ms : 1000);
	return n < 1 ? 1 : (int)n;
}

int
flow_retry_slots(const struct flow_conf *f, int c)
{
	if (f->retry_concurrency > 0)
		return f->retry_concurrency < c ? f->retry_concurrency : c;
	return c / 2 < 1 ? 1 : c / 2;
}

/* ---------------------------------------------------------------- bucket */

/* The time between two tokens, in microseconds. */
static int64_t
interval_us(const struct flow_conf *f)
{
	return f->period_ms * 1000 / f->rate;
}

int
flow_bucket_ready(const struct flow_bucket *b, const struct flow_conf *f,
    int64_t now, int64_t *next)
{
	int64_t now_us = now * 1000, tat, tau, at_us;

	if (f->rate <= 0)
		return 1;
	tat = b->tat_us > now_us ? b->tat_us : now_us;
	tau = (int64_t)(flow_burst(f) - 1) * interval_us(f);
	if (tat - now_us <= tau)
		return 1;
	/* Rounded up: asking again a millisecond early would find none. */
	at_us = tat - tau;
	*next = (at_us + 999) / 1000;
	return 0;
}

void
flow_bucket_take(struct flow_bucket *b, const struct flow_conf *f,
    int64_t now)
{
	int64_t now_us = now * 1000;

	if (f->rate <= 0)
		return;
	b->tat_us = (b->tat_us > now_us ? b->tat_us : now_us) +
	    interval_us(f);
}

/* --------------------------------------------------------------- breaker */

const char *
flow_breaker_name(enum flow_breaker_state st)
{
	switch (st) {
	case FLOW_CLOSED:
		return "closed";
	case FLOW_OPEN:
		return "open";
	case FLOW_HALF_OPEN:
		return "half-open";
	}
	return "?";
}

int
flow_breaker_allow(struct flow_breaker *b, const struct flow_conf *f,
    int64_t now, int64_t *next, enum flow_event *ev)
{
	*ev = FLOW_EV_NONE;
	if (f->pause_after <= 0 && b->state != FLOW_CLOSED) {
		/* The key was taken away (a reload): nothing holds it. */
		b->state = FLOW_CLOSED;
		b->failures = 0;
		b->open_until = 0;
		*ev = FLOW_EV_CLOSED;
	}
	switch (b->state) {
	case FLOW_CLOSED:
		return 1;
	case FLOW_OPEN:
		if (now < b->open_until) {
			*next = b->open_until;
			return 0;
		}
		b->state = FLOW_HALF_OPEN;
		b->probing = 0;
		*ev = FLOW_EV_HALF_OPEN;
		/* FALLTHROUGH */
	case FLOW_HALF_OPEN:
		return !b->probing;
	}
	return 1;
}

void
flow_breaker_started(struct flow_breaker *b)
{
	if (b->state == FLOW_HALF_OPEN)
		b->probing = 1;
}

void
flow_breaker_released(struct flow_breaker *b)
{
	if (b->state == FLOW_HALF_OPEN)
		b->probing = 0;
}

/* Open from now for pause (capped), one trip more. */
static void
breaker_open(struct flow_breaker *b, int64_t pause, int64_t cap_ms,
    int64_t now)
{
	if (cap_ms > 0 && pause > cap_ms)
		pause = cap_ms;
	b->state = FLOW_OPEN;
	b->pause_ms = pause;
	b->open_until = now + pause;
	b->probing = 0;
	b->trips++;
}

enum flow_event
flow_breaker_outcome(struct flow_breaker *b, const struct flow_conf *f,
    int ok, int probe, int64_t cap_ms, int64_t now)
{
	if (ok) {
		/* Whichever job it was, the upstream answered. */
		b->failures = 0;
		if (b->state == FLOW_CLOSED)
			return FLOW_EV_NONE;
		b->state = FLOW_CLOSED;
		b->open_until = 0;
		b->pause_ms = 0;
		b->probing = 0;
		return FLOW_EV_CLOSED;
	}
	if (f->pause_after <= 0)
		return FLOW_EV_NONE;
	switch (b->state) {
	case FLOW_CLOSED:
		if (++b->failures < f->pause_after)
			return FLOW_EV_NONE;
		breaker_open(b, f->pause_for_ms, cap_ms, now);
		return FLOW_EV_OPENED;
	case FLOW_OPEN:
		/* Started before it opened: the pause already says it. */
		b->failures++;
		return FLOW_EV_NONE;
	case FLOW_HALF_OPEN:
		b->failures++;
		if (!probe)
			return FLOW_EV_NONE;
		breaker_open(b, b->pause_ms > 0 ? b->pause_ms * 2 :
		    f->pause_for_ms, cap_ms, now);
		return FLOW_EV_OPENED;
	}
	return FLOW_EV_NONE;
}
