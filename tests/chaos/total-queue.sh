#!/bin/bash
# tests/chaos/total-queue.sh: the total-queue check, after Jepsen's.  A
# client log of every 202 (job id, hash of the body sent) against a log of
# every run the handlers made, while kill -9 lands on random fcgiq
# processes under load.
#
#   nginx (conf-examples/nginx.conf) -> fcgiq x 2 (conf-examples/spawn-fcgi.sh,
#   spawn-fcgi -F 2), each with its supervisor (fcgiq-superv) and helper
#   (fcgiq-helper, one active, one standby) -> handler
#   tests/chaos/handlers/record, which appends "id attempt sha256 length
#   time" to runs.log with one O_APPEND write per run.
#
# 1. Load: batches of unique bodies ("tq-RUN-N\n" + 0 to 216 KB of random
#    bytes), posted by curl --parallel at CHAOS_CONCURRENCY; every answer is
#    logged (code, N, Location).  Non-202 answers (502/503 while processes
#    die) are expected and count as not acknowledged.  The client pauses
#    while more than CHAOS_BACKLOG jobs wait, so the final drain stays
#    bounded on a slow machine.
# 2. Chaos, for CHAOS_SECONDS: every CHAOS_KILL_MS (a random interval) a
#    kill -9 of one process this test started: a responder (a pid spawn-fcgi
#    reported), a supervisor, a helper, or a handler (a child of a helper),
#    found by walking /proc/PID/task/*/children down from the responders,
#    its parent checked again just before the kill.  When no responder is
#    left, spawn-fcgi starts two more (the stale socket removed first).
# 3. A clean restart (SIGTERM to what is left, a fresh spawn-fcgi), then
#    the drain: until nothing is queued, running or in retry; it fails only
#    when nothing moves for CHAOS_STALL_SECONDS.
# 4. The checks, in SQL over the client log, the run log and the queue:
#    lost = 0 (acknowledged, not done); unexpected = 0 (run, never
#    acknowledged, not in the database); every 202 names a job in the
#    database whose body is the one sent; every acknowledged body was seen
#    byte-exact (sha256) by a handler, in the very attempt the database
#    records as done; no attempt ran twice; no job dead;
#    PRAGMA integrity_check ok; no supervisor, helper or handler outlives
#    its fcgiq.  Re-runs (at-least-once) are counted, not failed.
# 5. After the checks, a probe of what the chaos showed: with every
#    supervisor killed -9 and the responders still up, is a new job run?
#    (It did not, once: fcgiq did not replace a dead supervisor, so nothing
#    ran the jobs it kept acknowledging until it was restarted.)
#
# Short run (CI, a minute or two): make check TESTS=tests/chaos/total-queue.sh
# Long run, from the build directory (the script directly: make check stops
# a suite after TEST_TIMEOUT, 900 s):
#   CHAOS_SECONDS=300 CHAOS_CONCURRENCY=32 top_srcdir=/path/to/src \
#     top_builddir=$PWD bash /path/to/src/tests/chaos/total-queue.sh
# KEEP_TEST_DIR=1 keeps $T (client.log, sent.log, runs.log, kills.log,
# fcgiq.log, var/q.db) for reading; a failure keeps it anyway.
#
#   CHAOS_SECONDS            load + kill window                    (30)
#   CHAOS_CONCURRENCY        requests in flight (curl --parallel)  (16)
#   CHAOS_BATCH              requests per curl run                 (200)
#   CHAOS_JOBS               stop the load after this many sent; 0: no cap (0)
#   CHAOS_BACKLOG            client pauses above this many waiting (400)
#   CHAOS_KILL_MS            interval between kills, MIN..MAX ms   (200..500)
#   CHAOS_HANDLERS           handler concurrency                   (8)
#   CHAOS_HANDLER_SLEEP_MS   handler naps 0..this before and after logging (10)
#   CHAOS_STALL_SECONDS      drain fails after this long without progress (60)
#   CHAOS_SEED               seeds the choice of victims (printed; timing
#                            makes no two runs alike anyway)
#
# FCGIQ_TEST_BACKEND=pg (tests/chaos/pg-total-queue.sh) runs it on a private
# PostgreSQL cluster (tests/backend.sh).  There both helpers claim, so the
# kills land on two active helpers; a job whose helper was killed comes
# back only when its lease ends (timeout + 32 s), so the handler timeout is
# 5 s there (a 37 s lease, inside CHAOS_STALL_SECONDS) and the load lasts
# 20 s by default.  The queue's rows are copied into the scratch database
# for the checks (psql COPY); PRAGMA integrity_check and the helper lock
# file are SQLite's, and a TAP comment says so.
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/backend.sh"

for c in nginx spawn-fcgi curl sqlite3 perl sha256sum; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
REC=$top_builddir/tests/chaos/handlers/record
[ -x "$REC" ] || skip_all "tests/chaos/handlers/record not built"

if is_pg; then
	SECONDS_LOAD=${CHAOS_SECONDS:-20}
	HTIMEOUT=5s
else
	SECONDS_LOAD=${CHAOS_SECONDS:-30}
	HTIMEOUT=30s
fi
CONC=${CHAOS_CONCURRENCY:-16}
BATCH=${CHAOS_BATCH:-200}
MAXJOBS=${CHAOS_JOBS:-0}
BACKLOG=${CHAOS_BACKLOG:-400}
KILL_MS=${CHAOS_KILL_MS:-200..500}
KILL_MIN=${KILL_MS%..*}
KILL_MAX=${KILL_MS#*..}
HCONC=${CHAOS_HANDLERS:-8}
HSLEEP=${CHAOS_HANDLER_SLEEP_MS:-10}
STALL=${CHAOS_STALL_SECONDS:-60}
SEED=${CHAOS_SEED:-$(( (RANDOM << 15) | RANDOM ))}
RANDOM=$SEED
RUN=$SEED
echo "# seed $SEED: ${SECONDS_LOAD}s of load at concurrency $CONC," \
    "a kill every $KILL_MIN..$KILL_MAX ms, $HCONC handlers"

backend_start "$T/var/q.db"
SOCK=$T/run/fcgiq.sock
RUNS=$T/runs.log		# the handlers' log
CLIENT=$T/client.log		# "code N location" per answer
SENT=$T/sent.log		# "N sha256 length" per body sent
KILLS=$T/kills.log		# "ms category pid" per kill
mkdir -p "$T/var" "$T/run" "$T/bodies"
: >"$RUNS"; : >"$CLIENT"; : >"$SENT"; : >"$KILLS"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DATABASE
grace    = 1s
log      = info
path     = /usr/local/bin:/usr/bin:/bin

[queue default]
handler      = exec:$REC $RUNS $HSLEEP
user = root
concurrency  = $HCONC
max_attempts = 20
timeout      = $HTIMEOUT
backoff      = 10ms..200ms
EOF

sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
    -e "s|^user www-data;|user root;|" \
    "$top_srcdir/conf-examples/nginx.conf" >"$T/nginx.conf"
cp /etc/nginx/fastcgi_params "$T/"
start_nginx "$T/nginx.conf" || bail "nginx did not start"

SQL_TIMEOUT_MS=10000	# sql (tests/backend.sh) on SQLite

# The kill loop forks nothing (the machine may be loaded: a fork can take
# 100 ms there, and a handler lives about that long): /proc is read with
# builtins, the clock is $EPOCHREALTIME, naps are read -t on a fifo.
now_ms() { NOW=${EPOCHREALTIME/./}; NOW=$((NOW / 1000)); }
mkfifo "$T/nap.fifo"
exec 4<>"$T/nap.fifo"
nap_ms() {
	local f=00$(($1 % 1000))
	read -r -t "$(($1 / 1000)).${f: -3}" -u 4 || :
}
# pstat PID: S_COMM, S_STATE, S_PPID and S_START (start time, field 22) of
# PID; fails when it is gone or a zombie waiting for its reaper.
pstat() {
	local l
	{ read -r l <"/proc/$1/stat"; } 2>/dev/null || return 1
	S_COMM=${l#*\(}
	S_COMM=${S_COMM%\)*}
	l=${l##*\) }
	set -- $l
	S_STATE=$1 S_PPID=$2 S_START=${20}
	[ "$S_STATE" != Z ] && [ "$S_STATE" != X ]
}
# kids PID: KIDS, the pids whose parent is PID (any of its threads).
kids() {
	local f c
	KIDS=""
	for f in /proc/"$1"/task/*/children; do
		# One line with no newline: read fails at its end, yet sets c.
		c=""
		{ read -r c <"$f"; } 2>/dev/null
		KIDS="$KIDS $c"
	done
}
alive() { pstat "$1"; }

# spawn-fcgi gives its children /dev/null as stderr: fcgiq's log goes
# through this wrapper (the pid spawn-fcgi reports is fcgiq's once it execs).
cat >"$T/fcgiq" <<EOF
#!/bin/sh
exec "$FCGIQ" "\$@" 2>>"$T/fcgiq.log"
EOF
chmod 755 "$T/fcgiq"

# Responders as "pid:starttime", so a recycled pid is never taken for ours.
RESPONDERS=""
STARTS=0
start_fcgiq() {
	local out p
	out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf FCGIQ_BIN=$T/fcgiq \
	    FCGIQ_CHILDREN=2 sh "$top_srcdir/conf-examples/spawn-fcgi.sh" \
	    2>>"$T/spawn-fcgi.log") || return 1
	for p in $(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p'); do
		pstat "$p" && RESPONDERS="$RESPONDERS $p:$S_START"
	done
	STARTS=$((STARTS + 1))
}
# live_responders: LIVE, the responders still running.
live_responders() {
	local r
	LIVE=""
	for r in $RESPONDERS; do
		pstat "${r%%:*}" && [ "$S_START" = "${r#*:}" ] &&
		    LIVE="$LIVE ${r%%:*}"
	done
	return 0
}
# Responders come and go and their pids get reused, so they are not
# track'ed: on exit, stop the live ones (and the client while it runs),
# then lib.sh's own cleanup.
CLIENT_PID=""
tq_cleanup() {
	[ -n "$CLIENT_PID" ] && stop_pid "$CLIENT_PID"
	live_responders
	for p in $LIVE; do stop_pid "$p"; done
	backend_exit
}
trap tq_cleanup EXIT
start_fcgiq || bail "spawn-fcgi failed: $(cat "$T/spawn-fcgi.log")"
# wake_bound DB: the active helper's wake-up socket is bound (an abstract
# name from the database's device and inode, see queue/wake.c).
wake_bound() {
	local n
	n=$(stat -c '%d %i' "$1" 2>/dev/null) || return 1
	set -- $n
	grep -q "@fcgiq-wake-$(printf '%x-%x' "$1" "$2")\$" /proc/net/unix
}
# pg_active N: N helpers logged "active" (PostgreSQL: no lock, every
# helper claims).
pg_active() { [ "$(grep -c '^[a-z-]*\[[0-9]*\]: info: helper: .*: active$' "$T/fcgiq.log")" -ge "$1" ]; }
if is_pg; then
	wait_for pg_active 2 || bail "the helpers did not become active"
	sqlite_only "the wake-up socket bound by the one active helper (PostgreSQL wakes every helper with LISTEN/NOTIFY)"
else
	wait_for wake_bound "$DB" || bail "no helper became active"
fi

# ------------------------------------------------------------ the client
# client: batches of unique bodies until $T/stop appears (or CHAOS_JOBS).
client() {
	local n=0 first last i waiting
	while [ ! -e "$T/stop" ]; do
		[ "$MAXJOBS" -gt 0 ] && [ "$n" -ge "$MAXJOBS" ] && break
		waiting=$(sql "SELECT count(*) FROM jobs
		    WHERE state IN ('queued', 'retry')" 2>/dev/null || echo 0)
		if [ "${waiting:-0}" -gt "$BACKLOG" ]; then
			sleep 0.2
			continue
		fi
		first=$((n + 1))
		last=$((n + BATCH))
		# Bodies: mostly small, some over a pipe buffer, a few large.
		perl -e '
			my ($dir, $run, $first, $last) = @ARGV;
			open(my $u, "<", "/dev/urandom") or die "urandom: $!";
			binmode $u;
			for my $n ($first .. $last) {
				my $r = rand();
				my $len = $r < 0.70 ? int(rand(512)) :
				    $r < 0.97 ? 512 + int(rand(16384)) :
				    16384 + int(rand(204800));
				my $b = "";
				read($u, $b, $len) == $len or die "urandom: short";
				open(my $f, ">", "$dir/$n") or die "$dir/$n: $!";
				binmode $f;
				print $f "tq-$run-$n\n", $b;
				close($f) or die "$dir/$n: $!";
			}' "$T/bodies" "$RUN" "$first" "$last" || return 1
		(cd "$T/bodies" && sha256sum $(seq "$first" "$last") &&
		    stat -c '%n %s' $(seq "$first" "$last")) |
		    awk 'NF == 2 && length($1) == 64 { h[$2] = $1; next }
			{ print $1, h[$1], $2 }' >>"$SENT"
		for i in $(seq "$first" "$last"); do
			printf 'url = "%s/hooks/tq/%d"\n' "$URL" "$i"
			printf 'data-binary = "@%s/bodies/%d"\n' "$T" "$i"
			printf 'header = "Content-Type: application/octet-stream"\n'
			printf 'output = "/dev/null"\nsilent\n'
			printf 'max-time = 60\n'
			printf 'write-out = "%%{http_code} %d %%header{location}\\n"\n' "$i"
			[ "$i" -lt "$last" ] && printf 'next\n'
		done >"$T/batch.cfg"
		curl -s --parallel --parallel-max "$CONC" -K "$T/batch.cfg" \
		    >>"$CLIENT" 2>>"$T/curl.err"
		(cd "$T/bodies" && rm -f $(seq "$first" "$last"))
		n=$last
	done
	echo "$n" >"$T/client.sent"
}

# ------------------------------------------------------------ the killer
declare -A SEEN		# every supervisor, helper, handler seen: pid -> start time
# victims: VICTIMS, "category:pid:parent" for each process of ours: the
# live responders, their supervisors, the supervisors' helpers (active and
# standby), the helpers' children (handlers).
victims() {
	local r s h x
	VICTIMS=""
	live_responders
	for r in $LIVE; do
		VICTIMS="$VICTIMS responder:$r:-"
		kids "$r"
		for s in $KIDS; do
			pstat "$s" && [ "$S_COMM" = fcgiq-superv ] || continue
			VICTIMS="$VICTIMS supervisor:$s:$r"
			SEEN[$s]=$S_START
			kids "$s"
			for h in $KIDS; do
				pstat "$h" && [ "$S_COMM" = fcgiq-helper ] || continue
				VICTIMS="$VICTIMS helper:$h:$s"
				SEEN[$h]=$S_START
				kids "$h"
				for x in $KIDS; do
					pstat "$x" || continue
					VICTIMS="$VICTIMS handler:$x:$h"
					SEEN[$x]=$S_START
				done
			done
		done
	done
}
# kill_one: kill -9 one victim.  A category first (handler 50%, helper
# 25%, responder 15%, supervisor 10%), any victim when it has none; the
# victim's parent is read again just before the kill.
KN=0; K_responder=0; K_supervisor=0; K_helper=0; K_handler=0
kill_one() {
	local want r v cat p pp all=() pick=()
	victims
	r=$((RANDOM % 100))
	if [ $r -lt 50 ]; then want=handler
	elif [ $r -lt 75 ]; then want=helper
	elif [ $r -lt 90 ]; then want=responder
	else want=supervisor
	fi
	for v in $VICTIMS; do
		all+=("$v")
		[ "${v%%:*}" = "$want" ] && pick+=("$v")
	done
	[ ${#all[@]} -gt 0 ] || return 0
	[ ${#pick[@]} -gt 0 ] || pick=("${all[@]}")
	IFS=: read -r cat p pp <<<"${pick[RANDOM % ${#pick[@]}]}"
	pstat "$p" || return 0
	[ "$pp" = - ] || [ "$S_PPID" = "$pp" ] || return 0
	kill -9 "$p" 2>/dev/null || return 0
	now_ms
	echo "$NOW $cat $p" >>"$KILLS"
	KN=$((KN + 1))
	eval "K_$cat=\$((K_$cat + 1))"
}

# ------------------------------------------------------------ run
now_ms; t0=$NOW
client &
CLIENT_PID=$!
end=$((t0 + SECONDS_LOAD * 1000))
while :; do
	now_ms
	[ "$NOW" -lt "$end" ] && kill -0 "$CLIENT_PID" 2>/dev/null || break
	nap_ms $((KILL_MIN + RANDOM % (KILL_MAX - KILL_MIN + 1)))
	live_responders
	if [ -z "$LIVE" ]; then
		start_fcgiq || echo "# spawn-fcgi failed: $(tail -1 "$T/spawn-fcgi.log")"
		continue
	fi
	kill_one
done
touch "$T/stop"
wait "$CLIENT_PID"
crc=$?
CLIENT_PID=""
now_ms; load_ms=$((NOW - t0))
check_eq "the client ran to the end" "0" "$crc"
sent=$(cat "$T/client.sent" 2>/dev/null || echo 0)
echo "# load: $sent sent in $load_ms ms; $KN kills (responders $K_responder," \
    "supervisors $K_supervisor, helpers $K_helper, handlers $K_handler);" \
    "$((STARTS - 1)) restarts of spawn-fcgi"

# ------------------------------------------------------------ clean restart
# Every supervisor and helper of ours, seen now, must go with its fcgiq.
victims
left=""
for v in $VICTIMS; do
	case $v in supervisor:* | helper:*) v=${v#*:}; left="$left ${v%:*}" ;; esac
done
for p in $LIVE; do stop_pid "$p"; done
for i in $(seq 150); do
	rest=""
	for p in $left; do alive "$p" && rest="$rest $p"; done
	[ -z "$rest" ] && break
	sleep 0.1
done
check_eq "clean stop: supervisors and helpers gone with their fcgiq" "" "$(echo $rest)"
check "clean restart" start_fcgiq

# ------------------------------------------------------------ drain
now_ms; t1=$NOW
last=""
still=$t1
while :; do
	w=$(sql "SELECT count(*) || ' ' || count(CASE WHEN state = 'running'
	    THEN 1 END) FROM jobs
	    WHERE state IN ('queued', 'running', 'retry')" 2>/dev/null)
	[ "${w%% *}" = 0 ] && break
	now_ms
	if [ "$w" != "$last" ]; then last=$w; still=$NOW; fi
	[ $((NOW - still)) -gt $((STALL * 1000)) ] && break
	sleep 0.5
done
now_ms; drain_ms=$((NOW - t1))
check_eq "drain: nothing queued, running or in retry" "" \
    "$(sql "SELECT state, count(*) FROM jobs
    WHERE state IN ('queued', 'running', 'retry') GROUP BY state" | xargs)"
live_responders
for p in $LIVE; do stop_pid "$p"; done
# No supervisor, helper or handler outlives its fcgiq, whichever way it
# went.
for i in $(seq 150); do
	rest=""
	for p in "${!SEEN[@]}"; do
		pstat "$p" && [ "$S_START" = "${SEEN[$p]}" ] && rest="$rest $p($S_COMM)"
	done
	[ -z "$rest" ] && break
	sleep 0.1
done
check_eq "none of the ${#SEEN[@]} supervisors, helpers, handlers seen outlives its fcgiq" \
    "" "$(echo $rest)"

# ------------------------------------------------------------ the checks
# Everything into one scratch database, the queue attached read-only.
awk '{ id = $3; sub(/^.*\//, "", id); print $1, $2, ($1 == 202 ? id : "-") }' \
    "$CLIENT" >"$T/client.txt"
awk 'NF == 5' "$RUNS" >"$T/runs.txt"
bad_lines=$(awk 'NF != 5' "$RUNS" | wc -l)
C=$T/check.db
rm -f "$C"
sqlite3 "$C" <<EOF
CREATE TABLE sent (n INTEGER PRIMARY KEY, hash TEXT, len INTEGER);
CREATE TABLE client (code TEXT, n INTEGER, id TEXT);
CREATE TABLE runs (id TEXT, attempt TEXT, hash TEXT, len TEXT, ms INTEGER);
CREATE TABLE kills (ms INTEGER, cat TEXT, pid INTEGER);
.separator " "
.import $KILLS kills
.import $SENT sent
.import $T/client.txt client
.import $T/runs.txt runs
EOF
if is_pg; then
	# The queue's rows, as the view below has them on SQLite, copied
	# (the queue is drained and its responders stopped: it holds still).
	pg_psql -c "COPY (SELECT id, state, attempts, last_error,
	    octet_length(body),
	    convert_from(substring(body FROM 1 FOR
	      greatest(position('\x0a'::bytea IN body) - 1, 0)), 'UTF8')
	    FROM jobs) TO STDOUT WITH (FORMAT csv)" >"$T/jobs.csv" ||
	    bail "COPY of the jobs failed"
	sqlite3 "$C" <<EOF
CREATE TABLE pgjobs (id TEXT, state TEXT, attempts INTEGER, last_error TEXT,
  len INTEGER, head TEXT);
.import --csv $T/jobs.csv pgjobs
EOF
	JOBS_VIEW="CREATE TEMP VIEW jobs AS SELECT id, state, attempts,
	       last_error, len, head,
	       CAST(substr(head, length('tq-$RUN-') + 1) AS INTEGER) AS hn
	     FROM pgjobs;"
else
	JOBS_VIEW="ATTACH 'file:$DB?mode=ro' AS q;
	     CREATE TEMP VIEW jobs AS SELECT id, state, attempts, last_error,
	       length(body) AS len,
	       CAST(substr(body, 1, instr(body, x'0a') - 1) AS TEXT) AS head,
	       CAST(substr(CAST(substr(body, 1, instr(body, x'0a') - 1) AS TEXT),
	         length('tq-$RUN-') + 1) AS INTEGER) AS hn
	     FROM q.jobs;"
fi
q() {
	sqlite3 -cmd ".timeout 10000" "$C" \
	    "$JOBS_VIEW
	     CREATE TEMP VIEW acked AS SELECT DISTINCT id, n FROM client
	       WHERE code = '202';
	     CREATE TEMP VIEW good AS SELECT * FROM runs WHERE hash != 'short';
	     $1"
}
acks=$(q "SELECT count(*) FROM client WHERE code = '202'")
answers=$(q "SELECT code || ':' || count(*) FROM client GROUP BY code" | xargs)
acked_ids=$(q "SELECT count(DISTINCT id) FROM acked")
in_db=$(q "SELECT count(*) FROM jobs")
acked_in_db=$(q "SELECT count(*) FROM acked WHERE id IN (SELECT id FROM jobs)")
lost=$(q "SELECT count(*) FROM acked a WHERE NOT EXISTS
    (SELECT 1 FROM jobs j WHERE j.id = a.id AND j.state = 'done')")
unexpected=$(q "SELECT count(DISTINCT id) FROM runs
    WHERE id NOT IN (SELECT id FROM acked) AND id NOT IN (SELECT id FROM jobs)")
unacked=$(q "SELECT count(*) FROM jobs WHERE id NOT IN (SELECT id FROM acked)")
reruns=$(q "SELECT count(*) FROM (SELECT id FROM good GROUP BY id
    HAVING count(*) > 1)")
extra_runs=$(q "SELECT count(*) - count(DISTINCT id) FROM good")
shorts=$(q "SELECT count(*) FROM runs WHERE hash = 'short'")
dead=$(q "SELECT count(*) FROM jobs WHERE state = 'dead'")
multi=$(q "SELECT count(*) FROM jobs WHERE attempts > 1")

echo "# $acks acknowledged ($answers); $in_db jobs in the database, $unacked without a 202;" \
    "$KN kills (responders $K_responder, supervisors $K_supervisor," \
    "helpers $K_helper, handlers $K_handler), $((STARTS - 2)) restarts;" \
    "$reruns re-runs ($extra_runs extra runs, $multi jobs with attempts > 1," \
    "$shorts short stdin); drain $((drain_ms / 1000)).$(( drain_ms % 1000 / 100 )) s"

# A handler whose helper dies while feeding it can read EOF before its own
# SIGKILL (PR_SET_PDEATHSIG) lands: record turns a short body into a retry
# (a handler that trusts EOF would act on half a job).  Each is listed with
# the kill before it.
q "SELECT '# short stdin: ' || id || ' attempt ' || attempt || ', ' || len ||
    ' bytes, at ' || ms || '; kills in the 2 s before: ' ||
    coalesce((SELECT group_concat(cat || ' ' || pid || ' -' || (r.ms - k.ms)
    || ' ms', ', ') FROM kills k WHERE k.ms BETWEEN r.ms - 2000 AND r.ms),
    'none') FROM runs r WHERE hash = 'short'"

check "acknowledged some jobs ($acks)" test "$acks" -gt 0
check "killed something ($KN)" test "$KN" -gt 0
check_eq "every 202 names its own job (202s = distinct ids)" "$acks" "$acked_ids"
check_eq "every acknowledged id is in the database" "$acked_ids" "$acked_in_db"
check_eq "lost (acknowledged, not done) = 0" "0" "$lost" 
[ "$lost" = 0 ] || q "SELECT a.id, a.n, coalesce(j.state, 'absent'), j.last_error
    FROM acked a LEFT JOIN jobs j ON j.id = a.id
    WHERE j.state IS NOT 'done' LIMIT 20" | sed 's/^/#   /'
check_eq "unexpected (run, never acknowledged, not in the database) = 0" "0" "$unexpected"
check_eq "each acknowledged job's body is the one sent (header and length)" "" \
    "$(q "SELECT a.id FROM acked a JOIN jobs j ON j.id = a.id
    JOIN sent s ON s.n = a.n
    WHERE j.head != 'tq-$RUN-' || a.n OR j.len != s.len LIMIT 10" | xargs)"
check_eq "every acknowledged body seen byte-exact by a handler" "" \
    "$(q "SELECT a.id FROM acked a JOIN sent s ON s.n = a.n
    WHERE NOT EXISTS (SELECT 1 FROM good r WHERE r.id = a.id
    AND r.hash = s.hash AND r.len = s.len) LIMIT 10" | xargs)"
check_eq "no run saw another body (every run, every job in the database)" "" \
    "$(q "SELECT r.id || '/' || r.attempt FROM good r JOIN jobs j ON j.id = r.id
    JOIN sent s ON s.n = j.hn
    WHERE r.hash != s.hash OR r.len != s.len LIMIT 10" | xargs)"
check_eq "each done job's final attempt is a logged run" "" \
    "$(q "SELECT j.id FROM jobs j WHERE j.state = 'done' AND NOT EXISTS
    (SELECT 1 FROM good r WHERE r.id = j.id AND r.attempt = j.attempts)
    LIMIT 10" | xargs)"
check_eq "no attempt ran twice" "" \
    "$(q "SELECT id || '/' || attempt FROM good GROUP BY id, attempt
    HAVING count(*) > 1 LIMIT 10" | xargs)"
check_eq "the run log has no torn lines" "0" "$bad_lines"
check_eq "no job dead" "0" "$dead"
[ "$dead" = 0 ] || sql "SELECT id, attempts, last_error FROM jobs
    WHERE state = 'dead' LIMIT 10" | sed 's/^/#   /'
check_eq "every job in the database done" "" \
    "$(sql "SELECT state, count(*) FROM jobs WHERE state != 'done'
    GROUP BY state" | xargs)"
if is_pg; then
	sqlite_only "PRAGMA integrity_check (a SQLite file's own check)"
else
	check_eq "integrity_check" "ok" "$(sql "PRAGMA integrity_check")"
fi
crash=$(grep -E 'signal (4|6|7|8|11)\b|core dumped|AddressSanitizer|runtime error' \
    "$T/fcgiq.log" | head -5)
check_eq "no crash in fcgiq's log" "" "$crash"

# ------------------------------------------------------------ supervisors
if is_pg; then
	# No lock file: every helper claims; one under a live responder will
	# do (the probe below waits 10 s for its job anyway).
	sqlite_only "the active helper named in DATABASE-helper.lock"
	active_helper() {
		victims
		case $VICTIMS in *helper:*) return 0 ;; esac
		return 1
	}
else
	active_helper() { pstat "$(cat "$DB-helper.lock" 2>/dev/null)" && [ "$S_COMM" = fcgiq-helper ]; }
fi
job_done() { [ "$(sql "SELECT state FROM jobs WHERE id = '$1'")" = "done" ]; }
start_fcgiq && wait_for active_helper || bail "fcgiq did not start again"
victims
sups=""
for v in $VICTIMS; do
	case $v in supervisor:*) v=${v#*:}; sups="$sups ${v%:*}" ;; esac
done
[ -n "$sups" ] && kill -9 $sups
sleep 1
live_responders
out=$(curl -s -o /dev/null -w '%{http_code} %header{location}' \
    --data-binary "probe-$RUN" "$URL/hooks/probe")
id=${out##*/}
echo "# killed -9 every supervisor ($(echo $sups)); responders up: $(echo $LIVE)"
check_eq "no supervisor left, responders up: a job is still accepted" \
    "202" "${out%% *}"
for i in $(seq 100); do job_done "$id" && break; sleep 0.1; done
victims
nh=0
for v in $VICTIMS; do case $v in helper:*) nh=$((nh + 1)) ;; esac; done
echo "# probe job $id: $(sql "SELECT state FROM jobs WHERE id = '$id'");" \
    "helpers under the live responders: $nh"
check "... and run within 10 s: fcgiq replaced its dead supervisor" job_done "$id"

done_testing
