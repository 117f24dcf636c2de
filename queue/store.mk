# queue/store: the SQLite queue store and its unit tests.
libfcgiq_a_SOURCES += queue/store.c queue/store.h queue/store-sqlite.h \
	queue/store-schema.c queue/store-sql.c queue/store-enqueue.c \
	queue/store-jobs.c queue/store-admin.c
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_store
TESTS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_store_LDADD = $(FCGIQ_LIBS) $(CMOCKA_LIBS)
endif
