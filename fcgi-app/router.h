/*
 * router: one FastCGI request, from its params to its answer: intake
 * (enqueue through group commit), the status API and DELETE.  It
 * also holds the running configuration, which SIGHUP may replace while
 * requests are in flight (each request keeps the one it started with).
 */
#ifndef FCGIQ_ROUTER_H
#define FCGIQ_ROUTER_H

struct config;
struct wire;

/*
 * Make *c the running configuration (the router takes over its contents;
 * *c is left empty).  The previous one is freed once no request uses it.
 * 0, or -1 when out of memory (*c untouched).
 */
int	router_set_config(struct config *c);

/* Answer request r (wire_put; the server sends it with wire_end()), or
 * have the committer answer it: then r is detached and SERVER_DETACHED
 * returned, else 0. */
int	router_serve(struct wire *r);

/* Free the running configuration (at exit, no request in flight). */
void	router_free(void);

#endif /* FCGIQ_ROUTER_H */
