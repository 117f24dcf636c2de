# tests/: every test, registered here beside the folders that hold them.
# tests/run-all.sh installs what they need and runs them (make check), then
# a second, sanitized build (tests/e2e/run-sanitized.sh).
EXTRA_DIST += tests/lib.sh tests/install-deps.sh tests/run-all.sh .ci/run
# A private PostgreSQL cluster for the suites on PostgreSQL (issue 20).
EXTRA_DIST += tests/pg-lib.sh
# One suite file, either store: FCGIQ_TEST_BACKEND=pg (issue 20).
EXTRA_DIST += tests/backend.sh
dist_noinst_SCRIPTS += tests/unit/store-pg.sh
dist_noinst_SCRIPTS += tests/e2e/run-sanitized.sh

# ------------------------------------------------------------ tests/unit
# cmocka, one program per module; each links the libraries the programs
# link, so what is tested is what runs.
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
UNIT_LDADD = libresponder.a libhelper.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)
if HAVE_CMOCKA
# queue/
check_PROGRAMS += tests/unit/test_config tests/unit/test_text \
	tests/unit/test_store tests/unit/test_exec tests/unit/test_slot \
	tests/unit/test_helper tests/unit/test_metrics tests/unit/test_verify \
	tests/unit/test_upstream tests/unit/test_fcgi
tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_metrics_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_metrics_LDADD = $(UNIT_LDADD)
# cron.c and schedule.c: slots and their enqueue.
check_PROGRAMS += tests/unit/test_cron
tests_unit_test_cron_SOURCES = tests/unit/test_cron.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_cron_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_cron_LDADD = $(UNIT_LDADD)
TESTS += tests/unit/test_cron
# fcgiqctl top's readings and frames (top.c is fcgiqctl's own).
check_PROGRAMS += tests/unit/test_top
tests_unit_test_top_SOURCES = tests/unit/test_top.c queue/top.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_top_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_top_LDADD = $(UNIT_LDADD)
TESTS += tests/unit/test_top
tests_unit_test_verify_SOURCES = tests/unit/test_verify.c
tests_unit_test_verify_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_verify_LDADD = $(UNIT_LDADD)
tests_unit_test_fcgi_SOURCES = tests/unit/test_fcgi.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_fcgi_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_fcgi_LDADD = $(UNIT_LDADD)
tests_unit_test_upstream_SOURCES = tests/unit/test_upstream.c
tests_unit_test_upstream_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_upstream_LDADD = $(UNIT_LDADD)
# flow.c: the token bucket and the breaker, on an injected clock.
check_PROGRAMS += tests/unit/test_flow
TESTS += tests/unit/test_flow
tests_unit_test_flow_SOURCES = tests/unit/test_flow.c
tests_unit_test_flow_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_flow_LDADD = $(UNIT_LDADD)
# http.c's header list (no network)
check_PROGRAMS += tests/unit/test_http
TESTS += tests/unit/test_http
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(UNIT_LDADD)
tests_unit_test_text_SOURCES = tests/unit/test_text.c
tests_unit_test_text_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_text_LDADD = $(UNIT_LDADD)
tests_unit_test_store_SOURCES = tests/unit/test_store.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_store_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_store_LDADD = $(UNIT_LDADD)
# The store's cases on PostgreSQL: test_store_pg, run by store-pg.sh
# against a private cluster (tests/pg-lib.sh).
check_PROGRAMS += tests/unit/test_store_pg
tests_unit_test_store_pg_SOURCES = tests/unit/test_store_pg.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_store_pg_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_store_pg_LDADD = $(UNIT_LDADD)
TESTS += tests/unit/store-pg.sh
tests_unit_test_exec_SOURCES = tests/unit/test_exec.c
tests_unit_test_exec_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_exec_LDADD = $(UNIT_LDADD)
tests_unit_test_slot_SOURCES = tests/unit/test_slot.c
tests_unit_test_slot_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_slot_LDADD = $(UNIT_LDADD)
tests_unit_test_helper_SOURCES = tests/unit/test_helper.c
tests_unit_test_helper_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_helper_LDADD = $(UNIT_LDADD)
# The wake-up socket both ways (Prefer: wait's notices).
check_PROGRAMS += tests/unit/test_wake
tests_unit_test_wake_SOURCES = tests/unit/test_wake.c
tests_unit_test_wake_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_wake_LDADD = $(UNIT_LDADD)
TESTS += tests/unit/test_wake
tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_http_LDADD = $(UNIT_LDADD)

# fcgi-app/: the parser, the FastCGI reader, the group committer (through
# the store's fault seam), the status pool, the accept and worker layer
# over a real unix socket, and the router's answers byte for byte (its
# committer stubbed in the test).
check_PROGRAMS += tests/unit/test_request tests/unit/test_wire \
	tests/unit/test_commit tests/unit/test_dbpool tests/unit/test_server \
	tests/unit/test_router tests/unit/test_eta
tests_unit_test_request_SOURCES = tests/unit/test_request.c
tests_unit_test_request_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_request_LDADD = $(UNIT_LDADD)
tests_unit_test_wire_SOURCES = tests/unit/test_wire.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_wire_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_wire_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_wire_LDADD = $(UNIT_LDADD)
tests_unit_test_commit_SOURCES = tests/unit/test_commit.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_commit_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_commit_LDADD = $(UNIT_LDADD)
tests_unit_test_dbpool_SOURCES = tests/unit/test_dbpool.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_dbpool_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dbpool_LDADD = $(UNIT_LDADD)
tests_unit_test_server_SOURCES = tests/unit/test_server.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_server_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_server_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_server_LDADD = $(UNIT_LDADD)
tests_unit_test_router_SOURCES = tests/unit/test_router.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_router_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_router_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_router_LDADD = $(UNIT_LDADD)
tests_unit_test_eta_SOURCES = tests/unit/test_eta.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_eta_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_eta_LDADD = $(UNIT_LDADD)

TESTS += tests/unit/test_config tests/unit/test_text tests/unit/test_store \
	tests/unit/test_exec tests/unit/test_slot tests/unit/test_helper \
	tests/unit/test_request tests/unit/test_wire tests/unit/test_commit \
	tests/unit/test_dbpool tests/unit/test_server tests/unit/test_router \
	tests/unit/test_metrics tests/unit/test_eta tests/unit/test_verify \
	tests/unit/test_upstream tests/unit/test_fcgi
endif

# ------------------------------------------------- tests/tools, handlers
# A FastCGI client of our own, talking straight to the socket: malformed
# and hostile requests no web server would send.
check_PROGRAMS += tests/tools/fcgiclient
tests_tools_fcgiclient_SOURCES = tests/tools/fcgiclient.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h

# Test handlers: report prints its environment and open fds; hostile
# misbehaves on purpose; the scripts fail N times, exit with a code, sleep,
# or record that they ran.  They are fixtures, not code under test: built
# without the sanitizers of --enable-debug, which cannot start under a
# handler's rlimit_as (ASan reserves terabytes of address space).
check_PROGRAMS += tests/handlers/report tests/handlers/hostile/hostile
tests_handlers_report_SOURCES = tests/handlers/report.c
tests_handlers_report_CFLAGS = $(WARN_CFLAGS)
tests_handlers_report_LDFLAGS =
tests_handlers_hostile_hostile_SOURCES = tests/handlers/hostile/hostile.c
tests_handlers_hostile_hostile_CFLAGS = $(WARN_CFLAGS)
tests_handlers_hostile_hostile_LDFLAGS =
dist_noinst_SCRIPTS += tests/handlers/fail-n.sh tests/handlers/exit.sh \
	tests/handlers/sleep.sh tests/handlers/mark.sh tests/handlers/cat.sh \
	tests/handlers/dispatch.sh

# ------------------------------------------------------------- tests/e2e
# Through the real programs: nginx + spawn-fcgi + fcgiq (curl, sqlite3),
# the raw client, 20,000 POSTs at concurrency 64; the helper, hostile
# handlers, fcgiqctl with no server, log_file under spawn-fcgi, kill -9 of
# the supervisor; Apache (mod_proxy_fcgi, mod_fcgid), Caddy (reverse_proxy
# with transport fastcgi: chunked uploads, keep-alive), the systemd units,
# the example handlers and the operator guide's queries, backups and
# upgrades, each on the file as shipped; fcgiq under valgrind (memcheck:
# 10,000 requests, then SIGTERM; no memory error, no definite leak, no fd
# left open; third-party suppressions, if ever needed, in valgrind.supp);
# bench/epoll-null, intake.sh's ceiling, checked on the wire (pipelined,
# split, kept, 256 KiB bodies) so its figures are of a correct responder.
# The other FastCGI clients, each on its shipped example: Caddy, lighttpd,
# h2o, libfcgi's cgi-fcgi (clients-lib.sh: bodies byte for byte, chunked,
# the status API, keep-alive, 500 POSTs at concurrency 16).
E2E_TESTS = tests/e2e/responder.sh tests/e2e/responder-raw.sh \
	tests/e2e/responder-load.sh tests/e2e/helper.sh \
	tests/e2e/hostile-handlers.sh tests/e2e/ctl.sh tests/e2e/logfile.sh \
	tests/e2e/supervisor.sh tests/e2e/apache.sh tests/e2e/apache-fcgid.sh \
	tests/e2e/caddy.sh \
	tests/e2e/systemd.sh tests/e2e/examples.sh tests/e2e/operator.sh \
	tests/e2e/valgrind-responder.sh tests/e2e/bench-epoll-null.sh \
	tests/e2e/lighttpd.sh tests/e2e/h2o.sh tests/e2e/cgi-fcgi.sh \
	tests/e2e/metrics.sh tests/e2e/fastcgi.sh tests/e2e/fastcgi-hostile.sh \
	tests/e2e/php-fpm-example.sh
# How connections are held (issue 14): 1,000 requests on one kept
# connection beside slow senders, pipelining, idle kept connections while
# intake goes on, the idle timeout, bodies cut by nginx.
E2E_TESTS += tests/e2e/responder-conns.sh
# Prefer: wait (issue 17).
E2E_TESTS += tests/e2e/prefer-wait.sh
# The status resource and the errors behind nginx: problem details,
# <id>/result, 410 after a prune, scheduling headers, Retry-After.
E2E_TESTS += tests/e2e/front-door.sh
# fcgiqctl top (issue 18).
E2E_TESTS += tests/e2e/top.sh
# Attempts ended by a lost helper or an expired lease, counted (issue 18).
E2E_TESTS += tests/e2e/metrics-lease.sh
# fcgiq_jobs follows fcgiq's transitions between counts (issue 18).
E2E_TESTS += tests/e2e/metrics-fresh.sh
# The metrics role behind Apache (conf-examples/apache-metrics.conf).
E2E_TESTS += tests/e2e/apache-metrics.sh
# Recurring jobs (issue 19): [schedule NAME] with an injected clock.
E2E_TESTS += tests/e2e/schedules.sh
# fcgiq on PostgreSQL (issue 20): a private cluster, intake, runs, the
# README's queries in psql, a crash and restart of PostgreSQL under load.
E2E_TESTS += tests/e2e/pg-responder.sh
# tests/e2e/helper.sh on PostgreSQL, through tests/backend.sh (issue 20).
E2E_TESTS += tests/e2e/pg-helper.sh
# Failover (issue 20): kill -9 the primary, promote its synchronous
# standby; 503 in the gap, every 202 on the promoted standby.
E2E_TESTS += tests/e2e/pg-failover.sh
# Schedules and dead letters on PostgreSQL (issue 20): two hosts' helpers
# fire each slot once; a death's letter runs.
E2E_TESTS += tests/e2e/pg-sched.sh
# Flow control (issue 19): rate, retry lanes, Retry-After from exec:,
# the circuit breaker, quarantine.
E2E_TESTS += tests/e2e/flow.sh
# serialize_by: one at a time per key, through nginx (issue 19).
E2E_TESTS += tests/e2e/serialize.sh
# Flow control on PostgreSQL (issues 19, 20): serialize_by and
# pause_after with two helpers claiming from one database.
E2E_TESTS += tests/e2e/pg-flow.sh
# fcgiqctl retry / discard / cancel by filters, in batches (issue 19).
E2E_TESTS += tests/e2e/bulk.sh
# The dashboard role (issue 18): curl through nginx, then a real browser.
E2E_TESTS += tests/e2e/dashboard.sh tests/e2e/dashboard-browser.sh \
	tests/e2e/apache-dashboard.sh
# The metrics and the dashboard on PostgreSQL (issues 18, 20): two hosts,
# each its own metrics_file; a token from one host accepted by the other.
E2E_TESTS += tests/e2e/pg-dashboard.sh
check_PROGRAMS += tests/unit/test_dashboard
TESTS += tests/unit/test_dashboard
tests_unit_test_dashboard_SOURCES = tests/unit/test_dashboard.c \
	tests/unit/tmpdir.c tests/unit/tmpdir.h
tests_unit_test_dashboard_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_dashboard_LDADD = $(UNIT_LDADD)
# puppeteer-core for the browser suite, pinned (npm ci: npm-lib.sh).
EXTRA_DIST += tests/dashboard/package.json tests/dashboard/package-lock.json \
	tests/dashboard/browser.mjs
TESTS += $(E2E_TESTS)
dist_noinst_SCRIPTS += $(E2E_TESTS) tests/e2e/responder-lib.sh \
	tests/e2e/apache-lib.sh tests/e2e/clients-lib.sh \
	tests/e2e/phpfpm-lib.sh tests/e2e/npm-lib.sh \
	tests/e2e/dashboard-lib.sh
# PHP-FPM's scripts for the upstream kinds' suites (phpfpm-lib.sh).
EXTRA_DIST += tests/handlers/php/job.php
dist_noinst_SCRIPTS += tests/handlers/hostile/fcgi-upstream.py
# The http: handler kind: nginx in front of PHP-FPM as the upstream, over
# HTTP and over HTTPS (a CA made with openssl, trusted through tls_ca; a
# self-signed certificate refused), statuses, headers, bodies, limits.
TESTS += tests/e2e/http-handler.sh
dist_noinst_SCRIPTS += tests/e2e/http-handler.sh
EXTRA_DIST += tests/e2e/valgrind.supp

# Trust at the door: requests signed by the senders' own libraries (npm,
# pinned in tests/webhooks/package-lock.json, installed with npm ci into a
# cache directory) through nginx; 401s, the rejected table, dedupe by delivery
# id, secret rotation on SIGHUP, handlers under user = nobody, file modes.
TESTS += tests/e2e/webhooks.sh
dist_noinst_SCRIPTS += tests/e2e/webhooks.sh
EXTRA_DIST += tests/webhooks/package.json tests/webhooks/package-lock.json \
	tests/webhooks/sign.mjs

# ----------------------------------------------------------- tests/chaos
# Power loss and storage faults.  powerloss-vfs.c is a test-only SQLite VFS
# that keeps what was not synced apart and can cut the power; it is linked
# into the C harness and built as a shared object to LD_PRELOAD into the
# real fcgiq (no libtool: a check program linked with -shared).
check_PROGRAMS += tests/chaos/powerloss tests/chaos/powerloss.so
TESTS += tests/chaos/powerloss
tests_chaos_powerloss_SOURCES = tests/chaos/powerloss.c \
	tests/chaos/powerloss-vfs.c tests/chaos/powerloss-vfs.h
tests_chaos_powerloss_LDADD = $(FCGIQ_LIBS)
tests_chaos_powerloss_so_SOURCES = tests/chaos/powerloss-vfs.c \
	tests/chaos/powerloss-vfs.h
tests_chaos_powerloss_so_CPPFLAGS = $(AM_CPPFLAGS) -DPLVFS_PRELOAD
tests_chaos_powerloss_so_CFLAGS = $(AM_CFLAGS) -fPIC
tests_chaos_powerloss_so_LDFLAGS = $(AM_LDFLAGS) -shared -fPIC
tests_chaos_powerloss_so_LDADD = $(SQLITE_LIBS)

# The total-queue test: every 202 the client got against every run the
# handlers logged, with kill -9 of responders, supervisors, helpers and
# handlers under load (nginx + spawn-fcgi -F 2).  CI runs the short
# version; see the script's header for the long one.
check_PROGRAMS += tests/chaos/handlers/record
tests_chaos_handlers_record_SOURCES = tests/chaos/handlers/record.c
tests_chaos_handlers_record_LDADD = $(CRYPTO_LIBS)

CHAOS_TESTS = tests/e2e/storage-faults.sh tests/e2e/powerloss.sh \
	tests/chaos/total-queue.sh tests/chaos/fastcgi-chaos.sh \
	tests/chaos/pg-two-hosts.sh
# tests/chaos/total-queue.sh on PostgreSQL, through tests/backend.sh
# (issue 20).
CHAOS_TESTS += tests/chaos/pg-total-queue.sh
TESTS += $(CHAOS_TESTS)
dist_noinst_SCRIPTS += $(CHAOS_TESTS)
EXTRA_DIST += tests/chaos/e2e-lib.sh

# --------------------------------------------------------- tests/hostile
# A raw FastCGI adversary against the live socket: what no web server
# would send (overflowing lengths, truncated records, wrong versions and
# ids, ABORT in mid-stdin, NUL bytes in params, floods, other roles, slow
# senders); after each attack fcgiq lives, serves, and stored nothing.
check_PROGRAMS += tests/hostile/adversary
tests_hostile_adversary_SOURCES = tests/hostile/adversary.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_hostile_adversary_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
TESTS += tests/hostile/adversary.sh
dist_noinst_SCRIPTS += tests/hostile/adversary.sh

# ------------------------------------------------------------ tests/package
# The Debian package: built from the committed tree, installed, served,
# upgraded, removed and purged in a bare Debian 12 chroot of its own (about
# 4 minutes; the debootstrap tarball is cached in /var/cache/fcgiq-pkgtest).
# It skips without root, lintian or debootstrap.
TESTS += tests/package/run.sh
dist_noinst_SCRIPTS += tests/package/run.sh tests/package/unit-run

# ------------------------------------------------------------ tests/fuzz
# libFuzzer targets for every parser of what a client or the web server
# sends (FastCGI records, params and headers, CONTENT_LENGTH, the status
# path, the idempotency key, the configuration file).  run.sh configures a
# clang build of the tree (-fsanitize=fuzzer-no-link,address,undefined),
# links each target with its libresponder.a and libfcgiq.a, and runs each
# FUZZ_SECONDS (10) over a copy of its corpus.
TESTS += tests/fuzz/run.sh
dist_noinst_SCRIPTS += tests/fuzz/run.sh
EXTRA_DIST += tests/fuzz/fuzz.h tests/fuzz/fuzz_request.c tests/fuzz/fuzz_wire.c \
	tests/fuzz/fuzz_content_length.c tests/fuzz/fuzz_status_path.c \
	tests/fuzz/fuzz_idempotency.c tests/fuzz/fuzz_config.c \
	tests/fuzz/fuzz_verify.c tests/fuzz/fuzz_verify.dict \
	tests/fuzz/fuzz_request.dict tests/fuzz/fuzz_config.dict \
	tests/fuzz/corpus
