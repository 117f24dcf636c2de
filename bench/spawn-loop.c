/*
 * spawn-loop: the reference for the helper's throughput — run a program N
 * times, one after another (or C at a time), with fork + execve + waitpid
 * and stdin/stdout pipes, as the helper does, but with no database, no
 * lease and no bookkeeping.  Prints runs/s.
 *
 *   spawn-loop [-c CONCURRENCY] N PROGRAM [ARGS...]
 */
#include <sys/wait.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t
start(char **argv)
{
	int in[2], out[2];
	pid_t pid;
	char buf[4096];

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* The helper writes a body and reads the output: so do we. */
	(void)write(in[1], "x", 1);
	close(in[1]);
	while (read(out[0], buf, sizeof(buf)) > 0)
		;
	close(out[0]);
	return pid;
}

int
main(int argc, char **argv)
{
	int ch, conc = 1, n, running = 0, started = 0, status;
	double t0, t;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c' || (conc = atoi(optarg)) < 1) {
			fprintf(stderr, "usage: spawn-loop [-c C] N PROGRAM [ARGS]\n");
			return 2;
		}
	}
	if (argc - optind < 2 || (n = atoi(argv[optind])) < 1) {
		fprintf(stderr, "usage: spawn-loop [-c C] N PROGRAM [ARGS]\n");
		return 2;
	}
	t0 = now_s();
	while (started < n || running > 0) {
		while (running < conc && started < n) {
			if (start(argv + optind + 1) == -1)
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
