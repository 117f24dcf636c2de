/*
 * fuzz_verify: the signature header parsers and the dedupe key of
 * queue/verify.c over anything.  The first byte picks the scheme (and
 * whether the first string is a scheme spec for verify_parse and a dedupe
 * spec); then NUL-separated "NAME=value" params; the bytes after "\0\0" are
 * the body.  Invariants: verify_check returns one of its results, names a
 * header exactly when it refuses, never passes a request to a scheme with
 * no key, and when it passes a github request, the header's MAC is the
 * HMAC-SHA256 of the body as libcrypto's one-shot HMAC() computes it; a
 * dedupe key is 1-255 printable ASCII characters.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "text.h"
#include "verify.h"

static const char *const specs[] = {
	"github", "stripe", "standard-webhooks", "slack",
	"hmac-sha256:X-Sig:base64", "hmac-sha256:X-Sig:hex:sha256=",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char secret[] = "It's a Secret to Everybody";
	struct verify_spec sp, parsed;
	struct verify_dedupe d;
	struct verify_key key;
	const uint8_t *body;
	size_t blen, i;
	char **v, **envp, msg[256], buf[VERIFY_KEY_LEN];
	const char *h, *sig;
	unsigned char mac[32];
	unsigned int maclen = 0;
	enum verify_result r;
	int rc;

	if (size < 1)
		return 0;
	v = fuzz_strings(data + 1, size - 1, 32, &body, &blen);
	envp = v;
	if ((data[0] & 0x80) && v[0] != NULL) {
		rc = verify_parse(v[0], &parsed, msg, sizeof(msg));
		INVARIANT(rc == 0 || rc == -1);
		if (rc == 0 && parsed.scheme == VERIFY_HMAC)
			INVARIANT(parsed.header[0] != '\0' &&
			    strlen(parsed.header) < VERIFY_HEADER_MAX);
		rc = verify_dedupe_parse(v[0], &d, msg, sizeof(msg));
		INVARIANT(rc == 0 || rc == -1);
		if (rc == 0) {
			rc = verify_dedupe_key(&d, v + 1, body, blen, buf);
			INVARIANT(rc >= -1 && rc <= 1);
			if (rc == 1) {
				INVARIANT(strlen(buf) >= 1 &&
				    strlen(buf) < VERIFY_KEY_LEN);
				for (i = 0; buf[i] != '\0'; i++)
					INVARIANT((unsigned char)buf[i] > 0x20 &&
					    (unsigned char)buf[i] < 0x7f);
			}
		}
		envp = v + 1;
	}
	INVARIANT(verify_parse(specs[(data[0] & 0x7f) % 6], &sp, msg,
	    sizeof(msg)) == 0);
	if (sp.scheme == VERIFY_STDWEBHOOKS)
		rc = verify_key_make(&sp, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		    &key, msg, sizeof(msg));
	else
		rc = verify_key_make(&sp, secret, &key, msg, sizeof(msg));
	INVARIANT(rc == 0);

	r = verify_check(&sp, envp, body, blen, &key, 1, 1614265330, 300, &h);
	INVARIANT(r >= VERIFY_OK && r <= VERIFY_MISMATCH);
	INVARIANT((r == VERIFY_OK) == (h == NULL));
	INVARIANT(verify_reason(r)[0] != '?');
	/* No key: nothing passes. */
	INVARIANT(verify_check(&sp, envp, body, blen, &key, 0, 1614265330,
	    300, &h) != VERIFY_OK);
	if (r == VERIFY_OK && sp.scheme == VERIFY_GITHUB) {
		for (i = 0; envp[i] != NULL; i++)
			if (strncmp(envp[i], "HTTP_X_HUB_SIGNATURE_256=", 25) == 0)
				break;
		INVARIANT(envp[i] != NULL);
		sig = envp[i] + 25 + 7;
		INVARIANT(HMAC(EVP_sha256(), secret, sizeof(secret) - 1,
		    blen > 0 ? body : (const uint8_t *)"", blen, mac,
		    &maclen) != NULL && maclen == 32);
		for (i = 0; i < 32; i++)
			INVARIANT((text_hexval(sig[2 * i]) << 4 |
			    text_hexval(sig[2 * i + 1])) == mac[i]);
	}
	verify_key_free(&key);
	fuzz_strings_free(v);
	return 0;
}
