#!/bin/bash
# adversary: fcgiq on its own unix socket (-s, 8 threads, I/O timeout 3 s,
# a fresh database), attacked with raw FastCGI by tests/hostile/adversary:
# overflowing name/value lengths (CVE-2025-23016 style), truncated records,
# wrong versions, unknown types, wrong request ids, FCGI_ABORT_REQUEST in
# the middle of stdin, NUL bytes in params, floods, other roles, a second
# BEGIN_REQUEST in flight, slow senders.  After each attack: the answer is
# the one expected (a refusal or a clean close), fcgiq is still the same
# process, a normal request is answered 202, and the attack stored no job
# (or, for the few attacks whose request is legal FastCGI, exactly the job
# it sent, byte for byte).  At the end: jobs stored = legitimate 202s, and
# no sanitizer report in fcgiq's log.
#
#   FCGIQ_BIN=/path/to/fcgiq   run another build (configure --enable-debug:
#                              ASan/UBSan; their reports fail the suite)
#
# Until fcgiq read FastCGI itself (fcgi-app/wire.c), libfcgi 2.4.2 failed
# five of these: nvlen-sum-negative and nvlen-half-each aborted the process
# (ReadParams: Malloc of nameLen + valueLen + 2 as a negative int),
# nvlen-2g-alloc aborted it under RLIMIT_AS, unknown-type-flood leaked
# 48 bytes a record, skip-flag-body-loss lost body bytes; slowloris-hold
# held every worker (each read was bounded, not the request).
. "$(dirname "$0")/../lib.sh"

ADVERSARY="$top_builddir/tests/hostile/adversary"
FCGICLIENT="$top_builddir/tests/tools/fcgiclient"
BIN=${FCGIQ_BIN:-$FCGIQ}
SOCK="$T/fcgiq.sock"
DB="$T/var/queue.db"
LOG="$T/fcgiq.log"
IO_TIMEOUT=3
THREADS=8

[ -x "$BIN" ] || bail "no $BIN: build first"
[ -x "$ADVERSARY" ] || bail "no $ADVERSARY: make check builds it"
[ -x "$FCGICLIENT" ] || bail "no $FCGICLIENT: make check builds it"
command -v sqlite3 >/dev/null || skip_all "no sqlite3 shell"

mkdir -p "$T/var"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log = debug

[queue default]
EOF

sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
jobs_of() {
	sql "SELECT count(*) FROM jobs WHERE json_extract(headers, '\$.HTTP_X_ATTACK') = '$1'${2:+ AND body = CAST('$2' AS BLOB)}"
}
alive() {
	[ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
	    grep -q '^Z'
}
serving() {
	"$FCGICLIENT" -s "$SOCK" -m GET -l none -u /jobs/x -w 2 2>/dev/null |
	    grep -q '^status 404'
}
start_fcgiq() {
	rm -f "$SOCK"
	"$BIN" -W -c "$T/fcgiq.conf" -s "$SOCK" -T $IO_TIMEOUT -n $THREADS \
	    2>>"$LOG" &
	PID=$!
	track $PID
	wait_for serving || bail "fcgiq did not start: $(tail -5 "$LOG")"
}

n202=0
nnormal=0
normal202=0
# send_normal: a well-formed request; prints the client's first line.
send_normal() {
	local got
	nnormal=$((nnormal + 1))
	got=$("$FCGICLIENT" -s "$SOCK" -w 10 -d "normal $nnormal" \
	    -p HTTP_X_ATTACK=normal 2>&1 | head -1)
	if [ "$got" = "status 202" ]; then
		n202=$((n202 + 1))
		normal202=$((normal202 + 1))
	fi
	NORMAL=$got
}
# normal NAME: a well-formed request must be accepted.
normal() {
	send_normal
	check_eq "$1: a normal request afterwards is accepted" "status 202" "$NORMAL"
}

start_fcgiq
normal "start"

# attack NAME EXPECT ALLOWED BODY: run NAME; its output (lines joined by
# spaces) must match the ERE EXPECT; at most ALLOWED 202s, each with a job
# whose body is exactly BODY; none stored otherwise.
attack() {
	local name=$1 expect=$2 allowed=$3 body=$4 out got stored
	local wait=6 pid0=$PID i
	case $name in
	stdin-after-terminator) wait=3 ;;
	nvlen-2g-alloc) wait=20 ;;	# ASan maps 2 GiB (and its shadow)
	esac
	out=$("$ADVERSARY" -s "$SOCK" -w $wait "$name" 2>>"$T/adversary.err" |
	    tr '\n' ' ')
	out=${out% }
	got=$(printf '%s\n' "$out" | grep -o 'status 202' | wc -l)
	if printf '%s\n' "$out" | grep -Eq "$expect"; then
		ok "$name: $out"
	else
		not_ok "$name: answered as expected" \
		    "expected (ERE): $expect
actual:          $out"
	fi
	# The request first: a process that is dying may still exist.
	send_normal
	# Refused: if fcgiq is dying (ASan writing its report, say), let it
	# be gone before asking, so the restart below follows.
	if [ "$NORMAL" != "status 202" ]; then
		for i in $(seq 100); do alive "$pid0" || break; sleep 0.1; done
	fi
	if alive "$pid0"; then
		ok "$name: fcgiq survived (pid $pid0)"
		check_eq "$name: a normal request afterwards is accepted" \
		    "status 202" "$NORMAL"
	else
		not_ok "$name: fcgiq survived (pid $pid0)" \
		    "$(tail -3 "$LOG")"
		start_fcgiq
		normal "$name (fcgiq restarted)"
	fi
	stored=$(jobs_of "$name")
	if [ "$got" -le "$allowed" ] && [ "$stored" = "$got" ] &&
	    { [ "$got" -eq 0 ] || [ "$(jobs_of "$name" "$body")" = "$got" ]; }; then
		ok "$name: jobs stored: $stored${body:+ (body '$body')}"
		n202=$((n202 + got))
	else
		not_ok "$name: jobs stored: $stored, 202s: $got, allowed: $allowed${body:+ with body '$body'}" \
		    "$(sql "SELECT method, quote(body), headers FROM jobs WHERE json_extract(headers, '\$.HTTP_X_ATTACK') = '$name'")"
		n202=$((n202 + stored))
	fi
}

CLOSED='^closed$'
# A 4xx answer and/or a clean close.
REFUSED='^(status 4[0-9][0-9] end 1 0 )?closed$'

# Lengths.
attack nvlen-name-7fffffff "$CLOSED" 0 ""
attack nvlen-value-7fffffff "$CLOSED" 0 ""
attack nvlen-both-7fffffff "$CLOSED" 0 ""
attack nvlen-sum-negative "$CLOSED" 0 ""
attack nvlen-half-each "$CLOSED" 0 ""
attack nvlen-2g-alloc "$CLOSED" 0 ""
# The same 13 bytes where malloc cannot give 2 GiB (RLIMIT_AS 1 GiB, as a
# hardened unit or a small VM has): not under ASan, which needs the room.
if ! ldd "$BIN" 2>/dev/null | grep -q libasan; then
	( ulimit -v 1048576 && exec "$BIN" -W -c "$T/fcgiq.conf" \
	    -s "$T/limited.sock" -T $IO_TIMEOUT -n 2 2>>"$T/limited.log" ) &
	LPID=$!
	track $LPID
	wait_for test -S "$T/limited.sock"
	out=$("$ADVERSARY" -s "$T/limited.sock" nvlen-2g-alloc 2>>"$T/adversary.err" |
	    tr '\n' ' ')
	sleep 0.5
	if alive $LPID; then
		ok "nvlen-2g-alloc under RLIMIT_AS 1 GiB: fcgiq survived ($out)"
	else
		not_ok "nvlen-2g-alloc under RLIMIT_AS 1 GiB: fcgiq survived" \
		    "$(tail -2 "$T/limited.log")"
	fi
	stop_pid $LPID
	check_eq "nvlen-2g-alloc under RLIMIT_AS 1 GiB: no job stored" 0 \
	    "$(jobs_of nvlen-2g-alloc)"
fi
attack nvlen-past-record "$CLOSED" 0 ""
attack nvlen-nested-past-stream "$CLOSED" 0 ""
attack nvlen-cut-4byte "$CLOSED" 0 ""

# Framing.
attack truncated-header-close "$CLOSED" 0 ""
attack truncated-header-hold "$CLOSED" 0 ""
attack truncated-params-close "$CLOSED" 0 ""
attack truncated-stdin-close "$REFUSED" 0 ""
attack truncated-stdin-hold "$REFUSED" 0 ""
attack version-0-begin "$CLOSED" 0 ""
attack version-2-begin "$CLOSED" 0 ""
attack version-255-params "$REFUSED" 0 ""
attack version-2-mid-params "$REFUSED" 0 ""
attack version-2-stdin "$REFUSED" 0 ""
attack unknown-type-mgmt '^unknown-type 42 closed$' 0 ""
# Legal FastCGI: the management record answered, then the request.
attack unknown-type-mgmt-then-request \
    '^unknown-type 42 status 202 end 1 0 closed$' 1 "after-mgmt"
attack unknown-type-in-request "$REFUSED" 0 ""
# 100,000 of them on one connection (800 kB): fcgiq must not keep memory
# for records it has answered and forgotten.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
rss0=$(rss)
attack unknown-type-flood '^unknown-type 42 unknown-type x100000 closed$' 0 ""
rss1=$(rss)
if [ $((rss1 - rss0)) -lt 2048 ]; then
	ok "unknown-type-flood: fcgiq's RSS grew by $((rss1 - rss0)) kB"
else
	not_ok "unknown-type-flood: fcgiq's RSS grew by less than 2 MB" \
	    "from $rss0 kB to $rss1 kB"
fi
attack get-values '^values FCGI_MAX_CONNS=[1-9][0-9]* FCGI_MAX_REQS=[1-9][0-9]* FCGI_MPXS_CONNS=0 closed$' 0 ""
# Each name answered once, whatever the number of times it is asked.
attack get-values-overflow '^values FCGI_MPXS_CONNS=0 closed$' 0 ""
attack get-values-nvlen "$CLOSED" 0 ""
attack begin-id-0 "$CLOSED" 0 ""
attack begin-short "$CLOSED" 0 ""
attack begin-only-close "$REFUSED" 0 ""
attack params-other-id "$REFUSED" 0 ""
attack stdin-other-id "$REFUSED" 0 ""

# FCGI_ABORT_REQUEST: the request is not stored.
attack abort-mid-stdin "$REFUSED" 0 ""
attack abort-mid-stdin-then-rest "$REFUSED" 0 ""
attack abort-after-params "$REFUSED" 0 ""
attack abort-in-params "$REFUSED" 0 ""

# NUL bytes: a param with a NUL in its name or value means one thing to
# a reader that stops at the NUL and another to one that does not: 400,
# nothing stored -- also for the one whose part before the NUL is a whole,
# consistent POST.
attack nul-method-get-post '^status 400 end 1 0 closed$' 0 ""
attack nul-length '^status 400 end 1 0 closed$' 0 ""
attack nul-in-name '^status 400 end 1 0 closed$' 0 ""
attack nul-in-uri '^status 400 end 1 0 closed$' 0 ""
attack nul-method-post-get '^status 400 end 1 0 closed$' 0 ""

# Floods.
attack many-empty-pairs '^status 202 end 1 0 closed$' 1 "hello"
attack many-empty-params-records "$REFUSED" 0 ""
attack params-1-byte-records '^status 202 end 1 0 closed$' 1 "one-by-one"
# The request before the terminator is whole and answered; a stdin record
# where a request must begin ends the connection.
attack stdin-after-terminator '^status 202 end 1 0 closed$' 1 "before"

# Roles and multiplexing.
attack role-authorizer "$REFUSED" 0 ""
attack role-filter "$REFUSED" 0 ""
attack role-unknown '^end 1 3 closed$' 0 ""	# FCGI_UNKNOWN_ROLE
# Legal for request 1 (the second BEGIN is answered FCGI_CANT_MPX_CONN,
# its records skipped): request 1's ten bytes are stored, exactly.
attack second-begin-other-id '^status 202 end 1 0 cant-mpx 1 closed$' 1 "aaaaabbbbb"
# The request in flight begun again: broken, nothing stored.
attack second-begin-same-id "$REFUSED" 0 ""
# An empty record of another request between two of ours: skipped.
attack skip-flag-body-loss '^status 202 end 1 0 closed$' 1 "aaaaabbbbb"
attack begin-flood '^status 202 end 1 0 cant-mpx 30000 closed$' 1 "aaaaabbbbb"
# Legal padding on every record.
attack padding-255 '^status 202 end 1 0 closed$' 1 "padded"
attack stdin-oversized-record "$REFUSED" 0 ""

# Slow senders.
attack slowloris-valid '^status 202 end 1 0 closed$' 1 "slow"
attack slowloris-stall "$CLOSED" 0 ""

# hold_and_ask N SETTLE TAG BODY LIMIT_MS: N slow senders (slowloris-hold,
# each byte inside the I/O timeout) hold workers; after SETTLE seconds one
# normal request (HTTP_X_ATTACK=TAG) must be answered 202 within LIMIT_MS.
# Sets got; the senders are stopped afterwards.
hold_and_ask() {
	local n=$1 settle=$2 tag=$3 body=$4 limit=$5 holders="" i p t0 ms
	for i in $(seq "$n"); do
		"$ADVERSARY" -s "$SOCK" -w 60 slowloris-hold >/dev/null 2>&1 &
		holders="$holders $!"
		track $!
	done
	sleep "$settle"
	t0=$(date +%s%N)
	got=$("$FCGICLIENT" -s "$SOCK" -w 8 -d "$body" -p HTTP_X_ATTACK="$tag" 2>&1 | head -1)
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ "$got" = "status 202" ] && [ $ms -lt "$limit" ]; then
		ok "slowloris-hold x$n: a normal request answered in $ms ms"
	else
		not_ok "slowloris-hold x$n: a normal request answered within $limit ms" \
		    "got '$got' after $ms ms"
	fi
	for p in $holders; do kill "$p" 2>/dev/null; done
	for p in $holders; do wait "$p" 2>/dev/null; done
}

# Fewer slow senders than threads: the workers they hold give their duty
# to others (fcgiq keeps only a few workers waiting for connections), so a
# normal request is answered at once, not after an I/O timeout.
hold_and_ask $((THREADS - 2)) 1 normal "beside slow senders" 1000
[ "$got" = "status 202" ] && n202=$((n202 + 1)) && normal202=$((normal202 + 1))

# More slow senders than threads: a normal request must still be answered
# once a worker is free.  Tagged apart: given up on by the client, it may
# still be served (and stored, whole) later.
hold_and_ask $((THREADS + 2)) 3 held "while held" 5000
check "slowloris-hold: fcgiq survived" alive $PID
# The held workers come back once their senders are gone.
for i in 1 2 3; do
	got=$("$FCGICLIENT" -s "$SOCK" -w 10 -d "after held $i" -p HTTP_X_ATTACK=normal 2>&1 | head -1)
	[ "$got" = "status 202" ] && n202=$((n202 + 1)) && normal202=$((normal202 + 1))
	check_eq "slowloris-hold: request $i after the senders left: 202" "status 202" "$got"
done

held=$(jobs_of held "while held")
check "slowloris-hold: the request sent while held is stored at most once, whole ($held)" \
    test "$held" = "$(jobs_of held)" -a "$held" -le 1
[ "$got" = "status 202" ] && check_eq "... and stored, as answered" 1 "$held"
check_eq "jobs stored = legitimate 202s answered ($n202)" "$((n202 + held))" \
    "$(sql 'SELECT count(*) FROM jobs')"
check_eq "every normal request answered 202 is stored ($normal202)" "$normal202" \
    "$(sql "SELECT count(*) FROM jobs WHERE json_extract(headers, '\$.HTTP_X_ATTACK') = 'normal'")"
check_eq "the database is sound" ok "$(sql 'PRAGMA integrity_check')"

stop_pid $PID
# A sanitizer build writes its reports to stderr (the log).
SANITIZER='==[0-9]+==ERROR: [A-Za-z]+Sanitizer|runtime error:'
if ! grep -qE "$SANITIZER" "$LOG"; then
	ok "no sanitizer report in fcgiq's log"
else
	not_ok "no sanitizer report in fcgiq's log" \
	    "$(grep -E -A8 "$SANITIZER" "$LOG" | head -40)"
fi

done_testing
