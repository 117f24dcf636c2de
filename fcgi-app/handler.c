/*
 * handler: serve one request.  The order of the checks is the contract:
 * everything that can be refused from the params alone (method, path,
 * queue, lengths, headers, idempotency key) is refused before a byte of
 * the body is read; the body is read whole and checked against
 * CONTENT_LENGTH; only then is the job handed to group commit, and 202 is
 * written only for a job whose COMMIT returned.  A broken stream or a short
 * body never reaches group commit, so no partial job can be stored.
 *
 * Reads (status) and cancels go through dbpool, not group commit: WAL
 * readers never wait for the writer, and a cancel is rare enough to take
 * the write lock on its own (within busy_timeout).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commit.h"
#include "config.h"
#include "dbpool.h"
#include "handler.h"
#include "log.h"
#include "request.h"
#include "response.h"
#include "server.h"
#include "store.h"
#include "wire.h"

struct confref {
	struct config	c;
	int		refs;
};

static pthread_mutex_t	 conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct confref	*conf_cur;

static struct confref *
conf_hold(void)
{
	struct confref *r;

	pthread_mutex_lock(&conf_lock);
	r = conf_cur;
	r->refs++;
	pthread_mutex_unlock(&conf_lock);
	return r;
}

static void
conf_release(struct confref *r)
{
	int last;

	pthread_mutex_lock(&conf_lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&conf_lock);
	if (last) {
		config_free(&r->c);
		free(r);
	}
}

int
handler_set_config(struct config *c)
{
	struct confref *r, *old;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->c = *c;
	r->refs = 1;		/* the reference of "running" */
	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&conf_lock);
	old = conf_cur;
	conf_cur = r;
	pthread_mutex_unlock(&conf_lock);
	if (old != NULL)
		conf_release(old);
	return 0;
}

void
handler_free(void)
{
	struct confref *old;

	pthread_mutex_lock(&conf_lock);
	old = conf_cur;
	conf_cur = NULL;
	pthread_mutex_unlock(&conf_lock);
	if (old != NULL)
		conf_release(old);
}

static ssize_t
body_read(void *ctx, void *buf, size_t len)
{
	return wire_read(ctx, buf, len);
}

/* What is answered when not even the answer could be made. */
static const char oom[] = "Status: 500 Internal Server Error\r\n"
    "Content-Type: application/json\r\n\r\n"
    "{\"error\":\"out of memory\"}\n";

/* Write an answer; a client that has gone away is not an error here. */
static void
answer(struct wire *r, int status, const char *headers, json_t *body,
    int head_only)
{
	char *buf;
	size_t len;

	if ((buf = response_render(status, headers, body, head_only,
	    &len)) == NULL || wire_put(r, buf, len) == -1)
		(void)wire_put(r, oom, sizeof(oom) - 1);
	free(buf);
}

/* A JSON error answer, rendered (malloc'd, NULL when out of memory) and
 * logged. */
static char *
render_error(int status, const char *headers, const char *error,
    const char *detail, int head_only, size_t *len)
{
	json_t *body = response_error_json(error, detail);
	char *buf;

	buf = response_render(status, headers, body, head_only, len);
	json_decref(body);
	if (status >= 500)
		log_warnx("request: %d: %s", status, error);
	else
		log_debug("request: %d: %s", status, error);
	return buf;
}

static void
answer_error(struct wire *r, int status, const char *headers,
    const char *error, const char *detail, int head_only)
{
	char *buf;
	size_t len;

	if ((buf = render_error(status, headers, error, detail, head_only,
	    &len)) == NULL || wire_put(r, buf, len) == -1)
		(void)wire_put(r, oom, sizeof(oom) - 1);
	free(buf);
}

/*
 * The 202 for job id: into abuf (cap bytes) when it fits, else rendered
 * through jansson (malloc'd: free it when it is not abuf).  NULL when out
 * of memory.
 */
static char *
render_accepted(const char *id, const char *queue, const char *state,
    const char *url, int replay, char *abuf, size_t cap, size_t *len)
{
	char hdrs[512], *buf;
	json_t *out;

	if ((*len = response_accepted(abuf, cap, id, queue, state, url,
	    replay)) > 0)
		return abuf;
	out = response_accepted_json(id, queue, state, url);
	if (replay)
		json_object_set_new(out, "replayed", json_true());
	snprintf(hdrs, sizeof(hdrs), "Location: %s\r\n%s", url,
	    replay ? "Idempotent-Replayed: true\r\n" : "");
	buf = response_render(202, hdrs, out, 0, len);
	json_decref(out);
	return buf;
}

static int
has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* The detail for a failed commit, for the client: no SQLite text. */
static const char *
commit_detail(const struct commit_result *res)
{
	switch (res->status) {
	case COMMIT_FULL:
		return "the queue holds max_queued jobs; retry later";
	case COMMIT_STOPPED:
		return "fcgiq is shutting down; retry";
	default:
		break;
	}
	switch (res->errcode) {
	case STORE_EBUSY:
		return "the database is busy; the job was not stored";
	case STORE_EFULL:
		return "the disk is full; the job was not stored";
	case STORE_EREADONLY:
		return "the database is read-only; the job was not stored";
	default:
		return "database error; the job was not stored";
	}
}

/* The 503 for a job the committer did not store: header and error. */
static const char *
failure_header(const struct commit_result *res, const char **error)
{
	*error = res->status == COMMIT_FULL ? "queue full" :
	    "queue unavailable";
	return res->status == COMMIT_FULL ? "Retry-After: 5\r\n" :
	    "Retry-After: 1\r\n";
}

/*
 * An enqueue answered by the committer thread (commit_submit_async): the
 * worker has gone on to the next request.  What the answer needs is copied
 * off the worker's buffers.
 */
struct later {
	struct wire_detached	 conn;
	struct store_newjob	 job;
	const char		*prefix;
	char			 strs[];	/* the job's strings, prefix */
};

static const char *
copy_str(char **p, const char *s)
{
	char *d = *p;

	if (s == NULL)
		return NULL;
	*p = stpcpy(d, s) + 1;
	return d;
}

static struct later *
later_new(const struct store_newjob *job, const char *prefix)
{
	const char *s[] = { job->queue, job->method, job->request_uri,
	    job->query_string, job->content_type, job->remote_addr, prefix };
	struct later *l;
	size_t i, n = 0;
	char *p;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		n += s[i] != NULL ? strlen(s[i]) + 1 : 0;
	if ((l = malloc(sizeof(*l) + n)) == NULL)
		return NULL;
	l->job = *job;
	p = l->strs;
	l->job.queue = copy_str(&p, job->queue);
	l->job.method = copy_str(&p, job->method);
	l->job.request_uri = copy_str(&p, job->request_uri);
	l->job.query_string = copy_str(&p, job->query_string);
	l->job.content_type = copy_str(&p, job->content_type);
	l->job.remote_addr = copy_str(&p, job->remote_addr);
	l->prefix = copy_str(&p, prefix);
	return l;
}

/* commit_done_fn: answer a detached enqueue (the committer thread). */
static void
answer_later(void *arg, struct store_newjob *job,
    const struct commit_result *res)
{
	struct later *l = arg;
	char abuf[2048], *url = NULL, *buf = NULL;
	const char *hdr, *error;
	size_t n = 0;
	int sent;

	if (res->status == COMMIT_OK && asprintf(&url, "%s%s", l->prefix,
	    job->id) != -1) {
		log_debug("request: job %s: queued in %s", job->id,
		    job->queue);
		buf = render_accepted(job->id, job->queue, "queued", url, 0,
		    abuf, sizeof(abuf), &n);
	} else if (res->status == COMMIT_OK)
		buf = render_error(500, NULL, "out of memory", NULL, 0, &n);
	else {
		hdr = failure_header(res, &error);
		buf = render_error(503, hdr, error, commit_detail(res), 0, &n);
	}
	sent = buf != NULL && wire_answer(&l->conn, buf, n) == 0;
	server_release(l->conn.fd, sent && l->conn.keep);
	if (buf != abuf)
		free(buf);
	free(url);
	free((void *)job->headers);
	free((void *)job->body);
	free(l);
}

static int
serve_enqueue(struct wire *r, const struct config *c, const char *prefix,
    const char *uri)
{
	char **envp = r->envp;
	const struct queue_conf *qc;
	const char *qname, *ctype, *key = NULL, *why, *method, *remote;
	char *headers = NULL, *status_url = NULL, *detail = NULL;
	char abuf[2048], *abody = NULL;
	void *body = NULL;
	size_t body_len = 0, n;
	uint64_t length = 0;
	int have_length, rc, replay = 0;
	struct store_newjob job;
	struct commit_result res;
	struct store_job *old = NULL;
	struct store *s;
	struct later *l;
	int detached = 0;

	qname = req_param(envp, "FCGIQ_QUEUE");
	if (qname == NULL || *qname == '\0')
		qname = "default";
	if ((qc = config_queue(c, qname)) == NULL) {
		answer_error(r, 404, NULL, "unknown queue", qname, 0);
		goto done;
	}
	rc = req_content_length(req_param(envp, "CONTENT_LENGTH"), &length);
	if (rc == -1) {
		answer_error(r, 400, NULL, "bad Content-Length",
		    "not a decimal number of bytes", 0);
		goto done;
	}
	have_length = rc == 0;
	if (have_length && length > c->max_body) {
		answer_error(r, 413, NULL, "body too large",
		    "over the max_body limit", 0);
		goto done;
	}
	ctype = req_param(envp, "CONTENT_TYPE");
	if (ctype != NULL && (strlen(ctype) > REQ_MAX_CONTENT_TYPE ||
	    has_crlf(ctype))) {
		answer_error(r, 400, NULL, "bad Content-Type", "too long", 0);
		goto done;
	}
	rc = req_headers_json(envp, REQ_MAX_HEADERS, REQ_MAX_HEADERS_JSON,
	    &headers, &why);
	if (rc == -1) {
		answer_error(r, 431, NULL, "header fields too large", why, 0);
		goto done;
	}
	if (rc == -2) {
		answer_error(r, 500, NULL, "out of memory", NULL, 0);
		goto done;
	}
	if (req_idempotency_key(envp, req_param(envp, "FCGIQ_DEDUPE_HEADER"),
	    &key) == -1) {
		answer_error(r, 400, NULL, "bad idempotency key",
		    "1-255 printable ASCII characters", 0);
		goto done;
	}

	switch (req_read_body(body_read, r, have_length, length,
	    c->max_body, &body, &body_len)) {
	case REQ_BODY_OK:
		break;
	case REQ_BODY_SHORT:
		answer_error(r, 400, NULL, "incomplete body",
		    "the body ended before Content-Length", 0);
		goto done;
	case REQ_BODY_LONG:
		answer_error(r, 400, NULL, "body longer than Content-Length",
		    NULL, 0);
		goto done;
	case REQ_BODY_TOO_BIG:
		answer_error(r, 413, NULL, "body too large",
		    "over the max_body limit", 0);
		goto done;
	case REQ_BODY_BROKEN:
		/* The client went away (then nobody reads this), stalled
		 * past the I/O timeout or aborted; nothing is stored, and
		 * the connection is not reused. */
		answer_error(r, 400, NULL, "incomplete body",
		    "the request stream broke before its end", 0);
		goto done;
	case REQ_BODY_NOMEM:
		answer_error(r, 500, NULL, "out of memory", NULL, 0);
		goto done;
	}

	method = req_param(envp, "REQUEST_METHOD");
	remote = req_param(envp, "REMOTE_ADDR");
	memset(&job, 0, sizeof(job));
	job.queue = qc->name;
	job.priority = qc->priority;
	job.max_attempts = qc->max_attempts;
	job.idempotency_key = key;
	job.method = method;
	job.request_uri = uri;
	job.query_string = req_param(envp, "QUERY_STRING");
	job.content_type = ctype;
	job.remote_addr = remote;
	job.headers = headers;
	job.body = body;
	job.body_len = body_len;
	/*
	 * No replay to look up: the committer answers, and this thread goes
	 * on to the next request.  Also on a kept connection (which then
	 * goes back to the poller): a worker waiting for its commit there
	 * left the new connections unaccepted while it lingered, and with
	 * nginx's keepalive pool some waited a second (p99 0.5-0.9 s at
	 * c=64 with 32 threads, 14 ms now).
	 */
	if (key == NULL && (l = later_new(&job, prefix)) != NULL) {
		if (wire_detach(r, &l->conn) == 0) {
			headers = NULL;		/* the committer's now */
			body = NULL;
			commit_submit_async(&l->job, qc->max_queued,
			    answer_later, l);
			detached = 1;
			goto done;
		}
		free(l);
	}
	server_blocking();	/* through the commit: others are accepted */
	commit_submit(&job, qc->max_queued, &res);
	if (res.status != COMMIT_OK) {
		const char *hdr, *error;

		hdr = failure_header(&res, &error);
		answer_error(r, 503, hdr, error, commit_detail(&res), 0);
		goto done;
	}

	n = strlen(prefix) + STORE_ID_LEN + 1;
	if ((status_url = malloc(n)) == NULL) {
		answer_error(r, 500, NULL, "out of memory", NULL, 0);
		goto done;
	}
	snprintf(status_url, n, "%s%s", prefix, job.id);
	if (job.outcome == STORE_ENQ_CONFLICT) {
		if (asprintf(&detail, "the key was used for job %s with a "
		    "different body", job.id) == -1)
			detail = NULL;
		answer_error(r, 422, NULL, "idempotency key reused",
		    detail, 0);
		goto done;
	}
	replay = job.outcome == STORE_ENQ_DUPLICATE;
	if (replay) {
		/* The first job's state, not "queued": it may be done. */
		s = dbpool_get();
		if (store_get(s, job.id, &old) != 1)
			old = NULL;
		dbpool_put(s);
	}
	if ((abody = render_accepted(job.id, qc->name, old != NULL ?
	    store_state_name(old->state) : "queued", status_url, replay, abuf, sizeof(abuf),
	    &n)) == NULL || wire_put(r, abody, n) == -1)
		answer_error(r, 500, NULL, "out of memory", NULL, 0);
	if (abody != abuf)
		free(abody);
	log_debug("request: job %s: %s in %s", job.id,
	    replay ? "replayed" : "queued", qc->name);
	goto done;
done:
	store_job_free(old);
	free(detail);
	free(status_url);
	free(headers);
	free(body);
	return detached ? SERVER_DETACHED : 0;
}

static void
serve_status(struct wire *r, const char *prefix, const char *id,
    int head_only)
{
	struct store *s;
	struct store_job *job = NULL;
	json_t *out;
	char url[512];
	int rc;

	s = dbpool_get();
	rc = store_get(s, id, &job);
	if (rc == -1)
		log_warnx("request: status %s: %s", id, store_error(s));
	dbpool_put(s);
	if (rc == -1) {
		answer_error(r, 503, "Retry-After: 1\r\n", "queue unavailable",
		    "the job could not be read; retry", head_only);
		return;
	}
	if (rc == 0) {
		answer_error(r, 404, NULL, "no such job", id, head_only);
		return;
	}
	snprintf(url, sizeof(url), "%s%s", prefix, id);
	if ((out = response_job_json(job, url)) == NULL)
		answer_error(r, 500, NULL, "out of memory", NULL, head_only);
	else
		answer(r, 200, NULL, out, head_only);
	json_decref(out);
	store_job_free(job);
}

static void
serve_cancel(struct wire *r, const char *id)
{
	struct store *s;
	struct store_job *job = NULL;
	char detail[128];
	int rc;

	server_blocking();	/* the write lock may be held: busy_timeout */
	s = dbpool_get();
	rc = store_cancel(s, id, store_now());
	if (rc == -1)
		log_warnx("request: cancel %s: %s", id, store_error(s));
	if (rc == STORE_CANCEL_REFUSED && store_get(s, id, &job) != 1)
		job = NULL;
	dbpool_put(s);
	switch (rc) {
	case STORE_CANCEL_DONE:
		answer(r, 204, NULL, NULL, 0);
		log_debug("request: job %s: cancelled", id);
		break;
	case STORE_CANCEL_UNKNOWN:
		answer_error(r, 404, NULL, "no such job", id, 0);
		break;
	case STORE_CANCEL_REFUSED:
		snprintf(detail, sizeof(detail), "job %s is %s", id,
		    job != NULL ? store_state_name(job->state) : "started");
		answer_error(r, 409, NULL, "not cancellable", detail, 0);
		break;
	default:
		answer_error(r, 503, "Retry-After: 1\r\n", "queue unavailable",
		    "the job could not be cancelled; retry", 0);
		break;
	}
	store_job_free(job);
}

int
handler_serve(struct wire *r)
{
	struct confref *cr = conf_hold();
	const struct config *c = &cr->c;
	const char *method, *uri, *prefix, *allow;
	char id[STORE_ID_LEN + 1], hdr[64];
	enum req_route route;
	int rc = 0;

	method = req_param(r->envp, "REQUEST_METHOD");
	uri = req_param(r->envp, "REQUEST_URI");
	if (uri == NULL)
		uri = "";
	prefix = req_param(r->envp, "FCGIQ_STATUS_PREFIX");
	if (prefix == NULL || *prefix != '/' || strlen(prefix) > 256 ||
	    has_crlf(prefix))
		prefix = c->status_prefix;
	/* fcgiq is a responder: an AUTHORIZER or FILTER request would be
	 * stored as a job no web server meant to send (found by the
	 * adversary in tests/hostile). */
	if (r->role != FCGI_RESPONDER) {
		answer_error(r, 400, NULL, "only the FastCGI responder role is "
		    "served", NULL, 0);
		goto done;
	}
	switch (r->bad) {
	case WIRE_OK:
		break;
	case WIRE_BAD_PARAM:
		/* A NUL cuts "NAME=value" short for every C string reader,
		 * an '=' in a name moves where the value starts: either way
		 * a request that means two things. */
		answer_error(r, 400, NULL, "bad FastCGI parameter",
		    "a NUL byte in a name or value, or '=' in a name", 0);
		goto done;
	case WIRE_BAD_TOO_LARGE:
		answer_error(r, 431, NULL, "header fields too large",
		    "the FastCGI params are over 1 MiB", 0);
		goto done;
	}
	if (strlen(uri) > REQ_MAX_URI) {
		answer_error(r, 414, NULL, "URI too long", NULL, 0);
		goto done;
	}
	route = req_route(method, uri, prefix, id, &allow);
	switch (route) {
	case REQ_ROUTE_ENQUEUE:
		rc = serve_enqueue(r, c, prefix, uri);
		break;
	case REQ_ROUTE_STATUS:
	case REQ_ROUTE_STATUS_HEAD:
		serve_status(r, prefix, id, route == REQ_ROUTE_STATUS_HEAD);
		break;
	case REQ_ROUTE_CANCEL:
		serve_cancel(r, id);
		break;
	case REQ_ROUTE_NO_JOB:
		answer_error(r, 404, NULL, "no such job", NULL,
		    method != NULL && strcmp(method, "HEAD") == 0);
		break;
	case REQ_ROUTE_BAD_METHOD:
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		answer_error(r, 405, hdr, "method not allowed",
		    method != NULL && !has_crlf(method) && strlen(method) < 32 ?
		    method : NULL,
		    method != NULL && strcmp(method, "HEAD") == 0);
		break;
	}
done:
	conf_release(cr);
	return rc;
}
