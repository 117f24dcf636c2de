# queue/store: the SQLite queue store and its unit tests.
libfcgiq_a_SOURCES += queue/store.c queue/store.h
