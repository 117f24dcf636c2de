/*
 * log: the OpenBSD-style logging family.  Each message is written with one
 * write(2) (stderr) or one syslog(3) call, so lines from threads and from
 * the helper process never interleave mid-line.  Where they go is chosen
 * once, at start-up, by log_open() (the log_file setting).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char	*log_progname = "fcgiq";
static int		 log_level = LOG_LEVEL_INFO;
static int		 log_syslog;

void
log_init(const char *progname, int level)
{
	if (progname != NULL)
		log_progname = progname;
	log_level = level;
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_open(const char *path)
{
	int fd, saved;

	if (strcmp(path, "syslog") == 0) {
		/* Opened now (LOG_NDELAY): a helper forked later shares the
		 * connection, and a chroot or a full fd table cannot stop it. */
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog = 1;
		return 0;
	}

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (fd != STDERR_FILENO) {
		/* dup2 clears FD_CLOEXEC on fd 2: it must outlive exec. */
		if (dup2(fd, STDERR_FILENO) == -1) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		close(fd);
	}
	return 0;
}

int
log_level_parse(const char *s)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void
vlog(int level, int errnum, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *tag[] = { "error", "warn", "info", "debug" };
	char msg[2048], line[2300];
	int n;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(errnum));
	}
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	n = snprintf(line, sizeof(line), "%s[%ld]: %s: %s\n", log_progname,
	    (long)getpid(), tag[level], msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write per line: atomic for pipes up to PIPE_BUF. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

#define LOGFN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	int saved = errno;					\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	vlog(level, witherr ? saved : 0, fmt, ap);		\
	va_end(ap);						\
	errno = saved;						\
}

LOGFN(log_warn, LOG_LEVEL_WARN, 1)
LOGFN(log_warnx, LOG_LEVEL_WARN, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
