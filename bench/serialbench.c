/*
 * serialbench: what serialize_by costs the claim, the store alone.
 *
 *   serialbench [-D full|normal] [-n JOBS] [-b BATCH] -m none|distinct|one
 *               DATABASE
 *
 * Enqueues JOBS jobs into queue "default" in batches of 32: without a
 * serial key (none), each with a key of its own (distinct: a queue with
 * serialize_by whose keys rarely repeat), or all with one key (one).
 * none and distinct then claim and finish every job (store_claim +
 * store_finish_done), BATCH of each per transaction (store_batch_begin,
 * as the helper's pass does: the outcomes due, then the claims; default
 * 1, a transaction each) and print "claim R jobs/s".
 * one claims the first job (it runs, and holds the JOBS - 1 others back),
 * then times 1000 claims that find nothing and one that finds the job of
 * another key enqueued behind them all, and prints "held N claim-empty U
 * us claim-other U us".  bench/serial.sh alternates the modes.  Nothing
 * here is a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define BATCH	32

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
	fprintf(stderr, "serialbench: %s: %s\n", what,
	    s != NULL ? store_error(s) : "failed");
	exit(1);
}

/* Enqueue n jobs, keyed as mode says. */
static void
fill(struct store *s, long n, const char *mode)
{
	struct store_newjob jobs[BATCH];
	char keys[BATCH][32];
	long i, k, m;

	for (i = 0; i < n; i += m) {
		m = n - i < BATCH ? n - i : BATCH;
		for (k = 0; k < m; k++) {
			memset(&jobs[k], 0, sizeof(jobs[k]));
			jobs[k].queue = "default";
			jobs[k].max_attempts = 8;
			jobs[k].method = "POST";
			jobs[k].request_uri = "/hooks/bench";
			jobs[k].headers = "{\"HTTP_HOST\":\"127.0.0.1\"}";
			jobs[k].body = "{\"repository\":\"a/b\"}";
			jobs[k].body_len = 21;
			snprintf(keys[k], sizeof(keys[k]), "repo-%ld", i + k);
			if (strcmp(mode, "distinct") == 0)
				jobs[k].serial_key = keys[k];
			else if (strcmp(mode, "one") == 0)
				jobs[k].serial_key = "repo";
		}
		if (store_enqueue(s, jobs, (size_t)m) == -1)
			die("enqueue", s);
	}
}

int
main(int argc, char **argv)
{
	struct store_opts o = { 0 };
	struct store_newjob other;
	struct store_job *j, **held;
	struct store *s;
	const char *mode = NULL;
	char err[512];
	long n = 20000, i, k, nheld = 0, batch = 1;
	double t, empty_us, other_us;
	int ch, rc;

	while ((ch = getopt(argc, argv, "D:n:b:m:")) != -1) {
		switch (ch) {
		case 'D':
			o.durability = strcmp(optarg, "normal") == 0 ?
			    STORE_DURABILITY_NORMAL : STORE_DURABILITY_FULL;
			break;
		case 'n': n = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'm': mode = optarg; break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || mode == NULL || n < 2 || batch < 1 ||
	    (strcmp(mode, "none") != 0 && strcmp(mode, "distinct") != 0 &&
	    strcmp(mode, "one") != 0))
		goto usage;
	if ((s = store_open(argv[optind], &o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "serialbench: %s\n", err);
		return 1;
	}
	fill(s, n, mode);

	if (strcmp(mode, "one") != 0) {
		if ((held = calloc((size_t)batch, sizeof(*held))) == NULL)
			die("out of memory", NULL);
		t = now_s();
		for (i = 0; i < n || nheld > 0; ) {
			if (batch > 1 && store_batch_begin(s) == -1)
				die("batch", s);
			for (k = 0; k < nheld; k++) {
				if (store_finish_done(s, held[k]->id,
				    held[k]->attempts, "ok", 2, store_now()) ==
				    -1)
					die("finish", s);
				store_job_free(held[k]);
			}
			for (nheld = 0; nheld < batch && i < n; nheld++, i++) {
				if ((rc = store_claim(s, "default",
				    store_now(), 60000, &held[nheld])) == -1)
					die("claim", s);
				if (rc == 0)
					die("claim: nothing", NULL);
			}
			if (batch > 1 && store_batch_end(s) == -1)
				die("batch", s);
		}
		free(held);
		printf("%s claim %.0f jobs/s\n", mode, (double)n /
		    (now_s() - t));
		store_close(s);
		return 0;
	}

	if (store_claim(s, "default", store_now(), 600000, &j) != 1)
		die("claim the first", s);
	store_job_free(j);
	t = now_s();
	for (i = 0; i < 1000; i++)
		if ((rc = store_claim(s, "default", store_now(), 60000,
		    &j)) != 0)
			die("claim held back", rc == -1 ? s : NULL);
	empty_us = (now_s() - t) * 1e6 / 1000;
	memset(&other, 0, sizeof(other));
	other.queue = "default";
	other.max_attempts = 8;
	other.body = "{}";
	other.body_len = 2;
	other.serial_key = "another-repo";
	if (store_enqueue(s, &other, 1) == -1)
		die("enqueue", s);
	t = now_s();
	if (store_claim(s, "default", store_now(), 60000, &j) != 1 ||
	    strcmp(j->id, other.id) != 0)
		die("claim the other key", s);
	other_us = (now_s() - t) * 1e6;
	store_job_free(j);
	printf("one held %ld claim-empty %.1f us claim-other %.1f us\n",
	    n - 1, empty_us, other_us);
	store_close(s);
	return 0;
usage:
	fprintf(stderr, "usage: serialbench [-D full|normal] [-n jobs] "
	    "-m none|distinct|one database\n");
	return 2;
}
