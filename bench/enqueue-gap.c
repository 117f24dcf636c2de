/*
 * enqueue-gap: the driver of bench/exec.sh's enqueue-to-start measure.
 * One process that stays up, as a responder does: N times, enqueue one job
 * (its own durable commit, durability full) into QUEUE, wake the helper,
 * then stay idle GAP_MS.  A shell loop around `fcgiqctl enqueue` would
 * start two processes per job (the CLI and sleep) right while the helper
 * starts the handler, and on a two-core VM where starting a process costs
 * milliseconds that contention, not fcgiq, would be what is measured.
 *
 *   enqueue-gap [-g GAP_MS] N QUEUE DATABASE
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "wake.h"

int
main(int argc, char **argv)
{
	struct store_opts o = { .durability = STORE_DURABILITY_FULL };
	struct store_newjob nj = { 0 };
	struct timespec gap;
	struct store *s;
	char err[512], body[32];
	long n, i, gap_ms = 30;
	int ch;

	while ((ch = getopt(argc, argv, "g:")) != -1) {
		if (ch != 'g')
			goto usage;
		gap_ms = atol(optarg);
	}
	if (argc - optind != 3 || (n = atol(argv[optind])) <= 0 || gap_ms < 0)
		goto usage;
	if ((s = store_open(argv[optind + 2], &o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "enqueue-gap: %s\n", err);
		return 1;
	}
	gap.tv_sec = gap_ms / 1000;
	gap.tv_nsec = gap_ms % 1000 * 1000000L;
	for (i = 1; i <= n; i++) {
		nanosleep(&gap, NULL);
		nj.queue = argv[optind + 1];
		nj.max_attempts = 1;
		nj.method = "POST";
		nj.body_len = (size_t)snprintf(body, sizeof(body), "lat %ld\n",
		    i);
		nj.body = body;
		if (store_enqueue(s, &nj, 1) == -1) {
			fprintf(stderr, "enqueue-gap: %s\n", store_error(s));
			return 1;
		}
		wake_notify(argv[optind + 2]);
	}
	store_close(s);
	return 0;
usage:
	fprintf(stderr, "usage: enqueue-gap [-g GAP_MS] N QUEUE DATABASE\n");
	return 2;
}
