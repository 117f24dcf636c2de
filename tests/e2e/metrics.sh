#!/bin/bash
# tests/e2e/metrics.sh: the metrics role and dead letters as an operator
# runs them — nginx (the shipped conf-examples/nginx.conf, whose
# `location = /metrics` sets FCGIQ_ROLE metrics) in front of fcgiq under
# spawn-fcgi -F 2 (conf-examples/spawn-fcgi.sh), and a real Prometheus
# (Debian's prometheus, on the shipped conf-examples/prometheus/ files)
# scraping it every second on a private port, queried through its HTTP
# API.
#
# Covers: a scrape passes promtool check metrics; the counters are the
# sum over both responders and the helper (requests sent = requests
# counted, jobs enqueued and finished by outcome); the gauges equal the
# database's counts; Prometheus's own view (/api/v1/query) of the same;
# the helper's lock seen as fcgiq_helper_up; POST on /metrics is 405; the
# alerting rules load; fcgiqctl stats --prometheus prints the same families;
# dead letters: a dead job enqueues one JSON letter in the same transaction,
# and a dead letter that dies itself enqueues none; fcgiqctl's enqueue and
# cancel and the status API's DELETE counted.
. "$(dirname "$0")/../lib.sh"

for c in nginx spawn-fcgi curl sqlite3 prometheus promtool; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"

DB=$T/var/q.db
SOCK=$T/run/fcgiq.sock
ST=$T/state
H=$T/handlers
mkdir -p "$T/var" "$T/run" "$ST" "$H"
cp "$top_srcdir/tests/handlers/dispatch.sh" "$H/"
PORT=$(free_port)
PPORT=$(free_port)
URL=http://127.0.0.1:$PORT
PROM=http://127.0.0.1:$PPORT

# The letters' handler: keeps the letter as its result, or dies (exit 65)
# when the letter is about a job whose body asked for it.
cat >"$H/letter.sh" <<'EOS'
#!/bin/sh
body=$(cat)
case $body in *'"queue":"mail"'*) echo "letters die too" >&2; exit 65 ;; esac
printf '%s' "$body"
EOS
chmod +x "$H/letter.sh"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
log_file = $T/fcgiq.log
dead_letter_queue = alerts

[queue default]
handler      = exec:$H/dispatch.sh $ST
user         = root
concurrency  = 2
max_attempts = 2
backoff      = 50ms..100ms

[queue mail]
handler      = exec:$H/dispatch.sh $ST
user         = root
max_attempts = 1

[queue alerts]
handler      = exec:$H/letter.sh
user         = root
max_attempts = 1
EOF

sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
    -e "s|^user www-data;|user root;|" \
    "$top_srcdir/conf-examples/nginx.conf" >"$T/nginx.conf"
cp /etc/nginx/fastcgi_params "$T/"
start_nginx "$T/nginx.conf" || bail "nginx did not start"

out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf FCGIQ_BIN=$FCGIQ \
    FCGIQ_CHILDREN=2 sh "$top_srcdir/conf-examples/spawn-fcgi.sh" \
    2>>"$T/spawn-fcgi.log") || bail "spawn-fcgi failed"
FCGIQ_PIDS=$(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p')
for p in $FCGIQ_PIDS; do track "$p"; done
check_eq "spawn-fcgi started two responders" 2 "$(echo $FCGIQ_PIDS | wc -w)"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
post() {
	curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary x "$URL$1"
}
scrape() { curl -s "$URL/metrics"; }
# metric TEXT NAME{LABELS}: the value of one sample of a scrape.
metric() {
	printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 + 0; f = 1 }
	    END { if (!f) print "absent" }'
}
# Polls for up to 60 s (Prometheus starts in a few seconds here, slower on
# a loaded machine): wait_for's 10 s is too short for it.
wait_long() {
	local i
	for i in $(seq 600); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
jobs_in() {
	sql "SELECT count(*) FROM jobs WHERE queue = '$1' AND state = '$2'"
}
wake_bound() {
	local n
	n=$(stat -c '%d %i' "$1" 2>/dev/null) || return 1
	set -- $n
	grep -q "@fcgiq-wake-$(printf '%x-%x' "$1" "$2")\$" /proc/net/unix
}
wait_for wake_bound "$DB" || bail "no helper became active"

# --- traffic: 6 intakes, 2 status misses, 1 refused method
codes=""
for i in 1 2 3 4 5; do codes="$codes $(post "/hooks/ok$i?do=true")"; done
codes="$codes $(post "/mail/x?do=exit&n=65")"
check_eq "six intakes answered 202" " 202 202 202 202 202 202" "$codes"
for i in 1 2; do
	curl -s -o /dev/null "$URL/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
done
check_eq "POST on the metrics location is 405" 405 "$(post /metrics)"
# 5 done, the mail job dead, its letter dead (the letters' handler fails
# those about mail), and no letter about that letter: 7 jobs.
all_finished() {
	[ "$(sql "SELECT count(*) FROM jobs WHERE state IN ('done', 'dead')")" = 7 ]
}
check "every job and letter finished" wait_long all_finished

# --- one scrape, as nginx serves it
hdr=$(curl -s -D - -o "$T/scrape.txt" "$URL/metrics")
check "the scrape is the text exposition format" \
    grep -qi '^content-type: text/plain; version=0.0.4' <<<"$hdr"
check "promtool check metrics passes on a scrape" \
    sh -c "promtool check metrics <'$T/scrape.txt' >'$T/promtool.out' 2>&1"
counts_current() {
	local s
	s=$(scrape)
	[ "$(metric "$s" 'fcgiq_jobs{queue="default",state="done"}')" = 5 ] &&
	    [ "$(metric "$s" 'fcgiq_jobs{queue="alerts",state="dead"}')" = 1 ]
}
check "the counts catch up within a second or so" wait_for counts_current
s=$(scrape)
for q in default mail alerts; do
	for st in queued running retry done dead cancelled; do
		got=$(metric "$s" "fcgiq_jobs{queue=\"$q\",state=\"$st\"}")
		[ "$got" = "$(jobs_in "$q" "$st")" ] ||
		    echo "# fcgiq_jobs{$q,$st}: $got, database $(jobs_in "$q" "$st")"
	done
done >"$T/mismatch"
check_eq "fcgiq_jobs equals the database for every queue and state" "" \
    "$(cat "$T/mismatch")"
check_eq "202s counted over both responders" 6 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="202"}')"
check_eq "404s counted" 2 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="404"}')"
check_eq "405 counted" 1 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="405"}')"
check_eq "jobs enqueued in default" 5 \
    "$(metric "$s" 'fcgiq_jobs_enqueued_total{queue="default"}')"
check_eq "done counted by the helper" 5 \
    "$(metric "$s" 'fcgiq_jobs_finished_total{queue="default",outcome="done"}')"
check_eq "dead counted by the helper" 1 \
    "$(metric "$s" 'fcgiq_jobs_finished_total{queue="mail",outcome="dead"}')"
check_eq "every start observed" 5 \
    "$(metric "$s" 'fcgiq_job_queue_seconds_count{queue="default"}')"
check_eq "intake durations observed for the 202s" 6 \
    "$(metric "$s" 'fcgiq_intake_duration_seconds_count')"
check_eq "commit batches hold the six jobs" 6 \
    "$(metric "$s" 'fcgiq_commit_batch_size_sum')"
check_eq "the helper's lock is held" 1 "$(metric "$s" fcgiq_helper_up)"
# Whichever responder serves the scrape (nginx spreads its connections
# over both), it answers for both.
agree=""
for i in $(seq 10); do
	agree="$agree$(metric "$(scrape)" 'fcgiq_http_requests_total{code="202"}') "
done
check_eq "ten scrapes, one sum" "6 6 6 6 6 6 6 6 6 6 " "$agree"
check_eq "nothing waits: past due is 0" 0 \
    "$(metric "$s" 'fcgiq_queue_past_due_seconds{queue="default"}')"

# --- dead letters
dead_id=$(sql "SELECT id FROM jobs WHERE queue = 'mail' AND state = 'dead'")
check_eq "one letter, none for the letter that died" 1 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'alerts'")"
check_eq "the letter names the dead job" \
    "$dead_id|mail|1|/jobs/$dead_id|application/json" \
    "$(sql "SELECT json_extract(CAST(body AS TEXT), '\$.job'),
	json_extract(CAST(body AS TEXT), '\$.queue'),
	json_extract(CAST(body AS TEXT), '\$.attempts'),
	json_extract(CAST(body AS TEXT), '\$.status_url'), content_type
	FROM jobs WHERE queue = 'alerts'")"
check_eq "the letter carries last_error" \
    "$(sql "SELECT last_error FROM jobs WHERE id = '$dead_id'")" \
    "$(sql "SELECT json_extract(CAST(body AS TEXT), '\$.last_error')
	FROM jobs WHERE queue = 'alerts'")"

# --- Prometheus, on the shipped files
sed -e "s|scrape_interval: 15s|scrape_interval: 1s|" \
    -e "s|evaluation_interval: 15s|evaluation_interval: 1s|" \
    -e "s|/etc/prometheus/fcgiq-rules.yml|$T/fcgiq-rules.yml|" \
    -e "s|'127.0.0.1:8080'|'127.0.0.1:$PORT'|" \
    "$top_srcdir/conf-examples/prometheus/prometheus.yml" >"$T/prometheus.yml"
cp "$top_srcdir/conf-examples/prometheus/fcgiq-rules.yml" "$T/"
check "promtool check config passes on the shipped files" \
    sh -c "promtool check config '$T/prometheus.yml' >'$T/promtool-config.out' 2>&1"
prometheus --config.file="$T/prometheus.yml" \
    --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PPORT" \
    >"$T/prometheus.log" 2>&1 &
track $!
check "Prometheus is ready" wait_long curl -sf "$PROM/-/ready" -o /dev/null
# pq QUERY: the single value of an instant query.
pq() {
	curl -s --get --data-urlencode "query=$1" "$PROM/api/v1/query" |
	    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}
pq_is() { [ "$(pq "$1")" = "$2" ]; }
check "Prometheus scrapes fcgiq through nginx" wait_long pq_is 'up{job="fcgiq"}' 1
check "Prometheus sees the 202s of both responders" \
    wait_long pq_is 'sum(fcgiq_http_requests_total{code="202"})' 6
check "Prometheus sees the database's done jobs" wait_long pq_is \
    'fcgiq_jobs{queue="default",state="done"}' "$(jobs_in default done)"
check "Prometheus sees both dead jobs" wait_long pq_is \
    'sum(fcgiq_jobs_finished_total{outcome="dead"})' 2
check "Prometheus sees the helper up" wait_long pq_is 'fcgiq_helper_up' 1
rules_loaded() {
	curl -s "$PROM/api/v1/rules" | grep -q '"name":"FcgiqHelperDown"'
}
check "Prometheus loaded the shipped alerting rules" wait_long rules_loaded

# --- more intake while Prometheus watches, and one more death: the
# counters' increase is what the alert sees (Prometheus cannot know of
# the deaths before its first scrape)
for i in 1 2 3 4; do post "/hooks/more$i?do=true" >/dev/null; done
check "Prometheus sees the new intake" wait_long pq_is \
    'sum(fcgiq_jobs_enqueued_total{queue="default"})' 9
post "/mail/y?do=exit&n=65" >/dev/null
dead_firing() {
	curl -s "$PROM/api/v1/alerts" |
	    grep -q '"alertname":"FcgiqDeadJobs".*"state":"firing"'
}
check "the dead-jobs alert fires" wait_long dead_firing

# --- fcgiqctl stats --prometheus: the same families, clean
"$FCGIQCTL" -c "$T/fcgiq.conf" stats --prometheus >"$T/ctl.txt" 2>"$T/ctl.err"
check "fcgiqctl stats --prometheus passes promtool" \
    sh -c "promtool check metrics <'$T/ctl.txt' >'$T/promtool-ctl.out' 2>&1"
c=$(cat "$T/ctl.txt")
check_eq "fcgiqctl: the responders' 202s" 11 \
    "$(metric "$c" 'fcgiq_http_requests_total{code="202"}')"
ctl_done() {
	[ "$(metric "$("$FCGIQCTL" -c "$T/fcgiq.conf" stats --prometheus)" \
	    'fcgiq_jobs{queue="default",state="done"}')" = "$(jobs_in default done)" ]
}
check "fcgiqctl: the database's done jobs" wait_for ctl_done

# --- fcgiqctl's enqueue and cancel, and a cancel through the status API,
# count too
a=$(echo a | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue mail --delay 1h)
b=$(echo b | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue mail --delay 1h)
"$FCGIQCTL" -c "$T/fcgiq.conf" cancel "$a" >/dev/null
check_eq "DELETE on the status API cancels" 204 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/jobs/$b")"
s=$(scrape)
check_eq "fcgiqctl's enqueues counted" 4 \
    "$(metric "$s" 'fcgiq_jobs_enqueued_total{queue="mail"}')"
check_eq "both cancels counted" 2 \
    "$(metric "$s" 'fcgiq_jobs_finished_total{queue="mail",outcome="cancelled"}')"

# --- one responder killed: its counts stay in the file, the other's
# scrape still sums them
set -- $FCGIQ_PIDS
kill -9 "$1"
survivor_sums() {
	[ "$(metric "$(scrape)" 'fcgiq_http_requests_total{code="202"}')" = 11 ]
}
check "a responder's counts outlive it" wait_for survivor_sums

# --- every fcgiq process goes away: the helper's lock is free
kill -9 $FCGIQ_PIDS 2>/dev/null
helper_gone() {
	[ "$("$FCGIQCTL" -c "$T/fcgiq.conf" stats --prometheus |
	    awk '$1 == "fcgiq_helper_up" { print $2 }')" = 0 ]
}
check "fcgiq_helper_up goes to 0 when no helper runs" wait_for helper_gone

done_testing
