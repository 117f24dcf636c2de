/*
 * hostile: a handler that misbehaves on purpose, for
 * tests/e2e/hostile-handlers.sh.  One program, one misbehaviour per mode:
 *
 *   hostile DIR spin            burn CPU forever
 *   hostile DIR spin-noterm     the same, with SIGTERM ignored
 *   hostile DIR hog MIB         malloc and touch MIB MiB, 8 MiB at a time;
 *                               "hog: out of memory after N MiB", exit 1
 *   hostile DIR flood MIB       write MIB MiB to stdout as fast as it can
 *                               (0: forever), then print "flood done" on
 *                               stderr, exit 0
 *   hostile DIR noread          never read stdin; print "noread done"
 *   hostile DIR closein         read 16 bytes, close stdin, wait 300 ms
 *                               (the helper's next write meets EPIPE),
 *                               print "closein done"
 *   hostile DIR bgchild         fork a child that sleeps 300 s holding
 *                               stdout and stderr; exit at once
 *   hostile DIR daemon          double fork, same process group: the
 *                               grandchild sleeps 300 s holding stdout
 *   hostile DIR escape          fork a child that calls setsid() (leaving
 *                               the process group), makes the pipes as
 *                               large as it may, and forks five more:
 *                               four write to stdout, two to stderr,
 *                               without end; exit at once
 *   hostile DIR escape-quiet    the same, but the escaped child only
 *                               sleeps 300 s holding stdout
 *
 * Each run writes "PID PGID" to DIR/<job>.<attempt>.pid before it
 * misbehaves, and each child it leaves behind writes its own pid to
 * DIR/<job>.<attempt>.kid, so the test can tell which processes outlived
 * what.  The modes that exit normally print "<mode> done" on stdout.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

/* DIR/<job id>.<attempt>.SUFFIX gets LINE. */
static void
record(const char *suffix, const char *line)
{
	char path[4096];
	const char *id = getenv("FCGIQ_JOB_ID"), *at = getenv("FCGIQ_ATTEMPT");
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s.%s", dir, id ? id : "noid",
	    at ? at : "0", suffix);
	if ((f = fopen(path, "a")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(line, f);
	if (fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static void
record_self(const char *suffix)
{
	char line[64];

	snprintf(line, sizeof(line), "%ld %ld\n", (long)getpid(),
	    (long)getpgrp());
	record(suffix, line);
}

static void
nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void __attribute__((noreturn))
spin(void)
{
	volatile unsigned long n = 0;

	for (;;)
		n++;
}

static int
hog(long mib)
{
	long got;
	char *p;

	for (got = 0; got < mib; got += 8) {
		if ((p = malloc(8 << 20)) == NULL) {
			fprintf(stderr, "hog: out of memory after %ld MiB\n",
			    got);
			return 1;
		}
		memset(p, 0xa5, 8 << 20);	/* really use it */
	}
	printf("hog: got %ld MiB\n", got);
	return 0;
}

/* fd gets blocks of 'A'..'Z' lines, so the kept prefix is checkable. */
static int
flood(int fd, long mib)
{
	static char block[65536];
	long i, n = mib * 16;
	size_t off;
	ssize_t w;

	for (i = 0; i < (long)sizeof(block); i++)
		block[i] = (i % 64 == 63) ? '\n' : (char)('A' + (i / 64) % 26);
	for (i = 0; mib == 0 || i < n; i++) {
		for (off = 0; off < sizeof(block); off += (size_t)w) {
			w = write(fd, block + off, sizeof(block) - off);
			if (w == -1 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w == -1) {
				perror("flood: write");
				return 1;
			}
		}
	}
	fprintf(stderr, "flood done\n");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *mode;
	char buf[16];
	pid_t pid, kid;
	int status, i;

	if (argc < 3) {
		fprintf(stderr, "usage: hostile DIR MODE [N]\n");
		return 65;
	}
	dir = argv[1];
	mode = argv[2];
	record_self("pid");

	if (strcmp(mode, "spin") == 0)
		spin();
	if (strcmp(mode, "spin-noterm") == 0) {
		signal(SIGTERM, SIG_IGN);
		spin();
	}
	if (strcmp(mode, "hog") == 0)
		return hog(argc > 3 ? atol(argv[3]) : 1024);
	if (strcmp(mode, "flood") == 0)
		return flood(1, argc > 3 ? atol(argv[3]) : 200);
	if (strcmp(mode, "noread") == 0) {
		nap(200);	/* the helper has filled the pipe by now */
		printf("noread done\n");
		return 0;
	}
	if (strcmp(mode, "closein") == 0) {
		if (read(0, buf, sizeof(buf)) == -1)
			perror("closein: read");
		close(0);
		nap(300);
		printf("closein done\n");
		return 0;
	}
	if (strcmp(mode, "bgchild") == 0) {
		if ((pid = fork()) == -1)
			return 1;
		if (pid == 0) {
			record_self("kid");
			nap(300000);
			_exit(0);
		}
		/* Only once the child has recorded itself. */
		nap(100);
		printf("bgchild done\n");
		return 0;
	}
	if (strcmp(mode, "daemon") == 0) {
		if ((pid = fork()) == -1)
			return 1;
		if (pid == 0) {
			if ((kid = fork()) == -1)
				_exit(1);
			if (kid == 0) {
				record_self("kid");
				nap(300000);
				_exit(0);
			}
			_exit(0);
		}
		if (waitpid(pid, &status, 0) == -1)
			return 1;
		nap(100);
		printf("daemon done\n");
		return 0;
	}
	if (strcmp(mode, "escape") == 0 || strcmp(mode, "escape-quiet") == 0) {
		if ((pid = fork()) == -1)
			return 1;
		if (pid == 0) {
			if (setsid() == -1)
				_exit(1);
			if (strcmp(mode, "escape-quiet") == 0) {
				record_self("kid");
				nap(300000);
				_exit(0);
			}
			(void)fcntl(1, F_SETPIPE_SZ, 1 << 20);
			(void)fcntl(2, F_SETPIPE_SZ, 1 << 20);
			/* Six writers (four on stdout, two on stderr), more
			 * than there are cores to read them. */
			for (i = 1; i < 6; i++) {
				if ((kid = fork()) == -1)
					_exit(1);
				if (kid == 0)
					break;
			}
			if (i == 6)
				i = 0;
			record_self("kid");
			_exit(flood(i < 4 ? 1 : 2, 0));
			_exit(0);
		}
		nap(100);
		printf("%s done\n", mode);
		return 0;
	}
	fprintf(stderr, "hostile: unknown mode %s\n", mode);
	return 65;
}
