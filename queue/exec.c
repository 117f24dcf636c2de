/*
 * exec: spawning an `exec:` handler and collecting its output.
 *
 * The spawn follows the house order: build everything that allocates
 * (environment, pipes) first; block every signal; clone the process
 * sharing its memory, as vfork does (the parent waits until the child has
 * exec'd), so no page table is copied; in the child reset
 * every disposition and the mask, setpgid(0, 0), PR_SET_PDEATHSIG (and
 * check that the parent did not die before it took effect), dup2 the pipes
 * onto 0/1/2, close every fd from 3 up, apply rlimits, execve, _exit(127).
 * The child only makes async-signal-safe calls.  The parent restores its
 * mask; its pipe ends are CLOEXEC and non-blocking, so a handler that never
 * reads its stdin or floods its stdout cannot stall the helper's loop.
 *
 * exec_kind is the exec handler's side of a slot (slot.h): its stop and
 * kill signal the process group, its drain takes what the pipes hold once
 * the process is reaped (the helper reaps; see exec_slot_reaped).
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "buf.h"
#include "config.h"
#include "exec.h"
#include "fd.h"
#include "slot.h"
#include "store.h"
#include "text.h"

/* A growable NULL-terminated array of "NAME=value" strings. */
struct envv {
	char	**v;
	size_t	  n;
	size_t	  cap;
	int	  oom;
};

static void
env_add(struct envv *e, const char *name, const char *value)
{
	char *s;
	size_t nl, vl;

	if (e->oom || value == NULL)
		return;
	/* 32: a job's whole environment, most of the time. */
	if (array_grow(&e->v, &e->cap, e->n + 2, sizeof(*e->v), 32) == -1) {
		e->oom = 1;
		return;
	}
	nl = strlen(name);
	vl = strlen(value);
	if ((s = malloc(nl + vl + 2)) == NULL) {
		e->oom = 1;
		return;
	}
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, vl + 1);
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static int
env_has(const struct envv *e, const char *name)
{
	size_t i, nl = strlen(name);

	for (i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, nl) == 0 && e->v[i][nl] == '=')
			return 1;
	return 0;
}

/*
 * A stored header name to its CGI variable: "User-Agent" and
 * "HTTP_USER_AGENT" both become HTTP_USER_AGENT.  0, or -1 when the name is
 * empty or too long.
 */
static int
header_var(const char *key, char *buf, size_t len)
{
	if (strncmp(key, "HTTP_", 5) == 0)
		key += 5;
	return text_cgi_name(key, buf, len) == -1 ? -1 : 0;
}

/* A header value as text: strings as they are, arrays joined with ", ". */
static char *
header_value(json_t *v)
{
	size_t i, len = 0;
	json_t *e;
	char *s;

	if (json_is_string(v)) {
		/* An embedded NUL cannot travel in an environment. */
		if (strlen(json_string_value(v)) != json_string_length(v))
			return NULL;
		return strdup(json_string_value(v));
	}
	if (!json_is_array(v))
		return NULL;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return NULL;
		len += json_string_length(e) + 2;
	}
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	s[0] = '\0';
	json_array_foreach(v, i, e) {
		if (strlen(json_string_value(e)) != json_string_length(e)) {
			free(s);
			return NULL;
		}
		if (i > 0)
			strcat(s, ", ");
		strcat(s, json_string_value(e));
	}
	return s;
}

char **
exec_env(const struct store_job *job, const char *path)
{
	struct envv e = { NULL, 0, 0, 0 };
	char num[32], name[256], *val;
	const char *key;
	json_t *h, *v;

	env_add(&e, "PATH", path != NULL ? path : CONFIG_DEFAULT_PATH);
	env_add(&e, "REQUEST_METHOD", job->method);
	env_add(&e, "REQUEST_URI", job->request_uri);
	env_add(&e, "QUERY_STRING", job->query_string != NULL ?
	    job->query_string : "");
	env_add(&e, "CONTENT_TYPE", job->content_type);
	snprintf(num, sizeof(num), "%zu", job->body_len);
	env_add(&e, "CONTENT_LENGTH", num);
	env_add(&e, "REMOTE_ADDR", job->remote_addr);
	env_add(&e, "FCGIQ_JOB_ID", job->id);
	env_add(&e, "FCGIQ_QUEUE", job->queue);
	snprintf(num, sizeof(num), "%d", job->attempts);
	env_add(&e, "FCGIQ_ATTEMPT", num);

	if (job->headers != NULL &&
	    (h = json_loads(job->headers, JSON_ALLOW_NUL, NULL)) != NULL) {
		if (json_is_object(h)) {
			json_object_foreach(h, key, v) {
				if (header_var(key, name, sizeof(name)) == -1)
					continue;
				/* httpoxy: a client's Proxy: header must never
				 * become a proxy setting for the handler. */
				if (strcmp(name, "HTTP_PROXY") == 0 ||
				    env_has(&e, name))
					continue;
				if ((val = header_value(v)) == NULL)
					continue;
				env_add(&e, name, val);
				free(val);
			}
		}
		json_decref(h);
	}
	if (e.oom) {
		exec_env_free(e.v);
		return NULL;
	}
	return e.v;
}

void
exec_env_free(char **env)
{
	char **p;

	if (env == NULL)
		return;
	for (p = env; *p != NULL; p++)
		free(*p);
	free(env);
}

/* Async-signal-safe: write a constant message and a number to fd 2. */
static void
child_fail(const char *what, const char *arg, int err)
{
	char num[16];
	int i = (int)sizeof(num);
	unsigned int u = (unsigned int)err;
	const char *name = NULL;
	ssize_t r;

	switch (err) {
	case ENOENT: name = " (ENOENT: no such file or directory)"; break;
	case EACCES: name = " (EACCES: permission denied)"; break;
	case ENOEXEC: name = " (ENOEXEC: exec format error)"; break;
	case ENOMEM: name = " (ENOMEM: out of memory)"; break;
	case E2BIG: name = " (E2BIG: argument list too long)"; break;
	default: break;
	}
	do {
		num[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0 && i > 0);
	r = write(2, "fcgiq: ", 7);
	r = write(2, what, strlen(what));
	if (arg != NULL) {
		r = write(2, " ", 1);
		r = write(2, arg, strlen(arg));
	}
	r = write(2, ": errno ", 8);
	r = write(2, num + i, sizeof(num) - (size_t)i);
	if (name != NULL)
		r = write(2, name, strlen(name));
	r = write(2, "\n", 1);
	(void)r;
}

/* Close every fd from 3 up, async-signal-safe. */
static void
child_close_from3(void)
{
	char buf[1024];
	long n, off;
	int dfd, fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	/* Older kernels: list /proc/self/fd with getdents64, which does not
	 * allocate, closing as we go (the listing fd last). */
	dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd != -1) {
		while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
			for (off = 0; off < n;) {
				struct {
					uint64_t	 ino;
					int64_t		 off;
					unsigned short	 reclen;
					unsigned char	 type;
					char		 name[];
				} *d = (void *)(buf + off);
				const char *p = d->name;

				fd = 0;
				while (*p >= '0' && *p <= '9')
					fd = fd * 10 + (*p++ - '0');
				if (*p == '\0' && p != d->name && fd >= 3 &&
				    fd != dfd)
					close(fd);
				off += d->reclen;
			}
		}
		close(dfd);
		return;
	}
	for (fd = 3; fd < 65536; fd++)
		close(fd);
}

static int
child_rlimit(int resource, uint64_t v)
{
	struct rlimit rl;

	if (v == 0)
		return 0;
	rl.rlim_cur = rl.rlim_max = (rlim_t)v;
	return setrlimit(resource, &rl);
}

/* The kernel's struct sigaction (x86-64 and the generic layout). */
struct kernel_sigaction {
	void		(*handler)(int);
	unsigned long	  flags;
	void		(*restorer)(void);
	uint64_t	  mask;
};

static void __attribute__((noreturn))
child_run(char *const argv[], char *const envp[],
    const struct exec_limits *limits, pid_t parent, int in, int out, int err)
{
	struct kernel_sigaction ksa;
	sigset_t none;
	int sig;

	/* Dispositions first (SIG_IGN survives execve; SIGPIPE is ignored
	 * in the helper), then the mask the parent blocked for the fork.
	 * The raw system call, because glibc refuses to touch the two
	 * real-time signals it reserves (32, 33), and an ignored one
	 * inherited from whoever started fcgiq would reach the handler. */
	memset(&ksa, 0, sizeof(ksa));
	ksa.handler = SIG_DFL;
	for (sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, &ksa, NULL,
			    sizeof(ksa.mask));
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	if (setpgid(0, 0) == -1) {
		child_fail("setpgid", NULL, errno);
		_exit(127);
	}
	/* Die with the helper; if it already died, its SIGKILL was sent to
	 * nobody: getppid() tells. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(127);

	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
		_exit(127);
	child_close_from3();

	if (limits != NULL) {
		if (child_rlimit(RLIMIT_AS, limits->as_bytes) == -1 ||
		    child_rlimit(RLIMIT_CPU, limits->cpu_s) == -1 ||
		    child_rlimit(RLIMIT_NOFILE, limits->nofile) == -1) {
			child_fail("setrlimit", NULL, errno);
			_exit(127);
		}
	}
	/* After the limits (root may raise them), before execve: groups
	 * first, uid last, since each step gives up the right to the next. */
	if (limits != NULL && limits->drop) {
		if (setgroups((size_t)limits->ngroups, limits->groups) == -1) {
			child_fail("setgroups", NULL, errno);
			_exit(127);
		}
		if (setresgid(limits->gid, limits->gid, limits->gid) == -1) {
			child_fail("setresgid", NULL, errno);
			_exit(127);
		}
		if (setresuid(limits->uid, limits->uid, limits->uid) == -1) {
			child_fail("setresuid", NULL, errno);
			_exit(127);
		}
		/* Gone for good: there must be no way back to root. */
		if (limits->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
			child_fail("setuid", "root regained", EPERM);
			_exit(127);
		}
	}
	execve(argv[0], argv, envp);
	child_fail("execve", argv[0], errno);
	_exit(127);
}

/* What the child needs, in the parent's memory (the child shares it). */
struct child_args {
	char *const		 *argv;
	char *const		 *envp;
	const struct exec_limits *limits;
	pid_t			  parent;
	int			  in, out, err;
};

static int
child_start(void *arg)
{
	const struct child_args *a = arg;

	child_run(a->argv, a->envp, a->limits, a->parent, a->in, a->out,
	    a->err);
}

/*
 * The child's own stack while it runs in the parent's memory, until its
 * execve.  It only makes system calls and formats a number; 64 KiB leaves
 * room for sanitizer builds.
 */
#define CHILD_STACK	65536

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
exec_spawn(char *const argv[], char *const envp[],
    const struct exec_limits *limits, struct exec_child *child)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	/* The caller is suspended in clone() while the child uses it
	 * (CLONE_VFORK). */
	char stack[CHILD_STACK] __attribute__((aligned(64)));
	struct child_args a;
	sigset_t all, old;
	pid_t pid;
	int saved;

	if (argv == NULL || argv[0] == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* All CLOEXEC, so no other handler inherits them; the child's ends
	 * lose the flag through dup2. */
	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1)
		goto fail;
	if (set_nonblock(pin[1]) == -1 || set_nonblock(pout[0]) == -1 ||
	    set_nonblock(perr[0]) == -1)
		goto fail;

	a.argv = argv;
	a.envp = envp;
	a.limits = limits;
	a.parent = getpid();
	a.in = pin[0];
	a.out = pout[1];
	a.err = perr[1];
	/* Every signal blocked: no handler of the parent may run on the
	 * child's side of the shared memory. */
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) == -1)
		goto fail;
	pid = clone(child_start, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	saved = errno;
#if defined(__SANITIZE_ADDRESS__)
	/* The child's instrumented frames poisoned redzones in the shadow
	 * of this array (the memory is shared); it is ours again. */
	ASAN_UNPOISON_MEMORY_REGION(stack, sizeof(stack));
#endif
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		errno = saved;
		goto fail;
	}
	/* Also from this side, so a kill(-pid) right after the fork cannot
	 * miss; EACCES once the child has exec'd is fine. */
	(void)setpgid(pid, pid);

	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	child->pid = pid;
	child->fd_in = pin[1];
	child->fd_out = pout[0];
	child->fd_err = perr[0];
	return 0;
fail:
	saved = errno;
	if (pin[0] != -1) { close(pin[0]); close(pin[1]); }
	if (pout[0] != -1) { close(pout[0]); close(pout[1]); }
	if (perr[0] != -1) { close(perr[0]); close(perr[1]); }
	errno = saved;
	return -1;
}

/*
 * After a read(2) that returned n (counted into *total, charged to
 * *budget): 0 or 1 for exec_out_read and exec_tail_read to return, or 2
 * to read again.
 */
static int
read_next(ssize_t n, uint64_t *total, size_t *budget)
{
	if (n > 0) {
		*total += (uint64_t)n;
		return (*budget -= (size_t)n) == 0 ? 0 : 2;
	}
	if (n == 0)
		return 1;
	if (errno == EINTR)
		return 2;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return 1;
}

int
exec_out_read(int fd, struct exec_out *o)
{
	struct buf *b = &o->b;
	char scratch[16384];
	size_t budget = EXEC_READ_BUDGET;
	ssize_t n;
	int r;

	do {
		size_t room = b->len < b->max ? b->max - b->len : 0;

		if (room > 0) {
			/* Room for a 16 KiB read: buf never grows past max. */
			if (buf_reserve(b, room < 16384 ? room : 16384) == -1)
				return -1;
			room = b->cap - b->len;
			if (room > budget)
				room = budget;
			n = read(fd, b->data + b->len, room);
			if (n > 0)
				b->len += (size_t)n;
		} else {
			/* Past max_result: keep the pipe flowing, drop. */
			n = read(fd, scratch, sizeof(scratch) < budget ?
			    sizeof(scratch) : budget);
		}
	} while ((r = read_next(n, &o->total, &budget)) == 2);
	return r;
}

void
exec_out_free(struct exec_out *o)
{
	buf_free(&o->b);
}

int
exec_tail_read(int fd, struct exec_tail *t)
{
	char buf[4096];
	size_t budget = EXEC_READ_BUDGET;
	ssize_t n, i;
	int r;

	do {
		n = read(fd, buf, sizeof(buf) < budget ? sizeof(buf) : budget);
		for (i = 0; i < n; i++) {
			t->ring[t->pos] = buf[i];
			t->pos = (t->pos + 1) % EXEC_TAIL;
		}
	} while ((r = read_next(n, &t->total, &budget)) == 2);
	return r;
}

char *
exec_error_text(const char *reason, const struct exec_tail *t)
{
	unsigned char tail[EXEC_TAIL];
	size_t n = 0, i, start, end, rl, k;
	char *s;

	if (t != NULL && t->total > 0) {
		n = t->total < EXEC_TAIL ? (size_t)t->total : EXEC_TAIL;
		start = (t->pos + EXEC_TAIL - n) % EXEC_TAIL;
		for (i = 0; i < n; i++)
			tail[i] = (unsigned char)t->ring[(start + i) % EXEC_TAIL];
	}
	/* Trim blanks at both ends; when the ring wrapped, skip to the
	 * start of a character. */
	start = 0;
	if (t != NULL && t->total > EXEC_TAIL)
		while (start < n && (tail[start] & 0xc0) == 0x80)
			start++;
	while (start < n && isspace(tail[start]))
		start++;
	end = n;
	while (end > start && isspace(tail[end - 1]))
		end--;

	rl = strlen(reason);
	/* Each byte becomes at most 3 ("?" replacement is 1; kept UTF-8 is
	 * itself), plus "...: " and the NUL. */
	if ((s = malloc(rl + (end - start) + 16)) == NULL)
		return NULL;
	memcpy(s, reason, rl);
	k = rl;
	if (end > start) {
		memcpy(s + k, ": ", 2);
		k += 2;
		if (t->total > EXEC_TAIL) {
			memcpy(s + k, "...", 3);
			k += 3;
		}
		for (i = start; i < end;) {
			size_t cl = text_utf8_char(tail + i, end - i);

			if (cl == 0) {
				s[k++] = '?';
				i++;
			} else if (cl == 1 && tail[i] < 0x20 &&
			    tail[i] != '\n' && tail[i] != '\t') {
				s[k++] = '?';
				i++;
			} else if (cl == 1 && tail[i] == 0x7f) {
				s[k++] = '?';
				i++;
			} else {
				memcpy(s + k, tail + i, cl);
				k += cl;
				i += cl;
			}
		}
	}
	s[k] = '\0';
	return s;
}

void
exec_status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "wait status %#x", (unsigned int)status);
}

/* ------------------------------------------------------------ exec kind */

int
exec_slot_spawn(struct slot *s, char *const argv[], char *const envp[],
    const struct exec_limits *limits)
{
	struct exec_child child;

	if (s->state != SLOT_FREE) {
		errno = EINVAL;
		return -1;
	}
	if (exec_spawn(argv, envp, limits, &child) == -1)
		return -1;
	s->kind = &exec_kind;
	s->u.exec.pid = child.pid;
	s->u.exec.fd_in = child.fd_in;
	s->u.exec.fd_out = child.fd_out;
	s->u.exec.fd_err = child.fd_err;
	s->u.exec.in_off = 0;
	return 0;
}

pid_t
exec_slot_pid(const struct slot *s)
{
	if (s->kind != &exec_kind ||
	    (s->state != SLOT_RUNNING && s->state != SLOT_STOPPING))
		return 0;
	return s->u.exec.pid;
}

int
exec_slot_reaped(struct slot *s, int status)
{
	char text[64];

	exec_status_text(status, text, sizeof(text));
	return slot_exited(s, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	    text);
}

/* Feed as much of the body as the pipe takes now; close stdin when done. */
static void
exec_write_in(struct slot *s)
{
	struct slot_exec *x = &s->u.exec;
	const char *body = s->job->body;
	ssize_t n;

	while (x->fd_in != -1 && x->in_off < s->job->body_len) {
		n = write(x->fd_in, body + x->in_off,
		    s->job->body_len - x->in_off);
		if (n > 0) {
			x->in_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EPIPE: the handler does not want (the rest of) its body. */
		break;
	}
	fd_close(&x->fd_in);
}

enum { EXEC_IN, EXEC_OUT, EXEC_ERR };

static int
exec_poll(struct slot *s, struct pollfd *pfd, int *which)
{
	struct slot_exec *x = &s->u.exec;
	int n = 0;

	if (x->fd_in != -1) {
		pfd[n].fd = x->fd_in;
		pfd[n].events = POLLOUT;
		which[n++] = EXEC_IN;
	}
	if (x->fd_out != -1) {
		pfd[n].fd = x->fd_out;
		pfd[n].events = POLLIN;
		which[n++] = EXEC_OUT;
	}
	if (x->fd_err != -1) {
		pfd[n].fd = x->fd_err;
		pfd[n].events = POLLIN;
		which[n++] = EXEC_ERR;
	}
	return n;
}

static int
exec_ready(struct slot *s, int which, short revents)
{
	struct slot_exec *x = &s->u.exec;
	int r;

	switch (which) {
	case EXEC_IN:
		if (revents & (POLLERR | POLLHUP | POLLNVAL))
			fd_close(&x->fd_in);
		else
			exec_write_in(s);
		break;
	case EXEC_OUT:
		if ((r = exec_out_read(x->fd_out, &s->out)) != 0)
			fd_close(&x->fd_out);
		return r == -1 ? -1 : 0;
	case EXEC_ERR:
		if (exec_tail_read(x->fd_err, &s->err) != 0)
			fd_close(&x->fd_err);
		break;
	}
	return 0;
}

static void
exec_stop(struct slot *s)
{
	(void)kill(-s->u.exec.pid, SIGTERM);
}

static void
exec_kill(struct slot *s)
{
	(void)kill(-s->u.exec.pid, SIGKILL);
}

/*
 * Whatever it wrote before exiting is in the pipes; a grandchild that
 * escaped its group may keep them open, and keep writing, so read once (a
 * call's budget covers a full pipe, and bounds a writer that never stops)
 * and close: never wait for an EOF.
 */
static int
exec_drain(struct slot *s)
{
	struct slot_exec *x = &s->u.exec;
	int rc = 0;

	fd_close(&x->fd_in);
	if (x->fd_out != -1 && exec_out_read(x->fd_out, &s->out) == -1)
		rc = -1;
	if (x->fd_err != -1)
		(void)exec_tail_read(x->fd_err, &s->err);
	fd_close(&x->fd_out);
	fd_close(&x->fd_err);
	return rc;
}

static void
exec_close(struct slot *s)
{
	fd_close(&s->u.exec.fd_in);
	fd_close(&s->u.exec.fd_out);
	fd_close(&s->u.exec.fd_err);
}

static void
exec_describe(const struct slot *s, char *buf, size_t len)
{
	(void)snprintf(buf, len, "pid %ld", (long)s->u.exec.pid);
}

const struct slot_kind exec_kind = {
	"exec",
	exec_write_in,
	exec_poll,
	exec_ready,
	exec_stop,
	exec_kill,
	exec_drain,
	exec_close,
	exec_describe
};
