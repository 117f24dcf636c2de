#!/bin/bash
# tests/e2e/examples.sh: the shipped example handlers,
# conf-examples/handlers/{github-deploy,send-mail,store-to-dir}, run by a
# real fcgiq and its helper from their [queue] lines, fed over FastCGI.
# A fake deploy command and a fake sendmail (found through fcgiq.conf's
# `path =`) record what they were given.
#
# Covers, github-deploy: a signed push to the branch runs the deploy once
# with the payload and DEPLOY_* (done); a bad, a missing signature and a
# signature made with another secret: dead after 1 attempt, nothing run; a
# push to another branch and a ping: done, nothing run; a failing deploy is
# retried; an unreadable secret is a retry; the payload read without jq.
# send-mail: JSON and form bodies reach sendmail -t -i as a message with the
# right headers; a header with a line break, no recipient, a recipient -a
# refuses, a body that is not JSON: dead; no MTA: retry (75), and done with
# `fcgiqctl retry` once one is there; with -S, over SMTP to a relay (a fake
# one in Perl): envelope, message, Bcc: dropped, a lone dot kept, a 5xx is
# dead, a 4xx and a relay that is down are retries.
# store-to-dir: the body filed whole.
. "$(dirname "$0")/../lib.sh"

for c in openssl sqlite3 perl; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
FCGICLIENT=$top_builddir/tests/tools/fcgiclient
[ -x "$FCGICLIENT" ] || skip_all "no $FCGICLIENT: make check builds it"
perl -MJSON::PP -e1 2>/dev/null || skip_all "perl without JSON::PP"

H=$top_srcdir/conf-examples/handlers
DB=$T/var/queue.db
SOCK=$T/fcgiq.sock
FAKE=$T/fakebin
mkdir -p "$T/var" "$FAKE" "$T/deploys" "$T/outbox" "$T/spool"

# The fake MTA: each message in $T/outbox/N.eml, its arguments in N.args.
cat >"$FAKE/sendmail" <<EOF
#!/bin/sh
n=\$(ls "$T/outbox" | grep -c '\.eml\$')
echo "\$*" >"$T/outbox/\$n.args"
cat >"$T/outbox/\$n.eml"
EOF
# The fake deploy: records its environment and stdin; fails (exit 1) as
# long as $T/deploy-fails exists.
cat >"$T/deploy" <<EOF
#!/bin/sh
[ -e "$T/deploy-fails" ] && { rm -f "$T/deploy-fails"; echo "deploy broke" >&2; exit 1; }
d="$T/deploys/\$FCGIQ_JOB_ID.\$FCGIQ_ATTEMPT"
printf '%s\n' "\$DEPLOY_REF" "\$DEPLOY_SHA" "\$DEPLOY_REPO" "\$DEPLOY_DELIVERY" >"\$d"
cat >"\$d.payload"
EOF
chmod 755 "$FAKE/sendmail" "$T/deploy"

# The fake SMTP relay: one session at a time; each message in
# $T/smtp/N.eml, its envelope in N.env.  A recipient with "refuse" in it
# gets 550, one with "later" 451.
mkdir -p "$T/smtp"
cat >"$T/smtpd.pl" <<'EOP'
use strict;
use IO::Socket::INET;
my ($port, $dir) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 8, ReuseAddr => 1) or die "listen: $!";
{ open(my $r, '>', "$dir/ready") or die "ready: $!"; close $r; }
my $n = 0;
while (my $c = $l->accept) {
	$c->autoflush(1);
	print $c "220 fake ESMTP\r\n";
	my ($env, $data) = ('', '');
	while (defined(my $line = <$c>)) {
		if ($line =~ /^(EHLO|HELO)/i) { print $c "250 fake\r\n" }
		elsif ($line =~ /^MAIL FROM:\s*(.*?)\r?$/i) { $env = "from $1\n"; print $c "250 ok\r\n" }
		elsif ($line =~ /^RCPT TO:\s*(.*?)\r?$/i) {
			my $to = $1;
			if ($to =~ /refuse/) { print $c "550 5.1.1 no such user\r\n" }
			elsif ($to =~ /later/) { print $c "451 4.3.0 try later\r\n" }
			else { $env .= "to $to\n"; print $c "250 ok\r\n" }
		}
		elsif ($line =~ /^DATA/i) {
			print $c "354 go\r\n";
			$data = '';
			while (defined(my $d = <$c>)) {
				last if $d eq ".\r\n";
				$d =~ s/^\.//;
				$d =~ s/\r\n$/\n/;
				$data .= $d;
			}
			for my $f (["$n.env", $env], ["$n.eml", $data]) {
				open(my $o, '>', "$dir/$f->[0]") or die; print $o $f->[1]; close $o;
			}
			$n++;
			print $c "250 queued\r\n";
		}
		elsif ($line =~ /^QUIT/i) { print $c "221 bye\r\n"; last }
		else { print $c "250 ok\r\n" }
	}
	close $c;
}
EOP
SMTP_PORT=$(free_port)
SMTP_DOWN=$(free_port)			# reserved, nothing listens there
perl "$T/smtpd.pl" "$SMTP_PORT" "$T/smtp" 2>"$T/smtpd.err" &
track $!
wait_for test -e "$T/smtp/ready" || bail "fake SMTP relay did not start: $(cat "$T/smtpd.err")"
printf 's3cret-for-tests\n' >"$T/github.secret"
chmod 600 "$T/github.secret"

cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database = $DB
log      = info
path     = $FAKE:/usr/local/bin:/usr/bin:/bin

[queue github]
handler      = exec:$H/github-deploy $T/github.secret refs/heads/main $T/deploy
user = root
concurrency  = 1
max_attempts = 3
backoff      = 50ms..100ms

[queue nosecret]
handler      = exec:$H/github-deploy $T/missing.secret refs/heads/main $T/deploy
user = root
max_attempts = 3
backoff      = 1h..2h

[queue mail]
handler      = exec:$H/send-mail -f noreply@example.org -a @example\.org\$
user = root
max_attempts = 3
backoff      = 50ms..100ms

[queue nomta]
handler      = exec:$H/send-mail -s $T/mta/sendmail
user = root
max_attempts = 5
backoff      = 1h..2h

[queue spool]
handler      = exec:$H/store-to-dir $T/spool
user = root

[queue smtp]
handler      = exec:$H/send-mail -S 127.0.0.1:$SMTP_PORT -a @example\.org\$
user = root
max_attempts = 3
backoff      = 1h..2h

[queue smtpdown]
handler      = exec:$H/send-mail -S 127.0.0.1:$SMTP_DOWN -f noreply@example.org
user = root
max_attempts = 3
backoff      = 1h..2h
EOF
"$FCGIQ" -t -c "$T/fcgiq.conf" >/dev/null || bail "fcgiq.conf rejected"
"$FCGIQ" -c "$T/fcgiq.conf" -s "$SOCK" 2>"$T/fcgiq.log" &
track $!
wait_for grep -q "ready:" "$T/fcgiq.log" || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
field() { sql "SELECT $2 FROM jobs WHERE id = '$1'"; }
# post QUEUE BODY [NAME=VALUE...]: a POST with those FastCGI params; the id.
post() {
	local q=$1 body=$2 a=()
	shift 2
	for p in "$@"; do a+=(-p "$p"); done
	"$FCGICLIENT" -s "$SOCK" -m POST -u "/$q/x" -d "$body" -p "FCGIQ_QUEUE=$q" "${a[@]}" |
	    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p'
}
# wait_state ID "STATE..."
wait_state() {
	local i s
	for i in $(seq 600); do	# 30 s: CI machines are shared
		s=$(field "$1" state)
		case " $2 " in *" $s "*) return 0 ;; esac
		sleep 0.05
	done
	echo "# job $1: $s, wanted $2" >&2
	return 1
}
outcome() { field "$1" "state || '|' || attempts"; }
sig() { printf '%s' "$1" | openssl dgst -sha256 -hmac "${2:-s3cret-for-tests}" -r | cut -d' ' -f1; }
push() {
	printf '{"ref":"%s","before":"0000","after":"%s","repository":{"full_name":"acme/site"}}' "$1" "$2"
}
deploys() { ls "$T/deploys" | grep -vc payload; }

# --- github-deploy
JSON=CONTENT_TYPE=application/json
body=$(push refs/heads/main abc123)
id=$(post github "$body" $JSON HTTP_X_GITHUB_EVENT=push HTTP_X_GITHUB_DELIVERY=d-1 \
    "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$body")")
wait_state "$id" "done dead"
check_eq "github: signed push to main: done, 1 attempt" "done|1" "$(outcome "$id")"
check_eq "... the deploy ran with DEPLOY_REF, _SHA, _REPO, _DELIVERY" \
    "refs/heads/main abc123 acme/site d-1" "$(xargs <"$T/deploys/$id.1" 2>/dev/null)"
check_eq "... with the payload on stdin" "$body" "$(cat "$T/deploys/$id.1.payload" 2>/dev/null)"
check_eq "... the result says so" "deployed refs/heads/main abc123" "$(field "$id" "CAST(result AS TEXT)")"

for case in "bad:sha256=$(sig "$body" | tr 0-9a-f 1-9a-f0)" \
    "other-secret:sha256=$(sig "$body" wrong)" "missing:" "sha1:sha1=$(sig "$body")"; do
	name=${case%%:*} s=${case#*:}
	n0=$(deploys)
	if [ -n "$s" ]; then
		id=$(post github "$body" $JSON HTTP_X_GITHUB_EVENT=push "HTTP_X_HUB_SIGNATURE_256=$s")
	else
		id=$(post github "$body" $JSON HTTP_X_GITHUB_EVENT=push)
	fi
	wait_state "$id" "done dead"
	check_eq "github: $name signature: dead after 1 attempt" "dead|1" "$(outcome "$id")"
	check "... last_error names the signature" grep -q "X-Hub-Signature-256" <<<"$(field "$id" last_error)"
	check_eq "... no deploy" "$n0" "$(deploys)"
done

n0=$(deploys)
b2=$(push refs/heads/dev def456)
id=$(post github "$b2" $JSON HTTP_X_GITHUB_EVENT=push "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$b2")")
wait_state "$id" "done dead"
check_eq "github: push to another branch: done, ignored" "done|ignored: push to refs/heads/dev" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
b3='{"zen":"Keep it logically awesome.","hook_id":1}'
id=$(post github "$b3" $JSON HTTP_X_GITHUB_EVENT=ping "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$b3")")
wait_state "$id" "done dead"
check_eq "github: ping: done, pong" "done|pong" "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
id=$(post github "$b3" $JSON HTTP_X_GITHUB_EVENT=issues "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$b3")")
wait_state "$id" "done dead"
check_eq "github: another event: done, ignored" "done|ignored: event 'issues'" \
    "$(field "$id" "state || '|' || CAST(result AS TEXT)")"
check_eq "... none of them deployed" "$n0" "$(deploys)"

touch "$T/deploy-fails"
id=$(post github "$body" $JSON HTTP_X_GITHUB_EVENT=push "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$body")")
wait_state "$id" "done dead"
check_eq "github: a deploy that fails once is retried: done, 2 attempts" "done|2" "$(outcome "$id")"

id=$(post nosecret "$body" $JSON HTTP_X_GITHUB_EVENT=push "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$body")")
wait_state "$id" "retry dead done"
check_eq "github: secret file missing: retry (75), not dead" "retry|1" "$(outcome "$id")"
check "... last_error names the file" grep -q "missing.secret" <<<"$(field "$id" last_error)"

# Without jq: the same payload, read with grep.
mkdir -p "$T/nojq"
for c in sh cat openssl cut mktemp rm tr grep head sed; do
	ln -sf "$(command -v "$c")" "$T/nojq/$c"
done
out=$(printf '%s' "$body" | env -i PATH="$T/nojq" HTTP_X_GITHUB_EVENT=push \
    "HTTP_X_HUB_SIGNATURE_256=sha256=$(sig "$body")" FCGIQ_JOB_ID=nojq FCGIQ_ATTEMPT=1 \
    "$H/github-deploy" "$T/github.secret" refs/heads/main "$T/deploy" 2>&1)
check_eq "github-deploy without jq: deployed" "deployed refs/heads/main abc123" "$out"
check_eq "... with DEPLOY_REF and DEPLOY_SHA" "refs/heads/main abc123" \
    "$(head -2 "$T/deploys/nojq.1" 2>/dev/null | xargs)"

# --- send-mail
m='{"to":["ann@example.org","bob@example.org"],"subject":"Grüße","text":"line 1\n.\nline 3","reply_to":"help@example.org"}'
id=$(post mail "$m" $JSON)
wait_state "$id" "done dead"
check_eq "send-mail: JSON: done" "done|1" "$(outcome "$id")"
check_eq "... sendmail ran with -t -i -f" "-t -i -f noreply@example.org" "$(cat "$T/outbox/0.args" 2>/dev/null)"
eml=$T/outbox/0.eml
check "... From: from -f" grep -qx 'From: noreply@example.org' "$eml"
check "... To: both" grep -qx 'To: ann@example.org, bob@example.org' "$eml"
check "... Reply-To" grep -qx 'Reply-To: help@example.org' "$eml"
check "... the subject MIME-encoded" grep -qx 'Subject: =?UTF-8?B?R3LDvMOfZQ==?=' "$eml"
check "... the job id in a header" grep -qx "X-Fcgiq-Job: $id" "$eml"
check_eq "... the text after a blank line, a lone dot kept" "line 1|.|line 3" \
    "$(sed '1,/^$/d' "$eml" | paste -sd'|')"
check_eq "... the result names the recipients" "sent to ann@example.org, bob@example.org" \
    "$(field "$id" "CAST(result AS TEXT)")"

id=$(post mail 'to=cy%40example.org&subject=Hi+there&text=caf%C3%A9&from=web%40example.org' \
    CONTENT_TYPE=application/x-www-form-urlencoded)
wait_state "$id" "done dead"
check_eq "send-mail: form: done" "done|1" "$(outcome "$id")"
check "... To:, From: and Subject: decoded" \
    grep -qzP 'From: web@example.org\nTo: cy@example.org\nSubject: Hi there\n' "$T/outbox/1.eml"
check_eq "... the text decoded as UTF-8" "café" "$(sed '1,/^$/d' "$T/outbox/1.eml")"

for case in 'injection|{"to":"ann@example.org","subject":"x\r\nBcc: all@evil.example","text":"t"}' \
    'no recipient|{"subject":"x","text":"t"}' \
    'recipient not allowed by -a|{"to":"someone@evil.example","subject":"x","text":"t"}' \
    'not JSON|{"to":'; do
	name=${case%%|*}
	id=$(post mail "${case#*|}" $JSON)
	wait_state "$id" "done dead"
	check_eq "send-mail: $name: dead after 1 attempt" "dead|1" "$(outcome "$id")"
done
check_eq "... none of them reached sendmail" "2" "$(ls "$T/outbox" | grep -c '\.eml$')"

id=$(post nomta '{"to":"ann@example.org","subject":"s","text":"t"}' $JSON)
wait_state "$id" "retry dead done"
check_eq "send-mail: no MTA: retry (75)" "retry|1" "$(outcome "$id")"
check "... last_error says why" grep -q "no sendmail program" <<<"$(field "$id" last_error)"
mkdir -p "$T/mta" && cp "$FAKE/sendmail" "$T/mta/sendmail"
"$FCGIQCTL" -c "$T/fcgiq.conf" retry "$id" >/dev/null 2>&1
wait_state "$id" "done dead"
check_eq "... the MTA back, fcgiqctl retry: done at attempt 2" "done|2" "$(outcome "$id")"

# --- send-mail -S: SMTP to a relay (no setgid sendmail: NoNewPrivileges)
id=$(post smtp '{"to":"ann@example.org","from":"Web <web@example.org>","subject":"s","text":"a\n.\nb"}' $JSON)
wait_state "$id" "done dead retry"
check_eq "send-mail -S: JSON over SMTP: done" "done|1" "$(outcome "$id")"
check_eq "... envelope: From:'s address, the recipient" "from <web@example.org>|to <ann@example.org>" \
    "$(paste -sd'|' "$T/smtp/0.env" 2>/dev/null)"
check "... To: in the message" grep -qx 'To: ann@example.org' "$T/smtp/0.eml"
check_eq "... the text, a lone dot kept" "a|.|b" "$(sed '1,/^$/d' "$T/smtp/0.eml" | paste -sd'|')"
check_eq "... the result names the relay" "sent to ann@example.org via 127.0.0.1:$SMTP_PORT" \
    "$(field "$id" "CAST(result AS TEXT)")"
msg=$(printf 'From: a@example.org\r\nTo: b@example.org\r\nBcc: c@example.org\r\nSubject: r\r\n\r\nbody\r\n')
id=$(post smtp "$msg" CONTENT_TYPE=message/rfc822)
wait_state "$id" "done dead retry"
check_eq "send-mail -S: message/rfc822: done" "done|1" "$(outcome "$id")"
check_eq "... To: and Bcc: recipients both in the envelope" "from <a@example.org>|to <b@example.org>|to <c@example.org>" \
    "$(paste -sd'|' "$T/smtp/1.env" 2>/dev/null)"
check "... the Bcc: header not sent" eval '! grep -qi "^bcc:" "$T/smtp/1.eml"'
id=$(post smtp '{"to":"refuse@example.org","subject":"s","text":"t"}' $JSON)
wait_state "$id" "done dead retry"
check_eq "send-mail -S: 550 from the relay: dead at once" "dead|1" "$(outcome "$id")"
check "... last_error has the relay's answer" grep -q "550 5.1.1 no such user" <<<"$(field "$id" last_error)"
id=$(post smtp '{"to":"later@example.org","subject":"s","text":"t"}' $JSON)
wait_state "$id" "done dead retry"
check_eq "send-mail -S: 451 from the relay: retry" "retry|1" "$(outcome "$id")"
id=$(post smtpdown '{"to":"ann@example.org","subject":"s","text":"t"}' $JSON)
wait_state "$id" "done dead retry"
check_eq "send-mail -S: relay down: retry" "retry|1" "$(outcome "$id")"
check "... last_error says it could not connect" grep -q "cannot connect" <<<"$(field "$id" last_error)"

# --- the shipped fcgiq.conf: valid, and it runs as written (its database
# and handler directory moved here): a POST to "default" is filed by
# store-to-dir, "mail" exists.
out=$("$FCGIQ" -t -c "$top_srcdir/conf-examples/fcgiq.conf" 2>&1)
check_eq "conf-examples/fcgiq.conf: fcgiq -t accepts it" \
    "$top_srcdir/conf-examples/fcgiq.conf: configuration ok" "$out"
mkdir -p "$T/ex/spool"
# Its handlers run as nobody (user = nobody) when this runs as root:
# nobody writes the spool, and reaches the handlers through a copy in $T
# (the source tree may sit under a home nobody cannot enter, as /root is).
[ "$(id -u)" -ne 0 ] || chown nobody "$T/ex/spool"
cp -R "$H" "$T/ex/handlers"
chmod -R a+rX "$T/ex/handlers"
sed -e "s|^database *=.*|database = $T/ex/queue.db|" \
    -e "s|^log_file *=.*|log_file = $T/ex/log|" \
    -e "s|/usr/local/libexec/fcgiq/|$T/ex/handlers/|g" -e "s|/var/spool/fcgiq|$T/ex/spool|g" \
    "$top_srcdir/conf-examples/fcgiq.conf" >"$T/ex/fcgiq.conf"
"$FCGIQ" -c "$T/ex/fcgiq.conf" -s "$T/ex/sock" 2>"$T/ex/log" &
track $!
wait_for grep -q "ready:" "$T/ex/log"
id=$("$FCGICLIENT" -s "$T/ex/sock" -m POST -u /hooks/x -d 'shipped' |
    sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
check "fcgiq.conf as shipped: the default queue's store-to-dir files the body" \
    wait_for grep -qx shipped "$T/ex/spool/$id"
check_eq "fcgiq.conf as shipped: queue mail exists" "202" \
    "$("$FCGICLIENT" -s "$T/ex/sock" -m POST -u /mail/x -p FCGIQ_QUEUE=mail -d '{}' | sed -n 's/^status //p')"

# --- store-to-dir
id=$(post spool 'to the spool' CONTENT_TYPE=text/plain)
wait_state "$id" "done dead"
check_eq "store-to-dir: done, the body filed" "done|to the spool" \
    "$(field "$id" state)|$(cat "$T/spool/$id" 2>/dev/null)"
check "... with the request line beside it" grep -qx "POST /spool/x" "$T/spool/$id.meta"

done_testing
