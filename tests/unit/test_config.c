/*
 * Unit tests for config: the embedded default, every key's parser, and the
 * error messages `fcgiq -t` shows (file and line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "store.h"

static char tmpdir[] = "/tmp/fcgiq-config-XXXXXX";

static const char *
write_conf(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
test_embedded_default(void **state)
{
	struct config c;
	char err[512];
	const struct queue_conf *q;

	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.database, "./var/fcgiq.db");
	assert_string_equal(c.status_prefix, "/jobs/");
	assert_int_equal(c.max_wait_ms, 60 * 1000);
	assert_int_equal(c.durability, STORE_DURABILITY_FULL);
	assert_int_equal(c.max_body, 1024 * 1024);
	assert_int_equal(c.nqueues, 1);
	q = config_queue(&c, "default");
	assert_non_null(q);
	assert_null(q->handler);
	assert_null(config_queue(&c, "mail"));
	config_free(&c);
}

static void
test_full_file(void **state)
{
	struct config c;
	char err[512];
	const struct queue_conf *q;
	const char *path;

	path = write_conf("full.conf",
	    "; a comment\n"
	    "[fcgiq]\n"
	    "database   = /var/lib/fcgiq/queue.db\n"
	    "durability = normal   ; trade power-loss safety\n"
	    "max_body   = 2M\n"
	    "log        = debug\n"
	    "log_file   = /var/log/fcgiq.log\n"
	    "threads    = 8\n"
	    "helper     = no\n"
	    "status_prefix = /api/jobs/\n"
	    "max_wait = 2m\n"
	    "\n"
	    "[queue default]\n"
	    "handler      = exec:/usr/local/libexec/handle-job --verbose  -x\n"
	    "concurrency  = 4\n"
	    "max_attempts = 8\n"
	    "timeout      = 90s\n"
	    "backoff      = 250ms..1h\n"
	    "max_queued   = 1000\n"
	    "keep_done    = 7d\n"
	    "\n"
	    "[queue mail]\n"
	    "priority = 5\n"
	    "rlimit_as = 512M\n"
	    "rlimit_cpu = 1500ms\n"
	    "rlimit_nofile = 256\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.database, "/var/lib/fcgiq/queue.db");
	assert_int_equal(c.durability, STORE_DURABILITY_NORMAL);
	assert_int_equal(c.max_body, 2 * 1024 * 1024);
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(c.log_file, "/var/log/fcgiq.log");
	assert_int_equal(c.threads, 8);
	assert_int_equal(c.helper, 0);
	assert_string_equal(c.status_prefix, "/api/jobs/");
	assert_int_equal(c.max_wait_ms, 120 * 1000);
	assert_int_equal(c.nqueues, 2);
	q = config_queue(&c, "default");
	assert_non_null(q);
	assert_string_equal(q->handler_argv[0], "/usr/local/libexec/handle-job");
	assert_string_equal(q->handler_argv[1], "--verbose");
	assert_string_equal(q->handler_argv[2], "-x");
	assert_null(q->handler_argv[3]);
	assert_int_equal(q->concurrency, 4);
	assert_int_equal(q->max_attempts, 8);
	assert_int_equal(q->timeout_ms, 90000);
	assert_int_equal(q->backoff_min_ms, 250);
	assert_int_equal(q->backoff_max_ms, 3600000);
	assert_int_equal(q->max_queued, 1000);
	assert_int_equal(q->keep_done_ms, 7LL * 86400000);
	q = config_queue(&c, "mail");
	assert_non_null(q);
	assert_int_equal(q->priority, 5);
	assert_int_equal(q->rlimit_as, 512 * 1024 * 1024);
	assert_int_equal(q->rlimit_cpu_s, 2);	/* rounded up */
	assert_int_equal(q->rlimit_nofile, 256);
	assert_int_equal(config_queue(&c, "default")->rlimit_nofile, 0);
	assert_null(q->handler_argv);
	config_free(&c);
}

/* Each bad file fails with "PATH:LINE: message containing WHAT". */
static void
expect_error(const char *text, int line, const char *what)
{
	struct config c;
	char err[512], want[300];
	const char *path;

	path = write_conf("bad.conf", text);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
		fail_msg("got \"%s\", want \"%s...%s\"", err, want, what);
}

static void
test_errors_name_the_line(void **state)
{
	expect_error("[fcgiq]\nmax_body = lots\n", 2, "max_body");
	expect_error("[fcgiq]\ndurability = sometimes\n", 2, "durability");
	expect_error("[fcgiq]\n\n\nbogus = 1\n", 4,
	    "unknown key \"bogus\" in [fcgiq]");
	expect_error("[queue q]\nbogus = 1\n", 2,
	    "unknown key \"bogus\" in [queue q]");
	expect_error("[fcgiq]\ngrace = soon\n", 2, "grace: bad value \"soon\"");
	expect_error("[queue q]\ntimeout = 0\n", 2, "timeout: bad value \"0\"");
	expect_error("[nonsense]\nx = 1\n", 2, "unknown section");
	expect_error("[queue a/b]\nconcurrency = 1\n", 1, "queue name");
	expect_error("[queue q]\nhandler = /bin/true\n", 2, "exec:");
	expect_error("[queue q]\nhandler = exec:true\n", 2, "absolute");
	expect_error("[queue q]\nbackoff = 1h..1s\n", 2, "backoff");
	expect_error("[queue q]\nconcurrency = 0\n", 2, "concurrency");
	expect_error("[queue q]\nmax_attempts = -3\n", 2, "max_attempts");
	expect_error("[queue q]\ntimeout = 5 s\n", 2, "timeout");
	expect_error("[queue q]\nrlimit_nofile = 2\n", 2, "rlimit_nofile");
	expect_error("[queue q]\nrlimit_as = 1k\n", 2, "rlimit_as");
	expect_error("[fcgiq]\nthis line has no equals sign\n", 2, "syntax");
	expect_error("[fcgiq]\nstatus_prefix = /jobs\n", 2, "status_prefix");
	expect_error("[fcgiq]\nmax_wait = 1500ms\n", 2, "max_wait");
	expect_error("[fcgiq]\nmax_wait = 2h\n", 2, "max_wait");
	/* The flow keys (flow.c). */
	expect_error("[queue q]\nconcurrency = 2\nrate = 10/d\n", 3,
	    "rate: bad value \"10/d\"");
	expect_error("[queue q]\nrate = fast\n", 2, "rate: bad value");
	expect_error("[queue q]\nburst = 0\n", 2, "burst: bad value");
	expect_error("[queue q]\npause_after = -1\n", 2, "pause_after");
	expect_error("[queue q]\npause_for = 1ms\n", 2, "pause_for");
	expect_error("[queue q]\nretry_concurrency = x\n", 2,
	    "retry_concurrency");
	expect_error("[queue q]\nquarantine_after = many\n", 2,
	    "quarantine_after");
	/* The first error wins, even when later lines are bad too. */
	expect_error("[fcgiq]\nlog = loud\nthreads = many\n", 2, "log");
}

/* The handler's scheme picks the kind; fastcgi:'s keys belong to it. */
static void
test_handler_kinds(void **state)
{
	struct config c;
	char err[512];
	const struct queue_conf *q;
	const char *path;
	char ca[256], text[2048];

	/* tls_ca must be readable when the file is loaded. */
	snprintf(ca, sizeof(ca), "%s", write_conf("ca.pem", "PEM\n"));
	snprintf(text, sizeof(text),
	    "[queue php]\n"
	    "script  = /srv/app/jobs/send-mail.php\n"
	    "handler = fastcgi:unix:/run/php/php8.2-fpm.sock\n"
	    "param   = DOCUMENT_ROOT /srv/app\n"
	    "param   = APP_ENV  production mode\n"
	    "param   = EMPTY\n"
	    "[queue tcp]\n"
	    "handler = fastcgi:127.0.0.1:9000\n"
	    "[queue six]\n"
	    "handler = fastcgi:[::1]:9001\n"
	    "[queue hook]\n"
	    "handler = http:https://ci.internal:8443/hooks/deploy\n"
	    "tls_ca  = %s\n"
	    "[queue bare]\n"
	    "handler = http://127.0.0.1:8080/x\n"
	    "[queue v6]\n"
	    "handler = http:http://[::1]:8080/x?y=1\n"
	    "[queue again]\n"
	    "handler = exec:/bin/true\n"
	    "handler = fastcgi:localhost:9000\n"
	    "[queue back]\n"
	    "handler = fastcgi:localhost:9000\n"
	    "handler = exec:/bin/true a\n", ca);
	path = write_conf("kinds.conf", text);
	if (config_load(&c, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	q = config_queue(&c, "php");
	assert_int_equal(q->kind, HANDLER_FASTCGI);
	assert_string_equal(q->fcgi_unix, "/run/php/php8.2-fpm.sock");
	assert_null(q->fcgi_host);
	assert_null(q->handler_argv);
	assert_string_equal(q->script, "/srv/app/jobs/send-mail.php");
	assert_int_equal(q->nparams, 3);
	assert_string_equal(q->params[0], "DOCUMENT_ROOT");
	assert_string_equal(q->params[1], "/srv/app");
	assert_string_equal(q->params[2], "APP_ENV");
	assert_string_equal(q->params[3], "production mode");
	assert_string_equal(q->params[4], "EMPTY");
	assert_string_equal(q->params[5], "");
	q = config_queue(&c, "tcp");
	assert_int_equal(q->kind, HANDLER_FASTCGI);
	assert_string_equal(q->fcgi_host, "127.0.0.1");
	assert_int_equal(q->fcgi_port, 9000);
	assert_null(q->fcgi_unix);
	q = config_queue(&c, "six");
	assert_string_equal(q->fcgi_host, "::1");
	assert_int_equal(q->fcgi_port, 9001);
	q = config_queue(&c, "hook");
	assert_int_equal(q->kind, HANDLER_HTTP);
	assert_string_equal(q->url, "https://ci.internal:8443/hooks/deploy");
	assert_string_equal(q->tls_ca, ca);
	q = config_queue(&c, "bare");
	assert_int_equal(q->kind, HANDLER_HTTP);
	assert_string_equal(q->url, "http://127.0.0.1:8080/x");
	q = config_queue(&c, "v6");
	assert_string_equal(q->url, "http://[::1]:8080/x?y=1");
	q = config_queue(&c, "again");
	assert_int_equal(q->kind, HANDLER_FASTCGI);
	assert_null(q->handler_argv);
	assert_string_equal(q->handler, "fastcgi:localhost:9000");
	q = config_queue(&c, "back");
	assert_int_equal(q->kind, HANDLER_EXEC);
	assert_null(q->fcgi_host);
	assert_string_equal(q->handler_argv[1], "a");
	config_free(&c);
}

static void
test_handler_errors(void **state)
{
	expect_error("[queue q]\nhandler = gopher://x/\n", 2, "unknown kind");
	expect_error("[queue q]\nhandler = fastcgi:/run/x.sock\n", 2,
	    "fastcgi:unix:/path");
	expect_error("[queue q]\nhandler = fastcgi:unix:run/x.sock\n", 2,
	    "absolute");
	expect_error("[queue q]\nhandler = fastcgi:host:0\n", 2, "fastcgi:");
	expect_error("[queue q]\nhandler = fastcgi:host:70000\n", 2,
	    "fastcgi:");
	expect_error("[queue q]\nhandler = fastcgi::9000\n", 2, "fastcgi:");
	expect_error("[queue q]\nhandler = fastcgi:host:90x\n", 2, "fastcgi:");
	expect_error("[queue q]\nhandler = http:ftp://x/\n", 2, "URL");
	/* A URL curl could not take, and an unreadable tls_ca (http.c). */
	expect_error("[queue q]\nhandler = http:https:///x\n", 2, "no host");
	expect_error("[queue q]\nhandler = http://h:0/\n", 2, "port");
	expect_error("[queue q]\nhandler = http://h:99999/\n", 2, "port");
	expect_error("[queue q]\nhandler = http://h:8x/\n", 2, "port");
	expect_error("[queue q]\nhandler = http://a b/\n", 2, "blank");
	expect_error("[queue q]\nhandler = http://h/x#frag\n", 2, "fragment");
	expect_error("[queue q]\nhandler = http://h%2f/\n", 2, "host name");
	expect_error("[queue q]\nhandler = http://[::1/\n", 2, "IPv6");
	expect_error("[queue q]\nhandler = http://[::1]x/\n", 2, "IPv6");
	expect_error("[queue q]\nhandler = http://h/\n"
	    "tls_ca = /nonexistent/ca.pem\n", 3, "No such file");
	/* script and param only with fastcgi:, whichever line comes first. */
	expect_error("[queue q]\nhandler = exec:/bin/true\n\nscript = /x.php\n",
	    4, "fastcgi:");
	expect_error("[queue q]\nscript = /x.php\nhandler = exec:/bin/true\n",
	    2, "fastcgi:");
	expect_error("[queue q]\nparam = A b\n", 2, "fastcgi:");
	expect_error("[queue q]\nhandler = fastcgi:h:1\nscript = x.php\n", 3,
	    "absolute");
	expect_error("[queue q]\nhandler = fastcgi:h:1\nparam = A=1 b\n", 3,
	    "NAME VALUE");
	expect_error("[queue q]\nhandler = fastcgi:h:1\ntls_ca = /ca.pem\n", 3,
	    "tls_ca");
}

/* inih calls back only for keys: a queue section with none still counts. */
static void
test_empty_queue_section(void **state)
{
	struct config c;
	char err[512];
	const char *path;

	path = write_conf("empty.conf", "[queue default]\n  [queue mail]  \n"
	    "[fcgiq]\nlog = warn\n[queue sms]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.nqueues, 3);
	assert_non_null(config_queue(&c, "default"));
	assert_non_null(config_queue(&c, "mail"));
	assert_non_null(config_queue(&c, "sms"));
	assert_int_equal(config_queue(&c, "sms")->max_attempts, 5);
	config_free(&c);
	expect_error("[fcgiq]\n[queue bad/name]\n", 2, "queue name");
}

/* dead_letter_queue names a configured queue (declared before or after). */
static void
test_dead_letter_queue(void **state)
{
	struct config c;
	char err[512];
	const char *path;

	(void)state;
	path = write_conf("dlq.conf", "[fcgiq]\ndead_letter_queue = alerts\n"
	    "[queue default]\n[queue alerts]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.dead_letter_queue, "alerts");
	config_free(&c);
	path = write_conf("dlq2.conf", "[fcgiq]\ndead_letter_queue = nope\n"
	    "[queue default]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	/* Named by the file first, like every error of the file (the
	 * fuzzer found it without). */
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	assert_non_null(strstr(err, "dead_letter_queue"));
	/* Every flow key has its PostgreSQL version: a configuration with
	 * them all loads. */
	path = write_conf("flow-pg.conf", "[fcgiq]\ndatabase = "
	    "postgresql://localhost/q\ndead_letter_queue = alerts\n"
	    "[queue default]\nserialize_by = header:X-Key\npause_after = 3\n"
	    "[queue alerts]\n[schedule nightly]\ncron = 0 3 * * *\n"
	    "queue = alerts\nbody = {}\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	config_free(&c);
	path = write_conf("dlq3.conf", "[queue default]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_null(c.dead_letter_queue);
	config_free(&c);
}

/* metrics_file: absolute, and only with PostgreSQL (SQLite's is beside
 * the database). */
static void
test_metrics_file(void **state)
{
	struct config c;
	char err[512];
	const char *path;

	(void)state;
	path = write_conf("mf.conf", "[fcgiq]\ndatabase = "
	    "postgresql://localhost/q\nmetrics_file = /run/fcgiq/metrics\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.metrics_file, "/run/fcgiq/metrics");
	config_free(&c);
	path = write_conf("mf2.conf", "[fcgiq]\ndatabase = "
	    "postgresql://localhost/q\nmetrics_file = run/metrics\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "metrics_file: \"run/metrics\": an "
	    "absolute path"));
	path = write_conf("mf3.conf", "[fcgiq]\ndatabase = /tmp/q.db\n"
	    "metrics_file = /run/fcgiq/metrics\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "metrics_file: only with PostgreSQL"));
	path = write_conf("mf4.conf", "[fcgiq]\ndatabase = "
	    "postgresql://localhost/q\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_null(c.metrics_file);
	config_free(&c);
}

static void
test_missing_file(void **state)
{
	struct config c;
	char err[512];

	assert_int_equal(config_load(&c, "/nonexistent/fcgiq.conf", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/fcgiq.conf"));
}

static void
test_sizes_and_durations(void **state)
{
	size_t sz;
	int64_t ms;

	assert_int_equal(config_parse_size("1M", &sz), 0);
	assert_int_equal(sz, 1048576);
	assert_int_equal(config_parse_size("512k", &sz), 0);
	assert_int_equal(sz, 524288);
	assert_int_equal(config_parse_size("100", &sz), 0);
	assert_int_equal(sz, 100);
	assert_int_equal(config_parse_size("1MB", &sz), 0);
	assert_int_equal(config_parse_size("-1", &sz), -1);
	assert_int_equal(config_parse_size("", &sz), -1);
	assert_int_equal(config_parse_size("1T", &sz), -1);
	assert_int_equal(config_parse_size("99999999999999999999G", &sz), -1);
	assert_int_equal(config_parse_duration("60s", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(config_parse_duration("60", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(config_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(config_parse_duration("30m", &ms), 0);
	assert_int_equal(ms, 1800000);
	assert_int_equal(config_parse_duration("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(config_parse_duration("1x", &ms), -1);
	assert_int_equal(config_parse_duration("s", &ms), -1);
	assert_int_equal(config_parse_duration("99999999999999999d", &ms), -1);
}

static void
test_mkdir_database(void **state)
{
	struct config c;
	char err[512], db[400], dir[200];
	const char *path;

	snprintf(dir, sizeof(dir), "%s/var", tmpdir);
	snprintf(db, sizeof(db), "[fcgiq]\ndatabase = %s/fcgiq.db\n", dir);
	path = write_conf("db.conf", db);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(config_mkdir_database(&c, err, sizeof(err)), 0);
	assert_int_equal(access(dir, F_OK), 0);
	/* Again: an existing directory is fine. */
	assert_int_equal(config_mkdir_database(&c, err, sizeof(err)), 0);
	config_free(&c);
	rmdir(dir);
}

static int
setup(void **state)
{
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A config_ref takes the configuration over; the last unref frees it
 * (leaks show under valgrind and ASan). */
static void
test_config_ref(void **state)
{
	struct config c;
	struct config_ref *r;
	char err[256];

	(void)state;
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), 0);
	assert_non_null(r = config_ref_new(&c));
	assert_null(c.database);		/* taken over */
	assert_int_equal(r->refs, 1);
	assert_string_equal(r->c.handler_path, CONFIG_DEFAULT_PATH);
	assert_ptr_equal(config_ref(r), r);
	assert_int_equal(r->refs, 2);
	config_unref(r);
	assert_int_equal(r->refs, 1);
	assert_non_null(r->c.database);
	config_unref(r);
	config_unref(NULL);
}


/* A file named name holding text, with mode. */
static const char *
write_mode(const char *name, const char *text, mode_t mode)
{
	const char *p = write_conf(name, text);

	assert_int_equal(chmod(p, mode), 0);
	return p;
}

/* The trust keys: verify needs a secret file that others cannot read,
 * with a secret in it; every message names the file and line. */
/* serialize_by: the sources of dedupe, query:NAME, none; errors named. */
static void
test_serialize_by(void **state)
{
	struct config c;
	char err[512];
	const struct queue_conf *q;
	const char *path;

	(void)state;
	path = write_conf("serial.conf", "[queue a]\n"
	    "serialize_by = header:X-GitHub-Repository\n"
	    "[queue b]\nserialize_by = json:/repository/full_name\n"
	    "[queue c]\nserialize_by = query:repo\n"
	    "[queue d]\nserialize_by = query:repo\nserialize_by = none\n"
	    "[queue e]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	q = config_queue(&c, "a");
	assert_int_equal(q->serialize.kind, VERIFY_DEDUPE_HEADER);
	assert_string_equal(q->serialize.arg, "X-GitHub-Repository");
	q = config_queue(&c, "b");
	assert_int_equal(q->serialize.kind, VERIFY_DEDUPE_JSON);
	assert_string_equal(q->serialize.arg, "/repository/full_name");
	q = config_queue(&c, "c");
	assert_int_equal(q->serialize.kind, VERIFY_DEDUPE_QUERY);
	assert_string_equal(q->serialize.arg, "repo");
	assert_int_equal(config_queue(&c, "d")->serialize.kind,
	    VERIFY_DEDUPE_NONE);
	assert_int_equal(config_queue(&c, "e")->serialize.kind,
	    VERIFY_DEDUPE_NONE);
	assert_int_equal(config_queue(&c, "e")->dedupe.kind,
	    VERIFY_DEDUPE_NONE);
	config_free(&c);

	path = write_conf("serial.conf", "[queue a]\nmax_attempts = 2\n"
	    "serialize_by = cookie:x\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "serial.conf:3: serialize_by: "
	    "\"cookie:x\": expected header:NAME"));
}

static void
test_trust_keys(void **state)
{
	struct config c;
	char err[512], text[1024], sec[300], open_sec[300], empty[300];
	const struct queue_conf *q;
	const char *path;

	snprintf(sec, sizeof(sec), "%s", write_mode("gh.secret",
	    "  old secret \n\nnew secret\r\n", 0640));
	snprintf(open_sec, sizeof(open_sec), "%s", write_mode("open.secret",
	    "s\n", 0644));
	snprintf(empty, sizeof(empty), "%s", write_mode("empty.secret",
	    "\n  \n", 0600));

	snprintf(text, sizeof(text), "[queue gh]\nverify = github\n"
	    "secret_file = %s\ntolerance = 2m\nkeep_rejected = 10\n"
	    "[queue sw]\nverify = standard-webhooks\nsecret_file = %s\n"
	    "dedupe = none\n"
	    "[queue any]\ndedupe = json:/event/id\n", sec, sec);
	path = write_conf("trust.conf", text);
	/* "old secret" is not base64: standard-webhooks refuses it. */
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:8: secret_file"));
	assert_null(strstr(err, "old secret"));

	snprintf(text, sizeof(text), "[queue gh]\nverify = github\n"
	    "secret_file = %s\ntolerance = 2m\nkeep_rejected = 10\n"
	    "[queue any]\ndedupe = json:/event/id\n", sec);
	path = write_conf("trust.conf", text);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	q = config_queue(&c, "gh");
	assert_int_equal(q->verify.scheme, VERIFY_GITHUB);
	assert_int_equal(q->nkeys, 2);
	assert_int_equal(q->keys[0].len, 10);
	assert_memory_equal(q->keys[0].data, "old secret", 10);
	assert_memory_equal(q->keys[1].data, "new secret", 10);
	assert_int_equal(q->tolerance_ms, 120000);
	assert_int_equal(q->keep_rejected, 10);
	assert_int_equal(q->dedupe.kind, VERIFY_DEDUPE_HEADER);
	assert_string_equal(q->dedupe.arg, "X-GitHub-Delivery");
	q = config_queue(&c, "any");
	assert_int_equal(q->verify.scheme, VERIFY_NONE);
	assert_int_equal(q->keep_rejected, 1000);
	assert_int_equal(q->dedupe.kind, VERIFY_DEDUPE_JSON);
	assert_string_equal(q->dedupe.arg, "/event/id");
	config_free(&c);

	snprintf(text, sizeof(text), "[queue gh]\nhandler = exec:/bin/cat\n"
	    "verify = github\n");
	path = write_conf("trust.conf", text);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:3: verify = github needs a "
	    "secret_file"));

	snprintf(text, sizeof(text), "[queue gh]\nverify = github\n"
	    "secret_file = %s\n", open_sec);
	path = write_conf("trust.conf", text);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:3: secret_file"));
	assert_non_null(strstr(err, "others may read it (mode 0644)"));

	snprintf(text, sizeof(text), "[queue gh]\nverify = github\n"
	    "secret_file = %s\n", empty);
	path = write_conf("trust.conf", text);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no secret in it"));

	path = write_conf("trust.conf", "[queue a]\nsecret_file = /x\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:2: secret_file without"));

	path = write_conf("trust.conf", "[queue a]\n\nverify = sha1\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:3: verify:"));

	path = write_conf("trust.conf", "[queue a]\ndedupe = body\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust.conf:2: dedupe"));

	path = write_conf("trust.conf", "[queue a]\ntolerance = 0\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
}

/* user and group: resolved at load (fcgiq -t says when one does not
 * exist); as root, an exec: queue without user is refused by
 * config_check_run(). */
static void
test_user_keys(void **state)
{
	struct config c;
	char err[512];
	const struct queue_conf *q;
	const char *path;

	path = write_conf("user.conf", "[queue a]\nhandler = exec:/bin/cat\n"
	    "user = nobody\n[queue b]\nhandler = exec:/bin/cat\n"
	    "user = root\ngroup = nogroup\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	q = config_queue(&c, "a");
	assert_string_equal(q->user, "nobody");
	assert_true(q->uid != 0);
	assert_true(q->ngroups >= 1);
	q = config_queue(&c, "b");
	assert_int_equal(q->uid, 0);
	assert_true(q->gid != 0);
	assert_int_equal(config_check_run(&c, err, sizeof(err)), 0);
	config_free(&c);

	path = write_conf("user.conf", "[queue a]\nhandler = exec:/bin/cat\n"
	    "user = no-such-user-here\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user.conf:3: user: \"no-such-user-here\": "
	    "no such user"));

	path = write_conf("user.conf", "[queue a]\n\nhandler = exec:/bin/cat\n"
	    "[queue b]\n");
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	if (geteuid() == 0) {
		assert_int_equal(config_check_run(&c, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "user.conf:3: [queue a]"));
		assert_non_null(strstr(err, "user = root"));
	} else
		assert_int_equal(config_check_run(&c, err, sizeof(err)), 0);
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_default),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_handler_kinds),
		cmocka_unit_test(test_handler_errors),
		cmocka_unit_test(test_empty_queue_section),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sizes_and_durations),
		cmocka_unit_test(test_mkdir_database),
		cmocka_unit_test(test_config_ref),
		cmocka_unit_test(test_dead_letter_queue),
		cmocka_unit_test(test_metrics_file),
		cmocka_unit_test(test_trust_keys),
		cmocka_unit_test(test_serialize_by),
		cmocka_unit_test(test_user_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
