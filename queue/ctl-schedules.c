/*
 * ctl-schedules: fcgiqctl schedules.  The times come from the
 * configuration (cron, zone) and the schedules table (last slot); the next
 * run is the first slot after both now and the last slot, as the helper
 * computes it, in the zone's wall-clock time and in UTC.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "config.h"
#include "ctl-schedules.h"
#include "schedule.h"
#include "store.h"
#include "text.h"

static const char *const catch_up_names[] = { "last", "none", "all" };

int
ctl_schedules(const struct config *c, struct store *s, int json)
{
	const struct schedule_conf *sc;
	json_t *a = NULL;
	int64_t now = schedule_now(), last, next;
	char last_utc[40], next_utc[40], next_local[64], *out;
	size_t i;
	int has, hn;

	if (json)
		a = json_array();
	else
		printf("%-20s %-12s %-16s %-16s %-24s %-24s %s\n", "NAME",
		    "QUEUE", "CRON", "TIMEZONE", "LAST SLOT (UTC)",
		    "NEXT RUN (UTC)", "NEXT RUN (LOCAL)");
	for (i = 0; i < c->schedules.n; i++) {
		sc = &c->schedules.v[i];
		if ((has = store_schedule_last(s, sc->name, &last)) == -1) {
			fprintf(stderr, "fcgiqctl: schedules: %s\n",
			    store_error(s));
			json_decref(a);
			return 1;
		}
		hn = schedule_next(sc, has && last > now ? last : now, &next);
		snprintf(last_utc, sizeof(last_utc), "-");
		snprintf(next_utc, sizeof(next_utc), "-");
		snprintf(next_local, sizeof(next_local), "-");
		if (has)
			text_iso8601(last, last_utc, sizeof(last_utc));
		if (hn) {
			text_iso8601(next, next_utc, sizeof(next_utc));
			if (cron_tz_enter(sc->timezone) == 0) {
				cron_fmt_local(next, next_local,
				    sizeof(next_local));
				cron_tz_leave();
			}
		}
		if (json)
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,"
			    "s:s,s:o,s:o,s:o}", "name", sc->name,
			    "queue", sc->queue, "cron", sc->cron_text,
			    "timezone", sc->timezone != NULL ? sc->timezone :
			    "local", "catch_up", catch_up_names[sc->catch_up],
			    "last_slot", has ? json_string(last_utc) :
			    json_null(), "next_run", hn ?
			    json_string(next_utc) : json_null(),
			    "next_run_local", hn ? json_string(next_local) :
			    json_null()));
		else
			printf("%-20s %-12s %-16s %-16s %-24s %-24s %s\n",
			    sc->name, sc->queue, sc->cron_text,
			    sc->timezone != NULL ? sc->timezone : "local",
			    last_utc, next_utc, next_local);
	}
	if (json) {
		out = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (out != NULL) {
			puts(out);
			free(out);
		}
		json_decref(a);
	}
	return 0;
}
