/*
 * top: the figures of `fcgiqctl top` and their frame.  A reading takes
 * what a scrape takes (the shared counts per state, the heads of line, the
 * helper's lock, every process's counters) plus each queue's pause; the
 * rates come from the counters' differences between readings, kept for a
 * minute.  Formatting is pure and every line fits the width it is given
 * (at most TOP_WIDTH), so a frame can be printed to a terminal or a pipe.
 */
#ifndef FCGIQ_TOP_H
#define FCGIQ_TOP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"

#define TOP_WIDTH	80	/* columns a frame never exceeds */
#define TOP_RING	64	/* readings kept: a minute and more at 1/s */
#define TOP_RATE_MS	60000	/* done and failed per minute: over this */
#define TOP_INTAKE_MS	10000	/* intake per second: over this */

struct config;
struct store;
struct top;

/* A new view of configuration c (borrowed for the view's life); NULL
 * when out of memory. */
struct top	*top_new(const struct config *c);
void		 top_free(struct top *t);

/*
 * Take a reading at wall time now (ms) from s and beside the database.
 * 0; -1 when the database could not be read (what it gave is kept and
 * the frame says why; the counters' rates go on).
 */
int	top_read(struct top *t, struct store *s, int64_t now);

/*
 * Append the frame of the latest reading to b: lines of at most width
 * columns (clamped to TOP_WIDTH), each ended by "\n", or by "\033[K\n"
 * when ansi (erase what an earlier, longer frame left).  0, or -1 when
 * out of memory.
 */
int	top_frame(const struct top *t, struct buf *b, int width, int ansi);

#endif /* FCGIQ_TOP_H */
