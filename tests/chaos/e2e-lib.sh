# tests/chaos/e2e-lib.sh: what tests/e2e/storage-faults.sh and
# tests/e2e/powerloss.sh share (sourced after tests/lib.sh, not run).
# nginx on the shipped conf-examples/nginx.conf in front of one fcgiq run
# by spawn-fcgi -n (so the pid we track is fcgiq's own), with the
# powerloss VFS (tests/chaos/powerloss.so) preloaded when asked.  No
# helper (-W): the responder is the only process writing the database, the
# case the VFS models exactly.

SHIM=$top_builddir/tests/chaos/powerloss.so

chaos_require() {
	local c
	for c in nginx spawn-fcgi curl sqlite3; do
		command -v "$c" >/dev/null || skip_all "$c not installed"
	done
	[ -x "$FCGIQ" ] || skip_all "fcgiq not built"
	[ -f "$SHIM" ] || skip_all "tests/chaos/powerloss.so not built"
}

# chaos_setup DURABILITY: config, nginx conf and directories in $T.
chaos_setup() {
	DB=$T/db/q.db
	SOCK=$T/run/fcgiq.sock
	mkdir -p "$T/db" "$T/run"
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	cat >"$T/fcgiq.conf" <<EOF
[fcgiq]
database     = $DB
durability   = $1
busy_timeout = 1s
log          = info
threads      = 8
helper       = no

[queue default]
EOF
	sed -e "s|unix:/run/fcgiq/fcgiq.sock|unix:$SOCK|" \
	    -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$PORT;|" \
	    -e "s|^user www-data;|user root;|" \
	    "$top_srcdir/conf-examples/nginx.conf" >"$T/nginx.conf"
	cp /etc/nginx/fastcgi_params "$T/"
	start_nginx "$T/nginx.conf" || bail "nginx did not start"
}

# start_fcgiq LOG [VAR=VALUE...]: fcgiq under spawn-fcgi -n, with the
# environment given (LD_PRELOAD and the VFS's variables); sets FCGIQ_PID.
start_fcgiq() {
	local log=$1
	shift
	rm -f "$SOCK"
	env "$@" spawn-fcgi -n -s "$SOCK" -M 0660 -- \
	    "$FCGIQ" -W -c "$T/fcgiq.conf" >>"$log" 2>&1 &
	FCGIQ_PID=$!
	track "$FCGIQ_PID"
	wait_for test -S "$SOCK" || return 1
	# spawn-fcgi binds, then execs fcgiq: wait until fcgiq runs.
	wait_for grep -q 'fcgiq' "/proc/$FCGIQ_PID/comm"
}

# post_many N: N POSTs of a small body over one kept connection (one curl
# process: spawning is slow here); prints "STATUS ID RETRY-AFTER" per
# request, - for what is absent.  The id is read from Location.
post_many() {
	local i args=()
	for i in $(seq "$1"); do args+=(-o /dev/null "$URL/hooks/chaos"); done
	curl -s -m 20 -H 'Content-Type: text/plain' \
	    --data-binary "job $RANDOM$RANDOM" \
	    -w '%{http_code}|%header{location}|%header{retry-after}\n' \
	    "${args[@]}" 2>/dev/null |
	awk -F'|' '{ id = $2; sub(/.*\//, "", id); if (id == "") id = "-";
	    ra = $3; if (ra == "") ra = "-"; print $1, id, ra }'
}

# post: one POST, as post_many 1.
post() { post_many 1; }

# db_count: jobs in the database (sqlite3, no VFS of ours).
db_count() { sqlite3 "$DB" 'PRAGMA busy_timeout = 5000; SELECT count(*) FROM jobs;' | tail -1; }

# db_integrity: "ok" or what is wrong.
db_integrity() { sqlite3 "$DB" 'PRAGMA busy_timeout = 5000; PRAGMA integrity_check;' | tail -n +2; }

# db_missing FILE: the ids listed in FILE that are not in the database
# (all of them when the schema itself did not survive).
db_missing() {
	if [ "$(sqlite3 "$DB" "SELECT count(*) FROM sqlite_master
	    WHERE name = 'jobs';")" != 1 ]; then
		cat "$1"
		return
	fi
	sqlite3 "$DB" <<EOF | tail -n +2
PRAGMA busy_timeout = 5000;
CREATE TEMP TABLE acked (id TEXT);
.mode csv
.import $1 acked
SELECT id FROM acked WHERE id NOT IN (SELECT id FROM jobs);
EOF
}
