/*
 * adversary: a raw FastCGI client that sends what no web server would, to
 * a responder's socket: lengths that overflow, truncated and mis-versioned
 * records, unknown types, wrong request ids, FCGI_ABORT_REQUEST in the
 * middle of stdin, NUL bytes inside params, floods of records, roles other
 * than RESPONDER, a second BEGIN_REQUEST in flight, byte-by-byte senders.
 *
 *   adversary -s PATH [-w SECONDS] ATTACK
 *   adversary -l                   (the attacks, one per line)
 *
 * It prints what came back, one event a line: "status NNN" (an answer on
 * stdout, at its FCGI_END_REQUEST), "end ID PROTOCOL_STATUS", "unknown-type
 * T" (the first; "unknown-type xN" at the end counts them), "cant-mpx N"
 * (FCGI_CANT_MPX_CONN answers), "values NAME=VALUE...", then "closed"
 * when the responder closed the
 * connection or "timeout" when it said nothing more within -w seconds.
 * Every request an attack sends carries HTTP_X_ATTACK=<attack>, so a test
 * can count the jobs of each attack in the database.  Exit status 0 unless
 * the tool itself failed (2: unknown attack).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
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
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_STDERR		7
#define FCGI_DATA		8
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11

#define RESPONDER	1
#define AUTHORIZER	2
#define FILTER		3
#define KEEP_CONN	1


static const char	*sockname;
static const char	*outfile;
static const char	*attack;
static int		 wait_s = 6;
/* Read while sending, not reported yet. */
static struct fcgibuf	 early;
static size_t		 early_off;

static void
die(const char *msg)
{
	perror(msg);
	exit(1);
}

static void
add_byte(struct fcgibuf *b, unsigned c)
{
	unsigned char u = (unsigned char)c;

	fcgibuf_add(b, &u, 1);
}

/* The params of a well-formed POST of clen bytes to /in, as nginx sends. */
static void
post_params(struct fcgibuf *p, size_t clen)
{
	char n[32];

	fcgibuf_param(p, "REQUEST_METHOD", "POST");
	fcgibuf_param(p, "REQUEST_URI", "/in");
	fcgibuf_param(p, "QUERY_STRING", "");
	fcgibuf_param(p, "REMOTE_ADDR", "127.0.0.1");
	fcgibuf_param(p, "SERVER_PROTOCOL", "HTTP/1.1");
	fcgibuf_param(p, "CONTENT_TYPE", "text/plain");
	snprintf(n, sizeof(n), "%zu", clen);
	fcgibuf_param(p, "CONTENT_LENGTH", n);
	fcgibuf_param(p, "HTTP_X_ATTACK", attack);
}

/* A whole well-formed request: BEGIN, params, body, ends. */
static void
request(struct fcgibuf *b, int id, int role, int flags, const char *body)
{
	struct fcgibuf p = { 0 };

	fcgibuf_begin(b, id, role, flags);
	post_params(&p, strlen(body));
	fcgibuf_stream(b, FCGI_PARAMS, id, p.p, p.len, 65535, 1);
	fcgibuf_stream(b, FCGI_STDIN, id, body, strlen(body), 65535, 1);
	free(p.p);
}

static int
connect_sock(void)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockname);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(sockname);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		die("fcntl");
	return fd;
}

/*
 * Write b (delay_ms > 0: one byte at a time, that far apart); 0, or -1
 * when the responder closed on us (not an error of the tool).  What the
 * responder answers meanwhile is kept for report(), so a flood of records
 * that each get an answer cannot stall both sides on full buffers.
 */
static int
send_buf(int fd, const struct fcgibuf *b, int delay_ms)
{
	struct pollfd pfd;
	unsigned char in[65536];
	size_t off = 0, step;
	ssize_t n;

	while (off < b->len) {
		pfd.fd = fd;
		pfd.events = POLLIN | POLLOUT;
		if (poll(&pfd, 1, wait_s * 1000) <= 0)
			return -1;
		if (pfd.revents & POLLIN) {
			if ((n = read(fd, in, sizeof(in))) > 0)
				fcgibuf_add(&early, in, (size_t)n);
			else if (n == 0)
				return -1;
		}
		if (!(pfd.revents & POLLOUT)) {
			if (pfd.revents & (POLLERR | POLLHUP))
				return -1;
			continue;
		}
		step = delay_ms > 0 ? 1 : b->len - off;
		if (step > 65536)
			step = 65536;
		n = write(fd, b->p + off, step);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		off += (size_t)n;
		if (delay_ms > 0)
			usleep((useconds_t)delay_ms * 1000);
	}
	return 0;
}

/* Read exactly n bytes before the deadline (what send_buf kept first):
 * 1, 0 closed, -1 timeout. */
static int
read_full(int fd, unsigned char *p, size_t n, time_t deadline)
{
	struct pollfd pfd;
	ssize_t r;
	size_t k;
	int ms;

	if (early_off < early.len) {
		k = early.len - early_off < n ? early.len - early_off : n;
		memcpy(p, early.p + early_off, k);
		early_off += k;
		p += k;
		n -= k;
	}
	while (n > 0) {
		ms = (int)(deadline - time(NULL)) * 1000;
		if (ms <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) <= 0)
			return -1;
		r = read(fd, p, n);
		if (r == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return 0;
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

/* Print every record that comes back until the responder closes or goes
 * quiet for wait_s seconds. */
static void
report(int fd)
{
	unsigned char h[8], c[65536 + 256];
	struct fcgibuf out = { 0 };
	size_t clen, plen, i, nl, vl;
	time_t deadline = time(NULL) + wait_s;
	int r, type, id, cant_mpx = 0, unknown = 0;
	const char *p;

	for (;;) {
		if ((r = read_full(fd, h, 8, deadline)) != 1)
			break;
		type = h[1];
		id = h[2] << 8 | h[3];
		clen = (size_t)h[4] << 8 | h[5];
		plen = h[6];
		if (clen + plen > 0 &&
		    (r = read_full(fd, c, clen + plen, deadline)) != 1)
			break;
		if (h[0] != 1)
			printf("bad-version %d\n", h[0]);
		switch (type) {
		case FCGI_STDOUT:
			fcgibuf_add(&out, c, clen);
			break;
		case FCGI_STDERR:
			break;
		case FCGI_END_REQUEST:
			if (out.len > 0) {
				fcgibuf_add(&out, "", 1);
				p = (const char *)out.p;
				printf("status %d\n", strncmp(p, "Status: ", 8) == 0 ?
				    atoi(p + 8) : 200);
				out.len = 0;
			}
			if (clen >= 5 && c[4] == 1)
				cant_mpx++;	/* FCGI_CANT_MPX_CONN */
			else
				printf("end %d %d\n", id, clen >= 5 ? c[4] : -1);
			break;
		case FCGI_UNKNOWN_TYPE:
			if (unknown++ == 0)
				printf("unknown-type %d\n", clen >= 1 ? c[0] : -1);
			break;
		case FCGI_GET_VALUES_RESULT:
			printf("values");
			for (i = 0; i + 2 <= clen;) {
				nl = c[i];
				vl = c[i + 1];
				if (nl >= 128 || vl >= 128 || i + 2 + nl + vl > clen)
					break;
				printf(" %.*s=%.*s", (int)nl, c + i + 2, (int)vl,
				    c + i + 2 + nl);
				i += 2 + nl + vl;
			}
			printf("\n");
			break;
		default:
			printf("record %d\n", type);
			break;
		}
		fflush(stdout);
	}
	if (cant_mpx > 0)
		printf("cant-mpx %d\n", cant_mpx);
	if (unknown > 1)
		printf("unknown-type x%d\n", unknown);
	printf("%s\n", r == 0 ? "closed" : "timeout");
	free(out.p);
}

/* Send b (with delay_ms between bytes), optionally shut our side, print
 * what comes back. */
static void
run(const struct fcgibuf *b, int delay_ms, int shut)
{
	int fd = connect_sock();

	if (send_buf(fd, b, delay_ms) == -1)
		fprintf(stderr, "adversary: write: %s\n", strerror(errno));
	if (shut)
		shutdown(fd, SHUT_WR);
	report(fd);
	close(fd);
}

/* A request whose params carry one more pair with the given raw length
 * bytes and a few bytes after them, in one small record. */
static void
bad_lengths(struct fcgibuf *b, const unsigned char *lens, size_t n)
{
	struct fcgibuf p = { 0 };

	fcgibuf_begin(b, 1, RESPONDER, 0);
	post_params(&p, 5);
	fcgibuf_stream(b, FCGI_PARAMS, 1, p.p, p.len, 65535, 0);
	p.len = 0;
	fcgibuf_add(&p, lens, n);
	fcgibuf_add(&p, "abcdefgh", 8);
	fcgibuf_record(b, FCGI_PARAMS, 1, p.p, p.len);
	fcgibuf_record(b, FCGI_PARAMS, 1, NULL, 0);
	fcgibuf_stream(b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	free(p.p);
}

/* BEGIN + params of a POST of clen bytes, then part of its body. */
static void
half_body(struct fcgibuf *b, size_t clen, size_t sent)
{
	struct fcgibuf p = { 0 };
	char *body;

	fcgibuf_begin(b, 1, RESPONDER, 0);
	post_params(&p, clen);
	fcgibuf_stream(b, FCGI_PARAMS, 1, p.p, p.len, 65535, 1);
	if ((body = malloc(sent + 1)) == NULL)
		die("malloc");
	memset(body, 'a', sent);
	fcgibuf_stream(b, FCGI_STDIN, 1, body, sent, 65535, 0);
	free(body);
	free(p.p);
}

/* A request with params given as raw pairs (NULs allowed) and a body. */
static void
raw_request(struct fcgibuf *b, const struct fcgibuf *pairs, const char *body,
    size_t blen)
{
	fcgibuf_begin(b, 1, RESPONDER, 0);
	fcgibuf_stream(b, FCGI_PARAMS, 1, pairs->p, pairs->len, 65535, 1);
	fcgibuf_stream(b, FCGI_STDIN, 1, body, blen, 65535, 1);
}

#define NUL_PAIR(b, n, v) fcgibuf_pair(b, n, sizeof(n) - 1, v, sizeof(v) - 1)

static const char *attacks[] = {
	"nvlen-name-7fffffff", "nvlen-value-7fffffff", "nvlen-both-7fffffff",
	"nvlen-sum-negative", "nvlen-half-each", "nvlen-2g-alloc",
	"nvlen-past-record", "nvlen-nested-past-stream",
	"nvlen-cut-4byte", "truncated-header-close", "truncated-header-hold",
	"truncated-params-close", "truncated-stdin-close",
	"truncated-stdin-hold", "version-0-begin", "version-2-begin",
	"version-255-params", "version-2-mid-params", "version-2-stdin", "unknown-type-mgmt",
	"unknown-type-mgmt-then-request", "unknown-type-flood",
	"unknown-type-in-request",
	"get-values", "get-values-overflow", "get-values-nvlen",
	"begin-id-0", "begin-short", "begin-only-close", "params-other-id",
	"stdin-other-id", "abort-mid-stdin", "abort-mid-stdin-then-rest",
	"abort-after-params", "abort-in-params", "nul-method-get-post",
	"nul-length", "nul-in-name", "nul-in-uri", "nul-method-post-get",
	"many-empty-pairs", "many-empty-params-records",
	"params-1-byte-records", "stdin-after-terminator", "role-authorizer",
	"role-filter", "role-unknown", "second-begin-other-id",
	"second-begin-same-id", "skip-flag-body-loss", "begin-flood", "padding-255",
	"stdin-oversized-record", "slowloris-valid", "slowloris-stall",
	"slowloris-hold", NULL
};

static int
is(const char *name)
{
	return strcmp(attack, name) == 0;
}

int
main(int argc, char **argv)
{
	struct fcgibuf b = { 0 }, p = { 0 };
	unsigned char lens[8];
	char *big;
	int ch, i, delay = 0, shut = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "lo:s:w:")) != -1) {
		switch (ch) {
		case 'l':
			for (i = 0; attacks[i] != NULL; i++)
				printf("%s\n", attacks[i]);
			return 0;
		case 'o': outfile = optarg; break;
		case 's': sockname = optarg; break;
		case 'w': wait_s = atoi(optarg); break;
		default:
			goto usage;
		}
	}
	if ((sockname == NULL && outfile == NULL) || optind + 1 != argc)
		goto usage;
	attack = argv[optind];

	/* Lengths (CVE-2025-23016 style): 4-byte lengths near 2^31. */
	if (is("nvlen-name-7fffffff")) {
		memcpy(lens, "\xff\xff\xff\xff\x01", 5);
		bad_lengths(&b, lens, 5);
	} else if (is("nvlen-value-7fffffff")) {
		memcpy(lens, "\x01\xff\xff\xff\xff", 5);
		bad_lengths(&b, lens, 5);
	} else if (is("nvlen-both-7fffffff")) {
		/* nameLen + valueLen + 2 wraps a 32-bit int to 0. */
		memcpy(lens, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
		bad_lengths(&b, lens, 8);
	} else if (is("nvlen-sum-negative")) {
		/* 0x7ffffff0 + 0x0e + 2 = 0x80000000: negative as an int. */
		memcpy(lens, "\xff\xff\xff\xf0\x0e", 5);
		bad_lengths(&b, lens, 5);
	} else if (is("nvlen-half-each")) {
		/* 0x40000000 + 0x40000000 + 2: negative as an int too. */
		memcpy(lens, "\xc0\x00\x00\x00\xc0\x00\x00\x00", 8);
		bad_lengths(&b, lens, 8);
	} else if (is("nvlen-2g-alloc")) {
		/* 0x7ffffff0 + 0x0d + 2 = 0x7fffffff: no overflow, but
		 * 2 GiB asked of malloc for 8 bytes sent. */
		memcpy(lens, "\xff\xff\xff\xf0\x0d", 5);
		bad_lengths(&b, lens, 5);
	} else if (is("nvlen-past-record")) {
		/* 100 + 100 bytes announced in a record of 10. */
		memcpy(lens, "\x64\x64", 2);
		bad_lengths(&b, lens, 2);
	} else if (is("nvlen-nested-past-stream")) {
		/* Pairs that each fit, the last running past the stream. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		post_params(&p, 5);
		fcgibuf_param(&p, "HTTP_X_A", "1");
		fcgibuf_nvlen(&p, 5);
		fcgibuf_nvlen(&p, 300);
		fcgibuf_add(&p, "HTTP_", 5);
		fcgibuf_add(&p, "xxxxxxxxxx", 10);
		fcgibuf_record(&b, FCGI_PARAMS, 1, p.p, p.len);
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("nvlen-cut-4byte")) {
		/* A 4-byte length whose last 3 bytes never come. */
		memcpy(lens, "\x80", 1);
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		post_params(&p, 5);
		fcgibuf_add(&p, lens, 1);
		fcgibuf_record(&b, FCGI_PARAMS, 1, p.p, p.len);
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);

	/* Framing. */
	} else if (is("truncated-header-close") ||
	    is("truncated-header-hold")) {
		fcgibuf_add(&b, "\x01\x01\x00", 3);
		shut = is("truncated-header-close");
	} else if (is("truncated-params-close")) {
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		fcgibuf_header(&b, 1, FCGI_PARAMS, 1, 100, 0);
		fcgibuf_add(&b, "\x0e\x04REQUEST_", 10);
		shut = 1;
	} else if (is("truncated-stdin-close") || is("truncated-stdin-hold")) {
		half_body(&b, 100, 0);
		fcgibuf_header(&b, 1, FCGI_STDIN, 1, 100, 0);
		fcgibuf_add(&b, "0123456789012345678901234567890123456789", 40);
		shut = is("truncated-stdin-close");
	} else if (is("version-0-begin") || is("version-2-begin")) {
		request(&b, 1, RESPONDER, 0, "hello");
		b.p[0] = is("version-0-begin") ? 0 : 2;
	} else if (is("version-255-params")) {
		request(&b, 1, RESPONDER, 0, "hello");
		b.p[16] = 255;		/* the first PARAMS record */
	} else if (is("version-2-mid-params")) {
		/* Method and URI arrive; the rest is in a version-2 record. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		fcgibuf_param(&p, "REQUEST_METHOD", "POST");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		fcgibuf_record(&b, FCGI_PARAMS, 1, p.p, p.len);
		p.len = 0;
		fcgibuf_param(&p, "CONTENT_LENGTH", "5");
		fcgibuf_header(&b, 2, FCGI_PARAMS, 1, p.len, 0);
		fcgibuf_add(&b, p.p, p.len);
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("version-2-stdin")) {
		half_body(&b, 10, 5);
		fcgibuf_header(&b, 2, FCGI_STDIN, 1, 5, 0);
		fcgibuf_add(&b, "world", 5);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);
	} else if (is("unknown-type-mgmt")) {
		fcgibuf_record(&b, 42, 0, "\0\0\0\0\0\0\0\0", 8);
		shut = 1;
	} else if (is("unknown-type-mgmt-then-request")) {
		/* Legal: answered FCGI_UNKNOWN_TYPE, then the request. */
		fcgibuf_record(&b, 42, 0, "\0\0\0\0\0\0\0\0", 8);
		request(&b, 1, RESPONDER, 0, "after-mgmt");
	} else if (is("unknown-type-flood")) {
		/* 100,000 empty management records of an unknown type on one
		 * connection, each answered FCGI_UNKNOWN_TYPE. */
		for (i = 0; i < 100000; i++)
			fcgibuf_record(&b, 42, 0, NULL, 0);
		shut = 1;
	} else if (is("unknown-type-in-request")) {
		half_body(&b, 10, 5);
		fcgibuf_record(&b, 200, 1, "world", 5);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);
	} else if (is("get-values")) {
		fcgibuf_param(&p, "FCGI_MAX_CONNS", "");
		fcgibuf_param(&p, "FCGI_MAX_REQS", "");
		fcgibuf_param(&p, "FCGI_MPXS_CONNS", "");
		fcgibuf_record(&b, FCGI_GET_VALUES, 0, p.p, p.len);
		shut = 1;
	} else if (is("get-values-overflow")) {
		/* libfcgi answers into a 64-byte buffer: 40 names of 15. */
		for (i = 0; i < 40; i++)
			fcgibuf_param(&p, "FCGI_MPXS_CONNS", "");
		fcgibuf_record(&b, FCGI_GET_VALUES, 0, p.p, p.len);
		shut = 1;
	} else if (is("get-values-nvlen")) {
		fcgibuf_add(&p, "\xff\xff\xff\xff\xff\xff\xff\xff"
		    "abcdefgh", 16);
		fcgibuf_record(&b, FCGI_GET_VALUES, 0, p.p, p.len);
		shut = 1;
	} else if (is("begin-id-0")) {
		request(&b, 0, RESPONDER, 0, "hello");
	} else if (is("begin-short")) {
		fcgibuf_header(&b, 1, FCGI_BEGIN_REQUEST, 1, 2, 0);
		fcgibuf_add(&b, "\x00\x01", 2);
		post_params(&p, 5);
		fcgibuf_stream(&b, FCGI_PARAMS, 1, p.p, p.len, 65535, 1);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("begin-only-close")) {
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		shut = 1;
	} else if (is("params-other-id")) {
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		post_params(&p, 5);
		fcgibuf_stream(&b, FCGI_PARAMS, 2, p.p, p.len, 65535, 1);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("stdin-other-id")) {
		half_body(&b, 5, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 2, "hello", 5, 65535, 1);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);

	/* FCGI_ABORT_REQUEST: nothing of an aborted request is stored. */
	} else if (is("abort-mid-stdin")) {
		half_body(&b, 1000, 500);
		fcgibuf_record(&b, FCGI_ABORT_REQUEST, 1, NULL, 0);
	} else if (is("abort-mid-stdin-then-rest")) {
		half_body(&b, 1000, 500);
		fcgibuf_record(&b, FCGI_ABORT_REQUEST, 1, NULL, 0);
		if ((big = malloc(500)) == NULL)
			die("malloc");
		memset(big, 'b', 500);
		fcgibuf_stream(&b, FCGI_STDIN, 1, big, 500, 65535, 1);
		free(big);
	} else if (is("abort-after-params")) {
		half_body(&b, 5, 0);
		fcgibuf_record(&b, FCGI_ABORT_REQUEST, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("abort-in-params")) {
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		post_params(&p, 5);
		fcgibuf_record(&b, FCGI_PARAMS, 1, p.p, p.len / 2);
		fcgibuf_record(&b, FCGI_ABORT_REQUEST, 1, NULL, 0);
		fcgibuf_record(&b, FCGI_PARAMS, 1, p.p + p.len / 2,
		    p.len - p.len / 2);
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);

	/* NUL bytes inside names and values: libfcgi hands C strings over,
	 * so only the part before the NUL is seen. */
	} else if (is("nul-method-get-post")) {
		NUL_PAIR(&p, "REQUEST_METHOD", "GET\0POST");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		fcgibuf_param(&p, "CONTENT_LENGTH", "5");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		raw_request(&b, &p, "hello", 5);
	} else if (is("nul-length")) {
		/* Seen as 5; 500 bytes follow. */
		fcgibuf_param(&p, "REQUEST_METHOD", "POST");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		NUL_PAIR(&p, "CONTENT_LENGTH", "5\0" "00");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		if ((big = malloc(500)) == NULL)
			die("malloc");
		memset(big, 'n', 500);
		raw_request(&b, &p, big, 500);
		free(big);
	} else if (is("nul-in-name")) {
		/* "REQUEST_METHOD\0X=POST": no REQUEST_METHOD at all. */
		NUL_PAIR(&p, "REQUEST_METHOD\0X", "POST");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		fcgibuf_param(&p, "CONTENT_LENGTH", "5");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		raw_request(&b, &p, "hello", 5);
	} else if (is("nul-in-uri")) {
		fcgibuf_param(&p, "REQUEST_METHOD", "GET");
		NUL_PAIR(&p, "REQUEST_URI", "/jobs/\0AAAAAAAAAAAAAAAAAAAAAA");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		raw_request(&b, &p, "", 0);
	} else if (is("nul-method-post-get")) {
		/* Seen as a whole, well-formed POST: see adversary.sh. */
		NUL_PAIR(&p, "REQUEST_METHOD", "POST\0GET");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		NUL_PAIR(&p, "CONTENT_LENGTH", "5\0" "000");
		NUL_PAIR(&p, "HTTP_X_ATTACK", "nul-method-post-get\0smuggled");
		raw_request(&b, &p, "hello", 5);

	/* Floods. */
	} else if (is("many-empty-pairs")) {
		/* 100,000 pairs "" = "": 100,000 params "=". */
		post_params(&p, 5);
		for (i = 0; i < 100000; i++)
			fcgibuf_add(&p, "\0\0", 2);
		raw_request(&b, &p, "hello", 5);
	} else if (is("many-empty-params-records")) {
		/* The first ends the params; the other 20,000 are records of
		 * the wrong type while stdin is read. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		for (i = 0; i < 20000; i++)
			fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "hello", 5, 65535, 1);
	} else if (is("params-1-byte-records")) {
		/* Legal: the params split into 1-byte records. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		post_params(&p, 10);
		fcgibuf_stream(&b, FCGI_PARAMS, 1, p.p, p.len, 1, 1);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "one-by-one", 10, 1, 1);
	} else if (is("stdin-after-terminator")) {
		/* A whole request (kept connection), then stdin records of
		 * the same id after its end. */
		request(&b, 1, RESPONDER, KEEP_CONN, "before");
		fcgibuf_stream(&b, FCGI_STDIN, 1, "smuggled", 8, 65535, 1);
		request(&b, 2, RESPONDER, 0, "smuggled2");

	/* Roles and multiplexing. */
	} else if (is("role-authorizer")) {
		request(&b, 1, AUTHORIZER, 0, "authz");
	} else if (is("role-filter")) {
		request(&b, 1, FILTER, 0, "filter");
		fcgibuf_record(&b, FCGI_DATA, 1, "data", 4);
		fcgibuf_record(&b, FCGI_DATA, 1, NULL, 0);
	} else if (is("role-unknown")) {
		request(&b, 1, 99, 0, "hello");
	} else if (is("second-begin-other-id") ||
	    is("second-begin-same-id")) {
		/* Legal for the first request: libfcgi answers the second
		 * FCGI_CANT_MPX_CONN and skips its records. */
		half_body(&b, 10, 5);
		request(&b, is("second-begin-other-id") ? 2 : 1, RESPONDER, 0,
		    "other");
		fcgibuf_stream(&b, FCGI_STDIN, 1, "bbbbb", 5, 65535, 1);
	} else if (is("skip-flag-body-loss")) {
		/* No CONTENT_LENGTH: the body is the stream.  An empty record
		 * of another request id in the middle must not cost the next
		 * record of ours its bytes. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		fcgibuf_param(&p, "REQUEST_METHOD", "POST");
		fcgibuf_param(&p, "REQUEST_URI", "/in");
		fcgibuf_param(&p, "HTTP_X_ATTACK", attack);
		fcgibuf_stream(&b, FCGI_PARAMS, 1, p.p, p.len, 65535, 1);
		fcgibuf_record(&b, FCGI_STDIN, 1, "aaaaa", 5);
		fcgibuf_record(&b, FCGI_STDIN, 2, NULL, 0);
		fcgibuf_record(&b, FCGI_STDIN, 1, "bbbbb", 5);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);
	} else if (is("begin-flood")) {
		/* 30,000 BEGIN_REQUESTs in flight, each answered
		 * FCGI_CANT_MPX_CONN, and we read nothing for a while. */
		half_body(&b, 10, 5);
		for (i = 0; i < 30000; i++)
			fcgibuf_begin(&b, 2 + i % 60000, RESPONDER, 0);
		fcgibuf_stream(&b, FCGI_STDIN, 1, "bbbbb", 5, 65535, 1);
	} else if (is("padding-255")) {
		/* Legal: every record padded with 255 bytes. */
		fcgibuf_begin(&b, 1, RESPONDER, 0);
		b.p[6] = 255;
		for (i = 0; i < 255; i++)
			add_byte(&b, 0xee);
		post_params(&p, 6);
		fcgibuf_header(&b, 1, FCGI_PARAMS, 1, p.len, 255);
		fcgibuf_add(&b, p.p, p.len);
		for (i = 0; i < 255; i++)
			add_byte(&b, 0xee);
		fcgibuf_record(&b, FCGI_PARAMS, 1, NULL, 0);
		fcgibuf_header(&b, 1, FCGI_STDIN, 1, 6, 255);
		fcgibuf_add(&b, "padded", 6);
		for (i = 0; i < 255; i++)
			add_byte(&b, 0xee);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);
	} else if (is("stdin-oversized-record")) {
		/* One 65535-byte stdin record against CONTENT_LENGTH 5. */
		half_body(&b, 5, 65535);
		fcgibuf_record(&b, FCGI_STDIN, 1, NULL, 0);

	/* Slow senders. */
	} else if (is("slowloris-valid")) {
		/* Legal, one byte every 5 ms: about 1.7 s. */
		request(&b, 1, RESPONDER, 0, "slow");
		delay = 5;
	} else if (is("slowloris-stall")) {
		/* Half a request byte by byte, then nothing. */
		half_body(&b, 100, 10);
		b.len /= 2;
		delay = 5;
	} else if (is("slowloris-hold")) {
		/* A request at one byte every 1.5 s: each byte inside an I/O
		 * timeout of 2 s (run it with -T 2); -w bounds the wait. */
		half_body(&b, 100, 50);
		delay = 1500;
	} else {
		fprintf(stderr, "adversary: unknown attack %s\n", attack);
		return 2;
	}
	if (outfile != NULL) {
		/* The bytes, not the attack: seeds for tests/fuzz/fuzz_wire. */
		FILE *f = fopen(outfile, "wb");

		if (f == NULL || fwrite(b.p, 1, b.len, f) != b.len ||
		    fclose(f) != 0)
			die(outfile);
	} else
		run(&b, delay, shut);
	free(b.p);
	free(p.p);
	return 0;
usage:
	fprintf(stderr, "usage: adversary -s PATH [-w SECONDS] ATTACK | "
	    "-o FILE ATTACK | -l\n");
	return 2;
}
