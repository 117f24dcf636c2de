/*
 * stamp: a trivial handler for the processing benchmark.  Prints the
 * wall-clock time it started, in microseconds since the epoch, then reads
 * and discards its stdin.  The job's result is that stamp, so the bench
 * measures enqueue-to-handler-start as stamp - created_at.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int
main(void)
{
	struct timespec ts;
	char buf[4096];

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%lld\n", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
