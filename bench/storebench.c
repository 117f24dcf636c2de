/*
 * storebench: the store alone, no web server — how fast jobs go in (group
 * commits of a given size, as the committer makes them) and come out
 * (claim + finish, as the helper does), on a database that may already
 * hold millions of waiting jobs.  bench/run uses it for the growth rows.
 *
 *   storebench [-D full|normal] [-b BATCH] [-s BODY] [-p PREFILL]
 *              [-e ENQUEUE] [-c CLAIMS] [-k | -u] DATABASE
 *
 * -p adds PREFILL queued jobs first with one INSERT ... SELECT (rows shaped
 * like an HTTP intake: 30-character id, headers JSON, a BODY-byte body),
 * in transactions of a million, unless the database holds that many jobs
 * already.  Then -e jobs are enqueued in batches of -b (store_enqueue,
 * one transaction each; -k: each with an idempotency key of its own, as a
 * webhook queue's delivery ids; -u: the same with random UUIDs for keys, as
 * GitHub's X-GitHub-Delivery), then -c jobs are claimed and finished one by one
 * (store_claim + store_finish_done, two transactions each).  Prints one
 * line: "prefill N enqueue R jobs/s claim R jobs/s bytes/job B wal W
 * written/job X" (X: bytes this process wrote while enqueueing, WAL and
 * checkpoints, per job; /proc/self/io's wchar).
 * Nothing here is a test.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store-sqlite.h"

/* Bytes this process has written so far (/proc/self/io), or 0. */
static long long
written(void)
{
	FILE *f;
	char line[128];
	long long v = 0;

	if ((f = fopen("/proc/self/io", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static __attribute__((noreturn)) void
die(const char *what, struct store *s)
{
	fprintf(stderr, "storebench: %s: %s\n", what,
	    s != NULL ? store_error(s) : "failed");
	exit(1);
}

static long long
count_jobs(struct store *s)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(store_db(s), "SELECT max(seq) FROM jobs", -1,
	    &st, NULL) != SQLITE_OK)
		die("count", s);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Queued jobs shaped like what nginx hands fcgiq for a small POST. */
static void
prefill(struct store *s, long long want, int body)
{
	static const char sql[] =
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	    "  WHERE i < ?1)"
	    " INSERT INTO jobs (id, queue, state, priority, attempts,"
	    "  max_attempts, created_at, run_at, method, request_uri,"
	    "  content_type, remote_addr, headers, body)"
	    " SELECT printf('%08X', (?2 + i) % 4294967296)"
	    "  || substr(hex(randomblob(11)), 1, 22), 'default', 'queued',"
	    "  0, 0, 8, ?2 + i, ?2 + i, 'POST', '/hooks/bench',"
	    "  'application/octet-stream', '127.0.0.1',"
	    "  '{\"HTTP_HOST\":\"127.0.0.1\"}',"
	    "  zeroblob(?3) FROM n";
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	long long have = count_jobs(s), step;
	int64_t t0 = store_now() - 86400000;

	while (have < want) {
		step = want - have > 1000000 ? 1000000 : want - have;
		if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			die("prefill", s);
		sqlite3_bind_int64(st, 1, step);
		sqlite3_bind_int64(st, 2, t0);
		sqlite3_bind_int(st, 3, body);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "storebench: prefill: %s\n",
			    sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_finalize(st);
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			die("prefill commit", s);
		have += step;
	}
	/* Measure the store, not the prefill's leftovers: its WAL (up to
	 * ~1 GB per step) would be checkpointed inside the first measured
	 * commit and make every page lookup search a huge WAL index. */
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL) != SQLITE_OK)
		die("prefill checkpoint", s);
}

int
main(int argc, char **argv)
{
	struct store_opts o = { 0 };
	struct store_newjob *jobs;
	struct store_job *j;
	struct store *s;
	struct stat st;
	char err[512], wal[4200];
	long long pre = 0, nenq = 20000, nclaim = 2000, i, k;
	int batch = 32, body = 512, ch, rc, keyed = 0;
	char (*keys)[64] = NULL;
	double t, enq_rate = 0, claim_rate = 0;
	long long w0, wenq = 0;
	unsigned char r[16];
	void *buf;

	while ((ch = getopt(argc, argv, "D:b:s:p:e:c:ku")) != -1) {
		switch (ch) {
		case 'D':
			o.durability = strcmp(optarg, "normal") == 0 ?
			    STORE_DURABILITY_NORMAL : STORE_DURABILITY_FULL;
			break;
		case 'b': batch = atoi(optarg); break;
		case 's': body = atoi(optarg); break;
		case 'p': pre = atoll(optarg); break;
		case 'e': nenq = atoll(optarg); break;
		case 'c': nclaim = atoll(optarg); break;
		case 'k': keyed = 1; break;
		case 'u': keyed = 2; break;
		default:
			fprintf(stderr, "usage: storebench [-D full|normal] "
			    "[-b batch] [-s body] [-p prefill] [-e enqueue] "
			    "[-c claims] [-k | -u] database\n");
			return 2;
		}
	}
	if (optind + 1 != argc || batch < 1 || body < 0)
		return 2;
	if ((s = store_open(argv[optind], &o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "storebench: %s\n", err);
		return 1;
	}
	if (pre > 0)
		prefill(s, pre, body);
	pre = count_jobs(s);

	if ((jobs = calloc((size_t)batch, sizeof(*jobs))) == NULL ||
	    (keys = calloc((size_t)batch, sizeof(*keys))) == NULL ||
	    (buf = calloc(1, (size_t)body + 1)) == NULL)
		die("out of memory", NULL);
	memset(buf, 'x', (size_t)body);
	w0 = written();
	t = now_s();
	for (i = 0; i < nenq; i += batch) {
		for (k = 0; k < batch; k++) {
			memset(&jobs[k], 0, sizeof(jobs[k]));
			jobs[k].queue = "default";
			jobs[k].max_attempts = 8;
			jobs[k].method = "POST";
			jobs[k].request_uri = "/hooks/bench";
			jobs[k].content_type = "application/octet-stream";
			jobs[k].remote_addr = "127.0.0.1";
			jobs[k].headers = "{\"HTTP_HOST\":\"127.0.0.1\"}";
			jobs[k].body = buf;
			jobs[k].body_len = (size_t)body;
			if (keyed == 2) {
				arc4random_buf(r, sizeof(r));
				snprintf(keys[k], sizeof(keys[k]), "%02x%02x"
				    "%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
				    "%02x%02x%02x%02x%02x%02x", r[0], r[1],
				    r[2], r[3], r[4], r[5], r[6], r[7], r[8],
				    r[9], r[10], r[11], r[12], r[13], r[14],
				    r[15]);
				jobs[k].idempotency_key = keys[k];
			} else if (keyed) {
				snprintf(keys[k], sizeof(keys[k]), "%lld-%lld-%ld",
				    i, k, (long)getpid());
				jobs[k].idempotency_key = keys[k];
			}
		}
		if (store_enqueue(s, jobs, (size_t)batch) == -1)
			die("enqueue", s);
	}
	if (nenq > 0) {
		enq_rate = (double)i / (now_s() - t);
		wenq = (written() - w0) / i;
	}

	t = now_s();
	for (i = 0; i < nclaim; i++) {
		rc = store_claim(s, "default", store_now(), 60000, &j);
		if (rc == -1)
			die("claim", s);
		if (rc == 0)
			break;
		if (store_finish_done(s, j->id, j->attempts, "ok", 2,
		    store_now()) == -1)
			die("finish", s);
		store_job_free(j);
	}
	if (i > 0)
		claim_rate = (double)i / (now_s() - t);

	snprintf(wal, sizeof(wal), "%s-wal", argv[optind]);
	if (stat(argv[optind], &st) == -1)
		st.st_size = 0;
	printf("prefill %lld enqueue %.0f jobs/s claim %.0f jobs/s "
	    "bytes/job %.0f", pre, enq_rate, claim_rate,
	    count_jobs(s) > 0 ? (double)st.st_size / (double)count_jobs(s) : 0);
	if (stat(wal, &st) == -1)
		st.st_size = 0;
	printf(" wal %lld written/job %lld\n", (long long)st.st_size, wenq);
	free(buf);
	free(keys);
	free(jobs);
	store_close(s);
	return 0;
}
