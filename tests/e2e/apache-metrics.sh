#!/bin/bash
# tests/e2e/apache-metrics.sh: the metrics role behind Apache 2.4 +
# mod_proxy_fcgi, on the shipped conf-examples/apache-metrics.conf beside
# conf-examples/apache-proxy-fcgi.conf (socket path substituted in both),
# fcgiq under the shipped conf-examples/spawn-fcgi.sh as www-data.
#
# Covers: ProxyFCGISetEnvIf "true" FCGIQ_ROLE "metrics" reaches fcgiq: GET
# and HEAD /metrics answer the text exposition (promtool check metrics
# clean when promtool is there), POST is 405; the figures follow intake
# through Apache (jobs enqueued, counts per state, 202s answered); the
# location's Require ip lets the host in and keeps another address
# (127.0.0.2) out with 403, which fcgiq never sees.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/apache-lib.sh"

for c in spawn-fcgi curl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
for m in proxy proxy_fcgi authz_host; do
	[ -f "$APACHE_MODULES/mod_$m.so" ] || skip_all "no mod_$m"
done

EX=$top_srcdir/conf-examples
DB=$T/var/queue.db
SOCK=$T/run/fcgiq.sock
apache_fcgiq "helper   = 0"

for f in apache-proxy-fcgi.conf apache-metrics.conf; do
	sed "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" "$EX/$f" >"$T/$f"
	grep -q "unix:$SOCK|" "$T/$f" ||
	    bail "conf-examples/$f no longer has the socket path the test substitutes"
done
cat "$T/apache-proxy-fcgi.conf" "$T/apache-metrics.conf" >"$T/site.conf"
apache_conf "$T/site.conf" proxy proxy_fcgi authz_host
apache_start || bail "apache did not start: $(cat "$T/apache/configtest.log" "$T/apache/start.log" "$T/apache/logs/error.log" 2>/dev/null)"
ok "apache2 -t accepts the shipped apache-metrics.conf and Apache starts"

URL=$APACHE_URL
# metric TEXT NAME{LABELS}: the value of one sample.
metric() {
	printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 + 0; f = 1 }
	    END { if (!f) print "absent" }'
}

# --- the role reaches fcgiq
curl -s -D "$T/h" -o "$T/scrape.txt" "$URL/metrics"
check "GET /metrics: 200" grep -q '^HTTP/1.1 200' "$T/h"
check "... the text exposition format" \
    grep -qi '^content-type: text/plain; version=0.0.4' "$T/h"
check "... fcgiq's families, one per configured queue" \
    grep -q '^fcgiq_jobs_enqueued_total{queue="github"} ' "$T/scrape.txt"
if command -v promtool >/dev/null; then
	check "promtool check metrics passes through Apache" \
	    sh -c "promtool check metrics <'$T/scrape.txt' >'$T/promtool.out' 2>&1"
fi
check_eq "HEAD /metrics: 200" 200 \
    "$(curl -s -o /dev/null -I -w '%{http_code}' "$URL/metrics")"
check_eq "POST /metrics: 405 (no job)" 405 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary x \
    "$URL/metrics")"
check_eq "... and nothing stored" 0 \
    "$(metric "$(curl -s "$URL/metrics")" \
    'fcgiq_jobs_enqueued_total{queue="default"}')"

# --- the figures follow intake through Apache (no helper: jobs wait)
for i in 1 2 3; do
	curl -s -o /dev/null -X POST --data-binary x "$URL/hooks/n$i"
done
curl -s -o /dev/null -X POST --data-binary x "$URL/mail/m"
counted() {
	local s
	s=$(curl -s "$URL/metrics")
	[ "$(metric "$s" 'fcgiq_jobs{queue="default",state="queued"}')" = 3 ] &&
	    [ "$(metric "$s" 'fcgiq_jobs{queue="mail",state="queued"}')" = 1 ]
}
check "fcgiq_jobs: 3 queued in default, 1 in mail" wait_for counted
s=$(curl -s "$URL/metrics")
check_eq "fcgiq_jobs_enqueued_total: 3 and 1" "3 1" \
    "$(metric "$s" 'fcgiq_jobs_enqueued_total{queue="default"}') $(
    metric "$s" 'fcgiq_jobs_enqueued_total{queue="mail"}')"
check_eq 'fcgiq_http_requests_total{code="202"}: 4' 4 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="202"}')"
check_eq 'fcgiq_http_requests_total{code="405"}: 1' 1 \
    "$(metric "$s" 'fcgiq_http_requests_total{code="405"}')"
check_eq "no helper configured: fcgiq_helper_up 0" 0 \
    "$(metric "$s" 'fcgiq_helper_up')"

# --- Require ip: another address is refused by Apache itself
before=$(metric "$(curl -s "$URL/metrics")" 'fcgiq_http_requests_total{code="200"}')
check_eq "from 127.0.0.2: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
    "$URL/metrics")"
after=$(metric "$(curl -s "$URL/metrics")" 'fcgiq_http_requests_total{code="200"}')
check_eq "... which fcgiq never saw (one more 200: the scrape between)" \
    $((before + 1)) "$after"

check "Apache stops on SIGTERM to the pid in its pid file" apache_stop
for p in $FCGIQ_PIDS; do stop_pid "$p"; done

done_testing
