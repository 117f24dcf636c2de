#!/bin/bash
# tests/e2e/h2o.sh: h2o + fastcgi.connect in front of fcgiq, on the
# shipped conf-examples/h2o.conf (paths, port and body limit substituted;
# user root), with fcgiq under conf-examples/spawn-fcgi.sh.  The checks are
# clients-lib.sh's: small and 3 MiB binary bodies byte for byte, with a
# length and chunked; the status API; h2o's body limit; 100 requests on one
# kept connection; 500 POSTs at concurrency 16.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in h2o spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done
. "$(dirname "$0")/clients-lib.sh"

clients_fcgiq || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"

# The shipped file with this run's paths and port, room for 3 MiB bodies,
# and user root: h2o switches to its user before it writes its pid file
# (NOTES.md), and fcgiq's socket here is root's.
port=$(free_port)
H=$T/h2o
mkdir -p "$H"
sed -e 's|^user: www-data$|user: root|' \
    -e "s|^pid-file: /run/h2o-fcgiq/h2o.pid$|pid-file: $H/h2o.pid|" \
    -e "s|^error-log: /var/log/h2o/fcgiq-error.log$|error-log: $H/error.log|" \
    -e "s|^  port: 8080$|  port: $port|" \
    -e 's|^limit-request-body: 1048576$|limit-request-body: 4194304|' \
    -e "s|port: /run/fcgiq/fcgiq.sock$|port: $SOCK|" \
    "$EXAMPLES/h2o.conf" >"$H/h2o.conf"
for want in "user: root" "pid-file: $H/h2o.pid" "error-log: $H/error.log" \
    "port: $port" "limit-request-body: 4194304" "port: $SOCK"; do
	grep -qF -- "$want" "$H/h2o.conf" ||
	    bail "conf-examples/h2o.conf lost the line for $want"
done
! grep -v '^ *#' "$H/h2o.conf" | grep -q "/run/\|/var/" ||
    bail "conf-examples/h2o.conf has a path the test does not substitute"

out=$(h2o -t -c "$H/h2o.conf" 2>&1)
check "h2o -t accepts the shipped h2o.conf" grep -q "configuration OK" <<<"$out"
# In the foreground (no -m daemon), so $! is h2o's master itself.
h2o -c "$H/h2o.conf" >"$H/stdout.log" 2>&1 &
H2O_PID=$!
track "$H2O_PID"
BASE=http://127.0.0.1:$port
wait_for curl -s -o /dev/null "$BASE/" ||
    bail "h2o did not start: $(cat "$H/stdout.log" "$H/error.log" 2>/dev/null)"
check_eq "h2o wrote its pid file" "$H2O_PID" "$(cat "$H/h2o.pid")"

clients_http_checks h2o

check_eq "no error in h2o's error log" "" \
    "$(grep -v 'is ready to serve' "$H/error.log" | head -3)"
kill "$H2O_PID"
check "h2o stops on SIGTERM to its pid" wait_for gone "$H2O_PID"
ms=$(stop_all $FCGIQ_PIDS)
check "fcgiq stops on SIGTERM within 5 s (${ms} ms)" test "$ms" -lt 5000

done_testing
