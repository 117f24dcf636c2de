#!/bin/bash
# log_file: spawn-fcgi points its children's stderr at /dev/null, so the
# log of fcgiq, its supervisor and helper would be lost; with log_file it
# lands in the file.  fcgiq under spawn-fcgi, a job whose handler fails,
# the lines of both processes checked in the file.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

command -v spawn-fcgi >/dev/null || skip_all "spawn-fcgi not installed"
mkdir -p "$T/var"
cat > "$T/fcgiq.conf" <<EOF2
[fcgiq]
database = $T/var/q.db
log      = info
log_file = $T/var/fcgiq.log
[queue default]
handler      = exec:/bin/false
max_attempts = 1
EOF2
rm -f "$T/fcgiq.sock"
spawn-fcgi -s "$T/fcgiq.sock" -P "$T/fcgiq.pid" -- "$FCGIQ" -c "$T/fcgiq.conf" \
    >/dev/null 2>&1 || bail "spawn-fcgi failed"
PID=$(cat "$T/fcgiq.pid")
track "$PID"
check "fcgiq starts under spawn-fcgi" wait_for test -S "$T/fcgiq.sock"
id=$(echo payload | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue default)
state() { test "$(sqlite3 "$T/var/q.db" "SELECT state FROM jobs WHERE id = '$id'")" = "$1"; }
check "the job fails and is dead" wait_for state dead
check "the responder's log is in the file" wait_for grep -q "fcgiq\[$PID\]: info: ready:" "$T/var/fcgiq.log"
check "the helper's log is in the file" wait_for grep -q "helper: job $id: attempt 1: exit 1" "$T/var/fcgiq.log"
stop_pid "$PID"
check "and the stop" grep -q "fcgiq\[$PID\]: info: stopped" "$T/var/fcgiq.log"
done_testing
