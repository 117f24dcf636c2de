/*
 * helper: the consumer.  fcgiq calls helper_start() once at start-up, before
 * any thread or SQLite handle exists; it forks a supervisor that runs (and
 * re-forks when it dies) the helper proper.  Only one helper per database is
 * active (an exclusive lock on a file beside it); the others are standbys.
 * The helper exits when the process that started it goes away.
 */
#ifndef FCGIQ_HELPER_H
#define FCGIQ_HELPER_H

#include <sys/types.h>

struct config;

/*
 * Fork the helper for conf (conf_path: the file to reload on SIGHUP, or
 * NULL).  Returns the child's pid, or -1.  The caller must not have threads
 * or database connections yet.
 */
pid_t	helper_start(const char *conf_path);

/*
 * Start the supervisor again, from a process that already has threads and
 * database handles (the first one was killed): fork, and in the child only
 * execve this program as `fcgiq supervise [-c conf_path]` with the watch
 * pipe on fd 3, so nothing of the parent's state crosses into it.  Returns
 * the child's pid, or -1.
 */
pid_t	helper_respawn(const char *conf_path);

/* The supervisor of a process started by helper_respawn(): fd 3 is the
 * pipe whose EOF says fcgiq is gone.  Exit code. */
int	helper_supervise(const char *conf_path, int parent_fd);

/* Ask the helper started by helper_start() to finish (SIGTERM) and wait. */
void	helper_stop(pid_t pid);

/* Run a helper in this process until SIGTERM/SIGINT (fcgiq work).  Exit code. */
int	helper_main(const char *conf_path, int parent_fd);

#endif /* FCGIQ_HELPER_H */
