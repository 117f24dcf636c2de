/*
 * config: fcgiq.conf, an INI file parsed with inih, or the embedded default
 * when no file is named.  A loaded struct config is immutable; SIGHUP loads
 * a new one and swaps it in.
 *
 *   [fcgiq]                 database, durability, max_body, log, threads,
 *                           helper, grace, path, status_prefix,
 *                           dead_letter_queue, max_wait, metrics_file
 *   [queue NAME]            handler, concurrency, max_attempts, timeout,
 *                           backoff, max_queued, keep_done, max_result,
 *                           priority, rlimit_as, rlimit_cpu, rlimit_nofile,
 *                           verify, secret_file, tolerance, keep_rejected,
 *                           dedupe, user, group, serialize_by,
 *                           script, param (fastcgi:), tls_ca (http:),
 *                           rate, burst, pause_after, pause_for,
 *                           retry_concurrency, quarantine_after (flow.h)
 *   [schedule NAME]         cron, timezone, queue, body, body_file,
 *                           catch_up (schedule.c)
 */
#ifndef FCGIQ_CONFIG_H
#define FCGIQ_CONFIG_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "schedule.h"
#include "flow.h"
#include "verify.h"

#define CONFIG_DEFAULT_DATABASE	"./var/fcgiq.db"
#define CONFIG_DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"	/* handlers' */

/* What runs a queue's jobs: the scheme of its handler line. */
enum handler_kind {
	HANDLER_NONE = 0,	/* no handler: jobs wait */
	HANDLER_EXEC,		/* exec:/path args: a process a job */
	HANDLER_FASTCGI,	/* fastcgi:unix:/path, fastcgi:HOST:PORT */
	HANDLER_HTTP		/* http://..., https://... (config.c's
				 * parse_http_handler) */
};

struct queue_conf {
	char	 *name;
	char	 *handler;		/* the handler line as written, or NULL: none */
	enum handler_kind kind;
	char	**handler_argv;		/* exec: split on blanks (no shell), NULL-terminated */
	/* fastcgi: the upstream, a unix socket (fcgi_unix) or a TCP address
	 * (fcgi_host, fcgi_port); SCRIPT_FILENAME; extra params, nparams
	 * NAME, VALUE pairs in params[2i], params[2i + 1]. */
	char	 *fcgi_unix;
	char	 *fcgi_host;
	int	  fcgi_port;
	char	 *script;
	char	**params;
	size_t	  nparams;
	/* http: the URL as written (after "http:" for the http:https://...
	 * form), and the CA file that verifies it (NULL: the system's). */
	char	 *url;
	char	 *tls_ca;
	int	  concurrency;		/* worker slots, default 1 */
	int	  max_attempts;		/* default 5 */
	int64_t	  timeout_ms;		/* handler timeout, default 60 s */
	int64_t	  backoff_min_ms;	/* default 1 s */
	int64_t	  backoff_max_ms;	/* default 1 h */
	int64_t	  max_queued;		/* waiting jobs before 503, default 1000000 */
	int64_t	  keep_done_ms;		/* finished jobs pruned after, default 7 d */
	size_t	  max_result;		/* stdout kept, default 64 KiB */
	int	  priority;		/* jobs of this queue, default 0 */
	/* Resource limits of the handler; 0 leaves the helper's own. */
	uint64_t  rlimit_as;		/* bytes of address space */
	uint64_t  rlimit_cpu_s;		/* CPU seconds */
	uint64_t  rlimit_nofile;	/* open files */
	struct flow_conf flow;		/* rate, breaker, retry lane, quarantine */

	/* Trust at the door: the sender's signature, checked before the
	 * job is stored, and the idempotency key its delivery id gives. */
	struct verify_spec verify;	/* scheme VERIFY_NONE: no check */
	char	 *secret_file;
	struct verify_key *keys;	/* the file's secrets, any may match */
	size_t	  nkeys;
	int64_t	  tolerance_ms;		/* signed timestamps, default 5 min */
	int	  keep_rejected;	/* rows kept per queue, default 1000 */
	struct verify_dedupe dedupe;	/* set, or the scheme's own */
	int	  dedupe_set;		/* dedupe = was written */

	/* One at a time per key: where a job's serial key comes from
	 * (kind VERIFY_DEDUPE_NONE: the queue does not serialize). */
	struct verify_dedupe serialize;

	/* Who exec: handlers run as when the helper runs as root. */
	char	 *user;			/* NULL: not written */
	char	 *group;		/* NULL: the user's own */
	uid_t	  uid;
	gid_t	  gid;
	gid_t	 *groups;		/* the user's supplementary groups */
	int	  ngroups;

	int	  line_handler;		/* where keys were written, for */
	int	  line_verify;		/* messages that come after */
	int	  line_secret;		/* the file is read */
	int	  fcgi_only_line;	/* first script/param line: checked at the end */
	int	  tls_ca_line;		/* likewise tls_ca, for http: only */
};

struct config {
	char		*path;		/* file loaded, NULL for the embedded default */
	char		*database;
	int		 durability;	/* enum store_durability */
	size_t		 max_body;	/* default 1 MiB */
	int		 log_level;	/* enum log_level */
	int		 threads;	/* responder threads, default 32 */
	int		 helper;	/* fork the helper, default 1 */
	int64_t		 grace_ms;	/* shutdown grace for handlers, default 10 s */
	char		*handler_path;	/* PATH given to handlers */
	char		*log_file;	/* stderr appended here, or NULL */
	char		*status_prefix;	/* default "/jobs/" */
	char		*dead_letter_queue; /* a queue of c, or NULL: none */
	char		*metrics_file;	/* PostgreSQL: this host's shared
					   counters (metrics.h), or NULL */
	int		 busy_timeout_ms; /* default 5000 */
	int64_t		 max_wait_ms;	/* Prefer: wait=N capped here, default
					   60 s; 0: never wait */
	struct queue_conf *queues;
	size_t		 nqueues;
	struct schedules schedules;	/* [schedule NAME] (schedule.h) */
};

/*
 * Load path (NULL: the embedded default).  0 on success; -1 with a message
 * naming the file and line in err.  On failure *c is left empty.
 */
int	config_load(struct config *c, const char *path, char *err, size_t errlen);
void	config_free(struct config *c);
const struct queue_conf *config_queue(const struct config *c, const char *name);

/*
 * The running configuration, shared by what started under it (the
 * router's requests, the helper's jobs): the last holder frees it.
 * Holding and dropping are atomic, safe from any thread.
 */
struct config_ref {
	struct config	c;
	int		refs;
};

/* A config_ref held once that takes over *c (then emptied); NULL when out
 * of memory, *c untouched. */
struct config_ref *config_ref_new(struct config *c);
/* One more hold on r; returns r. */
struct config_ref *config_ref(struct config_ref *r);
/* Drop one hold on r (NULL: nothing); the last one frees it. */
void	config_unref(struct config_ref *r);

/*
 * What only a process that runs handlers checks (fcgiq and its helper,
 * fcgiq -t; not fcgiqctl's reads): as root, every queue with an exec:
 * handler names its user, so that no handler runs as root unless
 * "user = root" is written out.  0, or -1 with "FILE:LINE: message" in err.
 */
int	config_check_run(const struct config *c, char *err, size_t errlen);

/* Create the database's directory (one level) when it is missing: the
 * embedded default ./var/fcgiq.db must work in a fresh directory.  0 or -1. */
int	config_mkdir_database(const struct config *c, char *err, size_t errlen);

/* "1M", "512k", "1048576" -> bytes.  0 or -1. */
int	config_parse_size(const char *s, size_t *out);
/* "60s", "250ms", "7d", "1h", "30m", bare number = seconds -> ms.  0 or -1. */
int	config_parse_duration(const char *s, int64_t *out_ms);

#endif /* FCGIQ_CONFIG_H */
