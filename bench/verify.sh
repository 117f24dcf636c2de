#!/bin/bash
# bench/verify.sh — the cost of checking a sender's signature at the door,
# side by side in one fcgiq (durability full) behind one nginx, rounds
# alternating so machine drift hits every contender alike:
#
#   plain   queue without verify; the same GitHub headers, ignored
#   github  verify = github: HMAC-SHA256 of the body, X-GitHub-Delivery as
#           the idempotency key (each request a new delivery)
#   hmac    verify = github, dedupe = none: the signature check alone
#
# wrk, 512-byte POSTs (bench/verify.lua), c = 64 by default.  Target:
# github >= 0.95x plain.  Each round starts on a fresh, empty database (a
# new fcgiq), and the contenders' order turns by one each round (plain
# github hmac, github hmac plain, hmac plain github): a contender that
# always ran first would always find the smallest database and the least
# checkpoint debt.  Use a multiple of 3 rounds so every contender runs in
# every place equally often.  Each run also reports fcgiq's own CPU time
# and the bytes it wrote (WAL and checkpoints) per request, from
# /proc/PID/stat and /proc/PID/io: on a box shared with other work the
# rates swing with the neighbours' load, the cost per request much less.
#
#   flood   good requests into the github queue at c/2, alone, then with as
#           many connections posting bad signatures at the same time: the
#           good ones' rate may fall by no more than the bad ones' share of
#           the requests served.  The rejected table stays within
#           keep_rejected rows.
#
# Usage: bench/verify.sh [-r ROUNDS] [-d SECONDS] [-c CONC] [-n] [-u] [-p DIR]
#   -n  no flood rounds
#   -u  random UUIDs as delivery ids, as GitHub sends them (by default
#       ROUND-THREAD-N: clustered in the index, so cheaper to insert)
#   -p  profile fcgiq during each run: DIR/CONTENDER.ROUND.data, for
#       perf report -i FILE --no-children --sort dso,sym.  perf is in
#       Debian's linux-perf (apt-get install linux-perf); only this needs it.
# Needs a build in ./build (or BUILD=dir), nginx, wrk, openssl, sqlite3.
# Nothing here is a pass/fail test.
set -u
. "$(dirname "$0")/lib.sh"
rounds=3 dur=10 conc=64 flood=1 pdir=
UUID=0
while getopts "r:d:c:nup:" o; do
	case $o in
	r) rounds=$OPTARG ;; d) dur=$OPTARG ;; c) conc=$OPTARG ;;
	n) flood=0 ;; u) UUID=1 ;; p) pdir=$OPTARG ;;
	*) sed -n '2,36p' "$0"; exit 2 ;;
	esac
done
if [ -n "$pdir" ]; then
	command -v perf >/dev/null ||
	    { echo "bench: -p: perf missing (apt-get install linux-perf)"; exit 1; }
	mkdir -p "$pdir" || exit 1
fi
bench_need nginx wrk openssl sqlite3
bench_built
bench_scratch verify
fpid=""

secret="bench secret $$"
printf '%s\n' "$secret" > "$B/github.secret"
chmod 600 "$B/github.secret"
body=$(printf 'x%.0s' $(seq 500); printf '0123456789ab')
SIG="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/.*= //')"
export SIG UUID
cat > "$B/fcgiq.conf" <<EOC
[fcgiq]
database = $B/queue.db
log = warn
helper = no
[queue plain]
max_queued = 1000000000
[queue github]
verify = github
secret_file = $B/github.secret
max_queued = 1000000000
keep_rejected = 1000
[queue hmac]
verify = github
secret_file = $B/github.secret
dedupe = none
max_queued = 1000000000
EOC
# fcgiq_fresh: (re)start fcgiq on an empty database.
fcgiq_fresh() {
	if [ -n "$fpid" ]; then
		kill "$fpid" 2>/dev/null
		wait "$fpid" 2>/dev/null
		bench_unpid "$fpid"
	fi
	rm -f "$B/queue.db" "$B/queue.db-wal" "$B/queue.db-shm" "$B/fcgiq.sock"
	bench_fcgiq "$B/fcgiq.conf" "$B/fcgiq.sock"
}
fcgiq_fresh
port=$((20000 + RANDOM % 10000))
loc() {
	printf '\t\tlocation /%s { include /etc/nginx/fastcgi_params;\n' "$1"
	printf '\t\t\tfastcgi_param FCGIQ_QUEUE %s;\n' "$1"
	printf '\t\t\tfastcgi_keep_conn on; fastcgi_pass fcgiq; }\n'
}
bench_nginx_fcgiq < <(loc plain; loc github; loc hmac)

# post QUEUE CONC NONCE [OUT]: requests/s (non-2xx counted apart).
post() {
	wrk_run "http://127.0.0.1:$port/$1" "$2" "${4:-$B/wrk.out}" \
	    "$src/bench/verify.lua" "$3"
}
# cost: fcgiq's CPU ticks and bytes written so far.
cost() {
	echo "$(awk '{ print $14 + $15 }' "/proc/$fpid/stat")" \
	    "$(awk '/^wchar/ { print $2 }' "/proc/$fpid/io")"
}
tck=$(getconf CLK_TCK)
non2xx() { awk '/Non-2xx/ { print $5 }' "${1:-$B/wrk.out}"; }
# low_median: the lower of the middle two, not their mean (lib's median).
low_median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "verify: c=$conc, ${dur}s x $rounds rounds, durability full," \
    "delivery ids: $([ "$UUID" = 1 ] && echo random UUIDs || echo ROUND-THREAD-N)"
set -- plain github hmac
for r in $(seq "$rounds"); do
	[ "$r" -gt 1 ] && fcgiq_fresh
	for q in "$@"; do
		c0=$(cost)
		[ -n "$pdir" ] && perf record -q -g -p "$fpid" \
		    -o "$pdir/$q.$r.data" -- sleep "$dur" >/dev/null 2>&1 &
		rps=$(post "$q" "$conc" "$q$r")
		[ -n "$pdir" ] && wait $!
		c1=$(cost)
		bad=$(non2xx)
		n=$(awk '/ requests in / { print $1 }' "$B/wrk.out")
		set -- $c0 $c1 "$@"
		awk -v n="$n" -v t="$tck" -v c="$(($3 - $1))" \
		    -v w="$(($4 - $2))" 'BEGIN {
			printf "%.1f %.0f\n", c * 1e6 / t / n, w / n }' \
		    >> "$B/$q.cost"
		shift 4
		echo "round $r $q $rps req/s${bad:+ ($bad non-2xx)}," \
		    "fcgiq per request: $(tail -n 1 "$B/$q.cost" |
		    awk '{ print $1 " us CPU, " $2 " bytes written" }')"
		echo "$rps" >> "$B/$q.rps"
	done
	awk -v r="$r" -v p="$(tail -n 1 "$B/plain.rps")" \
	    -v g="$(tail -n 1 "$B/github.rps")" \
	    -v h="$(tail -n 1 "$B/hmac.rps")" \
	    -v pc="$(tail -n 1 "$B/plain.cost" | cut -d' ' -f1)" \
	    -v gc="$(tail -n 1 "$B/github.cost" | cut -d' ' -f1)" \
	    -v hc="$(tail -n 1 "$B/hmac.cost" | cut -d' ' -f1)" 'BEGIN {
		printf "round %d ratios: github/plain %.3f, hmac/plain %.3f;" \
		    " fcgiq CPU per request github/plain %.3f, hmac/plain" \
		    " %.3f\n", r, g / p, h / p, gc / pc, hc / pc }'
	set -- "$2" "$3" "$1"		# the next round's order
done
p=$(low_median < "$B/plain.rps") g=$(low_median < "$B/github.rps") h=$(low_median < "$B/hmac.rps")
echo "plain  $p req/s (median)"
echo "github $g req/s"
echo "hmac   $h req/s"
# The ratio of each round's neighbours, then their median: on a shared box
# the load drifts between rounds more than between neighbours.
rg=$(paste "$B/github.rps" "$B/plain.rps" | awk '{ print $1 / $2 }' | low_median)
rh=$(paste "$B/hmac.rps" "$B/plain.rps" | awk '{ print $1 / $2 }' | low_median)
awk -v g="$rg" -v h="$rh" -v c="$conc" 'BEGIN {
	printf "verify c=%d: github/plain %.2fx (target >= 0.95), hmac/plain %.2fx (medians of per-round ratios)\n",
	    c, g, h }'
for q in plain github hmac; do
	echo "$q $(cut -d' ' -f1 "$B/$q.cost" | low_median) $(cut -d' ' -f2 "$B/$q.cost" | low_median)"
done | awk '{ printf "fcgiq per request (medians): %s %s us CPU, %s bytes written\n", $1, $2, $3 }'
gc=$(paste -d' ' "$B/github.cost" "$B/plain.cost" | awk '{ print $1 / $3 }' | low_median)
hc=$(paste -d' ' "$B/hmac.cost" "$B/plain.cost" | awk '{ print $1 / $3 }' | low_median)
awk -v g="$gc" -v h="$hc" 'BEGIN {
	printf "fcgiq CPU per request: github/plain %.2fx, hmac/plain %.2fx (medians of per-round ratios)\n", g, h }'

[ "$flood" = 1 ] || exit 0
half=$((conc / 2))
for r in $(seq "$rounds"); do
	alone=$(post github "$half" "fa$r")
	BAD=1 post github "$half" "fb$r" "$B/wrk.bad" > "$B/bad.rps" &
	w=$!
	good=$(post github "$half" "fg$r" "$B/wrk.good")
	wait "$w"
	bad=$(cat "$B/bad.rps")
	echo "round $r flood: good alone $alone req/s; with bad: good $good req/s, bad $bad req/s"
	echo "$alone $good $bad" >> "$B/flood"
done
awk '{ a += $1; g += $2; b += $3 } END {
	share = g / (g + b)
	printf "flood c=%d+%d: good %.0f req/s with a flood of %.0f bad/s vs %.0f alone: %.2fx (the good ones'"'"' share of requests served: %.2f; target: ratio >= share)\n",
	    '"$half"', '"$half"', g / NR, b / NR, a / NR, g / a, share }' "$B/flood"
echo "rejected rows kept: $(sqlite3 "$B/queue.db" "SELECT count(*) FROM rejected WHERE queue = 'github'") (keep_rejected 1000); refusals not kept: $(grep -o '[0-9]* rejected requests not kept: more' "$B/fcgiq.log" | awk '{ s += $1 } END { print s + 0 }')"
