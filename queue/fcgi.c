/*
 * fcgi: the fastcgi: handler kind (see fcgi.h).  A slot's request goes
 * through phases:
 *
 *   CONNECT --(connected)--> SEND --(request sent)--> READ --> DONE
 *
 * and the answer is read as it comes, whatever the phase (an application
 * may answer before it has read the body).  The reader is a byte-stream
 * parser over records: a header is checked whole (version, type, request
 * id, and END_REQUEST's length) before any of its content is taken, the
 * content is handed on as it arrives (STDOUT to the CGI header parser and
 * then the result, STDERR to the tail of last_error), so memory is the
 * slot's result (max_result), the CGI headers (FCGI_HEAD_MAX) and a fixed
 * read buffer, whatever the upstream sends.
 *
 * Upstreams are kept in a small table keyed by the handler line: each has
 * its resolved address, its idle kept connections (a stack; the most
 * recently used first, so the others age out) and the gate of its
 * "unreachable" log line.  A kept connection the application has closed
 * meanwhile fails on its first use without a byte of answer: the request
 * is then sent once more on a fresh connection, so a pool restart costs no
 * attempt.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "exec.h"
#include "fcgi.h"
#include "fcgirec.h"
#include "log.h"
#include "slot.h"
#include "store.h"
#include "upstream.h"

#define REQ_ID		1		/* one request per connection */
#define STDIN_CHUNK	65528		/* FCGI_MAX_LENGTH, 8-aligned */
#define READ_BUDGET	(1024 * 1024)	/* bytes a ready() call reads */

enum { PH_CONNECT = 1, PH_SEND, PH_READ, PH_DONE };

struct fcgi_idle {
	int		 fd;
	int64_t		 since;		/* monotonic ms */
};

struct fcgi_pool {
	char		*key;		/* the handler line */
	char		 name[128];	/* for messages: the path, host:port */
	struct sockaddr_storage addr;
	socklen_t	 alen;		/* 0: not resolved */
	struct upstream_gate gate;
	struct fcgi_idle *idle;		/* kept connections, a stack */
	size_t		 nidle, cap;
	struct fcgi_pool *next;
};

static struct fcgi_pool *pools;

/* ------------------------------------------------------------- upstreams */

/* The upstream of q, made at its first job.  NULL when out of memory. */
static struct fcgi_pool *
pool_get(const struct queue_conf *q)
{
	struct fcgi_pool *p;

	for (p = pools; p != NULL; p = p->next)
		if (strcmp(p->key, q->handler) == 0)
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->key = strdup(q->handler)) == NULL) {
		free(p);
		return NULL;
	}
	if (q->fcgi_unix != NULL)
		(void)snprintf(p->name, sizeof(p->name), "%s", q->fcgi_unix);
	else if (strchr(q->fcgi_host, ':') != NULL)
		(void)snprintf(p->name, sizeof(p->name), "[%s]:%d",
		    q->fcgi_host, q->fcgi_port);
	else
		(void)snprintf(p->name, sizeof(p->name), "%s:%d",
		    q->fcgi_host, q->fcgi_port);
	p->next = pools;
	pools = p;
	return p;
}

/* The address of q's upstream into p (once; again after a failure).
 * 0, or -1 with why set. */
static int
pool_resolve(struct fcgi_pool *p, const struct queue_conf *q, char *why,
    size_t len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&p->addr;
	struct addrinfo hints, *ai;
	char port[16];
	int rc;

	if (p->alen != 0)
		return 0;
	if (q->fcgi_unix != NULL) {
		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		/* config.c checked that it fits. */
		(void)snprintf(sun->sun_path, sizeof(sun->sun_path), "%s",
		    q->fcgi_unix);
		p->alen = sizeof(*sun);
		return 0;
	}
	/* A name is looked up here, blocking the loop for as long as the
	 * resolver takes: once per upstream, and after a failed connect. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	(void)snprintf(port, sizeof(port), "%d", q->fcgi_port);
	if ((rc = getaddrinfo(q->fcgi_host, port, &hints, &ai)) != 0) {
		(void)snprintf(why, len, "resolve %s: %s", q->fcgi_host,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
	p->alen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* A kept connection of p that is still open, or -1. */
static int
pool_take(struct fcgi_pool *p)
{
	char c;
	ssize_t n;
	int fd;

	while (p->nidle > 0) {
		fd = p->idle[--p->nidle].fd;
		/* Idle, the application has nothing to say: anything it
		 * said (EOF, a reset, stray bytes) ends the connection. */
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return fd;
		(void)close(fd);
	}
	return -1;
}

/* Keep fd for the next request to p (closed when p keeps too many). */
static void
pool_put(struct fcgi_pool *p, int fd)
{
	/* The most a queue runs at once (concurrency <= 256). */
	if (p->nidle >= 256 || array_grow(&p->idle, &p->cap, p->nidle + 1,
	    sizeof(*p->idle), 8) == -1) {
		(void)close(fd);
		return;
	}
	p->idle[p->nidle].fd = fd;
	p->idle[p->nidle].since = mono_ms();
	p->nidle++;
}

void
fcgi_pool_tick(int64_t now)
{
	struct fcgi_pool *p;
	size_t i, k;

	for (p = pools; p != NULL; p = p->next) {
		for (i = 0, k = 0; i < p->nidle; i++) {
			if (now - p->idle[i].since >= FCGI_IDLE_MS)
				(void)close(p->idle[i].fd);
			else
				p->idle[k++] = p->idle[i];
		}
		p->nidle = k;
	}
}

void
fcgi_pool_free(void)
{
	struct fcgi_pool *p;
	size_t i;

	while ((p = pools) != NULL) {
		pools = p->next;
		for (i = 0; i < p->nidle; i++)
			(void)close(p->idle[i].fd);
		free(p->idle);
		free(p->key);
		free(p);
	}
}

/* ------------------------------------------------------------ the request */

/* Append one name-value pair to the params in b. */
static int
param_add(struct buf *b, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	size_t need = fcgirec_nv_size(nlen, vlen);

	if (nlen >= 0x80000000u || vlen >= 0x80000000u ||
	    buf_reserve(b, need) == -1)
		return -1;
	(void)fcgirec_nv_put(b->data + b->len, name, nlen, value, vlen);
	b->len += need;
	return 0;
}

static int
param_str(struct buf *b, const char *name, const char *value)
{
	return param_add(b, name, strlen(name), value, strlen(value));
}

/* 1 when name (nlen bytes) is one of q's params, which override. */
static int
param_ours(const struct queue_conf *q, const char *name, size_t nlen)
{
	size_t i;

	for (i = 0; i < q->nparams; i++)
		if (strlen(q->params[2 * i]) == nlen &&
		    memcmp(q->params[2 * i], name, nlen) == 0)
			return 1;
	return 0;
}

/* Append records of type for data[0..n) (n > 0 may be any size). */
static int
records(struct buf *b, int type, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t k;

	while (n > 0) {
		k = n < STDIN_CHUNK ? n : STDIN_CHUNK;
		if (buf_reserve(b, FCGI_HEADER_LEN + k) == -1)
			return -1;
		fcgirec_header(b->data + b->len, type, REQ_ID, k, 0);
		memcpy(b->data + b->len + FCGI_HEADER_LEN, p, k);
		b->len += FCGI_HEADER_LEN + k;
		p += k;
		n -= k;
	}
	/* The empty record that ends the stream. */
	if (buf_reserve(b, FCGI_HEADER_LEN) == -1)
		return -1;
	fcgirec_header(b->data + b->len, type, REQ_ID, 0, 0);
	b->len += FCGI_HEADER_LEN;
	return 0;
}

/*
 * The whole request into f->req: BEGIN_REQUEST (RESPONDER, KEEP_CONN),
 * PARAMS, STDIN.  The CGI variables are exec_env()'s, the one list of
 * them (never HTTP_PROXY); then what a web server adds for a script; the
 * queue's params last, replacing any of the same name.  0, or -1 when out
 * of memory.
 */
static int
build_request(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;
	const struct queue_conf *q = s->q;
	struct buf params;
	const char *eq, *base;
	char **env, **e, name[80];
	unsigned char *p;
	size_t i;
	int rc = -1;

	buf_init(&params, 0);
	if ((env = exec_env(s->job, NULL)) == NULL)
		return -1;
	for (e = env; *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL ||
		    strncmp(*e, "PATH=", 5) == 0 ||
		    param_ours(q, *e, (size_t)(eq - *e)))
			continue;
		if (param_add(&params, *e, (size_t)(eq - *e), eq + 1,
		    strlen(eq + 1)) == -1)
			goto out;
	}
	if (!param_ours(q, "GATEWAY_INTERFACE", 17) &&
	    param_str(&params, "GATEWAY_INTERFACE", "CGI/1.1") == -1)
		goto out;
	if (!param_ours(q, "SERVER_PROTOCOL", 15) &&
	    param_str(&params, "SERVER_PROTOCOL", "HTTP/1.1") == -1)
		goto out;
	if (!param_ours(q, "SERVER_SOFTWARE", 15) &&
	    param_str(&params, "SERVER_SOFTWARE", "fcgiq") == -1)
		goto out;
	if (q->script != NULL) {
		base = strrchr(q->script, '/');
		(void)snprintf(name, sizeof(name), "/%s", base + 1);
		if (!param_ours(q, "SCRIPT_FILENAME", 15) &&
		    param_str(&params, "SCRIPT_FILENAME", q->script) == -1)
			goto out;
		if (!param_ours(q, "SCRIPT_NAME", 11) &&
		    param_str(&params, "SCRIPT_NAME", name) == -1)
			goto out;
	}
	for (i = 0; i < q->nparams; i++)
		if (param_str(&params, q->params[2 * i],
		    q->params[2 * i + 1]) == -1)
			goto out;

	buf_init(&f->req, 0);
	if (buf_reserve(&f->req, 2 * FCGI_HEADER_LEN + params.len +
	    s->job->body_len + 64) == -1)
		goto out;
	p = f->req.data;
	fcgirec_header(p, FCGI_BEGIN_REQUEST, REQ_ID, 8, 0);
	memset(p + FCGI_HEADER_LEN, 0, 8);
	p[FCGI_HEADER_LEN + 1] = FCGI_RESPONDER;
	p[FCGI_HEADER_LEN + 2] = FCGI_KEEP_CONN;
	f->req.len = 2 * FCGI_HEADER_LEN;
	if (params.len > 0 &&
	    records(&f->req, FCGI_PARAMS, params.data, params.len) == -1)
		goto out;
	if (params.len == 0 && records(&f->req, FCGI_PARAMS, "", 0) == -1)
		goto out;
	if (records(&f->req, FCGI_STDIN, s->job->body,
	    s->job->body != NULL ? s->job->body_len : 0) == -1)
		goto out;
	rc = 0;
out:
	buf_free(&params);
	exec_env_free(env);
	return rc;
}

/* ------------------------------------------------------------- outcomes */

static void
conn_close(struct slot_fcgi *f)
{
	if (f->fd != -1)
		(void)close(f->fd);
	f->fd = -1;
}

/*
 * The attempt is over with verdict and the reason "fastcgi: NAME: what":
 * close (or keep) the connection, and slot_exited().
 */
static void
finish(struct slot *s, enum upstream_verdict verdict, int status,
    const char *what)
{
	struct slot_fcgi *f = &s->u.fcgi;
	char text[64];

	if (f->phase == PH_DONE)
		return;
	f->phase = PH_DONE;
	conn_close(f);
	s->up.set = 1;
	s->up.verdict = verdict;
	s->up.status = status;
	(void)snprintf(s->up.reason, sizeof(s->up.reason),
	    "fastcgi: %.50s: %.64s", f->pool != NULL ? f->pool->name : "?", what);
	if (status > 0)
		(void)snprintf(text, sizeof(text), "status %d", status);
	else
		(void)snprintf(text, sizeof(text), "failed");
	if (slot_exited(s, status > 0 ? status : -1, text) == -1)
		log_warnx("helper: job %s: fastcgi: exited refused",
		    s->job->id);
}

/* A transport failure (connect, reset, closed): retried, logged once a
 * minute per upstream. */
static void
unreachable(struct slot *s, const char *what)
{
	struct slot_fcgi *f = &s->u.fcgi;
	unsigned long held = 0;

	if (f->pool != NULL &&
	    upstream_gate_pass(&f->pool->gate, mono_ms(), &held)) {
		if (held > 0)
			log_warnx("helper: fastcgi: %s: %s (and %lu more "
			    "failures in the last minute)", f->pool->name,
			    what, held);
		else
			log_warnx("helper: fastcgi: %s: %s", f->pool->name,
			    what);
	}
	finish(s, UPSTREAM_RETRY, 0, what);
	s->up.quiet = 1;
}

/* A broken answer: retried, not the upstream's being down. */
static void __attribute__((format(printf, 2, 3)))
broken(struct slot *s, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	finish(s, UPSTREAM_RETRY, 0, what);
}

/* ---------------------------------------------------------- connections */

/* Connect to s's upstream: 0 (connected or under way), -1 (finished). */
static int
conn_open(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;
	struct fcgi_pool *p = f->pool;
	char why[160];
	int fd;

	if (pool_resolve(p, s->q, why, sizeof(why)) == -1) {
		unreachable(s, why);
		return -1;
	}
	fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		(void)snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		unreachable(s, why);
		return -1;
	}
	f->fd = fd;
	f->reused = 0;
	if (connect(fd, (struct sockaddr *)&p->addr, p->alen) == 0) {
		f->phase = PH_SEND;
		return 0;
	}
	if (errno == EINPROGRESS) {
		f->phase = PH_CONNECT;
		return 0;
	}
	/* A unix socket's full backlog is EAGAIN: busy, not gone. */
	(void)snprintf(why, sizeof(why), "connect: %s", strerror(errno));
	if (p->addr.ss_family != AF_UNIX)
		p->alen = 0;	/* look the name up again next time */
	unreachable(s, why);
	return -1;
}

/* A kept connection, else a new one: 0, or -1 (finished). */
static int
conn_get(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;

	if ((f->fd = pool_take(f->pool)) != -1) {
		f->reused = 1;
		f->phase = PH_SEND;
		return 0;
	}
	return conn_open(s);
}

/*
 * The connection went away (reset, EOF) with what.  A kept connection
 * that did so before any byte of the answer had been closed by the
 * application while idle: the request goes again, once, on a new one.
 */
static void
conn_lost(struct slot *s, const char *what)
{
	struct slot_fcgi *f = &s->u.fcgi;

	if (f->reused && !f->got && !f->fresh_retry) {
		f->fresh_retry = 1;
		conn_close(f);
		f->req_off = 0;
		(void)conn_open(s);
		return;
	}
	if (f->got && what[0] != '\0')
		broken(s, "connection lost mid-answer (%s)", what);
	else if (f->got)
		broken(s, "connection closed mid-answer");
	else
		unreachable(s, what);
}

/* ---------------------------------------------------------- the answer */

/* Take body bytes into the result: the first max_result kept, the rest
 * counted.  0, or -1 when out of memory. */
static int
body_add(struct slot *s, const unsigned char *p, size_t n)
{
	struct buf *b = &s->out.b;
	size_t keep = b->len < b->max ? b->max - b->len : 0;

	s->out.total += n;
	if (keep > n)
		keep = n;
	return keep > 0 ? buf_append(b, p, keep) : 0;
}

/* Copy a header's value (len bytes at v, blanks trimmed) into dst. */
static void
header_value(char *dst, size_t dlen, const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= dlen)
		len = dlen - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/*
 * The CGI header block (f->head, n bytes without the blank line): Status,
 * Content-Type, Retry-After, Location.  0, or -1 (finished) when a line is
 * not a header.
 */
static int
headers_parse(struct slot *s, size_t n)
{
	struct slot_fcgi *f = &s->u.fcgi;
	const char *p = (const char *)f->head.data, *end = p + n, *nl, *colon;
	char num[8];
	size_t len, nlen;
	char *e;
	long v;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		colon = memchr(p, ':', len);
		if (colon == NULL || colon == p || memchr(p, ' ',
		    (size_t)(colon - p)) != NULL) {
			broken(s, "malformed CGI header line");
			return -1;
		}
		nlen = (size_t)(colon - p);
		colon++;
		len -= nlen + 1;
		if (nlen == 6 && strncasecmp(p, "Status", 6) == 0) {
			header_value(num, sizeof(num), colon, len < 5 ? len :
			    5);
			v = strtol(num, &e, 10);
			if (e != num + 3 || (*e != '\0' && *e != ' ') ||
			    v < 100 || v > 599) {
				broken(s, "bad Status header");
				return -1;
			}
			f->status = (int)v;
		} else if (nlen == 12 && strncasecmp(p, "Content-Type", 12) == 0)
			header_value(s->up.type, sizeof(s->up.type), colon,
			    len);
		else if (nlen == 11 && strncasecmp(p, "Retry-After", 11) == 0)
			header_value(f->retry_after, sizeof(f->retry_after),
			    colon, len);
		else if (nlen == 8 && strncasecmp(p, "Location", 8) == 0)
			f->location = 1;
	}
	return 0;
}

/* STDOUT bytes: CGI headers until the blank line, then the body.
 * 0; 1 finished (a bad header); -1 out of memory. */
static int
stdout_add(struct slot *s, const unsigned char *p, size_t n)
{
	struct slot_fcgi *f = &s->u.fcgi;
	const unsigned char *h;
	size_t take, from, i, hend = 0, bstart = 0;

	if (f->in_body)
		return body_add(s, p, n);
	take = FCGI_HEAD_MAX - f->head.len;
	if (take > n)
		take = n;
	from = f->head.len > 3 ? f->head.len - 3 : 0;
	if (buf_append(&f->head, p, take) == -1)
		return -1;
	h = f->head.data;
	for (i = from; i < f->head.len; i++) {
		if (h[i] != '\n')
			continue;
		if (i >= 1 && h[i - 1] == '\n') {
			hend = i - 1;
			bstart = i + 1;
			break;
		}
		if (i >= 2 && h[i - 1] == '\r' && h[i - 2] == '\n') {
			hend = i - 1;
			bstart = i + 1;
			break;
		}
		if (i == 0 || (i == 1 && h[0] == '\r')) {
			/* No header at all: a blank first line. */
			hend = 0;
			bstart = i + 1;
			break;
		}
	}
	if (bstart == 0) {
		if (f->head.len >= FCGI_HEAD_MAX) {
			broken(s, "CGI headers past %d KiB",
			    FCGI_HEAD_MAX / 1024);
			return 1;
		}
		return 0;
	}
	if (headers_parse(s, hend) == -1)
		return 1;
	f->in_body = 1;
	if (body_add(s, h + bstart, f->head.len - bstart) == -1 ||
	    body_add(s, p + take, n - take) == -1)
		return -1;
	buf_free(&f->head);
	return 0;
}

/* The request ended (FCGI_END_REQUEST); extra bytes followed it when
 * left. */
static void
answered(struct slot *s, int left)
{
	struct slot_fcgi *f = &s->u.fcgi;
	enum upstream_verdict v;
	char what[96];
	int status, fd, keep;

	switch (f->end[4]) {
	case FCGI_REQUEST_COMPLETE:
		break;
	case FCGI_CANT_MPX_CONN:
		broken(s, "refused the request (FCGI_CANT_MPX_CONN)");
		return;
	case FCGI_OVERLOADED:
		broken(s, "refused the request (FCGI_OVERLOADED)");
		return;
	case FCGI_UNKNOWN_ROLE:
		broken(s, "refused the request (FCGI_UNKNOWN_ROLE)");
		return;
	default:
		broken(s, "FCGI_END_REQUEST with protocol status %d",
		    f->end[4]);
		return;
	}
	if (!f->in_body) {
		if (f->head.len == 0)
			broken(s, "answer without CGI headers");
		else
			broken(s, "CGI headers without their blank line");
		return;
	}
	upstream_gate_reset(&f->pool->gate);
	/* CGI/1.1 6.3.3: no Status is 200, or 302 with a Location. */
	status = f->status != 0 ? f->status : f->location ? 302 : 200;
	v = upstream_verdict(status);
	if (v != UPSTREAM_DONE) {
		if ((status == 429 || status == 503) && f->retry_after[0] &&
		    upstream_retry_after(f->retry_after, store_now(),
		    s->q->backoff_max_ms, &s->up.run_at) == 0)
			s->up.run_at = 0;
		/* The application's own words: its stderr, else the end of
		 * its body. */
		if (s->err.total == 0 && s->out.b.len > 0)
			upstream_tail_add(&s->err, s->out.b.data,
			    s->out.b.len);
	}
	/* Kept for the next job only when it ended cleanly, and the
	 * request was sent whole. */
	keep = !left && f->phase == PH_READ;
	fd = f->fd;
	if (keep)
		f->fd = -1;
	(void)snprintf(what, sizeof(what), "status %d", status);
	finish(s, v, status, what);
	if (keep)
		pool_put(f->pool, fd);
}

/*
 * Bytes of the answer: records taken apart as they come.  0 to go on; 1
 * finished (the end, or a broken answer); -1 out of memory.
 */
static int
answer_add(struct slot *s, const unsigned char *p, size_t n)
{
	struct slot_fcgi *f = &s->u.fcgi;
	struct fcgirec_hdr h;
	size_t k;
	int r;

	f->got = 1;
	f->total += n;
	if (f->total > FCGI_ANSWER_MAX) {
		broken(s, "answer past %d MiB",
		    FCGI_ANSWER_MAX / (1024 * 1024));
		return 1;
	}
	while (n > 0) {
		if (f->hlen < FCGI_HEADER_LEN) {
			k = FCGI_HEADER_LEN - f->hlen;
			if (k > n)
				k = n;
			memcpy(f->hdr + f->hlen, p, k);
			f->hlen += k;
			p += k;
			n -= k;
			if (f->hlen < FCGI_HEADER_LEN)
				break;
			if (fcgirec_parse(f->hdr, &h) == -1) {
				broken(s, "bad record version %d", h.version);
				return 1;
			}
			if (h.type != FCGI_STDOUT && h.type != FCGI_STDERR &&
			    h.type != FCGI_END_REQUEST) {
				broken(s, "unexpected record type %d", h.type);
				return 1;
			}
			if (h.id != REQ_ID) {
				if (h.type == FCGI_END_REQUEST)
					broken(s, "FCGI_END_REQUEST for "
					    "another request (id %u)", h.id);
				else
					broken(s, "a record for another "
					    "request (id %u)", h.id);
				return 1;
			}
			if (h.type == FCGI_END_REQUEST && h.clen != 8) {
				broken(s, "FCGI_END_REQUEST of %zu bytes",
				    h.clen);
				return 1;
			}
			f->rtype = h.type;
			f->cleft = h.clen;
			f->pleft = h.pad;
			f->elen = 0;
		} else if (f->cleft > 0) {
			k = f->cleft < n ? f->cleft : n;
			if (f->rtype == FCGI_STDOUT) {
				if ((r = stdout_add(s, p, k)) != 0)
					return r;
			} else if (f->rtype == FCGI_STDERR)
				upstream_tail_add(&s->err, p, k);
			else {
				memcpy(f->end + f->elen, p, k);
				f->elen += k;
			}
			f->cleft -= k;
			p += k;
			n -= k;
		} else {
			k = f->pleft < n ? f->pleft : n;
			f->pleft -= k;
			p += k;
			n -= k;
		}
		if (f->hlen == FCGI_HEADER_LEN && f->cleft == 0 &&
		    f->pleft == 0) {
			f->hlen = 0;
			if (f->rtype == FCGI_END_REQUEST) {
				answered(s, n > 0);
				return 1;
			}
		}
	}
	return 0;
}

/* Read what the connection has, within READ_BUDGET.  0 or -1 (out of
 * memory); the attempt may have finished. */
static int
answer_read(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;
	unsigned char buf[16384];
	size_t budget = READ_BUDGET;
	ssize_t n;
	int r;
	char what[128];

	while (f->phase != PH_DONE && budget > 0) {
		n = recv(f->fd, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == -1) {
			(void)snprintf(what, sizeof(what), "read: %s",
			    strerror(errno));
			conn_lost(s, what);
			return 0;
		}
		if (n == 0) {
			conn_lost(s, f->got ? "" : "connection closed before "
			    "an answer");
			return 0;
		}
		budget -= (size_t)n < budget ? (size_t)n : budget;
		if ((r = answer_add(s, buf, (size_t)n)) == -1)
			return -1;
		if (r == 1)
			return 0;
	}
	return 0;
}

/* Send what is left of the request; PH_READ once it is all out. */
static void
request_send(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;
	char what[128];
	ssize_t n;

	if (f->phase != PH_SEND)
		return;
	while (f->req_off < f->req.len) {
		n = send(f->fd, f->req.data + f->req_off,
		    f->req.len - f->req_off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			/* Over, or on a new connection that poll() will
			 * say is ready. */
			(void)snprintf(what, sizeof(what), "write: %s",
			    strerror(errno));
			conn_lost(s, what);
			return;
		}
		f->req_off += (size_t)n;
	}
	f->phase = PH_READ;
}

/* ------------------------------------------------------------- the kind */

void
fcgi_slot_prepare(struct slot *s)
{
	memset(&s->u.fcgi, 0, sizeof(s->u.fcgi));
	s->u.fcgi.fd = -1;
	buf_init(&s->u.fcgi.head, FCGI_HEAD_MAX);
	s->kind = &fcgi_kind;
}

static void
fcgi_started(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;

	if ((f->pool = pool_get(s->q)) == NULL || build_request(s) == -1) {
		finish(s, UPSTREAM_RETRY, 0, "out of memory");
		return;
	}
	if (conn_get(s) == -1)
		return;
	if (f->phase == PH_SEND)
		request_send(s);
}

static int
fcgi_poll(struct slot *s, struct pollfd *pfd, int *which)
{
	struct slot_fcgi *f = &s->u.fcgi;

	if (f->phase == PH_DONE || f->fd == -1)
		return 0;
	pfd[0].fd = f->fd;
	pfd[0].events = f->phase == PH_CONNECT ? POLLOUT :
	    f->phase == PH_SEND ? POLLIN | POLLOUT : POLLIN;
	which[0] = 0;
	return 1;
}

static int
fcgi_ready(struct slot *s, int which, short revents)
{
	struct slot_fcgi *f = &s->u.fcgi;
	socklen_t len = sizeof(int);
	char what[128];
	int err = 0;

	(void)which;
	if (f->phase == PH_CONNECT) {
		if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err == 0 && (revents & (POLLOUT | POLLERR | POLLHUP)) == 0)
			return 0;
		if (err != 0) {
			(void)snprintf(what, sizeof(what), "connect: %s",
			    strerror(err));
			f->pool->alen = 0;
			unreachable(s, what);
			return 0;
		}
		f->phase = PH_SEND;
	}
	if (f->phase == PH_SEND)
		request_send(s);
	if (f->phase != PH_DONE && (revents & (POLLIN | POLLERR | POLLHUP)))
		return answer_read(s);
	return 0;
}

/* The timeout, or the helper's shutdown past its grace: the application
 * is told (FCGI_ABORT_REQUEST), the connection closed, the attempt over. */
static void
fcgi_stop(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;
	unsigned char rec[FCGI_HEADER_LEN];

	if (f->phase == PH_DONE)
		return;
	/* Only between whole records: once the request is out. */
	if (f->phase == PH_READ && f->fd != -1) {
		fcgirec_header(rec, FCGI_ABORT_REQUEST, REQ_ID, 0, 0);
		(void)send(f->fd, rec, sizeof(rec), MSG_NOSIGNAL |
		    MSG_DONTWAIT);
	}
	f->phase = PH_DONE;
	conn_close(f);
	if (slot_exited(s, -1, "aborted") == -1)
		log_warnx("helper: job %s: fastcgi: exited refused",
		    s->job->id);
}

static void
fcgi_kill(struct slot *s)
{
	/* stop() has ended it already; slot_free() may come first. */
	conn_close(&s->u.fcgi);
}

static int
fcgi_drain(struct slot *s)
{
	(void)s;
	return 0;
}

static void
fcgi_close(struct slot *s)
{
	struct slot_fcgi *f = &s->u.fcgi;

	conn_close(f);
	buf_free(&f->req);
	buf_free(&f->head);
}

static void
fcgi_describe(const struct slot *s, char *buf, size_t len)
{
	const struct slot_fcgi *f = &s->u.fcgi;

	(void)snprintf(buf, len, "fastcgi %s",
	    f->pool != NULL ? f->pool->name : "?");
}

const struct slot_kind fcgi_kind = {
	"fastcgi", fcgi_started, fcgi_poll, fcgi_ready, fcgi_stop, fcgi_kill,
	fcgi_drain, fcgi_close, fcgi_describe
};
