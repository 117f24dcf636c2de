#!/bin/bash
# tests/e2e/pg-responder.sh: fcgiq on PostgreSQL, as a user runs it — a
# private cluster (tests/pg-lib.sh), nginx from conf-examples/nginx.conf in
# front of fcgiq under spawn-fcgi -F 2, its helper running an exec: handler.
#
# Covers: POSTs answered 202 and their jobs run to done; fcgiq -t taking
# the PostgreSQL URI and flow keys; fcgiqctl, its bulk forms included; the
# README's five operator queries in psql, as written; a crash and restart
# of PostgreSQL (pg_ctl restart -m immediate) under load: 503 with
# Retry-After in the gap, 202 again after it without restarting fcgiq, and
# every job acknowledged with 202 in the database and done at the end.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$top_srcdir/tests/e2e/responder-lib.sh"

pg_start

H=$T/handlers
mkdir -p "$H" "$T/var"
cat >"$H/job.sh" <<'EOF'
#!/bin/sh
# Read the body, answer with its length.
n=$(wc -c)
echo "ran $n"
EOF
chmod 755 "$H/job.sh"

write_conf() {
	cat >"$T/fcgiq.conf" <<-EOF
	[fcgiq]
	database = $PG_URI
	log      = info
	path     = /usr/local/bin:/usr/bin:/bin
	$1

	[queue default]
	handler      = exec:$H/job.sh
	user         = root
	concurrency  = 4
	max_attempts = 3

	[queue mail]
	handler      = exec:$H/job.sh
	user         = root
	EOF
}

# --- Flow keys are taken on PostgreSQL as on SQLite.
write_conf "[queue flaky]
handler     = exec:$H/job.sh
user        = root
pause_after = 3"
check "fcgiq -t takes pause_after on PostgreSQL" "$FCGIQ" -t -c "$T/fcgiq.conf"
write_conf ""
check "fcgiq -t accepts the PostgreSQL URI" "$FCGIQ" -t -c "$T/fcgiq.conf"

resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
check_eq "spawn-fcgi -F 2 started two fcgiq" 2 "$(echo $FCGIQ_PIDS | wc -w)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

# post PATH BODY: status to CODE, headers in $T/h, id in ID.
post() {
	curl -s -X POST -D "$T/h" -o "$T/b" --data-binary "$2" "$BASE$1"
	CODE=$(head -1 "$T/h" | cut -d' ' -f2)
	ID=$(json_field "$T/b" id)
}

# --- Intake and the jobs' runs.
post /hooks/a 'hello world'
check_eq "POST: 202" 202 "$CODE"
check "POST: a 30-character id" grep -Eq '^[A-Za-z0-9_-]{30}$' <<<"$ID"
first=$ID
check_eq "the job is in PostgreSQL, body and queue" "default|hello world" \
    "$(pg_psql -c "SELECT queue, convert_from(body, 'UTF8') FROM jobs WHERE id = '$first'")"
for i in $(seq 20); do post /mail/x "mail $i"; done
check_eq "20 more POSTs: 202" 202 "$CODE"
done_count() { pg_psql -c "SELECT count(*) FROM jobs WHERE state = 'done'"; }
all_done() { [ "$(done_count)" = "$1" ]; }
check "every job runs to done" wait_for all_done 21
check_eq "the handler's answer is the job's result" "ran 11" \
    "$(pg_psql -c "SELECT convert_from(result, 'UTF8') FROM jobs WHERE id = '$first'" | tr -d '\n')"
check_eq "two helpers active at once (no helper lock on PostgreSQL)" 2 \
    "$(grep -c 'helper: postgresql:.*: active' "$T/fcgiq.log")"
check_eq "... and no job ran twice" 0 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE attempts <> 1")"
curl -s -o "$T/st" "$BASE/jobs/$first"
check_eq "the status API reads it from PostgreSQL" done "$(json_field "$T/st" state)"
# Idempotency at the door, decided inside PostgreSQL.
curl -s -o "$T/i1" -H 'Idempotency-Key: k-1' --data-binary 'same' "$BASE/hooks/i"
curl -s -o "$T/i2" -w '%{http_code}' -H 'Idempotency-Key: k-1' \
    --data-binary 'same' "$BASE/hooks/i" >"$T/i2code"
check_eq "a repeated Idempotency-Key gives the first job's id" \
    "$(json_field "$T/i1" id)" "$(json_field "$T/i2" id)"
check_eq "... and one row" 1 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE idempotency_key = 'k-1'")"

# --- fcgiqctl against PostgreSQL.
ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
check "fcgiqctl stats: the done jobs of mail" grep -Eq 'mail +done +20' \
    <<<"$(ctl stats)"
check "fcgiqctl show: the job and its body" grep -q 'hello world' \
    <<<"$(ctl show "$first")"
check_eq "fcgiqctl ls -q mail -n 3: three jobs" 3 "$(ctl ls -q mail -n 3 | grep -c mail)"
check "fcgiqctl pause mail" ctl pause mail
post /mail/paused 'held'
held=$ID
check "fcgiqctl enqueue" ctl enqueue mail <<<"from ctl"
check_eq "a paused queue's jobs wait" queued \
    "$(pg_psql -c "SELECT state FROM jobs WHERE id = '$held'")"
check "fcgiqctl resume mail" ctl resume mail
mail_done() { [ "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'mail' AND state <> 'done'")" = 0 ]; }
check "resumed, they run" wait_for mail_done
check "fcgiqctl purge --done -q mail" ctl purge --done --older-than 0s -q mail
check_eq "... leaves no done job of mail" 0 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'mail'")"
# The bulk forms: cancel what waits, retry it, discard what is done.
ctl pause mail >/dev/null
for i in 1 2 3; do post /mail/bulk "bulk $i"; done
check_eq "fcgiqctl cancel -q mail --all-matching --yes" "3 jobs cancelled" \
    "$(ctl cancel -q mail --all-matching --yes </dev/null)"
check_eq "... all three cancelled" 3 \
    "$(pg_psql -c "SELECT count(*) FROM jobs WHERE queue = 'mail' AND state = 'cancelled'")"
check_eq "fcgiqctl retry -q mail --state cancelled --all-matching --yes" \
    "3 jobs retried" \
    "$(ctl retry -q mail --state cancelled --all-matching --yes </dev/null)"
ctl resume mail >/dev/null
check "... and they run" wait_for mail_done
check_eq "fcgiqctl discard -q mail --state done --all-matching --yes" \
    "3 jobs discarded" \
    "$(ctl discard -q mail --state done --all-matching --yes </dev/null)"

# --- The README's operator queries, as written, in psql.
awk '/<!-- operators -->/,/<!-- \/operators -->/' "$top_srcdir/README.md" |
    awk '/^```sql$/ { n++; f = 1; next } /^```$/ { f = 0 } f { print > (dir "/q" n ".sql") }' dir="$T"
check_eq "the README has five queries" 5 "$(ls "$T"/q*.sql 2>/dev/null | wc -l)"
sed -i "s/3q2-9mWZ0gOVbKxX9y7wYw/$first/" "$T/q4.sql"
for n in 1 2 3 4 5; do
	out=$(pg_psql -F '|' -f "$T/q$n.sql" 2>&1)
	rc=$?
	echo "$out" | head -3 | sed "s/^/# q$n: /"
	check_eq "README query $n runs in psql unchanged" 0 $rc
done
out=$(pg_psql -F '|' -f "$T/q1.sql")
check "query 1: the done jobs of default counted" grep -q '^default|done|' <<<"$out"
out=$(pg_psql -F '|' -f "$T/q4.sql")
check "query 4: the job's body as text" grep -q 'hello world' <<<"$out"
out=$(pg_psql -F '|' -f "$T/q5.sql")
check "query 5: done per queue in the last hour" grep -q '^default|done|' <<<"$out"

# --- PostgreSQL crashes and restarts under load.
# loader N: N sequential POSTs; one line each: "code retry-after id".
loader() {
	local i code ra
	for i in $(seq "$1"); do
		curl -s -m 10 -X POST -D "$T/lh" -o "$T/lb" \
		    --data-binary "load $i" "$BASE/hooks/load" 2>/dev/null
		code=$(head -1 "$T/lh" 2>/dev/null | cut -d' ' -f2)
		ra=$(grep -i '^Retry-After:' "$T/lh" | tr -d '\r' | cut -d' ' -f2)
		echo "${code:-none} ${ra:--} $(json_field "$T/lb" id)"
	done >"$T/load.out"
}
count_code() { awk -v c="$1" '$1 == c' "$T/load.out" 2>/dev/null | wc -l; }
loaded() { [ "$(count_code 202)" -ge "$1" ]; }

loader 5000 &
LOADER=$!
track $LOADER
wait_for loaded 30 || not_ok "the load gets 202s before the restart"
pg_restart_immediate || bail "PostgreSQL did not restart: $(tail -5 "$PG_DIR/server.log")"
before=$(count_code 202)
# 202 again, after the gap, from the same fcgiq processes.
again() { [ "$(count_code 202)" -ge $((before + 30)) ]; }
wait_for again
wait_for again
check "202 again after the restart, without restarting fcgiq" again
kill $LOADER 2>/dev/null
wait $LOADER 2>/dev/null
for p in $FCGIQ_PIDS; do
	check "fcgiq $p lived through the restart" alive "$p"
done
n503=$(count_code 503)
echo "# load: $(count_code 202) x 202, $n503 x 503, $(awk '$1 != 202 && $1 != 503' "$T/load.out" | wc -l) other"
check "503s in the gap" test "$n503" -gt 0
check_eq "every 503 carries Retry-After" 0 \
    "$(awk '$1 == 503 && $2 == "-"' "$T/load.out" | wc -l)"
check_eq "nothing but 202 and 503" 0 \
    "$(awk '$1 != 202 && $1 != 503' "$T/load.out" | wc -l)"
awk '$1 == 202 { print $3 }' "$T/load.out" | sort -u >"$T/acked"
pg_psql -c "SELECT id FROM jobs WHERE queue = 'default' AND
    convert_from(body, 'UTF8') LIKE 'load %'" | sort -u >"$T/stored"
check_eq "every 202'd job is in the database" "" \
    "$(comm -23 "$T/acked" "$T/stored" | head -5)"
acked=$(wc -l <"$T/acked")
echo "# $acked jobs acknowledged under load"
all_acked_done() {
	[ "$(comm -23 "$T/acked" <(pg_psql -c "SELECT id FROM jobs WHERE
	    state = 'done'" | sort -u) | wc -l)" = 0 ]
}
wait_for all_acked_done
wait_for all_acked_done
check "every 202'd job ran to done (the helper reconnected too)" all_acked_done
check "fcgiq logged the lost connection, on one line" \
    grep -q "warn: .*server closed the connection unexpectedly$" "$T/fcgiq.log"

done_testing
