#!/bin/bash
# serialize: serialize_by end to end — nginx (conf-examples/nginx.conf) in
# front of fcgiq, the real helper, concurrency 4, an exec: handler that
# records when each run starts and ends.  Jobs with the same key never
# overlap and run in arrival order; other keys overlap; a job waiting to
# retry holds the later jobs of its key back; a dead one lets them go; the
# key comes from a header, a JSON pointer or a query parameter; a request
# without the key runs unserialized.  Each queue is paused while its jobs
# arrive, so that all of them wait when the helper starts claiming.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for cmd in nginx spawn-fcgi curl sqlite3; do
	command -v $cmd >/dev/null || skip_all "$cmd is not installed"
done

resp_conf
REC="$T/runs.log"
# X-Test: KEY N MODE, passed on as HTTP_X_TEST: the key the test means (the
# handler does not read the serialize_by source), the arrival number, and
# ok | fail1 (fails its first attempt) | die (exit 65: dead at once).
cat >"$T/rec.sh" <<'EOF'
#!/bin/sh
set -- "$1" $HTTP_X_TEST
now() { date +%s%N; }
echo "start $(now) $FCGIQ_QUEUE $2 $3 $FCGIQ_ATTEMPT" >>"$1"
sleep 0.3
rc=0
case $4 in
fail1) [ "$FCGIQ_ATTEMPT" = 1 ] && rc=1 ;;
die) rc=65 ;;
esac
echo "end $(now) $FCGIQ_QUEUE $2 $3 $FCGIQ_ATTEMPT" >>"$1"
exit $rc
EOF
chmod 755 "$T/rec.sh"
for q in byheader:header:X-Repo byjson:json:/repository/full_name \
    byquery:query:repo; do
	cat >>"$T/fcgiq.conf" <<-EOF

	[queue ${q%%:*}]
	handler = exec:$T/rec.sh $REC
	user = root
	concurrency = 4
	max_attempts = 3
	backoff = 1s..1s
	serialize_by = ${q#*:}
	EOF
	extra_location "/${q%%:*}/" "${q%%:*}"
done
resp_spawn || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
resp_nginx || bail "nginx did not start"

ctl() { "$FCGIQCTL" -d "$DB" "$@"; }
# post QUEUE KEY N MODE: one job whose serialize_by source holds KEY.
post() {
	local q=$1 key=$2 n=$3 mode=$4 url="$BASE/$1/" body=x
	local -a h=(-H "X-Test: $key $n $mode")
	case $q in
	byheader) h+=(-H "X-Repo: $key") ;;
	byjson) body="{\"repository\":{\"full_name\":\"$key\"},\"n\":$n}" ;;
	byquery) url="$url?x=1&repo=$key&y=2" ;;
	esac
	curl -s -o /dev/null -w '%{http_code}\n' -X POST "${h[@]}" \
	    --data-binary "$body" "$url"
}
unfinished() { [ "$(sql "SELECT count(*) FROM jobs WHERE queue = '$1' AND
    finished_at IS NULL")" = 0 ]; }

# check_runs QUEUE: from the record, for each key: runs never overlap and
# start in arrival order (a retry's second run before the next job); and
# at least two runs of different keys overlapped.
check_runs() {
	awk -v q="$1" '
	$3 != q { next }
	$1 == "start" { s[$4 " " $5 " " $6] = $2; k[$4 " " $5 " " $6] = $4 }
	$1 == "end" { e[$4 " " $5 " " $6] = $2 }
	END {
		n = 0
		for (r in s) { n++; rs[n] = r }
		# sort runs by start time (insertion sort: a few dozen)
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && s[rs[j]] < s[rs[j - 1]]; j--) {
				t = rs[j]; rs[j] = rs[j - 1]; rs[j - 1] = t
			}
		bad = 0; cross = 0
		for (i = 1; i <= n; i++) {
			r = rs[i]; split(r, f, " ")
			if (!(r in e)) { print "no end: " r; bad++ }
			if (f[1] in last) {
				split(last[f[1]], p, " ")
				if (s[r] < e[last[f[1]]]) {
					print "overlap: " last[f[1]] " / " r; bad++
				}
				if (f[2] + 0 < p[2] + 0) {
					print "out of order: " last[f[1]] " / " r; bad++
				}
			}
			last[f[1]] = r
			for (j = 1; j < i; j++) {
				split(rs[j], g, " ")
				if (g[1] != f[1] && s[r] < e[rs[j]]) cross = 1
			}
		}
		if (!cross) { print "no two keys overlapped"; bad++ }
		if (n == 0) { print "no runs"; bad++ }
		exit bad > 0
	}' "$REC"
}

# --- the three sources, three keys each ---------------------------------

for q in byheader byjson byquery; do
	ctl pause $q >/dev/null
	codes=""
	for n in 1 2 3; do
		for key in owner/alpha owner/beta gamma; do
			codes="$codes $(post $q "$key" $n ok)"
		done
	done
	check_eq "$q: nine jobs accepted" \
	    " 202 202 202 202 202 202 202 202 202" "$codes"
	check_eq "$q: the key is stored" "3 3 3" \
	    "$(sql "SELECT group_concat(c, ' ') FROM (SELECT count(*) AS c
	    FROM jobs WHERE queue = '$q' GROUP BY serial_key ORDER BY
	    serial_key)")"
	ctl resume $q >/dev/null
done
for q in byheader byjson byquery; do
	check "$q: all done" wait_for unfinished $q
	check_eq "$q: nine jobs done" 9 \
	    "$(sql "SELECT count(*) FROM jobs WHERE queue = '$q' AND
	    state = 'done'")"
	out=$(check_runs $q)
	check "$q: same key one at a time in arrival order, keys in parallel" \
	    test -z "$out"
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
done

# --- a retry holds the key's later jobs; a dead job releases them -------

: >"$REC"
ctl pause byheader >/dev/null
post byheader r1 1 fail1 >/dev/null
post byheader r1 2 ok >/dev/null
post byheader r1 3 ok >/dev/null
post byheader d1 1 die >/dev/null
post byheader d1 2 ok >/dev/null
post byheader other 1 ok >/dev/null
ctl resume byheader >/dev/null
check "retry/dead: all finished" wait_for unfinished byheader
out=$(check_runs byheader)
check "retry/dead: one at a time, in order, the retry before the next" \
    test -z "$out"
[ -n "$out" ] && echo "$out" | sed 's/^/# /'
r1=$(awk '$1 == "start" && $4 == "r1" { print $5 "." $6 }' "$REC" |
    tr '\n' ' ')
check_eq "retry/dead: r1's runs, job.attempt" "1.1 1.2 2.1 3.1 " "$r1"
check_eq "retry/dead: the dead job, then the next of its key" \
    "dead done" "$(sql "SELECT group_concat(state, ' ') FROM (SELECT state
    FROM jobs WHERE queue = 'byheader' AND serial_key = 'd1' ORDER BY seq)")"
d2=$(awk '$1 == "start" && $4 == "d1" && $5 == 2 { print $2 }' "$REC")
d1=$(awk '$1 == "end" && $4 == "d1" && $5 == 1 { print $2 }' "$REC")
check "retry/dead: d1's second job started after the dead one ended" \
    test "${d2:-0}" -ge "${d1:-1}"

# --- no key: unserialized ------------------------------------------------

: >"$REC"
code=$(curl -s -o "$T/nokey.json" -w '%{http_code}' -X POST \
    -H "X-Test: none 1 ok" --data-binary x "$BASE/byheader/")
check_eq "no key: accepted" 202 "$code"
id=$(json_field "$T/nokey.json" id)
check_eq "no key: a key of its own" "unkeyed $id" \
    "$(sql "SELECT serial_key FROM jobs WHERE id = '$id'")"
check "no key: it runs" wait_for unfinished byheader
bad=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    -H "X-Repo: two words" --data-binary x "$BASE/byheader/")
check_eq "a key that is not printable ASCII without spaces: 400" 400 "$bad"

done_testing
