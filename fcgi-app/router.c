/*
 * router: serve one request.  The params are read once into a struct
 * request (req_parse) and checked once (req_check); the router decides
 * from that struct alone: enqueue, status, cancel, 404 or 405.  The order
 * of the checks is the contract: everything that can be refused from the
 * params alone (method, path, queue, lengths, headers, idempotency key) is
 * refused before a byte of the body is read; the body is read whole and
 * checked against CONTENT_LENGTH; only then is the job handed to group
 * commit, and 202 is written only for a job whose COMMIT returned.  A
 * broken stream or a short body never reaches group commit, so no partial
 * job can be stored.
 *
 * Reads (status) and cancels go through dbpool, not group commit: WAL
 * readers never wait for the writer, and a cancel is rare enough to take
 * the write lock on its own (within busy_timeout).
 *
 * Prefer: wait=N (RFC 7240) on a status read of an unfinished job, or on
 * an intake once its job is committed: the request is detached and parked
 * (park.c) until the job is final or N seconds (at most max_wait) have
 * passed; wait_render() makes its answer then.  Every answer made under
 * the preference says so: Preference-Applied: wait=N, N as applied.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commit.h"
#include "config.h"
#include "dashboard.h"
#include "dbpool.h"
#include "eta.h"
#include "log.h"
#include "metrics.h"
#include "park.h"
#include "request.h"
#include "response.h"
#include "router.h"
#include "scrape.h"
#include "server.h"
#include "store.h"
#include "text.h"
#include "verify.h"
#include "wire.h"

static pthread_mutex_t	 conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config_ref *conf_cur;	/* the reference of "running" */

/* A hold on the running configuration, for one request. */
static struct config_ref *
conf_hold(void)
{
	struct config_ref *r;

	pthread_mutex_lock(&conf_lock);
	r = config_ref(conf_cur);
	pthread_mutex_unlock(&conf_lock);
	return r;
}

/* Make r (or NULL) the running configuration; requests in flight keep the
 * old one until they end. */
static void
conf_swap(struct config_ref *r)
{
	struct config_ref *old;

	pthread_mutex_lock(&conf_lock);
	old = conf_cur;
	conf_cur = r;
	pthread_mutex_unlock(&conf_lock);
	config_unref(old);
}

int
router_set_config(struct config *c)
{
	struct config_ref *r;

	if ((r = config_ref_new(c)) == NULL)
		return -1;
	conf_swap(r);
	return 0;
}

void
router_free(void)
{
	conf_swap(NULL);
}

static ssize_t
body_read(void *ctx, void *buf, size_t len)
{
	return wire_read(ctx, buf, len);
}

/* What is answered when not even the answer could be made. */
static const char oom[] = "Status: 500 Internal Server Error\r\n"
    "Content-Type: " RESPONSE_PROBLEM "\r\n\r\n"
    "{\"type\":\"" RESPONSE_PROBLEM_URN "out-of-memory\","
    "\"title\":\"out of memory\",\"status\":500,"
    "\"detail\":\"out of memory\",\"error\":\"out of memory\"}\n";

/* answer() with the body already text (NULL: none): the status answer
 * hashes it for its ETag and sends the same bytes. */
static void
answer_text(struct wire *r, int status, const char *headers,
    const char *text, int head_only)
{
	char *buf;
	size_t len;

	if ((buf = response_render_text(status, headers, text, head_only,
	    &len)) == NULL || wire_put(r, buf, len) == -1)
		(void)wire_put(r, oom, sizeof(oom) - 1);
	free(buf);
}

/* Write an answer; a client that has gone away is not an error here. */
static void
answer(struct wire *r, int status, const char *headers, json_t *body,
    int head_only)
{
	char *text = NULL;

	if (body != NULL && (text = response_text(body)) == NULL) {
		(void)wire_put(r, oom, sizeof(oom) - 1);
		return;
	}
	answer_text(r, status, headers, text, head_only);
	free(text);
}

/* An error answer (RFC 9457 problem details), rendered (malloc'd, NULL
 * when out of memory) and logged. */
static char *
render_error(int status, const char *headers, const char *error,
    const char *detail, int head_only, size_t *len)
{
	char *buf;

	buf = response_problem(status, headers, error, detail, head_only, len);
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
 * The accepted answer (status: 202, or 200 where the location asks) for
 * job id: into abuf (cap bytes) when it fits, else rendered through
 * jansson (malloc'd: free it when it is not abuf).  NULL when out of
 * memory.
 */
static char *
render_accepted(int status, const char *id, const char *queue,
    const char *state, const char *url, int replay, const char *extra,
    char *abuf, size_t cap, size_t *len)
{
	char hdrs[512], *buf;
	json_t *out;

	if (extra == NULL)
		extra = "";
	if ((*len = response_accepted_ex(abuf, cap, status, id, queue, state,
	    url, replay, extra)) > 0)
		return abuf;
	out = response_accepted_json(id, queue, state, url);
	if (replay)
		json_object_set_new(out, "replayed", json_true());
	snprintf(hdrs, sizeof(hdrs), "Location: %s\r\n%s%s", url,
	    replay ? "Idempotent-Replayed: true\r\n" : "", extra);
	buf = response_render(status, hdrs, out, 0, len);
	json_decref(out);
	return buf;
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

/*
 * "Retry-After: N\r\n" into buf (at least RETRY_AFTER_LEN bytes) for a
 * job of queue that has not finished: the time ahead jobs (-1: the
 * queue's waiting jobs) take to drain (eta.c), and not before run_at.
 */
#define RETRY_AFTER_LEN	40
static const char *
retry_after(char *buf, const char *queue, int64_t ahead, int64_t run_at)
{
	int64_t now = store_now(), s = eta_seconds(queue, ahead), d;

	if (run_at > now && (d = (run_at - now + 999) / 1000) > s)
		s = d;
	snprintf(buf, RETRY_AFTER_LEN, "Retry-After: %lld\r\n",
	    (long long)s);
	return buf;
}

/*
 * The 503 for a job of queue the committer did not store: header (into
 * buf, RETRY_AFTER_LEN bytes) and error.  A full queue has room again
 * once it drains; estimated the way a 202's Retry-After is, so a sender
 * comes back when the jobs now waiting are through, not all at once.
 */
static const char *
failure_header(const struct commit_result *res, const char *queue,
    char *buf, const char **error)
{
	*error = res->status == COMMIT_FULL ? "queue full" :
	    "queue unavailable";
	return res->status == COMMIT_FULL ? retry_after(buf, queue, -1, 0) :
	    "Retry-After: 1\r\n";
}

/*
 * Retry-After (into buf) for a job of queue in state, due at run_at: a
 * waiting job waits for the queue's depth to drain, a running one for
 * about one job's turn; NULL for a final state (nothing to wait for).
 */
static const char *
status_retry_after(char *buf, enum store_state state, const char *queue,
    int64_t run_at)
{
	switch (state) {
	case STORE_JOB_QUEUED:
	case STORE_JOB_RETRY:
		return retry_after(buf, queue, -1, run_at);
	case STORE_JOB_RUNNING:
		return retry_after(buf, queue, 1, 0);
	default:
		return NULL;
	}
}

/* ------------------------------------------------------------ waiting */

enum { WAIT_STATUS, WAIT_INTAKE };

/* What a parked request's answer needs (park_add's arg, one allocation). */
struct waitreq {
	int	 kind;
	int	 head_only;
	int	 applied;		/* seconds, for Preference-Applied */
	int	 accept_status;		/* intake: 202 or 200 */
	int	 replayed;		/* intake: an idempotency key's repeat */
	char	 id[STORE_ID_LEN + 1];
	char	*queue;			/* intake: into strs */
	char	*prefix;		/* into strs */
	char	 strs[];
};

/* The seconds a request with rq's Prefer header waits: 0 for none. */
static int
wait_seconds(const struct request *rq, const struct config *c)
{
	int n = req_prefer_wait(rq->prefer);

	if (n < 1 || c->max_wait_ms < 1000)
		return 0;
	return n > c->max_wait_ms / 1000 ? (int)(c->max_wait_ms / 1000) : n;
}

static struct waitreq *
waitreq_new(int kind, int head_only, int applied, int accept_status,
    const char *id, const char *queue, const char *prefix)
{
	struct waitreq *wr;
	size_t ql = queue != NULL ? strlen(queue) + 1 : 0, pl;

	pl = strlen(prefix) + 1;
	if ((wr = calloc(1, sizeof(*wr) + ql + pl)) == NULL)
		return NULL;
	wr->kind = kind;
	wr->head_only = head_only;
	wr->applied = applied;
	wr->accept_status = accept_status;
	snprintf(wr->id, sizeof(wr->id), "%s", id);
	wr->prefix = wr->strs;
	memcpy(wr->prefix, prefix, pl);
	if (queue != NULL) {
		wr->queue = wr->strs + pl;
		memcpy(wr->queue, queue, ql);
	}
	return wr;
}

static int
state_final(enum store_state st)
{
	return st == STORE_JOB_DONE || st == STORE_JOB_DEAD ||
	    st == STORE_JOB_CANCELLED;
}

/*
 * park_answer_fn: the answer to a parked request.  A status read gets the
 * job's status (404 when it went meanwhile, 503 when it cannot be read);
 * an intake gets the status, with Location, once the job is final, else
 * the accepted answer with the job's state now (also when it cannot be
 * read: the job is stored, and a 503 would invite a second one).
 */
static char *
wait_render(void *arg, const struct store_job *job, int rc, size_t *len)
{
	struct waitreq *wr = arg;
	char hdr[704], url[512], etag[RESPONSE_ETAG_LEN], *text = NULL;
	char ra[RETRY_AFTER_LEN], *buf = NULL;
	const char *extra = NULL;
	json_t *out = NULL;
	int n;

	snprintf(url, sizeof(url), "%s%s", wr->prefix, wr->id);
	if (rc == 0 || (rc == -1 && wr->kind == WAIT_STATUS))
		return render_error(rc == 0 ? 404 : 503, rc == 0 ? NULL :
		    "Retry-After: 1\r\n", rc == 0 ? "no such job" :
		    "queue unavailable", rc == 0 ? wr->id :
		    "the job could not be read; retry", wr->head_only, len);
	if (rc == 1)
		extra = status_retry_after(ra, job->state, job->queue,
		    job->run_at);
	if (wr->kind == WAIT_INTAKE && (rc == -1 || !state_final(job->state))) {
		snprintf(hdr, sizeof(hdr), "Location: %s\r\n%s%s"
		    "Preference-Applied: wait=%d\r\n", url, wr->replayed ?
		    "Idempotent-Replayed: true\r\n" : "", extra != NULL ?
		    extra : "", wr->applied);
		out = response_accepted_json(wr->id, wr->queue, rc == 1 ?
		    store_state_name(job->state) : "queued", url);
		if (wr->replayed)
			json_object_set_new(out, "replayed", json_true());
		buf = response_render(wr->accept_status, hdr, out, 0, len);
		json_decref(out);
		return buf;
	}
	if ((out = response_job_json(job, url)) == NULL ||
	    (text = response_text(out)) == NULL)
		goto done;
	response_etag(text, etag);
	n = snprintf(hdr, sizeof(hdr), "ETag: %s\r\n%s"
	    "Preference-Applied: wait=%d\r\n", etag, extra != NULL ? extra :
	    "", wr->applied);
	if (wr->kind == WAIT_INTAKE && n > 0 && (size_t)n < sizeof(hdr))
		snprintf(hdr + n, sizeof(hdr) - (size_t)n,
		    "Location: %s\r\n%s", url, wr->replayed ?
		    "Idempotent-Replayed: true\r\n" : "");
	buf = response_render_text(200, hdr, text, wr->head_only, len);
done:
	free(text);
	json_decref(out);
	return buf;
}

/*
 * Park r (whose body is read to its end first: a GET brings an empty
 * one) until job id is final or wr->applied seconds have passed.  1:
 * parked, r detached, wr the park's; 0: not, r and wr still the
 * caller's (answer at once).
 */
static int
park_request(struct wire *r, struct waitreq *wr)
{
	struct wire_detached d;
	char buf[512];
	size_t total = 0;
	ssize_t n;

	while ((n = wire_read(r, buf, sizeof(buf))) > 0)
		if ((total += (size_t)n) > SERVER_DRAIN_MAX)
			return 0;
	if (n == -1 || wire_detach(r, &d) == -1)
		return 0;
	if (park_add(&d, wr->id, (int64_t)wr->applied * 1000, wait_render,
	    wr) == 0)
		return 1;
	wire_reattach(r, &d);
	return 0;
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
	int			 accept_status;	/* 202 or 200 */
	int			 wait_s;	/* Prefer: wait, applied */
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
later_new(const struct store_newjob *job, const char *prefix,
    int accept_status)
{
	const char *s[] = { job->queue, job->method, job->request_uri,
	    job->query_string, job->content_type, job->remote_addr, prefix,
	    job->idempotency_key, job->serial_key };
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
	l->job.idempotency_key = copy_str(&p, job->idempotency_key);
	l->job.serial_key = copy_str(&p, job->serial_key);
	l->accept_status = accept_status;
	l->wait_s = 0;
	return l;
}

/* The state of the first job of a replayed key, into buf: it may be done
 * by now.  "queued" when it cannot be read. */
static const char *
replay_state(const char *id, char *buf, size_t len)
{
	struct store_job *old = NULL;
	struct store *s;

	s = dbpool_get();
	if (store_get(s, id, &old) != 1)
		old = NULL;
	dbpool_put(s);
	snprintf(buf, len, "%s", old != NULL ? store_state_name(old->state) :
	    "queued");
	store_job_free(old);
	return buf;
}

/* The 422 for a key used before with another body (job id): rendered,
 * malloc'd, or NULL. */
static char *
conflict_answer(const char *id, size_t *len)
{
	char detail[128];

	snprintf(detail, sizeof(detail), "the key was used for job %s with a "
	    "different body", id);
	return render_error(422, NULL, "idempotency key reused", detail, 0,
	    len);
}

/* commit_done_fn: answer a detached enqueue (the committer thread). */
static void
answer_later(void *arg, struct store_newjob *job,
    const struct commit_result *res)
{
	struct later *l = arg;
	char abuf[2048], ra[RETRY_AFTER_LEN], *url = NULL, *buf = NULL;
	char state[16];
	const char *hdr, *error, *st;
	enum store_state old = STORE_JOB_QUEUED;
	struct waitreq *wr;
	size_t n = 0;
	int sent, replay;

	/* Durable first, then the wait: the park answers it (a replay's
	 * first job may be final already: its first look answers at once). */
	if (res->status == COMMIT_OK && l->wait_s > 0 &&
	    job->outcome != STORE_ENQ_CONFLICT &&
	    (wr = waitreq_new(WAIT_INTAKE, 0, l->wait_s, l->accept_status,
	    job->id, job->queue, l->prefix)) != NULL) {
		wr->replayed = job->outcome == STORE_ENQ_DUPLICATE;
		if (park_add(&l->conn, job->id, (int64_t)l->wait_s * 1000,
		    wait_render, wr) == 0) {
			log_debug("request: job %s: queued in %s, waited on",
			    job->id, job->queue);
			goto done;
		}
		free(wr);
	}
	if (res->status == COMMIT_OK && job->outcome == STORE_ENQ_CONFLICT)
		buf = conflict_answer(job->id, &n);
	else if (res->status == COMMIT_OK && asprintf(&url, "%s%s", l->prefix,
	    job->id) != -1) {
		replay = job->outcome == STORE_ENQ_DUPLICATE;
		log_debug("request: job %s: %s in %s", job->id,
		    replay ? "replayed" : "queued", job->queue);
		st = replay ? replay_state(job->id, state, sizeof(state)) :
		    "queued";
		if (replay)
			(void)store_state_parse(st, &old);
		buf = render_accepted(l->accept_status, job->id, job->queue,
		    st, url, replay, status_retry_after(ra, old, job->queue,
		    job->run_at), abuf, sizeof(abuf), &n);
	} else if (res->status == COMMIT_OK)
		buf = render_error(500, NULL, "out of memory", NULL, 0, &n);
	else {
		hdr = failure_header(res, job->queue, ra, &error);
		buf = render_error(503, hdr, error, commit_detail(res), 0, &n);
	}
	sent = buf != NULL && wire_answer(&l->conn, buf, n) == 0;
	server_release(l->conn.fd, sent && l->conn.keep);
	if (buf != abuf)
		free(buf);
	free(url);
done:
	free((void *)job->headers);
	free((void *)job->body);
	free(l);
}

/* The answer to each way reading a body fails (enum req_body). */
static const struct {
	int		 status;
	const char	*error;
	const char	*detail;
} body_refusal[] = {
	[REQ_BODY_SHORT] = { 400, "incomplete body",
	    "the body ended before Content-Length" },
	[REQ_BODY_LONG] = { 400, "body longer than Content-Length",
	    "more bytes arrived than Content-Length declared" },
	[REQ_BODY_TOO_BIG] = { 413, "body too large",
	    "over the max_body limit" },
	/* The client went away (then nobody reads this), stalled past the
	 * I/O timeout or aborted; nothing is stored, and the connection is
	 * not reused. */
	[REQ_BODY_BROKEN] = { 400, "incomplete body",
	    "the request stream broke before its end" },
	[REQ_BODY_NOMEM] = { 500, "out of memory", NULL },
};

/*
 * Read the body whole.  0: *body (malloc'd) and *len set; -1: refused,
 * and answered.
 */
static int
read_body(struct wire *r, const struct request *rq, size_t max,
    void **body, size_t *len)
{
	enum req_body rc;

	rc = req_read_body(body_read, r, rq->have_length, rq->length, max,
	    body, len);
	if (rc == REQ_BODY_OK)
		return 0;
	answer_error(r, body_refusal[rc].status, NULL, body_refusal[rc].error,
	    body_refusal[rc].detail, 0);
	return -1;
}

/* The job of a checked intake: its strings stay rq's, body is the
 * caller's. */
static void
job_fill(struct store_newjob *job, const struct request *rq,
    const void *body, size_t body_len)
{
	memset(job, 0, sizeof(*job));
	job->queue = rq->qc->name;
	job->priority = rq->priority;
	job->run_at = rq->run_at;
	job->max_attempts = rq->qc->max_attempts;
	job->idempotency_key = rq->key;
	job->method = rq->method;
	job->request_uri = rq->uri;
	job->query_string = rq->query;
	job->content_type = rq->content_type;
	job->remote_addr = rq->remote_addr;
	job->headers = rq->headers;
	job->body = body;
	job->body_len = body_len;
}

/*
 * Hand job to the committer, which answers it (answer_later) and frees
 * its headers and body.  0, or -1 when r cannot be detached (nothing was
 * taken).
 */
static int
enqueue_detached(struct wire *r, const struct request *rq,
    const struct store_newjob *job, int wait_s)
{
	struct later *l;

	if ((l = later_new(job, rq->prefix, rq->accept_status)) == NULL)
		return -1;
	l->wait_s = wait_s;
	if (wire_detach(r, &l->conn) == -1) {
		free(l);
		return -1;
	}
	commit_submit_async(&l->job, rq->qc->max_queued, answer_later, l);
	return 0;
}

/*
 * Commit job while this thread waits, and answer: 202 or 200 (or the first job's
 * state for a replayed idempotency key), 422 for a key reused with another
 * body, 503 when not stored.  job is a copy: the caller keeps its buffers.
 */
static int
enqueue_wait(struct wire *r, const struct request *rq,
    struct store_newjob job, int wait_s)
{
	const struct queue_conf *qc = rq->qc;
	const char *prefix = rq->prefix;
	char *status_url = NULL, *detail = NULL, abuf[2048], *abody = NULL;
	char ra[RETRY_AFTER_LEN];
	const char *extra;
	struct commit_result res;
	struct store_job *old = NULL;
	struct store *s;
	struct waitreq *wr;
	size_t n;
	int replay = 0, rc = 0;

	server_blocking();	/* through the commit: others are accepted */
	commit_submit(&job, qc->max_queued, &res);
	if (res.status != COMMIT_OK) {
		const char *hdr, *error;

		hdr = failure_header(&res, qc->name, ra, &error);
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
	/* A replay's first job may be final already: the park's first look
	 * answers it at once. */
	if (wait_s > 0 && (wr = waitreq_new(WAIT_INTAKE, 0, wait_s,
	    rq->accept_status, job.id, qc->name, prefix)) != NULL) {
		wr->replayed = replay;
		if (park_request(r, wr)) {
			rc = SERVER_DETACHED;
			goto done;
		}
		free(wr);
	}
	if (replay) {
		/* The first job's state, not "queued": it may be done. */
		s = dbpool_get();
		if (store_get(s, job.id, &old) != 1)
			old = NULL;
		dbpool_put(s);
	}
	extra = status_retry_after(ra, old != NULL ? old->state :
	    STORE_JOB_QUEUED, qc->name, old != NULL ? old->run_at : job.run_at);
	if ((abody = render_accepted(rq->accept_status, job.id, qc->name,
	    old != NULL ? store_state_name(old->state) : "queued",
	    status_url, replay, extra, abuf, sizeof(abuf), &n)) == NULL ||
	    wire_put(r, abody, n) == -1)
		answer_error(r, 500, NULL, "out of memory", NULL, 0);
	if (abody != abuf)
		free(abody);
	log_debug("request: job %s: %s in %s", job.id,
	    replay ? "replayed" : "queued", qc->name);
done:
	store_job_free(old);
	free(detail);
	free(status_url);
	return rc;
}

/*
 * headers (JSON text) with the value of the signature header cut to its
 * first characters, for the rejected table: a signature, even a wrong
 * one, is not kept whole.  malloc'd; NULL when out of memory or headers
 * is NULL.
 */
static char *
redacted_headers(const struct queue_conf *q, const char *headers)
{
	char name[VERIFY_HEADER_MAX + 8], cut[64];
	const char *h = verify_signature_header(&q->verify), *v;
	json_t *obj, *val;
	char *out;

	if (headers == NULL || (obj = json_loads(headers, 0, NULL)) == NULL)
		return NULL;
	if (h != NULL && text_cgi_name(h, name, sizeof(name)) == 0 &&
	    (val = json_object_get(obj, name)) != NULL &&
	    (v = json_string_value(val)) != NULL && strlen(v) > 16) {
		snprintf(cut, sizeof(cut), "%.16s... (%zu bytes)", v,
		    strlen(v));
		json_object_set_new(obj, name, json_string(cut));
	}
	out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	return out;
}

/*
 * Check the sender's signature over the body, when the queue asks for
 * one.  0: genuine (or no check); -1: refused with 401, nothing stored,
 * the request kept in the rejected table (through the committer, bounded:
 * commit_reject).
 */
static int
verify_request(struct wire *r, const struct request *rq, const void *body,
    size_t len)
{
	const struct queue_conf *q = rq->qc;
	enum verify_result vr;
	struct store_rejected row;
	const char *h;
	char detail[160], hdr[160], *headers;
	int64_t now = store_now();

	if (q->verify.scheme == VERIFY_NONE)
		return 0;
	vr = verify_check(&q->verify, rq->envp, body, len, q->keys, q->nkeys,
	    now / 1000, q->tolerance_ms / 1000, &h);
	if (vr == VERIFY_OK)
		return 0;
	snprintf(detail, sizeof(detail), "%s: %s", verify_reason(vr),
	    h != NULL ? h : "?");
	/* RFC 9110 11.6.1: a 401 names how to authenticate. */
	snprintf(hdr, sizeof(hdr), "WWW-Authenticate: Signature scheme=\"%s\""
	    "\r\n", verify_scheme_name(q->verify.scheme));
	answer_error(r, 401, hdr, "signature check failed", detail, 0);
	metrics_verify_failed(q->name);

	headers = redacted_headers(q, rq->headers);
	memset(&row, 0, sizeof(row));
	row.at = now;
	row.queue = q->name;
	row.reason = detail;
	row.remote_addr = rq->remote_addr;
	row.method = rq->method;
	row.request_uri = rq->uri;
	row.headers = headers;
	row.body_length = (int64_t)len;
	row.body_head = body;
	row.head_len = len;
	row.keep = q->keep_rejected;
	if (q->keep_rejected > 0)
		commit_reject(&row);
	free(headers);
	return -1;
}

/*
 * The queue's own idempotency key (its dedupe source, or the one its
 * verify scheme implies) into buf: rq->key points there when the request
 * has one; without one, an Idempotency-Key header still counts.  0, or
 * -1: refused with 400.
 */
static int
dedupe_key(struct wire *r, struct request *rq, const void *body,
    size_t len, char *buf)
{
	const struct queue_conf *q = rq->qc;
	int rc;

	if (q->dedupe.kind == VERIFY_DEDUPE_NONE)
		return 0;
	rc = verify_dedupe_key(&q->dedupe, rq->envp, body, len, buf);
	if (rc == 1)
		rq->key = buf;
	else if (rc == -1) {
		answer_error(r, 400, NULL, "bad idempotency key",
		    "the delivery id is not 1-255 printable ASCII "
		    "characters", 0);
		return -1;
	}
	return 0;
}

/*
 * The job's serial key, for a queue with serialize_by, into buf (at least
 * VERIFY_KEY_LEN bytes): *key points there, or at "" when the request has
 * none (the job is then a key of its own: it runs unserialized).  The
 * source is read by dedupe's code.  0, or -1: refused with 400.
 */
static int
serial_key(struct wire *r, const struct request *rq, const void *body,
    size_t len, char *buf, const char **key)
{
	const struct queue_conf *q = rq->qc;
	int rc;

	*key = NULL;
	if (q->serialize.kind == VERIFY_DEDUPE_NONE)
		return 0;
	rc = verify_dedupe_key(&q->serialize, rq->envp, body, len, buf);
	if (rc == -1) {
		answer_error(r, 400, NULL, "bad serialization key",
		    "the serialize_by value is not 1-255 printable ASCII "
		    "characters", 0);
		return -1;
	}
	*key = rc == 1 ? buf : "";
	return 0;
}

/*
 * An intake that passed req_check(): read the body, check its signature,
 * then hand the job to group commit.  SERVER_DETACHED when the committer
 * answers, else 0.
 */
static int
serve_enqueue(struct wire *r, struct request *rq, const struct config *c)
{
	struct store_newjob job;
	void *body = NULL;
	size_t body_len = 0;
	char keybuf[VERIFY_KEY_LEN], serialbuf[VERIFY_KEY_LEN];
	const char *serial;
	int wait_s = wait_seconds(rq, c), rc;

	r->timed = 1;		/* fcgiq_intake_duration_seconds */
	if (read_body(r, rq, c->max_body, &body, &body_len) == -1)
		return 0;
	if (verify_request(r, rq, body, body_len) == -1 ||
	    dedupe_key(r, rq, body, body_len, keybuf) == -1 ||
	    serial_key(r, rq, body, body_len, serialbuf, &serial) == -1) {
		free(body);
		return 0;
	}
	job_fill(&job, rq, body, body_len);
	job.serial_key = serial;
	/* The committer answers, and this thread goes on to the next
	 * request (also on a kept connection, so new ones are not left
	 * waiting while it lingers for the commit).  A keyed job too: a
	 * webhook queue keys every job by its delivery id, and a replay,
	 * rare, reads the first job's state on the committer. */
	if (enqueue_detached(r, rq, &job, wait_s) == 0) {
		rq->headers = NULL;		/* the committer's now */
		return SERVER_DETACHED;
	}
	rc = enqueue_wait(r, rq, job, wait_s);
	free(body);
	return rc;
}

/* A job the database does not hold: 410 when it may have been pruned
 * (req_id_gone), else 404. */
static void
answer_missing(struct wire *r, const struct config *c, const char *id,
    int head_only)
{
	char detail[160];

	if (req_id_gone(id, c, store_now())) {
		snprintf(detail, sizeof(detail), "job %s is older than "
		    "keep_done: finished jobs that old are pruned", id);
		answer_error(r, 410, NULL, "job gone", detail, head_only);
	} else
		answer_error(r, 404, NULL, "no such job", id, head_only);
}

/*
 * The job's status, with its ETag; 304 when If-None-Match names that tag
 * (or is "*": the job exists).
 */
static int
serve_status(struct wire *r, const struct request *rq,
    const struct config *c, int wait_s)
{
	const char *id = rq->id;
	int head_only = rq->route == REQ_ROUTE_STATUS_HEAD;
	struct store *s;
	struct store_job *job = NULL;
	struct waitreq *wr;
	json_t *out = NULL;
	char url[512], etag[RESPONSE_ETAG_LEN], hdr[192], nm[128], *text = NULL;
	char ra[RETRY_AFTER_LEN];
	const char *extra;
	size_t n;
	int rc;

	s = dbpool_get();
	rc = store_get(s, id, &job);
	if (rc == -1)
		log_warnx("request: status %s: %s", id, store_error(s));
	dbpool_put(s);
	if (rc == -1) {
		answer_error(r, 503, "Retry-After: 1\r\n", "queue unavailable",
		    "the job could not be read; retry", head_only);
		return 0;
	}
	if (rc == 0) {
		answer_missing(r, c, id, head_only);
		return 0;
	}
	if (wait_s > 0 && !state_final(job->state) &&
	    (wr = waitreq_new(WAIT_STATUS, head_only, wait_s, 0, id, NULL,
	    rq->prefix)) != NULL) {
		if (park_request(r, wr)) {
			store_job_free(job);
			return SERVER_DETACHED;
		}
		free(wr);
	}
	snprintf(url, sizeof(url), "%s%s", rq->prefix, id);
	if ((out = response_job_json(job, url)) == NULL ||
	    (text = response_text(out)) == NULL) {
		answer_error(r, 500, NULL, "out of memory", NULL, head_only);
		goto done;
	}
	response_etag(text, etag);
	if (req_etag_match(rq->if_none_match, etag)) {
		if ((n = response_not_modified(nm, sizeof(nm), etag)) == 0 ||
		    wire_put(r, nm, n) == -1)
			(void)wire_put(r, oom, sizeof(oom) - 1);
	} else {
		extra = status_retry_after(ra, job->state, job->queue,
		    job->run_at);
		n = (size_t)snprintf(hdr, sizeof(hdr), "ETag: %s\r\n%s", etag,
		    extra != NULL ? extra : "");
		if (wait_s > 0 && n < sizeof(hdr))
			snprintf(hdr + n, sizeof(hdr) - n,
			    "Preference-Applied: wait=%d\r\n", wait_s);
		answer_text(r, 200, hdr, text, head_only);
	}
done:
	free(text);
	json_decref(out);
	store_job_free(job);
	return 0;
}

/*
 * The handler's result as the original response would have been: its
 * bytes and media type; 404 while there is none (the job has not
 * finished, or failed), 404 / 410 for a job the database does not hold.
 */
static void
serve_result(struct wire *r, const struct request *rq,
    const struct config *c)
{
	const char *id = rq->id;
	int head_only = rq->route == REQ_ROUTE_RESULT_HEAD;
	struct store *s;
	struct store_job *job = NULL;
	char detail[128], ra[RETRY_AFTER_LEN], *buf;
	size_t n;
	int rc;

	s = dbpool_get();
	rc = store_get(s, id, &job);
	if (rc == -1)
		log_warnx("request: result %s: %s", id, store_error(s));
	dbpool_put(s);
	if (rc == -1) {
		answer_error(r, 503, "Retry-After: 1\r\n", "queue unavailable",
		    "the job could not be read; retry", head_only);
		return;
	}
	if (rc == 0) {
		answer_missing(r, c, id, head_only);
		return;
	}
	if (job->result == NULL) {
		snprintf(detail, sizeof(detail), "job %s is %s", id,
		    store_state_name(job->state));
		answer_error(r, 404, status_retry_after(ra, job->state,
		    job->queue, job->run_at), "no result", detail, head_only);
		goto done;
	}
	if ((buf = response_result(job, NULL, head_only, &n)) == NULL ||
	    wire_put(r, buf, n) == -1)
		(void)wire_put(r, oom, sizeof(oom) - 1);
	free(buf);
done:
	store_job_free(job);
}

static void
serve_cancel(struct wire *r, const struct config *c, const char *id)
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
	if ((rc == STORE_CANCEL_REFUSED || rc == STORE_CANCEL_DONE) &&
	    store_get(s, id, &job) != 1)
		job = NULL;
	dbpool_put(s);
	switch (rc) {
	case STORE_CANCEL_DONE:
		if (job != NULL)
			metrics_finished(job->queue, METRICS_CANCELLED, -1);
		park_kick(id);		/* its waiters here answer now */
		answer(r, 204, NULL, NULL, 0);
		log_debug("request: job %s: cancelled", id);
		break;
	case STORE_CANCEL_UNKNOWN:
		answer_missing(r, c, id, 0);
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
router_serve(struct wire *r)
{
	struct config_ref *cr = conf_hold();
	const struct config *c = &cr->c;
	struct request rq;
	struct req_verdict v;
	char hdr[64];
	int rc = 0;

	req_parse(&rq, r->envp, r->role, r->bad, c->status_prefix);
	rq.now = store_now();
	if (req_check(&rq, c, &v) != 0) {
		answer_error(r, v.status, v.header, v.error, v.detail, 0);
		goto done;
	}
	switch (rq.route) {
	case REQ_ROUTE_ENQUEUE:
		rc = serve_enqueue(r, &rq, c);
		break;
	case REQ_ROUTE_STATUS:
	case REQ_ROUTE_STATUS_HEAD:
		rc = serve_status(r, &rq, c, wait_seconds(&rq, c));
		break;
	case REQ_ROUTE_RESULT:
	case REQ_ROUTE_RESULT_HEAD:
		serve_result(r, &rq, c);
		break;
	case REQ_ROUTE_CANCEL:
		serve_cancel(r, c, rq.id);
		break;
	case REQ_ROUTE_METRICS:
		scrape_serve(r, cr, rq.head);
		break;
	case REQ_ROUTE_DASHBOARD:
		dashboard_serve(r, &rq, cr);
		break;
	case REQ_ROUTE_NO_JOB:
		answer_error(r, 404, NULL, "no such job", "not a job id",
		    rq.head);
		break;
	case REQ_ROUTE_BAD_METHOD:
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", rq.allow);
		answer_error(r, 405, hdr, "method not allowed",
		    rq.method != NULL && req_printable(rq.method, 31) ?
		    rq.method : NULL, rq.head);
		break;
	}
done:
	req_free(&rq);
	config_unref(cr);
	return rc;
}
