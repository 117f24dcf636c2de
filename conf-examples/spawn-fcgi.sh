#!/bin/sh
# Start fcgiq under spawn-fcgi: spawn-fcgi binds the socket, forks
# FCGIQ_CHILDREN processes that share it (each accepts on fd 0 with its own
# threads and its own forked helper; one helper per database is active, the
# others wait as standbys), and exits.  Run as root with FCGIQ_USER set,
# spawn-fcgi drops to that user and gives it the socket.
#
# tests/e2e/responder.sh runs this script with the variables below set.
#
#   FCGIQ_SOCKET    /run/fcgiq/fcgiq.sock
#   FCGIQ_CONF      /etc/fcgiq/fcgiq.conf
#   FCGIQ_BIN       /usr/local/sbin/fcgiq
#   FCGIQ_CHILDREN  2
#   FCGIQ_USER      (empty: keep the current user)
#   FCGIQ_ARGS      more fcgiq options, e.g. -W (no helper) or -T 30
#   FCGIQ_PIDFILE   (empty: none) where spawn-fcgi writes the children's pids
set -eu

: "${FCGIQ_SOCKET:=/run/fcgiq/fcgiq.sock}"
: "${FCGIQ_CONF:=/etc/fcgiq/fcgiq.conf}"
: "${FCGIQ_BIN:=/usr/local/sbin/fcgiq}"
: "${FCGIQ_CHILDREN:=2}"
: "${FCGIQ_USER:=}"
: "${FCGIQ_ARGS:=}"
: "${FCGIQ_PIDFILE:=}"

# spawn-fcgi refuses a socket path that exists: clear a stale one.
if [ -S "$FCGIQ_SOCKET" ]; then
	rm -f "$FCGIQ_SOCKET"
fi

set --
if [ -n "$FCGIQ_USER" ]; then
	set -- "$@" -u "$FCGIQ_USER" -U "$FCGIQ_USER"
fi
if [ -n "$FCGIQ_PIDFILE" ]; then
	set -- "$@" -P "$FCGIQ_PIDFILE"
fi

# shellcheck disable=SC2086 # FCGIQ_ARGS is a list of options
exec spawn-fcgi -s "$FCGIQ_SOCKET" -M 0660 -F "$FCGIQ_CHILDREN" "$@" -- \
	"$FCGIQ_BIN" -c "$FCGIQ_CONF" $FCGIQ_ARGS
