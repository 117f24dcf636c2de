/* fcgibuf: FastCGI records built in memory (see fcgibuf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgibuf.h"

#define FCGI_BEGIN_REQUEST	1

void
fcgibuf_add(struct fcgibuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL) {
			perror("fcgibuf");
			exit(1);
		}
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
fcgibuf_free(struct fcgibuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
fcgibuf_header(struct fcgibuf *b, int version, int type, int id, size_t clen,
    int plen)
{
	unsigned char h[8];

	h[0] = (unsigned char)version;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)((unsigned)id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)plen;
	h[7] = 0;
	fcgibuf_add(b, h, sizeof(h));
}

void
fcgibuf_record(struct fcgibuf *b, int type, int id, const void *p, size_t n)
{
	fcgibuf_header(b, 1, type, id, n, 0);
	fcgibuf_add(b, p, n);
}

void
fcgibuf_stream(struct fcgibuf *b, int type, int id, const void *p, size_t n,
    size_t max, int end)
{
	const unsigned char *c = p;
	size_t k;

	while (n > 0) {
		k = n > max ? max : n;
		fcgibuf_record(b, type, id, c, k);
		c += k;
		n -= k;
	}
	if (end)
		fcgibuf_record(b, type, id, NULL, 0);
}

void
fcgibuf_begin(struct fcgibuf *b, int id, int role, int flags)
{
	unsigned char body[8] = { 0 };

	body[0] = (unsigned char)(role >> 8);
	body[1] = (unsigned char)role;
	body[2] = (unsigned char)flags;
	fcgibuf_record(b, FCGI_BEGIN_REQUEST, id, body, sizeof(body));
}

void
fcgibuf_nvlen(struct fcgibuf *b, uint32_t n)
{
	unsigned char l[4];

	if (n < 128) {
		l[0] = (unsigned char)n;
		fcgibuf_add(b, l, 1);
		return;
	}
	l[0] = (unsigned char)((n >> 24) | 0x80);
	l[1] = (unsigned char)(n >> 16);
	l[2] = (unsigned char)(n >> 8);
	l[3] = (unsigned char)n;
	fcgibuf_add(b, l, 4);
}

void
fcgibuf_pair(struct fcgibuf *b, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	fcgibuf_nvlen(b, (uint32_t)nlen);
	fcgibuf_nvlen(b, (uint32_t)vlen);
	fcgibuf_add(b, name, nlen);
	fcgibuf_add(b, value, vlen);
}

void
fcgibuf_param(struct fcgibuf *b, const char *name, const char *value)
{
	fcgibuf_pair(b, name, strlen(name), value, strlen(value));
}
