#!/bin/bash
# tests/e2e/http-handler.sh: the http: handler kind with the real programs.
# curl -> nginx -> fcgiq (-s, helper = no) -> SQLite -> `fcgiq work` (the
# helper, started and stopped by the suite) -> nginx -> PHP-FPM running
# tests/handlers/php/job.php, which records what it saw and answers what the
# job's query string asks.  The same nginx serves the upstreams: plain HTTP,
# HTTPS with a certificate from a CA made here with openssl (trusted through
# tls_ca), HTTPS with a self-signed one (not trusted), and static files for
# the binary and the huge answer.
#
# Covers: 2xx done with the body as result and its media type; the method,
# the body byte for byte, Content-Type, Host from the URL, the length
# recomputed, the stored headers but the hop-by-hop ones (and Proxy), and
# Fcgiq-Job-Id / -Queue / -Attempt as the upstream received them; a binary
# answer kept byte for byte; connections kept alive; a redirect not
# followed; 429 with Retry-After setting the next run;
# 503 retried then done; 500 until dead; 404 dead at once; a PHP fatal
# error; the timeout; an answer of 100 MB (a failed attempt, the helper's
# memory bounded); TLS verified through tls_ca, an untrusted certificate a
# failed attempt with a clear last_error; connection refused retried with
# backoff and logged once a minute, not once a job; SIGTERM: a request
# in flight finishes within grace, one past it is aborted and its job
# released, to run again under the next helper; the shipped example,
# conf-examples/http/fcgiq.conf.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/phpfpm-lib.sh"

for c in nginx curl sqlite3 openssl sha256sum; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
phpfpm_find || skip_all "php-fpm not installed"
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"

SRC=$(cd "$top_srcdir" && pwd -P)	# PHP-FPM wants a path without ".."
DB=$T/var/q.db
SOCK=$T/run/fcgiq.sock
REC=$T/rec
WWW=$T/www
mkdir -p "$T/var" "$T/run" "$REC" "$WWW" "$T/tls"
P_IN=$(free_port)	# intake
P_UP=$(free_port)	# upstream, plain
P_TLS=$(free_port)	# upstream, HTTPS, certificate from our CA
P_BAD=$(free_port)	# upstream, HTTPS, self-signed
P_DOWN=$(free_port)	# nothing listens
IN=http://127.0.0.1:$P_IN

# --- certificates: a CA, a server certificate it signs, a self-signed one
(
	cd "$T/tls" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=fcgiq test CA" \
	    -keyout ca.key -out ca.pem &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
	    -keyout srv.key -out srv.csr &&
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >srv.ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	    -days 2 -extfile srv.ext -out srv.pem &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    -keyout self.key -out self.pem
) >"$T/tls/openssl.log" 2>&1 || bail "openssl: $(tail -3 "$T/tls/openssl.log")"

# --- PHP-FPM, and static answers: 64 KiB of every byte value, 100 MB
phpfpm_start app 4 || bail "php-fpm did not start"
head -c 65536 /dev/urandom >"$WWW/bin.dat"
truncate -s 100M "$WWW/huge.dat"

# The upstream side of nginx: what it received goes to its access log.
upstream_locations() {
	cat <<-EOF
	location / {
		include fastcgi_params;
		fastcgi_param SCRIPT_FILENAME $SRC/tests/handlers/php/job.php;
		fastcgi_param RECORD_DIR $REC;
		# What fastcgi: would pass, from the headers http: sends.
		fastcgi_param FCGIQ_JOB_ID \$http_fcgiq_job_id;
		fastcgi_param FCGIQ_ATTEMPT \$http_fcgiq_attempt;
		fastcgi_pass unix:$PHPFPM_SOCK_app;
	}
	# Static files answer a POST too (405 turned into the file).
	location /static/ {
		alias $WWW/;
		default_type application/octet-stream;
		error_page 405 =200 \$uri;
	}
	EOF
}

cat >"$T/nginx.conf" <<EOF
user root;
worker_processes 1;
events { worker_connections 512; }
http {
	client_max_body_size 4m;
	client_body_temp_path $T/nginx/tmp;
	fastcgi_temp_path $T/nginx/tmp;
	log_format seen '\$server_port|\$request_method|\$http_host|\$content_length|\$content_type|\$http_x_custom|\$http_x_hop|\$http_keep_alive|\$http_proxy|\$http_te|\$http_upgrade|\$http_expect|\$http_accept_encoding|\$http_fcgiq_job_id|\$http_fcgiq_queue|\$http_fcgiq_attempt|\$http_connection|\$connection_requests';
	server {
		listen 127.0.0.1:$P_IN;
		access_log off;
		location ~ ^/q/([a-z]+)/ {
			include fastcgi_params;
			fastcgi_param HTTP_PROXY "";
			fastcgi_param FCGIQ_QUEUE \$1;
			fastcgi_pass unix:$SOCK;
		}
	}
	server {
		listen 127.0.0.1:$P_UP;
		access_log $T/nginx/logs/seen.log seen;
		$(upstream_locations)
	}
	server {
		listen 127.0.0.1:$P_TLS ssl;
		ssl_certificate $T/tls/srv.pem;
		ssl_certificate_key $T/tls/srv.key;
		access_log $T/nginx/logs/seen.log seen;
		$(upstream_locations)
	}
	server {
		listen 127.0.0.1:$P_BAD ssl;
		ssl_certificate $T/tls/self.pem;
		ssl_certificate_key $T/tls/self.key;
		access_log $T/nginx/logs/seen.log seen;
		$(upstream_locations)
	}
}
EOF
cp /etc/nginx/fastcgi_params "$T/"
start_nginx "$T/nginx.conf" || bail "nginx did not start"

UP=http://127.0.0.1:$P_UP
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
helper   = no
grace    = 3s
log      = info
log_file = $T/fcgiq.log

[queue app]
handler      = http:$UP/app
concurrency  = 4
max_attempts = 3
timeout      = 2s
backoff      = 50ms..10s

[queue capped]
handler      = http:$UP/app
max_attempts = 2
backoff      = 50ms..300ms

[queue timeout]
handler      = http:$UP/app
timeout      = 1s
max_attempts = 1

[queue bin]
handler      = http:$UP/static/bin.dat

[queue noresult]
handler      = http:$UP/static/bin.dat
max_result   = 0

[queue huge]
handler      = http:$UP/static/huge.dat
max_attempts = 1

[queue tls]
handler      = http:https://localhost:$P_TLS/tls
tls_ca       = $T/tls/ca.pem
max_attempts = 1

[queue untrusted]
handler      = http:https://localhost:$P_BAD/tls
tls_ca       = $T/tls/ca.pem
max_attempts = 1

[queue down]
handler      = http:http://127.0.0.1:$P_DOWN/x
concurrency  = 4
max_attempts = 4
backoff      = 100ms..300ms

[queue slow]
handler      = http:$UP/slow
timeout      = 30s
concurrency  = 2
max_attempts = 3
EOF
"$FCGIQ" -t -c "$T/fcgiq.conf" >"$T/t.out" 2>&1 || bail "fcgiq -t: $(cat "$T/t.out")"

"$FCGIQ" -c "$T/fcgiq.conf" -s "$SOCK" 2>>"$T/fcgiq.stderr" &
track $!
wait_for test -S "$SOCK" || bail "fcgiq did not bind $SOCK"

WORK=""
start_helper() {
	"$FCGIQ" work -c "$T/fcgiq.conf" 2>>"$T/work.stderr" &
	WORK=$!
	track "$WORK"
}
start_helper

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# post QUEUE QUERY [curl args...]: the new job's id on stdout.
post() {
	local q=$1 query=$2
	shift 2
	curl -s -X POST --data-binary "${BODY:-x}" "$@" "$IN/q/$q/?$query" |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
# wait_state ID "STATE..." [SECONDS]
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
# seen ID ATTEMPT FIELD: what nginx logged for the job's attempt (1-based
# field of the seen log_format).
seen() { awk -F'|' -v id="$1" -v a="$2" '$14 == id && $16 == a' "$T/nginx/logs/seen.log" | head -1 | cut -d'|' -f"$3"; }
# rec ID ATTEMPT EXPR: a value from what job.php recorded (php -r).
rec() {
	php -r '$r = json_decode(file_get_contents($argv[1]), true); echo '"$3"';' \
	    "$REC/$1.$2.json" 2>/dev/null
}

# --- 2xx: done, the body is the result, its media type kept
id=$(post app "type=application/json" -H "Content-Type: text/plain")
check "intake answered with a job id" test -n "$id"
wait_state "$id" "done dead" 10
check_eq "200: done after 1 attempt" "done|1" "$(field "$id" "state || '|' || attempts")"
check_eq "200: the body is the result" "ok $id 1" "$(field "$id" "CAST(result AS TEXT)")"
check_eq "200: the answer's media type is the result's" "application/json" "$(field "$id" result_type)"

# --- what the upstream received: method, body, headers
head -c 3000 /dev/urandom >"$T/body.bin"
printf '\000\r\n\377' >>"$T/body.bin"
id=$(BODY=@$T/body.bin post app "a=1" -X PUT \
    -H "Content-Type: application/x-thing" -H "X-Custom: c" \
    -H "Proxy: http://evil.example:3128" -H "Connection: keep-alive, X-Hop" \
    -H "X-Hop: 1" -H "Keep-Alive: 300" -H "TE: trailers" -H "Upgrade: h2c" \
    -H "Expect:" -H "Accept-Encoding: gzip" -H "Fcgiq-Attempt: 99")
wait_state "$id" "done dead" 10
check_eq "PUT: done" "done" "$(field "$id" state)"
IFS='|' read -r port method host clen ctype xcustom xhop kalive proxy te upgrade \
    expect aenc jid jq jattempt conn creqs < <(awk -F'|' -v id="$id" '$14 == id' "$T/nginx/logs/seen.log")
check_eq "upstream: the original method" "PUT" "$method"
check_eq "upstream: Host from the URL" "127.0.0.1:$P_UP" "$host"
check_eq "upstream: the length recomputed" "$(stat -c %s "$T/body.bin")" "$clen"
check_eq "upstream: the job's Content-Type" "application/x-thing" "$ctype"
check_eq "upstream: a stored header passed on" "c" "$xcustom"
check_eq "upstream: no header Connection named" "-" "$xhop"
check_eq "upstream: no Keep-Alive, TE, Upgrade" "-|-|-" "$kalive|$te|$upgrade"
check_eq "upstream: no Proxy" "-" "$proxy"
check_eq "upstream: no Expect, no Accept-Encoding" "-|-" "$expect|$aenc"
check_eq "upstream: Fcgiq-Job-Id, -Queue, -Attempt (the client's dropped)" \
    "$id|app|1" "$jid|$jq|$jattempt"
check_eq "upstream: the connection is kept alive (HTTP/1.1, no Connection)" "-" "$conn"
check_eq "upstream: the body byte for byte" "$(sha256sum <"$T/body.bin" | cut -d' ' -f1)" \
    "$(rec "$id" 1 '$r["input_sha256"]')"
check_eq "upstream: the job's query string" "1" "$(rec "$id" 1 '$r["get"]["a"]')"

# --- a binary answer, kept byte for byte
id=$(post bin "")
wait_state "$id" "done dead" 10
sql "SELECT writefile('$T/result.bin', result) FROM jobs WHERE id = '$id'" >/dev/null
check_eq "binary answer: done" "done" "$(field "$id" state)"
check "binary answer: the result byte for byte" cmp -s "$WWW/bin.dat" "$T/result.bin"
check_eq "binary answer: its media type" "application/octet-stream" "$(field "$id" result_type)"

# --- max_result = 0: no result kept, and none needed to be done
id=$(post noresult "")
wait_state "$id" "done dead" 10
check_eq "max_result 0: done, nothing kept" "done|0" \
    "$(field "$id" "state || '|' || length(result)")"

# --- statuses: 429 + Retry-After, 503 then 200, 500 until dead, 404 dead
id429=$(post app "status=429&retry_after=2&until=2")
id503=$(post app "status=503&until=2")
id500=$(post app "status=500")
id404=$(post app "status=404")
idcap=$(post capped "status=429&retry_after=3600")
wait_state "$id404" "dead" 10
check_eq "404: dead after 1 attempt" "dead|1" "$(field "$id404" "state || '|' || attempts")"
check_eq "404: last_error names the status, the upstream and the body" \
    "http 404 from 127.0.0.1:$P_UP: ok $id404 1" "$(field "$id404" last_error)"
wait_state "$id503" "done" 10
check_eq "503: retried, then done" "done|2" "$(field "$id503" "state || '|' || attempts")"
wait_state "$id500" "dead" 15
check_eq "500: retried to max_attempts, dead" "dead|3" "$(field "$id500" "state || '|' || attempts")"
wait_state "$idcap" "dead" 10
check_eq "429 + Retry-After: 3600 with backoff ..300ms: run again at once (the cap)" \
    "dead|2" "$(field "$idcap" "state || '|' || attempts")"
wait_state "$id429" "done dead" 10
first=$(rec "$id429" 1 '$r["server"]["REQUEST_TIME_FLOAT"] * 1000')
second=$(rec "$id429" 2 '$r["server"]["REQUEST_TIME_FLOAT"] * 1000')
delta=$(awk -v a="${first:-0}" -v b="${second:-0}" 'BEGIN { printf "%d", b - a }')
check_eq "429: retried, then done" "done|2" "$(field "$id429" "state || '|' || attempts")"
check "429 + Retry-After: 2: the second attempt 2 s later (${delta} ms)" \
    test "$delta" -ge 1900 -a "$delta" -le 4000

# --- a redirect is not followed: a failed attempt
id=$(post capped "status=302")
wait_state "$id" "dead" 10
check_eq "302: not followed, retried, dead" "dead|2" "$(field "$id" "state || '|' || attempts")"
check "302: last_error says so" grep -q "^http 302 from 127.0.0.1:$P_UP" <<<"$(field "$id" last_error)"

# --- keep-alive: connections carry more than one request
check "keep-alive: a connection to the upstream served several jobs" \
    awk -F'|' -v p="$P_UP" '$1 == p && $18 > 1 { found = 1 } END { exit !found }' \
    "$T/nginx/logs/seen.log"

# --- a PHP fatal error: a 500, retried, PHP's message in last_error
id=$(post capped "fatal=1")
wait_state "$id" "dead" 10
check_eq "PHP fatal: dead after max_attempts" "dead|2" "$(field "$id" "state || '|' || attempts")"
check "PHP fatal: last_error says 500" grep -q "^http 500 from 127.0.0.1:$P_UP" <<<"$(field "$id" last_error)"

# --- the timeout (1 s): the request aborted, the attempt failed
id=$(post timeout "sleep_ms=3000")
wait_state "$id" "done dead" 10
check_eq "timeout: the attempt failed" "dead|1" "$(field "$id" "state || '|' || attempts")"
check_eq "timeout: last_error" "timeout after 1s" "$(field "$id" last_error)"

# --- TLS: verified through tls_ca; an untrusted certificate fails
id=$(post tls "")
wait_state "$id" "done dead" 10
check_eq "https, trusted through tls_ca: done" "done" "$(field "$id" state)"
check_eq "https: the result" "ok $id 1" "$(field "$id" "CAST(result AS TEXT)")"
id=$(post untrusted "")
wait_state "$id" "done dead" 10
err=$(field "$id" last_error)
check_eq "https, untrusted: the attempt failed" "dead|1" "$(field "$id" "state || '|' || attempts")"
check "https, untrusted: last_error says why ($err)" \
    grep -q "^http: localhost:$P_BAD: SSL certificate problem" <<<"$err"
check "https, untrusted: nothing reached the application" \
    test ! -e "$REC/$id.1.json"

# --- an answer of 100 MB: a failed attempt, the helper's memory bounded
id=$(post huge "")
wait_state "$id" "done dead" 20
check_eq "100 MB answer: failed" "dead|1" "$(field "$id" "state || '|' || attempts")"
check_eq "100 MB answer: last_error" \
    "http 200 from 127.0.0.1:$P_UP: answer larger than max_result (65536 bytes)" \
    "$(field "$id" last_error)"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$WORK/status")
check "100 MB answer: the helper's peak memory stays small (${hwm} KiB < 40 MiB)" \
    test "${hwm:-999999}" -lt 40960

# --- connection refused: retried with backoff, logged once a minute
ids=""
for i in 1 2 3 4 5 6; do ids="$ids $(post down "")"; done
for id in $ids; do wait_state "$id" "dead" 15; done
check_eq "refused: each job retried to max_attempts" "6 x dead|4" \
    "$(for id in $ids; do field "$id" "state || '|' || attempts"; done | sort | uniq -c | awk '{ print $1 " x " $2 }')"
id=${ids##* }
check "refused: last_error is curl's reason" \
    grep -q "^http: 127.0.0.1:$P_DOWN: Failed to connect to 127.0.0.1 port $P_DOWN" <<<"$(field "$id" last_error)"
gaps=$(sql "SELECT COUNT(*) FROM jobs WHERE queue = 'down' AND finished_at - created_at >= 300")
check_eq "refused: 24 attempts, not a spin (every job took >= 300 ms of backoff)" "6" "$gaps"
check_eq "refused: the log says unreachable once" "1" \
    "$(grep -c "http: 127.0.0.1:$P_DOWN: unreachable" "$T/fcgiq.log")"
check_eq "refused: and no line per failed attempt (log = info)" "0" \
    "$(grep -c "attempt [0-9]*: http: 127.0.0.1:$P_DOWN" "$T/fcgiq.log")"

# --- SIGTERM: in flight within grace (3 s) finishes; past it, released
fast=$(post slow "sleep_ms=1000")
slow=$(post slow "sleep_ms=8000&until=2")
wait_for test -e "$REC/$slow.1.json"
kill -TERM "$WORK"
wait_state "$fast" "done" 10
check_eq "SIGTERM: a request that ends within grace is done" "done|1" \
    "$(field "$fast" "state || '|' || attempts")"
wait_state "$slow" "queued" 10
check_eq "SIGTERM: one past the grace is aborted and released" "queued|1" \
    "$(field "$slow" "state || '|' || attempts")"
# (eval: ps runs at each try, not once when wait_for is called)
check "SIGTERM: the helper exits" wait_for eval '[ -z "$(ps -o pid= -p "$WORK")" ]'
start_helper
wait_state "$slow" "done" 15
check_eq "the released job runs again under the next helper" "done|2" \
    "$(field "$slow" "state || '|' || attempts")"

# --- the shipped example, paths and URLs made this test's: fcgiq -t takes
# it, and a job of its deploy queue goes over HTTPS trusted through tls_ca
stop_pid "$WORK"
sed -e "s|^database = .*|database = $T/var/example.db|" \
    -e "s|https://ci.internal:8443/hooks/deploy|https://localhost:$P_TLS/deploy|" \
    -e "s|/etc/fcgiq/internal-ca.pem|$T/tls/ca.pem|" \
    -e "s|http://127.0.0.1:8081/|$UP/|" \
    -e "s|^\[fcgiq\]|[fcgiq]\nlog_file = $T/example.log|" \
    "$top_srcdir/conf-examples/http/fcgiq.conf" >"$T/example.conf"
check "example: fcgiq -t takes the shipped http: example" \
    sh -c '"$0" -t -c "$1" >/dev/null' "$FCGIQ" "$T/example.conf"
printf 'deploy v1' | "$FCGIQCTL" -c "$T/example.conf" enqueue deploy >"$T/enq.out" 2>&1
id=$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p; s/^\([A-Za-z0-9_-]\{30,\}\)$/\1/p' "$T/enq.out" | head -1)
"$FCGIQ" work -c "$T/example.conf" 2>>"$T/work.stderr" &
track $!
ex() { sqlite3 -cmd ".timeout 5000" "$T/var/example.db" "SELECT $1 FROM jobs WHERE id = '$id'"; }
for i in $(seq 100); do [ "$(ex state)" = done ] && break; sleep 0.1; done
check_eq "example: the deploy job is done over HTTPS" "done|ok $id 1" \
    "$(ex "state || '|' || CAST(result AS TEXT)")"

done_testing
