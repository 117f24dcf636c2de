/*
 * wake: a unix datagram socket beside the database, bound by the active
 * helper.  Committers send one byte after each COMMIT; the send never blocks
 * and a full or absent socket is not an error, because the helper's slow
 * safety poll finds any job whose wake-up was lost.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wake.h"

int
wake_path(const char *db, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len, "%s-wake.sock", db);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

static int
wake_addr(const char *db, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return wake_path(db, sun->sun_path, sizeof(sun->sun_path));
}

void
wake_notify(const char *db)
{
	struct sockaddr_un sun;
	int fd;
	char c = 1;

	if (wake_addr(db, &sun) == -1)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return;
	/* EAGAIN (queue full: a wake-up is already pending) and
	 * ECONNREFUSED/ENOENT (no helper) are both fine to ignore. */
	(void)sendto(fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
}

int
wake_listen(const char *db)
{
	struct sockaddr_un sun;
	int fd;

	if (wake_addr(db, &sun) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	/* Only the helper holding the database's lock calls this, so a
	 * socket file already there belongs to a dead predecessor. */
	if (unlink(sun.sun_path) == -1 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto fail;
	/* Responders may run as another user than the helper's owner. */
	(void)chmod(sun.sun_path, 0666);
	return fd;
fail:
	{
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

void
wake_drain(int fd)
{
	char buf[64];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}
