/*
 * null-responder: the FastCGI ceiling for the intake benchmark.  It does
 * what fcgiq does on the wire — threads on FCGX_Accept_r, reads the whole
 * body, answers 202 with a Location and a small JSON body — and stores
 * nothing.  fcgiq's requests/s divided by this one's is the cost of
 * durability.
 *
 *   null-responder [-n THREADS]      (the socket is fd 0, as spawn-fcgi gives it)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

static void *
serve(void *arg)
{
	FCGX_Request req;
	char buf[16384];
	unsigned long n = 0;

	(void)arg;
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		return NULL;
	while (FCGX_Accept_r(&req) >= 0) {
		while (FCGX_GetStr(buf, sizeof(buf), req.in) > 0)
			;
		n++;
		FCGX_FPrintF(req.out, "Status: 202 Accepted\r\n"
		    "Content-Type: application/json\r\n"
		    "Location: /jobs/null%016lx\r\n\r\n"
		    "{\"id\":\"null%016lx\",\"queue\":\"default\","
		    "\"state\":\"queued\",\"status_url\":\"/jobs/null%016lx\"}\n",
		    n, n, n);
		FCGX_Finish_r(&req);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t *t;
	int i, n = 32, ch;

	while ((ch = getopt(argc, argv, "n:")) != -1) {
		if (ch == 'n' && atoi(optarg) > 0)
			n = atoi(optarg);
		else {
			fprintf(stderr, "usage: null-responder [-n threads]\n");
			return 2;
		}
	}
	if (FCGX_Init() != 0)
		return 1;
	if ((t = calloc((size_t)n, sizeof(*t))) == NULL)
		return 1;
	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, serve, NULL) != 0)
			return 1;
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}
