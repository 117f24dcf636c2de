/*
 * fcgirec: FastCGI 1.0 records and name-value pairs (see fcgirec.h).  The
 * decoders check every length against the bytes that are there.
 */
#include <string.h>

#include "fcgirec.h"

void
fcgirec_header(unsigned char *h, int type, unsigned id, size_t clen,
    size_t pad)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)pad;
	h[7] = 0;
}

int
fcgirec_parse(const unsigned char *h, struct fcgirec_hdr *out)
{
	out->version = h[0];
	out->type = h[1];
	out->id = (unsigned)h[2] << 8 | h[3];
	out->clen = (size_t)h[4] << 8 | h[5];
	out->pad = h[6];
	return out->version == FCGI_VERSION_1 ? 0 : -1;
}

int
fcgirec_nv_length(const unsigned char *p, size_t end, size_t *i, size_t *len)
{
	if (*i >= end)
		return -1;
	if ((p[*i] & 0x80) == 0) {
		*len = p[(*i)++];
		return 0;
	}
	if (end - *i < 4)
		return -1;
	*len = (size_t)(p[*i] & 0x7f) << 24 | (size_t)p[*i + 1] << 16 |
	    (size_t)p[*i + 2] << 8 | p[*i + 3];
	*i += 4;
	return 0;
}

int
fcgirec_nv_pair(const unsigned char *p, size_t end, size_t *i,
    const unsigned char **name, size_t *nlen, const unsigned char **value,
    size_t *vlen)
{
	if (*i == end)
		return 0;
	if (fcgirec_nv_length(p, end, i, nlen) == -1 ||
	    fcgirec_nv_length(p, end, i, vlen) == -1 ||
	    *nlen > end - *i || *vlen > end - *i - *nlen)
		return -1;
	*name = p + *i;
	*value = p + *i + *nlen;
	*i += *nlen + *vlen;
	return 1;
}

size_t
fcgirec_nv_size(size_t nlen, size_t vlen)
{
	return (nlen < 128 ? 1 : 4) + (vlen < 128 ? 1 : 4) + nlen + vlen;
}

/* One length, 1 byte below 128, else 4 with the high bit set. */
static unsigned char *
put_length(unsigned char *p, size_t n)
{
	if (n < 128) {
		*p++ = (unsigned char)n;
		return p;
	}
	*p++ = (unsigned char)(0x80 | (n >> 24 & 0x7f));
	*p++ = (unsigned char)(n >> 16);
	*p++ = (unsigned char)(n >> 8);
	*p++ = (unsigned char)n;
	return p;
}

unsigned char *
fcgirec_nv_put(unsigned char *p, const void *name, size_t nlen,
    const void *value, size_t vlen)
{
	p = put_length(p, nlen);
	p = put_length(p, vlen);
	memcpy(p, name, nlen);
	p += nlen;
	if (vlen > 0)
		memcpy(p, value, vlen);
	return p + vlen;
}
