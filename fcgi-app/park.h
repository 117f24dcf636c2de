/*
 * park: requests that wait for their job to reach a final state (RFC 7240
 * Prefer: wait).  A parked request holds its FastCGI connection and a few
 * hundred bytes, no thread: one park thread watches every parked
 * connection (the web server closing it), the deadlines, and the helper's
 * notices of finished jobs (wake.h), reads the states of the jobs woken in
 * one transaction, and answers them.
 */
#ifndef FCGIQ_PARK_H
#define FCGIQ_PARK_H

#include <stddef.h>
#include <stdint.h>

struct store_job;
struct store_opts;
struct wire_detached;

#define PARK_WATCH_MS	1000	/* the helper's watch renewed this often */
#define PARK_POLL_MS	1000	/* every waiter's job re-read this often */

/*
 * A waiter's answer, made by whoever parked it: from job as read now (rc
 * 1), or no job (rc 0: gone meanwhile), or none read (rc -1: the store
 * failed).  The whole answer (header block and body), malloc'd, *len
 * bytes; NULL when out of memory (the connection is closed).
 */
typedef char	*(*park_answer_fn)(void *arg, const struct store_job *job,
		    int rc, size_t *len);

/*
 * Open the park's read connection to db and its notice socket, start its
 * thread.  0, or -1 (errno set, or a message in err).
 */
int	park_start(const char *db, const struct store_opts *opts, char *err,
	    size_t errlen);

/*
 * Park the request of conn until job id is final (done, dead, cancelled,
 * or no longer there) or wait_ms have passed, then answer it with
 * fn(arg, ...) and give the connection back (server_release).  0: parked,
 * conn and arg (freed with free()) are the park's; -1: not parked
 * (stopping, out of memory), both stay the caller's.
 */
int	park_add(const struct wire_detached *conn, const char *id,
	    int64_t wait_ms, park_answer_fn fn, void *arg);

/* Job id changed here (a cancel): its waiters look again now. */
void	park_kick(const char *id);

/* Answer every parked request with its job as it is now, refuse new ones,
 * stop the thread and close what it opened. */
void	park_stop(void);

#endif /* FCGIQ_PARK_H */
