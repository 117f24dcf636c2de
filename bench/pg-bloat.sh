#!/bin/bash
# bench/pg-bloat.sh — does a busy jobs table bloat on PostgreSQL, and what
# helps.  Sustained churn for D seconds per phase: bench/fill tops the
# queue up (5,000 jobs whenever fewer are waiting), H helpers (`fcgiq
# work`, concurrency C each) drain it through fastcgi: into PHP-FPM
# running bench/upstream.php, and the helpers' own prune (every minute,
# batches of 5,000) deletes what finished keep_done (K) ago.  Every
# sample (S seconds) prints the jobs done so far, the rows in the table,
# pg_stat_user_tables' n_live_tup / n_dead_tup, the heap and the total
# size (pg_relation_size, pg_total_relation_size: heap, indexes, TOAST)
# and autovacuum's runs on the table.  Each phase has a database of its
# own on one private cluster (tests/pg-lib.sh):
#
#   default  autovacuum as PostgreSQL ships it
#   table    ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0,
#            autovacuum_vacuum_threshold = 10000,
#            autovacuum_vacuum_cost_delay = 0)
#   naptime  the same, and autovacuum_naptime = 10s for the cluster
#            (ALTER SYSTEM; a table cannot set it)
#
# Usage: bench/pg-bloat.sh [-d SECONDS] [-s SAMPLE] [-h HELPERS]
#        [-c CONC] [-k KEEP_DONE] [-o "default table naptime"]
# Needs a build in ./build (or BUILD=dir), Debian's postgresql and
# php-fpm.  Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
dur=240 every=10 nh=2 conc=4 keep=30s only="default table naptime"
while getopts "d:s:h:c:k:o:" o; do
	case $o in
	d) dur=$OPTARG ;; s) every=$OPTARG ;; h) nh=$OPTARG ;;
	c) conc=$OPTARG ;; k) keep=$OPTARG ;; o) only=$OPTARG ;;
	*) sed -n '2,25p' "$0"; exit 2 ;;
	esac
done
bench_built bench/fill

bench_pg
bench_pg_php_fpm $((nh * conc))
JOB=$src/bench/upstream.php
dbq() {	# dbq DB SQL...: psql on database DB of the cluster
	local db=$1; shift
	psql -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 -h "$PG_DIR" -U fcgiq -d "$db" "$@"
}

# phase NAME: one phase on database bloat_NAME; prints its samples and
# leaves its last one in $B/last-NAME.
phase() {
	local name=$1 db=bloat_$1 conn hp="" i t0 now fed=0 q
	conn="host=$PG_DIR user=fcgiq dbname=$db"
	dbq postgres -c "CREATE DATABASE $db"
	if [ "$name" = naptime ]; then
		dbq postgres -c "ALTER SYSTEM SET autovacuum_naptime = '10s'" \
		    -c "SELECT pg_reload_conf()" >/dev/null
	else
		dbq postgres -c "ALTER SYSTEM RESET autovacuum_naptime" \
		    -c "SELECT pg_reload_conf()" >/dev/null
	fi
	cat >"$B/$name.conf" <<-EOC
	[fcgiq]
	database = $conn
	log = warn
	[queue churn]
	handler = fastcgi:unix:$B/fpm.sock
	script = $JOB
	concurrency = $conc
	max_attempts = 1
	keep_done = $keep
	EOC
	# The schema first (fill opens and migrates), then the settings.
	"$build/bench/fill" 1 churn "$conn" || exit 1
	if [ "$name" != default ]; then
		dbq "$db" -c "ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0,
		    autovacuum_vacuum_threshold = 10000,
		    autovacuum_vacuum_cost_delay = 0)"
	fi
	for i in $(seq "$nh"); do
		"$build/fcgiq" work -c "$B/$name.conf" 2>>"$B/helper-$name.log" &
		hp="$hp $!"
		track $!
	done
	echo "phase $name: ${dur}s, $nh helpers x $conc, keep_done $keep"
	printf '%-8s %5s %9s %8s %9s %9s %9s %9s %4s %8s\n' phase s done rows \
	    n_live n_dead heap_MB total_MB av hot_upd%
	t0=$(date +%s)
	next=$t0
	while now=$(date +%s); [ $((now - t0)) -lt "$dur" ]; do
		q=$(dbq "$db" -c "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
		if [ "${q:-0}" -lt 5000 ]; then
			"$build/bench/fill" -b 100 5000 churn "$conn" || exit 1
			fed=$((fed + 5000))
		fi
		if [ "$now" -ge "$next" ]; then
			next=$((next + every))
			dbq "$db" -c "SELECT '$name', $((now - t0)),
			    (SELECT max(seq) FROM jobs) - (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')),
			    (SELECT count(*) FROM jobs), n_live_tup, n_dead_tup,
			    round(pg_relation_size('jobs') / 1048576.0, 1),
			    round(pg_total_relation_size('jobs') / 1048576.0, 1),
			    autovacuum_count,
			    round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1), 1)
			    FROM pg_stat_user_tables WHERE relname = 'jobs'" |
			    awk '{ printf "%-8s %5s %9s %8s %9s %9s %9s %9s %4s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' |
			    tee "$B/last-$name"
		fi
		sleep 1
	done
	for i in $hp; do stop_pid "$i"; _tracked=$(echo " $_tracked " | sed "s/ $i / /"); done
	dbq "$db" -c "SELECT 'max total MB', round(pg_total_relation_size('jobs') / 1048576.0, 1)" >/dev/null
}

for p in $only; do
	phase "$p"
	echo
done
echo "last samples:"
for p in $only; do cat "$B/last-$p"; done
