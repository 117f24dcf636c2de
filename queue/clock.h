/*
 * clock: the monotonic clock in milliseconds, for deadlines, timeouts and
 * intervals (never for what is stored: that is store_now(), wall time).
 */
#ifndef FCGIQ_CLOCK_H
#define FCGIQ_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
