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

/*
 * Room for need elements of size bytes in the array *pp (pp points to the
 * array pointer) of *cap elements: when need > *cap, *cap becomes first
 * (when 0) or doubles until it is at least need.  0, or -1 when out of
 * memory or on overflow (*pp and *cap unchanged).  New elements are not
 * initialised.
 */
int	array_grow(void *pp, size_t *cap, size_t need, size_t size,
	    size_t first);

#endif /* FCGIQ_BUF_H */
