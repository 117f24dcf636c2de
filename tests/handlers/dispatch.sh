#!/bin/sh
# dispatch.sh DIR: do what the request's query string asks, so one handler
# serves every end-to-end case.  Each run first records its pid in
# DIR/<job id>.<attempt>.
#   do=cat          the body back as the result
#   do=true         nothing, exit 0
#   do=fail&n=N     fail the first N runs of the job (counted in DIR), then ok
#   do=exit&n=CODE  exit CODE, with "exit CODE requested" on stderr
#   do=sleep&n=S    become sleep S (the recorded pid is the sleeping process)
#   do=mark         print ok
dir=$1
echo $$ >"$dir/$FCGIQ_JOB_ID.$FCGIQ_ATTEMPT"
what= n=0
IFS='&'
for kv in $QUERY_STRING; do
	case $kv in
	do=*) what=${kv#do=} ;;
	n=*) n=${kv#n=} ;;
	esac
done
unset IFS
case $what in
cat)	exec cat ;;
true)	exit 0 ;;
fail)
	f="$dir/$FCGIQ_JOB_ID.runs"
	c=$(cat "$f" 2>/dev/null || echo 0)
	c=$((c + 1))
	echo "$c" >"$f"
	if [ "$c" -le "$n" ]; then
		echo "failing run $c of $n" >&2
		exit 1
	fi
	echo "ok after $c runs" ;;
exit)	echo "exit $n requested" >&2; exit "$n" ;;
sleep)	exec sleep "$n" ;;
mark)	echo ok ;;
*)	echo "dispatch: unknown do=$what" >&2; exit 65 ;;
esac
