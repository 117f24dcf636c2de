#!/bin/bash
# responder-conns: how fcgiq holds its FastCGI connections (server.c).  A
# kept connection is served where it is, request after request (1,000 of
# them, while slow senders trickle on other connections); pipelined
# requests are answered in order; idle kept connections -- nginx's pool,
# far more of them than fcgiq has workers -- hold no worker while intake
# goes on at full speed; a kept connection idle past 4 x -T is closed, and
# one that nginx drops in the middle of a body stores nothing and leaves
# the rest served.  Every 202 is a stored job, and nothing else is.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

command -v nginx >/dev/null || skip_all "nginx is not installed (tests/install-deps.sh)"

IO_TIMEOUT=1
THREADS=4
resp_conf
"$FCGIQ" -W -c "$T/fcgiq.conf" -s "$SOCK" -T $IO_TIMEOUT -n $THREADS \
    2>>"$T/fcgiq.log" &
PID=$!
track $PID
wait_for test -S "$SOCK" || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
chmod 666 "$SOCK"
n202=0
count202() { grep -c '^status 202' "$1"; }

# 1,000 requests on one kept connection while slow senders (half a body,
# a pause, the rest: each holds a worker while it is read) come and go on
# others, fewer of them than the workers.
for i in 1 2; do
	fcgi -k 4 -S 300 -d "slow-$i" >"$T/slow-$i.out" &
	eval "SLOW$i=\$!"
done
fcgi -k 1000 -d kept >"$T/kept.out"
wait "$SLOW1" "$SLOW2"
check_eq "1,000 requests on one kept connection: 1,000 202s" 1000 \
    "$(count202 "$T/kept.out")"
check_eq "... the slow senders beside it: 8 202s" 8 \
    "$(($(count202 "$T/slow-1.out") + $(count202 "$T/slow-2.out")))"
n202=$((n202 + 1008))
check_eq "... every one stored" 1000 \
    "$(sql "SELECT count(*) FROM jobs WHERE body = CAST('kept' AS BLOB)")"

# Pipelined: 50 requests in one write, answered in order on the one
# connection (the client reads each answer by its request id).
fcgi -k 50 -Q -d piped >"$T/piped.out"
check_eq "50 pipelined requests: 50 202s, in order" 50 \
    "$(count202 "$T/piped.out")"
n202=$((n202 + 50))
check_eq "... every one stored" 50 \
    "$(sql "SELECT count(*) FROM jobs WHERE body = CAST('piped' AS BLOB)")"
fcgi -k 6 -Q -m GET -u /jobs/nosuchjob -l none >"$T/piped-get.out"
check_eq "6 pipelined status reads (answered in place): 6 404s" 6 \
    "$(grep -c '^status 404' "$T/piped-get.out")"

# A kept connection that says nothing more is closed after 4 x -T.
fcgi -k 1 -I -d held -w $((IO_TIMEOUT * 4 + 6)) >"$T/held.out"
n202=$((n202 + 1))
check "a kept connection idle past 4 x -T is closed ($(tail -1 "$T/held.out"))" \
    grep -Eq "^held: closed after [3-6] s" "$T/held.out"

# Through nginx (the shipped example: keepalive 32, fastcgi_keep_conn
# on): 64 requests at once fill its pool of kept connections, 8 times
# fcgiq's workers.  They sit idle; 200 new connections at once are all
# answered meanwhile, and the kept ones serve again after.
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"
post() { curl -s -o /dev/null -w '%{http_code}\n' -d "$1" "$BASE/hooks/x"; }
export -f post
export BASE
seq 64 | xargs -P 64 -I{} bash -c 'post pool-{}' >"$T/pool.out"
check_eq "64 requests at once through nginx: 64 202s" 64 \
    "$(grep -c '^202$' "$T/pool.out")"
n202=$((n202 + 64))
kept=$(ss -x 2>/dev/null | grep -c "$SOCK")
check "nginx keeps more connections than fcgiq has workers ($kept > $THREADS)" \
    test "$kept" -gt "$THREADS"
fcgi -C 200 -d burst >"$T/burst.out"
check_eq "200 new connections at once beside them: all answered" \
    "answered 200 of 200" "$(sed -n 2p "$T/burst.out")"
check_eq "... 202 each" "status 202: 200" "$(sed -n 3p "$T/burst.out")"
n202=$((n202 + 200))
seq 32 | xargs -P 8 -I{} bash -c 'post again-{}' >"$T/again.out"
check_eq "the kept connections serve again: 32 202s" 32 \
    "$(grep -c '^202$' "$T/again.out")"
n202=$((n202 + 32))

# nginx drops a kept connection in the middle of a body: /stream/ passes
# a chunked upload as it comes; the client sends 256 KiB of a 512 KiB
# chunk and goes away.  (nginx passes the first 16 KiB buffers on before
# it sees the end: the FastCGI request is begun, then cut.)
head -c 262144 /dev/zero | tr '\0' c >"$T/part"
port=${BASE##*:}
for i in $(seq 5); do
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf 'POST /stream/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n80000\r\n' >&3
	cat "$T/part" >&3
	exec 3>&-
done
cuts() { grep -c '"POST /stream/x HTTP/1.1" 400' "$T/nginx/logs/access.log"; }
wait_for test "$(cuts)" -ge 5
check_eq "nginx ended the 5 cut uploads" 5 "$(cuts)"
wait_for test "$(grep -c 'incomplete body' "$T/fcgiq.log")" -ge 1
check "... fcgiq saw them cut ($(grep -c 'incomplete body' "$T/fcgiq.log") of 5 begun)" \
    grep -q 'incomplete body' "$T/fcgiq.log"
seq 20 | xargs -P 4 -I{} bash -c 'post after-{}' >"$T/after.out"
check_eq "requests after five bodies cut by nginx: 20 202s" 20 \
    "$(grep -c '^202$' "$T/after.out")"
n202=$((n202 + 20))
check_eq "no cut body is stored" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE length(body) > 1000")"

check_eq "jobs stored = 202s answered ($n202)" "$n202" \
    "$(sql 'SELECT count(*) FROM jobs')"
check "fcgiq survived it all" alive $PID
check "no worker was stuck: nothing logged above warn about the server" \
    sh -c "! grep -E 'server: (epoll|accept)' '$T/fcgiq.log'"
done_testing
