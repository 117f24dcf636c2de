#!/bin/bash
# tests/e2e/hostile-handlers.sh: handlers that misbehave on purpose
# (tests/handlers/hostile/hostile.c), run by the helper as a user runs it:
# nginx (the shipped conf-examples/nginx.conf) in front of one fcgiq under
# spawn-fcgi (conf-examples/spawn-fcgi.sh), jobs posted with curl, outcomes
# read with sqlite3.  Each misbehaviour has a queue of its own.
#
# Each case must be contained — by the timeout (SIGTERM to the group, then
# SIGKILL), by the queue's rlimits, by the process group killed when its
# leader exits — and leave the helper as it was: the same pid (not crashed
# and restarted by its supervisor), no zombie children, nothing left of the
# handler's process group, no fd growth, no runaway memory or CPU.
#
# Cases: CPU loop (timeout: killed, retried, dead; SIGTERM ignored: SIGKILL
# after the grace; rlimit_cpu: killed long before the timeout); memory hog
# under rlimit_as (a failed attempt); 200 MiB of stdout (result capped at
# max_result, helper RSS flat); endless stdout past the timeout; a 1 MiB
# body never read; stdin closed early (EPIPE); a background child holding
# stdout; a double-forked daemon in the group; a child that leaves the
# group with setsid() and floods the handler's stdout and stderr, or holds them.
. "$(dirname "$0")/../lib.sh"

for c in nginx spawn-fcgi curl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
HOSTILE=$top_builddir/tests/handlers/hostile/hostile
[ -x "$HOSTILE" ] || bail "no $HOSTILE: make check builds it"

DB=$T/var/q.db
SOCK=$T/run/fcgiq.sock
ST=$T/state			# hostile records its pids here
mkdir -p "$T/var" "$T/run" "$ST"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT

# queue NAME MODE [KEY = VALUE lines]: a queue running `hostile MODE`.
queue() {
	local name=$1 mode=$2
	shift 2
	printf '\n[queue %s]\nhandler = exec:%s %s %s\nuser = root\n' "$name" "$HOSTILE" "$ST" "$mode"
	printf '%s\n' "$@"
}
{
	cat <<-EOF
	[fcgiq]
	database = $DB
	grace    = 2s
	log      = info
	max_body = 4M
	EOF
	queue spin spin "timeout = 1s" "max_attempts = 2" "backoff = 50ms..100ms"
	queue noterm spin-noterm "timeout = 1s" "max_attempts = 1"
	queue cpu spin "rlimit_cpu = 1s" "timeout = 60s" "max_attempts = 1"
	queue hog "hog 1024" "rlimit_as = 256M" "max_attempts = 2" "backoff = 50ms..100ms"
	queue flood "flood 200" "timeout = 60s" "max_result = 64K"
	queue endless "flood 0" "timeout = 1s" "max_attempts = 1"
	queue noread noread "timeout = 10s"
	queue closein closein "timeout = 10s"
	queue bgchild bgchild "timeout = 10s" "max_attempts = 1"
	queue daemon daemon "timeout = 10s" "max_attempts = 1"
	queue escape escape "timeout = 10s" "max_attempts = 1"
	queue escapequiet escape-quiet "timeout = 10s" "max_attempts = 1"
	printf '\n[queue quick]\nhandler = exec:/bin/cat\nuser = root\n'
} >"$T/fcgiq.conf"
"$FCGIQ" -t -c "$T/fcgiq.conf" >/dev/null 2>&1 || bail "bad test configuration: $("$FCGIQ" -t -c "$T/fcgiq.conf" 2>&1)"

# The shipped nginx.conf with this test's socket, port, user and body
# limit, plus one location that routes /q/NAME to the queue NAME.
cat >"$T/q-location.conf" <<'EOF'
		location ~ ^/q/([A-Za-z0-9_-]+)$ {
			include fastcgi_params;
			fastcgi_param HTTP_PROXY "";
			fastcgi_param FCGIQ_QUEUE $1;
			fastcgi_pass fcgiq;
		}
EOF
mkdir -p "$T/nginx"
cp /etc/nginx/fastcgi_params "$T/nginx/"
sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
    -e "s|^user www-data;|user root;|" \
    -e "s|client_max_body_size 1m;|client_max_body_size 4m;|" \
    -e "/# (more intake locations here)/r $T/q-location.conf" \
    "$top_srcdir/conf-examples/nginx.conf" >"$T/nginx/nginx.conf"
grep -q 'location ~ \^/q/' "$T/nginx/nginx.conf" && grep -q "client_max_body_size 4m" "$T/nginx/nginx.conf" ||
    bail "conf-examples/nginx.conf no longer has the lines the test substitutes"
start_nginx "$T/nginx/nginx.conf" || bail "nginx did not start"

# fcgiq's log (and its helper's) is kept: spawn-fcgi sends stderr nowhere.
printf '#!/bin/sh\nexec "%s" "$@" 2>>"%s"\n' "$FCGIQ" "$T/fcgiq.log" >"$T/fcgiq-wrapper"
chmod 755 "$T/fcgiq-wrapper"
out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf FCGIQ_BIN=$T/fcgiq-wrapper \
    FCGIQ_CHILDREN=1 sh "$top_srcdir/conf-examples/spawn-fcgi.sh" 2>&1) ||
    bail "spawn-fcgi failed: $out"
FCGIQ_PID=$(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p')
[ -n "$FCGIQ_PID" ] || bail "spawn-fcgi: no pid in: $out"
track "$FCGIQ_PID"
# wake_bound DB: the active helper's wake-up socket is bound (an abstract
# name from the database's device and inode, see queue/wake.c).
wake_bound() {
	local n
	n=$(stat -c '%d %i' "$1" 2>/dev/null) || return 1
	set -- $n
	grep -q "@fcgiq-wake-$(printf '%x-%x' "$1" "$2")\$" /proc/net/unix
}
wait_for wake_bound "$DB" || bail "no helper became active"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# post QUEUE [curl args...]: the new job's id on stdout.
post() {
	local q=$1
	shift
	[ $# -gt 0 ] || set -- --data-binary x
	curl -s -X POST "$@" "$URL/q/$q" | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
# wait_state ID "STATES" [SECONDS]
wait_state() {
	local id=$1 want=" $2 " i s
	for i in $(seq $((${3:-10} * 20))); do
		s=$(field "$id" state)
		case $want in *" $s "*) return 0 ;; esac
		sleep 0.05
	done
	echo "# job $id: state $(field "$id" state), wanted $2" >&2
	return 1
}
# stat_field PID N: field N of /proc/PID/stat (3 state, 4 ppid, 5 pgid,
# 14 utime, 15 stime), counted as proc(5) counts them.
stat_field() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f$(($2 - 2)); }
alive() { [ -r "/proc/$1/stat" ] && [ "$(stat_field "$1" 3)" != Z ]; }
# in_group PGID: every process (zombies too) in process group PGID.
in_group() { ps -eo pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }' | xargs; }
# zombies_of PID: its children that are zombies.
zombies_of() { ps -eo pid=,ppid=,stat= | awk -v p="$1" '$2 == p && $3 ~ /^Z/ { print $1 }' | xargs; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { echo $(( $(stat_field "$1" 14) + $(stat_field "$1" 15) )); }
helper_pid() { cat "$DB-helper.lock" 2>/dev/null; }

HELPER=$(helper_pid)
check "the helper is up (pid $HELPER)" alive "${HELPER:-0}"
FD0=$(fds "$HELPER")

# contained NAME ID: after a job ends, what must hold of the helper and of
# every process the job's handler runs started.
contained() {
	local name=$1 id=$2 f pgid left="" i
	# The job's end is stored before the helper has reaped what it
	# killed and closed its pipes, and a killed group's last members
	# are on their way out: wait (bounded) for the state the checks
	# below want, then check it.
	for i in $(seq 100); do
		left=""
		for f in "$ST/$id".*.pid; do
			[ -e "$f" ] || continue
			pgid=$(cut -d' ' -f2 "$f")
			left="$left $(in_group "$pgid")"
		done
		left=$(echo $left)
		[ -z "$left" ] && [ -z "$(zombies_of "$HELPER")" ] &&
		    [ "$(fds "$HELPER")" = "$FD0" ] && break
		sleep 0.1
	done
	check_eq "$name: the helper is the same process" "$HELPER" "$(helper_pid)"
	check "$name: the helper is alive" alive "$HELPER"
	check_eq "$name: no zombie children of the helper" "" "$(zombies_of "$HELPER")"
	check_eq "$name: nothing left of the handler's process group" "" "$left"
	check_eq "$name: no fd growth in the helper" "$FD0" "$(fds "$HELPER")"
}
runs() { ls "$ST" | grep -c "^$1\.[0-9]*\.pid$"; }

# --- an endless CPU loop: timeout -> SIGTERM, retried, dead
id=$(post spin)
wait_state "$id" "dead" 15
check_eq "spin: dead after 2 attempts" "dead|2" "$(field "$id" "state || '|' || attempts")"
check_eq "spin: reason recorded" "timeout after 1s" "$(field "$id" last_error)"
check_eq "spin: it ran twice" 2 "$(runs "$id")"
contained spin "$id"

# --- the same with SIGTERM ignored: SIGKILL after the grace (2 s)
t0=$(date +%s%N)
id=$(post noterm)
wait_state "$id" "dead" 15
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "spin, SIGTERM ignored: dead, timeout recorded" "dead|timeout after 1s" \
    "$(field "$id" "state || '|' || last_error")"
check "... killed by SIGKILL after timeout + grace (${ms} ms)" test "$ms" -ge 2900 -a "$ms" -lt 10000
contained noterm "$id"

# --- rlimit_cpu = 1s with timeout 60s: the CPU limit ends it, not the
# timeout.  exec.c sets the soft and the hard limit alike, and at the hard
# limit the kernel sends SIGKILL (SIGXCPU only comes from a lower soft one)
t0=$(date +%s%N)
id=$(post cpu)
wait_state "$id" "dead" 20
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "rlimit_cpu: killed at the CPU limit, a failed attempt" "dead|killed by signal 9" \
    "$(field "$id" "state || '|' || last_error")"
check "... long before the 60 s timeout (${ms} ms)" test "$ms" -lt 15000
contained rlimit_cpu "$id"

# --- a memory hog under rlimit_as = 256M
hwm0=$(rss_kb "$HELPER" VmHWM)
id=$(post hog)
wait_state "$id" "dead" 15
check_eq "hog: failed twice, dead" "dead|2" "$(field "$id" "state || '|' || attempts")"
check "hog: exit 1 with its stderr as the reason ($(field "$id" last_error))" \
    grep -Eq '^exit 1: hog: out of memory after [0-9]+ MiB$' <<<"$(field "$id" last_error)"
mib=$(field "$id" last_error | sed -n 's/.*after \([0-9]*\) MiB$/\1/p')
check "hog: stopped below the 256 MiB limit (${mib:-?} MiB)" test "${mib:-999}" -lt 256
hwm1=$(rss_kb "$HELPER" VmHWM)
# The hog takes ~250 MiB: a helper that followed it would grow by as much.
# The bound leaves room for an ASan build's own quarantine and shadow
# (+9 MiB seen on a clean CI machine), not for the hog.
check "hog: the helper's peak RSS did not follow it ($hwm0 -> $hwm1 kB)" test $((hwm1 - hwm0)) -lt 65536
contained hog "$id"

# --- 200 MiB of stdout: the result is the first max_result bytes, and
# the helper's memory does not grow with what it throws away
hwm0=$(rss_kb "$HELPER" VmHWM)
rss0=$(rss_kb "$HELPER" VmRSS)
t0=$(date +%s%N)
id=$(post flood)
wait_state "$id" "done dead" 60
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "flood: done" "done|1" "$(field "$id" "state || '|' || attempts")"
check_eq "flood: result cut at max_result (64K)" 65536 "$(field "$id" "length(result)")"
check_eq "flood: the result is the start of the output" \
    "$(printf '%063d\n' 0 | tr 0 A)" "$(field "$id" "CAST(substr(result, 1, 64) AS TEXT)")"
check "flood: the 200 MiB went by ($(grep -c "result cut to 65536 of 209715200 bytes" "$T/fcgiq.log") log line)" \
    grep -q "job $id: result cut to 65536 of 209715200 bytes" "$T/fcgiq.log"
hwm1=$(rss_kb "$HELPER" VmHWM)
rss1=$(rss_kb "$HELPER" VmRSS)
echo "# flood: 200 MiB in $ms ms; helper VmRSS $rss0 -> $rss1 kB, VmHWM $hwm0 -> $hwm1 kB"
check "flood: helper peak RSS grew by less than 8 MiB ($hwm0 -> $hwm1 kB)" test $((hwm1 - hwm0)) -lt 8192
contained flood "$id"

# --- stdout without end, past the timeout: the timeout still fires
t0=$(date +%s%N)
id=$(post endless)
wait_state "$id" "dead done" 20
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "endless stdout: stopped by the timeout" "dead|timeout after 1s" \
    "$(field "$id" "state || '|' || last_error")"
check "... within timeout + grace ($ms ms)" test "$ms" -lt 6000
check "endless stdout: the helper logged the timeout and stopped it" \
    grep -q "job $id: attempt 1: timeout, stopping" "$T/fcgiq.log"
contained endless "$id"

# --- a 1 MiB body that is never read: no block, the handler finishes
head -c 1048576 /dev/zero | tr '\0' 'b' >"$T/1m"
id=$(post noread --data-binary @"$T/1m")
check "noread: 1 MiB body accepted" test -n "$id"
wait_state "$id" "done dead" 10
check_eq "noread: done, its output the result" "done|noread done" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
check_eq "noread: the body was stored whole" 1048576 "$(field "$id" "length(body)")"
contained noread "$id"

# --- stdin closed after 16 bytes: the helper's write meets EPIPE
id=$(post closein --data-binary @"$T/1m")
wait_state "$id" "done dead" 10
check_eq "closein: done (EPIPE handled)" "done|closein done" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
contained closein "$id"

# --- children that outlive the handler.  `kid` NAME ID: the child's pid.
kid() { cut -d' ' -f1 "$ST/$1.1.kid" 2>/dev/null; }
for c in bgchild daemon; do
	t0=$(date +%s%N)
	id=$(post "$c")
	wait_state "$id" "done dead" 10
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	k=$(kid "$id")
	[ -n "$k" ] && track "$k"
	check_eq "$c: done at once, not at the timeout ($ms ms)" "done|$c done" \
	    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
	check "$c: the handler's group leader was its parent" \
	    test "$(cut -d' ' -f2 "$ST/$id.1.kid" 2>/dev/null)" = "$(cut -d' ' -f1 "$ST/$id.1.pid")"
	contained "$c" "$id"
	check "$c: the child ($k) is gone" test -n "$k" -a ! -d "/proc/${k:-0}"
done

# --- a child that leaves the group with setsid(), grows the pipes to 1 MiB
# and floods both stdout and stderr from two processes; or only holds
# stdout.  After the handler exits, the helper reads what is in the pipes
# with a bound, closes them and goes on; it never waits for an EOF that
# would not come, and never spins.  The escaped children, reparented to
# the helper, are killed.
for c in escape escapequiet; do
	t0=$(date +%s%N)
	id=$(post "$c")
	wait_state "$id" "done dead" 10
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	kids=$(cut -d' ' -f1 "$ST/$id.1.kid" 2>/dev/null | xargs)
	for k in $kids; do track "$k"; done
	check_eq "$c: done, not held by the escaped child ($ms ms)" "done" "$(field "$id" state)"
	check "$c: the children ($kids) left the handler's group" \
	    test -n "$kids" -a "$(cut -d' ' -f2 "$ST/$id.1.kid" 2>/dev/null | sort -u)" != \
	    "$(cut -d' ' -f2 "$ST/$id.1.pid")"
	contained "$c" "$id"
	c0=$(cpu_ticks "$HELPER")
	qid=$(post quick --data-binary "still serving")
	wait_state "$qid" "done dead" 10
	check_eq "$c: the helper still runs jobs" "done|still serving" \
	    "$(field "$qid" "state || '|' || CAST(result AS TEXT)")"
	sleep 1
	c1=$(cpu_ticks "$HELPER")
	check "$c: the helper is idle, not spinning ($((c1 - c0)) ticks)" test $((c1 - c0)) -lt 50
	# Out of the group, but not out of reach: they came to the helper
	# (a subreaper) when the handler exited, and it killed them.
	left=""
	for i in $(seq 100); do
		left=""
		for k in $kids; do alive "$k" && left="$left $k"; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	check_eq "$c: the escaped children are gone" "" "$(echo $left)"
done
check "the helper logged the escaped children it killed" \
    grep -q 'outlived its handler: killed' "$T/fcgiq.log"

# --- after all of it
check_eq "the supervisor never restarted the helper" "" "$(grep -E 'helper: pid [0-9]+: ' "$T/fcgiq.log")"
check_eq "no job is left running" 0 "$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")"

done_testing
