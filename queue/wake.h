/*
 * wake: the push channel from whoever commits jobs (responders, fcgiqctl)
 * to the one active helper of a database.  A unix datagram socket in the
 * abstract namespace, named after the database file's device and inode; a
 * notification is one byte, lost notifications are harmless because the
 * helper also polls slowly as a safety net.
 */
#ifndef FCGIQ_WAKE_H
#define FCGIQ_WAKE_H

#include <stddef.h>

/* The socket's name for database db, as /proc/net/unix shows it
 * ("@fcgiq-wake-…"), into buf.  0, or -1 with errno (db missing). */
int	wake_name(const char *db, char *buf, size_t len);
/* Send one wake-up, never blocking; errors are ignored (no helper listening). */
void	wake_notify(const char *db);
/* Bind db's socket; returns a non-blocking CLOEXEC fd, or -1 with errno. */
int	wake_listen(const char *db);
/* Drain pending wake-ups from fd. */
void	wake_drain(int fd);

#endif /* FCGIQ_WAKE_H */
