/*
 * response: render answers.  The header block follows the CGI response
 * rules the web server expects on FCGI_STDOUT ("Status: 202 Accepted",
 * header lines, an empty line), so nginx and Apache relay it unchanged.
 * Bodies are built with jansson, which escapes anything a client sent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "response.h"
#include "store.h"
#include "text.h"

const char *
response_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

char *
response_render_text(int status, const char *headers, const char *text,
    int head_only, size_t *len)
{
	return response_render_type(status, "application/json", headers,
	    text, head_only, len);
}

char *
response_render_type(int status, const char *type, const char *headers,
    const char *text, int head_only, size_t *len)
{
	char *buf;
	size_t tlen = 0, cap;
	int n;

	if (text != NULL)
		tlen = strlen(text) + 1;	/* with a final newline */
	if (headers == NULL)
		headers = "";
	cap = 160 + strlen(type) + strlen(headers) + tlen;
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	n = snprintf(buf, cap, "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s\r\n", status, response_reason(status), type, tlen, headers);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	if (text != NULL && !head_only) {
		memcpy(buf + *len, text, tlen - 1);
		buf[*len + tlen - 1] = '\n';
		*len += tlen;
	}
	return buf;
}

char *
response_render(int status, const char *headers, json_t *body, int head_only,
    size_t *len)
{
	char *text = NULL, *buf;

	if (body != NULL && (text = response_text(body)) == NULL)
		return NULL;
	buf = response_render_text(status, headers, text, head_only, len);
	free(text);
	return buf;
}

char *
response_text(json_t *body)
{
	return json_dumps(body, JSON_COMPACT);
}

/*
 * The problem type's URI: a fixed prefix and the error's words as a slug
 * ("queue full" -> "urn:fcgiq:problem:queue-full"), so every error,
 * today's and tomorrow's, has a stable type without a table to keep in
 * step.  A name, not a locator: nothing is served there (RFC 9457 3.1.1
 * allows that; fcgiq(8) lists them).
 */
static void
problem_type(const char *error, char *buf, size_t cap)
{
	size_t base, n;
	int gap = 0;
	char c;

	base = n = (size_t)snprintf(buf, cap, "%s", RESPONSE_PROBLEM_URN);
	for (; *error != '\0' && n + 2 < cap; error++) {
		c = *error;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
			gap = 1;
			continue;
		}
		if (gap && n > base)
			buf[n++] = '-';
		buf[n++] = c;
		gap = 0;
	}
	buf[n] = '\0';
}

json_t *
response_problem_json(int status, const char *error, const char *detail)
{
	char type[128];

	problem_type(error, type, sizeof(type));
	return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type,
	    "title", error, "status", status,
	    "detail", detail != NULL ? detail : error, "error", error);
}

char *
response_problem(int status, const char *headers, const char *error,
    const char *detail, int head_only, size_t *len)
{
	json_t *body;
	char *text, *buf;

	if ((body = response_problem_json(status, error, detail)) == NULL)
		return NULL;
	text = response_text(body);
	json_decref(body);
	if (text == NULL)
		return NULL;
	buf = response_render_type(status, RESPONSE_PROBLEM, headers, text,
	    head_only, len);
	free(text);
	return buf;
}

/* Text that JSON carries as it is: printable ASCII but '"' and '\\'. */
static int
json_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

/*
 * The 202 is every intake's answer: rendered by hand into the caller's
 * buffer, with no allocation, it costs a third of what json_pack +
 * json_dumps + response_render's two allocations cost.
 */
size_t
response_accepted(char *buf, size_t cap, int status, const char *id,
    const char *queue, const char *state, const char *status_url,
    int replayed)
{
	return response_accepted_ex(buf, cap, status, id, queue, state,
	    status_url, replayed, NULL);
}

size_t
response_accepted_ex(char *buf, size_t cap, int status, const char *id,
    const char *queue, const char *state, const char *status_url,
    int replayed, const char *extra)
{
	char body[1024];
	int blen, n;

	if (!json_plain(id) || !json_plain(queue) || !json_plain(state) ||
	    !json_plain(status_url))
		return 0;
	blen = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"queue\":\"%s\","
	    "\"state\":\"%s\",\"status_url\":\"%s\"%s}\n", id, queue, state,
	    status_url, replayed ? ",\"replayed\":true" : "");
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return 0;
	n = snprintf(buf, cap, "Status: %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %d\r\n"
	    "Cache-Control: no-store\r\n"
	    "Location: %s\r\n%s%s\r\n%s", status, response_reason(status),
	    blen, status_url,
	    replayed ? "Idempotent-Replayed: true\r\n" : "",
	    extra != NULL ? extra : "", body);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

/*
 * FNV-1a over the bytes sent: no secret to hide, only a change to tell,
 * and 64 bits make two states of one job colliding out of reach.  Hashing
 * the body (not chosen columns) changes the tag whenever anything a
 * client sees changes, which is what a strong tag promises.
 */
void
response_etag(const char *text, char *buf)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	for (p = text; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	snprintf(buf, RESPONSE_ETAG_LEN, "\"%016llx\"", (unsigned long long)h);
}

size_t
response_not_modified(char *buf, size_t cap, const char *etag)
{
	int n;

	n = snprintf(buf, cap, "Status: 304 Not Modified\r\n"
	    "ETag: %s\r\n"
	    "Cache-Control: no-store\r\n\r\n", etag);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

json_t *
response_accepted_json(const char *id, const char *queue, const char *state,
    const char *status_url)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "id", id, "queue", queue,
	    "state", state, "status_url", status_url);
}

/* Set key (ms) and key_iso (text), both null when ms is 0 (unset). */
static int
set_time(json_t *o, const char *key, long long ms)
{
	char iso[40], k[64];

	snprintf(k, sizeof(k), "%s_iso", key);
	if (ms == 0)
		return json_object_set_new(o, key, json_null()) |
		    json_object_set_new(o, k, json_null());
	text_iso8601(ms, iso, sizeof(iso));
	return json_object_set_new(o, key, json_integer(ms)) |
	    json_object_set_new(o, k, json_string(iso));
}

static json_t *
str_or_null(const char *s)
{
	json_t *v;

	if (s == NULL)
		return json_null();
	/* Stored text may come from anywhere (the CLI, a handler). */
	if ((v = json_string(s)) == NULL)
		v = json_string("(not UTF-8)");
	return v;
}

json_t *
response_job_json(const struct store_job *j, const char *status_url)
{
	json_t *o;
	unsigned char *b64 = NULL;
	int rc = 0;

	if ((o = json_object()) == NULL)
		return NULL;
	rc |= json_object_set_new(o, "id", json_string(j->id));
	rc |= json_object_set_new(o, "queue", str_or_null(j->queue));
	rc |= json_object_set_new(o, "state",
	    json_string(store_state_name(j->state)));
	rc |= json_object_set_new(o, "priority", json_integer(j->priority));
	rc |= json_object_set_new(o, "attempts", json_integer(j->attempts));
	rc |= json_object_set_new(o, "max_attempts",
	    json_integer(j->max_attempts));
	rc |= set_time(o, "created_at", j->created_at);
	rc |= set_time(o, "run_at", j->run_at);
	rc |= set_time(o, "started_at", j->started_at);
	rc |= set_time(o, "finished_at", j->finished_at);
	rc |= json_object_set_new(o, "last_error", str_or_null(j->last_error));
	if (j->result == NULL) {
		rc |= json_object_set_new(o, "result", json_null());
	} else if (text_utf8_valid(j->result, j->result_len)) {
		rc |= json_object_set_new(o, "result",
		    json_stringn(j->result, j->result_len));
	} else {
		if (j->result_len > (size_t)1 << 30 ||
		    (b64 = malloc(4 * ((j->result_len + 2) / 3) + 1)) == NULL)
			goto fail;
		EVP_EncodeBlock(b64, j->result, (int)j->result_len);
		rc |= json_object_set_new(o, "result", json_string((char *)b64));
		rc |= json_object_set_new(o, "result_encoding",
		    json_string("base64"));
		free(b64);
	}
	if (status_url != NULL)
		rc |= json_object_set_new(o, "status_url",
		    json_string(status_url));
	if (rc != 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

const char *
response_result_type(const struct store_job *j)
{
	const char *t = j->result_type;

	if (t != NULL && *t != '\0' && strlen(t) <= 255 &&
	    strpbrk(t, "\r\n") == NULL)
		return t;
	return text_utf8_valid(j->result, j->result_len) ?
	    "text/plain; charset=utf-8" : "application/octet-stream";
}

/*
 * nosniff and a sandbox: a result is what an upstream or a program wrote,
 * served from fcgiq's origin; a browser must neither guess it is HTML nor
 * run what an HTML result holds with that origin's rights.
 */
char *
response_result(const struct store_job *j, const char *headers,
    int head_only, size_t *len)
{
	const char *type = response_result_type(j);
	char *buf;
	size_t cap;
	int n;

	if (headers == NULL)
		headers = "";
	cap = 256 + strlen(type) + strlen(headers) +
	    (head_only ? 0 : j->result_len);
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	n = snprintf(buf, cap, "Status: 200 OK\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: sandbox\r\n"
	    "%s\r\n", type, j->result_len, headers);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	if (!head_only && j->result_len > 0) {
		memcpy(buf + *len, j->result, j->result_len);
		*len += j->result_len;
	}
	return buf;
}
