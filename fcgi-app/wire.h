/*
 * wire: the FastCGI protocol (1.0), the responder's side of one connection.
 *
 * fcgiq reads and writes FastCGI itself instead of through libfcgi's
 * FCGX_Accept_r: libfcgi 2.4.2 aborts the whole process on 13 hostile
 * bytes (name/value lengths whose sum overflows an int), mallocs whatever
 * length a record declares before reading it, leaks on management
 * records, loses body bytes after an empty record of another request, and
 * bounds each read but not a request.  See tests/hostile/adversary.sh.
 *
 * What is accepted is what nginx and Apache send: one request at a time
 * per connection (FCGI_MPXS_CONNS 0).  Every record is read whole into a
 * fixed buffer after its 8-byte header is checked, so a declared length
 * never allocates more than FCGI_MAX_LENGTH + 255 bytes; params are
 * bounded (WIRE_MAX_PARAMS) and every name/value length is checked against
 * the bytes that are there.  A whole request must arrive within one
 * deadline (io_timeout), however slowly its bytes trickle in.
 *
 * Protocol errors (wrong version, a record that cannot come where it
 * does, a length past its data, FCGI_ABORT_REQUEST, the deadline) end the
 * connection: the request is never served, so nothing of it is stored.
 */
#ifndef FCGIQ_WIRE_H
#define FCGIQ_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <fastcgi.h>

#include "buf.h"

#define WIRE_MAX_PARAMS		(1024 * 1024)	/* raw params of one request */
#define WIRE_RECORD_MAX		(FCGI_HEADER_LEN + FCGI_MAX_LENGTH + 255)
#define WIRE_RBUF		(WIRE_RECORD_MAX + 16384)
#define WIRE_STALL_MS		1	/* a wait this long calls on_stall */

enum wire_bad {
	WIRE_OK = 0,
	WIRE_BAD_PARAM,		/* a NUL in a param, or '=' in its name: 400 */
	WIRE_BAD_TOO_LARGE	/* params over WIRE_MAX_PARAMS: 431 */
};

struct wire {
	/* The request, once wire_next() returned 1. */
	int		 role;		/* FCGI_RESPONDER, FCGI_AUTHORIZER, ... */
	enum wire_bad	 bad;		/* the params cannot be served as they are */
	char	       **envp;		/* "NAME=value", NULL-terminated */

	/* The rest is the connection's and this module's. */
	int		 fd;
	int		 io_timeout_ms;
	int		 max_conns;	/* told to FCGI_GET_VALUES */
	int64_t		 deadline;	/* monotonic ms: the request must be in */
	uint16_t	 id;		/* the request's id, 0 between requests */
	int		 keep;		/* FCGI_KEEP_CONN */
	int64_t		 t0_us;		/* monotonic: the params were in */
	int		 timed;		/* an intake: its 2xx is timed (metrics) */
	int		 phase;
	int		 in_eof;	/* the empty FCGI_STDIN record was read */
	int		 broken;	/* protocol error, timeout, abort, I/O */
	int		 unread;	/* the body was refused before its end */
	size_t		 in_pos, in_left; /* the FCGI_STDIN record being read */

	unsigned char	*rbuf;		/* WIRE_RBUF bytes */
	size_t		 rpos, rend;

	struct buf	 params;	/* raw, as the records carried them */
	struct buf	 env;		/* the strings envp points into */
	struct buf	 envv;		/* envp's array */

	struct buf	 out;		/* FCGI_HEADER_LEN reserved, then STDOUT */
	struct buf	 side;		/* management answers, CANT_MPX_CONN */

	/* Set by the owner after wire_init: told when a read or write of
	 * this connection has waited WIRE_STALL_MS and goes on waiting. */
	void		(*on_stall)(void *);
	void		*on_stall_arg;
};

/* 0, or -1 when out of memory. */
int	wire_init(struct wire *w, int io_timeout_ms, int max_conns);
void	wire_free(struct wire *w);

/* Serve connection fd from now on (a connection fresh from the poller:
 * nothing of another connection stays buffered). */
void	wire_attach(struct wire *w, int fd);

#define WIRE_IDLE	2

/*
 * Read the next request on the connection (blocking, within io_timeout
 * of its first byte) up to the end of its params.  wait_ms >= 0: when no
 * byte is buffered, wait at most that long for the first one, else return
 * WIRE_IDLE (the connection is fine, it has nothing to say yet); -1: wait
 * as long as io_timeout.  1: a request (role, bad, envp set); 0: the web
 * server closed the connection between requests; -1: protocol error,
 * timeout or I/O error.  On 0 and -1 the caller closes the connection.
 */
int	wire_next(struct wire *w, int wait_ms);

/* 1 when bytes past the request just answered are buffered (the web
 * server pipelined the next one), else 0. */
int	wire_buffered(const struct wire *w);

/* The request's body (FCGI_STDIN): bytes read (> 0), 0 at its end, -1
 * broken (protocol error, FCGI_ABORT_REQUEST, timeout). */
ssize_t	wire_read(struct wire *w, void *buf, size_t len);

/* Append to the answer (FCGI_STDOUT); written by wire_end().  0, or -1
 * when out of memory. */
int	wire_put(struct wire *w, const void *p, size_t n);

/*
 * Send the answer and FCGI_END_REQUEST.  Body bytes left unread are read
 * and dropped, up to drain_max; past that the connection is not reused.
 * 1: the connection can carry another request; 0: close it.
 */
int	wire_end(struct wire *w, size_t drain_max);

/* A request taken off its wire, to be answered from another thread. */
struct wire_detached {
	int		 fd;
	uint16_t	 id;
	int		 keep;
	int		 io_timeout_ms;
	int64_t		 t0_us;
	int		 timed;
};

/*
 * Take the request in flight, whose body has been read whole, off w (which
 * is left with no connection) into *d.  0, or -1 when it cannot be: bytes
 * of a next request or management answers pending, the body not read to
 * its end, an answer started.
 */
int	wire_detach(struct wire *w, struct wire_detached *d);

/* Undo wire_detach(w, d): the request is w's again, answered as usual. */
void	wire_reattach(struct wire *w, const struct wire_detached *d);

/* Send p[0..n) as the whole answer of d (in records of at most
 * FCGI_MAX_LENGTH bytes), and its FCGI_END_REQUEST.  0, or -1. */
int	wire_answer(const struct wire_detached *d, const void *p, size_t n);

/* Close the connection; after a body left unread, only once the web
 * server has stopped sending (or for at most 2 s). */
void	wire_close(struct wire *w);

#endif /* FCGIQ_WIRE_H */
