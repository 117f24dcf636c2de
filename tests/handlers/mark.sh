#!/bin/sh
# mark.sh DIR: record that the job ran (DIR/<job id>.<attempt>), print ok.
echo $$ >"$1/$FCGIQ_JOB_ID.$FCGIQ_ATTEMPT"
echo ok
