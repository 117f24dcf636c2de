#!/bin/bash
# tests/package/run.sh: the Debian package, from the committed tree to purge.
#
# - Builds it with dpkg-buildpackage -us -uc -b from `git archive HEAD` (a
#   copy of the tree where there is no git, as in CI's fresh chroot, build
#   directories left out), unit tests included, in a bare Debian 12 chroot
#   that has only build-essential and what `apt-get build-dep ./` fetches:
#   a build dependency missing from debian/control fails here.  lintian:
#   no error, no warning.
# - Installs it with `apt-get install ./fcgiq_*.deb` in a bare Debian 12
#   chroot (debootstrap minbase, cached as a tarball in $FCGIQ_PKGTEST_CACHE,
#   default /var/cache/fcgiq-pkgtest; fetched once), its dependencies from
#   Debian: the files, the user and group, the directories and their
#   modes, the conffiles, the units enabled.
# - Starts fcgiq.socket + fcgiq.service from the installed unit files with
#   tests/package/unit-run (systemd is not PID 1: a stand-in that applies
#   every line of [Service], hardening included, or refuses), mounts it in
#   the chroot's nginx through the installed snippet, POSTs a job and sees
#   it done by the installed store-to-dir, another delivered by the http:
#   kind (libcurl, a dependency shlibs found) to the chroot's nginx;
#   fcgiqctl with no option as root, as the fcgiq user, as a member of
#   group fcgiq (service running and stopped), refused to others.
# - Upgrades to the same tree built with a higher version, through a real
#   schema migration: with the service stopped and jobs waiting, the
#   installed database is turned back into schema 3 (no jobs.result_type,
#   no rejected table; tests/unit/test_store.c's test_migrate_v3 does the
#   same); the upgrade leaves it as it is and the new service migrates it
#   on its start: the current schema, the table and column there, integrity_check
#   ok, every job kept as it was, the waiting ones run, the conffile and
#   user kept.  Remove keeps the data and the user; purge leaves
#   nothing: no user, group, /var/lib/fcgiq, /var/log/fcgiq, /etc/fcgiq,
#   snippet or unit link.
# Needs root, debootstrap, lintian, perl, curl and the network (the Debian
# mirror: debootstrap once, apt-get update each run).  It also runs inside
# a bare Debian 12 chroot (CI's), where it makes its chroots.
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (chroot, mounts)"
for c in debootstrap lintian perl curl unshare flock; do
	command -v "$c" >/dev/null || skip_all "$c not installed (tests/install-deps.sh)"
done

PKGTEST=$top_srcdir/tests/package
CACHE=${FCGIQ_PKGTEST_CACHE:-/var/cache/fcgiq-pkgtest}
ROOTS=""		# the chroots, outside $T: removed only once unmounted
started=$(date +%s)

# --- cleanup: processes rooted in a chroot (started here) by pid, then
# every mount under it, deepest first; a chroot is removed only when no
# mount is left under it.
pkg_cleanup() {
	local r p m left i
	for r in $ROOTS; do
		[ -d "$r" ] || continue
		# SIGKILL each, then wait (up to 10 s) until none is left: an
		# exiting process may still hold a mount.
		for i in $(seq 100); do
			left=""
			for p in /proc/[0-9]*; do
				[ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] || continue
				kill -9 "${p#/proc/}" 2>/dev/null && left=1
			done
			[ -z "$left" ] && break
			sleep 0.1
		done
		for m in $(awk -v r="$r" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
			umount -l "$m" 2>/dev/null
		done
		left=$(awk -v r="$r" '$2 == r || index($2, r "/") == 1' /proc/self/mounts)
		if [ -n "$left" ]; then
			echo "# mounts left under $r, not removed: $left"
		else
			rm -rf "$r"
		fi
	done
}
trap 'pkg_cleanup; _cleanup' EXIT

# in_chroot ROOT CMD...: CMD in the chroot ROOT, with a clean environment (under
# `make check`, MAKEFLAGS would carry its TESTS= into debian/rules' own
# make check).
in_chroot() {
	local r=$1
	shift
	chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    DEBIAN_FRONTEND=noninteractive "$@"
}
in_root() { in_chroot "$R" "$@"; }
# as USER CMD...: CMD in the chroot $R as USER with USER's groups.
as() {
	local u=$1
	shift
	in_root setpriv --reuid="$u" --regid="$(in_root id -g "$u")" --init-groups -- "$@"
}
elapsed() { echo "$(( $(date +%s) - started )) s"; }
# wait_long CMD...: retry CMD for up to 30 s (TimeoutStopSec=30; a start
# or a stop on a box busy with builds can take more than wait_for's 10 s).
wait_long() {
	local i
	for i in $(seq 300); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# --- a bare Debian 12: debootstrap once, then the cached tarball; the
# packages apt fetches are kept in $CACHE/archives for the next run.
mkdir -p "$CACHE/archives"
base=$CACHE/bookworm-minbase.tgz
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
(
	flock 9
	# Twice: a mirror's hiccup should not fail the suite.
	for i in 1 2; do
		[ -s "$base" ] && break
		rm -rf "$CACHE/root.tmp"
		debootstrap --variant=minbase bookworm "$CACHE/root.tmp" "$mirror" \
		    >"$CACHE/debootstrap.log" 2>&1 &&
		    tar -C "$CACHE/root.tmp" -czf "$base.tmp" . && mv "$base.tmp" "$base"
		rm -rf "$CACHE/root.tmp"
	done
) 9>"$CACHE/lock"
[ -s "$base" ] || bail "debootstrap failed: $(tail -5 "$CACHE/debootstrap.log")"
# net_retry CMD...: CMD, which fetches from the Debian mirror, tried three
# times, 5 then 10 s apart (a mirror being synced, a dropped connection:
# apt's own Acquire::Retries covers one file, not an update or an install
# that fails as a whole).  Its output goes where the caller sends it.
net_retry() {
	local i
	for i in 1 2 3; do
		"$@" && return 0
		[ $i -lt 3 ] && { echo "# failed, trying again: $*" >&2; sleep $((i * 5)); }
	done
	return 1
}
# new_root: a fresh chroot from the tarball in a new directory, its path
# in $NEW (added to $ROOTS before anything is mounted in it, so that the
# EXIT trap finds it whenever the suite stops); a mount point of its own
# (unit-run's namespaces remount it read-only), /proc and /dev mounted,
# apt's lists fetched.
new_root() {
	local r
	NEW=$(mktemp -d /var/tmp/fcgiq-pkgroot.XXXXXX) || return 1
	r=$NEW
	ROOTS="$ROOTS $r"
	tar -C "$r" -xzf "$base" &&
	    mount --bind "$r" "$r" && mount --make-private "$r" &&
	    mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" || return 1
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null
	# No service starts from a maintainer script (there is no systemd
	# here anyway); the test starts what it needs.
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	echo 'Acquire::Retries "5";' >"$r/etc/apt/apt.conf.d/80pkgtest-retries"
	cp "$CACHE"/archives/*.deb "$r/var/cache/apt/archives/" 2>/dev/null
	net_retry in_chroot "$r" apt-get update -q >"$T/apt-update.log" 2>&1
}
keep_archives() { cp -n "$1"/var/cache/apt/archives/*.deb "$CACHE/archives/" 2>/dev/null; }

# --- build, from the committed tree, in a bare chroot with only the
# declared build dependencies (apt-get build-dep ./)
NEW=""
new_root || bail "cannot make a chroot: $NEW $(tail -5 "$T/apt-update.log")"
BR=$NEW
S=$BR/root/src/fcgiq
mkdir -p "$S"
if git -C "$top_srcdir" rev-parse --verify -q HEAD >/dev/null 2>&1; then
	git -C "$top_srcdir" archive HEAD | tar -C "$S" -x
	from="git archive HEAD"
else
	tar -C "$top_srcdir" --exclude=./build --exclude='./build-*' \
	    --exclude=./autom4te.cache --exclude='*.out' -cf - . | tar -C "$S" -x
	from="a copy of the tree: no git here"
fi
check "debian/ is in the committed tree" test -x "$S/debian/rules"
V1=$(sed -n '1s/^fcgiq (\([^)]*\)).*/\1/p' "$S/debian/changelog")
V2=$V1+pkgtest1
ARCH=$(dpkg --print-architecture)
net_retry in_chroot "$BR" apt-get install -y -q --no-install-recommends build-essential >"$T/build-deps.log" 2>&1
net_retry in_chroot "$BR" sh -c 'cd /root/src/fcgiq && apt-get build-dep -y -q ./' >>"$T/build-deps.log" 2>&1
check_eq "apt-get build-dep ./ in a bare Debian 12: exit 0" "0" "$?"
keep_archives "$BR"
echo "# build dependencies installed at $(elapsed)"
# The upgrade's package: the same tree, a higher version, built alongside
# (unit tests once are enough: nocheck).
mkdir -p "$BR/root/src2"
cp -a "$S" "$BR/root/src2/fcgiq"
sed -i "1s/^fcgiq ($V1)/fcgiq ($V2)/" "$BR/root/src2/fcgiq/debian/changelog"
in_chroot "$BR" sh -c 'cd /root/src2/fcgiq && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b' \
    >"$T/build2.log" 2>&1 &
build2=$!
track "$build2"
in_chroot "$BR" sh -c 'cd /root/src/fcgiq && dpkg-buildpackage -us -uc -b' >"$T/build1.log" 2>&1
check_eq "dpkg-buildpackage -us -uc -b ($from): exit 0" "0" "$?"
grep -q "^# FAIL: *0" "$T/build1.log"
check "... its unit tests ran and passed" test $? -eq 0
B=$T/debs
mkdir -p "$B"
cp "$BR"/root/src/fcgiq* "$B/" 2>/dev/null
DEB1=$B/fcgiq_${V1}_$ARCH.deb
[ -f "$DEB1" ] || bail "no $DEB1: $(tail -20 "$T/build1.log")"
out=$(lintian --fail-on error,warning "$B/fcgiq_${V1}_$ARCH.changes" 2>&1)
check_eq "lintian: no error, no warning" "0" "$?"
out=$(grep -v 'running with root privileges' <<<"$out")
[ -n "$out" ] && echo "$out" | sed 's/^/# lintian: /'
contents=$(dpkg-deb -c "$DEB1" | awk '{ print $6 }')
missing=""
for f in ./usr/sbin/fcgiq ./usr/sbin/fcgiqctl ./usr/share/man/man8/fcgiq.8.gz \
    ./usr/share/man/man8/fcgiqctl.8.gz ./usr/share/man/man5/fcgiq.conf.5.gz \
    ./usr/libexec/fcgiq/store-to-dir ./usr/libexec/fcgiq/send-mail \
    ./usr/libexec/fcgiq/github-deploy ./etc/fcgiq/fcgiq.conf \
    ./etc/nginx/snippets/fcgiq.conf ./etc/apache2/conf-available/fcgiq.conf \
    ./lib/systemd/system/fcgiq.socket ./lib/systemd/system/fcgiq.service \
    ./lib/systemd/system/fcgiq-work.service ./usr/share/doc/fcgiq/README.Debian; do
	grep -qxF "$f" <<<"$contents" || missing="$missing $f"
done
check_eq "the package holds the programs, man pages, handlers, conffiles, units" "" "${missing:-}"
depends=$(dpkg-deb -f "$DEB1" Depends)
check "Depends (shlibs) names libcurl4, the http: kind's library: $depends" \
    grep -Eq '(^|, )libcurl4 \(>= [^)]+\)(,|$)' <<<"$depends"
echo "# built $V1 at $(elapsed)"

# --- install it in another bare chroot
new_root || bail "cannot make a chroot: $NEW $(tail -5 "$T/apt-update.log")"
R=$NEW
net_retry in_root apt-get install -y -q --no-install-recommends nginx-light >"$T/apt.log" 2>&1 ||
    bail "apt-get install nginx-light failed: $(tail -5 "$T/apt.log")"
mkdir -p "$R/root/pkg"
cp "$DEB1" "$R/root/pkg/"
net_retry in_root sh -c "cd /root/pkg && apt-get install -y -q ./fcgiq_${V1}_$ARCH.deb" >>"$T/apt.log" 2>&1
check_eq "apt-get install ./fcgiq_${V1}_$ARCH.deb in a bare Debian 12: exit 0" "0" "$?"
keep_archives "$R"
check_eq "dpkg: installed, version $V1" "install ok installed $V1" \
    "$(in_root dpkg-query -W -f='${Status} ${Version}' fcgiq)"
echo "# installed at $(elapsed)"

check "the system user fcgiq, group fcgiq, no login shell" \
    eval 'in_root getent passwd fcgiq | grep -q ":/var/lib/fcgiq:/usr/sbin/nologin$" && in_root getent group fcgiq >/dev/null'
check_eq "/var/lib/fcgiq: fcgiq fcgiq 750" "fcgiq fcgiq 750" "$(in_root stat -c '%U %G %a' /var/lib/fcgiq)"
check_eq "/var/log/fcgiq: fcgiq fcgiq 750" "fcgiq fcgiq 750" "$(in_root stat -c '%U %G %a' /var/log/fcgiq)"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' fcgiq | awk 'NF { print $1 }' | sort | xargs)
check_eq "conffiles" "/etc/apache2/conf-available/fcgiq.conf /etc/fcgiq/fcgiq.conf /etc/nginx/snippets/fcgiq.conf" "$conffiles"
check_eq "fcgiq -t accepts the installed /etc/fcgiq/fcgiq.conf" \
    "/etc/fcgiq/fcgiq.conf: configuration ok" "$(in_root fcgiq -t -c /etc/fcgiq/fcgiq.conf 2>&1)"
check "its mail queue speaks SMTP (send-mail -S), no setgid sendmail" \
    grep -q '^handler *= *exec:/usr/libexec/fcgiq/send-mail -S localhost:25$' "$R/etc/fcgiq/fcgiq.conf"
check "fcgiq.socket and fcgiq.service enabled (deb-systemd-helper)" \
    test -L "$R/etc/systemd/system/sockets.target.wants/fcgiq.socket" -a \
    -L "$R/etc/systemd/system/multi-user.target.wants/fcgiq.service"
check "fcgiq-work.service not enabled" \
    test ! -e "$R/etc/systemd/system/multi-user.target.wants/fcgiq-work.service"

# The mail queue's relay: a fake one on a free port instead of port 25
# (a local edit of the conffile, kept across the upgrade).  One message a
# connection, saved as $T/smtp/N.eml.
SMTP_PORT=$(free_port)
sed -i "s|send-mail -S localhost:25\$|send-mail -S 127.0.0.1:$SMTP_PORT|" "$R/etc/fcgiq/fcgiq.conf"
mkdir -p "$T/smtp"
cat >"$T/smtpd.pl" <<'EOF'
use strict;
use IO::Socket::INET;
my ($port, $dir) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 8, ReuseAddr => 1) or die "listen: $!";
{ open(my $r, '>', "$dir/ready") or die; close $r; }
my $n = 0;
while (my $c = $l->accept) {
	$c->autoflush(1);
	print $c "220 fake ESMTP\r\n";
	while (defined(my $line = <$c>)) {
		if ($line =~ /^DATA/i) {
			print $c "354 go\r\n";
			my $data = '';
			while (defined(my $d = <$c>)) {
				last if $d eq ".\r\n";
				$d =~ s/^\.//;
				$data .= $d =~ s/\r\n$/\n/r;
			}
			open(my $o, '>', "$dir/$n.eml.tmp") or die; print $o $data; close $o;
			rename("$dir/$n.eml.tmp", "$dir/$n.eml");
			$n++;
			print $c "250 queued\r\n";
		} elsif ($line =~ /^QUIT/i) {
			print $c "221 bye\r\n";
			last;
		} else {
			print $c "250 ok\r\n";
		}
	}
	close $c;
}
EOF
# An http: queue (libcurl), another local addition: each job delivered
# to the chroot's nginx on $PORT, which answers 200 "delivered".
PORT=$(free_port)
cat >>"$R/etc/fcgiq/fcgiq.conf" <<EOF

; tests/package/run.sh: the http: kind, delivering to nginx
[queue web]
handler = http:http://127.0.0.1:$PORT/sink/
EOF
check_eq "fcgiq -t accepts it with an http: queue added" \
    "/etc/fcgiq/fcgiq.conf: configuration ok" "$(in_root fcgiq -t -c /etc/fcgiq/fcgiq.conf 2>&1)"
perl "$T/smtpd.pl" "$SMTP_PORT" "$T/smtp" 2>"$T/smtpd.err" &
track $!
wait_for test -e "$T/smtp/ready" || bail "fake SMTP relay did not start: $(cat "$T/smtpd.err")"

# --- start the socket and the service as their unit files say
U=$R/lib/systemd/system
SVC=$T/svc1
"$PKGTEST/unit-run" "$R" "$SVC" "$U/fcgiq.service" "$U/fcgiq.socket" 2>"$T/unit-run.err"
check_eq "unit-run applies every line of fcgiq.service and fcgiq.socket and starts it" "0" "$?"
[ -s "$SVC/mainpid" ] || bail "fcgiq did not start: $(cat "$T/unit-run.err" "$SVC/stderr" 2>/dev/null)"
MAIN=$(cat "$SVC/mainpid")
track "$(cat "$SVC/holderpid")"
track "$MAIN"
wait_long grep -q "ready:" "$SVC/stderr" || bail "fcgiq not ready: $(cat "$SVC/stderr")"
check_eq "the socket: root www-data 660, in /run/fcgiq (755)" "root www-data 660 755" \
    "$(in_root stat -c '%U %G %a' /run/fcgiq/fcgiq.sock) $(in_root stat -c '%a' /run/fcgiq)"
check_eq "fcgiq runs as fcgiq:fcgiq" "$(in_root id -u fcgiq) $(in_root id -g fcgiq)" \
    "$(ps -o uid=,gid= -p "$MAIN" | xargs)"
check_eq "... with NoNewPrivs and an empty bounding set" "1 0000000000000000" \
    "$(awk '/^NoNewPrivs:/ { n = $2 } /^CapBnd:/ { c = $2 } END { print n, c }' "/proc/$MAIN/status")"
check_eq "... / read-only, /var/lib/fcgiq writable (ProtectSystem=strict)" "ro rw" \
    "$(awk '$5 == "/" { split($6, a, ","); r = a[1] } $5 == "/var/lib/fcgiq" { split($6, a, ","); w = a[1] } END { print r, w }' "/proc/$MAIN/mountinfo")"

# --- nginx in the chroot, a queue mounted through the installed snippet
rm -f "$R/etc/nginx/sites-enabled/default"
cat >"$R/etc/nginx/sites-enabled/fcgiq-test" <<EOF
server {
	listen 127.0.0.1:$PORT;
	location /hooks/ {
		include snippets/fcgiq.conf;
		fastcgi_pass unix:/run/fcgiq/fcgiq.sock;
	}
	location /mail/ {
		include snippets/fcgiq.conf;
		fastcgi_param FCGIQ_QUEUE mail;
		fastcgi_pass unix:/run/fcgiq/fcgiq.sock;
	}
	location /web/ {
		include snippets/fcgiq.conf;
		fastcgi_param FCGIQ_QUEUE web;
		fastcgi_pass unix:/run/fcgiq/fcgiq.sock;
	}
	location /jobs/ {
		include snippets/fcgiq.conf;
		fastcgi_pass unix:/run/fcgiq/fcgiq.sock;
	}
	location /sink/ {
		default_type text/plain;
		return 200 "delivered";
	}
}
EOF
in_root nginx -t >"$T/nginx-t.log" 2>&1
check "nginx -t: the site with include snippets/fcgiq.conf" test $? -eq 0
# A port still held by a socket of a process that is exiting: nginx
# tries bind() for 2.5 s; the start is tried again, as start_nginx does.
for i in 1 2 3 4 5 6 7 8 9 10; do
	in_root nginx 2>"$T/nginx-start.err" && break
	grep -q "Address already in use" "$T/nginx-start.err" && [ $i -lt 10 ] ||
	    bail "nginx did not start: $(cat "$T/nginx-t.log" "$T/nginx-start.err")"
	sleep 0.5
done
wait_for test -s "$R/run/nginx.pid" || bail "no nginx pid file"
NGINX=$(cat "$R/run/nginx.pid")
track "$NGINX"
wait_for eval "(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"

# post PATH BODY [TYPE]: the status line and headers in $T/post.h, the id
# out.
post() {
	curl -s -D "$T/post.h" -o "$T/post.b" -H "Content-Type: ${3:-text/plain}" \
	    --data-binary "$2" "http://127.0.0.1:$PORT$1"
	sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/post.b"
}
state() {
	curl -s "http://127.0.0.1:$PORT/jobs/$1" | sed -n 's/.*"state" *: *"\([^"]*\)".*/\1/p'
}
wait_state() {
	local i
	for i in $(seq 300); do
		[ "$(state "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
body="a job for the installed package $$"
id=$(post /hooks/pkg "$body")
check "POST through nginx: 202 Accepted" grep -q '^HTTP/1.1 202' "$T/post.h"
check "... Location: /jobs/ID" grep -qi "^Location: /jobs/$id" "$T/post.h"
check "... the job runs: done (GET /jobs/ID through nginx)" wait_state "$id" done
check_eq "... filed by the installed store-to-dir in /var/lib/fcgiq/spool" "$body" \
    "$(cat "$R/var/lib/fcgiq/spool/$id" 2>/dev/null)"
check_eq "the database: fcgiq fcgiq 640 (UMask=0027)" "fcgiq fcgiq 640" \
    "$(in_root stat -c '%U %G %a' /var/lib/fcgiq/queue.db)"

# send-mail under the unit's sandbox (NoNewPrivileges: no setgid sendmail).
mid=$(post /mail/x '{"to":"ann@example.org","subject":"from the package","text":"hello"}' application/json)
check "a mail job through /mail/: done by the installed send-mail (SMTP, NoNewPrivileges)" \
    wait_state "$mid" done
check "... the relay got the message" grep -qx 'Subject: from the package' "$T/smtp/0.eml"

# The http: kind under the same sandbox.
# sql SQL: read the database as the fcgiq user.
sql() { as fcgiq sqlite3 -readonly /var/lib/fcgiq/queue.db "$@"; }
result() {
	sql "SELECT CAST(result AS TEXT) || ' ' || result_type FROM jobs WHERE id = '$1'"
}
wid=$(post /web/x "for the http: kind")
check "a job through /web/: delivered by the http: kind (libcurl) to nginx, done" \
    wait_state "$wid" done
check_eq "... its result is nginx's answer, with its type" "delivered text/plain" "$(result "$wid")"

# --- fcgiqctl with no options
stats_ok() { grep -Eq '^default +done +1 ' <<<"$1" && grep -Eq '^mail +done +1 ' <<<"$1"; }
out=$(in_root fcgiqctl stats 2>&1)
check "fcgiqctl stats as root: finds /etc/fcgiq/fcgiq.conf's database" stats_ok "$out"
out=$(as fcgiq fcgiqctl stats 2>&1)
check "fcgiqctl stats as the fcgiq user" stats_ok "$out"
in_root useradd -M -s /usr/sbin/nologin -G fcgiq ops
in_root useradd -M -s /usr/sbin/nologin stranger
out=$(as ops fcgiqctl stats 2>&1)
check "fcgiqctl stats as ops, a member of group fcgiq" stats_ok "$out"
out=$(as ops fcgiqctl show "$id" 2>&1)
check "fcgiqctl show ID as ops" grep -q "$id" <<<"$out"
out=$(as stranger fcgiqctl stats 2>&1)
rc=$?
check "fcgiqctl stats as a user outside the group: refused" test "$rc" -ne 0
check "... because it cannot open the database" grep -q "queue.db" <<<"$out"

# Leave jobs waiting for the upgrade: queue default paused.
in_root fcgiqctl pause default >/dev/null 2>&1
check "fcgiqctl pause default as root" test $? -eq 0
waiting=""
for n in 1 2 3; do
	waiting="$waiting $(post /hooks/upgrade "waits for the upgrade $n")"
done
check_eq "three jobs posted to the paused queue wait" "queued queued queued" \
    "$(for w in $waiting; do state "$w"; done | xargs)"
reload=$(sed -n 's/^ExecReload=//p' "$U/fcgiq.service")
check_eq "ExecReload ($reload): fcgiq reloads" "ok" \
    "$(MAINPID=$MAIN; eval "$reload"; wait_for grep -q 'reload:' "$SVC/stderr" && echo ok)"

# Stop: SIGTERM to the main process alone (KillMode=mixed).
kids=$(ps -o pid= --ppid "$MAIN" | xargs)
kill -TERM "$MAIN"
wait_long test -s "$SVC/status"
check_eq "SIGTERM: fcgiq exits 0" "0" "$(cat "$SVC/status" 2>/dev/null)"
gone() { local p; for p in $kids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
check "... its supervisor and helper went with it" wait_long gone
out=$(as ops fcgiqctl stats 2>&1)
check "fcgiqctl stats as ops with the service stopped (-wal, -shm kept)" stats_ok "$out"
njobs=$((3 + $(wc -w <<<"$waiting")))
check_eq "sqlite3 -readonly as ops, the service stopped: $njobs jobs" "$njobs" \
    "$(as ops sqlite3 -readonly /var/lib/fcgiq/queue.db 'SELECT count(*) FROM jobs' 2>&1)"
echo "# v1 served and stopped at $(elapsed)"

# --- the previous schema: both packages come from this tree, so the
# database is made what a version-3 fcgiq left (schema 4 added
# jobs.result_type and the rejected table, schema 5 jobs.serial_key,
# jobs.crashes and the schedules table), as the fcgiq user, the
# service stopped and jobs waiting in it.  Every job, as it is now, is
# compared after the migration.  (A schema 6 needs its own undo here,
# as test_store.c's tests do.)  Written as the fcgiq user, so that no
# file of the database's belongs to anyone else; persist_wal, as fcgiq
# sets it, keeps -wal and -shm for the read-only readers of group fcgiq.
snapshot() { sql "SELECT id, queue, state, attempts, hex(body), hex(result) FROM jobs ORDER BY seq"; }
snapshot >"$T/jobs.before"
has_v4() {
	sql "SELECT (SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'result_type')
	    || ' ' || (SELECT count(*) FROM sqlite_schema WHERE name IN ('rejected', 'rejected_queue'))"
}
schema=$(sed -n 's/^#define STORE_SCHEMA_VERSION[^0-9]*\([0-9]*\).*/\1/p' "$S/queue/store-schema.c")
check_eq "schema $schema before: result_type, rejected and its index there" "$schema 1 2" \
    "$(sql 'PRAGMA user_version') $(has_v4)"
as fcgiq sqlite3 /var/lib/fcgiq/queue.db '.filectrl persist_wal 1' "BEGIN;
    DROP INDEX jobs_dead; DROP TABLE schedules;
    ALTER TABLE jobs DROP COLUMN crashes;
    DROP INDEX jobs_serial; ALTER TABLE jobs DROP COLUMN serial_key;
    ALTER TABLE queues DROP COLUMN breaker_state;
    ALTER TABLE queues DROP COLUMN breaker_until;
    ALTER TABLE queues DROP COLUMN breaker_failures;
    ALTER TABLE queues DROP COLUMN breaker_pause;
    ALTER TABLE queues DROP COLUMN breaker_trips;
    DROP TABLE rejected; ALTER TABLE jobs DROP COLUMN result_type;
    PRAGMA user_version = 3; COMMIT" >/dev/null 2>"$T/downgrade.err"
check_eq "the database turned back into schema 3: exit 0" "0" "$?$(cat "$T/downgrade.err")"
check_eq "... user_version 3, no result_type, no rejected table" "3 0 0" \
    "$(sql 'PRAGMA user_version') $(has_v4)"
check_eq "... integrity_check ok" "ok" "$(sql 'PRAGMA integrity_check')"
check_eq "... fcgiq fcgiq 640 still" "fcgiq fcgiq 640" \
    "$(in_root stat -c '%U %G %a' /var/lib/fcgiq/queue.db)"
out=$(as ops fcgiqctl stats 2>&1)
check "fcgiqctl stats (read-only) refuses it: older than the program's schema" \
    grep -q "schema version 3 is older than this program's ($schema)" <<<"$out"

# --- upgrade
wait "$build2"
rc=$?
check_eq "the $V2 build: exit 0" "0" "$rc"
DEB2=$BR/root/src2/fcgiq_${V2}_$ARCH.deb
[ -f "$DEB2" ] || bail "no $DEB2: $(tail -20 "$T/build2.log")"
cp "$DEB2" "$R/root/pkg/"
uid1=$(in_root id -u fcgiq)
net_retry in_root sh -c "cd /root/pkg && apt-get install -y -q ./fcgiq_${V2}_$ARCH.deb" >>"$T/apt.log" 2>&1
check_eq "apt-get install ./fcgiq_$V2.deb (upgrade): exit 0" "0" "$?"
check_eq "dpkg: version $V2" "install ok installed $V2" \
    "$(in_root dpkg-query -W -f='${Status} ${Version}' fcgiq)"
check_eq "the user kept, same uid" "$uid1" "$(in_root id -u fcgiq)"
check_eq "the upgrade leaves the database alone: schema 3, $njobs jobs" "3 $njobs" \
    "$(sql 'PRAGMA user_version') $(sql 'SELECT count(*) FROM jobs')"
SVC=$T/svc2
"$PKGTEST/unit-run" "$R" "$SVC" "$U/fcgiq.service" "$U/fcgiq.socket" 2>"$T/unit-run2.err"
check_eq "the upgraded service starts" "0" "$?"
[ -s "$SVC/mainpid" ] || bail "fcgiq $V2 did not start: $(cat "$T/unit-run2.err" "$SVC/stderr" 2>/dev/null)"
MAIN=$(cat "$SVC/mainpid")
track "$(cat "$SVC/holderpid")"
track "$MAIN"
wait_long grep -q "ready:" "$SVC/stderr" || bail "fcgiq $V2 not ready: $(cat "$SVC/stderr")"
check_eq "the new service migrated it on its start: schema $schema" "$schema" "$(sql 'PRAGMA user_version')"
check_eq "... jobs.result_type, the rejected table and its index there" "1 2" "$(has_v4)"
check_eq "... jobs.serial_key, jobs.crashes and the schedules table there" "2 0" \
    "$(sql "SELECT (SELECT count(*) FROM pragma_table_info('jobs') WHERE name IN ('serial_key', 'crashes')) || ' ' || (SELECT count(*) FROM schedules)")"
check_eq "... integrity_check ok" "ok" "$(sql 'PRAGMA integrity_check')"
snapshot >"$T/jobs.after"
check "... every job kept as it was (id, queue, state, attempts, body, result)" \
    cmp -s "$T/jobs.before" "$T/jobs.after"
check_eq "... fcgiq fcgiq 640 still" "fcgiq fcgiq 640" \
    "$(in_root stat -c '%U %G %a' /var/lib/fcgiq/queue.db)"
out=$(as ops fcgiqctl stats 2>&1)
check "fcgiqctl stats as ops reads it again" stats_ok "$out"
in_root fcgiqctl resume default >/dev/null 2>&1
n=0
for w in $waiting; do
	n=$((n + 1))
	wait_state "$w" done &&
	    [ "$(cat "$R/var/lib/fcgiq/spool/$w" 2>/dev/null)" = "waits for the upgrade $n" ] ||
	    not_ok "the waiting job $w ran after the upgrade" "state: $(state "$w")"
done
check_eq "after the upgrade, the waiting jobs run: done, filed by store-to-dir" "$njobs" \
    "$(sql "SELECT count(*) FROM jobs WHERE state = 'done'")"
check_eq "the first job is still done" "done" "$(state "$id")"
wid2=$(post /web/y "after the migration")
check "an http: job after the migration: done" wait_state "$wid2" done
check_eq "... its type in the migrated column" "delivered text/plain" "$(result "$wid2")"
kill -TERM "$MAIN"
wait_long test -s "$SVC/status"
check_eq "SIGTERM: the upgraded fcgiq exits 0" "0" "$(cat "$SVC/status" 2>/dev/null)"
check "the local edit of the conffile kept (no prompt)" \
    grep -q "send-mail -S 127.0.0.1:$SMTP_PORT\$" "$R/etc/fcgiq/fcgiq.conf"

# fcgiq-work.service, the helper alone, in the same sandbox.
id3=$(echo "for the helper alone" | in_root fcgiqctl enqueue default 2>/dev/null |
    grep -o '[A-Za-z0-9_-]\{30\}' | head -1)
check "fcgiqctl enqueue default as root: a job" test -n "$id3"
SVC=$T/work
"$PKGTEST/unit-run" "$R" "$SVC" "$U/fcgiq-work.service" 2>"$T/unit-run3.err"
check_eq "unit-run applies every line of fcgiq-work.service and starts it" "0" "$?"
if [ -s "$SVC/mainpid" ]; then
	MAIN=$(cat "$SVC/mainpid")
	track "$(cat "$SVC/holderpid")"
	track "$MAIN"
	dbstate() { in_root sqlite3 /var/lib/fcgiq/queue.db "SELECT state FROM jobs WHERE id = '$id3'"; }
	check "fcgiq work runs it: done" wait_long eval '[ "$(dbstate)" = done ]'
	check_eq "... with NoNewPrivs and an empty bounding set" "1 0000000000000000" \
	    "$(awk '/^NoNewPrivs:/ { n = $2 } /^CapBnd:/ { c = $2 } END { print n, c }' "/proc/$MAIN/status")"
	kill -TERM "$MAIN"
	wait_long test -s "$SVC/status"
	check_eq "SIGTERM: fcgiq work exits 0" "0" "$(cat "$SVC/status" 2>/dev/null)"
else
	not_ok "fcgiq work did not start" "$(cat "$T/unit-run3.err" "$SVC/stderr" 2>/dev/null)"
fi
stop_pid "$NGINX"
echo "# upgraded at $(elapsed)"

# --- remove keeps the data, purge leaves nothing
in_root apt-get remove -y -q fcgiq >>"$T/apt.log" 2>&1
check_eq "apt-get remove fcgiq: exit 0" "0" "$?"
check "the programs are gone" test ! -e "$R/usr/sbin/fcgiq" -a ! -e "$R/usr/sbin/fcgiqctl"
check "the database is kept" test -s "$R/var/lib/fcgiq/queue.db"
check "the spool and /var/log/fcgiq are kept" test -s "$R/var/lib/fcgiq/spool/$id" -a -d "$R/var/log/fcgiq"
check "the user fcgiq is kept" eval 'in_root getent passwd fcgiq >/dev/null'
check "/etc/fcgiq/fcgiq.conf is kept" test -f "$R/etc/fcgiq/fcgiq.conf"
in_root apt-get purge -y -q fcgiq >>"$T/apt.log" 2>&1
check_eq "apt-get purge fcgiq: exit 0" "0" "$?"
check "dpkg knows it no more" eval '! in_root dpkg-query -W -f="\${Status}" fcgiq 2>/dev/null | grep -q installed'
check "no user fcgiq" eval '! in_root getent passwd fcgiq >/dev/null'
check "no group fcgiq" eval '! in_root getent group fcgiq >/dev/null'
for d in /var/lib/fcgiq /var/log/fcgiq /etc/fcgiq /etc/nginx/snippets/fcgiq.conf \
    /etc/apache2/conf-available/fcgiq.conf /lib/systemd/system/fcgiq.service \
    /etc/systemd/system/sockets.target.wants/fcgiq.socket \
    /etc/systemd/system/multi-user.target.wants/fcgiq.service; do
	check "purge: no $d" test ! -e "$R$d" -a ! -L "$R$d"
done
left=$(find "$R" -mindepth 1 -xdev \( -name '*fcgiq*' -o -uid "$uid1" \) -not -path "$R/root/pkg*" \
    -not -path "$R/proc/*" -not -path "$R/var/lib/dpkg/*" -not -path "$R/var/cache/*" \
    -not -path "$R/etc/nginx/sites-enabled/fcgiq-test" -not -path "$R/run/*" 2>/dev/null | head)
check_eq "purge: no other file named fcgiq anywhere" "" "$left"
echo "# done in $(elapsed)"
done_testing
