/*
 * powerloss: cut the power under the store, hundreds of times, and check
 * that every acknowledged job survived in a database that passes
 * PRAGMA integrity_check.
 *
 * Each trial forks a child that opens a fresh database through the
 * powerloss VFS (powerloss-vfs.c) with the durability under test and
 * enqueues batches of 1-64 jobs with random bodies, as the responder's
 * committer does.  Only after store_enqueue() returned 0 does it write each
 * job's id and body hash to a pipe: the responder's rule for a 202.  The
 * VFS cuts the power at a random tracked write, truncate or sync (dropping
 * or tearing what was not synced) and kills the child.  The parent then
 * deletes the -shm (memory, wiped by a reboot), reopens the database,
 * checks its integrity and looks up every acknowledged job.
 *
 * With durability = full no acknowledged job may be lost.  The same run
 * with durability = normal must lose some: the proof that this test can
 * fail.  Output is TAP.
 *
 *   POWERLOSS_TRIALS=N         trials with durability = full (300)
 *   POWERLOSS_NORMAL_TRIALS=N  trials with durability = normal (60)
 *   POWERLOSS_MAXOPS=N         the cut falls in 1..N tracked operations (1500)
 *   POWERLOSS_SEED=S           reproduce a run (printed at the start)
 *   POWERLOSS_KEEP=1           keep the trial directories
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "powerloss-vfs.h"
#include "store-sqlite.h"

#define BATCH_MAX	64
#define BODY_MAX	3000
#define CHILD_TIMEOUT_S	30

struct ack {
	char		id[STORE_ID_LEN + 1];
	uint64_t	hash;
};

struct tally {
	int		trials;
	int		drop, tear;
	int64_t		acked;
	int64_t		lost;		/* acknowledged, not in the database */
	int64_t		wrong;		/* acknowledged, body differs */
	int		corrupt;	/* trials failing integrity_check or reopen */
	int		lossy;		/* trials that lost something */
	int		cut_unsynced;	/* cuts that had unsynced data to lose */
	int		bad_child;	/* children that did not die of the cut */
	int64_t		rows;
};

static uint64_t	rng;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t
fnv1a(const void *p, size_t n)
{
	const unsigned char	*c = p;
	uint64_t		 h = 1469598103934665603ULL;
	size_t			 i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void
env_num(const char *name, uint64_t *v)
{
	const char	*s = getenv(name);

	if (s != NULL && *s != '\0')
		*v = strtoull(s, NULL, 10);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	r;

	while (n > 0) {
		if ((r = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The child: enqueue until the power goes.  Never returns. */
static void __attribute__((noreturn))
child(const char *path, int durability, uint64_t after, uint64_t seed,
    enum plvfs_mode mode, int ackfd)
{
	static unsigned char	 bodies[BATCH_MAX][BODY_MAX];
	static const int	 ckpt[] = { 1000, 100, 10 };
	struct store_newjob	 jobs[BATCH_MAX];
	struct store_opts	 opts = { 0 };
	struct store_job	*j;
	struct store		*s;
	char			 err[512], line[128], keys[BATCH_MAX][32];
	char			 pragma[64];
	size_t			 n, i, len, k;
	int			 r;

	rng = seed ^ 0x9e3779b97f4a7c15ULL;
	if (plvfs_register() == -1)
		_exit(2);
	plvfs_arm(after, seed, mode);
	opts.durability = durability;
	if ((s = store_open(path, &opts, err, sizeof(err))) == NULL) {
		fprintf(stderr, "child: store_open: %s\n", err);
		_exit(3);
	}
	(void)snprintf(pragma, sizeof(pragma), "PRAGMA wal_autocheckpoint = %d",
	    ckpt[rnd() % 3]);
	if (sqlite3_exec(store_db(s), pragma, NULL, NULL, NULL) != SQLITE_OK)
		_exit(3);
	for (;;) {
		n = 1 + rnd() % BATCH_MAX;
		memset(jobs, 0, sizeof(jobs));
		for (i = 0; i < n; i++) {
			len = rnd() % 8 == 0 ? 0 : rnd() % BODY_MAX;
			for (k = 0; k < len; k++)
				bodies[i][k] = (unsigned char)rnd();
			jobs[i].queue = "default";
			jobs[i].max_attempts = 3;
			jobs[i].method = "POST";
			jobs[i].request_uri = "/hooks/powerloss";
			jobs[i].body = bodies[i];
			jobs[i].body_len = len;
			if (rnd() % 4 == 0) {
				(void)snprintf(keys[i], sizeof(keys[i]),
				    "k%016" PRIx64, rnd());
				jobs[i].idempotency_key = keys[i];
			}
		}
		if (store_enqueue(s, jobs, n) == -1) {
			fprintf(stderr, "child: enqueue: %s\n", store_error(s));
			_exit(4);
		}
		/* Committed: now, and only now, the 202s may go out. */
		for (i = 0; i < n; i++) {
			if (jobs[i].outcome != STORE_ENQ_NEW)
				continue;
			r = snprintf(line, sizeof(line), "%s %016" PRIx64 "\n",
			    jobs[i].id, fnv1a(jobs[i].body, jobs[i].body_len));
			if (write_all(ackfd, line, (size_t)r) == -1)
				_exit(5);
		}
		/* Now and then a helper's claim and finish: updates, too. */
		if (rnd() % 4 == 0 &&
		    store_claim(s, "default", store_now(), 60000, &j) == 1) {
			if (store_finish_done(s, j->id, j->attempts, "ok", 2,
			    store_now()) == -1)
				_exit(4);
			store_job_free(j);
		}
	}
}

/* Read every acknowledgement until the child is gone. */
static struct ack *
read_acks(int fd, size_t *nacks)
{
	struct ack	*a = NULL, *q;
	size_t		 n = 0, cap = 0, have = 0;
	char		 buf[65536], *nl, *start;
	ssize_t		 r;

	for (;;) {
		r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		start = buf;
		while ((nl = strchr(start, '\n')) != NULL) {
			*nl = '\0';
			if (n == cap) {
				cap = cap * 2 + 256;
				if ((q = realloc(a, cap * sizeof(*a))) == NULL)
					abort();
				a = q;
			}
			if (sscanf(start, "%30s %" SCNx64, a[n].id,
			    &a[n].hash) == 2)
				n++;
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
	}
	*nacks = n;
	return a;
}

/* Reopen after the "reboot"; count what is missing.  0, or -1 when the
 * database is damaged. */
static int
verify(const char *path, const struct ack *a, size_t n, struct tally *t,
    int *lost_here)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	struct store	*s;
	const char	*res;
	char		 err[512];
	size_t		 i;
	int		 rc, bad = 0;

	*lost_here = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "unix") !=
	    SQLITE_OK) {
		/* The power went before the file was even created. */
		sqlite3_close(db);
		t->lost += (int64_t)n;
		*lost_here = (int)n;
		return 0;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		printf("# %s: integrity_check: %s\n", path,
		    sqlite3_errmsg(db));
		bad = 1;
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		if (res == NULL || strcmp(res, "ok") != 0) {
			printf("# %s: integrity_check: %s\n", path,
			    res != NULL ? res : "NULL");
			bad = 1;
		}
	}
	if (rc != SQLITE_DONE)
		bad = 1;
	sqlite3_finalize(st);
	st = NULL;
	if (n == 0)
		goto reopen;
	if (sqlite3_prepare_v2(db, "SELECT body FROM jobs WHERE id = ?1", -1,
	    &st, NULL) != SQLITE_OK) {
		/* No table: the schema's own commit did not survive. */
		if (strncmp(sqlite3_errmsg(db), "no such table", 13) != 0) {
			printf("# %s: lookup: %s\n", path, sqlite3_errmsg(db));
			bad = 1;
		}
		t->lost += (int64_t)n;
		*lost_here = (int)n;
		goto reopen;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, a[i].id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			t->lost++;
			(*lost_here)++;
		} else if (fnv1a(sqlite3_column_blob(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0)) != a[i].hash) {
			t->wrong++;
			bad = 1;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM jobs", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		t->rows += sqlite3_column_int64(st, 0);
reopen:
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_close(db);
	db = NULL;
	/* What the restarted responder does: the store must open. */
	if ((s = store_open(path, NULL, err, sizeof(err))) == NULL) {
		printf("# %s: store_open after the cut: %s\n", path,
		    err);
		bad = 1;
	}
	store_close(s);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return bad ? -1 : 0;
}

static int
rm_rf(const char *dir)
{
	char	cmd[4200];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* One trial.  -1 only when the harness itself failed. */
static int
trial(const char *base, int no, int durability, enum plvfs_mode mode,
    uint64_t maxops, struct tally *t)
{
	char		 dir[4096], path[4200], shm[4300], logp[4200], line[256];
	struct ack	*acks;
	size_t		 nacks;
	uint64_t	 after, seed;
	pid_t		 pid;
	int		 fds[2], st, lost_here, logfd;
	FILE		*f;
	unsigned long	 unsynced;
	long long	 appended;

	(void)snprintf(dir, sizeof(dir), "%s/%s-%03d", base,
	    durability == STORE_DURABILITY_FULL ? "full" : "normal", no);
	if (mkdir(dir, 0700) == -1)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/q.db", dir);
	(void)snprintf(logp, sizeof(logp), "%s/child.log", dir);
	after = 1 + rnd() % maxops;
	seed = rnd();
	if (pipe(fds) == -1)
		return -1;
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		(void)close(fds[0]);
		logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (logfd != -1)
			(void)dup2(logfd, 2);
		alarm(CHILD_TIMEOUT_S);
		child(path, durability, after, seed, mode, fds[1]);
	}
	(void)close(fds[1]);
	acks = read_acks(fds[0], &nacks);
	(void)close(fds[0]);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	t->trials++;
	if (mode == PLVFS_TEAR)
		t->tear++;
	else
		t->drop++;
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		t->bad_child++;
		printf("# trial %s: the child did not die of the cut "
		    "(status %#x), see %s\n", dir, st, logp);
	}
	if ((f = fopen(logp, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "powerloss: power cut at operation "
			    "%*u (%*[a-z]), %lu unsynced sectors, %lld bytes",
			    &unsynced, &appended) == 2 &&
			    (unsynced > 0 || appended > 0))
				t->cut_unsynced++;
		fclose(f);
	}
	/* A reboot wipes shared memory. */
	(void)snprintf(shm, sizeof(shm), "%s-shm", path);
	(void)unlink(shm);
	t->acked += (int64_t)nacks;
	if (verify(path, acks, nacks, t, &lost_here) == -1) {
		t->corrupt++;
		printf("# trial %s: damaged (cut at op %" PRIu64
		    ", seed %" PRIu64 ")\n", dir, after, seed);
		free(acks);
		return 0;	/* kept for reading */
	}
	if (lost_here > 0) {
		t->lossy++;
		if (durability == STORE_DURABILITY_FULL) {
			printf("# trial %s: %d of %zu acknowledged "
			    "jobs lost (cut at op %" PRIu64 ", seed %" PRIu64
			    ")\n", dir, lost_here, nacks, after, seed);
			free(acks);
			return 0;
		}
	}
	free(acks);
	if (getenv("POWERLOSS_KEEP") == NULL && rm_rf(dir) == -1)
		return -1;
	return 0;
}

static int
run(const char *base, int durability, uint64_t trials, uint64_t maxops,
    int tear_too, struct tally *t)
{
	uint64_t	i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < trials; i++)
		if (trial(base, (int)i, durability,
		    tear_too && i % 2 == 1 ? PLVFS_TEAR : PLVFS_DROP, maxops,
		    t) == -1) {
			printf("Bail out! trial %" PRIu64 ": %s\n", i,
			    strerror(errno));
			return -1;
		}
	return 0;
}

int
main(void)
{
	struct tally	 full, normal;
	uint64_t	 trials = 300, ntrials = 60, maxops = 1500, seed;
	const char	*tmp;
	char		 tbase[4096];
	int		 failed = 0;
	time_t		 t0;

	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	env_num("POWERLOSS_TRIALS", &trials);
	env_num("POWERLOSS_NORMAL_TRIALS", &ntrials);
	env_num("POWERLOSS_MAXOPS", &maxops);
	env_num("POWERLOSS_SEED", &seed);
	if (maxops == 0)
		maxops = 1;
	rng = seed != 0 ? seed : 1;
	tmp = getenv("TMPDIR");
	(void)snprintf(tbase, sizeof(tbase), "%s/fcgiq-powerloss.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(tbase) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", tbase, strerror(errno));
		return 1;
	}
	printf("1..3\n");
	printf("# seed %" PRIu64 " (POWERLOSS_SEED=%" PRIu64 " reproduces), "
	    "%" PRIu64 " + %" PRIu64 " trials, cut within %" PRIu64
	    " operations, in %s\n", seed, seed, trials, ntrials, maxops, tbase);
	fflush(stdout);

	t0 = time(NULL);
	if (run(tbase, STORE_DURABILITY_FULL, trials, maxops, 1, &full) == -1)
		return 1;
	printf("# full: %d trials (%d drop, %d tear) in %lds, %d cuts with "
	    "unsynced data, %" PRId64 " acknowledged, %" PRId64 " rows after, "
	    "%" PRId64 " lost, %" PRId64 " wrong body, %d damaged\n",
	    full.trials, full.drop, full.tear, (long)(time(NULL) - t0),
	    full.cut_unsynced, full.acked, full.rows, full.lost, full.wrong,
	    full.corrupt);
	if (full.lost == 0 && full.wrong == 0 && full.corrupt == 0 &&
	    full.acked > 0)
		printf("ok 1 - full: %d trials, %" PRId64 " acknowledged, "
		    "0 lost, integrity ok\n", full.trials, full.acked);
	else {
		printf("not ok 1 - full: %d trials, %" PRId64 " acknowledged, "
		    "%" PRId64 " lost in %d trials, %" PRId64 " wrong, %d "
		    "damaged\n", full.trials, full.acked, full.lost,
		    full.lossy, full.wrong, full.corrupt);
		failed = 1;
	}

	t0 = time(NULL);
	if (run(tbase, STORE_DURABILITY_NORMAL, ntrials, maxops, 0,
	    &normal) == -1)
		return 1;
	printf("# normal: %d trials in %lds, %d cuts with unsynced data, "
	    "%" PRId64 " acknowledged, %" PRId64 " lost in %d trials, %d "
	    "damaged\n", normal.trials, (long)(time(NULL) - t0),
	    normal.cut_unsynced, normal.acked, normal.lost, normal.lossy,
	    normal.corrupt);
	if (normal.lost > 0)
		printf("ok 2 - normal: losses observed (%" PRId64 " lost in %d "
		    "of %d trials)\n", normal.lost, normal.lossy,
		    normal.trials);
	else {
		printf("not ok 2 - normal: no loss observed in %d trials: the "
		    "simulation cannot fail\n", normal.trials);
		failed = 1;
	}

	if (full.bad_child + normal.bad_child == 0 && full.cut_unsynced > 0)
		printf("ok 3 - every child died of the power cut, %d of %d "
		    "cuts with unsynced writes\n", full.cut_unsynced +
		    normal.cut_unsynced, full.trials + normal.trials);
	else {
		printf("not ok 3 - %d children did not die of the cut, %d "
		    "cuts found unsynced data\n", full.bad_child +
		    normal.bad_child, full.cut_unsynced);
		failed = 1;
	}
	if (!failed && getenv("POWERLOSS_KEEP") == NULL)
		(void)rm_rf(tbase);
	else
		printf("# trial directories kept in %s\n", tbase);
	return failed;
}
