#!/bin/bash
# bulk: fcgiqctl retry / discard / cancel of many jobs by filters.
#   - each filter selects exactly the rows the same condition in sqlite3
#     selects, and the command changes those and no others;
#   - a bare command, or filters without --all-matching, change nothing;
#   - on a terminal (script(1)) it asks "retry N jobs? [y/N]" and does
#     nothing on "n"; --yes does not ask; through a pipe it does not ask;
#   - intake through nginx acknowledged while a bulk retry of 200 000 jobs
#     runs is all stored;
#   - fcgiqctl killed with SIGKILL in the middle leaves a sound database in
#     which every batch is whole (the jobs changed are a prefix in arrival
#     order, each of them changed whole), and the same command does the
#     rest.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in nginx spawn-fcgi curl sqlite3 script; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done

ctl() { "$FCGIQCTL" "$@"; }
now_ms() { date +%s%3N; }

# --- filters, on a database of their own ---------------------------------

F="$T/filters.db"
printf x | ctl -d "$F" enqueue default >/dev/null ||
    bail "fcgiqctl could not create $F"
# 2400 jobs: queues default and mail, every state, created 30 min past the
# hour 0..239 hours ago (no boundary near a relative time), three errors.
now=$(now_ms)
sqlite3 "$F" "DELETE FROM jobs;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 2399)
INSERT INTO jobs (id, queue, state, attempts, max_attempts, created_at,
    run_at, finished_at, body, last_error)
SELECT 'job' || i, CASE WHEN i % 2 THEN 'mail' ELSE 'default' END,
    CASE i % 5 WHEN 0 THEN 'dead' WHEN 1 THEN 'done' WHEN 2 THEN 'cancelled'
        WHEN 3 THEN 'queued' ELSE 'retry' END,
    2, 2, $now - (i % 240) * 3600000 - 1800000, $now + 3600000,
    CASE WHEN i % 5 IN (0, 1, 2) THEN $now END, x'',
    CASE i % 3 WHEN 0 THEN 'timeout after 60s' WHEN 1 THEN 'exit 1'
        ELSE NULL END
FROM c;"
h=3600000
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%SZ; }

# try NAME 'SQL condition' COMMAND ARGS...: the ids the condition selects
# are exactly those the command changes (state or presence), on a copy.
try() {
	local name=$1 cond=$2 out want got
	shift 2
	cp "$F" "$T/g.db"
	want=$(sqlite3 "$T/g.db" "SELECT id FROM jobs WHERE $cond ORDER BY id")
	out=$(ctl -d "$T/g.db" --json "$@" --all-matching --yes </dev/null)
	got=$(sqlite3 "$T/g.db" "ATTACH '$F' AS f;
	    SELECT o.id FROM f.jobs AS o LEFT JOIN main.jobs AS n USING (id)
	    WHERE n.id IS NULL OR n.state != o.state OR
	    n.finished_at IS NOT o.finished_at ORDER BY o.id")
	check "$name: $(echo "$want" | grep -c .) jobs, the same as sqlite3's" \
	    test -n "$want" -a "$want" = "$got"
	check_eq "$name: the count printed" "$(echo "$want" | grep -c .)" \
	    "$(echo "$out" | tr -dc '0-9')"
}
try "retry (dead by default)" "state = 'dead'" retry
try "retry -q mail --state dead,cancelled" \
    "queue = 'mail' AND state IN ('dead', 'cancelled')" \
    retry -q mail --state dead,cancelled
try "retry --state retry --state cancelled" \
    "state IN ('retry', 'cancelled')" retry --state retry --state cancelled
try "retry --since 3d --until 1d --error '%timeout%'" \
    "state = 'dead' AND created_at >= $now - 72 * $h AND
    created_at < $now - 24 * $h AND last_error LIKE '%timeout%'" \
    retry --since 3d --until 1d --error '%timeout%'
try "discard --state done --until (ISO 8601, 100 h ago)" \
    "state = 'done' AND created_at < $now - 100 * $h" \
    discard --state done --until "$(iso $((now - 100 * h)))"
try "discard --state dead,cancelled --since 2026-style date" \
    "state IN ('dead', 'cancelled') AND created_at >= $now - 50 * $h" \
    discard --state dead,cancelled --since "$(iso $((now - 50 * h)))"
try "cancel -q default (queued and retry)" \
    "queue = 'default' AND state IN ('queued', 'retry')" cancel -q default
try "cancel --state retry --error 'exit%'" \
    "state = 'retry' AND last_error LIKE 'exit%'" \
    cancel --state retry --error 'exit%'

# --- nothing without --all-matching; states an op refuses ---------------

cp "$F" "$T/g.db"
sum() { sqlite3 "$T/g.db" "SELECT group_concat(state || count, ' ') FROM
    (SELECT state, count(*) AS count FROM jobs GROUP BY state)"; }
before=$(sum)
ctl -d "$T/g.db" retry </dev/null >/dev/null 2>&1
check_eq "a bare retry: usage (2)" 2 $?
ctl -d "$T/g.db" discard </dev/null >/dev/null 2>&1
check_eq "a bare discard: usage (2)" 2 $?
ctl -d "$T/g.db" cancel -q mail --yes </dev/null >"$T/o" 2>&1
check_eq "filters without --all-matching: usage (2)" 2 $?
check "... saying --all-matching is needed" grep -q -- --all-matching "$T/o"
ctl -d "$T/g.db" retry --state done --all-matching --yes </dev/null \
    >"$T/o" 2>&1
check_eq "retry --state done: usage (2)" 2 $?
check "... naming the states retry takes" \
    grep -q "retry takes retry, dead or cancelled jobs" "$T/o"
check_eq "none of them changed anything" "$before" "$(sum)"

# --- the question on a terminal ------------------------------------------

ndead=$(sqlite3 "$T/g.db" "SELECT count(*) FROM jobs WHERE state = 'dead'")
# tty ANSWER ARGS...: fcgiqctl on a pseudo-terminal (script(1), which runs
# the command with $SHELL), ANSWER typed; its screen into $T/tty.
tty() {
	local answer=$1
	shift
	printf '%s\n' "$answer" | SHELL=/bin/bash script -qec \
	    "$FCGIQCTL -d $T/g.db $*" /dev/null >"$T/tty" 2>&1
}
tty n retry --all-matching
check_eq "terminal, answered n: exit 4" 4 $?
check "... asked \"retry $ndead jobs? [y/N]\"" \
    grep -qF "retry $ndead jobs? [y/N]" "$T/tty"
check_eq "... nothing changed" "$before" "$(sum)"
tty y retry --all-matching
check_eq "terminal, answered y: exit 0" 0 $?
check "... $ndead jobs retried" grep -q "$ndead jobs retried" "$T/tty"
ncanc=$(sqlite3 "$T/g.db" "SELECT count(*) FROM jobs WHERE state =
    'cancelled'")
tty n discard --state cancelled --all-matching --yes
check_eq "terminal, --yes: exit 0" 0 $?
check "... not asked" sh -c "! grep -q 'y/N' '$T/tty'"
check "... $ncanc jobs discarded" grep -q "$ncanc jobs discarded" "$T/tty"
nq=$(sqlite3 "$T/g.db" "SELECT count(*) FROM jobs WHERE state IN
    ('queued', 'retry') AND queue = 'mail'")
echo n | ctl -d "$T/g.db" cancel -q mail --all-matching >"$T/o" 2>"$T/e"
check_eq "through a pipe: not asked, exit 0" "0:" "$?:$(cat "$T/e")"
check_eq "... $nq jobs cancelled" "$nq jobs cancelled" "$(cat "$T/o")"

# --- intake goes on during a bulk retry of 200 000 jobs ------------------

resp_conf
resp_spawn || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
resp_nginx || bail "nginx did not start"
big() {	# QUEUE N: N dead jobs of QUEUE, ids QUEUE-0...
	sqlite3 -cmd '.timeout 5000' "$DB" "WITH RECURSIVE c(i) AS (SELECT 0
	    UNION ALL SELECT i + 1 FROM c WHERE i < $2 - 1)
	    INSERT INTO jobs (id, queue, state, attempts, max_attempts,
	        created_at, run_at, finished_at, body, last_error)
	    SELECT '$1-' || i, '$1', 'dead', 3, 3, $(now_ms), 0, $(now_ms),
	        x'7b7d', 'exit 1' FROM c"
}
big github 200000
: >"$T/acked"
(
	while [ ! -e "$T/stop" ]; do
		curl -s -X POST --data-binary intake "$BASE/hooks/intake" |
		    sed -n 's/.*"id":"\([^"]*\)".*/\1/p' >>"$T/acked"
	done
) &
poster=$!
track $poster
wait_for test -s "$T/acked"
t0=$(now_ms)
out=$(ctl -c "$T/fcgiq.conf" retry -q github --all-matching --yes </dev/null)
t1=$(now_ms)
n0=$(wc -l <"$T/acked")
more_acked() { [ "$(wc -l <"$T/acked")" -gt "$((n0 + 5))" ]; }
wait_for more_acked
touch "$T/stop"
wait $poster
check_eq "bulk retry of 200 000 jobs under intake" "200000 jobs retried" "$out"
acked=$(wc -l <"$T/acked")
missing=$(sort "$T/acked" | comm -23 - <(sql "SELECT id FROM jobs" | sort) |
    wc -l)
check "intake acknowledged during it: $acked jobs (it took $((t1 - t0)) ms)" \
    test "$acked" -gt 10
check_eq "... every one of them stored" 0 "$missing"

# --- SIGKILL in the middle -----------------------------------------------

big mail 200000
"$FCGIQCTL" -c "$T/fcgiq.conf" retry -q mail --all-matching --yes \
    --batch 500 </dev/null >/dev/null 2>&1 &
victim=$!
track $victim
started() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'mail' AND
    state = 'queued'")" -gt 0 ]; }
wait_for started
kill -9 $victim
wait $victim 2>/dev/null
done1=$(sql "SELECT count(*) FROM jobs WHERE queue = 'mail' AND
    state = 'queued'")
check "killed in the middle: some done, not all ($done1)" \
    test "$done1" -gt 0 -a "$done1" -lt 200000
check_eq "... the first ones in arrival order, none after" 1 \
    "$(sql "SELECT (SELECT max(seq) FROM jobs WHERE queue = 'mail' AND
    state = 'queued') < (SELECT min(seq) FROM jobs WHERE queue = 'mail' AND
    state = 'dead')")"
check_eq "... each changed job whole (finished_at cleared, run_at set)" 0 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'mail' AND
    ((state = 'queued') != (finished_at IS NULL) OR
    (state = 'queued' AND (run_at = 0 OR max_attempts != 4)))")"
check_eq "... the database is sound" ok "$(sql 'PRAGMA integrity_check')"
out=$(ctl -c "$T/fcgiq.conf" retry -q mail --all-matching --yes </dev/null)
check_eq "... the same command again does the rest" \
    "$((200000 - done1)) jobs retried" "$out"
check_eq "... and then all are queued" 200000 \
    "$(sql "SELECT count(*) FROM jobs WHERE queue = 'mail' AND
    state = 'queued'")"

done_testing
