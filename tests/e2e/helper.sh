#!/bin/bash
# tests/e2e/helper.sh: the helper as a user runs it — nginx (on the shipped
# conf-examples/nginx.conf) in front of fcgiq under spawn-fcgi -F 2 (the
# shipped conf-examples/spawn-fcgi.sh), jobs posted with curl, outcomes read
# with sqlite3 and the status API.  One handler, tests/handlers/dispatch.sh,
# does what each request's query string asks.
#
# Covers: done with result; fail twice then done (3 attempts); exit 65 dead
# after 1; exit 75 retried; timeout killed, retried, reason recorded; a job
# cancelled before it starts never runs; the handler's environment and fds;
# kill -9 of the helper while a handler runs; the standby taking over; kill
# -9 of every process and a restart; 1000 jobs without zombies or fd growth.
#
# FCGIQ_TEST_BACKEND=pg (tests/e2e/pg-helper.sh) runs it on PostgreSQL
# (tests/backend.sh), outcomes read with psql.  There every helper claims:
# what is SQLite's by design (one active helper named in DATABASE-helper.lock,
# its standby, its wake-up socket) gives way to what the contract says for
# PostgreSQL — both helpers of spawn-fcgi -F 2 run jobs, a job whose helper
# was killed comes back when its lease ends (timeout + 32 s) — and a TAP
# comment lists what was left out.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/backend.sh"

for c in nginx spawn-fcgi curl $SQL_CLIENT; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"

backend_start "$T/var/q.db"
SOCK=$T/run/fcgiq.sock
ST=$T/state			# dispatch.sh records runs here
H=$T/handlers
mkdir -p "$T/var" "$T/run" "$ST" "$H"
cp "$top_srcdir/tests/handlers/dispatch.sh" "$H/"
cp "$top_builddir/tests/handlers/report" "$H/"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DATABASE
grace    = 2s
log      = info
log_file = $T/fcgiq.log
path     = /usr/local/bin:/usr/bin:/bin

[queue default]
handler      = exec:$H/dispatch.sh $ST
user = root
concurrency  = 4
max_attempts = 3
timeout      = 2s
backoff      = 50ms..200ms

[queue mail]
handler      = exec:$H/dispatch.sh $ST
user = root
concurrency  = 1
max_attempts = 3
timeout      = 10s
backoff      = 50ms..200ms

[queue github]
handler      = exec:$H/report
user = root
rlimit_nofile = 64
rlimit_as     = 256M
rlimit_cpu    = 30s
EOF

# The shipped nginx.conf with this test's socket, port and user.
sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
    -e "s|^user www-data;|user root;|" \
    "$top_srcdir/conf-examples/nginx.conf" >"$T/nginx.conf"
cp /etc/nginx/fastcgi_params "$T/"
start_nginx "$T/nginx.conf" || bail "nginx did not start"

FCGIQ_PIDS=""
start_fcgiq() {
	local out p
	out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf FCGIQ_BIN=$FCGIQ \
	    FCGIQ_CHILDREN=2 sh "$top_srcdir/conf-examples/spawn-fcgi.sh" \
	    2>>"$T/spawn-fcgi.log") || return 1
	FCGIQ_PIDS=$(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p')
	for p in $FCGIQ_PIDS; do track "$p"; done
	[ -n "$FCGIQ_PIDS" ]
}
start_fcgiq || bail "spawn-fcgi failed: $(cat "$T/spawn-fcgi.log")"

# post PATH [curl args...]: the new job's id on stdout.
post() {
	local path=$1
	shift
	curl -s -X POST --data-binary "${BODY:-x}" "$@" "$URL$path" |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# wait_state ID "STATE..." [SECONDS]
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
wait_file() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		[ -s "$1" ] && return 0	# dispatch.sh has written its pid
		sleep 0.05
	done
	return 1
}
# A zombie waiting for init to reap it counts as dead.
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
active_helper() { cat "$DB-helper.lock" 2>/dev/null; }
# children PID: pids whose parent is PID.
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }
# helpers: the live helpers under this suite's fcgiq processes.
helpers() {
	local f s h
	for f in $FCGIQ_PIDS; do
		for s in $(children "$f"); do
			for h in $(children "$s"); do
				alive "$h" && grep -qx fcgiq-helper "/proc/$h/comm" 2>/dev/null &&
				    echo "$h"
			done
		done
	done
	return 0
}
# a_helper: the active one on SQLite; on PostgreSQL, where all are, the
# first.
a_helper() { if is_pg; then helpers | head -1; else active_helper; fi; }
# pg_active N: N helpers are up and active (PostgreSQL: no lock, each
# logs "active" as soon as it opened the store).
pg_active() {
	local h n=0
	for h in $(helpers); do
		grep -q "^[a-z-]*\[$h\]: info: helper: .*: active$" "$T/fcgiq.log" &&
		    n=$((n + 1))
	done
	[ "$n" -ge "$1" ]
}

# wake_bound DB: the active helper's wake-up socket is bound (an abstract
# name from the database's device and inode, see queue/wake.c).
wake_bound() {
	local n
	n=$(stat -c '%d %i' "$1" 2>/dev/null) || return 1
	set -- $n
	grep -q "@fcgiq-wake-$(printf '%x-%x' "$1" "$2")\$" /proc/net/unix
}
if is_pg; then
	wait_for pg_active 2 || bail "the helpers did not become active"
	sqlite_only "the wake-up socket bound by the one active helper (PostgreSQL wakes every helper with LISTEN/NOTIFY)"
else
	wait_for wake_bound "$DB" || bail "no helper became active"
fi

# --- a job runs once and ends done with its result
BODY="hello, queue" id=$(post "/hooks/a?do=cat")
check "intake answered with a job id" test -n "$id"
wait_state "$id" "done dead" 10
check_eq "cat job done" "done|1" "$(field "$id" "state || '|' || attempts")"
check_eq "its result is the body" "hello, queue" "$(field "$id" "$(as_text result)")"
status=$(curl -s "$URL/jobs/$id")
check "status API shows it done" grep -q '"state" *: *"done"' <<<"$status"
check_eq "the handler ran once" "1" "$(ls "$ST" | grep -c "^$id\.")"
echo "# commit to handler start (wake-up push): $(field "$id" "started_at - created_at") ms"

# --- failing twice, then succeeding: done with 3 attempts
id=$(post "/hooks/b?do=fail&n=2")
wait_state "$id" "done dead" 15
check_eq "fail twice then done: 3 attempts" "done|3" "$(field "$id" "state || '|' || attempts")"

# --- exit 65: dead at once
id=$(post "/hooks/c?do=exit&n=65")
wait_state "$id" "done dead" 10
check_eq "exit 65: dead after 1 attempt" "dead|1" "$(field "$id" "state || '|' || attempts")"
check_eq "exit 65: reason and stderr recorded" "exit 65 (data error): exit 65 requested" \
    "$(field "$id" last_error)"

# --- exit 75: retried until attempts run out
id=$(post "/hooks/d?do=exit&n=75")
wait_state "$id" "done dead" 15
check_eq "exit 75: retried to max_attempts" "dead|3" "$(field "$id" "state || '|' || attempts")"
check_eq "exit 75: handler ran 3 times" "3" "$(ls "$ST" | grep -c "^$id\.[0-9]*$")"

# --- timeout: killed, retried, reason recorded (timeout = 2s)
tid=$(post "/hooks/e?do=sleep&n=30")
wait_file "$ST/$tid.1" 5
p1=$(cat "$ST/$tid.1" 2>/dev/null)
check "timeout: attempt 2 starts after attempt 1 is stopped" wait_file "$ST/$tid.2" 10
check "timeout: attempt 1's process is gone" dead "${p1:-0}"
check_eq "timeout: reason recorded" "timeout after 2s" "$(field "$tid" last_error)"

# --- a job cancelled before it starts never runs (mail: concurrency 1, per
# helper on PostgreSQL: one busy job for each)
if is_pg; then
	busy2=$(post "/mail/a2?do=sleep&n=2")
	wait_file "$ST/$busy2.1" 5
fi
busy=$(post "/mail/a?do=sleep&n=2")
wait_file "$ST/$busy.1" 5
id=$(post "/mail/b?do=mark")
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/jobs/$id")
check_eq "DELETE of a waiting job: 204" "204" "$code"
wait_state "$busy" "done" 10
sleep 0.5
check_eq "cancelled job stays cancelled, attempts 0" "cancelled|0" \
    "$(field "$id" "state || '|' || attempts")"
check "cancelled job never ran" test ! -e "$ST/$id.1"

# --- the handler's environment and fds
id=$(post "/github?x=1" -H "Proxy: http://evil.example:3128" \
    -H "X-Custom: c" -H "X-GitHub-Delivery: d-$$-$RANDOM" -H "Content-Type: text/plain")
wait_state "$id" "done dead" 10
field "$id" "$(as_text result)" >"$T/report.out"
check_eq "report: fds exactly 0 1 2" "0 1 2" "$(sed -n 's/^fd //p' "$T/report.out" | sort -n | xargs)"
check "report: no HTTP_PROXY" bash -c "! grep -q '^env HTTP_PROXY=' '$T/report.out'"
check "report: request headers as HTTP_*" grep -q '^env HTTP_X_CUSTOM=c$' "$T/report.out"
extra=$(sed -n 's/^env \([^=]*\)=.*/\1/p' "$T/report.out" | grep -v '^HTTP_' |
    grep -vxE 'PATH|REQUEST_METHOD|REQUEST_URI|QUERY_STRING|CONTENT_TYPE|CONTENT_LENGTH|REMOTE_ADDR|FCGIQ_JOB_ID|FCGIQ_QUEUE|FCGIQ_ATTEMPT' | xargs)
check_eq "report: nothing outside the allowlist" "" "$extra"
check_eq "report: the whole allowlist is there" "10" "$(sed -n 's/^env \([^=]*\)=.*/\1/p' "$T/report.out" |
    grep -cxE 'PATH|REQUEST_METHOD|REQUEST_URI|QUERY_STRING|CONTENT_TYPE|CONTENT_LENGTH|REMOTE_ADDR|FCGIQ_JOB_ID|FCGIQ_QUEUE|FCGIQ_ATTEMPT')"
check_eq "report: rlimits from the config" "64 268435456 30" \
    "$(sed -n 's/^rlimit-\(nofile\|as\|cpu\) //p' "$T/report.out" | xargs)"
check "report: own process group, clean signal state" \
    grep -qz 'pgrp-is-pid 1.sigblk 0000000000000000.sigign 0000000000000000' "$T/report.out"

# --- the process tree: fcgiq -> fcgiq-superv -> fcgiq-helper
helper=$(a_helper)
sup=$(awk '{print $4}' "/proc/$helper/stat")
check_eq "the helper names itself" "fcgiq-helper" "$(cat "/proc/$helper/comm")"
check_eq "its supervisor names itself" "fcgiq-superv" "$(cat "/proc/$sup/comm")"
check "the supervisor's parent is an fcgiq" grep -qw "$(awk '{print $4}' "/proc/$sup/stat")" <<<"$FCGIQ_PIDS"
check_eq "helper: fd 0 is /dev/null, not the FastCGI socket" "/dev/null" "$(readlink "/proc/$helper/fd/0")"
check_eq "supervisor: fd 0 is /dev/null" "/dev/null" "$(readlink "/proc/$sup/fd/0")"
# No listening socket among the helper's fds (the wake socket is datagram).
listen_inodes=$(awk 'NR > 1 && $4 == "00010000" { print $7 }' /proc/net/unix | sort -u)
held=$(for l in /proc/$helper/fd/*; do readlink "$l"; done | sed -n 's/socket:\[\([0-9]*\)\]/\1/p' | sort -u)
check_eq "helper holds no listening socket" "" "$(comm -12 <(echo "$listen_inodes") <(echo "$held") | xargs)"

# --- kill -9 the helper while a handler runs
id=$(post "/mail/k?do=sleep&n=3")
wait_file "$ST/$id.1" 5
hp=$(cat "$ST/$id.1")
if is_pg; then
	# Every helper claims: the one to kill is the handler's parent.
	helper=$(awk '{print $4}' "/proc/$hp/stat" 2>/dev/null)
	check "the handler's parent is a helper" grep -qx fcgiq-helper "/proc/${helper:-0}/comm"
else
	helper=$(active_helper)
	check "an active helper is named in the lock file" alive "${helper:-0}"
fi
kill -9 "$helper"
for i in $(seq 40); do alive "$hp" || break; sleep 0.05; done
check "kill -9 helper: its handler dies too" dead "$hp"
if is_pg; then
	# No helper may take a job whose lease runs (its helper may only be
	# cut off): it waits for the lease, timeout + 32 s.  The rest goes on
	# meanwhile; after the restart below, the job is checked done.
	kid=$id
	check_eq "kill -9 helper: the job stays running, its lease unexpired" \
	    "running|1" "$(field "$id" "state || '|' || attempts")"
	check "kill -9 helper: its supervisor starts another, active too" \
	    wait_for pg_active 2
else
	check "kill -9 helper: the job runs again as attempt 2" wait_file "$ST/$id.2" 5
	wait_state "$id" "done" 10
	check_eq "kill -9 helper: job done with 2 attempts" "done|2" "$(field "$id" "state || '|' || attempts")"
	check_eq "nothing stays running" "0" "$(sql "SELECT count(*) FROM jobs WHERE state = 'running' AND id != '$tid'")"
fi

if is_pg; then
# --- both helpers of spawn-fcgi -F 2 claim: 8 jobs at once on default
# (concurrency 4 a helper) run on both
sids=""
for i in $(seq 8); do sids="$sids $(post "/hooks/both$i?do=sleep&n=1")"; done
runners=""
for sid in $sids; do
	wait_file "$ST/$sid.1" 5 &&
	    runners="$runners $(awk '{print $4}' "/proc/$(cat "$ST/$sid.1")/stat" 2>/dev/null)"
done
check_eq "both helpers run jobs at once (distinct parents of 8 handlers)" 2 \
    "$(echo $runners | tr ' ' '\n' | sort -u | wc -l)"
for sid in $sids; do wait_state "$sid" "done" 10; done
check_eq "... and all 8 done once" "8" \
    "$(sql "SELECT count(*) FROM jobs WHERE id IN ($(printf "'%s'," $sids | sed 's/,$//')) AND state = 'done' AND attempts = 1")"
sqlite_only "the active helper named in DATABASE-helper.lock; its standby taking over within a second (there is no helper lock on PostgreSQL)"
else
# --- kill -9 the active helper with -F 2: the standby takes over
wait_for eval '[ -n "$(active_helper)" ]'
# The helper restarted in place of the killed one settles as a standby.
standby() {
	local a p
	a=$(active_helper)
	for p in $(sed -n 's/^[a-z-]*\[\([0-9]*\)\]: .*: another helper is active, standing by$/\1/p' "$T/fcgiq.log"); do
		[ "$p" != "$a" ] && alive "$p" && return 0
	done
	return 1
}
wait_for standby
old=$(active_helper)
t0=$(date +%s%N)
kill -9 "$old"
new=""
for i in $(seq 60); do
	new=$(active_helper)
	[ -n "$new" ] && [ "$new" != "$old" ] && alive "$new" && break
	sleep 0.025
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# standby took over in $ms ms"
check "standby took over (new helper $new, old $old)" test -n "$new" -a "$new" != "$old"
check "... within a second ($ms ms)" test "$ms" -lt 1000
id=$(post "/hooks/after?do=cat")
wait_state "$id" "done" 10
check_eq "the new helper runs jobs" "done" "$(field "$id" state)"
fi

# --- SIGHUP to fcgiq reaches the helper: mail's handler now records in ST2
mkdir -p "$T/state2"
sed -i "/^\[queue mail\]/,/^\[/s|^handler .*|handler      = exec:$H/dispatch.sh $T/state2|" "$T/fcgiq.conf"
kill -HUP $FCGIQ_PIDS
if is_pg; then
	# Every helper claims: each must have reloaded.
	reloaded() {
		local h
		for h in $(helpers); do
			grep -q "^[a-z-]*\[$h\]: info: helper: configuration reloaded" "$T/fcgiq.log" || return 1
		done
	}
	wait_for reloaded
else
	wait_for grep -q "^[a-z-]*\[$(active_helper)\]: info: helper: configuration reloaded" "$T/fcgiq.log"
fi
id=$(post "/mail/hup?do=mark")
wait_state "$id" "done" 10
check "SIGHUP: the helper runs the reloaded handler" test -e "$T/state2/$id.1"

# --- fcgiq work beside the running helpers: a standby until stopped (on
# PostgreSQL, one more helper that claims)
helper=$(a_helper)
"$FCGIQ" work -c "$T/fcgiq.conf" 2>"$T/work.log" &
work=$!
track "$work"
if is_pg; then
	wait_for grep -q "^[a-z-]*\[$work\]: info: helper: .*: active$" "$T/fcgiq.log" "$T/work.log"
	check "fcgiq work: active beside the others" grep -q \
	    "^[a-z-]*\[$work\]: info: helper: .*: active$" "$T/fcgiq.log" "$T/work.log"
	sqlite_only "fcgiq work standing by while another helper holds the lock"
else
	wait_for grep -q "standing by" "$T/work.log"
	sleep 0.5	# a window in which it must neither exit nor take the lock
	check "fcgiq work: running as a standby" alive "$work"
	check_eq "fcgiq work: the active helper is unchanged" "$helper" "$(active_helper)"
fi
check "fcgiq work: names itself fcgiq-helper" grep -qx fcgiq-helper "/proc/$work/comm"
kill -TERM "$work"
rc=0
wait "$work" || rc=$?
if is_pg; then what="an active helper"; else what="a standby"; fi
check_eq "fcgiq work: SIGTERM ends $what with status 0" "0" "$rc"

# Jobs left running by a helper killed -9 come back when their lease ends
# on PostgreSQL (timeout + 32 s: 34 s on default), at once on SQLite.
if is_pg; then LEASE_WAIT=60; else LEASE_WAIT=30; fi

# --- kill -9 every process with jobs queued, start again: all finish
wait_state "$tid" "dead" 15	# the timeout job is out of the way
ids=""
for i in $(seq 12); do ids="$ids $(post "/hooks/k$i?do=sleep&n=1")"; done
started() { local id; for id in $ids; do [ -s "$ST/$id.1" ] && return 0; done; return 1; }
wait_for started	# a handler of this round runs: its job is running
all=""
for f in $FCGIQ_PIDS; do
	for s in $(children "$f"); do
		all="$all $s $(children "$s")"
	done
	all="$all $f"
done
handlers=$(ls "$ST" | grep -c "\.1$")
kill -9 $all 2>/dev/null
for i in $(seq 200); do
	left=""
	for p in $all; do alive "$p" && left="$left $p"; done
	[ -z "$left" ] && break
	sleep 0.05
done
check_eq "kill -9 all: every fcgiq, supervisor and helper gone" "" "$left"
running=$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")
check "kill -9 all: jobs were left running and queued" test "$running" -gt 0
sleep 0.3
# Only this round's handlers, and only while the pid is still a handler:
# pids wrap (pid_max is 32768 here) and an old one may be anyone's now.
check_eq "kill -9 all: no handler outlives its helper" "" \
    "$(for id in $ids; do for f in "$ST/$id".[0-9]; do [ -f "$f" ] || continue
	p=$(cat "$f"); alive "$p" && grep -q dispatch "/proc/$p/cmdline" 2>/dev/null && echo "$p"
    done; done | xargs)"
start_fcgiq || bail "spawn-fcgi failed again"
ok=0
for id in $ids; do wait_state "$id" "done" $LEASE_WAIT && ok=$((ok + 1)); done
check_eq "restart: all 12 jobs done" "12" "$ok"
if is_pg; then
	# The job whose helper was killed above: its lease ended meanwhile.
	wait_state "$kid" "done" $LEASE_WAIT
	check_eq "kill -9 helper: after its lease the job ran again, done with 2 attempts" \
	    "done|2" "$(field "$kid" "state || '|' || attempts")"
	# mail's handler records in state2 since the SIGHUP above.
	check "kill -9 helper: attempt 2 ran" test -s "$T/state2/$kid.2"
	check "kill -9 helper: its lease's end logged" grep -q \
	    "with an expired lease requeued" "$T/fcgiq.log"
fi
check_eq "restart: nothing running" "0" "$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")"

# --- 1000 jobs through: no zombies, no fd growth in the helper (in each,
# on PostgreSQL)
if is_pg; then
	wait_for pg_active 2
	hs=$(helpers | xargs)
	check_eq "two helpers after the restart" 2 "$(echo $hs | wc -w)"
else
	wait_for eval '[ -n "$(active_helper)" ]'
	hs=$(active_helper)
fi
helper=$(a_helper)
declare -A fd0
for h in $hs; do fd0[$h]=$(ls "/proc/$h/fd" | wc -l); done
before=$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")
t0=$(date +%s%N)
curl -s -Z --parallel-max 8 -X POST --data-binary x \
    "$URL/hooks/n[1-1000]?do=true" >"$T/1000.out" 2>/dev/null
posted=$(grep -o '"id"' "$T/1000.out" | wc -l)
check_eq "1000 jobs accepted" "1000" "$posted"
for i in $(seq 1200); do
	n=$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")
	[ $((n - before)) -ge 1000 ] && break
	sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "1000 jobs done" "1000" "$((n - before))"
t1=$(date +%s%N)
for i in $(seq 1000); do
	FCGIQ_JOB_ID=raw$i FCGIQ_ATTEMPT=1 QUERY_STRING="do=true" "$H/dispatch.sh" "$ST"
done
raw=$(( ($(date +%s%N) - t1) / 1000000 ))
echo "# 1000 jobs (post + run, concurrency 4): $ms ms; the same handler run 1000 times in a shell loop: $raw ms"
# The last handlers' ends are stored before the helper has closed
# their pipes: wait for that, bounded, then check.
for h in $hs; do
	wait_for eval '[ "$(ls "/proc/$h/fd" | wc -l)" = "${fd0[$h]}" ]'
done
if is_pg; then
	check_eq "the same helpers throughout" "$hs" "$(helpers | xargs)"
else
	check_eq "the same helper throughout" "$helper" "$(active_helper)"
fi
for h in $hs; do
	lab=""
	is_pg && lab=" $h"
	check_eq "no zombies under the helper$lab" "" "$(ps -o stat= --ppid "$h" | grep Z | xargs)"
	check_eq "no fd growth in the helper$lab" "${fd0[$h]}" "$(ls "/proc/$h/fd" | wc -l)"
done

# --- the shipped example handler, conf-examples/handlers/store-to-dir
S2D=$top_srcdir/conf-examples/handlers/store-to-dir
mkdir -p "$T/spool"
out=$(printf 'payload' | env -i PATH=/usr/bin:/bin FCGIQ_JOB_ID=job_1-x \
    REQUEST_METHOD=POST REQUEST_URI=/hooks/s FCGIQ_ATTEMPT=1 "$S2D" "$T/spool")
check_eq "store-to-dir: prints where it stored the body" "$T/spool/job_1-x" "$out"
check_eq "store-to-dir: the body, whole" "payload" "$(cat "$T/spool/job_1-x" 2>/dev/null)"
rc=0; echo x | env -i FCGIQ_JOB_ID=j2 "$S2D" "$T/nonexistent" 2>/dev/null || rc=$?
check_eq "store-to-dir: missing directory is a retry (75)" "75" "$rc"
rc=0; echo x | env -i FCGIQ_JOB_ID=../etc "$S2D" "$T/spool" 2>/dev/null || rc=$?
check_eq "store-to-dir: unsafe job id is permanent (65)" "65" "$rc"

done_testing
