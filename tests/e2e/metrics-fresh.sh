#!/bin/bash
# tests/e2e/metrics-fresh.sh: how fresh fcgiq_jobs{queue,state} is.  The
# counts per state are taken by walking the indexes, rarely (every 10 s
# at most, or 100 times their cost); in between, a scrape moves the last
# count on by the shared counters.  fcgiq under spawn-fcgi -F 2 with a
# helper, behind nginx (conf-examples/nginx.conf, its /metrics location,
# plus a dashboard location).
#
# Covers: a job taken by intake shows in fcgiq_jobs{state="queued"} and
# in the dashboard's api/summary within a second, on the same count (its
# age goes on growing: no recount did it); a job run by the helper shows
# as done, and no longer queued, within a second; a change made in the
# sqlite3 shell (which no counter sees) shows within the documented
# bound (the next full count: 10 s on a small database), and then the
# gauges equal the database's for every state.
. "$(dirname "$0")/../lib.sh"

for c in nginx spawn-fcgi curl sqlite3 jq; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$(dirname "$0")/responder-lib.sh"

mkdir -p "$T/var" "$T/h"
printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' >"$T/h/ok.sh"
chmod +x "$T/h/ok.sh"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info

[queue default]
handler      = exec:$T/h/ok.sh
user         = root

[queue mail]
EOF
cat >"$T/extra-locations.conf" <<'EOF'
		location /fcgiq/ {
			include fastcgi_params;
			fastcgi_param HTTP_PROXY "";
			fastcgi_param FCGIQ_ROLE dashboard;
			fastcgi_pass fcgiq;
		}
EOF
resp_spawn || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
resp_nginx || bail "nginx did not start"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
post() {
	curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary x \
	    "$BASE$1"
}
# metric NAME{LABELS}: its value in a fresh scrape ("absent" when none).
metric() {
	curl -s "$BASE/metrics" | awk -v k="$1" '$1 == k { print $2 + 0; f = 1 }
	    END { if (!f) print "absent" }'
}
jobs() { metric "fcgiq_jobs{queue=\"$1\",state=\"$2\"}"; }
age() { metric fcgiq_jobs_count_age_seconds; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# within MS CMD...: CMD succeeds within MS milliseconds of now, tried
# every 0.1 s (the last try may start just before MS).
within() {
	local until=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" 2>/dev/null && return 0
		[ "$(now_ms)" -lt "$until" ] || return 1
		sleep 0.1
	done
}
is() { [ "$(jobs "$1" "$2")" = "$3" ]; }

# The first scrape starts the counts; wait until they are there.
check "the first count is taken" wait_for is mail queued 0
a0=$(age)

# --- intake: a job of the mail queue (no handler: it waits)
check_eq "the intake answers 202" 202 "$(post /mail/one)"
check "queued follows intake within a second" within 1000 is mail queued 1
a1=$(age)
echo "# the count's age: $a0 s before, $a1 s after"
check "on the same count (its age grew, no recount did it)" \
    awk -v a="$a0" -v b="$a1" 'BEGIN { exit !(b >= a) }'
summary_mail() {
	[ "$(curl -s "$BASE/fcgiq/api/summary" |
	    jq -r '.queues[] | select(.name == "mail") | .queued')" = "$1" ]
}
check "the dashboard's summary says so too" within 1000 summary_mail 1

# --- the helper: a default job done
check_eq "a default job is taken" 202 "$(post /hooks/two)"
done_in_db() { [ "$(sql "SELECT state FROM jobs WHERE queue = 'default'")" = done ]; }
check "the helper runs it" wait_for done_in_db
done_shown() { is default done 1 && is default queued 0 && is default running 0; }
check "done, not queued nor running, within a second" within 1000 done_shown

# --- the sqlite3 shell: nothing counts this but the next full count
sql "UPDATE jobs SET state = 'dead', finished_at = created_at
    WHERE queue = 'mail'"
t0=$(now_ms)
dead_shown() { is mail dead 1 && is mail queued 0; }
# The bound: the next full count, due 10 s after the last one here, plus
# its own time and a scrape's (a second is room enough on a busy box).
check "a change in the sqlite3 shell shows within the bound (10 s)" \
    within 11500 dead_shown
echo "# the sqlite3 shell's change shown after $(($(now_ms) - t0)) ms"
for q in default mail; do
	for st in queued running retry done dead cancelled; do
		got=$(jobs "$q" "$st")
		want=$(sql "SELECT count(*) FROM jobs WHERE queue = '$q' AND state = '$st'")
		[ "$got" = "$want" ] || echo "# fcgiq_jobs{$q,$st}: $got, database $want"
	done
done >"$T/mismatch"
check "then every gauge equals the database" test ! -s "$T/mismatch"
[ -s "$T/mismatch" ] && cat "$T/mismatch"

done_testing
