#!/bin/bash
# tests/e2e/fastcgi-hostile.sh: the fastcgi: kind against an application
# that answers what none should (tests/handlers/hostile/fcgi-upstream.py):
# a bad record version, a length past the data, FCGI_END_REQUEST for
# another request, a record type a responder never sends, a short
# END_REQUEST, no CGI headers, a bad Status, FCGI_OVERLOADED, a
# connection closed mid-answer, 100 MB of answer, 4 MiB of stderr, a slow
# drip.  Each is one failed attempt with a clear last_error; the helper's
# memory stays bounded; its other jobs go on meanwhile; kept connections
# are reused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for c in nginx spawn-fcgi curl sqlite3 python3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done

UP=$T/hostile.sock
mkdir -p "$T/var" "$T/up"
python3 "$top_srcdir/tests/handlers/hostile/fcgi-upstream.py" "$UP" "$T/up" \
    2>"$T/up/stderr" &
track $!
wait_for test -S "$UP" || bail "the hostile upstream did not start"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log = debug

[queue hostile]
handler      = fastcgi:127.0.0.1:1
handler      = fastcgi:unix:$UP
concurrency  = 4
max_attempts = 1
timeout      = 3s
max_result   = 64k
EOF
extra_location /h/ hostile
resp_spawn || bail "fcgiq did not start: $(cat "$T/spawn.log")"
resp_nginx || bail "nginx did not start"

post() {
	curl -s -X POST --data-binary x "$BASE$1" |
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
held_lock() {
	local ino
	ino=$(stat -c %i "$DB-helper.lock" 2>/dev/null) || return 0
	awk -v ino="$ino" '$2 != "->" { split($6, a, ":"); if (a[3] == ino) print $5 }' \
	    /proc/locks | head -1
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
U="fastcgi: $UP"

# --- a good answer, padded records, stderr on the side: done
id=$(post "/h/a?mode=ok")
wait_state "$id" "done dead"
check_eq "a good answer: done, its media type kept" "done|fine|text/x-ok" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT) || '|' || result_type")"
id=$(post "/h/a?mode=padded")
wait_state "$id" "done dead"
check_eq "padded records, and stderr: done" "done|fine" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"

# --- each bad answer: one failed attempt, its reason in last_error
expect() {
	local mode=$1 want=$2 id le
	id=$(post "/h/a?mode=$mode")
	wait_state "$id" "done dead" 10
	le=$(field "$id" "state || '|' || attempts || '|' || last_error")
	case $le in
	"dead|1|$want"*) ok "$mode: $want" ;;
	*) not_ok "$mode: $want" "$le" ;;
	esac
}
expect version "$U: bad record version 2"
expect past "$U: connection closed mid-answer"
expect otherid "$U: FCGI_END_REQUEST for another request (id 7)"
expect type "$U: unexpected record type 99"
expect endlen "$U: FCGI_END_REQUEST of 4 bytes"
expect noheaders "$U: CGI headers without their blank line"
expect badstatus "$U: bad Status header"
expect overloaded "$U: refused the request (FCGI_OVERLOADED)"
expect close "$U: connection closed mid-answer"

helper=$(held_lock)
rss0=$(rss_kb "$helper")
expect huge "$U: answer past 16 MiB"
rss1=$(rss_kb "$helper")
check "100 MB answer: the helper's memory bounded (RSS $rss0 -> $rss1 kB)" \
    test "$rss1" -lt $((rss0 + 10000))
id=$(post "/h/a?mode=stderr")
wait_state "$id" "done dead" 10
check_eq "4 MiB of stderr, then a good answer: done" "done|fine" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"

# --- a slow drip runs into the timeout; other jobs go on meanwhile
drip=$(post "/h/a?mode=drip")
sleep 0.3
others=""
for i in 1 2 3 4 5 6; do others="$others $(post "/h/b?mode=ok")"; done
for id in $others; do wait_state "$id" "done dead" 10; done
n=0
for id in $others; do [ "$(field "$id" state)" = done ] && n=$((n + 1)); done
check_eq "other jobs done while one drips" 6 "$n"
check_eq "...the drip still running then" running "$(field "$drip" state)"
wait_state "$drip" "done dead" 10
check_eq "slow drip: timeout" "dead|timeout after 3s" \
    "$(field "$drip" "state || '|' || last_error")"

# --- kept connections reused: ten jobs one after the other, one connection
: >"$T/up/conns"
for i in $(seq 10); do
	id=$(post "/h/c?mode=ok")
	wait_state "$id" "done dead"
done
check_eq "ten jobs, one after another, on one kept connection" \
    "10 1" "$(wc -l <"$T/up/conns") $(cut -d' ' -f1 "$T/up/conns" | sort -u | wc -l)"
check "the helper is still the same process" test "$(held_lock)" = "$helper"

done_testing
