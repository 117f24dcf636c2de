/*
 * bench/sched-hook: the cost of the helper's schedules hook on a loop turn
 * with nothing due (the case of every turn but one a minute): the
 * configuration given (20 schedules, say) is loaded, the first turn fires
 * them all (as a helper's first turn does), then helper_schedules runs N
 * times.  Prints ns per call, to set against a loop turn's cost (a claim
 * transaction is tens of microseconds; see bench/storebench).
 *
 * Usage: bench/sched-hook CONFIG [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "helper-internal.h"
#include "log.h"
#include "store.h"

int
main(int argc, char **argv)
{
	struct helper h;
	struct config c;
	struct config_ref *r;
	char err[512];
	long i, n = argc > 2 ? atol(argv[2]) : 10000000;
	int64_t t0, t1;

	/* The first turn's fires are not the figure: keep them quiet. */
	log_init("sched-hook", LOG_LEVEL_WARN);
	if (argc < 2) {
		fprintf(stderr, "usage: sched-hook CONFIG [N]\n");
		return 2;
	}
	if (config_load(&c, argv[1], err, sizeof(err)) == -1) {
		fprintf(stderr, "sched-hook: %s\n", err);
		return 1;
	}
	memset(&h, 0, sizeof(h));
	if ((r = config_ref_new(&c)) == NULL)
		return 1;
	h.cfg = r;
	if ((h.store = store_open(r->c.database, NULL, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "sched-hook: %s\n", err);
		return 1;
	}
	helper_schedules(&h, mono_ms());	/* the first turn: fires */
	t0 = mono_us();
	for (i = 0; i < n; i++)
		helper_schedules(&h, mono_ms());
	t1 = mono_us();
	printf("sched-hook: %zu schedules, %ld calls: %.1f ns a call\n",
	    h.nsched, n, (double)(t1 - t0) * 1000 / (double)n);
	helper_schedules_free(&h);
	store_close(h.store);
	config_unref(r);
	return 0;
}
