# tests/chaos/total-queue.mk: automake fragment (see Makefile.am).
# The total-queue chaos test: every 202 the client got against every run
# the handlers logged, with kill -9 of responders, supervisors, helpers and
# handlers under load (nginx + spawn-fcgi -F 2).  CI runs the short
# version; see the script's header for the long one.
check_PROGRAMS += tests/chaos/handlers/record
tests_chaos_handlers_record_SOURCES = tests/chaos/handlers/record.c
tests_chaos_handlers_record_LDADD = $(CRYPTO_LIBS)

TESTS += tests/chaos/total-queue.sh
dist_noinst_SCRIPTS += tests/chaos/total-queue.sh
