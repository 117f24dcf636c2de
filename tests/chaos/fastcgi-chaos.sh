#!/bin/bash
# tests/chaos/fastcgi-chaos.sh: the fastcgi: kind under kill -9.  nginx ->
# fcgiq x 2 (spawn-fcgi -F 2: one active helper, one standby) -> PHP-FPM
# running tests/handlers/php/job.php, which records each run as
# ID.ATTEMPT.json.  While CHAOS_JOBS jobs are posted and drained, a kill -9
# every 0.3-1.2 s lands at random on the PHP-FPM pool (master and children;
# it is started again a moment later) or on the active helper (the standby
# takes over, or the supervisor starts another).  Then: every acknowledged
# job ends done, none is lost, and each done job's last run saw
# FCGIQ_ATTEMPT equal to its attempts (reruns counted).
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/e2e/responder-lib.sh"
. "$top_srcdir/tests/e2e/phpfpm-lib.sh"

for c in nginx spawn-fcgi curl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
phpfpm_find || skip_all "php-fpm not installed (tests/install-deps.sh)"
JOBS=${CHAOS_JOBS:-300}

phpfpm_start main 4 || bail "php-fpm did not start"
REC=$T/rec
mkdir -p "$REC" "$T/var"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log = info
grace = 1s

[queue chaos]
handler      = fastcgi:unix:$PHPFPM_SOCK_main
script       = $PHP_HANDLERS/job.php
param        = RECORD_DIR $REC
concurrency  = 4
max_attempts = 1000
timeout      = 5s
backoff      = 50ms..400ms
EOF
extra_location /c/ chaos
resp_spawn || bail "fcgiq did not start: $(cat "$T/spawn.log")"
resp_nginx || bail "nginx did not start"

held_lock() {
	local ino
	ino=$(stat -c %i "$DB-helper.lock" 2>/dev/null) || return 0
	awk -v ino="$ino" '$2 != "->" { split($6, a, ":"); if (a[3] == ino) print $5 }' \
	    /proc/locks | head -1
}

# The client: JOBS posts, 8 at a time; each 202's id into acked.
client() {
	local i pids=""
	for i in $(seq "$JOBS"); do
		curl -s -m 10 -X POST --data-binary "job $i" \
		    "$BASE/c/x?sleep_ms=$((RANDOM % 30))" |
		    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' >>"$T/acked" &
		pids="$pids $!"
		if [ $((i % 8)) -eq 0 ]; then wait $pids; pids=""; fi
	done
	wait $pids
}
client &
cpid=$!

# The victims alternate (the first one at random), so that a short run
# still kills both; a helper kill that finds no helper holding the lock (a
# new one is on its way) is tried again at the next turn.
kills_fpm=0 kills_helper=0
next=$([ $((RANDOM % 2)) -eq 0 ] && echo fpm || echo helper)
while kill -0 "$cpid" 2>/dev/null ||
    [ "$(sql "SELECT count(*) FROM jobs WHERE state <> 'done'")" != 0 ] &&
    [ $((kills_fpm + kills_helper)) -lt 12 ]; do
	sleep "0.$((3 + RANDOM % 9))"
	if [ "$next" = fpm ]; then
		phpfpm_kill9 main
		kills_fpm=$((kills_fpm + 1))
		sleep 0.2
		phpfpm_start main 4 || bail "php-fpm did not start again"
		next=helper
	else
		h=$(held_lock)
		[ -n "$h" ] && kill -9 "$h" 2>/dev/null &&
		    kills_helper=$((kills_helper + 1)) && next=fpm
	fi
done
wait "$cpid"
echo "# kill -9: PHP-FPM $kills_fpm times, the active helper $kills_helper times"
check "both were killed" test "$kills_fpm" -gt 0 -a "$kills_helper" -gt 0

acked=$(sort -u "$T/acked" | grep -c .)
check "most posts acknowledged ($acked of $JOBS)" test "$acked" -ge $((JOBS * 9 / 10))
sort -u "$T/acked" | sed "s/.*/('&')/" | paste -sd, >"$T/acked.sql"
left() {
	sql "WITH a(id) AS (VALUES $(cat "$T/acked.sql"))
	    SELECT count(*) FROM a LEFT JOIN jobs USING (id)
	    WHERE jobs.state IS NOT 'done'"
}
for i in $(seq 600); do [ "$(left)" = 0 ] && break; sleep 0.1; done
check_eq "every acknowledged job done, none lost" 0 "$(left)"
check_eq "nothing dead" 0 "$(sql "SELECT count(*) FROM jobs WHERE state = 'dead'")"
reruns=$(sql "SELECT count(*) FROM jobs WHERE attempts > 1")
echo "# $reruns jobs ran more than once"
bad=0
for row in $(sql "SELECT id || '.' || attempts FROM jobs WHERE state = 'done'"); do
	[ -s "$REC/$row.json" ] || bad=$((bad + 1))
done
check_eq "each done job's last run saw FCGIQ_ATTEMPT = its attempts" 0 "$bad"

done_testing
