# queue/: the helper (helper.c), its slots (slot.c), its processes
# (supervisor.c), the exec handler,
# linked by fcgiq as libhelper.a $(FCGIQ_LIBS), and its tests.
noinst_LIBRARIES += libhelper.a
libhelper_a_SOURCES = queue/helper.c queue/helper.h queue/exec.c queue/exec.h \
	queue/slot.c queue/slot.h queue/supervisor.c queue/supervisor.h

# Test handlers: report prints its environment and open fds; the scripts
# fail N times, exit with a code, sleep, or record that they ran.
# They are fixtures, not code under test: built without the sanitizers of
# --enable-debug, which cannot start under a handler's rlimit_as (ASan
# reserves terabytes of address space for its shadow).
check_PROGRAMS += tests/handlers/report
tests_handlers_report_SOURCES = tests/handlers/report.c
tests_handlers_report_CFLAGS = $(WARN_CFLAGS)
tests_handlers_report_LDFLAGS =
dist_noinst_SCRIPTS += tests/handlers/fail-n.sh tests/handlers/exit.sh \
	tests/handlers/sleep.sh tests/handlers/mark.sh tests/handlers/cat.sh \
	tests/handlers/dispatch.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_exec tests/unit/test_helper \
	tests/unit/test_slot
TESTS += tests/unit/test_exec tests/unit/test_helper tests/unit/test_slot
tests_unit_test_exec_SOURCES = tests/unit/test_exec.c
tests_unit_test_exec_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_exec_LDADD = libhelper.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)
tests_unit_test_helper_SOURCES = tests/unit/test_helper.c
tests_unit_test_helper_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_helper_LDADD = libhelper.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)
tests_unit_test_slot_SOURCES = tests/unit/test_slot.c
tests_unit_test_slot_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_slot_LDADD = libhelper.a $(FCGIQ_LIBS) $(CMOCKA_LIBS)
endif

# End to end through nginx + spawn-fcgi + fcgiq.
TESTS += tests/e2e/helper.sh
dist_noinst_SCRIPTS += tests/e2e/helper.sh

# Example handlers shipped with the documentation.
dist_noinst_SCRIPTS += conf-examples/handlers/store-to-dir

# Handlers that misbehave on purpose (tests/handlers/hostile/hostile.c) and
# the suite that checks the helper contains each of them.
check_PROGRAMS += tests/handlers/hostile/hostile
tests_handlers_hostile_hostile_SOURCES = tests/handlers/hostile/hostile.c
tests_handlers_hostile_hostile_CFLAGS = $(WARN_CFLAGS)
tests_handlers_hostile_hostile_LDFLAGS =
TESTS += tests/e2e/hostile-handlers.sh
dist_noinst_SCRIPTS += tests/e2e/hostile-handlers.sh

# fcgiq under valgrind (memcheck): 10,000 requests, then SIGTERM; no
# memory error, no definite leak, no fd left open.  Third-party
# suppressions, if ever needed, in tests/e2e/valgrind.supp.
TESTS += tests/e2e/valgrind-responder.sh
dist_noinst_SCRIPTS += tests/e2e/valgrind-responder.sh
EXTRA_DIST += tests/e2e/valgrind.supp

# Not a TESTS entry: tests/run-all.sh calls it for a second, sanitized
# build (see the comment at its top).
dist_noinst_SCRIPTS += tests/e2e/run-sanitized.sh
