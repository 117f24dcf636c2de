#!/bin/bash
# tests/e2e/lighttpd.sh: lighttpd + mod_fastcgi in front of fcgiq, on the
# shipped conf-examples/lighttpd.conf (paths, port and body limit
# substituted, run as root), with fcgiq under conf-examples/spawn-fcgi.sh.
# The checks are clients-lib.sh's: small and 3 MiB binary bodies byte for
# byte, with a length and chunked; the status API; lighttpd's body limit;
# 100 requests on one kept connection; 500 POSTs at concurrency 16.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in lighttpd spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done
. "$(dirname "$0")/clients-lib.sh"

clients_fcgiq || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"

# The shipped file with this run's paths and port; as root (no
# server.username: lighttpd then keeps root), and room for 3 MiB bodies.
port=$(free_port)
L=$T/lighttpd
mkdir -p "$L/htdocs" "$L/uploads"
sed -e '/^server.username /d' -e '/^server.groupname /d' \
    -e "s|\"/var/www/html\"|\"$L/htdocs\"|" \
    -e "s|\"/var/log/lighttpd/error.log\"|\"$L/error.log\"|" \
    -e "s|\"/run/lighttpd.pid\"|\"$L/lighttpd.pid\"|" \
    -e "s|\"/var/cache/lighttpd/uploads\"|\"$L/uploads\"|" \
    -e "s|\"/run/fcgiq/fcgiq.sock\"|\"$SOCK\"|" \
    -e "s|^server.port *= 8080$|server.port          = $port|" \
    -e 's|^server.max-request-size = 1024$|server.max-request-size = 4096|' \
    "$EXAMPLES/lighttpd.conf" >"$L/lighttpd.conf"
for want in "\"$SOCK\"" "= $port" "\"$L/error.log\"" "\"$L/lighttpd.pid\"" \
    "\"$L/uploads\"" "max-request-size = 4096"; do
	grep -qF -- "$want" "$L/lighttpd.conf" ||
	    bail "conf-examples/lighttpd.conf lost the line for $want"
done
! grep -q "/run/fcgiq\|/var/\|username" "$L/lighttpd.conf" ||
    bail "conf-examples/lighttpd.conf has a path the test does not substitute"

out=$(lighttpd -t -f "$L/lighttpd.conf" 2>&1)
check_eq "lighttpd -t accepts the shipped lighttpd.conf" "Syntax OK" "$out"
# -D: in the foreground, so $! is lighttpd itself.
lighttpd -D -f "$L/lighttpd.conf" >"$L/stdout.log" 2>&1 &
LIGHTTPD_PID=$!
track "$LIGHTTPD_PID"
BASE=http://127.0.0.1:$port
wait_for curl -s -o /dev/null "$BASE/" ||
    bail "lighttpd did not start: $(cat "$L/stdout.log" "$L/error.log" 2>/dev/null)"
check_eq "lighttpd wrote its pid file" "$LIGHTTPD_PID" "$(cat "$L/lighttpd.pid")"

clients_http_checks lighttpd

# Expected there: the start, and the 413 of the body over the limit.
check_eq "no error in lighttpd's error log" "" \
    "$(grep -v 'server started\|request-size too long' "$L/error.log" |
    head -3)"
kill "$LIGHTTPD_PID"
check "lighttpd stops on SIGTERM to its pid" wait_for gone "$LIGHTTPD_PID"
ms=$(stop_all $FCGIQ_PIDS)
check "fcgiq stops on SIGTERM within 5 s (${ms} ms)" test "$ms" -lt 5000

done_testing
