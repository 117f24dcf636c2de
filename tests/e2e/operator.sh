#!/bin/bash
# tests/e2e/operator.sh: the README's operator guide, as written.
#
# Covers: the five sqlite3 queries of "Operating fcgiq" (taken from the
# README itself) against a database that a real fcgiq and its helper filled
# with jobs in every state, each answer checked; hot backups with VACUUM INTO
# and .backup while POSTs are being acknowledged: each copy passes
# integrity_check and holds every job acknowledged before it began;
# upgrading: a version-1 database is migrated to version 2 on open, a
# database newer than the program is refused with a clear message.
. "$(dirname "$0")/../lib.sh"

command -v sqlite3 >/dev/null || skip_all "sqlite3 not installed"
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
FCGICLIENT=$top_builddir/tests/tools/fcgiclient
[ -x "$FCGICLIENT" ] || skip_all "no $FCGICLIENT: make check builds it"

DB=$T/var/queue.db
SOCK=$T/fcgiq.sock
mkdir -p "$T/var"
# The handler: exit 65 with a reason when the body says "bad", else done
# after a short run.
cat >"$T/handler" <<'EOF'
#!/bin/sh
b=$(cat)
case $b in
bad*) echo "cannot parse: $b" >&2; exit 65 ;;
later*) echo "upstream busy" >&2; exit 75 ;;
esac
sleep 0.02
echo "ok $b"
EOF
chmod 755 "$T/handler"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info

[queue default]
handler      = exec:$T/handler
user = root
concurrency  = 2
max_attempts = 3
backoff      = 1h..2h

[queue mail]
handler      = exec:$T/handler
user = root

[queue idle]
EOF
"$FCGIQ" -c "$T/fcgiq.conf" -s "$SOCK" 2>"$T/fcgiq.log" &
FCGIQ_PID=$!
track "$FCGIQ_PID"
wait_for grep -q "ready:" "$T/fcgiq.log" || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
post() {
	"$FCGICLIENT" -s "$SOCK" -m POST -u "/$1" -d "$2" -p "FCGIQ_QUEUE=$1" -w 10 |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
count() { sql "SELECT count(*) FROM jobs WHERE $1"; }
wait_count() {
	local i
	for i in $(seq 200); do [ "$(count "$1")" = "$2" ] && return 0; sleep 0.05; done
	return 1
}

# --- a populated queue: idle waits (3), default: 4 done, 2 dead, 1 retry;
# mail: 2 done.
first_idle=$(post idle 'waiting 1')
sleep 0.01
post idle 'waiting 2' >/dev/null
post idle 'waiting 3' >/dev/null
for i in 1 2 3 4; do post default "job $i" >/dev/null; done
dead1=$(post default 'bad input one')
# Two workers: the second dead job could otherwise die first, and query
# 3 lists the dead latest first.
wait_count "id = '$dead1' AND state = 'dead'" 1 || bail "job $dead1 did not die"
dead2=$(post default 'bad input two')
retry1=$(post default 'later please')
post mail 'm1' >/dev/null
post mail 'm2' >/dev/null
# A binary body (a NUL in it), through fcgiqctl enqueue.
bin=$(printf 'bin\000ary' | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue idle |
    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p; /^[A-Za-z0-9_-]\{16,\}$/p' | head -1)
wait_count "state IN ('done', 'dead', 'retry')" 9 || bail "jobs did not finish: $(sql 'SELECT queue, state, count(*) FROM jobs GROUP BY 1, 2')"

# The queries, in order, from the README's operators block.
awk '/<!-- operators -->/,/<!-- \/operators -->/' "$top_srcdir/README.md" |
    awk '/^```sql$/ { n++; f = 1; next } /^```$/ { f = 0 } f { print > (dir "/q" n ".sql") }' dir="$T"
check_eq "the README has five queries" "5" "$(ls "$T"/q*.sql 2>/dev/null | wc -l)"
q() { sqlite3 -cmd ".timeout 5000" -separator '|' "$DB" <"$T/q$1.sql"; }

out=$(q 1)
echo "$out" | sed 's/^/# q1: /'
check_eq "query 1: depth by queue and state" "default|dead|2 default|done|4 default|retry|1 idle|queued|4 mail|done|2" \
    "$(echo "$out" | cut -d'|' -f1-3 | xargs)"
age=$(echo "$out" | awk -F'|' '$1 == "idle" { print $4 }')
check "query 1: the age of the oldest waiting job, in seconds" test "${age:-x}" -ge 0 -a "${age:-99}" -lt 60
check_eq "query 1: no age for finished states" "" "$(echo "$out" | awk -F'|' '$2 == "done" { print $4 }' | xargs)"

out=$(q 2)
echo "$out" | sed 's/^/# q2: /'
check_eq "query 2: the oldest waiting job" "$first_idle|idle|queued|0" "$(echo "$out" | cut -d'|' -f1-4)"
check "query 2: its creation time, readable" grep -q "^$first_idle|.*|$(date -u +%Y-%m-%d) " <<<"$out"

out=$(q 3)
echo "$out" | sed 's/^/# q3: /'
check_eq "query 3: the dead jobs, latest first" "$dead2 $dead1" "$(echo "$out" | cut -d'|' -f1 | xargs)"
check "query 3: with attempts and last_error" grep -q "^$dead2|default|1|.*|exit 65 (data error): cannot parse: bad input two$" <<<"$out"

sed "s/3q2-9mWZ0gOVbKxX9y7wYw/$retry1/" "$T/q4.sql" >"$T/q4b.sql"
out=$(sqlite3 -line "$DB" <"$T/q4b.sql")
check "query 4: the job by id" grep -qE "^ +id = $retry1$" <<<"$out"
check "query 4: its body as text" grep -qE "^ +body = later please$" <<<"$out"
check "query 4: its state and last_error" grep -qE "^ +last_error = .*upstream busy" <<<"$out"
check "query 4: times readable" grep -qE "^ +created_at = $(date -u +%Y-%m-%d)T" <<<"$out"
sed "s/3q2-9mWZ0gOVbKxX9y7wYw/$bin/" "$T/q4.sql" >"$T/q4c.sql"
check "query 4: a binary body is named, not printed" \
    grep -qE "^ +body = <7 bytes binary>$" <<<"$(sqlite3 -line "$DB" <"$T/q4c.sql")"
(cd "$T" && sqlite3 "$DB" "SELECT writefile('body.bin', body) FROM jobs WHERE id = '$bin'" >/dev/null)
check_eq "writefile() saves the body whole" "$(printf 'bin\000ary' | od -c)" "$(od -c <"$T/body.bin")"

out=$(q 5)
echo "$out" | sed 's/^/# q5: /'
check_eq "query 5: finished in the last hour, by queue and state" "default|dead|2 default|done|4 mail|done|2" \
    "$(echo "$out" | cut -d'|' -f1-3 | xargs)"
ms=$(echo "$out" | awk -F'|' '$1 == "default" && $2 == "done" { print $4 }')
check "query 5: average run time in ms (the handler sleeps 20 ms): $ms" \
    awk -v m="${ms:-0}" 'BEGIN { exit !(m >= 15 && m < 5000) }'
sql "UPDATE jobs SET finished_at = finished_at - 7200000 WHERE queue = 'mail'"
check_eq "query 5: jobs finished before the last hour are left out" "default|dead|2 default|done|4" \
    "$(q 5 | cut -d'|' -f1-3 | xargs)"
plan=$(sqlite3 "$DB" "EXPLAIN QUERY PLAN $(cat "$T/q5.sql")")
check "query 5: served by the finished_at index" grep -q "jobs_finished" <<<"$plan"

# --- hot backup under load
# Three clients POST as fast as they can; each appends the id of every job
# acknowledged (202) to its file.  The jobs "acknowledged before the backup
# began" are the lines in those files when it begins.
sql "INSERT INTO jobs (id, queue, state, max_attempts, created_at, run_at, body)
     SELECT 'pad' || value, 'idle', 'done', 1, 0, 0, randomblob(2000)
     FROM generate_series(1, 1500)" 2>/dev/null ||
    sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
     INSERT INTO jobs (id, queue, state, max_attempts, created_at, run_at, body)
     SELECT 'pad' || i, 'idle', 'done', 1, 0, 0, randomblob(2000) FROM n"
echo "# database before the backups: $(( $(stat -c %s "$DB") / 1024 )) KiB + WAL"
loader() {
	while [ ! -e "$T/stop" ]; do
		id=$(post idle "load $1 $RANDOM")
		[ -n "$id" ] && echo "$id" >>"$T/acked.$1"
	done
}
loaders=""
for l in 1 2 3; do
	loader "$l" &
	loaders="$loaders $!"
	track $!
done
wait_for test -s "$T/acked.3"
acks() { [ "$(cat "$T"/acked.* | wc -l)" -ge "$1" ]; }
wait_for acks 60
backup() {	# NAME COMMAND: snapshot the acks, run COMMAND, count acks during it
	cat "$T"/acked.* | sort >"$T/before.$1"
	local b0 b1
	b0=$(cat "$T"/acked.* | wc -l)
	sqlite3 -cmd ".timeout 10000" "$DB" "$2" 2>"$T/backup.$1.err"
	echo $? >"$T/backup.$1.rc"
	b1=$(cat "$T"/acked.* | wc -l)
	echo "# $1: $(wc -l <"$T/before.$1") jobs acknowledged before, $((b1 - b0)) during the backup"
}
backup vacuum "VACUUM INTO '$T/backup-vacuum.db'"
sleep 0.3
backup dot ".backup '$T/backup-dot.db'"
# The load goes on past the backups: more acknowledged than before the last.
wait_for acks $(( $(wc -l <"$T/before.dot") + 1 ))
touch "$T/stop"
wait $loaders	# each ends after its POST in flight (-w 10)
acked=$(cat "$T"/acked.* | wc -l)

for b in vacuum dot; do
	f=$T/backup-$b.db
	check_eq "$b backup: the command succeeded" "0" "$(cat "$T/backup.$b.rc")"
	check_eq "$b backup: integrity_check ok" "ok" "$(sqlite3 "$f" 'PRAGMA integrity_check' 2>&1)"
	check_eq "$b backup: schema version 5" "5" "$(sqlite3 "$f" 'PRAGMA user_version')"
	sqlite3 "$f" "SELECT id FROM jobs" | sort >"$T/in.$b"
	missing=$(comm -23 "$T/before.$b" "$T/in.$b" | wc -l)
	check_eq "$b backup: holds every job acknowledged before it began ($(wc -l <"$T/before.$b"))" "0" "$missing"
	check "$b backup: fcgiqctl reads it" sh -c "'$FCGIQCTL' -d '$f' stats >/dev/null"
done
check "the load went on during the backups ($acked acknowledged in all)" \
    test "$acked" -gt "$(wc -l <"$T/before.dot")"
check_eq "and every acknowledged job is in the live database" "0" \
    "$(cat "$T"/acked.* | sort | comm -23 - <(sql "SELECT id FROM jobs" | sort) | wc -l)"
stop_pid "$FCGIQ_PID"

# --- upgrading: migrations on open
cp "$T/backup-vacuum.db" "$T/v1.db"
sqlite3 "$T/v1.db" "DROP INDEX jobs_dead; DROP TABLE schedules;
    ALTER TABLE jobs DROP COLUMN crashes;
    DROP INDEX jobs_serial; ALTER TABLE jobs DROP COLUMN serial_key;
    DROP TABLE rejected; ALTER TABLE jobs DROP COLUMN result_type;
    DROP TABLE queues; PRAGMA user_version = 1"
sed "s|^database = .*|database = $T/v1.db|" "$T/fcgiq.conf" >"$T/v1.conf"
"$FCGIQ" -W -c "$T/v1.conf" -s "$T/v1.sock" 2>"$T/v1.log" &
p=$!
track "$p"
wait_for grep -q "ready:" "$T/v1.log"
check_eq "a version-1 database is migrated to 5 when fcgiq opens it" "5" \
    "$(sqlite3 "$T/v1.db" 'PRAGMA user_version')"
check "... the table version 2 adds is there" \
    sh -c "sqlite3 '$T/v1.db' 'SELECT count(*) FROM queues' >/dev/null"
check_eq "... version 3's index on finished_at is there" "1" \
    "$(sqlite3 "$T/v1.db" "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs_finished' AND sql LIKE '%finished_at IS NOT NULL'")"
check_eq "... version 4's table of rejected requests is there" "0" \
    "$(sqlite3 "$T/v1.db" 'SELECT count(*) FROM rejected')"
check_eq "... version 5's table of schedules and jobs.serial_key are there" "0 0" \
    "$(sqlite3 "$T/v1.db" 'SELECT count(*) FROM schedules; SELECT count(serial_key) FROM jobs' | tr '\n' ' ' | sed 's/ $//')"
check_eq "... its state CHECK still refuses an unknown state" "CHECK" \
    "$(sqlite3 "$T/v1.db" "UPDATE jobs SET state = 'lost'" 2>&1 | grep -o CHECK)"
check_eq "... the file is sound" "ok" "$(sqlite3 "$T/v1.db" 'PRAGMA integrity_check')"
check_eq "... and its jobs are all there" "$(sqlite3 "$T/backup-vacuum.db" 'SELECT count(*) FROM jobs')" \
    "$(sqlite3 "$T/v1.db" 'SELECT count(*) FROM jobs')"
stop_pid "$p"
sqlite3 "$T/v1.db" "PRAGMA user_version = 6"
rc=0
timeout 20 "$FCGIQ" -W -c "$T/v1.conf" -s "$T/v1.sock" 2>"$T/v5.log" || rc=$?
check "a database newer than the program is refused" test "$rc" -ne 0 -a "$rc" -ne 124
check "... saying why" grep -q "schema version 6 is newer than this program's (5)" "$T/v5.log"

done_testing
