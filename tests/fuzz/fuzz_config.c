/*
 * fuzz_config: config_load over any file (the input, written to a memfd
 * and loaded through /proc/self/fd/N, as fcgiq loads a path), then
 * config_free; config_parse_size and config_parse_duration over the input
 * as one string.
 *
 * Invariants: a load that succeeds gives a config within every documented
 * bound (one queue at least, queue names 1-63 of A-Z a-z 0-9 - _ . and
 * unique, each number in its range, backoff min <= max, a status prefix
 * that starts and ends with '/', a handler exactly when it has an argv
 * whose program is an absolute path); a load that fails says
 * "PATH...: why" and leaves the struct empty; a size or duration accepted
 * starts with a digit and equals a reference computation.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include <ctype.h>
#include <unistd.h>

#include "fuzz.h"
#include "config.h"

static int	fd = -1;
static char	path[64];

static int
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
			return 0;
	return 1;
}

static void
check_config(const struct config *c)
{
	size_t i, j, n;

	INVARIANT(c->path != NULL && strcmp(c->path, path) == 0);
	INVARIANT(c->database != NULL && c->database[0] != '\0');
	INVARIANT(c->handler_path != NULL && c->handler_path[0] != '\0');
	INVARIANT(c->status_prefix != NULL);
	n = strlen(c->status_prefix);
	INVARIANT(n >= 1 && c->status_prefix[0] == '/' &&
	    c->status_prefix[n - 1] == '/');
	INVARIANT(c->durability == 0 || c->durability == 1);
	INVARIANT(c->max_body >= 1 && c->max_body <= (size_t)1 << 30);
	INVARIANT(c->log_level >= 0 && c->log_level <= 3);
	INVARIANT(c->threads >= 1 && c->threads <= 1024);
	INVARIANT(c->helper == 0 || c->helper == 1);
	INVARIANT(c->grace_ms >= 0 && c->busy_timeout_ms >= 0);
	INVARIANT(c->nqueues >= 1 && c->queues != NULL);
	for (i = 0; i < c->nqueues; i++) {
		const struct queue_conf *q = &c->queues[i];

		INVARIANT(valid_name(q->name));
		for (j = 0; j < i; j++)
			INVARIANT(strcmp(c->queues[j].name, q->name) != 0);
		INVARIANT(config_queue(c, q->name) == q);
		/* The handler line's scheme picks one kind, and only its
		 * fields are set. */
		INVARIANT((q->handler == NULL) == (q->kind == HANDLER_NONE));
		INVARIANT((q->handler_argv != NULL) == (q->kind == HANDLER_EXEC));
		INVARIANT((q->url != NULL) == (q->kind == HANDLER_HTTP));
		if (q->kind == HANDLER_HTTP) {
			/* What curl is given: a scheme it may use, no blank,
			 * control character or fragment (http_url_check). */
			INVARIANT(strncmp(q->url, "http://", 7) == 0 ||
			    strncmp(q->url, "https://", 8) == 0);
			for (j = 0; q->url[j] != '\0'; j++)
				INVARIANT((unsigned char)q->url[j] > 0x20 &&
				    q->url[j] != 0x7f && q->url[j] != '#');
		}
		if (q->kind == HANDLER_EXEC) {
			INVARIANT(strncmp(q->handler, "exec:", 5) == 0);
			INVARIANT(q->handler_argv[0] != NULL &&
			    q->handler_argv[0][0] == '/');
			for (j = 0; q->handler_argv[j] != NULL; j++)
				INVARIANT(q->handler_argv[j][0] != '\0' &&
				    strpbrk(q->handler_argv[j], " \t") == NULL);
		}
		INVARIANT(q->concurrency >= 1 && q->concurrency <= 256);
		INVARIANT(q->max_attempts >= 1 && q->max_attempts <= 1000);
		INVARIANT(q->priority >= -1000 && q->priority <= 1000);
		INVARIANT(q->timeout_ms > 0);
		INVARIANT(q->backoff_min_ms >= 0 &&
		    q->backoff_min_ms <= q->backoff_max_ms);
		INVARIANT(q->max_queued >= 1 && q->keep_done_ms >= 0);
		INVARIANT(q->max_result <= (size_t)1 << 30);
		INVARIANT(q->rlimit_as == 0 || q->rlimit_as >= 1024 * 1024);
		INVARIANT(q->rlimit_cpu_s == 0 || q->rlimit_cpu_s >= 1);
		INVARIANT(q->rlimit_nofile == 0 ||
		    (q->rlimit_nofile >= 3 && q->rlimit_nofile <= 1 << 20));
	}
}

/* Digits, then the rest: the reference split of a size or duration. */
static int
ref_number(const char *s, unsigned __int128 *v, const char **unit)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	for (*v = 0; isdigit((unsigned char)*s); s++)
		if ((*v = *v * 10 + (unsigned)(*s - '0')) > UINT64_MAX)
			return -1;
	*unit = s;
	return 0;
}

static void
check_numbers(const char *s)
{
	unsigned __int128 v, mult;
	const char *u;
	size_t sz = 12345;
	int64_t ms = 12345;
	int rc;

	rc = config_parse_size(s, &sz);
	if (rc == 0) {
		INVARIANT(ref_number(s, &v, &u) == 0);
		mult = strchr("kK", *u) && *u ? 1024 : strchr("mM", *u) && *u ?
		    1024 * 1024 : strchr("gG", *u) && *u ? 1024 * 1024 * 1024 : 1;
		INVARIANT(v * mult == sz);
	} else
		INVARIANT(sz == 12345);
	rc = config_parse_duration(s, &ms);
	if (rc == 0) {
		INVARIANT(ref_number(s, &v, &u) == 0);
		mult = strcmp(u, "ms") == 0 ? 1 : strcmp(u, "m") == 0 ? 60000 :
		    strcmp(u, "h") == 0 ? 3600000 : strcmp(u, "d") == 0 ?
		    86400000 : 1000;
		INVARIANT(ms >= 0 && v * mult == (unsigned __int128)ms);
	} else
		INVARIANT(ms == 12345);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[512], *s;
	static const struct config zero;
	int rc;

	if (fd == -1) {
		if ((fd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 ||
	    (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	err[0] = '\0';
	rc = config_load(&c, path, err, sizeof(err));
	INVARIANT(rc == 0 || rc == -1);
	if (rc == 0) {
		check_config(&c);
		config_free(&c);
	} else {
		INVARIANT(strncmp(err, path, strlen(path)) == 0);
		INVARIANT(strlen(err) > strlen(path) + 2);
	}
	INVARIANT(memcmp(&c, &zero, sizeof(c)) == 0);

	s = fuzz_cstr(data, size);
	check_numbers(s);
	free(s);
	return 0;
}
