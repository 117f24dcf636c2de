#!/bin/bash
# responder-raw: fcgiq on its own socket (-s), driven by tests/tools/fcgiclient
# with what no web server sends: short bodies, clients that vanish, garbage
# lengths, huge and countless headers, idle and half-sent connections.
# Each gets a clean answer (or a clean close), none stores a job, and the
# number of jobs equals the number of 202s exactly.  Then SIGTERM with a
# request in flight: it is answered 202 and stored, and fcgiq exits.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

IO_TIMEOUT=2
resp_conf "max_body = 64k"
"$FCGIQ" -W -c "$T/fcgiq.conf" -s "$SOCK" -T $IO_TIMEOUT 2>>"$T/fcgiq.log" &
PID=$!
track $PID
wait_for test -S "$SOCK" || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
n202=0

# status_of ARGS...: the first line of the client's output ("status 202").
status_of() { fcgi "$@" | head -1; }
expect() {
	local want=$1 name=$2 got
	shift 2
	got=$(status_of "$@")
	check_eq "$name" "$want" "$got"
	[ "$got" = "status 202" ] && n202=$((n202 + 1))
	return 0
}

expect "status 202" "a well-formed POST is accepted" -d hello
fcgi -k 3 -d again >"$T/keep.out"
check_eq "three requests on one kept connection: three 202s" 3 \
    "$(grep -c '^status 202' "$T/keep.out")"
n202=$((n202 + 3))
check_eq "jobs stored so far" $n202 "$(sql 'SELECT count(*) FROM jobs')"

# Bodies that do not match CONTENT_LENGTH.
expect "status 400" "body shorter than CONTENT_LENGTH: 400" -d hello -l 100
expect "status 400" "body longer than CONTENT_LENGTH: 400" -d hello -l 3
out=$(fcgi -D 1000 -l 5000 -n 500 -c)
check_eq "client gone mid-body: the client left" gone "$out"
expect "status 400" "a body that stalls past the I/O timeout: 400" \
    -d hello -e -w $((IO_TIMEOUT + 5))

# CONTENT_LENGTH garbage.
for l in abc -5 +5 99999999999999999999999 18446744073709551616 1e3 \
    ' 5' '5 ' 0x10; do
	expect "status 400" "CONTENT_LENGTH '$l': 400" -d x -l "$l"
done
expect "status 202" "no CONTENT_LENGTH: the stream read to its end" \
    -d "read to the end" -l none
n=$(sql "SELECT count(*) FROM jobs WHERE body = CAST('read to the end' AS BLOB)")
check_eq "... and stored whole" 1 "$n"

# Limits.
expect "status 413" "CONTENT_LENGTH over max_body: 413" -D 70000
expect "status 413" "a huge declared length: 413 without reading" \
    -d x -l 9000000000000000000
expect "status 413" "no CONTENT_LENGTH, stream over max_body: 413" \
    -D 70000 -l none
expect "status 431" "a 200 kB header: 431" -B 200000 -d x
expect "status 431" "5000 headers: 431" -H 5000 -d x
expect "status 414" "a 10 kB URI: 414" -u "/in?$(head -c 10000 /dev/zero | tr '\0' a)" -d x
expect "status 405" "GET on the intake: 405" -m GET -l none
expect "status 404" "an unknown queue: 404" -p FCGIQ_QUEUE=nowhere -d x
expect "status 400" "a bad idempotency key: 400" -p "HTTP_IDEMPOTENCY_KEY=a b" -d x

# Not FastCGI at all.
printf 'GET / HTTP/1.0\r\n\r\n' >"$T/http.txt"
socat -t 5 - "UNIX-CONNECT:$SOCK" <"$T/http.txt" >/dev/null 2>&1
expect "status 202" "HTTP instead of FastCGI: closed, fcgiq still serves" -d ok

# 50 idle connections hold no thread: a request meanwhile is answered at
# once, and fcgiq closes them after its I/O timeout.
fcgi -i 50 -w $((IO_TIMEOUT + 4)) >"$T/idle.out" &
IDLE=$!
wait_for grep -q opened "$T/idle.out"
t0=$(date +%s%N)
expect "status 202" "a request while 50 connections sit idle" -d busy
ms=$((($(date +%s%N) - t0) / 1000000))
check "... is answered within a second (${ms} ms)" test "$ms" -lt 1000
wait $IDLE
check_eq "50 idle connections, each closed by fcgiq" "idle 50 closed 50" \
    "$(tail -1 "$T/idle.out")"

# Half-sent requests (BEGIN_REQUEST and part of the params) are closed or
# refused after the I/O timeout.
fcgi -i 10 -P -w $((IO_TIMEOUT * 3 + 4)) >"$T/half.out"
check_eq "10 half-sent requests, each closed by fcgiq" "idle 10 closed 10" \
    "$(tail -1 "$T/half.out")"

check_eq "jobs stored = 202s answered ($n202)" $n202 \
    "$(sql 'SELECT count(*) FROM jobs')"
check "fcgiq survived it all" alive $PID

# Every fd fcgiq opened is close-on-exec (0-2 and the fds it inherited
# from this shell are not its own; responder.sh checks fd 0 as the
# listening socket under spawn-fcgi).
bad=""
for f in /proc/$PID/fd/*; do
	n=${f##*/}
	[ "$n" -le 2 ] && continue
	[ -e "/proc/$$/fd/$n" ] && continue
	flags=$(awk '/^flags/ {print $2}' "/proc/$PID/fdinfo/$n" 2>/dev/null) || continue
	[ -n "$flags" ] || continue
	[ $((8#$flags & 8#2000000)) -ne 0 ] || bad="$bad $n:$(readlink "$f")"
done
check_eq "every fd fcgiq opened is close-on-exec" "" "$bad"

# SIGTERM with a request in flight: its body arrives after the signal.
# In flight: a worker has accepted the connection (in /proc/net/unix an
# accepted socket is connected, "03", under the listener's path; one
# still in the backlog is "02"), and the second half of the body comes
# 1 s after the first.
accepted() { awk -v p="$SOCK" '$NF == p && $6 == "03"' /proc/net/unix | wc -l; }
n0=$(accepted)
fcgi -D 2000 -S 1000 -w 10 >"$T/inflight.out" &
CL=$!
wait_for eval '[ "$(accepted)" -gt "$n0" ]'
t0=$(date +%s%N)
kill -TERM $PID
wait $CL
check_eq "SIGTERM: the request in flight is answered 202" "status 202" \
    "$(head -1 "$T/inflight.out")"
id=$(json_field "$T/inflight.out" id)
check_eq "... and its job is stored" 1 \
    "$(sql "SELECT count(*) FROM jobs WHERE id = '$id'")"
wait $PID
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "SIGTERM: fcgiq exits 0" 0 $rc
check "... within 5 s (${ms} ms)" test $ms -lt 5000
check "... and removes the socket it bound" test ! -e "$SOCK"

# -s HOST:PORT.
port=$(free_port)
"$FCGIQ" -W -c "$T/fcgiq.conf" -s "127.0.0.1:$port" 2>>"$T/fcgiq.log" &
PID=$!
track $PID
wait_for "$FCGICLIENT" -s "127.0.0.1:$port" -m GET -l none -u /jobs/x >/dev/null
check_eq "-s 127.0.0.1:PORT: POST over TCP accepted" "status 202" \
    "$("$FCGICLIENT" -s "127.0.0.1:$port" -d tcp | head -1)"
stop_pid $PID

done_testing
