/*
 * test_helper: the helper against a real store, each test on a fresh
 * database in its own temp directory.  A helper runs either in a forked
 * child through helper_main() (with a pipe standing in for fcgiq), or the
 * way fcgiq runs it, through supervisor_start()'s supervisor.  Jobs go in with
 * store_enqueue() and the test watches the rows change.
 *
 * No SQLite connection crosses a fork here either: a test opens its store
 * only after the helper processes it needs are forked.
 */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "store.h"
#include "supervisor.h"
#include "wake.h"

static char H[1024];		/* tests/handlers */
static char T[1024];		/* this test's directory */
static char CONF[1100];
static char DB[1100];

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(T, sizeof(T), "%s/test-helper.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(T) == NULL)
		return -1;
	snprintf(CONF, sizeof(CONF), "%s/fcgiq.conf", T);
	snprintf(DB, sizeof(DB), "%s/q.db", T);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[1200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T);
	return system(cmd) == 0 ? 0 : -1;
}

/* The config: [fcgiq] with the test database, then the queue sections. */
static void
write_conf(const char *fmt, ...)
{
	va_list ap;
	FILE *f;
	char *text, *line, *save;

	assert_non_null(f = fopen(CONF, "w"));
	fprintf(f, "[fcgiq]\ndatabase = %s\ngrace = 1s\nlog = warn\n"
	    "path = /usr/bin:/bin\n\n", DB);
	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) != -1);
	va_end(ap);
	/* The handlers here read and write the test's own files: as root,
	 * they run as root, which the helper wants written out. */
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		fprintf(f, "%s\n%s", line, strncmp(line, "handler", 7) == 0 &&
		    geteuid() == 0 ? "user = root\n" : "");
	free(text);
	assert_int_equal(fclose(f), 0);
}

/* helper_main in a child; *pfd is the pipe end standing for fcgiq. */
static pid_t
fork_helper(int *pfd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[1]);
		_exit(helper_main(CONF, p[0]));
	}
	close(p[0]);
	*pfd = p[1];
	return pid;
}

/* Stop a helper_main child by closing its pipe; its exit status. */
static int
stop_helper(pid_t pid, int pfd)
{
	int status;

	close(pfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static struct store *
db(void)
{
	struct store_opts o = { STORE_DURABILITY_NORMAL, 0, 0 };
	struct store *s;
	char err[256];

	s = store_open(DB, &o, err, sizeof(err));
	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static void
enqueue(struct store *s, const char *queue, const char *body,
    const char *headers, int max_attempts, char *id)
{
	struct store_newjob j;

	memset(&j, 0, sizeof(j));
	j.queue = queue;
	j.max_attempts = max_attempts;
	j.method = "POST";
	j.request_uri = "/hook?a=b";
	j.query_string = "a=b";
	j.content_type = "text/plain";
	j.remote_addr = "127.0.0.1";
	j.headers = headers;
	j.body = body;
	j.body_len = strlen(body);
	if (store_enqueue(s, &j, 1) != 0)
		fail_msg("enqueue: %s", store_error(s));
	strcpy(id, j.id);
	wake_notify(DB);
}

/* Wait up to ms for job id to reach one of states ("done dead"). */
static struct store_job *
wait_state(struct store *s, const char *id, const char *states, int ms)
{
	struct store_job *j = NULL;
	int64_t end = mono_ms() + ms;
	char want[64];

	for (;;) {
		assert_int_equal(store_get(s, id, &j), 1);
		snprintf(want, sizeof(want), " %s ",
		    store_state_name(j->state));
		if (strstr(states, store_state_name(j->state)) != NULL) {
			char all[128];

			snprintf(all, sizeof(all), " %s ", states);
			if (strstr(all, want) != NULL)
				return j;
		}
		if (mono_ms() > end)
			fail_msg("job %s: state %s after %d ms, wanted %s "
			    "(last_error %s)", id, store_state_name(j->state),
			    ms, states,
			    j->last_error ? j->last_error : "-");
		store_job_free(j);
		sleep_ms(10);
	}
}

static int
file_exists(const char *fmt, ...)
{
	char path[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return access(path, F_OK) == 0;
}

static int
wait_file(int ms, const char *path)
{
	int64_t end = mono_ms() + ms;

	while (access(path, F_OK) != 0) {
		if (mono_ms() > end)
			return 0;
		sleep_ms(10);
	}
	return 1;
}

static long
read_long(const char *path)
{
	char buf[64] = "";
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return buf[0] ? atol(buf) : -1;
}

/* The pid in the lock file, once its holder is alive and has written it. */
static long
lock_holder(void)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s-helper.lock", DB);
	return read_long(path);
}

static int
alive(long pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	if (kill((pid_t)pid, 0) == -1)
		return 0;
	/* A zombie is not alive. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return 0;
	return p[2] != 'Z';
}

static int
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Children of pid that are zombies. */
static int
count_zombies(pid_t parent)
{
	char path[300], buf[512], *p, st;
	struct dirent *de;
	long ppid;
	DIR *d;
	FILE *f;
	int n = 0;

	assert_non_null(d = opendir("/proc"));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (p == NULL || (p = strrchr(buf, ')')) == NULL)
			continue;
		if (sscanf(p + 2, "%c %ld", &st, &ppid) == 2 &&
		    ppid == (long)parent && st == 'Z')
			n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ tests */

static void
test_done_with_result(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	pid_t h;
	int pfd, status;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/cat.sh\n", H);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "hello, world", NULL, 3, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DONE);
	assert_int_equal(j->attempts, 1);
	assert_int_equal(j->result_len, 12);
	assert_memory_equal(j->result, "hello, world", 12);
	store_job_free(j);
	status = stop_helper(h, pfd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	store_close(s);
}

static void
test_fail_twice_then_done(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/fail-n.sh %s 2\n"
	    "backoff = 10ms..50ms\nmax_attempts = 5\n", H, T);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 5, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DONE);
	assert_int_equal(j->attempts, 3);
	assert_memory_equal(j->result, "ok after 3 runs (attempt 3)\n",
	    j->result_len);
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

static void
test_exit65_dead_at_once(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/exit.sh 65 bad payload\n"
	    "backoff = 10ms..50ms\n", H);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 5, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->attempts, 1);
	assert_string_equal(j->last_error, "exit 65 (data error): bad payload");
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

static void
test_exit75_retried(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/exit.sh 75 busy\n"
	    "backoff = 10ms..50ms\n", H);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 3, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->attempts, 3);
	assert_string_equal(j->last_error, "exit 75 (temporary failure): busy");
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

static void
test_other_exit_and_signal(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32], id2[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/exit.sh 3 oops\n"
	    "backoff = 10ms..50ms\n"
	    "[queue sig]\nhandler = exec:/bin/sh -c kill${IFS}-9${IFS}$$\n"
	    "backoff = 10ms..50ms\n", H);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 2, id);
	enqueue(s, "sig", "x", NULL, 1, id2);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->attempts, 2);
	assert_string_equal(j->last_error, "exit 3: oops");
	store_job_free(j);
	j = wait_state(s, id2, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_string_equal(j->last_error, "killed by signal 9");
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

static void
test_timeout_killed_and_retried(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32], path[1200];
	long hp;
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/sleep.sh %s 30\n"
	    "timeout = 300ms\nbackoff = 10ms..50ms\n", H, T);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 2, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DEAD);
	assert_int_equal(j->attempts, 2);
	assert_string_equal(j->last_error, "timeout after 300ms");
	store_job_free(j);
	/* Both attempts ran and were killed. */
	snprintf(path, sizeof(path), "%s/%s.1", T, id);
	hp = read_long(path);
	assert_true(hp > 0);
	assert_false(alive(hp));
	snprintf(path, sizeof(path), "%s/%s.2", T, id);
	hp = read_long(path);
	assert_true(hp > 0);
	assert_false(alive(hp));
	stop_helper(h, pfd);
	store_close(s);
}

/* Exactly the allowlist, exactly {0,1,2}, never HTTP_PROXY. */
static void
test_env_and_fds(void **state)
{
	static const char *allowed[] = { "PATH", "REQUEST_METHOD",
	    "REQUEST_URI", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
	    "REMOTE_ADDR", "FCGIQ_JOB_ID", "FCGIQ_QUEUE", "FCGIQ_ATTEMPT",
	    NULL };
	struct store_job *j;
	struct store *s;
	char id[32], *out, *line, *save, *eq;
	int fds = 0, pfd, ok, i, seen = 0;
	pid_t h;

	(void)state;
	setenv("FCGIQ_SECRET_OF_THE_HELPER", "leak", 1);
	write_conf("[queue default]\nhandler = exec:%s/report\n", H);
	h = fork_helper(&pfd);
	unsetenv("FCGIQ_SECRET_OF_THE_HELPER");
	s = db();
	enqueue(s, "default", "body!", "{\"User-Agent\":\"t\","
	    "\"Proxy\":\"http://evil.example\",\"X-Custom\":\"c\"}", 1, id);
	j = wait_state(s, id, "done dead", 10000);
	assert_int_equal(j->state, STORE_JOB_DONE);
	assert_non_null(out = calloc(1, j->result_len + 1));
	memcpy(out, j->result, j->result_len);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "fd ", 3) == 0) {
			assert_in_range(atoi(line + 3), 0, 2);
			fds++;
		} else if (strncmp(line, "env ", 4) == 0) {
			line += 4;
			assert_non_null(eq = strchr(line, '='));
			*eq = '\0';
			ok = strncmp(line, "HTTP_", 5) == 0 &&
			    strcmp(line, "HTTP_PROXY") != 0;
			for (i = 0; allowed[i] != NULL; i++)
				if (strcmp(line, allowed[i]) == 0) {
					ok = 1;
					seen++;
				}
			if (!ok)
				fail_msg("variable %s is not allowed", line);
			if (strcmp(line, "FCGIQ_JOB_ID") == 0)
				assert_string_equal(eq + 1, id);
			if (strcmp(line, "HTTP_X_CUSTOM") == 0)
				assert_string_equal(eq + 1, "c");
		} else if (strncmp(line, "stdin ", 6) == 0)
			assert_string_equal(line + 6, "5");
		else if (strncmp(line, "sigblk ", 7) == 0 ||
		    strncmp(line, "sigign ", 7) == 0)
			assert_string_equal(line + 7, "0000000000000000");
		else if (strncmp(line, "pgrp-is-pid ", 12) == 0)
			assert_string_equal(line + 12, "1");
	}
	assert_int_equal(fds, 3);
	assert_int_equal(seen, 10);
	free(out);
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

static void
test_cancelled_never_runs(void **state)
{
	struct store_job *j;
	struct store *s;
	char a[32], b[32], path[1200];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/sleep.sh %s 1\n"
	    "concurrency = 1\n", H, T);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "first", NULL, 1, a);
	enqueue(s, "default", "second", NULL, 1, b);
	j = wait_state(s, a, "running", 5000);
	store_job_free(j);
	assert_int_equal(store_cancel(s, b, store_now()), STORE_CANCEL_DONE);
	j = wait_state(s, a, "done", 5000);
	store_job_free(j);
	sleep_ms(300);
	j = wait_state(s, b, "cancelled", 100);
	assert_int_equal(j->attempts, 0);
	store_job_free(j);
	snprintf(path, sizeof(path), "%s/%s.1", T, b);
	assert_false(file_exists("%s", path));
	stop_helper(h, pfd);
	store_close(s);
}

/*
 * The store refuses a handler's outcome (the database stays locked past
 * busy_timeout): nothing is lost.  The outcome goes in once the lock is
 * gone, the job is not run again, and the job the same transaction would
 * have claimed waits until then instead of starting unrecorded.
 */
static void
test_outcome_waits_for_locked_store(void **state)
{
	struct store_job *j;
	struct store *s;
	char a[32], b[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("busy_timeout = 200ms\n\n[queue default]\n"
	    "handler = exec:%s/sleep.sh %s 1\nconcurrency = 1\n"
	    "max_attempts = 1\n", H, T);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "first", NULL, 1, a);
	enqueue(s, "default", "second", NULL, 1, b);
	store_job_free(wait_state(s, a, "running", 5000));
	/* An open batch holds the write lock (BEGIN IMMEDIATE). */
	assert_int_equal(store_batch_begin(s), 0);
	sleep_ms(2500);		/* a ended after 1 s; the helper was refused */
	store_job_free(wait_state(s, a, "running", 0));
	store_job_free(wait_state(s, b, "queued", 0));
	assert_int_equal(store_batch_end(s), 0);
	j = wait_state(s, a, "done dead", 5000);
	assert_int_equal(j->state, STORE_JOB_DONE);
	assert_int_equal(j->attempts, 1);
	store_job_free(j);
	j = wait_state(s, b, "done dead", 5000);
	assert_int_equal(j->state, STORE_JOB_DONE);
	assert_int_equal(j->attempts, 1);
	store_job_free(j);
	assert_false(file_exists("%s/%s.2", T, a));
	stop_helper(h, pfd);
	store_close(s);
}

/* One slow queue does not hold back another. */
static void
test_queues_do_not_starve(void **state)
{
	struct store_job *j;
	struct store *s;
	char slow[2][32], fast[5][32];
	pid_t h;
	int pfd, i;

	(void)state;
	write_conf("[queue slow]\nhandler = exec:%s/sleep.sh %s 3\n"
	    "concurrency = 1\n[queue fast]\nhandler = exec:%s/cat.sh\n"
	    "concurrency = 1\n", H, T, H);
	h = fork_helper(&pfd);
	s = db();
	for (i = 0; i < 2; i++)
		enqueue(s, "slow", "s", NULL, 1, slow[i]);
	for (i = 0; i < 5; i++)
		enqueue(s, "fast", "f", NULL, 1, fast[i]);
	for (i = 0; i < 5; i++) {
		j = wait_state(s, fast[i], "done", 2500);
		store_job_free(j);
	}
	/* The slow queue is still on its first job. */
	j = wait_state(s, slow[0], "running", 10);
	store_job_free(j);
	j = wait_state(s, slow[1], "queued", 10);
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

/* fcgiq gone: running handlers get the grace period, then their jobs are
 * requeued (attempt counted), and the helper exits 0. */
static void
test_parent_gone_requeues(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32], path[1200];
	int64_t t0;
	long hp;
	pid_t h;
	int pfd, status;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/sleep.sh %s 30\n", H, T);
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "x", NULL, 3, id);
	snprintf(path, sizeof(path), "%s/%s.1", T, id);
	assert_true(wait_file(5000, path));
	sleep_ms(50);
	hp = read_long(path);
	t0 = mono_ms();
	status = stop_helper(h, pfd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* grace = 1s, then SIGTERM (sleep dies of it at once). */
	assert_true(mono_ms() - t0 >= 900);
	assert_false(alive(hp));
	j = wait_state(s, id, "queued", 10);
	assert_int_equal(j->attempts, 1);
	assert_non_null(strstr(j->last_error, "helper stopping"));
	store_job_free(j);
	store_close(s);
}

/* kill -9 of the helper: its handler dies too, the supervisor starts a
 * new helper, the job runs again as attempt 2, nothing stays running. */
static void
test_kill9_helper(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32], path[1200];
	struct supervisor sv;
	long hp, helper, helper2;
	pid_t sup;
	int i;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/sleep.sh %s 1\n", H, T);
	assert_int_equal(supervisor_start(&sv, CONF), 0);
	sup = sv.pid;
	assert_true(sup > 0);
	s = db();
	enqueue(s, "default", "x", NULL, 3, id);
	snprintf(path, sizeof(path), "%s/%s.1", T, id);
	assert_true(wait_file(5000, path));
	sleep_ms(50);
	hp = read_long(path);
	helper = lock_holder();
	assert_true(helper > 0 && helper != sup);
	assert_int_equal(kill((pid_t)helper, SIGKILL), 0);
	for (i = 0; i < 100 && alive(hp); i++)
		sleep_ms(10);
	assert_false(alive(hp));
	snprintf(path, sizeof(path), "%s/%s.2", T, id);
	assert_true(wait_file(3000, path));
	j = wait_state(s, id, "done", 5000);
	assert_int_equal(j->attempts, 2);
	store_job_free(j);
	helper2 = lock_holder();
	assert_true(helper2 > 0 && helper2 != helper && alive(helper2));
	supervisor_stop(&sv);
	assert_false(alive(helper2));
	store_close(s);
}

/* Two helpers on one database (spawn-fcgi -F 2): one active, one standby
 * that takes over within a second of the active one's death. */
static void
test_standby_takes_over(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	struct supervisor s1, s2;
	long a, b;
	int64_t t0;

	(void)state;
	write_conf("[queue default]\nhandler = exec:%s/cat.sh\n", H);
	assert_int_equal(supervisor_start(&s1, CONF), 0);
	assert_int_equal(supervisor_start(&s2, CONF), 0);
	t0 = mono_ms();
	while ((a = lock_holder()) <= 0 && mono_ms() - t0 < 5000)
		sleep_ms(10);
	assert_true(a > 0);
	sleep_ms(300);	/* let the other one settle as a standby */
	assert_int_equal(kill((pid_t)a, SIGKILL), 0);
	t0 = mono_ms();
	while (((b = lock_holder()) <= 0 || b == a) && mono_ms() - t0 < 3000)
		sleep_ms(5);
	assert_true(b > 0 && b != a);
	print_message("# standby took over in %" PRId64 " ms\n",
	    mono_ms() - t0);
	assert_true(mono_ms() - t0 < 1000);
	s = db();
	enqueue(s, "default", "after takeover", NULL, 1, id);
	j = wait_state(s, id, "done", 5000);
	store_job_free(j);
	supervisor_stop(&s1);
	supervisor_stop(&s2);
	assert_false(alive(b));
	store_close(s);
}

/* SIGHUP: a queue that had no handler gets one. */
static void
test_sighup_reload(void **state)
{
	struct store_job *j;
	struct store *s;
	char id[32];
	pid_t h;
	int pfd;

	(void)state;
	write_conf("[queue default]\n");
	h = fork_helper(&pfd);
	s = db();
	enqueue(s, "default", "wait for me", NULL, 1, id);
	sleep_ms(1200);
	j = wait_state(s, id, "queued", 10);
	store_job_free(j);
	write_conf("[queue default]\nhandler = exec:%s/cat.sh\n", H);
	assert_int_equal(kill(h, SIGHUP), 0);
	j = wait_state(s, id, "done", 5000);
	store_job_free(j);
	stop_helper(h, pfd);
	store_close(s);
}

/* Many jobs: all done, no zombies, no fd growth in the helper. */
static void
test_many_jobs_no_leaks(void **state)
{
	enum { N = 500 };
	struct store_newjob *nj;
	struct store_job *j;
	struct store *s;
	int64_t t0, ms;
	int pfd, fd0, fd1, i;
	pid_t h;

	(void)state;
	write_conf("[queue default]\nhandler = exec:/bin/true\n"
	    "concurrency = 4\n");
	h = fork_helper(&pfd);
	s = db();
	/* The helper is up and idle: its fd count now is the baseline. */
	sleep_ms(300);
	fd0 = count_fds(h);
	assert_non_null(nj = calloc(N, sizeof(*nj)));
	for (i = 0; i < N; i++) {
		nj[i].queue = "default";
		nj[i].max_attempts = 1;
		nj[i].method = "POST";
		nj[i].request_uri = "/";
		nj[i].body = "b";
		nj[i].body_len = 1;
	}
	t0 = mono_ms();
	assert_int_equal(store_enqueue(s, nj, N), 0);
	wake_notify(DB);
	for (i = 0; i < N; i++) {
		j = wait_state(s, nj[i].id, "done", 60000);
		store_job_free(j);
	}
	ms = mono_ms() - t0;
	print_message("# %d jobs of /bin/true, concurrency 4: %" PRId64
	    " ms (%.0f jobs/s)\n", N, ms, N * 1000.0 / (double)(ms ? ms : 1));
	sleep_ms(100);
	fd1 = count_fds(h);
	assert_int_equal(fd1, fd0);
	assert_int_equal(count_zombies(h), 0);
	free(nj);
	stop_helper(h, pfd);
	store_close(s);
}

/*
 * The wake-up socket's abstract name: one per database file, the same
 * whatever path reaches it (all processes on one database agree), never
 * shared by two databases, and nothing created beside the database.
 */
static void
test_wake_names(void **state)
{
	char a[128], b[128], c[128], d[128], other[1200], link[1200];
	char dotted[1200], buf[8];
	struct dirent *de;
	DIR *dir;
	int fd, fd2, n = 0;

	(void)state;
	snprintf(other, sizeof(other), "%s/other.db", T);
	snprintf(link, sizeof(link), "%s/link.db", T);
	snprintf(dotted, sizeof(dotted), "%s/./q.db", T);
	assert_int_equal(wake_name(DB, a, sizeof(a)), -1);	/* no file yet */
	assert_true((fd = open(DB, O_CREAT | O_RDWR, 0644)) != -1);
	close(fd);
	assert_true((fd = open(other, O_CREAT | O_RDWR, 0644)) != -1);
	close(fd);
	assert_int_equal(symlink(DB, link), 0);
	assert_int_equal(wake_name(DB, a, sizeof(a)), 0);
	assert_int_equal(wake_name(link, b, sizeof(b)), 0);
	assert_int_equal(wake_name(dotted, c, sizeof(c)), 0);
	assert_int_equal(wake_name(other, d, sizeof(d)), 0);
	assert_true(strncmp(a, "@fcgiq-wake-", 12) == 0);
	assert_string_equal(a, b);
	assert_string_equal(a, c);
	assert_string_not_equal(a, d);

	/* Bound once per database; a notice through another path arrives. */
	assert_true((fd = wake_listen(DB)) != -1);
	assert_int_equal(wake_listen(dotted), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_true((fd2 = wake_listen(other)) != -1);
	wake_notify(link);
	sleep_ms(10);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 1);
	assert_int_equal(recv(fd2, buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(fd);
	close(fd2);

	/* No socket file: the directory needs no socket support. */
	assert_non_null(dir = opendir(T));
	while ((de = readdir(dir)) != NULL)
		if (de->d_type == DT_SOCK)
			n++;
	closedir(dir);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const char *b = getenv("top_builddir"), *src = getenv("top_srcdir");
	char sh[8192];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_done_with_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_twice_then_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit65_dead_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit75_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_exit_and_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_killed_and_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_and_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_never_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outcome_waits_for_locked_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queues_do_not_starve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_gone_requeues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill9_helper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_takes_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_jobs_no_leaks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_names, setup, teardown),
	};

	/* Scripts live in the source tree, the report program in the build
	 * tree: link them side by side in one directory. */
	snprintf(H, sizeof(H), "%s/test-helper-handlers.%ld",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
	snprintf(sh, sizeof(sh), "rm -rf '%s' && mkdir '%s' && "
	    "ln -s '%s'/tests/handlers/*.sh '%s/' && "
	    "ln -s '%s'/tests/handlers/report '%s/report'", H, H,
	    src ? src : ".", H, b ? b : ".", H);
	if (system(sh) != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(sh, sizeof(sh), "rm -rf '%s'", H);
	if (system(sh) != 0)
		rc = rc ? rc : 1;
	return rc;
}
