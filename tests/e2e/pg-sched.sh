#!/bin/bash
# tests/e2e/pg-sched.sh: [schedule NAME] and dead letters on PostgreSQL, on
# two "hosts" sharing one private cluster (tests/pg-lib.sh): host A is
# nginx in front of fcgiq under spawn-fcgi (one process, its helper
# inside), host B a helper of its own (fcgiq work), each with its own
# configuration file.  Both run the same schedules with the injected clock
# (FCGIQ_TEST_CLOCK, as tests/e2e/schedules.sh): no test waits for a real
# minute.  With PostgreSQL every helper is active, so both fire each slot.
#
# Covers: fcgiq -t accepts [schedule] and dead_letter_queue with
# PostgreSQL; a slot's job enqueued once and run, with its slot header
# and body; two helpers stepping through slots at once enqueue exactly one
# job per slot; fcgiqctl schedules reads the last slot from PostgreSQL; a
# job that dies yields one dead letter in the dead-letter queue, which
# runs, with the body SQLite's letters have.
#
# Each host's configuration ends with a schedule of its own (tick-a,
# tick-b: every minute, last in the file): its job for a slot is the
# witness that that host's helper has been through every schedule at that
# time.  Their last slots are stored before the helpers start, a minute
# back, so each helper's first turn (catch_up = last) enqueues one: the
# witness that it started before the clock moves.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$top_srcdir/tests/e2e/responder-lib.sh"

pg_start

H=$T/handlers
CLOCK=$T/clock
mkdir -p "$H" "$T/runs" "$T/letters" "$T/b"
cat >"$H/record.sh" <<'EOF'
#!/bin/sh
# The job's id, its slot header and its body, one file a run.
{ echo "$HTTP_X_FCGIQ_SLOT"; cat; echo; } >"$1/$FCGIQ_JOB_ID"
EOF
cat >"$H/fail.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "upstream said no" >&2
exit 1
EOF
chmod 755 "$H/record.sh" "$H/fail.sh"

# write_conf FILE TICK: the configuration of a host, whose witness
# schedule is TICK.
write_conf() {
	cat >"$1" <<-EOF
	[fcgiq]
	database          = $PG_URI
	log               = info
	path              = /usr/local/bin:/usr/bin:/bin
	dead_letter_queue = letters

	[queue default]
	handler      = exec:$H/fail.sh
	user         = root
	max_attempts = 2
	backoff      = 100ms..200ms

	[queue reports]
	handler  = exec:$H/record.sh $T/runs
	user     = root

	[queue letters]
	handler  = exec:$H/record.sh $T/letters
	user     = root

	[queue tick]

	[schedule nightly-report]
	cron     = 0 * * * *
	queue    = reports
	body     = {"report":"hourly"}

	[schedule minutely]
	cron     = * * * * *
	queue    = tick
	catch_up = all

	[schedule $2]
	cron     = * * * * *
	queue    = tick
	catch_up = last
	EOF
}
write_conf "$T/fcgiq.conf" tick-a
write_conf "$T/b/fcgiq.conf" tick-b

set_clock() {
	date -u -d "$1" +%s000 >"$CLOCK.tmp" && mv "$CLOCK.tmp" "$CLOCK"
}
count() { pg_psql -c "SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'schedule:$1:%'"; }
count_is() { [ "$(count "$1")" = "$2" ]; }
# step TIME N: the clock to TIME, then wait until both hosts' witnesses
# have their Nth job: both helpers have fired every schedule at TIME.
step() {
	set_clock "$1"
	wait_for count_is tick-a "$2" || not_ok "tick-a $2 at $1" "$(count tick-a)"
	wait_for count_is tick-b "$2" || not_ok "tick-b $2 at $1" "$(count tick-b)"
}
ctl() { FCGIQ_TEST_CLOCK=$CLOCK "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }

# --- fcgiq -t
check "fcgiq -t accepts [schedule] and dead_letter_queue on PostgreSQL" \
    "$FCGIQ" -t -c "$T/fcgiq.conf"

# --- host A: nginx, fcgiq and its helper; host B: a helper
set_clock 2026-12-03T09:59:50Z
ctl pause tick >/dev/null || bail "fcgiqctl could not make the schema"
pg_psql -c "INSERT INTO schedules (name, last_slot) VALUES
    ('tick-a', $(date -u -d 2026-12-03T09:58:00Z +%s000)),
    ('tick-b', $(date -u -d 2026-12-03T09:58:00Z +%s000))" ||
    bail "psql: the witnesses' last slots"
export FCGIQ_TEST_CLOCK=$CLOCK
CHILDREN=1 resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"
"$FCGIQ" work -c "$T/b/fcgiq.conf" 2>>"$T/b/work.log" &
HB=$!
track "$HB"
unset FCGIQ_TEST_CLOCK
active() { grep -q 'helper: postgresql:.*: active' "$1"; }
check "host A's helper is active" wait_for active "$T/fcgiq.log"
check "host B's helper is active too (no helper lock on PostgreSQL)" \
    wait_for active "$T/b/work.log"
check "host A's helper went through its schedules" wait_for count_is tick-a 1
check "host B's helper went through its schedules" wait_for count_is tick-b 1

# --- a slot enqueued once and run
step 2026-12-03T10:00:01Z 2
check_eq "the slot: one job, with two helpers" 1 "$(count nightly-report)"
ran() { [ "$(ls "$T/runs" | wc -l)" = "$1" ]; }
check "the handler ran it" wait_for ran 1
check_eq "with the slot and the body" \
    "2026-12-03T10:00:00Z {\"report\":\"hourly\"}" \
    "$(cat "$T"/runs/* | tr '\n' ' ' | sed 's/ $//')"
check_eq "its idempotency key names the slot" \
    "schedule:nightly-report:$(date -u -d 2026-12-03T10:00:00Z +%s000)" \
    "$(pg_psql -c "SELECT idempotency_key FROM jobs WHERE queue = 'reports'")"
done_is() { [ "$(pg_psql -c "SELECT state FROM jobs WHERE queue = 'reports'")" = done ]; }
check "done" wait_for done_is
check "fcgiqctl schedules: the last slot from PostgreSQL, the next run" \
    grep -Eq '^nightly-report +reports +0 \* \* \* \* +local +2026-12-03T10:00:00.000Z 2026-12-03T11:00:00.000Z' \
    <<<"$(ctl schedules)"

# --- both helpers, slot after slot: one job a slot
for m in 01 02 03 04 05 06 07 08; do
	step "2026-12-03T10:$m:01Z" $((10#$m + 2))
done
check_eq "9 slots of minutely: 9 jobs" 9 "$(count minutely)"
check_eq "... each slot once" 9 "$(pg_psql -c "SELECT count(DISTINCT idempotency_key) FROM jobs WHERE idempotency_key LIKE 'schedule:minutely:%'")"
check_eq "... the last slot stored" \
    "$(date -u -d 2026-12-03T10:08:00Z +%s000)" \
    "$(pg_psql -c "SELECT last_slot FROM schedules WHERE name = 'minutely'")"
# A downtime of both hosts' clocks over 3 slots, catch_up = all: 3 jobs,
# not 6.
step 2026-12-03T10:11:01Z 11
check_eq "catch_up = all after 3 missed slots, two helpers: 3 jobs" 12 \
    "$(count minutely)"
check_eq "the nightly report still one job" 1 "$(count nightly-report)"
logged() {
	sed -n 's/.*schedule minutely: \([0-9]*\) jobs* enqueued.*/\1/p' "$@" |
	    awk '{ n += $1 } END { print n + 0 }'
}
echo "# minutely's jobs enqueued by host A: $(logged "$T/fcgiq.log"), by host B: $(logged "$T/b/work.log")"
check_eq "the jobs the helpers logged are the jobs stored" 12 \
    "$(logged "$T/fcgiq.log" "$T/b/work.log")"

# --- a job that dies: one dead letter, which runs
curl -s -X POST -D "$T/h" -o "$T/b.json" --data-binary 'doomed' \
    "$BASE/hooks/x"
check_eq "POST: 202" 202 "$(head -1 "$T/h" | cut -d' ' -f2)"
ID=$(json_field "$T/b.json" id)
dead_is() { [ "$(pg_psql -c "SELECT state FROM jobs WHERE id = '$ID'")" = dead ]; }
check "its two attempts fail: dead" wait_for dead_is
letter_done() { [ "$(pg_psql -c "SELECT state FROM jobs WHERE queue = 'letters'")" = done ]; }
check "its letter in the dead-letter queue runs" wait_for letter_done
check_eq "one letter" 1 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'letters'")"
check_eq "the letter's body, as SQLite's" \
    "{\"job\":\"$ID\",\"queue\":\"default\",\"attempts\":2,\"last_error\":\"exit 1: upstream said no\",\"status_url\":\"/jobs/$ID\"}" \
    "$(pg_psql -c "SELECT convert_from(body, 'UTF8') FROM jobs WHERE queue = 'letters'")"
check "the handler got it" grep -q "\"job\":\"$ID\"" "$T"/letters/*
check_eq "content type application/json" application/json \
    "$(pg_psql -c "SELECT content_type FROM jobs WHERE queue = 'letters'")"

check "no warning about schedules or letters in either log" \
    bash -c "! grep -Eh 'warn' '$T/fcgiq.log' '$T/b/work.log' | grep -Eq 'schedule|letter'"
done_testing
