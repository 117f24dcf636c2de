#!/bin/bash
# bench/serial.sh — what serialize_by costs the claim, the store alone
# (bench/serialbench), rounds alternating so the loaded box weighs on both:
#
#   throughput  N jobs enqueued, then claimed and finished: without a
#               serial key (the reference) and each with a key of its own
#               (a queue with serialize_by whose keys rarely repeat), BATCH
#               claims and outcomes per transaction (-b; the helper's pass
#               takes every outcome due and claim in one; 1: one
#               transaction each, the worst case).  Ratio distinct / none.
#               Target: >= 0.9x.
#   held back   N jobs of one key, the first running: the time of a claim
#               that finds nothing (it reads a bounded window, then walks
#               the keys' first jobs) and of one that finds the job of
#               another key enqueued behind all of them.
#
# Usage: bench/serial.sh [-n JOBS] [-r ROUNDS] [-b BATCH] [-D full|normal]
# durability normal by default: a durable commit (~0.4 ms of fsync) per
# claim would hide the claim's own cost.  Nothing here is a test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=20000 rounds=5 dur=normal batch=1
while getopts "n:r:b:D:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; D) dur=$OPTARG ;;
	b) batch=$OPTARG ;;
	*) sed -n '2,21p' "$0"; exit 2 ;;
	esac
done
make -C "$build" -s bench/serialbench >/dev/null || exit 1
bench_scratch serial

run() {	# mode -> the figure it prints
	rm -f "$B"/db*
	"$build/bench/serialbench" -D "$dur" -b "$batch" -n "$1" -m "$2" \
	    "$B/db"
}

none_sum=0 dist_sum=0 ratios=""
for r in $(seq "$rounds"); do
	a=$(run "$jobs" none) || exit 1
	b=$(run "$jobs" distinct) || exit 1
	a=${a##*claim } a=${a%% *} b=${b##*claim } b=${b%% *}
	none_sum=$((none_sum + a)) dist_sum=$((dist_sum + b))
	ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
	ratios="$ratios $ratio"
	echo "round $r: none $a jobs/s, distinct keys $b jobs/s, ratio $ratio"
done
echo "throughput: none $((none_sum / rounds)) jobs/s, distinct keys" \
    "$((dist_sum / rounds)) jobs/s, ratio of the sums" \
    "$(awk -v a="$none_sum" -v b="$dist_sum" 'BEGIN { printf "%.3f", b / a }')," \
    "median ratio $(printf '%s\n' $ratios | median) (target >= 0.9)"
for r in $(seq 3); do
	echo "held back, round $r: $(run 10000 one)" || exit 1
done
