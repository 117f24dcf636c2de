#!/bin/bash
# bench/flow.sh — what flow control (issue 19) costs the helper's claim
# loop: N queued jobs drained through http: into nginx answering `return
# 200` (no process per job, so the helper's own claim, record and commit
# are most of the cost), by a helper whose queue has every flow key set
# (rate high enough not to bind, pause_after, retry_concurrency,
# quarantine_after) against one with none of them (quarantine_after = 0),
# and a third with every feature of the issue configured at once: the flow
# keys, serialize_by (each job a key of its own, as a queue whose keys
# rarely repeat: the claim walks the keys' first jobs), a [schedule] (read
# at each pass, never due in a round) and a dead_letter_queue; same
# database, rounds alternating.  jobs/s from the first started_at to the
# last finished_at, and the helper's CPU per job.  Target: flow >= 0.9x
# none, and all >= 0.9x none ("claim throughput with every feature
# configured").  On a loaded box the wall-clock rates swing between rounds
# (other processes take the cores); the helper's CPU per job does not.
#
# Usage: bench/flow.sh [-n JOBS] [-r ROUNDS] [-c CONCURRENCY]
# Needs a build in ./build (or BUILD=dir), nginx, sqlite3.  Nothing here
# is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=20000 rounds=3 conc=8
while getopts "n:r:c:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; c) conc=$OPTARG ;;
	*) sed -n '2,15p' "$0"; exit 2 ;;
	esac
done
bench_built bench/storebench
bench_need nginx
bench_scratch flow

# A port below the ephemeral range (NOTES.md), from this branch's range.
port=$((24000 + RANDOM % 1000))
mkdir -p "$B/nginx/tmp"
cat > "$B/nginx.conf" <<EOF
user $( [ "$(id -u)" = 0 ] && echo root || id -un );
worker_processes 1;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $B/nginx/tmp;
	server {
		listen 127.0.0.1:$port;
		keepalive_requests 1000000;
		location / { return 200 "ok\n"; }
	}
}
EOF
bench_nginx "$B/nginx.conf"
[ "$(curl -s -d x "http://127.0.0.1:$port/")" = ok ] ||
    { echo "bench: nginx does not answer on $port"; exit 1; }

# mode none / flow / all: the same queue, with no flow key, every flow
# key, or every feature.
for mode in none flow all; do
	cat > "$B/$mode.conf" <<EOF
[fcgiq]
database = $B/q.db
log = warn
[queue default]
handler = http:http://127.0.0.1:$port/job
concurrency = $conc
max_attempts = 1
EOF
	if [ "$mode" != none ]; then
		cat >> "$B/$mode.conf" <<EOF
rate = 1000000/s
pause_after = 1000
pause_for = 1m
retry_concurrency = $((conc / 2))
quarantine_after = 3
EOF
		[ "$mode" = all ] && cat >> "$B/$mode.conf" <<EOF
serialize_by = header:X-Key
[queue letters]
handler = http:http://127.0.0.1:$port/letter
[schedule yearly]
cron = 0 0 1 1 *
queue = letters
body = {}
EOF
		[ "$mode" = all ] &&
		    sed -i 's/^\[fcgiq\]$/[fcgiq]\ndead_letter_queue = letters/' \
		    "$B/$mode.conf"
	else
		echo "quarantine_after = 0" >> "$B/$mode.conf"
	fi
done
ctl() { "$build/fcgiqctl" -c "$B/none.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$B/q.db" "$@"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# round MODE: drain $jobs jobs with a helper of MODE; "jobs/s us/job".
round() {
	local c0 c1 span bad
	[ -e "$B/q.db" ] && sql "DELETE FROM jobs"
	ctl pause default >/dev/null
	"$build/bench/storebench" -s 512 -p "$jobs" -e 0 -c 0 "$B/q.db" >/dev/null || exit 1
	# The key intake would have stored from X-Key: one per job.
	[ "$1" = all ] && sql "UPDATE jobs SET serial_key = id"
	"$build/fcgiq" work -c "$B/$1.conf" 2>>"$B/helper-$1.log" &
	helper=$!
	sleep 0.5	# active, its first claim pass over
	c0=$(cpu_ticks "$helper")
	ctl resume default >/dev/null
	# Look rarely: each look starts sqlite3 and steals a core.
	while sleep 1; [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$jobs" ]; do
		:
	done
	c1=$(cpu_ticks "$helper")
	kill "$helper"; wait "$helper" 2>/dev/null; helper=""
	bad=$(sql "SELECT count(*) FROM jobs WHERE state <> 'done'")
	[ "$bad" = 0 ] || echo "bench: $1: $bad jobs not done" >&2
	span=$(sql "SELECT max(finished_at) - min(started_at) FROM jobs")
	awk -v n="$jobs" -v ms="$span" -v t="$((c1 - c0))" -v hz="$hz" \
	    'BEGIN { printf "%.1f %.0f\n", n * 1000 / ms, t * 1e6 / hz / n }'
}

echo "bench: $rounds rounds of $jobs jobs each way, http: into nginx return 200, concurrency $conc"
for r in $(seq "$rounds"); do
	# Alternate which goes first, so neither always meets a warmer box.
	if [ $((r % 2)) = 1 ]; then a=$(round none); b=$(round flow); c=$(round all)
	else c=$(round all); b=$(round flow); a=$(round none); fi
	set -- $a $b $c
	ratio=$(awk -v x="$3" -v y="$1" 'BEGIN { printf "%.3f", x / y }')
	ratio_all=$(awk -v x="$5" -v y="$1" 'BEGIN { printf "%.3f", x / y }')
	echo "round $r: none $1 jobs/s ($2 us/job), flow $3 jobs/s ($4 us/job): ${ratio}x, all $5 jobs/s ($6 us/job): ${ratio_all}x"
	echo "$1 $3 $ratio $2 $4 $5 $ratio_all $6" >> "$B/rounds"
done
echo
m_none=$(awk '{ print $1 }' "$B/rounds" | median 3)
m_flow=$(awk '{ print $2 }' "$B/rounds" | median 3)
echo "flow (median of $rounds): none $m_none jobs/s, flow $m_flow jobs/s: $(awk -v a="$m_flow" -v b="$m_none" 'BEGIN { printf "%.3f", a / b }')x; median of the rounds' ratios $(awk '{ print $3 }' "$B/rounds" | median 3)x (target >= 0.9)"
m_all=$(awk '{ print $6 }' "$B/rounds" | median 3)
echo "flow, all features (median of $rounds): none $m_none jobs/s, all $m_all jobs/s: $(awk -v a="$m_all" -v b="$m_none" 'BEGIN { printf "%.3f", a / b }')x; median of the rounds' ratios $(awk '{ print $7 }' "$B/rounds" | median 3)x (target >= 0.9)"
echo "flow: helper CPU per job (median): none $(awk '{ print $4 }' "$B/rounds" | median 3) us, flow $(awk '{ print $5 }' "$B/rounds" | median 3) us, all $(awk '{ print $8 }' "$B/rounds" | median 3) us"
