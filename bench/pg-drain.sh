#!/bin/bash
# bench/pg-drain.sh — helper drain on PostgreSQL with 1 and with K helper
# processes, against SQLite's one helper, through a fastcgi: handler into
# PHP-FPM running bench/upstream.php (a trivial script, so that what the
# helper and the store cost per job shows).  Each round, for each
# contender in turn (rounds alternate, so machine drift hits all alike):
# N jobs queued (bench/fill, batches of 100) while the queue is paused,
# the helpers started (`fcgiq work`), the queue resumed; jobs/s from the
# first started_at to the last finished_at, the helpers' CPU (user +
# system, from /proc) per job, and on PostgreSQL the server's CPU per job
# (the cluster's processes, from the resume to the end).
#
#   pg1     PostgreSQL, 1 helper
#   pgK     PostgreSQL, K helpers (every helper claims: SKIP LOCKED)
#   sqlite  SQLite, 1 helper (there, only one helper is ever active: a
#           second waits on the helper lock, so K > 1 measures nothing)
#
# Every helper runs concurrency C; the PHP-FPM pool has K x C children,
# so no kept connection waits for a child.
#
# Usage: bench/pg-drain.sh [-n JOBS] [-r ROUNDS] [-k HELPERS] [-c CONC]
# Needs a build in ./build (or BUILD=dir), Debian's postgresql, php-fpm
# and sqlite3.  Prints each round, the medians and pgK/pg1 per round
# (issue 20's target: >= 1.5).  Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
jobs=20000 rounds=3 k=4 conc=4
while getopts "n:r:k:c:" o; do
	case $o in
	n) jobs=$OPTARG ;; r) rounds=$OPTARG ;; k) k=$OPTARG ;;
	c) conc=$OPTARG ;;
	*) sed -n '2,24p' "$0"; exit 2 ;;
	esac
done
bench_need sqlite3
bench_built bench/fill

bench_pg
bench_pg_php_fpm $((k * conc))

JOB=$src/bench/upstream.php
conf() {	# conf NAME DATABASE
	cat >"$B/$1.conf" <<-EOC
	[fcgiq]
	database = $2
	log = warn
	[queue drain]
	handler = fastcgi:unix:$B/fpm.sock
	script = $JOB
	concurrency = $conc
	max_attempts = 1
	EOC
}
conf pg "$PG_CONN"
conf sqlite "$B/q.db"
ticks=$(getconf CLK_TCK)

# sql NAME SQL: one value from either database.
sql() {
	if [ "$1" = pg ]; then
		pg_psql -c "$2"
	else
		sqlite3 -cmd ".timeout 5000" "$B/q.db" "$2"
	fi
}
# cpu PID: its user + system time so far, in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# pgcpu: "PID TICKS" for each process of the cluster (its postmaster's
# children: the helpers' backends, WAL writer, checkpointer, autovacuum).
pgcpu() {
	local p
	for p in $(ps -o pid= --ppid "$PG_PID"); do echo "$p $(cpu "$p")"; done
}

# drain NAME DB HELPERS: prints "jobs/s helper_cpu_ms_per_job
# server_cpu_ms_per_job" (the server's: PostgreSQL's processes, from the
# resume on; 0 on SQLite, whose work is in the helper).
drain() {
	local name=$1 db=$2 nh=$3 i hp="" t=0 n first last dead st=0 x0 x1
	"$build/fcgiqctl" -c "$B/$db.conf" pause drain >/dev/null
	if [ "$db" = pg ]; then
		sql pg "TRUNCATE jobs"
	else
		sql sqlite "DELETE FROM jobs" 2>/dev/null
	fi
	"$build/bench/fill" -b 100 "$jobs" drain "$( [ "$db" = pg ] &&
	    echo "$PG_CONN" || echo "$B/q.db")" || exit 1
	for i in $(seq "$nh"); do
		"$build/fcgiq" work -c "$B/$db.conf" 2>>"$B/helper-$name.log" &
		hp="$hp $!"
		track $!
	done
	sleep 1		# the helpers open the store and look once
	pgcpu >"$B/pgcpu0"
	[ "$db" = pg ] && x0=$(sql pg "SELECT xact_commit FROM pg_stat_database WHERE datname = 'fcgiq'")
	"$build/fcgiqctl" -c "$B/$db.conf" resume drain >/dev/null
	while sleep 0.5; do
		n=$(sql "$db" "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")
		[ "${n:-0}" -ge "$jobs" ] && break
	done
	for i in $hp; do t=$((t + $(cpu "$i"))); done
	if [ "$db" = pg ]; then
		pgcpu >"$B/pgcpu1"
		st=$(awk 'NR == FNR { a[$1] = $2; next } { s += $2 - a[$1] }
		    END { print s + 0 }' "$B/pgcpu0" "$B/pgcpu1")
	fi
	for i in $hp; do stop_pid "$i"; done
	for i in $hp; do _tracked=$(echo " $_tracked " | sed "s/ $i / /"); done
	if [ "$db" = pg ]; then
		# A backend's counts reach the statistics by its exit at the
		# latest: the helpers' have exited.
		sleep 1
		x1=$(sql pg "SELECT xact_commit FROM pg_stat_database WHERE datname = 'fcgiq'")
		echo "$name: $(awk -v a="$x0" -v b="$x1" -v n="$jobs" 'BEGIN { printf "%.2f", (b - a) / n }') commits/job" >>"$B/commits"
	fi
	first=$(sql "$db" "SELECT min(started_at) FROM jobs")
	last=$(sql "$db" "SELECT max(finished_at) FROM jobs")
	dead=$(sql "$db" "SELECT count(*) FROM jobs WHERE state = 'dead'")
	[ "$dead" = 0 ] || echo "bench: $name: $dead dead: $(sql "$db" "SELECT last_error FROM jobs WHERE state = 'dead' LIMIT 1")" >&2
	# PHP-FPM ties a child to each kept connection until fcgiq's idle
	# close; the helpers are gone, so their connections are too.
	awk -v n="$jobs" -v ms="$((last - first))" -v t="$t" -v st="$st" \
	    -v hz="$ticks" 'BEGIN { printf "%.0f %.3f %.3f",
	    n * 1000 / (ms > 0 ? ms : 1), t * 1000 / hz / n, st * 1000 / hz / n }'
}

echo "bench: $rounds rounds; $jobs jobs; concurrency $conc per helper; pg with 1 and $k helpers, sqlite with 1; PHP-FPM $((k * conc)) children"
: >"$B/rounds"
for r in $(seq "$rounds"); do
	# Not in $(...): the helpers are tracked by this shell's EXIT trap.
	drain pg1 pg 1 >"$B/one"; set -- $(cat "$B/one"); a=$1 ac=$2 as=$3
	drain pgK pg "$k" >"$B/one"; set -- $(cat "$B/one"); b=$1 bc=$2 bs=$3
	drain sqlite sqlite 1 >"$B/one"; set -- $(cat "$B/one"); c=$1 cc=$2
	echo "$a $b $c $ac $bc $cc $as $bs" >>"$B/rounds"
	printf 'round %s: pg 1 helper %5s jobs/s (CPU/job: helper %s ms, server %s ms)  pg %s helpers %5s jobs/s (helpers %s ms, server %s ms)  sqlite 1 helper %5s jobs/s (helper %s ms)  pg%s/pg1 %.2f  pg1/sqlite %.2f\n' \
	    "$r" "$a" "$ac" "$as" "$k" "$b" "$bc" "$bs" "$c" "$cc" "$k" \
	    "$(awk -v x="$b" -v y="$a" 'BEGIN { print x / y }')" \
	    "$(awk -v x="$a" -v y="$c" 'BEGIN { print x / y }')"
done
m() { awk -v c="$1" '{ print $c }' "$B/rounds" | median "$2"; }
echo
echo "medians: pg 1 helper $(m 1 0) jobs/s, CPU/job helper $(m 4 3) ms + server $(m 7 3) ms; pg $k helpers $(m 2 0) jobs/s, helpers $(m 5 3) ms + server $(m 8 3) ms; sqlite $(m 3 0) jobs/s, helper $(m 6 3) ms"
printf 'pg%s/pg1 by round:' "$k"
awk '{ printf " %.2f", $2 / $1 }' "$B/rounds"
echo " (target >= 1.5)"
printf 'pg1/sqlite by round:'
awk '{ printf " %.2f", $1 / $3 }' "$B/rounds"
echo
echo "PostgreSQL transactions committed per job (pg_stat_database):" $(sed 's/ commits.job//' "$B/commits")
