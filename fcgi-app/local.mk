# fcgi-app/: the responder, fcgiq, its test tools and its tests.
# The responder's objects, linked by fcgiq and by the unit tests alike, so
# the tests exercise the very objects the program runs.
noinst_LIBRARIES += libresponder.a
libresponder_a_SOURCES = \
	fcgi-app/server.c fcgi-app/server.h \
	fcgi-app/wire.c fcgi-app/wire.h \
	fcgi-app/router.c fcgi-app/router.h \
	fcgi-app/request.c fcgi-app/request.h \
	fcgi-app/response.c fcgi-app/response.h \
	fcgi-app/commit.c fcgi-app/commit.h \
	fcgi-app/dbpool.c fcgi-app/dbpool.h

sbin_PROGRAMS += fcgiq
fcgiq_SOURCES = fcgi-app/main.c
fcgiq_LDADD = libresponder.a libhelper.a $(FCGIQ_LIBS) $(FCGI_LIBS)

# A FastCGI client of our own, talking straight to the socket: malformed
# and hostile requests no web server would send.
check_PROGRAMS += tests/tools/fcgiclient
tests_tools_fcgiclient_SOURCES = tests/tools/fcgiclient.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h

# End to end: nginx + spawn-fcgi + fcgiq (curl, sqlite3); the raw client;
# 20,000 POSTs at concurrency 64.
TESTS += tests/e2e/responder.sh tests/e2e/responder-raw.sh \
	tests/e2e/responder-load.sh
dist_noinst_SCRIPTS += tests/e2e/responder.sh tests/e2e/responder-raw.sh \
	tests/e2e/responder-load.sh tests/e2e/responder-lib.sh
EXTRA_DIST += conf-examples/nginx.conf conf-examples/spawn-fcgi.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_request
TESTS += tests/unit/test_request
tests_unit_test_request_SOURCES = tests/unit/test_request.c
tests_unit_test_request_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_request_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_wire
TESTS += tests/unit/test_wire
tests_unit_test_wire_SOURCES = tests/unit/test_wire.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_wire_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_wire_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wire_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)

# The group committer through the store's fault seam.
check_PROGRAMS += tests/unit/test_commit
TESTS += tests/unit/test_commit
tests_unit_test_commit_SOURCES = tests/unit/test_commit.c
tests_unit_test_commit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_commit_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)

# The status connections' pool.
check_PROGRAMS += tests/unit/test_dbpool
TESTS += tests/unit/test_dbpool
tests_unit_test_dbpool_SOURCES = tests/unit/test_dbpool.c
tests_unit_test_dbpool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_dbpool_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)

# The accept and worker layer over a real unix socket.
check_PROGRAMS += tests/unit/test_server
TESTS += tests/unit/test_server
tests_unit_test_server_SOURCES = tests/unit/test_server.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_server_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_server_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_server_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)

# The router's decisions, answers byte for byte; group commit stubbed.
check_PROGRAMS += tests/unit/test_router
TESTS += tests/unit/test_router
tests_unit_test_router_SOURCES = tests/unit/test_router.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_unit_test_router_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
tests_unit_test_router_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_router_LDADD = libresponder.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)
endif
