/*
 * schedule: [schedule NAME] sections (checked as they are read, like every
 * key of fcgiq.conf) and the slots each one is due, enqueued once.
 *
 * Time zones: the C library converts with one process-wide zone (TZ and
 * tzset), and nothing converts with another one without rewriting it.  The
 * slot arithmetic runs only in single-threaded programs (the helper's
 * loop, fcgiqctl), between cron_tz_enter and cron_tz_leave, so no other
 * thread can read the zone meanwhile; the responder's threads load the
 * configuration but never compute a slot.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "schedule.h"
#include "store.h"

#define NAME_MAX_LEN	63
#define BODY_FILE_MAX	(1024 * 1024)
#define WINDOW_MS	(7LL * 86400 * 1000)	/* see due_slots */
#define ALL_WINDOW_MS	(366LL * 86400 * 1000)

static int
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) ==
		    NULL)
			return 0;
	return 1;
}

static struct schedule_conf *
find_or_add(struct schedules *ss, const char *name, int line)
{
	struct schedule_conf *v;
	size_t i;

	for (i = 0; i < ss->n; i++)
		if (strcmp(ss->v[i].name, name) == 0)
			return &ss->v[i];
	if ((v = reallocarray(ss->v, ss->n + 1, sizeof(*v))) == NULL)
		return NULL;
	ss->v = v;
	v = &ss->v[ss->n];
	memset(v, 0, sizeof(*v));
	if ((v->name = strdup(name)) == NULL)
		return NULL;
	v->line = line;
	ss->n++;
	return v;
}

/* The file at path, whole, into *out (NUL-terminated): 0, or -1 errno. */
static int
read_body(const char *path, char **out, size_t *len)
{
	struct stat st;
	char *b;
	ssize_t r;
	size_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > BODY_FILE_MAX) {
		if (errno == 0 || S_ISREG(st.st_mode))
			errno = EFBIG;
		else
			errno = EINVAL;
		close(fd);
		return -1;
	}
	if ((b = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (n < (size_t)st.st_size &&
	    (r = read(fd, b + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)r;
	close(fd);
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

int
schedule_key(struct config *c, const char *section, const char *key,
    const char *value, int line, char *msg, size_t len)
{
	struct schedule_conf *sc;
	const char *name = section + strlen("schedule");
	char err[200], *b;
	size_t n;

	while (*name == ' ')
		name++;
	if (!valid_name(name)) {
		snprintf(msg, len, "[%s]: a schedule name is 1-%d characters "
		    "of A-Z a-z 0-9 - _ .", section, NAME_MAX_LEN);
		return -1;
	}
	if ((sc = find_or_add(&c->schedules, name, line)) == NULL)
		goto nomem;
	if (strcmp(key, "cron") == 0) {
		if (cron_parse(&sc->cron, value, err, sizeof(err)) == -1) {
			snprintf(msg, len, "schedule %s: %s", name, err);
			return -1;
		}
		free(sc->cron_text);
		if ((sc->cron_text = strdup(value)) == NULL)
			goto nomem;
		sc->has_cron = 1;
	} else if (strcmp(key, "timezone") == 0) {
		if (!cron_tz_valid(value)) {
			snprintf(msg, len, "schedule %s: timezone: \"%s\" is "
			    "not a zone under /usr/share/zoneinfo", name,
			    value);
			return -1;
		}
		free(sc->timezone);
		if ((sc->timezone = strdup(value)) == NULL)
			goto nomem;
	} else if (strcmp(key, "queue") == 0) {
		free(sc->queue);
		if ((sc->queue = strdup(value)) == NULL)
			goto nomem;
	} else if (strcmp(key, "body") == 0) {
		free(sc->body);
		n = strlen(value);
		if ((sc->body = strdup(value)) == NULL)
			goto nomem;
		sc->body_len = n;
	} else if (strcmp(key, "body_file") == 0) {
		if (read_body(value, &b, &n) == -1) {
			snprintf(msg, len, "schedule %s: body_file: %s: %s",
			    name, value, errno == EFBIG ? "not a regular file "
			    "of at most 1 MiB" : strerror(errno));
			return -1;
		}
		free(sc->body);
		sc->body = b;
		sc->body_len = n;
	} else if (strcmp(key, "catch_up") == 0) {
		if (strcmp(value, "last") == 0)
			sc->catch_up = CATCH_UP_LAST;
		else if (strcmp(value, "none") == 0)
			sc->catch_up = CATCH_UP_NONE;
		else if (strcmp(value, "all") == 0)
			sc->catch_up = CATCH_UP_ALL;
		else {
			snprintf(msg, len, "schedule %s: catch_up: \"%s\" is "
			    "not last, none or all", name, value);
			return -1;
		}
	} else {
		snprintf(msg, len, "unknown key \"%s\" in [%s] (expected cron, "
		    "timezone, queue, body, body_file, catch_up)", key,
		    section);
		return -1;
	}
	return 0;
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

int
schedule_finish(const struct config *c, char *err, size_t errlen)
{
	const struct schedule_conf *sc;
	size_t i;

	for (i = 0; i < c->schedules.n; i++) {
		sc = &c->schedules.v[i];
		if (!sc->has_cron) {
			snprintf(err, errlen, "%s:%d: schedule %s: no cron",
			    c->path, sc->line, sc->name);
			return -1;
		}
		if (sc->queue == NULL) {
			snprintf(err, errlen, "%s:%d: schedule %s: no queue",
			    c->path, sc->line, sc->name);
			return -1;
		}
		if (config_queue(c, sc->queue) == NULL) {
			snprintf(err, errlen, "%s:%d: schedule %s: queue: "
			    "\"%s\": no [queue %s]", c->path, sc->line,
			    sc->name, sc->queue, sc->queue);
			return -1;
		}
	}
	return 0;
}

void
schedule_free(struct schedules *ss)
{
	size_t i;

	for (i = 0; i < ss->n; i++) {
		free(ss->v[i].name);
		free(ss->v[i].cron_text);
		free(ss->v[i].timezone);
		free(ss->v[i].queue);
		free(ss->v[i].body);
	}
	free(ss->v);
	ss->v = NULL;
	ss->n = 0;
}

int64_t
schedule_now(void)
{
	static const char *path;
	static int looked;
	char buf[32];
	ssize_t r;
	int fd;

	/* Tests only: the e2e suites step this clock instead of waiting
	 * for real minutes.  Looked up once: the helper's loop calls this
	 * every turn. */
	if (!looked) {
		path = getenv("FCGIQ_TEST_CLOCK");
		looked = 1;
	}
	if (path != NULL &&
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r > 0) {
			buf[r] = '\0';
			return strtoll(buf, NULL, 10);
		}
	}
	return store_now();
}

int
schedule_next(const struct schedule_conf *sc, int64_t after, int64_t *slot)
{
	int r;

	if (cron_tz_enter(sc->timezone) == -1)
		return 0;
	r = cron_next(&sc->cron, after, slot);
	cron_tz_leave();
	return r;
}

/*
 * The slots of sc in (last, now] that catch_up enqueues into out[0..*n)
 * (cap of them, oldest first) and in *newest the newest slot of that span
 * (0: none).  The span's start is moved up to bound the work after a long
 * downtime: for last and none to 7 days back when a slot falls in them;
 * for all to a year back.  -1 when out of memory.
 */
static int
due_slots(const struct schedule_conf *sc, int64_t last, int64_t now,
    int64_t *out, size_t cap, size_t *n, int64_t *newest)
{
	int64_t from = last, s, *tmp;
	size_t k = 0, i, first;

	*n = 0;
	*newest = 0;
	if (now <= last || cron_tz_enter(sc->timezone) == -1)
		return 0;
	if (sc->catch_up != CATCH_UP_ALL && now - last > WINDOW_MS) {
		if (cron_next(&sc->cron, now - WINDOW_MS, &s) && s <= now)
			from = now - WINDOW_MS;
	} else if (sc->catch_up == CATCH_UP_ALL && now - last > ALL_WINDOW_MS)
		from = now - ALL_WINDOW_MS;
	while (cron_next(&sc->cron, from, &s) && s <= now) {
		out[k++ % cap] = s;
		*newest = from = s;
	}
	cron_tz_leave();
	if (*newest == 0)
		return 0;
	switch (sc->catch_up) {
	case CATCH_UP_ALL:
		/* The ring's oldest first. */
		if (k > cap) {
			first = k % cap;
			if ((tmp = malloc(cap * sizeof(*tmp))) == NULL)
				return -1;
			for (i = 0; i < cap; i++)
				tmp[i] = out[(first + i) % cap];
			memcpy(out, tmp, cap * sizeof(*tmp));
			free(tmp);
			*n = cap;
		} else
			*n = k;
		break;
	case CATCH_UP_NONE:
		if (now - *newest < SCHEDULE_ON_TIME_MS) {
			out[0] = *newest;
			*n = 1;
		}
		break;
	default:
		out[0] = *newest;
		*n = 1;
	}
	return 0;
}

struct fire {
	const struct schedule_conf *sc;
	int		 max_attempts, priority;
	int64_t		 now, since;
	int64_t		*slots;
	struct store_newjob *jobs;
	char		*keys;		/* 128 bytes a job */
	char		*headers;	/* 160 bytes a job */
};

#define KEY_LEN		128
#define HDR_LEN		160

static int
fire_slots(void *arg, int has, int64_t last, struct store_newjob **jobs,
    size_t *n, int64_t *newlast)
{
	struct fire *f = arg;
	const struct schedule_conf *sc = f->sc;
	size_t cap = sc->catch_up == CATCH_UP_ALL ? SCHEDULE_ALL_MAX : 1, i;
	int64_t newest;
	struct tm tm;
	time_t t;
	char iso[32];

	*n = 0;
	if (!has)
		last = f->since - 1;
	if ((f->slots = calloc(cap, sizeof(*f->slots))) == NULL ||
	    (f->jobs = calloc(cap, sizeof(*f->jobs))) == NULL ||
	    (f->keys = malloc(cap * KEY_LEN)) == NULL ||
	    (f->headers = malloc(cap * HDR_LEN)) == NULL)
		return -1;
	if (due_slots(sc, last, f->now, f->slots, cap, n, &newest) == -1)
		return -1;
	if (newest != 0)
		*newlast = newest;
	for (i = 0; i < *n; i++) {
		struct store_newjob *j = &f->jobs[i];

		t = (time_t)(f->slots[i] / 1000);
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(iso, sizeof(iso), "?");
		snprintf(f->keys + i * KEY_LEN, KEY_LEN, "schedule:%s:%lld",
		    sc->name, (long long)f->slots[i]);
		/* Names are of [A-Za-z0-9._-]: nothing to escape. */
		snprintf(f->headers + i * HDR_LEN, HDR_LEN,
		    "{\"X-Fcgiq-Schedule\":\"%s\",\"X-Fcgiq-Slot\":\"%s\"}",
		    sc->name, iso);
		j->queue = sc->queue;
		j->priority = f->priority;
		j->max_attempts = f->max_attempts;
		j->idempotency_key = f->keys + i * KEY_LEN;
		j->method = "POST";
		j->headers = f->headers + i * HDR_LEN;
		j->body = sc->body != NULL ? sc->body : "";
		j->body_len = sc->body_len;
	}
	*jobs = f->jobs;
	return 0;
}

int
schedule_fire(struct store *s, const struct schedule_conf *sc,
    int max_attempts, int priority, int64_t now, int64_t since,
    int64_t *last, int *n)
{
	struct fire f;
	int r;

	memset(&f, 0, sizeof(f));
	f.sc = sc;
	f.max_attempts = max_attempts;
	f.priority = priority;
	f.now = now;
	f.since = since;
	r = store_schedule_run(s, sc->name, fire_slots, &f, n);
	free(f.slots);
	free(f.jobs);
	free(f.keys);
	free(f.headers);
	f.slots = NULL;
	if (r == 0 && store_schedule_last(s, sc->name, last) != 1)
		*last = 0;	/* none stored yet */
	return r;
}
