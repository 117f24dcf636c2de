#!/bin/sh
# exit.sh CODE [MESSAGE...]: print MESSAGE on stderr and exit with CODE.
code=$1
shift
[ $# -gt 0 ] && echo "$*" >&2
exit "$code"
