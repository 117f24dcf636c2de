/*
 * config: load fcgiq.conf with inih into an immutable struct config.  Every
 * key is checked as it is read; the first bad one fails the load with
 * "FILE:LINE: message", so `fcgiq -t` can point at it.  No file means the
 * embedded default: ./var/fcgiq.db and one queue "default" with no handler.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define QUEUE_NAME_MAX	63
#define SECRET_FILE_MAX	(64 * 1024)	/* bytes of a secret file */
#define SECRETS_MAX	16		/* lines of one */

static void	handler_clear(struct queue_conf *);

struct parse_state {
	struct config	*c;
	FILE		*f;
	int		 line;		/* lines read so far */
	char		 msg[256];	/* first error, without file and line */
	int		 failed;
	int		 failed_line;	/* set when the reader found the error */
};

/* The digits s starts with (no sign, no blank) into *v, *end past them:
 * 0, or -1 when there are none or too many. */
static int
parse_count(const char *s, unsigned long long *v, char **end)
{
	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno != 0 ? -1 : 0;
}

int
config_parse_size(const char *s, size_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (parse_count(s, &v, &end) == -1)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1024ULL; end++;
		break;
	case 'm': case 'M':
		mult = 1024ULL * 1024; end++;
		break;
	case 'g': case 'G':
		mult = 1024ULL * 1024 * 1024; end++;
		break;
	default:
		return -1;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > SIZE_MAX / mult)
		return -1;
	*out = (size_t)(v * mult);
	return 0;
}

int
config_parse_duration(const char *s, int64_t *out_ms)
{
	unsigned long long v, mult;
	char *end;

	if (parse_count(s, &v, &end) == -1)
		return -1;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000ULL;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000ULL;
	else if (strcmp(end, "d") == 0)
		mult = 86400 * 1000ULL;
	else
		return -1;
	if (v > (unsigned long long)INT64_MAX / mult)
		return -1;
	*out_ms = (int64_t)(v * mult);
	return 0;
}

static int
parse_int(const char *s, long min, long max, int *out)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 ||
	    strcasecmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
	    strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* "exec:/path arg arg": argv split on blanks, no shell and no quoting. */
static int
parse_exec_handler(struct queue_conf *q, const char *value, char *msg,
    size_t len)
{
	const char *p;
	char *copy, *tok, *save;
	char **argv = NULL, **nargv;
	size_t n = 0;

	p = value + 5;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '/') {
		snprintf(msg, len, "handler: \"%s\": the program must be an "
		    "absolute path", value);
		return -1;
	}
	if ((copy = strdup(p)) == NULL)
		goto nomem;
	for (tok = strtok_r(copy, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if ((nargv = realloc(argv, (n + 2) * sizeof(*argv))) == NULL)
			goto nomem_free;
		argv = nargv;
		if ((argv[n] = strdup(tok)) == NULL)
			goto nomem_free;
		argv[++n] = NULL;
	}
	free(copy);
	handler_clear(q);
	q->handler_argv = argv;
	if ((q->handler = strdup(value)) == NULL)
		goto nomem;
	return 0;
nomem_free:
	free(copy);
	if (argv != NULL) {
		size_t i;
		for (i = 0; i < n; i++)
			free(argv[i]);
		free(argv);
	}
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

/* Forget what an earlier handler line of the queue set. */
static void
handler_clear(struct queue_conf *q)
{
	char **a;

	free(q->handler);
	q->handler = NULL;
	if (q->handler_argv != NULL) {
		for (a = q->handler_argv; *a != NULL; a++)
			free(*a);
		free(q->handler_argv);
		q->handler_argv = NULL;
	}
	free(q->fcgi_unix);
	free(q->fcgi_host);
	free(q->url);
	q->fcgi_unix = q->fcgi_host = q->url = NULL;
	q->fcgi_port = 0;
	q->kind = HANDLER_NONE;
}

/*
 * "fastcgi:unix:/abs/path" or "fastcgi:HOST:PORT" ("[::1]:9000" for an
 * IPv6 literal).  Whether the socket exists is not checked: the pool may
 * start after fcgiq, and a missing socket is each attempt's last_error.
 */
static int
parse_fastcgi_handler(struct queue_conf *q, const char *value, char *msg,
    size_t len)
{
	const char *a = value + 8, *colon, *hs, *he;
	char *end;
	long port;

	if (strncmp(a, "unix:", 5) == 0) {
		if (a[5] != '/' || strlen(a + 5) >= 108) {
			snprintf(msg, len, "handler: \"%s\": fastcgi:unix: "
			    "takes an absolute socket path (at most 107 "
			    "bytes)", value);
			return -1;
		}
		handler_clear(q);
		if ((q->fcgi_unix = strdup(a + 5)) == NULL)
			goto nomem;
	} else {
		if (*a == '[') {
			hs = a + 1;
			if ((he = strchr(hs, ']')) == NULL || he[1] != ':')
				goto bad;
			colon = he + 1;
		} else {
			hs = a;
			if ((colon = strrchr(a, ':')) == NULL ||
			    memchr(a, ':', (size_t)(colon - a)) != NULL)
				goto bad;
			he = colon;
		}
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (he == hs || !isdigit((unsigned char)colon[1]) ||
		    errno != 0 || *end != '\0' || port < 1 || port > 65535)
			goto bad;
		handler_clear(q);
		if ((q->fcgi_host = strndup(hs, (size_t)(he - hs))) == NULL)
			goto nomem;
		q->fcgi_port = (int)port;
	}
	q->kind = HANDLER_FASTCGI;
	if ((q->handler = strdup(value)) == NULL)
		goto nomem;
	return 0;
bad:
	snprintf(msg, len, "handler: \"%s\": expected fastcgi:unix:/path or "
	    "fastcgi:HOST:PORT", value);
	return -1;
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

/*
 * What is wrong with an http:// or https:// URL for curl to take (RFC
 * 3986's authority: a host name or an IP literal, a port in range; no
 * blank or control character anywhere; a fragment, which is never sent,
 * is refused rather than silently dropped), or NULL when nothing is.
 */
static const char *
http_url_check(const char *url)
{
	const char *p, *auth = strstr(url, "://") + 3, *end, *host, *colon;
	char *e;
	long port;

	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "a URL has no blank or control character";
	if (strchr(url, '#') != NULL)
		return "a URL for a request has no #fragment";
	end = auth + strcspn(auth, "/?");
	if ((host = memchr(auth, '@', (size_t)(end - auth))) != NULL)
		host++;
	else
		host = auth;
	if (*host == '[') {
		if ((p = memchr(host, ']', (size_t)(end - host))) == NULL ||
		    p == host + 1)
			return "a bad IPv6 literal";
		colon = p + 1 < end ? p + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return "a bad IPv6 literal";
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if ((colon != NULL ? colon : end) == host)
			return "no host";
		for (p = host; p < (colon != NULL ? colon : end); p++)
			if (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '.' && *p != '_')
				return "a bad host name";
	}
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &e, 10);
		if (!isdigit((unsigned char)colon[1]) || errno != 0 ||
		    e != end || port < 1 || port > 65535)
			return "a bad port";
	}
	return NULL;
}

/*
 * The http: kind: url is what follows "http:" in "http:https://host/..."
 * (or the whole "http://..." / "https://..." line).  The seam of the http:
 * kind: it checks and keeps the URL, nothing else here knows its form.
 */
static int
parse_http_handler(struct queue_conf *q, const char *value, const char *url,
    char *msg, size_t len)
{
	const char *why;

	if (strncmp(url, "http://", 7) != 0 &&
	    strncmp(url, "https://", 8) != 0) {
		snprintf(msg, len, "handler: \"%s\": expected an http:// or "
		    "https:// URL", value);
		return -1;
	}
	if ((why = http_url_check(url)) != NULL) {
		snprintf(msg, len, "handler: \"%s\": %s", value, why);
		return -1;
	}
	handler_clear(q);
	q->kind = HANDLER_HTTP;
	if ((q->url = strdup(url)) == NULL ||
	    (q->handler = strdup(value)) == NULL) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	return 0;
}

/* The handler line: its scheme names the kind that runs the jobs. */
static int
parse_handler(struct queue_conf *q, const char *value, char *msg, size_t len)
{
	int rc;

	if (strncmp(value, "exec:", 5) == 0) {
		if ((rc = parse_exec_handler(q, value, msg, len)) == 0)
			q->kind = HANDLER_EXEC;
		return rc;
	}
	if (strncmp(value, "fastcgi:", 8) == 0)
		return parse_fastcgi_handler(q, value, msg, len);
	if (strncmp(value, "http:http://", 12) == 0 ||
	    strncmp(value, "http:https://", 13) == 0)
		return parse_http_handler(q, value, value + 5, msg, len);
	if (strncmp(value, "http:", 5) == 0 || strncmp(value, "https:", 6) == 0)
		return parse_http_handler(q, value, value, msg, len);
	snprintf(msg, len, "handler: \"%s\": unknown kind (expected "
	    "exec:/path, fastcgi:unix:/path, fastcgi:HOST:PORT or http:URL)",
	    value);
	return -1;
}

/* "param = NAME VALUE": one more FastCGI param, NAME as a CGI variable
 * name (no '=', no blank), VALUE the rest of the line (may be empty). */
static int
parse_param(struct queue_conf *q, const char *value, char *msg, size_t len)
{
	const char *p = value, *v;
	char **np;
	size_t n;

	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	n = (size_t)(p - value);
	for (v = p; isspace((unsigned char)*v); v++)
		;
	if (n == 0 || memchr(value, '=', n) != NULL) {
		snprintf(msg, len, "param: \"%s\": expected NAME VALUE", value);
		return -1;
	}
	if ((np = realloc(q->params, (2 * q->nparams + 2) * sizeof(*np))) ==
	    NULL)
		goto nomem;
	q->params = np;
	if ((np[2 * q->nparams] = strndup(value, n)) == NULL)
		goto nomem;
	if ((np[2 * q->nparams + 1] = strdup(v)) == NULL) {
		free(np[2 * q->nparams]);
		goto nomem;
	}
	q->nparams++;
	return 0;
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

static void
queue_defaults(struct queue_conf *q)
{
	memset(q, 0, sizeof(*q));
	q->concurrency = 1;
	q->max_attempts = 5;
	q->timeout_ms = 60 * 1000;
	q->backoff_min_ms = 1000;
	q->backoff_max_ms = 3600 * 1000;
	q->max_queued = 1000000;
	q->keep_done_ms = 7LL * 86400 * 1000;
	q->max_result = 64 * 1024;
	q->tolerance_ms = 5 * 60 * 1000;
	flow_conf_defaults(&q->flow);
	q->keep_rejected = 1000;
}

static int
valid_queue_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > QUEUE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
			return 0;
	return 1;
}

static struct queue_conf *
add_queue(struct config *c, const char *name)
{
	struct queue_conf *q;

	q = realloc(c->queues, (c->nqueues + 1) * sizeof(*q));
	if (q == NULL)
		return NULL;
	c->queues = q;
	q = &c->queues[c->nqueues];
	queue_defaults(q);
	if ((q->name = strdup(name)) == NULL)
		return NULL;
	c->nqueues++;
	return q;
}

static struct queue_conf *
find_or_add_queue(struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nqueues; i++)
		if (strcmp(c->queues[i].name, name) == 0)
			return &c->queues[i];
	return add_queue(c, name);
}

static void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->durability = STORE_DURABILITY_FULL;
	c->max_body = 1024 * 1024;
	c->log_level = LOG_LEVEL_INFO;
	c->threads = 32;
	c->helper = 1;
	c->grace_ms = 10 * 1000;
	c->busy_timeout_ms = 5000;
	c->max_wait_ms = 60 * 1000;
}

/* A key its section does not have ("[fcgiq]", "[queue mail]"): -1. */
static int
key_unknown(struct parse_state *ps, const char *name, const char *section,
    const char *arg)
{
	snprintf(ps->msg, sizeof(ps->msg), "unknown key \"%s\" in [%s%s]",
	    name, section, arg);
	return -1;
}

/* A value its key does not take: -1. */
static int
key_bad(struct parse_state *ps, const char *name, const char *value)
{
	snprintf(ps->msg, sizeof(ps->msg), "%s: bad value \"%s\"", name, value);
	return -1;
}

static int
global_key(struct parse_state *ps, const char *name, const char *value)
{
	struct config *c = ps->c;
	char **sp = NULL;
	int64_t ms;

	if (strcmp(name, "database") == 0)
		sp = &c->database;
	else if (strcmp(name, "path") == 0)
		sp = &c->handler_path;
	else if (strcmp(name, "log_file") == 0)
		sp = &c->log_file;
	else if (strcmp(name, "dead_letter_queue") == 0)
		sp = &c->dead_letter_queue;
	else if (strcmp(name, "metrics_file") == 0) {
		/* Every process must name the same file wherever it was
		 * started from. */
		if (value[0] != '/') {
			snprintf(ps->msg, sizeof(ps->msg), "metrics_file: "
			    "\"%s\": an absolute path", value);
			return -1;
		}
		sp = &c->metrics_file;
	}
	else if (strcmp(name, "status_prefix") == 0) {
		if (value[0] != '/' || value[strlen(value) - 1] != '/') {
			snprintf(ps->msg, sizeof(ps->msg), "status_prefix: "
			    "\"%s\": must start and end with /", value);
			return -1;
		}
		sp = &c->status_prefix;
	}
	if (sp != NULL) {
		if (*value == '\0') {
			snprintf(ps->msg, sizeof(ps->msg), "%s: empty", name);
			return -1;
		}
		free(*sp);
		if ((*sp = strdup(value)) == NULL)
			return -1;
		return 0;
	}
	if (strcmp(name, "durability") == 0) {
		if (strcmp(value, "full") == 0)
			c->durability = STORE_DURABILITY_FULL;
		else if (strcmp(value, "normal") == 0)
			c->durability = STORE_DURABILITY_NORMAL;
		else
			goto bad;
	} else if (strcmp(name, "max_body") == 0) {
		if (config_parse_size(value, &c->max_body) == -1 ||
		    c->max_body == 0 || c->max_body > (size_t)1 << 30)
			goto bad;
	} else if (strcmp(name, "log") == 0) {
		if ((c->log_level = log_level_parse(value)) == -1)
			goto bad;
	} else if (strcmp(name, "threads") == 0) {
		if (parse_int(value, 1, 1024, &c->threads) == -1)
			goto bad;
	} else if (strcmp(name, "helper") == 0) {
		if (parse_bool(value, &c->helper) == -1)
			goto bad;
	} else if (strcmp(name, "grace") == 0) {
		if (config_parse_duration(value, &c->grace_ms) == -1)
			goto bad;
	} else if (strcmp(name, "busy_timeout") == 0) {
		if (config_parse_duration(value, &ms) == -1 || ms > INT_MAX)
			goto bad;
		c->busy_timeout_ms = (int)ms;
	} else if (strcmp(name, "max_wait") == 0) {
		/* Global, not per queue: what a wait holds (a connection,
		 * the web server's upstream slot and its read timeout) is
		 * the process's and the location's, not the queue's. */
		if (config_parse_duration(value, &ms) == -1 ||
		    ms > 3600 * 1000 || ms % 1000 != 0)
			goto bad;
		c->max_wait_ms = ms;
	} else
		return key_unknown(ps, name, "fcgiq", "");
	return 0;
bad:
	return key_bad(ps, name, value);
}

/* Replace *sp with a copy of value: 0, or -1 out of memory. */
static int
set_str(struct parse_state *ps, char **sp, const char *value)
{
	free(*sp);
	if ((*sp = strdup(value)) == NULL) {
		snprintf(ps->msg, sizeof(ps->msg), "out of memory");
		return -1;
	}
	return 0;
}

/*
 * serialize_by = header:NAME | json:/pointer | query:NAME | none: the
 * sources of dedupe, read by the same code at intake.  0, or -1 with
 * ps->msg set.
 */
static int
serialize_key(struct parse_state *ps, struct queue_conf *q,
    const char *value)
{
	char msg[192];

	if (strcmp(value, "none") == 0) {
		memset(&q->serialize, 0, sizeof(q->serialize));
		return 0;
	}
	if (verify_dedupe_parse(value, &q->serialize, msg, sizeof(msg)) ==
	    -1) {
		snprintf(ps->msg, sizeof(ps->msg), "serialize_by: \"%.32s\": "
		    "%.150s", value, msg);
		return -1;
	}
	return 0;
}

/*
 * The keys of trust at the door: verify, secret_file, tolerance,
 * keep_rejected, dedupe, user, group.  1 when name is one of them (*rc
 * then says how it went), else 0.  What depends on other keys (the
 * secrets, the user's groups) is settled in finish_trust().
 */
static int
trust_key(struct parse_state *ps, struct queue_conf *q, const char *name,
    const char *value, int *rc)
{
	char msg[192];
	int64_t ms;

	*rc = 0;
	if (strcmp(name, "verify") == 0) {
		q->line_verify = ps->line;
		if (verify_parse(value, &q->verify, msg, sizeof(msg)) == -1) {
			snprintf(ps->msg, sizeof(ps->msg), "verify: %s", msg);
			*rc = -1;
		}
	} else if (strcmp(name, "secret_file") == 0) {
		q->line_secret = ps->line;
		if (value[0] != '/') {
			snprintf(ps->msg, sizeof(ps->msg), "secret_file: "
			    "\"%s\": must be an absolute path", value);
			*rc = -1;
		} else
			*rc = set_str(ps, &q->secret_file, value);
	} else if (strcmp(name, "tolerance") == 0) {
		if (config_parse_duration(value, &ms) == -1 || ms < 1000)
			*rc = key_bad(ps, name, value);
		else
			q->tolerance_ms = ms;
	} else if (strcmp(name, "keep_rejected") == 0) {
		if (parse_int(value, 0, 10000000, &q->keep_rejected) == -1)
			*rc = key_bad(ps, name, value);
	} else if (strcmp(name, "dedupe") == 0) {
		q->dedupe_set = 1;
		if (strcmp(value, "none") == 0)
			memset(&q->dedupe, 0, sizeof(q->dedupe));
		else if (verify_dedupe_parse(value, &q->dedupe, msg,
		    sizeof(msg)) == -1) {
			snprintf(ps->msg, sizeof(ps->msg), "dedupe: \"%.32s\": "
			    "%.150s", value, msg);
			*rc = -1;
		}
	} else if (strcmp(name, "user") == 0) {
		struct passwd *pw;

		if ((pw = getpwnam(value)) == NULL) {
			snprintf(ps->msg, sizeof(ps->msg), "user: \"%.64s\": "
			    "no such user", value);
			*rc = -1;
		} else {
			q->uid = pw->pw_uid;
			if (q->group == NULL)
				q->gid = pw->pw_gid;
			*rc = set_str(ps, &q->user, value);
		}
	} else if (strcmp(name, "group") == 0) {
		struct group *gr;

		if ((gr = getgrnam(value)) == NULL) {
			snprintf(ps->msg, sizeof(ps->msg), "group: \"%.64s\": "
			    "no such group", value);
			*rc = -1;
		} else {
			q->gid = gr->gr_gid;
			*rc = set_str(ps, &q->group, value);
		}
	} else
		return 0;
	return 1;
}

static int
queue_key(struct parse_state *ps, struct queue_conf *q, const char *name,
    const char *value)
{
	const char *dots;
	char lo[32];
	int64_t v;
	size_t sz;
	int rc;

	if (strcmp(name, "handler") == 0) {
		q->line_handler = ps->line;
		return parse_handler(q, value, ps->msg, sizeof(ps->msg));
	}
	if (trust_key(ps, q, name, value, &rc))
		return rc;
	if (flow_conf_key(&q->flow, name, value, ps->msg, sizeof(ps->msg),
	    &rc))
		return rc;
	if (strcmp(name, "serialize_by") == 0)
		return serialize_key(ps, q, value);
	/* Which kind a queue has is known only at the end (a handler line
	 * may follow): these keys remember their line for queues_check. */
	if (strcmp(name, "script") == 0 || strcmp(name, "param") == 0) {
		if (q->fcgi_only_line == 0)
			q->fcgi_only_line = ps->line;
		if (strcmp(name, "param") == 0)
			return parse_param(q, value, ps->msg, sizeof(ps->msg));
		if (value[0] != '/') {
			snprintf(ps->msg, sizeof(ps->msg), "script: \"%s\": "
			    "must be an absolute path", value);
			return -1;
		}
		free(q->script);
		return (q->script = strdup(value)) == NULL ? -1 : 0;
	}
	if (strcmp(name, "tls_ca") == 0) {
		if (value[0] == '\0')
			goto bad;
		/* Checked here, so that fcgiq -t names the line; each
		 * attempt reads it again (a renewed CA needs no reload). */
		if (access(value, R_OK) == -1) {
			snprintf(ps->msg, sizeof(ps->msg), "tls_ca: \"%s\": %s",
			    value, strerror(errno));
			return -1;
		}
		if (q->tls_ca_line == 0)
			q->tls_ca_line = ps->line;
		free(q->tls_ca);
		return (q->tls_ca = strdup(value)) == NULL ? -1 : 0;
	}
	if (strcmp(name, "concurrency") == 0) {
		if (parse_int(value, 1, 256, &q->concurrency) == -1)
			goto bad;
	} else if (strcmp(name, "max_attempts") == 0) {
		if (parse_int(value, 1, 1000, &q->max_attempts) == -1)
			goto bad;
	} else if (strcmp(name, "priority") == 0) {
		if (parse_int(value, -1000, 1000, &q->priority) == -1)
			goto bad;
	} else if (strcmp(name, "timeout") == 0) {
		if (config_parse_duration(value, &q->timeout_ms) == -1 ||
		    q->timeout_ms == 0)
			goto bad;
	} else if (strcmp(name, "keep_done") == 0) {
		if (config_parse_duration(value, &q->keep_done_ms) == -1)
			goto bad;
	} else if (strcmp(name, "backoff") == 0) {
		/* "MIN..MAX" */
		if ((dots = strstr(value, "..")) == NULL ||
		    (size_t)(dots - value) >= sizeof(lo))
			goto bad;
		memcpy(lo, value, (size_t)(dots - value));
		lo[dots - value] = '\0';
		if (config_parse_duration(lo, &q->backoff_min_ms) == -1 ||
		    config_parse_duration(dots + 2, &q->backoff_max_ms) == -1 ||
		    q->backoff_min_ms > q->backoff_max_ms)
			goto bad;
	} else if (strcmp(name, "max_queued") == 0) {
		char *end;
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < 1)
			goto bad;
		q->max_queued = v;
	} else if (strcmp(name, "rlimit_as") == 0) {
		if (config_parse_size(value, &sz) == -1 || sz < 1024 * 1024)
			goto bad;
		q->rlimit_as = sz;
	} else if (strcmp(name, "rlimit_cpu") == 0) {
		if (config_parse_duration(value, &v) == -1 || v < 1000)
			goto bad;
		/* Rounded up; v + 999 would overflow near INT64_MAX. */
		q->rlimit_cpu_s = (uint64_t)v / 1000 + (v % 1000 != 0);
	} else if (strcmp(name, "rlimit_nofile") == 0) {
		int n;
		if (parse_int(value, 3, 1 << 20, &n) == -1)
			goto bad;
		q->rlimit_nofile = (uint64_t)n;
	} else if (strcmp(name, "max_result") == 0) {
		if (config_parse_size(value, &sz) == -1 || sz > (size_t)1 << 30)
			goto bad;
		q->max_result = sz;
	} else
		return key_unknown(ps, name, "queue ", q->name);
	return 0;
bad:
	return key_bad(ps, name, value);
}

/* inih callback: nonzero to go on.  inih reports the line of the first
 * callback that returned 0, and we keep that callback's message. */
static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	struct queue_conf *q;
	const char *qname;
	int rc;

	if (ps->failed)
		return 1;	/* keep the first message */
	if (strcmp(section, "fcgiq") == 0)
		rc = global_key(ps, name, value);
	else if (strncmp(section, "queue ", 6) == 0) {
		qname = section + 6;
		while (*qname == ' ')
			qname++;
		if (!valid_queue_name(qname)) {
			snprintf(ps->msg, sizeof(ps->msg), "[%s]: a queue name "
			    "is 1-%d characters of A-Z a-z 0-9 - _ .", section,
			    QUEUE_NAME_MAX);
			rc = -1;
		} else {
			if ((q = find_or_add_queue(ps->c, qname)) == NULL) {
				snprintf(ps->msg, sizeof(ps->msg), "out of memory");
				rc = -1;
			} else
				rc = queue_key(ps, q, name, value);
		}
	} else if (strncmp(section, "schedule ", 9) == 0)
		rc = schedule_key(ps->c, section, name, value, ps->line,
		    ps->msg, sizeof(ps->msg));
	else {
		snprintf(ps->msg, sizeof(ps->msg), "unknown section [%s] "
		    "(expected [fcgiq], [queue NAME] or [schedule NAME])",
		    section);
		rc = -1;
	}
	if (rc == -1) {
		if (ps->msg[0] == '\0')
			snprintf(ps->msg, sizeof(ps->msg), "out of memory");
		ps->failed = 1;
		return 0;
	}
	return 1;
}

/* Settle what the file left unsaid; -1 with msg on an inconsistency. */
static int
finish(struct config *c, char *msg, size_t len)
{
	if (c->database == NULL &&
	    (c->database = strdup(CONFIG_DEFAULT_DATABASE)) == NULL)
		goto nomem;
	if (c->handler_path == NULL &&
	    (c->handler_path = strdup(CONFIG_DEFAULT_PATH)) == NULL)
		goto nomem;
	if (c->status_prefix == NULL &&
	    (c->status_prefix = strdup("/jobs/")) == NULL)
		goto nomem;
	if (c->nqueues == 0 && add_queue(c, "default") == NULL)
		goto nomem;
	if (c->dead_letter_queue != NULL &&
	    config_queue(c, c->dead_letter_queue) == NULL) {
		snprintf(msg, len, "dead_letter_queue: \"%s\": no [queue %s]",
		    c->dead_letter_queue, c->dead_letter_queue);
		return -1;
	}
	if (c->metrics_file != NULL && !store_is_postgresql(c->database)) {
		snprintf(msg, len, "metrics_file: only with PostgreSQL (a "
		    "SQLite database's is %s-metrics, beside it)", c->database);
		return -1;
	}
	return 0;
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

/* Keys that belong to one kind, in a queue of another: "FILE:LINE: ...". */
static int
queues_check(const struct config *c, char *err, size_t errlen)
{
	const struct queue_conf *q;
	size_t i;

	for (i = 0; i < c->nqueues; i++) {
		q = &c->queues[i];
		if (q->fcgi_only_line > 0 && q->kind != HANDLER_FASTCGI) {
			snprintf(err, errlen, "%s:%d: [queue %s]: script and "
			    "param need a fastcgi: handler", c->path,
			    q->fcgi_only_line, q->name);
			return -1;
		}
		if (q->tls_ca_line > 0 && q->kind != HANDLER_HTTP) {
			snprintf(err, errlen, "%s:%d: [queue %s]: tls_ca needs "
			    "an http: handler", c->path, q->tls_ca_line,
			    q->name);
			return -1;
		}
	}
	return 0;
}

/*
 * Read q's secret file into q->keys.  The file must be a regular file that
 * others cannot read; each line that is not blank is one secret (leading
 * and trailing blanks dropped), any of which may match, so a secret is
 * rotated by adding the new line, then removing the old one.  0, or -1
 * with the reason in msg (never a secret).
 */
static int
read_secrets(struct queue_conf *q, char *msg, size_t len)
{
	struct stat st;
	char *buf = NULL, *line, *save, *end;
	char why[160];
	ssize_t n;
	size_t got = 0;
	int fd, rc = -1;

	if ((fd = open(q->secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) ==
	    -1) {
		snprintf(msg, len, "secret_file: %s: %s", q->secret_file,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(msg, len, "secret_file: %s: %s", q->secret_file,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, len, "secret_file: %s: not a regular file",
		    q->secret_file);
		goto done;
	}
	if ((st.st_mode & S_IRWXO) != 0) {
		snprintf(msg, len, "secret_file: %s: others may read it (mode "
		    "%04o): chmod o-rwx it", q->secret_file,
		    (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_size > SECRET_FILE_MAX) {
		snprintf(msg, len, "secret_file: %s: over %d bytes",
		    q->secret_file, SECRET_FILE_MAX);
		goto done;
	}
	if ((buf = malloc(SECRET_FILE_MAX + 1)) == NULL) {
		snprintf(msg, len, "out of memory");
		goto done;
	}
	while (got < SECRET_FILE_MAX &&
	    (n = read(fd, buf + got, SECRET_FILE_MAX - got)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(msg, len, "secret_file: %s: %s",
			    q->secret_file, strerror(errno));
			goto done;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
		    end[-1] == '\r'))
			*--end = '\0';
		if (*line == '\0')
			continue;
		if (q->nkeys == SECRETS_MAX) {
			snprintf(msg, len, "secret_file: %s: more than %d "
			    "secrets", q->secret_file, SECRETS_MAX);
			goto done;
		}
		if (q->keys == NULL && (q->keys = calloc(SECRETS_MAX,
		    sizeof(*q->keys))) == NULL) {
			snprintf(msg, len, "out of memory");
			goto done;
		}
		if (verify_key_make(&q->verify, line, &q->keys[q->nkeys], why,
		    sizeof(why)) == -1) {
			snprintf(msg, len, "secret_file: %s: secret %zu: %s",
			    q->secret_file, q->nkeys + 1, why);
			goto done;
		}
		q->nkeys++;
	}
	if (q->nkeys == 0) {
		snprintf(msg, len, "secret_file: %s: no secret in it",
		    q->secret_file);
		goto done;
	}
	rc = 0;
done:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	(void)close(fd);
	return rc;
}

/* The supplementary groups of q's user, for setgroups() in a handler's
 * child (which cannot read /etc/group itself).  0 or -1. */
static int
user_groups(struct queue_conf *q)
{
	gid_t *g;
	int n = 16;

	for (;;) {
		if ((g = realloc(q->groups, (size_t)n * sizeof(*g))) == NULL)
			return -1;
		q->groups = g;
		if (getgrouplist(q->user, q->gid, q->groups, &n) != -1)
			break;
		if (n > 65536)
			return -1;
	}
	q->ngroups = n;
	return 0;
}

/*
 * Settle the trust keys of every queue once the file is read: a verify
 * needs a readable secret file with a secret in it (never "accept
 * everything"), and the dedupe source defaults to the scheme's.  -1 with
 * "FILE:LINE: message" in err.
 */
static int
finish_trust(struct config *c, char *err, size_t errlen)
{
	struct queue_conf *q;
	char msg[384];
	size_t i;
	int line;

	for (i = 0; i < c->nqueues; i++) {
		q = &c->queues[i];
		line = 0;
		msg[0] = '\0';
		if (q->verify.scheme != VERIFY_NONE && q->secret_file == NULL) {
			line = q->line_verify;
			snprintf(msg, sizeof(msg), "verify = %s needs a "
			    "secret_file", verify_scheme_name(q->verify.scheme));
		} else if (q->verify.scheme == VERIFY_NONE &&
		    q->secret_file != NULL) {
			line = q->line_secret;
			snprintf(msg, sizeof(msg), "secret_file without verify");
		} else if (q->secret_file != NULL &&
		    read_secrets(q, msg, sizeof(msg)) == -1)
			line = q->line_secret;
		else if (q->user != NULL && user_groups(q) == -1) {
			line = q->line_handler;
			snprintf(msg, sizeof(msg), "user: %s: its groups "
			    "cannot be read", q->user);
		} else if (q->group != NULL && q->user == NULL) {
			line = q->line_handler;
			snprintf(msg, sizeof(msg), "[queue %s]: group without "
			    "user", q->name);
		}
		if (msg[0] != '\0') {
			if (line == 0)
				snprintf(err, errlen, "%s: %s", c->path, msg);
			else
				snprintf(err, errlen, "%s:%d: %s", c->path,
				    line, msg);
			return -1;
		}
		if (!q->dedupe_set)
			verify_dedupe_default(q->verify.scheme, &q->dedupe);
	}
	return 0;
}

int
config_check_run(const struct config *c, char *err, size_t errlen)
{
	const struct queue_conf *q;
	size_t i;

	if (geteuid() != 0)
		return 0;
	for (i = 0; i < c->nqueues; i++) {
		q = &c->queues[i];
		if (q->handler_argv != NULL && q->user == NULL) {
			snprintf(err, errlen, "%s:%d: [queue %s]: fcgiq runs "
			    "as root, and an exec: handler never does unless "
			    "told: add user = NAME (an unprivileged one, or "
			    "user = root)", c->path != NULL ? c->path :
			    "embedded default", q->line_handler, q->name);
			return -1;
		}
	}
	return 0;
}

/*
 * inih's line reader, watching for section headers on the way: inih calls
 * us back only for keys, and "[queue mail]" with no keys under it must
 * still declare the queue.
 */
static char *
read_line(char *buf, int len, void *arg)
{
	struct parse_state *ps = arg;
	char name[QUEUE_NAME_MAX + 2];
	const char *p, *end;
	size_t n;

	if (fgets(buf, len, ps->f) == NULL)
		return NULL;
	ps->line++;
	for (p = buf; isspace((unsigned char)*p); p++)
		;
	if (ps->failed || strncmp(p, "[queue", 6) != 0 ||
	    (end = strchr(p, ']')) == NULL)
		return buf;
	for (p += 6; p < end && isspace((unsigned char)*p); p++)
		;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	n = (size_t)(end - p);
	if (n < sizeof(name)) {
		memcpy(name, p, n);
		name[n] = '\0';
	}
	if (n >= sizeof(name) || !valid_queue_name(name)) {
		snprintf(ps->msg, sizeof(ps->msg), "[queue %.*s]: a queue name "
		    "is 1-%d characters of A-Z a-z 0-9 - _ .", (int)n > 80 ? 80 :
		    (int)n, p, QUEUE_NAME_MAX);
		ps->failed = 1;
		ps->failed_line = ps->line;
	} else if (find_or_add_queue(ps->c, name) == NULL) {
		snprintf(ps->msg, sizeof(ps->msg), "out of memory");
		ps->failed = 1;
		ps->failed_line = ps->line;
	}
	return buf;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct parse_state ps;
	char msg[512], real[PATH_MAX];
	int rc;

	config_defaults(c);
	if (path != NULL) {
		memset(&ps, 0, sizeof(ps));
		ps.c = c;
		if ((c->path = strdup(path)) == NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		if ((ps.f = fopen(path, "re")) == NULL) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		rc = ini_parse_stream(read_line, &ps, on_key, &ps);
		fclose(ps.f);
		if (ps.failed_line > 0 && (rc == 0 || rc > ps.failed_line))
			rc = ps.failed_line;
		if (rc == -2) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		if (rc > 0) {
			/* A line inih could not parse has no message of ours. */
			snprintf(err, errlen, "%s:%d: %s", path, rc,
			    ps.failed ? ps.msg : "syntax error (expected "
			    "[section] or key = value)");
			goto fail;
		}
	}
	if (finish(c, msg, sizeof(msg)) == -1) {
		/* Like every other error of the file: its name first. */
		snprintf(err, errlen, "%s: %s", path != NULL ? path :
		    "built-in configuration", msg);
		goto fail;
	}
	if (queues_check(c, err, errlen) == -1 ||
	    schedule_finish(c, err, errlen) == -1)
		goto fail;
	if (path != NULL && finish_trust(c, err, errlen) == -1)
		goto fail;
	/* Every program that loads this file shares the metrics of its
	 * host's installation (metrics.h), whichever directory it runs in
	 * and whatever path names the file. */
	if (path != NULL && realpath(path, real) != NULL)
		path = real;
	if (metrics_set_file(c->database, c->metrics_file, path) == -1) {
		snprintf(err, errlen, "%s: metrics_file: too long", path);
		goto fail;
	}
	return 0;
fail:
	config_free(c);
	return -1;
}

void
config_free(struct config *c)
{
	size_t i, j;

	for (i = 0; i < c->nqueues; i++) {
		free(c->queues[i].name);
		handler_clear(&c->queues[i]);
		for (j = 0; j < 2 * c->queues[i].nparams; j++)
			free(c->queues[i].params[j]);
		free(c->queues[i].params);
		free(c->queues[i].script);
		free(c->queues[i].tls_ca);
		free(c->queues[i].secret_file);
		for (j = 0; j < c->queues[i].nkeys; j++)
			verify_key_free(&c->queues[i].keys[j]);
		free(c->queues[i].keys);
		free(c->queues[i].user);
		free(c->queues[i].group);
		free(c->queues[i].groups);
	}
	free(c->queues);
	schedule_free(&c->schedules);
	free(c->path);
	free(c->database);
	free(c->handler_path);
	free(c->log_file);
	free(c->status_prefix);
	free(c->dead_letter_queue);
	free(c->metrics_file);
	memset(c, 0, sizeof(*c));
}

struct config_ref *
config_ref_new(struct config *c)
{
	struct config_ref *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->c = *c;
	r->refs = 1;
	memset(c, 0, sizeof(*c));
	return r;
}

struct config_ref *
config_ref(struct config_ref *r)
{
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	return r;
}

void
config_unref(struct config_ref *r)
{
	/* Acquire-release: every holder's reads happen before the free. */
	if (r != NULL &&
	    __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		config_free(&r->c);
		free(r);
	}
}

const struct queue_conf *
config_queue(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nqueues; i++)
		if (strcmp(c->queues[i].name, name) == 0)
			return &c->queues[i];
	return NULL;
}

int
config_mkdir_database(const struct config *c, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	char *slash;

	if (store_is_postgresql(c->database))
		return 0;	/* a server's, nothing on our disk */
	if (strlen(c->database) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", c->database);
		return -1;
	}
	strcpy(dir, c->database);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}
