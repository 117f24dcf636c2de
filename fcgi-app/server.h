/*
 * server: connections and threads.  Worker threads share one epoll set
 * holding the listening socket and every connection waiting for bytes;
 * the worker that an event wakes reads, serves and answers the request
 * (wire.c) in place, so a kept connection costs no hand-off per request
 * and an idle one costs no thread.
 */
#ifndef FCGIQ_SERVER_H
#define FCGIQ_SERVER_H

struct wire;

#define SERVER_DRAIN_MAX	(64 * 1024)	/* a refused body read and dropped */
#define SERVER_DETACHED		1	/* serve() took the request off its wire */

struct server_conf {
	int	 listen_fd;		/* listening, made non-blocking and close-on-exec */
	int	 threads;		/* workers */
	int	 io_timeout_ms;		/* a request must be in within this; a write
				   stalled this long fails */
	int	 idle_timeout_ms;	/* a kept-alive connection idle this long is closed */
	int	(*serve)(struct wire *);	/* answers one request: 0, or
						   SERVER_DETACHED */
};

/* Start the poller and the workers.  0, or -1 (errno set).  Signals must
 * be blocked in the calling thread. */
int	server_start(const struct server_conf *);

/*
 * Called by serve() before it waits for anything but its connection (a
 * group commit, a database lock): another worker takes over accepting
 * meanwhile.  A no-op outside the workers.
 */
void	server_blocking(void);

/* The connection of a detached request, answered: armed in the set for
 * its next request when keep (and not stopping), else closed.  From any
 * thread; the connection is no longer the caller's. */
void	server_release(int fd, int keep);

/*
 * Stop accepting (the listening fd is closed), answer every request already
 * received, close idle connections, and return when the workers are done.
 * Past grace_ms, connections still being read are shut down so that their
 * workers finish at once.
 */
void	server_stop(int grace_ms);

#endif /* FCGIQ_SERVER_H */
