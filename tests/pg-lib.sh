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

# --- A primary and its synchronous streaming standby (the failover suite).
#
#   pg_pair_start     a primary in $T/pg1 and a standby in $T/pg2, each on
#                     its own unix socket directory and port (no TCP); the
#                     standby is a pg_basebackup -R of the primary, and the
#                     primary's synchronous_standby_names names it, so a
#                     COMMIT returns only once the standby has the WAL.
#                     Sets PG1_DIR, PG2_DIR, PG1_PORT, PG2_PORT, PG1_PID,
#                     PG2_PID and PG_PAIR_URI (a multi-host URI naming both,
#                     target_session_attrs=read-write); replaces the EXIT
#                     trap with one that stops both clusters
#   pg1_psql / pg2_psql SQL...   psql on the test database of either one
#   pg_kill_primary   kill -9 the primary's postmaster (by the pid in its
#                     postmaster.pid) and wait until it and the processes it
#                     had started are gone
#   pg_promote_standby   pg_ctl promote -w the standby
#
# The primary's synchronous_standby_names is set (ALTER SYSTEM) after the
# copy and once the standby streams: before, a COMMIT (CREATE DATABASE)
# would wait for a standby not there yet; and the standby, promoted, must
# not wait for one of its own.
PG1_DIR=""
PG2_DIR=""
PG1_PID=""
PG2_PID=""
PG1_PORT=""
PG2_PORT=""
PG_PAIR_URI=""
_pg1_children=""

# _pg_pair_ctl_start DIR PORT EXTRA-OPTIONS: start the cluster of DIR.
_pg_pair_ctl_start() {
	_pg_as "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
	    -o "-c listen_addresses='' -c unix_socket_directories='$1' -p $2 -c fsync=on -c max_connections=100 $3" \
	    start >/dev/null
}

pg_pair_start() {
	[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] &&
	    [ -x "$PG_BIN/pg_basebackup" ] ||
	    skip_all "PostgreSQL server programs not found (apt-get install postgresql)"
	command -v psql >/dev/null 2>&1 ||
	    skip_all "psql not found (apt-get install postgresql-client)"
	if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		skip_all "no user postgres to run the server as"
	fi
	trap _pg_pair_exit EXIT
	PG1_DIR=$T/pg1
	PG2_DIR=$T/pg2
	mkdir -p "$PG1_DIR" "$PG2_DIR"
	[ "$(id -u)" = 0 ] && chown postgres: "$PG1_DIR" "$PG2_DIR"
	chmod 755 "$PG1_DIR" "$PG2_DIR"
	PG1_PORT=$(free_port)
	PG2_PORT=$(free_port)
	_pg_as "$PG_BIN/initdb" -D "$PG1_DIR/data" -U fcgiq -A trust \
	    --locale=C -E UTF8 >"$PG1_DIR/initdb.log" 2>&1 ||
	    bail "initdb failed: $(tail -5 "$PG1_DIR/initdb.log")"
	_pg_pair_ctl_start "$PG1_DIR" "$PG1_PORT" "-c cluster_name=primary" ||
	    bail "pg_ctl start (primary) failed: $(tail -5 "$PG1_DIR/server.log")"
	PG1_PID=$(head -1 "$PG1_DIR/data/postmaster.pid")
	psql -X -q -h "$PG1_DIR" -p "$PG1_PORT" -U fcgiq -d postgres \
	    -c 'CREATE DATABASE fcgiq' >/dev/null || bail "createdb failed"
	_pg_as "$PG_BIN/pg_basebackup" -h "$PG1_DIR" -p "$PG1_PORT" -U fcgiq \
	    -D "$PG2_DIR/data" -R -X stream -c fast \
	    >"$PG2_DIR/basebackup.log" 2>&1 ||
	    bail "pg_basebackup failed: $(tail -5 "$PG2_DIR/basebackup.log")"
	# cluster_name is the standby's application_name at the primary.
	_pg_pair_ctl_start "$PG2_DIR" "$PG2_PORT" "-c cluster_name=standby" ||
	    bail "pg_ctl start (standby) failed: $(tail -5 "$PG2_DIR/server.log")"
	PG2_PID=$(head -1 "$PG2_DIR/data/postmaster.pid")
	wait_for _pg_streaming || bail "the standby does not stream: $(tail -5 "$PG2_DIR/server.log")"
	psql -X -q -h "$PG1_DIR" -p "$PG1_PORT" -U fcgiq -d postgres \
	    -c "ALTER SYSTEM SET synchronous_standby_names = 'standby'" \
	    -c 'SELECT pg_reload_conf()' >/dev/null ||
	    bail "synchronous_standby_names could not be set"
	PG_PAIR_URI="postgresql://fcgiq@/fcgiq?host=$PG1_DIR,$PG2_DIR&port=$PG1_PORT,$PG2_PORT&target_session_attrs=read-write"
	export PG_PAIR_URI
}

_pg_streaming() {
	[ "$(psql -X -q -A -t -h "$PG1_DIR" -p "$PG1_PORT" -U fcgiq -d postgres \
	    -c "SELECT state FROM pg_stat_replication
	    WHERE application_name = 'standby'")" = streaming ]
}

pg1_psql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG1_DIR" -p "$PG1_PORT" \
	    -U fcgiq -d fcgiq "$@"
}
pg2_psql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG2_DIR" -p "$PG2_PORT" \
	    -U fcgiq -d fcgiq "$@"
}

pg_kill_primary() {
	local i
	PG1_PID=$(head -1 "$PG1_DIR/data/postmaster.pid")
	# Its children are orphaned by the kill: they notice the postmaster's
	# death and exit by themselves; the suite waits for that.
	_pg1_children=$(ps -o pid= --ppid "$PG1_PID" 2>/dev/null)
	kill -9 "$PG1_PID" || return 1
	for i in $(seq 100); do
		kill -0 "$PG1_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$PG1_PID" 2>/dev/null && return 1
	PG1_PID=""
	return 0
}

# pg_primary_orphans: the killed primary's processes still running (pids).
pg_primary_orphans() {
	local p
	for p in $_pg1_children; do
		kill -0 "$p" 2>/dev/null && echo "$p"
	done
	return 0
}

pg_promote_standby() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG2_DIR/data" -w -t 60 promote >/dev/null
}

# _pg_pair_stop_one DIR PID: pg_ctl stop -m immediate, then SIGQUIT by pid.
_pg_pair_stop_one() {
	local i
	[ -n "$2" ] && kill -0 "$2" 2>/dev/null || return 0
	_pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w -t 20 stop \
	    >/dev/null 2>&1
	if kill -0 "$2" 2>/dev/null; then
		kill -QUIT "$2" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$2" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

# The EXIT trap of a pair: the suite's processes, both clusters, what is
# left of a killed primary (its orphans by pid; its System V shared memory
# segment, which a postmaster killed with -9 cannot remove), lib.sh's
# cleanup.
_pg_pair_exit() {
	local p shmid
	for p in $_tracked; do stop_pid "$p"; done
	_tracked=""
	_pg_pair_stop_one "$PG1_DIR" "$PG1_PID"
	_pg_pair_stop_one "$PG2_DIR" "$PG2_PID"
	for p in $(pg_primary_orphans); do kill -QUIT "$p" 2>/dev/null; done
	if [ -n "$_pg1_children" ] && [ -r "$PG1_DIR/data/postmaster.pid" ]; then
		shmid=$(sed -n '7p' "$PG1_DIR/data/postmaster.pid" |
		    awk '{ print $2 }')
		[ -n "$shmid" ] && ipcrm -m "$shmid" 2>/dev/null
	fi
	PG1_PID=""
	PG2_PID=""
	_cleanup
}
