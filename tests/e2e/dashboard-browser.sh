#!/bin/bash
# tests/e2e/dashboard-browser.sh: the dashboard in a real browser — Debian's
# chromium, headless, driven by puppeteer-core (npm, pinned in
# tests/dashboard/package-lock.json) — behind nginx on the shipped
# conf-examples/nginx-dashboard.conf, with its password.
#
# Covers: the page loads with no console error, no failed request, no CSP
# violation; its queue figures equal the database's; the chart is drawn; a
# dead job's body holding <script>alert(1)</script> and
# <img src=x onerror=alert(1)> shows as visible text (no dialog, no image,
# no script added); a click on its retry button queues it in the
# database; a page of another origin (a second nginx on another port)
# POSTing to the action (fetch and a form, credentials included) is
# refused with 403 and changes nothing.  The screenshots stay in $T/shots
# (and in SHOTS_KEEP when set).
. "$(dirname "$0")/../lib.sh"

command -v chromium >/dev/null 2>&1 ||
    skip_all "no chromium (tests/install-deps.sh installs it)"
for c in node npm; do
	command -v "$c" >/dev/null 2>&1 ||
	    skip_all "no $c (tests/install-deps.sh installs it)"
done
for c in nginx spawn-fcgi curl sqlite3 jq openssl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
. "$(dirname "$0")/responder-lib.sh"
. "$(dirname "$0")/dashboard-lib.sh"
. "$(dirname "$0")/npm-lib.sh"

npm_locked "$top_srcdir/tests/dashboard" dashboard-npm
cp "$top_srcdir/tests/dashboard/browser.mjs" "$NPM_DIR/"

dash_start

# --- jobs: 3 done in default, 4 waiting in parked, 2 dead there (one of
# them a body of markup)
for i in 1 2 3; do
	curl -s -o /dev/null -X POST --data-binary "ok $i" "$BASE/hooks/ok$i?do=true"
done
XSS='<script>alert(1)</script><img src=x onerror=alert(1)>'
for b in "$XSS" plain one two three; do
	printf '%s' "$b" | "$FCGIQCTL" -c "$T/fcgiq.conf" enqueue parked \
	    >/dev/null || bail "fcgiqctl enqueue failed"
done
XSS_ID=$(sql "SELECT id FROM jobs WHERE queue = 'parked' ORDER BY seq LIMIT 1")
OTHER=$(sql "SELECT id FROM jobs WHERE queue = 'parked' ORDER BY seq LIMIT 1 OFFSET 1")
sql "UPDATE jobs SET state = 'dead', attempts = 1, max_attempts = 1,
    finished_at = $(($(date +%s) * 1000)),
    last_error = '<b>bold</b> exit 1' WHERE id IN ('$XSS_ID', '$OTHER')"
done3() {
	[ "$(sql "SELECT count(*) FROM jobs WHERE queue = 'default' AND state = 'done'")" = 3 ]
}
wait_for done3 || bail "default's jobs did not finish"

# --- another origin: a second nginx, on another port, serving a page that
# POSTs to the dashboard's action
EVIL_PORT=$(free_port)
mkdir -p "$T/evil/logs" "$T/evil/www"
TARGET="$RW/api/action?op=retry&id=$OTHER"
cat >"$T/evil/www/index.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>loading</title>
<script src="evil.js"></script></head>
<body><iframe name="sink"></iframe>
<form id="f" method="POST" target="sink" action="$TARGET">
<input name="token" value="guess"></form></body></html>
EOF
cat >"$T/evil/www/evil.js" <<EOF
window.__fetch = '';
window.addEventListener('load', async () => {
	const target = '$TARGET';
	try {
		const r = await fetch(target, { method: 'POST', mode: 'no-cors',
		    credentials: 'include' });
		window.__fetch += 'no-cors:' + r.type;
	} catch (e) { window.__fetch += 'no-cors:failed'; }
	try {
		await fetch(target, { method: 'POST', credentials: 'include',
		    headers: { 'X-Fcgiq-Token': 'guess' } });
		window.__fetch += ',cors:read';
	} catch (e) { window.__fetch += ',cors:blocked'; }
	const sink = document.querySelector('iframe');
	sink.addEventListener('load', () => { document.title = 'sent'; });
	document.getElementById('f').submit();
});
EOF
cat >"$T/evil/nginx.conf" <<EOF
user root;
worker_processes 1;
error_log $T/evil/logs/error.log;
pid $T/evil/nginx.pid;
events { worker_connections 64; }
http {
	access_log $T/evil/logs/access.log;
	types { text/html html; text/javascript js; }
	server {
		listen 127.0.0.1:$EVIL_PORT;
		root $T/evil/www;
	}
}
EOF
# Its own pid file: start_nginx keeps one nginx per test directory.
nginx -p "$T/evil" -c "$T/evil/nginx.conf" 2>"$T/evil/start.err" ||
    bail "the other origin's nginx did not start: $(cat "$T/evil/start.err")"
wait_for test -s "$T/evil/nginx.pid" || bail "no pid from the other nginx"
track "$(cat "$T/evil/nginx.pid")"
wait_for curl -sf -o /dev/null "http://127.0.0.1:$EVIL_PORT/index.html" ||
    bail "the other origin's page is not served"

# The figures the page must show: the database's, once the shared counts
# have caught up with the UPDATE above.
db_counts() {
	local q
	for q in default parked; do
		echo "$q $(sql "SELECT sum(state = 'queued'), sum(state = 'running'),
		    sum(state = 'retry'), sum(state = 'dead') FROM jobs
		    WHERE queue = '$q'" | tr '|' ' ') no"
	done
}
api_counts() {
	curl -s "${AUTH_RW[@]}" "$RW/api/summary" | jq -r \
	    '.queues[] | "\(.name) \(.queued) \(.running) \(.retry) \(.dead) no"'
}
same_counts() { [ "$(db_counts)" = "$(api_counts)" ]; }
wait_for same_counts || bail "api/summary never caught up: $(api_counts)"
EXPECTED=$(db_counts)

# --- the browser
mkdir -p "$T/shots"
DASH_URL="$RW/" DASH_USER=bob DASH_PASS=builder XSS_ID=$XSS_ID \
    EVIL_URL="http://127.0.0.1:$EVIL_PORT/index.html" SHOTS="$T/shots" \
    HOME="$T" node "$NPM_DIR/browser.mjs" >"$T/browser.out" 2>"$T/browser.err"
rc=$?
check_eq "the browser's run ended well" 0 "$rc"
[ $rc -eq 0 ] || sed 's/^/# /' "$T/browser.err" | head -20
field() { sed -n "s/^$1 //p" "$T/browser.out"; }

check_eq "the page answered 200" 200 "$(field status)"
check_eq "no console error or failed request" "[]" "$(field console_errors)"
check_eq "no CSP violation" "[]" "$(field csp)"
check_eq "no dialog (alert) fired" "[]" "$(field dialogs)"
for q in default parked; do
	check_eq "the page's figures for $q equal the database's" \
	    "$(echo "$EXPECTED" | grep "^$q ")" "$(field queue | grep "^$q ")"
done
check_eq "the chart draws intake, done and failed" 3 "$(field chart_lines)"
check_eq "the markup body shows as text" "$XSS" "$(field body_text | jq -r .)"
check_eq "and is visible" true "$(field body_visible)"
check_eq "the markup in last_error shows as text" "<b>bold</b> exit 1" \
    "$(field error_text | jq -r .)"
check_eq "no image was made of it" 0 "$(field imgs)"
check_eq "no script was added (the page's own only)" 1 "$(field scripts)"
check_eq "the retry click went through" yes "$(field retry_clicked)"
check_eq "the retried job is queued in the database" queued \
    "$(sql "SELECT state FROM jobs WHERE id = '$XSS_ID'")"
check_eq "the other origin's page ran" yes "$(field evil_done)"
check "its CORS POST (custom header: a preflight) was blocked" \
    grep -q "^evil_fetch .*,cors:blocked$" "$T/browser.out"
refusals() {
	grep -c "action refused: the request does not come from this page's origin (Origin http://127.0.0.1:$EVIL_PORT" \
	    "$T/fcgiq.log"
}
two_refused() { [ "$(refusals)" -ge 2 ]; }
wait_for two_refused
check "fcgiq refused its POSTs (fetch and form) for their Origin" two_refused
check_eq "nginx answered them 403" 2 \
    "$(grep -c "\"POST /fcgiq-admin/api/action?op=retry&id=$OTHER HTTP/1.1\" 403" \
    "$T/nginx/logs/access.log")"
check_eq "the job they aimed at is still dead" dead \
    "$(sql "SELECT state FROM jobs WHERE id = '$OTHER'")"
check "a screenshot of the page" test -s "$T/shots/dashboard.png"
check "a screenshot of a job's detail" test -s "$T/shots/detail.png"
if [ -n "${SHOTS_KEEP:-}" ]; then
	mkdir -p "$SHOTS_KEEP" && cp "$T/shots/"*.png "$SHOTS_KEEP/"
fi
done_testing
