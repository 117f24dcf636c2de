/*
 * ctl-bulk: fcgiqctl retry, discard and cancel of many jobs at once, by
 * filters (store_bulk), with a count, a question on a terminal and a
 * progress line.
 */
#ifndef FCGIQ_CTL_BULK_H
#define FCGIQ_CTL_BULK_H

#include "config.h"
#include "store.h"

struct ctl_bulk_env {
	const struct config	*conf;
	int			 json;		/* --json */
	struct store		*(*open)(int readonly);	/* exits on failure */
};

/* 1 when argv (after the command) has an option of the bulk form (a
 * filter, --all-matching, --yes, --batch), else 0. */
int	ctl_bulk_wanted(int argc, char **argv);

/* Run "retry|discard|cancel [filters] --all-matching [--yes]" (argv[0]
 * names which): the exit code, after the messages. */
int	ctl_bulk(const struct ctl_bulk_env *env, int argc, char **argv);

#endif /* FCGIQ_CTL_BULK_H */
