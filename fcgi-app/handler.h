/*
 * handler: one FastCGI request, from its params to its answer: intake
 * (enqueue through the group committer), the status API and DELETE.  It
 * also holds the running configuration, which SIGHUP may replace while
 * requests are in flight (each request keeps the one it started with).
 */
#ifndef FCGIQ_HANDLER_H
#define FCGIQ_HANDLER_H

#include <fcgiapp.h>

struct config;

/*
 * Make *c the running configuration (the handler takes over its contents;
 * *c is left empty).  The previous one is freed once no request uses it.
 * 0, or -1 when out of memory (*c untouched).
 */
int	handler_set_config(struct config *c);

/* Answer request r.  Sets r->keepConnection to 0 when the connection is
 * not fit for another request (input left unread, stream broken). */
void	handler_serve(FCGX_Request *r);

/* Free the running configuration (at exit, no request in flight). */
void	handler_free(void);

#endif /* FCGIQ_HANDLER_H */
