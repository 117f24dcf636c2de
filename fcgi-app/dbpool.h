/*
 * dbpool: a few database connections for the status API (GET, HEAD) and
 * DELETE, apart from group commit's write connection, so that status reads
 * (WAL readers) never wait behind a group commit.  Each connection is used
 * by one thread at a time.
 */
#ifndef FCGIQ_DBPOOL_H
#define FCGIQ_DBPOOL_H

#include "store.h"

/* Open n connections to path.  0, or -1 with a message in err. */
int		 dbpool_open(const char *path, const struct store_opts *opts,
		    int n, char *err, size_t errlen);
/* A connection for the caller alone until dbpool_put(); never NULL. */
struct store	*dbpool_get(void);
void		 dbpool_put(struct store *);
void		 dbpool_close(void);

#endif /* FCGIQ_DBPOOL_H */
