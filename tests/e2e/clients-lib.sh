# tests/e2e/clients-lib.sh: what every suite of a FastCGI client other
# than nginx and Apache checks (sourced after tests/lib.sh and
# responder-lib.sh).  fcgiq runs from conf-examples/spawn-fcgi.sh with
# max_body = 4M (clients_fcgiq); the suite starts its server from the
# shipped example and sets BASE; clients_http_checks then checks, through
# that server: small and 3 MiB binary bodies stored byte for byte, fixed
# length and chunked; the status API; the server's own body limit; 100
# requests on one kept connection; 500 POSTs at concurrency 16.

# 3 MiB of random bytes: every byte value, NULs and CRs included.
BIG=$T/big.bin
head -c 3145728 /dev/urandom >"$BIG"

# clients_fcgiq: fcgiq under spawn-fcgi (two processes, helpers on, no
# handler: jobs wait in their queues), queues default and mail, room for
# a 3 MiB body.
clients_fcgiq() {
	resp_conf "max_body = 4M"
	sed -i 's/^log = debug$/log = info/' "$T/fcgiq.conf"
	resp_spawn
}

# gone PID: the process has exited (a zombie counts as gone).
gone() { ! alive "$1"; }

# body_file ID FILE: the stored body of job ID, written to FILE.
body_file() {
	rm -f "$2"
	sql "SELECT writefile('$2', body) FROM jobs WHERE id = '$1'" >/dev/null
}

# post URL [CURL ARGS]: a POST; headers to $T/h, body to $T/b; sets CODE
# and ID (the id of the Location: answered, else empty).
post() {
	local u=$1
	shift
	CODE=$(curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" "$u")
	ID=$(sed -n 's|^[Ll]ocation: */jobs/\([^[:space:]]*\).*|\1|p' "$T/h")
}

# same_body NAME ID FILE: the job's stored body is FILE, byte for byte.
same_body() {
	body_file "$2" "$T/stored.bin"
	if cmp -s "$3" "$T/stored.bin"; then
		ok "$1"
	else
		not_ok "$1" "stored: $(wc -c <"$T/stored.bin" 2>/dev/null) bytes, sent: $(wc -c <"$3")"
	fi
}

# clients_http_checks SERVER: the checks, through the server at $BASE.
clients_http_checks() {
	local s=$1 i n202 id

	# --- A small body, with its query, type and headers.
	printf 'small body\r\nwith a CR, a tab\t and \xc3\xa9' >"$T/small"
	post "$BASE/hooks/small?x=1" -H 'Content-Type: text/plain' \
	    -H 'X-Test: yes' --data-binary @"$T/small"
	check_eq "$s: a small POST to /hooks/: 202" 202 "$CODE"
	check "$s: ... Location: /jobs/<id>" test -n "$ID"
	check_eq "$s: ... the answer's id is the Location's" "$ID" \
	    "$(json_field "$T/b" id)"
	check_eq "$s: ... stored in queue default, method, URI, query, type" \
	    "default|POST|/hooks/small?x=1|x=1|text/plain" \
	    "$(sql "SELECT queue || '|' || method || '|' || request_uri ||
	    '|' || query_string || '|' || content_type FROM jobs
	    WHERE id = '$ID'")"
	check_eq "$s: ... with its headers" yes \
	    "$(sql "SELECT json_extract(headers, '\$.HTTP_X_TEST') FROM jobs
	    WHERE id = '$ID'")"
	same_body "$s: ... the body byte for byte" "$ID" "$T/small"
	local small=$ID

	post "$BASE/mail/send" -X PUT --data-binary 'mail body'
	check_eq "$s: PUT /mail/: 202, in queue mail (the location's FCGIQ_QUEUE)" \
	    "202 mail" "$CODE $(sql "SELECT queue FROM jobs WHERE id = '$ID'")"
	local mail=$ID

	# --- 3 MiB of binary, with a length, then chunked.
	post "$BASE/hooks/big" -H 'Content-Type: application/octet-stream' \
	    --data-binary @"$BIG"
	check_eq "$s: a 3 MiB binary POST: 202" 202 "$CODE"
	same_body "$s: ... stored byte for byte" "$ID" "$BIG"
	post "$BASE/hooks/chunked" -H 'Transfer-Encoding: chunked' \
	    -H 'Content-Type: application/octet-stream' --data-binary @"$BIG"
	check_eq "$s: the 3 MiB body chunked: 202" 202 "$CODE"
	same_body "$s: ... stored byte for byte" "$ID" "$BIG"
	post "$BASE/hooks/chunked-small" -H 'Transfer-Encoding: chunked' \
	    --data-binary @"$T/small"
	check_eq "$s: a small chunked body: 202" 202 "$CODE"
	same_body "$s: ... stored byte for byte" "$ID" "$T/small"

	# --- The server's own limit (the example's, raised to 4 MiB here).
	head -c 5000000 /dev/zero >"$T/over"
	n=$(sql "SELECT count(*) FROM jobs")
	post "$BASE/hooks/over" --data-binary @"$T/over"
	check_eq "$s: a body over the server's limit: 413" 413 "$CODE"
	check_eq "$s: ... nothing stored" "$n" "$(sql "SELECT count(*) FROM jobs")"

	# --- The status API through the server.
	CODE=$(curl -s -o "$T/b" -w '%{http_code}' "$BASE/jobs/$small")
	check_eq "$s: GET /jobs/ID: 200" 200 "$CODE"
	check_eq "$s: ... the job, queued" "$small queued" \
	    "$(json_field "$T/b" id) $(json_field "$T/b" state)"
	check_eq "$s: HEAD /jobs/ID: 200" 200 \
	    "$(curl -s -I -o /dev/null -w '%{http_code}' "$BASE/jobs/$small")"
	check_eq "$s: GET /jobs/<unknown id>: 404" 404 \
	    "$(curl -s -o /dev/null -w '%{http_code}' \
	    "$BASE/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"
	check_eq "$s: DELETE /jobs/ID: 204" 204 \
	    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
	    "$BASE/jobs/$mail")"
	CODE=$(curl -s -o "$T/b" -w '%{http_code}' "$BASE/jobs/$mail")
	check_eq "$s: ... GET shows it cancelled" "200 cancelled" \
	    "$CODE $(json_field "$T/b" state)"
	check_eq "$s: GET on an intake location: 405 from fcgiq" 405 \
	    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/hooks/small")"

	# --- 100 requests on one kept connection: one curl, 100 URLs, and
	# the connections it opened per transfer (1 for the first, 0 after).
	mkdir -p "$T/ka"
	curl -s -X POST --data-binary 'kept' -o "$T/ka/#1" \
	    -w '%{http_code} %{num_connects} %header{location}\n' \
	    "$BASE/hooks/keep?n=[1-100]" >"$T/ka.out" 2>"$T/ka.err"
	check_eq "$s: 100 POSTs on one connection: 100 answers of 202" 100 \
	    "$(awk '$1 == 202' "$T/ka.out" | wc -l)"
	check_eq "$s: ... over 1 connection" 1 \
	    "$(awk '{ n += $2 } END { print n + 0 }' "$T/ka.out")"
	awk '$1 == 202 { sub("^/jobs/", "", $3); print $3 }' "$T/ka.out" |
	    sort >"$T/ka.ids"
	sql "SELECT id FROM jobs WHERE request_uri LIKE '/hooks/keep?%'" |
	    sort >"$T/ka.db"
	check_eq "$s: ... 100 distinct ids answered, 100 jobs stored" "100 100" \
	    "$(sort -u "$T/ka.ids" | wc -l) $(wc -l <"$T/ka.db")"
	check_eq "$s: ... every answered id stored" "" \
	    "$(comm -23 "$T/ka.ids" "$T/ka.db" | head -3)"

	# --- 500 POSTs at concurrency 16: stored >= acknowledged, every
	# acknowledged id stored.
	for i in $(seq 500); do
		printf 'url = "%s/hooks/load?n=%d"\noutput = "/dev/null"\n' "$BASE" "$i"
	done >"$T/urls.cfg"
	local t0 ms
	t0=$(date +%s%N)
	curl -s --parallel --parallel-immediate --parallel-max 16 \
	    -H 'Content-Type: application/json' --data-binary '{"load":true}' \
	    -w '%{http_code} %header{location}\n' -K "$T/urls.cfg" \
	    >"$T/load.out" 2>"$T/load.err"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "# $s: 500 POSTs at concurrency 16 in $ms ms;" \
	    "answers: $(awk '{ print $1 }' "$T/load.out" | sort | uniq -c | xargs)"
	n202=$(awk '$1 == 202' "$T/load.out" | wc -l)
	check_eq "$s: 500 parallel POSTs: every one answered 202" 500 "$n202"
	awk '$1 == 202 { sub("^/jobs/", "", $2); print $2 }' "$T/load.out" |
	    sort >"$T/load.ids"
	sql "SELECT id FROM jobs WHERE request_uri LIKE '/hooks/load?%'" |
	    sort >"$T/load.db"
	n=$(wc -l <"$T/load.db")
	check "$s: ... stored ($n) >= acknowledged ($n202)" test "$n" -ge "$n202"
	check_eq "$s: ... every acknowledged id is stored" "" \
	    "$(comm -23 "$T/load.ids" "$T/load.db" | head -3)"
	check_eq "$s: ... ids distinct" "$n202" "$(sort -u "$T/load.ids" | wc -l)"
	check_eq "$s: the database passes integrity_check" ok \
	    "$(sql 'PRAGMA integrity_check')"
}
