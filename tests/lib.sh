# tests/lib.sh: shared plumbing for the shell suites (sourced, not run).
#
# Output is TAP, so automake's tap-driver counts each check:
#   ok "what held"  /  not_ok "what failed" "detail"  /  check "name" cmd...
#   done_testing            (prints the plan; call last)
# A suite works in $T (a mktemp -d), kept on failure for reading, removed on
# success.  Processes it starts are registered with track PID and stopped by
# pid in the EXIT trap; never by name.
set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
FCGIQ="$top_builddir/fcgiq"
FCGIQCTL="$top_builddir/fcgiqctl"

T=$(mktemp -d "${TMPDIR:-/tmp}/fcgiq-test.XXXXXX")
chmod 755 "$T"
_tap_n=0
_tap_failed=0
_tracked=""

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1"; }
not_ok() {
	_tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
# check NAME CMD...: ok when CMD succeeds.
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name" "command: $*"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2
actual:   $3"; fi
}
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
bail() { echo "Bail out! $1"; exit 1; }

track() { _tracked="$_tracked $*"; }
# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL; only the pid given.
stop_pid() {
	local p=$1 i
	kill "$p" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$p" 2>/dev/null
	return 0
}
_cleanup() {
	local p
	for p in $_tracked; do stop_pid "$p"; done
	_release_ports
	if [ "$_tap_failed" -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
		rm -rf "$T"
	else
		echo "# test directory kept: $T"
	fi
}
trap _cleanup EXIT
# timeout(1) and ^C: leave through the EXIT trap, which stops what we started.
trap 'exit 143' TERM
trap 'exit 130' INT

done_testing() { echo "1..$_tap_n"; }

# wait_for CMD...: retry CMD for up to 10 s.
wait_for() {
	local i
	for i in $(seq 100); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now, drawn
# outside the kernel's ephemeral range (net.ipv4.ip_local_port_range), where
# a client socket of any process may hold a port at any moment.  Each port
# handed out is reserved by a directory in /tmp/fcgiq-test-ports (mkdir is
# atomic), so suites running side by side never draw the same one; the
# reservation goes with the suite's EXIT trap.
_ports_dir=${TMPDIR:-/tmp}/fcgiq-test-ports
free_port() {
	local lo hi p span o
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
	    { lo=32768 hi=60999; }
	mkdir -p "$_ports_dir"
	while :; do
		# Below the range when there is room (10000 up to it), else above it.
		if [ "$lo" -gt 12000 ]; then
			span=$((lo - 10000)); p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
		else
			span=$((65535 - hi)); p=$((hi + 1 + (RANDOM * 32768 + RANDOM) % span))
		fi
		if ! mkdir "$_ports_dir/$p" 2>/dev/null; then
			# A reservation whose suite died without its trap is stale
			# (no owner file yet: its suite is writing it now).
			o=$(cat "$_ports_dir/$p/owner" 2>/dev/null) &&
			    ! kill -0 "$o" 2>/dev/null && rm -rf "$_ports_dir/$p"
			continue
		fi
		echo $$ >"$_ports_dir/$p/owner"	# $$: the suite, even in $(...)
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			rm -rf "$_ports_dir/$p"
			continue
		fi
		echo "$p"
		return
	done
}
# The suite's reservations: $(free_port) ran in a subshell, so they are
# found by their owner file, not a variable.
_release_ports() {
	local d
	for d in "$_ports_dir"/*; do
		[ -f "$d/owner" ] && [ "$(cat "$d/owner" 2>/dev/null)" = "$$" ] && rm -rf "$d"
	done
	return 0
}

# start_nginx CONF: run nginx in the foreground-less master mode with its
# prefix in $T/nginx; sets NGINX_PID.  CONF is a full nginx.conf.
# A port still held (a socket of a process that is exiting): nginx tries
# bind() five times in 2.5 s; the whole start is tried again, up to ten
# times, before it counts as failed.
start_nginx() {
	local conf=$1 i
	mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		nginx -p "$T/nginx" -c "$conf" \
		    -g "pid $T/nginx/nginx.pid; error_log $T/nginx/logs/error.log;" \
		    2>"$T/nginx/start.err" && break
		cat "$T/nginx/start.err" >&2
		grep -q "Address already in use" "$T/nginx/start.err" &&
		    [ "$i" -lt 10 ] || return 1
		sleep 0.5
	done
	wait_for test -s "$T/nginx/nginx.pid" || return 1
	NGINX_PID=$(cat "$T/nginx/nginx.pid")
	track "$NGINX_PID"
}
