/*
 * supervisor: the life of the helper processes, from fork to stop.
 *
 *   fcgiq ──fork──> fcgiq-superv ──fork──> fcgiq-helper (helper_main)
 *     │  (pipe: EOF = fcgiq gone)  re-forks it when it dies
 *     └─ supervisor killed: re-created through execve of `fcgiq supervise`
 *
 * fcgiq calls supervisor_start() once, before any thread or SQLite handle
 * exists, supervisor_reap() after each SIGCHLD, supervisor_reload() on
 * SIGHUP and supervisor_stop() at shutdown.  A helper process stands by
 * in supervisor_lock() until it holds its database's helper lock: one
 * active helper per database.  supervisor_main() parses the sub-commands
 * that run a helper: `fcgiq work` (one helper alone, for a unit of its
 * own) and `fcgiq supervise` (internal: the re-created supervisor).
 */
#ifndef FCGIQ_SUPERVISOR_H
#define FCGIQ_SUPERVISOR_H

#include <sys/types.h>

#include <stdint.h>

/* One supervisor process as its fcgiq sees it. */
struct supervisor {
	pid_t		 pid;		/* -1: none running */
	int		 watch_fd;	/* our end of the pipe it watches */
	const char	*conf_path;	/* borrowed; NULL: embedded default */
	int64_t		 respawned;	/* monotonic ms of the last re-creation */
};

/*
 * Fork the supervisor of conf_path's helper into sv.  The caller has no
 * threads and no database connection yet.  0, or -1 with errno.
 */
int	supervisor_start(struct supervisor *sv, const char *conf_path);

/*
 * After SIGCHLD: reap every exited child; when sv's supervisor is among
 * them and respawn is set, re-create it through execve of `fcgiq
 * supervise` (at most once a second), since threads exist by now.
 * Logs what it does.
 */
void	supervisor_reap(struct supervisor *sv, int respawn);

/* Forward SIGHUP to sv's supervisor (it reloads its helper).  0 (also
 * when none runs), or -1 with errno. */
int	supervisor_reload(struct supervisor *sv);

/* Ask sv's supervisor and helper to finish (SIGTERM), wait for it, and
 * close the watched pipe. */
void	supervisor_stop(struct supervisor *sv);

/*
 * The sub-commands of fcgiq that run a helper: argv[0] is "work" or
 * "supervise".  Returns the exit code of the sub-command, or -1 when
 * argv[0] names neither.
 */
int	supervisor_main(int argc, char **argv);

/* Make sure fds 0-2 are open (on /dev/null), so that nothing opened later
 * lands on them.  Call first thing in each program. */
void	supervisor_std_fds(void);

/* ---- plumbing shared with the helper process (helper.c) ---- */

/* The bit for signal s in what supervisor_sigread() returns. */
#define SIGBIT(s)	(1u << (s))

/*
 * Reset TERM, INT, HUP, CHLD to default, ignore PIPE, block the first
 * four and return a non-blocking close-on-exec signalfd for them, or -1.
 */
int		supervisor_signals(void);

/* Read every pending signal from fd; a SIGBIT() per signal seen. */
unsigned int	supervisor_sigread(int fd);

/* 1: the watched pipe fd reports EOF (or an error): fcgiq is gone. */
int		supervisor_parent_gone(int fd);

/*
 * Stand by until this process holds the helper lock of a database
 * ("<database>-helper.lock", flock'ed, the holder's pid written into it),
 * watching sig_fd (supervisor_signals()) and parent_fd (-1: none).  db is
 * the database to wait for; on SIGHUP reload(arg) is called and returns
 * the one to wait for from then on.  1: held, *lock_fd and *locked (the
 * database, malloc'ed) set; 0: asked to stop (SIGTERM, SIGINT, fcgiq
 * gone); -1: error, logged.
 */
int	supervisor_lock(const char *db, int sig_fd, int parent_fd,
	    const char *(*reload)(void *), void *arg, int *lock_fd,
	    char **locked);

#endif /* FCGIQ_SUPERVISOR_H */
