/*
 * wire: the FastCGI protocol, the responder's side.  See wire.h for why it
 * is fcgiq's own and what it accepts.
 *
 * Reading: a record is taken only whole (header checked first, then
 * header + content + padding in the buffer), so the code that looks at a
 * record never sees a length it has not got.  Records on the way to the
 * one wanted are dealt with in next_record(): management records (id 0)
 * are answered, a second BEGIN_REQUEST is answered FCGI_CANT_MPX_CONN,
 * records of requests not in flight are skipped (FastCGI 1.0, 3.3),
 * FCGI_DATA (a FILTER's file) is skipped, FCGI_ABORT_REQUEST breaks the
 * request.  The answers to management records wait in w->side and go out
 * before fcgiq next waits for the socket, or with the request's answer.
 *
 * Writing: the request's answer is collected whole and sent with its
 * FCGI_END_REQUEST in one sendmsg(); fcgiq's answers are small, and one
 * write per request is what keeps the web server's side cheap too.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fcgirec.h"
#include "log.h"
#include "metrics.h"
#include "wire.h"

enum { PHASE_IDLE, PHASE_PARAMS, PHASE_STDIN };

#define SIDE_FLUSH	65536	/* management answers held at most */
#define KEEP_CAP	65536	/* buffers larger than this are freed after use */
#define LINGER_MS	2000	/* reading what still comes before a close */

static void
end_request(unsigned char *r, unsigned id, int protocol_status)
{
	fcgirec_header(r, FCGI_END_REQUEST, id, 8, 0);
	memset(r + FCGI_HEADER_LEN, 0, 8);	/* appStatus 0 */
	r[FCGI_HEADER_LEN + 4] = (unsigned char)protocol_status;
}

/* The end of an answer: an empty STDOUT record, then END_REQUEST. */
static void
request_tail(unsigned char tail[3 * FCGI_HEADER_LEN], unsigned id)
{
	fcgirec_header(tail, FCGI_STDOUT, id, 0, 0);
	end_request(tail + FCGI_HEADER_LEN, id, FCGI_REQUEST_COMPLETE);
}

/*
 * Wait until fd is ready for events or deadline (monotonic ms) passes.
 * When w (may be NULL) has an on_stall hook, it is told once the wait has
 * gone on for WIRE_STALL_MS.  0 ready, -2 deadline, -1 error.
 */
static int
wait_io(int fd, short events, int64_t deadline, const struct wire *w)
{
	struct pollfd pfd;
	int64_t left;
	int r, quick = w != NULL && w->on_stall != NULL;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0)
			return -2;
		if (quick && left > WIRE_STALL_MS)
			left = WIRE_STALL_MS;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r == 1)
			return 0;
		if (r == 0 && quick) {
			quick = 0;
			w->on_stall(w->on_stall_arg);
		}
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

/* Send every byte of iov[0..n), whatever the partial writes; a write that
 * makes no progress for io_timeout fails.  0, or -1. */
static int
send_fd(int fd, struct iovec *iov, int n, int timeout_ms,
    const struct wire *w)
{
	struct msghdr msg;
	ssize_t r;

	while (n > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)(n > IOV_MAX ? IOV_MAX : n);
		if ((r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)) ==
		    -1) {
			if (errno == EINTR)
				continue;
			if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
			    wait_io(fd, POLLOUT, mono_ms() + timeout_ms, w) != 0)
				return -1;
			continue;
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int
send_all(struct wire *w, struct iovec *iov, int n)
{
	return send_fd(w->fd, iov, n, w->io_timeout_ms, w);
}

static int
flush_side(struct wire *w)
{
	struct iovec iov;
	int r;

	if (w->side.len == 0)
		return 0;
	iov.iov_base = w->side.data;
	iov.iov_len = w->side.len;
	r = send_all(w, &iov, 1);
	w->side.len = 0;
	return r;
}

/* Append a management answer (or CANT_MPX_CONN) of len bytes; returns
 * where to write it, or NULL. */
static unsigned char *
side_add(struct wire *w, size_t len)
{
	unsigned char *p;

	if (w->side.len + len > SIDE_FLUSH && flush_side(w) == -1)
		return NULL;
	if (buf_reserve(&w->side, len) == -1)
		return NULL;
	p = w->side.data + w->side.len;
	w->side.len += len;
	return p;
}

/* One read of what is there into the buffer, waiting until w->deadline
 * for it.  1, 0 at the end of the stream, -1 error, -2 deadline. */
static int
fill(struct wire *w)
{
	ssize_t r;

	for (;;) {
		r = recv(w->fd, w->rbuf + w->rend, WIRE_RBUF - w->rend,
		    MSG_DONTWAIT);
		if (r > 0) {
			w->rend += (size_t)r;
			return 1;
		}
		if (r == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if ((r = wait_io(w->fd, POLLIN, w->deadline, w)) != 0)
			return (int)r;
	}
}

/*
 * Have at least n (<= WIRE_RBUF) bytes buffered from rpos.  1; 0 at the
 * end of the stream (fewer bytes buffered, maybe none); -1 error, timeout.
 * Pending management answers go out before any wait.
 */
static int
need(struct wire *w, size_t n)
{
	int r;

	if (w->rend - w->rpos >= n)
		return 1;
	if (flush_side(w) == -1)
		return -1;
	if (w->rpos > 0) {
		memmove(w->rbuf, w->rbuf + w->rpos, w->rend - w->rpos);
		w->rend -= w->rpos;
		w->rpos = 0;
	}
	while (w->rend < n)
		if ((r = fill(w)) != 1) {
			if (r == -2)
				log_debug("wire: request not in within the "
				    "I/O timeout");
			return r == 0 ? 0 : -1;
		}
	return 1;
}

static int
get_values(struct wire *w, const unsigned char *c, size_t len)
{
	static const char *const names[] = {
		FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS
	};
	unsigned char res[128], *p;
	const unsigned char *name, *value;
	size_t i = 0, nlen, vlen, rlen = 0, k, l;
	char val[16];
	unsigned done = 0;
	int r;

	while ((r = fcgirec_nv_pair(c, len, &i, &name, &nlen, &value,
	    &vlen)) == 1) {
		for (k = 0; k < 3; k++) {
			l = strlen(names[k]);
			if (nlen != l || memcmp(name, names[k], l) != 0 ||
			    (done & 1u << k))
				continue;
			done |= 1u << k;
			snprintf(val, sizeof(val), "%d", k == 2 ? 0 :
			    w->max_conns);
			res[rlen++] = (unsigned char)l;
			res[rlen++] = (unsigned char)strlen(val);
			memcpy(res + rlen, names[k], l);
			rlen += l;
			memcpy(res + rlen, val, strlen(val));
			rlen += strlen(val);
		}
	}
	if (r == -1)
		return -1;
	if ((p = side_add(w, FCGI_HEADER_LEN + rlen)) == NULL)
		return -1;
	fcgirec_header(p, FCGI_GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, rlen,
	    0);
	memcpy(p + FCGI_HEADER_LEN, res, rlen);
	return 0;
}

/* A record of id 0.  0, or -1 (ends the connection). */
static int
management(struct wire *w, int type, const unsigned char *c, size_t len)
{
	unsigned char *p;

	if (type == FCGI_GET_VALUES)
		return get_values(w, c, len);
	/* A type of a request's record is no management record. */
	if (type >= FCGI_BEGIN_REQUEST && type <= FCGI_MAXTYPE)
		return -1;
	if ((p = side_add(w, 2 * FCGI_HEADER_LEN)) == NULL)
		return -1;
	fcgirec_header(p, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, 8, 0);
	memset(p + FCGI_HEADER_LEN, 0, 8);
	p[FCGI_HEADER_LEN] = (unsigned char)type;
	return 0;
}

/*
 * The next record for the request in flight (between requests: the next
 * record of any request), past management records and records of other
 * requests.  1: *type, *id, *c, *clen set, the record consumed (c stays
 * valid until the next read); 0: the stream ended cleanly between records
 * with no request in flight; -1: broken.
 */
static int
next_record(struct wire *w, int *type, unsigned *id,
    const unsigned char **c, size_t *clen)
{
	const unsigned char *h;
	size_t len;
	unsigned rid;
	int r, t;

	for (;;) {
		if ((r = need(w, FCGI_HEADER_LEN)) != 1)
			return r == 0 && w->rend == w->rpos &&
			    w->phase == PHASE_IDLE ? 0 : -1;
		h = w->rbuf + w->rpos;
		if (h[0] != FCGI_VERSION_1)
			return -1;
		len = (size_t)h[4] << 8 | h[5];
		if (need(w, FCGI_HEADER_LEN + len + h[6]) != 1)
			return -1;
		h = w->rbuf + w->rpos;		/* need() may move it */
		t = h[1];
		rid = (unsigned)h[2] << 8 | h[3];
		w->rpos += FCGI_HEADER_LEN + len + h[6];
		if (rid == FCGI_NULL_REQUEST_ID) {
			if (management(w, t, h + FCGI_HEADER_LEN, len) == -1)
				return -1;
			continue;
		}
		if (w->phase != PHASE_IDLE) {
			if (t == FCGI_BEGIN_REQUEST) {
				unsigned char *p;

				/* The one in flight begun again: broken. */
				if (rid == w->id || (p = side_add(w,
				    2 * FCGI_HEADER_LEN)) == NULL)
					return -1;
				end_request(p, rid, FCGI_CANT_MPX_CONN);
				continue;
			}
			if (rid != w->id || t == FCGI_DATA)
				continue;
			if (t == FCGI_ABORT_REQUEST) {
				log_debug("wire: request %u aborted", rid);
				return -1;
			}
		}
		*type = t;
		*id = rid;
		*c = h + FCGI_HEADER_LEN;
		*clen = len;
		return 1;
	}
}

/* Turn the raw params into envp.  0, or -1 (a length past the data, or
 * out of memory). */
static int
decode_params(struct wire *w)
{
	const unsigned char *name, *value;
	size_t i, nlen, vlen, n = 0, bytes = 0;
	char *s;
	int r;

	for (i = 0; (r = fcgirec_nv_pair(w->params.data, w->params.len, &i,
	    &name, &nlen, &value, &vlen)) == 1;) {
		/* Either makes "NAME=value" mean something else. */
		if (memchr(name, '\0', nlen) != NULL ||
		    memchr(name, '=', nlen) != NULL ||
		    memchr(value, '\0', vlen) != NULL)
			w->bad = WIRE_BAD_PARAM;
		if (nlen > 0) {		/* a pair with no name says nothing */
			n++;
			bytes += nlen + vlen + 2;
		}
	}
	if (r == -1) {
		log_debug("wire: a param's length runs past the params");
		return -1;
	}
	w->envv.len = 0;
	w->env.len = 0;
	if (buf_reserve(&w->envv, (n + 1) * sizeof(char *)) == -1 ||
	    buf_reserve(&w->env, bytes + 1) == -1)
		return -1;
	w->envp = (char **)(void *)w->envv.data;
	s = (char *)w->env.data;
	n = 0;
	for (i = 0; fcgirec_nv_pair(w->params.data, w->params.len, &i, &name,
	    &nlen, &value, &vlen) == 1;) {
		if (nlen == 0)
			continue;
		w->envp[n++] = s;
		memcpy(s, name, nlen);
		s += nlen;
		*s++ = '=';
		memcpy(s, value, vlen);
		s += vlen;
		*s++ = '\0';
	}
	w->envp[n] = NULL;
	return 0;
}

/* Free b when a large request grew it: idle connections stay small. */
static void
trim(struct buf *b)
{
	if (b->cap > KEEP_CAP)
		buf_free(b);
}

/* The answer starts empty, with the room for its record header. */
static int
out_reset(struct wire *w)
{
	w->out.len = 0;
	if (buf_reserve(&w->out, 4096) == -1)
		return -1;
	w->out.len = FCGI_HEADER_LEN;
	return 0;
}

int
wire_init(struct wire *w, int io_timeout_ms, int max_conns)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->io_timeout_ms = io_timeout_ms;
	w->max_conns = max_conns;
	buf_init(&w->params, 0);
	buf_init(&w->env, 0);
	buf_init(&w->envv, 0);
	buf_init(&w->out, 0);
	buf_init(&w->side, 0);
	if ((w->rbuf = malloc(WIRE_RBUF)) == NULL || out_reset(w) == -1) {
		wire_free(w);
		return -1;
	}
	return 0;
}

void
wire_free(struct wire *w)
{
	free(w->rbuf);
	buf_free(&w->params);
	buf_free(&w->env);
	buf_free(&w->envv);
	buf_free(&w->out);
	buf_free(&w->side);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

void
wire_attach(struct wire *w, int fd)
{
	w->fd = fd;
	w->unread = 0;
	w->rpos = w->rend = 0;
	w->side.len = 0;
}

int
wire_next(struct wire *w, int wait_ms)
{
	const unsigned char *c;
	unsigned char *p;
	size_t len;
	unsigned id;
	int r, t, role;

	w->id = 0;
	w->phase = PHASE_IDLE;
	w->role = 0;
	w->keep = 0;
	w->timed = 0;
	w->bad = WIRE_OK;
	w->in_eof = 0;
	w->broken = 0;
	w->in_left = 0;
	w->params.len = 0;
	w->envp = NULL;
	trim(&w->params);
	trim(&w->env);
	trim(&w->envv);
	trim(&w->out);
	if (out_reset(w) == -1)
		return -1;
	if (wait_ms >= 0 && w->rend == w->rpos) {
		/* Nothing yet: a moment's wait, else the caller parks the
		 * connection.  The request's deadline starts with a byte. */
		w->rpos = w->rend = 0;
		w->deadline = mono_ms() + wait_ms;
		if ((r = fill(w)) != 1)
			return r == -2 ? WIRE_IDLE : r;
	}
	w->deadline = mono_ms() + w->io_timeout_ms;

	if ((r = next_record(w, &t, &id, &c, &len)) != 1)
		return r;
	if (t != FCGI_BEGIN_REQUEST || len != 8) {
		log_debug("wire: record type %d where a request begins", t);
		return -1;
	}
	role = c[0] << 8 | c[1];
	if (role < FCGI_RESPONDER || role > FCGI_FILTER) {
		if ((p = side_add(w, 2 * FCGI_HEADER_LEN)) != NULL) {
			end_request(p, id, FCGI_UNKNOWN_ROLE);
			(void)flush_side(w);
		}
		return -1;
	}
	/* What came before the request is answered before it. */
	if (flush_side(w) == -1)
		return -1;
	w->id = (uint16_t)id;
	w->role = role;
	w->keep = (c[2] & FCGI_KEEP_CONN) != 0;
	w->phase = PHASE_PARAMS;

	for (;;) {
		if (next_record(w, &t, &id, &c, &len) != 1)
			return -1;
		if (t != FCGI_PARAMS) {
			log_debug("wire: record type %d in the params", t);
			return -1;
		}
		if (len == 0)
			break;
		if (w->bad == WIRE_BAD_TOO_LARGE)
			continue;
		if (w->params.len + len > WIRE_MAX_PARAMS) {
			w->bad = WIRE_BAD_TOO_LARGE;
			continue;
		}
		if (buf_append(&w->params, c, len) == -1)
			return -1;
	}
	w->phase = PHASE_STDIN;
	w->t0_us = mono_us();
	if (w->bad == WIRE_BAD_TOO_LARGE) {
		w->params.len = 0;	/* an empty environment */
		log_debug("wire: params over %d bytes", WIRE_MAX_PARAMS);
	}
	return decode_params(w) == 0 ? 1 : -1;
}

int
wire_buffered(const struct wire *w)
{
	return w->rend > w->rpos;
}

ssize_t
wire_read(struct wire *w, void *buf, size_t len)
{
	const unsigned char *c;
	size_t clen;
	unsigned id;
	int t;

	while (w->in_left == 0) {
		if (w->in_eof)
			return 0;
		if (w->broken || w->phase != PHASE_STDIN)
			return -1;
		if (next_record(w, &t, &id, &c, &clen) != 1 ||
		    t != FCGI_STDIN) {
			w->broken = 1;
			return -1;
		}
		if (clen == 0) {
			w->in_eof = 1;
			return 0;
		}
		w->in_pos = (size_t)(c - w->rbuf);
		w->in_left = clen;
	}
	if (len > w->in_left)
		len = w->in_left;
	memcpy(buf, w->rbuf + w->in_pos, len);
	w->in_pos += len;
	w->in_left -= len;
	return (ssize_t)len;
}

/*
 * Count an answer by its status (metrics): "Status: NNN" when it starts
 * with one, else 200 as CGI has it (an empty one is not counted); a 2xx of a timed intake (t0_us set)
 * is timed from its params to now.
 */
static void
count_answer(const unsigned char *p, size_t n, int64_t t0_us)
{
	int status = 200;

	if (n == 0)
		return;		/* no answer at all: nothing to count */
	if (n >= 11 && memcmp(p, "Status: ", 8) == 0 &&
	    p[8] >= '1' && p[8] <= '5' && p[9] >= '0' && p[9] <= '9' &&
	    p[10] >= '0' && p[10] <= '9')
		status = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
	metrics_http(status);
	if (t0_us != 0 && status / 100 == 2)
		metrics_intake(mono_us() - t0_us);
}

int
wire_put(struct wire *w, const void *p, size_t n)
{
	return buf_append(&w->out, p, n);
}

/* The answer as FCGI_STDOUT records into *iov: one record in place (its
 * header's room is reserved in w->out), more through a copy (*copy). */
static int
stdout_records(struct wire *w, struct iovec *iov, unsigned char **copy)
{
	size_t data = w->out.len - FCGI_HEADER_LEN, n, i, chunk;
	unsigned char *p;

	*copy = NULL;
	if (data <= FCGI_MAX_LENGTH) {
		fcgirec_header(w->out.data, FCGI_STDOUT, w->id, data, 0);
		iov->iov_base = w->out.data;
		iov->iov_len = data > 0 ? w->out.len : 0;
		return 0;
	}
	n = (data + FCGI_MAX_LENGTH - 1) / FCGI_MAX_LENGTH;
	if ((p = malloc(data + n * FCGI_HEADER_LEN)) == NULL)
		return -1;
	*copy = p;
	for (i = 0; i < data; i += chunk) {
		chunk = data - i > FCGI_MAX_LENGTH ? FCGI_MAX_LENGTH : data - i;
		fcgirec_header(p, FCGI_STDOUT, w->id, chunk, 0);
		memcpy(p + FCGI_HEADER_LEN, w->out.data + FCGI_HEADER_LEN + i,
		    chunk);
		p += FCGI_HEADER_LEN + chunk;
	}
	iov->iov_base = *copy;
	iov->iov_len = (size_t)(p - *copy);
	return 0;
}

int
wire_end(struct wire *w, size_t drain_max)
{
	unsigned char tail[3 * FCGI_HEADER_LEN], *copy, buf[4096];
	struct iovec iov[3];
	size_t total = 0;
	ssize_t n;
	int keep = w->keep, ok = 1;

	count_answer(w->out.data + FCGI_HEADER_LEN, w->out.len -
	    FCGI_HEADER_LEN, w->timed ? w->t0_us : 0);
	if (stdout_records(w, &iov[0], &copy) == -1)
		return 0;
	if (!w->in_eof && !w->broken) {
		/* The answer before the rest of the body: the client may
		 * wait for it.  Then what is left is read and dropped. */
		ok = send_all(w, &iov[0], 1) == 0;
		iov[0].iov_len = 0;
		while (ok && !w->in_eof && total < drain_max &&
		    (n = wire_read(w, buf, sizeof(buf))) > 0)
			total += (size_t)n;
	}
	if (!w->in_eof) {
		keep = 0;
		w->unread = !w->broken;
	}
	request_tail(tail, w->id);
	iov[1].iov_base = tail;
	iov[1].iov_len = sizeof(tail);
	iov[2].iov_base = w->side.data;
	iov[2].iov_len = w->side.len;
	if (ok)
		ok = send_all(w, iov, 3) == 0;
	free(copy);
	w->side.len = 0;
	w->id = 0;
	w->phase = PHASE_IDLE;
	w->out.len = FCGI_HEADER_LEN;
	return ok && keep && !w->broken;
}

void
wire_close(struct wire *w)
{
	if (w->fd == -1)
		return;
	if (w->unread) {
		/* The web server may still be sending the body we refused:
		 * a close with unread data resets a TCP connection (the
		 * answer can be lost) and fails the sender's writes.  So our
		 * side is shut first, and what still comes is read away, for
		 * a moment. */
		(void)shutdown(w->fd, SHUT_WR);
		w->deadline = mono_ms() + LINGER_MS;
		do
			w->rpos = w->rend = 0;
		while (fill(w) == 1);
	}
	close(w->fd);
	w->fd = -1;
	w->unread = 0;
	w->rpos = w->rend = 0;
}

int
wire_detach(struct wire *w, struct wire_detached *d)
{
	if (!w->in_eof || w->broken || w->rend != w->rpos ||
	    w->side.len > 0 || w->out.len != FCGI_HEADER_LEN)
		return -1;
	d->fd = w->fd;
	d->id = w->id;
	d->keep = w->keep;
	d->io_timeout_ms = w->io_timeout_ms;
	d->t0_us = w->t0_us;
	d->timed = w->timed;
	w->fd = -1;
	w->id = 0;
	w->phase = PHASE_IDLE;
	return 0;
}

void
wire_reattach(struct wire *w, const struct wire_detached *d)
{
	w->fd = d->fd;
	w->id = d->id;
	w->keep = d->keep;
	w->phase = PHASE_STDIN;
}

int
wire_answer(const struct wire_detached *d, const void *p, size_t n)
{
	unsigned char head[FCGI_HEADER_LEN], tail[3 * FCGI_HEADER_LEN];
	unsigned char *heads;
	struct iovec iov[3], *v;
	size_t nrec, i, chunk;
	int r;

	count_answer(p, n, d->timed ? d->t0_us : 0);
	if (n > FCGI_MAX_LENGTH) {
		/* A job's status with a large result: one STDOUT record
		 * per FCGI_MAX_LENGTH bytes, sent in one sendmsg. */
		nrec = (n + FCGI_MAX_LENGTH - 1) / FCGI_MAX_LENGTH;
		heads = malloc(nrec * FCGI_HEADER_LEN);
		v = calloc(2 * nrec + 1, sizeof(*v));
		if (heads == NULL || v == NULL) {
			free(heads);
			free(v);
			return -1;
		}
		for (i = 0; i < nrec; i++) {
			chunk = n - i * FCGI_MAX_LENGTH;
			if (chunk > FCGI_MAX_LENGTH)
				chunk = FCGI_MAX_LENGTH;
			fcgirec_header(heads + i * FCGI_HEADER_LEN, FCGI_STDOUT,
			    d->id, chunk, 0);
			v[2 * i].iov_base = heads + i * FCGI_HEADER_LEN;
			v[2 * i].iov_len = FCGI_HEADER_LEN;
			v[2 * i + 1].iov_base = (unsigned char *)(uintptr_t)p +
			    i * FCGI_MAX_LENGTH;
			v[2 * i + 1].iov_len = chunk;
		}
		request_tail(tail, d->id);
		v[2 * nrec].iov_base = tail;
		v[2 * nrec].iov_len = sizeof(tail);
		r = send_fd(d->fd, v, (int)(2 * nrec + 1), d->io_timeout_ms,
		    NULL);
		free(heads);
		free(v);
		return r;
	}
	fcgirec_header(head, FCGI_STDOUT, d->id, n, 0);
	request_tail(tail, d->id);
	iov[0].iov_base = head;
	iov[0].iov_len = n > 0 ? sizeof(head) : 0;
	iov[1].iov_base = (void *)(uintptr_t)p;
	iov[1].iov_len = n;
	iov[2].iov_base = tail;
	iov[2].iov_len = sizeof(tail);
	return send_fd(d->fd, iov, 3, d->io_timeout_ms, NULL);
}
