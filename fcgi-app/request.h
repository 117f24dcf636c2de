/*
 * request: parsing and limits of one FastCGI request, as pure functions over
 * the params array ("NAME=value" strings, NULL-terminated, as libfcgi hands
 * it over) and a read callback for the body.  Nothing here touches libfcgi,
 * the database or a lock, so unit tests and fuzzers drive it directly.
 */
#ifndef FCGIQ_REQUEST_H
#define FCGIQ_REQUEST_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "wire.h"

struct config;
struct queue_conf;

/* Bounds on what a client may send; past them the answer is 4xx. */
#define REQ_MAX_URI		8192	/* REQUEST_URI, query included: 414 */
#define REQ_MAX_CONTENT_TYPE	1024	/* 400 */
#define REQ_MAX_HEADERS		256	/* HTTP_* params: 431 */
#define REQ_MAX_HEADERS_JSON	(64 * 1024)	/* their JSON text: 431 */
#define REQ_MAX_KEY		255	/* idempotency key: 400 */
#define REQ_MAX_QUEUE		63
#define REQ_MAX_DELAY_MS	(366LL * 86400 * 1000)	/* FCGIQ_DELAY, Fcgiq-*: 400 */
#define REQ_PRIORITY_MIN	(-1000)	/* as a queue's priority = */
#define REQ_PRIORITY_MAX	1000

/* Look up NAME in envp (the first one when repeated); NULL when absent. */
const char	*req_param(char *const *envp, const char *name);

/*
 * Parse CONTENT_LENGTH.  1: absent, empty or "-1", the length unknown (read
 * the stream to its end); 0: *len set; -1: anything else that is not a
 * plain decimal number that fits in 63 bits.
 */
int	req_content_length(const char *s, uint64_t *len);

enum req_route {
	REQ_ROUTE_ENQUEUE = 0,		/* POST PUT PATCH outside the status prefix */
	REQ_ROUTE_STATUS,		/* GET  <prefix><id> */
	REQ_ROUTE_STATUS_HEAD,		/* HEAD <prefix><id> */
	REQ_ROUTE_CANCEL,		/* DELETE <prefix><id> */
	REQ_ROUTE_NO_JOB,		/* under the prefix, but not an id: 404 */
	REQ_ROUTE_BAD_METHOD,		/* 405, *allow names the methods */
	REQ_ROUTE_METRICS,		/* GET HEAD where FCGIQ_ROLE is metrics */
	REQ_ROUTE_RESULT,		/* GET  <prefix><id>/result */
	REQ_ROUTE_RESULT_HEAD,		/* HEAD <prefix><id>/result */
	REQ_ROUTE_DASHBOARD		/* any method where FCGIQ_ROLE is dashboard */
};

/*
 * Route a request by method and the path part of uri.  Under prefix, id is
 * filled with the job id for the status routes.  *allow is set for
 * REQ_ROUTE_BAD_METHOD (a static string).
 */
enum req_route req_route(const char *method, const char *uri,
	    const char *prefix, char id[STORE_ID_LEN + 1], const char **allow);

/*
 * One request as the router sees it: its params read once (req_parse),
 * then checked once (req_check).  The strings point into the params array
 * (or are static); only headers is allocated (req_free).
 */
struct request {
	char *const	*envp;		/* the params, "NAME=value" */
	int		 role;		/* FCGI_RESPONDER, FCGI_AUTHORIZER, ... */
	enum wire_bad	 bad;		/* from wire_next() */
	const char	*method;	/* REQUEST_METHOD, NULL when absent */
	const char	*uri;		/* REQUEST_URI, "" when absent */
	const char	*query;		/* QUERY_STRING */
	const char	*content_type;	/* CONTENT_TYPE */
	const char	*content_length; /* CONTENT_LENGTH, as sent */
	const char	*remote_addr;	/* REMOTE_ADDR */
	const char	*queue;		/* FCGIQ_QUEUE, "default" when absent or empty */
	const char	*prefix;	/* FCGIQ_STATUS_PREFIX when usable, else the
					   configured one */
	const char	*dedupe_header;	/* FCGIQ_DEDUPE_HEADER */
	const char	*idempotency;	/* HTTP_IDEMPOTENCY_KEY */
	const char	*if_none_match;	/* HTTP_IF_NONE_MATCH */
	const char	*accept_param;	/* FCGIQ_ACCEPT_STATUS, as sent */
	const char	*role_param;	/* FCGIQ_ROLE, as sent */
	const char	*prefer;	/* HTTP_PREFER */
	const char	*delay_param;	/* FCGIQ_DELAY */
	const char	*priority_param; /* FCGIQ_PRIORITY */
	const char	*schedule_param; /* FCGIQ_CLIENT_SCHEDULE */
	const char	*h_delay;	/* HTTP_FCGIQ_DELAY */
	const char	*h_run_at;	/* HTTP_FCGIQ_RUN_AT */
	const char	*h_priority;	/* HTTP_FCGIQ_PRIORITY */
	int		 head;		/* the method is HEAD: answer no body */
	int64_t		 now;		/* the caller's clock (ms), for run_at */

	/* What the method and the path ask for. */
	enum req_route	 route;
	char		 id[STORE_ID_LEN + 1];	/* the job, for the status routes */
	const char	*allow;		/* REQ_ROUTE_BAD_METHOD: Allow's value */

	/* Set by req_check() for REQ_ROUTE_ENQUEUE. */
	const struct queue_conf *qc;	/* the queue's configuration */
	int		 have_length;	/* else the body runs to the stream's end */
	uint64_t	 length;
	const char	*key;		/* the idempotency key, NULL when none */
	int		 accept_status;	/* 202, or 200 (FCGIQ_ACCEPT_STATUS) */
	int		 priority;	/* the job's: the queue's, or as scheduled */
	int64_t		 run_at;	/* the job's (ms), 0: now */
	char		*headers;	/* HTTP_* as JSON text, malloc'd */
};

/* Why a request is refused: the HTTP status and the JSON error's text. */
struct req_verdict {
	int		 status;
	const char	*header;	/* extra header lines ("Name: v\r\n"), or NULL */
	const char	*error;
	const char	*detail;	/* may be NULL */
};

/*
 * Read the params (one pass over envp) into *rq and route the request by
 * method and path; default_prefix is the status prefix when the request
 * names no usable one.  Never fails: what is wrong is for req_check().
 */
void	req_parse(struct request *rq, char *const *envp, int role,
	    enum wire_bad bad, const char *default_prefix);

/*
 * Check rq in the order of the contract: role, params, URI length, and for
 * an intake its queue (in c), length, type, headers, idempotency key and
 * schedule, so that everything refusable from the params is refused before
 * a byte of the body is read.  0: rq is fine (for an intake, qc,
 * have_length, length, key, headers, priority and run_at are set, run_at
 * from rq->now); else the HTTP status, *v says why.
 */
int	req_check(struct request *rq, const struct config *c,
	    struct req_verdict *v);

/* Free what req_check() allocated in rq (headers, unless taken). */
void	req_free(struct request *rq);

/* 1 when s is at most max bytes long and holds no CR or LF: safe to echo
 * into a header or a detail. */
int	req_printable(const char *s, size_t max);

/* 1 when s is a well-formed job id (30 characters of base64url, or 22 for
 * a job stored before ids had their time prefix). */
int	req_valid_id(const char *s);

/*
 * The HTTP_* params (except HTTP_PROXY) as a JSON object text, bytes that
 * are not UTF-8 replaced by U+FFFD.  0: *out malloc'd (the caller frees it);
 * -1: more than max_count headers or more than max_bytes of JSON (431),
 * *why says which; -2: out of memory.
 */
int	req_headers_json(char *const *envp, size_t max_count, size_t max_bytes,
	    char **out, const char **why);

/*
 * "X-GitHub-Delivery" -> "HTTP_X_GITHUB_DELIVERY" into buf (text_cgi_name,
 * strict).  0, or -1 when the name is empty, has a character outside A-Z
 * a-z 0-9 - _, or does not fit.
 */
int	req_header_param(const char *header, char *buf, size_t len);

/*
 * The idempotency key: the header named by dedupe_header (a header name,
 * may be NULL) when the request has it, else Idempotency-Key.  1: *key
 * points into envp; 0: none; -1: present but empty, longer than
 * REQ_MAX_KEY or not printable ASCII.
 */
int	req_idempotency_key(char *const *envp, const char *dedupe_header,
	    const char **key);

/* Read callback: bytes read (> 0), 0 at the end of the stream, -1 broken. */
typedef ssize_t (*req_read_fn)(void *ctx, void *buf, size_t len);

enum req_body {
	REQ_BODY_OK = 0,
	REQ_BODY_SHORT,		/* the stream ended before CONTENT_LENGTH: 400 */
	REQ_BODY_LONG,		/* more data than CONTENT_LENGTH: 400 */
	REQ_BODY_TOO_BIG,	/* over max: 413 */
	REQ_BODY_BROKEN,	/* the stream broke (client gone): no answer needed */
	REQ_BODY_NOMEM		/* 500 */
};

/*
 * Read the body: exactly length bytes followed by the end of the stream when
 * have_length, else everything up to the end.  Never reads more than max + 1
 * bytes, and nothing when length > max.  REQ_BODY_OK: *body malloc'd (never
 * NULL, even when empty), *len set.  Otherwise nothing is returned.
 */
enum req_body req_read_body(req_read_fn rd, void *ctx, int have_length,
	    uint64_t length, size_t max, void **body, size_t *len);

/*
 * 1 when an If-None-Match value (a list of entity tags, or "*") matches
 * etag (quoted) by the weak comparison RFC 9110 asks of it; 0 otherwise,
 * also when header is NULL.
 */
int	req_etag_match(const char *header, const char *etag);

/*
 * The wait preference of a Prefer header (RFC 7240): the seconds of the
 * first "wait" preference (saturated at INT_MAX), or -1 when there is
 * none or its value is not delta-seconds (then it is ignored, as the RFC
 * asks of a preference not understood).  header may be NULL.
 */
int	req_prefer_wait(const char *header);

/*
 * Ids are time-prefixed since November 2026: one that claims an earlier
 * creation was not made by fcgiq (nor by any clock it ran on).
 */
#define REQ_ID_EPOCH_MS		1767225600000LL	/* 2026-01-01T00:00:00Z */

/*
 * 1 when a job id that the database does not hold may have been pruned
 * (410 Gone): its time prefix lies before the prune horizon, now minus the
 * shortest keep_done of c's queues (a job is pruned once it finished
 * keep_done ago, and it finished after it was made); 0 otherwise (404):
 * newer, from the future, from before REQ_ID_EPOCH_MS, or without a time.
 * A function of the id's text and the configuration alone.
 */
int	req_id_gone(const char *id, const struct config *c, int64_t now);

/* 1 when the method enqueues (POST PUT PATCH). */
int	req_is_intake_method(const char *method);

#endif /* FCGIQ_REQUEST_H */
