/*
 * scrape: serve the metrics role.  A scrape reads what is cheap on the
 * spot, on a status connection of dbpool (a WAL snapshot: intake never
 * waits for it): each queue's head of line, a probe or two of the claim
 * index; the counters are summed from the shared file.  The counts per
 * state cost time in proportion to the jobs kept (3 s at 10 M waiting
 * here), so a scrape never takes them itself: when they are due (metrics.h:
 * at most every 100 times their cost and every 10 s, installation-wide),
 * it claims them and wakes a thread of this module that counts on a
 * read-only connection of its own.  Meanwhile it answers with the last
 * counts moved on by the shared counters (gauges.c), fresh to the scrape
 * for what fcgiq's own processes did.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "dbpool.h"
#include "expo.h"
#include "gauges.h"
#include "log.h"
#include "metrics.h"
#include "scrape.h"
#include "store.h"
#include "wire.h"

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	pthread_t	 thread;
	int		 running;
	int		 stopping;
	struct config_ref *job;		/* counts to take, for this config */
	struct store	*s;		/* the counter's own, read-only */
} sc = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

/* Take one set of counts for cr on the counter's connection. */
static void
count_once(struct config_ref *cr)
{
	struct store_opts o;
	char err[256];

	if (sc.s == NULL) {
		memset(&o, 0, sizeof(o));
		o.readonly = 1;
		o.busy_timeout_ms = cr->c.busy_timeout_ms;
		if ((sc.s = store_open(cr->c.database, &o, err,
		    sizeof(err))) == NULL) {
			log_warnx("metrics: counts: %s", err);
			metrics_counts_drop();
			return;
		}
	}
	if (gauges_count_shared(sc.s, &cr->c) == -1) {
		log_warnx("metrics: counts: %s", store_error(sc.s));
		metrics_counts_drop();
	}
}

static void *
counter(void *arg)
{
	struct config_ref *cr;

	(void)arg;
	pthread_mutex_lock(&sc.lock);
	while (!sc.stopping) {
		if ((cr = sc.job) == NULL) {
			pthread_cond_wait(&sc.cond, &sc.lock);
			continue;
		}
		sc.job = NULL;
		pthread_mutex_unlock(&sc.lock);
		count_once(cr);
		config_unref(cr);
		pthread_mutex_lock(&sc.lock);
	}
	pthread_mutex_unlock(&sc.lock);
	return NULL;
}

/* Hand the claimed counts to the counter thread (started on first use). */
static void
count_later(struct config_ref *cr)
{
	pthread_mutex_lock(&sc.lock);
	if (!sc.running && !sc.stopping) {
		if (pthread_create(&sc.thread, NULL, counter, NULL) != 0) {
			pthread_mutex_unlock(&sc.lock);
			log_warnx("metrics: cannot start the counting thread");
			metrics_counts_drop();
			return;
		}
		sc.running = 1;
	}
	if (sc.job == NULL && !sc.stopping) {
		sc.job = config_ref(cr);
		pthread_cond_signal(&sc.cond);
	} else
		metrics_counts_drop();
	pthread_mutex_unlock(&sc.lock);
}

void
scrape_count_due(struct config_ref *cr)
{
	if (metrics_counts_claim(store_now()))
		count_later(cr);
}

void
scrape_serve(struct wire *r, struct config_ref *cr, int head_only)
{
	static const char oom[] = "Status: 500 Internal Server Error\r\n"
	    "Content-Type: text/plain\r\n\r\nout of memory\n";
	struct buf body;
	struct store *s;
	char head[256];
	int n, rc;

	scrape_count_due(cr);
	buf_init(&body, 0);
	s = dbpool_get();
	rc = gauges_render(&body, &cr->c, s, 0);
	dbpool_put(s);
	n = snprintf(head, sizeof(head), "Status: 200 OK\r\n"
	    "Content-Type: " EXPO_CONTENT_TYPE "\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n\r\n", body.len);
	if (rc == -1 || n < 0 || (size_t)n >= sizeof(head) ||
	    wire_put(r, head, (size_t)n) == -1 ||
	    (!head_only && body.len > 0 &&
	    wire_put(r, body.data, body.len) == -1))
		(void)wire_put(r, oom, sizeof(oom) - 1);
	buf_free(&body);
}

void
scrape_stop(void)
{
	struct config_ref *cr;
	int running;

	pthread_mutex_lock(&sc.lock);
	sc.stopping = 1;
	running = sc.running;
	pthread_cond_signal(&sc.cond);
	pthread_mutex_unlock(&sc.lock);
	if (running)
		pthread_join(sc.thread, NULL);
	pthread_mutex_lock(&sc.lock);
	cr = sc.job;
	sc.job = NULL;
	sc.running = 0;
	pthread_mutex_unlock(&sc.lock);
	if (cr != NULL) {
		metrics_counts_drop();
		config_unref(cr);
	}
	if (sc.s != NULL) {
		store_close(sc.s);
		sc.s = NULL;
	}
}
