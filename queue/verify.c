/*
 * verify: check a webhook sender's signature over the raw body before
 * anything is stored, and find the sender's delivery id.  Every parser
 * here reads what a client sent, so each is bounded by the lengths it was
 * given and refuses rather than guesses: a header it cannot read is
 * VERIFY_MALFORMED, never a pass.  The MAC is HMAC-SHA256 from libcrypto
 * (EVP_MAC); a signature is decoded to bytes and compared with
 * CRYPTO_memcmp against the MAC of each secret in turn, so the time taken
 * says nothing about how much of a guess was right.  Nothing a caller
 * could log holds a secret or a whole signature.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "text.h"
#include "verify.h"

#define MAC_LEN		32		/* SHA-256 */
#define SIGS_MAX	16		/* signatures one header may offer */
#define TS_MAX		20		/* digits of a timestamp */

static const char *const scheme_names[] = {
	[VERIFY_NONE] = "none",
	[VERIFY_GITHUB] = "github",
	[VERIFY_STRIPE] = "stripe",
	[VERIFY_STDWEBHOOKS] = "standard-webhooks",
	[VERIFY_SLACK] = "slack",
	[VERIFY_HMAC] = "hmac-sha256",
};

const char *
verify_scheme_name(enum verify_scheme scheme)
{
	if ((size_t)scheme >= sizeof(scheme_names) / sizeof(scheme_names[0]))
		return "?";
	return scheme_names[scheme];
}

/* A header name as an HTTP header may be spelled: token characters. */
static int
header_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= VERIFY_HEADER_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return 0;
	return 1;
}

int
verify_parse(const char *s, struct verify_spec *out, char *msg, size_t len)
{
	const char *p, *colon;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (strcmp(s, "github") == 0)
		out->scheme = VERIFY_GITHUB;
	else if (strcmp(s, "stripe") == 0)
		out->scheme = VERIFY_STRIPE;
	else if (strcmp(s, "standard-webhooks") == 0 ||
	    strcmp(s, "svix") == 0)
		out->scheme = VERIFY_STDWEBHOOKS;
	else if (strcmp(s, "slack") == 0)
		out->scheme = VERIFY_SLACK;
	else if (strncmp(s, "hmac-sha256:", 12) == 0) {
		out->scheme = VERIFY_HMAC;
		p = s + 12;
		colon = strchr(p, ':');
		n = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (!header_name_ok(p, n)) {
			snprintf(msg, len, "hmac-sha256: a header name of "
			    "1-%d characters of A-Z a-z 0-9 - _ is needed",
			    VERIFY_HEADER_MAX - 1);
			return -1;
		}
		memcpy(out->header, p, n);
		out->header[n] = '\0';
		if (colon == NULL)
			return 0;
		p = colon + 1;
		if (strncmp(p, "hex", 3) == 0 && (p[3] == ':' || p[3] == '\0'))
			p += 3;
		else if (strncmp(p, "base64", 6) == 0 &&
		    (p[6] == ':' || p[6] == '\0')) {
			out->enc = VERIFY_BASE64;
			p += 6;
		} else
			p--;		/* no encoding: the prefix follows */
		if (*p == '\0')
			return 0;
		p++;
		if (strlen(p) >= VERIFY_PREFIX_MAX || *p == '\0' ||
		    strpbrk(p, " \t\r\n") != NULL) {
			snprintf(msg, len, "hmac-sha256: the prefix must be "
			    "1-%d characters without blanks",
			    VERIFY_PREFIX_MAX - 1);
			return -1;
		}
		strcpy(out->prefix, p);
	} else {
		snprintf(msg, len, "\"%s\": expected github, stripe, "
		    "standard-webhooks, slack or hmac-sha256:HEADER"
		    "[:hex|:base64][:PREFIX]", s);
		return -1;
	}
	return 0;
}

/*
 * Standard base64 of s (n bytes, padded to a multiple of 4) into out (at
 * least n / 4 * 3 bytes).  EVP_DecodeBlock neither checks the padding's
 * place nor leaves it out of the length it returns: both are done here.
 * The length, or -1.
 */
static int
b64_decode(const char *s, size_t n, unsigned char *out)
{
	size_t i, pad = 0;
	int r;

	if (n == 0 || n % 4 != 0 || n > 4 * 1024)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=') {
			if (i < n - 2)
				return -1;
			pad++;
		} else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/'))
			return -1;
	}
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad)
		return -1;
	return r - (int)pad;
}

/* Exactly 2 * MAC_LEN hex digits (either case) into mac: 0 or -1. */
static int
hex_mac(const char *s, size_t n, unsigned char mac[MAC_LEN])
{
	if (n != 2 * MAC_LEN)
		return -1;
	return text_hex_decode(s, n, mac);
}

/* A base64 MAC of exactly MAC_LEN bytes into mac: 0 or -1. */
static int
b64_mac(const char *s, size_t n, unsigned char mac[MAC_LEN])
{
	unsigned char buf[48];

	if (n != 44 || b64_decode(s, n, buf) != MAC_LEN)
		return -1;
	memcpy(mac, buf, MAC_LEN);
	return 0;
}

/* One piece of the signed text. */
struct iovec_c {
	const void	*p;
	size_t		 n;
};

/* libcrypto's HMAC, fetched once for every thread. */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/*
 * A new HMAC-SHA256 context keyed with key, or NULL.  Made once per secret
 * (verify_key_make): keying fetches SHA-256 by name from the provider
 * store, under its lock, and hashes the padded key; done per request it
 * cost three quarters of a check (bench/verify.sh's hmac contender).
 */
static EVP_MAC_CTX *
hmac_keyed(const struct verify_key *key)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;

	(void)pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg == NULL || (ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key->data, key->len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Each thread's own copies of the keyed contexts, by key id.  Copying a
 * keyed context per request (EVP_MAC_CTX_dup: a new HMAC context, three
 * digest contexts copied, a dozen allocations and frees) cost more than
 * the hash of a 512-byte body; a thread's copy, re-initialised with
 * EVP_MAC_init(ctx, NULL, 0, NULL), keeps its key, takes no lock and
 * allocates only what the digest copy does.  A copy is used by its own
 * thread only, so threads still share nothing that changes.  The id, not
 * the key's address, names the copy: a secret file read again (SIGHUP)
 * makes keys with new ids, and a copy of a freed key is never used again.
 * Nor is it kept: verify_key_free bumps a generation, and a thread that
 * sees it changed frees (and so cleanses) all its copies at its next
 * check, so a rotated-out secret's keyed state does not outlive it in
 * the threads that keep serving.
 */
#define MAC_SLOTS	8		/* copies a thread keeps */

struct mac_slot {
	uint64_t	 id;		/* 0: empty */
	EVP_MAC_CTX	*ctx;
};

struct mac_cache {
	struct mac_slot	 slot[MAC_SLOTS];
	unsigned int	 next;		/* the slot to evict next */
	uint64_t	 gen;		/* key_frees when last emptied */
};

static pthread_key_t mac_cache_key;
static int mac_cache_ok;
static pthread_once_t mac_cache_once = PTHREAD_ONCE_INIT;
static uint64_t key_ids;		/* the last id given */
static uint64_t key_frees;		/* keys freed so far */

/* Free (cleanse) every copy in c. */
static void
mac_cache_empty(struct mac_cache *c)
{
	size_t i;

	for (i = 0; i < MAC_SLOTS; i++) {
		EVP_MAC_CTX_free(c->slot[i].ctx);
		c->slot[i].ctx = NULL;
		c->slot[i].id = 0;
	}
}

static void
mac_cache_free(void *arg)
{
	mac_cache_empty(arg);
	free(arg);
}

static void
mac_cache_init(void)
{
	mac_cache_ok = pthread_key_create(&mac_cache_key, mac_cache_free) == 0;
}

/*
 * This thread's keyed context for key, ready for its first update (NULL
 * when there is none: no cache, out of memory, libcrypto failed).  Not
 * to be freed: the thread's cache owns it.
 */
static EVP_MAC_CTX *
mac_cached(const struct verify_key *key)
{
	struct mac_cache *c;
	struct mac_slot *sl = NULL;
	uint64_t gen;
	size_t i;

	(void)pthread_once(&mac_cache_once, mac_cache_init);
	if (!mac_cache_ok || key->id == 0)
		return NULL;
	if ((c = pthread_getspecific(mac_cache_key)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return NULL;
		if (pthread_setspecific(mac_cache_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	gen = __atomic_load_n(&key_frees, __ATOMIC_RELAXED);
	if (c->gen != gen) {
		mac_cache_empty(c);
		c->gen = gen;
	}
	for (i = 0; i < MAC_SLOTS; i++)
		if (c->slot[i].id == key->id) {
			sl = &c->slot[i];
			break;
		}
	if (sl == NULL) {
		sl = &c->slot[c->next];
		c->next = (c->next + 1) % MAC_SLOTS;
		EVP_MAC_CTX_free(sl->ctx);
		sl->id = 0;
		if ((sl->ctx = EVP_MAC_CTX_dup(key->mac)) == NULL)
			return NULL;
		sl->id = key->id;
		return sl->ctx;		/* fresh from a keyed context */
	}
	if (EVP_MAC_init(sl->ctx, NULL, 0, NULL) != 1) {
		EVP_MAC_CTX_free(sl->ctx);
		sl->ctx = NULL;
		sl->id = 0;
		return NULL;
	}
	return sl->ctx;
}

/*
 * HMAC-SHA256 with key over the concatenation of parts[0..n) into mac,
 * on this thread's copy of the key's keyed context (mac_cached), or a
 * context of its own when there is no copy.  0, or -1 when libcrypto
 * fails (then nothing matches).
 */
static int
hmac_parts(const struct verify_key *key, const struct iovec_c *parts,
    size_t n, unsigned char mac[MAC_LEN])
{
	EVP_MAC_CTX *ctx = NULL, *own = NULL;
	size_t i, outl = 0;
	int rc = -1;

	if (key->mac != NULL && (ctx = mac_cached(key)) == NULL)
		ctx = own = EVP_MAC_CTX_dup(key->mac);
	if (ctx == NULL)
		ctx = own = hmac_keyed(key);
	if (ctx == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (parts[i].n > 0 &&
		    EVP_MAC_update(ctx, parts[i].p, parts[i].n) != 1)
			goto done;
	if (EVP_MAC_final(ctx, mac, &outl, MAC_LEN) != 1 || outl != MAC_LEN)
		goto done;
	rc = 0;
done:
	EVP_MAC_CTX_free(own);
	return rc;
}

int
verify_key_make(const struct verify_spec *spec, const char *line,
    struct verify_key *key, char *msg, size_t len)
{
	size_t n = strlen(line);
	int r;

	key->data = NULL;
	key->len = 0;
	key->mac = NULL;
	key->id = __atomic_add_fetch(&key_ids, 1, __ATOMIC_RELAXED);
	if (n == 0 || n > VERIFY_KEY_MAX) {
		snprintf(msg, len, "a secret is 1-%d bytes", VERIFY_KEY_MAX);
		return -1;
	}
	if (spec->scheme == VERIFY_STDWEBHOOKS) {
		if (strncmp(line, "whsec_", 6) == 0) {
			line += 6;
			n -= 6;
		}
		if ((key->data = malloc(n / 4 * 3 + 3)) == NULL)
			goto nomem;
		if ((r = b64_decode(line, n, key->data)) <= 0) {
			free(key->data);
			key->data = NULL;
			snprintf(msg, len, "a standard-webhooks secret is "
			    "whsec_ and base64");
			return -1;
		}
		key->len = (size_t)r;
		/* NULL: each check keys its own context, as before. */
		key->mac = hmac_keyed(key);
		return 0;
	}
	if ((key->data = malloc(n)) == NULL)
		goto nomem;
	memcpy(key->data, line, n);
	key->len = n;
	key->mac = hmac_keyed(key);
	return 0;
nomem:
	snprintf(msg, len, "out of memory");
	return -1;
}

void
verify_key_free(struct verify_key *key)
{
	/* EVP_MAC_CTX_free cleanses the keyed state; each thread frees its
	 * copies at its next check (mac_cached). */
	if (key->id != 0)
		(void)__atomic_add_fetch(&key_frees, 1, __ATOMIC_RELAXED);
	EVP_MAC_CTX_free(key->mac);
	key->mac = NULL;
	if (key->data != NULL) {
		OPENSSL_cleanse(key->data, key->len);
		free(key->data);
	}
	key->data = NULL;
	key->len = 0;
	key->id = 0;
}

/* 1 when any of sigs[0..nsigs) is the MAC of parts under any key. */
static int
any_match(const struct verify_key *keys, size_t nkeys,
    const struct iovec_c *parts, size_t nparts,
    unsigned char (*sigs)[MAC_LEN], size_t nsigs)
{
	unsigned char mac[MAC_LEN];
	size_t k, i;
	int hit = 0;

	for (k = 0; k < nkeys; k++) {
		if (hmac_parts(&keys[k], parts, nparts, mac) == -1)
			continue;
		/* No early exit: every candidate costs the same. */
		for (i = 0; i < nsigs; i++)
			hit |= CRYPTO_memcmp(mac, sigs[i], MAC_LEN) == 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return hit;
}

/* The param of header h (an HTTP header name), or NULL. */
static const char *
header(char *const *envp, const char *h)
{
	char name[VERIFY_HEADER_MAX + 8];
	size_t n;

	if (envp == NULL || text_cgi_name(h, name, sizeof(name)) != 0)
		return NULL;
	n = strlen(name);
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* The value of environment variable name in envp, or NULL. */
static const char *
env_value(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp != NULL && *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* A timestamp of 1-TS_MAX digits into *t: 0 or -1. */
static int
parse_ts(const char *s, size_t n, int64_t *t)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > TS_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*t = v;
	return 0;
}

static int
stale(int64_t t, int64_t now, int64_t tolerance)
{
	/* Both ways: a timestamp from the future is no fresher. */
	return t > now ? t - now > tolerance : now - t > tolerance;
}

static enum verify_result
check_github(char *const *envp, const void *body, size_t len,
    const struct verify_key *keys, size_t nkeys, const char **hname)
{
	unsigned char sig[1][MAC_LEN];
	struct iovec_c parts[1] = { { body, len } };
	const char *v;

	*hname = "X-Hub-Signature-256";
	if ((v = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	if (strncmp(v, "sha256=", 7) != 0 ||
	    hex_mac(v + 7, strlen(v + 7), sig[0]) == -1)
		return VERIFY_MALFORMED;
	return any_match(keys, nkeys, parts, 1, sig, 1) ? VERIFY_OK :
	    VERIFY_MISMATCH;
}

static enum verify_result
check_stripe(char *const *envp, const void *body, size_t len,
    const struct verify_key *keys, size_t nkeys, int64_t now,
    int64_t tolerance, const char **hname)
{
	unsigned char sigs[SIGS_MAX][MAC_LEN];
	struct iovec_c parts[3];
	const char *v, *p, *end, *ts = NULL, *eq;
	size_t nsigs = 0, tslen = 0;
	int64_t t;

	*hname = "Stripe-Signature";
	if ((v = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	/* "t=...,v1=...,v1=...,v0=..." in any order; unknown ones skipped. */
	for (p = v; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = p + strcspn(p, ",");
		if ((eq = memchr(p, '=', (size_t)(end - p))) == NULL)
			return VERIFY_MALFORMED;
		if (eq - p == 1 && p[0] == 't') {
			if (ts != NULL)
				return VERIFY_MALFORMED;
			ts = eq + 1;
			tslen = (size_t)(end - ts);
		} else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
			if (nsigs == SIGS_MAX ||
			    hex_mac(eq + 1, (size_t)(end - eq - 1),
			    sigs[nsigs]) == -1)
				return VERIFY_MALFORMED;
			nsigs++;
		}
	}
	if (ts == NULL || nsigs == 0 || parse_ts(ts, tslen, &t) == -1)
		return VERIFY_MALFORMED;
	if (stale(t, now, tolerance))
		return VERIFY_STALE;
	parts[0].p = ts;
	parts[0].n = tslen;
	parts[1].p = ".";
	parts[1].n = 1;
	parts[2].p = body;
	parts[2].n = len;
	return any_match(keys, nkeys, parts, 3, sigs, nsigs) ? VERIFY_OK :
	    VERIFY_MISMATCH;
}

static enum verify_result
check_stdwebhooks(char *const *envp, const void *body, size_t len,
    const struct verify_key *keys, size_t nkeys, int64_t now,
    int64_t tolerance, const char **hname)
{
	unsigned char sigs[SIGS_MAX][MAC_LEN];
	struct iovec_c parts[5];
	const char *id, *ts, *v, *p, *end;
	size_t nsigs = 0, n;
	int64_t t;

	*hname = "webhook-id";
	if ((id = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	*hname = "webhook-timestamp";
	if ((ts = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	*hname = "webhook-signature";
	if ((v = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	/* The signed text is "<id>.<timestamp>.<body>": with a dot in the
	 * id, one signature could stand for another split of the same text
	 * (id "a.1", timestamp 2 for id "a", timestamp 1, body "2..."). */
	*hname = "webhook-id";
	if (*id == '\0' || strchr(id, '.') != NULL)
		return VERIFY_MALFORMED;
	*hname = "webhook-timestamp";
	if (parse_ts(ts, strlen(ts), &t) == -1)
		return VERIFY_MALFORMED;
	/* "v1,<b64> v1,<b64> v1a,<...>": only v1 is HMAC-SHA256. */
	*hname = "webhook-signature";
	for (p = v; *p != '\0'; p = end) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		end = p + strcspn(p, " ");
		n = (size_t)(end - p);
		if (n > 3 && strncmp(p, "v1,", 3) == 0) {
			if (nsigs == SIGS_MAX ||
			    b64_mac(p + 3, n - 3, sigs[nsigs]) == -1)
				return VERIFY_MALFORMED;
			nsigs++;
		} else if (memchr(p, ',', n) == NULL)
			return VERIFY_MALFORMED;
	}
	if (nsigs == 0)
		return VERIFY_MALFORMED;
	*hname = "webhook-timestamp";
	if (stale(t, now, tolerance))
		return VERIFY_STALE;
	*hname = "webhook-signature";
	parts[0].p = id;
	parts[0].n = strlen(id);
	parts[1].p = ".";
	parts[1].n = 1;
	parts[2].p = ts;
	parts[2].n = strlen(ts);
	parts[3].p = ".";
	parts[3].n = 1;
	parts[4].p = body;
	parts[4].n = len;
	return any_match(keys, nkeys, parts, 5, sigs, nsigs) ? VERIFY_OK :
	    VERIFY_MISMATCH;
}

static enum verify_result
check_slack(char *const *envp, const void *body, size_t len,
    const struct verify_key *keys, size_t nkeys, int64_t now,
    int64_t tolerance, const char **hname)
{
	unsigned char sig[1][MAC_LEN];
	struct iovec_c parts[4];
	const char *v, *ts;
	int64_t t;

	*hname = "X-Slack-Signature";
	if ((v = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	*hname = "X-Slack-Request-Timestamp";
	if ((ts = header(envp, *hname)) == NULL)
		return VERIFY_MISSING;
	if (parse_ts(ts, strlen(ts), &t) == -1)
		return VERIFY_MALFORMED;
	*hname = "X-Slack-Signature";
	if (strncmp(v, "v0=", 3) != 0 ||
	    hex_mac(v + 3, strlen(v + 3), sig[0]) == -1)
		return VERIFY_MALFORMED;
	*hname = "X-Slack-Request-Timestamp";
	if (stale(t, now, tolerance))
		return VERIFY_STALE;
	*hname = "X-Slack-Signature";
	parts[0].p = "v0:";
	parts[0].n = 3;
	parts[1].p = ts;
	parts[1].n = strlen(ts);
	parts[2].p = ":";
	parts[2].n = 1;
	parts[3].p = body;
	parts[3].n = len;
	return any_match(keys, nkeys, parts, 4, sig, 1) ? VERIFY_OK :
	    VERIFY_MISMATCH;
}

static enum verify_result
check_hmac(const struct verify_spec *spec, char *const *envp,
    const void *body, size_t len, const struct verify_key *keys,
    size_t nkeys, const char **hname)
{
	unsigned char sig[1][MAC_LEN];
	struct iovec_c parts[1] = { { body, len } };
	const char *v;
	size_t plen = strlen(spec->prefix);
	int r;

	*hname = spec->header;
	if ((v = header(envp, spec->header)) == NULL)
		return VERIFY_MISSING;
	if (strncmp(v, spec->prefix, plen) != 0)
		return VERIFY_MALFORMED;
	v += plen;
	r = spec->enc == VERIFY_HEX ? hex_mac(v, strlen(v), sig[0]) :
	    b64_mac(v, strlen(v), sig[0]);
	if (r == -1)
		return VERIFY_MALFORMED;
	return any_match(keys, nkeys, parts, 1, sig, 1) ? VERIFY_OK :
	    VERIFY_MISMATCH;
}

enum verify_result
verify_check(const struct verify_spec *spec, char *const *envp,
    const void *body, size_t len, const struct verify_key *keys,
    size_t nkeys, int64_t now_s, int64_t tolerance_s, const char **hname)
{
	enum verify_result r;

	*hname = NULL;
	if (body == NULL)
		len = 0;
	switch (spec->scheme) {
	case VERIFY_NONE:
		return VERIFY_OK;
	case VERIFY_GITHUB:
		r = check_github(envp, body, len, keys, nkeys, hname);
		break;
	case VERIFY_STRIPE:
		r = check_stripe(envp, body, len, keys, nkeys, now_s,
		    tolerance_s, hname);
		break;
	case VERIFY_STDWEBHOOKS:
		r = check_stdwebhooks(envp, body, len, keys, nkeys, now_s,
		    tolerance_s, hname);
		break;
	case VERIFY_SLACK:
		r = check_slack(envp, body, len, keys, nkeys, now_s,
		    tolerance_s, hname);
		break;
	case VERIFY_HMAC:
		r = check_hmac(spec, envp, body, len, keys, nkeys, hname);
		break;
	default:
		*hname = "?";
		return VERIFY_MISMATCH;
	}
	if (r == VERIFY_OK)
		*hname = NULL;
	return r;
}

const char *
verify_signature_header(const struct verify_spec *spec)
{
	switch (spec->scheme) {
	case VERIFY_GITHUB:
		return "X-Hub-Signature-256";
	case VERIFY_STRIPE:
		return "Stripe-Signature";
	case VERIFY_STDWEBHOOKS:
		return "webhook-signature";
	case VERIFY_SLACK:
		return "X-Slack-Signature";
	case VERIFY_HMAC:
		return spec->header;
	default:
		return NULL;
	}
}

const char *
verify_reason(enum verify_result r)
{
	switch (r) {
	case VERIFY_OK:
		return "ok";
	case VERIFY_MISSING:
		return "missing header";
	case VERIFY_MALFORMED:
		return "malformed header";
	case VERIFY_STALE:
		return "timestamp outside tolerance";
	case VERIFY_MISMATCH:
		return "no secret matched";
	}
	return "?";
}

int
verify_dedupe_parse(const char *s, struct verify_dedupe *out, char *msg,
    size_t len)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(s, "header:", 7) == 0) {
		s += 7;
		if (!header_name_ok(s, strlen(s))) {
			snprintf(msg, len, "header: a header name of 1-%d "
			    "characters of A-Z a-z 0-9 - _",
			    VERIFY_HEADER_MAX - 1);
			return -1;
		}
		out->kind = VERIFY_DEDUPE_HEADER;
	} else if (strncmp(s, "json:", 5) == 0) {
		s += 5;
		if (*s != '/' || strlen(s) >= sizeof(out->arg)) {
			snprintf(msg, len, "json: a JSON pointer (/a/b) of "
			    "at most %zu characters", sizeof(out->arg) - 1);
			return -1;
		}
		out->kind = VERIFY_DEDUPE_JSON;
	} else if (strncmp(s, "query:", 6) == 0) {
		s += 6;
		if (!header_name_ok(s, strlen(s))) {
			snprintf(msg, len, "query: a parameter name of 1-%d "
			    "characters of A-Z a-z 0-9 - _",
			    VERIFY_HEADER_MAX - 1);
			return -1;
		}
		out->kind = VERIFY_DEDUPE_QUERY;
	} else {
		snprintf(msg, len, "expected header:NAME, json:/pointer or "
		    "query:NAME");
		return -1;
	}
	strcpy(out->arg, s);
	return 0;
}

void
verify_dedupe_default(enum verify_scheme scheme, struct verify_dedupe *out)
{
	memset(out, 0, sizeof(*out));
	switch (scheme) {
	case VERIFY_GITHUB:
		out->kind = VERIFY_DEDUPE_HEADER;
		strcpy(out->arg, "X-GitHub-Delivery");
		break;
	case VERIFY_STDWEBHOOKS:
		out->kind = VERIFY_DEDUPE_HEADER;
		strcpy(out->arg, "webhook-id");
		break;
	case VERIFY_STRIPE:
		out->kind = VERIFY_DEDUPE_JSON;
		strcpy(out->arg, "/id");
		break;
	default:
		break;
	}
}

/* The value at RFC 6901 pointer p in root (borrowed), or NULL. */
static json_t *
json_at(json_t *root, const char *p)
{
	char tok[VERIFY_KEY_LEN];
	const char *end;
	size_t i, k;
	json_t *cur = root;

	while (*p == '/' && cur != NULL) {
		p++;
		end = p + strcspn(p, "/");
		for (i = 0, k = 0; p + i < end; i++) {
			if (p[i] == '~') {
				if (p + i + 1 >= end ||
				    (p[i + 1] != '0' && p[i + 1] != '1'))
					return NULL;
				tok[k++] = p[i + 1] == '0' ? '~' : '/';
				i++;
			} else
				tok[k++] = p[i];
		}
		tok[k] = '\0';
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur)) {
			char *e;
			unsigned long idx;

			if (k == 0 || (k > 1 && tok[0] == '0') ||
			    !isdigit((unsigned char)tok[0]))
				return NULL;
			errno = 0;
			idx = strtoul(tok, &e, 10);
			if (errno != 0 || *e != '\0')
				return NULL;
			cur = json_array_get(cur, idx);
		} else
			return NULL;
		p = end;
	}
	return cur;
}

/* s as a key into buf: 1, or -1 when not 1-255 printable ASCII. */
static int
key_copy(const char *s, char *buf)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= VERIFY_KEY_LEN)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return -1;
	memcpy(buf, s, n + 1);
	return 1;
}

/*
 * The first parameter name of query string q as a key into buf: 1; 0 when
 * there is none; -1 when its value is not a key (key_copy), or has a bad
 * %XX.  '+' stays '+': a key holds no space either way.
 */
static int
query_key(const char *q, const char *name, char *buf)
{
	char val[VERIFY_KEY_LEN];
	size_t n = strlen(name), k;
	const char *p, *end;
	int hi, lo;

	for (p = q; p != NULL && *p != '\0'; p = *end == '&' ? end + 1 : NULL) {
		end = p + strcspn(p, "&");
		if ((size_t)(end - p) <= n || strncmp(p, name, n) != 0 ||
		    p[n] != '=')
			continue;
		for (p += n + 1, k = 0; p < end; p++) {
			if (k + 1 >= sizeof(val))
				return -1;
			if (*p != '%') {
				val[k++] = *p;
				continue;
			}
			if (end - p < 3 ||
			    (hi = text_hexval((unsigned char)p[1])) == -1 ||
			    (lo = text_hexval((unsigned char)p[2])) == -1)
				return -1;
			val[k++] = (char)(hi << 4 | lo);
			p += 2;
		}
		val[k] = '\0';
		return key_copy(val, buf);
	}
	return 0;
}

int
verify_dedupe_key(const struct verify_dedupe *d, char *const *envp,
    const void *body, size_t len, char *buf)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *s;
	int rc = 0;

	buf[0] = '\0';
	switch (d->kind) {
	case VERIFY_DEDUPE_HEADER:
		if ((s = header(envp, d->arg)) == NULL)
			return 0;
		return key_copy(s, buf);
	case VERIFY_DEDUPE_JSON:
		if (body == NULL || len == 0)
			return 0;
		root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		    &jerr);
		if (root == NULL)
			return 0;
		v = json_at(root, d->arg);
		if (json_is_string(v))
			rc = key_copy(json_string_value(v), buf);
		else if (json_is_integer(v)) {
			snprintf(buf, VERIFY_KEY_LEN, "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
			rc = 1;
		}
		json_decref(root);
		return rc;
	case VERIFY_DEDUPE_QUERY:
		if ((s = env_value(envp, "QUERY_STRING")) == NULL)
			return 0;
		return query_key(s, d->arg, buf);
	default:
		return 0;
	}
}
