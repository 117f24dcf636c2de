/*
 * server: connections and threads.  One poller thread accepts on the
 * listening socket and watches idle connections; a pool of worker threads
 * reads and answers requests (wire.c) on connections that have data, so
 * an idle keep-alive connection costs no thread.
 */
#ifndef FCGIQ_SERVER_H
#define FCGIQ_SERVER_H

struct wire;

#define SERVER_LINGER_MS	10	/* a worker waits this long on its kept connection */
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

/* The connection of a detached request, answered: back to the poller when
 * keep (and not stopping), else closed.  From any thread. */
void	server_release(int fd, int keep);

/*
 * Stop accepting (the listening fd is closed), answer every request already
 * received, close idle connections, and return when the workers are done.
 * Past grace_ms, connections still being read are shut down so that their
 * workers finish at once.
 */
void	server_stop(int grace_ms);

#endif /* FCGIQ_SERVER_H */
