#!/bin/bash
# tests/e2e/pg-dashboard.sh: the metrics and the dashboard on PostgreSQL,
# as two hosts behind a load balancer run them — a private cluster
# (tests/pg-lib.sh) and, per host, its own run directory, configuration
# (its own metrics_file), spawn-fcgi -F 2 fcgiq (two responders, two
# helpers) and nginx with the shipped conf-examples/nginx-dashboard.conf
# (dashboard-lib.sh).
#
# Covers: one scrape of a host sums its processes' counters (the 202s of
# its responders, the outcomes its helpers counted, fcgiqctl's enqueues),
# ten scrapes give one sum, and the two hosts' sums add up to the
# traffic; fcgiq_jobs equals the database; a second installation that
# names a host's metrics_file is refused with a warning; the dashboard's
# counts and listings equal psql's; both hosts give the same action token
# (the key is in the database, one row); a page read from host A posts a
# retry to host B (the load balancer's Host): the dead job is queued again;
# a cross-site POST and a wrong token are refused on both hosts, nothing
# changed; discard and the bulk retry of dead jobs.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl jq openssl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$top_srcdir/tests/e2e/responder-lib.sh"
. "$top_srcdir/tests/e2e/dashboard-lib.sh"

pg_start
DB=$PG_URI

# --- host A: dash_start in $T; host B: the same in $T/b, its own file
DASH_FCGIQ_EXTRA="metrics_file = $T/var/metrics"
dash_start
A_BASE=$BASE
A_PIDS=$FCGIQ_PIDS
TA=$T
mkdir -p "$TA/b/var"
sed "s|^metrics_file = .*|metrics_file = $TA/b/var/metrics|" \
    "$TA/fcgiq.conf" >"$TA/b/fcgiq.conf"
T=$TA/b SOCK=$TA/b/fcgiq.sock
: >"$T/extra-locations.conf"
cp "$TA/extra-locations.conf" "$T/extra-locations.conf"
resp_spawn || { T=$TA; bail "host B's fcgiq did not start"; }
# Behind one load balancer both hosts see its Host and port: host B
# listens on A's port, on another address.
RESP_LISTEN=127.0.0.2:${A_BASE##*:} resp_nginx ||
    { T=$TA; bail "host B's nginx did not start"; }
T=$TA SOCK=$TA/fcgiq.sock
B_BASE=$BASE
B_PIDS=$FCGIQ_PIDS
BASE=$A_BASE
check_eq "two responders on each host" "2 2" \
    "$(echo $A_PIDS | wc -w) $(echo $B_PIDS | wc -w)"

ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
psql1() { pg_psql -c "$1"; }

# --- traffic: on A 4 ok and 3 dead at once (exit 65), on B 2 ok; 5
# parked (no handler) enqueued by fcgiqctl on A
for i in 1 2 3 4; do
	curl -s -o /dev/null -X POST --data-binary "ok $i" "$A_BASE/hooks/ok$i?do=true"
done
for i in 1 2 3; do
	curl -s -o /dev/null -X POST --data-binary "<script>alert($i)</script>" \
	    "$A_BASE/hooks/bad$i?do=exit&n=65"
done
for i in 1 2; do
	curl -s -o /dev/null -X POST --data-binary "b $i" "$B_BASE/hooks/b$i?do=true"
done
for i in 1 2 3 4 5; do
	ctl enqueue parked <<<"parked $i" >/dev/null || bail "fcgiqctl enqueue failed"
done
settled() {
	[ "$(psql1 "SELECT count(*) FROM jobs WHERE queue = 'default' AND
	    state IN ('done', 'dead')")" = 9 ]
}
wait_for settled || bail "the default queue's jobs did not finish"

# --- metrics: one scrape sums a host's processes
metric() {
	printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 + 0; f = 1 }
	    END { if (!f) print "absent" }'
}
scrape() { curl -s "$1/metrics"; }
outcomes_counted() {
	local a b
	a=$(metric "$(scrape "$A_BASE")" 'fcgiq_jobs_finished_total{queue="default",outcome="done"}')
	b=$(metric "$(scrape "$B_BASE")" 'fcgiq_jobs_finished_total{queue="default",outcome="done"}')
	[ "${a/absent/0}" -ge 0 ] 2>/dev/null && [ "${b/absent/0}" -ge 0 ] 2>/dev/null &&
	    [ $(( ${a/absent/0} + ${b/absent/0} )) = 6 ]
}
check "the done jobs counted by the four helpers add up to 6 over both hosts" \
    wait_for outcomes_counted
s=$(scrape "$A_BASE")
if command -v promtool >/dev/null; then
	check "promtool check metrics passes on a scrape" \
	    sh -c "printf '%s\n' \"\$1\" | promtool check metrics >'$T/promtool.out' 2>&1" _ "$s"
fi
check_eq "host A: the 202s of both its responders" 7 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="202"}')"
check_eq "host A: jobs enqueued in default" 7 \
    "$(metric "$s" 'fcgiq_jobs_enqueued_total{queue="default"}')"
check_eq "host A: fcgiqctl's enqueues (another process) counted" 5 \
    "$(metric "$s" 'fcgiq_jobs_enqueued_total{queue="parked"}')"
check_eq "host A: the intake histogram counts the 202s" 7 \
    "$(metric "$s" 'fcgiq_intake_duration_seconds_count')"
a_dead=$(metric "$s" 'fcgiq_jobs_finished_total{queue="default",outcome="dead"}')
b_dead=$(metric "$(scrape "$B_BASE")" 'fcgiq_jobs_finished_total{queue="default",outcome="dead"}')
check_eq "the dead jobs counted by the helpers of both hosts: 3" 3 \
    "$(( ${a_dead/absent/0} + ${b_dead/absent/0} ))"
agree=""
for i in $(seq 10); do
	agree="$agree$(metric "$(scrape "$A_BASE")" 'fcgiq_http_requests_total{code="202"}') "
done
check_eq "host A: ten scrapes (either responder), one sum" \
    "7 7 7 7 7 7 7 7 7 7 " "$agree"
check_eq "host B: its own 202s only" 2 \
    "$(metric "$(scrape "$B_BASE")" 'fcgiq_http_requests_total{code="202"}')"
check_eq "fcgiqctl stats --prometheus reads host A's file" 7 \
    "$(metric "$(ctl stats --prometheus)" 'fcgiq_http_requests_total{code="202"}')"
jobs_in() {
	psql1 "SELECT count(*) FROM jobs WHERE queue = '$1' AND state = '$2'"
}
gauges_current() {
	local s q st
	s=$(scrape "$A_BASE")
	for q in default parked; do
		for st in queued running retry done dead cancelled; do
			[ "$(metric "$s" "fcgiq_jobs{queue=\"$q\",state=\"$st\"}")" = \
			    "$(jobs_in "$q" "$st")" ] || return 1
		done
	done
}
check "fcgiq_jobs equals the database for every queue and state" \
    wait_for gauges_current
check "each host has its own file" test -s "$T/var/metrics" -a -s "$T/b/var/metrics"

# fcgiq_helper_up is a host's: its helpers hold METRICS_FILE-helper.lock
# shared.  Host A's run; a third configuration with a file of its own has
# none until `fcgiq work` runs on it, and none again once it stopped.
check_eq "host A: fcgiq_helper_up 1" 1 \
    "$(metric "$(scrape "$A_BASE")" fcgiq_helper_up)"
sed "s|^metrics_file = .*|metrics_file = $T/d-metrics|" "$T/b/fcgiq.conf" \
    >"$T/d.conf"
dup() { metric "$("$FCGIQCTL" -c "$T/d.conf" stats --prometheus)" fcgiq_helper_up; }
check_eq "a host without a helper: fcgiq_helper_up 0" 0 "$(dup)"
"$FCGIQ" work -c "$T/d.conf" 2>"$T/d.log" &
D_PID=$!
track $D_PID
d_up() { [ "$(dup)" = 1 ]; }
check "... 1 while fcgiq work runs there" wait_for d_up
stop_pid $D_PID
check_eq "... 0 once it stopped" 0 "$(dup)"

# A second installation (another configuration) naming host A's file is
# refused, and counts on its own.
sed "s|^metrics_file = .*|metrics_file = $T/var/metrics|" "$T/b/fcgiq.conf" \
    >"$T/c.conf"
"$FCGIQ" work -c "$T/c.conf" 2>"$T/c.log" &
C_PID=$!
track $C_PID
check "another installation naming host A's metrics_file is refused" \
    wait_for grep -q "metrics file of another installation ($T/fcgiq.conf " "$T/c.log"
stop_pid $C_PID
check_eq "... and host A's sums are untouched" 7 \
    "$(metric "$(scrape "$A_BASE")" 'fcgiq_http_requests_total{code="202"}')"

# --- the dashboard: summary and listings equal the database
get() { local u=$1; shift; curl -s "${AUTH_RW[@]}" "$@" "$u"; }
counts_api() {
	get "$1/fcgiq-admin/api/summary" | jq -r '.queues[] | "\(.name) \(.queued) \(.running) \(.retry) \(.done) \(.dead) \(.cancelled)"'
}
counts_db() {
	local q
	for q in default parked; do
		echo "$q $(psql1 "SELECT count(*) FILTER (WHERE state = 'queued'),
		    count(*) FILTER (WHERE state = 'running'),
		    count(*) FILTER (WHERE state = 'retry'),
		    count(*) FILTER (WHERE state = 'done'),
		    count(*) FILTER (WHERE state = 'dead'),
		    count(*) FILTER (WHERE state = 'cancelled')
		    FROM jobs WHERE queue = '$q'" | tr '|' ' ')"
	done
}
same_counts() { [ "$(counts_api "$1")" = "$(counts_db)" ]; }
wait_for same_counts "$A_BASE"
check_eq "host A: api/summary's counts equal psql's" "$(counts_db)" \
    "$(counts_api "$A_BASE")"
wait_for same_counts "$B_BASE"
check_eq "host B: the same" "$(counts_db)" "$(counts_api "$B_BASE")"
list_api() { get "$1/fcgiq-admin/api/jobs?$2" | jq -r '.jobs[].id'; }
check_eq "dead jobs of default, newest death first" \
    "$(psql1 "SELECT id FROM jobs WHERE queue = 'default' AND state = 'dead'
        ORDER BY finished_at DESC")" "$(list_api "$A_BASE" 'queue=default&state=dead')"
check_eq "queued jobs of parked, in claim order" \
    "$(psql1 "SELECT id FROM jobs WHERE queue = 'parked' AND state = 'queued'
        ORDER BY priority DESC, run_at, seq")" \
    "$(list_api "$B_BASE" 'queue=parked&state=queued')"
check_eq "every job, newest first" \
    "$(psql1 "SELECT id FROM jobs ORDER BY seq DESC")" "$(list_api "$A_BASE" '')"
check_eq "done jobs: the database's (listed newest finished first)" \
    "$(psql1 "SELECT id FROM jobs WHERE state = 'done' ORDER BY id")" \
    "$(list_api "$A_BASE" 'state=done' | sort)"
check_eq "done jobs: as many as psql counts" "$(jobs_in default done)" \
    "$(list_api "$A_BASE" 'state=done' | wc -l)"
check_eq "older than an hour: none" "" "$(list_api "$A_BASE" 'age=3600')"
DEAD1=$(psql1 "SELECT id FROM jobs WHERE queue = 'default' AND state = 'dead'
    ORDER BY seq LIMIT 1")
check_eq "api/job: the body as text, from PostgreSQL" "<script>alert(1)</script>" \
    "$(get "$B_BASE/fcgiq-admin/api/job?id=$DEAD1" | jq -r .body)"

# --- the token: one key in the database, the same token on both hosts
TOKEN=$(get "$A_BASE/fcgiq-admin/api/summary" | jq -r .token)
check_eq "host A gives a token" 64 "${#TOKEN}"
check_eq "host B gives the same token" "$TOKEN" \
    "$(get "$B_BASE/fcgiq-admin/api/summary" | jq -r .token)"
check_eq "one key, in the database" 1 \
    "$(psql1 "SELECT count(*) FROM fcgiq_keys WHERE name = 'dashboard'")"
check "no key file named after the URI" \
    test -z "$(find "$T" -name '*dashboard-key*' | head -1)"

# --- refused POSTs, on both hosts: 403 and nothing changed
fingerprint() {
	psql1 "SELECT string_agg(id || state || run_at, ',' ORDER BY seq) FROM jobs;
	    SELECT string_agg(name || paused, ',' ORDER BY name) FROM queues"
}
PARKED1=$(psql1 "SELECT id FROM jobs WHERE queue = 'parked' ORDER BY seq LIMIT 1")
psql1 "UPDATE jobs SET state = 'dead', finished_at = 1000, attempts = 3,
    max_attempts = 3 WHERE id = '$PARKED1'"
before=$(fingerprint)
A_HOST=${A_BASE#http://}
# post BASE ARGS: a POST of $ACT's status; Host is host A's, as a load
# balancer in front of both would pass it.
post() {
	local b=$1; shift
	curl -s -o "$T/act.json" -w '%{http_code}' -X POST "${AUTH_RW[@]}" \
	    -H "Host: $A_HOST" "$@" "$b/fcgiq-admin/api/action?$ACT"
}
ACT="op=retry&id=$PARKED1"
for h in A B; do
	[ $h = A ] && b=$A_BASE || b=$B_BASE
	check_eq "host $h: another site's Origin: 403" 403 \
	    "$(post "$b" -H "Origin: http://evil.example" -H "X-Fcgiq-Token: $TOKEN")"
	check_eq "host $h: a form's cross-site POST: 403" 403 \
	    "$(post "$b" -H "Origin: http://evil.example" --data "token=$TOKEN")"
	check_eq "host $h: same origin, wrong token: 403" 403 \
	    "$(post "$b" -H "Origin: $A_BASE" \
	    -H "X-Fcgiq-Token: $(printf '%s' "$TOKEN" | tr 0-9a-f 1-9a-f0)")"
	check_eq "host $h: the read-only location: 403" 403 \
	    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "${AUTH_RO[@]}" \
	    -H "Host: $A_HOST" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN" \
	    "$b/fcgiq/api/action?$ACT")"
done
check_eq "nothing changed by the refused POSTs" "$before" "$(fingerprint)"

# --- actions: the page of host A, the POST to host B
check_eq "retry of a dead job, token of host A, POSTed to host B: 200" 200 \
    "$(post "$B_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "the dead job is queued again, in PostgreSQL" "queued 4" \
    "$(psql1 "SELECT state, max_attempts FROM jobs WHERE id = '$PARKED1'" | tr '|' ' ')"
check_eq "retry of a queued job: 409" 409 \
    "$(post "$A_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check "host B logged the retry" grep -q "dashboard: retry $PARKED1" "$T/b/fcgiq.log"
ACT="op=discard&id=$DEAD1"
check_eq "discard one dead job (host A): 200" 200 \
    "$(post "$A_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "the dead job is gone" 0 "$(psql1 "SELECT count(*) FROM jobs WHERE id = '$DEAD1'")"
check_eq "discard it again: 404" 404 \
    "$(post "$B_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
ACT="op=cancel&id=$PARKED1"
check_eq "cancel the waiting job (host B): 200" 200 \
    "$(post "$B_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "cancelled" cancelled "$(psql1 "SELECT state FROM jobs WHERE id = '$PARKED1'")"
ACT="op=pause&queue=parked"
check_eq "pause parked (host B): 200" 200 \
    "$(post "$B_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
paused_api() {
	[ "$(get "$A_BASE/fcgiq-admin/api/summary" |
	    jq -r '.queues[] | select(.name == "parked") | .paused')" = true ]
}
check "host A's summary shows it paused" paused_api
ACT="op=resume&queue=parked"
check_eq "resume parked (host A): 200" 200 \
    "$(post "$A_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"

# Every dead job of parked, 1200 of them (three batches), 200 of them
# dead two hours ago; default's dead stay dead.
old=$(( $(date +%s) * 1000 - 7200 * 1000 ))
psql1 "INSERT INTO jobs (id, queue, state, attempts, max_attempts, created_at,
        run_at, finished_at, body, last_error)
    SELECT 'bulk' || lpad(i::text, 26, '0'), 'parked', 'dead', 1, 1, $old, $old,
        CASE WHEN i <= 200 THEN $old ELSE $old + 7000000 END, '\\x00', 'x'
    FROM generate_series(1, 1200) i"
dead_default=$(jobs_in default dead)
ACT="op=discard-dead&queue=parked&age=3600"
check_eq "discard dead of parked older than 1 h: 200" 200 \
    "$(post "$B_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "200 discarded" 200 "$(jq .changed "$T/act.json")"
ACT="op=retry-dead&queue=parked"
check_eq "retry every dead job of parked: 200" 200 \
    "$(post "$A_BASE" -H "Origin: $A_BASE" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "1000 retried" 1000 "$(jq .changed "$T/act.json")"
check_eq "none dead left in parked" 0 "$(jobs_in parked dead)"
check_eq "default's dead jobs untouched" "$dead_default" "$(jobs_in default dead)"
get "$B_BASE/fcgiq-admin/api/jobs?queue=parked&state=queued&page=1" >"$T/p.json"
check_eq "page 2 of parked's queue: 50 jobs, more to come" "50 true" \
    "$(jq -r '"\(.jobs | length) \(.more)"' "$T/p.json")"
check_eq "page 2 is the 51st to 100th in claim order" \
    "$(psql1 "SELECT id FROM jobs WHERE queue = 'parked' AND state = 'queued'
        ORDER BY priority DESC, run_at, seq LIMIT 50 OFFSET 50")" \
    "$(jq -r '.jobs[].id' "$T/p.json")"

check "no warning in either host's log" \
    sh -c "! grep -Eh 'warn|fatal' '$T/fcgiq.log' '$T/b/fcgiq.log'"
done_testing
