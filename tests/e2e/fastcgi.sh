#!/bin/bash
# tests/e2e/fastcgi.sh: the fastcgi: handler kind with the real programs:
# curl -> nginx -> fcgiq -> SQLite -> helper -> PHP-FPM (Debian's, its own
# pool on a private socket), the job script tests/handlers/php/job.php.
#
# Covers: the script sees what nginx would have passed it ($_POST,
# php://input byte for byte, HTTP_X_GITHUB_EVENT, the query string) plus
# FCGIQ_JOB_ID, FCGIQ_QUEUE, FCGIQ_ATTEMPT and the queue's params, never
# HTTP_PROXY; the answer's body is the result, its Content-Type the
# result_type; 503 retried until done, 404 dead at once, 429 with
# Retry-After; a fatal error's message in last_error; a slow answer past
# the timeout; a socket that does not exist (not a config error, shown in
# last_error, logged once); kept connections: 200 jobs, the helper's fds
# flat; SIGTERM lets an answer in flight finish within grace.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"
. "$(dirname "$0")/phpfpm-lib.sh"

for c in nginx spawn-fcgi curl sqlite3 sha256sum; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
phpfpm_find || skip_all "php-fpm not installed (tests/install-deps.sh)"

phpfpm_start main 4 || bail "php-fpm did not start"
REC=$T/rec
mkdir -p "$REC" "$T/var"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log = debug
grace = 3s

[queue php]
handler      = fastcgi:unix:$PHPFPM_SOCK_main
script       = $PHP_HANDLERS/job.php
param        = RECORD_DIR $REC
param        = APP_ENV test run
concurrency  = 4
max_attempts = 3
timeout      = 2s
backoff      = 100ms..300ms

[queue slow]
handler      = fastcgi:unix:$PHPFPM_SOCK_main
script       = $PHP_HANDLERS/job.php
param        = RECORD_DIR $REC
max_attempts = 1
timeout      = 1s

[queue cap]
handler      = fastcgi:unix:$PHPFPM_SOCK_main
script       = $PHP_HANDLERS/job.php
param        = RECORD_DIR $REC
max_attempts = 2
backoff      = 100ms..3s

[queue long]
handler      = fastcgi:unix:$PHPFPM_SOCK_main
script       = $PHP_HANDLERS/job.php
param        = RECORD_DIR $REC
concurrency  = 2
timeout      = 20s

[queue down]
handler      = fastcgi:unix:$T/no-such.sock
script       = $PHP_HANDLERS/job.php
max_attempts = 2
backoff      = 100ms..100ms
EOF
check "fcgiq -t accepts fastcgi: queues, a missing socket included" \
    "$FCGIQ" -t -c "$T/fcgiq.conf"

for q in php slow cap long down; do extra_location "/$q/" "$q"; done
resp_spawn || bail "fcgiq did not start: $(cat "$T/spawn.log")"
resp_nginx || bail "nginx did not start"

post() {
	local path=$1
	shift
	curl -s -X POST "$@" "$BASE$path" |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
wait_state() {
	local id=$1 want=" $2 " i s
	for i in $(seq $((${3:-10} * 20))); do
		s=$(field "$id" state)
		case $want in *" $s "*) return 0 ;; esac
		sleep 0.05
	done
	echo "# job $id: state $(field "$id" state), wanted $2" >&2
	return 1
}
# rec ID ATTEMPT EXPR: a value of what job.php recorded ($r), read by php.
rec() {
	php -r '$r = json_decode(file_get_contents($argv[1]), true);
	    $v = eval("return " . $argv[2] . ";");
	    echo is_array($v) ? json_encode($v, JSON_UNESCAPED_SLASHES) :
	    (is_null($v) ? "NULL" : $v);' \
	    "$REC/$1.$2.json" "$3" 2>/dev/null
}

# --- a form post: the script sees it as nginx would have passed it
id=$(post "/php/form?x=1&y=two" -H "X-GitHub-Event: push" -H "Proxy: evil" \
    -H "Content-Type: application/x-www-form-urlencoded" \
    --data-binary "name=Ada+Lovelace&lang=en%26fr")
check "intake answered with a job id" test -n "$id"
wait_state "$id" "done dead" 10
check_eq "job done at the first attempt" "done|1" \
    "$(field "$id" "state || '|' || attempts")"
check_eq "result is the script's answer" "ok $id 1" \
    "$(field "$id" "CAST(result AS TEXT)")"
check_eq "result_type is its Content-Type" "text/plain;charset=UTF-8" \
    "$(field "$id" result_type)"
check_eq "\$_POST as nginx would have it" '{"name":"Ada Lovelace","lang":"en&fr"}' \
    "$(rec "$id" 1 '$r["post"]')"
check_eq "\$_GET from the stored query string" '{"x":"1","y":"two"}' \
    "$(rec "$id" 1 '$r["get"]')"
check_eq "HTTP_X_GITHUB_EVENT" push "$(rec "$id" 1 '$r["server"]["HTTP_X_GITHUB_EVENT"]')"
check_eq "no HTTP_PROXY" NULL "$(rec "$id" 1 '$r["server"]["HTTP_PROXY"] ?? null')"
check_eq "REQUEST_METHOD" POST "$(rec "$id" 1 '$r["server"]["REQUEST_METHOD"]')"
check_eq "REQUEST_URI" "/php/form?x=1&y=two" "$(rec "$id" 1 '$r["server"]["REQUEST_URI"]')"
check_eq "CONTENT_TYPE" application/x-www-form-urlencoded \
    "$(rec "$id" 1 '$r["server"]["CONTENT_TYPE"]')"
check_eq "SCRIPT_FILENAME" "$PHP_HANDLERS/job.php" \
    "$(rec "$id" 1 '$r["server"]["SCRIPT_FILENAME"]')"
check_eq "SCRIPT_NAME" "/job.php" "$(rec "$id" 1 '$r["server"]["SCRIPT_NAME"]')"
check_eq "GATEWAY_INTERFACE" CGI/1.1 "$(rec "$id" 1 '$r["server"]["GATEWAY_INTERFACE"]')"
check_eq "SERVER_PROTOCOL" HTTP/1.1 "$(rec "$id" 1 '$r["server"]["SERVER_PROTOCOL"]')"
check_eq "REMOTE_ADDR" 127.0.0.1 "$(rec "$id" 1 '$r["server"]["REMOTE_ADDR"]')"
check_eq "FCGIQ_JOB_ID" "$id" "$(rec "$id" 1 '$r["server"]["FCGIQ_JOB_ID"]')"
check_eq "FCGIQ_QUEUE" php "$(rec "$id" 1 '$r["server"]["FCGIQ_QUEUE"]')"
check_eq "FCGIQ_ATTEMPT" 1 "$(rec "$id" 1 '$r["server"]["FCGIQ_ATTEMPT"]')"
check_eq "a param line, its value with blanks" "test run" \
    "$(rec "$id" 1 '$r["server"]["APP_ENV"]')"

# --- a binary body: php://input byte for byte
head -c 200000 /dev/urandom >"$T/body.bin"
id=$(post "/php/bin?type=application/json" \
    -H "Content-Type: application/octet-stream" --data-binary "@$T/body.bin")
wait_state "$id" "done dead" 10
check_eq "php://input is the body, byte for byte" \
    "$(sha256sum <"$T/body.bin" | cut -d' ' -f1)" \
    "$(rec "$id" 1 '$r["input_sha256"]')"
check_eq "CONTENT_LENGTH" 200000 "$(rec "$id" 1 '$r["server"]["CONTENT_LENGTH"]')"
check_eq "the answer's media type kept" application/json "$(field "$id" result_type)"

# --- statuses -> outcomes
id=$(post "/php/r?status=503&until=3" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "503 twice, then 200: done at attempt 3" "done|3" \
    "$(field "$id" "state || '|' || attempts")"
check_eq "FCGIQ_ATTEMPT counts the reruns" 3 \
    "$(rec "$id" 3 '$r["server"]["FCGIQ_ATTEMPT"]')"
id=$(post "/php/r?status=404" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "404: dead at once" "dead|1" "$(field "$id" "state || '|' || attempts")"
check_eq "404: last_error, the body's tail" \
    "fastcgi: $PHPFPM_SOCK_main: status 404: ok $id 1" "$(field "$id" last_error)"
id=$(post "/php/r?status=500&until=2" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "500 retried" "done|2" "$(field "$id" "state || '|' || attempts")"
id=$(post "/slow/r?status=302" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "302 is not a success" "dead|1" "$(field "$id" "state || '|' || attempts")"

# --- Retry-After within the backoff cap (3s)
id=$(post "/cap/r?status=429&retry_after=2" --data-binary x)
wait_state "$id" "retry dead" 10
ra=$(field "$id" "run_at - started_at")
check "429 Retry-After: 2 -> next run about 2 s on ($ra ms)" \
    test "$ra" -ge 1900 -a "$ra" -le 2600
id=$(post "/cap/r?status=503&retry_after=3600" --data-binary x)
wait_state "$id" "retry dead" 10
ra=$(field "$id" "run_at - started_at")
check "503 Retry-After: 3600 capped at backoff's 3 s ($ra ms)" \
    test "$ra" -ge 2900 -a "$ra" -le 3600
date=$(date -u -d "@$(( $(date +%s) + 2 ))" '+%a, %d %b %Y %H:%M:%S GMT')
id=$(post "/cap/r?status=503&until=2&retry_after=$(printf %s "$date" |
    sed 's/ /%20/g;s/,/%2C/g;s/:/%3A/g')" --data-binary x)
wait_state "$id" "retry done dead" 10
ra=$(field "$id" "run_at - started_at")
check "503 Retry-After: an HTTP date 2 s ahead ($ra ms)" \
    test "$ra" -ge 500 -a "$ra" -le 2600
wait_state "$id" "done" 10
check_eq "...then it runs again, done" "done|2" "$(field "$id" "state || '|' || attempts")"

# --- a fatal error: its message, one line, in last_error
id=$(post "/slow/f?fatal=1" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "fatal error: dead after its one attempt" "dead|1" \
    "$(field "$id" "state || '|' || attempts")"
le=$(field "$id" last_error)
case $le in
"fastcgi: $PHPFPM_SOCK_main: status 500: PHP message: PHP Fatal error:"*"Call to undefined function nope_this_function_does_not_exist()"*)
	ok "fatal error's message in last_error" ;;
*) not_ok "fatal error's message in last_error" "$le" ;;
esac
check_eq "last_error is one line" 1 "$(field "$id" last_error | wc -l)"

# --- a slow answer past the queue's timeout (1 s)
id=$(post "/slow/s?sleep_ms=3000" --data-binary x)
wait_state "$id" "done dead" 10
check_eq "slow answer: timeout recorded" "dead|timeout after 1s" \
    "$(field "$id" "state || '|' || last_error")"

# --- a socket that does not exist: each attempt fails, the log says so once
ids=""
for i in 1 2 3 4 5; do ids="$ids $(post "/down/x" --data-binary x)"; done
for id in $ids; do wait_state "$id" "dead" 10; done
check_eq "missing socket in last_error" \
    "dead|2|fastcgi: $T/no-such.sock: connect: No such file or directory" \
    "$(field "$id" "state || '|' || attempts || '|' || last_error")"
n=$(grep -c "warn: helper: fastcgi: $T/no-such.sock: connect" "$T/fcgiq.log")
check "unreachable logged once a minute, not once a job ($n lines, 10 attempts)" \
    test "$n" -eq 1

# --- kept connections: 200 jobs, the helper's open fds do not grow
# The active helper: the pid holding the lock on its lock file.
held_lock() {
	local ino
	ino=$(stat -c %i "$DB-helper.lock" 2>/dev/null) || return 0
	awk -v ino="$ino" '$2 != "->" { split($6, a, ":"); if (a[3] == ino) print $5 }' \
	    /proc/locks | head -1
}
helper=$(held_lock)
helper_fds() { ls "/proc/$helper/fd" 2>/dev/null | wc -l; }
fds0=$(helper_fds)
done_k() {
	sql "SELECT count(*) FROM jobs WHERE request_uri LIKE '/php/k%' AND state = 'done'"
}
pids=""
for i in $(seq 200); do
	curl -s -o /dev/null -X POST --data-binary "$i" "$BASE/php/k?n=$i" &
	pids="$pids $!"
	if [ $((i % 20)) -eq 0 ]; then wait $pids; pids=""; fi
done
for i in $(seq 100); do [ "$(done_k)" = 200 ] && break; sleep 0.2; done
check_eq "200 jobs done" 200 "$(done_k)"
fds1=$(helper_fds)
check "helper $helper's fds flat ($fds0 before, $fds1 after)" \
    test -n "$helper" -a "$fds1" -le $((fds0 + 5))
check "no broken answer logged" test "$(grep -c \
    'fastcgi: .*\(mid-answer\|record\|malformed\|CGI headers\)' "$T/fcgiq.log")" -eq 0

# --- SIGTERM: an answer within the grace (3 s) is kept; one past it is
# aborted and its job released to run again
a=$(post "/long/a?sleep_ms=1000" --data-binary x)
b=$(post "/long/b?sleep_ms=10000" --data-binary x)
wait_state "$a" running 10
wait_state "$b" running 10
stop_all $FCGIQ_PIDS >/dev/null
check_eq "SIGTERM: the answer within grace is kept" "done|1" \
    "$(field "$a" "state || '|' || attempts")"
le=$(field "$b" "state || '|' || attempts || '|' || last_error")
case $le in
"queued|1|helper stopping (aborted)"*) ok "SIGTERM: the one past grace released ($le)" ;;
*) not_ok "SIGTERM: the one past grace released" "$le" ;;
esac

done_testing
