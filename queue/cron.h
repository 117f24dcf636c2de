/*
 * cron: five-field expressions as crontab(5) reads them, and the slots they
 * name on a time zone's wall clock.
 *
 * A slot is a local wall-clock minute the expression matches, placed on
 * the time line as cron does across daylight saving time: a minute that
 * the zone skips (spring forward) runs once, at the instant of the jump;
 * a minute that the zone repeats (fall back) runs once, at its first
 * occurrence.  Several skipped minutes all land on the jump: one run.
 */
#ifndef FCGIQ_CRON_H
#define FCGIQ_CRON_H

#include <stddef.h>
#include <stdint.h>

struct cron {
	uint64_t	minute;		/* bits 0-59 */
	uint32_t	hour;		/* bits 0-23 */
	uint32_t	dom;		/* bits 1-31 */
	uint32_t	month;		/* bits 1-12 */
	uint32_t	dow;		/* bits 0-6, Sunday 0 (7 folded in) */
	int		dom_star;	/* the field began with '*' */
	int		dow_star;
};

/*
 * Parse expr (five fields, or @hourly, @daily, @midnight, @weekly,
 * @monthly, @yearly, @annually) into *c.  0, or -1 with "cron: FIELD: why"
 * in err.
 */
int	cron_parse(struct cron *c, const char *expr, char *err, size_t errlen);

/*
 * The first slot of c strictly after the instant after (Unix ms), on the
 * wall clock of the process's current time zone (TZ, see cron_tz_enter).
 * 1: *slot set (a whole minute, Unix ms); 0: none within 30 years.
 */
int	cron_next(const struct cron *c, int64_t after, int64_t *slot);

/*
 * Run the wall-clock arithmetic of zone (an IANA name; NULL: the
 * machine's local time) until cron_tz_leave.  The C library keeps one time
 * zone per process (TZ and tzset), so this is for single-threaded
 * programs only: the helper's loop and fcgiqctl, which have no other
 * thread that reads the time zone meanwhile.  0, or -1 when zone names no
 * file under /usr/share/zoneinfo.
 */
int	cron_tz_enter(const char *zone);
void	cron_tz_leave(void);

/* 1 when zone is a safe IANA name with a file under /usr/share/zoneinfo. */
int	cron_tz_valid(const char *zone);

/* The local date and time of ms in the current zone ("2026-03-29 03:00
 * CEST") into buf. */
void	cron_fmt_local(int64_t ms, char *buf, size_t len);

#endif /* FCGIQ_CRON_H */
