#!/bin/bash
# tests/e2e/apache.sh: Apache 2.4 + mod_proxy_fcgi in front of fcgiq, on the
# shipped conf-examples/apache-proxy-fcgi.conf (socket path substituted),
# with fcgiq under the shipped conf-examples/spawn-fcgi.sh as www-data.
#
# Covers: POSTs to /hooks/ and /mail/ land as jobs in the queues those
# locations name (ProxyFCGISetEnvIf FCGIQ_QUEUE), with method, URI, body
# and headers; the Location: header and the status API through Apache;
# DELETE through Apache; a location naming an unknown queue gets 404; the
# body limit; Apache stopped by the pid in its pid file.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/apache-lib.sh"

for c in spawn-fcgi curl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
for m in proxy proxy_fcgi; do
	[ -f "$APACHE_MODULES/mod_$m.so" ] || skip_all "no mod_$m"
done

EX=$top_srcdir/conf-examples
DB=$T/var/queue.db
SOCK=$T/run/fcgiq.sock
# The shipped spawn-fcgi command line, run as root, dropping to www-data.
apache_fcgiq
check_eq "spawn-fcgi started 2 fcgiq processes" "2" "$(echo $FCGIQ_PIDS | wc -w)"
check_eq "fcgiq runs as www-data (spawn-fcgi -u)" "www-data" \
    "$(ps -o user= -p "$(echo $FCGIQ_PIDS | tr ' ' ,)" | sort -u | tr -d ' ')"
check_eq "the socket belongs to www-data (spawn-fcgi -U)" "www-data" "$(stat -c %U "$SOCK")"

# The shipped site file, with this run's socket; plus a location naming a
# queue fcgiq does not know.
sed "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" "$EX/apache-proxy-fcgi.conf" >"$T/site.conf"
grep -q "unix:$SOCK|" "$T/site.conf" ||
    bail "conf-examples/apache-proxy-fcgi.conf no longer has the socket path the test substitutes"
cat >>"$T/site.conf" <<EOF
<Location "/nosuch/">
	ProxyPass "unix:$SOCK|fcgi://localhost/"
	ProxyFCGISetEnvIf "true" FCGIQ_QUEUE "nosuch"
</Location>
EOF
apache_conf "$T/site.conf" proxy proxy_fcgi
apache_start || bail "apache did not start: $(cat "$T/apache/configtest.log" "$T/apache/start.log" "$T/apache/logs/error.log" 2>/dev/null)"
ok "apache2 -t accepts the shipped apache-proxy-fcgi.conf and Apache starts"
check_eq "Apache's children run as www-data" "www-data" \
    "$(ps -o user= --ppid "$APACHE_PID" | sort -u | tr -d ' ' | xargs)"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }

# --- intake into two queues
curl -s -D "$T/h1" -o "$T/b1" -X POST -H 'Content-Type: application/json' \
    -H 'X-Custom: one' --data-binary '{"n":1}' "$APACHE_URL/hooks/a?x=1"
check "POST /hooks/: 202 Accepted" grep -q '^HTTP/1.1 202' "$T/h1"
id1=$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/b1")
check "POST /hooks/: a job id" test -n "$id1"
check_eq "POST /hooks/: Location: through Apache" "/jobs/$id1" \
    "$(sed -n 's/^Location: *\([^[:space:]]*\).*/\1/p' "$T/h1")"
check_eq "job 1 stored in queue default" "default" "$(field "$id1" queue)"
check_eq "job 1: method, URI, query, body" "POST|/hooks/a?x=1|x=1|{\"n\":1}" \
    "$(field "$id1" "method || '|' || request_uri || '|' || query_string || '|' || CAST(body AS TEXT)")"
check_eq "job 1: content type" "application/json" "$(field "$id1" content_type)"
check "job 1: request headers kept" grep -q '"X-Custom": *"one"\|HTTP_X_CUSTOM' \
    <<<"$(field "$id1" headers)"

code=$(curl -s -o "$T/b2" -w '%{http_code}' -X PUT --data-binary 'mail body' \
    "$APACHE_URL/mail/send")
check_eq "PUT /mail/: 202" "202" "$code"
id2=$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/b2")
check_eq "job 2 stored in queue mail" "mail|mail body" \
    "$(field "$id2" "queue || '|' || CAST(body AS TEXT)")"
check_eq "the answer names the queue" "mail" \
    "$(sed -n 's/.*"queue" *: *"\([^"]*\)".*/\1/p' "$T/b2")"

# GitHub: a redelivery (same X-GitHub-Delivery) is the first job again.
d="delivery-$$"
a=$(curl -s -X POST -H "X-GitHub-Delivery: $d" --data-binary '{}' "$APACHE_URL/github" |
    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
b=$(curl -s -X POST -H "X-GitHub-Delivery: $d" --data-binary '{}' "$APACHE_URL/github" |
    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
check "POST /github: a job in queue github" test "$(field "$a" queue)" = github
check_eq "POST /github again with the same delivery: the same job" "$a" "$b"

# --- the status API through Apache
st=$(curl -s -w '\n%{http_code}' "$APACHE_URL/jobs/$id1")
check_eq "GET /jobs/ID: 200" "200" "$(tail -1 <<<"$st")"
check "GET /jobs/ID: the job as JSON, queued" grep -q '"state" *: *"queued"' <<<"$st"
check "GET /jobs/ID: its id" grep -q "\"id\" *: *\"$id1\"" <<<"$st"
check_eq "GET /jobs/unknown: 404" "404" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$APACHE_URL/jobs/AAAAAAAAAAAAAAAAAAAAAA")"
check_eq "DELETE /jobs/ID through Apache: 204" "204" \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$APACHE_URL/jobs/$id2")"
check_eq "... and the job is cancelled" "cancelled" "$(field "$id2" state)"

# --- errors
code=$(curl -s -o "$T/b3" -w '%{http_code}' -X POST --data-binary x "$APACHE_URL/nosuch/x")
check_eq "a location naming an unknown queue: 404" "404" "$code"
check "... with a JSON error naming the queue" grep -q 'nosuch' "$T/b3"
check_eq "GET on an intake location: 405" "405" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$APACHE_URL/hooks/a")"
head -c 1100000 /dev/zero >"$T/big"
check_eq "a body over LimitRequestBody: 413 from Apache" "413" \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/big" "$APACHE_URL/hooks/big")"
check_eq "nothing else was stored" "3" "$(sql "SELECT count(*) FROM jobs")"

# --- 200 POSTs, 8 at a time, all stored
curl -s -Z --parallel-max 8 -X POST --data-binary x "$APACHE_URL/hooks/n[1-200]" >"$T/200.out" 2>/dev/null
check_eq "200 parallel POSTs: 200 ids" "200" "$(grep -o '"id"' "$T/200.out" | wc -l)"
check_eq "... 200 more jobs in queue default" "201" \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'default'")"
check_eq "no proxy errors in Apache's log" "" \
    "$(grep -i 'proxy.*error\|AH0' "$T/apache/logs/error.log" | grep -v 'AH00558\|AH00489\|AH00094\|resuming normal' | head -3)"

# --- stop Apache by its pid file
kids=$(descendants "$APACHE_PID" | xargs)
check "Apache stops on SIGTERM to the pid in its pid file" apache_stop
left=""
for p in $kids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check_eq "none of Apache's children is left" "" "$left"
for p in $FCGIQ_PIDS; do stop_pid "$p"; done

done_testing
