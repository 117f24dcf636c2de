# tests/: shared test plumbing and the config unit tests.
EXTRA_DIST += tests/lib.sh tests/install-deps.sh tests/run-all.sh .ci/run
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_config_LDADD = $(FCGIQ_LIBS) $(CMOCKA_LIBS)
endif

# fcgiqctl against a database, no server running.
TESTS += tests/e2e/ctl.sh
dist_noinst_SCRIPTS += tests/e2e/ctl.sh

# log_file under spawn-fcgi, whose children's stderr is /dev/null.
TESTS += tests/e2e/logfile.sh
dist_noinst_SCRIPTS += tests/e2e/logfile.sh

# kill -9 of the helper's supervisor: fcgiq starts another.
TESTS += tests/e2e/supervisor.sh
dist_noinst_SCRIPTS += tests/e2e/supervisor.sh
