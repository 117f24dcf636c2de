/*
 * fuzz_request: one whole request through the parsers, in the order
 * fcgi-app/router.c calls them: route (method, URI, status prefix),
 * CONTENT_LENGTH, the header JSON, the idempotency key, then the body from a
 * read callback.
 *
 * Input: byte 0 = flags (bits 0-1 max_body of 1, 100, 16384 or 64 KiB;
 * bit 2 the stream breaks (-1) instead of ending (0); bit 3 small header
 * limits), byte 1 = the largest chunk one read returns (0: all asked),
 * then NUL-separated "NAME=value" params ended by an empty one, then the
 * body bytes.
 *
 * Invariants: the header JSON is valid JSON per jansson, an object of at
 * most max_count HTTP_* keys (never HTTP_PROXY, HTTP_CONTENT_TYPE or
 * HTTP_CONTENT_LENGTH: the job keeps those apart), no longer than max_bytes,
 * one key for each HTTP_* param, the last value of a name, unchanged when
 * it was UTF-8; the body reader returns exactly the bytes sent when it says
 * OK, each refusal is the right one (SHORT, LONG, TOO_BIG, BROKEN), it never
 * asks for 0 bytes, never reads more than max + 1 bytes, and nothing when
 * CONTENT_LENGTH is over max; text_utf8_valid agrees with jansson.
 * req_parse finds what req_param finds, routes as req_route does, and
 * req_check answers 0 or a 4xx/500 it documents, with an intake's queue,
 * headers and key set when it passes.
 */
#include <sys/types.h>

#include <jansson.h>

#include "config.h"
#include "fuzz.h"
#include "request.h"
#include "text.h"

struct stream {
	const uint8_t	*p;
	size_t		 len, pos, chunk, total;
	int		 broken, ended;
};

static ssize_t
rd(void *ctx, void *buf, size_t want)
{
	struct stream *s = ctx;
	size_t n;

	INVARIANT(want > 0);	/* libfcgi answers 0 for 0: "the end" */
	if (s->pos == s->len) {
		s->ended = 1;
		return s->broken ? -1 : 0;
	}
	n = s->len - s->pos;
	if (n > want)
		n = want;
	if (s->chunk > 0 && n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	s->total += n;
	return (ssize_t)n;
}

/* The name part of "NAME=value" as a new string, or NULL without '='. */
static char *
name_of(const char *e)
{
	const char *eq = strchr(e, '=');
	char *n;

	if (eq == NULL)
		return NULL;
	if ((n = strndup(e, (size_t)(eq - e))) == NULL)
		abort();
	return n;
}

static int
is_header(const char *e)
{
	const char *eq = strchr(e, '=');

	size_t n = eq != NULL ? (size_t)(eq - e) : 0;

	return strncmp(e, "HTTP_", 5) == 0 && eq != NULL &&
	    !(n == 10 && strncmp(e, "HTTP_PROXY", 10) == 0) &&
	    !(n == 17 && strncmp(e, "HTTP_CONTENT_TYPE", 17) == 0) &&
	    !(n == 19 && strncmp(e, "HTTP_CONTENT_LENGTH", 19) == 0);
}

static void
check_headers(char **envp, size_t max_count, size_t max_bytes)
{
	char *out = (char *)1, **names;
	const char *why = (const char *)1, *key, *last, *eq;
	size_t count = 0, i, n, approx = 2;
	json_t *obj, *val;
	json_error_t jerr;
	int rc, names_ok = 1;

	for (n = 0; envp[n] != NULL; n++)
		;
	if ((names = calloc(n + 1, sizeof(*names))) == NULL)
		abort();
	for (i = 0; i < n; i++)
		names[i] = name_of(envp[i]);
	for (i = 0; envp[i] != NULL; i++) {
		if (!is_header(envp[i]))
			continue;
		count++;
		eq = strchr(envp[i], '=');
		approx += (size_t)(eq - envp[i]) + strlen(eq + 1) + 6;
		if ((size_t)(eq - envp[i]) >= 256 ||
		    !text_utf8_valid(envp[i], (size_t)(eq - envp[i])))
			names_ok = 0;
	}
	rc = req_headers_json(envp, max_count, max_bytes, &out, &why);
	INVARIANT(rc == 0 || rc == -1);
	if (rc == -1) {
		INVARIANT(out == NULL && why != NULL);
		goto done;
	}
	INVARIANT(out != NULL && why == NULL);
	INVARIANT(count <= max_count && names_ok && approx <= max_bytes);
	INVARIANT(strlen(out) <= max_bytes);
	obj = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
	INVARIANT(obj != NULL);
	INVARIANT(json_is_object(obj));
	INVARIANT(json_object_size(obj) <= count);
	json_object_foreach(obj, key, val) {
		INVARIANT(strncmp(key, "HTTP_", 5) == 0);
		INVARIANT(strcmp(key, "HTTP_PROXY") != 0);
		INVARIANT(strcmp(key, "HTTP_CONTENT_TYPE") != 0);
		INVARIANT(strcmp(key, "HTTP_CONTENT_LENGTH") != 0);
		INVARIANT(json_is_string(val));
		last = NULL;
		for (i = 0; i < n; i++)
			if (names[i] != NULL && strcmp(names[i], key) == 0)
				last = strchr(envp[i], '=') + 1;
		INVARIANT(last != NULL);
		if (text_utf8_valid(last, strlen(last)))
			INVARIANT(strcmp(json_string_value(val), last) == 0);
		else
			INVARIANT(json_string_length(val) > strlen(last));
	}
	for (i = 0; i < n; i++)
		if (is_header(envp[i]))
			INVARIANT(json_object_get(obj, names[i]) != NULL);
	json_decref(obj);
	free(out);
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void
check_body(const uint8_t *body, size_t blen, int have_length,
    uint64_t length, size_t max, size_t chunk, int broken)
{
	struct stream s = { body, blen, 0, chunk, 0, broken, 0 };
	void *got = (void *)1;
	size_t len = 7;
	enum req_body rc;

	rc = req_read_body(rd, &s, have_length, length, max, &got, &len);
	INVARIANT(s.total <= max + 1);
	if (have_length && length > max)
		INVARIANT(rc == REQ_BODY_TOO_BIG && s.total == 0);
	if (rc != REQ_BODY_OK)
		INVARIANT(got == NULL && len == 0);
	switch (rc) {
	case REQ_BODY_OK:
		INVARIANT(got != NULL && len <= max);
		INVARIANT(!broken && len == blen);
		INVARIANT(!have_length || len == length);
		INVARIANT(len == 0 || memcmp(got, body, len) == 0);
		free(got);
		break;
	case REQ_BODY_SHORT:
		INVARIANT(have_length && blen < length && !broken);
		break;
	case REQ_BODY_LONG:
		INVARIANT(have_length && blen > length);
		break;
	case REQ_BODY_TOO_BIG:
		INVARIANT((have_length && length > max) ||
		    (!have_length && blen > max));
		break;
	case REQ_BODY_BROKEN:
		INVARIANT(broken && s.ended);
		INVARIANT(!have_length || blen <= length);
		INVARIANT(have_length || blen <= max);
		break;
	case REQ_BODY_NOMEM:
	default:
		INVARIANT(!"unexpected verdict");
	}
}

/* The router's one parse and one check, against the embedded default
 * configuration (queue default, max_body 1 MiB). */
static void
check_parse(char **envp, int role)
{
	static struct config c;
	static int loaded;
	struct request rq;
	struct req_verdict v;
	const char *q;
	char err[256];
	int rc;

	if (!loaded) {
		INVARIANT(config_load(&c, NULL, err, sizeof(err)) == 0);
		loaded = 1;
	}
	req_parse(&rq, envp, role, WIRE_OK, "/jobs/");
	INVARIANT(rq.method == req_param(envp, "REQUEST_METHOD"));
	INVARIANT(rq.content_length == req_param(envp, "CONTENT_LENGTH"));
	q = req_param(envp, "FCGIQ_QUEUE");
	INVARIANT(strcmp(rq.queue, q != NULL && *q != '\0' ? q :
	    "default") == 0);
	INVARIANT(strlen(rq.id) == 0 || req_valid_id(rq.id));
	rq.now = 1796000000000LL;
	rc = req_check(&rq, &c, &v);
	if (rc == 0 && rq.route == REQ_ROUTE_ENQUEUE) {
		INVARIANT(rq.qc != NULL && rq.headers != NULL &&
		    (rq.key == NULL || strlen(rq.key) <= REQ_MAX_KEY));
		/* A schedule stays within its bounds, never before now. */
		INVARIANT(rq.priority >= REQ_PRIORITY_MIN &&
		    rq.priority <= REQ_PRIORITY_MAX);
		INVARIANT(rq.run_at == 0 || (rq.run_at > rq.now &&
		    rq.run_at <= rq.now + REQ_MAX_DELAY_MS));
	}
	if (rc != 0)
		INVARIANT((rc == 400 || rc == 404 || rc == 413 || rc == 414 ||
		    rc == 431 || rc == 500) && v.status == rc &&
		    v.error != NULL);
	req_free(&rq);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 1, 100, 16384, 65536 };
	const uint8_t *body;
	size_t blen, max, chunk, max_count, max_bytes;
	char **envp, id[STORE_ID_LEN + 1];
	const char *method, *uri, *prefix, *allow, *key;
	uint64_t length = 0;
	int rc, broken;
	json_t *j;

	if (size < 2)
		return 0;
	max = maxes[data[0] & 3];
	broken = (data[0] & 4) != 0;
	max_count = data[0] & 8 ? 4 : REQ_MAX_HEADERS;
	max_bytes = data[0] & 8 ? 512 : REQ_MAX_HEADERS_JSON;
	chunk = data[1];
	envp = fuzz_strings(data + 2, size - 2, 512, &body, &blen);

	/* As router_serve: route first. */
	method = req_param(envp, "REQUEST_METHOD");
	uri = req_param(envp, "REQUEST_URI");
	prefix = req_param(envp, "FCGIQ_STATUS_PREFIX");
	if (prefix == NULL || *prefix != '/' || strlen(prefix) > 256)
		prefix = "/jobs/";
	(void)req_route(method, uri != NULL ? uri : "", prefix, id, &allow);
	INVARIANT(strlen(id) == 0 || req_valid_id(id));
	(void)req_is_intake_method(method);

	rc = req_content_length(req_param(envp, "CONTENT_LENGTH"), &length);
	INVARIANT(rc == 0 || rc == 1 || rc == -1);
	INVARIANT(rc != 0 || length <= INT64_MAX);
	check_headers(envp, max_count, max_bytes);
	rc = req_idempotency_key(envp, req_param(envp, "FCGIQ_DEDUPE_HEADER"),
	    &key);
	INVARIANT(rc != 1 || (key != NULL && strlen(key) <= REQ_MAX_KEY));
	rc = req_content_length(req_param(envp, "CONTENT_LENGTH"), &length);
	if (rc != -1)
		check_body(body, blen, rc == 0, length, max, chunk, broken);

	/* UTF-8: ours against jansson's (which allows NUL in a length). */
	j = json_stringn(body != NULL ? (const char *)body : "", blen);
	INVARIANT(text_utf8_valid(body, blen) ==
	    (j != NULL && memchr(body, '\0', blen) == NULL));
	json_decref(j);
	check_parse(envp, data[0] & 16 ? FCGI_AUTHORIZER : FCGI_RESPONDER);
	fuzz_strings_free(envp);
	return 0;
}
