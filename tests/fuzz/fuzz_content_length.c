/*
 * fuzz_content_length: req_content_length over any CONTENT_LENGTH value.
 * Invariants: 1 only for an empty value or "-1" (Caddy's "length unknown");
 * 0 only for a plain decimal number
 * of at most 63 bits, whose value is the one a reference parser finds and
 * which prints back as the same digits (leading zeros aside); -1 for
 * everything else; *len untouched unless 0.
 */
#include <inttypes.h>

#include "fuzz.h"
#include "request.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), back[32];
	const char *digits;
	unsigned __int128 ref = 0;
	uint64_t len = 0xdeadbeefULL;
	int rc, all_digits = 1;
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			all_digits = 0;
			break;
		}
		if (ref <= (unsigned __int128)UINT64_MAX * 10)
			ref = ref * 10 + (unsigned)(s[i] - '0');
	}
	rc = req_content_length(s, &len);
	INVARIANT(rc == 1 || rc == 0 || rc == -1);
	if (n == 0 || strcmp(s, "-1") == 0)
		INVARIANT(rc == 1);
	if (rc == 1)
		INVARIANT(n == 0 || strcmp(s, "-1") == 0);
	if (rc != 0)
		INVARIANT(len == 0xdeadbeefULL);
	if (n > 0 && all_digits && ref <= INT64_MAX) {
		INVARIANT(rc == 0);
		INVARIANT(len == (uint64_t)ref);
		snprintf(back, sizeof(back), "%" PRIu64, len);
		for (digits = s; digits[0] == '0' && digits[1] != '\0'; digits++)
			;
		INVARIANT(strcmp(back, digits) == 0);
	} else if (n > 0 && strcmp(s, "-1") != 0)
		INVARIANT(rc == -1);
	INVARIANT(req_content_length(NULL, &len) == 1);
	free(s);
	return 0;
}
