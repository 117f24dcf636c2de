/*
 * fuzz.h: what the libFuzzer targets of tests/fuzz/ share.  An input is
 * decoded into C strings the way wire.c hands them to the handler: NUL
 * bytes separate them (a param holding one is refused before it gets
 * there).  INVARIANT() aborts with a message: libFuzzer records the input as a
 * crash, the same as a sanitizer report.
 */
#ifndef FCGIQ_FUZZ_H
#define FCGIQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVARIANT(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/*
 * Split data[0..size) at NUL bytes into at most max strings (copies, each
 * NUL-terminated) in a NULL-terminated malloc'd array; *rest and *restlen get
 * what follows the first empty string ("\0\0" ends the list) or the end.
 * Free with fuzz_strings_free.
 */
static inline char **
fuzz_strings(const uint8_t *data, size_t size, size_t max,
    const uint8_t **rest, size_t *restlen)
{
	char **v;
	size_t n = 0, i = 0, j;

	if ((v = calloc(max + 1, sizeof(*v))) == NULL)
		abort();
	*rest = data + size;
	*restlen = 0;
	while (i < size && n < max) {
		for (j = i; j < size && data[j] != '\0'; j++)
			;
		if (j == i) {		/* an empty string: the end */
			*rest = data + j + 1;
			*restlen = size - j - 1;
			return v;
		}
		if ((v[n] = malloc(j - i + 1)) == NULL)
			abort();
		memcpy(v[n], data + i, j - i);
		v[n][j - i] = '\0';
		n++;
		i = j + 1;
	}
	if (i < size) {
		*rest = data + i;
		*restlen = size - i;
	}
	return v;
}

static inline void
fuzz_strings_free(char **v)
{
	char **p;

	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/* A NUL-terminated copy of data (cut at its first NUL). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif /* FCGIQ_FUZZ_H */
