/*
 * log: the OpenBSD-style logging family shared by every fcgiq program.
 * stderr in the foreground, syslog when log_init() is asked for it.
 * Messages are "area: object: what: why".  Safe to call from any thread.
 */
#ifndef FCGIQ_LOG_H
#define FCGIQ_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(const char *progname, int level, int use_syslog);
void	log_setlevel(int level);
int	log_getlevel(void);
/*
 * Send stderr (fd 2) to path, appended: spawn-fcgi points its children's
 * stderr at /dev/null, so without this their log is lost.  Children forked
 * later inherit it.  0, or -1 with errno.
 */
int	log_open_file(const char *path);
/* "error" "warn" "info" "debug" -> level, or -1. */
int	log_level_parse(const char *);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));	/* appends strerror(errno) */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* FCGIQ_LOG_H */
