#!/bin/bash
# bench/bulk.sh — intake latency while fcgiqctl retries a million dead
# jobs, against the same intake with nothing else running, rounds
# alternating:
#
#   reference  wrk (-c CONNS, kept connections) posts 512-byte jobs through
#              nginx to fcgiq (durability full, no helper) for SECONDS.
#   bulk       the same, in slices of SECONDS while `fcgiqctl retry -q bulk
#              --all-matching --yes` requeues N dead jobs (made with one
#              INSERT ... SELECT, made dead again before each round).
#              Prints the bulk op's time and each slice's p99 / req/s.
#
# Target: intake p99 < 50 ms during the bulk op.
# Usage: bench/bulk.sh [-n JOBS] [-r ROUNDS] [-d SECONDS] [-c CONNS]
# Needs a build in ./build (or BUILD=dir), nginx, spawn-fcgi, wrk, sqlite3.
# Nothing here is a test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=1000000 rounds=1 dur=10 conns=4
while getopts "n:r:d:c:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; d) dur=$OPTARG ;;
	c) conns=$OPTARG ;;
	*) sed -n '2,17p' "$0"; exit 2 ;;
	esac
done
bench_need nginx spawn-fcgi wrk sqlite3
bench_built
bench_scratch bulk

cat >"$B/fcgiq.conf" <<EOC
[fcgiq]
database = $B/queue.db
durability = full
helper = no
log = warn

[queue default]

[queue bulk]
EOC
spawn-fcgi -s "$B/fcgiq.sock" -M 0666 -P "$B/fcgiq.pid" -- \
    "$build/fcgiq" -c "$B/fcgiq.conf" >/dev/null ||
    { echo "bench: fcgiq did not start"; exit 1; }
pids="$pids $(cat "$B/fcgiq.pid")"
port=$((25000 + RANDOM % 1000))
cat >"$B/nginx.conf" <<EOC
user root;
worker_processes 1;
events { worker_connections 1024; }
http {
	access_log off;
	upstream fcgiq { server unix:$B/fcgiq.sock; keepalive 8; }
	server {
		listen 127.0.0.1:$port;
		fastcgi_keep_conn on;
		location /in/ { include /etc/nginx/fastcgi_params; fastcgi_pass fcgiq; }
	}
}
EOC
bench_nginx "$B/nginx.conf"
code=$(curl -s -o /dev/null -w '%{http_code}' -d probe "http://127.0.0.1:$port/in/")
[ "$code" = 202 ] || { echo "bench: intake answered $code"; KEEP=1; exit 1; }

echo "bench: making $jobs dead jobs"
now=$(date +%s%3N)
sqlite3 -cmd '.timeout 10000' "$B/queue.db" "WITH RECURSIVE c(i) AS (SELECT 0
    UNION ALL SELECT i + 1 FROM c WHERE i < $jobs - 1)
    INSERT INTO jobs (id, queue, state, attempts, max_attempts, created_at,
        run_at, finished_at, body, last_error)
    SELECT 'bulk-' || i, 'bulk', 'dead', 3, 3, $now, $now, $now,
        x'7b7d', 'exit 1' FROM c; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null

# slice: one wrk run of $dur s: "p99_ms req/s"
slice() {
	local out
	out=$(wrk -t1 -c"$conns" -d"${dur}s" --latency -s "$src/bench/post.lua" \
	    "http://127.0.0.1:$port/in/" 2>&1)
	echo "$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')" 1)" \
	    "$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')"
}

: >"$B/ref" ; : >"$B/during"
for r in $(seq "$rounds"); do
	v=$(slice)
	echo "$v" >>"$B/ref"
	echo "round $r reference: p99 ms, req/s: $v"
	sqlite3 -cmd '.timeout 10000' "$B/queue.db" "UPDATE jobs SET
	    state = 'dead', finished_at = $now WHERE queue = 'bulk';
	    PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
	t0=$(date +%s%3N)
	"$build/fcgiqctl" -c "$B/fcgiq.conf" retry -q bulk --all-matching \
	    --yes </dev/null >"$B/bulk.out" 2>&1 &
	bulk=$!
	pids="$pids $bulk"
	i=0
	while kill -0 $bulk 2>/dev/null; do
		i=$((i + 1))
		v=$(slice)
		echo "$v" >>"$B/during"
		echo "round $r bulk slice $i: p99 ms, req/s: $v"
	done
	wait $bulk
	t1=$(date +%s%3N)
	echo "round $r bulk: $(cat "$B/bulk.out") in $((t1 - t0)) ms" \
	    "(the last slice may run past its end)"
done
p99s() { awk '{ print $1 }' "$1"; }
echo "bulk: intake p99 during the bulk op: median $(p99s "$B/during" | median 1) ms," \
    "max $(p99s "$B/during" | sort -g | tail -1) ms of $(wc -l <"$B/during") slices" \
    "(target < 50 ms); without it: median $(p99s "$B/ref" | median 1) ms;" \
    "req/s during $(awk '{ print $2 }' "$B/during" | median 0), without" \
    "$(awk '{ print $2 }' "$B/ref" | median 0)"
