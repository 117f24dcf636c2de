/*
 * schedule: fcgiq.conf's [schedule NAME] sections, recurring jobs.
 *
 *   [schedule nightly-report]
 *   cron     = 0 3 * * *       five fields as crontab(5), or @daily ...
 *   timezone = Europe/Berlin   an IANA name; default the machine's
 *   queue    = reports         a configured queue
 *   body     = {"report":"daily"}     or body_file = /path (read at load)
 *   catch_up = last            last | none | all (after downtime)
 *
 * The helper enqueues each slot once (schedule_fire: the schedules
 * table's last_slot and the job, with the idempotency key
 * "schedule:NAME:SLOTMS", in one transaction).
 */
#ifndef FCGIQ_SCHEDULE_H
#define FCGIQ_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"

struct config;
struct store;

enum schedule_catch_up {
	CATCH_UP_LAST = 0,	/* one run for the slots missed */
	CATCH_UP_NONE,		/* none; only a slot on time runs */
	CATCH_UP_ALL		/* each missed slot, the newest SCHEDULE_ALL_MAX */
};

#define SCHEDULE_ALL_MAX	1000		/* catch_up = all's bound */
#define SCHEDULE_ON_TIME_MS	60000		/* catch_up = none's grace */

struct schedule_conf {
	char		*name;
	char		*cron_text;	/* as written */
	struct cron	 cron;
	char		*timezone;	/* NULL: the machine's local time */
	char		*queue;
	char		*body;		/* NULL: empty */
	size_t		 body_len;
	int		 catch_up;	/* enum schedule_catch_up */
	int		 line;		/* the section's first key */
	int		 has_cron;
};

struct schedules {
	struct schedule_conf	*v;
	size_t			 n;
};

/*
 * One key of section [schedule NAME] (section is "schedule NAME") into c's
 * schedules.  0, or -1 with "schedule NAME: key: why" in msg.
 */
int	schedule_key(struct config *c, const char *section, const char *key,
	    const char *value, int line, char *msg, size_t len);
/* What the file left unsaid, once it is read (the queue exists, a cron is
 * written).  0, or -1 with "FILE:LINE: schedule NAME: why" in err. */
int	schedule_finish(const struct config *c, char *err, size_t errlen);
void	schedule_free(struct schedules *);

/*
 * The wall clock for schedules, Unix ms: the real one, or for tests only
 * the number in the file FCGIQ_TEST_CLOCK names (read each call).
 */
int64_t	schedule_now(void);

/* The first slot of sc after after (Unix ms): 1 *slot set, 0 none. */
int	schedule_next(const struct schedule_conf *sc, int64_t after,
	    int64_t *slot);

/*
 * Enqueue sc's slots due at now into its queue, in one transaction with
 * the schedules table: the slots after the last one enqueued (since - 1
 * when the table has none for sc), as catch_up says; one job per slot,
 * with the idempotency key "schedule:NAME:SLOTMS".  *last is set to the
 * last slot now accounted for, *n to the jobs enqueued.  0 or -1 (store
 * error, kept by s).
 */
int	schedule_fire(struct store *s, const struct schedule_conf *sc,
	    int max_attempts, int priority, int64_t now, int64_t since,
	    int64_t *last, int *n);

#endif /* FCGIQ_SCHEDULE_H */
