# tests/e2e/phpfpm-lib.sh: Debian's PHP-FPM for a suite (sourced after
# tests/lib.sh).  Each pool runs in the foreground (-F) with its own
# php-fpm.conf under $T, listening on a private unix socket; as root it
# needs -R (NOTES.md) and runs its children as root.  The pid is tracked,
# so the EXIT trap stops it.  The scripts it serves are tests/handlers/php/.
#
#   phpfpm_find                       PHPFPM set, or 1 (the suite skips)
#   phpfpm_start NAME [CHILDREN] [POOL LINES]
#                                     PHPFPM_SOCK_<NAME>, PHPFPM_PID_<NAME>
#   phpfpm_stop NAME                  SIGQUIT-free stop by pid, socket gone
#   phpfpm_kill9 NAME                 the master and its children, at once

# Canonical: PHP-FPM answered "Primary script unknown" to a
# SCRIPT_FILENAME with ".." in it.
PHP_HANDLERS=$(cd "$top_srcdir/tests/handlers/php" && pwd -P)

phpfpm_find() {
	local p
	PHPFPM=""
	for p in php-fpm php-fpm8.2 /usr/sbin/php-fpm8.2 /usr/sbin/php-fpm*; do
		if command -v "$p" >/dev/null 2>&1; then
			PHPFPM=$(command -v "$p")
			break
		fi
	done
	[ -n "$PHPFPM" ]
}

# phpfpm_start NAME [CHILDREN] [POOL LINES]: a static pool of CHILDREN
# (default 4) children on $T/fpm-NAME/fpm.sock; waits for the socket.
phpfpm_start() {
	local name=$1 children=${2:-4} extra=${3:-} d="$T/fpm-$1" pid
	mkdir -p "$d"
	cat >"$d/php-fpm.conf" <<-EOF
	[global]
	pid = $d/php-fpm.pid
	error_log = $d/error.log
	daemonize = no
	log_level = notice

	[$name]
	listen = $d/fpm.sock
	listen.mode = 0660
	pm = static
	pm.max_children = $children
	; The scripts' records and answers, not PHP's default limits, decide.
	request_terminate_timeout = 0
	catch_workers_output = yes
	decorate_workers_output = no
	clear_env = yes
	security.limit_extensions = .php
	; No error_log of its own: PHP's errors go to the web server (to
	; fcgiq) in FCGI_STDERR, as a default pool sends them.
	php_admin_flag[log_errors] = on
	php_admin_flag[display_errors] = off
	$extra
	EOF
	if [ "$(id -u)" = 0 ]; then
		printf 'user = root\ngroup = root\n' >>"$d/php-fpm.conf"
		"$PHPFPM" -F -R -n -y "$d/php-fpm.conf" >>"$d/stdout.log" 2>&1 &
	else
		"$PHPFPM" -F -n -y "$d/php-fpm.conf" >>"$d/stdout.log" 2>&1 &
	fi
	pid=$!
	track "$pid"
	eval "PHPFPM_PID_$name=$pid"
	eval "PHPFPM_SOCK_$name=$d/fpm.sock"
	wait_for test -S "$d/fpm.sock" || { cat "$d/error.log" "$d/stdout.log" >&2; return 1; }
}

# phpfpm_kill9 NAME: kill -9 the master and every child (by the master's
# children list: only the processes this pool started).
phpfpm_kill9() {
	local pid c
	eval "pid=\$PHPFPM_PID_$1"
	c=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
	kill -9 "$pid" $c 2>/dev/null
	for c in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	rm -f "$T/fpm-$1/fpm.sock"
	return 0
}

# phpfpm_stop NAME: stop it by pid and wait for it.
phpfpm_stop() {
	local pid
	eval "pid=\$PHPFPM_PID_$1"
	stop_pid "$pid"
}
