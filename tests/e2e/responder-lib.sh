# tests/e2e/responder-lib.sh: helpers of the responder suites (sourced
# after tests/lib.sh).  fcgiq runs from conf-examples/spawn-fcgi.sh and
# nginx from conf-examples/nginx.conf, with the paths and the port of this
# run substituted, so the shipped examples are the tested ones.

FCGICLIENT="$top_builddir/tests/tools/fcgiclient"
EXAMPLES="$top_srcdir/conf-examples"
SOCK="$T/fcgiq.sock"
DB="$T/var/queue.db"

[ -x "$FCGIQ" ] || bail "no $FCGIQ: build first"
[ -x "$FCGICLIENT" ] || bail "no $FCGICLIENT: make check builds it"

# resp_conf [LINES]: $T/fcgiq.conf with the queues default, mail and github
# (plus LINES in [fcgiq]); log at debug.
resp_conf() {
	mkdir -p "$T/var"
	cat >"$T/fcgiq.conf" <<-EOF
	[fcgiq]
	database = $DB
	log = debug
	${1:-}

	[queue default]
	max_attempts = 3

	[queue mail]
	priority = 5

	[queue github]
	EOF
}

# A wrapper that keeps fcgiq's log (spawn-fcgi sends stderr to /dev/null);
# exec keeps the pid spawn-fcgi reports.
resp_wrapper() {
	cat >"$T/fcgiq-wrapper" <<-EOF
	#!/bin/sh
	exec "$FCGIQ" "\$@" 2>>"$T/fcgiq.log"
	EOF
	chmod 755 "$T/fcgiq-wrapper"
}

# resp_spawn [FCGIQ OPTIONS]: fcgiq through conf-examples/spawn-fcgi.sh,
# ${CHILDREN:-2} processes on $SOCK.  Sets FCGIQ_PIDS (tracked).
resp_spawn() {
	resp_wrapper
	FCGIQ_SOCKET="$SOCK" FCGIQ_CONF="$T/fcgiq.conf" \
	    FCGIQ_BIN="$T/fcgiq-wrapper" FCGIQ_CHILDREN="${CHILDREN:-2}" \
	    FCGIQ_ARGS="$*" sh "$EXAMPLES/spawn-fcgi.sh" >"$T/spawn.log" 2>&1 ||
	    return 1
	FCGIQ_PIDS=$(sed -n 's/.*PID: *\([0-9][0-9]*\).*/\1/p' "$T/spawn.log")
	[ -n "$FCGIQ_PIDS" ] || return 1
	local p
	for p in $FCGIQ_PIDS; do track "$p"; done
	wait_for grep -q "ready:" "$T/fcgiq.log"
}

# resp_nginx: nginx from conf-examples/nginx.conf, on a free port, as root
# (NOTES.md), with $T/extra-locations.conf (if any) added to the server.
# Sets BASE (http://127.0.0.1:PORT).  RESP_LISTEN=ADDR:PORT listens there
# instead (a second "host" on 127.0.0.2 and the first one's port).
resp_nginx() {
	local port addr=127.0.0.1 conf="$T/nginx/nginx.conf"
	port=$(free_port)
	if [ -n "${RESP_LISTEN:-}" ]; then
		addr=${RESP_LISTEN%:*}
		port=${RESP_LISTEN##*:}
	fi
	mkdir -p "$T/nginx/logs"
	cp /etc/nginx/fastcgi_params "$T/nginx/fastcgi_params"
	sed -e 's|^user .*;|user root;|' \
	    -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
	    -e "s|listen 127.0.0.1:8080;|listen $addr:$port;|" \
	    -e 's|access_log off;|access_log logs/access.log;|' \
	    -e "/# (more intake locations here)/r $T/extra-locations.conf" \
	    "$EXAMPLES/nginx.conf" >"$conf"
	grep -q "unix:$SOCK" "$conf" && grep -q "listen $addr:$port;" "$conf" ||
	    bail "conf-examples/nginx.conf no longer has the lines the test substitutes"
	start_nginx "$conf" || return 1
	BASE="http://$addr:$port"
	wait_for curl -s -o /dev/null "$BASE/"
}

# extra_location PATH QUEUE: an intake location for QUEUE (before nginx).
extra_location() {
	cat >>"$T/extra-locations.conf" <<-EOF
		location $1 {
			include fastcgi_params;
			fastcgi_param HTTP_PROXY "";
			fastcgi_param FCGIQ_QUEUE $2;
			fastcgi_pass fcgiq;
		}
	EOF
}

# req METHOD PATH [CURL ARGS]: a request to $BASE; headers to $T/h, body to
# $T/b, status in CODE.  hdr NAME: a header of that answer.
req() {
	local m=$1 u=$2
	shift 2
	if [ "$m" = HEAD ]; then
		curl -s -I -o "$T/h" "$@" "$BASE$u" >/dev/null
		: >"$T/b"
	else
		curl -s -X "$m" -D "$T/h" -o "$T/b" "$@" "$BASE$u"
	fi
	CODE=$(head -1 "$T/h" | cut -d' ' -f2)
}
hdr() { grep -i "^$1:" "$T/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# sql QUERY: one value (or rows) from the queue database.
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }

# fcgi ARGS...: the raw client on $SOCK.
fcgi() { "$FCGICLIENT" -s "$SOCK" "$@"; }

# json_field FILE KEY: a top-level string or number of a JSON answer.
json_field() {
	sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$1" | head -1
}

# alive PID: the process exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
	    grep -q '^Z'
}

# stop_all PIDS: SIGTERM each, then wait until all have exited (10 s).
# Prints how long it took, in ms.
stop_all() {
	local p t0 t1 i
	t0=$(date +%s%N)
	for p in "$@"; do kill "$p" 2>/dev/null; done
	for i in $(seq 200); do
		local alive=0
		for p in "$@"; do alive "$p" && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
