#!/bin/bash
# tests/e2e/apache-fcgid.sh: Apache 2.4 + mod_fcgid starting fcgiq itself,
# on the shipped conf-examples/apache-fcgid.conf (the fcgiq command line
# and, for the recycling phase, FcgidMaxRequestsPerProcess substituted).
#
# Covers: fcgiq accepts on the socket mod_fcgid hands it on fd 0; processes
# are started on demand, several under parallel load; with several fcgiq
# processes (each with its forked helper) exactly one helper holds the
# lock, and the handler runs each job once; SetEnv FCGIQ_QUEUE picks the
# queue; the status API; mod_fcgid stopping processes every few requests
# (FcgidMaxRequestsPerProcess) loses no job and runs none twice; stopping
# Apache leaves no fcgiq, supervisor, helper or handler running.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/apache-lib.sh"

for c in curl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
[ -f "$APACHE_MODULES/mod_fcgid.so" ] || skip_all "mod_fcgid not installed"

EX=$top_srcdir/conf-examples
DB=$T/var/queue.db
ST=$T/state
BIN=$T/bin
mkdir -p "$T/var" "$ST" "$BIN"
chmod 755 "$BIN"
chown www-data: "$T/var" "$ST"
# A copy of fcgiq of this run's own: its processes are found by their
# command line, never by name.
cp "$FCGIQ" "$BIN/fcgiq"

# The handler: one line per run in $ST/runs (an O_APPEND write of a short
# line is atomic), after a short nap so that runs overlap recycling.
cat >"$BIN/record" <<'EOF'
#!/bin/sh
sleep 0.05
echo "$FCGIQ_JOB_ID $FCGIQ_ATTEMPT $$" >>"$1/runs"
echo ran
EOF
chmod 755 "$BIN/record"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
grace    = 10s

[queue default]
handler     = exec:$BIN/record $ST
user = www-data
concurrency = 4
backoff     = 50ms..200ms

[queue mail]
handler     = exec:$BIN/record $ST
user = www-data
EOF
"$BIN/fcgiq" -t -c "$T/fcgiq.conf" >/dev/null || bail "fcgiq.conf rejected"

# site MAXREQ: the shipped file with this run's fcgiq and config.
site() {
	sed -e "s|/usr/local/sbin/fcgiq -c /etc/fcgiq/fcgiq.conf|$BIN/fcgiq -c $T/fcgiq.conf|" \
	    -e "s|^FcgidMaxRequestsPerProcess .*|FcgidMaxRequestsPerProcess $1|" \
	    "$EX/apache-fcgid.conf" >"$T/site.conf"
	grep -q "$BIN/fcgiq -c" "$T/site.conf" ||
	    bail "conf-examples/apache-fcgid.conf no longer has the wrapper the test substitutes"
	# mod_fcgid's own runtime files, in $T (not in the example: Debian
	# sets them in mods-available/fcgid.conf).
	cat >>"$T/site.conf" <<-EOF
	FcgidIPCDir "$T/apache/fcgid"
	FcgidProcessTableFile "$T/apache/fcgid_shm"
	EOF
}
site 10000
apache_conf "$T/site.conf" fcgid env
apache_start || bail "apache did not start: $(cat "$T/apache/configtest.log" "$T/apache/start.log" "$T/apache/logs/error.log" 2>/dev/null)"
ok "apache2 -t accepts the shipped apache-fcgid.conf and Apache starts"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# fcgiq processes of this run by role: the responders (mod_fcgid's
# children), their supervisors and helpers (named by prctl).
role() {
	local p
	for p in $(procs_of "$BIN/fcgiq"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
	done
	return 0
}
# held_locks: pids holding a lock on the helper lock file.
held_locks() {
	local ino
	ino=$(stat -c %i "$DB-helper.lock" 2>/dev/null) || return 0
	awk -v ino="$ino" '$2 != "->" { split($6, a, ":"); if (a[3] == ino) print $5 }' /proc/locks
}
# wait_done N: wait up to 60 s until N jobs are done.
wait_done() {
	local i
	for i in $(seq 600); do
		[ "$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

check_eq "no fcgiq before the first request (started on demand)" "" "$(role fcgiq | xargs)"

# --- the first request starts fcgiq; the job runs
curl -s -D "$T/h1" -o "$T/b1" -X POST --data-binary 'first' "$APACHE_URL/hooks/one"
check "first POST: 202" grep -q '^HTTP/1.1 202' "$T/h1"
id=$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/b1")
check_eq "stored in queue default, body whole" "default|first" \
    "$(field "$id" "queue || '|' || CAST(body AS TEXT)")"
check_eq "one fcgiq started by mod_fcgid" "1" "$(role fcgiq | wc -w)"
p=$(role fcgiq)
check_eq "it runs as Apache's User" "www-data" "$(ps -o user= -p "$p" | tr -d ' ')"
check "its fd 0 is the listening socket mod_fcgid made" \
    grep -q "socket:" <<<"$(readlink "/proc/$p/fd/0")"
wait_done 1
check_eq "the job ran once and is done" "done|1" "$(field "$id" "state || '|' || attempts")"
st=$(curl -s "$APACHE_URL/jobs/$id")
check "status API through mod_fcgid: done" grep -q '"state" *: *"done"' <<<"$st"
code=$(curl -s -o "$T/b2" -w '%{http_code}' -X POST --data-binary 'm' "$APACHE_URL/mail/x")
check_eq "POST /mail/: 202" "202" "$code"
check_eq "SetEnv FCGIQ_QUEUE mail: stored in queue mail" "mail" \
    "$(field "$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/b2")" queue)"

# --- parallel load: mod_fcgid starts more processes; one helper is active
# mod_fcgid sends one request at a time to a process, and a request that
# finds none free sleeps a whole second before it asks again: keep the
# parallelism at FcgidMaxProcessesPerClass.
curl -s -Z --parallel-max 4 -X POST --data-binary x \
    "$APACHE_URL/hooks/p[1-200]" >"$T/p.out" 2>/dev/null
check_eq "200 POSTs, 4 at a time: 200 ids" "200" "$(grep -o '"id"' "$T/p.out" | wc -l)"
# fcgiq forks its supervisor before it serves, but the supervisor forks
# the helper in its own time: for a process started late in the burst,
# wait (bounded) until each fcgiq has its helper.
wait_for eval '[ "$(role fcgiq | wc -w)" = "$(role fcgiq-helper | wc -w)" ]'
n=$(role fcgiq | wc -w)
check "mod_fcgid started several fcgiq processes ($n)" test "$n" -ge 2
check "... no more than FcgidMaxProcessesPerClass (4)" test "$n" -le 4
check_eq "each fcgiq forked its helper" "$n" "$(role fcgiq-helper | wc -w)"
active=$(cat "$DB-helper.lock" 2>/dev/null)
check_eq "exactly one helper holds the lock" "1" "$(held_locks | wc -w)"
check_eq "... the one the lock file names" "$active" "$(held_locks)"
check "... and it is a live fcgiq-helper" grep -qx fcgiq-helper "/proc/$active/comm"
wait_done 202 || true
check_eq "all 202 jobs done" "202" "$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")"
check_eq "the handler ran each job once" "202 202" \
    "$(awk '{print $1}' "$ST/runs" | sort -u | wc -l) $(wc -l <"$ST/runs")"

# --- recycling: mod_fcgid stops each process after 20 requests
t0=$(date +%s%N)
apache_stop || bail "apache did not stop"
echo "# Apache stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
for i in $(seq 300); do [ -z "$(procs_of "$BIN/fcgiq")" ] && break; sleep 0.1; done
check_eq "Apache stopped: no fcgiq, supervisor or helper left" "" \
    "$(procs_of "$BIN/fcgiq" | xargs)"
ready0=$(grep -c "ready:" "$T/apache/logs/error.log")
active0=$(grep -c "helper: .*: active" "$T/apache/logs/error.log")
site 20
apache_start || bail "apache did not restart"
# Each stop and start raises mod_fcgid's spawn score (FcgidTerminationScore,
# FcgidSpawnScore), which decays by one a second: past
# FcgidSpawnScoreUpLimit it starts no process and requests wait.
curl -s -Z --parallel-max 3 -X POST --data-binary x \
    "$APACHE_URL/hooks/r[1-150]" >"$T/r.out" 2>/dev/null
check_eq "150 POSTs while processes are recycled: 150 ids" "150" "$(grep -o '"id"' "$T/r.out" | wc -l)"
ready=$(( $(grep -c "ready:" "$T/apache/logs/error.log") - ready0 ))
echo "# fcgiq processes started during the recycling phase: $ready"
check "mod_fcgid recycled processes (started $ready, at most 4 at a time)" test "$ready" -gt 5
takeovers=$(( $(grep -c "helper: .*: active" "$T/apache/logs/error.log") - active0 ))
check "the helper role moved on as its processes were stopped ($takeovers helpers became active)" \
    test "$takeovers" -ge 2
wait_done 352 || true
check_eq "all 352 jobs done" "352" "$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")"
check_eq "nothing queued, running or dead" "0" \
    "$(sql "SELECT count(*) FROM jobs WHERE state != 'done'")"
check_eq "the handler ran each job once" "352 352" \
    "$(awk '{print $1}' "$ST/runs" | sort -u | wc -l) $(wc -l <"$ST/runs")"
check_eq "every job took one attempt" "0" "$(sql "SELECT count(*) FROM jobs WHERE attempts != 1")"
# A helper that stops with its recycled process hands the lock on: a
# standby takes it within LOCK_RETRY_MS (200 ms).  Wait for a holder.
wait_for eval '[ "$(held_locks | wc -w)" = 1 ]'
check_eq "exactly one helper holds the lock after recycling" "1" "$(held_locks | wc -w)"
check_eq "no 5xx in Apache's access log" "" \
    "$(awk '$NF ~ /^[0-9]+$/ && $(NF-1) ~ /^5/' "$T/apache/logs/access.log" | head -3)"

# --- stopping Apache stops every fcgiq process
apache_stop
check "Apache stops on SIGTERM to the pid in its pid file" test $? -eq 0
for i in $(seq 300); do [ -z "$(procs_of "$BIN/fcgiq")" ] && break; sleep 0.1; done
check_eq "no fcgiq, supervisor or helper left" "" "$(procs_of "$BIN/fcgiq" | xargs)"
check_eq "no handler left" "" "$(procs_of "$BIN/record" | xargs)"
grep -v 'AH00558\|AH00489\|AH00094\|AH00169\|AH00491\|caught SIGTERM\|resuming normal\|fcgiq' \
    "$T/apache/logs/error.log" | grep -i 'error\|warn' | head -5 | sed 's/^/# error.log: /'

done_testing
