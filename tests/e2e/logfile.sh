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
user = root
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
# log_file = syslog: the same lines reach syslog(3).  /dev/log is a
# socat receiving datagrams, in a mount namespace of our own (root only).
sed -i 's|^log_file = .*|log_file = syslog|' "$T/fcgiq.conf"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v socat >/dev/null &&
    unshare -m true 2>/dev/null; then
	mkdir -p "$T/realdev"
	timeout 60 unshare -m --propagation private --kill-child bash -c '
		T=$1 FCGIQ=$2 FCGIQCTL=$3
		mount --rbind /dev "$T/realdev" && mount -t tmpfs tmpfs /dev || exit 1
		for n in null zero urandom random; do ln -s "$T/realdev/$n" "/dev/$n"; done
		socat -u UNIX-RECV:/dev/log "OPEN:$T/syslog.out,creat,append" & S=$!
		for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
		"$FCGIQ" -c "$T/fcgiq.conf" -s "$T/syslog.sock" & F=$!
		for i in $(seq 100); do [ -S "$T/syslog.sock" ] && break; sleep 0.1; done
		id=$(echo to-syslog | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue default)
		for i in $(seq 100); do grep -q "job $id: attempt 1: exit 1" "$T/syslog.out" 2>/dev/null && break; sleep 0.1; done
		kill $F; wait $F; kill $S
		echo "$F" > "$T/syslog.pid"
	' _ "$T" "$FCGIQ" "$FCGIQCTL"
	sp=$(cat "$T/syslog.pid" 2>/dev/null)
	check "log_file = syslog: the responder logs there" grep -q "fcgiq\[$sp\]: ready:" "$T/syslog.out"
	check "log_file = syslog: the helper too" grep -q "fcgiq\[[0-9]*\]: helper: job .*: attempt 1: exit 1" "$T/syslog.out"
	check "log_file = syslog: and the stop" grep -q "fcgiq\[$sp\]: stopped" "$T/syslog.out"
	check "log_file = syslog: no file named syslog" test ! -e syslog
else
	ok "log_file = syslog # SKIP needs root, unshare and socat"
fi
done_testing
