/*
 * tmpdir.h: the unit tests' scratch directories.
 */
#ifndef FCGIQ_TESTS_TMPDIR_H
#define FCGIQ_TESTS_TMPDIR_H

/* Remove dir and the files in it (it holds no subdirectory: a database,
 * its -wal and -shm).  0, or -1 when dir is still there. */
int	tmpdir_remove(const char *dir);

#endif
