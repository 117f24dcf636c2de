/*
 * ctl-schedules: fcgiqctl schedules, each [schedule NAME] of the
 * configuration with the last slot the database says was enqueued and
 * its next run.
 */
#ifndef FCGIQ_CTL_SCHEDULES_H
#define FCGIQ_CTL_SCHEDULES_H

struct config;
struct store;

/* Print c's schedules (a table, or JSON when json), reading last slots
 * from s.  0, or 1 on a database error (reported on stderr). */
int	ctl_schedules(const struct config *c, struct store *s, int json);

#endif
