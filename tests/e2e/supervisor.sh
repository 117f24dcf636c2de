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
done_testing
