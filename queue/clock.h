/*
 * clock: the monotonic clock in milliseconds (microseconds for short waits),
 * for deadlines, timeouts and intervals (never for what is stored: that is
 * store_now(), wall time).
 */
#ifndef FCGIQ_CLOCK_H
#define FCGIQ_CLOCK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* The monotonic clock in microseconds (the store's busy wait steps). */
static inline int64_t
mono_us(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The monotonic clock in milliseconds. */
static inline int64_t
mono_ms(void)
{
	return mono_us() / 1000;
}

/* A duration for a log line or a reason: "5s", or "1500ms". */
static inline void
clock_fmt(int64_t ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRId64 "ms", ms);
}

#endif
