#!/bin/bash
# bench/schedules.sh — what [schedule NAME] costs the helper's loop: the
# drain rate (jobs/s) of N queued jobs of a trivial exec handler
# (bench/stamp) by a helper whose configuration has 20 schedules (every
# minute, into a queue of their own, so they fire during the rounds that
# cross a minute) against the same helper with none.  Two databases, two
# helpers up side by side (each idle while the other drains); rounds
# alternate which goes first.  Target: with >= 0.9x without.  Beside it,
# the helper's own CPU time a job (its loop, not its handlers).  Then
# bench/sched-hook: the hook's own cost on a turn with nothing due (ns a
# call, 20 schedules and none), which the drain rates on a loaded box can
# hide in their noise.
#
# Usage: bench/schedules.sh [-n JOBS] [-r ROUNDS] [-c CONCURRENCY]
# Needs a build in ./build (or BUILD=dir) and sqlite3.  Nothing here is a
# pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=3000 rounds=4 conc=4
while getopts "n:r:c:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; c) conc=$OPTARG ;;
	*) sed -n '2,16p' "$0"; exit 2 ;;
	esac
done
bench_built bench/stamp bench/enqueue-gap bench/sched-hook
bench_scratch sched

for v in none sched; do
	mkdir -p "$B/$v"
	cat >"$B/$v/fcgiq.conf" <<EOC
[fcgiq]
database = $B/$v/q.db
log = warn
[queue default]
handler = exec:$build/bench/stamp
user = root
concurrency = $conc
max_attempts = 1
[queue tick]
EOC
	if [ "$v" = sched ]; then
		for i in $(seq 20); do
			printf '[schedule s%d]\ncron = * * * * *\nqueue = tick\nbody = {"n":%d}\n' \
			    "$i" "$i" >>"$B/$v/fcgiq.conf"
		done
	fi
	"$build/fcgiqctl" -c "$B/$v/fcgiq.conf" pause default >/dev/null
	"$build/fcgiq" work -c "$B/$v/fcgiq.conf" 2>"$B/$v/helper.log" &
	pids="$pids $!"
	echo $! >"$B/$v/pid"
done

ctl() { "$build/fcgiqctl" -c "$B/$1/fcgiq.conf" "${@:2}"; }
sql() { sqlite3 -cmd ".timeout 5000" "$B/$1/q.db" "$2"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The helper's own CPU time (user + system, clock ticks), not its
# handlers': the loop's work, which a loaded box does not inflate the way
# it does wall time.
cpu() { awk '{ print $14 + $15 }' "/proc/$(cat "$B/$1/pid")/stat"; }
hz=$(getconf CLK_TCK)
# One drain of $jobs jobs by variant $1: its jobs/s; the helper's CPU
# microseconds a job into $B/$1/cpu.
drain() {
	local v=$1 t0 end c0
	sql "$v" "DELETE FROM jobs WHERE queue = 'default'"
	"$build/bench/enqueue-gap" -g 0 "$jobs" default "$B/$v/q.db" >/dev/null || exit 1
	c0=$(cpu "$v")
	t0=$(now_ms)
	ctl "$v" resume default >/dev/null
	# Look rarely: each look costs the helper CPU (see bench/exec.sh).
	while sleep 1; [ "$(sql "$v" "SELECT count(*) FROM jobs WHERE queue = 'default' AND state IN ('done', 'dead')")" -lt "$jobs" ]; do
		:
	done
	end=$(sql "$v" "SELECT max(finished_at) FROM jobs WHERE queue = 'default'")
	ctl "$v" pause default >/dev/null
	awk -v c="$(( $(cpu "$v") - c0 ))" -v hz="$hz" -v n="$jobs" \
	    'BEGIN { printf "%.1f\n", c * 1e6 / hz / n }' >>"$B/$v/cpu"
	awk -v n="$jobs" -v ms="$((end - t0))" 'BEGIN { printf "%.1f", n * 1000 / ms }'
}

echo "bench: $rounds rounds of $jobs jobs, concurrency $conc; 20 schedules (every minute) vs none"
for r in $(seq "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then
		a=$(drain none); b=$(drain sched)
	else
		b=$(drain sched); a=$(drain none)
	fi
	ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
	echo "round $r: none $a jobs/s, 20 schedules $b jobs/s: ${ratio}x"
	echo "$a $b $ratio" >>"$B/rounds"
done
fired=$(sql sched "SELECT count(*) FROM jobs WHERE queue = 'tick'")
echo
echo "median: none $(awk '{ print $1 }' "$B/rounds" | median 3) jobs/s, 20 schedules $(awk '{ print $2 }' "$B/rounds" | median 3) jobs/s: $(awk '{ print $3 }' "$B/rounds" | median 3)x (target >= 0.9); schedule jobs enqueued meanwhile: $fired"
echo "helper CPU a job (median): none $(median 3 <"$B/none/cpu") us, 20 schedules $(median 3 <"$B/sched/cpu") us"
for v in none sched; do
	sed "s|^database = .*|database = $B/hook.db|" "$B/$v/fcgiq.conf" >"$B/hook-$v.conf"
done
for r in 1 2 3; do
	"$build/bench/sched-hook" "$B/hook-none.conf" 2000000
	"$build/bench/sched-hook" "$B/hook-sched.conf" 2000000
done
