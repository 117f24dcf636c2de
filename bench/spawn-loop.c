/*
 * spawn-loop: the reference for the helper's throughput — run a program N
 * times, one after another (or C at a time), with posix_spawn (glibc's:
 * a clone that shares memory, the fastest way this libc starts a program)
 * + waitpid and stdin/stdout pipes, as the helper does, but with no
 * database, no lease and no bookkeeping.  Prints runs/s.
 *
 * With -g GAP_MS it is the reference for enqueue-to-start instead: N runs
 * one at a time, idle GAP_MS before each (as the latency bench leaves the
 * helper idle between jobs), each program printing its start time in
 * microseconds since the epoch (bench/stamp does); prints the p50 and p90
 * of start time minus the moment before the spawn, in ms.
 *
 *   spawn-loop [-c CONCURRENCY] [-g GAP_MS] N PROGRAM [ARGS...]
 */
#include <sys/wait.h>

#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The program's output, kept when out is not NULL. */
static pid_t
start(char **argv, char *out_buf, size_t out_len)
{
	int in[2], out[2];
	pid_t pid;
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	posix_spawn_file_actions_t fa;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		return -1;
	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out[1], 1) != 0 ||
	    posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		return -1;
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	/* The helper writes a body and reads the output: so do we. */
	(void)write(in[1], "x", 1);
	close(in[1]);
	while ((n = read(out[0], buf, sizeof(buf))) > 0) {
		if (out_buf != NULL && got + 1 < out_len) {
			size_t k = (size_t)n < out_len - 1 - got ?
			    (size_t)n : out_len - 1 - got;

			memcpy(out_buf + got, buf, k);
			got += k;
			out_buf[got] = '\0';
		}
	}
	close(out[0]);
	return pid;
}

int
main(int argc, char **argv)
{
	int ch, conc = 1, gap_ms = -1, n, i, running = 0, started = 0, status;
	double t0, t, *lat;
	char out[64];

	while ((ch = getopt(argc, argv, "c:g:")) != -1) {
		if ((ch == 'c' && (conc = atoi(optarg)) >= 1) ||
		    (ch == 'g' && (gap_ms = atoi(optarg)) >= 0))
			continue;
		fprintf(stderr, "usage: spawn-loop [-c C] [-g GAP_MS] N PROGRAM "
		    "[ARGS]\n");
		return 2;
	}
	if (argc - optind < 2 || (n = atoi(argv[optind])) < 1) {
		fprintf(stderr, "usage: spawn-loop [-c C] [-g GAP_MS] N PROGRAM "
		    "[ARGS]\n");
		return 2;
	}
	if (gap_ms >= 0) {
		if ((lat = calloc((size_t)n, sizeof(*lat))) == NULL)
			return 1;
		for (i = 0; i < n; i++) {
			struct timespec gap = { gap_ms / 1000,
			    (gap_ms % 1000) * 1000000L };
			int64_t before;

			nanosleep(&gap, NULL);
			before = wall_us();
			out[0] = '\0';
			if (start(argv + optind + 1, out, sizeof(out)) == -1 ||
			    wait(&status) == -1)
				return 1;
			lat[i] = (strtoll(out, NULL, 10) - before) / 1000.0;
		}
		qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
		printf("start latency over %d runs: p50 %.2f ms p90 %.2f ms\n",
		    n, lat[n / 2], lat[n * 9 / 10]);
		free(lat);
		return 0;
	}
	t0 = now_s();
	while (started < n || running > 0) {
		while (running < conc && started < n) {
			if (start(argv + optind + 1, NULL, 0) == -1)
				return 1;
			running++;
			started++;
		}
		if (wait(&status) > 0)
			running--;
	}
	t = now_s() - t0;
	printf("%d runs in %.3f s: %.1f runs/s\n", n, t, n / t);
	return 0;
}
