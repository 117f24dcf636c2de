/*
 * store-sqlite.h: the SQLite engine behind store.h, for the store's own
 * files and for tests and benchmarks that look beneath it.  Nothing above
 * the store (the responder, the helper, fcgiqctl) includes it.
 */
#ifndef FCGIQ_STORE_SQLITE_H
#define FCGIQ_STORE_SQLITE_H

#include <sqlite3.h>

#include "store.h"

/* The connection of s, for tests and benchmarks only. */
sqlite3	*store_db(struct store *s);

/*
 * Fault-injection seam for tests: every sqlite3_step() the store makes goes
 * through this pointer.  Leave it alone outside tests.
 */
extern int (*store_step_fn)(sqlite3_stmt *);

#endif /* FCGIQ_STORE_SQLITE_H */
