/*
 * fuzz_idempotency: req_header_param and req_idempotency_key over any
 * dedupe header name (FCGIQ_DEDUPE_HEADER) and params.  The first byte
 * says whether the first NUL-separated string is a dedupe header name; the
 * rest are "NAME=value" params.  Invariants: the param name is "HTTP_" +
 * the header upper-cased with - as _, refused for anything outside
 * A-Z a-z 0-9 - _ or too long; a key is accepted only when it is 1-255
 * printable ASCII characters, points into the value of the param a
 * reference lookup finds (the dedupe header first, else Idempotency-Key),
 * and is refused (-1) or absent (0) exactly when the reference says so.
 */
#include "fuzz.h"
#include "request.h"

static const char *
ref_param(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* The reference of req_header_param; 0 or -1. */
static int
ref_header_param(const char *h, char *buf, size_t len)
{
	size_t i, n = strlen(h);

	if (n == 0 || n + 6 > len)
		return -1;
	strcpy(buf, "HTTP_");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c >= 'a' && c <= 'z')
			buf[5 + i] = (char)(c - 32);
		else if (c == '-' || c == '_')
			buf[5 + i] = '_';
		else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			buf[5 + i] = (char)c;
		else
			return -1;
	}
	buf[5 + n] = '\0';
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t restlen, i;
	char **v, **envp, buf[128], ref[128];
	const char *dedupe = NULL, *key, *want = NULL;
	int rc, rrc, inside;

	if (size < 1)
		return 0;
	v = fuzz_strings(data + 1, size - 1, 64, &rest, &restlen);
	envp = v;
	if ((data[0] & 1) && v[0] != NULL) {
		dedupe = v[0];
		envp = v + 1;
	}
	if (dedupe != NULL) {
		rc = req_header_param(dedupe, buf, sizeof(buf));
		rrc = ref_header_param(dedupe, ref, sizeof(ref));
		INVARIANT(rc == rrc);
		if (rc == 0)
			INVARIANT(strcmp(buf, ref) == 0);
		if (rrc == 0)
			want = ref_param(envp, ref);
	}
	if (want == NULL)
		want = ref_param(envp, "HTTP_IDEMPOTENCY_KEY");

	key = (const char *)1;
	rc = req_idempotency_key(envp, dedupe, &key);
	INVARIANT(rc == 1 || rc == 0 || rc == -1);
	if (rc != 1)
		INVARIANT(key == NULL);
	if (want == NULL) {
		INVARIANT(rc == 0);
	} else {
		size_t n = strlen(want);
		int printable = n >= 1 && n <= REQ_MAX_KEY;

		for (i = 0; i < n && printable; i++)
			if ((unsigned char)want[i] < 0x21 ||
			    (unsigned char)want[i] > 0x7e)
				printable = 0;
		INVARIANT(rc == (printable ? 1 : -1));
		if (rc == 1) {
			INVARIANT(key == want);
			INVARIANT(strlen(key) >= 1 && strlen(key) <= REQ_MAX_KEY);
			inside = 0;
			for (i = 0; envp[i] != NULL; i++)
				if (key > envp[i] &&
				    key <= envp[i] + strlen(envp[i]))
					inside = 1;
			INVARIANT(inside);
		}
	}
	fuzz_strings_free(v);
	return 0;
}
