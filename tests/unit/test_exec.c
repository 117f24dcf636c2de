/*
 * test_exec: the exec handler spawn path, without a database: the rebuilt
 * environment (allowlist, no HTTP_PROXY), a child with exactly fds 0-2,
 * default signals, its own process group, dying with its parent; stdin
 * written without blocking; stdout bounded; stderr's tail; each read call
 * bounded; exit texts.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "exec.h"
#include "store.h"

static char report_path[1024];

static const char *
envget(char **env, const char *name)
{
	size_t nl = strlen(name);

	for (; *env != NULL; env++)
		if (strncmp(*env, name, nl) == 0 && (*env)[nl] == '=')
			return *env + nl + 1;
	return NULL;
}

static size_t
envcount(char **env)
{
	size_t n = 0;

	while (env[n] != NULL)
		n++;
	return n;
}

static void
job_init(struct store_job *j)
{
	memset(j, 0, sizeof(*j));
	strcpy(j->id, "AAAAAAAAAAAAAAAAAAAAAA");
	j->queue = "mail";
	j->attempts = 3;
	j->method = "POST";
	j->request_uri = "/hook?x=1";
	j->query_string = "x=1";
	j->content_type = "application/json";
	j->remote_addr = "192.0.2.1";
	j->body = "hello";
	j->body_len = 5;
}

static void
test_env_allowlist(void **state)
{
	struct store_job j;
	char **env;

	(void)state;
	job_init(&j);
	j.headers = "{\"User-Agent\":\"curl/8\",\"Proxy\":\"http://evil\","
	    "\"HTTP_X_TRACE\":\"t1\",\"Accept\":[\"a\",\"b\"],"
	    "\"HTTP_PROXY\":\"http://evil2\",\"x-nul\":\"a\\u0000b\"}";
	env = exec_env(&j, "/opt/bin:/bin");
	assert_non_null(env);
	assert_string_equal(envget(env, "PATH"), "/opt/bin:/bin");
	assert_string_equal(envget(env, "REQUEST_METHOD"), "POST");
	assert_string_equal(envget(env, "REQUEST_URI"), "/hook?x=1");
	assert_string_equal(envget(env, "QUERY_STRING"), "x=1");
	assert_string_equal(envget(env, "CONTENT_TYPE"), "application/json");
	assert_string_equal(envget(env, "CONTENT_LENGTH"), "5");
	assert_string_equal(envget(env, "REMOTE_ADDR"), "192.0.2.1");
	assert_string_equal(envget(env, "FCGIQ_JOB_ID"), j.id);
	assert_string_equal(envget(env, "FCGIQ_QUEUE"), "mail");
	assert_string_equal(envget(env, "FCGIQ_ATTEMPT"), "3");
	assert_string_equal(envget(env, "HTTP_USER_AGENT"), "curl/8");
	assert_string_equal(envget(env, "HTTP_X_TRACE"), "t1");
	assert_string_equal(envget(env, "HTTP_ACCEPT"), "a, b");
	assert_null(envget(env, "HTTP_PROXY"));
	assert_null(envget(env, "HTTP_X_NUL"));
	assert_int_equal(envcount(env), 13);
	exec_env_free(env);

	/* Nothing optional: no CONTENT_TYPE, no REMOTE_ADDR, bad JSON. */
	j.content_type = NULL;
	j.remote_addr = NULL;
	j.headers = "not json";
	j.body_len = 0;
	env = exec_env(&j, NULL);
	assert_non_null(env);
	assert_string_equal(envget(env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	assert_string_equal(envget(env, "CONTENT_LENGTH"), "0");
	assert_null(envget(env, "CONTENT_TYPE"));
	assert_int_equal(envcount(env), 8);
	exec_env_free(env);
}

/* Read both pipes until EOF and reap; returns the wait status. */
static int
run_collect(struct exec_child *c, struct exec_out *o, struct exec_tail *t)
{
	struct pollfd p[2];
	int status, n;

	close(c->fd_in);
	while (c->fd_out != -1 || c->fd_err != -1) {
		n = 0;
		if (c->fd_out != -1) {
			p[n].fd = c->fd_out;
			p[n++].events = POLLIN;
		}
		if (c->fd_err != -1) {
			p[n].fd = c->fd_err;
			p[n++].events = POLLIN;
		}
		assert_true(poll(p, n, 10000) > 0);
		if (c->fd_out != -1 && exec_out_read(c->fd_out, o) == 1) {
			close(c->fd_out);
			c->fd_out = -1;
		}
		if (c->fd_err != -1 && exec_tail_read(c->fd_err, t) == 1) {
			close(c->fd_err);
			c->fd_err = -1;
		}
	}
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	return status;
}

/* Header names as the helper maps them, and more variables than the
 * environment's first allocation holds. */
static void
test_env_header_names(void **state)
{
	struct store_job j;
	char hdrs[8192], name[300], **env;
	size_t off;
	int i;

	(void)state;
	job_init(&j);
	memset(name, 'a', 260);
	name[260] = '\0';
	off = (size_t)snprintf(hdrs, sizeof(hdrs), "{\"HTTP_\":\"1\","
	    "\"\":\"2\",\"x y.z\":\"3\",\"http_low\":\"4\",\"%s\":\"5\"",
	    name);
	for (i = 0; i < 40; i++)
		off += (size_t)snprintf(hdrs + off, sizeof(hdrs) - off,
		    ",\"X-N%d\":\"%d\"", i, i);
	snprintf(hdrs + off, sizeof(hdrs) - off, "}");
	j.headers = hdrs;
	env = exec_env(&j, NULL);
	assert_non_null(env);
	assert_string_equal(envget(env, "HTTP_X_Y_Z"), "3");
	assert_string_equal(envget(env, "HTTP_HTTP_LOW"), "4");
	assert_string_equal(envget(env, "HTTP_X_N0"), "0");
	assert_string_equal(envget(env, "HTTP_X_N39"), "39");
	/* "HTTP_" and "" name nothing; 260 letters do not fit. */
	assert_int_equal(envcount(env), 10 + 2 + 40);
	exec_env_free(env);
}

static void
test_spawn_clean_child(void **state)
{
	struct store_job j;
	struct exec_child c;
	struct exec_out o = { .b = { .max = 65536 } };
	struct exec_tail t;
	struct sigaction sa;
	sigset_t set, old;
	char *argv[] = { report_path, NULL }, **env, *out;
	int leak, status;

	(void)state;
	memset(&t, 0, sizeof(t));
	job_init(&j);
	j.headers = "{\"Proxy\":\"http://evil\",\"X-A\":\"1\"}";
	env = exec_env(&j, "/bin");
	assert_non_null(env);

	/* What a helper has that a handler must not inherit: an fd without
	 * CLOEXEC, SIGPIPE ignored, signals blocked. */
	leak = open("/dev/null", O_RDONLY);
	assert_true(leak > 2);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);

	assert_int_equal(exec_spawn(argv, env, NULL, &c), 0);
	status = run_collect(&c, &o, &t);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(leak);
	exec_env_free(env);

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(o.b.data);
	o.b.data[o.b.len - 1] = '\0';
	out = (char *)o.b.data;
	assert_non_null(strstr(out, "fd 0\nfd 1\nfd 2\npgrp-is-pid 1\n"));
	assert_null(strstr(out, "fd 3"));
	assert_null(strstr(out, "HTTP_PROXY"));
	assert_non_null(strstr(out, "env HTTP_X_A=1\n"));
	assert_non_null(strstr(out, "sigblk 0000000000000000\n"));
	assert_non_null(strstr(out, "sigign 0000000000000000\n"));
	assert_non_null(strstr(out, "stdin 0"));
	exec_out_free(&o);
}

static void
test_spawn_exec_failure(void **state)
{
	char *argv[] = { "/nonexistent/handler", NULL }, *env[] = { NULL };
	struct exec_child c;
	struct exec_out o = { .b = { .max = 100 } };
	struct exec_tail t;
	char buf[64], *text;
	int status;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(exec_spawn(argv, env, NULL, &c), 0);
	status = run_collect(&c, &o, &t);
	exec_status_text(status, buf, sizeof(buf));
	assert_string_equal(buf, "exit 127");
	text = exec_error_text(buf, &t);
	assert_non_null(strstr(text, "exit 127: fcgiq: execve "
	    "/nonexistent/handler: errno 2 (ENOENT"));
	free(text);
	exec_out_free(&o);
}

static void
test_stdout_bounded_stderr_tail(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
	    "head -c 1000000 /dev/zero; i=0; while [ $i -lt 500 ]; do "
	    "echo line $i >&2; i=$((i+1)); done; echo THE END >&2; exit 3",
	    NULL };
	char *env[] = { "PATH=/bin:/usr/bin", NULL }, buf[64], *text;
	struct exec_child c;
	struct exec_out o = { .b = { .max = 1000 } };
	struct exec_tail t;
	int status;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(exec_spawn(argv, env, NULL, &c), 0);
	status = run_collect(&c, &o, &t);
	assert_int_equal(o.b.len, 1000);
	assert_int_equal(o.total, 1000000);
	exec_status_text(status, buf, sizeof(buf));
	assert_string_equal(buf, "exit 3");
	text = exec_error_text(buf, &t);
	assert_true(strncmp(text, "exit 3: ...", 11) == 0);
	assert_true(strlen(text) <= 11 + EXEC_TAIL);
	assert_string_equal(text + strlen(text) - 16, "line 499\nTHE END");
	free(text);
	exec_out_free(&o);
}

static void
test_stdin_never_blocks(void **state)
{
	char *argv[] = { "/bin/sleep", "5", NULL }, *env[] = { NULL };
	static char body[1 << 20];
	struct exec_child c;
	struct timespec a, b;
	size_t off = 0;
	ssize_t n;
	int status;

	(void)state;
	assert_int_equal(exec_spawn(argv, env, NULL, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	while ((n = write(c.fd_in, body + off, sizeof(body) - off)) > 0)
		off += (size_t)n;
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(n, -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(off < sizeof(body));
	assert_true(b.tv_sec - a.tv_sec < 2);
	/* Its own group: kill(-pid) reaches it. */
	assert_int_equal(kill(-c.pid, SIGKILL), 0);
	assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
	assert_true(WIFSIGNALED(status));
	/* The reader gone: EPIPE, not SIGPIPE (ignored by the helper). */
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write(c.fd_in, body, 1), -1);
	assert_int_equal(errno, EPIPE);
	close(c.fd_in);
	close(c.fd_out);
	close(c.fd_err);
}

/* A handler dies with the process that spawned it (PR_SET_PDEATHSIG). */
static void
test_dies_with_parent(void **state)
{
	char *argv[] = { "/bin/sleep", "30", NULL }, *env[] = { NULL };
	struct exec_child c;
	int p[2], status, i;
	pid_t mid, h;

	(void)state;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid != -1);
	if (mid == 0) {
		if (exec_spawn(argv, env, NULL, &c) == -1)
			_exit(1);
		if (write(p[1], &c.pid, sizeof(c.pid)) != sizeof(c.pid))
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(p[0], &h, sizeof(h)), sizeof(h));
	/* Once it runs sleep, PR_SET_PDEATHSIG is in force (before, the
	 * getppid() check makes it exit 127 instead). */
	for (i = 0; i < 200; i++) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)h);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strcmp(comm, "sleep\n") == 0)
			break;
		usleep(5000);
	}
	assert_int_equal(kill(mid, SIGKILL), 0);
	assert_int_equal(waitpid(mid, &status, 0), mid);
	/* Reparented to us (subreaper): it must die of SIGKILL promptly. */
	for (i = 0; i < 100; i++) {
		if (waitpid(h, &status, WNOHANG) == h)
			break;
		usleep(20000);
	}
	assert_true(i < 100);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	close(p[0]);
	close(p[1]);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/*
 * A source that never runs dry (/dev/zero stands for writers faster than
 * the reader: escaped grandchildren flooding a handler's pipes) must not
 * keep one read call going: each returns 0 after EXEC_READ_BUDGET bytes.
 * Before the budget this looped for ever (the alarm turns that into a
 * failure).
 */
static void
test_read_bounded(void **state)
{
	struct exec_out o = { .b = { .max = 1000 } };
	struct exec_tail t;
	int fd;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_true((fd = open("/dev/zero", O_RDONLY | O_CLOEXEC)) != -1);
	alarm(20);
	assert_int_equal(exec_out_read(fd, &o), 0);
	assert_int_equal(o.b.len, 1000);
	assert_int_equal(o.total, EXEC_READ_BUDGET);
	assert_int_equal(exec_out_read(fd, &o), 0);
	assert_int_equal(o.total, 2 * EXEC_READ_BUDGET);
	assert_int_equal(exec_tail_read(fd, &t), 0);
	assert_int_equal(t.total, EXEC_READ_BUDGET);
	alarm(0);
	close(fd);
	exec_out_free(&o);
}

static void
test_error_text(void **state)
{
	struct exec_tail t;
	char *s, buf[64];
	const char *msg = "  bad \x01 byte \xff and \xc3\xa9t\xc3\xa9\n\n";

	(void)state;
	memset(&t, 0, sizeof(t));
	s = exec_error_text("exit 1", &t);
	assert_string_equal(s, "exit 1");
	free(s);
	memcpy(t.ring, msg, strlen(msg));
	t.pos = strlen(msg);
	t.total = strlen(msg);
	s = exec_error_text("exit 1", &t);
	assert_string_equal(s, "exit 1: bad ? byte ? and \xc3\xa9t\xc3\xa9");
	free(s);

	exec_status_text(9, buf, sizeof(buf));	/* killed by SIGKILL */
	assert_string_equal(buf, "killed by signal 9");
	exec_status_text(65 << 8, buf, sizeof(buf));
	assert_string_equal(buf, "exit 65");
}

int
main(void)
{
	const char *b = getenv("top_builddir");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_allowlist),
		cmocka_unit_test(test_env_header_names),
		cmocka_unit_test(test_spawn_clean_child),
		cmocka_unit_test(test_spawn_exec_failure),
		cmocka_unit_test(test_stdout_bounded_stderr_tail),
		cmocka_unit_test(test_stdin_never_blocks),
		cmocka_unit_test(test_dies_with_parent),
		cmocka_unit_test(test_read_bounded),
		cmocka_unit_test(test_error_text),
	};

	snprintf(report_path, sizeof(report_path), "%s/tests/handlers/report",
	    b != NULL ? b : ".");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
