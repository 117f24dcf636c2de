/*
 * fuzz_wire: the FastCGI reader and writer (fcgi-app/wire.c) over any byte
 * stream a peer can send.  The input goes into one end of a socket pair,
 * whose write side is then shut; fcgiq's side serves requests from the
 * other end until the stream ends or breaks, answering each.
 * Invariants: a request has a role of 1-3 and (no bad param) an envp of
 * NAME=value strings with non-empty names; a body is never longer than the input;
 * the stream ends (no request is made of nothing).
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <unistd.h>

#include "fuzz.h"
#include "wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire w;
	static int ready;
	struct timeval tv = { 0, 200000 };
	unsigned char buf[4096];
	size_t body, requests = 0;
	ssize_t n;
	char **e;
	int sv[2], rc;

	if (!ready) {
		INVARIANT(wire_init(&w, 1000, 4) == 0);
		ready = 1;
	}
	INVARIANT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	/* Answers pile up unread: a full buffer must fail, not hang. */
	setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	INVARIANT(write(sv[0], data, size) == (ssize_t)size || size == 0);
	shutdown(sv[0], SHUT_WR);
	wire_attach(&w, sv[1]);
	while ((rc = wire_next(&w, -1)) == 1) {
		INVARIANT(++requests <= size / 16);
		INVARIANT(w.role >= 1 && w.role <= 3);
		/* (A NUL or a name's '=' is flagged: the strings are off.) */
		for (e = w.envp; w.bad == WIRE_OK && *e != NULL; e++)
			INVARIANT((*e)[0] != '=' && strchr(*e, '=') != NULL);
		body = 0;
		while ((n = wire_read(&w, buf, sizeof(buf))) > 0)
			body += (size_t)n;
		INVARIANT(n == 0 || n == -1);
		INVARIANT(body <= size);
		INVARIANT(wire_put(&w, "Status: 204\r\n\r\n", 15) == 0);
		if (wire_end(&w, 1024) != 1)
			break;
	}
	INVARIANT(rc == 1 || rc == 0 || rc == -1);
	close(sv[0]);
	wire_close(&w);
	return 0;
}
