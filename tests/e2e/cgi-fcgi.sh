#!/bin/bash
# tests/e2e/cgi-fcgi.sh: libfcgi's cgi-fcgi in front of fcgiq, through the
# shipped conf-examples/cgi-fcgi.sh (FCGIQ_SOCKET set to this run's
# socket), with fcgiq under conf-examples/spawn-fcgi.sh.  Each request is
# one run of the script, the request in a clean environment (CGI
# variables), the body on stdin, fcgiq's CGI response on stdout.
#
# Covers: a small body and 3 MiB of binary stored byte for byte, with the
# request's method, URI, query, type and headers; the queue from
# FCGIQ_QUEUE; a body without CONTENT_LENGTH (cgi-fcgi does not send it);
# fcgiq's max_body (413); the status API (GET, HEAD, DELETE, 404, 405) and
# FCGIQ_STATUS_PREFIX; 500 requests at concurrency 16 (stored >=
# acknowledged, every acknowledged id stored).  Not here, as they do not
# apply: chunked bodies (a CGI server de-chunks and sets CONTENT_LENGTH)
# and keep-alive (each run of cgi-fcgi is one request on one new FastCGI
# connection, with no HTTP connection of its own); the server's own body
# limit (there is no server: fcgiq's max_body answers).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in cgi-fcgi spawn-fcgi sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done
. "$(dirname "$0")/clients-lib.sh"

clients_fcgiq || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"

# cgi VAR=VALUE...: one run of the shipped script in a clean environment
# (stdin is the caller's); the response to $T/out, its status in CODE, the
# id of its Location: in ID.
cgi() {
	env -i PATH="$PATH" FCGIQ_SOCKET="$SOCK" "$@" \
	    sh "$EXAMPLES/cgi-fcgi.sh" >"$T/out" 2>"$T/err"
	CODE=$(sed -n '1s/^Status: \([0-9]*\).*/\1/p' "$T/out")
	ID=$(sed -n 's|^Location: *[^[:space:]]*/jobs/\([^[:space:]]*\).*|\1|p' "$T/out")
	# The JSON: what follows the blank line.
	sed '1,/^\r\{0,1\}$/d' "$T/out" >"$T/b"
}

# --- A small body, with what a CGI server sets.
printf 'small body\r\nwith a CR, a tab\t and \xc3\xa9' >"$T/small"
cgi REQUEST_METHOD=POST REQUEST_URI='/hooks/small?x=1' QUERY_STRING=x=1 \
    SCRIPT_NAME=/hooks/small SERVER_PROTOCOL=HTTP/1.1 \
    GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=192.0.2.7 \
    CONTENT_TYPE=text/plain CONTENT_LENGTH="$(wc -c <"$T/small")" \
    HTTP_X_TEST=yes HTTP_PROXY=http://evil.example:1 <"$T/small"
check_eq "a small POST: Status: 202" 202 "$CODE"
check "... Location: /jobs/<id>" grep -q '^Location: /jobs/' "$T/out"
check_eq "... the answer's id is the Location's" "$ID" "$(json_field "$T/b" id)"
check_eq "... stored in queue default, method, URI, query, type, address" \
    "default|POST|/hooks/small?x=1|x=1|text/plain|192.0.2.7" \
    "$(sql "SELECT queue || '|' || method || '|' || request_uri || '|' ||
    query_string || '|' || content_type || '|' || remote_addr FROM jobs
    WHERE id = '$ID'")"
check_eq "... with its headers, without HTTP_PROXY" '{"HTTP_X_TEST":"yes"}' \
    "$(sql "SELECT headers FROM jobs WHERE id = '$ID'")"
same_body "... the body byte for byte" "$ID" "$T/small"
small=$ID

cgi REQUEST_METHOD=PUT REQUEST_URI=/mail/send CONTENT_LENGTH=9 \
    FCGIQ_QUEUE=mail < <(printf 'mail body')
check_eq "PUT with FCGIQ_QUEUE=mail: 202, in queue mail" "202 mail" \
    "$CODE $(sql "SELECT queue FROM jobs WHERE id = '$ID'")"
mail=$ID

# --- 3 MiB of binary.
cgi REQUEST_METHOD=POST REQUEST_URI=/hooks/big \
    CONTENT_TYPE=application/octet-stream \
    CONTENT_LENGTH="$(wc -c <"$BIG")" <"$BIG"
check_eq "a 3 MiB binary POST: 202" 202 "$CODE"
same_body "... stored byte for byte" "$ID" "$BIG"

# cgi-fcgi forwards stdin only when CONTENT_LENGTH is set: without it the
# request reaches fcgiq with no body (conf-examples/cgi-fcgi.sh says so).
cgi REQUEST_METHOD=POST REQUEST_URI=/hooks/nolength <"$T/small"
check_eq "no CONTENT_LENGTH: 202 with an empty body (cgi-fcgi sends none)" \
    "202 0" "$CODE $(sql "SELECT length(body) FROM jobs WHERE id = '$ID'")"

# --- fcgiq's max_body (4M here): 413 before the body is read, and nothing
# stored.
head -c 5000000 /dev/zero >"$T/over"
n=$(sql "SELECT count(*) FROM jobs")
cgi REQUEST_METHOD=POST REQUEST_URI=/hooks/over CONTENT_LENGTH=5000000 <"$T/over"
check_eq "a body over max_body: 413 from fcgiq" 413 "$CODE"
check_eq "... nothing stored" "$n" "$(sql "SELECT count(*) FROM jobs")"

# --- The status API.
cgi REQUEST_METHOD=GET REQUEST_URI="/jobs/$small" </dev/null
check_eq "GET /jobs/ID: 200, the job, queued" "200 $small queued" \
    "$CODE $(json_field "$T/b" id) $(json_field "$T/b" state)"
cgi REQUEST_METHOD=HEAD REQUEST_URI="/jobs/$small" </dev/null
check_eq "HEAD /jobs/ID: 200, no body" "200 0" "$CODE $(wc -c <"$T/b")"
cgi REQUEST_METHOD=GET REQUEST_URI=/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA </dev/null
check_eq "GET /jobs/<unknown id>: 404" 404 "$CODE"
cgi REQUEST_METHOD=DELETE REQUEST_URI="/jobs/$mail" </dev/null
check_eq "DELETE /jobs/ID: 204" 204 "$CODE"
check_eq "... the job is cancelled" cancelled \
    "$(sql "SELECT state FROM jobs WHERE id = '$mail'")"
cgi REQUEST_METHOD=GET REQUEST_URI=/hooks/small </dev/null
check_eq "GET on an intake URI: 405" 405 "$CODE"

# A CGI program mounted under /cgi-bin/fcgiq: its status URLs are there.
cgi REQUEST_METHOD=POST REQUEST_URI=/cgi-bin/fcgiq/hooks/p CONTENT_LENGTH=1 \
    FCGIQ_STATUS_PREFIX=/cgi-bin/fcgiq/jobs/ < <(printf p)
check "FCGIQ_STATUS_PREFIX: Location under it" \
    grep -q "^Location: /cgi-bin/fcgiq/jobs/$ID" "$T/out"
cgi REQUEST_METHOD=GET REQUEST_URI="/cgi-bin/fcgiq/jobs/$ID" \
    FCGIQ_STATUS_PREFIX=/cgi-bin/fcgiq/jobs/ </dev/null
check_eq "... and GET there: 200" 200 "$CODE"

# --- 500 requests at concurrency 16, each a run of the script: stored >=
# acknowledged, every acknowledged id stored.  (No keep-alive check: one
# run of cgi-fcgi is one request on a connection of its own.)
cat >"$T/one" <<EOF
#!/bin/sh
out=\$(printf 'load %s' "\$1" | env -i PATH="\$PATH" FCGIQ_SOCKET="$SOCK" \\
    REQUEST_METHOD=POST REQUEST_URI="/hooks/load?n=\$1" QUERY_STRING="n=\$1" \\
    CONTENT_TYPE=text/plain CONTENT_LENGTH=\$((5 + \${#1})) \\
    sh "$EXAMPLES/cgi-fcgi.sh" 2>&1)
code=\$(printf '%s\n' "\$out" | sed -n '1s/^Status: \([0-9]*\).*/\1/p')
loc=\$(printf '%s\n' "\$out" | sed -n 's/^Location: *\([^[:space:]]*\).*/\1/p')
echo "\${code:-none} \$loc"
EOF
chmod 755 "$T/one"
t0=$(date +%s%N)
seq 500 | xargs -P 16 -n 1 "$T/one" >"$T/load.out"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# 500 runs at concurrency 16 in $ms ms;" \
    "answers: $(awk '{ print $1 }' "$T/load.out" | sort | uniq -c | xargs)"
n202=$(awk '$1 == 202' "$T/load.out" | wc -l)
check_eq "500 parallel POSTs: every one answered 202" 500 "$n202"
awk '$1 == 202 { sub("^/jobs/", "", $2); print $2 }' "$T/load.out" |
    sort >"$T/load.ids"
sql "SELECT id FROM jobs WHERE request_uri LIKE '/hooks/load?%'" | sort >"$T/load.db"
n=$(wc -l <"$T/load.db")
check "... stored ($n) >= acknowledged ($n202)" test "$n" -ge "$n202"
check_eq "... every acknowledged id is stored" "" \
    "$(comm -23 "$T/load.ids" "$T/load.db" | head -3)"
check_eq "... each body as sent" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE request_uri LIKE '/hooks/load?%'
    AND CAST(body AS TEXT) != 'load ' || substr(query_string, 3)")"
check_eq "the database passes integrity_check" ok "$(sql 'PRAGMA integrity_check')"

ms=$(stop_all $FCGIQ_PIDS)
check "fcgiq stops on SIGTERM within 5 s (${ms} ms)" test "$ms" -lt 5000

done_testing
