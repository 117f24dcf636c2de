#!/bin/bash
# tests/e2e/apache-dashboard.sh: the dashboard role behind Apache 2.4 +
# mod_proxy_fcgi, on the shipped conf-examples/apache-dashboard.conf beside
# conf-examples/apache-proxy-fcgi.conf (socket and password files
# substituted), fcgiq under the shipped conf-examples/spawn-fcgi.sh as
# www-data.
#
# Covers: AuthType Basic keeps the page (401 without the password);
# ProxyFCGISetEnvIf reaches fcgiq: the page with its CSP, api/summary
# (a token only where FCGIQ_DASHBOARD_ACTIONS is on); the same-origin rule
# with the Host and scheme Apache passes: an action with the page's
# Origin and token works, another Origin is 403, a POST on the read-only
# location is 403.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/apache-lib.sh"

for c in spawn-fcgi curl jq openssl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
for m in proxy proxy_fcgi auth_basic authn_file authn_core authz_user; do
	[ -f "$APACHE_MODULES/mod_$m.so" ] || skip_all "no mod_$m"
done

EX=$top_srcdir/conf-examples
DB=$T/var/queue.db
SOCK=$T/run/fcgiq.sock
mkdir -p "$T/var" "$T/run" "$T/bin" "$T/pw"
chmod 755 "$T/run" "$T/bin" "$T/pw"
chown www-data: "$T/var"
cp "$FCGIQ" "$T/bin/fcgiq"
printf '[fcgiq]\ndatabase = %s\nlog = info\nhelper = 0\n\n%s\n' "$DB" \
    '[queue default]
[queue mail]
[queue github]' >"$T/fcgiq.conf"
printf '#!/bin/sh\nexec "%s" "$@" 2>>"%s"\n' "$T/bin/fcgiq" "$T/fcgiq.log" \
    >"$T/bin/fcgiq-logged"
chmod 755 "$T/bin/fcgiq-logged"
touch "$T/fcgiq.log" && chown www-data: "$T/fcgiq.log"
out=$(FCGIQ_SOCKET=$SOCK FCGIQ_CONF=$T/fcgiq.conf FCGIQ_BIN=$T/bin/fcgiq-logged \
    FCGIQ_CHILDREN=2 FCGIQ_USER=www-data FCGIQ_ARGS=-W \
    sh "$EX/spawn-fcgi.sh" 2>&1) || bail "spawn-fcgi failed: $out"
FCGIQ_PIDS=$(printf '%s\n' "$out" | sed -n 's/.*PID: *\([0-9]*\).*/\1/p')
for p in $FCGIQ_PIDS; do track "$p"; done
wait_for grep -q "ready:" "$T/fcgiq.log" || bail "fcgiq not ready: $(cat "$T/fcgiq.log")"

printf 'alice:%s\n' "$(openssl passwd -apr1 wonderland)" >"$T/pw/ro"
printf 'bob:%s\n' "$(openssl passwd -apr1 builder)" >"$T/pw/rw"
chmod 644 "$T/pw/ro" "$T/pw/rw"
sed "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" "$EX/apache-proxy-fcgi.conf" \
    >"$T/apache-proxy-fcgi.conf"
sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|/etc/apache2/fcgiq.htpasswd|$T/pw/ro|" \
    -e "s|/etc/apache2/fcgiq-admin.htpasswd|$T/pw/rw|" \
    "$EX/apache-dashboard.conf" >"$T/apache-dashboard.conf"
grep -q "$T/pw/rw" "$T/apache-dashboard.conf" &&
    grep -q "unix:$SOCK|" "$T/apache-dashboard.conf" ||
    bail "conf-examples/apache-dashboard.conf no longer has the lines the test substitutes"
cat "$T/apache-proxy-fcgi.conf" "$T/apache-dashboard.conf" >"$T/site.conf"
apache_conf "$T/site.conf" proxy proxy_fcgi auth_basic authn_file authn_core \
    authz_user
apache_start || bail "apache did not start: $(cat "$T/apache/configtest.log" "$T/apache/start.log" "$T/apache/logs/error.log" 2>/dev/null)"
ok "apache2 -t accepts the shipped apache-dashboard.conf and Apache starts"

U=$APACHE_URL
code() { local u=$1; shift; curl -s -o /dev/null -w '%{http_code}' "$@" "$u"; }
check_eq "without the password: 401" 401 "$(code "$U/fcgiq/")"
curl -s -D "$T/h" -o "$T/page.html" -u alice:wonderland "$U/fcgiq/"
check "the page: 200" grep -q "^HTTP/1.1 200" "$T/h"
check "... with the Content-Security-Policy" \
    grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self'" "$T/h"
check "... and nosniff" grep -qi "^X-Content-Type-Options: nosniff" "$T/h"
check_eq "the script under the prefix" 200 \
    "$(code "$U/fcgiq/dashboard.js" -u alice:wonderland)"
curl -s -u alice:wonderland "$U/fcgiq/api/summary" >"$T/ro.json"
check_eq "api/summary, read-only: the queues, no token" \
    "default mail github false null" \
    "$(jq -r '[.queues[].name, .actions, .token] | map(tostring) | join(" ")' "$T/ro.json")"
curl -s -u bob:builder "$U/fcgiq-admin/api/summary" >"$T/rw.json"
TOKEN=$(jq -r .token "$T/rw.json")
check_eq "api/summary, actions: a token" 64 "${#TOKEN}"
act() { curl -s -o /dev/null -w '%{http_code}' -X POST "$@"; }
paused() { sqlite3 -cmd '.timeout 5000' "$DB" "SELECT name FROM queues WHERE paused = 1"; }
check_eq "read-only: POST with Origin and token is 403" 403 \
    "$(act -u alice:wonderland -H "Origin: $U" -H "X-Fcgiq-Token: $TOKEN" \
    "$U/fcgiq/api/action?op=pause&queue=mail")"
check_eq "another Origin: 403" 403 \
    "$(act -u bob:builder -H "Origin: http://evil.example" \
    -H "X-Fcgiq-Token: $TOKEN" "$U/fcgiq-admin/api/action?op=pause&queue=mail")"
check_eq "nothing paused by them" "" "$(paused)"
check_eq "the page's Origin and token: pause mail" 200 \
    "$(act -u bob:builder -H "Origin: $U" -H "X-Fcgiq-Token: $TOKEN" \
    "$U/fcgiq-admin/api/action?op=pause&queue=mail")"
check_eq "mail is paused" mail "$(paused)"
apache_stop
done_testing
