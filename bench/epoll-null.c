/*
 * epoll-null: the FastCGI ceiling for the intake benchmark, without
 * libfcgi.  It reads FastCGI records (BEGIN_REQUEST, PARAMS, STDIN up to
 * the empty STDIN record), stores nothing, and answers each request with a
 * 202 in one send(): STDOUT, the empty STDOUT and END_REQUEST together.
 * A connection the web server keeps (FCGI_KEEP_CONN) is served where it
 * is, by the thread that accepted it, with no hand-off and no lock; others
 * are closed after the answer.  What bench/intake.sh gets from it is what
 * a FastCGI connection can carry on this machine, not what a responder
 * that does any work can reach.
 *
 *   epoll-null [-n THREADS] [-s PATH|HOST:PORT]
 *
 * Without -s the listening socket is fd 0, as spawn-fcgi hands it.  Each
 * of the THREADS (default: one per online CPU, so the responder is never
 * the one core the benchmark waits on) has its own epoll set holding the
 * listening socket (EPOLLEXCLUSIVE: one thread woken per connection) and
 * the connections it accepted.
 *
 * The records are parsed as a stream: a connection keeps the 8 bytes of
 * a record header and the first 8 bytes of its content (BEGIN_REQUEST's
 * body), and counts the rest away, so a request split over many reads,
 * several requests in one read, and bodies of any size cost no buffer.
 * Written from the FastCGI 1.0 specification; it links nothing of fcgiq.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11
#define FCGI_RESPONDER		1
#define FCGI_KEEP_CONN		1
#define FCGI_REQUEST_COMPLETE	0
#define FCGI_CANT_MPX_CONN	1
#define FCGI_UNKNOWN_ROLE	3
#define HLEN			8

#define RBUF		65536	/* one recv per wakeup, mostly */
#define NEVENTS		64
#define ACCEPT_BATCH	16	/* leave the next ones to another thread */

struct conn {
	int		 fd;
	unsigned	 id;		/* request in flight, 0: none */
	int		 keep;		/* its FCGI_KEEP_CONN */
	int		 closing;	/* close once out is sent */
	int		 writing;	/* waiting for EPOLLOUT */
	int		 registered;	/* in the thread's epoll set */
	unsigned char	 hdr[HLEN];	/* the record being read */
	size_t		 hlen;
	size_t		 left;		/* its content still to come */
	size_t		 pad;		/* its padding still to come */
	unsigned char	 body[8];	/* its first content bytes */
	size_t		 blen;
	char		*out;		/* answers not sent yet */
	size_t		 olen, ooff, ocap;
};

struct worker {
	pthread_t	 t;
	int		 index;
	int		 ep;
	unsigned long	 served;
};

static int	lfd;
static char	listen_mark;	/* epoll data of the listening socket */

static void
usage(void)
{
	fprintf(stderr, "usage: epoll-null [-n threads] [-s path|host:port]\n");
	exit(2);
}

/* Room for n more bytes in c->out; 0, or -1 out of memory. */
static int
out_reserve(struct conn *c, size_t n)
{
	char *p;
	size_t cap;

	if (c->olen + n <= c->ocap)
		return 0;
	cap = c->ocap ? c->ocap : 512;
	while (cap < c->olen + n)
		cap *= 2;
	if ((p = realloc(c->out, cap)) == NULL)
		return -1;
	c->out = p;
	c->ocap = cap;
	return 0;
}

static void
header(unsigned char *h, int type, unsigned id, size_t clen, size_t plen)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)plen;
	h[7] = 0;
}

/* Append a record of clen bytes (content zeroed unless given); 0 or -1. */
static int
out_record(struct conn *c, int type, unsigned id, const void *content,
    size_t clen)
{
	unsigned char *p;

	if (out_reserve(c, HLEN + clen) == -1)
		return -1;
	p = (unsigned char *)c->out + c->olen;
	header(p, type, id, clen, 0);
	if (content != NULL)
		memcpy(p + HLEN, content, clen);
	else
		memset(p + HLEN, 0, clen);
	c->olen += HLEN + clen;
	return 0;
}

static int
end_request(struct conn *c, unsigned id, int protocol_status)
{
	unsigned char b[8] = { 0 };

	b[4] = (unsigned char)protocol_status;
	return out_record(c, FCGI_END_REQUEST, id, b, sizeof(b));
}

/* The 202, the empty STDOUT, END_REQUEST; the request is over.  0 or -1. */
static int
answer(struct worker *w, struct conn *c)
{
	char text[512];
	unsigned long n = ++w->served;
	int len;

	len = snprintf(text, sizeof(text), "Status: 202 Accepted\r\n"
	    "Content-Type: application/json\r\n"
	    "Location: /jobs/null%02x%014lx\r\n\r\n"
	    "{\"id\":\"null%02x%014lx\",\"queue\":\"default\","
	    "\"state\":\"queued\",\"status_url\":\"/jobs/null%02x%014lx\"}\n",
	    w->index, n, w->index, n, w->index, n);
	if (len < 0 || (size_t)len >= sizeof(text))
		return -1;
	if (out_record(c, FCGI_STDOUT, c->id, text, (size_t)len) == -1 ||
	    out_record(c, FCGI_STDOUT, c->id, NULL, 0) == -1 ||
	    end_request(c, c->id, FCGI_REQUEST_COMPLETE) == -1)
		return -1;
	c->id = 0;
	if (!c->keep)
		c->closing = 1;
	return 0;
}

/* A record has come whole (its first 8 content bytes in c->body).  0, or
 * -1 to drop the connection. */
static int
record(struct worker *w, struct conn *c)
{
	unsigned char unknown[8] = { 0 };
	unsigned id = (unsigned)c->hdr[2] << 8 | c->hdr[3];
	size_t clen = (size_t)c->hdr[4] << 8 | c->hdr[5];
	int type = c->hdr[1], role, keep;

	if (id == 0) {		/* management record (FastCGI 1.0, 4.2) */
		if (type == FCGI_GET_VALUES)	/* none of them known here */
			return out_record(c, FCGI_GET_VALUES_RESULT, 0, NULL, 0);
		unknown[0] = (unsigned char)type;
		return out_record(c, FCGI_UNKNOWN_TYPE, 0, unknown, 8);
	}
	switch (type) {
	case FCGI_BEGIN_REQUEST:
		if (c->blen < 8)
			return -1;
		role = c->body[0] << 8 | c->body[1];
		keep = c->body[2] & FCGI_KEEP_CONN;
		if (c->id != 0)
			return end_request(c, id, FCGI_CANT_MPX_CONN);
		if (role != FCGI_RESPONDER) {
			if (!keep)
				c->closing = 1;
			return end_request(c, id, FCGI_UNKNOWN_ROLE);
		}
		c->id = id;
		c->keep = keep;
		return 0;
	case FCGI_ABORT_REQUEST:
		if (id != c->id)
			return 0;
		if (end_request(c, id, FCGI_REQUEST_COMPLETE) == -1)
			return -1;
		c->id = 0;
		if (!c->keep)
			c->closing = 1;
		return 0;
	case FCGI_STDIN:
		if (id == c->id && clen == 0)
			return answer(w, c);
		return 0;	/* the body: discarded */
	default:
		return 0;	/* PARAMS, DATA, other requests' records */
	}
}

/* Take n bytes of the stream; 0, or -1 to drop the connection.  Stops
 * early once a request that closes the connection has its answer. */
static int
parse(struct worker *w, struct conn *c, const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n;
	size_t k;

	while (p < end && !c->closing) {
		if (c->hlen < HLEN) {
			k = HLEN - c->hlen;
			if (k > (size_t)(end - p))
				k = (size_t)(end - p);
			memcpy(c->hdr + c->hlen, p, k);
			c->hlen += k;
			p += k;
			if (c->hlen < HLEN)
				break;
			if (c->hdr[0] != FCGI_VERSION_1)
				return -1;
			c->left = (size_t)c->hdr[4] << 8 | c->hdr[5];
			c->pad = c->hdr[6];
			c->blen = 0;
		}
		k = c->left < (size_t)(end - p) ? c->left : (size_t)(end - p);
		if (c->blen < sizeof(c->body)) {
			size_t b = sizeof(c->body) - c->blen;

			if (b > k)
				b = k;
			memcpy(c->body + c->blen, p, b);
			c->blen += b;
		}
		p += k;
		c->left -= k;
		k = c->pad < (size_t)(end - p) ? c->pad : (size_t)(end - p);
		p += k;
		c->pad -= k;
		if (c->left > 0 || c->pad > 0)
			break;		/* the rest comes in a later read */
		c->hlen = 0;
		if (record(w, c) == -1)
			return -1;
	}
	return 0;
}

static void
conn_close(struct worker *w, struct conn *c)
{
	(void)w;
	close(c->fd);		/* leaves the epoll set too: fd not shared */
	free(c->out);
	free(c);
}

/* Send what is in c->out: 1 all sent, 0 the rest waits for EPOLLOUT, -1
 * error. */
static int
flush(struct worker *w, struct conn *c)
{
	struct epoll_event ev;
	ssize_t r;

	while (c->ooff < c->olen) {
		r = send(c->fd, c->out + c->ooff, c->olen - c->ooff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->writing && c->registered) {
				/* Read nothing more until the peer reads. */
				ev.events = EPOLLOUT;
				ev.data.ptr = c;
				if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd,
				    &ev) == -1)
					return -1;
			}
			c->writing = 1;
			return 0;
		}
		if (r == -1)
			return -1;
		c->ooff += (size_t)r;
	}
	c->olen = c->ooff = 0;
	if (c->writing && c->registered) {
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
			return -1;
	}
	c->writing = 0;
	return 1;
}

/* The connection is ready: read (or finish writing), answer, maybe
 * close.  1 while it stays open, 0 once closed. */
static int
serve(struct worker *w, struct conn *c, uint32_t events, unsigned char *buf)
{
	ssize_t r;
	int f;

	if (c->writing) {
		if ((f = flush(w, c)) == -1 || (f == 1 && c->closing)) {
			conn_close(w, c);
			return 0;
		}
		return 1;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0)
		return 1;
	for (;;) {
		r = recv(c->fd, buf, RBUF, MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0 || parse(w, c, buf, (size_t)r) == -1) {
			conn_close(w, c);
			return 0;
		}
		/* A full buffer means more is likely there: read on. */
		if ((size_t)r < RBUF || c->closing)
			break;
	}
	if (c->olen > 0 && (f = flush(w, c)) != 1) {
		if (f == -1) {
			conn_close(w, c);
			return 0;
		}
		return 1;
	}
	if (c->closing) {
		conn_close(w, c);
		return 0;
	}
	return 1;
}

/*
 * Accept what is waiting (a batch; the rest wakes another thread).  The
 * web server writes its request right after connect(), so a new
 * connection is read at once: a request on a connection that is not kept
 * is then answered and closed without entering the epoll set at all.
 */
static void
take(struct worker *w, unsigned char *buf)
{
	struct epoll_event ev;
	struct conn *c;
	int fd, i;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				perror("epoll-null: accept");
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (serve(w, c, EPOLLIN, buf) == 0)
			continue;
		ev.events = c->writing ? EPOLLOUT : EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			conn_close(w, c);
		else
			c->registered = 1;
	}
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[NEVENTS];
	unsigned char *buf;
	int i, n;

	if ((buf = malloc(RBUF)) == NULL)
		return NULL;
	for (;;) {
		n = epoll_wait(w->ep, ev, NEVENTS, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("epoll-null: epoll_wait");
			break;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &listen_mark)
				take(w, buf);
			else
				serve(w, ev[i].data.ptr, ev[i].events, buf);
		}
	}
	free(buf);
	return NULL;
}

/* A listening socket on PATH (it must not exist) or HOST:PORT. */
static int
listen_on(const char *s)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	const char *colon;
	char host[64];
	int fd, one = 1;

	if (s[0] == '/' || s[0] == '.') {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(s) >= sizeof(sun.sun_path))
			return -1;
		memcpy(sun.sun_path, s, strlen(s));
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
		    -1)
			return -1;
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			goto fail;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		sin.sin_addr.s_addr = colon == s ? htonl(INADDR_LOOPBACK) :
		    inet_addr(host);
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			return -1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			goto fail;
	}
	if (listen(fd, 4096) == -1)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int
main(int argc, char **argv)
{
	struct epoll_event ev;
	struct worker *w;
	const char *where = NULL;
	long ncpu;
	int i, n = 0, ch, fl, acc = 0;
	socklen_t len = sizeof(acc);

	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		switch (ch) {
		case 'n':
			if ((n = atoi(optarg)) <= 0)
				usage();
			break;
		case 's':
			where = optarg;
			break;
		default:
			usage();
		}
	}
	if (n == 0)
		n = (ncpu = sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? (int)ncpu : 1;
	signal(SIGPIPE, SIG_IGN);
	if (where != NULL) {
		if ((lfd = listen_on(where)) == -1) {
			fprintf(stderr, "epoll-null: %s: %s\n", where,
			    strerror(errno));
			return 1;
		}
	} else {
		lfd = 0;
		if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc,
		    &len) == -1 || !acc) {
			fprintf(stderr, "epoll-null: fd 0 is not a listening "
			    "socket (spawn-fcgi, or -s)\n");
			return 1;
		}
	}
	if ((fl = fcntl(lfd, F_GETFL)) == -1 ||
	    fcntl(lfd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    (w = calloc((size_t)n, sizeof(*w))) == NULL) {
		perror("epoll-null");
		return 1;
	}
	for (i = 0; i < n; i++) {
		w[i].index = i;
		if ((w[i].ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
			perror("epoll-null: epoll_create1");
			return 1;
		}
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.ptr = &listen_mark;
		if (epoll_ctl(w[i].ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
			perror("epoll-null: epoll_ctl");
			return 1;
		}
	}
	for (i = 1; i < n; i++)
		if (pthread_create(&w[i].t, NULL, run, &w[i]) != 0) {
			fprintf(stderr, "epoll-null: pthread_create failed\n");
			return 1;
		}
	run(&w[0]);
	return 1;
}
