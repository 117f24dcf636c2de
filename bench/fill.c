/*
 * fill: queue N small jobs through the store, in transactions of BATCH
 * (store_enqueue, as the committer groups them), on either engine: a
 * SQLite path or a PostgreSQL URI.  bench/pg-drain.sh fills a paused
 * queue with it; bench/pg-bloat.sh feeds a queue with it while helpers
 * drain it.  Jobs are shaped like an HTTP intake of a BODY-byte POST.
 *
 *   fill [-b BATCH] [-s BODY] N QUEUE DATABASE
 *
 * Nothing here is a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

int
main(int argc, char **argv)
{
	struct store_opts o = { .durability = STORE_DURABILITY_FULL };
	struct store_newjob *jobs;
	struct store *s;
	char err[512], *buf;
	long n, i, k, batch = 100, body = 64;
	int ch;

	while ((ch = getopt(argc, argv, "b:s:")) != -1) {
		if (ch == 'b')
			batch = atol(optarg);
		else if (ch == 's')
			body = atol(optarg);
		else
			goto usage;
	}
	if (argc - optind != 3 || (n = atol(argv[optind])) <= 0 ||
	    batch < 1 || body < 0)
		goto usage;
	if ((jobs = calloc((size_t)batch, sizeof(*jobs))) == NULL ||
	    (buf = calloc(1, (size_t)body + 1)) == NULL) {
		perror("fill");
		return 1;
	}
	memset(buf, 'x', (size_t)body);
	if ((s = store_open(argv[optind + 2], &o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fill: %s\n", err);
		return 1;
	}
	for (i = 0; i < n; i += k) {
		for (k = 0; k < batch && i + k < n; k++) {
			memset(&jobs[k], 0, sizeof(jobs[k]));
			jobs[k].queue = argv[optind + 1];
			jobs[k].max_attempts = 1;
			jobs[k].method = "POST";
			jobs[k].request_uri = "/hooks/bench";
			jobs[k].content_type = "application/octet-stream";
			jobs[k].remote_addr = "127.0.0.1";
			jobs[k].headers = "{\"HTTP_HOST\":\"127.0.0.1\"}";
			jobs[k].body = buf;
			jobs[k].body_len = (size_t)body;
		}
		if (store_enqueue(s, jobs, (size_t)k) == -1) {
			fprintf(stderr, "fill: %s\n", store_error(s));
			return 1;
		}
	}
	store_close(s);
	free(buf);
	free(jobs);
	return 0;
usage:
	fprintf(stderr, "usage: fill [-b BATCH] [-s BODY] N QUEUE DATABASE\n");
	return 2;
}
