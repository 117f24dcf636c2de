/*
 * wake: the push channel from whoever commits jobs (responders, fcgiqctl)
 * to the one active helper of a database.  A unix datagram socket in the
 * abstract namespace, named after the database file's device and inode; a
 * notification is one byte, lost notifications are harmless because the
 * helper also polls slowly as a safety net.
 *
 * The other way, for requests waiting on their job (Prefer: wait): a
 * responder with waiters asks the helper to watch, from a socket of its
 * own, and renews the watch while it has any; after each commit that
 * finished jobs, the helper sends every watcher the ids.  Lost notices
 * are harmless too: the responder re-reads its waiters now and then.
 */
#ifndef FCGIQ_WAKE_H
#define FCGIQ_WAKE_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdint.h>

/* The socket's name for database db, as /proc/net/unix shows it
 * ("@fcgiq-wake-…"), into buf.  0, or -1 with errno (db missing). */
int	wake_name(const char *db, char *buf, size_t len);
/* Send one wake-up, never blocking; errors are ignored (no helper listening). */
void	wake_notify(const char *db);
/* Bind db's socket; returns a non-blocking CLOEXEC fd, or -1 with errno. */
int	wake_listen(const char *db);
/* Drain pending wake-ups from fd. */
void	wake_drain(int fd);

#define WAKE_WATCH_MS	3000	/* a watch lasts this long unless renewed */
#define WAKE_WATCH_MAX	64	/* responders watched at once */
#define WAKE_NOTICE_MAX	4096	/* bytes of one notice */
#define WAKE_NOTICE	'F'	/* a notice: 'F', then "id\n" per job */

/* Responders the helper tells about finished jobs. */
struct wake_watchers {
	struct wake_watcher {
		struct sockaddr_un	addr;
		socklen_t		len;
		int64_t			until;	/* monotonic ms */
	}	w[WAKE_WATCH_MAX];
	size_t	n;
};

/* A responder's socket for notices (autobound in the abstract namespace,
 * non-blocking, CLOEXEC), or -1 with errno. */
int	wake_watch_open(void);
/* Ask db's helper, from fd, for notices during WAKE_WATCH_MS; never
 * blocks, errors ignored (no helper: the responder re-reads anyway). */
void	wake_watch(int fd, const char *db);
/*
 * The helper: drain fd, recording watch requests in ws (now: monotonic
 * ms).  1 when a wake-up (a committed job) was among them, else 0.
 */
int	wake_take(int fd, struct wake_watchers *ws, int64_t now);
/* The helper: tell every live watcher of ws, from fd, that the n jobs of
 * ids reached a final state; watchers gone or expired are dropped. */
void	wake_tell(int fd, struct wake_watchers *ws, const char *const *ids,
	    size_t n, int64_t now);

#endif /* FCGIQ_WAKE_H */
