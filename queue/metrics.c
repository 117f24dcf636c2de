/*
 * metrics: the counters shared by the processes of one installation (see
 * metrics.h).  The file is a header (a magic, the layout's size, the queue
 * names' table) and METRICS_SLOTS slots.  Everything that is not an
 * increment (creating the file, taking a slot, adding a queue name) holds
 * flock() on the file: rare, at start-up or at a new queue's first job.
 * Increments are relaxed atomic adds on the process's own slot; a reader
 * may see a histogram's sum a moment ahead of its buckets, never a count
 * that goes back.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "store.h"

#define MAGIC		0x34544d5147434646ULL	/* "FFCGQMT4" */
#define OWNER_LEN	256
#define NAME_READY	2

const double metrics_bounds[3][METRICS_NBUCKETS] = {
	[METRICS_H_FAST] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	    0.05, 0.1, 0.25, 0.5, 1, 5 },
	[METRICS_H_JOB] = { 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
	    300, 3600 },
	[METRICS_H_BATCH] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,
	    4096 },
};

const char *const metrics_outcome_names[METRICS_NOUTCOMES] = {
	"done", "failed", "dead", "cancelled"
};

const int metrics_codes[METRICS_NCODES] = {
	0, 200, 202, 204, 206, 304, 400, 401, 403, 404, 405, 409, 410, 411,
	412, 413, 414, 415, 422, 429, 431, 500, 502, 503
};

struct name_entry {
	uint32_t	state;		/* 0 free, NAME_READY */
	char		name[METRICS_QUEUE_NAME];
};

/* The shared counts behind a sequence lock: odd while being written. */
struct counts_area {
	uint64_t	seq;
	int64_t		claimed_until;	/* wall ms: someone counts */
	int64_t		stale;		/* 1: due now, whatever its age */
	struct metrics_counts c;
};

struct mfile {
	uint64_t	magic;
	uint64_t	size;		/* sizeof(struct mfile): the layout */
	/* A metrics_file's installation (see metrics_set_file): its hash
	 * (0: a file beside a SQLite database, found by its path alone)
	 * and, for the message that refuses another, its text. */
	uint64_t	owner_hash;
	char		owner[OWNER_LEN];
	struct name_entry names[METRICS_MAX_QUEUES];
	struct counts_area counts;
	struct metrics_minute minutes[METRICS_MINUTES];
	struct metrics_slot slots[METRICS_SLOTS];
};

/* Before metrics_open, or without a file: this process's own. */
static struct mfile_local {
	struct name_entry names[METRICS_MAX_QUEUES];
	struct counts_area counts;
	struct metrics_minute minutes[METRICS_MINUTES];
	struct metrics_slot slot;
} local;

static struct name_entry	*names = local.names;
static struct counts_area	*counts = &local.counts;
static struct metrics_minute	*minutes = local.minutes;
static struct metrics_slot	*me = &local.slot;
static struct mfile		*map;
static int			 map_fd = -1;
static pid_t			 map_owner;	/* the process that mapped it */
static char			 map_path[4096];

/* metrics_set_file's: a PostgreSQL database's file and whose it is. */
static struct {
	char		database[4096];
	char		path[4096];
	char		owner[OWNER_LEN];
	uint64_t	hash;
} pg_file;

size_t
metrics_slot_bytes(void)
{
	return sizeof(struct metrics_slot);
}

/* FNV-1a of s, never 0 (0 says "not checked"). */
static uint64_t
fnv(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

int
metrics_set_file(const char *database, const char *path, const char *owner)
{
	/* A reload (SIGHUP) does not move the file a process counts in:
	 * metrics_sum must keep reading the one metrics_open mapped. */
	if (map != NULL && map_owner == getpid())
		return 0;
	if (path == NULL || database == NULL) {
		memset(&pg_file, 0, sizeof(pg_file));
		return 0;
	}
	if (path[0] != '/' ||
	    strlen(database) >= sizeof(pg_file.database) ||
	    strlen(path) >= sizeof(pg_file.path))
		return -1;
	memset(&pg_file, 0, sizeof(pg_file));
	snprintf(pg_file.database, sizeof(pg_file.database), "%s", database);
	snprintf(pg_file.path, sizeof(pg_file.path), "%s", path);
	/* Cut to fit: the hash, not the text, decides. */
	snprintf(pg_file.owner, sizeof(pg_file.owner), "%s%s%s",
	    owner != NULL ? owner : "", owner != NULL ? " " : "", database);
	pg_file.hash = fnv(owner != NULL ? owner : "") ^ fnv(database);
	if (pg_file.hash == 0)
		pg_file.hash = 1;
	return 0;
}

const char *
metrics_file_of(const char *database)
{
	if (database == NULL || pg_file.path[0] == '\0' ||
	    strcmp(database, pg_file.database) != 0)
		return NULL;
	return pg_file.path;
}

/*
 * The file of database into buf and, in *hash, the owner it must carry (0:
 * any, a SQLite database's file).  0; -1 with a message in err.
 */
static int
mpath(const char *database, char *buf, size_t len, uint64_t *hash,
    char *err, size_t errlen)
{
	*hash = 0;
	if (store_is_postgresql(database)) {
		if (pg_file.path[0] == '\0' ||
		    strcmp(pg_file.database, database) != 0) {
			snprintf(err, errlen, "no metrics_file in [fcgiq]: with "
			    "PostgreSQL each process counts on its own");
			return -1;
		}
		*hash = pg_file.hash;
		return snprintf(buf, len, "%s", pg_file.path) < (int)len ?
		    0 : -1;
	}
	if (snprintf(buf, len, "%s-metrics", database) < (int)len)
		return 0;
	snprintf(err, errlen, "%s: path too long", database);
	return -1;
}

/* Whether m may serve the installation of hash: -1 with err when it is
 * another's. */
static int
owner_check(const struct mfile *m, const char *path, uint64_t hash, char *err,
    size_t errlen)
{
	char owner[OWNER_LEN];

	if (m->owner_hash == hash)
		return 0;
	memcpy(owner, m->owner, sizeof(owner));
	owner[sizeof(owner) - 1] = '\0';
	snprintf(err, errlen, "%s: the metrics file of another installation "
	    "(%s): give each its own metrics_file", path, m->owner_hash == 0 ?
	    "a SQLite database's" : owner);
	return -1;
}

/* An owner that has gone: its slot may be taken over. */
static int
slot_free(const struct metrics_slot *s)
{
	pid_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);

	return pid == 0 || (kill(pid, 0) == -1 && errno == ESRCH);
}

/*
 * What this process counted before its slot was mapped: the process-wide
 * counts move into the slot (queue indexes of the local table may differ
 * from the file's: those counts stay behind, and are few).
 */
static void
move_local(void)
{
	const uint64_t *src = (const uint64_t *)((char *)&local.slot + 8);
	uint64_t *dst = (uint64_t *)((char *)me + 8);
	size_t k, n = (offsetof(struct metrics_slot, q) - 8) / 8;

	for (k = 0; k < n; k++)
		__atomic_add_fetch(&dst[k], src[k], __ATOMIC_RELAXED);
	memset(&local.slot, 0, sizeof(local.slot));
}

/*
 * Let go of the mapping: give the slot back when this process took it,
 * leave it to its owner when the mapping came through fork() (a helper
 * forked by a responder must not free the responder's slot).
 */
static void
unmap(void)
{
	if (map == NULL)
		return;
	if (map_owner == getpid())
		__atomic_store_n(&me->pid, 0, __ATOMIC_RELEASE);
	me = &local.slot;
	names = local.names;
	counts = &local.counts;
	minutes = local.minutes;
	(void)munmap(map, sizeof(*map));
	(void)close(map_fd);
	map = NULL;
	map_fd = -1;
}

int
metrics_open(const char *database, int create, char *err, size_t errlen)
{
	struct mfile *m = MAP_FAILED;
	struct stat st;
	uint64_t hash;
	size_t i;
	int fd = -1, replaced = 0;

	unmap();	/* a slot of our own, not one inherited */
	if (mpath(database, map_path, sizeof(map_path), &hash, err,
	    errlen) == -1)
		return -1;
again:
	if ((fd = open(map_path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0),
	    0644)) == -1 ||
	    flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1)
		goto fail_errno;
	if (st.st_size == 0 && ftruncate(fd, sizeof(*m)) == -1)
		goto fail_errno;
	if (st.st_size != 0 && st.st_size != (off_t)sizeof(*m)) {
		if (create && !replaced)
			goto replace;
		snprintf(err, errlen, "%s: another layout (%lld bytes): "
		    "remove it while fcgiq is stopped", map_path,
		    (long long)st.st_size);
		goto fail;
	}
	if ((m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0)) == MAP_FAILED)
		goto fail_errno;
	if (m->magic == 0) {
		m->size = sizeof(*m);
		m->owner_hash = hash;
		if (hash != 0)
			memcpy(m->owner, pg_file.owner, sizeof(m->owner));
		m->magic = MAGIC;
	} else if (m->magic != MAGIC || m->size != sizeof(*m)) {
		if (create && !replaced)
			goto replace;
		snprintf(err, errlen, "%s: not a metrics file of this "
		    "version: remove it while fcgiq is stopped", map_path);
		goto fail;
	}
	/* Two installations naming one file would add up each other's
	 * counts: the first keeps it. */
	if (owner_check(m, map_path, hash, err, errlen) == -1)
		goto fail;
	for (i = 0; i < METRICS_SLOTS; i++)
		if (slot_free(&m->slots[i]))
			break;
	if (i == METRICS_SLOTS) {
		snprintf(err, errlen, "%s: all %d slots taken", map_path,
		    METRICS_SLOTS);
		goto fail;
	}
	m->slots[i].gen++;
	__atomic_store_n(&m->slots[i].pid, (int32_t)getpid(),
	    __ATOMIC_RELEASE);
	(void)flock(fd, LOCK_UN);
	map = m;
	map_fd = fd;
	map_owner = getpid();
	names = m->names;
	counts = &m->counts;
	minutes = m->minutes;
	me = &m->slots[i];
	/* Counts this process made before now are added to its slot. */
	move_local();
	return 0;
replace:
	/*
	 * A file an older fcgiq left (an upgrade): counters are allowed to
	 * reset, so a new file takes its name.  Processes of the old version
	 * still running keep the one they mapped, unlinked, and never mix
	 * layouts with this one.
	 */
	if (m != MAP_FAILED)
		(void)munmap(m, sizeof(*m));
	m = MAP_FAILED;
	if (unlink(map_path) == -1 && errno != ENOENT)
		goto fail_errno;
	(void)close(fd);
	replaced = 1;
	goto again;
fail_errno:
	snprintf(err, errlen, "%s: %s", map_path, strerror(errno));
fail:
	if (m != MAP_FAILED)
		(void)munmap(m, sizeof(*m));
	if (fd != -1)
		(void)close(fd);
	return -1;
}

void
metrics_close(void)
{
	unmap();
}

int
metrics_queue(const char *name)
{
	size_t i, n = strlen(name);

	if (n >= METRICS_QUEUE_NAME)
		return -1;
	for (i = 0; i < METRICS_MAX_QUEUES; i++) {
		if (__atomic_load_n(&names[i].state, __ATOMIC_ACQUIRE) !=
		    NAME_READY)
			break;
		if (strcmp(names[i].name, name) == 0)
			return (int)i;
	}
	if (i == METRICS_MAX_QUEUES)
		return -1;
	/* A new name: under the file's lock, looked for again. */
	if (map_fd != -1 && flock(map_fd, LOCK_EX) == -1)
		return -1;
	for (; i < METRICS_MAX_QUEUES; i++) {
		if (names[i].state == NAME_READY) {
			if (strcmp(names[i].name, name) == 0)
				break;
			continue;
		}
		memcpy(names[i].name, name, n + 1);
		__atomic_store_n(&names[i].state, NAME_READY,
		    __ATOMIC_RELEASE);
		break;
	}
	if (map_fd != -1)
		(void)flock(map_fd, LOCK_UN);
	return i < METRICS_MAX_QUEUES ? (int)i : -1;
}

static inline void
add(uint64_t *p, uint64_t n)
{
	__atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}

/* Observe v (in the kind's unit) into h. */
static void
observe(struct metrics_hist *h, enum metrics_hist_kind kind, double v)
{
	size_t i;

	for (i = 0; i < METRICS_NBUCKETS && v > metrics_bounds[kind][i]; i++)
		;
	add(&h->b[i], 1);
	add(&h->sum, v > 0 ? (uint64_t)(v * 1e6 + 0.5) : 0);
}

void
metrics_http(int status)
{
	size_t i;

	for (i = 1; i < METRICS_NCODES && metrics_codes[i] != status; i++)
		;
	add(&me->http[i < METRICS_NCODES ? i : 0], 1);
}

void
metrics_intake(int64_t us)
{
	observe(&me->intake, METRICS_H_FAST, (double)us / 1e6);
}

void
metrics_commit(size_t jobs, int64_t us)
{
	observe(&me->commit, METRICS_H_FAST, (double)us / 1e6);
	observe(&me->batch, METRICS_H_BATCH, (double)jobs);
}

/*
 * The minute of now, ready to be added to: its entry is claimed by
 * swapping its old minute for -minute (zeroing), then minute.  NULL when
 * another process is zeroing it right now, or the clock went back past
 * it.  A process that dies while zeroing leaves -minute behind: the next
 * to use the entry, a ring's turn later, sees an older minute and claims
 * it as usual.
 */
static struct metrics_minute *
minute_now(void)
{
	struct metrics_minute *e;
	struct timespec ts;
	int64_t m, t;
	size_t k;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == -1)
		return NULL;
	m = (int64_t)ts.tv_sec / 60;
	e = &minutes[m % METRICS_MINUTES];
	t = __atomic_load_n(&e->minute, __ATOMIC_ACQUIRE);
	if (t == m)
		return e;
	if (t == -m || t > m || -t > m)
		return NULL;
	if (!__atomic_compare_exchange_n(&e->minute, &t, -m, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return t == m ? e : NULL;
	for (k = 0; k < METRICS_MAX_QUEUES * METRICS_M_N; k++)
		__atomic_store_n(&e->n[0][0] + k, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->minute, m, __ATOMIC_RELEASE);
	return e;
}

static void
minute_add(const char *queue, int what, uint64_t n)
{
	struct metrics_minute *e;
	int i;

	if ((i = metrics_queue(queue)) < 0 || (e = minute_now()) == NULL)
		return;
	add(&e->n[i][what], n);
}

void
metrics_minutes(int64_t now_ms, struct metrics_minute *out, size_t n)
{
	const struct metrics_minute *e;
	int64_t m = now_ms / 60000;
	size_t i;

	if (n > METRICS_MINUTES)
		n = METRICS_MINUTES;
	for (i = 0; i < n; i++, m--) {
		e = &minutes[m % METRICS_MINUTES];
		memset(&out[i], 0, sizeof(out[i]));
		out[i].minute = m;
		if (__atomic_load_n(&e->minute, __ATOMIC_ACQUIRE) != m)
			continue;
		memcpy(out[i].n, e->n, sizeof(out[i].n));
		/* Zeroed for a later minute meanwhile: not this one's. */
		if (__atomic_load_n(&e->minute, __ATOMIC_ACQUIRE) != m)
			memset(out[i].n, 0, sizeof(out[i].n));
	}
}

static struct metrics_queue *
q_of(const char *queue)
{
	int i = metrics_queue(queue);

	return i >= 0 ? &me->q[i] : NULL;
}

void
metrics_enqueued(const char *queue, uint64_t n)
{
	struct metrics_queue *q = q_of(queue);

	if (q != NULL)
		add(&q->enqueued, n);
	minute_add(queue, METRICS_M_ENQUEUED, n);
}

void
metrics_retried(const char *queue, uint64_t n)
{
	struct metrics_queue *q = q_of(queue);

	if (q != NULL)
		add(&q->retried, n);
}

void
metrics_verify_failed(const char *queue)
{
	struct metrics_queue *q = q_of(queue);

	if (q != NULL)
		add(&q->verify_failures, 1);
}

void
metrics_started(const char *queue, int64_t wait_ms)
{
	struct metrics_queue *q = q_of(queue);

	if (q != NULL)
		observe(&q->wait, METRICS_H_JOB,
		    (double)(wait_ms > 0 ? wait_ms : 0) / 1e3);
}

void
metrics_finished(const char *queue, enum metrics_outcome outcome,
    int64_t run_ms)
{
	struct metrics_queue *q = q_of(queue);

	if (q == NULL || outcome < 0 || outcome >= METRICS_NOUTCOMES)
		return;
	add(&q->finished[outcome], 1);
	if (outcome == METRICS_DONE)
		minute_add(queue, METRICS_M_DONE, 1);
	else if (outcome == METRICS_FAILED || outcome == METRICS_DEAD)
		minute_add(queue, METRICS_M_FAILED, 1);
	if (run_ms >= 0 && outcome <= METRICS_DEAD)
		observe(&q->run[outcome], METRICS_H_JOB, (double)run_ms / 1e3);
}

/* out += s, field by field (everything after pid and gen is a count). */
static void
slot_add(struct metrics_slot *out, const struct metrics_slot *s)
{
	const uint64_t *src = (const uint64_t *)((const char *)s + 8);
	uint64_t *dst = (uint64_t *)((char *)out + 8);
	size_t k, n = (sizeof(*s) - 8) / 8;

	for (k = 0; k < n; k++)
		dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
}

int
metrics_sum(const char *database, struct metrics_slot *out,
    char nm[METRICS_MAX_QUEUES][METRICS_QUEUE_NAME], char *err,
    size_t errlen)
{
	const struct mfile *m = map;
	char path[4096];
	struct stat st;
	uint64_t hash;
	size_t i;
	int fd = -1;

	memset(out, 0, sizeof(*out));
	memset(nm, 0, METRICS_MAX_QUEUES * METRICS_QUEUE_NAME);
	if (mpath(database, path, sizeof(path), &hash, err, errlen) == -1) {
		/* PostgreSQL without a metrics_file: this process's own
		 * counts, as the file's would be. */
		if (!store_is_postgresql(database))
			return -1;
		memcpy(out, me, sizeof(*out));
		for (i = 0; i < METRICS_MAX_QUEUES; i++)
			if (__atomic_load_n(&names[i].state,
			    __ATOMIC_ACQUIRE) == NAME_READY)
				memcpy(nm[i], names[i].name,
				    METRICS_QUEUE_NAME);
		return 0;
	}
	if (m == NULL || strcmp(path, map_path) != 0) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			if (errno == ENOENT)
				return 0;
			goto fail_errno;
		}
		if (fstat(fd, &st) == -1)
			goto fail_errno;
		if (st.st_size != (off_t)sizeof(*m)) {
			snprintf(err, errlen, "%s: not a metrics file of this "
			    "version", path);
			(void)close(fd);
			return -1;
		}
		if ((m = mmap(NULL, sizeof(*m), PROT_READ, MAP_SHARED, fd,
		    0)) == MAP_FAILED)
			goto fail_errno;
		(void)close(fd);
		fd = -1;
		if (m->magic != MAGIC || m->size != sizeof(*m)) {
			snprintf(err, errlen, "%s: not a metrics file of this "
			    "version", path);
			(void)munmap((void *)(uintptr_t)m, sizeof(*m));
			return -1;
		}
		if (owner_check(m, path, hash, err, errlen) == -1) {
			(void)munmap((void *)(uintptr_t)m, sizeof(*m));
			return -1;
		}
	}
	for (i = 0; i < METRICS_MAX_QUEUES; i++)
		if (__atomic_load_n(&m->names[i].state, __ATOMIC_ACQUIRE) ==
		    NAME_READY)
			memcpy(nm[i], m->names[i].name, METRICS_QUEUE_NAME);
	for (i = 0; i < METRICS_SLOTS; i++)
		slot_add(out, &m->slots[i]);
	if (m != map)
		(void)munmap((void *)(uintptr_t)m, sizeof(*m));
	return 0;
fail_errno:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd != -1)
		(void)close(fd);
	return -1;
}

int
metrics_counts_get(struct metrics_counts *out)
{
	uint64_t s0, s1;
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		s0 = __atomic_load_n(&counts->seq, __ATOMIC_ACQUIRE);
		if (s0 & 1)
			continue;
		memcpy(out, &counts->c, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s1 = __atomic_load_n(&counts->seq, __ATOMIC_RELAXED);
		if (s0 == s1)
			return out->at_ms != 0;
	}
	memset(out, 0, sizeof(*out));
	return 0;
}

void
metrics_base_of(const struct metrics_queue *q, uint64_t b[METRICS_NBASE])
{
	size_t k;

	b[METRICS_B_ENQUEUED] = q->enqueued;
	b[METRICS_B_STARTED] = 0;
	for (k = 0; k <= METRICS_NBUCKETS; k++)
		b[METRICS_B_STARTED] += q->wait.b[k];
	for (k = 0; k < METRICS_NOUTCOMES; k++)
		b[METRICS_B_DONE + k] = q->finished[k];
}

int
metrics_counts_claim(int64_t now_ms)
{
	int64_t at, cost, until, hold, every;

	at = __atomic_load_n(&counts->c.at_ms, __ATOMIC_RELAXED);
	cost = __atomic_load_n(&counts->c.cost_ms, __ATOMIC_RELAXED);
	/* With a base the counts are moved on between counts: a count is
	 * only there for what the counters do not see. */
	if (__atomic_load_n(&counts->c.has_base, __ATOMIC_RELAXED))
		every = cost * METRICS_COUNT_DUTY > METRICS_COUNT_EVERY_MS ?
		    cost * METRICS_COUNT_DUTY : METRICS_COUNT_EVERY_MS;
	else
		every = cost * METRICS_COUNT_DUTY_BARE > 1000 ?
		    cost * METRICS_COUNT_DUTY_BARE : 1000;
	if (__atomic_load_n(&counts->stale, __ATOMIC_RELAXED) && every > 1000)
		every = 1000;		/* stale: due, once a second at most */
	if (at != 0 && now_ms - at < every)
		return 0;
	until = __atomic_load_n(&counts->claimed_until, __ATOMIC_ACQUIRE);
	if (until > now_ms)
		return 0;
	/* Long enough for a count as slow as the last, three times over. */
	hold = now_ms + (cost * 3 > 10000 ? cost * 3 : 10000);
	return __atomic_compare_exchange_n(&counts->claimed_until, &until,
	    hold, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

void
metrics_counts_put(const struct metrics_counts *c)
{
	/* One writer at a time: the claim's holder. */
	__atomic_add_fetch(&counts->seq, 1, __ATOMIC_ACQ_REL);
	memcpy(&counts->c, c, sizeof(*c));
	__atomic_add_fetch(&counts->seq, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&counts->stale, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&counts->claimed_until, 0, __ATOMIC_RELEASE);
}

void
metrics_counts_drop(void)
{
	__atomic_store_n(&counts->claimed_until, 0, __ATOMIC_RELEASE);
}

void
metrics_counts_stale(void)
{
	__atomic_store_n(&counts->stale, 1, __ATOMIC_RELAXED);
}
