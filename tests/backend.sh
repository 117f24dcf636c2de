# tests/backend.sh: the store under a suite, SQLite or PostgreSQL (sourced
# after tests/lib.sh).  One suite file serves both: FCGIQ_TEST_BACKEND=pg
# (what the tests/*/pg-*.sh wrappers set) runs it on a private PostgreSQL
# cluster (tests/pg-lib.sh); unset or sqlite, on a SQLite file as always.
#
#   BACKEND            sqlite or pg
#   SQL_CLIENT         the shell the suite needs: sqlite3 or psql
#   is_pg              true on PostgreSQL
#   backend_start FILE start the store: DB=FILE (the SQLite path; on
#                      PostgreSQL only a name), DATABASE the value for the
#                      configuration's `database` line
#   sql SQL            one statement on the queue, rows as "a|b" (sqlite3's
#                      and psql -A's default); SQL_TIMEOUT_MS bounds
#                      sqlite3's wait for a lock (5000)
#   as_text COLUMN     an expression: the blob COLUMN (body, result) as text
#   backend_exit       what lib.sh's EXIT trap does, and on PostgreSQL
#                      the cluster's stop: for suites with a trap of their own
#   sqlite_only WHAT   on PostgreSQL, a TAP comment naming checks left out
#                      because WHAT is SQLite's by design
#
# The SQL of a suite is the dialect both engines take (count(*), ||, CASE,
# comparisons); what differs goes through the functions above.
case ${FCGIQ_TEST_BACKEND:-sqlite} in
pg | postgresql)
	BACKEND=pg
	SQL_CLIENT=psql
	. "$top_srcdir/tests/pg-lib.sh"
	;;
sqlite)
	BACKEND=sqlite
	SQL_CLIENT=sqlite3
	;;
*)
	bail "FCGIQ_TEST_BACKEND=$FCGIQ_TEST_BACKEND: sqlite or pg"
	;;
esac
DATABASE=""

is_pg() { [ "$BACKEND" = pg ]; }

backend_start() {
	DB=$1
	if is_pg; then
		pg_start
		DATABASE=$PG_URI
		echo "# backend: PostgreSQL ($PG_URI)"
	else
		DATABASE=$DB
	fi
}

sql() {
	if is_pg; then
		pg_psql -c "$1"
	else
		sqlite3 -cmd ".timeout ${SQL_TIMEOUT_MS:-5000}" "$DB" "$1"
	fi
}

# bytea is printed in hex by psql; SQLite's CAST reads the bytes as text.
as_text() {
	if is_pg; then
		echo "convert_from($1, 'UTF8')"
	else
		echo "CAST($1 AS TEXT)"
	fi
}

backend_exit() {
	if is_pg; then
		_pg_exit
	else
		_cleanup
	fi
}

sqlite_only() {
	is_pg && echo "# SQLite-only, not checked on PostgreSQL: $1"
	return 0
}
