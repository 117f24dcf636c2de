#!/bin/sh
# fcgiq through libfcgi's cgi-fcgi (Debian package libfcgi-bin): one CGI
# request - the request in the environment, the body on stdin - becomes
# one FastCGI request to fcgiq, and fcgiq's answer (a CGI response:
# "Status: 202 Accepted", headers, a blank line, the JSON) comes out on
# stdout.  tests/e2e/cgi-fcgi.sh runs this very script, with FCGIQ_SOCKET
# set to its socket, so what is shipped here is what is tested.
#
# Two uses:
#   - as a CGI program of a web server that runs CGI but speaks no
#     FastCGI: the server sets the environment.  fcgiq routes on
#     REQUEST_URI: a status URL must start with /jobs/ (or with the
#     FCGIQ_STATUS_PREFIX this script passes on);
#   - from a shell, cron or another program, with no web server: set the
#     variables yourself, e.g.
#       printf '%s' "$msg" | REQUEST_METHOD=POST REQUEST_URI=/cron/nightly \
#           CONTENT_LENGTH=${#msg} CONTENT_TYPE=text/plain FCGIQ_QUEUE=mail \
#           sh cgi-fcgi.sh
#     and a job's status with
#       REQUEST_METHOD=GET REQUEST_URI=/jobs/ID sh cgi-fcgi.sh </dev/null
#
# cgi-fcgi sends its whole environment as FastCGI parameters: fcgiq keeps
# the request's (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_TYPE,
# REMOTE_ADDR, HTTP_* but HTTP_PROXY) and FCGIQ_QUEUE; start it from a
# clean environment (env -i) when the caller's has HTTP_* variables that
# are no request headers.  cgi-fcgi forwards the body only when
# CONTENT_LENGTH is set (without it the job's body is empty), and stdin
# must hold exactly that many bytes (what it reads past them goes on too,
# and fcgiq answers 400); a CGI server sets it so.
#
#   FCGIQ_SOCKET         /run/fcgiq/fcgiq.sock (or HOST:PORT)
#   FCGIQ_QUEUE          default
#   FCGIQ_STATUS_PREFIX  (empty: fcgiq's /jobs/)
set -eu

: "${FCGIQ_SOCKET:=/run/fcgiq/fcgiq.sock}"
: "${FCGIQ_QUEUE:=default}"
export FCGIQ_QUEUE
if [ -n "${FCGIQ_STATUS_PREFIX:-}" ]; then
	export FCGIQ_STATUS_PREFIX
fi

exec cgi-fcgi -bind -connect "$FCGIQ_SOCKET"
