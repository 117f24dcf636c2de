#!/bin/bash
# tests/e2e/top.sh: fcgiqctl top as an operator runs it.
#
# Covers: plain frames (a pipe) of a database whose counts are known: each
# column per queue, the pause, "-" where nothing waits, the helper down;
# every line of every frame within 80 columns and free of escapes; under
# traffic from `fcgiq work` (jobs done, attempts failed, jobs dead) the
# helper up, the counts equal to the database's, and done and failed per
# minute and the intake rate from the shared counters; SIGINT ends it with
# status 0; on a terminal (script(1)'s pty) the alternate screen, lines
# cut to the terminal's width, q and ^C quitting and the terminal's
# settings given back as they were.
. "$(dirname "$0")/../lib.sh"

for c in sqlite3 script timeout stty; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] && [ -x "$FCGIQCTL" ] || skip_all "fcgiq not built"

H=$T/handlers
mkdir -p "$H"
printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' >"$H/ok.sh"
printf '#!/bin/sh\ncat >/dev/null\necho no >&2\nexit 1\n' >"$H/fail.sh"
chmod +x "$H/ok.sh" "$H/fail.sh"

# conf NAME: a configuration of database $T/NAME.db.
conf() {
	cat >"$T/$1.conf" <<EOF
[fcgiq]
database = $T/$1.db
log      = info
log_file = $T/$1.log

[queue default]
handler      = exec:$H/ok.sh
user         = root
concurrency  = 2

[queue mail]
handler      = exec:$H/fail.sh
user         = root
max_attempts = 2
backoff      = 50ms..100ms

[queue idle]
handler      = exec:$H/ok.sh
user         = root
EOF
}
conf known
conf traffic
ctl() { local c=$1; shift; "$FCGIQCTL" -c "$T/$c.conf" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$T/$1.db" "$2"; }
# last_frame FILE: the last frame of plain output.
last_frame() {
	awk '/^fcgiq top / { f = "" } { f = f $0 "\n" } END { printf "%s", f }' "$1"
}
# field FRAME QUEUE N: the Nth column of QUEUE's row.
field() {
	printf '%s\n' "$1" | awk -v q="$2" -v n="$3" '$1 == q { print $n }'
}
widest() { awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$@"; }
frames() { grep -c '^fcgiq top ' "$1"; }

# --- a known database, no helper: 5 default jobs (2 waiting, one each
# running, retry, dead), 2 mail jobs due in an hour, mail paused, idle empty
for i in 1 2 3 4 5; do echo "$i" | ctl known enqueue default >/dev/null; done
for i in 1 2; do echo m | ctl known enqueue mail --delay 1h >/dev/null; done
ctl known pause mail >/dev/null
sql known "UPDATE jobs SET state = 'running', attempts = 1,
    started_at = created_at, lease_until = created_at + 3600000
    WHERE seq = (SELECT min(seq) FROM jobs WHERE queue = 'default');
    UPDATE jobs SET state = 'retry', attempts = 1
    WHERE seq = (SELECT min(seq) + 1 FROM jobs WHERE queue = 'default');
    UPDATE jobs SET state = 'dead', attempts = 1, finished_at = created_at
    WHERE seq = (SELECT min(seq) + 2 FROM jobs WHERE queue = 'default');"
ctl known top -n 1 >"$T/known.out" 2>"$T/known.err"
check_eq "top -n 1 exits 0" 0 "$?"
check_eq "one frame" 1 "$(frames "$T/known.out")"
f=$(last_frame "$T/known.out")
row() { field "$f" "$1" 2; field "$f" "$1" 3; field "$f" "$1" 4;
	field "$f" "$1" 5; field "$f" "$1" 6; }
check_eq "default: 2 waiting, 1 running, 1 retry, 1 dead, not paused" \
    "2 1 1 1 no" "$(echo $(row default))"
check_eq "mail: 2 waiting, paused" "2 0 0 0 yes" "$(echo $(row mail))"
check_eq "idle: nothing" "0 0 0 0 no" "$(echo $(row idle))"
check "default's oldest waiting job has an age" \
    grep -Eq '^[0-9]+\.[0-9]s$' <<<"$(field "$f" default 7)"
check_eq "idle: no oldest age" "-" "$(field "$f" idle 7)"
check_eq "no rates from one reading" "- -" \
    "$(field "$f" default 8) $(field "$f" default 9)"
check "the helper is down" grep -q '^helper DOWN ' <<<"$f"
check_eq "the counts per state are the database's" \
    "$(sql known "SELECT count(*) FROM jobs WHERE queue = 'default'
    AND state = 'queued'")" "$(field "$f" default 2)"
ctl known top -n 3 >"$T/known3.out"
check_eq "top -n 3: three frames" 3 "$(frames "$T/known3.out")"
check "no line over 80 columns" test "$(widest "$T/known3.out")" -le 80
check "no escape in plain frames" \
    test "$(grep -c $'\033' "$T/known3.out")" -eq 0
check_eq "rates from the second frame on, none moving" "0.0 0.0" \
    "$(f=$(last_frame "$T/known3.out"); echo $(field "$f" default 8) \
    $(field "$f" default 9))"
check_eq "-n 0 is a usage error" 2 \
    "$(ctl known top -n 0 >/dev/null 2>&1; echo $?)"

# --- traffic: a helper runs 10 jobs that succeed and 2 that fail twice
"$FCGIQ" work -c "$T/traffic.conf" 2>>"$T/work.log" &
track $!
helper_up() { ctl traffic top -n 1 | grep -q '^helper up '; }
check "top sees the helper up" wait_for helper_up
# Started directly, not through ctl: its pid is top's own, for SIGINT.
"$FCGIQCTL" -c "$T/traffic.conf" top >"$T/traffic.out" 2>"$T/traffic.err" &
top_pid=$!
track "$top_pid"
has_frames() { [ "$(frames "$T/traffic.out")" -ge "$1" ]; }
wait_for has_frames 1 || bail "top printed no frame"
for i in $(seq 10); do echo "$i" | ctl traffic enqueue default >/dev/null; done
for i in 1 2; do echo "$i" | ctl traffic enqueue mail >/dev/null; done
all_finished() {
	[ "$(sql traffic "SELECT count(*) FROM jobs
	    WHERE state IN ('done', 'dead')")" = 12 ]
}
check "every job finished" wait_for all_finished
# Two frames later, the counts (a second old at most) include them.
n=$(frames "$T/traffic.out")
wait_for has_frames $((n + 3)) || bail "top stopped printing frames"
kill -INT "$top_pid"
gone() { ! kill -0 "$top_pid" 2>/dev/null; }
check "SIGINT ends top" wait_for gone
wait "$top_pid"
check_eq "... with status 0" 0 "$?"
f=$(last_frame "$T/traffic.out")
check "the helper is up" grep -q '^helper up ' <<<"$f"
check_eq "default: none waiting, running or dead" "0 0 0" \
    "$(echo $(field "$f" default 2) $(field "$f" default 3) \
    $(field "$f" default 5))"
check_eq "mail: 2 dead, as in the database" \
    "$(sql traffic "SELECT count(*) FROM jobs WHERE queue = 'mail'
    AND state = 'dead'")" "$(field "$f" mail 5)"
# Rates over at most a minute: 10 done is at least 10 a minute, 4 failed
# attempts at least 4; 12 enqueued within 10 s at least 1.2 a second.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
check "default: done per minute >= 10 ($(field "$f" default 8))" \
    ge "$(field "$f" default 8)" 10
check "default: no failed attempt" test "$(field "$f" default 9)" = 0.0
check "mail: failed per minute >= 4 ($(field "$f" mail 9))" \
    ge "$(field "$f" mail 9)" 4
intake=$(printf '%s\n' "$f" | sed -n 's/.* intake \([0-9.]*\)\/s .*/\1/p')
check "intake per second >= 1.2 ($intake)" ge "$intake" 1.2
check "no line over 80 columns" test "$(widest "$T/traffic.out")" -le 80

# --- on a terminal: script(1) gives top a pty; keys go through a fifo
# tty_run KEY: run top on a 60-column pty, send KEY after its first
# frame; the output in $T/tty.out.
tty_run() {
	local key=$1 pid
	rm -f "$T/keys" "$T/tty.out"
	mkfifo "$T/keys"
	exec 7<>"$T/keys"
	# script runs the line with $SHELL: bash, as a user's would be (dash
	# dies of the ^C meant for top before it can print rc and stty -g).
	SHELL=/bin/bash timeout 30 script -qfec "stty cols 60; stty -g; \"$FCGIQCTL\" -c \
	    \"$T/known.conf\" top; echo \"rc=\$?\"; stty -g" /dev/null \
	    <"$T/keys" >"$T/tty.out" 2>&1 &
	pid=$!
	track "$pid"
	drawn() { grep -q 'QUEUE' "$T/tty.out"; }
	wait_for drawn || { exec 7>&-; return 1; }
	printf '%b' "$key" >&7
	wait "$pid"
	exec 7>&-
}
for key in q '\003'; do
	name=$([ "$key" = q ] && echo q || echo ^C)
	check "$name: top on a terminal draws and ends" tty_run "$key"
	tr -d '\r' <"$T/tty.out" >"$T/tty.txt"
	check "$name: the alternate screen, then back" \
	    grep -q $'\033\\[?1049h.*' "$T/tty.txt"
	check "$name: ... left at the end, cursor shown" \
	    grep -q $'\033\\[?25h\033\\[?1049lrc=0$' "$T/tty.txt"
	# stty -g before and after: two lines, the same.
	settings=$(grep -E '^[0-9a-f]+(:[0-9a-f]+)+$' "$T/tty.txt")
	check_eq "$name: the terminal's settings given back" "2 1" \
	    "$(echo $(wc -l <<<"$settings") $(sort -u <<<"$settings" | wc -l))"
	check_eq "$name: lines cut to the terminal's 60 columns" 60 \
	    "$(sed -e $'s/\033\\[[0-9;?]*[a-zA-Z]//g' "$T/tty.txt" |
	    grep -Ev '^[0-9a-f]+(:[0-9a-f]+)+$' | widest)"
done

done_testing
