/*
 * fcgi: the fastcgi: handler kind.  Each job is replayed as a FastCGI
 * RESPONDER request into an application already running (a PHP-FPM pool,
 * any FastCGI server) on a unix socket or a TCP address: the stored
 * request's CGI variables, SCRIPT_FILENAME, the queue's params, FCGIQ_*,
 * and the body as FCGI_STDIN.  No process, no thread: the helper's poll
 * loop drives each request through non-blocking connect, send and read,
 * and connections are kept (FCGI_KEEP_CONN) and reused, per upstream.
 *
 * The answer is read as strictly as the responder reads a request: one
 * request id per connection, every record checked (version, type, id,
 * lengths), the whole answer bounded (FCGI_ANSWER_MAX), CGI headers
 * bounded (FCGI_HEAD_MAX); anything else is one failed attempt with its
 * reason in last_error, and the connection is closed.
 */
#ifndef FCGIQ_FCGI_H
#define FCGIQ_FCGI_H

#include <stdint.h>

struct slot;

#define FCGI_HEAD_MAX		(64 * 1024)		/* CGI headers */
#define FCGI_ANSWER_MAX		(16 * 1024 * 1024)	/* stdout + stderr */
/*
 * A kept connection left idle is closed after this long: PHP-FPM ties one
 * child to each open connection (NOTES.md), so connections the helper
 * holds without a job would keep children from the pool's other clients.
 */
#define FCGI_IDLE_MS		1000

/*
 * The fastcgi: kind of slot (slot.h).  fcgi_slot_prepare() readies the
 * FREE slot s; slot_start() then starts the request (its started()): a
 * failure to connect or to build it is the attempt's outcome, never an
 * error of the helper.
 */
extern const struct slot_kind fcgi_kind;
void	fcgi_slot_prepare(struct slot *s);

/* Close kept connections idle for FCGI_IDLE_MS (now: monotonic ms). */
void	fcgi_pool_tick(int64_t now);

/* Close every kept connection and forget every upstream (the helper is
 * leaving). */
void	fcgi_pool_free(void);

#endif /* FCGIQ_FCGI_H */
