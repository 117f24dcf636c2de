/*
 * text: the small text utilities every fcgiq program shares: UTF-8
 * checks, the CGI variable of an HTTP header, ISO-8601 times.  Pure
 * functions over their arguments, safe from any thread.
 */
#ifndef FCGIQ_TEXT_H
#define FCGIQ_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Length of the UTF-8 character at s (n > 0 bytes left): 1 to 4, or 0 when
 * the bytes there are not one (a stray continuation byte, an overlong
 * form, a surrogate, past U+10FFFF, cut short).  NUL counts as a 1-byte
 * character.
 */
size_t	text_utf8_char(const void *s, size_t n);

/* 1 when s (len bytes) is valid UTF-8 without NUL, else 0. */
int	text_utf8_valid(const void *s, size_t len);

/* A malloc'd copy of the string s with every byte that does not start a
 * valid character replaced by U+FFFD; NULL when out of memory. */
char	*text_utf8_sanitize(const char *s);

/*
 * The CGI variable of HTTP header name into buf (len bytes): "HTTP_", then
 * the name upper-cased with '-' as '_' ("X-GitHub-Delivery" ->
 * "HTTP_X_GITHUB_DELIVERY").  0; 1 when a character outside A-Z a-z 0-9
 * - _ was written as '_'; -1 when the name is empty or does not fit.
 */
int	text_cgi_name(const char *name, char *buf, size_t len);

/* The value of hex digit c (either case), or -1. */
int	text_hexval(int c);

/* Exactly n hex digits at s (either case) as n / 2 bytes into out: 0, or
 * -1 when n is odd or a character is not a hex digit. */
int	text_hex_decode(const char *s, size_t n, unsigned char *out);

/* ms since the epoch as "2025-05-20T12:34:56.789Z" (UTC) into buf (>= 32
 * bytes); the bare number when the time cannot be broken down. */
void	text_iso8601(int64_t ms, char *buf, size_t len);

/*
 * An RFC 3339 date-time ("2026-12-03T10:00:00Z", "...T10:00:00.5+01:00";
 * 'T' and 'Z' in either case) as ms since the epoch into *ms.  0, or -1
 * when s is anything else (a field out of range included).
 */
int	text_rfc3339(const char *s, int64_t *ms);

#endif /* FCGIQ_TEXT_H */
