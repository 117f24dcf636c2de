# tests/e2e/dashboard-lib.sh: what the dashboard suites share (sourced
# after tests/lib.sh and responder-lib.sh): fcgiq with the queues default
# (tests/handlers/dispatch.sh) and parked (no handler: its jobs wait, so
# their states are the test's to set), under spawn-fcgi, behind nginx with
# the shipped conf-examples/nginx-dashboard.conf (password files
# substituted).  Sets RO and RW (the read-only and the actions locations),
# ORIGIN, AUTH_RO and AUTH_RW (curl's credentials).  DASH_FCGIQ_EXTRA:
# more lines for [fcgiq] (a PostgreSQL suite's metrics_file).

dash_start() {
	ST=$T/state
	H=$T/handlers
	mkdir -p "$T/var" "$ST" "$H"
	cp "$top_srcdir/tests/handlers/dispatch.sh" "$H/"
	cat >"$T/fcgiq.conf" <<-EOF
	[fcgiq]
	database = $DB
	log      = info
	${DASH_FCGIQ_EXTRA:-}

	[queue default]
	handler      = exec:$H/dispatch.sh $ST
	user         = root
	concurrency  = 2
	max_attempts = 2
	backoff      = 50ms..100ms

	[queue parked]
	EOF
	printf 'alice:%s\n' "$(openssl passwd -apr1 wonderland)" >"$T/ro.htpasswd"
	printf 'bob:%s\n' "$(openssl passwd -apr1 builder)" >"$T/rw.htpasswd"
	sed -e "s|/etc/nginx/fcgiq.htpasswd|$T/ro.htpasswd|" \
	    -e "s|/etc/nginx/fcgiq-admin.htpasswd|$T/rw.htpasswd|" \
	    "$top_srcdir/conf-examples/nginx-dashboard.conf" >"$T/extra-locations.conf"
	grep -q "$T/rw.htpasswd" "$T/extra-locations.conf" ||
	    bail "conf-examples/nginx-dashboard.conf no longer has the lines the test substitutes"
	resp_spawn || bail "fcgiq did not start: $(cat "$T/fcgiq.log")"
	resp_nginx || bail "nginx did not start"
	RO=$BASE/fcgiq
	RW=$BASE/fcgiq-admin
	ORIGIN=$BASE
	AUTH_RO=(-u alice:wonderland)
	AUTH_RW=(-u bob:builder)
}
