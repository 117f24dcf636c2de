#!/bin/bash
# tests/e2e/flow.sh: flow control (issue 19), with the real helper (fcgiq
# work) and exec: handlers, jobs enqueued with fcgiqctl, outcomes read
# with sqlite3 and fcgiqctl stats.  One section per feature:
#   rate      rate = 50/s starts 500 jobs +- 2 % in 10 s, the window
#             measured on the jobs' own started_at (not this script's
#             clock), past the first burst; no busy loop meanwhile;
#   lanes     retry_concurrency = 1 of 2 slots: retries that hang never
#             hold both, and fresh jobs finish meanwhile;
#   retry-after  an exec: handler's exit 75 with "Retry-After: N" (or an
#             HTTP date) on its first line sets the next run, capped by
#             backoff's cap;
#   breaker   pause_after = 3: no start while open, one probe per
#             pause (doubled), the event in the dead-letter queue, the
#             log lines, fcgiqctl stats and the metrics; a success
#             closes it and the jobs left run with their attempts intact;
#   quarantine  a handler killed by a signal 3 times is dead with
#             "crashed 3 times" (attempts left); a timeout is no crash;
#             a job whose helper is killed under it twice (quarantine_after
#             = 2) is dead when claimed next.
. "$(dirname "$0")/../lib.sh"

command -v sqlite3 >/dev/null || skip_all "sqlite3 not installed"
[ -x "$FCGIQ" ] && [ -x "$FCGIQCTL" ] || skip_all "fcgiq not built"
[ "$(id -u)" = 0 ] || skip_all "needs root (exec: queues name user = root)"

DB=$T/q.db
ST=$T/state
mkdir -p "$ST"
cat >"$T/h.sh" <<EOF
#!/bin/sh
# h.sh MODE: what this suite's jobs do, by queue.
ST=$ST
now() { date +%s%3N; }
case \$1 in
lane)
	body=\$(cat)
	if [ "\$body" = good ]; then now >"\$ST/good.\$FCGIQ_JOB_ID"; exit 0; fi
	[ "\$FCGIQ_ATTEMPT" = 1 ] && exit 1
	# A retry that hangs: how many run at once is the point.
	touch "\$ST/retry.\$\$"
	n=\$(ls "\$ST" | grep -c '^retry\.')
	echo "\$n" >>"\$ST/retry-concurrent"
	sleep 2
	rm -f "\$ST/retry.\$\$"
	exit 1 ;;
ra)
	[ "\$FCGIQ_ATTEMPT" -gt 1 ] && exit 0
	printf 'Retry-After: %s\r\nthe upstream said wait\n' "\$(cat)"
	exit 75 ;;
br)
	now >>"\$ST/br.runs"
	[ -e "$T/down" ] && { echo down >&2; exit 1; }
	exit 0 ;;
seg)
	kill -SEGV \$\$ ;;
slow)
	sleep 30 ;;
kr)
	echo \$\$ >"\$ST/kr.\$FCGIQ_ATTEMPT"
	exec sleep 120 ;;
esac
exit 3
EOF
chmod +x "$T/h.sh"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
log_file = $T/fcgiq.log
dead_letter_queue = events

[queue events]

[queue rl]
handler     = exec:/bin/true
user        = root
concurrency = 8
rate        = 50/s

[queue lane]
handler      = exec:$T/h.sh lane
user         = root
concurrency  = 2
retry_concurrency = 1
max_attempts = 2
backoff      = 10ms..10ms
timeout      = 10s

[queue ra]
handler      = exec:$T/h.sh ra
user         = root
backoff      = 10ms..1h

[queue racap]
handler      = exec:$T/h.sh ra
user         = root
backoff      = 10ms..2s

[queue br]
handler      = exec:$T/h.sh br
user         = root
concurrency  = 1
max_attempts = 5
backoff      = 10ms..3s
pause_after  = 3
pause_for    = 1s

[queue seg]
handler      = exec:$T/h.sh seg
user         = root
max_attempts = 10
backoff      = 10ms..20ms

[queue slow]
handler      = exec:$T/h.sh slow
user         = root
max_attempts = 3
timeout      = 1s
backoff      = 10ms..20ms

[queue kr]
handler      = exec:$T/h.sh kr
user         = root
max_attempts = 10
quarantine_after = 2
EOF
ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
enq() { printf '%s' "${2:-x}" | ctl enqueue "$1"; }
# wait_long SECONDS CMD...: wait_for, for longer.
wait_long() {
	local n=$1 i
	shift
	for i in $(seq $((n * 10))); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
HELPER=""
start_helper() {
	"$FCGIQ" work -c "$T/fcgiq.conf" 2>>"$T/work.log" &
	HELPER=$!
	track "$HELPER"
}

check "fcgiq -t takes the configuration" "$FCGIQ" -t -c "$T/fcgiq.conf"
printf '[queue x]\nconcurrency = 2\nrate = 10/day\n' >"$T/bad.conf"
out=$("$FCGIQ" -t -c "$T/bad.conf" 2>&1)
case $out in *"bad.conf:3:"*"rate: bad value \"10/day\""*) ok "fcgiq -t names the line and key of a bad rate" ;;
*) not_ok "fcgiq -t names the line and key of a bad rate" "$out" ;; esac

# ------------------------------------------------------------------ rate
# Enqueued before the helper starts, so jobs are plentiful all along.
for i in $(seq 800); do ctl enqueue rl </dev/null >/dev/null || break; done
check_eq "800 jobs wait in rl" 800 "$(sql "SELECT count(*) FROM jobs WHERE queue = 'rl'")"
start_helper
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
c0=$(cpu_ticks "$HELPER")
T0=""
past_window() {
	T0=$(sql "SELECT min(started_at) FROM jobs WHERE queue = 'rl'")
	[ -n "$T0" ] && [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'rl'
	    AND started_at >= $T0 + 12000")" -gt 0 ]
}
check "rl: jobs started 12 s past its first" wait_long 40 past_window
# Out of tokens the helper sleeps in poll until the next is due: over
# these 12 s a busy loop would burn a core, the helper uses a fraction.
cpu=$(( ($(cpu_ticks "$HELPER") - c0) * 1000 / $(getconf CLK_TCK) ))
echo "# helper CPU over the rate section: $cpu ms"
check "rate: no busy loop (helper CPU $cpu ms in about 12 s)" test "$cpu" -lt 4000
# 10 s from 2 s after the first start: the first burst (50) is behind.
n=$(sql "SELECT count(*) FROM jobs WHERE queue = 'rl'
    AND started_at >= $T0 + 2000 AND started_at < $T0 + 12000")
echo "# rate = 50/s: $n starts in the 10 s window"
check "rate = 50/s: 500 +- 2 % starts in 10 s (got $n)" \
    test "$n" -ge 490 -a "$n" -le 510
n=$(sql "SELECT count(*) FROM jobs WHERE queue = 'rl' AND started_at < $T0 + 1000")
check "the first second: at most the burst (50) and a second's rate (got $n)" \
    test "$n" -le 101
# Let rl drain quietly behind the other sections (it binds nothing else).

# ----------------------------------------------------------------- lanes
for i in 1 2 3; do enq lane bad >/dev/null; done
retried() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'lane' AND attempts >= 2")" -ge 1 ]; }
check "lane: the failing jobs are retried" wait_for retried
for i in 1 2 3 4 5; do enq lane good >/dev/null; done
goods_done() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'lane' AND state = 'done'")" = 5 ]; }
check "lane: the fresh jobs all finish" wait_long 20 goods_done
bads_dead() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'lane' AND state = 'dead'")" = 3 ]; }
check "lane: the failing ones end dead" wait_long 20 bads_dead
check_eq "lane: never more than 1 retry at once (retry_concurrency)" 1 \
    "$(sort -n "$ST/retry-concurrent" | tail -1)"
# The last fresh job finished before the last retry did: they did not
# wait behind them.
last_good=$(cat "$ST"/good.* | sort -n | tail -1)
last_bad=$(sql "SELECT max(finished_at) FROM jobs WHERE queue = 'lane' AND state = 'dead'")
check "lane: fresh jobs did not wait for the retries ($last_good < $last_bad)" \
    test "$last_good" -lt "$last_bad"

# ----------------------------------------------------------- retry-after
ra1=$(enq ra 3)
fut=$(date -u -d "@$(($(date +%s) + 4))" '+%a, %d %b %Y %H:%M:%S GMT')
ra2=$(enq ra "$fut")
ra3=$(enq racap 120)
waiting() { [ "$(sql "SELECT count(*) FROM jobs WHERE id IN ('$ra1', '$ra2', '$ra3') AND state = 'retry'")" = 3 ]; }
check "retry-after: each first attempt waits to retry" wait_for waiting
# run_at against the attempt's start (the store's clock; the handler
# takes a few ms).
d1=$(sql "SELECT run_at - started_at FROM jobs WHERE id = '$ra1'")
check "Retry-After: 3 -> run 3 s after the attempt (got ${d1} ms)" \
    test "$d1" -ge 2900 -a "$d1" -le 3500
d2=$(sql "SELECT run_at - started_at FROM jobs WHERE id = '$ra2'")
check "Retry-After: an HTTP date 4 s ahead -> within it (got ${d2} ms)" \
    test "$d2" -ge 2000 -a "$d2" -le 4600
d3=$(sql "SELECT run_at - started_at FROM jobs WHERE id = '$ra3'")
check "Retry-After: 120 capped by backoff's cap, 2 s (got ${d3} ms)" \
    test "$d3" -ge 1900 -a "$d3" -le 2600
ra_done() { [ "$(sql "SELECT count(*) FROM jobs WHERE id IN ('$ra1', '$ra2', '$ra3') AND state = 'done'")" = 3 ]; }
check "retry-after: then each runs again and is done" wait_long 20 ra_done

# --------------------------------------------------------------- breaker
touch "$T/down"
# All ten wait before the first runs: paused, then resumed.
ctl pause br >/dev/null
for i in $(seq 10); do enq br >/dev/null; done
ctl resume br >/dev/null
runs() { [ -s "$ST/br.runs" ] && wc -l <"$ST/br.runs" || echo 0; }
opened() { grep -q "queue br: breaker open for 1s after 3 failed" "$T/fcgiq.log"; }
check "breaker: opens after 3 failed attempts in a row (logged)" wait_for opened
event() { sql "SELECT CAST(body AS TEXT) FROM jobs WHERE queue = 'events' AND CAST(body AS TEXT) LIKE '%breaker_open%' ORDER BY seq LIMIT 1"; }
ev=$(event)
case $ev in '{"event":"breaker_open","queue":"br","failures":3,"until":'*',"trips":1}') ok "breaker: its event in the dead-letter queue" ;;
*) not_ok "breaker: its event in the dead-letter queue" "$ev" ;; esac
reopened() { grep -q "queue br: breaker open for 2s after" "$T/fcgiq.log"; }
check "breaker: the probe fails, open again for twice as long" wait_long 10 reopened
check "breaker: half-open logged" grep -q "queue br: breaker half-open" "$T/fcgiq.log"
# Starts: 3 in a row, then one probe a pause.
t=($(cat "$ST/br.runs"))
check "breaker: 4 runs so far (3, then the probe)" test "${#t[@]}" -eq 4
gap=$((t[3] - t[2]))
check "breaker: no start for pause_for (1 s) after it opened (gap $gap ms)" \
    test "$gap" -ge 950
out=$(ctl stats)
case $out in *"breaker br"*"open"*"opened 2 times"*) ok "fcgiqctl stats shows the breaker" ;;
*) not_ok "fcgiqctl stats shows the breaker" "$out" ;; esac
prom=$(ctl stats --prometheus)
check "metrics: fcgiq_queue_breaker_open{queue=\"br\"} 1" \
    grep -qx 'fcgiq_queue_breaker_open{queue="br"} 1' <<<"$prom"
check "metrics: fcgiq_queue_breaker_trips_total{queue=\"br\"} 2" \
    grep -qx 'fcgiq_queue_breaker_trips_total{queue="br"} 2' <<<"$prom"
check "metrics: fcgiq_queue_breaker_open{queue=\"rl\"} 0" \
    grep -qx 'fcgiq_queue_breaker_open{queue="rl"} 0' <<<"$prom"
rm -f "$T/down"
br_done() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'br' AND state = 'done'")" -ge 8 ]; }
check "breaker: the next probe succeeds and the queue drains" wait_long 15 br_done
check "breaker: closed (logged)" grep -q "queue br: breaker closed" "$T/fcgiq.log"
# 10 jobs of 5 attempts: 5 failed runs spread over several jobs; none
# burned its attempts while the breaker was open.
check_eq "breaker: no job went dead" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'br' AND state = 'dead'")"
check_eq "breaker: every job done" 10 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'br' AND state = 'done'")"
prom=$(ctl stats --prometheus)
check "metrics: the breaker closed, open 0" \
    grep -qx 'fcgiq_queue_breaker_open{queue="br"} 0' <<<"$prom"

# ------------------------------------------------------------ quarantine
s1=$(enq seg)
s2=$(enq slow)
dead2() { [ "$(sql "SELECT count(*) FROM jobs WHERE id IN ('$s1', '$s2') AND state = 'dead'")" = 2 ]; }
check "quarantine: the crashing and the slow job end dead" wait_long 20 dead2
check_eq "killed by a signal 3 times: dead, attempts left" \
    "dead|3|3|crashed 3 times" \
    "$(sql "SELECT state || '|' || attempts || '|' || crashes || '|' || last_error FROM jobs WHERE id = '$s1'")"
check "the helper's log says why" grep -q "job $s1: attempt 3: crashed 3 times (killed by signal 11): dead" "$T/fcgiq.log"
check_eq "a timeout is no crash: every attempt used, no crash" "3|0" \
    "$(sql "SELECT attempts || '|' || crashes FROM jobs WHERE id = '$s2'")"
# The helper killed under a job, twice: dead when claimed next.
k=$(enq kr)
check "kr: first attempt runs" wait_for test -s "$ST/kr.1"
{ kill -9 "$HELPER"; wait "$HELPER"; kill -9 "$(cat "$ST/kr.1")"; } 2>/dev/null
start_helper
check "kr: requeued and run again by the next helper" wait_for test -s "$ST/kr.2"
{ kill -9 "$HELPER"; wait "$HELPER"; kill -9 "$(cat "$ST/kr.2")"; } 2>/dev/null
start_helper
kr_dead() { [ "$(sql "SELECT state FROM jobs WHERE id = '$k'")" = dead ]; }
check "kr: its runner killed twice, quarantine_after = 2: dead" wait_for kr_dead
check_eq "kr: last_error and crashes" "crashed 2 times|2" \
    "$(sql "SELECT last_error || '|' || crashes FROM jobs WHERE id = '$k'")"
check "kr: no third run" test ! -e "$ST/kr.3"
done_testing
