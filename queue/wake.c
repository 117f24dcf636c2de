/*
 * wake: a unix datagram socket in Linux's abstract namespace, bound by the
 * active helper.  Its name comes from the database file's device and inode
 * ("\0fcgiq-wake-<dev>-<ino>", hex), so it needs nothing from the file
 * system the database lives on (a FUSE mount may refuse sockets), every
 * process that opens the same file agrees on it whatever path it used, and
 * two databases never share one.  Committers send one byte after each
 * COMMIT; the send never blocks and a full or absent socket is not an
 * error, because the helper's slow safety poll finds any job whose wake-up
 * was lost.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wake.h"

/* db's socket address into sun; its length, or 0 with errno (no db). */
static socklen_t
wake_addr(const char *db, struct sockaddr_un *sun)
{
	struct stat st;
	int n;

	if (stat(db, &st) == -1)
		return 0;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* sun_path[0] stays NUL: the abstract namespace. */
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "fcgiq-wake-%jx-%jx", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int
wake_name(const char *db, char *buf, size_t len)
{
	struct sockaddr_un sun;

	if (wake_addr(db, &sun) == 0)
		return -1;
	if (strlen(sun.sun_path + 1) + 2 > len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(buf, len, "@%s", sun.sun_path + 1);
	return 0;
}

void
wake_notify(const char *db)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd;
	char c = 1;

	/* A stat per commit: the kernel resolved the path of the old
	 * socket file on every send as well. */
	if ((len = wake_addr(db, &sun)) == 0)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return;
	/* EAGAIN (queue full: a wake-up is already pending) and
	 * ECONNREFUSED (no helper) are both fine to ignore. */
	(void)sendto(fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	close(fd);
}

int
wake_listen(const char *db)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, saved;

	if ((len = wake_addr(db, &sun)) == 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	/* Only the helper holding the database's lock binds, and an abstract
	 * name dies with its last fd: EADDRINUSE means someone else took it. */
	if (bind(fd, (struct sockaddr *)&sun, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

void
wake_drain(int fd)
{
	char buf[64];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}
