/*
 * fuzz_status_path: req_route and req_valid_id over any method, request
 * URI and status prefix (three NUL-separated strings; missing ones are
 * NULL, as an absent param is).  Invariants: a status route (GET, HEAD,
 * DELETE) only under the prefix, with the 30 (or, for an id of before the
 * time prefix, 22) characters after it, before any '?', a base64url id
 * that is exactly the one returned; a result route (GET, HEAD) likewise
 * with "/result" after the id; no other route
 * hands out an id; ENQUEUE only for POST PUT PATCH outside the prefix;
 * *allow set exactly for 405; req_valid_id agrees with a reference.
 */
#include "fuzz.h"
#include "request.h"

static int
ref_valid_id(const char *s)
{
	size_t i;

	if (strlen(s) != STORE_ID_LEN && strlen(s) != STORE_ID_LEN_V1)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_", s[i]) == NULL)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t restlen, plen;
	char **v, id[STORE_ID_LEN + 1];
	const char *method, *uri, *prefix, *allow, *m, *u, *q;
	enum req_route r;

	v = fuzz_strings(data, size, 3, &rest, &restlen);
	method = v[0];
	uri = v[0] != NULL ? v[1] : NULL;
	prefix = uri != NULL && v[2] != NULL ? v[2] : "/jobs/";
	memset(id, 'Z', sizeof(id));
	r = req_route(method, uri, prefix, id, &allow);
	m = method != NULL ? method : "";
	u = uri != NULL ? uri : "";
	plen = strlen(prefix);
	INVARIANT(strlen(id) <= STORE_ID_LEN);
	INVARIANT(req_valid_id(id) == ref_valid_id(id));
	switch (r) {
	case REQ_ROUTE_STATUS:
	case REQ_ROUTE_STATUS_HEAD:
	case REQ_ROUTE_CANCEL:
		INVARIANT(allow == NULL);
		INVARIANT(plen > 0 && strncmp(u, prefix, plen) == 0);
		INVARIANT(ref_valid_id(id));
		INVARIANT(memcmp(u + plen, id, strlen(id)) == 0);
		q = u + plen + strlen(id);
		INVARIANT(*q == '\0' || *q == '?');
		INVARIANT(strcmp(m, r == REQ_ROUTE_STATUS ? "GET" :
		    r == REQ_ROUTE_STATUS_HEAD ? "HEAD" : "DELETE") == 0);
		break;
	case REQ_ROUTE_RESULT:
	case REQ_ROUTE_RESULT_HEAD:
		INVARIANT(allow == NULL);
		INVARIANT(plen > 0 && strncmp(u, prefix, plen) == 0);
		INVARIANT(ref_valid_id(id));
		INVARIANT(memcmp(u + plen, id, strlen(id)) == 0);
		q = u + plen + strlen(id);
		INVARIANT(strncmp(q, "/result", 7) == 0);
		INVARIANT(q[7] == '\0' || q[7] == '?');
		INVARIANT(strcmp(m, r == REQ_ROUTE_RESULT ? "GET" : "HEAD") ==
		    0);
		break;
	case REQ_ROUTE_ENQUEUE:
		INVARIANT(allow == NULL && id[0] == '\0');
		INVARIANT(req_is_intake_method(m));
		INVARIANT(plen == 0 || strncmp(u, prefix, plen) != 0);
		break;
	case REQ_ROUTE_NO_JOB:
		INVARIANT(allow == NULL && id[0] == '\0');
		INVARIANT(plen > 0 && strncmp(u, prefix, plen) == 0);
		break;
	case REQ_ROUTE_BAD_METHOD:
		INVARIANT(allow != NULL && id[0] == '\0');
		INVARIANT(!req_is_intake_method(m) ||
		    (plen > 0 && strncmp(u, prefix, plen) == 0));
		break;
	default:
		INVARIANT(!"unknown route");
	}
	/* The id check on its own, over the whole input as one string. */
	{
		char *s = fuzz_cstr(data, size);

		INVARIANT(req_valid_id(s) == ref_valid_id(s));
		free(s);
	}
	fuzz_strings_free(v);
	return 0;
}
