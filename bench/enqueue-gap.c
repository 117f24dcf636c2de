/*
 * enqueue-gap: the driver of bench/exec.sh's enqueue-to-start measure.
 * One process that stays up, as a responder does: N times, enqueue one job
 * (its own durable commit, durability full) into QUEUE, wake the helper,
 * then stay idle GAP_MS.  A shell loop around `fcgiqctl enqueue` would
 * start two processes per job (the CLI and sleep) right while the helper
 * starts the handler, and on a two-core VM where starting a process costs
 * milliseconds that contention, not fcgiq, would be what is measured.
 *
 * -o FILE: a line per job, "ID CALL_US ACK_US": the wall clock in µs just
 * before the enqueue (the job's created_at is stamped inside it, but in
 * whole ms) and once the commit and the wake-up are done (where a
 * responder's 202 would leave).  A start measured from created_at carries
 * its truncation, half a millisecond on average; these do not.
 *
 *   enqueue-gap [-g GAP_MS] [-o FILE] N QUEUE DATABASE
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "wake.h"

/* The wall clock in µs since the epoch. */
static int64_t
now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
main(int argc, char **argv)
{
	struct store_opts o = { .durability = STORE_DURABILITY_FULL };
	struct store_newjob nj = { 0 };
	struct timespec gap;
	struct store *s;
	FILE *out = NULL;
	int64_t call, ack;
	char err[512], body[32];
	long n, i, gap_ms = 30;
	int ch;

	while ((ch = getopt(argc, argv, "g:o:")) != -1) {
		if (ch == 'g')
			gap_ms = atol(optarg);
		else if (ch == 'o') {
			if ((out = fopen(optarg, "w")) == NULL) {
				perror(optarg);
				return 1;
			}
		} else
			goto usage;
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
		call = now_us();
		if (store_enqueue(s, &nj, 1) == -1) {
			fprintf(stderr, "enqueue-gap: %s\n", store_error(s));
			return 1;
		}
		wake_notify(argv[optind + 2]);
		ack = now_us();
		if (out != NULL)
			fprintf(out, "%s %" PRId64 " %" PRId64 "\n", nj.id, call,
			    ack);
	}
	store_close(s);
	if (out != NULL && fclose(out) == EOF) {
		perror("enqueue-gap");
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: enqueue-gap [-g GAP_MS] [-o FILE] N QUEUE "
	    "DATABASE\n");
	return 2;
}
