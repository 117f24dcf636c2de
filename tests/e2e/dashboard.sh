#!/bin/bash
# tests/e2e/dashboard.sh: the dashboard role through a real nginx, on the
# shipped conf-examples/nginx-dashboard.conf (password files substituted)
# inside conf-examples/nginx.conf, fcgiq under conf-examples/spawn-fcgi.sh
# with two responders, driven by curl and checked against sqlite3.
#
# Covers: the page and its assets with the strict Content-Security-Policy,
# nosniff, no inline script or style, under two prefixes; the password
# (nginx's, 401 without it); api/summary's counts, pause flags and the
# per-minute chart equal the database's and the traffic sent; api/jobs
# filtered by queue, state and age equals sqlite3's listing, bounded and
# paged; api/job's detail (body as text, headers); every POST refused with
# 403 (problem+json) and nothing changed when the location is read-only,
# the Origin is another site's, the Origin is absent and Sec-Fetch-Site is
# not same-origin, or the token is missing or wrong; the actions where the
# location allows them: retry and discard one dead job, cancel a waiting
# job, pause and resume a queue, retry and discard every dead job matching
# a filter (1200 jobs: several batches, other queues untouched).
. "$(dirname "$0")/../lib.sh"

for c in nginx spawn-fcgi curl sqlite3 jq openssl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$(dirname "$0")/responder-lib.sh"
. "$(dirname "$0")/dashboard-lib.sh"
dash_start

# get URL [CURL ARGS]: the body, read-write credentials.
get() { local u=$1; shift; curl -s "${AUTH_RW[@]}" "$@" "$u"; }
# code URL [CURL ARGS]: the status only.
code() {
	local u=$1; shift
	curl -s -o /dev/null -w '%{http_code}' "$@" "$u"
}
post() { code "$1" -X POST "${@:2}"; }
# A database fingerprint: what no refused POST may change.
fingerprint() {
	sql "SELECT group_concat(id || state || run_at, ',') FROM
	    (SELECT id, state, run_at FROM jobs ORDER BY seq);
	    SELECT group_concat(name || paused) FROM queues"
}

# --- traffic: 4 ok, 3 dead at once (exit 65), 5 parked
for i in 1 2 3 4; do
	curl -s -o /dev/null -X POST --data-binary "ok $i" \
	    "$BASE/hooks/ok$i?do=true"
done
for i in 1 2 3; do
	curl -s -o /dev/null -X POST --data-binary "<script>alert($i)</script>" \
	    "$BASE/hooks/bad$i?do=exit&n=65"
done
for i in 1 2 3 4 5; do
	"$FCGIQCTL" -c "$T/fcgiq.conf" enqueue parked \
	    <<<"parked $i" >/dev/null || bail "fcgiqctl enqueue failed"
done
settled() {
	[ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'default' AND
	    state IN ('done', 'dead')")" = 7 ]
}
wait_for settled || bail "the default queue's jobs did not finish"

# --- the page
curl -s -D "$T/page.h" -o "$T/page.html" "${AUTH_RO[@]}" "$RO/"
check "GET /fcgiq/ answers 200" grep -q "^HTTP/1.1 200" "$T/page.h"
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
check_eq "the page's Content-Security-Policy" "$CSP" \
    "$(sed -n 's/^Content-Security-Policy: //Ip' "$T/page.h" | tr -d '\r')"
check "the page says nosniff" grep -qi "^X-Content-Type-Options: nosniff" "$T/page.h"
check "the page is text/html" grep -qi "^Content-Type: text/html" "$T/page.h"
check "the page has no inline script" \
    test "$(grep -c '<script>' "$T/page.html")" = 0
check "the page has no inline style" \
    test "$(grep -Ec '<style|style=' "$T/page.html")" = 0
check "the page loads nothing from another host" \
    test "$(grep -Ec '(src|href)="(https?:)?//' "$T/page.html")" = 0
for a in dashboard.js:text/javascript dashboard.css:text/css; do
	curl -s -D "$T/a.h" -o "$T/a.body" "${AUTH_RO[@]}" "$RO/${a%%:*}"
	check "${a%%:*} answers 200 as ${a#*:} with the CSP" sh -c \
	    "grep -q '^HTTP/1.1 200' '$T/a.h' && grep -qi '^Content-Type: ${a#*:}' '$T/a.h' &&
	     grep -qi '^Content-Security-Policy: default-src' '$T/a.h'"
done
check "the script never uses innerHTML" \
    test "$(get "$RW/dashboard.js" | grep -c innerHTML)" = 0
check_eq "without the password nginx answers 401" 401 "$(code "$RO/")"
check_eq "the same page under the actions prefix" \
    "$(md5sum <"$T/page.html")" "$(get "$RW/" | md5sum)"
check_eq "an unknown path under the location is 404" 404 \
    "$(code "$RO/nothing-here" "${AUTH_RO[@]}")"
check_eq "PUT on the page is 405" 405 "$(code "$RO/" -X PUT "${AUTH_RO[@]}")"

# --- summary vs the database
summary() { get "$RW/api/summary"; }
counts_api() {
	summary | jq -r '.queues[] | "\(.name) \(.queued) \(.running) \(.retry) \(.done) \(.dead) \(.cancelled)"'
}
counts_db() {
	local q
	for q in default parked; do
		echo "$q $(sql "SELECT sum(state = 'queued'), sum(state = 'running'),
		    sum(state = 'retry'), sum(state = 'done'), sum(state = 'dead'),
		    sum(state = 'cancelled') FROM jobs WHERE queue = '$q'" | tr '|' ' ')"
	done
}
same_counts() { [ "$(counts_api)" = "$(counts_db)" ]; }
wait_for same_counts
check_eq "api/summary's counts equal sqlite3's" "$(counts_db)" "$(counts_api)"
summary >"$T/s.json"
check_eq "api/summary is never cached" "no-store" \
    "$(curl -s -D - -o /dev/null "${AUTH_RW[@]}" "$RW/api/summary" |
    sed -n 's/^Cache-Control: //Ip' | tr -d '\r')"
check_eq "the chart's intake this hour = jobs enqueued" 12 \
    "$(jq '.minutes.enqueued | add' "$T/s.json")"
check_eq "the chart's completions this hour" "4 3" \
    "$(jq -r '"\(.minutes.done | add) \(.minutes.failed | add)"' "$T/s.json")"
check_eq "the chart spans 60 minutes" "60 60 60" \
    "$(jq -r '.minutes | "\(.enqueued | length) \(.done | length) \(.failed | length)"' "$T/s.json")"
check_eq "done per minute of default" 4 \
    "$(jq -r '.queues[] | select(.name == "default") | .done_per_min | floor' "$T/s.json")"
check "oldest waiting of parked is set" \
    jq -e '.queues[] | select(.name == "parked") | .oldest_waiting_s >= 0' "$T/s.json"
check_eq "the actions location gives a token" 64 \
    "$(jq -r '.token | length' "$T/s.json")"
check_eq "the read-only location gives none" "false null" \
    "$(curl -s "${AUTH_RO[@]}" "$RO/api/summary" | jq -r '"\(.actions) \(.token)"')"
TOKEN=$(jq -r .token "$T/s.json")

# --- listings
list_api() { get "$RW/api/jobs?$1" | jq -r '.jobs[].id'; }
check_eq "dead jobs of default, newest death first" \
    "$(sql "SELECT id FROM jobs WHERE queue = 'default' AND state = 'dead'
        ORDER BY finished_at DESC")" "$(list_api 'queue=default&state=dead')"
check_eq "queued jobs of parked, in claim order" \
    "$(sql "SELECT id FROM jobs WHERE queue = 'parked' AND state = 'queued'
        ORDER BY priority DESC, run_at, seq")" "$(list_api 'queue=parked&state=queued')"
check_eq "every job, newest first" \
    "$(sql "SELECT id FROM jobs ORDER BY seq DESC")" "$(list_api '')"
check_eq "older than an hour: none" "" "$(list_api 'age=3600')"
check_eq "an unknown queue is 400" 400 "$(code "$RW/api/jobs?queue=nope" "${AUTH_RW[@]}")"
check_eq "an unknown state is 400" 400 "$(code "$RW/api/jobs?state=nope" "${AUTH_RW[@]}")"
check_eq "a page past the bound is 400" 400 "$(code "$RW/api/jobs?page=100000" "${AUTH_RW[@]}")"
DEAD1=$(sql "SELECT id FROM jobs WHERE queue = 'default' AND state = 'dead'
    ORDER BY seq LIMIT 1")
get "$RW/api/job?id=$DEAD1" >"$T/j.json"
check_eq "api/job: the body as text" "<script>alert(1)</script>" \
    "$(jq -r .body "$T/j.json")"
check_eq "api/job: state, attempts, last_error" "dead 1 exit 65 (data error): exit 65 requested" \
    "$(jq -r '"\(.state) \(.attempts) \(.last_error)"' "$T/j.json" | tr -d '\n')"
check "api/job: the request's headers" \
    jq -e '.headers | has("HTTP_USER_AGENT") or has("User-Agent") or length > 0' "$T/j.json"
check_eq "api/job: an unknown id is 404" 404 \
    "$(code "$RW/api/job?id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "${AUTH_RW[@]}")"

# --- refused POSTs: 403, problem+json, nothing changed
before=$(fingerprint)
act_url="$RW/api/action?op=retry&id=$DEAD1"
refused() {
	local name=$1 url=$2; shift 2
	curl -s -D "$T/r.h" -o "$T/r.body" -X POST "$@" "$url"
	check_eq "$name: 403" 403 "$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$T/r.h")"
	check "$name: problem+json" grep -qi "^Content-Type: application/problem+json" "$T/r.h"
}
refused "read-only location, same origin and token" \
    "$RO/api/action?op=retry&id=$DEAD1" "${AUTH_RO[@]}" \
    -H "Origin: $ORIGIN" -H "X-Fcgiq-Token: $TOKEN"
refused "read-only location, POST on the page" "$RO/" "${AUTH_RO[@]}" \
    -H "Origin: $ORIGIN"
refused "another site's Origin" "$act_url" "${AUTH_RW[@]}" \
    -H "Origin: http://evil.example" -H "X-Fcgiq-Token: $TOKEN"
refused "Origin null" "$act_url" "${AUTH_RW[@]}" \
    -H "Origin: null" -H "X-Fcgiq-Token: $TOKEN"
refused "same host, other scheme" "$act_url" "${AUTH_RW[@]}" \
    -H "Origin: https://${BASE#http://}" -H "X-Fcgiq-Token: $TOKEN"
refused "no Origin, cross-site Sec-Fetch-Site" "$act_url" "${AUTH_RW[@]}" \
    -H "Sec-Fetch-Site: cross-site" -H "X-Fcgiq-Token: $TOKEN"
refused "no Origin, no Sec-Fetch-Site" "$act_url" "${AUTH_RW[@]}" \
    -H "X-Fcgiq-Token: $TOKEN"
refused "same origin, no token" "$act_url" "${AUTH_RW[@]}" -H "Origin: $ORIGIN"
refused "same origin, wrong token" "$act_url" "${AUTH_RW[@]}" \
    -H "Origin: $ORIGIN" -H "X-Fcgiq-Token: $(printf '%s' "$TOKEN" | tr 0-9a-f 1-9a-f0)"
refused "a form's POST (token in the body)" "$act_url" "${AUTH_RW[@]}" \
    -H "Origin: http://evil.example" --data "token=$TOKEN"
refused "bulk retry from another site" \
    "$RW/api/action?op=retry-dead" "${AUTH_RW[@]}" \
    -H "Origin: http://evil.example" -H "X-Fcgiq-Token: $TOKEN"
check_eq "without the password nginx refuses the POST (401)" 401 \
    "$(post "$act_url" -H "Origin: $ORIGIN" -H "X-Fcgiq-Token: $TOKEN")"
check_eq "nothing changed by the refused POSTs" "$before" "$(fingerprint)"

# --- actions
act() {
	curl -s -o "$T/act.json" -w '%{http_code}' -X POST "${AUTH_RW[@]}" \
	    -H "Origin: $ORIGIN" -H "X-Fcgiq-Token: $TOKEN" "$RW/api/action?$1"
}
state_of() { sql "SELECT state FROM jobs WHERE id = '$1'"; }
PARKED_DEAD=$(sql "SELECT id FROM jobs WHERE queue = 'parked' ORDER BY seq LIMIT 1")
sql "UPDATE jobs SET state = 'dead', finished_at = 1000, attempts = 3,
    max_attempts = 3 WHERE id = '$PARKED_DEAD'"
check_eq "retry one dead job: 200" 200 "$(act "op=retry&id=$PARKED_DEAD")"
check_eq "the job is queued again" queued "$(state_of "$PARKED_DEAD")"
check_eq "with one more attempt" 4 \
    "$(sql "SELECT max_attempts FROM jobs WHERE id = '$PARKED_DEAD'")"
check_eq "retry of a queued job: 409" 409 "$(act "op=retry&id=$PARKED_DEAD")"
check_eq "same-origin by Sec-Fetch-Site alone (no Origin) is allowed" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "${AUTH_RW[@]}" \
    -H "Sec-Fetch-Site: same-origin" -H "X-Fcgiq-Token: $TOKEN" \
    "$RW/api/action?op=cancel&id=$PARKED_DEAD")"
check_eq "cancel: the waiting job is cancelled" cancelled "$(state_of "$PARKED_DEAD")"
check_eq "cancel of a cancelled job: 409" 409 "$(act "op=cancel&id=$PARKED_DEAD")"
check_eq "discard of a job that is not dead: 409" 409 \
    "$(act "op=discard&id=$PARKED_DEAD")"
DEAD2=$(sql "SELECT id FROM jobs WHERE queue = 'default' AND state = 'dead'
    ORDER BY seq LIMIT 1 OFFSET 1")
check_eq "discard one dead job: 200" 200 "$(act "op=discard&id=$DEAD2")"
check_eq "the dead job is gone" 0 "$(sql "SELECT count(*) FROM jobs WHERE id = '$DEAD2'")"
check_eq "discard of an unknown job: 404" 404 "$(act "op=discard&id=$DEAD2")"
check_eq "pause parked: 200" 200 "$(act "op=pause&queue=parked")"
check_eq "parked is paused in the database" 1 \
    "$(sql "SELECT paused FROM queues WHERE name = 'parked'")"
paused_api() {
	get "$RW/api/summary" | jq -r '.queues[] | select(.name == "parked") | .paused'
}
check_eq "api/summary shows it paused" true "$(paused_api)"
check_eq "resume parked: 200" 200 "$(act "op=resume&queue=parked")"
check_eq "parked runs again" 0 "$(sql "SELECT paused FROM queues WHERE name = 'parked'")"
check_eq "pause of an unknown queue: 404" 404 "$(act "op=pause&queue=nope")"
check_eq "an unknown op: 400" 400 "$(act "op=explode&id=$DEAD1")"
check_eq "GET on api/action: 405" 405 "$(code "$RW/api/action?op=retry&id=$DEAD1" "${AUTH_RW[@]}")"

# Every dead job matching a filter: 1200 dead jobs of parked (three
# batches), of which 200 died two hours ago; default's dead stay dead.
old=$(( $(date +%s) * 1000 - 7200 * 1000 ))
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
    INSERT INTO jobs (id, queue, state, attempts, max_attempts, created_at,
        run_at, finished_at, body, last_error)
    SELECT printf('bulk%026d', i), 'parked', 'dead', 1, 1, $old, $old,
        CASE WHEN i <= 200 THEN $old ELSE $old + 7000000 END, x'00', 'x'
    FROM n"
dead_default=$(sql "SELECT count(*) FROM jobs WHERE queue = 'default' AND state = 'dead'")
check_eq "discard dead of parked older than 1 h: 200" 200 \
    "$(act "op=discard-dead&queue=parked&age=3600")"
check_eq "200 discarded" 200 "$(jq .changed "$T/act.json")"
check_eq "1000 dead left in parked" 1000 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'parked' AND state = 'dead'")"
check_eq "retry every dead job of parked: 200" 200 \
    "$(act "op=retry-dead&queue=parked")"
check_eq "1000 retried" 1000 "$(jq .changed "$T/act.json")"
check_eq "none dead left in parked" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'parked' AND state = 'dead'")"
check_eq "default's dead jobs untouched" "$dead_default" \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'default' AND state = 'dead'")"
check "the bulk retry went in batches" \
    grep -q "dashboard: retry-dead parked: 1000 jobs" "$T/fcgiq.log"
check_eq "a bulk action with a bad filter: 400" 400 \
    "$(act "op=retry-dead&queue=nope")"

# The listing stays bounded: 1000 queued in parked, pages of 50.
get "$RW/api/jobs?queue=parked&state=queued&page=1" >"$T/p.json"
check_eq "page 2 of parked's queue: 50 jobs, more to come" "50 true" \
    "$(jq -r '"\(.jobs | length) \(.more)"' "$T/p.json")"
check_eq "page 2 is the 51st to 100th in claim order" \
    "$(sql "SELECT id FROM jobs WHERE queue = 'parked' AND state = 'queued'
        ORDER BY priority DESC, run_at, seq LIMIT 50 OFFSET 50")" \
    "$(jq -r '.jobs[].id' "$T/p.json")"

check "fcgiq logged no warning" sh -c "! grep -E 'warn|fatal' '$T/fcgiq.log'"
done_testing
