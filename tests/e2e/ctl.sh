#!/bin/bash
# fcgiqctl against a database with no fcgiq running: enqueue, stats, ls,
# show (text and binary bodies), cancel and its exit codes, --json; every
# change checked with the sqlite3 shell.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

cat > "$T/fcgiq.conf" <<EOF2
[fcgiq]
database = $T/var/q.db
[queue default]
[queue mail]
max_attempts = 3
EOF2
ctl() { "$FCGIQCTL" -c "$T/fcgiq.conf" "$@"; }
q() { sqlite3 "$T/var/q.db" "$1"; }

id1=$(echo 'hello world' | ctl enqueue default)
check "enqueue prints a 30-character id" test "${#id1}" -eq 30
check_eq "the job is queued in the database" "default|queued|1|5" \
    "$(q "SELECT queue, state, body = CAST('hello world' || char(10) AS BLOB), max_attempts FROM jobs WHERE id = '$id1'")"
id2=$(printf 'a\0b' | ctl enqueue mail --delay 1h --priority 7)
check_eq "delay and priority are stored" "1|7|3|3" \
    "$(q "SELECT run_at - created_at BETWEEN 3599000 AND 3601000, priority, max_attempts, length(body) FROM jobs WHERE id = '$id2'")"
out=$(echo x | ctl enqueue nosuchqueue 2>&1); rc=$?
check_eq "an unknown queue is refused with exit 2" 2 "$rc"
check "and the message names it" grep -q nosuchqueue <<<"$out"
check_eq "nothing stored for it" 2 "$(q 'SELECT count(*) FROM jobs')"

out=$(ctl stats)
check "stats shows both queues" bash -c "grep -q '^default *queued *1' <<<\"\$1\" && grep -q '^mail *queued *1' <<<\"\$1\"" _ "$out"
check_eq "stats --json counts" '2' "$(ctl stats --json | grep -c '"jobs": 1')"
check_eq "ls lists newest first" "$id2" "$(ctl ls | sed -n 2p | awk '{print $1}')"
check_eq "ls filters by queue" "1" "$(ctl ls -q default --json | grep -c '"id"')"
check_eq "ls filters by state" "0" "$(ctl ls -s done --json | grep -c '"id"')"
check "show prints a text body as text" bash -c "\"\$@\" | grep -q '^hello world$'" _ "$FCGIQCTL" -c "$T/fcgiq.conf" show "$id1"
check "show prints a binary body as a hexdump" bash -c "\"\$@\" | grep -q '61 00 62'" _ "$FCGIQCTL" -c "$T/fcgiq.conf" show "$id2"
ctl show nosuchjob >/dev/null 2>&1; check_eq "show of an unknown id exits 3" 3 $?

ctl cancel "$id1" >/dev/null; check_eq "cancel exits 0" 0 $?
check_eq "the job is cancelled" "cancelled" "$(q "SELECT state FROM jobs WHERE id = '$id1'")"
ctl cancel "$id1" >/dev/null 2>&1; check_eq "cancelling it again exits 4" 4 $?
ctl cancel nosuchjob >/dev/null 2>&1; check_eq "cancelling an unknown id exits 3" 3 $?
ctl bogus >/dev/null 2>&1; check_eq "an unknown command exits 2" 2 $?

# New ids start with a letter or digit; ids of earlier versions may start
# with '-' (one in 64 of 22 characters, every one of 30), which must not
# read as an option (a clean-machine CI run drew one). Such ids are put in
# the database directly, as an upgrade finds them.
check "a new id starts with a letter or digit" grep -Eq '^[A-Za-z0-9]' <<<"$id1"
for dash in -abcdefghijklmnopqrstu -PXo3ab_abcdefghijklmnopqrstuv; do
	q "UPDATE jobs SET id = '$dash' WHERE id = '$id1'"
	ctl show "$dash" >/dev/null; check_eq "show of an id starting with '-' (${#dash})" 0 $?
	ctl retry "$dash" >/dev/null; check_eq "retry of an id starting with '-' (${#dash}, cancelled job)" 0 $?
	ctl cancel "$dash" >/dev/null; check_eq "cancel of an id starting with '-' (${#dash})" 0 $?
	check_eq "... cancelled it" cancelled "$(q "SELECT state FROM jobs WHERE id = '$dash'")"
	q "UPDATE jobs SET id = '$id1', state = 'cancelled' WHERE id = '$dash'"
	ctl cancel "$dash" >/dev/null 2>&1; check_eq "cancel of an unknown id starting with '-' (${#dash}) exits 3" 3 $?
done
check_eq "an old id sorts before every new one" "-PXo3ab_abcdefghijklmnopqrstuv" \
    "$(printf '%s\n' "$id1" "$id2" -PXo3ab_abcdefghijklmnopqrstuv | LC_ALL=C sort | head -1)"

# retry: a dead job gets one more attempt; a done one is refused.
id3=$(echo dead | ctl enqueue default)
id4=$(echo done | ctl enqueue default)
q "UPDATE jobs SET state = 'dead', attempts = 5, finished_at = 1 WHERE id = '$id3';
   UPDATE jobs SET state = 'done', attempts = 1, finished_at = 1 WHERE id = '$id4'"
ctl retry "$id3" >/dev/null; check_eq "retry of a dead job exits 0" 0 $?
check_eq "it is queued with one more attempt" "queued|5|6" \
    "$(q "SELECT state, attempts, max_attempts FROM jobs WHERE id = '$id3'")"
ctl retry "$id4" >/dev/null 2>&1; check_eq "retry of a done job exits 4" 4 $?
ctl retry "$id1" >/dev/null; check_eq "retry of a cancelled job exits 0" 0 $?
q "UPDATE jobs SET state = 'dead', finished_at = 1 WHERE id IN ('$id1', '$id3')"
check_eq "retry --dead -q mail requeues none of default's" '{"requeued":0}' \
    "$(ctl --json retry --dead -q mail | tr -d ' \n')"
check_eq "retry --dead requeues both" "2 dead jobs requeued" "$(ctl retry --dead)"

# purge: only what is named, only older than asked.
q "UPDATE jobs SET state = 'dead', finished_at = 1 WHERE id = '$id3'"
ctl purge >/dev/null 2>&1; check_eq "purge without a state is refused" 2 $?
check_eq "purge --dead --older-than 1d deletes the old dead job" "1 job deleted" \
    "$(ctl purge --dead --older-than 1d)"
check_eq "the done job is still there" 1 "$(q "SELECT count(*) FROM jobs WHERE id = '$id4'")"
check_eq "purge --done -q mail deletes nothing of default" "0 jobs deleted" "$(ctl purge --done -q mail)"

# pause / resume: stored in the database, unknown queues refused.
check_eq "pause" "mail paused" "$(ctl pause mail)"
check_eq "the queues table says paused" 1 "$(q "SELECT paused FROM queues WHERE name = 'mail'")"
id5=$(echo still-accepted | ctl enqueue mail)
check_eq "a paused queue still takes jobs" queued "$(q "SELECT state FROM jobs WHERE id = '$id5'")"
check_eq "resume" "mail resumed" "$(ctl resume mail)"
check_eq "the queues table says resumed" 0 "$(q "SELECT paused FROM queues WHERE name = 'mail'")"
ctl pause nosuchqueue >/dev/null 2>&1; check_eq "pausing an unknown queue exits 2" 2 $?
# -h/--help (usage on stdout, status 0) and --version, for both programs.
ver=$(sed -n 's/^PACKAGE_VERSION = //p' "$top_builddir/Makefile")
for prog in "$FCGIQ" "$FCGIQCTL"; do
	name=${prog##*/}
	for opt in -h --help; do
		out=$("$prog" $opt 2>/dev/null); rc=$?
		check_eq "$name $opt exits 0" 0 "$rc"
		check "$name $opt prints the usage on stdout" grep -q "^usage: $name" <<<"$out"
	done
	check_eq "$name --version" "$name $ver" "$("$prog" --version 2>/dev/null)"
	"$prog" --bogus >/dev/null 2>&1; check_eq "$name --bogus exits 2" 2 $?
done
check "fcgiq -h lists fcgiq work" grep -q "fcgiq work" <<<"$("$FCGIQ" -h)"
# One entry point runs a helper alone: fcgiq work.
out=$(ctl work 2>&1); rc=$?
check_eq "fcgiqctl work is gone: exit 2" 2 "$rc"
check "... and it points to fcgiq work" grep -q '"fcgiq work' <<<"$out"
check_eq "integrity_check" ok "$(q 'PRAGMA integrity_check')"
done_testing
