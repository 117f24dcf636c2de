/*
 * supervisor: starts, watches, re-creates and stops the helper processes.
 *
 * supervisor_start() forks a supervisor ("fcgiq-superv": no threads, no
 * SQLite) that watches its fcgiq through a pipe (EOF: fcgiq is gone) and
 * forks the helper proper ("fcgiq-helper", helper_main()), forking it
 * again when it dies, so a helper killed with -9 is replaced at once and
 * its jobs run again.  The supervisor gives the inherited FastCGI
 * listening socket up (fd 0 becomes /dev/null, other listening sockets are
 * closed), so a helper never holds the socket fcgiq accepts on.  A killed
 * supervisor is re-created by supervisor_reap(): fcgiq has threads and
 * database handles by then, so the child only execs `fcgiq supervise`
 * with the new pipe on fd 3, and nothing of fcgiq's state crosses.
 *
 * One active helper per database: a helper contends for an exclusive flock
 * on "<database>-helper.lock" every LOCK_RETRY_MS (supervisor_lock()); the
 * losers are standbys that take over within a second when the holder dies,
 * and still notice their own fcgiq going away.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "exec.h"
#include "gauges.h"
#include "helper.h"
#include "log.h"
#include "store.h"
#include "supervisor.h"

#define LOCK_RETRY_MS		200	/* standby: try the lock this often */
#define RESTART_MIN_MS		100	/* supervisor: re-fork backoff */
#define RESTART_MAX_MS		10000
#define RESTART_STABLE_MS	5000	/* a helper that lived this long: no backoff */
#define RESPAWN_MIN_MS		1000	/* fcgiq: re-create the supervisor */
#define WATCH_FD		3	/* `fcgiq supervise`: the watched pipe */

/* ------------------------------------------------------------- plumbing */

void
supervisor_std_fds(void)
{
	int fd;

	/* Not close-on-exec: what we exec expects its 0-2 open too. */
	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/*
 * Dispositions go back to default first: an ignored signal (nohup, a
 * parent's SIG_IGN) would never become pending, and SIGCHLD ignored would
 * reap for us.
 */
int
supervisor_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGCHLD, &sa, NULL);
	/* A handler that closes its stdin must not kill us: EPIPE instead. */
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

unsigned int
supervisor_sigread(int fd)
{
	struct signalfd_siginfo si;
	unsigned int seen = 0;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo < 32)
			seen |= SIGBIT(si.ssi_signo);
	return seen;
}

int
supervisor_parent_gone(int fd)
{
	char buf[64];
	ssize_t n;

	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		return 0;
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return 1;
}

/* ------------------------------------------------------ lock and standby */

/* Open db's lock file; -1 with errno (ENAMETOOLONG also when db has none:
 * PostgreSQL without a metrics_file). */
static int
lock_open(const char *db)
{
	char path[PATH_MAX];

	if (gauges_lock_path(db, path, sizeof(path)) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
}

int
supervisor_lock(const char *db, int sig_fd, int parent_fd,
    const char *(*reload)(void *), void *arg, int *lock_fd, char **locked)
{
	struct pollfd pfd[2];
	char pid[32], *cur;
	int told = 0, warned = 0, fd = -1, n, len, rc = -1;
	unsigned int sigs;

	if ((cur = strdup(db)) == NULL)
		return -1;
	/*
	 * PostgreSQL: every helper claims (SKIP LOCKED), none stands by.  Each
	 * holds the host's lock shared, so that fcgiq_helper_up can tell a
	 * host whose helpers are all gone (none without a metrics_file).
	 */
	if (store_is_postgresql(cur)) {
		/* ENAMETOOLONG: no lock path (no metrics_file): none held. */
		if (((fd = lock_open(cur)) == -1 && errno != ENAMETOOLONG) ||
		    (fd != -1 && flock(fd, LOCK_SH) == -1)) {
			log_warn("helper: %s: the host's helper lock", cur);
			if (fd != -1)
				close(fd);
			fd = -1;
		}
		*lock_fd = fd;
		*locked = cur;
		return 1;
	}
	for (;;) {
		if (fd == -1) {
			fd = lock_open(cur);
			if (fd == -1 && errno == ENAMETOOLONG) {
				log_warnx("helper: %s: path too long", cur);
				goto fail;
			}
			if (fd == -1 && !warned) {
				log_warn("helper: %s-helper.lock: waiting for "
				    "it", cur);
				warned = 1;
			}
		}
		if (fd != -1) {
			if (flock(fd, LOCK_EX | LOCK_NB) == 0)
				break;
			if (errno != EWOULDBLOCK && errno != EINTR) {
				log_warn("helper: %s-helper.lock: flock", cur);
				goto fail;
			}
			if (!told) {
				log_info("helper: %s: another helper is "
				    "active, standing by", cur);
				told = 1;
			}
		}
		n = 0;
		pfd[n].fd = sig_fd;
		pfd[n++].events = POLLIN;
		if (parent_fd != -1) {
			pfd[n].fd = parent_fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, n, LOCK_RETRY_MS) <= 0)
			continue;
		if (n > 1 && pfd[1].revents != 0 &&
		    supervisor_parent_gone(parent_fd)) {
			rc = 0;
			goto fail;
		}
		sigs = supervisor_sigread(sig_fd);
		if (sigs & (SIGBIT(SIGTERM) | SIGBIT(SIGINT))) {
			rc = 0;
			goto fail;
		}
		if (sigs & SIGBIT(SIGHUP)) {
			const char *ndb = reload(arg);

			/* Still waiting: a new database is fine. */
			if (strcmp(ndb, cur) != 0) {
				free(cur);
				if ((cur = strdup(ndb)) == NULL)
					goto fail;
				if (fd != -1)
					close(fd);
				fd = -1;
				told = warned = 0;
			}
		}
	}
	/* The holder's pid, for operators (and tests): cat the lock file. */
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("helper: %s-helper.lock: writing the pid", cur);
	*lock_fd = fd;
	*locked = cur;
	return 1;
fail:
	if (fd != -1)
		close(fd);
	free(cur);
	return rc;
}

/* ------------------------------------------------------ the supervisor */

/*
 * The supervisor gives up the FastCGI listener it inherited: fd 0 becomes
 * /dev/null and any other listening socket is closed.
 */
static void
drop_listeners(int keep)
{
	DIR *d;
	struct dirent *de;
	int fd, acc, null;
	socklen_t len;

	if ((null = open("/dev/null", O_RDWR)) != -1) {
		if (null != 0) {
			(void)dup2(null, 0);
			close(null);
		}
	}
	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (fd < 3 || fd == keep || fd == dirfd(d))
			continue;
		len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 &&
		    acc)
			close(fd);
	}
	closedir(d);
}

/* The supervisor's life: fork the helper, fork it again when it dies
 * (with backoff), until fcgiq goes away or SIGTERM.  Exit code. */
static int
supervise(const char *conf_path, int parent_fd)
{
	struct pollfd pfd[2];
	unsigned int sigs;
	pid_t child = -1, self = getpid(), pid;
	int64_t started = 0, restart_at = 0, delay = 0, now;
	int sig_fd, stopping = 0, status, n, timeout;
	char st[64];

	(void)prctl(PR_SET_NAME, "fcgiq-superv", 0, 0, 0);
	drop_listeners(parent_fd);
	(void)fcntl(parent_fd, F_SETFL, fcntl(parent_fd, F_GETFL) | O_NONBLOCK);
	if ((sig_fd = supervisor_signals()) == -1) {
		log_warn("helper: supervisor: signalfd");
		return 1;
	}
	for (;;) {
		now = mono_ms();
		if (child == -1 && stopping)
			break;
		if (child == -1 && now >= restart_at) {
			started = now;
			child = fork();
			if (child == 0) {
				close(sig_fd);
				/* The supervisor gone (killed): stop too. */
				if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
				    getppid() != self)
					_exit(0);
				_exit(helper_main(conf_path, parent_fd));
			}
			if (child == -1) {
				log_warn("helper: supervisor: fork");
				restart_at = now + RESTART_MAX_MS;
			}
		}
		n = 0;
		pfd[n].fd = sig_fd;
		pfd[n++].events = POLLIN;
		if (parent_fd != -1) {
			pfd[n].fd = parent_fd;
			pfd[n++].events = POLLIN;
		}
		timeout = child == -1 ? (int)(restart_at > now ?
		    restart_at - now : 0) : -1;
		if (poll(pfd, n, timeout) <= 0)
			continue;
		if (n > 1 && pfd[1].revents != 0 &&
		    supervisor_parent_gone(parent_fd)) {
			/* The helper sees the same EOF and stops itself;
			 * wait for it. */
			close(parent_fd);
			parent_fd = -1;
			stopping = 1;
		}
		sigs = supervisor_sigread(sig_fd);
		if (sigs & (SIGBIT(SIGTERM) | SIGBIT(SIGINT))) {
			stopping = 1;
			if (child > 0)
				(void)kill(child, SIGTERM);
		}
		if ((sigs & SIGBIT(SIGHUP)) && child > 0)
			(void)kill(child, SIGHUP);
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue;
			child = -1;
			now = mono_ms();
			if (stopping)
				break;
			exec_status_text(status, st, sizeof(st));
			if (now - started >= RESTART_STABLE_MS)
				delay = 0;
			else
				delay = delay == 0 ? RESTART_MIN_MS :
				    (delay * 2 > RESTART_MAX_MS ?
				    RESTART_MAX_MS : delay * 2);
			log_warnx("helper: pid %ld: %s; starting another in "
			    "%" PRId64 " ms", (long)pid, st, delay);
			restart_at = now + delay;
		}
	}
	close(sig_fd);
	return 0;
}

/* --------------------------------------------------- fcgiq's side of it */

/*
 * fork, with a close-on-exec pipe whose write end (p[1]) the parent keeps:
 * its EOF tells the child, and what the child forks, that the parent is
 * gone.  The pid (0 in the child), or -1 with nothing left open.
 */
static pid_t
fork_watched(int p[2])
{
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
	}
	return pid;
}

int
supervisor_start(struct supervisor *sv, const char *conf_path)
{
	int p[2];
	pid_t pid;

	sv->pid = -1;
	sv->watch_fd = -1;
	sv->conf_path = conf_path;
	sv->respawned = 0;
	if ((pid = fork_watched(p)) == -1)
		return -1;
	if (pid == 0) {
		close(p[1]);
		_exit(supervise(conf_path, p[0]));
	}
	/* p[1] stays open (close-on-exec) for the rest of our life: its EOF
	 * is how the supervisor and the helper learn that we are gone. */
	close(p[0]);
	sv->watch_fd = p[1];
	sv->pid = pid;
	return 0;
}

/* Re-create sv's supervisor from a process with threads: fork, and in the
 * child only execve `fcgiq supervise [-c conf]` with the pipe on fd 3. */
static pid_t
respawn(struct supervisor *sv)
{
	char *argv[5];
	sigset_t none;
	int p[2], i = 0;
	pid_t pid;

	/* Everything the child needs is ready before fork: after it, only
	 * async-signal-safe calls until execve. */
	argv[i++] = (char *)"fcgiq";
	argv[i++] = (char *)"supervise";
	if (sv->conf_path != NULL) {
		argv[i++] = (char *)"-c";
		argv[i++] = (char *)sv->conf_path;
	}
	argv[i] = NULL;
	sigemptyset(&none);
	if ((pid = fork_watched(p)) == -1)
		return -1;
	if (pid == 0) {
		/* dup2 onto 3 clears close-on-exec there, and only there. */
		if (p[0] == WATCH_FD ? fcntl(WATCH_FD, F_SETFD, 0) == -1 :
		    dup2(p[0], WATCH_FD) == -1)
			_exit(127);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		execve("/proc/self/exe", argv, environ);
		_exit(127);
	}
	close(p[0]);
	/* The dead supervisor's pipe: its helper, if still stopping, sees
	 * EOF too, which is what it should. */
	if (sv->watch_fd != -1)
		close(sv->watch_fd);
	sv->watch_fd = p[1];
	return pid;
}

void
supervisor_reap(struct supervisor *sv, int want)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		if (pid == sv->pid) {
			log_warnx("helper: supervisor pid %ld exited",
			    (long)pid);
			sv->pid = -1;
		}
	/*
	 * Its helper stops with it: start another, or jobs would wait for a
	 * restart while fcgiq answers 202.
	 */
	if (sv->pid != -1 || !want)
		return;
	if (mono_ms() - sv->respawned < RESPAWN_MIN_MS)
		sleep(1);
	sv->respawned = mono_ms();
	if ((sv->pid = respawn(sv)) == -1)
		log_warn("helper: respawn");
	else
		log_info("helper: supervisor restarted, pid %ld",
		    (long)sv->pid);
}

int
supervisor_reload(struct supervisor *sv)
{
	if (sv->pid <= 0)
		return 0;
	return kill(sv->pid, SIGHUP);
}

void
supervisor_stop(struct supervisor *sv)
{
	int status;

	if (sv->pid > 0) {
		(void)kill(sv->pid, SIGTERM);
		while (waitpid(sv->pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	sv->pid = -1;
	if (sv->watch_fd != -1)
		close(sv->watch_fd);
	sv->watch_fd = -1;
}

/* ---------------------------------------------------------- sub-commands */

static const char work_usage[] =
    "usage: fcgiq work [-d] [-c file]\n";

/*
 * Where a sub-command logs: the configuration's log_file or syslog (fcgiq
 * proper opened it before forking; `work` and `supervise` start afresh).
 * Returns the configuration's log level, or -1 (message on stderr).
 */
static int
log_setup(const char *conf_path)
{
	struct config c;
	char err[512];
	int level;

	if (config_load(&c, conf_path, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	if (c.log_file != NULL && log_open(c.log_file) == -1) {
		log_warn("%s", c.log_file);
		config_free(&c);
		return -1;
	}
	level = c.log_level;
	config_free(&c);
	return level;
}

/* `fcgiq work`: one helper in this process, until SIGTERM. */
static int
cmd_work(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *conf_path = NULL;
	int ch, debug = 0;

	while ((ch = getopt_long(argc, argv, "c:dh", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'h':
			fputs(work_usage, stdout);
			return 0;
		default:
			fputs(work_usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(work_usage, stderr);
		return 2;
	}
	log_init("fcgiq-helper", debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	/* helper_main loads the file itself; here only where the log goes. */
	if (log_setup(conf_path) == -1)
		return 1;
	return helper_main(conf_path, -1);
}

/* `fcgiq supervise`: not for people; see respawn(). */
static int
cmd_supervise(int argc, char **argv)
{
	const char *conf_path = NULL;
	int ch, level;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c')
			return 2;
		conf_path = optarg;
	}
	if (optind != argc || fcntl(WATCH_FD, F_GETFD) == -1) {
		fputs("fcgiq: supervise: for fcgiq's own use\n", stderr);
		return 2;
	}
	log_init("fcgiq", LOG_LEVEL_INFO);
	/* A configuration that no longer loads: its helper says why. */
	if ((level = log_setup(conf_path)) != -1)
		log_setlevel(level);
	return supervise(conf_path, WATCH_FD);
}

int
supervisor_main(int argc, char **argv)
{
	if (strcmp(argv[0], "work") == 0)
		return cmd_work(argc, argv);
	if (strcmp(argv[0], "supervise") == 0)
		return cmd_supervise(argc, argv);
	return -1;
}
