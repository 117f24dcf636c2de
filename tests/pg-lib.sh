# tests/pg-lib.sh: a private PostgreSQL cluster for a suite (sourced after
# tests/lib.sh).
#
#   pg_start          initdb into $T/pg, start it on a unix socket there
#                     (no TCP), create database fcgiq; sets PG_CONN (a libpq
#                     keyword string), PG_URI (the same as a URI), PG_DIR,
#                     PG_PID (the postmaster)
#   pg_psql SQL...    run SQL in psql on the test database (unaligned, no
#                     headers), print the rows
#   pg_restart_immediate   pg_ctl restart -m immediate (a crash and its
#                     recovery), PG_PID updated
#   pg_stop           pg_ctl stop -m fast; the EXIT trap calls it after
#                     stopping the suite's tracked processes, then SIGQUITs
#                     the postmaster by pid if it is still there
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# user "postgres" (Debian's package creates it) and runs as that user; as
# anyone else, as oneself.  The suite skips when the server's programs are
# missing (Debian's postgresql; tests/install-deps.sh installs it).

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
	for _d in /usr/lib/postgresql/*/bin; do
		[ -x "$_d/initdb" ] && PG_BIN=$_d
	done
fi
PG_DIR=""
PG_PID=""
PG_CONN=""
PG_URI=""

# Run a server program as the cluster's owner.
_pg_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
	    skip_all "PostgreSQL server programs not found (apt-get install postgresql)"
	command -v psql >/dev/null 2>&1 ||
	    skip_all "psql not found (apt-get install postgresql-client)"
	if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		skip_all "no user postgres to run the server as"
	fi
	PG_DIR=$T/pg
	mkdir -p "$PG_DIR"
	[ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
	chmod 755 "$PG_DIR"
	_pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U fcgiq -A trust \
	    --locale=C -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
	    bail "initdb failed: $(tail -5 "$PG_DIR/initdb.log")"
	_pg_ctl_start || bail "pg_ctl start failed: $(tail -5 "$PG_DIR/server.log")"
	PG_CONN="host=$PG_DIR user=fcgiq dbname=fcgiq"
	PG_URI="postgresql://fcgiq@/fcgiq?host=$PG_DIR"
	psql -X -q -h "$PG_DIR" -U fcgiq -d postgres \
	    -c 'CREATE DATABASE fcgiq' >/dev/null ||
	    bail "createdb failed"
	export PG_CONN PG_URI PG_DIR
}

_pg_ctl_start() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
	    -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=on -c max_connections=200" \
	    start >/dev/null || return 1
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
}

pg_psql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -U fcgiq -d fcgiq "$@"
}

pg_restart_immediate() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop \
	    >/dev/null 2>&1
	_pg_ctl_start
}

pg_stop() {
	local i
	[ -n "$PG_PID" ] || return 0
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 20 stop \
	    >/dev/null 2>&1
	if kill -0 "$PG_PID" 2>/dev/null; then
		kill -QUIT "$PG_PID" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$PG_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	PG_PID=""
}

# The EXIT trap: what the suite started goes first (its connections would
# hold a fast shutdown back no longer than it takes to end them, but a
# helper reconnecting meanwhile would log noise), then the cluster, then
# lib.sh's cleanup.
_pg_exit() {
	local p
	for p in $_tracked; do stop_pid "$p"; done
	_tracked=""
	pg_stop
	_cleanup
}
trap _pg_exit EXIT
