#!/bin/bash
# bench/wait.sh — intake with 1,000 requests parked on Prefer: wait
# against intake without them, one fcgiq (durability full) behind one
# nginx, rounds alternating in the same run so that machine drift hits
# both alike:
#
#   idle    wrk -c C, 512-byte POSTs through nginx, nothing else
#   parked  the same, while N requests (tests/tools/fcgiclient -C N, on
#           fcgiq's socket) wait on a job that never finishes (its queue
#           has no handler), with Prefer: wait longer than the round;
#           they are closed (and dropped by fcgiq) after each round
#
# What the waiters cost fcgiq: their connections in the park's epoll set,
# the watch renewal each second, the re-read of every waiter's state each
# second (one transaction, N indexed lookups).  Intake jobs go to a queue
# of their own, also without handler: the bench measures intake.
#
# Rounds go idle-parked, then parked-idle, and so on (the database grows
# with every round).
#
# Usage: bench/wait.sh [-r ROUNDS] [-d SECONDS] [-c CONC] [-n WAITERS]
# Target: parked >= 0.9x idle (req/s, medians; the median of each
# round's ratio is printed too).  Nothing here is a
# pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
rounds=3 dur=10 conc=64 waiters=1000
while getopts "r:d:c:n:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) conc=$OPTARG ;;
	n) waiters=$OPTARG ;;
	*) sed -n '2,24p' "$0"; exit 2 ;;
	esac
done
bench_need wrk nginx sqlite3
bench_built tests/tools/fcgiclient
ulimit -n $((waiters * 2 + 4096)) || exit 1

bench_scratch wait

cat >"$B/fcgiq.conf" <<EOF
[fcgiq]
database = $B/queue.db
log = warn
max_wait = 600s
[queue default]
max_queued = 1000000000
[queue idle]
EOF
bench_fcgiq "$B/fcgiq.conf" "$B/fcgiq.sock"
port=$((20000 + RANDOM % 12000))
bench_nginx_fcgiq <<EOC
		location / { include /etc/nginx/fastcgi_params;
			fastcgi_keep_conn on; fastcgi_pass fcgiq; }
EOC

client=$build/tests/tools/fcgiclient
"$client" -s "$B/fcgiq.sock" -d x -p FCGIQ_QUEUE=idle >"$B/job.out"
job=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$B/job.out")
[ -n "$job" ] || { echo "bench: no job to wait on"; exit 1; }
nfds() { ls "/proc/$fpid/fd" | wc -l; }
cpu_ms() {	# fcgiq's CPU time so far, all threads, in ms
	awk '{ sub(/^.*\) /, ""); split($0, f, " "); t += f[12] + f[13] }
	    END { print t * 10 }' /proc/"$fpid"/task/*/stat
}
park() {	# N waiters on the job, in the background; sets wpid, parked
	local base i
	base=$(nfds)
	"$client" -s "$B/fcgiq.sock" -C "$waiters" -w $((dur + 30)) -m GET \
	    -u "/jobs/$job" -l none -p "HTTP_PREFER=wait=$((dur + 20))" \
	    >"$B/w.out" &
	wpid=$!
	for i in $(seq 300); do
		[ "$(nfds)" -ge $((base + waiters)) ] && break
		sleep 0.1
	done
	parked=$(($(nfds) - base))
	sleep 1		# their requests read and parked, not just accepted
}

rps() {
	wrk_run "http://127.0.0.1:$port/bench/" "$conc" "$B/wrk.out" \
	    "$src/bench/post.lua"
}

# What the waiters cost with nothing else going on: their re-read each
# second, the watch renewals.
park
c0=$(cpu_ms)
sleep 5
c1=$(cpu_ms)
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
echo "wait: $parked waiters parked, no load: fcgiq used $((c1 - c0)) ms of CPU in 5 s"
echo "wait: intake c=$conc, ${dur}s rounds, $waiters waiters parked or none"
wrk -t2 -c"$conc" -d2s -s "$src/bench/post.lua" \
    "http://127.0.0.1:$port/bench/" >/dev/null 2>&1	# warm-up
: >"$B/idle" ; : >"$B/parked"
for r in $(seq "$rounds"); do
	# ABBA: the database grows by each round's jobs, and intake slows a
	# little with it; alternating which goes first cancels that drift.
	order="idle parked"
	[ $((r % 2)) -eq 0 ] && order="parked idle"
	for mode in $order; do
		[ $mode = parked ] && park
		v=$(rps)
		lat=$(awk '$1 == "99%" { print $2 }' "$B/wrk.out")
		if [ $mode = parked ]; then
			kill "$wpid" 2>/dev/null
			wait "$wpid" 2>/dev/null
			echo "round $r parked: $v req/s (p99 $lat), $parked waiters held"
		else
			echo "round $r idle:   $v req/s (p99 $lat)"
		fi
		echo "$v" >>"$B/$mode"
	done
done
i=$(median <"$B/idle") p=$(median <"$B/parked")
# Each round's pair too: drift between rounds cancels out of its ratio.
paste "$B/parked" "$B/idle" | awk '{ print $1 / $2 }' >"$B/ratios"
echo "wait idle $i req/s, parked $p req/s (medians of $rounds)"
awk -v i="$i" -v p="$p" -v n="$waiters" -v r="$(median <"$B/ratios")" \
    'BEGIN { printf "wait: parked/idle %.2fx (medians), %.2fx (median of the rounds'"'"' ratios) with %d waiters (target >= 0.9)\n", p / i, r, n }'
