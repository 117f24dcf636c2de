/*
 * request: parse and bound what a client sent.  Every function is pure
 * over its arguments (the params array, the configuration, a read
 * callback), allocates only what it returns, and turns any input, however
 * malformed, into a verdict the caller maps to an HTTP status.  req_parse
 * reads the params in one pass into a struct request; req_check is the one
 * place that refuses one.  The body reader never holds more than max + 1
 * bytes, so an over-long body costs a bounded read, not memory.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "request.h"
#include "text.h"

const char *
req_param(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	if (envp == NULL)
		return NULL;
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

int
req_content_length(const char *s, uint64_t *len)
{
	uint64_t v = 0;
	const char *p;

	/* Caddy's FastCGI transport sends -1 for a body of unknown length
	 * (a chunked upload): FCGI_STDIN's end frames it, as when absent. */
	if (s == NULL || *s == '\0' || strcmp(s, "-1") == 0)
		return 1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (INT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*len = v;
	return 0;
}

int
req_valid_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= STORE_ID_LEN)
			return 0;
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	}
	return i == STORE_ID_LEN || i == STORE_ID_LEN_V1;
}

int
req_id_gone(const char *id, const struct config *c, int64_t now)
{
	int64_t t, keep = -1;
	size_t i;

	if (store_id_time(id, &t) != 1 || t < REQ_ID_EPOCH_MS)
		return 0;
	for (i = 0; i < c->nqueues; i++)
		if (keep < 0 || c->queues[i].keep_done_ms < keep)
			keep = c->queues[i].keep_done_ms;
	return keep >= 0 && t < now - keep;
}

int
req_is_intake_method(const char *method)
{
	return method != NULL && (strcmp(method, "POST") == 0 ||
	    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0);
}

enum req_route
req_route(const char *method, const char *uri, const char *prefix,
    char id[STORE_ID_LEN + 1], const char **allow)
{
	size_t plen, rest;
	const char *p, *q;
	int result;

	*allow = NULL;
	id[0] = '\0';
	if (method == NULL)
		method = "";
	if (uri == NULL)
		uri = "";
	plen = strlen(prefix);
	if (plen > 0 && strncmp(uri, prefix, plen) == 0) {
		p = uri + plen;
		q = strchr(p, '?');
		rest = q != NULL ? (size_t)(q - p) : strlen(p);
		/* <id>/result: the handler's result as it answered it. */
		result = rest > 7 && memcmp(p + rest - 7, "/result", 7) == 0;
		if (result)
			rest -= 7;
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
		    (result || strcmp(method, "DELETE") != 0)) {
			*allow = result ? "GET, HEAD" : "GET, HEAD, DELETE";
			return REQ_ROUTE_BAD_METHOD;
		}
		if (rest != STORE_ID_LEN && rest != STORE_ID_LEN_V1)
			return REQ_ROUTE_NO_JOB;
		memcpy(id, p, rest);
		id[rest] = '\0';
		if (!req_valid_id(id)) {
			id[0] = '\0';
			return REQ_ROUTE_NO_JOB;
		}
		if (strcmp(method, "GET") == 0)
			return result ? REQ_ROUTE_RESULT : REQ_ROUTE_STATUS;
		if (strcmp(method, "HEAD") == 0)
			return result ? REQ_ROUTE_RESULT_HEAD :
			    REQ_ROUTE_STATUS_HEAD;
		return REQ_ROUTE_CANCEL;
	}
	if (req_is_intake_method(method))
		return REQ_ROUTE_ENQUEUE;
	*allow = "POST, PUT, PATCH";
	return REQ_ROUTE_BAD_METHOD;
}

int
req_headers_json(char *const *envp, size_t max_count, size_t max_bytes,
    char **out, const char **why)
{
	json_t *obj;
	const char *eq;
	char name[256], *value = NULL, *text = NULL;
	size_t count = 0, approx = 2, nlen;
	int rc = -2;

	*out = NULL;
	*why = NULL;
	if ((obj = json_object()) == NULL)
		return -2;
	for (; envp != NULL && *envp != NULL; envp++) {
		if (strncmp(*envp, "HTTP_", 5) != 0 ||
		    (eq = strchr(*envp, '=')) == NULL)
			continue;
		nlen = (size_t)(eq - *envp);
		if (nlen == 10 && strncmp(*envp, "HTTP_PROXY", 10) == 0)
			continue;	/* httpoxy: never pass it on */
		/* Kept already as content_type and the body's length, and
		 * handed to the handler as CONTENT_TYPE / CONTENT_LENGTH;
		 * RFC 3875 4.1.18: a server SHOULD remove header fields
		 * available in other variables.  Saves ~75 bytes a job. */
		if ((nlen == 17 && strncmp(*envp, "HTTP_CONTENT_TYPE", 17) == 0) ||
		    (nlen == 19 &&
		    strncmp(*envp, "HTTP_CONTENT_LENGTH", 19) == 0))
			continue;
		if (++count > max_count) {
			*why = "too many header fields";
			rc = -1;
			goto done;
		}
		/* Escaping can grow a byte to six ("\u001f"); bound the
		 * input first so a huge header costs no huge allocation. */
		approx += nlen + strlen(eq + 1) + 6;
		if (nlen >= sizeof(name) || approx > max_bytes) {
			*why = nlen >= sizeof(name) ? "header field name too long" :
			    "header fields too large";
			rc = -1;
			goto done;
		}
		memcpy(name, *envp, nlen);
		name[nlen] = '\0';
		if (!text_utf8_valid(name, nlen)) {
			*why = "header field name is not text";
			rc = -1;
			goto done;
		}
		if ((value = text_utf8_sanitize(eq + 1)) == NULL)
			goto done;
		/* The web server may repeat a name; the last one wins. */
		if (json_object_set_new(obj, name, json_string(value)) == -1)
			goto done;
		free(value);
		value = NULL;
	}
	if ((text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto done;
	if (strlen(text) > max_bytes) {
		*why = "header fields too large";
		free(text);
		rc = -1;
		goto done;
	}
	*out = text;
	rc = 0;
done:
	free(value);
	json_decref(obj);
	return rc;
}

int
req_header_param(const char *header, char *buf, size_t len)
{
	return text_cgi_name(header, buf, len) == 0 ? 0 : -1;
}

/* The key: the dedupe header's param when envp has it, else fallback
 * (HTTP_IDEMPOTENCY_KEY's value, may be NULL); as req_idempotency_key. */
static int
idempotency_key(char *const *envp, const char *dedupe_header,
    const char *fallback, const char **key)
{
	char pname[128];
	const char *v = NULL, *p;

	*key = NULL;
	if (dedupe_header != NULL && *dedupe_header != '\0' &&
	    req_header_param(dedupe_header, pname, sizeof(pname)) == 0)
		v = req_param(envp, pname);
	if (v == NULL)
		v = fallback;
	if (v == NULL)
		return 0;
	if (*v == '\0' || strlen(v) > REQ_MAX_KEY)
		return -1;
	for (p = v; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return -1;
	*key = v;
	return 1;
}

int
req_idempotency_key(char *const *envp, const char *dedupe_header,
    const char **key)
{
	return idempotency_key(envp, dedupe_header,
	    req_param(envp, "HTTP_IDEMPOTENCY_KEY"), key);
}

enum req_body
req_read_body(req_read_fn rd, void *ctx, int have_length, uint64_t length,
    size_t max, void **body, size_t *len)
{
	struct buf b;
	unsigned char extra;
	ssize_t n;
	enum req_body rc;

	*body = NULL;
	*len = 0;
	if (have_length && length > max)
		return REQ_BODY_TOO_BIG;
	/* Known length: one allocation (never NULL, even for 0 bytes).
	 * Unknown: grown by doubling up to max + 1, the byte that says the
	 * body is too big. */
	buf_init(&b, have_length ? 0 : max + 1);
	if (buf_reserve(&b, have_length ? (length > 0 ? (size_t)length : 1) :
	    (max < 16384 ? max + 1 : 16384)) == -1)
		return REQ_BODY_NOMEM;
	for (;;) {
		if (have_length && b.len == length)
			break;
		if (!have_length && b.len == b.cap) {
			if (b.cap > max) {
				rc = REQ_BODY_TOO_BIG;
				goto fail;
			}
			if (buf_reserve(&b, 1) == -1) {
				rc = REQ_BODY_NOMEM;
				goto fail;
			}
		}
		n = rd(ctx, b.data + b.len, (have_length ? (size_t)length :
		    b.cap) - b.len);
		if (n < 0) {
			rc = REQ_BODY_BROKEN;
			goto fail;
		}
		if (n == 0) {
			if (have_length) {
				rc = REQ_BODY_SHORT;
				goto fail;
			}
			break;
		}
		b.len += (size_t)n;
	}
	if (!have_length && b.len > max) {
		rc = REQ_BODY_TOO_BIG;
		goto fail;
	}
	if (have_length) {
		/* The declared length must be the whole stream. */
		n = rd(ctx, &extra, 1);
		if (n < 0) {
			rc = REQ_BODY_BROKEN;
			goto fail;
		}
		if (n > 0) {
			rc = REQ_BODY_LONG;
			goto fail;
		}
	}
	*body = b.data;
	*len = b.len;
	return REQ_BODY_OK;
fail:
	buf_free(&b);
	return rc;
}

int
req_printable(const char *s, size_t max)
{
	return strlen(s) <= max && strpbrk(s, "\r\n") == NULL;
}

/* The value of param s when its name is name (n bytes), else NULL. */
static inline const char *
param_is(const char *s, const char *name, size_t n)
{
	return strncmp(s, name, n) == 0 && s[n] == '=' ? s + n + 1 : NULL;
}

/* Keep the first of a repeated param, as req_param() finds it. */
#define FIRST(field, s, name) do {					\
	const char *v_;							\
	if ((field) == NULL &&						\
	    (v_ = param_is((s), (name), sizeof(name) - 1)) != NULL)	\
		(field) = v_;						\
} while (0)

/* What the location's FCGIQ_ROLE serves instead of intake (the whole
 * location: no status prefix under it). */
static void
role_route(struct request *rq)
{
	const char *m = rq->method != NULL ? rq->method : "";

	if (rq->role_param != NULL && strcmp(rq->role_param, "dashboard") == 0) {
		rq->id[0] = '\0';
		rq->allow = NULL;
		rq->route = REQ_ROUTE_DASHBOARD;	/* dashboard.c routes */
		return;
	}
	if (rq->role_param == NULL || strcmp(rq->role_param, "metrics") != 0)
		return;
	rq->id[0] = '\0';
	rq->allow = NULL;
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		rq->route = REQ_ROUTE_METRICS;
	else {
		rq->route = REQ_ROUTE_BAD_METHOD;
		rq->allow = "GET, HEAD";
	}
}

void
req_parse(struct request *rq, char *const *envp, int role, enum wire_bad bad,
    const char *default_prefix)
{
	const char *prefix = NULL, *s;
	char *const *e;

	memset(rq, 0, sizeof(*rq));
	rq->envp = envp;
	rq->role = role;
	rq->bad = bad;
	/* One pass; the first byte picks the few names to compare. */
	for (e = envp; e != NULL && (s = *e) != NULL; e++) {
		switch (s[0]) {
		case 'C':
			FIRST(rq->content_type, s, "CONTENT_TYPE");
			FIRST(rq->content_length, s, "CONTENT_LENGTH");
			break;
		case 'F':
			FIRST(rq->queue, s, "FCGIQ_QUEUE");
			FIRST(prefix, s, "FCGIQ_STATUS_PREFIX");
			FIRST(rq->dedupe_header, s, "FCGIQ_DEDUPE_HEADER");
			FIRST(rq->accept_param, s, "FCGIQ_ACCEPT_STATUS");
			FIRST(rq->role_param, s, "FCGIQ_ROLE");
			FIRST(rq->delay_param, s, "FCGIQ_DELAY");
			FIRST(rq->priority_param, s, "FCGIQ_PRIORITY");
			FIRST(rq->schedule_param, s, "FCGIQ_CLIENT_SCHEDULE");
			break;
		case 'H':
			FIRST(rq->idempotency, s, "HTTP_IDEMPOTENCY_KEY");
			FIRST(rq->if_none_match, s, "HTTP_IF_NONE_MATCH");
			FIRST(rq->prefer, s, "HTTP_PREFER");
			FIRST(rq->h_delay, s, "HTTP_FCGIQ_DELAY");
			FIRST(rq->h_run_at, s, "HTTP_FCGIQ_RUN_AT");
			FIRST(rq->h_priority, s, "HTTP_FCGIQ_PRIORITY");
			break;
		case 'Q':
			FIRST(rq->query, s, "QUERY_STRING");
			break;
		case 'R':
			FIRST(rq->method, s, "REQUEST_METHOD");
			FIRST(rq->uri, s, "REQUEST_URI");
			FIRST(rq->remote_addr, s, "REMOTE_ADDR");
			break;
		}
	}
	if (rq->uri == NULL)
		rq->uri = "";
	if (rq->queue == NULL || *rq->queue == '\0')
		rq->queue = "default";
	rq->prefix = prefix != NULL && *prefix == '/' &&
	    req_printable(prefix, 256) ? prefix : default_prefix;
	rq->head = rq->method != NULL && strcmp(rq->method, "HEAD") == 0;
	rq->route = req_route(rq->method, rq->uri, rq->prefix, rq->id,
	    &rq->allow);
	role_route(rq);
}

static int
verdict(struct req_verdict *v, int status, const char *header,
    const char *error, const char *detail)
{
	v->status = status;
	v->header = header;
	v->error = error;
	v->detail = detail;
	return status;
}

/* A delay within REQ_MAX_DELAY_MS ("30s", "10m", a bare number of
 * seconds: config_parse_duration) as ms: 0, or -1. */
static int
parse_delay(const char *s, int64_t *ms)
{
	return config_parse_duration(s, ms) == -1 || *ms > REQ_MAX_DELAY_MS ?
	    -1 : 0;
}

/* A priority: a decimal number within the bounds of a queue's: 0, or -1. */
static int
parse_priority(const char *s, int *out)
{
	long v;
	char *end;

	/* strtol would take blanks and a '+' before the number. */
	if (strlen(s) > 5 || !(isdigit((unsigned char)s[0]) ||
	    (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < REQ_PRIORITY_MIN || v > REQ_PRIORITY_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * When and how urgently the job runs: the queue's priority and now,
 * unless the location sets defaults (FCGIQ_DELAY, FCGIQ_PRIORITY: a bad
 * value is the location's mistake, 500), and, where the location lets
 * the client choose (FCGIQ_CLIENT_SCHEDULE on), what its Fcgiq-Delay,
 * Fcgiq-Run-At and Fcgiq-Priority headers say (400 when bad).  Elsewhere
 * the headers are ignored: a stranger never picks when or how urgently a
 * job runs.  A time in the past means now, never earlier: run_at orders
 * the queue, and a client must not jump it.
 */
static int
check_schedule(struct request *rq, struct req_verdict *v)
{
	int64_t delay = 0, at;
	int client;

	rq->priority = rq->qc->priority;
	rq->run_at = 0;
	if (rq->delay_param != NULL && *rq->delay_param != '\0' &&
	    parse_delay(rq->delay_param, &delay) == -1)
		return verdict(v, 500, NULL, "bad FCGIQ_DELAY", "the "
		    "location's FCGIQ_DELAY must be a duration up to 366d");
	if (rq->priority_param != NULL && *rq->priority_param != '\0' &&
	    parse_priority(rq->priority_param, &rq->priority) == -1)
		return verdict(v, 500, NULL, "bad FCGIQ_PRIORITY", "the "
		    "location's FCGIQ_PRIORITY must be from -1000 to 1000");
	if (rq->schedule_param == NULL || *rq->schedule_param == '\0' ||
	    strcmp(rq->schedule_param, "off") == 0)
		client = 0;
	else if (strcmp(rq->schedule_param, "on") == 0)
		client = 1;
	else
		return verdict(v, 500, NULL, "bad FCGIQ_CLIENT_SCHEDULE",
		    "the location's FCGIQ_CLIENT_SCHEDULE must be on or off");
	if (client && rq->h_priority != NULL &&
	    parse_priority(rq->h_priority, &rq->priority) == -1)
		return verdict(v, 400, NULL, "bad Fcgiq-Priority",
		    "a whole number from -1000 to 1000");
	if (client && rq->h_delay != NULL && rq->h_run_at != NULL)
		return verdict(v, 400, NULL, "conflicting schedule",
		    "Fcgiq-Delay and Fcgiq-Run-At both sent; send one");
	if (client && rq->h_delay != NULL &&
	    parse_delay(rq->h_delay, &delay) == -1)
		return verdict(v, 400, NULL, "bad Fcgiq-Delay",
		    "a duration up to 366d: 30s, 10m, 2h, 1d, or seconds");
	if (client && rq->h_run_at != NULL) {
		if (text_rfc3339(rq->h_run_at, &at) == -1)
			return verdict(v, 400, NULL, "bad Fcgiq-Run-At",
			    "an RFC 3339 date-time: 2026-12-03T10:00:00Z");
		if (at > rq->now + REQ_MAX_DELAY_MS)
			return verdict(v, 400, NULL, "bad Fcgiq-Run-At",
			    "more than 366 days ahead");
		rq->run_at = at > rq->now ? at : 0;
		return 0;
	}
	rq->run_at = delay > 0 ? rq->now + delay : 0;
	return 0;
}

/* The checks of an intake, in the order of the contract. */
static int
check_intake(struct request *rq, const struct config *c,
    struct req_verdict *v)
{
	const char *why;
	int rc;

	/* A location's mistake, not the client's: refused before anything
	 * is stored, so a wrong value is seen at the first request. */
	if (rq->accept_param == NULL || *rq->accept_param == '\0' ||
	    strcmp(rq->accept_param, "202") == 0)
		rq->accept_status = 202;
	else if (strcmp(rq->accept_param, "200") == 0)
		rq->accept_status = 200;
	else
		return verdict(v, 500, NULL, "bad FCGIQ_ACCEPT_STATUS",
		    "the location's FCGIQ_ACCEPT_STATUS must be 200 or 202");
	if ((rq->qc = config_queue(c, rq->queue)) == NULL)
		return verdict(v, 404, NULL, "unknown queue", rq->queue);
	rc = req_content_length(rq->content_length, &rq->length);
	if (rc == -1)
		return verdict(v, 400, NULL, "bad Content-Length",
		    "not a decimal number of bytes");
	rq->have_length = rc == 0;
	if (rq->have_length && rq->length > c->max_body)
		return verdict(v, 413, NULL, "body too large",
		    "over the max_body limit");
	if (rq->content_type != NULL &&
	    !req_printable(rq->content_type, REQ_MAX_CONTENT_TYPE))
		return verdict(v, 400, NULL, "bad Content-Type", "too long");
	rc = req_headers_json(rq->envp, REQ_MAX_HEADERS, REQ_MAX_HEADERS_JSON,
	    &rq->headers, &why);
	if (rc == -1)
		return verdict(v, 431, NULL, "header fields too large", why);
	if (rc == -2)
		return verdict(v, 500, NULL, "out of memory", NULL);
	if (idempotency_key(rq->envp, rq->dedupe_header, rq->idempotency,
	    &rq->key) == -1)
		return verdict(v, 400, NULL, "bad idempotency key",
		    "1-255 printable ASCII characters");
	return check_schedule(rq, v);
}

int
req_check(struct request *rq, const struct config *c, struct req_verdict *v)
{
	/* fcgiq is a responder: an AUTHORIZER or FILTER request would be
	 * stored as a job no web server meant to send (found by the
	 * adversary in tests/hostile). */
	if (rq->role != FCGI_RESPONDER)
		return verdict(v, 400, NULL, "only the FastCGI responder role "
		    "is served", NULL);
	switch (rq->bad) {
	case WIRE_OK:
		break;
	case WIRE_BAD_PARAM:
		/* A NUL cuts "NAME=value" short for every C string reader,
		 * an '=' in a name moves where the value starts: either way
		 * a request that means two things. */
		return verdict(v, 400, NULL, "bad FastCGI parameter",
		    "a NUL byte in a name or value, or '=' in a name");
	case WIRE_BAD_TOO_LARGE:
		return verdict(v, 431, NULL, "header fields too large",
		    "the FastCGI params are over 1 MiB");
	}
	if (strlen(rq->uri) > REQ_MAX_URI)
		return verdict(v, 414, NULL, "URI too long",
		    "the request URI is over 8192 bytes");
	/* Like FCGIQ_ACCEPT_STATUS: the location's mistake, seen at once. */
	if (rq->role_param != NULL && *rq->role_param != '\0' &&
	    strcmp(rq->role_param, "intake") != 0 &&
	    strcmp(rq->role_param, "metrics") != 0 &&
	    strcmp(rq->role_param, "dashboard") != 0)
		return verdict(v, 500, NULL, "bad FCGIQ_ROLE", "the location's "
		    "FCGIQ_ROLE must be intake, metrics or dashboard");
	if (rq->route != REQ_ROUTE_ENQUEUE)
		return 0;
	return check_intake(rq, c, v);
}

void
req_free(struct request *rq)
{
	free(rq->headers);
	rq->headers = NULL;
}

int
req_etag_match(const char *header, const char *etag)
{
	const char *p = header, *end;
	size_t elen = strlen(etag);

	if (header == NULL)
		return 0;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return 1;
		/* Weak comparison: W/"x" matches "x". */
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"') {
			/* Not an entity tag: skip to the next member. */
			if ((p = strchr(p, ',')) == NULL)
				return 0;
			continue;
		}
		if ((end = strchr(p + 1, '"')) == NULL)
			return 0;
		if ((size_t)(end + 1 - p) == elen &&
		    memcmp(p, etag, elen) == 0)
			return 1;
		p = end + 1;
	}
}

/* RFC 9110 tchar. */
static int
tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static const char *
ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Past a quoted-string starting at p ('"'), or NULL when unterminated. */
static const char *
skip_quoted(const char *p)
{
	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Past the rest of one preference (its parameters), at ',' or the end. */
static const char *
skip_preference(const char *p)
{
	while (*p != '\0' && *p != ',') {
		if (*p == '"') {
			if ((p = skip_quoted(p)) == NULL)
				return NULL;
		} else
			p++;
	}
	return p;
}

/* delta-seconds (1*DIGIT), saturated; -1 when s[0..n) is not one. */
static int
delta_seconds(const char *s, size_t n)
{
	long long v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < INT_MAX)
			v = v * 10 + (s[i] - '0');
	}
	return v > INT_MAX ? INT_MAX : (int)v;
}

int
req_prefer_wait(const char *header)
{
	const char *p = header, *name, *v, *end;
	size_t nlen;

	if (header == NULL)
		return -1;
	while (p != NULL && *p != '\0') {
		p = ows(p);
		if (*p == ',') {
			p++;
			continue;
		}
		for (name = p; tchar(*p); p++)
			;
		nlen = (size_t)(p - name);
		if (nlen == 4 && strncasecmp(name, "wait", 4) == 0) {
			/* The first one decides (RFC 7240, 2). */
			p = ows(p);
			if (*p != '=')
				return -1;
			p = ows(p + 1);
			if (*p == '"') {
				if ((end = skip_quoted(p)) == NULL)
					return -1;
				v = p + 1;
				end--;			/* at the closing quote */
			} else {
				for (v = p, end = p; tchar(*end); end++)
					;
			}
			p = ows(*end == '"' ? end + 1 : end);
			if (*p != '\0' && *p != ',' && *p != ';')
				return -1;
			return delta_seconds(v, (size_t)(end - v));
		}
		if (nlen == 0 && *p != '\0' && *p != ',')
			return -1;	/* not a list of preferences */
		p = skip_preference(p);
	}
	return -1;
}
