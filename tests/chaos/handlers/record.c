/*
 * record: the handler of tests/chaos/total-queue.sh.  It reads the whole
 * job body from stdin and appends one line per execution to LOG:
 *
 *   JOB_ID ATTEMPT SHA256(stdin) LENGTH TIME_MS
 *
 * with a single write(2) on an O_APPEND descriptor, so handlers running
 * at once never interleave their lines.  A body shorter or longer than
 * CONTENT_LENGTH (its helper was killed while feeding it) is not a run of
 * the job: it logs "JOB_ID ATTEMPT short GOT/EXPECTED TIME_MS" and exits 75
 * (retry).  TIME_MS is the wall clock in milliseconds, to read the log
 * beside the test's log of kills.
 * It never deduplicates: the test counts re-runs from the log (a real
 * handler would key its side effects on FCGIQ_JOB_ID).
 *
 * usage: record LOG [MAX_SLEEP_MS]
 * Sleeps a random 0..MAX_SLEEP_MS before and after logging, so that kills
 * land both before and after the side effect.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

static int
log_line(const char *path, const char *line)
{
	size_t len = strlen(line);
	ssize_t n;
	int fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0644)) == -1)
		return -1;
	n = write(fd, line, len);
	if (close(fd) == -1 || n != (ssize_t)len)
		return -1;
	return 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap(long max_ms)
{
	struct timespec ts;
	long ms;

	if (max_ms <= 0)
		return;
	ms = random() % (max_ms + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
main(int argc, char **argv)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	char line[512], hex[2 * EVP_MAX_MD_SIZE + 1];
	const char *id, *attempt, *cl;
	unsigned long long total = 0, want;
	unsigned int mdlen, i;
	long max_ms;
	EVP_MD_CTX *ctx;
	ssize_t n;

	if (argc < 2) {
		fprintf(stderr, "usage: record LOG [MAX_SLEEP_MS]\n");
		return 64;
	}
	max_ms = argc > 2 ? atol(argv[2]) : 0;
	srandom((unsigned int)getpid() ^ (unsigned int)time(NULL));
	id = getenv("FCGIQ_JOB_ID");
	attempt = getenv("FCGIQ_ATTEMPT");
	cl = getenv("CONTENT_LENGTH");
	if (id == NULL || attempt == NULL || cl == NULL) {
		fprintf(stderr, "record: FCGIQ_JOB_ID, FCGIQ_ATTEMPT or "
		    "CONTENT_LENGTH missing\n");
		return 65;
	}
	want = strtoull(cl, NULL, 10);

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return 70;
	for (;;) {
		n = read(0, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(stderr, "record: read: %s\n", strerror(errno));
			return 75;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			return 70;
		total += (unsigned long long)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		return 70;
	EVP_MD_CTX_free(ctx);

	if (total != want) {
		snprintf(line, sizeof(line), "%s %s short %llu/%llu %lld\n",
		    id, attempt, total, want, now_ms());
		(void)log_line(argv[1], line);
		fprintf(stderr, "record: stdin %llu bytes, CONTENT_LENGTH "
		    "%llu\n", total, want);
		return 75;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	nap(max_ms);
	snprintf(line, sizeof(line), "%s %s %s %llu %lld\n", id, attempt, hex,
	    total, now_ms());
	if (log_line(argv[1], line) == -1) {
		fprintf(stderr, "record: %s: %s\n", argv[1], strerror(errno));
		return 75;
	}
	nap(max_ms);
	printf("%s\n", hex);
	return 0;
}
