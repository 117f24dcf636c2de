/*
 * fcgibuf: FastCGI records built in memory, for the test clients that
 * talk to a responder's socket (tests/tools/fcgiclient, the hostile
 * adversary, test_wire).  Out of memory ends the process: these are tests.
 */
#ifndef FCGIQ_TESTS_FCGIBUF_H
#define FCGIQ_TESTS_FCGIBUF_H

#include <stddef.h>
#include <stdint.h>

struct fcgibuf {
	unsigned char	*p;
	size_t		 len, cap;
};

void	fcgibuf_add(struct fcgibuf *, const void *, size_t);
void	fcgibuf_free(struct fcgibuf *);
/* A record header with any version, type, id and lengths. */
void	fcgibuf_header(struct fcgibuf *, int version, int type, int id,
	    size_t clen, int plen);
/* A version 1 record without padding; p may be NULL when n is 0. */
void	fcgibuf_record(struct fcgibuf *, int type, int id, const void *p,
	    size_t n);
/* A stream (params, stdin) in records of at most max bytes, then, when
 * end is set, the empty record that closes it. */
void	fcgibuf_stream(struct fcgibuf *, int type, int id, const void *p,
	    size_t n, size_t max, int end);
/* FCGI_BEGIN_REQUEST. */
void	fcgibuf_begin(struct fcgibuf *, int id, int role, int flags);
/* A name-value length: one byte under 128, else four. */
void	fcgibuf_nvlen(struct fcgibuf *, uint32_t);
/* One name-value pair; name and value may hold NUL bytes. */
void	fcgibuf_pair(struct fcgibuf *, const char *name, size_t nlen,
	    const char *value, size_t vlen);
void	fcgibuf_param(struct fcgibuf *, const char *name, const char *value);

#endif /* FCGIQ_TESTS_FCGIBUF_H */
