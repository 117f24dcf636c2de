/*
 * fcgiclient: a small FastCGI client for the tests, talking straight to a
 * responder's socket, that can send what no web server would: a body
 * shorter than CONTENT_LENGTH, a garbage CONTENT_LENGTH, a huge header,
 * thousands of headers, a client that goes away mid-body, idle or
 * half-sent connections.
 *
 *   fcgiclient -s PATH|HOST:PORT [-m METHOD] [-u URI] [-p NAME=VALUE]...
 *	[-d BODY | -D N] [-l CONTENT_LENGTH|none] [-n SEND] [-c] [-e]
 *	[-H N] [-B N] [-k N [-Q | -I]] [-S MS] [-w SECONDS]
 *   fcgiclient -s ... -i N [-P] [-w SECONDS]
 *   fcgiclient -s ... -C N [-X MS] [request options]
 *
 * A request prints "status NNN", then the response as received, or
 * "closed" when the connection ended without FCGI_END_REQUEST, or
 * "timeout" ("empty": an END_REQUEST with no answer).  -k N sends N
 * requests on one kept connection (-Q: all of them in one write before
 * the first answer is read, pipelined; -I: every one kept, then the
 * connection held idle up to -w seconds, and "held: closed after S s" or
 * "held: open" printed); -S MS sends the first half of the
 * body, sleeps MS milliseconds, then the rest.  -i N opens N
 * connections that send nothing (-P: half a request), holds them up to -w
 * seconds and prints "idle N closed M": how many the server closed.
 * -C N sends the request on N connections at once, prints "sent N",
 * then waits up to -w seconds for every answer and prints "answered A of
 * N" and a "status S: COUNT" line per status (Prefer: wait, many waiters);
 * with -X MS it closes them all MS milliseconds after sending instead
 * and prints "dropped N" (clients that go away while they wait).
 * Exit status 0 unless the tool itself failed.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgibuf.h"

#define FCGI_BEGIN_REQUEST	1
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_STDERR		7
#define FCGI_KEEP_CONN		1

static const char	*sockname;
static int		 wait_s = 10;

static void
die(const char *msg)
{
	perror(msg);
	exit(1);
}

static int
connect_to(const char *s)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	const char *colon;
	int fd;

	if (s[0] == '/' || s[0] == '.') {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			die("socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			die(s);
		return fd;
	}
	if ((colon = strrchr(s, ':')) == NULL) {
		fprintf(stderr, "fcgiclient: %s: not PATH or HOST:PORT\n", s);
		exit(1);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (colon == s)
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else {
		char host[64];

		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		sin.sin_addr.s_addr = inet_addr(host);
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die(s);
	return fd;
}

/* Write all of b; 0, or -1 when the server closed on us (not fatal). */
static int
send_all(int fd, const struct fcgibuf *b)
{
	size_t off = 0;
	ssize_t n;

	while (off < b->len) {
		n = write(fd, b->p + off, b->len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Read exactly n bytes within the deadline: 1, 0 closed, -1 timeout. */
static int
read_full(int fd, unsigned char *p, size_t n, time_t deadline)
{
	struct pollfd pfd;
	ssize_t r;
	int ms;

	while (n > 0) {
		ms = (int)(deadline - time(NULL)) * 1000;
		if (ms <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) <= 0)
			return -1;
		r = read(fd, p, n);
		if (r <= 0)
			return 0;
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

/* Read the answer to request id and print it; 0 ended, -1 not. */
static int
read_answer(int fd, int id)
{
	unsigned char h[8], content[65536 + 256];
	struct fcgibuf out = { 0 };
	size_t clen, plen;
	time_t deadline = time(NULL) + wait_s;
	const char *p, *e;
	int r, status;

	for (;;) {
		if ((r = read_full(fd, h, 8, deadline)) != 1)
			goto fail;
		clen = (size_t)h[4] << 8 | h[5];
		plen = h[6];
		if ((r = read_full(fd, content, clen + plen, deadline)) != 1 &&
		    clen + plen > 0)
			goto fail;
		if ((h[2] << 8 | h[3]) != id)
			continue;
		if (h[1] == FCGI_STDOUT)
			fcgibuf_add(&out, content, clen);
		else if (h[1] == FCGI_STDERR)
			fwrite(content, 1, clen, stderr);
		else if (h[1] == FCGI_END_REQUEST)
			break;
	}
	if (out.len == 0) {
		printf("empty\n");	/* END_REQUEST and no answer */
		return 0;
	}
	fcgibuf_add(&out, "", 1);
	status = 200;
	p = (const char *)out.p;
	if (strncmp(p, "Status: ", 8) == 0)
		status = atoi(p + 8);
	else if ((e = strstr(p, "\nStatus: ")) != NULL &&
	    (strstr(p, "\r\n\r\n") == NULL || e < strstr(p, "\r\n\r\n")))
		status = atoi(e + 9);
	printf("status %d\n%s", status, p);
	if (out.len > 1 && p[out.len - 2] != '\n')
		printf("\n");
	free(out.p);
	return 0;
fail:
	printf("%s\n", r == 0 ? "closed" : "timeout");
	free(out.p);
	return -1;
}

/* Hold kept connection fd with nothing to say, up to -w seconds: print
 * when the server closed it. */
static void
hold_idle(int fd)
{
	struct pollfd pfd;
	struct timespec t0, t1;
	unsigned char junk[256];
	int ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = wait_s * 1000 - (int)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (ms <= 0 || poll(&pfd, 1, ms) <= 0) {
			printf("held: open\n");
			return;
		}
		if (read(fd, junk, sizeof(junk)) <= 0)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("held: closed after %ld s\n", (long)(t1.tv_sec - t0.tv_sec));
}

static int
idle_conns(int n, int partial)
{
	struct pollfd *pfd;
	struct fcgibuf b = { 0 }, prm = { 0 };
	unsigned char role[8] = { 0, 1, FCGI_KEEP_CONN, 0, 0, 0, 0, 0 };
	unsigned char junk[256];
	time_t deadline;
	int i, closed = 0, ms;

	if ((pfd = calloc((size_t)n, sizeof(*pfd))) == NULL)
		die("calloc");
	if (partial) {
		fcgibuf_record(&b, FCGI_BEGIN_REQUEST, 1, role, 8);
		fcgibuf_param(&prm, "REQUEST_METHOD", "POST");
		fcgibuf_param(&prm, "REQUEST_URI", "/half");
		/* A params record that promises more than it brings. */
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		b.p[b.len - 4] = 0;
		b.p[b.len - 3] = 200;
		fcgibuf_add(&b, prm.p, prm.len);
	}
	for (i = 0; i < n; i++) {
		pfd[i].fd = connect_to(sockname);
		pfd[i].events = POLLIN;
		if (partial)
			(void)send_all(pfd[i].fd, &b);
	}
	printf("opened %d\n", n);
	fflush(stdout);
	deadline = time(NULL) + wait_s;
	while (closed < n && (ms = (int)(deadline - time(NULL)) * 1000) > 0) {
		if (poll(pfd, (nfds_t)n, ms) <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			if (read(pfd[i].fd, junk, sizeof(junk)) <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				closed++;
			}
		}
	}
	printf("idle %d closed %d\n", n, closed);
	for (i = 0; i < n; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	free(pfd);
	free(b.p);
	free(prm.p);
	return 0;
}

/* The status of the answer in b (complete records from its start), or 0
 * while its FCGI_END_REQUEST has not come. */
static int
answer_status(const struct fcgibuf *b)
{
	size_t off = 0, clen;
	const unsigned char *h;
	int status = 0;

	while (off + 8 <= b->len) {
		h = b->p + off;
		clen = (size_t)h[4] << 8 | h[5];
		if (off + 8 + clen + h[6] > b->len)
			return 0;
		if (h[1] == FCGI_STDOUT && status == 0 && clen > 8 &&
		    memcmp(h + 8, "Status: ", 8) == 0)
			status = atoi((const char *)h + 16);
		if (h[1] == FCGI_END_REQUEST)
			return status != 0 ? status : 200;
		off += 8 + clen + h[6];
	}
	return 0;
}

static int
concurrent(int n, const struct fcgibuf *req, int drop_ms)
{
	struct pollfd *pfd;
	struct fcgibuf *in;
	int *st, counts[600] = { 0 }, i, done = 0, ms;
	unsigned char buf[65536];
	time_t deadline;
	ssize_t r;

	if ((pfd = calloc((size_t)n, sizeof(*pfd))) == NULL ||
	    (in = calloc((size_t)n, sizeof(*in))) == NULL ||
	    (st = calloc((size_t)n, sizeof(*st))) == NULL)
		die("calloc");
	for (i = 0; i < n; i++) {
		pfd[i].fd = connect_to(sockname);
		pfd[i].events = POLLIN;
		if (send_all(pfd[i].fd, req) == -1)
			fprintf(stderr, "fcgiclient: write: %s\n",
			    strerror(errno));
	}
	printf("sent %d\n", n);
	fflush(stdout);
	if (drop_ms > 0) {
		usleep((useconds_t)drop_ms * 1000);
		for (i = 0; i < n; i++)
			close(pfd[i].fd);
		printf("dropped %d\n", n);
		goto done;
	}
	deadline = time(NULL) + wait_s;
	while (done < n && (ms = (int)(deadline - time(NULL)) * 1000) > 0) {
		if (poll(pfd, (nfds_t)n, ms) <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r > 0)
				fcgibuf_add(&in[i], buf, (size_t)r);
			if (r > 0 && (st[i] = answer_status(&in[i])) == 0)
				continue;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			done++;
			if (st[i] > 0 && st[i] < 600)
				counts[st[i]]++;
		}
	}
	for (i = 0, done = 0; i < n; i++)
		done += st[i] > 0;
	printf("answered %d of %d\n", done, n);
	for (i = 0; i < 600; i++)
		if (counts[i] > 0)
			printf("status %d: %d\n", i, counts[i]);
	for (i = 0; i < n; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
done:
	for (i = 0; i < n; i++)
		free(in[i].p);
	free(in);
	free(st);
	free(pfd);
	return 0;
}

int
main(int argc, char **argv)
{
	struct fcgibuf req = { 0 }, prm = { 0 };
	const char *method = "POST", *uri = "/in", *cl = NULL;
	char **extra = NULL, name[64], *eq, *big;
	unsigned char *body = (unsigned char *)"";
	unsigned char begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t body_len = 0, send_len = (size_t)-1, nextra = 0, k;
	int ch, fd, i, gone = 0, noend = 0, nheaders = 0, bigsize = 0;
	int keep = 1, idle = 0, partial = 0, id, rc = 0, slow = 0;
	int nconc = 0, drop_ms = 0, pipeline = 0, hold = 0;
	size_t half;
	char lenbuf[32], *optarg_body = NULL;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "B:cC:d:D:eH:Ii:k:l:m:n:p:PQs:S:u:w:X:")) != -1) {
		switch (ch) {
		case 'B': bigsize = atoi(optarg); break;
		case 'c': gone = 1; break;
		case 'C': nconc = atoi(optarg); break;
		case 'd':
			body = (unsigned char *)optarg;
			optarg_body = optarg;
			body_len = strlen(optarg);
			break;
		case 'D':
			body_len = (size_t)atol(optarg);
			if ((body = malloc(body_len + 1)) == NULL)
				die("malloc");
			memset(body, 'x', body_len);
			break;
		case 'e': noend = 1; break;
		case 'H': nheaders = atoi(optarg); break;
		case 'i': idle = atoi(optarg); break;
		case 'k': keep = atoi(optarg); break;
		case 'l': cl = optarg; break;
		case 'm': method = optarg; break;
		case 'n': send_len = (size_t)atol(optarg); break;
		case 'p':
			extra = realloc(extra, (nextra + 1) * sizeof(*extra));
			if (extra == NULL)
				die("realloc");
			extra[nextra++] = optarg;
			break;
		case 'P': partial = 1; break;
		case 'Q': pipeline = 1; break;
		case 'I': hold = 1; break;
		case 's': sockname = optarg; break;
		case 'S': slow = atoi(optarg); break;
		case 'u': uri = optarg; break;
		case 'w': wait_s = atoi(optarg); break;
		case 'X': drop_ms = atoi(optarg); break;
		default:
			fprintf(stderr, "fcgiclient: see the comment at the "
			    "top of tests/tools/fcgiclient.c\n");
			return 2;
		}
	}
	if (sockname == NULL) {
		fprintf(stderr, "fcgiclient: -s is required\n");
		return 2;
	}
	if (idle > 0)
		return idle_conns(idle, partial);

	fcgibuf_param(&prm, "REQUEST_METHOD", method);
	fcgibuf_param(&prm, "REQUEST_URI", uri);
	fcgibuf_param(&prm, "QUERY_STRING",
	    strchr(uri, '?') ? strchr(uri, '?') + 1 : "");
	fcgibuf_param(&prm, "REMOTE_ADDR", "127.0.0.1");
	fcgibuf_param(&prm, "SERVER_PROTOCOL", "HTTP/1.1");
	if (cl == NULL) {
		snprintf(lenbuf, sizeof(lenbuf), "%zu", body_len);
		fcgibuf_param(&prm, "CONTENT_LENGTH", lenbuf);
	} else if (strcmp(cl, "none") != 0)
		fcgibuf_param(&prm, "CONTENT_LENGTH", cl);
	for (k = 0; k < nextra; k++) {
		if ((eq = strchr(extra[k], '=')) == NULL) {
			fprintf(stderr, "fcgiclient: -p NAME=VALUE\n");
			return 2;
		}
		*eq = '\0';
		fcgibuf_param(&prm, extra[k], eq + 1);
		*eq = '=';
	}
	for (i = 0; i < nheaders; i++) {
		snprintf(name, sizeof(name), "HTTP_X_H%d", i);
		fcgibuf_param(&prm, name, "v");
	}
	if (bigsize > 0) {
		if ((big = malloc((size_t)bigsize + 1)) == NULL)
			die("malloc");
		memset(big, 'a', (size_t)bigsize);
		big[bigsize] = '\0';
		fcgibuf_param(&prm, "HTTP_X_BIG", big);
		free(big);
	}
	if (send_len > body_len)
		send_len = body_len;
	if (nconc > 0) {
		fcgibuf_record(&req, FCGI_BEGIN_REQUEST, 1, begin, 8);
		fcgibuf_stream(&req, FCGI_PARAMS, 1, prm.p, prm.len, 65535, 1);
		fcgibuf_stream(&req, FCGI_STDIN, 1, body, send_len, 65535, 1);
		rc = concurrent(nconc, &req, drop_ms);
		goto out;
	}

	fd = connect_to(sockname);
	if (pipeline) {
		/* Every request first, the last one not kept; then the
		 * answers, in order. */
		for (id = 1; id <= keep; id++) {
			begin[2] = id < keep ? FCGI_KEEP_CONN : 0;
			fcgibuf_record(&req, FCGI_BEGIN_REQUEST, id, begin, 8);
			fcgibuf_stream(&req, FCGI_PARAMS, id, prm.p, prm.len,
			    65535, 1);
			fcgibuf_stream(&req, FCGI_STDIN, id, body, send_len,
			    65535, 1);
		}
		if (send_all(fd, &req) == -1)
			fprintf(stderr, "fcgiclient: write: %s\n",
			    strerror(errno));
		for (id = 1; id <= keep; id++)
			if (read_answer(fd, id) == -1)
				break;
		close(fd);
		goto out;
	}
	for (id = 1; id <= keep; id++) {
		req.len = 0;
		begin[2] = keep > 1 || hold ? FCGI_KEEP_CONN : 0;
		fcgibuf_record(&req, FCGI_BEGIN_REQUEST, id, begin, 8);
		fcgibuf_stream(&req, FCGI_PARAMS, id, prm.p, prm.len, 65535, 1);
		half = slow > 0 ? send_len / 2 : 0;
		if (slow > 0) {
			fcgibuf_stream(&req, FCGI_STDIN, id, body, half,
			    65535, 0);
			if (send_all(fd, &req) == -1)
				fprintf(stderr, "fcgiclient: write: %s\n",
				    strerror(errno));
			req.len = 0;
			usleep((useconds_t)slow * 1000);
		}
		fcgibuf_stream(&req, FCGI_STDIN, id, body + half,
		    send_len - half, 65535, !gone && !noend);
		if (send_all(fd, &req) == -1)
			fprintf(stderr, "fcgiclient: write: %s\n",
			    strerror(errno));
		if (gone) {
			/* The client goes away mid-body. */
			close(fd);
			printf("gone\n");
			break;
		}
		if (read_answer(fd, id) == -1) {
			rc = 0;
			hold = 0;
			break;
		}
	}
	if (hold)
		hold_idle(fd);
	close(fd);
out:
	free(req.p);
	free(prm.p);
	free(extra);
	if (body_len > 0 && body != (unsigned char *)optarg_body)
		free(body);
	return rc;
}
