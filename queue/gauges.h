/*
 * gauges: what an exposition reads from the database and beside it, per
 * configured queue (the label set is the configuration's, so bounded):
 * each queue's head of line, its counts per state, and whether a helper
 * holds the database's helper lock.  Used by the responder's metrics role
 * and by `fcgiqctl stats --prometheus`.
 */
#ifndef FCGIQ_GAUGES_H
#define FCGIQ_GAUGES_H

#include <stddef.h>
#include <stdint.h>

#include "expo.h"

struct config;
struct store;

/* One zeroed entry per queue of c (names borrowed from c), malloc'd;
 * NULL when out of memory. */
struct expo_queue *gauges_new(const struct config *c);

/* The head of line of q[0..n) as of now (wall ms).  0, or -1 (store's
 * error) with what was read before kept. */
int	gauges_heads(struct store *s, struct expo_queue *q, size_t n,
	    int64_t now);

/* The counts per state of q[0..n), each have_counts set.  0 or -1. */
int	gauges_counts(struct store *s, struct expo_queue *q, size_t n);

/*
 * The helpers' lock of database on this host into buf: DATABASE-helper.lock
 * with SQLite (the active helper holds it exclusively); with PostgreSQL,
 * where every helper is active, METRICS_FILE-helper.lock (each helper of
 * the host holds it shared).  0; -1 when there is none (PostgreSQL without
 * a metrics_file) or it does not fit.
 */
int	gauges_lock_path(const char *database, char *buf, size_t len);

/* 1 when a helper of this host holds database's helper lock, 0 when none
 * does, -1 when it cannot be told (no lock file is 0). */
int	gauges_helper_up(const char *database);

/*
 * The shared counts into q[0..n) (have_counts set when there are any),
 * moved on by what the counters of sum (metrics_sum's, NULL: none) did
 * since the count: the jobs fcgiq enqueued, started, finished and
 * cancelled.  The split of the waiting jobs between queued and retry
 * stays the count's (a start does not say which it took).
 */
void	gauges_from_counts(struct expo_queue *q, size_t n,
	    const struct metrics_counts *mc, const struct metrics_slot *sum);
/* The same with the counters summed here for database: 1, or 0 when
 * there are no counts yet; *age_s the count's age in seconds. */
int	gauges_live_counts(struct expo_queue *q, size_t n,
	    const char *database, int64_t now, double *age_s);
/* Count q[0..n) on s into the shared counts, timing it: 0 or -1. */
int	gauges_count_shared(struct store *s, const struct config *c);

/*
 * Append the whole exposition for configuration c to b: the heads of line
 * read on s, the shared counts (counted here first when count_here and
 * they are due), every process's counters, the helper's lock.  A database
 * error leaves its gauges out (the counters still go out): 0; -1 only when
 * out of memory.
 */
int	gauges_render(struct buf *b, const struct config *c, struct store *s,
	    int count_here);

#endif /* FCGIQ_GAUGES_H */
