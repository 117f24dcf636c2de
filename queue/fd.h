/*
 * fd: the one file-descriptor idiom every fcgiq process repeats.
 */
#ifndef FCGIQ_FD_H
#define FCGIQ_FD_H

#include <unistd.h>

/* Close *fd unless it is -1, and mark it closed (-1): safe to repeat. */
static inline void
fd_close(int *fd)
{
	if (*fd != -1) {
		(void)close(*fd);
		*fd = -1;
	}
}

#endif /* FCGIQ_FD_H */
