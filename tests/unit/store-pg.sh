#!/bin/bash
# tests/unit/store-pg.sh: the store's unit cases on PostgreSQL
# (tests/unit/test_store_pg) against a private cluster started here.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

prog=$top_builddir/tests/unit/test_store_pg
[ -x "$prog" ] || skip_all "test_store_pg not built (cmocka missing)"
pg_start
# cmocka speaks TAP here (CMOCKA_MESSAGE_OUTPUT, Makefile.am): its lines
# are this suite's; lib.sh's own count stays 0.
FCGIQ_TEST_PG=$PG_CONN TMPDIR=$T "$prog"
rc=$?
[ $rc -eq 0 ] || _tap_failed=1
exit $rc
