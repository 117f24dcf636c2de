#!/bin/bash
# tests/e2e/caddy.sh: Caddy 2 (reverse_proxy, transport fastcgi) in front of
# fcgiq, on the shipped conf-examples/Caddyfile (socket path, port and admin
# port substituted), with fcgiq under the shipped conf-examples/spawn-fcgi.sh.
# Caddy runs as root with its home and XDG directories in $T, automatic
# HTTPS off, its admin API on a private port; it is started and stopped by
# pid.
#
# Covers: a small body and a 3 MB binary one byte-exact in the database; a
# chunked upload (Caddy sends CONTENT_LENGTH=-1) accepted and stored
# byte-exact, one over max_body answered 413 with nothing stored; the
# status API and DELETE through Caddy; the deduplicating location; 100
# requests on one kept-alive connection; parallel load, every
# acknowledged job stored.
. "$(dirname "$0")/../lib.sh"
command -v caddy >/dev/null ||
    skip_all "caddy not installed (tests/install-deps.sh installs it)"
for c in spawn-fcgi curl sqlite3 cmp; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
. "$(dirname "$0")/responder-lib.sh"

# procs_of PATH: pids of processes with PATH (unique to this run) as a word
# of their command line; found by what they run, never by name.
procs_of() {
	ps -e -o pid= -o args= |
	    awk -v p="$1" '{ for (i = 2; i <= NF; i++) if ($i == p) { print $1; next } }'
}

N=${LOAD_REQUESTS:-2000}
C=${LOAD_CONCURRENCY:-32}

# fcgiq: max_body 4M, so 3 MB passes and 5 MB does not.
resp_conf "max_body = 4M"
resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"

# Caddy's home and XDG directories (autosave.json, storage) under $T.
mkdir -p "$T/caddy/config" "$T/caddy/data"
CADDY_ENV=(HOME="$T/caddy" XDG_CONFIG_HOME="$T/caddy/config"
    XDG_DATA_HOME="$T/caddy/data")
check "the shipped Caddyfile is as caddy fmt lays it out" \
    cmp -s "$EXAMPLES/Caddyfile" <(env "${CADDY_ENV[@]}" caddy fmt "$EXAMPLES/Caddyfile")
# caddy_start: on a free port (drawn again if it is taken after all).
# Sets BASE and CADDY_PID (tracked).
caddy_start() {
	local i port admin
	for i in 1 2 3 4 5; do
		port=$(free_port)
		admin=$(free_port)
		sed -e "s|unix//run/fcgiq/fcgiq.sock|unix/$SOCK|" \
		    -e "s|^http://:8080 {|http://:$port {|" \
		    -e "s|admin 127.0.0.1:2019|admin 127.0.0.1:$admin|" \
		    "$EXAMPLES/Caddyfile" >"$T/caddy/Caddyfile"
		[ "$(grep -c "unix/$SOCK" "$T/caddy/Caddyfile")" -ge 4 ] &&
		    grep -q "^http://:$port {" "$T/caddy/Caddyfile" &&
		    grep -q "admin 127.0.0.1:$admin" "$T/caddy/Caddyfile" ||
		    bail "conf-examples/Caddyfile no longer has the lines the test substitutes"
		# A simple command, not a function (whose & forks a
		# subshell): env execs caddy, so $! is Caddy's own pid.
		env "${CADDY_ENV[@]}" caddy run --config "$T/caddy/Caddyfile" \
		    --adapter caddyfile >>"$T/caddy/caddy.log" 2>&1 &
		CADDY_PID=$!
		track "$CADDY_PID"
		BASE="http://127.0.0.1:$port"
		wait_for bash -c "! kill -0 $CADDY_PID 2>/dev/null || \
		    curl -s -o /dev/null $BASE/" || return 1
		kill -0 "$CADDY_PID" 2>/dev/null && return 0
		grep -q "address already in use" "$T/caddy/caddy.log" || return 1
	done
	return 1
}
caddy_start || bail "caddy did not start: $(tail -5 "$T/caddy/caddy.log")"
ok "Caddy starts on the shipped Caddyfile"
check_eq "the tracked pid is Caddy itself, as root" "$(command -v caddy) root" \
    "$(readlink "/proc/$CADDY_PID/exe") $(ps -o user= -p "$CADDY_PID" | tr -d ' ')"

field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# body_is ID FILE: the job's body, written out by sqlite3, is FILE's bytes.
body_is() {
	rm -f "$T/out.bin"
	sql "SELECT writefile('$T/out.bin', body) FROM jobs WHERE id = '$1'" >/dev/null &&
	    cmp -s "$T/out.bin" "$2"
}
# post FILE URL [CURL ARGS]: POST FILE's bytes; the answer in $T/h, $T/b,
# the status code printed.
post() {
	local f=$1 u=$2
	shift 2
	curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' -X POST \
	    --data-binary @"$f" "$@" "$BASE$u"
}
id_of() { json_field "$T/b" id; }

# --- a small body
printf 'hello caddy\n' >"$T/small"
code=$(post "$T/small" '/hooks/small?x=1' -H 'Content-Type: text/plain' \
    -H 'X-Custom: one' -H 'Proxy: http://attacker.example')
check_eq "POST /hooks/ through Caddy: 202" 202 "$code"
id1=$(id_of)
check "... an id starting with a letter or digit" grep -Eq '^[A-Za-z0-9][A-Za-z0-9_-]{29}$' <<<"$id1"
check_eq "... Location: through Caddy" "/jobs/$id1" \
    "$(sed -n 's/^Location: *\([^[:space:]]*\).*/\1/p' "$T/h")"
check_eq "... stored in queue default: method, URI, query, type" \
    "default|POST|/hooks/small?x=1|x=1|text/plain" \
    "$(field "$id1" "queue || '|' || method || '|' || request_uri || '|' || query_string || '|' || content_type")"
check "... the body byte-exact" body_is "$id1" "$T/small"
check "... request headers kept" grep -q '"HTTP_X_CUSTOM":"one"' <<<"$(field "$id1" headers)"
check_eq "... but not the client's Proxy: header (httpoxy)" "" \
    "$(field "$id1" headers | grep -o 'HTTP_PROXY')"

# --- 3 MB of binary
head -c 3145728 /dev/urandom >"$T/big"
code=$(post "$T/big" /mail/big -H 'Content-Type: application/octet-stream')
check_eq "POST of 3 MB binary to /mail/: 202" 202 "$code"
id2=$(id_of)
check_eq "... in queue mail, 3145728 bytes" "mail|3145728" \
    "$(field "$id2" "queue || '|' || length(body)")"
check "... byte-exact (sqlite3 writefile, cmp)" body_is "$id2" "$T/big"
"$FCGIQCTL" -c "$T/fcgiq.conf" show "$id2" >"$T/show" 2>&1
check "... fcgiqctl show finds it" grep -q "$id2" "$T/show"

# --- chunked: Caddy passes CONTENT_LENGTH=-1, the body in FCGI_STDIN
head -c 2000000 /dev/urandom >"$T/chunked"
code=$(post "$T/chunked" /hooks/chunked -H 'Transfer-Encoding: chunked')
check_eq "a chunked upload of 2 MB: 202" 202 "$code"
id3=$(id_of)
check "... byte-exact" body_is "$id3" "$T/chunked"
printf 'x' >"$T/one"
code=$(post "$T/one" /hooks/chunked-small -H 'Transfer-Encoding: chunked')
check_eq "a chunked upload of one byte: 202" 202 "$code"
check "... byte-exact" body_is "$(id_of)" "$T/one"
before=$(sql "SELECT count(*) FROM jobs")
head -c 5000000 /dev/urandom >"$T/toobig"
code=$(post "$T/toobig" /hooks/toobig -H 'Transfer-Encoding: chunked')
check_eq "a chunked upload over max_body: 413" 413 "$code"
check "... a JSON error" grep -q '"body too large"' "$T/b"
check_eq "... nothing stored" "$before|0" \
    "$(sql "SELECT count(*), (SELECT count(*) FROM jobs WHERE request_uri = '/hooks/toobig') FROM jobs")"
code=$(post "$T/toobig" /hooks/toobig)
check_eq "the same with a Content-Length: 413" 413 "$code"

# --- the status API through Caddy
st=$(curl -s -w '\n%{http_code}' "$BASE/jobs/$id1")
check_eq "GET /jobs/ID: 200" 200 "$(tail -1 <<<"$st")"
check "... the job as JSON, queued" grep -q "\"id\":\"$id1\".*\"state\":\"queued\"" <<<"$st"
check_eq "HEAD /jobs/ID: 200" 200 \
    "$(curl -s -I -o /dev/null -w '%{http_code}' "$BASE/jobs/$id1")"
check_eq "GET /jobs/unknown: 404" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"
check_eq "DELETE /jobs/ID: 204" 204 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/jobs/$id2")"
check_eq "... the job is cancelled" cancelled "$(field "$id2" state)"
check_eq "GET on an intake location: 405" 405 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/hooks/x")"

# --- GitHub: a redelivery is the first job again
d="delivery-$$"
a=$(curl -s -X POST -H "X-GitHub-Delivery: $d" --data-binary '{}' "$BASE/github" |
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
b=$(curl -s -X POST -H "X-GitHub-Delivery: $d" --data-binary '{}' "$BASE/github" |
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
check_eq "POST /github: a job in queue github" github "$(field "$a" queue)"
check_eq "... again with the same delivery: the same job" "$a" "$b"

# --- 100 requests on one connection: curl reuses it for every URL after
# the first (num_connects 0).
for i in $(seq 100); do
	printf 'url = "%s/hooks/ka?n=%d"\noutput = "/dev/null"\n' "$BASE" "$i"
done >"$T/ka.cfg"
curl -s -X POST --data-binary kept -w '%{http_code} %{num_connects}\n' \
    -K "$T/ka.cfg" >"$T/ka.out" 2>"$T/ka.err"
check_eq "100 POSTs in one curl: 100 answers 202" 100 "$(grep -c '^202 ' "$T/ka.out")"
check_eq "... over one connection" 1 "$(awk '{ n += $2 } END { print n }' "$T/ka.out")"
check_eq "... 100 jobs stored" 100 \
    "$(sql "SELECT count(*) FROM jobs WHERE request_uri LIKE '/hooks/ka?%'")"

# --- parallel load: whatever was acknowledged is stored
for i in $(seq "$N"); do
	printf 'url = "%s/hooks/load?n=%d"\noutput = "/dev/null"\n' "$BASE" "$i"
done >"$T/urls.cfg"
t0=$(date +%s%N)
curl -s --parallel --parallel-immediate --parallel-max "$C" \
    -X POST --data-binary '{"load":true}' \
    -w '%{http_code} %header{location}\n' -K "$T/urls.cfg" >"$T/results" 2>"$T/curl.err"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# $N POSTs at concurrency $C through Caddy: ${ms} ms ($((N * 1000 / (ms + 1))) req/s)"
echo "# answers: $(awk '{print $1}' "$T/results" | sort | uniq -c | tr '\n' ' ')"
check_eq "curl made $N requests" "$N" "$(wc -l <"$T/results")"
n202=$(awk '$1 == 202' "$T/results" | wc -l)
check_eq "every request answered 202" "$N" "$n202"
stored=$(sql "SELECT count(*) FROM jobs WHERE request_uri LIKE '/hooks/load?%'")
check "stored ($stored) >= acknowledged ($n202)" test "$stored" -ge "$n202"
awk '$1 == 202 { sub("^/jobs/", "", $2); print $2 }' "$T/results" | sort >"$T/ids.http"
sql "SELECT id FROM jobs" | sort >"$T/ids.db"
check_eq "every 202's id is in the database" "" "$(comm -23 "$T/ids.http" "$T/ids.db" | head -5)"
check "the database passes integrity_check" test "$(sql 'PRAGMA integrity_check')" = ok

# --- Caddy stayed off the internet and stops by its pid
check_eq "Caddy's log names no certificate or ACME work" "" \
    "$(grep -i -o 'acme[^"]*\|obtain[^"]*certificate' "$T/caddy/caddy.log" | head -3)"
check_eq "no FastCGI dial errors in Caddy's log" "" \
    "$(grep -o '"error":"[^"]*"' "$T/caddy/caddy.log" | head -3)"
kill "$CADDY_PID"
check "Caddy exits on SIGTERM" wait_for bash -c "! kill -0 $CADDY_PID"
check_eq "no Caddy of this run is left" "" "$(procs_of "$T/caddy/Caddyfile")"
ms=$(stop_all $FCGIQ_PIDS)
check "fcgiq exits on SIGTERM within 5 s (${ms} ms)" test "$ms" -lt 5000

done_testing
