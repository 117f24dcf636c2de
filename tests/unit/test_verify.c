/*
 * test_verify: the signature schemes of queue/verify.c against the senders'
 * published vectors (GitHub's X-Hub-Signature-256 example, the Standard
 * Webhooks spec's, Slack's), Stripe's and Shopify's schemes over vectors
 * made with the openssl command line, and each way a request is refused:
 * a missing or malformed header, a stale timestamp, one byte changed, a
 * rotated-out secret.  Then each thread's copies of the keyed contexts:
 * reused, evicted, never standing in for a freed key.  Then the dedupe
 * sources and the key they give.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "verify.h"

/* A spec of scheme s, and its keys from secret lines. */
static struct verify_spec
spec_of(const char *s)
{
	struct verify_spec sp;
	char msg[256];

	assert_int_equal(verify_parse(s, &sp, msg, sizeof(msg)), 0);
	return sp;
}

static struct verify_key
key_of(const struct verify_spec *sp, const char *line)
{
	struct verify_key k;
	char msg[256];

	assert_int_equal(verify_key_make(sp, line, &k, msg, sizeof(msg)), 0);
	return k;
}

static enum verify_result
check(const struct verify_spec *sp, char **envp, const char *body,
    struct verify_key *keys, size_t nkeys, int64_t now, const char **h)
{
	return verify_check(sp, envp, body, strlen(body), keys, nkeys, now,
	    300, h);
}

/* GitHub's documented example: "Hello, World!" under "It's a Secret to
 * Everybody". */
static void
test_github(void **state)
{
	struct verify_spec sp = spec_of("github");
	struct verify_key k[2];
	const char *h;
	char *good[] = { "HTTP_X_HUB_SIGNATURE_256=sha256="
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	    NULL };
	char *upper[] = { "HTTP_X_HUB_SIGNATURE_256=sha256="
	    "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
	    NULL };
	char *none[] = { "HTTP_X_HUB_SIGNATURE=sha1=abc", NULL };
	char *shortsig[] = { "HTTP_X_HUB_SIGNATURE_256=sha256=7571", NULL };
	char *sha1[] = { "HTTP_X_HUB_SIGNATURE_256=sha1="
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	    NULL };

	(void)state;
	k[0] = key_of(&sp, "rotated out");
	k[1] = key_of(&sp, "It's a Secret to Everybody");
	assert_int_equal(check(&sp, good, "Hello, World!", k, 2, 0, &h),
	    VERIFY_OK);
	assert_null(h);
	assert_int_equal(check(&sp, upper, "Hello, World!", k, 2, 0, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, "Hello, World?", k, 2, 0, &h),
	    VERIFY_MISMATCH);
	assert_string_equal(h, "X-Hub-Signature-256");
	/* The right secret rotated out: nothing matches. */
	assert_int_equal(check(&sp, good, "Hello, World!", k, 1, 0, &h),
	    VERIFY_MISMATCH);
	assert_int_equal(check(&sp, none, "Hello, World!", k, 2, 0, &h),
	    VERIFY_MISSING);
	assert_string_equal(h, "X-Hub-Signature-256");
	assert_int_equal(check(&sp, shortsig, "Hello, World!", k, 2, 0, &h),
	    VERIFY_MALFORMED);
	assert_int_equal(check(&sp, sha1, "Hello, World!", k, 2, 0, &h),
	    VERIFY_MALFORMED);
	verify_key_free(&k[0]);
	verify_key_free(&k[1]);
}

static char *gh_good[] = { "HTTP_X_HUB_SIGNATURE_256=sha256="
    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    NULL };

/* A thread checking GitHub's example, good and changed, over and over on
 * the keys at arg (2: the right one second). */
static void *
mac_thread(void *arg)
{
	struct verify_spec sp = spec_of("github");
	struct verify_key *k = arg;
	const char *h;
	intptr_t bad = 0;
	int i;

	for (i = 0; i < 300; i++) {
		bad += check(&sp, gh_good, "Hello, World!", k, 2, 0, &h) !=
		    VERIFY_OK;
		bad += check(&sp, gh_good, "Hello, World?", k, 2, 0, &h) !=
		    VERIFY_MISMATCH;
	}
	return (void *)bad;
}

/*
 * A thread keeps a copy of each keyed context and re-initialises it per
 * check: a copy is reused after a match and after a mismatch, evicted
 * when a check has more secrets than copies, never taken for a key freed
 * since (a rotated secret, maybe at the same address), and each thread
 * has its own.
 */
static void
test_mac_copies(void **state)
{
	struct verify_spec sp = spec_of("github");
	struct verify_key k[20], two[2];
	pthread_t t[4];
	const char *h;
	char line[32];
	void *bad;
	int i, n;

	(void)state;
	k[0] = key_of(&sp, "It's a Secret to Everybody");
	for (n = 0; n < 3; n++) {
		assert_int_equal(check(&sp, gh_good, "Hello, World!", k, 1, 0,
		    &h), VERIFY_OK);
		assert_int_equal(check(&sp, gh_good, "Hello, World?", k, 1, 0,
		    &h), VERIFY_MISMATCH);
	}
	/* Rotated: the new secret's key must not find the old one's copy. */
	verify_key_free(&k[0]);
	k[0] = key_of(&sp, "Another secret, same length!");
	assert_int_equal(check(&sp, gh_good, "Hello, World!", k, 1, 0, &h),
	    VERIFY_MISMATCH);
	verify_key_free(&k[0]);
	/* More secrets than a thread keeps copies of, the right one last. */
	for (i = 0; i < 19; i++) {
		snprintf(line, sizeof(line), "old secret %d", i);
		k[i] = key_of(&sp, line);
	}
	k[19] = key_of(&sp, "It's a Secret to Everybody");
	for (n = 0; n < 3; n++) {
		assert_int_equal(check(&sp, gh_good, "Hello, World!", k, 20,
		    0, &h), VERIFY_OK);
		assert_int_equal(check(&sp, gh_good, "Hello, World!", k, 19,
		    0, &h), VERIFY_MISMATCH);
	}
	for (i = 0; i < 20; i++)
		verify_key_free(&k[i]);
	two[0] = key_of(&sp, "rotated out");
	two[1] = key_of(&sp, "It's a Secret to Everybody");
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mac_thread, two),
		    0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_null(bad);
	}
	verify_key_free(&two[0]);
	verify_key_free(&two[1]);
}

/* The Standard Webhooks spec's example. */
static void
test_stdwebhooks(void **state)
{
	struct verify_spec sp = spec_of("standard-webhooks");
	struct verify_key k;
	const char *h, *body = "{\"test\": 2432232314}";
	char *good[] = { "HTTP_WEBHOOK_ID=msg_p5jXN8AQM9LWM0D4loKWxJek",
	    "HTTP_WEBHOOK_TIMESTAMP=1614265330",
	    "HTTP_WEBHOOK_SIGNATURE=v1a,whatever "
	    "v1,Ceo5qEr07ixe2NLpvHk3FXgKwmDWm0qOaZ2ioFSATKA= "
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", NULL };
	char *noid[] = { "HTTP_WEBHOOK_TIMESTAMP=1614265330",
	    "HTTP_WEBHOOK_SIGNATURE=v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	    NULL };
	char *badb64[] = { "HTTP_WEBHOOK_ID=msg_p5jXN8AQM9LWM0D4loKWxJek",
	    "HTTP_WEBHOOK_TIMESTAMP=1614265330",
	    "HTTP_WEBHOOK_SIGNATURE=v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O=E",
	    NULL };
	char msg[128];
	struct verify_key bad;

	(void)state;
	k = key_of(&sp, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	assert_int_equal(k.len, 24);
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330 + 299, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330 + 301, &h),
	    VERIFY_STALE);
	assert_string_equal(h, "webhook-timestamp");
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330 - 301, &h),
	    VERIFY_STALE);
	assert_int_equal(check(&sp, good, "{\"test\": 2432232315}", &k, 1,
	    1614265330, &h), VERIFY_MISMATCH);
	assert_int_equal(check(&sp, noid, body, &k, 1, 1614265330, &h),
	    VERIFY_MISSING);
	assert_string_equal(h, "webhook-id");
	assert_int_equal(check(&sp, badb64, body, &k, 1, 1614265330, &h),
	    VERIFY_MALFORMED);
	/* A dot in the id would let one signature stand for another split
	 * of the signed text. */
	good[0] = "HTTP_WEBHOOK_ID=msg.1";
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330, &h),
	    VERIFY_MALFORMED);
	assert_string_equal(h, "webhook-id");
	good[0] = "HTTP_WEBHOOK_ID=msg_p5jXN8AQM9LWM0D4loKWxJek";
	verify_key_free(&k);
	/* The key without its prefix is the same key; not base64 is none. */
	k = key_of(&sp, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	assert_int_equal(check(&sp, good, body, &k, 1, 1614265330, &h),
	    VERIFY_OK);
	verify_key_free(&k);
	assert_int_equal(verify_key_make(&sp, "whsec_not base64!", &bad, msg,
	    sizeof(msg)), -1);
	assert_null(strstr(msg, "not base64!"));
}

/* Stripe's scheme: t=, any v1=, "<t>.<body>"; the vector is openssl's
 * (`printf '1492774577.{...}' | openssl dgst -sha256 -hmac whsec_test_secret`). */
static void
test_stripe(void **state)
{
	struct verify_spec sp = spec_of("stripe");
	struct verify_key k;
	const char *h, *body = "{\"id\":\"evt_test_webhook\",\"object\":\"event\"}";
	char *good[] = { "HTTP_STRIPE_SIGNATURE=t=1492774577,"
	    "v1=0000000000000000000000000000000000000000000000000000000000000000,"
	    "v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a,"
	    "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
	    NULL };
	char *not[] = { "HTTP_STRIPE_SIGNATURE=t=1492774577", NULL };
	char *garbage[] = { "HTTP_STRIPE_SIGNATURE=hello", NULL };
	char *twot[] = { "HTTP_STRIPE_SIGNATURE=t=1,t=1492774577,"
	    "v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a",
	    NULL };

	(void)state;
	k = key_of(&sp, "whsec_test_secret");
	assert_int_equal(check(&sp, good, body, &k, 1, 1492774577 + 10, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, body, &k, 1, 1492774577 + 3600, &h),
	    VERIFY_STALE);
	assert_string_equal(h, "Stripe-Signature");
	assert_int_equal(check(&sp, good, "{}", &k, 1, 1492774577, &h),
	    VERIFY_MISMATCH);
	assert_int_equal(check(&sp, not, body, &k, 1, 1492774577, &h),
	    VERIFY_MALFORMED);
	assert_int_equal(check(&sp, garbage, body, &k, 1, 1492774577, &h),
	    VERIFY_MALFORMED);
	assert_int_equal(check(&sp, twot, body, &k, 1, 1492774577, &h),
	    VERIFY_MALFORMED);
	verify_key_free(&k);
}

/* Slack's documented example. */
static void
test_slack(void **state)
{
	struct verify_spec sp = spec_of("slack");
	struct verify_key k;
	const char *h, *body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J"
	    "&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
	    "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
	    "&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
	    "T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
	    "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
	char *good[] = { "HTTP_X_SLACK_REQUEST_TIMESTAMP=1531420618",
	    "HTTP_X_SLACK_SIGNATURE=v0="
	    "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
	    NULL };

	(void)state;
	k = key_of(&sp, "8f742231b10e8888abcd99yyyzzz85a5");
	assert_int_equal(check(&sp, good, body, &k, 1, 1531420618, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, body, &k, 1, 1531420618 + 301, &h),
	    VERIFY_STALE);
	assert_string_equal(h, "X-Slack-Request-Timestamp");
	assert_int_equal(check(&sp, good + 1, body, &k, 1, 1531420618, &h),
	    VERIFY_MISSING);
	verify_key_free(&k);
}

/* The generic scheme, as Shopify uses it. */
static void
test_hmac(void **state)
{
	struct verify_spec sp = spec_of("hmac-sha256:X-Shopify-Hmac-Sha256:base64");
	struct verify_key k;
	const char *h;
	char *good[] = { "HTTP_X_SHOPIFY_HMAC_SHA256="
	    "xocA3LkeJ/RvNrkxep1EUtFHuj7rIoIqZYaLU26LyPQ=", NULL };
	char msg[256];
	struct verify_spec p;

	(void)state;
	assert_int_equal(sp.enc, VERIFY_BASE64);
	assert_string_equal(sp.header, "X-Shopify-Hmac-Sha256");
	k = key_of(&sp, "shpss_secret");
	assert_int_equal(check(&sp, good, "{\"id\":1}", &k, 1, 0, &h),
	    VERIFY_OK);
	assert_int_equal(check(&sp, good, "{\"id\":2}", &k, 1, 0, &h),
	    VERIFY_MISMATCH);
	assert_string_equal(h, "X-Shopify-Hmac-Sha256");
	verify_key_free(&k);

	p = spec_of("hmac-sha256:X-Sig:hex:sha256=");
	assert_int_equal(p.enc, VERIFY_HEX);
	assert_string_equal(p.prefix, "sha256=");
	p = spec_of("hmac-sha256:X-Sig:sha256=");
	assert_string_equal(p.prefix, "sha256=");
	p = spec_of("hmac-sha256:X-Sig");
	assert_string_equal(p.prefix, "");
	assert_int_equal(verify_parse("hmac-sha256:", &p, msg, sizeof(msg)), -1);
	assert_int_equal(verify_parse("hmac-sha256:X Y", &p, msg, sizeof(msg)),
	    -1);
	assert_int_equal(verify_parse("sha1", &p, msg, sizeof(msg)), -1);
	assert_int_equal(verify_parse("svix", &p, msg, sizeof(msg)), 0);
	assert_int_equal(p.scheme, VERIFY_STDWEBHOOKS);
}

static void
test_dedupe(void **state)
{
	struct verify_dedupe d;
	char buf[VERIFY_KEY_LEN], msg[256];
	char *envp[] = { "HTTP_X_GITHUB_DELIVERY=72d3162e-cc78-11e3-81ab-4c9367dc0958",
	    "HTTP_WEBHOOK_ID=msg 1", NULL };
	const char *body = "{\"id\":\"evt_1\",\"data\":{\"a/b\":[7,{\"~k\":\"x\"}]}}";

	(void)state;
	verify_dedupe_default(VERIFY_GITHUB, &d);
	assert_int_equal(verify_dedupe_key(&d, envp, NULL, 0, buf), 1);
	assert_string_equal(buf, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	verify_dedupe_default(VERIFY_STDWEBHOOKS, &d);
	assert_int_equal(verify_dedupe_key(&d, envp, NULL, 0, buf), -1);
	verify_dedupe_default(VERIFY_STRIPE, &d);
	assert_int_equal(verify_dedupe_key(&d, envp, body, strlen(body), buf),
	    1);
	assert_string_equal(buf, "evt_1");
	assert_int_equal(verify_dedupe_key(&d, envp, "not json", 8, buf), 0);
	assert_int_equal(verify_dedupe_parse("json:/data/a~1b/1/~0k", &d, msg,
	    sizeof(msg)), 0);
	assert_int_equal(verify_dedupe_key(&d, envp, body, strlen(body), buf),
	    1);
	assert_string_equal(buf, "x");
	assert_int_equal(verify_dedupe_parse("json:/data/a~1b/0", &d, msg,
	    sizeof(msg)), 0);
	assert_int_equal(verify_dedupe_key(&d, envp, body, strlen(body), buf),
	    1);
	assert_string_equal(buf, "7");
	assert_int_equal(verify_dedupe_parse("json:/data/nope", &d, msg,
	    sizeof(msg)), 0);
	assert_int_equal(verify_dedupe_key(&d, envp, body, strlen(body), buf),
	    0);
	assert_int_equal(verify_dedupe_parse("header:X-Request-Id", &d, msg,
	    sizeof(msg)), 0);
	assert_int_equal(verify_dedupe_key(&d, envp, body, strlen(body), buf),
	    0);
	assert_int_equal(verify_dedupe_parse("json:id", &d, msg, sizeof(msg)),
	    -1);
	assert_int_equal(verify_dedupe_parse("cookie:x", &d, msg, sizeof(msg)),
	    -1);
	verify_dedupe_default(VERIFY_SLACK, &d);
	assert_int_equal(d.kind, VERIFY_DEDUPE_NONE);
}

/* query:NAME: the first parameter of that name, %XX decoded. */
static void
test_dedupe_query(void **state)
{
	struct verify_dedupe d;
	char buf[VERIFY_KEY_LEN], msg[256];
	char *envp[] = { "QUERY_STRING=repository=x&repo=acme%2Fweb&repo=2",
	    NULL };
	char *bad[] = { "QUERY_STRING=repo=a%2", NULL };
	char *sp[] = { "QUERY_STRING=repo=a%20b", NULL };
	char *none[] = { "HTTP_HOST=x", NULL };

	(void)state;
	assert_int_equal(verify_dedupe_parse("query:repo", &d, msg,
	    sizeof(msg)), 0);
	assert_int_equal(d.kind, VERIFY_DEDUPE_QUERY);
	assert_int_equal(verify_dedupe_key(&d, envp, NULL, 0, buf), 1);
	assert_string_equal(buf, "acme/web");
	assert_int_equal(verify_dedupe_key(&d, bad, NULL, 0, buf), -1);
	assert_int_equal(verify_dedupe_key(&d, sp, NULL, 0, buf), -1);
	assert_int_equal(verify_dedupe_key(&d, none, NULL, 0, buf), 0);
	assert_int_equal(verify_dedupe_parse("query:re po", &d, msg,
	    sizeof(msg)), -1);
	assert_int_equal(verify_dedupe_parse("query:", &d, msg,
	    sizeof(msg)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_github),
		cmocka_unit_test(test_mac_copies),
		cmocka_unit_test(test_stdwebhooks),
		cmocka_unit_test(test_stripe),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_hmac),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_dedupe_query),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
