#!/bin/bash
# tests/e2e/metrics-lease.sh: attempts that end without an outcome are
# counted.  A helper (fcgiq work) killed with -9 while two jobs run is
# replaced by the next one, whose first act requeues every running job:
# the one on its last attempt goes dead, the other runs again and
# succeeds.  fcgiqctl stats --prometheus (the shared counters, as the
# metrics role serves them) then says so: fcgiq_jobs_finished_total
# outcome "dead" for the first, "failed" then "done" and
# fcgiq_jobs_retried_total 1 for the other — as it does for an attempt
# whose handler failed.  The expired-lease path (store_requeue_expired)
# reports through the same function, tested in tests/unit/test_store.
. "$(dirname "$0")/../lib.sh"

command -v sqlite3 >/dev/null || skip_all "sqlite3 not installed"
[ -x "$FCGIQ" ] && [ -x "$FCGIQCTL" ] || skip_all "fcgiq not built"

DB=$T/q.db
ST=$T/state
mkdir -p "$ST"
# The first attempt records its pid and sleeps (until the test ends it);
# any later one succeeds.
cat >"$T/job.sh" <<EOF
#!/bin/sh
echo \$\$ >"$ST/\$FCGIQ_QUEUE.\$FCGIQ_ATTEMPT"
[ "\$FCGIQ_ATTEMPT" = 1 ] && exec sleep 120
exit 0
EOF
chmod +x "$T/job.sh"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
log_file = $T/fcgiq.log

[queue once]
handler      = exec:$T/job.sh
user         = root
max_attempts = 1

[queue twice]
handler      = exec:$T/job.sh
user         = root
max_attempts = 2
EOF
ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
metric() {
	ctl stats --prometheus | awk -v k="$1" '$1 == k { print $2 + 0; f = 1 }
	    END { if (!f) print "absent" }'
}

"$FCGIQ" work -c "$T/fcgiq.conf" 2>>"$T/work.log" &
helper=$!
track "$helper"
echo a | ctl enqueue once >/dev/null
echo b | ctl enqueue twice >/dev/null
running() { [ -s "$ST/once.1" ] && [ -s "$ST/twice.1" ]; }
check "both first attempts run" wait_for running
s1=$(cat "$ST/once.1")
s2=$(cat "$ST/twice.1")
track "$s1" "$s2"
check_eq "the handlers' parent is the helper" "$helper" \
    "$(ps -o ppid= -p "$s1" | tr -d ' ')"
kill -9 "$helper"
kill "$s1" "$s2"
"$FCGIQ" work -c "$T/fcgiq.conf" 2>>"$T/work.log" &
track $!
finished() {
	[ "$(sql "SELECT group_concat(queue || ':' || state, ' ') FROM
	    (SELECT queue, state FROM jobs ORDER BY queue)")" = \
	    "once:dead twice:done" ]
}
check "the next helper: once dead, twice done" wait_for finished
check_eq "its last_error says why" "requeued: its helper went away" \
    "$(sql "SELECT last_error FROM jobs WHERE queue = 'once'")"
check_eq 'once: finished{outcome="dead"} 1' 1 \
    "$(metric 'fcgiq_jobs_finished_total{queue="once",outcome="dead"}')"
check_eq 'once: finished{outcome="failed"} 0, retried 0' "0 0" \
    "$(metric 'fcgiq_jobs_finished_total{queue="once",outcome="failed"}') $(
    metric 'fcgiq_jobs_retried_total{queue="once"}')"
check_eq 'twice: failed 1, retried 1, done 1, dead 0' "1 1 1 0" \
    "$(metric 'fcgiq_jobs_finished_total{queue="twice",outcome="failed"}') $(
    metric 'fcgiq_jobs_retried_total{queue="twice"}') $(
    metric 'fcgiq_jobs_finished_total{queue="twice",outcome="done"}') $(
    metric 'fcgiq_jobs_finished_total{queue="twice",outcome="dead"}')"
check_eq "fcgiq_jobs{state=dead} agrees" 1 \
    "$(metric 'fcgiq_jobs{queue="once",state="dead"}')"

done_testing
