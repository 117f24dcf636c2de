#!/bin/bash
# bench/http.sh — the http: handler kind against the application's own
# ceiling, in the same run (issue 15's part (c)):
#
#   (a) wrk -> nginx -> PHP-FPM: bench/upstream.php (reads the
#       body, answers 200), 512-byte POSTs at concurrency C for D seconds:
#       the requests/s the application takes directly.
#   (c) N jobs queued (bench/storebench's prefill: 512-byte bodies, as a
#       small POST through nginx stores them) while the queue is paused,
#       then resumed and drained by the helper (`fcgiq work`) through
#       `http:` to the same nginx -> PHP-FPM at the same concurrency C:
#       jobs/s from the resume to the last finished_at.  Target: (c) >=
#       0.7x (a).
#   The helper's CPU time per job (user + system: what a busy box inflates
#   least) and its RSS after each round (flat: its memory does not grow with
#   the jobs it has run).  Rounds alternate (a), (c).
#   And the CPU per request of every process on the path: nginx and
#   PHP-FPM in both, wrk in (a), the helper in (c).  Where they all share
#   the same cores, (a)'s total over (c)'s is the rate ratio the CPU allows.
#
#   -i: instead, one drain of N jobs (2,000 will do) with the helper under
#   valgrind's callgrind: the instructions it runs per job, which a loaded
#   box does not move at all (times on a shared 2-core box move +-30 %
#   run to run).  Compare builds with BUILD=; callgrind_annotate the file
#   it names for where they go.
#
# Usage: bench/http.sh [-n JOBS] [-r ROUNDS] [-c CONCURRENCY] [-d SECONDS]
#        [-i]
# Needs a build in ./build (or BUILD=dir), nginx, php-fpm, wrk, sqlite3
# (and valgrind for -i).
# Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=20000 rounds=3 conc=8 dur=10 instr=
while getopts "n:r:c:d:i" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; c) conc=$OPTARG ;;
	d) dur=$OPTARG ;; i) instr=1 ;;
	*) sed -n '2,30p' "$0"; exit 2 ;;
	esac
done
bench_built
bench_need nginx wrk sqlite3
fpm=$(command -v php-fpm php-fpm8.2 /usr/sbin/php-fpm8.2 2>/dev/null | head -1)
[ -n "$fpm" ] || { echo "bench: php-fpm not installed"; exit 1; }
bench_built bench/storebench
bench_scratch http

# A free port below the ephemeral range (NOTES.md).
port=$(( 20000 + RANDOM % 10000 ))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
	port=$(( 20000 + RANDOM % 10000 ))
done

# PHP-FPM: a static pool of C children (one per request in flight).
bench_php_fpm "$fpm" "$conc"

mkdir -p "$B/nginx/tmp"
cat > "$B/nginx.conf" <<EOF
user $( [ "$(id -u)" = 0 ] && echo root || id -un );
worker_processes 1;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $B/nginx/tmp;
	upstream fpm {
		server unix:$B/fpm.sock;
		keepalive $conc;
	}
	server {
		listen 127.0.0.1:$port;
		keepalive_requests 1000000;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $src/bench/upstream.php;
			fastcgi_keep_conn on;
			fastcgi_pass fpm;
		}
	}
}
EOF
bench_nginx "$B/nginx.conf"
[ "$(curl -s -d x "http://127.0.0.1:$port/")" = "ok 1" ] ||
    { echo "bench: nginx -> PHP-FPM does not answer"; exit 1; }

cat > "$B/fcgiq.conf" <<EOF
[fcgiq]
database = $B/q.db
log = warn
[queue default]
handler = http:http://127.0.0.1:$port/job
concurrency = $conc
max_attempts = 1
EOF
ctl() { "$build/fcgiqctl" -c "$B/fcgiq.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$B/q.db" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU time (user + system) of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
# CPU ticks of the application: nginx's and PHP-FPM's masters and their
# children (the workers live as long as the bench: no tick is lost).
app_ticks() {
	local m t=0 p
	for m in "$(cat "$B/nginx.pid")" "$(cat "$B/php-fpm.pid")"; do
		for p in "$m" $(pgrep -P "$m"); do
			t=$((t + $(cpu_ticks "$p")))
		done
	done
	echo "$t"
}
per() { awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }'; }

ctl pause default >/dev/null
if [ -n "$instr" ]; then
	command -v valgrind >/dev/null || { echo "bench: valgrind not installed"; exit 1; }
	sql "DELETE FROM jobs"
	"$build/bench/storebench" -s 512 -p "$jobs" -e 0 -c 0 "$B/q.db" >/dev/null || exit 1
	out=${TMPDIR:-/tmp}/fcgiq-http-instr.$$
	valgrind --tool=callgrind --callgrind-out-file="$out" \
	    "$build/fcgiq" work -c "$B/fcgiq.conf" 2>"$B/helper.log" &
	helper=$!
	pids="$pids $helper"
	# Its start (SQLite's, curl's) is not a job's: counted from once
	# it has the database open, and a second more.
	for i in $(seq 200); do
		ls -l "/proc/$helper/fd" 2>/dev/null | grep -q "q.db" && break
		sleep 0.1
	done
	sleep 1
	callgrind_control -z "$helper" >/dev/null
	ctl resume default >/dev/null
	while sleep 1; [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$jobs" ]; do
		:
	done
	callgrind_control -d "$helper" >/dev/null
	ir=$(callgrind_annotate "$out.1" 2>/dev/null |
	    awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "http: helper instructions per job (callgrind, $jobs jobs, not done: $(sql "SELECT count(*) FROM jobs WHERE state <> 'done'")): $(awk -v i="$ir" -v n="$jobs" 'BEGIN { printf "%.1fk", i / n / 1000 }')"
	echo "http: profile in $out.1 (callgrind_annotate --inclusive=yes)"
	exit 0
fi
"$build/fcgiq" work -c "$B/fcgiq.conf" 2>"$B/helper.log" &
helper=$!
pids="$pids $helper"

echo "bench: $rounds rounds: wrk ${dur}s vs $jobs jobs through http:, concurrency $conc"
for r in $(seq "$rounds"); do
	a0=$(app_ticks)
	# wrk's own CPU: the ticks of the children this shell waited for.
	wt=$(bash -c 'wrk -t2 -c"$1" -d"$2s" -s "$3" "$4" >"$5" 2>&1
	    awk "{ print \$16 + \$17 }" /proc/$$/stat' _ "$conc" "$dur" \
	    "$src/bench/post.lua" "http://127.0.0.1:$port/direct" "$B/wrk.out")
	a1=$(app_ticks)
	direct=$(awk '/^Requests\/sec:/ { print $2 }' "$B/wrk.out")
	nreq=$(awk '/requests in/ { print $1 }' "$B/wrk.out")
	sql "DELETE FROM jobs"
	# Queued in bulk (one INSERT ... SELECT), 512-byte bodies as wrk's.
	"$build/bench/storebench" -s 512 -p "$jobs" -e 0 -c 0 "$B/q.db" >/dev/null || exit 1
	c0=$(cpu_ticks "$helper")
	ca0=$(app_ticks)
	t0=$(now_ms)
	ctl resume default >/dev/null
	# Look rarely: each look starts sqlite3 and steals a core.
	while sleep 1; [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$jobs" ]; do
		:
	done
	end=$(sql "SELECT max(finished_at) FROM jobs")
	c1=$(cpu_ticks "$helper")
	ca1=$(app_ticks)
	# The helper's own cost, which a busy box does not inflate much.
	us=$(awk -v t="$((c1 - c0))" -v hz="$hz" -v n="$jobs" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
	bad=$(sql "SELECT count(*) FROM jobs WHERE state <> 'done'")
	ctl pause default >/dev/null
	rate=$(awk -v n="$jobs" -v ms="$((end - t0))" 'BEGIN { printf "%.1f", n * 1000 / ms }')
	ratio=$(awk -v a="$rate" -v b="$direct" 'BEGIN { printf "%.2f", a / b }')
	echo "round $r: (a) direct $direct req/s, (c) http: $rate jobs/s: ${ratio}x (not done: $bad); helper CPU $us us/job, RSS $(rss_kb "$helper") KB"
	# Where the CPU goes per request: on a box where every process shares
	# the same cores, (a)'s total over (c)'s is the rate ratio the CPU
	# allows.
	aa=$(per $((a1 - a0)) "$nreq") aw=$(per "$wt" "$nreq")
	ca=$(per $((ca1 - ca0)) "$jobs")
	echo "round $r: CPU per request: (a) nginx + PHP-FPM $aa us + wrk $aw us = $((aa + aw)) us; (c) nginx + PHP-FPM $ca us + helper $us us = $((ca + us)) us; (a)/(c) $(awk -v a=$((aa + aw)) -v c=$((ca + us)) 'BEGIN { printf "%.2f", a / c }')"
	echo "$direct $rate $ratio $us $((aa + aw)) $((ca + us))" >> "$B/rounds"
done
echo
echo "http: (median of $rounds): direct $(awk '{ print $1 }' "$B/rounds" | median 2) req/s, http: $(awk '{ print $2 }' "$B/rounds" | median 2) jobs/s: $(awk '{ print $3 }' "$B/rounds" | median 2)x (target >= 0.7)"
echo "http: helper CPU per job (median): $(awk '{ print $4 }' "$B/rounds" | median 2) us"
echo "http: CPU per request (medians): (a) $(awk '{ print $5 }' "$B/rounds" | median 0) us, (c) $(awk '{ print $6 }' "$B/rounds" | median 0) us"
echo "http: helper RSS after $((jobs * rounds)) jobs: $(rss_kb "$helper") KB"
