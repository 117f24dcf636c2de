# bench/lib.sh — the plumbing every bench script repeated: sourced first
# (`. "$(dirname "$0")/lib.sh"`), it moves to the top of the tree and sets
# src and build (./build, or BUILD=dir).  What a script measures and
# prints stays in the script.  Nothing here is a test.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
src=$(pwd -P)
build=${BUILD:-$src/build}
pids=""

# bench_need CMD...: exits 1 unless every CMD is on the PATH.
bench_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "bench: $c missing"; exit 1; }
	done
}

# bench_built [TARGET...]: exits 1 unless $build/fcgiq is built, then
# brings the bench's own programs (make targets in $build) up to date.
bench_built() {
	[ -x "$build/fcgiq" ] ||
	    { echo "bench: no $build/fcgiq: build first"; exit 1; }
	[ $# -eq 0 ] || make -C "$build" -s "$@" >/dev/null || exit 1
}

# bench_scratch NAME: makes the scratch directory $B, and an EXIT trap
# that stops every pid in $pids and removes $B (kept with KEEP=1).
bench_scratch() {
	B=$(mktemp -d "${TMPDIR:-/tmp}/fcgiq-bench-$1.XXXXXX") || exit 1
	chmod 755 "$B"		# nginx's and PHP-FPM's workers read in it
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# bench_cleanup: the EXIT trap: TERM to $pids, KILL to what is left after
# 5 s, then $B removed or kept.
bench_cleanup() {
	local p i left
	for p in $pids; do kill "$p" 2>/dev/null; done
	for i in $(seq 50); do
		left=""
		for p in $pids; do kill -0 "$p" 2>/dev/null && left=1; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	[ -n "${KEEP:-}" ] && echo "bench: kept $B" || rm -rf "$B"
}

# bench_unpid PID: takes PID (stopped by the script itself) off $pids.
bench_unpid() {
	pids=$(echo " $pids " | sed "s/ $1 / /; s/^ *//; s/ *$//")
}

# bench_wait_sock PATH: waits up to 5 s for the unix socket PATH.
bench_wait_sock() {
	local i
	for i in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done
	return 1
}

# bench_fcgiq CONF SOCK: starts fcgiq -c CONF on SOCK in the background
# (stderr into $B/fcgiq.log), sets fpid, tracks it, waits for SOCK.
bench_fcgiq() {
	"$build/fcgiq" -c "$1" -s "$2" 2>>"$B/fcgiq.log" &
	fpid=$!
	pids="$pids $fpid"
	bench_wait_sock "$2"
}

# bench_php_fpm BIN CHILDREN: starts PHP-FPM (BIN) in the foreground, one
# static pool of CHILDREN on $B/fpm.sock (as root when we are root),
# tracks it and waits for the socket.
bench_php_fpm() {
	local root=
	[ "$(id -u)" = 0 ] && root=-R
	cat >"$B/php-fpm.conf" <<EOC
[global]
pid = $B/php-fpm.pid
error_log = $B/php-fpm.log
daemonize = no
[bench]
listen = $B/fpm.sock
pm = static
pm.max_children = $2
pm.max_requests = 0
clear_env = yes
$( [ -n "$root" ] && printf 'user = root\ngroup = root\n' )
EOC
	"$1" -F $root -y "$B/php-fpm.conf" 2>>"$B/php-fpm.log" &
	pids="$pids $!"
	bench_wait_sock "$B/fpm.sock"
}

# bench_pg: a private PostgreSQL cluster from the tests' own libraries:
# tests/lib.sh's scratch directory $T (as $B, readable by PHP-FPM's
# workers) and its EXIT trap, which stops what is tracked (track PID) and
# then the cluster (tests/pg-lib.sh: PG_DIR, PG_CONN, PG_URI).
bench_pg() {
	top_srcdir=$src top_builddir=$build
	. "$src/tests/lib.sh"
	. "$src/tests/pg-lib.sh"
	B=$T
	chmod 755 "$B"
	pg_start >/dev/null
}

# bench_pg_php_fpm CHILDREN: after bench_pg, Debian's PHP-FPM with a static
# pool of CHILDREN on $B/fpm.sock, tracked for bench_pg's EXIT trap.
bench_pg_php_fpm() {
	local fpm
	fpm=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -1)
	bench_need "$fpm"
	bench_php_fpm "$fpm" "$1"
	track "$(echo $pids | awk '{ print $NF }')"
	pids=""
}

# bench_nginx CONF: starts nginx on CONF (prefix $B/nginx, pid file and
# error log there; CONF names neither), tracks its master, or exits 1.
bench_nginx() {
	local i
	mkdir -p "$B/nginx/logs"
	nginx -p "$B/nginx" -c "$1" \
	    -g "pid $B/nginx.pid; error_log $B/nginx/logs/error.log;" ||
	    { echo "bench: nginx did not start"; exit 1; }
	for i in $(seq 50); do [ -s "$B/nginx.pid" ] && break; sleep 0.1; done
	pids="$pids $(cat "$B/nginx.pid")"
}

# bench_nginx_fcgiq: starts nginx on 127.0.0.1:$port passing to fcgiq on
# $B/fcgiq.sock (32 kept connections), the server's locations read from
# stdin.
bench_nginx_fcgiq() {
	{
		cat <<EOC
user root;
worker_processes 1;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_buffer_size 16k;
	upstream fcgiq { server unix:$B/fcgiq.sock; keepalive 32; }
	server {
		listen 127.0.0.1:$port backlog=4096;
EOC
		cat
		printf '\t}\n}\n'
	} >"$B/nginx.conf"
	bench_nginx "$B/nginx.conf"
}

# wrk_run URL CONC OUT LUA [ARG...]: wrk -t2 for $dur s, its report into
# OUT, prints the requests/s (ARGs go to the LUA script).
wrk_run() {
	local url=$1 conc=$2 out=$3 lua=$4
	shift 4
	wrk -t2 -c"$conc" -d"${dur}s" --latency -s "$lua" "$url" \
	    ${1+-- "$@"} >"$out" 2>&1
	awk '/^Requests\/sec:/ { print $2 }' "$out"
}

# to_ms VALUE [DIGITS]: a wrk latency (850.00us, 1.20ms, 2.00s) in ms,
# DIGITS (2) after the point.
to_ms() {
	awk -v v="$1" -v d="${2:-2}" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000;
	    else if (v ~ /ms$/) ; else if (v ~ /s$/) n *= 1000; printf "%.*f", d, n }'
}

# median [DIGITS]: the median of the numbers on stdin (0 for none); the
# mean of the middle two printed with DIGITS after the point, or as awk
# prints a number without DIGITS.
median() {
	sort -g | awk -v d="${1:-}" '{ a[NR] = $1 } END {
		if (NR == 0) print 0
		else if (NR % 2) print a[(NR + 1) / 2]
		else if (d == "") print (a[NR / 2] + a[NR / 2 + 1]) / 2
		else printf "%.*f\n", d, (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
