/*
 * tmpdir.c: the unit tests' scratch directories.
 */
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "tmpdir.h"

int
tmpdir_remove(const char *dir)
{
	struct dirent *de;
	DIR *d;
	char p[512];

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			(void)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			(void)unlink(p);
		}
		(void)closedir(d);
	}
	return rmdir(dir);
}
