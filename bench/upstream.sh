#!/bin/bash
# bench/upstream.sh — jobs into an application already running, against
# that application's own ceiling, in one run (rounds alternate):
#
#   (a) direct   wrk -> nginx -> PHP-FPM running bench/upstream.php
#                (512-byte POSTs, kept FastCGI connections): req/s, the
#                application's ceiling.
#   (b) fastcgi  N jobs queued while the queue is paused, then drained by
#                the helper (`fcgiq work`) through fastcgi: into the same
#                PHP-FPM pool at the same concurrency: jobs/s from the
#                resume to the last finished_at.  Target >= 0.8x (a).
#   (c) http     the same N jobs drained through http: to the same nginx
#                (-> the same pool) at the same concurrency: jobs/s.
#                Target >= 0.7x (a).  (bench/http.sh adds the helper's CPU
#                per job and its RSS.)
#   (d) exec     the same script through exec:/usr/bin/php (php-cli), a
#                process per job: jobs/s, for contrast.  Target (b) >= 10x.
#   latency      one job at a time on an idle fastcgi: pool (bench/
#                enqueue-gap: a durable commit, the wake-up, 30 ms idle):
#                the script's start (the stamp it answers, µs) minus the
#                enqueue call (µs; created_at, stamped inside it, is whole
#                ms), and minus the acknowledgement (the commit and the
#                wake-up done: when a responder's 202 leaves).  Target
#                p50 <= 1 ms.
#
# Usage: bench/upstream.sh [-n JOBS] [-e EXEC_JOBS] [-r ROUNDS] [-c CONC]
#        [-d SECONDS] [-l LATENCY_JOBS]   (-r 0: the latency alone)
# Needs a build in ./build (or BUILD=dir), nginx, wrk, php-fpm, php-cli.
# Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=20000 ejobs=400 rounds=3 conc=8 dur=10 lat=200
while getopts "n:e:r:c:d:l:" o; do
	case $o in
	n) jobs=$OPTARG ;; e) ejobs=$OPTARG ;; r) rounds=$OPTARG ;;
	c) conc=$OPTARG ;; d) dur=$OPTARG ;; l) lat=$OPTARG ;;
	*) sed -n '2,26p' "$0"; exit 2 ;;
	esac
done
bench_built
php_fpm=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -1)
bench_need "$php_fpm" wrk nginx php sqlite3
bench_built bench/enqueue-gap
bench_scratch upstream
JOB=$src/bench/upstream.php

# One static PHP-FPM pool of conc children, for (a), (b) and the latency.
bench_php_fpm "$php_fpm" "$conc"

port=$((20000 + RANDOM % 10000))
cat >"$B/nginx.conf" <<EOC
user root;
worker_processes 2;
events { worker_connections 4096; }
http {
	access_log off;
	# Kept connections, as fcgiq keeps its own; PHP-FPM ties a child
	# to each, so nginx lets go of them soon after (b)'s turn comes.
	upstream fpm {
		server unix:$B/fpm.sock;
		keepalive $conc;
		keepalive_timeout 1s;
	}
	server {
		listen 127.0.0.1:$port;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $JOB;
			fastcgi_keep_conn on;
			fastcgi_pass fpm;
		}
	}
}
EOC
bench_nginx "$B/nginx.conf"

cat >"$B/fcgiq.conf" <<EOC
[fcgiq]
database = $B/q.db
log = warn
[queue fcgi]
handler = fastcgi:unix:$B/fpm.sock
script = $JOB
concurrency = $conc
max_attempts = 1
[queue http]
handler = http:http://127.0.0.1:$port/
concurrency = $conc
max_attempts = 1
[queue cli]
handler = exec:$(command -v php) -n $JOB
$( [ "$(id -u)" = 0 ] && echo "user = root" )
concurrency = $conc
max_attempts = 1
[queue lat]
handler = fastcgi:unix:$B/fpm.sock
script = $JOB
param = STAMP 1
max_attempts = 1
EOC
ctl() { "$build/fcgiqctl" -c "$B/fcgiq.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$B/q.db" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ctl pause fcgi >/dev/null
ctl pause cli >/dev/null
ctl pause http >/dev/null
"$build/fcgiq" work -c "$B/fcgiq.conf" 2>"$B/helper.log" &
helper=$!
pids="$pids $helper"

# CPU time (user + system) of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# drain QUEUE N: N jobs queued paused, then resumed; "jobs/s helper-us",
# the second the helper's CPU time per job (user + system).
drain() {
	local q=$1 n=$2 t0 end c0
	sql "DELETE FROM jobs"
	"$build/bench/enqueue-gap" -g 0 "$n" "$q" "$B/q.db" || exit 1
	c0=$(cpu_ticks "$helper")
	t0=$(now_ms)
	ctl resume "$q" >/dev/null
	while sleep 1; [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$n" ]; do
		:
	done
	end=$(sql "SELECT max(finished_at) FROM jobs")
	c0=$(( $(cpu_ticks "$helper") - c0 ))
	ctl pause "$q" >/dev/null
	dead=$(sql "SELECT count(*) FROM jobs WHERE state = 'dead'")
	[ "$dead" = 0 ] || echo "bench: $q: $dead dead: $(sql "SELECT last_error FROM jobs WHERE state = 'dead' LIMIT 1")" >&2
	awk -v n="$n" -v ms="$((end - t0))" -v t="$c0" -v hz="$hz" \
	    'BEGIN { printf "%.0f %.0f", n * 1000 / ms, t * 1e6 / hz / n }'
}

echo "bench: $rounds rounds; c=$conc; (a) wrk ${dur}s; (b), (c) $jobs jobs; (d) $ejobs jobs; latency over $lat jobs"
for r in $(seq "$rounds"); do
	a=$(wrk -t2 -c"$conc" -d"${dur}s" -s "$src/bench/post.lua" \
	    "http://127.0.0.1:$port/" | awk '/^Requests\/sec/ { printf "%.0f", $2 }')
	# Each side's idle kept connections hold PHP-FPM's children until
	# they are closed (nginx: 1 s, fcgiq: FCGI_IDLE_MS): wait them out.
	sleep 3
	read -r b bu <<<"$(drain fcgi "$jobs")"
	sleep 3
	read -r c cu <<<"$(drain http "$jobs")"
	read -r d du <<<"$(drain cli "$ejobs")"
	echo "round $r: (a) direct $a req/s, (b) fastcgi $b jobs/s, (c) http $c jobs/s, (d) exec php-cli $d jobs/s; helper CPU per job: (b) $bu us, (c) $cu us, (d) $du us"
	echo "$a $b $d $c" >>"$B/rounds"
done
# -r 0: the latency alone.
if [ "$rounds" -gt 0 ]; then
	ma=$(awk '{ print $1 }' "$B/rounds" | median 0)
	mb=$(awk '{ print $2 }' "$B/rounds" | median 0)
	md=$(awk '{ print $3 }' "$B/rounds" | median 0)
	rba=$(awk '{ printf "%.2f\n", $2 / $1 }' "$B/rounds" | median 2)
	rbd=$(awk '{ printf "%.1f\n", $2 / $3 }' "$B/rounds" | median 1)
	mc=$(awk '{ print $4 }' "$B/rounds" | median 0)
	rca=$(awk '{ printf "%.2f\n", $4 / $1 }' "$B/rounds" | median 2)
fi

sleep 3
sql "DELETE FROM jobs"
"$build/bench/enqueue-gap" -g 30 -o "$B/stamps" "$lat" lat "$B/q.db" || exit 1
while [ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" -lt "$lat" ]; do
	sleep 0.05
done
# Per job: the script's start (µs) minus created_at (whole ms, as stored:
# its truncation adds 0.5 ms on average), minus the enqueue call and minus
# the acknowledgement (commit and wake-up done, µs, from enqueue-gap -o).
sql "SELECT id, CAST(CAST(result AS TEXT) AS INTEGER), created_at FROM jobs WHERE state = 'done'" |
    tr '|' ' ' >"$B/starts"
awk 'NR == FNR { call[$1] = $2; ack[$1] = $3; next }
    ($1 in call) { printf "%.3f %.3f %.3f %.3f\n", $2 / 1000.0 - $3,
    ($2 - call[$1]) / 1000.0, ($2 - ack[$1]) / 1000.0,
    (ack[$1] - call[$1]) / 1000.0 }' "$B/stamps" "$B/starts" >"$B/lat"
pct() { awk -v c="$1" '{ print $c }' "$B/lat" | sort -g |
    awk -v p="$2" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", a[i] }'; }
lat_line() { echo "p50 $(pct "$1" 50) ms, p90 $(pct "$1" 90) ms, p99 $(pct "$1" 99) ms"; }
hrss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$helper/status")

echo
if [ "$rounds" -gt 0 ]; then
	echo "upstream (medians of $rounds): (a) direct $ma req/s, (b) fastcgi $mb jobs/s, (d) exec php-cli $md jobs/s"
	echo "upstream ratios (median of rounds): (b)/(a) ${rba}x (target >= 0.8), (b)/(d) ${rbd}x (target >= 10)"
	echo "upstream (c) http: $mc jobs/s (median); (c)/(a) ${rca}x (target >= 0.7)"
fi
# One line each, "upstream ..." (bench/run's summary keeps those).
echo "upstream enqueue-to-start, idle fastcgi: pool, from the enqueue call (µs; before the durable commit): $(lat_line 2) (target p50 <= 1)"
echo "upstream enqueue-to-start, idle fastcgi: pool, from the acknowledgement (commit and wake-up done: the 202): $(lat_line 3)"
echo "upstream enqueue-to-start, idle fastcgi: pool, from created_at (whole ms, truncated): $(lat_line 1)"
echo "upstream enqueue's own durable commit and wake-up (the call to the acknowledgement): $(lat_line 4); $(wc -l <"$B/lat") jobs; helper RSS $hrss kB"
