/*
 * dashboard: the page of FCGIQ_ROLE dashboard and the JSON behind it.
 *
 * Routes go by the last segment of the path, so the page works under any
 * location prefix (its own URLs are relative): ".../" the page,
 * ".../dashboard.css" and ".../dashboard.js" its assets, ".../api/summary"
 * the queues and the last hour per minute, ".../api/jobs" a listing,
 * ".../api/job" one job, ".../api/action" (POST) an action.  Every answer
 * carries a strict Content-Security-Policy (nothing inline, nothing from
 * elsewhere) and nosniff; the JSON is never cached.
 *
 * What a refresh reads is bounded whatever the database holds: the counts
 * per state are the shared ones a scrape keeps (metrics.h: taken in the
 * background at a bounded duty), each queue's head of line is a probe of
 * the claim index, the chart is the shared minute ring (metrics.h), and a
 * listing looks at STORE_DASH_BUDGET index entries at most (store-dash.c).
 *
 * Actions (FCGIQ_DASHBOARD_ACTIONS on) are POSTs that must come from the
 * page itself: Origin equal to the request's own scheme and host (or, with
 * no Origin, Sec-Fetch-Site: same-origin) and the X-Fcgiq-Token header
 * equal to the installation's token, HMAC-SHA256 of a fixed text under a
 * random key kept beside a SQLite database (DATABASE-dashboard-key, 0600)
 * or, with PostgreSQL, in the database (store_dash_key: the page may come
 * from one host and its POST go to another behind a load balancer), so
 * every process of the installation gives and takes the same token and a
 * restart does not log the page out.  The page reads the token from
 * api/summary, which another site's page cannot read (no CORS), and a
 * custom header cannot be sent cross-site without a preflight that is
 * refused.  A location without the parameter refuses every POST (403).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "dashboard-assets.h"
#include "dashboard.h"
#include "dbpool.h"
#include "expo.h"
#include "gauges.h"
#include "log.h"
#include "metrics.h"
#include "park.h"
#include "request.h"
#include "response.h"
#include "scrape.h"
#include "server.h"
#include "store.h"
#include "text.h"
#include "wake.h"
#include "wire.h"

#define CSP	"Content-Security-Policy: default-src 'none'; " \
	"script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; " \
	"form-action 'self'\r\n"
#define SAFE	CSP "X-Content-Type-Options: nosniff\r\n" \
	"X-Frame-Options: DENY\r\nReferrer-Policy: same-origin\r\n" \
	"Cross-Origin-Resource-Policy: same-origin\r\n"
#define NOSTORE	SAFE	/* response.c adds Cache-Control: no-store */

#define PAGE_JOBS	50		/* a listing's page */
#define MAX_PAGE	(STORE_DASH_BUDGET / PAGE_JOBS)
#define DEAD_BATCH	500		/* jobs per transaction of a bulk action */
#define BODY_SHOWN	(64 * 1024)	/* bytes of a body or result shown */
#define CHART_MINUTES	60

static const char oom[] = "Status: 500 Internal Server Error\r\n"
    "Content-Type: text/plain\r\n\r\nout of memory\n";

/* ---------------------------------------------------------------------- */
/* answers                                                                */
/* ---------------------------------------------------------------------- */

static void
put(struct wire *r, char *buf, size_t len)
{
	if (buf == NULL || wire_put(r, buf, len) == -1)
		(void)wire_put(r, oom, sizeof(oom) - 1);
	free(buf);
}

static void
answer_problem(struct wire *r, int status, const char *extra,
    const char *error, const char *detail, int head_only)
{
	char hdr[1024], *buf;
	size_t len = 0;

	snprintf(hdr, sizeof(hdr), NOSTORE "%s", extra != NULL ? extra : "");
	buf = response_problem(status, hdr, error, detail, head_only, &len);
	put(r, buf, len);
}

/* body (a new reference, NULL: out of memory) as the JSON answer. */
static void
answer_json(struct wire *r, int status, json_t *body, int head_only)
{
	char *text, *buf;
	size_t len = 0;

	if (body == NULL || (text = response_text(body)) == NULL) {
		json_decref(body);
		answer_problem(r, 500, NULL, "out of memory", NULL, head_only);
		return;
	}
	json_decref(body);
	buf = response_render_type(status, "application/json", NOSTORE,
	    text, head_only, &len);
	free(text);
	put(r, buf, len);
}

static void
answer_asset(struct wire *r, const struct dash_asset *a, int head_only)
{
	char *buf;
	size_t len = 0;

	/* no-store too (response.c): a few KiB, and never a stale page
	 * after an upgrade. */
	buf = response_render_type(200, a->type, SAFE, a->data, head_only,
	    &len);
	put(r, buf, len);
}

/* ---------------------------------------------------------------------- */
/* parameters                                                             */
/* ---------------------------------------------------------------------- */

int
dashboard_query(const char *query, const char *name, char *buf, size_t len)
{
	const char *p = query, *v, *end;
	size_t n = strlen(name), k;
	int hi, lo;

	if (p == NULL)
		return 0;
	for (; *p != '\0'; p = *end == '&' ? end + 1 : end) {
		if ((end = strchr(p, '&')) == NULL)
			end = p + strlen(p);
		if (strncmp(p, name, n) != 0 || p[n] != '=')
			continue;
		for (v = p + n + 1, k = 0; v < end; v++) {
			if (k + 1 >= len)
				return -1;
			if (*v == '+')
				buf[k++] = ' ';
			else if (*v == '%') {
				if (end - v < 3 ||
				    (hi = text_hexval(v[1])) < 0 ||
				    (lo = text_hexval(v[2])) < 0 ||
				    hi * 16 + lo == 0)
					return -1;
				buf[k++] = (char)(hi * 16 + lo);
				v += 2;
			} else
				buf[k++] = *v;
		}
		buf[k] = '\0';
		return 1;
	}
	return 0;
}

/* A whole non-negative number no larger than max from s: 0, or -1. */
static int
parse_count(const char *s, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* The filter a listing or a bulk action names: queue (a configured one,
 * or empty: all), state, age in seconds.  NULL, or why not. */
static const char *
read_filter(const struct request *rq, const struct config *c,
    char queue[REQ_MAX_QUEUE + 1], enum store_state *state, int64_t *age_s)
{
	char v[32];
	int rc;

	*state = STORE_JOB_ANY;
	*age_s = 0;
	queue[0] = '\0';
	if ((rc = dashboard_query(rq->query, "queue", queue,
	    REQ_MAX_QUEUE + 1)) == -1 ||
	    (rc == 1 && queue[0] != '\0' && config_queue(c, queue) == NULL))
		return "no such queue";
	if ((rc = dashboard_query(rq->query, "state", v, sizeof(v))) == -1 ||
	    (rc == 1 && v[0] != '\0' && store_state_parse(v, state) == -1))
		return "no such state";
	if ((rc = dashboard_query(rq->query, "age", v, sizeof(v))) == -1 ||
	    (rc == 1 && v[0] != '\0' &&
	    parse_count(v, 366LL * 86400, age_s) == -1))
		return "age: whole seconds, at most a year";
	return NULL;
}

/* The last path segment(s) of the request, after the location's prefix. */
static int
path_ends(const char *uri, const char *suffix)
{
	size_t n = strcspn(uri, "?"), k = strlen(suffix);

	return n >= k && strncmp(uri + n - k, suffix, k) == 0;
}

/* ---------------------------------------------------------------------- */
/* the token                                                              */
/* ---------------------------------------------------------------------- */

static pthread_mutex_t	 key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char	 dash_key[32];
static char		 key_db[4096];	/* the database key was read for */

/* Read the key beside database, making it first when there is none:
 * written to a file of this process's own, then linked into place, so a
 * reader never sees half a key and two makers agree on the first. */
static int
load_key(const char *database)
{
	char path[4200], tmp[4300];
	unsigned char k[sizeof(dash_key)];
	ssize_t n;
	int fd, rc = -1;

	snprintf(path, sizeof(path), "%s-dashboard-key", database);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 && errno == ENOENT) {
		snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
		(void)unlink(tmp);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1)
			return -1;
		if (getentropy(k, sizeof(k)) == -1 ||
		    write(fd, k, sizeof(k)) != (ssize_t)sizeof(k) ||
		    fsync(fd) == -1) {
			(void)close(fd);
			(void)unlink(tmp);
			return -1;
		}
		if (close(fd) == -1 ||
		    (link(tmp, path) == -1 && errno != EEXIST)) {
			(void)unlink(tmp);
			return -1;
		}
		(void)unlink(tmp);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd == -1)
		return -1;
	n = read(fd, k, sizeof(k));
	if (n == (ssize_t)sizeof(k)) {
		memcpy(dash_key, k, sizeof(dash_key));
		rc = 0;
	}
	(void)close(fd);
	return rc;
}

/* The key kept in a PostgreSQL database, made there on first use. */
static int
load_key_db(void)
{
	struct store *s;
	int rc;

	s = dbpool_get();
	if ((rc = store_dash_key(s, dash_key, sizeof(dash_key))) == -1)
		log_warnx("dashboard: key: %s", store_error(s));
	dbpool_put(s);
	return rc;
}

/* The installation's token as hex into out (65 bytes): 0, or -1. */
static int
token(const char *database, char out[65])
{
	static const char what[] = "fcgiq dashboard actions 1";
	unsigned char mac[32];
	unsigned int mlen = 0;
	int i, rc = 0;

	pthread_mutex_lock(&key_lock);
	if (strcmp(key_db, database) != 0) {
		if (store_is_postgresql(database))
			rc = load_key_db();
		else if ((rc = load_key(database)) == -1)
			log_warn("dashboard: %s-dashboard-key", database);
		if (rc == 0)
			snprintf(key_db, sizeof(key_db), "%s", database);
	}
	if (rc == 0 && HMAC(EVP_sha256(), dash_key, sizeof(dash_key),
	    (const unsigned char *)what, sizeof(what) - 1, mac, &mlen) == NULL)
		rc = -1;
	pthread_mutex_unlock(&key_lock);
	if (rc == -1 || mlen != sizeof(mac))
		return -1;
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int
dashboard_same_origin(const char *origin, const char *sec_fetch_site,
    const char *scheme, const char *host, const char *port)
{
	const char *p, *h;
	size_t n, hl;
	int dflt;

	if (origin == NULL)
		return sec_fetch_site != NULL &&
		    strcmp(sec_fetch_site, "same-origin") == 0;
	if (host == NULL || *host == '\0' || scheme == NULL)
		return 0;
	n = strlen(scheme);
	if (strncasecmp(origin, scheme, n) != 0 ||
	    strncmp(origin + n, "://", 3) != 0)
		return 0;
	h = origin + n + 3;
	/* Host with its port: the same text. */
	p = strrchr(host, ']');
	if (strchr(p != NULL ? p : host, ':') != NULL)
		return strcasecmp(h, host) == 0;
	/* Without one (Debian's fastcgi_params send $host): the port the
	 * request came to, which an Origin leaves out when it is the
	 * scheme's own. */
	hl = strlen(host);
	if (strncasecmp(h, host, hl) != 0)
		return 0;
	dflt = port == NULL || *port == '\0' ||
	    (strcasecmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
	    (strcasecmp(scheme, "https") == 0 && strcmp(port, "443") == 0);
	if (dflt)
		return h[hl] == '\0';
	return h[hl] == ':' && strcmp(h + hl + 1, port) == 0;
}

/* 1 when the POST may act: same origin and the token.  Else 0 with why. */
static int
action_allowed(const struct request *rq, const struct config *c,
    const char **why)
{
	const char *https = req_param(rq->envp, "HTTPS");
	const char *scheme = req_param(rq->envp, "REQUEST_SCHEME");
	const char *sent = req_param(rq->envp, "HTTP_X_FCGIQ_TOKEN");
	char want[65];

	if (scheme == NULL || *scheme == '\0')
		scheme = https != NULL && (strcasecmp(https, "on") == 0 ||
		    strcmp(https, "1") == 0) ? "https" : "http";
	if (!dashboard_same_origin(req_param(rq->envp, "HTTP_ORIGIN"),
	    req_param(rq->envp, "HTTP_SEC_FETCH_SITE"), scheme,
	    req_param(rq->envp, "HTTP_HOST"),
	    req_param(rq->envp, "SERVER_PORT"))) {
		*why = "the request does not come from this page's origin";
		return 0;
	}
	if (token(c->database, want) == -1) {
		*why = "no token can be made here (see the log)";
		return 0;
	}
	if (sent == NULL || strlen(sent) != 64 ||
	    CRYPTO_memcmp(sent, want, 64) != 0) {
		*why = "the X-Fcgiq-Token header is missing or wrong";
		return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------------- */
/* reads                                                                  */
/* ---------------------------------------------------------------------- */

static int
actions_on(const struct request *rq)
{
	const char *a = req_param(rq->envp, "FCGIQ_DASHBOARD_ACTIONS");

	return a != NULL && strcmp(a, "on") == 0;
}

/* The minutes' counts of what, every queue summed, oldest first. */
static json_t *
minute_series(const struct metrics_minute *m, size_t nm, int what)
{
	json_t *a;
	uint64_t v;
	size_t i, k;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = nm; i-- > 0; ) {
		for (v = 0, k = 0; k < METRICS_MAX_QUEUES; k++)
			v += m[i].n[k][what];
		if (json_array_append_new(a, json_integer((json_int_t)v)))
			break;
	}
	return a;
}

/* Of the last 60 s: the current minute and the part of the one before
 * that the window still covers. */
static double
per_minute(const struct metrics_minute *m, int qi, int what, int64_t now)
{
	double frac = (double)(now % 60000) / 60000;

	if (qi < 0)
		return 0;
	return (double)m[0].n[qi][what] + (double)m[1].n[qi][what] *
	    (1 - frac);
}

static void
serve_summary(struct wire *r, const struct request *rq,
    struct config_ref *cr)
{
	const struct config *c = &cr->c;
	static const char *const sn[EXPO_NSTATES] = { "queued", "running",
	    "retry", "done", "dead", "cancelled" };
	struct metrics_minute *m = NULL;
	struct expo_queue *q = NULL;
	struct store *s;
	json_t *o = NULL, *qs, *qo, *ch;
	int64_t now = store_now();
	double age_s;
	char tok[65];
	size_t i;
	int k, p, have, qi, err = 0;

	scrape_count_due(cr);
	if ((q = gauges_new(c)) == NULL ||
	    (m = calloc(CHART_MINUTES + 1, sizeof(*m))) == NULL)
		goto oom;
	have = gauges_live_counts(q, c->nqueues, c->database, now, &age_s);
	metrics_minutes(now, m, CHART_MINUTES + 1);
	if ((o = json_object()) == NULL || (qs = json_array()) == NULL)
		goto oom;
	json_object_set_new(o, "queues", qs);
	s = dbpool_get();
	if (gauges_heads(s, q, c->nqueues, now) == -1) {
		log_warnx("dashboard: heads: %s", store_error(s));
		err = 1;
	}
	for (i = 0; i < c->nqueues; i++) {
		if ((qo = json_object()) == NULL ||
		    json_array_append_new(qs, qo) == -1)
			goto oom_put;
		json_object_set_new(qo, "name", json_string(q[i].name));
		for (k = 0; k < EXPO_NSTATES; k++)
			json_object_set_new(qo, sn[k], q[i].have_counts ?
			    json_integer(q[i].count[k]) : json_null());
		if ((p = store_paused(s, q[i].name)) == -1)
			err = 1;
		json_object_set_new(qo, "paused", p == -1 ? json_null() :
		    json_boolean(p));
		json_object_set_new(qo, "oldest_waiting_s", q[i].have_head ?
		    json_real(q[i].oldest_waiting_s) : json_null());
		json_object_set_new(qo, "past_due_s", q[i].have_head ?
		    json_real(q[i].past_due_s) : json_null());
		qi = metrics_queue(q[i].name);
		json_object_set_new(qo, "done_per_min", json_real(per_minute(m,
		    qi, METRICS_M_DONE, now)));
		json_object_set_new(qo, "failed_per_min",
		    json_real(per_minute(m, qi, METRICS_M_FAILED, now)));
	}
	dbpool_put(s);
	if ((ch = json_object()) == NULL)
		goto oom;
	json_object_set_new(o, "minutes", ch);
	/* Oldest first; the last entry is the minute under way. */
	json_object_set_new(ch, "start", json_integer((json_int_t)
	    ((now / 60000 - (CHART_MINUTES - 1)) * 60000)));
	json_object_set_new(ch, "enqueued",
	    minute_series(m, CHART_MINUTES, METRICS_M_ENQUEUED));
	json_object_set_new(ch, "done",
	    minute_series(m, CHART_MINUTES, METRICS_M_DONE));
	json_object_set_new(ch, "failed",
	    minute_series(m, CHART_MINUTES, METRICS_M_FAILED));
	json_object_set_new(o, "now", json_integer(now));
	json_object_set_new(o, "counts_age_s", have ? json_real(age_s) :
	    json_null());
	json_object_set_new(o, "helper_up",
	    json_integer(gauges_helper_up(c->database)));
	json_object_set_new(o, "database_error", json_boolean(err));
	json_object_set_new(o, "actions", json_boolean(actions_on(rq)));
	if (actions_on(rq) && token(c->database, tok) == 0)
		json_object_set_new(o, "token", json_string(tok));
	free(q);
	free(m);
	answer_json(r, 200, o, rq->head);
	return;
oom_put:
	dbpool_put(s);
oom:
	free(q);
	free(m);
	json_decref(o);
	answer_problem(r, 500, NULL, "out of memory", NULL, rq->head);
}

struct list_ctx {
	json_t	*a;
	int	 n;
	int	 nomem;
};

static void
on_row(void *arg, const struct store_dash_row *row)
{
	struct list_ctx *x = arg;
	json_t *o;
	char *err;

	if (++x->n > PAGE_JOBS)
		return;		/* the one past the page: there is more */
	if ((o = json_object()) == NULL ||
	    json_array_append_new(x->a, o) == -1) {
		x->nomem = 1;
		return;
	}
	/* A last_error need not be UTF-8: it is a program's stderr. */
	err = text_utf8_sanitize(row->last_error);
	json_object_set_new(o, "id", json_string(row->id));
	json_object_set_new(o, "queue", json_string(row->queue));
	json_object_set_new(o, "state", json_string(store_state_name(
	    row->state)));
	json_object_set_new(o, "attempts", json_integer(row->attempts));
	json_object_set_new(o, "max_attempts", json_integer(row->max_attempts));
	json_object_set_new(o, "created_at", json_integer(row->created_at));
	json_object_set_new(o, "run_at", json_integer(row->run_at));
	json_object_set_new(o, "finished_at", row->finished_at != 0 ?
	    json_integer(row->finished_at) : json_null());
	json_object_set_new(o, "body_length", json_integer(row->body_len));
	json_object_set_new(o, "last_error", err != NULL ?
	    json_stringn(err, strlen(err) > 300 ? 300 : strlen(err)) :
	    json_null());
	free(err);
}

static void
serve_jobs(struct wire *r, const struct request *rq, const struct config *c)
{
	struct store_dash_filter f;
	struct list_ctx x;
	struct store *s;
	char queue[REQ_MAX_QUEUE + 1], v[16];
	const char *why;
	int64_t age, page = 0;
	json_t *o;
	int rc;

	if ((why = read_filter(rq, c, queue, &f.state, &age)) != NULL) {
		answer_problem(r, 400, NULL, "bad filter", why, rq->head);
		return;
	}
	if ((rc = dashboard_query(rq->query, "page", v, sizeof(v))) == -1 ||
	    (rc == 1 && parse_count(v, MAX_PAGE - 1, &page) == -1)) {
		answer_problem(r, 400, NULL, "bad page", "a page number from 0",
		    rq->head);
		return;
	}
	f.queue = queue[0] != '\0' ? queue : NULL;
	f.before = age > 0 ? store_now() - age * 1000 : 0;
	f.offset = page * PAGE_JOBS;
	f.limit = PAGE_JOBS + 1;
	memset(&x, 0, sizeof(x));
	if ((x.a = json_array()) == NULL) {
		answer_problem(r, 500, NULL, "out of memory", NULL, rq->head);
		return;
	}
	s = dbpool_get();
	rc = store_dash_list(s, &f, on_row, &x);
	if (rc == -1)
		log_warnx("dashboard: list: %s", store_error(s));
	dbpool_put(s);
	if (rc == -1 || x.nomem) {
		json_decref(x.a);
		answer_problem(r, rc == -1 ? 503 : 500, rc == -1 ?
		    "Retry-After: 1\r\n" : NULL, rc == -1 ?
		    "queue unavailable" : "out of memory", NULL, rq->head);
		return;
	}
	if ((o = json_object()) == NULL) {
		json_decref(x.a);
		answer_problem(r, 500, NULL, "out of memory", NULL, rq->head);
		return;
	}
	json_object_set_new(o, "jobs", x.a);
	json_object_set_new(o, "page", json_integer(page));
	json_object_set_new(o, "page_size", json_integer(PAGE_JOBS));
	json_object_set_new(o, "more", json_boolean(x.n > PAGE_JOBS &&
	    page + 1 < MAX_PAGE));
	json_object_set_new(o, "budget", json_integer(STORE_DASH_BUDGET));
	answer_json(r, 200, o, rq->head);
}

/* Bytes as a string when they are UTF-8 text (at most BODY_SHOWN of
 * them, cut on a character), else null and the reason in note. */
static void
set_text(json_t *o, const char *name, const void *p, size_t len)
{
	char key[64];
	size_t n = len > BODY_SHOWN ? BODY_SHOWN : len;

	/* Back to the start of a character when the cut split one. */
	while (n < len && n > 0 &&
	    (((const unsigned char *)p)[n] & 0xc0) == 0x80)
		n--;
	snprintf(key, sizeof(key), "%s_length", name);
	json_object_set_new(o, key, json_integer((json_int_t)len));
	snprintf(key, sizeof(key), "%s_shown", name);
	if (p == NULL || !text_utf8_valid(p, n)) {
		json_object_set_new(o, name, json_null());
		json_object_set_new(o, key, json_string(p == NULL ? "none" :
		    "binary"));
		return;
	}
	json_object_set_new(o, name, json_stringn(p, n));
	json_object_set_new(o, key, json_string(n < len ? "truncated" :
	    "whole"));
}

static void
serve_job(struct wire *r, const struct request *rq)
{
	struct store_job *j = NULL;
	struct store *s;
	json_t *o, *h;
	char id[STORE_ID_LEN + 8];
	int rc;

	if (dashboard_query(rq->query, "id", id, sizeof(id)) != 1 ||
	    !req_valid_id(id)) {
		answer_problem(r, 400, NULL, "bad id", "not a job id",
		    rq->head);
		return;
	}
	s = dbpool_get();
	rc = store_get(s, id, &j);
	if (rc == -1)
		log_warnx("dashboard: job %s: %s", id, store_error(s));
	dbpool_put(s);
	if (rc != 1) {
		answer_problem(r, rc == 0 ? 404 : 503, rc == 0 ? NULL :
		    "Retry-After: 1\r\n", rc == 0 ? "no such job" :
		    "queue unavailable", id, rq->head);
		return;
	}
	if ((o = response_job_json(j, NULL)) == NULL) {
		store_job_free(j);
		answer_problem(r, 500, NULL, "out of memory", NULL, rq->head);
		return;
	}
	/* The result again, bounded like the body, and text or nothing. */
	json_object_del(o, "result");
	json_object_del(o, "result_encoding");
	set_text(o, "result", j->result, j->result_len);
	set_text(o, "body", j->body, j->body_len);
#define STR(k, v) json_object_set_new(o, k, (v) != NULL ? \
	json_string(v) : json_null())
	STR("method", j->method);
	STR("request_uri", j->request_uri);
	STR("content_type", j->content_type);
	STR("remote_addr", j->remote_addr);
	STR("idempotency_key", j->idempotency_key);
	STR("result_type", j->result_type);
#undef STR
	h = j->headers != NULL ? json_loads(j->headers, 0, NULL) : NULL;
	json_object_set_new(o, "headers", h != NULL ? h : json_null());
	store_job_free(j);
	answer_json(r, 200, o, rq->head);
}

/* ---------------------------------------------------------------------- */
/* actions                                                                */
/* ---------------------------------------------------------------------- */

static void
answer_done(struct wire *r, const char *op, int64_t changed)
{
	json_t *o;

	if ((o = json_object()) != NULL) {
		json_object_set_new(o, "ok", json_true());
		json_object_set_new(o, "op", json_string(op));
		json_object_set_new(o, "changed", json_integer(changed));
	}
	answer_json(r, 200, o, 0);
}

/* One job's action: rc as store_retry and the like. */
static void
answer_one(struct wire *r, const char *op, const char *id, int rc,
    const char *refused)
{
	char detail[160];

	switch (rc) {
	case 1:
		answer_done(r, op, 1);
		break;
	case 0:
		answer_problem(r, 404, NULL, "no such job", id, 0);
		break;
	case 2:
		snprintf(detail, sizeof(detail), "job %s is not %s", id,
		    refused);
		answer_problem(r, 409, NULL, "not possible", detail, 0);
		break;
	default:
		answer_problem(r, 503, "Retry-After: 1\r\n",
		    "queue unavailable", "nothing was changed; retry", 0);
		break;
	}
}

/* Every dead job matching the filter, in batches: a short write lock per
 * DEAD_BATCH jobs, so intake goes on between them.  Jobs that die after
 * the request do not match (before <= now): the loop ends. */
static void
dead_bulk(struct wire *r, const struct request *rq, const struct config *c,
    int discard)
{
	struct store *s;
	char queue[REQ_MAX_QUEUE + 1];
	enum store_state state;
	const char *why, *op = discard ? "discard-dead" : "retry-dead";
	int64_t age, now = store_now(), total = 0;
	int n = 0;

	if ((why = read_filter(rq, c, queue, &state, &age)) != NULL) {
		answer_problem(r, 400, NULL, "bad filter", why, 0);
		return;
	}
	s = dbpool_get();
	do {
		if ((n = store_dash_dead_batch(s, queue[0] != '\0' ? queue :
		    NULL, now - age * 1000, discard, DEAD_BATCH, now)) == -1)
			break;
		total += n;
	} while (n == DEAD_BATCH);
	if (n == -1)
		log_warnx("dashboard: %s: %s", op, store_error(s));
	dbpool_put(s);
	if (total > 0 && !discard)
		wake_notify(c->database);
	log_info("dashboard: %s%s%s: %lld jobs", op, queue[0] ? " " : "",
	    queue, (long long)total);
	if (n == -1)
		answer_problem(r, 503, "Retry-After: 1\r\n",
		    "queue unavailable", "the action stopped part way; the "
		    "jobs changed stay changed; retry for the rest", 0);
	else
		answer_done(r, op, total);
}

/* A header's value for the log: what a client sent, only when harmless. */
static const char *
shown(const char *s)
{
	if (s == NULL)
		return "absent";
	return req_printable(s, 200) ? s : "(unprintable)";
}

static void
serve_action(struct wire *r, const struct request *rq, const struct config *c)
{
	struct store_job *job = NULL;
	struct store *s;
	char op[32], id[STORE_ID_LEN + 8], queue[REQ_MAX_QUEUE + 1];
	const char *why;
	int rc;

	if (!actions_on(rq)) {
		answer_problem(r, 403, NULL, "forbidden", "this location's "
		    "dashboard is read-only (FCGIQ_DASHBOARD_ACTIONS)", 0);
		return;
	}
	if (!action_allowed(rq, c, &why)) {
		log_info("dashboard: action refused: %s (Origin %s, Host %s)",
		    why, shown(req_param(rq->envp, "HTTP_ORIGIN")),
		    shown(req_param(rq->envp, "HTTP_HOST")));
		answer_problem(r, 403, NULL, "forbidden", why, 0);
		return;
	}
	if (dashboard_query(rq->query, "op", op, sizeof(op)) != 1) {
		answer_problem(r, 400, NULL, "bad action", "no op", 0);
		return;
	}
	server_blocking();	/* the write lock may be held: busy_timeout */
	if (strcmp(op, "retry-dead") == 0 || strcmp(op, "discard-dead") == 0) {
		dead_bulk(r, rq, c, op[0] == 'd');
		return;
	}
	if (strcmp(op, "pause") == 0 || strcmp(op, "resume") == 0) {
		if (dashboard_query(rq->query, "queue", queue,
		    sizeof(queue)) != 1 || config_queue(c, queue) == NULL) {
			answer_problem(r, 404, NULL, "unknown queue", NULL, 0);
			return;
		}
		s = dbpool_get();
		rc = store_pause(s, queue, op[0] == 'p');
		if (rc == -1)
			log_warnx("dashboard: %s %s: %s", op, queue,
			    store_error(s));
		dbpool_put(s);
		if (rc == 0 && op[0] == 'r')
			wake_notify(c->database);
		if (rc == 0)
			log_info("dashboard: %s %s", op, queue);
		answer_one(r, op, queue, rc == 0 ? 1 : -1, "");
		return;
	}
	if (dashboard_query(rq->query, "id", id, sizeof(id)) != 1 ||
	    !req_valid_id(id)) {
		answer_problem(r, 400, NULL, "bad id", "not a job id", 0);
		return;
	}
	s = dbpool_get();
	if (strcmp(op, "retry") == 0)
		rc = store_retry(s, id, store_now());
	else if (strcmp(op, "discard") == 0)
		rc = store_dash_discard(s, id);
	else if (strcmp(op, "cancel") == 0) {
		rc = store_cancel(s, id, store_now());
		if (rc == STORE_CANCEL_DONE && store_get(s, id, &job) != 1)
			job = NULL;
	} else {
		dbpool_put(s);
		answer_problem(r, 400, NULL, "bad action", "no such op", 0);
		return;
	}
	if (rc == -1)
		log_warnx("dashboard: %s %s: %s", op, id, store_error(s));
	dbpool_put(s);
	if (rc == 1) {
		log_info("dashboard: %s %s", op, id);
		if (op[0] == 'r')
			wake_notify(c->database);
		if (job != NULL) {
			metrics_finished(job->queue, METRICS_CANCELLED, -1);
			park_kick(id);
		}
	}
	store_job_free(job);
	answer_one(r, op, id, rc, op[0] == 'r' ? "dead, cancelled or "
	    "waiting to retry" : op[0] == 'd' ? "dead" : "waiting");
}

/* ---------------------------------------------------------------------- */

static const struct dash_asset *
asset(const char *name)
{
	const struct dash_asset *a;

	for (a = dash_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

void
dashboard_serve(struct wire *r, const struct request *rq,
    struct config_ref *cr)
{
	const char *m = rq->method != NULL ? rq->method : "";
	const char *u = rq->uri;
	const struct dash_asset *a = NULL;
	int get = strcmp(m, "GET") == 0 || rq->head;

	if (strcmp(m, "POST") == 0) {
		if (!actions_on(rq) || !path_ends(u, "/api/action"))
			answer_problem(r, actions_on(rq) ? 405 : 403,
			    actions_on(rq) ? "Allow: GET, HEAD\r\n" : NULL,
			    actions_on(rq) ? "method not allowed" : "forbidden",
			    actions_on(rq) ? NULL : "this location's dashboard "
			    "is read-only (FCGIQ_DASHBOARD_ACTIONS)", 0);
		else
			serve_action(r, rq, &cr->c);
		return;
	}
	if (!get) {
		answer_problem(r, 405, actions_on(rq) ?
		    "Allow: GET, HEAD, POST\r\n" : "Allow: GET, HEAD\r\n",
		    "method not allowed", NULL, rq->head);
		return;
	}
	if (path_ends(u, "/api/action")) {
		answer_problem(r, 405, "Allow: POST\r\n", "method not allowed",
		    NULL, rq->head);
		return;
	}
	if (path_ends(u, "/api/summary"))
		serve_summary(r, rq, cr);
	else if (path_ends(u, "/api/jobs"))
		serve_jobs(r, rq, &cr->c);
	else if (path_ends(u, "/api/job"))
		serve_job(r, rq);
	else if (path_ends(u, "/"))
		a = asset("index.html");
	else if (path_ends(u, "/dashboard.css"))
		a = asset("dashboard.css");
	else if (path_ends(u, "/dashboard.js"))
		a = asset("dashboard.js");
	else
		answer_problem(r, 404, NULL, "not found", "the dashboard "
		    "serves its page at the location's path ending in /",
		    rq->head);
	if (a != NULL)
		answer_asset(r, a, rq->head);
}
