/*
 * response: the answers fcgiq gives, rendered as the CGI-style header block
 * plus a JSON body (jansson).  Every answer but a 304 carries Content-Type
 * and Content-Length: application/json; for errors RFC 9457 problem
 * details, application/problem+json {"type", "title", "status", "detail",
 * "error"}, "error" being the title as answers had it before; for a job's
 * result, the type its handler gave it.
 */
#ifndef FCGIQ_RESPONSE_H
#define FCGIQ_RESPONSE_H

#include <stddef.h>

#include <jansson.h>

struct store_job;

/*
 * Render status, extra header lines (each ending "\r\n", or NULL) and body
 * (NULL: none) into a malloc'd buffer, *len bytes.  head_only drops the
 * body but keeps its Content-Length.  NULL when out of memory.
 */
/* The same with the body already text (response_text(), or NULL). */
char	*response_render_text(int status, const char *headers,
	    const char *text, int head_only, size_t *len);
/* response_render_text() with another Content-Type than application/json. */
char	*response_render_type(int status, const char *type,
	    const char *headers, const char *text, int head_only, size_t *len);
/* body as response_render() sends it (without the final newline),
 * malloc'd; NULL when out of memory. */
char	*response_text(json_t *body);
char	*response_render(int status, const char *headers, json_t *body,
	    int head_only, size_t *len);

#define RESPONSE_PROBLEM	"application/problem+json"
#define RESPONSE_PROBLEM_URN	"urn:fcgiq:problem:"

/*
 * The problem details of an error: {"type": RESPONSE_PROBLEM_URN + the
 * error's words joined by '-' in lower case, "title": error, "status":
 * status, "detail": detail (error when NULL), "error": error}.  The one
 * place error bodies are built.  New reference, NULL when out of memory.
 */
json_t	*response_problem_json(int status, const char *error,
	    const char *detail);
/* That problem rendered as a whole answer (as response_render()), with
 * Content-Type application/problem+json; malloc'd, NULL when out of
 * memory. */
char	*response_problem(int status, const char *headers, const char *error,
	    const char *detail, int head_only, size_t *len);

/* The 202 body: {"id","queue","state","status_url"}.  New reference. */
json_t	*response_accepted_json(const char *id, const char *queue,
	    const char *state, const char *status_url);

/*
 * The whole accepted answer, status 202 or 200 (header block and body, as
 * response_render() would make it from response_accepted_json() plus a
 * Location header, and "replayed": true when replayed) written into buf
 * without an allocation.  Returns its length, or 0 when a string needs JSON
 * escaping or buf is too small: the caller then renders it with jansson.
 */
size_t	response_accepted(char *buf, size_t cap, int status, const char *id,
	    const char *queue, const char *state, const char *status_url,
	    int replayed);
/* The same with extra header lines (each ending "\r\n", or NULL). */
size_t	response_accepted_ex(char *buf, size_t cap, int status,
	    const char *id, const char *queue, const char *state,
	    const char *status_url, int replayed, const char *extra);

/*
 * The status body of job j: times as integer ms ("created_at") and as
 * ISO-8601 UTC ("created_at_iso"), null when unset; result as a string when
 * it is UTF-8 text, else base64 with "result_encoding": "base64".
 */
json_t	*response_job_json(const struct store_job *j, const char *status_url);

/*
 * The strong entity tag of a body's text (response_text()): a quoted hash
 * of its bytes, into buf (at least RESPONSE_ETAG_LEN bytes).
 */
#define RESPONSE_ETAG_LEN	19	/* '"', 16 hex digits, '"', NUL */
void	response_etag(const char *text, char *buf);

/* The 304 for etag into buf: its length, 0 when it does not fit. */
size_t	response_not_modified(char *buf, size_t cap, const char *etag);

/*
 * The media type a job's result is answered with: the one its handler
 * named (result_type) when it is one header line's worth of text; for a
 * result with none (exec:), text/plain; charset=utf-8 when it is UTF-8
 * text, else application/octet-stream.
 */
const char *response_result_type(const struct store_job *j);

/*
 * 200 with job j's result as its body, byte for byte, typed by
 * response_result_type(), with extra header lines (or NULL); head_only
 * keeps the Content-Length and drops the bytes.  j->result must not be
 * NULL.  malloc'd, *len bytes; NULL when out of memory.
 */
char	*response_result(const struct store_job *j, const char *headers,
	    int head_only, size_t *len);

/* "Accepted" for 202 and so on; "Unknown" for a code it does not know. */
const char *response_reason(int status);

#endif /* FCGIQ_RESPONSE_H */
