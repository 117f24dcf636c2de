#!/bin/bash
# front-door: the status resource and the error answers end to end behind
# real nginx (conf-examples/nginx.conf) and spawn-fcgi -F 2, driven by curl
# and checked with the sqlite3 shell (its JSON functions read the bodies):
# RFC 9457 problem details on every kind of error, <id>/result, 410 Gone
# after a prune, scheduling from the request (the shipped /later/
# location), and Retry-After from a queue's measured drain rate.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in nginx spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done

resp_conf "max_body = 100k"
cat >>"$T/fcgiq.conf" <<EOF

[queue small]
max_queued = 2

[queue echo]
handler = exec:/bin/cat
user = root
keep_done = 3s
max_result = 100k

[queue slow]
handler = exec:/bin/sleep 0.2
user = root
concurrency = 1
EOF
extra_location /small/ small
extra_location /nowhere/ nowhere
extra_location /echo/ echo
extra_location /slow/ slow
cat >>"$T/extra-locations.conf" <<EOF
	location /accept201/ {
		include fastcgi_params;
		fastcgi_param HTTP_PROXY "";
		fastcgi_param FCGIQ_ACCEPT_STATUS 201;
		fastcgi_pass fcgiq;
	}
EOF

resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

# j PATH: a member of the JSON body (sqlite3's json_extract).
j() { sqlite3 :memory: "SELECT json_extract(readfile('$T/b'), '\$.$1')"; }
field() { j "$1"; }
# state_is ID STATE: the job is in that state now.
state_is() { [ "$(sql "SELECT state FROM jobs WHERE id = '$1'")" = "$2" ]; }
# wait_long CMD...: wait_for, up to 30 s (a queue draining at 4 a second).
wait_long() { wait_for "$@" || wait_for "$@" || wait_for "$@"; }

# problem NAME STATUS ERROR [DETAIL]: the answer is a problem details
# document with that status, title and error, its type derived from them
# (and that detail).
problem() {
	local name=$1 st=$2 err=$3 slug
	slug=$(tr 'A-Z' 'a-z' <<<"$err" | sed -e 's/[^a-z0-9]\{1,\}/-/g' \
	    -e 's/^-//' -e 's/-$//')
	check_eq "$name: $st $err, problem+json" \
	    "$st|application/problem+json|urn:fcgiq:problem:$slug|$err|$st|$err" \
	    "$CODE|$(hdr Content-Type)|$(j type)|$(j title)|$(j status)|$(j error)"
	if [ $# -ge 4 ]; then
		check_eq "... detail" "$4" "$(j detail)"
	else
		check "... a detail" test -n "$(j detail)"
	fi
}

# --- Errors: every kind, as problem details through nginx.
req GET /jobs/AAAAAAAAAAAAAAAAAAAAAA
problem "unknown id" 404 "no such job" AAAAAAAAAAAAAAAAAAAAAA
req GET /jobs/not-an-id
problem "malformed id" 404 "no such job" "not a job id"
req GET /hooks/a
problem "GET on an intake location" 405 "method not allowed" GET
check_eq "... Allow" "POST, PUT, PATCH" "$(hdr Allow)"
req PUT /jobs/AAAAAAAAAAAAAAAAAAAAAA
problem "PUT on a status URL" 405 "method not allowed" PUT
req POST /nowhere/ --data-binary x
problem "an unknown queue" 404 "unknown queue" nowhere
req POST /hooks/x -H 'Idempotency-Key: a b' --data-binary x
problem "bad idempotency key" 400 "bad idempotency key"
# fcgiq's max_body is 100k here, nginx's 1m: fcgiq answers.
head -c 200000 /dev/zero >"$T/200k.bin"
req POST /hooks/big --data-binary @"$T/200k.bin"
problem "a body over max_body" 413 "body too large" "over the max_body limit"
req POST /stream/big -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/200k.bin"
problem "a chunked body over max_body" 413 "body too large" \
    "over the max_body limit"
req POST /hooks/len -H 'Content-Length: 1x' --data-binary x
check "a bad Content-Length: 400 (nginx refuses it first: $CODE)" \
    test "$CODE" = 400
req POST /hooks/k -H 'Idempotency-Key: k1' --data-binary one
req POST /hooks/k -H 'Idempotency-Key: k1' --data-binary two
problem "a key reused with another body" 422 "idempotency key reused"
req POST /hooks/c --data-binary x
cid=$(field id)
req DELETE "/jobs/$cid"
req DELETE "/jobs/$cid"
problem "cancel twice" 409 "not cancellable" "job $cid is cancelled"
req POST /accept201/ --data-binary x
problem "a bad FCGIQ_ACCEPT_STATUS" 500 "bad FCGIQ_ACCEPT_STATUS"
req POST /small/ --data-binary 1
req POST /small/ --data-binary 2
wait_for eval 'req POST /small/ --data-binary 3; [ "$CODE" = 503 ]'
problem "a full queue" 503 "queue full" \
    "the queue holds max_queued jobs; retry later"
# Nothing drains queue small (no handler): once measured, the estimate
# for a stalled queue, 60 s (1 s before the first measurement).
wait_for eval 'req POST /small/ --data-binary 4; [ "$(hdr Retry-After)" = 60 ]'
check_eq "... Retry-After once measured: 60 (jobs wait, none drains)" 60 \
    "$(hdr Retry-After)"

# --- <id>/result: 404 until there is one, then the bytes and their type.
"$FCGIQCTL" -c "$T/fcgiq.conf" pause echo >/dev/null ||
    bail "fcgiqctl pause"
req POST /echo/x --data-binary 'hello, wörld'
rid=$(field id)
req GET "/jobs/$rid/result"
problem "result of a waiting job" 404 "no result" "job $rid is queued"
check "... with Retry-After" test -n "$(hdr Retry-After)"
"$FCGIQCTL" -c "$T/fcgiq.conf" resume echo >/dev/null
wait_for state_is "$rid" done
req GET "/jobs/$rid/result"
check_eq "result of an exec: job: 200, text/plain (UTF-8), its bytes" \
    "200|text/plain; charset=utf-8|hello, wörld" \
    "$CODE|$(hdr Content-Type)|$(cat "$T/b")"
check_eq "... nosniff, sandboxed, not cached" "nosniff|sandbox|no-store" \
    "$(hdr X-Content-Type-Options)|$(hdr Content-Security-Policy)|$(hdr Cache-Control)"
req HEAD "/jobs/$rid/result"
check_eq "HEAD: 200, the length, no body" "200|13|0" \
    "$CODE|$(hdr Content-Length)|$(stat -c %s "$T/b")"
head -c 90000 /dev/urandom >"$T/bin"
req POST /echo/bin --data-binary @"$T/bin"
bid=$(field id)
wait_for state_is "$bid" done
curl -s -D "$T/h" -o "$T/bin.out" "$BASE/jobs/$bid/result"
check_eq "a binary result: application/octet-stream" \
    application/octet-stream "$(hdr Content-Type)"
check "... byte for byte" cmp -s "$T/bin" "$T/bin.out"
sql "UPDATE jobs SET result_type = 'application/json' WHERE id = '$rid'"
req GET "/jobs/$rid/result"
check_eq "the type a handler named (result_type)" "application/json" \
    "$(hdr Content-Type)"
req DELETE "/jobs/$rid/result"
problem "DELETE on a result" 405 "method not allowed" DELETE
check_eq "... Allow" "GET, HEAD" "$(hdr Allow)"

# --- 410 Gone: queue echo keeps finished jobs 3 s, the shortest
# keep_done, so any job made 3 s ago may have been pruned.
sleep_until() { wait_for eval "[ \$(date +%s%3N) -ge $1 ]"; }
created=$(sql "SELECT created_at FROM jobs WHERE id = '$rid'")
sleep_until $((created + 3100))
"$FCGIQCTL" -c "$T/fcgiq.conf" purge --done --older-than 0s -q echo \
    >/dev/null || bail "fcgiqctl purge"
check_eq "the done jobs of echo are purged" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'echo'")"
req GET "/jobs/$rid"
problem "status of a pruned job" 410 "job gone"
req GET "/jobs/$rid/result"
check_eq "... its result: 410" 410 "$CODE"
req DELETE "/jobs/$rid"
check_eq "... DELETE: 410" 410 "$CODE"
req POST /hooks/new --data-binary x
nid=$(field id)
sql "DELETE FROM jobs WHERE id = '$nid'"
req GET "/jobs/$nid"
problem "a job removed before the horizon" 404 "no such job" "$nid"
# An id from the future, and one from before 2026: never made by fcgiq.
req GET /jobs/zzzzzzzzAAAAAAAAAAAAAAAAAAAAAA
check_eq "an id from the future: 404" 404 "$CODE"
req GET /jobs/0AAAAAAAAAAAAAAAAAAAAAAAAAAAAA
check_eq "an id from 1970: 404" 404 "$CODE"

# --- Scheduling (the shipped /later/ location: FCGIQ_DELAY 30s,
# FCGIQ_PRIORITY 5, FCGIQ_CLIENT_SCHEDULE on).
# at ID: run_at - created_at in whole seconds (run_at counts from the
# request's arrival, created_at is the commit's time: a few ms later),
# priority.
at() { sql "SELECT (run_at - created_at + 500) / 1000, priority FROM jobs
    WHERE id = '$1'"; }
req POST /later/a --data-binary x
check_eq "/later/: the location's defaults (30 s, priority 5)" \
    "202|30|5" "$CODE|$(at "$(field id)")"
check "... Retry-After no sooner than it is due ($(hdr Retry-After))" \
    test "$(hdr Retry-After)" -ge 29 -a "$(hdr Retry-After)" -le 31
req POST /later/b -H 'Fcgiq-Delay: 10m' -H 'Fcgiq-Priority: -3' \
    --data-binary x
check_eq "Fcgiq-Delay: 10m, Fcgiq-Priority: -3" "202|600|-3" \
    "$CODE|$(at "$(field id)")"
when=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%S)
req POST /later/c -H "Fcgiq-Run-At: ${when}+01:00" --data-binary x
lid=$(field id)
check_eq "Fcgiq-Run-At with an offset" \
    "202|$(date -u -d "${when}Z - 1 hour" +%s)" \
    "$CODE|$(sql "SELECT run_at / 1000 FROM jobs WHERE id = '$lid'")"
req POST /later/d -H 'Fcgiq-Run-At: 2001-01-01T00:00:00Z' --data-binary x
check "a Run-At in the past: now, not earlier" test \
    "$(sql "SELECT run_at >= created_at FROM jobs WHERE id = '$(field id)'")" = 1
before=$(sql "SELECT count(*) FROM jobs")
req POST /later/e -H 'Fcgiq-Delay: soon' --data-binary x
problem "a bad Fcgiq-Delay" 400 "bad Fcgiq-Delay"
req POST /later/e -H 'Fcgiq-Run-At: tomorrow' --data-binary x
problem "a bad Fcgiq-Run-At" 400 "bad Fcgiq-Run-At"
req POST /later/e -H 'Fcgiq-Priority: 5000' --data-binary x
problem "a Fcgiq-Priority out of bounds" 400 "bad Fcgiq-Priority"
req POST /later/e -H 'Fcgiq-Delay: 1m' -H "Fcgiq-Run-At: ${when}Z" \
    --data-binary x
problem "both Fcgiq-Delay and Fcgiq-Run-At" 400 "conflicting schedule"
check_eq "... nothing stored" "$before" "$(sql "SELECT count(*) FROM jobs")"
req POST /mail/x -H 'Fcgiq-Delay: 10m' -H 'Fcgiq-Priority: 99' \
    --data-binary x
check_eq "without FCGIQ_CLIENT_SCHEDULE the headers are ignored" \
    "202|0|5" "$CODE|$(at "$(field id)")"

# --- Retry-After from the drain rate: queue slow runs one job at a time,
# 0.2 s each (about 4 a second with the process start).
for i in $(seq 40); do
	printf 'url = "%s/slow/%d"\noutput = "/dev/null"\n' "$BASE" "$i"
done >"$T/slow.cfg"
curl -s --parallel --parallel-max 8 --data-binary x -K "$T/slow.cfg"
slow_done() { sql "SELECT count(*) FROM jobs WHERE queue = 'slow'
    AND state = 'done'"; }
wait_long eval '[ "$(slow_done)" -ge 5 ]'
req POST /slow/probe --data-binary x
pid=$(field id)
# Each process measures within a second; until then it says 1.  A
# measurement taken before the first slow job finished says the queue is
# stalled (60, ETA_STALLED_S) until its refresh, which a request asks for
# once it is a second old and does not wait for: the answer wanted is a
# measurement of the drain.
wait_long eval 'req GET "/jobs/$pid"; r=$(hdr Retry-After);
    [ "${r:-0}" -gt 1 ] && [ "$r" -ne 60 ]'
ra=$(hdr Retry-After)
left=$(sql "SELECT count(*) FROM jobs WHERE queue = 'slow'
    AND state IN ('queued', 'retry')")
rate=$(sql "SELECT count(*) * 1000.0 / max((CAST((julianday('now') -
    2440587.5) * 86400000 AS INTEGER)) - min(finished_at), 1000) FROM jobs
    WHERE queue = 'slow' AND finished_at IS NOT NULL")
want=$(awk -v n="$left" -v r="$rate" 'BEGIN { printf "%d", n / r }')
check "status of a waiting job: Retry-After $ra ~ $left waiting / $rate a second ($want s)" \
    awk -v a="$ra" -v w="$want" 'BEGIN { exit !(a >= w / 2 - 1 && a <= w * 2 + 2) }'
req POST /slow/more --data-binary x
check "a 202 carries it too ($(hdr Retry-After))" test "$(hdr Retry-After)" -gt 1
wait_long state_is "$pid" done
req GET "/jobs/$pid"
check_eq "a finished job's status: no Retry-After" "200|" \
    "$CODE|$(hdr Retry-After)"
wait_long eval '[ "$(sql "SELECT count(*) FROM jobs WHERE queue = '"'slow'"'
    AND state <> '"'done'"'")" = 0 ]'
wait_for eval 'req POST /slow/last --data-binary x; [ "$(hdr Retry-After)" = 1 ]'
check_eq "the queue drained: a new job's Retry-After is 1" 1 \
    "$(hdr Retry-After)"

check "no error from nginx about fcgiq" \
    test -z "$(grep -E 'upstream|connect\(\)' "$T/nginx/logs/error.log")"
done_testing
