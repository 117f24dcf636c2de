#!/bin/sh
# fail-n.sh DIR N: fail (exit 1) the first N runs of each job, then succeed.
# Runs are counted in DIR/<job id>, so retries of one job share a counter.
dir=$1 n=$2
f="$dir/$FCGIQ_JOB_ID"
c=$(cat "$f" 2>/dev/null || echo 0)
c=$((c + 1))
echo "$c" >"$f"
cat >/dev/null
if [ "$c" -le "$n" ]; then
	echo "failing run $c of $n" >&2
	exit 1
fi
echo "ok after $c runs (attempt $FCGIQ_ATTEMPT)"
exit 0
