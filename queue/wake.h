/*
 * wake: the push channel from whoever commits jobs (responders, fcgiqctl)
 * to the one active helper of a database.  A unix datagram socket beside the
 * database; a notification is one byte, lost notifications are harmless
 * because the helper also polls slowly as a safety net.
 */
#ifndef FCGIQ_WAKE_H
#define FCGIQ_WAKE_H

#include <stddef.h>

/* The socket path for database db into buf.  0, or -1 when it does not fit. */
int	wake_path(const char *db, char *buf, size_t len);
/* Send one wake-up, never blocking; errors are ignored (no helper listening). */
void	wake_notify(const char *db);
/* Bind the socket (replacing a stale one); returns a non-blocking CLOEXEC fd, or -1. */
int	wake_listen(const char *db);
/* Drain pending wake-ups from fd. */
void	wake_drain(int fd);

#endif /* FCGIQ_WAKE_H */
