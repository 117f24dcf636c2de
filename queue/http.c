/*
 * http: delivering jobs to a URL with libcurl's multi interface (the
 * design is in http.h).
 *
 * curl tells, through its socket and timer callbacks, which sockets to
 * watch and when to wake it; the helper puts those sockets in its poll set
 * and calls back http_multi_ready() and http_multi_run(), which hand them
 * to curl_multi_socket_action().  A transfer that ends is marked done in
 * its struct http_xfer; the helper's next turn finds the slot that holds
 * it and moves the slot on (http_slot_collect).
 *
 * What the upstream gets: the queue's URL with the job's query string
 * (so one URL serves what the client asked, as a FastCGI app's
 * QUERY_STRING would), the job's method, body and Content-Type, its
 * stored headers but those of the hop it came on (http_headers), Host from
 * the URL, the length curl computes, and Fcgiq-Job-Id, Fcgiq-Queue,
 * Fcgiq-Attempt.  TLS is always verified: against tls_ca alone when the
 * queue names one, else against the system's store.  Redirects are not
 * followed, no proxy from the environment is used, only http and https.
 * The answer's body is kept up to max_result; past it the transfer is
 * aborted, so a 100 MB answer costs max_result bytes of memory.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "exec.h"
#include "http.h"
#include "slot.h"
#include "store.h"
#include "upstream.h"

struct http_sock {
	int	 fd;
	short	 events;
};

/* One upstream's "unreachable" log gate (upstream.h), by host:port. */
struct http_gate {
	char		 where[128];
	struct upstream_gate g;
};

struct http_multi {
	CURLM		 *m;
	struct http_sock *socks;
	size_t		  nsocks, cap;
	int64_t		  timer_at;	/* monotonic ms; 0: no timer */
	struct http_gate *gates;
	size_t		  ngates, gates_cap;
	struct http_easy *idle;		/* easy handles to reuse */
	size_t		  nidle, idle_cap;
	char		 *where_url;	/* the URL where_of last parsed */
	char		  where[128];	/* ... and its "host:port" */
};

/*
 * An easy handle kept for the next jobs, not reset: a new handle costs
 * allocations (its state, its buffers), and a reset one costs them again
 * for the options every job sets alike (each string option is a copy,
 * the protocol list a parse).  Those are set once (easy_fixed), for the
 * tls_ca they were set with; a job sets only what is its own.
 */
struct http_easy {
	CURL	*e;
	char	*ca;		/* the tls_ca its options name; NULL: none */
	int	 fixed;		/* easy_fixed has run */
};

#define HTTP_IDLE_MAX	64

/* One job's request in flight (or ended, until its slot is freed). */
struct http_xfer {
	struct http_multi *hm;
	CURL		 *easy;
	struct http_easy  he;		/* easy, with what it was set for */
	struct curl_slist *hdrs;
	int		  added;	/* in hm's multi handle */
	int		  done;		/* ended: answered, failed or aborted */
	int		  aborted;	/* by stop() or kill() */
	int		  too_big;	/* the body passed max_result */
	CURLcode	  result;
	long		  status;	/* the HTTP status, 0: none */
	char		  ctype[128];	/* the answer's media type */
	char		  retry_after[64];
	char		  where[128];	/* "host:port" for messages */
	char		 *url;		/* q's URL and the job's query */
	char		  errbuf[CURL_ERROR_SIZE];
	struct buf	  body;		/* bounded by max_result */
	uint64_t	  total;	/* body bytes received */
};

/* ------------------------------------------------------------- headers */

/* RFC 9110 tchar. */
static int
is_tchar(int c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
http_header_name(const char *key, char *buf, size_t len)
{
	size_t i, n;
	int cgi = strncmp(key, "HTTP_", 5) == 0, up = 1;

	if (cgi)
		key += 5;
	if ((n = strlen(key)) == 0 || n >= len)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if (!is_tchar(c))
			return -1;
		if (cgi) {
			/* CGI folded '-' to '_' and upper-cased the name. */
			if (c == '_')
				c = '-';
			c = (unsigned char)(up ? toupper(c) : tolower(c));
			up = c == '-';
		}
		buf[i] = (char)c;
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Headers of the hop the job came on (RFC 9110 7.6.1, plus the ones HTTP/1
 * practice adds), and those fcgiq sets itself: Host comes from the URL,
 * the length is the body's, Expect and Accept-Encoding belonged to the
 * original client (the answer comes to fcgiq, which keeps the body as the
 * result: asked without an encoding, it is the representation itself).
 * Proxy: httpoxy.
 */
static const char *const dropped[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
	"HTTP2-Settings", "Proxy", "Host", "Content-Length", "Content-Type",
	"Expect", "Accept-Encoding", NULL
};

int
http_header_dropped(const char *name)
{
	size_t i;

	for (i = 0; dropped[i] != NULL; i++)
		if (strcasecmp(name, dropped[i]) == 0)
			return 1;
	/* fcgiq's own: the client cannot choose them. */
	return strncasecmp(name, "Fcgiq-", 6) == 0;
}

/* 1 when the comma-separated list conn names name (the Connection
 * header's tokens are hop-by-hop too). */
static int
conn_names(const char *conn, const char *name)
{
	size_t nl = strlen(name);
	const char *p = conn, *e;

	while (conn != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (e = p; *e != '\0' && *e != ',' && *e != ' ' &&
		    *e != '\t'; e++)
			;
		if ((size_t)(e - p) == nl && strncasecmp(p, name, nl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* A value that can travel in a header line: no CR, LF or NUL. */
static int
value_ok(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
			return 0;
	return 1;
}

struct hlist {
	char	**v;
	size_t	  n, cap;
	int	  oom;
};

/* Add "name: value"; value NULL: "name:", which tells curl to send none
 * of its own; empty: "name;" (curl's way to send an empty value). */
static void
hl_add(struct hlist *l, const char *name, const char *value, size_t vlen)
{
	size_t nl = strlen(name);
	char *s;

	if (l->oom)
		return;
	if (array_grow(&l->v, &l->cap, l->n + 2, sizeof(*l->v), 16) == -1 ||
	    (s = malloc(nl + vlen + 3)) == NULL) {
		l->oom = 1;
		return;
	}
	memcpy(s, name, nl);
	if (value == NULL)		/* "Name:": curl, add none */
		memcpy(s + nl, ":", 2);
	else if (vlen == 0)
		memcpy(s + nl, ";", 2);
	else {
		memcpy(s + nl, ": ", 2);
		if (vlen > 0)
			memcpy(s + nl + 2, value, vlen);
		s[nl + 2 + vlen] = '\0';
	}
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

/* A stored value, a string or an array of strings (joined with ", "). */
static void
add_stored(struct hlist *l, const char *name, json_t *v)
{
	struct buf b;
	json_t *e;
	size_t i;

	if (json_is_string(v)) {
		if (value_ok(json_string_value(v), json_string_length(v)))
			hl_add(l, name, json_string_value(v),
			    json_string_length(v));
		return;
	}
	if (!json_is_array(v))
		return;
	buf_init(&b, 0);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) ||
		    !value_ok(json_string_value(e), json_string_length(e)))
			goto done;
		if ((i > 0 && buf_append(&b, ", ", 2) == -1) ||
		    buf_append(&b, json_string_value(e),
		    json_string_length(e)) == -1) {
			l->oom = 1;
			goto done;
		}
	}
	hl_add(l, name, b.len ? (const char *)b.data : "", b.len);
done:
	buf_free(&b);
}

char **
http_headers(const struct store_job *job)
{
	struct hlist l = { NULL, 0, 0, 0 };
	char name[256], num[32];
	const char *key, *conn = NULL;
	json_t *h = NULL, *v;

	if (job->content_type != NULL && *job->content_type != '\0' &&
	    value_ok(job->content_type, strlen(job->content_type)))
		hl_add(&l, "Content-Type", job->content_type,
		    strlen(job->content_type));
	else
		hl_add(&l, "Content-Type", NULL, 0);
	/* curl's own, which would make it wait for a 100 Continue. */
	hl_add(&l, "Expect", NULL, 0);

	if (job->headers != NULL &&
	    (h = json_loads(job->headers, JSON_ALLOW_NUL, NULL)) != NULL &&
	    json_is_object(h)) {
		json_object_foreach(h, key, v) {
			if (http_header_name(key, name, sizeof(name)) == 0 &&
			    strcasecmp(name, "Connection") == 0 &&
			    json_is_string(v))
				conn = json_string_value(v);
		}
		json_object_foreach(h, key, v) {
			if (http_header_name(key, name, sizeof(name)) == -1 ||
			    http_header_dropped(name) ||
			    conn_names(conn, name))
				continue;
			add_stored(&l, name, v);
		}
	}
	json_decref(h);

	hl_add(&l, "Fcgiq-Job-Id", job->id, strlen(job->id));
	if (job->queue != NULL)
		hl_add(&l, "Fcgiq-Queue", job->queue, strlen(job->queue));
	snprintf(num, sizeof(num), "%d", job->attempts);
	hl_add(&l, "Fcgiq-Attempt", num, strlen(num));
	if (l.oom) {
		http_headers_free(l.v);
		return NULL;
	}
	return l.v;
}

void
http_headers_free(char **h)
{
	char **p;

	if (h == NULL)
		return;
	for (p = h; *p != NULL; p++)
		free(*p);
	free(h);
}

/* --------------------------------------------------------------- multi */

static struct http_sock *
sock_find(struct http_multi *hm, int fd)
{
	size_t i;

	for (i = 0; i < hm->nsocks; i++)
		if (hm->socks[i].fd == fd)
			return &hm->socks[i];
	return NULL;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or no more. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct http_multi *hm = arg;
	struct http_sock *s = sock_find(hm, fd);

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			*s = hm->socks[--hm->nsocks];
		return 0;
	}
	if (s == NULL) {
		if (array_grow(&hm->socks, &hm->cap, hm->nsocks + 1,
		    sizeof(*hm->socks), 8) == -1)
			return -1;
		s = &hm->socks[hm->nsocks++];
		s->fd = fd;
	}
	s->events = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		s->events |= POLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		s->events |= POLLOUT;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants a call in ms (-1: no timer).  It may
 * not be called back from here: the helper's loop runs it when due. */
static int
on_timer(CURLM *m, long ms, void *arg)
{
	struct http_multi *hm = arg;

	(void)m;
	hm->timer_at = ms < 0 ? 0 : mono_ms() + ms;
	return 0;
}

static int curl_started;

struct http_multi *
http_multi_new(void)
{
	struct http_multi *hm;

	/* Once per process: the helper is single-threaded here. */
	if (!curl_started) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		curl_started = 1;
	}
	if ((hm = calloc(1, sizeof(*hm))) == NULL)
		return NULL;
	if ((hm->m = curl_multi_init()) == NULL) {
		free(hm);
		return NULL;
	}
	(void)curl_multi_setopt(hm->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	(void)curl_multi_setopt(hm->m, CURLMOPT_SOCKETDATA, hm);
	(void)curl_multi_setopt(hm->m, CURLMOPT_TIMERFUNCTION, on_timer);
	(void)curl_multi_setopt(hm->m, CURLMOPT_TIMERDATA, hm);
	return hm;
}

void
http_multi_free(struct http_multi *hm)
{
	if (hm == NULL)
		return;
	while (hm->nidle > 0) {
		hm->nidle--;
		curl_easy_cleanup(hm->idle[hm->nidle].e);
		free(hm->idle[hm->nidle].ca);
	}
	free(hm->idle);
	/* Closes the kept connections. */
	(void)curl_multi_cleanup(hm->m);
	free(hm->socks);
	free(hm->gates);
	free(hm->where_url);
	free(hm);
}

size_t
http_multi_nfds(const struct http_multi *hm)
{
	return hm != NULL ? hm->nsocks : 0;
}

size_t
http_multi_poll(const struct http_multi *hm, struct pollfd *pfd, size_t n)
{
	size_t i;

	for (i = 0; hm != NULL && i < hm->nsocks && i < n; i++) {
		pfd[i].fd = hm->socks[i].fd;
		pfd[i].events = hm->socks[i].events;
		pfd[i].revents = 0;
	}
	return i;
}

int64_t
http_multi_timer(const struct http_multi *hm)
{
	return hm != NULL ? hm->timer_at : 0;
}

/* Mark the transfers curl has finished done, with what they got. */
static void
take_done(struct http_multi *hm)
{
	struct curl_header *ch;
	struct http_xfer *x;
	CURLMsg *msg;
	char *ct;
	int left;

	while ((msg = curl_multi_info_read(hm->m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&x);
		if (x == NULL)
			continue;
		x->result = msg->data.result;
		(void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE,
		    &x->status);
		ct = NULL;
		if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) ==
		    CURLE_OK && ct != NULL)
			(void)snprintf(x->ctype, sizeof(x->ctype), "%s", ct);
		if (curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER,
		    -1, &ch) == CURLHE_OK)
			(void)snprintf(x->retry_after, sizeof(x->retry_after),
			    "%s", ch->value);
		(void)curl_multi_remove_handle(hm->m, x->easy);
		x->added = 0;
		x->done = 1;
	}
}

void
http_multi_ready(struct http_multi *hm, int fd, short revents)
{
	int mask = 0, running;

	if (revents & (POLLIN | POLLHUP))
		mask |= CURL_CSELECT_IN;
	if (revents & POLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (revents & (POLLERR | POLLNVAL))
		mask |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(hm->m, fd, mask, &running);
	take_done(hm);
}

void
http_multi_run(struct http_multi *hm, int64_t now)
{
	int running;

	if (hm == NULL)
		return;
	if (hm->timer_at != 0 && now >= hm->timer_at) {
		hm->timer_at = 0;
		(void)curl_multi_socket_action(hm->m, CURL_SOCKET_TIMEOUT, 0,
		    &running);
	}
	take_done(hm);
}

/* ----------------------------------------------------------- transfers */

/* CURLOPT_WRITEFUNCTION: keep the body up to its bound (max_result),
 * abort past it. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;

	x->total += len;
	/* max_result = 0: no result is wanted; the answer is read, and
	 * dropped. */
	if (x->body.max == 0)
		return len;
	if (len > x->body.max - x->body.len) {
		x->too_big = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	if (len > 0 && buf_append(&x->body, p, len) == -1)
		return CURL_WRITEFUNC_ERROR;
	return len;
}

/* "host:port" of url, for messages; the URL itself if it does not parse. */
static void
url_where(const char *url, char *buf, size_t len)
{
	CURLU *u;
	char *host = NULL, *port = NULL;

	(void)snprintf(buf, len, "%s", url);
	if ((u = curl_url()) == NULL)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
	    CURLUE_OK)
		(void)snprintf(buf, len, "%s:%s", host, port);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* url_where of url, parsed once for the jobs of a queue in a row: a
 * parse costs allocations, one job's time of the helper's. */
static void
where_of(struct http_multi *hm, const char *url, char *buf, size_t len)
{
	char *u;

	if (hm->where_url == NULL || strcmp(hm->where_url, url) != 0) {
		if ((u = strdup(url)) == NULL) {
			url_where(url, buf, len);
			return;
		}
		free(hm->where_url);
		hm->where_url = u;
		url_where(url, hm->where, sizeof(hm->where));
	}
	(void)snprintf(buf, len, "%s", hm->where);
}

char *
http_url(const char *url, const char *query)
{
	size_t ul = strlen(url), ql = query != NULL ? strlen(query) : 0;
	char *s;

	if ((s = malloc(ul + ql + 2)) == NULL)
		return NULL;
	memcpy(s, url, ul + 1);
	if (ql > 0) {
		s[ul] = strchr(url, '?') != NULL ? '&' : '?';
		memcpy(s + ul + 1, query, ql + 1);
	}
	return s;
}

static void
xfer_free(struct http_xfer *x)
{
	if (x == NULL)
		return;
	if (x->added)
		(void)curl_multi_remove_handle(x->hm->m, x->easy);
	if (x->easy != NULL) {
		struct http_multi *hm = x->hm;

		/* Its connection stays in the multi handle's cache either
		 * way; the handle itself is kept for the next job, with its
		 * options (easy_job sets every one a job sets). */
		if (hm->nidle < HTTP_IDLE_MAX &&
		    array_grow(&hm->idle, &hm->idle_cap, hm->nidle + 1,
		    sizeof(*hm->idle), 8) == 0) {
			x->he.e = x->easy;
			hm->idle[hm->nidle++] = x->he;
		} else {
			curl_easy_cleanup(x->easy);
			free(x->he.ca);
		}
	}
	curl_slist_free_all(x->hdrs);
	buf_free(&x->body);
	free(x->url);
	free(x);
}

/* 1 when the tls_ca an easy handle was set for is q's. */
static int
same_ca(const char *ca, const struct queue_conf *q)
{
	if (ca == NULL || q->tls_ca == NULL)
		return ca == q->tls_ca;
	return strcmp(ca, q->tls_ca) == 0;
}

/*
 * The options every job of q sets alike, on a new handle or one last set
 * for another tls_ca.  0, or -1.
 */
static int
easy_fixed(struct http_easy *he, const struct queue_conf *q)
{
	CURL *e = he->e;
	char *ca = NULL;

	if (he->fixed && same_ca(he->ca, q))
		return 0;
	if (q->tls_ca != NULL && (ca = strdup(q->tls_ca)) == NULL)
		return -1;
	free(he->ca);
	he->ca = ca;
	/* Set for another tls_ca: back to a new handle's defaults (the
	 * system's CA store among them) first. */
	if (he->fixed)
		curl_easy_reset(e);
	he->fixed = 0;
#define SET(opt, val) if (curl_easy_setopt(e, opt, val) != CURLE_OK) return -1
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* The environment's http_proxy is not the queue's choice. */
	SET(CURLOPT_PROXY, "");
	/* One request a connection at a time: concurrency is connections. */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (q->tls_ca != NULL) {
		/* That CA alone, not the system's as well. */
		SET(CURLOPT_CAINFO, q->tls_ca);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_WRITEFUNCTION, on_body);
#undef SET
	he->fixed = 1;
	return 0;
}

/* The transfer of job to q's URL, set up on x->easy: the options of the
 * job's own (easy_fixed set the rest).  0, or -1. */
static int
xfer_setup(struct http_xfer *x, const struct queue_conf *q,
    const struct store_job *job)
{
	CURL *e = x->easy;
	struct curl_slist *sl;
	char **h, **p;
	int rc = -1;

	if (easy_fixed(&x->he, q) == -1)
		return -1;
	if ((h = http_headers(job)) == NULL)
		return -1;
	for (p = h; *p != NULL; p++) {
		if ((sl = curl_slist_append(x->hdrs, *p)) == NULL)
			goto done;
		x->hdrs = sl;
	}
#define SET(opt, val) if (curl_easy_setopt(e, opt, val) != CURLE_OK) goto done
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_URL, x->url);
	/* The slot's own timer stops it at the queue's timeout; curl's,
	 * a little later, is only a net. */
	SET(CURLOPT_TIMEOUT_MS, (long)q->timeout_ms + 1000);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)q->timeout_ms);
	SET(CURLOPT_HTTPHEADER, x->hdrs);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_len);
	SET(CURLOPT_POSTFIELDS, job->body_len > 0 ? (char *)job->body : "");
	/* NULL: the last job's method is not this one's. */
	SET(CURLOPT_CUSTOMREQUEST, job->method != NULL &&
	    strcmp(job->method, "POST") != 0 ? job->method : NULL);
	SET(CURLOPT_WRITEDATA, x);
#undef SET
	rc = 0;
done:
	http_headers_free(h);
	return rc;
}

/* An idle easy handle into *he, or a new one; its handle, or NULL. */
static CURL *
easy_take(struct http_multi *hm, struct http_easy *he)
{
	if (hm->nidle > 0)
		*he = hm->idle[--hm->nidle];
	else {
		memset(he, 0, sizeof(*he));
		he->e = curl_easy_init();
	}
	return he->e;
}

int
http_slot_start(struct slot *s, struct http_multi *hm,
    const struct queue_conf *q, const struct store_job *job, char *why,
    size_t len)
{
	struct http_xfer *x;
	CURLMcode mc;

	if (s->state != SLOT_FREE) {
		(void)snprintf(why, len, "http: slot in use");
		return -1;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		(void)snprintf(why, len, "http: out of memory");
		return -1;
	}
	x->hm = hm;
	buf_init(&x->body, q->max_result);
	where_of(hm, q->url, x->where, sizeof(x->where));
	if ((x->url = http_url(q->url, job->query_string)) == NULL ||
	    (x->easy = easy_take(hm, &x->he)) == NULL ||
	    xfer_setup(x, q, job) == -1) {
		(void)snprintf(why, len, "http: %s: cannot set up the request "
		    "(out of memory)", x->where);
		xfer_free(x);
		return -1;
	}
	if ((mc = curl_multi_add_handle(hm->m, x->easy)) != CURLM_OK) {
		(void)snprintf(why, len, "http: %s: %s", x->where,
		    curl_multi_strerror(mc));
		xfer_free(x);
		return -1;
	}
	x->added = 1;
	s->kind = &http_kind;
	s->u.http.x = x;
	return 0;
}

/* The gate of the upstream where, made on first use; NULL when out of
 * memory (then every message passes). */
static struct upstream_gate *
gate_of(struct http_multi *hm, const char *where)
{
	struct http_gate *g;
	size_t i;

	for (i = 0; i < hm->ngates; i++)
		if (strcmp(hm->gates[i].where, where) == 0)
			return &hm->gates[i].g;
	if (array_grow(&hm->gates, &hm->gates_cap, hm->ngates + 1,
	    sizeof(*hm->gates), 4) == -1)
		return NULL;
	g = &hm->gates[hm->ngates++];
	memset(g, 0, sizeof(*g));
	(void)snprintf(g->where, sizeof(g->where), "%s", where);
	return &g->g;
}

/* " (and 3 more failures)" since the last message, or "". */
static const char *
held_text(unsigned long held, char *buf, size_t len)
{
	if (held == 0)
		return "";
	(void)snprintf(buf, len, " (and %lu more since)", held);
	return buf;
}

/* The verdict's one-line reason, cut to fit (a long host name may). */
static void __attribute__((format(printf, 2, 3)))
reason_set(struct upstream_answer *up, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(up->reason, sizeof(up->reason), fmt, ap);
	va_end(ap);
}

/*
 * The verdict of x's end into up (upstream.h), for slot_outcome: the
 * status decides when one came whole; a success whose body was cut (past
 * max_result, or the connection lost mid-answer) and an answer that never
 * came are failed attempts.  A transport failure passes through the
 * upstream's log gate: *note says "unreachable" when it is due.
 */
static void
xfer_verdict(struct http_xfer *x, const struct queue_conf *q,
    struct upstream_answer *up, int64_t now, char *note, size_t len)
{
	struct upstream_gate *g;
	unsigned long held = 0;
	char dur[32], more[48];

	memset(up, 0, sizeof(*up));
	up->set = 1;
	up->status = (int)x->status;
	(void)snprintf(up->type, sizeof(up->type), "%s", x->ctype);
	if (x->status != 0) {
		if ((g = gate_of(x->hm, x->where)) != NULL)
			upstream_gate_reset(g);
		up->verdict = upstream_verdict((int)x->status);
		if (up->verdict == UPSTREAM_DONE && x->too_big) {
			up->verdict = UPSTREAM_RETRY;
			reason_set(up, "http %ld from %s: answer larger than "
			    "max_result (%zu bytes)", x->status, x->where,
			    q->max_result);
		} else if (up->verdict == UPSTREAM_DONE &&
		    x->result != CURLE_OK) {
			up->verdict = UPSTREAM_RETRY;
			reason_set(up, "http %ld from %s: %s", x->status,
			    x->where, x->errbuf[0] ? x->errbuf :
			    curl_easy_strerror(x->result));
		} else
			reason_set(up, "http %ld from %s", x->status, x->where);
		if ((x->status == 429 || x->status == 503) &&
		    x->retry_after[0] != '\0')
			(void)upstream_retry_after(x->retry_after, store_now(),
			    q->backoff_max_ms, &up->run_at);
		return;
	}
	up->verdict = UPSTREAM_RETRY;
	if (x->result == CURLE_OPERATION_TIMEDOUT) {
		clock_fmt(q->timeout_ms, dur, sizeof(dur));
		reason_set(up, "timeout after %s", dur);
		return;
	}
	/* The why is curl's message, shown as the tail (http_drain).  The
	 * gate's line below speaks for the upstream: the job's own line is
	 * quiet. */
	reason_set(up, "http: %s", x->where);
	up->quiet = 1;
	g = gate_of(x->hm, x->where);
	if (g == NULL || upstream_gate_pass(g, now, &held))
		(void)snprintf(note, len, "http: %s: unreachable: %s%s",
		    x->where, x->errbuf[0] ? x->errbuf :
		    curl_easy_strerror(x->result), held_text(held, more,
		    sizeof(more)));
}

int
http_slot_collect(struct slot *s, int64_t now, char *note, size_t len)
{
	struct http_xfer *x = s->u.http.x;
	char status[64];

	note[0] = '\0';
	if (s->kind != &http_kind || x == NULL || !x->done ||
	    (s->state != SLOT_RUNNING && s->state != SLOT_STOPPING))
		return 0;
	/* The short form; the outcome's reason says the rest. */
	if (x->aborted)
		(void)snprintf(status, sizeof(status), "aborted");
	else if (x->status != 0)
		(void)snprintf(status, sizeof(status), "http %ld", x->status);
	else
		(void)snprintf(status, sizeof(status), "curl error %d",
		    (int)x->result);
	if (!x->aborted)
		xfer_verdict(x, s->q, &s->up, now, note, len);
	return slot_exited(s, x->status != 0 ? (int)x->status : -1,
	    status) == 0;
}

int
http_slot_status(const struct slot *s)
{
	return s->u.http.x != NULL ? (int)s->u.http.x->status : 0;
}

const char *
http_slot_type(const struct slot *s)
{
	return s->u.http.x != NULL ? s->u.http.x->ctype : "";
}

const char *
http_slot_retry_after(const struct slot *s)
{
	return s->u.http.x != NULL ? s->u.http.x->retry_after : "";
}

/* ---------------------------------------------------------------- kind */

static void
http_started(struct slot *s)
{
	(void)s;
}

/* The sockets are the multi handle's, polled by the helper for all. */
static int
http_poll(struct slot *s, struct pollfd *pfd, int *which)
{
	(void)s;
	(void)pfd;
	(void)which;
	return 0;
}

static int
http_ready(struct slot *s, int which, short revents)
{
	(void)s;
	(void)which;
	(void)revents;
	return 0;
}

/* Abort the transfer now: removing it closes its connection, which is in
 * mid-request and cannot be kept.  The grace was the helper's to give. */
static void
http_stop(struct slot *s)
{
	struct http_xfer *x = s->u.http.x;

	if (x == NULL || x->done)
		return;
	if (x->added)
		(void)curl_multi_remove_handle(x->hm->m, x->easy);
	x->added = 0;
	x->done = 1;
	x->aborted = 1;
	x->status = 0;
}

/*
 * The answer's body becomes the slot's output when the verdict is done;
 * an error answer's body gives last_error its tail; when no answer came,
 * curl's message is the tail.
 */
static int
http_drain(struct slot *s)
{
	struct http_xfer *x = s->u.http.x;

	if (x == NULL)
		return 0;
	if (s->up.set && s->up.verdict == UPSTREAM_DONE) {
		exec_out_free(&s->out);
		s->out.b = x->body;
		s->out.total = x->total;
		buf_init(&x->body, 0);
		return 0;
	}
	if (x->status == 0 && !x->aborted && x->errbuf[0] != '\0')
		upstream_tail_add(&s->err, x->errbuf, strlen(x->errbuf));
	else if (x->status < 200 || x->status > 299)
		upstream_tail_add(&s->err, x->body.data, x->body.len);
	buf_free(&x->body);
	return 0;
}

static void
http_close(struct slot *s)
{
	xfer_free(s->u.http.x);
	s->u.http.x = NULL;
}

static void
http_describe(const struct slot *s, char *buf, size_t len)
{
	(void)snprintf(buf, len, "http %s", s->u.http.x != NULL ?
	    s->u.http.x->where : "-");
}

const struct slot_kind http_kind = {
	"http",
	http_started,
	http_poll,
	http_ready,
	http_stop,
	http_stop,
	http_drain,
	http_close,
	http_describe
};
