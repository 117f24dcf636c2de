/*
 * fcgirec: the FastCGI 1.0 record format, the one copy of it that both
 * sides share: the responder's reader and writer (fcgi-app/wire.c) and
 * the helper's fastcgi: handler kind (queue/fcgi.c), which is a FastCGI
 * client.  Encoding and decoding of record headers and name-value pairs
 * only; no I/O.
 */
#ifndef FCGIQ_FCGIREC_H
#define FCGIQ_FCGIREC_H

#include <stddef.h>

#include <fastcgi.h>

/* The 8-byte header of a record of type for request id, clen content
 * bytes (<= FCGI_MAX_LENGTH) and pad padding bytes, into h. */
void	fcgirec_header(unsigned char *h, int type, unsigned id, size_t clen,
	    size_t pad);

/* A record header read from h: 0, or -1 when its version is not 1. */
struct fcgirec_hdr {
	int		 version;
	int		 type;
	unsigned	 id;
	size_t		 clen;
	size_t		 pad;
};
int	fcgirec_parse(const unsigned char *h, struct fcgirec_hdr *out);

/* A length of a name-value pair at p[*i] (end: the bytes there are):
 * 1 byte, or 4 with the high bit set.  0 (*i past it), -1 when cut. */
int	fcgirec_nv_length(const unsigned char *p, size_t end, size_t *i,
	    size_t *len);

/* The next pair of p[*i..end): 1 (name, value set), 0 at the end, -1 when
 * a length runs past the data. */
int	fcgirec_nv_pair(const unsigned char *p, size_t end, size_t *i,
	    const unsigned char **name, size_t *nlen,
	    const unsigned char **value, size_t *vlen);

/* Bytes the pair (nlen, vlen) takes encoded. */
size_t	fcgirec_nv_size(size_t nlen, size_t vlen);

/* Encode the pair at p (fcgirec_nv_size() bytes there); returns past it.
 * Lengths must be < 2^31. */
unsigned char *fcgirec_nv_put(unsigned char *p, const void *name,
	    size_t nlen, const void *value, size_t vlen);

#endif /* FCGIQ_FCGIREC_H */
