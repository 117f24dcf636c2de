/*
 * dashboard: what a location with FCGIQ_ROLE dashboard serves: one page
 * (embedded: dashboard-assets.h) and the JSON it reads, under any
 * location prefix; and, where the location says FCGIQ_DASHBOARD_ACTIONS
 * on, the operator's actions, POSTs guarded against cross-site requests.
 */
#ifndef FCGIQ_DASHBOARD_H
#define FCGIQ_DASHBOARD_H

#include <stddef.h>

struct config_ref;
struct request;
struct wire;

/* Answer rq (parsed, checked, routed to REQ_ROUTE_DASHBOARD) on r for
 * cr's configuration.  Always answers; never fails. */
void	dashboard_serve(struct wire *r, const struct request *rq,
	    struct config_ref *cr);

/*
 * 1 when origin (the Origin header, NULL when absent) names the request's
 * own scheme, host and port (host: the Host header as the web server
 * passes it; when it has no port, port: SERVER_PORT, left out of an
 * Origin when it is the scheme's default), or, with no Origin, when
 * sec_fetch_site is "same-origin"; else 0.  Pure, for the unit tests.
 */
int	dashboard_same_origin(const char *origin, const char *sec_fetch_site,
	    const char *scheme, const char *host, const char *port);

/* The query parameter name of query ("a=1&b=2"), percent-decoded into
 * buf: 1 found, 0 absent, -1 too long or badly encoded. */
int	dashboard_query(const char *query, const char *name, char *buf,
	    size_t len);

#endif /* FCGIQ_DASHBOARD_H */
