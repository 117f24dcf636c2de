/*
 * fcgiqctl: read and change the queue from a shell, whether fcgiq runs or
 * not.  Everything goes through the store's API: changes through the
 * same transitions the responder and helper use, listings through its
 * read functions.
 * Tables for people, --json for scripts.
 *
 * Exit codes: 0 done; 1 database or system error; 2 usage; 3 no such job;
 * 4 the job is in a state that refuses the change.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "ctl-bulk.h"
#include "ctl-schedules.h"
#include "gauges.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "supervisor.h"
#include "text.h"
#include "top.h"
#include "wake.h"

#define EXIT_DBERR	1
#define EXIT_USAGE	2
#define EXIT_NOTFOUND	3
#define EXIT_REFUSED	4

/* Read when neither -c nor -d is given and it exists. */
#define FCGIQCTL_SYSTEM_CONF	"/etc/fcgiq/fcgiq.conf"

static int		 opt_json;
static const char	*opt_db;
static const char	*opt_conf;
static struct config	 conf;

static const char usage_text[] =
    "usage: fcgiqctl [-d DB | -c CONF] [--json] COMMAND [ARGS]\n"
    "       fcgiqctl -h | --help | --version\n"
    "  (neither -d nor -c: " FCGIQCTL_SYSTEM_CONF " when it exists)\n"
    "  stats [--prometheus]           jobs per queue and state\n"
    "  ls [-q QUEUE] [-s STATE] [-n LIMIT]   newest jobs first\n"
    "  show ID                        one job, body included\n"
    "  cancel ID                      cancel a job that is not running\n"
    "  retry ID | retry --dead [-q QUEUE]   run dead or cancelled jobs again\n"
    "  retry|discard|cancel FILTERS --all-matching [--yes]   many jobs at once\n"
    "      FILTERS: [-q QUEUE] [--state S[,S]] [--since T] [--until T]\n"
    "               [--error LIKE-PATTERN]     (T: 2h, 7d, 2026-12-03T10:00Z)\n"
    "  purge --done|--dead|--cancelled [--older-than 7d] [-q QUEUE]\n"
    "  pause QUEUE | resume QUEUE     stop or restart starting its jobs\n"
    "  enqueue QUEUE [--delay 30s] [--priority N] < FILE\n"
    "  rejected [QUEUE] [-n LIMIT]    requests refused at the door, newest first\n"
    "  top [-b] [-n FRAMES]           live view, every second; q quits\n"
    "  schedules                      [schedule NAME]s: last slot, next run\n"
    "A helper alone runs with \"fcgiq work\".\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

static void
iso8601(int64_t ms, char *buf, size_t len)
{
	if (ms <= 0)
		snprintf(buf, len, "-");
	else
		text_iso8601(ms, buf, len);
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(j);
}

static struct store *
open_store(int readonly)
{
	struct store_opts o = { 0 };
	struct store *s;
	char err[512];

	o.durability = conf.durability;
	o.busy_timeout_ms = conf.busy_timeout_ms;
	o.readonly = readonly;
	if (!readonly && config_mkdir_database(&conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "fcgiqctl: %s\n", err);
		exit(EXIT_DBERR);
	}
	if ((s = store_open(conf.database, &o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fcgiqctl: %s\n", err);
		exit(EXIT_DBERR);
	}
	return s;
}

/*
 * The metrics role's exposition on stdout, for node_exporter's textfile
 * collector (write it to a temporary file, then rename).  The counts are
 * taken here when they are due, as a scrape's thread would.
 */
static int
stats_prometheus(void)
{
	struct store *s = open_store(1);
	struct buf b;
	char err[256];
	int rc = 0;

	/* Joined, never created: fcgiq's processes own the file. */
	(void)metrics_open(conf.database, 0, err, sizeof(err));
	buf_init(&b, 0);
	if (gauges_render(&b, &conf, s, 1) == -1) {
		fprintf(stderr, "fcgiqctl: stats: out of memory\n");
		rc = EXIT_DBERR;
	} else if (fwrite(b.data, 1, b.len, stdout) != b.len ||
	    fflush(stdout) == EOF) {
		fprintf(stderr, "fcgiqctl: stats: %s\n", strerror(errno));
		rc = EXIT_DBERR;
	}
	buf_free(&b);
	metrics_close();
	store_close(s);
	return rc;
}

/* A line of stats for a queue whose breaker ever opened (store-flow.c). */
static void
stats_breaker(void *arg, const char *queue, const struct store_breaker *b)
{
	static const char *const names[] = { "closed", "open", "half-open" };
	int64_t now = *(const int64_t *)arg;
	char until[32];

	printf("breaker %-12s %-9s", queue,
	    b->state >= 0 && b->state <= 2 ? names[b->state] : "?");
	if (b->state != 0) {
		iso8601(b->open_until, until, sizeof(until));
		printf(" until %s (%+.1fs)", until,
		    (double)(b->open_until - now) / 1000.0);
	}
	printf(", %d failed in a row, opened %lld time%s\n", b->failures,
	    (long long)b->trips, b->trips == 1 ? "" : "s");
}

static int
cmd_stats(int argc, char **argv)
{
	struct store *s = open_store(1);
	struct store_stat *st;
	size_t n, i;
	int64_t now = store_now();
	json_t *a;

	if (argc == 2 && strcmp(argv[1], "--prometheus") == 0) {
		store_close(s);
		return stats_prometheus();
	}
	if (argc != 1)
		usage();
	if (store_stats(s, &st, &n) == -1) {
		fprintf(stderr, "fcgiqctl: stats: %s\n", store_error(s));
		store_close(s);
		return EXIT_DBERR;
	}
	if (opt_json) {
		a = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I}",
			    "queue", st[i].queue, "state",
			    store_state_name(st[i].state),
			    "jobs", (json_int_t)st[i].count,
			    "oldest_age_ms",
			    (json_int_t)(now - st[i].oldest_created_at)));
		print_json(a);
	} else {
		printf("%-20s %-10s %10s %14s\n", "QUEUE", "STATE", "JOBS",
		    "OLDEST AGE");
		for (i = 0; i < n; i++)
			printf("%-20s %-10s %10" PRId64 " %13.1fs\n", st[i].queue,
			    store_state_name(st[i].state), st[i].count,
			    (double)(now - st[i].oldest_created_at) / 1000.0);
		/* Then each queue whose circuit breaker ever opened. */
		if (store_breakers(s, stats_breaker, &now) == -1)
			fprintf(stderr, "fcgiqctl: stats: %s\n",
			    store_error(s));
	}
	free(st);
	store_close(s);
	return 0;
}

/* One line of ls: into the JSON array arg, or printed when arg is NULL. */
static void
ls_line(void *arg, const struct store_summary *j)
{
	json_t *a = arg;
	char created[32];

	iso8601(j->created_at, created, sizeof(created));
	if (a != NULL) {
		json_array_append_new(a, json_pack(
		    "{s:s,s:s,s:s,s:i,s:i,s:s,s:I,s:s}", "id", j->id,
		    "queue", j->queue, "state", store_state_name(j->state),
		    "attempts", j->attempts, "max_attempts", j->max_attempts,
		    "created_at", created, "body_bytes", (json_int_t)j->body_len,
		    "last_error", j->last_error));
		return;
	}
	/* Only the first line of an error, for the table. */
	printf("%-30s %-12s %-9s %4d/%-3d %-24s %8lld  %.*s\n", j->id, j->queue,
	    store_state_name(j->state), j->attempts, j->max_attempts, created,
	    (long long)j->body_len, (int)strcspn(j->last_error, "\n"),
	    j->last_error);
}

static int
cmd_ls(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL, *state = NULL;
	enum store_state want = STORE_JOB_ANY;
	long limit = 20;
	struct store *s;
	json_t *a = NULL;
	int ch, ret = 0;

	optind = 0;	/* glibc: 0 re-initialises getopt for the command's own options */
	while ((ch = getopt_long(argc, argv, "q:s:n:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'q': queue = optarg; break;
		case 's': state = optarg; break;
		case 'n':
			limit = strtol(optarg, NULL, 10);
			if (limit <= 0)
				usage();
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	s = open_store(1);
	if (opt_json)
		a = json_array();
	else
		printf("%-30s %-12s %-9s %8s %-24s %8s  %s\n", "ID", "QUEUE",
		    "STATE", "ATTEMPTS", "CREATED", "BYTES", "LAST ERROR");
	/* A state that does not exist has no jobs: an empty listing. */
	if ((state == NULL || store_state_parse(state, &want) == 0) &&
	    store_list(s, queue, want, limit, ls_line, a) == -1) {
		fprintf(stderr, "fcgiqctl: ls: %s\n", store_error(s));
		json_decref(a);
		ret = EXIT_DBERR;
	} else if (a != NULL)
		print_json(a);
	store_close(s);
	return ret;
}

/* Text when it is UTF-8-looking text without NUL; otherwise a hexdump. */
static int
is_text(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == 0 || (p[i] < 0x20 && !isspace(p[i])) || p[i] == 0x7f)
			return 0;
	return 1;
}

static void
print_blob(const char *label, const unsigned char *p, size_t n)
{
	size_t i, j, shown = n > 512 ? 512 : n;

	if (p == NULL) {
		printf("%s: -\n", label);
		return;
	}
	if (is_text(p, n)) {
		printf("%s (%zu bytes):\n%.*s%s", label, n, (int)n, p,
		    n > 0 && p[n - 1] != '\n' ? "\n" : "");
		return;
	}
	printf("%s (%zu bytes, binary%s):\n", label, n,
	    shown < n ? ", first 512 shown" : "");
	for (i = 0; i < shown; i += 16) {
		printf("%08zx ", i);
		for (j = i; j < i + 16; j++)
			if (j < shown)
				printf(" %02x", p[j]);
			else
				printf("   ");
		printf("  |");
		for (j = i; j < i + 16 && j < shown; j++)
			putchar(isprint(p[j]) ? p[j] : '.');
		printf("|\n");
	}
}

static json_t *
blob_json(const void *p, size_t n)
{
	if (p == NULL)
		return json_null();
	if (is_text(p, n) && json_stringn(p, n) != NULL)
		return json_stringn(p, n);
	return json_sprintf("<%zu bytes binary>", n);
}

static int
cmd_show(int argc, char **argv)
{
	struct store *s;
	struct store_job *j;
	char c[32], r[32], st[32], f[32];
	int rc;

	if (argc != 2)
		usage();
	s = open_store(1);
	rc = store_get(s, argv[1], &j);
	if (rc == -1) {
		fprintf(stderr, "fcgiqctl: show: %s\n", store_error(s));
		store_close(s);
		return EXIT_DBERR;
	}
	if (rc == 0) {
		fprintf(stderr, "fcgiqctl: show: %s: no such job\n", argv[1]);
		store_close(s);
		return EXIT_NOTFOUND;
	}
	iso8601(j->created_at, c, sizeof(c));
	iso8601(j->run_at, r, sizeof(r));
	iso8601(j->started_at, st, sizeof(st));
	iso8601(j->finished_at, f, sizeof(f));
	if (opt_json) {
		print_json(json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:s,s:s,s:s,s:s,"
		    "s:s?,s:s?,s:s?,s:s?,s:s?,s:o,s:o,s:s?}",
		    "id", j->id, "queue", j->queue, "state",
		    store_state_name(j->state),
		    "priority", j->priority, "attempts", j->attempts,
		    "max_attempts", j->max_attempts, "created_at", c,
		    "run_at", r, "started_at", st, "finished_at", f,
		    "method", j->method, "request_uri", j->request_uri,
		    "content_type", j->content_type, "remote_addr",
		    j->remote_addr, "headers", j->headers,
		    "body", blob_json(j->body, j->body_len),
		    "result", blob_json(j->result, j->result_len),
		    "last_error", j->last_error));
	} else {
		printf("id:           %s\nqueue:        %s\nstate:        %s\n"
		    "priority:     %d\nattempts:     %d of %d\n"
		    "created_at:   %s\nrun_at:       %s\nstarted_at:   %s\n"
		    "finished_at:  %s\nrequest:      %s %s\n"
		    "content_type: %s\nremote_addr:  %s\nheaders:      %s\n"
		    "last_error:   %s\n",
		    j->id, j->queue, store_state_name(j->state), j->priority,
		    j->attempts,
		    j->max_attempts, c, r, st, f,
		    j->method ? j->method : "-",
		    j->request_uri ? j->request_uri : "-",
		    j->content_type ? j->content_type : "-",
		    j->remote_addr ? j->remote_addr : "-",
		    j->headers ? j->headers : "-",
		    j->last_error ? j->last_error : "-");
		print_blob("body", j->body, j->body_len);
		print_blob("result", j->result, j->result_len);
	}
	store_job_free(j);
	store_close(s);
	return 0;
}

/*
 * Count what this command did in the installation's metrics: joined for
 * the moment, never created (fcgiq's processes own the file; without it,
 * or without the right to write it, nothing is counted).
 */
static void
count(const char *queue, int cancelled)
{
	char err[256];

	if (metrics_open(conf.database, 0, err, sizeof(err)) == -1)
		return;
	if (cancelled)
		metrics_finished(queue, METRICS_CANCELLED, -1);
	else
		metrics_enqueued(queue, 1);
	metrics_close();
}

/* The bulk forms of retry, discard and cancel (ctl-bulk.c). */
static int
cmd_bulk(int argc, char **argv)
{
	struct ctl_bulk_env env = { &conf, 0, open_store };

	env.json = opt_json;
	return ctl_bulk(&env, argc, argv);
}

static int
cmd_cancel(int argc, char **argv)
{
	struct store_job *j;
	struct store *s;
	int rc, ret = 0;

	if (ctl_bulk_wanted(argc, argv))
		return cmd_bulk(argc, argv);
	if (argc != 2)
		usage();
	s = open_store(0);
	rc = store_cancel(s, argv[1], store_now());
	switch (rc) {
	case -1:
		fprintf(stderr, "fcgiqctl: cancel: %s\n", store_error(s));
		ret = EXIT_DBERR;
		break;
	case STORE_CANCEL_UNKNOWN:
		fprintf(stderr, "fcgiqctl: cancel: %s: no such job\n", argv[1]);
		ret = EXIT_NOTFOUND;
		break;
	case STORE_CANCEL_REFUSED:
		fprintf(stderr, "fcgiqctl: cancel: %s: already started or "
		    "finished\n", argv[1]);
		ret = EXIT_REFUSED;
		break;
	default:
		if (store_get(s, argv[1], &j) == 1) {
			count(j->queue, 1);
			store_job_free(j);
		}
		if (opt_json)
			print_json(json_pack("{s:s,s:s}", "id", argv[1],
			    "state", "cancelled"));
		else
			printf("%s cancelled\n", argv[1]);
	}
	store_close(s);
	return ret;
}

static int
cmd_retry(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dead", no_argument, NULL, 'D' },
		{ "queue", required_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL;
	struct store *s;
	int ch, dead = 0, rc, ret = 0;

	/*
	 * Ids made by earlier versions may start with '-' (every one of 30
	 * characters, one in 64 of 22): a lone argument the length of an id
	 * is the id, never options.
	 */
	if (ctl_bulk_wanted(argc, argv))
		return cmd_bulk(argc, argv);
	optind = 0;	/* glibc: 0 re-initialises getopt for the command's own options */
	if (argc == 2 && (strlen(argv[1]) == STORE_ID_LEN ||
	    strlen(argv[1]) == STORE_ID_LEN_V1)) {
		optind = 1;
	} else {
		while ((ch = getopt_long(argc, argv, "q:", lopts, NULL)) != -1) {
			switch (ch) {
			case 'D': dead = 1; break;
			case 'q': queue = optarg; break;
			default: usage();
			}
		}
	}
	if (dead ? optind != argc : optind != argc - 1 || queue != NULL)
		usage();
	s = open_store(0);
	if (dead) {
		if ((rc = store_retry_dead(s, queue, store_now())) == -1) {
			fprintf(stderr, "fcgiqctl: retry: %s\n", store_error(s));
			ret = EXIT_DBERR;
		} else if (opt_json)
			print_json(json_pack("{s:i}", "requeued", rc));
		else
			printf("%d dead job%s requeued\n", rc, rc == 1 ? "" : "s");
	} else {
		switch (store_retry(s, argv[optind], store_now())) {
		case -1:
			fprintf(stderr, "fcgiqctl: retry: %s\n", store_error(s));
			ret = EXIT_DBERR;
			break;
		case STORE_RETRY_UNKNOWN:
			fprintf(stderr, "fcgiqctl: retry: %s: no such job\n",
			    argv[optind]);
			ret = EXIT_NOTFOUND;
			break;
		case STORE_RETRY_REFUSED:
			fprintf(stderr, "fcgiqctl: retry: %s: only dead, "
			    "cancelled or retry-waiting jobs\n", argv[optind]);
			ret = EXIT_REFUSED;
			break;
		default:
			if (opt_json)
				print_json(json_pack("{s:s,s:s}", "id",
				    argv[optind], "state", "queued"));
			else
				printf("%s queued\n", argv[optind]);
		}
	}
	if (ret == 0)
		wake_notify(conf.database);
	store_close(s);
	return ret;
}

static int
cmd_purge(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "done", no_argument, NULL, 'd' },
		{ "dead", no_argument, NULL, 'x' },
		{ "cancelled", no_argument, NULL, 'c' },
		{ "older-than", required_argument, NULL, 'o' },
		{ "queue", required_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL;
	enum store_state states[3];
	struct store *s;
	int64_t age = 0;
	size_t n = 0, i;
	int ch, rc, total = 0, ret = 0;

	optind = 0;	/* glibc: 0 re-initialises getopt for the command's own options */
	while ((ch = getopt_long(argc, argv, "q:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'd': states[n++] = STORE_JOB_DONE; break;
		case 'x': states[n++] = STORE_JOB_DEAD; break;
		case 'c': states[n++] = STORE_JOB_CANCELLED; break;
		case 'o':
			if (config_parse_duration(optarg, &age) == -1)
				usage();
			break;
		case 'q': queue = optarg; break;
		default: usage();
		}
		if (n > 2)
			break;
	}
	/* Naming what to delete is required: no "purge" deletes everything. */
	if (optind != argc || n == 0)
		usage();
	s = open_store(0);
	for (i = 0; i < n; i++) {
		if ((rc = store_purge(s, queue, states[i], store_now() - age))
		    == -1) {
			fprintf(stderr, "fcgiqctl: purge: %s\n", store_error(s));
			ret = EXIT_DBERR;
			break;
		}
		total += rc;
	}
	if (ret == 0) {
		if (opt_json)
			print_json(json_pack("{s:i}", "deleted", total));
		else
			printf("%d job%s deleted\n", total, total == 1 ? "" : "s");
	}
	store_close(s);
	return ret;
}

static int
cmd_pause(int argc, char **argv, int paused)
{
	struct store *s;
	int ret = 0;

	if (argc != 2)
		usage();
	if (config_queue(&conf, argv[1]) == NULL) {
		fprintf(stderr, "fcgiqctl: %s: unknown queue \"%s\"\n", argv[0],
		    argv[1]);
		return EXIT_USAGE;
	}
	s = open_store(0);
	if (store_pause(s, argv[1], paused) == -1) {
		fprintf(stderr, "fcgiqctl: %s: %s\n", argv[0], store_error(s));
		ret = EXIT_DBERR;
	} else {
		if (!paused)
			wake_notify(conf.database);
		if (opt_json)
			print_json(json_pack("{s:s,s:b}", "queue", argv[1],
			    "paused", paused));
		else
			printf("%s %s\n", argv[1], paused ? "paused" : "resumed");
	}
	store_close(s);
	return ret;
}

static int
cmd_enqueue(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "delay", required_argument, NULL, 'D' },
		{ "priority", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	const struct queue_conf *q;
	struct store_newjob nj;
	struct store *s;
	struct buf body;
	size_t n, want;
	int64_t delay = 0, now;
	int ch, priority = 0, have_priority = 0, ret = 0;

	optind = 0;	/* glibc: 0 re-initialises getopt for the command's own options */
	while ((ch = getopt_long(argc, argv, "D:p:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'D':
			if (config_parse_duration(optarg, &delay) == -1)
				usage();
			break;
		case 'p':
			priority = atoi(optarg);
			have_priority = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if ((q = config_queue(&conf, argv[optind])) == NULL) {
		fprintf(stderr, "fcgiqctl: enqueue: unknown queue \"%s\" (not in "
		    "%s)\n", argv[optind], conf.path ? conf.path :
		    "the embedded default");
		return EXIT_USAGE;
	}
	/* 64 KiB first, then doubling; one byte past max_body tells. */
	buf_init(&body, conf.max_body + 1);
	for (;;) {
		if (body.len == body.cap) {
			want = body.cap != 0 ? body.cap : 65536;
			if (want > body.max - body.len)
				want = body.max - body.len;
			if (buf_reserve(&body, want) == -1) {
				buf_free(&body);
				fprintf(stderr, "fcgiqctl: enqueue: out of memory\n");
				return EXIT_DBERR;
			}
		}
		n = fread(body.data + body.len, 1, body.cap - body.len, stdin);
		body.len += n;
		if (body.len > conf.max_body) {
			fprintf(stderr, "fcgiqctl: enqueue: body over max_body "
			    "(%zu bytes)\n", conf.max_body);
			buf_free(&body);
			return EXIT_USAGE;
		}
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "fcgiqctl: enqueue: stdin: %s\n", strerror(errno));
		buf_free(&body);
		return EXIT_DBERR;
	}
	memset(&nj, 0, sizeof(nj));
	now = store_now();
	nj.queue = q->name;
	nj.priority = have_priority ? priority : q->priority;
	nj.max_attempts = q->max_attempts;
	/* No request, no key: in a serialized queue, a key of its own. */
	nj.serial_key = q->serialize.kind != VERIFY_DEDUPE_NONE ? "" : NULL;
	nj.run_at = now + delay;
	/* Handlers see a job from the CLI as a POST with no URI. */
	nj.method = "POST";
	nj.body = body.data != NULL ? (const char *)body.data : "";
	nj.body_len = body.len;
	s = open_store(0);
	if (store_enqueue(s, &nj, 1) == -1) {
		fprintf(stderr, "fcgiqctl: enqueue: %s\n", store_error(s));
		ret = EXIT_DBERR;
	} else {
		wake_notify(conf.database);
		count(q->name, 0);
		if (opt_json)
			print_json(json_pack("{s:s,s:s,s:s}", "id", nj.id,
			    "queue", q->name, "state", "queued"));
		else
			printf("%s\n", nj.id);
	}
	store_close(s);
	buf_free(&body);
	return ret;
}

/* One refused request: into the JSON array arg, or printed when arg is
 * NULL (a line, then its headers and the start of its body). */
static void
rejected_line(void *arg, const struct store_rejected *r)
{
	json_t *a = arg, *h;
	char at[32];

	iso8601(r->at, at, sizeof(at));
	if (a != NULL) {
		h = r->headers != NULL ? json_loads(r->headers, 0, NULL) : NULL;
		json_array_append_new(a, json_pack(
		    "{s:I,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:o,s:I,s:s%}",
		    "seq", (json_int_t)r->seq, "at", at, "queue", r->queue,
		    "reason", r->reason, "remote_addr", r->remote_addr,
		    "method", r->method, "request_uri", r->request_uri,
		    "headers", h != NULL ? h : json_null(),
		    "body_length", (json_int_t)r->body_length,
		    "body_head", r->body_head != NULL ? (const char *)r->body_head
		    : "", is_text(r->body_head, r->head_len) ? r->head_len : 0));
		return;
	}
	printf("%-8lld %-24s %-12s %-16s %-6s %-24s %s\n", (long long)r->seq,
	    at, r->queue, r->remote_addr != NULL ? r->remote_addr : "-",
	    r->method != NULL ? r->method : "-",
	    r->request_uri != NULL ? r->request_uri : "-", r->reason);
}

static int
cmd_rejected(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	const char *queue = NULL;
	long limit = 20;
	struct store *s;
	json_t *a = NULL;
	int ch, ret = 0;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "n:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			limit = strtol(optarg, NULL, 10);
			if (limit <= 0)
				usage();
			break;
		default: usage();
		}
	}
	if (optind < argc)
		queue = argv[optind++];
	if (optind != argc)
		usage();
	s = open_store(1);
	if (opt_json)
		a = json_array();
	else
		printf("%-8s %-24s %-12s %-16s %-6s %-24s %s\n", "SEQ", "AT",
		    "QUEUE", "FROM", "METHOD", "URI", "REASON");
	if (store_rejected_list(s, queue, limit, rejected_line, a) == -1) {
		fprintf(stderr, "fcgiqctl: rejected: %s\n", store_error(s));
		json_decref(a);
		ret = EXIT_DBERR;
	} else if (a != NULL)
		print_json(a);
	store_close(s);
	return ret;
}

/*
 * top: a frame a second.  On a terminal (stdin and stdout both one, and
 * no -b) the frame is redrawn in place on the alternate screen, keys are
 * read unbuffered ('q' quits) and the terminal is given back as it was on
 * every way out but SIGKILL; otherwise frames are printed one after the
 * other, a blank line between them, for a pipe or a test.
 */
static volatile sig_atomic_t top_stop, top_resized;
static struct termios top_saved;
static int top_tty;

static void
top_signal(int sig)
{
	if (sig == SIGWINCH)
		top_resized = 1;
	else
		top_stop = 1;
}

static void
top_restore(void)
{
	if (!top_tty)
		return;
	top_tty = 0;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &top_saved);
	fputs("\033[?25h\033[?1049l", stdout);
	(void)fflush(stdout);
}

/* Take the terminal: no echo, no line buffering (signals still come from
 * ^C), the alternate screen, no cursor.  0 or -1. */
static int
top_raw(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &top_saved) == -1)
		return -1;
	raw = top_saved;
	raw.c_lflag &= ~(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == -1)
		return -1;
	top_tty = 1;
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

/* Wait until the monotonic time until, a signal or a key: 1 when the
 * key was q, else 0. */
static int
top_wait(int64_t until)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	int64_t left;
	char c;

	while (!top_stop && !top_resized && (left = until - mono_ms()) > 0) {
		if (poll(&p, top_tty ? 1 : 0, (int)left) <= 0 || !top_tty)
			continue;	/* EINTR: the flags say why */
		if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
			return 1;
		if ((p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0)
			return 1;
	}
	return 0;
}

static int
cmd_top(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "batch", no_argument, NULL, 'b' },
		{ "frames", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	struct sigaction sa;
	struct winsize ws;
	struct store *s;
	struct top *t;
	struct buf b;
	char err[256];
	long frames = 0, i;
	int64_t next;
	int ch, batch = 0, width, ret = 0;

	optind = 0;	/* glibc: 0 re-initialises getopt for the command's own options */
	while ((ch = getopt_long(argc, argv, "bn:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'b': batch = 1; break;
		case 'n':
			frames = strtol(optarg, NULL, 10);
			if (frames <= 0)
				usage();
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	s = open_store(1);
	/* Joined, never created: fcgiq's processes own the file. */
	(void)metrics_open(conf.database, 0, err, sizeof(err));
	if ((t = top_new(&conf)) == NULL) {
		fprintf(stderr, "fcgiqctl: top: out of memory\n");
		ret = EXIT_DBERR;
		goto done;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = top_signal;	/* no SA_RESTART: poll returns */
	(void)sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGWINCH, &sa, NULL);
	if (!batch && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) &&
	    top_raw() == -1) {
		fprintf(stderr, "fcgiqctl: top: terminal: %s\n",
		    strerror(errno));
		ret = EXIT_DBERR;
		goto done;
	}
	buf_init(&b, 0);
	next = mono_ms();
	for (i = 0; !top_stop && (frames == 0 || i < frames); i++) {
		if (i > 0 && top_wait(next))
			break;
		if (top_stop)
			break;
		if (top_resized)
			top_resized = 0;
		else
			next += 1000;
		(void)top_read(t, s, store_now());
		width = TOP_WIDTH;
		if (top_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
		    ws.ws_col > 0 && ws.ws_col < TOP_WIDTH)
			width = ws.ws_col;
		b.len = 0;
		if ((top_tty ? buf_append(&b, "\033[H", 3) :
		    i > 0 ? buf_append(&b, "\n", 1) : 0) == -1 ||
		    top_frame(t, &b, width, top_tty) == -1 ||
		    (top_tty && buf_append(&b, "\033[J", 3) == -1)) {
			fprintf(stderr, "fcgiqctl: top: out of memory\n");
			ret = EXIT_DBERR;
			break;
		}
		if (fwrite(b.data, 1, b.len, stdout) != b.len ||
		    fflush(stdout) == EOF) {
			top_restore();
			fprintf(stderr, "fcgiqctl: top: %s\n", strerror(errno));
			ret = EXIT_DBERR;
			break;
		}
	}
	buf_free(&b);
	top_restore();
done:
	top_free(t);
	metrics_close();
	store_close(s);
	return ret;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "database", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	char err[512];
	int ch;

	/* "+": stop at the command, whose own options come after it. */
	while ((ch = getopt_long(argc, argv, "+d:c:jh", lopts, NULL)) != -1) {
		switch (ch) {
		case 'd': opt_db = optarg; break;
		case 'c': opt_conf = optarg; break;
		case 'j': opt_json = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("fcgiqctl %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	(void)umask(027);	/* as fcgiq: the database is not for others */
	supervisor_std_fds();
	log_init("fcgiqctl", LOG_LEVEL_WARN);
	/*
	 * With neither -c nor -d, the installed service's configuration
	 * (the Debian package's, the units'), so that an operator types
	 * `fcgiqctl stats` and sees the queue fcgiq serves.
	 */
	if (opt_conf == NULL && opt_db == NULL &&
	    access(FCGIQCTL_SYSTEM_CONF, F_OK) == 0)
		opt_conf = FCGIQCTL_SYSTEM_CONF;
	if (config_load(&conf, opt_conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "fcgiqctl: %s\n", err);
		return EXIT_USAGE;
	}
	if (opt_db != NULL) {
		free(conf.database);
		if ((conf.database = strdup(opt_db)) == NULL)
			return EXIT_DBERR;
	}
	/* --json may also follow the command. */
	for (ch = 1; ch < argc; ch++)
		if (strcmp(argv[ch], "--json") == 0) {
			opt_json = 1;
			memmove(&argv[ch], &argv[ch + 1],
			    (size_t)(argc - ch) * sizeof(*argv));
			argc--;
			ch--;
		}
	if (strcmp(argv[0], "stats") == 0)
		return cmd_stats(argc, argv);
	if (strcmp(argv[0], "ls") == 0)
		return cmd_ls(argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return cmd_show(argc, argv);
	if (strcmp(argv[0], "cancel") == 0)
		return cmd_cancel(argc, argv);
	if (strcmp(argv[0], "enqueue") == 0)
		return cmd_enqueue(argc, argv);
	if (strcmp(argv[0], "retry") == 0)
		return cmd_retry(argc, argv);
	if (strcmp(argv[0], "purge") == 0)
		return cmd_purge(argc, argv);
	if (strcmp(argv[0], "discard") == 0)
		return cmd_bulk(argc, argv);
	if (strcmp(argv[0], "pause") == 0)
		return cmd_pause(argc, argv, 1);
	if (strcmp(argv[0], "resume") == 0)
		return cmd_pause(argc, argv, 0);
	if (strcmp(argv[0], "rejected") == 0)
		return cmd_rejected(argc, argv);
	if (strcmp(argv[0], "top") == 0)
		return cmd_top(argc, argv);
	if (strcmp(argv[0], "schedules") == 0) {
		struct store *s;

		if (argc != 1)
			usage();
		s = open_store(1);
		ch = ctl_schedules(&conf, s, opt_json);
		store_close(s);
		return ch;
	}
	if (strcmp(argv[0], "work") == 0) {
		/* One entry point runs a helper alone; this one had drifted
		 * (no -d, no log_file). */
		fprintf(stderr, "fcgiqctl: work: gone, run \"fcgiq work "
		    "[-c CONF]\" instead\n");
		return EXIT_USAGE;
	}
	fprintf(stderr, "fcgiqctl: unknown command \"%s\"\n", argv[0]);
	usage();
	/* NOTREACHED */
	return EXIT_USAGE;
}
