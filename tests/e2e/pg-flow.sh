#!/bin/bash
# tests/e2e/pg-flow.sh: flow control on PostgreSQL (issues 19 and 20) — a
# private cluster (tests/pg-lib.sh), nginx from conf-examples/nginx.conf in
# front of fcgiq under spawn-fcgi -F 2, so two helpers claim from the same
# database at once, exec: handlers that record their runs.
#
#   serialize_by  jobs of one key never overlap and start in arrival
#             order, whichever helper runs them; other keys run in
#             parallel, on both helpers; the key is stored at intake;
#   pause_after   a helper's breaker opens after 3 failed attempts in a
#             row (logged, in the queues table, in fcgiqctl stats), starts
#             nothing for pause_for, probes, and once the upstream is back
#             closes, and the queue drains with no job dead; a breaker that
#             another helper (another host) opened pauses both helpers
#             here until its end.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] && [ -x "$FCGIQCTL" ] || skip_all "fcgiq not built"
[ "$(id -u)" = 0 ] || skip_all "needs root (exec: queues name user = root)"
. "$top_srcdir/tests/e2e/responder-lib.sh"

pg_start

H=$T/handlers
ST=$T/state
REC=$ST/runs.log
mkdir -p "$H" "$ST" "$T/var"
# X-Test: KEY N, passed on as HTTP_X_TEST (the handler does not read the
# serialize_by source); $PPID is the helper that runs the job.
cat >"$H/rec.sh" <<'EOF'
#!/bin/sh
set -- "$1" $HTTP_X_TEST
now() { date +%s%N; }
echo "start $(now) $2 $3 $PPID" >>"$1"
sleep 0.3
echo "end $(now) $2 $3 $PPID" >>"$1"
EOF
cat >"$H/br.sh" <<EOF
#!/bin/sh
# Fails while $T/down exists, as an upstream that is down.
echo "\$(date +%s%3N) \$PPID" >>"$ST/\$1.runs"
[ -e "$T/down" ] && { echo down >&2; exit 1; }
exit 0
EOF
chmod 755 "$H/rec.sh" "$H/br.sh"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $PG_URI
log      = info
path     = /usr/local/bin:/usr/bin:/bin

[queue default]

[queue ser]
handler      = exec:$H/rec.sh $REC
user         = root
concurrency  = 3
max_attempts = 3
serialize_by = header:X-Repo

[queue br]
handler      = exec:$H/br.sh br
user         = root
concurrency  = 1
max_attempts = 10
backoff      = 10ms..2s
pause_after  = 3
pause_for    = 2s

[queue br2]
handler      = exec:$H/br.sh br2
user         = root
concurrency  = 1
backoff      = 10ms..2s
pause_after  = 3
pause_for    = 2s
EOF
extra_location /ser/ ser
extra_location /br/ br
extra_location /br2/ br2

check "fcgiq -t takes serialize_by and pause_after on PostgreSQL" \
    "$FCGIQ" -t -c "$T/fcgiq.conf"
resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"
helpers_up() { [ "$(grep -c 'helper: postgresql:.*: active' "$T/fcgiq.log")" = 2 ]; }
check "two helpers claim from PostgreSQL" wait_for helpers_up

ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
# post QUEUE KEY N: one job; its status code.
post() {
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "X-Repo: $2" \
	    -H "X-Test: $2 $3" --data-binary "$2 $3" "$BASE/$1/"
}
unfinished() {
	[ "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = '$1'
	    AND finished_at IS NULL")" = 0 ]
}

# ------------------------------------------------------------ serialize_by
# Six keys of four jobs, all waiting (the queue paused) when the helpers
# start on them.
ctl pause ser >/dev/null
codes=""
for n in 1 2 3 4; do
	for key in owner/a owner/b c d e f; do
		codes="$codes$(post ser "$key" "$n") "
	done
done
check_eq "ser: 24 jobs accepted" "$(printf '202 %.0s' $(seq 24))" "$codes"
check_eq "ser: the key is stored at intake (6 keys of 4)" "4 4 4 4 4 4" \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'ser'
    GROUP BY serial_key ORDER BY serial_key" | tr '\n' ' ' | sed 's/ $//')"
ctl resume ser >/dev/null
check "ser: all finished" wait_for unfinished ser
check_eq "ser: 24 done, each run once" 24 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'ser'
    AND state = 'done' AND attempts = 1")"
# For each key: runs never overlap and start in arrival order; runs of
# different keys overlapped; how many ran at most at once.
out=$(awk '
$1 == "start" { s[$3 " " $4] = $2; h[$5] = 1 }
$1 == "end" { e[$3 " " $4] = $2 }
END {
	n = 0
	for (r in s) { n++; rs[n] = r }
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && s[rs[j]] < s[rs[j - 1]]; j--) {
			t = rs[j]; rs[j] = rs[j - 1]; rs[j - 1] = t
		}
	bad = 0; cross = 0; most = 0
	for (i = 1; i <= n; i++) {
		r = rs[i]; split(r, f, " ")
		if (!(r in e)) { print "no end: " r; bad++ }
		if (f[1] in last) {
			split(last[f[1]], p, " ")
			if (s[r] < e[last[f[1]]]) {
				print "overlap: " last[f[1]] " / " r; bad++
			}
			if (f[2] + 0 < p[2] + 0) {
				print "out of order: " last[f[1]] " / " r; bad++
			}
		}
		last[f[1]] = r
		k = 1
		for (j = 1; j < i; j++) {
			split(rs[j], g, " ")
			if (s[r] < e[rs[j]]) {
				k++
				if (g[1] != f[1]) cross = 1
			}
		}
		if (k > most) most = k
	}
	if (!cross) { print "no two keys overlapped"; bad++ }
	if (n != 24) { print "runs: " n; bad++ }
	nh = 0
	for (x in h) nh++
	print "most " most " helpers " nh
	exit bad > 0
}' "$REC")
rc=$?
echo "$out" | sed 's/^/# /'
check_eq "ser: one at a time per key, in arrival order, keys in parallel" 0 $rc
check "ser: both helpers ran jobs of the queue" grep -q 'helpers 2$' <<<"$out"

# ----------------------------------------------------------- pause_after
touch "$T/down"
ctl pause br >/dev/null
for n in $(seq 10); do post br k "$n" >/dev/null; done
ctl resume br >/dev/null
opened() { grep -q "queue br: breaker open for 2s after 3 failed attempts in a row" "$T/fcgiq.log"; }
check "br: the breaker opens after 3 failed attempts in a row (logged)" \
    wait_for opened
stored_open() {
	[ "$(pg_psql -c "SELECT breaker_state = 1 AND breaker_trips >= 1
	    AND breaker_failures >= 3 AND breaker_pause = 2000
	    FROM queues WHERE name = 'br'")" = t ]
}
check "br: the open breaker is in PostgreSQL's queues table" wait_for stored_open
out=$(ctl stats)
case $out in *"breaker br"*"open"*) ok "br: fcgiqctl stats shows the breaker" ;;
*) not_ok "br: fcgiqctl stats shows the breaker" "$out" ;; esac
# A helper that has probed: its fourth start.  Each helper keeps its own
# breaker; the one that opened first has probed once pause_for is over.
probed() {
	awk '{ n[$2]++ } END { for (h in n) if (n[h] >= 4) f = 1; exit !f }' \
	    "$ST/br.runs"
}
check "br: a probe after the pause" wait_for probed
rm -f "$T/down"
# Per helper: after its third start (three failures in a row), nothing
# for pause_for (2 s), then one probe.
out=$(awk '{ t[$2, ++n[$2]] = $1 }
END {
	for (h in n) {
		if (n[h] < 4) continue
		gap = t[h, 4] - t[h, 3]
		print "helper " h ": " n[h] " starts, gap after the third " gap " ms"
		if (gap < 1900) bad = 1
		checked++
	}
	exit bad || !checked
}' "$ST/br.runs")
rc=$?
echo "$out" | sed 's/^/# /'
check_eq "br: no start for pause_for after the breaker opened" 0 $rc
br_done() {
	[ "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'br'
	    AND state = 'done'")" = 10 ]
}
check "br: back up, the queue drains" wait_for br_done
check "br: the breaker closed (logged)" \
    grep -q "queue br: breaker closed" "$T/fcgiq.log"
check_eq "br: no job went dead" 0 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'br'
    AND state = 'dead'")"
check "br: the half-open state was logged" \
    grep -q "queue br: breaker half-open" "$T/fcgiq.log"

# A breaker opened elsewhere (written as another host's helper writes it):
# both helpers here pause the queue until its end, then one probe closes
# it.
until=$(($(date +%s%3N) + 8000))
pg_psql -c "INSERT INTO queues (name, breaker_state, breaker_until,
    breaker_failures, breaker_pause, breaker_trips)
    VALUES ('br2', 1, $until, 3, 8000, 1) ON CONFLICT (name) DO UPDATE
    SET breaker_state = 1, breaker_until = $until, breaker_failures = 3,
    breaker_pause = 8000, breaker_trips = 1"
adopted() {
	[ "$(grep -c "queue br2: breaker open for .* (another helper opened it)" \
	    "$T/fcgiq.log")" = 2 ]
}
check "br2: both helpers pause for a breaker opened elsewhere (logged)" \
    wait_for adopted
for n in 1 2 3; do post br2 k "$n" >/dev/null; done
br2_done() {
	[ "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'br2'
	    AND state = 'done'")" = 3 ]
}
check "br2: its jobs run once it is over" wait_for br2_done
first=$(pg_psql -c "SELECT min(started_at) FROM jobs WHERE queue = 'br2'")
check "br2: none started before the breaker's end ($first >= $until)" \
    test "${first:-0}" -ge "$until"
check "br2: a probe closed it (logged)" \
    grep -q "queue br2: breaker closed" "$T/fcgiq.log"

done_testing
