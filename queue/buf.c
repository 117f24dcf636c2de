/*
 * buf: the growable buffer.  Growth doubles the capacity (an append
 * copies each byte O(1) times on average) and never passes b->max, so a
 * bounded buffer costs at most its bound however its input arrives.
 * array_grow is the same doubling for arrays of structs and pointers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int
buf_reserve(struct buf *b, size_t n)
{
	unsigned char *p;
	size_t need, cap;

	if (n > SIZE_MAX - b->len)
		return -1;
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	if (b->max > 0 && need > b->max)
		return -1;
	cap = b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2;
	if (cap < need)
		cap = need;
	if (b->max > 0 && cap > b->max)
		cap = b->max;
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int
array_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
	void *p;
	size_t n;

	if (need <= *cap)
		return 0;
	n = *cap;
	do {
		if (n == 0)
			n = first != 0 ? first : 1;
		else if (n > SIZE_MAX / 2)
			return -1;
		else
			n *= 2;
	} while (n < need);
	if (size != 0 && n > SIZE_MAX / size)
		return -1;
	/* pp may point to any object pointer: copy, never type-pun. */
	memcpy(&p, pp, sizeof(p));
	if ((p = realloc(p, n * size)) == NULL)
		return -1;
	memcpy(pp, &p, sizeof(p));
	*cap = n;
	return 0;
}
