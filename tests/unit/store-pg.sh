#!/bin/bash
# tests/unit/store-pg.sh: the store's unit cases on PostgreSQL
# (tests/unit/test_store_pg) against a private cluster started here.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

prog=$top_builddir/tests/unit/test_store_pg
[ -x "$prog" ] || skip_all "test_store_pg not built (cmocka missing)"
pg_start
# test_pg_reprepare_restart restarts the server under a running store
# (pg_ctl restart -m immediate: a crash and its recovery).
as=""
[ "$(id -u)" = 0 ] && as="runuser -u postgres --"
cat >"$T/pg-restart" <<EOC
#!/bin/sh
exec $as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" \
    -m immediate -w -t 60 restart >/dev/null
EOC
chmod 755 "$T/pg-restart"
# cmocka speaks TAP here (CMOCKA_MESSAGE_OUTPUT, Makefile.am): its lines
# are this suite's; lib.sh's own count stays 0.
FCGIQ_TEST_PG=$PG_CONN FCGIQ_TEST_PG_RESTART=$T/pg-restart TMPDIR=$T "$prog"
rc=$?
# The postmaster the EXIT trap stops is the restarted one.
PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
[ $rc -eq 0 ] || _tap_failed=1
exit $rc
