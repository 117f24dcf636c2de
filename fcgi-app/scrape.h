/*
 * scrape: what a location with FCGIQ_ROLE metrics serves: the Prometheus
 * exposition of the whole installation (gauges.c, expo.c).
 */
#ifndef FCGIQ_SCRAPE_H
#define FCGIQ_SCRAPE_H

struct config_ref;
struct wire;

/* Answer one scrape on r (GET, or HEAD when head_only) for cr's
 * configuration; the answer is 200, or 500 when out of memory. */
void	scrape_serve(struct wire *r, struct config_ref *cr, int head_only);

/* When the shared counts per state are due (metrics.h), claim them and
 * have them taken in the background; return at once either way. */
void	scrape_count_due(struct config_ref *cr);

/* Stop the counting thread, if one was started (at exit). */
void	scrape_stop(void);

#endif /* FCGIQ_SCRAPE_H */
