#!/bin/bash
# conf-examples/quickstart.sh [stop]
#
# On a fresh Debian 12 machine, as root: install what is missing, build
# fcgiq, and start it behind nginx on 127.0.0.1:8080, the way the shipped
# examples say to run it:
#   - spawn-fcgi starts 2 fcgiq processes as www-data on a unix socket
#     (conf-examples/spawn-fcgi.sh's command line);
#   - nginx runs conf-examples/nginx.conf with that socket;
#   - queue "default" (location /hooks/ and /stream/) runs the example
#     handler conf-examples/handlers/store-to-dir, which files each body in
#     $Q/spool; queues "mail" and "github" have no handler: their jobs wait
#     for fcgiqctl.
# Everything lives in $Q (default /tmp/fcgiq-quickstart).  `stop` stops what
# this script started, by pid.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
Q=${FCGIQ_QUICKSTART_DIR:-/tmp/fcgiq-quickstart}
PORT=8080

stop() {
	local f p
	for f in "$Q/run/nginx.pid" "$Q/run/fcgiq.pid"; do
		[ -f "$f" ] || continue
		for p in $(cat "$f"); do kill "$p" 2>/dev/null || true; done
		rm -f "$f"
	done
}

if [ "${1:-}" = stop ]; then
	stop
	echo "quickstart: stopped (state kept in $Q)"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (it installs packages)"; exit 1; }

bash tests/install-deps.sh
echo "quickstart: building in $src/build"
./autogen.sh >/dev/null 2>&1
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure >/dev/null; } && make -j2 >/dev/null)

stop	# a previous run's processes, if any
mkdir -p "$Q/bin" "$Q/run" "$Q/var" "$Q/spool" "$Q/nginx/logs"
chmod 755 "$Q" "$Q/bin" "$Q/run"
chown www-data: "$Q/var" "$Q/spool"
# Programs where www-data can reach them (a checkout under /root cannot be).
install -m 755 build/fcgiq build/fcgiqctl conf-examples/handlers/store-to-dir "$Q/bin/"

cat > "$Q/fcgiq.conf" <<EOC
[fcgiq]
database = $Q/var/fcgiq.db
log      = info
log_file = $Q/var/fcgiq.log

[queue default]
handler      = exec:$Q/bin/store-to-dir $Q/spool
; As root a handler needs its user written out; elsewhere this is ignored.
user         = $(id -un)
concurrency  = 2
max_attempts = 5
backoff      = 1s..1m

[queue mail]
[queue github]
EOC
"$Q/bin/fcgiq" -t -c "$Q/fcgiq.conf"

rm -f "$Q/run/fcgiq.sock"
FCGIQ_SOCKET="$Q/run/fcgiq.sock" FCGIQ_CONF="$Q/fcgiq.conf" \
    FCGIQ_BIN="$Q/bin/fcgiq" FCGIQ_CHILDREN=2 FCGIQ_USER=www-data \
    FCGIQ_PIDFILE="$Q/run/fcgiq.pid" \
    sh conf-examples/spawn-fcgi.sh

sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$Q/run/fcgiq.sock|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
    conf-examples/nginx.conf > "$Q/nginx.conf"
cp /etc/nginx/fastcgi_params "$Q/fastcgi_params"
nginx -p "$Q/nginx" -c "$Q/nginx.conf" \
    -g "pid $Q/run/nginx.pid; error_log $Q/nginx/logs/error.log;"
for i in $(seq 50); do [ -s "$Q/run/nginx.pid" ] && break; sleep 0.1; done

echo
echo "quickstart: nginx on http://127.0.0.1:$PORT/ -> fcgiq (spawn-fcgi, 2 processes, as www-data)"
echo "\$ curl -si -d '{\"hello\":\"world\"}' -H 'Content-Type: application/json' http://127.0.0.1:$PORT/hooks/"
out=$(curl -si -d '{"hello":"world"}' -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/hooks/")
echo "$out"
loc=$(echo "$out" | tr -d '\r' | sed -n 's/^Location: //p')
if [ -n "$loc" ]; then
	sleep 1
	echo
	echo "\$ curl -s http://127.0.0.1:$PORT$loc"
	curl -s "http://127.0.0.1:$PORT$loc"
	echo
fi
cat <<EOT

Try next:
  curl -si -d 'to=a@example.org' http://127.0.0.1:$PORT/mail/     # waits: queue mail has no handler
  $Q/bin/fcgiqctl -c $Q/fcgiq.conf stats
  $Q/bin/fcgiqctl -c $Q/fcgiq.conf ls
  sqlite3 $Q/var/fcgiq.db 'SELECT id, queue, state, body FROM jobs_readable'
  ls $Q/spool                                                  # what the handler filed
  tail $Q/var/fcgiq.log                                        # fcgiq's log
  bash conf-examples/quickstart.sh stop
EOT
