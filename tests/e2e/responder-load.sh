#!/bin/bash
# responder-load: 20,000 POSTs at concurrency 64 through nginx into two
# fcgiq (spawn-fcgi -F 2, helpers on, no handler).  The number of jobs in
# the database equals the number of 202s exactly, and every 202's id is
# there.  (Speed is measured in bench/, not asserted here; the run time is
# printed as a comment.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in nginx spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done

N=${LOAD_REQUESTS:-20000}
C=${LOAD_CONCURRENCY:-64}

resp_conf "log = info"
resp_spawn || bail "spawn-fcgi: $(cat "$T/spawn.log" "$T/fcgiq.log" 2>/dev/null)"
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

# One curl, C transfers at a time; each prints "CODE LOCATION".
for i in $(seq "$N"); do
	printf 'url = "%s/hooks/load?n=%d"\noutput = "/dev/null"\n' "$BASE" "$i"
done >"$T/urls.cfg"
t0=$(date +%s%N)
curl -s --parallel --parallel-immediate --parallel-max "$C" \
    -H 'Content-Type: application/json' --data-binary '{"load":true}' \
    -w '%{http_code} %header{location}\n' -K "$T/urls.cfg" >"$T/results" 2>"$T/curl.err"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# $N POSTs at concurrency $C: ${ms} ms ($((N * 1000 / (ms + 1))) req/s)"

check_eq "curl made $N requests" "$N" "$(wc -l <"$T/results")"
n202=$(awk '$1 == 202' "$T/results" | wc -l)
echo "# answers: $(awk '{print $1}' "$T/results" | sort | uniq -c | tr '\n' ' ')"
check_eq "every request answered 202" "$N" "$n202"
check_eq "jobs in the database = 202s" "$n202" \
    "$(sql "SELECT count(*) FROM jobs WHERE request_uri LIKE '/hooks/load?%'")"
awk '$1 == 202 { sub("^/jobs/", "", $2); print $2 }' "$T/results" |
    sort >"$T/ids.http"
sql "SELECT id FROM jobs" | sort >"$T/ids.db"
check_eq "every 202's id is in the database" "" \
    "$(comm -23 "$T/ids.http" "$T/ids.db" | head -5)"
check_eq "ids are distinct" "$n202" "$(sort -u "$T/ids.http" | wc -l)"
check "the database passes integrity_check" \
    test "$(sql 'PRAGMA integrity_check')" = ok
groups=$(grep -c 'commit: batch' "$T/fcgiq.log")
check_eq "no failed commit" 0 "$groups"

ms=$(stop_all $FCGIQ_PIDS)
check "SIGTERM after the load: exit within 5 s (${ms} ms)" test "$ms" -lt 5000

done_testing
