#!/bin/bash
# tests/e2e/valgrind-responder.sh: fcgiq under valgrind (memcheck) answers
# 10,000 FastCGI requests — POSTs that become jobs, and the bad ones (400,
# 404, 405, 413, 422), status GETs, DELETEs — then stops on SIGTERM with no
# memory error, no definite leak and no fd left open.
#
# The helper runs too, as in production: fcgiq forks its supervisor and
# helper before any thread exists, and valgrind follows a fork without
# being asked (--trace-children is about execve), so both run under
# memcheck with a log of their own ($T/vg.<pid>.log); one queue has a
# handler (/bin/cat, not traced) so the helper's spawn, read and record
# paths run under memcheck as well.  The requests come from
# tests/tools/fcgiclient -k N (N requests on one kept connection), several
# at once, straight to fcgiq's socket: nginx would add nothing valgrind
# can see and would cost time valgrind needs.
#
# Third-party noise (libfcgi, SQLite, OpenSSL, glibc) would go in
# tests/e2e/valgrind.supp, each entry with the reason it is there.
. "$(dirname "$0")/../lib.sh"

command -v valgrind >/dev/null || skip_all "valgrind not installed"
command -v sqlite3 >/dev/null || skip_all "sqlite3 not installed"
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
FCGICLIENT=$top_builddir/tests/tools/fcgiclient
[ -x "$FCGICLIENT" ] || bail "no $FCGICLIENT: make check builds it"
# A sanitizer build (--enable-debug) cannot run under valgrind.
ldd "$FCGIQ" 2>/dev/null | grep -q 'libasan' && skip_all "fcgiq is built with ASan (--enable-debug)"

SOCK=$T/fcgiq.sock
DB=$T/var/q.db
mkdir -p "$T/var"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
max_body = 1K
grace    = 5s

[queue default]

[queue run]
handler     = exec:/bin/cat
user = root
concurrency = 2
EOF

t0=$(date +%s)
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
    --track-fds=yes --num-callers=30 --log-file="$T/vg.%p.log" \
    --suppressions="$top_srcdir/tests/e2e/valgrind.supp" \
    "$FCGIQ" -c "$T/fcgiq.conf" -s "$SOCK" 2>"$T/fcgiq.log" &
VG=$!
track "$VG"
for i in $(seq 300); do
	[ -S "$SOCK" ] && grep -q "ready:" "$T/fcgiq.log" && break
	sleep 0.1
done
check "fcgiq started under valgrind" test -S "$SOCK"
[ -S "$SOCK" ] || bail "no socket: $(tail -5 "$T/fcgiq.log"; tail -20 "$T"/vg.*.log)"

# fc NAME N ARGS...: N requests on one connection; their statuses, one a
# line, go to $T/st.NAME.
fc() {
	local name=$1 n=$2
	shift 2
	"$FCGICLIENT" -s "$SOCK" -w 60 -k "$n" "$@" | sed -n 's/^status //p' >"$T/st.$name"
}
# Two jobs first: the one the GETs and the DELETEs name, and the key's
# first body (the 422s send another).
id=$("$FCGICLIENT" -s "$SOCK" -u /hooks/first -d first | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
check "a first job for the GETs and DELETEs ($id)" test -n "$id"
check_eq "a job with an idempotency key" 202 "$("$FCGICLIENT" -s "$SOCK" -u /hooks/k \
    -p FCGIQ_DEDUPE_HEADER=X-Key -p HTTP_X_KEY=k-1 -d a | sed -n 's/^status //p')"

t1=$(date +%s%N)
# Eleven clients at once, each on its own kept connection.
clients=""
fc post1 2475 -u '/hooks/v?a=1' -p CONTENT_TYPE=application/json -d '{"v":1}' &
clients="$clients $!"
fc post2 2475 -u '/hooks/v?a=2' -p HTTP_X_THING=yes -d '{"v":2}' &
clients="$clients $!"
fc run 50 -u /run/x -p FCGIQ_QUEUE=run -d "handled" &
clients="$clients $!"
fc 404q 500 -u /nowhere/x -p FCGIQ_QUEUE=nowhere -d x &
clients="$clients $!"
fc 405 500 -m OPTIONS -u /hooks/x &
clients="$clients $!"
fc 413 500 -u /hooks/big -D 2048 &
clients="$clients $!"
fc 400 500 -u /hooks/bad -l 12abc -d x &
clients="$clients $!"
fc 422 500 -u /hooks/k -p FCGIQ_DEDUPE_HEADER=X-Key -p HTTP_X_KEY=k-1 -d b &
clients="$clients $!"
fc get 1500 -m GET -u "/jobs/$id" &
clients="$clients $!"
fc 404j 500 -m GET -u /jobs/AAAAAAAAAAAAAAAAAAAAAA &
clients="$clients $!"
fc delete 500 -m DELETE -u "/jobs/$id" &
clients="$clients $!"
track $clients
wait $clients	# not a bare wait: fcgiq is a child of this shell too
ms=$((($(date +%s%N) - t1) / 1000000))
total=$(cat "$T"/st.* | wc -l)
echo "# $total requests under valgrind in $ms ms ($((total * 1000 / (ms + 1))) req/s)"
echo "# statuses: $(cat "$T"/st.* | sort | uniq -c | xargs)"
check_eq "10,000 requests answered" 10000 "$total"
count() { grep -cx "$2" "$T/st.$1"; }
check_eq "POSTs: 202" 5000 $(( $(count post1 202) + $(count post2 202) + $(count run 202) ))
check_eq "unknown queue: 404" 500 "$(count 404q 404)"
check_eq "OPTIONS on an intake: 405" 500 "$(count 405 405)"
check_eq "body over max_body: 413" 500 "$(count 413 413)"
check_eq "bad Content-Length: 400" 500 "$(count 400 400)"
check_eq "idempotency key with another body: 422" 500 "$(count 422 422)"
check_eq "status GETs: 200" 1500 "$(count get 200)"
check_eq "unknown job: 404" 500 "$(count 404j 404)"
check_eq "DELETE: one 204, then 409" "1 499" "$(count delete 204) $(count delete 409)"
check_eq "jobs stored: 5000, and the first 2" 5002 "$(sqlite3 -cmd '.timeout 5000' "$DB" 'SELECT count(*) FROM jobs')"
for i in $(seq 600); do
	[ "$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT count(*) FROM jobs WHERE queue = 'run' AND state = 'done'")" = 50 ] && break
	sleep 0.1
done
check_eq "the helper (under memcheck too) ran the 50 handled jobs" "50|handled" \
    "$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT count(*), CAST(min(result) AS TEXT) FROM jobs WHERE queue = 'run' AND state = 'done'")"

# The helper (its pid in the lock file) and its parent, the supervisor.
helper=$(cat "$DB-helper.lock" 2>/dev/null)
sup=$(awk '{ print $4 }' "/proc/${helper:-0}/stat" 2>/dev/null)
kill -TERM "$VG"
rc=0
wait "$VG" || rc=$?
echo "# valgrind run: $(( $(date +%s) - t0 )) s in all"
check_eq "fcgiq under valgrind: exit status 0 after SIGTERM (99: memcheck errors)" 0 "$rc"
# Their memcheck logs are complete once they have exited.  fcgiq waits
# for its supervisor (helper_stop) and the supervisor for its helper, so
# that is so now; should it change, the leak checks under valgrind can
# take seconds: wait for the two pids, bounded, not for a fixed time.
gone() { ! [ -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for i in $(seq 600); do gone "${helper:-0}" && gone "${sup:-0}" && break; sleep 0.1; done
echo "# helper $helper and supervisor $sup gone $(( (i - 1) * 100 )) ms after fcgiq"

# Each process that ran to its end under memcheck has an ERROR SUMMARY;
# the handlers' children stop being traced at execve and leave a log with
# the header only.
logs=$(grep -l 'ERROR SUMMARY:' "$T"/vg.*.log)
# A helper that exits is started again by its supervisor, under memcheck
# too (seen on a loaded machine: its first BEGIN past busy_timeout while
# fcgiq, slowed by valgrind, was starting up); each restart the supervisor
# logged adds one log, checked like the others.
restarts=$(grep -c 'helper: pid [0-9]*: .*starting another' "$T/fcgiq.log")
[ "$restarts" -eq 0 ] || grep 'helper: pid [0-9]*: \|warn:' "$T/fcgiq.log" | sed 's/^/# /'
check_eq "three processes ran under memcheck: fcgiq, supervisor, helper (+ $restarts restarted)" \
    $((3 + restarts)) "$(echo "$logs" | wc -l)"
check_eq "the other logs are the 50 handlers' (untraced after execve)" 50 \
    "$(grep -L 'ERROR SUMMARY:' "$T"/vg.*.log | wc -l)"
for f in $logs; do
	p=${f##*/vg.}
	p=${p%.log}
	check_eq "pid $p: no memory errors, no definite leaks" "0" \
	    "$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)"
	check_eq "pid $p: definitely lost: 0 bytes" "" \
	    "$(grep 'definitely lost:' "$f" | grep -v 'definitely lost: 0 bytes')"
	check_eq "pid $p: no invalid reads or writes" "" \
	    "$(grep -E 'Invalid (read|write|free)|uninitialised' "$f" | head -3)"
	# --track-fds: fds fcgiq opened and left open at exit.  Inherited
	# ones (the test's, valgrind's log) are not ours; the pipe of
	# supervisor_start() stays open on purpose in the supervisor and the
	# helper (its EOF tells them that fcgiq is gone).
	open=$(awk '/Open (file )?descriptor|Open AF_|Open socket/ { blk = $0; keep = 1; next }
	    blk != "" && /inherited from parent|supervisor_start/ { keep = 0 }
	    blk != "" && /^==[0-9]+== *$/ { if (keep) print blk; blk = "" }' "$f" | sed 's/^==[0-9]*== //')
	echo "# pid $p: $(grep -o 'FILE DESCRIPTORS: .*' "$f"); $(grep -o 'total heap usage: .*' "$f")"
	check_eq "pid $p: no fd of its own left open at exit" "" "$open"
done
grep -h 'still reachable:\|definitely lost:\|possibly lost:' $logs | sed 's/^==[0-9]*==/#/'

done_testing
