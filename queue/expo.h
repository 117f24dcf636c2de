/*
 * expo: the Prometheus text exposition (format 0.0.4) of fcgiq's metrics:
 * the shared counters summed (metrics.h) and the gauges read from the
 * database, for the responder's metrics role and `fcgiqctl stats
 * --prometheus` alike.  Pure: it formats what it is given.
 */
#ifndef FCGIQ_EXPO_H
#define FCGIQ_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"

#define EXPO_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define EXPO_NSTATES		6	/* enum store_state, queued .. cancelled */

/* What the database says of one configured queue. */
struct expo_queue {
	const char	*name;
	int		 have_counts;	/* count[] was read */
	int64_t		 count[EXPO_NSTATES];
	int		 have_head;	/* the two below were read */
	double		 oldest_waiting_s;
	double		 past_due_s;
};

struct expo_input {
	const struct metrics_slot *sum;	/* every process's counts */
	/* The names of the counters' queue table (metrics_sum). */
	char		(*names)[METRICS_QUEUE_NAME];
	const struct expo_queue *q;	/* the configured queues */
	size_t		 nq;
	double		 counts_age_s;	/* < 0: no counts at all */
	int		 helper_up;	/* 1, 0; -1: unknown */
};

/* Append the exposition of in to b.  0, or -1 when out of memory. */
int	expo_write(struct buf *b, const struct expo_input *in);

/* Append s as a label value (backslash, double quote and newline escaped,
 * as the format asks).  0 or -1. */
int	expo_label_value(struct buf *b, const char *s);

#endif /* FCGIQ_EXPO_H */
