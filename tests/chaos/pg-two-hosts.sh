#!/bin/bash
# tests/chaos/pg-two-hosts.sh: two "hosts" sharing one PostgreSQL, under
# load, with kill -9 on both and a crash of PostgreSQL itself.
#
#   one private cluster (tests/pg-lib.sh)
#   host A, host B: each a run directory $T/a, $T/b with its own nginx
#   (conf-examples/nginx.conf, its own free port), its own fcgiq under
#   spawn-fcgi -F 2 (conf-examples/spawn-fcgi.sh, its own socket and
#   configuration file), so two supervisors and two helpers a host, every
#   helper active (no helper lock on PostgreSQL); the handler sleeps 30 ms
#   and appends "id attempt host helper-pid handler-pid" to its host's
#   runs.log.
#
# Load: two sequential clients a host POST unique bodies until the chaos
# schedule ends; each answer is logged as "host start-ms end-ms code
# retry-after id".  Chaos, on a fixed schedule (no random choice; the
# victims are the lowest pids of their kind): kill -9 of handlers, helpers
# (their supervisor forks another), supervisors (their fcgiq starts
# another), and of both responders of a host, which the suite starts again
# at once through spawn-fcgi, as at the start; in the middle of the load,
# pg_ctl restart -m immediate.
#
# Checks: every 202's job is in the database and ends done; each ran at
# least once (a handler logged it); every job in the database is done, none
# dead; every 503 carries Retry-After; no 5xx but 503, except the 502s of
# requests in flight while a host's responders were dead (nginx's answer
# for a dead upstream); both hosts answered 202 and both hosts' helpers ran
# jobs; no line in the fcgiq logs beyond the expected warnings, no
# sanitizer report.
#
# A helper killed -9 leaves its jobs 'running' until their lease ends
# (timeout + 32 s) and another helper requeues them: the drain waits for
# that, so the kills come early and the timeout is 1 s.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/pg-lib.sh"

for c in nginx spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"

pg_start

H=$T/handlers
mkdir -p "$H"
cat >"$H/record.sh" <<'EOF'
#!/bin/sh
# record RUNS HOST: read the body, take a little time, log the run.
cat >/dev/null
sleep 0.03
echo "$FCGIQ_JOB_ID $FCGIQ_ATTEMPT $2 $PPID $$" >>"$1"
EOF
chmod 755 "$H/record.sh"

now_ms() { NOW=${EPOCHREALTIME/./}; NOW=$((NOW / 1000)); }

# ------------------------------------------------------------ the hosts
# host_setup NAME: run directory, configuration, fcgiq wrapper, nginx.
declare -A PORT RESP
host_setup() {
	local d=$T/$1 port
	mkdir -p "$d/nginx/logs" "$d/nginx/tmp"
	: >"$d/runs.log"
	cat >"$d/fcgiq.conf" <<-EOF
	[fcgiq]
	database = $PG_URI
	log      = info
	path     = /usr/local/bin:/usr/bin:/bin
	metrics_file = $d/metrics

	[queue default]
	handler      = exec:$H/record.sh $d/runs.log $1
	user         = root
	concurrency  = 4
	max_attempts = 20
	timeout      = 1s
	backoff      = 10ms..200ms
	EOF
	# spawn-fcgi sends its children's stderr to /dev/null: keep the log.
	cat >"$d/fcgiq" <<-EOF
	#!/bin/sh
	exec "$FCGIQ" "\$@" 2>>"$d/fcgiq.log"
	EOF
	chmod 755 "$d/fcgiq"
	port=$(free_port)
	PORT[$1]=$port
	cp /etc/nginx/fastcgi_params "$d/nginx/"
	sed -e 's|^user .*;|user root;|' \
	    -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$d/fcgiq.sock|" \
	    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$port;|" \
	    "$top_srcdir/conf-examples/nginx.conf" >"$d/nginx/nginx.conf"
	grep -q "listen 127.0.0.1:$port;" "$d/nginx/nginx.conf" ||
	    bail "conf-examples/nginx.conf no longer has the lines the test substitutes"
	# start_nginx's prefix is $T/nginx: each host needs its own.
	nginx -p "$d/nginx" -c "$d/nginx/nginx.conf" \
	    -g "pid $d/nginx/nginx.pid; error_log $d/nginx/logs/error.log;" \
	    2>"$d/nginx/start.err" || bail "nginx $1: $(cat "$d/nginx/start.err")"
	wait_for test -s "$d/nginx/nginx.pid" || bail "nginx $1 wrote no pid"
	track "$(cat "$d/nginx/nginx.pid")"
}

# pstart PID: PSTART, the start time of PID (field 22 of its stat), so a
# recycled pid is never taken for ours; fails when it is gone or a zombie.
pstart() {
	local l
	PSTART=""
	{ read -r l <"/proc/$1/stat"; } 2>/dev/null || return 1
	l=${l##*) }
	set -- $l
	[ "$1" != Z ] && [ "$1" != X ] || return 1
	PSTART=${20}
}
# host_spawn NAME: fcgiq x 2 on the host's socket (a stale one removed by
# the script); RESP[NAME] = "pid:start ...".
host_spawn() {
	local d=$T/$1 out p s
	out=$(FCGIQ_SOCKET=$d/fcgiq.sock FCGIQ_CONF=$d/fcgiq.conf \
	    FCGIQ_BIN=$d/fcgiq FCGIQ_CHILDREN=2 \
	    sh "$top_srcdir/conf-examples/spawn-fcgi.sh" 2>>"$d/spawn.log") ||
	    return 1
	RESP[$1]=""
	for p in $(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p'); do
		pstart "$p" && RESP[$1]="${RESP[$1]} $p:$PSTART"
	done
	[ -n "${RESP[$1]}" ]
}
# live NAME: LIVE, the host's responders still running.
live() {
	local r
	LIVE=""
	for r in ${RESP[$1]}; do
		pstart "${r%%:*}" && [ "$PSTART" = "${r#*:}" ] &&
		    LIVE="$LIVE ${r%%:*}"
	done
	return 0
}
CLIENTS=""
two_cleanup() {
	local p h
	for p in $CLIENTS; do stop_pid "$p"; done
	for h in a b; do
		live "$h"
		for p in $LIVE; do stop_pid "$p"; done
	done
	_pg_exit
}
trap two_cleanup EXIT

host_setup a
host_setup b
host_spawn a || bail "spawn-fcgi a: $(cat "$T/a/spawn.log")"
host_spawn b || bail "spawn-fcgi b: $(cat "$T/b/spawn.log")"
active_helpers() {
	[ "$(grep -c 'helper: postgresql:.*: active' "$T/$1/fcgiq.log" 2>/dev/null)" -ge 2 ]
}
check "host a: both helpers active" wait_for active_helpers a
check "host b: both helpers active" wait_for active_helpers b
up() { curl -s -o /dev/null "http://127.0.0.1:${PORT[$1]}/"; }
wait_for up a && wait_for up b || bail "nginx does not answer"

# The chaos loop forks little (on a loaded box a fork can take 100 ms, and a
# handler lives about 30 ms): /proc is read with builtins.
# kids PID [COMM]: KIDS, the children of PID (with that command name).
kids() {
	local f c x all=""
	for f in /proc/"$1"/task/*/children; do
		c=""
		{ read -r c <"$f"; } 2>/dev/null
		all="$all $c"
	done
	KIDS=""
	for c in $all; do
		if [ -n "${2:-}" ]; then
			x=""
			{ read -r x <"/proc/$c/comm"; } 2>/dev/null
			[ "$x" = "$2" ] || continue
		fi
		KIDS="$KIDS $c"
	done
}
# lowest HOST KIND: LOW, the host's live process of a kind with the lowest
# pid (empty if none).
lowest() {
	local r s h x l=()
	live "$1"
	for r in $LIVE; do
		[ "$2" = responder ] && { l+=("$r"); continue; }
		kids "$r" fcgiq-superv
		for s in $KIDS; do
			[ "$2" = supervisor ] && { l+=("$s"); continue; }
			kids "$s" fcgiq-helper
			for h in $KIDS; do
				[ "$2" = helper ] && { l+=("$h"); continue; }
				kids "$h"
				for x in $KIDS; do l+=("$x"); done
			done
		done
	done
	LOW=""
	for x in "${l[@]}"; do
		[ -z "$LOW" ] || [ "$x" -lt "$LOW" ] && LOW=$x
	done
	return 0
}

# ------------------------------------------------------------ the clients
# client HOST TAG: sequential POSTs to the host's nginx until $T/stop.
client() {
	local url="http://127.0.0.1:${PORT[$1]}/hooks/pc" i=0 s out l code ra id
	local host=$1 tag=$2
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		s=${EPOCHREALTIME/./}
		out=$(curl -s -m 20 -D - -X POST --data-binary "pc-$tag-$i" \
		    "$url/$tag-$i" 2>/dev/null)
		now_ms
		code=000 ra=- id=-
		while IFS= read -r l; do
			l=${l%$'\r'}
			case $l in
			HTTP/*) code=${l#* }; code=${code%% *} ;;
			[Rr]etry-[Aa]fter:*) ra=${l#*: } ;;
			*'"id":"'*) id=${l#*\"id\":\"}; id=${id%%\"*} ;;
			esac
		done <<<"$out"
		echo "$host $((s / 1000)) $NOW $code $ra $id"
	done >"$T/client-$tag.log"
}

# ------------------------------------------------------------ the chaos
KILLS=$T/kills.log
: >"$KILLS"
WINDOWS=$T/windows.log		# "host from-ms to-ms": responders dead
: >"$WINDOWS"
# kill_kind HOST KIND: kill -9 the lowest pid of that kind on the host;
# tried again for up to 1 s while there is none or it is gone before the
# kill (a handler lives about 30 ms).
kill_kind() {
	local p i
	for i in $(seq 10); do
		lowest "$1" "$2"
		p=$LOW
		if [ -n "$p" ] && kill -9 "$p" 2>/dev/null; then
			now_ms
			echo "$((NOW - t0)) $1 $2 $p" >>"$KILLS"
			return 0
		fi
		sleep 0.1
	done
	echo "# no $2 on host $1 to kill"
}
# kill_responders HOST: kill -9 both responders, wait for them to go, start
# two again through spawn-fcgi.
kill_responders() {
	local from p i
	now_ms
	from=$NOW
	live "$1"
	for p in $LIVE; do
		kill -9 "$p" && echo "$((NOW - t0)) $1 responder $p" >>"$KILLS"
	done
	for i in $(seq 50); do live "$1"; [ -z "$LIVE" ] && break; sleep 0.1; done
	host_spawn "$1" || not_ok "host $1: spawn-fcgi again" "$(tail -3 "$T/$1/spawn.log")"
	now_ms
	echo "$1 $from $NOW" >>"$WINDOWS"
}
# The schedule: ms after the load starts, what to do.
SCHEDULE="
1000 kill_kind a handler
1500 kill_kind a helper
2500 kill_kind b helper
3000 kill_kind b supervisor
4000 kill_kind b handler
4500 kill_responders b
5500 kill_responders a
7500 pg_restart
10000 kill_kind a supervisor
11000 kill_kind b handler
12000 kill_kind a handler
15000 end
"
pg_restart() {
	now_ms
	echo "$((NOW - t0)) - postgresql $PG_PID" >>"$KILLS"
	pg_restart_immediate || bail "PostgreSQL did not restart: $(tail -5 "$PG_DIR/server.log")"
}

now_ms
t0=$NOW
for c in a1:a a2:a b1:b b2:b; do
	client "${c#*:}" "${c%:*}" &
	CLIENTS="$CLIENTS $!"
done
while read -r at what; do
	[ -n "$at" ] || continue
	now_ms
	d=$((t0 + at - NOW))
	[ "$d" -gt 0 ] && sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
	[ "$what" = end ] && break
	$what
done <<<"$SCHEDULE"
touch "$T/stop"
for p in $CLIENTS; do wait "$p"; done
CLIENTS=""
now_ms
load_ms=$((NOW - t0))
cat "$T"/client-*.log >"$T/client.log"
sed 's/^/# kill at /' "$KILLS"
count() { awk -v h="$1" -v c="$2" '(h == "-" || $1 == h) && $4 == c' "$T/client.log" | wc -l; }
echo "# load: $(wc -l <"$T/client.log") requests in $load_ms ms;" \
    "a: $(count a 202) x 202, $(count a 503) x 503, $(count a 502) x 502;" \
    "b: $(count b 202) x 202, $(count b 503) x 503, $(count b 502) x 502"

# ------------------------------------------------------------ the drain
now_ms
t1=$NOW
waiting() {
	[ "$(pg_psql -c "SELECT count(*) FROM jobs
	    WHERE state IN ('queued', 'running', 'retry')" 2>/dev/null)" = 0 ]
}
for i in $(seq 90); do waiting && break; sleep 1; done
now_ms
echo "# drain: $(( (NOW - t1) / 1000 )) s after the load"
check "drain: nothing queued, running or in retry" waiting
pg_psql -c "SELECT state, count(*) FROM jobs GROUP BY state" | sed 's/^/# jobs: /'

# ------------------------------------------------------------ the checks
awk '$4 == 202 { print $6 }' "$T/client.log" | sort >"$T/acked"
pg_psql -c "SELECT id FROM jobs" | sort >"$T/stored"
pg_psql -c "SELECT id FROM jobs WHERE state = 'done'" | sort >"$T/done"
cat "$T/a/runs.log" "$T/b/runs.log" | awk '{ print $1 }' | sort -u >"$T/ran"
acked=$(wc -l <"$T/acked")
check "acknowledged jobs ($acked)" test "$acked" -gt 0
check_eq "every 202 names its own job" "$acked" "$(sort -u "$T/acked" | wc -l)"
check_eq "every acknowledged job is in the database" "" \
    "$(comm -23 "$T/acked" "$T/stored" | head -5 | xargs)"
check_eq "every acknowledged job is done" "" \
    "$(comm -23 "$T/acked" "$T/done" | head -5 | xargs)"
check_eq "every acknowledged job ran at least once (a handler logged it)" "" \
    "$(comm -23 "$T/acked" "$T/ran" | head -5 | xargs)"
check_eq "every job in the database is done" "" \
    "$(pg_psql -c "SELECT state || ':' || count(*) FROM jobs
    WHERE state <> 'done' GROUP BY state" | xargs)"
n503=$(count - 503)
check "503s while PostgreSQL restarted ($n503)" test "$n503" -gt 0
check_eq "every 503 carries Retry-After" "" \
    "$(awk '$4 == 503 && $5 == "-"' "$T/client.log" | head -3)"
# A 502 is nginx's answer for a dead upstream: only for a request of a host
# in flight while its responders were dead (and 1 s after their restart,
# for kept connections to the dead ones).
check_eq "no 5xx but 503, except 502s while a host's responders were dead" "" \
    "$(awk 'NR == FNR { h[NR] = $1; f[NR] = $2; t[NR] = $3 + 1000; n = NR; next }
	$4 !~ /^5/ || $4 == 503 { next }
	$4 == 502 { for (i = 1; i <= n; i++)
		if (h[i] == $1 && $2 <= t[i] && $3 >= f[i]) next }
	{ print }' "$WINDOWS" "$T/client.log" | head -3)"
check_eq "every request answered (none timed out or failed)" "" \
    "$(awk '$4 == "000"' "$T/client.log" | head -3)"
ra=$(wc -l <"$T/a/runs.log")
rb=$(wc -l <"$T/b/runs.log")
echo "# runs: host a $ra, host b $rb; re-runs $(cat "$T"/[ab]/runs.log |
    awk '{ print $1 }' | sort | uniq -d | wc -l);" \
    "jobs with attempts > 1: $(pg_psql -c "SELECT count(*) FROM jobs WHERE attempts > 1")"
check "both hosts answered 202" test "$(count a 202)" -gt 0 -a "$(count b 202)" -gt 0
check "both hosts' helpers ran jobs" test "$ra" -gt 0 -a "$rb" -gt 0

# ------------------------------------------------------------ the logs
# The warnings this chaos causes, and nothing else at warn or above.
EXPECTED="request: [0-9]+: queue unavailable\$|\
PostgreSQL: not connected \(reconnecting in [0-9]+ ms\)\$|\
PostgreSQL: reconnect: connection to server .* failed: |\
server closed the connection unexpectedly\$|\
helper: pid [0-9]+: killed by signal 9; starting another in [0-9]+ ms\$|\
helper: supervisor pid [0-9]+ exited\$|\
helper: [0-9]+ jobs? with an expired lease requeued\$|\
helper: pid [0-9]+ outlived its handler: killed\$|\
helper: job [^ ]+: attempt [0-9]+: lease lost, outcome dropped\$"
EXPECTED=${EXPECTED//$'\n'/}
# "lease lost, outcome dropped": a batch of outcomes whose COMMIT reached
# PostgreSQL as it went down, the answer lost; committed again after the
# reconnect, its fenced updates find the jobs done already.  Each such job
# must be done, at that attempt.
grep -h 'lease lost, outcome dropped' "$T"/[ab]/fcgiq.log |
    sed 's/.*job \([^ ]*\): attempt \([0-9]*\):.*/\1 \2/' >"$T/lost"
while read -r id att; do
	st=$(pg_psql -c "SELECT state || ' ' || attempts FROM jobs WHERE id = '$id'")
	echo "# outcome dropped: job $id attempt $att; in the database: $st"
	check_eq "job $id: done at attempt $att all the same" "done $att" "$st"
done <"$T/lost"
crash=$(cat "$T"/[ab]/fcgiq.log | grep -E \
    'Sanitizer|runtime error|signal (4|6|7|8|11)\b|core dumped' | head -5)
check_eq "no sanitizer report or crash in fcgiq's logs" "" "$crash"
other=$(cat "$T"/[ab]/fcgiq.log | grep -E ' (warn|warning|error|err|crit|fatal):' |
    grep -vE "$EXPECTED" | head -5)
check_eq "nothing in fcgiq's logs beyond the expected warnings" "" "$other"

done_testing
