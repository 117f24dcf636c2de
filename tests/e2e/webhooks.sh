#!/bin/bash
# tests/e2e/webhooks.sh: trust at the door, end to end.  Requests signed by
# the senders' own libraries (npm: @octokit/webhooks-methods, stripe,
# standardwebhooks, installed from tests/webhooks/package-lock.json with
# npm ci) are posted through nginx (conf-examples/nginx.conf) to fcgiq:
# each genuine one is stored; the same request with one byte of the body
# changed, an old timestamp, a missing header or a rotated-out secret is
# refused with 401 and nothing stored, but kept in the rejected table
# (fcgiqctl rejected); a redelivery returns the first job.  Then the secret
# file's checks (fcgiq -t), a secret rotated by SIGHUP, a handler run as
# user = nobody that cannot get root back, and the modes of the files
# fcgiq creates.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"

for c in node npm nginx curl sqlite3; do
	command -v "$c" >/dev/null 2>&1 ||
	    skip_all "no $c (tests/install-deps.sh installs it)"
done

# --- the signers, from the lockfile ----------------------------------------
# FCGIQ_NPM_DIR: install them there instead of the cache directory.
. "$(dirname "$0")/npm-lib.sh"
WH="$top_srcdir/tests/webhooks"
npm_locked "$WH" webhooks-npm "${FCGIQ_NPM_DIR:-}"
cp "$WH/sign.mjs" "$NPM_DIR/sign.mjs"
# sign SCHEME SECRET BODYFILE [ARGS]: the sender's headers, one a line.
sign() { node "$NPM_DIR/sign.mjs" "$@"; }

# --- fcgiq and nginx --------------------------------------------------------
GH_SECRET="It's a Secret to Everybody"
ST_SECRET=whsec_test_fcgiq_stripe
SW_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
SW_OLD=whsec_c2VjcmV0IHRoYXQgd2FzIHJvdGF0ZWQgb3V0IQ==
mkdir -p "$T/var" "$T/etc"
printf 'old github secret\n%s\n' "$GH_SECRET" >"$T/etc/github.secret"
printf '%s\n' "$ST_SECRET" >"$T/etc/stripe.secret"
printf '%s\n' "$SW_SECRET" >"$T/etc/sw.secret"
chmod 600 "$T"/etc/*.secret
cat >"$T/whoami.sh" <<'EOF'
#!/bin/sh
# Who am I, and can I become root again?
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
perl -e '$> = 0; $< = 0; print "after setuid(0): uid=$< euid=$>\n"'
if touch /root/.fcgiq-escalated 2>/dev/null; then echo "wrote /root"; else echo "no /root"; fi
EOF
chmod 755 "$T/whoami.sh"
cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = debug
log_file = $T/var/fcgiq.log

[queue github]
verify      = github
secret_file = $T/etc/github.secret
keep_rejected = 5

[queue stripe]
verify      = stripe
secret_file = $T/etc/stripe.secret
tolerance   = 5m

[queue sw]
verify      = standard-webhooks
secret_file = $T/etc/sw.secret

[queue priv]
handler = exec:$T/whoami.sh
user    = nobody
EOF
check_eq "fcgiq -t accepts the configuration" \
    "$T/fcgiq.conf: configuration ok" "$("$FCGIQ" -t -c "$T/fcgiq.conf" 2>&1)"
"$FCGIQ" -c "$T/fcgiq.conf" -s "$SOCK" 2>"$T/fcgiq.err" &
FPID=$!
track $FPID
wait_for grep -q "ready:" "$T/var/fcgiq.log" || bail "fcgiq did not start: $(cat "$T/fcgiq.err")"
extra_location /stripe stripe
extra_location /sw sw
extra_location /priv priv
resp_nginx || bail "nginx did not start: $(cat "$T/nginx/logs/error.log")"

# post PATH BODYFILE [HEADERFILE]: the HTTP status; the answer's headers in
# $T/ans.h, its body in $T/ans.
post() {
	local h=()
	[ $# -ge 3 ] && h=(-H "@$3")
	curl -s -o "$T/ans" -D "$T/ans.h" -w '%{http_code}' \
	    -H 'Content-Type: application/json' "${h[@]}" \
	    --data-binary "@$2" "$BASE$1"
}
jobs_in() { sql "SELECT count(*) FROM jobs WHERE queue = '$1'"; }
reason() { json_field "$T/ans" detail; }

# refused NAME PATH BODY HEADERS QUEUE DETAIL: 401, that detail, nothing
# stored in QUEUE.
refused() {
	local before st
	before=$(jobs_in "$5")
	st=$(post "$2" "$3" "$4")
	check_eq "$1: 401" "401" "$st"
	check_eq "$1: the detail names the check" "$6" "$(reason)"
	check_eq "$1: nothing stored" "$before" "$(jobs_in "$5")"
}

# --- GitHub -------------------------------------------------------------------
printf '{"zen":"Design for failure.","hook_id":1}' >"$T/gh.json"
{ sign github "$GH_SECRET" "$T/gh.json"; echo "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958"; echo "X-GitHub-Event: ping"; } >"$T/gh.h"
check_eq "github: signed by @octokit/webhooks-methods: 202" "202" "$(post /github "$T/gh.json" "$T/gh.h")"
id=$(json_field "$T/ans" id)
check_eq "github: stored" "1" "$(jobs_in github)"
check_eq "github: a redelivery (same X-GitHub-Delivery): 202" "202" "$(post /github "$T/gh.json" "$T/gh.h")"
check_eq "... the first job" "$id" "$(json_field "$T/ans" id)"
check "... Idempotent-Replayed: true" grep -qi '^Idempotent-Replayed: true' "$T/ans.h"
check_eq "... nothing more stored" "1" "$(jobs_in github)"
printf '{"zen":"Design for failure!","hook_id":1}' >"$T/gh-changed.json"
refused "github: one byte of the body changed" /github "$T/gh-changed.json" "$T/gh.h" github "no secret matched: X-Hub-Signature-256"
check "... WWW-Authenticate names the scheme" grep -qi '^WWW-Authenticate: Signature scheme="github"' "$T/ans.h"
grep -v '^X-Hub-Signature-256' "$T/gh.h" >"$T/gh-nosig.h"
refused "github: no X-Hub-Signature-256" /github "$T/gh.json" "$T/gh-nosig.h" github "missing header: X-Hub-Signature-256"
{ sign github "a secret rotated out" "$T/gh.json"; echo "X-GitHub-Delivery: 2"; } >"$T/gh-old.h"
refused "github: a rotated-out secret" /github "$T/gh.json" "$T/gh-old.h" github "no secret matched: X-Hub-Signature-256"
{ sign github "old github secret" "$T/gh.json"; echo "X-GitHub-Delivery: 3"; } >"$T/gh-2nd.h"
check_eq "github: the file's other secret passes too (rotation)" "202" "$(post /github "$T/gh.json" "$T/gh-2nd.h")"

# --- Stripe -------------------------------------------------------------------
printf '{"id":"evt_1Fcgiq","object":"event","type":"charge.succeeded"}' >"$T/st.json"
sign stripe "$ST_SECRET" "$T/st.json" >"$T/st.h"
check_eq "stripe: signed by stripe's generateTestHeaderString: 202" "202" "$(post /stripe "$T/st.json" "$T/st.h")"
id=$(json_field "$T/ans" id)
sign stripe "$ST_SECRET" "$T/st.json" "$(($(date +%s) + 1))" >"$T/st2.h"
check_eq "stripe: the event sent again (same id, new signature): 202" "202" "$(post /stripe "$T/st.json" "$T/st2.h")"
check_eq "... the first job (dedupe by the event's id)" "$id" "$(json_field "$T/ans" id)"
check_eq "... one job" "1" "$(jobs_in stripe)"
printf '{"id":"evt_1Fcgiq","object":"event","type":"charge.succeedes"}' >"$T/st-changed.json"
refused "stripe: one byte of the body changed" /stripe "$T/st-changed.json" "$T/st.h" stripe "no secret matched: Stripe-Signature"
sign stripe "$ST_SECRET" "$T/st.json" "$(($(date +%s) - 3600))" >"$T/st-old.h"
refused "stripe: a timestamp an hour old" /stripe "$T/st.json" "$T/st-old.h" stripe "timestamp outside tolerance: Stripe-Signature"
: >"$T/empty.h"
refused "stripe: no Stripe-Signature" /stripe "$T/st.json" "$T/empty.h" stripe "missing header: Stripe-Signature"
sign stripe whsec_rotated_out "$T/st.json" >"$T/st-rot.h"
refused "stripe: a rotated-out secret" /stripe "$T/st.json" "$T/st-rot.h" stripe "no secret matched: Stripe-Signature"

# --- Standard Webhooks --------------------------------------------------------
printf '{"type":"invoice.paid","data":{"n":1}}' >"$T/sw.json"
sign standard-webhooks "$SW_SECRET" "$T/sw.json" msg_2Fcgiq >"$T/sw.h"
check_eq "standard-webhooks: signed by standardwebhooks: 202" "202" "$(post /sw "$T/sw.json" "$T/sw.h")"
id=$(json_field "$T/ans" id)
check_eq "standard-webhooks: a redelivery (same webhook-id): the first job" "202 $id" \
    "$(post /sw "$T/sw.json" "$T/sw.h") $(json_field "$T/ans" id)"
check_eq "... one job" "1" "$(jobs_in sw)"
printf '{"type":"invoice.paid","data":{"n":2}}' >"$T/sw-changed.json"
refused "standard-webhooks: one byte of the body changed" /sw "$T/sw-changed.json" "$T/sw.h" sw "no secret matched: webhook-signature"
sign standard-webhooks "$SW_SECRET" "$T/sw.json" msg_3 "$(($(date +%s) - 3600))" >"$T/sw-old.h"
refused "standard-webhooks: a timestamp an hour old" /sw "$T/sw.json" "$T/sw-old.h" sw "timestamp outside tolerance: webhook-timestamp"
grep -v '^webhook-id' "$T/sw.h" >"$T/sw-noid.h"
refused "standard-webhooks: no webhook-id" /sw "$T/sw.json" "$T/sw-noid.h" sw "missing header: webhook-id"
sign standard-webhooks "$SW_OLD" "$T/sw.json" msg_4 >"$T/sw-rot.h"
refused "standard-webhooks: a rotated-out secret" /sw "$T/sw.json" "$T/sw-rot.h" sw "no secret matched: webhook-signature"

# --- the rejected table -------------------------------------------------------
# Written by the committer a batch every 100 ms: wait for it.
n_rej() { sql "SELECT count(*) FROM rejected WHERE queue = '$1'"; }
rej_is() { test "$(n_rej "$1")" = "$2"; }
check "rejected: stripe's 4 refusals are kept" wait_for rej_is stripe 4
check_eq "rejected: github's 3" "3" "$(n_rej github)"
check_eq "rejected: the reason is kept" "timestamp outside tolerance: Stripe-Signature" \
    "$(sql "SELECT reason FROM rejected WHERE queue = 'stripe' ORDER BY seq LIMIT 1 OFFSET 1")"
check_eq "rejected: the body's start is kept" "$(cat "$T/st-changed.json")" \
    "$(sql "SELECT CAST(body_head AS TEXT) FROM rejected WHERE queue = 'stripe' ORDER BY seq LIMIT 1")"
sig=$(sed -n 's/^X-Hub-Signature-256: //p' "$T/gh.h")
check "rejected: no signature is kept whole" \
    sh -c "! sqlite3 '$DB' 'SELECT headers FROM rejected' | grep -qF '$sig'"
"$FCGIQCTL" -c "$T/fcgiq.conf" rejected stripe >"$T/ctl.out" 2>&1
check_eq "fcgiqctl rejected stripe: a header line and 4 rows" "5" "$(wc -l <"$T/ctl.out")"
check "... naming the reasons" grep -q "timestamp outside tolerance" "$T/ctl.out"
"$FCGIQCTL" -c "$T/fcgiq.conf" --json rejected -n 1 >"$T/ctl.json" 2>&1
check_eq "fcgiqctl --json rejected -n 1: one row, the newest" "sw" \
    "$(sed -n 's/^ *"queue": "\(.*\)",$/\1/p' "$T/ctl.json")"
# A flood: never more than keep_rejected (5) rows of the queue.
for i in $(seq 30); do post /github "$T/gh.json" "$T/gh-nosig.h" >/dev/null; done
check "rejected: a flood of 30 leaves at most keep_rejected = 5 rows" \
    wait_for rej_is github 5
check_eq "... and nothing stored" "2" "$(jobs_in github)"

# --- the secret file ----------------------------------------------------------
chmod 644 "$T/etc/stripe.secret"
out=$("$FCGIQ" -t -c "$T/fcgiq.conf" 2>&1)
check "fcgiq -t: a secret file others may read is refused, with the line" \
    grep -q "fcgiq.conf:1[0-9]: secret_file: $T/etc/stripe.secret: others may read it (mode 0644)" <<<"$out"
chmod 600 "$T/etc/stripe.secret"
sed 's|^secret_file = .*sw.secret$|secret_file = /nonexistent/sw.secret|' "$T/fcgiq.conf" >"$T/bad.conf"
check "fcgiq -t: a missing secret file is refused" \
    grep -q "bad.conf:[0-9]*: secret_file: /nonexistent/sw.secret: No such file" <<<"$("$FCGIQ" -t -c "$T/bad.conf" 2>&1)"
# SIGHUP re-reads the secrets: the new one passes, the old one no more.
printf '%s\n' "$SW_OLD" >"$T/etc/sw.secret"
kill -HUP $FPID
wait_for grep -q "reload:" "$T/var/fcgiq.log"
check_eq "SIGHUP: the rotated-in secret passes" "202" "$(post /sw "$T/sw.json" "$T/sw-rot.h")"
check_eq "SIGHUP: the rotated-out one is refused" "401" "$(post /sw "$T/sw.json" "$T/sw.h")"

# --- least privilege ------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	printf '{}' >"$T/empty.json"
	check_eq "priv: intake 202" "202" "$(post /priv "$T/empty.json")"
	pid=$(json_field "$T/ans" id)
	state_is() { test "$(sql "SELECT state FROM jobs WHERE id = '$1'")" = "$2"; }
	check "priv: the handler ran" wait_for state_is "$pid" done
	res=$(sql "SELECT CAST(result AS TEXT) FROM jobs WHERE id = '$pid'")
	check_eq "priv: it ran as nobody, nobody's groups alone" \
	    "uid=$(id -u nobody) gid=$(id -g nobody) groups=$(id -G nobody)" \
	    "$(sed -n 1p <<<"$res")"
	check_eq "priv: setuid(0) gets nothing back" \
	    "after setuid(0): uid=$(id -u nobody) euid=$(id -u nobody)" "$(sed -n 2p <<<"$res")"
	check_eq "priv: root's files are out of reach" "no /root" "$(sed -n 3p <<<"$res")"
	check "... and nothing was written there" test ! -e /root/.fcgiq-escalated
	sed '/^user *= nobody$/d' "$T/fcgiq.conf" >"$T/nouser.conf"
	out=$("$FCGIQ" -t -c "$T/nouser.conf" 2>&1)
	check "fcgiq -t as root: an exec: queue without user is refused" \
	    grep -q "nouser.conf:2[0-9]: \[queue priv\]: fcgiq runs as root.*user = root" <<<"$out"
	sed 's/^user *= nobody$/user = no-such-user-fcgiq/' "$T/fcgiq.conf" >"$T/nosuch.conf"
	check "fcgiq -t: a user that does not exist is refused" \
	    grep -q 'user: "no-such-user-fcgiq": no such user' <<<"$("$FCGIQ" -t -c "$T/nosuch.conf" 2>&1)"
else
	ok "# SKIP least privilege: not root"
fi

# --- the modes of what fcgiq created --------------------------------------------
for f in "$DB" "$DB-wal" "$DB-shm" "$DB-helper.lock" "$T/var/fcgiq.log"; do
	m=$(stat -c %a "$f" 2>/dev/null || echo missing)
	check "$(basename "$f") is not for others (mode $m)" \
	    test "$m" != missing -a "$((8#$m & 7))" -eq 0
done

done_testing
