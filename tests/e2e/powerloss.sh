#!/bin/bash
# tests/e2e/powerloss.sh: pull the plug under the real fcgiq.  nginx (the
# shipped conf-examples/nginx.conf) in front of fcgiq under spawn-fcgi, the
# powerloss VFS (tests/chaos/powerloss.so) LD_PRELOADed into it; four curl
# loops POST until the VFS cuts the power at a random write or sync of the
# database or WAL (unsynced writes dropped or torn) and SIGKILLs fcgiq.
# After each cut (the -shm deleted: a reboot wipes it) every id that got a
# 202, in this trial or any before, must be in a database that passes
# integrity_check; the next trial's fcgiq restarts on that database.
#
# durability = full: nothing acknowledged may be lost.  A few trials with
# durability = normal must lose acknowledged jobs: the proof that this
# test can fail.  tests/chaos/powerloss carries the statistics.
#
#   POWERLOSS_E2E_TRIALS=N   trials with durability = full (20)
#   POWERLOSS_E2E_NORMAL=N   trials with durability = normal (4)
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/chaos/e2e-lib.sh"

chaos_require
chaos_setup full
FULL_TRIALS=${POWERLOSS_E2E_TRIALS:-20}
NORMAL_TRIALS=${POWERLOSS_E2E_NORMAL:-4}

# trial N DURABILITY MODE: one power cut; appends the 202s to $ACKED and
# prints "acked lost damaged cut-op unsynced-sectors appended-bytes".
trial() {
	local n=$1 mode=$3 after log=$T/fcgiq.$2.$1.log k pids="" rc
	local loads=$T/load.$2.$1 waited=0 acked lost bad cut
	after=$(( 40 + RANDOM % 1500 ))
	start_fcgiq "$log" LD_PRELOAD="$SHIM" FCGIQ_POWERLOSS_AFTER=$after \
	    FCGIQ_POWERLOSS_MODE="$mode" FCGIQ_POWERLOSS_SEED=$RANDOM$RANDOM ||
	    { echo "- - - start - -"; return; }
	for k in 1 2 3 4; do
		( while kill -0 "$FCGIQ_PID" 2>/dev/null; do post_many 20; done ) \
		    >"$loads.$k" &
		pids="$pids $!"
	done
	# The cut comes with the load; a trial that outlives a minute failed.
	while kill -0 "$FCGIQ_PID" 2>/dev/null && [ $waited -lt 600 ]; do
		sleep 0.1
		waited=$((waited + 1))
	done
	kill -0 "$FCGIQ_PID" 2>/dev/null && stop_pid "$FCGIQ_PID"
	wait "$FCGIQ_PID"
	rc=$?
	wait $pids
	cat "$loads".[1-4] | awk '$1 == 202 && $2 != "-" { print $2 }' \
	    >"$loads.acked"
	acked=$(wc -l <"$loads.acked")
	cat "$loads.acked" >>"$ACKED"
	rm -f "$DB-shm"			# the reboot
	lost=$(db_missing "$ACKED" | wc -l)
	bad=$(db_integrity)
	[ "$bad" = ok ] && bad=0 || bad=1
	cut=$(sed -n 's/^powerloss: power cut at operation \([0-9]*\) ([a-z]*), \([0-9]*\) unsynced sectors, \([0-9]*\) bytes.*/\1 \2 \3/p' "$log")
	[ "$rc" -eq 137 ] || cut="- - -"
	echo "$acked $lost $bad ${cut:-- - -}"
}

# run DURABILITY TRIALS: sets TOTAL_ACKED, TOTAL_LOST, LOSSY.
run() {
	local d=$1 n=$2 i mode r
	ACKED=$T/acked.$d
	: >"$ACKED"
	TOTAL_ACKED=0 TOTAL_LOST=0 LOSSY=0 UNSYNCED=0
	for i in $(seq "$n"); do
		mode=drop
		[ $((i % 2)) -eq 0 ] && mode=tear
		r=$(trial "$i" "$d" "$mode")
		set -- $r
		if [ "$4" = - ]; then
			not_ok "$d trial $i ($mode): fcgiq died of the power cut" \
			    "$(tail -5 "$T/fcgiq.$d.$i.log")"
			continue
		fi
		TOTAL_ACKED=$((TOTAL_ACKED + $1))
		[ "$5" -gt 0 ] || [ "$6" -gt 0 ] && UNSYNCED=$((UNSYNCED + 1))
		if [ "$2" -gt 0 ]; then
			LOSSY=$((LOSSY + 1))
			TOTAL_LOST=$2	# cumulative: every 202 so far is checked
		fi
		if [ "$d" = full ]; then
			if [ "$2" -eq 0 ] && [ "$3" -eq 0 ]; then
				ok "full trial $i ($mode, cut at op $4, $5 sectors + $6 bytes unsynced): $1 acknowledged, 0 lost of $(wc -l <"$ACKED"), integrity ok"
			else
				not_ok "full trial $i ($mode, cut at op $4): nothing lost, integrity ok" \
				    "$2 of $(wc -l <"$ACKED") acknowledged jobs missing; integrity: $(db_integrity | head -3)"
			fi
		else
			echo "# normal trial $i ($mode, cut at op $4, $5 sectors + $6 bytes unsynced): $1 acknowledged, $2 of $(wc -l <"$ACKED") missing, integrity $( [ "$3" -eq 0 ] && echo ok || echo damaged)"
		fi
	done
}

run full "$FULL_TRIALS"
echo "# full: $FULL_TRIALS trials, $TOTAL_ACKED acknowledged, $UNSYNCED cuts with unsynced data"
FULL_ACKED=$TOTAL_ACKED
check "full: the trials acknowledged jobs" test "$FULL_ACKED" -gt 0

# A clean restart on the surviving database answers and finds old jobs.
start_fcgiq "$T/fcgiq.restart.log" || bail "fcgiq did not restart"
r=$(post); set -- $r
[ "$1" = 202 ] || { r=$(post); set -- $r; }	# a stale kept connection: 502
check_eq "restarted without the VFS: a POST gets 202" 202 "$1"
id=$(tail -1 "$T/acked.full")
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/jobs/$id")
check_eq "restarted: the last acknowledged job is served (GET /jobs/$id)" 200 "$code"
stop_pid "$FCGIQ_PID"
wait "$FCGIQ_PID" 2>/dev/null

if [ "$NORMAL_TRIALS" -gt 0 ]; then
	DB=$T/db-normal/q.db
	mkdir -p "$T/db-normal"
	sed -i -e "s|^database .*|database     = $DB|" \
	    -e "s|^durability .*|durability   = normal|" "$T/fcgiq.conf"
	run normal "$NORMAL_TRIALS"
	if [ "$TOTAL_LOST" -gt 0 ]; then
		ok "normal: losses observed ($TOTAL_LOST of $TOTAL_ACKED acknowledged lost, $LOSSY of $NORMAL_TRIALS trials)"
	else
		not_ok "normal: losses observed" "none in $NORMAL_TRIALS trials: can this test fail?"
	fi
fi
done_testing
