#!/bin/bash
# responder: fcgiq end to end behind real nginx (conf-examples/nginx.conf)
# and spawn-fcgi -F 2 (conf-examples/spawn-fcgi.sh), driven by curl and
# checked with the sqlite3 shell: intake, status, errors, DELETE, queue
# routing, ETag/If-None-Match, FCGIQ_ACCEPT_STATUS, idempotency, 503
# paths, SIGHUP and SIGTERM.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in nginx spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done

resp_conf "busy_timeout = 300ms"
cat >>"$T/fcgiq.conf" <<EOF

[queue small]
max_queued = 2
EOF
extra_location /nowhere/ nowhere
extra_location /small/ small
extra_location /late/ late
# FCGIQ_ACCEPT_STATUS: 200 where a sender wants it; 201 is a mistake.
for st in 200 201; do
	cat >>"$T/extra-locations.conf" <<-EOF
		location /accept$st/ {
			include fastcgi_params;
			fastcgi_param HTTP_PROXY "";
			fastcgi_param FCGIQ_ACCEPT_STATUS $st;
			fastcgi_pass fcgiq;
		}
	EOF
done

# fcgiq -t.
out=$("$FCGIQ" -t -c "$T/fcgiq.conf" 2>&1)
check_eq "fcgiq -t accepts the test configuration" \
    "$T/fcgiq.conf: configuration ok" "$out"
printf '[fcgiq]\nmax_body = lots\n' >"$T/bad.conf"
out=$("$FCGIQ" -t -c "$T/bad.conf" 2>&1)
check_eq "fcgiq -t on a bad file exits 1" 1 $?
check "... and names the file and line" grep -q "bad.conf:2:.*max_body" <<<"$out"

resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
check_eq "spawn-fcgi -F 2 started two fcgiq" 2 "$(echo $FCGIQ_PIDS | wc -w)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

field() { json_field "$T/b" "$1"; }

# --- Intake.
req POST '/hooks/a?x=1' -H 'Content-Type: text/plain' -H 'X-Test: yes' \
    -H 'Proxy: http://evil.example:1' --data-binary 'hello world'
check_eq "POST: 202" 202 "$CODE"
loc=$(hdr Location)
id=${loc#/jobs/}
check "POST: Location is /jobs/<30-char id> ($loc)" \
    grep -Eq '^/jobs/[A-Za-z0-9_-]{30}$' <<<"$loc"
check_eq "POST: Content-Type application/json" application/json \
    "$(hdr Content-Type)"
check_eq "POST: body id = Location id" "$id" "$(field id)"
check_eq "POST: body queue" default "$(field queue)"
check_eq "POST: body state" queued "$(field state)"
check_eq "POST: body status_url" "$loc" "$(field status_url)"

row=$(sql "SELECT queue, method, request_uri, query_string, content_type,
    remote_addr, CAST(body AS TEXT), max_attempts FROM jobs WHERE id = '$id'")
check_eq "the job is in the database, request stored with it" \
    "default|POST|/hooks/a?x=1|x=1|text/plain|127.0.0.1|hello world|3" "$row"
headers=$(sql "SELECT headers FROM jobs WHERE id = '$id'")
check "headers stored as JSON with HTTP_X_TEST" \
    test "$(sql "SELECT json_extract(headers, '\$.HTTP_X_TEST') FROM jobs WHERE id = '$id'")" = yes
check "... without HTTP_PROXY (httpoxy)" \
    test "$(sql "SELECT json_type(headers, '\$.HTTP_PROXY') IS NULL FROM jobs WHERE id = '$id'")" = 1

req PUT /hooks/b --data-binary 'put body'
check_eq "PUT: 202" 202 "$CODE"
req PATCH /hooks/c --data-binary 'patch body'
check_eq "PATCH: 202" 202 "$CODE"

# --- Status.
req GET "$loc"
check_eq "GET status: 200" 200 "$CODE"
check_eq "GET status: the job's id" "$id" "$(field id)"
check_eq "GET status: state queued" queued "$(field state)"
check_eq "GET status: attempts 0" 0 "$(field attempts)"
check_eq "GET status: max_attempts from the queue" 3 "$(field max_attempts)"
check "GET status: created_at in ms and ISO-8601" \
    grep -Eq '"created_at":[0-9]{13},"created_at_iso":"[0-9-]{10}T' "$T/b"
check_eq "GET status: Content-Type application/json" application/json \
    "$(hdr Content-Type)"
req HEAD "$loc"
check_eq "HEAD status: 200" 200 "$CODE"
check_eq "HEAD status: no body" 0 "$(stat -c %s "$T/b")"
req GET /jobs/AAAAAAAAAAAAAAAAAAAAAA
check_eq "GET an unknown id: 404" 404 "$CODE"
check_eq "... with a JSON error" "no such job" "$(field error)"
req GET /jobs/not-an-id
check_eq "GET a malformed id: 404" 404 "$CODE"
req HEAD /hooks/a
check_eq "HEAD on an intake location: 405" 405 "$CODE"

# --- Methods and limits.
req GET /hooks/a
check_eq "GET on an intake location: 405" 405 "$CODE"
check_eq "... Allow: POST, PUT, PATCH" "POST, PUT, PATCH" "$(hdr Allow)"
req DELETE /hooks/a
check_eq "DELETE on an intake location: 405" 405 "$CODE"
req POST "$loc" --data-binary x
check_eq "POST on a status URL: 405" 405 "$CODE"
check_eq "... Allow: GET, HEAD, DELETE" "GET, HEAD, DELETE" "$(hdr Allow)"
before=$(sql "SELECT count(*) FROM jobs")
head -c 2000000 /dev/zero >"$T/2m.bin"
req POST /hooks/big --data-binary @"$T/2m.bin"
check_eq "2 MB body (max_body 1M): 413" 413 "$CODE"
check_eq "... and no job" "$before" "$(sql "SELECT count(*) FROM jobs")"
head -c 1000000 /dev/zero >"$T/1m.bin"
req POST /hooks/big --data-binary @"$T/1m.bin"
check_eq "a body just under max_body: 202 (nginx and fcgiq agree)" 202 "$CODE"

# --- Queue routing.
req POST /mail/send --data-binary 'to: a@example.org'
check_eq "POST /mail/: 202" 202 "$CODE"
check_eq "... stored in queue mail, with its priority" "mail|5" \
    "$(sql "SELECT queue, priority FROM jobs WHERE id = '$(field id)'")"
req POST /nowhere/x --data-binary x
check_eq "FCGIQ_QUEUE naming an unknown queue: 404" 404 "$CODE"
check_eq "... error unknown queue" "unknown queue" "$(field error)"
check_eq "... detail names it" nowhere "$(field detail)"

# --- Chunked upload with fastcgi_request_buffering off: no CONTENT_LENGTH.
head -c 100000 /dev/urandom >"$T/stream.bin"
req POST /stream/up -H 'Transfer-Encoding: chunked' --data-binary @"$T/stream.bin"
check_eq "chunked upload, unbuffered: 202" 202 "$CODE"
sid=$(field id)
sql "SELECT writefile('$T/stream.out', body) FROM jobs WHERE id = '$sid'" >/dev/null
check "... the body stored byte for byte" cmp -s "$T/stream.bin" "$T/stream.out"

# --- DELETE.
req POST /hooks/cancel-me --data-binary x
cid=$(field id)
req DELETE "/jobs/$cid"
check_eq "DELETE a queued job: 204" 204 "$CODE"
check_eq "... state cancelled" cancelled \
    "$(sql "SELECT state FROM jobs WHERE id = '$cid'")"
req DELETE "/jobs/$cid"
check_eq "DELETE it again: 409" 409 "$CODE"
req DELETE /jobs/AAAAAAAAAAAAAAAAAAAAAA
check_eq "DELETE an unknown id: 404" 404 "$CODE"

# --- A finished job keeps its status and result.
req POST /hooks/done --data-binary x
did=$(field id)
sql "UPDATE jobs SET state = 'done', attempts = 1, started_at = run_at,
    finished_at = run_at + 5, result = CAST('all good' AS BLOB)
    WHERE id = '$did'"
req GET "/jobs/$did"
check_eq "GET a done job: 200" 200 "$CODE"
check_eq "... state done" done "$(field state)"
check_eq "... its result" "all good" "$(field result)"
req DELETE "/jobs/$did"
check_eq "DELETE a done job: 409" 409 "$CODE"
sql "UPDATE jobs SET result = x'00ff10' WHERE id = '$did'"
req GET "/jobs/$did"
check_eq "a binary result comes as base64" "AP8Q|base64" \
    "$(field result)|$(field result_encoding)"

# --- ETag and If-None-Match on the status resource.
req POST /hooks/etag --data-binary x
eid=$(field id)
req GET "/jobs/$eid"
etag=$(hdr ETag)
check "GET status: a strong ETag ($etag)" grep -Eq '^"[0-9a-f]{16}"$' <<<"$etag"
req HEAD "/jobs/$eid"
check_eq "HEAD status: the same ETag" "$etag" "$(hdr ETag)"
req GET "/jobs/$eid" -H "If-None-Match: \"x\", $etag"
check_eq "If-None-Match naming it: 304" 304 "$CODE"
check_eq "... with the ETag and no body" "$etag|0" \
    "$(hdr ETag)|$(stat -c %s "$T/b")"
sql "UPDATE jobs SET state = 'running', attempts = 1, started_at = run_at
    WHERE id = '$eid'"
req GET "/jobs/$eid" -H "If-None-Match: $etag"
check_eq "the job started: 200 to the old ETag" "200|running" \
    "$CODE|$(field state)"
etag2=$(hdr ETag)
check "... and a new ETag ($etag2)" test -n "$etag2" -a "$etag2" != "$etag"
req GET "/jobs/$eid" -H "If-None-Match: $etag2"
check_eq "... which answers 304" 304 "$CODE"

# --- FCGIQ_ACCEPT_STATUS.
req POST /accept200/x --data-binary 'ok'
aid=$(field id)
check_eq "FCGIQ_ACCEPT_STATUS 200: 200, Location and body as for 202" \
    "200|/jobs/$aid|queued|1" \
    "$CODE|$(hdr Location)|$(field state)|$(sql "SELECT count(*) FROM jobs WHERE id = '$aid'")"
before=$(sql "SELECT count(*) FROM jobs")
req POST /accept201/x --data-binary 'ok'
check_eq "FCGIQ_ACCEPT_STATUS 201: 500 naming the param, nothing stored" \
    "500|bad FCGIQ_ACCEPT_STATUS|$before" \
    "$CODE|$(field error)|$(sql "SELECT count(*) FROM jobs")"

# --- Idempotency.
req POST /hooks/pay -H 'Idempotency-Key: key-1' --data-binary 'amount=5'
check_eq "Idempotency-Key, first: 202" 202 "$CODE"
k1=$(field id)
req POST /hooks/pay -H 'Idempotency-Key: key-1' --data-binary 'amount=5'
check_eq "the same key and body again: 202" 202 "$CODE"
check_eq "... the first job's id" "$k1" "$(field id)"
check_eq "... and its Location" "/jobs/$k1" "$(hdr Location)"
req POST /hooks/pay -H 'Idempotency-Key: key-1' --data-binary 'amount=500'
check_eq "the same key, another body: 422" 422 "$CODE"
check_eq "one job for the key" 1 \
    "$(sql "SELECT count(*) FROM jobs WHERE idempotency_key = 'key-1'")"
# The same key 20 times at once (in one group commit or racing across the
# two processes): one job, every answer names it.
for i in $(seq 20); do
	printf 'url = "%s/hooks/pay"\noutput = "/dev/null"\n' "$BASE"
done >"$T/same-key.cfg"
curl -s --parallel --parallel-immediate --parallel-max 20 \
    -H 'Idempotency-Key: key-burst' --data-binary 'same' \
    -w '%{http_code} %header{location}\n' -K "$T/same-key.cfg" 2>/dev/null |
    sort | uniq -c | awk '{print $1, $2}' >"$T/burst.out"
check_eq "20 concurrent requests with one key: 20 x 202, one Location" \
    "20 202" "$(cat "$T/burst.out")"
check_eq "... one job" 1 \
    "$(sql "SELECT count(*) FROM jobs WHERE idempotency_key = 'key-burst'")"
req POST /github -H 'X-GitHub-Delivery: d-42' --data-binary '{"a":1}'
check_eq "FCGIQ_DEDUPE_HEADER X-GitHub-Delivery, first: 202" 202 "$CODE"
g1=$(field id)
req POST /github -H 'X-GitHub-Delivery: d-42' --data-binary '{"a":1}'
check_eq "... redelivery: the first job's id" "202 $g1" "$CODE $(field id)"
req POST /github -H 'X-GitHub-Delivery: d-42' --data-binary '{"a":2}'
check_eq "... the same delivery, another body: 422" 422 "$CODE"
check_eq "one job for the delivery, in queue github" "1|github" \
    "$(sql "SELECT count(*), min(queue) FROM jobs WHERE idempotency_key = 'd-42'")"

# --- 503: the database locked past busy_timeout (300ms); nothing stored,
# and fcgiq keeps serving once the lock is gone.
before=$(sql "SELECT count(*) FROM jobs")
mkfifo "$T/lock.fifo"
sqlite3 "$DB" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
LOCKER=$!
exec 7>"$T/lock.fifo"
echo "BEGIN IMMEDIATE; SELECT 'locked';" >&7
wait_for grep -q locked "$T/lock.out"
req POST /hooks/locked --data-binary x
check_eq "database locked past busy_timeout: 503" 503 "$CODE"
check "... with Retry-After" test -n "$(hdr Retry-After)"
echo "COMMIT;" >&7
exec 7>&-
wait $LOCKER
check_eq "... and no job stored" "$before" "$(sql "SELECT count(*) FROM jobs")"
req POST /hooks/after --data-binary x
check_eq "after the lock: 202 again" 202 "$CODE"

# --- max_queued: queue small holds 2 (counts refresh each second).
req POST /small/ --data-binary 1
req POST /small/ --data-binary 2
sleep 1.2
req POST /small/ --data-binary 3
check_eq "max_queued reached: 503" 503 "$CODE"
check_eq "... queue full" "queue full" "$(field error)"
check "... with Retry-After" test -n "$(hdr Retry-After)"
check_eq "... two jobs in queue small" 2 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'small'")"

# --- SIGHUP reloads the configuration: queue late appears.
req POST /late/ --data-binary x
check_eq "queue late before SIGHUP: 404" 404 "$CODE"
printf '\n[queue late]\n' >>"$T/fcgiq.conf"
for p in $FCGIQ_PIDS; do kill -HUP "$p"; done
wait_for eval '[ "$(grep -c "reload:" "$T/fcgiq.log")" -ge 2 ]'
req POST /late/ --data-binary x
check_eq "queue late after SIGHUP: 202" 202 "$CODE"

# --- fds: the listening socket (fd 0) and everything fcgiq opened are
# close-on-exec (fds inherited from this shell are not fcgiq's).
bad=""
for pid in $FCGIQ_PIDS; do
	for f in /proc/$pid/fd/*; do
		n=${f##*/}
		[ "$n" -eq 1 ] || [ "$n" -eq 2 ] && continue
		[ "$n" -gt 2 ] && [ -e "/proc/$$/fd/$n" ] && continue
		flags=$(awk '/^flags/ {print $2}' "/proc/$pid/fdinfo/$n" 2>/dev/null)
		[ -n "$flags" ] || continue
		[ $((8#$flags & 8#2000000)) -ne 0 ] || bad="$bad $pid/$n:$(readlink "$f")"
	done
done
check_eq "every fd of both fcgiq, fd 0 included, is close-on-exec" "" "$bad"

# --- Every 202 of this run is a job, every job a 202 (none half-written);
# the intakes of /accept200/ are answered 200.
n202=$(awk '$9 == 202 || ($7 ~ /^\/accept200\// && $9 == 200)' \
    "$T/nginx/logs/access.log" | wc -l)
nnew=$(sql "SELECT count(*) FROM jobs")
check_eq "jobs in the database = 202s that created one" "$nnew" \
    "$((n202 - 21))"	# replays answered 202 without a new job: key-1,
			# d-42, and 19 of the key-burst

# --- SIGTERM: both processes exit within a few seconds.
ms=$(stop_all $FCGIQ_PIDS)
check "SIGTERM: both fcgiq exit within 5 s (${ms} ms)" test "$ms" -lt 5000
check "... cleanly" grep -q "stopped" "$T/fcgiq.log"
check "no error from nginx about fcgiq" \
    test -z "$(grep -E 'upstream|connect\(\)' "$T/nginx/logs/error.log")"

done_testing
