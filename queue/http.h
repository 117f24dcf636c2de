/*
 * http: the `http:` handler kind, which delivers a job to a URL as one
 * HTTP request through libcurl's multi interface: no thread and no process
 * per job, the helper's own poll loop drives every transfer.  One struct
 * http_multi per helper holds curl's multi handle (and so its cache of
 * kept-alive connections), the sockets curl asks to be watched and curl's
 * one timer; each running job holds a transfer (struct http_xfer) behind
 * its slot.  Nothing here blocks, and nothing keeps a pointer to a slot:
 * the helper's slot table moves when it grows, so a finished transfer is
 * found by the slot that holds it (http_slot_collect).
 */
#ifndef FCGIQ_HTTP_H
#define FCGIQ_HTTP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct http_multi;
struct queue_conf;
struct slot;
struct store_job;

/* A multi handle, with libcurl initialised once for the process; NULL
 * when out of memory (or libcurl failed to start). */
struct http_multi *http_multi_new(void);
/* Free m (NULL: nothing); every transfer must have been closed first. */
void	 http_multi_free(struct http_multi *m);

/* The sockets curl watches now: how many (for the caller's poll set), and
 * up to n of them copied into pfd (fd, events).  Returns how many it
 * copied. */
size_t	 http_multi_nfds(const struct http_multi *m);
size_t	 http_multi_poll(const struct http_multi *m, struct pollfd *pfd,
	    size_t n);
/* A socket curl watches is ready (revents from poll). */
void	 http_multi_ready(struct http_multi *m, int fd, short revents);
/* When curl's timer is due (monotonic ms), or 0 when it has none. */
int64_t	 http_multi_timer(const struct http_multi *m);
/* Run curl's timer when it is due by now, and take the transfers that
 * ended. */
void	 http_multi_run(struct http_multi *m, int64_t now);

/*
 * The request headers of job, each "Name: value", in a malloc'd
 * NULL-terminated array for http_headers_free() (NULL when out of memory):
 * Content-Type from the job (an empty "Content-Type:" when it has none, so
 * curl adds none of its own), every stored header but those that concern
 * only the connection it came on or that fcgiq sets itself (hop-by-hop
 * headers and those the Connection header names, Proxy, Host,
 * Content-Length, Expect, Accept-Encoding, Fcgiq-*), then Fcgiq-Job-Id,
 * Fcgiq-Queue, Fcgiq-Attempt.  A header whose name is not a token or whose
 * value holds CR, LF or NUL is left out.
 */
char	**http_headers(const struct store_job *job);
void	  http_headers_free(char **h);

/*
 * A stored header's key ("HTTP_X_GITHUB_EVENT", or already a header name)
 * as the header name it came as ("X-Github-Event": case is not kept by
 * CGI, and does not matter to HTTP) into buf.  0, or -1 when the key is
 * empty, not a token, or too long for len.
 */
int	 http_header_name(const char *key, char *buf, size_t len);

/* The URL a job goes to: url with the job's query string (NULL or "":
 * none) after "?", or "&" when url has a query of its own.  malloc'd, or
 * NULL when out of memory. */
char	*http_url(const char *url, const char *query);

/* 1 when the header name must not be forwarded (see http_headers). */
int	 http_header_dropped(const char *name);

/*
 * The http kind of slot (slot.h).  http_slot_start() begins, in the FREE
 * slot s, the delivery of job to q's URL through m, for slot_start() to
 * take: 0, or -1 with why set (s untouched).
 */
extern const struct slot_kind http_kind;
int	 http_slot_start(struct slot *s, struct http_multi *m,
	    const struct queue_conf *q, const struct store_job *job,
	    char *why, size_t len);

/*
 * s's transfer has ended (answered, failed, or aborted by stop or kill):
 * set s->up, its verdict, and slot_exited() it; 1 when it did, 0 when s is
 * still in flight.  note (len bytes) is set to a line for the log when the
 * upstream is unreachable and its once-a-minute message is due, else "".
 */
int	 http_slot_collect(struct slot *s, int64_t now, char *note,
	    size_t len);

/* s's answer, once it has ended: the HTTP status (0: none came), the
 * media type and the Retry-After header ("" when absent). */
int	 http_slot_status(const struct slot *s);
const char *http_slot_type(const struct slot *s);
const char *http_slot_retry_after(const struct slot *s);

#endif /* FCGIQ_HTTP_H */
