#!/bin/bash
# tests/e2e/schedules.sh: [schedule NAME] with the real helper (fcgiq work),
# an exec: handler and the injected clock (FCGIQ_TEST_CLOCK, a file holding
# Unix ms that the helper reads each loop turn): no test waits for a real
# minute.  Outcomes are read with sqlite3 and fcgiqctl.
#
# Covers: a slot enqueued once and run, with its body and slot header; a
# restart at the same slot enqueues nothing; the clock stepped back (helper
# running, and a restart) repeats nothing; a downtime over 5 slots gives 1
# job with catch_up = last, 0 with none, 5 with all; fcgiq -t's messages
# name the line and field; fcgiqctl schedules (table and --json); a
# schedule added on SIGHUP.
# A "tick" schedule (every minute, catch_up = none, last in the file) is the
# witness that the helper has been through its schedules after a clock step.
. "$(dirname "$0")/../lib.sh"

command -v sqlite3 >/dev/null || skip_all "sqlite3 not installed"
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
[ -f /usr/share/zoneinfo/Europe/Berlin ] || skip_all "tzdata not installed"

DB=$T/q.db
CLOCK=$T/clock
mkdir -p "$T/runs"
cat >"$T/record.sh" <<'EOS'
#!/bin/sh
# The job's id, its slot and its body, one file a run.
{ echo "$HTTP_X_FCGIQ_SLOT"; cat; echo; } >"$1/$FCGIQ_JOB_ID"
EOS
chmod +x "$T/record.sh"
printf '{"report":"all"}' >"$T/all.json"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
grace    = 2s

[queue reports]
handler  = exec:$T/record.sh $T/runs
user     = root

[queue tick]

[schedule nightly-report]
cron     = 0 * * * *
timezone = Europe/Berlin
queue    = reports
body     = {"report":"hourly"}

[schedule dl-last]
cron     = 0 * * * *
queue    = tick
catch_up = last

[schedule dl-none]
cron     = 0 * * * *
queue    = tick
catch_up = none

[schedule dl-all]
cron      = 0 * * * *
queue     = tick
catch_up  = all
body_file = $T/all.json

[schedule tick]
cron     = * * * * *
queue    = tick
catch_up = none
EOF

set_clock() {
	date -u -d "$1" +%s000 >"$CLOCK.tmp" && mv "$CLOCK.tmp" "$CLOCK"
}
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
count() { sql "SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'schedule:$1:%'"; }
count_is() { [ "$(count "$1")" = "$2" ]; }
actives() { cat "$T/work.log" 2>/dev/null | grep -c ': active'; }
more_actives() { [ "$(actives)" -gt "$1" ]; }
HP=
start_helper() {
	local n
	n=$(actives)
	FCGIQ_TEST_CLOCK=$CLOCK "$FCGIQ" work -c "$T/fcgiq.conf" \
	    2>>"$T/work.log" &
	HP=$!
	track "$HP"
	wait_for more_actives "$n" || bail "the helper did not start"
}
stop_helper() { stop_pid "$HP"; wait "$HP" 2>/dev/null; HP=; }
# Step the clock to $1 and wait for the tick schedule's $2nd job: the
# helper has been through every schedule at that time.
step() {
	set_clock "$1"
	wait_for count_is tick "$2" || not_ok "tick $2 at $1" "$(count tick)"
}
ctl() { FCGIQ_TEST_CLOCK=$CLOCK "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }

# --- fcgiq -t
check "fcgiq -t takes the file" "$FCGIQ" -t -c "$T/fcgiq.conf"
bad() {		# bad NAME SED-EXPRESSION: fcgiq -t's message on the edit
	sed "$2" "$T/fcgiq.conf" >"$T/$1.conf"
	"$FCGIQ" -t -c "$T/$1.conf" 2>&1 >/dev/null
}
line=$(grep -n '^cron     = 0 \* \* \* \*' "$T/fcgiq.conf" | head -1 | cut -d: -f1)
check_eq "fcgiq -t: day-of-week 8, with line and field" \
    "fcgiq: $T/dow.conf:$line: schedule nightly-report: cron: day-of-week: 8 is out of range 0-7" \
    "$(bad dow "${line}s/.*/cron = 0 3 * * 8/")"
check_eq "fcgiq -t: minute 60" \
    "fcgiq: $T/min.conf:$line: schedule nightly-report: cron: minute: 60 is out of range 0-59" \
    "$(bad min "${line}s/.*/cron = 60 3 * * */")"
check_eq "fcgiq -t: a month's name" \
    "fcgiq: $T/mon.conf:$line: schedule nightly-report: cron: month: \"foo\" is not a number or a name" \
    "$(bad mon "${line}s/.*/cron = 0 3 * foo */")"
check_eq "fcgiq -t: four fields" \
    "fcgiq: $T/four.conf:$line: schedule nightly-report: cron: expected 5 fields (minute hour day-of-month month day-of-week), found 4" \
    "$(bad four "${line}s/.*/cron = 0 3 * */")"
tzl=$((line + 1))
check_eq "fcgiq -t: a zone that does not exist" \
    "fcgiq: $T/tz.conf:$tzl: schedule nightly-report: timezone: \"Europe/Atlantis\" is not a zone under /usr/share/zoneinfo" \
    "$(bad tz "${tzl}s/.*/timezone = Europe\/Atlantis/")"
check_eq "fcgiq -t: a queue that is not configured" \
    "fcgiq: $T/q.conf:$line: schedule nightly-report: queue: \"nope\": no [queue nope]" \
    "$(bad q "$((line + 2))s/.*/queue = nope/")"
check_eq "fcgiq -t: catch_up" \
    "fcgiq: $T/cu.conf:$((line + 7)): schedule dl-last: catch_up: \"some\" is not last, none or all" \
    "$(bad cu "$((line + 7))s/.*/catch_up = some/")"

# --- a slot enqueued once and run
set_clock 2026-12-03T09:59:50Z
start_helper
check "fcgiqctl schedules: next run before the first slot" \
    bash -c "FCGIQ_TEST_CLOCK=$CLOCK $FCGIQCTL -c $T/fcgiq.conf schedules |
    grep -Eq '^nightly-report +reports +0 \* \* \* \* +Europe/Berlin +- +2026-12-03T10:00:00.000Z 2026-12-03 11:00 CET'"
step 2026-12-03T10:00:01Z 1
check_eq "the slot: one job" 1 "$(count nightly-report)"
ran() { [ "$(ls "$T/runs" | wc -l)" = "$1" ]; }
check "the handler ran it" wait_for ran 1
check_eq "with the slot and the body" \
    "2026-12-03T10:00:00Z {\"report\":\"hourly\"}" \
    "$(cat "$T"/runs/* | tr '\n' ' ' | sed 's/ $//')"
check_eq "its idempotency key names the slot" \
    "schedule:nightly-report:$(date -u -d 2026-12-03T10:00:00Z +%s000)" \
    "$(sql "SELECT idempotency_key FROM jobs WHERE queue = 'reports'")"
done_is() { [ "$(sql "SELECT state FROM jobs WHERE queue = 'reports'")" = done ]; }
check "done" wait_for done_is

# --- a restart at the same slot
stop_helper
start_helper
step 2026-12-03T10:01:01Z 2
check_eq "a restart at the same slot: still one job" 1 "$(count nightly-report)"

# --- the clock stepped back, the helper running, then forward again
set_clock 2026-12-03T09:30:00Z
step 2026-12-03T10:02:01Z 3
check_eq "a step back and forward: still one job" 1 "$(count nightly-report)"
# ... and a helper started while the clock is back
stop_helper
set_clock 2026-12-03T09:20:00Z
start_helper
step 2026-12-03T10:03:01Z 4
check_eq "a restart with the clock back: still one job" 1 \
    "$(count nightly-report)"
check_eq "the handler ran once" 1 "$(ls "$T/runs" | wc -l)"

# --- a downtime over 5 slots (11:00 .. 15:00)
stop_helper
set_clock 2026-12-03T15:30:00Z
start_helper
wait_for count_is tick 5
check_eq "catch_up = all: the 5 missed slots" 5 $(($(count dl-all) - 1))
check_eq "catch_up = last: one job" 1 $(($(count dl-last) - 1))
check_eq "catch_up = none: none" 0 $(($(count dl-none) - 1))
check_eq "catch_up = all: each slot once, in order" \
    "10 11 12 13 14 15" \
    "$(sql "SELECT substr(idempotency_key, 17) FROM jobs
    WHERE idempotency_key LIKE 'schedule:dl-all:%' ORDER BY 1" |
    while read -r t; do date -u -d "@$((t / 1000))" +%H; done | tr '\n' ' ' |
    sed 's/ $//')"
check_eq "catch_up = all: the body_file's body" '{"report":"all"}' \
    "$(sql "SELECT DISTINCT CAST(body AS TEXT) FROM jobs
    WHERE idempotency_key LIKE 'schedule:dl-all:%'")"
check_eq "catch_up = last: the newest slot" \
    "schedule:dl-last:$(date -u -d 2026-12-03T15:00:00Z +%s000)" \
    "$(sql "SELECT max(idempotency_key) FROM jobs
    WHERE idempotency_key LIKE 'schedule:dl-last:%'")"
check "the helper logged the catch-up" \
    grep -q 'schedule dl-all: 5 jobs enqueued' "$T/work.log"
check "the missed hourly report ran" wait_for ran 2

# --- fcgiqctl schedules
ctl schedules >"$T/schedules.out"
check_eq "fcgiqctl schedules: a header and five schedules" 6 \
    "$(wc -l <"$T/schedules.out")"
check "fcgiqctl schedules: last slot, next run in UTC and Berlin" \
    grep -Eq '^nightly-report +reports +0 \* \* \* \* +Europe/Berlin +2026-12-03T15:00:00.000Z 2026-12-03T16:00:00.000Z 2026-12-03 17:00 CET$' \
    "$T/schedules.out"
check "fcgiqctl schedules: the machine's zone is local" \
    grep -Eq '^tick +tick +\* \* \* \* \* +local +2026-12-03T15:30:00.000Z 2026-12-03T15:31:00.000Z' \
    "$T/schedules.out"
ctl --json schedules >"$T/schedules.json"
check "fcgiqctl --json schedules" grep -q '"next_run_local": "2026-12-03 17:00 CET"' \
    "$T/schedules.json"
check "fcgiqctl --json schedules: catch_up" grep -q '"catch_up": "all"' \
    "$T/schedules.json"

# --- SIGHUP: a schedule added starts at its next slot; none repeats
cat >>"$T/fcgiq.conf" <<EOF2
[schedule added]
cron     = 31 * * * *
queue    = tick
EOF2
n=$(grep -c 'configuration reloaded' "$T/work.log")
kill -HUP "$HP"
reloaded() { [ "$(grep -c 'configuration reloaded' "$T/work.log")" -gt "$n" ]; }
check "SIGHUP reloads" wait_for reloaded
step 2026-12-03T15:31:01Z 6
check_eq "SIGHUP: the new schedule's first slot" 1 "$(count added)"
check_eq "SIGHUP: the others repeat nothing" "2 2 1 6" \
    "$(count nightly-report) $(count dl-last) $(count dl-none) $(count dl-all)"
stop_helper
check "no warning in the helper's log" bash -c "! grep -Eq 'warn|error' '$T/work.log'"
done_testing
