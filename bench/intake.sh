#!/bin/bash
# bench/intake.sh — intake throughput through one nginx, contenders side by
# side, rounds alternating so machine drift hits every contender alike:
#
#   full    fcgiq, durability = full (fsync before each 202)
#   normal  fcgiq, durability = normal
#   null    bench/null-responder: libfcgi threads, 202, stores nothing
#   epoll   bench/epoll-null: epoll, one send() per 202, kept connections
#           served in place, stores nothing (the FastCGI ceiling)
#   php     PHP-FPM: PDO SQLite insert, WAL + synchronous=FULL,
#           fastcgi_finish_request() (what a PHP user would write)
#   nginx   `return 202;` (the web server's own ceiling)
#   base    fcgiq as full, but the binary named by $BASE (another build:
#           a change measured against what it changes, in the same run)
#
# Each contender is measured in each of the -k modes of nginx's upstream:
#
#   off     a new FastCGI connection per request (fastcgi_pass to the socket)
#   on      kept connections: `keepalive 32` in the upstream and
#           `fastcgi_keep_conn on`, as conf-examples/nginx.conf ships
#
# Usage: bench/intake.sh [-r ROUNDS] [-d SECONDS] [-c "16 64 256"]
#        [-o CONTENDERS] [-k "off on"] [-b BYTES]
# -b: the size of each POST's body (default 512; up to 1 MiB, the limit
# of nginx and fcgiq here); past 512 the tables also give MB/s of bodies.
# Needs a build in ./build (tests/run-all.sh or README); installs wrk,
# php-fpm and php-sqlite3 when missing.  Prints a table of medians per
# mode and the ratios the targets are stated in (full/epoll: req/s and p99,
# per mode and concurrency), and the CPU time each responder process
# spent per request (utime + stime from /proc over the run, in us; not
# for php and nginx, whose work is in other processes), with nginx's and
# wrk's beside it: on two cores shared by all three, epoll's whole path over
# fcgiq's is the req/s ratio the CPU allows.  Nothing here is a pass/fail
# test.
set -u
. "$(dirname "$0")/lib.sh"
rounds=3 dur=10 concs="16 64 256" only="full normal null epoll php nginx"
modes="off on" body=512
while getopts "r:d:c:o:k:b:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) concs=$OPTARG ;; o) only=$OPTARG ;;
	k) modes=$OPTARG ;; b) body=$OPTARG ;;
	*) sed -n '2,30p' "$0"; exit 2 ;;
	esac
done
for m in $modes; do
	case $m in off|on) ;; *) echo "bench: -k takes off and/or on, not $m"; exit 2 ;; esac
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
bench_built bench/null-responder bench/epoll-null
bench_scratch intake
post_lua=$src/bench/post.lua
if [ "$body" != 512 ]; then
	post_lua=$B/post.lua
	sed "s/string.rep(\"x\", 500) .. \"0123456789ab\"/string.rep(\"x\", $body)/" \
	    "$src/bench/post.lua" >"$post_lua"
fi
spawn() {	# spawn NAME CMD...: spawn-fcgi on $B/NAME.sock, pid recorded
	local name=$1; shift
	spawn-fcgi -s "$B/$name.sock" -M 0666 -P "$B/$name.pid" -- "$@" >/dev/null ||
	    { echo "bench: $name did not start"; exit 1; }
	pids="$pids $(cat "$B/$name.pid")"
}

has() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }

# Each contender runs once per mode, on $B/NAME-MODE.sock: a responder that
# ties a thread or a child to each kept connection (libfcgi, PHP-FPM) has
# them all held by nginx's idle kept connections after an "on" run, and
# would have none left for the "off" run that follows.
for m in $modes; do
	for d in full normal base; do
		has $d || continue
		mkdir -p "$B/$d-$m"
		cat > "$B/$d-$m.conf" <<EOC
[fcgiq]
database = $B/$d-$m/queue.db
durability = ${d/base/full}
helper = no
log = warn
EOC
		bin=$build/fcgiq
		if [ $d = base ]; then
			bin=${BASE:-}
			[ -x "$bin" ] || { echo "bench: base needs BASE=path/to/fcgiq"; exit 2; }
		fi
		spawn "$d-$m" "$bin" -c "$B/$d-$m.conf"
	done
	has null && spawn "null-$m" "$build/bench/null-responder"
	has epoll && spawn "epoll-$m" "$build/bench/epoll-null"
done

# PHP-FPM, a static pool per mode as large as fcgiq's thread pool.
if has php; then
	php_fpm=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -1)
	mkdir -p "$B/php"
	sqlite3 "$B/php/queue.db" "PRAGMA journal_mode=WAL; CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, queue TEXT NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL);" >/dev/null
	{
		cat <<EOC
[global]
pid = $B/php-fpm.pid
error_log = $B/php-fpm.log
daemonize = yes
EOC
		for m in $modes; do
			cat <<EOC
[bench-$m]
listen = $B/php-$m.sock
listen.mode = 0666
pm = static
pm.max_children = 32
EOC
		done
	} > "$B/php-fpm.conf"
	"$php_fpm" -R -y "$B/php-fpm.conf" || { echo "bench: php-fpm did not start"; exit 1; }
	for i in $(seq 50); do [ -s "$B/php-fpm.pid" ] && break; sleep 0.1; done
	pids="$pids $(cat "$B/php-fpm.pid")"
fi

# One server per mode: port_off passes each request on a new connection,
# port_on through an upstream that keeps them.
port_off=$((20000 + RANDOM % 10000))
port_on=$((port_off + 1))
{
	cat <<EOC
user root;
worker_processes 1;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_buffer_size 16k;
	client_max_body_size 1m;
EOC
	for u in full normal null epoll php base; do
		echo "	upstream up_$u { server unix:$B/$u-on.sock; keepalive 32; }"
	done
	for m in off on; do
		eval "p=\$port_$m"
		if [ "$m" = on ]; then
			keep="fastcgi_keep_conn on;"
			pass() { echo "fastcgi_pass up_$1;"; }
		else
			keep=""
			pass() { echo "fastcgi_pass unix:$B/$1-off.sock;"; }
		fi
		cat <<EOC
	server {
		listen 127.0.0.1:$p backlog=4096;
		$keep
		location /full/   { include /etc/nginx/fastcgi_params; $(pass full) }
		location /base/   { include /etc/nginx/fastcgi_params; $(pass base) }
		location /normal/ { include /etc/nginx/fastcgi_params; $(pass normal) }
		location /null/   { include /etc/nginx/fastcgi_params; $(pass null) }
		location /epoll/  { include /etc/nginx/fastcgi_params; $(pass epoll) }
		location /php/    { include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $src/bench/intake.php;
			fastcgi_param BENCH_DB $B/php/queue.db;
			$(pass php) }
		location /nginx/  { return 202 '{"state":"queued"}'; }
	}
EOC
	done
	echo "}"
} > "$B/nginx.conf"
bench_nginx "$B/nginx.conf"

for m in $modes; do	# each contender answers 202 before we measure it
	eval "port=\$port_$m"
	for c in $only; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -d probe "http://127.0.0.1:$port/$c/")
		[ "$code" = 202 ] || { echo "bench: $c (keepalive $m) answered $code, not 202"; KEEP=1; exit 1; }
	done
done

results="$B/results"
: > "$results"
echo "bench: $rounds rounds x ${dur}s, concurrency: $concs; contenders: $only; keepalive: $modes; body: $body bytes"
# cpu NAME: the clock ticks process NAME (spawned) has run, or nothing.
cpu() { [ -s "$B/$1.pid" ] && awk '{ print $14 + $15 }' "/proc/$(cat "$B/$1.pid")/stat" 2>/dev/null; }
hz=$(getconf CLK_TCK)
# ngx: the clock ticks nginx (master and workers) has run.
ngx() {
	local m p t=0
	m=$(cat "$B/nginx.pid")
	for p in "$m" $(pgrep -P "$m"); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
# ticks FILE: the clock ticks of the children this shell has waited for
# (wrk), from `times >FILE` (run in this shell: a subshell has no children).
ticks() { awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%.0f", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * '"$hz"' }' "$1"; }
# per T N: T ticks over N requests, in us.
per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'; }
# results: WHO MODE CONC ROUND REQ/S P50 P99 NON-2XX SOCKET-ERRORS CPU-US/REQ
#          NGINX-US/REQ WRK-US/REQ
for r in $(seq "$rounds"); do
	for c in $concs; do
		for m in $modes; do
			eval "port=\$port_$m"
			for who in $only; do
				c0=$(cpu "$who-$m") n0=$(ngx)
				times >"$B/times0"
				wrk_run "http://127.0.0.1:$port/$who/" "$c" \
				    "$B/wrk.out" "$post_lua" >/dev/null
				out=$(cat "$B/wrk.out")
				times >"$B/times1"
				c1=$(cpu "$who-$m") n1=$(ngx)
				w0=$(ticks "$B/times0") w1=$(ticks "$B/times1")
				nreq=$(echo "$out" | awk '/requests in/ { print $1 }')
				us=- nus=- wus=-
				[ "${nreq:-0}" -gt 0 ] &&
				    nus=$(per $((n1 - n0)) "$nreq") wus=$(per $((w1 - w0)) "$nreq")
				[ -n "$c0" ] && [ -n "$c1" ] && [ "${nreq:-0}" -gt 0 ] &&
				    us=$(awk -v a="$c0" -v b="$c1" -v n="$nreq" -v hz="$hz" \
					'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
				rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
				p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
				p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
				bad=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
				errs=$(echo "$out" | awk '/Socket errors/ { print }')
				nerr=$(echo "$errs" | awk '{ n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0; print n }')
				echo "$who $m $c $r ${rps:-0} $p50 $p99 ${bad:-0} ${nerr:-0} $us $nus $wus" >> "$results"
				mbs=$(awk -v r="${rps:-0}" -v b="$body" 'BEGIN { printf "%.1f", r * b / 1048576 }')
				printf 'round %s ka=%-3s c=%-4s %-7s %10s req/s  %7s MB/s  p50 %6s ms  p99 %7s ms  cpu %6s us/req (nginx %s, wrk %s)  non-2xx %s %s\n' \
				    "$r" "$m" "$c" "$who" "${rps:-0}" "$mbs" "$p50" "$p99" "$us" "$nus" "$wus" "${bad:-0}" "$errs"
			done
		done
	done
done

# Peak resident memory of each responder process (bodies are held whole
# until their commit: it must stay bounded by concurrency x body).
echo
printf 'peak RSS (VmHWM):'
for m in $modes; do
	for who in $only; do
		[ -s "$B/$who-$m.pid" ] || continue
		kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$(cat "$B/$who-$m.pid")/status" 2>/dev/null)
		printf ' %s-%s %s kB;' "$who" "$m" "${kb:-?}"
	done
done
echo

col() { awk -v w="$1" -v m="$2" -v c="$3" -v k="$4" '$1 == w && $2 == m && $3 == c { print $k }' "$results"; }
for m in $modes; do
	echo
	if [ "$m" = on ]; then
		echo "keepalive on: upstream keepalive 32, fastcgi_keep_conn on"
	else
		echo "keepalive off: a new FastCGI connection per request"
	fi
	printf '%-8s %-3s %-5s %12s %9s %9s %11s %9s %7s\n' contender ka conc "req/s(med)" "p50 ms" "p99 ms" "cpu us/req" non-2xx errors
	for c in $concs; do
		for who in $only; do
			med=$(col "$who" "$m" "$c" 5 | median 2)
			p50=$(col "$who" "$m" "$c" 6 | median 2)
			p99=$(col "$who" "$m" "$c" 7 | median 2)
			us=$(col "$who" "$m" "$c" 10 | grep -v '^-$' | median 2)
			[ "$us" = 0 ] && us=-
			# The whole path's CPU per request: responder + nginx + wrk.
			path=$(awk -v w="$who" -v m="$m" -v c="$c" '$1 == w && $2 == m && $3 == c &&
			    $10 != "-" && $11 != "-" { print $10 + $11 + $12 }' "$results" | median 2)
			bad=$(col "$who" "$m" "$c" 8 | awk '{ s += $1 } END { print s + 0 }')
			nerr=$(col "$who" "$m" "$c" 9 | awk '{ s += $1 } END { print s + 0 }')
			printf '%-8s %-3s %-5s %12s %9s %9s %11s %9s %7s\n' "$who" "$m" "$c" "$med" "$p50" "$p99" "$us" "$bad" "$nerr"
			eval "med_${who}_${m}_$c=$med p99_${who}_${m}_$c=$p99 cpu_${who}_${m}_$c=$us path_${who}_${m}_$c=$path"
		done
	done
done
echo
# ratio KIND A B: A's median over B's (KIND med: req/s, p99: latency).
ratio() { eval "a=\${$1_$2_${m}_$c:-}; b=\${$1_$3_${m}_$c:-}"; [ -n "$a" ] && [ -n "$b" ] &&
    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# rounds A B: A's req/s over B's in each round, on a noisy box steadier
# than the medians' ratio (both contenders ran side by side).
rounds() { awk -v a="$1" -v b="$2" -v m="$m" -v c="$c" '$2 == m && $3 == c {
	if ($1 == a) x[$4] = $5; if ($1 == b) y[$4] = $5 }
    END { for (r = 1; r in x; r++) printf " %.2f", (y[r] > 0 ? x[r] / y[r] : 0) }' "$results"; }
# pair A B [NOTE]: "  A/B Rx NOTE" when both contenders ran.
pair() { has "$1" && has "$2" && printf '  %s/%s %sx%s' "$1" "$2" "$(ratio med "$1" "$2")" "${3:+ $3}"; }
for m in $modes; do
	for c in $concs; do
		# issue 14's targets: >= 0.95x without keepalive, >= 0.9x with
		# it (0.85x from c=256); p99 <= 1.5x.
		if [ "$m" = off ]; then want=0.95
		elif [ "$c" -ge 256 ]; then want=0.85
		else want=0.9; fi
		line="c=$c ka=$m:"
		if has full && has epoll; then
			line="$line full/epoll $(ratio med full epoll)x req/s (target >= $want; by round$(rounds full epoll)), p99 $(ratio p99 full epoll)x (target <= 1.5), cpu/req $(ratio cpu full epoll)x, path cpu/req (+ nginx + wrk) $(ratio path epoll full)x of epoll's (the req/s ratio two shared cores allow);"
		fi
		if has base && has epoll; then
			line="$line base/epoll $(ratio med base epoll)x req/s (by round$(rounds base epoll)), p99 $(ratio p99 base epoll)x;"
		fi
		echo "$line$(pair full base)$(pair full null "(target >= 0.8)")$(pair full php "(target >= 10)")$(pair normal null)$(pair null epoll)$(pair epoll nginx)"
	done
done
