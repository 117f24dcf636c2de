/*
 * eta: how long a client should wait before it looks again (Retry-After
 * on a 202, on the status of an unfinished job, on the 503 of a full
 * queue): the jobs ahead over the queue's measured drain rate, at least a
 * second.  Answers come from a per-queue cache that a thread of its own
 * refreshes, so asking costs a lock and never a query.
 */
#ifndef FCGIQ_ETA_H
#define FCGIQ_ETA_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define ETA_WINDOW_MS	60000	/* the drain rate looks this far back */
#define ETA_SAMPLE	1000	/* at most this many finished jobs read */
#define ETA_STALLED_S	60	/* jobs wait, none finished in the window */
#define ETA_MAX_S	3600

/*
 * Start the refresher on its own read-only connection to the database at
 * path.  0, or -1 with a message in err.  Without it, eta_seconds()
 * answers 1 (no measurement).
 */
int	eta_start(const char *path, const struct store_opts *opts, char *err,
	    size_t errlen);
/* Stop the refresher and free the cache (at exit). */
void	eta_stop(void);

/*
 * Seconds until ahead jobs of queue have drained (ahead < 0: the queue's
 * waiting jobs, as group commit counts them), from the cache; asks for a
 * refresh when it is older than a second.  Never blocks on the database.
 */
int	eta_seconds(const char *queue, int64_t ahead);

/*
 * The estimate itself: ahead jobs at rate jobs/s (rate < 0: not measured)
 * as whole seconds within [1, ETA_MAX_S]; ETA_STALLED_S when jobs wait
 * and none drained.
 */
int	eta_estimate(int64_t ahead, double rate);

/* A queue's drain rate, jobs/s, from store_drain()'s n and oldest at
 * now: n over the span since oldest, at least a second when n is under
 * ETA_SAMPLE. */
double	eta_rate(int64_t n, int64_t oldest, int64_t now);

#endif /* FCGIQ_ETA_H */
