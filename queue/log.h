/*
 * log: the OpenBSD-style logging family shared by every fcgiq program.
 * stderr by default, a file or syslog when log_open() is asked for it.
 * Messages are "area: object: what: why".  Safe to call from any thread.
 */
#ifndef FCGIQ_LOG_H
#define FCGIQ_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Log as progname (NULL: keep it) at level, to stderr until log_open(). */
void	log_init(const char *progname, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
/*
 * Log to path (the log_file setting): "syslog" sends every later message
 * to syslog(3), facility daemon; anything else is a file that stderr (fd 2)
 * is pointed at, appended (spawn-fcgi points its children's stderr at
 * /dev/null, so without this their log is lost).  Children forked later
 * inherit either.  0, or -1 with errno.
 */
int	log_open(const char *path);
/* "error" "warn" "info" "debug" -> level, or -1. */
int	log_level_parse(const char *);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));	/* appends strerror(errno) */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* FCGIQ_LOG_H */
