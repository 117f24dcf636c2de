/*
 * upstream: the verdict of an upstream's answer, Retry-After, the one-line
 * last_error and the once-a-minute "unreachable" gate, shared by the
 * fastcgi: and http: kinds (see upstream.h).  Nothing here blocks,
 * allocates or logs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "text.h"
#include "upstream.h"

enum upstream_verdict
upstream_verdict(int status)
{
	if (status >= 200 && status <= 299)
		return UPSTREAM_DONE;
	/* 408 Request Timeout, 425 Too Early and 429 Too Many Requests
	 * blame the moment, not the request. */
	if (status == 408 || status == 425 || status == 429)
		return UPSTREAM_RETRY;
	if (status >= 400 && status <= 499)
		return UPSTREAM_DEAD;
	return UPSTREAM_RETRY;
}

/* An HTTP-date (RFC 9110 5.6.7) into seconds since the epoch: 0, or -1. */
static int
http_date(const char *s, int64_t *secs)
{
	/* IMF-fixdate, then the obsolete RFC 850 and asctime() forms,
	 * which recipients must still accept.  The names are English
	 * whatever the locale: the helper never calls setlocale(). */
	static const char *const forms[] = {
		"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT",
		"%a %b %e %H:%M:%S %Y",
	};
	struct tm tm;
	const char *end;
	size_t i;
	time_t t;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, forms[i], &tm)) == NULL)
			continue;
		while (isspace((unsigned char)*end))
			end++;
		if (*end != '\0')
			continue;
		if ((t = timegm(&tm)) == (time_t)-1)
			return -1;
		*secs = (int64_t)t;
		return 0;
	}
	return -1;
}

int
upstream_retry_after(const char *value, int64_t now, int64_t cap_ms,
    int64_t *run_at)
{
	const char *p, *end;
	unsigned long long v;
	int64_t delay, secs;
	char *e;

	if (value == NULL)
		return 0;
	for (p = value; isspace((unsigned char)*p); p++)
		;
	if (cap_ms < 0)
		cap_ms = 0;
	if (isdigit((unsigned char)*p)) {
		errno = 0;
		v = strtoull(p, &e, 10);
		for (end = e; isspace((unsigned char)*end); end++)
			;
		if (*end != '\0')
			return 0;
		/* Too many seconds to count is more than any cap. */
		if (errno == ERANGE || v > (unsigned long long)cap_ms / 1000)
			delay = cap_ms;
		else
			delay = (int64_t)v * 1000;
	} else {
		if (http_date(p, &secs) == -1)
			return 0;
		if (secs > INT64_MAX / 1000 || secs * 1000 - now > cap_ms)
			delay = cap_ms;
		else
			delay = secs * 1000 - now;
		if (delay < 0)
			delay = 0;
	}
	*run_at = now + delay;
	return 1;
}

void
upstream_tail_add(struct exec_tail *t, const void *p, size_t n)
{
	const unsigned char *c = p;

	t->total += n;
	/* Only the last EXEC_TAIL bytes can stay. */
	if (n > EXEC_TAIL) {
		c += n - EXEC_TAIL;
		n = EXEC_TAIL;
	}
	while (n > 0) {
		size_t k = EXEC_TAIL - t->pos;

		if (k > n)
			k = n;
		memcpy(t->ring + t->pos, c, k);
		t->pos = (t->pos + k) % EXEC_TAIL;
		c += k;
		n -= k;
	}
}

/* Append s[0..n) to buf at *k, keeping room for the NUL: 0, -1 full. */
static int
put(char *buf, size_t len, size_t *k, const void *s, size_t n)
{
	if (*k + n >= len)
		return -1;
	memcpy(buf + *k, s, n);
	*k += n;
	return 0;
}

void
upstream_error_line(char *buf, size_t len, const char *reason,
    const struct exec_tail *t)
{
	unsigned char tail[UPSTREAM_TAIL_SHOWN];
	size_t n = 0, i, k = 0, start, cl;
	int blank = 0, cut;

	if (len == 0)
		return;
	buf[0] = '\0';
	/* The reason is ours, and plain: cut on a character boundary. */
	for (i = 0; reason[i] != '\0'; i += cl) {
		cl = text_utf8_char(reason + i, strlen(reason + i));
		if (cl == 0 || put(buf, len, &k, reason + i, cl) == -1)
			break;
	}
	buf[k] = '\0';
	if (t == NULL || t->total == 0)
		return;
	n = t->total < UPSTREAM_TAIL_SHOWN ? (size_t)t->total :
	    UPSTREAM_TAIL_SHOWN;
	start = (t->pos + EXEC_TAIL - n) % EXEC_TAIL;
	for (i = 0; i < n; i++)
		tail[i] = (unsigned char)t->ring[(start + i) % EXEC_TAIL];
	cut = t->total > n;
	i = 0;
	/* A cut tail starts mid-character, and mid-line: skip to the next
	 * character, and blanks. */
	if (cut)
		while (i < n && (tail[i] & 0xc0) == 0x80)
			i++;
	while (i < n && isspace(tail[i]))
		i++;
	while (n > i && isspace(tail[n - 1]))
		n--;
	if (i == n)
		return;
	if (put(buf, len, &k, ": ", 2) == -1 ||
	    (cut && put(buf, len, &k, "...", 3) == -1))
		goto out;
	while (i < n) {
		if (isspace(tail[i]) || tail[i] == '\r') {
			blank = 1;
			i++;
			continue;
		}
		if (blank && put(buf, len, &k, " ", 1) == -1)
			break;
		blank = 0;
		cl = text_utf8_char(tail + i, n - i);
		if (cl == 0 || (cl == 1 && (tail[i] < 0x20 || tail[i] == 0x7f))) {
			if (put(buf, len, &k, "?", 1) == -1)
				break;
			i++;
		} else {
			if (put(buf, len, &k, tail + i, cl) == -1)
				break;
			i += cl;
		}
	}
out:
	buf[k] = '\0';
}

int
upstream_gate_pass(struct upstream_gate *g, int64_t now, unsigned long *held)
{
	if (g->next != 0 && now < g->next) {
		g->held++;
		return 0;
	}
	*held = g->held;
	g->held = 0;
	g->next = now + UPSTREAM_GATE_MS;
	if (g->next == 0)
		g->next = 1;
	return 1;
}

void
upstream_gate_reset(struct upstream_gate *g)
{
	g->next = 0;
	g->held = 0;
}
