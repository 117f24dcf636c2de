# tests/e2e/apache-lib.sh: a private Apache 2.4 for the suites (sourced
# after tests/lib.sh).  Apache gets its own ServerRoot in $T/apache, a free
# port, its runtime files, pid file and logs there, and runs its children as
# www-data (it refuses to run them as root).  It is stopped by the pid in
# its pid file; mod_fcgid's processes are its children and go with it.

APACHE_MODULES=/usr/lib/apache2/modules

command -v apache2 >/dev/null || skip_all "apache2 not installed"
[ -d "$APACHE_MODULES" ] || skip_all "no $APACHE_MODULES"
id www-data >/dev/null 2>&1 || skip_all "no user www-data"
[ "$(id -u)" = 0 ] || skip_all "Apache's User www-data needs root"

# apache_fcgiq [FCGIQ LINES]: fcgiq as the shipped spawn-fcgi command line
# runs it (root dropping to www-data, two children, the socket belonging to
# www-data so Apache's children reach it), on $DB and $SOCK, queues default,
# mail and github, with FCGIQ LINES added to its [fcgiq] section.  Its
# stderr (its log) goes to $T/fcgiq.log: spawn-fcgi gives it /dev/null.
# Sets FCGIQ_PIDS; returns once it is ready.
apache_fcgiq() {
	local out p
	mkdir -p "$T/var" "$T/run" "$T/bin"
	chmod 755 "$T/run" "$T/bin"
	chown www-data: "$T/var"
	cp "$FCGIQ" "$T/bin/fcgiq"
	cat >"$T/fcgiq.conf" <<-EOF
	[fcgiq]
	database = $DB
	log      = info
	${1:-}

	[queue default]
	[queue mail]
	[queue github]
	EOF
	cat >"$T/bin/fcgiq-logged" <<-EOF
	#!/bin/sh
	exec "$T/bin/fcgiq" "\$@" 2>>"$T/fcgiq.log"
	EOF
	chmod 755 "$T/bin/fcgiq-logged"
	touch "$T/fcgiq.log" && chown www-data: "$T/fcgiq.log"
	out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf \
	    FCGIQ_BIN=$T/bin/fcgiq-logged FCGIQ_CHILDREN=2 \
	    FCGIQ_USER=www-data FCGIQ_ARGS=-W \
	    sh "$EX/spawn-fcgi.sh" 2>&1) || bail "spawn-fcgi failed: $out"
	FCGIQ_PIDS=$(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p')
	for p in $FCGIQ_PIDS; do track "$p"; done
	wait_for grep -q "ready:" "$T/fcgiq.log" ||
	    bail "fcgiq not ready: $(cat "$T/fcgiq.log")"
}

# apache_conf SITE MODULE...: $T/apache/apache.conf loading mpm_event,
# authz_core and MODULE..., including the file SITE.  Sets APACHE_PORT,
# APACHE_URL.
apache_conf() {
	local site=$1 m
	shift
	APACHE_PORT=$(free_port)
	APACHE_URL=http://127.0.0.1:$APACHE_PORT
	mkdir -p "$T/apache/run" "$T/apache/logs"
	chmod 755 "$T/apache" "$T/apache/run"
	{
		echo "ServerRoot \"$T/apache\""
		echo "ServerName localhost"
		echo "Listen 127.0.0.1:$APACHE_PORT"
		echo "DefaultRuntimeDir \"$T/apache/run\""
		echo "PidFile \"$T/apache/run/apache.pid\""
		echo "ErrorLog \"$T/apache/logs/error.log\""
		echo "LogLevel warn"
		echo "LogFormat \"%h %r %>s %b\" common"
		echo "CustomLog \"$T/apache/logs/access.log\" common"
		echo "User www-data"
		echo "Group www-data"
		echo "LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so"
		echo "LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so"
		for m in "$@"; do
			echo "LoadModule ${m}_module $APACHE_MODULES/mod_$m.so"
		done
		echo "DocumentRoot \"$T/apache/htdocs\""
		echo "<Directory />"
		echo "	Require all granted"
		echo "</Directory>"
		echo "Include \"$site\""
	} >"$T/apache/apache.conf"
	mkdir -p "$T/apache/htdocs"
}

# apache_start: check the configuration, start Apache, wait for its pid
# file and its port.  Sets APACHE_PID (tracked).
apache_start() {
	apache2 -f "$T/apache/apache.conf" -t >"$T/apache/configtest.log" 2>&1 ||
	    return 1
	# A port still held (a socket of a process that is exiting): again.
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		apache2 -f "$T/apache/apache.conf" -k start >"$T/apache/start.try" 2>&1 &&
		    break
		cat "$T/apache/start.try" >>"$T/apache/start.log"
		grep -q "Address already in use" "$T/apache/start.try" &&
		    [ "$i" -lt 10 ] || return 1
		sleep 1
	done
	cat "$T/apache/start.try" >>"$T/apache/start.log"
	wait_for test -s "$T/apache/run/apache.pid" || return 1
	APACHE_PID=$(cat "$T/apache/run/apache.pid")
	track "$APACHE_PID"
	wait_for curl -s -o /dev/null "$APACHE_URL/"
}

# apache_stop: SIGTERM to the pid in the pid file (the parent stops its
# children, mod_fcgid's process manager stops the FastCGI processes), and
# wait until it is gone.
apache_stop() {
	local i
	[ -n "${APACHE_PID:-}" ] || return 0
	kill -TERM "$APACHE_PID" 2>/dev/null
	for i in $(seq 300); do	# 30 s: a loaded machine
		kill -0 "$APACHE_PID" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$APACHE_PID" 2>/dev/null
}

# descendants PID: every process below PID, recursively.
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# procs_of PATH: pids of processes with PATH (a path unique to this run,
# under $T) as a word of their command line: the program, or the script
# an interpreter runs.  Found by what they run, never by name.
procs_of() {
	ps -e -o pid= -o args= |
	    awk -v p="$1" '{ for (i = 2; i <= NF; i++) if ($i == p) { print $1; next } }'
}
