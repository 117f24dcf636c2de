/*
 * verify: the webhook senders' signature schemes and the idempotency key a
 * sender's delivery id gives, as pure functions over (params, body,
 * secrets, now).  Nothing here touches the network, the database, a lock or
 * a global that is not set up once: the responder calls it per request,
 * the unit tests with the senders' published vectors, the fuzzers with
 * anything.
 *
 *   github              X-Hub-Signature-256: sha256=<hex>
 *   stripe              Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]
 *                       over "<t>.<body>"
 *   standard-webhooks   webhook-id, webhook-timestamp, webhook-signature:
 *                       "v1,<base64> ..." over "<id>.<timestamp>.<body>",
 *                       the key the base64 after "whsec_"
 *   slack               X-Slack-Signature: v0=<hex> over
 *                       "v0:<X-Slack-Request-Timestamp>:<body>"
 *   hmac-sha256:HEADER[:hex|:base64][:PREFIX]
 *                       HEADER: PREFIX + HMAC-SHA256(body) encoded
 */
#ifndef FCGIQ_VERIFY_H
#define FCGIQ_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define VERIFY_HEADER_MAX	64	/* a header name, NUL included */
#define VERIFY_PREFIX_MAX	32
#define VERIFY_KEY_MAX		1024	/* bytes of one secret */
#define VERIFY_KEY_LEN		256	/* longest idempotency key out */

enum verify_scheme {
	VERIFY_NONE = 0,
	VERIFY_GITHUB,
	VERIFY_STRIPE,
	VERIFY_STDWEBHOOKS,
	VERIFY_SLACK,
	VERIFY_HMAC
};

enum verify_enc {
	VERIFY_HEX = 0,
	VERIFY_BASE64
};

struct verify_spec {
	enum verify_scheme scheme;
	char		 header[VERIFY_HEADER_MAX];	/* hmac-sha256: */
	enum verify_enc	 enc;				/* hmac-sha256: */
	char		 prefix[VERIFY_PREFIX_MAX];	/* hmac-sha256: */
};

/* One secret, as the scheme uses it (standard-webhooks: decoded). */
struct verify_key {
	unsigned char	*data;
	size_t		 len;
	void		*mac;	/* libcrypto's HMAC keyed with data, or NULL */
	uint64_t	 id;	/* this key's own, never reused: names the
				   threads' copies of mac */
};

/* Why a request is refused, from the first check that failed. */
enum verify_result {
	VERIFY_OK = 0,
	VERIFY_MISSING,		/* a header the scheme needs is absent */
	VERIFY_MALFORMED,	/* present, not in the scheme's form */
	VERIFY_STALE,		/* the signed timestamp is outside tolerance */
	VERIFY_MISMATCH		/* well-formed, but no secret matched */
};

/*
 * "github", "stripe", "standard-webhooks", "slack" or
 * "hmac-sha256:HEADER[:hex|:base64][:PREFIX]" into *out.  0, or -1 with
 * the reason in msg.
 */
int	verify_parse(const char *s, struct verify_spec *out, char *msg,
	    size_t len);

/* The scheme's name as the configuration spells it. */
const char *verify_scheme_name(enum verify_scheme scheme);

/*
 * One line of a secret file as spec's scheme uses it into *key (data
 * malloc'd: verify_key_free): the bytes as they are, except for
 * standard-webhooks, where the base64 after an optional "whsec_" is
 * decoded.  0, or -1 with the reason in msg (never the secret).
 */
int	verify_key_make(const struct verify_spec *spec, const char *line,
	    struct verify_key *key, char *msg, size_t len);

/* Wipe and free key's data and its keyed HMAC context. */
void	verify_key_free(struct verify_key *key);

/*
 * Check the request whose params are envp ("NAME=value", NULL-terminated)
 * and body (len bytes) against spec with keys[0..nkeys) (any may match),
 * now and tolerance_s in seconds.  VERIFY_OK, or why not; *header is set
 * to the header name the failed check is about (static or spec's), NULL
 * for VERIFY_OK.  MACs are compared with CRYPTO_memcmp.
 */
enum verify_result verify_check(const struct verify_spec *spec,
	    char *const *envp, const void *body, size_t len,
	    const struct verify_key *keys, size_t nkeys, int64_t now_s,
	    int64_t tolerance_s, const char **header);

/* The header that carries spec's signature (a signature is never kept
 * whole: the rejected table keeps its start), or NULL. */
const char *verify_signature_header(const struct verify_spec *spec);

/* "missing header", "malformed header", "timestamp outside tolerance",
 * "no secret matched", for the 401's detail and the rejected table. */
const char *verify_reason(enum verify_result r);

/* Where a queue's idempotency key comes from. */
enum verify_dedupe_kind {
	VERIFY_DEDUPE_NONE = 0,
	VERIFY_DEDUPE_HEADER,		/* a request header */
	VERIFY_DEDUPE_JSON,		/* a JSON pointer into the body */
	VERIFY_DEDUPE_QUERY		/* a parameter of the query string */
};

struct verify_dedupe {
	enum verify_dedupe_kind kind;
	char		 arg[VERIFY_KEY_LEN];	/* the header, or the pointer */
};

/*
 * "header:NAME", "json:/pointer" (RFC 6901) or "query:NAME" into *out.
 * 0, or -1 with the reason in msg.
 */
int	verify_dedupe_parse(const char *s, struct verify_dedupe *out,
	    char *msg, size_t len);

/* The source a scheme implies: X-GitHub-Delivery, webhook-id, the body's
 * /id for stripe; kind VERIFY_DEDUPE_NONE for the others. */
void	verify_dedupe_default(enum verify_scheme scheme,
	    struct verify_dedupe *out);

/*
 * The idempotency key d finds in the request into buf (at least
 * VERIFY_KEY_LEN bytes): a header's value, the string or integer at the
 * pointer in a JSON body, or a query parameter's value (%XX decoded; the
 * first one of that name).  1: found; 0: absent (no such header or
 * parameter, a body that is not JSON or has nothing there); -1: found but
 * not 1-255 printable ASCII characters.
 */
int	verify_dedupe_key(const struct verify_dedupe *d, char *const *envp,
	    const void *body, size_t len, char *buf);

#endif /* FCGIQ_VERIFY_H */
