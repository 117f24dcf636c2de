#!/bin/bash
# The helper's supervisor killed with SIGKILL: fcgiq starts another
# (through exec, as it has threads by then), whose helper runs the jobs;
# before, fcgiq went on answering 202 with nothing left to run them.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

mkdir -p "$T/var"
cat > "$T/fcgiq.conf" <<EOF2
[fcgiq]
database = $T/var/q.db
log_file = $T/var/fcgiq.log
[queue default]
handler = exec:/bin/cat
user = root
EOF2
"$FCGIQ" -c "$T/fcgiq.conf" -s "$T/fcgiq.sock" &
PID=$!
track "$PID"
wait_for test -S "$T/fcgiq.sock" || bail "fcgiq did not start"

# supervisor_of PID: its child named fcgiq-superv.
supervisor_of() {
	local c
	for c in $(ps -o pid= --ppid "$1"); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = fcgiq-superv ] && echo "$c"
	done
}
state() { test "$(sqlite3 "$T/var/q.db" "SELECT state FROM jobs WHERE id = '$1'")" = "$2"; }
has_new_supervisor() { s=$(supervisor_of "$PID"); [ -n "$s" ] && [ "$s" != "$1" ]; }

wait_for eval '[ -n "$(supervisor_of "$PID")" ]'
old=$(supervisor_of "$PID")
check "fcgiq has a supervisor" test -n "$old"
id=$(echo one | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue default)
check "a job runs" wait_for state "$id" done

for round in 1 2; do
	old=$(supervisor_of "$PID")
	kill -9 "$old"
	check "round $round: kill -9 of the supervisor: another one starts" \
	    wait_for has_new_supervisor "$old"
	new=$(supervisor_of "$PID")
	check_eq "round $round: it names itself" fcgiq-superv "$(cat "/proc/$new/comm" 2>/dev/null)"
	id=$(echo "round $round" | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue default)
	check "round $round: a job queued afterwards runs" wait_for state "$id" done
done
check "fcgiq logged the restart" grep -q "supervisor restarted" "$T/var/fcgiq.log"
check "fcgiq itself is the same process" kill -0 "$PID"
stop_pid "$PID"
check "on SIGTERM no helper is left" test -z "$(supervisor_of "$PID")"
# --- fcgiq work: the one entry point that runs a helper alone.  It logs
# where log_file says, and is woken through an abstract socket named after
# the database (no socket file beside it, so any file system will do).
wake_bound() {
	local n
	n=$(stat -c '%d %i' "$1" 2>/dev/null) || return 1
	set -- $n
	grep -q "@fcgiq-wake-$(printf '%x-%x' "$1" "$2")\$" /proc/net/unix
}
"$FCGIQ" work -c "$T/fcgiq.conf" 2>"$T/work.stderr" &
WORK=$!
track "$WORK"
check "fcgiq work: its helper binds the wake-up name" wait_for wake_bound "$T/var/q.db"
check "fcgiq work: logs into log_file" \
    wait_for grep -q "fcgiq-helper\[$WORK\]: info: helper: $T/var/q.db: active" "$T/var/fcgiq.log"
check "fcgiq work: nothing on its stderr" test ! -s "$T/work.stderr"
check "no socket file beside the database" test -z "$(find "$T/var" -type s)"
total=0
for i in 1 2 3 4 5; do
	id=$(echo "pushed $i" | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue default)
	wait_for state "$id" done || { total=99999; break; }
	ms=$(sqlite3 "$T/var/q.db" "SELECT started_at - created_at FROM jobs WHERE id = '$id'")
	total=$((total + ms))
done
# Polled, a job would wait half a second on average (the safety poll runs
# once a second); pushed, a few milliseconds.
check "fcgiq work: jobs start at once after enqueue (5 jobs: $total ms in all)" test "$total" -lt 1000
stop_pid "$WORK"
check "fcgiq work: SIGTERM ends it" test -z "$(ps -o pid= -p "$WORK")"
done_testing
