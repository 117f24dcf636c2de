#!/bin/bash
# tests/e2e/php-fpm-example.sh: conf-examples/php-fpm/ as shipped (paths,
# port and user substituted): nginx -> fcgiq -> PHP-FPM for jobs, nginx ->
# PHP-FPM for the application's own pages, one pool serving both.  A form
# posted to /mail/ is answered 202 and run by the script with $_POST as
# nginx would have passed it; the status URL shows it done; a page of the
# application still answers from the same pool.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/responder-lib.sh"
. "$(dirname "$0")/phpfpm-lib.sh"

for c in nginx spawn-fcgi curl sqlite3; do
	command -v "$c" >/dev/null || skip_all "$c not installed"
done
phpfpm_find || skip_all "php-fpm not installed (tests/install-deps.sh)"
EX=$top_srcdir/conf-examples/php-fpm

phpfpm_start app 4 || bail "php-fpm did not start"
REC=$T/rec
mkdir -p "$REC" "$T/var" "$T/app/public" "$T/app/jobs" "$T/nginx/logs"
cp "$PHP_HANDLERS/job.php" "$T/app/jobs/send-mail.php"
printf '<?php echo "page ", $_GET["n"] ?? "", "\\n";\n' >"$T/app/public/index.php"

sed -e "s|^database = .*|database = $DB|" \
    -e "s|unix:/run/php/php8.2-fpm.sock|unix:$PHPFPM_SOCK_app|" \
    -e "s|/srv/app/jobs/send-mail.php|$T/app/jobs/send-mail.php|" \
    -e "s|^param        = DOCUMENT_ROOT /srv/app|&\nparam        = RECORD_DIR $REC|" \
    "$EX/fcgiq.conf" >"$T/fcgiq.conf"
grep -q "$PHPFPM_SOCK_app" "$T/fcgiq.conf" && grep -q "RECORD_DIR" "$T/fcgiq.conf" ||
    bail "conf-examples/php-fpm/fcgiq.conf no longer has the lines the test substitutes"
check "the example passes fcgiq -t" "$FCGIQ" -t -c "$T/fcgiq.conf"
resp_spawn || bail "fcgiq did not start: $(cat "$T/spawn.log")"

port=$(free_port)
cp /etc/nginx/fastcgi_params "$T/nginx/fastcgi_params"
sed -e 's|^user .*;|user root;|' \
    -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
    -e "s|unix:/run/php/php8.2-fpm.sock|unix:$PHPFPM_SOCK_app|" \
    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$port;|" \
    -e "s|root /srv/app/public;|root $T/app/public;|" \
    "$EX/nginx.conf" >"$T/nginx/nginx.conf"
grep -q "listen 127.0.0.1:$port;" "$T/nginx/nginx.conf" ||
    bail "conf-examples/php-fpm/nginx.conf no longer has the lines the test substitutes"
start_nginx "$T/nginx/nginx.conf" || bail "nginx did not start"
BASE=http://127.0.0.1:$port
wait_for curl -s -o /dev/null "$BASE/" || bail "nginx does not answer"

code=$(curl -s -o "$T/post.json" -w '%{http_code}' -X POST \
    -H "X-GitHub-Event: push" --data "to=ada%40example.org&subject=Hi" "$BASE/mail/welcome")
check_eq "the form post is answered 202" 202 "$code"
id=$(sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' "$T/post.json")
for i in $(seq 100); do
	[ "$(sql "SELECT state FROM jobs WHERE id = '$id'")" = done ] && break
	sleep 0.1
done
check_eq "the job done by the script in PHP-FPM" "done|ok $id 1" \
    "$(sql "SELECT state || '|' || CAST(result AS TEXT) FROM jobs WHERE id = '$id'")"
check "the script saw \$_POST as nginx would have passed it" \
    grep -q '"post":{"to":"ada@example.org","subject":"Hi"}' "$REC/$id.1.json"
check "...and DOCUMENT_ROOT from a param line" \
    grep -q '"DOCUMENT_ROOT":"/srv/app"' "$REC/$id.1.json"
check "the status URL says done" grep -q '"state" *: *"done"' \
    <(curl -s "$BASE/jobs/$id")
check_eq "the application's page, from the same pool" "page 7" \
    "$(curl -s "$BASE/index.php?n=7")"

done_testing
