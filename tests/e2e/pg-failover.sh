#!/bin/bash
# tests/e2e/pg-failover.sh: "a 202 is a promise" when the database's machine
# dies.  A primary and a synchronous streaming standby (tests/pg-lib.sh
# pg_pair_start: pg_basebackup -R, synchronous_standby_names), fcgiq under
# spawn-fcgi behind nginx on a multi-host URI naming both with
# target_session_attrs=read-write.
#
# Covers, under a steady sequential load of POSTs: kill -9 of the primary's
# postmaster; 503 with Retry-After while no server takes writes; pg_ctl
# promote of the standby; 202 again after it from the same fcgiq processes
# (no restart); every job acknowledged with 202, before the kill and after
# it, in the promoted standby's jobs table; nothing but 202 and 503 seen.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$top_srcdir/tests/e2e/responder-lib.sh"

pg_pair_start

sync_standby() {
	[ "$(pg1_psql -c "SELECT application_name || ' ' || sync_state
	    FROM pg_stat_replication")" = "standby sync" ]
}
check "the standby streams from the primary, synchronously" \
    wait_for sync_standby
check_eq "the standby is in recovery" t \
    "$(pg2_psql -c 'SELECT pg_is_in_recovery()')"

# Intake only: the jobs stay queued, so the rows compared at the end are
# the ones the door wrote.
mkdir -p "$T/var"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $PG_PAIR_URI
log      = info

[queue default]
EOF
check "fcgiq -t accepts the multi-host URI" "$FCGIQ" -t -c "$T/fcgiq.conf"
resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

curl -s -D "$T/h" -o "$T/b" --data-binary 'first' "$BASE/hooks/first"
check_eq "POST before the failover: 202" 202 \
    "$(head -1 "$T/h" | cut -d' ' -f2)"
first=$(json_field "$T/b" id)
check_eq "... its job is already on the standby (a synchronous COMMIT)" 1 \
    "$(pg2_psql -c "SELECT count(*) FROM jobs WHERE id = '$first'")"

# loader: sequential POSTs until $T/stop exists; one line each: "code
# retry-after id", appended as each answer arrives.
loader() {
	local i=0 code ra
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		curl -s -m 10 -X POST -D "$T/lh" -o "$T/lb" \
		    --data-binary "load $i" "$BASE/hooks/load" 2>/dev/null
		code=$(head -1 "$T/lh" 2>/dev/null | cut -d' ' -f2)
		ra=$(grep -i '^Retry-After:' "$T/lh" | tr -d '\r' | cut -d' ' -f2)
		echo "${code:-none} ${ra:--} $(json_field "$T/lb" id)" >>"$T/load.out"
		rm -f "$T/lh" "$T/lb"
	done
}
count_code() { awk -v c="$1" '$1 == c' "$T/load.out" 2>/dev/null | wc -l; }
at_least() { [ "$(count_code "$1")" -ge "$2" ]; }

: >"$T/load.out"
loader &
LOADER=$!
track $LOADER
wait_for at_least 202 30 || wait_for at_least 202 30
check "the load gets 202s" at_least 202 30

# --- The primary's machine dies.
pg_kill_primary || bail "the primary's postmaster did not die"
check "503 while no server takes writes" wait_for at_least 503 3
# The 202s before the first 503: the last of them may have arrived just
# after the kill, its COMMIT having returned before it.
before=$(awk '$1 == 503 { exit } $1 == 202 { n++ } END { print n + 0 }' "$T/load.out")
echo "# primary killed after $before x 202"
check_eq "... and no 202 in the gap" "$before" "$(count_code 202)"
gone() { [ -z "$(pg_primary_orphans)" ]; }
check "the old primary's processes all exited" wait_for gone

# --- The standby takes over.
check "pg_ctl promote -w the standby" pg_promote_standby
check_eq "the promoted standby takes writes" f \
    "$(pg2_psql -c 'SELECT pg_is_in_recovery()')"
gap=$(count_code 503)
again() { at_least 202 $((before + 30)); }
wait_for again || wait_for again
check "202 again after the promotion" again
# The last POST answered and recorded (curl -m 10 bounds the wait).
touch "$T/stop"
wait $LOADER 2>/dev/null
for p in $FCGIQ_PIDS; do
	check "fcgiq $p lived through the failover (same pid)" alive "$p"
done

n503=$(count_code 503)
echo "# load: $(count_code 202) x 202, $n503 x 503 ($gap before the promotion), $(awk '$1 != 202 && $1 != 503' "$T/load.out" | wc -l) other"
check_eq "nothing but 202 and 503" "" \
    "$(awk '$1 != 202 && $1 != 503' "$T/load.out" | sort | uniq -c | head -5)"
check_eq "every 503 carries Retry-After" 0 \
    "$(awk '$1 == 503 && $2 !~ /^[0-9]+$/' "$T/load.out" | wc -l)"
check_eq "every 202 carries a job id" 0 \
    "$(awk '$1 == 202 && $3 == ""' "$T/load.out" | wc -l)"

# --- Every promise kept: the acknowledged jobs are on the new primary.
{ echo "$first"; awk '$1 == 202 { print $3 }' "$T/load.out"; } |
    sort >"$T/acked"
check_eq "no id acknowledged twice" "" "$(uniq -d "$T/acked" | head -5)"
pg2_psql -c "SELECT id FROM jobs" | sort -u >"$T/stored"
check_eq "every 202'd job is in the promoted standby's jobs table" "" \
    "$(comm -23 "$T/acked" "$T/stored" | head -5)"
awk '$1 == 202 { print $3 }' "$T/load.out" | head -"$before" | sort >"$T/acked-before"
check_eq "... the $before acknowledged before the kill among them" "" \
    "$(comm -23 "$T/acked-before" "$T/stored" | head -5)"
# More rows than 202s would be no broken promise: a COMMIT that reached
# the standby before the primary died, whose answer it never sent (a 503).
echo "# $(wc -l <"$T/acked") acknowledged, $(wc -l <"$T/stored") rows on the promoted standby"
check_eq "no row the door did not write (a body of the load or the first)" 0 \
    "$(pg2_psql -c "SELECT count(*) FROM jobs WHERE NOT (convert_from(body,
    'UTF8') LIKE 'load %' OR convert_from(body, 'UTF8') = 'first')")"
check "fcgiq logged the lost connection" \
    grep -q "warn: .*PostgreSQL" "$T/fcgiq.log"

done_testing
