#!/bin/bash
# bench/exec.sh — the helper's processing speed, side by side with the
# reference of the same machine in the same run:
#
#   throughput  N jobs of a trivial exec handler (bench/stamp) queued while
#               the queue is paused, then resumed: jobs/s from the resume to
#               the last finished_at, against bench/spawn-loop running the
#               same program N times (posix_spawn + pipes + waitpid, no
#               database).  Rounds alternate.  Target: >= 0.8x.
#   latency     one job at a time on an idle helper, enqueued by
#               bench/enqueue-gap (one process that stays up, as a responder
#               does: a durable commit, then the wake-up): handler start (the
#               stamp it prints) minus the job's created_at.  p50 / p90 / p99.
#               A shell loop of `fcgiqctl enqueue; sleep` would start two
#               processes right while the helper starts the handler, and
#               measure that contention on a two-core VM, not fcgiq.
#               Target: p50 <= 2 ms + the spawn cost, measured the same way:
#               bench/spawn-loop -g 30 starts the program after 30 ms idle
#               each time (a cold start costs several times what one in a
#               tight loop does on these VMs) and takes start minus spawn.
#
# Usage: bench/exec.sh [-n JOBS] [-r ROUNDS] [-c CONCURRENCY] [-l LATENCY_JOBS]
# Needs a build in ./build (or BUILD=dir).  The helper runs alone
# (`fcgiq work`), durability full.  Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=500 rounds=3 conc=1 lat=200
while getopts "n:r:c:l:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; c) conc=$OPTARG ;; l) lat=$OPTARG ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
bench_built bench/spawn-loop bench/stamp bench/enqueue-gap
bench_scratch exec

cat > "$B/fcgiq.conf" <<EOC
[fcgiq]
database = $B/q.db
log = warn
[queue default]
handler = exec:$build/bench/stamp
user = root
concurrency = $conc
max_attempts = 1
EOC
ctl() { "$build/fcgiqctl" -c "$B/fcgiq.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$B/q.db" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

ctl pause default >/dev/null
"$build/fcgiq" work -c "$B/fcgiq.conf" 2>"$B/helper.log" &
pids="$pids $!"

echo "bench: $rounds rounds of $jobs jobs, concurrency $conc; latency over $lat jobs"
for r in $(seq "$rounds"); do
	raw=$("$build/bench/spawn-loop" -c "$conc" "$jobs" "$build/bench/stamp" |
	    sed 's/.*: \([0-9.]*\) runs\/s/\1/')
	sql "DELETE FROM jobs"
	"$build/bench/enqueue-gap" -g 0 "$jobs" default "$B/q.db" || exit 1
	t0=$(now_ms)
	ctl resume default >/dev/null
	# Look rarely: each look starts sqlite3 and sleep, and on two cores
	# that steals from the helper and its handlers (at every 50 ms it cost
	# a quarter of the rate).  finished_at dates the end, not the look.
	while sleep 1; [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$jobs" ]; do
		:
	done
	end=$(sql "SELECT max(finished_at) FROM jobs")
	dead=$(sql "SELECT count(*) FROM jobs WHERE state = 'dead'")
	ctl pause default >/dev/null
	rate=$(awk -v n="$jobs" -v ms="$((end - t0))" 'BEGIN { printf "%.1f", n * 1000 / ms }')
	ratio=$(awk -v a="$rate" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')
	echo "round $r: fcgiq $rate jobs/s, raw spawn-loop $raw runs/s: ${ratio}x (dead: $dead)"
	echo "$rate $raw $ratio" >> "$B/rounds"
done
m_rate=$(awk '{ print $1 }' "$B/rounds" | median 2)
m_raw=$(awk '{ print $2 }' "$B/rounds" | median 2)
m_ratio=$(awk '{ print $3 }' "$B/rounds" | median 2)

# Latency: an idle helper, one job at a time.
sql "DELETE FROM jobs"
ctl resume default >/dev/null
"$build/bench/enqueue-gap" -g 30 "$lat" default "$B/q.db" || exit 1
while [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$lat" ]; do
	sleep 0.05
done
sql "SELECT CAST(result AS TEXT) / 1000.0 - created_at FROM jobs WHERE state = 'done'" |
    sort -g > "$B/lat"
pct() { awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", a[i] }' "$B/lat"; }
ref=$("$build/bench/spawn-loop" -g 30 "$lat" "$build/bench/stamp")
spawn_ms=$(echo "$ref" | sed 's/.*p50 \([0-9.]*\) ms.*/\1/')
echo
echo "throughput (median of $rounds): fcgiq $m_rate jobs/s, raw $m_raw runs/s: ${m_ratio}x (target >= 0.8)"
echo "enqueue-to-start: p50 $(pct 50) ms, p90 $(pct 90) ms, p99 $(pct 99) ms; spawn-to-start p50 $spawn_ms ms after the same idle (target p50 <= 2 + $spawn_ms)"
