#!/bin/bash
# bench/pg.sh — HTTP intake with the PostgreSQL store against the SQLite
# store and the null responder, through one nginx (kept FastCGI
# connections, as conf-examples/nginx.conf ships), rounds alternating so
# machine drift hits every contender alike:
#
#   pg      fcgiq, database = a private PostgreSQL cluster (unix socket,
#           fsync on, synchronous_commit on: each 202 after its COMMIT)
#   sqlite  fcgiq, durability = full (fsync before each 202)
#   null    bench/null-responder: libfcgi threads, 202, stores nothing
#
# Beside the rates: CPU per job stored on PostgreSQL, of the server (the
# cluster's processes) and of fcgiq (user + system, from /proc), over
# each pg run.
#
# Usage: bench/pg.sh [-r ROUNDS] [-d SECONDS] [-c "64"] [-o CONTENDERS]
# Needs a build in ./build and Debian's postgresql, nginx-light,
# spawn-fcgi and wrk.  Prints each round, the medians and pg/sqlite per
# round (issue 20's target: >= 0.5x, p99 <= 25 ms at c=64).  Nothing here
# is a pass/fail test; the cluster comes from tests/pg-lib.sh.
set -u
. "$(dirname "$0")/lib.sh"
rounds=3 dur=10 concs="64" only="pg sqlite null"
while getopts "r:d:c:o:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) concs=$OPTARG ;; o) only=$OPTARG ;;
	*) sed -n '2,21p' "$0"; exit 2 ;;
	esac
done
bench_need wrk nginx spawn-fcgi
bench_built bench/null-responder

bench_pg

spawn() {	# spawn NAME CMD...: spawn-fcgi on $B/NAME.sock, pid tracked
	local name=$1; shift
	spawn-fcgi -s "$B/$name.sock" -M 0666 -P "$B/$name.pid" -- "$@" >/dev/null ||
	    { echo "bench: $name did not start"; exit 1; }
	track "$(cat "$B/$name.pid")"
}
has() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }

if has pg; then
	cat >"$B/pg.conf" <<-EOC
	[fcgiq]
	database = $PG_CONN
	helper = no
	log = warn
	EOC
	spawn pg "$build/fcgiq" -c "$B/pg.conf"
fi
if has sqlite; then
	mkdir -p "$B/sqlite"
	cat >"$B/sqlite.conf" <<-EOC
	[fcgiq]
	database = $B/sqlite/queue.db
	durability = full
	helper = no
	log = warn
	EOC
	spawn sqlite "$build/fcgiq" -c "$B/sqlite.conf"
fi
has null && spawn null "$build/bench/null-responder"

port=$(free_port)
mkdir -p "$B/nginx/logs"
{
	cat <<EOC
user root;
worker_processes 1;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_buffer_size 16k;
EOC
	for u in $only; do
		echo "	upstream up_$u { server unix:$B/$u.sock; keepalive 32; }"
	done
	echo "	server {"
	echo "		listen 127.0.0.1:$port backlog=4096;"
	echo "		fastcgi_keep_conn on;"
	for u in $only; do
		echo "		location /$u/ { include /etc/nginx/fastcgi_params; fastcgi_pass up_$u; }"
	done
	echo "	}"
	echo "}"
} >"$B/nginx.conf"
nginx -p "$B/nginx" -c "$B/nginx.conf" -g "pid $B/nginx.pid; error_log $B/nginx/logs/error.log;" ||
    { echo "bench: nginx did not start"; exit 1; }
for i in $(seq 50); do [ -s "$B/nginx.pid" ] && break; sleep 0.1; done
track "$(cat "$B/nginx.pid")"
for who in $only; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -d probe "http://127.0.0.1:$port/$who/")
	[ "$code" = 202 ] || { echo "bench: $who answered $code, not 202"; exit 1; }
done

# cpu PID: its user + system time so far, in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# pgcpu: the ticks of the cluster's processes (its postmaster's
# children: fcgiq's backends, WAL writer, checkpointer, autovacuum).
pgcpu() {
	local p t=0
	for p in $(ps -o pid= --ppid "$PG_PID"); do t=$((t + $(cpu "$p"))); done
	echo "$t"
}
pgjobs() { pg_psql -c 'SELECT count(*) FROM jobs'; }
ticks=$(getconf CLK_TCK)
fq=$(has pg && cat "$B/pg.pid")

results=$B/results
: >"$results"
echo "bench: $rounds rounds x ${dur}s, concurrency $concs, contenders: $only"
for r in $(seq "$rounds"); do
	for c in $concs; do
		for who in $only; do
			if [ "$who" = pg ]; then
				s0=$(pgcpu) f0=$(cpu "$fq") j0=$(pgjobs)
			fi
			wrk_run "http://127.0.0.1:$port/$who/" "$c" "$B/wrk.out" \
			    "$src/bench/post.lua" >/dev/null
			cpuj=""
			if [ "$who" = pg ]; then
				s1=$(pgcpu) f1=$(cpu "$fq") j1=$(pgjobs)
				awk -v s=$((s1 - s0)) -v f=$((f1 - f0)) \
				    -v n=$((j1 - j0)) -v hz="$ticks" 'BEGIN {
				    n = n > 0 ? n : 1; printf "%.3f %.3f\n",
				    s * 1000 / hz / n, f * 1000 / hz / n }' >>"$B/cpu"
				cpuj=$(tail -1 "$B/cpu" | awk '{ printf "  CPU/job: server %s ms, fcgiq %s ms", $1, $2 }')
			fi
			out=$(cat "$B/wrk.out")
			rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
			p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
			p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
			bad=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
			echo "$who $c $r ${rps:-0} $p50 $p99 ${bad:-0}" >>"$results"
			printf 'round %s c=%-4s %-7s %10s req/s  p50 %6s ms  p99 %7s ms  non-2xx %s%s\n' \
			    "$r" "$c" "$who" "${rps:-0}" "$p50" "$p99" "${bad:-0}" "$cpuj"
		done
	done
done
if has pg; then
	echo "bench: jobs stored in PostgreSQL: $(pg_psql -c 'SELECT count(*) FROM jobs');" \
	    "CPU per job stored (medians): server $(awk '{ print $1 }' "$B/cpu" | median 3) ms," \
	    "fcgiq $(awk '{ print $2 }' "$B/cpu" | median 3) ms"
fi

col() { awk -v w="$1" -v c="$2" -v k="$3" '$1 == w && $2 == c { print $k }' "$results"; }
echo
printf '%-8s %-5s %12s %9s %9s %9s\n' contender conc "req/s(med)" "p50 ms" "p99 ms" non-2xx
for c in $concs; do
	for who in $only; do
		printf '%-8s %-5s %12s %9s %9s %9s\n' "$who" "$c" \
		    "$(col "$who" "$c" 4 | median 2)" "$(col "$who" "$c" 5 | median 2)" \
		    "$(col "$who" "$c" 6 | median 2)" \
		    "$(col "$who" "$c" 7 | awk '{ s += $1 } END { print s + 0 }')"
	done
	if has pg && has sqlite; then
		printf 'c=%s pg/sqlite req/s by round:' "$c"
		awk -v c="$c" '$2 == c { if ($1 == "pg") x[$3] = $4; if ($1 == "sqlite") y[$3] = $4 }
		    END { for (r = 1; r in x; r++) printf " %.2f", (y[r] > 0 ? x[r] / y[r] : 0); print " (target >= 0.5)" }' "$results"
	fi
done
