#!/bin/bash
# tests/e2e/storage-faults.sh: the storage failing under a running fcgiq —
# disk full, a read-only database, the write lock held by an external
# sqlite3 past busy_timeout.  While a fault lasts every POST must get 503
# with Retry-After, never a 202, and store nothing; when it clears the very
# same fcgiq process answers 202 again; at the end every 202 is in a
# database that passes integrity_check, and the database holds exactly the
# jobs that got a 202.
#
# The faults:
#   disk full   the powerloss VFS (tests/chaos/powerloss.so, LD_PRELOADed)
#               fails writes to the database and WAL with SQLITE_FULL while
#               a flag file exists (what ENOSPC gives SQLite)
#   read-only   chattr +i on the database and its WAL: writes through the
#               descriptors fcgiq already holds fail with EPERM, even for
#               root (chmod would not stop root, and a read-only remount is
#               refused while files are open for writing); where chattr is
#               not supported, only the VFS's read-only mode (EROFS-like
#               SQLITE_IOERR_WRITE) runs
#   locked      sqlite3 holding BEGIN IMMEDIATE for 3 s, busy_timeout 1 s
. "$(dirname "$0")/../lib.sh"
. "$top_srcdir/tests/chaos/e2e-lib.sh"

chaos_require
chaos_setup full
# An immutable file left behind would outlive the suite: clear it first.
trap 'chattr -i "$DB" "$DB-wal" 2>/dev/null; _cleanup' EXIT
ACKED=$T/acked			# every id that got a 202
: >"$ACKED"
FULL_FLAG=$T/fault-full
RO_FLAG=$T/fault-readonly
start_fcgiq "$T/fcgiq.log" LD_PRELOAD="$SHIM" FCGIQ_FAULT_FULL="$FULL_FLAG" \
    FCGIQ_FAULT_READONLY="$RO_FLAG" || bail "fcgiq did not start"
PID0=$FCGIQ_PID

# accept N WHAT: N POSTs, each must be a 202 with an id.
accept() {
	local n=$1 what=$2 i r bad=""
	for i in $(seq "$n"); do
		r=$(post)
		set -- $r
		if [ "$1" = 202 ] && [ "$2" != - ]; then
			echo "$2" >>"$ACKED"
		else
			bad="$bad [$r]"
		fi
	done
	if [ -z "$bad" ]; then ok "$what: $n POSTs answered 202"
	else not_ok "$what: every POST answered 202" "got:$bad"; fi
}

# refuse N WHAT: N POSTs (4 at a time, so batches of several jobs fail
# together), each must be 503 with Retry-After; a 202 is recorded as acked
# (it must then be stored) and fails the check.
refuse() {
	local n=$1 what=$2 i k out=$T/refuse.out bad before after pids=""
	before=$(db_count)
	: >"$out"
	for k in 1 2 3 4; do
		for i in $(seq $((n / 4))); do post; done >>"$out.$k" &
		pids="$pids $!"
	done
	wait $pids
	cat "$out".[1-4] >"$out"
	rm -f "$out".[1-4]
	awk '$1 == 202 && $2 != "-" { print $2 }' "$out" >>"$ACKED"
	bad=$(awk '$1 != 503 || $3 == "-"' "$out")
	if [ -z "$bad" ] && [ "$(wc -l <"$out")" -eq $((n / 4 * 4)) ]; then
		ok "$what: $((n / 4 * 4)) POSTs answered 503 with Retry-After ($(awk '{ print $3 }' "$out" | sort -u | tr '\n' ' ')s)"
	else
		not_ok "$what: every POST answered 503 with Retry-After" \
		    "not so: $(echo "$bad" | sort | uniq -c | head -5)"
	fi
	after=$(db_count)
	check_eq "$what: nothing stored while failing" "$before" "$after"
}

alive() {
	if kill -0 "$PID0" 2>/dev/null && [ "$FCGIQ_PID" = "$PID0" ]; then
		ok "$1: the same fcgiq (pid $PID0) kept serving"
	else
		not_ok "$1: the same fcgiq kept serving" "pid $PID0 is gone"
	fi
}

accept 5 "before any fault"

# 1. Disk full.
touch "$FULL_FLAG"
refuse 16 "disk full"
rm -f "$FULL_FLAG"
accept 5 "disk full cleared"
alive "disk full"

# 2. Read-only database: chattr +i on the files themselves when the file
# system has the attribute, then the VFS's read-only mode.
WAL=$DB-wal
if chattr +i "$DB" "$WAL" 2>"$T/chattr.err"; then
	refuse 16 "read-only (chattr +i db and wal)"
	chattr -i "$DB" "$WAL"
	accept 5 "read-only (chattr) cleared"
	alive "read-only (chattr)"
else
	chattr -i "$DB" "$WAL" 2>/dev/null
	echo "# chattr +i not supported here ($(cat "$T/chattr.err")): only the VFS's read-only mode runs"
fi
touch "$RO_FLAG"
refuse 16 "read-only (VFS, EROFS)"
rm -f "$RO_FLAG"
accept 5 "read-only (VFS) cleared"
alive "read-only (VFS)"

# 3. The write lock held by another process past busy_timeout (1 s).
mkfifo "$T/lock.fifo"
sqlite3 "$DB" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
LOCKER=$!
track "$LOCKER"
exec 3>"$T/lock.fifo"
printf '%s\n' "BEGIN IMMEDIATE;" \
    "INSERT INTO queues (name, paused) VALUES ('locker', 0);" \
    ".print locked" >&3
if wait_for grep -q locked "$T/lock.out"; then
	t0=$(date +%s%N)
	refuse 8 "database locked"
	t1=$(date +%s%N)
	echo "# 8 POSTs against the lock took $(( (t1 - t0) / 1000000 )) ms"
	echo "ROLLBACK;" >&3
	exec 3>&-
	wait "$LOCKER"
	accept 5 "lock released"
	alive "database locked"
else
	exec 3>&-
	not_ok "database locked: sqlite3 took the write lock" "$(cat "$T/lock.out")"
fi

# Nothing acknowledged lost, nothing else stored, the file intact.
check_eq "every 202 is in the database" "" "$(db_missing "$ACKED")"
check_eq "the database holds exactly the jobs that got a 202" \
    "$(wc -l <"$ACKED")" "$(db_count)"
check_eq "integrity_check" "ok" "$(db_integrity)"
if grep -q 'powerloss: power cut' "$T/fcgiq.log"; then
	not_ok "no power cut in this suite" "$(grep powerloss "$T/fcgiq.log")"
fi
echo "# fcgiq's log: $(grep -c 'commit: batch' "$T/fcgiq.log") failed batches logged"
done_testing
