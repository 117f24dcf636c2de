/*
 * dbpool: a fixed set of connections, each behind its own mutex.  A thread
 * takes the first free one (trylock round the set, starting at a rotating
 * index), and only when all are busy blocks on one of them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dbpool.h"
#include "store.h"

struct slot {
	pthread_mutex_t	 lock;
	struct store	*s;
};

static struct slot	*slots;
static int		 nslots;
static unsigned int	 next;	/* rotates the starting slot; races are harmless */

int
dbpool_open(const char *path, const struct store_opts *opts, int n,
    char *err, size_t errlen)
{
	int i;

	if (n < 1)
		n = 1;
	if ((slots = calloc((size_t)n, sizeof(*slots))) == NULL) {
		strncpy(err, "out of memory", errlen);
		return -1;
	}
	for (i = 0; i < n; i++) {
		pthread_mutex_init(&slots[i].lock, NULL);
		if ((slots[i].s = store_open(path, opts, err, errlen)) == NULL) {
			nslots = i;
			dbpool_close();
			return -1;
		}
	}
	nslots = n;
	return 0;
}

struct store *
dbpool_get(void)
{
	unsigned int start = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	int i, k;

	for (i = 0; i < nslots; i++) {
		k = (int)((start + (unsigned int)i) % (unsigned int)nslots);
		if (pthread_mutex_trylock(&slots[k].lock) == 0)
			return slots[k].s;
	}
	k = (int)(start % (unsigned int)nslots);
	pthread_mutex_lock(&slots[k].lock);
	return slots[k].s;
}

void
dbpool_put(struct store *s)
{
	int i;

	for (i = 0; i < nslots; i++)
		if (slots[i].s == s) {
			pthread_mutex_unlock(&slots[i].lock);
			return;
		}
}

void
dbpool_close(void)
{
	int i;

	for (i = 0; i < nslots; i++) {
		store_close(slots[i].s);
		pthread_mutex_destroy(&slots[i].lock);
	}
	free(slots);
	slots = NULL;
	nslots = 0;
}
