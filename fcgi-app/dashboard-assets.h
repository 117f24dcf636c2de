/*
 * dashboard-assets: the dashboard's page, style sheet and script
 * (fcgi-app/dashboard/), embedded into the binary at build time by
 * fcgi-app/dashboard/embed.sh into dashboard-assets.c.
 */
#ifndef FCGIQ_DASHBOARD_ASSETS_H
#define FCGIQ_DASHBOARD_ASSETS_H

#include <stddef.h>

struct dash_asset {
	const char	*name;		/* "index.html", ... */
	const char	*type;		/* its Content-Type */
	const char	*data;		/* len bytes and a NUL */
	size_t		 len;
};

/* Ended by an entry whose name is NULL. */
extern const struct dash_asset dash_assets[];

#endif /* FCGIQ_DASHBOARD_ASSETS_H */
