#!/bin/bash
# bench/intake.sh — intake throughput through one nginx, contenders side by
# side, rounds alternating so machine drift hits every contender alike:
#
#   full    fcgiq, durability = full (fsync before each 202)
#   normal  fcgiq, durability = normal
#   null    bench/null-responder: libfcgi threads, 202, stores nothing
#           (the FastCGI ceiling)
#   php     PHP-FPM: PDO SQLite insert, WAL + synchronous=FULL,
#           fastcgi_finish_request() (what a PHP user would write)
#   nginx   `return 202;` (the web server's own ceiling)
#
# Usage: bench/intake.sh [-r ROUNDS] [-d SECONDS] [-c "16 64 256"] [-o CONTENDERS]
# Needs a build in ./build (tests/run-all.sh or README); installs wrk,
# php-fpm and php-sqlite3 when missing.  Prints a table of medians and the
# ratios the targets are stated in.  Nothing here is a pass/fail test.
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD:-$src/build}
rounds=3 dur=10 concs="16 64 256" only="full normal null php nginx"
while getopts "r:d:c:o:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) concs=$OPTARG ;; o) only=$OPTARG ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
for p in wrk php-fpm php-sqlite3 nginx-light spawn-fcgi sqlite3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
	export DEBIAN_FRONTEND=noninteractive
	# Keep apt from starting the packaged php-fpm and nginx services.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null
	[ -n "${made_policy:-}" ] && rm -f /usr/sbin/policy-rc.d
fi
[ -x "$build/fcgiq" ] || { echo "bench: no $build/fcgiq: build first (bash tests/run-all.sh)"; exit 1; }
make -C "$build" -s bench/null-responder >/dev/null || exit 1

B=$(mktemp -d /tmp/fcgiq-bench.XXXXXX)
chmod 755 "$B"
pids=""
cleanup() {
	local p
	for p in $pids; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	[ -n "${KEEP:-}" ] && echo "bench: kept $B" || rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

spawn() {	# spawn NAME CMD...: spawn-fcgi on $B/NAME.sock, pid recorded
	local name=$1; shift
	spawn-fcgi -s "$B/$name.sock" -M 0666 -P "$B/$name.pid" -- "$@" >/dev/null ||
	    { echo "bench: $name did not start"; exit 1; }
	pids="$pids $(cat "$B/$name.pid")"
}

for d in full normal; do
	mkdir -p "$B/$d"
	cat > "$B/$d.conf" <<EOC
[fcgiq]
database = $B/$d/queue.db
durability = $d
helper = no
log = warn
EOC
	spawn "$d" "$build/fcgiq" -c "$B/$d.conf"
done
spawn null "$build/bench/null-responder"

# PHP-FPM, static pool as large as fcgiq's thread pool.
php_fpm=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -1)
mkdir -p "$B/php"
sqlite3 "$B/php/queue.db" "PRAGMA journal_mode=WAL; CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, queue TEXT NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL);" >/dev/null
cat > "$B/php-fpm.conf" <<EOC
[global]
pid = $B/php-fpm.pid
error_log = $B/php-fpm.log
daemonize = yes
[bench]
listen = $B/php.sock
listen.mode = 0666
pm = static
pm.max_children = 32
EOC
"$php_fpm" -R -y "$B/php-fpm.conf" || { echo "bench: php-fpm did not start"; exit 1; }
for i in $(seq 50); do [ -s "$B/php-fpm.pid" ] && break; sleep 0.1; done
pids="$pids $(cat "$B/php-fpm.pid")"

port=$((20000 + RANDOM % 20000))
mkdir -p "$B/nginx/logs"
cat > "$B/nginx.conf" <<EOC
user root;
worker_processes 1;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_buffer_size 16k;
	client_max_body_size 1m;
	server {
		listen 127.0.0.1:$port backlog=4096;
		location /full/   { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$B/full.sock; }
		location /normal/ { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$B/normal.sock; }
		location /null/   { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$B/null.sock; }
		location /php/    { include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $src/bench/intake.php;
			fastcgi_param BENCH_DB $B/php/queue.db;
			fastcgi_pass unix:$B/php.sock; }
		location /nginx/  { return 202 '{"state":"queued"}'; }
	}
}
EOC
nginx -p "$B/nginx" -c "$B/nginx.conf" -g "pid $B/nginx.pid; error_log $B/nginx/logs/error.log;" ||
    { echo "bench: nginx did not start"; exit 1; }
sleep 0.3
pids="$pids $(cat "$B/nginx.pid")"

for c in $only; do	# each contender answers 202 before we measure it
	code=$(curl -s -o /dev/null -w '%{http_code}' -d probe "http://127.0.0.1:$port/$c/")
	[ "$code" = 202 ] || { echo "bench: $c answered $code, not 202"; KEEP=1; exit 1; }
done

to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) ; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
results="$B/results"
: > "$results"
echo "bench: $rounds rounds x ${dur}s, concurrency: $concs; contenders: $only"
for r in $(seq "$rounds"); do
	for c in $concs; do
		for who in $only; do
			out=$(wrk -t2 -c"$c" -d"${dur}s" --latency -s "$src/bench/post.lua" \
			    "http://127.0.0.1:$port/$who/" 2>&1)
			rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
			p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
			p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
			bad=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
			errs=$(echo "$out" | awk '/Socket errors/ { print }')
			echo "$who $c $r ${rps:-0} $p50 $p99 ${bad:-0}" >> "$results"
			printf 'round %s c=%-4s %-7s %10s req/s  p50 %6s ms  p99 %7s ms  non-2xx %s %s\n' \
			    "$r" "$c" "$who" "${rps:-0}" "$p50" "$p99" "${bad:-0}" "$errs"
		done
	done
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
printf '%-8s %-5s %12s %9s %9s %9s\n' contender conc "req/s(med)" "p50 ms" "p99 ms" non-2xx
for c in $concs; do
	for who in $only; do
		m=$(awk -v w="$who" -v c="$c" '$1 == w && $2 == c { print $4 }' "$results" | median)
		p50=$(awk -v w="$who" -v c="$c" '$1 == w && $2 == c { print $5 }' "$results" | median)
		p99=$(awk -v w="$who" -v c="$c" '$1 == w && $2 == c { print $6 }' "$results" | median)
		bad=$(awk -v w="$who" -v c="$c" '$1 == w && $2 == c { s += $7 } END { print s + 0 }' "$results")
		printf '%-8s %-5s %12s %9s %9s %9s\n' "$who" "$c" "$m" "$p50" "$p99" "$bad"
		eval "med_${who}_$c=$m"
	done
done
echo
for c in $concs; do
	ratio() { eval "a=\${med_$1_$c:-}; b=\${med_$2_$c:-}"; [ -n "$a" ] && [ -n "$b" ] &&
	    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
	echo "c=$c: full/null $(ratio full null)x (target >= 0.8)  full/php $(ratio full php)x (target >= 10)  normal/null $(ratio normal null)x  null/nginx $(ratio null nginx)x"
done
