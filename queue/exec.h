/*
 * exec: running one `exec:` handler for the helper.  exec_spawn() starts a
 * program with a fixed argv and a rebuilt environment, in its own process
 * group, with only fds 0, 1, 2 open (pipes to the caller), default signal
 * dispositions, an empty signal mask and PR_SET_PDEATHSIG, so it dies with
 * the helper.  The output buffers keep a bounded stdout and the tail of
 * stderr without ever stalling the handler.  No function here blocks.
 */
#ifndef FCGIQ_EXEC_H
#define FCGIQ_EXEC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct slot;
struct store_job;

/*
 * Resource limits for the handler; 0 leaves a limit as inherited.  With
 * drop set (the helper is root), the child takes groups, gid and uid
 * (setgroups, setresgid, setresuid, each checked) before execve.
 */
struct exec_limits {
	uint64_t	as_bytes;	/* RLIMIT_AS */
	uint64_t	cpu_s;		/* RLIMIT_CPU */
	uint64_t	nofile;		/* RLIMIT_NOFILE */
	int		drop;
	uid_t		uid;
	gid_t		gid;
	const gid_t	*groups;
	int		ngroups;
};

struct exec_child {
	pid_t	pid;		/* also the process group id */
	int	fd_in;		/* write end of its stdin: non-blocking, CLOEXEC */
	int	fd_out;		/* read end of its stdout: likewise */
	int	fd_err;		/* read end of its stderr: likewise */
};

/*
 * The handler environment for job: PATH (path, or a default), the CGI
 * variables, HTTP_* from the stored headers (never HTTP_PROXY),
 * FCGIQ_JOB_ID, FCGIQ_QUEUE, FCGIQ_ATTEMPT.  A NULL-terminated, malloc'd
 * array for exec_env_free(), or NULL when out of memory.
 */
char	**exec_env(const struct store_job *job, const char *path);
void	  exec_env_free(char **env);

/*
 * Fork and execve argv[0] with envp.  The caller has SIGPIPE ignored and
 * reaps the child.  0: started, *child set.  -1: nothing started, errno set.
 * A failed execve shows as exit 127 with the reason on the child's stderr.
 */
int	exec_spawn(char *const argv[], char *const envp[],
	    const struct exec_limits *limits, struct exec_child *child);

/* stdout: the first max bytes are kept, the rest is read and counted. */
struct exec_out {
	struct buf b;		/* b.max: what is kept (0: nothing) */
	uint64_t total;		/* bytes read, kept or not */
};

/* stderr: the last EXEC_TAIL bytes. */
#define EXEC_TAIL	2048
struct exec_tail {
	char	 ring[EXEC_TAIL];
	size_t	 pos;		/* next byte to write */
	uint64_t total;
};

/*
 * Read what fd has now into o / t, at most EXEC_READ_BUDGET bytes a call,
 * so that writers faster than the reader (an escaped grandchild, several)
 * can neither hold the caller's loop nor keep a last read after exit from
 * ending.  1: EOF (or a read error: the pipe is finished either way).
 * 0: would block, or the budget is spent (poll again).  -1: out of memory.
 * The budget is the most a pipe holds unprivileged (fs.pipe-max-size), so
 * one call takes all a handler left in its pipe before it exited.
 */
#define EXEC_READ_BUDGET	(1024 * 1024)
int	exec_out_read(int fd, struct exec_out *o);
int	exec_tail_read(int fd, struct exec_tail *t);
void	exec_out_free(struct exec_out *o);

/*
 * The last_error text: reason, then ": " and stderr's tail when it has any,
 * trimmed and made valid UTF-8 without control characters other than
 * newline and tab.  malloc'd, or NULL when out of memory.
 */
char	*exec_error_text(const char *reason, const struct exec_tail *t);

/* "exit 3", "killed by signal 9 (core dumped)" for a wait status. */
void	 exec_status_text(int status, char *buf, size_t len);

/*
 * The exec kind of slot (slot.h): a process group and its three pipes.
 * exec_slot_spawn() starts argv in the FREE slot s, for slot_start() to
 * take; 0, or -1 with errno set and s untouched.
 */
extern const struct slot_kind exec_kind;
int	 exec_slot_spawn(struct slot *s, char *const argv[],
	    char *const envp[], const struct exec_limits *limits);

/* The pid of s's process while it runs (RUNNING or STOPPING), else 0. */
pid_t	 exec_slot_pid(const struct slot *s);

/* s's process was reaped with wait status status: slot_exited(). */
int	 exec_slot_reaped(struct slot *s, int status);

#endif /* FCGIQ_EXEC_H */
