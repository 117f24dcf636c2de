#!/bin/bash
# bench/dashboard.sh — intake while the installation is watched against
# intake while nobody looks, one fcgiq (durability full) behind one nginx,
# rounds alternating in the same run so machine drift hits both alike:
#
#   alone    wrk -c C, 512-byte POSTs through nginx, nothing else
#   scraped  the same, with a Prometheus-style scrape of the metrics
#            location every second
#   watched  the same, with the scrape every second and the dashboard
#            open: what its page polls every 3 s (api/summary, api/jobs
#            with its default filter state=dead, and the listing of every
#            state), through nginx
#
# watched/alone is the target; watched/scraped is the dashboard's own
# share (the scrape's is the metrics section's of bench/run).
#
# Rounds of whole wrk runs swing by a third on this shared box (another
# tenant takes a core for a while), more than the figure to measure.  So
# the target is read from paired windows (-p PAIRS, -w SECONDS): one wrk
# run, and the watchers switched on and off every SECONDS, the order of
# each pair alternating; each window's intake is the jobs it stored
# (max(seq), read the same way in both kinds), its first half second left
# out (a count begun in a watched window may end there).  Neighbouring
# windows meet the same box: the ratio of the sums and the median of the
# pairs' ratios; and fcgiq's CPU per 1,000 requests in each kind of
# window, which another tenant of the box blurs less than the rates.
#
# Then, idle, the time of each dashboard endpoint (median and max of 20)
# on the database of the run, or on DB=path (an existing database, e.g.
# one grown to 10 M jobs: bench/dashboard.sh -g 10000000 grows one with
# sqlite3 first, about 1 KB per job in $TMPDIR).
#
# Usage: bench/dashboard.sh [-r ROUNDS] [-d SECONDS] [-c CONC] [-g JOBS]
#            [-p PAIRS] [-w SECONDS]
# Target: watched >= 0.95x alone, in the paired windows (20 pairs of 3 s
# by default; -p 0: none).  The rounds' figures are printed too.  Nothing
# here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
rounds=3 dur=10 conc=64 grow=0 pairs=20 win=3
while getopts "r:d:c:g:p:w:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) conc=$OPTARG ;;
	g) grow=$OPTARG ;; p) pairs=$OPTARG ;; w) win=$OPTARG ;;
	*) sed -n '2,36p' "$0"; exit 2 ;;
	esac
done
bench_need wrk nginx sqlite3 curl
bench_built
bench_scratch dash

db=${DB:-$B/queue.db}
cat >"$B/fcgiq.conf" <<EOF
[fcgiq]
database = $db
log = warn
helper = no
[queue default]
max_queued = 1000000000
[queue mail]
EOF
bench_fcgiq "$B/fcgiq.conf" "$B/fcgiq.sock"
port=$((20000 + RANDOM % 12000))
bench_nginx_fcgiq <<EOC
		location / { include /etc/nginx/fastcgi_params;
			fastcgi_keep_conn on; fastcgi_pass fcgiq; }
		location = /metrics { include /etc/nginx/fastcgi_params;
			fastcgi_param FCGIQ_ROLE metrics;
			fastcgi_keep_conn on; fastcgi_pass fcgiq; }
		location /fcgiq/ { include /etc/nginx/fastcgi_params;
			fastcgi_param FCGIQ_ROLE dashboard;
			fastcgi_keep_conn on; fastcgi_pass fcgiq; }
EOC
U=http://127.0.0.1:$port
if [ "$grow" -gt 0 ]; then
	# The schema is fcgiq's (it made the database); rows go straight
	# into the table, a million per transaction (a large cache: each
	# page written once): 90 % done, 9 % waiting, 1 % dead, two queues,
	# 100-byte bodies.
	t0=$(date +%s)
	now=$(($(date +%s) * 1000))
	{
		echo "PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;"
		for lo in $(seq 0 1000000 $((grow - 1))); do
			hi=$((lo + 1000000 < grow ? lo + 1000000 : grow))
			cat <<EOS
BEGIN;
WITH RECURSIVE n(i) AS (SELECT $((lo + 1)) UNION ALL SELECT i + 1 FROM n
    WHERE i < $hi)
INSERT INTO jobs (id, queue, state, attempts, max_attempts, created_at,
    run_at, finished_at, body, last_error)
SELECT printf('grown%025d', i),
    CASE WHEN i % 3 = 0 THEN 'mail' ELSE 'default' END,
    CASE WHEN i % 100 = 0 THEN 'dead' WHEN i % 100 < 10 THEN 'queued'
        ELSE 'done' END,
    1, 3, $now - ($grow - i) * 10, $now - ($grow - i) * 10,
    CASE WHEN i % 100 = 0 OR i % 100 >= 10 THEN $now - ($grow - i) * 10 END,
    zeroblob(100), CASE WHEN i % 100 = 0 THEN 'exit 1' END
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOS
		done
	} | sqlite3 "$db" >/dev/null ||
	    { echo "bench: growing the database failed"; exit 1; }
	echo "dashboard: grew $db to $grow jobs in $(($(date +%s) - t0)) s," \
	    "$(du -m "$db" | cut -f1) MB"
fi

t() { curl -s -o /dev/null -w '%{time_total}\n' "$U$1"; }
# A scrape every second; with "page", what the open page polls every 3 s.
watch() {
	local k=0
	while :; do
		t /metrics >>"$B/scrapes"
		if [ "$1" = page ] && [ $((k % 3)) -eq 0 ]; then
			# One connection for the three, as a browser keeps one.
			curl -s -o /dev/null -o /dev/null -o /dev/null \
			    -w '%{time_total}\n' "$U/fcgiq/api/summary" \
			    "$U/fcgiq/api/jobs?state=dead" "$U/fcgiq/api/jobs" \
			    >>"$B/polls"
		fi
		k=$((k + 1))
		sleep 1
	done
}
rps() { wrk_run "$U/bench/" "$conc" "$B/wrk.out" "$src/bench/post.lua"; }
cpu_ms() {	# fcgiq's CPU time so far (every thread, the helper aside), ms
	awk '{ sub(/^.*\) /, ""); split($0, f, " "); t += f[12] + f[13] }
	    END { print t * 10 }' /proc/"$fpid"/task/*/stat
}
stat2() {	# FILE: median and max of its numbers
	sort -n "$1" | awk '{ v[NR] = $1 }
	    END { printf "median %.4f s, max %.4f s of %d", v[int((NR + 1) / 2)], v[NR], NR }'
}

t /metrics >/dev/null		# the first one starts the counts
wrk -t2 -c"$conc" -d2s -s "$src/bench/post.lua" "$U/bench/" >/dev/null 2>&1
echo "dashboard: intake c=$conc, ${dur}s rounds: alone, scraped (1/s)," \
    "watched (scrape 1/s, dashboard polls 1/3s)"
: >"$B/alone"; : >"$B/scraped"; : >"$B/watched"; : >"$B/scrapes"
: >"$B/alone.cpu"; : >"$B/scraped.cpu"; : >"$B/watched.cpu"
: >"$B/polls"
for r in $(seq "$rounds"); do
	# Each mode first, second and third in turn: the database grows by
	# each round's jobs, and intake slows a little with it.
	case $((r % 3)) in
	1) order="alone scraped watched" ;;
	2) order="watched alone scraped" ;;
	0) order="scraped watched alone" ;;
	esac
	for mode in $order; do
		w=""
		if [ $mode = scraped ]; then
			watch metrics &
			w=$!
		elif [ $mode = watched ]; then
			watch page &
			w=$!
		fi
		c0=$(cpu_ms)
		v=$(rps)
		c1=$(cpu_ms)
		[ -n "$w" ] && { kill "$w"; wait "$w" 2>/dev/null; }
		# fcgiq's CPU per 1,000 requests: what the box's other
		# load does not blur as much as it blurs req/s.
		cpk=$(awk -v c=$((c1 - c0)) -v v="$v" -v d="$dur" \
		    'BEGIN { printf "%.1f", c / (v * d / 1000) }')
		echo "round $r $mode: $v req/s (p99 $(awk '$1 == "99%" { print $2 }' "$B/wrk.out")), fcgiq $cpk ms CPU per 1000"
		echo "$v" >>"$B/$mode"
		echo "$cpk" >>"$B/$mode.cpu"
	done
done
# Paired windows: one wrk run; the page's watchers on or off by turns.
if [ "$pairs" -gt 0 ]; then
	seqnow() {	# "ms max(seq)", read alike in both kinds of window
		local v
		v=$(sqlite3 -cmd ".timeout 5000" "$db" "SELECT max(seq) FROM jobs")
		echo "$(($(date +%s%N) / 1000000)) $v"
	}
	: >"$B/windows"
	wrk -t2 -c"$conc" -d$((pairs * 2 * win + 5))s -s "$src/bench/post.lua" \
	    "$U/bench/" >/dev/null 2>&1 &
	wpid=$!
	sleep 2		# wrk at speed
	for p in $(seq "$pairs"); do
		if [ $((p % 2)) = 1 ]; then order="alone watched"
		else order="watched alone"; fi
		for mode in $order; do
			w=""
			[ $mode = watched ] && { watch page & w=$!; }
			sleep 0.5
			a=$(seqnow)
			c0=$(cpu_ms)
			sleep "$(awk -v w="$win" 'BEGIN { print w - 0.5 }')"
			b=$(seqnow)
			c1=$(cpu_ms)
			[ -n "$w" ] && { kill "$w"; wait "$w" 2>/dev/null; }
			set -- $a $b
			# rate, then jobs and fcgiq's CPU ms in the window
			echo "$p $mode $(awk -v t0="$1" -v s0="$2" -v t1="$3" \
			    -v s1="$4" 'BEGIN { printf "%.1f", (s1 - s0) * 1000 / (t1 - t0) }') $(($4 - $2)) $((c1 - c0))" \
			    >>"$B/windows"
		done
	done
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	# Each pair's ratio, then the sums.
	awk '$2 == "alone" { a[$1] = $3 } $2 == "watched" { w[$1] = $3 }
	    END { for (p in a) if (p in w) printf "%.4f\n", w[p] / a[p] }' \
	    "$B/windows" | sort -g >"$B/pair-ratios"
	awk -v n="$pairs" -v win="$win" -v m="$(median 3 <"$B/pair-ratios")" \
	    -v lo="$(head -1 "$B/pair-ratios")" -v hi="$(tail -1 "$B/pair-ratios")" '
	    $2 == "alone" { sa += $3; ja += $4; ca += $5 }
	    $2 == "watched" { sw += $3; jw += $4; cw += $5 }
	    END { printf "dashboard, paired windows (%d pairs of %d s): watched %.0f, alone %.0f req/s: watched/alone %.3fx (target >= 0.95); median of the pairs %sx, pairs from %s to %s\n", n, win, sw / n, sa / n, sw / sa, m, lo, hi
		printf "dashboard, paired windows: fcgiq CPU per 1000 requests: watched %.1f ms, alone %.1f ms (%.3fx)\n", cw * 1000 / jw, ca * 1000 / ja, (cw / jw) / (ca / ja) }' \
	    "$B/windows"
fi

sum() { awk '{ s += $1 } END { print s }' "$1"; }
ratios() { paste "$1" "$2" | awk '{ printf "%.3f ", $1 / $2 }'; }
awk -v w="$(sum "$B/watched")" -v s="$(sum "$B/scraped")" \
    -v a="$(sum "$B/alone")" -v r="$rounds" \
    'BEGIN { printf "dashboard: watched %.0f, scraped %.0f, alone %.0f req/s: watched/alone %.3fx (target >= 0.95), watched/scraped %.3fx, scraped/alone %.3fx\n", w / r, s / r, a / r, w / a, w / s, s / a }'
echo "dashboard: rounds' watched/alone $(ratios "$B/watched" "$B/alone")," \
    "watched/scraped $(ratios "$B/watched" "$B/scraped")"
echo "dashboard: fcgiq CPU per 1000 requests (median of the rounds):" \
    "alone $(median <"$B/alone.cpu") ms, scraped $(median <"$B/scraped.cpu") ms," \
    "watched $(median <"$B/watched.cpu") ms"
jobs=$(sqlite3 "$db" "SELECT max(seq) FROM jobs")
echo "dashboard: during intake: scrape $(stat2 "$B/scrapes"); dashboard poll $(stat2 "$B/polls")"

# Idle: each endpoint on the database as it now is.
dead=$(sqlite3 "$db" "SELECT id FROM jobs INDEXED BY jobs_dead
    WHERE state = 'dead' LIMIT 1")
[ -n "$dead" ] || dead=$(sqlite3 "$db" "SELECT id FROM jobs ORDER BY seq DESC LIMIT 1")
for e in /fcgiq/api/summary "/fcgiq/api/jobs" "/fcgiq/api/jobs?state=dead" \
    "/fcgiq/api/jobs?queue=mail&state=dead&age=3600" \
    "/fcgiq/api/jobs?queue=default&state=queued" \
    "/fcgiq/api/jobs?state=done&page=199" "/fcgiq/api/job?id=$dead" /fcgiq/; do
	: >"$B/e"
	for i in $(seq 20); do t "$e" >>"$B/e"; done
	echo "dashboard: $jobs jobs, idle: ${e#/fcgiq/}: $(stat2 "$B/e")"
done
