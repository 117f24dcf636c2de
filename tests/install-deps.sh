#!/bin/bash
# Install, with apt-get, whatever Debian 12 packages fcgiq needs to build and
# test and are missing.  Safe to run again: it does nothing when all are there.
set -eu
pkgs="build-essential autoconf automake libtool pkg-config
	libfcgi-dev libsqlite3-dev libinih-dev libjansson-dev libssl-dev
	libcmocka-dev libcurl4-openssl-dev sqlite3 nginx-light spawn-fcgi curl procps socat
	clang libclang-rt-14-dev valgrind apache2 libapache2-mod-fcgid
	perl openssl systemd caddy lighttpd h2o libfcgi-bin prometheus
	php-fpm lintian debootstrap libpq-dev postgresql
	jq chromium"
# The zones [schedule NAME]'s timezone names (tests/e2e/schedules.sh).
pkgs="$pkgs tzdata"
# Node.js and npm run the webhook senders' signing libraries
# (tests/e2e/webhooks.sh); Debian's (Node 18) only where none is installed.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# policy-rc.d keeps apt from starting the packaged nginx on port 80: the
# tests and the quick start run their own, on their own ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends $missing >/dev/null
