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
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "wake.h"

/* db's socket address into sun; its length, or 0 with errno (no db). */
static socklen_t
wake_addr(const char *db, struct sockaddr_un *sun)
{
	struct stat st;
	uint64_t h = 14695981039346656037ULL;
	const char *p;
	int n;

	if (store_is_postgresql(db)) {
		/* No file: the connection string's FNV-1a names the socket,
		 * so processes of one host sharing the database wake each
		 * other. */
		for (p = db; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
		    "fcgiq-wake-pg-%016jx", (uintmax_t)h);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
		    n);
	}
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

/*
 * The reverse way.  A watch request is the byte 'W' sent from the
 * responder's autobound socket: recvfrom() gives the helper the address
 * to answer, so nothing is configured and a responder that restarts just
 * watches again.  A notice is 'F' followed by "id\n" per finished job, as
 * many datagrams as the ids need.  Watches expire unless renewed (the
 * responder renews while it has waiters), so the helper's table holds
 * only live responders; one that is gone refuses the send and is dropped.
 */
#define WATCH_REQ	'W'

int
wake_watch_open(void)
{
	struct sockaddr_un sun;
	int fd, saved;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	/* Only the family: Linux picks a free abstract name (autobind). */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

void
wake_watch(int fd, const char *db)
{
	struct sockaddr_un sun;
	socklen_t len;
	char c = WATCH_REQ;

	if ((len = wake_addr(db, &sun)) == 0)
		return;
	(void)sendto(fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
}

/* Add or renew the watcher at sun (len bytes). */
static void
watch_add(struct wake_watchers *ws, const struct sockaddr_un *sun,
    socklen_t len, int64_t now)
{
	size_t i;

	for (i = 0; i < ws->n; i++)
		if (ws->w[i].len == len && memcmp(&ws->w[i].addr, sun,
		    len) == 0)
			break;
	if (i == ws->n) {
		if (ws->n == WAKE_WATCH_MAX)
			return;		/* it re-reads its waiters anyway */
		ws->n++;
		memcpy(&ws->w[i].addr, sun, len);
		ws->w[i].len = len;
	}
	ws->w[i].until = now + WAKE_WATCH_MS;
}

int
wake_take(int fd, struct wake_watchers *ws, int64_t now)
{
	struct sockaddr_un sun;
	socklen_t len;
	char buf[64];
	ssize_t n;
	int job = 0;

	for (;;) {
		len = sizeof(sun);
		n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		    (struct sockaddr *)&sun, &len);
		if (n < 0)
			break;
		if (n == 1 && buf[0] == WATCH_REQ &&
		    len > (socklen_t)sizeof(sa_family_t) && len <= sizeof(sun))
			watch_add(ws, &sun, len, now);
		else
			job = 1;
	}
	return job;
}

/* Send msg to every watcher; drop those gone. */
static void
tell_all(int fd, struct wake_watchers *ws, const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i < ws->n;) {
		if (sendto(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL,
		    (struct sockaddr *)&ws->w[i].addr, ws->w[i].len) == -1 &&
		    (errno == ECONNREFUSED || errno == ENOENT)) {
			ws->w[i] = ws->w[--ws->n];
			continue;
		}
		/* EAGAIN: its queue is full; it re-reads its waiters. */
		i++;
	}
}

void
wake_tell(int fd, struct wake_watchers *ws, const char *const *ids,
    size_t n, int64_t now)
{
	char msg[WAKE_NOTICE_MAX];
	size_t i, len = 1, l;

	for (i = 0; i < ws->n;)
		if (ws->w[i].until <= now)
			ws->w[i] = ws->w[--ws->n];
		else
			i++;
	if (ws->n == 0 || n == 0)
		return;
	msg[0] = WAKE_NOTICE;
	for (i = 0; i < n; i++) {
		l = strlen(ids[i]);
		if (l + 1 > sizeof(msg) - 1)
			continue;
		if (len + l + 1 > sizeof(msg)) {
			tell_all(fd, ws, msg, len);
			len = 1;
		}
		memcpy(msg + len, ids[i], l);
		msg[len + l] = '\n';
		len += l + 1;
	}
	if (len > 1)
		tell_all(fd, ws, msg, len);
}
