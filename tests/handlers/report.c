/*
 * report: a test handler that prints what a handler sees, one item a line:
 *   env NAME=value     each environment variable
 *   fd N               each open file descriptor
 *   pgrp-is-pid 0|1    whether it leads its own process group
 *   sigblk HEX         blocked signals (from /proc/self/status)
 *   sigign HEX         ignored signals
 *   stdin N            bytes read from stdin
 */
#include <sys/types.h>

#include <sys/resource.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int
main(void)
{
	char buf[4096], line[512];
	struct dirent *de;
	DIR *d;
	FILE *f;
	size_t total = 0;
	ssize_t n;
	char **e;
	struct rlimit rl;

	for (e = environ; *e != NULL; e++)
		printf("env %s\n", *e);
	if ((d = opendir("/proc/self/fd")) == NULL)
		return 1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
			printf("fd %s\n", de->d_name);
	closedir(d);
	printf("pgrp-is-pid %d\n", getpgrp() == getpid());
	if ((f = fopen("/proc/self/status", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			char *p = line + 7;

			p += strspn(p, " \t");
			if (strncmp(line, "SigBlk:", 7) == 0)
				printf("sigblk %s", p);
			else if (strncmp(line, "SigIgn:", 7) == 0)
				printf("sigign %s", p);
		}
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		printf("rlimit-nofile %llu\n", (unsigned long long)rl.rlim_cur);
	if (getrlimit(RLIMIT_AS, &rl) == 0)
		printf("rlimit-as %llu\n", (unsigned long long)rl.rlim_cur);
	if (getrlimit(RLIMIT_CPU, &rl) == 0)
		printf("rlimit-cpu %llu\n", (unsigned long long)rl.rlim_cur);
	while ((n = read(0, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	printf("stdin %zu\n", total);
	return 0;
}
