#!/bin/sh
# sleep.sh DIR SECONDS: record "<job id>.<attempt>" and this pid in DIR,
# then become sleep(1) (exec: the handler's pid is the sleeping process).
dir=$1
echo $$ >"$dir/$FCGIQ_JOB_ID.$FCGIQ_ATTEMPT"
exec sleep "$2"
