#!/bin/bash
# tests/e2e/systemd.sh: the shipped systemd units, without systemd as PID 1.
#
# What is tested:
# - `systemd-analyze verify` accepts each unit (fcgiq's path and config
#   substituted so that the commands exist); skipped without systemd-analyze.
# - fcgiq.socket + fcgiq.service, the socket-activation contract: a small
#   stand-in for systemd binds the socket as fcgiq.socket says (path, mode),
#   keeps it, and runs fcgiq.service's ExecStartPre and ExecStart as its
#   User= (setpriv) with the listening socket on fd 0 (StandardInput=socket)
#   and stdout/stderr to files (StandardOutput/StandardError=journal).
#   POSTs become jobs that its helper runs; nothing is written to stdout;
#   SIGTERM to the main process alone (KillMode=mixed) ends fcgiq, helper
#   and handlers, status 0; a client that connects while fcgiq is down waits
#   in the socket's backlog and is answered when fcgiq is started again.
# - fcgiq-spawn.service: its ExecStartPre, ExecStart, ExecReload and ExecStop
#   command lines, run as written (paths substituted; systemd-cat, which
#   needs journald, replaced by a stand-in that appends to a file): two
#   fcgiq as www-data on a 0660 socket owned by www-data, the pid file,
#   the log kept, SIGHUP reload, and ExecStop returning only once every
#   fcgiq, supervisor and helper has gone.
# - fcgiq-work.service: its ExecStart runs the queue alone; SIGTERM ends it.
# Not tested (needs systemd as PID 1): systemd's own handling of the units -
# starting on the first connection, RuntimeDirectory=, StateDirectory=,
# the protection options, Restart=, the journal itself.
. "$(dirname "$0")/../lib.sh"

for c in perl setpriv sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
FCGICLIENT=$top_builddir/tests/tools/fcgiclient
[ -x "$FCGICLIENT" ] || skip_all "no $FCGICLIENT: make check builds it"
id www-data >/dev/null 2>&1 || skip_all "no user www-data"
[ "$(id -u)" = 0 ] || skip_all "User=www-data needs root"

U=$top_srcdir/conf-examples/systemd
BIN=$T/bin
DB=$T/var/queue.db
SOCK=$T/run/fcgiq.sock
mkdir -p "$BIN" "$T/units" "$T/var" "$T/state"
chmod 755 "$BIN"
chown www-data: "$T/var" "$T/state"
cp "$FCGIQ" "$BIN/fcgiq"
cat >"$BIN/record" <<'EOF'
#!/bin/sh
echo "$FCGIQ_JOB_ID $FCGIQ_ATTEMPT $$" >>"$1/runs"
echo ran
EOF
# The stand-in for systemd-cat: stdout and stderr appended to a file.
cat >"$BIN/journal-cat" <<EOF
#!/bin/sh
exec "\$@" >>"$T/journal.log" 2>&1
EOF
chmod 755 "$BIN/record" "$BIN/journal-cat"
touch "$T/journal.log" && chmod 666 "$T/journal.log"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
grace    = 5s

[queue default]
handler     = exec:$BIN/record $T/state
user = root
backoff     = 50ms..200ms
EOF

# unit FILE: the shipped unit with this run's paths.
unit() {
	sed -e "s|/usr/local/sbin/fcgiq|$BIN/fcgiq|g" \
	    -e "s|/etc/fcgiq/fcgiq.conf|$T/fcgiq.conf|g" \
	    -e "s|/run/fcgiq|$T/run|g" \
	    -e "s|/var/lib/fcgiq|$T/var|g" \
	    -e "s|/usr/bin/systemd-cat -t fcgiq|$BIN/journal-cat|g" \
	    "$U/$1"
}
# key FILE KEY: the values of KEY= in a unit, one a line; `$$` is `$` to
# systemd.
key() {
	unit "$1" | sed -n "s/^$2=//p" | sed 's/\$\$/$/g'
}
for f in fcgiq.socket fcgiq.service fcgiq-spawn.service fcgiq-work.service; do
	unit "$f" >"$T/units/$f"
done

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
# post URI: POST over FastCGI to $SOCK; the job id on stdout.
post() {
	"$FCGICLIENT" -s "$SOCK" -m POST -u "$1" -d "${BODY:-x}" -w 10 |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
wait_state() {
	local i
	for i in $(seq 600); do	# 30 s: CI machines are shared
		[ "$(sql "SELECT state FROM jobs WHERE id = '$1'")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
# procs_of PATH: pids with PATH as a word of their command line.
procs_of() {
	ps -e -o pid= -o args= |
	    awk -v p="$1" '{ for (i = 2; i <= NF; i++) if ($i == p) { print $1; next } }'
}
gone() { [ -z "$(procs_of "$BIN/fcgiq")" ]; }

# --- systemd-analyze verify
if command -v systemd-analyze >/dev/null; then
	for f in fcgiq.socket fcgiq.service fcgiq-spawn.service fcgiq-work.service; do
		out=$(cd "$T/units" && systemd-analyze verify --man=no "./$f" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [ -z "$out" ]; then
			ok "systemd-analyze verify $f"
		else
			not_ok "systemd-analyze verify $f" "$out"
		fi
	done
else
	for f in fcgiq.socket fcgiq.service fcgiq-spawn.service fcgiq-work.service; do
		ok "systemd-analyze verify $f # SKIP systemd-analyze not installed (package systemd)"
	done
fi
check_eq "fcgiq.socket: Accept=no, one listening stream socket" "no|$SOCK" \
    "$(key fcgiq.socket Accept)|$(key fcgiq.socket ListenStream)"
check_eq "fcgiq.service: the socket on fd 0, the log in the journal" "socket journal journal" \
    "$(key fcgiq.service StandardInput) $(key fcgiq.service StandardOutput) $(key fcgiq.service StandardError)"

# --- socket activation: a stand-in for systemd
# holder SOCK MODE USER CMD...: bind and listen on SOCK (mode MODE, owner
# USER), then run CMD as USER with the socket on fd 0, stdout and stderr
# appended to $SOCK.stdout / $SOCK.stderr; when CMD exits, record its status
# in $SOCK.status and, if $SOCK.again exists, remove it and run CMD again
# on the same socket (as systemd does when the service is restarted).
cat >"$T/holder.pl" <<'EOF'
use strict;
use Socket;
use POSIX ();
my ($path, $mode, $user, @cmd) = @ARGV;
my (undef, undef, $uid, $gid) = getpwnam($user) or die "no user $user";
unlink $path;
socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($path)) or die "bind $path: $!";
chown($uid, $gid, $path) or die "chown: $!";
chmod(oct($mode), $path) or die "chmod: $!";
listen($s, 1024) or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
while (1) {
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		POSIX::dup2(fileno($s), 0) or die "dup2: $!";
		open(STDOUT, '>>', "$path.stdout") or die;
		open(STDERR, '>>', "$path.stderr") or die;
		exec('setpriv', "--reuid=$uid", "--regid=$gid", '--clear-groups',
		    '--', @cmd) or die "exec: $!";
	}
	open(my $pf, '>', "$path.mainpid") or die; print $pf "$pid\n"; close $pf;
	waitpid($pid, 0);
	open(my $sf, '>', "$path.status") or die; print $sf "$?\n"; close $sf;
	while (! -e "$path.again") {
		select(undef, undef, undef, 0.1);
		exit 0 if ! -e "$path.keep";
	}
	unlink "$path.again";
}
EOF
mkdir -p "$T/run"
chmod 755 "$T/run"
# ExecStartPre first, as systemd runs it (its failure would stop the start).
pre=$(key fcgiq.service ExecStartPre)
check "fcgiq.service ExecStartPre (fcgiq -t) passes" sh -c "$pre >/dev/null"
touch "$SOCK.keep"
eval "set -- $(key fcgiq.service ExecStart)"
perl "$T/holder.pl" "$SOCK" "$(key fcgiq.socket SocketMode)" \
    "$(key fcgiq.service User)" "$@" 2>"$T/holder.err" &
HOLDER=$!
track "$HOLDER"
wait_for grep -q "ready:" "$SOCK.stderr" || bail "fcgiq did not start on fd 0: $(cat "$SOCK.stderr" "$T/holder.err")"
MAIN=$(cat "$SOCK.mainpid")
check_eq "the socket: mode and owner of fcgiq.socket" "660 www-data www-data" \
    "$(stat -c '%a %U %G' "$SOCK")"
check_eq "fcgiq runs as the unit's User" "www-data" "$(ps -o user= -p "$MAIN" | tr -d ' ')"
check "fcgiq's fd 0 is the listening socket" grep -q '^socket:' <<<"$(readlink "/proc/$MAIN/fd/0")"
id=$(post /hooks/sa)
check "POST over the activated socket: a job" test -n "$id"
check "its helper runs the job" wait_state "$id" "done"
check_eq "fcgiq's log went to stderr (the journal)" "1" "$(grep -c "ready:" "$SOCK.stderr")"
check_eq "nothing on stdout" "0" "$(stat -c %s "$SOCK.stdout" 2>/dev/null || echo 0)"
check_eq "ExecReload: SIGHUP reloads" "ok" \
    "$(MAINPID=$MAIN; eval "$(key fcgiq.service ExecReload)"; wait_for grep -q 'reload:' "$SOCK.stderr" && echo ok)"

# KillMode=mixed: SIGTERM to the main process only.  Then a client
# connects while no fcgiq runs: it waits in the backlog of the socket the
# stand-in keeps, until the service is started again.
kids=$(ps -o pid= --ppid "$MAIN" | xargs)
kill -TERM "$MAIN"
wait_for test -s "$SOCK.status"
check_eq "SIGTERM to the main process: exit status 0" "0" "$(cat "$SOCK.status")"
left=""
for p in $kids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check_eq "its supervisor and helper went with it" "" "$left"
BODY=later post /hooks/backlog >"$T/backlog.id" &
postpid=$!
sleep 1
check "a client connecting while fcgiq is stopped waits" kill -0 "$postpid"
touch "$SOCK.again"
wait_for eval '[ "$(cat "$SOCK.mainpid")" != "$MAIN" ]'
wait "$postpid"
id2=$(cat "$T/backlog.id")
check "a client of the restarted service is answered (same socket)" test -n "$id2"
check "... and its job runs" wait_state "$id2" "done"
check_eq "the socket's inode never changed hands: one fcgiq started twice" "2" \
    "$(grep -c "ready:" "$SOCK.stderr")"
rm -f "$SOCK.keep"
kill -TERM "$(cat "$SOCK.mainpid")"
wait "$HOLDER"
wait_for gone
check "socket activation: nothing left running" gone

# --- fcgiq-spawn.service, its command lines as written
rm -rf "$T/run"
mkdir -m 0755 "$T/run"			# RuntimeDirectory=fcgiq, 0755
while IFS= read -r c; do
	eval "$c" >>"$T/spawn-unit.log" 2>&1 || bail "ExecStartPre failed: $c"
done < <(key fcgiq-spawn.service ExecStartPre)
ok "fcgiq-spawn.service: ExecStartPre lines pass"
check_eq "ExecStartPre made the database directory for www-data" "www-data 750" \
    "$(stat -c '%U %a' "$T/var")"
eval "$(key fcgiq-spawn.service ExecStart)" >>"$T/spawn-unit.log" 2>&1
check "ExecStart: spawn-fcgi forks and exits 0 (Type=forking)" test $? -eq 0
pids=$(cat "$T/run/fcgiq.pid" 2>/dev/null | xargs)
for p in $pids; do track "$p"; done
check_eq "the pid file lists the 2 children (-F 2 -P)" "2" "$(echo $pids | wc -w)"
check_eq "they run as www-data (-u -g)" "www-data:www-data" \
    "$(ps -o user=,group= -p "$(echo $pids | tr ' ' ,)" | sort -u | awk '{print $1 ":" $2}')"
check_eq "the socket: www-data, 0660 (-U -M)" "www-data 660" "$(stat -c '%U %a' "$SOCK")"
wait_for eval '[ "$(grep -c "ready:" "$T/journal.log")" -ge 2 ]'
check_eq "both fcgiq log through systemd-cat (not /dev/null)" "2" "$(grep -c 'ready:' "$T/journal.log")"
id=$(post /hooks/spawn)
check "POST: a job" test -n "$id"
check "... run by the active helper" wait_state "$id" "done"
eval "$(key fcgiq-spawn.service ExecReload)"
check "ExecReload: both reload" wait_for eval '[ "$(grep -c "reload:" "$T/journal.log")" -ge 2 ]'
all=$(procs_of "$BIN/fcgiq" | xargs)
check "fcgiq, supervisors, helpers: 6 processes" test "$(echo $all | wc -w)" -eq 6
timeout 30 sh -c "$(key fcgiq-spawn.service ExecStop)"
check "ExecStop returns 0" test $? -eq 0
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check_eq "... once both fcgiq have exited" "" "$left"
wait_for gone
check "... and their supervisors and helpers too" gone

# --- fcgiq-work.service: the helper alone
id=$(printf 'w' | "$top_builddir/fcgiqctl" -c "$T/fcgiq.conf" enqueue default 2>/dev/null |
    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p; /^[A-Za-z0-9_-]\{16,\}$/p' | head -1)
check "fcgiqctl enqueue: a job waits" test -n "$id"
eval "set -- $(key fcgiq-work.service ExecStart)"
setpriv --reuid=www-data --regid=www-data --clear-groups -- "$@" 2>"$T/work.log" &
work=$!
track "$work"
check "fcgiq work (fcgiq-work.service ExecStart) runs it" wait_state "$id" "done"
MAINPID=$work eval "$(key fcgiq-work.service ExecReload)"
check "fcgiq work: ExecReload reloads" wait_for grep -q 'reload' "$T/work.log"
kill -TERM "$work"
rc=0
wait "$work" || rc=$?
check_eq "fcgiq work: SIGTERM, exit status 0" "0" "$rc"
check_eq "the handler ran each job once" \
    "$(sort -u -k1,1 "$T/state/runs" | wc -l)" "$(wc -l <"$T/state/runs")"

done_testing
