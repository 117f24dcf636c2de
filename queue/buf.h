/*
 * buf: one growable byte buffer (in the spirit of redis's sds, without
 * the header tricks): data holds len bytes in cap allocated, and grows by
 * doubling, so n appends cost O(n) copies, never past an optional bound.
 */
#ifndef FCGIQ_BUF_H
#define FCGIQ_BUF_H

#include <stddef.h>

struct buf {
	unsigned char	*data;		/* NULL until the first reservation */
	size_t		 len;		/* bytes in use */
	size_t		 cap;		/* bytes allocated */
	size_t		 max;		/* cap never grows past it; 0: no bound */
};

/* An empty buffer that will never hold more than max bytes (0: no bound). */
void	buf_init(struct buf *b, size_t max);

/*
 * Room for n more bytes past len: cap becomes at least len + n (twice the
 * old cap when that is more, but at most max).  0, or -1 when out of
 * memory or past max (b unchanged).
 */
int	buf_reserve(struct buf *b, size_t n);

/* Append p[0..n).  0, or -1 as buf_reserve (nothing appended). */
int	buf_append(struct buf *b, const void *p, size_t n);

/* Release the memory; b is empty again, with its bound. */
void	buf_free(struct buf *b);

#endif /* FCGIQ_BUF_H */
